/* finetune.h — one cell of a comparison: fine-tune a backbone with a PEFT method on a task and
 * measure everything DESIGN.md lists (parameters, FLOPs, memory, time, dev/test metrics).
 *
 * The same function serves `peftbench run` (one cell, printed) and the sweep (many cells,
 * recorded). Every knob is in pb_run_config; the result says what was measured.
 *
 * Encoding, by the backbone's tokenizer (a checkpoint's, byte or BPE; byte for presets;
 * models/tokenizer.h, models/TOKENIZER.md), texts encoded whole and then cut in tokens:
 *   classification, decoder:  <bos> text [<sep> text2] <eos>   pooled at the last real token
 *   classification, encoder:  <cls> text [<sep> text2] <sep>   pooled at <cls>
 *   generation (decoders):    <bos> input <sep> target <eos>    loss on target and <eos> only;
 *                             evaluation decodes greedily after <sep> until <eos> or the cap
 * Inputs longer than max_len tokens are cut (text first, then text2), counted in the result.
 * Generated ids are decoded to text by the same tokenizer before scoring (exact match, chrF...).
 * gen_max (0: from the data) is 1.5 times the longest target in bytes plus 4, in tokens: a BPE
 * token stands for at least one byte, so it is never shorter than the byte tokenizer's.
 * Evaluation (docs/STATISTICS.md): every eval_every steps (and at the end) on the whole dev
 * split (or eval_max examples); the trainable parameters of the best dev evaluation (ties: the
 * earlier one) are kept and restored after training, and the whole test split is scored once
 * with them, each example's record kept (result->ex). Test never influences a choice.
 * Training tokens are the real (task) tokens: a method's virtual tokens are not data.
 */
#ifndef PB_FINETUNE_H
#define PB_FINETUNE_H

#include <stddef.h>
#include <stdint.h>

#include "optim.h"
#include "pb_error.h"
#include "pb_flops.h"
#include "pb_mem.h"
#include "tasks/reference.h"
#include "tasks/task.h"

typedef struct {
    const char *backbone;  /* preset name (random init) or checkpoint path */
    const char *method;    /* method spec, e.g. "lora:r=8" */
    const char *task;      /* task spec, e.g. "sentiment:max_train=2000" */
    const char *data_dir;  /* NULL: pb_data_dir(NULL) */
    uint64_t seed;         /* initialisation of added tensors, data order, dropout */
    int steps;             /* optimizer steps */
    int batch;             /* sequences per step */
    int max_len;           /* tokens per sequence at most (<= the backbone's max_seq) */
    int eval_every;        /* steps between evaluations (0: only at the end) */
    int eval_max;          /* evaluate on at most this many dev/test examples (0: all) */
    int gen_max;           /* generation: at most this many generated tokens (0: from the data) */
    int group_by_length;   /* 1: batches of similar length (Hugging Face's group_by_length: each
                              shuffled epoch cut into megabatches of 50 batches, each sorted by
                              length): less padding, the same examples per epoch */
    float lr, weight_decay, warmup_frac, clip;
    pb_decay decay;
    int threads;           /* 0: leave as set */
    int verbose;           /* 1: a line per evaluation on stderr */
    const char *save_adapter; /* if set: write the trained method here (methods/ADAPTER.md) */
    /* Optional (zeroed by pb_run_defaults); used by sweeps. */
    const pb_task *task_obj;  /* a task the caller opened (read-only, shared); NULL: open `task` */
    float *loss_curve;        /* caller-owned room for the training loss of every step, or NULL */
    int loss_curve_cap;       /* its capacity; result->n_loss says how many were written */
    const int32_t *heldout;   /* held-out corpus tokens for the forgetting metric, encoded
                                 byte-level (pb_corpus_split_docs), or NULL; a BPE backbone
                                 re-encodes them with its tokenizer */
    size_t n_heldout;
    /* Called with every generated answer of every evaluation (generation tasks), or NULL: the
     * split, the example index, the generated ids (without <eos>) and their text decoded by the
     * backbone's tokenizer. Tests use it. */
    void (*on_generate)(pb_split sp, size_t i, const int32_t *ids, size_t n, const char *text, void *ud);
    void *on_generate_ud;
} pb_run_config;

