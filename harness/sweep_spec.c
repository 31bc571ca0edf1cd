/* sweep_spec.c — sweep specs: INI parsing (inih), validation, expansion into cells (sweep.h).
 *
 * The format is documented in experiments/README.md. inih calls a handler per key = value
 * line; our line reader counts lines (inih's handler does not get them in Debian's build) and
 * refuses lines longer than inih's 200-byte buffer instead of letting inih split them. All
 * entries are collected first, then interpreted, so every error can name FILE:LINE and key.
 */
#include "sweep.h"
#include "cli.h"
#include "prepare.h"

#include <ctype.h>
#include <errno.h>
#include <hdf5.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include "methods/peft.h"
#include "models/checkpoint.h"
#include "models/corpus_load.h"
#include "models/desc.h"
#include "models/pretrain.h"
#include "tasks/reference.h"
#include "tasks/task.h"

#define MAX_CELLS 1000000

/* ---- canonical forms ------------------------------------------------------------------------- */

/* The shortest "%.Pg" text (P = 1..maxp) that reads back as v (as a float when f32). */
static void canon_real(double v, int f32, char *out, size_t cap) {
    char best[64] = "", buf[64];
    for (int p = 1; p <= (f32 ? 9 : 17); p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        int same = f32 ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v;
        if (same && (!best[0] || strlen(buf) < strlen(best))) snprintf(best, sizeof best, "%s", buf);
    }
    snprintf(out, cap, "%s", best);
}

void pb_sweep_canon_float(double v, char *out, size_t cap) { canon_real(v, 0, out, cap); }
void pb_sweep_canon_f32(float v, char *out, size_t cap) { canon_real((double)v, 1, out, cap); }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

pb_status pb_sweep_canon_method(const char *spec, char *out, size_t cap) {
    const pb_method *m;
    pb_hp_values v;
    pb_status st = pb_peft_parse(spec, &m, &v);
    if (st) return st;
    size_t n = (size_t)snprintf(out, cap, "%s", m->name);
    for (int i = 0; i < m->n_hparams && n < cap; i++) {
        const pb_hparam *h = &m->hparams[i];
        char val[PB_HP_TEXT_MAX + 64] = "";
        switch (h->type) {
        case PB_HP_INT: snprintf(val, sizeof val, "%ld", (long)v.num[i]); break;
        case PB_HP_FLOAT: pb_sweep_canon_float(v.num[i], val, sizeof val); break;
        case PB_HP_BOOL: snprintf(val, sizeof val, "%d", v.num[i] != 0); break;
        case PB_HP_ENUM: {
            const char *a = h->choices;
            for (int k = 0; a && *a; k++) {
                const char *e = strchr(a, '|');
                size_t len = e ? (size_t)(e - a) : strlen(a);
                if (k == (int)v.num[i]) {
                    snprintf(val, sizeof val, "%.*s", (int)len, a);
                    break;
                }
                a = e ? e + 1 : NULL;
            }
            break;
        }
        case PB_HP_SITES: {
            /* Each name as written, except that an alias of exactly one site becomes that site's
             * canonical name; then sorted and deduplicated. Multi-site aliases (c_proj) and
             * all-linear stay as written: methods validate names one by one against the model
             * (pb_ctx_sites), so expanding them would change what a spec means. */
            char buf[PB_HP_TEXT_MAX + 1], *tok[64];
            int nt = 0;
            snprintf(buf, sizeof buf, "%s", v.raw[i]);
            for (char *save = NULL, *t = strtok_r(buf, "+", &save); t && nt < 64; t = strtok_r(NULL, "+", &save)) {
                uint32_t m = pb_site_lookup(t);
                if (m && !(m & (m - 1))) {
                    int site = 0;
                    while (!(m & (1u << site))) site++;
                    t = (char *)pb_site_name((pb_site)site);
                }
                tok[nt++] = t;
            }
            qsort(tok, (size_t)nt, sizeof tok[0], cmp_str);
            size_t k = 0;
            for (int j = 0; j < nt; j++)
                if (!j || strcmp(tok[j], tok[j - 1]))
                    k += (size_t)snprintf(val + k, sizeof val - k, "%s%s", k ? "+" : "", tok[j]);
            break;
        }
        case PB_HP_TEXT: snprintf(val, sizeof val, "%s", v.raw[i]); break;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", i ? "," : ":", h->key, val);
    }
    if (n >= cap) return pb_errorf(PB_EINVAL, "method spec '%s' is too long in canonical form", spec);
    return PB_OK;
}

void pb_sweep_canon_task(const char *spec, char *out, size_t cap) {
    const char *colon = strchr(spec, ':');
    if (!colon) {
        snprintf(out, cap, "%s", spec);
        return;
    }
    char buf[PB_RES_SPEC * 2];
    snprintf(buf, sizeof buf, "%s", colon + 1);
    char *items[64];
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save)) items[n++] = t;
    /* a positional item (no '=') stays first; the key=value items are sorted by key */
    int first = n > 0 && !strchr(items[0], '=');
    qsort(items + first, (size_t)(n - first), sizeof items[0], cmp_str);
    size_t k = (size_t)snprintf(out, cap, "%.*s", (int)(colon - spec), spec);
    for (int i = 0; i < n && k < cap; i++) k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : ":", items[i]);
}

/* ---- INI collection ---------------------------------------------------------------------------- */

typedef struct {
    char section[96];
    char key[64];
    char *value;
    int line;
} entry;

typedef struct {
    char name[96];
    int line;
} header;

typedef struct {
    FILE *f;
    const char *path;
    int line;
    int too_long; /* line number of the first over-long line */
    header *h;    /* section headers in file order (inih does not report sections without keys) */
    int n_h, cap_h;
    entry *e;
    int n, cap;
    int oom;
} collector;

static char *read_line(char *str, int num, void *stream) {
    collector *c = stream;
    if (c->too_long) return NULL;
    char *r = fgets(str, num, c->f);
    if (!r) return NULL;
    c->line++;
    size_t len = strlen(str);
    if (len == (size_t)num - 1 && str[len - 1] != '\n' && !feof(c->f)) {
        c->too_long = c->line;
        return NULL;
    }
    const char *p = str;
    if (c->line == 1 && !strncmp(p, "\xef\xbb\xbf", 3)) p += 3; /* a UTF-8 BOM */
    while (*p == ' ' || *p == '\t') p++;
    const char *end = *p == '[' ? strchr(p, ']') : NULL;
    if (end) {
        if (c->n_h == c->cap_h) {
            int cap = c->cap_h ? 2 * c->cap_h : 16;
            header *h = realloc(c->h, sizeof *h * (size_t)cap);
            if (!h) return c->oom = 1, NULL;
            c->h = h;
            c->cap_h = cap;
        }
        header *h = &c->h[c->n_h++];
        /* inih passes the text between the brackets as it is; entries match on that */
        snprintf(h->name, sizeof h->name, "%.*s", (int)(end - p - 1), p + 1);
        h->line = c->line;
    }
    return r;
}

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    collector *c = user;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        entry *p = realloc(c->e, sizeof *p * (size_t)cap);
        if (!p) return c->oom = 1, 0;
        c->e = p;
        c->cap = cap;
    }
    entry *e = &c->e[c->n];
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->key, sizeof e->key, "%s", name);
    e->value = strdup(value);
    e->line = c->line;
    if (!e->value) return c->oom = 1, 0;
    c->n++;
    return 1;
}

