/* pretrain.c — the pretraining loop, held-out evaluation and the cached default backbone
 * (see pretrain.h).
 *
 * Determinism: all randomness of a run comes from the init seed (pb_model_init) and one data
 * stream (pb_rng, seeded from pb_hash_u64(seed, 1)) consumed only by batch sampling, in step
 * order; evaluation draws no random numbers (encoder masks are pb_hash_uniform of the
 * position). So saving the data stream's state with the step, schedule and AdamW moments is
 * all a resumed run needs to repeat the uninterrupted one bit for bit.
 */
#include "pb_fs.h"
#include "pretrain.h"
#include "bpe.h"
#include "lm.h"
#include "pb_mem.h"
#include "tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pb_gitinfo.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- evaluation --------------------------------------------------------------------------- */

pb_status pb_text_tokens(const char *text, size_t len, int32_t **tokens, size_t *n) {
    return pb_text_tokens_tok(NULL, text, len, tokens, n);
}

pb_status pb_text_tokens_tok(const pb_tokenizer *tok, const char *text, size_t len, int32_t **tokens, size_t *n) {
    *tokens = malloc(sizeof(int32_t) * (len + 1));
    if (!*tokens) return pb_errorf(PB_ENOMEM, "out of memory for %zu tokens", len + 1);
    (*tokens)[0] = PB_TOK_EOS;
    *n = 1 + (tok ? pb_tokenizer_encode(tok, *tokens + 1, len, text, len) : pb_tok_encode(*tokens + 1, len, text, len));
    return PB_OK;
}

pb_status pb_eval_stream(pb_model *m, const int32_t *tokens, size_t n, int T, int B, float mask_prob,
                         size_t max_tokens, pb_eval *out, float *logprob) {
    return pb_eval_stream_tok(m, NULL, tokens, n, T, B, mask_prob, max_tokens, out, logprob);
}

pb_status pb_eval_stream_tok(pb_model *m, const pb_tokenizer *tok, const int32_t *tokens, size_t n, int T, int B,
                             float mask_prob, size_t max_tokens, pb_eval *out, float *logprob) {
    pb_tokenizer byte;
    if (!tok) {
        pb_tokenizer_init_byte(&byte);
        tok = &byte;
    }
    if (tok->vocab != m->d.vocab)
        return pb_errorf(PB_EINVAL, "evaluation: the tokenizer's vocabulary (%d) differs from the model's (%d)",
                         tok->vocab, m->d.vocab);
    memset(out, 0, sizeof *out);
    if (m->head != PB_HEAD_LM) return pb_errorf(PB_EINVAL, "held-out evaluation needs a model with the LM head");
    if (T < 1 || T > m->d.max_seq)
        return pb_errorf(PB_EINVAL, "evaluation window %d is outside [1, %d] (the backbone's max_seq)", T, m->d.max_seq);
    if (B < 1) B = 1;
    if (max_tokens > 0 && max_tokens < n) n = max_tokens;
    if (logprob)
        for (size_t i = 0; i < n; i++) logprob[i] = NAN;
    const int causal = m->d.causal;
    /* Decoders: window w has ids [wT, wT+T) and targets [wT+1, wT+T]; encoders: ids = targets'
     * positions [wT, wT+T). */
    size_t span = causal ? (n > 1 ? n - 1 : 0) : n;
    size_t windows = (span + (size_t)T - 1) / (size_t)T;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * T), *tg = malloc(sizeof(int32_t) * (size_t)B * T);
    if (!ids || !tg) {
        free(ids);
        free(tg);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    pb_status st = PB_OK;
    double nats = 0.0;
    uint64_t count = 0, bytes = 0;
    for (size_t w0 = 0; w0 < windows; w0 += (size_t)B) {
        int nb = (int)((windows - w0) < (size_t)B ? windows - w0 : (size_t)B);
        for (int b = 0; b < nb; b++) {
            size_t s = (w0 + (size_t)b) * (size_t)T;
            for (int t = 0; t < T; t++) {
                size_t i = s + (size_t)t, j = causal ? i + 1 : i;
                int32_t x = i < n ? tokens[i] : PB_TOK_PAD;
                /* Targets: every token that stands for bytes (not specials such as <eos>). */
                int32_t y = j < n && pb_tokenizer_token_bytes(tok, tokens[j], NULL) > 0 ? tokens[j] : -1;
                if (!causal) {
                    if (y >= 0 && pb_hash_uniform(PB_EVAL_MASK_SEED, (uint64_t)i) < mask_prob) x = PB_TOK_MASK;
                    else y = -1;
                }
                ids[(size_t)b * T + t] = x;
                tg[(size_t)b * T + t] = y;
            }
        }
        pb_batch batch = {.B = nb, .T = T, .ids = ids, .mask = NULL, .targets = tg};
        float loss;
        if ((st = pb_model_forward(m, &batch, 0, &loss))) break;
        /* Losses are per model position: (B, Tm) with Pe virtual tokens (prompt-tuning hooks) first. */
        const size_t Tm = (size_t)m->dim.Tm, Pe = (size_t)m->dim.Pe;
        for (int b = 0; b < nb; b++) {
            size_t s = (w0 + (size_t)b) * (size_t)T;
            for (int t = 0; t < T; t++) {
                if (tg[(size_t)b * T + t] < 0) continue;
                float l = m->losses[(size_t)b * Tm + Pe + (size_t)t];
                nats += l;
                count++;
                bytes += pb_tokenizer_token_bytes(tok, tg[(size_t)b * T + t], NULL);
                if (logprob) logprob[s + (size_t)t + (causal ? 1 : 0)] = -l;
            }
        }
    }
    free(ids);
    free(tg);
    if (st) return st;
    out->nats = nats;
    out->tokens = count;
    out->bytes = bytes; /* equal to count for the byte tokenizer */
    out->bits_per_byte = bytes ? nats / log(2.0) / (double)bytes : NAN;
    out->perplexity = count ? exp(nats / (double)count) : NAN;
    return PB_OK;
}

