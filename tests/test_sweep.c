/* test_sweep.c — sweeps end to end, by running the real `peftbench` binary (fork + exec):
 * spec errors name file, line and key; keys are stable and independent of how a spec is
 * written; a sweep records every cell with its measurements and resumes without redoing any;
 * --jobs gives the same numbers as one job; shards 1/3, 2/3, 3/3 merged equal the unsharded
 * sweep; a sweep killed (SIGKILL) at named points and at random times loses at most the cells
 * in flight, never a finished one, and its file always opens; crashing and failing cells are
 * recorded and the sweep goes on; bad outputs are refused without touching what exists.
 *
 * Kill points are deterministic: PEFTBENCH_CRASH=STAGE:K makes the sweep SIGKILL itself the
 * K-th time it reaches STAGE (results.h). Random-time kills add coverage; no assertion depends
 * on timing. */
#include "testutil.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/sweep.h"
#include "results/results.h"
#include "results/table.h"

/* ---- helpers -------------------------------------------------------------------------------- */

#define RUN(crash, log, ...) tu_run_peftbench_ex(crash, log, -1, (const char *const[]){__VA_ARGS__, NULL})

static void read_rows(const char *path, pb_res *r) {
    pb_res_init(r);
    if (pb_res_read(path, r)) fail_msg("reading %s: %s", path, pb_errmsg());
}

/* The spec most tests run: 2 methods x 3 learning rates x 1 task x 1 seed = 6 cells. */
static const char *k_spec =
    "; test spec\n"
    "[sweep]\n"
    "name = t6\n"
    "backbones = tiny\n"
    "tasks = sentiment:n_train=64,n_dev=32,n_test=32\n"
    "lrs = 1e-3 3e-3 1e-2\n"
    "seeds = 1\n"
    "steps = 10\n"
    "batch = 4\n"
    "max_len = 48\n"
    "eval_every = 5\n"
    "forgetting = builtin\n"
    "forgetting_tokens = 512\n"
    "\n"
    "[method full]\n"
    "\n"
    "[method lora]\n"
    "r = 2\n"
    "targets = q_proj+v_proj\n";

static void spec_keys(const char *spec, char keys[][PB_RES_KEY], size_t *n) {
    pb_sweep_spec s;
    if (pb_sweep_load(spec, NULL, &s)) fail_msg("%s", pb_errmsg());
    *n = s.n_cells;
    for (size_t i = 0; i < s.n_cells; i++) snprintf(keys[i], PB_RES_KEY, "%s", s.cells[i].key);
    pb_sweep_free(&s);
}

static int key_in(const char keys[][PB_RES_KEY], size_t n, const char *k) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i], k)) return 1;
    return 0;
}

/* ---- spec parsing --------------------------------------------------------------------------- */

typedef struct {
    const char *text;
    const char *needle; /* expected in the message; "@N" at its start means "FILE:N: " */
} bad_spec;

