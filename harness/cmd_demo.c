/* cmd_demo.c — `peftbench demo`: the short training demo on built-in text.
 *
 * Trains a backbone as a language model on the built-in corpus (models/corpus.h) with AdamW
 * and a warm-up + cosine schedule, prints the loss as it goes, then reports what the run
 * measured: parameters, counted FLOPs per step, memory by category, tokens/s, held-out bits per
 * byte, and a greedy continuation of a prompt. Offline and deterministic for a seed and thread
 * count.
 */
#include "commands.h"
#include "models/corpus.h"
#include "models/lm.h"
#include "models/model.h"
#include "models/tokenizer.h"
#include "optim.h"
#include "pb_rng.h"
#include "report.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void demo_usage(FILE *f) {
    fprintf(f, "usage: peftbench demo [--backbone tiny|small] [--steps N] [--batch B] [--seq T] [--lr X]\n"
               "                      [--threads N] [--seed S] [--corpus-bytes N] [--freeze-base]\n"
               "Trains on the built-in corpus and reports parameters, FLOPs, memory and loss.\n"
               "defaults: --backbone tiny --steps 300 --batch 16 --seq 64 --lr 3e-3 --seed 1\n"
               "--freeze-base trains only ln_f (a frozen-trunk run that shows the backward savings).\n");
}

