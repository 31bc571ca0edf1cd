/* desc.h — model descriptors and named sites.
 *
 * A descriptor lists everything that decides a transformer's shapes (DESIGN.md "Models"). The
 * same descriptor serves two modes: runnable (weights allocated; models/model.h) and, later,
 * shape-only (real foundation-model configs counted by `peftbench count`). Only the subset that
 * pb_desc_check_runnable() accepts can run today: the GPT-style decoder and its bidirectional
 * encoder variant (pre-LN, learned positions, separate q/k/v/o with biases, GELU MLP, LayerNorm,
 * tied LM head).
 *
 * Sites are the places PEFT methods attach to. Every runnable tensor belongs to one site; the
 * site names are ours (`attn.q`), and each has the module names real models use as aliases
 * (`q_proj`, `query`, ...), so `targets=q_proj+v_proj` means what target_modules means in
 * Hugging Face PEFT.
 */
#ifndef PB_DESC_H
#define PB_DESC_H

#include <stdint.h>

#include "pb_error.h"

typedef enum { PB_ARCH_DECODER, PB_ARCH_ENCODER, PB_ARCH_ENCDEC, PB_ARCH_VISION } pb_arch;
typedef enum { PB_NORM_LAYERNORM, PB_NORM_RMSNORM } pb_norm_kind;
typedef enum { PB_FFN_GELU, PB_FFN_SWIGLU, PB_FFN_GEGLU } pb_ffn_kind;
typedef enum { PB_POS_LEARNED, PB_POS_ROPE, PB_POS_RELATIVE, PB_POS_NONE } pb_pos_kind;

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
    X(HEAD, "head", 0, 1)
/* columns: enum suffix, canonical name, per layer, is a linear layer */

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

/* Named backbone presets (runnable), e.g. "tiny", "small". NULL if unknown. */
const pb_model_desc *pb_backbone_find(const char *name);
/* The i-th preset, NULL past the end. */
const pb_model_desc *pb_backbone_at(int i);



/* Mask over pb_site of the sites a model with this descriptor has (linear and others). */
uint32_t pb_desc_sites(const pb_model_desc *d);
#endif
