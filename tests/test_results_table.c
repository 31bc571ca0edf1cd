/* test_results_table.c — the survey table from hand-made rows whose answer is known: the
 * learning rate chosen on mean dev (ineligible when a seed diverged), mean ± sample std of test
 * over seeds, the edge-of-grid flag, lower-is-better metrics, grouping by category, values
 * relative to full, the average, and the md / tex (booktabs) / csv outputs. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/stats.h"
#include "results/table.h"

static void add(pb_res *r, const char *label, const char *category, const char *task, const char *metric, int higher,
                double lr, int seed, double dev, double test, const char *status) {
    pb_res_row w;
    pb_res_row_init(&w);
    snprintf(w.config, sizeof w.config, "%s|%s|%g|%d", label, task, lr, seed);
    pb_res_key(w.config, w.key);
    snprintf(w.backbone_name, sizeof w.backbone_name, "tiny");
    snprintf(w.method_label, sizeof w.method_label, "%s", label);
    snprintf(w.method_name, sizeof w.method_name, "%s", label);
    snprintf(w.method, sizeof w.method, "%s:x=1", label);
    snprintf(w.category, sizeof w.category, "%s", category);
    snprintf(w.task, sizeof w.task, "%s:n_train=9", task);
    snprintf(w.task_name, sizeof w.task_name, "%s", task);
    snprintf(w.select_metric, sizeof w.select_metric, "%s", metric);
    snprintf(w.status, sizeof w.status, "%s", status);
    w.higher_is_better = higher;
    w.lr = lr;
    w.seed = (uint64_t)seed;
    w.dev_metric = dev;
    w.test_metric = test;
    int full = !strcmp(label, "full");
    w.trainable_pct = full ? 100 : 1.5;
    w.flops_train = full ? 300 : 200;
    w.flops_fwd = 100, w.flops_bwd_in = 100, w.flops_bwd_w = full ? 100 : 0;
    w.mem_peak_total = full ? 4000 : 1000;
    w.forgetting = full ? 0.5 : NAN;
    assert_int_equal(pb_res_put(r, &w), PB_OK);
}

/* The test set: prompt (first in the file), full, lora; tasks cls (acc) and g2p (per, lower is
 * better); lrs 1e-4, 1e-3, 1e-2; seeds 1..3. */
static void make(pb_res *r) {
    pb_res_init(r);
    static const double lrs[3] = {1e-4, 1e-3, 1e-2};
    for (int s = 1; s <= 3; s++)
        for (int l = 0; l < 3; l++) {
            /* prompt: best dev at the top lr (edge) */
            add(r, "prompt", "prompt", "cls", "acc", 1, lrs[l], s, 0.5 + 0.1 * l, 0.4 + 0.1 * l + 0.01 * s, "ok");
            /* full: best dev at 1e-3 (inside the grid): test 0.80, 0.82, 0.84 */
            add(r, "full", "selective", "cls", "acc", 1, lrs[l], s, l == 1 ? 0.9 : 0.7, l == 1 ? 0.78 + 0.02 * s : 0.1,
                "ok");
            /* lora: 1e-2 has the best dev but one seed diverged there: 1e-3 is chosen */
            int div = l == 2 && s == 2;
            add(r, "lora", "reparameterization", "cls", "acc", 1, lrs[l], s, l == 2 ? 0.95 : l == 1 ? 0.85 : 0.6,
                l == 1 ? 0.75 : 0.2, div ? "diverged" : "ok");
            /* g2p (per, lower is better): full best at 1e-4, lora at 1e-2 */
            add(r, "full", "selective", "g2p", "per", 0, lrs[l], s, 0.2 + 0.1 * l, 0.25 + 0.1 * l, "ok");
            add(r, "lora", "reparameterization", "g2p", "per", 0, lrs[l], s, 0.5 - 0.1 * l, 0.45 - 0.1 * l, "ok");
        }
}

