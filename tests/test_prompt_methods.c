/* test_prompt_methods.c — what the registry tests (test_methods.c) do not check for the prompt
 * methods (prompt_tuning, prefix_tuning, p_tuning) and the MAM hybrid:
 *  - prompt_tuning initialisations: TEXT reads the wte rows of the init text's tokens (truncated
 *    or repeated to P), SAMPLE_VOCAB copies wte rows, RANDOM is N(0, 1);
 *  - the model's embed and prefix paths: classification pools the real <cls> / last real token
 *    behind the virtual tokens; padding stays invisible; the causal mask still hides later
 *    tokens; every query (the first one too) sees the prefix;
 *  - positions as Hugging Face PEFT gives them: virtual tokens are real tokens in front, and with
 *    rotary positions a prefix is a cache of real tokens (the real tokens after it at positions P..);
 *  - the prompt encoders (p_tuning MLP and multi-layer LSTM, with and without encoder_dropout,
 *    prefix_tuning's projection) against finite differences on their own, where their gradients are not attenuated by the
 *    transformer (the whole-model check cannot see a small error in, say, the forget gate);
 *  - p_tuning's encoder_dropout acts in training only;
 *  - prefix_tuning counts the key/value width under grouped-query attention (as Hugging Face);
 *  - mam composes prefix_tuning and par_bn with the paper's settings and counts their sum. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods/peft.h"
#include "models/model.h"
#include "models/tokenizer.h"
#include "pb_rng.h"
#include "families.h"

#define INIT_TEXT "Classify if the tweet is a complaint or not:"

/* Test family f (tests/families.h) with 2 layers, d_model 8, d_ff 32, 64 positions. */
static pb_model_desc fdesc(const tf_family *f, int vocab) { return tf_desc(f, 2, 8, 2, vocab, 64); }
/* The first decoder (causal) or encoder family. */
static pb_model_desc desc(int causal, int vocab) { return fdesc(tf_first(causal), vocab); }

static void spread(pb_model *m, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        pb_tensor *t = &m->tensors[i];
        for (size_t j = 0; j < t->numel; j++)
            t->data[j] = (t->ndim == 1 && !t->is_bias ? 1.0f : 0.0f) + 0.4f * (2.0f * pb_rng_uniform(&r) - 1.0f);
    }
}

static pb_tensor *added(pb_peft *p, const char *name) {
    for (int i = 0; i < p->n_params; i++)
        if (!strcmp(p->params[i].name, name)) return &p->params[i];
    fail_msg("no added tensor %s", name);
    return NULL;
}

/* ---- prompt_tuning initialisation ------------------------------------------------------------ */

static void check_text_rows(int P) {
    pb_model_desc d = desc(1, PB_TOK_VOCAB);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 3), PB_OK);
    char spec[256];
    snprintf(spec, sizeof spec, "prompt_tuning:num_virtual_tokens=%d,prompt_tuning_init=TEXT,"
             "prompt_tuning_init_text=" INIT_TEXT, P);
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, spec, NULL, PB_HEAD_LM, 0, &m, 1), PB_OK);
    int32_t ids[64];
    size_t n = pb_tok_encode(ids, 64, INIT_TEXT, strlen(INIT_TEXT));
    assert_true(n > 0 && n <= 64);
    const pb_tensor *e = added(&p, "prompt_encoder.embedding.weight");
    int C = d.d_model;
    for (int i = 0; i < P; i++) /* truncated to P, or repeated as often as needed */
        tu_assert_same(e->data + (size_t)i * C, m.global.w[PB_SITE_EMBED]->data + (size_t)ids[(size_t)i % n] * C, (size_t)C, "TEXT row");
    pb_peft_free(&p);
    pb_model_free(&m);
}

