/* families.h — the runnable test models: one row per model family (and per variant that
 * exercises an optional part) the engine runs. Every test that builds a model takes its
 * descriptor from here and sweeps the rows (or the rows it needs: the first decoder, the first
 * encoder), so a new family is one row here plus its block file (docs/ARCHITECTURE.md "Model
 * families"); the model, method, prompt, adapter, backbone and FLOP tests then cover it.
 *
 * A row holds the family's structure (architecture, norm, FFN, positions, biases, tied head,
 * grouped-query ratio); tf_desc gives it the sizes a test wants.
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
};
#undef TF_GPT
#define TF_NFAMILY ((int)(sizeof tf_families / sizeof tf_families[0]))

/* Row f with L layers, width C, H heads, d_ff 4C, vocabulary V and T positions, named
 * "test-<row>". */
static inline pb_model_desc tf_desc(const tf_family *f, int L, int C, int H, int V, int T) {
    pb_model_desc d = f->d;
    snprintf(d.name, sizeof d.name, "test-%s", f->name);
    d.n_layer = L;
    d.d_model = C;
    d.n_head = H;
    d.n_kv_head = f->kv_div ? H / f->kv_div : H;
    d.d_ff = 4 * C;
    d.vocab = V;
    d.max_seq = T;
    return d;
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
