/* fuzz_results.c — results files as `peftbench table` and `peftbench merge` read them
 * (results/results.h pb_res_read; results/table.h pb_table_build/pb_table_write; the merge's
 * pb_res_put and pb_res_write). A results file (schema version 2) of 8 rows is written once per
 * process by the real writer: a classification task (2 methods x 3 seeds, ok, diverged and
 * failed) and a generation task (2 methods, one seed), with curves and test records (8 examples
 * per row: (predicted, gold) labels, or exact and token_acc statistics). The input mutates it
 * (h5mutate.h: attributes, /runs, /curves and /examples/records reshaped, retyped, truncated,
 * rows and records with arbitrary bytes). Input byte 0 bit 0 set: the file is truncated instead.
 * The table's bootstrap (B = 2000) runs on 8 examples per row, so an execution stays fast.
 *
 * Checks: every refusal has a message; a file that reads has unique keys (pb_res_find finds
 * each row at its own index); every table that builds renders in md, tex and csv; merging it
 * with the original and writing the result succeeds (or fails with a message) and reads back
 * with the merged number of rows.
 *
 *   scripts/fuzz.sh results
 */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "h5mutate.h"
#include "results/results.h"
#include "results/table.h"

int pb_fuzz_results(const uint8_t *data, size_t size);

enum { N_ROWS = 8, N_EX = 8 };

static void make_row(pb_res_row *w, int i) {
    int gen = i >= 6; /* rows 6, 7: the generation task */
    pb_res_row_init(w);
    snprintf(w->config, sizeof w->config, "peftbench-cell 1\nfuzz=%d", i);
    pb_res_key(w->config, w->key);
    snprintf(w->sweep, sizeof w->sweep, "fuzz");
    snprintf(w->backbone, sizeof w->backbone, "tiny");
    snprintf(w->backbone_name, sizeof w->backbone_name, "tiny");
    snprintf(w->method, sizeof w->method, i % 2 ? "lora:r=2" : "full");
    snprintf(w->method_name, sizeof w->method_name, i % 2 ? "lora" : "full");
    snprintf(w->method_label, sizeof w->method_label, i % 2 ? "lora" : "full");
    snprintf(w->category, sizeof w->category, i % 2 ? "reparameterization" : "selective");
    snprintf(w->task, sizeof w->task, gen ? "copy" : "sentiment");
    snprintf(w->task_name, sizeof w->task_name, gen ? "copy" : "sentiment");
    snprintf(w->task_kind, sizeof w->task_kind, gen ? "generate" : "classify");
    w->seed = gen ? 1 : (uint64_t)(i / 2 + 1);
    w->steps = 20, w->batch = 4, w->max_len = 32, w->eval_every = 5;
    w->lr = i < 4 || gen ? 1e-3 : 3e-3;
    snprintf(w->schedule, sizeof w->schedule, "linear");
    snprintf(w->status, sizeof w->status, "%s", i == 5 ? "failed" : i == 4 ? "diverged" : "ok");
    w->trainable = i % 2 ? 500 : 36000, w->total = 36000 + (i % 2 ? 500 : 0);
    w->trainable_pct = 100.0 * (double)w->trainable / (double)w->total;
    w->flops_fwd = 1e5, w->flops_bwd_in = 1e5, w->flops_bwd_w = i % 2 ? 0 : 1e5;
    w->flops_train = w->flops_fwd + w->flops_bwd_in + w->flops_bwd_w;
    w->infer_flops = 1e5, w->infer_flops_merged = NAN;
    w->mem_peak_total = 1000000u + (uint64_t)i;
    snprintf(w->metrics, sizeof w->metrics, gen ? "exact,token_acc" : "acc,macro_f1");
    snprintf(w->select_metric, sizeof w->select_metric, gen ? "token_acc" : "acc");
    w->higher_is_better = 1, w->n_metrics = 2, w->best_step = 10;
    w->dev_metric = 0.5 + 0.01 * i, w->test_metric = 0.4 + 0.01 * i;
    for (int k = 0; k < PB_RES_MAX_METRICS; k++) w->dev_all[k] = w->test_all[k] = k < 2 ? 0.5 : NAN;
    snprintf(w->forgetting_corpus, sizeof w->forgetting_corpus, "builtin");
    w->heldout_bpb_before = 5, w->heldout_bpb_after = 5.1, w->forgetting = 0.1;
    snprintf(w->date, sizeof w->date, "2025-01-01T00:00:0%dZ", i);
    w->threads = 1, w->jobs = 1;
    w->n_evals = 4, w->n_loss = 20;
    w->eval_step = malloc(sizeof(int32_t) * 4);
    w->eval_train_loss = malloc(sizeof(float) * 4);
    w->eval_dev = malloc(sizeof(float) * 4);
    w->eval_test = malloc(sizeof(float) * 4);
    w->loss = malloc(sizeof(float) * 20);
    for (int k = 0; k < 4; k++) w->eval_step[k] = 5 * (k + 1), w->eval_train_loss[k] = w->eval_dev[k] = w->eval_test[k] = 0.5f;
    for (int k = 0; k < 20; k++) w->loss[k] = 1.0f / (float)(k + 1);
    if (i == 5) return; /* failed: no records */
    w->ex_width = gen ? 4 : 2, w->n_ex = N_EX;
    w->ex = malloc(sizeof(float) * N_EX * (size_t)w->ex_width);
    for (int j = 0; j < N_EX; j++) {
        float *x = w->ex + j * w->ex_width;
        if (gen) x[0] = (float)((i + j) % 2), x[1] = 1, x[2] = (float)((i + j) % 4), x[3] = 3; /* exact, token_acc */
        else x[0] = (float)((i + j) % 3 == 0), x[1] = (float)(j % 2);                       /* predicted, gold */
    }
}

