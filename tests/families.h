/* families.h — the runnable test models: one row per model family (and per variant that
 * exercises an optional part) the engine runs. Every test that builds a model takes its
 * descriptor from here and sweeps the rows (or the rows it needs: the first decoder, the first
 * encoder), so a new family is one row here plus its block file (docs/ARCHITECTURE.md "Model
 * families"); the model, method, prompt, adapter, backbone and FLOP tests then cover it.
 *
 * A row holds the family's structure (architecture, norm, FFN, positions, biases, tied head,
 * grouped-query ratio); tf_desc gives it the sizes a test wants. tf_refusals lists the methods
 * that cannot run on a family and the words of their error.
 */
#ifndef PB_TEST_FAMILIES_H
#define PB_TEST_FAMILIES_H

#include <stdio.h>
#include <string.h>

#include "models/desc.h"

typedef struct {
    const char *name;
    pb_model_desc d;   /* structure only: the sizes are tf_desc's */
    int kv_div;        /* key/value heads = heads / kv_div (grouped-query attention); 0: as many */
} tf_family;

#define TF_GPT .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .pos = PB_POS_LEARNED
static const tf_family tf_families[] = {
    /* GPT-2 style decoder: the pretraining presets' family */
    {"gpt", {.arch = PB_ARCH_DECODER, .causal = 1, TF_GPT, .bias = 1, .tied_embed = 1}, 0},
    /* its bidirectional encoder variant (BERT-like pooling at <cls>) */
    {"gpt-enc", {.arch = PB_ARCH_ENCODER, .causal = 0, TF_GPT, .bias = 1, .tied_embed = 1}, 0},
    /* optional tensors: no linear biases and an untied LM head (lm_head.weight), as LLaMA has */
    {"gpt-untied", {.arch = PB_ARCH_DECODER, .causal = 1, TF_GPT, .bias = 0, .tied_embed = 0}, 0},
    /* LLaMA-style decoder (models/block_llama.c): RMSNorm, RoPE, SwiGLU, no biases, untied LM
     * head, two query heads per key/value head */
    {"llama",
     {.arch = PB_ARCH_DECODER, .causal = 1, .ffn = PB_FFN_SWIGLU, .norm = PB_NORM_RMSNORM, .pos = PB_POS_ROPE,
      .bias = 0, .tied_embed = 0},
     2},
};
#undef TF_GPT
#define TF_NFAMILY ((int)(sizeof tf_families / sizeof tf_families[0]))

/* Row f with L layers, width C, H heads, d_ff 4C, vocabulary V and T positions, named
 * "test-<row>". A grouped-query row (kv_div > 1) gets kv_div C and kv_div H instead, with H key/value
 * heads: its key/value projections are then C wide like every other row's, so the methods' default
 * ranks (LoRA's r = 8, ...) fit the same test sizes. */
static inline pb_model_desc tf_desc(const tf_family *f, int L, int C, int H, int V, int T) {
    pb_model_desc d = f->d;
    const int g = f->kv_div > 1 ? f->kv_div : 1;
    snprintf(d.name, sizeof d.name, "test-%s", f->name);
    d.n_layer = L;
    d.d_model = g * C;
    d.n_head = g * H;
    d.n_kv_head = H;
    d.d_ff = 4 * d.d_model;
    d.vocab = V;
    d.max_seq = T;
    return d;
}

/* Methods that cannot run on a family, with the words of their error: every test that attaches
 * every method to every family expects exactly this refusal there, and checks its message. */
typedef struct {
    const char *method, *family, *error;
} tf_refusal_row;
static const tf_refusal_row tf_refusals[] = {
    /* no linear biases and RMSNorm: nothing for BitFit to train */
    {"bitfit", "llama", "has no bias terms"},
};

/* The row whose structure descriptor d has (architecture, norm, FFN, positions, biases, tied
 * head, grouped-query or not): the family of a preset. NULL if none. */
static inline const tf_family *tf_of(const pb_model_desc *d) {
    for (int i = 0; i < TF_NFAMILY; i++) {
        const pb_model_desc *r = &tf_families[i].d;
        if (r->arch == d->arch && r->causal == d->causal && r->ffn == d->ffn && r->norm == d->norm &&
            r->pos == d->pos && r->bias == d->bias && r->tied_embed == d->tied_embed &&
            (tf_families[i].kv_div > 1) == (d->n_kv_head != d->n_head))
            return &tf_families[i];
    }
    return NULL;
}

/* The words of the error method spec `spec` ("name[:...]") must give on row f (NULL: it runs). */
static inline const char *tf_refusal(const char *spec, const tf_family *f) {
    size_t n = strcspn(spec, ":");
    for (size_t i = 0; f && i < sizeof tf_refusals / sizeof tf_refusals[0]; i++)
        if (strlen(tf_refusals[i].method) == n && !strncmp(spec, tf_refusals[i].method, n) &&
            !strcmp(tf_refusals[i].family, f->name))
            return tf_refusals[i].error;
    return NULL;
}

/* The first row that is causal (decoder) or not (encoder). */
static inline const tf_family *tf_first(int causal) {
    for (int i = 0; i < TF_NFAMILY; i++)
        if (tf_families[i].d.causal == causal) return &tf_families[i];
    return NULL;
}

/* The row named name (NULL if none). */
static inline const tf_family *tf_find(const char *name) {
    for (int i = 0; i < TF_NFAMILY; i++)
        if (!strcmp(tf_families[i].name, name)) return &tf_families[i];
    return NULL;
}

#endif
