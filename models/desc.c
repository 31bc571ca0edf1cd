/* desc.c — site names and aliases, runnable check, backbone presets (see desc.h). */
#include "desc.h"
#include "block.h"
#include "tokenizer.h"

#include <math.h>
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
    {"q", BIT(Q) | BIT(XQ)}, {"q_proj", BIT(Q)},         {"query", BIT(Q)},
    {"k", BIT(K) | BIT(XK)}, {"k_proj", BIT(K)},         {"key", BIT(K)},
    {"v", BIT(V) | BIT(XV)}, {"v_proj", BIT(V)},         {"value", BIT(V)},
    {"o", BIT(O) | BIT(XO)}, {"o_proj", BIT(O)},         {"out_proj", BIT(O)},
    {"c_proj", BIT(O) | BIT(DOWN)},                      {"dense", BIT(O)},
    {"c_attn", BIT(QKV)},    {"query_key_value", BIT(QKV)},
    {"c_fc", BIT(UP)},       {"fc1", BIT(UP)},           {"up_proj", BIT(UP)},
    {"wi", BIT(UP)},         {"wi_1", BIT(UP)},          {"intermediate", BIT(UP)},
    {"dense_h_to_4h", BIT(UP)},
    {"fc2", BIT(DOWN)},      {"down_proj", BIT(DOWN)},   {"wo", BIT(DOWN)},
    {"output", BIT(DOWN)},   {"dense_4h_to_h", BIT(DOWN)},
    {"gate_proj", BIT(GATE)}, {"wi_0", BIT(GATE)},
    {"ln_1", BIT(LN1)},      {"input_layernorm", BIT(LN1)},
    {"ln_2", BIT(LN2)},      {"post_attention_layernorm", BIT(LN2)},
    {"wte", BIT(EMBED)},     {"embed_tokens", BIT(EMBED)}, {"word_embeddings", BIT(EMBED)},
    {"wpe", BIT(POS)},       {"position_embeddings", BIT(POS)},
    {"score", BIT(HEAD)},    {"classifier", BIT(HEAD)},  {"lm_head", BIT(HEAD)},
    {"norm", BIT(LN_F)},     {"final_layer_norm", BIT(LN_F)},
    {"all-linear", BIT(Q) | BIT(K) | BIT(V) | BIT(O) | BIT(UP) | BIT(GATE) | BIT(DOWN) | BIT(QKV) | BIT(XQ) |
                       BIT(XK) | BIT(XV) | BIT(XO) | BIT(PROJ_IN) | BIT(PROJ_OUT) | BIT(POOLER)},
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
    /* what the trunk (models/model.c) needs; the family's block file checks the rest */
    const char *why = NULL;
    if (d->n_layer < 1 || d->d_model < 1 || d->n_head < 1 || d->n_kv_head < 1 || d->d_ff < 1 || d->vocab < 1 ||
        d->max_seq < 1)
        why = "every size (n_layer, d_model, n_head, n_kv_head, d_ff, vocab, max_seq) must be positive";
    else if (d->d_model % d->n_head) why = "d_model must be a multiple of n_head";
    else if (d->n_head % d->n_kv_head) why = "n_head must be a multiple of n_kv_head";
    else if (!(d->rope_theta >= 0.0f && d->rope_theta < INFINITY) || !(d->rms_eps >= 0.0f && d->rms_eps < 1.0f))
        why = "rope_theta must be finite and rms_eps in [0, 1) (0: the defaults 10000 and 1e-5)";
    else if (d->arch != PB_ARCH_DECODER && d->arch != PB_ARCH_ENCODER)
        why = "only decoder and encoder architectures run (encoder-decoder and vision are shape-only)";
    else if (d->n_enc_layer || d->head_dim || d->qkv_bias || d->pos_offset || d->type_vocab || d->rel_buckets ||
             d->embed_norm || d->no_final_norm || d->pooler || d->proj_dim || d->image || d->patch || d->channels ||
             d->cls_head || d->cls_pooler || d->own_head || d->names)
        why = "it is a real model's shape-only descriptor (peftbench count reads it; nothing runs it)";
    if (why) return pb_errorf(PB_EINVAL, "backbone '%s' cannot run: %s", d->name, why);
    char blocks[512];
    if (!pb_block_select(d, blocks, sizeof blocks))
        return pb_errorf(PB_EINVAL, "backbone '%s' cannot run: no block file runs it (%s)", d->name, blocks);
    return PB_OK;
}

