/* test_results.c — the HDF5 results store: exact round trip of every field and curve, keys,
 * replacement by key, the writer's atomicity when killed at each stage of a write (forked
 * writers that SIGKILL themselves through the PEFTBENCH_CRASH hook), the writer lock, and
 * clear refusals of files that are not results of this schema version (another version, a
 * checkpoint, garbage, truncated, missing) — never a crash. h5dump must read what we write. */
#include "testutil.h"

#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/results.h"

/* A row with every field set to something recognisable, curves of n_evals / n_loss points. */
static void make_row(pb_res_row *w, int i, int n_evals, int n_loss) {
    pb_res_row_init(w);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "config %d", i);
    snprintf(w->config, sizeof w->config, "%s\nline two", cfg);
    pb_res_key(w->config, w->key);
    snprintf(w->sweep, sizeof w->sweep, "sweep-%d", i);
    snprintf(w->backbone, sizeof w->backbone, "tiny");
    snprintf(w->backbone_name, sizeof w->backbone_name, "tiny");
    snprintf(w->method, sizeof w->method, "lora:r=%d,alpha=16", i);
    snprintf(w->method_name, sizeof w->method_name, "lora");
    snprintf(w->method_label, sizeof w->method_label, "lora r=%d", i);
    snprintf(w->category, sizeof w->category, "reparameterization");
    snprintf(w->task, sizeof w->task, "sentiment:n_train=%d", 100 + i);
    snprintf(w->task_name, sizeof w->task_name, "sentiment");
    snprintf(w->task_kind, sizeof w->task_kind, "classify");
    w->seed = (uint64_t)i + 1;
    w->steps = 30 + i;
    w->batch = 8;
    w->max_len = 64;
    w->eval_every = 10;
    w->eval_max = 5;
    w->gen_max = 7;
    w->lr = 1e-3 * (i + 1);
    w->weight_decay = 0.01;
    w->warmup_frac = 0.06;
    w->clip = 1;
    snprintf(w->schedule, sizeof w->schedule, "cosine");
    snprintf(w->status, sizeof w->status, "%s", i % 3 == 0 ? "ok" : i % 3 == 1 ? "diverged" : "failed");
    snprintf(w->message, sizeof w->message, "message %d", i);
    w->trainable = 1000u + (uint64_t)i;
    w->total = 100000;
    w->trainable_pct = 100.0 * (double)w->trainable / 1e5;
    w->adapter_bytes = 4 * w->trainable;
    w->flops_fwd = 1.5e5 + i;
    w->flops_bwd_in = 1.25e5;
    w->flops_bwd_w = i ? 3.0e4 : 0.0;
    w->flops_train = w->flops_fwd + w->flops_bwd_in + w->flops_bwd_w;
    w->infer_flops = 1.4e5;
    w->infer_flops_merged = i % 2 ? NAN : 1.3e5;
    for (int c = 0; c < PB_MEM_NCAT; c++) w->mem_peak[c] = (uint64_t)(1000 * (c + 1) + i);
    w->mem_peak_total = 1u << 20;
    w->peak_rss = 1ull << 33; /* above 32 bits */
    w->wall_seconds = 1.25;
    w->train_seconds = 1.0;
    w->train_tok_per_s = 12345.5;
    w->infer_tok_per_s = 54321.25;
    w->train_tokens = 1ll << 35;
    snprintf(w->metrics, sizeof w->metrics, "acc,macro_f1");
    snprintf(w->select_metric, sizeof w->select_metric, "acc");
    w->higher_is_better = 1;
    w->n_metrics = 2;
    w->best_step = 20;
    w->dev_metric = 0.75 + 0.01 * i;
    w->test_metric = 0.7;
    w->dev_all[0] = w->dev_metric;
    w->dev_all[1] = 0.6;
    w->test_all[0] = 0.7;
    w->test_all[1] = 0.65;
    w->n_truncated = 3;
    snprintf(w->forgetting_corpus, sizeof w->forgetting_corpus, "builtin");
    w->heldout_bpb_before = 2.5;
    w->heldout_bpb_after = 2.625;
    w->forgetting = 0.125;
    snprintf(w->git_commit, sizeof w->git_commit, "abc123");
    snprintf(w->compiler, sizeof w->compiler, "GNU 12.2.0");
    snprintf(w->blas, sizeof w->blas, "OpenBLAS 0.3.21");
    snprintf(w->host, sizeof w->host, "host%d", i);
    snprintf(w->date, sizeof w->date, "2025-01-02T03:04:05Z");
    snprintf(w->version, sizeof w->version, "0.1.0");
    w->threads = 2;
    w->jobs = 1 + i;
    w->n_evals = n_evals;
    w->n_loss = n_loss;
    w->eval_step = n_evals ? malloc(sizeof(int32_t) * (size_t)n_evals) : NULL;
    w->eval_train_loss = n_evals ? malloc(sizeof(float) * (size_t)n_evals) : NULL;
    w->eval_dev = n_evals ? malloc(sizeof(float) * (size_t)n_evals) : NULL;
    w->eval_test = n_evals ? malloc(sizeof(float) * (size_t)n_evals) : NULL;
    w->loss = n_loss ? malloc(sizeof(float) * (size_t)n_loss) : NULL;
    for (int k = 0; k < n_evals; k++) {
        w->eval_step[k] = 10 * (k + 1);
        w->eval_train_loss[k] = 1.0f / (float)(k + 1 + i);
        w->eval_dev[k] = 0.5f + 0.01f * (float)k;
        w->eval_test[k] = 0.4f + 0.01f * (float)k;
    }
    for (int k = 0; k < n_loss; k++) w->loss[k] = k == 3 ? NAN : 2.0f - 0.001f * (float)(k + i);
}

