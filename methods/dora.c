/* dora.c — DoRA: weight-decomposed low-rank adaptation (magnitude and direction).
 *
 *   V  = W + s B A                          (OC, IC), A (r, IC), B (OC, r), s = alpha / r
 *   W' = m ⊙ V / ||V||_row                  ||V||_o = sqrt(sum_i V[o,i]^2), m (OC)
 *   y  = x W'^T + b = g ⊙ (x W^T + s dropout(x) A^T B^T) + b,   g = m / ||V||_row
 * The norm is per output row over the input dimension: Hugging Face PEFT's get_weight_norm
 * (src/peft/tuners/lora/dora.py) on the (OC, IC) layout. The output is formed as PEFT's
 * DoraLinearLayer.forward does, y = base + (g - 1) ⊙ (base - b) + g ⊙ (s x A^T B^T) with
 * base = x W^T + b, so that at initialisation (g = 1 exactly, B = 0) it is the base output bit
 * for bit.
 * Initialisation as Hugging Face LoraConfig(use_dora=True): A ~ U(-1/sqrt(IC), 1/sqrt(IC)), B = 0,
 * m = ||W||_row (computed by the same function as the forward's norm, so g = 1 exactly).
 * Hyperparameters: those of LoRA (r, alpha, dropout, targets, bias, use_rslora; Hugging Face
 * names as aliases) — the LoRA adapter set of lowrank.h, composed, not copied — and exact_norm.
 * Merge: W <- m ⊙ (W + s B A) / ||W + s B A||_row.
 *
 * Closed form: trainable = sum over targeted sites of r (IC + OC) + OC (the magnitude), plus
 * the biases `bias` selects (the task head is the framework's to count). For q,v targets on the
 * GPT-style backbone: L (2 r (C + C) + 2 C).
 *
 * Gradient (default, exact_norm=0): ||V|| is detached, as the paper (section 4.3) and Hugging
 * Face PEFT do (DoraLinearLayer.forward: weight_norm = weight_norm.detach()). The backward is the
 * exact gradient of the surrogate in which the norm is held at its current value, and the tests
 * check it against finite differences of that surrogate (c->hold keeps the norm):
 *   c_o = sum_n dy[n,o] z[n,o],  z = x W^T + s x_d A^T B^T     dm_o += c_o / ||V||_o
 *   dz = g ⊙ dy  -> the LoRA branch backward (dA, dB) and dx += dz W   (and dW += dz^T x if W trains)
 * exact_norm=1 also differentiates the norm (PEFT has no such mode):
 *   dV = diag(e) V, e_o = -c_o g_o / ||V||_o^2  -> dB += s dV A^T, dA += s B^T dV  (dW += dV)
 * Dropout (deviation): applied to the low-rank input only, y = g ⊙ (x W^T + s x_d A^T B^T) + b.
 * PEFT, when dropout is active in training, recomputes the base product on the dropped input
 * for the (g - 1) term (a second full-size product); the two agree when dropout = 0 and in eval.
 *
 * Cost per forward and target, beyond LoRA: V and its norms, 2 OC IC r (MATMUL) + 2 OC IC + 2 OC
 * (OTHER), independent of the batch; the output combination, 6 (7 with a bias) N OC (OTHER).
 * Backward adds 3 N OC + 2 OC (OTHER); with exact_norm 4 OC more and V again plus two products
 * with it, 2 OC IC r + 4 OC IC r (MATMUL) + OC IC (OTHER).
 * Saved per target: u (N, r) as LoRA, z (N, OC), and ||V|| and g (2 OC, per batch).
 * Workspace: LoRA's (du (N, r), dropout output (N, IC)), the branch output / dz (N, max OC), and
 * V (max OC IC) [+ e (max OC) with exact_norm].
 */
#include "lowrank.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The set's rows, then DoRA's own. */
enum { HP_EXACT = PB_LR_NHP };
static const pb_hparam dora_hparams[] = {
    PB_LOWRANK_HPARAM_ROWS,
    [HP_EXACT] = {"exact_norm", NULL, PB_HP_BOOL, "0", 0, 1, NULL,
                  "differentiate the weight norm ||W + sBA|| too (0: detached, as the paper and Hugging Face)"},
};

typedef struct {
    pb_lowrank lr;
    int exact;                            /* exact_norm */
    int held_n;                           /* rows of the forward whose norms c->hold keeps */
    int m[PB_LOWRANK_MAX_TARGETS];        /* magnitude handles, (OC) each */
    size_t z_off[PB_LOWRANK_MAX_TARGETS]; /* per-row offset of z_i in the DoRA acts region */
    size_t n_off[PB_LOWRANK_MAX_TARGETS]; /* offset of ||V||_i, g_i (OC each) in the fixed region */
    size_t z_row, fixed;                  /* sum of OC; 2 * sum of OC */
} dora_state;