/* ---- configuration ------------------------------------------------------------------------ */

void pb_pretrain_defaults(pb_pretrain_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->backbone, sizeof cfg->backbone, "%s", PB_DEFAULT_BACKBONE);
    snprintf(cfg->corpus, sizeof cfg->corpus, "fetched");
    snprintf(cfg->tokenizer, sizeof cfg->tokenizer, "%s", PB_DEFAULT_TOKENIZER);
    cfg->builtin_bytes = 2000000;
    cfg->holdout = 0.05;
    /* The default backbone's recipe (EXPERIMENTS.md "Pretrained backbones"): the byte recipe's
     * 3600 steps take about 14 minutes at the planned 120 GFLOP/s (10.1 min measured on a quiet
     * 2-core machine) with `mini`, and
     * PB_DEFAULT_STEPS scales them by the measured step-time ratio of bpe:4096 to byte (1.313,
     * pretrain.h) to keep that time; batch 8 and lr 2e-3 won at equal tokens against batch 16
     * and lr 1e-3 / 4e-3 (measured with the byte tokenizer). */
    cfg->steps = PB_DEFAULT_STEPS;
    cfg->seed = 1;
    cfg->batch = 8;
    cfg->seq = 256;
    cfg->lr = 2e-3f;
    cfg->min_lr_frac = 0.1f;
    cfg->weight_decay = 0.1f;
    cfg->clip_norm = 1.0f;
    cfg->warmup = -1;
    cfg->decay = PB_DECAY_COSINE;
    cfg->mask_prob = 0.15f;
    cfg->save_every = 500;
    cfg->eval_tokens = 0;
    cfg->eval_batch = 8;
    cfg->threads = 0;
}

static void backbone_names(char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; pb_backbone_at(i); i++) {
        int k = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", pb_backbone_at(i)->name);
        if (k < 0 || (size_t)k >= cap - used) return;
        used += (size_t)k;
    }
}

