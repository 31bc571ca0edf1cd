/* zoo.c — real foundation models, shape-only (docs/COUNT.md).
 *
 * Each entry is the published architecture of a Hugging Face checkpoint: its config.json values
 * and the structural facts the config does not spell out (fused projections, which layers have
 * biases, extra modules), with the module names transformers gives it. `published` is the
 * parameter count of the model as published (the class people quote: AutoModel for BERT and
 * RoBERTa, the LM class for decoders and T5, ViTForImageClassification for the ViT checkpoints);
 * tests/test_count.c holds pb_model_layout's total equal to it for every entry. Adding a model is
 * one entry here. Nothing here is ever allocated.
 */
#include "desc.h"
#include "model.h"

#include <string.h>

/* ---- module names per family ---------------------------------------------------------------- */

#define S(x) [PB_SITE_##x]

static const pb_names g_gpt2 = {
    .type = "gpt2", .block = "transformer.h.%d.",
    .site = {S(EMBED) = "transformer.wte", S(POS) = "transformer.wpe", S(LN1) = "ln_1", S(QKV) = "attn.c_attn",
             S(O) = "attn.c_proj", S(LN2) = "ln_2", S(UP) = "mlp.c_fc", S(DOWN) = "mlp.c_proj",
             S(LN_F) = "transformer.ln_f", S(HEAD) = "score"},
    .lm_head = "lm_head", .tok_head = "classifier", .conv1d = 1};

/* BERT and RoBERTa share their module names (post-LN: attention.output.LayerNorm follows the
 * attention, output.LayerNorm the FFN; both are this project's ln1/ln2 sites). */
#define BERT_NAMES(type_)                                                                                       \
    {.type = type_, .block = "encoder.layer.%d.",                                                               \
     .site = {S(EMBED) = "embeddings.word_embeddings", S(POS) = "embeddings.position_embeddings",                \
              S(TYPE) = "embeddings.token_type_embeddings", S(LN_EMBED) = "embeddings.LayerNorm",               \
              S(Q) = "attention.self.query", S(K) = "attention.self.key", S(V) = "attention.self.value",        \
              S(O) = "attention.output.dense", S(LN1) = "attention.output.LayerNorm", S(UP) = "intermediate.dense", \
              S(DOWN) = "output.dense", S(LN2) = "output.LayerNorm", S(POOLER) = "pooler.dense",                 \
              S(HEAD) = "classifier"},                                                                          \
     .lm_head = "lm_head", .tok_head = "classifier"}
static const pb_names g_bert = BERT_NAMES("bert");
static const pb_names g_roberta = BERT_NAMES("roberta");

/* T5: encoder blocks are layer.0 (self-attention) and layer.1 (FFN); decoder blocks add the
 * cross-attention as layer.1, so their FFN is layer.2. T5 v1.1 (flan-t5, mT5/mT0) has the gated
 * FFN wi_0 (gate, GELU) and wi_1 (up). */
#define T5_NAMES(type_, up_, dec_up_, gate_, dec_gate_)                                                         \
    {.type = type_, .block = "encoder.block.%d.", .dec_block = "decoder.block.%d.",                            \
     .site = {S(EMBED) = "shared", S(LN1) = "layer.0.layer_norm", S(Q) = "layer.0.SelfAttention.q",              \
              S(K) = "layer.0.SelfAttention.k", S(V) = "layer.0.SelfAttention.v", S(O) = "layer.0.SelfAttention.o", \
              S(REL) = "layer.0.SelfAttention.relative_attention_bias", S(LN2) = "layer.1.layer_norm",            \
              S(UP) = up_, S(GATE) = gate_, S(DOWN) = "layer.1.DenseReluDense.wo",                               \
              S(LN_F) = "encoder.final_layer_norm", S(HEAD) = "classification_head"},                           \
     .dec_site = {S(LN_X) = "layer.1.layer_norm", S(XQ) = "layer.1.EncDecAttention.q",                          \
                  S(XK) = "layer.1.EncDecAttention.k", S(XV) = "layer.1.EncDecAttention.v",                     \
                  S(XO) = "layer.1.EncDecAttention.o", S(LN2) = "layer.2.layer_norm", S(UP) = dec_up_,           \
                  S(GATE) = dec_gate_, S(DOWN) = "layer.2.DenseReluDense.wo", S(LN_F) = "decoder.final_layer_norm"}, \
     .lm_head = "lm_head", .tok_head = "classifier"}
