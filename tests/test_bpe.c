/* test_bpe.c — the BPE tokenizer: the pre-split, merges learned from a hand-made corpus (known
 * merges, the tie rule, runs of one symbol), encode -> decode = identity on arbitrary bytes
 * (invalid UTF-8, long runs, specials skipped), determinism, bad merge lists refused, the
 * tokenizer stored in and read back from a checkpoint (old byte files read as byte), and
 * pretraining with --tokenizer bpe:N (bits per byte over the documents' bytes, resume refused
 * under another tokenizer). */
#include "testutil.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/bpe.h"
#include "models/checkpoint.h"
#include "models/corpus.h"
#include "models/corpus_load.h"
#include "models/desc.h"
#include "models/pretrain.h"
#include "models/tokenizer.h"
#include "pb_error.h"
#include "pb_rng.h"

/* ---- pre-split ------------------------------------------------------------------------------ */

typedef struct {
    char got[32][32];
    int n;
} pieces;

static int collect(const unsigned char *p, size_t len, void *ud) {
    pieces *ps = ud;
    assert_true(ps->n < 32 && len < 32);
    memcpy(ps->got[ps->n], p, len);
    ps->got[ps->n][len] = '\0';
    ps->n++;
    return 0;
}

static void test_pieces(void **state) {
    (void)state;
    const char *text = "Hello, world!  It's 42\n\nok \xc3\xa9t\xc3\xa9 --";
    const char *want[] = {"Hello", ",", " world", "!", " ", " It", "'", "s", " 42", "\n\n", "ok", " \xc3\xa9t\xc3\xa9",
                          " --"};
    pieces ps = {.n = 0};
    pb_tokenizer_pieces(text, strlen(text), collect, &ps);
    assert_int_equal(ps.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < ps.n; i++) assert_string_equal(ps.got[i], want[i]);
}

typedef struct {
    size_t total, longest, count;
} piece_stats;

static int measure(const unsigned char *p, size_t len, void *ud) {
    (void)p;
    piece_stats *s = ud;
    s->total += len;
    s->count++;
    if (len > s->longest) s->longest = len;
    return 0;
}

static void test_pieces_cut_long_runs(void **state) {
    (void)state;
    char run[200];
    memset(run, '-', sizeof run);
    piece_stats s = {0, 0, 0};
    pb_tokenizer_pieces(run, sizeof run, measure, &s);
    assert_int_equal(s.total, sizeof run);
    assert_int_equal(s.longest, PB_BPE_MAX_PIECE);
    assert_int_equal(s.count, (sizeof run + PB_BPE_MAX_PIECE - 1) / PB_BPE_MAX_PIECE);
}

/* ---- learning ------------------------------------------------------------------------------- */

static void learn_text(pb_tokenizer *t, const char *text, int n) {
    pb_text_span sp = {text, strlen(text)};
    assert_int_equal(pb_bpe_learn(t, &sp, 1, n), PB_OK);
}

static void test_known_merges(void **state) {
    (void)state;
    /* Pieces "ab", " ab" x2, " cd": (a,b) 3 times first; then (' ', ab) twice; then (' ', c) and
     * (c, d) tie at 1: the smaller pair (' ' = 32 < 'c' = 99) wins; then (' c', d); then nothing
     * is left to merge, so 4 merges of the 10 asked. */
    pb_tokenizer t;
    learn_text(&t, "ab ab ab cd", 10);
    const int32_t want[] = {'a', 'b', ' ', 262, ' ', 'c', 264, 'd'};
    assert_int_equal(t.kind, PB_TOKENIZER_BPE);
    assert_int_equal(t.n_merges, 4);
    assert_int_equal(t.vocab, 266);
    assert_memory_equal(t.merges, want, sizeof want);
    const unsigned char *b;
    assert_int_equal(pb_tokenizer_token_bytes(&t, 265, &b), 3);
    assert_memory_equal(b, " cd", 3);
    int32_t ids[16];
    const char *text = "ab ab ab cd";
    assert_int_equal(pb_tokenizer_encode(&t, ids, 16, text, strlen(text)), 4);
    const int32_t enc[] = {262, 263, 263, 265};
    assert_memory_equal(ids, enc, sizeof enc);
    /* Unseen text falls back to bytes where no merge applies. */
    assert_int_equal(pb_tokenizer_encode(&t, ids, 16, "abc", 3), 2);
    assert_int_equal(ids[0], 262);
    assert_int_equal(ids[1], 'c');
    char name[32];
    pb_tokenizer_name(&t, name, sizeof name);
    assert_string_equal(name, "bpe:4");
    pb_tokenizer_free(&t);
}

