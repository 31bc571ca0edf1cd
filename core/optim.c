/* optim.c — AdamW, schedules and gradient clipping (see optim.h). */
#include "optim.h"
#include "pb_mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NORM_CHUNK 65536

pb_adamw_config pb_adamw_defaults(void) {
    pb_adamw_config c = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                         .clip_norm = 1.0f};
    return c;
}

pb_status pb_adamw_init(pb_adamw *opt, const pb_adamw_config *cfg, const pb_segment *seg, int nseg) {
    memset(opt, 0, sizeof *opt);
    opt->cfg = *cfg;
    opt->nseg = nseg;
    opt->seg = pb_alloc(sizeof(pb_segment) * (size_t)(nseg > 0 ? nseg : 1), PB_MEM_OTHER);
    if (!opt->seg) return PB_ENOMEM;
    if (nseg > 0) memcpy(opt->seg, seg, sizeof(pb_segment) * (size_t)nseg);
    for (int i = 0; i < nseg; i++) opt->total += seg[i].n;
    opt->m = pb_alloc(opt->total * sizeof(float), PB_MEM_OPTIM);
    opt->v = pb_alloc(opt->total * sizeof(float), PB_MEM_OPTIM);
    if (!opt->m || !opt->v) {
        pb_adamw_free(opt);
        return PB_ENOMEM;
    }
    return PB_OK;
}

void pb_adamw_free(pb_adamw *opt) {
    pb_free(opt->seg);
    pb_free(opt->m);
    pb_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

double pb_grad_norm(const pb_segment *seg, int nseg) {
    double total = 0.0;
    for (int s = 0; s < nseg; s++) {
        const float *g = seg[s].grad;
        size_t n = seg[s].n;
        long nchunk = (long)((n + NORM_CHUNK - 1) / NORM_CHUNK);
        double *part = malloc(sizeof(double) * (size_t)(nchunk > 0 ? nchunk : 1));
        if (!part) abort(); /* a few bytes per 64K parameters; cannot fail in practice */
#pragma omp parallel for schedule(static)
        for (long c = 0; c < nchunk; c++) {
            size_t lo = (size_t)c * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
            double acc = 0.0;
            for (size_t i = lo; i < hi; i++) acc += (double)g[i] * g[i];
            part[c] = acc;
        }
        for (long c = 0; c < nchunk; c++) total += part[c];
        free(part);
    }
    return sqrt(total);
}

float pb_adamw_step(pb_adamw *opt, float lr) {
    const pb_adamw_config *c = &opt->cfg;
    double norm = pb_grad_norm(opt->seg, opt->nseg);
    float gscale = 1.0f;
    if (c->clip_norm > 0 && norm > c->clip_norm) gscale = (float)(c->clip_norm / norm);
    opt->t++;
    float bc1 = 1.0f - powf(c->beta1, (float)opt->t);
    float bc2 = 1.0f - powf(c->beta2, (float)opt->t);
    size_t off = 0;
    for (int s = 0; s < opt->nseg; s++) {
        float *p = opt->seg[s].param;
        const float *g = opt->seg[s].grad;
        float *m = opt->m + off, *v = opt->v + off;
        float wd = opt->seg[s].decay ? c->weight_decay : 0.0f;
        long n = (long)opt->seg[s].n;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) {
            float gi = g[i] * gscale;
            m[i] = c->beta1 * m[i] + (1.0f - c->beta1) * gi;
            v[i] = c->beta2 * v[i] + (1.0f - c->beta2) * gi * gi;
            float mhat = m[i] / bc1, vhat = v[i] / bc2;
            p[i] -= lr * (mhat / (sqrtf(vhat) + c->eps) + wd * p[i]);
        }
        off += opt->seg[s].n;
    }
    return (float)norm;
}

float pb_schedule_lr(const pb_schedule *s, long step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    if (s->decay == PB_DECAY_CONSTANT) return s->lr;
    long span = s->total - 1 - s->warmup;
    double frac = span > 0 ? (double)(step - s->warmup) / (double)span : 1.0;
    if (frac > 1.0) frac = 1.0;
    if (frac < 0.0) frac = 0.0;
    double lo = s->lr * s->min_lr_frac;
    double coef = s->decay == PB_DECAY_COSINE ? 0.5 * (1.0 + cos(3.141592653589793 * frac)) : 1.0 - frac;
    return (float)(lo + (s->lr - lo) * coef);
}

pb_schedule pb_schedule_finetune(float lr, float warmup_frac, long steps, pb_decay decay) {
    return (pb_schedule){.lr = lr, .min_lr_frac = 0.0f, .warmup = (long)(warmup_frac * (float)steps), .total = steps,
                         .decay = decay};
}

pb_status pb_decay_parse(const char *name, pb_decay *out) {
    if (!strcmp(name, "linear")) *out = PB_DECAY_LINEAR;
    else if (!strcmp(name, "cosine")) *out = PB_DECAY_COSINE;
    else if (!strcmp(name, "constant")) *out = PB_DECAY_CONSTANT;
    else return pb_errorf(PB_EINVAL, "unknown schedule '%s' (accepted: linear, cosine, constant)", name);
    return PB_OK;
}
