/* lora.c — LoRA: a trainable low-rank update beside frozen linear layers.
 *
 *   y = x W^T + b + s * dropout(x) A^T B^T,   A (r, IC), B (OC, r),   s = alpha / r
 *   (rsLoRA, use_rslora=1: s = alpha / sqrt(r), Kalajdzievski 2023)
 * Initialisation as Hugging Face PEFT: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(IC),
 * 1/sqrt(IC)), B = 0, so the model starts exactly at the base model. Merge: W += s B A.
 * bias: "none" trains no bias; "all" trains every bias of the backbone; "lora_only" trains the
 * biases of the targeted layers.
 * Closed form: trainable = sum over targeted sites of r (IC + OC), plus the biases that `bias`
 * selects (the task head is the framework's to count). Targets default to q and v (Hugging Face's default
 * for most decoders; its GPT-2 default is the fused c_attn).
 * Saved per target: u = dropout(x) A^T (N, r). Workspace: the dropout output (N, IC) when
 * dropout > 0 (recomputed in backward from its seed), du (N, r).
 * The hyperparameters, targets, A/B tensors, branch product and its backward are the LoRA adapter
 * set of lowrank.h (shared with DoRA); this file adds the frozen product and the merge.
 *
 * gate=1 (alias use_gating; UniPELT, Mao et al. 2022, their lora_layers.py LoRA_Linear(add_gate);
 * AdapterHub LoRAConfig(use_gating=True)): each target gets a gate Linear(IC, 1), one value per
 * token (not per head: the reference's lora_gate and AdapterHub's gating_heads for a single
 * q/v matrix are both 1 output),
 *   y = x W^T + b + g ⊙ (s dropout(x) A^T B^T),   g (N) = sigmoid(x Wg^T + bg),  Wg (1,IC), bg (1)
 * Wg ~ N(0, 0.02^2) as AdapterHub; bg = 0 (AdapterHub and the reference keep PyTorch's default
 * U(+-1/sqrt(IC)) bias; zero starts every gate at sigmoid(x Wg^T) ~ 0.5, as seq_bn's gate).
 * Still the base model at initialisation (B = 0). Closed form: + sum over targets of IC + 1.
 * Saved per target: g (N). Workspace: + (N, r) + (N). Merge: refused (the gate depends on x).
 * Deviations: (1) the reference and AdapterHub average the gate over the sequence
 * (torch.mean(gate, dim=1)), which lets later tokens change earlier positions' outputs and breaks
 * causality in a decoder; here it is per token (as seq_bn's gate). (2) Both references let the
 * gate replace the scale alpha/r (hidden * gate, no scaling); here it multiplies s, so alpha = r
 * (s = 1) reproduces them, and unipelt passes alpha = r by default. (AdapterHub's UniPELTConfig
 * sets LoRAConfig(r=8, alpha=2) in adapter-hub/adapters today, r=8 with the default alpha 8 in
 * older releases; neither matters there, since its gated LoRA ignores the scaling.)
 */
#include "lowrank.h"

/* The set's rows, then LoRA's own. */
enum { HP_GATE = PB_LR_NHP };
static const pb_hparam lora_hparams[] = {
    PB_LOWRANK_HPARAM_ROWS,
    [HP_GATE] = {"gate", "use_gating", PB_HP_BOOL, "0", 0, 1, NULL,
                 "per-token gate sigmoid(x W_g^T + b_g) on the update (UniPELT); cannot be merged"},
};

static pb_status lora_attach(pb_method_ctx *c) {
    pb_lowrank *s = c->state;
    s->gate = pb_hp_bool(c, "gate");
    return pb_lowrank_attach(c, s);
}

static size_t lora_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    return pb_lowrank_closed_form(hp, d, head, 0) + (hp->num[HP_GATE] != 0 ? pb_lowrank_gate_count(hp, d, head) : 0);
}

static void lora_init(pb_method_ctx *c, pb_rng *rng) { pb_lowrank_init(c, c->state, rng); }

static void lora_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                     int N) {
    pb_lowrank *s = c->state;
    pb_site_base_fwd(out, x, w, b, N);
    pb_lowrank_site_fwd(c, s, slot, out, 1.0f, x, N);
}

static void lora_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x, const pb_tensor *w,
                     const pb_tensor *b, int N) {
    pb_lowrank *s = c->state;
    pb_site_base_bwd(dinp, dout, x, w, b, N);
    pb_lowrank_site_bwd(c, s, slot, dinp, dout, x, N);
}

static pb_status lora_merge(pb_method_ctx *c) {
    pb_lowrank *s = c->state;
    if (s->gate) return pb_errorf(PB_EINVAL, "lora: a gated LoRA cannot be merged (its gate depends on each token)");
    /* W += s B A; counted as a one-off, not per token */
    for (int i = 0; i < s->n; i++) pb_lowrank_add_delta(c, s, i, pb_lowrank_weight(c, s, i)->data, PB_PHASE_FWD);
    return PB_OK;
}

static void lora_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

static const char *const lora_examples[] = {
    "lora:r=2", "lora:r=3,alpha=6,targets=all-linear,bias=lora_only",
    "lora:r=2,use_rslora=1,bias=all,targets=k_proj+c_fc", "lora:r=2,alpha=4,gate=1,targets=q_proj+v_proj+c_proj",
    "lora:r=2,dropout=0.3,targets=q_proj+c_fc", NULL};

const pb_method pb_method_lora = {
    .version = PB_METHOD_VERSION,
    .name = "lora",
    .category = PB_CAT_REPARAM,
    .summary = "LoRA: trainable low-rank update s*B*A beside frozen linear layers",
    .paper = "Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models (arXiv:2106.09685)",
    .hparams = lora_hparams,
    .hf_map = {[PB_LR_HP_TARGETS] = "lora"},
    .n_hparams = sizeof lora_hparams / sizeof lora_hparams[0],
    .state_size = sizeof(pb_lowrank),
    .identity_at_init = 1,
    .examples = lora_examples,
    .attach = lora_attach,
    .closed_form = lora_closed_form,
    .init = lora_init,
    .linear_fwd = lora_fwd,
    .linear_bwd = lora_bwd,
    .merge = lora_merge,
    .flops = lora_flops,
};

/* FLOPs: per target the frozen product (the plain site's count) plus the branch. */
static void lora_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    pb_lowrank *s = c->state;
    for (int i = 0; i < s->n; i++) {
        int l, dinp;
        pb_site site;
        pb_lowrank_target(c, s, i, &l, &site);
        if (l < 0) continue; /* global sites of shape-only models: counted, never hooked */
        pb_flops_site_base(e, l, site, e->x.N, s->ic[i], s->oc[i], f);
        int bwd = pb_flops_site_bwd(e, l, site, &dinp);
        pb_lowrank_branch_flops(s, i, e, bwd, dinp, f);
    }
}
