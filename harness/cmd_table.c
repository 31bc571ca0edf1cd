/* cmd_table.c — `peftbench table RESULTS.h5`: the survey-style table (results/table.h). */
#include "commands.h"
#include "results/table.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void table_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench table RESULTS.h5 [--format md|tex|csv] [--columns LIST] [--show-lr]\n"
            "                       [--tasks T1,T2,...] [--backbone NAME] [-o FILE] [--failed]\n"
            "The survey-style table: methods grouped by category; %% trainable parameters, training FLOPs\n"
            "per token and peak memory relative to full fine-tuning; each task's test metric as the mean\n"
            "over seeds ± half its 95%% bootstrap interval at the learning rate chosen on dev (bold: tied\n"
            "with the best; ≈: tied with full fine-tuning; paired tests; docs/STATISTICS.md); the average\n"
            "over tasks; reference rows without a backbone. A rate at the edge of its grid is flagged †.\n"
            "  --format     md (default), tex (LaTeX, booktabs) or csv (every number, one row per method)\n"
            "  --columns    which columns, comma-separated: params,flops,memory,tasks,avg,forgetting,lr\n"
            "               (default params,flops,memory,tasks,avg; lr = --show-lr)\n"
            "  --show-lr    the chosen learning rate in each task cell\n"
            "  --tasks      task columns to show, in this order (names or specs)\n"
            "  --backbone   one backbone (default: a table for each backbone in the file)\n"
            "  -o FILE      write to FILE instead of standard output\n"
            "  --failed     list the failed and diverged cells with their messages instead\n"
            "  --cells      list every cell instead (TSV: method, task, lr, seed, status, dev, test, test\n"
            "               examples, best step, wall and CPU seconds, training and inference tokens/s)\n");
}

static int list_failed(const pb_res *r, FILE *f) {
    int n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        if (!strcmp(w->status, "ok")) continue;
        fprintf(f, "%s  %-8s %s | %s | lr %g | seed %llu | %s: %s\n", w->key, w->status, w->method_label, w->task_name,
                w->lr, (unsigned long long)w->seed, w->backbone_name, w->message);
        n++;
    }
    fprintf(f, "%d of %zu cells failed or diverged\n", n, r->n);
    return 0;
}

/* One line per cell: what it ran and what it cost (wall time on a shared machine, CPU time). */
static int list_cells(const pb_res *r, FILE *f) {
    fprintf(f, "method\ttask\tlr\tseed\tstatus\tdev\ttest\tn_test\tbest_step\twall_s\tcpu_s\ttrain_tok_s\tinfer_tok_s\n");
    double wall = 0, cpu = 0;
    for (size_t i = 0; i < r->n; i++) {
        const pb_res_row *w = &r->rows[i];
        fprintf(f, "%s\t%s\t%g\t%llu\t%s\t%.4f\t%.4f\t%lld\t%d\t%.1f\t%.1f\t%.0f\t%.0f\n", w->method_label, w->task_name,
                w->lr, (unsigned long long)w->seed, w->status, w->dev_metric, w->test_metric, (long long)w->n_ex,
                w->best_step, w->wall_seconds, w->cpu_seconds, w->train_tok_per_s, w->infer_tok_per_s);
        if (isfinite(w->wall_seconds)) wall += w->wall_seconds;
        if (isfinite(w->cpu_seconds)) cpu += w->cpu_seconds;
    }
    fprintf(f, "# %zu cells: %.1f cell-minutes of wall time, %.1f CPU-minutes\n", r->n, wall / 60, cpu / 60);
    return 0;
}

