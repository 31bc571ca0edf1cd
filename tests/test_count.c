/* test_count.c — `peftbench count` on real foundation models (issue 7, docs/COUNT.md).
 *
 *  - every zoo model's layout total equals its published parameter count;
 *  - the examples, outputs printed by Hugging Face PEFT's own documentation and
 *    notebooks (print_trainable_parameters(); sources in docs/COUNT.md), and more cases derived
 *    by hand from the published architectures (the formula is written next to each);
 *  - every registered method on every zoo model either counts (trainable > 0, trainable <= all)
 *    or refuses with a message, never crashes;
 *  - closed forms equal attach's counts on every zoo model for the options that vary with a real
 *    model's norms, stacks and head (tests/test_methods.c checks every default and example);
 *  - bad input: unknown model, method, target, task type; a rank larger than a layer.
 * FLOPs and training memory predicted from shapes are tested in tests/test_count_flops.c
 * (predicted == measured per phase and kind for every method on the runnable backbones; memory
 * within 10 % of the tracked peak).
 */
#include "harness/count.h"
#include "methods/method.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_published_totals(void **s) {
    (void)s;
    int n = 0;
    for (int i = 0; pb_zoo_at(i); i++, n++) {
        const pb_model_desc *d = pb_zoo_at(i);
        size_t total;
        pb_model_layout(d, (pb_head_kind)d->own_head, d->own_labels, NULL, &total);
        if ((long long)total != d->published)
            fail_msg("%s: layout total %zu, published %lld", d->name, total, d->published);
        assert_int_equal(pb_desc_check_runnable(d), PB_EINVAL); /* shape-only */
    }
    assert_true(n >= 28);
}

typedef struct {
    const char *model, *spec, *task;
    size_t trainable, all; /* all = 0: not checked */
} count_case;

