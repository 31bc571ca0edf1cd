/* experiments.h — EXPERIMENTS.md, regenerated from results, not typed by hand.
 *
 * Each experiment owns one section of EXPERIMENTS.md between the markers
 *   <!-- BEGIN experiment:ID -->  ...  <!-- END experiment:ID -->
 * and pb_experiment_update rewrites only that section (appending it the first time), so other
 * experiments' sections and any text outside the markers stay as they are. A section holds the
 * question, the exact command, the setup read back from the results file (backbone, tasks,
 * budget, seeds, learning rates, machine, commit), the table, the figures (PNGs copied next to
 * EXPERIMENTS.md under figures_rel and embedded), and "what the numbers say": statements
 * computed from the table, each compared with a published finding or with the reference run
 * of shared DESIGN.md ("Lessons").
 */
#ifndef PB_EXPERIMENTS_H
#define PB_EXPERIMENTS_H

#include "pb_error.h"
#include "results/results.h"

typedef struct {
    const char *id;          /* "survey-quick": the section's marker */
    const char *title;       /* section heading */
    const char *question;    /* what the experiment asks, one paragraph */
    const char *command;     /* the exact command that produced it */
    const char *spec;        /* the sweep spec it ran (a path shown as is) */
    const char *figures_src; /* directory holding the PNGs `peftbench plot` wrote */
    const char *figures_rel; /* where to copy them, relative to EXPERIMENTS.md (docs/figures/ID) */
} pb_experiment;

/* Rewrites experiment e's section of md_path (created if missing) from res, atomically. */
pb_status pb_experiment_update(const char *md_path, const pb_experiment *e, const pb_res *res);

#endif
