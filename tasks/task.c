/* tasks/task.c — opening tasks from specs, the family table, the options every task shares,
 * storage of examples, the CSV-to-examples loader, stratified subsampling, scoring, the task
 * list and the data directory (task.h, task_impl.h). Families live in their own files. */
#include "tasks/task_impl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_rng.h"

/* ---- names ----------------------------------------------------------------------------------- */

const char *pb_task_kind_name(pb_task_kind k) {
    static const char *const names[] = {
#define PB_TASK_KIND_NAME(id, key, desc) key,
        PB_TASK_KIND_MAP(PB_TASK_KIND_NAME)
#undef PB_TASK_KIND_NAME
    };
    return ((unsigned)k < PB_TASK_NKIND) ? names[k] : "?";
}

const char *pb_split_name(pb_split s) {
    static const char *const names[PB_NSPLIT] = {"train", "dev", "test"};
    return ((unsigned)s < PB_NSPLIT) ? names[s] : "?";
}

/* ---- the family table -------------------------------------------------------------------------- */

#define PB_TASK_FAMILY(sym) extern const pb_task_family sym;
#include "tasks/task_list.h"
#undef PB_TASK_FAMILY

static const pb_task_family *const g_families[] = {
#define PB_TASK_FAMILY(sym) &sym,
#include "tasks/task_list.h"
#undef PB_TASK_FAMILY
};

size_t pb_task_families(const pb_task_family *const **out) {
    *out = g_families;
    return sizeof g_families / sizeof g_families[0];
}

const char *const pb_task_common_keys[] = {"max_train", "max_dev", "max_test", "max_len", "split_seed", NULL};

/* ---- private storage --------------------------------------------------------------------------- */

typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

typedef struct {
    const char *name;
    int idx;
} label_ref;

struct pb_task_priv {
    block *blocks;
    size_t cap[PB_NSPLIT];
    label_ref *by_name; /* (n_labels) sorted by name, for lookups */
    size_t n_info, cap_info;
    const char **info; /* (2 * n_info) key, value */
};

char *pb_task_strdup(pb_task *t, const char *s, size_t len) {
    struct pb_task_priv *p = t->priv;
    block *b = p->blocks;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > ((size_t)1 << 20) ? len + 1 : ((size_t)1 << 20);
        block *nb = malloc(sizeof *nb + cap);
        if (!nb) {
            pb_errorf(PB_ENOMEM, "task %s: out of memory for %zu bytes of text", t->name, len);
            return NULL;
        }
        nb->used = 0, nb->cap = cap;
        if (b && b->cap - b->used >= ((size_t)1 << 16)) { /* keep filling the current block */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            p->blocks = nb;
        }
        b = nb;
    }
    char *d = b->data + b->used;
    if (len) memcpy(d, s, len);
    d[len] = '\0';
    b->used += len + 1;
    return d;
}

pb_status pb_task_add(pb_task *t, pb_split s, const pb_example *ex) {
    pb_task_split *sp = &t->split[s];
    size_t *cap = &t->priv->cap[s];
    if (sp->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 1024;
        pb_example *e = realloc(sp->ex, nc * sizeof *e);
        if (!e) return pb_errorf(PB_ENOMEM, "task %s: out of memory for %zu examples", t->name, nc);
        sp->ex = e, *cap = nc;
    }
    sp->ex[sp->n++] = *ex;
    return PB_OK;
}

static int cmp_label_ref(const void *a, const void *b) {
    return strcmp(((const label_ref *)a)->name, ((const label_ref *)b)->name);
}

pb_status pb_task_set_labels(pb_task *t, const char *const *names, int n) {
    if (n < 1) return pb_errorf(PB_EINVAL, "task %s: a label set needs at least one label", t->name);
    char **labels = calloc((size_t)n, sizeof *labels);
    label_ref *by = calloc((size_t)n, sizeof *by);
    if (!labels || !by) {
        free(labels), free(by);
        return pb_errorf(PB_ENOMEM, "task %s: out of memory for %d labels", t->name, n);
    }
    for (int i = 0; i < n; i++) {
        if (!(labels[i] = pb_task_strdup(t, names[i], strlen(names[i])))) {
            free(labels), free(by);
            return PB_ENOMEM;
        }
        by[i] = (label_ref){labels[i], i};
    }
    qsort(by, (size_t)n, sizeof *by, cmp_label_ref);
    for (int i = 1; i < n; i++)
        if (strcmp(by[i].name, by[i - 1].name) == 0) {
            pb_status st = pb_errorf(PB_EINVAL, "task %s: label '%s' appears twice in the label set", t->name,
                                     by[i].name);
            free(labels), free(by);
            return st;
        }
    free(t->labels), free(t->priv->by_name);
    t->labels = labels, t->n_labels = n, t->priv->by_name = by;
    return PB_OK;
}

int pb_task_label_index(const pb_task *t, const char *name) {
    if (!t->n_labels || !name) return -1;
    label_ref key = {name, 0};
    const label_ref *r = bsearch(&key, t->priv->by_name, (size_t)t->n_labels, sizeof key, cmp_label_ref);
    return r ? r->idx : -1;
}

