/* test_finetune_bpe.c — fine-tuning through a BPE backbone's tokenizer (models/TOKENIZER.md):
 * a tiny backbone pretrained for a few steps with bpe:150 fine-tunes end to end, full and lora,
 * on a classification task and a generation task; the tasks are encoded by its tokenizer (fewer
 * training tokens than the byte tokenizer gives for the same examples), generated ids are decoded
 * by it (the text is the merges' bytes), the forgetting metric scores the held-out documents
 * encoded by it, and prompt tuning's text initialisation takes its ids. No accuracy bar: the
 * backbone is barely trained. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/finetune.h"
#include "methods/peft.h"
#include "models/checkpoint.h"
#include "models/corpus_load.h"
#include "models/pretrain.h"
#include "models/tokenizer.h"

static const char *g_ckpt;
static pb_tokenizer g_tk;
static pb_pretrain_config g_pc;

static int setup(void **state) {
    (void)state;
    g_ckpt = tu_tmp_path("finetune_bpe.h5");
    remove(g_ckpt);
    pb_pretrain_defaults(&g_pc);
    snprintf(g_pc.backbone, sizeof g_pc.backbone, "tiny");
    snprintf(g_pc.corpus, sizeof g_pc.corpus, "builtin");
    snprintf(g_pc.tokenizer, sizeof g_pc.tokenizer, "bpe:150");
    g_pc.builtin_bytes = 60000;
    g_pc.steps = 6;
    g_pc.batch = 2;
    g_pc.seq = 32;
    g_pc.lr = 3e-3f;
    g_pc.eval_batch = 4;
    if (pb_pretrain_run(&g_pc, NULL, g_ckpt, PB_PT_OVERWRITE, NULL, NULL, NULL) != PB_OK) return -1;
    if (pb_ckpt_load_tokenizer(g_ckpt, &g_tk) != PB_OK || g_tk.n_merges != 150) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    pb_tokenizer_free(&g_tk);
    remove(g_ckpt);
    return 0;
}

typedef struct {
    int n, n_merge_ids;
} gen_seen;

/* Every generated text is the tokenizer's decoding of the generated ids. */
static void on_gen(pb_split sp, size_t i, const int32_t *ids, size_t n, const char *text, void *ud) {
    (void)sp, (void)i;
    gen_seen *g = ud;
    char buf[4096];
    size_t need = pb_tokenizer_decode(&g_tk, buf, sizeof buf, ids, n);
    assert_true(need < sizeof buf);
    assert_string_equal(buf, text);
    assert_int_equal(strlen(text), need);
    for (size_t k = 0; k < n; k++) {
        assert_true(ids[k] >= 0 && ids[k] < g_tk.vocab);
        g->n_merge_ids += ids[k] >= PB_TOK_VOCAB;
    }
    g->n++;
}

static pb_run_config cfg(const char *backbone, const char *method, const char *task, gen_seen *g) {
    pb_run_config c;
    pb_run_defaults(&c);
    c.backbone = backbone;
    c.method = method;
    c.task = task;
    c.steps = 3;
    c.batch = 4;
    c.max_len = 64;
    c.eval_every = 0;
    c.lr = 3e-3f;
    c.threads = 1;
    c.on_generate = g ? on_gen : NULL;
    c.on_generate_ud = g;
    return c;
}

static pb_run_result run(const char *backbone, const char *method, const char *task, gen_seen *g) {
    pb_run_config c = cfg(backbone, method, task, g);
    pb_run_result r;
    if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s %s on %s: %s", method, task, backbone, r.message);
    assert_false(r.diverged);
    assert_true(r.train_tokens > 0);
    for (int k = 0; k < r.n_metrics; k++) assert_false(isnan(r.best_dev[k]) || isnan(r.test_at_best[k]));
    pb_run_result_free(&r); /* the test records are not looked at here */
    return r;
}

#define CLS_TASK "sentiment:n_train=32,n_dev=8,n_test=8"
#define GEN_TASK "reverse:n_train=16,n_dev=4,n_test=4"

static void test_classify(void **state) {
    (void)state;
    const char *methods[] = {"full", "lora"};
    for (int i = 0; i < 2; i++) {
        pb_run_result b = run(g_ckpt, methods[i], CLS_TASK, NULL);
        /* the same examples in the same order, encoded byte-level by a preset of the same shape */
        pb_run_result y = run("tiny", methods[i], CLS_TASK, NULL);
        assert_true(b.train_tokens < y.train_tokens);
    }
}

