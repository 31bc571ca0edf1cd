/* tokenizer_gpt2.c — GPT-2-style byte-level BPE with its own vocabulary: GPT-2's byte-to-unicode
 * map, the builder from vocabulary and merges text (pb_tokenizer_from_gpt2) and the reader of
 * GPT-2's encoder.json and vocab.bpe (pb_tokenizer_load_gpt2). models/TOKENIZER.md ("Byte-level
 * BPE with a vocabulary") has the design; encoding itself is tokenizer.c's, shared with bpe:N.
 *
 * Not: the pre-split (pretok_gpt2.c), Hugging Face's tokenizer.json (issue 12 feeds the
 * builder from it), special or added tokens. */
#include "tokenizer.h"
#include "unicode.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the byte-to-unicode map ---------------------------------------------------------------- */

static int printable(unsigned b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

/* The 68 other bytes, in byte order, are 0x00..0x20 (k = 0..32), 0x7F..0xA0 (k = 33..66) and
 * 0xAD (k = 67); byte k of that list stands for U+0100 + k. */
uint32_t pb_gpt2_byte_char(unsigned char b) {
    if (printable(b)) return b;
    if (b <= 0x20) return 0x100u + b;
    if (b <= 0xA0) return 0x100u + 33 + (b - 0x7Fu);
    return 0x100u + 67; /* 0xAD */
}

int pb_gpt2_char_byte(uint32_t cp) {
    if (cp < 0x100) return printable(cp) ? (int)cp : -1;
    if (cp > 0x100 + 67) return -1;
    uint32_t k = cp - 0x100;
    return k <= 32 ? (int)k : k <= 66 ? (int)(0x7F + k - 33) : 0xAD;
}

/* Decodes token text s (UTF-8 in the alphabet) into bytes out (at least strlen(s)); returns the
 * byte count, or -1 with *bad at the offending byte offset and *bad_cp its code point
 * (PB_UC_INVALID when not UTF-8). */
static long text_bytes(const char *s, unsigned char *out, size_t *bad, uint32_t *bad_cp) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s), i = 0;
    long n = 0;
    while (i < len) {
        uint32_t cp;
        size_t l = pb_utf8_next(u + i, len - i, &cp);
        int b = pb_gpt2_char_byte(cp);
        if (b < 0) {
            *bad = i;
            *bad_cp = cp;
            return -1;
        }
        out[n++] = (unsigned char)b;
        i += l;
    }
    return n;
}

/* ---- the builder ---------------------------------------------------------------------------- */

/* Token bytes -> id, open addressing over the tokenizer's own token table. */
typedef struct {
    int32_t *ids; /* (cap) -1 empty */
    size_t cap;
    const pb_tokenizer *t;
} text_index;

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The slot holding bytes p[0..n), or the empty slot where they would go. */
static size_t index_slot(const text_index *x, const unsigned char *p, size_t n) {
    const pb_tokenizer *t = x->t;
    for (size_t s = fnv(p, n) & (x->cap - 1);; s = (s + 1) & (x->cap - 1)) {
        int32_t id = x->ids[s];
        if (id < 0) return s;
        size_t l = t->tok_off[id + 1] - t->tok_off[id];
        if (l == n && !memcmp(t->tok_bytes + t->tok_off[id], p, n)) return s;
    }
}

static const char *merge_where(const pb_gpt2_spec *sp, int i, char *buf, size_t cap) {
    if (sp->merge_line) snprintf(buf, cap, "%s:%d", sp->merges_where, sp->merge_line[i]);
    else snprintf(buf, cap, "%s: merge %d", sp->merges_where, i);
    return buf;
}

static pb_status bad_text(const char *where, const char *what, const char *text, size_t off, uint32_t cp) {
    if (cp == PB_UC_INVALID)
        return pb_errorf(PB_EFORMAT, "%s: %s \"%s\" is not valid UTF-8 at byte %zu", where, what, text, off);
    return pb_errorf(PB_EFORMAT,
                     "%s: %s \"%s\": character U+%04X at byte %zu is not in GPT-2's byte-to-unicode alphabet "
                     "(accepted: the 256 characters that stand for bytes: '!'..'~', U+00A1..U+00AC, U+00AE..U+00FF "
                     "and U+0100..U+0143, e.g. U+0120 '\xc4\xa0' for a space)",
                     where, what, text, (unsigned)cp, off);
}

