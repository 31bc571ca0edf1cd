/* table.c — the survey-style table (see table.h for the rules). */
#include "table.h"
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The survey's categories in table order (methods/method.h PB_CATEGORY_MAP; results/ does not
 * depend on methods/, rows carry the name). */
static const char *const g_categories[] = {"selective", "additive", "prompt", "reparameterization", "hybrid",
                                           "reference"};
#define N_CATEGORIES 6

static int category_index(const char *c) {
    for (int i = 0; i < N_CATEGORIES; i++)
        if (!strcmp(c, g_categories[i])) return i;
    return N_CATEGORIES;
}

/* Metrics already on a 0-100 scale; everything else is a fraction shown x100. */
static double metric_scale(const char *m) { return !strcmp(m, "chrf") ? 1.0 : 100.0; }

/* Reference rows (category "reference") use no backbone: they belong to every backbone's table. */
static int is_reference(const pb_res_row *w) { return !strcmp(w->category, "reference"); }

/* 1 when row w belongs to the table of backbone b. */
static int in_table(const pb_res_row *w, const char *b) { return is_reference(w) || !strcmp(w->backbone_name, b); }

int pb_table_backbones(const pb_res *r, char names[][PB_RES_NAME], int cap) {
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (is_reference(&r->rows[i])) continue;
        int seen = 0;
        for (int k = 0; k < n && k < cap && !seen; k++) seen = !strcmp(names[k], r->rows[i].backbone_name);
        if (seen) continue;
        if (n < cap) snprintf(names[n], PB_RES_NAME, "%s", r->rows[i].backbone_name);
        n++;
    }
    return n;
}

void pb_table_free(pb_table *t) {
    if (t->boot) {
        pb_boot_free(t->boot);
        free(t->boot);
    }
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int same_cell(const pb_res_row *w, const char *backbone, const char *method, const char *task) {
    return in_table(w, backbone) && !strcmp(w->method, method) && !strcmp(w->task, task);
}

int pb_table_chosen_cell(const pb_table *t, int i, int k, const pb_res_row *w) {
    const pb_table_cell *c = &t->rows[i].cell[k];
    return isfinite(c->mean) && same_cell(w, t->backbone, t->rows[i].method, t->spec[k]) && w->lr == c->lr &&
           !strcmp(w->status, "ok");
}

int pb_table_choose_lr(const pb_res *r, const char *backbone, const char *method, const char *task, int higher,
                       double *lr, int *n_lrs_out, int *edge) {
    double lrs[256];
    uint64_t seeds[256];
    int n_lrs = 0, n_seeds = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (!same_cell(w, backbone, method, task)) continue;
        int seen = 0;
        for (int k = 0; k < n_lrs && !seen; k++) seen = lrs[k] == w->lr;
        if (!seen && n_lrs < 256) lrs[n_lrs++] = w->lr;
        seen = 0;
        for (int k = 0; k < n_seeds && !seen; k++) seen = seeds[k] == w->seed;
        if (!seen && n_seeds < 256) seeds[n_seeds++] = w->seed;
    }
    *n_lrs_out = n_lrs;
    *edge = 0;
    if (!n_lrs) return 0;
    qsort(lrs, (size_t)n_lrs, sizeof lrs[0], cmp_double);
    /* selection seeds: those that ran at every rate (all seeds with a full grid; the first seed
     * under the first_seed protocol) */
    int sel[256];
    for (int s = 0; s < n_seeds; s++) {
        int at = 0;
        for (int k = 0; k < n_lrs; k++)
            for (size_t i = 0; i < r->n; i++) {
                const pb_res_row *w = &r->rows[i];
                if (w->lr == lrs[k] && w->seed == seeds[s] && same_cell(w, backbone, method, task)) {
                    at++;
                    break;
                }
            }
        sel[s] = at == n_lrs;
    }
    int best = -1;
    double best_dev = NAN;
    for (int k = 0; k < n_lrs; k++) {
        double sum = 0;
        int n = 0, eligible = 1;
        for (size_t i = 0; i < r->n; i++) {
            const pb_res_row *w = &r->rows[i];
            if (w->lr != lrs[k] || !same_cell(w, backbone, method, task)) continue;
            if (strcmp(w->status, "ok") || !isfinite(w->dev_metric)) {
                eligible = 0;
                continue;
            }
            int s = 0;
            while (s < n_seeds && seeds[s] != w->seed) s++;
            if (s < n_seeds && sel[s]) sum += w->dev_metric, n++;
        }
        if (!eligible || !n) continue;
        double dev = sum / n;
        if (best < 0 || (higher ? dev > best_dev : dev < best_dev)) best = k, best_dev = dev;
    }
    if (best < 0) return 0;
    *lr = lrs[best];
    *edge = n_lrs >= 2 && (best == 0 || best == n_lrs - 1);
    return 1;
}

/* One (row, task) entry: the learning rate chosen on dev, the test statistics there, and (when
 * every seed has test records of one size, `width` floats each: the task's) a bootstrap entry. */
