/* report.h — printing what a run measured: parameters, FLOPs, memory, time. */
#ifndef PB_REPORT_H
#define PB_REPORT_H

#include <stdio.h>

#include "models/model.h"
#include "pb_flops.h"
#include "pb_mem.h"

/* "1,234,567" into buf. */
const char *pb_fmt_count(char *buf, size_t cap, unsigned long long n);
/* "12.3 MiB" into buf. */
const char *pb_fmt_bytes(char *buf, size_t cap, double bytes);
/* Trainable / total parameters and %, one line, Hugging Face style. */
void pb_report_params(FILE *f, const pb_model *m);
/* FLOPs of one step split by phase and kind, and per token. */
void pb_report_flops(FILE *f, const pb_flops *step, long tokens);
/* Peak bytes per memory category and peak RSS. */
void pb_report_memory(FILE *f, const pb_mem_stats *s);

#endif
