/* cmd_score.c — `peftbench score`: a checkpoint's loss on a text, in full precision.
 *
 * Prints total loss (nats), scored tokens, bits per byte and perplexity with %.9g, so another
 * implementation can be compared with it; --per-token prints each scored token's natural-log
 * probability. The text is encoded by the checkpoint's tokenizer as the corpus streams are
 * (<eos> then the text's tokens) and scored
 * by pb_eval_stream in non-overlapping windows, the same function that gives the held-out
 * number stored in checkpoints (and later the forgetting metric). Without --text, the held-out
 * documents of the checkpoint's own pretraining corpus are scored.
 */
#include "commands.h"
#include "methods/adapter.h"
#include "models/checkpoint.h"
#include "models/pretrain.h"
#include "prepare.h"
#include "tasks/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void score_usage(FILE *f) {
    fprintf(f, "usage: peftbench score --checkpoint CKPT.h5 [--adapter A.h5] [--text FILE|-] [--per-token] [--seq T]\n"
               "                       [--batch B]\n"
               "                       [--threads N] [--data-dir DIR]\n"
               "Prints the checkpoint's total loss (nats), tokens, bits per byte and perplexity on a text\n"
               "(%%.9g). Windows of --seq tokens (default: the pretraining sequence length, else max_seq),\n"
               "non-overlapping; the text is preceded by <eos> so that every byte is scored (decoders).\n"
               "Encoders score a fixed 15%% of positions, masked (masked-token bits per byte).\n"
               "Without --text: the held-out documents of the checkpoint's pretraining corpus.\n"
               "--per-token prints 'index<TAB>byte<TAB>logprob' for every scored token first.\n"
               "--adapter applies a method trained with `peftbench run --save-adapter` (an LM task) on top.\n"
               "--checkpoint default: the cached default backbone (pretrained once if missing).\n");
}

/* A token's bytes, escaped (one byte for the byte tokenizer). */
static void print_token(FILE *f, const pb_tokenizer *tk, int32_t id) {
    const unsigned char *b;
    size_t n = pb_tokenizer_token_bytes(tk, id, &b);
    if (!n) fputs("<special>", f);
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\\') fputs("\\\\", f);
        else if (b[i] >= 32 && b[i] < 127) fputc(b[i], f);
        else fprintf(f, "\\x%02x", b[i]);
    }
}

