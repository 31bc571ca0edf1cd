/* p_tuning.c — P-tuning: virtual token embeddings produced by a trainable prompt encoder.
 *
 * Liu et al. 2021 ("GPT Understands, Too"); Hugging Face PEFT PromptEncoderConfig /
 * PromptEncoder (src/peft/tuners/p_tuning/). Letters: P virtual tokens, C d_model,
 * h = encoder_hidden_size (0: C, Hugging Face's default token_dim), n = encoder_num_layers.
 *
 * The model's input is [prompt ; embed(tokens)] as in prompt tuning (models/model.c embed hook:
 * positions 0..P-1 for the virtual tokens, never masked, ignored as LM targets), where
 *   prompt = encoder(E),  E (P, C) trainable embeddings of the P virtual tokens,
 * computed once per forward in `begin` (the same prompt for every sequence of the batch; Hugging
 * Face runs the encoder on B identical copies).
 *   MLP  (Hugging Face's default encoder_reparameterization_type):
 *        Linear(C, h) -> ReLU -> Linear(h, h) -> ReLU -> Linear(h, C)
 *   LSTM (the paper's encoder): a bidirectional n-layer torch.nn.LSTM(C -> h per direction,
 *        dropout encoder_dropout between layers), then Linear(2h, 2h) -> ReLU -> Linear(2h, C).
 *        Cells follow PyTorch (gate rows i, f, g, o):
 *          [i f g o] = x W_ih^T + b_ih + h_prev W_hh^T + b_hh;  i, f, o sigmoid, g tanh
 *          c = f c_prev + i g;  h = o tanh(c);  h_prev = c_prev = 0 at the first step.
 *        The forward direction runs t = 0..P-1, the reverse one P-1..0; a layer's output is
 *        [h_fwd ; h_rev] (P, 2h).
 * Backward (embed_bwd) goes through the encoder exactly, back-propagating through time.
 * Initialisation (PyTorch defaults, as Hugging Face leaves them): E ~ N(0, 1); Linear weights
 * and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); every LSTM weight and bias ~ U(-1/sqrt(h),
 * 1/sqrt(h)).
 * num_virtual_tokens has no default in Hugging Face; ours is 20, as in its examples.
 * Deviation: with encoder_dropout > 0, Hugging Face's LSTM draws a dropout mask per copy of the
 * batch; here one mask serves the batch (the prompt is computed once). encoder_num_layers and
 * encoder_dropout belong to the LSTM: with MLP they are refused (Hugging Face ignores them, with
 * a warning for encoder_num_layers).
 *
 * Not identity at initialisation. Merge: not possible (NULL).
 * Closed form (trainable):
 *   MLP   P C + (C h + h) + (h h + h) + (h C + C)
 *   LSTM  P C + sum over layers k of 2 (4h (in_k + h) + 8h), in_0 = C, in_k = 2h
 *         + (2h 2h + 2h) + (2h C + C)
 *   with P C doubled for an encoder-decoder with its LM head (two sets of virtual tokens); the
 *   task head is the framework's to count.
 * Saved (fixed sizes): MLP: the two ReLU outputs (P, h) each and the prompt (P, C). LSTM, per
 *   layer: its input after dropout (P, 2h) (layers above the first), per direction the
 *   activated gates (P, 4h) and cell states (P, h), its output (P, 2h); then the head's ReLU
 *   output (P, 2h) and the prompt (P, C).
 * Workspace (fixed): MLP 2 (P, h). LSTM 3 (P, 2h) + (P, 4h) + 2 h.
 * FLOPs beyond the kernels (elementwise, exp and tanh count 1, sigmoid 3): ReLU 1 forward and 1
 * backward per element; LSTM cell 19 per unit and step forward (bias 4, gates 3+3+1+3, c 3,
 * h 2), 27 backward (recomputed tanh(c) and its derivative 4, the four gate derivatives 15,
 * the cell gradient 6, h_prev 2 - see lstm_dir_bwd), b_hh gradient 1 per gate and step.
 */
#include "method.h"
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { HP_P, HP_TYPE, HP_HIDDEN, HP_LAYERS, HP_DROPOUT };
enum { ENC_MLP, ENC_LSTM };

