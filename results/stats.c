/* stats.c — the bootstrap behind the table's intervals and paired tests (see stats.h). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pb_rng.h"

void pb_boot_free(pb_boot *b) {
    free(b->val);
    free(b->u);
    free(b->e);
    memset(b, 0, sizeof *b);
}

static double *val_at(const pb_boot *b, int r, int e) {
    return b->val + ((size_t)r * (size_t)b->n_entries + (size_t)e) * PB_BOOT_MAX_SEEDS;
}

/* The metric of one seed's records under example counts c (NULL: every example once). */
static pb_status score(const pb_boot_task *t, const float *rec, const uint32_t *c, double *work, double *out) {
    size_t k = pb_metric_n_stats(t->metric, t->n_classes);
    memset(work, 0, sizeof(double) * k);
    if (t->n_classes > 0) {
        int K = t->n_classes;
        for (size_t i = 0; i < t->n_ex; i++) {
            double w = c ? c[i] : 1;
            if (!w) continue;
            int p = (int)rec[2 * i], g = (int)rec[2 * i + 1];
            if (p < 0 || p >= K || g < 0 || g >= K)
                return pb_errorf(PB_EFORMAT, "test record %zu has label (%d, %d) outside [0, %d)", i, p, g, K);
            work[(size_t)g * (size_t)K + (size_t)p] += w;
        }
    } else {
        for (size_t i = 0; i < t->n_ex; i++) {
            double w = c ? c[i] : 1;
            if (!w) continue;
            const float *r = rec + i * (size_t)t->width + t->stat_offset;
            for (size_t j = 0; j < k; j++) work[j] += w * r[j];
        }
    }
    return pb_metric_from_stats(t->metric, work, t->n_classes, out);
}

pb_status pb_boot_run(pb_boot *b, const pb_boot_task *tasks, int n_tasks, const pb_boot_entry *entries, int n_entries,
                      int B, uint64_t seed) {
    memset(b, 0, sizeof *b);
    size_t max_ex = 1, max_k = 1;
    for (int e = 0; e < n_entries; e++)
        if (entries[e].task < 0 || entries[e].task >= n_tasks || entries[e].n_seeds < 1 ||
            entries[e].n_seeds > PB_BOOT_MAX_SEEDS)
            return pb_errorf(PB_EINVAL, "bootstrap: entry %d has task %d and %d seeds", e, entries[e].task,
                             entries[e].n_seeds);
    for (int k = 0; k < n_tasks; k++) {
        const pb_boot_task *t = &tasks[k];
        int used = 0; /* tasks no entry refers to (no records) are not checked or resampled */
        for (int e = 0; e < n_entries && !used; e++) used = entries[e].task == k;
        if (!used) continue;
        size_t ns = pb_metric_n_stats(t->metric, t->n_classes);
        if (!t->n_ex || !ns)
            return pb_errorf(PB_EINVAL, "bootstrap: task %d has no examples or its metric %s no per-example statistics",
                             k, pb_metric_key(t->metric));
        if (t->n_classes <= 0 && (t->stat_offset < 0 || (size_t)t->stat_offset + ns > (size_t)t->width))
            return pb_errorf(PB_EINVAL, "bootstrap: task %d: statistics at %d do not fit records of %d", k,
                             t->stat_offset, t->width);
        if (t->n_ex > max_ex) max_ex = t->n_ex;
        if (ns > max_k) max_k = ns;
    }
    b->B = B;
    b->n_entries = n_entries;
    b->n_tasks = n_tasks;
    b->val = malloc(sizeof(double) * (size_t)B * (size_t)(n_entries ? n_entries : 1) * PB_BOOT_MAX_SEEDS);
    b->u = malloc(sizeof(float) * (size_t)B * PB_BOOT_MAX_SEEDS);
    b->e = malloc(sizeof *b->e * (size_t)(n_entries ? n_entries : 1));
    uint32_t *c = malloc(sizeof *c * max_ex);
    double *work = malloc(sizeof *work * max_k);
    pb_status st = PB_OK;
    if (!b->val || !b->u || !b->e || !c || !work) st = pb_errorf(PB_ENOMEM, "bootstrap: out of memory");
    if (!st) memcpy(b->e, entries, sizeof *b->e * (size_t)n_entries);
    for (int r = 0; r < B && !st; r++) {
        pb_rng rng;
        pb_rng_seed(&rng, pb_hash_u64(seed, (uint64_t)r));
        for (int j = 0; j < PB_BOOT_MAX_SEEDS; j++) b->u[(size_t)r * PB_BOOT_MAX_SEEDS + j] = pb_rng_uniform(&rng);
        for (int k = 0; k < n_tasks && !st; k++) {
            const pb_boot_task *t = &tasks[k];
            if (!t->n_ex) continue; /* no entry uses it */
            memset(c, 0, sizeof *c * t->n_ex);
            for (size_t i = 0; i < t->n_ex; i++) c[pb_rng_below(&rng, t->n_ex)]++;
            for (int e = 0; e < n_entries && !st; e++) {
                if (entries[e].task != k) continue;
                double *v = val_at(b, r, e);
                for (int s = 0; s < entries[e].n_seeds && !st; s++) st = score(t, entries[e].rec[s], c, work, &v[s]);
            }
        }
    }
    free(c);
    free(work);
    if (st) pb_boot_free(b);
    return st;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double pb_percentile(const double *x, size_t n, double q) {
    if (!n) return NAN;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)floor(pos);
    if (i + 1 >= n) return x[n - 1];
    double f = pos - (double)i;
    return x[i] + f * (x[i + 1] - x[i]);
}

