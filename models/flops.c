/* flops.c — the backward plan, FLOPs and training memory from shapes (see flops.h).
 *
 * pb_flops_base follows the blocks (models/block_gpt.c and models/block_llama.c, whose calls differ
 * only in the kernels the descriptor picks: LayerNorm or RMSNorm, GELU or SwiGLU with its gate
 * product, RoPE on q and k) and the trunk (models/model.c pb_model_forward / pb_model_backward)
 * call by call; where they call a kernel, this file adds that kernel's rule (core/kernels.h).
 * Kernels the runnable engine lacks (shape-only models) count by the rules in docs/COUNT.md
 * "Kernels of shape-only models", each marked "shape-only" below.
 */
#include "flops.h"

#include <stdlib.h>
#include <string.h>

#define BIT(s) (1u << PB_SITE_##s)

/* ---- the plan ------------------------------------------------------------------------------- */

void pb_plan_compute(const pb_plan_in *in, pb_layer_plan *plan, int *floor, int *g_lnf) {
    const int L = in->n_layer;
    const uint32_t gtr = in->tr_w | in->tr_b;
    int g = in->input_requires_grad || (gtr & (BIT(EMBED) | BIT(POS) | BIT(TYPE) | BIT(LN_EMBED) | BIT(PROJ_IN) |
                                               BIT(PATCH) | BIT(CLS_TOK))) ||
            in->embed_hook == 2;
    *floor = L;
    for (int l = 0; l < L; l++) {
        const pb_plan_layer_in *f = &in->layer[l];
        uint32_t t = f->tr_w | f->tr_b, h = f->hook_tr;
#define ON(mask) (((t | h) & (mask)) != 0)
        pb_layer_plan *p = &plan[l];
        p->in = g;
        p->ln1 = g || ((t & BIT(LN1)) != 0);
        p->q = p->ln1 || ON(BIT(Q) | BIT(QKV));
        p->k = p->ln1 || ON(BIT(K) | BIT(QKV));
        p->v = p->ln1 || ON(BIT(V) | BIT(QKV));
        p->att = p->q || p->k || p->v || f->prefix == 2 || ((t & BIT(REL)) != 0);
        p->o = p->att || ON(BIT(O) | BIT(LN_X) | BIT(XQ) | BIT(XK) | BIT(XV) | BIT(XO)) || f->sub[PB_SUB_ATTN] == 2;
        p->res2 = g || p->o;
        p->ln2 = p->res2 || ((t & BIT(LN2)) != 0);
        p->up = p->ln2 || ON(BIT(UP) | BIT(GATE));
        p->down = p->up || ON(BIT(DOWN)) || f->sub[PB_SUB_FFN] == 2;
        p->out = p->res2 || p->down;
        /* Per site: whether its backward runs, and whether it passes a gradient to its input (the
         * blocks' pb_blk_site_bwd / pb_blk_norm_bwd and pb_flops_site_bwd read these). */
        uint32_t run = 0, dinp = 0;
#define SITE(s, r, di)               \
    do {                             \
        if (r) run |= BIT(s);        \
        if ((r) && (di)) dinp |= BIT(s); \
    } while (0)
        SITE(DOWN, p->up || ON(BIT(DOWN)), p->up);
        SITE(UP, p->up, p->ln2);
        SITE(GATE, p->up, p->ln2);
        SITE(LN2, p->ln2, p->res2);
        SITE(O, p->att || ON(BIT(O)), p->att);
        SITE(Q, p->q, p->ln1);
        SITE(K, p->k, p->ln1);
        SITE(V, p->v, p->ln1);
        SITE(QKV, p->att, p->ln1);
        SITE(XO, p->res2, 1); /* shape-only: cross-attention runs beside the attention sub-block */
        SITE(XQ, p->res2, p->ln1);
        SITE(XK, p->res2, p->ln1);
        SITE(XV, p->res2, p->ln1);
        SITE(LN1, p->ln1, p->in);
#undef SITE
        p->run = run;
        p->dinp = dinp;
#undef ON
        if (p->out && *floor == L) *floor = l;
        g = p->out;
    }
    *g_lnf = g || ((gtr & (BIT(LN_F) | BIT(PROJ_OUT) | BIT(POOLER))) != 0);
}

