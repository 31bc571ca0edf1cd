/* test_tasks.c — the task layer (tasks/task.h): specs and their errors, the synthetic tasks
 * (deterministic, balanced, disjoint splits), max_train stratification, max_len truncation,
 * the GLUE layouts, a data directory in the fetch layout, csv: user data and its bad inputs,
 * scoring, the task list and the data directory. Fixtures: tests/fixtures/tasks/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tasks/task_impl.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *fixtures(void) {
    static char dir[1024];
    if (!dir[0]) {
        const char *src = getenv("PB_TEST_SRC");
        if (src && *src) snprintf(dir, sizeof dir, "%s/tests/fixtures/tasks", src);
        else { /* run by hand: this file's directory */
            snprintf(dir, sizeof dir, "%s", __FILE__);
            char *slash = strrchr(dir, '/');
            if (slash) snprintf(slash, sizeof dir - (size_t)(slash - dir), "/fixtures/tasks");
        }
    }
    return dir;
}

static pb_task *open_ok(const char *spec, const char *data_dir) {
    pb_task *t = NULL;
    pb_status st = pb_task_open(spec, data_dir, &t);
    if (st != PB_OK) fail_msg("pb_task_open(%s): %s: %s", spec, pb_status_name(st), pb_errmsg());
    return t;
}

/* Fails unless opening gives `want` and a message containing each needle. */
static void open_bad(const char *spec, const char *data_dir, pb_status want, ...) {
    pb_task *t = (pb_task *)1;
    pb_status st = pb_task_open(spec, data_dir, &t);
    if (st != want)
        fail_msg("pb_task_open(%s): %s, expected %s (%s)", spec, pb_status_name(st), pb_status_name(want), pb_errmsg());
    assert_null(t);
    va_list ap;
    va_start(ap, want);
    for (const char *n; (n = va_arg(ap, const char *));)
        if (!strstr(pb_errmsg(), n)) fail_msg("%s: message '%s' lacks '%s'", spec, pb_errmsg(), n);
    va_end(ap);
}
#define OPEN_BAD(spec, dd, st, ...) open_bad((spec), (dd), (st), __VA_ARGS__, (const char *)NULL)

/* dir/name in one of 8 rotating buffers: use the result right away. */
static const char *path_in(const char *dir, const char *name) {
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ % 8];
    int n = snprintf(p, 1024, "%s/%s", dir, name);
    if (n < 0 || n >= 1024) fail_msg("path %s/%s too long", dir, name);
    return p;
}

/* A fresh directory under the test's temporary directory; the name stays valid for the run. */
static const char *mktmp(const char *name) {
    static char buf[32][1024];
    static int k;
    if (k == 32) fail_msg("mktmp: too many directories");
    char *d = buf[k++];
    int n = snprintf(d, 1024, "%s/%s", tu_tmpdir(), name);
    if (n < 0 || n >= 1024) fail_msg("path too long");
    if (mkdir(d, 0700) != 0) fail_msg("mkdir %s failed", d);
    return d;
}

static void write_split_files(const char *dir, const char *train, const char *dev, const char *test) {
    if (train) tu_write_text(path_in(dir, "train.csv"), train);
    if (dev) tu_write_text(path_in(dir, "dev.csv"), dev);
    if (test) tu_write_text(path_in(dir, "test.csv"), test);
}

static const char *spec_for(const char *fmt, const char *arg) {
    static char buf[4][2048];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 2048, fmt, arg);
    return p;
}

static void label_counts(const pb_task *t, pb_split s, size_t *cnt) {
    memset(cnt, 0, (size_t)t->n_labels * sizeof *cnt);
    for (size_t i = 0; i < t->split[s].n; i++) cnt[t->split[s].ex[i].label]++;
}

/* ---- specs ------------------------------------------------------------------------------------ */

static void test_spec_errors(void **state) {
    (void)state;
    OPEN_BAD("nope", NULL, PB_ENOTFOUND, "unknown task 'nope'", "sentiment", "spam", "glue:sst2");
    OPEN_BAD("sentiment:foo=1", NULL, PB_EINVAL, "unknown option 'foo'",
             "accepted keys: max_train, max_dev, max_test, max_len, split_seed, n_train, n_dev, n_test");
    OPEN_BAD("sentiment:max_train=abc", NULL, PB_EINVAL, "bad value 'abc' for max_train", "expected an integer");
    OPEN_BAD("sentiment:max_train=-1", NULL, PB_EINVAL, "bad value '-1' for max_train");
    OPEN_BAD("sentiment:split_seed=1x", NULL, PB_EINVAL, "bad value '1x' for split_seed");
    OPEN_BAD("sentiment:n_train=0", NULL, PB_EINVAL, "bad value '0' for n_train", "[1, 1000000]");
    OPEN_BAD("sentiment:max_len=5,max_len=6", NULL, PB_EINVAL, "option 'max_len' given twice");
    OPEN_BAD("sentiment:abc", NULL, PB_EINVAL, "'abc' is not key=value", "accepted keys");
    OPEN_BAD("sentiment:max_len=5,,split_seed=2", NULL, PB_EINVAL, "empty option");
    OPEN_BAD("sentiment:max_len=5,x", NULL, PB_EINVAL, "option 'x' has no value");
    OPEN_BAD("Sentiment", NULL, PB_EINVAL, "bad character 'S'");
    OPEN_BAD("", NULL, PB_EINVAL, "empty task spec");
    OPEN_BAD("glue", NULL, PB_EINVAL, "no GLUE task given", "sst2");
    OPEN_BAD("glue:sst5", NULL, PB_EINVAL, "unknown GLUE task 'sst5'", "cola, sst2, mrpc");
    OPEN_BAD("csv:dir=/x,train=a.csv,delim=semicolon", NULL, PB_EINVAL, "bad value 'semicolon' for delim",
             "comma, tab");
}