#define PB_RUN_MAX_EVALS 256

typedef struct {
    pb_status status;
    char message[512];          /* on failure or divergence */
    int diverged;               /* NaN/inf loss: recorded, not fatal */
    /* parameters (Hugging Face PEFT conventions, docs/METHODS.md) */
    size_t trainable, all, adapter_bytes;
    /* FLOPs per training token, by phase; per inference token unmerged and merged (-1: cannot merge) */
    double train_flops_tok[PB_NPHASE], infer_flops_tok, infer_flops_tok_merged;
    /* memory: peak bytes per category during training, and process peak RSS */
    size_t mem_peak[PB_MEM_NCAT], mem_peak_total, peak_rss;
    /* time */
    double train_seconds, train_tok_per_s, infer_tok_per_s;
    long train_tokens;                 /* real (task) tokens, virtual tokens not included */
    /* optimizer steps of the budget the method spent before its trainable set was final
     * (sparse's Fisher warm-up: only the task head trained in them; method.h setting_up); 0 for
     * methods whose trainable set is final from the start */
    int setup_steps;
    /* quality */
    int n_metrics;
    pb_metric_id metrics[PB_TASK_MAX_METRICS];
    int select;                        /* index of the selecting metric */
    double best_dev[PB_TASK_MAX_METRICS], test_at_best[PB_TASK_MAX_METRICS];
    int best_step;
    size_t n_truncated;
    /* curves: evaluation points */
    int n_evals;
    int eval_step[PB_RUN_MAX_EVALS];
    float eval_train_loss[PB_RUN_MAX_EVALS], eval_dev[PB_RUN_MAX_EVALS];
    float eval_test[PB_RUN_MAX_EVALS]; /* NaN: test is scored once, at the best dev point */
    int n_loss;                        /* per-step losses written to cfg->loss_curve */
    /* forgetting (cfg->heldout): held-out corpus bits per byte of the backbone before and of the
     * fine-tuned model after (NaN: not measured; see pb_run_cell) */
    double heldout_bpb_before, heldout_bpb_after;
    /* test records at the best dev point (docs/STATISTICS.md), (n_ex, ex_width) floats, malloc'd
     * (pb_run_result_free): classification (predicted label, gold label); generation the
     * per-example statistics of every metric of the task in order (tasks/metrics.h). NULL when
     * the cell has no test evaluation (failed, or diverged before its first evaluation). */
    float *ex;
    size_t n_ex;
    int ex_width;
} pb_run_result;

void pb_run_defaults(pb_run_config *cfg);
/* Runs the cell. Returns PB_OK when the cell ran (diverged cells too: result->diverged); a
 * failure status (bad spec, missing data, out of memory) with result->message set.
 * Forgetting (cfg->heldout set): pb_eval_stream over the held-out tokens, with the backbone
 * before fine-tuning and with the fine-tuned model after. An LM-head cell (generation) is
 * evaluated as it runs, method attached; a classification cell through an LM head on its
 * trunk, which reflects the fine-tuning only when the method changed base weights (selective
 * methods, or a method merged into them); otherwise after is NaN. */
pb_status pb_run_cell(const pb_run_config *cfg, pb_run_result *result);
/* A reference row's cell (tasks/reference.h: majority, ngram_nb, copy_input): no backbone, no
 * training; fits on the task's training split, scores dev and test like pb_run_cell (test
 * records included; eval_max caps the test split the same way). Trainable parameters, FLOPs and
 * memory are 0. */
pb_status pb_run_reference(const pb_run_config *cfg, pb_ref_kind kind, pb_run_result *result);
/* Hugging Face's group_by_length (LengthGroupedSampler): order[0..n) is an epoch's shuffled
 * order of example indices (each index < n, len[index] its length); it is cut into megabatches
 * of 50*B examples and each is sorted by length, longest first (ties keep the shuffled order),
 * so consecutive batches of B hold examples of similar length while the megabatches keep their
 * random order. In place. */
pb_status pb_group_by_length(size_t *order, size_t n, const int *len, int B);
/* Frees what a result holds (its test records); the result can be reused. */
void pb_run_result_free(pb_run_result *result);

#endif
