/* test_sweep_survey.c — `peftbench survey` end to end on a tiny offline spec: the results file,
 * the tables (md, tex, csv), the figures, and the EXPERIMENTS.md section — regenerated in place
 * on a second run (resumed: no cell redone), with text outside its markers kept. Also: a spec
 * with `methods = all` covers every registered method. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/sweep.h"
#include "methods/method.h"
#include "results/results.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s is missing", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    for (size_t i = 0; s[i]; i++) n += !strncmp(s + i, needle, len);
    return n;
}

static const char *k_spec = "[sweep]\nname = survey-test\nbackbones = tiny\n"
                            "tasks = sentiment:n_train=64,n_dev=32,n_test=32\n  topic:n_train=64,n_dev=32,n_test=32\n"
                            "lrs = 1e-3 1e-2\nsteps = 8\nbatch = 4\nmax_len = 48\neval_every = 4\n"
                            "[method full]\n[method lora]\nr = 2\n[method prompt_tuning]\nnum_virtual_tokens = 4\n"
                            "[method head]\n";

static void test_survey_end_to_end(void **state) {
    (void)state;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "gnuplot not installed: skipped\n");
        skip();
    }
    const char *spec = tu_tmp_path("survey.ini"), *out = tu_tmp_path("survey"), *md = tu_tmp_path("EXPERIMENTS.md");
    const char *log = tu_tmp_path("survey.log");
    FILE *f = fopen(spec, "w");
    fputs(k_spec, f);
    fclose(f);
    f = fopen(md, "w");
    fputs("# Experiments\n\nHand-written introduction.\n\n<!-- BEGIN experiment:other -->\nanother experiment\n"
          "<!-- END experiment:other -->\n",
          f);
    fclose(f);
    const char *args[] = {"survey", "--preset", "smoke", "--spec", spec, "-o", out, "--experiments", md,
                          "--jobs", "2", NULL};
    int rc = tu_run_peftbench(args, log);
    if (rc) {
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "cat %s >&2", log);
        if (system(cmd)) {}
        fail_msg("peftbench survey exited %d", rc);
    }
    pb_res r;
    pb_res_init(&r);
    char path[1200];
    snprintf(path, sizeof path, "%s/results.h5", out);
    assert_int_equal(pb_res_read(path, &r), PB_OK);
    assert_int_equal(r.n, 16);
    char dates[16][40];
    for (size_t i = 0; i < r.n; i++) snprintf(dates[i], sizeof dates[i], "%s", r.rows[i].date);
    pb_res_free(&r);
    const char *files[] = {"table.md", "table.tex", "table.csv", "figures/accuracy_vs_params.png",
                           "figures/memory.svg", "figures/flops.png", "figures/curves_topic.png"};
    for (int i = 0; i < 7; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        if (access(path, R_OK) != 0) fail_msg("%s was not written", path);
    }
    char *text = slurp(md);
    assert_non_null(strstr(text, "Hand-written introduction."));
    assert_non_null(strstr(text, "another experiment"));
    assert_int_equal(count(text, "<!-- BEGIN experiment:survey-smoke -->"), 1);
    assert_non_null(strstr(text, "### What the numbers say"));
    assert_non_null(strstr(text, "**LoRA vs. full fine-tuning** (Hu et al. 2021: on par)"));
    assert_non_null(strstr(text, "**Prompt tuning behind LoRA and full fine-tuning at small scale**"));
    assert_non_null(strstr(text, "**Ranking by average test metric, in groups**"));
    assert_non_null(strstr(text, "**Resolution.**"));
    assert_non_null(strstr(text, "**Is the budget enough?** Between the last two dev evaluations"));
    assert_non_null(strstr(text, "| full | 100 |"));
    assert_non_null(strstr(text, "](docs/figures/survey-smoke/accuracy_vs_params.png)"));
    free(text);
    char fig[1200];
    snprintf(fig, sizeof fig, "%s/docs/figures/survey-smoke/accuracy_vs_params.png", tu_tmpdir());
    assert_int_equal(access(fig, R_OK), 0);
    /* again: resumes (nothing rerun) and replaces the section instead of adding one */
    f = fopen(md, "a");
    fputs("\nA note added by hand after the section.\n", f);
    fclose(f);
    rc = tu_run_peftbench(args, log);
    assert_int_equal(rc, 0);
    pb_res_init(&r);
    snprintf(path, sizeof path, "%s/results.h5", out);
    assert_int_equal(pb_res_read(path, &r), PB_OK);
    for (size_t i = 0; i < r.n; i++) assert_string_equal(r.rows[i].date, dates[i]);
    pb_res_free(&r);
    text = slurp(md);
    assert_int_equal(count(text, "<!-- BEGIN experiment:survey-smoke -->"), 1);
    assert_int_equal(count(text, "<!-- END experiment:survey-smoke -->"), 1);
    assert_non_null(strstr(text, "A note added by hand after the section."));
    assert_non_null(strstr(text, "another experiment"));
    free(text);
    /* the spec changes (head dropped): the file keeps head's cells, the table leaves them out
     * and the survey says so */
    snprintf(path, sizeof path, "%s/table.md", out);
    text = slurp(path);
    assert_non_null(strstr(text, "| head |"));
    free(text);
    char shorter[512];
    snprintf(shorter, sizeof shorter, "%.*s", (int)(strstr(k_spec, "[method head]") - k_spec), k_spec);
    tu_write_text(spec, shorter);
    rc = tu_run_peftbench(args, log);
    assert_int_equal(rc, 0);
    pb_res_init(&r);
    snprintf(path, sizeof path, "%s/results.h5", out);
    assert_int_equal(pb_res_read(path, &r), PB_OK);
    assert_int_equal(r.n, 16);
    pb_res_free(&r);
    snprintf(path, sizeof path, "%s/table.md", out);
    text = slurp(path);
    assert_null(strstr(text, "| head |"));
    assert_non_null(strstr(text, "| lora |"));
    free(text);
    text = slurp(log);
    assert_non_null(strstr(text, "survey: 4 cells of "));
    assert_non_null(strstr(text, "left out of the table and figures, kept in the file"));
    free(text);
}