static pb_status dora_attach(pb_method_ctx *c) {
    dora_state *s = c->state;
    s->exact = pb_hp_bool(c, "exact_norm");
    pb_status st = pb_lowrank_attach(c, &s->lr);
    if (st) return st;
    for (int i = 0; i < s->lr.n; i++) {
        const pb_tensor *A = pb_ctx_tensor(c, s->lr.a[i]);
        char name[64];
        snprintf(name, sizeof name, "%.30s.lora_magnitude_vector", pb_ctx_site_weight(c, A->layer, A->site)->name);
        s->m[i] = pb_ctx_param(c, name, A->layer, A->site, s->lr.oc[i], 0, 1);
        s->z_off[i] = s->z_row;
        s->n_off[i] = s->fixed;
        s->z_row += (size_t)s->lr.oc[i];
        s->fixed += 2 * (size_t)s->lr.oc[i];
    }
    pb_ctx_acts(c, s->z_row, s->fixed);
    pb_ctx_work(c, s->lr.max_oc, s->lr.max_w + (s->exact ? s->lr.max_oc : 0));
    return PB_OK;
}

static size_t dora_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    return pb_lowrank_closed_form(hp, d, head, 1);
}

/* ||v|| of each row of v (rows, n), accumulated in double; one function for init, forward and
 * merge, so that m = ||W|| at init gives g = 1 exactly. Callers count its FLOPs (NORM_FLOPS). */
#define NORM_FLOPS(rows, n) (2 * (uint64_t)(rows) * (uint64_t)(n) + (uint64_t)(rows))
static void row_norms(float *out, const float *v, int rows, int n) {
#pragma omp parallel for schedule(static)
    for (int o = 0; o < rows; o++) {
        const float *x = v + (size_t)o * n; /* (n) */
        double acc = 0.0;
        for (int i = 0; i < n; i++) acc += (double)x[i] * x[i];
        out[o] = (float)sqrt(acc);
    }
}

static void dora_init(pb_method_ctx *c, pb_rng *rng) {
    dora_state *s = c->state;
    pb_lowrank_init(c, &s->lr, rng);
    for (int i = 0; i < s->lr.n; i++) {
        const pb_tensor *w = pb_lowrank_weight(c, &s->lr, i);
        pb_tensor *m = pb_ctx_tensor(c, s->m[i]);
        /* m = ||W + s B A||_row with B = 0 */
        row_norms(m->data, w->data, s->lr.oc[i], s->lr.ic[i]); /* set-up, not counted */
    }
}

/* V = W + s B A into the workspace (OC, IC). */
static float *direction(pb_method_ctx *c, dora_state *s, int i, const pb_tensor *w, pb_phase phase) {
    float *V = c->work + (size_t)c->N * (s->lr.work_row + s->lr.max_oc);
    memcpy(V, w->data, sizeof(float) * (size_t)s->lr.oc[i] * s->lr.ic[i]);
    pb_lowrank_add_delta(c, &s->lr, i, V, phase);
    return V;
}

static void dora_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                     int N) {
    dora_state *s = c->state;
    int i = slot, OC = s->lr.oc[i];
    const float *m = pb_ctx_tensor(c, s->m[i])->data;                    /* (OC) */
    float *z = c->acts + (size_t)N * (s->lr.acts_row + s->z_off[i]);    /* (N, OC) */
    float *nrm = c->acts + (size_t)N * (s->lr.acts_row + s->z_row) + s->n_off[i]; /* (OC) */
    float *g = nrm + OC;                                                  /* (OC) */
    float *l = c->work + (size_t)N * s->lr.work_row;                      /* (N, OC) */
    const float *bias = b ? b->data : NULL;

    if (c->hold && !s->exact) {
        /* the surrogate of the detached gradient: ||V|| as the last forward left it (tests) */
        assert(c->N == s->held_n && "hold replays a forward of the same batch");
    } else {
        row_norms(nrm, direction(c, s, i, w, PB_PHASE_FWD), OC, s->lr.ic[i]);
        pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, NORM_FLOPS(OC, s->lr.ic[i]));
        s->held_n = c->N;
    }
    for (int o = 0; o < OC; o++) g[o] = m[o] / nrm[o];
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)OC);
    pb_site_base_fwd(out, x, w, b, N);                  /* base = x W^T + b */
    pb_lowrank_site_fwd(c, &s->lr, i, l, 0.0f, x, N);   /* l = s x_d A^T B^T */
    /* z = (base - b) + l;  y = base + (g - 1)(base - b) + g l */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *y = out + (size_t)n * OC, *zn = z + (size_t)n * OC; /* (OC) */
        const float *ln = l + (size_t)n * OC;                        /* (OC) */
        if (bias) {
#pragma omp simd
            for (int o = 0; o < OC; o++) {
                float z0 = y[o] - bias[o];
                zn[o] = z0 + ln[o];
                y[o] = y[o] + (g[o] - 1.0f) * z0 + g[o] * ln[o];
            }
        } else {
#pragma omp simd
            for (int o = 0; o < OC; o++) {
                float z0 = y[o];
                zn[o] = z0 + ln[o];
                y[o] = y[o] + (g[o] - 1.0f) * z0 + g[o] * ln[o];
            }
        }
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)N * OC * (bias ? 7 : 6));
}

