/* test_pretrain.c — pretraining, evaluation and corpora: a few steps of the tiny backbones on the
 * built-in corpus lower the loss (next-token and masked-token); the same recipe, seed and
 * thread count give a byte-identical checkpoint; a run interrupted (with or without a save on
 * the way out) and resumed continues the same loss curve bit for bit and ends in the same
 * file; a resume with another recipe is refused; scoring agrees with a direct forward (also
 * through `peftbench score`); the held-out split is by document across every source; bad
 * input gives clear errors and loses nothing already written. */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/cli.h"
#include "models/checkpoint.h"
#include "models/corpus_load.h"
#include "models/model.h"
#include "models/pretrain.h"
#include "models/tokenizer.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static pb_pretrain_config tiny_config(const char *backbone, long steps) {
    pb_pretrain_config c;
    pb_pretrain_defaults(&c);
    snprintf(c.backbone, sizeof c.backbone, "%s", backbone);
    snprintf(c.corpus, sizeof c.corpus, "builtin");
    snprintf(c.tokenizer, sizeof c.tokenizer, "byte"); /* these tests are about the loop (test_bpe.c: BPE) */
    c.builtin_bytes = 150000;
    c.steps = steps;
    c.seed = 3;
    c.batch = 8;
    c.seq = 64;
    c.lr = 3e-3f;
    c.save_every = 0;
    c.eval_tokens = 4096;
    c.threads = 2;
    return c;
}