pb_status pb_task_set_metrics(pb_task *t, const pb_metric_id *m, int n, int select) {
    if (n < 1 || n > PB_TASK_MAX_METRICS || select < 0 || select >= n)
        return pb_errorf(PB_EINVAL, "task %s: %d metrics with selection index %d (expected 1..%d)", t->name, n,
                         select, PB_TASK_MAX_METRICS);
    for (int i = 0; i < n; i++) t->metrics[i] = m[i];
    t->n_metrics = n, t->select = select;
    return PB_OK;
}

pb_status pb_task_set_info(pb_task *t, const char *key, const char *val) {
    struct pb_task_priv *p = t->priv;
    for (size_t i = 0; i < p->n_info; i++)
        if (strcmp(p->info[2 * i], key) == 0) {
            const char *v = pb_task_strdup(t, val, strlen(val));
            if (!v) return PB_ENOMEM;
            p->info[2 * i + 1] = v;
            return PB_OK;
        }
    if (p->n_info == p->cap_info) {
        size_t nc = p->cap_info ? 2 * p->cap_info : 16;
        const char **a = realloc(p->info, 2 * nc * sizeof *a);
        if (!a) return pb_errorf(PB_ENOMEM, "task %s: out of memory", t->name);
        p->info = a, p->cap_info = nc;
    }
    const char *k = pb_task_strdup(t, key, strlen(key)), *v = k ? pb_task_strdup(t, val, strlen(val)) : NULL;
    if (!v) return PB_ENOMEM;
    p->info[2 * p->n_info] = k;
    p->info[2 * p->n_info + 1] = v;
    p->n_info++;
    return PB_OK;
}

const char *pb_task_info(const pb_task *t, const char *key) {
    const struct pb_task_priv *p = t->priv;
    for (size_t i = 0; i < p->n_info; i++)
        if (strcmp(p->info[2 * i], key) == 0) return p->info[2 * i + 1];
    return NULL;
}

pb_status pb_task_set_source(pb_task *t, const char *source) {
    t->source = pb_task_strdup(t, source, strlen(source));
    return t->source ? PB_OK : PB_ENOMEM;
}

/* Calls fn(line, number) for each line of a small text file (CR stripped). */
static pb_status for_lines(pb_task *t, const char *path, const char *what,
                           pb_status (*fn)(pb_task *t, const char *path, char *line, unsigned no, void *ctx),
                           void *ctx) {
    char *buf;
    size_t len;
    pb_status st = pb_read_file(path, what, (size_t)16 << 20, &buf, &len);
    if (st != PB_OK) return st;
    if ((st = pb_csv_check_utf8(path, (const unsigned char *)buf, len)) != PB_OK) {
        free(buf);
        return st;
    }
    char *s = buf;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;
    unsigned no = 1;
    while (*s && st == PB_OK) {
        char *e = s;
        while (*e && *e != '\n' && *e != '\r') e++;
        char end = *e;
        *e = '\0';
        st = fn(t, path, s, no++, ctx);
        if (!end) break;
        s = e + 1;
        if (end == '\r' && *s == '\n') s++;
    }
    free(buf);
    return st;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

static pb_status info_line(pb_task *t, const char *path, char *line, unsigned no, void *ctx) {
    (void)ctx;
    char *s = trim(line);
    if (!*s || *s == '#') return PB_OK;
    char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return pb_errorf(PB_EFORMAT, "%s:%u:1: '%s' is not a setting (expected key=value)", path, no, s);
    *eq = '\0';
    return pb_task_set_info(t, trim(s), trim(eq + 1));
}

pb_status pb_task_read_info(pb_task *t, const char *path) {
    return for_lines(t, path, "an INFO file of key=value lines", info_line, NULL);
}

typedef struct {
    char **names;
    unsigned *lines;
    size_t n, cap;
} label_list;

static pb_status label_line(pb_task *t, const char *path, char *line, unsigned no, void *ctx) {
    label_list *L = ctx;
    char *s = trim(line);
    if (!*s) return PB_OK;
    for (size_t i = 0; i < L->n; i++)
        if (strcmp(L->names[i], s) == 0)
            return pb_errorf(PB_EFORMAT, "%s:%u:1: duplicate label '%s' (also line %u; expected each label once)",
                             path, no, s, L->lines[i]);
    if (L->n == L->cap) {
        size_t nc = L->cap ? 2 * L->cap : 32;
        char **a = realloc(L->names, nc * sizeof *a);
        if (a) L->names = a;
        unsigned *b = realloc(L->lines, nc * sizeof *b);
        if (b) L->lines = b;
        if (!a || !b) return pb_errorf(PB_ENOMEM, "%s: out of memory", path);
        L->cap = nc;
    }
    if (!(L->names[L->n] = pb_task_strdup(t, s, strlen(s)))) return PB_ENOMEM;
    L->lines[L->n++] = no;
    return PB_OK;
}

pb_status pb_task_read_labels(pb_task *t, const char *path) {
    label_list L = {0};
    pb_status st = for_lines(t, path, "a labels file, one label per line", label_line, &L);
    if (st == PB_OK && L.n == 0) st = pb_errorf(PB_EFORMAT, "%s:1:1: no labels (expected one label per line)", path);
    if (st == PB_OK) st = pb_task_set_labels(t, (const char *const *)L.names, (int)L.n);
    free(L.names), free(L.lines);
    return st;
}

/* ---- spec strings ------------------------------------------------------------------------------ */

void pb_spec_free(pb_spec *s) {
    free(s->buf);
    memset(s, 0, sizeof *s);
}

pb_status pb_spec_parse(const char *text, pb_spec *out) {
    memset(out, 0, sizeof *out);
    out->text = text;
    if (!text || !*text) return pb_errorf(PB_EINVAL, "empty task spec (expected NAME[:key=value,...])");
    const char *colon = strchr(text, ':');
    size_t nl = colon ? (size_t)(colon - text) : strlen(text);
    if (nl == 0 || nl >= sizeof out->name)
        return pb_errorf(PB_EINVAL, "task spec '%s': bad task name (expected NAME[:key=value,...])", text);
    for (size_t i = 0; i < nl; i++)
        if (!(islower((unsigned char)text[i]) || isdigit((unsigned char)text[i]) || text[i] == '_'))
            return pb_errorf(PB_EINVAL,
                             "task spec '%s': bad character '%c' in the task name (expected a-z, 0-9, _)", text,
                             text[i]);
    memcpy(out->name, text, nl);
    out->name[nl] = '\0';
    if (!colon) return PB_OK;
    if (!(out->buf = strdup(colon + 1))) return pb_errorf(PB_ENOMEM, "out of memory parsing a task spec");
    char *s = out->buf;
    for (int first = 1;; first = 0) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        if (!*s) {
            pb_spec_free(out);
            return pb_errorf(PB_EINVAL, "task spec '%s': empty option (expected key=value between commas)", text);
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            if (!first) {
                pb_status st = pb_errorf(PB_EINVAL, "task spec '%s': option '%s' has no value (expected key=value)",
                                         text, s);
                pb_spec_free(out);
                return st;
            }
            out->positional = s;
        } else {
            *eq = '\0';
            if (!*s) {
                pb_spec_free(out);
                return pb_errorf(PB_EINVAL, "task spec '%s': option with an empty key (expected key=value)", text);
            }
            for (int i = 0; i < out->n; i++)
                if (strcmp(out->item[i].key, s) == 0) {
                    pb_status st = pb_errorf(PB_EINVAL, "task spec '%s': option '%s' given twice", text, s);
                    pb_spec_free(out);
                    return st;
                }
            if (out->n == PB_SPEC_MAX_ITEMS) {
                pb_spec_free(out);
                return pb_errorf(PB_EINVAL, "task spec '%s': more than %d options", text, PB_SPEC_MAX_ITEMS);
            }
            out->item[out->n++] = (pb_spec_item){s, eq + 1};
        }
        if (!comma) break;
        s = comma + 1;
    }
    return PB_OK;
}