/* Every spec name is claimed by exactly one family, and every listed entry opens (or says why). */
static void test_registry_and_list(void **state) {
    (void)state;
    const pb_task_family *const *fams;
    size_t nf = pb_task_families(&fams);
    assert_true(nf >= 4);
    pb_task_entry e[128];
    size_t n = pb_task_list(path_in(fixtures(), "data"), e, 128);
    assert_true(n >= 4 + 8 + 1 + 9 && n <= 128);
    int seen_spam = 0, seen_kjv = 0, seen_sent = 0;
    for (size_t i = 0; i < n; i++) {
        char base[sizeof e[i].name];
        memcpy(base, e[i].name, sizeof base);
        char *colon = strchr(base, ':');
        if (colon) *colon = '\0';
        int claims = 0;
        for (size_t f = 0; f < nf; f++) claims += fams[f]->match(base);
        if (claims != 1) fail_msg("spec name '%s' claimed by %d families", base, claims);
        assert_non_null(e[i].summary);
        if (!strcmp(e[i].name, "spam")) { /* fixture data in the fetch layout, sizes from INFO */
            seen_spam = 1;
            assert_int_equal(e[i].present, 1);
            assert_int_equal(e[i].n[PB_SPLIT_TRAIN], 8);
            assert_int_equal(e[i].n[PB_SPLIT_TEST], 3);
            assert_int_equal(e[i].metric, PB_METRIC_ACC);
        }
        if (!strcmp(e[i].name, "kjv2web")) {
            seen_kjv = 1;
            assert_int_equal(e[i].present, 0);
            assert_int_equal(e[i].n[PB_SPLIT_TRAIN], -1);
            assert_int_equal(e[i].metric, PB_METRIC_CHRF);
        }
        if (!strcmp(e[i].name, "sentiment")) seen_sent = e[i].present == 1 && e[i].n[PB_SPLIT_TRAIN] == 2000;
    }
    assert_true(seen_spam && seen_kjv && seen_sent);
    /* asking for fewer entries than there are: the total is still returned */
    assert_int_equal(pb_task_list(NULL, e, 2), n);
    assert_int_equal(pb_task_list(NULL, NULL, 0), n);
    /* a missing data set says what to do */
    OPEN_BAD("kjv2web", path_in(fixtures(), "data"), PB_ENOTFOUND, "no data in", "kjv2web",
             "peftbench data fetch");
}

