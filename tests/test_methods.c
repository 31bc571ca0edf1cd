/* test_methods.c — the checks every registered method must pass, generated from the registry:
 * no test names a method. For each method, its default spec (counting, parsing) and each of its
 * `examples` (everything), on every test family (tests/families.h: decoder, encoder, no biases
 * with an untied LM head), with LM and classification heads:
 *  - gradient of every trainable tensor (added and unfrozen) vs central finite differences
 *    (every element of small tensors, a seeded sample of larger ones);
 *  - trainable count == the method's closed form; gradient bytes == 4 x trainable;
 *  - frozen base tensors have no gradient buffer;
 *  - identity at initialisation where the method declares it;
 *  - merge: merged and unmerged outputs agree, merged inference FLOPs == the base model's;
 *  - bad hyperparameters are errors with messages, never crashes. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods/peft.h"
#include "models/model.h"
#include "pb_flops.h"
#include "pb_mem.h"
#include "pb_rng.h"
#include "families.h"

#define K_LABELS 3

/* A test family (tests/families.h) at the methods' test size: 2 layers, d_model 8, d_ff 32, 32
 * positions, 11 tokens. */
static pb_model_desc test_desc(const tf_family *f) { return tf_desc(f, 2, 8, 2, 11, 32); }

typedef struct {
    int32_t ids[16], targets[16];
    uint8_t mask[16];
    pb_batch b;
} tbatch;

static void make_batch(tbatch *t, pb_head_kind head, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    const int B = 2, T = 5;
    for (int i = 0; i < B * T; i++) {
        t->ids[i] = (int32_t)pb_rng_below(&r, 11);
        t->targets[i] = (int32_t)pb_rng_below(&r, 11);
        t->mask[i] = !(i >= T + 3); /* second sequence padded after 3 tokens */
        if (!t->mask[i]) t->targets[i] = -1;
    }
    if (head == PB_HEAD_CLS)
        for (int b = 0; b < B; b++) t->targets[b] = (int32_t)pb_rng_below(&r, K_LABELS);
    t->b = (pb_batch){.B = B, .T = T, .ids = t->ids, .mask = t->mask, .targets = t->targets};
}

/* Spread base weights (so gradients are testable in float) and perturb the method's tensors
 * away from their identity initialisation. */
static void spread_model(pb_model *m, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        pb_tensor *t = &m->tensors[i];
        for (size_t j = 0; j < t->numel; j++)
            t->data[j] = (t->ndim == 1 && !t->is_bias ? 1.0f : 0.0f) + 0.4f * (2.0f * pb_rng_uniform(&r) - 1.0f);
    }
}

static void perturb_added(pb_peft *p, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (int i = 0; i < p->n_params; i++) {
        pb_tensor *t = &p->params[i];
        if (!t->trainable) continue;
        for (size_t j = 0; j < t->numel; j++) t->data[j] += 0.3f * (2.0f * pb_rng_uniform(&r) - 1.0f);
    }
}

static float eval_loss(pb_model *m, const pb_batch *b) {
    float loss;
    if (pb_model_forward(m, b, 0, &loss) != PB_OK) fail_msg("forward failed: %s", pb_errmsg());
    return loss;
}

/* Central difference of the loss in element j of t with step eps. */
static double central_diff(pb_model *m, const pb_batch *b, pb_tensor *t, size_t j, float eps) {
    float keep = t->data[j];
    t->data[j] = keep + eps;
    double lp = eval_loss(m, b);
    t->data[j] = keep - eps;
    double lm = eval_loss(m, b);
    t->data[j] = keep;
    return (lp - lm) / (2.0 * eps);
}

/* Every element of small tensors, a seeded sample of 24 (plus the first and last) of larger
 * ones. An element passes when the analytic gradient matches the central difference at step
 * 1e-2 or, failing that, at 2e-3: the smaller step settles elements next to a kink of ReLU or of
 * a masked softmax, which the larger one straddles; a wrong gradient fails both. */
static void check_tensor_grad(pb_model *m, const pb_batch *b, pb_tensor *t, const char *spec) {
    double dn = 0, fn = 0;
    pb_rng r;
    pb_rng_seed(&r, t->numel * 131u + (uint64_t)t->name[0]);
    size_t n = t->numel <= 32 ? t->numel : 26;
    for (size_t k = 0; k < n; k++) {
        size_t j = t->numel <= 32 ? k : k == 0 ? 0 : k == 1 ? t->numel - 1 : (size_t)pb_rng_below(&r, t->numel);
        double g = t->grad[j], fd = central_diff(m, b, t, j, 1e-2f);
        if (!(fabs(g - fd) <= 3e-3 + 3e-2 * fabs(fd))) {
            double fd2 = central_diff(m, b, t, j, 2e-3f);
            if (!(fabs(g - fd2) <= 5e-3 + 3e-2 * fabs(fd2)))
                fail_msg("%s (%s, %s): %s[%zu] analytic %.6g vs finite difference %.6g (step 1e-2), %.6g (step 2e-3)",
                         spec, m->d.name, m->head == PB_HEAD_LM ? "lm" : "cls", t->name, j, g, fd, fd2);
            fd = fd2;
        }
        dn += (g - fd) * (g - fd);
        fn += fd * fd;
    }
    if (!(sqrt(dn) <= 1e-2 * sqrt(fn) + 1e-3))
        fail_msg("%s: %s: ||analytic - fd|| %.3g vs ||fd|| %.3g", spec, t->name, sqrt(dn), sqrt(fn));
}

