/* pb_rng.c — xoshiro256** stream and splitmix64 counter hash (see pb_rng.h). */
#include "pb_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void pb_rng_seed(pb_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t pb_rng_u64(pb_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float pb_rng_uniform(pb_rng *r) { return (float)(pb_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float pb_rng_normal(pb_rng *r) {
    /* Box-Muller on (0,1] x [0,1); computed in double for accuracy of the tails. */
    double u1 = ((double)(pb_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(pb_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t pb_rng_below(pb_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = pb_rng_u64(r);
    while (x >= limit);
    return x % n;
}

void pb_rng_shuffle_int(pb_rng *r, int *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)pb_rng_below(r, i);
        int t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void pb_rng_fill_normal(pb_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) x[i] = std * pb_rng_normal(r);
}

void pb_rng_fill_uniform(pb_rng *r, float *x, size_t n, float a) {
    for (size_t i = 0; i < n; i++) x[i] = a * (2.0f * pb_rng_uniform(r) - 1.0f);
}

uint64_t pb_hash_u64(uint64_t seed, uint64_t i) {
    uint64_t x = seed ^ (i * 0xd1342543de82ef95ull);
    return splitmix64(&x);
}

float pb_hash_uniform(uint64_t seed, uint64_t i) { return (float)(pb_hash_u64(seed, i) >> 40) * (1.0f / 16777216.0f); }