static void test_prompt_init_text(void **state) {
    (void)state;
    check_text_rows(5);  /* shorter than the text: its first 5 tokens */
    check_text_rows(60); /* longer: the text repeated */
    /* a vocabulary without the text's bytes is refused at attach, naming the option */
    pb_model_desc d = desc(1, 11);
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, "prompt_tuning:num_virtual_tokens=3,prompt_tuning_init=TEXT,init_text=Hi", &d,
                                    PB_HEAD_LM, 0, NULL, 1),
                     PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "prompt_tuning_init_text"));
    /* TEXT without a text is refused (as Hugging Face does) */
    assert_int_equal(pb_peft_create(&p, "prompt_tuning:prompt_tuning_init=TEXT", &d, PB_HEAD_LM, 0, NULL, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "prompt_tuning_init_text"));
    /* and so is a prompt that leaves no position for real tokens */
    assert_int_equal(pb_peft_create(&p, "prompt_tuning:num_virtual_tokens=64", &d, PB_HEAD_LM, 0, NULL, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "num_virtual_tokens"));
}

static void test_prompt_init_sample_and_random(void **state) {
    (void)state;
    pb_model_desc d = desc(0, 40);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 2, 3), PB_OK);
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, "prompt_tuning:num_virtual_tokens=12,prompt_tuning_init=SAMPLE_VOCAB", NULL,
                                    PB_HEAD_CLS, 2, &m, 1),
                     PB_OK);
    const pb_tensor *e = added(&p, "prompt_encoder.embedding.weight");
    int C = d.d_model;
    for (int i = 0; i < 12; i++) {
        int found = 0;
        for (int v = 0; v < d.vocab && !found; v++)
            found = !memcmp(e->data + (size_t)i * C, m.global.w[PB_SITE_EMBED]->data + (size_t)v * C, sizeof(float) * (size_t)C);
        if (!found) fail_msg("SAMPLE_VOCAB row %d is no row of wte", i);
    }
    pb_peft_free(&p);
    /* RANDOM: torch.nn.Embedding's N(0, 1) */
    assert_int_equal(pb_peft_create(&p, "prompt_tuning:num_virtual_tokens=50", NULL, PB_HEAD_CLS, 2, &m, 1), PB_OK);
    e = added(&p, "prompt_encoder.embedding.weight");
    double s1 = 0, s2 = 0;
    for (size_t j = 0; j < e->numel; j++) {
        s1 += e->data[j];
        s2 += (double)e->data[j] * e->data[j];
    }
    double mean = s1 / (double)e->numel, sd = sqrt(s2 / (double)e->numel - mean * mean);
    if (fabs(mean) > 0.15 || fabs(sd - 1.0) > 0.1) fail_msg("RANDOM init: mean %g, std %g (want N(0,1))", mean, sd);
    pb_peft_free(&p);
    pb_model_free(&m);
}

/* ---- the model's embed and prefix paths -------------------------------------------------------- */

typedef struct {
    int32_t ids[12], targets[12];
    uint8_t mask[12];
    pb_batch b;
} batch2;

/* B = 2, T = 6; the second sequence has 2 padding tokens at the end. */
static void make_batch(batch2 *x, pb_head_kind head, uint64_t seed) {
    pb_rng r;
    pb_rng_seed(&r, seed);
    for (int i = 0; i < 12; i++) {
        x->ids[i] = (int32_t)pb_rng_below(&r, 11);
        x->mask[i] = i < 10;
        x->targets[i] = x->mask[i] ? (int32_t)pb_rng_below(&r, 11) : -1;
    }
    if (head == PB_HEAD_CLS) x->targets[0] = 1, x->targets[1] = 0;
    x->b = (pb_batch){.B = 2, .T = 6, .ids = x->ids, .mask = x->mask, .targets = x->targets};
}

static float fwd(pb_model *m, const pb_batch *b, int training) {
    float loss;
    if (pb_model_forward(m, b, training, &loss) != PB_OK) fail_msg("forward: %s", pb_errmsg());
    return loss;
}

