/* loha.c — LoHa: a low-rank Hadamard-product update of frozen linear layers (FedPara, LyCORIS).
 *
 *   dW = s (w1_a w1_b) ⊙ (w2_a w2_b),   w1_a, w2_a (OC, r),  w1_b, w2_b (r, IC),  s = alpha / r
 *   y  = x (W + dW)^T + b
 * dW has rank up to r^2 from 2 r (IC + OC) numbers (Hyeon-Woo et al. 2022, FedPara: the low-rank
 * Hadamard product parameterisation).
 * Shapes and initialisation as Hugging Face PEFT (src/peft/tuners/loha/layer.py,
 * create_adapter_parameters / reset_adapter_parameters): w1_a, w1_b, w2_a ~ kaiming_uniform(a =
 * sqrt(5)) = U(+-1/sqrt(fan_in)) with fan_in = r for w1_a, w2_a and IC for w1_b; w2_b = 0, so
 * dW = 0 and the model starts exactly at the base model. Defaults as LoHaConfig: r = 8,
 * alpha = 8; targets q, v (PEFT uses LoRA's per-model default targets for LoHa).
 * Not implemented: rank_dropout, module_dropout (PEFT's defaults are 0), conv layers.
 * Merge: W += dW.
 *
 * Computation: dW is formed densely each forward — 2 products (OC, r)(r, IC), 4 OC IC r MATMUL
 * FLOPs, plus 3 OC IC OTHER for the Hadamard product, the scale and the add — and folded into
 * the weight, W' = W + dW, so the site runs ONE product x W'^T (2 N IC OC), the same as the base
 * layer. (PEFT computes base(x) + x dW^T, a second full-size product per forward and per input
 * gradient; the result is the same.) Backward: dx += dy W'^T (W' recomputed), the dense weight
 * gradient G = dy^T x (2 N IC OC, bwd_w), then exact gradients through the Hadamard product,
 *   dP1 = s G ⊙ P2,  dP2 = s G ⊙ P1   (P1 = w1_a w1_b, P2 = w2_a w2_b, recomputed)
 *   dw1_a += dP1 w1_b^T, dw1_b += w1_a^T dP1, and the same for w2 (8 OC IC r MATMUL).
 * Nothing is saved beyond the site input the model keeps; workspace: P1, P2, W' / G (3 max OC IC).
 *
 * Closed form: trainable = sum over targeted sites of 2 r (IC + OC) (the task head is the
 * framework's to count). For q,v on the GPT-style backbone: 8 r C L.
 */
#include "lowrank.h"
#include "pb_mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { HP_R, HP_ALPHA, HP_TARGETS };

static const pb_hparam loha_hparams[] = {
    [HP_R] = {"r", "rank", PB_HP_INT, "8", 1, 65536, NULL, "rank of each factor pair (dW has rank up to r^2)"},
    [HP_ALPHA] = {"alpha", NULL, PB_HP_FLOAT, "8", 1e-6, 1e6, NULL, "scale numerator: s = alpha/r"},
    [HP_TARGETS] = {"targets", "target_modules", PB_HP_SITES, "q_proj+v_proj", 0, 0, NULL,
                    "linear sites to adapt (site names or Hugging Face module names, joined by +)"},
};

enum { W1A, W1B, W2A, W2B, NFAC };

typedef struct {
    int r;
    float scale;
    int n;                                       /* targets */
    int f[PB_LOWRANK_MAX_TARGETS][NFAC];         /* tensor handles */
    int ic[PB_LOWRANK_MAX_TARGETS], oc[PB_LOWRANK_MAX_TARGETS];
    size_t max_w;                                /* largest OC * IC */
} loha_state;

