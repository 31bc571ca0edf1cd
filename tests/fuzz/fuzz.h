/* fuzz.h — what every fuzz target shares (tests/fuzz/README.md).
 *
 * A target is one file, tests/fuzz/fuzz_NAME.c, defining
 *
 *   int pb_fuzz_NAME(const uint8_t *data, size_t size);
 *
 * which feeds data to a parser and checks what comes back: returns 0, and calls pbf_fail
 * (abort) on anything wrong — a failure without a message, an accepted input that breaks an
 * invariant. Sanitizers catch the rest. The same function is the libFuzzer binary fuzz_NAME
 * (main.c, with -DPB_FUZZ=ON) and is run by ctest's test_fuzz on tests/fuzz/corpus/NAME/ and
 * tests/fixtures/fuzz/NAME/ (regressions) in every build. Nothing else to register.
 */
#ifndef PB_FUZZ_H
#define PB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "pb_error.h"

/* Aborts with a message naming the target's check (a finding). */
#define pbf_fail(...) pbf_fail_at(__FILE__, __LINE__, __VA_ARGS__)
void pbf_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

/* A failing status must come with a message: returns st, aborting if the message is empty.
 * With PB_FUZZ_VERBOSE set, prints the message (what a seed reaches). */
pb_status pbf_check_status(pb_status st);

/* A path for a scratch file or directory of this process: $TMPDIR (or /tmp) /pbfuzz-PID-name.
 * Stable for a given name, so files are overwritten, not piled up. */
const char *pbf_path(const char *name);
/* Writes n bytes to path (replacing it); aborts if it cannot. */
void pbf_write(const char *path, const void *data, size_t n);
/* Removes a flat scratch directory made with pbf_path and the files in it. */
void pbf_rmtree(const char *path);

/* Removes every scratch file and directory of this process (pbf_path), or of process pid. */
void pbf_cleanup(void);
void pbf_cleanup_pid(long pid);

/* Consumes fuzz input from the front. */
typedef struct {
    const uint8_t *p;
    size_t n;
} pbf_in;
uint8_t pbf_u8(pbf_in *in);    /* 0 when empty */
uint32_t pbf_u32(pbf_in *in);  /* little-endian, zero-filled */
/* The next len bytes (fewer at the end); *got receives how many. */
const uint8_t *pbf_bytes(pbf_in *in, size_t len, size_t *got);

/* The source tree (fixtures, seed files). */
const char *pbf_src(void);

#endif
