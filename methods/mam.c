/* mam.c — the Mix-And-Match adapter: prefix tuning on attention + a scaled parallel adapter on
 * the MLP.
 *
 * He et al. 2022 ("Towards a Unified View of Parameter-Efficient Transfer Learning", the MAM
 * adapter, and their code, jxhe/unify-parameter-efficient-tuning: README "MAM adapter"
 * attn_mode=prefix attn_bn=30 (options.py mid_dim 800), ffn_mode=adapter ffn_option=parallel
 * ffn_adapter_scalar=4 ffn_adapter_init_option=lora ffn_bn=512 on 1024-wide BART/mBART;
 * petl_factory.py Adapter_Layer: ReLU); AdapterHub's MAMConfig (PrefixTuningConfig(
 * bottleneck_size=800) + ParBnConfig).
 *
 * It composes two ordinary instances, with their own tensors and hooks (no code of theirs here):
 *   prefix_tuning:num_virtual_tokens=P,prefix_projection=..,encoder_hidden_size=..
 *       P prefix keys/values per layer, produced by the MLP reparameterisation by default
 *       (methods/prefix_tuning.c)
 *   par_bn:reduction_factor=..|r=..,scaling=s
 *       h' = h + s up(act(down(x))) beside every MLP (act = ReLU by default), x the MLP's
 *       normalised input, down U(+-1/sqrt(C)) and up zero ("mam_adapter", the paper's
 *       LoRA-style init)
 *       (methods/par_bn.c)
 * Defaults, scaled for small backbones where the paper's are absolute: prefix length 30 (the
 * paper's l = 30), prefix_projection on (the paper's attn_mode=prefix), encoder_hidden_size 0 =
 * d_model (paper and AdapterHub: 800 for d = 1024), reduction_factor 2 = bottleneck C/2 (paper:
 * 512 for d = 1024; AdapterHub ParBnConfig's default), scaling 4 (paper), ReLU (AdapterHub).
 *
 * Not identity at initialisation (the prefix is active from the start; the adapter alone would
 * be). Merge: not possible (prefix tuning cannot be folded).
 * Closed form: prefix_tuning's + par_bn's (the task head is the framework's to count):
 *   with projection   P C + (C h + h) + (h 2 L C + 2 L C)  +  L (2 r C + r + C)
 *   (C is the key/value width kv under grouped-query attention for the prefix part.)
 *   Hugging Face's convention counts the projection MLP because it trains; the paper's
 *   parameter budget counts the prefixes left after dropping it (P 2 L C).
 * Saved activations and workspace: those of its two parts.
 */
#include "bottleneck.h"
#include "peft.h"

#include <stdio.h>
#include <string.h>

enum { HP_P, HP_PROJ, HP_HIDDEN, HP_RF, HP_R, HP_SCALING, HP_ACT };

static const pb_hparam mam_hparams[] = {
    [HP_P] = {"num_virtual_tokens", "prefix_length attn_bn", PB_HP_INT, "30", 1, 4096, NULL,
              "prefix length per layer (the paper's l = 30)"},
    [HP_PROJ] = {"prefix_projection", NULL, PB_HP_BOOL, "1", 0, 1, NULL,
                 "produce the prefixes with an MLP (the paper's attn_mode=prefix)"},
    [HP_HIDDEN] = {"encoder_hidden_size", "mid_dim", PB_HP_INT, "0", 0, 1 << 20, NULL,
                   "hidden width of the prefix MLP (0: d_model; the paper: 800 at d_model 1024)"},
    [HP_RF] = {"reduction_factor", "rf", PB_HP_FLOAT, "2", 1, 1e6, NULL,
               "adapter bottleneck = floor(d_model / reduction_factor) (the paper: 512 at d_model 1024)"},
    [HP_R] = {"r", "ffn_bn", PB_HP_INT, "0", 0, 65536, NULL,
              "adapter bottleneck directly (0: from reduction_factor)"},
    [HP_SCALING] = {"scaling", "ffn_adapter_scalar", PB_HP_FLOAT, "4", 1e-6, 1e6, NULL,
                    "constant s on the adapter output (the paper: 4)"},
    [HP_ACT] = {"non_linearity", "activation act", PB_HP_ENUM, "relu", 0, 0, PB_BN_ACT_CHOICES,
                "adapter activation (the paper and AdapterHub: relu)"},
};

