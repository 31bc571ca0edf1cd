/* test_adapter.c — adapter files: save, load onto a fresh model with the same backbone, identical
 * outputs (bit-exact) for every method's first example on every test family (tests/families.h);
 * bad files give clear errors. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "methods/adapter.h"
#include "methods/peft.h"
#include "models/model.h"
#include "pb_rng.h"
#include "families.h"

/* Test family f (tests/families.h) with 2 layers, d_model 8, d_ff 32, 11 tokens, 32 positions. */
static pb_model_desc desc(const tf_family *f) { return tf_desc(f, 2, 8, 2, 11, 32); }

static void perturb(pb_peft *p, pb_model *m, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (int i = 0; i < p->n_params; i++)
        if (p->params[i].trainable)
            for (size_t j = 0; j < p->params[i].numel; j++) p->params[i].data[j] += 0.1f * pb_rng_normal(&r);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable)
            for (size_t j = 0; j < m->tensors[i].numel; j++) m->tensors[i].data[j] += 0.1f * pb_rng_normal(&r);
}

static void round_trip_every_method(const tf_family *f) {
    pb_model_desc d = desc(f);
    int32_t ids[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, tg[2] = {0, 2};
    pb_batch b = {.B = 2, .T = 5, .ids = ids, .targets = tg};
    char path[512];
    snprintf(path, sizeof path, "%s/adapter.h5", tu_tmpdir());
    for (int i = 0; i < pb_method_count(); i++) {
        const pb_method *meth = pb_method_at(i);
        const char *spec = meth->examples ? meth->examples[0] : meth->name;
        pb_model a, c;
        assert_int_equal(pb_model_init(&a, &d, PB_HEAD_CLS, 3, 1), PB_OK);
        assert_int_equal(pb_model_init(&c, &d, PB_HEAD_CLS, 3, 1), PB_OK); /* same backbone weights */
        pb_peft pa, pc;
        const char *refusal = tf_refusal(spec, f);
        pb_status st = pb_peft_create(&pa, spec, NULL, PB_HEAD_CLS, 3, &a, 5);
        if (refusal) { /* cannot run on this family (tests/families.h): nothing to save */
            if (st == PB_OK || !strstr(pb_errmsg(), refusal))
                fail_msg("%s on %s: expected the refusal '%s'", spec, d.name, refusal);
            pb_model_free(&a);
            pb_model_free(&c);
            continue;
        }
        if (st != PB_OK) fail_msg("%s: %s", spec, pb_errmsg());
        perturb(&pa, &a, 9); /* as if trained */
        float la, lc;
        assert_int_equal(pb_model_forward(&a, &b, 0, &la), PB_OK);
        if (pb_adapter_save(path, &pa, spec) != PB_OK) fail_msg("%s: save: %s", spec, pb_errmsg());
        if (pb_adapter_load(path, &c, &pc) != PB_OK) fail_msg("%s: load: %s", spec, pb_errmsg());
        assert_int_equal(pb_model_forward(&c, &b, 0, &lc), PB_OK);
        if (memcmp(&la, &lc, sizeof la) != 0) fail_msg("%s: loss %.9g after loading, %.9g before", spec, lc, la);
        tu_assert_same(c.logits, a.logits, 6, spec);
        pb_peft_free(&pa);
        pb_peft_free(&pc);
        pb_model_free(&a);
        pb_model_free(&c);
    }
}

static void test_round_trip_every_method(void **s) {
    (void)s;
    for (int fi = 0; fi < TF_NFAMILY; fi++) round_trip_every_method(&tf_families[fi]);
}

static void test_bad_files(void **s) {
    (void)s;
    pb_model_desc d = desc(tf_first(1));
    pb_model m;
    pb_peft p;
    char path[512], garbage[512];
    snprintf(path, sizeof path, "%s/lora.h5", tu_tmpdir());
    snprintf(garbage, sizeof garbage, "%s/garbage.h5", tu_tmpdir());
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 3, 1), PB_OK);
    assert_int_equal(pb_peft_create(&p, "lora:r=2", NULL, PB_HEAD_CLS, 3, &m, 1), PB_OK);
    assert_int_equal(pb_adapter_save(path, &p, "lora:r=2"), PB_OK);
    pb_peft_free(&p);
    pb_model_free(&m);

    assert_int_equal(pb_adapter_load("/nonexistent/x.h5", &m, &p), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "/nonexistent/x.h5"));
    FILE *f = fopen(garbage, "wb");
    fputs("not an hdf5 file at all", f);
    fclose(f);
    assert_int_not_equal(pb_adapter_load(garbage, &m, &p), PB_OK);
    assert_non_null(strstr(pb_errmsg(), "not an HDF5 file"));
    /* a truncated copy */
    FILE *in = fopen(path, "rb"), *out = fopen(garbage, "wb");
    char buf[700];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    assert_int_not_equal(pb_adapter_load(garbage, &m, &p), PB_OK);
    assert_true(strlen(pb_errmsg()) > 0);
    /* another shape */
    d.d_model = 16;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 3, 1), PB_OK);
    assert_int_equal(pb_adapter_load(path, &m, &p), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "d_model=8"));
    pb_model_free(&m);
    /* another head */
    d.d_model = 8;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_OK);
    assert_int_equal(pb_adapter_load(path, &m, &p), PB_EINVAL);
    pb_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_method),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
