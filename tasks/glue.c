/* tasks/glue.c — the GLUE benchmark's official TSV layouts (docs/TASKS.md "glue:").
 *
 *   glue:TASK[,dir=PATH]   TASK in cola sst2 mrpc qqp stsb mnli qnli rte wnli
 *
 * Columns as the GLUE baselines read them (the transformers GLUE processors and the files of
 * download_glue_data.py): CoLA has no header (source, label, original mark, sentence); the others
 * are looked up by header name. The TSVs are read without quote processing, as the baselines do
 * (quotechar=None). GLUE's test labels are hidden, so the official dev file is our test split and
 * our dev split is carved out of train (dev_frac, stratified, from split_seed).
 * Sentence pairs are stored as text and text2; the harness joins them with its SEP token.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pb_rng.h"
#include "tasks/task_impl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const char *name;  /* spec: glue:<name> */
    const char *dir;   /* directory name in the official download */
    int header;
    const char *text, *text2, *label; /* column names ("1".."n" without a header) */
    pb_task_kind kind;
    const char *labels[3];
    int n_labels;
    pb_metric_id metrics[2];
    int n_metrics;
    const char *summary;
} glue_def;

static const glue_def GLUE[] = {
    {"cola", "CoLA", 0, "4", NULL, "2", PB_TASK_CLASSIFY, {"0", "1"}, 2, {PB_METRIC_MCC, PB_METRIC_ACC}, 2,
     "GLUE CoLA: is the sentence grammatical?"},
    {"sst2", "SST-2", 1, "sentence", NULL, "label", PB_TASK_CLASSIFY, {"0", "1"}, 2, {PB_METRIC_ACC}, 1,
     "GLUE SST-2: movie review sentiment"},
    {"mrpc", "MRPC", 1, "#1 String", "#2 String", "Quality", PB_TASK_CLASSIFY, {"0", "1"}, 2,
     {PB_METRIC_ACC, PB_METRIC_F1}, 2, "GLUE MRPC: are the two sentences paraphrases?"},
    {"qqp", "QQP", 1, "question1", "question2", "is_duplicate", PB_TASK_CLASSIFY, {"0", "1"}, 2,
     {PB_METRIC_ACC, PB_METRIC_F1}, 2, "GLUE QQP: are the two questions duplicates?"},
    {"stsb", "STS-B", 1, "sentence1", "sentence2", "score", PB_TASK_REGRESS, {NULL}, 0,
     {PB_METRIC_PEARSON, PB_METRIC_SPEARMAN}, 2, "GLUE STS-B: similarity score 0-5 (regression)"},
    {"mnli", "MNLI", 1, "sentence1", "sentence2", "gold_label", PB_TASK_CLASSIFY,
     {"contradiction", "entailment", "neutral"}, 3, {PB_METRIC_ACC}, 1,
     "GLUE MNLI: entailment, neutral or contradiction"},
    {"qnli", "QNLI", 1, "question", "sentence", "label", PB_TASK_CLASSIFY, {"entailment", "not_entailment"}, 2,
     {PB_METRIC_ACC}, 1, "GLUE QNLI: does the sentence answer the question?"},
    {"rte", "RTE", 1, "sentence1", "sentence2", "label", PB_TASK_CLASSIFY, {"entailment", "not_entailment"}, 2,
     {PB_METRIC_ACC}, 1, "GLUE RTE: textual entailment"},
    {"wnli", "WNLI", 1, "sentence1", "sentence2", "label", PB_TASK_CLASSIFY, {"0", "1"}, 2, {PB_METRIC_ACC}, 1,
     "GLUE WNLI: Winograd entailment"},
};

static const glue_def *find(const char *name) {
    for (size_t i = 0; name && i < N_OF(GLUE); i++)
        if (!strcmp(name, GLUE[i].name)) return &GLUE[i];
    return NULL;
}

static int glue_match(const char *name) { return !strcmp(name, "glue"); }

static int is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* DATADIR/glue/<Dir>, or dir=. */
static pb_status glue_dir(const char *data_dir, const glue_def *g, const char *override, char *out, size_t cap) {
    int n;
    if (override) n = snprintf(out, cap, "%s", override);
    else {
        char dd[4096];
        pb_status st = pb_task_resolve_data_dir(data_dir, dd, sizeof dd);
        if (st != PB_OK) return st;
        n = snprintf(out, cap, "%s/glue/%s", dd, g->dir);
    }
    if (n < 0 || (size_t)n >= cap) return pb_errorf(PB_EINVAL, "GLUE directory path too long");
    return PB_OK;
}

static const char *test_file(const glue_def *g, int mm) {
    if (!strcmp(g->name, "mnli")) return mm ? "dev_mismatched.tsv" : "dev_matched.tsv";
    return "dev.tsv";
}

