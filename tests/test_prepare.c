/* test_prepare.c — what a survey, sweep or run needs before it runs is decided on the files
 * themselves (harness/prepare.h), and exactly that is fetched:
 *   - pb_needs_check on an empty data directory: the default backbone must be pretrained, so the
 *     corpus is needed; fetched tasks are listed, generated ones are not; nothing is needed once
 *     the files are there;
 *   - `peftbench survey` against an empty data directory, with PEFTBENCH_SCRIPTS pointing at a
 *     stand-in fetch script (offline): the script is called once with exactly the missing
 *     sources, and the survey then runs to its table; a second run fetches nothing;
 *   - `--no-fetch` fails with a message that names what is missing (survey, sweep and run);
 *   - `run --backbone default` and `score --checkpoint default` accept the name.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/prepare.h"
#include "results/results.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static const char *fresh_dir(const char *name) {
    const char *d = tu_tmp_path(name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", d, d);
    assert_int_equal(system(cmd), 0);
    return d;
}

/* A stand-in for tasks/fetch/fetch_data.sh: appends its arguments to DATADIR/../fetch-calls.log
 * and writes small files where the real script would put the corpus and names_gender. */
static const char *k_fake_fetch =
    "#!/usr/bin/env bash\n"
    "set -eu\n"
    "dir=$1; shift\n"
    "echo \"$dir $*\" >> \"$dir/../fetch-calls.log\"\n"
    "[ \"$1\" = --only ] || exit 3\n"
    "IFS=, read -r -a items <<<\"$2\"\n"
    "for it in \"${items[@]}\"; do\n"
    "  case \"$it\" in\n"
    "    corpus) mkdir -p \"$dir/corpus\"\n"
    "      for s in sotu austen jargon moby_dick devil; do\n"
    "        : > \"$dir/corpus/$s.txt\"\n"
    "        for d in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n"
    "          printf 'Document %s of %s: the quick brown fox jumps over the lazy dog, again and again.\\n\\f\\n' "
    "\"$d\" \"$s\" >> \"$dir/corpus/$s.txt\"\n"
    "        done\n"
    "      done ;;\n"
    "    names_gender) mkdir -p \"$dir/tasks/names_gender\"\n"
    "      for sp in train dev test; do\n"
    "        { echo text,label\n"
    "          for n in anna maria julia emma olga tom john mark paul bob; do\n"
    "            case $n in anna|maria|julia|emma|olga) l=female ;; *) l=male ;; esac\n"
    "            echo \"$n$sp,$l\"; echo \"${n}a$sp,$l\"\n"
    "          done; } > \"$dir/tasks/names_gender/$sp.csv\"\n"
    "      done ;;\n"
    "    *) echo \"fake fetch: unexpected source $it\" >&2; exit 4 ;;\n"
    "  esac\n"
    "done\n";

static const char *k_spec = "[sweep]\nname = prepare-test\nbackbones = tiny\n"
                            "tasks = names_gender\n  sentiment:n_train=32,n_dev=16,n_test=16\n"
                            "steps = 4\nbatch = 4\nmax_len = 32\neval_every = 2\n"
                            "forgetting = fetched\nforgetting_tokens = 256\n"
                            "[method full]\n[method lora]\nr = 2\n";

