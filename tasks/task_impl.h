/* tasks/task_impl.h — for authors of task families (not for the harness, which uses task.h).
 *
 * A family is one file filling one `const pb_task_family`, listed in tasks/task_list.h. Its
 * `open` fills kind, labels, metrics and examples of a fresh pb_task; tasks/task.c then applies
 * the options every task shares (max_train, max_dev, max_test, max_len), checks the result and
 * computes the statistics, identically for every family. Strings of examples live in the task's
 * arena (pb_task_strdup); examples are appended with pb_task_add.
 *
 * Also here: the spec parser (typed getters with range checks and errors that list the accepted
 * keys), the CSV-to-examples loader shared by the data-set, csv and glue families, and a
 * stratified carve of one split out of another.
 */
#ifndef PB_TASKS_TASK_IMPL_H
#define PB_TASKS_TASK_IMPL_H

#include "tasks/csv.h"
#include "tasks/task.h"

/* ---- spec strings ---------------------------------------------------------------------------- */
#define PB_SPEC_MAX_ITEMS 32

typedef struct {
    const char *key, *val;
} pb_spec_item;

typedef struct pb_spec {
    const char *text;       /* the whole spec, for messages */
    char name[64];          /* before the ':' */
    const char *positional; /* a bare item right after the ':', or NULL */
    int n;
    pb_spec_item item[PB_SPEC_MAX_ITEMS];
    char *buf;              /* storage */
} pb_spec;

pb_status pb_spec_parse(const char *text, pb_spec *out);
void pb_spec_free(pb_spec *s);
/* The value of key, or NULL. */
const char *pb_spec_get(const pb_spec *s, const char *key);
/* Typed getters: dflt when absent; a bad or out-of-range value is PB_EINVAL naming the key. */
pb_status pb_spec_size(const pb_spec *s, const char *key, size_t dflt, size_t lo, size_t hi, size_t *out);
pb_status pb_spec_u64(const pb_spec *s, const char *key, uint64_t dflt, uint64_t *out);
pb_status pb_spec_double(const pb_spec *s, const char *key, double dflt, double lo, double hi, double *out);
pb_status pb_spec_bool(const pb_spec *s, const char *key, int dflt, int *out);
/* One of choices (NULL-terminated); *out is its index. */
pb_status pb_spec_choice(const pb_spec *s, const char *key, const char *const *choices, int dflt, int *out);

/* ---- families -------------------------------------------------------------------------------- */
#define PB_TASK_FAMILY_VERSION 1

typedef struct pb_task_family {
    int version;                 /* PB_TASK_FAMILY_VERSION */
    const char *name;            /* "synthetic" */
    const char *summary;         /* one line */
    const char *const *keys;     /* NULL-terminated option keys besides the common ones */
    int positional;              /* 1: accepts a bare item after ':' (glue:sst2, csv:DIR) */
    /* 1 when spec NAME belongs to this family. */
    int (*match)(const char *name);
    /* Entries for pb_task_list: fills out[0..min(cap, total)) and returns total. */
    size_t (*list)(const char *data_dir, pb_task_entry *out, size_t cap);
    /* Fills t (name, kind, labels, metrics, examples, source). data_dir may be NULL. */
    pb_status (*open)(const pb_spec *spec, const char *data_dir, pb_task *t);
    /* Optional (NULL: the family never reads fetched data). Returns 1 when this spec reads data
     * that `peftbench data fetch` writes, with the fetch source's name (fetch_data.sh --only NAME)
     * in source and *present set when every file the task opens is there; 0 otherwise (e.g. the
     * spec points at the user's own files). data_dir is resolved (not NULL). */
    int (*fetched)(const pb_spec *spec, const char *data_dir, char *source, size_t cap, int *present);
} pb_task_family;

/* The registered families, in task_list.h order. */
size_t pb_task_families(const pb_task_family *const **out);

/* Options every task accepts (NULL-terminated). */
extern const char *const pb_task_common_keys[];

/* data_dir, or pb_data_dir(NULL) when data_dir is NULL. */
pb_status pb_task_resolve_data_dir(const char *data_dir, char *out, size_t cap);

/* ---- building a task ------------------------------------------------------------------------- */
/* Copies s[0..len) into the task's arena (NUL-terminated); NULL and PB_ENOMEM set on failure. */
char *pb_task_strdup(pb_task *t, const char *s, size_t len);
/* Appends a copy of *ex to split s; its strings must live in the task (pb_task_strdup). */
pb_status pb_task_add(pb_task *t, pb_split s, const pb_example *ex);
pb_status pb_task_set_labels(pb_task *t, const char *const *names, int n);
/* Metrics in report order; select indexes the one that selects checkpoints. */
pb_status pb_task_set_metrics(pb_task *t, const pb_metric_id *m, int n, int select);
pb_status pb_task_set_info(pb_task *t, const char *key, const char *val);
pb_status pb_task_set_source(pb_task *t, const char *source);
/* Parses an INFO file (key=value lines, '#' comments) into the task's info. */
pb_status pb_task_read_info(pb_task *t, const char *path);
/* Reads labels.txt (one label per line, no duplicates) into the task's label set. */
pb_status pb_task_read_labels(pb_task *t, const char *path);

/* Which columns feed which fields (NULL: unused). */
typedef struct {
    const char *text, *text2; /* classify/regress text; generate input is `text` */
    const char *label;        /* classify label or regress value */
    const char *target;       /* generate target */
} pb_colmap;

/* Converts CSV tables into examples of t->kind. Any of tabs[] may be NULL (split not loaded from a
 * file). Classification: when t already has labels (labels.txt, GLUE), a label outside them is an
 * error ("not one of"); otherwise the label set is the sorted distinct train labels. A dev/test
 * label that train never uses is an error naming file, line and column. `labels_what` names the
 * fixed label set in messages ("labels.txt"). */
pb_status pb_task_load_tables(pb_task *t, pb_csv_table *const tabs[PB_NSPLIT], const pb_colmap *cm,
                              const char *labels_what);

/* Moves a fraction of split `from` into the empty split `to`: stratified by label for
 * classification, chosen with seed; both keep their original relative order. */
pb_status pb_task_carve(pb_task *t, pb_split from, pb_split to, double frac, uint64_t seed);

/* Keeps at most n examples of split s (stratified by label for classification; every label
 * keeps at least one when n allows), chosen with seed, in their original order. */
pb_status pb_task_subsample(pb_task *t, pb_split s, size_t n, uint64_t seed);

/* 64-bit FNV-1a of bytes, for deduplication and seeds. */
uint64_t pb_task_hash(const void *p, size_t n, uint64_t h);

#endif
