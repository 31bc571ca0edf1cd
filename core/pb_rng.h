/* pb_rng.h — deterministic random numbers, independent of thread count.
 *
 * Two generators:
 *  - pb_rng: a sequential stream (xoshiro256**, seeded through splitmix64) for initialisation,
 *    data order and sampling; used from one thread.
 *  - pb_hash_*: counter-based values, a pure function of (seed, index), for anything drawn
 *    inside a parallel loop (dropout masks): any thread may compute element i and get the same
 *    value, so results do not depend on how work is split.
 */
#ifndef PB_RNG_H
#define PB_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} pb_rng;

void pb_rng_seed(pb_rng *r, uint64_t seed);
uint64_t pb_rng_u64(pb_rng *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float). */
float pb_rng_uniform(pb_rng *r);
/* Standard normal (Box-Muller, both values used in turn is not needed: one per call). */
float pb_rng_normal(pb_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t pb_rng_below(pb_rng *r, uint64_t n);
/* Fisher-Yates shuffle of n ints. */
void pb_rng_shuffle_int(pb_rng *r, int *a, size_t n);
/* Fills x[0..n) with N(0, std^2), or U(-a, a) when called through pb_rng_fill_uniform. */
void pb_rng_fill_normal(pb_rng *r, float *x, size_t n, float std);
void pb_rng_fill_uniform(pb_rng *r, float *x, size_t n, float a);

/* splitmix64 finaliser of (seed, i): a well-mixed 64-bit hash. */
uint64_t pb_hash_u64(uint64_t seed, uint64_t i);
/* Uniform in [0, 1) from (seed, i), 24 bits. */
float pb_hash_uniform(uint64_t seed, uint64_t i);

#endif