static void test_choice_and_statistics(void **state) {
    (void)state;
    pb_res r;
    make(&r);
    pb_table t;
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    assert_int_equal(t.n_tasks, 2);
    assert_string_equal(t.task[0], "cls");
    assert_int_equal(t.higher[1], 0);
    assert_int_equal(t.n_rows, 3);
    /* grouped by category in survey order, whatever the file order */
    assert_string_equal(t.rows[0].label, "full");
    assert_string_equal(t.rows[1].label, "prompt");
    assert_string_equal(t.rows[2].label, "lora");
    assert_int_equal(t.full, 0);
    const pb_table_cell *c = &t.rows[0].cell[0];
    assert_true(c->lr == 1e-3 && c->n == 3 && !c->lr_edge);
    assert_true(fabs(c->mean - 82.0) < 1e-9);
    assert_true(fabs(c->std - 2.0) < 1e-9); /* sample std of 80, 82, 84 */
    c = &t.rows[1].cell[0];
    assert_true(c->lr == 1e-2 && c->lr_edge);
    assert_true(fabs(c->mean - 62.0) < 1e-9);
    c = &t.rows[2].cell[0];
    assert_true(c->lr == 1e-3 && !c->lr_edge); /* 1e-2 lost a seed to divergence */
    assert_true(fabs(c->mean - 75.0) < 1e-9 && fabs(c->std) < 1e-9);
    /* lower is better: smallest mean dev wins */
    assert_true(t.rows[0].cell[1].lr == 1e-4 && t.rows[0].cell[1].lr_edge);
    assert_true(fabs(t.rows[0].cell[1].mean - 25.0) < 1e-9);
    assert_true(t.rows[2].cell[1].lr == 1e-2);
    assert_true(isnan(t.rows[1].cell[1].mean)); /* prompt never ran g2p */
    /* the average leaves out the lower-is-better task */
    assert_int_equal(t.excluded_from_avg, 1);
    assert_true(fabs(t.rows[0].avg - 82.0) < 1e-9);
    assert_true(t.any_edge);
    /* method statistics */
    assert_true(t.rows[2].flops_train == 200 && t.rows[0].mem_peak == 4000);
    assert_true(t.rows[0].forgetting == 0.5 && isnan(t.rows[2].forgetting));
    pb_table_free(&t);
    /* --tasks chooses and orders columns; unknown names are errors that list what exists */
    assert_int_equal(pb_table_build(&r, "tiny", "g2p", &t), PB_OK);
    assert_int_equal(t.n_tasks, 1);
    assert_string_equal(t.task[0], "g2p");
    pb_table_free(&t);
    assert_int_equal(pb_table_build(&r, "tiny", "cls,nope", &t), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "cls, g2p"));
    assert_int_equal(pb_table_build(&r, "huge", NULL, &t), PB_ENOTFOUND);
    char names[4][PB_RES_NAME];
    assert_int_equal(pb_table_backbones(&r, names, 4), 1);
    assert_string_equal(names[0], "tiny");
    pb_res_free(&r);
}

static char *render(const pb_table *t, const pb_table_opts *o) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    pb_table_write(f, t, o);
    fclose(f);
    return buf;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    for (size_t i = 0; s[i]; i++) n += !strncmp(s + i, needle, len);
    return n;
}