static void test_runs_of_one_symbol(void **state) {
    (void)state;
    /* "aaaa": (a,a) occurs twice non-overlapping -> aa aa -> aaaa. "aaa" alone: (a,a) once
     * (left to right), then (aa, a). */
    pb_tokenizer t;
    learn_text(&t, "aaaa", 10);
    const int32_t want4[] = {'a', 'a', 262, 262};
    assert_int_equal(t.n_merges, 2);
    assert_memory_equal(t.merges, want4, sizeof want4);
    pb_tokenizer_free(&t);
    learn_text(&t, "aaa", 10);
    const int32_t want3[] = {'a', 'a', 262, 'a'};
    assert_int_equal(t.n_merges, 2);
    assert_memory_equal(t.merges, want3, sizeof want3);
    int32_t ids[8];
    assert_int_equal(pb_tokenizer_encode(&t, ids, 8, "aaa", 3), 1);
    assert_int_equal(ids[0], 263);
    assert_int_equal(pb_tokenizer_encode(&t, ids, 8, "aaaaa", 5), 2); /* (a,a) first: aa aa a; then (aa,a): aa aaa */
    assert_int_equal(ids[0], 262);
    assert_int_equal(ids[1], 263);
    pb_tokenizer_free(&t);
}

/* The tokens of a text with counts taken from its own encoding: the learner's last merge must
 * still occur in the encoded training text (the encoder applies what the learner learned). */
static void test_encoder_agrees_with_learner(void **state) {
    (void)state;
    size_t len;
    char *text = pb_corpus_builtin(60000, 3, &len);
    assert_non_null(text);
    pb_text_span sp = {text, len};
    pb_tokenizer t;
    assert_int_equal(pb_bpe_learn(&t, &sp, 1, 300), PB_OK);
    assert_int_equal(t.n_merges, 300);
    int32_t *ids = malloc(sizeof *ids * len);
    assert_non_null(ids);
    size_t n = pb_tokenizer_encode(&t, ids, len, text, len);
    assert_true(n < len / 2); /* the built-in corpus has a small vocabulary: merges compress it well */
    int *used = calloc((size_t)t.vocab, sizeof *used);
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < t.vocab && !pb_tok_is_special(ids[i]));
        used[ids[i]]++;
    }
    /* Every merge had a positive count when learned, so the last one is used in the encoding
     * of its own training text, and so are most others. */
    assert_true(used[t.vocab - 1] > 0);
    char *back = malloc(len + 1);
    assert_int_equal(pb_tokenizer_decode(&t, back, len + 1, ids, n), len);
    assert_memory_equal(back, text, len);
    free(back);
    free(used);
    free(ids);
    pb_tokenizer_free(&t);
    free(text);
}

static void test_round_trip_arbitrary_bytes(void **state) {
    (void)state;
    size_t len;
    char *text = pb_corpus_builtin(40000, 5, &len);
    pb_text_span sp = {text, len};
    pb_tokenizer t;
    assert_int_equal(pb_bpe_learn(&t, &sp, 1, 200), PB_OK);
    pb_rng r;
    pb_rng_seed(&r, 11);
    char buf[700], out[701];
    int32_t ids[700];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = (size_t)pb_rng_below(&r, sizeof buf + 1);
        int mode = trial % 3; /* 0: any byte; 1: mostly text with invalid UTF-8; 2: long runs */
        for (size_t i = 0; i < n; i++) {
            if (mode == 0) buf[i] = (char)pb_rng_below(&r, 256);
            else if (mode == 1) buf[i] = pb_rng_below(&r, 10) ? text[pb_rng_below(&r, len)] : (char)(0x80 + pb_rng_below(&r, 128));
            else buf[i] = i % 150 < 120 ? ' ' : "a-\n\xff"[pb_rng_below(&r, 4)];
        }
        size_t k = pb_tokenizer_encode(&t, ids, sizeof ids / sizeof ids[0], buf, n);
        assert_true(k <= n);
        assert_int_equal(pb_tokenizer_decode(&t, out, sizeof out, ids, k), n);
        assert_memory_equal(out, buf, n);
    }
    /* A short output buffer: encode says how many it needs, decode truncates safely. */
    const char *s = "the farmer \xff\xfe plants";
    size_t need = pb_tokenizer_encode(&t, ids, 0, s, strlen(s));
    assert_int_equal(pb_tokenizer_encode(&t, ids, sizeof ids / sizeof ids[0], s, strlen(s)), need);
    ids[need] = PB_TOK_EOS; /* specials decode to nothing */
    assert_int_equal(pb_tokenizer_decode(&t, out, 5, ids, need + 1), strlen(s));
    assert_int_equal(strlen(out), 4);
    pb_tokenizer_free(&t);
    free(text);
}

