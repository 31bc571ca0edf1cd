/* tokenizer.h — the tokenizers: byte-level, byte-level BPE learned from the pretraining corpus,
 * and GPT-2-style byte-level BPE with its own vocabulary (imported; models/TOKENIZER.md has the
 * design and the reasons).
 *
 * Token ids 0..255 are the bytes of the UTF-8 text and 256..261 the special tokens, in every
 * tokenizer; a BPE tokenizer with N merges adds ids 262..262+N-1, merge i making id 262+i
 * from an ordered pair of earlier ids. So a byte-level token stream is valid for every
 * tokenizer, the specials have the same ids everywhere, and the vocabulary is 262 + N.
 *
 * Two interfaces:
 *  - pb_tok_encode / pb_tok_decode: the byte tokenizer as plain functions (the demo and other
 *    byte-only paths; they need no object);
 *  - pb_tokenizer: an object, byte or BPE, carried by checkpoints (models/checkpoint.h) and used
 *    by pretraining, the corpus streams, scoring and fine-tuning (task encoding, generation
 *    decoding, prompt tuning's text initialisation, the forgetting metric).
 *
 * BPE encoding: the text is first cut into pieces (bpe: pb_tokenizer_pieces, the project's
 * pre-split modelled on GPT-2's; gpt2: pb_pretok_gpt2, GPT-2's exactly), and merges never cross
 * a piece; within a piece the pair of lowest merge index is merged (all its occurrences, left to
 * right) until no adjacent pair has a merge. Decoding concatenates the tokens' bytes, so encode
 * then decode is the identity on any byte string, invalid UTF-8 included.
 *
 * The gpt2 kind (pb_tokenizer_from_gpt2, pb_tokenizer_load_gpt2; models/tokenizer_gpt2.c) has
 * the vocabulary's own ids: ids 256..261 are ordinary tokens there, not the specials above,
 * and its merges make the id of their concatenated text rather than 262 + i.
 *
 * Not: the learner (models/bpe.h) or the file format (models/CHECKPOINT.md).
 */
#ifndef PB_TOKENIZER_H
#define PB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"

enum {
    PB_TOK_PAD = 256,  /* padding; never attended as a key */
    PB_TOK_BOS = 257,  /* start of a sequence (decoders) */
    PB_TOK_EOS = 258,  /* end of a sequence / of a generated answer */
    PB_TOK_CLS = 259,  /* first token of an encoder classification input (pooled) */
    PB_TOK_SEP = 260,  /* between the two texts of a pair, and between input and target */
    PB_TOK_MASK = 261, /* masked-token prediction (encoder pretraining) */
    PB_TOK_VOCAB = 262 /* the byte tokenizer's vocabulary; the first id a BPE merge makes */
};

/* Writes the bytes of text[0..len) as token ids into out (at most cap); returns the number of
 * ids the whole text needs (may exceed cap: then only cap were written). */
size_t pb_tok_encode(int32_t *out, size_t cap, const char *text, size_t len);
/* Writes the bytes of ids (specials skipped) into out (at most cap-1, NUL-terminated); returns
 * the number of bytes the whole decoding needs. */
size_t pb_tok_decode(char *out, size_t cap, const int32_t *ids, size_t n);
/* "<pad>", "<bos>", ... for specials, NULL for bytes. */
const char *pb_tok_special_name(int32_t id);
/* 1 for the special ids 256..261. */
static inline int pb_tok_is_special(int32_t id) { return id >= 256 && id < PB_TOK_VOCAB; }

/* ---- the tokenizer object ----------------------------------------------------------------- */

typedef enum {
    PB_TOKENIZER_BYTE = 0, /* ids are bytes, then the specials */
    PB_TOKENIZER_BPE = 1,  /* learned by the project: merge i makes id 262 + i; pre-split gpt2-ascii */
    PB_TOKENIZER_GPT2 = 2  /* imported GPT-2-style vocabulary and merges; GPT-2's exact pre-split */
} pb_tokenizer_kind;

