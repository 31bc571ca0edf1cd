/* desc.c — site names and aliases, runnable check, backbone presets (see desc.h). */
#include "desc.h"
#include "tokenizer.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int per_layer, linear;
} g_sites[PB_NSITE] = {
#define PB_SITE_ROW(e, name, per_layer, linear) {name, per_layer, linear},
    PB_SITE_MAP(PB_SITE_ROW)
#undef PB_SITE_ROW
};

const char *pb_site_name(pb_site s) { return (s >= 0 && s < PB_NSITE) ? g_sites[s].name : "?"; }
int pb_site_is_linear(pb_site s) { return g_sites[s].linear; }
int pb_site_per_layer(pb_site s) { return g_sites[s].per_layer; }

#define BIT(s) (1u << PB_SITE_##s)
/* Module names used by Hugging Face transformers models (GPT-2, BERT/RoBERTa, LLaMA/Mistral,
 * T5, OPT, BLOOM, ViT) for each site. Matching is on the last dotted component, as PEFT's
 * target_modules suffix match does for these names. */
static const struct {
    const char *alias;
    uint32_t sites;
} g_alias[] = {
    {"q", BIT(Q)},           {"q_proj", BIT(Q)},         {"query", BIT(Q)},
    {"k", BIT(K)},           {"k_proj", BIT(K)},         {"key", BIT(K)},
    {"v", BIT(V)},           {"v_proj", BIT(V)},         {"value", BIT(V)},
    {"o", BIT(O)},           {"o_proj", BIT(O)},         {"out_proj", BIT(O)},
    {"c_proj", BIT(O) | BIT(DOWN)},                      {"dense", BIT(O)},
    {"c_fc", BIT(UP)},       {"fc1", BIT(UP)},           {"up_proj", BIT(UP)},
    {"wi", BIT(UP)},         {"intermediate", BIT(UP)},  {"dense_h_to_4h", BIT(UP)},
    {"fc2", BIT(DOWN)},      {"down_proj", BIT(DOWN)},   {"wo", BIT(DOWN)},
    {"output", BIT(DOWN)},   {"dense_4h_to_h", BIT(DOWN)},
    {"gate_proj", BIT(GATE)},
    {"ln_1", BIT(LN1)},      {"input_layernorm", BIT(LN1)},
    {"ln_2", BIT(LN2)},      {"post_attention_layernorm", BIT(LN2)},
    {"wte", BIT(EMBED)},     {"embed_tokens", BIT(EMBED)}, {"word_embeddings", BIT(EMBED)},
    {"wpe", BIT(POS)},       {"position_embeddings", BIT(POS)},
    {"score", BIT(HEAD)},    {"classifier", BIT(HEAD)},  {"lm_head", BIT(HEAD)},
    {"norm", BIT(LN_F)},     {"final_layer_norm", BIT(LN_F)},
    {"all-linear", BIT(Q) | BIT(K) | BIT(V) | BIT(O) | BIT(UP) | BIT(GATE) | BIT(DOWN)},
};
#undef BIT

uint32_t pb_site_lookup(const char *name) {
    for (int s = 0; s < PB_NSITE; s++)
        if (!strcmp(name, g_sites[s].name)) return 1u << s;
    for (size_t i = 0; i < sizeof g_alias / sizeof g_alias[0]; i++)
        if (!strcmp(name, g_alias[i].alias)) return g_alias[i].sites;
    return 0;
}

void pb_site_describe_names(char *buf, int cap) {
    int n = 0;
    buf[0] = '\0';
    for (int s = 0; s < PB_NSITE && n < cap; s++) {
        n += snprintf(buf + n, (size_t)(cap - n), "%s%s (", s ? ", " : "", g_sites[s].name);
        int first = 1;
        for (size_t i = 0; i < sizeof g_alias / sizeof g_alias[0] && n < cap; i++)
            if (g_alias[i].sites & (1u << s)) {
                n += snprintf(buf + n, (size_t)(cap - n), "%s%s", first ? "" : ", ", g_alias[i].alias);
                first = 0;
            }
        if (n < cap) n += snprintf(buf + n, (size_t)(cap - n), ")");
    }
}

