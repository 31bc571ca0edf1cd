/* metrics.c — evaluation metrics (see metrics.h). Plain loops over arrays; the only allocations
 * are scratch buffers for ranks, n-gram lists and one Levenshtein row, each checked. */
#include "tasks/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pb_status text_metric(pb_metric_id id, const char *const *hyp, const char *const *ref, size_t n,
                             const char *what, double *out);

/* ---- the registry -------------------------------------------------------------------------- */

static const struct {
    const char *key;
    int higher;
    const char *desc;
} g_metrics[PB_METRIC_COUNT] = {
#define PB_METRIC_ROW(id, key, hib, desc) {key, hib, desc},
    PB_METRIC_MAP(PB_METRIC_ROW)
#undef PB_METRIC_ROW
};

const char *pb_metric_key(pb_metric_id id) {
    return ((unsigned)id < PB_METRIC_COUNT) ? g_metrics[id].key : "?";
}

const char *pb_metric_desc(pb_metric_id id) {
    return ((unsigned)id < PB_METRIC_COUNT) ? g_metrics[id].desc : "unknown metric";
}

int pb_metric_higher_is_better(pb_metric_id id) {
    return ((unsigned)id < PB_METRIC_COUNT) ? g_metrics[id].higher : 1;
}

pb_status pb_metric_from_key(const char *key, pb_metric_id *out) {
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < PB_METRIC_COUNT; i++) {
        if (key && strcmp(key, g_metrics[i].key) == 0) {
            *out = (pb_metric_id)i;
            return PB_OK;
        }
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", g_metrics[i].key);
        if (used >= sizeof list) used = sizeof list - 1;
    }
    return pb_errorf(PB_ENOTFOUND, "unknown metric '%s' (known: %s)", key ? key : "(null)", list);
}

/* ---- classification -------------------------------------------------------------------------- */

static pb_status check_labels(const int *pred, const int *gold, size_t n, int n_classes, const char *what) {
    if (!pred || !gold) return pb_errorf(PB_EINVAL, "%s: predictions or gold labels missing", what);
    if (n == 0) return pb_errorf(PB_EINVAL, "%s: no examples to score", what);
    if (n_classes < 1) return pb_errorf(PB_EINVAL, "%s: n_classes must be at least 1 (got %d)", what, n_classes);
    for (size_t i = 0; i < n; i++) {
        if (gold[i] < 0 || gold[i] >= n_classes)
            return pb_errorf(PB_EINVAL, "%s: gold label %d of example %zu is outside [0, %d)", what, gold[i], i,
                             n_classes);
        if (pred[i] < 0 || pred[i] >= n_classes)
            return pb_errorf(PB_EINVAL, "%s: predicted label %d of example %zu is outside [0, %d)", what, pred[i],
                             i, n_classes);
    }
    return PB_OK;
}

pb_status pb_metric_accuracy(const int *pred, const int *gold, size_t n, double *out) {
    if (!pred || !gold) return pb_errorf(PB_EINVAL, "acc: predictions or gold labels missing");
    if (n == 0) return pb_errorf(PB_EINVAL, "acc: no examples to score");
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == gold[i];
    *out = (double)ok / (double)n;
    return PB_OK;
}

pb_status pb_metric_f1(const int *pred, const int *gold, size_t n, int positive, double *out) {
    if (!pred || !gold) return pb_errorf(PB_EINVAL, "f1: predictions or gold labels missing");
    if (n == 0) return pb_errorf(PB_EINVAL, "f1: no examples to score");
    size_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int p = pred[i] == positive, g = gold[i] == positive;
        tp += p && g;
        fp += p && !g;
        fn += !p && g;
    }
    size_t den = 2 * tp + fp + fn;
    *out = den ? (double)(2 * tp) / (double)den : 0.0;
    return PB_OK;
}

/* Per-class counts: tp[k], number predicted k (pk), number gold k (tk). */
static pb_status class_counts(const int *pred, const int *gold, size_t n, int n_classes, size_t **buf) {
    size_t *c = calloc((size_t)n_classes * 3, sizeof *c);
    if (!c) return pb_errorf(PB_ENOMEM, "metrics: out of memory for %d classes", n_classes);
    size_t *tp = c, *pk = c + n_classes, *tk = c + 2 * n_classes;
    for (size_t i = 0; i < n; i++) {
        tp[gold[i]] += pred[i] == gold[i];
        pk[pred[i]]++;
        tk[gold[i]]++;
    }
    *buf = c;
    return PB_OK;
}

