/* prompt_tuning.c — prompt tuning: P trainable virtual token embeddings in front of the input.
 *
 * Lester et al. 2021 ("The Power of Scale for Parameter-Efficient Prompt Tuning"); Hugging Face
 * PEFT PromptTuningConfig / PromptEmbedding (src/peft/tuners/prompt_tuning/).
 *
 *   x' = [E ; embed(tokens)]      E (P, C) trainable, the input embeddings of P virtual tokens
 * The model adds the learned positions 0..P-1 to E and P.. to the real tokens (as Hugging Face
 * does: the concatenated inputs_embeds get the ordinary positions), masks nothing on the virtual
 * tokens, ignores them as LM targets, and pools the real <cls> / last real token for
 * classification (models/model.c embed hook).
 *
 * Initialisation (prompt_tuning_init, Hugging Face's values):
 *   RANDOM        E ~ N(0, 1): torch.nn.Embedding's default (Hugging Face's default init).
 *   SAMPLE_VOCAB  rows of the base token embedding wte at P token ids drawn uniformly from the
 *                 whole vocabulary, as Hugging Face does (Lester et al. sample the 5,000 most
 *                 common tokens).
 *   TEXT          rows of wte at the ids of prompt_tuning_init_text, truncated to P or
 *                 repeated (ceil(P / n) times, then truncated) as Hugging Face does. The ids come
 *                 from the model's tokenizer (pb_model.tok: the backbone checkpoint's, byte or
 *                 BPE; byte when unset, models/tokenizer.h), without special tokens (GPT-2's
 *                 tokenizer adds none either). The text is required with TEXT (as in Hugging
 *                 Face), cannot contain ',' (it separates the spec's key=value pairs), and every
 *                 token of it must be in the model's vocabulary (attach refuses otherwise).
 *
 * num_virtual_tokens has no default in Hugging Face (it must be given); ours, 20, is the value
 * of its examples (Lester et al. try 1 to 150 and use 100 in their main runs).
 *
 * Not identity at initialisation: the virtual tokens change every real token's context.
 * Merge: not possible (NULL).
 * Closed form: trainable = P C, doubled for an encoder-decoder with its LM head (Hugging Face's
 * num_transformer_submodules = 2: the decoder gets its own virtual tokens; the task head is the
 * framework's to count).
 * Saved activations and workspace: none (the prompt is copied into the model's own buffer).
 */
#include "method.h"
#include "kernels.h"
#include "peft.h"
#include "models/tokenizer.h"

#include <string.h>

enum { HP_P, HP_INIT, HP_TEXT };

static const pb_hparam pt_hparams[] = {
    [HP_P] = {"num_virtual_tokens", "n_tokens prompt_length", PB_HP_INT, "20", 1, 4096, NULL,
              "P, the number of virtual tokens (Lester et al.: 1 to 150, 100 in their main runs)"},
    [HP_INIT] = {"prompt_tuning_init", "init", PB_HP_ENUM, "RANDOM", 0, 0, "RANDOM|TEXT|SAMPLE_VOCAB",
                 "RANDOM: N(0,1); SAMPLE_VOCAB: rows of random vocabulary tokens; TEXT: rows of the init "
                 "text's tokens"},
    [HP_TEXT] = {"prompt_tuning_init_text", "init_text", PB_HP_TEXT, "", 0, 0, NULL,
                 "the text whose token embeddings initialise the prompt (prompt_tuning_init=TEXT; no ',')"},
};

enum { INIT_RANDOM, INIT_TEXT, INIT_SAMPLE_VOCAB };

typedef struct {
    int P, C;
    int emb; /* tensor handle: (P, C) */
} pt_state;

/* The token ids of the init text: ids (cap) receives the first cap of them; returns how many
 * the whole text has. */
static size_t text_tokens(const pb_method_ctx *c, int32_t *ids, size_t cap) {
    const char *text = pb_hp_text(c, "prompt_tuning_init_text");
    const pb_tokenizer *tk = c->peft->model ? c->peft->model->tok : NULL; /* shape-only: byte */
    return tk ? pb_tokenizer_encode(tk, ids, cap, text, strlen(text)) : pb_tok_encode(ids, cap, text, strlen(text));
}

