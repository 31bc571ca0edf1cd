/* prefix_tuning.c — prefix tuning: P trainable key and value vectors in front of every layer's
 * attention.
 *
 * Li & Liang 2021 ("Prefix-Tuning: Optimizing Continuous Prompts for Generation"); Hugging Face
 * PEFT PrefixTuningConfig / PrefixEncoder (src/peft/tuners/prefix_tuning/). Letters: L layers,
 * C d_model, kv = C / H * Hkv the key/value width (C unless grouped-query attention, where
 * Hugging Face shrinks token_dim the same way), P = num_virtual_tokens, h = encoder_hidden_size.
 *
 * Layer l attends over [Pk_l ; K] and [Pv_l ; V]: the P prefix keys/values are visible to every
 * query (also under the causal mask) and are never padding. Where they come from:
 *   prefix_projection=0 (Hugging Face's default): one table E (P, 2 L kv), row p laid out as
 *     Hugging Face's past_key_values view (P, 2L, H, hs): columns [2l kv, (2l+1) kv) are layer
 *     l's key, [(2l+1) kv, (2l+2) kv) its value.
 *   prefix_projection=1 (Li & Liang's reparameterisation; Hugging Face's PrefixEncoder.transform):
 *     E (P, kv) -> Linear(kv, h) -> tanh -> Linear(h, 2 L kv), the output laid out as above.
 *     It is computed once per forward in `begin`; backward collects every layer's dPk/dPv into a
 *     workspace and runs the MLP backward once, when the last prefixed layer's gradient arrives
 *     (counted, so it does not depend on the order the model visits layers).
 * Initialisation (PyTorch defaults, as Hugging Face leaves them): E ~ N(0, 1) (nn.Embedding);
 * Linear weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). init_weights=zero (Hugging
 * Face's "zero") zeroes E, or with the projection its last Linear, so every prefix key and value
 * starts at 0 (not an identity: zero keys still take softmax mass).
 * encoder_hidden_size 0 means kv (Hugging Face's default: token_dim). num_virtual_tokens has no
 * default in Hugging Face; ours is 20, as in its examples.
 * Positions (model side; docs/ARCHITECTURE.md "Positions of prefixes and virtual tokens"): with
 * rotary positions (the LLaMA-style block) the real tokens are at positions P.., as Hugging Face
 * numbers them after a P-long past_key_values, and the prefix keys are used as they are (a cache
 * entry already rotated). Deviation with learned positions (the GPT-style block): the real tokens
 * keep positions 0.. as without a prefix, where GPT-2 and BERT in Hugging Face number them from P
 * (cache_position / past_key_values_length); the two differ by that offset.
 *
 * Not identity at initialisation. Merge: not possible (NULL).
 * Closed form (trainable):
 *   without projection  P 2 L kv
 *   with projection     P kv + (kv h + h) + (h 2 L kv + 2 L kv)
 *   L = the blocks the prefix attaches to (an encoder-decoder's encoder blocks); the task head
 *   is the framework's to count.
 * Saved (fixed, with the projection): tanh output (P, h), prefixes (P, 2 L kv).
 * Workspace (fixed, with the projection): d(prefixes) (P, 2 L kv), d(tanh output) (P, h).
 * FLOPs beyond the kernels: tanh 1 per element forward, its backward 3 per element; gradient
 * accumulation 1 per element.
 *
 * gate=1 (alias use_gating; UniPELT, Mao et al. 2022: their modeling_bert.py prefix_gate, and
 * AdapterHub's PrefixTuningConfig(use_gating=True, shared_gating=True)): layer l gets a gate
 * Linear(C, 1), Wg_l (1,C), bg_l (1), and sequence b's prefix keys and values are multiplied by
 *   g_b = mean over the real tokens t of b of sigmoid(x_bt Wg_l^T + bg_l)
 * with x the layer's ln_1 output (what the attention projections read; the reference reads the
 * attention input of its post-LN BERT). The model applies g and returns d g (hooks.h gate_fwd/
 * gate_bwd). Wg ~ N(0, 0.02^2) (AdapterHub), bg = 0 (AdapterHub and the reference keep PyTorch's
 * default U(+-1/sqrt(C)) bias; zero starts g near 0.5, as the seq_bn and lora gates).
 * The mean sees every token of the sequence, later ones too, so a causal language model would
 * leak the future into earlier predictions: attach refuses gate=1 with a causal LM head.
 * Deviation: the reference and AdapterHub average over all positions, padding included; here over
 * the real tokens only (mask), so padding cannot change a sequence's output (the same when
 * nothing is padded). A sequence without real tokens gets g = 0.
 * Closed form with the gate: + L (C + 1). Saved: sigmoid(x Wg^T + bg) (N) per layer. Workspace:
 * (N), the gate's pre-activation gradient. FLOPs: sigmoid 4 and the masked mean 1 per token
 * forward, 4 per token backward (the model counts scaling the prefixes by g and d g).
 */