#define GPT(nm, arch_, causal_, L, C, H, ctx)                                                                   \
    {.name = nm, .arch = arch_, .causal = causal_, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H,   \
     .d_ff = 4 * (C), .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .fused_qkv = 0,                 \
     .pos = PB_POS_LEARNED, .vocab = PB_TOK_VOCAB, .max_seq = ctx, .tied_embed = 1}

/* The LLaMA-style decoder (models/block_llama.c): RMSNorm, RoPE (theta 10000), grouped-query
 * attention with Hkv key/value heads, SwiGLU of width F, no biases, an untied LM head. */
#define LLAMA(nm, L, C, H, Hkv, F, ctx)                                                                        \
    {.name = nm, .arch = PB_ARCH_DECODER, .causal = 1, .n_layer = L, .d_model = C, .n_head = H,                \
     .n_kv_head = Hkv, .d_ff = F, .ffn = PB_FFN_SWIGLU, .norm = PB_NORM_RMSNORM, .bias = 0, .fused_qkv = 0,     \
     .pos = PB_POS_ROPE, .vocab = PB_TOK_VOCAB, .max_seq = ctx, .tied_embed = 0}

/* Runnable presets. "tiny" serves the tests (seconds on one core); "mini" is the default
 * backbone sized for a 2-core machine (docs/ARCHITECTURE.md "Sizing"). The LLaMA-style presets
 * have the depth, width, heads and context of the GPT preset of the same size and H/3 (mini) or
 * H/2 (tiny) key/value heads; d_ff is the integer nearest to equal block parameters (a GPT block
 * has 12 C^2 + 13 C; a LLaMA block 2 C^2 + 2 C kvd + 3 C F + 2 C; pb_desc_matched_ff): mini-llama's
 * blocks have exactly mini's parameters, tiny-llama's 32 more per block (`peftbench list backbones`:
 * the totals differ by V C - max_seq C - C, the untied head less the position table and ln_f's
 * bias). So both families spend the same matrix-product FLOPs per token in their blocks
 * (docs/ARCHITECTURE.md "Model families"). */
static const pb_model_desc g_backbones[] = {
    GPT("tiny", PB_ARCH_DECODER, 1, 2, 32, 4, 64),
    GPT("tiny-enc", PB_ARCH_ENCODER, 0, 2, 32, 4, 64),
    GPT("mini", PB_ARCH_DECODER, 1, 4, 192, 6, 256),     /* the default backbone: see EXPERIMENTS.md */
    GPT("mini-enc", PB_ARCH_ENCODER, 0, 4, 192, 6, 256),
    GPT("small", PB_ARCH_DECODER, 1, 6, 256, 8, 256),
    GPT("small-enc", PB_ARCH_ENCODER, 0, 6, 256, 8, 256),
    LLAMA("tiny-llama", 2, 32, 4, 2, 100, 64),
    LLAMA("mini-llama", 4, 192, 6, 2, 601, 256),
};

int pb_desc_matched_ff(int C, int kvd) {
    double c = C, gpt = 12.0 * c * c + 13.0 * c, fixed = 2.0 * c * c + 2.0 * c * kvd + 2.0 * c;
    return (int)lround((gpt - fixed) / (3.0 * c));
}

const pb_model_desc *pb_backbone_find(const char *name) {
    for (size_t i = 0; i < sizeof g_backbones / sizeof g_backbones[0]; i++)
        if (!strcmp(g_backbones[i].name, name)) return &g_backbones[i];
    return NULL;
}

const pb_model_desc *pb_backbone_at(int i) {
    if (i < 0 || (size_t)i >= sizeof g_backbones / sizeof g_backbones[0]) return NULL;
    return &g_backbones[i];
}

