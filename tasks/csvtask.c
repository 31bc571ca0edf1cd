/* tasks/csvtask.c — your own CSV/TSV files as a task (docs/TASKS.md "Your own data").
 *
 *   csv:DIR                      DIR/train.csv, DIR/dev.csv, DIR/test.csv (or .tsv)
 *   csv:train=F,dev=F,test=F     named files (relative to dir= when given)
 *
 * The kind is given (kind=classify|regress|generate) or inferred from the columns: `input` and
 * `target` make a generation task, otherwise `text` and `label` a classification. A split that
 * is not given is carved out of train (dev_frac, test_frac; stratified; from split_seed).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pb_rng.h"
#include "tasks/task_impl.h"

static int csv_match(const char *name) { return !strcmp(name, "csv"); }

static size_t csv_list(const char *data_dir, pb_task_entry *out, size_t cap) {
    (void)data_dir;
    if (cap >= 1) {
        out[0] = (pb_task_entry){.family = "csv", .kind = PB_TASK_CLASSIFY, .n = {-1, -1, -1},
                                 .summary = "your own CSV/TSV: train/dev/test files with text,label or input,target",
                                 .metric = PB_METRIC_ACC, .present = -1};
        snprintf(out[0].name, sizeof out[0].name, "csv:DIR");
    }
    return 1;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The path of split file `key` (train/dev/test): the option, relative to dir when not absolute;
 * else dir/<key>.csv or dir/<key>.tsv; "" when neither is given nor found (carve it). */