static const count_case g_cases[] = {
    /* the examples */
    {"llama-2-7b", "lora:r=8,targets=q_proj+v_proj", NULL, 4194304, 6742609920ull},
    {"bloomz-560m", "prompt_tuning:num_virtual_tokens=8", NULL, 8192, 559222784},
    {"llama-3.2-3b", "lora:r=32,targets=q_proj+v_proj", NULL, 9175040, 0},
    /* printed by Hugging Face PEFT's docs and notebooks (docs/COUNT.md lists where) */
    {"qwen2.5-3b", "lora:r=16", NULL, 3686400, 3089625088ull},
    {"llama-3.2-1b", "lora:r=8,targets=q_proj", NULL, 524288, 1236338688},
    {"opt-350m", "lora:r=16", NULL, 1572864, 332769280},
    {"bloomz-560m", "p_tuning:num_virtual_tokens=20,encoder_hidden_size=128", NULL, 300288, 559514880},
    {"bloomz-560m", "prefix_tuning:num_virtual_tokens=20", NULL, 983040, 560197632},
    {"bloomz-560m", "prefix_tuning:num_virtual_tokens=30", NULL, 1474560, 0},
    {"bloomz-560m", "ln_tuning", NULL, 100352, 559314944},
    {"mt0-large", "ia3", NULL, 282624, 1229863936},
    {"t5-large", "prompt_tuning:num_virtual_tokens=20", "seq2seq", 40960, 737709056},
    {"flan-t5-large", "lora:r=16", NULL, 4718592, 787868672},
    {"opt-6.7b", "lora:r=16", NULL, 8388608, 6666862592ull},
    {"bert-base-cased", "lora:r=8", "seq-cls:2", 296450, 108608260},
    {"vit-base-patch16-224", "lora:r=16,targets=query+value", "image-cls:101", 667493, 86543818},
    {"roberta-base", "vera:r=8,targets=query+value+intermediate.dense", "seq-cls:2", 647714, 125294884},
    {"gpt2-large", "prefix_tuning:num_virtual_tokens=20", NULL, 1843200, 775873280},
    {"t5-base", "lora:r=8", NULL, 884736, 0},
    {"bert-base-cased", "prefix_tuning:num_virtual_tokens=20", "seq-cls:2", 370178, 0},
    /* derived by hand from the published architectures */
    /* GPT-2's default target is the fused c_attn (768 -> 2304): 12 x 8 (768 + 2304) */
    {"gpt2", "lora:r=8", NULL, 12 * 8 * (768 + 2304), 124439808 + 12 * 8 * (768 + 2304)},
    /* Llama-2-70b GQA: q 8192 -> 8192, v 8192 -> 8 x 128 = 1024 */
    {"llama-2-70b", "lora:r=8", NULL, 80 * (8 * (8192 + 8192) + 8 * (8192 + 1024)), 0},
    /* IA3 on LLaMA (k, v output scaling; down_proj input scaling): 32 (4096 + 4096 + 11008) */
    {"llama-2-7b", "ia3", NULL, 32 * (4096 + 4096 + 11008), 6738415616ull + 32 * (4096 + 4096 + 11008)},
    /* IA3 on Mistral: k, v are 4096 -> 1024 (8 kv heads x 128), down_proj input 14336 */
    {"mistral-7b", "ia3", NULL, 32 * (1024 + 1024 + 14336), 0},
    /* DoRA adds the magnitude (out) per target: LoRA q,v r=8 on Llama-2-7b + 32 x 2 x 4096 */
    {"llama-2-7b", "dora:r=8", NULL, 4194304 + 32 * 2 * 4096, 0},
    /* LoHa: 2 r (in + out) per target: 32 layers x 2 targets x 2 x 8 x 8192 */
    {"llama-2-7b", "loha:r=8", NULL, 32 * 2 * 2 * 8 * (4096 + 4096), 0},
    /* VeRA: lambda_b (out) + lambda_d (r) per target; the shared A/B are buffers, not counted */
    {"llama-2-7b", "vera:r=256", NULL, 32 * 2 * (4096 + 256), 6738415616ull + 32 * 2 * (4096 + 256)},
    /* T5 q,v hit self-attention in both stacks and the decoder's cross-attention: (12 + 2 x 12) x 2 x
     * 8 x (768 + 768) */
    {"t5-base", "lora:r=8,targets=q+v", "seq2seq", (12 + 24) * 2 * 8 * (768 + 768), 0},
    /* t5-base prefix tuning: 20 tokens x 12 layers (the encoder's count) x 2 x 768 */
    {"t5-base", "prefix_tuning:num_virtual_tokens=20", NULL, 20 * 12 * 2 * 768, 0},
    /* Llama-3-8B prefix: token_dim = 8 kv heads x 128 = 1024 */
    {"meta-llama-3-8b", "prefix_tuning:num_virtual_tokens=20", NULL, 20 * 32 * 2 * 1024, 0},
    /* RoBERTa's sequence-classification head: dense 1024x1024 + b, out_proj 1024x3 + b, counted
     * trainable once and (as modules_to_save) twice in all; roberta-large has no pooler there */
    {"roberta-large", "lora:r=8", "seq-cls:3",
     24 * 2 * 8 * 2048 + (1024 * 1024 + 1024 + 3 * 1024 + 3),
     355359744 - (1024 * 1024 + 1024) + 24 * 2 * 8 * 2048 + 2 * (1024 * 1024 + 1024 + 3 * 1024 + 3)},
    /* head (linear probe) on LLaMA sequence classification: score 4096 x 5, no bias; no lm_head */
    {"llama-2-7b", "head", "seq-cls:5", 4096 * 5, 6738415616ull - 32000 * 4096 + 2 * 4096 * 5},
    /* BitFit on BERT-base: every bias (q,k,v,o 4x768, intermediate 3072, output 768, two LayerNorms
     * 2x768 per layer; embeddings LayerNorm 768; pooler 768) */
    {"bert-base-uncased", "bitfit", NULL, 12 * (4 * 768 + 3072 + 768 + 2 * 768) + 768 + 768, 109482240},
    /* full fine-tuning: everything trains, nothing is added or copied */
    {"opt-125m", "full", NULL, 125239296, 125239296},
    /* all-linear on OPT-350m includes project_in (512 -> 1024) and project_out (1024 -> 512) */
    {"opt-350m", "lora:r=4,targets=all-linear", NULL,
     24 * 4 * (4 * 2048 + (1024 + 4096) * 2) + 4 * (512 + 1024) * 2, 0},
};

