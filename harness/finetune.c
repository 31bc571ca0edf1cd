/* finetune.c — one fine-tuning cell (see finetune.h). */
#include "finetune.h"
#include "cli.h"
#include "kernels.h"
#include "methods/adapter.h"
#include "methods/peft.h"
#include "models/checkpoint.h"
#include "models/model.h"
#include "models/pretrain.h"
#include "models/tokenizer.h"
#include "pb_rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void pb_run_defaults(pb_run_config *c) {
    memset(c, 0, sizeof *c);
    c->backbone = "tiny";
    c->method = "full";
    c->task = "sentiment";
    c->seed = 1;
    c->steps = 200;
    c->batch = 16;
    c->max_len = 128;
    c->eval_every = 50;
    c->eval_max = 0;
    c->lr = 1e-3f;
    c->weight_decay = 0.0f;
    c->warmup_frac = 0.06f;
    c->clip = 1.0f;
    c->decay = PB_DECAY_LINEAR;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static pb_status fail(pb_run_result *r, pb_status st) {
    r->status = st;
    snprintf(r->message, sizeof r->message, "%s", pb_errmsg()[0] ? pb_errmsg() : pb_status_str(st));
    return st;
}

/* ---- encoding ------------------------------------------------------------------------------- */

typedef struct {
    int32_t *tok; /* (len) */
    int len;
    int prompt_len; /* generation: tokens up to and including <sep> */
    int label;
} enc_ex;

typedef struct {
    enc_ex *ex;
    size_t n;
    int32_t *pool; /* all tokens */
} enc_split;

static void enc_free(enc_split *s) {
    free(s->ex);
    free(s->pool);
    memset(s, 0, sizeof *s);
}

/* Encodes one split with the backbone's tokenizer tk. Classification: specials around text
 * (+ text2), cut to max_len. Generation: <bos> input <sep> target <eos>, the input cut first so
 * the target fits when it can. Texts are encoded whole and then cut in tokens (for the byte
 * tokenizer the same as cutting bytes). */
static pb_status encode_split(enc_split *out, const pb_tokenizer *tk, const pb_task *t, pb_split sp, int causal,
                              int max_len, size_t *n_truncated) {
    const pb_task_split *s = &t->split[sp];
    memset(out, 0, sizeof *out);
    out->n = s->n;
    out->ex = calloc(s->n ? s->n : 1, sizeof *out->ex);
    out->pool = malloc(sizeof(int32_t) * (s->n ? s->n : 1) * (size_t)max_len);
    size_t cap1 = 0, cap2 = 0;
    for (size_t i = 0; i < s->n; i++) { /* the longest texts: every token stands for >= 1 byte */
        size_t a = s->ex[i].text_len, b = t->kind == PB_TASK_GENERATE ? s->ex[i].target_len
                                                                      : (s->ex[i].text2 ? s->ex[i].text2_len : 0);
        if (a > cap1) cap1 = a;
        if (b > cap2) cap2 = b;
    }
    int32_t *t1 = malloc(sizeof(int32_t) * (cap1 + 1)), *t2 = malloc(sizeof(int32_t) * (cap2 + 1));
    if (!out->ex || !out->pool || !t1 || !t2) {
        free(t1), free(t2);
        return pb_errorf(PB_ENOMEM, "out of memory encoding %zu examples", s->n);
    }
    for (size_t i = 0; i < s->n; i++) {
        const pb_example *e = &s->ex[i];
        int32_t *tok = out->pool + i * (size_t)max_len;
        int n = 0, cut = 0;
        int n1 = (int)pb_tokenizer_encode(tk, t1, cap1 + 1, e->text, e->text_len);
        if (t->kind == PB_TASK_GENERATE) {
            int tl = (int)pb_tokenizer_encode(tk, t2, cap2 + 1, e->target, e->target_len), il = n1;
            int room = max_len - 3; /* bos, sep, eos */
            if (tl > room - 1) tl = room - 1, cut = 1; /* keep at least one input token */
            if (il > room - tl) il = room - tl, cut = 1;
            tok[n++] = PB_TOK_BOS;
            memcpy(tok + n, t1, sizeof(int32_t) * (size_t)il);
            n += il;
            tok[n++] = PB_TOK_SEP;
            out->ex[i].prompt_len = n;
            memcpy(tok + n, t2, sizeof(int32_t) * (size_t)tl);
            n += tl;
            tok[n++] = PB_TOK_EOS;
        } else {
            int l1 = n1, l2 = e->text2 ? (int)pb_tokenizer_encode(tk, t2, cap2 + 1, e->text2, e->text2_len) : -1;
            int room = max_len - 2 - (l2 >= 0 ? 1 : 0);
            if (l1 + (l2 > 0 ? l2 : 0) > room) {
                cut = 1;
                if (l2 > 0) { /* split the room in proportion, at least a quarter each */
                    int a = (int)((long long)room * l1 / (l1 + l2));
                    if (a < room / 4) a = room / 4;
                    if (a > l1) a = l1;
                    int b = room - a;
                    if (b > l2) b = l2, a = room - b < l1 ? room - b : l1;
                    l1 = a;
                    l2 = b;
                } else {
                    l1 = room;
                }
            }
            tok[n++] = causal ? PB_TOK_BOS : PB_TOK_CLS;
            memcpy(tok + n, t1, sizeof(int32_t) * (size_t)l1);
            n += l1;
            if (l2 >= 0) {
                tok[n++] = PB_TOK_SEP;
                memcpy(tok + n, t2, sizeof(int32_t) * (size_t)l2);
                n += l2;
            }
            tok[n++] = causal ? PB_TOK_EOS : PB_TOK_SEP;
            out->ex[i].label = e->label;
        }
        out->ex[i].tok = tok;
        out->ex[i].len = n;
        *n_truncated += (size_t)cut;
    }
    free(t1), free(t2);
    return PB_OK;
}