#include "method.h"
#include "kernels.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { HP_P, HP_PROJ, HP_HIDDEN, HP_INIT, HP_GATE };

static const pb_hparam pre_hparams[] = {
    [HP_P] = {"num_virtual_tokens", "prefix_length n_tokens", PB_HP_INT, "20", 1, 4096, NULL,
              "P, prefix length per layer (Li & Liang: 10 for table-to-text, 200 for summarisation)"},
    [HP_PROJ] = {"prefix_projection", "projection reparameterize", PB_HP_BOOL, "0", 0, 1, NULL,
                 "produce the prefixes with an MLP from P embeddings (Li & Liang's reparameterisation)"},
    [HP_HIDDEN] = {"encoder_hidden_size", "bottleneck_size mid_dim", PB_HP_INT, "0", 0, 1 << 20, NULL,
                   "hidden width h of the projection MLP (0: the key/value width)"},
    [HP_INIT] = {"init_weights", NULL, PB_HP_ENUM, "random", 0, 0, "random|zero",
                 "random: PyTorch defaults; zero: the prefixes start at 0"},
    [HP_GATE] = {"gate", "use_gating", PB_HP_BOOL, "0", 0, 1, NULL,
                 "per-sequence gate mean_t sigmoid(W_g x_t + b_g) on each layer's prefix (UniPELT; not with a "
                 "causal LM head)"},
};

/* The site the added tensors are booked under: they feed the attention keys and values. */
#define PRE_SITE PB_SITE_K

typedef struct {
    int P, L, kv, h, proj, gate;
    int emb, w1, b1, w2, b2; /* tensor handles (w1..b2 with the projection) */
    int g0;                  /* gate: Wg of layer l is handle g0 + 2 l, bg g0 + 2 l + 1 */
    size_t acts_fixed, work_fixed; /* the projection's buffers, in front of the gate's */
    int pending;             /* prefixed layers whose gradient has not arrived in this backward */
} pre_state;

static int hidden_size(int h, int kv) { return h > 0 ? h : kv; }

/* PEFT's token_dim: d_model, or head_dim x kv heads where the config has grouped-query attention
 * (its _prepare_prompt_learning_config). */
static int kv_width(const pb_model_desc *d) {
    return d->n_kv_head == d->n_head ? d->d_model : pb_desc_head_dim(d) * d->n_kv_head;
}

static pb_status pre_attach(pb_method_ctx *c) {
    pre_state *s = c->state;
    const pb_model_desc *d = c->d;
    s->P = (int)pb_hp_int(c, "num_virtual_tokens");
    s->L = pb_ctx_prefix_layers(c);
    s->kv = kv_width(d);
    s->proj = pb_hp_bool(c, "prefix_projection");
    s->h = hidden_size((int)pb_hp_int(c, "encoder_hidden_size"), s->kv);
    if (!s->proj && pb_hp_int(c, "encoder_hidden_size") > 0)
        return pb_errorf(PB_EINVAL, "prefix_tuning: encoder_hidden_size=%ld needs prefix_projection=1",
                         pb_hp_int(c, "encoder_hidden_size"));
    s->gate = pb_hp_bool(c, "gate");
    if (s->gate && !c->n_labels && d->causal)
        return pb_errorf(PB_EINVAL, "prefix_tuning: gate=1 averages over every token of a sequence, so with a "
                                    "causal language-model head later tokens would leak into earlier "
                                    "predictions; use a classification head or gate=0");
    for (int l = 0; l < s->L; l++) {
        pb_status st = pb_ctx_hook_prefix(c, l, s->P);
        if (st) return st;
    }
    int out = 2 * s->L * s->kv;
    if (!s->proj) {
        s->emb = pb_ctx_param(c, "prefix_encoder.embedding.weight", -1, PRE_SITE, s->P, out, 1);
    } else {
        s->emb = pb_ctx_param(c, "prefix_encoder.embedding.weight", -1, PRE_SITE, s->P, s->kv, 1);
        s->w1 = pb_ctx_param(c, "prefix_encoder.transform.0.weight", -1, PRE_SITE, s->h, s->kv, 1);
        s->b1 = pb_ctx_param(c, "prefix_encoder.transform.0.bias", -1, PRE_SITE, s->h, 0, 1);
        s->w2 = pb_ctx_param(c, "prefix_encoder.transform.2.weight", -1, PRE_SITE, out, s->h, 1);
        s->b2 = pb_ctx_param(c, "prefix_encoder.transform.2.bias", -1, PRE_SITE, out, 0, 1);
        size_t Ph = (size_t)s->P * s->h, Po = (size_t)s->P * out;
        s->acts_fixed = Ph + Po;
        s->work_fixed = Po + Ph;
        pb_ctx_acts(c, 0, Ph + Po);
        pb_ctx_work(c, 0, Po + Ph);
    }
    if (!s->gate) return PB_OK;
    for (int l = 0; l < s->L; l++) {
        char name[48];
        snprintf(name, sizeof name, "h.%d.attn.prefix_gate.weight", l);
        int w = pb_ctx_param(c, name, l, PRE_SITE, 1, d->d_model, 1);
        snprintf(name, sizeof name, "h.%d.attn.prefix_gate.bias", l);
        pb_ctx_param(c, name, l, PRE_SITE, 1, 0, 1);
        if (l == 0) s->g0 = w;
        pb_status st = pb_ctx_hook_prefix_gate(c, l);
        if (st) return st;
    }
    pb_ctx_acts(c, (size_t)s->L, 0); /* sigmoid(x Wg^T + bg) per layer and row */
    pb_ctx_work(c, 1, 0);             /* its gradient */
    return PB_OK;
}