/* Macro F1 from per-class counts (the one formula: the array and the statistics forms use it). */
static double macro_f1_counts(const double *tp, const double *pk, const double *tk, int n_classes) {
    double sum = 0.0;
    int used = 0;
    for (int k = 0; k < n_classes; k++) {
        if (pk[k] == 0 && tk[k] == 0) continue; /* class absent from both: not averaged (as sklearn) */
        /* F1_k = 2TP / (2TP + FP + FN) = 2TP / (predicted_k + gold_k) */
        sum += 2 * tp[k] / (pk[k] + tk[k]);
        used++;
    }
    return used ? sum / used : 0.0;
}

/* MCC (multi-class R_K) from per-class counts and the number of examples s. */
static double mcc_counts(const double *tp, const double *pk, const double *tk, int n_classes, double s) {
    double correct = 0, sum_pt = 0, sum_pp = 0, sum_tt = 0;
    for (int k = 0; k < n_classes; k++) {
        correct += tp[k];
        sum_pt += pk[k] * tk[k];
        sum_pp += pk[k] * pk[k];
        sum_tt += tk[k] * tk[k];
    }
    double cov_yp = correct * s - sum_pt, var_p = s * s - sum_pp, var_t = s * s - sum_tt;
    double den = sqrt(var_p * var_t);
    return den > 0 ? cov_yp / den : 0.0;
}

/* Per-class counts of (pred, gold) as doubles: tp[k], predicted k (pk), gold k (tk). */
static pb_status class_counts_d(const int *pred, const int *gold, size_t n, int n_classes, double **buf) {
    size_t *c = NULL;
    pb_status st = class_counts(pred, gold, n, n_classes, &c);
    if (st != PB_OK) return st;
    double *d = malloc(sizeof *d * (size_t)n_classes * 3);
    if (!d) {
        free(c);
        return pb_errorf(PB_ENOMEM, "metrics: out of memory for %d classes", n_classes);
    }
    for (int k = 0; k < 3 * n_classes; k++) d[k] = (double)c[k];
    free(c);
    *buf = d;
    return PB_OK;
}

pb_status pb_metric_macro_f1(const int *pred, const int *gold, size_t n, int n_classes, double *out) {
    pb_status st = check_labels(pred, gold, n, n_classes, "macro_f1");
    if (st != PB_OK) return st;
    double *c = NULL;
    if ((st = class_counts_d(pred, gold, n, n_classes, &c)) != PB_OK) return st;
    *out = macro_f1_counts(c, c + n_classes, c + 2 * n_classes, n_classes);
    free(c);
    return PB_OK;
}

pb_status pb_metric_mcc(const int *pred, const int *gold, size_t n, int n_classes, double *out) {
    pb_status st = check_labels(pred, gold, n, n_classes, "mcc");
    if (st != PB_OK) return st;
    double *c = NULL;
    if ((st = class_counts_d(pred, gold, n, n_classes, &c)) != PB_OK) return st;
    *out = mcc_counts(c, c + n_classes, c + 2 * n_classes, n_classes, (double)n);
    free(c);
    return PB_OK;
}

/* ---- regression ------------------------------------------------------------------------------ */

static pb_status check_values(const double *x, const double *y, size_t n, const char *what) {
    if (!x || !y) return pb_errorf(PB_EINVAL, "%s: predictions or gold values missing", what);
    if (n == 0) return pb_errorf(PB_EINVAL, "%s: no examples to score", what);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return pb_errorf(PB_EINVAL, "%s: value %zu is not finite (%g, %g)", what, i, x[i], y[i]);
    return PB_OK;
}

static double pearson(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= (double)n, my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
    }
    double den = sqrt(sxx * syy);
    return den > 0 ? sxy / den : 0.0;
}

pb_status pb_metric_pearson(const double *x, const double *y, size_t n, double *out) {
    pb_status st = check_values(x, y, n, "pearson");
    if (st != PB_OK) return st;
    *out = pearson(x, y, n);
    return PB_OK;
}

typedef struct {
    double v;
    size_t i;
} vi_pair;