static void test_pooling_with_virtual_tokens(void **state) {
    (void)state;
    for (int fi = 0; fi < TF_NFAMILY; fi++) {
        pb_model_desc d = fdesc(&tf_families[fi], 11);
        int causal = d.causal;
        pb_model m;
        assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 2, 3), PB_OK);
        spread(&m, 5);
        pb_peft p;
        assert_int_equal(pb_peft_create(&p, "prompt_tuning:num_virtual_tokens=4", NULL, PB_HEAD_CLS, 2, &m, 1), PB_OK);
        batch2 x;
        make_batch(&x, PB_HEAD_CLS, 9);
        fwd(&m, &x.b, 1);
        assert_int_equal(m.dim.Pe, 4);
        assert_int_equal(m.dim.Tm, 10);
        /* encoder: position 0 of the real tokens (<cls>); decoder: the last real token */
        int want[2] = {causal ? 5 : 0, causal ? 3 : 0};
        for (int i = 0; i < 2; i++) {
            assert_int_equal(m.pool_idx[i], 4 + want[i]);
            tu_assert_same(m.pooled + (size_t)i * d.d_model, m.lnf + ((size_t)i * m.dim.Tm + 4 + want[i]) * d.d_model,
                           (size_t)d.d_model, "pooled row");
        }
        /* padding tokens stay invisible behind the virtual tokens */
        float *before = malloc(sizeof(float) * 4);
        memcpy(before, m.logits, sizeof(float) * 4);
        x.ids[10] = (x.ids[10] + 3) % 11;
        x.ids[11] = (x.ids[11] + 5) % 11;
        fwd(&m, &x.b, 0);
        tu_assert_close(m.logits, before, 4, 1e-6, 1e-5, "logits with other padding ids");
        free(before);
        pb_peft_free(&p);
        pb_model_free(&m);
    }
}

/* A prefix: every query sees it (the first one too, under the causal mask), padding stays
 * invisible, and the causal mask still hides later tokens. */
static void test_prefix_masks(void **state) {
    (void)state;
    for (int fi = 0; fi < TF_NFAMILY; fi++) {
        pb_model_desc d = fdesc(&tf_families[fi], 11);
        int causal = d.causal;
        pb_model m;
        assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 3), PB_OK);
        spread(&m, 6);
        pb_peft p;
        assert_int_equal(pb_peft_create(&p, "prefix_tuning:num_virtual_tokens=3", NULL, PB_HEAD_LM, 0, &m, 1), PB_OK);
        batch2 x;
        make_batch(&x, PB_HEAD_LM, 4);
        size_t V = (size_t)d.vocab, n = 12 * V;
        float *base = malloc(sizeof(float) * n);
        fwd(&m, &x.b, 0);
        memcpy(base, m.logits, sizeof(float) * n);
        /* other ids at the padded positions: nothing real changes */
        int32_t keep10 = x.ids[10], keep11 = x.ids[11];
        x.ids[10] = (keep10 + 1) % 11;
        x.ids[11] = (keep11 + 2) % 11;
        fwd(&m, &x.b, 0);
        for (int i = 0; i < 12; i++)
            if (x.mask[i]) tu_assert_close(m.logits + i * V, base + i * V, V, 1e-6, 1e-5, "logits, other padding");
        x.ids[10] = keep10;
        x.ids[11] = keep11;
        if (causal) {
            /* another last token of sequence 0: the earlier positions do not see it */
            x.ids[5] = (x.ids[5] + 4) % 11;
            fwd(&m, &x.b, 0);
            tu_assert_close(m.logits, base, 5 * V, 1e-6, 1e-5, "causal logits before the changed token");
            x.ids[5] = (x.ids[5] + 7) % 11;
        }
        /* another prefix in the first layer: the first query's output changes */
        pb_tensor *e = added(&p, "prefix_encoder.embedding.weight");
        for (int j = 0; j < 3; j++) e->data[(size_t)j * e->shape[1] + 1] += 1.0f; /* layer 0's first key */
        fwd(&m, &x.b, 0);
        double diff = 0;
        for (size_t v = 0; v < V; v++) diff += fabs(m.logits[v] - base[v]);
        if (!(diff > 1e-4)) fail_msg("the first query does not see the prefix (%s)", d.name);
        free(base);
        pb_peft_free(&p);
        pb_model_free(&m);
    }
}

/* ---- positions of virtual tokens and prefixes (docs/ARCHITECTURE.md) --------------------------- */