static void test_formats(void **state) {
    (void)state;
    pb_res r;
    make(&r);
    pb_table t;
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    pb_table_opts o;
    pb_table_default_opts(&o);
    char *md = render(&t, &o);
    assert_non_null(strstr(md, "| Method | % params | FLOPs/token | Peak memory | cls (acc) | g2p (per ↓) | Avg |"));
    /* rows without test records (results written before version 2): means, no intervals; bold
     * marks the best of each column */
    assert_non_null(strstr(md, "| full | 100 | 1.00× | 1.00× | **82.0** | **25.0**† | **82.0** |"));
    assert_non_null(strstr(md, "| lora | 1.5 | 0.67× | 0.25× | 75.0 | 25.0† | 75.0 |"));
    assert_non_null(strstr(md, "| *prompt* |"));
    assert_non_null(strstr(md, "edge of the grid"));
    free(md);
    o.show_lr = 1;
    md = render(&t, &o);
    assert_non_null(strstr(md, "**82.0** (0.001)"));
    free(md);
    o.format = PB_TABLE_TEX;
    char *tex = render(&t, &o);
    assert_int_equal(count(tex, "\\toprule"), 1);
    assert_int_equal(count(tex, "\\midrule"), 1);
    assert_int_equal(count(tex, "\\bottomrule"), 1);
    assert_non_null(strstr(tex, "\\begin{tabular}{lrrrrrr}"));
    /* every body row has 6 column separators */
    for (char *line = strtok(tex, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "\\\\") && !strstr(line, "multicolumn")) assert_int_equal(count(line, " & "), 6);
    free(tex);
    assert_int_equal(pb_table_parse_columns("params,tasks", &o), PB_OK);
    o.format = PB_TABLE_MD;
    md = render(&t, &o);
    assert_non_null(strstr(md, "| Method | % params | cls (acc) | g2p (per ↓) |\n"));
    free(md);
    assert_int_equal(pb_table_parse_columns("params,speed", &o), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "speed"));
    pb_table_default_opts(&o);
    o.format = PB_TABLE_CSV;
    char *csv = render(&t, &o);
    int fields = -1;
    for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n")) {
        int f = count(line, ",") + 1;
        if (fields < 0) fields = f;
        assert_int_equal(f, fields);
    }
    assert_int_equal(fields, 10 + 2 * 17 + 11);
    free(csv);
    pb_table_free(&t);
    pb_res_free(&r);
}

/* Two configurations under one label (files of different specs merged) stay two rows. */
static void test_label_collision(void **state) {
    (void)state;
    pb_res r;
    pb_res_init(&r);
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-3, 1, 0.5, 0.5, "ok");
    pb_res_row w = r.rows[0];
    w.eval_step = NULL, w.eval_dev = w.eval_test = w.eval_train_loss = w.loss = NULL;
    snprintf(w.method, sizeof w.method, "lora:r=16");
    snprintf(w.config, sizeof w.config, "other");
    pb_res_key(w.config, w.key);
    w.test_metric = 0.9;
    assert_int_equal(pb_res_put(&r, &w), PB_OK);
    pb_table t;
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.rows[0].label, "lora");
    assert_non_null(strstr(t.rows[1].label, "lora ["));
    assert_true(fabs(t.rows[1].cell[0].mean - 90.0) < 1e-9);
    pb_table_free(&t);
    pb_res_free(&r);
}

/* A row with test records: n examples, `right` of them predicted correctly (two classes): those
 * from -seed-shift on, so seeds differ a little and methods with other shifts disagree on some
 * examples both ways. */
static void add_rec(pb_res *r, const char *label, const char *category, double lr, int seed, int n, int right,
                    int shift, double dev) {
    pb_res_row w;
    pb_res_row_init(&w);
    snprintf(w.config, sizeof w.config, "%s|%g|%d", label, lr, seed);
    pb_res_key(w.config, w.key);
    snprintf(w.backbone_name, sizeof w.backbone_name, "%s", strcmp(category, "reference") ? "tiny" : "");
    snprintf(w.method_label, sizeof w.method_label, "%s", label);
    snprintf(w.method_name, sizeof w.method_name, "%s", label);
    snprintf(w.method, sizeof w.method, "%s", label);
    snprintf(w.category, sizeof w.category, "%s", category);
    snprintf(w.task, sizeof w.task, "cls");
    snprintf(w.task_name, sizeof w.task_name, "cls");
    snprintf(w.task_kind, sizeof w.task_kind, "classify");
    snprintf(w.metrics, sizeof w.metrics, "acc");
    snprintf(w.select_metric, sizeof w.select_metric, "acc");
    snprintf(w.status, sizeof w.status, "ok");
    w.higher_is_better = 1;
    w.n_metrics = 1;
    w.lr = lr;
    w.seed = (uint64_t)seed;
    w.dev_metric = dev;
    w.ex_width = 2;
    w.n_ex = n;
    w.ex = malloc(sizeof(float) * 2 * (size_t)n);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        int gold = i % 2, correct = (i + seed + shift) % n < right;
        w.ex[2 * i] = (float)(correct ? gold : 1 - gold);
        w.ex[2 * i + 1] = (float)gold;
        ok += correct;
    }
    w.test_metric = (double)ok / n;
    w.dev_all[0] = dev;
    w.test_all[0] = w.test_metric;
    assert_int_equal(pb_res_put(r, &w), PB_OK);
    free(w.ex);
}