static int hook_at(const pb_flops_env *e, int l, pb_site s) {
    return l >= 0 && (e->in->layer[l].hook & (1u << s));
}

pb_status pb_flops_env_init(pb_flops_env *e, const pb_model_desc *d, pb_head_kind head, int K, const pb_plan_in *in,
                            int B, int T, int Pe, int Pk, int training) {
    memset(e, 0, sizeof *e);
    e->d = d;
    e->head = head;
    e->K = K;
    e->in = in;
    e->training = training;
    e->plan = calloc((size_t)(d->n_layer > 0 ? d->n_layer : 1), sizeof *e->plan);
    if (!e->plan) return pb_errorf(PB_ENOMEM, "out of memory");
    pb_plan_compute(in, e->plan, &e->floor, &e->g_lnf);
    int Pg = 0;
    for (int l = 0; l < d->n_layer; l++) Pg |= in->layer[l].prefix && in->layer[l].gated;
    e->x = (pb_dims){.B = B, .T = T, .Pe = Pe, .Pk = Pk, .Pg = Pg};
    e->x.Tm = Pe + T;
    e->x.Tk = Pk + e->x.Tm;
    e->x.N = B * e->x.Tm;
    return PB_OK;
}

void pb_flops_env_free(pb_flops_env *e) {
    free(e->plan);
    e->plan = NULL;
}

/* ---- kernel rules --------------------------------------------------------------------------- */

void pb_flops_gemm(pb_flops *f, pb_phase ph, uint64_t M, uint64_t N, uint64_t K) {
    if (M && N) f->n[ph][PB_KIND_MATMUL] += 2 * M * N * K;
}

void pb_flops_linear_fwd(pb_flops *f, uint64_t N, uint64_t IC, uint64_t OC, int bias) {
    f->n[PB_PHASE_FWD][PB_KIND_MATMUL] += 2 * N * IC * OC;
    if (bias) f->n[PB_PHASE_FWD][PB_KIND_OTHER] += N * OC;
}

void pb_flops_linear_bwd(pb_flops *f, uint64_t N, uint64_t IC, uint64_t OC, int dinp, int dw, int db) {
    if (dinp) f->n[PB_PHASE_BWD_IN][PB_KIND_MATMUL] += 2 * N * IC * OC;
    if (dw) f->n[PB_PHASE_BWD_W][PB_KIND_MATMUL] += 2 * N * IC * OC;
    if (db) f->n[PB_PHASE_BWD_W][PB_KIND_OTHER] += N * OC;
}

/* LayerNorm and RMSNorm (kernels.h: RMSNorm fwd 5 N C, bwd_in 7 N C, bwd_w 2 N C for the gain; no
 * bias). */
static void norm_fwd(pb_flops *f, const pb_model_desc *d, uint64_t N, uint64_t C) {
    f->n[PB_PHASE_FWD][PB_KIND_OTHER] += (d->norm == PB_NORM_RMSNORM ? 5 : 8) * N * C;
}
static void norm_bwd(pb_flops *f, const pb_model_desc *d, uint64_t N, uint64_t C, int dinp, int dw, int db) {
    int rms = d->norm == PB_NORM_RMSNORM;
    if (dinp) f->n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += (rms ? 7 : 10) * N * C;
    if (dw || (db && !rms)) f->n[PB_PHASE_BWD_W][PB_KIND_OTHER] += (uint64_t)((dw ? 2 : 0) + (db && !rms ? 1 : 0)) * N * C;
}

static void attn_fwd(pb_flops *f, uint64_t B, uint64_t H, uint64_t Tq, uint64_t Tk, uint64_t hs) {
    uint64_t blk = B * H * Tq * Tk;
    f->n[PB_PHASE_FWD][PB_KIND_MATMUL] += 4 * blk * hs;
    f->n[PB_PHASE_FWD][PB_KIND_OTHER] += 6 * blk;
}
static void attn_bwd(pb_flops *f, uint64_t B, uint64_t H, uint64_t Tq, uint64_t Tk, uint64_t hs, int dq, int dk,
                     int dv) {
    if (!dq && !dk && !dv) return;
    uint64_t blk = B * H * Tq * Tk;
    f->n[PB_PHASE_BWD_IN][PB_KIND_MATMUL] += 2 * blk * hs * (uint64_t)(1 + !!dq + !!dk + !!dv);
    f->n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 5 * blk;
}

