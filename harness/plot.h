/* plot.h — drawing a results file's figures with the committed gnuplot scripts (cmd_plot.c),
 * shared by `peftbench plot` and `peftbench survey`. */
#ifndef PB_HARNESS_PLOT_H
#define PB_HARNESS_PLOT_H

#include "results/results.h"

/* The directory of the plots/NAME.gp scripts: flag if given, else $PEFTBENCH_PLOTS, else the
 * source tree's plots/. NULL (message printed) when accuracy_vs_params.gp is not there. */
const char *pb_plot_scripts(const char *flag, char *buf, size_t cap);

/* Writes the TSV files and the figures (fmts: "png", "svg" or "png,svg") of every backbone
 * of res (or only `backbone`) into dir (created; several backbones go to dir/NAME/). Prints
 * the files written on stdout and gnuplot's messages on stderr. Returns 0 when every figure
 * was drawn, 1 otherwise. */
int pb_plot_results(const pb_res *res, const char *dir, const char *backbone, const char *fmts, const char *scripts);

/* Runs scripts/gp with gnuplot -c DIR DIR/BASE FMT EXTRA... for each of fmts ("png", "svg"),
 * checking its exit status and output file; prints the files written. 0 when all were drawn. */
int pb_plot_draw(const char *scripts, const char *gp, const char *dir, const char *base, const char *fmts,
                 const char *const *extra);

#endif
