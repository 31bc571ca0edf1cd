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

#include "results/table.h"

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

/* The row of the table whose method_name is `name` with the best average (NULL if none). */
static const pb_table_row *method_row(const pb_table *t, const char *name) {
    const pb_table_row *best = NULL;
    for (int i = 0; i < t->n_rows; i++) {
        const pb_table_row *x = &t->rows[i];
        if (strcmp(x->method_name, name) || !isfinite(x->avg)) continue;
        if (!best || x->avg > best->avg) best = x;
    }
    return best;
}

static int cmp_avg_desc(const void *a, const void *b) {
    const pb_table_row *x = *(const pb_table_row *const *)a, *y = *(const pb_table_row *const *)b;
    return (x->avg < y->avg) - (x->avg > y->avg);
}

/* ---- the findings ------------------------------------------------------------------------------ */

static void findings(FILE *f, const pb_table *t, const pb_res *res) {
    const pb_table_row *sorted[256];
    int n = 0;
    for (int i = 0; i < t->n_rows && n < 256; i++)
        if (isfinite(t->rows[i].avg)) sorted[n++] = &t->rows[i];
    qsort(sorted, (size_t)n, sizeof sorted[0], cmp_avg_desc);
    if (!n) {
        fprintf(f, "- No method has a test metric on every task yet: nothing to compare.\n");
        return;
    }
    fprintf(f, "- **Ranking by average test metric** (backbone %s): ", t->backbone);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%s %.1f", i ? (i == n - 1 ? ", and " : ", ") : "", sorted[i]->label, sorted[i]->avg);
    fprintf(f, ".\n");

    const pb_table_row *full = method_row(t, "full"), *lora = method_row(t, "lora"), *pt = method_row(t, "prompt_tuning");
    const pb_table_row *head = method_row(t, "head"), *bitfit = method_row(t, "bitfit"), *ia3 = method_row(t, "ia3");
    if (full && lora) {
        double d = lora->avg - full->avg;
        fprintf(f,
                "- **LoRA vs. full fine-tuning.** LoRA trains %.3g%% of the parameters and averages %.1f against "
                "full fine-tuning's %.1f (%+.1f points). Hu et al. (2021) report LoRA on par with full fine-tuning "
                "(GPT-2, RoBERTa, GPT-3); %s\n",
                lora->pct_trainable, lora->avg, full->avg, d,
                fabs(d) <= 2.0 ? "the numbers here agree (within 2 points)."
                : d < 0        ? "here LoRA falls short by more than 2 points: a small backbone, a short budget "
                                 "and untuned rates favour updating every weight, so this disagrees."
                               : "here LoRA even does better, by more than 2 points (full fine-tuning may be "
                                 "over- or under-stepped at its single rate), which goes beyond the paper.");
    }
    if (full && pt) {
        double d = pt->avg - full->avg;
        fprintf(f,
                "- **Prompt tuning.** %.1f against full fine-tuning's %.1f (%+.1f points). Lester et al. (2021) "
                "find prompt tuning far behind full fine-tuning on small models, the gap closing only at billions of "
                "parameters; %s\n",
                pt->avg, full->avg, d,
                d <= -5.0 ? "this small backbone shows the same large gap (agrees)."
                : d < 0   ? "the gap here is under 5 points, smaller than that finding leads one to expect."
                          : "here it is not behind at all, which disagrees with that finding (check the budget: "
                            "a short run may not separate them).");
    }
    if (head && full)
        fprintf(f,
                "- **Linear probe (`head`).** %.1f, %+.1f points from full fine-tuning with %.3g%% of the "
                "parameters: the frozen features alone %s.\n",
                head->avg, head->avg - full->avg, head->pct_trainable,
                head->avg - full->avg <= -5 ? "are clearly not enough; adapting the backbone matters"
                                            : "already carry most of what these tasks need");
    /* the reference run's ordering: full ~ LoRA > (IA)^3 ~ BitFit > prompt tuning > head */
    const pb_table_row *ref[6] = {full, lora, ia3, bitfit, pt, head};
    const int tier[6] = {0, 0, 1, 1, 2, 3};
    const char *names[6] = {"full", "LoRA", "(IA)³", "BitFit", "prompt tuning", "head"};
    int agree = 0, pairs = 0;
    char disagree[512] = "";
    size_t dk = 0;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            if (!ref[a] || !ref[b] || tier[a] >= tier[b]) continue;
            pairs++;
            if (ref[a]->avg > ref[b]->avg) agree++;
            else if (dk < sizeof disagree)
                dk += (size_t)snprintf(disagree + dk, sizeof disagree - dk, "%s%s ≤ %s", dk ? ", " : "", names[a],
                                       names[b]);
        }
    if (pairs)
        fprintf(f,
                "- **Against the reference run** (shared DESIGN.md, \"Lessons\": full ≈ LoRA > (IA)³ ≈ BitFit > "
                "prompt tuning > head): %d of %d ordered pairs come out the same way here%s%s%s.\n",
                agree, pairs, agree < pairs ? " (not: " : "", agree < pairs ? disagree : "", agree < pairs ? ")" : "");

    /* efficiency */
    if (full && full->flops_train > 0 && full->mem_peak > 0) {
        const pb_table_row *fl_lo = NULL, *fl_hi = NULL, *m_lo = NULL, *m_hi = NULL;
        for (int i = 0; i < t->n_rows; i++) {
            const pb_table_row *x = &t->rows[i];
            if (!x->n_ok) continue;
            if (!fl_lo || x->flops_train < fl_lo->flops_train) fl_lo = x;
            if (!fl_hi || x->flops_train > fl_hi->flops_train) fl_hi = x;
            if (!m_lo || x->mem_peak < m_lo->mem_peak) m_lo = x;
            if (!m_hi || x->mem_peak > m_hi->mem_peak) m_hi = x;
        }
        fprintf(f,
                "- **Cost.** Training FLOPs per token run from %.2f× of full fine-tuning (%s) to %.2f× (%s): methods "
                "that train no backbone weight skip its weight-gradient products (full spends %.0f%% of its training "
                "FLOPs there), while prompts and prefixes lengthen every sequence. Peak tracked memory runs from "
                "%.2f× (%s) to %.2f× (%s); at this size activations and workspace dominate, so the savings of "
                "PEFT in gradients and optimizer state (%.1f MiB for full) are a small share.\n",
                fl_lo->flops_train / full->flops_train, fl_lo->label, fl_hi->flops_train / full->flops_train,
                fl_hi->label, 100.0 * full->flops_phase[2] / full->flops_train, m_lo->mem_peak / full->mem_peak,
                m_lo->label, m_hi->mem_peak / full->mem_peak, m_hi->label,
                (full->mem_cat[PB_MEM_GRADS] + full->mem_cat[PB_MEM_OPTIM]) / 1048576.0);
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
        if (full && isfinite(full->forgetting) && full != fg_hi) fprintf(f, "; full fine-tuning %+.3f", full->forgetting);
        fprintf(f, ".\n");
    }
    /* noise and learning rates */
    int edge = 0, chosen = 0, single = 1;
    double sd = 0;
    int n_sd = 0;
    for (int i = 0; i < t->n_rows; i++)
        for (int k = 0; k < t->n_tasks; k++) {
            const pb_table_cell *c = &t->rows[i].cell[k];
            if (!isfinite(c->mean)) continue;
            chosen++;
            edge += c->lr_edge;
            if (c->n_lrs > 1) single = 0;
            if (c->n > 1 && isfinite(c->std)) sd += c->std, n_sd++;
        }
    if (t->n_seeds_max <= 1)
        fprintf(f, "- **Caveat: one seed.** Seed-to-seed spread is not measured here; at this size it was 0.3–1.1 "
                   "points in the reference run, so differences of a point or two are not significant.\n");
    else if (n_sd)
        fprintf(f, "- **Seed spread.** The mean standard deviation over seeds is %.1f points (up to %d seeds); "
                   "differences smaller than that are not significant.\n",
                sd / n_sd, t->n_seeds_max);
    if (single)
        fprintf(f, "- **Learning rates.** Each method ran at one learning rate chosen for its family, not tuned: "
                   "the comparison is at equal budget, not at each method's best.\n");
    else
        fprintf(f, "- **Learning rates.** %d of the %d chosen learning rates lie on the edge of their grid (†)%s\n",
                edge, chosen, edge ? ": widen those grids before trusting those cells." : ".");
    size_t failed = 0;
    for (size_t i = 0; i < res->n; i++) failed += !strcmp(res->rows[i].status, "ok") ? 0 : 1;
    if (failed)
        fprintf(f, "- %zu cells failed or diverged (`peftbench table RESULTS.h5 --failed` lists them); they are "
                   "left out of the table.\n",
                failed);
}

/* ---- the section --------------------------------------------------------------------------------- */

static void setup(FILE *f, const pb_res *res) {
    /* distinct values of a few fields, read back from the rows */
    char tasks[1024] = "", backbones[256] = "", host[PB_RES_NAME] = "", commit[PB_RES_NAME] = "";
    char first[40] = "", last[40] = "";
    size_t tk = 0, bk = 0, ok = 0;
    double wall = 0, lo_lr = INFINITY, hi_lr = 0;
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
        ok += !strcmp(w->status, "ok");
        lo_lr = fmin(lo_lr, w->lr), hi_lr = fmax(hi_lr, w->lr);
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
    fprintf(f, "| compute | %.0f cell-minutes; %d job%s × %d thread%s on `%s` |\n", wall / 60, jobs, jobs == 1 ? "" : "s",
            threads, threads == 1 ? "" : "s", host);
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