const char *pb_spec_get(const pb_spec *s, const char *key) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->item[i].key, key) == 0) return s->item[i].val;
    return NULL;
}

static int parse_u64(const char *v, uint64_t *out) {
    if (!v || !isdigit((unsigned char)v[0])) return 0;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end) return 0;
    *out = x;
    return 1;
}

pb_status pb_spec_size(const pb_spec *s, const char *key, size_t dflt, size_t lo, size_t hi, size_t *out) {
    const char *v = pb_spec_get(s, key);
    if (!v) return *out = dflt, PB_OK;
    uint64_t x;
    if (!parse_u64(v, &x) || x < lo || x > hi)
        return pb_errorf(PB_EINVAL, "task spec '%s': bad value '%s' for %s (expected an integer in [%zu, %zu])",
                         s->text, v, key, lo, hi);
    *out = (size_t)x;
    return PB_OK;
}

pb_status pb_spec_u64(const pb_spec *s, const char *key, uint64_t dflt, uint64_t *out) {
    const char *v = pb_spec_get(s, key);
    if (!v) return *out = dflt, PB_OK;
    if (!parse_u64(v, out))
        return pb_errorf(PB_EINVAL, "task spec '%s': bad value '%s' for %s (expected a non-negative integer)",
                         s->text, v, key);
    return PB_OK;
}

pb_status pb_spec_double(const pb_spec *s, const char *key, double dflt, double lo, double hi, double *out) {
    const char *v = pb_spec_get(s, key);
    if (!v) return *out = dflt, PB_OK;
    errno = 0;
    char *end;
    double x = *v ? strtod(v, &end) : NAN;
    if (!*v || errno || *end || !isfinite(x) || x < lo || x > hi || isspace((unsigned char)*v))
        return pb_errorf(PB_EINVAL, "task spec '%s': bad value '%s' for %s (expected a number in [%g, %g])",
                         s->text, v, key, lo, hi);
    *out = x;
    return PB_OK;
}

pb_status pb_spec_bool(const pb_spec *s, const char *key, int dflt, int *out) {
    const char *v = pb_spec_get(s, key);
    if (!v) return *out = dflt, PB_OK;
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) return *out = 1, PB_OK;
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) return *out = 0, PB_OK;
    return pb_errorf(PB_EINVAL, "task spec '%s': bad value '%s' for %s (expected 1 or 0)", s->text, v, key);
}

pb_status pb_spec_choice(const pb_spec *s, const char *key, const char *const *choices, int dflt, int *out) {
    const char *v = pb_spec_get(s, key);
    if (!v) return *out = dflt, PB_OK;
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(v, choices[i])) return *out = i, PB_OK;
        int k = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
        if (k > 0 && (size_t)k < sizeof list - used) used += (size_t)k;
    }
    return pb_errorf(PB_EINVAL, "task spec '%s': bad value '%s' for %s (expected one of: %s)", s->text, v, key,
                     list);
}

