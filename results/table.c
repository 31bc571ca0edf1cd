/* table.c — the survey-style table (see table.h for the rules). */
#include "table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The survey's categories in table order (methods/method.h PB_CATEGORY_MAP; results/ does not
 * depend on methods/, rows carry the name). */
static const char *const g_categories[] = {"selective", "additive", "prompt", "reparameterization", "hybrid"};
#define N_CATEGORIES 5

static int category_index(const char *c) {
    for (int i = 0; i < N_CATEGORIES; i++)
        if (!strcmp(c, g_categories[i])) return i;
    return N_CATEGORIES;
}

/* Metrics already on a 0-100 scale; everything else is a fraction shown x100. */
static double metric_scale(const char *m) { return !strcmp(m, "chrf") ? 1.0 : 100.0; }

int pb_table_backbones(const pb_res *r, char names[][PB_RES_NAME], int cap) {
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        int seen = 0;
        for (int k = 0; k < n && k < cap && !seen; k++) seen = !strcmp(names[k], r->rows[i].backbone_name);
        if (seen) continue;
        if (n < cap) snprintf(names[n], PB_RES_NAME, "%s", r->rows[i].backbone_name);
        n++;
    }
    return n;
}

void pb_table_free(pb_table *t) {
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One (row, task) entry: the learning rate chosen on dev, the test statistics there. */
static void fill_cell(const pb_res *r, const char *backbone, const char *method, const char *task, int higher,
                      double scale, pb_table_cell *c) {
    c->mean = c->std = c->dev_mean = c->lr = NAN;
    c->n = c->n_lrs = c->lr_edge = 0;
    double lrs[256];
    int n_lrs = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (strcmp(w->backbone_name, backbone) || strcmp(w->method, method) || strcmp(w->task, task)) continue;
        int seen = 0;
        for (int k = 0; k < n_lrs && !seen; k++) seen = lrs[k] == w->lr;
        if (!seen && n_lrs < 256) lrs[n_lrs++] = w->lr;
    }
    if (!n_lrs) return;
    qsort(lrs, (size_t)n_lrs, sizeof lrs[0], cmp_double);
    c->n_lrs = n_lrs;
    int best = -1;
    double best_dev = NAN;
    for (int k = 0; k < n_lrs; k++) {
        double sum = 0;
        int n = 0, eligible = 1;
        for (size_t i = 0; i < r->n; i++) {
            const pb_res_row *w = &r->rows[i];
            if (w->lr != lrs[k] || strcmp(w->backbone_name, backbone) || strcmp(w->method, method) ||
                strcmp(w->task, task))
                continue;
            if (strcmp(w->status, "ok") || !isfinite(w->dev_metric)) eligible = 0;
            else sum += w->dev_metric, n++;
        }
        if (!eligible || !n) continue;
        double dev = sum / n;
        if (best < 0 || (higher ? dev > best_dev : dev < best_dev)) best = k, best_dev = dev;
    }
    if (best < 0) return;
    double sum = 0, sq = 0;
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (w->lr != lrs[best] || strcmp(w->backbone_name, backbone) || strcmp(w->method, method) ||
            strcmp(w->task, task))
            continue;
        sum += w->test_metric * scale;
        n++;
    }
    c->mean = sum / n;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (w->lr != lrs[best] || strcmp(w->backbone_name, backbone) || strcmp(w->method, method) ||
            strcmp(w->task, task))
            continue;
        double d = w->test_metric * scale - c->mean;
        sq += d * d;
    }
    c->std = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    c->n = n;
    c->dev_mean = best_dev * scale;
    c->lr = lrs[best];
    c->lr_edge = n_lrs >= 2 && (best == 0 || best == n_lrs - 1);
}