static const char *template_path(void) {
    static char path[1100];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s", pbf_path("results-template.h5"));
    pb_res r;
    pb_res_init(&r);
    for (int i = 0; i < N_ROWS; i++) {
        pb_res_row w;
        make_row(&w, i);
        if (pb_res_put(&r, &w)) pbf_fail("template row: %s", pb_errmsg());
        pb_res_row_free(&w);
    }
    if (pb_res_write(path, &r)) pbf_fail("template: %s", pb_errmsg());
    pb_res_free(&r);
    /* the unmutated file reaches the bootstrap: both tasks have intervals */
    pb_res_init(&r);
    pb_table t;
    if (pb_res_read(path, &r) || pb_table_build(&r, "tiny", NULL, &t)) pbf_fail("template: %s", pb_errmsg());
    if (!t.any_intervals || t.n_tasks != 2 || t.n_test[0] != N_EX || t.n_test[1] != N_EX)
        pbf_fail("template: the table has no intervals (tasks %d, test examples %zu, %zu)", t.n_tasks, t.n_test[0],
                 t.n_test[1]);
    pb_table_free(&t);
    pb_res_free(&r);
    return path;
}

static void render_tables(const pb_res *r) {
    char names[8][PB_RES_NAME];
    int nb = pb_table_backbones(r, names, 8);
    for (int b = 0; b < nb && b < 8; b++) {
        pb_table t;
        if (pbf_check_status(pb_table_build(r, names[b], NULL, &t))) continue;
        pb_table_opts o;
        pb_table_default_opts(&o);
        FILE *f = fopen("/dev/null", "w");
        for (int fmt = 0; fmt < 3; fmt++) {
            o.format = (pb_table_format)fmt;
            o.forgetting = o.show_lr = fmt == 2;
            pb_table_write(f, &t, &o);
        }
        fclose(f);
        pb_table_free(&t);
    }
}

int pb_fuzz_results(const uint8_t *data, size_t size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *tpl = template_path(), *path = pbf_path("results.h5"), *out = pbf_path("merged.h5");
    pbf_copy_file(tpl, path);
    pbf_in in = {data, size};
    uint8_t mode = pbf_u8(&in);
    if (mode & 1) pbf_truncate(path, pbf_u32(&in) % 20000);
    else if (pbf_h5_mutate(path, &in)) pbf_fail("cannot open the template copy for writing");

    pb_res r;
    pb_res_init(&r);
    if (pbf_check_status(pb_res_read(path, &r))) {
        pb_res_free(&r);
        return 0;
    }
    for (size_t i = 0; i < r.n; i++)
        if (pb_res_find(&r, r.rows[i].key) != (long)i) pbf_fail("row %zu's key %s is not unique", i, r.rows[i].key);
    render_tables(&r);
    /* merge with the original, as `peftbench merge` does */
    pb_res all, orig;
    pb_res_init(&all);
    pb_res_init(&orig);
    if (pb_res_read(tpl, &orig)) pbf_fail("template: %s", pb_errmsg());
    int ok = 1;
    for (size_t i = 0; i < orig.n && ok; i++) ok = !pbf_check_status(pb_res_put(&all, &orig.rows[i]));
    for (size_t i = 0; i < r.n && ok; i++)
        if (pb_res_find(&all, r.rows[i].key) < 0) ok = !pbf_check_status(pb_res_put(&all, &r.rows[i]));
    if (ok && !pbf_check_status(pb_res_write(out, &all))) {
        pb_res back;
        pb_res_init(&back);
        if (pb_res_read(out, &back)) pbf_fail("a merged file does not read back: %s", pb_errmsg());
        if (back.n != all.n) pbf_fail("merged %zu rows, read back %zu", all.n, back.n);
        pb_res_free(&back);
    }
    pb_res_free(&all);
    pb_res_free(&orig);
    pb_res_free(&r);
    return 0;
}