/* Logits of the last forward, copied. */
static float *logits_copy(const pb_model *m) {
    size_t n = m->head == PB_HEAD_LM ? (size_t)m->dim.N * m->d.vocab : (size_t)m->dim.B * m->n_labels;
    float *x = malloc(n * sizeof *x + sizeof *x);
    memcpy(x, m->logits, n * sizeof *x);
    return x;
}

static size_t n_logits(const pb_model *m) {
    return m->head == PB_HEAD_LM ? (size_t)m->dim.N * m->d.vocab : (size_t)m->dim.B * m->n_labels;
}

/* Logits restricted to the real tokens (virtual tokens shift LM rows). */
static void real_logits(const pb_model *m, float *out) {
    if (m->head == PB_HEAD_CLS) {
        memcpy(out, m->logits, sizeof(float) * (size_t)m->dim.B * m->n_labels);
        return;
    }
    int V = m->d.vocab;
    for (int b = 0; b < m->dim.B; b++)
        memcpy(out + (size_t)b * m->dim.T * V, m->logits + ((size_t)b * m->dim.Tm + m->dim.Pe) * V,
               sizeof(float) * (size_t)m->dim.T * V);
}

static void run_spec(const char *spec, const tf_family *f, pb_head_kind head) {
    pb_model_desc d = test_desc(f);
    int K = head == PB_HEAD_CLS ? K_LABELS : 0;
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, head, K, 3), PB_OK);
    spread_model(&m, 17);
    tbatch tb;
    make_batch(&tb, head, 5);

    /* base outputs, for identity at init */
    float base_loss = eval_loss(&m, &tb.b);
    float *base_logits = malloc(sizeof(float) * n_logits(&m));
    real_logits(&m, base_logits);

    pb_mem_stats m0, m1;
    pb_mem_get(&m0);
    pb_peft p;
    if (pb_peft_create(&p, spec, NULL, head, K, &m, 7) != PB_OK) fail_msg("%s: create failed: %s", spec, pb_errmsg());
    pb_mem_get(&m1);
    const pb_method *meth = p.ctx[0]->method;

    /* counts */
    size_t trainable, all;
    pb_peft_counts(&p, &trainable, &all);
    if (trainable != pb_peft_closed_form(&p))
        fail_msg("%s (%s): trainable %zu != closed form %zu", spec, d.name, trainable, pb_peft_closed_form(&p));
    assert_true(trainable > 0);
    assert_true(all >= m.n_params);
    /* gradient bytes: the model's block (re-made for what now trains) plus the added block */
    size_t before_grads = m0.cur[PB_MEM_GRADS] - 4 * m.n_params; /* full fine-tuning's block was freed */
    assert_int_equal(m1.cur[PB_MEM_GRADS] - before_grads, 4 * trainable);
    assert_int_equal(m.n_grads + p.n_train, trainable);
    for (int i = 0; i < m.n_tensors; i++)
        if (!m.tensors[i].trainable) assert_null(m.tensors[i].grad);

    /* identity at initialisation */
    if (meth->identity_at_init) {
        float l = eval_loss(&m, &tb.b);
        float *lg = malloc(sizeof(float) * n_logits(&m));
        real_logits(&m, lg);
        if (memcmp(&l, &base_loss, sizeof l) != 0)
            fail_msg("%s: loss at init %.9g differs from the base model's %.9g", spec, l, base_loss);
        tu_assert_same(lg, base_logits, (size_t)(head == PB_HEAD_LM ? 2 * 5 * 11 : 2 * K), "logits at init");
        free(lg);
    }

    /* gradients of everything that trains */
    perturb_added(&p, 11);
    float loss;
    pb_peft_zero_grad(&p);
    assert_int_equal(pb_model_forward(&m, &tb.b, 1, &loss), PB_OK);
    pb_model_backward(&m);
    for (int i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].trainable) check_tensor_grad(&m, &tb.b, &m.tensors[i], spec);
    for (int i = 0; i < p.n_params; i++)
        if (p.params[i].trainable) check_tensor_grad(&m, &tb.b, &p.params[i], spec);

    /* merge (a method may refuse it for some options, e.g. a gated LoRA, with "cannot be merged") */
    if (meth->merge) {
        float before = eval_loss(&m, &tb.b);
        float *unmerged = logits_copy(&m);
        size_t nl = n_logits(&m);
        pb_status mst = pb_peft_merge(&p);
        if (mst != PB_OK && !(mst == PB_EINVAL && strstr(pb_errmsg(), "cannot be merged")))
            fail_msg("%s: merge failed: %s", spec, pb_errmsg());
        if (mst != PB_OK) goto unmergeable;
        pb_flops f0, f1, fm, fb;
        pb_flops_get(&f0);
        float after = eval_loss(&m, &tb.b);
        pb_flops_get(&f1);
        pb_flops_diff(&fm, &f1, &f0);
        tu_assert_close(m.logits, unmerged, nl, 1e-5, 1e-5, "merged logits");
        assert_float_equal(after, before, 1e-5 * fabs(before) + 1e-6);
        /* the same forward on a plain model with the merged weights */
        pb_model plain;
        assert_int_equal(pb_model_init(&plain, &d, head, K, 3), PB_OK);
        memcpy(plain.params, m.params, sizeof(float) * m.n_params);
        pb_flops_get(&f0);
        float plain_loss = eval_loss(&plain, &tb.b);
        pb_flops_get(&f1);
        pb_flops_diff(&fb, &f1, &f0);
        assert_true(memcmp(&fm, &fb, sizeof fm) == 0);
        assert_true(plain_loss == after);
        pb_model_free(&plain);
    unmergeable:
        free(unmerged);
    }
    pb_peft_free(&p);
    pb_model_free(&m);
    free(base_logits);
}

