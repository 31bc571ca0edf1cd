/* test_methods.c — the checks every registered method must pass, generated from the registry:
 * no test names a method. Each method is its own cmocka test, named after it (one failure does
 * not hide the others' results). For each method, its default spec (what `methods = all` runs)
 * and each of its `examples`, on every test family (tests/families.h: decoder, encoder, no biases
 * with an untied LM head, LLaMA-style) with LM and classification heads (a method that cannot run
 * on a family must refuse it with the error tests/families.h names):
 *  - gradient of every trainable tensor (added and unfrozen) vs central finite differences of the
 *    training-mode loss (tu_check_grad: relative tolerances, a kink-safe step ladder, the
 *    analytic gradient non-zero and the finite-difference one above a floor). The differences
 *    replay the analytic gradient's forward (pb_peft_hold): dropout masks are the same function
 *    of (seed, step, index), and DoRA's detached norm is held, so a detached gradient is checked
 *    as the exact gradient of its surrogate. A method still choosing what trains (sparse's
 *    Fisher warm-up) first runs training steps until its choice is made;
 *  - trainable count == the method's closed form; gradient bytes == 4 x trainable;
 *  - frozen base tensors have no gradient buffer;
 *  - identity at initialisation where the method declares it;
 *  - merge: merged and unmerged outputs agree, merged inference FLOPs == the base model's;
 *  - bad hyperparameters are errors with messages, never crashes (one test for the registry).
 * Threads: one (main). These are tiny shapes whose many small forwards only lose to OpenMP's
 * hand-offs on a shared machine; the kernels' and methods' threaded paths are checked at two
 * threads by test_kernels, test_model and test_count_flops. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli.h"
#include "methods/peft.h"
#include "models/model.h"
#include "pb_flops.h"
#include "pb_mem.h"
#include "pb_rng.h"
#include "families.h"

#define K_LABELS 3

/* A test family (tests/families.h) at the methods' test size: 2 layers, d_model 8, d_ff 32, 32
 * positions, 11 tokens (a grouped-query family twice as wide: tf_desc). */
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

/* The attention key bias has a zero gradient by construction (softmax is invariant to a
 * per-query constant; docs/ARCHITECTURE.md "Decisions"). */
static int zero_by_construction(const pb_tensor *t) { return t->site == PB_SITE_K && t->is_bias; }

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

/* Trainable tensors whose differences were too small to check (tu_check_grad returned 1). */
#define MAX_WEAK 64
typedef struct {
    int n;
    char name[MAX_WEAK][128];
} weak_list;

static int listed(const weak_list *w, const char *name) {
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->name[i], name)) return 1;
    return 0;
}

static void check_one(pb_model *m, const pb_batch *b, pb_tensor *t, int may_be_zero, const char *what, weak_list *weak,
                      const weak_list *only) {
    if (only && !listed(only, t->name)) return;
    if (tu_check_grad(m, b, t, may_be_zero, what) && weak->n < MAX_WEAK)
        snprintf(weak->name[weak->n++], sizeof weak->name[0], "%s", t->name);
}

/* Gradient check of every trainable tensor of m (only: of those named there), base and added,
 * once the method has chosen what trains (sparse's Fisher warm-up: training steps without
 * updates until then). The analytic gradient comes from a training forward and backward; the
 * finite differences replay it (pb_peft_hold). Tensors too small to check go to weak. */
static void check_grads(pb_model *m, pb_peft *p, const pb_batch *b, const char *what, weak_list *weak,
                        const weak_list *only) {
    float loss;
    for (int k = 0; pb_peft_setting_up(p); k++) {
        if (k == 1000) fail_msg("%s: still setting up after %d training steps", what, k);
        pb_peft_zero_grad(p);
        if (pb_model_forward(m, b, 1, &loss) != PB_OK) fail_msg("%s: forward failed: %s", what, pb_errmsg());
        pb_model_backward(m);
    }
    pb_peft_zero_grad(p);
    if (pb_model_forward(m, b, 1, &loss) != PB_OK) fail_msg("%s: forward failed: %s", what, pb_errmsg());
    pb_model_backward(m);
    pb_peft_hold(p, 1);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable) check_one(m, b, &m->tensors[i], zero_by_construction(&m->tensors[i]), what, weak, only);
    for (int i = 0; i < p->n_params; i++)
        if (p->params[i].trainable) check_one(m, b, &p->params[i], 0, what, weak, only);
    pb_peft_hold(p, 0);
}

