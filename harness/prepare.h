/* prepare.h — what a command needs before it runs, decided explicitly, and getting exactly that.
 *
 * A sweep (or survey, or one `run`) may need three things that a fresh machine does not have:
 *   - the data of fetched tasks (DATADIR/tasks/<name>/, built by `peftbench data fetch`);
 *   - the fetched corpus (DATADIR/corpus/<source>.txt), when the default backbone must be pretrained
 *     on it or when the forgetting metric reads it (forgetting = fetched);
 *   - the default backbone (DATADIR/backbones/<recipe>.h5), pretrained once and cached.
 * pb_needs_check decides what is missing by looking at the files the loaders open
 * (pb_task_fetch_need, pb_corpus_fetched_missing, pb_default_backbone_state) — never by reading
 * an error message. pb_prepare then says, one line each, what is missing and why, fetches exactly
 * those sources (`fetch_data.sh DATADIR --only corpus,spam,...`), checks again, and announces
 * the pretraining that follows (pb_default_backbone_path / pb_sweep_default_backbone do it).
 *
 * Not: the fetching itself (tasks/fetch/fetch_data.sh), pretraining (models/pretrain.h).
 */
#ifndef PB_PREPARE_H
#define PB_PREPARE_H

#include <stddef.h>
#include <stdio.h>

#include "models/pretrain.h"
#include "pb_error.h"

#define PB_NEEDS_MAX_TASKS 64

/* What a command names: backbones (presets, checkpoint paths or "default"), task specs, the
 * forgetting corpus ("fetched", "builtin", a file, or NULL/"" for none), the data directory
 * (resolved: pb_data_dir). */
typedef struct {
    const char *const *backbones;
    int n_backbones;
    const char *const *tasks;
    int n_tasks;
    const char *forgetting;
    const char *data_dir;
} pb_inputs;

typedef struct {
    char data_dir[1024];
    /* the default backbone (when a backbone is "default") */
    int default_backbone;
    char backbone_path[1100];
    pb_backbone_state backbone;
    /* the fetched corpus: needed to pretrain the default backbone or for forgetting = fetched */
    int corpus_needed;
    char corpus_why[200];
    int corpus_missing;                /* number of its files missing (0: complete) */
    char corpus_first_missing[1100];
    /* fetched tasks whose data is missing: the fetch source and the spec that needs it */
    int n_tasks;
    char task_source[PB_NEEDS_MAX_TASKS][64];
    char task_spec[PB_NEEDS_MAX_TASKS][256];
} pb_needs;

/* Decides what in is missing. A task spec that does not parse is skipped (the loader reports
 * it). Errors: a data directory path that is too long. */
pb_status pb_needs_check(const pb_inputs *in, pb_needs *n);

/* The fetch sources n lacks, comma-separated ("corpus,names_gender,spam"); "" when none. */
void pb_needs_fetch_list(const pb_needs *n, char *out, size_t cap);

/* 1 when the default backbone must be pretrained (absent, or an interrupted run to resume). */
int pb_needs_pretraining(const pb_needs *n);

/* Runs the fetch script (tasks/fetch/fetch_data.sh, or $PEFTBENCH_SCRIPTS/fetch_data.sh) as
 * `bash SCRIPT DATA_DIR --only ONLY [--quiet]` and waits for it. ONLY: "all", "corpus", "tasks"
 * or a comma-separated list of sources. Errors: the script is missing, could not be run, or
 * failed (its exit status in the message; the script prints its own reasons). */
pb_status pb_data_fetch(const char *data_dir, const char *only, int quiet);

/* The path of the fetch script that pb_data_fetch runs (it may not exist). */
void pb_data_fetch_script(char *out, size_t cap);

/* The whole step for a command `who` ("survey", "sweep", "run"): pb_needs_check; one line on
 * log per missing thing saying what and why; then, when allow_fetch, fetch exactly the missing
 * sources and check again (a source still missing after the fetch is an error naming it);
 * without allow_fetch, a missing source is an error (PB_ENOTFOUND) naming each one and the
 * command that fetches them. A default backbone that must be pretrained is announced on log
 * (the caller pretrains it); an unreadable one is an error. n may be NULL. */
pb_status pb_prepare(const pb_inputs *in, int allow_fetch, const char *who, FILE *log, pb_needs *n);

/* A pb_pretrain_cb that prints a line on stderr every 5% of a default-backbone pretraining (it
 * takes minutes); ud points to a long initialised to -1. */
int pb_pretrain_progress_lines(const pb_pretrain_progress *p, void *ud);

/* The default backbone's path for a command that runs in-process (`run`, `score`): pb_prepare
 * for it (the corpus, fetched unless !allow_fetch), then pb_default_backbone_path, pretraining
 * with progress lines if it is not cached. */
pb_status pb_prepare_default_backbone(const char *data_dir, int threads, int allow_fetch, const char *who, char *out,
                                      size_t cap);

/* pb_prepare for what a sweep spec names (pb_sweep_read_inputs). */
pb_status pb_prepare_spec(const char *spec_path, const char *data_dir_flag, int allow_fetch, const char *who,
                          FILE *log);

#endif
