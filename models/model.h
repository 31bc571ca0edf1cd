/* model.h — the runnable transformer: parameters, forward, backward.
 *
 * A stack of blocks of one family (the GPT-style block, models/block_gpt.c: pre-LN, learned
 * positions, q/k/v/o with or without biases, GELU MLP, LayerNorm; or the LLaMA-style block,
 * models/block_llama.c: RMSNorm, RoPE, grouped-query attention, SwiGLU) between the trunk
 * (models/model.c: embeddings, final norm, heads, loss, plan, buffers, hook dispatch; the split is
 * in docs/ARCHITECTURE.md "Model families"). Two heads: the LM head (tied to the token embedding,
 * or its own `lm_head.weight` (V,C)), and a sequence-classification head (`score.weight` (K,C),
 * `score.bias` (K)) on a pooled position:
 *   causal models pool the last non-padding token (as GPT2ForSequenceClassification does);
 *   bidirectional models pool position 0, where the tokenizer puts <cls> (as BERT does,
 *   without BERT's extra dense+tanh pooler).
 *
 * Parameters are one block (sizes from pb_model_layout), each tensor a pointer into it, indexed
 * by (layer, site, weight|bias) in m->layers[l] and m->global. Any tensor can be frozen or
 * trainable; pb_model_prepare() then allocates ONE gradient block for exactly the trainable
 * tensors (so gradient bytes = 4 x trainable parameters), and computes the backward plan: which
 * points of the forward graph need a gradient ("requires grad" propagation) and, per site,
 * whether its backward runs and passes an input gradient. Backward skips every weight-gradient
 * product of a frozen tensor and every input-gradient product whose input needs no gradient, and
 * stops below the lowest layer that needs one. Activations are saved (PB_MEM_ACTS) only for
 * layers backward will run through; lower layers run in a shared scratch set (PB_MEM_WORKSPACE).
 *
 * Shapes: B batch, T sequence, C d_model, H heads, Hkv key/value heads, hs head size, qd = H*hs,
 * kvd = Hkv*hs, F d_ff, V vocab, K labels, N = B*T, L layers.
 */
#ifndef PB_MODEL_H
#define PB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "desc.h"
#include "hooks.h"
#include "optim.h"
#include "pb_error.h"


typedef struct pb_tensor_s {
    char name[96];  /* checkpoint name, GPT-2 style: "h.3.attn.q_proj.weight" */
    pb_site site;
    int layer;      /* -1 for global tensors */
    int is_bias;    /* bias vector (vs. weight matrix / norm gain / embedding) */
    int ndim;
    int shape[2];
    size_t numel;
    size_t offset;  /* in floats, within the parameter block */
    float *data;    /* (shape) */
    float *grad;    /* (shape), NULL while frozen */
    int trainable;
} pb_tensor;

/* The tensors of one block, or the global ones, by site: w[s] is site s's weight (matrix, norm
 * gain or table), b[s] its bias; NULL where the descriptor has none (no biases when bias = 0, no
 * norm bias with RMSNorm, no position table with rotary positions, no head tensor for a tied LM
 * head). Filled from the layout table by (layer, site, is_bias), never by position. */
typedef struct {
    pb_tensor *w[PB_NSITE], *b[PB_NSITE];
} pb_site_tensors;

/* Activations of one block, saved for backward: one struct for every family, fields named by
 * graph points; a block file carves the fields it uses (models/block.h) and leaves the rest NULL. */
typedef struct {
    const float *inp;                   /* (N,C) residual stream in (not owned) */
    float *ln1, *ln1_mean, *ln1_rstd;   /* (N,C) (N) (N); no mean with RMSNorm */
    float *q, *k, *v;                   /* (N,qd) (N,kvd) (N,kvd) */
    float *kf, *vf;                     /* (B,Tk,kvd) keys/values with the prefix in front; == k, v
                                           when there is no prefix */
    float *pgate;                       /* (B) per-sequence prefix gate (gated prefix only) */
    float *att;                         /* (B,H,T,Tk) attention probabilities */
    float *atty;                        /* (N,qd) heads concatenated, before attn.o */
    float *res2;                        /* (N,C) residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;   /* (N,C) (N) (N); no mean with RMSNorm */
    float *fch;                         /* (N,F) mlp.up output */
    float *fch_gate;                    /* (N,F) mlp.gate output (gated FFN only) */
    float *fch_act;                     /* (N,F) the FFN's hidden activation, mlp.down's input */
    float *out;                         /* (N,C) residual out */
} pb_layer_acts;

/* "Requires grad" at each point of a block's graph, and per site what its backward does
 * (computed by pb_model_prepare through pb_plan_compute, models/flops.h). */