int pb_cmd_table(pb_args *a) {
    const char *path = NULL, *v, *tasks = NULL, *backbone = NULL, *outp = NULL;
    pb_table_opts o;
    pb_table_default_opts(&o);
    int r, failed = 0, show_lr = 0, cells = 0;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--format", 1, &v)) > 0) {
            if (!strcmp(v, "md")) o.format = PB_TABLE_MD;
            else if (!strcmp(v, "tex")) o.format = PB_TABLE_TEX;
            else if (!strcmp(v, "csv")) o.format = PB_TABLE_CSV;
            else {
                fprintf(stderr, "peftbench table: --format '%s' (accepted: md, tex, csv)\n", v);
                return 2;
            }
        } else if (r == 0 && (r = pb_args_opt(a, "--columns", 1, &v)) > 0) {
            if (pb_table_parse_columns(v, &o)) {
                fprintf(stderr, "peftbench table: %s\n", pb_errmsg());
                return 2;
            }
        } else if (r == 0 && (r = pb_args_opt(a, "--show-lr", 0, NULL)) > 0) show_lr = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--tasks", 1, &v)) > 0) tasks = v;
        else if (r == 0 && (r = pb_args_opt(a, "--backbone", 1, &v)) > 0) backbone = v;
        else if (r == 0 && ((r = pb_args_opt(a, "-o", 1, &v)) > 0 || (r == 0 && (r = pb_args_opt(a, "--out", 1, &v)) > 0)))
            outp = v;
        else if (r == 0 && (r = pb_args_opt(a, "--failed", 0, NULL)) > 0) failed = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--cells", 0, NULL)) > 0) cells = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            table_usage(stdout);
            return 0;
        } else if (r == 0 && a->argv[a->i][0] == '-') {
            fprintf(stderr, "peftbench table: unknown option '%s'\n", a->argv[a->i]);
            table_usage(stderr);
            return 2;
        } else if (r == 0) {
            if (path) {
                fprintf(stderr, "peftbench table: one results file only (merge several with `peftbench merge`)\n");
                return 2;
            }
            path = a->argv[a->i++];
        }
        if (r < 0) return 2;
    }
    if (show_lr) o.show_lr = 1;
    if (!path) {
        fprintf(stderr, "peftbench table: missing RESULTS.h5\n");
        table_usage(stderr);
        return 2;
    }
    pb_res res;
    pb_res_init(&res);
    if (pb_res_read(path, &res)) {
        fprintf(stderr, "peftbench table: %s\n", pb_errmsg());
        return 1;
    }
    FILE *f = stdout;
    if (outp && !(f = fopen(outp, "w"))) {
        fprintf(stderr, "peftbench table: cannot write %s\n", outp);
        pb_res_free(&res);
        return 1;
    }
    int rc = 0;
    if (cells) {
        rc = list_cells(&res, f);
    } else if (failed) {
        rc = list_failed(&res, f);
    } else if (!res.n) {
        fprintf(stderr, "peftbench table: %s holds no cells yet\n", path);
        rc = 1;
    } else {
        char names[16][PB_RES_NAME];
        int nb = pb_table_backbones(&res, names, 16);
        if (nb > 16) nb = 16;
        int shown = 0;
        for (int b = 0; b < nb && !rc; b++) {
            if (backbone && strcmp(backbone, names[b])) continue;
            pb_table t;
            if (pb_table_build(&res, names[b], tasks, &t)) {
                fprintf(stderr, "peftbench table: %s\n", pb_errmsg());
                rc = 1;
                break;
            }
            if (shown++ && o.format != PB_TABLE_CSV) fprintf(f, "\n");
            if (o.format == PB_TABLE_MD && nb > 1) fprintf(f, "### %s\n\n", names[b]);
            pb_table_write(f, &t, &o);
            pb_table_free(&t);
            if (o.format == PB_TABLE_CSV && shown) o.format = PB_TABLE_CSV; /* one header per backbone */
        }
        size_t bad = 0;
        for (size_t i = 0; i < res.n; i++) bad += strcmp(res.rows[i].status, "ok") != 0;
        if (!rc && bad)
            fprintf(stderr, "note: %zu of %zu cells failed or diverged and are not in the table (peftbench table %s "
                            "--failed)\n", bad, res.n, path);
        if (!rc && !shown) {
            fprintf(stderr, "peftbench table: no backbone '%s' in %s (it has:", backbone ? backbone : "", path);
            for (int b = 0; b < nb; b++) fprintf(stderr, " %s", names[b]);
            fprintf(stderr, ")\n");
            rc = 1;
        }
    }
    if (f != stdout && fclose(f) != 0) {
        fprintf(stderr, "peftbench table: writing %s failed\n", outp);
        rc = 1;
    }
    pb_res_free(&res);
    return rc;
}
