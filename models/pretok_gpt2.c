/* pretok_gpt2.c — GPT-2's pre-split, exactly: the pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * on UTF-8 with Unicode classes (unicode.h), as a scanner rather than a regex engine. The
 * reasoning for each branch is in models/TOKENIZER.md ("GPT-2-exact pre-split").
 *
 * Not: the project's own pre-split (pb_tokenizer_pieces, tokenizer.c) or BPE. */
#include "tokenizer.h"
#include "unicode.h"

#include <string.h>

/* Class of the character at s[i] (i < len); *n receives its length in bytes. */
static int class_at(const unsigned char *s, size_t len, size_t i, size_t *n) {
    uint32_t cp;
    if (s[i] < 0x80) {
        *n = 1;
        return pb_uc_class(s[i]);
    }
    *n = pb_utf8_next(s + i, len - i, &cp);
    return pb_uc_class(cp);
}

/* End of the run of class c starting at i. */
static size_t run_end(const unsigned char *s, size_t len, size_t i, int c) {
    size_t n;
    while (i < len && class_at(s, len, i, &n) == c) i += n;
    return i;
}

/* Length of the contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', or 0. */
static size_t contraction(const unsigned char *s, size_t len, size_t i) {
    static const char *const forms[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        size_t l = strlen(forms[k]);
        if (i + l <= len && !memcmp(s + i, forms[k], l)) return l;
    }
    return 0;
}

void pb_pretok_gpt2(const char *text, size_t len, pb_piece_fn fn, void *ud) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, n;
    while (i < len) {
        int c = class_at(s, len, i, &n);
        size_t end;
        if (c == PB_UC_SPACE) {
            /* The maximal whitespace run [i, j); last is where its last character starts. */
            size_t j = i, last = i;
            while (j < len && class_at(s, len, j, &n) == PB_UC_SPACE) last = j, j += n;
            if (j == len) { /* \s+(?!\S) takes the whole run */
                fn(s + i, j - i, ud);
                return;
            }
            if (last > i) { /* \s+(?!\S) backtracks to leave the last character */
                if (fn(s + i, last - i, ud)) return;
                i = last;
            }
            if (s[i] == ' ') /* " ?X+": the space starts the next run (never a contraction) */
                end = run_end(s, len, j, class_at(s, len, j, &n));
            else /* \s+ takes the one character */
                end = j;
        } else {
            size_t l = s[i] == '\'' ? contraction(s, len, i) : 0;
            end = l ? i + l : run_end(s, len, i, c);
        }
        if (fn(s + i, end - i, ud)) return;
        i = end;
    }
}
