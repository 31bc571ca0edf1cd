/* test_model.c — the whole transformer: gradients vs finite differences for every test family
 * (tests/families.h: causal and bidirectional, optional tensors; LM and classification heads,
 * padding), optional tensors as empty slots of the site index, frozen tensors cost nothing
 * (gradient bytes, FLOPs by closed form, saved activations), partial freezing leaves the
 * remaining gradients unchanged, determinism of training, copying a backbone by tensor name. */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "models/model.h"
#include "optim.h"
#include "pb_mem.h"
#include "pb_rng.h"
#include "families.h"

/* The GPT-style decoder of tests/families.h; the closed forms below are written for it. */
static pb_model_desc gpt_desc(int L, int C, int H, int V, int T) { return tf_desc(tf_find("gpt"), L, C, H, V, T); }

/* A batch with random ids; targets per head; sequence 1 padded after position pad_from. */
typedef struct {
    int B, T;
    int32_t ids[64], targets[64];
    uint8_t mask[64];
} tbatch;

static void make_batch(tbatch *tb, const pb_model *m, int B, int T, int pad_from, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    tb->B = B;
    tb->T = T;
    for (int i = 0; i < B * T; i++) {
        tb->ids[i] = (int32_t)pb_rng_below(&r, (uint64_t)m->d.vocab);
        tb->mask[i] = 1;
        tb->targets[i] = (int32_t)pb_rng_below(&r, (uint64_t)m->d.vocab);
    }
    if (pad_from > 0)
        for (int t = pad_from; t < T; t++) {
            tb->mask[T + t] = 0;
            tb->targets[T + t] = -1;
        }
    tb->targets[1] = -1; /* an ignored position */
    if (m->head == PB_HEAD_CLS)
        for (int b = 0; b < B; b++) tb->targets[b] = (int32_t)pb_rng_below(&r, (uint64_t)m->n_labels);
}

static pb_batch as_batch(const tbatch *tb, int use_mask) {
    pb_batch b = {.B = tb->B, .T = tb->T, .ids = tb->ids, .mask = use_mask ? tb->mask : NULL, .targets = tb->targets};
    return b;
}

/* Spread the weights so gradients are large enough to test in float. */
static void randomize(pb_model *m, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        pb_tensor *t = &m->tensors[i];
        for (size_t j = 0; j < t->numel; j++)
            t->data[j] = (t->ndim == 1 && !t->is_bias ? 1.0f : 0.0f) + 0.4f * (2.0f * pb_rng_uniform(&r) - 1.0f);
    }
}

static float loss_of(pb_model *m, const pb_batch *b) {
    float loss;
    assert_int_equal(pb_model_forward(m, b, 0, &loss), PB_OK);
    return loss;
}

/* Every trainable parameter's gradient vs central differences. Per element: |g - fd| <= 3e-3 +
 * 3e-2|fd| (float forward); per tensor: ||g - fd|| <= 1e-2 ||fd|| + 1e-3. */
static void gradcheck(pb_model *m, const pb_batch *b) {
    float loss;
    pb_model_zero_grad(m);
    assert_int_equal(pb_model_forward(m, b, 1, &loss), PB_OK);
    pb_model_backward(m);
    /* small enough that curvature (SwiGLU and RMSNorm at the llama row's width 16) stays inside
     * the tolerance, large enough that the float loss's rounding (~1e-7 relative) costs ~1e-4 */
    const float eps = 2e-3f;
    int checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        pb_tensor *t = &m->tensors[i];
        if (!t->trainable) {
            assert_null(t->grad);
            continue;
        }
        double dn = 0, fn = 0;
        for (size_t j = 0; j < t->numel; j++) {
            float keep = t->data[j];
            t->data[j] = keep + eps;
            double lp = loss_of(m, b);
            t->data[j] = keep - eps;
            double lm = loss_of(m, b);
            t->data[j] = keep;
            double fd = (lp - lm) / (2.0 * eps), g = t->grad[j];
            if (!(fabs(g - fd) <= 3e-3 + 3e-2 * fabs(fd)))
                fail_msg("%s[%zu]: analytic %.6g vs finite difference %.6g", t->name, j, g, fd);
            dn += (g - fd) * (g - fd);
            fn += fd * fd;
            checked++;
        }
        if (!(sqrt(dn) <= 1e-2 * sqrt(fn) + 1e-3))
            fail_msg("%s: ||analytic - fd|| = %.3g vs ||fd|| = %.3g", t->name, sqrt(dn), sqrt(fn));
    }
    assert_true(checked > 0);
}

