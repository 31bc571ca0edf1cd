/* tokenizer.c — byte-level and BPE tokenizers (see tokenizer.h and models/TOKENIZER.md). */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the object --------------------------------------------------------------------------- */

#define EMPTY_KEY UINT64_MAX

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t key_slot(uint64_t key, size_t cap) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1); }

void pb_tokenizer_init_byte(pb_tokenizer *t) {
    memset(t, 0, sizeof *t);
    t->kind = PB_TOKENIZER_BYTE;
    t->vocab = PB_TOK_VOCAB;
    for (int b = 0; b < 256; b++) t->byte_id[b] = b;
}

void pb_tokenizer_free(pb_tokenizer *t) {
    free(t->merges);
    free(t->merge_out);
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->rank_keys);
    free(t->rank_vals);
    pb_tokenizer_init_byte(t);
}

static int32_t rank_of(const pb_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = pair_key(a, b);
    for (size_t s = key_slot(key, t->rank_cap);; s = (s + 1) & (t->rank_cap - 1)) {
        if (t->rank_keys[s] == key) return t->rank_vals[s];
        if (t->rank_keys[s] == EMPTY_KEY) return -1;
    }
}

pb_status pb_tokenizer_index_merges(pb_tokenizer *t, int *dup_of, int *dup) {
    const int n = t->n_merges;
    size_t cap = 64;
    while (cap < 2 * (size_t)n + 16) cap *= 2;
    free(t->rank_keys);
    free(t->rank_vals);
    t->rank_keys = malloc(sizeof(uint64_t) * cap);
    t->rank_vals = malloc(sizeof(int32_t) * cap);
    t->rank_cap = cap;
    if (!t->rank_keys || !t->rank_vals) return pb_errorf(PB_ENOMEM, "out of memory for a table of %d merges", n);
    for (size_t s = 0; s < cap; s++) t->rank_keys[s] = EMPTY_KEY;
    for (int i = 0; i < n; i++) {
        uint64_t key = pair_key(t->merges[2 * i], t->merges[2 * i + 1]);
        size_t s = key_slot(key, cap);
        while (t->rank_keys[s] != EMPTY_KEY && t->rank_keys[s] != key) s = (s + 1) & (cap - 1);
        if (t->rank_keys[s] == key) {
            *dup_of = t->rank_vals[s];
            *dup = i;
            return PB_EFORMAT;
        }
        t->rank_keys[s] = key;
        t->rank_vals[s] = i;
    }
    return PB_OK;
}

pb_status pb_tokenizer_from_merges(pb_tokenizer *t, const int32_t *merges, int n) {
    pb_tokenizer_init_byte(t);
    if (n < 0 || n > PB_BPE_MAX_MERGES)
        return pb_errorf(PB_EINVAL, "BPE merge count %d is outside [0, %d]", n, PB_BPE_MAX_MERGES);
    const int V = PB_TOK_VOCAB + n;
    t->merges = malloc(sizeof(int32_t) * 2 * (size_t)(n ? n : 1));
    t->merge_out = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    t->tok_off = malloc(sizeof(uint32_t) * ((size_t)V + 1));
    if (!t->merges || !t->merge_out || !t->tok_off) {
        pb_tokenizer_free(t);
        return pb_errorf(PB_ENOMEM, "out of memory for a tokenizer of %d merges", n);
    }
    t->kind = PB_TOKENIZER_BPE;
    t->vocab = V;
    t->n_merges = n;
    if (n) memcpy(t->merges, merges, sizeof(int32_t) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) t->merge_out[i] = PB_TOK_VOCAB + i;
    /* Token lengths first (checking the merges), then the bytes. */
    uint64_t total = 256;
    for (int32_t id = 0; id <= PB_TOK_VOCAB; id++) t->tok_off[id] = (uint32_t)(id < 256 ? id : 256);
    for (int i = 0; i < n; i++) {
        int32_t a = merges[2 * i], b = merges[2 * i + 1], id = PB_TOK_VOCAB + i;
        for (int k = 0; k < 2; k++) {
            int32_t x = k ? b : a;
            if (x < 0 || x >= id || pb_tok_is_special(x)) {
                pb_tokenizer_free(t);
                return pb_errorf(PB_EFORMAT, "BPE merge %d (%d, %d): id %d is %s", i, a, b, x,
                                 pb_tok_is_special(x) ? "a special token" : "not a byte or an earlier merge");
            }
        }
        uint64_t la = t->tok_off[a + 1] - t->tok_off[a], lb = t->tok_off[b + 1] - t->tok_off[b];
        total += la + lb;
        if (total > UINT32_MAX) {
            pb_tokenizer_free(t);
            return pb_errorf(PB_EFORMAT, "BPE merges spell more than 4 GiB of token bytes");
        }
        t->tok_off[id + 1] = (uint32_t)total;
    }
    int dup_of = 0, dup = 0;
    pb_status st = pb_tokenizer_index_merges(t, &dup_of, &dup);
    if (st == PB_EFORMAT) {
        pb_tokenizer_free(t);
        return pb_errorf(PB_EFORMAT, "BPE merge %d (%d, %d) repeats merge %d", dup, merges[2 * dup],
                         merges[2 * dup + 1], dup_of);
    }
    if (st) {
        pb_tokenizer_free(t);
        return st;
    }
    t->tok_bytes = malloc((size_t)total);
    if (!t->tok_bytes) {
        pb_tokenizer_free(t);
        return pb_errorf(PB_ENOMEM, "out of memory for the BPE token table");
    }
    for (int id = 0; id < 256; id++) t->tok_bytes[id] = (unsigned char)id;
    for (int i = 0; i < n; i++) {
        int32_t a = merges[2 * i], b = merges[2 * i + 1], id = PB_TOK_VOCAB + i;
        size_t la = t->tok_off[a + 1] - t->tok_off[a];
        memcpy(t->tok_bytes + t->tok_off[id], t->tok_bytes + t->tok_off[a], la);
        memcpy(t->tok_bytes + t->tok_off[id] + la, t->tok_bytes + t->tok_off[b], t->tok_off[b + 1] - t->tok_off[b]);
    }
    return PB_OK;
}

