/* lora.c — LoRA: a trainable low-rank update beside frozen linear layers.
 *
 *   y = x W^T + b + s * dropout(x) A^T B^T,   A (r, IC), B (OC, r),   s = alpha / r
 *   (rsLoRA, use_rslora=1: s = alpha / sqrt(r), Kalajdzievski 2023)
 * Initialisation as Hugging Face PEFT: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(IC),
 * 1/sqrt(IC)), B = 0, so the model starts exactly at the base model. Merge: W += s B A.
 * bias: "none" trains no bias; "all" trains every bias of the backbone; "lora_only" trains the
 * biases of the targeted layers.
 * Closed form: trainable = sum over targeted sites of r (IC + OC), plus the biases that `bias`
 * selects, plus the task head (K C + K). Targets default to q and v (Hugging Face's default
 * for most decoders; its GPT-2 default is the fused c_attn).
 * Saved per target: u = dropout(x) A^T (N, r). Workspace: the dropout output (N, IC) when
 * dropout > 0 (recomputed in backward from its seed), du (N, r).
 */
#include "method.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { HP_R, HP_ALPHA, HP_DROPOUT, HP_TARGETS, HP_BIAS, HP_RSLORA };

static const pb_hparam lora_hparams[] = {
    [HP_R] = {"r", "lora_r rank", PB_HP_INT, "8", 1, 65536, NULL, "rank of the update"},
    [HP_ALPHA] = {"alpha", "lora_alpha", PB_HP_FLOAT, "8", 1e-6, 1e6, NULL, "scale numerator: s = alpha/r"},
    [HP_DROPOUT] = {"dropout", "lora_dropout", PB_HP_FLOAT, "0", 0, 0.99, NULL, "dropout on the LoRA input"},
    [HP_TARGETS] = {"targets", "target_modules", PB_HP_SITES, "q_proj+v_proj", 0, 0, NULL,
                    "linear sites to adapt (site names or Hugging Face module names, joined by +)"},
    [HP_BIAS] = {"bias", NULL, PB_HP_ENUM, "none", 0, 0, "none|all|lora_only", "which biases train"},
    [HP_RSLORA] = {"use_rslora", "rslora", PB_HP_BOOL, "0", 0, 1, NULL, "scale by alpha/sqrt(r) instead of alpha/r"},
};

#define LINEAR_SITES                                                                                              \
    ((1u << PB_SITE_Q) | (1u << PB_SITE_K) | (1u << PB_SITE_V) | (1u << PB_SITE_O) | (1u << PB_SITE_UP) |          \
     (1u << PB_SITE_GATE) | (1u << PB_SITE_DOWN))
#define MAX_TARGETS 1024

typedef struct {
    int r;
    float scale, dropout;
    int n;                       /* targets */
    int slot_of[MAX_TARGETS];    /* hook slot of target i */
    int a[MAX_TARGETS], b[MAX_TARGETS]; /* tensor handles */
    int ic[MAX_TARGETS], oc[MAX_TARGETS];
    size_t max_ic;
    uint64_t step;               /* forwards so far: varies the dropout mask */
} lora_state;

static int target_of(const lora_state *s, int slot) {
    for (int i = 0; i < s->n; i++)
        if (s->slot_of[i] == slot) return i;
    return -1;
}


