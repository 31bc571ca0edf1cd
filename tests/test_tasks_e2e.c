/* test_tasks_e2e.c — every built-in task end to end (issue 5): fine-tune the tiny backbone with
 * `full` and with `lora` on each synthetic task of the registry and check that the model learned
 * something a trivial predictor cannot do. The list of tasks comes from pb_task_list (family
 * "synthetic"), so a new built-in task is covered automatically (with DEFAULT_RECIPE unless it
 * gets a row in RECIPES).
 *
 * The bars (checked on dev and on test; a run evaluates once, at its end, so neither is
 * selected on):
 *   classification  accuracy > p + 3 * sqrt(p (1 - p) / n), p the majority-class share of the
 *                   split and n its size: better than always answering the majority class by
 *                   three standard errors of a chance-level classifier (n = 300, binary: 0.587;
 *                   4 balanced classes: 0.325).
 *   generation      exact match > copy + 0.10, copy the exact match of echoing the input (for
 *                   `reverse`, the share of palindromic word sequences, about 0.05 here), so the
 *                   model must produce a clearly non-trivial fraction of whole outputs right;
 *                   0.10 is over 7 standard errors at n = 300.
 *
 * Recipes (docs/TASKS.md "The tiny backbone"): the backbone is `tiny` pretrained in the group
 * setup on the built-in corpus (600 steps, a few seconds), as the product does with its default
 * backbone, for every task (`brackets` too: the corpus has nested parenthetical asides). Task
 * parameters keep each example within the 64-token context and
 * the vocabulary small enough for 2 layers of width 32 to learn in 500 steps. Fixed seeds;
 * 2 threads in ctest. The runs are independent of each other.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/finetune.h"
#include "models/pretrain.h"
#include "tasks/task.h"
#include "testutil.h"

typedef struct {
    const char *task;      /* task name (NULL: the default row) */
    const char *params;    /* task options for the tiny backbone (appended after ':') */
    int pretrained;        /* 1: the backbone pretrained in the setup; 0: randomly initialised tiny */
    int steps;
    float lr_full, lr_lora;
} recipe;

#define LORA "lora:r=8,alpha=16,targets=all-linear"
#define EVAL_SPLITS "n_dev=300,n_test=300"

static const recipe RECIPES[] = {
    {"sentiment", "vocab=4,max_bytes=62", 1, 500, 3e-3f, 3e-3f},
    {"topic", "max_bytes=62", 1, 500, 3e-3f, 3e-3f},
    {"reverse", "vocab=20,min_words=2,max_words=3", 1, 600, 3e-3f, 1e-2f},
    {"brackets", "", 1, 500, 3e-3f, 3e-3f},
};
static const recipe DEFAULT_RECIPE = {NULL, "max_bytes=61", 1, 500, 3e-3f, 3e-3f};

static const recipe *recipe_for(const char *task) {
    for (size_t i = 0; i < sizeof RECIPES / sizeof RECIPES[0]; i++)
        if (!strcmp(RECIPES[i].task, task)) return &RECIPES[i];
    return &DEFAULT_RECIPE;
}


/* ---- the task parameters the recipes use (tasks/synthetic.c) -------------------------------- */

static pb_task *open_ok(const char *spec) {
    pb_task *t = NULL;
    if (pb_task_open(spec, NULL, &t) != PB_OK) fail_msg("pb_task_open(%s): %s", spec, pb_errmsg());
    return t;
}

static void assert_same_examples(const char *a, const char *b) {
    pb_task *x = open_ok(a), *y = open_ok(b);
    for (int s = 0; s < PB_NSPLIT; s++) {
        assert_int_equal(x->split[s].n, y->split[s].n);
        for (size_t i = 0; i < x->split[s].n; i++) {
            const pb_example *e = &x->split[s].ex[i], *f = &y->split[s].ex[i];
            assert_string_equal(e->text, f->text);
            assert_int_equal(e->label, f->label);
            if (e->target || f->target) assert_string_equal(e->target, f->target);
        }
    }
    pb_task_free(x);
    pb_task_free(y);
}