static void *dup_bytes(const void *p, size_t n, int *oom) {
    void *q = malloc(n ? n : 1);
    if (!q) *oom = 1;
    else if (n) memcpy(q, p, n);
    return q;
}

pb_status pb_tokenizer_copy(pb_tokenizer *dst, const pb_tokenizer *src) {
    if (src->kind == PB_TOKENIZER_BYTE) {
        pb_tokenizer_init_byte(dst);
        return PB_OK;
    }
    if (src->kind == PB_TOKENIZER_BPE) return pb_tokenizer_from_merges(dst, src->merges, src->n_merges);
    /* gpt2: every array as it is. */
    int oom = 0;
    size_t n = (size_t)src->n_merges, V = (size_t)src->vocab;
    *dst = *src;
    dst->merges = dup_bytes(src->merges, sizeof(int32_t) * 2 * n, &oom);
    dst->merge_out = dup_bytes(src->merge_out, sizeof(int32_t) * n, &oom);
    dst->tok_off = dup_bytes(src->tok_off, sizeof(uint32_t) * (V + 1), &oom);
    dst->tok_bytes = dup_bytes(src->tok_bytes, src->tok_off[V], &oom);
    dst->rank_keys = dup_bytes(src->rank_keys, sizeof(uint64_t) * src->rank_cap, &oom);
    dst->rank_vals = dup_bytes(src->rank_vals, sizeof(int32_t) * src->rank_cap, &oom);
    if (oom) {
        pb_tokenizer_free(dst);
        return pb_errorf(PB_ENOMEM, "out of memory copying a tokenizer of %d tokens", src->vocab);
    }
    return PB_OK;
}

void pb_tokenizer_name(const pb_tokenizer *t, char *buf, size_t cap) {
    if (t->kind == PB_TOKENIZER_BYTE) snprintf(buf, cap, "byte");
    else if (t->kind == PB_TOKENIZER_BPE) snprintf(buf, cap, "bpe:%d", t->n_merges);
    else snprintf(buf, cap, "gpt2:%d", t->vocab);
}

pb_status pb_tokenizer_parse_spec(const char *spec, pb_tokenizer_kind *kind, int *n_merges) {
    if (!strcmp(spec, "byte")) {
        *kind = PB_TOKENIZER_BYTE;
        *n_merges = 0;
        return PB_OK;
    }
    if (!strncmp(spec, "bpe:", 4)) {
        char *end;
        long v = strtol(spec + 4, &end, 10);
        if (end != spec + 4 && !*end && v >= 1 && v <= PB_BPE_MAX_MERGES) {
            *kind = PB_TOKENIZER_BPE;
            *n_merges = (int)v;
            return PB_OK;
        }
    }
    return pb_errorf(PB_EINVAL, "tokenizer '%s': accepted 'byte' or 'bpe:N' with N merges, 1 <= N <= %d", spec,
                     PB_BPE_MAX_MERGES);
}

#define B4(i) (i), (i) + 1, (i) + 2, (i) + 3
#define B16(i) B4(i), B4((i) + 4), B4((i) + 8), B4((i) + 12)
#define B64(i) B16(i), B16((i) + 16), B16((i) + 32), B16((i) + 48)
static const unsigned char g_bytes[256] = {B64(0), B64(64), B64(128), B64(192)};

size_t pb_tokenizer_token_bytes(const pb_tokenizer *t, int32_t id, const unsigned char **bytes) {
    static const unsigned char none = 0;
    if (bytes) *bytes = &none;
    if (id < 0 || id >= t->vocab || (t->kind != PB_TOKENIZER_GPT2 && pb_tok_is_special(id))) return 0;
    if (t->kind == PB_TOKENIZER_BYTE || !t->tok_bytes) {
        if (bytes) *bytes = g_bytes + id;
        return 1;
    }
    if (bytes) *bytes = t->tok_bytes + t->tok_off[id];
    return t->tok_off[id + 1] - t->tok_off[id];
}

/* ---- the pre-split ------------------------------------------------------------------------ */

