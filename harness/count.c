/* count.c — shape-only counting and its printing (see count.h, docs/COUNT.md). */
#include "count.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

static const char *head_name(pb_head_kind h) {
    switch (h) {
    case PB_HEAD_LM: return "LM head";
    case PB_HEAD_CLS: return "classification head";
    case PB_HEAD_TOKCLS: return "token-classification head";
    case PB_HEAD_NONE: return "no head";
    }
    return "?";
}

pb_status pb_count_task_type(const pb_model_desc *d, const char *type, pb_head_kind *head, int *n_labels) {
    *n_labels = 0;
    if (!type || !*type) {
        *head = (pb_head_kind)d->own_head;
        *n_labels = d->own_labels;
        return PB_OK;
    }
    const char *colon = strchr(type, ':');
    size_t len = colon ? (size_t)(colon - type) : strlen(type);
    int vision = d->arch == PB_ARCH_VISION, encdec = d->arch == PB_ARCH_ENCDEC;
    const char *accepted = vision ? "image-cls:N"
                           : encdec ? "seq2seq, seq-cls:N"
                           : d->causal ? "causal-lm, seq-cls:N, token-cls:N"
                                       : "seq-cls:N, token-cls:N (or nothing: the bare encoder, as published)";
#define IS(name) (len == strlen(name) && !strncmp(type, name, len))
    int ok;
    if (IS("causal-lm")) *head = PB_HEAD_LM, ok = d->arch == PB_ARCH_DECODER;
    else if (IS("seq2seq")) *head = PB_HEAD_LM, ok = encdec;
    else if (IS("seq-cls")) *head = PB_HEAD_CLS, ok = !vision;
    else if (IS("token-cls")) *head = PB_HEAD_TOKCLS, ok = !vision && !encdec;
    else if (IS("image-cls")) *head = PB_HEAD_CLS, ok = vision;
    else
        return pb_errorf(PB_EINVAL,
                         "--task-type '%s' is not one of causal-lm, seq2seq, seq-cls:N, token-cls:N, image-cls:N", type);
#undef IS
    if (!ok) return pb_errorf(PB_EINVAL, "--task-type '%s' does not fit %s (it accepts: %s)", type, d->name, accepted);
    if (*head == PB_HEAD_LM) {
        if (colon) return pb_errorf(PB_EINVAL, "--task-type '%s': %.*s takes no label count", type, (int)len, type);
        return PB_OK;
    }
    char *end;
    long n = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || end == colon + 1 || *end || n < 1 || n > 1000000)
        return pb_errorf(PB_EINVAL, "--task-type '%s' needs a label count: %.*s:N with N in [1, 1000000]", type, (int)len,
                         type);
    *n_labels = (int)n;
    return PB_OK;
}

pb_status pb_count_attach(pb_peft *p, const pb_model_desc *d, const char *spec, const char *task_type) {
    pb_head_kind head = PB_HEAD_LM;
    int K;
    pb_status st = pb_count_task_type(d, task_type, &head, &K);
    if (st) return st;
    return pb_peft_create(p, spec, d, head, K, NULL, 0);
}

void pb_count_hf_line(FILE *f, size_t trainable, size_t all) {
    char a[32], b[32];
    fprintf(f, "trainable params: %s || all params: %s || trainable%%: %.4f\n", pb_fmt_count(a, sizeof a, trainable),
            pb_fmt_count(b, sizeof b, all), all ? 100.0 * (double)trainable / (double)all : 0.0);
}

/* ---- breakdown ------------------------------------------------------------------------------ */

typedef struct {
    char pattern[112];
    pb_site site;
    int d0, d1, n;
    size_t numel;
    const char *what;
} row;

/* The tensor's name with its block number replaced by '*'. */
static void pattern_of(const pb_model_desc *d, const pb_tensor *t, char *out, size_t cap) {
    snprintf(out, cap, "%s", t->name);
    if (t->layer < 0) return;
    int in_stack = pb_desc_is_dec_block(d, t->layer) ? t->layer - d->n_enc_layer : t->layer;
    char needle[24];
    snprintf(needle, sizeof needle, ".%d.", in_stack);
    char *at = strstr(out, needle);
    if (!at && !strncmp(out, needle + 1, strlen(needle + 1))) at = out - 1; /* "h.3." at the start */
    if (!at) return;
    char rest[112];
    snprintf(rest, sizeof rest, "%s", at + strlen(needle));
    snprintf(at + 1, cap - (size_t)(at + 1 - out), "*.%s", rest);
}

static int add_row(row *rows, int n, const pb_model_desc *d, const pb_tensor *t, const char *what) {
    char pat[112];
    pattern_of(d, t, pat, sizeof pat);
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].pattern, pat) && rows[i].d0 == t->shape[0] && rows[i].d1 == t->shape[1] &&
            rows[i].what == what) {
            rows[i].n++;
            rows[i].numel += t->numel;
            return n;
        }
    row *r = &rows[n];
    snprintf(r->pattern, sizeof r->pattern, "%s", pat);
    r->site = t->site;
    r->d0 = t->shape[0];
    r->d1 = t->shape[1];
    r->n = 1;
    r->numel = t->numel;
    r->what = what;
    return n + 1;
}

