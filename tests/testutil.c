/* testutil.c — see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pb_error.h"
#include "pb_rng.h"

void tu_fill(float *x, size_t n, uint64_t seed, float scale) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    pb_rng_fill_uniform(&r, x, n, scale);
}

void tu_fill_d(double *x, size_t n, uint64_t seed, double scale) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0 * ((double)(pb_rng_u64(&r) >> 11) / 9007199254740992.0) - 1.0);
}

void tu_f2d(double *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

void tu_d2f(float *dst, const double *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

static void check(double a, double b, size_t i, double atol, double rtol, const char *what) {
    double diff = fabs(a - b);
    if (!(diff <= atol + rtol * fabs(b))) /* also catches NaN */
        fail_msg("%s[%zu]: got %.9g, expected %.9g (|diff| %.3g > atol %.3g + rtol %.3g * |expected|)", what, i, a,
                 b, diff, atol, rtol);
}

void tu_assert_close(const float *a, const float *b, size_t n, double atol, double rtol, const char *what) {
    for (size_t i = 0; i < n; i++) check(a[i], b[i], i, atol, rtol, what);
}

void tu_assert_close_fd(const float *a, const double *b, size_t n, double atol, double rtol, const char *what) {
    for (size_t i = 0; i < n; i++) check(a[i], b[i], i, atol, rtol, what);
}

void tu_assert_close_d(const double *a, const double *b, size_t n, double atol, double rtol, const char *what) {
    for (size_t i = 0; i < n; i++) check(a[i], b[i], i, atol, rtol, what);
}

void tu_assert_same(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("%s[%zu]: %.9g differs from %.9g (expected bit-identical)", what, i, a[i], b[i]);
}

const char *tu_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/pbtest.XXXXXX", base && base[0] ? base : "/tmp");
        if (!mkdtemp(dir)) fail_msg("mkdtemp(%s) failed", dir);
    }
    return dir;
}

const char *tu_tmp_path(const char *name) {
    static char buf[16][600];
    static int k;
    char *p = buf[k++ % 16];
    snprintf(p, 600, "%s/%s", tu_tmpdir(), name);
    return p;
}

void tu_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    fputs(text, f);
    if (fclose(f) != 0) fail_msg("writing %s failed", path);
}

const char *tu_write_tmp(const char *name, const char *text) {
    const char *p = tu_tmp_path(name);
    tu_write_text(p, text);
    return p;
}

const char *tu_peftbench_bin(void) {
    static char path[4200];
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) fail_msg("readlink(/proc/self/exe) failed");
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(path, sizeof path, "%s/../peftbench", self);
    return path;
}

int tu_run_peftbench(const char *const *args, const char *log) {
    int ws = tu_run_peftbench_ex(NULL, log, -1, args);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
}

int tu_run_peftbench_ex(const char *crash, const char *log, int kill_after_ms, const char *const *args) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (crash) setenv("PEFTBENCH_CRASH", crash, 1);
        else unsetenv("PEFTBENCH_CRASH");
        FILE *f = freopen(log ? log : "/dev/null", "w", stderr);
        (void)f;
        if (!freopen("/dev/null", "w", stdout)) _exit(126);
        const char *argv[32];
        int n = 0;
        argv[n++] = tu_peftbench_bin();
        for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execv(tu_peftbench_bin(), (char *const *)argv);
        _exit(127);
    }
    if (kill_after_ms >= 0) {
        struct timespec ts = {kill_after_ms / 1000, (long)(kill_after_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0) assert_int_equal(errno, EINTR);
    return ws;
}

void tu_print_log(const char *log) {
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) fprintf(stderr, "  | %s", line);
    fclose(f);
}

void tu_expect_exit(int ws, int code, const char *log) {
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != code) {
        tu_print_log(log);
        if (WIFSIGNALED(ws)) fail_msg("peftbench was killed by signal %d (expected exit %d)", WTERMSIG(ws), code);
        fail_msg("peftbench exited with %d (expected %d)", WEXITSTATUS(ws), code);
    }
}

