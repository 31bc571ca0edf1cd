/* test_fuzz.c — every fuzz target (tests/fuzz/fuzz_NAME.c) on its committed inputs, through the
 * same entry point libFuzzer calls: the seed corpus tests/fuzz/corpus/NAME/ and the regression
 * inputs tests/fixtures/fuzz/NAME/ (crashes and hangs the fuzzer found, kept once fixed). Each
 * input runs in a child process, so a crash names its file; an input still running after
 * PB_FUZZ_INPUT_TIMEOUT seconds (default 120) is a hang. Under the sanitized build this is
 * what the fuzzer checks, minus the search. The target list is generated from the folder
 * (tests/CMakeLists.txt). */
#include "testutil.h"

#include <dirent.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

#define PB_FUZZ_TARGET(name) int pb_fuzz_##name(const uint8_t *data, size_t size);
#include "fuzz_targets.h"
#undef PB_FUZZ_TARGET

typedef struct {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
} target;

static const target k_targets[] = {
#define PB_FUZZ_TARGET(name) {#name, pb_fuzz_##name},
#include "fuzz_targets.h"
#undef PB_FUZZ_TARGET
};

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Runs every regular file of dir through t in a child; returns the number run. */
static int run_dir(const target *t, const char *dir, int timeout_s) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (e->d_name[0] == '.' || stat(path, &sb) || !S_ISREG(sb.st_mode)) continue;
        size_t len = 0;
        unsigned char *data = slurp(path, &len);
        assert_non_null(data);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm((unsigned)timeout_s);
            pb_error_clear();
            t->fn(data, len);
            _exit(0);
        }
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        pbf_cleanup_pid((long)pid); /* its scratch files, whatever happened */
        free(data);
        if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGALRM)
            fail_msg("fuzz target %s hangs on %s (still running after %d s)", t->name, path, timeout_s);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            fail_msg("fuzz target %s fails on %s (%s %d)", t->name, path, WIFSIGNALED(ws) ? "signal" : "exit",
                     WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
        n++;
    }
    closedir(d);
    return n;
}

static void test_every_target(void **state) {
    (void)state;
    const char *env = getenv("PB_FUZZ_INPUT_TIMEOUT");
    int timeout_s = env && atoi(env) > 0 ? atoi(env) : 120;
    int total = 0;
    for (size_t i = 0; i < sizeof k_targets / sizeof *k_targets; i++) {
        char seeds[1200], regress[1200];
        snprintf(seeds, sizeof seeds, "%s/tests/fuzz/corpus/%s", pbf_src(), k_targets[i].name);
        snprintf(regress, sizeof regress, "%s/tests/fixtures/fuzz/%s", pbf_src(), k_targets[i].name);
        int a = run_dir(&k_targets[i], seeds, timeout_s), b = run_dir(&k_targets[i], regress, timeout_s);
        if (a == 0) fail_msg("fuzz target %s has no seed corpus in %s", k_targets[i].name, seeds);
        fprintf(stderr, "fuzz target %-10s %3d seeds, %3d regression inputs: ok\n", k_targets[i].name, a, b);
        total += a + b;
    }
    assert_true(total > 0);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_target)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
