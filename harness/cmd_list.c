/* cmd_list.c — `peftbench list backbones | methods [NAME] [--tsv]`: what can be run. */
#include "commands.h"
#include "methods/method.h"
#include "methods/peft.h"
#include "models/desc.h"
#include "models/model.h"
#include "models/pretrain.h"
#include "report.h"
#include "tasks/task.h"

#include <stdio.h>
#include <string.h>

#define PB_XSTR(x) #x
#define PB_STR(x) PB_XSTR(x)

static void list_usage(FILE *f) {
    fprintf(f, "usage: peftbench list backbones [--data-dir DIR]   presets, and the cached default backbone\n"
               "       peftbench list models [--tsv]      real foundation models (shape-only, for peftbench count)\n"
               "       peftbench list methods [--tsv]     one line per method: name, category, summary\n"
               "       peftbench list methods NAME        its hyperparameters, defaults and examples\n"
               "       peftbench list tasks [--data-dir DIR] [--tsv]   name, kind, sizes, metric, data present\n");
}

static int list_backbones(const char *data_dir_flag) {
    printf("%-10s %-6s %-8s %6s %6s %8s %6s %8s %14s\n", "name", "family", "arch", "layers", "d", "heads", "d_ff",
           "max_seq", "params (LM)");
    for (int i = 0; pb_backbone_at(i); i++) {
        const pb_model_desc *d = pb_backbone_at(i);
        size_t n;
        char buf[32], heads[24];
        pb_model_layout(d, PB_HEAD_LM, 0, NULL, &n);
        if (d->n_kv_head != d->n_head) snprintf(heads, sizeof heads, "%d/%d", d->n_head, d->n_kv_head);
        else snprintf(heads, sizeof heads, "%d", d->n_head);
        const char *fam = pb_model_family(d);
        printf("%-10s %-6s %-8s %6d %6d %8s %6d %8d %14s\n", d->name, fam ? fam : "?", d->causal ? "decoder" : "encoder",
               d->n_layer, d->d_model, heads, d->d_ff, d->max_seq, pb_fmt_count(buf, sizeof buf, n));
    }
    printf("\nheads: query/key-value heads where they differ (grouped-query attention); params with the byte\n"
           "tokenizer's vocabulary (a BPE checkpoint's embeddings and untied head are larger)\n");
    /* `default`: a name that run, sweep specs and score accept, for a pretrained checkpoint */
    char dd[1024], path[1100];
    static const char *const state[] = {"cached", "interrupted: resumed when first used",
                                        "not cached: pretrained when first used", "unreadable: delete it"};
    if (pb_data_dir(data_dir_flag, dd, sizeof dd) == PB_OK && pb_default_backbone_file(dd, path, sizeof path) == PB_OK)
        printf("\ndefault    the pretrained default backbone: %s (%s steps, %s), %s\n           %s\n",
               PB_DEFAULT_BACKBONE, PB_STR(PB_DEFAULT_STEPS), PB_DEFAULT_TOKENIZER,
               state[pb_default_backbone_state(path)], path);
    return 0;
}

static const char *arch_name(const pb_model_desc *d) {
    switch (d->arch) {
    case PB_ARCH_DECODER: return "decoder";
    case PB_ARCH_ENCODER: return "encoder";
    case PB_ARCH_ENCDEC: return "enc-dec";
    case PB_ARCH_VISION: return "vision";
    }
    return "?";
}

/* Real models (shape-only): their total as published, computed from the layout. */
static int list_models(int tsv) {
    if (tsv) printf("name\ttype\tarch\tlayers\td_model\theads\tkv_heads\td_ff\tvocab\tparams\n");
    else
        printf("%-22s %-8s %-8s %6s %6s %6s %4s %6s %7s %16s\n", "name", "type", "arch", "layers", "d", "heads", "kv",
               "d_ff", "vocab", "params");
    for (int i = 0; pb_zoo_at(i); i++) {
        const pb_model_desc *d = pb_zoo_at(i);
        size_t n;
        char buf[32], layers[16];
        pb_model_layout(d, (pb_head_kind)d->own_head, d->own_labels, NULL, &n);
        if (d->arch == PB_ARCH_ENCDEC) snprintf(layers, sizeof layers, "%d+%d", d->n_enc_layer, d->n_layer - d->n_enc_layer);
        else snprintf(layers, sizeof layers, "%d", d->n_layer);
        if (tsv)
            printf("%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%zu\n", d->name, d->names->type, arch_name(d), layers,
                   d->d_model, d->n_head, d->n_kv_head, d->d_ff, d->vocab, n);
        else
            printf("%-22s %-8s %-8s %6s %6d %6d %4d %6d %7d %16s\n", d->name, d->names->type, arch_name(d), layers,
                   d->d_model, d->n_head, d->n_kv_head, d->d_ff, d->vocab, pb_fmt_count(buf, sizeof buf, n));
    }
    return 0;
}

