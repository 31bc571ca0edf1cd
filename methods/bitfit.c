/* bitfit.c — BitFit: only the bias terms train (and the task head).
 *
 * Every bias of the backbone: the q/k/v/o, MLP and LayerNorm biases (Ben Zaken et al. train
 * "the bias terms" of BERT, LayerNorm biases included). A backbone without any (LLaMA-style: no
 * linear biases, RMSNorm; T5) is refused at attach with that reason: BitFit would train nothing.
 * Closed form: trainable = every bias of the backbone, sum over sites of (occurrences x OC of
 * the sites with a bias: pb_desc_bias_params); the task head is the framework's to count
 * (method.h). GPT-style backbone, L layers, width C, MLP width F:
 *   L * (4C [q,k,v,o] + F [up] + C [down] + 2C [ln_1, ln_2]) + C [ln_f].
 */
#include "method.h"

static pb_status bitfit_attach(pb_method_ctx *c) {
    int n = 0;
    for (int i = 0; i < pb_ctx_n_base(c); i++) {
        const pb_tensor *t = pb_ctx_base(c, i);
        if (t->is_bias && t->site != PB_SITE_HEAD) pb_ctx_unfreeze(c, i), n++;
    }
    if (!n)
        return pb_errorf(PB_EINVAL,
                         "bitfit: %s has no bias terms (its linear layers have none and its norms are %s), so "
                         "BitFit would train nothing; use a backbone with biases, or `head` for the task head alone",
                         c->d->name, c->d->norm == PB_NORM_RMSNORM ? "RMSNorm, without bias" : "without bias");
    return PB_OK;
}

static size_t bitfit_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)hp;
    return pb_desc_bias_params(d, head);
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