static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static void assert_same_row(const pb_res_row *a, const pb_res_row *b) {
#define S(f) assert_string_equal(a->f, b->f)
#define N(f) assert_true(a->f == b->f)
#define D(f)                                                                                                   \
    do {                                                                                                       \
        if (!same_double(a->f, b->f)) fail_msg("%s: %.17g != %.17g", #f, (double)a->f, (double)b->f);          \
    } while (0)
    S(key), S(config), S(sweep), S(backbone), S(backbone_name), S(method), S(method_name), S(method_label);
    S(category), S(task), S(task_name), S(task_kind), S(schedule), S(status), S(message), S(metrics);
    S(select_metric), S(forgetting_corpus), S(git_commit), S(compiler), S(blas), S(host), S(date), S(version);
    N(seed), N(steps), N(batch), N(max_len), N(eval_every), N(eval_max), N(gen_max), N(trainable), N(total);
    N(adapter_bytes), N(mem_peak_total), N(peak_rss), N(train_tokens), N(higher_is_better), N(n_metrics);
    N(best_step), N(n_truncated), N(threads), N(jobs), N(n_evals), N(n_loss);
    D(lr); D(weight_decay); D(warmup_frac); D(clip); D(trainable_pct); D(flops_fwd); D(flops_bwd_in);
    D(flops_bwd_w); D(flops_train); D(infer_flops); D(infer_flops_merged); D(wall_seconds); D(train_seconds);
    D(train_tok_per_s); D(infer_tok_per_s); D(dev_metric); D(test_metric); D(heldout_bpb_before);
    D(heldout_bpb_after); D(forgetting);
    for (int c = 0; c < PB_MEM_NCAT; c++) N(mem_peak[c]);
    for (int k = 0; k < PB_RES_MAX_METRICS; k++) {
        D(dev_all[k]);
        D(test_all[k]);
    }
    for (int k = 0; k < a->n_evals; k++) N(eval_step[k]);
    if (a->n_evals) {
        tu_assert_same(a->eval_train_loss, b->eval_train_loss, (size_t)a->n_evals, "eval_train_loss");
        tu_assert_same(a->eval_dev, b->eval_dev, (size_t)a->n_evals, "eval_dev");
        tu_assert_same(a->eval_test, b->eval_test, (size_t)a->n_evals, "eval_test");
    }
    if (a->n_loss) tu_assert_same(a->loss, b->loss, (size_t)a->n_loss, "loss");
#undef S
#undef N
#undef D
}

/* A results set of n rows with varying curve lengths (some empty). */
static void make_set(pb_res *r, int n) {
    pb_res_init(r);
    for (int i = 0; i < n; i++) {
        pb_res_row w;
        make_row(&w, i, i % 4, (i * 7) % 50);
        assert_int_equal(pb_res_put(r, &w), PB_OK);
        pb_res_row_free(&w);
    }
}

static size_t file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_round_trip(void **state) {
    (void)state;
    pb_res a, b;
    make_set(&a, 13);
    const char *p = tu_tmp_path("rt.h5");
    assert_int_equal(pb_res_write(p, &a), PB_OK);
    pb_res_init(&b);
    assert_int_equal(pb_res_read(p, &b), PB_OK);
    assert_int_equal(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) assert_same_row(&a.rows[i], &b.rows[i]);
    /* rewriting what was read gives the same rows again */
    assert_int_equal(pb_res_write(p, &b), PB_OK);
    pb_res c;
    pb_res_init(&c);
    assert_int_equal(pb_res_read(p, &c), PB_OK);
    for (size_t i = 0; i < a.n; i++) assert_same_row(&a.rows[i], &c.rows[i]);
    pb_res_free(&a), pb_res_free(&b), pb_res_free(&c);
}

static void test_empty_file(void **state) {
    (void)state;
    pb_res a;
    pb_res_init(&a);
    const char *p = tu_tmp_path("empty.h5");
    assert_int_equal(pb_res_write(p, &a), PB_OK);
    assert_int_equal(pb_res_read(p, &a), PB_OK);
    assert_int_equal(a.n, 0);
    pb_res_free(&a);
}

static void test_keys_and_put(void **state) {
    (void)state;
    char k[PB_RES_KEY];
    pb_res_key("", k); /* FNV-1a 64 offset basis */
    assert_string_equal(k, "cbf29ce484222325");
    pb_res_key("a", k); /* the published FNV-1a 64 test vector */
    assert_string_equal(k, "af63dc4c8601ec8c");
    pb_res r;
    make_set(&r, 3);
    pb_res_row w;
    make_row(&w, 1, 2, 5);
    snprintf(w.host, sizeof w.host, "replaced");
    assert_int_equal(pb_res_put(&r, &w), PB_OK); /* same key: replaces, in place */
    assert_int_equal(r.n, 3);
    assert_string_equal(r.rows[1].host, "replaced");
    assert_int_equal(pb_res_find(&r, w.key), 1);
    assert_int_equal(pb_res_find(&r, "0000000000000000"), -1);
    snprintf(w.key, sizeof w.key, "XYZ");
    assert_int_equal(pb_res_put(&r, &w), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "hex"));
    pb_res_key("x", w.key);
    snprintf(w.status, sizeof w.status, "great");
    assert_int_equal(pb_res_put(&r, &w), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "status"));
    pb_res_row_free(&w);
    /* many rows: the key index grows and finds every one */
    for (int i = 3; i < 500; i++) {
        make_row(&w, i, 0, 0);
        assert_int_equal(pb_res_put(&r, &w), PB_OK);
        pb_res_row_free(&w);
    }
    for (size_t i = 0; i < r.n; i++) assert_int_equal(pb_res_find(&r, r.rows[i].key), (long)i);
    pb_res_free(&r);
}

