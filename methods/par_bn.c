/* par_bn.c — parallel adapter on the MLP (He et al. 2022, "Towards a Unified View of
 * Parameter-Efficient Transfer Learning"; AdapterHub's ParBnConfig).
 *
 * What it is: in every layer, a bottleneck MLP beside the MLP sub-layer, reading the same
 * input x (N,C) as the MLP (its normalised input, ln_2's output) and added, scaled, to the MLP
 * output h before the residual add (bottleneck.h, code in seq_bn.c):
 *   h' = h + s * up(act(down(x)))           down: Wd (r,C) + bd (r);  up: Wu (C,r) + bu (C)
 *   (gate=1: h' = h + s * g * up(act(down(x))), g = sigmoid(x Wg^T + bg) per token)
 * r = max(1, floor(C / reduction_factor)) unless r is given (1 <= r <= C).
 * Defaults (AdapterHub ParBnConfig, src/adapters/configuration/adapter_config.py):
 * reduction_factor 2, non_linearity relu, scaling 4.0, init_weights mam_adapter.
 *
 * Initialisation ("mam_adapter", src/adapters/methods/modeling.py): down kaiming_uniform
 * (a=sqrt(5)) = U(+-1/sqrt(C)), biases 0, up weight and bias zero: the model starts exactly at
 * the base model. ("bert": down N(0, 0.02^2), up still zero.)
 *
 * Closed form (L layers, width C; the task head is the framework's to count):
 *   trainable = L (2 r C + r + C [+ C + 1 with the gate]).
 * Saved per layer and row: u (r), a (r) [+ y (C), g (1)] (x is the model's saved ln_2 output).
 * Workspace per row: C + r [+ 1]. Merge: none (non-linear in x).
 *
 * Deviations: the adapter reads the MLP's normalised input x, as in He et al. (Eq. for the
 * parallel adapter: the input of the sub-layer). AdapterHub's ParallelAdapter.pre_forward
 * feeds it `input_tensor`, which in its pre-LN GPT-2 wiring is the residual stream before ln_2;
 * we follow the paper. Per-token gate (AdapterHub averages it over the sequence). No
 * leave_out, dropout, layer norms, learned scaling or PHM.
 */
#include "bottleneck.h"

static const pb_hparam par_bn_hparams[] = {PB_BN_HPARAMS("2", "relu", "4.0", "mam_adapter")};

static pb_status par_bn_attach(pb_method_ctx *c) { return pb_bn_attach(c, 1u << PB_SUB_FFN, 1); }

static size_t par_bn_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)head;
    return pb_bn_closed_form(pb_method_find("par_bn"), hp, d, 1);
}

/* The default is relu; the examples add smooth non-linearities (see seq_bn.c). */
static const char *const par_bn_examples[] = {
    "par_bn:non_linearity=gelu", "par_bn:r=2,gate=1,non_linearity=swish",
    "par_bn:reduction_factor=8,scaling=1,init_weights=bert,non_linearity=tanh", NULL};

const pb_method pb_method_par_bn = {
    .version = PB_METHOD_VERSION,
    .name = "par_bn",
    .category = PB_CAT_ADDITIVE,
    .summary = "parallel bottleneck adapter beside the MLP (He et al.): h + s*up(act(down(x)))",
    .paper = "He et al. 2022, Towards a Unified View of Parameter-Efficient Transfer Learning (arXiv:2110.04366)",
    .hparams = par_bn_hparams,
    .n_hparams = sizeof par_bn_hparams / sizeof par_bn_hparams[0],
    .state_size = sizeof(pb_bn_state),
    .identity_at_init = 1,
    .examples = par_bn_examples,
    .attach = par_bn_attach,
    .closed_form = par_bn_closed_form,
    .init = pb_bn_init,
    .sublayer_fwd = pb_bn_fwd,
    .sublayer_bwd = pb_bn_bwd,
    .flops = pb_bn_flops,
};