static void run_gradcheck_desc(const pb_model_desc *dp, pb_head_kind head, int use_mask) {
    pb_model_desc d = *dp;
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, head, 3, 42), PB_OK);
    randomize(&m, 7);
    tbatch tb;
    make_batch(&tb, &m, 2, 5, use_mask ? 3 : 0, 99);
    pb_batch b = as_batch(&tb, use_mask);
    gradcheck(&m, &b);
    pb_model_free(&m);
}

/* Every family (its cmocka test is named after it): the LM head without and with padding, the
 * classification head with padding. */
static void test_grad_family(void **state) {
    const tf_family *f = *state;
    pb_model_desc d = tf_desc(f, 2, 8, 2, 11, 6);
    run_gradcheck_desc(&d, PB_HEAD_LM, 0);
    run_gradcheck_desc(&d, PB_HEAD_LM, 1);
    run_gradcheck_desc(&d, PB_HEAD_CLS, 1);
}

/* Optional tensors are NULL slots of the site index, not shifted pointers: no linear biases and an
 * untied LM head (lm_head.weight) in the gpt-untied family; no positions, norm biases or linear
 * biases, and a gate, in the llama family. */
static void test_optional_tensors(void **s) {
    (void)s;
    pb_model_desc d = tf_desc(tf_find("gpt-untied"), 2, 8, 2, 11, 6);
    assert_false(d.bias || d.tied_embed);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_OK);
    for (int l = 0; l < d.n_layer; l++) {
        assert_null(m.layers[l].b[PB_SITE_Q]);
        assert_null(m.layers[l].b[PB_SITE_DOWN]);
        assert_non_null(m.layers[l].w[PB_SITE_DOWN]);
        assert_int_equal(m.layers[l].w[PB_SITE_DOWN]->layer, l);
        assert_non_null(m.layers[l].b[PB_SITE_LN1]); /* LayerNorm keeps its bias */
        assert_null(m.layers[l].w[PB_SITE_GATE]);
    }
    assert_non_null(m.global.w[PB_SITE_HEAD]);
    assert_string_equal(m.global.w[PB_SITE_HEAD]->name, "lm_head.weight");
    assert_non_null(m.global.w[PB_SITE_POS]);
    pb_model_free(&m);
    d = tf_desc(tf_find("gpt"), 2, 8, 2, 11, 6);
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_OK);
    assert_null(m.global.w[PB_SITE_HEAD]); /* tied: the trunk uses the embedding */
    assert_non_null(m.layers[1].b[PB_SITE_Q]);
    assert_string_equal(m.layers[1].b[PB_SITE_Q]->name, "h.1.attn.q_proj.bias");
    pb_model_free(&m);
    /* LLaMA-style: no position table, RMSNorm without biases, a gate, narrower k/v (tf_desc: C 16,
     * H 4, Hkv 2) */
    d = tf_desc(tf_find("llama"), 2, 8, 2, 11, 6);
    assert_true(d.d_model == 16 && d.n_head == 4 && d.n_kv_head == 2);
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_OK);
    assert_null(m.global.w[PB_SITE_POS]);
    assert_null(m.global.b[PB_SITE_LN_F]);
    assert_non_null(m.global.w[PB_SITE_HEAD]);
    for (int l = 0; l < d.n_layer; l++) {
        assert_null(m.layers[l].b[PB_SITE_LN1]);
        assert_null(m.layers[l].b[PB_SITE_GATE]);
        assert_non_null(m.layers[l].w[PB_SITE_GATE]);
        assert_int_equal(m.layers[l].w[PB_SITE_K]->shape[0], 8);
        assert_int_equal(m.layers[l].w[PB_SITE_V]->shape[0], 8);
        assert_int_equal(m.layers[l].w[PB_SITE_Q]->shape[0], 16);
    }
    assert_string_equal(m.layers[1].w[PB_SITE_GATE]->name, "h.1.mlp.gate_proj.weight");
    pb_model_free(&m);
}