static int list_tasks(pb_args *a) {
    const char *dir = NULL, *v;
    int tsv = 0, r;
    while (a->i < a->argc) {
        if ((r = pb_args_opt(a, "--data-dir", 1, &v)) > 0) dir = v;
        else if (r == 0 && (r = pb_args_opt(a, "--tsv", 0, NULL)) > 0) tsv = 1;
        else if (r == 0) {
            fprintf(stderr, "peftbench list tasks: unknown option '%s'\n", a->argv[a->i]);
            return 2;
        }
        if (r < 0) return 2;
    }
    pb_task_entry e[256];
    size_t n = pb_task_list(dir, e, 256);
    if (n > 256) n = 256;
    if (tsv) printf("name\tfamily\tkind\ttrain\tdev\ttest\tmetric\tdata\n");
    else printf("%-22s %-10s %-9s %8s %7s %7s %-9s %s\n", "name", "family", "kind", "train", "dev", "test", "metric", "data");
    for (size_t i = 0; i < n; i++) {
        char sz[3][24];
        for (int k = 0; k < 3; k++) {
            if (e[i].n[k] < 0) snprintf(sz[k], sizeof sz[k], "-");
            else snprintf(sz[k], sizeof sz[k], "%lld", e[i].n[k]);
        }
        const char *data = e[i].present > 0                   ? "present"
                           : e[i].present < 0                 ? "n/a"
                           : !strcmp(e[i].family, "glue")     ? "not found (add dir=PATH to the GLUE TSVs)"
                                                              : "missing (peftbench data fetch)";
        if (tsv)
            printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e[i].name, e[i].family, pb_task_kind_name(e[i].kind), sz[0], sz[1],
                   sz[2], pb_metric_key(e[i].metric), data);
        else
            printf("%-22s %-10s %-9s %8s %7s %7s %-9s %s\n", e[i].name, e[i].family, pb_task_kind_name(e[i].kind), sz[0],
                   sz[1], sz[2], pb_metric_key(e[i].metric), data);
    }
    return 0;
}

static const char *type_name(pb_hp_type t) {
    switch (t) {
    case PB_HP_INT: return "int";
    case PB_HP_FLOAT: return "float";
    case PB_HP_BOOL: return "bool";
    case PB_HP_ENUM: return "choice";
    case PB_HP_SITES: return "sites";
    case PB_HP_TEXT: return "text";
    }
    return "?";
}

static int list_method(const char *name) {
    const pb_method *m = pb_method_find(name);
    if (!m) {
        pb_hp_values v;
        const pb_method *dummy;
        pb_peft_parse(name, &dummy, &v); /* for the message listing the methods */
        fprintf(stderr, "peftbench list methods: %s\n", pb_errmsg());
        return 2;
    }
    printf("%s (%s): %s\npaper: %s\n", m->name, pb_category_name(m->category), m->summary, m->paper);
    if (!m->n_hparams) printf("no hyperparameters\n");
    for (int i = 0; i < m->n_hparams; i++) {
        const pb_hparam *h = &m->hparams[i];
        printf("  %-22s %-6s default %-14s", h->key, type_name(h->type), h->def[0] ? h->def : "(none)");
        if (h->type == PB_HP_INT || h->type == PB_HP_FLOAT) printf(" range [%g, %g]", h->lo, h->hi);
        if (h->type == PB_HP_ENUM) printf(" one of %s", h->choices);
        printf("\n  %-22s %s%s%s\n", "", h->help, h->aliases ? "; also: " : "", h->aliases ? h->aliases : "");
    }
    if (m->examples) {
        printf("examples:\n");
        for (int k = 0; m->examples[k]; k++) printf("  %s\n", m->examples[k]);
    }
    printf("merge into the base weights: %s\n", m->merge ? "yes, unless an option rules it out (a gate is data-dependent)" : "no");
    return 0;
}

int pb_cmd_list(pb_args *a) {
    const char *what = a->i < a->argc ? a->argv[a->i++] : "backbones";
    if (!strcmp(what, "--help") || !strcmp(what, "-h")) {
        list_usage(stdout);
        return 0;
    }
    if (!strcmp(what, "backbones")) {
        const char *dd = NULL;
        if (a->i + 1 < a->argc && !strcmp(a->argv[a->i], "--data-dir")) dd = a->argv[a->i + 1];
        return list_backbones(dd);
    }
    if (!strcmp(what, "tasks")) return list_tasks(a);
    if (!strcmp(what, "models")) return list_models(a->i < a->argc && !strcmp(a->argv[a->i], "--tsv"));
    if (!strcmp(what, "methods")) {
        int tsv = 0;
        const char *name = NULL;
        for (; a->i < a->argc; a->i++) {
            if (!strcmp(a->argv[a->i], "--tsv")) tsv = 1;
            else if (a->argv[a->i][0] == '-') {
                fprintf(stderr, "peftbench list methods: unknown option '%s'\n", a->argv[a->i]);
                return 2;
            } else name = a->argv[a->i];
        }
        if (name) return list_method(name);
        if (tsv) printf("name\tcategory\tsummary\n");
        for (int i = 0; i < pb_method_count(); i++) {
            const pb_method *m = pb_method_at(i);
            if (tsv) printf("%s\t%s\t%s\n", m->name, pb_category_name(m->category), m->summary);
            else printf("%-16s %-19s %s\n", m->name, pb_category_name(m->category), m->summary);
        }
        return 0;
    }
    fprintf(stderr, "peftbench list: unknown list '%s' (accepted: backbones, models, methods, tasks)\n", what);
    list_usage(stderr);
    return 2;
}