static int cmp_vi(const void *a, const void *b) {
    const vi_pair *p = a, *q = b;
    if (p->v < q->v) return -1;
    if (p->v > q->v) return 1;
    return (p->i > q->i) - (p->i < q->i); /* stable: qsort is not */
}

pb_status pb_metric_ranks(const double *x, size_t n, double *r) {
    vi_pair *a = malloc((n ? n : 1) * sizeof *a);
    if (!a) return pb_errorf(PB_ENOMEM, "ranks: out of memory for %zu values", n);
    for (size_t i = 0; i < n; i++) a[i] = (vi_pair){x[i], i};
    qsort(a, n, sizeof *a, cmp_vi);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && a[j + 1].v == a[i].v) j++;
        double avg = 0.5 * (double)(i + j) + 1.0; /* mean of 1-based positions i+1 .. j+1 */
        for (size_t k = i; k <= j; k++) r[a[k].i] = avg;
        i = j + 1;
    }
    free(a);
    return PB_OK;
}

pb_status pb_metric_spearman(const double *x, const double *y, size_t n, double *out) {
    pb_status st = check_values(x, y, n, "spearman");
    if (st != PB_OK) return st;
    double *r = malloc(2 * n * sizeof *r);
    if (!r) return pb_errorf(PB_ENOMEM, "spearman: out of memory for %zu values", n);
    if ((st = pb_metric_ranks(x, n, r)) == PB_OK && (st = pb_metric_ranks(y, n, r + n)) == PB_OK)
        *out = pearson(r, r + n, n);
    free(r);
    return st;
}

/* ---- generation ------------------------------------------------------------------------------ */

static pb_status check_texts(const char *const *hyp, const char *const *ref, size_t n, const char *what) {
    if (!hyp || !ref) return pb_errorf(PB_EINVAL, "%s: outputs or references missing", what);
    if (n == 0) return pb_errorf(PB_EINVAL, "%s: no examples to score", what);
    for (size_t i = 0; i < n; i++)
        if (!hyp[i] || !ref[i]) return pb_errorf(PB_EINVAL, "%s: output or reference %zu is NULL", what, i);
    return PB_OK;
}

pb_status pb_metric_exact(const char *const *hyp, const char *const *ref, size_t n, double *out) {
    return text_metric(PB_METRIC_EXACT, hyp, ref, n, "exact", out);
}

static int utf8_next(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) return *cp = c, 1;
    if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07, min = 0x10000;
    else return *cp = 0x110000u + c, 1;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return *cp = 0x110000u + c, 1;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return *cp = 0x110000u + c, 1;
    return *cp = v, len;
}

/* Python's str.isspace(), which is what sacreBLEU's re.sub(r'\s+', '') removes. */
static int is_unicode_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Code points of s without whitespace; *len receives the count. Caller frees. */
static uint32_t *chars_nows(const char *s, size_t *len) {
    size_t n = strlen(s);
    uint32_t *cp = malloc((n ? n : 1) * sizeof *cp);
    if (!cp) return NULL;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t c;
        p += utf8_next(p, &c);
        if (!is_unicode_space(c)) cp[k++] = c;
    }
    *len = k;
    return cp;
}

/* An n-gram of up to 6 code points (21 bits each) packed exactly into two words. */
typedef struct {
    uint64_t hi, lo;
} gram;

static int cmp_gram(const void *a, const void *b) {
    const gram *p = a, *q = b;
    if (p->hi != q->hi) return p->hi < q->hi ? -1 : 1;
    if (p->lo != q->lo) return p->lo < q->lo ? -1 : 1;
    return 0;
}

static size_t make_grams(const uint32_t *c, size_t len, int order, gram *g) {
    if (len < (size_t)order) return 0;
    size_t m = len - (size_t)order + 1;
    for (size_t i = 0; i < m; i++) {
        gram x = {0, 0};
        for (int k = 0; k < order; k++) {
            if (k < 3) x.hi |= (uint64_t)c[i + k] << (21 * (2 - k));
            else x.lo |= (uint64_t)c[i + k] << (21 * (5 - k));
        }
        g[i] = x;
    }
    qsort(g, m, sizeof *g, cmp_gram);
    return m;
}