/* The k-th name of a "a|b|c" choice list into out. */
static void choice_name(const char *choices, int k, char *out, size_t cap) {
    while (k-- > 0 && strchr(choices, '|')) choices = strchr(choices, '|') + 1;
    size_t n = strcspn(choices, "|");
    snprintf(out, cap, "%.*s", (int)n, choices);
}

/* The specs of the two parts, from mam's values. */
static void part_specs(const pb_hp_values *hp, char *pre, size_t npre, char *par, size_t npar) {
    const pb_method *m = pb_method_find("mam");
    snprintf(pre, npre, "prefix_tuning:num_virtual_tokens=%d,prefix_projection=%d,encoder_hidden_size=%d",
             (int)pb_hpv_num(m, hp, "num_virtual_tokens"), pb_hpv_num(m, hp, "prefix_projection") != 0,
             (int)pb_hpv_num(m, hp, "encoder_hidden_size"));
    int r = (int)pb_hpv_num(m, hp, "r");
    char size[64];
    if (r > 0) snprintf(size, sizeof size, "r=%d", r);
    else snprintf(size, sizeof size, "reduction_factor=%.17g", pb_hpv_num(m, hp, "reduction_factor"));
    char act[32];
    choice_name(mam_hparams[HP_ACT].choices, (int)pb_hpv_num(m, hp, "non_linearity"), act, sizeof act);
    snprintf(par, npar, "par_bn:%s,scaling=%.17g,non_linearity=%s,init_weights=mam_adapter", size,
             pb_hpv_num(m, hp, "scaling"), act);
}

static pb_status mam_attach(pb_method_ctx *c) {
    if (c->hp.given[HP_R] && c->hp.given[HP_RF] && pb_hp_int(c, "r") > 0)
        return pb_errorf(PB_EINVAL, "mam: give r or reduction_factor, not both (r=%ld, reduction_factor=%g)",
                         pb_hp_int(c, "r"), pb_hp_float(c, "reduction_factor"));
    if (!pb_hp_bool(c, "prefix_projection") && pb_hp_int(c, "encoder_hidden_size") > 0)
        return pb_errorf(PB_EINVAL, "mam: encoder_hidden_size=%ld needs prefix_projection=1",
                         pb_hp_int(c, "encoder_hidden_size"));
    char pre[256], par[256];
    part_specs(&c->hp, pre, sizeof pre, par, sizeof par);
    pb_method_ctx *part;
    pb_status st = pb_ctx_compose(c, pre, &part);
    if (st) return st;
    return pb_ctx_compose(c, par, &part);
}

static size_t mam_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    char pre[256], par[256];
    part_specs(hp, pre, sizeof pre, par, sizeof par);
    return pb_part_closed_form(pre, d, head) + pb_part_closed_form(par, d, head);
}

/* The default (ReLU adapter) is gradient-checked too; the examples add smooth activations. */
static const char *const mam_examples[] = {
    "mam:num_virtual_tokens=2,encoder_hidden_size=3,non_linearity=swish",
    "mam:num_virtual_tokens=3,prefix_projection=0,r=3,scaling=2,non_linearity=tanh", NULL};

const pb_method pb_method_mam = {
    .version = PB_METHOD_VERSION,
    .name = "mam",
    .category = PB_CAT_HYBRID,
    .summary = "MAM adapter: prefix tuning on attention + scaled parallel adapter on the MLP (He et al.)",
    .paper = "He et al. 2022, Towards a Unified View of Parameter-Efficient Transfer Learning (arXiv:2110.04366)",
    .hparams = mam_hparams,
    .n_hparams = sizeof mam_hparams / sizeof mam_hparams[0],
    .examples = mam_examples,
    .attach = mam_attach,
    .closed_form = mam_closed_form,
    .flops = pb_ctx_parts_flops, /* its parts\' own flops functions */
};
