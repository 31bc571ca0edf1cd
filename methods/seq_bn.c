/* seq_bn.c — sequential bottleneck adapter after the MLP (Pfeiffer et al. 2021; AdapterHub's
 * SeqBnConfig), and the bottleneck-adapter code that double_seq_bn and par_bn share
 * (bottleneck.h).
 *
 * What it is: in every layer, a small bottleneck MLP transforms the MLP sub-layer's output h
 * (N,C) before the residual add:
 *   h' = h + s * up(act(down(h)))           down: Wd (r,C) + bd (r);  up: Wu (C,r) + bu (C)
 * with the optional UniPELT gate (gate=1, Mao et al. 2022):
 *   h' = h + s * g * up(act(down(h))),      g = sigmoid(h Wg^T + bg) per token, Wg (1,C), bg (1)
 * r = max(1, floor(C / reduction_factor)) unless r is given (1 <= r <= C).
 * Defaults (AdapterHub SeqBnConfig, src/adapters/configuration/adapter_config.py):
 * reduction_factor 16, non_linearity relu, scaling 1.0 (BnConfig), output_adapter only.
 *
 * Initialisation: down as AdapterHub's default init_weights="bert" (N(0, 0.02^2), bias 0) or
 * "mam_adapter" (U(+-1/sqrt(C)) = kaiming_uniform(a=sqrt(5)), bias 0); up weight and bias ZERO,
 * so the model starts exactly at the base model; gate N(0, 0.02^2), bias 0 (g ~ 0.5).
 *
 * Closed form (L layers, width C; the task head is the framework's to count):
 *   trainable = L * (2 r C + r + C [+ C + 1 with the gate]).
 * Saved per layer and row: h (C), u (r), a (r) [+ y (C), g (1) with the gate]. Workspace per
 * row: C + r [+ 1].
 * Merge: none (the adapter is non-linear in h).
 *
 * Deviations from the references, and why:
 *  - AdapterHub's "bert" init draws the up projection from N(0, 0.02^2) too; here it is zero,
 *    so the method is exactly the base model at step 0 (Houlsby et al.'s near-identity init,
 *    taken to its limit; AdapterHub's "mam_adapter" init does the same).
 *  - Placement: the adapter reads the sub-layer output h itself: out = x + h + U f(D h). AdapterHub
 *    wires a pre-LN GPT-2 with layer_norm=None, so with SeqBnConfig's original_ln_before=True its
 *    adapter reads h plus the residual stream, out = x + h + U f(D (h + x)) (a post-LN recipe
 *    applied to a pre-LN model); we keep the Houlsby / Pfeiffer design of an adapter on the
 *    sub-layer output, the residual stream untouched. So this seq_bn is the MLP half of
 *    double_seq_bn (which does match AdapterHub's DoubleSeqBnConfig), and unipelt's adapter part
 *    inherits the placement.
 *  - The gate is per token. AdapterHub and the UniPELT code average sigmoid(W_g z) over the
 *    sequence (torch.mean(gate, dim=1)), which lets later tokens (and padding) change earlier
 *    positions' outputs and breaks causality in a decoder. The gate reads the adapter's own
 *    input z (here h), as AdapterHub/UniPELT do (self.gate(x) on the adapter input).
 *  - Not implemented: leave_out (the framework has no list-of-layers hyperparameter type),
 *    reduction_factor < 1 (an up-projection, not a bottleneck), per-layer reduction factors,
 *    dropout (AdapterHub default 0), ln_before/ln_after, learned/channel scaling, PHM layers.
 *
 * Letters: N rows, C d_model, r bottleneck size, L layers, K labels.
 */
#include "bottleneck.h"
#include "kernels.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- non-linearities ---------------------------------------------------------------------- */

/* FLOPs per element, forward / backward (exp, erf, tanh count as 1 each):
 *   relu 1 / 1;  gelu (erf) 5 / 11;  gelu_new (tanh) 9 / 16 (as pb_gelu);  swish = silu 5 / 9;
 *   tanh 1 / 3. */
