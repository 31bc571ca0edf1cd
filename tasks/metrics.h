/* metrics.h — the evaluation metrics of downstream tasks (docs/TASKS.md "Metrics").
 *
 * Each metric is a plain function over parallel arrays of predictions and gold values, returning
 * a pb_status and writing the score to *out. All are corpus-level (statistics summed over the
 * examples, then combined). Degenerate inputs (zero variance, empty denominators) give 0, never
 * NaN; n == 0 is PB_EINVAL. Scales: chrF is 0-100 (as sacreBLEU prints it), everything else is
 * a fraction or a correlation in [-1, 1].
 *
 * Not: tokenisation, decoding or anything that needs a model. Tokens for token_acc/ter/per are
 * the whitespace-separated pieces of a string (ASCII whitespace).
 */
#ifndef PB_TASKS_METRICS_H
#define PB_TASKS_METRICS_H

#include <stddef.h>

#include "pb_error.h"

/* The one list of metrics: id, key (as written in results and specs), higher is better, what. */
#define PB_METRIC_MAP(X)                                                                   \
    X(ACC, "acc", 1, "accuracy")                                                           \
    X(F1, "f1", 1, "F1 of label 1 (binary tasks)")                                         \
    X(MACRO_F1, "macro_f1", 1, "macro-averaged F1 over classes seen in gold or predictions") \
    X(MCC, "mcc", 1, "Matthews correlation coefficient (multi-class R_K)")                 \
    X(PEARSON, "pearson", 1, "Pearson correlation")                                        \
    X(SPEARMAN, "spearman", 1, "Spearman rank correlation (average ranks for ties)")       \
    X(EXACT, "exact", 1, "exact match (byte-identical output)")                            \
    X(CHRF, "chrf", 1, "chrF: char 1..6-grams, beta=2, whitespace removed, 0-100")         \
    X(TOKEN_ACC, "token_acc", 1, "position-wise token accuracy")                           \
    X(TER, "ter", 0, "token error rate: word-level Levenshtein / reference tokens")        \
    X(PER, "per", 0, "phoneme error rate: Levenshtein over phonemes / reference phonemes")

typedef enum {
#define PB_METRIC_ENUM(id, key, hib, desc) PB_METRIC_##id,
    PB_METRIC_MAP(PB_METRIC_ENUM)
#undef PB_METRIC_ENUM
    PB_METRIC_COUNT
} pb_metric_id;

/* "acc", or "?" for an out-of-range id. */
const char *pb_metric_key(pb_metric_id id);
const char *pb_metric_desc(pb_metric_id id);
/* 1 when larger values are better (acc), 0 when smaller are (ter, per). */
int pb_metric_higher_is_better(pb_metric_id id);
/* Looks a metric up by key; PB_ENOTFOUND (message lists the keys) when unknown. */
pb_status pb_metric_from_key(const char *key, pb_metric_id *out);

/* ---- classification: pred[i], gold[i] are label indices in [0, n_classes) ---------------- */
pb_status pb_metric_accuracy(const int *pred, const int *gold, size_t n, double *out);
/* F1 of class `positive`: 2TP / (2TP + FP + FN), 0 when TP + FP + FN == 0. */
pb_status pb_metric_f1(const int *pred, const int *gold, size_t n, int positive, double *out);
pb_status pb_metric_macro_f1(const int *pred, const int *gold, size_t n, int n_classes, double *out);
/* (c*s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), 0 when the root is 0. */
pb_status pb_metric_mcc(const int *pred, const int *gold, size_t n, int n_classes, double *out);

/* ---- regression --------------------------------------------------------------------------- */
pb_status pb_metric_pearson(const double *x, const double *y, size_t n, double *out);
pb_status pb_metric_spearman(const double *x, const double *y, size_t n, double *out);
/* Average ranks (1-based, ties share the mean of their positions) of x[0..n) into r. */
pb_status pb_metric_ranks(const double *x, size_t n, double *r);

/* ---- generation: hyp[i], ref[i] are NUL-terminated UTF-8 strings ------------------------- */
pb_status pb_metric_exact(const char *const *hyp, const char *const *ref, size_t n, double *out);
/* sacreBLEU chrF defaults (char_order 6, word_order 0, beta 2, whitespace removed, characters are
 * Unicode code points; bytes that are not valid UTF-8 count as one character each). */
pb_status pb_metric_chrf(const char *const *hyp, const char *const *ref, size_t n, double *out);
/* sum over i of (positions j < |ref_i| with hyp_i[j] == ref_i[j]) / sum of |ref_i|. */
pb_status pb_metric_token_acc(const char *const *hyp, const char *const *ref, size_t n, double *out);
/* sum of Levenshtein(hyp_i, ref_i) over tokens / sum of |ref_i|; when every reference is empty,
 * 0 if every hypothesis is empty too, else 1. Used for both ter and per. */
pb_status pb_metric_token_error_rate(const char *const *hyp, const char *const *ref, size_t n, double *out);
/* Levenshtein distance between two token sequences (tokens split on ASCII whitespace). */
pb_status pb_metric_token_distance(const char *hyp, const char *ref, size_t *dist, size_t *ref_tokens);

/* ---- one entry point by id ----------------------------------------------------------------- */
typedef struct {
    size_t n;                    /* number of examples */
    int n_classes;               /* classification: size of the label set */
    const int *pred_label;       /* (n) classification predictions */
    const int *gold_label;       /* (n) */
    const double *pred_value;    /* (n) regression predictions */
    const double *gold_value;    /* (n) */
    const char *const *pred_text; /* (n) generation outputs */
    const char *const *gold_text; /* (n) references */
} pb_metric_args;

/* Computes metric `id` from the fields of `a` that it needs (PB_EINVAL when they are NULL). */
pb_status pb_metric_compute(pb_metric_id id, const pb_metric_args *a, double *out);

/* ---- per-example statistics (resampling: docs/STATISTICS.md) --------------------------------
 * Every metric of classify and generate tasks is a function of statistics summed over the
 * examples, so a bootstrap resample is a sum of per-example statistics, never a re-scoring.
 *   classification (acc, f1, macro_f1, mcc): the n_classes x n_classes confusion matrix (row
 *     gold, column pred); an example adds 1 at (gold, pred);
 *   exact {matches, examples}; chrf {hyp n-grams, ref n-grams, common} for each order 1..6;
 *   token_acc {matching positions, reference tokens}; ter, per {edits, reference tokens}.
 * The corpus functions above are these sums combined by pb_metric_from_stats (one formula). */
int pb_metric_is_classification(pb_metric_id id);
/* Statistics per example (classification: n_classes^2); 0 for pearson and spearman. */
size_t pb_metric_n_stats(pb_metric_id id, int n_classes);
/* A generation example's statistics (pb_metric_n_stats(id, 0) values). */
pb_status pb_metric_text_stats(pb_metric_id id, const char *hyp, const char *ref, double *stats);
/* The metric from summed statistics; n_classes only for classification. */
pb_status pb_metric_from_stats(pb_metric_id id, const double *stats, int n_classes, double *out);

#endif
