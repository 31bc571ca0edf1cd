/* model.c — the runnable transformer (see model.h for the contract).
 *
 * Forward and backward sit side by side, llm.c style. Every linear layer goes through
 * site_linear_fwd / site_linear_bwd: the one place where PEFT methods will hook in.
 *
 * Dimension letters: B batch, T sequence, N = B*T, C d_model, H heads, F d_ff, V vocab,
 * K labels, L layers.
 */
#include "model.h"
#include "kernels.h"
#include "pb_mem.h"
#include "pb_rng.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- layout: the one place parameter sizes come from ------------------------------------ */

static int add_tensor(pb_tensor *t, int i, size_t *off, const char *name, pb_site site, int layer, int is_bias,
                      int d0, int d1) {
    if (t) {
        pb_tensor *x = &t[i];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", name);
        x->site = site;
        x->layer = layer;
        x->is_bias = is_bias;
        x->ndim = d1 > 0 ? 2 : 1;
        x->shape[0] = d0;
        x->shape[1] = d1 > 0 ? d1 : 0;
        x->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
        x->offset = *off;
    }
    *off += (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    return i + 1;
}

int pb_model_layout(const pb_model_desc *d, pb_head_kind head, int n_labels, pb_tensor *t, size_t *n_params) {
    const int C = d->d_model, F = d->d_ff, V = d->vocab;
    size_t off = 0;
    int i = 0;
    char nm[48];
    i = add_tensor(t, i, &off, "wte.weight", PB_SITE_EMBED, -1, 0, V, C);
    i = add_tensor(t, i, &off, "wpe.weight", PB_SITE_POS, -1, 0, d->max_seq, C);
    for (int l = 0; l < d->n_layer; l++) {
        static const struct {
            const char *name;
            pb_site site;
            int out_f, in_f; /* 1 = C, 2 = F */
        } rows[] = {
            {"ln_1", PB_SITE_LN1, 1, 0},         {"attn.q_proj", PB_SITE_Q, 1, 1},
            {"attn.k_proj", PB_SITE_K, 1, 1},    {"attn.v_proj", PB_SITE_V, 1, 1},
            {"attn.c_proj", PB_SITE_O, 1, 1},    {"ln_2", PB_SITE_LN2, 1, 0},
            {"mlp.c_fc", PB_SITE_UP, 2, 1},      {"mlp.c_proj", PB_SITE_DOWN, 1, 2},
        };
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            int out = rows[r].out_f == 2 ? F : C;
            int in = rows[r].in_f == 0 ? 0 : rows[r].in_f == 2 ? F : C;
            snprintf(nm, sizeof nm, "h.%d.%s.weight", l, rows[r].name);
            i = add_tensor(t, i, &off, nm, rows[r].site, l, 0, out, in);
            snprintf(nm, sizeof nm, "h.%d.%s.bias", l, rows[r].name);
            i = add_tensor(t, i, &off, nm, rows[r].site, l, 1, out, 0);
        }
    }
    i = add_tensor(t, i, &off, "ln_f.weight", PB_SITE_LN_F, -1, 0, C, 0);
    i = add_tensor(t, i, &off, "ln_f.bias", PB_SITE_LN_F, -1, 1, C, 0);
    if (head == PB_HEAD_CLS) {
        i = add_tensor(t, i, &off, "score.weight", PB_SITE_HEAD, -1, 0, n_labels, C);
        i = add_tensor(t, i, &off, "score.bias", PB_SITE_HEAD, -1, 1, n_labels, 0);
    }
    if (n_params) *n_params = off;
    return i;
}

/* ---- construction -------------------------------------------------------------------------- */

