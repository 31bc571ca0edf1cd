/* sweep.c — running a sweep: one child process per cell, the parent records (see sweep.h).
 *
 * The parent holds every row of the results file in memory. For each cell to run it forks a
 * child, which runs pb_run_cell, turns what it measured into a pb_res_row and sends that row
 * (then its curves) through a pipe, and exits. When a child's pipe reaches end of file the
 * parent reaps it, adds the row (or, if the child died, a failed row saying how), rewrites the
 * results file atomically, and starts the next cell. So:
 *   - kill -9 of the parent loses only the cells in flight (children die with it:
 *     PR_SET_PDEATHSIG), and the results file is always a complete version;
 *   - a cell that crashes, aborts or runs out of memory is recorded as failed, and the sweep
 *     goes on;
 *   - each cell's allocator and FLOP counters, peak RSS and OpenMP/OpenBLAS thread pool are its
 *     own (--jobs N children with T threads each).
 */
#include "sweep.h"
#include "cli.h"

#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "pb_gitinfo.h"
#include "models/checkpoint.h"
#include "results/table.h"
#include "tasks/metrics.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void utc_date(char *buf, size_t cap) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- rows ---------------------------------------------------------------------------------- */

/* Identity, configuration and provenance of a cell (what is known without running it). */
static void row_identity(pb_res_row *w, const pb_sweep_spec *s, const pb_sweep_cell *x, int threads, int jobs) {
    pb_res_row_init(w);
    snprintf(w->key, sizeof w->key, "%s", x->key);
    snprintf(w->config, sizeof w->config, "%s", x->config);
    snprintf(w->sweep, sizeof w->sweep, "%s", s->name);
    snprintf(w->backbone, sizeof w->backbone, "%s", x->backbone);
    snprintf(w->backbone_name, sizeof w->backbone_name, "%s", x->backbone_name);
    snprintf(w->method, sizeof w->method, "%s", x->method);
    snprintf(w->method_name, sizeof w->method_name, "%s", x->method_name);
    snprintf(w->method_label, sizeof w->method_label, "%s", x->label);
    snprintf(w->category, sizeof w->category, "%s", x->category);
    snprintf(w->task, sizeof w->task, "%s", x->task);
    snprintf(w->task_name, sizeof w->task_name, "%s", x->task_name);
    snprintf(w->task_kind, sizeof w->task_kind, "%s", x->task_kind);
    const pb_run_config *c = &x->cfg;
    w->seed = c->seed;
    w->steps = c->steps;
    w->batch = c->batch;
    w->max_len = c->max_len;
    w->eval_every = c->eval_every;
    w->eval_max = c->eval_max;
    w->gen_max = c->gen_max;
    w->group_by_length = c->group_by_length;
    w->lr = c->lr;
    w->weight_decay = c->weight_decay;
    w->warmup_frac = c->warmup_frac;
    w->clip = c->clip;
    snprintf(w->schedule, sizeof w->schedule, "%s", pb_decay_name(c->decay));
    snprintf(w->forgetting_corpus, sizeof w->forgetting_corpus, "%s", s->forgetting);
    snprintf(w->git_commit, sizeof w->git_commit, "%s", PB_GIT_COMMIT);
    snprintf(w->compiler, sizeof w->compiler, "%s", PB_COMPILER);
    snprintf(w->blas, sizeof w->blas, "%s", openblas_get_config());
    if (gethostname(w->host, sizeof w->host) != 0) snprintf(w->host, sizeof w->host, "unknown");
    w->host[sizeof w->host - 1] = '\0';
    utc_date(w->date, sizeof w->date);
    snprintf(w->version, sizeof w->version, "%s", PB_VERSION);
    w->threads = threads;
    w->jobs = jobs;
    snprintf(w->status, sizeof w->status, "failed");
}

static void row_failed(pb_res_row *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_failed(pb_res_row *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->message, sizeof w->message, fmt, ap);
    va_end(ap);
    snprintf(w->status, sizeof w->status, "failed");
}

