/* test_checkpoint.c — HDF5 checkpoints: bit-exact round trip (parameters, metadata, training
 * state), byte-identical files for the same content, atomic writes, and refusal of bad files
 * (missing, directory, garbage, truncated, corrupted data, wrong magic, wrong version, wrong
 * shape, wrong dtype, missing/extra tensors, missing attributes, unrunnable descriptors) with
 * messages that say what is wrong — and no crash on random corruption. */
#include "testutil.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/checkpoint.h"
#include "models/desc.h"
#include "models/model.h"
#include "optim.h"
#include "pb_rng.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static void randomize(pb_model *m, uint64_t seed) {
    for (int i = 0; i < m->n_tensors; i++) tu_fill(m->tensors[i].data, m->tensors[i].numel, seed + (uint64_t)i, 1.0f);
}

static void fill_info(pb_ckpt_info *info) {
    memset(info, 0, sizeof *info);
    info->has_recipe = 1;
    pb_recipe *r = &info->recipe;
    snprintf(r->backbone, sizeof r->backbone, "tiny");
    snprintf(r->objective, sizeof r->objective, "next-token");
    snprintf(r->tokenizer, sizeof r->tokenizer, "byte");
    snprintf(r->corpus, sizeof r->corpus, "builtin");
    r->corpus_hash = 0x0123456789abcdefull;
    r->corpus_bytes = 12345;
    r->builtin_bytes = 12000;
    r->train_docs = 40;
    r->heldout_docs = 3;
    r->train_tokens = 11000;
    r->heldout_tokens = 1300;
    r->holdout = 0.05;
    r->steps = 100;
    r->seed = 7;
    r->batch = 4;
    r->seq = 32;
    r->lr = 3e-3f;
    r->min_lr_frac = 0.1f;
    r->warmup = 5;
    r->decay = PB_DECAY_COSINE;
    r->weight_decay = 0.1f;
    r->clip_norm = 1.0f;
    r->beta1 = 0.9f;
    r->beta2 = 0.95f;
    r->eps = 1e-8f;
    r->threads = 2;
    snprintf(r->git_commit, sizeof r->git_commit, "abc123");
    info->has_eval = 1;
    info->eval = (pb_ckpt_eval){.step = 100, .nats = 1234.5678901234, .tokens = 999, .bytes = 999,
                                .bits_per_byte = 1.7828282828};
}

/* A tiny model (LM head) with random weights saved to path; returns the model (caller frees). */
static void make_model(pb_model *m, pb_head_kind head, int labels) {
    const pb_model_desc *d = pb_backbone_find("tiny");
    assert_non_null(d);
    assert_int_equal(pb_model_init(m, d, head, labels, 3), PB_OK);
    randomize(m, 11);
}