static void test_spec_errors(void **state) {
    (void)state;
    static const bad_spec cases[] = {
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nstepz = 3\n[method full]\n", "@4: [sweep]: unknown key 'stepz'"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nsteps = ten\n[method full]\n", "@4: [sweep]: steps = 'ten' is not an integer"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nsteps = 3\nsteps = 4\n[method full]\n", "@5: [sweep]: 'steps' given twice (first on line 4)"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[methods full]\n", "@4: unknown section [methods full]"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[method lorra]\nr = 4\n", "@4: [method lorra]: unknown method 'lorra'"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[method lora]\nr = 4\n  8\n  x\n", "@7: [method lora]: lora: r=x is not an integer"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[method lora]\nrnk = 4\n", "@5: [method lora]: lora: unknown hyperparameter 'rnk'"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n  nosuchtask\n[method full]\n", "@4: tasks: "},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment:foo=1\n[method full]\n", "@3: tasks: task spec 'sentiment:foo=1': unknown option 'foo'"},
        {"[sweep]\nbackbones = huge\ntasks = sentiment\n[method full]\n", "@2: backbones: 'huge' is neither a preset"},
        {"[sweep]\nbackbones = tiny\n[method full]\n", "no 'tasks'"},
        {"[sweep]\ntasks = sentiment\n[method full]\n", "no 'backbones'"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n", "no [method NAME] section"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nlrs = 1e-3 fast\n[method full]\n", "@4: [sweep]: lrs: 'fast' is not a learning rate"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[method full]\nlrs = 0\n", "@5: [method full]: lrs: '0' is not a learning rate"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nseeds = 1 1\n[method full]\n", "@4: [sweep]: seeds: 1 is listed twice"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[method full]\n[method full]\n", "@5: section [method full] appears twice (first on line 4)"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nthis line is wrong\n[method full]\n", "@4: expected 'key = value'"},
        {"steps = 3\n[sweep]\n", "@1: 'steps' is outside any section"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nschedule = zigzag\n[method full]\n", "@4: [sweep]: schedule: "},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\nforgetting = /no/such/corpus.txt\n[method full]\n", "@4: [sweep]: forgetting: "},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment\n[method a]\nmethod = lora\n[method b]\nmethod = lora\nr = 8\n",
         "the same method configuration as [method a]"},
        {"[sweep]\nbackbones = tiny tiny\ntasks = sentiment\n[method full]\n", "@2: backbones: 'tiny' is the same backbone"},
        {"[sweep]\nbackbones = tiny\ntasks = sentiment sentiment\n[method full]\n", "@3: tasks: 'sentiment' is listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.ini", i);
        const char *p = tu_write_tmp(name, cases[i].text);
        char want[512];
        if (cases[i].needle[0] == '@') {
            int line = atoi(cases[i].needle + 1);
            const char *rest = strchr(cases[i].needle, ':') + 2;
            snprintf(want, sizeof want, "%s:%d: %s", p, line, rest);
        } else {
            snprintf(want, sizeof want, "%s", cases[i].needle);
        }
        pb_sweep_spec s;
        pb_status st = pb_sweep_load(p, NULL, &s);
        if (st == PB_OK) fail_msg("case %zu: accepted, expected an error containing '%s'", i, want);
        if (!strstr(pb_errmsg(), want)) fail_msg("case %zu: message '%s' does not contain '%s'", i, pb_errmsg(), want);
    }
    /* a line longer than inih's buffer is refused with a hint, not split silently */
    char longspec[1024];
    snprintf(longspec, sizeof longspec, "[sweep]\nbackbones = tiny\ntasks = sentiment:%0250d\n[method full]\n", 0);
    const char *p = tu_write_tmp("long.ini", longspec);
    pb_sweep_spec s;
    assert_int_not_equal(pb_sweep_load(p, NULL, &s), PB_OK);
    assert_non_null(strstr(pb_errmsg(), ":3: line longer than"));
    assert_int_equal(pb_sweep_load(tu_tmp_path("missing.ini"), NULL, &s), PB_ENOTFOUND);
}

static void test_canonical_forms(void **state) {
    (void)state;
    char a[PB_RES_SPEC], b[PB_RES_SPEC], c[PB_RES_SPEC];
    assert_int_equal(pb_sweep_canon_method("lora:r=4,alpha=8,targets=q_proj+v_proj", a, sizeof a), PB_OK);
    assert_int_equal(pb_sweep_canon_method("lora:targets=v_proj+q_proj,alpha=8.0,r=4", b, sizeof b), PB_OK);
    assert_string_equal(a, b);                            /* order, aliases and spelling do not matter */
    assert_int_equal(pb_sweep_canon_method(a, c, sizeof c), PB_OK);
    assert_string_equal(a, c);                            /* canonical of canonical */
    assert_non_null(strstr(a, "targets=attn.q+attn.v")); /* sites by canonical name */
    assert_int_equal(pb_sweep_canon_method("full", c, sizeof c), PB_OK);
    assert_string_equal(c, "full");
    assert_int_not_equal(pb_sweep_canon_method("lora:r=zero", c, sizeof c), PB_OK);
    pb_sweep_canon_task("sentiment:n_train=5,max_dev=3", a, sizeof a);
    pb_sweep_canon_task("sentiment:max_dev=3,n_train=5", b, sizeof b);
    assert_string_equal(a, b);
    assert_string_equal(a, "sentiment:max_dev=3,n_train=5");
    pb_sweep_canon_task("glue:sst2,dir=/x,max_train=9", a, sizeof a); /* the positional item stays first */
    assert_string_equal(a, "glue:sst2,dir=/x,max_train=9");
    pb_sweep_canon_f32(1e-3f, a, sizeof a);
    assert_string_equal(a, "0.001");
    pb_sweep_canon_f32(50.0f, a, sizeof a);
    assert_string_equal(a, "50");
    pb_sweep_canon_f32(3e-4f, a, sizeof a);
    assert_string_equal(a, "0.0003");
}

