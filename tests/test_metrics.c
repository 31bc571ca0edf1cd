/* test_metrics.c — every metric of tasks/metrics.h against values worked out by hand (the
 * arithmetic is in the comments), plus chrF against sacreBLEU's published outputs. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tasks/metrics.h"
#include "testutil.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void near(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.12g, expected %.12g (tol %.3g)", what, got, want, tol);
}

static void test_accuracy(void **state) {
    (void)state;
    /* correct at 0, 1, 3 -> 3/5 */
    int pred[] = {0, 1, 1, 0, 2}, gold[] = {0, 1, 0, 0, 1};
    double v;
    assert_int_equal(pb_metric_accuracy(pred, gold, 5, &v), PB_OK);
    near(v, 0.6, 1e-15, "accuracy");
    assert_int_equal(pb_metric_accuracy(pred, gold, 0, &v), PB_EINVAL);
}

static void test_f1(void **state) {
    (void)state;
    /* positive = 1: TP at 0, 3 (2); FP at 1 (1); FN at 2, 5 (2). F1 = 2*2 / (2*2 + 1 + 2) = 4/7 */
    int pred[] = {1, 1, 0, 1, 0, 0}, gold[] = {1, 0, 1, 1, 0, 1};
    double v;
    assert_int_equal(pb_metric_f1(pred, gold, 6, 1, &v), PB_OK);
    near(v, 4.0 / 7.0, 1e-15, "f1");
    /* no positive anywhere: 0, not NaN */
    int z[] = {0, 0, 0};
    assert_int_equal(pb_metric_f1(z, z, 3, 1, &v), PB_OK);
    near(v, 0.0, 0, "f1 without positives");
}

static void test_macro_f1(void **state) {
    (void)state;
    /* class 0: TP 1 (i0), predicted 3 (i0,i1,i6), gold 2 (i0,i5): F1 = 2*1/(3+2) = 0.4
     * class 1: TP 2 (i2,i3), predicted 2, gold 3 (i1,i2,i3):          F1 = 4/5     = 0.8
     * class 2: TP 1 (i4), predicted 2 (i4,i5), gold 2 (i4,i6):        F1 = 2/4     = 0.5
     * macro = (0.4 + 0.8 + 0.5) / 3 = 1.7/3 */
    int pred[] = {0, 0, 1, 1, 2, 2, 0}, gold[] = {0, 1, 1, 1, 2, 0, 2};
    double v;
    assert_int_equal(pb_metric_macro_f1(pred, gold, 7, 3, &v), PB_OK);
    near(v, 1.7 / 3.0, 1e-15, "macro_f1");
    /* a class in neither gold nor predictions is not averaged (as scikit-learn) */
    assert_int_equal(pb_metric_macro_f1(pred, gold, 7, 4, &v), PB_OK);
    near(v, 1.7 / 3.0, 1e-15, "macro_f1 with an absent class");
    /* labels out of range are an error naming the example */
    int bad[] = {0, 5};
    assert_int_equal(pb_metric_macro_f1(bad, gold, 2, 3, &v), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "example 1"));
}

static void test_mcc(void **state) {
    (void)state;
    /* binary: TP 2 (i0,i3), FP 1 (i1), FN 1 (i5), TN 3 (i2,i4,i6)
     * MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (6 - 1) / sqrt(3*3*4*4) = 5/12 */
    int pred[] = {1, 1, 0, 1, 0, 0, 0}, gold[] = {1, 0, 0, 1, 0, 1, 0};
    double v;
    assert_int_equal(pb_metric_mcc(pred, gold, 7, 2, &v), PB_OK);
    near(v, 5.0 / 12.0, 1e-15, "mcc binary");
    /* three classes (the macro_f1 example): s = 7, correct c = 4, predicted p = (3,2,2), gold t = (2,3,2)
     * c*s - sum p_k t_k = 28 - (6+6+4) = 12;  s^2 - sum p^2 = 49 - 17 = 32;  s^2 - sum t^2 = 49 - 17 = 32
     * MCC = 12 / sqrt(32*32) = 0.375 */
    int p3[] = {0, 0, 1, 1, 2, 2, 0}, g3[] = {0, 1, 1, 1, 2, 0, 2};
    assert_int_equal(pb_metric_mcc(p3, g3, 7, 3, &v), PB_OK);
    near(v, 0.375, 1e-15, "mcc 3 classes");
    /* a constant predictor: the denominator is 0 -> 0 */
    int c[] = {1, 1, 1, 1};
    assert_int_equal(pb_metric_mcc(c, gold, 4, 2, &v), PB_OK);
    near(v, 0.0, 0, "mcc constant");
}