/* Size of the multiset intersection of two sorted lists: sum over n-grams of min(count). */
static size_t common_grams(const gram *a, size_t na, const gram *b, size_t nb) {
    size_t i = 0, j = 0, m = 0;
    while (i < na && j < nb) {
        int c = cmp_gram(&a[i], &b[j]);
        if (c == 0) m++, i++, j++;
        else if (c < 0) i++;
        else j++;
    }
    return m;
}

#define CHRF_ORDER 6
#define CHRF_BETA 2.0

/* An example's chrF statistics: for each order o = 1..6, {hyp o-grams, ref o-grams, common}. */
static pb_status chrf_stats(const char *hyp, const char *ref, double *stats) {
    size_t lh, lr;
    uint32_t *ch = chars_nows(hyp, &lh), *cr = chars_nows(ref, &lr);
    gram *gh = malloc((lh ? lh : 1) * sizeof *gh), *gr = malloc((lr ? lr : 1) * sizeof *gr);
    if (!ch || !cr || !gh || !gr) {
        free(ch), free(cr), free(gh), free(gr);
        return pb_errorf(PB_ENOMEM, "chrf: out of memory");
    }
    for (int o = 1; o <= CHRF_ORDER; o++) {
        size_t nh = make_grams(ch, lh, o, gh), nr = make_grams(cr, lr, o, gr);
        stats[3 * (o - 1)] = (double)nh;
        stats[3 * (o - 1) + 1] = (double)nr;
        stats[3 * (o - 1) + 2] = (double)common_grams(gh, nh, gr, nr);
    }
    free(ch), free(cr), free(gh), free(gr);
    return PB_OK;
}

/* chrF from corpus-summed statistics: precision and recall averaged over the orders where both
 * sides have n-grams, then F_beta. */
static double chrf_from_stats(const double *stats) {
    double prec = 0, rec = 0;
    int eff = 0;
    for (int o = 0; o < CHRF_ORDER; o++) {
        const double *s = stats + 3 * o;
        if (s[0] > 0 && s[1] > 0) {
            prec += s[2] / s[0];
            rec += s[2] / s[1];
            eff++;
        }
    }
    if (eff) prec /= eff, rec /= eff;
    double b2 = CHRF_BETA * CHRF_BETA;
    return (prec + rec > 0) ? 100.0 * (1 + b2) * prec * rec / (b2 * prec + rec) : 0.0;
}

/* A corpus-level generation metric: its examples' statistics summed, then combined. */
static pb_status text_metric(pb_metric_id id, const char *const *hyp, const char *const *ref, size_t n,
                             const char *what, double *out) {
    pb_status st = check_texts(hyp, ref, n, what);
    if (st != PB_OK) return st;
    double sum[3 * CHRF_ORDER] = {0}, ex[3 * CHRF_ORDER];
    size_t k = pb_metric_n_stats(id, 0);
    for (size_t i = 0; i < n; i++) {
        if ((st = pb_metric_text_stats(id, hyp[i], ref[i], ex)) != PB_OK)
            return pb_error_context(st, "%s: example %zu", what, i);
        for (size_t j = 0; j < k; j++) sum[j] += ex[j];
    }
    return pb_metric_from_stats(id, sum, 0, out);
}

pb_status pb_metric_chrf(const char *const *hyp, const char *const *ref, size_t n, double *out) {
    return text_metric(PB_METRIC_CHRF, hyp, ref, n, "chrf", out);
}

/* Splits s on ASCII whitespace into at most cap tokens (start, length); returns the count. */
typedef struct {
    const char *s;
    size_t len;
} token;

static int is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static size_t count_tokens(const char *s) {
    size_t n = 0;
    while (*s) {
        while (*s && is_ascii_space(*s)) s++;
        if (!*s) break;
        n++;
        while (*s && !is_ascii_space(*s)) s++;
    }
    return n;
}

static void split_tokens(const char *s, token *t) {
    size_t n = 0;
    while (*s) {
        while (*s && is_ascii_space(*s)) s++;
        if (!*s) break;
        const char *b = s;
        while (*s && !is_ascii_space(*s)) s++;
        t[n++] = (token){b, (size_t)(s - b)};
    }
}

static int tok_eq(token a, token b) { return a.len == b.len && memcmp(a.s, b.s, a.len) == 0; }