static pb_status check_config(const pb_pretrain_config *c, const pb_model_desc **dout) {
    const pb_model_desc *d = pb_backbone_find(c->backbone);
    if (!d) {
        char names[512];
        backbone_names(names, sizeof names);
        return pb_errorf(PB_EINVAL, "unknown backbone '%s' (accepted: %s)", c->backbone, names);
    }
    pb_tokenizer_kind tk;
    int tn;
    pb_status st = pb_tokenizer_parse_spec(c->tokenizer[0] ? c->tokenizer : "byte", &tk, &tn);
    if (st) return st;
    if (c->steps < 1) return pb_errorf(PB_EINVAL, "steps %ld: must be at least 1", c->steps);
    if (c->batch < 1) return pb_errorf(PB_EINVAL, "batch %d: must be at least 1", c->batch);
    if (c->seq < 2 || c->seq > d->max_seq)
        return pb_errorf(PB_EINVAL, "sequence length %d is outside what backbone '%s' accepts: 2 to %d (its max_seq)",
                         c->seq, d->name, d->max_seq);
    if (!(c->lr > 0.0f) || !isfinite(c->lr)) return pb_errorf(PB_EINVAL, "learning rate %g: must be positive", c->lr);
    if (!(c->holdout >= 0.0 && c->holdout <= 0.5))
        return pb_errorf(PB_EINVAL, "holdout %g: accepted 0 to 0.5", c->holdout);
    if (!d->causal && !(c->mask_prob > 0.0f && c->mask_prob <= 1.0f))
        return pb_errorf(PB_EINVAL, "mask probability %g: accepted (0, 1]", c->mask_prob);
    if (c->save_every < 0) return pb_errorf(PB_EINVAL, "save-every %ld: must be 0 (end only) or positive", c->save_every);
    *dout = d;
    return PB_OK;
}

static long warmup_of(const pb_pretrain_config *c) { return c->warmup >= 0 ? c->warmup : c->steps / 20; }

static void make_recipe(pb_recipe *r, const pb_pretrain_config *c, const pb_model_desc *d, const pb_corpus *corpus,
                        const pb_corpus_split *sp) {
    memset(r, 0, sizeof *r);
    snprintf(r->backbone, sizeof r->backbone, "%s", c->backbone);
    snprintf(r->objective, sizeof r->objective, "%s", d->causal ? "next-token" : "masked-token");
    snprintf(r->tokenizer, sizeof r->tokenizer, "%s", c->tokenizer[0] ? c->tokenizer : "byte");
    snprintf(r->corpus, sizeof r->corpus, "%s", c->corpus);
    size_t used = 0;
    for (int i = 0; i < corpus->n_sources && used + 1 < sizeof r->corpus_sources; i++) {
        int k = snprintf(r->corpus_sources + used, sizeof r->corpus_sources - used, "%s%s", i ? "," : "",
                         corpus->sources[i]);
        if (k < 0) break;
        used += (size_t)k;
    }
    r->corpus_hash = corpus->hash;
    r->corpus_bytes = corpus->len;
    r->builtin_bytes = corpus->builtin_bytes;
    r->train_docs = sp->train_docs;
    r->heldout_docs = sp->heldout_docs;
    r->train_tokens = sp->n_train;
    r->heldout_tokens = sp->n_heldout;
    r->holdout = c->holdout;
    r->steps = c->steps;
    r->seed = c->seed;
    r->batch = c->batch;
    r->seq = c->seq;
    r->lr = c->lr;
    r->min_lr_frac = c->min_lr_frac;
    r->warmup = warmup_of(c);
    r->decay = c->decay;
    r->weight_decay = c->weight_decay;
    r->clip_norm = c->clip_norm;
    r->beta1 = 0.9f;
    r->beta2 = 0.95f;
    r->eps = 1e-8f;
    r->mask_prob = d->causal ? 0.0f : c->mask_prob;
    r->threads = c->threads;
    snprintf(r->git_commit, sizeof r->git_commit, "%s", PB_GIT_COMMIT);
}

/* Names the first field in which a stored recipe differs from the one asked for (the fields
 * that decide the loss curve; threads, git commit and paths are not among them). */
