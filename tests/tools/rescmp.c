/* rescmp.c — a test tool (not a test): compares results files for the shell-level tests
 * (scripts/test-slurm.sh). Built into BUILD/tests/rescmp; never installed.
 *
 *   rescmp count FILE        prints the number of rows (0 when FILE does not exist)
 *   rescmp same A B          exit 0 when A and B hold the same keys, every row once, with
 *                            bit-identical measured numbers (metrics, curves, counts, FLOPs,
 *                            tracked memory, forgetting); times, dates, hosts, RSS, threads
 *                            and jobs are not compared (they describe the run, not the cell)
 *   rescmp kept OLD NEW      exit 0 when every row of OLD is in NEW unchanged (same date and
 *                            wall time: not redone)
 *
 * Exit status: 0 yes, 1 no (the first difference is printed), 2 usage or unreadable file. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "results/results.h"

static int read_or_die(const char *path, pb_res *r, int missing_ok) {
    pb_res_init(r);
    pb_status st = pb_res_read(path, r);
    if (st == PB_ENOTFOUND && missing_ok) return 0;
    if (st != PB_OK) {
        fprintf(stderr, "rescmp: %s\n", pb_errmsg());
        return 2;
    }
    return 0;
}

static int same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* The first field where two rows of the same key differ, or NULL. */
static const char *row_diff(const pb_res_row *x, const pb_res_row *y) {
#define F(f) if (!same_bits(&x->f, &y->f, sizeof x->f)) return #f
#define S(f) if (strcmp(x->f, y->f)) return #f
    S(config); S(status); S(method); S(method_label); S(task); S(metrics);
    F(trainable); F(total); F(adapter_bytes); F(trainable_pct);
    F(flops_fwd); F(flops_bwd_in); F(flops_bwd_w); F(flops_train); F(infer_flops);
    F(infer_flops_merged); F(mem_peak); F(mem_peak_total); F(train_tokens);
    F(dev_metric); F(test_metric); F(best_step); F(dev_all); F(test_all); F(n_truncated);
    F(heldout_bpb_before); F(heldout_bpb_after); F(forgetting);
    F(n_evals); F(n_loss);
#undef F
#undef S
    if (!same_bits(x->loss, y->loss, sizeof(float) * (size_t)x->n_loss)) return "loss curve";
    if (!same_bits(x->eval_dev, y->eval_dev, sizeof(float) * (size_t)x->n_evals)) return "eval_dev curve";
    if (!same_bits(x->eval_test, y->eval_test, sizeof(float) * (size_t)x->n_evals)) return "eval_test curve";
    return NULL;
}

int main(int argc, char **argv) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (argc == 3 && !strcmp(argv[1], "count")) {
        pb_res r;
        if (read_or_die(argv[2], &r, 1)) return 2;
        printf("%zu\n", r.n);
        pb_res_free(&r);
        return 0;
    }
    if (argc != 4 || (strcmp(argv[1], "same") && strcmp(argv[1], "kept"))) {
        fprintf(stderr, "usage: rescmp count FILE | rescmp same A B | rescmp kept OLD NEW\n");
        return 2;
    }
    int kept = !strcmp(argv[1], "kept");
    pb_res a, b;
    if (read_or_die(argv[2], &a, 0)) return 2;
    if (read_or_die(argv[3], &b, 0)) return 2;
    int rc = 0;
    if (!kept && a.n != b.n) {
        printf("rescmp: %s has %zu rows, %s has %zu\n", argv[2], a.n, argv[3], b.n);
        rc = 1;
    }
    for (size_t i = 0; i < a.n && !rc; i++) {
        const pb_res_row *x = &a.rows[i];
        long j = pb_res_find(&b, x->key);
        if (j < 0) {
            printf("rescmp: cell %s (%s, lr %g, seed %llu) of %s is missing from %s\n", x->key,
                   x->method_label, x->lr, (unsigned long long)x->seed, argv[2], argv[3]);
            rc = 1;
            break;
        }
        const pb_res_row *y = &b.rows[j];
        const char *d = row_diff(x, y);
        if (!d && kept && (strcmp(x->date, y->date) || x->wall_seconds != y->wall_seconds))
            d = "date/wall_seconds (the cell was run again)";
        if (d) {
            printf("rescmp: cell %s (%s, lr %g, seed %llu) differs in %s\n", x->key, x->method_label,
                   x->lr, (unsigned long long)x->seed, d);
            rc = 1;
        }
    }
    if (!rc) printf("rescmp: %zu rows of %s %s %s\n", a.n, argv[2], kept ? "kept unchanged in" : "identical in", argv[3]);
    pb_res_free(&a);
    pb_res_free(&b);
    return rc;
}