static pb_status pt_attach(pb_method_ctx *c) {
    pt_state *s = c->state;
    s->P = (int)pb_hp_int(c, "num_virtual_tokens");
    s->C = c->d->d_model;
    if (s->P >= c->d->max_seq)
        return pb_errorf(PB_EINVAL,
                         "prompt_tuning: num_virtual_tokens=%d leaves no position for real tokens in %s (max_seq %d)",
                         s->P, c->d->name, c->d->max_seq);
    if (pb_hp_enum(c, "prompt_tuning_init") == INIT_TEXT) {
        int32_t ids[PB_HP_TEXT_MAX + 1];
        size_t n = text_tokens(c, ids, sizeof ids / sizeof ids[0]);
        if (n == 0)
            return pb_errorf(PB_EINVAL, "prompt_tuning: prompt_tuning_init=TEXT needs prompt_tuning_init_text");
        for (size_t i = 0; i < n; i++)
            if (ids[i] >= c->d->vocab)
                return pb_errorf(PB_EINVAL,
                                 "prompt_tuning: prompt_tuning_init_text: token %d of \"%s\" is outside the "
                                 "vocabulary of %s (%d tokens)",
                                 (int)ids[i], pb_hp_text(c, "prompt_tuning_init_text"), c->d->name, c->d->vocab);
    }
    pb_status st = pb_ctx_hook_embed(c, s->P);
    if (st) return st;
    s->emb = pb_ctx_param(c, "prompt_encoder.embedding.weight", -1, PB_SITE_EMBED, s->P * pb_ctx_submodules(c),
                          s->C, 1);
    return PB_OK;
}

static size_t pt_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    const pb_method *m = pb_method_find("prompt_tuning");
    size_t P = (size_t)pb_hpv_num(m, hp, "num_virtual_tokens"), C = (size_t)d->d_model;
    return P * (size_t)pb_hf_submodules(d, head) * C;
}

static void pt_init(pb_method_ctx *c, pb_rng *rng) {
    pt_state *s = c->state;
    pb_tensor *e = pb_ctx_tensor(c, s->emb);
    const pb_tensor *wte = pb_ctx_site_weight(c, -1, PB_SITE_EMBED); /* (V, C) */
    int init = pb_hp_enum(c, "prompt_tuning_init");
    if (init == INIT_RANDOM) {
        pb_rng_fill_normal(rng, e->data, e->numel, 1.0f);
        return;
    }
    /* TEXT: the text's ids truncated to P, or repeated ceil(P / n) times and truncated */
    int32_t text[PB_HP_TEXT_MAX + 1];
    size_t n = text_tokens(c, text, sizeof text / sizeof text[0]);
    for (int i = 0; i < s->P; i++) {
        int32_t id = init == INIT_SAMPLE_VOCAB ? (int32_t)pb_rng_below(rng, (uint64_t)wte->shape[0])
                                               : text[(size_t)i % n];
        memcpy(e->data + (size_t)i * s->C, wte->data + (size_t)id * s->C, sizeof(float) * (size_t)s->C);
    }
}

static void pt_embed_fwd(pb_method_ctx *c, float *prompt) {
    pt_state *s = c->state;
    memcpy(prompt, pb_ctx_tensor(c, s->emb)->data, sizeof(float) * (size_t)s->P * s->C);
}

static void pt_embed_bwd(pb_method_ctx *c, const float *dprompt) {
    pt_state *s = c->state;
    pb_tensor *e = pb_ctx_tensor(c, s->emb);
    size_t n = (size_t)s->P * s->C;
    for (size_t i = 0; i < n; i++) e->grad[i] += dprompt[i];
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)n);
}

static const char *const pt_examples[] = {"prompt_tuning:num_virtual_tokens=3",
                                          "prompt_tuning:num_virtual_tokens=4,prompt_tuning_init=SAMPLE_VOCAB", NULL};

static void pt_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_prompt_tuning = {
    .version = PB_METHOD_VERSION,
    .name = "prompt_tuning",
    .category = PB_CAT_PROMPT,
    .summary = "prompt tuning: P trainable virtual token embeddings prepended to the input",
    .paper = "Lester et al. 2021, The Power of Scale for Parameter-Efficient Prompt Tuning (arXiv:2104.08691)",
    .hparams = pt_hparams,
    .n_hparams = sizeof pt_hparams / sizeof pt_hparams[0],
    .state_size = sizeof(pt_state),
    .examples = pt_examples,
    .attach = pt_attach,
    .closed_form = pt_closed_form,
    .init = pt_init,
    .embed_fwd = pt_embed_fwd,
    .embed_bwd = pt_embed_bwd,
    .flops = pt_flops,
};

/* FLOPs: the prompt is copied in (no arithmetic); its gradient accumulated, P C. */
static void pt_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const pt_state *s = c->state;
    if (pb_flops_embed_bwd(e)) pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)s->P * (uint64_t)s->C);
}
