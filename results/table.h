/* table.h — the survey-style comparison table from a results file (`peftbench table`).
 *
 * For one backbone: a row per method configuration (canonical method spec, shown by its label), grouped by the survey's five
 * categories; columns: % trainable parameters, training FLOPs per token and peak tracked memory
 * (relative to `full` when the file has it, absolute otherwise), and per task the test metric
 * as mean ± sample standard deviation over seeds, at the learning rate whose mean dev metric is
 * best for that (method, task); an average over tasks.
 *
 * Rules (also printed under the table):
 *   - a learning rate is eligible for a (method, task) only if every one of its seeds finished
 *     with status ok (a diverged or failed seed disqualifies it); ties go to the smaller rate;
 *   - the chosen rate is flagged (†) when it is the smallest or largest rate tried for that
 *     (method, task) and at least two were tried: the grid may not bracket the optimum;
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

typedef struct {
    double mean, std;   /* test metric at the chosen lr (display scale); NaN: no eligible lr */
    double dev_mean;    /* mean dev metric at the chosen lr (display scale) */
    int n;              /* seeds averaged */
    double lr;          /* chosen learning rate */
    int n_lrs;          /* learning rates tried */
    int lr_edge;        /* chosen lr is the smallest or largest tried (n_lrs >= 2) */
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
    pb_table_cell cell[PB_TABLE_MAX_TASKS];
    double avg;                     /* mean over averaged tasks (NaN if one is missing) */
} pb_table_row;

typedef struct {
    char backbone[PB_RES_NAME];
    int n_tasks;
    char task[PB_TABLE_MAX_TASKS][PB_RES_NAME];
    char metric[PB_TABLE_MAX_TASKS][PB_RES_SHORT];
    int higher[PB_TABLE_MAX_TASKS];
    double scale[PB_TABLE_MAX_TASKS]; /* display multiplier (100 or 1) */
    pb_table_row *rows;             /* grouped by category, then first appearance */
    int n_rows;
    int full;                       /* index of the `full` row, or -1 */
    int n_seeds_max;
    int any_edge;
    int excluded_from_avg;          /* tasks left out of the average (lower-is-better) */
} pb_table;

/* Backbones present in r (distinct backbone_name, first-appearance order); returns the count
 * and fills names[0..min(count, cap)). */
int pb_table_backbones(const pb_res *r, char names[][PB_RES_NAME], int cap);

/* Builds the table of one backbone. tasks (may be NULL) is a comma-separated list choosing and
 * ordering the task columns. Errors: PB_ENOTFOUND (no ok cell for that backbone; the message
 * says what the file holds), PB_EINVAL (unknown task in the list, too many tasks). */
pb_status pb_table_build(const pb_res *r, const char *backbone, const char *tasks, pb_table *t);
void pb_table_free(pb_table *t);

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
