/* block.h — the interface between the trunk (models/model.c) and the block files
 * (models/block_<family>.c), internal to models/.
 *
 * A block file is one model family's transformer block: its forward and its backward side by
 * side, llm.c style, filling one `const pb_block_ops` (unused slots 0) that block_list.h lists.
 * The trunk picks the first block whose `refuses` accepts the descriptor (pb_block_select) and
 * does everything else: tensors, buffers, embeddings, the loop over layers, the final norm, the
 * heads, the loss, the plan and the hook dispatch. Design and how to add a family:
 * docs/ARCHITECTURE.md "Model families".
 *
 * A block reaches its tensors through m->layers[l] (w[site], b[site]; NULL where the descriptor
 * has none) and its PEFT hook points only through the helpers below, which also apply the
 * backward plan per site (model.h pb_layer_plan run/dinp): a helper whose site's backward does
 * not run does nothing, and an input gradient the plan does not need is not computed. The
 * backward workspace (m->dres, dln, dq, dk, dv, datty, dfch, datt, proj, dsub) is the trunk's.
 *
 * Not: a public header (nothing outside models/ includes it), or the FLOP rules of a block (the
 * shape-only mirror in models/flops.c until FLOPs are counted by running the code).
 *
 * Dimension letters as model.h.
 */
#ifndef PB_BLOCK_H
#define PB_BLOCK_H

#include "model.h"

typedef struct pb_block_ops {
    const char *name; /* the family: "gpt" */
    /* NULL when this block runs descriptor d; otherwise the first thing it does not support, in
     * words, completing "<name>: ..." ("its norm is LayerNorm"). The trunk's own requirements are checked before. */
    const char *(*refuses)(const pb_model_desc *d);
    /* Points the fields of a that the block uses into the floats at *p (sized for dims x) and
     * advances *p by exactly pb_buf_layer_acts(d, x) floats (models/flops.h); the others NULL. */
    void (*carve)(pb_layer_acts *a, float **p, const pb_model_desc *d, const pb_dims *x);
    /* One block forward: a->out (N,C) from inp (N,C), saving in a what bwd needs. */
    void (*fwd)(pb_model *m, int l, pb_layer_acts *a, const float *inp, const pb_dims *x);
    /* Its backward: dres (N,C) holds d(a->out) on entry and d(inp) on exit when the plan needs
     * it (m->plan[l].in); weight gradients accumulate into the trainable tensors. */
    void (*bwd)(pb_model *m, int l, const pb_layer_acts *a, float *dres, const pb_dims *x);
} pb_block_ops;

/* The block that runs d (NULL when none does: why (cap bytes) then gives each block's reason). */
const pb_block_ops *pb_block_select(const pb_model_desc *d, char *why, size_t cap);

/* ---- the trunk's helpers for blocks (models/model.c) ---------------------------------------- */

/* Linear site s of layer l: out (N,OC) = inp (N,IC) W^T + b, through the PEFT hook when one is
 * installed. */
void pb_blk_site_fwd(const pb_model *m, int l, pb_site s, float *out, const float *inp, int N);
/* Its backward when the plan runs it: dinp (N,IC) += (when the plan needs the input gradient;
 * the caller zeroes dinp first where it is the first contribution), weight/bias/hook gradients. */
void pb_blk_site_bwd(const pb_model *m, int l, pb_site s, float *dinp, const float *dout, const float *inp, int N);

/* Norm site s (ln1, ln2) of layer l, or the global ln_f with l = -1, of the descriptor's kind:
 * out (N,C), mean (N), rstd (N) from inp (N,C). */
void pb_blk_norm_fwd(const pb_model *m, int l, pb_site s, float *out, float *mean, float *rstd, const float *inp,
                     int N);
/* Its backward for layer sites when the plan runs it: dinp (N,C) += (when needed), gain and bias
 * gradients when they train. For ln_f (l = -1) the caller decides; dinp may be NULL. */
void pb_blk_norm_bwd(const pb_model *m, int l, pb_site s, float *dinp, const float *dout, const float *inp,
                     const float *mean, const float *rstd, int N);

/* The sub-layer hook (adapters) of layer l on h (N,C) in place, x (N,C) the sub-layer's
 * normalised input; nothing when none is installed. */
void pb_blk_sublayer_fwd(const pb_model *m, int l, pb_sublayer which, float *h, const float *x, int N);
/* Its backward: dh (N,C) = d(hooked output); returns d(the sub-layer's own output), which is dh
 * itself when no hook is installed (else m->dsub). dx (N,C) += the hook's gradient into x when
 * the plan needs it (ln1's output for the attention, ln2's for the MLP). */
const float *pb_blk_sublayer_bwd(pb_model *m, int l, pb_sublayer which, const float *dh, float *dx, const float *x,
                                 int N);

/* Keys and values for attention: a->kf, a->vf (B,Tk,kvd) = the layer's prefix (its hook's, or
 * Pk masked zero rows when another layer has one; scaled per sequence when the hook is gated) in
 * front of a->k, a->v; nothing to do without a prefix (then kf == k, vf == v). xin (N,C) is the
 * attention's input (ln1's output), which a gate reads. Returns the key mask (B,Tk) for
 * pb_attention_fwd. */
const uint8_t *pb_blk_kv_fwd(pb_model *m, int l, pb_layer_acts *a, const float *xin, const pb_dims *x);
/* Backward, in two halves around pb_attention_bwd: begin zeroes and returns where attention's
 * key/value gradients go (*dkf, *dvf: (B,Tk,kvd) with a prefix, else m->dk, m->dv; NULL when
 * nothing needs them); end splits them into the prefix's share (to its hook; a gate's input
 * gradient into m->dln when the plan needs it) and the tokens' share (m->dk, m->dv, when the plan
 * needs them). */
void pb_blk_kv_bwd_begin(pb_model *m, int l, const pb_dims *x, float **dkf, float **dvf);
void pb_blk_kv_bwd_end(pb_model *m, int l, const pb_layer_acts *a, const float *xin, const pb_dims *x);

#endif
