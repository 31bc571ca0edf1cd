/* ln_tuning.c — LN tuning: only the LayerNorm gains and biases train (and the task head).
 *
 * Zhao et al. 2023 tune the LayerNorm parameters of a frozen transformer; Hugging Face PEFT's
 * LNTuningConfig targets, for GPT-2, ln_1, ln_2 and ln_f (TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_
 * MODULES_MAPPING), the default here. `targets` takes any of ln_1 (input_layernorm), ln_2
 * (post_attention_layernorm), ln_f (norm, final_layer_norm).
 * The parameters are trained in place (select hook); nothing is added, nothing to merge, and the
 * model starts exactly at the base model.
 * Closed form: the sum over targeted norms (each occurrence) of their gain and bias (C + C for
 * LayerNorm, C for RMSNorm; pb_norms_closed_form: an encoder-decoder's decoder blocks add the
 * cross-attention norm and each stack has its final norm, BERT-style embeddings have a norm); the
 * task head is the framework's to count. GPT-style backbone, L layers, width C, all three
 * targeted:
 *   trainable = L (2C [ln_1] + 2C [ln_2]) + 2C [ln_f].
 * Counting: PEFT's LNTuningLayer trains a deep copy of each targeted LayerNorm, so its "all
 * params" includes the copies (2C per norm). Here the norms train in place, and are counted as
 * PEFT counts them (pb_ctx_unfreeze_copy): trainable the same, "all" = base + the copies.
 */
#include "method.h"

#define LN_SITES                                                                                                  \
    ((1u << PB_SITE_LN1) | (1u << PB_SITE_LN2) | (1u << PB_SITE_LN_F) | (1u << PB_SITE_LN_X) |                     \
     (1u << PB_SITE_LN_EMBED))

static const pb_hparam ln_hparams[] = {
    {"targets", "target_modules", PB_HP_SITES, "ln_1+ln_2+ln_f", 0, 0, NULL,
     "LayerNorms to train (ln_1, ln_2, ln_f or Hugging Face module names, joined by +)"},
};

static pb_status ln_attach(pb_method_ctx *c) {
    uint32_t sites;
    pb_status st = pb_ctx_sites(c, "targets", LN_SITES, &sites);
    if (st) return st;
    for (int i = 0; i < pb_ctx_n_base(c); i++)
        if (sites & (1u << pb_ctx_base(c, i)->site)) pb_ctx_unfreeze_copy(c, i);
    return PB_OK;
}

static size_t ln_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    return pb_norms_closed_form(d, head, pb_hpv_sites_on(hp, 0, d, LN_SITES));
}

static const char *const ln_examples[] = {"ln_tuning", "ln_tuning:targets=ln_2+norm", "ln_tuning:targets=ln_1", NULL};

const pb_method pb_method_ln_tuning = {
    .version = PB_METHOD_VERSION,
    .name = "ln_tuning",
    .category = PB_CAT_SELECTIVE,
    .summary = "LN tuning: only the LayerNorm gains and biases train",
    .paper = "Zhao et al. 2023, Tuning LayerNorm in Attention: Towards Efficient Multi-Modal LLM Finetuning "
             "(arXiv:2312.11420)",
    .hparams = ln_hparams,
    .hf_map = {[0] = "ln_tuning"},
    .n_hparams = sizeof ln_hparams / sizeof ln_hparams[0],
    .identity_at_init = 1,
    .examples = ln_examples,
    .attach = ln_attach,
    .closed_form = ln_closed_form,
    .flops = pb_flops_none,
};