static void test_data_dir(void **state) {
    (void)state;
    char out[1024];
    char *old_env = getenv("PEFTBENCH_DATA") ? strdup(getenv("PEFTBENCH_DATA")) : NULL;
    char *old_xdg = getenv("XDG_DATA_HOME") ? strdup(getenv("XDG_DATA_HOME")) : NULL;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("PEFTBENCH_DATA", "/env/data", 1);
    setenv("XDG_DATA_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    assert_int_equal(pb_data_dir("/flag", out, sizeof out), PB_OK);
    assert_string_equal(out, "/flag");
    assert_int_equal(pb_data_dir(NULL, out, sizeof out), PB_OK);
    assert_string_equal(out, "/env/data");
    unsetenv("PEFTBENCH_DATA");
    assert_int_equal(pb_data_dir("", out, sizeof out), PB_OK);
    assert_string_equal(out, "/xdg/peftbench");
    unsetenv("XDG_DATA_HOME");
    assert_int_equal(pb_data_dir(NULL, out, sizeof out), PB_OK);
    assert_string_equal(out, "/home/u/.local/share/peftbench");
    assert_int_equal(pb_data_dir(NULL, out, 8), PB_EINVAL);
    unsetenv("HOME");
    assert_int_equal(pb_data_dir(NULL, out, sizeof out), PB_ENOTFOUND);
    assert_non_null(strstr(pb_errmsg(), "--data-dir"));
    if (old_env) setenv("PEFTBENCH_DATA", old_env, 1);
    if (old_xdg) setenv("XDG_DATA_HOME", old_xdg, 1);
    if (old_home) setenv("HOME", old_home, 1);
    free(old_env), free(old_xdg), free(old_home);
}

/* ---- synthetic tasks ------------------------------------------------------------------------ */

static int cmp_strp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_balanced(const char *s) {
    int d = 0;
    for (; *s; s++) {
        d += *s == '(' ? 1 : -1;
        if (d < 0) return 0;
    }
    return d == 0;
}

static void check_synthetic(const char *name) {
    pb_task *a = open_ok(name, NULL), *b = open_ok(name, NULL);
    const size_t want[PB_NSPLIT] = {2000, 500, 500};
    size_t total = 0;
    for (int s = 0; s < PB_NSPLIT; s++) {
        assert_int_equal(a->split[s].n, want[s]);
        total += a->split[s].n;
        for (size_t i = 0; i < a->split[s].n; i++) { /* deterministic: same seed, same examples, same order */
            const pb_example *x = &a->split[s].ex[i], *y = &b->split[s].ex[i];
            assert_string_equal(x->text, y->text);
            assert_int_equal(x->label, y->label);
            assert_int_equal(strlen(x->text), x->text_len);
            assert_true(x->text_len > 0);
            for (const char *c = x->text; *c; c++) /* plain printable ASCII */
                if (*c < 0x20 || *c > 0x7e) fail_msg("%s: byte 0x%02x in '%s'", name, (unsigned char)*c, x->text);
            if (a->kind == PB_TASK_GENERATE) {
                assert_string_equal(x->target, y->target);
                assert_int_equal(strlen(x->target), x->target_len);
            }
        }
        if (a->kind == PB_TASK_CLASSIFY) { /* labels cycled before the shuffle: exactly balanced */
            size_t cnt[8];
            label_counts(a, (pb_split)s, cnt);
            for (int k = 0; k < a->n_labels; k++)
                if (cnt[k] != want[s] / (size_t)a->n_labels)
                    fail_msg("%s %s: label %s has %zu of %zu", name, pb_split_name((pb_split)s), a->labels[k], cnt[k],
                             want[s]);
            /* and shuffled: the first 20 labels are not the cycle 0,1,..,K-1,0,1,... */
            int cyclic = 1;
            for (size_t i = 0; i < 20; i++) cyclic &= a->split[s].ex[i].label == (int)(i % (size_t)a->n_labels);
            assert_false(cyclic);
        }
    }
    /* no text shared between or within splits */
    char **all = malloc(total * sizeof *all);
    size_t k = 0;
    for (int s = 0; s < PB_NSPLIT; s++)
        for (size_t i = 0; i < a->split[s].n; i++) all[k++] = (char *)a->split[s].ex[i].text;
    qsort(all, total, sizeof *all, cmp_strp);
    for (size_t i = 1; i < total; i++)
        if (!strcmp(all[i], all[i - 1])) fail_msg("%s: '%s' occurs twice", name, all[i]);
    free(all);
    /* another seed gives other data; a bigger train leaves dev and test alone */
    pb_task *c = open_ok(spec_for("%s:split_seed=2", name), NULL);
    pb_task *d = open_ok(spec_for("%s:n_train=300", name), NULL);
    size_t same = 0;
    for (size_t i = 0; i < 100; i++) same += !strcmp(a->split[0].ex[i].text, c->split[0].ex[i].text);
    assert_true(same < 10);
    assert_int_equal(d->split[PB_SPLIT_TRAIN].n, 300);
    for (int s = PB_SPLIT_DEV; s <= PB_SPLIT_TEST; s++)
        for (size_t i = 0; i < a->split[s].n; i++) assert_string_equal(a->split[s].ex[i].text, d->split[s].ex[i].text);
    assert_string_equal(a->source, "generated");
    assert_string_equal(a->family, "synthetic");
    pb_task_free(a), pb_task_free(b), pb_task_free(c), pb_task_free(d);
}

static void test_synthetic_tasks(void **state) {
    (void)state;
    check_synthetic("sentiment");
    check_synthetic("topic");
    check_synthetic("reverse");
    check_synthetic("brackets");
}

/* What each task claims about its examples holds. */
static void test_synthetic_semantics(void **state) {
    (void)state;
    pb_task *t = open_ok("brackets", NULL);
    assert_int_equal(pb_task_label_index(t, "balanced"), 1);
    for (int s = 0; s < PB_NSPLIT; s++)
        for (size_t i = 0; i < t->split[s].n; i++) {
            const pb_example *e = &t->split[s].ex[i];
            size_t open = 0;
            for (const char *c = e->text; *c; c++) open += *c == '(';
            assert_true(e->text_len >= 16 && e->text_len <= 24);
            assert_int_equal(2 * open, e->text_len); /* counts give nothing away */
            assert_true(e->text[0] == '(' && e->text[e->text_len - 1] == ')');
            assert_int_equal(is_balanced(e->text), e->label);
        }
    pb_task_free(t);
    t = open_ok("reverse", NULL);
    assert_int_equal(t->n_labels, 0);
    for (size_t i = 0; i < t->split[0].n; i++) { /* target = words of the input, reversed */
        char w[8][32], out[256] = "";
        int n = 0;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", t->split[0].ex[i].text);
        for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) snprintf(w[n++], 32, "%s", tok);
        assert_true(n >= 3 && n <= 6);
        for (int j = n - 1; j >= 0; j--) strcat(strcat(out, w[j]), j ? " " : "");
        assert_string_equal(out, t->split[0].ex[i].target);
    }
    pb_task_free(t);
    t = open_ok("sentiment", NULL);
    assert_string_equal(t->labels[0], "negative");
    assert_int_equal(t->metrics[t->select], PB_METRIC_ACC);
    size_t neg = 0, but = 0;
    for (size_t i = 0; i < t->split[0].n; i++) {
        neg += strstr(t->split[0].ex[i].text, " not ") || strstr(t->split[0].ex[i].text, "n't ") ||
               strstr(t->split[0].ex[i].text, " never ");
        but += strstr(t->split[0].ex[i].text, " but ") != NULL;
    }
    assert_true(neg > 200 && but > 300); /* the compositional cues are there */
    pb_task_free(t);
}

/* ---- common options ------------------------------------------------------------------------- */

static void test_max_train_stratified(void **state) {
    (void)state;
    /* 1000 examples, 250 per label; keep 101: quotas floor(101*250/1000) = 25 each, remainders all
     * 250, so the one left over goes to the lowest label index: 26, 25, 25, 25 */
    pb_task *full = open_ok("topic:n_train=1000", NULL);
    pb_task *t = open_ok("topic:n_train=1000,max_train=101", NULL);
    assert_int_equal(t->split[PB_SPLIT_TRAIN].n, 101);
    assert_int_equal(t->stats.n_loaded[PB_SPLIT_TRAIN], 1000);
    size_t cnt[4];
    label_counts(t, PB_SPLIT_TRAIN, cnt);
    assert_int_equal(cnt[0], 26);
    assert_int_equal(cnt[1], 25);
    assert_int_equal(cnt[2], 25);
    assert_int_equal(cnt[3], 25);
    /* kept examples keep their relative order */
    size_t j = 0;
    for (size_t i = 0; i < t->split[0].n; i++) {
        while (j < full->split[0].n && strcmp(full->split[0].ex[j].text, t->split[0].ex[i].text)) j++;
        if (j == full->split[0].n) fail_msg("subsample example %zu out of order", i);
    }
    /* deterministic, and the seed changes the choice */
    pb_task *u = open_ok("topic:n_train=1000,max_train=101", NULL);
    pb_task *v = open_ok("topic:n_train=1000,max_train=101,split_seed=9", NULL);
    for (size_t i = 0; i < 101; i++) assert_string_equal(t->split[0].ex[i].text, u->split[0].ex[i].text);
    assert_int_equal(v->split[0].n, 101);
    /* max_dev / max_test work the same way; max_train larger than the split changes nothing */
    pb_task *w = open_ok("topic:max_dev=40,max_test=8,max_train=999999", NULL);
    assert_int_equal(w->split[PB_SPLIT_DEV].n, 40);
    assert_int_equal(w->split[PB_SPLIT_TEST].n, 8);
    assert_int_equal(w->split[PB_SPLIT_TRAIN].n, 2000);
    label_counts(w, PB_SPLIT_TEST, cnt);
    for (int k = 0; k < 4; k++) assert_int_equal(cnt[k], 2);
    pb_task_free(full), pb_task_free(t), pb_task_free(u), pb_task_free(v), pb_task_free(w);
}