#define BIT(s) (1u << PB_SITE_##s)
uint32_t pb_desc_sites(const pb_model_desc *d) {
    uint32_t m = BIT(LN1) | BIT(O) | BIT(LN2) | BIT(UP) | BIT(DOWN) | BIT(HEAD);
    m |= d->fused_qkv ? BIT(QKV) : BIT(Q) | BIT(K) | BIT(V);
    m |= d->patch ? BIT(PATCH) | BIT(CLS_TOK) : BIT(EMBED);
    if (d->pos == PB_POS_LEARNED) m |= BIT(POS);
    if (d->ffn != PB_FFN_GELU) m |= BIT(GATE);
    if (!d->no_final_norm) m |= BIT(LN_F);
    if (d->arch == PB_ARCH_ENCDEC) m |= BIT(XQ) | BIT(XK) | BIT(XV) | BIT(XO) | BIT(LN_X);
    if (d->rel_buckets) m |= BIT(REL);
    if (d->type_vocab) m |= BIT(TYPE);
    if (d->embed_norm) m |= BIT(LN_EMBED);
    if (d->proj_dim) m |= BIT(PROJ_IN) | BIT(PROJ_OUT);
    if (d->pooler) m |= BIT(POOLER);
    return m;
}

int pb_desc_head_dim(const pb_model_desc *d) { return d->head_dim ? d->head_dim : d->d_model / d->n_head; }
float pb_desc_rope_theta(const pb_model_desc *d) { return d->rope_theta > 0.0f ? d->rope_theta : 10000.0f; }
float pb_desc_rms_eps(const pb_model_desc *d) { return d->rms_eps > 0.0f ? d->rms_eps : 1e-5f; }

int pb_desc_site_shape(const pb_model_desc *d, pb_site s, int *in, int *out, int *bias) {
    const int C = d->d_model, F = d->d_ff, hd = pb_desc_head_dim(d), qd = d->n_head * hd;
    const int kvd = d->n_kv_head * hd, E = d->proj_dim ? d->proj_dim : C;
    const int b = d->bias, qkvb = d->bias || d->qkv_bias, ln = d->norm == PB_NORM_LAYERNORM;
    int i = 0, o = 0, hb = 0;
    if (s != PB_SITE_HEAD && ((pb_desc_sites(d) >> s) & 1u)) switch (s) {
        case PB_SITE_EMBED: o = d->vocab, i = E; break;
        case PB_SITE_POS:
            o = d->patch ? (d->image / d->patch) * (d->image / d->patch) + 1 : d->max_seq + d->pos_offset, i = C;
            break;
        case PB_SITE_TYPE: o = d->type_vocab, i = C; break;
        case PB_SITE_CLS_TOK: o = 1, i = C; break;
        case PB_SITE_PATCH: o = C, i = d->channels * d->patch * d->patch, hb = 1; break;
        case PB_SITE_LN1: case PB_SITE_LN2: case PB_SITE_LN_X: case PB_SITE_LN_F: case PB_SITE_LN_EMBED:
            o = C, hb = ln;
            break;
        case PB_SITE_Q: case PB_SITE_XQ: o = qd, i = C, hb = qkvb; break;
        case PB_SITE_K: case PB_SITE_V: case PB_SITE_XK: case PB_SITE_XV: o = kvd, i = C, hb = qkvb; break;
        case PB_SITE_QKV: o = qd + 2 * kvd, i = C, hb = qkvb; break;
        case PB_SITE_O: case PB_SITE_XO: o = C, i = qd, hb = b; break;
        case PB_SITE_UP: case PB_SITE_GATE: o = F, i = C, hb = b; break;
        case PB_SITE_DOWN: o = C, i = F, hb = b; break;
        case PB_SITE_REL: o = d->rel_buckets, i = d->n_head; break;
        case PB_SITE_PROJ_IN: o = C, i = E; break;
        case PB_SITE_PROJ_OUT: o = E, i = C; break;
        case PB_SITE_POOLER: o = C, i = C, hb = 1; break;
        default: break;
        }
    if (in) *in = i;
    if (out) *out = o;
    if (bias) *bias = hb;
    return o > 0;
}

size_t pb_desc_site_params(const pb_model_desc *d, pb_site s) {
    int in, out, bias;
    if (!pb_desc_site_shape(d, s, &in, &out, &bias)) return 0;
    return (size_t)out * (size_t)(in ? in : 1) + (bias ? (size_t)out : 0);
}

int pb_desc_layer_has(const pb_model_desc *d, int l, pb_site s) {
    if (!pb_site_per_layer(s) || !((pb_desc_sites(d) >> s) & 1u)) return 0;
    switch (s) {
    case PB_SITE_LN_X: case PB_SITE_XQ: case PB_SITE_XK: case PB_SITE_XV: case PB_SITE_XO:
        return pb_desc_is_dec_block(d, l);
    case PB_SITE_REL: return l == 0 || l == d->n_enc_layer;
    default: return 1;
    }
}