/* "max_train, max_dev, ..., n_train" — the keys a family accepts, for messages. */
static void accepted_keys(const pb_task_family *f, char *out, size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    const char *const *lists[2] = {pb_task_common_keys, f->keys};
    for (int l = 0; l < 2; l++)
        for (int i = 0; lists[l] && lists[l][i]; i++) {
            int k = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", lists[l][i]);
            if (k < 0 || (size_t)k >= cap - used) return;
            used += (size_t)k;
        }
}

static int key_in(const char *key, const char *const *keys) {
    for (int i = 0; keys && keys[i]; i++)
        if (!strcmp(key, keys[i])) return 1;
    return 0;
}

/* ---- the data directory ------------------------------------------------------------------------ */

pb_status pb_data_dir(const char *flag, char *out, size_t cap) {
    const char *env = getenv("PEFTBENCH_DATA"), *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    int n;
    if (flag && *flag) n = snprintf(out, cap, "%s", flag);
    else if (env && *env) n = snprintf(out, cap, "%s", env);
    else if (xdg && *xdg) n = snprintf(out, cap, "%s/peftbench", xdg);
    else if (home && *home) n = snprintf(out, cap, "%s/.local/share/peftbench", home);
    else
        return pb_errorf(PB_ENOTFOUND, "no data directory: give --data-dir, or set PEFTBENCH_DATA, XDG_DATA_HOME "
                                       "or HOME");
    if (n < 0 || (size_t)n >= cap) return pb_errorf(PB_EINVAL, "data directory path longer than %zu bytes", cap);
    return PB_OK;
}

pb_status pb_task_resolve_data_dir(const char *data_dir, char *out, size_t cap) {
    return pb_data_dir(data_dir, out, cap);
}

/* ---- opening --------------------------------------------------------------------------------- */

void pb_task_free(pb_task *t) {
    if (!t) return;
    for (int s = 0; s < PB_NSPLIT; s++) free(t->split[s].ex);
    free(t->labels);
    free(t->spec);
    if (t->priv) {
        for (block *b = t->priv->blocks, *nx; b; b = nx) nx = b->next, free(b);
        free(t->priv->by_name);
        free(t->priv->info);
        free(t->priv);
    }
    free(t);
}

/* Largest n <= len such that s[0..n) ends on a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t n) {
    if (n >= len) return len;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return n;
}

static void truncate_split(pb_task *t, pb_split s) {
    size_t T = t->opts.max_len;
    for (size_t i = 0; i < t->split[s].n; i++) {
        pb_example *e = &t->split[s].ex[i];
        if (!e->text) continue;
        size_t a = e->text_len, b = e->text2 ? e->text2_len : 0;
        if (T && a + b > T) {
            size_t na = a, nb = b; /* longest first: the shorter side keeps all it can */
            if (!e->text2) na = T;
            else if (a <= T / 2) nb = T - a;
            else if (b <= T / 2) na = T - b;
            else na = T - T / 2, nb = T / 2;
            na = utf8_cut(e->text, a, na);
            ((char *)e->text)[na] = '\0';
            e->text_len = (uint32_t)na;
            if (e->text2) {
                nb = utf8_cut(e->text2, b, nb);
                ((char *)e->text2)[nb] = '\0';
                e->text2_len = (uint32_t)nb;
            }
            t->stats.n_truncated[s]++;
        }
        size_t len = (size_t)e->text_len + (e->text2 ? e->text2_len : 0);
        if (len > t->stats.max_text_len[s]) t->stats.max_text_len[s] = len;
        if (e->target && e->target_len > t->stats.max_target_len[s]) t->stats.max_target_len[s] = e->target_len;
    }
}

static pb_status check_task(const pb_task *t) {
    if ((unsigned)t->kind >= PB_TASK_NKIND) return pb_errorf(PB_EINTERNAL, "task %s: no kind set", t->name);
    if (t->kind == PB_TASK_VISION)
        return pb_errorf(PB_EINVAL, "task %s: vision tasks are not implemented yet", t->name);
    if (t->kind == PB_TASK_CLASSIFY && t->n_labels < 2)
        return pb_errorf(PB_EFORMAT, "task %s: %d label%s (expected at least 2 labels for classification)", t->name,
                         t->n_labels, t->n_labels == 1 ? "" : "s");
    if (t->n_metrics < 1) return pb_errorf(PB_EINTERNAL, "task %s: no metrics set", t->name);
    for (int s = 0; s < PB_NSPLIT; s++) {
        if (t->split[s].n == 0)
            return pb_errorf(PB_EFORMAT, "task %s: the %s split has no examples (expected at least one%s%s)", t->name,
                             pb_split_name((pb_split)s), t->source ? "; data from " : "",
                             t->source ? t->source : "");
        for (size_t i = 0; i < t->split[s].n; i++) {
            const pb_example *e = &t->split[s].ex[i];
            if (!e->text || (t->kind == PB_TASK_GENERATE && !e->target) ||
                (t->kind == PB_TASK_CLASSIFY && (e->label < 0 || e->label >= t->n_labels)))
                return pb_errorf(PB_EINTERNAL, "task %s: %s example %zu is incomplete", t->name,
                                 pb_split_name((pb_split)s), i);
        }
    }
    return PB_OK;
}