static pb_status lora_attach(pb_method_ctx *c) {
    lora_state *s = c->state;
    uint32_t sites;
    pb_status st = pb_ctx_sites(c, "targets", LINEAR_SITES, &sites);
    if (st) return st;
    s->r = (int)pb_hp_int(c, "r");
    float alpha = (float)pb_hp_float(c, "alpha");
    s->scale = pb_hp_bool(c, "use_rslora") ? alpha / sqrtf((float)s->r) : alpha / (float)s->r;
    s->dropout = (float)pb_hp_float(c, "dropout");
    int bias = pb_hp_enum(c, "bias");
    for (int l = 0; l < c->d->n_layer; l++)
        for (int site = 0; site < PB_NSITE; site++) {
            if (!(sites & (1u << site))) continue;
            const pb_tensor *w = pb_ctx_site_weight(c, l, (pb_site)site);
            if (!w) continue;
            int oc = w->shape[0], ic = w->shape[1];
            if (s->r > (ic < oc ? ic : oc))
                return pb_errorf(PB_EINVAL, "lora: r=%d is larger than layer %s (%d x %d); use r <= %d", s->r,
                                 w->name, oc, ic, ic < oc ? ic : oc);
            if (s->n == MAX_TARGETS) return pb_errorf(PB_EINVAL, "lora: more than %d targets", MAX_TARGETS);
            int i = s->n++;
            if ((st = pb_ctx_hook_linear(c, l, (pb_site)site, &s->slot_of[i]))) return st;
            char name[64];
            snprintf(name, sizeof name, "%.40s.lora_A", w->name);
            s->a[i] = pb_ctx_param(c, name, l, (pb_site)site, s->r, ic, 1);
            snprintf(name, sizeof name, "%.40s.lora_B", w->name);
            s->b[i] = pb_ctx_param(c, name, l, (pb_site)site, oc, s->r, 1);
            s->ic[i] = ic;
            s->oc[i] = oc;
            if ((size_t)ic > s->max_ic) s->max_ic = (size_t)ic;
            pb_ctx_acts(c, (size_t)s->r, 0);
            const pb_tensor *b = pb_ctx_site_bias(c, l, (pb_site)site);
            if (bias == 2 && b)
                for (int k = 0; k < pb_ctx_n_base(c); k++)
                    if (pb_ctx_base(c, k) == b) pb_ctx_unfreeze(c, k);
        }
    if (bias == 1)
        for (int k = 0; k < pb_ctx_n_base(c); k++)
            if (pb_ctx_base(c, k)->is_bias && pb_ctx_base(c, k)->site != PB_SITE_HEAD) pb_ctx_unfreeze(c, k);
    pb_ctx_work(c, (size_t)s->r + (s->dropout > 0 ? s->max_ic : 0), 0);
    return PB_OK;
}

static size_t lora_closed_form(const pb_hp_values *hp, const pb_model_desc *d, int K) {
    const pb_method *m = pb_method_find("lora");
    uint32_t sites = pb_hpv_sites(m, hp, "targets") & pb_desc_sites(d) & LINEAR_SITES;
    size_t r = (size_t)pb_hpv_num(m, hp, "r"), C = (size_t)d->d_model, F = (size_t)d->d_ff, L = (size_t)d->n_layer;
    int bias = (int)pb_hpv_num(m, hp, "bias");
    size_t per_layer = 0, bias_layer = 0;
    for (int s = 0; s < PB_NSITE; s++) {
        if (!(sites & (1u << s))) continue;
        size_t ic = s == PB_SITE_DOWN ? F : C, oc = (s == PB_SITE_UP || s == PB_SITE_GATE) ? F : C;
        per_layer += r * (ic + oc);
        bias_layer += oc;
    }
    size_t n = L * per_layer + (K ? (size_t)K * C + (size_t)K : 0);
    if (bias == 1) n += L * (4 * C + F + C + 2 * C) + C; /* every bias, as bitfit */
    if (bias == 2) n += L * bias_layer;
    return n;
}

static void lora_init(pb_method_ctx *c, pb_rng *rng) {
    lora_state *s = c->state;
    for (int i = 0; i < s->n; i++) {
        pb_tensor *a = pb_ctx_tensor(c, s->a[i]);
        pb_rng_fill_uniform(rng, a->data, a->numel, 1.0f / sqrtf((float)s->ic[i])); /* B stays 0 */
    }
}

static void lora_begin(pb_method_ctx *c) {
    lora_state *s = c->state;
    if (c->training) s->step++;
}

static uint64_t drop_seed(const pb_method_ctx *c, const lora_state *s, int i) {
    return c->seed ^ (s->step * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i << 40);
}

/* The dropout output (or x itself when dropout is off) into the workspace. */
static const float *lora_input(pb_method_ctx *c, const lora_state *s, int i, const float *x, int N) {
    if (s->dropout <= 0 || !c->training) return x;
    float *xd = c->work + (size_t)N * s->r;
    pb_dropout_fwd(xd, x, s->dropout, drop_seed(c, s, i), (size_t)N * s->ic[i]);
    return xd;
}

