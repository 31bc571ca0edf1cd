/* util.c — see fuzz.h. */
#include "fuzz.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pbf_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz finding at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

pb_status pbf_check_status(pb_status st) {
    if (st != PB_OK && !pb_errmsg()[0]) pbf_fail("status %d without a message", (int)st);
    if (st != PB_OK && getenv("PB_FUZZ_VERBOSE")) fprintf(stderr, "refused: %s\n", pb_errmsg());
    return st;
}

const char *pbf_path(const char *name) {
    static char buf[8][1024];
    static int k;
    const char *tmp = getenv("TMPDIR");
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/pbfuzz-%ld-%s", tmp && tmp[0] ? tmp : "/tmp", (long)getpid(), name);
    return b;
}

void pbf_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) pbf_fail("cannot write scratch file %s", path);
}

void pbf_rmtree(const char *path) { /* scratch directories are flat */
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char p[2048];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", path, e->d_name);
                remove(p);
            }
        closedir(d);
    }
    remove(path);
}

uint8_t pbf_u8(pbf_in *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

uint32_t pbf_u32(pbf_in *in) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)pbf_u8(in) << (8 * i);
    return v;
}

const uint8_t *pbf_bytes(pbf_in *in, size_t len, size_t *got) {
    const uint8_t *p = in->p;
    *got = len < in->n ? len : in->n;
    in->p += *got;
    in->n -= *got;
    return p;
}

const char *pbf_src(void) {
#ifdef PB_FUZZ_SRC
    return PB_FUZZ_SRC;
#else
    const char *s = getenv("PB_TEST_SRC");
    return s ? s : ".";
#endif
}

void pbf_cleanup(void) { pbf_cleanup_pid((long)getpid()); }

void pbf_cleanup_pid(long pid) {
    const char *tmp = getenv("TMPDIR");
    const char *dir = tmp && tmp[0] ? tmp : "/tmp";
    char prefix[64];
    int np = snprintf(prefix, sizeof prefix, "pbfuzz-%ld-", pid);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[2048];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, (size_t)np)) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            pbf_rmtree(p); /* a directory (csvtask) or, failing that, */
            remove(p);     /* a file */
        }
    closedir(d);
}