void pb_count_breakdown(FILE *f, const pb_peft *p) {
    int cap = p->n_base + p->n_params + 1, n = 0;
    row *rows = calloc((size_t)cap, sizeof *rows);
    if (!rows) return;
    for (int i = 0; i < p->n_base; i++)
        if (p->unfrozen[i])
            n = add_row(rows, n, p->d, &p->base[i],
                        p->unfrozen[i] == 2 && !p->ctx[0]->method->not_peft ? "base, trained copy" : "base, trained");
    for (int i = 0; i < p->n_params; i++)
        n = add_row(rows, n, p->d, &p->params[i], p->params[i].trainable ? "added" : "added buffer (not counted)");
    fprintf(f, "%-10s %-60s %-13s %5s %15s  %s\n", "site", "tensor", "shape", "count", "params", "kind");
    for (int i = 0; i < n; i++) {
        char shape[32], num[32];
        if (rows[i].d1) snprintf(shape, sizeof shape, "%d x %d", rows[i].d0, rows[i].d1);
        else snprintf(shape, sizeof shape, "%d", rows[i].d0);
        fprintf(f, "%-10s %-60s %-13s %5d %15s  %s\n", pb_site_name(rows[i].site), rows[i].pattern, shape, rows[i].n,
                pb_fmt_count(num, sizeof num, rows[i].numel), rows[i].what);
    }
    if (!n) fprintf(f, "(no tensor trains)\n");
    size_t tr, all;
    pb_peft_counts(p, &tr, &all);
    char a[32], b[32], c[32];
    fprintf(f, "base model %s (%s): %s params; with the method: %s trainable, %s all\n", p->d->name,
            head_name(p->head), pb_fmt_count(a, sizeof a, p->n_base_params), pb_fmt_count(b, sizeof b, tr),
            pb_fmt_count(c, sizeof c, all));
    free(rows);
}

/* ---- FLOPs and memory ----------------------------------------------------------------------- */

int pb_count_seq(const pb_model_desc *d, int seq) {
    if (seq <= 0) seq = d->names ? 512 : d->max_seq;
    if (d->arch == PB_ARCH_VISION) return d->max_seq; /* the patches and the class token */
    return seq > d->max_seq ? d->max_seq : seq;
}

pb_status pb_count_cost_of(const pb_peft *p, const pb_count_shape *sh, pb_count_cost *out) {
    memset(out, 0, sizeof *out);
    int T = pb_count_seq(p->d, sh->seq), B = sh->batch > 0 ? sh->batch : 1;
    out->seq = T;
    out->batch = B;
    double tok = (double)B * T;
    pb_flops f;
    pb_status st = pb_peft_flops(p, B, T, 1, 0, &f);
    if (st) return st;
    for (int ph = 0; ph < PB_NPHASE; ph++)
        for (int k = 0; k < PB_NKIND; k++) out->train[ph][k] = (double)f.n[ph][k] / tok;
    out->train_total = (double)pb_flops_total(&f) / tok;
    if ((st = pb_peft_flops(p, B, T, 0, 0, &f))) return st;
    out->infer = (double)pb_flops_total(&f) / tok;
    out->infer_merged = -1;
    if (pb_peft_mergeable(p) && pb_peft_flops(p, B, T, 0, 1, &f) == PB_OK) out->infer_merged = (double)pb_flops_total(&f) / tok;
    if ((st = pb_peft_mem(p, B, T, sh->prec, out->mem))) return st;
    for (int c = 0; c < PB_MEM_NCAT; c++) out->mem_total += out->mem[c];
    return PB_OK;
}

static const char *gib(char *buf, size_t cap, size_t bytes) {
    snprintf(buf, cap, "%.3f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

void pb_count_print_cost(FILE *f, const pb_count_cost *c, const pb_count_shape *sh) {
    static const char *prec[] = {"fp32", "bf16", "fp16"};
    fprintf(f, "\nFLOPs per token (sequence %d, batch %d; kernel rules of core/kernels.h, docs/COUNT.md):\n", c->seq,
            c->batch);
    fprintf(f, "  %-22s %14s %14s %14s\n", "training", "matmul", "other", "total");
    for (int ph = 0; ph < PB_NPHASE; ph++)
        fprintf(f, "  %-22s %14.4g %14.4g %14.4g\n", pb_phase_key((pb_phase)ph), c->train[ph][PB_KIND_MATMUL],
                c->train[ph][PB_KIND_OTHER], c->train[ph][PB_KIND_MATMUL] + c->train[ph][PB_KIND_OTHER]);
    fprintf(f, "  %-22s %14s %14s %14.4g\n", "training step", "", "", c->train_total);
    fprintf(f, "  %-22s %14s %14s %14.4g\n", "inference", "", "", c->infer);
    if (c->infer_merged >= 0) fprintf(f, "  %-22s %14s %14s %14.4g\n", "inference, merged", "", "", c->infer_merged);
    else fprintf(f, "  %-22s %14s %14s %14s\n", "inference, merged", "", "", "(cannot merge)");
    fprintf(f, "\nTraining memory (batch %d, sequence %d, %s weights; AdamW; docs/COUNT.md):\n", c->batch, c->seq,
            prec[sh->prec]);
    char b[32];
    for (int k = 0; k < PB_MEM_NCAT; k++)
        if (k != PB_MEM_OTHER) fprintf(f, "  %-10s %14s  %s\n", pb_mem_cat_key((pb_mem_cat)k), gib(b, sizeof b, c->mem[k]),
                                       pb_mem_cat_desc((pb_mem_cat)k));
    fprintf(f, "  %-10s %14s\n", "total", gib(b, sizeof b, c->mem_total));
}