static void test_pearson(void **state) {
    (void)state;
    /* x = 1..4, y = (2,4,5,9): means 2.5 and 5; dx = (-1.5,-.5,.5,1.5), dy = (-3,-1,0,4)
     * sxy = 4.5+.5+0+6 = 11, sxx = 5, syy = 26: r = 11 / sqrt(130) = 0.96476382123773... */
    double x[] = {1, 2, 3, 4}, y[] = {2, 4, 5, 9}, v;
    assert_int_equal(pb_metric_pearson(x, y, 4, &v), PB_OK);
    near(v, 11.0 / sqrt(130.0), 1e-14, "pearson");
    near(v, 0.9647638212377322, 1e-14, "pearson (decimal)");
    double c[] = {3, 3, 3, 3};
    assert_int_equal(pb_metric_pearson(x, c, 4, &v), PB_OK);
    near(v, 0.0, 0, "pearson without variance");
    double nan_[] = {1, NAN, 2, 3};
    assert_int_equal(pb_metric_pearson(x, nan_, 4, &v), PB_EINVAL);
}

static void test_spearman(void **state) {
    (void)state;
    /* ranks with ties: (3,1,3,2,3) sorts to 1(i1) 2(i3) 3,3,3 (i0,i2,i4 at positions 3,4,5 -> 4) */
    double a[] = {3, 1, 3, 2, 3}, r[5], want[] = {4, 1, 4, 2, 4};
    assert_int_equal(pb_metric_ranks(a, 5, r), PB_OK);
    tu_assert_close_d(r, want, 5, 0, 0, "ranks");
    /* x = (1,2,2,3) -> ranks (1,2.5,2.5,4); y = (10,20,30,20) -> ranks (1,2.5,4,2.5)
     * rank deviations from 2.5: dx = (-1.5,0,0,1.5), dy = (-1.5,0,1.5,0)
     * sxy = 2.25, sxx = syy = 4.5: rho = 0.5 */
    double x[] = {1, 2, 2, 3}, y[] = {10, 20, 30, 20}, v;
    assert_int_equal(pb_metric_spearman(x, y, 4, &v), PB_OK);
    near(v, 0.5, 1e-15, "spearman with ties");
    /* monotone but not linear: 1 */
    double p[] = {1, 2, 3, 4}, q[] = {1, 8, 27, 64};
    assert_int_equal(pb_metric_spearman(p, q, 4, &v), PB_OK);
    near(v, 1.0, 1e-15, "spearman monotone");
}

static void test_exact(void **state) {
    (void)state;
    /* byte-identical at 0 and 2 ("x y" vs "x  y" and "Q" vs "q" differ): 2/4 */
    const char *hyp[] = {"abc", "x y", "", "Q"}, *ref[] = {"abc", "x  y", "", "q"};
    double v;
    assert_int_equal(pb_metric_exact(hyp, ref, 4, &v), PB_OK);
    near(v, 0.5, 0, "exact");
}