/* Logits (rows first.. of a forward over ids (1, T)) of a plain copy of m's base weights. */
static float *plain_logits(const pb_model *m, const int32_t *ids, int T, int first, int rows, pb_model *keep) {
    pb_model q;
    assert_int_equal(pb_model_init(&q, &m->d, PB_HEAD_LM, 0, 3), PB_OK);
    memcpy(q.params, m->params, sizeof(float) * m->n_params);
    int32_t tg[16];
    for (int t = 0; t < T; t++) tg[t] = ids[(t + 1) % T];
    pb_batch b = {.B = 1, .T = T, .ids = ids, .targets = tg};
    fwd(&q, &b, 1); /* training: every layer's k, v saved (all tensors train) */
    size_t V = (size_t)m->d.vocab;
    float *out = malloc(sizeof(float) * (size_t)rows * V);
    memcpy(out, q.logits + (size_t)first * V, sizeof(float) * (size_t)rows * V);
    if (keep) *keep = q;
    else pb_model_free(&q);
    return out;
}

/* Hugging Face PEFT's positions, on every family: P virtual tokens are input embeddings at positions
 * 0..P-1 with the real tokens after them, so prompt tuning with the embeddings of tokens a b c
 * in front of x is the plain model on "a b c x". A prefix of P keys and values is a cache of P
 * tokens: with rotary positions (llama) the keys are used as stored and the real tokens are at
 * positions P.., so the prefix made of the plain model's (rotated) keys and values of "a b c" gives
 * x exactly the logits the plain model gives it after "a b c". With learned positions (the GPT
 * rows) the real tokens keep positions 0.. (the documented deviation), so the logits differ. */
static void test_positions_as_hugging_face(void **state) {
    (void)state;
    enum { P = 3, T = 5 };
    const int32_t abc[P] = {7, 2, 9}, x[T] = {4, 1, 8, 3, 5};
    int32_t all[P + T], tg[T];
    memcpy(all, abc, sizeof abc);
    memcpy(all + P, x, sizeof x);
    for (int t = 0; t < T; t++) tg[t] = x[(t + 1) % T];
    pb_batch bx = {.B = 1, .T = T, .ids = x, .targets = tg};
    int rotary = 0;
    for (int fi = 0; fi < TF_NFAMILY; fi++) {
        pb_model_desc d = fdesc(&tf_families[fi], 11);
        if (!d.causal) continue;
        const size_t V = (size_t)d.vocab, C = (size_t)d.d_model;
        pb_model m, plain;
        assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 3), PB_OK);
        spread(&m, 8);
        float *want = plain_logits(&m, all, P + T, P, T, &plain);

        /* virtual tokens = the embeddings of a b c */
        pb_peft p;
        assert_int_equal(pb_peft_create(&p, "prompt_tuning:num_virtual_tokens=3", NULL, PB_HEAD_LM, 0, &m, 1), PB_OK);
        pb_tensor *e = added(&p, "prompt_encoder.embedding.weight");
        for (int i = 0; i < P; i++)
            memcpy(e->data + (size_t)i * C, m.global.w[PB_SITE_EMBED]->data + (size_t)abc[i] * C, sizeof(float) * C);
        fwd(&m, &bx, 0);
        tu_assert_close(m.logits + (size_t)P * V, want, (size_t)T * V, 1e-5, 1e-4, "virtual tokens = real tokens in front");
        pb_peft_free(&p);

        /* a prefix = the plain model's keys and values of a b c, layer by layer */
        assert_int_equal(pb_peft_create(&p, "prefix_tuning:num_virtual_tokens=3", NULL, PB_HEAD_LM, 0, &m, 1), PB_OK);
        e = added(&p, "prefix_encoder.embedding.weight"); /* (P, 2 L kv): layer l's key, then its value */
        size_t kv = (size_t)d.n_kv_head * (C / (size_t)d.n_head), row = (size_t)e->shape[1];
        assert_int_equal(row, 2 * (size_t)d.n_layer * kv);
        for (int l = 0; l < d.n_layer; l++)
            for (int j = 0; j < P; j++) {
                memcpy(e->data + j * row + 2 * l * kv, plain.acts[l].k + j * kv, sizeof(float) * kv);
                memcpy(e->data + j * row + (2 * l + 1) * kv, plain.acts[l].v + j * kv, sizeof(float) * kv);
            }
        fwd(&m, &bx, 0);
        if (d.pos == PB_POS_ROPE) {
            tu_assert_close(m.logits, want, (size_t)T * V, 1e-5, 1e-4, "prefix = a cache of real tokens");
            rotary++;
        } else {
            double diff = 0;
            for (size_t i = 0; i < (size_t)T * V; i++) diff += fabs(m.logits[i] - want[i]);
            if (!(diff > 1e-3)) fail_msg("%s: learned positions should keep the real tokens at 0.. (%g)", d.name, diff);
        }
        pb_peft_free(&p);
        free(want);
        pb_model_free(&plain);
        pb_model_free(&m);
    }
    assert_true(rotary > 0);
}