/* Distinct space-separated words over every text of every split (words end at ' ', '.', '!', ','). */
static size_t distinct_words(const pb_task *t, size_t *max_per_text, size_t *min_per_text) {
    enum { MAXW = 4096 };
    static char seen[MAXW][32];
    size_t n = 0;
    *max_per_text = 0, *min_per_text = (size_t)-1;
    for (int s = 0; s < PB_NSPLIT; s++)
        for (size_t i = 0; i < t->split[s].n; i++) {
            const char *p = t->split[s].ex[i].text;
            size_t k = 0;
            while (*p) {
                size_t l = strcspn(p, " .!,");
                if (l) {
                    char w[32];
                    assert_true(l < sizeof w);
                    memcpy(w, p, l), w[l] = '\0';
                    size_t j = 0;
                    while (j < n && strcmp(seen[j], w)) j++;
                    if (j == n) {
                        assert_true(n < MAXW);
                        memcpy(seen[n++], w, l + 1);
                    }
                    k++;
                }
                p += l + (p[l] != '\0');
            }
            if (k > *max_per_text) *max_per_text = k;
            if (k < *min_per_text) *min_per_text = k;
        }
    return n;
}

static void test_params_defaults(void **state) {
    (void)state;
    /* The documented defaults spelled out give the very same examples as no parameters. */
    assert_same_examples("sentiment:n_train=300", "sentiment:n_train=300,vocab=25,max_bytes=0");
    assert_same_examples("topic:n_train=300", "topic:n_train=300,vocab=18");
    assert_same_examples("reverse:n_train=300", "reverse:n_train=300,vocab=100,min_words=3,max_words=6");
    assert_same_examples("brackets:n_train=300", "brackets:n_train=300,max_bytes=0");
}

static void test_params_effect(void **state) {
    (void)state;
    size_t mx, mn;
    /* reverse: vocab= and the word counts; the target is still the input reversed */
    pb_task *t = open_ok("reverse:vocab=20,min_words=2,max_words=3");
    assert_int_equal(distinct_words(t, &mx, &mn), 20);
    assert_int_equal(mn, 2);
    assert_int_equal(mx, 3);
    for (size_t i = 0; i < t->split[PB_SPLIT_TEST].n; i++) {
        const pb_example *e = &t->split[PB_SPLIT_TEST].ex[i];
        char w[3][32], want[128];
        int k = sscanf(e->text, "%31s %31s %31s", w[0], w[1], w[2]);
        assert_true(k == 2 || k == 3);
        if (k == 2) snprintf(want, sizeof want, "%s %s", w[1], w[0]);
        else snprintf(want, sizeof want, "%s %s %s", w[2], w[1], w[0]);
        assert_string_equal(e->target, want);
    }
    pb_task_free(t);
    /* sentiment: vocab=4 keeps 4 of the 25 adjectives of each polarity and every other word */
    pb_task *a = open_ok("sentiment"), *b = open_ok("sentiment:vocab=4");
    size_t na = distinct_words(a, &mx, &mn), nb = distinct_words(b, &mx, &mn);
    assert_int_equal(nb + 2 * (25 - 4), na);
    pb_task_free(a);
    pb_task_free(b);
    /* max_bytes: input + target within the limit, classes still balanced */
    const char *specs[] = {"sentiment:max_bytes=62", "topic:max_bytes=40", "reverse:max_bytes=30",
                           "brackets:max_bytes=20"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        size_t lim = (size_t)atoi(strchr(specs[k], '=') + 1);
        t = open_ok(specs[k]);
        for (int s = 0; s < PB_NSPLIT; s++) {
            size_t count[8] = {0};
            for (size_t i = 0; i < t->split[s].n; i++) {
                const pb_example *e = &t->split[s].ex[i];
                if (e->text_len + e->target_len > lim)
                    fail_msg("%s: '%s' -> '%s' is longer than %zu bytes", specs[k], e->text,
                             e->target ? e->target : "", lim);
                if (e->label >= 0) count[e->label]++;
            }
            for (int c = 1; c < t->n_labels; c++)
                if (count[c] + 1 < count[0] || count[0] + 1 < count[c]) fail_msg("%s: classes unbalanced", specs[k]);
        }
        pb_task_free(t);
    }
}

static void open_bad(const char *spec, const char *needle) {
    pb_task *t = NULL;
    pb_status st = pb_task_open(spec, NULL, &t);
    if (st != PB_EINVAL) fail_msg("%s: %s, expected PB_EINVAL (%s)", spec, pb_status_name(st), pb_errmsg());
    assert_null(t);
    if (!strstr(pb_errmsg(), needle)) fail_msg("%s: message '%s' lacks '%s'", spec, pb_errmsg(), needle);
}

