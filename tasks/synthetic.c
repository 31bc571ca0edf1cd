/* tasks/synthetic.c — the built-in synthetic tasks (docs/TASKS.md "Built-in synthetic tasks").
 *
 * Generated in C from split_seed: no download, plain ASCII, small by default (2000/500/500).
 * Each split has its own random stream; test is generated first, then dev, then train, and a
 * text already generated (in any split) is drawn again, so no text is shared between splits and
 * dev/test do not change when only n_train does. Labels cycle (example i gets label i mod K)
 * before a seeded shuffle, so classes are exactly balanced.
 *
 *   sentiment  binary: review-like English sentences; negation and "X but Y" contrast
 *   topic      4-class: news-like sentences from topic word lists, 30% with a distractor word
 *   reverse    generation: 3-6 English words -> the same words in reverse order (exact match)
 *   brackets   binary: is a 16-24 character string of '(' and ')' balanced? (needs order)
 *
 * Parameters for small backbones (vocab=, min_words=, max_words=, max_bytes=; docs/TASKS.md
 * "Task parameters") shrink a task without changing its nature; with their defaults the draws
 * are exactly those of the bare task.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_rng.h"
#include "tasks/task_impl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define TEXT_CAP 256

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (k > 0) b->len += (size_t)k < b->cap - b->len ? (size_t)k : b->cap - b->len - 1;
}

static const char *pick(pb_rng *r, const char *const *list, size_t n) { return list[pb_rng_below(r, n)]; }
#define PICK(r, list) pick((r), (list), N_OF(list))
/* The first `vocab` entries of a content-word list (all when vocab is 0 or larger than the list). */
#define PICKV(r, list, vocab) pick((r), (list), (vocab) && (vocab) < N_OF(list) ? (vocab) : N_OF(list))

/* Task parameters (docs/TASKS.md "Built-in synthetic tasks"); the defaults give the documented
 * tasks, and the draws with default parameters do not depend on these fields. */
typedef struct {
    size_t vocab;             /* content words per list: adjectives per polarity, nouns per topic, words */
    int min_words, max_words; /* reverse: words per example */
} synth_params;

/* ---- sentiment ----------------------------------------------------------------------------- */

static const char *const POS_ADJ[] = {
    "good", "great", "excellent", "wonderful", "delightful", "superb", "fantastic", "lovely", "pleasant",
    "brilliant", "charming", "enjoyable", "impressive", "outstanding", "perfect", "friendly", "beautiful",
    "fun", "amazing", "memorable", "clean", "comfortable", "fresh", "helpful", "moving"};
static const char *const NEG_ADJ[] = {
    "bad", "awful", "terrible", "dreadful", "boring", "poor", "horrible", "disappointing", "dull", "mediocre",
    "unpleasant", "rude", "dirty", "bland", "tedious", "annoying", "weak", "sloppy", "ugly", "noisy", "stale",
    "painful", "forgettable", "clumsy", "miserable"};
static const char *const SUBJECTS[] = {
    "the movie", "the food", "the service", "the hotel", "the staff", "the book", "the concert", "the room",
    "the ending", "the soundtrack", "our guide", "the waiter", "the plot", "the price", "the view", "the music",
    "the acting", "the coffee", "the show", "the trip", "the dessert", "the lecture", "the game", "the car"};
static const char *const LINKS[] = {"was", "is", "seemed", "felt", "looked", "turned out"};
static const char *const NEG_LINKS[] = {"was not", "is not", "wasn't", "isn't", "was never", "did not seem"};
static const char *const INTENS[] = {"really", "very", "quite", "truly", "so", "rather", "pretty", "incredibly"};
static const char *const OPENERS[] = {"", "", "", "honestly, ", "overall ", "in short, ", "i think ",
                                      "to be fair, ", "sadly ", "frankly, "};

/* A clause whose meaning has polarity `pol` (1 positive); 20% say it through a negation. */
static void clause(pb_rng *r, size_t v, sbuf *b, int pol, const char *subject) {
    if (pb_rng_below(r, 5) == 0) {
        put(b, "%s %s %s", subject, PICK(r, NEG_LINKS), pol ? PICKV(r, NEG_ADJ, v) : PICKV(r, POS_ADJ, v));
    } else if (pb_rng_below(r, 2)) {
        put(b, "%s %s %s %s", subject, PICK(r, LINKS), PICK(r, INTENS),
            pol ? PICKV(r, POS_ADJ, v) : PICKV(r, NEG_ADJ, v));
    } else {
        put(b, "%s %s %s", subject, PICK(r, LINKS), pol ? PICKV(r, POS_ADJ, v) : PICKV(r, NEG_ADJ, v));
    }
}

