/* test_bad_inputs.c — bad inputs and bad outputs give a clear error and damage nothing already
 * written:
 * - an adapter or a checkpoint whose tensor shapes disagree with its attributes (the loaders
 *   and the commands that use them: `score`, `pretrain --resume`);
 * - a results file with a truncated dataset (`/curves/loss`, `/runs` or `/examples/records`
 *   shorter than the rows say), rows whose ex_offset / ex_count disagree with the records before
 *   them, or a test record that is not a count: `table`, `merge` and `sweep -o` refuse it and
 *   leave it as it is;
 * - a spec naming files outside the working tree: allowed (docs/ARCHITECTURE.md "Decisions"),
 *   and a missing one is an error naming the spec line and the path;
 * - an output directory that is read-only or full (a small tmpfs, mounted here when this runs
 *   as root; skipped with the reason otherwise): `sweep`, `merge`, `pretrain` fail naming the
 *   file and the system's reason, and the results file already there is unchanged. */
#include "testutil.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "methods/adapter.h"
#include "methods/peft.h"
#include "models/checkpoint.h"
#include "models/model.h"
#include "results/results.h"

#define RUN(log, ...) tu_run_peftbench_ex(NULL, log, -1, (const char *const[]){__VA_ARGS__, NULL})

/* ---- helpers -------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *b;
    long n;
} snapshot;

static snapshot snap(const char *path) {
    snapshot s = {NULL, -1};
    FILE *f = fopen(path, "rb");
    if (!f) return s;
    fseek(f, 0, SEEK_END);
    s.n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s.b = malloc((size_t)s.n + 1);
    assert_int_equal(fread(s.b, 1, (size_t)s.n, f), (size_t)s.n);
    fclose(f);
    return s;
}

/* Fails unless path holds exactly the bytes of s; frees s. */
static void assert_unchanged(snapshot s, const char *path) {
    snapshot t = snap(path);
    if (t.n != s.n || memcmp(s.b, t.b, (size_t)s.n)) fail_msg("%s was changed (%ld bytes, now %ld)", path, s.n, t.n);
    free(s.b);
    free(t.b);
}

/* Replaces dataset `name` (a path inside the file) by a float32 dataset of the given dims. */
static void reshape_dataset(const char *path, const char *name, int ndim, const hsize_t *dims) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    float *z = calloc(n, sizeof *z);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
    free(z);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

/* Shrinks a chunked, extendible 1-D dataset to n elements. */
static void shrink_dataset(const char *path, const char *name, hsize_t n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dset_extent(d, &n) >= 0);
    H5Dclose(d);
    H5Fclose(f);
}

/* Sets the uint64 field `field` of row `row` of /runs (the other fields are left as they are). */
static void set_run_field(const char *path, const char *field, size_t row, uint64_t v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "/runs", H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(uint64_t));
    assert_true(H5Tinsert(mt, field, 0, H5T_NATIVE_UINT64) >= 0);
    hid_t sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    assert_true(row < n);
    uint64_t *x = calloc(n, sizeof *x);
    assert_true(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    x[row] = v;
    assert_true(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    free(x);
    H5Sclose(sp);
    H5Tclose(mt);
    H5Dclose(d);
    H5Fclose(f);
}

/* Sets element i of the float dataset `name` to v. */
static void set_float(const char *path, const char *name, hsize_t i, float v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t sp = H5Dget_space(d), one = H5Screate_simple(1, (hsize_t[]){1}, NULL);
    assert_true(H5Sselect_elements(sp, H5S_SELECT_SET, 1, &i) >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, one, sp, H5P_DEFAULT, &v) >= 0);
    H5Sclose(one);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
}

static void copy_file(const char *src, const char *dst) {
    snapshot s = snap(src);
    assert_true(s.n >= 0);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s.b, 1, (size_t)s.n, f), (size_t)s.n);
    fclose(f);
    free(s.b);
}

/* Exit 1 (a runtime failure) or 2 (refused before any work), never a crash or success. */
static void expect_failure(int ws, const char *log) {
    tu_expect_exit(ws, WIFEXITED(ws) && WEXITSTATUS(ws) == 2 ? 2 : 1, log);
}

static const char *k_spec2 = "[sweep]\nname = bad\nbackbones = tiny\ntasks = sentiment:n_train=32,n_dev=16,n_test=16\n"
                             "lrs = 1e-3\nseeds = 1 2\nsteps = 4\nbatch = 4\nmax_len = 32\neval_every = 2\n[method bitfit]\n";
static const char *k_spec3 = "[sweep]\nname = bad\nbackbones = tiny\ntasks = sentiment:n_train=32,n_dev=16,n_test=16\n"
                             "lrs = 1e-3\nseeds = 1 2 3\nsteps = 4\nbatch = 4\nmax_len = 32\neval_every = 2\n[method bitfit]\n";