static void test_params_bad(void **state) {
    (void)state;
    open_bad("brackets:vocab=3", "option 'vocab' does not apply to task brackets");
    open_bad("sentiment:min_words=2", "option 'min_words' does not apply to task sentiment");
    open_bad("sentiment:vocab=1", "bad value '1' for vocab (expected an integer in [2, 25])");
    open_bad("reverse:vocab=101", "bad value '101' for vocab (expected an integer in [2, 100])");
    open_bad("reverse:min_words=4,max_words=3", "min_words=4 is larger than max_words=3");
    open_bad("reverse:max_words=9", "bad value '9' for max_words (expected an integer in [2, 8])");
    open_bad("brackets:max_bytes=12", "raise max_bytes");
    open_bad("topic:max_bytes=256", "bad value '256' for max_bytes");
}

/* ---- end to end ------------------------------------------------------------------------------ */

static char g_backbone[1024]; /* the pretrained tiny backbone */

static int setup(void **state) {
    (void)state;
    pb_pretrain_config c;
    pb_pretrain_defaults(&c);
    snprintf(c.backbone, sizeof c.backbone, "tiny");
    snprintf(c.corpus, sizeof c.corpus, "builtin");
    snprintf(c.tokenizer, sizeof c.tokenizer, "byte"); /* the accuracy bars were set with it */
    c.builtin_bytes = 300000;
    c.steps = 600;
    c.seed = 1;
    c.batch = 16;
    c.seq = 64;
    c.lr = 3e-3f;
    c.save_every = 0;
    c.eval_tokens = 4096;
    snprintf(g_backbone, sizeof g_backbone, "%s", tu_tmp_path("tasks_e2e_tiny.h5"));
    pb_status st = pb_pretrain_run(&c, NULL, g_backbone, PB_PT_OVERWRITE, NULL, NULL, NULL);
    if (st) {
        fprintf(stderr, "pretraining the tiny backbone: %s\n", pb_errmsg());
        return -1;
    }
    return 0;
}

typedef struct {
    char task[64];
    const char *method; /* "full" or "lora" */
} cell;

static int metric_index(const pb_task *t, pb_metric_id id) {
    for (int i = 0; i < t->n_metrics; i++)
        if (t->metrics[i] == id) return i;
    fail_msg("task %s has no %s metric", t->name, pb_metric_key(id));
    return -1;
}

/* The bar of one split (see the header comment) and the metric it applies to. */
static double bar_for(const pb_task *t, pb_split s, int *mi) {
    const pb_task_split *sp = &t->split[s];
    assert_true(sp->n > 0);
    if (t->kind == PB_TASK_GENERATE) {
        *mi = metric_index(t, PB_METRIC_EXACT);
        const char **texts = malloc(sizeof *texts * sp->n);
        assert_non_null(texts);
        for (size_t i = 0; i < sp->n; i++) texts[i] = sp->ex[i].text;
        double m[PB_TASK_MAX_METRICS];
        pb_status st = pb_task_score(t, s, &(pb_predictions){.texts = texts}, m);
        free(texts);
        assert_int_equal(st, PB_OK);
        return m[*mi] + 0.10;
    }
    assert_int_equal(t->kind, PB_TASK_CLASSIFY);
    *mi = metric_index(t, PB_METRIC_ACC);
    size_t *count = calloc((size_t)t->n_labels, sizeof *count), most = 0;
    assert_non_null(count);
    for (size_t i = 0; i < sp->n; i++) {
        assert_true(sp->ex[i].label >= 0 && sp->ex[i].label < t->n_labels);
        if (++count[sp->ex[i].label] > most) most = count[sp->ex[i].label];
    }
    free(count);
    double p = (double)most / (double)sp->n;
    return p + 3.0 * sqrt(p * (1.0 - p) / (double)sp->n);
}