static void gen_sentiment(pb_rng *r, const synth_params *p, int y, sbuf *text, sbuf *target) {
    (void)target;
    size_t v = p->vocab;
    const char *s1 = PICK(r, SUBJECTS), *s2 = PICK(r, SUBJECTS);
    while (s2 == s1) s2 = PICK(r, SUBJECTS);
    put(text, "%s", PICK(r, OPENERS));
    unsigned form = (unsigned)pb_rng_below(r, 20);
    if (form < 9) { /* 45%: one clause */
        clause(r, v, text, y, s1);
    } else if (form < 15) { /* 30%: two clauses agreeing */
        clause(r, v, text, y, s1);
        put(text, " and ");
        clause(r, v, text, y, s2);
    } else { /* 25%: contrast; the clause after "but" decides */
        clause(r, v, text, !y, s1);
        put(text, " but ");
        clause(r, v, text, y, s2);
    }
    put(text, pb_rng_below(r, 4) ? "." : "!");
}

/* ---- topic ----------------------------------------------------------------------------------- */

typedef struct {
    const char *const *nouns;
    size_t n_nouns;
    const char *const *verbs;
    size_t n_verbs;
} topic_words;

static const char *const FOOD_N[] = {"chef", "soup", "bread", "kitchen", "recipe", "salad", "oven", "dinner",
                                     "pasta", "cheese", "garlic", "sauce", "bakery", "menu", "dessert", "tomato",
                                     "butter", "onions"};
static const char *const FOOD_V[] = {"baked", "tasted", "seasoned", "cooked", "served", "roasted", "sliced",
                                     "stirred"};
static const char *const MUSIC_N[] = {"band", "guitar", "singer", "album", "concert", "drummer", "melody",
                                      "choir", "piano", "song", "orchestra", "violin", "chorus", "lyrics",
                                      "rhythm", "stage", "pianist", "audience"};
static const char *const MUSIC_V[] = {"played", "recorded", "sang", "tuned", "performed", "composed", "rehearsed",
                                      "strummed"};
static const char *const SCI_N[] = {"scientist", "experiment", "laboratory", "theory", "molecule", "telescope",
                                    "data", "microscope", "hypothesis", "physicist", "chemist", "cell", "atom",
                                    "planet", "equation", "sample", "researcher", "virus"};
static const char *const SCI_V[] = {"measured", "tested", "observed", "analysed", "discovered", "calculated",
                                    "published", "examined"};
static const char *const SPORT_N[] = {"team", "coach", "player", "goal", "match", "stadium", "referee",
                                      "striker", "league", "ball", "season", "tournament", "pitcher", "runner",
                                      "race", "fans", "captain", "trophy"};
static const char *const SPORT_V[] = {"scored", "won", "trained", "kicked", "defended", "coached", "tackled",
                                      "lost"};

static const topic_words TOPICS[4] = { /* label order: food, music, science, sports */
    {FOOD_N, N_OF(FOOD_N), FOOD_V, N_OF(FOOD_V)},
    {MUSIC_N, N_OF(MUSIC_N), MUSIC_V, N_OF(MUSIC_V)},
    {SCI_N, N_OF(SCI_N), SCI_V, N_OF(SCI_V)},
    {SPORT_N, N_OF(SPORT_N), SPORT_V, N_OF(SPORT_V)}};
static const char *const TIMES[] = {"", "", "yesterday ", "last week ", "on monday ", "this morning ",
                                    "after lunch ", "in the evening ", "on friday ", "last night "};
static const char *const PREPS[] = {"with", "before", "after", "near", "behind", "beside"};

static void gen_topic(pb_rng *r, const synth_params *p, int y, sbuf *text, sbuf *target) {
    (void)target;
    const topic_words *w = &TOPICS[y];
    size_t nn = p->vocab && p->vocab < w->n_nouns ? p->vocab : w->n_nouns; /* all lists have the same length */
    put(text, "%sthe %s %s the %s", PICK(r, TIMES), pick(r, w->nouns, nn), pick(r, w->verbs, w->n_verbs),
        pick(r, w->nouns, nn));
    unsigned tail = (unsigned)pb_rng_below(r, 10);
    if (tail < 3) { /* 30%: one distractor word from another topic */
        const topic_words *d = &TOPICS[(y + 1 + (int)pb_rng_below(r, 3)) % 4];
        put(text, " %s the %s", PICK(r, PREPS), pick(r, d->nouns, nn));
    } else if (tail < 6) {
        put(text, " %s the %s", PICK(r, PREPS), pick(r, w->nouns, nn));
    }
    put(text, ".");
}