static pb_status loha_attach(pb_method_ctx *c) {
    loha_state *s = c->state;
    uint32_t sites;
    pb_status st = pb_ctx_sites(c, "targets", PB_LOWRANK_SITES, &sites);
    if (st) return st;
    s->r = (int)pb_hp_int(c, "r");
    s->scale = (float)pb_hp_float(c, "alpha") / (float)s->r;
    if (c->d->names && c->d->names->conv1d) /* as PEFT: its LoHa layers are Linear and Conv2d only */
        return pb_errorf(PB_EINVAL, "loha: the linear layers of %s are Conv1D, which Hugging Face PEFT's LoHa does "
                                    "not support (LoRA, IA3 and VeRA do)", c->d->name);
    static const char *const names[NFAC] = {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"};
    for (int l = -1; l < c->d->n_layer; l++) /* -1: global linear sites (real models) */
        for (int site = 0; site < PB_NSITE; site++) {
            if (!(sites & (1u << site))) continue;
            const pb_tensor *w = pb_ctx_site_weight(c, l, (pb_site)site);
            if (!w) continue;
            int oc = w->shape[0], ic = w->shape[1];
            if (s->r > (ic < oc ? ic : oc))
                return pb_errorf(PB_EINVAL, "loha: r=%d is larger than layer %s (%d x %d); use r <= %d", s->r,
                                 w->name, oc, ic, ic < oc ? ic : oc);
            if (s->n == PB_LOWRANK_MAX_TARGETS)
                return pb_errorf(PB_EINVAL, "loha: more than %d targets", PB_LOWRANK_MAX_TARGETS);
            int i = s->n++;
            if ((st = pb_ctx_hook_linear(c, l, (pb_site)site, i))) return st;
            for (int k = 0; k < NFAC; k++) {
                char name[64];
                snprintf(name, sizeof name, "%.30s.%s", w->name, names[k]);
                int a = k == W1A || k == W2A; /* (OC, r) */
                s->f[i][k] = pb_ctx_param(c, name, l, (pb_site)site, a ? oc : s->r, a ? s->r : ic, 1);
            }
            s->ic[i] = ic;
            s->oc[i] = oc;
            if ((size_t)ic * oc > s->max_w) s->max_w = (size_t)ic * oc;
        }
    pb_ctx_work(c, 0, 3 * s->max_w);
    return PB_OK;
}

static size_t loha_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    uint32_t sites = pb_hpv_sites_on(hp, HP_TARGETS, d, PB_LOWRANK_SITES);
    size_t r = (size_t)hp->num[HP_R], n = 0, ic, oc;
    for (int s = 0; s < PB_NSITE; s++)
        if (sites & (1u << s)) {
            pb_lowrank_site_dims((pb_site)s, d, &ic, &oc);
            n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * 2 * r * (ic + oc);
        }
    return n;
}

static void loha_init(pb_method_ctx *c, pb_rng *rng) {
    loha_state *s = c->state;
    for (int i = 0; i < s->n; i++) {
        pb_tensor *w1a = pb_ctx_tensor(c, s->f[i][W1A]), *w1b = pb_ctx_tensor(c, s->f[i][W1B]);
        pb_tensor *w2a = pb_ctx_tensor(c, s->f[i][W2A]);
        float ba = 1.0f / sqrtf((float)s->r), bb = 1.0f / sqrtf((float)s->ic[i]);
        pb_rng_fill_uniform(rng, w1a->data, w1a->numel, ba);
        pb_rng_fill_uniform(rng, w1b->data, w1b->numel, bb);
        pb_rng_fill_uniform(rng, w2a->data, w2a->numel, ba); /* w2_b stays 0 */
    }
}

/* P1 = w1_a w1_b, P2 = w2_a w2_b (OC, IC) each. FLOPs: MATMUL 4 OC IC r to `phase`. */
static void factors(pb_method_ctx *c, const loha_state *s, int i, float *P1, float *P2, pb_phase phase) {
    int OC = s->oc[i], IC = s->ic[i], r = s->r;
    const float *w1a = pb_ctx_tensor(c, s->f[i][W1A])->data, *w1b = pb_ctx_tensor(c, s->f[i][W1B])->data;
    const float *w2a = pb_ctx_tensor(c, s->f[i][W2A])->data, *w2b = pb_ctx_tensor(c, s->f[i][W2B])->data;
    pb_gemm(phase, 0, 0, OC, IC, r, 1.0f, w1a, r, w1b, IC, 0.0f, P1, IC);
    pb_gemm(phase, 0, 0, OC, IC, r, 1.0f, w2a, r, w2b, IC, 0.0f, P2, IC);
}

