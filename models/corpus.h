/* corpus.h — the built-in pretraining corpus: deterministic English-like text made in C.
 *
 * For tests and the offline demo only (no download). Sentences are drawn from a small grammar
 * (determiner, adjectives, nouns, verbs, prepositions, numbers, quoted speech) whose word
 * choices have agreement and topical co-occurrence, so a tiny model can learn real structure
 * (spelling, word order, agreement) in seconds. Documents are paragraphs of 3-8 sentences,
 * separated by "\n\f\n" as in the fetched corpus files (tasks/DATA.md).
 *
 * Not: a substitute for the real corpus (`peftbench data fetch`).
 */
#ifndef PB_CORPUS_H
#define PB_CORPUS_H

#include <stddef.h>
#include <stdint.h>

/* Writes about `bytes` bytes (whole documents, at least one) into a new malloc'd, NUL-terminated
 * buffer; *len receives its length. The same seed gives the same text. NULL on out of memory. */
char *pb_corpus_builtin(size_t bytes, uint64_t seed, size_t *len);

#endif