pb_status pb_tokenizer_from_gpt2(pb_tokenizer *t, const pb_gpt2_spec *sp) {
    pb_tokenizer_init_byte(t);
    const int V = sp->n_vocab, M = sp->n_merges;
    if (V < 1 || V > PB_GPT2_MAX_VOCAB)
        return pb_errorf(PB_EFORMAT, "%s: %d tokens; accepted 1 to %d", sp->vocab_where, V, PB_GPT2_MAX_VOCAB);
    if (M < 0 || M > PB_BPE_MAX_MERGES)
        return pb_errorf(PB_EFORMAT, "%s: %d merges; accepted 0 to %d", sp->merges_where, M, PB_BPE_MAX_MERGES);
    pb_status st = PB_OK;
    text_index x = {NULL, 16, t};
    unsigned char *tmp = NULL;
    char where[512];
    t->kind = PB_TOKENIZER_GPT2;
    t->vocab = V;
    t->n_merges = M;
    /* Token bytes: every token's text through the inverse map. */
    uint64_t total = 0;
    size_t longest = 0;
    for (int id = 0; id < V; id++) {
        if (!sp->tokens[id]) continue;
        size_t l = strlen(sp->tokens[id]);
        total += l;
        if (l > longest) longest = l;
    }
    for (int i = 0; i < M; i++) {
        size_t l = strlen(sp->merges[2 * i]) + strlen(sp->merges[2 * i + 1]);
        if (l > longest) longest = l;
    }
    if (total > UINT32_MAX) return pb_errorf(PB_EFORMAT, "%s: tokens spell more than 4 GiB", sp->vocab_where);
    t->tok_off = malloc(sizeof(uint32_t) * ((size_t)V + 1));
    t->tok_bytes = malloc(total ? (size_t)total : 1);
    t->merges = malloc(sizeof(int32_t) * 2 * (size_t)(M ? M : 1));
    t->merge_out = malloc(sizeof(int32_t) * (size_t)(M ? M : 1));
    while (x.cap < 2 * (size_t)V) x.cap *= 2;
    x.ids = malloc(sizeof(int32_t) * x.cap);
    tmp = malloc(longest + 1); /* a merge's joined bytes (never more than its text) */
    if (!t->tok_off || !t->tok_bytes || !t->merges || !t->merge_out || !x.ids || !tmp) {
        st = pb_errorf(PB_ENOMEM, "out of memory for a tokenizer of %d tokens", V);
        goto out;
    }
    for (size_t s = 0; s < x.cap; s++) x.ids[s] = -1;
    uint32_t off = 0;
    for (int id = 0; id < V; id++) {
        t->tok_off[id] = off;
        const char *txt = sp->tokens[id];
        if (!txt) continue;
        size_t bad;
        uint32_t cp;
        long n = text_bytes(txt, t->tok_bytes + off, &bad, &cp);
        if (n < 0) {
            st = bad_text(sp->vocab_where, "token", txt, bad, cp);
            goto out;
        }
        if (n == 0) {
            st = pb_errorf(PB_EFORMAT, "%s: token %d is the empty string (every token stands for at least one byte)",
                           sp->vocab_where, id);
            goto out;
        }
        t->tok_off[id + 1] = off + (uint32_t)n; /* for index_slot's comparison */
        size_t s = index_slot(&x, t->tok_bytes + off, (size_t)n);
        if (x.ids[s] >= 0) {
            st = pb_errorf(PB_EFORMAT, "%s: ids %d and %d are both the token \"%s\" (each token text has one id)",
                           sp->vocab_where, x.ids[s], id, txt);
            goto out;
        }
        x.ids[s] = id;
        off += (uint32_t)n;
    }
    t->tok_off[V] = off;
    /* Each byte's token. */
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        int32_t id = x.ids[index_slot(&x, &c, 1)];
        if (id < 0) {
            st = pb_errorf(PB_EFORMAT,
                           "%s: no token for byte 0x%02X (text U+%04X): a byte-level vocabulary has a token for each "
                           "of the 256 bytes",
                           sp->vocab_where, b, (unsigned)pb_gpt2_byte_char(c));
            goto out;
        }
        t->byte_id[b] = id;
    }
    /* Merges: both symbols and their joined text must be tokens. */
    for (int i = 0; i < M; i++) {
        int32_t ids[2];
        size_t l[2];
        for (int k = 0; k < 2; k++) {
            const char *sym = sp->merges[2 * i + k];
            size_t bad;
            uint32_t cp;
            long n = text_bytes(sym, tmp + (k ? l[0] : 0), &bad, &cp);
            if (n < 0) {
                st = bad_text(merge_where(sp, i, where, sizeof where), "symbol", sym, bad, cp);
                goto out;
            }
            l[k] = (size_t)n;
            ids[k] = n ? x.ids[index_slot(&x, tmp + (k ? l[0] : 0), (size_t)n)] : -1;
            if (ids[k] < 0) {
                st = pb_errorf(PB_EFORMAT,
                               "%s: symbol \"%s\" is not a token of %s (both symbols of a merge, and their joined "
                               "text, must be in the vocabulary)",
                               merge_where(sp, i, where, sizeof where), sym, sp->vocab_where);
                goto out;
            }
        }
        int32_t c = x.ids[index_slot(&x, tmp, l[0] + l[1])];
        if (c < 0) {
            st = pb_errorf(PB_EFORMAT, "%s: merge \"%s %s\" makes \"%s%s\", which is not a token of %s",
                           merge_where(sp, i, where, sizeof where), sp->merges[2 * i], sp->merges[2 * i + 1],
                           sp->merges[2 * i], sp->merges[2 * i + 1], sp->vocab_where);
            goto out;
        }
        t->merges[2 * i] = ids[0];
        t->merges[2 * i + 1] = ids[1];
        t->merge_out[i] = c;
    }
    int dup_of = 0, dup = 0;
    st = pb_tokenizer_index_merges(t, &dup_of, &dup);
    if (st == PB_EFORMAT) {
        char w2[512];
        if (sp->merge_line) snprintf(w2, sizeof w2, "line %d", sp->merge_line[dup_of]);
        else snprintf(w2, sizeof w2, "merge %d", dup_of);
        st = pb_errorf(PB_EFORMAT, "%s: merge \"%s %s\" repeats %s (each pair is merged once, at one rank)",
                       merge_where(sp, dup, where, sizeof where), sp->merges[2 * dup], sp->merges[2 * dup + 1], w2);
    }