/* Longest piece of the pre-split; longer runs (e.g. 300 dashes) are cut every PB_BPE_MAX_PIECE
 * bytes, which bounds the work of encoding one piece. */
#define PB_BPE_MAX_PIECE 64
/* Most merges accepted (vocabulary 262 + this). */
#define PB_BPE_MAX_MERGES (1 << 20)
/* Largest vocabulary of the gpt2 kind (ids 0..PB_GPT2_MAX_VOCAB-1). */
#define PB_GPT2_MAX_VOCAB (1 << 21)

typedef struct pb_tokenizer {
    pb_tokenizer_kind kind;
    int vocab;            /* 262 + n_merges */
    int n_merges;
    int32_t *merges;      /* (n_merges, 2): merge i joins merges[2i], merges[2i+1] into merge_out[i] */
    int32_t *merge_out;   /* (n_merges) the id merge i makes: 262 + i (bpe), the id of the joined text (gpt2) */
    int32_t byte_id[256]; /* the id of each byte as a one-byte token: b itself for byte and bpe */
    /* Derived (pb_tokenizer_from_merges, pb_tokenizer_from_gpt2): */
    uint32_t *tok_off;    /* (vocab + 1) offsets of each token's bytes in tok_bytes */
    unsigned char *tok_bytes;
    uint64_t *rank_keys;  /* (rank_cap) open-addressing table: pair key -> merge index */
    int32_t *rank_vals;   /* (rank_cap) */
    size_t rank_cap;
} pb_tokenizer;

/* The byte tokenizer (nothing allocated; pb_tokenizer_free is harmless). */
void pb_tokenizer_init_byte(pb_tokenizer *t);
/* A BPE tokenizer from n merges (n pairs, copied). Checks that merge i joins ids that exist
 * before it (bytes or earlier merges, never specials) and that no pair repeats; errors say
 * which merge is wrong. n = 0 gives a BPE tokenizer equivalent to the byte one. */
pb_status pb_tokenizer_from_merges(pb_tokenizer *t, const int32_t *merges, int n);
void pb_tokenizer_free(pb_tokenizer *t);
/* Deep copy. */
pb_status pb_tokenizer_copy(pb_tokenizer *dst, const pb_tokenizer *src);

/* "byte", "bpe:N" (N merges; the vocabulary is 262 + N) or "gpt2:V" (V = the vocabulary). */
void pb_tokenizer_name(const pb_tokenizer *t, char *buf, size_t cap);
/* Parses "byte" or "bpe:N" (1 <= N <= PB_BPE_MAX_MERGES) into kind and merge count. */
pb_status pb_tokenizer_parse_spec(const char *spec, pb_tokenizer_kind *kind, int *n_merges);

/* Encodes text[0..len) into out (at most cap ids); returns the number of ids the whole text
 * needs (may exceed cap: then the first cap were written). Same contract as pb_tok_encode,
 * which it equals for the byte tokenizer. */
size_t pb_tokenizer_encode(const pb_tokenizer *t, int32_t *out, size_t cap, const char *text, size_t len);
/* The same, with a status: the gpt2 kind needs memory for pieces longer than 256 bytes (its
 * pieces are never cut), and PB_ENOMEM says it could not be had (pb_tokenizer_encode then
 * returns SIZE_MAX). The byte and bpe kinds never fail. *n_out receives the ids needed. */
pb_status pb_tokenizer_encode_checked(const pb_tokenizer *t, int32_t *out, size_t cap, const char *text, size_t len,
                                      size_t *n_out);
/* Decodes ids (specials and unknown ids skipped) into out (at most cap-1 bytes, NUL-terminated);
 * returns the number of bytes the whole decoding needs. */
size_t pb_tokenizer_decode(const pb_tokenizer *t, char *out, size_t cap, const int32_t *ids, size_t n);
/* Bytes a token stands for (0 for specials of the byte and bpe kinds, for ids outside the
 * vocabulary and for ids the gpt2 vocabulary leaves unused); *bytes (may be NULL) receives a
 * pointer to them (not NUL-terminated). */
size_t pb_tokenizer_token_bytes(const pb_tokenizer *t, int32_t id, const unsigned char **bytes);