static size_t pre_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    (void)head;
    const pb_method *m = pb_method_find("prefix_tuning");
    size_t P = (size_t)pb_hpv_num(m, hp, "num_virtual_tokens"), L = (size_t)pb_hf_prefix_layers(d);
    size_t kv = (size_t)kv_width(d), C = (size_t)d->d_model;
    size_t h = (size_t)hidden_size((int)pb_hpv_num(m, hp, "encoder_hidden_size"), (int)kv);
    size_t n = pb_hpv_num(m, hp, "prefix_projection") != 0
                   ? P * kv + (kv * h + h) + (h * 2 * L * kv + 2 * L * kv)
                   : P * 2 * L * kv;
    if (pb_hpv_num(m, hp, "gate") != 0) n += L * (C + 1);
    return n;
}

static void fill_linear(pb_rng *rng, pb_tensor *w, pb_tensor *b) {
    float bound = 1.0f / sqrtf((float)w->shape[1]);
    pb_rng_fill_uniform(rng, w->data, w->numel, bound);
    pb_rng_fill_uniform(rng, b->data, b->numel, bound);
}

static void pre_init(pb_method_ctx *c, pb_rng *rng) {
    pre_state *s = c->state;
    int zero = pb_hp_enum(c, "init_weights") == 1;
    pb_tensor *e = pb_ctx_tensor(c, s->emb);
    if (!s->proj) {
        if (!zero) pb_rng_fill_normal(rng, e->data, e->numel, 1.0f);
        return;
    }
    pb_rng_fill_normal(rng, e->data, e->numel, 1.0f);
    fill_linear(rng, pb_ctx_tensor(c, s->w1), pb_ctx_tensor(c, s->b1));
    if (!zero) fill_linear(rng, pb_ctx_tensor(c, s->w2), pb_ctx_tensor(c, s->b2));
}

/* Gate weights after everything else, so the ungated prefix draws the same numbers as before. */
static void pre_init_all(pb_method_ctx *c, pb_rng *rng) {
    pre_state *s = c->state;
    pre_init(c, rng);
    for (int l = 0; s->gate && l < s->L; l++) {
        pb_tensor *w = pb_ctx_tensor(c, s->g0 + 2 * l);
        pb_rng_fill_normal(rng, w->data, w->numel, 0.02f); /* bg stays 0 */
    }
}

/* Saved buffers with the projection: a = tanh(E W1^T + b1) (P, h), prefixes (P, 2 L kv). */
static float *saved_a(pb_method_ctx *c) { return c->acts; }
static float *saved_prefix(pb_method_ctx *c) {
    pre_state *s = c->state;
    return c->acts + (size_t)s->P * s->h;
}

static pb_status pre_begin(pb_method_ctx *c) {
    pre_state *s = c->state;
    s->pending = s->L;
    if (!s->proj) return PB_OK;
    int out = 2 * s->L * s->kv;
    float *a = saved_a(c);
    size_t Ph = (size_t)s->P * s->h;
    pb_linear_fwd(a, pb_ctx_tensor(c, s->emb)->data, pb_ctx_tensor(c, s->w1)->data, pb_ctx_tensor(c, s->b1)->data,
                  s->P, s->kv, s->h);
    for (size_t i = 0; i < Ph; i++) a[i] = tanhf(a[i]);
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)Ph);
    pb_linear_fwd(saved_prefix(c), a, pb_ctx_tensor(c, s->w2)->data, pb_ctx_tensor(c, s->b2)->data, s->P, s->h, out);
    if (c->training) memset(c->work, 0, sizeof(float) * (size_t)s->P * out); /* d(prefixes) */
    return PB_OK;
}