static void fill_cell(const pb_res *r, const char *backbone, const char *method, const char *task, int higher,
                      double scale, int width, pb_table_cell *c, pb_boot_entry *e) {
    c->mean = c->std = c->dev_mean = c->lr = c->lo = c->hi = NAN;
    c->full_lo = c->full_hi = c->full_p = c->best_lo = c->best_hi = c->best_p = NAN;
    c->n = c->n_lrs = c->lr_edge = c->eval_max = 0;
    c->n_test = 0;
    c->entry = -1;
    memset(e, 0, sizeof *e);
    double lr;
    if (!pb_table_choose_lr(r, backbone, method, task, higher, &lr, &c->n_lrs, &c->lr_edge)) return;
    double sum = 0, dsum = 0;
    int n = 0, records = 1;
    size_t n_ex = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (w->lr != lr || !same_cell(w, backbone, method, task)) continue;
        sum += w->test_metric * scale;
        dsum += w->dev_metric * scale;
        if (w->eval_max > c->eval_max) c->eval_max = w->eval_max;
        if (!w->n_ex || !w->ex || w->ex_width != width || (n && (size_t)w->n_ex != n_ex) || n >= PB_BOOT_MAX_SEEDS)
            records = 0;
        else {
            n_ex = (size_t)w->n_ex;
            e->seed[n] = w->seed;
            e->rec[n] = w->ex;
            e->seed_free = is_reference(w);
        }
        n++;
    }
    c->mean = sum / n;
    c->dev_mean = dsum / n;
    double sq = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (w->lr != lr || !same_cell(w, backbone, method, task)) continue;
        double d = w->test_metric * scale - c->mean;
        sq += d * d;
    }
    c->std = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    c->n = n;
    c->lr = lr;
    if (records) {
        e->n_seeds = n;
        c->n_test = n_ex;
    }
}

/* The bootstrap's scoring of task column k, from a row that has records; 0 if none does. */
static int boot_task(const pb_res *r, const pb_table *t, const char *backbone, const char *spec, int k,
                     pb_boot_task *bt) {
    memset(bt, 0, sizeof *bt);
    if (pb_metric_from_key(t->metric[k], &bt->metric)) {
        pb_error_clear();
        return 0;
    }
    int kmax = -1;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (!in_table(w, backbone) || strcmp(w->task, spec) || !w->n_ex || !w->ex) continue;
        if (!bt->width) {
            bt->width = w->ex_width;
            bt->n_ex = (size_t)w->n_ex;
            if (strcmp(w->task_kind, "generate") != 0) continue;
            /* the metric's statistics start after those of the metrics before it */
            char buf[PB_RES_NAME];
            snprintf(buf, sizeof buf, "%s", w->metrics);
            int off = 0, found = 0;
            for (char *save = NULL, *m = strtok_r(buf, ",", &save); m && !found; m = strtok_r(NULL, ",", &save)) {
                pb_metric_id id;
                if (pb_metric_from_key(m, &id)) {
                    pb_error_clear();
                    return 0;
                }
                if (id == bt->metric) found = 1;
                else off += (int)pb_metric_n_stats(id, 0);
            }
            if (!found) return 0;
            bt->stat_offset = off;
        }
        if (strcmp(w->task_kind, "generate") != 0) /* classification: the labels seen give the classes */
            for (int64_t j = 0; j < w->n_ex * w->ex_width; j++) {
                if (!(w->ex[j] >= 0 && w->ex[j] < PB_TABLE_MAX_CLASSES)) return 0; /* not a label: no intervals */
                if (w->ex[j] > kmax) kmax = (int)w->ex[j];
            }
    }
    if (!bt->width) return 0;
    if (pb_metric_is_classification(bt->metric)) {
        if (bt->width != 2) return 0;
        bt->n_classes = kmax + 1 > 2 ? kmax + 1 : 2;
    }
    return 1;
}

