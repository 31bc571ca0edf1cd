/* results.c — the results store (see results.h; the layout is in results/SCHEMA.md).
 *
 * The /runs table's field list is one X-macro (RUN_FIELDS): the memory compound type, the file
 * compound type (packed, little-endian standard types) and the schema check on read all come
 * from it, so a field cannot be written and forgotten on read. Every HDF5 call is checked;
 * HDF5's own error printing is switched off, failures become one message naming the file.
 */
#include "pb_fs.h"
#include "pb_h5.h"
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pb_gitinfo.h"

/* ---- rows ------------------------------------------------------------------------------------ */

const char *pb_cell_status_name(pb_cell_status s) {
    switch (s) {
    case PB_CELL_OK: return "ok";
    case PB_CELL_DIVERGED: return "diverged";
    case PB_CELL_FAILED: return "failed";
    }
    return "?";
}

void pb_res_init(pb_res *r) { memset(r, 0, sizeof *r); }

void pb_res_row_init(pb_res_row *w) {
    memset(w, 0, sizeof *w);
    w->lr = w->weight_decay = w->warmup_frac = w->clip = NAN;
    w->trainable_pct = NAN;
    w->flops_fwd = w->flops_bwd_in = w->flops_bwd_w = w->flops_train = NAN;
    w->infer_flops = w->infer_flops_merged = NAN;
    w->wall_seconds = w->train_seconds = w->train_tok_per_s = w->infer_tok_per_s = w->cpu_seconds = NAN;
    w->dev_metric = w->test_metric = NAN;
    for (int i = 0; i < PB_RES_MAX_METRICS; i++) w->dev_all[i] = w->test_all[i] = NAN;
    w->heldout_bpb_before = w->heldout_bpb_after = w->forgetting = NAN;
}

void pb_res_row_free(pb_res_row *w) {
    free(w->eval_step);
    free(w->eval_train_loss);
    free(w->eval_dev);
    free(w->eval_test);
    free(w->loss);
    free(w->ex);
    w->eval_step = NULL;
    w->eval_train_loss = w->eval_dev = w->eval_test = w->loss = NULL;
    w->ex = NULL;
    w->n_evals = w->n_loss = 0;
    w->n_ex = 0;
}

void pb_res_free(pb_res *r) {
    for (size_t i = 0; i < r->n; i++) pb_res_row_free(&r->rows[i]);
    free(r->rows);
    free(r->index);
    memset(r, 0, sizeof *r);
}

/* Keys are hashes already: their first 16 hex digits are a good table hash. */
static size_t key_hash(const char *key) { return (size_t)strtoull(key, NULL, 16) ^ (size_t)(strlen(key) * 0x9e37u); }

long pb_res_find(const pb_res *r, const char *key) {
    if (!r->n_index) return -1;
    for (size_t h = key_hash(key) & (r->n_index - 1);; h = (h + 1) & (r->n_index - 1)) {
        long i = r->index[h];
        if (i < 0) return -1;
        if (!strcmp(r->rows[i].key, key)) return i;
    }
}

static void index_insert(pb_res *r, size_t i) {
    size_t h = key_hash(r->rows[i].key) & (r->n_index - 1);
    while (r->index[h] >= 0) h = (h + 1) & (r->n_index - 1);
    r->index[h] = (long)i;
}

/* Makes room in the index for n rows (rebuilding it when it grows). */
static int index_reserve(pb_res *r, size_t n) {
    if (r->n_index > 2 * n) return 1;
    size_t m = 64;
    while (m <= 2 * n) m *= 2;
    long *p = malloc(sizeof *p * m);
    if (!p) return 0;
    free(r->index);
    r->index = p;
    r->n_index = m;
    for (size_t i = 0; i < m; i++) p[i] = -1;
    for (size_t i = 0; i < r->n; i++) index_insert(r, i);
    return 1;
}

size_t pb_res_keep(pb_res *r, int (*keep)(const pb_res_row *row, void *ctx), void *ctx) {
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (keep(&r->rows[i], ctx)) r->rows[n++] = r->rows[i];
        else pb_res_row_free(&r->rows[i]);
    }
    size_t dropped = r->n - n;
    r->n = n;
    if (dropped && r->n_index) {
        for (size_t h = 0; h < r->n_index; h++) r->index[h] = -1;
        for (size_t i = 0; i < r->n; i++) index_insert(r, i);
    }
    return dropped;
}