/* Builds a padded batch of the examples idx[0..B) (T = the longest). */
typedef struct {
    int32_t *ids, *targets;
    uint8_t *mask;
    int cap_B, cap_T;
} batch_buf;

static pb_status batch_alloc(batch_buf *bb, int B, int T) {
    bb->ids = malloc(sizeof(int32_t) * (size_t)B * T);
    bb->targets = malloc(sizeof(int32_t) * (size_t)B * T);
    bb->mask = malloc((size_t)B * T);
    bb->cap_B = B;
    bb->cap_T = T;
    if (!bb->ids || !bb->targets || !bb->mask) return pb_errorf(PB_ENOMEM, "out of memory");
    return PB_OK;
}

static void batch_free(batch_buf *bb) {
    free(bb->ids);
    free(bb->targets);
    free(bb->mask);
}

static pb_batch make_batch(batch_buf *bb, const enc_split *s, const size_t *idx, int B, int generate) {
    int T = 1;
    for (int b = 0; b < B; b++)
        if (s->ex[idx[b]].len > T) T = s->ex[idx[b]].len;
    for (int b = 0; b < B; b++) {
        const enc_ex *e = &s->ex[idx[b]];
        for (int t = 0; t < T; t++) {
            size_t k = (size_t)b * T + t;
            int real = t < e->len;
            bb->ids[k] = real ? e->tok[t] : PB_TOK_PAD;
            bb->mask[k] = (uint8_t)real;
            /* generation: predict token t+1 where it belongs to the target (after <sep>) */
            bb->targets[k] = (generate && t + 1 < e->len && t + 1 >= e->prompt_len) ? e->tok[t + 1] : -1;
        }
        if (!generate) bb->targets[b] = e->label; /* classification targets are per sequence */
    }
    pb_batch out = {.B = B, .T = T, .ids = bb->ids, .mask = bb->mask, .targets = bb->targets};
    return out;
}

/* ---- evaluation ----------------------------------------------------------------------------- */

typedef struct {
    pb_model *m;
    const pb_task *task;
    batch_buf *bb;
    int batch, gen_max;
    const pb_tokenizer *tk; /* the backbone's: decodes generated ids */
    const pb_run_config *cfg; /* its on_generate */
    pb_split sp;
    long tokens;   /* tokens processed by forwards */
    double seconds;
} evaluator;

/* Examples 0..n-1 of s in order of length (ties: index), so that evaluation batches hold
 * sequences of similar length and pad little (predictions go back to their own index). */
static const enc_split *g_len_split; /* qsort has no context argument */
static int cmp_len(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int li = g_len_split->ex[i].len, lj = g_len_split->ex[j].len;
    return li != lj ? (li > lj) - (li < lj) : (i > j) - (i < j);
}

static pb_status eval_classify(evaluator *ev, const enc_split *s, size_t n, int *pred) {
    size_t idx[1024];
    int B = ev->batch > 1024 ? 1024 : ev->batch;
    size_t *order = malloc(sizeof *order * (n ? n : 1));
    if (!order) return pb_errorf(PB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) order[i] = i;
    g_len_split = s;
    qsort(order, n, sizeof *order, cmp_len);
    double t0 = now_s();
    for (size_t i = 0; i < n; i += (size_t)B) {
        int nb = (int)(n - i < (size_t)B ? n - i : (size_t)B);
        for (int b = 0; b < nb; b++) idx[b] = order[i + (size_t)b];
        pb_batch bt = make_batch(ev->bb, s, idx, nb, 0);
        for (int b = 0; b < nb; b++) ev->bb->targets[b] = 0; /* labels unknown to the forward */
        float loss;
        pb_status st = pb_model_forward(ev->m, &bt, 0, &loss);
        if (st) {
            free(order);
            return st;
        }
        int K = ev->m->n_labels;
        for (int b = 0; b < nb; b++) {
            const float *row = ev->m->logits + (size_t)b * K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (row[k] > row[best]) best = k;
            pred[idx[b]] = best;
            ev->tokens += s->ex[idx[b]].len;
        }
    }
    ev->seconds += now_s() - t0;
    free(order);
    return PB_OK;
}

