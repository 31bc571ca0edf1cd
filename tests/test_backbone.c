/* test_backbone.c — a checkpoint as the backbone of a fine-tuning cell, for every test family
 * (tests/families.h), untied LM heads included: the cell copies the checkpoint's tensors into
 * its classification model by name (an untied lm_head.weight (V,C) is dropped, never copied into
 * the (K,C) classifier), trains, and scores the forgetting metric through the checkpoint's own
 * LM head: "before" equals scoring the checkpoint itself. A checkpoint of another shape than the
 * descriptor implies never loads (test_checkpoint.c); pb_model_copy_by_name's errors are in
 * test_model.c.
 * And end to end for the LLaMA-style preset: `tiny-llama` pretrained for a few steps on the
 * built-in corpus (pb_pretrain_run, as `peftbench pretrain` runs it) learns, and its checkpoint
 * fine-tunes a lora and a prefix_tuning cell through pb_run_cell, as a GPT checkpoint does. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/finetune.h"
#include "methods/peft.h"
#include "models/checkpoint.h"
#include "models/model.h"
#include "models/pretrain.h"
#include "models/tokenizer.h"
#include "families.h"

#define TASK "sentiment:n_train=32,n_dev=8,n_test=8"

static void check_family(const tf_family *f) {
    pb_model_desc d = tf_desc(f, 2, 16, 2, PB_TOK_VOCAB, 48);
    char path[512];
    snprintf(path, sizeof path, "%s/backbone-%s.h5", tu_tmpdir(), f->name);
    pb_model lm;
    assert_int_equal(pb_model_init(&lm, &d, PB_HEAD_LM, 0, 3), PB_OK);
    for (int i = 0; i < lm.n_tensors; i++) /* away from the initialisation, so a wrong copy shows */
        for (size_t j = 0; j < lm.tensors[i].numel; j++) lm.tensors[i].data[j] += 0.01f * (float)((j * 7 + (size_t)i) % 5);
    pb_ckpt_info info;
    memset(&info, 0, sizeof info);
    assert_int_equal(pb_ckpt_save(path, &lm, &info, NULL), PB_OK);

    /* held-out bytes, and the checkpoint's own score on them */
    const char *text = "a held-out text, scored before and after fine-tuning. ";
    char doc[2048] = "";
    for (int k = 0; k < 20; k++) strcat(doc, text);
    int32_t *ho;
    size_t n_ho;
    assert_int_equal(pb_text_tokens(doc, strlen(doc), &ho, &n_ho), PB_OK);
    pb_eval want;
    pb_set_threads(1); /* as the cell runs: results are bit-identical per thread count */
    float mask = d.causal ? 0.0f : 0.15f;
    assert_int_equal(pb_eval_stream_tok(&lm, NULL, ho, n_ho, lm.d.max_seq, 8, mask, 0, &want, NULL), PB_OK);

    pb_run_config c;
    pb_run_defaults(&c);
    c.backbone = path;
    c.method = "full";
    c.task = TASK;
    c.steps = 2;
    c.batch = 4;
    c.max_len = 32;
    c.eval_every = 0;
    c.threads = 1;
    c.heldout = ho;
    c.n_heldout = n_ho;
    pb_run_result r;
    if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s: %s", f->name, r.message);
    if (r.heldout_bpb_before != want.bits_per_byte)
        fail_msg("%s: held-out bits per byte before fine-tuning %.9g, the checkpoint's own %.9g", f->name,
                 r.heldout_bpb_before, want.bits_per_byte);
    assert_false(isnan(r.heldout_bpb_after)); /* full fine-tuning merges: scored after too */
    assert_true(r.heldout_bpb_after != r.heldout_bpb_before);
    pb_run_result_free(&r);
    free(ho);
    pb_model_free(&lm);
    remove(path);
}

static void test_every_family(void **state) {
    (void)state;
    int untied = 0;
    for (int i = 0; i < TF_NFAMILY; i++) {
        check_family(&tf_families[i]);
        untied += !tf_families[i].d.tied_embed;
    }
    assert_true(untied > 0); /* the table has an untied LM head */
}