/* out (n) = w + s P1 ⊙ P2. FLOPs: OTHER 3 n to `phase`. */
static void fold(float *out, const float *w, const float *P1, const float *P2, float scale, size_t n, pb_phase phase) {
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++) out[k] = w[k] + scale * P1[k] * P2[k];
    pb_flops_add(phase, PB_KIND_OTHER, 3 * (uint64_t)n);
}

static void loha_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                     int N) {
    loha_state *s = c->state;
    int i = slot, OC = s->oc[i], IC = s->ic[i];
    float *P1 = c->work, *P2 = P1 + s->max_w, *We = P2 + s->max_w; /* (OC, IC) each */
    factors(c, s, i, P1, P2, PB_PHASE_FWD);
    fold(We, w->data, P1, P2, s->scale, (size_t)OC * IC, PB_PHASE_FWD);
    pb_linear_fwd(out, x, We, b ? b->data : NULL, N, IC, OC);
}

static void loha_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x, const pb_tensor *w,
                     const pb_tensor *b, int N) {
    loha_state *s = c->state;
    int i = slot, OC = s->oc[i], IC = s->ic[i], r = s->r;
    size_t n = (size_t)OC * IC;
    float *P1 = c->work, *P2 = P1 + s->max_w, *G = P2 + s->max_w; /* (OC, IC) each */
    factors(c, s, i, P1, P2, PB_PHASE_BWD_W);
    if (dinp) {
        fold(G, w->data, P1, P2, s->scale, n, PB_PHASE_BWD_IN); /* W' again, in G's place */
        pb_linear_bwd(dinp, NULL, NULL, dout, x, G, N, IC, OC);
    }
    if (b && b->trainable) pb_linear_bwd(NULL, NULL, b->grad, dout, x, w->data, N, IC, OC);
    /* G = dy^T x: the dense gradient of W' (and of W, if a hybrid trains it) */
    pb_gemm(PB_PHASE_BWD_W, 1, 0, OC, IC, N, 1.0f, dout, OC, x, IC, 0.0f, G, IC);
    if (w->trainable && w->grad) {
        for (size_t k = 0; k < n; k++) w->grad[k] += G[k];
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, n);
    }
    /* in place: P1 <- dP1 = s G ⊙ P2,  P2 <- dP2 = s G ⊙ P1 */
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < n; k++) {
        float g = s->scale * G[k], p1 = P1[k];
        P1[k] = g * P2[k];
        P2[k] = g * p1;
    }
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, 3 * (uint64_t)n);
    pb_tensor *w1a = pb_ctx_tensor(c, s->f[i][W1A]), *w1b = pb_ctx_tensor(c, s->f[i][W1B]);
    pb_tensor *w2a = pb_ctx_tensor(c, s->f[i][W2A]), *w2b = pb_ctx_tensor(c, s->f[i][W2B]);
    pb_gemm(PB_PHASE_BWD_W, 0, 1, OC, r, IC, 1.0f, P1, IC, w1b->data, IC, 1.0f, w1a->grad, r);
    pb_gemm(PB_PHASE_BWD_W, 1, 0, r, IC, OC, 1.0f, w1a->data, r, P1, IC, 1.0f, w1b->grad, IC);
    pb_gemm(PB_PHASE_BWD_W, 0, 1, OC, r, IC, 1.0f, P2, IC, w2b->data, IC, 1.0f, w2a->grad, r);
    pb_gemm(PB_PHASE_BWD_W, 1, 0, r, IC, OC, 1.0f, w2a->data, r, P2, IC, 1.0f, w2b->grad, IC);
}