/* Greedy decoding, one re-forward per generated token (no key/value cache: simple and exact;
 * its cost is what the inference FLOPs report). */
static pb_status eval_generate(evaluator *ev, const enc_split *s, size_t n, char **texts) {
    /* virtual tokens (prompt tuning, P-tuning) take positions in front of the sequence */
    int T = ev->m->d.max_seq - (ev->m->hooks && ev->m->hooks->embed.fwd ? ev->m->hooks->embed.P : 0);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T), *tg = malloc(sizeof(int32_t) * (size_t)T);
    int32_t *gen = malloc(sizeof(int32_t) * ((size_t)ev->gen_max + 1));
    size_t cap = (size_t)ev->gen_max + 1;
    char *buf = malloc(cap);
    if (!ids || !tg || !gen || !buf) {
        free(ids), free(tg), free(gen), free(buf);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    double t0 = now_s();
    pb_status st = PB_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const enc_ex *e = &s->ex[i];
        int len = e->prompt_len, k = 0;
        memcpy(ids, e->tok, sizeof(int32_t) * (size_t)len);
        while (k < ev->gen_max && len < T) {
            for (int t = 0; t < len; t++) tg[t] = -1;
            pb_batch b = {.B = 1, .T = len, .ids = ids, .mask = NULL, .targets = tg};
            float loss;
            if ((st = pb_model_forward(ev->m, &b, 0, &loss))) break;
            ev->tokens += len;
            const float *row = ev->m->logits + (size_t)(ev->m->dim.Pe + len - 1) * ev->m->d.vocab;
            int best = 0;
            for (int v = 1; v < ev->m->d.vocab; v++)
                if (row[v] > row[best]) best = v;
            if (best == PB_TOK_EOS) break;
            gen[k++] = best;
            ids[len++] = best;
        }
        /* the text of the generated ids, through the backbone's tokenizer (specials skipped) */
        size_t need = pb_tokenizer_decode(ev->tk, buf, cap, gen, (size_t)k);
        if (need >= cap) {
            char *nb = realloc(buf, need + 1);
            if (!nb) {
                st = pb_errorf(PB_ENOMEM, "out of memory");
                break;
            }
            buf = nb;
            cap = need + 1;
            pb_tokenizer_decode(ev->tk, buf, cap, gen, (size_t)k);
        }
        texts[i] = strdup(buf);
        if (!texts[i]) st = pb_errorf(PB_ENOMEM, "out of memory");
        else if (ev->cfg && ev->cfg->on_generate)
            ev->cfg->on_generate(ev->sp, i, gen, (size_t)k, texts[i], ev->cfg->on_generate_ud);
    }
    ev->seconds += now_s() - t0;
    free(ids);
    free(tg);
    free(gen);
    free(buf);
    return st;
}

/* Record width of one test example (docs/STATISTICS.md): classification (pred, gold); generation
 * the per-example statistics of each of the task's metrics, in their order. */
static int record_width(const pb_task *t) {
    if (t->kind != PB_TASK_GENERATE) return 2;
    size_t w = 0;
    for (int k = 0; k < t->n_metrics; k++) w += pb_metric_n_stats(t->metrics[k], 0);
    return (int)w;
}

/* The records of examples 0..n-1 of split sp from their predictions (labels or texts). */
static pb_status make_records(const pb_task *t, pb_split sp, size_t n, const int *labels, const char *const *texts,
                              float *rec) {
    const pb_task_split *gold = &t->split[sp];
    if (t->kind != PB_TASK_GENERATE) {
        for (size_t i = 0; i < n; i++) {
            rec[2 * i] = (float)labels[i];
            rec[2 * i + 1] = (float)gold->ex[i].label;
        }
        return PB_OK;
    }
    double stats[64];
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < t->n_metrics; k++) {
            size_t m = pb_metric_n_stats(t->metrics[k], 0);
            pb_status st = pb_metric_text_stats(t->metrics[k], texts[i], gold->ex[i].target, stats);
            if (st) return st;
            for (size_t j = 0; j < m; j++) *rec++ = (float)stats[j];
        }
    return PB_OK;
}

/* Scores examples 0..n-1 of split sp into out (every metric of the task); with rec (n x
 * record_width floats), also each example's record. */
