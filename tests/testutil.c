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
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
        const char *argv[24];
        int n = 0;
        argv[n++] = tu_peftbench_bin();
        for (int i = 0; args[i] && n < 23; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execv(tu_peftbench_bin(), (char *const *)argv);
        _exit(127);
    }
    int ws;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid) return 128;
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
