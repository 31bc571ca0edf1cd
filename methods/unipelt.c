/* unipelt.c — UniPELT: gated LoRA + gated prefix tuning + gated sequential adapter.
 *
 * Mao et al. 2022 ("UniPELT: A Unified Framework for Parameter-Efficient Language Model Tuning",
 * arXiv:2110.07577, section 3; their code morningmoni/UniPELT: lora_layers.py LoRA_Linear
 * add_gate, transformers/models/bert/modeling_bert.py prefix_gate, the adapters' gate), and
 * AdapterHub's UniPELTConfig = PrefixTuningConfig(prefix_length=10) + SeqBnConfig(
 * reduction_factor=16) + LoRAConfig(r=8, alpha=2) (r=8 alone, so alpha 8, in older releases;
 * its gated LoRA multiplies by the gate instead of alpha / r, so alpha has no effect), each with
 * use_gating=True.
 *
 * Each submodule is switched on or off by a learned gate in (0, 1), so training can pick, per
 * layer (and per input), the mix of methods that suits the task. It composes three ordinary
 * instances, with their own tensors and hooks (no code of theirs here); the gates are options of
 * the part methods:
 *   lora:r=..,alpha=..,targets=q_proj+v_proj,gate=1                           (methods/lora.c)
 *       y = x W^T + b + g_L ⊙ (s x A^T B^T),  g_L = sigmoid(x W_gL^T + b_gL) per token,
 *       W_gL (1, IC) per target (one gate value, not per head, as the reference)
 *   prefix_tuning:num_virtual_tokens=P,prefix_projection=1,gate=1   (methods/prefix_tuning.c)
 *       layer l's prefix keys and values times g_P,b = mean over sequence b's real tokens of
 *       sigmoid(x W_gP^T + b_gP), x the layer's ln_1 output, W_gP (1, C) per layer
 *   seq_bn:reduction_factor=16,gate=1                                          (methods/seq_bn.c)
 *       h' = h + g_A ⊙ up(act(down(h))) after every MLP,  g_A = sigmoid(h W_gA^T + b_gA) per token
 * Defaults are the paper's (section 4.1; AdapterHub's UniPELTConfig reproduces them): prefix
 * length 10 with the MLP reparameterisation (encoder_hidden_size 0 = d_model here; AdapterHub's
 * bottleneck_size 512 at d_model 768), adapter reduction factor 16 (bottleneck 48 at d_model 768)
 * with ReLU, LoRA rank 8 on the query and value projections. They are relative or small, so they
 * also fit small backbones (r must stay <= d_model; the bottleneck is at least 1).
 * LoRA's scale: both references let the gate replace alpha/r (the update is g B A x); lora's gate
 * multiplies s = alpha/r, so lora_alpha 0 (the default) passes alpha = r, s = 1, which is the
 * reference exactly; a positive lora_alpha sets s = lora_alpha / r.
 *
 * Classification only (needs_cls_head): the prefix gate averages over the whole sequence, so in a
 * causal language model later tokens would change earlier predictions (the reference trains
 * BERT on GLUE). Not identity at initialisation (prefix tuning is active from the start; the
 * LoRA and adapter branches start at zero). Merge: not possible (prefix tuning and the adapter
 * cannot be folded, and a gated LoRA depends on its input).
 *
 * Closed form (GPT-style backbone, L layers, width C, MLP width F, K labels; kv = C without
 * grouped-query attention): the sum of the parts' closed forms (the task head is the framework's):
 *   lora     sum over targets of r (IC + OC) + (IC + 1)        q, v: L (2 r 2C + 2 (C + 1))
 *   prefix   P kv + (kv h + h) + (h 2 L kv + 2 L kv) + L (C + 1)   (projection; else P 2 L kv + L (C + 1))
 *   seq_bn   L (2 b C + b + C + C + 1),  b = max(1, floor(C / reduction_factor)) or adapter_size
 * Saved activations and workspace: those of its three parts.
 *
 * Deviations (each documented in the part's file): the LoRA and adapter gates are per token
 * (the references average them over the sequence too, which would break causality in a
 * decoder); the prefix gate averages over real tokens only (the references include padding);
 * gate biases start at 0 (the references keep PyTorch's default uniform bias init for the LoRA
 * and prefix gates).
 */
#include "bottleneck.h"
#include "peft.h"

#include <stdio.h>
#include <string.h>

enum { HP_R, HP_ALPHA, HP_LDROP, HP_TARGETS, HP_P, HP_PROJ, HP_HIDDEN, HP_RF, HP_AR, HP_ACT };

static const pb_hparam uni_hparams[] = {
    [HP_R] = {"r", "lora_r", PB_HP_INT, "8", 1, 65536, NULL, "LoRA rank (the paper: 8)"},
    [HP_ALPHA] = {"lora_alpha", "alpha", PB_HP_FLOAT, "0", 0, 1e6, NULL,
                  "LoRA scale s = lora_alpha / r; 0: s = 1, the gate alone scales the update (the paper)"},
    [HP_LDROP] = {"lora_dropout", NULL, PB_HP_FLOAT, "0", 0, 0.99, NULL, "dropout on the LoRA input"},
    [HP_TARGETS] = {"lora_targets", "target_modules", PB_HP_SITES, "q_proj+v_proj", 0, 0, NULL,
                    "linear sites LoRA adapts (the paper: query and value)"},
    [HP_P] = {"num_virtual_tokens", "prefix_length", PB_HP_INT, "10", 1, 4096, NULL,
              "prefix length per layer (the paper: 10)"},
    [HP_PROJ] = {"prefix_projection", NULL, PB_HP_BOOL, "1", 0, 1, NULL,
                 "produce the prefixes with an MLP (the paper and AdapterHub)"},
    [HP_HIDDEN] = {"encoder_hidden_size", "mid_dim", PB_HP_INT, "0", 0, 1 << 20, NULL,
                   "hidden width of the prefix MLP (0: d_model; AdapterHub: 512)"},
    [HP_RF] = {"reduction_factor", "rf", PB_HP_FLOAT, "16", 1, 1e6, NULL,
               "adapter bottleneck = max(1, floor(d_model / reduction_factor)) (the paper: 16)"},
    [HP_AR] = {"adapter_size", "adapter_r", PB_HP_INT, "0", 0, 65536, NULL,
               "adapter bottleneck directly (0: from reduction_factor)"},
    [HP_ACT] = {"non_linearity", "activation act", PB_HP_ENUM, "relu", 0, 0, PB_BN_ACT_CHOICES,
                "adapter activation (AdapterHub SeqBnConfig: relu)"},
};