static int recipe_diff(const pb_recipe *a, const pb_recipe *b, char *buf, size_t cap) {
#define DIFF_S(f)                                                                                     \
    if (strcmp(a->f, b->f)) return snprintf(buf, cap, "%s is '%s' there and '%s' here", #f, a->f, b->f), 1;
#define DIFF_N(f, fmt, cast)                                                                          \
    if (a->f != b->f) return snprintf(buf, cap, "%s is " fmt " there and " fmt " here", #f, (cast)a->f, (cast)b->f), 1;
    DIFF_S(backbone) DIFF_S(objective) DIFF_S(tokenizer) DIFF_N(corpus_hash, "%016llx", unsigned long long)
    DIFF_N(corpus_bytes, "%llu", unsigned long long) DIFF_N(holdout, "%g", double) DIFF_N(steps, "%ld", long)
    DIFF_N(seed, "%llu", unsigned long long) DIFF_N(batch, "%d", int) DIFF_N(seq, "%d", int)
    DIFF_N(lr, "%g", double) DIFF_N(min_lr_frac, "%g", double) DIFF_N(warmup, "%ld", long)
    DIFF_N(decay, "%d", int) DIFF_N(weight_decay, "%g", double) DIFF_N(clip_norm, "%g", double)
    DIFF_N(beta1, "%g", double) DIFF_N(beta2, "%g", double) DIFF_N(eps, "%g", double)
    DIFF_N(mask_prob, "%g", double)
#undef DIFF_S
#undef DIFF_N
    return 0;
}

/* One training batch from the stream: next-token windows (decoders) or BERT masking (encoders). */
static void sample_batch(int32_t *ids, int32_t *tg, const int32_t *tok, size_t n, int B, int T, int causal,
                         float mask_prob, int vocab, pb_rng *rng) {
    if (causal) {
        pb_lm_sample(ids, tg, tok, n, B, T, rng);
        return;
    }
    for (int b = 0; b < B; b++) {
        size_t s = (size_t)pb_rng_below(rng, n - (size_t)T + 1);
        for (int t = 0; t < T; t++) {
            int32_t x = tok[s + (size_t)t];
            size_t k = (size_t)b * T + t;
            ids[k] = x;
            tg[k] = -1;
            if (pb_rng_uniform(rng) >= mask_prob) continue;
            tg[k] = x;
            float u = pb_rng_uniform(rng);
            if (u < 0.8f) ids[k] = PB_TOK_MASK;
            else if (u < 0.9f) { /* a random non-special token (a random byte for the byte tokenizer) */
                int32_t r = (int32_t)pb_rng_below(rng, (uint64_t)(vocab - (PB_TOK_VOCAB - 256)));
                ids[k] = r < 256 ? r : r + (PB_TOK_VOCAB - 256);
            }
        }
    }
}

void pb_pretrain_result_free(pb_pretrain_result *res) {
    free(res->losses);
    res->losses = NULL;
    res->n_losses = 0;
}

/* The tokenizer of a run: byte, or BPE learned from the training documents of the split. */
static pb_status make_tokenizer(const pb_pretrain_config *cfg, const pb_corpus *c, pb_tokenizer *tok) {
    pb_tokenizer_kind kind;
    int n_merges;
    pb_tokenizer_init_byte(tok);
    pb_status st = pb_tokenizer_parse_spec(cfg->tokenizer[0] ? cfg->tokenizer : "byte", &kind, &n_merges);
    if (st || kind == PB_TOKENIZER_BYTE) return st;
    unsigned char *held = calloc(c->n_docs ? c->n_docs : 1, 1);
    pb_text_span *spans = malloc(sizeof *spans * (c->n_docs ? c->n_docs : 1));
    if (!held || !spans) {
        free(held);
        free(spans);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    size_t k = 0;
    if (!(st = pb_corpus_heldout_flags(c, cfg->holdout, held))) {
        for (size_t i = 0; i < c->n_docs; i++)
            if (!held[i]) spans[k++] = (pb_text_span){c->text + c->docs[i].off, c->docs[i].len};
        st = pb_bpe_learn(tok, spans, k, n_merges);
    }
    free(held);
    free(spans);
    return st;
}

static pb_status save_state(const char *path, const pb_model *m, const pb_ckpt_info *info, long step,
                            const pb_rng *rng, const pb_schedule *sched, const pb_adamw *opt, const float *losses) {
    pb_ckpt_train tr = {.step = step, .rng = *rng, .sched = *sched, .opt = opt, .losses = losses, .n_losses = step};
    return pb_ckpt_save(path, m, info, &tr);
}

pb_status pb_pretrain_check(const pb_pretrain_config *cfg, const char *out_path, int mode) {
    const pb_model_desc *d = NULL;
    pb_status st = check_config(cfg, &d);
    if (st || !out_path) return st;
    /* The output must be a writable file path; an existing file is only replaced by --resume. */
    struct stat sb;
    int exists = stat(out_path, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode))
        return pb_errorf(PB_EINVAL, "%s: is a directory; -o takes a checkpoint file name (e.g. %s/%s.h5)", out_path,
                         out_path, cfg->backbone);
    {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", out_path);
        char *slash = strrchr(dir, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
        if (access(dir, W_OK) != 0)
            return pb_errorf(PB_EIO, "%s: cannot write in directory %s: %s", out_path, dir, strerror(errno));
    }
    if (exists && mode == PB_PT_NEW)
        return pb_errorf(PB_EINVAL, "%s exists: pass --resume to continue it, --force to replace it, or choose "
                         "another -o", out_path);
    return PB_OK;
}

pb_status pb_pretrain_run(const pb_pretrain_config *cfg, const pb_corpus *corpus_in, const char *out_path, int mode,
                          pb_pretrain_cb cb, void *ud, pb_pretrain_result *res_out) {
    pb_pretrain_result res_local, *res = res_out ? res_out : &res_local;
    memset(res, 0, sizeof *res);
    const pb_model_desc *d = NULL;
    pb_status st = check_config(cfg, &d);
    if (st || (st = pb_pretrain_check(cfg, out_path, mode))) return st;
    int exists = access(out_path, F_OK) == 0;

    pb_corpus corpus_own;
    const pb_corpus *corpus = corpus_in;
    if (!corpus) {
        if ((st = pb_corpus_open(&corpus_own, cfg->corpus, cfg->data_dir, cfg->builtin_bytes))) return st;
        corpus = &corpus_own;
    }
    pb_corpus_split sp;
    memset(&sp, 0, sizeof sp);
    pb_tokenizer tok;
    pb_tokenizer_init_byte(&tok);
    pb_model_desc dv = *d; /* the preset with the tokenizer's vocabulary */
    pb_model m;
    memset(&m, 0, sizeof m);
    pb_adamw opt;
    memset(&opt, 0, sizeof opt);
    int32_t *ids = NULL, *tg = NULL;
    float *losses = NULL;
    if ((st = make_tokenizer(cfg, corpus, &tok))) goto done_corpus;
    dv.vocab = tok.vocab;
    d = &dv;
    if ((st = pb_corpus_split_docs_tok(corpus, cfg->holdout, &tok, &sp))) goto done_corpus;
    if (sp.n_train < (size_t)cfg->seq + 2) {
        st = pb_errorf(PB_EDATA, "corpus '%s' gives %zu training tokens (%zu documents), fewer than one window of "
                       "%d+1 tokens: use a longer text or a smaller --seq", cfg->corpus, sp.n_train, sp.train_docs,
                       cfg->seq);
        goto done;
    }

    pb_ckpt_info info;
    memset(&info, 0, sizeof info);
    make_recipe(&info.recipe, cfg, d, corpus, &sp);
    info.has_recipe = 1;
    info.tok = &tok;
    pb_adamw_config oc = pb_adamw_defaults();
    oc.lr = cfg->lr;
    oc.beta1 = info.recipe.beta1;
    oc.beta2 = info.recipe.beta2;
    oc.eps = info.recipe.eps;
    oc.weight_decay = cfg->weight_decay;
    oc.clip_norm = cfg->clip_norm;
    pb_schedule sched = {.lr = cfg->lr, .min_lr_frac = cfg->min_lr_frac, .warmup = warmup_of(cfg),
                         .total = cfg->steps, .decay = cfg->decay};
    pb_rng rng;
    pb_rng_seed(&rng, pb_hash_u64(cfg->seed, 1));
    long first = 0;
    losses = calloc((size_t)cfg->steps, sizeof *losses);
    ids = malloc(sizeof *ids * (size_t)cfg->batch * (size_t)cfg->seq);
    tg = malloc(sizeof *tg * (size_t)cfg->batch * (size_t)cfg->seq);
    if (!losses || !ids || !tg) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto done;
    }

    if (exists && mode == PB_PT_RESUME) {
        pb_ckpt_info old;
        if ((st = pb_ckpt_read_info(out_path, &old))) goto done;
        char why[512];
        if (!old.has_recipe || !old.has_train) {
            st = pb_errorf(PB_EINVAL, "%s: cannot resume: it holds no pretraining state (not written by `peftbench "
                           "pretrain`)", out_path);
            goto done;
        }
        if (recipe_diff(&old.recipe, &info.recipe, why, sizeof why)) {
            st = pb_errorf(PB_EINVAL, "%s: cannot resume: it was pretrained with another recipe (%s); resume with "
                           "the same options, or start over with another -o (or --force)", out_path, why);
            goto done;
        }
        res->resumed_threads = old.recipe.threads;
        {
            pb_tokenizer stored;
            if ((st = pb_ckpt_load_tokenizer(out_path, &stored))) goto done;
            int same = stored.kind == tok.kind && stored.n_merges == tok.n_merges &&
                       (!tok.n_merges || !memcmp(stored.merges, tok.merges, sizeof(int32_t) * 2 * (size_t)tok.n_merges));
            pb_tokenizer_free(&stored);
            if (!same) {
                st = pb_errorf(PB_EINVAL, "%s: cannot resume: its stored tokenizer differs from the one learned now "
                               "from the same corpus and recipe", out_path);
                goto done;
            }
        }
        if ((st = pb_ckpt_load(out_path, &m, &old))) goto done;
        if (memcmp(&m.d, d, sizeof *d) != 0) {
            st = pb_errorf(PB_EINVAL, "%s: cannot resume: backbone '%s' has changed since the file was written",
                           out_path, d->name);
            goto done;
        }
        if ((st = pb_model_optimizer(&m, &oc, &opt))) goto done;
        pb_ckpt_train tr;
        float *old_losses = NULL;
        if ((st = pb_ckpt_load_train(out_path, &m, old.resumable ? &opt : NULL, &tr, &old_losses))) goto done;
        if (tr.n_losses != tr.step || tr.step > cfg->steps) {
            free(old_losses);
            st = pb_errorf(PB_EFORMAT, "%s: the stored loss curve (%ld) does not match the step (%ld)", out_path,
                           tr.n_losses, tr.step);
            goto done;
        }
        if (tr.n_losses) memcpy(losses, old_losses, sizeof *losses * (size_t)tr.n_losses);
        free(old_losses);
        first = tr.step;
        rng = tr.rng;
        sched = tr.sched;
        if (!old.resumable && first < cfg->steps) {
            st = pb_errorf(PB_EFORMAT, "%s: stopped at step %ld of %ld without optimizer state; cannot resume",
                           out_path, first, cfg->steps);
            goto done;
        }
        if (first == cfg->steps) { /* already complete */
            res->first_step = res->steps_done = first;
            res->complete = 1;
            if (old.has_eval) {
                res->heldout.nats = old.eval.nats;
                res->heldout.tokens = old.eval.tokens;
                res->heldout.bytes = old.eval.bytes;
                res->heldout.bits_per_byte = old.eval.bits_per_byte;
                res->heldout.perplexity = old.eval.tokens ? exp(old.eval.nats / (double)old.eval.tokens) : NAN;
            }
            goto finish;
        }
    } else {
        if ((st = pb_model_init(&m, d, PB_HEAD_LM, 0, cfg->seed))) goto done;
        if ((st = pb_model_optimizer(&m, &oc, &opt))) goto done;
    }
    res->first_step = first;

    /* The loop. */
    const int B = cfg->batch, T = cfg->seq;
    double t0 = now_s();
    long step = first;
    pb_pretrain_progress pr = {.event = PB_PT_STEP, .steps = cfg->steps, .first_step = first};
    while (step < cfg->steps) {
        sample_batch(ids, tg, sp.train, sp.n_train, B, T, d->causal, cfg->mask_prob, d->vocab, &rng);
        pb_batch b = {.B = B, .T = T, .ids = ids, .mask = NULL, .targets = tg};
        float loss;
        pb_model_zero_grad(&m);
        if ((st = pb_model_forward(&m, &b, 1, &loss))) goto done;
        if (!isfinite(loss)) {
            st = pb_errorf(PB_EDIVERGED, "the training loss is %g at step %ld; lower --lr (the last periodic "
                           "checkpoint, if any, is kept)", loss, step + 1);
            goto done;
        }
        pb_model_backward(&m);
        float lr = pb_schedule_lr(&sched, step);
        float norm = pb_adamw_step(&opt, lr);
        losses[step] = loss;
        step++;
        double el = now_s() - t0;
        pr.event = PB_PT_STEP;
        pr.step = step;
        pr.loss = loss;
        pr.lr = lr;
        pr.grad_norm = norm;
        pr.seconds = el;
        pr.tokens_per_s = el > 0 ? (double)(step - first) * B * T / el : 0.0;
        pr.eta_s = step > first ? el / (double)(step - first) * (double)(cfg->steps - step) : 0.0;
        int rc = cb ? cb(&pr, ud) : 0;
        res->steps_done = step;
        if (rc == PB_PT_STOP_NOW) {
            res->stopped = 1;
            break;
        }
        if (step < cfg->steps && (rc == PB_PT_STOP_SAVE || (cfg->save_every > 0 && step % cfg->save_every == 0))) {
            if ((st = save_state(out_path, &m, &info, step, &rng, &sched, &opt, losses))) goto done;
            pr.event = PB_PT_SAVED;
            if (cb) cb(&pr, ud);
        }
        if (rc == PB_PT_STOP_SAVE) {
            res->stopped = 1;
            break;
        }
    }
    if (step == cfg->steps && !res->stopped) {
        /* Final: held-out evaluation, then a checkpoint without the optimizer moments. */
        pr.event = PB_PT_EVAL;
        if (cb) cb(&pr, ud);
        if (sp.n_heldout > 1) {
            pb_eval ev;
            if ((st = pb_eval_stream_tok(&m, &tok, sp.heldout, sp.n_heldout, T, cfg->eval_batch,
                                         info.recipe.mask_prob, cfg->eval_tokens, &ev, NULL)))
                goto done;
            res->heldout = ev;
            info.has_eval = 1;
            info.eval = (pb_ckpt_eval){.step = step, .nats = ev.nats, .tokens = ev.tokens, .bytes = ev.bytes,
                                       .bits_per_byte = ev.bits_per_byte};
        } else {
            res->heldout.bits_per_byte = NAN;
        }
        if ((st = save_state(out_path, &m, &info, step, &rng, &sched, NULL, losses))) goto done;
        pr.event = PB_PT_SAVED;
        if (cb) cb(&pr, ud);
        res->complete = 1;
    }
finish:
    res->recipe = info.recipe;
    info.tok = NULL;
    res->n_params = m.n_params;
    res->n_losses = res->steps_done;
    res->losses = losses;
    losses = NULL;
done:
done_corpus:
    pb_corpus_split_free(&sp);
    pb_tokenizer_free(&tok);
    pb_adamw_free(&opt);
    if (m.params) pb_model_free(&m);
    free(ids);
    free(tg);
    free(losses);
    if (corpus == &corpus_own) pb_corpus_free(&corpus_own);
    if (res == &res_local) pb_pretrain_result_free(res);
    return st;
}

/* ---- the default backbone ----------------------------------------------------------------- */

void pb_default_recipe(pb_pretrain_config *cfg, const char *data_dir) {
    pb_pretrain_defaults(cfg);
    snprintf(cfg->backbone, sizeof cfg->backbone, "%s", PB_DEFAULT_BACKBONE);
    snprintf(cfg->corpus, sizeof cfg->corpus, "fetched");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", data_dir ? data_dir : "");
}

pb_status pb_default_backbone_file(const char *data_dir, char *out, size_t cap) {
    pb_pretrain_config cfg;
    pb_default_recipe(&cfg, data_dir);
    /* The file name carries a hash of the recipe, so a changed recipe never picks up (or tries
     * to resume) a file made by another. */
    char key[512];
    int kn = snprintf(key, sizeof key, "%s %s %a %zu %ld %llu %d %d %a %a %a %a %ld %d %a", cfg.backbone, cfg.corpus,
                      cfg.holdout, cfg.builtin_bytes, cfg.steps, (unsigned long long)cfg.seed, cfg.batch, cfg.seq,
                      (double)cfg.lr, (double)cfg.min_lr_frac, (double)cfg.weight_decay, (double)cfg.clip_norm,
                      warmup_of(&cfg), (int)cfg.decay, (double)cfg.mask_prob);
    /* The byte tokenizer adds nothing to the key, so caches made before tokenizers were a choice
     * keep their names. */
    if (kn > 0 && strcmp(cfg.tokenizer, "byte") != 0 && (size_t)kn < sizeof key)
        kn += snprintf(key + kn, sizeof key - (size_t)kn, " %s", cfg.tokenizer);
    uint64_t h = pb_fnv1a64(PB_FNV_OFFSET, key, (size_t)(kn > 0 ? kn : 0));
    /* ... and the tokenizer, so a byte default made before BPE was the default is never taken
     * for the new one even by eye (mini-bpe4096-2742s-... next to mini-3600s-...). */
    char tkn[40] = "";
    if (strcmp(cfg.tokenizer, "byte") != 0) {
        size_t j = 0;
        tkn[j++] = '-';
        for (const char *q = cfg.tokenizer; *q && j + 1 < sizeof tkn; q++)
            if (*q != ':') tkn[j++] = *q;
        tkn[j] = '\0';
    }
    int n = snprintf(out, cap, "%s/backbones/%s%s-%lds-seed%llu-%08llx.h5", data_dir, cfg.backbone, tkn, cfg.steps,
                     (unsigned long long)cfg.seed, (unsigned long long)(h & 0xffffffffull));
    if (n < 0 || (size_t)n >= cap) return pb_errorf(PB_EINVAL, "data directory path too long: %s", data_dir);
    return PB_OK;
}

pb_backbone_state pb_default_backbone_state(const char *path) {
    if (access(path, F_OK) != 0) return PB_BACKBONE_ABSENT;
    pb_ckpt_info info;
    if (pb_ckpt_read_info(path, &info) != PB_OK) {
        pb_error_clear();
        return PB_BACKBONE_UNREADABLE;
    }
    if (info.has_recipe && info.has_train && info.step == info.recipe.steps && !info.resumable) return PB_BACKBONE_READY;
    return PB_BACKBONE_PARTIAL;
}

pb_status pb_default_backbone_path(const char *data_dir, int threads, char *out, size_t cap, pb_pretrain_cb cb,
                                   void *ud) {
    pb_pretrain_config cfg;
    pb_default_recipe(&cfg, data_dir);
    cfg.threads = threads;
    pb_status st0 = pb_default_backbone_file(data_dir, out, cap);
    if (st0) return st0;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/backbones", data_dir);
    pb_status st = pb_mkdir_p(dir);
    if (st) return pb_error_context(st, "creating the backbone cache");
    char lock[1100];
    snprintf(lock, sizeof lock, "%s.lock", out);
    int fd = open(lock, O_RDWR | O_CREAT, 0666);
    if (fd < 0) return pb_errorf(PB_EIO, "%s: %s", lock, strerror(errno));
    if (flock(fd, LOCK_EX) != 0) {
        close(fd);
        return pb_errorf(PB_EIO, "%s: cannot lock: %s", lock, strerror(errno));
    }
    pb_backbone_state bs = pb_default_backbone_state(out);
    if (bs == PB_BACKBONE_READY) {
        close(fd); /* complete: the common case */
        return PB_OK;
    }
    if (bs == PB_BACKBONE_UNREADABLE) {
        pb_ckpt_info info;
        st = pb_ckpt_read_info(out, &info); /* again, for its message */
        close(fd);
        return pb_error_context(st ? st : PB_EFORMAT,
                                "the cached default backbone is unreadable; delete it to pretrain it again");
    }
    pb_pretrain_result res;
    st = pb_pretrain_run(&cfg, NULL, out, PB_PT_RESUME, cb, ud, &res);
    int complete = res.complete;
    pb_pretrain_result_free(&res);
    close(fd);
    if (st) return pb_error_context(st, "pretraining the default backbone (%s)", out);
    if (!complete) return pb_errorf(PB_EINTERNAL, "pretraining the default backbone was stopped; run again to resume");
    return PB_OK;
}