/* ---- reverse --------------------------------------------------------------------------------- */

static const char *const WORDS[] = {
    "cat", "dog", "river", "stone", "blue", "green", "red", "small", "large", "house", "tree", "bird", "apple",
    "bread", "water", "light", "night", "day", "sun", "moon", "star", "road", "city", "king", "queen", "horse",
    "book", "door", "window", "chair", "table", "music", "paper", "glass", "gold", "silver", "winter", "summer",
    "spring", "autumn", "happy", "quiet", "loud", "quick", "slow", "old", "young", "warm", "cold", "bright",
    "dark", "ship", "sea", "island", "forest", "mountain", "garden", "flower", "field", "farm", "school", "teacher",
    "friend", "mother", "father", "child", "letter", "story", "song", "dance", "run", "walk", "jump", "sing",
    "read", "write", "open", "close", "come", "go", "see", "hear", "speak", "think", "give", "take", "make",
    "find", "keep", "hold", "fire", "snow", "rain", "wind", "cloud", "storm", "coffee", "sugar", "salt",
    "pepper"};

#define MAX_WORDS 8

static void gen_reverse(pb_rng *r, const synth_params *p, int y, sbuf *text, sbuf *target) {
    (void)y;
    const char *w[MAX_WORDS];
    int n = p->min_words + (int)pb_rng_below(r, (uint64_t)(p->max_words - p->min_words + 1));
    for (int i = 0; i < n; i++) {
        w[i] = PICKV(r, WORDS, p->vocab);
        put(text, i ? " %s" : "%s", w[i]);
    }
    for (int i = n - 1; i >= 0; i--) put(target, i < n - 1 ? " %s" : "%s", w[i]);
}

/* ---- brackets -------------------------------------------------------------------------------- */

static int balanced(const char *s, int n) {
    int d = 0;
    for (int i = 0; i < n; i++) {
        d += s[i] == '(' ? 1 : -1;
        if (d < 0) return 0;
    }
    return d == 0;
}

/* Equal numbers of '(' and ')', starting with '(' and ending with ')', so that neither counts nor
 * the ends tell the classes apart; balanced (y = 1) or not (y = 0). Uniform over such strings. */
static void gen_brackets(pb_rng *r, const synth_params *p, int y, sbuf *text, sbuf *target) {
    (void)target, (void)p;
    int k = 8 + (int)pb_rng_below(r, 5), n = 2 * k;
    char s[32];
    for (;;) {
        for (int i = 0; i < n; i++) s[i] = i < k ? '(' : ')';
        for (int i = n - 1; i > 0; i--) {
            int j = (int)pb_rng_below(r, (uint64_t)i + 1);
            char c = s[i];
            s[i] = s[j], s[j] = c;
        }
        if (s[0] == '(' && s[n - 1] == ')' && balanced(s, n) == y) break;
    }
    put(text, "%.*s", n, s);
}

/* ---- the table of tasks ---------------------------------------------------------------------- */

typedef struct {
    const char *name, *summary;
    pb_task_kind kind;
    const char *const *labels;
    int n_labels;
    pb_metric_id metrics[2];
    void (*gen)(pb_rng *r, const synth_params *p, int y, sbuf *text, sbuf *target);
    size_t max_vocab;  /* the largest vocab= (0: the task takes no vocab=) */
    int words;         /* takes min_words= and max_words= */
} synth_def;

static const char *const SENT_LABELS[] = {"negative", "positive"};
static const char *const TOPIC_LABELS[] = {"food", "music", "science", "sports"};
static const char *const BRACKET_LABELS[] = {"unbalanced", "balanced"};