static void test_chrf(void **state) {
    (void)state;
    double v;
    /* hyp "ab c" -> "abc" (whitespace removed), ref "abd":
     *   1-grams: hyp {a,b,c}, ref {a,b,d}, common 2: P = R = 2/3
     *   2-grams: hyp {ab,bc}, ref {ab,bd}, common 1: P = R = 1/2
     *   3-grams: {abc} vs {abd}, common 0:           P = R = 0
     *   4..6-grams: none in either: not counted (3 effective orders)
     * avg P = avg R = (2/3 + 1/2 + 0)/3 = 7/18; F_2 = 5PR/(4P+R) = P when P = R -> 100*7/18 */
    const char *h1[] = {"ab c"}, *r1[] = {"abd"};
    assert_int_equal(pb_metric_chrf(h1, r1, 1, &v), PB_OK);
    near(v, 100.0 * 7.0 / 18.0, 1e-12, "chrf one pair");
    /* corpus level: add "xyz"/"xyz" (1-grams 3/3/3, 2-grams 2/2/2, 3-grams 1/1/1) and sum first:
     *   1-grams: 6 hyp, 6 ref, 5 common -> 5/6;  2-grams: 4, 4, 3 -> 3/4;  3-grams: 2, 2, 1 -> 1/2
     * avg = (5/6 + 3/4 + 1/2)/3 = 25/36 -> 100*25/36 (not the mean of the sentence scores) */
    const char *h2[] = {"ab c", "xyz"}, *r2[] = {"abd", "xyz"};
    assert_int_equal(pb_metric_chrf(h2, r2, 2, &v), PB_OK);
    near(v, 100.0 * 25.0 / 36.0, 1e-12, "chrf corpus");
    /* beta = 2 weighs recall: hyp "aa", ref "a": 1-grams hyp 2, ref 1, common min(2,1) = 1:
     * P = 1/2, R = 1; 2-grams: ref has none -> 1 effective order. F_2 = 5*(1/2)*1/(4*(1/2)+1) = 5/6 */
    const char *h3[] = {"aa"}, *r3[] = {"a"};
    assert_int_equal(pb_metric_chrf(h3, r3, 1, &v), PB_OK);
    near(v, 100.0 * 5.0 / 6.0, 1e-12, "chrf recall weight");
    /* characters are code points: "é" vs "e" share nothing; "éa" vs "éb" share the 1-gram "é":
     * 1-grams P = R = 1/2, 2-grams 0 -> avg 1/4 -> 25 */
    const char *h4[] = {"\xC3\xA9" "a"}, *r4[] = {"\xC3\xA9" "b"};
    assert_int_equal(pb_metric_chrf(h4, r4, 1, &v), PB_OK);
    near(v, 25.0, 1e-12, "chrf code points");
    /* sacreBLEU 2.x outputs for its default CHRF() as printed in the Hugging Face metric card */
    const char *h5[] = {"The relationship between Obama and Netanyahu is not exactly friendly."};
    const char *r5[] = {"The ties between Obama and Netanyahu are not particularly friendly."};
    assert_int_equal(pb_metric_chrf(h5, r5, 1, &v), PB_OK);
    near(v, 61.576379378113785, 1e-9, "chrf vs sacrebleu (1)");
    const char *h6[] = {"The relationship between cats and dogs is not exactly friendly.",
                        "a good bookshop is just a genteel black hole that knows how to read."};
    const char *r6[] = {"The relationship between dogs and cats is not exactly friendly.",
                        "A good bookshop is just a genteel Black Hole that knows how to read."};
    assert_int_equal(pb_metric_chrf(h6, r6, 2, &v), PB_OK);
    near(v, 84.64214891738334, 1e-9, "chrf vs sacrebleu (2)");
    /* an empty hypothesis scores 0 */
    const char *h7[] = {""}, *r7[] = {"abc"};
    assert_int_equal(pb_metric_chrf(h7, r7, 1, &v), PB_OK);
    near(v, 0.0, 0, "chrf empty");
}