/* ---- sites ---------------------------------------------------------------------------------- */

typedef struct {
    uint64_t ic, oc;
    int bias;
} site_shape;

static site_shape shape_of(const pb_model_desc *d, pb_site s) {
    int in, out, bias;
    pb_desc_site_shape(d, s, &in, &out, &bias);
    return (site_shape){(uint64_t)in, (uint64_t)out, bias};
}

int pb_flops_site_tr(const pb_flops_env *e, int layer, pb_site site, int bias) {
    uint32_t m = layer >= 0 ? (bias ? e->in->layer[layer].tr_b : e->in->layer[layer].tr_w)
                            : (bias ? e->in->tr_b : e->in->tr_w);
    return (m & (1u << site)) != 0;
}

int pb_flops_site_bwd(const pb_flops_env *e, int l, pb_site s, int *dinp) {
    *dinp = 0;
    if (!e->training || l < e->floor || !e->g_lnf || !pb_site_is_linear(s)) return 0;
    const pb_layer_plan *p = &e->plan[l];
    *dinp = (p->dinp >> s) & 1u;
    return (p->run >> s) & 1u;
}

void pb_flops_site_base_bwd(const pb_flops_env *e, int layer, pb_site site, int N, int IC, int OC, int dinp,
                            pb_flops *f) {
    int dw = pb_flops_site_tr(e, layer, site, 0), db = pb_flops_site_tr(e, layer, site, 1);
    if (!dinp && !dw && !db) return;
    pb_flops_linear_bwd(f, (uint64_t)N, (uint64_t)IC, (uint64_t)OC, dinp, dw, db);
}

void pb_flops_site_base(const pb_flops_env *e, int layer, pb_site site, int N, int IC, int OC, pb_flops *f) {
    site_shape sh = shape_of(e->d, site);
    pb_flops_linear_fwd(f, (uint64_t)N, (uint64_t)IC, (uint64_t)OC, sh.bias);
    int dinp;
    if (pb_flops_site_bwd(e, layer, site, &dinp)) pb_flops_site_base_bwd(e, layer, site, N, IC, OC, dinp, f);
}

/* An unhooked site (hooked ones are the method's to count). */
static void site(const pb_flops_env *e, int l, pb_site s, uint64_t N, pb_flops *f) {
    if (hook_at(e, l, s)) return;
    site_shape sh = shape_of(e->d, s);
    pb_flops_linear_fwd(f, N, sh.ic, sh.oc, sh.bias);
}
static void site_b(const pb_flops_env *e, int l, pb_site s, uint64_t N, int dinp, pb_flops *f) {
    if (hook_at(e, l, s)) return;
    site_shape sh = shape_of(e->d, s);
    pb_flops_site_base_bwd(e, l, s, (int)N, (int)sh.ic, (int)sh.oc, dinp, f);
}

int pb_flops_sub_bwd(const pb_flops_env *e, int l, pb_sublayer which, int *need_dh, int *dx) {
    *need_dh = *dx = 0;
    if (!e->training || l < e->floor || !e->g_lnf) return 0;
    const pb_layer_plan *p = &e->plan[l];
    if (which == PB_SUB_ATTN && !p->res2) return 0;
    /* as pb_blk_sublayer_bwd: d(hook input) when the site under it runs; dx into ln2's / ln1's output */
    *dx = which == PB_SUB_FFN ? p->ln2 : p->ln1;
    *need_dh = (p->run >> (which == PB_SUB_FFN ? PB_SITE_DOWN : PB_SITE_O)) & 1u;
    return 1;
}

int pb_flops_prefix_bwd(const pb_flops_env *e, int l, int *dx) {
    *dx = 0;
    if (!e->training || l < e->floor || !e->g_lnf) return 0;
    const pb_layer_plan *p = &e->plan[l];
    *dx = p->ln1;
    return p->res2 && p->att;
}

int pb_flops_embed_bwd(const pb_flops_env *e) {
    return e->training && e->g_lnf && e->floor == 0 && e->plan[0].in;
}

/* ---- the base model ------------------------------------------------------------------------- */