pb_status pb_table_build(const pb_res *r, const char *backbone, const char *tasks, pb_table *t) {
    memset(t, 0, sizeof *t);
    t->full = -1;
    t->avg_best = -1;
    snprintf(t->backbone, sizeof t->backbone, "%s", backbone);
    /* task columns: the task specs of this backbone's rows, in first-appearance order */
    int any = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (strcmp(w->backbone_name, backbone) || is_reference(w)) continue;
        any = 1;
        int k = 0;
        while (k < t->n_tasks && strcmp(t->spec[k], w->task)) k++;
        if (k == t->n_tasks) {
            if (t->n_tasks == PB_TABLE_MAX_TASKS)
                return pb_errorf(PB_EINVAL, "more than %d tasks for backbone %s: choose some with --tasks",
                                 PB_TABLE_MAX_TASKS, backbone);
            snprintf(t->spec[k], sizeof t->spec[k], "%s", w->task);
            snprintf(t->task[k], sizeof t->task[k], "%s", w->task_name);
            t->metric[k][0] = '\0';
            t->n_tasks++;
        }
        if (!t->metric[k][0] && !strcmp(w->status, "ok")) {
            snprintf(t->metric[k], sizeof t->metric[k], "%s", w->select_metric);
            t->higher[k] = w->higher_is_better;
            t->scale[k] = metric_scale(w->select_metric);
        }
    }
    if (!any) return pb_errorf(PB_ENOTFOUND, "no cells of backbone '%s' in the results", backbone);
    /* two specs of one task (other options): show the specs */
    for (int a = 0; a < t->n_tasks; a++)
        for (int b = 0; b < t->n_tasks; b++)
            if (a != b && !strcmp(t->task[a], t->task[b])) snprintf(t->task[a], sizeof t->task[a], "%.63s", t->spec[a]);
    if (tasks && *tasks) {
        char want[PB_TABLE_MAX_TASKS][PB_RES_SPEC], names[PB_TABLE_MAX_TASKS][PB_RES_NAME], mets[PB_TABLE_MAX_TASKS][PB_RES_SHORT];
        int hi[PB_TABLE_MAX_TASKS], n = 0;
        double sc[PB_TABLE_MAX_TASKS];
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", tasks);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int k = 0;
            while (k < t->n_tasks && strcmp(t->task[k], tok) && strcmp(t->spec[k], tok)) k++;
            if (k == t->n_tasks) {
                char have[1024] = "";
                size_t m = 0;
                for (int j = 0; j < t->n_tasks && m < sizeof have; j++)
                    m += (size_t)snprintf(have + m, sizeof have - m, "%s%s", j ? ", " : "", t->task[j]);
                return pb_errorf(PB_EINVAL, "--tasks: no task '%s' for backbone %s (the results have: %s)", tok,
                                 backbone, have);
            }
            if (n == PB_TABLE_MAX_TASKS) return pb_errorf(PB_EINVAL, "--tasks: too many tasks");
            snprintf(want[n], sizeof want[n], "%s", t->spec[k]);
            snprintf(names[n], sizeof names[n], "%s", t->task[k]);
            snprintf(mets[n], sizeof mets[n], "%s", t->metric[k]);
            hi[n] = t->higher[k];
            sc[n] = t->scale[k];
            n++;
        }
        t->n_tasks = n;
        for (int k = 0; k < n; k++) {
            snprintf(t->spec[k], sizeof t->spec[k], "%s", want[k]);
            snprintf(t->task[k], sizeof t->task[k], "%s", names[k]);
            memcpy(t->metric[k], mets[k], sizeof t->metric[k]);
            t->higher[k] = hi[k];
            t->scale[k] = sc[k];
        }
    }
    for (int k = 0; k < t->n_tasks; k++)
        if (!t->metric[k][0]) { /* no ok cell: nothing to show, but keep the column */
            snprintf(t->metric[k], sizeof t->metric[k], "?");
            t->higher[k] = 1;
            t->scale[k] = 100;
        }
    /* rows: method labels of this backbone (and reference rows), first-appearance order, then
     * grouped by category */
    int cap = 16;
    t->rows = calloc((size_t)cap, sizeof *t->rows);
    if (!t->rows) return pb_errorf(PB_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (!in_table(w, backbone)) continue;
        int k = 0;
        while (k < t->n_rows && strcmp(t->rows[k].method, w->method)) k++;
        if (k < t->n_rows) continue;
        if (t->n_rows == cap) {
            pb_table_row *p = realloc(t->rows, sizeof *p * (size_t)cap * 2);
            if (!p) {
                pb_table_free(t);
                return pb_errorf(PB_ENOMEM, "out of memory");
            }
            t->rows = p;
            cap *= 2;
        }
        pb_table_row *x = &t->rows[t->n_rows++];
        memset(x, 0, sizeof *x);
        snprintf(x->label, sizeof x->label, "%s", w->method_label);
        snprintf(x->method, sizeof x->method, "%s", w->method);
        snprintf(x->method_name, sizeof x->method_name, "%s", w->method_name);
        snprintf(x->category, sizeof x->category, "%s", w->category);
        x->category_index = category_index(w->category);
        x->reference = is_reference(w);
    }
    /* stable grouping by category (insertion sort keeps first-appearance order within one) */
    for (int i = 1; i < t->n_rows; i++) {
        pb_table_row x = t->rows[i];
        int j = i - 1;
        while (j >= 0 && t->rows[j].category_index > x.category_index) {
            t->rows[j + 1] = t->rows[j];
            j--;
        }
        t->rows[j + 1] = x;
    }
    /* one label for two configurations (results of different specs merged): tell them apart */
    for (int i = 0; i < t->n_rows; i++)
        for (int j = i + 1; j < t->n_rows; j++)
            if (!strcmp(t->rows[i].label, t->rows[j].label)) {
                char key[PB_RES_KEY];
                pb_res_key(t->rows[j].method, key);
                size_t n = strlen(t->rows[j].label);
                if (n > sizeof t->rows[j].label - 10) n = sizeof t->rows[j].label - 10;
                snprintf(t->rows[j].label + n, sizeof t->rows[j].label - n, " [%.6s]", key);
            }
    for (int k = 0; k < t->n_tasks; k++) t->excluded_from_avg += !t->higher[k];
    /* the cells, with a bootstrap entry each where the test records allow */
    pb_boot_entry *ent = calloc((size_t)t->n_rows * (size_t)(t->n_tasks ? t->n_tasks : 1), sizeof *ent);
    pb_boot_task bt[PB_TABLE_MAX_TASKS];
    int have_task[PB_TABLE_MAX_TASKS], n_ent = 0;
    if (!ent) {
        pb_table_free(t);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    for (int k = 0; k < t->n_tasks; k++) {
        have_task[k] = boot_task(r, t, backbone, t->spec[k], k, &bt[k]);
        t->n_test[k] = have_task[k] ? bt[k].n_ex : 0;
    }
    for (int i = 0; i < t->n_rows; i++) {
        pb_table_row *x = &t->rows[i];
        if (!strcmp(x->method_name, "full") && t->full < 0) t->full = i;
        double s_pct = 0, s_fl = 0, s_ph[3] = {0}, s_mem = 0, s_cat[PB_MEM_NCAT] = {0}, s_rss = 0, s_forg = 0;
        int n = 0, n_forg = 0;
        for (size_t j = 0; j < r->n; j++) {
            const pb_res_row *w = &r->rows[j];
            if (!in_table(w, backbone) || strcmp(w->method, x->method) || strcmp(w->status, "ok")) continue;
            if (w->setup_steps > x->setup_steps) x->setup_steps = w->setup_steps;
            if (x->reference) continue; /* no training: no cost columns */
            s_pct += w->trainable_pct;
            s_fl += w->flops_train;
            s_ph[0] += w->flops_fwd, s_ph[1] += w->flops_bwd_in, s_ph[2] += w->flops_bwd_w;
            s_mem += (double)w->mem_peak_total;
            for (int c = 0; c < PB_MEM_NCAT; c++) s_cat[c] += (double)w->mem_peak[c];
            s_rss += (double)w->peak_rss;
            if (isfinite(w->forgetting)) s_forg += w->forgetting, n_forg++;
            n++;
        }
        x->n_ok = n;
        double d = n ? (double)n : NAN;
        x->pct_trainable = s_pct / d;
        x->flops_train = s_fl / d;
        for (int p = 0; p < 3; p++) x->flops_phase[p] = s_ph[p] / d;
        x->mem_peak = s_mem / d;
        for (int c = 0; c < PB_MEM_NCAT; c++) x->mem_cat[c] = s_cat[c] / d;
        x->peak_rss = s_rss / d;
        x->forgetting = n_forg ? s_forg / n_forg : NAN;
        double s_avg = 0;
        int n_avg = 0, missing = 0;
        for (int k = 0; k < t->n_tasks; k++) {
            pb_table_cell *c = &x->cell[k];
            pb_boot_entry *e = &ent[n_ent];
            fill_cell(r, backbone, x->method, t->spec[k], t->higher[k], t->scale[k], have_task[k] ? bt[k].width : 0, c, e);
            if (c->eval_max) t->any_eval_max = 1;
            if (e->n_seeds && have_task[k] && c->n_test == bt[k].n_ex) {
                e->task = k;
                c->entry = n_ent++;
            } else {
                c->n_test = 0;
            }
            if (c->n > t->n_seeds_max && !x->reference) t->n_seeds_max = c->n;
            t->any_edge |= c->lr_edge && isfinite(c->mean);
            if (!t->higher[k]) continue;
            if (isfinite(c->mean)) s_avg += c->mean, n_avg++;
            else missing = 1;
        }
        x->avg = n_avg && !missing ? s_avg / n_avg : NAN;
        x->avg_lo = x->avg_hi = x->avg_full_lo = x->avg_full_hi = x->avg_full_p = NAN;
        x->avg_best_lo = x->avg_best_hi = x->avg_best_p = NAN;
    }
    /* the bootstrap: intervals, then comparisons with full and with the best of each column */
    if (n_ent) {
        t->boot = calloc(1, sizeof *t->boot);
        pb_status st = t->boot ? pb_boot_run(t->boot, bt, t->n_tasks, ent, n_ent, PB_BOOT_B, 20241207)
                               : pb_errorf(PB_ENOMEM, "out of memory");
        if (st) {
            free(ent);
            pb_table_free(t);
            return pb_error_context(st, "table of backbone %s", backbone);
        }
        t->any_intervals = 1;
    }
    free(ent);
    for (int k = 0; k < t->n_tasks; k++) {
        int best = -1;
        for (int i = 0; i < t->n_rows; i++) {
            const pb_table_cell *c = &t->rows[i].cell[k];
            if (t->rows[i].reference || !isfinite(c->mean)) continue;
            if (best < 0 || (t->higher[k] ? c->mean > t->rows[best].cell[k].mean : c->mean < t->rows[best].cell[k].mean))
                best = i;
        }
        if (best >= 0) t->rows[best].cell[k].best = t->rows[best].cell[k].tied_best = 1;
        for (int i = 0; i < t->n_rows; i++) {
            pb_table_cell *c = &t->rows[i].cell[k];
            if (c->entry < 0) continue;
            pb_boot_interval(t->boot, c->entry, &c->lo, &c->hi);
            c->lo *= t->scale[k], c->hi *= t->scale[k];
            if (t->full >= 0 && i != t->full && t->rows[t->full].cell[k].entry >= 0 &&
                pb_boot_diff(t->boot, c->entry, t->rows[t->full].cell[k].entry, &c->full_lo, &c->full_hi, &c->full_p)) {
                c->full_lo *= t->scale[k], c->full_hi *= t->scale[k];
                c->tied_full = c->full_lo <= 0 && c->full_hi >= 0;
            }
            if (best >= 0 && i != best && !t->rows[i].reference && t->rows[best].cell[k].entry >= 0 &&
                pb_boot_diff(t->boot, c->entry, t->rows[best].cell[k].entry, &c->best_lo, &c->best_hi, &c->best_p)) {
                c->best_lo *= t->scale[k], c->best_hi *= t->scale[k];
                c->tied_best = c->best_lo <= 0 && c->best_hi >= 0;
            }
        }
    }
    /* the average: its interval, the best row, ties */
    int es[PB_TABLE_MAX_TASKS], nk = 0;
    for (int i = 0; i < t->n_rows; i++) {
        pb_table_row *x = &t->rows[i];
        if (!x->reference && isfinite(x->avg) && (t->avg_best < 0 || x->avg > t->rows[t->avg_best].avg)) t->avg_best = i;
        if (!t->boot || !isfinite(x->avg)) continue;
        nk = 0;
        int ok = 1;
        for (int k = 0; k < t->n_tasks; k++)
            if (t->higher[k]) {
                ok &= x->cell[k].entry >= 0;
                es[nk++] = x->cell[k].entry;
            }
        if (ok && nk) {
            double scale = t->scale[0];
            for (int k = 0; k < t->n_tasks; k++) /* mixed scales (chrF next to acc): the shown average */
                if (t->higher[k] && t->scale[k] != scale) ok = 0;
            if (ok) {
                pb_boot_avg(t->boot, es, NULL, nk, &x->avg_lo, &x->avg_hi, NULL);
                x->avg_lo *= scale, x->avg_hi *= scale;
            }
        }
    }
    if (t->avg_best >= 0) t->rows[t->avg_best].avg_best = t->rows[t->avg_best].avg_tied_best = 1;
    for (int i = 0; i < t->n_rows; i++) {
        pb_table_row *x = &t->rows[i];
        if (t->full >= 0 && i != t->full && pb_table_avg_diff(t, i, t->full, &x->avg_full_lo, &x->avg_full_hi, &x->avg_full_p))
            x->avg_tied_full = x->avg_full_lo <= 0 && x->avg_full_hi >= 0;
        if (t->avg_best >= 0 && i != t->avg_best && !x->reference &&
            pb_table_avg_diff(t, i, t->avg_best, &x->avg_best_lo, &x->avg_best_hi, &x->avg_best_p))
            x->avg_tied_best = x->avg_best_lo <= 0 && x->avg_best_hi >= 0;
    }
    return PB_OK;
}