pb_status pb_model_init(pb_model *m, const pb_model_desc *d, pb_head_kind head, int n_labels, uint64_t seed) {
    memset(m, 0, sizeof *m);
    pb_status st = pb_desc_check_runnable(d);
    if (st) return st;
    if (head == PB_HEAD_CLS && n_labels < 1)
        return pb_errorf(PB_EINVAL, "a classification head needs at least 1 label (got %d)", n_labels);
    m->d = *d;
    m->head = head;
    m->n_labels = head == PB_HEAD_CLS ? n_labels : 0;
    m->n_tensors = pb_model_layout(d, head, n_labels, NULL, NULL);
    m->tensors = pb_alloc(sizeof(pb_tensor) * (size_t)m->n_tensors, PB_MEM_OTHER);
    m->layers = pb_alloc(sizeof(pb_layer_params) * (size_t)d->n_layer, PB_MEM_OTHER);
    m->plan = pb_alloc(sizeof(pb_layer_plan) * (size_t)d->n_layer, PB_MEM_OTHER);
    m->acts = pb_alloc(sizeof(pb_layer_acts) * (size_t)d->n_layer, PB_MEM_OTHER);
    if (!m->tensors || !m->layers || !m->plan || !m->acts) goto oom;
    pb_model_layout(d, head, n_labels, m->tensors, &m->n_params);
    m->params = pb_alloc(m->n_params * sizeof(float), PB_MEM_FROZEN);
    if (!m->params) goto oom;

    pb_tensor *t = m->tensors;
    for (int i = 0; i < m->n_tensors; i++) t[i].data = m->params + t[i].offset;
    int i = 0;
    m->wte = &t[i++];
    m->wpe = &t[i++];
    for (int l = 0; l < d->n_layer; l++) {
        pb_tensor **p = (pb_tensor **)&m->layers[l];
        for (size_t k = 0; k < sizeof(pb_layer_params) / sizeof(pb_tensor *); k++) p[k] = &t[i++];
    }
    m->lnf_w = &t[i++];
    m->lnf_b = &t[i++];
    if (head == PB_HEAD_CLS) {
        m->head_w = &t[i++];
        m->head_b = &t[i++];
    }
    assert(i == m->n_tensors);

    /* GPT-2 initialisation. */
    pb_rng rng;
    pb_rng_seed(&rng, seed);
    float resid_std = 0.02f / sqrtf(2.0f * (float)d->n_layer);
    for (int k = 0; k < m->n_tensors; k++) {
        pb_tensor *x = &t[k];
        if (x->is_bias) continue; /* zero */
        if (x->ndim == 1) {
            for (size_t j = 0; j < x->numel; j++) x->data[j] = 1.0f; /* norm gains */
        } else {
            float std = (x->site == PB_SITE_O || x->site == PB_SITE_DOWN) ? resid_std : 0.02f;
            pb_rng_fill_normal(&rng, x->data, x->numel, std);
        }
    }
    pb_model_set_trainable_all(m, 1);
    return pb_model_prepare(m);
oom:
    pb_model_free(m);
    return PB_ENOMEM;
}

static void free_buffers(pb_model *m) {
    pb_free(m->acts_block);
    pb_free(m->scratch_block);
    m->acts_block = m->scratch_block = NULL;
    m->cap_B = m->cap_T = 0;
}

void pb_model_free(pb_model *m) {
    free_buffers(m);
    if (m->tensors && m->params) /* unbook trainable bytes before freeing the block */
        for (int i = 0; i < m->n_tensors; i++)
            if (m->tensors[i].data && m->tensors[i].grad)
                pb_mem_rebook(m->tensors[i].numel * sizeof(float), PB_MEM_TRAINABLE, PB_MEM_FROZEN);
    pb_free(m->grads);
    pb_free(m->params);
    pb_free(m->tensors);
    pb_free(m->layers);
    pb_free(m->plan);
    pb_free(m->acts);
    memset(m, 0, sizeof *m);
}

void pb_model_set_trainable_all(pb_model *m, int on) {
    for (int i = 0; i < m->n_tensors; i++) m->tensors[i].trainable = on;
    m->plan_ready = 0;
}

void pb_tensor_set_trainable(pb_model *m, pb_tensor *t, int on) {
    t->trainable = on;
    m->plan_ready = 0;
}

pb_tensor *pb_model_tensor(pb_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

size_t pb_model_trainable_count(const pb_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable) n += m->tensors[i].numel;
    return n;
}

static int tr(const pb_tensor *t) { return t && t->trainable; }