out:
    free(x.ids);
    free(tmp);
    if (st) pb_tokenizer_free(t);
    return st;
}

/* ---- GPT-2's files -------------------------------------------------------------------------- */

/* Reads the whole file (NUL-terminated). */
static pb_status read_all(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return pb_errorf(PB_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (!b) break;
        n += fread(b + n, 1, cap - 1 - n, f);
        if (n < cap - 1) break;
        char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return pb_errorf(PB_ENOMEM, "%s: out of memory reading it", path);
    if (err) {
        free(b);
        return pb_errorf(PB_EIO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return PB_OK;
}

static void line_col(const char *buf, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') ++*line, *col = 1;
        else ++*col;
    }
}

#define VOCAB_ACCEPTED "expected a JSON object mapping each token to its integer id, like {\"!\": 0, \"\\\"\": 1}"

/* Parses vocab_json into obj (a JSON object; the caller puts it). */
static pb_status parse_vocab(const char *path, json_object **obj) {
    char *buf;
    size_t len;
    pb_status st = read_all(path, &buf, &len);
    if (st) return st;
    json_tokener *tok = json_tokener_new();
    if (!tok) {
        free(buf);
        return pb_errorf(PB_ENOMEM, "%s: out of memory for the JSON parser", path);
    }
    /* Parsing the terminating NUL too tells json-c that the text ends there (a top-level literal
     * such as null or 12 is otherwise still "continuing"). */
    json_object *o = len >= INT32_MAX ? NULL : json_tokener_parse_ex(tok, buf, (int)len + 1);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int line, col;
    if (len >= INT32_MAX) {
        st = pb_errorf(PB_EFORMAT, "%s: larger than 2 GiB", path);
    } else if (je == json_tokener_continue || je == json_tokener_error_parse_eof) {
        st = pb_errorf(PB_EFORMAT, "%s: the JSON ends early (at byte %zu); " VOCAB_ACCEPTED, path, len);
    } else if (je != json_tokener_success) {
        line_col(buf, end, &line, &col);
        st = pb_errorf(PB_EFORMAT, "%s:%d:%d: invalid JSON (%s); " VOCAB_ACCEPTED, path, line, col,
                       json_tokener_error_desc(je));
    } else {
        size_t k = end < len ? end : len;
        while (k < len && strchr(" \t\r\n", buf[k])) k++;
        if (k < len) {
            line_col(buf, k, &line, &col);
            st = pb_errorf(PB_EFORMAT, "%s:%d:%d: text after the JSON value; " VOCAB_ACCEPTED, path, line, col);
        } else if (!o) {
            st = pb_errorf(PB_EFORMAT, "%s: the JSON value is null; " VOCAB_ACCEPTED, path);
        } else if (!json_object_is_type(o, json_type_object)) {
            st = pb_errorf(PB_EFORMAT, "%s: the JSON value is a%s %s; " VOCAB_ACCEPTED, path,
                           json_object_is_type(o, json_type_array) || json_object_is_type(o, json_type_int) ? "n" : "",
                           json_type_to_name(json_object_get_type(o)));
        }
    }
    free(buf);
    if (st) {
        json_object_put(o);
        return st;
    }
    *obj = o;
    return PB_OK;
}

#define MERGES_ACCEPTED "expected two symbols separated by one space, like \"\xc4\xa0 t\""

pb_status pb_tokenizer_load_gpt2(pb_tokenizer *t, const char *vocab_json, const char *merges_txt) {
    pb_tokenizer_init_byte(t);
    json_object *vocab = NULL;
    char *buf = NULL;
    const char **tokens = NULL, **merges = NULL;
    int *lines = NULL;
    pb_status st = parse_vocab(vocab_json, &vocab);
    if (st) return st;
    /* The vocabulary by id. */
    int V = 0;
    {
        json_object_object_foreach(vocab, key, val) {
            int64_t id = json_object_get_int64(val);
            if (!json_object_is_type(val, json_type_int) || id < 0 || id >= PB_GPT2_MAX_VOCAB) {
                st = pb_errorf(PB_EFORMAT, "%s: token \"%s\" has the id %s; accepted an integer in [0, %d)", vocab_json,
                               key, json_object_to_json_string(val), PB_GPT2_MAX_VOCAB);
                goto out;
            }
            if (id >= V) V = (int)id + 1;
        }
    }
    tokens = calloc(V ? (size_t)V : 1, sizeof *tokens);
    if (!tokens) {
        st = pb_errorf(PB_ENOMEM, "%s: out of memory", vocab_json);
        goto out;
    }
    {
        json_object_object_foreach(vocab, key, val) {
            int id = (int)json_object_get_int64(val);
            if (tokens[id]) {
                st = pb_errorf(PB_EFORMAT, "%s: tokens \"%s\" and \"%s\" both have the id %d (each id has one token)",
                               vocab_json, tokens[id], key, id);
                goto out;
            }
            tokens[id] = key;
        }
    }
    /* The merges: one "a b" a line, after an optional "#version" line. */
    size_t len;
    st = read_all(merges_txt, &buf, &len);
    if (st) goto out;
    size_t cap_lines = 1;
    for (size_t i = 0; i < len; i++) cap_lines += buf[i] == '\n';
    merges = malloc(sizeof *merges * 2 * cap_lines);
    lines = malloc(sizeof *lines * cap_lines);
    if (!merges || !lines) {
        st = pb_errorf(PB_ENOMEM, "%s: out of memory", merges_txt);
        goto out;
    }
    int M = 0, line = 0;
    for (char *p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p)), *e = nl ? nl : buf + len;
        line++;
        *e = '\0';
        if (line == 1 && !strncmp(p, "#version", 8)) {
            p = e + 1;
            continue;
        }
        if (memchr(p, '\0', (size_t)(e - p))) {
            st = pb_errorf(PB_EFORMAT, "%s:%d: a NUL byte; " MERGES_ACCEPTED, merges_txt, line);
            goto out;
        }
        if (e > p && e[-1] == '\r') {
            st = pb_errorf(PB_EFORMAT, "%s:%d: the line ends in a carriage return (Windows line ends); " MERGES_ACCEPTED
                           " and lines ending in \\n only", merges_txt, line);
            goto out;
        }
        char *sp = strchr(p, ' ');
        if (!sp || sp == p || !sp[1] || strchr(sp + 1, ' ')) {
            st = pb_errorf(PB_EFORMAT, "%s:%d: \"%.60s\": " MERGES_ACCEPTED, merges_txt, line, p);
            goto out;
        }
        *sp = '\0';
        merges[2 * M] = p;
        merges[2 * M + 1] = sp + 1;
        lines[M++] = line;
        p = e + 1;
    }
    pb_gpt2_spec spec = {tokens, V, merges, M, vocab_json, merges_txt, lines};
    st = pb_tokenizer_from_gpt2(t, &spec);
out:
    free(tokens);
    free(merges);
    free(lines);
    free(buf);
    json_object_put(vocab);
    return st;
}