/* Partial freezing: the gradient of each still-trainable tensor is the same as with every
 * tensor trainable (the skipped products must not have contributed to it), and the frozen
 * configuration still passes the finite-difference check. */
static void test_partial_freeze_same_grads(void **s) {
    (void)s;
    for (int fi = 0; fi < TF_NFAMILY; fi++) {
        pb_model_desc d = tf_desc(&tf_families[fi], 3, 8, 2, 11, 6);
        pb_model m;
        assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 3, 5), PB_OK);
        randomize(&m, 3);
        tbatch tb;
        make_batch(&tb, &m, 2, 5, 3, 4);
        pb_batch b = as_batch(&tb, 1);
        float loss;
        pb_model_zero_grad(&m);
        assert_int_equal(pb_model_forward(&m, &b, 1, &loss), PB_OK);
        pb_model_backward(&m);
        float *full = malloc(sizeof(float) * m.n_params);
        memset(full, 0, sizeof(float) * m.n_params);
        for (int i = 0; i < m.n_tensors; i++)
            memcpy(full + m.tensors[i].offset, m.tensors[i].grad, sizeof(float) * m.tensors[i].numel);
        /* keep: layer 1's attn.v weight, layer 2's mlp.up bias and ln_2, ln_f, the head */
        const char *keep[] = {"h.1.attn.v_proj.weight", "h.2.mlp.c_fc.bias", "h.2.ln_2.weight", "ln_f.bias",
                              "score.weight", "score.bias"};
        pb_model_set_trainable_all(&m, 0);
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
            pb_tensor *t = pb_model_tensor(&m, keep[k]);
            /* a family without linear biases, or with RMSNorm (no norm biases) */
            if (!t && ((!d.bias && strstr(keep[k], "mlp.c_fc.bias")) ||
                       (d.norm == PB_NORM_RMSNORM && !strcmp(keep[k], "ln_f.bias"))))
                continue;
            assert_non_null(t);
            pb_tensor_set_trainable(&m, t, 1);
        }
        assert_int_equal(pb_model_prepare(&m), PB_OK);
        assert_int_equal(m.floor, 1);
        pb_model_zero_grad(&m);
        assert_int_equal(pb_model_forward(&m, &b, 1, &loss), PB_OK);
        pb_model_backward(&m);
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
            pb_tensor *t = pb_model_tensor(&m, keep[k]);
            if (t) tu_assert_close(t->grad, full + t->offset, t->numel, 1e-6, 1e-5, t->name);
        }
        gradcheck(&m, &b);
        /* Each tensor alone, then random subsets (each tensor trainable with probability 1/5). */
        pb_rng r;
        pb_rng_seed(&r, 100 + (uint64_t)!d.causal);
        for (int trial = 0; trial < m.n_tensors + 12; trial++) {
            for (int i = 0; i < m.n_tensors; i++)
                pb_tensor_set_trainable(&m, &m.tensors[i],
                                        trial < m.n_tensors ? i == trial : pb_rng_below(&r, 5) == 0);
            assert_int_equal(pb_model_prepare(&m), PB_OK);
            pb_model_zero_grad(&m);
            assert_int_equal(pb_model_forward(&m, &b, 1, &loss), PB_OK);
            pb_model_backward(&m);
            for (int i = 0; i < m.n_tensors; i++)
                if (m.tensors[i].trainable)
                    tu_assert_close(m.tensors[i].grad, full + m.tensors[i].offset, m.tensors[i].numel, 1e-6, 1e-5,
                                    m.tensors[i].name);
        }
        free(full);
        pb_model_free(&m);
    }
}

