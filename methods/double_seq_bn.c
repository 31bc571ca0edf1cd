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
 * layer_norms=1 (Houlsby et al., Fig. 2 caption: "the layer normalization parameters" train with
 * the adapters): every norm of the backbone trains too, in place (ln_1, ln_2, ln_f on the
 * GPT-style backbone). Default 0, as AdapterHub, which trains the adapters only.
 *
 * Closed form (L layers, width C; the task head is the framework's to count):
 *   trainable = 2 L (2 r C + r + C [+ C + 1 with the gate])
 *               [+ every norm with layer_norms: L 4 C + 2 C on the GPT-style backbone;
 *                pb_norms_closed_form].
 * Saved per adapter and row: h (C), u (r), a (r) [+ y (C), g (1)]; workspace per row C + r [+ 1].
 * Merge: none (non-linear).
 *
 * Placement: as AdapterHub's DoubleSeqBnConfig (original_ln_before=False, residual_before_ln=True):
 * on a pre-LN GPT-2 it computes out = x + h + U f(D h), the adapter reading the sub-layer output
 * h, the residual stream untouched. This is what the hook does, so the placement matches
 * AdapterHub (unlike seq_bn's SeqBnConfig, which reads h plus the residual there: seq_bn.c).
 * Deviations from the paper (Houlsby et al.): the up projection starts at exactly zero (the
 * paper's near-identity initialisation, taken to its limit; AdapterHub's "mam_adapter" init does
 * the same, its "bert" init draws it from N(0, 0.02^2)); the layer norms train only with
 * layer_norms=1 (AdapterHub's default is the survey's); per-token gate (seq_bn.c); no leave_out,
 * dropout, extra layer norms inside the adapter or PHM.
 */
#include "bottleneck.h"

static const pb_hparam double_seq_bn_hparams[] = {
    PB_BN_HPARAMS("16", "swish", "1.0", "bert"),
    {"layer_norms", "train_layer_norms", PB_HP_BOOL, "0", 0, 1, NULL,
     "also train every layer norm (Houlsby et al.; AdapterHub does not)"},
};

#define NORM_SITES                                                                                                \
    ((1u << PB_SITE_LN1) | (1u << PB_SITE_LN2) | (1u << PB_SITE_LN_F) | (1u << PB_SITE_LN_X) |                     \
     (1u << PB_SITE_LN_EMBED))

static pb_status double_seq_bn_attach(pb_method_ctx *c) {
    pb_status st = pb_bn_attach(c, (1u << PB_SUB_ATTN) | (1u << PB_SUB_FFN), 0);
    if (st || !pb_hp_bool(c, "layer_norms")) return st;
    for (int i = 0; i < pb_ctx_n_base(c); i++)
        if (NORM_SITES & (1u << pb_ctx_base(c, i)->site)) pb_ctx_unfreeze(c, i);
    return PB_OK;
}

static size_t double_seq_bn_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    const pb_method *m = pb_method_find("double_seq_bn");
    size_t n = pb_bn_closed_form(m, hp, d, 2);
    return n + (pb_hpv_num(m, hp, "layer_norms") != 0 ? pb_norms_closed_form(d, head, NORM_SITES) : 0);
}

static const char *const double_seq_bn_examples[] = {
    "double_seq_bn:reduction_factor=4", "double_seq_bn:r=2,non_linearity=gelu_new,use_gating=1",
    "double_seq_bn:r=1,non_linearity=relu,init_weights=mam_adapter,scaling=2",
    "double_seq_bn:r=2,non_linearity=tanh,layer_norms=1", NULL};

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