/* A writer killed at each stage of replacing version 1 (5 rows) by version 2 (6 rows) leaves a
 * file that reads as version 1 before the rename and as version 2 after it. */
static void test_write_killed_at_each_stage(void **state) {
    (void)state;
    static const char *stages[] = {"tmp-created", "tmp-written", "tmp-synced", "renamed"};
    for (int s = 0; s < 4; s++) {
        char name[64];
        snprintf(name, sizeof name, "crash_%d.h5", s);
        const char *p = tu_tmp_path(name);
        pb_res v1, v2;
        make_set(&v1, 5);
        make_set(&v2, 6);
        assert_int_equal(pb_res_write(p, &v1), PB_OK);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char env[64];
            snprintf(env, sizeof env, "%s:1", stages[s]);
            setenv("PEFTBENCH_CRASH", env, 1);
            pb_res_write(p, &v2);
            _exit(0); /* not reached: the hook kills us */
        }
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) fail_msg("stage %s: the writer was not killed", stages[s]);
        pb_res got;
        pb_res_init(&got);
        assert_int_equal(pb_res_read(p, &got), PB_OK);
        assert_int_equal(got.n, s == 3 ? 6 : 5);
        for (size_t i = 0; i < got.n; i++) assert_same_row(&(s == 3 ? v2 : v1).rows[i], &got.rows[i]);
        /* the next writer takes the lock, drops the stale PATH.tmp and writes normally */
        int lock;
        assert_int_equal(pb_res_lock(p, &lock), PB_OK);
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", p);
        assert_int_equal(access(tmp, F_OK), -1);
        assert_int_equal(pb_res_write(p, &v2), PB_OK);
        pb_res_unlock(lock);
        pb_res_free(&got);
        pb_res_free(&v1), pb_res_free(&v2);
    }
}

static void test_lock(void **state) {
    (void)state;
    const char *p = tu_tmp_path("locked.h5");
    int a, b;
    assert_int_equal(pb_res_lock(p, &a), PB_OK);
    assert_int_equal(pb_res_lock(p, &b), PB_EIO); /* flock: a second open file description conflicts */
    assert_non_null(strstr(pb_errmsg(), "another peftbench process"));
    pb_res_unlock(a);
    assert_int_equal(pb_res_lock(p, &b), PB_OK);
    pb_res_unlock(b);
}