/* The FFN's activation: SwiGLU (kernels.h pb_swiglu_*: fwd 5 n = SiLU 4 + the gate product below,
 * bwd_in 8 n = 6 + the gate product's 2 below); GELU as kernels.h, also GeGLU's (shape-only). */
static uint64_t act_fwd(const pb_model_desc *d) { return d->ffn == PB_FFN_SWIGLU ? 4 : 9; }
static uint64_t act_bwd(const pb_model_desc *d) { return d->ffn == PB_FFN_SWIGLU ? 6 : 16; }

static void layer_fwd(const pb_flops_env *e, int l, pb_flops *f) {
    const pb_model_desc *d = e->d;
    const pb_dims *x = &e->x;
    const pb_plan_layer_in *li = &e->in->layer[l];
    uint64_t N = (uint64_t)x->N, C = (uint64_t)d->d_model, F = (uint64_t)d->d_ff, H = (uint64_t)d->n_head;
    uint64_t hs = (uint64_t)pb_desc_head_dim(d), kvd = (uint64_t)d->n_kv_head * hs, B = (uint64_t)x->B;
    norm_fwd(f, d, N, C);
    if (d->fused_qkv) site(e, l, PB_SITE_QKV, N, f);
    else {
        site(e, l, PB_SITE_Q, N, f);
        site(e, l, PB_SITE_K, N, f);
        site(e, l, PB_SITE_V, N, f);
    }
    if (d->pos == PB_POS_ROPE) f->n[PB_PHASE_FWD][PB_KIND_OTHER] += 3 * N * (H * hs + kvd); /* pb_rope_fwd on q, k */
    if (x->Pk && li->prefix && li->gated) f->n[PB_PHASE_FWD][PB_KIND_OTHER] += 2 * B * (uint64_t)x->Pk * kvd;
    attn_fwd(f, B, H, (uint64_t)x->Tm, (uint64_t)x->Tk, hs);
    if (d->pos == PB_POS_RELATIVE || d->pos == PB_POS_NONE) /* shape-only: relative bias / ALiBi added to scores */
        f->n[PB_PHASE_FWD][PB_KIND_OTHER] += B * H * (uint64_t)x->Tm * (uint64_t)x->Tk;
    site(e, l, PB_SITE_O, N, f);
    f->n[PB_PHASE_FWD][PB_KIND_OTHER] += N * C; /* residual add */
    if (pb_desc_is_dec_block(d, l)) {           /* shape-only: cross-attention over T encoder positions */
        norm_fwd(f, d, N, C);
        site(e, l, PB_SITE_XQ, N, f);
        site(e, l, PB_SITE_XK, B * (uint64_t)x->T, f);
        site(e, l, PB_SITE_XV, B * (uint64_t)x->T, f);
        attn_fwd(f, B, H, (uint64_t)x->Tm, (uint64_t)x->T, hs);
        site(e, l, PB_SITE_XO, N, f);
        f->n[PB_PHASE_FWD][PB_KIND_OTHER] += N * C;
    }
    norm_fwd(f, d, N, C);
    site(e, l, PB_SITE_UP, N, f);
    if (d->ffn != PB_FFN_GELU) {
        site(e, l, PB_SITE_GATE, N, f);
        f->n[PB_PHASE_FWD][PB_KIND_OTHER] += N * F; /* gate * up */
    }
    f->n[PB_PHASE_FWD][PB_KIND_OTHER] += act_fwd(d) * N * F;
    site(e, l, PB_SITE_DOWN, N, f);
    f->n[PB_PHASE_FWD][PB_KIND_OTHER] += N * C;
}