static void test_token_acc(void **state) {
    (void)state;
    /* "DT NN VB" vs "DT JJ VB .": positions 0 and 2 match, 3 is missing -> 2 of 4
     * "A B" vs "A B": 2 of 2.  Corpus: 4/6 */
    const char *hyp[] = {"DT NN VB", "A B"}, *ref[] = {"DT JJ VB .", "A  B"};
    double v;
    assert_int_equal(pb_metric_token_acc(hyp, ref, 2, &v), PB_OK);
    near(v, 4.0 / 6.0, 1e-15, "token_acc");
}

static void test_error_rates(void **state) {
    (void)state;
    size_t d, n;
    /* the classic: kitten -> sitting is 3 edits (k->s, e->i, +g), here over tokens */
    assert_int_equal(pb_metric_token_distance("k i t t e n", "s i t t i n g", &d, &n), PB_OK);
    assert_int_equal(d, 3);
    assert_int_equal(n, 7);
    /* TER: "the cat sat on mat" vs "the cat sat on the mat": 1 insertion, 6 reference tokens
     *      "a b c" vs "c b a": 2 substitutions, 3 reference tokens.  Corpus: (1+2)/(6+3) = 1/3 */
    const char *h[] = {"the cat sat on mat", "a b c"}, *r[] = {"the cat sat on the mat", "c b a"};
    double v;
    assert_int_equal(pb_metric_token_error_rate(h, r, 2, &v), PB_OK);
    near(v, 1.0 / 3.0, 1e-15, "ter");
    /* PER (cmudict_g2p): "K AE T" vs "K AE1 T" is 1 substitution of 3; "HH AH0 L OW1" exact (0 of 4).
     * Corpus: 1/7 (not the mean of 1/3 and 0) */
    const char *hp[] = {"K AE T", "HH AH0 L OW1"}, *rp[] = {"K AE1 T", "HH AH0 L OW1"};
    pb_metric_args a = {.n = 2, .pred_text = hp, .gold_text = rp};
    assert_int_equal(pb_metric_compute(PB_METRIC_PER, &a, &v), PB_OK);
    near(v, 1.0 / 7.0, 1e-15, "per");
    assert_int_equal(pb_metric_higher_is_better(PB_METRIC_PER), 0);
    assert_int_equal(pb_metric_higher_is_better(PB_METRIC_ACC), 1);
    /* deleting everything costs one per reference token: rate 1 */
    const char *he[] = {""}, *re[] = {"x y"};
    assert_int_equal(pb_metric_token_error_rate(he, re, 1, &v), PB_OK);
    near(v, 1.0, 0, "ter all deleted");
    /* empty references: 0 when the output is empty too, else 1 */
    const char *e0[] = {""}, *e1[] = {"a"};
    assert_int_equal(pb_metric_token_error_rate(e0, e0, 1, &v), PB_OK);
    near(v, 0.0, 0, "ter empty");
    assert_int_equal(pb_metric_token_error_rate(e1, e0, 1, &v), PB_OK);
    near(v, 1.0, 0, "ter empty reference");
}

static void test_registry(void **state) {
    (void)state;
    for (int i = 0; i < PB_METRIC_COUNT; i++) {
        pb_metric_id id;
        assert_int_equal(pb_metric_from_key(pb_metric_key((pb_metric_id)i), &id), PB_OK);
        assert_int_equal(id, i);
    }
    pb_metric_id id;
    assert_int_equal(pb_metric_from_key("bleu", &id), PB_ENOTFOUND);
    assert_non_null(strstr(pb_errmsg(), "chrf"));
    /* f1 through the dispatcher needs a binary task */
    int p[] = {0, 1, 2}, g[] = {0, 1, 2};
    pb_metric_args a = {.n = 3, .n_classes = 3, .pred_label = p, .gold_label = g};
    double v;
    assert_int_equal(pb_metric_compute(PB_METRIC_F1, &a, &v), PB_EINVAL);
    assert_int_equal(pb_metric_compute(PB_METRIC_ACC, &a, &v), PB_OK);
    near(v, 1.0, 0, "acc via dispatch");
    assert_int_equal(pb_metric_compute(PB_METRIC_CHRF, &a, &v), PB_EINVAL); /* texts missing */
}