pb_status pb_table_build(const pb_res *r, const char *backbone, const char *tasks, pb_table *t) {
    memset(t, 0, sizeof *t);
    t->full = -1;
    snprintf(t->backbone, sizeof t->backbone, "%s", backbone);
    /* task columns: the task specs of this backbone's rows, in first-appearance order */
    char specs[PB_TABLE_MAX_TASKS][PB_RES_SPEC];
    int any = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (strcmp(w->backbone_name, backbone)) continue;
        any = 1;
        int k = 0;
        while (k < t->n_tasks && strcmp(specs[k], w->task)) k++;
        if (k == t->n_tasks) {
            if (t->n_tasks == PB_TABLE_MAX_TASKS)
                return pb_errorf(PB_EINVAL, "more than %d tasks for backbone %s: choose some with --tasks",
                                 PB_TABLE_MAX_TASKS, backbone);
            snprintf(specs[k], sizeof specs[k], "%s", w->task);
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
            if (a != b && !strcmp(t->task[a], t->task[b])) snprintf(t->task[a], sizeof t->task[a], "%.63s", specs[a]);
    if (tasks && *tasks) {
        char want[PB_TABLE_MAX_TASKS][PB_RES_SPEC], names[PB_TABLE_MAX_TASKS][PB_RES_NAME], mets[PB_TABLE_MAX_TASKS][PB_RES_SHORT];
        int hi[PB_TABLE_MAX_TASKS], n = 0;
        double sc[PB_TABLE_MAX_TASKS];
        char buf[2048];
        snprintf(buf, sizeof buf, "%s", tasks);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int k = 0;
            while (k < t->n_tasks && strcmp(t->task[k], tok) && strcmp(specs[k], tok)) k++;
            if (k == t->n_tasks) {
                char have[1024] = "";
                size_t m = 0;
                for (int j = 0; j < t->n_tasks && m < sizeof have; j++)
                    m += (size_t)snprintf(have + m, sizeof have - m, "%s%s", j ? ", " : "", t->task[j]);
                return pb_errorf(PB_EINVAL, "--tasks: no task '%s' for backbone %s (the results have: %s)", tok,
                                 backbone, have);
            }
            if (n == PB_TABLE_MAX_TASKS) return pb_errorf(PB_EINVAL, "--tasks: too many tasks");
            snprintf(want[n], sizeof want[n], "%s", specs[k]);
            snprintf(names[n], sizeof names[n], "%s", t->task[k]);
            snprintf(mets[n], sizeof mets[n], "%s", t->metric[k]);
            hi[n] = t->higher[k];
            sc[n] = t->scale[k];
            n++;
        }
        t->n_tasks = n;
        for (int k = 0; k < n; k++) {
            snprintf(specs[k], sizeof specs[k], "%s", want[k]);
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
    /* rows: method labels of this backbone, first-appearance order, then grouped by category */
    int cap = 16;
    t->rows = calloc((size_t)cap, sizeof *t->rows);
    if (!t->rows) return pb_errorf(PB_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (strcmp(w->backbone_name, backbone)) continue;
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
    for (int i = 0; i < t->n_rows; i++) {
        pb_table_row *x = &t->rows[i];
        if (!strcmp(x->method_name, "full") && t->full < 0) t->full = i;
        double s_pct = 0, s_fl = 0, s_ph[3] = {0}, s_mem = 0, s_cat[PB_MEM_NCAT] = {0}, s_rss = 0, s_forg = 0;
        int n = 0, n_forg = 0;
        for (size_t j = 0; j < r->n; j++) {
            const pb_res_row *w = &r->rows[j];
            if (strcmp(w->backbone_name, backbone) || strcmp(w->method, x->method) || strcmp(w->status, "ok"))
                continue;
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
            fill_cell(r, backbone, x->method, specs[k], t->higher[k], t->scale[k], &x->cell[k]);
            if (x->cell[k].n > t->n_seeds_max) t->n_seeds_max = x->cell[k].n;
            t->any_edge |= x->cell[k].lr_edge && isfinite(x->cell[k].mean);
            if (!t->higher[k]) continue;
            if (isfinite(x->cell[k].mean)) s_avg += x->cell[k].mean, n_avg++;
            else missing = 1;
        }
        x->avg = n_avg && !missing ? s_avg / n_avg : NAN;
    }
    return PB_OK;
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
    case 3: {
        const pb_table_cell *c = &x->cell[k];
        if (!isfinite(c->mean)) break;
        size_t n = (size_t)snprintf(buf, cap, "%.1f", c->mean);
        if (c->n > 1 && n < cap) n += (size_t)snprintf(buf + n, cap - n, tex ? "\\,$\\pm$\\,%.1f" : " ± %.1f", c->std);
        if (c->lr_edge && n < cap) n += (size_t)snprintf(buf + n, cap - n, tex ? "\\textsuperscript{\\dag}" : "†");
        char lr[32];
        if (w->o->show_lr && n < cap) snprintf(buf + n, cap - n, tex ? " {\\scriptsize(%s)}" : " (%s)", lr_text(lr, sizeof lr, c->lr));
        break;
    }
    case 4:
        if (isfinite(x->avg)) snprintf(buf, cap, "%.1f", x->avg);
        break;
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
    char seeds[64];
    if (t->n_seeds_max > 1) snprintf(seeds, sizeof seeds, "mean%s over seeds (up to %d)", tex ? "\\,$\\pm$\\,std" : " ± std", t->n_seeds_max);
    else snprintf(seeds, sizeof seeds, "one seed");
    fprintf(f, "%sBackbone %s. Test metric%s at the learning rate with the best mean dev metric for each method "
               "and task; %s.",
            pre, t->backbone, tex ? " ($\\times$100 for fractions)" : " (×100 for fractions)", seeds);
    if (w->o->flops || w->o->memory) {
        const char *what = w->o->flops && w->o->memory ? "FLOPs per training token and peak tracked memory"
                           : w->o->flops               ? "FLOPs per training token"
                                                       : "Peak tracked memory";
        if (t->full >= 0) fprintf(f, " %s relative to full fine-tuning.", what);
        else fprintf(f, " %s (no full fine-tuning in the results to compare with).", what);
    }
    if (w->o->forgetting) fprintf(f, " Forgetting: change of held-out pretraining-corpus bits per byte.");
    if (w->o->avg && t->excluded_from_avg) fprintf(f, " Avg leaves out lower-is-better metrics.");
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
    fprintf(f, "backbone,category,method,cells_ok,pct_trainable,flops_per_token,flops_rel_full,peak_memory_bytes,"
               "memory_rel_full,forgetting_bits_per_byte");
    for (int k = 0; k < t->n_tasks; k++) {
        const char *col[] = {"mean", "std", "n", "dev_mean", "lr", "lr_edge"};
        for (int c = 0; c < 6; c++) {
            fputc(',', f);
            char name[160];
            snprintf(name, sizeof name, "%s.%s.%s", t->task[k], t->metric[k], col[c]);
            csv_field(f, name);
        }
    }
    fprintf(f, ",avg\n");
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
            double u[5] = {c->mean, c->std, (double)c->n, c->dev_mean, c->lr};
            for (int j = 0; j < 5; j++) {
                fmt_real(buf, sizeof buf, u[j]);
                fprintf(f, ",%s", buf);
            }
            fprintf(f, ",%d", c->lr_edge);
        }
        fmt_real(buf, sizeof buf, x->avg);
        fprintf(f, ",%s\n", buf);
    }
}

void pb_table_write(FILE *f, const pb_table *t, const pb_table_opts *o) {
    out w = {f, o, t};
    if (o->format == PB_TABLE_MD) write_md(&w);
    else if (o->format == PB_TABLE_TEX) write_tex(&w);
    else write_csv(&w);
}
