/* count.h — exact parameter counts of a method on any model, shape-only (docs/COUNT.md).
 *
 * The counts come from the methods' own attach code run against the model's layout with nothing
 * allocated (methods/peft.h with model == NULL), under Hugging Face PEFT's counting convention.
 */
#ifndef PB_COUNT_H
#define PB_COUNT_H

#include <stddef.h>
#include <stdio.h>

#include "methods/peft.h"
#include "models/desc.h"
#include "models/model.h"
#include "pb_error.h"

/* The head a task type selects: "causal-lm", "seq2seq", "seq-cls:N", "token-cls:N",
 * "image-cls:N", or NULL / "" for the model's own (its published class). Errors name the value
 * and what this model accepts. */
pb_status pb_count_task_type(const pb_model_desc *d, const char *type, pb_head_kind *head, int *n_labels);
/* Attaches spec to d shape-only: p then holds the counts (pb_peft_counts) and every tensor;
 * free it with pb_peft_free. */
pb_status pb_count_attach(pb_peft *p, const pb_model_desc *d, const char *spec, const char *task_type);
/* Hugging Face's line: "trainable params: 4,194,304 || all params: ... || trainable%: 0.0622". */
void pb_count_hf_line(FILE *f, size_t trainable, size_t all);
/* The breakdown per site and tensor (tensors that differ only by their layer are one row). */
void pb_count_breakdown(FILE *f, const pb_peft *p);

/* Batch, sequence length and weight precision of the FLOP and memory sections. seq 0: 512 for a
 * real model, max_seq for a runnable preset (capped at the model's max_seq). */
typedef struct {
    int batch, seq;
    pb_precision prec;
} pb_count_shape;
int pb_count_seq(const pb_model_desc *d, int seq);
/* FLOPs per token of a training step (per phase, matmul / other) and of inference unmerged and
 * merged (-1 when the method cannot merge); memory of a training step per category. */
typedef struct {
    int seq, batch;
    double train[PB_NPHASE][PB_NKIND], train_total, infer, infer_merged;
    size_t mem[PB_MEM_NCAT], mem_total;
} pb_count_cost;
pb_status pb_count_cost_of(const pb_peft *p, const pb_count_shape *sh, pb_count_cost *out);
/* The FLOPs and memory sections printed after the breakdown. */
void pb_count_print_cost(FILE *f, const pb_count_cost *c, const pb_count_shape *sh);
/* Writes DIR/count_params.tsv and DIR/count_memory.tsv (models by size x methods: trainable
 * parameters; training memory in bytes at sh) and draws DIR/count_params.{png,svg} and
 * DIR/count_memory.{png,svg} with plots/count_scaling.gp. 0 when everything was written. */
int pb_count_plot(const char *dir, char *const *models, int nm, char *const *specs, int np, const char *task,
                  const pb_count_shape *sh, const char *scripts_flag);

#endif
