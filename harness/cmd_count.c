/* cmd_count.c — `peftbench count`: exact parameters of a method on real foundation models
 * (docs/COUNT.md). One model and method: Hugging Face's line, then the breakdown; several: a
 * table (md, tex, csv). */
#include "commands.h"
#include "count.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void count_usage(FILE *f) {
    fprintf(f,
            "usage: peftbench count --model NAME --method SPEC [--task-type T] [--seq T] [--batch B] [--precision P]\n"
            "       peftbench count --models A,B,... --methods 'SPEC1;SPEC2;...' [--task-type T] [--format md|tex|csv]\n"
            "       peftbench count --models A,B,... --methods 'SPEC1;...' --plot DIR   trainable parameters against\n"
            "                 model size per method (gnuplot: DIR/count_params.{tsv,png,svg})\n"
            "  NAME: a real model (peftbench list models) or a runnable preset (peftbench list backbones)\n"
            "  SPEC: NAME[:key=value,...] (peftbench list methods); Hugging Face names are accepted\n"
            "  T:    causal-lm | seq2seq | seq-cls:N | token-cls:N | image-cls:N (default: the model as published)\n"
            "  --seq T (default 512 for real models, max_seq for presets), --batch B (default 1),\n"
            "  --precision fp32|bf16|fp16 (frozen weights; default fp32): the FLOP and memory sections\n"
            "Counts follow Hugging Face PEFT's print_trainable_parameters() (docs/COUNT.md).\n");
}

static const pb_model_desc *find_model(const char *name) {
    const pb_model_desc *d = pb_desc_find_any(name);
    if (d) return d;
    fprintf(stderr, "peftbench count: unknown model '%s'; real models:", name);
    for (int i = 0; pb_zoo_at(i); i++) fprintf(stderr, "%s %s", i ? "," : "", pb_zoo_at(i)->name);
    fprintf(stderr, "; runnable presets:");
    for (int i = 0; pb_backbone_at(i); i++) fprintf(stderr, "%s %s", i ? "," : "", pb_backbone_at(i)->name);
    fprintf(stderr, "\n");
    return NULL;
}

static int count_one(const char *model, const char *spec, const char *task, const pb_count_shape *sh) {
    const pb_model_desc *d = find_model(model);
    if (!d) return 1;
    pb_peft p;
    pb_status st = pb_count_attach(&p, d, spec, task);
    if (st) {
        fprintf(stderr, "peftbench count: %s: %s\n", d->name, pb_errmsg());
        return 1;
    }
    size_t tr, all;
    pb_peft_counts(&p, &tr, &all);
    pb_count_hf_line(stdout, tr, all);
    printf("\n");
    pb_count_breakdown(stdout, &p);
    pb_count_cost cost;
    if ((st = pb_count_cost_of(&p, sh, &cost))) {
        fprintf(stderr, "peftbench count: %s: %s\n", d->name, pb_errmsg());
        pb_peft_free(&p);
        return 1;
    }
    pb_count_print_cost(stdout, &cost, sh);
    pb_peft_free(&p);
    return 0;
}

typedef enum { FMT_MD, FMT_TEX, FMT_CSV } fmt;

/* Splits s at sep into at most cap pieces (in place). */
static int split(char *s, char sep, char **out, int cap) {
    int n = 0;
    for (char *t = s; t && n < cap;) {
        char *e = strchr(t, sep);
        if (e) *e = '\0';
        if (*t) out[n++] = t;
        t = e ? e + 1 : NULL;
    }
    return n;
}

static void tex_escape(char *out, size_t cap, const char *s) {
    size_t k = 0;
    for (; *s && k + 3 < cap; s++) {
        if (*s == '_' || *s == '%' || *s == '&' || *s == '#') out[k++] = '\\';
        out[k++] = *s;
    }
    out[k] = '\0';
}