pb_status pb_model_prepare(pb_model *m) {
    /* Gradient block: exactly the trainable tensors, in table order. */
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].grad) {
            pb_mem_rebook(m->tensors[i].numel * sizeof(float), PB_MEM_TRAINABLE, PB_MEM_FROZEN);
            m->tensors[i].grad = NULL;
        }
    pb_free(m->grads);
    m->grads = NULL;
    m->n_grads = pb_model_trainable_count(m);
    if (m->n_grads) {
        m->grads = pb_alloc(m->n_grads * sizeof(float), PB_MEM_GRADS);
        if (!m->grads) return PB_ENOMEM;
    }
    size_t off = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        pb_tensor *t = &m->tensors[i];
        if (!t->trainable) continue;
        t->grad = m->grads + off;
        off += t->numel;
        pb_mem_rebook(t->numel * sizeof(float), PB_MEM_FROZEN, PB_MEM_TRAINABLE);
    }

    /* "Requires grad" propagation through the graph, in forward order. */
    int g = m->input_requires_grad || tr(m->wte) || tr(m->wpe);
    m->floor = m->d.n_layer;
    for (int l = 0; l < m->d.n_layer; l++) {
        const pb_layer_params *w = &m->layers[l];
        pb_layer_plan *p = &m->plan[l];
        p->in = g;
        p->ln1 = g || tr(w->ln1_w) || tr(w->ln1_b);
        p->q = p->ln1 || tr(w->q_w) || tr(w->q_b);
        p->k = p->ln1 || tr(w->k_w) || tr(w->k_b);
        p->v = p->ln1 || tr(w->v_w) || tr(w->v_b);
        p->att = p->q || p->k || p->v;
        p->o = p->att || tr(w->o_w) || tr(w->o_b);
        p->res2 = g || p->o;
        p->ln2 = p->res2 || tr(w->ln2_w) || tr(w->ln2_b);
        p->up = p->ln2 || tr(w->up_w) || tr(w->up_b);
        p->down = p->up || tr(w->down_w) || tr(w->down_b);
        p->out = p->res2 || p->down;
        if (p->out && m->floor == m->d.n_layer) m->floor = l;
        g = p->out;
    }
    m->g_lnf = g || tr(m->lnf_w) || tr(m->lnf_b);
    m->plan_ready = 1;
    return PB_OK;
}

int pb_model_segments(pb_model *m, pb_segment *seg) {
    int n = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        pb_tensor *t = &m->tensors[i];
        if (!t->trainable) continue;
        if (seg) seg[n] = (pb_segment){.param = t->data, .grad = t->grad, .n = t->numel, .decay = t->ndim == 2};
        n++;
    }
    return n;
}

void pb_model_zero_grad(pb_model *m) {
    if (m->grads) memset(m->grads, 0, m->n_grads * sizeof(float));
}

/* ---- activation buffers: sizes from one function -------------------------------------------- */

/* Floats of one layer's activations. */
static size_t layer_acts_floats(size_t B, size_t T, size_t C, size_t H, size_t F) {
    size_t N = B * T;
    return N * C /*ln1*/ + 2 * N + 3 * N * C /*qkv*/ + B * H * T * T /*att*/ + N * C /*atty*/ + N * C /*res2*/ +
           N * C + 2 * N /*ln2*/ + 2 * N * F /*fch, gelu*/ + N * C /*out*/;
}

static float *carve(float **p, size_t n) {
    float *r = *p;
    *p += n;
    return r;
}

static void carve_layer_acts(pb_layer_acts *a, float **p, size_t B, size_t T, size_t C, size_t H, size_t F) {
    size_t N = B * T;
    a->ln1 = carve(p, N * C);
    a->ln1_mean = carve(p, N);
    a->ln1_rstd = carve(p, N);
    a->q = carve(p, N * C);
    a->k = carve(p, N * C);
    a->v = carve(p, N * C);
    a->att = carve(p, B * H * T * T);
    a->atty = carve(p, N * C);
    a->res2 = carve(p, N * C);
    a->ln2 = carve(p, N * C);
    a->ln2_mean = carve(p, N);
    a->ln2_rstd = carve(p, N);
    a->fch = carve(p, N * F);
    a->fch_gelu = carve(p, N * F);
    a->out = carve(p, N * C);
}