static const pb_hparam ptu_hparams[] = {
    [HP_P] = {"num_virtual_tokens", "n_tokens prompt_length", PB_HP_INT, "20", 1, 4096, NULL,
              "P, the number of virtual tokens"},
    [HP_TYPE] = {"encoder_reparameterization_type", "encoder", PB_HP_ENUM, "MLP", 0, 0, "MLP|LSTM",
                 "prompt encoder: MLP (Hugging Face's default) or bidirectional LSTM + MLP (the paper's)"},
    [HP_HIDDEN] = {"encoder_hidden_size", "hidden", PB_HP_INT, "0", 0, 1 << 20, NULL,
                   "hidden width h of the encoder (0: d_model)"},
    [HP_LAYERS] = {"encoder_num_layers", NULL, PB_HP_INT, "2", 1, 64, NULL, "LSTM layers (LSTM only)"},
    [HP_DROPOUT] = {"encoder_dropout", NULL, PB_HP_FLOAT, "0", 0, 0.99, NULL,
                    "dropout between LSTM layers, training only (LSTM only)"},
};

#define MAX_LAYERS 64

typedef struct {
    int P, C, h, lstm, nl;
    float dropout;
    int emb;                                  /* (P, C) */
    int lin_w[3], lin_b[3];                   /* MLP: 3 linears; LSTM: the 2 linears of its head */
    int wih[MAX_LAYERS][2], whh[MAX_LAYERS][2], bih[MAX_LAYERS][2], bhh[MAX_LAYERS][2]; /* [layer][dir] */
} ptu_state;

static int hidden_size(long h, int C) { return h > 0 ? (int)h : C; }

/* ---- buffers -------------------------------------------------------------------------------- */

/* Floats of LSTM layer k's saved block: input after dropout (k > 0), 2 x (gates, cells), output. */
static size_t lstm_block(size_t P, size_t h, int k) { return (k ? 2 * P * h : 0) + 2 * (4 * P * h + P * h) + 2 * P * h; }

typedef struct {
    float *in;       /* (P, 2h) layer input after dropout; NULL for layer 0 (its input is E) */
    float *gates[2]; /* (P, 4h) activated gates, per direction */
    float *cs[2];    /* (P, h) cell states, per direction */
    float *y;        /* (P, 2h) output [h_fwd ; h_rev] */
} lstm_bufs;

static lstm_bufs lstm_layer(pb_method_ctx *c, int k) {
    ptu_state *s = c->state;
    size_t P = (size_t)s->P, h = (size_t)s->h;
    float *p = c->acts;
    for (int j = 0; j < k; j++) p += lstm_block(P, h, j);
    lstm_bufs b;
    b.in = k ? p : NULL;
    p += k ? 2 * P * h : 0;
    for (int d = 0; d < 2; d++) {
        b.gates[d] = p;
        p += 4 * P * h;
        b.cs[d] = p;
        p += P * h;
    }
    b.y = p;
    return b;
}

/* The saved encoder activations before the prompt: MLP a1, a2 (P, h) each; LSTM the layers and
 * the head's ReLU output (P, 2h). */
static size_t saved_before_prompt(const ptu_state *s) {
    size_t P = (size_t)s->P, h = (size_t)s->h;
    if (!s->lstm) return 2 * P * h;
    size_t n = 2 * P * h;
    for (int k = 0; k < s->nl; k++) n += lstm_block(P, h, k);
    return n;
}

static float *head_relu(pb_method_ctx *c) { /* LSTM head's ReLU output (P, 2h) */
    ptu_state *s = c->state;
    return c->acts + saved_before_prompt(s) - 2 * (size_t)s->P * s->h;
}

static float *prompt_out(pb_method_ctx *c) { return c->acts + saved_before_prompt(c->state); }

/* ---- attach, count, init -------------------------------------------------------------------- */