int pb_table_avg_diff(const pb_table *t, int i, int j, double *lo, double *hi, double *p) {
    *lo = *hi = *p = NAN;
    if (!t->boot || i < 0 || j < 0 || i >= t->n_rows || j >= t->n_rows) return 0;
    int a[PB_TABLE_MAX_TASKS], b[PB_TABLE_MAX_TASKS], n = 0;
    double scale = NAN;
    for (int k = 0; k < t->n_tasks; k++) {
        if (!t->higher[k]) continue;
        if (t->rows[i].cell[k].entry < 0 || t->rows[j].cell[k].entry < 0) return 0;
        if (isfinite(scale) && t->scale[k] != scale) return 0;
        scale = t->scale[k];
        a[n] = t->rows[i].cell[k].entry;
        b[n++] = t->rows[j].cell[k].entry;
    }
    if (!n || !pb_boot_avg(t->boot, a, b, n, lo, hi, p)) return 0;
    *lo *= scale, *hi *= scale;
    return 1;
}

/* ---- output ---------------------------------------------------------------------------------- */

void pb_table_default_opts(pb_table_opts *o) {
    memset(o, 0, sizeof *o);
    o->format = PB_TABLE_MD;
    o->params = o->flops = o->memory = o->tasks = o->avg = 1;
}