/* ---- prompt encoders on their own vs finite differences --------------------------------------- */

/* J = sum of R * (the method's output): the prompt (embed hook) or every layer's prefix keys
 * and values (prefix hooks). Gradients: run the hooks' backward with R. */
typedef struct {
    pb_peft *p;
    int L, P, C, prefix;
    float *out, *r; /* (L * 2 * P * C) or (P * C) */
} enc_probe;

static size_t probe_n(const enc_probe *x) { return (size_t)(x->prefix ? x->L * 2 : 1) * x->P * x->C; }

static double probe_eval(enc_probe *x) {
    pb_peft *p = x->p;
    assert_int_equal(p->hooks.begin(p->hooks.self, 1, 4, 1), PB_OK);
    size_t PC = (size_t)x->P * x->C;
    if (x->prefix)
        for (int l = 0; l < x->L; l++) p->pre[l].fwd(p->pre[l].self, x->out + 2 * l * PC, x->out + (2 * l + 1) * PC);
    else p->hooks.embed.fwd(p->hooks.embed.self, x->out);
    double J = 0;
    for (size_t i = 0; i < probe_n(x); i++) J += (double)x->r[i] * x->out[i];
    return J;
}

static void probe_grad(enc_probe *x) {
    pb_peft *p = x->p;
    pb_peft_zero_grad(p);
    probe_eval(x);
    size_t PC = (size_t)x->P * x->C;
    if (x->prefix)
        for (int l = x->L - 1; l >= 0; l--) p->pre[l].bwd(p->pre[l].self, x->r + 2 * l * PC, x->r + (2 * l + 1) * PC);
    else p->hooks.embed.bwd(p->hooks.embed.self, x->r);
}

/* Central differences with step eps; |analytic - fd| <= atol + 1e-2 |fd| per element. */
static void check_encoder(const char *spec, int prefix, double eps, double atol) {
    pb_model_desc d = desc(1, 11);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_LM, 0, 3), PB_OK);
    pb_peft p;
    if (pb_peft_create(&p, spec, NULL, PB_HEAD_LM, 0, &m, 2) != PB_OK) fail_msg("%s: %s", spec, pb_errmsg());
    enc_probe x = {.p = &p, .L = d.n_layer, .C = d.d_model, .prefix = prefix};
    x.P = prefix ? p.pre[0].P : p.hooks.embed.P;
    x.out = malloc(sizeof(float) * probe_n(&x));
    x.r = malloc(sizeof(float) * probe_n(&x));
    tu_fill(x.r, probe_n(&x), 77, 1.0f);
    probe_grad(&x);
    pb_peft_hold(&p, 1); /* the differences replay that forward: the same dropout masks */
    double worst = 0;
    for (int i = 0; i < p.n_params; i++) {
        pb_tensor *t = &p.params[i];
        for (size_t j = 0; j < t->numel; j++) {
            float keep = t->data[j];
            t->data[j] = (float)(keep + eps);
            double jp = probe_eval(&x);
            t->data[j] = (float)(keep - eps);
            double jm = probe_eval(&x);
            t->data[j] = keep;
            double fd = (jp - jm) / (2 * eps), g = t->grad[j];
            double ratio = fabs(g - fd) / (atol + 1e-2 * fabs(fd));
            if (ratio > worst) worst = ratio;
            if (!(ratio <= 1))
                fail_msg("%s: %s[%zu] analytic %.7g vs finite difference %.7g", spec, t->name, j, g, fd);
        }
    }
    if (getenv("PB_TEST_VERBOSE")) printf("%s: worst error / tolerance %.3f\n", spec, worst);
    free(x.out);
    free(x.r);
    pb_peft_free(&p);
    pb_model_free(&m);
}