static void test_max_train_rare_label(void **state) {
    (void)state;
    /* 9 'a' and 1 'b'; keep 3: quotas a = floor(27/10) = 2 (remainder 7), b = 0 (remainder 3);
     * the spare goes to a (larger remainder) -> 3, 0; then b, present in the data, takes one from
     * a -> a = 2, b = 1. Keep 1 (fewer than the labels): just the largest share, a. */
    const char *d = mktmp("rare");
    write_split_files(d, "text,label\nt1,a\nt2,a\nt3,a\nt4,a\nt5,b\nt6,a\nt7,a\nt8,a\nt9,a\nt10,a\n",
                      "text,label\nd1,a\nd2,b\n", "text,label\ne1,a\ne2,b\n");
    pb_task *t = open_ok(spec_for("csv:%s,max_train=3", d), NULL);
    size_t cnt[2];
    label_counts(t, PB_SPLIT_TRAIN, cnt);
    assert_int_equal(cnt[pb_task_label_index(t, "a")], 2);
    assert_int_equal(cnt[pb_task_label_index(t, "b")], 1);
    pb_task_free(t);
    t = open_ok(spec_for("csv:%s,max_train=1", d), NULL);
    assert_int_equal(t->split[0].n, 1);
    assert_string_equal(t->labels[t->split[0].ex[0].label], "a");
    pb_task_free(t);
}

static void test_max_len(void **state) {
    (void)state;
    pb_task *full = open_ok("sentiment", NULL), *t = open_ok("sentiment:max_len=20", NULL);
    for (int s = 0; s < PB_NSPLIT; s++) {
        size_t longer = 0, longest = 0;
        for (size_t i = 0; i < full->split[s].n; i++) {
            longer += full->split[s].ex[i].text_len > 20;
            if (full->split[s].ex[i].text_len > longest) longest = full->split[s].ex[i].text_len;
        }
        assert_true(longer > 0);
        assert_int_equal(t->stats.n_truncated[s], longer);
        assert_int_equal(full->stats.n_truncated[s], 0);
        assert_int_equal(full->stats.max_text_len[s], longest);
        assert_int_equal(t->stats.max_text_len[s], 20);
        for (size_t i = 0; i < t->split[s].n; i++) {
            const pb_example *e = &t->split[s].ex[i], *f = &full->split[s].ex[i];
            assert_int_equal(strlen(e->text), e->text_len);
            assert_int_equal(e->text_len, f->text_len < 20 ? f->text_len : 20);
            assert_memory_equal(e->text, f->text, e->text_len); /* a prefix */
        }
    }
    pb_task_free(full), pb_task_free(t);
    /* UTF-8: never cut inside a character; "éééee" is 8 bytes, max_len=5 keeps "éé" (4 bytes) */
    const char *d = mktmp("utf8");
    write_split_files(d, "text,label\n\xC3\xA9\xC3\xA9\xC3\xA9" "ee,x\nab,y\n", "text,label\nz,x\n", "text,label\nw,y\n");
    t = open_ok(spec_for("csv:%s,max_len=5", d), NULL);
    assert_string_equal(t->split[0].ex[0].text, "\xC3\xA9\xC3\xA9");
    assert_int_equal(t->split[0].ex[0].text_len, 4);
    assert_int_equal(t->stats.n_truncated[PB_SPLIT_TRAIN], 1);
    pb_task_free(t);
    /* pairs lose bytes from the longer side first: (10, 3) at 8 -> (5, 3); (10, 10) at 9 -> (5, 4) */
    d = mktmp("pairs");
    write_split_files(d, "a,b,label\n0123456789,xyz,p\n0123456789,ABCDEFGHIJ,q\n", "a,b,label\nk,l,p\n",
                      "a,b,label\nm,n,q\n");
    t = open_ok(spec_for("csv:%s,text=a,text2=b,max_len=8", d), NULL);
    assert_string_equal(t->split[0].ex[0].text, "01234");
    assert_string_equal(t->split[0].ex[0].text2, "xyz");
    pb_task_free(t);
    t = open_ok(spec_for("csv:%s,text=a,text2=b,max_len=9", d), NULL);
    assert_string_equal(t->split[0].ex[1].text, "01234");
    assert_string_equal(t->split[0].ex[1].text2, "ABCD");
    assert_int_equal(t->stats.max_text_len[0], 9);
    assert_int_equal(t->stats.n_truncated[0], 2);
    pb_task_free(t);
}

/* ---- GLUE ------------------------------------------------------------------------------------- */

typedef struct {
    const char *spec, *dir;
    size_t n_train_file, n_test;
    int pair, n_labels;
    const char *first_test_text;
} glue_case;

