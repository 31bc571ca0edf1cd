/* tasks/datasets.c — the real data sets that `peftbench data fetch` writes (docs/TASKS.md
 * "Real data sets", shared DATA.md for sources and splits).
 *
 * Each reads DATADIR/tasks/<name>/{train,dev,test}.csv (header text,label or input,target),
 * labels.txt when present (the label order) and INFO when present (provenance). The data is
 * "present" when the three CSV files exist. This file knows each set's kind and metrics; the
 * fetch step (tasks/fetch/) knows where the data comes from. Not here: downloading.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tasks/task_impl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char *name;
    pb_task_kind kind;
    pb_metric_id metrics[2]; /* the first selects checkpoints */
    const char *positive;    /* binary: the label that F1 is about (must be label 1), or NULL */
    const char *summary;
} ds_def;

static const ds_def DS[] = {
    {"spam", PB_TASK_CLASSIFY, {PB_METRIC_ACC, PB_METRIC_F1}, "spam",
     "SpamAssassin mail: ham or spam (hash split 80/10/10)"},
    {"spam_temporal", PB_TASK_CLASSIFY, {PB_METRIC_ACC, PB_METRIC_F1}, "spam",
     "the same mail, older collections train, later mail and hard ham test"},
    {"names_gender", PB_TASK_CLASSIFY, {PB_METRIC_ACC, PB_METRIC_MACRO_F1}, NULL,
     "English first names: female or male (character level)"},
    {"brown_genre", PB_TASK_CLASSIFY, {PB_METRIC_ACC, PB_METRIC_MACRO_F1}, NULL,
     "Brown corpus paragraphs: 15 genres (split by document)"},
    {"wordnet_supersense", PB_TASK_CLASSIFY, {PB_METRIC_ACC, PB_METRIC_MACRO_F1}, NULL,
     "WordNet noun 'lemma: gloss' -> one of 25 supersenses"},
    {"cmudict_g2p", PB_TASK_GENERATE, {PB_METRIC_PER, PB_METRIC_EXACT}, NULL,
     "CMUdict: English word -> ARPAbet phonemes"},
    {"kjv2web", PB_TASK_GENERATE, {PB_METRIC_CHRF, PB_METRIC_EXACT}, NULL,
     "King James verse -> World English Bible verse (split by chapter)"},
    {"brown_pos", PB_TASK_GENERATE, {PB_METRIC_TOKEN_ACC, PB_METRIC_TER}, NULL,
     "Brown sentence -> its part-of-speech tag sequence"},
};

static const char *const SPLIT_FILES[PB_NSPLIT] = {"train.csv", "dev.csv", "test.csv"};

static const ds_def *find(const char *name) {
    for (size_t i = 0; i < N_OF(DS); i++)
        if (!strcmp(name, DS[i].name)) return &DS[i];
    return NULL;
}

static int ds_match(const char *name) { return find(name) != NULL; }

static int is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int join(char *out, size_t cap, const char *a, const char *b) {
    int n = snprintf(out, cap, "%s/%s", a, b);
    return n >= 0 && (size_t)n < cap;
}

/* DATADIR/tasks/<name>, or the dir= option. */
static pb_status task_dir(const char *data_dir, const char *name, const char *override, char *out, size_t cap) {
    if (override) {
        if ((size_t)snprintf(out, cap, "%s", override) >= cap) return pb_errorf(PB_EINVAL, "dir= path too long");
        return PB_OK;
    }
    char dd[4096];
    pb_status st = pb_task_resolve_data_dir(data_dir, dd, sizeof dd);
    if (st != PB_OK) return st;
    int n = snprintf(out, cap, "%s/tasks/%s", dd, name);
    if (n < 0 || (size_t)n >= cap) return pb_errorf(PB_EINVAL, "data directory path too long");
    return PB_OK;
}

/* Split sizes from INFO (n_train=, n_dev=, n_test=), -1 when absent. */
static void info_sizes(const char *dir, long long n[PB_NSPLIT]) {
    static const char *const keys[PB_NSPLIT] = {"n_train", "n_dev", "n_test"};
    for (int s = 0; s < PB_NSPLIT; s++) n[s] = -1;
    char path[4200];
    if (!join(path, sizeof path, dir, "INFO")) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        for (int s = 0; s < PB_NSPLIT; s++) {
            size_t kl = strlen(keys[s]);
            long long v;
            if (!strncmp(line, keys[s], kl) && line[kl] == '=' && sscanf(line + kl + 1, "%lld", &v) == 1 && v >= 0)
                n[s] = v;
        }
    }
    fclose(f);
}

/* 1 when dir holds the three split files. */
static int splits_present(const char *dir) {
    int present = 1;
    for (int s = 0; s < PB_NSPLIT; s++) {
        char path[4200];
        present &= join(path, sizeof path, dir, SPLIT_FILES[s]) && is_file(path);
    }
    return present;
}