#define PRETRAIN(log, out, ...)                                                                                   \
    RUN(log, "pretrain", "--backbone", "tiny", "--corpus", "builtin", "--builtin-bytes", "40000", "--tokenizer", \
        "byte", "--steps", "6", "--seq", "32", "--batch", "2", "--save-every", "3", "--threads", "1",             \
        "--eval-tokens", "256", "--quiet", __VA_ARGS__, "-o", out)

/* ---- shapes that disagree with the attributes --------------------------------------------- */

static void test_adapter_shapes(void **state) {
    (void)state;
    const pb_model_desc *d = pb_backbone_find("tiny");
    pb_model m;
    pb_peft p;
    const char *path = tu_tmp_path("shapes_adapter.h5");
    assert_int_equal(pb_model_init(&m, d, PB_HEAD_CLS, 3, 1), PB_OK);
    assert_int_equal(pb_peft_create(&p, "lora:r=2", NULL, PB_HEAD_CLS, 3, &m, 1), PB_OK);
    char name[256];
    snprintf(name, sizeof name, "/added/%s", p.params[0].name);
    assert_int_equal(pb_adapter_save(path, &p, "lora:r=2"), PB_OK);
    pb_peft_free(&p);
    /* a tensor of another shape than r=2 and the model's width imply */
    hsize_t dims[2] = {3, 5};
    reshape_dataset(path, name, 2, dims);
    snapshot s = snap(path);
    assert_int_equal(pb_adapter_load(path, &m, &p), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), path));
    assert_non_null(strstr(pb_errmsg(), name));
    assert_non_null(strstr(pb_errmsg(), "has shape (3, 5)"));
    assert_unchanged(s, path);
    /* the attributes disagree with the model */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int v = 48;
    H5LTset_attribute_int(f, "/", "d_model", &v, 1);
    H5Fclose(f);
    assert_int_equal(pb_adapter_load(path, &m, &p), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "trained with d_model=48"));
    pb_model_free(&m);
}

static void test_checkpoint_shapes(void **state) {
    (void)state;
    const char *ck = tu_tmp_path("shapes_ck.h5"), *log = tu_tmp_path("shapes_ck.log");
    const char *text = tu_write_tmp("shapes.txt", "a short text to score\n");
    tu_expect_exit(PRETRAIN(log, ck, "--force"), 0, log);
    hsize_t dims[2] = {32, 31}; /* tiny: d_model 32, q_proj (32, 32) */
    reshape_dataset(ck, "/params/h.0.attn.q_proj.weight", 2, dims);
    assert_int_equal(pb_ckpt_reseal(ck), PB_OK); /* edited on purpose: reach the shape check */
    snapshot s = snap(ck);
    tu_expect_exit(RUN(log, "score", "--checkpoint", ck, "--text", text), 1, log);
    assert_true(tu_log_contains(log, "h.0.attn.q_proj.weight' has shape (32, 31)"));
    assert_true(tu_log_contains(log, "implies (32, 32)"));
    assert_unchanged(s, ck);
    s = snap(ck);
    int ws = PRETRAIN(log, ck, "--resume");
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
    assert_true(tu_log_contains(log, "h.0.attn.q_proj.weight"));
    assert_unchanged(s, ck);
}

/* ---- a results file with a truncated dataset ---------------------------------------------- */

/* Fails, showing the log, unless the log contains needle. */
static void expect_in_log(const char *log, const char *needle) {
    if (tu_log_contains(log, needle)) return;
    tu_print_log(log);
    fail_msg("expected '%s' in the log above", needle);
}

static void check_truncated(const char *good, const char *bad, const char *needle) {
    const char *log = tu_tmp_path("trunc.log"), *out = tu_tmp_path("trunc_merged.h5");
    const char *spec = tu_write_tmp("trunc.ini", k_spec2);
    pb_res r;
    pb_res_init(&r);
    assert_int_not_equal(pb_res_read(bad, &r), PB_OK);
    if (!strstr(pb_errmsg(), bad) || !strstr(pb_errmsg(), needle))
        fail_msg("reading %s: '%s' (expected the file and '%s')", bad, pb_errmsg(), needle);
    pb_res_free(&r);
    snapshot s = snap(bad);
    tu_expect_exit(RUN(log, "table", bad), 1, log);
    expect_in_log(log, needle);
    tu_expect_exit(RUN(log, "merge", good, bad, "-o", out), 1, log);
    expect_in_log(log, needle);
    assert_int_equal(access(out, F_OK), -1);
    tu_expect_exit(RUN(log, "sweep", spec, "-o", bad, "--threads", "1"), 1, log);
    expect_in_log(log, needle);
    assert_unchanged(s, bad);
}