static void lora_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                     int N) {
    lora_state *s = c->state;
    int i = target_of(s, slot);
    pb_tensor *A = pb_ctx_tensor(c, s->a[i]), *Bt = pb_ctx_tensor(c, s->b[i]);
    float *u = c->acts + (size_t)i * N * s->r; /* (N, r) */
    pb_site_base_fwd(out, x, w, b, N);
    const float *xd = lora_input(c, s, i, x, N);
    pb_gemm(PB_PHASE_FWD, 0, 1, N, s->r, s->ic[i], 1.0f, xd, s->ic[i], A->data, s->ic[i], 0.0f, u, s->r);
    pb_gemm(PB_PHASE_FWD, 0, 1, N, s->oc[i], s->r, s->scale, u, s->r, Bt->data, s->r, 1.0f, out, s->oc[i]);
}

static void lora_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x, const pb_tensor *w,
                     const pb_tensor *b, int N) {
    lora_state *s = c->state;
    int i = target_of(s, slot);
    pb_tensor *A = pb_ctx_tensor(c, s->a[i]), *Bt = pb_ctx_tensor(c, s->b[i]);
    const float *u = c->acts + (size_t)i * N * s->r;
    float *du = c->work; /* (N, r) */
    int ic = s->ic[i], oc = s->oc[i], r = s->r;
    pb_site_base_bwd(dinp, dout, x, w, b, N);
    /* dB += s dout^T u;  du = s dout B;  dA += du^T xd;  dinp += dropout_bwd(du A) */
    pb_gemm(PB_PHASE_BWD_W, 1, 0, oc, r, N, s->scale, dout, oc, u, r, 1.0f, Bt->grad, r);
    pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, r, oc, s->scale, dout, oc, Bt->data, r, 0.0f, du, r);
    const float *xd = x;
    if (s->dropout > 0 && c->training) {
        float *buf = c->work + (size_t)N * r;
        pb_dropout_fwd(buf, x, s->dropout, drop_seed(c, s, i), (size_t)N * ic); /* the same mask again */
        xd = buf;
    }
    pb_gemm(PB_PHASE_BWD_W, 1, 0, r, ic, N, 1.0f, du, r, xd, ic, 1.0f, A->grad, ic);
    if (!dinp) return;
    if (s->dropout > 0 && c->training) {
        float *dxd = c->work + (size_t)N * r; /* reuse: xd is no longer needed */
        pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, ic, r, 1.0f, du, r, A->data, ic, 0.0f, dxd, ic);
        pb_dropout_bwd(dinp, dxd, s->dropout, drop_seed(c, s, i), (size_t)N * ic);
    } else {
        pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, ic, r, 1.0f, du, r, A->data, ic, 1.0f, dinp, ic);
    }
}

static pb_status lora_merge(pb_method_ctx *c) {
    lora_state *s = c->state;
    for (int i = 0; i < s->n; i++) {
        pb_tensor *A = pb_ctx_tensor(c, s->a[i]), *Bt = pb_ctx_tensor(c, s->b[i]);
        int l = A->layer;
        pb_site site = A->site;
        pb_tensor *w = (pb_tensor *)pb_ctx_site_weight(c, l, site);
        /* W (OC, IC) += s B (OC, r) A (r, IC); counted as a one-off, not per token */
        pb_gemm(PB_PHASE_FWD, 0, 0, s->oc[i], s->ic[i], s->r, s->scale, Bt->data, s->r, A->data, s->ic[i], 1.0f,
                w->data, s->ic[i]);
    }
    return PB_OK;
}

static const char *const lora_examples[] = {
    "lora:r=2", "lora:r=3,alpha=6,targets=all-linear,bias=lora_only",
    "lora:r=2,use_rslora=1,bias=all,targets=k_proj+c_fc", NULL};

const pb_method pb_method_lora = {
    .version = PB_METHOD_VERSION,
    .name = "lora",
    .category = PB_CAT_REPARAM,
    .summary = "LoRA: trainable low-rank update s*B*A beside frozen linear layers",
    .paper = "Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models (arXiv:2106.09685)",
    .hparams = lora_hparams,
    .n_hparams = sizeof lora_hparams / sizeof lora_hparams[0],
    .state_size = sizeof(lora_state),
    .identity_at_init = 1,
    .examples = lora_examples,
    .attach = lora_attach,
    .closed_form = lora_closed_form,
    .init = lora_init,
    .begin = lora_begin,
    .linear_fwd = lora_fwd,
    .linear_bwd = lora_bwd,
    .merge = lora_merge,
};
