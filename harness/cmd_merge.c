/* cmd_merge.c — `peftbench merge A.h5 B.h5 ... -o ALL.h5`: combine results files (the shards of
 * a sweep, or sweeps run on different machines) into one, detecting duplicates by key. */
#include "commands.h"
#include "results/results.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void merge_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench merge A.h5 B.h5 ... -o ALL.h5 [--force]\n"
            "Combines results files into one. Rows are identified by their key (a hash of the cell's\n"
            "full configuration): a key found in several inputs is kept once, preferring status ok, then\n"
            "diverged, then failed, and among equals the first input's row; the duplicates are listed.\n"
            "ALL.h5 may be one of the inputs (it is replaced atomically); an existing ALL.h5 that is not\n"
            "an input is refused unless --force.\n");
}

static int status_rank(const char *s) { return !strcmp(s, "ok") ? 0 : !strcmp(s, "diverged") ? 1 : 2; }

static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int pb_cmd_merge(pb_args *a) {
    const char *out = NULL, *v;
    const char **in = calloc((size_t)a->argc, sizeof *in);
    int n_in = 0, force = 0, r;
    if (!in) return 1;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "-o", 1, &v)) > 0 || (r == 0 && (r = pb_args_opt(a, "--out", 1, &v)) > 0)) out = v;
        else if (r == 0 && (r = pb_args_opt(a, "--force", 0, NULL)) > 0) force = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            merge_usage(stdout);
            free(in);
            return 0;
        } else if (r == 0 && a->argv[a->i][0] == '-') {
            fprintf(stderr, "peftbench merge: unknown option '%s'\n", a->argv[a->i]);
            merge_usage(stderr);
            free(in);
            return 2;
        } else if (r == 0) in[n_in++] = a->argv[a->i++];
        if (r < 0) {
            free(in);
            return 2;
        }
    }
    if (!out || n_in == 0) {
        fprintf(stderr, "peftbench merge: %s\n", !out ? "missing -o ALL.h5" : "no input files");
        merge_usage(stderr);
        free(in);
        return 2;
    }
    struct stat sb;
    int out_is_input = 0;
    for (int i = 0; i < n_in; i++) out_is_input |= same_file(in[i], out);
    if (!force && !out_is_input && stat(out, &sb) == 0) {
        fprintf(stderr, "peftbench merge: %s exists and is not one of the inputs; list it as an input to add to it, or "
                        "give --force to replace it\n", out);
        free(in);
        return 2;
    }
    int lock = -1;
    if (pb_res_lock(out, &lock)) {
        fprintf(stderr, "peftbench merge: %s\n", pb_errmsg());
        free(in);
        return 1;
    }
    pb_res all, one;
    pb_res_init(&all);
    int rc = 0;
    size_t dup = 0, replaced = 0;
    for (int i = 0; i < n_in && !rc; i++) {
        pb_res_init(&one);
        if (pb_res_read(in[i], &one)) {
            fprintf(stderr, "peftbench merge: %s\n", pb_errmsg());
            rc = 1;
        }
        size_t added = 0;
        for (size_t k = 0; k < one.n && !rc; k++) {
            const pb_res_row *w = &one.rows[k];
            long j = pb_res_find(&all, w->key);
            if (j >= 0) {
                if (strcmp(all.rows[j].config, w->config) != 0) {
                    fprintf(stderr, "peftbench merge: key %s names two different configurations (a hash collision?): "
                                    "%s and an earlier input; refusing to merge\n", w->key, in[i]);
                    rc = 1;
                    break;
                }
                dup++;
                if (dup <= 5)
                    fprintf(stderr, "  duplicate %s (%s x %s, lr %g, seed %llu) in %s: %s\n", w->key, w->method_label,
                            w->task_name, w->lr, (unsigned long long)w->seed, in[i],
                            status_rank(w->status) < status_rank(all.rows[j].status) ? "replaces the earlier row (better status)"
                                                                                     : "kept the earlier row");
                if (status_rank(w->status) >= status_rank(all.rows[j].status)) continue;
                replaced++;
            }
            if (pb_res_put(&all, w)) {
                fprintf(stderr, "peftbench merge: %s\n", pb_errmsg());
                rc = 1;
            }
            added++;
        }
        if (!rc) fprintf(stderr, "%s: %zu rows, %zu new\n", in[i], one.n, added);
        pb_res_free(&one);
    }
    if (!rc && pb_res_write(out, &all)) {
        fprintf(stderr, "peftbench merge: %s\n", pb_errmsg());
        rc = 1;
    }
    if (!rc)
        fprintf(stderr, "merged %d files into %s: %zu rows (%zu duplicate keys%s)\n", n_in, out, all.n, dup,
                dup > 5 ? ", first 5 listed" : "");
    (void)replaced;
    pb_res_free(&all);
    pb_res_unlock(lock);
    free(in);
    return rc;
}