static void pre_fwd(pb_method_ctx *c, int layer, float *pk, float *pv) {
    pre_state *s = c->state;
    size_t out = (size_t)2 * s->L * s->kv, kv = (size_t)s->kv;
    const float *src = s->proj ? saved_prefix(c) : pb_ctx_tensor(c, s->emb)->data; /* (P, 2 L kv) */
    for (int p = 0; p < s->P; p++) {
        const float *row = src + (size_t)p * out + (size_t)2 * layer * kv;
        memcpy(pk + (size_t)p * kv, row, sizeof(float) * kv);
        memcpy(pv + (size_t)p * kv, row + kv, sizeof(float) * kv);
    }
}

/* Backward through the projection MLP, from d(prefixes) of every layer. */
static void mlp_bwd(pb_method_ctx *c) {
    pre_state *s = c->state;
    int out = 2 * s->L * s->kv;
    size_t Ph = (size_t)s->P * s->h;
    const float *dpre = c->work, *a = saved_a(c);
    float *da = c->work + (size_t)s->P * out; /* (P, h) */
    pb_tensor *e = pb_ctx_tensor(c, s->emb), *w1 = pb_ctx_tensor(c, s->w1), *b1 = pb_ctx_tensor(c, s->b1);
    pb_tensor *w2 = pb_ctx_tensor(c, s->w2), *b2 = pb_ctx_tensor(c, s->b2);
    memset(da, 0, sizeof(float) * Ph);
    pb_linear_bwd(da, w2->grad, b2->grad, dpre, a, w2->data, s->P, s->h, out);
    for (size_t i = 0; i < Ph; i++) da[i] *= 1.0f - a[i] * a[i]; /* d(pre-tanh) */
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 3 * (uint64_t)Ph);
    pb_linear_bwd(e->grad, w1->grad, b1->grad, da, e->data, w1->data, s->P, s->kv, s->h);
}

static void pre_bwd(pb_method_ctx *c, int layer, const float *dpk, const float *dpv) {
    pre_state *s = c->state;
    size_t out = (size_t)2 * s->L * s->kv, kv = (size_t)s->kv;
    float *dst = s->proj ? c->work : pb_ctx_tensor(c, s->emb)->grad; /* (P, 2 L kv) */
    for (int p = 0; p < s->P; p++) {
        float *row = dst + (size_t)p * out + (size_t)2 * layer * kv;
        for (size_t i = 0; i < kv; i++) {
            row[i] += dpk[(size_t)p * kv + i];
            row[kv + i] += dpv[(size_t)p * kv + i];
        }
    }
    pb_flops_add(s->proj ? PB_PHASE_BWD_IN : PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * (uint64_t)s->P * kv);
    if (s->proj && --s->pending == 0) mlp_bwd(c);
}

/* ---- the gate (gate=1) ----------------------------------------------------------------------- */

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Saved sigmoid(x Wg^T + bg) (N) of a layer, behind the projection's buffers. */
static float *gate_saved(pb_method_ctx *c, int layer, int N) {
    pre_state *s = c->state;
    return c->acts + s->acts_fixed + (size_t)layer * N;
}

/* Real tokens of sequence b. */
static int real_tokens(const uint8_t *mask, int b, int Tm) {
    int n = 0;
    for (int t = 0; t < Tm; t++) n += mask[(size_t)b * Tm + t] != 0;
    return n;
}

/* g (B) = mean over b's real tokens of sigmoid(x Wg^T + bg); x (B,Tm,C), mask (B,Tm). */
static void pre_gate_fwd(pb_method_ctx *c, int layer, float *g, const float *x, const uint8_t *mask, int B, int Tm) {
    pre_state *s = c->state;
    int N = B * Tm, C = c->d->d_model;
    assert(N == c->N);
    float *sg = gate_saved(c, layer, N); /* (N) */
    pb_linear_fwd(sg, x, pb_ctx_tensor(c, s->g0 + 2 * layer)->data, pb_ctx_tensor(c, s->g0 + 2 * layer + 1)->data,
                  N, C, 1);
    for (int b = 0; b < B; b++) {
        int n = real_tokens(mask, b, Tm);
        double sum = 0.0;
        for (int t = 0; t < Tm; t++) {
            size_t i = (size_t)b * Tm + t;
            sg[i] = sigmoidf(sg[i]);
            if (mask[i]) sum += sg[i];
        }
        g[b] = n ? (float)(sum / n) : 0.0f;
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 5 * (uint64_t)N + (uint64_t)B); /* sigmoid 4, sum 1, divide */
}

