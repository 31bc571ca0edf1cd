/* corpus_load.c — reading corpora, documents, held-out split by document (see corpus_load.h). */
#include "corpus_load.h"
#include "checkpoint.h"
#include "corpus.h"
#include "pb_rng.h"
#include "tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const g_fetched[] = {"sotu", "austen", "jargon", "moby_dick", "devil"};
#define N_FETCHED ((int)(sizeof g_fetched / sizeof g_fetched[0]))
static const char SEP[] = "\n\f\n";
#define SEPLEN 3

pb_status pb_read_text_file(const char *path, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *f;
    int is_stdin = !strcmp(path, "-");
    if (is_stdin) {
        f = stdin;
    } else {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return pb_errorf(errno == ENOENT ? PB_ENOTFOUND : PB_EIO, "%s: %s", path, strerror(errno));
        if (S_ISDIR(sb.st_mode)) return pb_errorf(PB_EINVAL, "%s: is a directory; expected a text file", path);
        if (!(f = fopen(path, "rb"))) return pb_errorf(PB_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    if (!is_stdin) fclose(f);
    if (!buf) return pb_errorf(PB_ENOMEM, "%s: out of memory reading it", path);
    if (err) {
        free(buf);
        return pb_errorf(PB_EIO, "%s: read error", is_stdin ? "standard input" : path);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return PB_OK;
}

typedef struct {
    char *buf;
    size_t len, cap;
} growbuf;

static int gb_put(growbuf *g, const char *s, size_t n) {
    if (g->len + n + 1 > g->cap) {
        size_t cap = (g->len + n + 1) * 2;
        char *b = realloc(g->buf, cap);
        if (!b) return 0;
        g->buf = b;
        g->cap = cap;
    }
    memcpy(g->buf + g->len, s, n);
    g->len += n;
    g->buf[g->len] = '\0';
    return 1;
}

static int add_doc(pb_corpus *c, size_t *cap, size_t off, size_t len, int source, size_t index) {
    if (c->n_docs == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        pb_doc *d = realloc(c->docs, nc * sizeof *d);
        if (!d) return 0;
        c->docs = d;
        *cap = nc;
    }
    c->docs[c->n_docs++] = (pb_doc){.off = off, .len = len, .source = source, .index = index};
    return 1;
}

/* Appends one source's text (and a separator) and cuts it into documents. */
static pb_status add_source(pb_corpus *c, growbuf *g, size_t *cap, const char *name, const char *text, size_t n) {
    if (c->n_sources == PB_CORPUS_MAX_SOURCES) return pb_errorf(PB_EINVAL, "too many corpus sources");
    int s = c->n_sources++;
    snprintf(c->sources[s], sizeof c->sources[s], "%s", name);
    size_t base = g->len;
    if (!gb_put(g, text, n) || !gb_put(g, SEP, SEPLEN)) return pb_errorf(PB_ENOMEM, "out of memory");
    const char *t = g->buf + base;
    size_t first = c->n_docs, index = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        int end = i == n || (i + SEPLEN <= n && !memcmp(t + i, SEP, SEPLEN));
        if (!end) continue;
        if (i > start && !add_doc(c, cap, base + start, i - start, s, index++)) return pb_errorf(PB_ENOMEM, "out of memory");
        start = i + SEPLEN;
        i += SEPLEN - 1;
    }
    /* One document of a plain text file: cut it at line breaks into pseudo-documents. */
    if (c->n_docs == first + 1 && c->docs[first].len > 2 * PB_CORPUS_CHUNK) {
        pb_doc whole = c->docs[first];
        c->n_docs = first;
        size_t pos = 0;
        index = 0;
        while (pos < whole.len) {
            size_t end = pos + PB_CORPUS_CHUNK;
            if (end >= whole.len || whole.len - end < PB_CORPUS_CHUNK / 2) end = whole.len;
            else {
                const char *nl = memchr(g->buf + whole.off + end, '\n', whole.len - end);
                size_t lim = pos + 2 * PB_CORPUS_CHUNK;
                end = nl && (size_t)(nl - (g->buf + whole.off)) < lim ? (size_t)(nl - (g->buf + whole.off)) + 1 : end;
            }
            if (!add_doc(c, cap, whole.off + pos, end - pos, s, index++)) return pb_errorf(PB_ENOMEM, "out of memory");
            pos = end;
        }
    }
    return PB_OK;
}

int pb_corpus_fetched_missing(const char *data_dir, char *first, size_t cap) {
    int missing = 0;
    for (int i = 0; i < N_FETCHED; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/corpus/%s.txt", data_dir, g_fetched[i]);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) continue;
        if (!missing++ && first && cap) snprintf(first, cap, "%s", path);
    }
    return missing;
}

pb_status pb_corpus_open(pb_corpus *c, const char *spec, const char *data_dir, size_t builtin_bytes) {
    memset(c, 0, sizeof *c);
    snprintf(c->spec, sizeof c->spec, "%s", spec);
    growbuf g = {0};
    size_t cap = 0;
    pb_status st = PB_OK;
    if (!strcmp(spec, "builtin")) {
        size_t n;
        char *text = pb_corpus_builtin(builtin_bytes, 1, &n);
        if (!text) return pb_errorf(PB_ENOMEM, "out of memory generating the built-in corpus");
        c->builtin_bytes = builtin_bytes;
        st = add_source(c, &g, &cap, "builtin", text, n);
        free(text);
    } else if (!strcmp(spec, "fetched")) {
        if (!data_dir || !data_dir[0]) return pb_errorf(PB_EINVAL, "corpus 'fetched' needs a data directory");
        snprintf(c->path, sizeof c->path, "%s/corpus", data_dir);
        for (int i = 0; i < N_FETCHED && !st; i++) {
            char path[1024];
            snprintf(path, sizeof path, "%s/corpus/%s.txt", data_dir, g_fetched[i]);
            char *text;
            size_t n;
            st = pb_read_text_file(path, &text, &n);
            if (st == PB_ENOTFOUND) {
                st = pb_errorf(PB_ENOTFOUND, "the fetched corpus is incomplete: %s is missing (sources: %s); run "
                               "`peftbench data fetch --only corpus` (data directory %s), or use --corpus builtin "
                               "or --corpus FILE", path, PB_CORPUS_FETCHED_LIST, data_dir);
                break;
            }
            if (st) break;
            if (n == 0) st = pb_errorf(PB_EDATA, "%s: empty file; run `peftbench data fetch --only corpus` again", path);
            else st = add_source(c, &g, &cap, g_fetched[i], text, n);
            free(text);
        }
    } else {
        snprintf(c->path, sizeof c->path, "%s", spec);
        char *text;
        size_t n;
        st = pb_read_text_file(spec, &text, &n);
        if (st) {
            free(g.buf);
            return pb_error_context(st, "corpus (accepted: a text file, 'builtin' or 'fetched')");
        }
        if (n == 0) st = pb_errorf(PB_EDATA, "%s: empty file; a corpus needs text", spec);
        else {
            const char *base = strrchr(spec, '/');
            char name[32];
            snprintf(name, sizeof name, "%s", base ? base + 1 : spec);
            char *dot = strrchr(name, '.');
            if (dot && dot != name) *dot = '\0';
            st = add_source(c, &g, &cap, name, text, n);
        }
        free(text);
    }
    c->text = g.buf;
    c->len = g.len;
    if (!st && c->n_docs == 0) st = pb_errorf(PB_EDATA, "corpus '%s' holds no text", spec);
    if (st) {
        pb_corpus_free(c);
        return st;
    }
    c->hash = pb_fnv1a64(PB_FNV_OFFSET, c->text, c->len);
    return PB_OK;
}

void pb_corpus_free(pb_corpus *c) {
    free(c->text);
    free(c->docs);
    memset(c, 0, sizeof *c);
}

static uint64_t source_key(const char *source) { return pb_fnv1a64(PB_FNV_OFFSET, source, strlen(source)); }

int pb_corpus_doc_heldout(const char *source, size_t index, double holdout) {
    return (double)pb_hash_uniform(source_key(source), (uint64_t)index) < holdout;
}

pb_status pb_corpus_heldout_flags(const pb_corpus *c, double holdout, unsigned char *held) {
    if (!(holdout >= 0.0 && holdout <= 0.5)) return pb_errorf(PB_EINVAL, "holdout %g is outside [0, 0.5]", holdout);
    for (size_t i = 0; i < c->n_docs; i++)
        held[i] = (unsigned char)pb_corpus_doc_heldout(c->sources[c->docs[i].source], c->docs[i].index, holdout);
    /* At least one held-out and one training document per source with two or more documents:
     * the document with the lowest (highest) hash changes side. */
    for (int s = 0; s < c->n_sources && holdout > 0; s++) {
        size_t n = 0, nh = 0, lo = 0, hi = 0;
        float hlo = 2, hhi = -1;
        for (size_t i = 0; i < c->n_docs; i++) {
            if (c->docs[i].source != s) continue;
            float u = pb_hash_uniform(source_key(c->sources[s]), (uint64_t)c->docs[i].index);
            n++;
            nh += held[i];
            if (u < hlo) hlo = u, lo = i;
            if (u > hhi) hhi = u, hi = i;
        }
        if (n < 2) { /* a lone document trains */
            held[lo] = 0;
            continue;
        }
        if (nh == 0) held[lo] = 1;
        if (nh == n) held[hi] = 0;
    }
    return PB_OK;
}

pb_status pb_corpus_split_docs(const pb_corpus *c, double holdout, pb_corpus_split *out) {
    return pb_corpus_split_docs_tok(c, holdout, NULL, out);
}

pb_status pb_corpus_split_docs_tok(const pb_corpus *c, double holdout, const pb_tokenizer *tok,
                                   pb_corpus_split *out) {
    memset(out, 0, sizeof *out);
    unsigned char *held = calloc(c->n_docs ? c->n_docs : 1, 1);
    if (!held) return pb_errorf(PB_ENOMEM, "out of memory");
    pb_status st = pb_corpus_heldout_flags(c, holdout, held);
    if (st) {
        free(held);
        return st;
    }
    for (size_t i = 0; i < c->n_docs; i++) {
        if (held[i]) out->heldout_docs++, out->heldout_bytes += c->docs[i].len;
        else out->train_docs++, out->train_bytes += c->docs[i].len;
    }
    /* At most one token per byte: allocate for that, shrink after encoding. */
    size_t cap_train = out->train_bytes + out->train_docs, cap_held = out->heldout_bytes + out->heldout_docs;
    out->train = malloc(sizeof(int32_t) * (cap_train ? cap_train : 1));
    out->heldout = malloc(sizeof(int32_t) * (cap_held ? cap_held : 1));
    if (!out->train || !out->heldout) {
        free(held);
        pb_corpus_split_free(out);
        return pb_errorf(PB_ENOMEM, "out of memory for the token streams");
    }
    size_t kt = 0, kh = 0;
    for (size_t i = 0; i < c->n_docs; i++) {
        int32_t *dst = held[i] ? out->heldout : out->train;
        size_t *k = held[i] ? &kh : &kt;
        const char *text = c->text + c->docs[i].off;
        size_t len = c->docs[i].len;
        dst[(*k)++] = PB_TOK_EOS;
        *k += tok ? pb_tokenizer_encode(tok, dst + *k, len, text, len) : pb_tok_encode(dst + *k, len, text, len);
    }
    free(held);
    out->n_train = kt;
    out->n_heldout = kh;
    int32_t *p = realloc(out->train, sizeof(int32_t) * (kt ? kt : 1));
    if (p) out->train = p;
    p = realloc(out->heldout, sizeof(int32_t) * (kh ? kh : 1));
    if (p) out->heldout = p;
    return PB_OK;
}

void pb_corpus_split_free(pb_corpus_split *s) {
    free(s->train);
    free(s->heldout);
    memset(s, 0, sizeof *s);
}