/* The weak tensors again at other draws of base weights, batch, method seed and perturbation,
 * until each has been checked; fails naming those no draw resolves. */
static void redraw(const char *spec, const tf_family *f, pb_head_kind head, const char *what, weak_list *weak) {
    pb_model_desc d = test_desc(f);
    int K = head == PB_HEAD_CLS ? K_LABELS : 0;
    for (int draw = 1; draw <= 4 && weak->n; draw++) {
        pb_model m;
        assert_int_equal(pb_model_init(&m, &d, head, K, 3), PB_OK);
        spread_model(&m, 17 + 1000 * (uint64_t)draw);
        tbatch tb;
        make_batch(&tb, head, 5 + (uint64_t)draw);
        pb_peft p;
        if (pb_peft_create(&p, spec, NULL, head, K, &m, 7 + (uint64_t)draw) != PB_OK)
            fail_msg("%s: create failed: %s", what, pb_errmsg());
        perturb_added(&p, 11 + (uint64_t)draw);
        char w2[700];
        snprintf(w2, sizeof w2, "%s, draw %d", what, draw);
        weak_list still = {0};
        check_grads(&m, &p, &tb.b, w2, &still, weak);
        *weak = still;
        pb_peft_free(&p);
        pb_model_free(&m);
    }
    if (weak->n) {
        char names[1024];
        size_t k = 0;
        for (int i = 0; i < weak->n && k < sizeof names; i++)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", weak->name[i]);
        fail_msg("%s: the gradient of %s is below the finite differences' resolution at 5 draws of the weights "
                 "(PB_TEST_VERBOSE=1 shows the norms)",
                 what, names);
    }
}

static void run_spec(const char *spec, const tf_family *f, pb_head_kind head) {
    pb_model_desc d = test_desc(f);
    int K = head == PB_HEAD_CLS ? K_LABELS : 0;
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, head, K, 3), PB_OK);
    const char *refusal = tf_refusal(spec, f);
    if (refusal) { /* a method that cannot run on this family says why (tests/families.h) */
        pb_peft p;
        if (pb_peft_create(&p, spec, NULL, head, K, &m, 7) == PB_OK)
            fail_msg("%s on %s: attached, but tests/families.h expects the refusal '%s'", spec, d.name, refusal);
        if (!strstr(pb_errmsg(), refusal))
            fail_msg("%s on %s: refused with '%s', expected '%s'", spec, d.name, pb_errmsg(), refusal);
        pb_model_free(&m);
        return;
    }
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
    char what[600];
    snprintf(what, sizeof what, "%s (%s, %s head)", spec, d.name, head == PB_HEAD_LM ? "lm" : "cls");

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

    /* gradients of everything that trains; tensors too small to check at this draw, again at others */
    perturb_added(&p, 11);
    weak_list weak = {0};
    check_grads(&m, &p, &tb.b, what, &weak, NULL);
    if (weak.n) redraw(spec, f, head, what, &weak);

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

