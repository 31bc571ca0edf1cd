/* corpus_load.h — pretraining text: the fetched corpus, any text file, or the built-in corpus,
 * cut into documents and split into training and held-out token streams BY DOCUMENT.
 *
 * Documents are separated by "\n\f\n" (the layout `peftbench data fetch` writes: DATADIR/corpus/
 * <source>.txt, tasks/DATA.md). A file with no separator at all (one document) and more than
 * PB_CORPUS_CHUNK * 2 bytes is cut into pseudo-documents of about PB_CORPUS_CHUNK bytes at line
 * breaks, so that any text file can be held out by document too.
 *
 * The held-out split is a pure function of (source name, document index): a document is held
 * out when pb_hash_uniform(FNV-1a(source name), index) < holdout. It therefore takes the same
 * fraction from every source (DESIGN.md "Lessons": holding out the corpus tail left a held-out
 * set made of one source that training never saw), does not depend on the training seed, and is
 * stable when other sources are added. Every source with at least two documents gives at least
 * one held-out and one training document; a source of one document only trains.
 *
 * Token streams are <eos> d0 <eos> d1 ... <eos> dn with each document encoded by the tokenizer
 * (byte-level unless one is given, models/tokenizer.h), so every byte of every document is
 * covered by exactly one prediction target in a sequential pass, and documents are delimited as
 * GPT-2's <|endoftext|> delimits them.
 *
 * Not: a tokenizer or a batch sampler (models/lm.h samples windows from these streams).
 */
#ifndef PB_CORPUS_LOAD_H
#define PB_CORPUS_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"
#include "tokenizer.h"

#define PB_CORPUS_CHUNK 4096
#define PB_CORPUS_MAX_SOURCES 16
/* The fetched sources, in the order their text is concatenated (shared DATA.md). */
#define PB_CORPUS_FETCHED_LIST "sotu, austen, jargon, moby_dick, devil"

typedef struct {
    size_t off, len; /* bytes of text[off .. off+len) */
    int source;      /* index into sources */
    size_t index;    /* document index within its source */
} pb_doc;

typedef struct {
    char spec[512];       /* as given: "builtin", "fetched" or a file path */
    char path[512];       /* file or corpus directory read ("" for builtin) */
    char *text;           /* (len) all sources' text, each followed by "\n\f\n" */
    size_t len;
    uint64_t hash;        /* FNV-1a 64 of text */
    size_t builtin_bytes; /* size asked of the generator (builtin only) */
    pb_doc *docs;         /* (n_docs) non-empty documents */
    size_t n_docs;
    int n_sources;
    char sources[PB_CORPUS_MAX_SOURCES][32];
} pb_corpus;

/* Reads a corpus. spec: "builtin" (pb_corpus_builtin(builtin_bytes, seed 1)), "fetched"
 * (DATA_DIR/corpus/{sotu,austen,jargon,moby_dick,devil}.txt, all required), or the path of a
 * text file. Errors name the file and say what is accepted: missing file, a directory, an
 * empty file, a missing fetched source (run `peftbench data fetch --only corpus`). */
pb_status pb_corpus_open(pb_corpus *c, const char *spec, const char *data_dir, size_t builtin_bytes);

/* How many of the fetched corpus's files are missing or empty in data_dir (0: complete); the
 * first such path goes to first (may be NULL). Reads nothing but the directory entries. */
int pb_corpus_fetched_missing(const char *data_dir, char *first, size_t cap);
void pb_corpus_free(pb_corpus *c);

/* 1 if document `index` of `source` is held out at fraction `holdout` (before the
 * at-least-one-per-source adjustment that pb_corpus_split applies). */
int pb_corpus_doc_heldout(const char *source, size_t index, double holdout);

typedef struct {
    int32_t *train;       /* (n_train) token stream of the training documents (<eos> + tokens each) */
    size_t n_train;
    int32_t *heldout;     /* (n_heldout) token stream of the held-out documents */
    size_t n_heldout;
    size_t train_docs, heldout_docs;
    size_t train_bytes, heldout_bytes;
} pb_corpus_split;

/* Splits c by document (see above) into two token streams. holdout in [0, 0.5]. Byte-level. */
pb_status pb_corpus_split_docs(const pb_corpus *c, double holdout, pb_corpus_split *out);
/* The same with the documents encoded by tok (NULL: byte-level). */
pb_status pb_corpus_split_docs_tok(const pb_corpus *c, double holdout, const pb_tokenizer *tok,
                                   pb_corpus_split *out);
/* held[i] (c->n_docs entries) = 1 if document i is held out, after the at-least-one-per-source
 * adjustment: the split pb_corpus_split_docs makes (BPE merges are learned from the others). */
pb_status pb_corpus_heldout_flags(const pb_corpus *c, double holdout, unsigned char *held);
void pb_corpus_split_free(pb_corpus_split *s);

/* Reads a whole file (or standard input for "-") into a malloc'd NUL-terminated buffer; errors
 * name the file (missing, a directory, unreadable). */
pb_status pb_read_text_file(const char *path, char **text, size_t *len);

#endif