static int valid_key(const char *k) {
    for (int i = 0; i < PB_RES_KEY - 1; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f'))) return 0;
    return k[PB_RES_KEY - 1] == '\0';
}

static int valid_status(const char *s) { return !strcmp(s, "ok") || !strcmp(s, "diverged") || !strcmp(s, "failed"); }

/* Copies n elements of size sz (NULL when n == 0); returns 0 on allocation failure. */
static int dup_array(void **dst, const void *src, int64_t n, size_t sz) {
    *dst = NULL;
    if (n <= 0) return 1;
    if (!src) return 0;
    *dst = malloc((size_t)n * sz);
    if (!*dst) return 0;
    memcpy(*dst, src, (size_t)n * sz);
    return 1;
}

static pb_status copy_row(pb_res_row *dst, const pb_res_row *src) {
    *dst = *src;
    dst->eval_step = NULL;
    dst->eval_train_loss = dst->eval_dev = dst->eval_test = dst->loss = NULL;
    dst->ex = NULL;
    if (src->n_evals < 0 || src->n_loss < 0 || src->n_ex < 0 || src->ex_width < 0 || (src->n_ex > 0 && !src->ex_width))
        return pb_errorf(PB_EINVAL, "cell %s: negative curve or record length", src->key);
    int ok = dup_array((void **)&dst->eval_step, src->eval_step, src->n_evals, sizeof(int32_t)) &&
             dup_array((void **)&dst->eval_train_loss, src->eval_train_loss, src->n_evals, sizeof(float)) &&
             dup_array((void **)&dst->eval_dev, src->eval_dev, src->n_evals, sizeof(float)) &&
             dup_array((void **)&dst->eval_test, src->eval_test, src->n_evals, sizeof(float)) &&
             dup_array((void **)&dst->loss, src->loss, src->n_loss, sizeof(float)) &&
             dup_array((void **)&dst->ex, src->ex, src->n_ex * src->ex_width, sizeof(float));
    if (!ok) {
        pb_res_row_free(dst);
        return pb_errorf(PB_ENOMEM, "out of memory copying the curves of cell %s", src->key);
    }
    return PB_OK;
}

pb_status pb_res_put(pb_res *r, const pb_res_row *row) {
    if (!valid_key(row->key)) return pb_errorf(PB_EINVAL, "cell key '%.20s' is not 16 lowercase hex digits", row->key);
    if (!valid_status(row->status))
        return pb_errorf(PB_EINVAL, "cell %s: status '%.20s' (expected ok, diverged or failed)", row->key, row->status);
    pb_res_row tmp;
    pb_status st = copy_row(&tmp, row);
    if (st) return st;
    long i = pb_res_find(r, row->key);
    if (i >= 0) {
        pb_res_row_free(&r->rows[i]);
        r->rows[i] = tmp;
        return PB_OK;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        pb_res_row *p = realloc(r->rows, sizeof *p * cap);
        if (!p) {
            pb_res_row_free(&tmp);
            return pb_errorf(PB_ENOMEM, "out of memory (%zu result rows)", cap);
        }
        r->rows = p;
        r->cap = cap;
    }
    if (!index_reserve(r, r->n + 1)) {
        pb_res_row_free(&tmp);
        return pb_errorf(PB_ENOMEM, "out of memory (%zu result rows)", r->n + 1);
    }
    r->rows[r->n] = tmp;
    index_insert(r, r->n++);
    return PB_OK;
}

void pb_res_key(const char *config, char key[PB_RES_KEY]) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)config; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    snprintf(key, PB_RES_KEY, "%016llx", (unsigned long long)h);
}

/* ---- the crash test hook ---------------------------------------------------------------------- */

void pb_res_crash_point(const char *stage) {
    /* The variable is read at every call (a forked child may set its own); the count restarts
     * whenever the value changes. */
    static char seen[128];
    static int count;
    const char *e = getenv("PEFTBENCH_CRASH");
    if (!e || !*e) return;
    if (strncmp(seen, e, sizeof seen - 1) != 0) {
        snprintf(seen, sizeof seen, "%s", e);
        count = 0;
    }
    const char *colon = strrchr(e, ':');
    if (!colon || (size_t)(colon - e) != strlen(stage) || strncmp(e, stage, strlen(stage)) != 0) return;
    int target = atoi(colon + 1);
    if (target > 0 && ++count == target) {
        fprintf(stderr, "peftbench: PEFTBENCH_CRASH=%s: killing myself at %s (test hook)\n", e, stage);
        raise(SIGKILL);
    }
}

/* ---- the /runs fields --------------------------------------------------------------------------
 * X(kind, member, count): kind STR (fixed string of sizeof member), I32, I64, U64, F64, F64A
 * (array of count doubles). The memory type is the struct; the file type packs the same fields
 * in this order. mem_peak is expanded into one field per category (mem_frozen, ...). */