static void layer_bwd(const pb_flops_env *e, int l, pb_flops *f) {
    const pb_model_desc *d = e->d;
    const pb_dims *x = &e->x;
    const pb_layer_plan *p = &e->plan[l];
    const pb_plan_layer_in *li = &e->in->layer[l];
    uint64_t N = (uint64_t)x->N, C = (uint64_t)d->d_model, F = (uint64_t)d->d_ff, H = (uint64_t)d->n_head;
    uint64_t hs = (uint64_t)pb_desc_head_dim(d), kvd = (uint64_t)d->n_kv_head * hs, B = (uint64_t)x->B;
    int dinp;
    if (pb_flops_site_bwd(e, l, PB_SITE_DOWN, &dinp)) site_b(e, l, PB_SITE_DOWN, N, dinp, f);
    if (p->up) {
        f->n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += act_bwd(d) * N * F;
        if (d->ffn != PB_FFN_GELU) {
            f->n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 2 * N * F; /* d gate, d up */
            site_b(e, l, PB_SITE_GATE, N, p->ln2, f);
        }
        site_b(e, l, PB_SITE_UP, N, p->ln2, f);
    }
    if (p->ln2)
        norm_bwd(f, d, N, C, p->res2, pb_flops_site_tr(e, l, PB_SITE_LN2, 0), pb_flops_site_tr(e, l, PB_SITE_LN2, 1));
    if (!p->res2) return;
    if (pb_desc_is_dec_block(d, l)) { /* shape-only: cross-attention, input gradient always passed on */
        site_b(e, l, PB_SITE_XO, N, 1, f);
        attn_bwd(f, B, H, (uint64_t)x->Tm, (uint64_t)x->T, hs, 1, p->in, p->in);
        site_b(e, l, PB_SITE_XQ, N, 1, f);
        site_b(e, l, PB_SITE_XK, B * (uint64_t)x->T, p->in, f);
        site_b(e, l, PB_SITE_XV, B * (uint64_t)x->T, p->in, f);
        norm_bwd(f, d, N, C, 1, pb_flops_site_tr(e, l, PB_SITE_LN_X, 0), pb_flops_site_tr(e, l, PB_SITE_LN_X, 1));
    }
    if (pb_flops_site_bwd(e, l, PB_SITE_O, &dinp)) site_b(e, l, PB_SITE_O, N, dinp, f);
    if (p->att) {
        uint64_t Tm = (uint64_t)x->Tm, Tk = (uint64_t)x->Tk;
        if (d->pos == PB_POS_RELATIVE && pb_flops_site_tr(e, l, PB_SITE_REL, 0))
            f->n[PB_PHASE_BWD_W][PB_KIND_OTHER] += B * H * Tm * Tk; /* shape-only: scatter into the bias table */
        if (x->Pk) {
            int want_kv = p->k || p->v || li->prefix;
            attn_bwd(f, B, H, Tm, Tk, hs, p->q, want_kv, want_kv);
            if (want_kv) {
                uint64_t PC = (uint64_t)x->Pk * kvd;
                f->n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 2 * B * PC * (li->prefix && li->gated ? 4 : 1);
            }
        } else {
            attn_bwd(f, B, H, Tm, Tk, hs, p->q, p->k, p->v);
        }
        if (d->pos == PB_POS_ROPE) /* pb_rope_bwd_inplace on dq and dk */
            f->n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 3 * N * ((p->q ? H * hs : 0) + (p->k ? kvd : 0));
        if (d->fused_qkv) site_b(e, l, PB_SITE_QKV, N, p->ln1, f);
        else {
            if (p->q) site_b(e, l, PB_SITE_Q, N, p->ln1, f);
            if (p->k) site_b(e, l, PB_SITE_K, N, p->ln1, f);
            if (p->v) site_b(e, l, PB_SITE_V, N, p->ln1, f);
        }
    }
    if (p->ln1)
        norm_bwd(f, d, N, C, p->in, pb_flops_site_tr(e, l, PB_SITE_LN1, 0), pb_flops_site_tr(e, l, PB_SITE_LN1, 1));
}

static int gtr(const pb_flops_env *e, pb_site s) { return pb_flops_site_tr(e, -1, s, 0) || pb_flops_site_tr(e, -1, s, 1); }