static void save_plain(const char *path) {
    pb_model m;
    make_model(&m, PB_HEAD_LM, 0);
    pb_ckpt_info info;
    fill_info(&info);
    assert_int_equal(pb_ckpt_save(path, &m, &info, NULL), PB_OK);
    pb_model_free(&m);
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static unsigned char *read_all(const char *path, long *n) {
    *n = file_size(path);
    assert_true(*n > 0);
    unsigned char *b = malloc((size_t)*n);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Loading path must fail with st and a message containing every fragment (NULL-terminated). */
static void expect_load_error(const char *path, pb_status st, ...) {
    pb_model m;
    pb_status got = pb_ckpt_load(path, &m, NULL);
    if (got != st) fail_msg("loading %s: status %s (expected %s), message: %s", path, pb_status_name(got),
                            pb_status_name(st), pb_errmsg());
    assert_null(m.params); /* nothing left allocated, nothing left open */
    assert_int_equal(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    va_list ap;
    va_start(ap, st);
    for (const char *frag; (frag = va_arg(ap, const char *));)
        if (!strstr(pb_errmsg(), frag)) fail_msg("message lacks '%s': %s", frag, pb_errmsg());
    va_end(ap);
    if (!strstr(pb_errmsg(), path)) fail_msg("message does not name the file %s: %s", path, pb_errmsg());
}

/* Opens a saved file read-write with HDF5 for surgery. */
static hid_t h5_open_rw(const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

/* ---- round trip ------------------------------------------------------------------------------ */

static void check_roundtrip(pb_head_kind head, int labels) {
    const char *path = tu_tmp_path(head == PB_HEAD_LM ? "rt_lm.h5" : "rt_cls.h5");
    pb_model m;
    make_model(&m, head, labels);
    pb_ckpt_info info;
    fill_info(&info);
    /* A training state with non-trivial moments, RNG and loss curve. */
    int nseg = pb_model_segments(&m, NULL);
    pb_segment *seg = malloc(sizeof *seg * (size_t)nseg);
    pb_model_segments(&m, seg);
    pb_adamw opt;
    pb_adamw_config oc = pb_adamw_defaults();
    oc.beta2 = 0.95f;
    assert_int_equal(pb_adamw_init(&opt, &oc, seg, nseg), PB_OK);
    free(seg);
    tu_fill(opt.m, opt.total, 21, 0.1f);
    tu_fill(opt.v, opt.total, 22, 0.01f);
    opt.t = 37;
    float losses[37];
    tu_fill(losses, 37, 23, 5.0f);
    pb_ckpt_train tr = {.step = 37, .opt = &opt, .losses = losses, .n_losses = 37,
                        .sched = {.lr = 3e-3f, .min_lr_frac = 0.1f, .warmup = 5, .total = 100, .decay = PB_DECAY_COSINE}};
    pb_rng_seed(&tr.rng, 99);
    pb_rng_u64(&tr.rng);
    assert_int_equal(pb_ckpt_save(path, &m, &info, &tr), PB_OK);
    assert_int_equal(file_size(tu_tmp_path(head == PB_HEAD_LM ? "rt_lm.h5.tmp" : "rt_cls.h5.tmp")), -1);

    pb_model m2;
    pb_ckpt_info i2;
    assert_int_equal(pb_ckpt_load(path, &m2, &i2), PB_OK);
    assert_int_equal(memcmp(&m2.d, &m.d, sizeof m.d), 0);
    assert_int_equal(m2.head, head);
    assert_int_equal(m2.n_labels, labels);
    assert_int_equal(m2.n_tensors, m.n_tensors);
    assert_int_equal(m2.n_params, m.n_params);
    for (int i = 0; i < m.n_tensors; i++) {
        assert_string_equal(m2.tensors[i].name, m.tensors[i].name);
        tu_assert_same(m2.tensors[i].data, m.tensors[i].data, m.tensors[i].numel, m.tensors[i].name);
    }
    assert_string_equal(i2.tokenizer, "byte");
    assert_int_equal(i2.version, PB_CKPT_VERSION);
    assert_true(i2.has_recipe && i2.has_eval && i2.has_train && i2.resumable);
    assert_int_equal(i2.step, 37);
    /* Every recipe field survives exactly (strings, integers, float32 and float64). */
    assert_int_equal(memcmp(&i2.recipe, &info.recipe, sizeof info.recipe), 0);
    assert_int_equal(memcmp(&i2.eval, &info.eval, sizeof info.eval), 0);

    pb_adamw o2;
    seg = malloc(sizeof *seg * (size_t)nseg);
    pb_model_segments(&m2, seg);
    pb_adamw_config dc = pb_adamw_defaults();
    assert_int_equal(pb_adamw_init(&o2, &dc, seg, nseg), PB_OK);
    free(seg);
    pb_ckpt_train t2;
    float *l2;
    assert_int_equal(pb_ckpt_load_train(path, &m2, &o2, &t2, &l2), PB_OK);
    assert_int_equal(t2.step, 37);
    assert_int_equal(o2.t, 37);
    assert_true(o2.cfg.beta2 == 0.95f);
    tu_assert_same(o2.m, opt.m, opt.total, "adam m");
    tu_assert_same(o2.v, opt.v, opt.total, "adam v");
    tu_assert_same(l2, losses, 37, "losses");
    assert_int_equal(memcmp(&t2.rng, &tr.rng, sizeof tr.rng), 0);
    assert_int_equal(memcmp(&t2.sched, &tr.sched, sizeof tr.sched), 0);
    free(l2);
    pb_adamw_free(&o2);
    pb_adamw_free(&opt);
    pb_model_free(&m2);
    pb_model_free(&m);
}

static void test_roundtrip_lm(void **state) {
    (void)state;
    check_roundtrip(PB_HEAD_LM, 0);
}

static void test_roundtrip_cls(void **state) {
    (void)state;
    check_roundtrip(PB_HEAD_CLS, 3);
}

/* The same content gives the same bytes (no timestamps), and an existing file is replaced
 * atomically: a stale PATH.tmp is overwritten and removed by the rename. */
static void test_same_bytes_and_atomic(void **state) {
    (void)state;
    const char *a = tu_tmp_path("same_a.h5"), *b = tu_tmp_path("same_b.h5");
    save_plain(a);
    write_all(tu_tmp_path("same_b.h5.tmp"), "stale", 5);
    save_plain(b);
    assert_int_equal(file_size(tu_tmp_path("same_b.h5.tmp")), -1);
    long na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    assert_int_equal(na, nb);
    assert_int_equal(memcmp(x, y, (size_t)na), 0);
    free(y);
    /* A failing save leaves the old file as it was: make PATH.tmp a directory. */
    char tmpdir[600];
    snprintf(tmpdir, sizeof tmpdir, "%s.tmp", a);
    assert_int_equal(mkdir(tmpdir, 0700), 0);
    pb_model m;
    make_model(&m, PB_HEAD_LM, 0);
    randomize(&m, 77);
    assert_int_not_equal(pb_ckpt_save(a, &m, NULL, NULL), PB_OK);
    assert_non_null(strstr(pb_errmsg(), a));
    pb_model_free(&m);
    rmdir(tmpdir);
    long n2;
    unsigned char *z = read_all(a, &n2);
    assert_int_equal(n2, na);
    assert_int_equal(memcmp(x, z, (size_t)na), 0);
    free(x);
    free(z);
    /* Saving to a directory is refused. */
    make_model(&m, PB_HEAD_LM, 0);
    assert_int_equal(pb_ckpt_save(tu_tmpdir(), &m, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "is a directory"));
    pb_model_free(&m);
}

/* ---- bad files ------------------------------------------------------------------------------- */

static void test_missing_and_directory(void **state) {
    (void)state;
    expect_load_error(tu_tmp_path("does_not_exist.h5"), PB_ENOTFOUND, "No such file", NULL);
    pb_model m;
    assert_int_equal(pb_ckpt_load(tu_tmpdir(), &m, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "is a directory"));
}

static void test_garbage(void **state) {
    (void)state;
    const char *p = tu_tmp_path("garbage.h5");
    unsigned char junk[4096];
    pb_rng r;
    pb_rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)pb_rng_u64(&r);
    write_all(p, junk, sizeof junk);
    expect_load_error(p, PB_EFORMAT, "not an HDF5 file", "peftbench checkpoint", NULL);
    write_all(p, "", 0);
    expect_load_error(p, PB_EFORMAT, "not an HDF5 file", NULL);
    /* A valid HDF5 file that is not a checkpoint. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Fclose(f);
    expect_load_error(p, PB_EFORMAT, "not a peftbench checkpoint", "integrity header", NULL);
}

static void test_truncated(void **state) {
    (void)state;
    const char *good = tu_tmp_path("trunc_src.h5"), *p = tu_tmp_path("trunc.h5");
    save_plain(good);
    long n;
    unsigned char *b = read_all(good, &n);
    long cuts[] = {1, 8, 100, 512, 2048, n / 4, n / 2, 3 * n / 4, n - 4096, n - 100, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] <= 0 || cuts[i] >= n) continue;
        write_all(p, b, (size_t)cuts[i]);
        pb_model m;
        pb_status st = pb_ckpt_load(p, &m, NULL);
        if (st == PB_OK) fail_msg("a file truncated to %ld of %ld bytes was accepted", cuts[i], n);
        assert_int_equal(st, PB_EFORMAT);
        assert_non_null(strstr(pb_errmsg(), p));
        assert_null(m.params);
    }
    free(b);
}

/* Random byte corruption anywhere: never a crash; corruption of the data is caught by the
 * checksum, of the metadata by HDF5 or by the checks. */
static void test_random_corruption(void **state) {
    (void)state;
    const char *good = tu_tmp_path("corrupt_src.h5"), *p = tu_tmp_path("corrupt.h5");
    save_plain(good);
    long n;
    unsigned char *b = read_all(good, &n);
    unsigned char *c = malloc((size_t)n);
    pb_rng r;
    pb_rng_seed(&r, 17);
    int refused = 0, trials = 150;
    for (int t = 0; t < trials; t++) {
        memcpy(c, b, (size_t)n);
        int flips = 1 + (int)pb_rng_below(&r, 4);
        for (int k = 0; k < flips; k++) c[pb_rng_below(&r, (uint64_t)n)] ^= (unsigned char)(1 + pb_rng_below(&r, 255));
        write_all(p, c, (size_t)n);
        pb_model m;
        pb_status st = pb_ckpt_load(p, &m, NULL);
        if (st == PB_OK) pb_model_free(&m);
        else refused++, assert_non_null(strstr(pb_errmsg(), p));
        if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) fail_msg("trial %d left HDF5 objects open (%s)", t, pb_errmsg());
    }
    /* Most of the file is parameter data, so most corruptions must be refused. */
    assert_true(refused > trials / 2);
    /* One flipped bit in the middle of the data: the checksum names it. */
    memcpy(c, b, (size_t)n);
    c[n / 2] ^= 0x01;
    write_all(p, c, (size_t)n);
    expect_load_error(p, PB_EFORMAT, "checksum", "corrupt", NULL);
    free(b);
    free(c);
}

static void set_attr_i64(hid_t loc, const char *name, long long v) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    assert_true(a >= 0);
    int64_t x = v;
    assert_true(H5Awrite(a, H5T_NATIVE_INT64, &x) >= 0);
    H5Aclose(a);
}

static void replace_str_attr(hid_t loc, const char *name, const char *val) {
    assert_true(H5Adelete(loc, name) >= 0);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(val) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, t, val) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void test_wrong_magic_and_version(void **state) {
    (void)state;
    const char *p = tu_tmp_path("version.h5");
    save_plain(p);
    hid_t f = h5_open_rw(p);
    set_attr_i64(f, "format_version", PB_CKPT_VERSION + 1);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "format version 2 is not supported", "reads version 1", "newer", NULL);
    save_plain(p);
    f = h5_open_rw(p);
    replace_str_attr(f, "format", "something-else");
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "not a peftbench checkpoint", "'something-else'", PB_CKPT_MAGIC, NULL);
    pb_ckpt_info info;
    assert_int_equal(pb_ckpt_read_info(p, &info), PB_EFORMAT);
}