/* Intervals and paired tests from test records: a method that differs from full on a handful of
 * examples is tied with it (bold, ≈); one 30 points behind is significantly worse; the interval
 * has about the binomial width; reference rows are shown but never ranked; one seed of three
 * missing shows n=2. */
static void test_intervals_and_significance(void **state) {
    (void)state;
    pb_res r;
    pb_res_init(&r);
    const int n = 400;
    for (int s = 1; s <= 3; s++) {
        add_rec(&r, "full", "selective", 1e-3, s, n, 320, 0, 0.8);
        add_rec(&r, "lora", "reparameterization", 1e-3, s, n, 316, 3, 0.79); /* 3 better, 7 worse than full */
        if (s != 3) add_rec(&r, "prompt", "prompt", 1e-2, s, n, 200, 0, 0.5);
    }
    add_rec(&r, "majority", "reference", 0, 1, n, 200, 0, 0.5);
    /* a task whose rows have no records (a version 1 file merged in): shown without intervals */
    add(&r, "full", "selective", "old", "acc", 1, 1e-3, 1, 0.5, 0.5, "ok");
    snprintf(r.rows[r.n - 1].method, sizeof r.rows[r.n - 1].method, "full");
    pb_table t;
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    assert_int_equal(t.n_rows, 4);
    assert_int_equal(t.n_tasks, 2);
    assert_true(isfinite(t.rows[0].cell[1].mean) && isnan(t.rows[0].cell[1].lo));
    assert_true(isnan(t.rows[0].avg_lo)); /* the average needs every averaged cell's records */
    pb_table_free(&t);
    assert_int_equal(pb_table_build(&r, "tiny", "cls", &t), PB_OK); /* the task with records */
    assert_true(t.any_intervals);
    assert_int_equal(t.n_test[0], (size_t)n);
    const pb_table_row *full = &t.rows[0], *prompt = &t.rows[1], *lora = &t.rows[2], *maj = &t.rows[3];
    assert_string_equal(maj->label, "majority");
    assert_true(maj->reference);
    /* the interval: about 1.96 sqrt(p(1-p)/n) = 3.9 points at p = 0.8 (seeds add little here) */
    const pb_table_cell *c = &full->cell[0];
    assert_true(fabs(c->mean - 80.0) < 1e-9);
    double h = (c->hi - c->lo) / 2;
    if (!(h > 2.5 && h < 5.5)) fail_msg("full: half-width %.2f, expected about 3.9", h);
    assert_true(c->lo < 80.0 && c->hi > 80.0);
    assert_true(c->best && c->tied_best);
    /* lora: 1 point behind, disagreeing with full on 10 examples: not significant */
    c = &lora->cell[0];
    assert_true(c->tied_best && c->tied_full);
    assert_true(c->full_lo < 0 && c->full_hi >= 0);
    /* prompt: 30 points behind: significant, p small; two seeds */
    c = &prompt->cell[0];
    assert_false(c->tied_best || c->tied_full);
    assert_true(c->full_hi < -20 && c->full_p < 0.01);
    assert_int_equal(c->n, 2);
    /* the reference row: interval, compared with full, never the best */
    c = &maj->cell[0];
    assert_true(isfinite(c->lo) && !c->tied_best && !c->best);
    /* averages: one task, so the same numbers */
    assert_int_equal(t.avg_best, 0);
    assert_true(lora->avg_tied_best && lora->avg_tied_full && !prompt->avg_tied_best);
    double lo, hi, p;
    assert_int_equal(pb_table_avg_diff(&t, 1, 0, &lo, &hi, &p), 1);
    assert_true(hi < -20);
    /* output: bold ties, ≈, n=2 */
    pb_table_opts o;
    pb_table_default_opts(&o);
    char *md = render(&t, &o);
    assert_non_null(strstr(md, "| lora |"));
    assert_non_null(strstr(md, " ≈ |"));
    assert_non_null(strstr(md, "(n=2)"));
    assert_non_null(strstr(md, "| *reference* |"));
    assert_non_null(strstr(md, "bootstrap interval"));
    assert_non_null(strstr(md, "cls 400"));
    char line[256];
    snprintf(line, sizeof line, "| **80.0 ±%.1f** | **80.0 ±", (c = &full->cell[0], (c->hi - c->lo) / 2));
    if (!strstr(md, line)) fail_msg("no '%s' in\n%s", line, md);
    free(md);
    /* deterministic */
    pb_table t2;
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t2), PB_OK);
    assert_true(t2.rows[0].cell[0].lo == t.rows[0].cell[0].lo && t2.rows[1].cell[0].full_p == t.rows[1].cell[0].full_p);
    pb_table_free(&t2);
    pb_table_free(&t);
    pb_res_free(&r);
}

