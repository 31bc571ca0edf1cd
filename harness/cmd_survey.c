/* cmd_survey.c — `peftbench survey`: the main job. Fetch the data if missing, pretrain or reuse
 * the default backbone, run the preset's sweep (resumable), write the table and every figure,
 * and (with --experiments) regenerate the preset's section of EXPERIMENTS.md. */
#include "pb_fs.h"
#include "commands.h"
#include "experiments.h"
#include "plot.h"
#include "prepare.h"
#include "results/table.h"
#include "sweep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PB_SOURCE_DIR
#define PB_SOURCE_DIR "."
#endif

/* pb_res_keep's predicate: the row is one of the spec's cells (by key; deferred cells too). */
static int spec_cell(const pb_res_row *row, void *ctx) {
    const pb_sweep_spec *s = ctx;
    for (size_t i = 0; i < s->n_cells; i++)
        if (!strcmp(s->cells[i].key, row->key)) return 1;
    return 0;
}

static void survey_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench survey [--preset quick|standard|full|smoke] [-o DIR] [--spec FILE] [--data-dir DIR]\n"
            "                        [--jobs N] [--threads T] [--no-fetch] [--experiments FILE]\n"
            "The survey run: fetches the data if it is missing, pretrains the default backbone if it is not\n"
            "cached (or reuses it), runs the preset's sweep into DIR/results.h5 (re-running resumes), and\n"
            "writes DIR/table.md (also .tex, .csv) and DIR/figures/.\n"
            "  --preset       quick (default: every method, 4 real tasks, 1 seed, one rate per method; at\n"
            "                 most 15 min on 2 cores once the backbone exists; intervals over test examples),\n"
            "                 standard (every method, 4 real tasks, 3 seeds, rates chosen on dev from\n"
            "                 3-point grids, whole test sets; at most 3 hours on 2 cores), full (6 tasks,\n"
            "                 longer training; a cluster's job: experiments/survey-full.ini), smoke (tiny\n"
            "                 backbone, built-in task, seconds)\n"
            "  -o DIR         output directory (default survey-PRESET)\n"
            "  --spec FILE    run this spec instead of experiments/survey-PRESET.ini\n"
            "  --jobs N       cells side by side (default: the number of cores); --threads T per cell\n"
            "                 (default 1)\n"
            "  --no-fetch     never download; fail, naming what is missing, if data is missing\n"
            "  --experiments FILE  regenerate this preset's section of FILE (EXPERIMENTS.md), copying the\n"
            "                 PNGs to docs/figures/survey-PRESET/ next to it\n");
}

static int write_tables(const pb_res *res, const char *dir) {
    static const struct {
        const char *ext;
        pb_table_format fmt;
    } outs[] = {{"md", PB_TABLE_MD}, {"tex", PB_TABLE_TEX}, {"csv", PB_TABLE_CSV}};
    char names[8][PB_RES_NAME];
    int nb = pb_table_backbones(res, names, 8);
    if (nb > 8) nb = 8;
    for (int o = 0; o < 3; o++) {
        char path[2100];
        snprintf(path, sizeof path, "%s/table.%s", dir, outs[o].ext);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "peftbench survey: cannot write %s: %s\n", path, strerror(errno));
            return 1;
        }
        pb_table_opts opt;
        pb_table_default_opts(&opt);
        opt.format = outs[o].fmt;
        opt.show_lr = 1;
        opt.forgetting = 1;
        for (int b = 0; b < nb; b++) {
            pb_table t;
            if (pb_table_build(res, names[b], NULL, &t)) {
                fprintf(stderr, "peftbench survey: %s\n", pb_errmsg());
                fclose(f);
                return 1;
            }
            if (nb > 1 && outs[o].fmt == PB_TABLE_MD) fprintf(f, "%s### %s\n\n", b ? "\n" : "", names[b]);
            pb_table_write(f, &t, &opt);
            pb_table_free(&t);
        }
        if (fclose(f) != 0) {
            fprintf(stderr, "peftbench survey: writing %s failed\n", path);
            return 1;
        }
        printf("%s\n", path);
    }
    return 0;
}

