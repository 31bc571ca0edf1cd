/* block_llama.c — the LLaMA-style block (LLaMA 2/3, Mistral: Hugging Face's LlamaDecoderLayer):
 *
 *   res2 = inp  + sub_attn(o(attention(rope(q(rms1(inp))), rope(k(rms1(inp))), v(rms1(inp)))))
 *   out  = res2 + sub_ffn(down(silu(gate(rms2(res2))) * up(rms2(res2))))
 *
 * pre-norm with RMSNorm (gain only, epsilon pb_desc_rms_eps), separate q/k/v/o without biases,
 * grouped-query attention (H query heads of width hs share Hkv key/value heads, kvd = Hkv hs),
 * rotary positions on q and k (core/kernels.h pb_rope_fwd: Hugging Face's rotate_half, base
 * pb_desc_rope_theta), a SwiGLU MLP (gate_proj, up_proj, down_proj). No position table: the
 * trunk adds none. sub_* are the adapters' sub-layer hooks (identity when none); every linear
 * layer may carry a PEFT hook, and attention may get a prefix in front of its keys and values
 * (models/block.h).
 *
 * Positions with prefixes and virtual tokens (docs/ARCHITECTURE.md "Positions of prefixes and
 * virtual tokens", as Hugging Face PEFT on LLaMA): the model's rows r = 0 .. Tm-1 (P_e virtual
 * tokens first, then the real tokens) are at positions P_k + r, P_k the prefix length; keys and
 * queries are rotated before pb_blk_kv_fwd puts the prefix in front, so prefix keys enter
 * attention as they are (a cache entry already rotated), never rotated here.
 *
 * Forward and backward side by side; the backward is the forward read backwards, one call per
 * line. What each call computes (or skips) comes from the backward plan per site, applied by the
 * trunk's helpers. RoPE's table (positions 0 .. Tk-1) is the trunk's (m->rope).
 *
 * Dimension letters as model.h (qd = H hs = C, kvd = Hkv hs).
 */
#include "block.h"
#include "kernels.h"


static const char *llama_refuses(const pb_model_desc *d) {
    if (d->norm != PB_NORM_RMSNORM) return "its norm is RMSNorm";
    if (d->ffn != PB_FFN_SWIGLU) return "its MLP is SwiGLU";
    if (d->pos != PB_POS_ROPE) return "its positions are rotary (RoPE)";
    if (pb_desc_head_dim(d) % 2) return "RoPE needs an even head size (d_model / n_head)";
    if (d->bias) return "its linear layers have no biases";
    if (d->fused_qkv) return "it has separate q/k/v projections";
    if (!d->causal || d->arch != PB_ARCH_DECODER) return "it is a causal decoder";
    return NULL;
}

static float *carve(float **p, size_t n) {
    float *r = *p;
    *p += n;
    return r;
}

static void llama_carve(pb_layer_acts *a, float **p, const pb_model_desc *d, const pb_dims *x) {
    size_t N = (size_t)x->N, B = (size_t)x->B, Tm = (size_t)x->Tm, Tk = (size_t)x->Tk;
    size_t C = (size_t)d->d_model, H = (size_t)d->n_head, F = (size_t)d->d_ff, hs = (size_t)pb_desc_head_dim(d);
    size_t qd = H * hs, kvd = (size_t)d->n_kv_head * hs;
    a->ln1 = carve(p, N * C);
    a->ln1_mean = NULL;
    a->ln1_rstd = carve(p, N);
    a->q = carve(p, N * qd);
    a->k = carve(p, N * kvd);
    a->v = carve(p, N * kvd);
    a->kf = x->Pk ? carve(p, B * Tk * kvd) : a->k;
    a->vf = x->Pk ? carve(p, B * Tk * kvd) : a->v;
    a->pgate = x->Pg ? carve(p, B) : NULL;
    a->att = carve(p, B * H * Tm * Tk);
    a->atty = carve(p, N * qd);
    a->res2 = carve(p, N * C);
    a->ln2 = carve(p, N * C);
    a->ln2_mean = NULL;
    a->ln2_rstd = carve(p, N);
    a->fch = carve(p, N * F);
    a->fch_gate = carve(p, N * F);
    a->fch_act = carve(p, N * F);
    a->out = carve(p, N * C);
}

