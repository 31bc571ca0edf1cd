/* desc.h — model descriptors and named sites.
 *
 * A descriptor lists everything that decides a transformer's shapes (DESIGN.md "Models"). The
 * same descriptor serves two modes: runnable (weights allocated; models/model.h) and
 * shape-only (real foundation-model configs counted by `peftbench count`). Only the subset that
 * pb_desc_check_runnable() accepts can run, one block file per family (models/block_list.h): the
 * GPT-style decoder and its bidirectional encoder variant (pre-LN, learned positions, separate
 * q/k/v/o with or without biases, GELU MLP, LayerNorm) and the LLaMA-style decoder (RMSNorm,
 * rotary positions, grouped-query attention, SwiGLU, no biases); either with a tied or untied LM
 * head.
 *
 * Sites are the places PEFT methods attach to. Every runnable tensor belongs to one site; the
 * site names are ours (`attn.q`), and each has the module names real models use as aliases
 * (`q_proj`, `query`, ...), so `targets=q_proj+v_proj` means what target_modules means in
 * Hugging Face PEFT.
 */
#ifndef PB_DESC_H
#define PB_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"

typedef enum { PB_ARCH_DECODER, PB_ARCH_ENCODER, PB_ARCH_ENCDEC, PB_ARCH_VISION } pb_arch;
typedef enum { PB_NORM_LAYERNORM, PB_NORM_RMSNORM } pb_norm_kind;
typedef enum { PB_FFN_GELU, PB_FFN_SWIGLU, PB_FFN_GEGLU } pb_ffn_kind;
typedef enum { PB_POS_LEARNED, PB_POS_ROPE, PB_POS_RELATIVE, PB_POS_NONE } pb_pos_kind;
/* Sequence-classification heads: a Linear with bias (our presets, BERT's classifier, ViT), a
 * Linear without bias (GPT-2, LLaMA, OPT, BLOOM `score`), dense + tanh + out_proj (RoBERTa's and
 * T5's ClassificationHead). */
typedef enum { PB_CLS_LINEAR, PB_CLS_LINEAR_NOBIAS, PB_CLS_DENSE } pb_cls_kind;
typedef struct pb_names pb_names;
/* LM: language-model head (tied: no tensor); CLS: sequence classification; NONE: the bare
 * model (BERT's AutoModel); TOKCLS: token classification (shape-only). Only LM and CLS run. */
typedef enum { PB_HEAD_LM, PB_HEAD_CLS, PB_HEAD_NONE, PB_HEAD_TOKCLS } pb_head_kind;

typedef struct {
    char name[64];
    pb_arch arch;
    int causal;       /* 1: causal self-attention (decoder); 0: bidirectional (encoder) */
    int n_layer;      /* L */
    int d_model;      /* C */
    int n_head;       /* H */
    int n_kv_head;    /* Hkv (== H unless grouped-query attention) */
    int d_ff;         /* F, MLP hidden width */
    pb_ffn_kind ffn;
    pb_norm_kind norm;
    int bias;         /* linear layers have biases */
    int fused_qkv;    /* one attn.qkv projection instead of q, k, v */
    pb_pos_kind pos;
    int vocab;        /* V */
    int max_seq;      /* longest sequence (learned position table rows) */
    int tied_embed;   /* LM head shares the token embedding */
    float rope_theta; /* RoPE's base (pos = rope; 0: 10000, LLaMA's rope_theta; pb_desc_rope_theta) */
    float rms_eps;    /* RMSNorm's epsilon (norm = rmsnorm; 0: 1e-5, LLaMA-2's rms_norm_eps;
                         pb_desc_rms_eps). LayerNorm's is PB_LN_EPS (core/kernels.h). */

    /* Shape-only details of real foundation models (docs/COUNT.md). Zero everywhere is the
     * runnable GPT-style family, so runnable presets and checkpoints never set them. */
    int n_enc_layer;  /* ENCDEC: blocks [0, n_enc_layer) are the encoder's, [n_enc_layer, n_layer)
                         the decoder's (self-attention, cross-attention, FFN) */
    int head_dim;     /* per-head width (0: d_model / n_head; T5's d_kv) */
    int qkv_bias;     /* q, k, v have biases although `bias` is 0 (Qwen2) */
    int pos_offset;   /* extra rows of the learned position table (OPT: 2) */
    int type_vocab;   /* token_type_embeddings rows (BERT: 2, RoBERTa: 1; 0: none) */
    int rel_buckets;  /* T5 relative_attention_bias (buckets x heads) in each stack's first block */
    int embed_norm;   /* a norm right after the embeddings (BERT, RoBERTa, BLOOM) */
    int no_final_norm; /* no norm after the last block (BERT, OPT-350m) */
    int pooler;       /* the base model (AutoModel) has a dense+tanh pooler (BERT, RoBERTa) */
    int proj_dim;     /* OPT-350m word_embed_proj_dim: embeddings of this width, project_in/out */
    int image, patch, channels; /* VISION: image side, patch side, input channels */
    pb_cls_kind cls_head;       /* shape of the sequence-classification head */
    int cls_pooler;   /* the sequence-classification model keeps the pooler (BERT) */
    int own_head;     /* pb_head_kind of the model as published (0: LM) */
    int own_labels;   /* its labels when own_head is a classifier (ViT: 1000) */
    long long published; /* the published parameter count of that model (0: none) */
    const pb_names *names; /* module names (NULL: our GPT-2-style checkpoint names) */
} pb_model_desc;