static void test_results_truncated(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("trunc.ini", k_spec2), *log = tu_tmp_path("trunc.log");
    const char *good = tu_tmp_path("trunc_good.h5"), *bad = tu_tmp_path("trunc_bad.h5");
    tu_expect_exit(RUN(log, "sweep", spec, "-o", good, "--threads", "1"), 0, log);
    copy_file(good, bad);
    shrink_dataset(bad, "/curves/loss", 5); /* two rows of 4 losses each */
    check_truncated(good, bad, "curves");
    copy_file(good, bad);
    shrink_dataset(bad, "/runs", 1); /* n_runs says 2 */
    check_truncated(good, bad, "runs");
}

/* The test records (schema version 2): two rows of 16 examples x (predicted, gold) = 64 floats. */
static void test_results_records(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("trunc.ini", k_spec2), *log = tu_tmp_path("trunc.log");
    char good[600], bad[600]; /* tu_tmp_path's buffers are reused after 16 calls */
    snprintf(good, sizeof good, "%s", tu_tmp_path("rec_good.h5"));
    snprintf(bad, sizeof bad, "%s", tu_tmp_path("rec_bad.h5"));
    tu_expect_exit(RUN(log, "sweep", spec, "-o", good, "--threads", "1"), 0, log);
    pb_res r;
    pb_res_init(&r);
    assert_int_equal(pb_res_read(good, &r), PB_OK);
    assert_int_equal(r.n, 2);
    for (size_t i = 0; i < r.n; i++) assert_true(r.rows[i].n_ex == 16 && r.rows[i].ex_width == 2);
    pb_res_free(&r);
    copy_file(good, bad);
    shrink_dataset(bad, "/examples/records", 40);
    check_truncated(good, bad, "dataset '/examples/records' has 40 elements; the rows of /runs point to 64");
    copy_file(good, bad);
    set_run_field(bad, "ex_offset", 1, 0); /* row 1's records begin where row 0's end: 32 */
    check_truncated(good, bad, "row 1 of /runs has inconsistent test-record offsets: ex_offset 0, ex_count 16");
    copy_file(good, bad);
    set_run_field(bad, "ex_count", 0, 15); /* row 0 then ends at 30, row 1 still begins at 32 */
    check_truncated(good, bad, "row 1 of /runs has inconsistent test-record offsets: ex_offset 32, ex_count 16, "
                               "ex_width 2; expected ex_offset 30");
    copy_file(good, bad);
    set_run_field(bad, "ex_count", 1, 17); /* the last row points past the records */
    check_truncated(good, bad, "the rows of /runs point to 66");
    copy_file(good, bad);
    set_float(bad, "/examples/records", 37, 0.5f); /* a label that is not an integer */
    check_truncated(good, bad, "row 1 of /runs: test record value 0.5 at /examples/records[37] is not a count");
}

/* ---- files outside the working tree --------------------------------------------------------- */

static void test_spec_outside_tree(void **state) {
    (void)state;
    /* The spec, the checkpoint and the CSV task each in their own directory, none the current
     * one (ctest runs in the build tree): allowed, paths as written. */
    char dir[1100], ck[1200], spec[4000];
    snprintf(dir, sizeof dir, "%s/outside", tu_tmpdir());
    mkdir(dir, 0755);
    snprintf(ck, sizeof ck, "%s/ck.h5", dir);
    const char *log = tu_tmp_path("outside.log");
    tu_expect_exit(PRETRAIN(log, ck, "--force"), 0, log);
    const char *src = getenv("PB_TEST_SRC");
    assert_non_null(src);
    snprintf(spec, sizeof spec,
             "[sweep]\nname = outside\nbackbones = %s\ntasks = csv:%s/tests/fixtures/tasks/csv\nlrs = 1e-3\n"
             "steps = 2\nbatch = 2\nmax_len = 32\neval_every = 1\n[method bitfit]\n",
             ck, src);
    const char *sp = tu_write_tmp("outside.ini", spec), *out = tu_tmp_path("outside.h5");
    tu_expect_exit(RUN(log, "sweep", sp, "-o", out, "--threads", "1"), 0, log);
    pb_res r;
    pb_res_init(&r);
    assert_int_equal(pb_res_read(out, &r), PB_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.rows[0].status, "ok");
    assert_string_equal(r.rows[0].backbone, ck);
    pb_res_free(&r);
    /* a missing one: the spec's line and the path */
    snprintf(spec, sizeof spec, "[sweep]\nname = outside\nbackbones = %s/missing/ck.h5\ntasks = sentiment\n[method bitfit]\n",
             dir);
    sp = tu_write_tmp("outside2.ini", spec);
    tu_expect_exit(RUN(log, "sweep", sp, "-o", tu_tmp_path("outside2.h5")), 2, log);
    assert_true(tu_log_contains(log, "outside2.ini:3"));
    assert_true(tu_log_contains(log, "/missing/ck.h5"));
    snprintf(spec, sizeof spec, "[sweep]\nname = outside\nbackbones = tiny\ntasks = csv:%s/missing\n[method bitfit]\n", dir);
    sp = tu_write_tmp("outside3.ini", spec);
    tu_expect_exit(RUN(log, "sweep", sp, "-o", tu_tmp_path("outside3.h5")), 2, log);
    assert_true(tu_log_contains(log, "outside3.ini:4"));
    assert_true(tu_log_contains(log, "/missing"));
}