static const synth_def SYNTH[] = {
    {"sentiment", "binary sentiment of English review sentences, with negation and contrast", PB_TASK_CLASSIFY,
     SENT_LABELS, 2, {PB_METRIC_ACC, PB_METRIC_MACRO_F1}, gen_sentiment, N_OF(POS_ADJ), 0},
    {"topic", "4-class topic of English sentences from word lists, 30% with a distractor", PB_TASK_CLASSIFY,
     TOPIC_LABELS, 4, {PB_METRIC_ACC, PB_METRIC_MACRO_F1}, gen_topic, N_OF(FOOD_N), 0},
    {"reverse", "write 3-6 English words in reverse order (exact match)", PB_TASK_GENERATE, NULL, 0,
     {PB_METRIC_EXACT, PB_METRIC_CHRF}, gen_reverse, N_OF(WORDS), 1},
    {"brackets", "is a string of 16-24 brackets balanced? (needs order and long range)", PB_TASK_CLASSIFY,
     BRACKET_LABELS, 2, {PB_METRIC_ACC, PB_METRIC_MCC}, gen_brackets, 0, 0},
};

_Static_assert(N_OF(POS_ADJ) == N_OF(NEG_ADJ), "vocab= takes as many adjectives of each polarity");
_Static_assert(N_OF(FOOD_N) == N_OF(MUSIC_N) && N_OF(FOOD_N) == N_OF(SCI_N) && N_OF(FOOD_N) == N_OF(SPORT_N),
               "vocab= takes as many nouns of each topic");

static const synth_def *find(const char *name) {
    for (size_t i = 0; i < N_OF(SYNTH); i++)
        if (!strcmp(name, SYNTH[i].name)) return &SYNTH[i];
    return NULL;
}

static int synth_match(const char *name) { return find(name) != NULL; }

#define DEF_TRAIN 2000
#define DEF_DEV 500
#define DEF_TEST 500
#define MAX_N 1000000

static size_t synth_list(const char *data_dir, pb_task_entry *out, size_t cap) {
    (void)data_dir;
    for (size_t i = 0; i < N_OF(SYNTH) && i < cap; i++) {
        const synth_def *d = &SYNTH[i];
        out[i] = (pb_task_entry){.family = "synthetic", .kind = d->kind, .summary = d->summary,
                                 .n = {DEF_TRAIN, DEF_DEV, DEF_TEST}, .metric = d->metrics[0], .present = 1};
        snprintf(out[i].name, sizeof out[i].name, "%s", d->name);
    }
    return N_OF(SYNTH);
}

/* Open-addressing set of 64-bit text hashes (0 marks an empty slot). */
typedef struct {
    uint64_t *slot;
    size_t mask;
} hset;

static int hset_add(hset *h, uint64_t x) {
    if (!x) x = 1;
    for (size_t i = (size_t)x & h->mask;; i = (i + 1) & h->mask) {
        if (h->slot[i] == x) return 0;
        if (!h->slot[i]) {
            h->slot[i] = x;
            return 1;
        }
    }
}

