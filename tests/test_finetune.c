/* test_finetune.c — parts of a fine-tuning cell (harness/finetune.h) checked on their own:
 *   - pb_group_by_length keeps the epoch a permutation, sorts each megabatch of 50 batches by
 *     length (longest first, ties in the shuffled order) and leaves the megabatches in place;
 *   - a cell with group_by_length trains on the same number of real tokens as without (the same
 *     examples per epoch), and pads less (fewer processed positions show as fewer FLOPs);
 *   - the test records of a cell give back its test metric, one record per test example. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness/finetune.h"
#include "pb_rng.h"

static void test_group_by_length(void **state) {
    (void)state;
    enum { N = 1234, B = 8 };
    static int len[N];
    static size_t order[N], before[N];
    pb_rng r;
    pb_rng_seed(&r, 3);
    for (int i = 0; i < N; i++) len[i] = 1 + (int)pb_rng_below(&r, 40), order[i] = (size_t)i;
    for (size_t i = N; i > 1; i--) { /* a shuffled epoch */
        size_t j = (size_t)pb_rng_below(&r, i), t = order[i - 1];
        order[i - 1] = order[j], order[j] = t;
    }
    memcpy(before, order, sizeof order);
    assert_int_equal(pb_group_by_length(order, N, len, B), PB_OK);
    const size_t mega = 50 * B;
    for (size_t m = 0; m < N; m += mega) {
        size_t end = m + mega < N ? m + mega : N;
        /* the same examples in each megabatch ... */
        int seen[N] = {0};
        for (size_t i = m; i < end; i++) seen[before[i]]++;
        for (size_t i = m; i < end; i++) assert_int_equal(seen[order[i]]--, 1);
        /* ... sorted longest first, ties in the shuffled order */
        for (size_t i = m + 1; i < end; i++) {
            assert_true(len[order[i - 1]] >= len[order[i]]);
            if (len[order[i - 1]] == len[order[i]]) {
                size_t a = 0, b = 0;
                for (size_t k = m; k < end; k++) {
                    if (before[k] == order[i - 1]) a = k;
                    if (before[k] == order[i]) b = k;
                }
                assert_true(a < b);
            }
        }
    }
}

static pb_run_result run(int group) {
    pb_run_config c;
    pb_run_defaults(&c);
    c.backbone = "tiny";
    c.method = "lora";
    c.task = "topic:n_train=96,n_dev=24,n_test=40";
    c.steps = 12; /* 2 epochs of 96 */
    c.batch = 16;
    c.max_len = 64;
    c.eval_every = 6;
    c.threads = 1;
    c.group_by_length = group;
    pb_run_result r;
    if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s", r.message);
    return r;
}

static void test_cell_grouping_and_records(void **state) {
    (void)state;
    pb_run_result a = run(0), b = run(1);
    assert_int_equal(a.train_tokens, b.train_tokens); /* two whole epochs either way */
    double fa = a.train_flops_tok[0] + a.train_flops_tok[1] + a.train_flops_tok[2];
    double fb = b.train_flops_tok[0] + b.train_flops_tok[1] + b.train_flops_tok[2];
    if (!(fb < fa)) fail_msg("grouped batches should pad less: %.4g FLOPs per token vs %.4g", fb, fa);
    /* the records: one (pred, gold) pair per test example, giving back the test accuracy */
    const pb_run_result *rs[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        const pb_run_result *r = rs[k];
        assert_int_equal(r->n_ex, 40);
        assert_int_equal(r->ex_width, 2);
        int right = 0;
        for (size_t i = 0; i < r->n_ex; i++) right += r->ex[2 * i] == r->ex[2 * i + 1];
        assert_true(fabs((double)right / 40.0 - r->test_at_best[0]) < 1e-12);
        assert_true(isnan(r->eval_test[0])); /* test is scored once, not at each evaluation */
    }
    pb_run_result_free(&a);
    pb_run_result_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_by_length),
        cmocka_unit_test(test_cell_grouping_and_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