pb_status pb_desc_check_runnable(const pb_model_desc *d) {
    const char *why = NULL;
    if (d->n_layer < 1 || d->d_model < 1 || d->n_head < 1 || d->d_ff < 1 || d->vocab < 1 || d->max_seq < 1)
        why = "every size (n_layer, d_model, n_head, d_ff, vocab, max_seq) must be positive";
    else if (d->d_model % d->n_head) why = "d_model must be a multiple of n_head";
    else if (d->arch != PB_ARCH_DECODER && d->arch != PB_ARCH_ENCODER)
        why = "only decoder and encoder architectures run (encoder-decoder and vision are shape-only)";
    else if (d->n_kv_head != d->n_head) why = "grouped-query attention is shape-only for now";
    else if (d->ffn != PB_FFN_GELU) why = "only the GELU MLP runs (SwiGLU/GeGLU are shape-only for now)";
    else if (d->norm != PB_NORM_LAYERNORM) why = "only LayerNorm runs (RMSNorm is shape-only for now)";
    else if (!d->bias) why = "only linear layers with biases run";
    else if (d->fused_qkv) why = "only separate q/k/v projections run";
    else if (d->pos != PB_POS_LEARNED) why = "only learned positions run";
    else if (!d->tied_embed) why = "only a tied LM head runs";
    if (why) return pb_errorf(PB_EINVAL, "backbone '%s' cannot run: %s", d->name, why);
    return PB_OK;
}

#define GPT(nm, arch_, causal_, L, C, H, ctx)                                                                   \
    {.name = nm, .arch = arch_, .causal = causal_, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H,   \
     .d_ff = 4 * (C), .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .fused_qkv = 0,                 \
     .pos = PB_POS_LEARNED, .vocab = PB_TOK_VOCAB, .max_seq = ctx, .tied_embed = 1}

/* Runnable presets. "tiny" serves the tests (seconds on one core); "small" is the default
 * backbone sized for a 2-core machine (docs/ARCHITECTURE.md "Sizing"). */
static const pb_model_desc g_backbones[] = {
    GPT("tiny", PB_ARCH_DECODER, 1, 2, 32, 4, 64),
    GPT("tiny-enc", PB_ARCH_ENCODER, 0, 2, 32, 4, 64),
    GPT("mini", PB_ARCH_DECODER, 1, 4, 192, 6, 256),     /* the default backbone: see EXPERIMENTS.md */
    GPT("mini-enc", PB_ARCH_ENCODER, 0, 4, 192, 6, 256),
    GPT("small", PB_ARCH_DECODER, 1, 6, 256, 8, 256),
    GPT("small-enc", PB_ARCH_ENCODER, 0, 6, 256, 8, 256),
};

const pb_model_desc *pb_backbone_find(const char *name) {
    for (size_t i = 0; i < sizeof g_backbones / sizeof g_backbones[0]; i++)
        if (!strcmp(g_backbones[i].name, name)) return &g_backbones[i];
    return NULL;
}

const pb_model_desc *pb_backbone_at(int i) {
    if (i < 0 || (size_t)i >= sizeof g_backbones / sizeof g_backbones[0]) return NULL;
    return &g_backbones[i];
}

uint32_t pb_desc_sites(const pb_model_desc *d) {
    uint32_t m = (1u << PB_SITE_EMBED) | (1u << PB_SITE_LN1) | (1u << PB_SITE_Q) | (1u << PB_SITE_K) |
                 (1u << PB_SITE_V) | (1u << PB_SITE_O) | (1u << PB_SITE_LN2) | (1u << PB_SITE_UP) |
                 (1u << PB_SITE_DOWN) | (1u << PB_SITE_LN_F) | (1u << PB_SITE_HEAD);
    if (d->pos == PB_POS_LEARNED) m |= 1u << PB_SITE_POS;
    if (d->ffn != PB_FFN_GELU) m |= 1u << PB_SITE_GATE;
    return m;
}