/* An example's token accuracy statistics: {positions matching, reference tokens}. */
static pb_status token_acc_stats(const char *hyp, const char *ref, double *stats) {
    size_t nh = count_tokens(hyp), nr = count_tokens(ref);
    token *t = malloc((nh + nr + 1) * sizeof *t);
    if (!t) return pb_errorf(PB_ENOMEM, "token_acc: out of memory");
    split_tokens(hyp, t);
    split_tokens(ref, t + nh);
    size_t match = 0;
    for (size_t j = 0; j < nr && j < nh; j++) match += tok_eq(t[j], t[nh + j]);
    free(t);
    stats[0] = (double)match;
    stats[1] = (double)nr;
    return PB_OK;
}

pb_status pb_metric_token_acc(const char *const *hyp, const char *const *ref, size_t n, double *out) {
    return text_metric(PB_METRIC_TOKEN_ACC, hyp, ref, n, "token_acc", out);
}

pb_status pb_metric_token_distance(const char *hyp, const char *ref, size_t *dist, size_t *ref_tokens) {
    size_t nh = count_tokens(hyp), nr = count_tokens(ref);
    token *t = malloc((nh + nr + 1) * sizeof *t);
    size_t *row = malloc((nr + 1) * sizeof *row);
    if (!t || !row) {
        free(t), free(row);
        return pb_errorf(PB_ENOMEM, "token distance: out of memory for %zu x %zu tokens", nh, nr);
    }
    split_tokens(hyp, t);
    split_tokens(ref, t + nh);
    const token *h = t, *r = t + nh;
    /* row[j] = distance between h[0..i) and r[0..j); one row, updated left to right. */
    for (size_t j = 0; j <= nr; j++) row[j] = j;
    for (size_t i = 1; i <= nh; i++) {
        size_t diag = row[0]; /* D[i-1][j-1] */
        row[0] = i;
        for (size_t j = 1; j <= nr; j++) {
            size_t up = row[j]; /* D[i-1][j] */
            size_t best = diag + !tok_eq(h[i - 1], r[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    *dist = row[nr];
    *ref_tokens = nr;
    free(t), free(row);
    return PB_OK;
}

pb_status pb_metric_token_error_rate(const char *const *hyp, const char *const *ref, size_t n, double *out) {
    return text_metric(PB_METRIC_TER, hyp, ref, n, "token error rate", out);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

pb_status pb_metric_compute(pb_metric_id id, const pb_metric_args *a, double *out) {
    switch (id) {
    case PB_METRIC_ACC: return pb_metric_accuracy(a->pred_label, a->gold_label, a->n, out);
    case PB_METRIC_F1:
        if (a->n_classes != 2)
            return pb_errorf(PB_EINVAL, "f1 needs a binary task (this one has %d classes; use macro_f1)",
                             a->n_classes);
        return pb_metric_f1(a->pred_label, a->gold_label, a->n, 1, out);
    case PB_METRIC_MACRO_F1: return pb_metric_macro_f1(a->pred_label, a->gold_label, a->n, a->n_classes, out);
    case PB_METRIC_MCC: return pb_metric_mcc(a->pred_label, a->gold_label, a->n, a->n_classes, out);
    case PB_METRIC_PEARSON: return pb_metric_pearson(a->pred_value, a->gold_value, a->n, out);
    case PB_METRIC_SPEARMAN: return pb_metric_spearman(a->pred_value, a->gold_value, a->n, out);
    case PB_METRIC_EXACT: return pb_metric_exact(a->pred_text, a->gold_text, a->n, out);
    case PB_METRIC_CHRF: return pb_metric_chrf(a->pred_text, a->gold_text, a->n, out);
    case PB_METRIC_TOKEN_ACC: return pb_metric_token_acc(a->pred_text, a->gold_text, a->n, out);
    case PB_METRIC_TER:
    case PB_METRIC_PER: return pb_metric_token_error_rate(a->pred_text, a->gold_text, a->n, out);
    default: return pb_errorf(PB_EINVAL, "unknown metric id %d", (int)id);
    }
}

/* ---- statistics for resampling --------------------------------------------------------------- */

int pb_metric_is_classification(pb_metric_id id) {
    return id == PB_METRIC_ACC || id == PB_METRIC_F1 || id == PB_METRIC_MACRO_F1 || id == PB_METRIC_MCC;
}

size_t pb_metric_n_stats(pb_metric_id id, int n_classes) {
    if (pb_metric_is_classification(id)) return n_classes > 0 ? (size_t)n_classes * (size_t)n_classes : 0;
    switch (id) {
    case PB_METRIC_EXACT: return 2;
    case PB_METRIC_CHRF: return 3 * CHRF_ORDER;
    case PB_METRIC_TOKEN_ACC:
    case PB_METRIC_TER:
    case PB_METRIC_PER: return 2;
    default: return 0; /* the correlations do not decompose into per-example sums */
    }
}

pb_status pb_metric_text_stats(pb_metric_id id, const char *hyp, const char *ref, double *stats) {
    if (!hyp || !ref) return pb_errorf(PB_EINVAL, "%s: output or reference missing", pb_metric_key(id));
    switch (id) {
    case PB_METRIC_EXACT:
        stats[0] = strcmp(hyp, ref) == 0;
        stats[1] = 1;
        return PB_OK;
    case PB_METRIC_CHRF: return chrf_stats(hyp, ref, stats);
    case PB_METRIC_TOKEN_ACC: return token_acc_stats(hyp, ref, stats);
    case PB_METRIC_TER:
    case PB_METRIC_PER: {
        size_t d, r;
        pb_status st = pb_metric_token_distance(hyp, ref, &d, &r);
        if (st != PB_OK) return st;
        stats[0] = (double)d;
        stats[1] = (double)r;
        return PB_OK;
    }
    default: return pb_errorf(PB_EINVAL, "%s is not a generation metric", pb_metric_key(id));
    }
}

pb_status pb_metric_from_stats(pb_metric_id id, const double *stats, int n_classes, double *out) {
    if (pb_metric_is_classification(id)) {
        if (n_classes < 1) return pb_errorf(PB_EINVAL, "%s: n_classes must be at least 1", pb_metric_key(id));
        if (id == PB_METRIC_F1 && n_classes != 2)
            return pb_errorf(PB_EINVAL, "f1 needs a binary task (this one has %d classes)", n_classes);
        /* per-class counts from the confusion matrix (row gold, column pred) */
        int K = n_classes;
        double *c = calloc((size_t)K * 3, sizeof *c);
        if (!c) return pb_errorf(PB_ENOMEM, "metrics: out of memory for %d classes", K);
        double *tp = c, *pk = c + K, *tk = c + 2 * K, total = 0;
        for (int g = 0; g < K; g++)
            for (int p = 0; p < K; p++) {
                double v = stats[(size_t)g * (size_t)K + (size_t)p];
                if (g == p) tp[g] += v;
                pk[p] += v;
                tk[g] += v;
                total += v;
            }
        pb_status st = PB_OK;
        if (total <= 0) st = pb_errorf(PB_EINVAL, "%s: no examples to score", pb_metric_key(id));
        else if (id == PB_METRIC_ACC) {
            double ok = 0;
            for (int k = 0; k < K; k++) ok += tp[k];
            *out = ok / total;
        } else if (id == PB_METRIC_F1) {
            double den = 2 * tp[1] + (pk[1] - tp[1]) + (tk[1] - tp[1]);
            *out = den > 0 ? 2 * tp[1] / den : 0.0;
        } else if (id == PB_METRIC_MACRO_F1) *out = macro_f1_counts(tp, pk, tk, K);
        else *out = mcc_counts(tp, pk, tk, K, total);
        free(c);
        return st;
    }
    switch (id) {
    case PB_METRIC_EXACT:
        if (stats[1] <= 0) return pb_errorf(PB_EINVAL, "exact: no examples to score");
        *out = stats[0] / stats[1];
        return PB_OK;
    case PB_METRIC_CHRF: *out = chrf_from_stats(stats); return PB_OK;
    case PB_METRIC_TOKEN_ACC: *out = stats[1] > 0 ? stats[0] / stats[1] : 0.0; return PB_OK;
    case PB_METRIC_TER:
    case PB_METRIC_PER: *out = stats[1] > 0 ? stats[0] / stats[1] : (stats[0] > 0 ? 1.0 : 0.0); return PB_OK;
    default: return pb_errorf(PB_EINVAL, "%s has no per-example statistics", pb_metric_key(id));
    }
}