/* Top-of-model floats (embeddings, final norm, head, loss): saved when training. */
static size_t top_floats(const pb_model *m, size_t B, size_t T) {
    size_t N = B * T, C = (size_t)m->d.d_model;
    size_t out = m->head == PB_HEAD_LM ? N * (size_t)m->d.vocab : B * (size_t)m->n_labels;
    size_t rows = m->head == PB_HEAD_LM ? N : B;
    return N * C /*encoded*/ + N * C + 2 * N /*lnf*/ + B * C /*pooled*/ + 2 * out /*logits, probs*/ + rows /*losses*/ +
           B /*pool_idx (int32 stored in a float slot)*/;
}

/* Workspace floats: one layer's scratch activations + its ping-pong partner + backward temps. */
static size_t scratch_floats(const pb_model *m, size_t B, size_t T) {
    size_t N = B * T, C = (size_t)m->d.d_model, H = (size_t)m->d.n_head, F = (size_t)m->d.d_ff;
    size_t out = m->head == PB_HEAD_LM ? N * (size_t)m->d.vocab : B * (size_t)m->n_labels;
    return layer_acts_floats(B, T, C, H, F) + N * C /*out2*/ + 7 * N * C /*dres..dv, datty, proj*/ + 2 * N * F +
           B * H * T * T /*datt*/ + out /*dlogits*/ + B * C /*dpooled*/;
}

static pb_status ensure_buffers(pb_model *m, int B, int T, int training) {
    int floor = training ? m->floor : m->d.n_layer;
    if (m->acts_block && B <= m->cap_B && T == m->cap_T && floor == m->buf_floor) return PB_OK;
    free_buffers(m);
    size_t C = (size_t)m->d.d_model, H = (size_t)m->d.n_head, F = (size_t)m->d.d_ff, N = (size_t)B * T;
    size_t L = (size_t)m->d.n_layer, saved = L - (size_t)floor;
    size_t nacts = top_floats(m, B, T) + saved * layer_acts_floats(B, T, C, H, F);
    m->acts_block = pb_alloc(nacts * sizeof(float), PB_MEM_ACTS);
    m->scratch_block = pb_alloc(scratch_floats(m, B, T) * sizeof(float), PB_MEM_WORKSPACE);
    if (!m->acts_block || !m->scratch_block) {
        free_buffers(m);
        return PB_ENOMEM;
    }
    size_t out = m->head == PB_HEAD_LM ? N * (size_t)m->d.vocab : (size_t)B * (size_t)m->n_labels;
    size_t rows = m->head == PB_HEAD_LM ? N : (size_t)B;
    float *p = m->acts_block;
    m->encoded = carve(&p, N * C);
    m->lnf = carve(&p, N * C);
    m->lnf_mean = carve(&p, N);
    m->lnf_rstd = carve(&p, N);
    m->pooled = carve(&p, (size_t)B * C);
    m->logits = carve(&p, out);
    m->probs = carve(&p, out);
    m->losses = carve(&p, rows);
    m->pool_idx = (int32_t *)carve(&p, (size_t)B);
    for (size_t l = 0; l < L; l++)
        if (l >= (size_t)floor) carve_layer_acts(&m->acts[l], &p, B, T, C, H, F);
        else memset(&m->acts[l], 0, sizeof m->acts[l]);
    assert((size_t)(p - m->acts_block) == nacts);

    float *s = m->scratch_block;
    carve_layer_acts(&m->scratch_acts, &s, B, T, C, H, F);
    m->scratch_out[0] = m->scratch_acts.out;
    m->scratch_out[1] = carve(&s, N * C);
    m->dres = carve(&s, N * C);
    m->dln = carve(&s, N * C);
    m->dq = carve(&s, N * C);
    m->dk = carve(&s, N * C);
    m->dv = carve(&s, N * C);
    m->datty = carve(&s, N * C);
    m->proj = carve(&s, N * C);
    m->dfch = carve(&s, N * F);
    m->dfch_gelu = carve(&s, N * F);
    m->datt = carve(&s, (size_t)B * H * T * T);
    m->dlogits = carve(&s, out);
    m->dpooled = carve(&s, (size_t)B * C);
    assert((size_t)(s - m->scratch_block) == scratch_floats(m, B, T));
    m->cap_B = B;
    m->cap_T = T;
    m->buf_floor = floor;
    return PB_OK;
}

/* ---- sites: where methods will hook in ------------------------------------------------------ */