/* Replaces dataset /params/<name> with one of another shape or type. */
static void replace_dataset(const char *path, const char *name, hid_t type, int ndim, const hsize_t *dims) {
    hid_t f = h5_open_rw(path);
    hid_t g = H5Gopen2(f, "params", H5P_DEFAULT);
    assert_true(g >= 0);
    if (H5Lexists(g, name, H5P_DEFAULT) > 0) assert_true(H5Ldelete(g, name, H5P_DEFAULT) >= 0);
    if (ndim > 0) {
        hid_t sp = H5Screate_simple(ndim, dims, NULL);
        hid_t d = H5Dcreate2(g, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0);
        size_t n = 1;
        for (int i = 0; i < ndim; i++) n *= dims[i];
        double *zero = calloc(n, sizeof(double));
        assert_true(H5Dwrite(d, type == H5T_STD_I32LE ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                             H5P_DEFAULT, zero) >= 0);
        free(zero);
        H5Dclose(d);
        H5Sclose(sp);
    }
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(path), PB_OK); /* edited on purpose: reach the semantic checks */
}

static void test_wrong_tensors(void **state) {
    (void)state;
    const char *p = tu_tmp_path("tensors.h5");
    /* tiny: d_model 32, so attn.q_proj.weight is (32, 32). */
    save_plain(p);
    hsize_t d34[2] = {3, 4};
    replace_dataset(p, "h.0.attn.q_proj.weight", H5T_IEEE_F32LE, 2, d34);
    expect_load_error(p, PB_EFORMAT, "'/params/h.0.attn.q_proj.weight' has shape (3, 4)", "implies (32, 32)", NULL);
    save_plain(p);
    hsize_t d32[1] = {32};
    replace_dataset(p, "h.1.ln_2.bias", H5T_IEEE_F64LE, 1, d32);
    expect_load_error(p, PB_EFORMAT, "h.1.ln_2.bias", "8 bytes", "expected float32", NULL);
    save_plain(p);
    replace_dataset(p, "h.1.ln_2.bias", H5T_STD_I32LE, 1, d32);
    expect_load_error(p, PB_EFORMAT, "h.1.ln_2.bias", "integer", "expected float32", NULL);
    save_plain(p);
    replace_dataset(p, "wpe.weight", 0, 0, NULL);
    expect_load_error(p, PB_EFORMAT, "tensor '/params/wpe.weight' is missing", "float32 (64, 32)", NULL);
    save_plain(p);
    replace_dataset(p, "score.weight", H5T_IEEE_F32LE, 2, d34);
    expect_load_error(p, PB_EFORMAT, "unexpected entry '/params/score.weight'", "CHECKPOINT.md", NULL);
}