static void test_write_errors(void **state) {
    (void)state;
    pb_res r;
    make_set(&r, 2);
    assert_int_equal(pb_res_write("/nonexistent-dir/x/results.h5", &r), PB_EIO);
    assert_non_null(strstr(pb_errmsg(), "writable"));
    assert_int_equal(pb_res_write(tu_tmpdir(), &r), PB_EINVAL); /* a directory */
    assert_non_null(strstr(pb_errmsg(), "directory"));
    pb_res_free(&r);
}

/* Sets the root attribute format_version of an existing results file to v. */
static void set_version(const char *path, long long v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Adelete(f, "format_version") >= 0);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int64_t x = v;
    assert_true(H5Awrite(a, H5T_NATIVE_INT64, &x) >= 0);
    H5Aclose(a), H5Sclose(sp), H5Fclose(f);
}

static void expect_format_error(const char *path, const char *needle) {
    pb_res r;
    pb_res_init(&r);
    pb_status st = pb_res_read(path, &r);
    if (st == PB_OK || !strstr(pb_errmsg(), needle))
        fail_msg("%s: status %s, message '%s' (expected one containing '%s')", path, pb_status_name(st), pb_errmsg(),
                 needle);
    assert_int_equal(r.n, 0);
    pb_res_free(&r);
}

static void test_bad_files(void **state) {
    (void)state;
    pb_res r;
    pb_res_init(&r);
    assert_int_equal(pb_res_read(tu_tmp_path("missing.h5"), &r), PB_ENOTFOUND);
    assert_int_equal(pb_res_read(tu_tmpdir(), &r), PB_EINVAL);

    const char *garbage = tu_tmp_path("garbage.h5");
    FILE *f = fopen(garbage, "wb");
    for (int i = 0; i < 5000; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    expect_format_error(garbage, "not an HDF5 file");

    const char *other = tu_tmp_path("v99.h5");
    pb_res v;
    make_set(&v, 3);
    assert_int_equal(pb_res_write(other, &v), PB_OK);
    set_version(other, 99);
    expect_format_error(other, "schema version 99");

    const char *ckpt = tu_tmp_path("ckpt-like.h5");
    hid_t h = H5Fcreate(ckpt, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 21);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(h, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, "peftbench-checkpoint");
    H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Fclose(h);
    expect_format_error(ckpt, "model checkpoint");

    /* truncated copies of a good file: refused or (if the cut spares everything) read, never a crash */
    const char *good = tu_tmp_path("good.h5");
    assert_int_equal(pb_res_write(good, &v), PB_OK);
    size_t n = file_size(good);
    char *bytes = malloc(n);
    f = fopen(good, "rb");
    assert_int_equal(fread(bytes, 1, n, f), n);
    fclose(f);
    for (int cut = 1; cut < 8; cut++) {
        const char *tr = tu_tmp_path("truncated.h5");
        f = fopen(tr, "wb");
        fwrite(bytes, 1, n * (size_t)cut / 8, f);
        fclose(f);
        pb_res x;
        pb_res_init(&x);
        pb_status st = pb_res_read(tr, &x);
        assert_true(st == PB_OK || st == PB_EFORMAT);
        if (st == PB_OK) assert_int_equal(x.n, 3);
        pb_res_free(&x);
    }
    free(bytes);
    pb_res_free(&v);
    pb_res_free(&r);
}

/* h5dump (the HDF5 tools, a dependency of the build) reads a results file. */
static void test_h5dump_reads_it(void **state) {
    (void)state;
    if (system("command -v h5dump >/dev/null 2>&1") != 0) {
        fprintf(stderr, "h5dump not installed: skipped\n");
        skip();
    }
    pb_res r;
    make_set(&r, 4);
    const char *p = tu_tmp_path("dump.h5");
    assert_int_equal(pb_res_write(p, &r), PB_OK);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "h5dump %s > %s.txt 2>&1", p, p);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q '\"lora r=3\"' %s.txt && grep -q mem_workspace %s.txt", p, p);
    assert_int_equal(system(cmd), 0);
    pb_res_free(&r);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_keys_and_put),  cmocka_unit_test(test_write_killed_at_each_stage),
        cmocka_unit_test(test_lock),          cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_bad_files),     cmocka_unit_test(test_h5dump_reads_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
