/* checkpoint.c — HDF5 checkpoints (see checkpoint.h; the layout is in models/CHECKPOINT.md).
 *
 * Every HDF5 call is checked; HDF5's own error printing is switched off on entry to each public
 * function, so a failure turns into one pb_errorf message that names the file and the object.
 * Writers create every object with timestamps off (H5Pset_obj_track_times), so the same content
 * gives the same bytes.
 */
#include "pb_fs.h"
#include "pb_h5.h"
#include "checkpoint.h"
#include "tokenizer.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pb_gitinfo.h"

uint64_t pb_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ---- names of enum values, as stored in files ------------------------------------------------ */

static const char *const g_decay_names[] = {"linear", "cosine", "constant"};
static const char *const g_arch_names[] = {"decoder", "encoder", "encoder-decoder", "vision"};
static const char *const g_ffn_names[] = {"gelu", "swiglu", "geglu"};
static const char *const g_norm_names[] = {"layernorm", "rmsnorm"};
static const char *const g_pos_names[] = {"learned", "rope", "relative", "none"};
static const char *const g_head_names[] = {"lm", "cls"};
#define NAMES(a) (a), (int)(sizeof(a) / sizeof((a)[0]))

const char *pb_decay_name(pb_decay d) { return (d >= 0 && d <= PB_DECAY_CONSTANT) ? g_decay_names[d] : "?"; }
const char *pb_arch_name(pb_arch a) { return (a >= 0 && a <= PB_ARCH_VISION) ? g_arch_names[a] : "?"; }

static void names_joined(char *buf, size_t cap, const char *const *names, int n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int k = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (k < 0 || (size_t)k >= cap - used) return;
        used += (size_t)k;
    }
}

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct {
    const char *path; /* final path, for messages */
    pb_status st;     /* first failure */
} wctx;

static int wfail(wctx *w, const char *what, const char *name) {
    if (!w->st) w->st = pb_errorf(PB_EHDF5, "%s: writing %s '%s' failed (HDF5 error; disk full?)", w->path, what, name);
    return -1;
}

static void put_attr(wctx *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *val, hsize_t n) {
    if (w->st) return;
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = sp < 0 ? -1 : H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, mtype, val) < 0) wfail(w, "attribute", name);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
}

static void put_str(wctx *w, hid_t loc, const char *name, const char *val) {
    if (w->st) return;
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, strlen(val) + 1) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        wfail(w, "attribute", name);
    } else {
        put_attr(w, loc, name, t, t, val, 0);
    }
    if (t >= 0) H5Tclose(t);
}

static void put_i64(wctx *w, hid_t loc, const char *name, long long v) {
    int64_t x = (int64_t)v;
    put_attr(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &x, 0);
}

static void put_u64(wctx *w, hid_t loc, const char *name, uint64_t v) {
    put_attr(w, loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v, 0);
}

static void put_f32(wctx *w, hid_t loc, const char *name, float v) {
    put_attr(w, loc, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, &v, 0);
}

static void put_f64(wctx *w, hid_t loc, const char *name, double v) {
    put_attr(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0);
}

static hid_t make_group(wctx *w, hid_t loc, const char *name, hid_t gcpl) {
    if (w->st) return -1;
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0) wfail(w, "group", name);
    return g;
}

static void put_floats(wctx *w, hid_t loc, const char *name, const float *data, int ndim, const hsize_t *dims,
                       hid_t dcpl) {
    if (w->st) return;
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) wfail(w, "dataset", name);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
}

static void tensor_dims(const pb_tensor *t, hsize_t dims[2]) {
    dims[0] = (hsize_t)t->shape[0];
    dims[1] = (hsize_t)t->shape[1];
}

static void put_desc(wctx *w, hid_t g, const pb_model *m) {
    const pb_model_desc *d = &m->d;
    put_str(w, g, "name", d->name);
    put_str(w, g, "arch", pb_arch_name(d->arch));
    put_i64(w, g, "causal", d->causal);
    put_i64(w, g, "n_layer", d->n_layer);
    put_i64(w, g, "d_model", d->d_model);
    put_i64(w, g, "n_head", d->n_head);
    put_i64(w, g, "n_kv_head", d->n_kv_head);
    put_i64(w, g, "d_ff", d->d_ff);
    put_str(w, g, "ffn", g_ffn_names[d->ffn]);
    put_str(w, g, "norm", g_norm_names[d->norm]);
    put_i64(w, g, "bias", d->bias);
    put_i64(w, g, "fused_qkv", d->fused_qkv);
    put_str(w, g, "pos", g_pos_names[d->pos]);
    put_i64(w, g, "vocab", d->vocab);
    put_i64(w, g, "max_seq", d->max_seq);
    put_i64(w, g, "tied_embed", d->tied_embed);
    put_f32(w, g, "rope_theta", d->rope_theta);
    put_f32(w, g, "rms_eps", d->rms_eps);
    put_str(w, g, "head", g_head_names[m->head]);
    put_i64(w, g, "n_labels", m->n_labels);
}

static void put_recipe(wctx *w, hid_t g, const pb_recipe *r) {
    put_str(w, g, "backbone", r->backbone);
    put_str(w, g, "objective", r->objective);
    put_str(w, g, "tokenizer", r->tokenizer[0] ? r->tokenizer : "byte");
    put_str(w, g, "corpus", r->corpus);
    put_str(w, g, "corpus_sources", r->corpus_sources);
    put_u64(w, g, "corpus_hash", r->corpus_hash);
    put_u64(w, g, "corpus_bytes", r->corpus_bytes);
    put_u64(w, g, "builtin_bytes", r->builtin_bytes);
    put_u64(w, g, "train_docs", r->train_docs);
    put_u64(w, g, "heldout_docs", r->heldout_docs);
    put_u64(w, g, "train_tokens", r->train_tokens);
    put_u64(w, g, "heldout_tokens", r->heldout_tokens);
    put_f64(w, g, "holdout", r->holdout);
    put_i64(w, g, "steps", r->steps);
    put_u64(w, g, "seed", r->seed);
    put_i64(w, g, "batch", r->batch);
    put_i64(w, g, "seq", r->seq);
    put_f32(w, g, "lr", r->lr);
    put_f32(w, g, "min_lr_frac", r->min_lr_frac);
    put_i64(w, g, "warmup", r->warmup);
    put_str(w, g, "decay", pb_decay_name(r->decay));
    put_f32(w, g, "weight_decay", r->weight_decay);
    put_f32(w, g, "clip_norm", r->clip_norm);
    put_f32(w, g, "beta1", r->beta1);
    put_f32(w, g, "beta2", r->beta2);
    put_f32(w, g, "eps", r->eps);
    put_f32(w, g, "mask_prob", r->mask_prob);
    put_i64(w, g, "threads", r->threads);
    put_str(w, g, "git_commit", r->git_commit);
}

