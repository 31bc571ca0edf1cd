/* lowrank.c — the low-rank product and the LoRA adapter set shared by LoRA and DoRA (see lowrank.h).
 * Not a method itself: methods/lora.c and methods/dora.c are the registered methods. */
#include "lowrank.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- 1. the product ------------------------------------------------------------------------- */

void pb_lowrank_fwd(float *out, float *u, const float *xd, const float *A, int lda, const float *B, int ldb,
                    float scale, float beta, int N, int IC, int OC, int r) {
    /* out (N,OC), u (N,r), xd (N,IC), A (r,IC) stride lda, B (OC,r) stride ldb */
    pb_gemm(PB_PHASE_FWD, 0, 1, N, r, IC, 1.0f, xd, IC, A, lda, 0.0f, u, r);
    pb_gemm(PB_PHASE_FWD, 0, 1, N, OC, r, scale, u, r, B, ldb, beta, out, OC);
}

void pb_lowrank_bwd(float *dA, float *dB, float *du, const float *dout, const float *u, const float *xd,
                    const float *A, int lda, const float *B, int ldb, float scale, int N, int IC, int OC, int r) {
    /* dA (r,IC) stride lda, dB (OC,r) stride ldb, du (N,r); dout (N,OC), u (N,r), xd (N,IC) */
    (void)A;
    if (dB) pb_gemm(PB_PHASE_BWD_W, 1, 0, OC, r, N, scale, dout, OC, u, r, 1.0f, dB, ldb);
    if (du) pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, r, OC, scale, dout, OC, B, ldb, 0.0f, du, r);
    if (dA && du) pb_gemm(PB_PHASE_BWD_W, 1, 0, r, IC, N, 1.0f, du, r, xd, IC, 1.0f, dA, lda);
}

/* ---- bias options --------------------------------------------------------------------------- */

void pb_lowrank_unfreeze_bias(pb_method_ctx *c, int layer, pb_site site) {
    const pb_tensor *b = pb_ctx_site_bias(c, layer, site);
    if (!b) return;
    for (int k = 0; k < pb_ctx_n_base(c); k++)
        if (pb_ctx_base(c, k) == b) pb_ctx_unfreeze(c, k);
}

void pb_lowrank_unfreeze_all_biases(pb_method_ctx *c) {
    for (int k = 0; k < pb_ctx_n_base(c); k++)
        if (pb_ctx_base(c, k)->is_bias && pb_ctx_base(c, k)->site != PB_SITE_HEAD) pb_ctx_unfreeze(c, k);
}

void pb_lowrank_site_dims(pb_site site, const pb_model_desc *d, size_t *ic, size_t *oc) {
    int in, out;
    pb_desc_site_shape(d, site, &in, &out, NULL);
    *ic = (size_t)in;
    *oc = (size_t)out;
}

size_t pb_lowrank_bias_count(int bias, uint32_t sites, const pb_model_desc *d, pb_head_kind head) {
    if (bias == 1) return pb_desc_bias_params(d, head); /* every bias, as bitfit */
    if (bias != 2) return 0;
    size_t n = 0;
    for (int s = 0; s < PB_NSITE; s++) {
        int in, out, b;
        if ((sites & (1u << s)) && pb_desc_site_shape(d, (pb_site)s, &in, &out, &b) && b)
            n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * (size_t)out;
    }
    return n;
}

/* ---- 2. the LoRA adapter set ---------------------------------------------------------------- */