static pb_status loha_merge(pb_method_ctx *c) {
    loha_state *s = c->state;
    float *P1 = pb_alloc(sizeof(float) * 2 * s->max_w, PB_MEM_WORKSPACE);
    if (!P1) return pb_errorf(PB_ENOMEM, "loha: out of memory merging");
    float *P2 = P1 + s->max_w;
    for (int i = 0; i < s->n; i++) {
        const pb_tensor *f = pb_ctx_tensor(c, s->f[i][W1A]);
        pb_tensor *w = (pb_tensor *)pb_ctx_site_weight(c, f->layer, f->site);
        factors(c, s, i, P1, P2, PB_PHASE_FWD);
        fold(w->data, w->data, P1, P2, s->scale, (size_t)s->oc[i] * s->ic[i], PB_PHASE_FWD); /* W += dW */
    }
    pb_free(P1);
    return PB_OK;
}

static const char *const loha_examples[] = {"loha:r=2", "loha:r=3,alpha=6,targets=all-linear",
                                            "loha:r=4,alpha=2,targets=k_proj+c_fc", NULL};

static void loha_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_loha = {
    .version = PB_METHOD_VERSION,
    .name = "loha",
    .category = PB_CAT_REPARAM,
    .summary = "LoHa: Hadamard product of two low-rank updates (rank up to r^2)",
    .paper = "Hyeon-Woo et al. 2022, FedPara: Low-Rank Hadamard Product for Communication-Efficient Federated "
             "Learning (arXiv:2108.06098); LyCORIS",
    .hparams = loha_hparams,
    .hf_map = {[HP_TARGETS] = "lora"},
    .n_hparams = sizeof loha_hparams / sizeof loha_hparams[0],
    .state_size = sizeof(loha_state),
    .identity_at_init = 1,
    .examples = loha_examples,
    .attach = loha_attach,
    .closed_form = loha_closed_form,
    .init = loha_init,
    .linear_fwd = loha_fwd,
    .linear_bwd = loha_bwd,
    .merge = loha_merge,
    .flops = loha_flops,
};

/* FLOPs per target: the two Hadamard factors and the folded weight (forward; again in backward),
 * one dense product with the folded weight, and backward's dense weight gradient G = dy^T x
 * and the four factor products. */
static void loha_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const loha_state *s = c->state;
    uint64_t N = (uint64_t)e->x.N, r = (uint64_t)s->r;
    for (int i = 0; i < s->n; i++) {
        const pb_tensor *t = pb_ctx_tensor(c, s->f[i][W1A]);
        int l = t->layer, dinp;
        uint64_t IC = (uint64_t)s->ic[i], OC = (uint64_t)s->oc[i], n = IC * OC;
        if (l < 0) continue; /* global sites of shape-only models: counted, never hooked */
        pb_flops_gemm(f, PB_PHASE_FWD, OC, IC, r);
        pb_flops_gemm(f, PB_PHASE_FWD, OC, IC, r);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 3 * n);
        pb_flops_linear_fwd(f, N, IC, OC, pb_ctx_site_bias(c, l, t->site) != NULL);
        if (!pb_flops_site_bwd(e, l, t->site, &dinp)) continue;
        pb_flops_gemm(f, PB_PHASE_BWD_W, OC, IC, r);
        pb_flops_gemm(f, PB_PHASE_BWD_W, OC, IC, r);
        if (dinp) {
            pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 3 * n);
            pb_flops_linear_bwd(f, N, IC, OC, 1, 0, 0);
        }
        if (pb_flops_site_tr(e, l, t->site, 1)) pb_flops_linear_bwd(f, N, IC, OC, 0, 0, 1);
        pb_flops_gemm(f, PB_PHASE_BWD_W, OC, IC, N);
        if (pb_flops_site_tr(e, l, t->site, 0)) pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, n);
        pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 3 * n);
        for (int k = 0; k < 2; k++) {
            pb_flops_gemm(f, PB_PHASE_BWD_W, OC, r, IC);
            pb_flops_gemm(f, PB_PHASE_BWD_W, r, IC, OC);
        }
    }
}