static const uint64_t act_flops[][2] = {{1, 1}, {5, 11}, {9, 16}, {5, 9}, {5, 9}, {1, 3}};

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* a (n) = act(u (n)). */
static void act_fwd(pb_bn_act f, float *a, const float *u, size_t n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = u[i];
        switch (f) {
        case PB_BN_RELU: a[i] = x > 0 ? x : 0.0f; break;
        case PB_BN_GELU: a[i] = 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); break;
        case PB_BN_GELU_NEW: a[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))); break;
        case PB_BN_SWISH:
        case PB_BN_SILU: a[i] = x * sigmoidf(x); break;
        case PB_BN_TANH: a[i] = tanhf(x); break;
        }
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, act_flops[f][0] * n);
}

/* d (n) *= act'(u) in place (a = act(u), saved). */
static void act_bwd(pb_bn_act f, float *d, const float *u, const float *a, size_t n) {
    const float k = 0.7978845608028654f;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = u[i], g = 0.0f;
        switch (f) {
        case PB_BN_RELU: g = x > 0 ? 1.0f : 0.0f; break;
        case PB_BN_GELU:
            g = 0.5f * (1.0f + erff(x * 0.7071067811865476f)) + x * 0.3989422804014327f * expf(-0.5f * x * x);
            break;
        case PB_BN_GELU_NEW: {
            float t = tanhf(k * (x + 0.044715f * x * x * x));
            g = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
            break;
        }
        case PB_BN_SWISH:
        case PB_BN_SILU: {
            float s = sigmoidf(x);
            g = s * (1.0f + x * (1.0f - s));
            break;
        }
        case PB_BN_TANH: g = 1.0f - a[i] * a[i]; break;
        }
        d[i] *= g;
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, act_flops[f][1] * n);
}

/* ---- the shared bottleneck unit (bottleneck.h) -------------------------------------------- */

int pb_bn_size(const pb_method *m, const pb_hp_values *hp, int C) {
    int r = (int)pb_hpv_num(m, hp, "r");
    if (r > 0) return r;
    int k = (int)floor((double)C / pb_hpv_num(m, hp, "reduction_factor"));
    return k < 1 ? 1 : k;
}

