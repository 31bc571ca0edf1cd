/* block_gpt.c — the GPT-style block (GPT-2; with causal = 0 its bidirectional encoder variant):
 *
 *   res2 = inp  + sub_attn(o(attention(q(ln1(inp)), k(ln1(inp)), v(ln1(inp)))))
 *   out  = res2 + sub_ffn(down(gelu(up(ln2(res2)))))
 *
 * pre-LN with LayerNorm, separate q/k/v/o, H key/value heads (no grouped-query attention), a GELU
 * MLP, learned positions (added by the trunk), linear biases when the descriptor has them.
 * sub_* are the adapters' sub-layer hooks (identity when none); every linear layer may carry a
 * PEFT hook, and attention may get a prefix in front of its keys and values (models/block.h).
 *
 * Forward and backward side by side; the backward is the forward read backwards, one call per
 * line. What each call computes (or skips) comes from the backward plan per site, applied by the
 * trunk's helpers.
 *
 * Dimension letters as model.h (hs = C / H, so qd = kvd = C).
 */
#include "block.h"
#include "kernels.h"


static const char *gpt_refuses(const pb_model_desc *d) {
    if (d->norm != PB_NORM_LAYERNORM) return "its norm is LayerNorm";
    if (d->ffn != PB_FFN_GELU) return "its MLP is GELU";
    if (d->pos != PB_POS_LEARNED) return "its positions are learned";
    if (d->n_kv_head != d->n_head) return "it has as many key/value heads as query heads";
    if (d->fused_qkv) return "it has separate q/k/v projections";
    return NULL;
}

static float *carve(float **p, size_t n) {
    float *r = *p;
    *p += n;
    return r;
}

static void gpt_carve(pb_layer_acts *a, float **p, const pb_model_desc *d, const pb_dims *x) {
    size_t N = (size_t)x->N, B = (size_t)x->B, Tm = (size_t)x->Tm, Tk = (size_t)x->Tk;
    size_t C = (size_t)d->d_model, H = (size_t)d->n_head, F = (size_t)d->d_ff;
    a->ln1 = carve(p, N * C);
    a->ln1_mean = carve(p, N);
    a->ln1_rstd = carve(p, N);
    a->q = carve(p, N * C);
    a->k = carve(p, N * C);
    a->v = carve(p, N * C);
    a->kf = x->Pk ? carve(p, B * Tk * C) : a->k;
    a->vf = x->Pk ? carve(p, B * Tk * C) : a->v;
    a->pgate = x->Pg ? carve(p, B) : NULL;
    a->att = carve(p, B * H * Tm * Tk);
    a->atty = carve(p, N * C);
    a->res2 = carve(p, N * C);
    a->ln2 = carve(p, N * C);
    a->ln2_mean = carve(p, N);
    a->ln2_rstd = carve(p, N);
    a->fch = carve(p, N * F);
    a->fch_gate = NULL;
    a->fch_act = carve(p, N * F);
    a->out = carve(p, N * C);
}

