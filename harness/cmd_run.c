/* cmd_run.c — `peftbench run`: one cell end to end (backbone x method x task x seed), printed. */
#include "commands.h"
#include "finetune.h"
#include "prepare.h"
#include "tasks/task.h"
#include "report.h"

#include <stdio.h>
#include <string.h>

static void run_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench run --method SPEC --task SPEC [--backbone NAME|CKPT.h5] [--seed S]\n"
            "                     [--steps N] [--batch B] [--lr X] [--weight-decay X] [--warmup-frac X]\n"
            "                     [--schedule linear|cosine|constant] [--max-len T] [--eval-every N]\n"
            "                     [--eval-max N] [--gen-max N] [--threads N] [--data-dir DIR] [--quiet]\n"
            "                     [--save-adapter FILE.h5] [--no-fetch] [--group-by-length]\n"
            "Fine-tunes the backbone with the method on the task and prints parameters, FLOPs per\n"
            "token, memory by category, time and the dev/test metrics.\n"
            "  --backbone  a preset (randomly initialised; see `peftbench list backbones`) or a\n"
            "              checkpoint from `peftbench pretrain`, or default (the cached default\n"
            "              backbone, pretrained once if missing, as in sweep specs) (default: tiny)\n"
            "  --method    e.g. lora:r=8,alpha=16,targets=q_proj+v_proj (see `peftbench list methods`)\n"
            "  --task      e.g. sentiment, spam:max_train=2000, csv:dir=DIR (docs/TASKS.md)\n"
            "  --no-fetch  never download: fail, naming it, when fetched data the run needs is missing\n"
            "  --group-by-length  batches of similar length (Hugging Face's group_by_length): less padding\n");
}