static void test_glue_fixtures(void **state) {
    (void)state;
    const glue_case cases[] = {
        {"cola", "CoLA", 12, 3, 0, 2, "Birds fly south in winter."},
        {"sst2", "SST-2", 10, 2, 0, 2, "a small , lovely film "},
        {"mrpc", "MRPC", 10, 2, 1, 2, "The firm hired 200 workers."},
        {"qqp", "QQP", 10, 2, 1, 2, "How do I bake bread?"},
        {"stsb", "STS-B", 10, 3, 1, 0, "A man is running."},
        {"mnli", "MNLI", 10, 3, 1, 3, "A boy kicks a ball."},
        {"qnli", "QNLI", 10, 2, 1, 2, "What is ice?"},
        {"rte", "RTE", 10, 2, 1, 2, "The train left at noon."},
        {"wnli", "WNLI", 10, 2, 1, 2, "The ball broke the window because it was fragile."},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const glue_case *g = &cases[c];
        char spec[1024];
        snprintf(spec, sizeof spec, "glue:%s,dir=%s/glue/%s", g->spec, fixtures(), g->dir);
        pb_task *t = open_ok(spec, NULL);
        char name[64];
        snprintf(name, sizeof name, "glue:%s", g->spec);
        assert_string_equal(t->name, name);
        /* official dev is our test; our dev is carved out of train (10%, at least one) */
        assert_int_equal(t->split[PB_SPLIT_TEST].n, g->n_test);
        assert_int_equal(t->split[PB_SPLIT_TRAIN].n + t->split[PB_SPLIT_DEV].n, g->n_train_file);
        assert_true(t->split[PB_SPLIT_DEV].n >= 1);
        assert_string_equal(t->split[PB_SPLIT_TEST].ex[0].text, g->first_test_text);
        assert_int_equal(t->n_labels, g->n_labels);
        for (int s = 0; s < PB_NSPLIT; s++)
            for (size_t i = 0; i < t->split[s].n; i++) {
                const pb_example *e = &t->split[s].ex[i];
                assert_int_equal(e->text2 != NULL, g->pair);
                if (e->text2) assert_int_equal(strlen(e->text2), e->text2_len);
                if (t->kind == PB_TASK_REGRESS) assert_true(e->label == -1 && e->value >= 0 && e->value <= 5);
            }
        pb_task_free(t);
    }
    char spec[1024];
    /* details: quotes are plain characters, the MRPC BOM, STS-B scores, MNLI mismatched */
    snprintf(spec, sizeof spec, "glue:sst2,dir=%s/glue/SST-2,dev_frac=0.2", fixtures());
    pb_task *t = open_ok(spec, NULL);
    int found = 0;
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < t->split[s].n; i++) found |= !strcmp(t->split[s].ex[i].text, "the cast is \"wonderful ");
    assert_true(found);
    assert_int_equal(t->split[PB_SPLIT_DEV].n, 2);
    size_t cnt[2];
    label_counts(t, PB_SPLIT_DEV, cnt); /* stratified: one of each */
    assert_int_equal(cnt[0], 1);
    assert_int_equal(cnt[1], 1);
    pb_task_free(t);
    snprintf(spec, sizeof spec, "glue:stsb,dir=%s/glue/STS-B", fixtures());
    t = open_ok(spec, NULL);
    assert_int_equal(t->kind, PB_TASK_REGRESS);
    assert_true(t->split[PB_SPLIT_TEST].ex[0].value == 4.75f);
    assert_string_equal(t->split[PB_SPLIT_TEST].ex[2].text2, "Senators vote on a bill.");
    assert_int_equal(t->metrics[t->select], PB_METRIC_PEARSON);
    /* scoring a regression task: the gold values themselves give 1, 1 */
    double pred[3], m[PB_TASK_MAX_METRICS];
    for (int i = 0; i < 3; i++) pred[i] = t->split[PB_SPLIT_TEST].ex[i].value;
    assert_int_equal(pb_task_score(t, PB_SPLIT_TEST, &(pb_predictions){.values = pred}, m), PB_OK);
    assert_true(m[0] > 0.999999 && m[1] > 0.999999);
    pb_task_free(t);
    snprintf(spec, sizeof spec, "glue:mnli,dir=%s/glue/MNLI,mm=1", fixtures());
    t = open_ok(spec, NULL);
    assert_int_equal(t->split[PB_SPLIT_TEST].n, 2);
    assert_string_equal(t->split[PB_SPLIT_TEST].ex[0].text, "The letter arrived late.");
    assert_string_equal(t->labels[t->split[PB_SPLIT_TEST].ex[1].label], "contradiction");
    pb_task_free(t);
    snprintf(spec, sizeof spec, "glue:mrpc,dir=%s/glue/MRPC", fixtures());
    t = open_ok(spec, NULL);
    assert_int_equal(t->metrics[1], PB_METRIC_F1);
    assert_string_equal(t->split[PB_SPLIT_TEST].ex[0].text2, "200 workers were hired by the firm.");
    pb_task_free(t);
    snprintf(spec, sizeof spec, "glue:sst2,dir=%s/glue/SST-2,mm=1", fixtures());
    OPEN_BAD(spec, NULL, PB_EINVAL, "mm=1 applies to glue:mnli only");
}

static void test_glue_bad(void **state) {
    (void)state;
    /* a malformed row fails by default and names its place; bad_rows=skip counts it */
    const char *d = mktmp("qqp");
    tu_write_text(path_in(d, "train.tsv"), "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                        "1\t1\t2\tA?\tB?\t1\n2\t3\t4\tC?\tD?\t0\n3\t5\t6\tbroken row\n"
                                        "4\t7\t8\tE?\tF?\t1\n5\t9\t10\tG?\tH?\t0\n");
    tu_write_text(path_in(d, "dev.tsv"), "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n7\t1\t2\tX?\tY?\t1\n"
                                      "8\t3\t4\tZ?\tW?\t2\n");
    OPEN_BAD(spec_for("glue:qqp,dir=%s", d), NULL, PB_EFORMAT, "train.tsv:4:17: row has 4 fields, expected 6",
             "bad_rows=skip");
    /* with the short row skipped, the bad label in dev.tsv is next */
    OPEN_BAD(spec_for("glue:qqp,dir=%s,bad_rows=skip", d), NULL, PB_EFORMAT,
             "dev.tsv:3:13: label '2' is not one of the 2 labels in GLUE QQP's label set (0, 1)");
    tu_write_text(path_in(d, "dev.tsv"), "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n7\t1\t2\tX?\tY?\t1\n");
    pb_task *t = open_ok(spec_for("glue:qqp,dir=%s,bad_rows=skip", d), NULL);
    assert_int_equal(t->stats.n_skipped[PB_SPLIT_TRAIN], 1);
    assert_int_equal(t->split[PB_SPLIT_TRAIN].n + t->split[PB_SPLIT_DEV].n, 4);
    pb_task_free(t);
    /* STS-B with a score that is not a number */
    d = mktmp("stsb");
    const char *h = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s0\tg\tf\ty\t0\tn\tn\tA.\tB.\t1.0\n1\tg\tf\ty\t1\tn\tn\tC.\tD.\thigh\n", h);
    tu_write_text(path_in(d, "train.tsv"), buf);
    snprintf(buf, sizeof buf, "%s0\tg\tf\ty\t0\tn\tn\tE.\tF.\t2.0\n", h);
    tu_write_text(path_in(d, "dev.tsv"), buf);
    OPEN_BAD(spec_for("glue:stsb,dir=%s", d), NULL, PB_EFORMAT, "train.tsv:3:21: score 'high' in column 'score' is not a number");
    /* a missing file */
    OPEN_BAD(spec_for("glue:rte,dir=%s/none", d), NULL, PB_ENOTFOUND, "none/train.tsv: no such file");
}