pb_status pb_bn_attach(pb_method_ctx *c, unsigned where, int parallel) {
    pb_bn_state *s = c->state;
    const char *name = c->method->name;
    s->C = c->d->d_model;
    int ir = -1, irf = -1;
    for (int i = 0; i < c->method->n_hparams; i++) {
        if (!strcmp(c->method->hparams[i].key, "r")) ir = i;
        if (!strcmp(c->method->hparams[i].key, "reduction_factor")) irf = i;
    }
    assert(ir >= 0 && irf >= 0 && "the method's table must come from PB_BN_HPARAMS");
    if (c->hp.given[ir] && c->hp.given[irf] && pb_hp_int(c, "r") > 0)
        return pb_errorf(PB_EINVAL, "%s: give r or reduction_factor, not both (r=%ld, reduction_factor=%g)", name,
                         pb_hp_int(c, "r"), pb_hp_float(c, "reduction_factor"));
    s->r = pb_bn_size(c->method, &c->hp, s->C);
    if (s->r > s->C)
        return pb_errorf(PB_EINVAL, "%s: r=%d is larger than d_model %d of %s; a bottleneck needs r <= %d", name, s->r,
                         s->C, c->d->name, s->C);
    s->act = (pb_bn_act)pb_hp_enum(c, "non_linearity");
    s->scaling = (float)pb_hp_float(c, "scaling");
    s->init = pb_hp_enum(c, "init_weights");
    s->gate = pb_hp_bool(c, "gate");
    s->parallel = parallel;
    size_t C = (size_t)s->C, r = (size_t)s->r;
    s->acts_row = (parallel ? 0 : C) + 2 * r + (s->gate ? C + 1 : 0);
    static const char *const loc[PB_NSUB] = {"attention_adapters", "output_adapters"};
    for (int l = 0; l < c->d->n_layer; l++)
        for (int w = 0; w < PB_NSUB; w++) {
            if (!(where & (1u << w))) continue;
            if (s->n == PB_BN_MAX_UNITS)
                return pb_errorf(PB_EINVAL, "%s: more than %d adapters", name, PB_BN_MAX_UNITS);
            pb_bn_unit *u = &s->u[s->n++];
            u->layer = l;
            u->which = (pb_sublayer)w;
            pb_status st = pb_ctx_hook_sublayer(c, l, u->which, s->n - 1);
            if (st) return st;
            pb_site site = w == PB_SUB_ATTN ? PB_SITE_O : PB_SITE_DOWN;
            char nm[64];
#define DECLARE(field, part, d0, d1)                                                                               \
    snprintf(nm, sizeof nm, "h.%d.%s.%s", l, loc[w], part);                                                      \
    u->field = pb_ctx_param(c, nm, l, site, d0, d1, 1)
            DECLARE(down_w, "adapter_down.weight", s->r, s->C);
            DECLARE(down_b, "adapter_down.bias", s->r, 0);
            DECLARE(up_w, "adapter_up.weight", s->C, s->r);
            DECLARE(up_b, "adapter_up.bias", s->C, 0);
            if (s->gate) {
                DECLARE(gate_w, "gate.weight", 1, s->C);
                DECLARE(gate_b, "gate.bias", 1, 0);
            } else {
                u->gate_w = u->gate_b = -1;
            }
#undef DECLARE
            pb_ctx_acts(c, s->acts_row, 0);
        }
    pb_ctx_work(c, C + r + (s->gate ? 1 : 0), 0);
    return PB_OK;
}

size_t pb_bn_closed_form(const pb_method *m, const pb_hp_values *hp, const pb_model_desc *d, int n_sub) {
    size_t C = (size_t)d->d_model, r = (size_t)pb_bn_size(m, hp, d->d_model), L = (size_t)d->n_layer;
    size_t gate = pb_hpv_num(m, hp, "gate") != 0 ? C + 1 : 0;
    return L * (size_t)n_sub * (2 * r * C + r + C + gate);
}

void pb_bn_init(pb_method_ctx *c, pb_rng *rng) {
    pb_bn_state *s = c->state;
    for (int i = 0; i < s->n; i++) {
        pb_tensor *wd = pb_ctx_tensor(c, s->u[i].down_w);
        if (s->init == 0) pb_rng_fill_normal(rng, wd->data, wd->numel, 0.02f);
        else pb_rng_fill_uniform(rng, wd->data, wd->numel, 1.0f / sqrtf((float)s->C));
        if (s->gate) {
            pb_tensor *wg = pb_ctx_tensor(c, s->u[i].gate_w);
            pb_rng_fill_normal(rng, wg->data, wg->numel, 0.02f);
        }
        /* biases and the up projection stay zero */
    }
}

/* The saved buffers of unit i for N rows. */
typedef struct {
    float *z;  /* (N,C) adapter input h (sequential only; parallel reads x) */
    float *u;  /* (N,r) pre-activation */
    float *a;  /* (N,r) activation */
    float *y;  /* (N,C) up-projection output (gate only) */
    float *g;  /* (N) gate (gate only) */
} bn_saved;

static bn_saved saved(pb_method_ctx *c, const pb_bn_state *s, int i, int N) {
    size_t n = (size_t)N, C = (size_t)s->C, r = (size_t)s->r;
    float *p = c->acts + (size_t)i * s->acts_row * n;
    bn_saved v = {0};
    if (!s->parallel) {
        v.z = p;
        p += n * C;
    }
    v.u = p;
    v.a = p + n * r;
    p += 2 * n * r;
    if (s->gate) {
        v.y = p;
        v.g = p + n * C;
    }
    return v;
}

