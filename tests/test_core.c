/* test_core.c — tracked allocator, error messages, RNG, tokenizer, built-in corpus. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/corpus.h"
#include "models/tokenizer.h"
#include "pb_error.h"
#include "pb_mem.h"
#include "pb_rng.h"

static void test_alloc_books_bytes(void **s) {
    (void)s;
    pb_mem_stats a, b;
    pb_mem_get(&a);
    float *x = pb_alloc(1000, PB_MEM_GRADS);
    char *y = pb_alloc(24, PB_MEM_ACTS);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(((uintptr_t)x) % 64, 0);
    for (int i = 0; i < 250; i++) assert_true(x[i] == 0.0f); /* zeroed */
    pb_mem_get(&b);
    assert_int_equal(b.cur[PB_MEM_GRADS] - a.cur[PB_MEM_GRADS], 1000);
    assert_int_equal(b.cur[PB_MEM_ACTS] - a.cur[PB_MEM_ACTS], 24);
    assert_int_equal(b.cur_total - a.cur_total, 1024);
    pb_mem_rebook(400, PB_MEM_GRADS, PB_MEM_OPTIM);
    pb_mem_get(&b);
    assert_int_equal(b.cur[PB_MEM_GRADS] - a.cur[PB_MEM_GRADS], 600);
    assert_int_equal(b.cur[PB_MEM_OPTIM] - a.cur[PB_MEM_OPTIM], 400);
    pb_mem_rebook(400, PB_MEM_OPTIM, PB_MEM_GRADS);
    pb_free(x);
    pb_mem_get(&b);
    assert_int_equal(b.cur[PB_MEM_GRADS], a.cur[PB_MEM_GRADS]);
    assert_true(b.peak[PB_MEM_GRADS] >= a.cur[PB_MEM_GRADS] + 1000); /* the peak remembers */
    pb_mem_reset_peak();
    pb_mem_get(&b);
    assert_int_equal(b.peak[PB_MEM_GRADS], b.cur[PB_MEM_GRADS]);
    pb_free(y);
    pb_free(NULL);
    /* a request that cannot be met fails cleanly with a message */
    pb_error_clear();
    assert_null(pb_alloc((size_t)-1 / 2, PB_MEM_WORKSPACE));
    assert_non_null(strstr(pb_errmsg(), "workspace"));
    assert_string_equal(pb_mem_cat_key(PB_MEM_FROZEN), "frozen");
    assert_true(pb_peak_rss_bytes() > 0);
}

static void test_errors(void **s) {
    (void)s;
    assert_int_equal(pb_errorf(PB_EDATA, "file %s line %d", "a.csv", 3), PB_EDATA);
    assert_string_equal(pb_errmsg(), "file a.csv line 3");
    assert_int_equal(pb_error_context(PB_EDATA, "loading %s", "task"), PB_EDATA);
    assert_string_equal(pb_errmsg(), "loading task: file a.csv line 3");
    assert_string_equal(pb_status_name(PB_EINVAL), "EINVAL");
    assert_string_equal(pb_status_str(PB_ENOMEM), "out of memory");
    pb_error_clear();
    assert_string_equal(pb_errmsg(), "");
}

static void test_rng(void **s) {
    (void)s;
    pb_rng a, b;
    pb_rng_seed(&a, 123);
    pb_rng_seed(&b, 123);
    for (int i = 0; i < 100; i++) assert_true(pb_rng_u64(&a) == pb_rng_u64(&b));
    /* moments of 100k normals and uniforms */
    double sum = 0, sq = 0, usum = 0;
    for (int i = 0; i < 100000; i++) {
        double x = pb_rng_normal(&a);
        sum += x;
        sq += x * x;
        float u = pb_rng_uniform(&a);
        assert_true(u >= 0.0f && u < 1.0f);
        usum += u;
    }
    assert_true(fabs(sum / 1e5) < 0.02);
    assert_true(fabs(sq / 1e5 - 1.0) < 0.02);
    assert_true(fabs(usum / 1e5 - 0.5) < 0.01);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[pb_rng_below(&a, 7)]++;
    for (int k = 0; k < 7; k++) assert_true(counts[k] > 9500 && counts[k] < 10500);
    /* counter-based values depend only on (seed, i) */
    assert_true(pb_hash_uniform(5, 1000) == pb_hash_uniform(5, 1000));
    assert_true(pb_hash_uniform(5, 1000) != pb_hash_uniform(6, 1000));
    int perm[10];
    for (int i = 0; i < 10; i++) perm[i] = i;
    pb_rng_shuffle_int(&a, perm, 10);
    int seen = 0;
    for (int i = 0; i < 10; i++) seen |= 1 << perm[i];
    assert_int_equal(seen, 1023);
}

static void test_tokenizer(void **s) {
    (void)s;
    int32_t ids[16];
    const char *text = "h\xc3\xa9!"; /* UTF-8 bytes go through unchanged */
    assert_int_equal(pb_tok_encode(ids, 16, text, 4), 4);
    assert_int_equal(ids[0], 'h');
    assert_int_equal(ids[1], 0xc3);
    assert_int_equal(ids[2], 0xa9);
    ids[4] = PB_TOK_EOS;
    char out[16];
    assert_int_equal(pb_tok_decode(out, sizeof out, ids, 5), 4); /* specials skipped */
    assert_string_equal(out, text);
    assert_int_equal(pb_tok_encode(ids, 2, "abcd", 4), 4); /* needs 4, wrote 2 */
    assert_string_equal(pb_tok_special_name(PB_TOK_SEP), "<sep>");
    assert_null(pb_tok_special_name('a'));
}

static void test_builtin_corpus(void **s) {
    (void)s;
    size_t n1, n2;
    char *a = pb_corpus_builtin(20000, 9, &n1), *b = pb_corpus_builtin(20000, 9, &n2);
    assert_non_null(a);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_true(n1 >= 20000 && n1 < 22000);
    assert_non_null(strstr(a, "\n\f\n")); /* documents */
    for (size_t i = 0; i < n1; i++) assert_true(a[i] == '\n' || a[i] == '\f' || (a[i] >= 32 && a[i] < 127));
    free(b);
    b = pb_corpus_builtin(20000, 10, &n2);
    assert_true(n1 != n2 || memcmp(a, b, n1) != 0);
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_books_bytes), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rng),               cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_builtin_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