#define RUN_FIELDS(X)                                                                              \
    X(STR, key, 1) X(STR, config, 1) X(STR, status, 1) X(STR, message, 1) X(STR, sweep, 1)         \
    X(STR, backbone, 1)                                                                            \
    X(STR, backbone_name, 1) X(STR, method, 1) X(STR, method_name, 1) X(STR, method_label, 1)      \
    X(STR, category, 1) X(STR, task, 1) X(STR, task_name, 1) X(STR, task_kind, 1)                  \
    X(U64, seed, 1) X(I32, steps, 1) X(I32, batch, 1) X(I32, max_len, 1) X(I32, eval_every, 1)     \
    X(I32, eval_max, 1) X(I32, gen_max, 1) X(F64, lr, 1) X(F64, weight_decay, 1)                   \
    X(F64, warmup_frac, 1) X(F64, clip, 1) X(STR, schedule, 1)                                     \
    X(U64, trainable, 1) X(U64, total, 1) X(F64, trainable_pct, 1) X(U64, adapter_bytes, 1)        \
    X(F64, flops_fwd, 1) X(F64, flops_bwd_in, 1) X(F64, flops_bwd_w, 1) X(F64, flops_train, 1)     \
    X(F64, infer_flops, 1) X(F64, infer_flops_merged, 1)                                           \
    X(MEM, mem_peak, PB_MEM_NCAT) X(U64, mem_peak_total, 1) X(U64, peak_rss, 1)                    \
    X(F64, wall_seconds, 1) X(F64, train_seconds, 1) X(I64, train_tokens, 1)                       \
    X(F64, train_tok_per_s, 1) X(F64, infer_tok_per_s, 1)                                          \
    X(STR, metrics, 1) X(STR, select_metric, 1) X(I32, higher_is_better, 1) X(I32, n_metrics, 1)   \
    X(F64, dev_metric, 1) X(F64, test_metric, 1) X(I32, best_step, 1)                              \
    X(F64A, dev_all, PB_RES_MAX_METRICS) X(F64A, test_all, PB_RES_MAX_METRICS)                     \
    X(U64, n_truncated, 1) X(STR, forgetting_corpus, 1) X(F64, heldout_bpb_before, 1)              \
    X(F64, heldout_bpb_after, 1) X(F64, forgetting, 1)                                             \
    X(STR, git_commit, 1) X(STR, compiler, 1) X(STR, blas, 1) X(STR, host, 1) X(STR, date, 1)      \
    X(STR, version, 1) X(I32, threads, 1) X(I32, jobs, 1) X(CURVE, eval, 1) X(CURVE, loss, 1)      \
    X(I32, setup_steps, 1) X(I32, ex_width, 1) X(CURVE, ex, 1) X(F64, cpu_seconds, 1)                  \
    X(I32, group_by_length, 1)

/* Fields that version 1 files do not have (read as 0). */
static const char *const g_v2_fields[] = {"setup_steps", "ex_width", "ex_offset", "ex_count", "cpu_seconds",
                                         "group_by_length", NULL};

/* In memory a row is pb_res_row plus the curve offsets the file stores. */
typedef struct {
    pb_res_row r;
    uint64_t eval_offset, eval_count, loss_offset, loss_count;
    uint64_t ex_offset, ex_count; /* into /examples/records: floats, and examples (x ex_width floats) */
} io_row;

typedef struct {
    hid_t mem, file; /* compound types */
    hid_t to_close[64];
    int n_close;
} run_types;

static void types_close(run_types *t) {
    if (t->mem >= 0) H5Tclose(t->mem);
    if (t->file >= 0) H5Tclose(t->file);
    for (int i = 0; i < t->n_close; i++) H5Tclose(t->to_close[i]);
    t->mem = t->file = -1;
    t->n_close = 0;
}

/* Inserts one field into the memory type (at offset) and the file type (packed at *foff). */
static int add_field(run_types *t, size_t *foff, const char *name, size_t moff, hid_t mtype, hid_t ftype) {
    if (H5Tinsert(t->mem, name, moff, mtype) < 0) return 0;
    size_t fsz = H5Tget_size(ftype);
    if (fsz == 0 || H5Tinsert(t->file, name, *foff, ftype) < 0) return 0;
    *foff += fsz;
    return 1;
}

static hid_t keep(run_types *t, hid_t id) {
    if (id >= 0 && t->n_close < (int)(sizeof t->to_close / sizeof t->to_close[0])) t->to_close[t->n_close++] = id;
    else if (id >= 0) H5Tclose(id), id = -1;
    return id;
}