int pb_cmd_survey(pb_args *a) {
    const char *preset = "quick", *out = NULL, *spec = NULL, *data_dir = NULL, *experiments = NULL, *v;
    int no_fetch = 0, r;
    long n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    pb_sweep_opts o = {.jobs = cores > 0 ? (int)cores : 1, .threads = 1, .progress = -1};
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--preset", 1, &v)) > 0) {
            if (strcmp(v, "quick") && strcmp(v, "standard") && strcmp(v, "full") && strcmp(v, "smoke")) {
                fprintf(stderr, "peftbench survey: --preset '%s' (accepted: quick, standard, full, smoke)\n", v);
                return 2;
            }
            preset = v;
        } else if (r == 0 && ((r = pb_args_opt(a, "-o", 1, &v)) > 0 || (r == 0 && (r = pb_args_opt(a, "--out", 1, &v)) > 0)))
            out = v;
        else if (r == 0 && (r = pb_args_opt(a, "--spec", 1, &v)) > 0) spec = v;
        else if (r == 0 && (r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) data_dir = v;
        else if (r == 0 && (r = pb_args_opt(a, "--experiments", 1, &v)) > 0) experiments = v;
        else if (r == 0 && (r = pb_args_opt(a, "--no-fetch", 0, NULL)) > 0) no_fetch = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--jobs", 1, &v)) > 0) {
            if (!pb_args_int(a, "--jobs", v, 1, 256, &n)) return 2;
            o.jobs = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--threads", 1, &v)) > 0) {
            if (!pb_args_int(a, "--threads", v, 1, 1024, &n)) return 2;
            o.threads = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            survey_usage(stdout);
            return 0;
        } else if (r == 0) {
            fprintf(stderr, "peftbench survey: unknown argument '%s'\n", a->argv[a->i]);
            survey_usage(stderr);
            return 2;
        }
        if (r < 0) return 2;
    }
    char spec_buf[2048], out_buf[256], results[2300], figures[2300];
    if (!spec) {
        char name[64];
        snprintf(name, sizeof name, !strcmp(preset, "smoke") ? "smoke" : "survey-%s", preset);
        snprintf(spec_buf, sizeof spec_buf, "%s/experiments/%s.ini", PB_SOURCE_DIR, name);
        spec = spec_buf;
    }
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "survey-%s", preset);
        out = out_buf;
    }
    if (pb_mkdir_p(out)) {
        fprintf(stderr, "peftbench survey: %s\n", pb_errmsg());
        return 1;
    }
    time_t t0 = time(NULL);
    fprintf(stderr, "survey (%s preset): spec %s, output %s/\n", preset, spec, out);

    /* 1. the spec, its data and its backbone: what is missing is fetched (or refused with
     * --no-fetch), then the spec is loaded, pretraining the default backbone in a child process
     * if it is not cached */
    pb_status st = pb_prepare_spec(spec, data_dir, !no_fetch, "survey", stderr);
    pb_sweep_spec s;
    if (!st) st = pb_sweep_load(spec, data_dir, &s);
    if (st) {
        fprintf(stderr, "peftbench survey: %s\n", pb_errmsg());
        return st == PB_EINVAL || st == PB_ENOTFOUND ? 2 : 1;
    }

    /* 2. the sweep (resumes) */
    snprintf(results, sizeof results, "%s/results.h5", out);
    o.out = results;
    pb_sweep_summary sum;
    st = pb_sweep_run(&s, &o, &sum);
    if (st) {
        pb_sweep_free(&s);
        fprintf(stderr, "peftbench survey: %s\n", pb_errmsg());
        return 1;
    }
    if (sum.interrupted) {
        pb_sweep_free(&s);
        return 130;
    }

    /* 3. table and figures, of this spec's cells only: a results file resumed after the spec
     * changed (other rates, steps, tasks) keeps the old cells, which must not mix into the
     * table; `peftbench table` on the file still shows everything */
    pb_res res;
    pb_res_init(&res);
    if (pb_res_read(results, &res)) {
        pb_sweep_free(&s);
        fprintf(stderr, "peftbench survey: %s\n", pb_errmsg());
        return 1;
    }
    size_t other = pb_res_keep(&res, spec_cell, &s);
    pb_sweep_free(&s);
    if (other)
        fprintf(stderr,
                "survey: %zu cells of %s are not cells of %s as it is now (another version of the spec, or "
                "another spec): left out of the table and figures, kept in the file\n",
                other, results, spec);
    int rc = write_tables(&res, out);
    char sbuf[2048];
    const char *scripts = pb_plot_scripts(NULL, sbuf, sizeof sbuf);
    snprintf(figures, sizeof figures, "%s/figures", out);
    if (!scripts || pb_plot_results(&res, figures, NULL, "png,svg", scripts)) rc = 1;

    /* 4. EXPERIMENTS.md */
    if (experiments && !rc) {
        char cmd[1024], id[64], title[128], rel[128];
        snprintf(id, sizeof id, "survey-%s", preset);
        snprintf(rel, sizeof rel, "docs/figures/%s", id);
        snprintf(title, sizeof title, "The survey, %s preset", preset);
        /* the exact command: the arguments as given */
        size_t k = (size_t)snprintf(cmd, sizeof cmd, "peftbench");
        for (int i = 1; i < a->argc && k < sizeof cmd; i++)
            k += (size_t)snprintf(cmd + k, sizeof cmd - k, strpbrk(a->argv[i], " \t'\"") ? " '%s'" : " %s", a->argv[i]);
        const char *q =
            !strcmp(preset, "smoke")
                ? "Does the pipeline run end to end (sweep, table, figures, this section) on the tiny backbone "
                  "and a built-in task, in seconds? (The numbers mean nothing: the backbone is random.)"
                : "How do the PEFT methods of the registry compare with each other and with full fine-tuning on "
                  "the same pretrained backbone, the same data and the same training budget: accuracy, trainable "
                  "parameters, training FLOPs per token, peak memory and forgetting?";
        /* the spec as the source tree names it, when it is the source tree's */
        const char *shown = spec;
        size_t sl = strlen(PB_SOURCE_DIR);
        if (!strncmp(spec, PB_SOURCE_DIR, sl) && spec[sl] == '/') shown = spec + sl + 1;
        pb_experiment e = {id, title, q, cmd, shown, figures, rel};
        if (pb_experiment_update(experiments, &e, &res)) {
            fprintf(stderr, "peftbench survey: %s\n", pb_errmsg());
            rc = 1;
        } else {
            printf("%s\n", experiments);
        }
    }
    pb_res_free(&res);
    fprintf(stderr, "survey done in %.0f min: %s/table.md, %s/figures/\n", difftime(time(NULL), t0) / 60, out, out);
    return rc;
}
