/* pretrain.h — pretraining the backbones, held-out evaluation in bits per byte, and the cached
 * default backbone.
 *
 * Objectives: next-token prediction for decoders (causal); masked-token prediction for the
 * encoder variant (BERT: mask_prob of the positions are predicted; of those, 80% are replaced by
 * <mask>, 10% by a random byte, 10% left as they are). Batches are random windows of the
 * training stream (models/corpus_load.h) drawn from one sequential RNG (pb_rng) seeded from
 * the recipe's seed; that RNG, the step, the schedule and the AdamW moments are saved in every
 * periodic checkpoint, so a resumed run continues the same loss curve bit for bit (for the
 * same thread count). The same recipe, seed and thread count give a byte-identical checkpoint.
 *
 * Evaluation (pb_eval_stream) is the one function behind the held-out loss stored in
 * checkpoints, `peftbench score`, and later the forgetting metric (change of held-out corpus
 * loss after fine-tuning): non-overlapping windows of T tokens; decoders score every target that
 * stands for bytes (not <eos>), and bits per byte is the sum of their negative log-likelihoods
 * in bits divided by the bytes they stand for — the UTF-8 bytes of the scored documents — so
 * it is comparable across tokenizers (models/TOKENIZER.md); encoders score a fixed, hash-chosen mask_prob of positions (always <mask>), which
 * is masked-token bits per byte and not comparable with a decoder's number.
 *
 * Not: fine-tuning (harness/, methods/) or the command line (harness/cmd_pretrain.c).
 */
#ifndef PB_PRETRAIN_H
#define PB_PRETRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "corpus_load.h"
#include "tokenizer.h"
#include "model.h"
#include "pb_error.h"

/* ---- evaluation --------------------------------------------------------------------------- */

typedef struct {
    double nats;          /* total negative log-likelihood of the scored targets */
    uint64_t tokens;      /* scored targets */
    uint64_t bytes;       /* bytes the scored targets stand for (specials such as <eos> are not scored) */
    double bits_per_byte; /* nats / ln 2 / bytes */
    double perplexity;    /* exp(nats / tokens) */
} pb_eval;

/* Scores tokens[0..n) with m (an LM head) in non-overlapping windows of T (<= max_seq) tokens,
 * B windows per forward. Decoders: target i (1 <= i < n) is predicted from tokens[start..i) of
 * its window; only targets that stand for bytes are scored (the byte tokenizer: ids < 256). Encoders: positions chosen by
 * pb_hash_uniform(seed PB_EVAL_MASK_SEED, i) < mask_prob are replaced by <mask> and scored.
 * logprob (n floats, may be NULL) receives the natural-log probability of each scored token and
 * NAN elsewhere. max_tokens > 0 stops after that many tokens of the stream. */
#define PB_EVAL_MASK_SEED 0x6d61736bull
pb_status pb_eval_stream(pb_model *m, const int32_t *tokens, size_t n, int T, int B, float mask_prob,
                         size_t max_tokens, pb_eval *out, float *logprob);
/* The same for tokens of tok (NULL: byte); tok's vocabulary must be the model's. */
pb_status pb_eval_stream_tok(pb_model *m, const pb_tokenizer *tok, const int32_t *tokens, size_t n, int T, int B,
                             float mask_prob, size_t max_tokens, pb_eval *out, float *logprob);

/* Encodes text as the corpus streams do (<eos> first, then the bytes) into a malloc'd array. */
pb_status pb_text_tokens(const char *text, size_t len, int32_t **tokens, size_t *n);
/* The same with tok (NULL: byte). */
pb_status pb_text_tokens_tok(const pb_tokenizer *tok, const char *text, size_t len, int32_t **tokens, size_t *n);

/* ---- pretraining -------------------------------------------------------------------------- */

typedef struct {
    char backbone[64];      /* preset (models/desc.h) */
    char corpus[512];       /* "builtin", "fetched" or a text file */
    char tokenizer[32];     /* "byte" or "bpe:N" (default PB_DEFAULT_TOKENIZER): N merges learned from the training documents */
    char data_dir[1024];    /* where "fetched" looks (DATA_DIR/corpus/) */
    size_t builtin_bytes;   /* size of the built-in corpus */
    double holdout;         /* fraction of documents held out (0.05) */
    long steps;
    uint64_t seed;
    int batch, seq;
    float lr, min_lr_frac, weight_decay, clip_norm;
    long warmup;            /* < 0: steps / 20 */
    pb_decay decay;
    float mask_prob;        /* masked-token objective (encoders), 0.15 */
    long save_every;        /* periodic resumable checkpoint every N steps (0: only at the end) */
    size_t eval_tokens;     /* cap on held-out tokens evaluated at the end (0: all) */
    int eval_batch;         /* windows per evaluation forward */
    int threads;            /* recorded in the recipe (the caller sets the thread pool) */
} pb_pretrain_config;

/* Defaults: the default backbone's recipe (PB_DEFAULT_BACKBONE on the fetched corpus, PB_DEFAULT_TOKENIZER,
 * PB_DEFAULT_STEPS steps of 8 x 256 tokens, lr 2e-3, seed 1, AdamW betas (0.9, 0.95), eps 1e-8,
 * weight decay 0.1, clip 1.0, cosine to 10% after a 5% warm-up, holdout 0.05, mask 0.15,
 * checkpoint every 500 steps); data_dir empty. */