static void test_cell(void **state) {
    const cell *c = *state;
    const recipe *rc = recipe_for(c->task);
    char spec[256];
    snprintf(spec, sizeof spec, "%s:%s%s" EVAL_SPLITS, c->task, rc->params, rc->params[0] ? "," : "");
    pb_task *t = NULL;
    if (pb_task_open(spec, NULL, &t) != PB_OK) fail_msg("task %s: %s", spec, pb_errmsg());

    int is_lora = !strcmp(c->method, "lora");
    pb_run_config cfg;
    pb_run_defaults(&cfg);
    cfg.backbone = rc->pretrained ? g_backbone : "tiny";
    cfg.method = is_lora ? LORA : "full";
    cfg.task = spec;
    cfg.task_obj = t;
    cfg.seed = 1;
    cfg.steps = rc->steps;
    cfg.batch = 16;
    cfg.max_len = 64;
    cfg.eval_every = 0; /* once, at the end */
    cfg.lr = is_lora ? rc->lr_lora : rc->lr_full;
    pb_run_result r;
    pb_status st = pb_run_cell(&cfg, &r);
    if (st != PB_OK) fail_msg("%s on %s: %s", cfg.method, spec, r.message);
    assert_false(r.diverged);
    assert_int_equal(r.n_truncated, 0); /* the 64-token context holds every example whole */

    int mi;
    double bar_dev = bar_for(t, PB_SPLIT_DEV, &mi), bar_test = bar_for(t, PB_SPLIT_TEST, &mi);
    const char *key = pb_metric_key(t->metrics[mi]);
    printf("%-10s %-5s %s dev %.4f (bar %.4f) test %.4f (bar %.4f)  backbone %s, %d steps, lr %g\n", c->task,
           c->method, key, r.best_dev[mi], bar_dev, r.test_at_best[mi], bar_test,
           rc->pretrained ? "pretrained tiny" : "random tiny", rc->steps, (double)cfg.lr);
    if (!(r.best_dev[mi] > bar_dev) || !(r.test_at_best[mi] > bar_test))
        fail_msg("%s/%s: %s dev %.4f test %.4f, expected above %.4f and %.4f", c->task, c->method, key, r.best_dev[mi],
                 r.test_at_best[mi], bar_dev, bar_test);
    pb_run_result_free(&r);
    pb_task_free(t);
}

int main(void) {
    enum { CAP = 256 };
    static pb_task_entry e[CAP];
    size_t n = pb_task_list(NULL, e, CAP);
    if (n > CAP) {
        fprintf(stderr, "the task list has %zu entries, more than the %d this test reads\n", n, CAP);
        return 1;
    }
    static cell cells[2 * CAP];
    static char names[2 * CAP][96];
    static struct CMUnitTest tests[2 * CAP];
    int nt = 0;
    const struct CMUnitTest params[] = {cmocka_unit_test(test_params_defaults), cmocka_unit_test(test_params_effect),
                                        cmocka_unit_test(test_params_bad)};
    /* PB_E2E_SHARD=K/N (ctest registers two shards, so they run side by side): only cells
     * of task t with method m (0 full, 1 lora) where (t + m) mod N = K-1; the parameter tests with
     * shard 1. */
    int shard_k = 1, shard_n = 1;
    const char *sh = getenv("PB_E2E_SHARD");
    if (sh && (sscanf(sh, "%d/%d", &shard_k, &shard_n) != 2 || shard_n < 1 || shard_k < 1 || shard_k > shard_n)) {
        fprintf(stderr, "PB_E2E_SHARD='%s': expected K/N with 1 <= K <= N\n", sh);
        return 1;
    }
    int fails = shard_k == 1 ? cmocka_run_group_tests_name("synthetic task parameters", params, NULL, NULL) : 0;
    int seen = 0, n_tasks = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].family, "synthetic") != 0) continue;
        n_tasks++;
        for (int m = 0; m < 2; m++) {
            seen++;
            if ((n_tasks - 1 + m) % shard_n != shard_k - 1) continue; /* full and lora alternate */
            cell *c = &cells[nt];
            snprintf(c->task, sizeof c->task, "%.*s", (int)sizeof c->task - 1, e[i].name);
            c->method = m ? "lora" : "full";
            snprintf(names[nt], sizeof names[nt], "%s/%s", c->task, c->method);
            tests[nt] = (struct CMUnitTest){names[nt], test_cell, NULL, NULL, c};
            nt++;
        }
    }
    if (seen < 8) {
        fprintf(stderr, "expected at least 4 built-in tasks in the registry, found %d\n", seen / 2);
        return 1;
    }
    return fails + _cmocka_run_group_tests("every built-in task, full and lora on tiny", tests, (size_t)nt, setup, NULL);
}
