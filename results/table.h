/* table.h — the survey-style comparison table from a results file (`peftbench table`).
 *
 * For one backbone: a row per method configuration (canonical method spec, shown by its label),
 * grouped by the survey's five categories, and a `reference` group (rows that use no backbone:
 * majority class, n-gram naive Bayes, copy-the-input; never ranked); columns: % trainable
 * parameters, training FLOPs per token and peak tracked memory (relative to `full` when the file
 * has it, absolute otherwise), per task the test metric as the mean over seeds with a 95%
 * bootstrap interval at the learning rate chosen on dev, and the average over tasks. Statistics
 * and rules: docs/STATISTICS.md.
 *
 * Rules (also printed under the table):
 *   - learning rate: among rates where every seed finished ok, the best mean dev metric over the
 *     seeds that ran every rate (ties: the smaller rate); flagged (†) at the grid's edge;
 *   - intervals: percentile bootstrap over test examples (and seeds, when there are several) from
 *     the cells' test records; paired differences on the same examples and seeds: **bold** =
 *     best or not significantly different from the best, ≈ = not significantly different from
 *     full fine-tuning;
 *   - metrics in [0, 1] are shown ×100 (chrF is already 0-100); lower-is-better metrics (ter,
 *     per) are shown as they are and left out of the average;
 *   - % trainable, FLOPs and memory are means over the method's ok cells (they differ across
 *     tasks only through the head).
 *
 * Not: reading files (results.h) or drawing (plots/).
 */
#ifndef PB_TABLE_H
#define PB_TABLE_H

#include <stdio.h>

#include "results/results.h"

#define PB_TABLE_MAX_TASKS 32
/* Classification records with a label outside [0, PB_TABLE_MAX_CLASSES) get no intervals: the
 * bootstrap scores a K x K confusion matrix per replicate, so K bounds its cost. */
#define PB_TABLE_MAX_CLASSES 256

typedef struct {
    double mean, std;   /* test metric at the chosen lr (display scale); NaN: no eligible lr */
    double lo, hi;      /* 95% bootstrap interval of the mean (NaN: no test records) */
    double dev_mean;    /* mean dev metric at the chosen lr (display scale) */
    int n;              /* seeds averaged */
    size_t n_test;      /* test examples of its records (0: none) */
    int eval_max;       /* the cells' eval_max (0: whole splits) */
    double lr;          /* chosen learning rate */
    int n_lrs;          /* learning rates tried */
    int lr_edge;        /* chosen lr is the smallest or largest tried (n_lrs >= 2) */
    int entry;          /* bootstrap entry (-1: none) */
    /* paired comparisons (NaN / -1 when not computed) */
    double full_lo, full_hi, full_p; /* this - full */
    double best_lo, best_hi, best_p; /* this - the best row of the column */
    int best;           /* 1: the best row of the column */
    int tied_best;      /* 1: best, or not significantly different from it (bold) */
    int tied_full;      /* 1: not significantly different from full (≈); 0 for full itself */
} pb_table_cell;

typedef struct {
    char label[PB_RES_NAME];        /* method_label (suffixed with a hash if two configurations share it) */
    char method[PB_RES_SPEC];       /* canonical method spec: what identifies the row */
    char method_name[PB_RES_NAME];
    char category[PB_RES_SHORT];
    int category_index;             /* survey order; 5 for unknown categories */
    int n_ok;                       /* ok cells */
    double pct_trainable, flops_train, flops_phase[3], mem_peak, mem_cat[PB_MEM_NCAT], peak_rss;
    double forgetting;              /* mean over cells where it was measured (NaN: none) */
    int reference;                  /* a reference row (category "reference"): never ranked */
    int setup_steps;                /* largest setup_steps of its cells (sparse's Fisher warm-up) */
    pb_table_cell cell[PB_TABLE_MAX_TASKS];
    double avg;                     /* mean over averaged tasks (NaN if one is missing) */
    double avg_lo, avg_hi;          /* its 95% interval (NaN: not every averaged cell has records) */
    double avg_full_lo, avg_full_hi, avg_full_p, avg_best_lo, avg_best_hi, avg_best_p;
    int avg_best, avg_tied_best, avg_tied_full;
} pb_table_row;