static void test_cases(void **s) {
    (void)s;
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        const count_case *k = &g_cases[i];
        const pb_model_desc *d = pb_desc_find_any(k->model);
        assert_non_null(d);
        pb_peft p;
        pb_status st = pb_count_attach(&p, d, k->spec, k->task);
        if (st) fail_msg("%s %s: %s", k->model, k->spec, pb_errmsg());
        size_t tr, all;
        pb_peft_counts(&p, &tr, &all);
        pb_peft_free(&p);
        if (tr != k->trainable || (k->all && all != k->all))
            fail_msg("%s %s %s: trainable %zu all %zu, expected %zu %zu", k->model, k->spec, k->task ? k->task : "",
                     tr, all, k->trainable, k->all);
    }
}

/* Every method's default spec on every model and a classification task: counts or refuses. */
static void test_every_method_every_model(void **s) {
    (void)s;
    int counted = 0;
    for (int i = 0; pb_zoo_at(i); i++) {
        const pb_model_desc *d = pb_zoo_at(i);
        const char *task = d->arch == PB_ARCH_VISION ? "image-cls:10" : "seq-cls:2";
        for (int j = 0; j < pb_method_count(); j++) {
            const pb_method *m = pb_method_at(j);
            char spec[160];
            /* PEFT has no default targets for ViT, and LN tuning none for BERT/OPT */
            if (d->arch == PB_ARCH_VISION && (!strcmp(m->name, "lora") || !strcmp(m->name, "dora") ||
                                              !strcmp(m->name, "vera") || !strcmp(m->name, "loha")))
                snprintf(spec, sizeof spec, "%s:targets=query+value", m->name);
            else snprintf(spec, sizeof spec, "%s", m->name);
            pb_peft p;
            pb_status st = pb_count_attach(&p, d, spec, task);
            if (st) {
                assert_true(strlen(pb_errmsg()) > 10);
                continue;
            }
            size_t tr, all;
            pb_peft_counts(&p, &tr, &all);
            if (!(tr > 0 && tr <= all)) fail_msg("%s %s: trainable %zu all %zu", d->name, spec, tr, all);
            pb_peft_free(&p);
            counted++;
        }
    }
    /* most pairs count; the refusals are the documented ones (no PEFT default targets) */
    assert_true(counted >= pb_method_count() * 24);
}

/* Closed forms (pb_peft_closed_form: the method's own plus the task head, written once) equal to
 * what attach declares on every zoo model, for the options that depend most on a real model's
 * shape (test_shape_only_counts in tests/test_methods.c covers every default and example): with
 * an LM head (an encoder-decoder's two sets of virtual tokens, its encoder-only prefixes, RMSNorm
 * and cross-attention norms) and with each kind of classification head. */
static void test_closed_forms_on_real_models(void **s) {
    (void)s;
    /* ln_tuning per norm site (a model without the site refuses it) and at PEFT's defaults */
    const char *specs[] = {"head", "full", "ln_tuning", "ln_tuning:targets=ln1+ln2", "ln_tuning:targets=ln_f",
                           "ln_tuning:targets=ln_x", "ln_tuning:targets=ln_embed", "prompt_tuning",
                           "p_tuning:encoder_hidden_size=64", "prefix_tuning", "prefix_tuning:prefix_projection=1",
                           "prefix_tuning:gate=1", "seq_bn", "double_seq_bn:gate=1", "double_seq_bn:layer_norms=1", "par_bn",
                           "mam"};
    int checked = 0;
    for (int i = 0; pb_zoo_at(i); i++) {
        const pb_model_desc *d = pb_zoo_at(i);
        for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++)
            for (int cls = 0; cls <= 1; cls++) {
                pb_peft p;
                if (pb_peft_create(&p, specs[k], d, cls ? PB_HEAD_CLS : PB_HEAD_LM, cls ? 5 : 0, NULL, 1) != PB_OK)
                    continue; /* refused with a message (tested above) */
                size_t tr, all;
                pb_peft_counts(&p, &tr, &all);
                if (tr != pb_peft_closed_form(&p))
                    fail_msg("%s on %s (%s head): attach declares %zu trainable, the closed form says %zu", specs[k],
                             d->name, cls ? "cls" : "lm", tr, pb_peft_closed_form(&p));
                pb_peft_free(&p);
                checked++;
            }
    }
    assert_true(checked > 400);
}