/* The family that claims task name `name`, or NULL. */
static const pb_task_family *find_family(const char *name) {
    for (size_t i = 0; i < sizeof g_families / sizeof g_families[0]; i++)
        if (g_families[i]->match(name)) return g_families[i];
    return NULL;
}

pb_status pb_task_open(const char *spec_text, const char *data_dir, pb_task **out) {
    *out = NULL;
    pb_spec spec;
    pb_status st = pb_spec_parse(spec_text, &spec);
    if (st != PB_OK) return st;

    const pb_task_family *fam = find_family(spec.name);
    if (!fam) {
        char known[1024];
        size_t used = 0;
        pb_task_entry e[64];
        size_t n = pb_task_list(data_dir, e, 64);
        known[0] = '\0';
        for (size_t i = 0; i < n && i < 64; i++) {
            int k = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", e[i].name);
            if (k < 0 || (size_t)k >= sizeof known - used) break;
            used += (size_t)k;
        }
        st = pb_errorf(PB_ENOTFOUND, "unknown task '%s' (known: %s)", spec.name, known);
        pb_spec_free(&spec);
        return st;
    }
    char keys[512];
    accepted_keys(fam, keys, sizeof keys);
    if (spec.positional && !fam->positional) {
        st = pb_errorf(PB_EINVAL, "task spec '%s': '%s' is not key=value (accepted keys: %s)", spec_text,
                       spec.positional, keys);
        pb_spec_free(&spec);
        return st;
    }
    for (int i = 0; i < spec.n; i++)
        if (!key_in(spec.item[i].key, pb_task_common_keys) && !key_in(spec.item[i].key, fam->keys)) {
            st = pb_errorf(PB_EINVAL, "task spec '%s': unknown option '%s' (accepted keys: %s)", spec_text,
                           spec.item[i].key, keys);
            pb_spec_free(&spec);
            return st;
        }

    pb_task *t = calloc(1, sizeof *t);
    if (t) t->priv = calloc(1, sizeof *t->priv);
    if (!t || !t->priv) {
        free(t);
        pb_spec_free(&spec);
        return pb_errorf(PB_ENOMEM, "out of memory opening task %s", spec_text);
    }
    t->kind = PB_TASK_NKIND;
    t->family = fam->name;
    snprintf(t->name, sizeof t->name, "%s", spec.name);
    const size_t big = (size_t)1 << 40;
    if ((st = pb_spec_size(&spec, "max_train", 0, 0, big, &t->opts.max_train)) != PB_OK ||
        (st = pb_spec_size(&spec, "max_dev", 0, 0, big, &t->opts.max_dev)) != PB_OK ||
        (st = pb_spec_size(&spec, "max_test", 0, 0, big, &t->opts.max_test)) != PB_OK ||
        (st = pb_spec_size(&spec, "max_len", 0, 0, (size_t)UINT32_MAX, &t->opts.max_len)) != PB_OK ||
        (st = pb_spec_u64(&spec, "split_seed", 1, &t->opts.split_seed)) != PB_OK)
        goto fail;
    if (!(t->spec = strdup(spec_text))) {
        st = pb_errorf(PB_ENOMEM, "out of memory opening task %s", spec_text);
        goto fail;
    }
    pb_error_clear();
    if ((st = fam->open(&spec, data_dir, t)) != PB_OK) {
        if (!pb_errmsg()[0]) pb_errorf(st, "task %s: %s", t->name, pb_status_str(st));
        goto fail;
    }
    if ((st = check_task(t)) != PB_OK) goto fail;
    const size_t caps[PB_NSPLIT] = {t->opts.max_train, t->opts.max_dev, t->opts.max_test};
    for (int s = 0; s < PB_NSPLIT; s++) {
        t->stats.n_loaded[s] = t->split[s].n;
        if (caps[s] && (st = pb_task_subsample(t, (pb_split)s, caps[s], pb_hash_u64(t->opts.split_seed, 0x5b5 + s))) !=
                           PB_OK)
            goto fail;
        truncate_split(t, (pb_split)s);
    }
    pb_spec_free(&spec);
    *out = t;
    return PB_OK;
fail:
    pb_spec_free(&spec);
    pb_task_free(t);
    return st;
}

/* ---- loading CSV tables ---------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* "a, b, c" of the task's labels (or of the labels used by train when seen != NULL). */
static void label_list_str(const pb_task *t, const size_t *seen, char *out, size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < t->n_labels; i++) {
        if (seen && !seen[i]) continue;
        int k = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", t->labels[i]);
        if (k < 0 || (size_t)k >= cap - used) {
            if (cap > 4) strcpy(out + cap - 4, "...");
            return;
        }
        used += (size_t)k;
    }
    if (!used) snprintf(out, cap, "none");
}

#define MAX_LABELS 65536

