/* tasks/task.h — the task interface: what a PEFT run trains and evaluates on (docs/TASKS.md).
 *
 * A task is opened from a spec string, `NAME[:key=value,...]`, and a data directory. It holds
 * three splits of examples, its label set, its metrics and which metric selects checkpoints.
 * After pb_task_open returns, a pb_task is read-only: threads may share it.
 *
 *   pb_task *t;
 *   if (pb_task_open("sentiment:max_train=500", NULL, &t) != PB_OK) { report pb_errmsg(); }
 *   const pb_example *ex = &t->split[PB_SPLIT_TRAIN].ex[0];   // ex->text, ex->label
 *   double m[PB_TASK_MAX_METRICS];
 *   pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.labels = pred}, m);  // m[t->select]
 *   pb_task_free(t);
 *
 * Kinds and the example fields they use:
 *   classify  text (+ text2 for sentence pairs) -> label, an index into t->labels
 *   regress   text (+ text2) -> value (a float score, e.g. GLUE STS-B); t->n_labels == 0
 *   generate  text (the input) -> target (the reference output)
 *   vision    pixels (image_h x image_w x image_c bytes, HWC) -> label; reserved, nothing
 *             produces it yet
 * Sentence pairs keep the two sentences apart (text, text2); the harness joins them with its
 * tokenizer's separator token (text SEP text2).
 *
 * Not here: tokenisation, batching, shuffling for training, decoding (the harness does those),
 * nor the data download (tasks/fetch/). The families behind the specs are in tasks/task_impl.h.
 */
#ifndef PB_TASKS_TASK_H
#define PB_TASKS_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"
#include "tasks/metrics.h"

#define PB_TASK_KIND_MAP(X)                              \
    X(CLASSIFY, "classify", "text (+ text2) -> label")  \
    X(REGRESS, "regress", "text (+ text2) -> value")    \
    X(GENERATE, "generate", "input -> target text")     \
    X(VISION, "vision", "pixels -> label (reserved)")

typedef enum {
#define PB_TASK_KIND_ENUM(id, key, desc) PB_TASK_##id,
    PB_TASK_KIND_MAP(PB_TASK_KIND_ENUM)
#undef PB_TASK_KIND_ENUM
    PB_TASK_NKIND
} pb_task_kind;

typedef enum { PB_SPLIT_TRAIN, PB_SPLIT_DEV, PB_SPLIT_TEST, PB_NSPLIT } pb_split;

/* "classify", "train". */
const char *pb_task_kind_name(pb_task_kind k);
const char *pb_split_name(pb_split s);

/* One example. Strings are UTF-8, NUL-terminated, owned by the task; lengths are bytes. */
typedef struct {
    const char *text;      /* classify/regress: the text; generate: the input; vision: NULL */
    const char *text2;     /* second sentence of a pair (GLUE MRPC, RTE, ...); NULL otherwise */
    const char *target;    /* generate: the reference output; NULL otherwise */
    uint32_t text_len, text2_len, target_len;
    int32_t label;         /* classify/vision: index into labels; -1 otherwise */
    float value;           /* regress: the gold score; 0 otherwise */
    const uint8_t *pixels; /* vision (reserved): (image_h, image_w, image_c) bytes; NULL otherwise */
} pb_example;

typedef struct {
    pb_example *ex; /* (n) */
    size_t n;
} pb_task_split;

/* Options every task accepts (docs/TASKS.md "Spec strings"). */
typedef struct {
    size_t max_train, max_dev, max_test; /* keep at most this many examples (0: all); stratified */
    size_t max_len;                      /* truncate text (+ text2) to this many bytes (0: never) */
    uint64_t split_seed;                 /* seed of generation, subsampling and carved splits */
} pb_task_opts;

typedef struct {
    size_t n_loaded[PB_NSPLIT];       /* examples before max_train / max_dev / max_test */
    size_t n_truncated[PB_NSPLIT];    /* examples whose text (+ text2) max_len cut */
    size_t n_skipped[PB_NSPLIT];      /* malformed rows skipped on request (glue bad_rows=skip) */
    size_t max_text_len[PB_NSPLIT];   /* longest text + text2 in bytes, after truncation */
    size_t max_target_len[PB_NSPLIT]; /* longest target in bytes (generate) */
} pb_task_stats;