/* What a cell measured, into its row. */
static void row_measured(pb_res_row *w, const pb_run_result *r, pb_status st, double wall) {
    w->wall_seconds = wall;
    w->heldout_bpb_before = r->heldout_bpb_before;
    if (st) {
        row_failed(w, "%s", r->message);
        return;
    }
    snprintf(w->status, sizeof w->status, "%s", r->diverged ? "diverged" : "ok");
    snprintf(w->message, sizeof w->message, "%s", r->diverged ? r->message : "");
    w->trainable = r->trainable;
    w->total = r->all;
    w->adapter_bytes = r->adapter_bytes;
    w->trainable_pct = r->all ? 100.0 * (double)r->trainable / (double)r->all : NAN;
    w->flops_fwd = r->train_flops_tok[PB_PHASE_FWD];
    w->flops_bwd_in = r->train_flops_tok[PB_PHASE_BWD_IN];
    w->flops_bwd_w = r->train_flops_tok[PB_PHASE_BWD_W];
    w->flops_train = w->flops_fwd + w->flops_bwd_in + w->flops_bwd_w;
    w->infer_flops = r->infer_flops_tok;
    w->infer_flops_merged = r->infer_flops_tok_merged >= 0 ? r->infer_flops_tok_merged : NAN;
    for (int k = 0; k < PB_MEM_NCAT; k++) w->mem_peak[k] = r->mem_peak[k];
    w->mem_peak_total = r->mem_peak_total;
    w->peak_rss = r->peak_rss;
    w->train_seconds = r->train_seconds;
    w->train_tok_per_s = r->train_tok_per_s;
    w->infer_tok_per_s = r->infer_tok_per_s;
    w->train_tokens = r->train_tokens;
    size_t k = 0;
    for (int i = 0; i < r->n_metrics && i < PB_RES_MAX_METRICS; i++)
        k += (size_t)snprintf(w->metrics + k, k < sizeof w->metrics ? sizeof w->metrics - k : 0, "%s%s", i ? "," : "",
                              pb_metric_key(r->metrics[i]));
    w->n_metrics = r->n_metrics < PB_RES_MAX_METRICS ? r->n_metrics : PB_RES_MAX_METRICS;
    if (r->n_metrics > 0) {
        snprintf(w->select_metric, sizeof w->select_metric, "%s", pb_metric_key(r->metrics[r->select]));
        w->higher_is_better = pb_metric_higher_is_better(r->metrics[r->select]);
    }
    if (r->n_evals > 0 || r->ex) { /* a cell that diverged before its first evaluation has no metric */
        w->best_step = r->best_step;
        w->dev_metric = r->best_dev[r->select];
        w->test_metric = r->test_at_best[r->select];
        for (int i = 0; i < w->n_metrics; i++) {
            w->dev_all[i] = r->best_dev[i];
            w->test_all[i] = r->test_at_best[i];
        }
    }
    w->n_truncated = r->n_truncated;
    w->setup_steps = r->setup_steps;
    w->ex_width = r->ex ? r->ex_width : 0;
    w->n_ex = r->ex ? (int64_t)r->n_ex : 0;
    w->heldout_bpb_after = r->heldout_bpb_after;
    w->forgetting = w->heldout_bpb_after - w->heldout_bpb_before;
}

/* ---- the child ------------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return 0;
        c += k;
        n -= (size_t)k;
    }
    return 1;
}

static void child_main(const pb_sweep_spec *s, const pb_sweep_cell *x, int threads, int jobs, int wfd,
                       pid_t parent) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* die with the sweep, so a kill -9 leaves no orphans */
