/* pb_mem.c — tracked allocator (see pb_mem.h). */
#include "pb_mem.h"
#include "pb_error.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define PB_ALIGN 64

typedef struct {
    size_t bytes;
    int cat;
    uint32_t magic;
} mem_header;
#define MEM_MAGIC 0x70626d6du /* "pbmm" */

static _Thread_local pb_mem_stats g_mem;
static _Thread_local long g_fail_in; /* pb_mem_fail_at: allocations until one fails (0: none) */

void pb_mem_fail_at(long n) { g_fail_in = n > 0 ? n : 0; }

static void book(pb_mem_cat cat, size_t add, size_t sub) {
    g_mem.cur[cat] += add;
    assert(g_mem.cur[cat] >= sub && "pb_mem: freeing more than was booked");
    g_mem.cur[cat] -= sub;
    g_mem.cur_total += add;
    g_mem.cur_total -= sub;
    if (g_mem.cur[cat] > g_mem.peak[cat]) g_mem.peak[cat] = g_mem.cur[cat];
    if (g_mem.cur_total > g_mem.peak_total) g_mem.peak_total = g_mem.cur_total;
}

void *pb_alloc(size_t bytes, pb_mem_cat cat) {
    assert(cat >= 0 && cat < PB_MEM_NCAT);
    size_t body = (bytes + PB_ALIGN - 1) / PB_ALIGN * PB_ALIGN;
    if (body < bytes || body > SIZE_MAX - PB_ALIGN) {
        pb_errorf(PB_ENOMEM, "allocation of %zu bytes (%s) is too large", bytes, pb_mem_cat_key(cat));
        return NULL;
    }
    void *raw = NULL;
    if ((g_fail_in > 0 && --g_fail_in == 0) || posix_memalign(&raw, PB_ALIGN, PB_ALIGN + body) != 0) {
        pb_errorf(PB_ENOMEM, "out of memory allocating %zu bytes (%s)", bytes, pb_mem_cat_key(cat));
        return NULL;
    }
    memset(raw, 0, PB_ALIGN + body);
    mem_header *h = raw;
    h->bytes = bytes;
    h->cat = (int)cat;
    h->magic = MEM_MAGIC;
    book(cat, bytes, 0);
    return (char *)raw + PB_ALIGN;
}

void pb_free(void *p) {
    if (!p) return;
    mem_header *h = (mem_header *)((char *)p - PB_ALIGN);
    assert(h->magic == MEM_MAGIC && "pb_free: not a pb_alloc block");
    book((pb_mem_cat)h->cat, 0, h->bytes);
    h->magic = 0;
    free(h);
}

void pb_mem_rebook(size_t bytes, pb_mem_cat from, pb_mem_cat to) {
    if (from == to || bytes == 0) return;
    book(from, 0, bytes);
    book(to, bytes, 0);
}

void pb_mem_get(pb_mem_stats *out) { *out = g_mem; }

void pb_mem_reset_peak(void) {
    for (int c = 0; c < PB_MEM_NCAT; c++) g_mem.peak[c] = g_mem.cur[c];
    g_mem.peak_total = g_mem.cur_total;
}

const char *pb_mem_cat_key(pb_mem_cat cat) {
    switch (cat) {
#define PB_MEM_CASE(name, key, desc) case PB_MEM_##name: return key;
        PB_MEM_CAT_MAP(PB_MEM_CASE)
#undef PB_MEM_CASE
    default: return "?";
    }
}

const char *pb_mem_cat_desc(pb_mem_cat cat) {
    switch (cat) {
#define PB_MEM_CASE(name, key, desc) case PB_MEM_##name: return desc;
        PB_MEM_CAT_MAP(PB_MEM_CASE)
#undef PB_MEM_CASE
    default: return "?";
    }
}

size_t pb_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u; /* Linux reports kilobytes */
}