/* ---- what freezing saves: bytes and FLOPs by closed form ------------------------------------- */

typedef struct {
    uint64_t fwd_mm, bwd_in_mm, bwd_w_mm, bwd_w_total;
} step_count;

static step_count measure_step(pb_model *m, const pb_batch *b) {
    pb_flops f0, f1, d;
    float loss;
    pb_model_zero_grad(m);
    pb_flops_get(&f0);
    assert_int_equal(pb_model_forward(m, b, 1, &loss), PB_OK);
    pb_model_backward(m);
    pb_flops_get(&f1);
    pb_flops_diff(&d, &f1, &f0);
    step_count c = {d.n[PB_PHASE_FWD][PB_KIND_MATMUL], d.n[PB_PHASE_BWD_IN][PB_KIND_MATMUL],
                    d.n[PB_PHASE_BWD_W][PB_KIND_MATMUL], pb_flops_phase(&d, PB_PHASE_BWD_W)};
    return c;
}

static void test_flops_and_bytes_closed_form(void **s) {
    (void)s;
    const uint64_t L = 2, C = 16, H = 2, hs = 8, F = 64, V = 262, B = 3, T = 7, K = 4, N = B * T;
    pb_model_desc d = gpt_desc((int)L, (int)C, (int)H, (int)V, 16);
    int32_t ids[21], lm_t[21], cls_t[3] = {0, 3, 1};
    for (int i = 0; i < 21; i++) ids[i] = lm_t[i] = (i * 37) % 262;
    pb_batch lm_b = {.B = (int)B, .T = (int)T, .ids = ids, .targets = lm_t};
    pb_batch cls_b = {.B = (int)B, .T = (int)T, .ids = ids, .targets = cls_t};

    /* per layer, the linear products and the attention products */
    const uint64_t lin = 2 * N * C * C * 4 + 2 * N * C * F * 2; /* q,k,v,o + up,down */
    const uint64_t att = 2 * B * H * T * T * hs;                 /* one T x T x hs product per head */

    /* Full fine-tuning, LM head tied to wte. */
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_OK);
    step_count c = measure_step(&m, &lm_b);
    assert_int_equal(c.fwd_mm, L * (lin + 2 * att) + 2 * N * C * V);
    assert_int_equal(c.bwd_in_mm, L * (lin + 4 * att) + 2 * N * C * V); /* datt, dq, dk, dv */
    assert_int_equal(c.bwd_w_mm, L * lin + 2 * N * C * V);
    pb_mem_stats ms;
    pb_mem_get(&ms);
    assert_int_equal(ms.cur[PB_MEM_GRADS], 4 * m.n_params);
    assert_int_equal(ms.cur[PB_MEM_TRAINABLE], 4 * m.n_params);
    assert_int_equal(ms.cur[PB_MEM_FROZEN], 0);
    pb_model_free(&m);

    /* Frozen trunk, trainable classification head: no backward into the trunk at all. */
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, (int)K, 1), PB_OK);
    pb_model_set_trainable_all(&m, 0);
    pb_tensor_set_trainable(&m, m.global.w[PB_SITE_HEAD], 1);
    pb_tensor_set_trainable(&m, m.global.b[PB_SITE_HEAD], 1);
    assert_int_equal(pb_model_prepare(&m), PB_OK);
    c = measure_step(&m, &cls_b);
    assert_int_equal(c.fwd_mm, L * (lin + 2 * att) + 2 * B * C * K);
    assert_int_equal(c.bwd_in_mm, 0);
    assert_int_equal(c.bwd_w_mm, 2 * B * C * K);
    assert_int_equal(c.bwd_w_total, 2 * B * C * K + B * K); /* + the bias gradient's sums */
    pb_mem_get(&ms);
    assert_int_equal(ms.cur[PB_MEM_GRADS], 4 * (K * C + K)); /* 4 bytes x trainable, exactly */
    assert_int_equal(ms.cur[PB_MEM_TRAINABLE], 4 * (K * C + K));
    assert_int_equal(ms.cur[PB_MEM_FROZEN], 4 * (m.n_params - (K * C + K)));
    assert_int_equal(m.floor, (int)L); /* no layer saves activations */
    size_t acts_frozen = ms.cur[PB_MEM_ACTS];
    pb_model_free(&m);

    /* Only the top layer trainable (LM head tied to a frozen wte): backward runs through layer 1
     * only; its ln_1 input gradient is not needed, but q/k/v input gradients are (ln_1 trains). */
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_OK);
    pb_model_set_trainable_all(&m, 0);
    for (int i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].layer == 1) pb_tensor_set_trainable(&m, &m.tensors[i], 1);
    assert_int_equal(pb_model_prepare(&m), PB_OK);
    c = measure_step(&m, &lm_b);
    assert_int_equal(m.floor, 1);
    assert_int_equal(c.fwd_mm, L * (lin + 2 * att) + 2 * N * C * V);
    assert_int_equal(c.bwd_in_mm, lin + 4 * att + 2 * N * C * V);
    assert_int_equal(c.bwd_w_mm, lin);
    pb_mem_get(&ms);
    size_t layer_params = (m.n_params - (size_t)(V * C + 16 * C + 2 * C)) / L;
    assert_int_equal(ms.cur[PB_MEM_GRADS], 4 * layer_params);
    pb_model_free(&m);

    /* The same with the classification head: one layer's activations saved, none with a frozen
     * trunk (acts_frozen), so the difference is one layer's worth. */
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, (int)K, 1), PB_OK);
    pb_model_set_trainable_all(&m, 0);
    for (int i = 0; i < m.n_tensors; i++)
        if (m.tensors[i].layer == 1) pb_tensor_set_trainable(&m, &m.tensors[i], 1);
    assert_int_equal(pb_model_prepare(&m), PB_OK);
    measure_step(&m, &cls_b);
    pb_mem_get(&ms);
    size_t one_layer = 4 * (N * C * 8 + 4 * N + B * H * T * T + 2 * N * F);
    assert_int_equal(ms.cur[PB_MEM_ACTS] - acts_frozen, one_layer);
    pb_model_free(&m);
}