static void expect_error(const char *model, const char *spec, const char *task, const char *needle) {
    const pb_model_desc *d = pb_desc_find_any(model);
    assert_non_null(d);
    pb_peft p;
    pb_status st = pb_count_attach(&p, d, spec, task);
    if (st == PB_OK) {
        pb_peft_free(&p);
        fail_msg("%s %s: expected an error containing '%s'", model, spec, needle);
    }
    if (!strstr(pb_errmsg(), needle)) fail_msg("%s %s: message '%s' lacks '%s'", model, spec, pb_errmsg(), needle);
}

static void test_bad_input(void **s) {
    (void)s;
    expect_error("llama-2-7b", "lora:targets=c_attn", NULL, "'c_attn' matches no site of llama-2-7b");
    expect_error("llama-2-7b", "lora:targets=c_attn", NULL, "attn.q"); /* lists what it has */
    expect_error("gpt2", "lora:r=5000,targets=c_attn", NULL, "larger than layer");
    expect_error("llama-2-7b", "nosuchmethod", NULL, "nosuchmethod");
    expect_error("llama-2-7b", "lora:rank_typo=3", NULL, "rank_typo");
    expect_error("llama-2-7b", "lora", "seq2seq", "does not fit llama-2-7b");
    expect_error("t5-base", "lora", "token-cls:3", "does not fit t5-base");
    expect_error("bert-base-uncased", "lora", "seq-cls", "needs a label count");
    expect_error("bert-base-uncased", "lora", "seq-cls:0", "needs a label count");
    expect_error("bert-base-uncased", "lora", "banana", "is not one of");
    expect_error("vit-base-patch16-224", "lora", NULL, "no default targets");
    expect_error("bert-base-uncased", "head", NULL, "classification");
    expect_error("gpt2", "loha", NULL, "Conv1D");
}

/* The command: Hugging Face's line first, a table in each format, errors with exit status. */
static void test_command(void **s) {
    (void)s;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s count --model llama-2-7b --method lora:r=8,targets=q_proj+v_proj", tu_peftbench_bin());
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f));
    assert_int_equal(pclose(f), 0);
    assert_string_equal(line, "trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622\n");

    snprintf(cmd, sizeof cmd, "%s count --models gpt2,llama-2-7b --methods 'lora;ia3' --format csv",
             tu_peftbench_bin());
    f = popen(cmd, "r");
    assert_non_null(f);
    int rows = 0;
    while (fgets(line, sizeof line, f)) rows++;
    assert_int_equal(pclose(f), 0);
    assert_int_equal(rows, 1 + 4);

    /* --plot: both TSVs and their figures (gnuplot) */
    const char *plot[] = {"count", "--models", "llama-2-7b,gpt2,t5-base", "--methods", "lora;prompt_tuning", "--plot",
                          tu_tmp_path("count_plot"), NULL};
    assert_int_equal(tu_run_peftbench(plot, tu_tmp_path("count_plot.log")), 0);
    const char *files[] = {"count_plot/count_params.tsv", "count_plot/count_params.png", "count_plot/count_params.svg",
                           "count_plot/count_memory.tsv", "count_plot/count_memory.png", "count_plot/count_memory.svg"};
    for (int i = 0; i < 6; i++) {
        FILE *g = fopen(tu_tmp_path(files[i]), "r");
        if (!g) fail_msg("count --plot did not write %s", files[i]);
        fclose(g);
    }
    FILE *g = fopen(tu_tmp_path("count_plot/count_params.tsv"), "r");
    assert_non_null(g);
    assert_non_null(fgets(line, sizeof line, g));
    assert_string_equal(line, "model\tbase_params\tlora\tprompt_tuning\n");
    assert_non_null(fgets(line, sizeof line, g)); /* smallest model first */
    assert_string_equal(line, "gpt2\t124439808\t294912\t15360\n");
    fclose(g);

    const char *bad_model[] = {"count", "--model", "llama-9", "--method", "lora", NULL};
    assert_int_equal(tu_run_peftbench(bad_model, tu_tmp_path("count_bad_model.log")), 1);
    const char *bad_fmt[] = {"count", "--models", "gpt2", "--methods", "lora", "--format", "xls", NULL};
    assert_int_equal(tu_run_peftbench(bad_fmt, tu_tmp_path("count_bad_fmt.log")), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_totals), cmocka_unit_test(test_cases),
        cmocka_unit_test(test_every_method_every_model), cmocka_unit_test(test_closed_forms_on_real_models),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