/* Label set = sorted distinct values of the label column of train. */
static pb_status labels_from_train(pb_task *t, const pb_csv_table *tab, int col) {
    const char **v = malloc((tab->n_rows ? tab->n_rows : 1) * sizeof *v);
    if (!v) return pb_errorf(PB_ENOMEM, "%s: out of memory", tab->name);
    for (size_t r = 0; r < tab->n_rows; r++) v[r] = pb_csv_cell(tab, r, (size_t)col);
    qsort(v, tab->n_rows, sizeof *v, cmp_str);
    size_t n = 0;
    for (size_t r = 0; r < tab->n_rows; r++)
        if (n == 0 || strcmp(v[r], v[n - 1]) != 0) v[n++] = v[r];
    pb_status st;
    if (n > MAX_LABELS)
        st = pb_errorf(PB_EFORMAT,
                       "%s: %zu distinct labels in column '%s' (expected at most %d; is this column a text, a "
                       "number for kind=regress, or a target for kind=generate?)",
                       tab->name, n, tab->col_names[col], MAX_LABELS);
    else st = pb_task_set_labels(t, v, (int)n);
    free(v);
    return st;
}

pb_status pb_task_load_tables(pb_task *t, pb_csv_table *const tabs[PB_NSPLIT], const pb_colmap *cm,
                              const char *labels_what) {
    int is_cls = t->kind == PB_TASK_CLASSIFY, is_reg = t->kind == PB_TASK_REGRESS, is_gen = t->kind == PB_TASK_GENERATE;
    if (!is_cls && !is_reg && !is_gen)
        return pb_errorf(PB_EINTERNAL, "task %s: set the kind before loading tables", t->name);
    size_t *seen = NULL;
    pb_status st = PB_OK;
    const char *train_name = tabs[PB_SPLIT_TRAIN] ? tabs[PB_SPLIT_TRAIN]->name : "train";
    for (int s = 0; s < PB_NSPLIT && st == PB_OK; s++) {
        const pb_csv_table *tab = tabs[s];
        if (!tab) continue;
        if (tab->n_rows == 0) {
            st = pb_errorf(PB_EFORMAT, "%s:2:1: no data rows (expected at least one %s example after the header)",
                           tab->name, pb_split_name((pb_split)s));
            break;
        }
        int ct = -1, ct2 = -1, cl = -1, cg = -1;
        if ((st = pb_csv_require_col(tab, cm->text, is_gen ? "for the input" : "for the text", &ct)) != PB_OK) break;
        if (cm->text2 && (st = pb_csv_require_col(tab, cm->text2, "for the second text", &ct2)) != PB_OK) break;
        if (!is_gen && (st = pb_csv_require_col(tab, cm->label, is_reg ? "for the score" : "for the label", &cl)) !=
                           PB_OK)
            break;
        if (is_gen && (st = pb_csv_require_col(tab, cm->target, "for the target", &cg)) != PB_OK) break;
        if (is_cls && s == PB_SPLIT_TRAIN && t->n_labels == 0 && (st = labels_from_train(t, tab, cl)) != PB_OK) break;
        if (is_cls && s == PB_SPLIT_TRAIN) {
            if (!(seen = calloc((size_t)t->n_labels, sizeof *seen))) {
                st = pb_errorf(PB_ENOMEM, "%s: out of memory", tab->name);
                break;
            }
        }
        t->stats.n_skipped[s] += tab->n_skipped;
        for (size_t r = 0; r < tab->n_rows && st == PB_OK; r++) {
            pb_example e = {.label = -1};
            const char *x = pb_csv_cell(tab, r, (size_t)ct);
            size_t xl = tab->lens[r * tab->n_cols + (size_t)ct];
            if (!(e.text = pb_task_strdup(t, x, xl))) {
                st = PB_ENOMEM;
                break;
            }
            e.text_len = (uint32_t)xl;
            if (ct2 >= 0) {
                size_t l2 = tab->lens[r * tab->n_cols + (size_t)ct2];
                if (!(e.text2 = pb_task_strdup(t, pb_csv_cell(tab, r, (size_t)ct2), l2))) {
                    st = PB_ENOMEM;
                    break;
                }
                e.text2_len = (uint32_t)l2;
            }
            if (is_gen) {
                size_t lg = tab->lens[r * tab->n_cols + (size_t)cg];
                if (!(e.target = pb_task_strdup(t, pb_csv_cell(tab, r, (size_t)cg), lg))) {
                    st = PB_ENOMEM;
                    break;
                }
                e.target_len = (uint32_t)lg;
            } else {
                const char *lab = pb_csv_cell(tab, r, (size_t)cl);
                pb_csv_pos at = pb_csv_cell_pos(tab, r, (size_t)cl);
                if (is_reg) {
                    char *end;
                    errno = 0;
                    double v = *lab && !isspace((unsigned char)*lab) ? strtod(lab, &end) : NAN;
                    if (!*lab || isspace((unsigned char)*lab) || errno || *end || !isfinite(v)) {
                        st = pb_errorf(PB_EFORMAT, "%s:%u:%u: score '%.40s' in column '%s' is not a number "
                                                   "(expected a decimal number such as 3.8)",
                                       tab->name, at.line, at.col, lab, tab->col_names[cl]);
                        break;
                    }
                    e.value = (float)v;
                } else {
                    int k = pb_task_label_index(t, lab);
                    if (k < 0 && s != PB_SPLIT_TRAIN && !labels_what && seen) {
                        char labs[512]; /* the label set came from train: say so */
                        label_list_str(t, seen, labs, sizeof labs);
                        st = pb_errorf(PB_EFORMAT,
                                       "%s:%u:%u: label '%.80s' never appears in %s (expected one of the train "
                                       "labels: %s)",
                                       tab->name, at.line, at.col, lab, train_name, labs);
                        break;
                    }
                    if (k < 0) {
                        char labs[512];
                        label_list_str(t, NULL, labs, sizeof labs);
                        st = pb_errorf(PB_EFORMAT, "%s:%u:%u: label '%.80s' is not one of the %d labels%s%s (%s)",
                                       tab->name, at.line, at.col, lab, t->n_labels, labels_what ? " in " : "",
                                       labels_what ? labels_what : "", labs);
                        break;
                    }
                    if (s == PB_SPLIT_TRAIN) seen[k]++;
                    else if (seen && !seen[k]) {
                        char labs[512];
                        label_list_str(t, seen, labs, sizeof labs);
                        st = pb_errorf(PB_EFORMAT,
                                       "%s:%u:%u: label '%.80s' never appears in %s (expected one of the train "
                                       "labels: %s)",
                                       tab->name, at.line, at.col, lab, train_name, labs);
                        break;
                    }
                    e.label = k;
                }
            }
            st = pb_task_add(t, (pb_split)s, &e);
        }
    }
    free(seen);
    return st;
}