static void site_linear_fwd(float *out, const float *inp, const pb_tensor *w, const pb_tensor *b, int N) {
    pb_linear_fwd(out, inp, w->data, b ? b->data : NULL, N, w->shape[1], w->shape[0]);
}

/* dinp may be NULL (no input gradient needed); weight/bias gradients only when trainable. */
static void site_linear_bwd(float *dinp, const float *dout, const float *inp, const pb_tensor *w,
                            const pb_tensor *b, int N) {
    float *dw = w->trainable ? w->grad : NULL;
    float *db = (b && b->trainable) ? b->grad : NULL;
    if (!dinp && !dw && !db) return;
    pb_linear_bwd(dinp, dw, db, dout, inp, w->data, N, w->shape[1], w->shape[0]);
}

/* ---- forward ------------------------------------------------------------------------------- */

static pb_status check_batch(const pb_model *m, const pb_batch *b) {
    if (b->B < 1 || b->T < 1) return pb_errorf(PB_EINVAL, "empty batch (B=%d, T=%d)", b->B, b->T);
    if (b->T > m->d.max_seq)
        return pb_errorf(PB_EINVAL, "sequence length %d exceeds the backbone's max_seq %d", b->T, m->d.max_seq);
    size_t N = (size_t)b->B * b->T;
    for (size_t i = 0; i < N; i++)
        if (b->ids[i] < 0 || b->ids[i] >= m->d.vocab)
            return pb_errorf(PB_EINVAL, "token id %d at position %zu is outside the vocabulary [0, %d)", b->ids[i],
                             i, m->d.vocab);
    if (m->head == PB_HEAD_CLS) {
        for (int i = 0; i < b->B; i++)
            if (b->targets[i] < 0 || b->targets[i] >= m->n_labels)
                return pb_errorf(PB_EINVAL, "label %d of example %d is outside [0, %d)", b->targets[i], i,
                                 m->n_labels);
    } else {
        for (size_t i = 0; i < N; i++)
            if (b->targets[i] >= m->d.vocab)
                return pb_errorf(PB_EINVAL, "target id %d at position %zu is outside the vocabulary", b->targets[i],
                                 i);
    }
    return PB_OK;
}

static void layer_fwd(pb_layer_acts *a, const pb_layer_params *w, const float *inp, float *proj, const uint8_t *mask,
                      int B, int T, const pb_model_desc *d) {
    int N = B * T, C = d->d_model, F = d->d_ff, H = d->n_head;
    a->inp = inp;
    pb_layernorm_fwd(a->ln1, a->ln1_mean, a->ln1_rstd, inp, w->ln1_w->data, w->ln1_b->data, N, C);
    site_linear_fwd(a->q, a->ln1, w->q_w, w->q_b, N);
    site_linear_fwd(a->k, a->ln1, w->k_w, w->k_b, N);
    site_linear_fwd(a->v, a->ln1, w->v_w, w->v_b, N);
    pb_attention_fwd(a->atty, a->att, a->q, a->k, a->v, mask, B, T, T, C, H, H, d->causal);
    site_linear_fwd(proj, a->atty, w->o_w, w->o_b, N);
    pb_add_fwd(a->res2, inp, proj, (size_t)N * C);
    pb_layernorm_fwd(a->ln2, a->ln2_mean, a->ln2_rstd, a->res2, w->ln2_w->data, w->ln2_b->data, N, C);
    site_linear_fwd(a->fch, a->ln2, w->up_w, w->up_b, N);
    pb_gelu_fwd(a->fch_gelu, a->fch, (size_t)N * F);
    site_linear_fwd(proj, a->fch_gelu, w->down_w, w->down_b, N);
    pb_add_fwd(a->out, a->res2, proj, (size_t)N * C);
}