static pb_status split_path(const pb_spec *spec, const char *dir, const char *key, char *out, size_t cap) {
    const char *f = pb_spec_get(spec, key);
    int n = 0;
    out[0] = '\0';
    if (f) {
        if (!*f) return pb_errorf(PB_EINVAL, "task spec '%s': empty file name for %s", spec->text, key);
        n = (dir && f[0] != '/') ? snprintf(out, cap, "%s/%s", dir, f) : snprintf(out, cap, "%s", f);
    } else if (dir) {
        n = snprintf(out, cap, "%s/%s.csv", dir, key);
        if (n >= 0 && (size_t)n < cap && !exists(out)) {
            n = snprintf(out, cap, "%s/%s.tsv", dir, key);
            if (n >= 0 && (size_t)n < cap && !exists(out)) {
                if (!strcmp(key, "train")) /* name the file we looked for first */
                    snprintf(out, cap, "%s/%s.csv", dir, key);
                else out[0] = '\0';
            }
        }
    }
    if (n < 0 || (size_t)n >= cap) return pb_errorf(PB_EINVAL, "task spec '%s': path for %s too long", spec->text, key);
    return PB_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static pb_status csv_open(const pb_spec *spec, const char *data_dir, pb_task *t) {
    (void)data_dir;
    const char *dir = spec->positional ? spec->positional : pb_spec_get(spec, "dir");
    if (spec->positional && pb_spec_get(spec, "dir"))
        return pb_errorf(PB_EINVAL, "task spec '%s': directory given twice (as '%s' and dir=)", spec->text,
                         spec->positional);
    static const char *const keys[PB_NSPLIT] = {"train", "dev", "test"};
    char path[PB_NSPLIT][4096];
    pb_status st;
    for (int s = 0; s < PB_NSPLIT; s++)
        if ((st = split_path(spec, dir, keys[s], path[s], sizeof path[s])) != PB_OK) return st;
    if (!path[PB_SPLIT_TRAIN][0])
        return pb_errorf(PB_EINVAL, "task spec '%s': no training data (expected csv:DIR or csv:train=FILE,...)",
                         spec->text);

    static const char *const delims[] = {"comma", "tab", NULL};
    static const char *const kinds[] = {"classify", "regress", "generate", NULL};
    pb_csv_opts o = pb_csv_defaults();
    int delim, header, quote, kind = -1;
    double frac[PB_NSPLIT] = {0};
    if ((st = pb_spec_choice(spec, "delim", delims, ends_with(path[0], ".tsv") ? 1 : 0, &delim)) != PB_OK ||
        (st = pb_spec_bool(spec, "header", 1, &header)) != PB_OK ||
        (st = pb_spec_bool(spec, "quote", 1, &quote)) != PB_OK ||
        (st = pb_spec_choice(spec, "kind", kinds, -1, &kind)) != PB_OK ||
        (st = pb_spec_size(spec, "max_field", PB_CSV_MAX_FIELD_DEFAULT, 1, (size_t)1 << 30, &o.max_field)) != PB_OK ||
        (st = pb_spec_double(spec, "dev_frac", 0.1, 0.001, 0.5, &frac[PB_SPLIT_DEV])) != PB_OK ||
        (st = pb_spec_double(spec, "test_frac", 0.1, 0.001, 0.5, &frac[PB_SPLIT_TEST])) != PB_OK)
        return st;
    o.delim = delim ? '\t' : ',';
    o.header = header;
    o.quoting = quote;

    pb_csv_table tab[PB_NSPLIT] = {{0}};
    pb_csv_table *tabs[PB_NSPLIT] = {NULL, NULL, NULL};
    for (int s = 0; s < PB_NSPLIT; s++) {
        if (!path[s][0]) continue;
        if ((st = pb_csv_read(path[s], &o, &tab[s])) != PB_OK) goto done;
        tabs[s] = &tab[s];
    }
    /* The kind: given, implied by the column options, or inferred from the train header. */
    const pb_csv_table *tr = tabs[PB_SPLIT_TRAIN];
    if (kind < 0) {
        if (pb_spec_get(spec, "input") || pb_spec_get(spec, "target")) kind = 2;
        else if (pb_spec_get(spec, "label") || pb_spec_get(spec, "text")) kind = 0;
        else if (header && pb_csv_col(tr, "input") >= 0 && pb_csv_col(tr, "target") >= 0 &&
                 !(pb_csv_col(tr, "text") >= 0 && pb_csv_col(tr, "label") >= 0))
            kind = 2;
        else kind = 0;
    }
    t->kind = kind == 0 ? PB_TASK_CLASSIFY : kind == 1 ? PB_TASK_REGRESS : PB_TASK_GENERATE;
    pb_colmap cm;
    if (t->kind == PB_TASK_GENERATE) {
        cm = (pb_colmap){.text = pb_spec_get(spec, "input"), .target = pb_spec_get(spec, "target")};
        if (!cm.text) cm.text = header ? "input" : "1";
        if (!cm.target) cm.target = header ? "target" : "2";
        if (pb_spec_get(spec, "label") || pb_spec_get(spec, "text2")) {
            st = pb_errorf(PB_EINVAL, "task spec '%s': label= and text2= do not apply to a generation task (expected "
                                      "input= and target=)", spec->text);
            goto done;
        }
    } else {
        cm = (pb_colmap){.text = pb_spec_get(spec, "text"), .text2 = pb_spec_get(spec, "text2"),
                         .label = pb_spec_get(spec, "label")};
        if (!cm.text) cm.text = header ? "text" : "1";
        if (!cm.label) cm.label = header ? "label" : "2";
        if (pb_spec_get(spec, "input") || pb_spec_get(spec, "target")) {
            st = pb_errorf(PB_EINVAL, "task spec '%s': input= and target= apply to kind=generate only", spec->text);
            goto done;
        }
    }
    if ((st = pb_task_set_source(t, dir ? dir : path[PB_SPLIT_TRAIN])) != PB_OK) goto done;
    if ((st = pb_task_load_tables(t, tabs, &cm, NULL)) != PB_OK) goto done;

    /* Splits not given come out of train: test first, then dev. */
    for (int s = PB_SPLIT_TEST; s >= PB_SPLIT_DEV; s--)
        if (!tabs[s] && (st = pb_task_carve(t, PB_SPLIT_TRAIN, (pb_split)s, frac[s],
                                            pb_hash_u64(t->opts.split_seed, 0xca7e + (uint64_t)s))) != PB_OK)
            goto done;

    /* Metrics, and which one selects checkpoints (select=KEY). */
    pb_metric_id m[PB_TASK_MAX_METRICS];
    int nm = 0;
    if (t->kind == PB_TASK_CLASSIFY) {
        m[nm++] = PB_METRIC_ACC;
        if (t->n_labels == 2) m[nm++] = PB_METRIC_F1;
        m[nm++] = PB_METRIC_MACRO_F1;
        m[nm++] = PB_METRIC_MCC;
    } else if (t->kind == PB_TASK_REGRESS) {
        m[nm++] = PB_METRIC_PEARSON;
        m[nm++] = PB_METRIC_SPEARMAN;
    } else {
        m[nm++] = PB_METRIC_EXACT;
        m[nm++] = PB_METRIC_CHRF;
        m[nm++] = PB_METRIC_TER;
    }
    int sel = 0;
    const char *want = pb_spec_get(spec, "select");
    if (want) {
        sel = -1;
        char have[128] = "";
        size_t used = 0;
        for (int i = 0; i < nm; i++) {
            if (!strcmp(want, pb_metric_key(m[i]))) sel = i;
            int k = snprintf(have + used, sizeof have - used, "%s%s", i ? ", " : "", pb_metric_key(m[i]));
            if (k > 0 && (size_t)k < sizeof have - used) used += (size_t)k;
        }
        if (sel < 0) {
            st = pb_errorf(PB_EINVAL, "task spec '%s': bad value '%s' for select (expected one of: %s)", spec->text,
                           want, have);
            goto done;
        }
    }
    st = pb_task_set_metrics(t, m, nm, sel);
done:
    for (int s = 0; s < PB_NSPLIT; s++) pb_csv_free(&tab[s]);
    return st;
}

static const char *const CSV_KEYS[] = {"dir",   "train",  "dev",       "test",     "text",     "text2",
                                       "label", "input",  "target",    "kind",     "delim",    "header",
                                       "quote", "select", "max_field", "dev_frac", "test_frac", NULL};

const pb_task_family pb_family_csv = {
    .version = PB_TASK_FAMILY_VERSION,
    .name = "csv",
    .summary = "your own CSV/TSV files",
    .keys = CSV_KEYS,
    .positional = 1,
    .match = csv_match,
    .list = csv_list,
    .open = csv_open,
};
