/* pb_error.c — thread-local error messages (see pb_error.h). */
#include "pb_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[2048];

const char *pb_status_str(pb_status st) {
    switch (st) {
#define PB_STATUS_CASE(name, desc) case PB_##name: return desc;
        PB_STATUS_MAP(PB_STATUS_CASE)
#undef PB_STATUS_CASE
    default: return "unknown status";
    }
}

const char *pb_status_name(pb_status st) {
    switch (st) {
#define PB_STATUS_CASE(name, desc) case PB_##name: return #name;
        PB_STATUS_MAP(PB_STATUS_CASE)
#undef PB_STATUS_CASE
    default: return "UNKNOWN";
    }
}

pb_status pb_errorf(pb_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return st;
}

pb_status pb_error_context(pb_status st, const char *fmt, ...) {
    char prefix[1024], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[sizeof prefix + sizeof old + 2];
    memcpy(old, g_msg, sizeof old);
    int n = snprintf(joined, sizeof joined, "%s: %s", prefix, old[0] ? old : pb_status_str(st));
    size_t len = n < 0 ? 0 : (size_t)n < sizeof g_msg ? (size_t)n : sizeof g_msg - 1;
    memcpy(g_msg, joined, len);
    g_msg[len] = '\0';
    return st;
}

const char *pb_errmsg(void) { return g_msg; }

void pb_error_clear(void) { g_msg[0] = '\0'; }
