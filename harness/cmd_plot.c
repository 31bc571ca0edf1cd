/* cmd_plot.c — `peftbench plot RESULTS.h5 -o DIR`: TSV files (results/export.h) and the figures
 * drawn from them by the committed gnuplot scripts (plots/NAME.gp), PNG and SVG side by side. */
#include "pb_fs.h"
#include "commands.h"
#include "plot.h"
#include "results/export.h"
#include "results/table.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PB_SOURCE_DIR
#define PB_SOURCE_DIR "."
#endif

static void plot_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench plot RESULTS.h5 -o DIR [--backbone NAME] [--format png,svg] [--scripts DIR]\n"
            "Writes the figures of a results file into DIR, each as PNG and SVG beside the TSV it was\n"
            "drawn from: accuracy_vs_params (average test metric vs %% trainable parameters, log scale,\n"
            "a marker per category, the Pareto front), memory (peak memory per method by category),\n"
            "flops (training FLOPs per token per method by phase), curves_TASK (dev metric and\n"
            "training loss per task). gnuplot runs the committed scripts plots/*.gp (`gnuplot -c`).\n"
            "  --backbone  one backbone (default: all; several go to DIR/BACKBONE/)\n"
            "  --format    png, svg or png,svg (default)\n"
            "  --scripts   where the .gp scripts are (default: $PEFTBENCH_PLOTS, else %s/plots)\n",
            PB_SOURCE_DIR);
}

/* Runs gnuplot -c script args...; returns 0 when it exited 0, printed nothing alarming and
 * made a non-empty output. Its messages are shown. */
