/* test_sparse.c — the Fisher path of `sparse` end to end (methods/sparse.c), which the registry
 * tests (test_methods.c) reach only through its gradients:
 *  - a real warm-up (training steps with AdamW, so the head moves between them) accumulates, for
 *    every targeted weight, F = sum over examples of the squared gradient of the example's own
 *    mean loss; checked against references computed one example at a time on a copy of the model,
 *    with an LM head and unequal padding (so the rescaling c_b = count / count_b matters) and
 *    with a classification head;
 *  - the choice at the first training forward after the warm-up is the k largest F (ties by
 *    position), and pb_peft_setting_up turns off then;
 *  - then delta trains: W = W0 + delta at the chosen entries, the others stay; the gradient of
 *    delta is checked against finite differences;
 *  - a failed choice (out of memory) fails that forward with a message instead of training the
 *    head alone, and the next forward chooses;
 *  - pb_run_cell reports the warm-up steps (setup_steps), and 0 for a method without one. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/finetune.h"
#include "methods/peft.h"
#include "models/model.h"
#include "optim.h"
#include "pb_mem.h"
#include "pb_rng.h"
#include "families.h"

/* ---- the test model ---------------------------------------------------------------------------- */

#define K_LABELS 3
enum { NB = 2, NT = 6 }; /* sequences per batch, tokens per sequence */

/* The first decoder of tests/families.h (GPT-2 style, tied LM head wte.weight, which the LM case
 * reads) at the methods' test size: 2 layers, d_model 8, d_ff 32, 32 positions, 11 tokens. */
static pb_model_desc test_desc(void) { return tf_desc(tf_first(1), 2, 8, 2, 11, 32); }

typedef struct {
    int32_t ids[NB * NT], targets[NB * NT];
    uint8_t mask[NB * NT];
    pb_batch b;
} tbatch;

/* Batch `step`: sequence i has NT - 1 - i - step % 2 real tokens (LM: that many targets each). */
static void make_batch(tbatch *t, pb_head_kind head, int step) {
    pb_rng r;
    pb_rng_seed(&r, 100 + (uint64_t)step);
    for (int i = 0; i < NB; i++)
        for (int k = 0; k < NT; k++) {
            int j = i * NT + k, real = k < NT - 1 - i - step % 2;
            t->ids[j] = (int32_t)pb_rng_below(&r, 11);
            t->mask[j] = (uint8_t)real;
            t->targets[j] = real ? (int32_t)pb_rng_below(&r, 11) : -1;
        }
    if (head == PB_HEAD_CLS)
        for (int i = 0; i < NB; i++) t->targets[i] = (int32_t)pb_rng_below(&r, K_LABELS);
    t->b = (pb_batch){.B = NB, .T = NT, .ids = t->ids, .mask = t->mask, .targets = t->targets};
}

/* Example i of a batch as a batch of one. */
static pb_batch one(const tbatch *t, pb_head_kind head, int i, int32_t *tg) {
    if (head == PB_HEAD_CLS) tg[0] = t->targets[i];
    else memcpy(tg, t->targets + i * NT, sizeof(int32_t) * NT);
    return (pb_batch){.B = 1, .T = NT, .ids = t->ids + i * NT, .mask = t->mask + i * NT, .targets = tg};
}

static pb_tensor *added(pb_peft *p, const char *name) {
    for (int i = 0; i < p->n_params; i++)
        if (!strcmp(p->params[i].name, name)) return &p->params[i];
    fail_msg("no added tensor %s", name);
    return NULL;
}