static size_t ds_list(const char *data_dir, pb_task_entry *out, size_t cap) {
    for (size_t i = 0; i < N_OF(DS) && i < cap; i++) {
        const ds_def *d = &DS[i];
        pb_task_entry *e = &out[i];
        *e = (pb_task_entry){.family = "dataset", .kind = d->kind, .summary = d->summary, .n = {-1, -1, -1},
                             .metric = d->metrics[0], .present = 0};
        snprintf(e->name, sizeof e->name, "%s", d->name);
        char dir[4096];
        pb_status st = task_dir(data_dir, d->name, NULL, dir, sizeof dir);
        if (st != PB_OK) {
            pb_error_clear();
            continue;
        }
        int present = splits_present(dir);
        e->present = present;
        if (present) info_sizes(dir, e->n);
    }
    return N_OF(DS);
}

static pb_status ds_open(const pb_spec *spec, const char *data_dir, pb_task *t) {
    const ds_def *d = find(spec->name);
    char dir[4096], path[PB_NSPLIT][4200], p[4200];
    pb_status st = task_dir(data_dir, d->name, pb_spec_get(spec, "dir"), dir, sizeof dir);
    if (st != PB_OK) return st;
    pb_csv_opts o = pb_csv_defaults();
    if ((st = pb_spec_size(spec, "max_field", PB_CSV_MAX_FIELD_DEFAULT, 1, (size_t)1 << 30, &o.max_field)) != PB_OK)
        return st;
    int missing = 0;
    for (int s = 0; s < PB_NSPLIT; s++) {
        if (!join(path[s], sizeof path[s], dir, SPLIT_FILES[s])) return pb_errorf(PB_EINVAL, "%s: path too long", dir);
        struct stat sb;
        missing += stat(path[s], &sb) != 0;
    }
    if (missing == PB_NSPLIT)
        return pb_errorf(PB_ENOTFOUND,
                         "task %s: no data in %s (expected train.csv, dev.csv and test.csv there; run `peftbench "
                         "data fetch`, or give --data-dir)",
                         d->name, dir);
    t->kind = d->kind;
    if ((st = pb_task_set_source(t, dir)) != PB_OK) return st;
    if ((st = pb_task_set_metrics(t, d->metrics, 2, 0)) != PB_OK) return st;
    if (join(p, sizeof p, dir, "INFO") && is_file(p) && (st = pb_task_read_info(t, p)) != PB_OK) return st;
    const char *labels_what = NULL;
    if (d->kind == PB_TASK_CLASSIFY && join(p, sizeof p, dir, "labels.txt") && is_file(p)) {
        if ((st = pb_task_read_labels(t, p)) != PB_OK) return st;
        labels_what = "labels.txt";
        if (d->positive && t->n_labels == 2 && !strcmp(t->labels[0], d->positive)) {
            const char *swapped[2] = {t->labels[1], t->labels[0]}; /* F1 is about label 1 */
            if ((st = pb_task_set_labels(t, swapped, 2)) != PB_OK) return st;
        }
    }
    pb_csv_table tab[PB_NSPLIT] = {{0}};
    pb_csv_table *tabs[PB_NSPLIT] = {&tab[0], &tab[1], &tab[2]};
    for (int s = 0; s < PB_NSPLIT && st == PB_OK; s++) st = pb_csv_read(path[s], &o, &tab[s]);
    if (st == PB_OK) {
        pb_colmap cm = d->kind == PB_TASK_GENERATE ? (pb_colmap){.text = "input", .target = "target"}
                                                   : (pb_colmap){.text = "text", .label = "label"};
        st = pb_task_load_tables(t, tabs, &cm, labels_what);
    }
    for (int s = 0; s < PB_NSPLIT; s++) pb_csv_free(&tab[s]);
    if (st == PB_OK && d->positive && t->n_labels == 2 && strcmp(t->labels[1], d->positive) != 0)
        st = pb_errorf(PB_EFORMAT, "task %s: labels are %s, %s (expected '%s' among two labels, for f1)", d->name,
                       t->labels[0], t->labels[1], d->positive);
    return st;
}

/* The fetch source of a data set is its name (fetch_data.sh's tasks/<name>); a spec with dir=
 * reads the user's own copy, which nothing fetches. */
static int ds_fetched(const pb_spec *spec, const char *data_dir, char *source, size_t cap, int *present) {
    const ds_def *d = find(spec->name);
    if (!d || pb_spec_get(spec, "dir")) return 0;
    char dir[4096];
    if (task_dir(data_dir, d->name, NULL, dir, sizeof dir) != PB_OK) {
        pb_error_clear();
        return 0;
    }
    snprintf(source, cap, "%s", d->name);
    *present = splits_present(dir);
    return 1;
}

static const char *const DS_KEYS[] = {"dir", "max_field", NULL};

const pb_task_family pb_family_dataset = {
    .version = PB_TASK_FAMILY_VERSION,
    .name = "dataset",
    .summary = "real data sets fetched into DATADIR/tasks/<name>/ by `peftbench data fetch`",
    .keys = DS_KEYS,
    .positional = 0,
    .match = ds_match,
    .list = ds_list,
    .open = ds_open,
    .fetched = ds_fetched,
};
