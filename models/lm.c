/* lm.c — see lm.h. */
#include "lm.h"
#include "tokenizer.h"

#include <assert.h>

void pb_lm_sample(int32_t *ids, int32_t *targets, const int32_t *tokens, size_t n, int B, int T, pb_rng *rng) {
    assert(n > (size_t)T);
    for (int b = 0; b < B; b++) {
        size_t s = (size_t)pb_rng_below(rng, n - (size_t)T);
        for (int t = 0; t < T; t++) {
            ids[(size_t)b * T + t] = tokens[s + t];
            targets[(size_t)b * T + t] = tokens[s + t + 1];
        }
    }
}

int pb_lm_stride(int32_t *ids, int32_t *targets, const int32_t *tokens, size_t n, size_t start, int B, int T) {
    int filled = 0;
    for (int b = 0; b < B; b++) {
        size_t s = start + (size_t)b * T;
        int full = s + (size_t)T < n;
        for (int t = 0; t < T; t++) {
            size_t i = s + t;
            ids[(size_t)b * T + t] = (full || i < n) ? tokens[i < n ? i : n - 1] : PB_TOK_PAD;
            targets[(size_t)b * T + t] = (i + 1 < n) ? tokens[i + 1] : -1;
        }
        if (s + 1 < n) filled++;
    }
    return filled;
}