static const pb_names g_t5 = T5_NAMES("t5", "layer.1.DenseReluDense.wi", "layer.2.DenseReluDense.wi", NULL, NULL);
#define T5_GATED(type_)                                                                                         \
    T5_NAMES(type_, "layer.1.DenseReluDense.wi_1", "layer.2.DenseReluDense.wi_1", "layer.1.DenseReluDense.wi_0", \
             "layer.2.DenseReluDense.wi_0")
static const pb_names g_t5v11 = T5_GATED("t5");
static const pb_names g_mt5 = T5_GATED("mt5");

static const pb_names g_bloom = {
    .type = "bloom", .block = "transformer.h.%d.",
    .site = {S(EMBED) = "transformer.word_embeddings", S(LN_EMBED) = "transformer.word_embeddings_layernorm",
             S(LN1) = "input_layernorm", S(QKV) = "self_attention.query_key_value", S(O) = "self_attention.dense",
             S(LN2) = "post_attention_layernorm", S(UP) = "mlp.dense_h_to_4h", S(DOWN) = "mlp.dense_4h_to_h",
             S(LN_F) = "transformer.ln_f", S(HEAD) = "score"},
    .lm_head = "lm_head", .tok_head = "classifier"};

static const pb_names g_opt = {
    .type = "opt", .block = "model.decoder.layers.%d.",
    .site = {S(EMBED) = "model.decoder.embed_tokens", S(POS) = "model.decoder.embed_positions",
             S(PROJ_IN) = "model.decoder.project_in", S(LN1) = "self_attn_layer_norm", S(Q) = "self_attn.q_proj",
             S(K) = "self_attn.k_proj", S(V) = "self_attn.v_proj", S(O) = "self_attn.out_proj",
             S(LN2) = "final_layer_norm", S(UP) = "fc1", S(DOWN) = "fc2", S(LN_F) = "model.decoder.final_layer_norm",
             S(PROJ_OUT) = "model.decoder.project_out", S(HEAD) = "score"},
    .lm_head = "lm_head", .tok_head = "score"};

/* LLaMA, Mistral and Qwen2 share the LLaMA module names. */
#define LLAMA_NAMES(type_)                                                                                      \
    {.type = type_, .block = "model.layers.%d.",                                                                \
     .site = {S(EMBED) = "model.embed_tokens", S(LN1) = "input_layernorm", S(Q) = "self_attn.q_proj",            \
              S(K) = "self_attn.k_proj", S(V) = "self_attn.v_proj", S(O) = "self_attn.o_proj",                   \
              S(LN2) = "post_attention_layernorm", S(GATE) = "mlp.gate_proj", S(UP) = "mlp.up_proj",            \
              S(DOWN) = "mlp.down_proj", S(LN_F) = "model.norm", S(HEAD) = "score"},                            \
     .lm_head = "lm_head", .tok_head = "score"}
static const pb_names g_llama = LLAMA_NAMES("llama");
static const pb_names g_mistral = LLAMA_NAMES("mistral");
static const pb_names g_qwen2 = LLAMA_NAMES("qwen2");

static const pb_names g_vit = {
    .type = "vit", .block = "vit.encoder.layer.%d.",
    .site = {S(CLS_TOK) = "vit.embeddings.cls_token", S(POS) = "vit.embeddings.position_embeddings",
             S(PATCH) = "vit.embeddings.patch_embeddings.projection", S(LN1) = "layernorm_before",
             S(Q) = "attention.attention.query", S(K) = "attention.attention.key", S(V) = "attention.attention.value",
             S(O) = "attention.output.dense", S(LN2) = "layernorm_after", S(UP) = "intermediate.dense",
             S(DOWN) = "output.dense", S(LN_F) = "vit.layernorm", S(POOLER) = "vit.pooler.dense",
             S(HEAD) = "classifier"},
    .lm_head = "lm_head", .tok_head = "classifier"};