static pb_status ptu_attach(pb_method_ctx *c) {
    ptu_state *s = c->state;
    s->P = (int)pb_hp_int(c, "num_virtual_tokens");
    s->C = c->d->d_model;
    s->h = hidden_size(pb_hp_int(c, "encoder_hidden_size"), s->C);
    s->lstm = pb_hp_enum(c, "encoder_reparameterization_type") == ENC_LSTM;
    s->nl = (int)pb_hp_int(c, "encoder_num_layers");
    s->dropout = (float)pb_hp_float(c, "encoder_dropout");
    if (s->P >= c->d->max_seq)
        return pb_errorf(PB_EINVAL,
                         "p_tuning: num_virtual_tokens=%d leaves no position for real tokens in %s (max_seq %d)",
                         s->P, c->d->name, c->d->max_seq);
    if (!s->lstm && s->nl != 2)
        return pb_errorf(PB_EINVAL, "p_tuning: encoder_num_layers=%d applies to the LSTM encoder only (the MLP "
                         "encoder has 3 linear layers)", s->nl);
    if (!s->lstm && s->dropout > 0)
        return pb_errorf(PB_EINVAL, "p_tuning: encoder_dropout=%g applies to the LSTM encoder only", s->dropout);
    pb_status st = pb_ctx_hook_embed(c, s->P);
    if (st) return st;
    int P = s->P, C = s->C, h = s->h;
    s->emb = pb_ctx_param(c, "prompt_encoder.embedding.weight", -1, PB_SITE_EMBED, P * pb_ctx_submodules(c), C, 1);
    char name[64];
    if (!s->lstm) {
        int io[4] = {C, h, h, C};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "prompt_encoder.mlp_head.%d.weight", 2 * i);
            s->lin_w[i] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, io[i + 1], io[i], 1);
            snprintf(name, sizeof name, "prompt_encoder.mlp_head.%d.bias", 2 * i);
            s->lin_b[i] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, io[i + 1], 0, 1);
        }
        pb_ctx_acts(c, 0, saved_before_prompt(s) + (size_t)P * C);
        pb_ctx_work(c, 0, 2 * (size_t)P * h);
        return PB_OK;
    }
    for (int k = 0; k < s->nl; k++)
        for (int d = 0; d < 2; d++) {
            const char *sfx = d ? "_reverse" : "";
            int in = k ? 2 * h : C;
            snprintf(name, sizeof name, "prompt_encoder.lstm_head.weight_ih_l%d%s", k, sfx);
            s->wih[k][d] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, 4 * h, in, 1);
            snprintf(name, sizeof name, "prompt_encoder.lstm_head.weight_hh_l%d%s", k, sfx);
            s->whh[k][d] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, 4 * h, h, 1);
            snprintf(name, sizeof name, "prompt_encoder.lstm_head.bias_ih_l%d%s", k, sfx);
            s->bih[k][d] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, 4 * h, 0, 1);
            snprintf(name, sizeof name, "prompt_encoder.lstm_head.bias_hh_l%d%s", k, sfx);
            s->bhh[k][d] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, 4 * h, 0, 1);
        }
    int io[3] = {2 * h, 2 * h, C};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "prompt_encoder.mlp_head.%d.weight", 2 * i);
        s->lin_w[i] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, io[i + 1], io[i], 1);
        snprintf(name, sizeof name, "prompt_encoder.mlp_head.%d.bias", 2 * i);
        s->lin_b[i] = pb_ctx_param(c, name, -1, PB_SITE_EMBED, io[i + 1], 0, 1);
    }
    pb_ctx_acts(c, 0, saved_before_prompt(s) + (size_t)P * C);
    pb_ctx_work(c, 0, 3 * 2 * (size_t)P * h + 4 * (size_t)P * h + 2 * (size_t)h);
    return PB_OK;
}

static size_t ptu_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    const pb_method *m = pb_method_find("p_tuning");
    size_t P = (size_t)pb_hpv_num(m, hp, "num_virtual_tokens"), C = (size_t)d->d_model;
    size_t h = (size_t)hidden_size((long)pb_hpv_num(m, hp, "encoder_hidden_size"), d->d_model);
    size_t n = P * (size_t)pb_hf_submodules(d, head) * C;
    if ((int)pb_hpv_num(m, hp, "encoder_reparameterization_type") == ENC_MLP) {
        n += (C * h + h) + (h * h + h) + (h * C + C);
    } else {
        int nl = (int)pb_hpv_num(m, hp, "encoder_num_layers");
        for (int k = 0; k < nl; k++) n += 2 * (4 * h * ((k ? 2 * h : C) + h) + 8 * h);
        n += (2 * h * 2 * h + 2 * h) + (2 * h * C + C);
    }
    return n;
}