static void test_needs_check(void **state) {
    (void)state;
    const char *dd = fresh_dir("needs-data");
    const char *backbones[] = {"tiny", "default"}, *tasks[] = {"spam:max_train=10", "sentiment", "spam", "names_gender"};
    pb_inputs in = {.backbones = backbones, .n_backbones = 2, .tasks = tasks, .n_tasks = 4, .data_dir = dd};
    pb_needs n;
    assert_int_equal(pb_needs_check(&in, &n), PB_OK);
    assert_true(n.default_backbone);
    assert_int_equal(n.backbone, PB_BACKBONE_ABSENT);
    assert_true(pb_needs_pretraining(&n));
    assert_true(n.corpus_needed);
    assert_int_equal(n.corpus_missing, 5);
    assert_non_null(strstr(n.corpus_why, "default backbone"));
    char list[256];
    pb_needs_fetch_list(&n, list, sizeof list);
    assert_string_equal(list, "corpus,spam,names_gender"); /* each source once; sentiment is generated */

    /* presets only and no forgetting: nothing needs the corpus */
    in.n_backbones = 1;
    assert_int_equal(pb_needs_check(&in, &n), PB_OK);
    assert_false(n.corpus_needed);
    pb_needs_fetch_list(&n, list, sizeof list);
    assert_string_equal(list, "spam,names_gender");
    /* forgetting = fetched does */
    in.forgetting = "fetched";
    assert_int_equal(pb_needs_check(&in, &n), PB_OK);
    assert_true(n.corpus_needed);
    assert_non_null(strstr(n.corpus_why, "forgetting"));
    /* a task with its own directory (dir=) is the user's data: never fetched */
    const char *own[] = {"spam:dir=/nonexistent/spam"};
    pb_inputs in2 = {.backbones = backbones, .n_backbones = 1, .tasks = own, .n_tasks = 1, .data_dir = dd};
    assert_int_equal(pb_needs_check(&in2, &n), PB_OK);
    assert_int_equal(n.n_tasks, 0);
    /* present files: nothing is missing */
    char path[1200];
    snprintf(path, sizeof path, "%s/tasks/spam", dd);
    assert_int_equal(mkdir(tu_tmp_path("needs-data/tasks"), 0777), 0);
    assert_int_equal(mkdir(path, 0777), 0);
    const char *splits[] = {"train", "dev", "test"};
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/tasks/spam/%s.csv", dd, splits[s]);
        tu_write_text(path, "text,label\nhello,ham\n");
    }
    in.n_tasks = 3;
    in.forgetting = NULL;
    assert_int_equal(pb_needs_check(&in, &n), PB_OK);
    assert_int_equal(n.n_tasks, 0);
    /* a half-fetched set (one split) is missing */
    snprintf(path, sizeof path, "%s/tasks/spam/dev.csv", dd);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(pb_needs_check(&in, &n), PB_OK);
    assert_int_equal(n.n_tasks, 1);
    assert_string_equal(n.task_source[0], "spam");
}

/* Runs peftbench with PEFTBENCH_SCRIPTS and PEFTBENCH_DATA set; returns the exit status. */
static int run_with_env(const char *scripts, const char *data, const char *const *args, const char *log) {
    setenv("PEFTBENCH_SCRIPTS", scripts, 1);
    setenv("PEFTBENCH_DATA", data, 1);
    int rc = tu_run_peftbench(args, log);
    unsetenv("PEFTBENCH_SCRIPTS");
    unsetenv("PEFTBENCH_DATA");
    return rc;
}

static void dump_and_fail(const char *log, const char *what, int rc) {
    char *text = slurp(log);
    fprintf(stderr, "%s\n", text ? text : "(no log)");
    free(text);
    fail_msg("%s exited %d", what, rc);
}