/* Mean over the drawn seeds of entry e on replicate r. */
static double entry_mean(const pb_boot *b, int r, int e) {
    const pb_boot_entry *x = &b->e[e];
    const double *v = val_at(b, r, e);
    const float *u = b->u + (size_t)r * PB_BOOT_MAX_SEEDS;
    double s = 0;
    for (int j = 0; j < x->n_seeds; j++) s += v[(int)(u[j] * (float)x->n_seeds) % x->n_seeds];
    return s / x->n_seeds;
}

/* Common seeds of two entries as index pairs; returns their number. */
static int common_seeds(const pb_boot_entry *a, const pb_boot_entry *c, int *ia, int *ic) {
    int n = 0;
    if (a->seed_free || c->seed_free) {
        const pb_boot_entry *m = a->seed_free ? c : a;
        for (int s = 0; s < m->n_seeds; s++) {
            ia[n] = a->seed_free ? 0 : s;
            ic[n] = c->seed_free ? 0 : s;
            n++;
        }
        return n;
    }
    for (int s = 0; s < a->n_seeds; s++)
        for (int t = 0; t < c->n_seeds; t++)
            if (a->seed[s] == c->seed[t]) {
                ia[n] = s;
                ic[n] = t;
                n++;
            }
    return n;
}

/* Mean over the drawn common seeds of e1 - e2 on replicate r. */
static double diff_mean(const pb_boot *b, int r, int e1, int e2, const int *i1, const int *i2, int n) {
    const double *v1 = val_at(b, r, e1), *v2 = val_at(b, r, e2);
    const float *u = b->u + (size_t)r * PB_BOOT_MAX_SEEDS;
    double s = 0;
    for (int j = 0; j < n; j++) {
        int k = (int)(u[j] * (float)n) % n;
        s += v1[i1[k]] - v2[i2[k]];
    }
    return s / n;
}

/* Interval (and p-value of "0") of x[0..B), sorted in place. */
static void summarize(double *x, int B, double *lo, double *hi, double *p) {
    if (p) {
        int le = 0, ge = 0;
        for (int r = 0; r < B; r++) le += x[r] <= 0, ge += x[r] >= 0;
        double q = 2.0 * ((le < ge ? le : ge) + 1) / (B + 1);
        *p = q > 1 ? 1 : q;
    }
    qsort(x, (size_t)B, sizeof *x, cmp_d);
    *lo = pb_percentile(x, (size_t)B, 0.025);
    *hi = pb_percentile(x, (size_t)B, 0.975);
}

void pb_boot_interval(const pb_boot *b, int e, double *lo, double *hi) {
    double *x = malloc(sizeof *x * (size_t)b->B);
    if (!x) {
        *lo = *hi = NAN;
        return;
    }
    for (int r = 0; r < b->B; r++) x[r] = entry_mean(b, r, e);
    summarize(x, b->B, lo, hi, NULL);
    free(x);
}

int pb_boot_diff(const pb_boot *b, int e1, int e2, double *lo, double *hi, double *p) {
    int i1[PB_BOOT_MAX_SEEDS], i2[PB_BOOT_MAX_SEEDS];
    int n = common_seeds(&b->e[e1], &b->e[e2], i1, i2);
    double *x = n ? malloc(sizeof *x * (size_t)b->B) : NULL;
    if (!x) {
        *lo = *hi = NAN;
        if (p) *p = NAN;
        return 0;
    }
    for (int r = 0; r < b->B; r++) x[r] = diff_mean(b, r, e1, e2, i1, i2, n);
    summarize(x, b->B, lo, hi, p);
    free(x);
    return n;
}

int pb_boot_avg(const pb_boot *b, const int *es, const int *es2, int n, double *lo, double *hi, double *p) {
    double *x = malloc(sizeof *x * (size_t)b->B);
    int (*i1)[PB_BOOT_MAX_SEEDS] = malloc(sizeof *i1 * (size_t)(n ? n : 1));
    int (*i2)[PB_BOOT_MAX_SEEDS] = malloc(sizeof *i2 * (size_t)(n ? n : 1));
    int *nc = malloc(sizeof *nc * (size_t)(n ? n : 1)), fewest = PB_BOOT_MAX_SEEDS;
    *lo = *hi = NAN;
    if (p) *p = NAN;
    if (!x || !i1 || !i2 || !nc || !n) {
        free(x), free(i1), free(i2), free(nc);
        return 0;
    }
    for (int k = 0; k < n; k++) {
        nc[k] = es2 ? common_seeds(&b->e[es[k]], &b->e[es2[k]], i1[k], i2[k]) : b->e[es[k]].n_seeds;
        if (nc[k] < fewest) fewest = nc[k];
    }
    if (fewest > 0) {
        for (int r = 0; r < b->B; r++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                s += es2 ? diff_mean(b, r, es[k], es2[k], i1[k], i2[k], nc[k]) : entry_mean(b, r, es[k]);
            x[r] = s / n;
        }
        summarize(x, b->B, lo, hi, es2 ? p : NULL);
    }
    free(x), free(i1), free(i2), free(nc);
    return fewest;
}
