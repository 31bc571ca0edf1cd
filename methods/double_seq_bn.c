/* double_seq_bn.c — Houlsby adapters: a bottleneck adapter after the attention output AND after
 * the MLP output of every layer (Houlsby et al. 2019; AdapterHub's DoubleSeqBnConfig).
 *
 * What it is: two sequential bottleneck units per layer (bottleneck.h, code in seq_bn.c), on
 * the attention sub-layer's output (after attn.o) and the MLP sub-layer's output (after
 * mlp.down), each before its residual add:
 *   h' = h + s * up(act(down(h)))           down: Wd (r,C) + bd (r);  up: Wu (C,r) + bu (C)
 *   (gate=1: h' = h + s * g * up(act(down(h))), g = sigmoid(h Wg^T + bg) per token)
 * r = max(1, floor(C / reduction_factor)) unless r is given (1 <= r <= C).
 * Defaults (AdapterHub DoubleSeqBnConfig, src/adapters/configuration/adapter_config.py):
 * reduction_factor 16, non_linearity swish, mh_adapter and output_adapter, scaling 1.0.
 *
 * Initialisation: down N(0, 0.02^2) ("bert", AdapterHub's default) or U(+-1/sqrt(C))
 * ("mam_adapter"), biases 0; up weight and bias zero, so both adapters start as the identity
 * (Houlsby et al.'s near-identity initialisation, exactly).
 *
 * Closed form (L layers, width C; the task head is the framework's to count):
 *   trainable = 2 L (2 r C + r + C [+ C + 1 with the gate]).
 * Saved per adapter and row: h (C), u (r), a (r) [+ y (C), g (1)]; workspace per row C + r [+ 1].
 * Merge: none (non-linear).
 *
 * Deviations: as seq_bn.c (zero up-projection init; the adapter reads the sub-layer output h,
 * not h plus the residual stream as AdapterHub's pre-LN GPT-2 wiring does; per-token gate; no
 * leave_out, dropout, layer norms or PHM).
 */
#include "bottleneck.h"

static const pb_hparam double_seq_bn_hparams[] = {PB_BN_HPARAMS("16", "swish", "1.0", "bert")};

static pb_status double_seq_bn_attach(pb_method_ctx *c) {
    return pb_bn_attach(c, (1u << PB_SUB_ATTN) | (1u << PB_SUB_FFN), 0);
}

static size_t double_seq_bn_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)head;
    return pb_bn_closed_form(pb_method_find("double_seq_bn"), hp, d, 2);
}

static const char *const double_seq_bn_examples[] = {
    "double_seq_bn:reduction_factor=4", "double_seq_bn:r=2,non_linearity=gelu_new,use_gating=1",
    "double_seq_bn:r=1,non_linearity=relu,init_weights=mam_adapter,scaling=2", NULL};

const pb_method pb_method_double_seq_bn = {
    .version = PB_METHOD_VERSION,
    .name = "double_seq_bn",
    .category = PB_CAT_ADDITIVE,
    .summary = "Houlsby adapters: bottleneck adapters after attention and after the MLP",
    .paper = "Houlsby et al. 2019, Parameter-Efficient Transfer Learning for NLP (arXiv:1902.00751)",
    .hparams = double_seq_bn_hparams,
    .n_hparams = sizeof double_seq_bn_hparams / sizeof double_seq_bn_hparams[0],
    .state_size = sizeof(pb_bn_state),
    .identity_at_init = 1,
    .examples = double_seq_bn_examples,
    .attach = double_seq_bn_attach,
    .closed_form = double_seq_bn_closed_form,
    .init = pb_bn_init,
    .sublayer_fwd = pb_bn_fwd,
    .sublayer_bwd = pb_bn_bwd,
    .flops = pb_bn_flops,
};