#undef S

/* ---- the models ----------------------------------------------------------------------------- */

#define GPT2(nm, L, C, H, pub)                                                                                  \
    {.name = nm, .arch = PB_ARCH_DECODER, .causal = 1, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H,  \
     .d_ff = 4 * (C), .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .fused_qkv = 1,                 \
     .pos = PB_POS_LEARNED, .vocab = 50257, .max_seq = 1024, .tied_embed = 1, .cls_head = PB_CLS_LINEAR_NOBIAS,  \
     .published = pub, .names = &g_gpt2}
#define BERT(nm, L, C, H, V, pub)                                                                               \
    {.name = nm, .arch = PB_ARCH_ENCODER, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H, .d_ff = 4 * (C), \
     .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .pos = PB_POS_LEARNED, .vocab = V, .max_seq = 512,   \
     .type_vocab = 2, .embed_norm = 1, .no_final_norm = 1, .pooler = 1, .cls_pooler = 1, .own_head = PB_HEAD_NONE, \
     .published = pub, .names = &g_bert}
#define ROBERTA(nm, L, C, H, pub)                                                                               \
    {.name = nm, .arch = PB_ARCH_ENCODER, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H, .d_ff = 4 * (C), \
     .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .pos = PB_POS_LEARNED, .vocab = 50265,            \
     .max_seq = 514, .type_vocab = 1, .embed_norm = 1, .no_final_norm = 1, .pooler = 1, .cls_head = PB_CLS_DENSE, \
     .own_head = PB_HEAD_NONE, .published = pub, .names = &g_roberta}
#define T5(nm, L, C, H, F, V, tied, ffn_, names_, pub)                                                          \
    {.name = nm, .arch = PB_ARCH_ENCDEC, .n_layer = 2 * (L), .n_enc_layer = L, .d_model = C, .n_head = H,       \
     .n_kv_head = H, .head_dim = 64, .d_ff = F, .ffn = ffn_, .norm = PB_NORM_RMSNORM, .bias = 0,                 \
     .pos = PB_POS_RELATIVE, .rel_buckets = 32, .vocab = V, .max_seq = 512, .tied_embed = tied,                 \
     .cls_head = PB_CLS_DENSE, .published = pub, .names = names_}
#define OPT(nm, L, C, H, proj, nofinal, pub)                                                                    \
    {.name = nm, .arch = PB_ARCH_DECODER, .causal = 1, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H,  \
     .d_ff = 4 * (C), .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .pos = PB_POS_LEARNED,            \
     .vocab = 50272, .max_seq = 2048, .pos_offset = 2, .proj_dim = proj, .no_final_norm = nofinal,             \
     .tied_embed = 1, .cls_head = PB_CLS_LINEAR_NOBIAS, .published = pub, .names = &g_opt}
#define LLAMA(nm, L, C, H, KV, HD, F, V, tied, names_, qkvb, pub)                                               \
    {.name = nm, .arch = PB_ARCH_DECODER, .causal = 1, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = KV, \
     .head_dim = HD, .d_ff = F, .ffn = PB_FFN_SWIGLU, .norm = PB_NORM_RMSNORM, .bias = 0, .qkv_bias = qkvb,      \
     .pos = PB_POS_ROPE, .vocab = V, .max_seq = 4096, .tied_embed = tied, .cls_head = PB_CLS_LINEAR_NOBIAS,       \
     .published = pub, .names = names_}
#define VIT(nm, L, C, H, pub)                                                                                   \
    {.name = nm, .arch = PB_ARCH_VISION, .n_layer = L, .d_model = C, .n_head = H, .n_kv_head = H, .d_ff = 4 * (C), \
     .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .pos = PB_POS_LEARNED, .max_seq = 197,            \
     .image = 224, .patch = 16, .channels = 3, .pooler = 1, .own_head = PB_HEAD_CLS, .own_labels = 1000,          \
     .published = pub, .names = &g_vit}