pb_status pb_lowrank_attach(pb_method_ctx *c, pb_lowrank *s) {
    const char *me = c->method->name;
    uint32_t sites;
    pb_status st = pb_ctx_sites(c, "targets", PB_LOWRANK_SITES, &sites);
    if (st) return st;
    s->r = (int)pb_hp_int(c, "r");
    float alpha = (float)pb_hp_float(c, "alpha");
    s->scale = pb_hp_bool(c, "use_rslora") ? alpha / sqrtf((float)s->r) : alpha / (float)s->r;
    s->dropout = (float)pb_hp_float(c, "dropout");
    int bias = pb_hp_enum(c, "bias");
    for (int l = -1; l < c->d->n_layer; l++) /* -1: global linear sites (real models) */
        for (int site = 0; site < PB_NSITE; site++) {
            if (!(sites & (1u << site))) continue;
            const pb_tensor *w = pb_ctx_site_weight(c, l, (pb_site)site);
            if (!w) continue;
            int oc = w->shape[0], ic = w->shape[1];
            if (s->r > (ic < oc ? ic : oc))
                return pb_errorf(PB_EINVAL, "%s: r=%d is larger than layer %s (%d x %d); use r <= %d", me, s->r,
                                 w->name, oc, ic, ic < oc ? ic : oc);
            if (s->n == PB_LOWRANK_MAX_TARGETS)
                return pb_errorf(PB_EINVAL, "%s: more than %d targets", me, PB_LOWRANK_MAX_TARGETS);
            int i = s->n++;
            if ((st = pb_ctx_hook_linear(c, l, (pb_site)site, i))) return st;
            char name[64];
            snprintf(name, sizeof name, "%.40s.lora_A", w->name);
            s->a[i] = pb_ctx_param(c, name, l, (pb_site)site, s->r, ic, 1);
            snprintf(name, sizeof name, "%.40s.lora_B", w->name);
            s->b[i] = pb_ctx_param(c, name, l, (pb_site)site, oc, s->r, 1);
            if (s->gate) {
                snprintf(name, sizeof name, "%.30s.lora_gate.weight", w->name);
                s->gw[i] = pb_ctx_param(c, name, l, (pb_site)site, 1, ic, 1);
                snprintf(name, sizeof name, "%.30s.lora_gate.bias", w->name);
                s->gb[i] = pb_ctx_param(c, name, l, (pb_site)site, 1, 0, 1);
            }
            s->ic[i] = ic;
            s->oc[i] = oc;
            if ((size_t)ic > s->max_ic) s->max_ic = (size_t)ic;
            if ((size_t)oc > s->max_oc) s->max_oc = (size_t)oc;
            if ((size_t)ic * oc > s->max_w) s->max_w = (size_t)ic * oc;
            pb_ctx_acts(c, (size_t)s->r + (s->gate ? 1 : 0), 0);
            s->acts_row += (size_t)s->r + (s->gate ? 1 : 0);
            if (bias == 2) pb_lowrank_unfreeze_bias(c, l, (pb_site)site);
        }
    if (bias == 1) pb_lowrank_unfreeze_all_biases(c);
    s->work_row = (size_t)s->r + (s->dropout > 0 ? s->max_ic : 0) + (s->gate ? (size_t)s->r + 1 : 0);
    pb_ctx_work(c, s->work_row, 0);
    return PB_OK;
}

size_t pb_lowrank_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head, size_t per_oc) {
    uint32_t sites = pb_hpv_sites_on(hp, PB_LR_HP_TARGETS, d, PB_LOWRANK_SITES);
    size_t r = (size_t)hp->num[PB_LR_HP_R], n = 0, ic, oc;
    int bias = (int)hp->num[PB_LR_HP_BIAS];
    for (int s = 0; s < PB_NSITE; s++) {
        if (!(sites & (1u << s))) continue;
        pb_lowrank_site_dims((pb_site)s, d, &ic, &oc);
        n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * (r * (ic + oc) + per_oc * oc);
    }
    return n + pb_lowrank_bias_count(bias, sites, d, head);
}

size_t pb_lowrank_gate_count(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    uint32_t sites = pb_hpv_sites_on(hp, PB_LR_HP_TARGETS, d, PB_LOWRANK_SITES);
    size_t n = 0, ic, oc;
    for (int s = 0; s < PB_NSITE; s++)
        if (sites & (1u << s)) {
            pb_lowrank_site_dims((pb_site)s, d, &ic, &oc);
            n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * (ic + 1);
        }
    return n;
}

void pb_lowrank_init(pb_method_ctx *c, pb_lowrank *s, pb_rng *rng) {
    for (int i = 0; i < s->n; i++) {
        pb_tensor *a = pb_ctx_tensor(c, s->a[i]);
        pb_rng_fill_uniform(rng, a->data, a->numel, 1.0f / sqrtf((float)s->ic[i])); /* B stays 0 */
    }
    for (int i = 0; s->gate && i < s->n; i++) {
        pb_tensor *g = pb_ctx_tensor(c, s->gw[i]);
        pb_rng_fill_normal(rng, g->data, g->numel, 0.02f); /* bg stays 0 */
    }
}

static int dropping(const pb_method_ctx *c, const pb_lowrank *s) { return s->dropout > 0 && c->training; }

/* The dropout output (or x itself when dropout is off) into the workspace. */
static const float *branch_input(pb_method_ctx *c, const pb_lowrank *s, int i, const float *x, int N) {
    if (!dropping(c, s)) return x;
    float *xd = c->work + (size_t)N * s->r; /* (N, IC) */
    pb_dropout_fwd(xd, x, s->dropout, pb_ctx_dropout_seed(c, i), (size_t)N * s->ic[i]);
    return xd;
}