static void llama_fwd(pb_model *m, int l, pb_layer_acts *a, const float *inp, const pb_dims *x) {
    const pb_model_desc *d = &m->d;
    const int N = x->N, C = d->d_model, F = d->d_ff, H = d->n_head, Hkv = d->n_kv_head, hs = pb_desc_head_dim(d);
    float *proj = m->proj; /* (N,C) attn.o, then mlp.down, before the residual add */
    a->inp = inp;
    /* attention */
    pb_blk_norm_fwd(m, l, PB_SITE_LN1, a->ln1, NULL, a->ln1_rstd, inp, N);
    pb_blk_site_fwd(m, l, PB_SITE_Q, a->q, a->ln1, N);
    pb_blk_site_fwd(m, l, PB_SITE_K, a->k, a->ln1, N);
    pb_blk_site_fwd(m, l, PB_SITE_V, a->v, a->ln1, N);
    pb_rope_fwd(a->q, a->q, m->rope, x->B, x->Tm, H, hs, x->Pk);
    pb_rope_fwd(a->k, a->k, m->rope, x->B, x->Tm, Hkv, hs, x->Pk);
    const uint8_t *kmask = pb_blk_kv_fwd(m, l, a, a->ln1, x);
    pb_attention_fwd(a->atty, a->att, a->q, a->kf, a->vf, kmask, x->B, x->Tm, x->Tk, H * hs, H, Hkv, 1);
    pb_blk_site_fwd(m, l, PB_SITE_O, proj, a->atty, N);
    pb_blk_sublayer_fwd(m, l, PB_SUB_ATTN, proj, a->ln1, N);
    pb_add_fwd(a->res2, inp, proj, (size_t)N * C);
    /* MLP */
    pb_blk_norm_fwd(m, l, PB_SITE_LN2, a->ln2, NULL, a->ln2_rstd, a->res2, N);
    pb_blk_site_fwd(m, l, PB_SITE_GATE, a->fch_gate, a->ln2, N);
    pb_blk_site_fwd(m, l, PB_SITE_UP, a->fch, a->ln2, N);
    pb_swiglu_fwd(a->fch_act, a->fch_gate, a->fch, (size_t)N * F);
    pb_blk_site_fwd(m, l, PB_SITE_DOWN, proj, a->fch_act, N);
    pb_blk_sublayer_fwd(m, l, PB_SUB_FFN, proj, a->ln2, N);
    pb_add_fwd(a->out, a->res2, proj, (size_t)N * C);
}

static void llama_bwd(pb_model *m, int l, const pb_layer_acts *a, float *dres, const pb_dims *x) {
    const pb_model_desc *d = &m->d;
    const pb_layer_plan *p = &m->plan[l];
    const int N = x->N, C = d->d_model, F = d->d_ff, H = d->n_head, Hkv = d->n_kv_head, hs = pb_desc_head_dim(d);
    const size_t NC = (size_t)N * C, NF = (size_t)N * F, Nq = (size_t)N * H * hs;
    /* MLP; dres = d(out) = d(res2) through the residual */
    if (p->ln2) pb_zero(m->dln, NC);
    const float *dproj = pb_blk_sublayer_bwd(m, l, PB_SUB_FFN, dres, m->dln, a->ln2, N);
    if (p->up) pb_zero(m->dfch, NF);
    pb_blk_site_bwd(m, l, PB_SITE_DOWN, m->dfch, dproj, a->fch_act, N);
    if (p->up) pb_swiglu_bwd_inplace(m->dfch_gate, m->dfch, a->fch_gate, a->fch, NF); /* dfch becomes d(up) */
    pb_blk_site_bwd(m, l, PB_SITE_GATE, m->dln, m->dfch_gate, a->ln2, N);
    pb_blk_site_bwd(m, l, PB_SITE_UP, m->dln, m->dfch, a->ln2, N);
    pb_blk_norm_bwd(m, l, PB_SITE_LN2, dres, m->dln, a->res2, NULL, a->ln2_rstd, N);
    if (!p->res2) return;
    /* attention; dres = d(res2) = d(inp) through the residual */
    if (p->ln1) pb_zero(m->dln, NC);
    dproj = pb_blk_sublayer_bwd(m, l, PB_SUB_ATTN, dres, m->dln, a->ln1, N);
    if (p->att) pb_zero(m->datty, Nq);
    pb_blk_site_bwd(m, l, PB_SITE_O, m->datty, dproj, a->atty, N);
    if (p->att) {
        float *dkf, *dvf;
        if (p->q) pb_zero(m->dq, Nq);
        pb_blk_kv_bwd_begin(m, l, x, &dkf, &dvf);
        pb_attention_bwd(p->q ? m->dq : NULL, dkf, dvf, m->datt, m->datty, a->att, a->q, a->kf, a->vf, x->B, x->Tm,
                         x->Tk, H * hs, H, Hkv);
        pb_blk_kv_bwd_end(m, l, a, a->ln1, x);
        if (p->q) pb_rope_bwd_inplace(m->dq, m->rope, x->B, x->Tm, H, hs, x->Pk);
        if (p->k) pb_rope_bwd_inplace(m->dk, m->rope, x->B, x->Tm, Hkv, hs, x->Pk);
        pb_blk_site_bwd(m, l, PB_SITE_Q, m->dln, m->dq, a->ln1, N);
        pb_blk_site_bwd(m, l, PB_SITE_K, m->dln, m->dk, a->ln1, N);
        pb_blk_site_bwd(m, l, PB_SITE_V, m->dln, m->dv, a->ln1, N);
    }
    pb_blk_norm_bwd(m, l, PB_SITE_LN1, dres, m->dln, a->inp, NULL, a->ln1_rstd, N);
}

const pb_block_ops pb_block_llama = {
    .name = "llama",
    .refuses = llama_refuses,
    .carve = llama_carve,
    .fwd = llama_fwd,
    .bwd = llama_bwd,
};