void pb_pretrain_defaults(pb_pretrain_config *cfg);

/* What the loop reports to its caller once per step and around saves. */
typedef enum { PB_PT_STEP, PB_PT_SAVED, PB_PT_EVAL } pb_pretrain_event;
typedef struct {
    pb_pretrain_event event;
    long step, steps;       /* steps completed / total */
    long first_step;        /* step this session started from (resume) */
    float loss, lr, grad_norm;
    double seconds;         /* since this session's first step */
    double tokens_per_s;    /* this session */
    double eta_s;           /* estimate for the remaining steps */
} pb_pretrain_progress;
/* Return 0 to continue, PB_PT_STOP_SAVE to stop after saving a resumable checkpoint (an
 * interrupt handled gracefully), PB_PT_STOP_NOW to stop without saving (a simulated crash). */
enum { PB_PT_STOP_SAVE = 1, PB_PT_STOP_NOW = 2 };
typedef int (*pb_pretrain_cb)(const pb_pretrain_progress *p, void *ud);

typedef struct {
    long first_step;        /* 0, or the step resumed from */
    long steps_done;        /* steps completed when the loop ended */
    int stopped;            /* the callback stopped the run */
    int complete;           /* steps_done == steps and the final checkpoint is written */
    int resumed_threads;    /* thread count recorded in the resumed checkpoint (0 if fresh) */
    float *losses;          /* (n_losses) whole loss curve, including resumed steps; caller frees */
    long n_losses;
    pb_eval heldout;        /* final held-out evaluation (when complete) */
    pb_recipe recipe;
    size_t n_params;
} pb_pretrain_result;

/* What to do when out_path exists: refuse (NEW), continue it if it is a checkpoint of the same
 * recipe (RESUME; a finished one is reported, not retrained), or replace it (OVERWRITE; the old
 * file stays until the first save replaces it atomically). A missing out_path starts afresh. */
enum { PB_PT_NEW = 0, PB_PT_RESUME = 1, PB_PT_OVERWRITE = 2 };

/* Checks cfg (known backbone, sizes, seq <= max_seq, rates) and, if out_path is not NULL, that
 * out_path can be written under mode (not a directory, its directory writable, not an existing
 * file unless RESUME or OVERWRITE) — everything that can be refused before the corpus is read.
 * pb_pretrain_run does the same checks first. */
pb_status pb_pretrain_check(const pb_pretrain_config *cfg, const char *out_path, int mode);

/* Validates cfg against the preset and the corpus, then trains (or resumes, see above) and
 * writes out_path: resumable checkpoints every save_every steps and when stopped with
 * PB_PT_STOP_SAVE; at the end a final checkpoint (parameters, recipe, loss curve, held-out
 * evaluation; no optimizer moments).
 * Errors name what is wrong: unknown backbone, seq > max_seq, a corpus shorter than one window,
 * a resume of a different recipe. corpus may be NULL (then it is opened from cfg). res may be
 * NULL. */
pb_status pb_pretrain_run(const pb_pretrain_config *cfg, const pb_corpus *corpus, const char *out_path, int mode,
                          pb_pretrain_cb cb, void *ud, pb_pretrain_result *res);
void pb_pretrain_result_free(pb_pretrain_result *res);

/* ---- the default backbone ----------------------------------------------------------------- */

/* The recipe of the default backbone: pb_pretrain_defaults with data_dir set. */
#define PB_DEFAULT_BACKBONE "mini"
/* bpe:4096 won at equal training time (models/TOKENIZER.md "Decision"); its step costs 1.313
 * times the byte tokenizer's on `mini` (EXPERIMENTS.md "Tokenizer: byte vs BPE at the same
 * training time"), so 3600 byte steps / 1.313 = 2742 steps keep the recipe's training time. */
#define PB_DEFAULT_TOKENIZER "bpe:4096"
#define PB_DEFAULT_STEPS 2742
void pb_default_recipe(pb_pretrain_config *cfg, const char *data_dir);

/* Path of the cached default backbone (DATA_DIR/backbones/<preset>[-<tokenizer>]-<steps>s-seed<seed>-
 * <hash of the recipe>.h5, the tokenizer written without ':' and left out for byte, e.g.
 * mini-bpe4096-2742s-seed1-XXXXXXXX.h5),
 * pretraining it with pb_default_recipe if it is missing or unfinished (resuming an interrupted
 * run). A lock file (flock) serialises concurrent callers. cb/ud report progress (may be NULL).
 * Needs the fetched corpus; errors say to run `peftbench data fetch --only corpus`. */
pb_status pb_default_backbone_path(const char *data_dir, int threads, char *out, size_t cap, pb_pretrain_cb cb,
                                   void *ud);

/* The same path, computed only (nothing is read, written or trained). */
pb_status pb_default_backbone_file(const char *data_dir, char *out, size_t cap);

/* What is at such a path: a finished checkpoint (READY), an interrupted pretraining that
 * pb_default_backbone_path resumes (PARTIAL), nothing (ABSENT), or a file that is not a readable
 * checkpoint (UNREADABLE: delete it to pretrain again). Reads only the checkpoint's header. */
typedef enum { PB_BACKBONE_READY, PB_BACKBONE_PARTIAL, PB_BACKBONE_ABSENT, PB_BACKBONE_UNREADABLE } pb_backbone_state;
pb_backbone_state pb_default_backbone_state(const char *path);

#endif
