/* flops.h — FLOPs and training memory predicted from shapes (docs/COUNT.md "FLOPs per token",
 * "Training memory").
 *
 * The runnable model's kernels count what they execute (core/pb_flops.h, the per-kernel rules in
 * core/kernels.h). This file predicts the same counts without running anything: the backward
 * plan (which points of the graph need a gradient) comes from pb_plan_compute, the one function
 * pb_model_prepare also uses, so a shape-only model gets exactly the plan a runnable one would;
 * pb_flops_base mirrors the trunk's and the block's forward and backward kernel calls for that
 * plan; each method adds what its hooks execute (pb_method.flops, methods/method.h) through the pb_flops_* helpers
 * below, which mirror the kernels. For the runnable families a test holds prediction == measured
 * step, per phase and kind (tests/test_count_flops.c). Kernels only shape-only models have
 * (GeGLU, T5's relative bias, cross-attention, patch embedding, pooler) count by rules stated in
 * docs/COUNT.md and in pb_flops_base.
 */
#ifndef PB_FLOPS_MODEL_H
#define PB_FLOPS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "pb_flops.h"
#include "pb_mem.h"

/* What decides the plan in one block: base tensors that train and hooks that own trainable
 * tensors. Masks are over pb_site. */
typedef struct {
    uint32_t tr_w, tr_b;        /* sites whose weight (gain, table) / bias trains */
    uint32_t hook, hook_tr;     /* linear sites with a hook / with a hook owning trainable tensors */
    uint8_t sub[PB_NSUB];       /* 0 no sublayer hook, 1 a hook, 2 a hook owning trainable tensors */
    uint8_t prefix;             /* 0 none, 1 a prefix, 2 a trainable prefix */
    uint8_t gated;              /* the prefix is gated per sequence */
} pb_plan_layer_in;

typedef struct {
    int n_layer;
    const pb_plan_layer_in *layer; /* (n_layer) */
    uint32_t tr_w, tr_b;        /* global sites (embed, pos, ln_f, head, ...) whose weight / bias trains */
    int input_requires_grad;    /* a method needs d(embeddings) */
    int embed_hook;             /* 0 none, 1 virtual tokens, 2 trainable virtual tokens */
} pb_plan_in;

/* The requires-grad propagation of pb_model_prepare (model.h "backward plan"): plan (L), the
 * lowest layer backward runs through (*floor; L when none) and whether ln_f's output needs a
 * gradient (*g_lnf). Fused q/k/v counts as q, k and v; the gate of a gated FFN as mlp.up; a
 * decoder block's cross-attention (and its norm) as part of its attention sub-block; an
 * encoder-decoder's blocks form one chain, encoder first. Per layer it also records, for every
 * linear site and norm, whether its backward runs and whether it passes an input gradient
 * (pb_layer_plan run, dinp): the blocks' helpers (models/block.h) and pb_flops_site_bwd read those,
 * so the predicate is written once. */
void pb_plan_compute(const pb_plan_in *in, pb_layer_plan *plan, int *floor, int *g_lnf);

/* What one measured forward (and, training, backward) runs: the model, its head, the dims and
 * the plan. Built by pb_flops_env_init. */
typedef struct {
    const pb_model_desc *d;
    pb_head_kind head;
    int K;
    pb_dims x;
    int training;
    const pb_plan_in *in;
    pb_layer_plan *plan; /* (L), owned */
    int floor, g_lnf;
} pb_flops_env;

/* Computes the plan and the dims for a batch of B sequences of T tokens (Pe virtual tokens, a Pk
 * prefix, Pg = 1 when some prefix is gated come from `in`'s hooks and the Pe/Pk given). */
pb_status pb_flops_env_init(pb_flops_env *e, const pb_model_desc *d, pb_head_kind head, int K, const pb_plan_in *in,
                            int B, int T, int Pe, int Pk, int training);
void pb_flops_env_free(pb_flops_env *e);

/* The base model's FLOPs: everything model.c runs except what its hooks run (hooked linear sites,
 * sublayer / prefix / embed hook bodies). */
void pb_flops_base(const pb_flops_env *e, pb_flops *out);

/* ---- helpers for methods (each mirrors one kernel of core/kernels.h) ------------------------ */