static uint64_t params_checksum(const pb_model *m) {
    uint64_t h = PB_FNV_OFFSET;
    for (int i = 0; i < m->n_tensors; i++) h = pb_fnv1a64(h, m->tensors[i].data, m->tensors[i].numel * sizeof(float));
    return h;
}

/* Whole-file integrity. HDF5 1.10 reads some corrupted files out of freed memory (seen under
 * AddressSanitizer in tests/test_checkpoint.c's random corruption), so a damaged checkpoint must
 * never reach its parser. Every checkpoint starts with a USERBLOCK-byte user block (HDF5's own
 * mechanism for a header it skips; h5dump and h5py read such files) holding
 *   "PBCKSUM1" | u64 length of the HDF5 part | u64 FNV-1a 64 of the HDF5 part
 * written after the file is closed; loading checks it before HDF5 opens the file. */
#define USERBLOCK 512
#define SEAL_MAGIC "PBCKSUM1"

static pb_status hash_after_userblock(FILE *fp, const char *path, uint64_t *len, uint64_t *hash) {
    unsigned char buf[1 << 16];
    uint64_t h = PB_FNV_OFFSET, n = 0;
    if (fseek(fp, USERBLOCK, SEEK_SET) != 0) return pb_errorf(PB_EFORMAT, "%s: shorter than its header", path);
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0) {
        h = pb_fnv1a64(h, buf, k);
        n += k;
    }
    if (ferror(fp)) return pb_errorf(PB_EIO, "%s: read error", path);
    *len = n;
    *hash = h;
    return PB_OK;
}

static pb_status seal_userblock(const char *tmp) {
    FILE *fp = fopen(tmp, "r+b");
    if (!fp) return pb_errorf(PB_EIO, "%s: cannot reopen to seal: %s", tmp, strerror(errno));
    uint64_t len, hash;
    pb_status st = hash_after_userblock(fp, tmp, &len, &hash);
    unsigned char hdr[24];
    memcpy(hdr, SEAL_MAGIC, 8);
    memcpy(hdr + 8, &len, 8);
    memcpy(hdr + 16, &hash, 8);
    if (!st && (fseek(fp, 0, SEEK_SET) != 0 || fwrite(hdr, 1, sizeof hdr, fp) != sizeof hdr))
        st = pb_errorf(PB_EIO, "%s: cannot write the integrity header", tmp);
    if (fclose(fp) != 0 && !st) st = pb_errorf(PB_EIO, "%s: cannot write the integrity header", tmp);
    return st;
}

pb_status pb_ckpt_reseal(const char *path) {
    FILE *fp = fopen(path, "rb");
    char magic[8] = {0};
    int ok = fp && fread(magic, 1, 8, fp) == 8 && !memcmp(magic, SEAL_MAGIC, 8);
    if (fp) fclose(fp);
    if (!ok) return pb_errorf(PB_EFORMAT, "%s: no integrity header to update (not a peftbench checkpoint)", path);
    return seal_userblock(path);
}

static pb_status check_seal(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return pb_errorf(PB_EIO, "%s: %s", path, strerror(errno));
    unsigned char hdr[24];
    pb_status st = PB_OK;
    if (fread(hdr, 1, sizeof hdr, fp) != sizeof hdr || memcmp(hdr, SEAL_MAGIC, 8) != 0) {
        st = pb_errorf(PB_EFORMAT, "%s: not a peftbench checkpoint (no integrity header; written by another "
                       "program or an older peftbench?); write it again with `peftbench pretrain`", path);
    } else {
        uint64_t want_len, want_hash, len, hash;
        memcpy(&want_len, hdr + 8, 8);
        memcpy(&want_hash, hdr + 16, 8);
        st = hash_after_userblock(fp, path, &len, &hash);
        if (!st && len != want_len)
            st = pb_errorf(PB_EFORMAT, "%s: truncated or extended: %llu bytes after the header, the header says %llu",
                           path, (unsigned long long)len, (unsigned long long)want_len);
        else if (!st && hash != want_hash)
            st = pb_errorf(PB_EFORMAT, "%s: corrupt: checksum mismatch (the file changed after it was written); "
                           "write it again with `peftbench pretrain`", path);
    }
    fclose(fp);
    return st;
}

