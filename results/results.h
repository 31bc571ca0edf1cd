/* results.h — the results store: one HDF5 file per sweep, one row per cell (results/SCHEMA.md).
 *
 * A results file holds a `/runs` table (compound, one row per cell: identity and full
 * configuration, parameters, FLOPs, memory, time, quality, forgetting, provenance, status) and
 * the cells' curves as ragged arrays under `/curves` (each row says where its slice starts and
 * how long it is). Rows are identified by `key`, a hash of the cell's canonical configuration
 * string (pb_res_key); a file never holds two rows with the same key.
 *
 * Crash safety (SCHEMA.md "Crash safety"): a file is never modified in place. Every write
 * produces a complete new version in PATH.tmp (flushed, fsync'd, closed) and renames it over
 * PATH, so a kill -9 at any instant leaves PATH as the previous complete version or the new
 * one. A sweep keeps its rows in memory and rewrites the file after each finished cell; a lock
 * file (PATH.lock, flock) keeps two writers apart.
 *
 *   pb_res r;                                   // what a sweep holds
 *   pb_res_init(&r);
 *   if (pb_res_read("RESULTS.h5", &r)) ...      // PB_ENOTFOUND when the file does not exist
 *   pb_res_put(&r, &row);                       // deep copy; replaces a row with the same key
 *   pb_res_write("RESULTS.h5", &r);             // atomic
 *   pb_res_free(&r);
 *
 * Not: running cells (harness/sweep.c), tables (results/table.h) or plots (plots/). This
 * module needs only core and HDF5: the harness fills rows from what a cell measured.
 */
#ifndef PB_RESULTS_H
#define PB_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"
#include "pb_mem.h"

#define PB_RES_MAGIC "peftbench-results"
#define PB_RES_VERSION 2 /* 2: test records (/examples), setup_steps; version 1 files are read too */
#define PB_RES_MAX_METRICS 4

/* Status of a cell. */
typedef enum { PB_CELL_OK, PB_CELL_DIVERGED, PB_CELL_FAILED } pb_cell_status;
const char *pb_cell_status_name(pb_cell_status s); /* "ok", "diverged", "failed" */

/* Fixed string sizes (bytes, NUL included) of the /runs fields; SCHEMA.md lists them. Writers
 * check that values fit (pb_res_put fails rather than truncating an identity field). */
#define PB_RES_KEY 17      /* 16 hex digits */
#define PB_RES_NAME 64
#define PB_RES_SPEC 256
#define PB_RES_CONFIG 1024
#define PB_RES_MESSAGE 512
#define PB_RES_SHORT 24

/* One cell. Numbers that were not measured are NaN (floating point) or 0. */
typedef struct {
    /* identity */
    char key[PB_RES_KEY];             /* pb_res_key(config) */
    char config[PB_RES_CONFIG];       /* canonical configuration string (hashed into key) */
    char sweep[PB_RES_NAME];          /* name of the sweep spec that produced it */
    char backbone[PB_RES_SPEC];       /* as given: preset, checkpoint path, "default" */
    char backbone_name[PB_RES_NAME];  /* short name: preset or checkpoint file name */
    char method[PB_RES_SPEC];         /* canonical method spec (every hyperparameter) */
    char method_name[PB_RES_NAME];    /* registry name ("lora") */
    char method_label[PB_RES_NAME];   /* display label ("lora", "lora r=4") */
    char category[PB_RES_SHORT];      /* survey category ("reparameterization") */
    char task[PB_RES_SPEC];           /* task spec as given */
    char task_name[PB_RES_NAME];      /* task name ("sentiment", "glue:sst2") */
    char task_kind[PB_RES_SHORT];     /* "classify", "generate" */
    /* configuration */
    uint64_t seed;
    int32_t steps, batch, max_len, eval_every, eval_max, gen_max;
    int32_t group_by_length;          /* 1: length-grouped training batches (version 2) */
    double lr, weight_decay, warmup_frac, clip;
    char schedule[PB_RES_SHORT];
    /* status */
    char status[PB_RES_SHORT];        /* pb_cell_status_name */
    char message[PB_RES_MESSAGE];     /* why it failed or diverged; "" when ok */
    /* parameters (Hugging Face PEFT conventions) */
    uint64_t trainable, total, adapter_bytes;
    double trainable_pct;             /* 100 * trainable / total */
    /* FLOPs per training token by phase; per inference token unmerged and merged (NaN: cannot) */
    double flops_fwd, flops_bwd_in, flops_bwd_w, flops_train, infer_flops, infer_flops_merged;
    /* memory: peak bytes per category (index pb_mem_cat), peak tracked total, process peak RSS */
    uint64_t mem_peak[PB_MEM_NCAT];
    uint64_t mem_peak_total, peak_rss;
    /* time */
    double wall_seconds, train_seconds, train_tok_per_s, infer_tok_per_s;
    double cpu_seconds;               /* CPU time (user + system) of the cell's process: its cost,
                                         whatever else the machine ran */
    int64_t train_tokens;
    /* quality: metrics "acc,macro_f1" (the selecting one is select_metric) */
    char metrics[PB_RES_NAME];
    char select_metric[PB_RES_SHORT];
    int32_t higher_is_better;         /* of select_metric */
    int32_t n_metrics, best_step;
    double dev_metric, test_metric;   /* selecting metric: best dev, test at that evaluation */
    double dev_all[PB_RES_MAX_METRICS], test_all[PB_RES_MAX_METRICS]; /* every metric, same point */
    uint64_t n_truncated;
    /* forgetting: held-out corpus bits per byte before and after fine-tuning (NaN: not measured) */
    char forgetting_corpus[PB_RES_NAME];
    double heldout_bpb_before, heldout_bpb_after, forgetting;
    /* provenance */
    char git_commit[PB_RES_NAME], compiler[PB_RES_NAME], blas[PB_RES_SPEC], host[PB_RES_NAME];
    char date[PB_RES_SHORT + 8];      /* UTC, ISO 8601: 2025-01-31T12:34:56Z */
    char version[PB_RES_SHORT];       /* peftbench version */
    int32_t threads, jobs;            /* threads of this cell; cells run side by side */
    int32_t setup_steps;              /* steps of the budget a method spent before its trainable set
                                         was final (sparse's Fisher warm-up); 0 for the others */
    int32_t ex_width;                 /* floats per test record (0: no records) */
    /* curves (not in /runs; offsets and counts into /curves are computed on write) */
    int32_t n_evals, n_loss;
    int32_t *eval_step;               /* (n_evals) steps completed at each evaluation */
    float *eval_train_loss;           /* (n_evals) mean training loss since the previous one */
    float *eval_dev, *eval_test;      /* (n_evals) selecting metric on dev and on test */
    float *loss;                      /* (n_loss) training loss of every step */
    /* test records at the best dev point, one per test example (docs/STATISTICS.md; not in /runs:
     * /examples): classification (predicted, gold label); generation the per-example statistics
     * of every metric in `metrics` order (tasks/metrics.h) */
    int64_t n_ex;
    float *ex;                        /* (n_ex, ex_width) */
} pb_res_row;