/* ---- determinism -------------------------------------------------------------------------- */

static void train20(float *losses, int threads) {
    omp_set_num_threads(threads);
    pb_model_desc d = gpt_desc(2, 32, 4, 262, 32);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 11), PB_OK);
    int nseg = pb_model_segments(&m, NULL);
    pb_segment seg[64];
    assert_true(nseg <= 64);
    pb_model_segments(&m, seg);
    pb_adamw opt;
    pb_adamw_config oc = pb_adamw_defaults();
    assert_int_equal(pb_adamw_init(&opt, &oc, seg, nseg), PB_OK);
    pb_rng r;
    pb_rng_seed(&r, 5);
    int32_t ids[8 * 32], tg[8 * 32];
    for (int step = 0; step < 20; step++) {
        for (int i = 0; i < 8 * 32; i++) {
            ids[i] = (int32_t)pb_rng_below(&r, 64);
            tg[i] = (ids[i] * 3 + 1) % 64;
        }
        pb_batch b = {.B = 8, .T = 32, .ids = ids, .targets = tg};
        pb_model_zero_grad(&m);
        assert_int_equal(pb_model_forward(&m, &b, 1, &losses[step]), PB_OK);
        pb_model_backward(&m);
        pb_adamw_step(&opt, 1e-3f);
    }
    pb_adamw_free(&opt);
    pb_model_free(&m);
}