pb_status pb_ckpt_save(const char *path, const pb_model *m, const pb_ckpt_info *info, const pb_ckpt_train *train) {
    if (info && info->tok && info->tok->kind == PB_TOKENIZER_GPT2)
        return pb_errorf(PB_EINVAL,
                         "%s: a gpt2 tokenizer (an imported vocabulary) cannot be stored in a checkpoint yet; "
                         "checkpoints hold the byte and bpe:N tokenizers (models/CHECKPOINT.md)",
                         path);
    quiet_hdf5();
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return pb_errorf(PB_EINVAL, "%s: is a directory; give a file name for the checkpoint (e.g. %s/model.h5)",
                         path, path);
    {
        const pb_tokenizer *tk = info ? info->tok : NULL;
        int tv = tk ? tk->vocab : PB_TOK_VOCAB;
        if (m->d.vocab != tv)
            return pb_errorf(PB_EINVAL, "%s: the model's vocabulary (%d) differs from its tokenizer's (%d)", path,
                             m->d.vocab, tv);
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return pb_errorf(PB_EINVAL, "%s: path too long", path);
    wctx w = {path, PB_OK};
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl >= 0 && H5Pset_userblock(fcpl, USERBLOCK) < 0) {
        H5Pclose(fcpl);
        fcpl = -1;
    }
    hid_t f = fcpl < 0 ? -1 : pb_h5_create_mem(fcpl); /* written to tmp by us at the end (core/pb_h5.h) */
    if (fcpl >= 0) H5Pclose(fcpl);
    if (f < 0) return pb_errorf(PB_EHDF5, "%s: HDF5 cannot create a file in memory", path);
    hid_t ocpl = H5Pcreate(H5P_GROUP_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (ocpl < 0 || dcpl < 0 || H5Pset_obj_track_times(ocpl, 0) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0)
        wfail(&w, "property list", "track_times");

    put_str(&w, f, "format", PB_CKPT_MAGIC);
    put_i64(&w, f, "format_version", PB_CKPT_VERSION);
    put_str(&w, f, "peftbench_version", PB_VERSION);
    put_str(&w, f, "git_commit", PB_GIT_COMMIT);

    hid_t g = make_group(&w, f, "model", ocpl);
    if (g >= 0) put_desc(&w, g, m), H5Gclose(g);

    g = make_group(&w, f, "tokenizer", ocpl);
    if (g >= 0) {
        const pb_tokenizer *tk = info ? info->tok : NULL;
        char specials[256];
        int n = 0;
        for (int32_t id = 256; id < PB_TOK_VOCAB; id++)
            n += snprintf(specials + n, sizeof specials - (size_t)n, "%s%s=%d", n ? " " : "", pb_tok_special_name(id),
                          id);
        int bpe = tk && tk->kind == PB_TOKENIZER_BPE;
        put_str(&w, g, "kind", bpe ? "bpe" : "byte");
        put_i64(&w, g, "vocab", bpe ? tk->vocab : PB_TOK_VOCAB);
        put_str(&w, g, "specials", specials);
        if (bpe) {
            put_i64(&w, g, "n_merges", tk->n_merges);
            put_str(&w, g, "pretokenizer", "gpt2-ascii");
            put_i64(&w, g, "max_piece", PB_BPE_MAX_PIECE);
            if (!w.st) {
                hsize_t dims[2] = {(hsize_t)tk->n_merges, 2};
                hid_t sp = H5Screate_simple(2, dims, NULL);
                hid_t d = sp < 0 ? -1 : H5Dcreate2(g, "merges", H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
                if (d < 0 || (tk->n_merges > 0 && H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                            tk->merges) < 0))
                    wfail(&w, "dataset", "merges");
                if (d >= 0) H5Dclose(d);
                if (sp >= 0) H5Sclose(sp);
            }
        }
        H5Gclose(g);
    }

    g = make_group(&w, f, "params", ocpl);
    if (g >= 0) {
        put_i64(&w, g, "n_tensors", m->n_tensors);
        put_u64(&w, g, "n_params", (uint64_t)m->n_params);
        put_u64(&w, g, "checksum", params_checksum(m));
        for (int i = 0; i < m->n_tensors && !w.st; i++) {
            hsize_t dims[2];
            tensor_dims(&m->tensors[i], dims);
            put_floats(&w, g, m->tensors[i].name, m->tensors[i].data, m->tensors[i].ndim, dims, dcpl);
        }
        H5Gclose(g);
    }

    if (info && info->has_recipe && (g = make_group(&w, f, "recipe", ocpl)) >= 0) {
        put_recipe(&w, g, &info->recipe);
        H5Gclose(g);
    }
    if (info && info->has_eval && (g = make_group(&w, f, "eval", ocpl)) >= 0) {
        const pb_ckpt_eval *e = &info->eval;
        put_i64(&w, g, "step", e->step);
        put_f64(&w, g, "nats", e->nats);
        put_u64(&w, g, "tokens", e->tokens);
        put_u64(&w, g, "bytes", e->bytes);
        put_f64(&w, g, "bits_per_byte", e->bits_per_byte);
        H5Gclose(g);
    }
    if (train && (g = make_group(&w, f, "train", ocpl)) >= 0) {
        put_i64(&w, g, "step", train->step);
        put_attr(&w, g, "rng_state", H5T_STD_U64LE, H5T_NATIVE_UINT64, train->rng.s, 4);
        put_f32(&w, g, "sched_lr", train->sched.lr);
        put_f32(&w, g, "sched_min_lr_frac", train->sched.min_lr_frac);
        put_i64(&w, g, "sched_warmup", train->sched.warmup);
        put_i64(&w, g, "sched_total", train->sched.total);
        put_str(&w, g, "sched_decay", pb_decay_name(train->sched.decay));
        put_i64(&w, g, "resumable", train->opt != NULL);
        hsize_t n = (hsize_t)train->n_losses;
        static const float none = 0.0f;
        put_floats(&w, g, "loss", train->losses ? train->losses : &none, 1, &n, dcpl);
        if (train->opt) {
            const pb_adamw *o = train->opt;
            put_i64(&w, g, "adam_t", o->t);
            put_f32(&w, g, "adam_lr", o->cfg.lr);
            put_f32(&w, g, "adam_beta1", o->cfg.beta1);
            put_f32(&w, g, "adam_beta2", o->cfg.beta2);
            put_f32(&w, g, "adam_eps", o->cfg.eps);
            put_f32(&w, g, "adam_weight_decay", o->cfg.weight_decay);
            put_f32(&w, g, "adam_clip_norm", o->cfg.clip_norm);
            assert(o->total == pb_model_trainable_count(m));
            const char *which[2] = {"adam_m", "adam_v"};
            for (int k = 0; k < 2; k++) {
                hid_t gm = make_group(&w, g, which[k], ocpl);
                if (gm < 0) break;
                const float *base = k ? o->v : o->m;
                size_t off = 0;
                for (int i = 0; i < m->n_tensors && !w.st; i++) {
                    const pb_tensor *t = &m->tensors[i];
                    if (!t->trainable) continue;
                    hsize_t dims[2];
                    tensor_dims(t, dims);
                    put_floats(&w, gm, t->name, base + off, t->ndim, dims, dcpl);
                    off += t->numel;
                }
                H5Gclose(gm);
            }
        }
        H5Gclose(g);
    }
    if (ocpl >= 0) H5Pclose(ocpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (w.st) H5Fclose(f);
    else w.st = pb_h5_close_to_file(f, tmp);
    if (!w.st) w.st = seal_userblock(tmp);
    if (!w.st) w.st = pb_fsync_path(tmp, 0);
    if (w.st) {
        unlink(tmp);
        return w.st;
    }
    return pb_rename_durable(tmp, path);
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    hid_t f;
} rctx;

static pb_status bad(const rctx *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static pb_status bad(const rctx *r, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pb_errorf(PB_EFORMAT, "%s: %s", r->path, msg);
}

/* Opens attribute `name` of loc (named `where` in messages) and checks it holds n values of
 * class cls. Returns the attribute id, or -1 with the error set. */
static hid_t open_attr(const rctx *r, hid_t loc, const char *where, const char *name, H5T_class_t cls, hssize_t n,
                       pb_status *st) {
    if (H5Aexists(loc, name) <= 0) {
        *st = bad(r, "attribute '%s' of %s is missing (not a complete peftbench checkpoint)", name, where);
        return -1;
    }
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) {
        *st = bad(r, "attribute '%s' of %s cannot be opened (corrupt file)", name, where);
        return -1;
    }
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    hssize_t got = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    static const char *cname[] = {"integer", "float", "time", "string", "bitfield", "opaque", "compound",
                                  "reference", "enum", "variable-length", "array"};
    const char *want = cls == H5T_INTEGER ? "an integer" : cls == H5T_FLOAT ? "a number" : "a string";
    if (c != cls) {
        *st = bad(r, "attribute '%s' of %s is %s; expected %s", name, where,
                  c >= 0 && c < (int)(sizeof cname / sizeof cname[0]) ? cname[c] : "unreadable", want);
        H5Aclose(a);
        return -1;
    }
    if (got != n) {
        *st = bad(r, "attribute '%s' of %s has %lld values; expected %lld", name, where, (long long)got, (long long)n);
        H5Aclose(a);
        return -1;
    }
    return a;
}

static pb_status get_i64(const rctx *r, hid_t loc, const char *where, const char *name, long long lo, long long hi,
                         long long *out) {
    pb_status st = PB_OK;
    hid_t a = open_attr(r, loc, where, name, H5T_INTEGER, 1, &st);
    if (a < 0) return st;
    int64_t v = 0;
    herr_t rc = H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    if (rc < 0) return bad(r, "attribute '%s' of %s cannot be read as a 64-bit integer", name, where);
    if (v < lo || v > hi)
        return bad(r, "attribute '%s' of %s is %lld; accepted: %lld to %lld", name, where, (long long)v, lo, hi);
    *out = v;
    return PB_OK;
}

static pb_status get_int(const rctx *r, hid_t loc, const char *where, const char *name, long long lo, long long hi,
                         int *out) {
    long long v;
    pb_status st = get_i64(r, loc, where, name, lo, hi, &v);
    if (!st) *out = (int)v;
    return st;
}

static pb_status get_long(const rctx *r, hid_t loc, const char *where, const char *name, long long lo, long long hi,
                          long *out) {
    long long v;
    pb_status st = get_i64(r, loc, where, name, lo, hi, &v);
    if (!st) *out = (long)v;
    return st;
}

static pb_status get_u64(const rctx *r, hid_t loc, const char *where, const char *name, uint64_t *out) {
    pb_status st = PB_OK;
    hid_t a = open_attr(r, loc, where, name, H5T_INTEGER, 1, &st);
    if (a < 0) return st;
    herr_t rc = H5Aread(a, H5T_NATIVE_UINT64, out);
    H5Aclose(a);
    return rc < 0 ? bad(r, "attribute '%s' of %s cannot be read as an unsigned 64-bit integer", name, where) : PB_OK;
}

static pb_status get_f64(const rctx *r, hid_t loc, const char *where, const char *name, double *out) {
    pb_status st = PB_OK;
    hid_t a = open_attr(r, loc, where, name, H5T_FLOAT, 1, &st);
    if (a < 0) return st;
    herr_t rc = H5Aread(a, H5T_NATIVE_DOUBLE, out);
    H5Aclose(a);
    return rc < 0 ? bad(r, "attribute '%s' of %s cannot be read as a number", name, where) : PB_OK;
}

static pb_status get_f32(const rctx *r, hid_t loc, const char *where, const char *name, float *out) {
    pb_status st = PB_OK;
    hid_t a = open_attr(r, loc, where, name, H5T_FLOAT, 1, &st);
    if (a < 0) return st;
    herr_t rc = H5Aread(a, H5T_NATIVE_FLOAT, out);
    H5Aclose(a);
    return rc < 0 ? bad(r, "attribute '%s' of %s cannot be read as a number", name, where) : PB_OK;
}

/* Reads a string attribute (fixed-length or variable-length) into out[cap]. */
static pb_status get_str(const rctx *r, hid_t loc, const char *where, const char *name, char *out, size_t cap) {
    pb_status st = PB_OK;
    hid_t a = open_attr(r, loc, where, name, H5T_STRING, 1, &st);
    if (a < 0) return st;
    hid_t ft = H5Aget_type(a);
    htri_t vlen = ft >= 0 ? H5Tis_variable_str(ft) : -1;
    hid_t mt = H5Tcopy(H5T_C_S1);
    herr_t rc = -1;
    if (vlen > 0 && mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0) {
        char *s = NULL;
        rc = H5Aread(a, mt, &s);
        if (rc >= 0) {
            if (s && strlen(s) >= cap) rc = -2;
            else snprintf(out, cap, "%s", s ? s : "");
            if (s) H5free_memory(s);
        }
    } else if (vlen == 0 && mt >= 0) {
        size_t sz = H5Tget_size(ft);
        char *buf = sz > 0 && sz < (1u << 20) ? calloc(1, sz + 1) : NULL;
        if (buf && H5Tset_size(mt, sz) >= 0 && H5Tset_strpad(mt, H5T_STR_NULLTERM) >= 0 && (rc = H5Aread(a, mt, buf)) >= 0) {
            buf[sz] = '\0';
            if (strlen(buf) >= cap) rc = -2;
            else snprintf(out, cap, "%s", buf);
        }
        free(buf);
    }
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    if (rc == -2) return bad(r, "attribute '%s' of %s is longer than %zu bytes", name, where, cap - 1);
    return rc < 0 ? bad(r, "attribute '%s' of %s cannot be read as a string", name, where) : PB_OK;
}

static pb_status get_enum(const rctx *r, hid_t loc, const char *where, const char *name, const char *const *names,
                          int n, int *out) {
    char s[64];
    pb_status st = get_str(r, loc, where, name, s, sizeof s);
    if (st) return st;
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return PB_OK;
        }
    char acc[256];
    names_joined(acc, sizeof acc, names, n);
    return bad(r, "attribute '%s' of %s is '%s'; accepted: %s", name, where, s, acc);
}

static hid_t open_group(const rctx *r, const char *name, int required, pb_status *st) {
    htri_t ex = H5Lexists(r->f, name, H5P_DEFAULT);
    if (ex <= 0) {
        if (required) *st = bad(r, "group '/%s' is missing (not a complete peftbench checkpoint)", name);
        return -1;
    }
    hid_t g = H5Gopen2(r->f, name, H5P_DEFAULT);
    if (g < 0) *st = bad(r, "'/%s' cannot be opened as a group (corrupt file)", name);
    return g;
}

#define TRY(x)                  \
    do {                        \
        if ((st = (x))) goto out; \
    } while (0)

static pb_status read_desc(const rctx *r, hid_t g, pb_ckpt_info *info) {
    pb_model_desc *d = &info->desc;
    const char *w = "/model";
    pb_status st;
    int v;
    memset(d, 0, sizeof *d);
    TRY(get_str(r, g, w, "name", d->name, sizeof d->name));
    TRY(get_enum(r, g, w, "arch", NAMES(g_arch_names), &v));
    d->arch = (pb_arch)v;
    TRY(get_int(r, g, w, "causal", 0, 1, &d->causal));
    TRY(get_int(r, g, w, "n_layer", 1, 4096, &d->n_layer));
    TRY(get_int(r, g, w, "d_model", 1, 1 << 16, &d->d_model));
    TRY(get_int(r, g, w, "n_head", 1, 1 << 12, &d->n_head));
    TRY(get_int(r, g, w, "n_kv_head", 1, 1 << 12, &d->n_kv_head));
    TRY(get_int(r, g, w, "d_ff", 1, 1 << 20, &d->d_ff));
    TRY(get_enum(r, g, w, "ffn", NAMES(g_ffn_names), &v));
    d->ffn = (pb_ffn_kind)v;
    TRY(get_enum(r, g, w, "norm", NAMES(g_norm_names), &v));
    d->norm = (pb_norm_kind)v;
    TRY(get_int(r, g, w, "bias", 0, 1, &d->bias));
    TRY(get_int(r, g, w, "fused_qkv", 0, 1, &d->fused_qkv));
    TRY(get_enum(r, g, w, "pos", NAMES(g_pos_names), &v));
    d->pos = (pb_pos_kind)v;
    TRY(get_int(r, g, w, "vocab", 1, 1 << 24, &d->vocab));
    TRY(get_int(r, g, w, "max_seq", 1, 1 << 20, &d->max_seq));
    TRY(get_int(r, g, w, "tied_embed", 0, 1, &d->tied_embed));
    /* written since the LLaMA-style block; absent (older files): 0, the defaults */
    if (H5Aexists(g, "rope_theta") > 0) TRY(get_f32(r, g, w, "rope_theta", &d->rope_theta));
    if (H5Aexists(g, "rms_eps") > 0) TRY(get_f32(r, g, w, "rms_eps", &d->rms_eps));
    if (!(d->rope_theta >= 0.0f && d->rope_theta < INFINITY))
        return bad(r, "attribute 'rope_theta' of /model is %g; accepted: 0 (the default 10000) or a positive number",
                   (double)d->rope_theta);
    if (!(d->rms_eps >= 0.0f && d->rms_eps < 1.0f))
        return bad(r, "attribute 'rms_eps' of /model is %g; accepted: 0 (the default 1e-5) or a number in (0, 1)",
                   (double)d->rms_eps);
    TRY(get_enum(r, g, w, "head", NAMES(g_head_names), &v));
    info->head = (pb_head_kind)v;
    TRY(get_int(r, g, w, "n_labels", 0, 1 << 20, &info->n_labels));
    if (info->head == PB_HEAD_CLS && info->n_labels < 1)
        return bad(r, "attribute 'n_labels' of /model is %d; a classification head needs at least 1", info->n_labels);
    if (info->head == PB_HEAD_LM && info->n_labels != 0)
        return bad(r, "attribute 'n_labels' of /model is %d; an LM head has 0", info->n_labels);
    if (pb_desc_check_runnable(d))
        return pb_error_context(PB_EFORMAT, "%s: the stored descriptor is not runnable by this build", r->path);
out:
    return st;
}

static pb_status read_recipe(const rctx *r, hid_t g, pb_recipe *p) {
    const char *w = "/recipe";
    pb_status st;
    int v;
    memset(p, 0, sizeof *p);
    TRY(get_str(r, g, w, "backbone", p->backbone, sizeof p->backbone));
    TRY(get_str(r, g, w, "objective", p->objective, sizeof p->objective));
    if (H5Aexists(g, "tokenizer") > 0) TRY(get_str(r, g, w, "tokenizer", p->tokenizer, sizeof p->tokenizer));
    else snprintf(p->tokenizer, sizeof p->tokenizer, "byte"); /* written before tokenizers were a choice */
    TRY(get_str(r, g, w, "corpus", p->corpus, sizeof p->corpus));
    TRY(get_str(r, g, w, "corpus_sources", p->corpus_sources, sizeof p->corpus_sources));
    TRY(get_u64(r, g, w, "corpus_hash", &p->corpus_hash));
    TRY(get_u64(r, g, w, "corpus_bytes", &p->corpus_bytes));
    TRY(get_u64(r, g, w, "builtin_bytes", &p->builtin_bytes));
    TRY(get_u64(r, g, w, "train_docs", &p->train_docs));
    TRY(get_u64(r, g, w, "heldout_docs", &p->heldout_docs));
    TRY(get_u64(r, g, w, "train_tokens", &p->train_tokens));
    TRY(get_u64(r, g, w, "heldout_tokens", &p->heldout_tokens));
    TRY(get_f64(r, g, w, "holdout", &p->holdout));
    TRY(get_long(r, g, w, "steps", 0, LONG_MAX, &p->steps));
    TRY(get_u64(r, g, w, "seed", &p->seed));
    TRY(get_int(r, g, w, "batch", 1, INT_MAX, &p->batch));
    TRY(get_int(r, g, w, "seq", 1, INT_MAX, &p->seq));
    TRY(get_f32(r, g, w, "lr", &p->lr));
    TRY(get_f32(r, g, w, "min_lr_frac", &p->min_lr_frac));
    TRY(get_long(r, g, w, "warmup", 0, LONG_MAX, &p->warmup));
    TRY(get_enum(r, g, w, "decay", NAMES(g_decay_names), &v));
    p->decay = (pb_decay)v;
    TRY(get_f32(r, g, w, "weight_decay", &p->weight_decay));
    TRY(get_f32(r, g, w, "clip_norm", &p->clip_norm));
    TRY(get_f32(r, g, w, "beta1", &p->beta1));
    TRY(get_f32(r, g, w, "beta2", &p->beta2));
    TRY(get_f32(r, g, w, "eps", &p->eps));
    TRY(get_f32(r, g, w, "mask_prob", &p->mask_prob));
    TRY(get_int(r, g, w, "threads", 0, INT_MAX, &p->threads));
    TRY(get_str(r, g, w, "git_commit", p->git_commit, sizeof p->git_commit));
out:
    return st;
}

/* Opens path for reading after checking it is a readable regular file that HDF5 recognises. */
static pb_status open_file(const char *path, rctx *r) {
    quiet_hdf5();
    r->path = path;
    r->f = -1;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pb_errorf(errno == ENOENT ? PB_ENOTFOUND : PB_EIO, "%s: %s (expected a checkpoint written by "
                         "`peftbench pretrain -o FILE`)", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return pb_errorf(PB_EINVAL, "%s: is a directory; expected a checkpoint file (.h5)", path);
    if (!S_ISREG(sb.st_mode)) return pb_errorf(PB_EINVAL, "%s: not a regular file; expected a checkpoint file", path);
    if (access(path, R_OK) != 0) return pb_errorf(PB_EIO, "%s: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return pb_errorf(PB_EFORMAT, "%s: not an HDF5 file (%lld bytes, no HDF5 signature); expected a peftbench "
                         "checkpoint written by `peftbench pretrain`", path, (long long)sb.st_size);
    pb_status sealed = check_seal(path);
    if (sealed) return sealed;
    r->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->f < 0)
        return pb_errorf(PB_EFORMAT, "%s: HDF5 cannot open it (truncated or corrupt; %lld bytes); write it again "
                         "with `peftbench pretrain`", path, (long long)sb.st_size);
    return PB_OK;
}

static pb_status read_info(const rctx *r, pb_ckpt_info *info) {
    pb_status st = PB_OK;
    hid_t g = -1;
    memset(info, 0, sizeof *info);
    char magic[64];
    if (H5Aexists(r->f, "format") <= 0)
        return bad(r, "not a peftbench checkpoint: the root attribute 'format' is missing (expected '%s')",
                   PB_CKPT_MAGIC);
    TRY(get_str(r, r->f, "/", "format", magic, sizeof magic));
    if (strcmp(magic, PB_CKPT_MAGIC) != 0)
        return bad(r, "not a peftbench checkpoint: attribute 'format' is '%s' (expected '%s')", magic, PB_CKPT_MAGIC);
    long long ver;
    if ((st = get_i64(r, r->f, "/", "format_version", LLONG_MIN, LLONG_MAX, &ver))) return st;
    if (ver != PB_CKPT_VERSION)
        return bad(r, "checkpoint format version %lld is not supported (this build reads version %d%s)", ver,
                   PB_CKPT_VERSION, ver > PB_CKPT_VERSION ? "; it was written by a newer peftbench" : "");
    info->version = (int)ver;
    TRY(get_str(r, r->f, "/", "git_commit", info->git_commit, sizeof info->git_commit));

    if ((g = open_group(r, "model", 1, &st)) < 0) goto out;
    TRY(read_desc(r, g, info));
    H5Gclose(g);
    g = -1;

    if ((g = open_group(r, "tokenizer", 1, &st)) < 0) goto out;
    TRY(get_str(r, g, "/tokenizer", "kind", info->tokenizer, sizeof info->tokenizer));
    TRY(get_int(r, g, "/tokenizer", "vocab", 1, 1 << 24, &info->tok_vocab));
    if (!strcmp(info->tokenizer, "bpe"))
        TRY(get_int(r, g, "/tokenizer", "n_merges", 0, PB_BPE_MAX_MERGES, &info->tok_merges));
    H5Gclose(g);
    g = -1;
    if (!strcmp(info->tokenizer, "byte")) {
        if (info->tok_vocab != PB_TOK_VOCAB)
            return bad(r, "tokenizer 'byte' with vocabulary %d: the byte tokenizer's vocabulary is %d",
                       info->tok_vocab, PB_TOK_VOCAB);
    } else if (!strcmp(info->tokenizer, "bpe")) {
        if (info->tok_vocab != PB_TOK_VOCAB + info->tok_merges)
            return bad(r, "tokenizer 'bpe' with vocabulary %d and %d merges: the vocabulary must be %d + merges",
                       info->tok_vocab, info->tok_merges, PB_TOK_VOCAB);
    } else {
        return bad(r, "tokenizer kind '%s' is not supported (this build reads 'byte' and 'bpe')", info->tokenizer);
    }
    if (info->desc.vocab != info->tok_vocab)
        return bad(r, "the model's vocabulary (%d) differs from the tokenizer's (%d)", info->desc.vocab,
                   info->tok_vocab);

    if ((g = open_group(r, "recipe", 0, &st)) >= 0) {
        TRY(read_recipe(r, g, &info->recipe));
        info->has_recipe = 1;
        H5Gclose(g);
        g = -1;
    }
    if (st) goto out;
    if ((g = open_group(r, "eval", 0, &st)) >= 0) {
        const char *w = "/eval";
        pb_ckpt_eval *e = &info->eval;
        TRY(get_long(r, g, w, "step", 0, LONG_MAX, &e->step));
        TRY(get_f64(r, g, w, "nats", &e->nats));
        TRY(get_u64(r, g, w, "tokens", &e->tokens));
        TRY(get_u64(r, g, w, "bytes", &e->bytes));
        TRY(get_f64(r, g, w, "bits_per_byte", &e->bits_per_byte));
        info->has_eval = 1;
        H5Gclose(g);
        g = -1;
    }
    if (st) goto out;
    if ((g = open_group(r, "train", 0, &st)) >= 0) {
        TRY(get_long(r, g, "/train", "step", 0, LONG_MAX, &info->step));
        TRY(get_int(r, g, "/train", "resumable", 0, 1, &info->resumable));
        hid_t d = H5Dopen2(g, "loss", H5P_DEFAULT);
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        if (n < 0) {
            st = bad(r, "dataset '/train/loss' is missing or unreadable");
            goto out;
        }
        info->n_losses = (long)n;
        info->has_train = 1;
        H5Gclose(g);
        g = -1;
    }
out:
    if (g >= 0) H5Gclose(g);
    return st;
}

pb_status pb_ckpt_read_info(const char *path, pb_ckpt_info *info) {
    rctx r;
    pb_status st = open_file(path, &r);
    if (st) return st;
    st = read_info(&r, info);
    H5Fclose(r.f);
    return st;
}

static void shape_str(char *buf, size_t cap, int ndim, const hsize_t *dims) {
    if (ndim == 1) snprintf(buf, cap, "(%llu)", (unsigned long long)dims[0]);
    else if (ndim == 2) snprintf(buf, cap, "(%llu, %llu)", (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else snprintf(buf, cap, "rank %d", ndim);
}

/* Opens group/name as a float dataset of t's shape; returns the dataset or -1 with st set. */
static hid_t open_tensor(const rctx *r, hid_t g, const char *group, const pb_tensor *t, pb_status *st) {
    hsize_t want[2];
    tensor_dims(t, want);
    char ws[64];
    shape_str(ws, sizeof ws, t->ndim, want);
    if (H5Lexists(g, t->name, H5P_DEFAULT) <= 0) {
        *st = bad(r, "tensor '%s/%s' is missing (the descriptor implies float32 %s)", group, t->name, ws);
        return -1;
    }
    hid_t d = H5Dopen2(g, t->name, H5P_DEFAULT);
    if (d < 0) {
        *st = bad(r, "'%s/%s' cannot be opened as a dataset (corrupt file)", group, t->name);
        return -1;
    }
    hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
    H5T_class_t c = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS;
    size_t size = ty >= 0 ? H5Tget_size(ty) : 0;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t got[8] = {0};
    if (nd > 0 && nd <= 8) H5Sget_simple_extent_dims(sp, got, NULL);
    if (ty >= 0) H5Tclose(ty);
    if (sp >= 0) H5Sclose(sp);
    if (c != H5T_FLOAT || size != 4) {
        *st = bad(r, "tensor '%s/%s' has element type %s of %zu bytes; expected float32", group, t->name,
                  c == H5T_INTEGER ? "integer" : c == H5T_FLOAT ? "float" : "non-numeric", size);
    } else if (nd != t->ndim || got[0] != want[0] || (nd == 2 && got[1] != want[1])) {
        char gs[64];
        shape_str(gs, sizeof gs, nd, got);
        *st = bad(r, "tensor '%s/%s' has shape %s; the descriptor implies %s", group, t->name, gs, ws);
    } else {
        return d;
    }
    H5Dclose(d);
    return -1;
}

/* Checks that group g holds exactly the given tensors (no unexpected names). */
static pb_status check_names(const rctx *r, hid_t g, const char *group, const pb_tensor *t, int n, int trainable_only) {
    H5G_info_t gi;
    if (H5Gget_info(g, &gi) < 0) return bad(r, "group '%s' cannot be listed (corrupt file)", group);
    int want = 0;
    for (int i = 0; i < n; i++) want += !trainable_only || t[i].trainable;
    if (gi.nlinks == (hsize_t)want) return PB_OK;
    for (hsize_t k = 0; k < gi.nlinks; k++) {
        char name[256];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, sizeof name, H5P_DEFAULT);
        if (len < 0) return bad(r, "group '%s' cannot be listed (corrupt file)", group);
        int found = 0;
        for (int i = 0; i < n && !found; i++) found = !strcmp(name, t[i].name) && (!trainable_only || t[i].trainable);
        if (!found)
            return bad(r, "unexpected entry '%s/%s': the descriptor implies exactly %d tensors, named as listed in "
                       "models/CHECKPOINT.md", group, name, want);
    }
    return bad(r, "group '%s' holds %llu entries; the descriptor implies %d", group, (unsigned long long)gi.nlinks,
               want);
}

pb_status pb_ckpt_load(const char *path, pb_model *m, pb_ckpt_info *info_out) {
    memset(m, 0, sizeof *m);
    rctx r;
    pb_ckpt_info info;
    pb_tensor *t = NULL;
    hid_t g = -1;
    pb_status st = open_file(path, &r);
    if (st) return st;
    TRY(read_info(&r, &info));

    /* Shapes first, from the layout alone: a bad file is refused before anything big is allocated. */
    size_t n_params = 0;
    int nt = pb_model_layout(&info.desc, info.head, info.n_labels, NULL, NULL);
    t = calloc((size_t)nt, sizeof *t);
    if (!t) {
        st = pb_errorf(PB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    pb_model_layout(&info.desc, info.head, info.n_labels, t, &n_params);
    if ((g = open_group(&r, "params", 1, &st)) < 0) goto out;
    for (int i = 0; i < nt; i++) {
        hid_t d = open_tensor(&r, g, "/params", &t[i], &st);
        if (d < 0) goto out;
        H5Dclose(d);
    }
    TRY(check_names(&r, g, "/params", t, nt, 0));
    uint64_t checksum;
    TRY(get_u64(&r, g, "/params", "checksum", &checksum));

    if ((st = pb_model_init(m, &info.desc, info.head, info.n_labels, 0))) {
        pb_error_context(st, "%s", path);
        goto out;
    }
    assert(m->n_params == n_params && m->n_tensors == nt);
    for (int i = 0; i < nt; i++) {
        pb_tensor *x = &m->tensors[i];
        hid_t d = H5Dopen2(g, x->name, H5P_DEFAULT);
        herr_t rc = d >= 0 ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x->data) : -1;
        if (d >= 0) H5Dclose(d);
        if (rc < 0) {
            st = bad(&r, "reading tensor '/params/%s' failed (file truncated or corrupt)", x->name);
            goto out;
        }
    }
    uint64_t got = params_checksum(m);
    if (got != checksum) {
        st = bad(&r, "the parameter data does not match its checksum (stored %016" PRIx64 ", computed %016" PRIx64
                 "): the file is corrupt", checksum, got);
        goto out;
    }
    if (info_out) *info_out = info;
out:
    if (g >= 0) H5Gclose(g);
    H5Fclose(r.f);
    free(t);
    if (st && m->params) pb_model_free(m);
    return st;
}

pb_status pb_ckpt_load_tokenizer(const char *path, pb_tokenizer *tk) {
    pb_tokenizer_init_byte(tk);
    rctx r;
    pb_ckpt_info info;
    hid_t g = -1, d = -1, ty = -1, sp = -1;
    int32_t *merges = NULL;
    pb_status st = open_file(path, &r);
    if (st) return st;
    TRY(read_info(&r, &info));
    if (strcmp(info.tokenizer, "bpe") != 0) goto out; /* byte */
    if ((g = open_group(&r, "tokenizer", 1, &st)) < 0) goto out;
    if (H5Lexists(g, "merges", H5P_DEFAULT) <= 0 || (d = H5Dopen2(g, "merges", H5P_DEFAULT)) < 0) {
        st = bad(&r, "dataset '/tokenizer/merges' is missing (a 'bpe' tokenizer stores its %d merges as an integer "
                 "(%d, 2) dataset)", info.tok_merges, info.tok_merges);
        goto out;
    }
    ty = H5Dget_type(d);
    sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (ty < 0 || H5Tget_class(ty) != H5T_INTEGER) {
        st = bad(&r, "'/tokenizer/merges' is not an integer dataset");
        goto out;
    }
    if (nd != 2 || dims[0] != (hsize_t)info.tok_merges || dims[1] != 2) {
        char gs[64];
        shape_str(gs, sizeof gs, nd, dims);
        st = bad(&r, "'/tokenizer/merges' has shape %s; n_merges = %d implies (%d, 2)", gs, info.tok_merges,
                 info.tok_merges);
        goto out;
    }
    merges = malloc(sizeof *merges * 2 * (size_t)(info.tok_merges ? info.tok_merges : 1));
    if (!merges) {
        st = pb_errorf(PB_ENOMEM, "%s: out of memory for %d merges", path, info.tok_merges);
        goto out;
    }
    if (info.tok_merges > 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, merges) < 0) {
        st = bad(&r, "reading '/tokenizer/merges' failed (file truncated or corrupt)");
        goto out;
    }
    if ((st = pb_tokenizer_from_merges(tk, merges, info.tok_merges))) pb_error_context(st, "%s: /tokenizer/merges", path);
out:
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (d >= 0) H5Dclose(d);
    if (g >= 0) H5Gclose(g);
    H5Fclose(r.f);
    free(merges);
    return st;
}

pb_status pb_ckpt_load_train(const char *path, const pb_model *m, pb_adamw *opt, pb_ckpt_train *train,
                             float **losses) {
    rctx r;
    hid_t g = -1, gm = -1;
    pb_ckpt_info info;
    pb_status st = open_file(path, &r);
    *losses = NULL;
    if (st) return st;
    TRY(read_info(&r, &info));
    if (!info.has_train || (opt && !info.resumable)) {
        st = bad(&r, "holds no resumable training state (%s)",
                 info.has_train ? "a finished checkpoint: the optimizer moments were dropped at the end of training"
                                : "no /train group");
        goto out;
    }
    if (memcmp(&info.desc, &m->d, sizeof info.desc) != 0 || info.head != m->head || info.n_labels != m->n_labels) {
        st = bad(&r, "the model given does not match the checkpoint's descriptor");
        goto out;
    }
    if ((g = open_group(&r, "train", 1, &st)) < 0) goto out;
    memset(train, 0, sizeof *train);
    const char *w = "/train";
    TRY(get_long(&r, g, w, "step", 0, LONG_MAX, &train->step));
    {
        pb_status s2 = PB_OK;
        hid_t a = open_attr(&r, g, w, "rng_state", H5T_INTEGER, 4, &s2);
        if (a < 0) {
            st = s2;
            goto out;
        }
        herr_t rc = H5Aread(a, H5T_NATIVE_UINT64, train->rng.s);
        H5Aclose(a);
        if (rc < 0) {
            st = bad(&r, "attribute 'rng_state' of /train cannot be read");
            goto out;
        }
    }
    int v;
    TRY(get_f32(&r, g, w, "sched_lr", &train->sched.lr));
    TRY(get_f32(&r, g, w, "sched_min_lr_frac", &train->sched.min_lr_frac));
    TRY(get_long(&r, g, w, "sched_warmup", 0, LONG_MAX, &train->sched.warmup));
    TRY(get_long(&r, g, w, "sched_total", 0, LONG_MAX, &train->sched.total));
    TRY(get_enum(&r, g, w, "sched_decay", NAMES(g_decay_names), &v));
    train->sched.decay = (pb_decay)v;
    if (!opt) goto losses;
    TRY(get_long(&r, g, w, "adam_t", 0, LONG_MAX, &opt->t));
    TRY(get_f32(&r, g, w, "adam_lr", &opt->cfg.lr));
    TRY(get_f32(&r, g, w, "adam_beta1", &opt->cfg.beta1));
    TRY(get_f32(&r, g, w, "adam_beta2", &opt->cfg.beta2));
    TRY(get_f32(&r, g, w, "adam_eps", &opt->cfg.eps));
    TRY(get_f32(&r, g, w, "adam_weight_decay", &opt->cfg.weight_decay));
    TRY(get_f32(&r, g, w, "adam_clip_norm", &opt->cfg.clip_norm));
    if (opt->total != pb_model_trainable_count(m)) {
        st = pb_errorf(PB_EINVAL, "%s: the optimizer does not cover the model's trainable tensors", path);
        goto out;
    }
    const char *which[2] = {"adam_m", "adam_v"};
    for (int k = 0; k < 2; k++) {
        char gname[32];
        snprintf(gname, sizeof gname, "/train/%s", which[k]);
        if (H5Lexists(g, which[k], H5P_DEFAULT) <= 0 || (gm = H5Gopen2(g, which[k], H5P_DEFAULT)) < 0) {
            st = bad(&r, "group '%s' is missing (resumable checkpoints hold both AdamW moments)", gname);
            goto out;
        }
        TRY(check_names(&r, gm, gname, m->tensors, m->n_tensors, 1));
        float *base = k ? opt->v : opt->m;
        size_t off = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const pb_tensor *x = &m->tensors[i];
            if (!x->trainable) continue;
            hid_t d = open_tensor(&r, gm, gname, x, &st);
            if (d < 0) goto out;
            herr_t rc = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, base + off);
            H5Dclose(d);
            if (rc < 0) {
                st = bad(&r, "reading '%s/%s' failed (file truncated or corrupt)", gname, x->name);
                goto out;
            }
            off += x->numel;
        }
        H5Gclose(gm);
        gm = -1;
    }
losses:
    train->n_losses = info.n_losses;
    if (info.n_losses > 0) {
        *losses = malloc(sizeof(float) * (size_t)info.n_losses);
        hid_t d = H5Dopen2(g, "loss", H5P_DEFAULT);
        herr_t rc = (*losses && d >= 0) ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *losses) : -1;
        if (d >= 0) H5Dclose(d);
        if (rc < 0) {
            st = bad(&r, "reading '/train/loss' failed (file truncated or corrupt)");
            goto out;
        }
        train->losses = *losses;
    }
out:
    if (gm >= 0) H5Gclose(gm);
    if (g >= 0) H5Gclose(g);
    H5Fclose(r.f);
    if (st) {
        free(*losses);
        *losses = NULL;
    }
    return st;
}
