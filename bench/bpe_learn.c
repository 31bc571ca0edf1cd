/* bpe_learn.c — time BPE learning and encoding on a corpus (models/TOKENIZER.md).
 *
 *   build/bench/bpe_learn [--corpus fetched|builtin|FILE] [--data-dir DIR] [--merges N]...
 *
 * Learns N merges from the training documents of the pretraining split (holdout 0.05, as
 * `peftbench pretrain` does), encodes the training and held-out documents, checks that decoding
 * gives the text back, and prints one line per N:
 *   merges=N learn_s=… encode_s=… train_bytes=… train_tokens=… bytes_per_token=… heldout_bytes_per_token=…
 * Single-threaded; timings depend on the load.
 */
#include "models/bpe.h"
#include "models/corpus_load.h"
#include "pb_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *spec = "fetched", *data_dir = getenv("PEFTBENCH_DATA");
    int merges[16], nm = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--corpus") && i + 1 < argc) spec = argv[++i];
        else if (!strcmp(argv[i], "--data-dir") && i + 1 < argc) data_dir = argv[++i];
        else if (!strcmp(argv[i], "--merges") && i + 1 < argc && nm < 16) merges[nm++] = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bpe_learn [--corpus fetched|builtin|FILE] [--data-dir DIR] [--merges N]...\n");
            return 2;
        }
    }
    if (!nm) merges[nm++] = 1024, merges[nm++] = 4096;
    pb_corpus c;
    if (pb_corpus_open(&c, spec, data_dir ? data_dir : "", 2000000)) {
        fprintf(stderr, "bpe_learn: %s\n", pb_errmsg());
        return 1;
    }
    unsigned char *held = calloc(c.n_docs, 1);
    pb_text_span *spans = malloc(sizeof *spans * c.n_docs);
    if (!held || !spans || pb_corpus_heldout_flags(&c, 0.05, held)) return 1;
    size_t k = 0;
    for (size_t i = 0; i < c.n_docs; i++)
        if (!held[i]) spans[k++] = (pb_text_span){c.text + c.docs[i].off, c.docs[i].len};
    for (int j = 0; j < nm; j++) {
        pb_tokenizer t;
        double t0 = now_s();
        if (pb_bpe_learn(&t, spans, k, merges[j])) {
            fprintf(stderr, "bpe_learn: %s\n", pb_errmsg());
            return 1;
        }
        double t1 = now_s();
        pb_corpus_split sp;
        if (pb_corpus_split_docs_tok(&c, 0.05, &t, &sp)) {
            fprintf(stderr, "bpe_learn: %s\n", pb_errmsg());
            return 1;
        }
        double t2 = now_s();
        /* Decoding the training stream gives the training documents back. */
        char *back = malloc(sp.train_bytes + 1);
        size_t got = back ? pb_tokenizer_decode(&t, back, sp.train_bytes + 1, sp.train, sp.n_train) : 0;
        int ok = back && got == sp.train_bytes;
        size_t off = 0;
        for (size_t i = 0; ok && i < c.n_docs; i++) {
            if (held[i]) continue;
            ok = !memcmp(back + off, c.text + c.docs[i].off, c.docs[i].len);
            off += c.docs[i].len;
        }
        free(back);
        printf("merges=%d learn_s=%.3f encode_s=%.3f train_bytes=%zu train_tokens=%zu bytes_per_token=%.4f "
               "heldout_bytes_per_token=%.4f roundtrip=%s\n",
               t.n_merges, t1 - t0, t2 - t1, sp.train_bytes, sp.n_train - sp.train_docs,
               (double)sp.train_bytes / (double)(sp.n_train - sp.train_docs),
               (double)sp.heldout_bytes / (double)(sp.n_heldout - sp.heldout_docs), ok ? "ok" : "FAILED");
        pb_corpus_split_free(&sp);
        pb_tokenizer_free(&t);
        if (!ok) return 1;
    }
    free(held);
    free(spans);
    pb_corpus_free(&c);
    return 0;
}