static void gpt_fwd(pb_model *m, int l, pb_layer_acts *a, const float *inp, const pb_dims *x) {
    const pb_model_desc *d = &m->d;
    const int N = x->N, C = d->d_model, F = d->d_ff, H = d->n_head;
    float *proj = m->proj; /* (N,C) attn.o, then mlp.down, before the residual add */
    a->inp = inp;
    /* attention */
    pb_blk_norm_fwd(m, l, PB_SITE_LN1, a->ln1, a->ln1_mean, a->ln1_rstd, inp, N);
    pb_blk_site_fwd(m, l, PB_SITE_Q, a->q, a->ln1, N);
    pb_blk_site_fwd(m, l, PB_SITE_K, a->k, a->ln1, N);
    pb_blk_site_fwd(m, l, PB_SITE_V, a->v, a->ln1, N);
    const uint8_t *kmask = pb_blk_kv_fwd(m, l, a, a->ln1, x);
    pb_attention_fwd(a->atty, a->att, a->q, a->kf, a->vf, kmask, x->B, x->Tm, x->Tk, C, H, H, d->causal);
    pb_blk_site_fwd(m, l, PB_SITE_O, proj, a->atty, N);
    pb_blk_sublayer_fwd(m, l, PB_SUB_ATTN, proj, a->ln1, N);
    pb_add_fwd(a->res2, inp, proj, (size_t)N * C);
    /* MLP */
    pb_blk_norm_fwd(m, l, PB_SITE_LN2, a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, N);
    pb_blk_site_fwd(m, l, PB_SITE_UP, a->fch, a->ln2, N);
    pb_gelu_fwd(a->fch_act, a->fch, (size_t)N * F);
    pb_blk_site_fwd(m, l, PB_SITE_DOWN, proj, a->fch_act, N);
    pb_blk_sublayer_fwd(m, l, PB_SUB_FFN, proj, a->ln2, N);
    pb_add_fwd(a->out, a->res2, proj, (size_t)N * C);
}

static void gpt_bwd(pb_model *m, int l, const pb_layer_acts *a, float *dres, const pb_dims *x) {
    const pb_model_desc *d = &m->d;
    const pb_layer_plan *p = &m->plan[l];
    const int N = x->N, C = d->d_model, F = d->d_ff, H = d->n_head;
    const size_t NC = (size_t)N * C, NF = (size_t)N * F;
    /* MLP; dres = d(out) = d(res2) through the residual */
    if (p->ln2) pb_zero(m->dln, NC);
    const float *dproj = pb_blk_sublayer_bwd(m, l, PB_SUB_FFN, dres, m->dln, a->ln2, N);
    if (p->up) pb_zero(m->dfch, NF);
    pb_blk_site_bwd(m, l, PB_SITE_DOWN, m->dfch, dproj, a->fch_act, N);
    if (p->up) pb_gelu_bwd_inplace(m->dfch, a->fch, NF); /* d(gelu output) becomes d(fch) */
    pb_blk_site_bwd(m, l, PB_SITE_UP, m->dln, m->dfch, a->ln2, N);
    pb_blk_norm_bwd(m, l, PB_SITE_LN2, dres, m->dln, a->res2, a->ln2_mean, a->ln2_rstd, N);
    if (!p->res2) return;
    /* attention; dres = d(res2) = d(inp) through the residual */
    if (p->ln1) pb_zero(m->dln, NC);
    dproj = pb_blk_sublayer_bwd(m, l, PB_SUB_ATTN, dres, m->dln, a->ln1, N);
    if (p->att) pb_zero(m->datty, NC);
    pb_blk_site_bwd(m, l, PB_SITE_O, m->datty, dproj, a->atty, N);
    if (p->att) {
        float *dkf, *dvf;
        if (p->q) pb_zero(m->dq, NC);
        pb_blk_kv_bwd_begin(m, l, x, &dkf, &dvf);
        pb_attention_bwd(p->q ? m->dq : NULL, dkf, dvf, m->datt, m->datty, a->att, a->q, a->kf, a->vf, x->B, x->Tm,
                         x->Tk, C, H, H);
        pb_blk_kv_bwd_end(m, l, a, a->ln1, x);
        pb_blk_site_bwd(m, l, PB_SITE_Q, m->dln, m->dq, a->ln1, N);
        pb_blk_site_bwd(m, l, PB_SITE_K, m->dln, m->dk, a->ln1, N);
        pb_blk_site_bwd(m, l, PB_SITE_V, m->dln, m->dv, a->ln1, N);
    }
    pb_blk_norm_bwd(m, l, PB_SITE_LN1, dres, m->dln, a->inp, a->ln1_mean, a->ln1_rstd, N);
}

const pb_block_ops pb_block_gpt = {
    .name = "gpt",
    .refuses = gpt_refuses,
    .carve = gpt_carve,
    .fwd = gpt_fwd,
    .bwd = gpt_bwd,
};