static pb_status evaluate(evaluator *ev, const enc_split *s, pb_split sp, size_t n, double out[PB_TASK_MAX_METRICS],
                          float *rec) {
    pb_status st;
    pb_predictions p = {.n = n};
    if (ev->task->kind == PB_TASK_GENERATE) {
        char **texts = calloc(n ? n : 1, sizeof *texts);
        if (!texts) return pb_errorf(PB_ENOMEM, "out of memory");
        ev->sp = sp;
        st = eval_generate(ev, s, n, texts);
        p.texts = (const char *const *)texts;
        if (!st) st = pb_task_score(ev->task, sp, &p, out);
        if (!st && rec) st = make_records(ev->task, sp, n, NULL, p.texts, rec);
        for (size_t i = 0; i < n; i++) free(texts[i]);
        free(texts);
    } else {
        int *pred = malloc(sizeof(int) * (n ? n : 1));
        if (!pred) return pb_errorf(PB_ENOMEM, "out of memory");
        st = eval_classify(ev, s, n, pred);
        p.labels = pred;
        if (!st) st = pb_task_score(ev->task, sp, &p, out);
        if (!st && rec) st = make_records(ev->task, sp, n, pred, NULL, rec);
        free(pred);
    }
    return st;
}

static const int *g_len;        /* qsort has no context argument */
static size_t *g_pos_in_epoch;
static int cmp_len_desc(const void *a, const void *b) {
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (g_len[i] != g_len[j]) return (g_len[i] < g_len[j]) - (g_len[i] > g_len[j]);
    return (g_pos_in_epoch[i] > g_pos_in_epoch[j]) - (g_pos_in_epoch[i] < g_pos_in_epoch[j]);
}

pb_status pb_group_by_length(size_t *order, size_t n, const int *len, int B) {
    size_t *pos = malloc(sizeof *pos * (n ? n : 1));
    if (!pos) return pb_errorf(PB_ENOMEM, "out of memory grouping %zu examples by length", n);
    for (size_t i = 0; i < n; i++) pos[order[i]] = i;
    g_len = len;
    g_pos_in_epoch = pos;
    size_t mega = (size_t)(B > 0 ? B : 1) * 50;
    for (size_t i = 0; i < n; i += mega) qsort(order + i, n - i < mega ? n - i : mega, sizeof *order, cmp_len_desc);
    free(pos);
    return PB_OK;
}

/* The trainable parameters (the optimizer's segments) into or out of one flat copy. */
static void segments_copy(const pb_segment *seg, int nseg, float *flat, int restore) {
    size_t off = 0;
    for (int i = 0; i < nseg; i++) {
        if (restore) memcpy(seg[i].param, flat + off, sizeof(float) * seg[i].n);
        else memcpy(flat + off, seg[i].param, sizeof(float) * seg[i].n);
        off += seg[i].n;
    }
}

/* ---- the backbone --------------------------------------------------------------------------- */

/* Loads the backbone and its tokenizer tk (presets: byte; checkpoints: the one they store,
 * models/TOKENIZER.md). tk is the caller's to free, also on failure. */
static pb_status load_backbone(pb_model *m, pb_tokenizer *tk, const char *spec, pb_head_kind head, int K,
                               uint64_t seed) {
    pb_tokenizer_init_byte(tk);
    const pb_model_desc *d = pb_backbone_find(spec);
    if (d) return pb_model_init(m, d, head, K, seed);
    pb_model lm;
    pb_status st = pb_ckpt_load(spec, &lm, NULL);
    if (st) return pb_error_context(st, "backbone '%s' (not a preset: see `peftbench list backbones`)", spec);
    if ((st = pb_ckpt_load_tokenizer(spec, tk))) {
        pb_model_free(&lm);
        return pb_error_context(st, "backbone '%s'", spec);
    }
    if (lm.d.vocab != tk->vocab) {
        int vocab = lm.d.vocab;
        char name[32];
        pb_tokenizer_name(tk, name, sizeof name);
        pb_model_free(&lm);
        return pb_errorf(PB_EINVAL, "backbone '%s': the model's vocabulary (%d) differs from its tokenizer's (%s, %d)",
                         spec, vocab, name, tk->vocab);
    }
    if (head == PB_HEAD_LM && lm.head == PB_HEAD_LM) {
        *m = lm;
        return PB_OK;
    }
    /* Another head: a model with it, every other tensor copied from the checkpoint by name (an
     * untied LM head is dropped; the new head stays initialised). */
    st = pb_model_init(m, &lm.d, head, K, seed);
    if (!st && (st = pb_model_copy_by_name(m, &lm, 1u << PB_SITE_HEAD))) {
        pb_model_free(m);
        st = pb_error_context(st, "backbone '%s'", spec);
    }
    pb_model_free(&lm);
    return st;
}

/* ---- the cell ------------------------------------------------------------------------------- */

static size_t eval_count(const pb_run_config *c, size_t n) {
    return c->eval_max > 0 && (size_t)c->eval_max < n ? (size_t)c->eval_max : n;
}