/* Records that do not fit the task (rows built in memory; a file's records are checked when read):
 * a row whose records are narrower than the task's is left out of the bootstrap instead of read
 * past its end; a label at or past PB_TABLE_MAX_CLASSES leaves the task without intervals (a
 * K x K confusion matrix per replicate) instead of a huge or endless bootstrap. */
static void test_records_that_do_not_fit(void **state) {
    (void)state;
    pb_res r;
    pb_res_init(&r);
    for (int s = 1; s <= 2; s++) add_rec(&r, "full", "selective", 1e-3, s, 20, 15, 0, 0.8);
    add_rec(&r, "lora", "reparameterization", 1e-3, 1, 20, 14, 0, 0.7);
    pb_res_row *w = &r.rows[r.n - 1];
    w->ex_width = 1; /* 20 floats: half of what (predicted, gold) needs */
    pb_table t;
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    assert_int_equal(t.n_rows, 2);
    assert_true(isfinite(t.rows[0].cell[0].lo) && t.rows[0].cell[0].n_test == 20);
    assert_true(isfinite(t.rows[1].cell[0].mean) && isnan(t.rows[1].cell[0].lo) && t.rows[1].cell[0].n_test == 0);
    pb_table_free(&t);
    w->ex_width = 2;
    w->ex[3] = (float)PB_TABLE_MAX_CLASSES; /* a gold label no task has */
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    assert_false(t.any_intervals);
    assert_int_equal(t.n_test[0], 0);
    assert_true(isfinite(t.rows[0].cell[0].mean) && isnan(t.rows[0].cell[0].lo));
    pb_table_free(&t);
    w->ex[3] = (float)(PB_TABLE_MAX_CLASSES - 1); /* the largest label still scored: 256 classes */
    assert_int_equal(pb_table_build(&r, "tiny", NULL, &t), PB_OK);
    assert_true(t.any_intervals && t.n_test[0] == 20);
    pb_table_free(&t);
    pb_res_free(&r);
}

/* The learning rate under the first_seed protocol: chosen on the seed that ran every rate, not
 * moved by the later seeds that ran only the chosen one. */