int pb_desc_has_pooler(const pb_model_desc *d, pb_head_kind head) {
    return d->pooler && (head == PB_HEAD_NONE || (head == PB_HEAD_CLS && d->cls_pooler));
}

int pb_desc_site_count(const pb_model_desc *d, pb_head_kind head, pb_site s) {
    if (pb_site_per_layer(s)) {
        int n = 0;
        for (int l = 0; l < d->n_layer; l++) n += pb_desc_layer_has(d, l, s);
        return n;
    }
    if (s == PB_SITE_HEAD || !((pb_desc_sites(d) >> s) & 1u)) return 0;
    if (s == PB_SITE_POOLER) return pb_desc_has_pooler(d, head);
    if (s == PB_SITE_LN_F) return d->arch == PB_ARCH_ENCDEC ? 2 : 1;
    return 1;
}

size_t pb_desc_bias_params(const pb_model_desc *d, pb_head_kind head) {
    size_t n = 0;
    for (int s = 0; s < PB_NSITE; s++) {
        int in, out, bias;
        if (pb_desc_site_shape(d, (pb_site)s, &in, &out, &bias) && bias)
            n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * (size_t)out;
    }
    return n;
}

int pb_desc_is_dec_block(const pb_model_desc *d, int l) { return d->arch == PB_ARCH_ENCDEC && l >= d->n_enc_layer; }

/* Our checkpoint names for the runnable family (GPT-2's where it has the tensor). */
static const pb_names g_preset_names = {
    .type = NULL,
    .block = "h.%d.",
    .site = {[PB_SITE_EMBED] = "wte", [PB_SITE_POS] = "wpe", [PB_SITE_LN1] = "ln_1", [PB_SITE_Q] = "attn.q_proj",
             [PB_SITE_K] = "attn.k_proj", [PB_SITE_V] = "attn.v_proj", [PB_SITE_O] = "attn.c_proj",
             [PB_SITE_LN2] = "ln_2", [PB_SITE_UP] = "mlp.c_fc", [PB_SITE_GATE] = "mlp.gate_proj",
             [PB_SITE_DOWN] = "mlp.c_proj", [PB_SITE_LN_F] = "ln_f",
             [PB_SITE_HEAD] = "score"},
    .lm_head = "lm_head",
    .tok_head = "score",
};

const char *pb_desc_site_path(const pb_model_desc *d, pb_site s, int dec) {
    const pb_names *n = d->names ? d->names : &g_preset_names;
    if (dec && n->dec_site[s]) return n->dec_site[s];
    return n->site[s] ? n->site[s] : pb_site_name(s);
}

/* Hugging Face's suffix rule: key == target or key ends with "." + target. */
static int hf_match(const char *key, const char *target) {
    size_t k = strlen(key), t = strlen(target);
    if (k == t) return !strcmp(key, target);
    return k > t && key[k - t - 1] == '.' && !strcmp(key + k - t, target);
}

uint32_t pb_desc_target_sites(const pb_model_desc *d, const char *name) {
    uint32_t have = pb_desc_sites(d), m = 0;
    for (int s = 0; s < PB_NSITE; s++)
        if (!strcmp(name, pb_site_name((pb_site)s))) return (1u << s) & have;
    if (!strcmp(name, "all-linear")) {
        for (int s = 0; s < PB_NSITE; s++)
            if (pb_site_is_linear((pb_site)s) && s != PB_SITE_HEAD) m |= 1u << s;
        return m & have;
    }
    if (!d->names) return pb_site_lookup(name) & have;
    for (int s = 0; s < PB_NSITE; s++) {
        if (!(have & (1u << s))) continue;
        if (hf_match(pb_desc_site_path(d, (pb_site)s, 0), name) ||
            (d->arch == PB_ARCH_ENCDEC && hf_match(pb_desc_site_path(d, (pb_site)s, 1), name)))
            m |= 1u << s;
    }
    return m;
}
#undef BIT

const pb_model_desc *pb_desc_find_any(const char *name) {
    const pb_model_desc *d = pb_zoo_find(name);
    return d ? d : pb_backbone_find(name);
}