/* dz_bt = dg_b [t real] / n_b * s (1 - s), s = sigmoid(x_bt Wg^T + bg);  dWg += dz^T x, dbg += sum dz,
 * dx += dz Wg. */
static void pre_gate_bwd(pb_method_ctx *c, int layer, float *dx, const float *dg, const float *x,
                         const uint8_t *mask, int B, int Tm) {
    pre_state *s = c->state;
    int N = B * Tm, C = c->d->d_model;
    const float *sg = gate_saved(c, layer, N);
    float *dz = c->work + s->work_fixed; /* (N) */
    for (int b = 0; b < B; b++) {
        int n = real_tokens(mask, b, Tm);
        float k = n ? dg[b] / (float)n : 0.0f;
        for (int t = 0; t < Tm; t++) {
            size_t i = (size_t)b * Tm + t;
            dz[i] = mask[i] ? k * sg[i] * (1.0f - sg[i]) : 0.0f;
        }
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * (uint64_t)N);
    pb_tensor *w = pb_ctx_tensor(c, s->g0 + 2 * layer), *bias = pb_ctx_tensor(c, s->g0 + 2 * layer + 1);
    pb_linear_bwd(dx, w->grad, bias->grad, dz, x, w->data, N, C, 1);
}

static const char *const pre_examples[] = {
    "prefix_tuning:num_virtual_tokens=3",
    "prefix_tuning:num_virtual_tokens=2,prefix_projection=1,encoder_hidden_size=5",
    "prefix_tuning:num_virtual_tokens=2,prefix_projection=1,init_weights=zero", NULL};
/* (gate=1 refuses the causal LM head that the registry tests run every example with; unipelt's
 * examples exercise it) */

static void pre_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_prefix_tuning = {
    .version = PB_METHOD_VERSION,
    .name = "prefix_tuning",
    .category = PB_CAT_PROMPT,
    .summary = "prefix tuning: P trainable key/value vectors prepended to every layer's attention",
    .paper = "Li & Liang 2021, Prefix-Tuning: Optimizing Continuous Prompts for Generation (arXiv:2101.00190)",
    .hparams = pre_hparams,
    .n_hparams = sizeof pre_hparams / sizeof pre_hparams[0],
    .state_size = sizeof(pre_state),
    .examples = pre_examples,
    .attach = pre_attach,
    .closed_form = pre_closed_form,
    .init = pre_init_all,
    .begin = pre_begin,
    .prefix_fwd = pre_fwd,
    .prefix_bwd = pre_bwd,
    .prefix_gate_fwd = pre_gate_fwd,
    .prefix_gate_bwd = pre_gate_bwd,
    .flops = pre_flops,
};

/* FLOPs: the MLP reparameterisation at the start of every forward (begin) and its backward once
 * every layer's prefix gradient is in; the gradient gathering per layer; the gates. */
static void pre_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const pre_state *s = c->state;
    uint64_t P = (uint64_t)s->P, kv = (uint64_t)s->kv, h = (uint64_t)s->h, out = 2 * (uint64_t)s->L * kv;
    uint64_t N = (uint64_t)e->x.N, B = (uint64_t)e->x.B, C = (uint64_t)c->d->d_model;
    if (s->proj) {
        pb_flops_linear_fwd(f, P, kv, h, 1);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, P * h);
        pb_flops_linear_fwd(f, P, h, out, 1);
    }
    int all = 1;
    for (int l = 0; l < s->L; l++) {
        int dx, bwd = pb_flops_prefix_bwd(e, l, &dx);
        if (s->gate) pb_flops_linear_fwd(f, N, C, 1, 1), pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 5 * N + B);
        all &= bwd;
        if (!bwd) continue;
        pb_flops_put(f, s->proj ? PB_PHASE_BWD_IN : PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * P * kv);
        if (s->gate) {
            pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * N);
            pb_flops_linear_bwd(f, N, C, 1, dx, 1, 1);
        }
    }
    if (s->proj && all && e->training) {
        pb_flops_linear_bwd(f, P, h, out, 1, 1, 1);
        pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 3 * P * h);
        pb_flops_linear_bwd(f, P, kv, h, 1, 1, 1);
    }
}