/* The k-th name of a "a|b|c" choice list into out. */
static void choice_name(const char *choices, int k, char *out, size_t cap) {
    while (k-- > 0 && strchr(choices, '|')) choices = strchr(choices, '|') + 1;
    size_t n = strcspn(choices, "|");
    snprintf(out, cap, "%.*s", (int)n, choices);
}

/* The specs of the three parts, from unipelt's values. */
static void part_specs(const pb_hp_values *hp, char *lora, char *pre, char *seq, size_t cap) {
    const pb_method *m = pb_method_find("unipelt");
    int r = (int)pb_hpv_num(m, hp, "r");
    double alpha = pb_hpv_num(m, hp, "lora_alpha");
    snprintf(lora, cap, "lora:r=%d,alpha=%.17g,dropout=%.17g,targets=%s,gate=1", r, alpha > 0 ? alpha : (double)r,
             pb_hpv_num(m, hp, "lora_dropout"), pb_hpv_text(m, hp, "lora_targets"));
    snprintf(pre, cap, "prefix_tuning:num_virtual_tokens=%d,prefix_projection=%d,encoder_hidden_size=%d,gate=1",
             (int)pb_hpv_num(m, hp, "num_virtual_tokens"), pb_hpv_num(m, hp, "prefix_projection") != 0,
             (int)pb_hpv_num(m, hp, "encoder_hidden_size"));
    int ar = (int)pb_hpv_num(m, hp, "adapter_size");
    char size[64], act[32];
    if (ar > 0) snprintf(size, sizeof size, "r=%d", ar);
    else snprintf(size, sizeof size, "reduction_factor=%.17g", pb_hpv_num(m, hp, "reduction_factor"));
    choice_name(uni_hparams[HP_ACT].choices, (int)pb_hpv_num(m, hp, "non_linearity"), act, sizeof act);
    snprintf(seq, cap, "seq_bn:%s,non_linearity=%s,gate=1", size, act);
}

static pb_status uni_attach(pb_method_ctx *c) {
    if (!c->n_labels)
        return pb_errorf(PB_EINVAL, "unipelt: needs a classification head: its prefix gate averages over every "
                                    "token of a sequence, so a language-model head would see later tokens");
    if (c->hp.given[HP_AR] && c->hp.given[HP_RF] && pb_hp_int(c, "adapter_size") > 0)
        return pb_errorf(PB_EINVAL, "unipelt: give adapter_size or reduction_factor, not both (adapter_size=%ld, "
                                    "reduction_factor=%g)",
                         pb_hp_int(c, "adapter_size"), pb_hp_float(c, "reduction_factor"));
    char lora[512], pre[512], seq[512];
    part_specs(&c->hp, lora, pre, seq, sizeof lora);
    pb_method_ctx *part;
    pb_status st = pb_ctx_compose(c, lora, &part);
    if (st) return st;
    if ((st = pb_ctx_compose(c, pre, &part))) return st;
    return pb_ctx_compose(c, seq, &part);
}

static size_t uni_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    char lora[512], pre[512], seq[512];
    part_specs(hp, lora, pre, seq, sizeof lora);
    return pb_part_closed_form(lora, d, head) + pb_part_closed_form(pre, d, head) + pb_part_closed_form(seq, d, head);
}

/* Small sizes; the default (ReLU adapter) is gradient-checked too, the examples add smooth
 * activations and LoRA dropout. */
static const char *const uni_examples[] = {
    "unipelt:r=2,lora_dropout=0.2,num_virtual_tokens=2,encoder_hidden_size=3,adapter_size=2,non_linearity=swish",
    "unipelt:r=3,lora_alpha=6,lora_targets=q_proj+v_proj+c_fc,num_virtual_tokens=3,prefix_projection=0,"
    "reduction_factor=4,non_linearity=tanh",
    NULL};

const pb_method pb_method_unipelt = {
    .version = PB_METHOD_VERSION,
    .name = "unipelt",
    .category = PB_CAT_HYBRID,
    .summary = "UniPELT: gated LoRA + gated prefix tuning + gated sequential adapter (Mao et al.)",
    .paper = "Mao et al. 2022, UniPELT: A Unified Framework for Parameter-Efficient Language Model Tuning "
             "(arXiv:2110.07577)",
    .hparams = uni_hparams,
    .hf_map = {[HP_TARGETS] = "lora"},
    .n_hparams = sizeof uni_hparams / sizeof uni_hparams[0],
    .needs_cls_head = 1,
    .examples = uni_examples,
    .attach = uni_attach,
    .closed_form = uni_closed_form,
    .flops = pb_ctx_parts_flops, /* its parts\' own flops functions */
};