/* Forward FLOPs per token of an inference pass over the first examples of dev. */
static double infer_flops_per_token(evaluator *ev, const enc_split *s) {
    size_t n = s->n < 32 ? s->n : 32;
    if (n > (size_t)ev->bb->cap_B) n = (size_t)ev->bb->cap_B; /* the batch buffer holds cap_B sequences */
    if (!n) return 0;
    pb_flops f0, f1, d;
    long tok0 = ev->tokens;
    pb_flops_get(&f0);
    if (ev->task->kind == PB_TASK_GENERATE) {
        int *pred = NULL;
        (void)pred;
        /* teacher-forced forward over the whole sequences: the cost of scoring them */
        size_t idx[32];
        for (size_t i = 0; i < n; i++) idx[i] = i;
        pb_batch b = make_batch(ev->bb, s, idx, (int)n, 1);
        float loss;
        if (pb_model_forward(ev->m, &b, 0, &loss)) return -1;
        for (size_t i = 0; i < n; i++) ev->tokens += s->ex[i].len;
    } else {
        int pred[32];
        if (eval_classify(ev, s, n, pred)) return -1;
    }
    pb_flops_get(&f1);
    pb_flops_diff(&d, &f1, &f0);
    return (double)pb_flops_total(&d) / (double)(ev->tokens - tok0);
}

/* Held-out bits per byte for the forgetting metric (pretrain.h pb_eval_stream). direct: score m
 * itself (an LM-head model with its method attached; P virtual tokens in front shorten the
 * window). Otherwise score a temporary LM-head model: the backbone as loaded (its own LM head,
 * tied or not) with m's other tensors copied in by name, so m's buffers and the cell's memory
 * counters are left alone. Encoders score masked tokens. */
static pb_status heldout_bpb(pb_model *m, const char *backbone, const pb_tokenizer *tk, int direct, const int32_t *tok,
                             size_t n, int P, uint64_t seed, double *bpb) {
    pb_eval ev;
    pb_status st;
    float mask = m->d.causal ? 0.0f : 0.15f;
    if (direct) {
        if ((st = pb_eval_stream_tok(m, tk, tok, n, m->d.max_seq - P, 8, mask, 0, &ev, NULL))) return st;
    } else {
        pb_model lm;
        pb_tokenizer scratch;
        st = load_backbone(&lm, &scratch, backbone, PB_HEAD_LM, 0, seed);
        pb_tokenizer_free(&scratch);
        if (st) return st;
        if (!(st = pb_model_copy_by_name(&lm, m, 1u << PB_SITE_HEAD)))
            st = pb_eval_stream_tok(&lm, tk, tok, n, lm.d.max_seq, 8, mask, 0, &ev, NULL);
        pb_model_free(&lm);
        if (st) return st;
    }
    *bpb = ev.bits_per_byte;
    return PB_OK;
}

/* The byte-level held-out stream (cfg->heldout) re-encoded by tk: each run of bytes between
 * specials is encoded as one text, specials are kept (the corpus streams' <eos> d0 <eos> d1 ...
 * becomes what pb_corpus_split_docs_tok gives for the same documents). */
static pb_status retokenize(const pb_tokenizer *tk, const int32_t *in, size_t n, int32_t **out, size_t *n_out) {
    *out = malloc(sizeof(int32_t) * (n ? n : 1)); /* a token stands for >= 1 byte */
    char *text = malloc(n ? n : 1);
    if (!*out || !text) {
        free(text);
        return pb_errorf(PB_ENOMEM, "out of memory re-encoding %zu held-out tokens", n);
    }
    size_t k = 0, i = 0;
    while (i < n) {
        if (in[i] >= 256) {
            (*out)[k++] = in[i++];
            continue;
        }
        size_t l = 0;
        while (i < n && in[i] < 256) text[l++] = (char)in[i++];
        k += pb_tokenizer_encode(tk, *out + k, n - k, text, l);
    }
    free(text);
    *n_out = k;
    return PB_OK;
}

void pb_run_result_free(pb_run_result *r) {
    free(r->ex);
    r->ex = NULL;
    r->n_ex = 0;
}

