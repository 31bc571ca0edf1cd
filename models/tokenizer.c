/* tokenizer.c — byte-level tokenizer (see tokenizer.h). */
#include "tokenizer.h"

size_t pb_tok_encode(int32_t *out, size_t cap, const char *text, size_t len) {
    for (size_t i = 0; i < len && i < cap; i++) out[i] = (int32_t)(unsigned char)text[i];
    return len;
}

size_t pb_tok_decode(char *out, size_t cap, const int32_t *ids, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] > 255) continue;
        if (k + 1 < cap) out[k] = (char)ids[i];
        k++;
    }
    if (cap) out[k < cap ? k : cap - 1] = '\0';
    return k;
}

const char *pb_tok_special_name(int32_t id) {
    switch (id) {
    case PB_TOK_PAD: return "<pad>";
    case PB_TOK_BOS: return "<bos>";
    case PB_TOK_EOS: return "<eos>";
    case PB_TOK_CLS: return "<cls>";
    case PB_TOK_SEP: return "<sep>";
    case PB_TOK_MASK: return "<mask>";
    default: return 0;
    }
}
