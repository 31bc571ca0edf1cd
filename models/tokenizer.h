/* tokenizer.h — byte-level tokenizer with the special tokens classification and generation need.
 *
 * Token ids 0..255 are the bytes of the UTF-8 text; the special tokens follow. The vocabulary
 * is PB_TOK_VOCAB. (A learned subword vocabulary may replace this later; it would be stored in
 * the checkpoint.)
 */
#ifndef PB_TOKENIZER_H
#define PB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

enum {
    PB_TOK_PAD = 256,  /* padding; never attended as a key */
    PB_TOK_BOS = 257,  /* start of a sequence (decoders) */
    PB_TOK_EOS = 258,  /* end of a sequence / of a generated answer */
    PB_TOK_CLS = 259,  /* first token of an encoder classification input (pooled) */
    PB_TOK_SEP = 260,  /* between the two texts of a pair, and between input and target */
    PB_TOK_MASK = 261, /* masked-token prediction (encoder pretraining) */
    PB_TOK_VOCAB = 262
};

/* Writes the bytes of text[0..len) as token ids into out (at most cap); returns the number of
 * ids the whole text needs (may exceed cap: then only cap were written). */
size_t pb_tok_encode(int32_t *out, size_t cap, const char *text, size_t len);
/* Writes the bytes of ids (specials skipped) into out (at most cap-1, NUL-terminated); returns
 * the number of bytes the whole decoding needs. */
size_t pb_tok_decode(char *out, size_t cap, const int32_t *ids, size_t n);
/* "<pad>", "<bos>", ... for specials, NULL for bytes. */
const char *pb_tok_special_name(int32_t id);

#endif