pb_status pb_run_cell(const pb_run_config *c, pb_run_result *r) {
    memset(r, 0, sizeof *r);
    r->infer_flops_tok_merged = -1;
    pb_set_threads(c->threads);
    const pb_task *task = c->task_obj;
    pb_task *owned_task = NULL;
    pb_model m;
    memset(&m, 0, sizeof m);
    pb_peft peft;
    memset(&peft, 0, sizeof peft);
    pb_adamw opt;
    memset(&opt, 0, sizeof opt);
    enc_split sp[PB_NSPLIT];
    memset(sp, 0, sizeof sp);
    batch_buf bb = {0};
    pb_segment *seg = NULL;
    float *snap = NULL;
    size_t *order = NULL;
    int *train_len = NULL; /* token length of each training example (group_by_length) */
    pb_tokenizer tk;
    pb_tokenizer_init_byte(&tk);
    int32_t *ho_owned = NULL; /* the held-out stream re-encoded by a BPE backbone's tokenizer */
    const int32_t *ho = c->heldout;
    size_t n_ho = c->n_heldout;
    pb_status st;

    r->heldout_bpb_before = r->heldout_bpb_after = NAN;
    if (!task) {
        if ((st = pb_task_open(c->task, c->data_dir, &owned_task))) goto out;
        task = owned_task;
    }
    if (task->kind == PB_TASK_REGRESS || task->kind == PB_TASK_VISION) {
        st = pb_errorf(PB_EINVAL, "task '%s' is a %s task; runs support classify and generate tasks for now",
                       task->name, pb_task_kind_name(task->kind));
        goto out;
    }
    int generate = task->kind == PB_TASK_GENERATE;
    pb_head_kind head = generate ? PB_HEAD_LM : PB_HEAD_CLS;
    int K = generate ? 0 : task->n_labels;
    if ((st = load_backbone(&m, &tk, c->backbone, head, K, c->seed))) goto out;
    m.tok = &tk; /* prompt tuning's text initialisation encodes through it */
    const pb_tokenizer *hot = tk.kind == PB_TOKENIZER_BYTE ? NULL : &tk; /* NULL: byte, as before */
    if (ho && hot) {
        if ((st = retokenize(&tk, c->heldout, c->n_heldout, &ho_owned, &n_ho))) goto out;
        ho = ho_owned;
    }
    if (generate && !m.d.causal) {
        st = pb_errorf(PB_EINVAL, "generation task '%s' needs a decoder backbone; '%s' is an encoder", task->name,
                       c->backbone);
        goto out;
    }
    if (ho && (st = heldout_bpb(&m, c->backbone, hot, 0, ho, n_ho, 0, c->seed, &r->heldout_bpb_before)))
        goto out;
    if ((st = pb_peft_create(&peft, c->method, NULL, head, K, &m, c->seed))) goto out;
    int P = m.hooks && m.hooks->embed.fwd ? m.hooks->embed.P : 0;
    int max_len = c->max_len < m.d.max_seq - P ? c->max_len : m.d.max_seq - P;
    if (max_len < 4) {
        st = pb_errorf(PB_EINVAL, "max_len %d leaves no room for the input (max_seq %d, %d virtual tokens)", max_len,
                       m.d.max_seq, P);
        goto out;
    }
    for (int s = 0; s < PB_NSPLIT; s++)
        if ((st = encode_split(&sp[s], &tk, task, (pb_split)s, m.d.causal, max_len, &r->n_truncated))) goto out;
    if (sp[PB_SPLIT_TRAIN].n == 0) {
        st = pb_errorf(PB_EDATA, "task '%s' has no training examples", task->name);
        goto out;
    }
    int gen_max = c->gen_max;
    if (generate && gen_max <= 0) {
        size_t mx = 0;
        for (int s = 0; s < PB_NSPLIT; s++)
            if (task->stats.max_target_len[s] > mx) mx = task->stats.max_target_len[s];
        gen_max = (int)(mx + mx / 2 + 4);
    }
    int evalB = c->batch * 2;
    if ((st = batch_alloc(&bb, evalB > c->batch ? evalB : c->batch, max_len))) goto out;

    int nseg = pb_peft_segments(&peft, NULL);
    seg = malloc(sizeof *seg * (size_t)(nseg ? nseg : 1));
    if (!seg) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto out;
    }
    pb_peft_segments(&peft, seg);
    size_t n_snap = 0;
    for (int i = 0; i < nseg; i++) n_snap += seg[i].n;
    /* the best dev point's trainable parameters: the harness's copy, not the method's memory
     * (untracked; a real run would keep it as a checkpoint on disk) */
    snap = malloc(sizeof(float) * (n_snap ? n_snap : 1));
    if (!snap) {
        st = pb_errorf(PB_ENOMEM, "out of memory for a copy of %zu trainable parameters", n_snap);
        goto out;
    }
    pb_adamw_config oc = pb_adamw_defaults();
    oc.lr = c->lr;
    oc.weight_decay = c->weight_decay;
    oc.clip_norm = c->clip;
    if ((st = pb_adamw_init(&opt, &oc, seg, nseg))) goto out;
    pb_schedule sched = pb_schedule_finetune(c->lr, c->warmup_frac, c->steps, c->decay);
    pb_peft_counts(&peft, &r->trainable, &r->all);
    r->adapter_bytes = pb_peft_adapter_bytes(&peft);
    r->n_metrics = task->n_metrics;
    memcpy(r->metrics, task->metrics, sizeof r->metrics);
    r->select = task->select;
    int higher = pb_metric_higher_is_better(task->metrics[task->select]);

    size_t ntr = sp[PB_SPLIT_TRAIN].n;
    order = malloc(sizeof *order * ntr);
    if (!order) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ntr; i++) order[i] = i;
    train_len = malloc(sizeof *train_len * ntr);
    if (!train_len) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ntr; i++) train_len[i] = sp[PB_SPLIT_TRAIN].ex[i].len;
    pb_rng rng;
    pb_rng_seed(&rng, c->seed * 1000003u + 7u);
    size_t pos = ntr;
    evaluator ev = {.m = &m, .task = task, .bb = &bb, .batch = evalB, .gen_max = gen_max, .tk = &tk, .cfg = c};
    pb_flops f0, f1, fd, ftrain = {0};
    pb_mem_reset_peak();
    double t_train = 0, loss_acc = 0;
    int loss_n = 0, have_best = 0;
    double dev[PB_TASK_MAX_METRICS], test[PB_TASK_MAX_METRICS];
    size_t ndev = eval_count(c, sp[PB_SPLIT_DEV].n), ntest = eval_count(c, sp[PB_SPLIT_TEST].n);
    int B = c->batch;
    for (int step = 0; step < c->steps; step++) {
        size_t idx[4096];
        for (int b = 0; b < B; b++) {
            if (pos == ntr) { /* new epoch: reshuffle */
                for (size_t i = ntr; i > 1; i--) {
                    size_t j = (size_t)pb_rng_below(&rng, i);
                    size_t tmp = order[i - 1];
                    order[i - 1] = order[j];
                    order[j] = tmp;
                }
                if (c->group_by_length && (st = pb_group_by_length(order, ntr, train_len, B))) goto out;
                pos = 0;
            }
            idx[b] = order[pos++];
        }
        pb_batch bt = make_batch(&bb, &sp[PB_SPLIT_TRAIN], idx, B, generate);
        double t0 = now_s();
        pb_flops_get(&f0);
        pb_peft_zero_grad(&peft);
        float loss;
        if ((st = pb_model_forward(&m, &bt, 1, &loss))) goto out;
        if (c->loss_curve && r->n_loss < c->loss_curve_cap) c->loss_curve[r->n_loss++] = loss;
        if (!isfinite(loss)) {
            r->diverged = 1;
            snprintf(r->message, sizeof r->message, "loss is %g at step %d", loss, step);
            break;
        }
        pb_model_backward(&m);
        pb_adamw_step(&opt, pb_schedule_lr(&sched, step));
        if (pb_peft_setting_up(&peft)) r->setup_steps++; /* this step's forward ran before the choice */
        pb_flops_get(&f1);
        t_train += now_s() - t0;
        pb_flops_diff(&fd, &f1, &f0);
        for (int p = 0; p < PB_NPHASE; p++)
            for (int k = 0; k < PB_NKIND; k++) ftrain.n[p][k] += fd.n[p][k];
        /* real (task) tokens: virtual tokens are positions a method adds, not data it trained on,
         * so FLOPs per training token compare the same thing across methods */
        for (int b = 0; b < B; b++) r->train_tokens += sp[PB_SPLIT_TRAIN].ex[idx[b]].len;
        loss_acc += loss;
        loss_n++;
        int last = step == c->steps - 1;
        if ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last) {
            if ((st = evaluate(&ev, &sp[PB_SPLIT_DEV], PB_SPLIT_DEV, ndev, dev, NULL))) goto out;
            double sel = dev[task->select];
            int better = !have_best || (higher ? sel > r->best_dev[task->select] : sel < r->best_dev[task->select]);
            if (better) { /* keep the trainable parameters of the best dev point */
                have_best = 1;
                memcpy(r->best_dev, dev, sizeof dev);
                r->best_step = step + 1;
                segments_copy(seg, nseg, snap, 0);
            }
            if (r->n_evals < PB_RUN_MAX_EVALS) {
                r->eval_step[r->n_evals] = step + 1;
                r->eval_train_loss[r->n_evals] = (float)(loss_acc / loss_n);
                r->eval_dev[r->n_evals] = (float)sel;
                r->eval_test[r->n_evals] = NAN; /* test is scored once, at the best dev point */
                r->n_evals++;
            }
            if (c->verbose)
                fprintf(stderr, "step %5d/%d  train loss %.4f  dev %s %.4f%s\n", step + 1, c->steps, loss_acc / loss_n,
                        pb_metric_key(task->metrics[task->select]), sel, better ? "  (best)" : "");
            loss_acc = 0;
            loss_n = 0;
        }
    }
    /* Test, once: the whole split (or eval_max) with the parameters of the best dev evaluation,
     * each example's record kept (docs/STATISTICS.md). The model stays at that point for merge,
     * inference FLOPs and forgetting. A cell that diverged before any evaluation has no test. */
    if (have_best) {
        segments_copy(seg, nseg, snap, 1);
        r->ex_width = record_width(task);
        r->ex = malloc(sizeof(float) * (ntest ? ntest : 1) * (size_t)r->ex_width);
        if (!r->ex) {
            st = pb_errorf(PB_ENOMEM, "out of memory for %zu test records", ntest);
            goto out;
        }
        r->n_ex = ntest;
        if ((st = evaluate(&ev, &sp[PB_SPLIT_TEST], PB_SPLIT_TEST, ntest, test, r->ex))) goto out;
        memcpy(r->test_at_best, test, sizeof test);
        if (c->verbose)
            fprintf(stderr, "test %s %.4f at step %d (best dev), %zu examples\n",
                    pb_metric_key(task->metrics[task->select]), test[task->select], r->best_step, ntest);
    }
    pb_mem_stats ms;
    pb_mem_get(&ms);
    memcpy(r->mem_peak, ms.peak, sizeof r->mem_peak);
    r->mem_peak_total = ms.peak_total;
    r->peak_rss = pb_peak_rss_bytes();
    r->train_seconds = t_train;
    r->train_tok_per_s = t_train > 0 ? (double)r->train_tokens / t_train : 0;
    for (int p = 0; p < PB_NPHASE; p++)
        r->train_flops_tok[p] = r->train_tokens ? (double)pb_flops_phase(&ftrain, (pb_phase)p) / (double)r->train_tokens : 0;
    r->infer_tok_per_s = ev.seconds > 0 ? (double)ev.tokens / ev.seconds : 0;
    r->infer_flops_tok = infer_flops_per_token(&ev, &sp[PB_SPLIT_DEV]);
    if (c->save_adapter && (st = pb_adapter_save(c->save_adapter, &peft, c->method))) goto out;
    int merged = 0;
    if (peft.ctx[0]->method->merge || peft.ctx[0]->method->category == PB_CAT_SELECTIVE) {
        if (pb_peft_merge(&peft) == PB_OK) {
            merged = 1;
            r->infer_flops_tok_merged = infer_flops_per_token(&ev, &sp[PB_SPLIT_DEV]);
        }
    }
    /* Forgetting after: an LM-head model as it is (merged or with its hooks); a classification
     * model through an LM head on its trunk, meaningful only when base weights changed. */
    if (ho && !r->diverged && (head == PB_HEAD_LM || merged) &&
        (st = heldout_bpb(&m, c->backbone, hot, head == PB_HEAD_LM, ho, n_ho, P, c->seed, &r->heldout_bpb_after)))
        goto out;
    st = PB_OK;
