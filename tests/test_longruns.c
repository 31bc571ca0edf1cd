/* test_longruns.c — long runs survive SIGKILL, through the real `peftbench` binary:
 *
 * - `pretrain` killed at pseudo-random instants (a fixed sequence of delays; where each lands
 *   depends on the machine) and re-run with --resume each time ends in a checkpoint that is
 *   byte-identical to an uninterrupted run's at the same thread count; every file left by a
 *   kill opens and is resumable;
 * - `survey` killed mid-sweep (at a named point, then at an instant scaled to the machine) and re-run
 *   finishes with every cell exactly once, the cells finished before a kill not redone.
 *
 * Tiny sizes: the tiny backbone on the built-in corpus and task. No assertion depends on timing:
 * a kill that comes too late (the run already finished) only makes the test check less. */
#include "testutil.h"

#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "models/checkpoint.h"
#include "results/results.h"

#define RUN_KILL(ms, log, ...) tu_run_peftbench_ex(NULL, log, ms, (const char *const[]){__VA_ARGS__, NULL})

static unsigned char *read_all(const char *path, long *n) {
    struct stat sb;
    if (stat(path, &sb)) fail_msg("%s does not exist", path);
    *n = (long)sb.st_size;
    unsigned char *b = malloc((size_t)*n + 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    return b;
}

/* ---- pretrain --------------------------------------------------------------------------------- */

#define PRETRAIN(ms, log, out, mode)                                                                   \
    RUN_KILL(ms, log, "pretrain", "--backbone", "tiny", "--corpus", "builtin", "--builtin-bytes", "150000", \
             "--tokenizer", "byte", "--steps", "120", "--seq", "64", "--batch", "8", "--save-every", "4",     \
             "--seed", "5", "--threads", "2", "--eval-tokens", "4096", "--quiet", mode, "-o", out)

static void test_pretrain_killed_resumes(void **state) {
    (void)state;
    const char *ref = tu_tmp_path("pt_ref.h5"), *cut = tu_tmp_path("pt_cut.h5"), *log = tu_tmp_path("pt.log");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tu_expect_exit(PRETRAIN(-1, log, ref, "--force"), 0, log);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ref_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    /* Kill after these fractions of the uninterrupted run's time, re-run with --resume, until a
     * run completes: each run restarts (corpus, model) and goes on from the last save. */
    static const double fracs[] = {0.1, 0.25, 0.15, 0.3, 0.12, 0.2, 0.28, 0.18, 0.22, 0.3, 0.14, 0.26, 0.3, 0.3};
    int kills = 0, done = 0;
    long last_step = -1;
    for (size_t i = 0; i < sizeof fracs / sizeof *fracs && !done; i++) {
        int ws = PRETRAIN((int)(fracs[i] * ref_ms), log, cut, "--resume");
        if (WIFEXITED(ws)) {
            tu_expect_exit(ws, 0, log);
            done = 1;
            break;
        }
        assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
        kills++;
        if (access(cut, F_OK) == 0) { /* killed after its first save: the file opens, resumable */
            pb_ckpt_info info;
            if (pb_ckpt_read_info(cut, &info)) fail_msg("after kill %d the checkpoint does not open: %s", kills, pb_errmsg());
            assert_true(info.resumable || info.step == 120);
            assert_true(info.step >= last_step); /* a kill never takes a save back */
            last_step = info.step;
        }
    }
    if (!done) tu_expect_exit(PRETRAIN(-1, log, cut, "--resume"), 0, log);
    fprintf(stderr, "pretrain: %d kills (uninterrupted run %.0f ms; last saved step before the final run: %ld)\n",
            kills, ref_ms, last_step);
    assert_true(kills >= 2); /* the first two come at 10% and 25% of the uninterrupted run */
    long na, nb;
    unsigned char *a = read_all(ref, &na), *b = read_all(cut, &nb);
    if (na != nb || memcmp(a, b, (size_t)na))
        fail_msg("after %d kills the resumed checkpoint differs from the uninterrupted one (%ld and %ld bytes)", kills,
                 nb, na);
    free(a);
    free(b);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", cut);
    assert_int_equal(access(tmp, F_OK), -1); /* nothing half-written left behind */
}

/* ---- survey ----------------------------------------------------------------------------------- */

static const char *k_spec = "[sweep]\nname = longrun\nbackbones = tiny\n"
                            "tasks = sentiment:n_train=64,n_dev=32,n_test=32\n"
                            "lrs = 1e-3 1e-2\nseeds = 1 2\nsteps = 12\nbatch = 4\nmax_len = 48\neval_every = 4\n"
                            "[method full]\n[method lora]\nr = 2\n[method bitfit]\n";
#define N_CELLS 12

#define SURVEY(crash, ms, log, spec, out)                                                                   \
    tu_run_peftbench_ex(crash, log, ms, (const char *const[]){"survey", "--preset", "smoke", "--spec", spec, \
                                                              "-o", out, "--no-fetch", "--jobs", "2", NULL})

static void read_results(const char *dir, pb_res *r) {
    char path[1200];
    snprintf(path, sizeof path, "%s/results.h5", dir);
    pb_res_init(r);
    pb_status st = pb_res_read(path, r);
    if (st == PB_ENOTFOUND) return;
    if (st) fail_msg("%s does not open after a kill: %s", path, pb_errmsg());
}

/* Every row of `before` is in `after` with the same date and wall time (not redone). */
static void check_kept(const pb_res *before, const pb_res *after) {
    for (size_t i = 0; i < before->n; i++) {
        long j = pb_res_find(after, before->rows[i].key);
        if (j < 0) fail_msg("cell %s finished before the kill is lost", before->rows[i].key);
        if (strcmp(before->rows[i].date, after->rows[j].date) ||
            before->rows[i].wall_seconds != after->rows[j].wall_seconds)
            fail_msg("cell %s finished before the kill was run again", before->rows[i].key);
    }
}

static void test_survey_killed_reruns(void **state) {
    (void)state;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "gnuplot not installed (scripts/install-deps.sh): skipped\n");
        skip();
    }
    const char *spec = tu_tmp_path("longrun.ini"), *out = tu_tmp_path("longrun"), *log = tu_tmp_path("longrun.log");
    FILE *f = fopen(spec, "w");
    fputs(k_spec, f);
    fclose(f);
    /* 1. killed right after its 5th finished cell, before writing it */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ws = SURVEY("cell-finished:5", -1, log, spec, out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double first_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    pb_res r1, r2, r3;
    read_results(out, &r1);
    assert_int_equal(r1.n, 4);
    /* 2. re-run, killed after 80% of the first run's time: about four more cells of eight */
    ws = SURVEY(NULL, (int)(0.8 * first_ms), log, spec, out);
    read_results(out, &r2);
    check_kept(&r1, &r2);
    fprintf(stderr, "survey: %zu cells after the named kill, %zu after the timed one (%s)\n", r1.n, r2.n,
            WIFSIGNALED(ws) ? "killed" : "finished first");
    /* 3. re-run to the end: every cell exactly once (the reader refuses duplicate keys) */
    tu_expect_exit(SURVEY(NULL, -1, log, spec, out), 0, log);
    read_results(out, &r3);
    assert_int_equal(r3.n, N_CELLS);
    check_kept(&r2, &r3);
    for (size_t i = 0; i < r3.n; i++) assert_string_equal(r3.rows[i].status, "ok");
    char table[1200];
    snprintf(table, sizeof table, "%s/table.md", out);
    assert_int_equal(access(table, F_OK), 0);
    pb_res_free(&r1);
    pb_res_free(&r2);
    pb_res_free(&r3);
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretrain_killed_resumes),
        cmocka_unit_test(test_survey_killed_reruns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
