/* fuzz_tokenizer.c — BPE tokenizers from merge lists (models/tokenizer.h
 * pb_tokenizer_from_merges: what a checkpoint's /tokenizer/merges is checked and built by) and
 * encoding with them.
 *
 * Input: byte 0 = number of merges n (0..255); then n pairs of 16-bit little-endian ids (small
 * ids are likely, so chains of valid merges occur); the rest is text. Checks: a refused list
 * has a message; an accepted tokenizer encodes the text into ids inside its vocabulary that
 * decode back to exactly the text (bytes, not specials), and the count returned for a too
 * small buffer equals the full count.
 *
 *   scripts/fuzz.sh tokenizer
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "models/tokenizer.h"

int pb_fuzz_tokenizer(const uint8_t *data, size_t size);

int pb_fuzz_tokenizer(const uint8_t *data, size_t size) {
    pbf_in in = {data, size};
    int n = pbf_u8(&in);
    int32_t merges[2 * 255];
    for (int i = 0; i < 2 * n; i++) merges[i] = (int32_t)(pbf_u8(&in) | (uint32_t)pbf_u8(&in) << 8);
    pb_tokenizer t;
    if (pbf_check_status(pb_tokenizer_from_merges(&t, merges, n))) return 0;
    if (t.vocab != 262 + n) pbf_fail("vocabulary %d for %d merges", t.vocab, n);
    size_t len;
    const char *text = (const char *)pbf_bytes(&in, in.n, &len);
    int32_t *ids = malloc(sizeof *ids * (len + 1));
    size_t k = pb_tokenizer_encode(&t, ids, len + 1, text, len);
    if (k > len) pbf_fail("%zu ids for %zu bytes", k, len);
    for (size_t i = 0; i < k; i++)
        if (ids[i] < 0 || ids[i] >= t.vocab || pb_tok_is_special(ids[i])) pbf_fail("id %d out of the vocabulary", ids[i]);
    if (k > 1 && pb_tokenizer_encode(&t, ids, k / 2, text, len) != k) pbf_fail("short buffer changes the count");
    k = pb_tokenizer_encode(&t, ids, len + 1, text, len);
    char *back = malloc(len + 1);
    size_t m = pb_tokenizer_decode(&t, back, len + 1, ids, k);
    if (m != len || memcmp(back, text, len)) pbf_fail("decode(encode(text)) differs: %zu bytes back of %zu", m, len);
    free(back);
    free(ids);
    pb_tokenizer_free(&t);
    return 0;
}
