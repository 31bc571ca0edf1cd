/* reference.c — the reference predictors (see reference.h). */
#include "tasks/reference.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    pb_task_kind kind;
    const char *desc;
} g_refs[PB_REF_COUNT] = {
#define PB_REF_ROW(id, name, kind, desc) {name, kind, desc},
    PB_REF_MAP(PB_REF_ROW)
#undef PB_REF_ROW
};

const char *pb_ref_name(pb_ref_kind k) { return (unsigned)k < PB_REF_COUNT ? g_refs[k].name : "?"; }
const char *pb_ref_desc(pb_ref_kind k) { return (unsigned)k < PB_REF_COUNT ? g_refs[k].desc : "?"; }

pb_ref_kind pb_ref_from_name(const char *name) {
    for (int k = 0; k < PB_REF_COUNT; k++)
        if (!strcmp(name, g_refs[k].name)) return (pb_ref_kind)k;
    return PB_REF_COUNT;
}

int pb_ref_applies(pb_ref_kind k, pb_task_kind kind) { return (unsigned)k < PB_REF_COUNT && g_refs[k].kind == kind; }

void pb_ref_pred_free(pb_ref_pred *p) {
    for (int s = 0; s < PB_NSPLIT; s++) {
        free(p->labels[s]);
        free(p->texts[s]);
    }
    memset(p, 0, sizeof *p);
}

/* ---- naive Bayes over hashed n-grams ---------------------------------------------------------- */

#define NB_BITS 18
#define NB_BUCKETS (1u << NB_BITS)
#define NB_MAX_FEATS 8192 /* features per example at most (long texts are cut) */