pb_status pb_table_parse_columns(const char *list, pb_table_opts *o) {
    o->params = o->flops = o->memory = o->tasks = o->avg = o->forgetting = o->show_lr = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "params")) o->params = 1;
        else if (!strcmp(tok, "flops")) o->flops = 1;
        else if (!strcmp(tok, "memory")) o->memory = 1;
        else if (!strcmp(tok, "tasks")) o->tasks = 1;
        else if (!strcmp(tok, "avg")) o->avg = 1;
        else if (!strcmp(tok, "forgetting")) o->forgetting = 1;
        else if (!strcmp(tok, "lr")) o->show_lr = 1;
        else
            return pb_errorf(PB_EINVAL, "--columns: unknown column '%s' (accepted: params, flops, memory, tasks, avg, "
                                        "forgetting, lr)",
                             tok);
    }
    return PB_OK;
}

typedef struct {
    FILE *f;
    const pb_table_opts *o;
    const pb_table *t;
} out;

/* Text of a LaTeX-escaped string. */
static void tex_escape(char *dst, size_t cap, const char *s) {
    size_t k = 0;
    for (; *s && k + 8 < cap; s++) {
        if (strchr("_%&#$", *s)) dst[k++] = '\\', dst[k++] = *s;
        else if (*s == '~' || *s == '^') k += (size_t)snprintf(dst + k, cap - k, "\\textasciitilde{}");
        else dst[k++] = *s;
    }
    dst[k] = '\0';
}