static void test_every_method(void **state) {
    (void)state;
    int ran = 0;
    for (int i = 0; i < pb_method_count(); i++) {
        const pb_method *meth = pb_method_at(i);
        assert_int_equal(meth->version, PB_METHOD_VERSION);
        assert_non_null(meth->attach);
        assert_non_null(meth->closed_form);
        const char *def_only[] = {meth->name, NULL};
        const char *const *specs = meth->examples ? meth->examples : def_only;
        for (int k = 0; specs[k]; k++)
            for (int fi = 0; fi < TF_NFAMILY; fi++) {
                run_spec(specs[k], &tf_families[fi], PB_HEAD_CLS);
                if (!meth->needs_cls_head) run_spec(specs[k], &tf_families[fi], PB_HEAD_LM);
                else {
                    pb_peft p;
                    pb_model_desc d = test_desc(&tf_families[fi]);
                    assert_int_equal(pb_peft_create(&p, specs[k], &d, PB_HEAD_LM, 0, NULL, 1), PB_EINVAL);
                }
                ran++;
            }
    }
    assert_true(ran >= pb_method_count());
}

/* Shape-only attach gives the same counts as the closed form, for the default spec and every
 * example, on several shapes: the test model, the runnable presets, and every shape-only real
 * model of models/zoo.c (LLaMA, T5, BERT, ViT, ...: GQA, gated FFNs, RMSNorm, no biases, untied
 * heads, cross-attention, poolers), both heads. On a real model a spec may be refused (an example
 * names GPT-2 modules that model lacks, PEFT has no default targets for it); every method must
 * still attach, and match, on most of them. */
static void test_shape_only_counts(void **state) {
    (void)state;
    enum { MAXS = 64 };
    pb_model_desc shapes[MAXS];
    int ns = 0, nzoo = 0;
    for (int i = 0; i < TF_NFAMILY; i++) shapes[ns++] = test_desc(&tf_families[i]);
    for (int i = 0; pb_backbone_at(i) && ns < MAXS; i++) shapes[ns++] = *pb_backbone_at(i);
    int first_zoo = ns;
    for (int i = 0; pb_zoo_at(i) && ns < MAXS; i++, nzoo++) shapes[ns++] = *pb_zoo_at(i);
    assert_true(nzoo > 0 && pb_zoo_at(nzoo) == NULL);
    for (int i = 0; i < pb_method_count(); i++) {
        const pb_method *meth = pb_method_at(i);
        int zoo_ok = 0;
        for (int s = 0; s < ns; s++) {
            int zoo = s >= first_zoo, attached = 0;
            const char *def_only[] = {NULL};
            const char *const *ex = meth->examples ? meth->examples : def_only;
            for (int k = -1; k < 0 || ex[k]; k++) {
                const char *spec = k < 0 ? meth->name : ex[k];
                for (int cls = 0; cls <= 1; cls++) {
                    if (!cls && meth->needs_cls_head) continue;
                    pb_peft p;
                    int K = cls ? 5 : 0;
                    if (pb_peft_create(&p, spec, &shapes[s], cls ? PB_HEAD_CLS : PB_HEAD_LM, K, NULL, 1) != PB_OK) {
                        /* an example may be refused on an LM head (e.g. a gated prefix); never on a class head
                         * of the runnable shapes */
                        if (cls && !zoo)
                            fail_msg("%s on %s: shape-only create failed: %s", spec, shapes[s].name, pb_errmsg());
                        continue;
                    }
                    size_t tr, all;
                    pb_peft_counts(&p, &tr, &all);
                    if (tr != pb_peft_closed_form(&p))
                        fail_msg("%s on %s (%s head): trainable %zu != closed form %zu", spec, shapes[s].name,
                                 cls ? "cls" : "lm", tr, pb_peft_closed_form(&p));
                    attached = 1;
                    pb_peft_free(&p);
                }
            }
            zoo_ok += zoo && attached;
        }
        if (2 * zoo_ok < nzoo)
            fail_msg("%s attached to only %d of the %d real models", meth->name, zoo_ok, nzoo);
    }
}