/* ---- read-only and full output directories -------------------------------------------------- */

static char g_mnt[1100];

static int sh(const char *fmt, const char *arg) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd, fmt, arg, arg);
    return system(cmd);
}

static int mount_setup(void **state) {
    (void)state;
    snprintf(g_mnt, sizeof g_mnt, "%s/mnt", tu_tmpdir());
    mkdir(g_mnt, 0755);
    if (getuid() != 0 || sh("mount -t tmpfs -o size=2m pbtest-tmpfs '%s' 2>/dev/null", g_mnt) != 0) g_mnt[0] = '\0';
    return 0;
}

static int mount_teardown(void **state) {
    (void)state;
    if (g_mnt[0] && sh("umount '%s' || umount -l '%s'", g_mnt) != 0) fprintf(stderr, "could not unmount %s\n", g_mnt);
    return 0;
}

static void test_readonly_and_full_outputs(void **state) {
    (void)state;
    if (!g_mnt[0]) {
        fprintf(stderr, "cannot mount a tmpfs (needs root and mount rights): read-only and full outputs not tested\n");
        skip();
    }
    const char *s2 = tu_write_tmp("out2.ini", k_spec2), *s3 = tu_write_tmp("out3.ini", k_spec3);
    const char *log = tu_tmp_path("out.log");
    char res[1200], ck[1200], merged[1200], filler[1200];
    snprintf(res, sizeof res, "%s/r.h5", g_mnt);
    snprintf(ck, sizeof ck, "%s/ck.h5", g_mnt);
    snprintf(merged, sizeof merged, "%s/merged.h5", g_mnt);
    snprintf(filler, sizeof filler, "%s/filler", g_mnt);
    tu_expect_exit(RUN(log, "sweep", s2, "-o", res, "--threads", "1"), 0, log);
    tu_expect_exit(PRETRAIN(log, ck, "--force"), 0, log);

    /* read-only */
    assert_int_equal(sh("mount -o remount,ro '%s'", g_mnt), 0);
    snapshot s = snap(res), c = snap(ck);
    tu_expect_exit(RUN(log, "sweep", s3, "-o", res, "--threads", "1"), 1, log);
    assert_true(tu_log_contains(log, res));
    assert_true(tu_log_contains(log, "Read-only file system"));
    tu_expect_exit(RUN(log, "merge", res, "-o", merged), 1, log);
    assert_true(tu_log_contains(log, "Read-only file system"));
    expect_failure(PRETRAIN(log, ck, "--force"), log);
    assert_true(tu_log_contains(log, "Read-only file system"));
    assert_unchanged(s, res);
    assert_unchanged(c, ck);
    assert_int_equal(sh("mount -o remount,rw '%s'", g_mnt), 0);

    /* full: a filler takes all but a few kB, less than one more version of the results file */
    sh("dd if=/dev/zero of='%s' bs=4k 2>/dev/null; true", filler);
    sh("truncate -s -8k '%s'", filler);
    s = snap(res), c = snap(ck);
    tu_expect_exit(RUN(log, "sweep", s3, "-o", res, "--threads", "1"), 1, log);
    assert_true(tu_log_contains(log, res));
    assert_true(tu_log_contains(log, "No space left on device"));
    expect_failure(PRETRAIN(log, ck, "--force"), log);
    assert_true(tu_log_contains(log, "No space left on device"));
    assert_unchanged(s, res);
    assert_unchanged(c, ck);
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", res);
    assert_int_equal(access(tmp, F_OK), -1); /* no half-written version left taking the space */
    pb_res r;
    pb_res_init(&r);
    assert_int_equal(pb_res_read(res, &r), PB_OK);
    assert_int_equal(r.n, 2);
    pb_res_free(&r);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_shapes),
        cmocka_unit_test(test_checkpoint_shapes),
        cmocka_unit_test(test_results_truncated),
        cmocka_unit_test(test_results_records),
        cmocka_unit_test(test_spec_outside_tree),
        cmocka_unit_test_setup_teardown(test_readonly_and_full_outputs, mount_setup, mount_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