/* Greedy continuation of prompt for n bytes (full re-forward per token; fine for a demo). */
static pb_status generate(pb_model *m, const char *prompt, int n, char *out, size_t cap) {
    int T = m->d.max_seq;
    int32_t *ids = calloc((size_t)T, sizeof *ids), *tg = calloc((size_t)T, sizeof *tg);
    if (!ids || !tg) {
        free(ids);
        free(tg);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    int len = (int)pb_tok_encode(ids, (size_t)T, prompt, strlen(prompt));
    if (len > T) len = T;
    size_t k = 0;
    pb_status st = PB_OK;
    for (int step = 0; step < n && k + 1 < cap; step++) {
        int start = len > T ? len - T : 0;
        int t = len - start;
        for (int i = 0; i < t; i++) tg[i] = -1;
        pb_batch b = {.B = 1, .T = t, .ids = ids + start, .mask = NULL, .targets = tg};
        float loss;
        if ((st = pb_model_forward(m, &b, 0, &loss))) break;
        const float *row = m->logits + (size_t)(t - 1) * m->d.vocab;
        int best = 0;
        for (int v = 1; v < 256; v++)
            if (row[v] > row[best]) best = v;
        out[k++] = (char)best;
        if (len == T) memmove(ids, ids + 1, sizeof *ids * (size_t)(T - 1)), len--;
        ids[len++] = best;
    }
    out[k] = '\0';
    free(ids);
    free(tg);
    return st;
}

int pb_cmd_demo(pb_args *a) {
    const char *backbone = "tiny", *v;
    long steps = 300, B = 16, T = 64, threads = 0, seed = 1, corpus_bytes = 400000;
    double lr = 3e-3;
    int freeze = 0, r;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--backbone", 1, &v))) backbone = v;
        else if ((r = pb_args_opt(a, "--steps", 1, &v))) r = pb_args_int(a, "--steps", v, 1, 100000000, &steps) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--batch", 1, &v))) r = pb_args_int(a, "--batch", v, 1, 4096, &B) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--seq", 1, &v))) r = pb_args_int(a, "--seq", v, 2, 65536, &T) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--threads", 1, &v))) r = pb_args_int(a, "--threads", v, 1, 1024, &threads) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--seed", 1, &v))) r = pb_args_int(a, "--seed", v, 0, 0x7fffffffL, &seed) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--corpus-bytes", 1, &v)))
            r = pb_args_int(a, "--corpus-bytes", v, 10000, 1L << 30, &corpus_bytes) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--lr", 1, &v))) r = pb_args_float(a, "--lr", v, 0.0, 10.0, &lr) ? 1 : -1;
        else if ((r = pb_args_opt(a, "--freeze-base", 0, NULL))) freeze = 1;
        else if ((r = pb_args_opt(a, "--help", 0, NULL))) {
            demo_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "peftbench demo: unknown option '%s'\n", a->argv[a->i]);
            demo_usage(stderr);
            return 2;
        }
        if (r < 0) return 2;
    }
    const pb_model_desc *d = pb_backbone_find(backbone);
    if (!d && !strcmp(backbone, "default")) {
        fprintf(stderr, "peftbench demo: the demo trains a preset from random initialisation; 'default' is a "
                        "pretrained checkpoint (use `peftbench run --backbone default` or `peftbench score "
                        "--checkpoint default`)\n");
        return 2;
    }
    if (!d) {
        fprintf(stderr, "peftbench demo: unknown backbone '%s' (see `peftbench list backbones`)\n", backbone);
        return 2;
    }
    if (!d->causal) {
        fprintf(stderr, "peftbench demo: '%s' is an encoder; the demo trains decoders (next-token prediction)\n",
                backbone);
        return 2;
    }
    if (T > d->max_seq) {
        fprintf(stderr, "peftbench demo: --seq %ld exceeds %s's max_seq %d\n", T, backbone, d->max_seq);
        return 2;
    }
    pb_set_threads((int)threads);

    /* Corpus: built-in text, 90% train / 10% held out by document order. */
    size_t len;
    char *text = pb_corpus_builtin((size_t)corpus_bytes, (uint64_t)seed, &len);
    int32_t *tok = text ? malloc(sizeof *tok * len) : NULL;
    if (!tok) {
        fprintf(stderr, "peftbench demo: out of memory\n");
        free(text);
        return 1;
    }
    pb_tok_encode(tok, len, text, len);
    size_t split = len * 9 / 10;
    while (split < len && text[split] != '\f') split++;
    free(text);

    pb_model m;
    pb_adamw opt = {0};
    int32_t *ids = malloc(sizeof *ids * (size_t)(B * T)), *tg = malloc(sizeof *tg * (size_t)(B * T));
    int rc = 1;
    pb_status st = pb_model_init(&m, d, PB_HEAD_LM, 0, (uint64_t)seed);
    if (st) goto fail;
    if (freeze) {
        pb_model_set_trainable_all(&m, 0);
        pb_tensor_set_trainable(&m, m.global.w[PB_SITE_LN_F], 1);
        if (m.global.b[PB_SITE_LN_F]) pb_tensor_set_trainable(&m, m.global.b[PB_SITE_LN_F], 1);
        if ((st = pb_model_prepare(&m))) goto fail;
    }
    if (!ids || !tg) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto fail;
    }
    pb_adamw_config oc = pb_adamw_defaults();
    oc.lr = (float)lr;
    if ((st = pb_model_optimizer(&m, &oc, &opt))) goto fail;
    pb_schedule sched = {.lr = (float)lr, .min_lr_frac = 0.1f, .warmup = steps / 10, .total = steps,
                         .decay = PB_DECAY_COSINE};

    printf("demo: backbone %s (L=%d d=%d heads=%d), batch %ld x %ld tokens, %ld steps, %d threads\n", d->name,
           d->n_layer, d->d_model, d->n_head, B, T, steps, omp_get_max_threads());
    pb_report_params(stdout, &m);
    pb_rng rng;
    pb_rng_seed(&rng, (uint64_t)seed * 7919u + 17u);
    pb_flops f0, f1, step_flops;
    pb_mem_reset_peak();
    double t0 = now_s();
    float loss = 0;
    long every = steps >= 10 ? steps / 10 : 1;
    for (long s = 0; s < steps; s++) {
        pb_lm_sample(ids, tg, tok, split, (int)B, (int)T, &rng);
        pb_batch b = {.B = (int)B, .T = (int)T, .ids = ids, .mask = NULL, .targets = tg};
        pb_flops_get(&f0);
        pb_model_zero_grad(&m);
        if ((st = pb_model_forward(&m, &b, 1, &loss))) goto fail;
        if (!isfinite(loss)) {
            st = pb_errorf(PB_EDIVERGED, "loss is %g at step %ld", loss, s);
            goto fail;
        }
        pb_model_backward(&m);
        float norm = pb_adamw_step(&opt, pb_schedule_lr(&sched, s));
        pb_flops_get(&f1);
        if (s == 0) pb_flops_diff(&step_flops, &f1, &f0);
        if ((s + 1) % every == 0 || s == 0)
            printf("step %6ld/%ld  loss %.4f  lr %.2e  grad-norm %.3f  %.1f s\n", s + 1, steps, loss,
                   pb_schedule_lr(&sched, s), norm, now_s() - t0);
    }
    double secs = now_s() - t0;
    pb_mem_stats ms;
    pb_mem_get(&ms);

    /* Held-out loss over the last 10% of documents (at most 64 windows). */
    double sum = 0;
    long count = 0;
    for (size_t start = split; start + 1 < len && count < 64L * T; start += (size_t)(B * T)) {
        pb_lm_stride(ids, tg, tok, len, start, (int)B, (int)T);
        pb_batch b = {.B = (int)B, .T = (int)T, .ids = ids, .mask = NULL, .targets = tg};
        if ((st = pb_model_forward(&m, &b, 0, &loss))) goto fail;
        sum += (double)loss * m.last_count;
        count += m.last_count;
    }
    pb_report_flops(stdout, &step_flops, B * T);
    pb_report_memory(stdout, &ms);
    printf("time: %.2f s, %.0f training tokens/s\n", secs, (double)steps * B * T / secs);
    printf("final training loss %.4f; held-out loss %.4f nats/byte = %.4f bits per byte over %ld bytes\n", loss,
           count ? sum / count : 0.0, count ? sum / count / log(2.0) : 0.0, count);
    char sample[128];
    if ((st = generate(&m, "The farmer", 60, sample, sizeof sample))) goto fail;
    printf("greedy continuation of \"The farmer\": \"%s\"\n", sample);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "peftbench demo: %s\n", pb_errmsg()[0] ? pb_errmsg() : pb_status_str(st));
    pb_adamw_free(&opt);
    pb_model_free(&m);
    free(ids);
    free(tg);
    free(tok);
    return rc;
}
