/* partial.c — partial fine-tuning: only the last k transformer layers train, with the final
 * LayerNorm and the task head; everything below stays frozen.
 *
 * The classic "freeze the bottom, tune the top" baseline (e.g. Lee et al. 2019, "What would Elsa
 * do? Freezing layers during transformer fine-tuning"). The hyperparameter is `layers` (k,
 * default 1), with the aliases `k` and LLaMA-Factory's `freeze_trainable_layers` (its freeze
 * tuning trains the last n layers for n > 0; its "first n layers" for n < 0 is not offered).
 * Every tensor of layers L-k .. L-1 trains in place (LayerNorms, q/k/v/o, MLP, with biases), and
 * ln_f. With the LM head, the head is tied to the token embedding and stays frozen (training it
 * would train the embedding). Backward stops at layer L-k (the model's plan), so the saved
 * activations and backward FLOPs are those of k layers.
 * Closed form: every tensor of the top k blocks (their sites' shapes) plus ln_f; the task head is
 * the framework's to count. GPT-style backbone, width C, MLP width F:
 *   trainable = k (4C^2 + 2CF + 9C + F) + 2C [ln_f]
 *   (per layer: ln_1 2C, q/k/v/o 4(C^2 + C), ln_2 2C, up FC + F, down CF + C).
 */
#include "method.h"

static const pb_hparam partial_hparams[] = {
    {"layers", "k freeze_trainable_layers", PB_HP_INT, "1", 1, 65536, NULL, "number of top layers that train"},
};

static pb_status partial_attach(pb_method_ctx *c) {
    int L = c->d->n_layer, k = (int)pb_hp_int(c, "layers");
    if (k > L)
        return pb_errorf(PB_EINVAL, "partial: layers=%d is more than the %d layers of %s; use layers <= %d", k, L,
                         c->d->name, L);
    for (int i = 0; i < pb_ctx_n_base(c); i++) {
        const pb_tensor *t = pb_ctx_base(c, i);
        if (t->layer >= L - k || t->site == PB_SITE_LN_F) pb_ctx_unfreeze(c, i);
    }
    return PB_OK;
}

static size_t partial_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    int L = d->n_layer, k = (int)hp->num[0];
    size_t n = (size_t)pb_desc_site_count(d, head, PB_SITE_LN_F) * pb_desc_site_params(d, PB_SITE_LN_F);
    for (int l = L - k; l < L; l++) /* every tensor of the top k blocks */
        for (int s = 0; s < PB_NSITE; s++)
            if (pb_desc_layer_has(d, l, (pb_site)s)) n += pb_desc_site_params(d, (pb_site)s);
    return n;
}

static const char *const partial_examples[] = {"partial", "partial:layers=2", NULL};

const pb_method pb_method_partial = {
    .version = PB_METHOD_VERSION,
    .name = "partial",
    .category = PB_CAT_SELECTIVE,
    .summary = "partial fine-tuning: only the last k layers (and ln_f, the head) train",
    .paper = "Lee et al. 2019, What Would Elsa Do? Freezing Layers During Transformer Fine-Tuning (arXiv:1911.03090)",
    .hparams = partial_hparams,
    .n_hparams = sizeof partial_hparams / sizeof partial_hparams[0],
    .identity_at_init = 1,
    .examples = partial_examples,
    .attach = partial_attach,
    .closed_form = partial_closed_form,
    .flops = pb_flops_none,
};