/* Keys are a function of the configuration alone: this golden value must not change unless the
 * configuration format does (which would make old results files unresumable). */
static void test_keys_stable(void **state) {
    (void)state;
    const char *p = tu_write_tmp("t6.ini", k_spec);
    pb_sweep_spec s;
    if (pb_sweep_load(p, NULL, &s)) fail_msg("%s", pb_errmsg());
    assert_int_equal(s.n_cells, 6);
    assert_string_equal(s.cells[0].config,
                        "peftbench-cell 1\nbackbone=preset:tiny\ntask=sentiment:n_dev=32,n_test=32,n_train=64\n"
                        "method=full\nseed=1\nsteps=10\nbatch=4\nmax_len=48\neval_every=5\neval_max=0\ngen_max=0\n"
                        "lr=0.001\nweight_decay=0\nwarmup_frac=0.06\nclip=1\nschedule=linear\n");
    assert_string_equal(s.cells[0].key, "3565f8e932533e73");
    for (size_t i = 0; i < s.n_cells; i++)
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s.cells[i].key, s.cells[j].key);
    /* the same sweep written differently: other order of keys and items, other number spelling,
     * defaults spelled out, a grid written over continuation lines */
    const char *q = tu_write_tmp("t6b.ini",
                               "[method lora]\ntargets = v_proj+q_proj\nr = 2\n\n[sweep]\nmax_len = 48\n"
                               "tasks = sentiment:n_test=32,n_train=64,n_dev=32\nsteps = 10\nname = other\n"
                               "lrs = 0.001\n  0.003 0.01\nbatch = 4\nbackbones = tiny\neval_every = 5\n"
                               "seeds = 1\nclip = 1.0\nschedule = linear\n[method full]\n");
    pb_sweep_spec t;
    if (pb_sweep_load(q, NULL, &t)) fail_msg("%s", pb_errmsg());
    assert_int_equal(t.n_cells, 6);
    for (size_t i = 0; i < s.n_cells; i++) {
        int found = 0;
        for (size_t j = 0; j < t.n_cells; j++) found |= !strcmp(s.cells[i].key, t.cells[j].key);
        if (!found) fail_msg("cell %zu (%s) of the first spec has no twin in the second", i, s.cells[i].key);
    }
    pb_sweep_free(&s);
    pb_sweep_free(&t);
}

/* ---- running -------------------------------------------------------------------------------- */

