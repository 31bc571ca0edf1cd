/* full.c — full fine-tuning: every base tensor trains (the baseline every table is relative to).
 *
 * Closed form: trainable = all base parameters (the task head among them is the framework's to
 * count, method.h).
 * Counting: not a PEFT wrapper, so "all params" is the base model alone (no head copy).
 */
#include "method.h"

static pb_status full_attach(pb_method_ctx *c) {
    for (int i = 0; i < pb_ctx_n_base(c); i++) pb_ctx_unfreeze(c, i);
    return PB_OK;
}

static size_t full_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)hp;
    size_t n; /* every tensor of the layout; the task head among them is the framework's to count */
    pb_model_layout(d, head, 1, NULL, &n);
    return n - pb_model_task_head_params(d, head, 1);
}

const pb_method pb_method_full = {
    .version = PB_METHOD_VERSION,
    .name = "full",
    .category = PB_CAT_SELECTIVE,
    .summary = "full fine-tuning: every weight trains (the baseline)",
    .paper = "Howard & Ruder 2018, Universal Language Model Fine-tuning (arXiv:1801.06146)",
    .identity_at_init = 1,
    .not_peft = 1,
    .attach = full_attach,
    .closed_form = full_closed_form,
    .flops = pb_flops_none,
};