/* The pre-split: calls fn(piece, len, ud) for each piece of text in order (the pieces
 * concatenate to the text). ASCII classes: letters (and every byte >= 0x80, so UTF-8
 * sequences stay whole), digits, whitespace, other (punctuation). A piece is an optional single
 * leading space followed by a run of letters, of digits or of other; whitespace runs are
 * pieces, except that a space right before a non-whitespace byte starts the next piece (GPT-2's
 * " ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+" on ASCII classes, without the
 * contraction rule). Pieces longer than PB_BPE_MAX_PIECE are cut. fn returns nonzero to stop. */
typedef int (*pb_piece_fn)(const unsigned char *piece, size_t len, void *ud);
void pb_tokenizer_pieces(const char *text, size_t len, pb_piece_fn fn, void *ud);
/* GPT-2's pre-split, exactly (models/pretok_gpt2.c; models/TOKENIZER.md "GPT-2-exact pre-split"):
 * the pieces of 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ on
 * UTF-8 with Unicode's classes (models/unicode.h). Bytes that are not well-formed UTF-8 count as
 * characters of class other. Pieces are never cut. Same callback contract as above. */
void pb_pretok_gpt2(const char *text, size_t len, pb_piece_fn fn, void *ud);

/* ---- GPT-2-style byte-level BPE (models/tokenizer_gpt2.c) ------------------------------------ */

/* GPT-2's byte-to-unicode map: the code point that stands for byte b in vocabulary and merges
 * text (b itself for '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF; U+0100 + k for the k-th other
 * byte in byte order: space is U+0120 'Ġ', newline U+010A 'Ċ'). */
uint32_t pb_gpt2_byte_char(unsigned char b);
/* The byte code point cp stands for, or -1 if cp is not one of the 256. */
int pb_gpt2_char_byte(uint32_t cp);

/* A GPT-2-style tokenizer as text: the vocabulary by id and the merges in rank order, both in
 * GPT-2's byte-to-unicode alphabet (UTF-8). The *_where strings name the sources in messages
 * ("encoder.json"); merge_line, if not NULL, gives each merge's line in merges_where. */
typedef struct {
    const char *const *tokens; /* (n_vocab) token text of each id; NULL: the id is unused */
    int n_vocab;
    const char *const *merges; /* (n_merges, 2) the two symbols of merge i (rank i) */
    int n_merges;
    const char *vocab_where, *merges_where;
    const int *merge_line; /* (n_merges) or NULL */
} pb_gpt2_spec;

/* Builds a gpt2-kind tokenizer: token i stands for the bytes its text spells through the
 * byte-to-unicode map; merge i joins the ids of its two symbols into the id of their joined
 * text, with rank i. Errors (naming the source, the line or the token, and what is accepted):
 * a token that is empty, not UTF-8 or has a character outside the alphabet; two ids with the
 * same text; a byte with no token; a merge symbol or joined text that is not a token; a merge
 * that repeats an earlier one. */
pb_status pb_tokenizer_from_gpt2(pb_tokenizer *t, const pb_gpt2_spec *spec);
/* Reads GPT-2's own files: vocab_json ("encoder.json": a JSON object, token text -> integer id;
 * a repeated key keeps its last id, as Python's json does) and merges_txt ("vocab.bpe": lines
 * "a b", an optional first line "#version: ..."), then pb_tokenizer_from_gpt2. Malformed JSON is
 * an error with its line and column; a merges line that is not two symbols separated by one
 * space is an error with its line. */
pb_status pb_tokenizer_load_gpt2(pb_tokenizer *t, const char *vocab_json, const char *merges_txt);

/* For the builders (tokenizer.c, tokenizer_gpt2.c): fills the rank table from t->merges and
 * t->n_merges. A repeated pair is PB_EFORMAT with no message set, *dup_of and *dup receiving
 * the earlier and the later merge index; out of memory is PB_ENOMEM with a message. */
pb_status pb_tokenizer_index_merges(pb_tokenizer *t, int *dup_of, int *dup);

#endif
