/* bitfit.c — BitFit: only the bias terms train (and the task head).
 *
 * Every bias of the backbone: the q/k/v/o, MLP and LayerNorm biases (Ben Zaken et al. train
 * "the bias terms" of BERT, LayerNorm biases included).
 * Closed form (GPT-style backbone, L layers, width C, MLP width F, K labels):
 *   trainable = L * (4C [q,k,v,o] + F [up] + C [down] + 2C [ln_1, ln_2]) + C [ln_f] + (K*C + K).
 */
#include "method.h"

static pb_status bitfit_attach(pb_method_ctx *c) {
    for (int i = 0; i < pb_ctx_n_base(c); i++) {
        const pb_tensor *t = pb_ctx_base(c, i);
        if (t->is_bias && t->site != PB_SITE_HEAD) pb_ctx_unfreeze(c, i);
    }
    return PB_OK;
}

static size_t bitfit_closed_form(const pb_hp_values *hp, const pb_model_desc *d, int K) {
    (void)hp;
    size_t L = (size_t)d->n_layer, C = (size_t)d->d_model, F = (size_t)d->d_ff;
    return L * (4 * C + F + C + 2 * C) + C + pb_head_closed_form(d, K);
}

const pb_method pb_method_bitfit = {
    .version = PB_METHOD_VERSION,
    .name = "bitfit",
    .category = PB_CAT_SELECTIVE,
    .summary = "BitFit: only bias terms train",
    .paper = "Ben Zaken et al. 2022, BitFit: Simple Parameter-efficient Fine-tuning (arXiv:2106.10199)",
    .identity_at_init = 1,
    .attach = bitfit_attach,
    .closed_form = bitfit_closed_form,
    .flops = pb_flops_none,
};