typedef struct {
    int in, ln1, q, k, v, att, o, res2, ln2, up, down, out;
    uint32_t run;  /* mask over pb_site: sites (linear layers, norms) whose backward runs */
    uint32_t dinp; /* of those, the ones that pass a gradient to their input */
} pb_layer_plan;

/* Sizes of the current forward. T is the caller's sequence length; with P_e virtual tokens
 * in front (embed hook) the model runs Tm = P_e + T positions; with a P_k prefix, attention
 * has Tk = P_k + Tm keys. N = B * Tm. Pg = 1 when some layer's prefix is gated. */
typedef struct {
    int B, T, Pe, Pk, Tm, Tk, N, Pg;
} pb_dims;

typedef struct {
    int B, T;
    const int32_t *ids;     /* (B,T) token ids */
    const uint8_t *mask;    /* (B,T) 1 = real token, 0 = padding; NULL = all real */
    const int32_t *targets; /* LM: (B,T) next-token ids, -1 = ignored; CLS: (B) label index */
} pb_batch;

struct pb_block_ops;

typedef struct {
    pb_model_desc d;
    const struct pb_block_ops *block; /* the family's block (models/block.h), chosen from d */
    pb_head_kind head;
    int n_labels;               /* K (classification) */

    pb_tensor *tensors;         /* (n_tensors) */
    int n_tensors;
    float *params;              /* one block, n_params floats */
    size_t n_params;
    float *grads;               /* one block for the trainable tensors, n_grads floats */
    size_t n_grads;

    pb_site_tensors *layers;    /* (L) each layer's tensors by site */
    pb_site_tensors global;     /* embed (V,C), pos (max_seq,C), ln_f (C) (C), head: the classifier
                                   (K,C) (K), or an untied LM head (V,C); NULL when tied */

    /* PEFT hooks (NULL: none); set with pb_model_set_hooks */
    const pb_model_hooks *hooks;

    /* The tokenizer its inputs are encoded with (not owned; NULL: byte). Set by whoever loaded
     * the backbone (harness/finetune.c); read by prompt tuning's text initialisation. */
    const struct pb_tokenizer *tok;

    /* backward plan */
    int input_requires_grad;    /* set by methods that need d(embeddings) (prompt tuning) */
    int plan_ready;
    pb_layer_plan *plan;        /* (L) */
    int g_lnf;                  /* d(ln_f output) needed */
    int floor;                  /* lowest layer backward runs through (L = none) */

    /* buffers for the current (B,T), reallocated when a larger batch comes */
    int cap_B, cap_T, buf_floor, buf_Pe, buf_Pk, buf_Pg;
    pb_dims dim;                /* of the last forward */
    float *acts_block;          /* PB_MEM_ACTS */
    float *scratch_block;       /* PB_MEM_WORKSPACE */
    pb_layer_acts *acts;        /* (L) views */
    pb_layer_acts scratch_acts; /* for layers below the floor and for inference */
    float *scratch_out[2];      /* (N,C) residual outputs of scratch layers, alternating */
    float *encoded;             /* (N,C) embeddings */
    const float *lnf_in;        /* (N,C) residual stream into ln_f (not owned) */
    float *lnf, *lnf_mean, *lnf_rstd; /* (N,C) (N) (N); no mean with RMSNorm */
    float *pooled;              /* (B,C) classification */
    float *logits, *probs;      /* (N,V) or (B,K) */
    float *losses;              /* (N) or (B) */
    int32_t *pool_idx;          /* (B) */
    /* backward workspace */
    float *dres, *dln;          /* (N,C) d(residual stream), d(a norm's output) */
    float *dq, *dk, *dv, *datty; /* (N,qd) (N,kvd) (N,kvd) (N,qd) */
    float *proj;                /* (N,C) attn.o / mlp.down output before the residual add */
    float *dfch;                /* (N,F): d(the FFN's hidden activation), then d(mlp.up output) in place */
    float *dfch_gate;           /* (N,F): d(mlp.gate output) (gated FFN only) */
    float *datt;                /* (B,H,T,T) */
    float *dlogits, *dpooled;   /* (N,V)|(B,K), (B,C) */
    float *dkf, *dvf;           /* (B,Tk,kvd) with a prefix */
    float *dsub;                /* (N,C) gradient through a sublayer hook */
    float *prompt, *dprompt;    /* (Pe,C) virtual token embeddings and their gradient */
    float *pk, *pv, *dpk, *dpv; /* (Pk,kvd) one layer's prefix and its gradient */
    float *dpgate;              /* (B) gradient of one layer's prefix gate (gated prefix only) */
    uint8_t *mask_m;            /* (B,Tm) token mask with virtual tokens */
    uint8_t *kmask;             /* (B,Tk) key mask with the prefix */
    float *rope;                /* (Tk,hd) RoPE's cos/sin table for positions 0..Tk-1 (pb_rope_table;
                                   rotary positions only), filled when the buffers are carved */
    int32_t *targets_m;         /* (B,Tm) LM targets with virtual tokens ignored */

    /* the batch of the last forward (for backward) */
    pb_batch last;
    int last_count;             /* non-ignored targets */
    int last_training;
} pb_model;