out:
    if (st) fail(r, st);
    free(order);
    free(train_len);
    free(seg);
    free(snap);
    batch_free(&bb);
    for (int s = 0; s < PB_NSPLIT; s++) enc_free(&sp[s]);
    pb_adamw_free(&opt);
    pb_peft_free(&peft);
    pb_model_free(&m);
    pb_tokenizer_free(&tk);
    free(ho_owned);
    pb_task_free(owned_task);
    return st;
}

pb_status pb_run_reference(const pb_run_config *c, pb_ref_kind kind, pb_run_result *r) {
    memset(r, 0, sizeof *r);
    r->infer_flops_tok_merged = -1;
    r->heldout_bpb_before = r->heldout_bpb_after = NAN;
    const pb_task *task = c->task_obj;
    pb_task *owned = NULL;
    pb_ref_pred pred = {0};
    pb_status st = PB_OK;
    if (!task) {
        if ((st = pb_task_open(c->task, c->data_dir, &owned))) goto out;
        task = owned;
    }
    if ((st = pb_ref_predict(kind, task, &pred))) goto out;
    r->n_metrics = task->n_metrics;
    memcpy(r->metrics, task->metrics, sizeof r->metrics);
    r->select = task->select;
    memcpy(r->best_dev, pred.dev, sizeof r->best_dev);
    size_t n = eval_count(c, task->split[PB_SPLIT_TEST].n);
    pb_predictions p = {.n = n, .labels = pred.labels[PB_SPLIT_TEST], .texts = pred.texts[PB_SPLIT_TEST]};
    if ((st = pb_task_score(task, PB_SPLIT_TEST, &p, r->test_at_best))) goto out;
    r->ex_width = record_width(task);
    r->ex = malloc(sizeof(float) * (n ? n : 1) * (size_t)r->ex_width);
    if (!r->ex) {
        st = pb_errorf(PB_ENOMEM, "out of memory for %zu test records", n);
        goto out;
    }
    r->n_ex = n;
    st = make_records(task, PB_SPLIT_TEST, n, p.labels, p.texts, r->ex);
out:
    if (st) fail(r, st);
    pb_ref_pred_free(&pred);
    pb_task_free(owned);
    return st;
}