static void test_deterministic(void **state) {
    (void)state;
    size_t len;
    char *text = pb_corpus_builtin(50000, 9, &len);
    /* The same documents given as one span or cut at a piece boundary learn the same merges. */
    const char *cut = strstr(text + len / 2, " ");
    assert_non_null(cut);
    pb_text_span one = {text, len}, two[2] = {{text, (size_t)(cut - text)}, {cut, len - (size_t)(cut - text)}};
    pb_tokenizer a, b;
    assert_int_equal(pb_bpe_learn(&a, &one, 1, 250), PB_OK);
    assert_int_equal(pb_bpe_learn(&b, two, 2, 250), PB_OK);
    assert_int_equal(a.n_merges, b.n_merges);
    assert_memory_equal(a.merges, b.merges, sizeof(int32_t) * 2 * (size_t)a.n_merges);
    pb_tokenizer_free(&b);
    /* A prefix of the merges is a tokenizer too: learning fewer merges gives the prefix. */
    assert_int_equal(pb_bpe_learn(&b, &one, 1, 100), PB_OK);
    assert_memory_equal(a.merges, b.merges, sizeof(int32_t) * 2 * 100);
    pb_tokenizer c;
    assert_int_equal(pb_tokenizer_copy(&c, &a), PB_OK);
    assert_memory_equal(a.merges, c.merges, sizeof(int32_t) * 2 * (size_t)a.n_merges);
    pb_tokenizer_free(&a);
    pb_tokenizer_free(&b);
    pb_tokenizer_free(&c);
    free(text);
}

static void test_bad_merges_and_specs(void **state) {
    (void)state;
    pb_tokenizer t;
    const int32_t special[] = {'a', PB_TOK_EOS};
    assert_int_equal(pb_tokenizer_from_merges(&t, special, 1), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "special"));
    const int32_t forward[] = {'a', 'b', 262, 263};
    assert_int_equal(pb_tokenizer_from_merges(&t, forward, 2), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "merge 1 (262, 263)"));
    const int32_t repeat[] = {'a', 'b', 'c', 'd', 'a', 'b'};
    assert_int_equal(pb_tokenizer_from_merges(&t, repeat, 3), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "repeats merge 0"));
    pb_tokenizer_kind k;
    int n;
    assert_int_equal(pb_tokenizer_parse_spec("bpe:4096", &k, &n), PB_OK);
    assert_int_equal(k, PB_TOKENIZER_BPE);
    assert_int_equal(n, 4096);
    assert_int_equal(pb_tokenizer_parse_spec("byte", &k, &n), PB_OK);
    assert_int_equal(k, PB_TOKENIZER_BYTE);
    const char *bad[] = {"bpe", "bpe:", "bpe:0", "bpe:-3", "bpe:12x", "wordpiece", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pb_tokenizer_parse_spec(bad[i], &k, &n), PB_EINVAL);
        assert_non_null(strstr(pb_errmsg(), "accepted 'byte' or 'bpe:N'"));
    }
}

/* ---- checkpoint ----------------------------------------------------------------------------- */