/* ---- the fetch layout ------------------------------------------------------------------------- */

static void test_dataset_fixture(void **state) {
    (void)state;
    const char *dd = path_in(fixtures(), "data");
    pb_task *t = open_ok("spam", dd);
    assert_string_equal(t->family, "dataset");
    assert_int_equal(t->kind, PB_TASK_CLASSIFY);
    assert_int_equal(t->n_labels, 2);
    assert_string_equal(t->labels[1], "spam"); /* f1 is about label 1 */
    assert_int_equal(t->split[PB_SPLIT_TRAIN].n, 8);
    assert_int_equal(t->split[PB_SPLIT_DEV].n, 2);
    assert_int_equal(t->split[PB_SPLIT_TEST].n, 3);
    assert_string_equal(t->split[0].ex[4].text, "Lunch tomorrow?\nI can book a table"); /* quoted newline */
    assert_string_equal(t->split[0].ex[3].text, "Cheap meds, no prescription, \"discreet\" shipping");
    assert_string_equal(pb_task_info(t, "licence"), "PDDL");
    assert_string_equal(pb_task_info(t, "version"), "0.2.3");
    assert_null(pb_task_info(t, "nonesuch"));
    assert_int_equal(t->metrics[0], PB_METRIC_ACC);
    assert_int_equal(t->metrics[1], PB_METRIC_F1);
    /* scoring: predict ham everywhere on test (ham, spam, ham): acc 2/3, f1 of spam 0 */
    int pred[3] = {0, 0, 0};
    double m[PB_TASK_MAX_METRICS];
    assert_int_equal(pb_task_score(t, PB_SPLIT_TEST, &(pb_predictions){.labels = pred}, m), PB_OK);
    assert_true(m[0] > 0.6666 && m[0] < 0.6667);
    assert_true(m[1] == 0.0);
    /* a prefix of the split can be scored; more predictions than examples cannot */
    assert_int_equal(pb_task_score(t, PB_SPLIT_TEST, &(pb_predictions){.n = 1, .labels = pred}, m), PB_OK);
    assert_true(m[0] == 1.0);
    assert_int_equal(pb_task_score(t, PB_SPLIT_TEST, &(pb_predictions){.n = 4, .labels = pred}, m), PB_EINVAL);
    assert_int_equal(pb_task_score(t, PB_SPLIT_TEST, &(pb_predictions){.texts = NULL}, m), PB_EINVAL);
    pb_task_free(t);

    t = open_ok("cmudict_g2p", dd);
    assert_int_equal(t->kind, PB_TASK_GENERATE);
    assert_string_equal(t->split[0].ex[2].text, "hello");
    assert_string_equal(t->split[0].ex[2].target, "HH AH0 L OW1");
    assert_int_equal(t->metrics[t->select], PB_METRIC_PER);
    assert_false(pb_metric_higher_is_better(t->metrics[t->select]));
    const char *out[2] = {"B ER1 D", "F IH SH"}; /* test: bird -> exact; fish -> 1 of 3 phonemes wrong */
    assert_int_equal(pb_task_score(t, PB_SPLIT_TEST, &(pb_predictions){.texts = out}, m), PB_OK);
    assert_true(m[0] > 1.0 / 6 - 1e-12 && m[0] < 1.0 / 6 + 1e-12); /* per = 1/6 */
    assert_true(m[1] == 0.5);                                        /* exact */
    assert_int_equal(t->stats.max_target_len[PB_SPLIT_TRAIN], strlen("HH AH0 L OW1"));
    pb_task_free(t);

    /* no labels.txt: labels are the sorted train labels; non-ASCII names pass through */
    t = open_ok("names_gender:max_len=3", dd);
    assert_string_equal(t->labels[0], "female");
    assert_string_equal(t->split[0].ex[4].text, "Zo"); /* "Zoë" is 4 bytes: a cut at 3 would split the ë */
    assert_string_equal(t->split[0].ex[5].text, "Jos");
    pb_task_free(t);
    /* dir= points straight at a task directory */
    t = open_ok(spec_for("names_gender:dir=%s/data/tasks/names_gender", fixtures()), NULL);
    assert_int_equal(t->split[0].n, 6);
    pb_task_free(t);
}

