/* pb_flops.h — FLOP counters filled by the kernels as they run.
 *
 * Every kernel in core/kernels.h adds what it computes to this thread's counters, split by
 * phase (forward, backward to inputs, backward to weights) and kind (matrix products, and
 * everything else). Counts are exact integers of what the kernel executes, by these rules:
 *
 *   matrix product (m x k)(k x n)        2*m*n*k                         kind MATMUL
 *   attention scores and weighted sum    2*Tq*Tk*hs per head each        kind MATMUL
 *                                        (the full Tq x Tk block is computed even when causal)
 *   elementwise ops                      a fixed count per element, given beside each kernel
 *                                        in kernels.h; exp, tanh, sqrt, division count as 1
 *
 * The counts are what a run *did*; `peftbench count` (models/) predicts the same numbers from
 * shapes with the same rules, and a test holds them equal. The counters are thread-local, like
 * pb_mem: a kernel counts once on the calling thread, outside its parallel region.
 */
#ifndef PB_FLOPS_H
#define PB_FLOPS_H

#include <stdint.h>

typedef enum { PB_PHASE_FWD, PB_PHASE_BWD_IN, PB_PHASE_BWD_W, PB_NPHASE } pb_phase;
typedef enum { PB_KIND_MATMUL, PB_KIND_OTHER, PB_NKIND } pb_flop_kind;

typedef struct {
    uint64_t n[PB_NPHASE][PB_NKIND];
} pb_flops;

/* Adds `count` FLOPs of `kind` to the counter of the current phase or of `phase`. */
void pb_flops_add(pb_phase phase, pb_flop_kind kind, uint64_t count);
/* Snapshot / reset of this thread's counters. */
void pb_flops_get(pb_flops *out);
void pb_flops_reset(void);
/* Sums over a snapshot. */
uint64_t pb_flops_phase(const pb_flops *f, pb_phase phase);  /* both kinds */
uint64_t pb_flops_kind(const pb_flops *f, pb_flop_kind kind); /* all phases */
uint64_t pb_flops_total(const pb_flops *f);
/* out = a - b (for measuring one step between two snapshots). */
void pb_flops_diff(pb_flops *out, const pb_flops *a, const pb_flops *b);
const char *pb_phase_key(pb_phase phase); /* "fwd", "bwd_in", "bwd_w" */

#endif