static void fill(pb_method_ctx *c, pb_rng *rng, int handle, float bound) {
    pb_tensor *t = pb_ctx_tensor(c, handle);
    pb_rng_fill_uniform(rng, t->data, t->numel, bound);
}

static void ptu_init(pb_method_ctx *c, pb_rng *rng) {
    ptu_state *s = c->state;
    pb_tensor *e = pb_ctx_tensor(c, s->emb);
    pb_rng_fill_normal(rng, e->data, e->numel, 1.0f);
    if (s->lstm) {
        float bound = 1.0f / sqrtf((float)s->h);
        for (int k = 0; k < s->nl; k++)
            for (int d = 0; d < 2; d++) {
                fill(c, rng, s->wih[k][d], bound);
                fill(c, rng, s->whh[k][d], bound);
                fill(c, rng, s->bih[k][d], bound);
                fill(c, rng, s->bhh[k][d], bound);
            }
    }
    for (int i = 0; i < (s->lstm ? 2 : 3); i++) {
        float bound = 1.0f / sqrtf((float)pb_ctx_tensor(c, s->lin_w[i])->shape[1]);
        fill(c, rng, s->lin_w[i], bound);
        fill(c, rng, s->lin_b[i], bound);
    }
}

/* ---- small pieces ------------------------------------------------------------------------- */

static void relu_fwd(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.0f;
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)n);
}

/* dx (n) *= relu'(from its output y) */
static void relu_bwd(float *dx, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dx[i] : 0.0f;
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, (uint64_t)n);
}

/* Linear `i` of the method: out (P, OC) = inp (P, IC) W^T + b. */
static void lin_fwd(pb_method_ctx *c, int i, float *out, const float *inp) {
    ptu_state *s = c->state;
    const pb_tensor *w = pb_ctx_tensor(c, s->lin_w[i]);
    pb_linear_fwd(out, inp, w->data, pb_ctx_tensor(c, s->lin_b[i])->data, s->P, w->shape[1], w->shape[0]);
}