typedef struct {
    char backbone[PB_RES_NAME];
    int n_tasks;
    char task[PB_TABLE_MAX_TASKS][PB_RES_NAME];
    char spec[PB_TABLE_MAX_TASKS][PB_RES_SPEC]; /* the task spec behind each column: rows match it */
    char metric[PB_TABLE_MAX_TASKS][PB_RES_SHORT];
    int higher[PB_TABLE_MAX_TASKS];
    double scale[PB_TABLE_MAX_TASKS]; /* display multiplier (100 or 1) */
    pb_table_row *rows;             /* grouped by category, then first appearance */
    int n_rows;
    int full;                       /* index of the `full` row, or -1 */
    int n_seeds_max;
    int any_edge;
    int excluded_from_avg;          /* tasks left out of the average (lower-is-better) */
    size_t n_test[PB_TABLE_MAX_TASKS]; /* test examples per task (0: no records) */
    int any_intervals;              /* some cell has an interval */
    int any_eval_max;               /* some cell evaluated at most eval_max examples */
    int avg_best;                   /* row with the best average (-1: none) */
    struct pb_boot *boot;           /* the bootstrap behind the intervals (NULL: none) */
} pb_table;

/* Backbones present in r (distinct backbone_name, first-appearance order); returns the count
 * and fills names[0..min(count, cap)). */
int pb_table_backbones(const pb_res *r, char names[][PB_RES_NAME], int cap);

/* Builds the table of one backbone. tasks (may be NULL) is a comma-separated list choosing and
 * ordering the task columns. Errors: PB_ENOTFOUND (no ok cell for that backbone; the message
 * says what the file holds), PB_EINVAL (unknown task in the list, too many tasks). */
pb_status pb_table_build(const pb_res *r, const char *backbone, const char *tasks, pb_table *t);
void pb_table_free(pb_table *t);

/* 1 when w is an ok cell behind t->rows[i].cell[k] at the rate the table chose for it (any seed):
 * the cells whose curves the figures draw and whose dev curves the findings read. */
int pb_table_chosen_cell(const pb_table *t, int i, int k, const pb_res_row *w);

/* The learning rate chosen on dev for (backbone, method, task spec) by the rules above (the
 * sweep's first_seed protocol uses it too). Returns 1 and fills *lr, *n_lrs (rates tried) and
 * *edge; 0 when no rate is eligible. higher: the selecting metric's direction. */
int pb_table_choose_lr(const pb_res *r, const char *backbone, const char *method, const char *task, int higher,
                       double *lr, int *n_lrs, int *edge);

/* Paired difference of the averages of rows i and j (i - j) on the same examples and seeds:
 * 95% interval and p-value. Returns 0 when not available (no records, no common seeds). */
int pb_table_avg_diff(const pb_table *t, int i, int j, double *lo, double *hi, double *p);

typedef enum { PB_TABLE_MD, PB_TABLE_TEX, PB_TABLE_CSV } pb_table_format;

typedef struct {
    pb_table_format format;
    int params, flops, memory, tasks, avg, forgetting; /* columns shown */
    int show_lr;                                       /* chosen lr in each task cell */
} pb_table_opts;

/* Defaults: markdown; params, flops, memory, tasks, avg; no lr. */
void pb_table_default_opts(pb_table_opts *o);
/* Parses a comma-separated column list ("params,flops,memory,tasks,avg,forgetting,lr"). */
pb_status pb_table_parse_columns(const char *list, pb_table_opts *o);
void pb_table_write(FILE *f, const pb_table *t, const pb_table_opts *o);

#endif