/* The gate's buffers for target i: g (N) saved; the workspace behind du and the dropout output:
 * t (N, r) (g ⊙ u, or s dout B in backward) and ds (N), the gradient of the gate's
 * pre-activation. */
static float *gate_saved(pb_method_ctx *c, const pb_lowrank *s, int i, int N) {
    return c->acts + (size_t)N * ((size_t)s->n * s->r + (size_t)i);
}
static float *gate_work(pb_method_ctx *c, const pb_lowrank *s, int N) {
    return c->work + (size_t)N * (s->r + (s->dropout > 0 ? s->max_ic : 0));
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void pb_lowrank_site_fwd(pb_method_ctx *c, pb_lowrank *s, int i, float *out, float beta, const float *x, int N) {
    pb_tensor *A = pb_ctx_tensor(c, s->a[i]), *B = pb_ctx_tensor(c, s->b[i]);
    float *u = c->acts + (size_t)i * N * s->r; /* (N, r) */
    const float *xd = branch_input(c, s, i, x, N);
    if (!s->gate) {
        pb_lowrank_fwd(out, u, xd, A->data, s->ic[i], B->data, s->r, s->scale, beta, N, s->ic[i], s->oc[i], s->r);
        return;
    }
    /* g ⊙ (s u B^T) = s (g ⊙ u) B^T: the gate scales u's rows, so no (N, OC) temporary */
    int ic = s->ic[i], oc = s->oc[i], r = s->r;
    float *g = gate_saved(c, s, i, N), *gu = gate_work(c, s, N); /* (N) (N, r) */
    pb_gemm(PB_PHASE_FWD, 0, 1, N, r, ic, 1.0f, xd, ic, A->data, ic, 0.0f, u, r);
    pb_linear_fwd(g, x, pb_ctx_tensor(c, s->gw[i])->data, pb_ctx_tensor(c, s->gb[i])->data, N, ic, 1);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        g[n] = sigmoidf(g[n]);
        for (int k = 0; k < r; k++) gu[(size_t)n * r + k] = g[n] * u[(size_t)n * r + k];
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 4 * (uint64_t)N + (uint64_t)N * r); /* sigmoid 4 */
    pb_gemm(PB_PHASE_FWD, 0, 1, N, oc, r, s->scale, gu, r, B->data, r, beta, out, oc);
}

/* dinp (N,IC) += d(x) through the branch input, from du (N, r). */
static void branch_input_bwd(pb_method_ctx *c, pb_lowrank *s, int i, float *dinp, const float *du, int N) {
    const pb_tensor *A = pb_ctx_tensor(c, s->a[i]);
    int ic = s->ic[i], r = s->r;
    if (dropping(c, s)) {
        float *dxd = c->work + (size_t)N * r; /* reuse: xd is no longer needed */
        pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, ic, r, 1.0f, du, r, A->data, ic, 0.0f, dxd, ic);
        pb_dropout_bwd(dinp, dxd, s->dropout, pb_ctx_dropout_seed(c, i), (size_t)N * ic);
    } else {
        pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, ic, r, 1.0f, du, r, A->data, ic, 1.0f, dinp, ic);
    }
}

