/* bpe.h — learning byte-level BPE merges from text (models/TOKENIZER.md).
 *
 * The texts (the pretraining corpus's training documents) are cut into pieces by
 * pb_tokenizer_pieces; each distinct piece is a "word" with its count. Starting from bytes,
 * each step merges the adjacent pair of symbols with the highest count over all words (count =
 * sum over words of occurrences in the word times the word's count; overlapping occurrences in
 * a run such as "aaa" count as the merge would apply them: left to right, non-overlapping), ties
 * broken by the smaller pair (left id first, then right id). The merge replaces every
 * occurrence, left to right, and the pair counts are updated incrementally (only the words that
 * hold the pair are touched). Deterministic: the same texts and merge count give the same
 * merges, on any machine and thread count (the learner is single-threaded).
 *
 * Not: encoding (models/tokenizer.h).
 */
#ifndef PB_BPE_H
#define PB_BPE_H

#include <stddef.h>

#include "pb_error.h"
#include "tokenizer.h"

typedef struct {
    const char *text;
    size_t len;
} pb_text_span;

/* Learns up to n_merges merges from the spans and makes t a BPE tokenizer with them (fewer when
 * no pair occurs any more: every piece is one token). t is overwritten (not freed first). */
pb_status pb_bpe_learn(pb_tokenizer *t, const pb_text_span *spans, size_t n_spans, int n_merges);

#endif