int tu_log_contains(const char *log, const char *needle) {
    FILE *f = fopen(log, "r");
    if (!f) return 0;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* ---- gradient check ------------------------------------------------------------------------- */

static double train_loss(pb_model *m, const pb_batch *b) {
    float loss;
    if (pb_model_forward(m, b, 1, &loss) != PB_OK) fail_msg("training forward failed: %s", pb_errmsg());
    return loss;
}

/* Central difference of the training loss in element j of t with step h. */
static double central(pb_model *m, const pb_batch *b, pb_tensor *t, size_t j, double h) {
    float keep = t->data[j];
    t->data[j] = keep + (float)h;
    double hp = (double)t->data[j] - keep; /* the step float actually took */
    double lp = train_loss(m, b);
    t->data[j] = keep - (float)h;
    double hm = keep - (double)t->data[j];
    double lm = train_loss(m, b);
    t->data[j] = keep;
    return (lp - lm) / (hp + hm);
}

/* Fourth-order central difference with step h (Richardson: (4 D(h) - D(2h)) / 3, truncation
 * O(h^4)): resolves ~eps / h, so at a step five times the usual one it resolves five times
 * smaller gradients. */
static double central4(pb_model *m, const pb_batch *b, pb_tensor *t, size_t j, double h) {
    return (4.0 * central(m, b, t, j, h) - central(m, b, t, j, 2 * h)) / 3.0;
}

int tu_check_grad(pb_model *m, const pb_batch *b, pb_tensor *t, int may_be_zero, const char *what) {
    static const double steps[] = {1e-2, 2e-3, 4e-4};
    enum { NSTEP = 3, MAXPICK = 32 };
    /* Resolution of a central difference with step h: the float loss (~2.4 on the test models)
     * is rounded to ~2e-7 by the forward's float arithmetic, so differences resolve ~2e-7 / h
     * (measured: gradients that are zero by construction come out at ~1e-5 with h = 1e-2). */
    const double eps = 2e-7;
    size_t pick[MAXPICK], n = 0;
    double gmax = 0;
    for (size_t j = 0; j < t->numel; j++)
        if (fabs(t->grad[j]) > gmax) gmax = fabs(t->grad[j]);
    if (t->numel <= MAXPICK) {
        for (size_t j = 0; j < t->numel; j++) pick[n++] = j;
    } else {
        pick[n++] = 0;
        pick[n++] = t->numel - 1;
        for (int k = 0; k < 4; k++) { /* the largest |g| not yet picked */
            size_t best = 0;
            double bv = -1;
            for (size_t j = 0; j < t->numel; j++) {
                int taken = 0;
                for (size_t q = 0; q < n; q++) taken |= pick[q] == j;
                if (!taken && fabs(t->grad[j]) > bv) bv = fabs(t->grad[j]), best = j;
            }
            pick[n++] = best;
        }
        pb_rng r;
        pb_rng_seed(&r, t->numel * 131u + (uint64_t)t->name[0] + (uint64_t)strlen(t->name));
        while (n < 26) pick[n++] = (size_t)pb_rng_below(&r, t->numel);
    }
    double fd[MAXPICK], fmax = 0;
    for (size_t k = 0; k < n; k++) {
        fd[k] = central(m, b, t, pick[k], steps[0]);
        if (fabs(fd[k]) > fmax) fmax = fabs(fd[k]);
    }
    double dn = 0, fn = 0, noise = 0;
    int retried = 0;
    for (size_t k = 0; k < n; k++) {
        double g = t->grad[pick[k]], f = fd[k], got[NSTEP] = {0, 0, 0};
        int ok = 0, s = 0;
        for (; s < NSTEP; s++) {
            if (s) f = central(m, b, t, pick[k], steps[s]), retried++;
            got[s] = f;
            if ((ok = fabs(g - f) <= 2e-2 * fabs(f) + 1e-2 * fmax + 2 * eps / steps[s])) break;
        }
        if (!ok)
            fail_msg("%s: %s[%zu] analytic %.7g vs finite difference %.7g (step 1e-2), %.7g (2e-3), %.7g (4e-4)",
                     what, t->name, pick[k], g, got[0], got[1], got[2]);
        double e = eps / steps[s];
        dn += (g - f) * (g - f);
        fn += f * f;
        noise += e * e;
    }
    dn = sqrt(dn);
    fn = sqrt(fn);
    noise = sqrt(noise);
    if (getenv("PB_TEST_VERBOSE"))
        print_message("%s: %-44s |fd| %.3e  |g-fd|/|fd| %.2e  max|g| %.3e  noise %.1e  retried %d/%zu\n", what,
                      t->name, fn, fn > 0 ? dn / fn : 0.0, gmax, noise, retried, n);
    if (may_be_zero) {
        if (!(gmax <= 1e-4 && fn <= 10 * noise))
            fail_msg("%s: %s should have a zero gradient: max|analytic| %.3g, ||fd|| %.3g", what, t->name, gmax, fn);
        return 0;
    }
    if (!(fn >= 10 * noise)) {
        /* too small for the plain differences: the fourth-order ones at step 5e-2, whose
         * resolution is ~5x finer (4 forwards per element) */
        const double hw = 5e-2, ew = eps / hw;
        double fw[MAXPICK], wmax = 0;
        for (size_t k = 0; k < n; k++) {
            fw[k] = central4(m, b, t, pick[k], hw);
            if (fabs(fw[k]) > wmax) wmax = fabs(fw[k]);
        }
        dn = fn = 0;
        for (size_t k = 0; k < n; k++) {
            double g = t->grad[pick[k]];
            /* A mismatch here, after the plain differences agreed within their resolution, is a
             * wide stencil reaching across a kink (a ReLU unit dead at this draw, say): not
             * judged at this draw, so the caller draws again and fails if no draw resolves it. */
            if (!(fabs(g - fw[k]) <= 2e-2 * fabs(fw[k]) + 1e-2 * wmax + 2 * ew)) {
                if (getenv("PB_TEST_VERBOSE"))
                    print_message("%s: %s[%zu] analytic %.7g vs fourth-order difference %.7g: not resolved\n", what,
                                  t->name, pick[k], g, fw[k]);
                return 1;
            }
            dn += (g - fw[k]) * (g - fw[k]);
            fn += fw[k] * fw[k];
        }
        dn = sqrt(dn);
        fn = sqrt(fn);
        noise = ew * sqrt((double)n);
        if (getenv("PB_TEST_VERBOSE"))
            print_message("%s: %-44s |fd4| %.3e  |g-fd|/|fd| %.2e  noise %.1e\n", what, t->name, fn,
                          fn > 0 ? dn / fn : 0.0, noise);
        if (!(fn >= 10 * noise)) return 1; /* still too small: the caller draws again */
    }
    if (!(gmax > 0)) fail_msg("%s: the analytic gradient of %s is zero everywhere (||fd|| %.3g)", what, t->name, fn);
    if (!(dn <= 3e-2 * fn + noise))
        fail_msg("%s: %s: ||analytic - fd|| %.3g > 3e-2 ||fd|| + resolution = %.3g", what, t->name, dn,
                 3e-2 * fn + noise);
    return 0;
}