static void check_ok_row(const pb_res_row *w) {
    if (strcmp(w->status, "ok")) fail_msg("cell %s: status %s (%s)", w->key, w->status, w->message);
    assert_true(w->trainable > 0 && w->total >= w->trainable);
    assert_true(w->trainable_pct > 0 && w->trainable_pct <= 100);
    assert_true(w->flops_fwd > 0 && w->flops_bwd_in > 0 && w->flops_train > w->flops_fwd);
    assert_true(w->infer_flops > 0);
    assert_true(w->mem_peak[PB_MEM_FROZEN] + w->mem_peak[PB_MEM_TRAINABLE] > 0 && w->mem_peak[PB_MEM_ACTS] > 0);
    assert_true(w->peak_rss > 0);
    assert_true(w->train_tok_per_s > 0 && w->wall_seconds > 0 && w->train_tokens > 0);
    assert_true(w->dev_metric >= 0 && w->dev_metric <= 1 && w->test_metric >= 0 && w->test_metric <= 1);
    assert_string_equal(w->select_metric, "acc");
    assert_int_equal(w->n_loss, w->steps);
    assert_int_equal(w->n_evals, 2);
    assert_int_equal(w->eval_step[1], 10);
    assert_true(isfinite(w->heldout_bpb_before) && isfinite(w->heldout_bpb_after)); /* full and lora both merge */
    assert_true(fabs(w->forgetting - (w->heldout_bpb_after - w->heldout_bpb_before)) < 1e-12);
    assert_string_equal(w->forgetting_corpus, "builtin");
    assert_true(w->git_commit[0] && w->compiler[0] && w->host[0] && w->date[0] && strstr(w->blas, "OpenBLAS"));
    assert_int_equal(w->threads, 1);
}

static void test_sweep_and_resume(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("run.ini", k_spec), *out = tu_tmp_path("run.h5"), *log = tu_tmp_path("run.log");
    int ws = RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1");
    tu_expect_exit(ws, 0, log);
    pb_res a;
    read_rows(out, &a);
    assert_int_equal(a.n, 6);
    for (size_t i = 0; i < a.n; i++) check_ok_row(&a.rows[i]);
    /* full fine-tuning trains everything; LoRA a sliver */
    long full = -1, lora = -1;
    for (size_t i = 0; i < a.n; i++) {
        if (!strcmp(a.rows[i].method_name, "full")) full = (long)i;
        if (!strcmp(a.rows[i].method_name, "lora")) lora = (long)i;
    }
    assert_true(full >= 0 && lora >= 0);
    assert_true(a.rows[full].trainable_pct == 100.0);
    assert_true(a.rows[lora].trainable_pct < 20.0);
    assert_string_equal(a.rows[lora].category, "reparameterization");
    /* re-running resumes: nothing runs, nothing changes */
    ws = RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1");
    tu_expect_exit(ws, 0, log);
    assert_true(tu_log_contains(log, "6 already in"));
    assert_true(tu_log_contains(log, "0 to run"));
    pb_res b;
    read_rows(out, &b);
    assert_int_equal(b.n, 6);
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.rows[i].key, b.rows[i].key);
        assert_string_equal(a.rows[i].date, b.rows[i].date);
        assert_true(a.rows[i].wall_seconds == b.rows[i].wall_seconds);
    }
    pb_res_free(&a);
    pb_res_free(&b);
}

/* Two cells side by side, one thread each, give bit-identical numbers to one at a time. */
static void test_jobs_match_serial(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("jobs.ini", k_spec), *log = tu_tmp_path("jobs.log");
    const char *o1 = tu_tmp_path("jobs1.h5"), *o2 = tu_tmp_path("jobs2.h5");
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", o1, "--threads", "1", "--jobs", "1"), 0, log);
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", o2, "--threads", "1", "--jobs", "2"), 0, log);
    pb_res a, b;
    read_rows(o1, &a);
    read_rows(o2, &b);
    assert_int_equal(a.n, 6);
    assert_int_equal(b.n, 6);
    for (size_t i = 0; i < a.n; i++) {
        long j = pb_res_find(&b, a.rows[i].key);
        assert_true(j >= 0);
        const pb_res_row *x = &a.rows[i], *y = &b.rows[j];
        assert_int_equal(y->jobs, 2);
        assert_true(x->dev_metric == y->dev_metric && x->test_metric == y->test_metric);
        assert_true(x->flops_train == y->flops_train && x->trainable == y->trainable);
        assert_int_equal(x->n_loss, y->n_loss);
        tu_assert_same(x->loss, y->loss, (size_t)x->n_loss, "loss curve");
        assert_true(x->heldout_bpb_after == y->heldout_bpb_after);
    }
    pb_res_free(&a);
    pb_res_free(&b);
}