/* Its backward: dinp (P, IC) += dout W (NULL: skipped); dW, db +=. */
static void lin_bwd(pb_method_ctx *c, int i, float *dinp, const float *dout, const float *inp) {
    ptu_state *s = c->state;
    pb_tensor *w = pb_ctx_tensor(c, s->lin_w[i]);
    pb_linear_bwd(dinp, w->grad, pb_ctx_tensor(c, s->lin_b[i])->grad, dout, inp, w->data, s->P, w->shape[1],
                  w->shape[0]);
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* ---- LSTM ----------------------------------------------------------------------------------- */

/* One direction of one layer: x (P, in); gates (P, 4h) and cs (P, h) saved; y (P, 2h) receives
 * h_t in columns [dir h, (dir+1) h). */
static void lstm_dir_fwd(pb_method_ctx *c, int k, int dir, const float *x, int in, float *gates, float *cs,
                         float *y) {
    ptu_state *s = c->state;
    int P = s->P, h = s->h, h4 = 4 * h, off = dir * h;
    const pb_tensor *wih = pb_ctx_tensor(c, s->wih[k][dir]), *whh = pb_ctx_tensor(c, s->whh[k][dir]);
    const float *bih = pb_ctx_tensor(c, s->bih[k][dir])->data, *bhh = pb_ctx_tensor(c, s->bhh[k][dir])->data;
    pb_linear_fwd(gates, x, wih->data, bih, P, in, h4);
    for (int st = 0; st < P; st++) {
        int t = dir ? P - 1 - st : st, tp = dir ? t + 1 : t - 1;
        float *g = gates + (size_t)t * h4, *cc = cs + (size_t)t * h, *yt = y + (size_t)t * 2 * h + off;
        if (st > 0) pb_gemm(PB_PHASE_FWD, 0, 1, 1, h4, h, 1.0f, y + (size_t)tp * 2 * h + off, h, whh->data, h, 1.0f, g, h4);
        const float *cprev = st > 0 ? cs + (size_t)tp * h : NULL;
        for (int j = 0; j < h; j++) {
            float gi = sigmoidf(g[j] + bhh[j]), gf = sigmoidf(g[h + j] + bhh[h + j]);
            float gg = tanhf(g[2 * h + j] + bhh[2 * h + j]), go = sigmoidf(g[3 * h + j] + bhh[3 * h + j]);
            g[j] = gi;
            g[h + j] = gf;
            g[2 * h + j] = gg;
            g[3 * h + j] = go;
            cc[j] = (cprev ? gf * cprev[j] : 0.0f) + gi * gg;
            yt[j] = go * tanhf(cc[j]);
        }
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 19 * (uint64_t)P * h);
}

/* Its backward: dy (P, 2h) the gradient of the layer output (columns of this direction); dx
 * (P, in) += the input gradient; own weight gradients +=. dg (P, 4h), dh (h), dc (h) workspace. */
static void lstm_dir_bwd(pb_method_ctx *c, int k, int dir, float *dx, const float *dy, const float *x, int in,
                         const float *gates, const float *cs, const float *y, float *dg, float *dh, float *dc) {
    ptu_state *s = c->state;
    int P = s->P, h = s->h, h4 = 4 * h, off = dir * h;
    pb_tensor *wih = pb_ctx_tensor(c, s->wih[k][dir]), *whh = pb_ctx_tensor(c, s->whh[k][dir]);
    pb_tensor *bih = pb_ctx_tensor(c, s->bih[k][dir]), *bhh = pb_ctx_tensor(c, s->bhh[k][dir]);
    memset(dh, 0, sizeof(float) * (size_t)h); /* d(h_t) from the step after t */
    memset(dc, 0, sizeof(float) * (size_t)h); /* d(c_t) from the step after t */
    for (int st = P - 1; st >= 0; st--) {
        int t = dir ? P - 1 - st : st, tp = dir ? t + 1 : t - 1;
        const float *g = gates + (size_t)t * h4, *cc = cs + (size_t)t * h;
        const float *cprev = st > 0 ? cs + (size_t)tp * h : NULL;
        const float *dyt = dy + (size_t)t * 2 * h + off;
        float *d = dg + (size_t)t * h4;
        for (int j = 0; j < h; j++) {
            float gi = g[j], gf = g[h + j], gg = g[2 * h + j], go = g[3 * h + j];
            float tc = tanhf(cc[j]);
            float dht = dyt[j] + dh[j];
            float dct = dht * go * (1.0f - tc * tc) + dc[j];
            d[j] = dct * gg * gi * (1.0f - gi);
            d[h + j] = (cprev ? dct * cprev[j] : 0.0f) * gf * (1.0f - gf);
            d[2 * h + j] = dct * gi * (1.0f - gg * gg);
            d[3 * h + j] = dht * tc * go * (1.0f - go);
            dc[j] = dct * gf;
        }
        if (st > 0) pb_gemm(PB_PHASE_BWD_IN, 0, 0, 1, h, h4, 1.0f, d, h4, whh->data, h, 0.0f, dh, h);
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 27 * (uint64_t)P * h);
    /* pre-activation gates = x W_ih^T + b_ih + h_prev W_hh^T + b_hh */
    pb_linear_bwd(dx, wih->grad, bih->grad, dg, x, wih->data, P, in, h4);
    if (P > 1) {
        /* h_prev of step t is y[t-1] (forward direction) or y[t+1] (reverse); the first step has none */
        const float *dgs = dir ? dg : dg + h4, *hp = dir ? y + 2 * (size_t)h + off : y + off;
        pb_gemm(PB_PHASE_BWD_W, 1, 0, h4, h, P - 1, 1.0f, dgs, h4, hp, 2 * h, 1.0f, whh->grad, h);
    }
    for (int t = 0; t < P; t++)
        for (int j = 0; j < h4; j++) bhh->grad[j] += dg[(size_t)t * h4 + j];
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)P * h4);
}