static void test_encoder_gradients(void **state) {
    (void)state;
    /* smooth encoders (tanh, sigmoid) take a larger step, less float noise; ReLU ones a small
     * step, away from its kink */
    check_encoder("p_tuning:num_virtual_tokens=4,encoder_hidden_size=6", 0, 1e-3, 1e-3);
    check_encoder("p_tuning:num_virtual_tokens=5,encoder_reparameterization_type=LSTM,encoder_hidden_size=4,"
                  "encoder_num_layers=3",
                  0, 1e-2, 2e-4);
    /* encoder_dropout between the layers, with the mask of the analytic gradient's forward */
    check_encoder("p_tuning:num_virtual_tokens=4,encoder_reparameterization_type=LSTM,encoder_hidden_size=4,"
                  "encoder_num_layers=3,encoder_dropout=0.3",
                  0, 1e-2, 2e-4);
    /* one virtual token: no previous step, so W_hh's gradient is zero by construction */
    check_encoder("p_tuning:num_virtual_tokens=1,encoder_reparameterization_type=LSTM,encoder_hidden_size=2,"
                  "encoder_num_layers=1",
                  0, 1e-2, 2e-4);
    check_encoder("prefix_tuning:num_virtual_tokens=3,prefix_projection=1,encoder_hidden_size=6", 1, 1e-2, 2e-4);
    check_encoder("prefix_tuning:num_virtual_tokens=3", 1, 1e-2, 2e-4);
}

/* encoder_dropout: one mask per training forward, none at evaluation. */
static void test_lstm_dropout(void **state) {
    (void)state;
    pb_model_desc d = desc(1, 11);
    pb_model m1, m2;
    assert_int_equal(pb_model_init(&m1, &d, PB_HEAD_LM, 0, 3), PB_OK);
    assert_int_equal(pb_model_init(&m2, &d, PB_HEAD_LM, 0, 3), PB_OK);
    pb_peft a, b;
    const char *s0 = "p_tuning:num_virtual_tokens=4,encoder_reparameterization_type=LSTM,encoder_hidden_size=4";
    const char *s1 = "p_tuning:num_virtual_tokens=4,encoder_reparameterization_type=LSTM,encoder_hidden_size=4,"
                     "encoder_dropout=0.5";
    assert_int_equal(pb_peft_create(&a, s0, NULL, PB_HEAD_LM, 0, &m1, 5), PB_OK);
    assert_int_equal(pb_peft_create(&b, s1, NULL, PB_HEAD_LM, 0, &m2, 5), PB_OK);
    float pa[32], pb[32];
    for (int training = 0; training <= 1; training++) {
        assert_int_equal(a.hooks.begin(a.hooks.self, 1, 4, training), PB_OK);
        assert_int_equal(b.hooks.begin(b.hooks.self, 1, 4, training), PB_OK);
        a.hooks.embed.fwd(a.hooks.embed.self, pa);
        b.hooks.embed.fwd(b.hooks.embed.self, pb);
        if (!training) tu_assert_same(pb, pa, 32, "evaluation prompt with encoder_dropout");
        else if (!memcmp(pa, pb, sizeof pa)) fail_msg("encoder_dropout=0.5 changed nothing in training");
    }
    pb_peft_free(&a);
    pb_peft_free(&b);
    pb_model_free(&m1);
    pb_model_free(&m2);
}

/* ---- counts ------------------------------------------------------------------------------------ */