static void dora_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x, const pb_tensor *w,
                     const pb_tensor *b, int N) {
    dora_state *s = c->state;
    int i = slot, OC = s->lr.oc[i], IC = s->lr.ic[i], r = s->lr.r;
    pb_tensor *mt = pb_ctx_tensor(c, s->m[i]);
    pb_tensor *A = pb_ctx_tensor(c, s->lr.a[i]), *B = pb_ctx_tensor(c, s->lr.b[i]);
    const float *z = c->acts + (size_t)N * (s->lr.acts_row + s->z_off[i]);
    const float *nrm = c->acts + (size_t)N * (s->lr.acts_row + s->z_row) + s->n_off[i];
    const float *g = nrm + OC;
    float *dz = c->work + (size_t)N * s->lr.work_row;                              /* (N, OC) */
    float *e = c->work + (size_t)N * (s->lr.work_row + s->lr.max_oc) + s->lr.max_w; /* (OC), exact_norm */
    int exact = s->exact;

    /* y = g ⊙ z + b */
    if (b && b->trainable) pb_linear_bwd(NULL, NULL, b->grad, dout, x, w->data, N, IC, OC);
    /* column sums over rows, in blocks of 64 columns: rows are read contiguously, and each
     * column is summed in row order by one thread (the same bits at any thread count) */
    int nblk = (OC + 63) / 64;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int o0 = blk * 64, o1 = o0 + 64 < OC ? o0 + 64 : OC;
        double acc[64] = {0};
        for (int n = 0; n < N; n++) {
            const float *dr = dout + (size_t)n * OC + o0, *zr = z + (size_t)n * OC + o0; /* (o1 - o0) */
#pragma omp simd
            for (int o = 0; o < o1 - o0; o++) acc[o] += (double)dr[o] * zr[o];
        }
        for (int o = o0; o < o1; o++) {
            float co = (float)acc[o - o0];
            mt->grad[o] += co / nrm[o];
            if (exact) e[o] = -co * g[o] / (nrm[o] * nrm[o]);
        }
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *dr = dout + (size_t)n * OC; /* (OC) */
        float *dzr = dz + (size_t)n * OC;        /* (OC) */
#pragma omp simd
        for (int o = 0; o < OC; o++) dzr[o] = dr[o] * g[o];
    }
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, 3 * (uint64_t)N * OC + (exact ? 6 : 2) * (uint64_t)OC);

    /* through z = x W^T + s x_d A^T B^T */
    pb_lowrank_site_bwd(c, &s->lr, i, dinp, dz, x, N);
    if (dinp) pb_linear_bwd(dinp, NULL, NULL, dz, x, w->data, N, IC, OC);
    if (!exact) { /* the norm is a constant: nothing flows through it */
        if (w->trainable && w->grad) pb_linear_bwd(NULL, w->grad, NULL, dz, x, w->data, N, IC, OC);
        return;
    }

    /* exact_norm: through ||V||, dV = diag(e) V, V = W + s B A */
    float *P = direction(c, s, i, w, PB_PHASE_BWD_W);
#pragma omp parallel for schedule(static)
    for (int o = 0; o < OC; o++)
        for (int k = 0; k < IC; k++) P[(size_t)o * IC + k] *= e[o];
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)OC * IC);
    pb_gemm(PB_PHASE_BWD_W, 0, 1, OC, r, IC, s->lr.scale, P, IC, A->data, IC, 1.0f, B->grad, r);
    pb_gemm(PB_PHASE_BWD_W, 1, 0, r, IC, OC, s->lr.scale, B->data, r, P, IC, 1.0f, A->grad, IC);
    if (w->trainable && w->grad) { /* not under DoRA alone (W is frozen); exact if a hybrid trains W */
        pb_linear_bwd(NULL, w->grad, NULL, dz, x, w->data, N, IC, OC);
        for (size_t k = 0; k < (size_t)OC * IC; k++) w->grad[k] += P[k];
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)OC * IC);
    }
}

