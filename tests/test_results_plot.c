/* test_results_plot.c — `peftbench plot` on a results file made by hand: the TSV files are
 * what the table says (Pareto front, memory, FLOPs, curves), the scatter labels the exporter
 * places do not overlap each other or the markers, gnuplot draws every figure as PNG and SVG
 * (exit status checked), and a failing script is reported as a failure. Skipped without
 * gnuplot. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "results/export.h"
#include "results/results.h"

/* Methods: label, category, % trainable, accuracy offset. */
static const struct {
    const char *label, *cat;
    double pct, acc;
} k_methods[] = {
    {"full", "selective", 100, 80},        {"head", "selective", 0.3, 60},  {"bitfit", "selective", 0.1, 70},
    {"lora r=4", "reparameterization", 1.2, 79}, {"lora r=8", "reparameterization", 2.4, 79.5},
    {"seq_bn", "additive", 1.3, 76},       {"ia3", "additive", 0.05, 71},   {"prompt_tuning", "prompt", 0.04, 65},
    {"prefix_tuning", "prompt", 1.1, 74},  {"mam", "hybrid", 9, 78},        {"dora", "reparameterization", 1.25, 79.2},
};
#define N_METHODS (int)(sizeof k_methods / sizeof k_methods[0])

static void make_file(const char *path) {
    pb_res r;
    pb_res_init(&r);
    const char *tasks[2] = {"sentiment", "glue:sst2"};
    for (int m = 0; m < N_METHODS; m++)
        for (int t = 0; t < 2; t++)
            for (int s = 1; s <= 2; s++) {
                pb_res_row w;
                pb_res_row_init(&w);
                snprintf(w.config, sizeof w.config, "%d %d %d", m, t, s);
                pb_res_key(w.config, w.key);
                snprintf(w.status, sizeof w.status, "ok");
                snprintf(w.backbone_name, sizeof w.backbone_name, "tiny");
                snprintf(w.method_label, sizeof w.method_label, "%s", k_methods[m].label);
                snprintf(w.method_name, sizeof w.method_name, "%.20s", k_methods[m].label);
                snprintf(w.method, sizeof w.method, "%s", k_methods[m].label);
                snprintf(w.category, sizeof w.category, "%s", k_methods[m].cat);
                snprintf(w.task, sizeof w.task, "%s", tasks[t]);
                snprintf(w.task_name, sizeof w.task_name, "%s", tasks[t]);
                snprintf(w.select_metric, sizeof w.select_metric, "acc");
                w.higher_is_better = 1;
                w.lr = 1e-3;
                w.seed = (uint64_t)s;
                w.trainable_pct = k_methods[m].pct;
                w.dev_metric = w.test_metric = (k_methods[m].acc + t + 0.5 * s) / 100;
                w.flops_fwd = 1e5, w.flops_bwd_in = 9e4, w.flops_bwd_w = 1e3 * k_methods[m].pct;
                w.flops_train = w.flops_fwd + w.flops_bwd_in + w.flops_bwd_w;
                for (int c = 0; c < PB_MEM_NCAT; c++) w.mem_peak[c] = (uint64_t)(1 << 20) * (uint64_t)(c + 1);
                w.mem_peak_total = 20u << 20;
                w.n_evals = 4;
                w.n_loss = 40;
                int32_t steps[4] = {10, 20, 30, 40};
                float dev[4], tl[4], loss[40];
                for (int e = 0; e < 4; e++) dev[e] = (float)(0.5 + 0.07 * e + 0.01 * m), tl[e] = (float)(1.0 - 0.1 * e);
                for (int k = 0; k < 40; k++) loss[k] = (float)(1.2 - 0.01 * k + 0.001 * m);
                w.eval_step = steps, w.eval_dev = dev, w.eval_test = dev, w.eval_train_loss = tl, w.loss = loss;
                assert_int_equal(pb_res_put(&r, &w), PB_OK);
            }
    assert_int_equal(pb_res_write(path, &r), PB_OK);
    pb_res_free(&r);
}

static void expect_file(const char *dir, const char *name, const char *magic) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) fail_msg("%s was not written", p);
    char head[16] = {0};
    size_t n = fread(head, 1, sizeof head - 1, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    if (size < 1000 || n < strlen(magic) || memcmp(head, magic, strlen(magic)))
        fail_msg("%s: %ld bytes, starts with '%.8s' (expected '%s')", p, size, head, magic);
}