/* The family whose block file runs d ("gpt", "llama": models/block_list.h); NULL when none does. */
const char *pb_model_family(const pb_model_desc *d);

/* Builds the tensor table for d (and head/K) without allocating data: fills tensors (if not
 * NULL, capacity from a first call with tensors == NULL) and returns the tensor count; *n_params
 * receives the total float count. The one place where parameter sizes are computed. */
int pb_model_layout(const pb_model_desc *d, pb_head_kind head, int n_labels, pb_tensor *tensors, size_t *n_params);
/* Parameters of the task head that fine-tuning trains with every method (the tensors of site
 * head for a sequence or token classifier: the linear layer, or dense + out_proj); 0 for the LM
 * head and the bare model. From the layout's own head code. */
size_t pb_model_task_head_params(const pb_model_desc *d, pb_head_kind head, int n_labels);

/* Allocates and initialises (GPT-2 init: N(0, 0.02), residual projections attn.o and mlp.down
 * scaled by 1/sqrt(2L), norms 1, biases 0, seeded). All tensors start TRAINABLE (full
 * fine-tuning) and the model is prepared. */
pb_status pb_model_init(pb_model *m, const pb_model_desc *d, pb_head_kind head, int n_labels, uint64_t seed);
void pb_model_free(pb_model *m);

/* Installs PEFT hooks (NULL removes them); takes effect at the next pb_model_prepare(). The
 * hooks must outlive their use by the model. */
void pb_model_set_hooks(pb_model *m, const pb_model_hooks *hooks);
/* The plain linear site, for hooks that add to it: out = inp w^T + b, and its backward with
 * weight/bias gradients only where those tensors are trainable. */
void pb_site_base_fwd(float *out, const float *inp, const pb_tensor *w, const pb_tensor *b, int N);
void pb_site_base_bwd(float *dinp, const float *dout, const float *inp, const pb_tensor *w, const pb_tensor *b, int N);

/* Marks tensors trainable/frozen; takes effect at the next pb_model_prepare(). */
void pb_model_set_trainable_all(pb_model *m, int on);
void pb_tensor_set_trainable(pb_model *m, pb_tensor *t, int on);
/* Finds a tensor by checkpoint name; NULL if none. */
pb_tensor *pb_model_tensor(pb_model *m, const char *name);
/* Copies every tensor of dst from the tensor of the same name in src (a checkpoint's model into
 * a fine-tuning one, whatever either head is), except dst's global tensors at the sites in `keep`
 * (a mask over pb_site: the new task head), which stay as initialised. Tensors only src has are
 * ignored (an LM head a classifier drops). PB_EINVAL naming the tensor when src lacks one that
 * dst needs or holds it with another shape; dst may then be partly copied. */
pb_status pb_model_copy_by_name(pb_model *dst, const pb_model *src, uint32_t keep);
/* Allocates the gradient block for the trainable tensors, books parameter bytes as trainable or
 * frozen, and computes the backward plan. */
pb_status pb_model_prepare(pb_model *m);
size_t pb_model_trainable_count(const pb_model *m);

/* Forward over a batch; *loss = mean cross-entropy over non-ignored targets. training = 1 saves
 * what backward needs; 0 runs everything in scratch buffers. Errors: batch larger than
 * max_seq, token ids out of range, labels out of range, out of memory. */
pb_status pb_model_forward(pb_model *m, const pb_batch *b, int training, float *loss);
/* Accumulates the gradients of the last (training) forward's mean loss into the grad buffers. */
void pb_model_backward(pb_model *m);
void pb_model_zero_grad(pb_model *m);

/* Writes one optimizer segment per trainable tensor (weight decay on 2-D tensors) into seg (if
 * not NULL) and returns their number. */
int pb_model_segments(pb_model *m, pb_segment *seg);
/* Initialises opt (AdamW with oc) over the model's trainable tensors (pb_model_segments). */
pb_status pb_model_optimizer(pb_model *m, const pb_adamw_config *oc, pb_adamw *opt);

#endif