static void fmt_real(char *buf, size_t cap, double v) {
    if (!isfinite(v)) snprintf(buf, cap, "nan");
    else snprintf(buf, cap, "%.6g", v);
}

static const char *lr_text(char *buf, size_t cap, double lr) {
    snprintf(buf, cap, "%.3g", lr);
    return buf;
}

/* A cell of the table as text in the output's format. kind: 0 pct, 1 flops, 2 memory, 3 task k,
 * 4 avg, 5 forgetting. */
static void cell_text(const out *w, const pb_table_row *x, int kind, int k, char *buf, size_t cap) {
    const pb_table *t = w->t;
    int tex = w->o->format == PB_TABLE_TEX;
    const char *dash = tex ? "--" : "–";
    const pb_table_row *full = t->full >= 0 ? &t->rows[t->full] : NULL;
    buf[0] = '\0';
    switch (kind) {
    case 0:
        if (isfinite(x->pct_trainable)) snprintf(buf, cap, "%.3g", x->pct_trainable);
        break;
    case 1:
    case 2: {
        double v = kind == 1 ? x->flops_train : x->mem_peak, ref = !full ? NAN : kind == 1 ? full->flops_train : full->mem_peak;
        if (!isfinite(v)) break;
        if (isfinite(ref) && ref > 0) snprintf(buf, cap, tex ? "%.2f$\\times$" : "%.2f×", v / ref);
        else if (kind == 1) snprintf(buf, cap, "%.3g", v);
        else snprintf(buf, cap, "%.1f MiB", v / 1048576.0);
        break;
    }
    case 3:
    case 4: {
        const pb_table_cell *c = kind == 3 ? &x->cell[k] : NULL;
        double mean = c ? c->mean : x->avg, lo = c ? c->lo : x->avg_lo, hi = c ? c->hi : x->avg_hi;
        int bold = c ? c->tied_best : x->avg_tied_best, tied_full = c ? c->tied_full : x->avg_tied_full;
        if (!isfinite(mean)) break;
        if (x->reference) bold = 0;
        size_t n = 0;
        if (bold) n += (size_t)snprintf(buf + n, cap - n, tex ? "\\textbf{" : "**");
        n += (size_t)snprintf(buf + n, cap - n, "%.1f", mean);
        if (isfinite(lo) && isfinite(hi) && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, tex ? "\\,$\\pm$\\,%.1f" : " ±%.1f", (hi - lo) / 2);
        if (bold && n < cap) n += (size_t)snprintf(buf + n, cap - n, tex ? "}" : "**");
        if (tied_full && n < cap) n += (size_t)snprintf(buf + n, cap - n, tex ? "$^{\\approx}$" : " ≈");
        if (c && c->lr_edge && n < cap) n += (size_t)snprintf(buf + n, cap - n, tex ? "\\textsuperscript{\\dag}" : "†");
        if (c && c->n < t->n_seeds_max && !x->reference && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, tex ? " {\\scriptsize(n=%d)}" : " (n=%d)", c->n);
        char lr[32];
        if (c && w->o->show_lr && !x->reference && n < cap)
            snprintf(buf + n, cap - n, tex ? " {\\scriptsize(%s)}" : " (%s)", lr_text(lr, sizeof lr, c->lr));
        break;
    }
    case 5:
        if (isfinite(x->forgetting)) snprintf(buf, cap, "%+.3f", x->forgetting);
        break;
    }
    if (!buf[0]) snprintf(buf, cap, "%s", dash);
}

static void header_text(const out *w, int kind, int k, char *buf, size_t cap) {
    const pb_table *t = w->t;
    int tex = w->o->format == PB_TABLE_TEX, rel = t->full >= 0;
    switch (kind) {
    case 0: snprintf(buf, cap, tex ? "\\%% params" : "%% params"); break;
    case 1: snprintf(buf, cap, "%s", rel ? "FLOPs/token" : "FLOPs/token"); break;
    case 2: snprintf(buf, cap, "%s", "Peak memory"); break;
    case 3: {
        char name[2 * PB_RES_NAME];
        if (tex) tex_escape(name, sizeof name, t->task[k]);
        else snprintf(name, sizeof name, "%s", t->task[k]);
        snprintf(buf, cap, "%s (%s%s)", name, t->metric[k], t->higher[k] ? "" : tex ? " $\\downarrow$" : " ↓");
        break;
    }
    case 4: snprintf(buf, cap, "Avg"); break;
    case 5: snprintf(buf, cap, tex ? "Forgetting (bits/byte)" : "Forgetting (bits/byte)"); break;
    }
}

/* The shown columns after "Method", as (kind, task index) pairs; returns their number. */
static int columns(const pb_table_opts *o, const pb_table *t, int *kinds, int *ks) {
    int n = 0;
    if (o->params) kinds[n] = 0, ks[n++] = 0;
    if (o->flops) kinds[n] = 1, ks[n++] = 0;
    if (o->memory) kinds[n] = 2, ks[n++] = 0;
    if (o->tasks)
        for (int k = 0; k < t->n_tasks; k++) kinds[n] = 3, ks[n++] = k;
    if (o->avg) kinds[n] = 4, ks[n++] = 0;
    if (o->forgetting) kinds[n] = 5, ks[n++] = 0;
    return n;
}