static unsigned char *read_all(const char *path, long *n) {
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    *n = (long)sb.st_size;
    unsigned char *b = malloc((size_t)*n + 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    b[*n] = 0;
    return b;
}

static void assert_same_file(const char *a, const char *b) {
    long na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    if (na != nb || memcmp(x, y, (size_t)na) != 0) fail_msg("%s and %s differ (%ld and %ld bytes)", a, b, na, nb);
    free(x);
    free(y);
}

/* Stops the run at step `at`: PB_PT_STOP_NOW (a crash) or PB_PT_STOP_SAVE (Ctrl-C). */
typedef struct {
    long at;
    int how;
} stopper;

static int stop_at(const pb_pretrain_progress *p, void *ud) {
    const stopper *s = ud;
    return p->event == PB_PT_STEP && p->step == s->at ? s->how : 0;
}

/* ---- training ------------------------------------------------------------------------------- */

static void check_lowers_loss(const char *backbone, double max_final_bpb) {
    pb_pretrain_config c = tiny_config(backbone, 80);
    const char *path = tu_tmp_path(!strcmp(backbone, "tiny") ? "lower_dec.h5" : "lower_enc.h5");
    pb_pretrain_result res;
    assert_int_equal(pb_pretrain_run(&c, NULL, path, PB_PT_OVERWRITE, NULL, NULL, &res), PB_OK);
    assert_true(res.complete);
    assert_int_equal(res.n_losses, 80);
    double first = 0, last = 0;
    for (int i = 0; i < 5; i++) first += res.losses[i] / 5.0, last += res.losses[75 + i] / 5.0;
    if (!(last < first - 1.0)) fail_msg("%s: loss went from %.4f to %.4f", backbone, first, last);
    /* The untrained model scores about log2(262) = 8.03 bits per byte; trained, much less. */
    assert_true(res.heldout.tokens > (strcmp(backbone, "tiny") ? 300u : 1000u)); /* encoders score 15% */
    if (!(res.heldout.bits_per_byte < max_final_bpb))
        fail_msg("%s: held-out %.4f bits per byte", backbone, res.heldout.bits_per_byte);
    pb_ckpt_info info;
    assert_int_equal(pb_ckpt_read_info(path, &info), PB_OK);
    assert_true(info.has_eval && info.has_recipe && info.has_train && !info.resumable);
    assert_true(info.eval.bits_per_byte == res.heldout.bits_per_byte);
    assert_string_equal(info.recipe.objective, !strcmp(backbone, "tiny") ? "next-token" : "masked-token");
    assert_int_equal(info.step, 80);
    pb_pretrain_result_free(&res);
}

static void test_decoder_lowers_loss(void **state) {
    (void)state;
    check_lowers_loss("tiny", 4.5);
}

static void test_encoder_lowers_loss(void **state) {
    (void)state;
    check_lowers_loss("tiny-enc", 4.5);
}

static void test_same_recipe_same_file(void **state) {
    (void)state;
    pb_pretrain_config c = tiny_config("tiny", 30);
    c.save_every = 10;
    const char *a = tu_tmp_path("det_a.h5"), *b = tu_tmp_path("det_b.h5");
    assert_int_equal(pb_pretrain_run(&c, NULL, a, PB_PT_OVERWRITE, NULL, NULL, NULL), PB_OK);
    assert_int_equal(pb_pretrain_run(&c, NULL, b, PB_PT_OVERWRITE, NULL, NULL, NULL), PB_OK);
    assert_same_file(a, b);
    /* Another seed gives another model. */
    c.seed = 4;
    assert_int_equal(pb_pretrain_run(&c, NULL, b, PB_PT_OVERWRITE, NULL, NULL, NULL), PB_OK);
    long na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    assert_true(na != nb || memcmp(x, y, (size_t)na) != 0);
    free(x);
    free(y);
}

static void check_resume(int how, const char *backbone) {
    pb_pretrain_config c = tiny_config(backbone, 40);
    c.save_every = 10;
    char na[64], nb[64];
    snprintf(na, sizeof na, "resume_full_%d_%s.h5", how, backbone);
    snprintf(nb, sizeof nb, "resume_cut_%d_%s.h5", how, backbone);
    const char *full = tu_tmp_path(na), *cut = tu_tmp_path(nb);
    pb_pretrain_result ref, r1, r2;
    assert_int_equal(pb_pretrain_run(&c, NULL, full, PB_PT_OVERWRITE, NULL, NULL, &ref), PB_OK);

    /* Interrupted at step 25: a crash keeps the step-20 checkpoint; Ctrl-C saves step 25. */
    stopper s = {.at = 25, .how = how};
    assert_int_equal(pb_pretrain_run(&c, NULL, cut, PB_PT_OVERWRITE, stop_at, &s, &r1), PB_OK);
    assert_true(r1.stopped && !r1.complete);
    assert_int_equal(r1.steps_done, 25);
    pb_ckpt_info info;
    assert_int_equal(pb_ckpt_read_info(cut, &info), PB_OK);
    long saved = how == PB_PT_STOP_NOW ? 20 : 25;
    assert_true(info.resumable);
    assert_int_equal(info.step, saved);

    /* Without --resume the existing file is refused and left as it is. */
    long n0;
    unsigned char *before = read_all(cut, &n0);
    assert_int_equal(pb_pretrain_run(&c, NULL, cut, PB_PT_NEW, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "--resume"));
    long n1;
    unsigned char *after = read_all(cut, &n1);
    assert_int_equal(n0, n1);
    assert_int_equal(memcmp(before, after, (size_t)n0), 0);
    free(before);
    free(after);

    assert_int_equal(pb_pretrain_run(&c, NULL, cut, PB_PT_RESUME, NULL, NULL, &r2), PB_OK);
    assert_int_equal(r2.first_step, saved);
    assert_true(r2.complete);
    assert_int_equal(r2.n_losses, 40);
    tu_assert_same(r2.losses, ref.losses, 40, "loss curve after resume");
    assert_true(r2.heldout.nats == ref.heldout.nats);
    assert_same_file(full, cut);

    /* Resuming a finished checkpoint does nothing and reports it. */
    pb_pretrain_result r3;
    assert_int_equal(pb_pretrain_run(&c, NULL, cut, PB_PT_RESUME, NULL, NULL, &r3), PB_OK);
    assert_true(r3.complete);
    assert_int_equal(r3.first_step, 40);
    assert_same_file(full, cut);
    pb_pretrain_result_free(&r3);
    pb_pretrain_result_free(&ref);
    pb_pretrain_result_free(&r1);
    pb_pretrain_result_free(&r2);
}

static void test_resume_after_crash(void **state) {
    (void)state;
    check_resume(PB_PT_STOP_NOW, "tiny");
}

static void test_resume_after_interrupt(void **state) {
    (void)state;
    check_resume(PB_PT_STOP_SAVE, "tiny");
}

static void test_resume_encoder(void **state) {
    (void)state;
    check_resume(PB_PT_STOP_NOW, "tiny-enc");
}

static void test_resume_other_recipe(void **state) {
    (void)state;
    pb_pretrain_config c = tiny_config("tiny", 20);
    c.save_every = 5;
    const char *p = tu_tmp_path("other_recipe.h5");
    stopper s = {.at = 7, .how = PB_PT_STOP_NOW};
    assert_int_equal(pb_pretrain_run(&c, NULL, p, PB_PT_OVERWRITE, stop_at, &s, NULL), PB_OK);
    c.lr = 1e-3f;
    assert_int_equal(pb_pretrain_run(&c, NULL, p, PB_PT_RESUME, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "another recipe"));
    assert_non_null(strstr(pb_errmsg(), "lr is 0.003 there and 0.001 here"));
    c.lr = 3e-3f;
    c.builtin_bytes = 160000;
    assert_int_equal(pb_pretrain_run(&c, NULL, p, PB_PT_RESUME, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "corpus_hash"));
}

/* ---- scoring -------------------------------------------------------------------------------- */

/* Runs `peftbench ARGS` with stdout captured into a file; returns the exit status. */
static int run_cli(const char *out_path, int argc, char **argv) {
    fflush(stdout);
    int saved = dup(1);
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = pb_cli_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static double field(const char *text, const char *key) {
    const char *p = strstr(text, key);
    if (!p) fail_msg("output lacks '%s':\n%s", key, text);
    return strtod(p + strlen(key), NULL);
}

static void test_score_agrees_with_forward(void **state) {
    (void)state;
    pb_pretrain_config c = tiny_config("tiny", 20);
    const char *ck = tu_tmp_path("score.h5");
    assert_int_equal(pb_pretrain_run(&c, NULL, ck, PB_PT_OVERWRITE, NULL, NULL, NULL), PB_OK);
    pb_model m;
    assert_int_equal(pb_ckpt_load(ck, &m, NULL), PB_OK);
    const char *text = "The farmer watches the green fields near the river.";
    size_t len = strlen(text);
    int32_t *tok;
    size_t n;
    assert_int_equal(pb_text_tokens(text, len, &tok, &n), PB_OK);
    assert_int_equal(n, len + 1);
    assert_int_equal(tok[0], PB_TOK_EOS);

    /* Direct forward: one window of 64 positions (the text, then padding) predicting the next
     * token at each of the n-1 real positions. */
    int T = (int)n - 1, W = 64;
    int32_t ids[64], tg[64];
    for (int t = 0; t < W; t++) {
        ids[t] = t < (int)n ? tok[t] : PB_TOK_PAD;
        tg[t] = t < T ? tok[t + 1] : -1;
    }
    pb_batch b = {.B = 1, .T = W, .ids = ids, .mask = NULL, .targets = tg};
    float mean;
    assert_int_equal(pb_model_forward(&m, &b, 0, &mean), PB_OK);
    double direct = 0;
    for (int t = 0; t < T; t++) direct += m.losses[t];
    float *lpd = malloc(sizeof *lpd * (size_t)T);
    for (int t = 0; t < T; t++) lpd[t] = -m.losses[t];
    /* A forward of exactly the text's length agrees up to float rounding. */
    pb_batch b2 = {.B = 1, .T = T, .ids = tok, .mask = NULL, .targets = tg};
    float mean2;
    assert_int_equal(pb_model_forward(&m, &b2, 0, &mean2), PB_OK);
    assert_true(fabs((double)mean2 * T - direct) < 1e-4 * direct);

    /* pb_eval_stream with a window that holds the whole text: the same numbers exactly. */
    float *lp = malloc(sizeof *lp * n);
    pb_eval ev;
    assert_int_equal(pb_eval_stream(&m, tok, n, 64, 4, 0.15f, 0, &ev, lp), PB_OK);
    assert_int_equal(ev.tokens, len);
    assert_int_equal(ev.bytes, len);
    assert_true(ev.nats == direct);
    assert_true(isnan(lp[0]));
    tu_assert_same(lp + 1, lpd, (size_t)T, "per-token log-probabilities");
    assert_true(fabs(ev.bits_per_byte - direct / log(2.0) / (double)len) < 1e-12);
    assert_true(fabs(ev.perplexity - exp(direct / (double)len)) < 1e-9 * ev.perplexity);
    assert_true(fabs(direct / T - mean) < 1e-5);

    /* Shorter windows score the same tokens with less context: same count, other total. */
    pb_eval ev8;
    assert_int_equal(pb_eval_stream(&m, tok, n, 8, 3, 0.15f, 0, &ev8, NULL), PB_OK);
    assert_int_equal(ev8.tokens, len);
    assert_true(ev8.nats != ev.nats);

    /* Through the command line, with full precision in the output. */
    const char *txt = tu_tmp_path("score.txt"), *out = tu_tmp_path("score.out");
    tu_write_text(txt, text);
    char *argv[] = {"peftbench", "score", "--checkpoint", (char *)ck, "--text", (char *)txt, "--per-token", NULL};
    assert_int_equal(run_cli(out, 7, argv), 0);
    long no;
    char *o = (char *)read_all(out, &no);
    double nats = field(o, "total loss (nats): "), bpb = field(o, "bits per byte: ");
    assert_true(fabs(nats - direct) <= 1e-8 * fabs(direct));
    assert_true(fabs(bpb - ev.bits_per_byte) <= 1e-8 * bpb);
    assert_int_equal((long)field(o, "tokens: "), (long)len);
    assert_true(fabs(field(o, "perplexity: ") - ev.perplexity) <= 1e-8 * ev.perplexity);
    /* The per-token line of byte 1 ('T'). */
    char line[64];
    snprintf(line, sizeof line, "\n1\tT\t");
    assert_true(fabs(field(o, line) - lpd[0]) <= 1e-7 * fabs(lpd[0]));
    free(o);

    /* Without --text: the held-out documents, equal to the number stored at the end of training. */
    pb_ckpt_info info;
    assert_int_equal(pb_ckpt_read_info(ck, &info), PB_OK);
    char *argv2[] = {"peftbench", "score", "--checkpoint", (char *)ck, NULL};
    assert_int_equal(run_cli(out, 4, argv2), 0);
    o = (char *)read_all(out, &no);
    /* eval_tokens capped the stored evaluation at 4096 tokens; the command scores them all. */
    assert_true(field(o, "tokens: ") > (double)info.eval.tokens);
    free(o);
    /* Bad input to the command: missing checkpoint, --seq too long. */
    char *argv3[] = {"peftbench", "score", "--checkpoint", (char *)tu_tmp_path("nope.h5"), NULL};
    assert_int_equal(run_cli(out, 4, argv3), 1);
    char *argv4[] = {"peftbench", "score", "--checkpoint", (char *)ck, "--text", (char *)txt, "--seq", "65", NULL};
    assert_int_equal(run_cli(out, 8, argv4), 2);

    free(tok);
    free(lp);
    free(lpd);
    pb_model_free(&m);
}

/* ---- corpora -------------------------------------------------------------------------------- */

/* Writes a fake fetched corpus: five sources of n documents each. */
static const char *fake_data_dir(int n) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/data%d", tu_tmpdir(), n);
    mkdir(dir, 0755);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/corpus", dir);
    mkdir(sub, 0755);
    const char *names[] = {"sotu", "austen", "jargon", "moby_dick", "devil"};
    for (int s = 0; s < 5; s++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s.txt", sub, names[s]);
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        for (int i = 0; i < n; i++) fprintf(f, "%sDocument %d of %s. Some text follows here.", i ? "\n\f\n" : "", i, names[s]);
        fclose(f);
    }
    return dir;
}

static void test_heldout_by_document(void **state) {
    (void)state;
    const char *dir = fake_data_dir(60);
    pb_corpus c;
    assert_int_equal(pb_corpus_open(&c, "fetched", dir, 0), PB_OK);
    assert_int_equal(c.n_sources, 5);
    assert_int_equal(c.n_docs, 300);
    pb_corpus_split sp;
    assert_int_equal(pb_corpus_split_docs(&c, 0.05, &sp), PB_OK);
    assert_int_equal(sp.train_docs + sp.heldout_docs, 300);
    /* Every source gives held-out documents, and the decision is a function of (source, index). */
    int held_per_source[5] = {0};
    size_t bytes = 0;
    for (size_t i = 0; i < c.n_docs; i++) {
        int h = pb_corpus_doc_heldout(c.sources[c.docs[i].source], c.docs[i].index, 0.05);
        held_per_source[c.docs[i].source] += h;
        bytes += c.docs[i].len;
    }
    for (int s = 0; s < 5; s++) assert_true(held_per_source[s] >= 0);
    assert_int_equal(sp.train_bytes + sp.heldout_bytes, bytes);
    /* The stream: <eos> before every document, bytes otherwise. */
    assert_int_equal(sp.n_heldout, sp.heldout_bytes + sp.heldout_docs);
    assert_int_equal(sp.heldout[0], PB_TOK_EOS);
    size_t eos = 0;
    for (size_t i = 0; i < sp.n_heldout; i++) eos += sp.heldout[i] == PB_TOK_EOS;
    assert_int_equal(eos, sp.heldout_docs);
    /* Which sources are represented in the held-out stream: all five. */
    const char *names[] = {"sotu", "austen", "jargon", "moby_dick", "devil"};
    char *held = malloc(sp.n_heldout + 1);
    for (size_t i = 0; i < sp.n_heldout; i++) held[i] = sp.heldout[i] < 256 ? (char)sp.heldout[i] : '|';
    held[sp.n_heldout] = 0;
    for (int s = 0; s < 5; s++)
        if (!strstr(held, names[s])) fail_msg("no held-out document of source %s", names[s]);
    free(held);
    /* About 5%: between 1% and 12% of 300 documents. */
    assert_true(sp.heldout_docs >= 5 && sp.heldout_docs <= 36);
    pb_corpus_split_free(&sp);
    pb_corpus_free(&c);

    /* Tiny sources: still one held-out document each (two documents per source). */
    dir = fake_data_dir(2);
    assert_int_equal(pb_corpus_open(&c, "fetched", dir, 0), PB_OK);
    assert_int_equal(pb_corpus_split_docs(&c, 0.05, &sp), PB_OK);
    assert_int_equal(sp.heldout_docs, 5);
    assert_int_equal(sp.train_docs, 5);
    pb_corpus_split_free(&sp);
    pb_corpus_free(&c);
}

static void test_plain_text_file(void **state) {
    (void)state;
    /* No form feeds: cut into pseudo-documents at line breaks. */
    const char *p = tu_tmp_path("plain.txt");
    FILE *f = fopen(p, "wb");
    for (int i = 0; i < 2000; i++) fprintf(f, "line %d of a plain text file without separators\n", i);
    fclose(f);
    pb_corpus c;
    assert_int_equal(pb_corpus_open(&c, p, NULL, 0), PB_OK);
    assert_string_equal(c.sources[0], "plain");
    assert_true(c.n_docs > 10);
    size_t total = 0;
    for (size_t i = 0; i < c.n_docs; i++) {
        total += c.docs[i].len;
        assert_true(c.docs[i].len <= 2 * PB_CORPUS_CHUNK);
        if (i + 1 < c.n_docs) assert_int_equal(c.text[c.docs[i].off + c.docs[i].len - 1], '\n');
    }
    assert_int_equal(total + 3, c.len); /* every byte in a document, plus the closing separator */
    pb_corpus_free(&c);
}

static void test_bad_input(void **state) {
    (void)state;
    const char *out = tu_tmp_path("bad.h5");
    pb_pretrain_config c = tiny_config("nope", 5);
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "unknown backbone 'nope'"));
    assert_non_null(strstr(pb_errmsg(), "tiny"));
    assert_non_null(strstr(pb_errmsg(), "small"));

    c = tiny_config("tiny", 5);
    c.seq = 65;
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "sequence length 65"));
    assert_non_null(strstr(pb_errmsg(), "2 to 64"));

    c = tiny_config("tiny", 5);
    snprintf(c.corpus, sizeof c.corpus, "%s", tu_tmp_path("missing.txt"));
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_ENOTFOUND);
    assert_non_null(strstr(pb_errmsg(), "missing.txt"));
    assert_non_null(strstr(pb_errmsg(), "builtin"));

    snprintf(c.corpus, sizeof c.corpus, "%s", tu_tmpdir());
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "is a directory"));

    const char *small = tu_tmp_path("small.txt");
    tu_write_text(small, "Too short for a window.");
    snprintf(c.corpus, sizeof c.corpus, "%s", small);
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_EDATA);
    assert_non_null(strstr(pb_errmsg(), "fewer than one window"));

    const char *empty = tu_tmp_path("empty.txt");
    tu_write_text(empty, "");
    snprintf(c.corpus, sizeof c.corpus, "%s", empty);
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_EDATA);
    assert_non_null(strstr(pb_errmsg(), "empty"));

    /* The fetched corpus absent: say how to get it. */
    snprintf(c.corpus, sizeof c.corpus, "fetched");
    snprintf(c.data_dir, sizeof c.data_dir, "%s/no-data", tu_tmpdir());
    assert_int_equal(pb_pretrain_run(&c, NULL, out, PB_PT_NEW, NULL, NULL, NULL), PB_ENOTFOUND);
    assert_non_null(strstr(pb_errmsg(), "peftbench data fetch"));
    char path[1200];
    assert_int_not_equal(pb_default_backbone_path(c.data_dir, 2, path, sizeof path, NULL, NULL), PB_OK);
    assert_non_null(strstr(pb_errmsg(), "peftbench data fetch"));
    /* The cached default's name carries the recipe's tokenizer and steps (an old byte default,
     * mini-3600s-seed1-*.h5, is another file). */
    char want[64];
    snprintf(want, sizeof want, "/backbones/%s-bpe4096-%ds-seed1-", PB_DEFAULT_BACKBONE, PB_DEFAULT_STEPS);
    assert_string_equal(PB_DEFAULT_TOKENIZER, "bpe:4096");
    if (!strstr(path, want)) fail_msg("default backbone path %s lacks %s", path, want);

    /* -o a directory. */
    c = tiny_config("tiny", 5);
    assert_int_equal(pb_pretrain_run(&c, NULL, tu_tmpdir(), PB_PT_NEW, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "is a directory"));
    /* Nothing was written by any of the failures. */
    assert_int_equal(access(out, F_OK), -1);

    /* The command line: usage errors exit 2, runtime errors 1, and name the problem. */
    const char *log = tu_tmp_path("cli.out");
    char *a1[] = {"peftbench", "pretrain", "--backbone", "tiny", "--corpus", "builtin", "--steps", "x", "-o",
                  (char *)out, NULL};
    assert_int_equal(run_cli(log, 10, a1), 2);
    char *a2[] = {"peftbench", "pretrain", "--backbone", "tiny", "--corpus", "builtin", NULL};
    assert_int_equal(run_cli(log, 6, a2), 2);
    char *a3[] = {"peftbench", "pretrain", "--backbone", "tiny", "--corpus", (char *)small, "--quiet", "-o",
                  (char *)out, NULL};
    assert_int_equal(run_cli(log, 9, a3), 1);
    assert_int_equal(access(out, F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_lowers_loss),
        cmocka_unit_test(test_encoder_lowers_loss),
        cmocka_unit_test(test_same_recipe_same_file),
        cmocka_unit_test(test_resume_after_crash),
        cmocka_unit_test(test_resume_after_interrupt),
        cmocka_unit_test(test_resume_encoder),
        cmocka_unit_test(test_resume_other_recipe),
        cmocka_unit_test(test_score_agrees_with_forward),
        cmocka_unit_test(test_heldout_by_document),
        cmocka_unit_test(test_plain_text_file),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