static size_t glue_list(const char *data_dir, pb_task_entry *out, size_t cap) {
    for (size_t i = 0; i < N_OF(GLUE) && i < cap; i++) {
        const glue_def *g = &GLUE[i];
        pb_task_entry *e = &out[i];
        *e = (pb_task_entry){.family = "glue", .kind = g->kind, .summary = g->summary, .n = {-1, -1, -1},
                             .metric = g->metrics[0], .present = 0};
        snprintf(e->name, sizeof e->name, "glue:%s", g->name);
        char dir[4096], a[4200], b[4200];
        if (glue_dir(data_dir, g, NULL, dir, sizeof dir) != PB_OK) {
            pb_error_clear();
            continue;
        }
        snprintf(a, sizeof a, "%s/train.tsv", dir);
        snprintf(b, sizeof b, "%s/%s", dir, test_file(g, 0));
        e->present = is_file(a) && is_file(b);
    }
    return N_OF(GLUE);
}

static pb_status glue_open(const pb_spec *spec, const char *data_dir, pb_task *t) {
    const glue_def *g = find(spec->positional);
    if (!g) {
        char names[256];
        size_t used = 0;
        names[0] = '\0';
        for (size_t i = 0; i < N_OF(GLUE); i++) {
            int k = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", GLUE[i].name);
            if (k > 0 && (size_t)k < sizeof names - used) used += (size_t)k;
        }
        return pb_errorf(PB_EINVAL, "task spec '%s': %s%s%s (expected glue:TASK with TASK one of: %s)", spec->text,
                         spec->positional ? "unknown GLUE task '" : "no GLUE task given",
                         spec->positional ? spec->positional : "", spec->positional ? "'" : "", names);
    }
    snprintf(t->name, sizeof t->name, "glue:%s", g->name);
    static const char *const bad_rows[] = {"error", "skip", NULL};
    int mm, skip;
    double dev_frac;
    pb_csv_opts o = pb_csv_defaults();
    pb_status st;
    if ((st = pb_spec_bool(spec, "mm", 0, &mm)) != PB_OK ||
        (st = pb_spec_choice(spec, "bad_rows", bad_rows, 0, &skip)) != PB_OK ||
        (st = pb_spec_double(spec, "dev_frac", 0.1, 0.001, 0.5, &dev_frac)) != PB_OK ||
        (st = pb_spec_size(spec, "max_field", PB_CSV_MAX_FIELD_DEFAULT, 1, (size_t)1 << 30, &o.max_field)) != PB_OK)
        return st;
    if (mm && strcmp(g->name, "mnli") != 0)
        return pb_errorf(PB_EINVAL, "task spec '%s': mm=1 applies to glue:mnli only", spec->text);
    char dir[4096], train[4200], test[4200];
    if ((st = glue_dir(data_dir, g, pb_spec_get(spec, "dir"), dir, sizeof dir)) != PB_OK) return st;
    snprintf(train, sizeof train, "%s/train.tsv", dir);
    snprintf(test, sizeof test, "%s/%s", dir, test_file(g, mm));
    o.delim = '\t';
    o.header = g->header;
    o.quoting = 0;
    o.skip_bad_rows = skip;

    t->kind = g->kind;
    if ((st = pb_task_set_source(t, dir)) != PB_OK) return st;
    if (g->n_labels && (st = pb_task_set_labels(t, g->labels, g->n_labels)) != PB_OK) return st;
    if ((st = pb_task_set_metrics(t, g->metrics, g->n_metrics, 0)) != PB_OK) return st;

    pb_csv_table tr = {0}, te = {0};
    pb_csv_table *tabs[PB_NSPLIT] = {&tr, NULL, &te};
    char what[64];
    snprintf(what, sizeof what, "GLUE %s's label set", g->dir);
    if ((st = pb_csv_read(train, &o, &tr)) == PB_OK && (st = pb_csv_read(test, &o, &te)) == PB_OK) {
        pb_colmap cm = {.text = g->text, .text2 = g->text2, .label = g->label};
        st = pb_task_load_tables(t, tabs, &cm, what);
    } else if (st == PB_EFORMAT && !skip && strstr(pb_errmsg(), " field")) {
        /* some official files (QQP) hold a few broken rows: say how to get past them */
        pb_error_context(st, "glue:%s (bad_rows=skip skips rows with the wrong number of fields)", g->name);
    }
    pb_csv_free(&tr);
    pb_csv_free(&te);
    if (st == PB_OK)
        st = pb_task_carve(t, PB_SPLIT_TRAIN, PB_SPLIT_DEV, dev_frac, pb_hash_u64(t->opts.split_seed, 0x61e));
    return st;
}

static const char *const GLUE_KEYS[] = {"dir", "dev_frac", "mm", "bad_rows", "max_field", NULL};

const pb_task_family pb_family_glue = {
    .version = PB_TASK_FAMILY_VERSION,
    .name = "glue",
    .summary = "the official GLUE TSV files (glue:sst2,dir=PATH)",
    .keys = GLUE_KEYS,
    .positional = 1,
    .match = glue_match,
    .list = glue_list,
    .open = glue_open,
};
