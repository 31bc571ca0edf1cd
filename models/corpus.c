/* corpus.c — the built-in corpus generator (see corpus.h). */
#include "corpus.h"
#include "pb_rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Topics give words that co-occur: a sentence picks one topic for its nouns and verbs. */
typedef struct {
    const char *nouns[8];   /* singular; plural adds "s" (all chosen to pluralise regularly) */
    const char *verbs[6];   /* base form; third person adds "s" */
    const char *adjs[6];
    const char *places[4];
} topic;

static const topic g_topics[] = {
    {{"farmer", "horse", "field", "barn", "plough", "harvest", "cow", "fence"},
     {"plant", "gather", "feed", "mend", "watch", "need"},
     {"green", "muddy", "quiet", "wide", "early", "heavy"},
     {"the valley", "the farm", "the market", "the river"}},
    {{"sailor", "ship", "wave", "captain", "harbour", "sail", "whale", "rope"},
     {"steer", "chase", "pull", "watch", "follow", "fear"},
     {"salty", "grey", "restless", "distant", "brave", "long"},
     {"the sea", "the coast", "the island", "the bay"}},
    {{"student", "teacher", "book", "lesson", "letter", "school", "pen", "word"},
     {"read", "write", "learn", "explain", "open", "remember"},
     {"clever", "patient", "old", "careful", "new", "short"},
     {"the library", "the classroom", "the city", "the hall"}},
    {{"senator", "law", "citizen", "nation", "vote", "treaty", "debate", "budget"},
     {"propose", "defend", "reject", "support", "discuss", "protect"},
     {"national", "fair", "strong", "public", "foreign", "honest"},
     {"the capital", "the congress", "the union", "the state"}},
};

static const char *g_dets[] = {"the", "a", "every", "one", "that", "this"};
static const char *g_preps[] = {"near", "in", "beyond", "across", "toward", "behind"};
static const char *g_adverbs[] = {"slowly", "always", "never", "often", "quietly", "gladly"};
static const char *g_numbers[] = {"two", "three", "four", "five", "seven", "ten", "twelve"};
static const char *g_speakers[] = {"she said", "he replied", "they said", "the old man said"};

typedef struct {
    char *buf;
    size_t len, cap;
    int ok;
} sbuf;

static void put(sbuf *s, const char *text) {
    size_t n = strlen(text);
    if (!s->ok) return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->cap + n + 1) * 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            s->ok = 0;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n + 1);
    s->len += n;
}

#define PICK(r, a) ((a)[pb_rng_below((r), COUNT(a))])

/* "the green farmer" / "an old book" / "three muddy fields"; returns 1 if plural. */
static int noun_phrase(sbuf *s, pb_rng *r, const topic *t, int capital) {
    int plural = pb_rng_below(r, 4) == 0;
    const char *det = plural ? PICK(r, g_numbers) : PICK(r, g_dets);
    const char *adj = pb_rng_below(r, 2) ? PICK(r, t->adjs) : NULL;
    const char *noun = PICK(r, t->nouns);
    const char *next = adj ? adj : noun;
    char w[64];
    if (!strcmp(det, "a") && strchr("aeiou", next[0])) det = "an";
    snprintf(w, sizeof w, "%s", det);
    if (capital) w[0] = (char)(w[0] - 'a' + 'A');
    put(s, w);
    if (adj) {
        put(s, " ");
        put(s, adj);
    }
    put(s, " ");
    put(s, noun);
    if (plural) put(s, "s");
    return plural;
}

/* A parenthetical aside, nested up to depth 3: "(near the valley (the muddy farm))". It gives
 * the corpus bracket structure to track (the `brackets` task tests exactly that skill). */
static void aside(sbuf *s, pb_rng *r, const topic *t, int depth) {
    put(s, "(");
    if (pb_rng_below(r, 2)) {
        put(s, PICK(r, g_preps));
        put(s, " ");
        put(s, PICK(r, t->places));
    } else {
        noun_phrase(s, r, t, 0);
    }
    if (depth < 3 && pb_rng_below(r, 2)) {
        put(s, " ");
        aside(s, r, t, depth + 1);
    }
    put(s, ")");
}

static void sentence(sbuf *s, pb_rng *r) {
    const topic *t = &g_topics[pb_rng_below(r, COUNT(g_topics))];
    int quoted = pb_rng_below(r, 6) == 0;
    if (quoted) put(s, "\"");
    int plural = noun_phrase(s, r, t, 1);
    if (pb_rng_below(r, 3) == 0) {
        put(s, " ");
        put(s, PICK(r, g_adverbs));
    }
    put(s, " ");
    put(s, PICK(r, t->verbs));
    if (!plural) put(s, "s");
    put(s, " ");
    noun_phrase(s, r, t, 0);
    if (pb_rng_below(r, 4) == 0) {
        put(s, " ");
        aside(s, r, t, 1);
    }
    if (pb_rng_below(r, 2)) {
        put(s, " ");
        put(s, PICK(r, g_preps));
        put(s, " ");
        put(s, PICK(r, t->places));
    }
    if (quoted) {
        put(s, ",\" ");
        put(s, PICK(r, g_speakers));
        put(s, ".");
    } else {
        put(s, pb_rng_below(r, 8) == 0 ? "!" : ".");
    }
}

char *pb_corpus_builtin(size_t bytes, uint64_t seed, size_t *len) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    sbuf s = {NULL, 0, 0, 1};
    put(&s, "");
    do {
        if (s.len) put(&s, "\n\f\n");
        int n = 3 + (int)pb_rng_below(&r, 6);
        for (int i = 0; i < n; i++) {
            if (i) put(&s, " ");
            sentence(&s, &r);
        }
    } while (s.ok && s.len < bytes);
    if (!s.ok) {
        free(s.buf);
        return NULL;
    }
    *len = s.len;
    return s.buf;
}