static void collector_free(collector *c) {
    for (int i = 0; i < c->n; i++) free(c->e[i].value);
    free(c->e);
    free(c->h);
}

/* ---- interpretation ----------------------------------------------------------------------------- */

typedef struct {
    char *s; /* points into an entry's value (tokenised in place) */
    int line;
} item;

typedef struct {
    item *it;
    int n, cap;
} list;

static int list_push(list *l, char *s, int line) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        item *p = realloc(l->it, sizeof *p * (size_t)cap);
        if (!p) return 0;
        l->it = p;
        l->cap = cap;
    }
    l->it[l->n].s = s;
    l->it[l->n++].line = line;
    return 1;
}

/* Splits an entry's value on whitespace into l. */
static int list_add_value(list *l, entry *e) {
    for (char *save = NULL, *t = strtok_r(e->value, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        if (!list_push(l, t, e->line)) return 0;
    return 1;
}

typedef struct {
    char key[64];
    list vals;
    int line;
} hp_key;

typedef struct {
    char name[80]; /* section label */
    char method[64];
    int line, method_line;
    hp_key *keys;
    int n_keys, cap_keys;
    list lrs;
    int has_lrs;
} msection;

typedef struct {
    const char *path;
    pb_status st;
} ctx;

static pb_status spec_err(const ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pb_status spec_err(const ctx *c, int line, const char *fmt, ...) {
    char msg[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0) return pb_errorf(PB_EINVAL, "%s:%d: %s", c->path, line, msg);
    return pb_errorf(PB_EINVAL, "%s: %s", c->path, msg);
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* The [sweep] keys: name, kind (0 scalar text, 1 list, 2 int, 3 float), bounds, help. */
typedef struct {
    const char *key;
    int kind;
    double lo, hi;
} sweep_key;

static const sweep_key g_sweep_keys[] = {
    {"name", 0, 0, 0},          {"backbones", 1, 0, 0},     {"tasks", 1, 0, 0},
    {"lrs", 1, 0, 0},           {"seeds", 1, 0, 0},         {"steps", 2, 1, 1e8},
    {"batch", 2, 1, 4096},      {"max_len", 2, 4, 1 << 20}, {"eval_every", 2, 0, 1e8},
    {"eval_max", 2, 0, 1e8},    {"gen_max", 2, 0, 100000},  {"weight_decay", 3, 0, 10},
    {"warmup_frac", 3, 0, 1},   {"clip", 3, 0, 1e6},        {"schedule", 0, 0, 0},
    {"forgetting", 0, 0, 0},    {"forgetting_tokens", 2, 64, 1e9}, {"data_dir", 0, 0, 0},
    {"threads", 2, 0, 1024},    {"methods", 0, 0, 0},       {"references", 1, 0, 0},
    {"lr_protocol", 0, 0, 0},   {"group_by_length", 2, 0, 1},
};
#define N_SWEEP_KEYS (int)(sizeof g_sweep_keys / sizeof g_sweep_keys[0])

static int sweep_key_index(const char *key) {
    for (int i = 0; i < N_SWEEP_KEYS; i++)
        if (!strcmp(g_sweep_keys[i].key, key)) return i;
    return 0;
}

static const char *sweep_keys_list(void) {
    static char buf[512];
    if (!buf[0]) {
        size_t k = 0;
        for (int i = 0; i < N_SWEEP_KEYS; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", g_sweep_keys[i].key);
    }
    return buf;
}

/* Identity of a checkpoint for the configuration string: its parameter checksum attribute
 * (models/CHECKPOINT.md), which does not depend on where the file lives. */
static pb_status ckpt_identity(const char *path, char *out, size_t cap) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return pb_errorf(PB_EFORMAT, "%s: cannot open as HDF5", path);
    uint64_t sum = 0;
    int ok = 0;
    hid_t g = H5Gopen2(f, "params", H5P_DEFAULT);
    if (g >= 0) {
        if (H5Aexists(g, "checksum") > 0) {
            hid_t a = H5Aopen(g, "checksum", H5P_DEFAULT);
            ok = a >= 0 && H5Aread(a, H5T_NATIVE_UINT64, &sum) >= 0;
            if (a >= 0) H5Aclose(a);
        }
        H5Gclose(g);
    }
    H5Fclose(f);
    if (!ok) return pb_errorf(PB_EFORMAT, "%s: no /params checksum attribute (not a peftbench checkpoint?)", path);
    snprintf(out, cap, "ckpt:%016llx", (unsigned long long)sum);
    return PB_OK;
}

typedef struct {
    char spec[PB_RES_SPEC]; /* as written */
    char path[PB_RES_SPEC]; /* preset name or checkpoint path */
    char name[PB_RES_NAME];
    char ident[96];
    pb_model_desc desc;
} backbone;

pb_status pb_sweep_default_backbone(const char *data_dir, int threads, char *out, size_t cap) {
    /* Pretraining runs OpenMP code; a sweep forks its cells afterwards, and libgomp does not
     * survive a fork once its thread pool exists. So the (possibly long) pretraining happens in
     * a child process; the parent then finds the finished file (a fast path that only reads
     * the checkpoint header). */
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return pb_errorf(PB_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* killed with the sweep; its periodic checkpoints resume */
#endif
        char path[1100];
        long last = -1;
        pb_set_threads(threads);
        pb_status st = pb_default_backbone_path(data_dir, threads, path, sizeof path, pb_pretrain_progress_lines, &last);
        if (st) fprintf(stderr, "peftbench: %s\n", pb_errmsg());
        _exit(st ? 1 : 0);
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        if (errno != EINTR) return pb_errorf(PB_EIO, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return pb_errorf(PB_EIO, "could not find or pretrain the default backbone in %s/backbones (see the message "
                                 "above)", data_dir);
    return pb_default_backbone_path(data_dir, threads, out, cap, NULL, NULL);
}

static pb_status resolve_backbone(const ctx *c, const item *it, const char *data_dir, backbone *b) {
    memset(b, 0, sizeof *b);
    if (strlen(it->s) >= sizeof b->spec) return spec_err(c, it->line, "backbones: '%s' is too long", it->s);
    snprintf(b->spec, sizeof b->spec, "%s", it->s);
    const pb_model_desc *d = pb_backbone_find(it->s);
    if (d) {
        snprintf(b->path, sizeof b->path, "%s", it->s);
        snprintf(b->name, sizeof b->name, "%s", it->s);
        snprintf(b->ident, sizeof b->ident, "preset:%s", it->s);
        b->desc = *d;
        return PB_OK;
    }
    char path[1100];
    if (!strcmp(it->s, "default")) {
        pb_status st = pb_sweep_default_backbone(data_dir, 0, path, sizeof path);
        if (st) return spec_err(c, it->line, "backbones: default: %s", pb_errmsg());
    } else {
        snprintf(path, sizeof path, "%s", it->s);
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        char names[512];
        size_t k = 0;
        for (int i = 0; pb_backbone_at(i) && k < sizeof names; i++)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", pb_backbone_at(i)->name);
        return spec_err(c, it->line,
                        "backbones: '%s' is neither a preset (%s), 'default', nor an existing checkpoint file%s", it->s,
                        names, strcmp(it->s, "default") ? "" : " (pretrain it first: peftbench survey or pretrain)");
    }
    pb_ckpt_info info;
    if (pb_ckpt_read_info(path, &info)) return spec_err(c, it->line, "backbones: %s", pb_errmsg());
    if (strlen(path) >= sizeof b->path) return spec_err(c, it->line, "backbones: path '%s' is too long", path);
    snprintf(b->path, sizeof b->path, "%s", path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(b->name, sizeof b->name, "%.*s", (int)(strlen(base) > 3 && !strcmp(base + strlen(base) - 3, ".h5") ? strlen(base) - 3 : strlen(base)), base);
    if (ckpt_identity(path, b->ident, sizeof b->ident)) return spec_err(c, it->line, "backbones: %s", pb_errmsg());
    b->desc = info.desc;
    return PB_OK;
}

/* ---- loading ------------------------------------------------------------------------------------ */

typedef struct {
    char spec[PB_RES_SPEC];
    char canon[PB_RES_SPEC];
    char name[PB_RES_NAME];
    char kind[PB_RES_SHORT];
    int generate, n_labels, line;
} task_info;

typedef struct {
    char spec[PB_RES_SPEC];  /* canonical */
    char label[PB_RES_NAME];
    char name[PB_RES_NAME];
    char category[PB_RES_SHORT];
    const pb_method *m;
    int section;
} method_point;

static void free_sections(msection *ms, int n) {
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < ms[i].n_keys; k++) free(ms[i].keys[k].vals.it);
        free(ms[i].keys);
        free(ms[i].lrs.it);
    }
    free(ms);
}

void pb_sweep_free(pb_sweep_spec *s) {
    for (int i = 0; i < s->n_tasks; i++) pb_task_free(s->tasks[i]);
    free(s->tasks);
    free(s->cells);
    free(s->heldout);
    memset(s, 0, sizeof *s);
}

static const char *trim_section_name(const char *sec) {
    while (*sec && isspace((unsigned char)*sec)) sec++;
    return sec;
}

/* Formats a configuration string (SCHEMA.md "Keys"). */
static int format_config(char *out, size_t cap, const char *backbone_ident, const char *task_canon, const char *method,
                         const pb_run_config *c) {
    char lr[32], wd[32], wf[32], clip[32];
    pb_sweep_canon_f32(c->lr, lr, sizeof lr);
    pb_sweep_canon_f32(c->weight_decay, wd, sizeof wd);
    pb_sweep_canon_f32(c->warmup_frac, wf, sizeof wf);
    pb_sweep_canon_f32(c->clip, clip, sizeof clip);
    int n = snprintf(out, cap,
                     "peftbench-cell 1\nbackbone=%s\ntask=%s\nmethod=%s\nseed=%llu\nsteps=%d\nbatch=%d\nmax_len=%d\n"
                     "eval_every=%d\neval_max=%d\ngen_max=%d\nlr=%s\nweight_decay=%s\nwarmup_frac=%s\nclip=%s\n"
                     "schedule=%s\n",
                     backbone_ident, task_canon, method, (unsigned long long)c->seed, c->steps, c->batch, c->max_len,
                     c->eval_every, c->eval_max, c->gen_max, lr, wd, wf, clip, pb_decay_name(c->decay));
    /* added later, written only when set, so the keys of cells that leave it at 0 are unchanged */
    if (n > 0 && (size_t)n < cap && c->group_by_length)
        n += snprintf(out + n, cap - (size_t)n, "group_by_length=1\n");
    return n > 0 && (size_t)n < cap;
}

void pb_sweep_inputs_free(pb_sweep_inputs *in) {
    for (int i = 0; i < in->n_backbones; i++) free(in->backbones[i]);
    for (int i = 0; i < in->n_tasks; i++) free(in->tasks[i]);
    free(in->backbones);
    free(in->tasks);
    memset(in, 0, sizeof *in);
}

/* Appends the whitespace-separated items of value to *v. */
static int strings_add(char ***v, int *n, const char *value) {
    char *copy = strdup(value);
    if (!copy) return 0;
    int ok = 1;
    for (char *save = NULL, *t = strtok_r(copy, " \t", &save); t && ok; t = strtok_r(NULL, " \t", &save)) {
        char **p = realloc(*v, sizeof *p * (size_t)(*n + 1));
        if (!p || !(p[*n] = strdup(t))) {
            if (p) *v = p;
            ok = 0;
            break;
        }
        *v = p;
        (*n)++;
    }
    free(copy);
    return ok;
}

pb_status pb_sweep_read_inputs(const char *path, const char *data_dir_flag, pb_sweep_inputs *in) {
    memset(in, 0, sizeof *in);
    collector col = {0};
    col.path = path;
    struct stat sb;
    if (stat(path, &sb) != 0) return pb_errorf(PB_ENOTFOUND, "%s: no such spec file", path);
    if (S_ISDIR(sb.st_mode)) return pb_errorf(PB_EINVAL, "%s: is a directory (expected a sweep spec .ini)", path);
    col.f = fopen(path, "r");
    if (!col.f) return pb_errorf(PB_EIO, "%s: cannot open: %s", path, strerror(errno));
    ini_parse_stream(read_line, &col, on_entry, &col); /* syntax errors: pb_sweep_load reports them */
    fclose(col.f);
    pb_status st = col.oom ? pb_errorf(PB_ENOMEM, "%s: out of memory", path) : PB_OK;
    for (int i = 0; i < col.n && !st; i++) {
        const entry *e = &col.e[i];
        if (strcmp(trim_section_name(e->section), "sweep") != 0) continue;
        if (!strcmp(e->key, "backbones") && !strings_add(&in->backbones, &in->n_backbones, e->value))
            st = pb_errorf(PB_ENOMEM, "out of memory");
        else if (!strcmp(e->key, "tasks") && !strings_add(&in->tasks, &in->n_tasks, e->value))
            st = pb_errorf(PB_ENOMEM, "out of memory");
        else if (!strcmp(e->key, "forgetting"))
            snprintf(in->forgetting, sizeof in->forgetting, "%s", strcmp(e->value, "none") ? e->value : "");
        else if (!strcmp(e->key, "data_dir") && !(data_dir_flag && *data_dir_flag))
            snprintf(in->data_dir, sizeof in->data_dir, "%s", e->value);
    }
    collector_free(&col);
    if (data_dir_flag && *data_dir_flag) snprintf(in->data_dir, sizeof in->data_dir, "%s", data_dir_flag);
    if (!st && !in->data_dir[0] && (st = pb_data_dir(NULL, in->data_dir, sizeof in->data_dir)))
        st = pb_error_context(st, "%s", path);
    if (st) pb_sweep_inputs_free(in);
    return st;
}

pb_status pb_sweep_load(const char *path, const char *data_dir_flag, pb_sweep_spec *s) {
    memset(s, 0, sizeof *s);
    ctx c = {path, PB_OK};
    collector col = {0};
    col.path = path;
    msection *ms = NULL;
    int n_ms = 0;
    list backbones = {0}, tasks = {0}, lrs = {0}, seeds = {0}, refs = {0};
    backbone *bb = NULL;
    task_info *ti = NULL;
    method_point *mp = NULL;
    int n_mp = 0, cap_mp = 0;
    double *lr_vals = NULL;
    pb_status st = PB_OK;
    struct stat sb;

    if (stat(path, &sb) != 0) return pb_errorf(PB_ENOTFOUND, "%s: no such spec file", path);
    if (S_ISDIR(sb.st_mode)) return pb_errorf(PB_EINVAL, "%s: is a directory (expected a sweep spec .ini)", path);
    col.f = fopen(path, "r");
    if (!col.f) return pb_errorf(PB_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = ini_parse_stream(read_line, &col, on_entry, &col);
    fclose(col.f);
    if (col.oom) {
        st = pb_errorf(PB_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (col.too_long) {
        st = spec_err(&c, col.too_long,
                      "line longer than %d characters; continue a list on indented lines below its key", 197);
        goto out;
    }
    if (rc > 0) {
        st = spec_err(&c, rc, "expected 'key = value', a [section] header or a comment");
        goto out;
    }
    if (rc < 0) {
        st = pb_errorf(PB_EIO, "%s: cannot read", path);
        goto out;
    }
    snprintf(s->path, sizeof s->path, "%s", path);

    /* --- sections, from the headers the reader saw --- */
    int sweep_line = 0;
    for (int i = 0; i < col.n_h; i++) {
        char raw[96];
        snprintf(raw, sizeof raw, "%s", col.h[i].name);
        char *sec = (char *)trim_section_name(raw);
        size_t L = strlen(sec);
        while (L && isspace((unsigned char)sec[L - 1])) sec[--L] = '\0';
        int line = col.h[i].line;
        if (!strcmp(sec, "sweep")) {
            if (sweep_line) {
                st = spec_err(&c, line, "section [sweep] appears twice (first on line %d); merge them", sweep_line);
                goto out;
            }
            sweep_line = line;
        } else if (!strncmp(sec, "method", 6) && (sec[6] == '\0' || isspace((unsigned char)sec[6]))) {
            const char *name = trim_section_name(sec + 6);
            if (!*name) {
                st = spec_err(&c, line, "[method] needs a name, e.g. [method lora]");
                goto out;
            }
            for (int m = 0; m < n_ms; m++)
                if (!strcmp(ms[m].name, name)) {
                    st = spec_err(&c, line, "section [method %s] appears twice (first on line %d); merge them", name,
                                  ms[m].line);
                    goto out;
                }
            if (strlen(name) >= sizeof ms[0].name || strpbrk(name, "\"|,")) {
                st = spec_err(&c, line, "[method %s]: the name must be shorter than %zu characters, without \", | or "
                                        "quotes", name, sizeof ms[0].name);
                goto out;
            }
            msection *p = realloc(ms, sizeof *p * (size_t)(n_ms + 1));
            if (!p) goto oom;
            ms = p;
            memset(&ms[n_ms], 0, sizeof ms[n_ms]);
            snprintf(ms[n_ms].name, sizeof ms[n_ms].name, "%s", name);
            snprintf(ms[n_ms].method, sizeof ms[n_ms].method, "%s", name);
            ms[n_ms].line = line;
            n_ms++;
        } else {
            st = spec_err(&c, line, "unknown section [%s] (expected [sweep] or [method NAME])", sec);
            goto out;
        }
    }

    /* --- entries --- */
    int first_line[N_SWEEP_KEYS] = {0};
    entry *scalar[N_SWEEP_KEYS] = {0};
    for (int i = 0; i < col.n; i++) {
        entry *e = &col.e[i];
        char raw[96];
        snprintf(raw, sizeof raw, "%s", e->section);
        char *sec = (char *)trim_section_name(raw);
        size_t L = strlen(sec);
        while (L && isspace((unsigned char)sec[L - 1])) sec[--L] = '\0';
        if (!*sec) {
            st = spec_err(&c, e->line, "'%s' is outside any section (put it under [sweep] or [method NAME])", e->key);
            goto out;
        }
        if (!strcmp(sec, "sweep")) {
            int k = 0;
            while (k < N_SWEEP_KEYS && strcmp(g_sweep_keys[k].key, e->key)) k++;
            if (k == N_SWEEP_KEYS) {
                st = spec_err(&c, e->line, "[sweep]: unknown key '%s' (accepted: %s)", e->key, sweep_keys_list());
                goto out;
            }
            list *l = !strcmp(e->key, "backbones") ? &backbones
                      : !strcmp(e->key, "tasks")   ? &tasks
                      : !strcmp(e->key, "lrs")     ? &lrs
                      : !strcmp(e->key, "seeds")   ? &seeds
                      : !strcmp(e->key, "references") ? &refs
                                                   : NULL;
            if (l) {
                if (!list_add_value(l, e)) goto oom;
            } else {
                if (first_line[k]) {
                    st = spec_err(&c, e->line, "[sweep]: '%s' given twice (first on line %d)", e->key, first_line[k]);
                    goto out;
                }
                first_line[k] = e->line;
                scalar[k] = e;
            }
            continue;
        }
        /* a [method NAME] section (the headers pass made every one) */
        const char *name = trim_section_name(sec + 6);
        int m = 0;
        while (m < n_ms && strcmp(ms[m].name, name)) m++;
        if (m == n_ms) {
            st = spec_err(&c, e->line, "internal: no section for '%s'", sec);
            goto out;
        }
        msection *x = &ms[m];
        if (!strcmp(e->key, "method")) {
            if (x->method_line) {
                st = spec_err(&c, e->line, "[method %s]: 'method' given twice (first on line %d)", name, x->method_line);
                goto out;
            }
            snprintf(x->method, sizeof x->method, "%s", e->value);
            x->method_line = e->line;
        } else if (!strcmp(e->key, "lrs")) {
            x->has_lrs = 1;
            if (!list_add_value(&x->lrs, e)) goto oom;
        } else {
            int k = 0;
            while (k < x->n_keys && strcmp(x->keys[k].key, e->key)) k++;
            if (k == x->n_keys) {
                if (x->n_keys == x->cap_keys) {
                    int cap = x->cap_keys ? 2 * x->cap_keys : 8;
                    hp_key *p = realloc(x->keys, sizeof *p * (size_t)cap);
                    if (!p) goto oom;
                    x->keys = p;
                    x->cap_keys = cap;
                }
                memset(&x->keys[k], 0, sizeof x->keys[k]);
                snprintf(x->keys[k].key, sizeof x->keys[k].key, "%s", e->key);
                x->keys[k].line = e->line;
                x->n_keys++;
            }
            if (!list_add_value(&x->keys[k].vals, e)) goto oom;
            if (x->keys[k].vals.n == 0) {
                st = spec_err(&c, e->line, "[method %s]: '%s' has no value", name, e->key);
                goto out;
            }
        }
    }

    /* --- [sweep] scalars --- */
    pb_run_config base;
    pb_run_defaults(&base);
    base.eval_max = 0;
    snprintf(s->name, sizeof s->name, "%s", "sweep");
    s->forgetting_tokens = 16384;
    for (int k = 0; k < N_SWEEP_KEYS; k++) {
        entry *e = scalar[k];
        if (!e) continue;
        const sweep_key *sk = &g_sweep_keys[k];
        char *v = e->value;
        long lv = 0;
        double dv = 0;
        if (sk->kind == 2 && !parse_long(v, (long)sk->lo, (long)sk->hi, &lv)) {
            st = spec_err(&c, e->line, "[sweep]: %s = '%s' is not an integer in [%ld, %ld]", sk->key, v, (long)sk->lo,
                          (long)sk->hi);
            goto out;
        }
        if (sk->kind == 3 && !parse_double(v, sk->lo, sk->hi, &dv)) {
            st = spec_err(&c, e->line, "[sweep]: %s = '%s' is not a number in [%g, %g]", sk->key, v, sk->lo, sk->hi);
            goto out;
        }
        if (!strcmp(sk->key, "name")) {
            if (!*v || strlen(v) >= sizeof s->name || strpbrk(v, " \t")) {
                st = spec_err(&c, e->line, "[sweep]: name = '%s' must be one word of at most %zu characters", v,
                              sizeof s->name - 1);
                goto out;
            }
            snprintf(s->name, sizeof s->name, "%s", v);
        } else if (!strcmp(sk->key, "steps")) base.steps = (int)lv;
        else if (!strcmp(sk->key, "batch")) base.batch = (int)lv;
        else if (!strcmp(sk->key, "max_len")) base.max_len = (int)lv;
        else if (!strcmp(sk->key, "eval_every")) base.eval_every = (int)lv;
        else if (!strcmp(sk->key, "eval_max")) base.eval_max = (int)lv;
        else if (!strcmp(sk->key, "gen_max")) base.gen_max = (int)lv;
        else if (!strcmp(sk->key, "group_by_length")) base.group_by_length = (int)lv;
        else if (!strcmp(sk->key, "threads")) s->threads = (int)lv;
        else if (!strcmp(sk->key, "forgetting_tokens")) s->forgetting_tokens = (size_t)lv;
        else if (!strcmp(sk->key, "weight_decay")) base.weight_decay = (float)dv;
        else if (!strcmp(sk->key, "warmup_frac")) base.warmup_frac = (float)dv;
        else if (!strcmp(sk->key, "clip")) base.clip = (float)dv;
        else if (!strcmp(sk->key, "schedule")) {
            if (pb_decay_parse(v, &base.decay)) {
                st = spec_err(&c, e->line, "[sweep]: schedule: %s", pb_errmsg());
                goto out;
            }
        } else if (!strcmp(sk->key, "forgetting")) {
            if (strlen(v) >= sizeof s->forgetting) {
                st = spec_err(&c, e->line, "[sweep]: forgetting = '%s' is too long", v);
                goto out;
            }
            snprintf(s->forgetting, sizeof s->forgetting, "%s", strcmp(v, "none") ? v : "");
        } else if (!strcmp(sk->key, "data_dir")) {
            snprintf(s->data_dir, sizeof s->data_dir, "%s", v);
        } else if (!strcmp(sk->key, "lr_protocol")) {
            if (strcmp(v, "grid") && strcmp(v, "first_seed")) {
                st = spec_err(&c, e->line, "[sweep]: lr_protocol = '%s' (accepted: grid, first_seed)", v);
                goto out;
            }
            s->first_seed = !strcmp(v, "first_seed");
        }
    }
    if (data_dir_flag && *data_dir_flag) snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir_flag);
    if (!s->data_dir[0] && pb_data_dir(NULL, s->data_dir, sizeof s->data_dir)) s->data_dir[0] = '\0';

    if (!backbones.n) {
        st = spec_err(&c, 0, "[sweep] has no 'backbones' (e.g. backbones = tiny; see `peftbench list backbones`)");
        goto out;
    }
    if (!tasks.n) {
        st = spec_err(&c, 0, "[sweep] has no 'tasks' (e.g. tasks = sentiment; see `peftbench list tasks`)");
        goto out;
    }
    /* methods = all: every registered method without a section of its own joins with its
     * defaults and the [sweep] learning rates */
    entry *all = scalar[sweep_key_index("methods")];
    if (all && strcmp(all->value, "all") && strcmp(all->value, "listed")) {
        st = spec_err(&c, all->line, "[sweep]: methods = '%s' (accepted: all, listed)", all->value);
        goto out;
    }
    if (all && !strcmp(all->value, "all"))
        for (int i = 0; i < pb_method_count(); i++) {
            const pb_method *pm = pb_method_at(i);
            int have = 0;
            for (int m = 0; m < n_ms && !have; m++) have = !strcmp(ms[m].method, pm->name);
            if (have) continue;
            msection *p = realloc(ms, sizeof *p * (size_t)(n_ms + 1));
            if (!p) goto oom;
            ms = p;
            memset(&ms[n_ms], 0, sizeof ms[n_ms]);
            snprintf(ms[n_ms].name, sizeof ms[n_ms].name, "%s", pm->name);
            snprintf(ms[n_ms].method, sizeof ms[n_ms].method, "%s", pm->name);
            ms[n_ms].line = all->line;
            n_ms++;
        }
    if (!n_ms) {
        st = spec_err(&c, 0, "no [method NAME] section: nothing to run (see `peftbench list methods`, or methods = all)");
        goto out;
    }

    /* --- reference rows: which predictors --- */
    int want_ref[PB_REF_COUNT] = {0};
    for (int i = 0; i < refs.n; i++) {
        const char *v = refs.it[i].s;
        if (!strcmp(v, "all") || !strcmp(v, "none")) {
            for (int k = 0; k < PB_REF_COUNT; k++) want_ref[k] = !strcmp(v, "all");
            continue;
        }
        pb_ref_kind k = pb_ref_from_name(v);
        if (k == PB_REF_COUNT) {
            st = spec_err(&c, refs.it[i].line, "[sweep]: references: '%s' (accepted: all, none, majority, ngram_nb, "
                                               "copy_input)", v);
            goto out;
        }
        want_ref[k] = 1;
    }

    /* --- learning rates and seeds --- */
    double default_lr = 1e-3;
    uint64_t default_seed = 1;
    int n_seeds = seeds.n ? seeds.n : 1;
    uint64_t *seed_vals = calloc((size_t)n_seeds, sizeof *seed_vals);
    if (!seed_vals) goto oom;
    for (int i = 0; i < seeds.n; i++) {
        long v;
        if (!parse_long(seeds.it[i].s, 0, 0x7fffffffL, &v)) {
            free(seed_vals);
            st = spec_err(&c, seeds.it[i].line, "[sweep]: seeds: '%s' is not an integer in [0, 2147483647]",
                          seeds.it[i].s);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (seed_vals[j] == (uint64_t)v) {
                free(seed_vals);
                st = spec_err(&c, seeds.it[i].line, "[sweep]: seeds: %ld is listed twice", v);
                goto out;
            }
        seed_vals[i] = (uint64_t)v;
    }
    if (!seeds.n) seed_vals[0] = default_seed;
    /* lr lists: the global one, then one per method section that has its own */
    int max_lrs = lrs.n ? lrs.n : 1;
    for (int m = 0; m < n_ms; m++)
        if (ms[m].lrs.n > max_lrs) max_lrs = ms[m].lrs.n;
    lr_vals = calloc((size_t)(n_ms + 1) * (size_t)max_lrs, sizeof *lr_vals);
    int *n_lr = calloc((size_t)(n_ms + 1), sizeof *n_lr);
    if (!lr_vals || !n_lr) {
        free(seed_vals), free(n_lr);
        goto oom;
    }
    for (int m = -1; m < n_ms && !st; m++) {
        list *l = m < 0 ? &lrs : &ms[m].lrs;
        double *dst = lr_vals + (size_t)(m + 1) * (size_t)max_lrs;
        if (m >= 0 && !ms[m].has_lrs) {
            memcpy(dst, lr_vals, sizeof(double) * (size_t)n_lr[0]);
            n_lr[m + 1] = n_lr[0];
            continue;
        }
        if (m < 0 && !lrs.n) {
            dst[0] = default_lr;
            n_lr[0] = 1;
            continue;
        }
        for (int i = 0; i < l->n; i++) {
            double v;
            if (!parse_double(l->it[i].s, 1e-12, 100, &v)) {
                st = spec_err(&c, l->it[i].line, "%s%s%s: lrs: '%s' is not a learning rate in (0, 100]",
                              m < 0 ? "[sweep" : "[method ", m < 0 ? "" : ms[m].name, "]", l->it[i].s);
                break;
            }
            for (int j = 0; j < i; j++)
                if ((float)dst[j] == (float)v) {
                    st = spec_err(&c, l->it[i].line, "lrs: %s is listed twice", l->it[i].s);
                    break;
                }
            dst[i] = v;
        }
        n_lr[m + 1] = l->n;
    }
    if (st) {
        free(seed_vals), free(n_lr);
        goto out;
    }

    /* --- backbones --- */
    bb = calloc((size_t)backbones.n, sizeof *bb);
    if (!bb) {
        free(seed_vals), free(n_lr);
        goto oom;
    }
    for (int i = 0; i < backbones.n && !st; i++) {
        st = resolve_backbone(&c, &backbones.it[i], s->data_dir, &bb[i]);
        for (int j = 0; j < i && !st; j++)
            if (!strcmp(bb[j].ident, bb[i].ident))
                st = spec_err(&c, backbones.it[i].line, "backbones: '%s' is the same backbone as '%s'", bb[i].spec,
                              bb[j].spec);
        if (!st && scalar[sweep_key_index("max_len")] && base.max_len > bb[i].desc.max_seq)
            fprintf(stderr, "%s: note: max_len %d is longer than backbone %s's %d positions; inputs are cut to %d\n",
                    path, base.max_len, bb[i].name, bb[i].desc.max_seq, bb[i].desc.max_seq);
    }
    if (st) {
        free(seed_vals), free(n_lr);
        goto out;
    }

    /* --- tasks: opened once, shared read-only by the cells --- */
    ti = calloc((size_t)tasks.n, sizeof *ti);
    s->tasks = calloc((size_t)tasks.n, sizeof *s->tasks);
    if (!ti || !s->tasks) {
        free(seed_vals), free(n_lr);
        goto oom;
    }
    for (int i = 0; i < tasks.n && !st; i++) {
        item *it = &tasks.it[i];
        if (strlen(it->s) >= PB_RES_SPEC) {
            st = spec_err(&c, it->line, "tasks: '%s' is too long", it->s);
            break;
        }
        pb_task *t;
        if (pb_task_open(it->s, s->data_dir, &t)) {
            st = spec_err(&c, it->line, "tasks: %s", pb_errmsg());
            break;
        }
        s->tasks[s->n_tasks++] = t;
        if (t->kind != PB_TASK_CLASSIFY && t->kind != PB_TASK_GENERATE) {
            st = spec_err(&c, it->line, "tasks: '%s' is a %s task; sweeps run classify and generate tasks", it->s,
                          pb_task_kind_name(t->kind));
            break;
        }
        task_info *x = &ti[i];
        snprintf(x->spec, sizeof x->spec, "%s", it->s);
        pb_sweep_canon_task(it->s, x->canon, sizeof x->canon);
        snprintf(x->name, sizeof x->name, "%s", t->name);
        snprintf(x->kind, sizeof x->kind, "%s", pb_task_kind_name(t->kind));
        x->generate = t->kind == PB_TASK_GENERATE;
        x->n_labels = t->n_labels;
        x->line = it->line;
        for (int j = 0; j < i; j++)
            if (!strcmp(ti[j].canon, x->canon)) {
                st = spec_err(&c, it->line, "tasks: '%s' is listed twice", it->s);
                break;
            }
    }
    if (st) {
        free(seed_vals), free(n_lr);
        goto out;
    }

    /* --- methods: validate every value on its own line, then every grid point --- */
    for (int m = 0; m < n_ms && !st; m++) {
        msection *x = &ms[m];
        const pb_method *meth = pb_method_find(x->method);
        int mline = x->method_line ? x->method_line : x->line;
        if (!meth) {
            const pb_method *dummy;
            pb_hp_values v;
            pb_peft_parse(x->method, &dummy, &v);
            st = spec_err(&c, mline, "[method %s]: %s", x->name, pb_errmsg());
            break;
        }
        size_t n_points = 1;
        for (int k = 0; k < x->n_keys && !st; k++) {
            n_points *= (size_t)x->keys[k].vals.n;
            for (int j = 0; j < x->keys[k].vals.n && !st; j++) {
                char one[PB_RES_SPEC + 128];
                const pb_method *dummy;
                pb_hp_values v;
                snprintf(one, sizeof one, "%s:%s=%s", meth->name, x->keys[k].key, x->keys[k].vals.it[j].s);
                if (pb_peft_parse(one, &dummy, &v))
                    st = spec_err(&c, x->keys[k].vals.it[j].line, "[method %s]: %s", x->name, pb_errmsg());
            }
        }
        if (st) break;
        if (n_points > 100000) {
            st = spec_err(&c, x->line, "[method %s]: the grid has %zu points (at most 100000)", x->name, n_points);
            break;
        }
        int idx[64] = {0};
        if (x->n_keys > 64) {
            st = spec_err(&c, x->line, "[method %s]: too many keys", x->name);
            break;
        }
        for (size_t p = 0; p < n_points && !st; p++) {
            char spec[PB_RES_SPEC * 2], label[PB_RES_NAME];
            size_t k1 = (size_t)snprintf(spec, sizeof spec, "%s", meth->name);
            size_t k2 = (size_t)snprintf(label, sizeof label, "%s", x->name);
            for (int k = 0; k < x->n_keys; k++) {
                const char *val = x->keys[k].vals.it[idx[k]].s;
                k1 += (size_t)snprintf(spec + k1, sizeof spec - k1, "%s%s=%s", k ? "," : ":", x->keys[k].key, val);
                if (x->keys[k].vals.n > 1 && k2 < sizeof label)
                    k2 += (size_t)snprintf(label + k2, sizeof label - k2, " %s=%s", x->keys[k].key, val);
            }
            /* advance the mixed-radix counter (last key fastest) */
            for (int k = x->n_keys - 1; k >= 0; k--) {
                if (++idx[k] < x->keys[k].vals.n) break;
                idx[k] = 0;
            }
            if (k1 >= sizeof spec || k2 >= PB_RES_NAME) {
                st = spec_err(&c, x->line, "[method %s]: spec or label too long ('%s')", x->name, spec);
                break;
            }
            if (n_mp == cap_mp) {
                int cap = cap_mp ? 2 * cap_mp : 16;
                method_point *q = realloc(mp, sizeof *q * (size_t)cap);
                if (!q) {
                    free(seed_vals), free(n_lr);
                    goto oom;
                }
                mp = q;
                cap_mp = cap;
            }
            method_point *pt = &mp[n_mp];
            memset(pt, 0, sizeof *pt);
            if (pb_sweep_canon_method(spec, pt->spec, sizeof pt->spec)) {
                st = spec_err(&c, x->line, "[method %s]: %s", x->name, pb_errmsg());
                break;
            }
            snprintf(pt->label, sizeof pt->label, "%s", label);
            snprintf(pt->name, sizeof pt->name, "%s", meth->name);
            snprintf(pt->category, sizeof pt->category, "%s", pb_category_name(meth->category));
            pt->m = meth;
            pt->section = m;
            for (int j = 0; j < n_mp; j++)
                if (!strcmp(mp[j].spec, pt->spec)) {
                    st = spec_err(&c, x->line, "[method %s]: '%s' is the same method configuration as [method %s]",
                                  x->name, label, ms[mp[j].section].name);
                    break;
                }
            if (st) break;
            n_mp++;
            /* shape-only attach on every backbone and head kind the tasks need */
            for (int b = 0; b < backbones.n && !st; b++)
                for (int t = 0; t < tasks.n && !st; t++) {
                    if (meth->needs_cls_head && ti[t].generate) continue;
                    pb_peft p;
                    memset(&p, 0, sizeof p);
                    pb_head_kind head = ti[t].generate ? PB_HEAD_LM : PB_HEAD_CLS;
                    if (pb_peft_create(&p, pt->spec, &bb[b].desc, head, ti[t].generate ? 0 : ti[t].n_labels, NULL, 1))
                        st = spec_err(&c, x->line, "[method %s]: on backbone %s, task %s: %s", x->name, bb[b].name,
                                      ti[t].name, pb_errmsg());
                    pb_peft_free(&p);
                }
        }
    }
    if (st) {
        free(seed_vals), free(n_lr);
        goto out;
    }

    /* --- the forgetting corpus: its held-out documents --- */
    if (s->forgetting[0]) {
        pb_pretrain_config pc;
        pb_pretrain_defaults(&pc);
        pb_corpus corpus;
        pb_corpus_split split;
        int line = first_line[sweep_key_index("forgetting")];
        if (pb_corpus_open(&corpus, s->forgetting, s->data_dir, pc.builtin_bytes)) {
            st = spec_err(&c, line, "[sweep]: forgetting: %s", pb_errmsg());
        } else {
            if (pb_corpus_split_docs(&corpus, pc.holdout, &split)) {
                st = spec_err(&c, line, "[sweep]: forgetting: %s", pb_errmsg());
            } else {
                size_t n = split.n_heldout < s->forgetting_tokens ? split.n_heldout : s->forgetting_tokens;
                s->heldout = malloc(sizeof(int32_t) * (n ? n : 1));
                if (!s->heldout) st = pb_errorf(PB_ENOMEM, "out of memory");
                else {
                    memcpy(s->heldout, split.heldout, sizeof(int32_t) * n);
                    s->n_heldout = n;
                }
                pb_corpus_split_free(&split);
                for (int b = 0; b < backbones.n && !st; b++)
                    if (s->n_heldout < (size_t)bb[b].desc.max_seq + 1)
                        st = spec_err(&c, line,
                                      "[sweep]: forgetting: %zu held-out tokens are fewer than one window of backbone "
                                      "%s (%d); raise forgetting_tokens or use a larger corpus",
                                      s->n_heldout, bb[b].name, bb[b].desc.max_seq + 1);
            }
            pb_corpus_free(&corpus);
        }
    }
    if (st) {
        free(seed_vals), free(n_lr);
        goto out;
    }

    /* --- the cells: backbone, seed, task, method point, learning rate --- */
    size_t total = 0;
    for (int b = 0; b < backbones.n; b++)
        for (int t = 0; t < tasks.n; t++)
            for (int p = 0; p < n_mp; p++)
                if (!(mp[p].m->needs_cls_head && ti[t].generate)) total += (size_t)n_lr[mp[p].section + 1];
    total *= (size_t)n_seeds;
    size_t n_refs = 0;
    for (int t = 0; t < tasks.n; t++)
        for (int k = 0; k < PB_REF_COUNT; k++)
            n_refs += want_ref[k] && pb_ref_applies((pb_ref_kind)k, ti[t].generate ? PB_TASK_GENERATE : PB_TASK_CLASSIFY);
    total += n_refs;
    if (total > 100000) {
        free(seed_vals), free(n_lr);
        st = spec_err(&c, 0, "the sweep has %zu cells (at most 100000: split it into several specs)", total);
        goto out;
    }
    s->cells = calloc(total ? total : 1, sizeof *s->cells);
    if (!s->cells) {
        free(seed_vals), free(n_lr);
        goto oom;
    }
    size_t skipped_pairs = 0;
    for (int t = 0; t < tasks.n; t++)
        for (int p = 0; p < n_mp; p++)
            if (mp[p].m->needs_cls_head && ti[t].generate) {
                if (!skipped_pairs)
                    snprintf(s->skipped_note, sizeof s->skipped_note,
                             "%s x %s (and others like it): the method needs a classification head", mp[p].label,
                             ti[t].name);
                skipped_pairs++;
            }
    s->n_skipped = (int)(skipped_pairs * (size_t)backbones.n * (size_t)n_seeds);
    /* reference rows first (cheap): one cell per (task, predictor); no backbone, no seed grid */
    for (int t = 0; t < tasks.n && !st; t++)
        for (int k = 0; k < PB_REF_COUNT && !st; k++) {
            if (!want_ref[k] || !pb_ref_applies((pb_ref_kind)k, ti[t].generate ? PB_TASK_GENERATE : PB_TASK_CLASSIFY))
                continue;
            pb_sweep_cell *x = &s->cells[s->n_cells];
            x->cfg = base;
            x->cfg.seed = seed_vals[0];
            x->cfg.lr = 0;
            x->cfg.verbose = 0;
            x->ref = k;
            const char *name = pb_ref_name((pb_ref_kind)k);
            snprintf(x->method, sizeof x->method, "%s", name);
            snprintf(x->method_name, sizeof x->method_name, "%s", name);
            snprintf(x->label, sizeof x->label, "%s", name);
            snprintf(x->category, sizeof x->category, "reference");
            snprintf(x->task, sizeof x->task, "%s", ti[t].spec);
            snprintf(x->task_name, sizeof x->task_name, "%s", ti[t].name);
            snprintf(x->task_kind, sizeof x->task_kind, "%s", ti[t].kind);
            x->task_index = t;
            snprintf(x->config, sizeof x->config, "peftbench-cell 1\nreference=%s\ntask=%s\neval_max=%d\n", name,
                     ti[t].canon, base.eval_max);
            pb_res_key(x->config, x->key);
            s->n_cells++;
        }
    for (int b = 0; b < backbones.n && !st; b++)
        for (int si = 0; si < n_seeds && !st; si++)
            for (int t = 0; t < tasks.n && !st; t++)
                for (int p = 0; p < n_mp && !st; p++) {
                    if (mp[p].m->needs_cls_head && ti[t].generate) continue;
                    int sec = mp[p].section + 1;
                    for (int l = 0; l < n_lr[sec] && !st; l++) {
                        pb_sweep_cell *x = &s->cells[s->n_cells];
                        x->cfg = base;
                        x->ref = -1;
                        x->deferred = s->first_seed && si > 0 && n_lr[sec] > 1;
                        x->cfg.seed = seed_vals[si];
                        x->cfg.lr = (float)lr_vals[(size_t)sec * (size_t)max_lrs + (size_t)l];
                        x->cfg.verbose = 0;
                        snprintf(x->backbone, sizeof x->backbone, "%s", bb[b].spec);
                        snprintf(x->backbone_path, sizeof x->backbone_path, "%s", bb[b].path);
                        snprintf(x->backbone_name, sizeof x->backbone_name, "%s", bb[b].name);
                        snprintf(x->method, sizeof x->method, "%s", mp[p].spec);
                        snprintf(x->method_name, sizeof x->method_name, "%s", mp[p].name);
                        snprintf(x->label, sizeof x->label, "%s", mp[p].label);
                        snprintf(x->category, sizeof x->category, "%s", mp[p].category);
                        snprintf(x->task, sizeof x->task, "%s", ti[t].spec);
                        snprintf(x->task_name, sizeof x->task_name, "%s", ti[t].name);
                        snprintf(x->task_kind, sizeof x->task_kind, "%s", ti[t].kind);
                        x->task_index = t;
                        if (!format_config(x->config, sizeof x->config, bb[b].ident, ti[t].canon, mp[p].spec, &x->cfg)) {
                            st = spec_err(&c, 0, "the configuration of %s x %s does not fit in %d bytes", mp[p].label,
                                          ti[t].name, PB_RES_CONFIG);
                            break;
                        }
                        pb_res_key(x->config, x->key);
                        s->n_cells++;
                    }
                }
    free(seed_vals);
    free(n_lr);
    if (st) goto out;
    /* Keys are unique by construction (distinct backbones, tasks, methods, lrs, seeds); check. */
    for (size_t i = 0; i < s->n_cells; i++) {
        pb_sweep_cell *x = &s->cells[i];
        x->cfg.backbone = x->ref >= 0 ? "" : x->backbone_path;
        x->cfg.method = x->method;
        x->cfg.task = x->task;
        x->cfg.task_obj = s->tasks[x->task_index];
        x->cfg.data_dir = s->data_dir[0] ? s->data_dir : NULL;
        x->cfg.heldout = s->heldout;
        x->cfg.n_heldout = s->n_heldout;
    }
    goto out;
oom:
    st = pb_errorf(PB_ENOMEM, "%s: out of memory", path);
out:
    collector_free(&col);
    free_sections(ms, n_ms);
    free(backbones.it), free(tasks.it), free(lrs.it), free(seeds.it), free(refs.it);
    free(bb);
    free(ti);
    free(mp);
    free(lr_vals);
    if (st) pb_sweep_free(s);
    return st;
}