static void write_notes(const out *w, const char *pre, const char *post) {
    const pb_table *t = w->t;
    FILE *f = w->f;
    int tex = w->o->format == PB_TABLE_TEX;
    const char *pm = tex ? "$\\pm$" : "±", *approx = tex ? "$^{\\approx}$" : "≈";
    const char *pct = tex ? "\\%" : "%"; /* a bare % starts a LaTeX comment (it ate the caption's brace) */
    fprintf(f, "%sBackbone %s. Test metric%s at the learning rate with the best mean dev metric for each method "
               "and task, ",
            pre, t->backbone, tex ? " ($\\times$100 for fractions)" : " (×100 for fractions)");
    if (t->n_seeds_max > 1) fprintf(f, "mean over %d seeds", t->n_seeds_max);
    else fprintf(f, "one seed");
    if (t->any_intervals) {
        fprintf(f, " %s half the width of its 95%s bootstrap interval (%s; docs/STATISTICS.md)", pm, pct,
                t->n_seeds_max > 1 ? "test examples and seeds resampled"
                                   : "test examples resampled: with one seed it does not cover seed-to-seed variation");
        fprintf(f, "; %s: the best method of the column and those not significantly different from it; %s: not "
                   "significantly different from full fine-tuning (paired bootstrap on the same examples and seeds, "
                   "95%s)",
                tex ? "bold" : "**bold**", approx, pct);
    }
    fprintf(f, ". Test sets: ");
    int any_n = 0;
    for (int k = 0; k < t->n_tasks; k++)
        if (t->n_test[k]) {
            char name[2 * PB_RES_NAME];
            if (tex) tex_escape(name, sizeof name, t->task[k]);
            else snprintf(name, sizeof name, "%s", t->task[k]);
            fprintf(f, "%s%s %zu", any_n++ ? ", " : "", name, t->n_test[k]);
        }
    fprintf(f, "%s examples%s.", any_n ? "" : "no records of test", t->any_eval_max ? " (some cells capped at eval_max)" : "");
    if (w->o->flops || w->o->memory) {
        const char *what = w->o->flops && w->o->memory ? "FLOPs per training token and peak tracked memory"
                           : w->o->flops               ? "FLOPs per training token"
                                                       : "Peak tracked memory";
        if (t->full >= 0) fprintf(f, " %s relative to full fine-tuning (per real token: virtual tokens not counted).", what);
        else fprintf(f, " %s (no full fine-tuning in the results to compare with).", what);
    }
    for (int i = 0; i < t->n_rows; i++)
        if (t->rows[i].setup_steps > 0) {
            char lab[2 * PB_RES_NAME];
            if (tex) tex_escape(lab, sizeof lab, t->rows[i].label);
            else snprintf(lab, sizeof lab, "%s", t->rows[i].label);
            fprintf(f, " %s spent the first %d steps of its budget choosing its trainable set (Fisher information).",
                    lab, t->rows[i].setup_steps);
        }
    if (w->o->forgetting) fprintf(f, " Forgetting: change of held-out pretraining-corpus bits per byte.");
    if (w->o->avg && t->excluded_from_avg) fprintf(f, " Avg leaves out lower-is-better metrics.");
    for (int i = 0; i < t->n_rows; i++)
        if (t->rows[i].reference) {
            fprintf(f, " Reference rows use no backbone and are never ranked.");
            break;
        }
    if (t->any_edge && w->o->tasks)
        fprintf(f, " %s: the chosen learning rate is at the edge of the grid tried; the optimum may lie outside it.",
                tex ? "\\dag" : "†");
    fprintf(f, "%s", post);
}

static void write_md(const out *w) {
    const pb_table *t = w->t;
    FILE *f = w->f;
    char buf[256];
    int kinds[PB_TABLE_MAX_TASKS + 8], ks[PB_TABLE_MAX_TASKS + 8], nc = columns(w->o, t, kinds, ks);
    fprintf(f, "| Method |");
    for (int c = 0; c < nc; c++) {
        header_text(w, kinds[c], ks[c], buf, sizeof buf);
        fprintf(f, " %s |", buf);
    }
    fprintf(f, "\n|:--|");
    for (int c = 0; c < nc; c++) fprintf(f, "--:|");
    fprintf(f, "\n");
    int cat = -1;
    for (int i = 0; i < t->n_rows; i++) {
        const pb_table_row *x = &t->rows[i];
        if (x->category_index != cat) {
            cat = x->category_index;
            fprintf(f, "| *%s* |", x->category);
            for (int c = 0; c < nc; c++) fprintf(f, " |");
            fprintf(f, "\n");
        }
        fprintf(f, "| %s |", x->label);
        for (int c = 0; c < nc; c++) {
            cell_text(w, x, kinds[c], ks[c], buf, sizeof buf);
            fprintf(f, " %s |", buf);
        }
        fprintf(f, "\n");
    }
    write_notes(w, "\n", "\n");
}