static void test_choose_lr_first_seed(void **state) {
    (void)state;
    pb_res r;
    pb_res_init(&r);
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-3, 1, 0.70, 0.7, "ok");
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-2, 1, 0.75, 0.7, "ok");
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 3e-2, 1, 0.60, 0.7, "ok");
    double lr;
    int n_lrs, edge;
    assert_int_equal(pb_table_choose_lr(&r, "tiny", "lora:x=1", "cls:n_train=9", 1, &lr, &n_lrs, &edge), 1);
    assert_true(lr == 1e-2 && n_lrs == 3 && !edge);
    /* seeds 2 and 3 at 1e-2 with a poor dev do not move the choice to 1e-3 */
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-2, 2, 0.10, 0.7, "ok");
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-2, 3, 0.10, 0.7, "ok");
    assert_int_equal(pb_table_choose_lr(&r, "tiny", "lora:x=1", "cls:n_train=9", 1, &lr, &n_lrs, &edge), 1);
    assert_true(lr == 1e-2);
    /* with the whole grid on every seed, the mean over seeds decides */
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-3, 2, 0.70, 0.7, "ok");
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 1e-3, 3, 0.70, 0.7, "ok");
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 3e-2, 2, 0.60, 0.7, "ok");
    add(&r, "lora", "reparameterization", "cls", "acc", 1, 3e-2, 3, 0.60, 0.7, "ok");
    assert_int_equal(pb_table_choose_lr(&r, "tiny", "lora:x=1", "cls:n_train=9", 1, &lr, &n_lrs, &edge), 1);
    assert_true(lr == 1e-3 && edge);
    pb_res_free(&r);
}

/* The bootstrap engine alone: identical entries differ by exactly 0 (p = 1); a one-seed interval
 * of accuracy has the binomial width; seeds that disagree widen the interval of the mean. */
static void test_bootstrap_engine(void **state) {
    (void)state;
    enum { N = 1000 };
    static float a[2 * N], b[2 * N], c[2 * N];
    for (int i = 0; i < N; i++) {
        a[2 * i + 1] = b[2 * i + 1] = c[2 * i + 1] = (float)(i % 2);
        a[2 * i] = b[2 * i] = (float)(i < N / 2 ? i % 2 : 1 - i % 2);  /* 50% right */
        c[2 * i] = (float)(i < 9 * N / 10 ? i % 2 : 1 - i % 2);       /* 90% right */
    }
    pb_boot_task task = {.metric = PB_METRIC_ACC, .n_classes = 2, .width = 2, .n_ex = N};
    pb_boot_entry e[3] = {{.task = 0, .n_seeds = 1, .seed = {1}, .rec = {a}},
                          {.task = 0, .n_seeds = 1, .seed = {1}, .rec = {b}},
                          {.task = 0, .n_seeds = 2, .seed = {1, 2}, .rec = {a, c}}};
    pb_boot bt;
    assert_int_equal(pb_boot_run(&bt, &task, 1, e, 3, 1000, 7), PB_OK);
    double lo, hi, p;
    assert_int_equal(pb_boot_diff(&bt, 0, 1, &lo, &hi, &p), 1);
    assert_true(lo == 0 && hi == 0 && p == 1);
    pb_boot_interval(&bt, 0, &lo, &hi);
    double h = (hi - lo) / 2; /* 1.96 sqrt(0.25 / 1000) = 0.031 */
    if (!(h > 0.025 && h < 0.037)) fail_msg("half-width %.4f, expected about 0.031", h);
    pb_boot_interval(&bt, 2, &lo, &hi); /* seeds at 0.5 and 0.9: the mean 0.7 with seed noise */
    if (!(lo < 0.55 && hi > 0.85)) fail_msg("two disagreeing seeds: interval [%.3f, %.3f] too narrow", lo, hi);
    pb_boot_free(&bt);
    pb_boot_entry bad = {.task = 3, .n_seeds = 1, .rec = {a}};
    assert_int_not_equal(pb_boot_run(&bt, &task, 1, &bad, 1, 10, 7), PB_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice_and_statistics),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_label_collision),
        cmocka_unit_test(test_intervals_and_significance),
        cmocka_unit_test(test_records_that_do_not_fit),
        cmocka_unit_test(test_choose_lr_first_seed),
        cmocka_unit_test(test_bootstrap_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