/* Every classification metric from the confusion matrix equals its array form, on random
 * labels; every generation metric from summed per-example statistics equals its corpus form, and
 * the statistics of a subset (as a bootstrap resample uses) give the subset's metric. */
static void test_stats_forms(void **state) {
    (void)state;
    uint64_t x = 12345;
    for (int trial = 0; trial < 50; trial++) {
        int K = 2 + trial % 5, n = 1 + trial * 7 % 60, pred[64], gold[64];
        for (int i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            pred[i] = (int)((x >> 33) % (uint64_t)K);
            gold[i] = (int)((x >> 13) % (uint64_t)K);
        }
        double conf[36] = {0};
        for (int i = 0; i < n; i++) conf[gold[i] * K + pred[i]] += 1;
        assert_int_equal(pb_metric_n_stats(PB_METRIC_MACRO_F1, K), (size_t)(K * K));
        pb_metric_args a = {.n = (size_t)n, .n_classes = K, .pred_label = pred, .gold_label = gold};
        pb_metric_id ids[] = {PB_METRIC_ACC, PB_METRIC_F1, PB_METRIC_MACRO_F1, PB_METRIC_MCC};
        for (int m = 0; m < 4; m++) {
            if (ids[m] == PB_METRIC_F1 && K != 2) continue;
            double want, got;
            assert_int_equal(pb_metric_compute(ids[m], &a, &want), PB_OK);
            assert_int_equal(pb_metric_from_stats(ids[m], conf, K, &got), PB_OK);
            near(got, want, 1e-12, pb_metric_key(ids[m]));
        }
    }
    const char *hyp[] = {"AH0 B IY1", "the quick fox", "", "K AE1 T", "a b c d"};
    const char *ref[] = {"AH0 B IY1", "the quick brown fox", "x", "K AH1 T S", "a c d"};
    pb_metric_id ids[] = {PB_METRIC_EXACT, PB_METRIC_CHRF, PB_METRIC_TOKEN_ACC, PB_METRIC_TER, PB_METRIC_PER};
    for (int m = 0; m < 5; m++) {
        size_t k = pb_metric_n_stats(ids[m], 0);
        assert_true(k > 0 && k <= 18);
        double sum[18] = {0}, ex[18], got, want;
        for (int i = 1; i < 5; i++) { /* a subset: examples 1..4 */
            assert_int_equal(pb_metric_text_stats(ids[m], hyp[i], ref[i], ex), PB_OK);
            for (size_t j = 0; j < k; j++) sum[j] += ex[j];
        }
        pb_metric_args a = {.n = 4, .pred_text = hyp + 1, .gold_text = ref + 1};
        assert_int_equal(pb_metric_compute(ids[m], &a, &want), PB_OK);
        assert_int_equal(pb_metric_from_stats(ids[m], sum, 0, &got), PB_OK);
        near(got, want, 1e-12, pb_metric_key(ids[m]));
    }
    assert_int_equal(pb_metric_n_stats(PB_METRIC_SPEARMAN, 0), 0);
    double none[4] = {0};
    assert_int_not_equal(pb_metric_from_stats(PB_METRIC_ACC, none, 2, &(double){0}), PB_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),  cmocka_unit_test(test_f1),        cmocka_unit_test(test_macro_f1),
        cmocka_unit_test(test_mcc),       cmocka_unit_test(test_pearson),   cmocka_unit_test(test_spearman),
        cmocka_unit_test(test_exact),     cmocka_unit_test(test_chrf),      cmocka_unit_test(test_token_acc),
        cmocka_unit_test(test_error_rates), cmocka_unit_test(test_registry), cmocka_unit_test(test_stats_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