static void write_tex(const out *w) {
    const pb_table *t = w->t;
    FILE *f = w->f;
    char buf[256], esc[256];
    int kinds[PB_TABLE_MAX_TASKS + 8], ks[PB_TABLE_MAX_TASKS + 8], ncol = columns(w->o, t, kinds, ks);
    int nc = ncol + 1;
    fprintf(f, "%% peftbench table (booktabs): \\usepackage{booktabs}\n\\begin{table}[t]\n\\centering\n\\small\n");
    fprintf(f, "\\begin{tabular}{l");
    for (int i = 1; i < nc; i++) fputc('r', f);
    fprintf(f, "}\n\\toprule\nMethod");
    for (int c = 0; c < ncol; c++) {
        header_text(w, kinds[c], ks[c], buf, sizeof buf);
        fprintf(f, " & %s", buf);
    }
    fprintf(f, " \\\\\n\\midrule\n");
    int cat = -1;
    for (int i = 0; i < t->n_rows; i++) {
        const pb_table_row *x = &t->rows[i];
        if (x->category_index != cat) {
            if (cat >= 0) fprintf(f, "\\addlinespace\n");
            cat = x->category_index;
            tex_escape(esc, sizeof esc, x->category);
            fprintf(f, "\\multicolumn{%d}{l}{\\textit{%s}} \\\\\n", nc, esc);
        }
        tex_escape(esc, sizeof esc, x->label);
        fprintf(f, "%s", esc);
        for (int c = 0; c < ncol; c++) {
            cell_text(w, x, kinds[c], ks[c], buf, sizeof buf);
            fprintf(f, " & %s", buf);
        }
        fprintf(f, " \\\\\n");
    }
    fprintf(f, "\\bottomrule\n\\end{tabular}\n");
    write_notes(w, "\\caption{", "}\n");
    fprintf(f, "\\end{table}\n");
}

static void csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

static void write_csv(const out *w) {
    const pb_table *t = w->t;
    FILE *f = w->f;
    char buf[64];
    const pb_table_row *full = t->full >= 0 ? &t->rows[t->full] : NULL;
    static const char *const col[] = {"mean", "ci_lo", "ci_hi", "n", "n_test", "std", "dev_mean", "lr", "lr_edge",
                                      "diff_full_lo", "diff_full_hi", "p_full", "diff_best_lo", "diff_best_hi",
                                      "p_best", "tied_best", "tied_full"};
    enum { NCOL = sizeof col / sizeof col[0] };
    fprintf(f, "backbone,category,method,cells_ok,pct_trainable,flops_per_token,flops_rel_full,peak_memory_bytes,"
               "memory_rel_full,forgetting_bits_per_byte");
    for (int k = 0; k < t->n_tasks; k++)
        for (int c = 0; c < NCOL; c++) {
            fputc(',', f);
            char name[160];
            snprintf(name, sizeof name, "%s.%s.%s", t->task[k], t->metric[k], col[c]);
            csv_field(f, name);
        }
    fprintf(f, ",avg,avg.ci_lo,avg.ci_hi,avg.diff_full_lo,avg.diff_full_hi,avg.p_full,avg.diff_best_lo,"
               "avg.diff_best_hi,avg.p_best,avg.tied_best,avg.tied_full\n");
    for (int i = 0; i < t->n_rows; i++) {
        const pb_table_row *x = &t->rows[i];
        csv_field(f, t->backbone);
        fputc(',', f);
        csv_field(f, x->category);
        fputc(',', f);
        csv_field(f, x->label);
        fprintf(f, ",%d", x->n_ok);
        double v[6] = {x->pct_trainable, x->flops_train, full ? x->flops_train / full->flops_train : NAN, x->mem_peak,
                       full ? x->mem_peak / full->mem_peak : NAN, x->forgetting};
        for (int c = 0; c < 6; c++) {
            fmt_real(buf, sizeof buf, v[c]);
            fprintf(f, ",%s", buf);
        }
        for (int k = 0; k < t->n_tasks; k++) {
            const pb_table_cell *c = &x->cell[k];
            double u[NCOL] = {c->mean, c->lo, c->hi, (double)c->n, (double)c->n_test, c->std, c->dev_mean,
                              x->reference ? NAN : c->lr, c->lr_edge, c->full_lo, c->full_hi, c->full_p, c->best_lo,
                              c->best_hi, c->best_p, c->tied_best && !x->reference, c->tied_full};
            for (int j = 0; j < NCOL; j++) {
                fmt_real(buf, sizeof buf, u[j]);
                fprintf(f, ",%s", buf);
            }
        }
        double a[11] = {x->avg, x->avg_lo, x->avg_hi, x->avg_full_lo, x->avg_full_hi, x->avg_full_p, x->avg_best_lo,
                        x->avg_best_hi, x->avg_best_p, x->avg_tied_best && !x->reference, x->avg_tied_full};
        for (int j = 0; j < 11; j++) {
            fmt_real(buf, sizeof buf, a[j]);
            fprintf(f, "%s%s", j ? "," : ",", buf);
        }
        fputc('\n', f);
    }
}

void pb_table_write(FILE *f, const pb_table *t, const pb_table_opts *o) {
    out w = {f, o, t};
    if (o->format == PB_TABLE_MD) write_md(&w);
    else if (o->format == PB_TABLE_TEX) write_tex(&w);
    else write_csv(&w);
}