int pb_cmd_score(pb_args *a) {
    const char *ckpt = NULL, *text_path = NULL, *data_dir_flag = NULL, *adapter = NULL, *v;
    long seq = 0, batch = 8, threads = 0;
    int per_token = 0, r;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--checkpoint", 1, &v)) > 0) ckpt = v;
        else if (!r && (r = pb_args_opt(a, "--text", 1, &v)) > 0) text_path = v;
        else if (!r && (r = pb_args_opt(a, "--adapter", 1, &v)) > 0) adapter = v;
        else if (!r && (r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) data_dir_flag = v;
        else if (!r && (r = pb_args_opt(a, "--per-token", 0, NULL)) > 0) per_token = 1;
        else if (!r && (r = pb_args_opt(a, "--seq", 1, &v)) > 0) r = pb_args_int(a, "--seq", v, 1, 1 << 20, &seq) ? 1 : -1;
        else if (!r && (r = pb_args_opt(a, "--batch", 1, &v)) > 0)
            r = pb_args_int(a, "--batch", v, 1, 4096, &batch) ? 1 : -1;
        else if (!r && (r = pb_args_opt(a, "--threads", 1, &v)) > 0)
            r = pb_args_int(a, "--threads", v, 1, 1024, &threads) ? 1 : -1;
        else if (!r && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            score_usage(stdout);
            return 0;
        } else if (!r) {
            fprintf(stderr, "peftbench score: unknown option '%s' (see peftbench score --help)\n", a->argv[a->i]);
            return 2;
        }
        if (r < 0) return 2;
    }
    if (!ckpt) {
        fprintf(stderr, "peftbench score: --checkpoint CKPT.h5 is required\n");
        score_usage(stderr);
        return 2;
    }
    pb_set_threads((int)threads);
    char dd[1024], def[1100];
    if (!strcmp(ckpt, "default")) {
        pb_status s0 = pb_data_dir(data_dir_flag, dd, sizeof dd);
        if (!s0) s0 = pb_prepare_default_backbone(dd, (int)threads, 1, "score", def, sizeof def);
        if (s0) {
            fprintf(stderr, "peftbench score: %s\n", pb_errmsg());
            return 1;
        }
        ckpt = def;
    }
    pb_model m;
    pb_ckpt_info info;
    pb_status st = pb_ckpt_load(ckpt, &m, &info);
    if (st) {
        fprintf(stderr, "peftbench score: %s\n", pb_errmsg());
        return 1;
    }
    pb_tokenizer tk; /* the checkpoint's tokenizer encodes the text */
    if ((st = pb_ckpt_load_tokenizer(ckpt, &tk))) {
        fprintf(stderr, "peftbench score: %s\n", pb_errmsg());
        pb_model_free(&m);
        return 1;
    }
    pb_peft peft = {0};
    if (adapter && (st = pb_adapter_load(adapter, &m, &peft))) { /* a method trained on this backbone */
        fprintf(stderr, "peftbench score: %s\n", pb_errmsg());
        pb_model_free(&m);
        pb_tokenizer_free(&tk);
        return 1;
    }
    int rc = 1;
    int32_t *tok = NULL, *own = NULL;
    size_t n = 0;
    float *lp = NULL;
    char *text = NULL;
    pb_corpus corpus = {0};
    pb_corpus_split sp = {0};
    const char *what;
    if (m.head != PB_HEAD_LM) {
        fprintf(stderr, "peftbench score: %s has a classification head; scoring needs the LM head\n", ckpt);
        goto out;
    }
    if (seq == 0) seq = info.has_recipe && info.recipe.seq <= m.d.max_seq ? info.recipe.seq : m.d.max_seq;
    if (seq > m.d.max_seq) {
        fprintf(stderr, "peftbench score: --seq %ld exceeds the backbone's max_seq %d (accepted: 1 to %d)\n", seq,
                m.d.max_seq, m.d.max_seq);
        rc = 2;
        goto out;
    }
    float mask = info.has_recipe && info.recipe.mask_prob > 0 ? info.recipe.mask_prob : 0.15f;
    if (text_path) {
        size_t len;
        if ((st = pb_read_text_file(text_path, &text, &len))) {
            fprintf(stderr, "peftbench score: --text %s\n", pb_errmsg());
            goto out;
        }
        if ((st = pb_text_tokens_tok(&tk, text, len, &own, &n))) goto fail;
        tok = own;
        what = strcmp(text_path, "-") ? text_path : "standard input";
    } else {
        if (!info.has_recipe) {
            fprintf(stderr, "peftbench score: %s holds no pretraining recipe, so it has no held-out corpus: give "
                    "--text FILE\n", ckpt);
            goto out;
        }
        char data_dir[1024];
        if ((st = pb_data_dir(data_dir_flag, data_dir, sizeof data_dir))) goto fail;
        const char *spec = info.recipe.corpus;
        if ((st = pb_corpus_open(&corpus, spec, data_dir, (size_t)info.recipe.builtin_bytes))) goto fail;
        if (corpus.hash != info.recipe.corpus_hash) {
            fprintf(stderr, "peftbench score: the corpus '%s' found now (%s) differs from the one %s was pretrained "
                    "on (hash %016llx, now %016llx): give --text FILE\n", spec, corpus.path[0] ? corpus.path : spec,
                    ckpt, (unsigned long long)info.recipe.corpus_hash, (unsigned long long)corpus.hash);
            goto out;
        }
        if ((st = pb_corpus_split_docs_tok(&corpus, info.recipe.holdout, &tk, &sp))) goto fail;
        tok = sp.heldout;
        n = sp.n_heldout;
        what = "held-out documents of the pretraining corpus";
    }
    if (per_token && !(lp = malloc(sizeof *lp * (n ? n : 1)))) {
        st = pb_errorf(PB_ENOMEM, "out of memory");
        goto fail;
    }
    pb_eval ev;
    if ((st = pb_eval_stream_tok(&m, &tk, tok, n, (int)seq, (int)batch, mask, 0, &ev, lp))) goto fail;
    if (per_token) {
        printf("# index\t%s\tlogprob (natural log)\n", tk.kind == PB_TOKENIZER_BYTE ? "byte" : "token");
        for (size_t i = 0; i < n; i++) {
            if (isnan(lp[i])) continue;
            printf("%zu\t", i);
            print_token(stdout, &tk, tok[i]);
            printf("\t%.9g\n", lp[i]);
        }
    }
    printf("checkpoint: %s\n", ckpt);
    printf("text: %s\n", what);
    char tkname[32];
    pb_tokenizer_name(&tk, tkname, sizeof tkname);
    printf("objective: %s, window %ld tokens, tokenizer %s\n", m.d.causal ? "next-token" : "masked-token", seq, tkname);
    printf("total loss (nats): %.9g\n", ev.nats);
    printf("tokens: %llu\n", (unsigned long long)ev.tokens);
    printf("bytes: %llu\n", (unsigned long long)ev.bytes);
    printf("bits per byte: %.9g\n", ev.bits_per_byte);
    printf("perplexity: %.9g\n", ev.perplexity);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "peftbench score: %s\n", pb_errmsg());
out:
    free(lp);
    free(own);
    free(text);
    pb_corpus_split_free(&sp);
    pb_corpus_free(&corpus);
    if (adapter) pb_peft_free(&peft);
    pb_model_free(&m);
    pb_tokenizer_free(&tk);
    return rc;
}
