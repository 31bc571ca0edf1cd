/* head.c — linear probing: only the task head trains; the backbone is frozen.
 *
 * Closed form: 0 of its own: the framework counts the task head it trains (score.weight,
 * score.bias: K C + K, or the head the descriptor has; pb_model_task_head_params); nothing with an
 * LM head.
 * Backward does no work in the trunk at all (the model's plan stops at the head).
 */
#include "method.h"

static pb_status head_attach(pb_method_ctx *c) {
    /* the framework trains the task head unless a method freezes it */
    if (!c->n_labels)
        return pb_errorf(PB_EINVAL, "head: a linear probe trains a classification head, and %s has none here "
                                    "(use a classification task; with peftbench count, --task-type seq-cls:N)",
                         c->d->name);
    return PB_OK;
}

static size_t head_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)hp, (void)d, (void)head;
    return 0; /* only the task head, which the framework counts */
}

const pb_method pb_method_head = {
    .version = PB_METHOD_VERSION,
    .name = "head",
    .category = PB_CAT_SELECTIVE,
    .summary = "linear probe: only the task head trains",
    .paper = "Alain & Bengio 2016, Understanding intermediate layers using linear classifier probes (arXiv:1610.01644)",
    .identity_at_init = 1,
    .needs_cls_head = 1,
    .attach = head_attach,
    .closed_form = head_closed_form,
    .flops = pb_flops_none,
};
