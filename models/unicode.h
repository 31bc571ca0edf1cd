/* unicode.h — what GPT-2's pre-split needs of Unicode: UTF-8 decoding and the classes letter
 * (\p{L}), number (\p{N}), white space (\s) and other (models/TOKENIZER.md, "GPT-2-exact
 * pre-split"). The class table is generated from Debian's unicode-data by
 * scripts/gen_unicode_classes.py (models/unicode_classes.c, committed).
 *
 * Not: normalisation, case mapping, or any other Unicode property.
 */
#ifndef PB_UNICODE_H
#define PB_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PB_UC_OTHER = 0, PB_UC_LETTER = 1, PB_UC_NUMBER = 2, PB_UC_SPACE = 3 } pb_uc_class_t;

/* A code point standing for one byte that is not part of a well-formed UTF-8 sequence (outside
 * Unicode's range, so it never collides with a real character); its class is other. */
#define PB_UC_INVALID 0x110000u

typedef struct {
    uint32_t lo, hi; /* inclusive */
    uint8_t cls;     /* pb_uc_class_t */
} pb_uc_range;

/* The generated table: sorted, disjoint ranges of non-other code points. */
extern const pb_uc_range pb_uc_ranges[];
extern const size_t pb_uc_n_ranges;
extern const char pb_uc_version[]; /* "15.0.0" */

/* The class of code point cp (other for PB_UC_INVALID and unassigned code points). */
pb_uc_class_t pb_uc_class(uint32_t cp);

/* Decodes the character at s[0..len) (len >= 1): returns its length in bytes (1..4) and sets
 * *cp. A byte that does not start a well-formed sequence (Unicode's Table 3-7: no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequence) gives length 1 and
 * *cp = PB_UC_INVALID. */
size_t pb_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

#endif