static double mean_of(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

static void test_tiny_llama_end_to_end(void **state) {
    (void)state;
    pb_set_threads(1);
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-llama.h5", tu_tmpdir());
    pb_pretrain_config pc;
    pb_pretrain_defaults(&pc);
    snprintf(pc.backbone, sizeof pc.backbone, "tiny-llama");
    snprintf(pc.corpus, sizeof pc.corpus, "builtin");
    snprintf(pc.tokenizer, sizeof pc.tokenizer, "byte");
    pc.builtin_bytes = 150000;
    pc.steps = 60;
    pc.seed = 2;
    pc.batch = 8;
    pc.seq = 64;
    pc.lr = 1e-2f;
    pc.save_every = 0;
    pc.eval_tokens = 4096;
    pc.threads = 1;
    pb_pretrain_result pr;
    if (pb_pretrain_run(&pc, NULL, path, PB_PT_OVERWRITE, NULL, NULL, &pr) != PB_OK)
        fail_msg("pretraining tiny-llama: %s", pb_errmsg());
    assert_true(pr.complete);
    size_t n;
    pb_model_desc want = *pb_backbone_find("tiny-llama");
    want.vocab = PB_TOK_VOCAB;
    pb_model_layout(&want, PB_HEAD_LM, 0, NULL, &n);
    assert_int_equal(pr.n_params, n);
    double first = mean_of(pr.losses, 10), last = mean_of(pr.losses + pr.n_losses - 10, 10);
    printf("tiny-llama pretraining: loss %.3f over the first 10 steps, %.3f over the last 10; held-out %.3f bits "
           "per byte\n", first, last, pr.heldout.bits_per_byte);
    if (!(last < first - 0.5)) fail_msg("tiny-llama did not learn: loss %.3f -> %.3f", first, last);
    assert_true(pr.heldout.bits_per_byte < 7.0); /* uniform over 262 ids: 8.03 */
    free(pr.losses);

    pb_ckpt_info info;
    assert_int_equal(pb_ckpt_read_info(path, &info), PB_OK);
    assert_int_equal(info.desc.pos, PB_POS_ROPE);
    assert_int_equal(info.desc.n_kv_head * 2, info.desc.n_head);
    assert_false(info.desc.tied_embed);

    const char *text = "a held-out text, scored before and after fine-tuning. ";
    char doc[2048] = "";
    for (int k = 0; k < 20; k++) strcat(doc, text);
    int32_t *ho;
    size_t n_ho;
    assert_int_equal(pb_text_tokens(doc, strlen(doc), &ho, &n_ho), PB_OK);
    static const struct {
        const char *spec;
        float lr;
    } cells[] = {{"lora", 1e-2f}, {"prefix_tuning:num_virtual_tokens=4", 3e-2f}};
    double before = NAN;
    for (int i = 0; i < 2; i++) {
        enum { STEPS = 24 };
        float curve[STEPS];
        pb_run_config c;
        pb_run_defaults(&c);
        c.backbone = path;
        c.method = cells[i].spec;
        c.task = "sentiment:n_train=96,n_dev=16,n_test=16,vocab=4,max_bytes=40";
        c.steps = STEPS;
        c.batch = 8;
        c.max_len = 48;
        c.lr = cells[i].lr;
        c.eval_every = 0;
        c.threads = 1;
        c.heldout = ho;
        c.n_heldout = n_ho;
        c.loss_curve = curve;
        c.loss_curve_cap = STEPS;
        pb_run_result r;
        if (pb_run_cell(&c, &r) != PB_OK) fail_msg("%s on tiny-llama: %s", cells[i].spec, r.message);
        assert_false(r.diverged);
        assert_int_equal(r.n_loss, STEPS);
        /* the trainable count of the method on the checkpoint's descriptor (2 labels) */
        pb_peft ps;
        assert_int_equal(pb_peft_create(&ps, cells[i].spec, &info.desc, PB_HEAD_CLS, 2, NULL, 1), PB_OK);
        size_t tr, all;
        pb_peft_counts(&ps, &tr, &all);
        assert_int_equal(r.trainable, tr);
        pb_peft_free(&ps);
        double l0 = mean_of(curve, 6), l1 = mean_of(curve + STEPS - 6, 6);
        printf("%s on tiny-llama: loss %.3f over the first 6 steps, %.3f over the last 6; test accuracy %.3f; "
               "held-out bits per byte before %.4f\n",
               cells[i].spec, l0, l1, r.test_at_best[r.select], r.heldout_bpb_before);
        if (!(l1 < l0)) fail_msg("%s on tiny-llama did not learn: loss %.3f -> %.3f", cells[i].spec, l0, l1);
        /* the same checkpoint scores the same before fine-tuning in both cells */
        assert_false(isnan(r.heldout_bpb_before));
        if (i && r.heldout_bpb_before != before)
            fail_msg("held-out bits per byte before: %.9g and %.9g", before, r.heldout_bpb_before);
        before = r.heldout_bpb_before;
        pb_run_result_free(&r);
    }
    free(ho);
    remove(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family),
        cmocka_unit_test(test_tiny_llama_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
