/* export.h — the TSV files behind the figures (`peftbench plot`; plots/README.md).
 *
 * For one backbone's table (table.h), writes into a directory:
 *   accuracy_vs_params.tsv   a row per method: label, category index and name, % trainable,
 *                            average test metric, Pareto flag, and where its label goes
 *   pareto.tsv               the Pareto front (fewer parameters, higher average), by % trainable
 *   memory.tsv               a row per method: peak bytes per memory category (MiB)
 *   flops.tsv                a row per method: training FLOPs per token by phase
 *   curves_<task>.tsv        per method (one block each, separated by two blank lines, titled
 *                            by a header line): step, dev metric, mean training loss since the
 *                            previous evaluation, of the run at the chosen learning rate and the
 *                            smallest seed
 *   loss_<task>.tsv          the same runs' per-step training loss and its moving average
 * Labels of the scatter plot are placed here (greedy, avoiding other labels and markers within
 * the plot area that plots/accuracy_vs_params.gp fixes), since gnuplot cannot avoid overlaps.
 *
 * Not: running gnuplot (harness/cmd_plot.c) or the scripts (plots/NAME.gp).
 */
#ifndef PB_EXPORT_H
#define PB_EXPORT_H

#include "results/results.h"
#include "results/table.h"

/* Geometry shared with plots/accuracy_vs_params.gp (pixels of the PNG; the plot area is fixed
 * with `set margins at screen`). */
#define PB_PLOT_W 1000
#define PB_PLOT_H 620
#define PB_PLOT_L 0.09 /* plot area, as fractions of the canvas */
#define PB_PLOT_R 0.70
#define PB_PLOT_B 0.12
#define PB_PLOT_T 0.90

typedef struct {
    double xmin, xmax, ymin, ymax; /* ranges of the scatter plot (x logarithmic) */
    int n_points;                  /* methods with an average */
    int n_methods;
    int n_tasks;
    char stem[PB_TABLE_MAX_TASKS][PB_RES_NAME]; /* file-name stems of the curve files */
    int n_curves[PB_TABLE_MAX_TASKS];           /* methods with a curve for task k */
    int max_step[PB_TABLE_MAX_TASKS];           /* longest of those runs (steps) */
    char metric_label[PB_RES_NAME * 2];         /* y label of the scatter ("average test metric ...") */
} pb_export_info;

/* Writes the files above into dir (which must exist). PB_EIO naming the file on failure. */
pb_status pb_export_tsv(const pb_res *r, const pb_table *t, const char *dir, pb_export_info *info);

#endif