static size_t trainable(const char *spec, const pb_model_desc *d, int K) {
    pb_peft p;
    if (pb_peft_create(&p, spec, d, K ? PB_HEAD_CLS : PB_HEAD_LM, K, NULL, 1) != PB_OK)
        fail_msg("%s: %s", spec, pb_errmsg());
    size_t tr, all;
    pb_peft_counts(&p, &tr, &all);
    pb_peft_free(&p);
    return tr;
}

static void test_counts(void **state) {
    (void)state;
    /* grouped-query attention: prefixes have the key/value width C / H * Hkv (Hugging Face) */
    pb_model_desc g = desc(1, 100);
    g.d_model = 64;
    g.n_head = 8;
    g.n_kv_head = 2;
    g.n_layer = 3;
    assert_int_equal(trainable("prefix_tuning:num_virtual_tokens=10", &g, 0), 10 * 2 * 3 * 16);
    assert_int_equal(trainable("prefix_tuning:num_virtual_tokens=10,prefix_projection=1", &g, 0),
                     10 * 16 + (16 * 16 + 16) + (16 * 96 + 96));
    /* GPT-2 small shapes: Hugging Face's numbers for 20 virtual tokens */
    pb_model_desc gpt2 = desc(1, 50257);
    gpt2.n_layer = 12;
    gpt2.d_model = 768;
    gpt2.n_head = gpt2.n_kv_head = 12;
    gpt2.d_ff = 3072;
    gpt2.max_seq = 1024;
    assert_int_equal(trainable("prompt_tuning:num_virtual_tokens=20", &gpt2, 0), 15360);
    assert_int_equal(trainable("prefix_tuning:num_virtual_tokens=20", &gpt2, 0), 368640);
    assert_int_equal(trainable("p_tuning:num_virtual_tokens=20,encoder_hidden_size=128", &gpt2, 0),
                     15360 + (768 * 128 + 128) + (128 * 128 + 128) + (128 * 768 + 768));
}

static void test_mam_composes(void **state) {
    (void)state;
    pb_model_desc d = desc(1, 11);
    pb_model m;
    assert_int_equal(pb_model_init(&m, &d, PB_HEAD_CLS, 3, 3), PB_OK);
    pb_peft p;
    assert_int_equal(pb_peft_create(&p, "mam", NULL, PB_HEAD_CLS, 3, &m, 1), PB_OK);
    assert_int_equal(p.n_ctx, 3);
    assert_string_equal(p.ctx[1]->method->name, "prefix_tuning");
    assert_string_equal(p.ctx[2]->method->name, "par_bn");
    assert_int_equal(pb_hp_int(p.ctx[1], "num_virtual_tokens"), 30);
    assert_true(pb_hp_bool(p.ctx[1], "prefix_projection"));
    assert_true(pb_hp_float(p.ctx[2], "scaling") == 4.0);
    assert_int_equal(pb_hp_enum(p.ctx[2], "non_linearity"), 0); /* relu */
    assert_int_equal(pb_hp_enum(p.ctx[2], "init_weights"), 1); /* mam_adapter */
    size_t tr, all;
    pb_peft_counts(&p, &tr, &all);
    size_t want = trainable("prefix_tuning:num_virtual_tokens=30,prefix_projection=1", &d, 0) +
                  trainable("par_bn:reduction_factor=2", &d, 0) + 3 * 8 + 3;
    assert_int_equal(tr, want);
    pb_peft_free(&p);
    /* r and reduction_factor together are refused */
    assert_int_equal(pb_peft_create(&p, "mam:r=2,reduction_factor=4", &d, PB_HEAD_CLS, 3, NULL, 1), PB_EINVAL);
    assert_non_null(strstr(pb_errmsg(), "reduction_factor"));
    pb_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_init_text),
        cmocka_unit_test(test_prompt_init_sample_and_random),
        cmocka_unit_test(test_pooling_with_virtual_tokens),
        cmocka_unit_test(test_prefix_masks),
        cmocka_unit_test(test_positions_as_hugging_face),
        cmocka_unit_test(test_encoder_gradients),
        cmocka_unit_test(test_lstm_dropout),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_mam_composes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