/* Builds the memory and (packed) file compound types of /runs. */
static int make_types(run_types *t) {
    t->n_close = 0;
    t->mem = H5Tcreate(H5T_COMPOUND, sizeof(io_row));
    /* the file type is created large and shrunk to the packed size at the end */
    t->file = H5Tcreate(H5T_COMPOUND, sizeof(io_row) + 1024);
    if (t->mem < 0 || t->file < 0) return 0;
    size_t foff = 0;
    int ok = 1;
    hsize_t nmet = PB_RES_MAX_METRICS;
    hid_t arr_m = keep(t, H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &nmet));
    hid_t arr_f = keep(t, H5Tarray_create2(H5T_IEEE_F64LE, 1, &nmet));
    if (arr_m < 0 || arr_f < 0) return 0;
#define MOFF(member) (offsetof(io_row, r) + offsetof(pb_res_row, member))
#define FIELD_STR(member, n)                                                                         \
    if (ok) {                                                                                        \
        hid_t s = keep(t, H5Tcopy(H5T_C_S1));                                                        \
        ok = s >= 0 && H5Tset_size(s, sizeof(((pb_res_row *)0)->member)) >= 0 &&                    \
             H5Tset_strpad(s, H5T_STR_NULLTERM) >= 0 && add_field(t, &foff, #member, MOFF(member), s, s); \
    }
#define FIELD_I32(member, n) \
    if (ok) ok = add_field(t, &foff, #member, MOFF(member), H5T_NATIVE_INT32, H5T_STD_I32LE);
#define FIELD_I64(member, n) \
    if (ok) ok = add_field(t, &foff, #member, MOFF(member), H5T_NATIVE_INT64, H5T_STD_I64LE);
#define FIELD_U64(member, n) \
    if (ok) ok = add_field(t, &foff, #member, MOFF(member), H5T_NATIVE_UINT64, H5T_STD_U64LE);
#define FIELD_F64(member, n) \
    if (ok) ok = add_field(t, &foff, #member, MOFF(member), H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE);
#define FIELD_F64A(member, n) \
    if (ok) ok = add_field(t, &foff, #member, MOFF(member), arr_m, arr_f);
#define FIELD_MEM(member, n)                                                                          \
    for (int c = 0; c < PB_MEM_NCAT && ok; c++) {                                                     \
        char nm[48];                                                                                  \
        snprintf(nm, sizeof nm, "mem_%s", pb_mem_cat_key((pb_mem_cat)c));                             \
        ok = add_field(t, &foff, nm, MOFF(member) + (size_t)c * sizeof(uint64_t), H5T_NATIVE_UINT64,  \
                       H5T_STD_U64LE);                                                                \
    }
#define FIELD_CURVE(member, n)                                                                        \
    if (ok) ok = add_field(t, &foff, #member "_offset", offsetof(io_row, member##_offset), H5T_NATIVE_UINT64, \
                           H5T_STD_U64LE) &&                                                          \
                 add_field(t, &foff, #member "_count", offsetof(io_row, member##_count), H5T_NATIVE_UINT64, \
                           H5T_STD_U64LE);
#define FIELD(kind, member, n) FIELD_##kind(member, n)
    RUN_FIELDS(FIELD)
#undef FIELD
    if (!ok) return 0;
    return H5Tset_size(t->file, foff) >= 0;
}

/* ---- HDF5 helpers --------------------------------------------------------------------------- */

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct {
    const char *path;
    pb_status st;
} wctx;

static void wfail(wctx *w, const char *what) {
    if (!w->st) w->st = pb_errorf(PB_EHDF5, "%s: writing %s failed (HDF5 error; disk full?)", w->path, what);
}

static void put_str_attr(wctx *w, hid_t loc, const char *name, const char *val) {
    if (w->st) return;
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a = -1;
    if (t >= 0 && sp >= 0 && H5Tset_size(t, strlen(val) + 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0)
        a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, val) < 0) wfail(w, name);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
}

static void put_i64_attr(wctx *w, hid_t loc, const char *name, long long v) {
    if (w->st) return;
    int64_t x = v;
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    if (sp >= 0) a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &x) < 0) wfail(w, name);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
}

/* A 1-D chunked, extendible dataset of n elements (n may be 0), written from data. */
static void put_1d(wctx *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *data, hsize_t n,
                   hsize_t chunk, hid_t base_dcpl) {
    if (w->st) return;
    hsize_t maxd = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(1, &n, &maxd);
    hid_t dcpl = H5Pcopy(base_dcpl);
    hid_t d = -1;
    if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &chunk) >= 0)
        d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || (n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)) wfail(w, name);
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
}

/* ---- writing --------------------------------------------------------------------------------- */