static pb_status dora_merge(pb_method_ctx *c) {
    dora_state *s = c->state;
    for (int i = 0; i < s->lr.n; i++) {
        pb_tensor *w = pb_lowrank_weight(c, &s->lr, i);
        const float *m = pb_ctx_tensor(c, s->m[i])->data;
        int OC = s->lr.oc[i], IC = s->lr.ic[i];
        pb_lowrank_add_delta(c, &s->lr, i, w->data, PB_PHASE_FWD); /* W += s B A */
        for (int o = 0; o < OC; o++) {
            float *row = w->data + (size_t)o * IC, nrm; /* (IC) */
            row_norms(&nrm, row, 1, IC);
            float gain = m[o] / nrm;
            for (int k = 0; k < IC; k++) row[k] *= gain;
        }
        pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, NORM_FLOPS(OC, IC) + (uint64_t)OC * IC + (uint64_t)OC);
    }
    return PB_OK;
}

static const char *const dora_examples[] = {"dora:r=2", "dora:r=3,alpha=6,targets=all-linear,bias=lora_only",
                                            "dora:r=2,use_rslora=1,bias=all,targets=k_proj+c_fc",
                                            "dora:r=2,exact_norm=1,targets=q_proj+c_fc", "dora:r=2,dropout=0.3",
                                            "dora:r=2,dropout=0.2,exact_norm=1,targets=v_proj+c_proj", NULL};

static void dora_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_dora = {
    .version = PB_METHOD_VERSION,
    .name = "dora",
    .category = PB_CAT_REPARAM,
    .summary = "DoRA: LoRA on the direction of W, with a trainable per-row magnitude",
    .paper = "Liu et al. 2024, DoRA: Weight-Decomposed Low-Rank Adaptation (arXiv:2402.09353)",
    .hparams = dora_hparams,
    .hf_map = {[PB_LR_HP_TARGETS] = "lora"},
    .n_hparams = sizeof dora_hparams / sizeof dora_hparams[0],
    .state_size = sizeof(dora_state),
    .identity_at_init = 1,
    .examples = dora_examples,
    .attach = dora_attach,
    .closed_form = dora_closed_form,
    .init = dora_init,
    .linear_fwd = dora_fwd,
    .linear_bwd = dora_bwd,
    .merge = dora_merge,
    .flops = dora_flops,
};

/* FLOPs per target: the direction V = W + s B A and its row norms (forward), the frozen product,
 * LoRA's branch (lowrank.h), the magnitude/direction combination; backward: the magnitude's
 * column sums, LoRA's branch backward on dz, dz W, and with exact_norm V again and the norm's
 * gradient into A and B through it. */
static void dora_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    dora_state *s = c->state;
    uint64_t N = (uint64_t)e->x.N, r = (uint64_t)s->lr.r;
    for (int i = 0; i < s->lr.n; i++) {
        int l, dinp;
        pb_site site;
        pb_lowrank_target(c, &s->lr, i, &l, &site);
        if (l < 0) continue; /* global sites of shape-only models: counted, never hooked */
        uint64_t IC = (uint64_t)s->lr.ic[i], OC = (uint64_t)s->lr.oc[i];
        int bias = pb_ctx_site_bias(c, l, site) != NULL;
        pb_flops_gemm(f, PB_PHASE_FWD, OC, IC, r);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, NORM_FLOPS(OC, IC) + OC + N * OC * (bias ? 7 : 6));
        pb_flops_linear_fwd(f, N, IC, OC, bias);
        int bwd = pb_flops_site_bwd(e, l, site, &dinp);
        pb_lowrank_branch_flops(&s->lr, i, e, bwd, dinp, f);
        if (!bwd) continue;
        if (pb_flops_site_tr(e, l, site, 1)) pb_flops_linear_bwd(f, N, IC, OC, 0, 0, 1);
        if (!s->exact) {
            pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 3 * N * OC + 2 * OC);
            if (dinp) pb_flops_linear_bwd(f, N, IC, OC, 1, 0, 0);
            if (pb_flops_site_tr(e, l, site, 0)) pb_flops_linear_bwd(f, N, IC, OC, 0, 1, 0);
            continue;
        }
        pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 3 * N * OC + 6 * OC + OC * IC);
        if (dinp) pb_flops_linear_bwd(f, N, IC, OC, 1, 0, 0);
        pb_flops_gemm(f, PB_PHASE_BWD_W, OC, IC, r);
        pb_flops_gemm(f, PB_PHASE_BWD_W, OC, r, IC);
        pb_flops_gemm(f, PB_PHASE_BWD_W, r, IC, OC);
        if (pb_flops_site_tr(e, l, site, 0)) {
            pb_flops_linear_bwd(f, N, IC, OC, 0, 1, 0);
            pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, OC * IC);
        }
    }
}
