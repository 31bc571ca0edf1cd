/* report.c — see report.h. */
#include "report.h"

#include <string.h>

const char *pb_fmt_count(char *buf, size_t cap, unsigned long long n) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%llu", n), k = 0;
    for (int i = 0; i < len && (size_t)k + 1 < cap; i++) {
        if (i && (len - i) % 3 == 0 && (size_t)k + 2 < cap) buf[k++] = ',';
        buf[k++] = tmp[i];
    }
    buf[k] = '\0';
    return buf;
}

const char *pb_fmt_bytes(char *buf, size_t cap, double b) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
    return buf;
}

void pb_report_params(FILE *f, const pb_model *m) {
    char a[32], b[32];
    size_t tr = pb_model_trainable_count(m);
    fprintf(f, "trainable params: %s || all params: %s || trainable%%: %.4f\n", pb_fmt_count(a, sizeof a, tr),
            pb_fmt_count(b, sizeof b, m->n_params), m->n_params ? 100.0 * (double)tr / (double)m->n_params : 0.0);
}

void pb_report_flops(FILE *f, const pb_flops *s, long tokens) {
    char a[32];
    fprintf(f, "FLOPs per step: %s", pb_fmt_count(a, sizeof a, pb_flops_total(s)));
    for (int p = 0; p < PB_NPHASE; p++)
        fprintf(f, "  %s %s (matmul %.1f%%)", pb_phase_key((pb_phase)p),
                pb_fmt_count(a, sizeof a, pb_flops_phase(s, (pb_phase)p)),
                pb_flops_phase(s, (pb_phase)p)
                    ? 100.0 * (double)s->n[p][PB_KIND_MATMUL] / (double)pb_flops_phase(s, (pb_phase)p)
                    : 0.0);
    fprintf(f, "\nFLOPs per training token: %.4g\n", tokens ? (double)pb_flops_total(s) / (double)tokens : 0.0);
}

void pb_report_memory(FILE *f, const pb_mem_stats *s) {
    char a[32];
    fprintf(f, "peak memory by category:");
    for (int c = 0; c < PB_MEM_NCAT; c++)
        fprintf(f, "  %s %s", pb_mem_cat_key((pb_mem_cat)c), pb_fmt_bytes(a, sizeof a, (double)s->peak[c]));
    fprintf(f, "\npeak tracked total: %s", pb_fmt_bytes(a, sizeof a, (double)s->peak_total));
    fprintf(f, "  peak RSS: %s\n", pb_fmt_bytes(a, sizeof a, (double)pb_peak_rss_bytes()));
}