pb_status pb_res_write(const char *path, const pb_res *r) {
    quiet_hdf5();
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return pb_errorf(PB_EINVAL, "%s: is a directory; give a file name for the results (e.g. %s/results.h5)", path,
                         path);
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return pb_errorf(PB_EINVAL, "%s: path too long", path);

    /* Rows with their curve offsets, and the concatenated curves. */
    size_t n = r->n, n_eval = 0, n_loss = 0, n_rec = 0;
    for (size_t i = 0; i < n; i++) {
        n_eval += (size_t)r->rows[i].n_evals;
        n_loss += (size_t)r->rows[i].n_loss;
        n_rec += (size_t)r->rows[i].n_ex * (size_t)r->rows[i].ex_width;
    }
    io_row *rows = calloc(n ? n : 1, sizeof *rows);
    int32_t *e_step = malloc(sizeof(int32_t) * (n_eval ? n_eval : 1));
    float *e_tl = malloc(sizeof(float) * (n_eval ? n_eval : 1)), *e_dev = malloc(sizeof(float) * (n_eval ? n_eval : 1));
    float *e_test = malloc(sizeof(float) * (n_eval ? n_eval : 1)), *loss = malloc(sizeof(float) * (n_loss ? n_loss : 1));
    float *rec = malloc(sizeof(float) * (n_rec ? n_rec : 1));
    if (!rows || !e_step || !e_tl || !e_dev || !e_test || !loss || !rec) {
        free(rows), free(e_step), free(e_tl), free(e_dev), free(e_test), free(loss), free(rec);
        return pb_errorf(PB_ENOMEM, "%s: out of memory writing %zu rows", path, n);
    }
    size_t oe = 0, ol = 0, orc = 0;
    for (size_t i = 0; i < n; i++) {
        const pb_res_row *s = &r->rows[i];
        rows[i].r = *s;
        rows[i].eval_offset = oe;
        rows[i].eval_count = (uint64_t)s->n_evals;
        rows[i].loss_offset = ol;
        rows[i].loss_count = (uint64_t)s->n_loss;
        for (int k = 0; k < s->n_evals; k++, oe++) {
            e_step[oe] = s->eval_step[k];
            e_tl[oe] = s->eval_train_loss[k];
            e_dev[oe] = s->eval_dev[k];
            e_test[oe] = s->eval_test[k];
        }
        if (s->n_loss) memcpy(loss + ol, s->loss, sizeof(float) * (size_t)s->n_loss);
        ol += (size_t)s->n_loss;
        size_t nr = (size_t)s->n_ex * (size_t)s->ex_width;
        rows[i].ex_offset = orc;
        rows[i].ex_count = (uint64_t)s->n_ex;
        if (nr) memcpy(rec + orc, s->ex, sizeof(float) * nr);
        orc += nr;
    }

    wctx w = {path, PB_OK};
    run_types ty = {-1, -1, {0}, 0};
    hid_t f = pb_h5_create_mem(H5P_DEFAULT); /* written to tmp by us at the end (core/pb_h5.h) */
    if (f < 0) {
        free(rows), free(e_step), free(e_tl), free(e_dev), free(e_test), free(loss), free(rec);
        return pb_errorf(PB_EHDF5, "%s: HDF5 cannot create a file in memory", path);
    }
    pb_res_crash_point("tmp-created");
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (gcpl < 0 || dcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0)
        wfail(&w, "property lists");
    if (!w.st && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Pset_deflate(dcpl, 4) < 0) wfail(&w, "deflate filter");
    if (!w.st && !make_types(&ty)) wfail(&w, "the /runs compound type");

    put_str_attr(&w, f, "format", PB_RES_MAGIC);
    put_i64_attr(&w, f, "format_version", PB_RES_VERSION);
    put_str_attr(&w, f, "peftbench_version", PB_VERSION);
    put_str_attr(&w, f, "git_commit", PB_GIT_COMMIT);
    put_i64_attr(&w, f, "n_runs", (long long)n);
    put_1d(&w, f, "runs", ty.file, ty.mem, rows, n, 64, dcpl);
    hid_t g = w.st ? -1 : H5Gcreate2(f, "curves", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (!w.st && g < 0) wfail(&w, "group /curves");
    if (g >= 0) {
        put_1d(&w, g, "eval_step", H5T_STD_I32LE, H5T_NATIVE_INT32, e_step, n_eval, 1024, dcpl);
        put_1d(&w, g, "eval_train_loss", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, e_tl, n_eval, 1024, dcpl);
        put_1d(&w, g, "eval_dev", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, e_dev, n_eval, 1024, dcpl);
        put_1d(&w, g, "eval_test", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, e_test, n_eval, 1024, dcpl);
        put_1d(&w, g, "loss", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, loss, n_loss, 4096, dcpl);
        H5Gclose(g);
    }
    g = w.st ? -1 : H5Gcreate2(f, "examples", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (!w.st && g < 0) wfail(&w, "group /examples");
    if (g >= 0) {
        put_1d(&w, g, "records", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rec, n_rec, 16384, dcpl);
        H5Gclose(g);
    }
    types_close(&ty);
    if (gcpl >= 0) H5Pclose(gcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    free(rows), free(e_step), free(e_tl), free(e_dev), free(e_test), free(loss), free(rec);
    if (w.st) H5Fclose(f);
    else w.st = pb_h5_close_to_file(f, tmp);
    if (!w.st) pb_res_crash_point("tmp-written");
    if (!w.st) w.st = pb_fsync_path(tmp, 0);
    if (!w.st) pb_res_crash_point("tmp-synced");
    if (w.st) {
        unlink(tmp);
        return w.st;
    }
    if ((w.st = pb_rename_durable(tmp, path))) return w.st;
    pb_res_crash_point("renamed");
    return PB_OK;
}

/* ---- reading --------------------------------------------------------------------------------- */

static pb_status bad(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static pb_status bad(const char *path, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pb_errorf(PB_EFORMAT, "%s: %s", path, msg);
}

/* 1 if attribute a holds exactly one value: H5Aread copies every element, so an array where
 * one value belongs would overflow the buffer (found by tests/fuzz/fuzz_results.c). */
static int one_value(hid_t a) {
    hid_t sp = H5Aget_space(a);
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1;
    if (sp >= 0) H5Sclose(sp);
    return ok;
}

/* Reads a string attribute (fixed or variable length) into buf; 0 if absent or not a string. */
static int get_str_attr(hid_t loc, const char *name, char *buf, size_t cap) {
    buf[0] = '\0';
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    int ok = 0;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING && one_value(a)) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(buf, cap, "%s", s);
                H5free_memory(s);
                ok = 1;
            }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *s = calloc(1, sz + 1);
            if (s && H5Aread(a, t, s) >= 0) {
                snprintf(buf, cap, "%s", s);
                ok = 1;
            }
            free(s);
        }
    }
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    return ok;
}

