/* optim.h — AdamW with decoupled weight decay, learning-rate schedules, gradient clipping.
 *
 * The optimizer sees a list of segments (parameter pointer, gradient pointer, length, whether
 * weight decay applies). A model's trainable base tensors, a method's added tensors and a task
 * head are each one or more segments; moment buffers m and v are one contiguous block (booked
 * as PB_MEM_OPTIM) laid out segment after segment, so optimizer memory is 8 bytes per trainable
 * parameter exactly.
 *
 * Update (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", Algorithm 2; the same as
 * torch.optim.AdamW):
 *   t += 1
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
 *   mhat = m / (1 - b1^t);  vhat = v / (1 - b2^t)
 *   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)      (wd only on segments with decay)
 */
#ifndef PB_OPTIM_H
#define PB_OPTIM_H

#include <stddef.h>

#include "pb_error.h"

typedef struct {
    float *param;  /* (n) updated in place */
    float *grad;   /* (n) read */
    size_t n;
    int decay;     /* 1: weight decay applies (matrices); 0: biases, norms, embeddings by choice */
} pb_segment;

typedef struct {
    float lr;           /* peak learning rate */
    float beta1, beta2; /* 0.9, 0.999 */
    float eps;          /* 1e-8 */
    float weight_decay; /* 0.01 */
    float clip_norm;    /* global gradient-norm clip; <= 0 disables */
} pb_adamw_config;

typedef struct {
    pb_adamw_config cfg;
    pb_segment *seg; /* (nseg) */
    int nseg;
    float *m, *v;    /* (total) moments, segment after segment */
    size_t total;
    long t;          /* steps taken */
} pb_adamw;

/* torch defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, clip 1.0. */
pb_adamw_config pb_adamw_defaults(void);
/* Copies the segment list and allocates zeroed moments. */
pb_status pb_adamw_init(pb_adamw *opt, const pb_adamw_config *cfg, const pb_segment *seg, int nseg);
void pb_adamw_free(pb_adamw *opt);
/* One update at learning rate lr (from the schedule); returns the gradient norm before
 * clipping. Gradients are scaled by min(1, clip/norm) first when clipping is on. */
float pb_adamw_step(pb_adamw *opt, float lr);
/* Global L2 norm over all segments' gradients (double accumulation in fixed-size chunks,
 * summed in order: identical on any thread count). */
double pb_grad_norm(const pb_segment *seg, int nseg);

typedef enum { PB_DECAY_LINEAR, PB_DECAY_COSINE, PB_DECAY_CONSTANT } pb_decay;

typedef struct {
    float lr;          /* peak */
    float min_lr_frac; /* final lr = lr * min_lr_frac (0 by default) */
    long warmup;       /* linear warm-up steps from lr/warmup to lr */
    long total;        /* total steps */
    pb_decay decay;
} pb_schedule;

/* Learning rate at step s (0-based): (s+1)/warmup * lr during warm-up, then linear or cosine
 * from lr down to min_lr_frac*lr at s = total-1. */
float pb_schedule_lr(const pb_schedule *s, long step);
/* The fine-tuning schedule: peak lr, warm-up of warmup_frac * steps (truncated), decay to 0. */
pb_schedule pb_schedule_finetune(float lr, float warmup_frac, long steps, pb_decay decay);
/* Parses "linear", "cosine", "constant"; PB_EINVAL with the accepted names otherwise. */
pb_status pb_decay_parse(const char *name, pb_decay *out);

#endif