/* Sites, in forward order within a layer; global sites last. */
#define PB_SITE_MAP(X)                   \
    X(EMBED, "embed", 0, 0)              \
    X(POS, "pos", 0, 0)                  \
    X(LN1, "ln1", 1, 0)                  \
    X(Q, "attn.q", 1, 1)                 \
    X(K, "attn.k", 1, 1)                 \
    X(V, "attn.v", 1, 1)                 \
    X(O, "attn.o", 1, 1)                 \
    X(LN2, "ln2", 1, 0)                  \
    X(UP, "mlp.up", 1, 1)                \
    X(GATE, "mlp.gate", 1, 1)            \
    X(DOWN, "mlp.down", 1, 1)            \
    X(LN_F, "ln_f", 0, 0)                \
    X(HEAD, "head", 0, 1)                \
    X(QKV, "attn.qkv", 1, 1)             \
    X(XQ, "xattn.q", 1, 1)               \
    X(XK, "xattn.k", 1, 1)               \
    X(XV, "xattn.v", 1, 1)               \
    X(XO, "xattn.o", 1, 1)               \
    X(LN_X, "ln_x", 1, 0)                \
    X(REL, "attn.rel", 1, 0)             \
    X(TYPE, "type", 0, 0)                \
    X(LN_EMBED, "ln_embed", 0, 0)        \
    X(PROJ_IN, "proj_in", 0, 1)          \
    X(PROJ_OUT, "proj_out", 0, 1)        \
    X(POOLER, "pooler", 0, 1)            \
    X(PATCH, "patch", 0, 0)              \
    X(CLS_TOK, "cls_token", 0, 0)
/* columns: enum suffix, canonical name, per layer, is a linear layer. The first 13 are the
 * runnable family's; the rest appear only in shape-only models (appended so that stored masks
 * keep their meaning): fused q/k/v (GPT-2's c_attn, BLOOM's query_key_value), the decoder's
 * cross-attention and its norm (T5), T5's relative position bias, BERT's token types, a norm
 * after the embeddings, OPT-350m's projections, the pooler, ViT's patch embedding and class
 * token. */

typedef enum {
#define PB_SITE_ENUM(e, name, per_layer, linear) PB_SITE_##e,
    PB_SITE_MAP(PB_SITE_ENUM)
#undef PB_SITE_ENUM
    PB_NSITE
} pb_site;

const char *pb_site_name(pb_site s);
int pb_site_is_linear(pb_site s);
int pb_site_per_layer(pb_site s);
/* Sites named by a canonical name or an alias ("q_proj", "query", "c_fc", ...), as a bit mask
 * over pb_site (one alias may name several sites: GPT-2's c_proj is attn.o and mlp.down).
 * Returns 0 when the name matches nothing. */
uint32_t pb_site_lookup(const char *name);
/* Writes the accepted names ("attn.q (q_proj, query, q), ...") into buf for error messages. */
void pb_site_describe_names(char *buf, int cap);

/* PB_OK if the runnable engine implements this descriptor; PB_EINVAL naming the first field
 * it does not support otherwise. Also checks divisibility (C % H) and positive sizes. */
pb_status pb_desc_check_runnable(const pb_model_desc *d);

/* The d_ff of a LLaMA-style block (no biases, RMSNorm, SwiGLU) of width C with key/value width kvd
 * whose parameters are nearest to a GPT-style block's of the same width (12 C^2 + 13 C):
 * round((12 C^2 + 13 C - 2 C^2 - 2 C kvd - 2 C) / 3 C). The LLaMA presets' d_ff (test_model holds
 * them to it) and bench/train_step --family llama use it. */
int pb_desc_matched_ff(int C, int kvd);

