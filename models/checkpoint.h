/* checkpoint.h — model checkpoints in HDF5: save, inspect, load, resume.
 *
 * One HDF5 file holds a model's descriptor, tokenizer and head (attributes), every tensor of
 * its table (one float32 dataset each under /params/<name>, GPT-2-style names from
 * pb_model_layout), the recipe that produced it, a held-out evaluation, and, when the file is
 * resumable, the training state (step, data-order RNG, schedule, AdamW moments per tensor,
 * the loss curve so far). models/CHECKPOINT.md lists every name, shape and attribute; h5dump
 * and h5py read the files.
 *
 * Writes are atomic: the file is written to PATH.tmp, flushed, fsync'd, closed and renamed over
 * PATH, so a crash at any instant leaves either the old file or the new one under PATH, never
 * a half-written one. The same model, metadata and training state give a byte-identical file
 * (HDF5 object timestamps are turned off).
 *
 * Loading checks everything before it trusts anything: magic ("format" attribute), format
 * version, descriptor (must be runnable), tokenizer, head, the presence, dtype (float) and
 * shape of every tensor the descriptor implies, no unexpected tensors, and a checksum of the
 * parameter data. A bad file is refused with PB_EFORMAT and a message naming the file, what is
 * wrong and what would be accepted; truncated or garbage files never crash (HDF5's automatic
 * error printing is turned off; its failures become messages).
 *
 * Not: a general tensor store or the results file (results/ owns that); it does not know how a
 * model is trained (models/pretrain.h fills the recipe).
 */
#ifndef PB_CHECKPOINT_H
#define PB_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "optim.h"
#include "pb_error.h"
#include "pb_rng.h"
#include "tokenizer.h"

#define PB_CKPT_MAGIC "peftbench-checkpoint"
#define PB_CKPT_VERSION 1

/* How a checkpoint was pretrained. Strings are NUL-terminated; corpus is the spec as given. */
typedef struct {
    char backbone[64];      /* preset name */
    char objective[16];     /* "next-token" (decoders) or "masked-token" (encoders) */
    char tokenizer[32];     /* "byte" or "bpe:N" as asked (files without it: "byte") */
    char corpus[512];       /* "builtin", "fetched" or a file path */
    char corpus_sources[512]; /* its sources, comma-separated ("sotu,austen,..."; the file's base name) */
    uint64_t corpus_hash;   /* FNV-1a 64 of the corpus text (every document, separators included) */
    uint64_t corpus_bytes;  /* bytes of corpus text */
    uint64_t builtin_bytes; /* size asked of the built-in generator (0 unless corpus = builtin) */
    uint64_t train_docs, heldout_docs;
    uint64_t train_tokens, heldout_tokens; /* token streams (documents joined by <eos>) */
    double holdout;         /* fraction of documents held out (by hash of source and index) */
    long steps;             /* total steps of the recipe */
    uint64_t seed;          /* initialisation and data order */
    int batch, seq;         /* sequences per step, tokens per sequence */
    float lr, min_lr_frac;  /* peak learning rate, final fraction */
    long warmup;            /* linear warm-up steps */
    pb_decay decay;         /* after warm-up */
    float weight_decay, clip_norm, beta1, beta2, eps;
    float mask_prob;        /* masked-token objective: fraction of positions predicted */
    int threads;            /* thread count (results are bit-identical for a given count) */
    char git_commit[64];    /* source tree that produced the file */
} pb_recipe;

/* Held-out evaluation stored with the checkpoint. */
typedef struct {
    long step;              /* model state evaluated (steps completed) */
    double nats;            /* total negative log-likelihood */
    uint64_t tokens;        /* scored targets */
    uint64_t bytes;         /* bytes those targets encode */
    double bits_per_byte;   /* nats / ln 2 / bytes */
} pb_ckpt_eval;

