/* reference.h — predictors that use no backbone, the table's reference rows (docs/STATISTICS.md
 * section 5): what a task gives without pretraining, on the same splits as every method.
 *
 *   majority     classify: the most frequent training label (ties: the smaller index)
 *   ngram_nb     classify: multinomial naive Bayes over hashed bags of byte 1-4-grams and
 *                lowercased word 1-2-grams of the text (text2 after a separator), 2^18 buckets,
 *                trained on the training split; the additive smoothing alpha in {0.1, 0.3, 1} is
 *                the one with the best dev value of the task's selecting metric (ties: smaller)
 *   copy_input   generate: the output is the input text
 *
 * pb_ref_predict fills predictions for the dev and test splits; scoring them (and the per-example
 * records) is the caller's, exactly as for a fine-tuned model. Deterministic; no randomness.
 * Not: results, tables (results/), running cells (harness/).
 */
#ifndef PB_TASKS_REFERENCE_H
#define PB_TASKS_REFERENCE_H

#include "pb_error.h"
#include "tasks/task.h"

#define PB_REF_MAP(X)                                                                           \
    X(MAJORITY, "majority", PB_TASK_CLASSIFY, "the most frequent training label")               \
    X(NGRAM_NB, "ngram_nb", PB_TASK_CLASSIFY, "naive Bayes over character and word n-grams")     \
    X(COPY_INPUT, "copy_input", PB_TASK_GENERATE, "the input, copied")

typedef enum {
#define PB_REF_ENUM(id, name, kind, desc) PB_REF_##id,
    PB_REF_MAP(PB_REF_ENUM)
#undef PB_REF_ENUM
    PB_REF_COUNT
} pb_ref_kind;

const char *pb_ref_name(pb_ref_kind k);
const char *pb_ref_desc(pb_ref_kind k);
/* PB_REF_COUNT when unknown. */
pb_ref_kind pb_ref_from_name(const char *name);
/* 1 when the predictor serves tasks of this kind. */
int pb_ref_applies(pb_ref_kind k, pb_task_kind kind);

/* Predictions for dev and test: labels (classify) or texts pointing into the task (generate:
 * copy_input), plus what the fit chose (ngram_nb: alpha; 0 otherwise). */
typedef struct {
    int *labels[PB_NSPLIT];          /* (n) classify; NULL for train */
    const char **texts[PB_NSPLIT];   /* (n) generate; NULL for train */
    double alpha;
    double dev[PB_TASK_MAX_METRICS]; /* the task's metrics on dev for the chosen fit */
} pb_ref_pred;

/* Fits on train (and dev, for ngram_nb's alpha) and predicts dev and test. Errors: the predictor
 * does not serve the task's kind (message names both), no training examples, out of memory. */
pb_status pb_ref_predict(pb_ref_kind k, const pb_task *t, pb_ref_pred *out);
void pb_ref_pred_free(pb_ref_pred *p);

#endif