#define PB_TASK_MAX_METRICS 4

struct pb_task_priv;

typedef struct {
    char name[64];          /* "sentiment", "spam", "glue:sst2", "csv" */
    char *spec;             /* the spec it was opened with */
    const char *family;     /* "synthetic", "dataset", "csv", "glue" */
    char *source;           /* where the examples came from: a directory, or "generated" */
    pb_task_kind kind;
    int n_labels;           /* classify/vision; 0 for regress and generate */
    char **labels;          /* (n_labels) label names, in index order */
    pb_task_split split[PB_NSPLIT];
    int n_metrics;
    pb_metric_id metrics[PB_TASK_MAX_METRICS]; /* reported metrics */
    int select;             /* index into metrics of the one that selects checkpoints; its
                               direction is pb_metric_higher_is_better(metrics[select]) */
    pb_task_opts opts;
    pb_task_stats stats;
    int image_h, image_w, image_c; /* vision only */
    struct pb_task_priv *priv;     /* storage; not for callers */
} pb_task;

/* Opens a task. data_dir may be NULL (then pb_data_dir(NULL) is used if the task needs data).
 * Errors: unknown task or option, bad value, missing or malformed data (messages name file,
 * line and column). On error *out is NULL and nothing is left allocated. */
pb_status pb_task_open(const char *spec, const char *data_dir, pb_task **out);
void pb_task_free(pb_task *t);

/* Index of a label name, or -1. */
int pb_task_label_index(const pb_task *t, const char *name);
/* A provenance value from the data set's INFO file (source, version, licence, ...), or NULL. */
const char *pb_task_info(const pb_task *t, const char *key);

/* Predictions for split s, for examples 0..n-1 (n == 0: the whole split). Set the array that
 * matches the kind. */
typedef struct {
    size_t n;
    const int *labels;        /* classify/vision: predicted label indices */
    const double *values;     /* regress: predicted scores */
    const char *const *texts; /* generate: outputs, NUL-terminated */
} pb_predictions;

/* Computes every metric of the task: out[i] is t->metrics[i]. */
pb_status pb_task_score(const pb_task *t, pb_split s, const pb_predictions *p, double out[PB_TASK_MAX_METRICS]);

/* ---- enumeration (`peftbench list tasks`) --------------------------------------------------- */
typedef struct {
    char name[64];        /* a spec that opens it: "sentiment", "spam", "glue:sst2", "csv:DIR" */
    const char *family;
    pb_task_kind kind;
    const char *summary;
    long long n[PB_NSPLIT]; /* split sizes; -1 when unknown (data absent or no INFO) */
    pb_metric_id metric;    /* the selection metric */
    int present;            /* 1: data found (or generated); 0: run `peftbench data fetch`; -1: n/a */
} pb_task_entry;

/* Fills out[0..min(cap, total)) and returns the total number of entries. data_dir may be NULL. */
size_t pb_task_list(const char *data_dir, pb_task_entry *out, size_t cap);

/* Whether the task of `spec` reads data written by `peftbench data fetch`, decided without
 * opening it: *fetched = 1 with the fetch source's name in source (what `peftbench data fetch
 * --only NAME` builds) and *present = 1 when all its files are there. *fetched = 0 for generated
 * tasks and the user's own files. Errors: an unknown task or a malformed spec (as pb_task_open). */
pb_status pb_task_fetch_need(const char *spec, const char *data_dir, int *fetched, char *source, size_t cap,
                             int *present);

/* ---- the data directory ---------------------------------------------------------------------- */
/* The first of: `flag` (--data-dir) if non-empty, $PEFTBENCH_DATA if non-empty,
 * ${XDG_DATA_HOME:-$HOME/.local/share}/peftbench. PB_ENOTFOUND when none can be formed (no HOME),
 * PB_EINVAL when the result does not fit in cap bytes. */
pb_status pb_data_dir(const char *flag, char *out, size_t cap);

#endif
