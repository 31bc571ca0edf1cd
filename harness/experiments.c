/* experiments.c — EXPERIMENTS.md sections from results (see experiments.h). */
#include "pb_fs.h"
#include "experiments.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "optim.h"
#include "results/table.h"

static int cmp_real(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- small helpers ----------------------------------------------------------------------------- */

static pb_status copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb");
    if (!a) return pb_errorf(PB_EIO, "%s: cannot read: %s", from, strerror(errno));
    FILE *b = fopen(to, "wb");
    if (!b) {
        fclose(a);
        return pb_errorf(PB_EIO, "%s: cannot write: %s", to, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) ok &= fwrite(buf, 1, n, b) == n;
    fclose(a);
    if (fclose(b) != 0 || !ok) return pb_errorf(PB_EIO, "%s: write failed", to);
    return PB_OK;
}

/* Reads a whole file ("" when missing). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    if (s) {
        size_t k = fread(s, 1, (size_t)(n > 0 ? n : 0), f);
        s[k] = '\0';
    }
    fclose(f);
    return s;
}

/* Index of the row of the table whose method_name is `name` with the best average (-1 if none). */
static int method_row(const pb_table *t, const char *name) {
    int best = -1;
    for (int i = 0; i < t->n_rows; i++) {
        const pb_table_row *x = &t->rows[i];
        if (strcmp(x->method_name, name) || !isfinite(x->avg)) continue;
        if (best < 0 || x->avg > t->rows[best].avg) best = i;
    }
    return best;
}

static const pb_table *g_sort_table; /* qsort has no context argument */
static int cmp_avg_desc(const void *a, const void *b) {
    const pb_table_row *x = &g_sort_table->rows[*(const int *)a], *y = &g_sort_table->rows[*(const int *)b];
    return (x->avg < y->avg) - (x->avg > y->avg);
}

/* ---- the findings ------------------------------------------------------------------------------ */

/* The equivalence margin of the literature checks, in points of Avg (docs/STATISTICS.md). */
#define CLAIM_MARGIN 2.0

/* A claim about a paired difference d = a - b (on Avg), decided on its 95% interval [lo, hi] and
 * the margin m: PARITY (|d| small) agrees when the interval lies inside [-m, m] and disagrees when
 * it lies entirely outside; BEHIND (a < b) agrees when the interval lies entirely below 0 and
 * disagrees when it lies entirely above -m (a is not behind by anything that matters); anything
 * else is inconclusive. */
enum { CLAIM_PARITY, CLAIM_BEHIND };
static const char *verdict(int claim, double lo, double hi) {
    if (!isfinite(lo) || !isfinite(hi)) return "inconclusive (no interval)";
    if (claim == CLAIM_PARITY) {
        if (lo >= -CLAIM_MARGIN && hi <= CLAIM_MARGIN) return "agrees";
        if (hi < -CLAIM_MARGIN || lo > CLAIM_MARGIN) return "disagrees";
        return "inconclusive (the interval reaches beyond the margin)";
    }
    if (hi < 0) return "agrees";
    if (lo > -CLAIM_MARGIN) return "disagrees";
    return "inconclusive (the interval includes no difference)";
}

/* "a - b = +1.2 [−0.4, +2.9] points (p = 0.15)" from the table's paired test of their averages. */
static int avg_diff_text(const pb_table *t, int a, int b, char *buf, size_t cap, double *lo, double *hi) {
    double p;
    if (!pb_table_avg_diff(t, a, b, lo, hi, &p)) {
        *lo = *hi = NAN;
        snprintf(buf, cap, "%+.1f points (no interval: test records missing)", t->rows[a].avg - t->rows[b].avg);
        return 0;
    }
    snprintf(buf, cap, "%+.1f points, 95%% interval [%+.1f, %+.1f], p = %.3g", t->rows[a].avg - t->rows[b].avg, *lo, *hi,
             p);
    return 1;
}

/* One literature check: "- TITLE WHAT = a − b [interval]: **verdict** (margin).", naming the
 * backbone and budget choices (setting) when the run does not agree. */
static void claim_line(FILE *f, const pb_table *t, int a, int b, int claim, const char *title, const char *what,
                       const char *setting) {
    char d[256];
    double lo, hi;
    avg_diff_text(t, a, b, d, sizeof d, &lo, &hi);
    const char *v = verdict(claim, lo, hi);
    int agrees = !strncmp(v, "agrees", 6);
    fprintf(f, "- %s %s = %s: **%s**", title, what, d, v);
    if (claim == CLAIM_PARITY) fprintf(f, " (margin ±%.0f points)", CLAIM_MARGIN);
    fprintf(f, ".%s%s%s\n", agrees ? "" : " Choices that could explain it: ", agrees ? "" : setting, agrees ? "" : ".");
}

/* Is the budget enough? The dev metric of every chosen cell (each method at its chosen rate,
 * every seed) between its last two evaluations: a method whose dev metric still rises there
 * would gain from more steps, and the comparison is then one of speed as much as of quality. */
static void budget(FILE *f, const pb_table *t, const pb_res *res) {
    enum { CAP = 4096 };
    double gain[CAP];
    int n_gain = 0, n_methods = 0, n_rising = 0, step_a = 0, step_b = 0;
    const pb_res_row *sched_row = NULL;
    char rising[1024] = "";
    size_t rk = 0;
    for (int i = 0; i < t->n_rows; i++) {
        const pb_table_row *x = &t->rows[i];
        if (x->reference) continue;
        double sum = 0;
        int cnt = 0;
        for (int k = 0; k < t->n_tasks; k++) {
            const pb_table_cell *c = &x->cell[k];
            if (!isfinite(c->mean)) continue;
            for (size_t j = 0; j < res->n; j++) {
                const pb_res_row *w = &res->rows[j];
                if (!pb_table_chosen_cell(t, i, k, w) || w->n_evals < 2 || !w->eval_dev || !w->eval_step) continue;
                double g = ((double)w->eval_dev[w->n_evals - 1] - (double)w->eval_dev[w->n_evals - 2]) * t->scale[k];
                if (!t->higher[k]) g = -g;
                if (!isfinite(g)) continue;
                if (n_gain < CAP) gain[n_gain++] = g;
                sum += g, cnt++;
                step_a = w->eval_step[w->n_evals - 2], step_b = w->eval_step[w->n_evals - 1];
                sched_row = w;
            }
        }
        if (!cnt) continue;
        n_methods++;
        if (sum / cnt > 1.0) {
            n_rising++;
            if (rk < sizeof rising - 64)
                rk += (size_t)snprintf(rising + rk, sizeof rising - rk, "%s%s (%+.1f)", rk ? ", " : "", x->label, sum / cnt);
        }
    }
    if (!n_gain) return;
    qsort(gain, (size_t)n_gain, sizeof gain[0], cmp_real);
    int up = 0;
    for (int k = 0; k < n_gain; k++) up += gain[k] > 1.0;
    /* what the schedule ran between the two evaluations: with a decaying rate the last segment
     * moves little by construction, which the reader must know to weigh a flat end */
    char sched_note[256] = "";
    pb_decay decay;
    if (sched_row && pb_decay_parse(sched_row->schedule, &decay) == PB_OK && decay != PB_DECAY_CONSTANT) {
        pb_schedule s = pb_schedule_finetune(1.0f, (float)sched_row->warmup_frac, sched_row->steps, decay);
        snprintf(sched_note, sizeof sched_note, " (the %s schedule runs that segment at %.0f%% down to 0%% of the peak rate)",
                 sched_row->schedule, 100.0 * pb_schedule_lr(&s, step_a));
    } else {
        pb_error_clear();
    }
    fprintf(f,
            "- **Is the budget enough?** Between the last two dev evaluations (steps %d and %d%s) the dev metric of "
            "the %d chosen cells (each method at its chosen rate, every seed) changed by a median of %+.1f points "
            "(%+.1f to %+.1f; %d cells gained more than 1 point). %d of %d methods still gained more than 1 point "
            "on average over their cells%s%s%s\n",
            step_a, step_b, sched_note, n_gain, gain[n_gain / 2], gain[0], gain[n_gain - 1], up, n_rising, n_methods,
            n_rising ? ": " : "", rising,
            n_rising ? ". Those methods had not converged at this budget: their rows compare speed of learning as "
                       "much as what they can reach (the curves figures show where)."
                     : ": the dev curves are flat at the end, and more steps would not change the comparison much.");
}

static void findings(FILE *f, const pb_table *t, const pb_res *res) {
    int order[256], n = 0;
    for (int i = 0; i < t->n_rows && n < 256; i++)
        if (isfinite(t->rows[i].avg) && !t->rows[i].reference) order[n++] = i;
    g_sort_table = t;
    qsort(order, (size_t)n, sizeof order[0], cmp_avg_desc);
    if (!n) {
        fprintf(f, "- No method has a test metric on every task yet: nothing to compare.\n");
        return;
    }
    /* budget and backbone: every disagreement below may come from them */
    int steps = 0, batch = 0, max_len = 0;
    for (size_t i = 0; i < res->n; i++)
        if (!strcmp(res->rows[i].backbone_name, t->backbone)) {
            steps = res->rows[i].steps, batch = res->rows[i].batch, max_len = res->rows[i].max_len;
            break;
        }
    char setting[512];
    snprintf(setting, sizeof setting,
             "backbone `%s` (small, pretrained for minutes), %d steps × %d sequences of at most %d tokens per cell, "
             "learning rates from the spec's grid",
             t->backbone, steps, batch, max_len);

    /* groups of methods whose average is not significantly below their group's best */
    fprintf(f, "- **Ranking by average test metric, in groups** (backbone %s; a group holds the methods not "
               "significantly below its first, paired bootstrap, 95%%; the order within a group is noise): ",
            t->backbone);
    int lead = order[0], group = 1;
    fprintf(f, "**1.** %s %.1f", t->rows[lead].label, t->rows[lead].avg);
    for (int k = 1; k < n; k++) {
        const pb_table_row *x = &t->rows[order[k]];
        double lo, hi, p;
        int tied = pb_table_avg_diff(t, order[k], lead, &lo, &hi, &p) && hi >= 0;
        if (!tied && !t->boot) tied = 0; /* no records: every method its own group */
        if (!tied) {
            lead = order[k];
            fprintf(f, "; **%d.** %s %.1f", ++group, x->label, x->avg);
        } else {
            fprintf(f, ", %s %.1f", x->label, x->avg);
        }
    }
    fprintf(f, ".%s\n", t->boot ? "" : " (No test records in these results: no intervals, so no groups.)");

    int full = method_row(t, "full"), lora = method_row(t, "lora"), pt = method_row(t, "prompt_tuning");
    int head = method_row(t, "head"), bitfit = method_row(t, "bitfit");
    char d[256];
    double lo, hi;
    char what[256];
    if (full >= 0 && lora >= 0) {
        snprintf(what, sizeof what, "LoRA trains %.3g%% of the parameters; LoRA − full", t->rows[lora].pct_trainable);
        claim_line(f, t, lora, full, CLAIM_PARITY, "**LoRA vs. full fine-tuning** (Hu et al. 2021: on par).", what,
                   setting);
    }
    if (pt >= 0 && (full >= 0 || lora >= 0)) {
        double lo2 = NAN, hi2 = NAN;
        char d2[256] = "";
        if (full >= 0) avg_diff_text(t, pt, full, d, sizeof d, &lo, &hi);
        if (lora >= 0) avg_diff_text(t, pt, lora, d2, sizeof d2, &lo2, &hi2);
        const char *v1 = full >= 0 ? verdict(CLAIM_BEHIND, lo, hi) : "agrees";
        const char *v2 = lora >= 0 ? verdict(CLAIM_BEHIND, lo2, hi2) : "agrees";
        const char *v = !strncmp(v1, "agrees", 6) && !strncmp(v2, "agrees", 6)           ? "agrees"
                        : !strncmp(v1, "disagrees", 9) || !strncmp(v2, "disagrees", 9) ? "disagrees"
                                                                                        : "inconclusive";
        fprintf(f,
                "- **Prompt tuning behind LoRA and full fine-tuning at small scale** (Lester et al. 2021: far behind "
                "below billions of parameters).%s%s%s%s%s: **%s**.%s%s\n",
                full >= 0 ? " prompt tuning − full = " : "", full >= 0 ? d : "", full >= 0 && lora >= 0 ? "; " : "",
                lora >= 0 ? "prompt tuning − LoRA = " : "", lora >= 0 ? d2 : "", v,
                strcmp(v, "agrees") ? " Choices that could explain it: " : "", strcmp(v, "agrees") ? setting : "");
    }
    if (bitfit >= 0 && lora >= 0)
        claim_line(f, t, bitfit, lora, CLAIM_PARITY,
                   "**BitFit vs. LoRA** (Ben Zaken et al. 2022: bias-only tuning competitive on small-to-medium data).",
                   "BitFit − LoRA", setting);
    if (head >= 0 && full >= 0) {
        snprintf(what, sizeof what, "With %.3g%% of the parameters, head − full", t->rows[head].pct_trainable);
        claim_line(f, t, head, full, CLAIM_BEHIND,
                   "**Linear probe (`head`) vs. full fine-tuning** (frozen features alone fall short of adapting the "
                   "backbone).",
                   what, setting);
    }
    /* does the backbone add anything: the best method against the n-gram baseline */
    int ng = method_row(t, "ngram_nb"), best = order[0];
    if (ng >= 0) {
        avg_diff_text(t, best, ng, d, sizeof d, &lo, &hi);
        fprintf(f,
                "- **Does the pretrained backbone add anything?** Against naive Bayes on character and word n-grams "
                "(no backbone, same training examples), the best method (%s) is at %s: %s.",
                t->rows[best].label, d,
                isfinite(lo) && lo > 0 ? "significantly better" : isfinite(hi) && hi < 0 ? "significantly worse" : "not significantly different");
        int below = 0;
        for (int k = 0; k < n; k++) {
            double l, h, p;
            below += pb_table_avg_diff(t, order[k], ng, &l, &h, &p) && h < 0;
        }
        fprintf(f, " %d of %d methods are significantly below it on average.\n", below, n);
    }

    /* efficiency */
    const pb_table_row *fr = full >= 0 ? &t->rows[full] : NULL;
    if (fr && fr->flops_train > 0 && fr->mem_peak > 0) {
        const pb_table_row *fl_lo = NULL, *fl_hi = NULL, *m_lo = NULL, *m_hi = NULL;
        for (int i = 0; i < t->n_rows; i++) {
            const pb_table_row *x = &t->rows[i];
            if (!x->n_ok || x->reference) continue;
            if (!fl_lo || x->flops_train < fl_lo->flops_train) fl_lo = x;
            if (!fl_hi || x->flops_train > fl_hi->flops_train) fl_hi = x;
            if (!m_lo || x->mem_peak < m_lo->mem_peak) m_lo = x;
            if (!m_hi || x->mem_peak > m_hi->mem_peak) m_hi = x;
        }
        fprintf(f,
                "- **Cost.** Training FLOPs per real token run from %.2f× of full fine-tuning (%s) to %.2f× (%s): "
                "methods that train no backbone weight skip its weight-gradient products (full spends %.0f%% of its "
                "training FLOPs there), while prompts lengthen every sequence. Peak tracked memory runs from "
                "%.2f× (%s) to %.2f× (%s); at this size activations and workspace dominate, so the savings of "
                "PEFT in gradients and optimizer state (%.1f MiB for full) are a small share.\n",
                fl_lo->flops_train / fr->flops_train, fl_lo->label, fl_hi->flops_train / fr->flops_train,
                fl_hi->label, 100.0 * fr->flops_phase[2] / fr->flops_train, m_lo->mem_peak / fr->mem_peak,
                m_lo->label, m_hi->mem_peak / fr->mem_peak, m_hi->label,
                (fr->mem_cat[PB_MEM_GRADS] + fr->mem_cat[PB_MEM_OPTIM]) / 1048576.0);
    }
    /* forgetting */
    const pb_table_row *fg_hi = NULL;
    int n_fg = 0;
    for (int i = 0; i < t->n_rows; i++)
        if (isfinite(t->rows[i].forgetting)) {
            n_fg++;
            if (!fg_hi || t->rows[i].forgetting > fg_hi->forgetting) fg_hi = &t->rows[i];
        }
    if (fg_hi) {
        fprintf(f,
                "- **Forgetting** (change of the held-out pretraining-corpus loss in bits per byte, measured where "
                "the method changes backbone weights or the task trains the LM head; %d methods): largest for %s "
                "(%+.3f)",
                n_fg, fg_hi->label, fg_hi->forgetting);
        if (fr && isfinite(fr->forgetting) && fr != fg_hi) fprintf(f, "; full fine-tuning %+.3f", fr->forgetting);
        fprintf(f, ".\n");
    }
    /* what differences this run can see: the typical half-width of its intervals */
    double hw[PB_TABLE_MAX_TASKS * 256];
    int n_hw = 0;
    for (int i = 0; i < t->n_rows; i++)
        for (int k = 0; k < t->n_tasks; k++) {
            const pb_table_cell *c = &t->rows[i].cell[k];
            if (!t->rows[i].reference && isfinite(c->lo) && n_hw < (int)(sizeof hw / sizeof hw[0]))
                hw[n_hw++] = (c->hi - c->lo) / 2;
        }
    if (n_hw) {
        qsort(hw, (size_t)n_hw, sizeof hw[0], cmp_real);
        fprintf(f, "- **Resolution.** The median half-width of a cell's 95%% interval is %.1f points (%.1f to %.1f "
                   "over cells; %s): differences much smaller than that are not visible in this run, and paired "
                   "comparisons, which remove what methods share, see somewhat smaller ones.\n",
                hw[n_hw / 2], hw[0], hw[n_hw - 1],
                t->n_seeds_max > 1 ? "seeds and test examples resampled" : "one seed: test examples resampled only");
    } else if (t->n_seeds_max <= 1) {
        fprintf(f, "- **Caveat: one seed, no test records.** No interval can be given for these results.\n");
    }
    budget(f, t, res);
    /* learning rates */
    int edge = 0, chosen = 0, single = 1;
    char edges[1024] = "";
    size_t ek = 0;
    for (int i = 0; i < t->n_rows; i++)
        for (int k = 0; k < t->n_tasks; k++) {
            const pb_table_cell *c = &t->rows[i].cell[k];
            if (!isfinite(c->mean) || t->rows[i].reference) continue;
            chosen++;
            if (c->n_lrs > 1) single = 0;
            if (c->lr_edge) {
                edge++;
                if (ek < sizeof edges - 80)
                    ek += (size_t)snprintf(edges + ek, sizeof edges - ek, "%s%s × %s (%.3g)", ek ? ", " : "",
                                           t->rows[i].label, t->task[k], c->lr);
                else if (ek < sizeof edges - 8)
                    ek += (size_t)snprintf(edges + ek, sizeof edges - ek, ", ...");
            }
        }
    if (single)
        fprintf(f, "- **Learning rates.** Each method ran at one learning rate chosen for its family, not tuned on "
                   "dev: the comparison is at equal budget, not at each method's best.\n");
    else
        fprintf(f, "- **Learning rates** (chosen on dev, never on test). %d of the %d chosen rates lie on the edge of "
                   "their grid (†)%s%s%s\n",
                edge, chosen, edge ? ": " : ".", edge ? edges : "", edge ? ". Widen those grids before trusting those cells." : "");
    size_t failed = 0;
    for (size_t i = 0; i < res->n; i++) failed += !strcmp(res->rows[i].status, "ok") ? 0 : 1;
    if (failed)
        fprintf(f, "- %zu cells failed or diverged (`peftbench table RESULTS.h5 --failed` lists them); a learning "
                   "rate with such a cell is not eligible.\n",
                failed);
}

/* ---- the section --------------------------------------------------------------------------------- */

static void setup(FILE *f, const pb_res *res) {
    /* distinct values of a few fields, read back from the rows */
    char tasks[1024] = "", backbones[256] = "", host[PB_RES_NAME] = "", commit[PB_RES_NAME] = "";
    char first[40] = "", last[40] = "";
    size_t tk = 0, bk = 0, ok = 0;
    double wall = 0, cpu = 0, lo_lr = INFINITY, hi_lr = 0;
    uint64_t seeds[64];
    int n_seeds = 0, steps = 0, batch = 0, max_len = 0, threads = 0, jobs = 0;
    for (size_t i = 0; i < res->n; i++) {
        const pb_res_row *w = &res->rows[i];
        if (!strstr(tasks, w->task) && tk < sizeof tasks)
            tk += (size_t)snprintf(tasks + tk, sizeof tasks - tk, "%s`%s`", tk ? ", " : "", w->task);
        if (!strstr(backbones, w->backbone_name) && bk < sizeof backbones)
            bk += (size_t)snprintf(backbones + bk, sizeof backbones - bk, "%s`%s`", bk ? ", " : "", w->backbone_name);
        int seen = 0;
        for (int s = 0; s < n_seeds; s++) seen |= seeds[s] == w->seed;
        if (!seen && n_seeds < 64) seeds[n_seeds++] = w->seed;
        wall += isfinite(w->wall_seconds) ? w->wall_seconds : 0;
        cpu += isfinite(w->cpu_seconds) ? w->cpu_seconds : 0;
        ok += !strcmp(w->status, "ok");
        if (strcmp(w->category, "reference")) lo_lr = fmin(lo_lr, w->lr), hi_lr = fmax(hi_lr, w->lr);
        steps = w->steps, batch = w->batch, max_len = w->max_len, threads = w->threads, jobs = w->jobs;
        snprintf(host, sizeof host, "%s", w->host);
        snprintf(commit, sizeof commit, "%s", w->git_commit);
        if (!first[0] || strcmp(w->date, first) < 0) snprintf(first, sizeof first, "%s", w->date);
        if (strcmp(w->date, last) > 0) snprintf(last, sizeof last, "%s", w->date);
    }
    fprintf(f, "| | |\n|:--|:--|\n");
    fprintf(f, "| backbone | %s |\n| tasks | %s |\n", backbones, tasks);
    fprintf(f, "| budget | %d steps × %d sequences of at most %d tokens |\n", steps, batch, max_len);
    fprintf(f, "| seeds | %d |\n| learning rates | %.3g to %.3g (per method) |\n", n_seeds, lo_lr, hi_lr);
    fprintf(f, "| cells | %zu (%zu ok) |\n", res->n, ok);
    fprintf(f, "| compute | %.0f cell-minutes of wall time, %.0f CPU-minutes; %d job%s × %d thread%s on `%s` |\n",
            wall / 60, cpu / 60, jobs, jobs == 1 ? "" : "s", threads, threads == 1 ? "" : "s", host);
    fprintf(f, "| commit, dates | `%s`, %s to %s |\n\n", commit, first, last);
}

static pb_status write_section(FILE *f, const pb_experiment *e, const pb_res *res, const char *md_dir) {
    fprintf(f, "<!-- BEGIN experiment:%s -->\n<!-- generated by peftbench from the results; do not edit by hand -->\n",
            e->id);
    fprintf(f, "## %s\n\n**Question.** %s\n\n", e->title, e->question);
    fprintf(f, "**Command.**\n\n```sh\n%s\n```\n\n", e->command);
    if (e->spec) fprintf(f, "Spec: `%s`.\n\n", e->spec);
    setup(f, res);
    char names[8][PB_RES_NAME];
    int nb = pb_table_backbones(res, names, 8);
    if (nb > 8) nb = 8;
    pb_table_opts o;
    pb_table_default_opts(&o);
    o.show_lr = 1;
    o.forgetting = 1;
    pb_status st = PB_OK;
    for (int b = 0; b < nb && !st; b++) {
        pb_table t;
        if ((st = pb_table_build(res, names[b], NULL, &t))) break;
        fprintf(f, "### Table%s%s\n\n", nb > 1 ? ": " : "", nb > 1 ? names[b] : "");
        pb_table_write(f, &t, &o);
        fprintf(f, "\n### Figures%s%s\n\n", nb > 1 ? ": " : "", nb > 1 ? names[b] : "");
        /* copy the PNGs next to EXPERIMENTS.md and embed them */
        const char *figs[3] = {"accuracy_vs_params", "memory", "flops"};
        char src[2400], dst_dir[2400], dst[2600], rel[1200];
        snprintf(rel, sizeof rel, "%s%s%s", e->figures_rel, nb > 1 ? "/" : "", nb > 1 ? names[b] : "");
        snprintf(dst_dir, sizeof dst_dir, "%s/%s", md_dir, rel);
        if ((st = pb_mkdir_p(dst_dir))) {
            pb_table_free(&t);
            break;
        }
        for (int k = 0; k < 3 + t.n_tasks && !st; k++) {
            char base[PB_RES_NAME + 16], stem[PB_RES_NAME];
            if (k < 3) snprintf(base, sizeof base, "%s", figs[k]);
            else {
                size_t j = 0;
                for (const char *p = t.task[k - 3]; *p && j + 1 < sizeof stem; p++)
                    stem[j++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p
                                       : (*p >= 'A' && *p <= 'Z')                       ? *p + 32
                                                                                        : '_');
                stem[j] = '\0';
                snprintf(base, sizeof base, "curves_%s", stem);
            }
            snprintf(src, sizeof src, "%s%s%s/%s.png", e->figures_src, nb > 1 ? "/" : "", nb > 1 ? names[b] : "", base);
            if (access(src, R_OK) != 0) continue;
            snprintf(dst, sizeof dst, "%s/%s.png", dst_dir, base);
            if ((st = copy_file(src, dst))) break;
            fprintf(f, "![%s](%s/%s.png)\n\n", base, rel, base);
        }
        if (!st) {
            fprintf(f, "### What the numbers say%s%s\n\n", nb > 1 ? ": " : "", nb > 1 ? names[b] : "");
            findings(f, &t, res);
            fprintf(f, "\n");
        }
        pb_table_free(&t);
    }
    fprintf(f, "<!-- END experiment:%s -->\n", e->id);
    return st;
}

pb_status pb_experiment_update(const char *md_path, const pb_experiment *e, const pb_res *res) {
    char md_dir[2048];
    snprintf(md_dir, sizeof md_dir, "%s", md_path);
    char *slash = strrchr(md_dir, '/');
    if (!slash) snprintf(md_dir, sizeof md_dir, ".");
    else *slash = '\0';
    char *old = slurp(md_path);
    if (!old) return pb_errorf(PB_ENOMEM, "out of memory");
    char begin[128], end[128], tmp[2100];
    snprintf(begin, sizeof begin, "<!-- BEGIN experiment:%s -->", e->id);
    snprintf(end, sizeof end, "<!-- END experiment:%s -->\n", e->id);
    snprintf(tmp, sizeof tmp, "%s.tmp", md_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(old);
        return pb_errorf(PB_EIO, "%s: cannot write: %s", tmp, strerror(errno));
    }
    char *b = strstr(old, begin), *en = b ? strstr(b, end) : NULL;
    if (!old[0])
        fprintf(f, "# Experiments\n\nEvery section below is generated by `peftbench survey --experiments "
                   "EXPERIMENTS.md` (or another peftbench command named in it) from the results it ran, and "
                   "regenerated the same way; the figures live in `docs/figures/`. Text outside the "
                   "`BEGIN`/`END` markers is kept as it is.\n\n");
    if (b && en) fwrite(old, 1, (size_t)(b - old), f);
    else fputs(old, f), fputs(old[0] && old[strlen(old) - 1] != '\n' ? "\n\n" : old[0] ? "\n" : "", f);
    pb_status st = write_section(f, e, res, md_dir);
    if (b && en) fputs(en + strlen(end), f);
    free(old);
    if (fclose(f) != 0 && !st) st = pb_errorf(PB_EIO, "%s: write failed", tmp);
    if (st) {
        unlink(tmp);
        return st;
    }
    return pb_rename_durable(tmp, md_path);
}