void pb_flops_base(const pb_flops_env *e, pb_flops *out) {
    pb_flops f = {0};
    const pb_model_desc *d = e->d;
    const pb_dims *x = &e->x;
    const int L = d->n_layer;
    uint64_t B = (uint64_t)x->B, N = (uint64_t)x->N, C = (uint64_t)d->d_model, V = (uint64_t)d->vocab;
    uint64_t E = d->proj_dim ? (uint64_t)d->proj_dim : C, K = (uint64_t)e->K;
    const int vis = d->arch == PB_ARCH_VISION;

    /* embeddings */
    if (vis) { /* shape-only: patch embedding as a linear layer over flattened patches, then positions */
        uint64_t np = (uint64_t)(d->image / d->patch) * (uint64_t)(d->image / d->patch);
        pb_flops_linear_fwd(&f, B * np, (uint64_t)d->channels * d->patch * d->patch, C, 1);
        f.n[PB_PHASE_FWD][PB_KIND_OTHER] += N * C;
    } else {
        if (d->pos == PB_POS_LEARNED) f.n[PB_PHASE_FWD][PB_KIND_OTHER] += N * C;
        if (d->type_vocab) f.n[PB_PHASE_FWD][PB_KIND_OTHER] += N * C; /* shape-only: token types added */
    }
    if (d->embed_norm) norm_fwd(&f, d, N, C);
    if (d->proj_dim) pb_flops_linear_fwd(&f, N, E, C, 0);

    for (int l = 0; l < L; l++) layer_fwd(e, l, &f);
    int n_final = d->arch == PB_ARCH_ENCDEC ? 2 : 1;
    if (!d->no_final_norm) for (int i = 0; i < n_final; i++) norm_fwd(&f, d, N, C);
    if (d->proj_dim) pb_flops_linear_fwd(&f, N, C, E, 0);

    /* head and loss */
    int pooler = d->pooler && (e->head == PB_HEAD_NONE || (e->head == PB_HEAD_CLS && d->cls_pooler));
    uint64_t rows = 0, classes = 0;
    if (pooler) { /* shape-only: dense + tanh on the pooled position */
        pb_flops_linear_fwd(&f, B, C, C, 1);
        f.n[PB_PHASE_FWD][PB_KIND_OTHER] += B * C;
    }
    switch (e->head) {
    case PB_HEAD_LM:
        pb_flops_linear_fwd(&f, N, E, V, 0);
        rows = N, classes = V;
        break;
    case PB_HEAD_CLS:
        if (d->cls_head == PB_CLS_DENSE) {
            pb_flops_linear_fwd(&f, B, C, C, 1);
            f.n[PB_PHASE_FWD][PB_KIND_OTHER] += B * C;
            pb_flops_linear_fwd(&f, B, C, K, 1);
        } else {
            pb_flops_linear_fwd(&f, B, d->proj_dim ? E : C, K, d->cls_head == PB_CLS_LINEAR);
        }
        rows = B, classes = K;
        break;
    case PB_HEAD_TOKCLS:
        pb_flops_linear_fwd(&f, N, C, K, 1);
        rows = N, classes = K;
        break;
    case PB_HEAD_NONE: break;
    }
    if (rows) f.n[PB_PHASE_FWD][PB_KIND_OTHER] += 5 * rows * classes + rows;

    if (e->training && rows) {
        int gl = e->g_lnf, htr = gtr(e, PB_SITE_HEAD);
        if (e->head == PB_HEAD_LM) {
            int wte = d->tied_embed ? pb_flops_site_tr(e, -1, PB_SITE_EMBED, 0) : htr;
            if (gl || wte) {
                f.n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 2 * rows * classes;
                pb_flops_linear_bwd(&f, N, E, V, gl, wte, 0);
            }
        } else if (gl || htr) {
            f.n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 2 * rows * classes;
            int dw = pb_flops_site_tr(e, -1, PB_SITE_HEAD, 0), db = pb_flops_site_tr(e, -1, PB_SITE_HEAD, 1);
            uint64_t hr = e->head == PB_HEAD_TOKCLS ? N : B;
            if (e->head == PB_HEAD_CLS && d->cls_head == PB_CLS_DENSE) {
                pb_flops_linear_bwd(&f, hr, C, K, 1, dw, db);
                f.n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 2 * hr * C; /* tanh' */
                pb_flops_linear_bwd(&f, hr, C, C, gl, dw, db);
            } else if (gl || dw || db) {
                pb_flops_linear_bwd(&f, hr, C, K, gl, dw, db);
            }
        }
        if (gl) {
            if (pooler) {
                pb_flops_linear_bwd(&f, B, C, C, 1, gtr(e, PB_SITE_POOLER), gtr(e, PB_SITE_POOLER));
                f.n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += 2 * B * C;
            }
            if (d->proj_dim) pb_flops_linear_bwd(&f, N, C, E, 1, gtr(e, PB_SITE_PROJ_OUT), 0);
            int need_top = L > 0 && e->plan[L - 1].out;
            if (!d->no_final_norm)
                norm_bwd(&f, d, N, C, need_top, pb_flops_site_tr(e, -1, PB_SITE_LN_F, 0),
                         pb_flops_site_tr(e, -1, PB_SITE_LN_F, 1));
            int l = L - 1;
            for (; l >= 0; l--) {
                if (!e->plan[l].out) break;
                layer_bwd(e, l, &f);
                if (!e->plan[l].in) break;
            }
            if (l < 0 && L > 0 && e->plan[0].in) { /* the embeddings (model.c embed_bwd) */
                int dwte = pb_flops_site_tr(e, -1, vis ? PB_SITE_PATCH : PB_SITE_EMBED, 0);
                int dwpe = pb_flops_site_tr(e, -1, PB_SITE_POS, 0);
                if (d->proj_dim) pb_flops_linear_bwd(&f, N, E, C, dwte, gtr(e, PB_SITE_PROJ_IN), 0);
                if (d->embed_norm)
                    norm_bwd(&f, d, N, C, dwte, pb_flops_site_tr(e, -1, PB_SITE_LN_EMBED, 0),
                             pb_flops_site_tr(e, -1, PB_SITE_LN_EMBED, 1));
                if (x->Pe) f.n[PB_PHASE_BWD_IN][PB_KIND_OTHER] += B * (uint64_t)x->Pe * C;
                uint64_t BT = B * (uint64_t)x->T;
                if (vis) {
                    uint64_t np = (uint64_t)(d->image / d->patch) * (uint64_t)(d->image / d->patch);
                    if (dwte) pb_flops_linear_bwd(&f, B * np, (uint64_t)d->channels * d->patch * d->patch, C, 0, 1, 1);
                    if (dwpe) f.n[PB_PHASE_BWD_W][PB_KIND_OTHER] += BT * C;
                } else {
                    f.n[PB_PHASE_BWD_W][PB_KIND_OTHER] += BT * C * (uint64_t)(dwte + dwpe);
                }
            }
        }
    }
    for (int p = 0; p < PB_NPHASE; p++)
        for (int k = 0; k < PB_NKIND; k++) out->n[p][k] += f.n[p][k];
}