#endif
    if (getppid() != parent) _exit(3); /* the parent died before prctl took effect */
    signal(SIGINT, SIG_IGN);            /* the parent decides what an interrupt means */
    signal(SIGTERM, SIG_DFL);
    pb_run_config cfg = x->cfg;
    cfg.threads = threads;
    pb_set_threads(threads);
    int cap = cfg.steps < PB_SWEEP_MAX_LOSS ? cfg.steps : PB_SWEEP_MAX_LOSS;
    float *loss = malloc(sizeof(float) * (size_t)cap);
    cfg.loss_curve = loss;
    cfg.loss_curve_cap = loss ? cap : 0;
    pb_run_result *r = malloc(sizeof *r);
    pb_res_row w;
    row_identity(&w, s, x, threads, jobs);
    if (!r) {
        row_failed(&w, "out of memory");
    } else {
        double t0 = now_s();
        pb_res_crash_point("cell-run"); /* test hook: a cell whose process dies */
        pb_status st = x->ref >= 0 ? pb_run_reference(&cfg, (pb_ref_kind)x->ref, r) : pb_run_cell(&cfg, r);
        row_measured(&w, r, st, now_s() - t0);
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0)
            w.cpu_seconds = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                            (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
        w.n_evals = st ? 0 : r->n_evals;
        w.n_loss = st ? 0 : r->n_loss;
        if (st) w.n_ex = 0, w.ex_width = 0;
    }
    /* the row, then its curves (the parent rebuilds the pointers) */
    int ok = write_all(wfd, &w, sizeof w);
    for (int i = 0; ok && i < w.n_evals; i++) {
        float v[3] = {r->eval_train_loss[i], r->eval_dev[i], r->eval_test[i]};
        ok = write_all(wfd, &r->eval_step[i], sizeof(int32_t)) && write_all(wfd, v, sizeof v);
    }
    if (ok && w.n_loss) ok = write_all(wfd, loss, sizeof(float) * (size_t)w.n_loss);
    if (ok && w.n_ex) ok = write_all(wfd, r->ex, sizeof(float) * (size_t)w.n_ex * (size_t)w.ex_width);
    close(wfd);
    _exit(ok ? 0 : 4); /* no atexit handlers: the parent's HDF5 state and files are not ours */
}