static const pb_model_desc g_zoo[] = {
    GPT2("gpt2", 12, 768, 12, 124439808LL),
    GPT2("gpt2-medium", 24, 1024, 16, 354823168LL),
    GPT2("gpt2-large", 36, 1280, 20, 774030080LL),
    GPT2("gpt2-xl", 48, 1600, 25, 1557611200LL),
    BERT("bert-base-uncased", 12, 768, 12, 30522, 109482240LL),
    BERT("bert-base-cased", 12, 768, 12, 28996, 108310272LL),
    BERT("bert-large-uncased", 24, 1024, 16, 30522, 335141888LL),
    ROBERTA("roberta-base", 12, 768, 12, 124645632LL),
    ROBERTA("roberta-large", 24, 1024, 16, 355359744LL),
    T5("t5-base", 12, 768, 12, 3072, 32128, 1, PB_FFN_GELU, &g_t5, 222903552LL),
    T5("t5-large", 24, 1024, 16, 4096, 32128, 1, PB_FFN_GELU, &g_t5, 737668096LL),
    T5("flan-t5-large", 24, 1024, 16, 2816, 32128, 0, PB_FFN_GEGLU, &g_t5v11, 783150080LL),
    T5("flan-t5-xl", 24, 2048, 32, 5120, 32128, 0, PB_FFN_GEGLU, &g_t5v11, 2849757184LL),
    T5("mt0-large", 24, 1024, 16, 2816, 250112, 0, PB_FFN_GEGLU, &g_mt5, 1229581312LL),
    {.name = "bloomz-560m", .arch = PB_ARCH_DECODER, .causal = 1, .n_layer = 24, .d_model = 1024, .n_head = 16,
     .n_kv_head = 16, .d_ff = 4096, .ffn = PB_FFN_GELU, .norm = PB_NORM_LAYERNORM, .bias = 1, .fused_qkv = 1,
     .pos = PB_POS_NONE /* ALiBi: no parameters */, .vocab = 250880, .max_seq = 2048, .embed_norm = 1,
     .tied_embed = 1, .cls_head = PB_CLS_LINEAR_NOBIAS, .published = 559214592LL, .names = &g_bloom},
    OPT("opt-125m", 12, 768, 12, 0, 0, 125239296LL),
    OPT("opt-350m", 24, 1024, 16, 512, 1, 331196416LL),
    OPT("opt-6.7b", 32, 4096, 32, 0, 0, 6658473984LL),
    LLAMA("llama-2-7b", 32, 4096, 32, 32, 0, 11008, 32000, 0, &g_llama, 0, 6738415616LL),
    LLAMA("llama-2-13b", 40, 5120, 40, 40, 0, 13824, 32000, 0, &g_llama, 0, 13015864320LL),
    LLAMA("llama-2-70b", 80, 8192, 64, 8, 0, 28672, 32000, 0, &g_llama, 0, 68976648192LL),
    LLAMA("meta-llama-3-8b", 32, 4096, 32, 8, 0, 14336, 128256, 0, &g_llama, 0, 8030261248LL),
    LLAMA("llama-3.2-1b", 16, 2048, 32, 8, 64, 8192, 128256, 1, &g_llama, 0, 1235814400LL),
    LLAMA("llama-3.2-3b", 28, 3072, 24, 8, 128, 8192, 128256, 1, &g_llama, 0, 3212749824LL),
    LLAMA("mistral-7b", 32, 4096, 32, 8, 0, 14336, 32000, 0, &g_mistral, 0, 7241732096LL),
    LLAMA("qwen2.5-3b", 36, 2048, 16, 2, 128, 11008, 151936, 1, &g_qwen2, 1, 3085938688LL),
    VIT("vit-base-patch16-224", 12, 768, 12, 86567656LL),
    VIT("vit-large-patch16-224", 24, 1024, 16, 304326632LL),
};

const pb_model_desc *pb_zoo_at(int i) {
    if (i < 0 || (size_t)i >= sizeof g_zoo / sizeof g_zoo[0]) return NULL;
    return &g_zoo[i];
}

const pb_model_desc *pb_zoo_find(const char *name) {
    for (size_t i = 0; i < sizeof g_zoo / sizeof g_zoo[0]; i++)
        if (!strcmp(g_zoo[i].name, name)) return &g_zoo[i];
    return NULL;
}