static uint32_t fnv(uint32_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The hashed features of an example: byte n-grams (n = 1..4, with boundary markers) and lowercased
 * word unigrams and bigrams; returns their number (repeats count). */
static size_t features(const pb_example *e, uint32_t *f) {
    size_t n = 0;
    const char *parts[2] = {e->text, e->text2};
    size_t lens[2] = {e->text_len, e->text2 ? e->text2_len : 0};
    for (int p = 0; p < 2 && parts[p]; p++) {
        unsigned char buf[2048];
        size_t len = lens[p] > sizeof buf - 2 ? sizeof buf - 2 : lens[p];
        buf[0] = 2; /* start marker */
        for (size_t i = 0; i < len; i++) buf[i + 1] = (unsigned char)parts[p][i];
        buf[len + 1] = 3; /* end marker */
        size_t L = len + 2;
        uint32_t salt = 2166136261u ^ (uint32_t)(p * 0x9e3779b9u);
        for (int o = 1; o <= 4; o++)
            for (size_t i = 0; i + (size_t)o <= L && n < NB_MAX_FEATS; i++) {
                unsigned char ord = (unsigned char)o;
                f[n++] = fnv(fnv(salt, &ord, 1), buf + i, (size_t)o) & (NB_BUCKETS - 1);
            }
        /* words */
        uint32_t prev = 0;
        size_t i = 1;
        while (i < L - 1 && n + 2 < NB_MAX_FEATS) {
            while (i < L - 1 && isspace(buf[i])) i++;
            size_t j = i;
            unsigned char w[256];
            size_t wl = 0;
            while (j < L - 1 && !isspace(buf[j])) {
                if (wl < sizeof w) w[wl++] = (unsigned char)tolower(buf[j]);
                j++;
            }
            if (!wl) break;
            unsigned char tag = 'w';
            uint32_t h = fnv(fnv(salt, &tag, 1), w, wl);
            f[n++] = h & (NB_BUCKETS - 1);
            if (prev) {
                unsigned char t2 = 'b';
                uint32_t hb = fnv(fnv(salt, &t2, 1), (const unsigned char *)&prev, sizeof prev);
                f[n++] = fnv(hb, (const unsigned char *)&h, sizeof h) & (NB_BUCKETS - 1);
            }
            prev = h | 1u;
            i = j;
        }
    }
    return n;
}

typedef struct {
    int K;
    float *count;      /* (K, NB_BUCKETS) feature counts per class */
    double *total;     /* (K) feature counts per class */
    double *prior;     /* (K) log prior */
} nb_model;

static void nb_free(nb_model *m) {
    free(m->count);
    free(m->total);
    free(m->prior);
}

static pb_status nb_fit(nb_model *m, const pb_task *t, uint32_t *f) {
    int K = t->n_labels;
    m->K = K;
    m->count = calloc((size_t)K * NB_BUCKETS, sizeof *m->count);
    m->total = calloc((size_t)K, sizeof *m->total);
    m->prior = calloc((size_t)K, sizeof *m->prior);
    if (!m->count || !m->total || !m->prior) return pb_errorf(PB_ENOMEM, "ngram_nb: out of memory for %d classes", K);
    const pb_task_split *tr = &t->split[PB_SPLIT_TRAIN];
    for (size_t i = 0; i < tr->n; i++) {
        int y = tr->ex[i].label;
        if (y < 0 || y >= K) continue;
        size_t n = features(&tr->ex[i], f);
        float *c = m->count + (size_t)y * NB_BUCKETS;
        for (size_t j = 0; j < n; j++) c[f[j]] += 1;
        m->total[y] += (double)n;
        m->prior[y] += 1;
    }
    for (int k = 0; k < K; k++) m->prior[k] = log((m->prior[k] + 1) / ((double)tr->n + K)); /* add-one prior */
    return PB_OK;
}

static void nb_predict(const nb_model *m, double alpha, const pb_task_split *s, uint32_t *f, double *score, int *out) {
    for (size_t i = 0; i < s->n; i++) {
        size_t n = features(&s->ex[i], f);
        int best = 0;
        for (int k = 0; k < m->K; k++) {
            const float *c = m->count + (size_t)k * NB_BUCKETS;
            double denom = log(m->total[k] + alpha * NB_BUCKETS), v = m->prior[k];
            for (size_t j = 0; j < n; j++) v += log(c[f[j]] + alpha) - denom;
            score[k] = v;
            if (v > score[best]) best = k;
        }
        out[i] = best;
    }
}

/* ---- the predictors -------------------------------------------------------------------------- */

pb_status pb_ref_predict(pb_ref_kind k, const pb_task *t, pb_ref_pred *out) {
    memset(out, 0, sizeof *out);
    if (!pb_ref_applies(k, t->kind))
        return pb_errorf(PB_EINVAL, "reference %s does not serve %s tasks (task %s)", pb_ref_name(k),
                         pb_task_kind_name(t->kind), t->name);
    const pb_task_split *tr = &t->split[PB_SPLIT_TRAIN];
    if (!tr->n) return pb_errorf(PB_EDATA, "reference %s: task %s has no training examples", pb_ref_name(k), t->name);
    pb_status st = PB_OK;
    if (k == PB_REF_COPY_INPUT) {
        for (int s = PB_SPLIT_DEV; s < PB_NSPLIT && !st; s++) {
            size_t n = t->split[s].n;
            out->texts[s] = malloc(sizeof *out->texts[s] * (n ? n : 1));
            if (!out->texts[s]) st = pb_errorf(PB_ENOMEM, "out of memory");
            for (size_t i = 0; i < n && !st; i++) out->texts[s][i] = t->split[s].ex[i].text;
        }
        if (!st && t->split[PB_SPLIT_DEV].n)
            st = pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.n = t->split[PB_SPLIT_DEV].n,
                                                                   .texts = out->texts[PB_SPLIT_DEV]},
                               out->dev);
        if (st) pb_ref_pred_free(out);
        return st;
    }
    for (int s = PB_SPLIT_DEV; s < PB_NSPLIT && !st; s++) {
        out->labels[s] = calloc(t->split[s].n ? t->split[s].n : 1, sizeof *out->labels[s]);
        if (!out->labels[s]) st = pb_errorf(PB_ENOMEM, "out of memory");
    }
    if (!st && k == PB_REF_MAJORITY) {
        int K = t->n_labels, best = 0;
        size_t *c = calloc((size_t)(K > 0 ? K : 1), sizeof *c);
        if (!c) st = pb_errorf(PB_ENOMEM, "out of memory");
        for (size_t i = 0; c && i < tr->n; i++)
            if (tr->ex[i].label >= 0 && tr->ex[i].label < K) c[tr->ex[i].label]++;
        for (int y = 1; c && y < K; y++)
            if (c[y] > c[best]) best = y;
        free(c);
        for (int s = PB_SPLIT_DEV; s < PB_NSPLIT && !st; s++)
            for (size_t i = 0; i < t->split[s].n; i++) out->labels[s][i] = best;
    } else if (!st) {
        nb_model m = {0};
        uint32_t *f = malloc(sizeof *f * NB_MAX_FEATS);
        double *score = malloc(sizeof *score * (size_t)(t->n_labels > 0 ? t->n_labels : 1));
        const pb_task_split *dev = &t->split[PB_SPLIT_DEV];
        int *try = calloc(dev->n ? dev->n : 1, sizeof *try);
        if (!f || !score || !try) st = pb_errorf(PB_ENOMEM, "out of memory");
        if (!st) st = nb_fit(&m, t, f);
        static const double alphas[] = {0.1, 0.3, 1.0};
        double best_sel = NAN;
        int higher = pb_metric_higher_is_better(t->metrics[t->select]);
        for (int a = 0; a < 3 && !st; a++) {
            double met[PB_TASK_MAX_METRICS];
            nb_predict(&m, alphas[a], dev, f, score, try);
            if (dev->n && (st = pb_task_score(t, PB_SPLIT_DEV, &(pb_predictions){.n = dev->n, .labels = try}, met)))
                break;
            double sel = dev->n ? met[t->select] : 0;
            if (a == 0 || (higher ? sel > best_sel : sel < best_sel)) {
                best_sel = sel;
                out->alpha = alphas[a];
                memcpy(out->dev, met, sizeof met);
                memcpy(out->labels[PB_SPLIT_DEV], try, sizeof *try * dev->n);
            }
        }
        if (!st) nb_predict(&m, out->alpha, &t->split[PB_SPLIT_TEST], f, score, out->labels[PB_SPLIT_TEST]);
        nb_free(&m);
        free(f), free(score), free(try);
    }
    if (!st && k == PB_REF_MAJORITY && t->split[PB_SPLIT_DEV].n)
        st = pb_task_score(t, PB_SPLIT_DEV,
                           &(pb_predictions){.n = t->split[PB_SPLIT_DEV].n, .labels = out->labels[PB_SPLIT_DEV]},
                           out->dev);
    if (st) pb_ref_pred_free(out);
    return st;
}