/* ---- the parent ------------------------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    int fd;
    size_t cell;
    char *buf;
    size_t len, cap;
    double t0;
} slot;

static volatile sig_atomic_t g_interrupt;
static void on_signal(int sig) { g_interrupt = sig; }

/* Rebuilds a row from what a child sent; 0 if the bytes do not make a complete row. */
static int decode_row(const slot *sl, const pb_sweep_cell *x, pb_res_row *w) {
    if (sl->len < sizeof *w) return 0;
    memcpy(w, sl->buf, sizeof *w);
    w->eval_step = NULL;
    w->eval_train_loss = w->eval_dev = w->eval_test = w->loss = NULL;
    w->ex = NULL;
    if (strcmp(w->key, x->key) != 0 || w->n_evals < 0 || w->n_evals > PB_RUN_MAX_EVALS || w->n_loss < 0 ||
        w->n_loss > x->cfg.steps || w->n_ex < 0 || w->ex_width < 0 || w->ex_width > 65536 ||
        w->n_ex > ((int64_t)1 << 32))
        return 0;
    size_t n_rec = (size_t)w->n_ex * (size_t)w->ex_width;
    size_t need = sizeof *w + (size_t)w->n_evals * 16 + (size_t)w->n_loss * 4 + n_rec * 4;
    if (sl->len != need) return 0;
    const char *p = sl->buf + sizeof *w;
    int ne = w->n_evals;
    w->eval_step = malloc(sizeof(int32_t) * (size_t)(ne ? ne : 1));
    w->eval_train_loss = malloc(sizeof(float) * (size_t)(ne ? ne : 1));
    w->eval_dev = malloc(sizeof(float) * (size_t)(ne ? ne : 1));
    w->eval_test = malloc(sizeof(float) * (size_t)(ne ? ne : 1));
    w->loss = malloc(sizeof(float) * (size_t)(w->n_loss ? w->n_loss : 1));
    w->ex = malloc(sizeof(float) * (n_rec ? n_rec : 1));
    if (!w->eval_step || !w->eval_train_loss || !w->eval_dev || !w->eval_test || !w->loss || !w->ex) {
        pb_res_row_free(w);
        return 0;
    }
    for (int i = 0; i < ne; i++) {
        float v[3];
        memcpy(&w->eval_step[i], p, 4);
        memcpy(v, p + 4, sizeof v);
        w->eval_train_loss[i] = v[0];
        w->eval_dev[i] = v[1];
        w->eval_test[i] = v[2];
        p += 16;
    }
    memcpy(w->loss, p, sizeof(float) * (size_t)w->n_loss);
    p += sizeof(float) * (size_t)w->n_loss;
    memcpy(w->ex, p, sizeof(float) * n_rec);
    return 1;
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (!(s >= 0) || s > 1e8) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void cell_desc(char *buf, size_t cap, const pb_sweep_cell *x) {
    char lr[32];
    pb_sweep_canon_f32(x->cfg.lr, lr, sizeof lr);
    snprintf(buf, cap, "%s | %s | lr %s | seed %llu", x->label, x->task_name, lr, (unsigned long long)x->cfg.seed);
}

typedef struct {
    int bar;             /* draw a status line (terminal) */
    int quiet;
    size_t done, total;  /* cells of the shard finished (including earlier runs) */
    size_t run_done, run_total;
    double sum_wall;     /* of cells finished in this run */
    int jobs;
    double t_start;
} progress;

static void eta_text(const progress *p, char *buf, size_t cap) {
    size_t left = p->run_total - p->run_done;
    if (!p->run_done) {
        snprintf(buf, cap, "?");
        return;
    }
    /* wall time per finished cell, seen by the clock, over the cells still to go */
    double per = (now_s() - p->t_start) / (double)p->run_done;
    fmt_duration(buf, cap, per * (double)left);
}

static void draw_bar(const progress *p, const slot *slots, int n_slots, const pb_sweep_spec *s) {
    if (!p->bar) return;
    char eta[32], cur[256] = "";
    eta_text(p, eta, sizeof eta);
    for (int i = 0; i < n_slots; i++)
        if (slots[i].pid > 0) {
            cell_desc(cur, sizeof cur, &s->cells[slots[i].cell]);
            break;
        }
    int width = 24, fill = p->total ? (int)((double)width * (double)p->done / (double)p->total) : width;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r\033[K[%s] %zu/%zu cells  ETA %s  %s", bar, p->done, p->total, eta, cur);
    fflush(stderr);
}

static void report_cell(const progress *p, const pb_sweep_cell *x, const pb_res_row *w) {
    if (p->quiet) return;
    char desc[256], eta[32], met[96] = "";
    cell_desc(desc, sizeof desc, x);
    eta_text(p, eta, sizeof eta);
    if (!strcmp(w->status, "failed")) snprintf(met, sizeof met, "%.90s", w->message);
    else if (isfinite(w->dev_metric))
        snprintf(met, sizeof met, "dev %s %.4f, test %.4f", w->select_metric, w->dev_metric, w->test_metric);
    else snprintf(met, sizeof met, "%.90s", w->message);
    if (p->bar) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "[%zu/%zu] %-8s %s | %s | %.1f s | ETA %s\n", p->done, p->total, w->status, desc, met,
            w->wall_seconds, eta);
}

static int cmp_key(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Where a cell is in this run: not part of it (another shard, or finished before), waiting to be
 * started, running, or finished now. */
enum { CELL_OUTSIDE, CELL_PENDING, CELL_RUNNING, CELL_DONE };

/* lr_protocol first_seed (docs/STATISTICS.md): whether deferred cell x runs. Its group is the
 * first seed's cells of the same backbone, method and task (every rate); once they are all in
 * the results, the rate they choose (pb_table_choose_lr, the table's rule) runs and the others
 * are left out. Returns 1 run, 0 leave out, -1 wait (a first-seed cell is pending or running).
 * *why says why a cell is left out without a choice. */
static int deferred_decision(const pb_sweep_spec *s, const pb_res *res, const unsigned char *where, size_t ci,
                             const char **why) {
    const pb_sweep_cell *x = &s->cells[ci];
    uint64_t first = 0;
    int have_first = 0, higher = 1, complete = 1, waiting = 0;
    for (size_t i = 0; i < s->n_cells; i++) { /* the first seed: the seed of the spec's first cells */
        const pb_sweep_cell *y = &s->cells[i];
        if (y->ref < 0 && !y->deferred && !strcmp(y->backbone_name, x->backbone_name) && !strcmp(y->method, x->method) &&
            !strcmp(y->task, x->task)) {
            if (!have_first) first = y->cfg.seed, have_first = 1;
            if (y->cfg.seed != first) continue;
            long j = pb_res_find(res, y->key);
            if (j >= 0) {
                higher = res->rows[j].higher_is_better;
                continue;
            }
            complete = 0;
            if (where[i] == CELL_PENDING || where[i] == CELL_RUNNING) waiting = 1;
        }
    }
    if (waiting) return -1;
    if (!have_first || !complete) {
        *why = "the first seed's cells of this method and task are not all in the results file (another shard? "
               "merge the shards into one file, then run again)";
        return 0;
    }
    double lr;
    int n_lrs, edge;
    if (!pb_table_choose_lr(res, x->backbone_name, x->method, x->task, higher, &lr, &n_lrs, &edge)) {
        *why = "no learning rate of the first seed finished ok";
        return 0;
    }
    *why = NULL;
    return (float)lr == x->cfg.lr;
}

static int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

pb_status pb_sweep_run(const pb_sweep_spec *s, const pb_sweep_opts *o, pb_sweep_summary *sum) {
    memset(sum, 0, sizeof *sum);
    int jobs = o->jobs > 0 ? o->jobs : 1;
    int threads = o->threads > 0 ? o->threads : s->threads > 0 ? s->threads : cpu_count() / jobs;
    if (threads < 1) threads = 1;
    int shard_k = o->shard_n > 0 ? o->shard_k : 1, shard_n = o->shard_n > 0 ? o->shard_n : 1;
    assert(shard_k >= 1 && shard_k <= shard_n);

    int lock = -1;
    pb_status st = pb_res_lock(o->out, &lock);
    if (st) return st;
    pb_res res;
    pb_res_init(&res);
    st = pb_res_read(o->out, &res);
    if (st == PB_ENOTFOUND) {
        pb_error_clear();
        st = pb_res_write(o->out, &res); /* an empty file now: an unwritable path fails before any cell runs */
    } else if (st) {
        st = pb_error_context(st, "cannot resume");
    }
    size_t *todo = malloc(sizeof *todo * (s->n_cells ? s->n_cells : 1));
    slot *slots = calloc((size_t)jobs, sizeof *slots);
    if (!st && (!todo || !slots)) st = pb_errorf(PB_ENOMEM, "out of memory");
    if (st) {
        free(todo), free(slots);
        pb_res_free(&res);
        pb_res_unlock(lock);
        return st;
    }
    size_t n_todo = 0;
    unsigned char *where = calloc(s->n_cells ? s->n_cells : 1, 1);
    if (!where) {
        free(todo), free(slots);
        pb_res_free(&res);
        pb_res_unlock(lock);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    sum->total = s->n_cells;
    for (size_t i = 0; i < s->n_cells; i++) {
        if (i % (size_t)shard_n != (size_t)(shard_k - 1)) continue;
        sum->in_shard++;
        long j = pb_res_find(&res, s->cells[i].key);
        if (j >= 0 && strcmp(res.rows[j].status, "failed") != 0) sum->already++;
        else todo[n_todo++] = i, where[i] = CELL_PENDING;
    }
    size_t foreign = 0;
    const char **keys = malloc(sizeof *keys * (s->n_cells ? s->n_cells : 1));
    if (keys) {
        for (size_t i = 0; i < s->n_cells; i++) keys[i] = s->cells[i].key;
        qsort(keys, s->n_cells, sizeof *keys, cmp_key);
        for (size_t j = 0; j < res.n; j++) {
            const char *k = res.rows[j].key;
            foreign += !bsearch(&k, keys, s->n_cells, sizeof *keys, cmp_key);
        }
        free(keys);
    }
    progress pr = {.bar = o->progress < 0 ? isatty(2) : o->progress, .quiet = o->quiet, .done = sum->already,
                   .total = sum->in_shard, .run_total = n_todo, .jobs = jobs, .t_start = now_s()};
    char shard[64] = "";
    if (shard_n > 1) snprintf(shard, sizeof shard, " (shard %d/%d: %zu)", shard_k, shard_n, sum->in_shard);
    fprintf(stderr, "sweep %s: %zu cells%s, %zu already in %s, %zu to run; %d job%s x %d thread%s\n", s->name,
            s->n_cells, shard, sum->already, o->out, n_todo, jobs, jobs > 1 ? "s" : "", threads, threads > 1 ? "s" : "");
    if (s->n_skipped) fprintf(stderr, "  left out %d cells: %s\n", s->n_skipped, s->skipped_note);
    if (foreign) fprintf(stderr, "  note: %s also holds %zu cells of other specs (kept)\n", o->out, foreign);

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_interrupt = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    pid_t self = getpid();
    size_t next = 0;
    int active = 0;
    while ((next < n_todo || active > 0) && !st) {
        while (!g_interrupt && active < jobs && next < n_todo) {
            if (s->cells[todo[next]].deferred) {
                const char *why = NULL;
                int d = deferred_decision(s, &res, where, todo[next], &why);
                if (d < 0 && active > 0) break; /* the first seed's cells are still running: wait for them */
                if (d < 0) { /* pending but not running: cannot happen in cell order; never wait forever */
                    d = 0;
                    why = "the first seed's cells of this method and task did not run first";
                }
                if (d == 0) {
                    if (why && !sum->undecided++)
                        fprintf(stderr, "%s  %s x %s seed %llu: left out: %s\n", pr.bar ? "\r\033[K" : "",
                                s->cells[todo[next]].label, s->cells[todo[next]].task_name,
                                (unsigned long long)s->cells[todo[next]].cfg.seed, why);
                    sum->left_out++;
                    where[todo[next]] = CELL_OUTSIDE;
                    pr.total--;
                    pr.run_total--;
                    next++;
                    continue;
                }
            }
            int p[2];
            if (pipe(p) != 0) {
                st = pb_errorf(PB_EIO, "pipe: %s", strerror(errno));
                break;
            }
            int k = 0;
            while (slots[k].pid > 0) k++;
            size_t ci = todo[next];
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) {
                close(p[0]), close(p[1]);
                st = pb_errorf(PB_EIO, "fork: %s", strerror(errno));
                break;
            }
            if (pid == 0) {
                close(p[0]);
                close(lock);
                for (int i = 0; i < jobs; i++)
                    if (slots[i].pid > 0) close(slots[i].fd);
                child_main(s, &s->cells[ci], threads, jobs, p[1], self);
            }
            close(p[1]);
            slots[k].pid = pid; /* the buffer (buf, cap) is kept for reuse */
            slots[k].fd = p[0];
            slots[k].cell = ci;
            where[ci] = CELL_RUNNING;
            slots[k].len = 0;
            slots[k].t0 = now_s();
            active++;
            next++;
            pb_res_crash_point("cell-started");
        }
        if (st) break;
        draw_bar(&pr, slots, jobs, s);
        if (g_interrupt) break;
        if (!active) continue; /* nothing running (the rest was left out): the loop ends */
        struct pollfd pfd[256];
        int map[256], np = 0;
        for (int i = 0; i < jobs && np < 256; i++)
            if (slots[i].pid > 0) {
                pfd[np] = (struct pollfd){.fd = slots[i].fd, .events = POLLIN};
                map[np++] = i;
            }
        int rc = poll(pfd, (nfds_t)np, pr.bar ? 1000 : -1);
        if (rc < 0) {
            if (errno == EINTR) continue;
            st = pb_errorf(PB_EIO, "poll: %s", strerror(errno));
            break;
        }
        for (int q = 0; q < np && !st; q++) {
            if (!(pfd[q].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            slot *sl = &slots[map[q]];
            if (sl->cap - sl->len < 65536) {
                size_t cap = sl->cap ? 2 * sl->cap : 131072;
                char *b = realloc(sl->buf, cap);
                if (!b) {
                    st = pb_errorf(PB_ENOMEM, "out of memory");
                    break;
                }
                sl->buf = b;
                sl->cap = cap;
            }
            ssize_t k = read(sl->fd, sl->buf + sl->len, sl->cap - sl->len);
            if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (k > 0) {
                sl->len += (size_t)k;
                continue;
            }
            /* end of file: the child is done (or dead) */
            close(sl->fd);
            int ws = 0;
            while (waitpid(sl->pid, &ws, 0) < 0 && errno == EINTR) {
            }
            const pb_sweep_cell *x = &s->cells[sl->cell];
            pb_res_row w;
            int have = WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && decode_row(sl, x, &w);
            if (!have) {
                row_identity(&w, s, x, threads, jobs);
                w.wall_seconds = now_s() - sl->t0;
                if (WIFSIGNALED(ws))
                    row_failed(&w, "the cell's process was killed by signal %d (%s)%s", WTERMSIG(ws),
                               strsignal(WTERMSIG(ws)),
                               WTERMSIG(ws) == SIGKILL ? "; out of memory?" : "; a bug: please report it");
                else row_failed(&w, "the cell's process exited with status %d without a result", WEXITSTATUS(ws));
            }
            sl->pid = 0;
            sl->len = 0;
            where[sl->cell] = CELL_DONE;
            active--;
            if (g_interrupt && !have) { /* killed by the interrupt: in flight, not failed */
                pb_res_row_free(&w);
                continue;
            }
            pb_res_crash_point("cell-finished");
            st = pb_res_put(&res, &w);
            if (!st) st = pb_res_write(o->out, &res);
            if (st) {
                st = pb_error_context(st, "recording cell %s (%s x %s)", x->key, x->label, x->task_name);
                pb_res_row_free(&w);
                break;
            }
            sum->run++;
            if (!strcmp(w.status, "ok")) sum->ok++;
            else if (!strcmp(w.status, "diverged")) sum->diverged++;
            else sum->failed++;
            pr.done++;
            pr.run_done++;
            pr.sum_wall += w.wall_seconds;
            report_cell(&pr, x, &w);
            pb_res_row_free(&w);
        }
    }
    /* An interrupt or a sweep error: cells still in flight are stopped; they are not recorded. */
    int in_flight = 0;
    for (int i = 0; i < jobs; i++)
        if (slots[i].pid > 0) {
            kill(slots[i].pid, SIGKILL);
            while (waitpid(slots[i].pid, NULL, 0) < 0 && errno == EINTR) {
            }
            close(slots[i].fd);
            in_flight++;
        }
    for (int i = 0; i < jobs; i++) free(slots[i].buf);
    if (pr.bar) fprintf(stderr, "\r\033[K");
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (g_interrupt && !st) {
        sum->interrupted = 1;
        fprintf(stderr, "interrupted: %zu cells recorded in %s; %d in flight and %zu not started will run when the same "
                        "command is repeated\n",
                sum->run, o->out, in_flight, n_todo - next);
    }
    if (sum->left_out)
        fprintf(stderr, "lr_protocol first_seed: %zu cells of later seeds at rates the first seed did not choose were left "
                        "out%s\n",
                sum->left_out, sum->undecided ? " (some undecided: see above)" : "");
    free(where);
    free(todo);
    free(slots);
    pb_res_free(&res);
    pb_res_unlock(lock);
    return st;
}