/* ---- stratified selection ---------------------------------------------------------------------- */

typedef struct {
    int cls;
    uint64_t rem;
} rem_ref;

static int cmp_rem(const void *a, const void *b) {
    const rem_ref *p = a, *q = b;
    if (p->rem != q->rem) return p->rem > q->rem ? -1 : 1;
    return (p->cls > q->cls) - (p->cls < q->cls);
}

/* Marks `keep` of the n examples of split s. min_one: every label keeps one when keep allows.
 * leave_one: no label gives away all its examples (used when carving). */
static pb_status select_examples(pb_task *t, pb_split s, size_t keep, uint64_t seed, int min_one, int leave_one,
                                 unsigned char *mark) {
    const pb_task_split *sp = &t->split[s];
    size_t n = sp->n;
    int K = (t->kind == PB_TASK_CLASSIFY || t->kind == PB_TASK_VISION) ? t->n_labels : 0;
    int groups = K > 0 ? K : 1;
    size_t *cnt = calloc((size_t)groups, sizeof *cnt), *q = calloc((size_t)groups, sizeof *q);
    rem_ref *rr = calloc((size_t)groups, sizeof *rr);
    int *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!cnt || !q || !rr || !idx) {
        free(cnt), free(q), free(rr), free(idx);
        return pb_errorf(PB_ENOMEM, "task %s: out of memory subsampling", t->name);
    }
    for (size_t i = 0; i < n; i++) cnt[K ? sp->ex[i].label : 0]++;
    /* Largest remainder: q_c = floor(keep n_c / n), the rest to the largest remainders. */
    size_t given = 0;
    for (int c = 0; c < groups; c++) {
        size_t cap = leave_one && cnt[c] ? cnt[c] - 1 : cnt[c];
        uint64_t prod = (uint64_t)keep * cnt[c]; /* keep < n < 2^32: no overflow */
        q[c] = (size_t)(prod / n);
        rr[c] = (rem_ref){c, (uint64_t)(prod % n)};
        if (q[c] > cap) q[c] = cap;
        given += q[c];
    }
    qsort(rr, (size_t)groups, sizeof *rr, cmp_rem);
    for (int pass = 0; pass < 2 && given < keep; pass++)
        for (int j = 0; j < groups && given < keep; j++) {
            int c = rr[j].cls;
            size_t cap = leave_one && cnt[c] ? cnt[c] - 1 : cnt[c];
            if (q[c] < cap && (pass == 1 || rr[j].rem > 0)) q[c]++, given++;
        }
    if (min_one && K) {
        int present = 0;
        for (int c = 0; c < K; c++) present += cnt[c] > 0;
        if (keep >= (size_t)present)
            for (int c = 0; c < K; c++)
                if (cnt[c] && !q[c]) { /* take one from the label with the largest quota */
                    int big = -1;
                    for (int d = 0; d < K; d++)
                        if (q[d] > 1 && (big < 0 || q[d] > q[big])) big = d;
                    if (big < 0) break;
                    q[big]--, q[c]++;
                }
    }
    /* Within each label: a seeded shuffle of its examples, the first q_c kept. */
    pb_rng rng;
    pb_rng_seed(&rng, seed);
    memset(mark, 0, n);
    for (int c = 0; c < groups; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if ((K ? sp->ex[i].label : 0) == c) idx[m++] = (int)i;
        pb_rng_shuffle_int(&rng, idx, m);
        for (size_t j = 0; j < q[c] && j < m; j++) mark[idx[j]] = 1;
    }
    free(cnt), free(q), free(rr), free(idx);
    return PB_OK;
}

pb_status pb_task_subsample(pb_task *t, pb_split s, size_t n, uint64_t seed) {
    pb_task_split *sp = &t->split[s];
    if (n >= sp->n) return PB_OK;
    unsigned char *mark = malloc(sp->n);
    if (!mark) return pb_errorf(PB_ENOMEM, "task %s: out of memory subsampling", t->name);
    pb_status st = select_examples(t, s, n, seed, 1, 0, mark);
    if (st == PB_OK) {
        size_t k = 0;
        for (size_t i = 0; i < sp->n; i++)
            if (mark[i]) sp->ex[k++] = sp->ex[i];
        sp->n = k;
    }
    free(mark);
    return st;
}