static void test_bad_attributes(void **state) {
    (void)state;
    const char *p = tu_tmp_path("attrs.h5");
    save_plain(p);
    hid_t f = h5_open_rw(p);
    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    assert_true(H5Adelete(g, "d_model") >= 0);
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "attribute 'd_model' of /model is missing", NULL);

    save_plain(p);
    f = h5_open_rw(p);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    replace_str_attr(g, "ffn", "swiglu");
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "not runnable", "GELU", NULL);

    save_plain(p);
    f = h5_open_rw(p);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    replace_str_attr(g, "norm", "batchnorm");
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "'norm' of /model is 'batchnorm'", "accepted: layernorm, rmsnorm", NULL);

    save_plain(p);
    f = h5_open_rw(p);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    set_attr_i64(g, "n_layer", 1000000);
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "'n_layer' of /model is 1000000", "accepted: 1 to 4096", NULL);

    save_plain(p);
    f = h5_open_rw(p);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    set_attr_i64(g, "n_layer", 3); /* plausible, but the file holds 2 layers */
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "tensor '/params/h.2.ln_1.weight' is missing", NULL);

    save_plain(p);
    f = h5_open_rw(p);
    g = H5Gopen2(f, "tokenizer", H5P_DEFAULT);
    replace_str_attr(g, "kind", "wordpiece");
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "tokenizer kind 'wordpiece'", "'byte' and 'bpe'", NULL);

    save_plain(p); /* a BPE tokenizer needs its merge count (and merges: test_bpe.c) */
    f = h5_open_rw(p);
    g = H5Gopen2(f, "tokenizer", H5P_DEFAULT);
    replace_str_attr(g, "kind", "bpe");
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK);
    expect_load_error(p, PB_EFORMAT, "'n_merges' of /tokenizer is missing", NULL);

    /* Attribute of the wrong class. */
    save_plain(p);
    f = h5_open_rw(p);
    g = H5Gopen2(f, "model", H5P_DEFAULT);
    replace_str_attr(g, "vocab", "262");
    H5Gclose(g);
    H5Fclose(f);
    assert_int_equal(pb_ckpt_reseal(p), PB_OK); /* edited on purpose: reach the semantic checks */
    expect_load_error(p, PB_EFORMAT, "'vocab' of /model is string; expected an integer", NULL);

    /* A finished checkpoint (no moments) cannot give a training state to resume. */
    save_plain(p);
    pb_model m;
    assert_int_equal(pb_ckpt_load(p, &m, NULL), PB_OK);
    pb_adamw opt;
    int nseg = pb_model_segments(&m, NULL);
    pb_segment *seg = malloc(sizeof *seg * (size_t)nseg);
    pb_model_segments(&m, seg);
    pb_adamw_config dc = pb_adamw_defaults();
    assert_int_equal(pb_adamw_init(&opt, &dc, seg, nseg), PB_OK);
    free(seg);
    pb_ckpt_train tr;
    float *losses;
    assert_int_equal(pb_ckpt_load_train(p, &m, &opt, &tr, &losses), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "no resumable training state"));
    assert_null(losses);
    pb_adamw_free(&opt);
    pb_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_lm),
        cmocka_unit_test(test_roundtrip_cls),
        cmocka_unit_test(test_same_bytes_and_atomic),
        cmocka_unit_test(test_missing_and_directory),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_wrong_magic_and_version),
        cmocka_unit_test(test_wrong_tensors),
        cmocka_unit_test(test_bad_attributes),
    };
    if (getenv("PB_TEST_FILTER")) cmocka_set_test_filter(getenv("PB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