pb_status pb_model_forward(pb_model *m, const pb_batch *b, int training, float *loss) {
    assert(m->plan_ready && "pb_model_prepare() must follow trainable changes");
    pb_status st = check_batch(m, b);
    if (st) return st;
    st = ensure_buffers(m, b->B, b->T, training);
    if (st) return st;
    const pb_model_desc *d = &m->d;
    const int B = b->B, T = b->T, N = B * T, C = d->d_model, L = d->n_layer;
    int floor = training ? m->floor : L;

    pb_embedding_fwd(m->encoded, b->ids, m->wte->data, m->wpe->data, B, T, C);
    const float *x = m->encoded;
    for (int l = 0; l < L; l++) {
        pb_layer_acts *a = l >= floor ? &m->acts[l] : &m->scratch_acts;
        if (l < floor) a->out = m->scratch_out[l % 2]; /* ping-pong: layer l reads the other one */
        layer_fwd(a, &m->layers[l], x, m->proj, b->mask, B, T, d);
        x = a->out;
    }
    m->lnf_in = x;
    pb_layernorm_fwd(m->lnf, m->lnf_mean, m->lnf_rstd, x, m->lnf_w->data, m->lnf_b->data, N, C);

    int rows, classes;
    if (m->head == PB_HEAD_LM) {
        pb_linear_fwd(m->logits, m->lnf, m->wte->data, NULL, N, C, d->vocab);
        rows = N;
        classes = d->vocab;
    } else {
        for (int i = 0; i < B; i++) {
            int idx = 0;
            if (d->causal) {
                idx = T - 1;
                if (b->mask)
                    while (idx > 0 && !b->mask[(size_t)i * T + idx]) idx--;
            }
            m->pool_idx[i] = idx;
            memcpy(m->pooled + (size_t)i * C, m->lnf + ((size_t)i * T + idx) * C, sizeof(float) * (size_t)C);
        }
        site_linear_fwd(m->logits, m->pooled, m->head_w, m->head_b, B);
        rows = B;
        classes = m->n_labels;
    }
    pb_crossentropy_fwd(m->losses, m->probs, m->logits, b->targets, rows, classes);
    double sum = 0.0;
    int count = 0;
    for (int i = 0; i < rows; i++)
        if (b->targets[i] >= 0) {
            sum += m->losses[i];
            count++;
        }
    m->last = *b;
    m->last_count = count;
    m->last_training = training;
    *loss = count ? (float)(sum / count) : 0.0f;
    return PB_OK;
}

/* ---- backward ------------------------------------------------------------------------------ */

/* dres (N,C) holds d(out) on entry and d(inp) on exit (when p->in). */
static void layer_bwd(pb_model *m, const pb_layer_acts *a, const pb_layer_params *w, const pb_layer_plan *p,
                      float *dres, int B, int T) {
    const pb_model_desc *d = &m->d;
    int N = B * T, C = d->d_model, F = d->d_ff, H = d->n_head;
    size_t NC = (size_t)N * C, NF = (size_t)N * F;
    /* MLP: out = res2 + down(gelu(up(ln2(res2)))) */
    if (p->down) {
        if (p->up) memset(m->dfch_gelu, 0, NF * sizeof(float));
        site_linear_bwd(p->up ? m->dfch_gelu : NULL, dres, a->fch_gelu, w->down_w, w->down_b, N);
    }
    if (p->up) {
        memset(m->dfch, 0, NF * sizeof(float));
        pb_gelu_bwd(m->dfch, m->dfch_gelu, a->fch, NF);
        if (p->ln2) memset(m->dln, 0, NC * sizeof(float));
        site_linear_bwd(p->ln2 ? m->dln : NULL, m->dfch, a->ln2, w->up_w, w->up_b, N);
    }
    if (p->ln2) {
        float *dw = tr(w->ln2_w) ? w->ln2_w->grad : NULL, *db = tr(w->ln2_b) ? w->ln2_b->grad : NULL;
        pb_layernorm_bwd(p->res2 ? dres : NULL, dw, db, m->dln, a->res2, w->ln2_w->data, a->ln2_mean, a->ln2_rstd,
                         N, C);
    }
    if (!p->res2) return;
    /* Attention: res2 = inp + o(attn(q(ln1), k(ln1), v(ln1))); dres is now d(res2). */
    if (p->o) {
        if (p->att) memset(m->datty, 0, NC * sizeof(float));
        site_linear_bwd(p->att ? m->datty : NULL, dres, a->atty, w->o_w, w->o_b, N);
    }
    if (p->att) {
        if (p->q) memset(m->dq, 0, NC * sizeof(float));
        if (p->k) memset(m->dk, 0, NC * sizeof(float));
        if (p->v) memset(m->dv, 0, NC * sizeof(float));
        pb_attention_bwd(p->q ? m->dq : NULL, p->k ? m->dk : NULL, p->v ? m->dv : NULL, m->datt, m->datty, a->att,
                         a->q, a->k, a->v, B, T, T, C, H, H);
        if (p->ln1) memset(m->dln, 0, NC * sizeof(float));
        float *dln = p->ln1 ? m->dln : NULL;
        if (p->q) site_linear_bwd(dln, m->dq, a->ln1, w->q_w, w->q_b, N);
        if (p->k) site_linear_bwd(dln, m->dk, a->ln1, w->k_w, w->k_b, N);
        if (p->v) site_linear_bwd(dln, m->dv, a->ln1, w->v_w, w->v_b, N);
    }
    if (p->ln1) {
        float *dw = tr(w->ln1_w) ? w->ln1_w->grad : NULL, *db = tr(w->ln1_b) ? w->ln1_b->grad : NULL;
        pb_layernorm_bwd(p->in ? dres : NULL, dw, db, m->dln, a->inp, w->ln1_w->data, a->ln1_mean, a->ln1_rstd, N,
                         C);
    }
}