/* ---- memory --------------------------------------------------------------------------------- */

pb_status pb_precision_parse(const char *s, pb_precision *p) {
    if (!strcmp(s, "fp32")) *p = PB_PREC_FP32;
    else if (!strcmp(s, "bf16")) *p = PB_PREC_BF16;
    else if (!strcmp(s, "fp16")) *p = PB_PREC_FP16;
    else return pb_errorf(PB_EINVAL, "--precision '%s' is not one of fp32, bf16, fp16", s);
    return PB_OK;
}

size_t pb_precision_bytes(pb_precision p) { return p == PB_PREC_FP32 ? 4 : 2; }
const char *pb_precision_name(pb_precision p) { return p == PB_PREC_FP32 ? "fp32" : p == PB_PREC_BF16 ? "bf16" : "fp16"; }

/* ---- the model's buffer sizes: model.c allocates by these, pb_mem_estimate predicts by them --- */

/* A norm's saved statistics per row: LayerNorm's mean and rstd, RMSNorm's rstd. */
static size_t norm_stats(const pb_model_desc *d) { return d->norm == PB_NORM_RMSNORM ? 1 : 2; }

size_t pb_buf_layer_acts(const pb_model_desc *d, const pb_dims *x) {
    size_t N = (size_t)x->N, B = (size_t)x->B, Tm = (size_t)x->Tm, Tk = (size_t)x->Tk;
    size_t C = (size_t)d->d_model, H = (size_t)d->n_head, F = (size_t)d->d_ff, hd = (size_t)pb_desc_head_dim(d);
    size_t qd = H * hd, kvd = (size_t)d->n_kv_head * hd, nF = d->ffn == PB_FFN_GELU ? 2 : 3, ns = norm_stats(d);
    size_t kv = x->Pk ? 2 * B * Tk * kvd : 0, pg = x->Pg ? B : 0;
    return N * C + ns * N /*ln1*/ + N * (qd + 2 * kvd) /*q,k,v*/ + kv /*kf, vf*/ + pg + B * H * Tm * Tk /*att*/ +
           N * qd /*atty*/ + N * C /*res2*/ + N * C + ns * N /*ln2*/ + nF * N * F /*fch, activation (, gate)*/ +
           N * C /*out*/;
}

