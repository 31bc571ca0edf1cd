/* cmd_pretrain.c — `peftbench pretrain`: pretrain a backbone preset and write its checkpoint.
 *
 * A thin front end over models/pretrain.h: parses options into a pb_pretrain_config, shows
 * progress (a bar with loss, tokens/s and ETA when stderr is a terminal, plain lines every 5%
 * otherwise), turns SIGINT/SIGTERM into "save a resumable checkpoint and stop" (exit 130), and
 * prints what the run measured. `--default` produces (if missing) and prints the cached default
 * backbone of the data directory instead.
 */
#include "commands.h"
#include "models/pretrain.h"
#include "report.h"
#include "tasks/task.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void pretrain_usage(FILE *f) {
    pb_pretrain_config c;
    pb_pretrain_defaults(&c);
    fprintf(f,
            "usage: peftbench pretrain [--backbone NAME] [--corpus FILE|builtin|fetched] [--steps N] [--seed S]\n"
            "                          [--batch B] [--seq T] [--lr X] [--threads N] [--resume | --force]\n"
            "                          [--tokenizer byte|bpe:N] [--save-every N] -o CKPT.h5\n"
            "       peftbench pretrain --default [--data-dir DIR] [--threads N]\n"
            "Pretrains a backbone preset (`peftbench list backbones`): next-token prediction for decoders,\n"
            "masked-token prediction (BERT 15%%, 80/10/10) for encoders; holds out %.0f%% of the documents of\n"
            "every source and reports their loss in bits per byte. Writes resumable checkpoints every\n"
            "--save-every steps and on Ctrl-C; --resume continues the same loss curve bit for bit.\n"
            "--default prints the path of the cached default backbone (%s on the fetched corpus),\n"
            "pretraining it first if the data directory does not hold it yet.\n"
            "options (defaults):\n"
            "  --backbone NAME      preset (%s)\n"
            "  --corpus SPEC        'fetched' (DATA_DIR/corpus/*.txt from `peftbench data fetch`), 'builtin'\n"
            "                       (generated, offline) or a text file; documents split on \"\\n\\f\\n\" (%s)\n"
            "  --data-dir DIR       data directory (--data-dir, else $PEFTBENCH_DATA, else\n"
            "                       ${XDG_DATA_HOME:-$HOME/.local/share}/peftbench)\n"
            "  --tokenizer SPEC     'byte' or 'bpe:N' (%s): N byte-pair merges learned from the training\n"
            "                       documents, stored in the checkpoint (models/TOKENIZER.md)\n"
            "  --steps N (%ld)  --seed S (%llu)  --batch B (%d)  --seq T (min(%d, max_seq))  --lr X (%g)\n"
            "  --warmup N (steps/20)  --min-lr-frac F (%g)  --weight-decay X (%g)  --clip X (%g)\n"
            "  --schedule cosine|linear|constant (cosine)  --holdout F (%g)  --mask-prob F (%g, encoders)\n"
            "  --builtin-bytes N (%zu)  --save-every N (%ld; 0: only at the end)  --eval-tokens N (0: all)\n"
            "  --threads N          OpenMP/OpenBLAS threads (all cores); results are bit-identical per count\n"
            "  --resume             continue -o if it holds a checkpoint of the same recipe\n"
            "  --force              replace an existing -o (kept until the first save replaces it)\n"
            "  --quiet              no progress output\n",
            c.holdout * 100, PB_DEFAULT_BACKBONE, PB_DEFAULT_BACKBONE, c.corpus, c.tokenizer, c.steps, (unsigned long long)c.seed,
            c.batch, c.seq, c.lr, c.min_lr_frac, c.weight_decay, c.clip_norm, c.holdout, c.mask_prob,
            c.builtin_bytes, c.save_every);
}