void pb_model_backward(pb_model *m) {
    assert(m->last_training && "backward needs a training forward");
    const pb_model_desc *d = &m->d;
    const pb_batch *b = &m->last;
    const int B = b->B, T = b->T, N = B * T, C = d->d_model, L = d->n_layer;
    if (m->last_count == 0) return;
    float scale = 1.0f / (float)m->last_count;
    int gl = m->g_lnf;

    /* Head and loss. */
    if (gl) memset(m->dln, 0, (size_t)N * C * sizeof(float));
    if (m->head == PB_HEAD_LM) {
        int need = gl || tr(m->wte);
        if (need) {
            memset(m->dlogits, 0, (size_t)N * d->vocab * sizeof(float));
            pb_crossentropy_bwd(m->dlogits, m->probs, b->targets, scale, N, d->vocab);
            pb_linear_bwd(gl ? m->dln : NULL, tr(m->wte) ? m->wte->grad : NULL, NULL, m->dlogits, m->lnf,
                          m->wte->data, N, C, d->vocab);
        }
    } else {
        int K = m->n_labels;
        if (gl || tr(m->head_w) || tr(m->head_b)) {
            memset(m->dlogits, 0, (size_t)B * K * sizeof(float));
            pb_crossentropy_bwd(m->dlogits, m->probs, b->targets, scale, B, K);
            if (gl) memset(m->dpooled, 0, (size_t)B * C * sizeof(float));
            site_linear_bwd(gl ? m->dpooled : NULL, m->dlogits, m->pooled, m->head_w, m->head_b, B);
            if (gl)
                for (int i = 0; i < B; i++) {
                    float *dst = m->dln + ((size_t)i * T + m->pool_idx[i]) * C;
                    const float *src = m->dpooled + (size_t)i * C;
                    for (int c = 0; c < C; c++) dst[c] += src[c];
                }
        }
    }
    if (!gl) return;

    /* Final norm, then the blocks from the top down to the floor. */
    memset(m->dres, 0, (size_t)N * C * sizeof(float));
    int need_top = m->plan[L - 1].out;
    pb_layernorm_bwd(need_top ? m->dres : NULL, tr(m->lnf_w) ? m->lnf_w->grad : NULL,
                     tr(m->lnf_b) ? m->lnf_b->grad : NULL, m->dln, m->lnf_in, m->lnf_w->data, m->lnf_mean, m->lnf_rstd, N,
                     C);
    for (int l = L - 1; l >= 0; l--) {
        if (!m->plan[l].out) return;
        layer_bwd(m, &m->acts[l], &m->layers[l], &m->plan[l], m->dres, B, T);
        if (!m->plan[l].in) return;
    }
    /* m->dres is d(embeddings). */
    if (tr(m->wte) || tr(m->wpe))
        pb_embedding_bwd(tr(m->wte) ? m->wte->grad : NULL, tr(m->wpe) ? m->wpe->grad : NULL, m->dres, b->ids, B, T, C);
}
