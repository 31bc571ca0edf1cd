/* peft.h — the framework that attaches PEFT methods to a model (docs/METHODS.md).
 *
 * A pb_peft holds one top-level method instance (and, for hybrids, its parts), the tensors
 * they added (one trainable block, one frozen-buffer block, one gradient block), their batch
 * buffers, and the hook tables it installs on the model. With model == NULL it works
 * shape-only: attach runs, nothing is allocated, counts are exact.
 */
#ifndef PB_PEFT_H
#define PB_PEFT_H

#include "method.h"

#define PB_MAX_PARTS 8

typedef struct {
    pb_method_ctx *c;
    int slot;
} pb_binding;

struct pb_peft {
    const pb_model_desc *d;
    pb_head_kind head;
    int n_labels;
    pb_model *model;             /* NULL: shape-only */
    pb_tensor *base;             /* (n_base) model->tensors, or a layout table when shape-only */
    int n_base, base_owned;
    size_t n_base_params;
    unsigned char *unfrozen;     /* (n_base) 1 = trained in place by a method, 2 = and counted as a
                                    copy in "all params" (Hugging Face's modules_to_save) */

    pb_method_ctx *ctx[PB_MAX_PARTS]; /* [0] the top-level method, then hybrid parts */
    int n_ctx;

    pb_tensor *params;           /* (n_params) added tensors */
    int n_params, cap_params;
    float *train_block, *frozen_block, *grads;
    size_t n_train, n_frozen;

    /* hooks installed on the model */
    pb_model_hooks hooks;
    pb_linear_hook *lin;         /* (L * PB_NSITE) */
    pb_sublayer_hook *sub;       /* (L * PB_NSUB) */
    pb_prefix_hook *pre;         /* (L) */
    pb_binding *lin_b, *sub_b, *pre_b, embed_b;

    float *acts_block, *work_block;
    size_t cap_acts, cap_work;
};

/* Parses "NAME[:key=value,...]" (list values joined by '+'; a site list may also continue after
 * commas, as Hugging Face writes target_modules: targets=q_proj,v_proj is targets=q_proj+v_proj)
 * into a method and values (defaults filled). Errors name the key or value and list what is
 * accepted. */
pb_status pb_peft_parse(const char *spec, const pb_method **method, pb_hp_values *v);

/* Attaches the method of `spec` to a model with descriptor d and the given head. model may be
 * NULL (shape-only). With a model: allocates and initialises the method's tensors, sets which
 * base tensors train, installs the hooks, and prepares the model. */
pb_status pb_peft_create(pb_peft *p, const char *spec, const pb_model_desc *d, pb_head_kind head, int n_labels,
                         pb_model *model, uint64_t seed);
void pb_peft_free(pb_peft *p);

/* Trainable parameters and all parameters, Hugging Face PEFT's print_trainable_parameters()
 * convention (docs/METHODS.md "Counting"). */
void pb_peft_counts(const pb_peft *p, size_t *trainable, size_t *all);
/* Trainable parameters by closed form (tests compare with pb_peft_counts): the method's
 * closed_form plus the task head it trains (pb_model_task_head_params), written once here. */
size_t pb_peft_closed_form(const pb_peft *p);
/* Optimizer segments: the model's trainable base tensors, then the added trainable tensors. */
int pb_peft_segments(pb_peft *p, pb_segment *seg);
void pb_peft_zero_grad(pb_peft *p);
/* Merges every instance that can be merged; PB_EINVAL naming the method that cannot. */
pb_status pb_peft_merge(pb_peft *p);
/* The plan's inputs (models/flops.h) from what trains and which hooks exist (layer array
 * malloc'ed into in->layer; free it), and the prefix length / virtual tokens of the hooks. With
 * no_hooks the plan of the model after a merge (selective changes stay, hooks are gone). */
pb_status pb_peft_plan_in(const pb_peft *p, int no_hooks, pb_plan_in *in, int *Pe, int *Pk);
/* FLOPs of one training step (training = 1: forward + backward) or one inference forward
 * (training = 0; merged = 1: after pb_peft_merge, PB_EINVAL if some part cannot merge) over B
 * sequences of T tokens, shape-only or runnable alike. */
pb_status pb_peft_flops(const pb_peft *p, int B, int T, int training, int merged, pb_flops *out);
/* Training memory of one step (models/flops.h pb_mem_estimate) per pb_mem category. */
pb_status pb_peft_mem(const pb_peft *p, int B, int T, pb_precision prec, size_t bytes[PB_MEM_NCAT]);
/* Whether every hooked instance can be merged (pb_peft_merge would succeed). */
int pb_peft_mergeable(const pb_peft *p);

/* Nonzero while some attached instance is still choosing what trains (method.h setting_up). */
int pb_peft_setting_up(const pb_peft *p);
/* Tests: while on, every training forward replays the last training forward (method.h
 * pb_method_ctx.hold): the same dropout masks, and detached quantities held, so finite
 * differences in training mode see exactly the function whose gradient the backward computes. */
void pb_peft_hold(pb_peft *p, int on);

/* Bytes of the saved adapter: every trainable tensor (added or unfrozen), float32. */
size_t pb_peft_adapter_bytes(const pb_peft *p);

#endif