/* ---- forward and backward of the encoder ---------------------------------------------------- */

static pb_status ptu_begin(pb_method_ctx *c) {
    ptu_state *s = c->state;
    const float *e = pb_ctx_tensor(c, s->emb)->data;
    size_t P = (size_t)s->P, h = (size_t)s->h;
    if (!s->lstm) {
        float *a1 = c->acts, *a2 = c->acts + P * h;
        lin_fwd(c, 0, a1, e);
        relu_fwd(a1, P * h);
        lin_fwd(c, 1, a2, a1);
        relu_fwd(a2, P * h);
        lin_fwd(c, 2, prompt_out(c), a2);
        return PB_OK;
    }
    int drop = c->training && s->dropout > 0;
    const float *x = e;
    int in = s->C;
    for (int k = 0; k < s->nl; k++) {
        lstm_bufs b = lstm_layer(c, k);
        if (k) {
            /* dropout on the previous layer's output (torch.nn.LSTM: between layers, training only) */
            const float *yprev = lstm_layer(c, k - 1).y;
            if (drop) pb_dropout_fwd(b.in, yprev, s->dropout, pb_ctx_dropout_seed(c, k + 1), 2 * P * h);
            else memcpy(b.in, yprev, sizeof(float) * 2 * P * h);
            x = b.in;
            in = 2 * s->h;
        }
        for (int d = 0; d < 2; d++) lstm_dir_fwd(c, k, d, x, in, b.gates[d], b.cs[d], b.y);
    }
    float *r = head_relu(c);
    lin_fwd(c, 0, r, lstm_layer(c, s->nl - 1).y);
    relu_fwd(r, 2 * P * h);
    lin_fwd(c, 1, prompt_out(c), r);
    return PB_OK;
}

static void ptu_embed_fwd(pb_method_ctx *c, float *prompt) {
    ptu_state *s = c->state;
    memcpy(prompt, prompt_out(c), sizeof(float) * (size_t)s->P * s->C);
}

static void ptu_embed_bwd(pb_method_ctx *c, const float *dprompt) {
    ptu_state *s = c->state;
    pb_tensor *e = pb_ctx_tensor(c, s->emb);
    size_t P = (size_t)s->P, h = (size_t)s->h;
    if (!s->lstm) {
        float *a1 = c->acts, *a2 = c->acts + P * h, *d1 = c->work, *d2 = c->work + P * h;
        memset(d2, 0, sizeof(float) * P * h);
        lin_bwd(c, 2, d2, dprompt, a2);
        relu_bwd(d2, a2, P * h);
        memset(d1, 0, sizeof(float) * P * h);
        lin_bwd(c, 1, d1, d2, a1);
        relu_bwd(d1, a1, P * h);
        lin_bwd(c, 0, e->grad, d1, e->data);
        return;
    }
    size_t P2h = 2 * P * h;
    float *dy = c->work, *din = dy + P2h, *dr = din + P2h, *dg = dr + P2h, *dh = dg + 4 * P * h, *dc = dh + h;
    /* head: prompt = relu(y W0^T + b0) W1^T + b1 */
    float *r = head_relu(c);
    memset(dr, 0, sizeof(float) * P2h);
    lin_bwd(c, 1, dr, dprompt, r);
    relu_bwd(dr, r, P2h);
    memset(dy, 0, sizeof(float) * P2h);
    lin_bwd(c, 0, dy, dr, lstm_layer(c, s->nl - 1).y);
    int drop = c->training && s->dropout > 0;
    for (int k = s->nl - 1; k >= 0; k--) {
        lstm_bufs b = lstm_layer(c, k);
        const float *x = k ? b.in : e->data;
        int in = k ? 2 * s->h : s->C;
        float *dx = k ? din : e->grad;
        if (k) memset(din, 0, sizeof(float) * P2h);
        for (int d = 0; d < 2; d++) lstm_dir_bwd(c, k, d, dx, dy, x, in, b.gates[d], b.cs[d], b.y, dg, dh, dc);
        if (!k) break;
        /* d(previous layer's output) through the dropout between the layers */
        memset(dy, 0, sizeof(float) * P2h);
        pb_dropout_bwd(dy, din, drop ? s->dropout : 0.0f, pb_ctx_dropout_seed(c, k + 1), P2h);
    }
}