static void test_shards_merge(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("shard.ini", k_spec), *log = tu_tmp_path("shard.log");
    const char *full = tu_tmp_path("shard_all.h5"), *merged = tu_tmp_path("shard_merged.h5");
    const char *sh[3] = {tu_tmp_path("shard1.h5"), tu_tmp_path("shard2.h5"), tu_tmp_path("shard3.h5")};
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", full, "--threads", "1"), 0, log);
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        char arg[16];
        snprintf(arg, sizeof arg, "%d/3", k + 1);
        tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", sh[k], "--threads", "1", "--shard", arg), 0, log);
        pb_res r;
        read_rows(sh[k], &r);
        assert_int_equal(r.n, 2); /* cells k, k+3 */
        total += r.n;
        pb_res_free(&r);
    }
    assert_int_equal(total, 6);
    tu_expect_exit(RUN(NULL, log, "merge", sh[0], sh[1], sh[2], "-o", merged), 0, log);
    pb_res a, b;
    read_rows(full, &a);
    read_rows(merged, &b);
    assert_int_equal(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        long j = pb_res_find(&b, a.rows[i].key);
        if (j < 0) fail_msg("cell %s of the unsharded sweep is missing from the merge", a.rows[i].key);
        assert_string_equal(a.rows[i].config, b.rows[j].config);
        assert_true(a.rows[i].dev_metric == b.rows[j].dev_metric); /* same numbers, too */
    }
    pb_res_free(&b);
    /* merging overlapping files: duplicates detected by key, kept once */
    tu_expect_exit(RUN(NULL, log, "merge", merged, full, sh[1], "-o", merged), 0, log);
    assert_true(tu_log_contains(log, "duplicate"));
    read_rows(merged, &b);
    assert_int_equal(b.n, 6);
    pb_res_free(&b);
    /* an existing output that is not an input is refused (nothing lost), unless --force */
    tu_expect_exit(RUN(NULL, log, "merge", sh[0], "-o", full), 2, log);
    assert_true(tu_log_contains(log, "is not one of the inputs"));
    read_rows(full, &b);
    assert_int_equal(b.n, 6);
    pb_res_free(&b);
    /* a shard resumed with a different K/N only adds its own cells */
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", sh[0], "--threads", "1", "--shard", "2/3"), 0, log);
    read_rows(sh[0], &b);
    assert_int_equal(b.n, 4);
    pb_res_free(&b);
    pb_res_free(&a);
}

/* Kill points: (PEFTBENCH_CRASH value, rows the file must hold afterwards). With one job the
 * sweep writes the empty file (write 1), then the file after cell k (write k+1). */
typedef struct {
    const char *crash;
    size_t rows;
} kill_case;

static void check_invariants(const char *out, const char keys[][PB_RES_KEY], size_t n_keys, pb_res *r) {
    read_rows(out, r); /* opens; duplicates would be refused by the reader */
    for (size_t i = 0; i < r->n; i++) {
        if (!key_in(keys, n_keys, r->rows[i].key)) fail_msg("row %s is not a cell of the spec", r->rows[i].key);
        if (strcmp(r->rows[i].status, "ok")) fail_msg("row %s: %s", r->rows[i].key, r->rows[i].message);
    }
}

/* After a kill: resume, then every row that was there is there unchanged (not redone). */
static void resume_and_compare(const char *spec, const char *out, const char *log, const pb_res *before,
                               const char keys[][PB_RES_KEY], size_t n_keys) {
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1"), 0, log);
    pb_res after;
    check_invariants(out, keys, n_keys, &after);
    assert_int_equal(after.n, n_keys);
    for (size_t i = 0; i < before->n; i++) {
        long j = pb_res_find(&after, before->rows[i].key);
        if (j < 0) fail_msg("finished cell %s was lost", before->rows[i].key);
        if (strcmp(after.rows[j].date, before->rows[i].date) || after.rows[j].wall_seconds != before->rows[i].wall_seconds)
            fail_msg("finished cell %s was redone", before->rows[i].key);
    }
    pb_res_free(&after);
}