void pb_bn_fwd(pb_method_ctx *c, int slot, float *h, const float *x, int N) {
    pb_bn_state *s = c->state;
    int i = slot;
    const pb_bn_unit *un = &s->u[i];
    bn_saved v = saved(c, s, i, N);
    int C = s->C, r = s->r;
    size_t NC = (size_t)N * C;
    const float *z = x;
    if (!s->parallel) {
        pb_copy(v.z, h, NC);
        z = v.z;
    }
    pb_tensor *wd = pb_ctx_tensor(c, un->down_w), *bd = pb_ctx_tensor(c, un->down_b);
    pb_tensor *wu = pb_ctx_tensor(c, un->up_w), *bu = pb_ctx_tensor(c, un->up_b);
    pb_linear_fwd(v.u, z, wd->data, bd->data, N, C, r);
    act_fwd(s->act, v.a, v.u, (size_t)N * r);
    float *y = s->gate ? v.y : c->work; /* (N,C) */
    pb_linear_fwd(y, v.a, wu->data, bu->data, N, r, C);
    if (!s->gate) {
        float sc = s->scaling;
#pragma omp parallel for simd schedule(static)
        for (size_t k = 0; k < NC; k++) h[k] += sc * y[k];
        pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 2 * NC);
        return;
    }
    pb_tensor *wg = pb_ctx_tensor(c, un->gate_w), *bg = pb_ctx_tensor(c, un->gate_b);
    pb_linear_fwd(v.g, z, wg->data, bg->data, N, C, 1);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        v.g[n] = sigmoidf(v.g[n]);
        float k = s->scaling * v.g[n];
        float *hr = h + (size_t)n * C;       /* (C) */
        const float *yr = y + (size_t)n * C; /* (C) */
#pragma omp simd
        for (int j = 0; j < C; j++) hr[j] += k * yr[j];
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 5 * (uint64_t)N + 2 * NC); /* sigmoid 4, s*g 1 */
}

void pb_bn_bwd(pb_method_ctx *c, int slot, float *dh, float *dx, const float *x, int N, int need_dh) {
    pb_bn_state *s = c->state;
    int i = slot;
    const pb_bn_unit *un = &s->u[i];
    bn_saved v = saved(c, s, i, N);
    int C = s->C, r = s->r;
    size_t NC = (size_t)N * C;
    const float *z = s->parallel ? x : v.z;
    /* the gradient into z: dx for the parallel unit, d(old h) for the sequential one, which
     * is dh itself (h' = h + ...) plus the adapter's terms */
    float *dz = s->parallel ? dx : (need_dh ? dh : NULL);
    float *dy = c->work;                       /* (N,C) */
    float *da = c->work + NC;                  /* (N,r) */
    float *ds = c->work + NC + (size_t)N * r;  /* (N) gate pre-activation */
    pb_tensor *wd = pb_ctx_tensor(c, un->down_w), *bd = pb_ctx_tensor(c, un->down_b);
    pb_tensor *wu = pb_ctx_tensor(c, un->up_w), *bu = pb_ctx_tensor(c, un->up_b);
    /* dy = s g dh', and the gate's ds = s (dh' . y) g (1 - g), both from dh' before dz += ... */
    if (!s->gate) {
        float sc = s->scaling;
#pragma omp parallel for simd schedule(static)
        for (size_t k = 0; k < NC; k++) dy[k] = sc * dh[k];
        pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, NC);
    } else {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *dr = dh + (size_t)n * C, *yr = v.y + (size_t)n * C;
            float g = v.g[n], k = s->scaling * g, dot = 0.0f;
            float *dyr = dy + (size_t)n * C; /* (C) */
#pragma omp simd reduction(+ : dot)
            for (int j = 0; j < C; j++) {
                dyr[j] = k * dr[j];
                dot += dr[j] * yr[j];
            }
            ds[n] = s->scaling * dot * g * (1.0f - g);
        }
        pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 3 * NC + 5 * (uint64_t)N);
    }
    memset(da, 0, sizeof(float) * (size_t)N * r);
    pb_linear_bwd(da, wu->grad, bu->grad, dy, v.a, wu->data, N, r, C);
    act_bwd(s->act, da, v.u, v.a, (size_t)N * r);
    pb_linear_bwd(dz, wd->grad, bd->grad, da, z, wd->data, N, C, r);
    if (s->gate) {
        pb_tensor *wg = pb_ctx_tensor(c, un->gate_w), *bg = pb_ctx_tensor(c, un->gate_b);
        pb_linear_bwd(dz, wg->grad, bg->grad, ds, z, wg->data, N, C, 1);
    }
}