static void test_generate(void **state) {
    (void)state;
    const char *methods[] = {"full", "lora"};
    for (int i = 0; i < 2; i++) {
        gen_seen g = {0};
        pb_run_result b = run(g_ckpt, methods[i], GEN_TASK, &g);
        assert_int_equal(g.n, 8); /* dev and test, once at the end */
        pb_run_result y = run("tiny", methods[i], GEN_TASK, NULL);
        assert_true(b.train_tokens < y.train_tokens);
    }
    /* Trained a little longer (deterministic by seed, one thread), greedy answers use merges:
     * their ids decode to the merges' bytes (on_gen checks every text). 120 steps: 80 sufficed
     * before the built-in corpus (and so the learned merges) gained bracketed asides. */
    gen_seen g = {0};
    pb_run_config c = cfg(g_ckpt, "full", GEN_TASK, &g);
    c.steps = 120;
    pb_run_result r;
    if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s", r.message);
    pb_run_result_free(&r);
    assert_true(g.n_merge_ids > 0);
}

/* The forgetting metric re-encodes the byte-level held-out stream with the backbone's tokenizer:
 * "before" equals scoring the checkpoint on the documents encoded by it (bits per byte). */
static void test_forgetting(void **state) {
    (void)state;
    pb_corpus corpus;
    assert_int_equal(pb_corpus_open(&corpus, "builtin", "", g_pc.builtin_bytes), PB_OK);
    pb_corpus_split bytes, bpe;
    assert_int_equal(pb_corpus_split_docs(&corpus, g_pc.holdout, &bytes), PB_OK);
    assert_int_equal(pb_corpus_split_docs_tok(&corpus, g_pc.holdout, &g_tk, &bpe), PB_OK);
    pb_model m;
    assert_int_equal(pb_ckpt_load(g_ckpt, &m, NULL), PB_OK);
    pb_eval want;
    assert_int_equal(pb_eval_stream_tok(&m, &g_tk, bpe.heldout, bpe.n_heldout, m.d.max_seq, 8, 0, 0, &want, NULL),
                     PB_OK);
    pb_run_config c;
    pb_run_defaults(&c);
    c.backbone = g_ckpt;
    c.method = "lora";
    c.task = GEN_TASK;
    c.steps = 2;
    c.batch = 4;
    c.max_len = 64;
    c.eval_every = 0;
    c.threads = 1;
    c.heldout = bytes.heldout;
    c.n_heldout = bytes.n_heldout;
    pb_run_result r;
    if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s", r.message);
    assert_true(r.heldout_bpb_before == want.bits_per_byte);
    assert_false(isnan(r.heldout_bpb_after));
    pb_run_result_free(&r);
    pb_model_free(&m);
    pb_corpus_split_free(&bytes);
    pb_corpus_split_free(&bpe);
    pb_corpus_free(&corpus);
}

/* prompt_tuning_init=TEXT takes the rows of the text's ids under the model's tokenizer. */
static void test_prompt_text_init(void **state) {
    (void)state;
    const char *text = "the the the and";
    pb_model m;
    assert_int_equal(pb_ckpt_load(g_ckpt, &m, NULL), PB_OK);
    m.tok = &g_tk;
    int32_t ids[64];
    size_t n = pb_tokenizer_encode(&g_tk, ids, 64, text, strlen(text));
    assert_true(n > 0 && n < strlen(text)); /* merges shorten it */
    int P = 7;
    char spec[256];
    snprintf(spec, sizeof spec, "prompt_tuning:num_virtual_tokens=%d,prompt_tuning_init=TEXT,init_text=%s", P, text);
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, spec, NULL, PB_HEAD_LM, 0, &m, 1), PB_OK);
    const pb_tensor *e = NULL;
    for (int i = 0; i < p.n_params; i++)
        if (!strcmp(p.params[i].name, "prompt_encoder.embedding.weight")) e = &p.params[i];
    assert_non_null(e);
    int C = m.d.d_model;
    for (int i = 0; i < P; i++)
        tu_assert_same(e->data + (size_t)i * C, m.global.w[PB_SITE_EMBED]->data + (size_t)ids[(size_t)i % n] * C, (size_t)C, "TEXT row");
    pb_peft_free(&p);
    pb_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_forgetting),
        cmocka_unit_test(test_prompt_text_init),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