static void test_kill_at_named_points(void **state) {
    (void)state;
    static const kill_case cases[] = {
        {"cell-started:1", 0}, {"cell-started:4", 3}, {"cell-finished:2", 1}, {"tmp-created:3", 1},
        {"tmp-written:4", 2},  {"tmp-synced:2", 0},   {"renamed:1", 0},       {"renamed:5", 4},
    };
    const char *spec = tu_write_tmp("kill.ini", k_spec), *log = tu_tmp_path("kill.log");
    char keys[16][PB_RES_KEY];
    size_t n_keys;
    spec_keys(spec, keys, &n_keys);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64];
        snprintf(name, sizeof name, "kill%zu.h5", c);
        const char *out = tu_tmp_path(name);
        int ws = RUN(cases[c].crash, log, "sweep", spec, "-o", out, "--threads", "1");
        if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) {
            tu_print_log(log);
            fail_msg("%s: the sweep was not killed", cases[c].crash);
        }
        pb_res before;
        check_invariants(out, keys, n_keys, &before);
        if (before.n != cases[c].rows)
            fail_msg("%s: %zu rows after the kill, expected %zu", cases[c].crash, before.n, cases[c].rows);
        resume_and_compare(spec, out, log, &before, keys, n_keys);
        pb_res_free(&before);
    }
}

static void test_kill_at_random_times(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("rkill.ini", k_spec), *log = tu_tmp_path("rkill.log"), *out = tu_tmp_path("rkill.h5");
    char keys[16][PB_RES_KEY];
    size_t n_keys;
    spec_keys(spec, keys, &n_keys);
    unsigned seed = 12345;
    pb_res prev;
    pb_res_init(&prev);
    for (int round = 0; round < 5; round++) {
        seed = seed * 1103515245u + 12345u;
        int ms = (int)((seed >> 8) % 1500);
        tu_run_peftbench_ex(NULL, log, ms, (const char *const[]){"sweep", spec, "-o", out, "--threads", "1", "--jobs", "2", NULL});
        if (access(out, F_OK) != 0) continue; /* killed before the first write */
        pb_res now;
        check_invariants(out, keys, n_keys, &now);
        for (size_t i = 0; i < prev.n; i++) { /* nothing finished before is lost or redone */
            long j = pb_res_find(&now, prev.rows[i].key);
            assert_true(j >= 0);
            assert_string_equal(now.rows[j].date, prev.rows[i].date);
        }
        pb_res_free(&prev);
        prev = now;
    }
    resume_and_compare(spec, out, log, &prev, keys, n_keys);
    pb_res_free(&prev);
}

/* Cells whose process dies, and cells that fail, are recorded as failed; the sweep goes on, and
 * the next run retries them. */
static void test_failed_cells(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("fail.ini", k_spec), *log = tu_tmp_path("fail.log"), *out = tu_tmp_path("fail.h5");
    tu_expect_exit(RUN("cell-run:1", log, "sweep", spec, "-o", out, "--threads", "1", "--jobs", "2"), 0, log);
    pb_res r;
    read_rows(out, &r);
    assert_int_equal(r.n, 6);
    for (size_t i = 0; i < r.n; i++) {
        assert_string_equal(r.rows[i].status, "failed");
        assert_non_null(strstr(r.rows[i].message, "killed by signal 9"));
    }
    pb_res_free(&r);
    assert_true(tu_log_contains(log, "6 failed"));
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1"), 0, log);
    assert_true(tu_log_contains(log, "6 to run"));
    read_rows(out, &r);
    assert_int_equal(r.n, 6);
    for (size_t i = 0; i < r.n; i++) assert_string_equal(r.rows[i].status, "ok");
    pb_res_free(&r);
    /* a cell the engine refuses at run time (no room left for the input) fails with its message */
    const char *spec2 = tu_write_tmp("fail2.ini",
                                   "[sweep]\nbackbones = tiny\ntasks = sentiment:n_train=32,n_dev=16,n_test=16\n"
                                   "steps = 4\nbatch = 4\nmax_len = 48\n[method full]\n"
                                   "[method prompt_tuning]\nnum_virtual_tokens = 62\n");
    const char *out2 = tu_tmp_path("fail2.h5");
    tu_expect_exit(RUN(NULL, log, "sweep", spec2, "-o", out2, "--threads", "1"), 0, log);
    read_rows(out2, &r);
    assert_int_equal(r.n, 2);
    int failed = 0, ok = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (!strcmp(r.rows[i].status, "failed")) {
            failed++;
            assert_non_null(strstr(r.rows[i].message, "leaves no room"));
            assert_string_equal(r.rows[i].method_name, "prompt_tuning");
        } else ok++;
    }
    assert_int_equal(failed, 1);
    assert_int_equal(ok, 1);
    pb_res_free(&r);
}

