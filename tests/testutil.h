/* testutil.h — helpers shared by the cmocka tests: random data and tolerant comparisons that
 * print the first mismatching element with both values before failing the test. */
#ifndef PB_TESTUTIL_H
#define PB_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Fills x[0..n) with U(-scale, scale) from seed (deterministic). */
void tu_fill(float *x, size_t n, uint64_t seed, float scale);
void tu_fill_d(double *x, size_t n, uint64_t seed, double scale);
/* Copies floats to doubles and back. */
void tu_f2d(double *dst, const float *src, size_t n);
void tu_d2f(float *dst, const double *src, size_t n);
/* Fails the current test unless |a-b| <= atol + rtol*|b| for every element; `what` names the
 * array in the message. */
void tu_assert_close(const float *a, const float *b, size_t n, double atol, double rtol, const char *what);
void tu_assert_close_fd(const float *a, const double *b, size_t n, double atol, double rtol, const char *what);
void tu_assert_close_d(const double *a, const double *b, size_t n, double atol, double rtol, const char *what);
/* Fails unless every element is bit-identical. */
void tu_assert_same(const float *a, const float *b, size_t n, const char *what);
/* A temporary directory made for this process (removed by the OS, not by the tests). */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name, in one of 16 rotating buffers (valid for the next 15 calls). */
const char *tu_tmp_path(const char *name);
/* The peftbench binary of this build (tests run from BUILD/tests/). */
const char *tu_peftbench_bin(void);
/* Runs the peftbench binary with args (NULL-terminated, at most 22), stderr to log, stdout
 * discarded; returns its exit status (128 if it did not exit normally). */
int tu_run_peftbench(const char *const *args, const char *log);

/* The same with PEFTBENCH_CRASH set to `crash` (NULL: unset) and stderr to log (NULL: discarded);
 * SIGKILLs the process after kill_after_ms milliseconds if that is >= 0 (a process that ended
 * sooner is not affected). Returns the wait status. */
int tu_run_peftbench_ex(const char *crash, const char *log, int kill_after_ms, const char *const *args);
/* Copies a log to stderr, each line indented. */
void tu_print_log(const char *log);
/* Fails (printing the log) unless the wait status ws is a normal exit with `code`. */
void tu_expect_exit(int ws, int code, const char *log);
/* Whether the log (its first 64 kB) contains needle. */
int tu_log_contains(const char *log, const char *needle);

#endif