/* Unique names, hyperparameter tables well formed, and bad values rejected with a message. */
static void test_registry_and_bad_values(void **state) {
    (void)state;
    pb_model_desc d = test_desc(tf_first(1));
    char spec[256];
    for (int i = 0; i < pb_method_count(); i++) {
        const pb_method *a = pb_method_at(i);
        for (int j = i + 1; j < pb_method_count(); j++) assert_string_not_equal(a->name, pb_method_at(j)->name);
        assert_true(a->category >= 0 && a->category < PB_NCATEGORY);
        assert_true(a->summary && a->paper && strlen(a->summary) > 5);
        assert_true((a->linear_fwd == NULL) == (a->linear_bwd == NULL));
        assert_true((a->sublayer_fwd == NULL) == (a->sublayer_bwd == NULL));
        assert_true((a->prefix_fwd == NULL) == (a->prefix_bwd == NULL));
        assert_true((a->embed_fwd == NULL) == (a->embed_bwd == NULL));
        pb_peft p;
        snprintf(spec, sizeof spec, "%s:no_such_key=1", a->name);
        assert_int_equal(pb_peft_create(&p, spec, &d, PB_HEAD_CLS, 3, NULL, 1), PB_EINVAL);
        assert_non_null(strstr(pb_errmsg(), a->n_hparams ? "unknown hyperparameter" : "no_such_key"));
        for (int h = 0; h < a->n_hparams; h++) {
            const pb_hparam *hp = &a->hparams[h];
            const char *bad[3] = {NULL, NULL, NULL};
            char lo[64], hi[64], longtext[PB_HP_TEXT_MAX + 2];
            if (hp->type == PB_HP_INT || hp->type == PB_HP_FLOAT) {
                snprintf(lo, sizeof lo, "%.17g", hp->lo - (hp->type == PB_HP_INT ? 1 : fmax(1e-3, fabs(hp->lo))));
                snprintf(hi, sizeof hi, "%.17g", hp->hi * 2 + 1);
                bad[0] = lo;
                bad[1] = hi;
                bad[2] = "abc";
            } else if (hp->type == PB_HP_SITES) {
                bad[0] = "no_such_module";
            } else if (hp->type == PB_HP_TEXT) {
                memset(longtext, 'x', sizeof longtext - 1); /* one byte too long */
                longtext[sizeof longtext - 1] = '\0';
                bad[0] = longtext;
            } else {
                bad[0] = "maybe";
            }
            for (int k = 0; k < 3 && bad[k]; k++) {
                snprintf(spec, sizeof spec, "%s:%s=%s", a->name, hp->key, bad[k]);
                if (pb_peft_create(&p, spec, &d, PB_HEAD_CLS, 3, NULL, 1) != PB_EINVAL)
                    fail_msg("%s was accepted", spec);
                if (!strstr(pb_errmsg(), hp->key) && !strstr(pb_errmsg(), bad[k]))
                    fail_msg("%s: message does not name the key or value: %s", spec, pb_errmsg());
            }
            /* sizes larger than the layer are refused by attach, not crashes */
            if (!strcmp(hp->key, "r")) {
                snprintf(spec, sizeof spec, "%s:r=%d", a->name, 4096);
                assert_int_equal(pb_peft_create(&p, spec, &d, PB_HEAD_CLS, 3, NULL, 1), PB_EINVAL);
            }
        }
    }
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, "no_such_method", &d, PB_HEAD_CLS, 3, NULL, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "lora")); /* lists what exists */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_and_bad_values),
        cmocka_unit_test(test_shape_only_counts),
        cmocka_unit_test(test_every_method),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