/* Generation cells (LM head): LoRA, prompt tuning (virtual tokens in front while decoding), an
 * adapter; forgetting measured on all of them; `head` (classification only) left out. */
static void test_generation_cells(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("gen.ini",
                                  "[sweep]\nbackbones = tiny\ntasks = reverse:n_train=64,n_dev=16,n_test=16\n"
                                  "steps = 6\nbatch = 4\nmax_len = 48\neval_every = 3\nforgetting = builtin\n"
                                  "forgetting_tokens = 512\n[method lora]\n[method prompt_tuning]\n"
                                  "num_virtual_tokens = 4\n[method seq_bn]\n[method head]\n");
    const char *out = tu_tmp_path("gen.h5"), *log = tu_tmp_path("gen.log");
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1"), 0, log);
    assert_true(tu_log_contains(log, "left out 1 cells: head x reverse"));
    pb_res r;
    read_rows(out, &r);
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < r.n; i++) {
        const pb_res_row *w = &r.rows[i];
        if (strcmp(w->status, "ok")) fail_msg("%s: %s", w->method_label, w->message);
        assert_string_equal(w->task_kind, "generate");
        assert_string_equal(w->select_metric, "exact");
        assert_true(isfinite(w->heldout_bpb_before) && isfinite(w->heldout_bpb_after));
        assert_true(w->infer_flops > 0);
    }
    pb_res_free(&r);
}

static size_t slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void test_bad_outputs(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("badout.ini", k_spec), *log = tu_tmp_path("badout.log");
    /* unwritable */
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", "/nonexistent-dir/r.h5"), 1, log);
    assert_true(tu_log_contains(log, "/nonexistent-dir/r.h5"));
    /* a results file of another schema version: refused, left as it was */
    const char *other = tu_tmp_path("v7.h5");
    pb_res r;
    pb_res_init(&r);
    assert_int_equal(pb_res_write(other, &r), PB_OK);
    hid_t f = H5Fopen(other, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    H5Adelete(f, "format_version");
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int64_t v = 7;
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a), H5Sclose(sp), H5Fclose(f);
    static char b1[1 << 16], b2[1 << 16];
    size_t n1 = slurp(other, b1, sizeof b1);
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", other), 1, log);
    assert_true(tu_log_contains(log, "schema version 7"));
    size_t n2 = slurp(other, b2, sizeof b2);
    assert_true(n1 == n2 && memcmp(b1, b2, n1) == 0);
    /* a file that is not HDF5 at all */
    const char *text = tu_write_tmp("notes.h5", "my notes\n");
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", text), 1, log);
    assert_true(tu_log_contains(log, "not an HDF5 file"));
    n1 = slurp(text, b1, sizeof b1);
    assert_true(n1 == 9 && !memcmp(b1, "my notes\n", 9));
    /* a file another sweep is writing */
    const char *busy = tu_tmp_path("busy.h5");
    int lock;
    assert_int_equal(pb_res_lock(busy, &lock), PB_OK);
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", busy), 1, log);
    assert_true(tu_log_contains(log, "another peftbench process"));
    pb_res_unlock(lock);
    /* spec errors exit 2 and create nothing */
    const char *bad = tu_write_tmp("bad.ini", "[sweep]\nbackbones = tiny\ntasks = nosuch\n[method full]\n");
    const char *none = tu_tmp_path("never.h5");
    tu_expect_exit(RUN(NULL, log, "sweep", bad, "-o", none), 2, log);
    assert_int_equal(access(none, F_OK), -1);
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", none, "--shard", "4/3"), 2, log);
    tu_expect_exit(RUN(NULL, log, "merge", tu_tmp_path("missing.h5"), "-o", none), 1, log);
    assert_int_equal(access(none, F_OK), -1);
}