pb_status pb_task_carve(pb_task *t, pb_split from, pb_split to, double frac, uint64_t seed) {
    pb_task_split *a = &t->split[from];
    if (t->split[to].n) return pb_errorf(PB_EINTERNAL, "task %s: carving into a non-empty split", t->name);
    if (!(frac > 0 && frac < 1)) return pb_errorf(PB_EINVAL, "task %s: fraction %g outside (0, 1)", t->name, frac);
    size_t k = (size_t)llround(frac * (double)a->n);
    if (k == 0 && a->n > 1) k = 1;
    unsigned char *mark = malloc(a->n ? a->n : 1);
    if (!mark) return pb_errorf(PB_ENOMEM, "task %s: out of memory", t->name);
    pb_status st = select_examples(t, from, k, seed, 0, 1, mark);
    size_t kept = 0;
    for (size_t i = 0; i < a->n && st == PB_OK; i++) {
        if (mark[i]) st = pb_task_add(t, to, &a->ex[i]);
        else a->ex[kept++] = a->ex[i];
    }
    if (st == PB_OK) a->n = kept;
    free(mark);
    return st;
}

uint64_t pb_task_hash(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    if (!h) h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* ---- scoring ----------------------------------------------------------------------------------- */

pb_status pb_task_score(const pb_task *t, pb_split s, const pb_predictions *p, double out[PB_TASK_MAX_METRICS]) {
    if ((unsigned)s >= PB_NSPLIT) return pb_errorf(PB_EINVAL, "score: bad split %d", (int)s);
    const pb_task_split *sp = &t->split[s];
    size_t n = p->n ? p->n : sp->n;
    if (n > sp->n)
        return pb_errorf(PB_EINVAL, "score %s/%s: %zu predictions for %zu examples", t->name, pb_split_name(s), n,
                         sp->n);
    pb_metric_args a = {.n = n, .n_classes = t->n_labels};
    int *gl = NULL;
    double *gv = NULL;
    const char **gt = NULL;
    pb_status st = PB_OK;
    switch (t->kind) {
    case PB_TASK_CLASSIFY:
    case PB_TASK_VISION:
        if (!p->labels) return pb_errorf(PB_EINVAL, "score %s: predicted labels missing", t->name);
        if (!(gl = malloc((n ? n : 1) * sizeof *gl))) return pb_errorf(PB_ENOMEM, "score: out of memory");
        for (size_t i = 0; i < n; i++) gl[i] = sp->ex[i].label;
        a.pred_label = p->labels, a.gold_label = gl;
        break;
    case PB_TASK_REGRESS:
        if (!p->values) return pb_errorf(PB_EINVAL, "score %s: predicted values missing", t->name);
        if (!(gv = malloc((n ? n : 1) * sizeof *gv))) return pb_errorf(PB_ENOMEM, "score: out of memory");
        for (size_t i = 0; i < n; i++) gv[i] = sp->ex[i].value;
        a.pred_value = p->values, a.gold_value = gv;
        break;
    case PB_TASK_GENERATE:
        if (!p->texts) return pb_errorf(PB_EINVAL, "score %s: generated texts missing", t->name);
        if (!(gt = malloc((n ? n : 1) * sizeof *gt))) return pb_errorf(PB_ENOMEM, "score: out of memory");
        for (size_t i = 0; i < n; i++) gt[i] = sp->ex[i].target;
        a.pred_text = p->texts, a.gold_text = gt;
        break;
    default: return pb_errorf(PB_EINVAL, "score %s: unknown kind", t->name);
    }
    for (int m = 0; m < t->n_metrics && st == PB_OK; m++) {
        st = pb_metric_compute(t->metrics[m], &a, &out[m]);
        if (st != PB_OK) pb_error_context(st, "scoring %s/%s", t->name, pb_split_name(s));
    }
    free(gl), free(gv), free(gt);
    return st;
}

/* ---- listing ----------------------------------------------------------------------------------- */

pb_status pb_task_fetch_need(const char *spec_text, const char *data_dir, int *fetched, char *source, size_t cap,
                             int *present) {
    *fetched = 0;
    *present = 1;
    if (cap) source[0] = '\0';
    pb_spec spec;
    pb_status st = pb_spec_parse(spec_text, &spec);
    if (st != PB_OK) return st;
    const pb_task_family *fam = find_family(spec.name);
    if (!fam) st = pb_errorf(PB_ENOTFOUND, "unknown task '%s' (see `peftbench list tasks`)", spec.name);
    else if (fam->fetched) {
        char dd[4096];
        if ((st = pb_task_resolve_data_dir(data_dir, dd, sizeof dd)) == PB_OK)
            *fetched = fam->fetched(&spec, dd, source, cap, present);
    }
    pb_spec_free(&spec);
    return st;
}

size_t pb_task_list(const char *data_dir, pb_task_entry *out, size_t cap) {
    size_t total = 0;
    for (size_t i = 0; i < sizeof g_families / sizeof g_families[0]; i++) {
        size_t room = total < cap ? cap - total : 0;
        total += g_families[i]->list(data_dir, room ? out + total : NULL, room);
    }
    return total;
}
