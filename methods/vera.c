/* vera.c — VeRA: frozen shared random low-rank matrices, trainable scaling vectors.
 *
 *   y = x W^T + b + lambda_b ⊙ (B_s (lambda_d ⊙ (A_s dropout(x))))
 *     = x W^T + b + dropout(x) A_s^T M^T,        M = diag(lambda_b) B_s diag(lambda_d)  (OC, r)
 * A (r, max IC) and B (max OC, r) are shared by every target and frozen; each target uses the
 * slices A_s = A[:, :IC] and B_s = B[:OC, :] (Hugging Face's vera_A / vera_B, sized by the
 * largest targeted in/out features, src/peft/tuners/vera/model.py _find_dim). Trainable per
 * target: lambda_d (r) and lambda_b (OC).
 * Initialisation as Hugging Face PEFT (VeraModel._init_vera_A_vera_B, VeraLayer.reset_vera_
 * parameters): A and B kaiming-uniform with gain sqrt(2) over their fan-in (A: U(+-sqrt(6 / max
 * IC)), B: U(+-sqrt(6 / r))), drawn from a generator seeded by projection_prng_key (default 0),
 * A first, then B — so they depend on the key, not on the run's seed. Our generator is pb_rng,
 * not torch's: same distributions and key semantics, different numbers. lambda_d = d_initial
 * (default 0.1), lambda_b = 0, so the model starts exactly at the base model.
 * Merge: W += M A_s.
 *
 * Defaults: r = 64 (Hugging Face's default is 256, sized for models of width >= 768; our "small"
 * backbone has C = 256 and r multiplies the branch cost 2 N r (IC + OC), so 64 keeps VeRA near
 * LoRA's cost while its trainable count stays r + OC per target). Targets q, v as LoRA. r larger
 * than IC * OC of a target is refused: the r rank-one directions b_k a_k^T span at most IC * OC
 * dimensions, so more cannot add anything. (r > min(IC, OC) is allowed: the paper uses r = 1024
 * on RoBERTa-base.)
 * bias: "none", "all" (every backbone bias), "vera_only" (the targeted sites' biases).
 *
 * Counting: A and B are frozen buffers (pb_ctx_param(..., trainable = 0)): allocated and booked as
 * frozen memory, not parameters — Hugging Face keeps them as buffers (save_projection decides
 * only whether they are written to the checkpoint; here they are regenerated from the key).
 * Closed form: trainable = sum over targeted sites of (r + OC), plus the biases `bias` selects
 * (the task head is the framework's to count). For q,v on the GPT-style backbone: L (2 r + 2 C).
 *
 * Cost per target: forward 2 N r (IC + OC) (MATMUL) + 2 OC r (OTHER, forming M); backward
 * 2 N OC r for dM and 2 N r (OC + IC) for the input gradient (MATMUL), 2 OC r + 6 OC r (OTHER).
 * Saved per target: u = dropout(x) A_s^T (N, r). Workspace: du (N, r), the dropout output (N, max
 * IC) when dropout > 0 (recomputed in backward from its seed), M and dM (max OC r each).
 */
#include "lowrank.h"
#include "pb_mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { HP_R, HP_TARGETS, HP_DROPOUT, HP_D_INITIAL, HP_KEY, HP_BIAS };

static const pb_hparam vera_hparams[] = {
    [HP_R] = {"r", "rank", PB_HP_INT, "64", 1, 65536, NULL, "rank of the shared random projections"},
    [HP_TARGETS] = {"targets", "target_modules", PB_HP_SITES, "q_proj+v_proj", 0, 0, NULL,
                    "linear sites to adapt (site names or Hugging Face module names, joined by +)"},
    [HP_DROPOUT] = {"dropout", "vera_dropout", PB_HP_FLOAT, "0", 0, 0.99, NULL, "dropout on the VeRA input"},
    [HP_D_INITIAL] = {"d_initial", NULL, PB_HP_FLOAT, "0.1", -1e6, 1e6, NULL, "initial value of lambda_d"},
    [HP_KEY] = {"prng_key", "projection_prng_key", PB_HP_INT, "0", 0, 4294967295.0, NULL,
                "seed of the shared random matrices A and B"},
    [HP_BIAS] = {"bias", NULL, PB_HP_ENUM, "none", 0, 0, "none|all|vera_only", "which biases train"},
};