/* One method: its default spec and every example, on every test family and head. */
static void test_method(void **state) {
    const pb_method *meth = *state;
    assert_int_equal(meth->version, PB_METHOD_VERSION);
    assert_non_null(meth->attach);
    assert_non_null(meth->closed_form);
    const char *const none[] = {NULL};
    const char *const *ex = meth->examples ? meth->examples : none;
    for (int k = -1; k < 0 || ex[k]; k++) {
        const char *spec = k < 0 ? meth->name : ex[k];
        if (k >= 0 && !strcmp(spec, meth->name)) continue; /* the default, already run */
        for (int fi = 0; fi < TF_NFAMILY; fi++) {
            run_spec(spec, &tf_families[fi], PB_HEAD_CLS);
            if (!meth->needs_cls_head) {
                run_spec(spec, &tf_families[fi], PB_HEAD_LM);
            } else {
                pb_peft p;
                pb_model_desc d = test_desc(&tf_families[fi]);
                assert_int_equal(pb_peft_create(&p, spec, &d, PB_HEAD_LM, 0, NULL, 1), PB_EINVAL);
            }
        }
    }
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
                    const char *refusal = zoo ? NULL : tf_refusal(spec, tf_of(&shapes[s]));
                    if (pb_peft_create(&p, spec, &shapes[s], cls ? PB_HEAD_CLS : PB_HEAD_LM, K, NULL, 1) != PB_OK) {
                        /* an example may be refused on an LM head (e.g. a gated prefix); never on a class head
                         * of the runnable shapes, but for the refusals of tests/families.h */
                        if (refusal && !strstr(pb_errmsg(), refusal))
                            fail_msg("%s on %s: refused with '%s', expected '%s'", spec, shapes[s].name, pb_errmsg(),
                                     refusal);
                        if (cls && !zoo && !refusal)
                            fail_msg("%s on %s: shape-only create failed: %s", spec, shapes[s].name, pb_errmsg());
                        continue;
                    }
                    if (refusal)
                        fail_msg("%s on %s: attached, but tests/families.h expects the refusal '%s'", spec,
                                 shapes[s].name, refusal);
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

/* Sites named as Hugging Face names the modules, on every family (LLaMA's q_proj ... down_proj and
 * gate_proj; GPT-2's c_fc and c_proj keep working), joined by '+' or, as PEFT's target_modules
 * lists, after commas: targets=q_proj,v_proj is targets=q_proj+v_proj. */
static void test_hf_site_names(void **state) {
    (void)state;
    const pb_method *m;
    pb_hp_values a, b;
    assert_int_equal(pb_peft_parse("lora:targets=q_proj,v_proj,r=4", &m, &a), PB_OK);
    assert_int_equal(pb_peft_parse("lora:r=4,targets=q_proj+v_proj", &m, &b), PB_OK);
    int ti = -1;
    for (int i = 0; i < m->n_hparams; i++)
        if (!strcmp(m->hparams[i].key, "targets")) ti = i;
    assert_true(ti >= 0);
    assert_int_equal(a.sites[ti], b.sites[ti]);
    assert_string_equal(a.raw[ti], b.raw[ti]);
    assert_int_equal(a.sites[ti], (1u << PB_SITE_Q) | (1u << PB_SITE_V));
    /* a bare name after a key that is not a site list stays an error */
    assert_int_equal(pb_peft_parse("lora:r=4,v_proj", &m, &a), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "'v_proj' is not key=value"));
    for (int fi = 0; fi < TF_NFAMILY; fi++) {
        pb_model_desc d = test_desc(&tf_families[fi]);
        int gated = d.ffn != PB_FFN_GELU;
        static const char *const specs[][2] = {
            {"lora:targets=q_proj,v_proj", "lora:targets=attn.q+attn.v"},
            {"lora:targets=q_proj,k_proj,v_proj,o_proj,up_proj,down_proj", "lora:targets=all-linear"},
            {"ia3:targets=k_proj,v_proj,down_proj,feedforward_modules=down_proj", "ia3"},
            {"lora:targets=c_fc+c_proj", "lora:targets=mlp.up+attn.o+mlp.down"},
            {"lora:targets=gate_proj,up_proj,down_proj", "lora:targets=mlp.gate+mlp.up+mlp.down"},
        };
        for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
            if (k == 4 && !gated) continue; /* no gate_proj without a gated MLP */
            /* all-linear includes the gate of a gated MLP */
            const char *pair[2] = {k == 1 && gated ? "lora:targets=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
                                                   : specs[k][0],
                                   specs[k][1]};
            size_t n[2], all;
            for (int j = 0; j < 2; j++) {
                pb_peft p;
                if (pb_peft_create(&p, pair[j], &d, PB_HEAD_CLS, K_LABELS, NULL, 1) != PB_OK)
                    fail_msg("%s on %s: %s", pair[j], d.name, pb_errmsg());
                pb_peft_counts(&p, &n[j], &all);
                pb_peft_free(&p);
            }
            if (n[0] != n[1]) fail_msg("%s and %s on %s: %zu vs %zu trainable", pair[0], pair[1], d.name, n[0], n[1]);
        }
        if (!gated) {
            pb_peft p;
            assert_int_equal(pb_peft_create(&p, "lora:targets=gate_proj", &d, PB_HEAD_CLS, K_LABELS, NULL, 1), PB_EINVAL);
            assert_non_null(strstr(pb_errmsg(), "'gate_proj' matches no site"));
        }
    }
}

int main(void) {
    pb_set_threads(1);
    int nm = pb_method_count();
    struct CMUnitTest *tests = calloc((size_t)nm + 3, sizeof *tests);
    if (!tests) return 1;
    int n = 0;
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_registry_and_bad_values);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hf_site_names);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_shape_only_counts);
    for (int i = 0; i < nm; i++) /* one test per method, named after it */
        tests[n++] = (struct CMUnitTest){pb_method_at(i)->name, test_method, NULL, NULL, (void *)pb_method_at(i)};
    int failed = _cmocka_run_group_tests("methods", tests, (size_t)n, NULL, NULL);
    free(tests);
    return failed;
}
