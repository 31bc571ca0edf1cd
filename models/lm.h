/* lm.h — language-model batches from a token stream (next-token prediction). */
#ifndef PB_LM_H
#define PB_LM_H

#include <stddef.h>
#include <stdint.h>

#include "pb_rng.h"

/* Fills ids (B,T) and targets (B,T) with B windows of T+1 consecutive tokens from
 * tokens[0..n) (n > T), starting at positions drawn from rng: targets are ids shifted by one. */
void pb_lm_sample(int32_t *ids, int32_t *targets, const int32_t *tokens, size_t n, int B, int T, pb_rng *rng);
/* The same, but the windows are consecutive non-overlapping strides starting at `start`
 * (for evaluation over a whole held-out stream); returns how many windows were filled
 * (< B at the end of the stream; those rows get targets -1). */
int pb_lm_stride(int32_t *ids, int32_t *targets, const int32_t *tokens, size_t n, size_t start, int B, int T);

#endif