typedef struct {
    int r;
    float dropout, d_initial;
    uint64_t key;
    int n;                                   /* targets */
    int ld[PB_LOWRANK_MAX_TARGETS], lb[PB_LOWRANK_MAX_TARGETS]; /* lambda_d (r), lambda_b (OC) */
    int ic[PB_LOWRANK_MAX_TARGETS], oc[PB_LOWRANK_MAX_TARGETS];
    int A, B;                                /* shared frozen (r, max IC), (max OC, r) */
    int max_ic, max_oc;
    size_t work_row;
} vera_state;

static pb_status vera_attach(pb_method_ctx *c) {
    vera_state *s = c->state;
    uint32_t sites;
    pb_status st = pb_ctx_sites(c, "targets", PB_LOWRANK_SITES, &sites);
    if (st) return st;
    s->r = (int)pb_hp_int(c, "r");
    s->dropout = (float)pb_hp_float(c, "dropout");
    s->d_initial = (float)pb_hp_float(c, "d_initial");
    s->key = (uint64_t)pb_hp_int(c, "prng_key");
    int bias = pb_hp_enum(c, "bias");
    pb_site first = PB_SITE_Q;
    for (int l = -1; l < c->d->n_layer; l++) /* -1: global linear sites (real models) */
        for (int site = 0; site < PB_NSITE; site++) {
            if (!(sites & (1u << site))) continue;
            const pb_tensor *w = pb_ctx_site_weight(c, l, (pb_site)site);
            if (!w) continue;
            int oc = w->shape[0], ic = w->shape[1];
            if ((size_t)s->r > (size_t)ic * (size_t)oc)
                return pb_errorf(PB_EINVAL, "vera: r=%d is larger than IC*OC = %zu of layer %s (%d x %d): more "
                                 "random directions than the layer has entries; use r <= %zu", s->r,
                                 (size_t)ic * oc, w->name, oc, ic, (size_t)ic * oc);
            if (s->n == PB_LOWRANK_MAX_TARGETS)
                return pb_errorf(PB_EINVAL, "vera: more than %d targets", PB_LOWRANK_MAX_TARGETS);
            int i = s->n++;
            if (i == 0) first = (pb_site)site;
            if ((st = pb_ctx_hook_linear(c, l, (pb_site)site, i))) return st;
            char name[64];
            snprintf(name, sizeof name, "%.30s.vera_lambda_d", w->name);
            s->ld[i] = pb_ctx_param(c, name, l, (pb_site)site, s->r, 0, 1);
            snprintf(name, sizeof name, "%.30s.vera_lambda_b", w->name);
            s->lb[i] = pb_ctx_param(c, name, l, (pb_site)site, oc, 0, 1);
            s->ic[i] = ic;
            s->oc[i] = oc;
            if (ic > s->max_ic) s->max_ic = ic;
            if (oc > s->max_oc) s->max_oc = oc;
            pb_ctx_acts(c, (size_t)s->r, 0);
            if (bias == 2) pb_lowrank_unfreeze_bias(c, l, (pb_site)site);
        }
    if (bias == 1) pb_lowrank_unfreeze_all_biases(c);
    s->A = pb_ctx_param(c, "vera_A", -1, first, s->r, s->max_ic, 0);
    s->B = pb_ctx_param(c, "vera_B", -1, first, s->max_oc, s->r, 0);
    s->work_row = (size_t)s->r + (s->dropout > 0 ? (size_t)s->max_ic : 0);
    pb_ctx_work(c, s->work_row, 2 * (size_t)s->max_oc * s->r);
    return PB_OK;
}

static size_t vera_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    uint32_t sites = pb_hpv_sites_on(hp, HP_TARGETS, d, PB_LOWRANK_SITES);
    size_t r = (size_t)hp->num[HP_R], n = 0, ic, oc;
    for (int s = 0; s < PB_NSITE; s++)
        if (sites & (1u << s)) {
            pb_lowrank_site_dims((pb_site)s, d, &ic, &oc);
            n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * (r + oc);
        }
    return n + pb_lowrank_bias_count((int)hp->num[HP_BIAS], sites, d, head);
}