int pb_cmd_run(pb_args *a) {
    pb_run_config c;
    pb_run_defaults(&c);
    c.verbose = 1;
    const char *v;
    int r, no_fetch = 0;
    long n;
    double x;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--method", 1, &v)) > 0) c.method = v;
        else if (r == 0 && (r = pb_args_opt(a, "--task", 1, &v)) > 0) c.task = v;
        else if (r == 0 && (r = pb_args_opt(a, "--backbone", 1, &v)) > 0) c.backbone = v;
        else if (r == 0 && (r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) c.data_dir = v;
        else if (r == 0 && (r = pb_args_opt(a, "--save-adapter", 1, &v)) > 0) c.save_adapter = v;
        else if (r == 0 && (r = pb_args_opt(a, "--seed", 1, &v)) > 0) {
            if (!pb_args_int(a, "--seed", v, 0, 0x7fffffffL, &n)) return 2;
            c.seed = (uint64_t)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--steps", 1, &v)) > 0) {
            if (!pb_args_int(a, "--steps", v, 1, 100000000, &n)) return 2;
            c.steps = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--batch", 1, &v)) > 0) {
            if (!pb_args_int(a, "--batch", v, 1, 4096, &n)) return 2;
            c.batch = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--max-len", 1, &v)) > 0) {
            if (!pb_args_int(a, "--max-len", v, 4, 1 << 20, &n)) return 2;
            c.max_len = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--eval-every", 1, &v)) > 0) {
            if (!pb_args_int(a, "--eval-every", v, 0, 100000000, &n)) return 2;
            c.eval_every = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--eval-max", 1, &v)) > 0) {
            if (!pb_args_int(a, "--eval-max", v, 0, 100000000, &n)) return 2;
            c.eval_max = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--gen-max", 1, &v)) > 0) {
            if (!pb_args_int(a, "--gen-max", v, 0, 100000, &n)) return 2;
            c.gen_max = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--threads", 1, &v)) > 0) {
            if (!pb_args_int(a, "--threads", v, 1, 1024, &n)) return 2;
            c.threads = (int)n;
        } else if (r == 0 && (r = pb_args_opt(a, "--lr", 1, &v)) > 0) {
            if (!pb_args_float(a, "--lr", v, 0, 100, &x)) return 2;
            c.lr = (float)x;
        } else if (r == 0 && (r = pb_args_opt(a, "--weight-decay", 1, &v)) > 0) {
            if (!pb_args_float(a, "--weight-decay", v, 0, 10, &x)) return 2;
            c.weight_decay = (float)x;
        } else if (r == 0 && (r = pb_args_opt(a, "--warmup-frac", 1, &v)) > 0) {
            if (!pb_args_float(a, "--warmup-frac", v, 0, 1, &x)) return 2;
            c.warmup_frac = (float)x;
        } else if (r == 0 && (r = pb_args_opt(a, "--schedule", 1, &v)) > 0) {
            if (pb_decay_parse(v, &c.decay)) {
                fprintf(stderr, "peftbench run: --schedule: %s\n", pb_errmsg());
                return 2;
            }
        } else if (r == 0 && (r = pb_args_opt(a, "--quiet", 0, NULL)) > 0) c.verbose = 0;
        else if (r == 0 && (r = pb_args_opt(a, "--no-fetch", 0, NULL)) > 0) no_fetch = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--group-by-length", 0, NULL)) > 0) c.group_by_length = 1;
        else if (r == 0 && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            run_usage(stdout);
            return 0;
        } else if (r == 0) {
            fprintf(stderr, "peftbench run: unknown option '%s'\n", a->argv[a->i]);
            run_usage(stderr);
            return 2;
        }
        if (r < 0) return 2;
    }
    /* what the run needs: the task's fetched data, the default backbone (and its corpus) */
    char data_dir[1024], backbone[1100];
    pb_status st = pb_data_dir(c.data_dir, data_dir, sizeof data_dir);
    const char *bb[] = {c.backbone}, *tasks[] = {c.task};
    pb_inputs in = {.backbones = bb, .n_backbones = 1, .tasks = tasks, .n_tasks = 1, .data_dir = data_dir};
    if (!st) st = pb_prepare(&in, !no_fetch, "run", stderr, NULL);
    if (!st && !strcmp(c.backbone, "default") &&
        !(st = pb_prepare_default_backbone(data_dir, c.threads, !no_fetch, "run", backbone, sizeof backbone)))
        c.backbone = backbone;
    if (st) {
        fprintf(stderr, "peftbench run: %s\n", pb_errmsg());
        return st == PB_EINVAL || st == PB_ENOTFOUND ? 2 : 1;
    }
    pb_run_result res;
    fprintf(stderr, "run: backbone %s, method %s, task %s, seed %llu, %d steps x %d\n", c.backbone, c.method, c.task,
            (unsigned long long)c.seed, c.steps, c.batch);
    st = pb_run_cell(&c, &res);
    if (st) {
        fprintf(stderr, "peftbench run: %s\n", res.message);
        pb_run_result_free(&res);
        return 1;
    }
    char b1[32], b2[32];
    printf("trainable params: %s || all params: %s || trainable%%: %.4f\n", pb_fmt_count(b1, sizeof b1, res.trainable),
           pb_fmt_count(b2, sizeof b2, res.all), 100.0 * (double)res.trainable / (double)res.all);
    printf("adapter bytes: %s\n", pb_fmt_bytes(b1, sizeof b1, (double)res.adapter_bytes));
    printf("training FLOPs per token: %.6g (fwd %.6g, bwd_in %.6g, bwd_w %.6g)\n",
           res.train_flops_tok[0] + res.train_flops_tok[1] + res.train_flops_tok[2], res.train_flops_tok[0],
           res.train_flops_tok[1], res.train_flops_tok[2]);
    if (res.infer_flops_tok_merged >= 0)
        printf("inference FLOPs per token: %.6g unmerged, %.6g merged\n", res.infer_flops_tok, res.infer_flops_tok_merged);
    else printf("inference FLOPs per token: %.6g (cannot merge)\n", res.infer_flops_tok);
    printf("peak memory by category:");
    for (int k = 0; k < PB_MEM_NCAT; k++)
        printf("  %s %s", pb_mem_cat_key((pb_mem_cat)k), pb_fmt_bytes(b1, sizeof b1, (double)res.mem_peak[k]));
    printf("\npeak tracked %s, peak RSS %s\n", pb_fmt_bytes(b1, sizeof b1, (double)res.mem_peak_total),
           pb_fmt_bytes(b2, sizeof b2, (double)res.peak_rss));
    printf("time: %.2f s training (%ld tokens, %.0f tok/s), inference %.0f tok/s\n", res.train_seconds,
           res.train_tokens, res.train_tok_per_s, res.infer_tok_per_s);
    if (res.setup_steps)
        printf("setup steps: %d of %d (the method chose what trains; only the task head trained in them)\n",
               res.setup_steps, c.steps);
    if (res.n_truncated) printf("truncated inputs: %zu\n", res.n_truncated);
    if (res.diverged) printf("status: diverged (%s)\n", res.message);
    printf("best dev at step %d:", res.best_step);
    for (int k = 0; k < res.n_metrics; k++) printf("  %s %.4f", pb_metric_key(res.metrics[k]), res.best_dev[k]);
    printf("\ntest at that point (%zu examples):", res.n_ex);
    for (int k = 0; k < res.n_metrics; k++) printf("  %s %.4f", pb_metric_key(res.metrics[k]), res.test_at_best[k]);
    printf("\n");
    pb_run_result_free(&res);
    return 0;
}