void pb_lowrank_site_bwd(pb_method_ctx *c, pb_lowrank *s, int i, float *dinp, const float *dout, const float *x,
                         int N) {
    pb_tensor *A = pb_ctx_tensor(c, s->a[i]), *B = pb_ctx_tensor(c, s->b[i]);
    const float *u = c->acts + (size_t)i * N * s->r;
    float *du = c->work; /* (N, r) */
    int ic = s->ic[i], oc = s->oc[i], r = s->r;
    const float *xd = branch_input(c, s, i, x, N); /* the same mask again */
    if (!s->gate) {
        /* dB += s dout^T u;  du = s dout B;  dA += du^T xd;  dinp += dropout_bwd(du A) */
        pb_lowrank_bwd(A->grad, B->grad, du, dout, u, xd, A->data, ic, B->data, r, s->scale, N, ic, oc, r);
        if (dinp) branch_input_bwd(c, s, i, dinp, du, N);
        return;
    }
    /* With y = base + g ⊙ (s u B^T), t = s dout B (N, r):
     *   dg_n = <dout_n, s u_n B^T> = t_n . u_n,   ds_n = dg_n g_n (1 - g_n)
     *   du = g ⊙ t;  dB += s dout^T (g ⊙ u);  dA += du^T xd;  dinp += dropout_bwd(du A) + ds Wg
     *   dWg += ds^T x;  dbg += sum ds */
    const float *g = gate_saved(c, s, i, N);
    float *t = gate_work(c, s, N), *ds = t + (size_t)N * r; /* (N, r) (N) */
    pb_tensor *gw = pb_ctx_tensor(c, s->gw[i]), *gb = pb_ctx_tensor(c, s->gb[i]);
    pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, r, oc, s->scale, dout, oc, B->data, r, 0.0f, t, r);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *tn = t + (size_t)n * r, *dun = du + (size_t)n * r;
        const float *un = u + (size_t)n * r;
        float dot = 0.0f;
        for (int k = 0; k < r; k++) {
            dot += tn[k] * un[k];
            dun[k] = g[n] * tn[k];
            tn[k] = g[n] * un[k]; /* t now holds g ⊙ u, for dB */
        }
        ds[n] = dot * g[n] * (1.0f - g[n]);
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * (uint64_t)N * r + 3 * (uint64_t)N);
    pb_gemm(PB_PHASE_BWD_W, 1, 0, oc, r, N, s->scale, dout, oc, t, r, 1.0f, B->grad, r);
    pb_gemm(PB_PHASE_BWD_W, 1, 0, r, ic, N, 1.0f, du, r, xd, ic, 1.0f, A->grad, ic);
    pb_linear_bwd(dinp, gw->grad, gb->grad, ds, x, gw->data, N, ic, 1);
    if (dinp) branch_input_bwd(c, s, i, dinp, du, N);
}

pb_tensor *pb_lowrank_weight(pb_method_ctx *c, const pb_lowrank *s, int i) {
    const pb_tensor *A = pb_ctx_tensor(c, s->a[i]);
    return (pb_tensor *)pb_ctx_site_weight(c, A->layer, A->site);
}

void pb_lowrank_add_delta(pb_method_ctx *c, const pb_lowrank *s, int i, float *w, pb_phase phase) {
    pb_tensor *A = pb_ctx_tensor(c, s->a[i]), *B = pb_ctx_tensor(c, s->b[i]);
    /* W (OC, IC) += s B (OC, r) A (r, IC) */
    pb_gemm(phase, 0, 0, s->oc[i], s->ic[i], s->r, s->scale, B->data, s->r, A->data, s->ic[i], 1.0f, w, s->ic[i]);
}

/* ---- FLOPs from shapes ---------------------------------------------------------------------- */

void pb_lowrank_target(pb_method_ctx *c, const pb_lowrank *s, int i, int *layer, pb_site *site) {
    const pb_tensor *A = pb_ctx_tensor(c, s->a[i]);
    *layer = A->layer;
    *site = A->site;
}

void pb_lowrank_branch_flops(const pb_lowrank *s, int i, const pb_flops_env *e, int bwd, int dinp, pb_flops *f) {
    uint64_t N = (uint64_t)e->x.N, ic = (uint64_t)s->ic[i], oc = (uint64_t)s->oc[i], r = (uint64_t)s->r;
    int drop = s->dropout > 0 && e->training;
    /* forward: dropout, u = xd A^T, out += s u B^T (gated: the gate's linear, sigmoid, g u) */
    if (drop) pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, N * ic);
    pb_flops_gemm(f, PB_PHASE_FWD, N, r, ic);
    if (s->gate) {
        pb_flops_linear_fwd(f, N, ic, 1, 1);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 4 * N + N * r);
    }
    pb_flops_gemm(f, PB_PHASE_FWD, N, oc, r);
    if (!bwd) return;
    if (drop) pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, N * ic); /* the mask again */
    if (!s->gate) {
        pb_flops_gemm(f, PB_PHASE_BWD_W, oc, r, N);
        pb_flops_gemm(f, PB_PHASE_BWD_IN, N, r, oc);
        pb_flops_gemm(f, PB_PHASE_BWD_W, r, ic, N);
    } else {
        pb_flops_gemm(f, PB_PHASE_BWD_IN, N, r, oc);
        pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * N * r + 3 * N);
        pb_flops_gemm(f, PB_PHASE_BWD_W, oc, r, N);
        pb_flops_gemm(f, PB_PHASE_BWD_W, r, ic, N);
        pb_flops_linear_bwd(f, N, ic, 1, dinp, 1, 1);
    }
    if (dinp) {
        pb_flops_gemm(f, PB_PHASE_BWD_IN, N, ic, r);
        if (drop) pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, N * ic);
    }
}