static void test_dataset_bad(void **state) {
    (void)state;
    const char *dd = mktmp("dd");
    char p[1024];
    snprintf(p, sizeof p, "%s/tasks", dd);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/tasks/spam", dd);
    mkdir(p, 0700);
    /* a label that labels.txt lacks */
    write_split_files(p, "text,label\na,ham\nb,spam\nc,eggs\n", "text,label\nd,ham\n", "text,label\ne,spam\n");
    tu_write_text(path_in(p, "labels.txt"), "ham\nspam\n");
    OPEN_BAD("spam", dd, PB_EFORMAT, "train.csv:4:3: label 'eggs' is not one of the 2 labels in labels.txt (ham, spam)");
    /* labels.txt with a duplicate */
    tu_write_text(path_in(p, "labels.txt"), "ham\nspam\nham\n");
    OPEN_BAD("spam", dd, PB_EFORMAT, "labels.txt:3:1: duplicate label 'ham' (also line 1");
    /* a dev label that train never uses, with labels.txt listing it */
    tu_write_text(path_in(p, "labels.txt"), "ham\nspam\n");
    write_split_files(p, "text,label\na,ham\nb,ham\n", "text,label\nd,ham\nx,spam\n", NULL);
    OPEN_BAD("spam", dd, PB_EFORMAT, "dev.csv:3:3: label 'spam' never appears in", "train.csv",
             "train labels: ham");
    /* an INFO line that is not key=value */
    write_split_files(p, "text,label\na,ham\nb,spam\n", "text,label\nc,ham\n", "text,label\nd,spam\n");
    tu_write_text(path_in(p, "INFO"), "source=x\n# comment\n\nversion 3\n");
    OPEN_BAD("spam", dd, PB_EFORMAT, "INFO:4:1: 'version 3' is not a setting (expected key=value)");
    remove(path_in(p, "INFO"));
    /* the wrong header for the kind */
    write_split_files(p, "input,target\na,b\n", NULL, NULL);
    OPEN_BAD("spam", dd, PB_EFORMAT, "train.csv:1:1: missing column 'text' for the text (columns found: input, target)");
    /* one of the three files missing; a directory in its place */
    write_split_files(p, "text,label\na,ham\nb,spam\n", "text,label\nc,ham\n", NULL);
    remove(path_in(p, "test.csv"));
    OPEN_BAD("spam", dd, PB_ENOTFOUND, "test.csv: no such file (expected a CSV file)");
    mkdir(path_in(p, "test.csv"), 0700);
    OPEN_BAD("spam", dd, PB_EIO, "test.csv: is a directory (expected a CSV file)");
    /* labels.txt listing spam first: reordered so that f1 (about label 1) is about spam */
    remove(path_in(p, "test.csv"));
    write_split_files(p, "text,label\na,ham\nb,spam\n", "text,label\nc,ham\n", "text,label\nd,spam\n");
    tu_write_text(path_in(p, "labels.txt"), "spam\nham\n");
    pb_task *t = open_ok("spam", dd);
    assert_string_equal(t->labels[1], "spam");
    assert_string_equal(t->labels[t->split[PB_SPLIT_TEST].ex[0].label], "spam");
    pb_task_free(t);
}

/* ---- csv: user data ---------------------------------------------------------------------------- */

static void test_csv_task(void **state) {
    (void)state;
    /* the fixture: CRLF, quoted commas, newlines and quotes */
    pb_task *t = open_ok(spec_for("csv:%s/csv", fixtures()), NULL);
    assert_string_equal(t->name, "csv");
    assert_int_equal(t->kind, PB_TASK_CLASSIFY);
    assert_string_equal(t->labels[0], "neg");
    assert_string_equal(t->split[0].ex[0].text, "great, really great");
    assert_string_equal(t->split[0].ex[1].text, "awful\r\nsimply \"awful\"");
    assert_int_equal(t->n_metrics, 4); /* acc, f1, macro_f1, mcc for a binary task */
    pb_task_free(t);
    /* the same through named files, choosing the selection metric */
    char spec[2048];
    snprintf(spec, sizeof spec, "csv:dir=%s/csv,train=train.csv,dev=dev.csv,test=test.csv,select=mcc", fixtures());
    t = open_ok(spec, NULL);
    assert_int_equal(t->metrics[t->select], PB_METRIC_MCC);
    pb_task_free(t);
    snprintf(spec, sizeof spec, "csv:%s/csv,select=chrf", fixtures());
    OPEN_BAD(spec, NULL, PB_EINVAL, "bad value 'chrf' for select", "acc, f1, macro_f1, mcc");

    /* generation inferred from input,target; TSV from the extension; dev and test carved out */
    const char *d = mktmp("gen");
    char buf[8192] = "input\ttarget\n";
    for (int i = 0; i < 40; i++) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "in %d\tout %d\n", i, i);
    tu_write_text(path_in(d, "all.tsv"), buf);
    t = open_ok(spec_for("csv:train=%s/all.tsv,dev_frac=0.25,test_frac=0.1", d), NULL);
    assert_int_equal(t->kind, PB_TASK_GENERATE);
    assert_int_equal(t->split[PB_SPLIT_TEST].n, 4);  /* 10% of 40 */
    assert_int_equal(t->split[PB_SPLIT_DEV].n, 9);   /* 25% of the remaining 36 */
    assert_int_equal(t->split[PB_SPLIT_TRAIN].n, 27);
    assert_int_equal(t->metrics[t->select], PB_METRIC_EXACT);
    const char *outs[9];
    for (int i = 0; i < 9; i++) outs[i] = t->split[PB_SPLIT_DEV].ex[i].target;
    double m[PB_TASK_MAX_METRICS];
    assert_int_equal(pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.texts = outs}, m), PB_OK);
    assert_true(m[0] == 1.0 && m[1] == 100.0 && m[2] == 0.0); /* exact, chrf, ter */
    pb_task_free(t);

    /* no header: columns 1 and 2; regression by request */
    d = mktmp("nohdr");
    write_split_files(d, "a b,0.5\nc d,1.5\ne f,2.5\n", "g,1\n", "h,2\n");
    t = open_ok(spec_for("csv:%s,header=0,kind=regress", d), NULL);
    assert_int_equal(t->kind, PB_TASK_REGRESS);
    assert_true(t->split[0].ex[2].value == 2.5f);
    pb_task_free(t);
}