static void test_plot(void **state) {
    (void)state;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "gnuplot not installed: skipped\n");
        skip();
    }
    const char *res = tu_tmp_path("plot.h5"), *dir = tu_tmp_path("fig"), *log = tu_tmp_path("plot.log");
    make_file(res);
    char scripts[1100];
    snprintf(scripts, sizeof scripts, "%s/plots", getenv("PB_TEST_SRC") ? getenv("PB_TEST_SRC") : "..");
    int rc = tu_run_peftbench((const char *const[]){"plot", res, "-o", dir, "--scripts", scripts, NULL}, log);
    if (rc) {
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "cat %s >&2", log);
        if (system(cmd)) {}
        fail_msg("peftbench plot exited %d", rc);
    }
    const char *figs[] = {"accuracy_vs_params", "memory", "flops", "curves_sentiment", "curves_glue_sst2"};
    for (int i = 0; i < 5; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.png", figs[i]);
        expect_file(dir, name, "\x89PNG");
        snprintf(name, sizeof name, "%s.svg", figs[i]);
        expect_file(dir, name, "<?xml");
    }
    /* the Pareto front: fewest parameters first, each more accurate than the one before */
    char p[1200], line[512];
    snprintf(p, sizeof p, "%s/pareto.tsv", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    const char *front[] = {"prompt_tuning", "ia3", "prefix_tuning", "lora r=4", "dora", "lora r=8", "full"};
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        *tab = '\0';
        if (n >= 7 || strcmp(line, front[n])) fail_msg("Pareto point %d is '%s'", n, line);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 7);
    /* labels: no two overlap, none covers a marker (the exporter's geometry) */
    snprintf(p, sizeof p, "%s/accuracy_vs_params.tsv", dir);
    f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    double lx[64], ly[64], lw[64], mx[64], my[64];
    int m = 0;
    double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = -1e300;
    char labels[64][64];
    while (fgets(line, sizeof line, f) && m < 64) {
        char lab[64], cat[64];
        int ci, par;
        double pct, acc, x, y;
        assert_int_equal(sscanf(line, "%63[^\t]\t%d\t%63[^\t]\t%lf\t%lf\t%d\t%lf\t%lf", lab, &ci, cat, &pct, &acc, &par,
                                &x, &y),
                         8);
        snprintf(labels[m], sizeof labels[m], "%s", lab);
        mx[m] = pct, my[m] = acc, lx[m] = x, ly[m] = y, lw[m] = (double)strlen(lab);
        xmin = fmin(xmin, pct), xmax = fmax(xmax, pct), ymin = fmin(ymin, acc), ymax = fmax(ymax, acc);
        m++;
    }
    fclose(f);
    assert_int_equal(m, N_METHODS);
    /* the same frame as the exporter: log x padded by 0.3 decades, y by 15% */
    double lo = log10(xmin) - 0.3, hi = log10(xmax) + 0.3, span = fmax(ymax - ymin, 2), y0 = ymin - 0.15 * span,
           y1 = ymax + 0.15 * span;
    double W = PB_PLOT_W * (PB_PLOT_R - PB_PLOT_L), H = PB_PLOT_H * (PB_PLOT_T - PB_PLOT_B);
#define PX(x) ((log10(x) - lo) / (hi - lo) * W)
#define PY(y) (((y) - y0) / (y1 - y0) * H)
    for (int a = 0; a < m; a++) {
        double ax0 = PX(lx[a]), ax1 = ax0 + lw[a] * 7.2, ay0 = PY(ly[a]) - 7.5, ay1 = ay0 + 15;
        assert_true(ax0 >= -0.5 && ax1 <= W + 0.5 && ay0 >= -0.5 && ay1 <= H + 0.5);
        for (int b = 0; b < m; b++) {
            double bx0 = PX(lx[b]), bx1 = bx0 + lw[b] * 7.2, by0 = PY(ly[b]) - 7.5, by1 = by0 + 15;
            if (b != a && ax0 < bx1 - 0.5 && bx0 < ax1 - 0.5 && ay0 < by1 - 0.5 && by0 < ay1 - 0.5)
                fail_msg("labels '%s' and '%s' overlap", labels[a], labels[b]);
            double cx = PX(mx[b]), cy = PY(my[b]);
            if (ax0 < cx + 7.5 && cx - 7.5 < ax1 && ay0 < cy + 7.5 && cy - 7.5 < ay1)
                fail_msg("label '%s' covers the marker of '%s'", labels[a], labels[b]);
        }
    }
    /* a broken script: the failure is reported and the exit status says so */
    const char *bad = tu_tmp_path("badscripts");
    mkdir(bad, 0777);
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "cp %s/*.gp %s/ && echo 'plot nonsense(' >> %s/memory.gp", scripts, bad, bad);
    assert_int_equal(system(cmd), 0);
    rc = tu_run_peftbench((const char *const[]){"plot", res, "-o", tu_tmp_path("fig2"), "--scripts", bad, NULL}, log);
    assert_int_equal(rc, 1);
    snprintf(cmd, sizeof cmd, "grep -q 'gnuplot FAILED drawing' %s", log);
    assert_int_equal(system(cmd), 0);
    /* a missing results file */
    rc = tu_run_peftbench((const char *const[]){"plot", tu_tmp_path("none.h5"), "-o", tu_tmp_path("fig3"), "--scripts", scripts, NULL}, log);
    assert_int_equal(rc, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_plot)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
