/* bpe.c — the BPE learner (see bpe.h). Pair counts live in one open-addressing table, each entry
 * with the list of words that hold (or once held) the pair, so a merge touches only those
 * words; the best pair is found by a scan of the table (a few hundred thousand entries, about a
 * millisecond per merge). */
#include "bpe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY_KEY UINT64_MAX

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t mix(uint64_t h, size_t cap) { return (size_t)((h * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1); }

/* ---- distinct pieces ("words") with counts ------------------------------------------------ */

typedef struct {
    unsigned char *bytes; /* all words' bytes */
    size_t nbytes, cap_bytes;
    size_t *off;          /* (n) start of word w in bytes (and in sym) */
    int32_t *len;         /* (n) current number of symbols of word w */
    int32_t *orig;        /* (n) its byte length */
    int64_t *count;       /* (n) occurrences in the texts */
    size_t n, cap;
    int32_t *slots;       /* (nslots) word index + 1, 0 = empty */
    size_t nslots;
    int oom;
} words;

static uint64_t fnv(const unsigned char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int words_grow_slots(words *W) {
    size_t ns = W->nslots ? W->nslots * 2 : 1 << 16;
    int32_t *s = calloc(ns, sizeof *s);
    if (!s) return 1;
    for (size_t w = 0; w < W->n; w++) {
        size_t k = mix(fnv(W->bytes + W->off[w], (size_t)W->orig[w]), ns);
        while (s[k]) k = (k + 1) & (ns - 1);
        s[k] = (int32_t)w + 1;
    }
    free(W->slots);
    W->slots = s;
    W->nslots = ns;
    return 0;
}

static int add_piece(const unsigned char *p, size_t n, void *ud) {
    words *W = ud;
    if (W->oom) return 1;
    if ((W->n + 1) * 2 > W->nslots && words_grow_slots(W)) return W->oom = 1;
    size_t k = mix(fnv(p, n), W->nslots);
    for (; W->slots[k]; k = (k + 1) & (W->nslots - 1)) {
        size_t w = (size_t)W->slots[k] - 1;
        if ((size_t)W->orig[w] == n && !memcmp(W->bytes + W->off[w], p, n)) {
            W->count[w]++;
            return 0;
        }
    }
    if (W->n == W->cap) {
        size_t c = W->cap ? W->cap * 2 : 4096;
        size_t *o = realloc(W->off, c * sizeof *o);
        if (o) W->off = o;
        int32_t *l = realloc(W->len, c * sizeof *l);
        if (l) W->len = l;
        int32_t *g = realloc(W->orig, c * sizeof *g);
        if (g) W->orig = g;
        int64_t *ct = realloc(W->count, c * sizeof *ct);
        if (ct) W->count = ct;
        if (!o || !l || !g || !ct) return W->oom = 1;
        W->cap = c;
    }
    if (W->nbytes + n > W->cap_bytes) {
        size_t c = (W->cap_bytes + n) * 2;
        unsigned char *b = realloc(W->bytes, c);
        if (!b) return W->oom = 1;
        W->bytes = b;
        W->cap_bytes = c;
    }
    memcpy(W->bytes + W->nbytes, p, n);
    W->off[W->n] = W->nbytes;
    W->len[W->n] = (int32_t)n;
    W->orig[W->n] = (int32_t)n;
    W->count[W->n] = 1;
    W->slots[k] = (int32_t)W->n + 1;
    W->nbytes += n;
    W->n++;
    return 0;
}

/* ---- pair table --------------------------------------------------------------------------- */

typedef struct {
    uint64_t key;
    int64_t count;
    int32_t *where; /* words holding the pair (may hold stale entries; no adjacent repeats) */
    int32_t nw, capw;
} pair;

typedef struct {
    pair *p;
    size_t cap, n;
} pairs;

static pair *pair_get(pairs *P, uint64_t key) {
    if ((P->n + 1) * 2 > P->cap) {
        size_t nc = P->cap ? P->cap * 2 : 1 << 16;
        pair *np = malloc(nc * sizeof *np);
        if (!np) return NULL;
        for (size_t i = 0; i < nc; i++) np[i].key = EMPTY_KEY;
        for (size_t i = 0; i < P->cap; i++) {
            if (P->p[i].key == EMPTY_KEY) continue;
            size_t k = mix(P->p[i].key, nc);
            while (np[k].key != EMPTY_KEY) k = (k + 1) & (nc - 1);
            np[k] = P->p[i];
        }
        free(P->p);
        P->p = np;
        P->cap = nc;
    }
    size_t k = mix(key, P->cap);
    for (; P->p[k].key != EMPTY_KEY; k = (k + 1) & (P->cap - 1))
        if (P->p[k].key == key) return &P->p[k];
    P->p[k] = (pair){.key = key};
    P->n++;
    return &P->p[k];
}

/* Adds delta occurrences of (a, b) held by word w (recorded when note is set). */
static int pair_add(pairs *P, int32_t a, int32_t b, int64_t delta, int32_t w, int note) {
    pair *q = pair_get(P, pair_key(a, b));
    if (!q) return 1;
    q->count += delta;
    if (note && (q->nw == 0 || q->where[q->nw - 1] != w)) {
        if (q->nw == q->capw) {
            int32_t c = q->capw ? q->capw * 2 : 4;
            int32_t *nw = realloc(q->where, (size_t)c * sizeof *nw);
            if (!nw) return 1;
            q->where = nw;
            q->capw = c;
        }
        q->where[q->nw++] = w;
    }
    return 0;
}

/* Counts (or, with sign -1, removes) the pairs of word w as BPE would apply them: in a run of
 * one symbol ("aaa") the pair (a, a) occurs at positions 0, 2, ... only, as a left-to-right
 * merge takes them. */
static int word_pairs(pairs *P, const int32_t *s, int32_t n, int64_t delta, int32_t w, int note_new_id) {
    for (int32_t i = 0; i + 1 < n; i++) {
        if (i > 0 && s[i - 1] == s[i] && s[i] == s[i + 1]) {
            /* (x, x) right after a counted (x, x) overlaps it: counted only every other one. */
            int32_t run = 1;
            while (i - run >= 0 && s[i - run] == s[i]) run++;
            if (run % 2 == 0) continue;
        }
        int note = note_new_id < 0 || s[i] == note_new_id || s[i + 1] == note_new_id;
        if (pair_add(P, s[i], s[i + 1], delta, w, delta > 0 && note)) return 1;
    }
    return 0;
}

static void pairs_free(pairs *P) {
    for (size_t i = 0; i < P->cap; i++)
        if (P->p[i].key != EMPTY_KEY) free(P->p[i].where);
    free(P->p);
}

pb_status pb_bpe_learn(pb_tokenizer *t, const pb_text_span *spans, size_t n_spans, int n_merges) {
    pb_tokenizer_init_byte(t);
    if (n_merges < 0 || n_merges > PB_BPE_MAX_MERGES)
        return pb_errorf(PB_EINVAL, "BPE merge count %d is outside [0, %d]", n_merges, PB_BPE_MAX_MERGES);
    words W;
    memset(&W, 0, sizeof W);
    pairs P = {0};
    int32_t *sym = NULL, *merges = NULL, *seen = NULL;
    pb_status st = PB_OK;
    for (size_t i = 0; i < n_spans && !W.oom; i++) pb_tokenizer_pieces(spans[i].text, spans[i].len, add_piece, &W);
    if (W.oom) goto oom;
    sym = malloc(sizeof *sym * (W.nbytes ? W.nbytes : 1));
    merges = malloc(sizeof *merges * 2 * (size_t)(n_merges ? n_merges : 1));
    seen = malloc(sizeof *seen * (W.n ? W.n : 1));
    if (!sym || !merges || !seen) goto oom;
    for (size_t i = 0; i < W.nbytes; i++) sym[i] = W.bytes[i];
    for (size_t w = 0; w < W.n; w++) {
        seen[w] = -1;
        if (word_pairs(&P, sym + W.off[w], W.len[w], W.count[w], (int32_t)w, -1)) goto oom;
    }
    int m = 0;
    for (; m < n_merges; m++) {
        /* The best pair: highest count, then the smallest (left, right). */
        pair *best = NULL;
        for (size_t i = 0; i < P.cap; i++) {
            pair *q = &P.p[i];
            if (q->key == EMPTY_KEY || q->count <= 0) continue;
            if (!best || q->count > best->count || (q->count == best->count && q->key < best->key)) best = q;
        }
        if (!best) break;
        const uint64_t bkey = best->key;
        const int32_t a = (int32_t)(bkey >> 32), b = (int32_t)(uint32_t)bkey, z = PB_TOK_VOCAB + m;
        merges[2 * m] = a;
        merges[2 * m + 1] = b;
        /* Take the word list out: the table may move while the words are updated. */
        int32_t *where = best->where, nw = best->nw;
        best->where = NULL;
        best->nw = best->capw = 0;
        for (int32_t k = 0; k < nw; k++) {
            int32_t w = where[k];
            if (seen[w] == m) continue;
            seen[w] = m;
            int32_t *s = sym + W.off[w], n = W.len[w], j = 0, hit = 0;
            for (int32_t i = 0; i + 1 < n; i++)
                if (s[i] == a && s[i + 1] == b) hit = 1;
            if (!hit) continue; /* stale entry */
            if (word_pairs(&P, s, n, -W.count[w], w, 0)) goto oom_where;
            for (int32_t i = 0; i < n; i++) {
                if (i + 1 < n && s[i] == a && s[i + 1] == b) {
                    s[j++] = z;
                    i++;
                } else {
                    s[j++] = s[i];
                }
            }
            W.len[w] = j;
            if (word_pairs(&P, s, j, W.count[w], w, z)) goto oom_where;
        }
        free(where);
        continue;
    oom_where:
        free(where);
        goto oom;
    }
    st = pb_tokenizer_from_merges(t, merges, m);
    goto out;
oom:
    st = pb_errorf(PB_ENOMEM, "out of memory while learning BPE merges");
out:
    pairs_free(&P);
    free(W.bytes);
    free(W.off);
    free(W.len);
    free(W.orig);
    free(W.count);
    free(W.slots);
    free(sym);
    free(merges);
    free(seen);
    return st;
}