static void test_csv_task_bad(void **state) {
    (void)state;
    const char *d = mktmp("bad1");
    /* a label in dev/test that train never saw */
    write_split_files(d, "text,label\na,yes\nb,no\n", "text,label\nc,yes\nd,maybe\n", "text,label\ne,no\n");
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "dev.csv:3:3: label 'maybe' never appears in", "train.csv",
             "(expected one of the train labels: no, yes)");
    /* a missing column lists the columns found */
    write_split_files(d, "text,lbl\na,yes\nb,no\n", NULL, NULL);
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "train.csv:1:1: missing column 'label'", "columns found: text, lbl");
    /* a split with a header and nothing else */
    write_split_files(d, "text,label\na,yes\nb,no\n", "text,label\n", NULL);
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "dev.csv:2:1: no data rows (expected at least one dev example");
    /* a split that ends up empty after carving says so */
    write_split_files(d, "text,label\na,yes\nb,no\n", NULL, NULL);
    remove(path_in(d, "dev.csv")), remove(path_in(d, "test.csv"));
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "the dev split has no examples");
    /* an empty file */
    write_split_files(d, NULL, "", NULL);
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "dev.csv:1:1: empty file");
    /* broken quoting, bad encoding, too many fields: each names file, line and column */
    write_split_files(d, NULL, "text,label\n\"open,yes\n", NULL);
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "dev.csv:2:1: unterminated quoted field");
    write_split_files(d, NULL, "text,label\nok,yes\nbad \xC3\x28,no\n", NULL);
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "dev.csv:3:5: invalid UTF-8 byte 0xc3 at byte offset 22");
    write_split_files(d, NULL, "text,label\nok,yes,extra\n", NULL);
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "dev.csv:2:8: row has more than 2 fields");
    /* a directory where a file was expected, and a missing file */
    mkdir(path_in(d, "sub.csv"), 0700);
    OPEN_BAD(spec_for("csv:train=%s/sub.csv", d), NULL, PB_EIO, "sub.csv: is a directory (expected a CSV file)");
    OPEN_BAD(spec_for("csv:train=%s/missing.csv", d), NULL, PB_ENOTFOUND, "missing.csv: no such file");
    OPEN_BAD(spec_for("csv:%s/nodir", d), NULL, PB_ENOTFOUND, "nodir/train.csv: no such file");
    /* a single label is not a classification task */
    write_split_files(d, "text,label\na,yes\nb,yes\n", "text,label\nc,yes\n", "text,label\nd,yes\n");
    OPEN_BAD(spec_for("csv:%s", d), NULL, PB_EFORMAT, "1 label (expected at least 2");
    /* a large field: the limit is an option */
    write_split_files(d, "text,label\nabcdefghijklmnop,yes\nb,no\n", "text,label\nc,yes\n", "text,label\nd,no\n");
    OPEN_BAD(spec_for("csv:%s,max_field=8", d), NULL, PB_EFORMAT, "train.csv:2:1: field of 16 bytes is larger than the maximum of 8");
    pb_task *t = open_ok(spec_for("csv:%s", d), NULL);
    pb_task_free(t);
    OPEN_BAD(spec_for("csv:%s,input=x", d), NULL, PB_EFORMAT, "missing column 'x'");
}

/* Opening is independent of threads: tasks opened concurrently equal the serial result. */
static void test_threads(void **state) {
    (void)state;
    const char *specs[4] = {"topic:max_train=101", "brackets:max_train=77,split_seed=5", "reverse:max_len=9",
                            "sentiment:n_train=300"};
    pb_task *serial[4], *par[8] = {0};
    for (int i = 0; i < 4; i++) serial[i] = open_ok(specs[i], NULL);
    int fails = 0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(4) schedule(static, 1) reduction(+ : fails)
#endif
    for (int i = 0; i < 8; i++) fails += pb_task_open(specs[i % 4], NULL, &par[i]) != PB_OK;
    assert_int_equal(fails, 0);
    for (int i = 0; i < 8; i++) {
        const pb_task *a = serial[i % 4], *b = par[i];
        for (int s = 0; s < PB_NSPLIT; s++) {
            assert_int_equal(a->split[s].n, b->split[s].n);
            for (size_t j = 0; j < a->split[s].n; j++) {
                assert_string_equal(a->split[s].ex[j].text, b->split[s].ex[j].text);
                assert_int_equal(a->split[s].ex[j].label, b->split[s].ex[j].label);
            }
        }
        pb_task_free(par[i]);
    }
    for (int i = 0; i < 4; i++) pb_task_free(serial[i]);
}

/* Whole-task scoring on a synthetic task, through the selection metric. */
static void test_score_synthetic(void **state) {
    (void)state;
    pb_task *t = open_ok("topic:n_train=40,n_dev=40,n_test=40", NULL);
    size_t n = t->split[PB_SPLIT_DEV].n;
    int *pred = malloc(n * sizeof *pred);
    for (size_t i = 0; i < n; i++) pred[i] = t->split[PB_SPLIT_DEV].ex[i].label;
    double m[PB_TASK_MAX_METRICS];
    assert_int_equal(pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.labels = pred}, m), PB_OK);
    assert_true(m[0] == 1.0 && m[1] == 1.0);
    for (size_t i = 0; i < n; i++) pred[i] = 0; /* majority-free: a constant guess scores 1/4 */
    assert_int_equal(pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.labels = pred}, m), PB_OK);
    assert_true(m[0] == 0.25);
    pred[0] = 7; /* out of range */
    assert_int_equal(pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.labels = pred}, m), PB_EINVAL);
    free(pred);
    pb_task_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors),          cmocka_unit_test(test_registry_and_list),
        cmocka_unit_test(test_data_dir),             cmocka_unit_test(test_synthetic_tasks),
        cmocka_unit_test(test_synthetic_semantics),  cmocka_unit_test(test_max_train_stratified),
        cmocka_unit_test(test_max_train_rare_label), cmocka_unit_test(test_max_len),
        cmocka_unit_test(test_glue_fixtures),        cmocka_unit_test(test_glue_bad),
        cmocka_unit_test(test_dataset_fixture),      cmocka_unit_test(test_dataset_bad),
        cmocka_unit_test(test_csv_task),             cmocka_unit_test(test_csv_task_bad),
        cmocka_unit_test(test_score_synthetic),      cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
