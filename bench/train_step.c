/* train_step.c — benchmark: time of one training step (forward + backward + AdamW).
 *
 * A program, not a test: it prints measurements and asserts nothing about speed. After
 * --warmup untimed steps it times --steps steps and prints, as its last line,
 *   ms_per_step=... tok_per_s=... gflops=... sgemm_gflops=... pct_of_sgemm=...
 * where gflops is the step's counted FLOPs (core/pb_flops.h) per second and sgemm_gflops is a
 * square cblas_sgemm of size --sgemm-n measured in this process at the same thread count.
 * The model is the GPT-style backbone (--family gpt: LayerNorm, learned positions, GELU MLP of 4 d,
 * biases, tied LM head) or the LLaMA-style one (--family llama: RMSNorm, RoPE, --kv-heads key/value
 * heads (default heads/2), SwiGLU of width --d-ff (default: the width whose blocks have the GPT
 * block's parameters, pb_desc_matched_ff), no biases, untied LM head), with a classification head
 * (--labels K; --head lm for the LM head), fine-tuned with --method SPEC (any registered PEFT
 * method, default full); --freeze-base is --method head. See bench/README.md for recorded results.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/cli.h"
#include "harness/report.h"
#include "methods/peft.h"
#include "models/model.h"
#include "optim.h"
#include "pb_flops.h"
#include "pb_mem.h"
#include "pb_rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double sgemm_gflops(int n, int reps) {
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n),
          *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
        c[i] = 0;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)n * n / best / 1e9;
}

static void usage(FILE *f) {
    fprintf(f, "usage: train_step [--family gpt|llama] [--d-model 256] [--layers 6] [--heads 8] [--kv-heads H/2]\n"
               "                  [--d-ff F] [--seq 128] [--batch 16] [--vocab 256] [--threads 2] [--steps 10]\n"
               "                  [--warmup 2] [--labels 2] [--head cls|lm] [--method SPEC] [--freeze-base]\n"
               "                  [--sgemm-n 1024]\n");
}

int main(int argc, char **argv) {
    long C = 256, L = 6, H = 8, T = 128, B = 16, V = 256, threads = 2, steps = 10, warmup = 2, K = 2, sg_n = 1024;
    long Hkv = 0, F = 0; /* 0: the family's default */
    int lm = 0, llama = 0, r;
    const char *v, *spec = "full";
    pb_args a = {argc, argv, 1, "train_step"};
    while (a.i < argc) {
        struct {
            const char *name;
            long *dst, lo, hi;
        } ints[] = {{"--d-model", &C, 1, 65536}, {"--layers", &L, 1, 1024},   {"--heads", &H, 1, 1024},
                    {"--seq", &T, 1, 65536},     {"--batch", &B, 1, 65536},   {"--vocab", &V, 2, 1 << 24},
                    {"--threads", &threads, 1, 1024}, {"--steps", &steps, 1, 1000000},
                    {"--warmup", &warmup, 0, 1000000}, {"--labels", &K, 1, 1 << 20}, {"--sgemm-n", &sg_n, 16, 16384},
                    {"--kv-heads", &Hkv, 1, 1024}, {"--d-ff", &F, 1, 1 << 20}};
        int matched = 0;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !matched; k++)
            if ((r = pb_args_opt(&a, ints[k].name, 1, &v))) {
                if (r < 0 || !pb_args_int(&a, ints[k].name, v, ints[k].lo, ints[k].hi, ints[k].dst)) return 2;
                matched = 1;
            }
        if (matched) continue;
        if (pb_args_opt(&a, "--freeze-base", 0, NULL) == 1) spec = "head";
        else if ((r = pb_args_opt(&a, "--method", 1, &v))) {
            if (r < 0) return 2;
            spec = v;
        }
        else if ((r = pb_args_opt(&a, "--family", 1, &v))) {
            if (r < 0) return 2;
            if (!strcmp(v, "llama")) llama = 1;
            else if (!strcmp(v, "gpt")) llama = 0;
            else {
                fprintf(stderr, "train_step: --family '%s' is not gpt or llama\n", v);
                return 2;
            }
        } else if ((r = pb_args_opt(&a, "--head", 1, &v))) {
            if (r < 0) return 2;
            if (!strcmp(v, "lm")) lm = 1;
            else if (!strcmp(v, "cls")) lm = 0;
            else {
                fprintf(stderr, "train_step: --head '%s' is not cls or lm\n", v);
                return 2;
            }
        } else if (pb_args_opt(&a, "--help", 0, NULL) == 1) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "train_step: unknown option '%s'\n", argv[a.i]);
            usage(stderr);
            return 2;
        }
    }
    pb_set_threads((int)threads);
    if (!llama && Hkv && Hkv != H) {
        fprintf(stderr, "train_step: --kv-heads needs --family llama (the GPT-style block has no grouped-query attention)\n");
        return 2;
    }
    if (!Hkv) Hkv = llama && H % 2 == 0 ? H / 2 : H;
    if (!F) F = llama ? pb_desc_matched_ff((int)C, (int)(Hkv * (C / H))) : 4 * C;
    pb_model_desc d = {.name = "bench", .arch = PB_ARCH_DECODER, .causal = 1, .n_layer = (int)L, .d_model = (int)C,
                       .n_head = (int)H, .n_kv_head = (int)Hkv, .d_ff = (int)F, .ffn = PB_FFN_GELU,
                       .norm = PB_NORM_LAYERNORM, .bias = 1, .pos = PB_POS_LEARNED, .vocab = (int)V,
                       .max_seq = (int)T + 64 /* room for virtual tokens of prompt methods */, .tied_embed = 1};
    if (llama) {
        snprintf(d.name, sizeof d.name, "bench-llama");
        d.ffn = PB_FFN_SWIGLU;
        d.norm = PB_NORM_RMSNORM;
        d.bias = 0;
        d.pos = PB_POS_ROPE;
        d.tied_embed = 0;
    }
    pb_model m;
    pb_adamw opt = {0};
    if (pb_model_init(&m, &d, lm ? PB_HEAD_LM : PB_HEAD_CLS, (int)K, 1) != PB_OK) {
        fprintf(stderr, "train_step: %s\n", pb_errmsg());
        return 2;
    }
    pb_peft peft;
    if (pb_peft_create(&peft, spec, NULL, lm ? PB_HEAD_LM : PB_HEAD_CLS, lm ? 0 : (int)K, &m, 1) != PB_OK) {
        fprintf(stderr, "train_step: %s\n", pb_errmsg());
        return 2;
    }
    int nseg = pb_peft_segments(&peft, NULL);
    pb_segment *seg = malloc(sizeof *seg * (size_t)(nseg ? nseg : 1));
    pb_peft_segments(&peft, seg);
    pb_adamw_config oc = pb_adamw_defaults();
    if (pb_adamw_init(&opt, &oc, seg, nseg) != PB_OK) return 1;
    free(seg);

    size_t N = (size_t)B * T;
    int32_t *ids = malloc(sizeof(int32_t) * N), *tg = malloc(sizeof(int32_t) * N);
    pb_rng rng;
    pb_rng_seed(&rng, 3);
    for (size_t i = 0; i < N; i++) {
        ids[i] = (int32_t)pb_rng_below(&rng, (uint64_t)V);
        tg[i] = lm ? (int32_t)pb_rng_below(&rng, (uint64_t)V) : (int32_t)pb_rng_below(&rng, (uint64_t)K);
    }
    pb_batch b = {.B = (int)B, .T = (int)T, .ids = ids, .targets = tg};

    double sg = sgemm_gflops((int)sg_n, 5);
    pb_flops f0, f1, fs;
    double t_total = 0, t_min = 1e30;
    float loss = 0;
    pb_mem_reset_peak();
    for (long s = 0; s < warmup + steps; s++) {
        if (s == warmup) pb_flops_get(&f0);
        double t0 = now_s();
        pb_peft_zero_grad(&peft);
        if (pb_model_forward(&m, &b, 1, &loss) != PB_OK) {
            fprintf(stderr, "train_step: %s\n", pb_errmsg());
            return 1;
        }
        pb_model_backward(&m);
        pb_adamw_step(&opt, 1e-4f);
        double t = now_s() - t0;
        if (s >= warmup) {
            t_total += t;
            if (t < t_min) t_min = t;
        }
    }
    pb_flops_get(&f1);
    pb_flops_diff(&fs, &f1, &f0);
    for (int p = 0; p < PB_NPHASE; p++)
        for (int k = 0; k < PB_NKIND; k++) fs.n[p][k] /= (uint64_t)steps;
    double ms = 1000.0 * t_total / (double)steps;
    double gf = (double)pb_flops_total(&fs) / (t_total / (double)steps) / 1e9;
    pb_mem_stats mst;
    pb_mem_get(&mst);

    size_t n_tr, n_all;
    pb_peft_counts(&peft, &n_tr, &n_all);
    printf("config: family=%s d=%ld layers=%ld heads=%ld kv_heads=%ld d_ff=%ld seq=%ld batch=%ld vocab=%ld head=%s "
           "threads=%d method=%s\n",
           llama ? "llama" : "gpt", C, L, H, Hkv, F, T, B, V, lm ? "lm" : "cls", omp_get_max_threads(), spec);
    printf("openblas: %s (%s)\n", openblas_get_config(), openblas_get_corename());
    printf("trainable params: %zu || all params: %zu || trainable%%: %.4f\n", n_tr, n_all, 100.0 * n_tr / n_all);
    pb_report_flops(stdout, &fs, (long)N);
    pb_report_memory(stdout, &mst);
    printf("fastest step %.2f ms, loss %.4f\n", 1000.0 * t_min, loss);
    printf("ms_per_step=%.2f tok_per_s=%.0f gflops=%.2f sgemm_gflops=%.2f pct_of_sgemm=%.1f flops_per_step=%llu\n", ms,
           (double)N / (ms / 1000.0), gf, sg, 100.0 * gf / sg, (unsigned long long)pb_flops_total(&fs));
    pb_adamw_free(&opt);
    pb_peft_free(&peft);
    pb_model_free(&m);
    free(ids);
    free(tg);
    return 0;
}
