/* stats.h — bootstrap intervals and paired comparisons over test records (docs/STATISTICS.md).
 *
 * An entry is one (method, task) of a table at its chosen learning rate: its seeds and, for each,
 * the test records of that cell (results.h: classification (pred, gold); generation per-example
 * statistics). pb_boot_run draws B replicates; each replicate resamples every task's test
 * examples with replacement (one multiset per task, shared by every entry, so comparisons are
 * paired on the examples) and draws seed positions u_1..u_J in [0, 1) (an entry with seeds S uses
 * S[floor(u_j |S|)], j < |S|; a pair uses its common seeds the same way). It stores the metric of
 * every (entry, seed) on every replicate; intervals and differences are read from those.
 *
 *   pb_boot b;
 *   pb_boot_run(&b, tasks, n_tasks, entries, n_entries, 2000, 1);
 *   pb_boot_interval(&b, e, &lo, &hi);          // mean over seeds, 95% percentile interval
 *   pb_boot_diff(&b, e1, e2, &lo, &hi, &p);     // e1 - e2 on the same examples and seeds
 *   pb_boot_free(&b);
 *
 * Deterministic: the same inputs and seed give the same numbers. Single-threaded (a table is
 * built in processes that fork afterwards). Not: choosing entries or learning rates (table.c).
 */
#ifndef PB_STATS_H
#define PB_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"
#include "tasks/metrics.h"

#define PB_BOOT_B 2000
#define PB_BOOT_MAX_SEEDS 16

/* How a task's records score: classification (n_classes > 0: records are (pred, gold)) or
 * generation (the metric's statistics at stat_offset within each record of `width` floats). */
typedef struct {
    pb_metric_id metric;
    int n_classes;     /* > 0: classification */
    int width;         /* floats per record */
    int stat_offset;   /* generation: where the metric's statistics start in a record */
    size_t n_ex;       /* test examples */
} pb_boot_task;

typedef struct {
    int task;                              /* index into the tasks */
    int n_seeds;
    uint64_t seed[PB_BOOT_MAX_SEEDS];
    const float *rec[PB_BOOT_MAX_SEEDS];   /* (n_ex, width) per seed; all non-NULL */
    int seed_free;                         /* one deterministic run (reference rows): pairs with any seed */
} pb_boot_entry;

typedef struct pb_boot {
    int B, n_entries, n_tasks;
    double *val;                 /* (B, n_entries, PB_BOOT_MAX_SEEDS) metric per seed and replicate */
    float *u;                    /* (B, PB_BOOT_MAX_SEEDS) seed positions */
    pb_boot_entry *e;            /* copies of the entries */
} pb_boot;

/* Runs the bootstrap. Errors: an entry whose task index or seed count is out of range, a task
 * with no examples or a metric without per-example statistics, out of memory. */
pb_status pb_boot_run(pb_boot *b, const pb_boot_task *tasks, int n_tasks, const pb_boot_entry *entries, int n_entries,
                      int B, uint64_t seed);
void pb_boot_free(pb_boot *b);

/* 95% percentile interval of entry e's mean over its seeds. */
void pb_boot_interval(const pb_boot *b, int e, double *lo, double *hi);
/* Paired difference e1 - e2 (same task): 95% interval and two-sided bootstrap p-value; returns
 * the number of seeds paired on (0: none in common; then lo = hi = p = NaN). */
int pb_boot_diff(const pb_boot *b, int e1, int e2, double *lo, double *hi, double *p);
/* The same for the average over n tasks: es[k] (and es2[k]) are the entries of one method (and of
 * another) on task k; es2 NULL: the interval of the average alone (returns the fewest seeds). */
int pb_boot_avg(const pb_boot *b, const int *es, const int *es2, int n, double *lo, double *hi, double *p);

/* Percentile of sorted x[0..n) at q in [0, 1] (linear interpolation between order statistics). */
double pb_percentile(const double *sorted, size_t n, double q);

#endif