static void test_checkpoint_round_trip(void **state) {
    (void)state;
    pb_tokenizer t;
    learn_text(&t, "the cat sat on the mat; the cat ate the rat", 12);
    pb_model_desc d = *pb_backbone_find("tiny");
    d.vocab = t.vocab;
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 3), PB_OK);
    const char *path = tu_tmp_path("bpe_ckpt.h5");
    pb_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.tok = &t;
    assert_int_equal(pb_ckpt_save(path, &m, &info, NULL), PB_OK);
    pb_ckpt_info got;
    assert_int_equal(pb_ckpt_read_info(path, &got), PB_OK);
    assert_string_equal(got.tokenizer, "bpe");
    assert_int_equal(got.tok_merges, 12);
    assert_int_equal(got.tok_vocab, PB_TOK_VOCAB + 12);
    assert_null(got.tok);
    pb_tokenizer back;
    assert_int_equal(pb_ckpt_load_tokenizer(path, &back), PB_OK);
    assert_int_equal(back.kind, PB_TOKENIZER_BPE);
    assert_int_equal(back.n_merges, t.n_merges);
    assert_memory_equal(back.merges, t.merges, sizeof(int32_t) * 2 * (size_t)t.n_merges);
    pb_tokenizer_free(&back);
    pb_model m2;
    assert_int_equal(pb_ckpt_load(path, &m2, NULL), PB_OK);
    assert_int_equal(m2.d.vocab, t.vocab);
    assert_memory_equal(m2.params, m.params, sizeof(float) * m.n_params);
    pb_model_free(&m2);

    /* Edited merges are checked on load: a merge that names a special token, a missing dataset. */
    {
        int32_t *bad = malloc(sizeof(int32_t) * 2 * (size_t)t.n_merges);
        memcpy(bad, t.merges, sizeof(int32_t) * 2 * (size_t)t.n_merges);
        bad[1] = PB_TOK_SEP;
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(f >= 0);
        hid_t ds = H5Dopen2(f, "/tokenizer/merges", H5P_DEFAULT);
        assert_true(ds >= 0);
        assert_true(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad) >= 0);
        H5Dclose(ds);
        H5Fclose(f);
        free(bad);
        assert_int_equal(pb_ckpt_reseal(path), PB_OK);
        assert_int_equal(pb_ckpt_load_tokenizer(path, &back), PB_EFORMAT);
        assert_non_null(strstr(pb_errmsg(), "/tokenizer/merges"));
        assert_non_null(strstr(pb_errmsg(), "merge 0 (97, 260): id 260 is a special token"));
        f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(H5Ldelete(f, "/tokenizer/merges", H5P_DEFAULT) >= 0);
        H5Fclose(f);
        assert_int_equal(pb_ckpt_reseal(path), PB_OK);
        assert_int_equal(pb_ckpt_load_tokenizer(path, &back), PB_EFORMAT);
        assert_non_null(strstr(pb_errmsg(), "'/tokenizer/merges' is missing"));
    }

    /* A model whose vocabulary is not the tokenizer's is refused on save. */
    info.tok = NULL;
    assert_int_equal(pb_ckpt_save(path, &m, &info, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "differs from its tokenizer's (262)"));
    pb_model_free(&m);

    /* A byte checkpoint (as every file written before BPE) reads as the byte tokenizer; a recipe
     * without the tokenizer attribute (files written before it) reads as "byte". */
    assert_int_equal(pb_model_init(&m, pb_backbone_find("tiny"), PB_HEAD_LM, 0, 3), PB_OK);
    info.has_recipe = 1;
    snprintf(info.recipe.backbone, sizeof info.recipe.backbone, "tiny");
    snprintf(info.recipe.objective, sizeof info.recipe.objective, "next-token");
    info.recipe.batch = info.recipe.seq = 1;
    assert_int_equal(pb_ckpt_save(path, &m, &info, NULL), PB_OK);
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        assert_true(f >= 0);
        hid_t g = H5Gopen2(f, "recipe", H5P_DEFAULT);
        assert_true(g >= 0);
        assert_true(H5Adelete(g, "tokenizer") >= 0);
        H5Gclose(g);
        H5Fclose(f);
        assert_int_equal(pb_ckpt_reseal(path), PB_OK);
    }
    assert_int_equal(pb_ckpt_read_info(path, &got), PB_OK);
    assert_string_equal(got.tokenizer, "byte");
    assert_int_equal(got.tok_merges, 0);
    assert_true(got.has_recipe);
    assert_string_equal(got.recipe.tokenizer, "byte");
    assert_int_equal(pb_ckpt_load_tokenizer(path, &back), PB_OK);
    assert_int_equal(back.kind, PB_TOKENIZER_BYTE);
    assert_int_equal(back.vocab, PB_TOK_VOCAB);
    pb_tokenizer_free(&back);
    pb_model_free(&m);
    pb_tokenizer_free(&t);
    remove(path);
}