static void vera_init(pb_method_ctx *c, pb_rng *rng) {
    vera_state *s = c->state;
    (void)rng; /* the projections come from their own key, as Hugging Face's */
    pb_rng key;
    pb_rng_seed(&key, s->key);
    pb_tensor *A = pb_ctx_tensor(c, s->A), *B = pb_ctx_tensor(c, s->B);
    pb_rng_fill_uniform(&key, A->data, A->numel, sqrtf(6.0f / (float)s->max_ic)); /* fan_in = max IC */
    pb_rng_fill_uniform(&key, B->data, B->numel, sqrtf(6.0f / (float)s->r));      /* fan_in = r */
    for (int i = 0; i < s->n; i++) {
        pb_tensor *ld = pb_ctx_tensor(c, s->ld[i]);
        for (size_t k = 0; k < ld->numel; k++) ld->data[k] = s->d_initial; /* lambda_b stays 0 */
    }
}

static int dropping(const pb_method_ctx *c, const vera_state *s) { return s->dropout > 0 && c->training; }

static const float *branch_input(pb_method_ctx *c, const vera_state *s, int i, const float *x, int N) {
    if (!dropping(c, s)) return x;
    float *xd = c->work + (size_t)N * s->r; /* (N, IC) */
    pb_dropout_fwd(xd, x, s->dropout, pb_ctx_dropout_seed(c, i), (size_t)N * s->ic[i]);
    return xd;
}

/* M (OC, r) = diag(lambda_b) B_s diag(lambda_d). FLOPs: OTHER 2 OC r. */
static void form_m(float *M, const float *B, const float *lb, const float *ld, int OC, int r, pb_phase phase) {
    for (int o = 0; o < OC; o++)
        for (int k = 0; k < r; k++) M[(size_t)o * r + k] = lb[o] * B[(size_t)o * r + k] * ld[k];
    pb_flops_add(phase, PB_KIND_OTHER, 2 * (uint64_t)OC * r);
}

static void vera_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                     int N) {
    vera_state *s = c->state;
    int i = slot, r = s->r;
    float *u = c->acts + (size_t)i * N * r;        /* (N, r) */
    float *M = c->work + (size_t)N * s->work_row;  /* (OC, r) */
    form_m(M, pb_ctx_tensor(c, s->B)->data, pb_ctx_tensor(c, s->lb[i])->data, pb_ctx_tensor(c, s->ld[i])->data,
           s->oc[i], r, PB_PHASE_FWD);
    pb_site_base_fwd(out, x, w, b, N);
    const float *xd = branch_input(c, s, i, x, N);
    pb_lowrank_fwd(out, u, xd, pb_ctx_tensor(c, s->A)->data, s->max_ic, M, r, 1.0f, 1.0f, N, s->ic[i], s->oc[i], r);
}

static void vera_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x, const pb_tensor *w,
                     const pb_tensor *b, int N) {
    vera_state *s = c->state;
    int i = slot, r = s->r, IC = s->ic[i], OC = s->oc[i];
    const float *u = c->acts + (size_t)i * N * r;
    float *du = c->work;                                /* (N, r) */
    float *M = c->work + (size_t)N * s->work_row;       /* (OC, r) */
    float *dM = M + (size_t)s->max_oc * r;              /* (OC, r) */
    const float *A = pb_ctx_tensor(c, s->A)->data, *B = pb_ctx_tensor(c, s->B)->data;
    pb_tensor *ld = pb_ctx_tensor(c, s->ld[i]), *lb = pb_ctx_tensor(c, s->lb[i]);

    pb_site_base_bwd(dinp, dout, x, w, b, N);
    form_m(M, B, lb->data, ld->data, OC, r, PB_PHASE_BWD_W);
    memset(dM, 0, sizeof(float) * (size_t)OC * r);
    /* dM = dout^T u;  du = dout M (only for the input gradient; A is frozen) */
    pb_lowrank_bwd(NULL, dM, dinp ? du : NULL, dout, u, NULL, A, s->max_ic, M, r, 1.0f, N, IC, OC, r);
    /* dlambda_b[o] += sum_k dM[o,k] B[o,k] lambda_d[k];  dlambda_d[k] += sum_o dM[o,k] lambda_b[o] B[o,k] */
    for (int o = 0; o < OC; o++) {
        const float *dm = dM + (size_t)o * r, *bo = B + (size_t)o * r; /* (r) */
        float acc = 0.0f;
        for (int k = 0; k < r; k++) {
            float t = dm[k] * bo[k];
            acc += t * ld->data[k];
            ld->grad[k] += t * lb->data[o];
        }
        lb->grad[o] += acc;
    }
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, 6 * (uint64_t)OC * r);
    if (!dinp) return;
    if (dropping(c, s)) {
        float *dxd = c->work + (size_t)N * r; /* (N, IC) */
        pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, IC, r, 1.0f, du, r, A, s->max_ic, 0.0f, dxd, IC);
        pb_dropout_bwd(dinp, dxd, s->dropout, pb_ctx_dropout_seed(c, i), (size_t)N * IC);
    } else {
        pb_gemm(PB_PHASE_BWD_IN, 0, 0, N, IC, r, 1.0f, du, r, A, s->max_ic, 1.0f, dinp, IC);
    }
}