static const char *const ptu_examples[] = {
    "p_tuning:num_virtual_tokens=3,encoder_hidden_size=5",
    "p_tuning:num_virtual_tokens=3,encoder_reparameterization_type=LSTM,encoder_hidden_size=3",
    "p_tuning:num_virtual_tokens=2,encoder_reparameterization_type=LSTM,encoder_hidden_size=2,encoder_num_layers=1",
    "p_tuning:num_virtual_tokens=3,encoder_reparameterization_type=LSTM,encoder_hidden_size=3,encoder_dropout=0.4",
    NULL};

static void ptu_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_p_tuning = {
    .version = PB_METHOD_VERSION,
    .name = "p_tuning",
    .category = PB_CAT_PROMPT,
    .summary = "P-tuning: virtual token embeddings produced by a trainable MLP or LSTM prompt encoder",
    .paper = "Liu et al. 2021, GPT Understands, Too (arXiv:2103.10385)",
    .hparams = ptu_hparams,
    .n_hparams = sizeof ptu_hparams / sizeof ptu_hparams[0],
    .state_size = sizeof(ptu_state),
    .examples = ptu_examples,
    .attach = ptu_attach,
    .closed_form = ptu_closed_form,
    .init = ptu_init,
    .begin = ptu_begin,
    .embed_fwd = ptu_embed_fwd,
    .embed_bwd = ptu_embed_bwd,
    .flops = ptu_flops,
};

/* FLOPs: the prompt encoder at the start of every forward (begin) and its backward when the
 * model's backward reaches the embeddings (the prompt is copied in: no arithmetic). */
static void ptu_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const ptu_state *s = c->state;
    uint64_t P = (uint64_t)s->P, h = (uint64_t)s->h, C = (uint64_t)s->C, h4 = 4 * h;
    int bwd = pb_flops_embed_bwd(e), drop = e->training && s->dropout > 0;
    if (!s->lstm) {
        uint64_t io[4] = {C, h, h, C};
        for (int i = 0; i < 3; i++) pb_flops_linear_fwd(f, P, io[i], io[i + 1], 1);
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 2 * P * h);
        if (!bwd) return;
        for (int i = 0; i < 3; i++) pb_flops_linear_bwd(f, P, io[i], io[i + 1], 1, 1, 1);
        pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 2 * P * h);
        return;
    }
    for (int k = 0; k < s->nl; k++) {
        uint64_t in = k ? 2 * h : C;
        if (k && drop) pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 2 * P * h);
        for (int d = 0; d < 2; d++) {
            pb_flops_linear_fwd(f, P, in, h4, 1);
            pb_flops_gemm(f, PB_PHASE_FWD, P - 1, h4, h);
            pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 19 * P * h);
        }
    }
    pb_flops_linear_fwd(f, P, 2 * h, 2 * h, 1);
    pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, 2 * P * h);
    pb_flops_linear_fwd(f, P, 2 * h, C, 1);
    if (!bwd) return;
    pb_flops_linear_bwd(f, P, 2 * h, C, 1, 1, 1);
    pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 2 * P * h);
    pb_flops_linear_bwd(f, P, 2 * h, 2 * h, 1, 1, 1);
    for (int k = s->nl - 1; k >= 0; k--) {
        uint64_t in = k ? 2 * h : C;
        for (int d = 0; d < 2; d++) {
            pb_flops_gemm(f, PB_PHASE_BWD_IN, P - 1, h, h4);
            pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 27 * P * h);
            pb_flops_linear_bwd(f, P, in, h4, 1, 1, 1);
            if (P > 1) pb_flops_gemm(f, PB_PHASE_BWD_W, h4, h, P - 1);
            pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, P * h4);
        }
        if (k && drop) pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, 2 * P * h);
    }
}