enum { CL_LETTER, CL_DIGIT, CL_SPACE, CL_OTHER };

static int byte_class(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return CL_LETTER;
    if (c >= '0' && c <= '9') return CL_DIGIT;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return CL_SPACE;
    return CL_OTHER;
}

static int emit(const unsigned char *p, size_t n, pb_piece_fn fn, void *ud) {
    while (n > PB_BPE_MAX_PIECE) {
        if (fn(p, PB_BPE_MAX_PIECE, ud)) return 1;
        p += PB_BPE_MAX_PIECE;
        n -= PB_BPE_MAX_PIECE;
    }
    return n ? fn(p, n, ud) : 0;
}

void pb_tokenizer_pieces(const char *text, size_t len, pb_piece_fn fn, void *ud) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        int c = byte_class(s[i]);
        if (c == CL_SPACE) {
            size_t j = i;
            while (j < len && byte_class(s[j]) == CL_SPACE) j++;
            /* A space right before a non-whitespace byte belongs to the next piece. */
            size_t end = (j < len && s[j - 1] == ' ') ? j - 1 : j;
            if (end > start) {
                if (emit(s + start, end - start, fn, ud)) return;
                i = end;
                continue;
            }
            /* A lone space before a word: the word's piece starts here. */
            i++;
            c = byte_class(s[i]);
        }
        while (i < len && byte_class(s[i]) == c) i++;
        if (emit(s + start, i - start, fn, ud)) return;
    }
}

/* ---- encoding and decoding ---------------------------------------------------------------- */

/* Pieces up to this many bytes are encoded in a stack buffer; longer ones (the gpt2 kind only:
 * the bpe kind cuts at PB_BPE_MAX_PIECE) in a heap buffer kept for the call. */
#define STACK_PIECE 256

typedef struct {
    const pb_tokenizer *t;
    int32_t *out;
    size_t cap, n;
    int32_t *heap; /* (heap_cap) */
    size_t heap_cap;
    int oom;
} enc_ctx;

/* BPE on one piece, GPT-2's bpe(): start from the bytes' ids, then merge the adjacent pair of
 * lowest rank (all its occurrences, left to right) until no adjacent pair is a merge. Each
 * round costs O(len), so a piece costs O(len x rounds), as GPT-2's. */
static int encode_piece(const unsigned char *p, size_t len, void *ud) {
    enc_ctx *e = ud;
    int32_t stack[STACK_PIECE], *sym = stack;
    if (len > STACK_PIECE) {
        if (len > e->heap_cap) {
            int32_t *h = realloc(e->heap, sizeof(int32_t) * len);
            if (!h) {
                e->oom = 1;
                return 1;
            }
            e->heap = h;
            e->heap_cap = len;
        }
        sym = e->heap;
    }
    const pb_tokenizer *t = e->t;
    size_t n = len;
    for (size_t i = 0; i < n; i++) sym[i] = t->byte_id[p[i]];
    while (n > 1) {
        int32_t best = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            int32_t r = rank_of(t, sym[i], sym[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r;
        }
        if (best < 0) break;
        int32_t a = t->merges[2 * best], b = t->merges[2 * best + 1], c = t->merge_out[best];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (i + 1 < n && sym[i] == a && sym[i + 1] == b) {
                sym[k++] = c;
                i++;
            } else {
                sym[k++] = sym[i];
            }
        }
        n = k;
    }
    for (size_t i = 0; i < n; i++) {
        if (e->n < e->cap) e->out[e->n] = sym[i];
        e->n++;
    }
    return 0;
}

pb_status pb_tokenizer_encode_checked(const pb_tokenizer *t, int32_t *out, size_t cap, const char *text, size_t len,
                                      size_t *n_out) {
    if (t->kind == PB_TOKENIZER_BYTE || (t->kind == PB_TOKENIZER_BPE && t->n_merges == 0)) {
        *n_out = pb_tok_encode(out, cap, text, len);
        return PB_OK;
    }
    enc_ctx e = {t, out, cap, 0, NULL, 0, 0};
    if (t->kind == PB_TOKENIZER_GPT2) pb_pretok_gpt2(text, len, encode_piece, &e);
    else pb_tokenizer_pieces(text, len, encode_piece, &e);
    free(e.heap);
    *n_out = e.n;
    if (e.oom) return pb_errorf(PB_ENOMEM, "out of memory encoding a piece of text longer than %d bytes", STACK_PIECE);
    return PB_OK;
}

size_t pb_tokenizer_encode(const pb_tokenizer *t, int32_t *out, size_t cap, const char *text, size_t len) {
    size_t n;
    return pb_tokenizer_encode_checked(t, out, cap, text, len, &n) == PB_OK ? n : SIZE_MAX;
}

size_t pb_tokenizer_decode(const pb_tokenizer *t, char *out, size_t cap, const int32_t *ids, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *b;
        size_t l = pb_tokenizer_token_bytes(t, ids[i], &b);
        for (size_t j = 0; j < l; j++, k++)
            if (k + 1 < cap) out[k] = (char)b[j];
    }
    if (cap) out[k < cap ? k : cap - 1] = '\0';
    return k;
}
