/* testutil.h — helpers shared by the cmocka tests: random data and tolerant comparisons that
 * print the first mismatching element with both values before failing the test. */
#ifndef PB_TESTUTIL_H
#define PB_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/model.h"

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
/* Gradient check of one trainable tensor t of model m against central finite differences of the
 * loss of training-mode forwards on b. t->grad must hold the analytic gradient of a training
 * forward and backward on b; the caller makes every later training forward replay that one
 * (pb_peft_hold: the same dropout masks, detached quantities held), so the finite differences
 * see the function the backward differentiates. Elements: every one of tensors up to 32, else
 * the first, the last, the 4 of largest |analytic| and 20 seeded at random.
 * Resolution: the float loss is rounded to ~2e-7, so a difference with step h resolves
 * e(h) = 2e-7 / h per element, and r = sqrt(sum of e^2) over the checked elements.
 * Fails (naming `what` and the tensor) when
 *  - an element differs: |g - fd| > 2e-2 |fd| + 1e-2 max|fd| + 2 e(h) at each of the steps
 *    1e-2, 2e-3 and 4e-4 (a smaller step is tried only when the larger one fails: a stencil
 *    straddling a ReLU kink is off by the jump in slope times the part of the stencil beyond
 *    it, which shrinks with the step, while a wrong gradient is wrong at every step);
 *  - ||g - fd|| > 3e-2 ||fd|| + r over the checked elements;
 *  - the analytic gradient is zero everywhere while ||fd|| is resolved;
 *  - may_be_zero (a tensor whose gradient is zero by construction, e.g. the attention key bias)
 *    and max|g| > 1e-4 or ||fd|| > 10 r.
 * Returns 1 without judging the norms when ||fd|| < 10 r: the gradient is too small at this
 * draw of weights for a relative check to mean anything (a wrongly zero analytic gradient
 * cannot hide there: the element check compares it with the resolved differences). The caller
 * draws other weights and checks again, and fails if no draw resolves it. Returns 0 otherwise.
 * With PB_TEST_VERBOSE set, prints ||fd||, the relative error, r and the retried elements. */
int tu_check_grad(pb_model *m, const pb_batch *b, pb_tensor *t, int may_be_zero, const char *what);

/* A temporary directory made for this process (removed by the OS, not by the tests). */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name, in one of 16 rotating buffers (valid for the next 15 calls). */
const char *tu_tmp_path(const char *name);
/* Writes text to path, replacing the file (fails the test when it cannot). */
void tu_write_text(const char *path, const char *text);
/* tu_write_text(tu_tmp_path(name), text); returns that path (a tu_tmp_path buffer). */
const char *tu_write_tmp(const char *name, const char *text);
/* The peftbench binary of this build (tests run from BUILD/tests/). */
const char *tu_peftbench_bin(void);
/* Runs the peftbench binary with args (NULL-terminated, at most 30), stderr to log, stdout
 * discarded, PEFTBENCH_CRASH unset; returns its exit status (128 if it did not exit normally). */
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