static inline void pb_flops_put(pb_flops *f, pb_phase ph, pb_flop_kind k, uint64_t n) { f->n[ph][k] += n; }
/* pb_linear_fwd: out (N,OC) = inp (N,IC) w^T (+ b). */
void pb_flops_linear_fwd(pb_flops *f, uint64_t N, uint64_t IC, uint64_t OC, int bias);
/* pb_linear_bwd with the given gradient outputs requested. */
void pb_flops_linear_bwd(pb_flops *f, uint64_t N, uint64_t IC, uint64_t OC, int dinp, int dw, int db);
/* pb_gemm: 2 M N K MATMUL to phase. */
void pb_flops_gemm(pb_flops *f, pb_phase ph, uint64_t M, uint64_t N, uint64_t K);

/* ---- queries for methods: what the model calls of a hook ----------------------------------- */

/* Whether backward calls the linear site's backward at (layer, site); *dinp: with an input
 * gradient. 0 in inference. */
int pb_flops_site_bwd(const pb_flops_env *e, int layer, pb_site site, int *dinp);
/* Whether the site's base weight / bias trains. */
int pb_flops_site_tr(const pb_flops_env *e, int layer, pb_site site, int bias);
/* The plain site: pb_site_base_fwd, and (when backward calls the site) pb_site_base_bwd with
 * dinp as the plan asks; the counts of an unhooked site. in/out features from the layout. */
void pb_flops_site_base(const pb_flops_env *e, int layer, pb_site site, int N, int IC, int OC, pb_flops *f);
/* pb_site_base_bwd alone, with dinp given. */
void pb_flops_site_base_bwd(const pb_flops_env *e, int layer, pb_site site, int N, int IC, int OC, int dinp,
                            pb_flops *f);
/* Whether backward calls the sublayer hook of (layer, which): *need_dh and *dx as passed. */
int pb_flops_sub_bwd(const pb_flops_env *e, int layer, pb_sublayer which, int *need_dh, int *dx);
/* Whether backward calls the prefix hook of layer (its bwd, and gate_bwd when gated): *dx as the
 * gate's input gradient is requested. */
int pb_flops_prefix_bwd(const pb_flops_env *e, int layer, int *dx);
/* Whether backward reaches the embeddings (the embed hook's bwd runs when it trains). */
int pb_flops_embed_bwd(const pb_flops_env *e);

/* ---- training memory ------------------------------------------------------------------------ */

typedef enum { PB_PREC_FP32, PB_PREC_BF16, PB_PREC_FP16 } pb_precision;
/* "fp32", "bf16", "fp16" (PB_EINVAL naming the value otherwise). */
pb_status pb_precision_parse(const char *s, pb_precision *p);
size_t pb_precision_bytes(pb_precision p);
const char *pb_precision_name(pb_precision p); /* "fp32", ... */

/* Floats of the model's buffers for dims x — one layer's saved activations, the top of the model
 * (embeddings, final norm, head, loss), the workspace (one layer's scratch set, backward
 * temporaries, prefix/prompt staging) and the head's output: model.c allocates exactly these,
 * and the estimate below uses them (q at H*hd, k/v at Hkv*hd, a gated FFN's third buffer on
 * shape-only models). */
size_t pb_buf_layer_acts(const pb_model_desc *d, const pb_dims *x);
size_t pb_buf_top(const pb_model_desc *d, pb_head_kind head, int K, const pb_dims *x);
size_t pb_buf_scratch(const pb_model_desc *d, pb_head_kind head, int K, const pb_dims *x);
size_t pb_buf_head_out(const pb_model_desc *d, pb_head_kind head, int K, const pb_dims *x);

/* Bytes per pb_mem category of one training step's peak: frozen weights at the precision,
 * trainable tensors, their gradients and AdamW's two states in fp32, saved activations and
 * workspace as model.c sizes them (activations only from the plan's floor up) at the precision
 * (fp32: 4 bytes), plus the methods' declared per-row and fixed buffers. */
typedef struct {
    size_t frozen_params, trainable_params; /* parameters (frozen includes frozen buffers) */
    size_t method_acts, method_work;        /* floats the methods declared for this batch */
} pb_mem_in;
void pb_mem_estimate(const pb_flops_env *e, const pb_mem_in *in, pb_precision prec, size_t bytes[PB_MEM_NCAT]);

#endif