static pb_tensor *base(pb_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

static float step(pb_model *m, pb_peft *p, pb_adamw *opt, const pb_batch *b) {
    float loss;
    pb_peft_zero_grad(p);
    if (pb_model_forward(m, b, 1, &loss) != PB_OK) fail_msg("training forward: %s", pb_errmsg());
    pb_model_backward(m);
    pb_adamw_step(opt, 1e-2f);
    return loss;
}

/* The Fisher accumulators (added tensors "<weight>.sparse_fisher", in the method's target order). */
typedef struct {
    int n;
    pb_tensor *F[64];
    char wname[64][96];
} fishers;

static void find_fishers(pb_peft *p, fishers *f) {
    f->n = 0;
    for (int i = 0; i < p->n_params; i++) {
        const char *s = strstr(p->params[i].name, ".sparse_fisher");
        if (!s) continue;
        assert_true(f->n < 64);
        f->F[f->n] = &p->params[i];
        snprintf(f->wname[f->n], sizeof f->wname[0], "%.*s", (int)(s - p->params[i].name), p->params[i].name);
        f->n++;
    }
    assert_true(f->n > 0);
}

static void check_fisher_path(pb_head_kind head) {
    pb_model_desc d = test_desc();
    int K = head == PB_HEAD_CLS ? K_LABELS : 0;
    const int warm = 3; /* fisher_samples = warm * NB */
    pb_model m, ref;
    assert_int_equal(pb_model_init(&m, &d, head, K, 3), PB_OK);
    assert_int_equal(pb_model_init(&ref, &d, head, K, 3), PB_OK); /* every tensor trains */
    pb_peft p;
    char spec[64];
    snprintf(spec, sizeof spec, "sparse:density=0.05,fisher_samples=%d", warm * NB);
    if (pb_peft_create(&p, spec, NULL, head, K, &m, 7) != PB_OK) fail_msg("%s: %s", spec, pb_errmsg());
    fishers f;
    find_fishers(&p, &f);
    /* reference Fisher per target, in double */
    size_t tot = 0;
    for (int i = 0; i < f.n; i++) tot += f.F[i]->numel;
    double *Fref = calloc(tot, sizeof *Fref);
    int nseg = pb_peft_segments(&p, NULL);
    pb_segment *seg = malloc(sizeof *seg * (size_t)nseg);
    pb_peft_segments(&p, seg);
    pb_adamw opt;
    pb_adamw_config oc = pb_adamw_defaults();
    assert_int_equal(pb_adamw_init(&opt, &oc, seg, nseg), PB_OK);
    pb_tensor *head_w = base(&m, head == PB_HEAD_CLS ? "score.weight" : "wte.weight");
    float head0 = head_w->data[0];

    /* the warm-up: per step, the references at the model the step sees, then the step */
    for (int s = 0; s < warm; s++) {
        assert_true(pb_peft_setting_up(&p));
        tbatch tb;
        make_batch(&tb, head, s);
        if (head == PB_HEAD_LM) { /* unequal target counts: the rescaling matters */
            int c0 = 0, c1 = 0;
            for (int k = 0; k < NT; k++) c0 += tb.targets[k] >= 0, c1 += tb.targets[NT + k] >= 0;
            assert_true(c0 != c1);
        }
        memcpy(ref.params, m.params, sizeof(float) * m.n_params);
        for (int i = 0; i < NB; i++) {
            int32_t tg[NT];
            pb_batch b1 = one(&tb, head, i, tg);
            float loss;
            pb_model_zero_grad(&ref);
            assert_int_equal(pb_model_forward(&ref, &b1, 1, &loss), PB_OK);
            pb_model_backward(&ref); /* the gradient of example i's own mean loss */
            size_t o = 0;
            for (int t = 0; t < f.n; t++) {
                const pb_tensor *w = base(&ref, f.wname[t]);
                for (size_t j = 0; j < w->numel; j++) Fref[o + j] += (double)w->grad[j] * w->grad[j];
                o += w->numel;
            }
        }
        step(&m, &p, &opt, &tb.b);
    }
    assert_true(head_w->data[0] != head0 || head == PB_HEAD_LM); /* the head trained (a tied LM head does not) */
    assert_true(pb_peft_setting_up(&p)); /* the choice comes with the next training forward */
    double fmax = 0;
    for (size_t j = 0; j < tot; j++) fmax = fmax > Fref[j] ? fmax : Fref[j];
    assert_true(fmax > 0);
    size_t o = 0;
    for (int t = 0; t < f.n; t++) {
        char what[160];
        snprintf(what, sizeof what, "Fisher of %s (%s head)", f.wname[t], head == PB_HEAD_LM ? "lm" : "cls");
        tu_assert_close_fd(f.F[t]->data, Fref + o, f.F[t]->numel, 1e-6 * fmax, 1e-3, what);
        o += f.F[t]->numel;
    }

    /* the choice: the k largest F over all targets, ties by position, listed target by target */
    pb_tensor *delta = added(&p, "sparse.delta"), *idx = added(&p, "sparse.index"), *w0 = added(&p, "sparse.base");
    size_t k = delta->numel;
    float *all = malloc(sizeof(float) * tot);
    o = 0;
    for (int t = 0; t < f.n; t++) {
        memcpy(all + o, f.F[t]->data, sizeof(float) * f.F[t]->numel);
        o += f.F[t]->numel;
    }
    size_t above = 0, at = 0;
    float thr = 0;
    { /* the k-th largest value */
        float *sorted = malloc(sizeof(float) * tot);
        memcpy(sorted, all, sizeof(float) * tot);
        for (size_t i = 0; i < k; i++) { /* partial selection: k is small */
            size_t best = i;
            for (size_t j = i + 1; j < tot; j++)
                if (sorted[j] > sorted[best]) best = j;
            float tmp = sorted[i];
            sorted[i] = sorted[best];
            sorted[best] = tmp;
        }
        thr = sorted[k - 1];
        free(sorted);
    }
    for (size_t j = 0; j < tot; j++) above += all[j] > thr;
    /* snapshot of the targeted weights before the choice */
    float *before = malloc(sizeof(float) * tot);
    o = 0;
    for (int t = 0; t < f.n; t++) {
        const pb_tensor *w = base(&m, f.wname[t]);
        memcpy(before + o, w->data, sizeof(float) * w->numel);
        o += w->numel;
    }
    tbatch tb;
    make_batch(&tb, head, warm);
    step(&m, &p, &opt, &tb.b);
    assert_false(pb_peft_setting_up(&p));
    long *pos = malloc(sizeof(long) * tot); /* entry's place in the list, or -1 */
    size_t n = 0;
    for (size_t j = 0; j < tot; j++) {
        pos[j] = -1;
        if (!(all[j] > thr || (all[j] == thr && at < k - above))) continue;
        at += all[j] == thr;
        pos[j] = (long)n++;
    }
    assert_int_equal(n, k);
    o = 0;
    for (int t = 0; t < f.n; t++) {
        for (size_t j = 0; j < f.F[t]->numel; j++) {
            if (pos[o + j] < 0) continue;
            uint32_t got;
            memcpy(&got, &idx->data[pos[o + j]], sizeof got);
            if (got != j) fail_msg("chosen entry %ld: index %u, expected %zu of %s", pos[o + j], got, j, f.wname[t]);
            assert_true(w0->data[pos[o + j]] == before[o + j]);
        }
        o += f.F[t]->numel;
    }

    /* delta trains; W = W0 + delta at the chosen entries, the rest unchanged */
    for (int s = 1; s <= 3; s++) {
        make_batch(&tb, head, warm + s);
        step(&m, &p, &opt, &tb.b);
    }
    float loss;
    assert_int_equal(pb_model_forward(&m, &tb.b, 0, &loss), PB_OK); /* writes W0 + delta */
    int moved = 0;
    o = 0;
    for (int t = 0; t < f.n; t++) {
        const pb_tensor *w = base(&m, f.wname[t]);
        for (size_t j = 0; j < w->numel; j++) {
            long q = pos[o + j];
            if (q >= 0) {
                assert_true(w->data[j] == w0->data[q] + delta->data[q]);
                moved += delta->data[q] != 0.0f;
            } else {
                assert_true(w->data[j] == before[o + j]);
            }
        }
        o += w->numel;
    }
    assert_true(moved > 0);
    free(pos);

    /* the gradient of delta after the choice, against finite differences */
    pb_peft_zero_grad(&p);
    assert_int_equal(pb_model_forward(&m, &tb.b, 1, &loss), PB_OK);
    pb_model_backward(&m);
    pb_peft_hold(&p, 1);
    char what[128];
    snprintf(what, sizeof what, "%s (%s head)", spec, head == PB_HEAD_LM ? "lm" : "cls");
    if (tu_check_grad(&m, &tb.b, delta, 0, what)) fail_msg("%s: the gradient of delta is too small to check", what);
    pb_peft_hold(&p, 0);

    free(before);
    free(all);
    free(Fref);
    free(seg);
    pb_adamw_free(&opt);
    pb_peft_free(&p);
    pb_model_free(&ref);
    pb_model_free(&m);
}

static void test_fisher_lm(void **state) {
    (void)state;
    check_fisher_path(PB_HEAD_LM);
}

static void test_fisher_cls(void **state) {
    (void)state;
    check_fisher_path(PB_HEAD_CLS);
}

/* A choice that fails (out of memory) fails the forward that asked for it, with a message. */
static void test_choice_failure(void **state) {
    (void)state;
    pb_model_desc d = test_desc();
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, K_LABELS, 3), PB_OK);
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, "sparse:density=0.05,fisher_samples=2", NULL, PB_HEAD_CLS, K_LABELS, &m, 7),
                     PB_OK);
    tbatch tb;
    make_batch(&tb, PB_HEAD_CLS, 0);
    float loss;
    assert_int_equal(pb_model_forward(&m, &tb.b, 1, &loss), PB_OK); /* the warm-up */
    pb_model_backward(&m);
    pb_mem_fail_at(1); /* the choice's first allocation */
    pb_status st = pb_model_forward(&m, &tb.b, 1, &loss);
    pb_mem_fail_at(0);
    assert_int_equal(st, PB_ENOMEM);
    if (!strstr(pb_errmsg(), "sparse")) fail_msg("the message does not name sparse: %s", pb_errmsg());
    assert_true(pb_peft_setting_up(&p));
    assert_int_equal(pb_model_forward(&m, &tb.b, 1, &loss), PB_OK); /* chooses now */
    assert_false(pb_peft_setting_up(&p));
    pb_peft_free(&p);
    pb_model_free(&m);
}

/* pb_run_cell counts the warm-up: fisher_samples 8 at batch 4 is 2 steps; lora has none. */
static void test_setup_steps(void **state) {
    (void)state;
    const char *methods[] = {"sparse:density=0.01,fisher_samples=8", "lora:r=2"};
    const int want[] = {2, 0};
    for (int i = 0; i < 2; i++) {
        pb_run_config c;
        pb_run_defaults(&c);
        c.backbone = "tiny";
        c.method = methods[i];
        c.task = "sentiment:n_train=32,n_dev=8,n_test=8";
        c.steps = 4;
        c.batch = 4;
        c.max_len = 32;
        c.eval_every = 0;
        c.threads = 1;
        pb_run_result r;
        if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s: %s", methods[i], r.message);
        if (r.setup_steps != want[i]) fail_msg("%s: setup_steps %d, expected %d", methods[i], r.setup_steps, want[i]);
        pb_run_result_free(&r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fisher_lm),
        cmocka_unit_test(test_fisher_cls),
        cmocka_unit_test(test_choice_failure),
        cmocka_unit_test(test_setup_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