static void test_survey_fetches_exactly_what_is_missing(void **state) {
    (void)state;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "gnuplot not installed: skipped\n");
        skip();
    }
    const char *root = fresh_dir("prep"), *scripts = tu_tmp_path("prep/scripts"), *data = tu_tmp_path("prep/data");
    char path[1200];
    assert_int_equal(mkdir(scripts, 0777), 0);
    assert_int_equal(mkdir(data, 0777), 0);
    snprintf(path, sizeof path, "%s/fetch_data.sh", scripts);
    tu_write_text(path, k_fake_fetch);
    const char *spec = tu_tmp_path("prep/spec.ini"), *out = tu_tmp_path("prep/out"), *log = tu_tmp_path("prep/log");
    tu_write_text(spec, k_spec);
    const char *args[] = {"survey", "--spec", spec, "-o", out, "--jobs", "2", NULL};
    int rc = run_with_env(scripts, data, args, log);
    if (rc) dump_and_fail(log, "survey", rc);
    snprintf(path, sizeof path, "%s/fetch-calls.log", root);
    char *calls = slurp(path);
    assert_non_null(calls);
    char want[1300];
    snprintf(want, sizeof want, "%s --only corpus,names_gender\n", data);
    assert_string_equal(calls, want);
    free(calls);
    char *text = slurp(log);
    assert_non_null(strstr(text, "survey: fetching the corpus: forgetting = fetched"));
    assert_non_null(strstr(text, "survey: fetching task data names_gender: task 'names_gender' reads"));
    assert_null(strstr(text, "pretraining the default backbone")); /* the spec names no default */
    free(text);
    /* the survey then ran: every cell, the table */
    pb_res r;
    pb_res_init(&r);
    snprintf(path, sizeof path, "%s/results.h5", out);
    assert_int_equal(pb_res_read(path, &r), PB_OK);
    assert_int_equal(r.n, 4);
    for (size_t i = 0; i < r.n; i++) assert_string_equal(r.rows[i].status, "ok");
    pb_res_free(&r);
    snprintf(path, sizeof path, "%s/table.md", out);
    assert_int_equal(access(path, R_OK), 0);
    /* again: everything is there, nothing is fetched */
    rc = run_with_env(scripts, data, args, log);
    if (rc) dump_and_fail(log, "survey (again)", rc);
    snprintf(path, sizeof path, "%s/fetch-calls.log", root);
    calls = slurp(path);
    assert_string_equal(calls, want);
    free(calls);
}

static void test_no_fetch_names_what_is_missing(void **state) {
    (void)state;
    const char *scripts = fresh_dir("nofetch-scripts"), *data = fresh_dir("nofetch-data");
    char path[1200];
    snprintf(path, sizeof path, "%s/fetch_data.sh", scripts);
    tu_write_text(path, "#!/usr/bin/env bash\necho called >> \"$1/called\"\n");
    const char *spec = tu_tmp_path("nofetch.ini"), *out = tu_tmp_path("nofetch-out"), *log = tu_tmp_path("nofetch.log");
    tu_write_text(spec, k_spec);
    const char *survey[] = {"survey", "--spec", spec, "-o", out, "--no-fetch", NULL};
    const char *sweep[] = {"sweep", spec, "-o", tu_tmp_path("nofetch.h5"), "--no-fetch", NULL};
    const char *run[] = {"run", "--backbone", "default", "--task", "names_gender", "--method", "lora", "--no-fetch",
                         NULL};
    const char *const *cmds[] = {survey, sweep, run};
    for (int i = 0; i < 3; i++) {
        int rc = run_with_env(scripts, data, cmds[i], log);
        assert_int_equal(rc, 2);
        char *text = slurp(log);
        assert_non_null(text);
        if (!strstr(text, "names_gender") || !strstr(text, "corpus") || !strstr(text, "--no-fetch was given") ||
            !strstr(text, "peftbench data fetch")) {
            fprintf(stderr, "%s\n", text);
            fail_msg("%s --no-fetch: the message does not name what is missing", cmds[i][0]);
        }
        free(text);
    }
    snprintf(path, sizeof path, "%s/called", data);
    assert_int_not_equal(access(path, F_OK), 0); /* the script was never run */
}

/* `default` is accepted where a backbone is named; with --no-fetch on an empty data directory it
 * is resolved (not "not a preset") and fails on the missing corpus. */
static void test_default_is_a_backbone_name(void **state) {
    (void)state;
    const char *data = fresh_dir("default-data"), *log = tu_tmp_path("default.log");
    const char *run[] = {"run", "--backbone", "default", "--task", "sentiment", "--method", "lora", "--no-fetch", NULL};
    assert_int_equal(run_with_env("/nonexistent", data, run, log), 2);
    char *text = slurp(log);
    assert_null(strstr(text, "not a preset"));
    assert_non_null(strstr(text, "the default backbone (mini"));
    assert_non_null(strstr(text, "--only corpus"));
    free(text);
    const char *list[] = {"list", "backbones", NULL};
    assert_int_equal(run_with_env("/nonexistent", data, list, log), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needs_check),
        cmocka_unit_test(test_survey_fetches_exactly_what_is_missing),
        cmocka_unit_test(test_no_fetch_names_what_is_missing),
        cmocka_unit_test(test_default_is_a_backbone_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