static int count_table(char *models, char *methods, const char *task, fmt f, const pb_count_shape *sh,
                       const char *plot) {
    char *ms[256], *ps[256];
    int nm = split(models, ',', ms, 256), np = split(methods, ';', ps, 256), fail = 0;
    if (!nm || !np) {
        fprintf(stderr, "peftbench count: --models and --methods must name at least one each\n");
        return 2;
    }
    for (int i = 0; i < nm; i++)
        if (!find_model(ms[i])) return 1;
    if (plot) return pb_count_plot(plot, ms, nm, ps, np, task, sh, NULL);
    if (f == FMT_CSV) printf("model,method,base_params,trainable,all,trainable_pct,train_flops_per_token,train_mem_bytes\n");
    else if (f == FMT_TEX)
        printf("\\begin{tabular}{llrrrrrr}\n\\hline\nmodel & method & base params & trainable & all & trainable \\%% "
               "& train FLOPs/token & train memory (GiB) \\\\\n\\hline\n");
    else printf("| model | method | base params | trainable | all | trainable %% | train FLOPs/token | train memory (GiB) "
                "|\n|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < np; j++) {
            const pb_model_desc *d = pb_desc_find_any(ms[i]);
            pb_peft p;
            if (pb_count_attach(&p, d, ps[j], task)) {
                fprintf(stderr, "peftbench count: %s, %s: %s\n", d->name, ps[j], pb_errmsg());
                fail = 1;
                continue;
            }
            size_t tr, all;
            pb_peft_counts(&p, &tr, &all);
            double pct = all ? 100.0 * (double)tr / (double)all : 0.0;
            pb_count_cost cost;
            if (pb_count_cost_of(&p, sh, &cost)) {
                fprintf(stderr, "peftbench count: %s, %s: %s\n", d->name, ps[j], pb_errmsg());
                fail = 1;
                pb_peft_free(&p);
                continue;
            }
            double gb = (double)cost.mem_total / (1024.0 * 1024.0 * 1024.0);
            char a[32], b[32], c[32];
            if (f == FMT_CSV) {
                printf("%s,\"%s\",%zu,%zu,%zu,%.4f,%.6g,%zu\n", d->name, ps[j], p.n_base_params, tr, all, pct,
                       cost.train_total, cost.mem_total);
            } else if (f == FMT_TEX) {
                char em[128], ep[512];
                tex_escape(em, sizeof em, d->name);
                tex_escape(ep, sizeof ep, ps[j]);
                printf("%s & \\texttt{%s} & %s & %s & %s & %.4f & %.4g & %.3f \\\\\n", em, ep,
                       pb_fmt_count(a, sizeof a, p.n_base_params), pb_fmt_count(b, sizeof b, tr),
                       pb_fmt_count(c, sizeof c, all), pct, cost.train_total, gb);
            } else {
                printf("| %s | `%s` | %s | %s | %s | %.4f | %.4g | %.3f |\n", d->name, ps[j],
                       pb_fmt_count(a, sizeof a, p.n_base_params), pb_fmt_count(b, sizeof b, tr),
                       pb_fmt_count(c, sizeof c, all), pct, cost.train_total, gb);
            }
            pb_peft_free(&p);
        }
    if (f == FMT_TEX) printf("\\hline\n\\end{tabular}\n");
    return fail;
}

int pb_cmd_count(pb_args *a) {
    const char *model = NULL, *method = NULL, *models = NULL, *methods = NULL, *task = NULL, *format = "md", *v;
    const char *seq = NULL, *batch = NULL, *prec = "fp32", *plot = NULL;
    int r;
    while (a->i < a->argc) {
        const char *arg = a->argv[a->i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            count_usage(stdout);
            return 0;
        }
        if ((r = pb_args_opt(a, "--model", 1, &v)) > 0) model = v;
        else if (r == 0 && (r = pb_args_opt(a, "--method", 1, &v)) > 0) method = v;
        else if (r == 0 && (r = pb_args_opt(a, "--models", 1, &v)) > 0) models = v;
        else if (r == 0 && (r = pb_args_opt(a, "--methods", 1, &v)) > 0) methods = v;
        else if (r == 0 && (r = pb_args_opt(a, "--task-type", 1, &v)) > 0) task = v;
        else if (r == 0 && (r = pb_args_opt(a, "--format", 1, &v)) > 0) format = v;
        else if (r == 0 && (r = pb_args_opt(a, "--plot", 1, &v)) > 0) plot = v;
        else if (r == 0 && (r = pb_args_opt(a, "--seq", 1, &v)) > 0) seq = v;
        else if (r == 0 && (r = pb_args_opt(a, "--batch", 1, &v)) > 0) batch = v;
        else if (r == 0 && (r = pb_args_opt(a, "--precision", 1, &v)) > 0) prec = v;
        else if (r == 0) {
            fprintf(stderr, "peftbench count: unknown option '%s'\n", arg);
            count_usage(stderr);
            return 2;
        }
        if (r < 0) return 2;
    }
    fmt f;
    if (!strcmp(format, "md")) f = FMT_MD;
    else if (!strcmp(format, "tex")) f = FMT_TEX;
    else if (!strcmp(format, "csv")) f = FMT_CSV;
    else {
        fprintf(stderr, "peftbench count: --format '%s' is not one of md, tex, csv\n", format);
        return 2;
    }
    pb_count_shape sh = {.batch = 1, .seq = 0};
    char *end;
    if (seq && ((sh.seq = (int)strtol(seq, &end, 10)) < 1 || *end || sh.seq > 1 << 20)) {
        fprintf(stderr, "peftbench count: --seq '%s' is not an integer in [1, 1048576]\n", seq);
        return 2;
    }
    if (batch && ((sh.batch = (int)strtol(batch, &end, 10)) < 1 || *end || sh.batch > 1 << 20)) {
        fprintf(stderr, "peftbench count: --batch '%s' is not an integer in [1, 1048576]\n", batch);
        return 2;
    }
    if (pb_precision_parse(prec, &sh.prec)) {
        fprintf(stderr, "peftbench count: %s\n", pb_errmsg());
        return 2;
    }
    if (model && method && !models && !methods && !plot) return count_one(model, method, task, &sh);
    if ((models || model) && (methods || method) ) {
        char mb[4096], pb[8192];
        snprintf(mb, sizeof mb, "%s", models ? models : model);
        snprintf(pb, sizeof pb, "%s", methods ? methods : method);
        return count_table(mb, pb, task, f, &sh, plot);
    }
    fprintf(stderr, "peftbench count: give --model and --method (or --models and --methods)\n");
    count_usage(stderr);
    return 2;
}