static void test_determinism(void **s) {
    (void)s;
    float a[20], b[20];
    for (int threads = 1; threads <= 2; threads++) {
        train20(a, threads);
        train20(b, threads);
        tu_assert_same(a, b, 20, threads == 1 ? "losses at 1 thread" : "losses at 2 threads");
        assert_true(a[19] < a[0]); /* and it learns */
    }
}

/* ---- copying a backbone by name -------------------------------------------------------------- */

/* An untied LM model (lm_head.weight (V,C)) into a classifier: every trunk tensor copied, the
 * LM head dropped, the new head left as initialised; a source that lacks a tensor or holds it
 * with another shape is an error naming it. */
static void test_copy_by_name(void **s) {
    (void)s;
    pb_model_desc d = tf_desc(tf_find("gpt-untied"), 2, 8, 2, 11, 6);
    d.bias = 1; /* and a source without linear biases below */
    assert_false(d.tied_embed);
    pb_model lm, cls, fresh;
    assert_int_equal(pb_model_init(&lm, &d, PB_HEAD_LM, 0, 1), PB_OK);
    randomize(&lm, 5);
    assert_int_equal(pb_model_init(&cls, &d, PB_HEAD_CLS, 3, 2), PB_OK);
    assert_int_equal(pb_model_init(&fresh, &d, PB_HEAD_CLS, 3, 2), PB_OK);
    assert_true(lm.n_params > cls.n_params); /* the untied LM head (V,C) is larger than the (K,C) one */
    assert_int_equal(pb_model_copy_by_name(&cls, &lm, 1u << PB_SITE_HEAD), PB_OK);
    for (int i = 0; i < cls.n_tensors; i++) {
        const pb_tensor *t = &cls.tensors[i];
        const pb_tensor *want = t->site == PB_SITE_HEAD ? &fresh.tensors[i] : pb_model_tensor(&lm, t->name);
        assert_non_null(want);
        tu_assert_same(t->data, want->data, t->numel, t->name);
    }
    /* missing: a source without linear biases */
    pb_model_desc nb = d;
    nb.bias = 0;
    pb_model src;
    assert_int_equal(pb_model_init(&src, &nb, PB_HEAD_LM, 0, 1), PB_OK);
    assert_int_equal(pb_model_copy_by_name(&cls, &src, 1u << PB_SITE_HEAD), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "h.0.attn.q_proj.bias"));
    assert_non_null(strstr(pb_errmsg(), "missing"));
    pb_model_free(&src);
    /* another shape: a wider MLP */
    pb_model_desc wide = d;
    wide.d_ff = 40;
    assert_int_equal(pb_model_init(&src, &wide, PB_HEAD_LM, 0, 1), PB_OK);
    assert_int_equal(pb_model_copy_by_name(&cls, &src, 1u << PB_SITE_HEAD), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "h.0.mlp.c_fc.weight"));
    assert_non_null(strstr(pb_errmsg(), "(40, 8)"));
    pb_model_free(&src);
    pb_model_free(&fresh);
    pb_model_free(&cls);
    pb_model_free(&lm);
}

/* The LLaMA presets have the GPT preset's depth, width, heads and context, and the d_ff that makes
 * their blocks as large (pb_desc_matched_ff), and they run. */