static pb_status synth_open(const pb_spec *spec, const char *data_dir, pb_task *t) {
    (void)data_dir;
    const synth_def *d = find(spec->name);
    size_t n[PB_NSPLIT];
    pb_status st;
    if ((st = pb_spec_size(spec, "n_train", DEF_TRAIN, 1, MAX_N, &n[PB_SPLIT_TRAIN])) != PB_OK ||
        (st = pb_spec_size(spec, "n_dev", DEF_DEV, 1, MAX_N, &n[PB_SPLIT_DEV])) != PB_OK ||
        (st = pb_spec_size(spec, "n_test", DEF_TEST, 1, MAX_N, &n[PB_SPLIT_TEST])) != PB_OK)
        return st;
    synth_params p = {0, 3, 6};
    size_t max_bytes, v, lo, hi;
    const char *misplaced = !d->max_vocab && pb_spec_get(spec, "vocab") ? "vocab"
                            : !d->words && pb_spec_get(spec, "min_words") ? "min_words"
                            : !d->words && pb_spec_get(spec, "max_words") ? "max_words"
                                                                           : NULL;
    if (misplaced)
        return pb_errorf(PB_EINVAL, "task spec '%s': option '%s' does not apply to task %s (its keys: n_train, n_dev, "
                         "n_test, max_bytes%s%s)", spec->text, misplaced, d->name, d->max_vocab ? ", vocab" : "",
                         d->words ? ", min_words, max_words" : "");
    if ((st = pb_spec_size(spec, "max_bytes", 0, 0, TEXT_CAP - 1, &max_bytes)) != PB_OK ||
        (d->max_vocab && (st = pb_spec_size(spec, "vocab", d->max_vocab, 2, d->max_vocab, &v)) != PB_OK) ||
        (d->words && ((st = pb_spec_size(spec, "min_words", 3, 2, MAX_WORDS, &lo)) != PB_OK ||
                      (st = pb_spec_size(spec, "max_words", 6, 2, MAX_WORDS, &hi)) != PB_OK)))
        return st;
    if (d->max_vocab) p.vocab = v;
    if (d->words) {
        if (lo > hi)
            return pb_errorf(PB_EINVAL, "task spec '%s': min_words=%zu is larger than max_words=%zu (expected "
                             "min_words <= max_words)", spec->text, lo, hi);
        p.min_words = (int)lo, p.max_words = (int)hi;
    }
    t->kind = d->kind;
    if ((st = pb_task_set_source(t, "generated")) != PB_OK) return st;
    if (d->n_labels && (st = pb_task_set_labels(t, d->labels, d->n_labels)) != PB_OK) return st;
    if ((st = pb_task_set_metrics(t, d->metrics, 2, 0)) != PB_OK) return st;

    size_t total = n[0] + n[1] + n[2], cap = 1;
    while (cap < 2 * total) cap *= 2;
    hset seen = {calloc(cap, sizeof(uint64_t)), cap - 1};
    if (!seen.slot) return pb_errorf(PB_ENOMEM, "task %s: out of memory", t->name);
    uint64_t salt = pb_task_hash(d->name, strlen(d->name), 0);
    char tb[TEXT_CAP], gb[TEXT_CAP];
    static const pb_split order[PB_NSPLIT] = {PB_SPLIT_TEST, PB_SPLIT_DEV, PB_SPLIT_TRAIN};
    for (int oi = 0; oi < PB_NSPLIT && st == PB_OK; oi++) {
        pb_split s = order[oi];
        pb_rng r;
        pb_rng_seed(&r, pb_hash_u64(t->opts.split_seed ^ salt, (uint64_t)s));
        for (size_t i = 0; i < n[s] && st == PB_OK; i++) {
            int y = d->n_labels ? (int)(i % (size_t)d->n_labels) : -1;
            sbuf text = {tb, 0, sizeof tb}, target = {gb, 0, sizeof gb};
            int tries = 0;
            for (;; tries++) {
                if (tries == 1000) {
                    st = pb_errorf(PB_EINVAL,
                                   "task %s: could not draw %zu distinct examples for the %s split (expected fewer; "
                                   "lower n_train, n_dev or n_test%s%s)",
                                   t->name, n[s], pb_split_name(s), max_bytes ? ", or raise max_bytes" : "",
                                   p.vocab < d->max_vocab ? ", or raise vocab" : "");
                    break;
                }
                text.len = target.len = 0;
                tb[0] = gb[0] = '\0';
                d->gen(&r, &p, y, &text, &target);
                if (max_bytes && text.len + target.len > max_bytes) continue; /* too long: draw again */
                if (hset_add(&seen, pb_task_hash(tb, text.len, 0))) break;
            }
            if (st != PB_OK) break;
            pb_example e = {.label = y};
            if (!(e.text = pb_task_strdup(t, tb, text.len))) st = PB_ENOMEM;
            e.text_len = (uint32_t)text.len;
            if (st == PB_OK && d->kind == PB_TASK_GENERATE) {
                if (!(e.target = pb_task_strdup(t, gb, target.len))) st = PB_ENOMEM;
                e.target_len = (uint32_t)target.len;
            }
            if (st == PB_OK) st = pb_task_add(t, s, &e);
        }
        if (st == PB_OK) { /* labels were cycled: shuffle so that order carries no information */
            pb_example *ex = t->split[s].ex;
            for (size_t i = t->split[s].n; i > 1; i--) {
                size_t j = (size_t)pb_rng_below(&r, i);
                pb_example tmp = ex[i - 1];
                ex[i - 1] = ex[j], ex[j] = tmp;
            }
        }
    }
    free(seen.slot);
    return st;
}

static const char *const SYNTH_KEYS[] = {"n_train", "n_dev", "n_test", "max_bytes", "vocab", "min_words", "max_words",
                                         NULL};

const pb_task_family pb_family_synthetic = {
    .version = PB_TASK_FAMILY_VERSION,
    .name = "synthetic",
    .summary = "built-in tasks generated from split_seed (no download)",
    .keys = SYNTH_KEYS,
    .positional = 0,
    .match = synth_match,
    .list = synth_list,
    .open = synth_open,
};