/* ---- pretraining ---------------------------------------------------------------------------- */

static pb_pretrain_config bpe_config(const char *tok) {
    pb_pretrain_config c;
    pb_pretrain_defaults(&c);
    snprintf(c.backbone, sizeof c.backbone, "tiny");
    snprintf(c.corpus, sizeof c.corpus, "builtin");
    snprintf(c.tokenizer, sizeof c.tokenizer, "%s", tok);
    c.builtin_bytes = 60000;
    c.steps = 6;
    c.batch = 2;
    c.seq = 32;
    c.lr = 3e-3f;
    c.save_every = 3;
    c.eval_batch = 4;
    return c;
}

static void test_pretrain_bpe(void **state) {
    (void)state;
    const char *path = tu_tmp_path("bpe_pretrain.h5");
    remove(path);
    pb_pretrain_config c = bpe_config("bpe:150");
    pb_pretrain_result res;
    assert_int_equal(pb_pretrain_run(&c, NULL, path, PB_PT_OVERWRITE, NULL, NULL, &res), PB_OK);
    assert_true(res.complete);
    assert_string_equal(res.recipe.tokenizer, "bpe:150");
    /* Bits per byte divides by the bytes of the held-out documents, whatever the tokens. */
    pb_corpus corpus;
    assert_int_equal(pb_corpus_open(&corpus, "builtin", "", c.builtin_bytes), PB_OK);
    pb_corpus_split bytes;
    assert_int_equal(pb_corpus_split_docs(&corpus, c.holdout, &bytes), PB_OK);
    assert_int_equal(res.heldout.bytes, bytes.heldout_bytes);
    assert_true(res.heldout.tokens < res.heldout.bytes);
    assert_true(res.recipe.heldout_tokens < bytes.n_heldout);
    /* The checkpoint carries the tokenizer learned from the training documents only. */
    pb_tokenizer stored, learned;
    assert_int_equal(pb_ckpt_load_tokenizer(path, &stored), PB_OK);
    unsigned char *held = calloc(corpus.n_docs, 1);
    pb_text_span *spans = malloc(sizeof *spans * corpus.n_docs);
    assert_int_equal(pb_corpus_heldout_flags(&corpus, c.holdout, held), PB_OK);
    size_t k = 0;
    for (size_t i = 0; i < corpus.n_docs; i++)
        if (!held[i]) spans[k++] = (pb_text_span){corpus.text + corpus.docs[i].off, corpus.docs[i].len};
    assert_int_equal(pb_bpe_learn(&learned, spans, k, 150), PB_OK);
    assert_int_equal(stored.n_merges, 150);
    assert_memory_equal(stored.merges, learned.merges, sizeof(int32_t) * 300);
    /* Scoring the held-out stream through the stored tokenizer repeats the stored number. */
    pb_model m;
    pb_ckpt_info info;
    assert_int_equal(pb_ckpt_load(path, &m, &info), PB_OK);
    assert_int_equal(m.d.vocab, PB_TOK_VOCAB + 150);
    pb_corpus_split sp;
    assert_int_equal(pb_corpus_split_docs_tok(&corpus, c.holdout, &stored, &sp), PB_OK);
    pb_eval ev;
    assert_int_equal(pb_eval_stream_tok(&m, &stored, sp.heldout, sp.n_heldout, c.seq, 4, 0, 0, &ev, NULL), PB_OK);
    assert_true(ev.bits_per_byte == info.eval.bits_per_byte);
    assert_int_equal(ev.bytes, info.eval.bytes);
    /* A byte stream is refused by a BPE model's evaluation only if the vocabularies differ. */
    assert_int_equal(pb_eval_stream_tok(&m, NULL, sp.heldout, sp.n_heldout, c.seq, 4, 0, 0, &ev, NULL), PB_EINVAL);
    pb_model_free(&m);
    pb_corpus_split_free(&sp);

    /* Resuming under another tokenizer is refused, naming it. */
    pb_pretrain_config c2 = bpe_config("bpe:100");
    assert_int_equal(pb_pretrain_run(&c2, NULL, path, PB_PT_RESUME, NULL, NULL, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "tokenizer is 'bpe:150' there and 'bpe:100' here"));

    free(held);
    free(spans);
    pb_tokenizer_free(&stored);
    pb_tokenizer_free(&learned);
    pb_corpus_split_free(&bytes);
    pb_corpus_free(&corpus);
    pb_pretrain_result_free(&res);
    remove(path);
}

