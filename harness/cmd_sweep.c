/* cmd_sweep.c — `peftbench sweep SPEC -o RESULTS.h5`: run a spec's cells into a results file. */
#include "commands.h"
#include "prepare.h"
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sweep_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench sweep SPEC.ini -o RESULTS.h5 [--jobs N] [--threads T] [--shard K/N]\n"
            "                       [--data-dir DIR] [--no-fetch] [--list] [--progress|--no-progress] [--quiet]\n"
            "Runs every cell of the spec (backbones x methods with their grids x tasks x learning rates\n"
            "x seeds; format: experiments/README.md) that RESULTS.h5 does not hold yet, and records each\n"
            "finished cell there (schema: results/SCHEMA.md). Re-running the same command resumes;\n"
            "a kill -9 loses at most the cells in flight. Failed cells are retried on the next run.\n"
            "  -o, --out FILE   results file (created if missing; cells of other specs are kept)\n"
            "  --jobs N         cells side by side, each in its own process (default 1)\n"
            "  --threads T      threads per cell (default: the spec's, else cores / jobs)\n"
            "  --shard K/N      run only cells K, K+N, K+2N, ... (1 <= K <= N), e.g. one Slurm array\n"
            "                   task each (experiments/slurm/sweep.sbatch); combine with `peftbench merge`\n"
            "  --list           print the cells (key, method, task, lr, seed) and exit\n"
            "  --data-dir DIR   data directory for fetched tasks and corpora\n"
            "  --no-fetch       never download: fail, naming it, when fetched data the spec needs is missing\n"
            "                   (by default exactly the missing sources are fetched, and the default\n"
            "                   backbone is pretrained once if the spec names it and it is not cached)\n"
            "  --progress       a status line with ETA (default when stderr is a terminal)\n"
            "  --no-progress    plain lines, one per finished cell\n"
            "  --quiet          no per-cell lines\n");
}

int pb_cmd_sweep(pb_args *a) {
    const char *spec = NULL, *out = NULL, *data_dir = NULL, *v;
    pb_sweep_opts o = {.jobs = 1, .progress = -1};
    int list = 0, no_fetch = 0, r;
    long n;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "-o", 1, &v)) > 0 || (r == 0 && (r = pb_args_opt(a, "--out", 1, &v)) > 0)) out = v;
        else if (r == 0 && (r = pb_args_opt(a, "--jobs", 1, &v)) > 0) {
            if (!pb_args_int(a, "--jobs", v, 1, 256, &n)) return 2;
            o.jobs = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--threads", 1, &v)) > 0) {
            if (!pb_args_int(a, "--threads", v, 1, 1024, &n)) return 2;
            o.threads = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--shard", 1, &v)) > 0) {
            int k, m;
            char tail;
            if (sscanf(v, "%d/%d%c", &k, &m, &tail) != 2 || m < 1 || k < 1 || k > m) {
                fprintf(stderr, "peftbench sweep: --shard '%s' is not K/N with 1 <= K <= N (e.g. 2/8)\n", v);
                return 2;
            }
            o.shard_k = k;
            o.shard_n = m;
        } else if (r == 0 && (r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) data_dir = v;
        else if (r == 0 && (r = pb_args_opt(a, "--list", 0, NULL)) > 0) list = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--no-fetch", 0, NULL)) > 0) no_fetch = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--progress", 0, NULL)) > 0) o.progress = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--no-progress", 0, NULL)) > 0) o.progress = 0;
        else if (r == 0 && (r = pb_args_opt(a, "--quiet", 0, NULL)) > 0) o.quiet = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            sweep_usage(stdout);
            return 0;
        } else if (r == 0 && a->argv[a->i][0] == '-') {
            fprintf(stderr, "peftbench sweep: unknown option '%s'\n", a->argv[a->i]);
            sweep_usage(stderr);
            return 2;
        } else if (r == 0) {
            if (spec) {
                fprintf(stderr, "peftbench sweep: one spec file only ('%s' and '%s')\n", spec, a->argv[a->i]);
                return 2;
            }
            spec = a->argv[a->i++];
        }
        if (r < 0) return 2;
    }
    if (!spec || (!out && !list)) {
        fprintf(stderr, "peftbench sweep: %s\n", !spec ? "missing SPEC.ini" : "missing -o RESULTS.h5");
        sweep_usage(stderr);
        return 2;
    }
    pb_sweep_spec s;
    pb_status st = pb_prepare_spec(spec, data_dir, !no_fetch, "sweep", stderr);
    if (!st) st = pb_sweep_load(spec, data_dir, &s);
    if (st) {
        fprintf(stderr, "peftbench sweep: %s\n", pb_errmsg());
        return st == PB_EINVAL || st == PB_ENOTFOUND ? 2 : 1;
    }
    if (list) {
        printf("# sweep %s: %zu cells\n# index key method task lr seed backbone\n", s.name, s.n_cells);
        for (size_t i = 0; i < s.n_cells; i++) {
            const pb_sweep_cell *x = &s.cells[i];
            if (o.shard_n > 0 && i % (size_t)o.shard_n != (size_t)(o.shard_k - 1)) continue;
            char lr[32];
            pb_sweep_canon_f32(x->cfg.lr, lr, sizeof lr);
            printf("%zu\t%s\t%s\t%s\t%s\t%llu\t%s\n", i + 1, x->key, x->label, x->task_name, lr,
                   (unsigned long long)x->cfg.seed, x->backbone_name);
        }
        pb_sweep_free(&s);
        return 0;
    }
    o.out = out;
    pb_sweep_summary sum;
    st = pb_sweep_run(&s, &o, &sum);
    pb_sweep_free(&s);
    if (st) {
        fprintf(stderr, "peftbench sweep: %s\n", pb_errmsg());
        return 1;
    }
    if (sum.interrupted) return 130;
    fprintf(stderr, "sweep done: %zu cells run (%zu ok, %zu diverged, %zu failed); %zu of %zu shard cells are in %s\n",
            sum.run, sum.ok, sum.diverged, sum.failed, sum.already + sum.ok + sum.diverged, sum.in_shard, out);
    if (sum.failed)
        fprintf(stderr, "  %zu cells failed: their messages are in %s (peftbench table %s --failed); re-running the "
                        "command retries them\n",
                sum.failed, out, out);
    return 0;
}