static volatile sig_atomic_t g_interrupted = 0;
static void on_signal(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef struct {
    int tty, quiet;
    long every;         /* plain mode: a line every `every` steps */
    double last_draw;   /* tty mode: seconds of the last redraw */
    const char *path;
} progress_state;

static void fmt_time(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

static int progress(const pb_pretrain_progress *p, void *ud) {
    progress_state *ps = ud;
    if (!ps->quiet) {
        char eta[32], el[32];
        fmt_time(eta, sizeof eta, p->eta_s);
        fmt_time(el, sizeof el, p->seconds);
        if (p->event == PB_PT_STEP) {
            if (ps->tty) {
                if (p->seconds - ps->last_draw >= 0.25 || p->step == p->steps || p->step == p->first_step + 1) {
                    ps->last_draw = p->seconds;
                    int width = 30, fill = (int)((double)width * (double)p->step / (double)p->steps);
                    char bar[64];
                    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '-';
                    bar[width] = '\0';
                    fprintf(stderr, "\r[%s] %ld/%ld  loss %.4f  %.0f tok/s  ETA %s   ", bar, p->step, p->steps,
                            p->loss, p->tokens_per_s, eta);
                    fflush(stderr);
                }
            } else if (p->step % ps->every == 0 || p->step == p->steps || p->step == p->first_step + 1) {
                fprintf(stderr, "step %ld/%ld  loss %.4f  lr %.3g  grad-norm %.3f  %.0f tok/s  elapsed %s  ETA %s\n",
                        p->step, p->steps, p->loss, p->lr, p->grad_norm, p->tokens_per_s, el, eta);
            }
        } else if (p->event == PB_PT_SAVED && p->step < p->steps) {
            fprintf(stderr, "%scheckpoint at step %ld saved to %s\n", ps->tty ? "\n" : "", p->step, ps->path);
        } else if (p->event == PB_PT_EVAL) {
            fprintf(stderr, "%sevaluating the held-out documents...\n", ps->tty ? "\n" : "");
        }
    }
    return g_interrupted ? PB_PT_STOP_SAVE : 0;
}

static int opt_long(pb_args *a, const char *name, long lo, long hi, long *out, int *r) {
    const char *v;
    if (!(*r = pb_args_opt(a, name, 1, &v))) return 0;
    if (*r > 0 && !pb_args_int(a, name, v, lo, hi, out)) *r = -1;
    return 1;
}

static int opt_double(pb_args *a, const char *name, double lo, double hi, double *out, int *r) {
    const char *v;
    if (!(*r = pb_args_opt(a, name, 1, &v))) return 0;
    if (*r > 0 && !pb_args_float(a, name, v, lo, hi, out)) *r = -1;
    return 1;
}

int pb_cmd_pretrain(pb_args *a) {
    pb_pretrain_config c;
    pb_pretrain_defaults(&c);
    const char *out = NULL, *data_dir_flag = NULL, *v;
    long steps = c.steps, seed = (long)c.seed, batch = c.batch, seq = -1, threads = 0, warmup = -1;
    long save_every = c.save_every, builtin_bytes = (long)c.builtin_bytes, eval_tokens = 0;
    double lr = c.lr, min_lr = c.min_lr_frac, wd = c.weight_decay, clip = c.clip_norm, holdout = c.holdout;
    double mask = c.mask_prob;
    int resume = 0, force = 0, quiet = 0, want_default = 0, r;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--backbone", 1, &v)) > 0) snprintf(c.backbone, sizeof c.backbone, "%s", v);
        else if (!r && (r = pb_args_opt(a, "--corpus", 1, &v)) > 0) snprintf(c.corpus, sizeof c.corpus, "%s", v);
        else if (!r && (r = pb_args_opt(a, "--tokenizer", 1, &v)) > 0) {
            pb_tokenizer_kind k;
            int nm;
            if (pb_tokenizer_parse_spec(v, &k, &nm)) {
                fprintf(stderr, "peftbench pretrain: --tokenizer: %s\n", pb_errmsg());
                r = -1;
            } else {
                snprintf(c.tokenizer, sizeof c.tokenizer, "%s", v);
            }
        }
        else if (!r && (r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) data_dir_flag = v;
        else if (!r && (r = pb_args_opt(a, "-o", 1, &v)) > 0) out = v;
        else if (!r && (r = pb_args_opt(a, "--output", 1, &v)) > 0) out = v;
        else if (!r && (r = pb_args_opt(a, "--schedule", 1, &v)) > 0) {
            if (pb_decay_parse(v, &c.decay)) {
                fprintf(stderr, "peftbench pretrain: --schedule: %s\n", pb_errmsg());
                r = -1;
            }
        } else if (!r && opt_long(a, "--steps", 1, 1000000000L, &steps, &r)) {
        } else if (!r && opt_long(a, "--seed", 0, 0x7fffffffL, &seed, &r)) {
        } else if (!r && opt_long(a, "--batch", 1, 65536, &batch, &r)) {
        } else if (!r && opt_long(a, "--seq", 2, 1 << 20, &seq, &r)) {
        } else if (!r && opt_long(a, "--threads", 1, 1024, &threads, &r)) {
        } else if (!r && opt_long(a, "--warmup", 0, 1000000000L, &warmup, &r)) {
        } else if (!r && opt_long(a, "--save-every", 0, 1000000000L, &save_every, &r)) {
        } else if (!r && opt_long(a, "--builtin-bytes", 1000, 1L << 30, &builtin_bytes, &r)) {
        } else if (!r && opt_long(a, "--eval-tokens", 0, 1L << 40, &eval_tokens, &r)) {
        } else if (!r && opt_double(a, "--lr", 1e-8, 10.0, &lr, &r)) {
        } else if (!r && opt_double(a, "--min-lr-frac", 0.0, 1.0, &min_lr, &r)) {
        } else if (!r && opt_double(a, "--weight-decay", 0.0, 10.0, &wd, &r)) {
        } else if (!r && opt_double(a, "--clip", 0.0, 1e6, &clip, &r)) {
        } else if (!r && opt_double(a, "--holdout", 0.0, 0.5, &holdout, &r)) {
        } else if (!r && opt_double(a, "--mask-prob", 0.01, 1.0, &mask, &r)) {
        } else if (!r && (r = pb_args_opt(a, "--resume", 0, NULL)) > 0) resume = 1;
        else if (!r && (r = pb_args_opt(a, "--force", 0, NULL)) > 0) force = 1;
        else if (!r && (r = pb_args_opt(a, "--quiet", 0, NULL)) > 0) quiet = 1;
        else if (!r && (r = pb_args_opt(a, "--default", 0, NULL)) > 0) want_default = 1;
        else if (!r && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            pretrain_usage(stdout);
            return 0;
        } else if (!r) {
            fprintf(stderr, "peftbench pretrain: unknown option '%s' (see peftbench pretrain --help)\n", a->argv[a->i]);
            return 2;
        }
        if (r < 0) return 2;
    }
    char data_dir[1024];
    if (pb_data_dir(data_dir_flag, data_dir, sizeof data_dir)) {
        fprintf(stderr, "peftbench pretrain: %s\n", pb_errmsg());
        return 2;
    }
    pb_set_threads((int)threads);
    int nthreads = omp_get_max_threads();
    progress_state ps = {.tty = isatty(2), .quiet = quiet, .every = 1, .last_draw = -1.0, .path = out};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once (writes are atomic) */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (want_default) {
        char path[1200];
        pb_pretrain_config dc;
        pb_default_recipe(&dc, data_dir);
        ps.every = dc.steps / 20 > 0 ? dc.steps / 20 : 1;
        ps.path = "the backbone cache";
        pb_status st = pb_default_backbone_path(data_dir, nthreads, path, sizeof path, progress, &ps);
        if (ps.tty && !quiet) fprintf(stderr, "\n");
        if (st) {
            fprintf(stderr, "peftbench pretrain: %s\n", pb_errmsg());
            return g_interrupted ? 130 : 1;
        }
        pb_ckpt_info info;
        if (!quiet && pb_ckpt_read_info(path, &info) == PB_OK && info.has_eval)
            fprintf(stderr, "default backbone %s (%ld steps on %s): held-out %.9g bits per byte\n", info.desc.name,
                    info.step, info.recipe.corpus, info.eval.bits_per_byte);
        printf("%s\n", path);
        return 0;
    }
    if (!out) {
        fprintf(stderr, "peftbench pretrain: -o CKPT.h5 is required (the checkpoint to write)\n");
        pretrain_usage(stderr);
        return 2;
    }
    if (resume && force) {
        fprintf(stderr, "peftbench pretrain: --resume and --force exclude each other\n");
        return 2;
    }
    const pb_model_desc *d = pb_backbone_find(c.backbone);
    if (d && seq < 0) seq = c.seq < d->max_seq ? c.seq : d->max_seq;
    if (seq < 0) seq = c.seq;
    snprintf(c.data_dir, sizeof c.data_dir, "%s", data_dir);
    c.steps = steps;
    c.seed = (uint64_t)seed;
    c.batch = (int)batch;
    c.seq = (int)seq;
    c.lr = (float)lr;
    c.warmup = warmup;
    c.min_lr_frac = (float)min_lr;
    c.weight_decay = (float)wd;
    c.clip_norm = (float)clip;
    c.holdout = holdout;
    c.mask_prob = (float)mask;
    c.save_every = save_every;
    c.builtin_bytes = (size_t)builtin_bytes;
    c.eval_tokens = (size_t)eval_tokens;
    c.threads = nthreads;
    ps.every = steps / 20 > 0 ? steps / 20 : 1;

    int mode = resume ? PB_PT_RESUME : force ? PB_PT_OVERWRITE : PB_PT_NEW;
    if (pb_pretrain_check(&c, out, mode)) {
        fprintf(stderr, "peftbench pretrain: %s\n", pb_errmsg());
        return 2;
    }
    pb_corpus corpus;
    pb_status st = pb_corpus_open(&corpus, c.corpus, data_dir, c.builtin_bytes);
    if (st) {
        fprintf(stderr, "peftbench pretrain: %s\n", pb_errmsg());
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "pretraining %s on %s (%zu bytes, %zu documents, %d sources), tokenizer %s: %ld steps of %d x %d "
                "tokens, lr %g, seed %llu, %d threads\n", c.backbone, c.corpus, corpus.len, corpus.n_docs, corpus.n_sources,
                c.tokenizer, c.steps, c.batch, c.seq, (double)c.lr, (unsigned long long)c.seed, nthreads);
    pb_pretrain_result res;
    st = pb_pretrain_run(&c, &corpus, out, mode, progress, &ps, &res);
    pb_corpus_free(&corpus);
    if (ps.tty && !quiet) fprintf(stderr, "\n");
    if (st) {
        fprintf(stderr, "peftbench pretrain: %s\n", pb_errmsg());
        return 1;
    }
    if (res.first_step > 0 && res.resumed_threads != nthreads)
        fprintf(stderr, "peftbench pretrain: note: the checkpoint was started with %d threads and resumed with %d; "
                "the run is not bit-identical to an uninterrupted one\n", res.resumed_threads, nthreads);
    int rc = 0;
    char n1[32], n2[32];
    if (res.stopped) {
        fprintf(stderr, "peftbench pretrain: interrupted at step %ld of %ld; the checkpoint %s holds it: continue "
                "with the same command and --resume\n", res.steps_done, c.steps, out);
        rc = 130;
    } else {
        const pb_recipe *rp = &res.recipe;
        if (res.first_step == c.steps) printf("already complete: %s holds all %ld steps\n", out, c.steps);
        printf("backbone: %s (%s parameters), objective %s, tokenizer %s\n", c.backbone,
               pb_fmt_count(n1, sizeof n1, res.n_params), rp->objective, rp->tokenizer);
        printf("corpus: %s, %s training tokens in %llu documents, %s held-out tokens in %llu documents\n", c.corpus,
               pb_fmt_count(n1, sizeof n1, rp->train_tokens), (unsigned long long)rp->train_docs,
               pb_fmt_count(n2, sizeof n2, rp->heldout_tokens), (unsigned long long)rp->heldout_docs);
        if (res.n_losses > 0) printf("final training loss: %.6f nats/token\n", res.losses[res.n_losses - 1]);
        if (res.heldout.tokens)
            printf("held-out: %.9g nats over %llu tokens, %llu bytes = %.9g bits per byte (perplexity %.6g per "
                   "token)\n", res.heldout.nats, (unsigned long long)res.heldout.tokens,
                   (unsigned long long)res.heldout.bytes, res.heldout.bits_per_byte, res.heldout.perplexity);
        else printf("held-out: no held-out documents (a corpus of one document, or --holdout 0)\n");
        printf("checkpoint: %s\n", out);
    }
    pb_pretrain_result_free(&res);
    return rc;
}