/* lr_protocol first_seed: the grid runs on the first seed; later seeds run only at the rate the
 * table's rule chooses from the first seed's dev metrics; a resume runs nothing. Reference rows:
 * one cell per (task, predictor), no backbone, with test records. Every ok cell has one test record
 * per test example, and records give back the stored test metric. */
static void test_first_seed_and_references(void **state) {
    (void)state;
    const char *spec = tu_write_tmp("fs.ini", "[sweep]\nname = fs\nbackbones = tiny\n"
                                            "tasks = sentiment:n_train=64,n_dev=32,n_test=32\n"
                                            "  reverse:n_train=32,n_dev=8,n_test=8\n"
                                            "lrs = 1e-3 1e-2 3e-2\nseeds = 1 2 3\nsteps = 6\nbatch = 4\n"
                                            "max_len = 48\neval_every = 3\nlr_protocol = first_seed\n"
                                            "references = all\n[method full]\n[method lora]\nr = 2\n");
    const char *out = tu_tmp_path("fs.h5"), *log = tu_tmp_path("fs.log");
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1", "--jobs", "2"), 0, log);
    pb_res r;
    read_rows(out, &r);
    /* 3 reference cells (majority, ngram_nb on sentiment; copy_input on reverse) + 2 tasks x 2
     * methods x (3 rates of seed 1 + 2 later seeds) */
    assert_int_equal(r.n, 3 + 2 * 2 * 5);
    assert_true(tu_log_contains(log, "16 cells of later seeds at rates the first seed did not choose were left out"));
    int refs = 0;
    for (size_t i = 0; i < r.n; i++) {
        const pb_res_row *w = &r.rows[i];
        if (strcmp(w->status, "ok")) fail_msg("%s: %s", w->method_label, w->message);
        assert_true(w->n_ex > 0 && w->ex && w->ex_width > 0);
        assert_int_equal(w->n_ex, !strcmp(w->task_name, "reverse") ? 8 : 32);
        if (!strcmp(w->category, "reference")) {
            refs++;
            assert_string_equal(w->backbone_name, "");
            assert_true(w->trainable == 0);
            continue;
        }
        if (!strcmp(w->task_name, "sentiment")) { /* the records give the stored accuracy back */
            int right = 0;
            for (int64_t j = 0; j < w->n_ex; j++) right += w->ex[2 * j] == w->ex[2 * j + 1];
            assert_true(fabs((double)right / (double)w->n_ex - w->test_metric) < 1e-12);
        }
        if (w->seed == 1) continue;
        double lr;
        int n_lrs, edge;
        assert_int_equal(pb_table_choose_lr(&r, w->backbone_name, w->method, w->task, w->higher_is_better, &lr, &n_lrs,
                                            &edge),
                         1);
        assert_true((float)lr == (float)w->lr);
    }
    assert_int_equal(refs, 3);
    pb_res_free(&r);
    /* resume: nothing runs again */
    tu_expect_exit(RUN(NULL, log, "sweep", spec, "-o", out, "--threads", "1"), 0, log);
    assert_true(tu_log_contains(log, "0 cells run"));
}

int main(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_errors),        cmocka_unit_test(test_canonical_forms),
        cmocka_unit_test(test_keys_stable),        cmocka_unit_test(test_sweep_and_resume),
        cmocka_unit_test(test_jobs_match_serial),  cmocka_unit_test(test_shards_merge),
        cmocka_unit_test(test_kill_at_named_points), cmocka_unit_test(test_kill_at_random_times),
        cmocka_unit_test(test_failed_cells),       cmocka_unit_test(test_generation_cells),
        cmocka_unit_test(test_bad_outputs),        cmocka_unit_test(test_first_seed_and_references),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
