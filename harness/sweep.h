/* sweep.h — sweeps: a spec file expanded into cells, run side by side, recorded to HDF5.
 *
 * A spec (INI, experiments/README.md) names backbones, tasks, methods with hyperparameter
 * grids, learning rates, seeds and the training budget. Its cross product is the list of
 * cells; each cell has a canonical configuration string and a key (its hash, results.h), the
 * same on every run and machine. pb_sweep_load parses and validates everything it can before
 * anything runs (methods, hyperparameters, tasks, backbones, the forgetting corpus), with
 * errors that name the file, line and key.
 *
 * pb_sweep_run runs the cells not yet in the results file (resume), each in a child process
 * (fork): a crash or abort of one cell is recorded as a failed cell and the sweep goes on; each
 * cell's counters, peak RSS and thread pool are its own; --jobs N children run side by side.
 * The parent is the only writer of the results file (results.h: atomic rewrite per finished
 * cell). It never runs OpenMP code itself, so forking is safe with libgomp.
 *
 * Not: the results file layout (results/), tables or plots.
 */
#ifndef PB_SWEEP_H
#define PB_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "finetune.h"
#include "results/results.h"

/* Per-step losses kept per cell (the first ones; results/SCHEMA.md "/curves"). */
#define PB_SWEEP_MAX_LOSS (1 << 20)

/* One cell: its run configuration and everything recorded beside what it measures. */
typedef struct {
    pb_run_config cfg;                 /* strings point into the cell and the spec */
    char key[PB_RES_KEY];
    char config[PB_RES_CONFIG];        /* canonical configuration string */
    char backbone[PB_RES_SPEC];        /* as written in the spec */
    char backbone_path[PB_RES_SPEC];   /* what cfg.backbone runs: preset name or checkpoint path */
    char backbone_name[PB_RES_NAME];
    char method[PB_RES_SPEC];          /* canonical method spec */
    char method_name[PB_RES_NAME];
    char label[PB_RES_NAME];
    char category[PB_RES_SHORT];
    char task[PB_RES_SPEC];            /* as written */
    char task_name[PB_RES_NAME];
    char task_kind[PB_RES_SHORT];
    int task_index;                    /* into the spec's opened tasks */
    int ref;                           /* a reference row's cell (pb_ref_kind), or -1 */
    int deferred;                      /* lr_protocol first_seed: a later seed's cell, run only when
                                          its rate is the one the first seed's cells choose */
} pb_sweep_cell;

typedef struct {
    char path[1024];                   /* the spec file */
    char name[PB_RES_NAME];
    char data_dir[1024];
    int threads;                       /* per cell (0: decided by the runner) */
    char forgetting[PB_RES_NAME];      /* corpus spec, "" = not measured */
    size_t forgetting_tokens;
    int32_t *heldout;                  /* (n_heldout) held-out tokens of that corpus */
    size_t n_heldout;
    void **tasks;                      /* (n_tasks) opened tasks (pb_task *), shared by cells */
    int n_tasks;
    pb_sweep_cell *cells;              /* (n_cells) in run order */
    size_t n_cells;
    int n_skipped;                     /* combinations left out (method cannot serve the task) */
    char skipped_note[512];
    int first_seed;                    /* lr_protocol = first_seed (docs/STATISTICS.md) */
} pb_sweep_spec;

/* Parses and validates a spec and expands its cells. data_dir (may be NULL) overrides the
 * spec's. Errors: PB_EINVAL / PB_ENOTFOUND / PB_EFORMAT with "FILE:LINE: ..." messages. */
pb_status pb_sweep_load(const char *path, const char *data_dir, pb_sweep_spec *s);
void pb_sweep_free(pb_sweep_spec *s);

/* What a spec names that may have to be fetched or pretrained first (harness/prepare.h), read
 * without opening, resolving or pretraining anything. Syntax errors are left to pb_sweep_load
 * (whatever could be read is returned). data_dir: the data_dir argument, else the spec's
 * data_dir key, else pb_data_dir. */
typedef struct {
    char data_dir[1024];
    char forgetting[PB_RES_NAME];  /* "" when none */
    char **backbones;              /* (n_backbones) as written */
    int n_backbones;
    char **tasks;                  /* (n_tasks) as written */
    int n_tasks;
} pb_sweep_inputs;
pb_status pb_sweep_read_inputs(const char *path, const char *data_dir, pb_sweep_inputs *in);
void pb_sweep_inputs_free(pb_sweep_inputs *in);

/* Path of the default backbone (models/pretrain.h), pretraining it in a child process if it is
 * missing (the parent must stay free of OpenMP threads before forking cells). */
pb_status pb_sweep_default_backbone(const char *data_dir, int threads, char *out, size_t cap);

/* Canonical forms used in the configuration string (exposed for tests). */
pb_status pb_sweep_canon_method(const char *spec, char *out, size_t cap);
void pb_sweep_canon_task(const char *spec, char *out, size_t cap);
/* Shortest text that reads back as the same double (strtod) / float (strtof). */
void pb_sweep_canon_float(double v, char *out, size_t cap);
void pb_sweep_canon_f32(float v, char *out, size_t cap);

typedef struct {
    const char *out;   /* results file */
    int jobs;          /* cells side by side (>= 1) */
    int threads;       /* per cell (0: the spec's, else cores / jobs) */
    int shard_k, shard_n; /* run cells i with i % shard_n == shard_k - 1 (1 <= k <= n) */
    int progress;      /* -1: a bar when stderr is a terminal; 0: plain lines; 1: bar */
    int quiet;         /* no per-cell lines */
} pb_sweep_opts;

typedef struct {
    size_t total, in_shard, already, run, ok, diverged, failed;
    size_t left_out;   /* lr_protocol first_seed: later seeds' cells at rates not chosen */
    size_t undecided;  /* of those, left out because the first seed's cells were incomplete */
    int interrupted;
} pb_sweep_summary;

/* Runs the shard's cells that are not finished in opts->out (status ok or diverged; failed
 * cells are retried), rewriting the file after each one. Errors concern the sweep itself (the
 * results file cannot be read, locked or written); cell failures are recorded, not returned. */
pb_status pb_sweep_run(const pb_sweep_spec *s, const pb_sweep_opts *opts, pb_sweep_summary *sum);

#endif