/* Named backbone presets (runnable), e.g. "tiny", "small". NULL if unknown. */
const pb_model_desc *pb_backbone_find(const char *name);
/* The i-th preset, NULL past the end. */
const pb_model_desc *pb_backbone_at(int i);



/* Mask over pb_site of the sites a model with this descriptor has (linear and others). */
uint32_t pb_desc_sites(const pb_model_desc *d);

/* ---- site shapes: the one place they are computed ------------------------------------------ */

/* The shape of site s on d: its weight is (out, in), in = 0 for a vector (a norm's gain), and it
 * has a bias (out) when *bias. Linear sites give their in/out features (attn.q C -> H*hd, attn.k
 * and attn.v C -> Hkv*hd, attn.o H*hd -> C, mlp.up and mlp.gate C -> F, mlp.down F -> C, ...);
 * norms (C, 0) with a bias for LayerNorm; tables their rows and width (embed (V, E), pos
 * (positions, C), type, cls_token (1, C), attn.rel (buckets, H)). Returns 0 (sizes 0) for a site
 * d does not have and for the head, whose shape depends on the head kind (pb_model_layout,
 * pb_model_task_head_params). pb_model_layout, the FLOP and memory predictions and the methods
 * (site dims, closed forms) all read it. */
int pb_desc_site_shape(const pb_model_desc *d, pb_site s, int *in, int *out, int *bias);
/* Parameters of one occurrence of site s: out x in (out for a vector) plus the bias; 0 if none. */
size_t pb_desc_site_params(const pb_model_desc *d, pb_site s);
/* Whether block l has per-layer site s (cross-attention and its norm only in the decoder blocks of
 * an encoder-decoder, the relative bias only in the first block of each stack). */
int pb_desc_layer_has(const pb_model_desc *d, int l, pb_site s);
/* Whether a model with this head has the pooler (the bare model, or a classifier that keeps it). */
int pb_desc_has_pooler(const pb_model_desc *d, pb_head_kind head);
/* How many times site s occurs in a model with this head: the blocks that have it, or the global
 * copies (an encoder-decoder has two ln_f; the pooler only where the head keeps it). 0 for the
 * head (pb_model_task_head_params). */
int pb_desc_site_count(const pb_model_desc *d, pb_head_kind head, pb_site s);
/* The bias parameters of every site but the head (what BitFit trains). */
size_t pb_desc_bias_params(const pb_model_desc *d, pb_head_kind head);

/* Module names of a real model family, as Hugging Face transformers names them. Paths of
 * per-layer sites are relative to the block prefix; global ones are full. Decoder blocks of an
 * encoder-decoder use dec_site where it is set (T5's layer.2.DenseReluDense.wi). */
struct pb_names {
    const char *type;            /* Hugging Face model_type: "llama", "t5", ... */
    const char *block, *dec_block; /* "model.layers.%d." ; encoder-decoder: "encoder.block.%d.", "decoder.block.%d." */
    const char *site[PB_NSITE];
    const char *dec_site[PB_NSITE];
    const char *lm_head;         /* "lm_head" */
    const char *tok_head;        /* token-classification head: "classifier" or "score" */
    int conv1d;                  /* its linear layers are transformers' Conv1D (GPT-2) */
};

/* The sites a target name selects on this model: our canonical names always; on a real model
 * (d->names set) Hugging Face's rule — a module matches when its name equals the target or ends
 * with "." + target — applied to the model's module names; otherwise the alias table of
 * pb_site_lookup. "all-linear" = every linear site but the head. 0 when nothing matches. */
uint32_t pb_desc_target_sites(const pb_model_desc *d, const char *name);
/* The module path of a site (per-layer sites: within a block; dec = decoder block). */
const char *pb_desc_site_path(const pb_model_desc *d, pb_site s, int dec);
/* Number of blocks and whether block l is a decoder block of an encoder-decoder. */
int pb_desc_is_dec_block(const pb_model_desc *d, int l);
/* Per-head width. */
int pb_desc_head_dim(const pb_model_desc *d);
/* RoPE's base and RMSNorm's epsilon, the descriptor's or the default where it leaves them 0. */
float pb_desc_rope_theta(const pb_model_desc *d);
float pb_desc_rms_eps(const pb_model_desc *d);

/* Real foundation models, shape-only (models/zoo.c). NULL if unknown / past the end. */
const pb_model_desc *pb_zoo_find(const char *name);
const pb_model_desc *pb_zoo_at(int i);
/* A zoo model or a runnable preset by name (NULL if neither). */
const pb_model_desc *pb_desc_find_any(const char *name);
#endif