static int gnuplot(const char *script, const char *outfile, const char *const *args) {
    int p[2];
    if (pipe(p) != 0) return 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        dup2(p[1], 1);
        const char *argv[16];
        int n = 0;
        argv[n++] = "gnuplot";
        argv[n++] = "-c";
        argv[n++] = script;
        for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
        argv[n] = NULL;
        execvp("gnuplot", (char *const *)argv);
        fprintf(stderr, "cannot run gnuplot: %s (install gnuplot-nox: scripts/install-deps.sh)\n", strerror(errno));
        _exit(127);
    }
    close(p[1]);
    char msg[8192];
    size_t len = 0;
    ssize_t k;
    while ((k = read(p[0], msg + len, sizeof msg - 1 - len)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0) len += (size_t)k;
    msg[len] = '\0';
    close(p[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    struct stat sb;
    int ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && stat(outfile, &sb) == 0 && sb.st_size > 0;
    if (!ok || len) {
        fprintf(stderr, "%s %s:\n%s", ok ? "gnuplot said, drawing" : "gnuplot FAILED drawing", outfile, msg);
        if (!ok && WIFEXITED(ws)) fprintf(stderr, "(exit status %d)\n", WEXITSTATUS(ws));
    }
    return ok ? 0 : 1;
}

int pb_plot_draw(const char *scripts, const char *gp, const char *dir, const char *base, const char *fmts,
                 const char *const *extra) {
    char script[2048], out[2048], file[2100];
    snprintf(script, sizeof script, "%s/%s", scripts, gp);
    snprintf(out, sizeof out, "%s/%s", dir, base);
    int rc = 0;
    const char *formats[2] = {"png", "svg"};
    for (int i = 0; i < 2; i++) {
        if (!strstr(fmts, formats[i])) continue;
        const char *args[12] = {dir, out, formats[i]};
        int n = 3;
        for (int j = 0; extra[j] && n < 11; j++) args[n++] = extra[j];
        args[n] = NULL;
        snprintf(file, sizeof file, "%s.%s", out, formats[i]);
        unlink(file);
        if (gnuplot(script, file, args)) rc = 1;
        else printf("%s\n", file);
    }
    return rc;
}

static int plot_backbone(const pb_res *res, const char *backbone, const char *dir, const char *scripts,
                         const char *fmts) {
    pb_table t;
    if (pb_table_build(res, backbone, NULL, &t)) {
        fprintf(stderr, "peftbench plot: %s\n", pb_errmsg());
        return 1;
    }
    pb_export_info info;
    if (pb_export_tsv(res, &t, dir, &info)) {
        fprintf(stderr, "peftbench plot: %s\n", pb_errmsg());
        pb_table_free(&t);
        return 1;
    }
    int rc = 0;
    char title[512], xmin[32], xmax[32], ymin[32], ymax[32], cats[64] = "";
    if (info.n_points) {
        int present[6] = {0};
        for (int i = 0; i < t.n_rows; i++)
            if (isfinite(t.rows[i].avg) && t.rows[i].category_index >= 0 && t.rows[i].category_index < 6)
                present[t.rows[i].category_index] = 1;
        size_t k = 0;
        for (int c = 0; c < 6; c++)
            if (present[c]) k += (size_t)snprintf(cats + k, sizeof cats - k, "%s%d", k ? " " : "", c);
        snprintf(xmin, sizeof xmin, "%.9g", info.xmin);
        snprintf(xmax, sizeof xmax, "%.9g", info.xmax);
        snprintf(ymin, sizeof ymin, "%.9g", info.ymin);
        snprintf(ymax, sizeof ymax, "%.9g", info.ymax);
        size_t n = (size_t)snprintf(title, sizeof title, "Accuracy vs. trainable parameters, backbone %s\naverage test metric of", backbone);
        int avg_tasks = 0;
        for (int j = 0; j < t.n_tasks && n < sizeof title; j++)
            if (t.higher[j]) n += (size_t)snprintf(title + n, sizeof title - n, "%s %s", avg_tasks++ ? "," : "", t.task[j]);
        (void)n;
        const char *extra[] = {xmin, xmax, ymin, ymax, title, cats, NULL};
        rc |= pb_plot_draw(scripts, "accuracy_vs_params.gp", dir, "accuracy_vs_params", fmts, extra);
    } else {
        fprintf(stderr, "peftbench plot: no method has a test metric on every task of backbone %s: "
                        "accuracy_vs_params skipped\n", backbone);
    }
    snprintf(title, sizeof title, "Peak memory per method by category, backbone %s\n(each segment is that "
                                  "category's own peak)", backbone);
    const char *e1[] = {title, NULL};
    rc |= pb_plot_draw(scripts, "memory.gp", dir, "memory", fmts, e1);
    snprintf(title, sizeof title, "Training FLOPs per token by phase, backbone %s", backbone);
    rc |= pb_plot_draw(scripts, "flops.gp", dir, "flops", fmts, e1);
    for (int k = 0; k < t.n_tasks; k++) {
        if (!info.n_curves[k]) continue;
        char n[16], steps[16], base[PB_RES_NAME + 16];
        snprintf(n, sizeof n, "%d", info.n_curves[k]);
        snprintf(steps, sizeof steps, "%d", info.max_step[k]);
        snprintf(title, sizeof title, "Task %s, backbone %s\neach method at its chosen learning rate, first seed",
                 t.task[k], backbone);
        snprintf(base, sizeof base, "curves_%s", info.stem[k]);
        const char *e2[] = {info.stem[k], n, title, t.metric[k], steps, NULL};
        rc |= pb_plot_draw(scripts, "curves.gp", dir, base, fmts, e2);
    }
    pb_table_free(&t);
    return rc;
}

const char *pb_plot_scripts(const char *flag, char *buf, size_t cap) {
    const char *s = flag && *flag ? flag : getenv("PEFTBENCH_PLOTS");
    if (s && *s) snprintf(buf, cap, "%s", s);
    else snprintf(buf, cap, "%s/plots", PB_SOURCE_DIR);
    char probe[2200];
    snprintf(probe, sizeof probe, "%s/accuracy_vs_params.gp", buf);
    if (access(probe, R_OK) != 0) {
        fprintf(stderr, "peftbench plot: no gnuplot scripts in %s (give --scripts DIR or set PEFTBENCH_PLOTS to the "
                        "source tree's plots/)\n", buf);
        return NULL;
    }
    return buf;
}

int pb_plot_results(const pb_res *res, const char *dir, const char *backbone, const char *fmts, const char *scripts) {
    if (pb_mkdir_p(dir)) {
        fprintf(stderr, "peftbench plot: %s\n", pb_errmsg());
        return 1;
    }
    char names[16][PB_RES_NAME];
    int nb = pb_table_backbones(res, names, 16), rc = 0, shown = 0;
    if (nb > 16) nb = 16;
    for (int b = 0; b < nb; b++) {
        if (backbone && strcmp(backbone, names[b])) continue;
        char sub[2048];
        if (!backbone && nb > 1) {
            snprintf(sub, sizeof sub, "%s/%s", dir, names[b]);
            if (pb_mkdir_p(sub)) {
                fprintf(stderr, "peftbench plot: %s\n", pb_errmsg());
                rc = 1;
                continue;
            }
        } else {
            snprintf(sub, sizeof sub, "%s", dir);
        }
        rc |= plot_backbone(res, names[b], sub, scripts, fmts);
        shown++;
    }
    if (!shown) {
        fprintf(stderr, "peftbench plot: %s\n", res->n ? "no such backbone in the file" : "the file holds no cells yet");
        rc = 1;
    }
    return rc;
}

int pb_cmd_plot(pb_args *a) {
    const char *path = NULL, *dir = NULL, *v, *backbone = NULL, *fmts = "png,svg", *scripts = NULL;
    int r;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "-o", 1, &v)) > 0 || (r == 0 && (r = pb_args_opt(a, "--out", 1, &v)) > 0)) dir = v;
        else if (r == 0 && (r = pb_args_opt(a, "--backbone", 1, &v)) > 0) backbone = v;
        else if (r == 0 && (r = pb_args_opt(a, "--format", 1, &v)) > 0) {
            if (!strstr(v, "png") && !strstr(v, "svg")) {
                fprintf(stderr, "peftbench plot: --format '%s' (accepted: png, svg, png,svg)\n", v);
                return 2;
            }
            fmts = v;
        } else if (r == 0 && (r = pb_args_opt(a, "--scripts", 1, &v)) > 0) scripts = v;
        else if (r == 0 && (r = pb_args_opt(a, "--help", 0, NULL)) > 0) {
            plot_usage(stdout);
            return 0;
        } else if (r == 0 && a->argv[a->i][0] == '-') {
            fprintf(stderr, "peftbench plot: unknown option '%s'\n", a->argv[a->i]);
            plot_usage(stderr);
            return 2;
        } else if (r == 0) {
            if (path) {
                fprintf(stderr, "peftbench plot: one results file only\n");
                return 2;
            }
            path = a->argv[a->i++];
        }
        if (r < 0) return 2;
    }
    if (!path || !dir) {
        fprintf(stderr, "peftbench plot: %s\n", !path ? "missing RESULTS.h5" : "missing -o DIR");
        plot_usage(stderr);
        return 2;
    }
    char sbuf[2048];
    if (!(scripts = pb_plot_scripts(scripts, sbuf, sizeof sbuf))) return 1;
    pb_res res;
    pb_res_init(&res);
    if (pb_res_read(path, &res)) {
        fprintf(stderr, "peftbench plot: %s\n", pb_errmsg());
        return 1;
    }
    int rc = pb_plot_results(&res, dir, backbone, fmts, scripts);
    pb_res_free(&res);
    return rc;
}
