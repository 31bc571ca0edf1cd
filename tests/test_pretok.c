/* test_pretok.c — GPT-2's exact pre-split (pb_pretok_gpt2) and what it stands on: UTF-8
 * decoding and the Unicode classes generated from unicode-data (models/unicode.h). Every
 * expected split below is worked out by hand from GPT-2's pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (the reasoning is in the comments), and the project's own pre-split (pb_tokenizer_pieces) is
 * checked to still give its documented, different answer on the cases where they differ. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"
#include "models/unicode.h"
#include "pb_rng.h"

/* ---- classes and UTF-8 ---------------------------------------------------------------------- */

static void test_unicode_classes(void **state) {
    (void)state;
    static const struct {
        uint32_t cp;
        int cls;
    } cases[] = {
        {'a', PB_UC_LETTER},    {'Z', PB_UC_LETTER},   {'0', PB_UC_NUMBER},  {' ', PB_UC_SPACE},
        {'\t', PB_UC_SPACE},    {'\n', PB_UC_SPACE},   {'\v', PB_UC_SPACE},  {'\f', PB_UC_SPACE},
        {'\r', PB_UC_SPACE},    {'\'', PB_UC_OTHER},   {'_', PB_UC_OTHER},   {0x1C, PB_UC_OTHER}, /* not White_Space */
        {0x85, PB_UC_SPACE},    /* NEL: White_Space */ {0xA0, PB_UC_SPACE},  /* no-break space */
        {0xAA, PB_UC_LETTER},   /* ª: Lo */            {0xAD, PB_UC_OTHER},  /* soft hyphen: Cf */
        {0xB2, PB_UC_NUMBER},   /* ²: No */            {0xE9, PB_UC_LETTER}, /* é */
        {0x1C5, PB_UC_LETTER},  /* ǅ: Lt */            {0x2B0, PB_UC_LETTER}, /* ʰ: Lm */
        {0x301, PB_UC_OTHER},   /* combining acute: Mn */
        {0x3A9, PB_UC_LETTER},  /* Ω */                {0x436, PB_UC_LETTER}, /* ж */
        {0x663, PB_UC_NUMBER},  /* ٣: Nd */            {0x1680, PB_UC_SPACE}, /* ogham space mark */
        {0x200B, PB_UC_OTHER},  /* zero-width space: Cf, not White_Space */
        {0x2028, PB_UC_SPACE},  {0x2029, PB_UC_SPACE}, {0x3000, PB_UC_SPACE},
        {0x216B, PB_UC_NUMBER}, /* Ⅻ: Nl */            {0x2014, PB_UC_OTHER}, /* — */
        {0x4E2D, PB_UC_LETTER}, /* 中: inside a First/Last range of UnicodeData.txt */
        {0xAC00, PB_UC_LETTER}, /* 가: Hangul range */ {0xE000, PB_UC_OTHER}, /* private use */
        {0xFEFF, PB_UC_OTHER},  /* BOM: Cf */          {0x1F44B, PB_UC_OTHER}, /* 👋: So */
        {0x20000, PB_UC_LETTER}, /* CJK extension B */ {0x10FFFF, PB_UC_OTHER},
        {PB_UC_INVALID, PB_UC_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if ((int)pb_uc_class(cases[i].cp) != cases[i].cls)
            fail_msg("U+%04X: class %d, expected %d", (unsigned)cases[i].cp, (int)pb_uc_class(cases[i].cp),
                     cases[i].cls);
    }
    assert_string_equal(pb_uc_version, "15.0.0");
    /* The generated ranges are sorted and disjoint. */
    for (size_t i = 0; i < pb_uc_n_ranges; i++) {
        assert_true(pb_uc_ranges[i].lo <= pb_uc_ranges[i].hi);
        if (i) assert_true(pb_uc_ranges[i - 1].hi < pb_uc_ranges[i].lo);
    }
}

static void test_utf8_next(void **state) {
    (void)state;
    static const struct {
        const char *s;
        size_t len, n;
        uint32_t cp;
    } cases[] = {
        {"A", 1, 1, 'A'},
        {"\xc3\xa9", 2, 2, 0xE9},
        {"\xe2\x82\xac", 3, 3, 0x20AC},
        {"\xf0\x9f\x91\x8b", 4, 4, 0x1F44B},
        {"\xf4\x8f\xbf\xbf", 4, 4, 0x10FFFF},
        {"\x80", 1, 1, PB_UC_INVALID},             /* lone continuation byte */
        {"\xc0\xaf", 2, 1, PB_UC_INVALID},         /* overlong '/' */
        {"\xc1\xbf", 2, 1, PB_UC_INVALID},         /* overlong */
        {"\xe0\x80\xaf", 3, 1, PB_UC_INVALID},     /* overlong */
        {"\xed\xa0\x80", 3, 1, PB_UC_INVALID},     /* surrogate U+D800 */
        {"\xf0\x80\x80\xaf", 4, 1, PB_UC_INVALID}, /* overlong */
        {"\xf4\x90\x80\x80", 4, 1, PB_UC_INVALID}, /* above U+10FFFF */
        {"\xf5\x80\x80\x80", 4, 1, PB_UC_INVALID},
        {"\xff", 1, 1, PB_UC_INVALID},
        {"\xc3", 1, 1, PB_UC_INVALID},             /* truncated at the end of the text */
        {"\xe2\x82", 2, 1, PB_UC_INVALID},         /* truncated */
        {"\xe2\x82x", 3, 1, PB_UC_INVALID},        /* a continuation byte missing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0;
        size_t n = pb_utf8_next((const unsigned char *)cases[i].s, cases[i].len, &cp);
        if (n != cases[i].n || cp != cases[i].cp)
            fail_msg("case %zu: length %zu cp 0x%X, expected %zu 0x%X", i, n, (unsigned)cp, cases[i].n,
                     (unsigned)cases[i].cp);
    }
}

/* ---- the pre-split -------------------------------------------------------------------------- */

typedef struct {
    char got[64][64];
    int n;
} pieces;

static int collect(const unsigned char *p, size_t len, void *ud) {
    pieces *ps = ud;
    assert_true(ps->n < 64 && len < 64);
    memcpy(ps->got[ps->n], p, len);
    ps->got[ps->n][len] = '\0';
    ps->n++;
    return 0;
}

/* Pieces of text (NUL-terminated) under one pre-split must be want[] (NULL-terminated). */
static void expect_split(void (*split)(const char *, size_t, pb_piece_fn, void *), const char *text,
                         const char *const *want) {
    pieces ps = {.n = 0};
    split(text, strlen(text), collect, &ps);
    int nw = 0;
    while (want[nw]) nw++;
    int bad = ps.n != nw;
    for (int i = 0; !bad && i < nw; i++) bad = strcmp(ps.got[i], want[i]) != 0;
    if (bad) {
        fprintf(stderr, "split of \"%s\": got %d pieces:", text, ps.n);
        for (int i = 0; i < ps.n; i++) fprintf(stderr, " [%s]", ps.got[i]);
        fprintf(stderr, "\n  expected %d:", nw);
        for (int i = 0; i < nw; i++) fprintf(stderr, " [%s]", want[i]);
        fprintf(stderr, "\n");
        fail();
    }
}

#define SPLIT(text, ...) expect_split(pb_pretok_gpt2, text, (const char *const[]){__VA_ARGS__, NULL})
#define SPLIT_ASCII(text, ...) expect_split(pb_tokenizer_pieces, text, (const char *const[]){__VA_ARGS__, NULL})

static void test_whitespace(void **state) {
    (void)state;
    /* "\n\n" is followed by 'T': \s+(?!\S) backtracks to "\n" (followed by "\n", not \S); at the
     * second "\n" it fails and \s+ takes it alone. */
    SPLIT("\n\nThe", "\n", "\n", "The");
    /* The project's own pre-split keeps the run whole (the documented deviation). */
    SPLIT_ASCII("\n\nThe", "\n\n", "The");
    /* Trailing whitespace reaches the end of the text: \s+(?!\S) takes it whole. */
    SPLIT("Hello world!!  ", "Hello", " world", "!!", "  ");
    /* Two spaces before a word: the first alone (\s+(?!\S)), the second starts " world". */
    SPLIT("Hello  world", "Hello", " ", " world");
    SPLIT("   x", "  ", " x");
    /* " \n" before a letter: " " (followed by "\n"), then "\n" alone (\s+). */
    SPLIT(" \nThe", " ", "\n", "The");
    SPLIT_ASCII(" \nThe", " \n", "The");
    SPLIT("\t\tx", "\t", "\t", "x");
    /* A run ending in a space: everything but the space, then " x". */
    SPLIT("\n \nx", "\n ", "\n", "x");
    SPLIT("a\n  b", "a", "\n ", " b");
    SPLIT("x \n", "x", " \n");
    /* Unicode white space: U+00A0, U+3000, U+0085 are \s; only U+0020 is the ` ?` of a word. */
    SPLIT("a\xc2\xa0" "b", "a", "\xc2\xa0", "b");
    SPLIT("a \xe3\x80\x80" "b", "a", " ", "\xe3\x80\x80", "b");
    SPLIT("a\xc2\x85" "b", "a", "\xc2\x85", "b");
    /* U+FEFF and U+200B are not white space: "other". */
    SPLIT("\xef\xbb\xbfx \xe2\x80\x8b", "\xef\xbb\xbf", "x", " \xe2\x80\x8b");
    SPLIT(" ", " ");
    SPLIT("\n", "\n");
}

static void test_contractions(void **state) {
    (void)state;
    SPLIT("It's I'm you're we've they'll he'd don't", "It", "'s", " I", "'m", " you", "'re", " we", "'ve",
          " they", "'ll", " he", "'d", " don", "'t");
    SPLIT_ASCII("It's", "It", "'", "s"); /* the project's pre-split has no contractions */
    /* Case-sensitive: "'S" is not a contraction. */
    SPLIT("IT'S", "IT", "'", "S");
    /* A contraction matches wherever a piece starts, even before more letters. */
    SPLIT("'sup", "'s", "up");
    SPLIT("'dog's", "'d", "og", "'s");
    /* Inside a run of "other" the apostrophe is taken by the run; after a space, ` ?[^...]+`
     * comes first. */
    SPLIT("!'s", "!'", "s");
    SPLIT("''s", "''", "s");
    SPLIT("x 's", "x", " '", "s");
    SPLIT("rock'n'roll", "rock", "'", "n", "'", "roll");
    SPLIT("we'll've", "we", "'ll", "'ve");
    SPLIT("'", "'");
}

static void test_letters_numbers_other(void **state) {
    (void)state;
    /* Digits are their own runs (any length), with an optional leading space. */
    SPLIT("In 2024, 3.14 and x2", "In", " 2024", ",", " 3", ".", "14", " and", " x", "2");
    /* Unicode numbers: Arabic-Indic digits (Nd), superscript two (No), Roman twelve (Nl). */
    SPLIT("\xd9\xa1\xd9\xa2\xd9\xa3 x\xc2\xb2 \xe2\x85\xab", "\xd9\xa1\xd9\xa2\xd9\xa3", " x", "\xc2\xb2",
          " \xe2\x85\xab");
    /* Non-ASCII letters stay inside their words. */
    SPLIT("caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9", " na\xc3\xafve");
    SPLIT("\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1 \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", /* Ωμέγα Привет */
          "\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1", " \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    /* A combining mark (Mn) is "other": a decomposed é splits its word. */
    SPLIT("cafe\xcc\x81s", "cafe", "\xcc\x81", "s");
    /* Emoji are "other" (So), each run with its leading space. */
    SPLIT("hello \xf0\x9f\x91\x8b world \xf0\x9f\x8c\x8d", "hello", " \xf0\x9f\x91\x8b", " world",
          " \xf0\x9f\x8c\x8d");
    /* Punctuation runs join; an em dash is punctuation too. */
    SPLIT("a\xe2\x80\x94" "b...!? (c)", "a", "\xe2\x80\x94", "b", "...!?", " (", "c", ")");
    /* CJK ideographs are letters; the full stop U+3002 is other. */
    SPLIT("\xe4\xb8\xad\xe6\x96\x87\xe3\x80\x82", "\xe4\xb8\xad\xe6\x96\x87", "\xe3\x80\x82");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    /* An invalid byte is one character of class other: it joins runs of other characters. */
    SPLIT("a\xff\xfe" "b", "a", "\xff\xfe", "b");
    SPLIT("ab\xc3", "ab", "\xc3");            /* truncated é at the end */
    SPLIT("ab\xc3 x", "ab", "\xc3", " x");    /* truncated é before a space */
    SPLIT(" \xc3(x", " \xc3(", "x");          /* with its leading space and punctuation */
    SPLIT("x\xed\xa0\x80y", "x", "\xed\xa0\x80", "y"); /* an encoded surrogate: three bytes */
    SPLIT("\xc0\xaf" "1", "\xc0\xaf", "1");  /* overlong */
}

/* The pieces always concatenate to the text and are never empty, on any bytes; no piece is cut
 * (a run of 300 dashes is one piece). */
typedef struct {
    const unsigned char *at;
    size_t total, longest, count;
    int ok;
} cover;

static int check_cover(const unsigned char *p, size_t len, void *ud) {
    cover *c = ud;
    if (len == 0 || p != c->at) c->ok = 0;
    c->at = p + len;
    c->total += len;
    c->count++;
    if (len > c->longest) c->longest = len;
    return 0;
}

static void test_cover_random_bytes(void **state) {
    (void)state;
    pb_rng r;
    pb_rng_seed(&r, 18);
    /* A pool of bytes that makes every branch likely: ASCII classes, UTF-8 leads and
     * continuations, the bytes of NBSP and of U+3000, invalid bytes. */
    static const unsigned char pool[] = {'a', 'Z', '7', ' ', ' ', '\n', '\t', '\'', 's', 'l', '!', 0xC2, 0xA0,
                                         0xE3, 0x80, 0xC3, 0xA9, 0xF0, 0x9F, 0x91, 0x8B, 0xFF, 0xED};
    unsigned char buf[256];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 1 + pb_rng_u64(&r) % sizeof buf;
        for (size_t i = 0; i < len; i++) buf[i] = pool[pb_rng_u64(&r) % sizeof pool];
        cover c = {buf, 0, 0, 0, 1};
        pb_pretok_gpt2((const char *)buf, len, check_cover, &c);
        assert_true(c.ok);
        assert_int_equal(c.total, len);
    }
    char run[300];
    memset(run, '-', sizeof run);
    cover c = {(const unsigned char *)run, 0, 0, 0, 1};
    pb_pretok_gpt2(run, sizeof run, check_cover, &c);
    assert_true(c.ok);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.longest, sizeof run);
    /* Empty text: no piece. */
    c = (cover){(const unsigned char *)run, 0, 0, 0, 1};
    pb_pretok_gpt2(run, 0, check_cover, &c);
    assert_int_equal(c.count, 0);
}

/* fn returning nonzero stops the split. */
static int stop_after_two(const unsigned char *p, size_t len, void *ud) {
    (void)p;
    (void)len;
    return ++*(int *)ud == 2;
}

static void test_stop(void **state) {
    (void)state;
    int n = 0;
    pb_pretok_gpt2("a b c d  ", 9, stop_after_two, &n);
    assert_int_equal(n, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unicode_classes),    cmocka_unit_test(test_utf8_next),
        cmocka_unit_test(test_whitespace),         cmocka_unit_test(test_contractions),
        cmocka_unit_test(test_letters_numbers_other), cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_cover_random_bytes), cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
