/* pb_mem.h — the tracked allocator: every byte the engine allocates has a category.
 *
 * Categories are those a PEFT comparison reports (DESIGN.md "Measurements"): frozen base
 * weights, trainable parameters, gradients, optimizer state, activations saved for backward,
 * and workspace (scratch reused within a step). Current and peak bytes are kept per category
 * and in total. Counters are thread-local: a cell of a sweep runs on one thread and sees only
 * its own allocations; memory must be freed on the thread that allocated it.
 *
 * Parameters live in one block whose tensors may later become trainable or frozen; moving a
 * tensor between categories does not reallocate, it re-books the bytes (pb_mem_rebook).
 *
 * Not: a pool or arena. It is malloc with a 64-byte-aligned header that records size and
 * category. Allocation failure returns NULL and sets the thread's error (PB_ENOMEM).
 */
#ifndef PB_MEM_H
#define PB_MEM_H

#include <stddef.h>

#define PB_MEM_CAT_MAP(X)                       \
    X(FROZEN, "frozen", "frozen base weights")  \
    X(TRAINABLE, "trainable", "trainable parameters") \
    X(GRADS, "grads", "gradients")              \
    X(OPTIM, "optim", "optimizer state")        \
    X(ACTS, "acts", "activations saved for backward") \
    X(WORKSPACE, "workspace", "scratch buffers") \
    X(OTHER, "other", "everything else (data, tokenizer, ...)")

typedef enum {
#define PB_MEM_ENUM(name, key, desc) PB_MEM_##name,
    PB_MEM_CAT_MAP(PB_MEM_ENUM)
#undef PB_MEM_ENUM
    PB_MEM_NCAT
} pb_mem_cat;

typedef struct {
    size_t cur[PB_MEM_NCAT];  /* bytes now, per category */
    size_t peak[PB_MEM_NCAT]; /* highest cur[] seen since the last reset, per category */
    size_t cur_total;         /* sum of cur[] */
    size_t peak_total;        /* highest cur_total seen (not the sum of peak[]) */
} pb_mem_stats;

/* Zeroed, 64-byte-aligned allocation booked to cat. NULL (and PB_ENOMEM set) on failure;
 * bytes == 0 returns a valid pointer to an empty block. */
void *pb_alloc(size_t bytes, pb_mem_cat cat);
/* Frees a pb_alloc block (NULL is fine) and unbooks its bytes. */
void pb_free(void *p);
/* Moves `bytes` of already-allocated memory from one category to another. */
void pb_mem_rebook(size_t bytes, pb_mem_cat from, pb_mem_cat to);

/* Snapshot of this thread's counters. */
void pb_mem_get(pb_mem_stats *out);
/* Sets every peak to the current value (start of a measured phase). */
void pb_mem_reset_peak(void);
/* Short key ("grads") and description of a category. */
const char *pb_mem_cat_key(pb_mem_cat cat);
const char *pb_mem_cat_desc(pb_mem_cat cat);
/* Tests: the n-th pb_alloc from now on this thread (1: the next) fails as out of memory does;
 * 0 turns it off. Reaches the out-of-memory paths that a real failure would take. */
void pb_mem_fail_at(long n);
/* Peak resident set size of the whole process in bytes (getrusage), 0 if unknown. */
size_t pb_peak_rss_bytes(void);

#endif