static void test_llama_presets(void **s) {
    (void)s;
    pb_model m;
    static const char *const pairs[][2] = {{"tiny-llama", "tiny"}, {"mini-llama", "mini"}};
    for (int i = 0; i < 2; i++) {
        const pb_model_desc *a = pb_backbone_find(pairs[i][0]), *g = pb_backbone_find(pairs[i][1]);
        assert_non_null(a);
        assert_non_null(g);
        assert_true(a->n_layer == g->n_layer && a->d_model == g->d_model && a->n_head == g->n_head &&
                    a->max_seq == g->max_seq);
        int kvd = a->n_kv_head * (a->d_model / a->n_head);
        assert_int_equal(a->d_ff, pb_desc_matched_ff(a->d_model, kvd));
        assert_int_equal(pb_model_init(&m, a, PB_HEAD_LM, 0, 1), PB_OK);
        pb_model_free(&m);
    }
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_bad_input(void **s) {
    (void)s;
    pb_model_desc d = gpt_desc(1, 8, 2, 11, 4);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 2, 1), PB_OK);
    int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, tg[2] = {0, 1};
    float loss;
    pb_batch b = {.B = 1, .T = 5, .ids = ids, .targets = tg};
    assert_int_equal(pb_model_forward(&m, &b, 1, &loss), PB_EINVAL); /* T > max_seq */
    assert_non_null(strstr(pb_errmsg(), "max_seq"));
    b.T = 4;
    ids[2] = 11;
    assert_int_equal(pb_model_forward(&m, &b, 1, &loss), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "vocabulary"));
    ids[2] = 3;
    tg[0] = 2;
    assert_int_equal(pb_model_forward(&m, &b, 1, &loss), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "label 2"));
    pb_model_free(&m);
    d.d_model = 9;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "multiple of n_head"));
    d.d_model = 8;
    d.norm = PB_NORM_RMSNORM; /* half GPT, half LLaMA: refused, with each block's reason */
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "gpt: its norm is LayerNorm"));
    assert_non_null(strstr(pb_errmsg(), "llama: its MLP is SwiGLU"));
    /* the LLaMA-style block: an even head size, no biases, a causal decoder */
    pb_model_desc l = tf_desc(tf_find("llama"), 1, 6, 2, 11, 4); /* C 12, H 4: head size 3 */
    assert_int_equal(pb_model_init(&m, &l, PB_HEAD_LM, 0, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "RoPE needs an even head size"));
    l = tf_desc(tf_find("llama"), 1, 8, 2, 11, 4);
    l.bias = 1;
    assert_int_equal(pb_model_init(&m, &l, PB_HEAD_LM, 0, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "llama: its linear layers have no biases"));
    l.bias = 0;
    l.causal = 0;
    l.arch = PB_ARCH_ENCODER;
    assert_int_equal(pb_model_init(&m, &l, PB_HEAD_CLS, 2, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "llama: it is a causal decoder"));
    l = tf_desc(tf_find("llama"), 1, 8, 2, 11, 4);
    l.rope_theta = -1.0f;
    assert_int_equal(pb_model_init(&m, &l, PB_HEAD_LM, 0, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "rope_theta"));
}

int main(void) {
    /* one gradient check per family, named after it, then the rest */
    static const struct CMUnitTest rest[] = {
        cmocka_unit_test(test_optional_tensors),
        cmocka_unit_test(test_partial_freeze_same_grads),
        cmocka_unit_test(test_flops_and_bytes_closed_form),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_copy_by_name),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_llama_presets),
    };
    enum { NREST = sizeof rest / sizeof rest[0] };
    struct CMUnitTest tests[TF_NFAMILY + NREST];
    static char names[TF_NFAMILY][64];
    for (int i = 0; i < TF_NFAMILY; i++) {
        snprintf(names[i], sizeof names[i], "gradcheck %s", tf_families[i].name);
        tests[i] = (struct CMUnitTest){.name = names[i], .test_func = test_grad_family,
                                       .initial_state = (void *)&tf_families[i]};
    }
    for (int i = 0; i < NREST; i++) tests[TF_NFAMILY + i] = rest[i];
    return _cmocka_run_group_tests("test_model", tests, TF_NFAMILY + NREST, NULL, NULL);
}