static void test_methods_all(void **state) {
    (void)state;
    const char *spec = tu_tmp_path("all.ini");
    FILE *f = fopen(spec, "w");
    fputs("[sweep]\nbackbones = tiny\ntasks = sentiment\nmethods = all\n[method lora-qv]\nmethod = lora\n", f);
    fclose(f);
    pb_sweep_spec s;
    if (pb_sweep_load(spec, NULL, &s)) fail_msg("%s", pb_errmsg());
    for (int i = 0; i < pb_method_count(); i++) {
        int found = 0;
        for (size_t c = 0; c < s.n_cells && !found; c++) found = !strcmp(s.cells[c].method_name, pb_method_at(i)->name);
        if (!found) fail_msg("method %s is not in a methods = all sweep", pb_method_at(i)->name);
    }
    /* lora appears once: its own section stands for it */
    int lora = 0;
    for (size_t c = 0; c < s.n_cells; c++) lora += !strcmp(s.cells[c].method_name, "lora");
    assert_int_equal(lora, 1);
    assert_int_equal(s.n_cells, (size_t)pb_method_count());
    pb_sweep_free(&s);
    f = fopen(spec, "w");
    fputs("[sweep]\nbackbones = tiny\ntasks = sentiment\nmethods = some\n", f);
    fclose(f);
    assert_int_not_equal(pb_sweep_load(spec, NULL, &s), PB_OK);
    assert_non_null(strstr(pb_errmsg(), ":4: [sweep]: methods = 'some'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_survey_end_to_end),
        cmocka_unit_test(test_methods_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
