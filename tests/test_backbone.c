/* test_backbone.c — a checkpoint as the backbone of a fine-tuning cell, for every test family
 * (tests/families.h), untied LM heads included: the cell copies the checkpoint's tensors into
 * its classification model by name (an untied lm_head.weight (V,C) is dropped, never copied into
 * the (K,C) classifier), trains, and scores the forgetting metric through the checkpoint's own
 * LM head: "before" equals scoring the checkpoint itself. A checkpoint of another shape than the
 * descriptor implies never loads (test_checkpoint.c); pb_model_copy_by_name's errors are in
 * test_model.c. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/finetune.h"
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