/* Interrupted and resumed BPE pretraining repeats the uninterrupted run bit for bit. */
static int stop_at_4(const pb_pretrain_progress *p, void *ud) {
    (void)ud;
    return p->event == PB_PT_STEP && p->step == 4 ? PB_PT_STOP_SAVE : 0;
}

static void test_pretrain_bpe_resume(void **state) {
    (void)state;
    const char *a = tu_tmp_path("bpe_full.h5"), *b = tu_tmp_path("bpe_resumed.h5");
    remove(a);
    remove(b);
    pb_pretrain_config c = bpe_config("bpe:80");
    pb_pretrain_result ra, rb;
    assert_int_equal(pb_pretrain_run(&c, NULL, a, PB_PT_OVERWRITE, NULL, NULL, &ra), PB_OK);
    assert_int_equal(pb_pretrain_run(&c, NULL, b, PB_PT_OVERWRITE, stop_at_4, NULL, &rb), PB_OK);
    assert_true(rb.stopped);
    pb_pretrain_result_free(&rb);
    assert_int_equal(pb_pretrain_run(&c, NULL, b, PB_PT_RESUME, NULL, NULL, &rb), PB_OK);
    assert_true(rb.complete);
    assert_int_equal(rb.n_losses, ra.n_losses);
    assert_memory_equal(rb.losses, ra.losses, sizeof(float) * (size_t)ra.n_losses);
    assert_true(rb.heldout.bits_per_byte == ra.heldout.bits_per_byte);
    pb_pretrain_result_free(&ra);
    pb_pretrain_result_free(&rb);
    remove(a);
    remove(b);
}

/* Through the command line: `pretrain --tokenizer bpe:N` writes a BPE checkpoint that `score`
 * reads with its tokenizer, and that `run` fine-tunes through its tokenizer. */
static void test_cli(void **state) {
    (void)state;
    const char *ck = tu_tmp_path("bpe_cli.h5"), *log = tu_tmp_path("bpe_cli.log");
    remove(ck);
    const char *bad[] = {"pretrain", "--tokenizer", "bpe:x", "-o", ck, NULL};
    assert_int_equal(tu_run_peftbench(bad, log), 2);
    const char *pre[] = {"pretrain", "--backbone", "tiny", "--corpus", "builtin", "--builtin-bytes", "30000",
                         "--steps", "3", "--batch", "2", "--seq", "32", "--tokenizer", "bpe:60", "--threads", "1",
                         "--quiet", "-o", ck, NULL};
    assert_int_equal(tu_run_peftbench(pre, log), 0);
    const char *score[] = {"score", "--checkpoint", ck, "--threads", "1", NULL};
    assert_int_equal(tu_run_peftbench(score, log), 0);
    const char *run[] = {"run", "--method", "lora", "--task", "reverse:n_train=8,n_dev=4,n_test=4", "--backbone", ck,
                         "--steps", "1", "--threads", "1", "--quiet", NULL};
    assert_int_equal(tu_run_peftbench(run, log), 0); /* through its tokenizer (test_finetune_bpe.c) */
    remove(ck);
    remove(log);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_pieces_cut_long_runs),
        cmocka_unit_test(test_known_merges),
        cmocka_unit_test(test_runs_of_one_symbol),
        cmocka_unit_test(test_encoder_agrees_with_learner),
        cmocka_unit_test(test_round_trip_arbitrary_bytes),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_merges_and_specs),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_pretrain_bpe),
        cmocka_unit_test(test_pretrain_bpe_resume),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
