/* pb_flops.c — thread-local FLOP counters (see pb_flops.h). */
#include "pb_flops.h"

#include <string.h>

static _Thread_local pb_flops g_flops;

void pb_flops_add(pb_phase phase, pb_flop_kind kind, uint64_t count) { g_flops.n[phase][kind] += count; }
void pb_flops_get(pb_flops *out) { *out = g_flops; }
void pb_flops_reset(void) { memset(&g_flops, 0, sizeof g_flops); }

uint64_t pb_flops_phase(const pb_flops *f, pb_phase phase) {
    uint64_t s = 0;
    for (int k = 0; k < PB_NKIND; k++) s += f->n[phase][k];
    return s;
}

uint64_t pb_flops_kind(const pb_flops *f, pb_flop_kind kind) {
    uint64_t s = 0;
    for (int p = 0; p < PB_NPHASE; p++) s += f->n[p][kind];
    return s;
}

uint64_t pb_flops_total(const pb_flops *f) {
    uint64_t s = 0;
    for (int p = 0; p < PB_NPHASE; p++) s += pb_flops_phase(f, (pb_phase)p);
    return s;
}

void pb_flops_diff(pb_flops *out, const pb_flops *a, const pb_flops *b) {
    for (int p = 0; p < PB_NPHASE; p++)
        for (int k = 0; k < PB_NKIND; k++) out->n[p][k] = a->n[p][k] - b->n[p][k];
}

const char *pb_phase_key(pb_phase phase) {
    static const char *keys[PB_NPHASE] = {"fwd", "bwd_in", "bwd_w"};
    return (phase >= 0 && phase < PB_NPHASE) ? keys[phase] : "?";
}