static pb_status vera_merge(pb_method_ctx *c) {
    vera_state *s = c->state;
    float *M = pb_alloc(sizeof(float) * (size_t)s->max_oc * s->r, PB_MEM_WORKSPACE);
    if (!M) return pb_errorf(PB_ENOMEM, "vera: out of memory merging");
    const float *A = pb_ctx_tensor(c, s->A)->data, *B = pb_ctx_tensor(c, s->B)->data;
    for (int i = 0; i < s->n; i++) {
        const pb_tensor *ld = pb_ctx_tensor(c, s->ld[i]);
        pb_tensor *w = (pb_tensor *)pb_ctx_site_weight(c, ld->layer, ld->site);
        form_m(M, B, pb_ctx_tensor(c, s->lb[i])->data, ld->data, s->oc[i], s->r, PB_PHASE_FWD);
        /* W (OC, IC) += M (OC, r) A_s (r, IC) */
        pb_gemm(PB_PHASE_FWD, 0, 0, s->oc[i], s->ic[i], s->r, 1.0f, M, s->r, A, s->max_ic, 1.0f, w->data, s->ic[i]);
    }
    pb_free(M);
    return PB_OK;
}

static const char *const vera_examples[] = {"vera:r=4", "vera:r=16,d_initial=0.5,targets=all-linear,bias=vera_only",
                                            "vera:r=3,prng_key=7,bias=all,targets=k_proj+c_fc",
                                            "vera:r=4,dropout=0.3,targets=v_proj+c_proj", NULL};

static void vera_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_vera = {
    .version = PB_METHOD_VERSION,
    .name = "vera",
    .category = PB_CAT_REPARAM,
    .summary = "VeRA: frozen shared random low-rank matrices scaled by trainable vectors",
    .paper = "Kopiczko et al. 2024, VeRA: Vector-based Random Matrix Adaptation (arXiv:2310.11454)",
    .hparams = vera_hparams,
    .hf_map = {[HP_TARGETS] = "lora"},
    .n_hparams = sizeof vera_hparams / sizeof vera_hparams[0],
    .state_size = sizeof(vera_state),
    .identity_at_init = 1,
    .examples = vera_examples,
    .attach = vera_attach,
    .closed_form = vera_closed_form,
    .init = vera_init,
    .linear_fwd = vera_fwd,
    .linear_bwd = vera_bwd,
    .merge = vera_merge,
    .flops = vera_flops,
};

/* FLOPs per target: M = diag(lambda_b) B diag(lambda_d) (forward, and again in backward), the
 * frozen product, the branch through the shared A and M; backward: dM, the lambdas, du A. */
static void vera_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const vera_state *s = c->state;
    uint64_t N = (uint64_t)e->x.N, r = (uint64_t)s->r;
    int drop = s->dropout > 0 && e->training;
    for (int i = 0; i < s->n; i++) {
        const pb_tensor *lb = pb_ctx_tensor(c, s->lb[i]);
        int l = lb->layer, dinp;
        uint64_t ic = (uint64_t)s->ic[i], oc = (uint64_t)s->oc[i];
        if (l < 0) continue; /* global sites of shape-only models: counted, never hooked */
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 2 * oc * r + (drop ? N * ic : 0));
        pb_flops_site_base(e, l, lb->site, (int)N, (int)ic, (int)oc, f);
        pb_flops_gemm(f, PB_PHASE_FWD, N, r, ic);
        pb_flops_gemm(f, PB_PHASE_FWD, N, oc, r);
        if (!pb_flops_site_bwd(e, l, lb->site, &dinp)) continue;
        pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * oc * r + 6 * oc * r);
        pb_flops_gemm(f, PB_PHASE_BWD_W, oc, r, N);
        if (!dinp) continue;
        pb_flops_gemm(f, PB_PHASE_BWD_IN, N, r, oc);
        pb_flops_gemm(f, PB_PHASE_BWD_IN, N, ic, r);
        if (drop) pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, N * ic);
    }
}