/* Everything in a checkpoint except tensors. */
typedef struct {
    int version;            /* format version of the file read */
    pb_model_desc desc;
    pb_head_kind head;
    int n_labels;
    char tokenizer[16];     /* "byte" or "bpe" */
    int tok_vocab;          /* 262 + tok_merges */
    int tok_merges;         /* BPE merges stored (0 for byte) */
    const pb_tokenizer *tok; /* pb_ckpt_save: the tokenizer to store (NULL: byte); NULL after a read
                                (pb_ckpt_load_tokenizer reads it) */
    char git_commit[64];    /* build that wrote the file */
    int has_recipe;
    pb_recipe recipe;
    int has_eval;
    pb_ckpt_eval eval;
    int has_train;          /* step, RNG, schedule and loss curve present */
    int resumable;          /* AdamW moments present as well */
    long step;              /* steps completed */
    long n_losses;          /* length of the stored loss curve */
} pb_ckpt_info;

/* Training state written with a checkpoint (NULL when saving a plain model). */
typedef struct {
    long step;              /* steps completed */
    pb_rng rng;             /* data-order stream, state after `step` steps */
    pb_schedule sched;
    const pb_adamw *opt;    /* moments, segment after segment = trainable tensors in table order;
                               NULL: not resumable (final checkpoints drop the moments) */
    const float *losses;    /* (n_losses) training loss of steps 0..n_losses-1, or NULL */
    long n_losses;
} pb_ckpt_train;

/* Writes m (and info->recipe/eval when has_recipe/has_eval are set; desc, head and tokenizer
 * are taken from m) and, if train is not NULL, the training state, to path atomically. The
 * parent directory must exist. Errors: PB_EIO / PB_EHDF5 with the path. */
pb_status pb_ckpt_save(const char *path, const pb_model *m, const pb_ckpt_info *info, const pb_ckpt_train *train);

/* Reads and checks the header (magic, version, descriptor, tokenizer, head, recipe, eval,
 * training-state attributes) without touching tensors. */
pb_status pb_ckpt_read_info(const char *path, pb_ckpt_info *info);

/* Checks the file completely (as above, plus every tensor's presence, dtype, shape and the
 * data checksum), then initialises m from the stored descriptor (pb_model_init) and reads the
 * parameters into it. info may be NULL. On error m is left zeroed (nothing to free). */
pb_status pb_ckpt_load(const char *path, pb_model *m, pb_ckpt_info *info);

/* Reads the training state of a resumable checkpoint into a model loaded from the same file
 * and an optimizer initialised over its trainable tensors (pb_model_segments order): moments,
 * AdamW step count and configuration, step, RNG, schedule; *losses receives a malloc'd copy of
 * the loss curve (n_losses entries; NULL when n_losses is 0). With opt == NULL only step, RNG,
 * schedule and losses are read, which finished checkpoints hold too. */
pb_status pb_ckpt_load_train(const char *path, const pb_model *m, pb_adamw *opt, pb_ckpt_train *train,
                             float **losses);

/* Reads the checkpoint's tokenizer (byte, or BPE with its merges from /tokenizer/merges,
 * checked: shape (N, 2), integer, each merge joining earlier ids). Old files (tokenizer kind
 * "byte") give the byte tokenizer. t is overwritten; free it with pb_tokenizer_free. */
pb_status pb_ckpt_load_tokenizer(const char *path, pb_tokenizer *t);

/* Every checkpoint carries a whole-file checksum in its HDF5 user block, checked before HDF5
 * parses the file (models/CHECKPOINT.md). A tool that edits a checkpoint on purpose (the tests
 * do, to reach the semantic checks) re-computes it with this. */
pb_status pb_ckpt_reseal(const char *path);

/* FNV-1a 64 of n bytes, continued from h (start with PB_FNV_OFFSET). */
#define PB_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t pb_fnv1a64(uint64_t h, const void *data, size_t n);

/* Names used in files and messages. */
const char *pb_decay_name(pb_decay d);
const char *pb_arch_name(pb_arch a);

#endif