static int get_i64_attr(hid_t loc, const char *name, long long *v) {
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return 0;
    hid_t t = H5Aget_type(a);
    int64_t x = 0;
    int ok = t >= 0 && H5Tget_class(t) == H5T_INTEGER && one_value(a) && H5Aread(a, H5T_NATIVE_INT64, &x) >= 0;
    if (t >= 0) H5Tclose(t);
    H5Aclose(a);
    *v = x;
    return ok;
}

/* Reads a whole 1-D dataset of `want` elements into a malloc'd array of mtype. */
static pb_status read_1d(const char *path, hid_t loc, const char *dset, hid_t mtype, size_t elsz, size_t want,
                         void **out) {
    *out = NULL;
    const char *name = strrchr(dset, '/') ? strrchr(dset, '/') + 1 : dset; /* dset: "/curves/loss" */
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return bad(path, "dataset '%s' is missing (damaged file?)", dset);
    hid_t sp = H5Dget_space(d);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims = 0;
    if (nd == 1) H5Sget_simple_extent_dims(sp, &dims, NULL);
    if (sp >= 0) H5Sclose(sp);
    if (nd != 1 || dims != want) {
        H5Dclose(d);
        return bad(path, "dataset '%s' has %llu elements; the rows of /runs point to %zu (damaged file?)", dset,
                   (unsigned long long)dims, want);
    }
    void *buf = malloc(elsz * (want ? want : 1));
    if (!buf) {
        H5Dclose(d);
        return pb_errorf(PB_ENOMEM, "%s: out of memory reading %s", path, dset);
    }
    if (want && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        H5Dclose(d);
        return bad(path, "reading '%s' failed (file truncated or corrupt)", dset);
    }
    H5Dclose(d);
    *out = buf;
    return PB_OK;
}