static size_t head_rows(pb_head_kind head, const pb_dims *x) {
    return head == PB_HEAD_LM || head == PB_HEAD_TOKCLS ? (size_t)x->N : (size_t)x->B;
}

size_t pb_buf_head_out(const pb_model_desc *d, pb_head_kind head, int K, const pb_dims *x) {
    return head_rows(head, x) * (size_t)(head == PB_HEAD_LM ? d->vocab : K);
}

/* ints and bytes are stored in float-sized slots, rounded up */
static size_t bytes_as_floats(size_t n) { return (n + sizeof(float) - 1) / sizeof(float); }

size_t pb_buf_top(const pb_model_desc *d, pb_head_kind head, int K, const pb_dims *x) {
    size_t N = (size_t)x->N, B = (size_t)x->B, C = (size_t)d->d_model;
    return N * C /*encoded*/ + N * C + norm_stats(d) * N /*lnf*/ + B * C /*pooled*/ + 2 * pb_buf_head_out(d, head, K, x) +
           head_rows(head, x) /*losses*/ + B /*pool_idx*/ + N /*targets_m*/ + bytes_as_floats(N) /*mask_m*/;
}

size_t pb_buf_scratch(const pb_model_desc *d, pb_head_kind head, int K, const pb_dims *x) {
    size_t N = (size_t)x->N, B = (size_t)x->B, Tm = (size_t)x->Tm, Tk = (size_t)x->Tk;
    size_t C = (size_t)d->d_model, H = (size_t)d->n_head, F = (size_t)d->d_ff;
    size_t Pk = (size_t)x->Pk, Pe = (size_t)x->Pe, hd = (size_t)pb_desc_head_dim(d);
    size_t qd = H * hd, kvd = (size_t)d->n_kv_head * hd;
    return pb_buf_layer_acts(d, x) + N * C /*out2*/ + 2 * N * C /*dres, dln*/ + 2 * N * (qd + kvd) /*dq, dk, dv, datty*/ +
           2 * N * C /*proj, dsub*/ + (d->ffn == PB_FFN_GELU ? 1 : 2) * N * F /*dfch (, dfch_gate)*/ +
           B * H * Tm * Tk /*datt*/ + (d->pos == PB_POS_ROPE ? Tk * hd : 0) /*RoPE table*/ +
           pb_buf_head_out(d, head, K, x) /*dlogits*/ + B * C /*dpooled*/ + (Pk ? 2 * B * Tk * kvd : 0) /*dkf, dvf*/ +
           2 * Pe * C /*prompt, dprompt*/ + 4 * Pk * kvd /*pk..dpv*/ + (x->Pg ? B : 0) /*dpgate*/ +
           bytes_as_floats(B * Tk) /*kmask*/;
}

void pb_mem_estimate(const pb_flops_env *e, const pb_mem_in *in, pb_precision prec, size_t bytes[PB_MEM_NCAT]) {
    const pb_model_desc *d = e->d;
    const pb_dims *x = &e->x;
    size_t pb = pb_precision_bytes(prec), L = (size_t)d->n_layer;
    memset(bytes, 0, sizeof(size_t) * PB_MEM_NCAT);
    bytes[PB_MEM_FROZEN] = in->frozen_params * pb;
    bytes[PB_MEM_TRAINABLE] = in->trainable_params * 4;
    bytes[PB_MEM_GRADS] = in->trainable_params * 4;
    bytes[PB_MEM_OPTIM] = in->trainable_params * 8;
    size_t floor = (size_t)(e->training ? e->floor : d->n_layer);
    size_t acts = pb_buf_top(d, e->head, e->K, x) + (L - (floor < L ? floor : L)) * pb_buf_layer_acts(d, x) +
                  in->method_acts;
    size_t work = pb_buf_scratch(d, e->head, e->K, x) + in->method_work;
    bytes[PB_MEM_ACTS] = acts * pb;
    bytes[PB_MEM_WORKSPACE] = work * pb;
}