/* ---- the method ------------------------------------------------------------------------- */

static const pb_hparam seq_bn_hparams[] = {PB_BN_HPARAMS("16", "relu", "1.0", "bert")};

static pb_status seq_bn_attach(pb_method_ctx *c) { return pb_bn_attach(c, 1u << PB_SUB_FFN, 0); }

static size_t seq_bn_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)head;
    return pb_bn_closed_form(pb_method_find("seq_bn"), hp, d, 1);
}

/* The default (relu) is gradient-checked too (tests/test_methods.c: elements whose difference
 * straddles a relu kink are retried at smaller steps); the examples add the smooth
 * non-linearities and the gate. */
static const char *const seq_bn_examples[] = {
    "seq_bn:reduction_factor=4,non_linearity=swish", "seq_bn:r=3,non_linearity=gelu,gate=1",
    "seq_bn:reduction_factor=2,non_linearity=tanh,scaling=0.5,init_weights=mam_adapter", NULL};

const pb_method pb_method_seq_bn = {
    .version = PB_METHOD_VERSION,
    .name = "seq_bn",
    .category = PB_CAT_ADDITIVE,
    .summary = "sequential bottleneck adapter after the MLP (Pfeiffer): h + s*up(act(down(h)))",
    .paper = "Pfeiffer et al. 2021, AdapterFusion: Non-Destructive Task Composition for Transfer Learning "
             "(arXiv:2005.00247)",
    .hparams = seq_bn_hparams,
    .n_hparams = sizeof seq_bn_hparams / sizeof seq_bn_hparams[0],
    .state_size = sizeof(pb_bn_state),
    .identity_at_init = 1,
    .examples = seq_bn_examples,
    .attach = seq_bn_attach,
    .closed_form = seq_bn_closed_form,
    .init = pb_bn_init,
    .sublayer_fwd = pb_bn_fwd,
    .sublayer_bwd = pb_bn_bwd,
    .flops = pb_bn_flops,
};

/* FLOPs of every unit: pb_bn_fwd and, when the model calls it, pb_bn_bwd (kernels' rules). */
void pb_bn_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const pb_bn_state *s = c->state;
    uint64_t N = (uint64_t)e->x.N, C = (uint64_t)s->C, r = (uint64_t)s->r, NC = N * C;
    for (int i = 0; i < s->n; i++) {
        pb_flops_linear_fwd(f, N, C, r, 1);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, act_flops[s->act][0] * N * r);
        pb_flops_linear_fwd(f, N, r, C, 1);
        if (s->gate) pb_flops_linear_fwd(f, N, C, 1, 1);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 2 * NC + (s->gate ? 5 * N : 0));
        int need_dh, dx;
        if (!pb_flops_sub_bwd(e, s->u[i].layer, s->u[i].which, &need_dh, &dx)) continue;
        int dz = s->parallel ? dx : need_dh;
        pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, s->gate ? 3 * NC + 5 * N : NC);
        pb_flops_linear_bwd(f, N, r, C, 1, 1, 1);
        pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, act_flops[s->act][1] * N * r);
        pb_flops_linear_bwd(f, N, C, r, dz, 1, 1);
        if (s->gate) pb_flops_linear_bwd(f, N, C, 1, dz, 1, 1);
    }
}