/* A set of rows (in insertion order). */
typedef struct {
    pb_res_row *rows;
    size_t n, cap;
    long *index;      /* open-addressing table of row indices by key (-1 empty) */
    size_t n_index;   /* its size, a power of two > 2n */
} pb_res;

void pb_res_init(pb_res *r);
void pb_res_free(pb_res *r);
/* A zeroed row with NaN in every not-measured number. */
void pb_res_row_init(pb_res_row *row);
/* Frees a row's curves (rows inside a pb_res are freed by pb_res_free). */
void pb_res_row_free(pb_res_row *row);
/* Deep-copies row into r, replacing the row with the same key if there is one. PB_EINVAL when
 * the key is not 16 hex digits, or a status is not ok/diverged/failed. */
pb_status pb_res_put(pb_res *r, const pb_res_row *row);
/* Index of the row with this key, or -1. */
long pb_res_find(const pb_res *r, const char *key);
/* Keeps the rows for which keep(row, ctx) is non-zero, in their order, and frees the others;
 * returns how many were dropped. */
size_t pb_res_keep(pb_res *r, int (*keep)(const pb_res_row *row, void *ctx), void *ctx);

/* Reads a results file into r (appending; rows with a key already in r replace it). Errors:
 * PB_ENOTFOUND (no such file), PB_EFORMAT (not a results file, another schema version, damaged;
 * the message says which and what to do). Never crashes on a bad file. */
pb_status pb_res_read(const char *path, pb_res *r);
/* Writes all rows to path atomically (PATH.tmp, fsync, rename, fsync of the directory).
 * Errors: PB_EIO / PB_EHDF5 naming the path; PATH is then unchanged. */
pb_status pb_res_write(const char *path, const pb_res *r);

/* Takes the writer lock of path (PATH.lock, flock exclusive, non-blocking) and removes a stale
 * PATH.tmp. PB_EIO when another process holds it. *fd receives the lock; pb_res_unlock frees. */
pb_status pb_res_lock(const char *path, int *fd);
void pb_res_unlock(int fd);

/* key = 16 lowercase hex digits of FNV-1a 64 over the bytes of config (SCHEMA.md "Keys"). */
void pb_res_key(const char *config, char key[PB_RES_KEY]);

/* Test hook (SCHEMA.md "Testing crash safety"): if $PEFTBENCH_CRASH is "STAGE:K", the K-th
 * time this process reaches STAGE it kills itself with SIGKILL. Stages reached by the writer:
 * "tmp-created", "tmp-written", "tmp-synced", "renamed"; the sweep adds its own. */
void pb_res_crash_point(const char *stage);

#endif