pb_status pb_res_read(const char *path, pb_res *out) {
    quiet_hdf5();
    struct stat sb;
    if (stat(path, &sb) != 0) return pb_errorf(PB_ENOTFOUND, "%s: no such file", path);
    if (S_ISDIR(sb.st_mode)) return pb_errorf(PB_EINVAL, "%s: is a directory (expected a results .h5 file)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return bad(path, "not an HDF5 file, or damaged (expected a results file written by `peftbench sweep` or "
                         "`peftbench merge`)");
    pb_status st = PB_OK;
    run_types ty = {-1, -1, {0}, 0};
    hid_t d = -1, ft = -1, sp = -1, g = -1;
    io_row *rows = NULL;
    int32_t *e_step = NULL;
    float *e_tl = NULL, *e_dev = NULL, *e_test = NULL, *loss = NULL, *rec = NULL;
    char magic[64];
    long long ver = 0;
    if (!get_str_attr(f, "format", magic, sizeof magic) || strcmp(magic, PB_RES_MAGIC) != 0) {
        st = bad(path, "not a peftbench results file (root attribute 'format' is '%s', expected '%s')%s", magic,
                 PB_RES_MAGIC, !strcmp(magic, "peftbench-checkpoint") ? "; this is a model checkpoint" : "");
        goto out;
    }
    if (!get_i64_attr(f, "format_version", &ver) || ver < 1 || ver > PB_RES_VERSION) {
        st = bad(path, "results schema version %lld; this build reads versions 1 to %d (use the peftbench that wrote "
                       "it, or re-run the sweep into a new file)",
                 ver, PB_RES_VERSION);
        goto out;
    }
    if (!make_types(&ty)) {
        st = pb_errorf(PB_EHDF5, "%s: cannot build the /runs type (HDF5 error)", path);
        goto out;
    }
    if ((d = H5Dopen2(f, "runs", H5P_DEFAULT)) < 0) {
        st = bad(path, "dataset '/runs' is missing (damaged file?)");
        goto out;
    }
    ft = H5Dget_type(d);
    if (ft < 0 || H5Tget_class(ft) != H5T_COMPOUND) {
        st = bad(path, "'/runs' is not a compound table");
        goto out;
    }
    int nm = H5Tget_nmembers(ty.mem);
    for (int i = 0; i < nm; i++) {
        char *name = H5Tget_member_name(ty.mem, (unsigned)i);
        int idx = name ? H5Tget_member_index(ft, name) : -1;
        int v2 = 0;
        for (int k = 0; name && g_v2_fields[k]; k++) v2 |= !strcmp(name, g_v2_fields[k]);
        if (idx < 0 && !(ver == 1 && v2)) st = bad(path, "field '%s' of /runs is missing (damaged file?)", name ? name : "?");
        if (name) H5free_memory(name);
        if (st) goto out;
    }
    sp = H5Dget_space(d);
    hsize_t n = 0;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &n, NULL) < 0) {
        st = bad(path, "'/runs' is not one-dimensional");
        goto out;
    }
    rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        st = pb_errorf(PB_ENOMEM, "%s: out of memory for %llu rows", path, (unsigned long long)n);
        goto out;
    }
    if (n && H5Dread(d, ty.mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        st = bad(path, "reading '/runs' failed (file truncated or corrupt)");
        goto out;
    }
    size_t n_eval = 0, n_loss = 0, n_rec = 0;
    for (hsize_t i = 0; i < n; i++) {
        io_row *x = &rows[i];
        x->r.eval_step = NULL;
        x->r.eval_train_loss = x->r.eval_dev = x->r.eval_test = x->r.loss = NULL;
        x->r.ex = NULL;
        /* fixed strings are NUL-padded by HDF5; make sure of the terminator anyway */
#define TERM(kind, member, cnt) TERM_##kind(member)
#define TERM_STR(member) x->r.member[sizeof x->r.member - 1] = '\0';
#define TERM_I32(member)
#define TERM_I64(member)
#define TERM_U64(member)
#define TERM_F64(member)
#define TERM_F64A(member)
#define TERM_MEM(member)
#define TERM_CURVE(member)
        RUN_FIELDS(TERM)
        if (x->eval_count > INT32_MAX || x->loss_count > INT32_MAX || x->eval_offset != n_eval ||
            x->loss_offset != n_loss) {
            st = bad(path, "row %llu of /runs has inconsistent curve offsets (damaged file?)", (unsigned long long)i);
            goto out;
        }
        if (x->r.ex_width < 0 || x->r.ex_width > 65536 || x->ex_count > ((uint64_t)1 << 40) || x->ex_offset != n_rec ||
            (x->ex_count && !x->r.ex_width) || n_rec > ((uint64_t)1 << 60)) {
            st = bad(path,
                     "row %llu of /runs has inconsistent test-record offsets: ex_offset %llu, ex_count %llu, ex_width %d; "
                     "expected ex_offset %zu (where the previous rows' records end), ex_width 0 to 65536 and not 0 "
                     "when ex_count is not (damaged file?)",
                     (unsigned long long)i, (unsigned long long)x->ex_offset, (unsigned long long)x->ex_count,
                     (int)x->r.ex_width, n_rec);
            goto out;
        }
        n_eval += x->eval_count;
        n_loss += x->loss_count;
        n_rec += x->ex_count * (uint64_t)x->r.ex_width;
        x->r.n_evals = (int32_t)x->eval_count;
        x->r.n_loss = (int32_t)x->loss_count;
        x->r.n_ex = (int64_t)x->ex_count;
    }
    if ((g = H5Gopen2(f, "curves", H5P_DEFAULT)) < 0) {
        st = bad(path, "group '/curves' is missing (damaged file?)");
        goto out;
    }
    if ((st = read_1d(path, g, "/curves/eval_step", H5T_NATIVE_INT32, sizeof(int32_t), n_eval, (void **)&e_step)) ||
        (st = read_1d(path, g, "/curves/eval_train_loss", H5T_NATIVE_FLOAT, sizeof(float), n_eval, (void **)&e_tl)) ||
        (st = read_1d(path, g, "/curves/eval_dev", H5T_NATIVE_FLOAT, sizeof(float), n_eval, (void **)&e_dev)) ||
        (st = read_1d(path, g, "/curves/eval_test", H5T_NATIVE_FLOAT, sizeof(float), n_eval, (void **)&e_test)) ||
        (st = read_1d(path, g, "/curves/loss", H5T_NATIVE_FLOAT, sizeof(float), n_loss, (void **)&loss)))
        goto out;
    H5Gclose(g);
    g = -1;
    if (ver >= 2) {
        if ((g = H5Gopen2(f, "examples", H5P_DEFAULT)) < 0) {
            st = bad(path, "group '/examples' is missing (damaged file?)");
            goto out;
        }
        if ((st = read_1d(path, g, "/examples/records", H5T_NATIVE_FLOAT, sizeof(float), n_rec, (void **)&rec))) goto out;
        /* records are counts (labels, per-example statistics): the table casts and sums them */
        for (hsize_t i = 0; i < n; i++) {
            const float *x = rec + rows[i].ex_offset;
            for (uint64_t j = 0; j < rows[i].ex_count * (uint64_t)rows[i].r.ex_width; j++)
                if (!(x[j] >= 0 && x[j] <= 16777216.0f && x[j] == floorf(x[j]))) {
                    st = bad(path,
                             "row %llu of /runs: test record value %g at /examples/records[%llu] is not a count "
                             "(records hold labels or per-example metric statistics: integers from 0 to 2^24; "
                             "damaged file?)",
                             (unsigned long long)i, (double)x[j], (unsigned long long)(rows[i].ex_offset + j));
                    goto out;
                }
        }
    }
    size_t first = out->n; /* rows of this file are appended from here */
    for (hsize_t i = 0; i < n && !st; i++) {
        pb_res_row *x = &rows[i].r;
        x->eval_step = e_step + rows[i].eval_offset;
        x->eval_train_loss = e_tl + rows[i].eval_offset;
        x->eval_dev = e_dev + rows[i].eval_offset;
        x->eval_test = e_test + rows[i].eval_offset;
        x->loss = loss + rows[i].loss_offset;
        x->ex = rec ? rec + rows[i].ex_offset : NULL;
        if (!rec) x->n_ex = 0;
        if (!valid_key(x->key) || !valid_status(x->status)) {
            st = bad(path, "row %llu of /runs has a bad key or status ('%.20s', '%.20s')", (unsigned long long)i, x->key,
                     x->status);
            break;
        }
        if (pb_res_find(out, x->key) >= (long)first)
            st = bad(path, "row %llu of /runs repeats the key %s of an earlier row (damaged file?)",
                     (unsigned long long)i, x->key);
        if (!st) st = pb_res_put(out, x); /* deep copy */
    }
out:
    free(rows), free(e_step), free(e_tl), free(e_dev), free(e_test), free(loss), free(rec);
    types_close(&ty);
    if (g >= 0) H5Gclose(g);
    if (sp >= 0) H5Sclose(sp);
    if (ft >= 0) H5Tclose(ft);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return st;
}

/* ---- the writer lock --------------------------------------------------------------------------- */

pb_status pb_res_lock(const char *path, int *fd) {
    char lock[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock ||
        snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return pb_errorf(PB_EINVAL, "%s: path too long", path);
    int f = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (f < 0)
        return pb_errorf(PB_EIO, "%s: cannot create the lock file %s (%s); is the directory writable?", path, lock,
                         strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK)
            return pb_errorf(PB_EIO, "%s: another peftbench process is writing it (it holds %s); wait for it to "
                                     "finish or write to another file",
                             path, lock);
        return pb_errorf(PB_EIO, "%s: cannot lock %s: %s", path, lock, strerror(e));
    }
    unlink(tmp); /* a version a killed writer left unfinished: never renamed, so never part of PATH */
    *fd = f;
    return PB_OK;
}

void pb_res_unlock(int fd) {
    if (fd >= 0) close(fd);
}
