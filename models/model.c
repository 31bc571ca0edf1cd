/* model.c — the family-neutral trunk of the runnable transformer (see model.h for the contract,
 * docs/ARCHITECTURE.md "Model families" for the split): the layout, construction and the site
 * index, the backward plan, buffers, embeddings, the loop over layers, the final norm, the heads
 * and the loss, and the helpers through which a block file (models/block_<family>.c, chosen by
 * pb_block_select) reaches its hook points. Every linear layer of a block goes through
 * pb_blk_site_fwd / pb_blk_site_bwd, where PEFT methods hook in; the classification head goes
 * through the same site functions (the LM head does not: no method hooks it).
 *
 * Dimension letters: B batch, T sequence, N = B*T, C d_model, H heads, qd = H*hs, kvd = Hkv*hs,
 * F d_ff, V vocab, K labels, L layers.
 */
#include "model.h"
#include "block.h"
#include "flops.h"
#include "kernels.h"
#include "pb_mem.h"
#include "pb_rng.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

/* One tensor named <prefix><path>.<suffix>. */
static int add_named(pb_tensor *t, int i, size_t *off, const char *prefix, const char *path, const char *suffix,
                     pb_site site, int layer, int is_bias, int d0, int d1) {
    char nm[sizeof t->name];
    snprintf(nm, sizeof nm, "%s%s.%s", prefix, path, suffix);
    return add_tensor(t, i, off, nm, site, layer, is_bias, d0, d1);
}

/* The tensors of a site: a linear layer (weight (out, in), bias (out) when it has one), a norm
 * (weight, and bias for LayerNorm), or a table (weight (d0, d1)). */
typedef struct {
    pb_tensor *t;
    size_t *off;
    const pb_model_desc *d;
    char prefix[32];
    int layer, dec;
} lay_ctx;

static int lay_linear(lay_ctx *x, int i, pb_site s, int out, int in, int bias) {
    const char *path = pb_desc_site_path(x->d, s, x->dec);
    i = add_named(x->t, i, x->off, x->prefix, path, "weight", s, x->layer, 0, out, in);
    if (bias) i = add_named(x->t, i, x->off, x->prefix, path, "bias", s, x->layer, 1, out, 0);
    return i;
}

/* Site s with the shape pb_desc_site_shape gives (nothing when the descriptor lacks it). */
static int lay_site(lay_ctx *x, int i, pb_site s) {
    int in, out, bias;
    if (!pb_desc_site_shape(x->d, s, &in, &out, &bias)) return i;
    return lay_linear(x, i, s, out, in, bias);
}

/* The head's tensors (site head, layer -1): an untied LM head, a classifier (a linear layer, or
 * dense + out_proj), a token classifier; none for a tied LM head or the bare model. */
static int lay_head(lay_ctx *x, int i, pb_head_kind head, int K) {
    const pb_model_desc *d = x->d;
    const int C = d->d_model, E = d->proj_dim ? d->proj_dim : C;
    const char *lm = d->names ? d->names->lm_head : "lm_head", *tok = d->names ? d->names->tok_head : "score";
    char path[64];
    switch (head) {
    case PB_HEAD_LM:
        if (!d->tied_embed) i = add_named(x->t, i, x->off, "", lm, "weight", PB_SITE_HEAD, -1, 0, d->vocab, E);
        break;
    case PB_HEAD_CLS:
        if (d->cls_head == PB_CLS_DENSE) {
            snprintf(path, sizeof path, "%s.dense", pb_desc_site_path(d, PB_SITE_HEAD, 0));
            i = add_named(x->t, i, x->off, "", path, "weight", PB_SITE_HEAD, -1, 0, C, C);
            i = add_named(x->t, i, x->off, "", path, "bias", PB_SITE_HEAD, -1, 1, C, 0);
            snprintf(path, sizeof path, "%s.out_proj", pb_desc_site_path(d, PB_SITE_HEAD, 0));
            i = add_named(x->t, i, x->off, "", path, "weight", PB_SITE_HEAD, -1, 0, K, C);
            i = add_named(x->t, i, x->off, "", path, "bias", PB_SITE_HEAD, -1, 1, K, 0);
        } else {
            i = lay_linear(x, i, PB_SITE_HEAD, K, E, d->cls_head == PB_CLS_LINEAR);
        }
        break;
    case PB_HEAD_TOKCLS:
        i = add_named(x->t, i, x->off, "", tok, "weight", PB_SITE_HEAD, -1, 0, K, C);
        i = add_named(x->t, i, x->off, "", tok, "bias", PB_SITE_HEAD, -1, 1, K, 0);
        break;
    case PB_HEAD_NONE: break;
    }
    return i;
}

/* A block's sites in forward order; block l has those pb_desc_layer_has says. */
static const pb_site g_block_sites[] = {
    PB_SITE_LN1, PB_SITE_Q,  PB_SITE_K,  PB_SITE_V,  PB_SITE_QKV,  PB_SITE_REL, PB_SITE_O,  PB_SITE_LN_X,
    PB_SITE_XQ,  PB_SITE_XK, PB_SITE_XV, PB_SITE_XO, PB_SITE_LN2, PB_SITE_GATE, PB_SITE_UP, PB_SITE_DOWN,
};

int pb_model_layout(const pb_model_desc *d, pb_head_kind head, int n_labels, pb_tensor *t, size_t *n_params) {
    size_t off = 0;
    int i = 0;
    lay_ctx x = {.t = t, .off = &off, .d = d, .layer = -1};

    /* embeddings (each only when the descriptor has it) */
    static const pb_site patch_sites[] = {PB_SITE_CLS_TOK, PB_SITE_POS, PB_SITE_PATCH};
    static const pb_site token_sites[] = {PB_SITE_EMBED, PB_SITE_POS, PB_SITE_TYPE};
    for (int k = 0; k < 3; k++) i = lay_site(&x, i, d->patch ? patch_sites[k] : token_sites[k]);
    i = lay_site(&x, i, PB_SITE_LN_EMBED);
    i = lay_site(&x, i, PB_SITE_PROJ_IN);

    /* blocks */
    const pb_names *nm = d->names;
    for (int l = 0; l < d->n_layer; l++) {
        x.dec = pb_desc_is_dec_block(d, l);
        int in_stack = x.dec ? l - d->n_enc_layer : l;
        if (x.dec && l == d->n_enc_layer) { /* the encoder's final norm, before the decoder */
            x.layer = -1;
            x.prefix[0] = '\0';
            i = lay_site(&x, i, PB_SITE_LN_F);
        }
        x.layer = l;
        snprintf(x.prefix, sizeof x.prefix, (x.dec && nm && nm->dec_block) ? nm->dec_block
                                            : (nm ? nm->block : "h.%d."), in_stack);
        for (size_t k = 0; k < sizeof g_block_sites / sizeof g_block_sites[0]; k++)
            if (pb_desc_layer_has(d, l, g_block_sites[k])) i = lay_site(&x, i, g_block_sites[k]);
    }

    /* after the blocks */
    x.layer = -1;
    x.prefix[0] = '\0';
    x.dec = d->arch == PB_ARCH_ENCDEC;
    i = lay_site(&x, i, PB_SITE_LN_F);
    i = lay_site(&x, i, PB_SITE_PROJ_OUT);
    if (pb_desc_has_pooler(d, head)) i = lay_site(&x, i, PB_SITE_POOLER);
    i = lay_head(&x, i, head, n_labels);
    if (n_params) *n_params = off;
    return i;
}

size_t pb_model_task_head_params(const pb_model_desc *d, pb_head_kind head, int n_labels) {
    if (head != PB_HEAD_CLS && head != PB_HEAD_TOKCLS) return 0;
    size_t off = 0;
    lay_ctx x = {.t = NULL, .off = &off, .d = d, .layer = -1, .dec = d->arch == PB_ARCH_ENCDEC};
    lay_head(&x, 0, head, n_labels);
    return off;
}

static void free_buffers(pb_model *m);

/* ---- construction -------------------------------------------------------------------------- */

pb_status pb_model_init(pb_model *m, const pb_model_desc *d, pb_head_kind head, int n_labels, uint64_t seed) {
    memset(m, 0, sizeof *m);
    pb_status st = pb_desc_check_runnable(d);
    if (st) return st;
    const pb_block_ops *block = pb_block_select(d, NULL, 0);
    assert(block && "pb_desc_check_runnable admits only what a block runs");
    if (head == PB_HEAD_CLS && n_labels < 1)
        return pb_errorf(PB_EINVAL, "a classification head needs at least 1 label (got %d)", n_labels);
    if (head != PB_HEAD_LM && head != PB_HEAD_CLS)
        return pb_errorf(PB_EINVAL, "backbone '%s': only the LM and sequence-classification heads run", d->name);
    m->d = *d;
    m->block = block;
    m->head = head;
    m->n_labels = head == PB_HEAD_CLS ? n_labels : 0;
    m->n_tensors = pb_model_layout(d, head, n_labels, NULL, NULL);
    m->tensors = pb_alloc(sizeof(pb_tensor) * (size_t)m->n_tensors, PB_MEM_OTHER);
    m->layers = pb_alloc(sizeof(pb_site_tensors) * (size_t)d->n_layer, PB_MEM_OTHER);
    m->plan = pb_alloc(sizeof(pb_layer_plan) * (size_t)d->n_layer, PB_MEM_OTHER);
    m->acts = pb_alloc(sizeof(pb_layer_acts) * (size_t)d->n_layer, PB_MEM_OTHER);
    if (!m->tensors || !m->layers || !m->plan || !m->acts) goto oom;
    pb_model_layout(d, head, n_labels, m->tensors, &m->n_params);
    m->params = pb_alloc(m->n_params * sizeof(float), PB_MEM_FROZEN);
    if (!m->params) goto oom;

    pb_tensor *t = m->tensors;
    for (int i = 0; i < m->n_tensors; i++) t[i].data = m->params + t[i].offset;
    /* The site index: each tensor by (layer, site, weight|bias); a slot the table lacks stays NULL. */
    memset(m->layers, 0, sizeof(pb_site_tensors) * (size_t)d->n_layer);
    memset(&m->global, 0, sizeof m->global);
    for (int i = 0; i < m->n_tensors; i++) {
        pb_site_tensors *ix = t[i].layer >= 0 ? &m->layers[t[i].layer] : &m->global;
        pb_tensor **slot = t[i].is_bias ? &ix->b[t[i].site] : &ix->w[t[i].site];
        assert(!*slot && "a runnable layout has one tensor per (layer, site, weight|bias)");
        *slot = &t[i];
    }
    assert(m->global.w[PB_SITE_EMBED] && m->global.w[PB_SITE_LN_F] && (head != PB_HEAD_CLS || m->global.w[PB_SITE_HEAD]));

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

static const pb_tensor *find_tensor(const pb_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static void shape_str(char *buf, size_t cap, const pb_tensor *t) {
    if (t->ndim == 2) snprintf(buf, cap, "(%d, %d)", t->shape[0], t->shape[1]);
    else snprintf(buf, cap, "(%d)", t->shape[0]);
}

pb_status pb_model_copy_by_name(pb_model *dst, const pb_model *src, uint32_t keep) {
    for (int i = 0; i < dst->n_tensors; i++) {
        pb_tensor *t = &dst->tensors[i];
        if (t->layer < 0 && ((keep >> t->site) & 1u)) continue;
        const pb_tensor *s = find_tensor(src, t->name);
        char want[32], got[32];
        shape_str(want, sizeof want, t);
        if (!s)
            return pb_errorf(PB_EINVAL, "tensor '%s' %s of '%s' is missing from '%s'", t->name, want, dst->d.name,
                             src->d.name);
        shape_str(got, sizeof got, s);
        if (s->ndim != t->ndim || s->numel != t->numel || s->shape[0] != t->shape[0] || s->shape[1] != t->shape[1])
            return pb_errorf(PB_EINVAL, "tensor '%s' has shape %s in '%s'; '%s' needs %s", t->name, got, src->d.name,
                             dst->d.name, want);
        memcpy(t->data, s->data, sizeof(float) * t->numel);
    }
    return PB_OK;
}

size_t pb_model_trainable_count(const pb_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable) n += m->tensors[i].numel;
    return n;
}

static int tr(const pb_tensor *t) { return t && t->trainable; }

/* The LM head: its own tensor (V,C) when untied, else the token embedding. */
static const pb_tensor *lm_head(const pb_model *m) {
    return m->global.w[PB_SITE_HEAD] ? m->global.w[PB_SITE_HEAD] : m->global.w[PB_SITE_EMBED];
}

static const pb_linear_hook *linear_hook(const pb_model *m, int layer, pb_site site) {
    if (!m->hooks || !m->hooks->linear) return NULL;
    const pb_linear_hook *h = &m->hooks->linear[(size_t)layer * PB_NSITE + site];
    return h->fwd ? h : NULL;
}

static const pb_sublayer_hook *sublayer_hook(const pb_model *m, int layer, pb_sublayer which) {
    if (!m->hooks || !m->hooks->sublayer) return NULL;
    const pb_sublayer_hook *h = &m->hooks->sublayer[(size_t)layer * PB_NSUB + which];
    return h->fwd ? h : NULL;
}

static const pb_prefix_hook *prefix_hook(const pb_model *m, int layer) {
    if (!m->hooks || !m->hooks->prefix) return NULL;
    const pb_prefix_hook *h = &m->hooks->prefix[layer];
    return h->fwd && h->P > 0 ? h : NULL;
}

static const pb_embed_hook *embed_hook(const pb_model *m) {
    return m->hooks && m->hooks->embed.fwd && m->hooks->embed.P > 0 ? &m->hooks->embed : NULL;
}

void pb_model_set_hooks(pb_model *m, const pb_model_hooks *hooks) {
    m->hooks = hooks;
    m->plan_ready = 0;
    free_buffers(m);
}

/* The plan's inputs from the model's trainable tensors and installed hooks. */
static pb_status plan_model(pb_model *m) {
    const int L = m->d.n_layer;
    pb_plan_layer_in *li = calloc((size_t)L, sizeof *li);
    if (!li) return pb_errorf(PB_ENOMEM, "out of memory");
    pb_plan_in in = {.n_layer = L, .layer = li, .input_requires_grad = m->input_requires_grad};
    for (int i = 0; i < m->n_tensors; i++) {
        const pb_tensor *t = &m->tensors[i];
        if (!t->trainable) continue;
        uint32_t *mask = t->layer >= 0 ? (t->is_bias ? &li[t->layer].tr_b : &li[t->layer].tr_w)
                                       : (t->is_bias ? &in.tr_b : &in.tr_w);
        *mask |= 1u << t->site;
    }
    const pb_model_hooks *hk = m->hooks;
    for (int l = 0; hk && l < L; l++) {
        for (int s = 0; s < PB_NSITE; s++) {
            const pb_linear_hook *h = linear_hook(m, l, (pb_site)s);
            if (h) li[l].hook |= 1u << s;
            if (h && h->trainable) li[l].hook_tr |= 1u << s;
        }
        for (int w = 0; hk->sublayer && w < PB_NSUB; w++) {
            const pb_sublayer_hook *h = &hk->sublayer[l * PB_NSUB + w];
            li[l].sub[w] = h->fwd ? (h->trainable ? 2 : 1) : 0;
        }
        if (hk->prefix && hk->prefix[l].fwd) {
            li[l].prefix = hk->prefix[l].trainable ? 2 : 1;
            li[l].gated = hk->prefix[l].gate_fwd != NULL;
        }
    }
    if (hk && hk->embed.fwd) in.embed_hook = hk->embed.trainable ? 2 : 1;
    pb_plan_compute(&in, m->plan, &m->floor, &m->g_lnf);
    free(li);
    return PB_OK;
}

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

    /* "Requires grad" propagation through the graph, in forward order (pb_plan_compute,
     * models/flops.h, shared with shape-only counting). A hook that owns trainable tensors makes
     * the point it writes need a gradient. */
    pb_status st = plan_model(m);
    if (st) return st;
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
    if (m->grads) pb_zero(m->grads, m->n_grads);
}

/* ---- activation buffers: sizes from one function -------------------------------------------- */

/* Prefix length (the largest over layers; every prefix method uses one length) and virtual
 * tokens of the installed hooks. */
static int hooks_Pk(const pb_model *m) {
    int P = 0;
    for (int l = 0; l < m->d.n_layer; l++) {
        const pb_prefix_hook *h = prefix_hook(m, l);
        if (h && h->P > P) P = h->P;
    }
    return P;
}

static int hooks_Pe(const pb_model *m) {
    const pb_embed_hook *h = embed_hook(m);
    return h ? h->P : 0;
}

static int hooks_Pg(const pb_model *m) {
    for (int l = 0; l < m->d.n_layer; l++) {
        const pb_prefix_hook *h = prefix_hook(m, l);
        if (h && h->gate_fwd) return 1;
    }
    return 0;
}

static pb_dims make_dims(const pb_model *m, int B, int T) {
    pb_dims d = {.B = B, .T = T, .Pe = hooks_Pe(m), .Pk = hooks_Pk(m), .Pg = hooks_Pg(m)};
    d.Tm = d.Pe + T;
    d.Tk = d.Pk + d.Tm;
    d.N = B * d.Tm;
    return d;
}

static float *carve(float **p, size_t n) {
    float *r = *p;
    *p += n;
    return r;
}

static size_t head_out(const pb_model *m, const pb_dims *x) { return pb_buf_head_out(&m->d, m->head, m->n_labels, x); }
/* int32 and uint8 arrays live in float-sized slots (as pb_buf_top counts them) */
static size_t ints_as_floats(size_t n_int32) { return n_int32; }
static size_t bytes_as_floats(size_t n_bytes) { return (n_bytes + sizeof(float) - 1) / sizeof(float); }

/* The buffers are carved for a capacity shape (cap_B, cap_T) and serve every batch no larger in
 * either: each array is used from its start with the batch's own strides, as the methods' buffers
 * are (methods/peft.c). A larger batch grows the capacity to the larger of the two in each
 * dimension, so batches of varying length (group_by_length) settle on one allocation instead of
 * one per step. Contents are never assumed zero between forwards. */
static pb_status ensure_buffers(pb_model *m, const pb_dims *x, int training) {
    int floor = training ? m->floor : m->d.n_layer;
    int same = m->acts_block && floor == m->buf_floor && x->Pe == m->buf_Pe && x->Pk == m->buf_Pk && x->Pg == m->buf_Pg;
    if (same && x->B <= m->cap_B && x->T <= m->cap_T) return PB_OK;
    pb_dims cap = same ? make_dims(m, x->B > m->cap_B ? x->B : m->cap_B, x->T > m->cap_T ? x->T : m->cap_T) : *x;
    free_buffers(m);
    size_t C = (size_t)m->d.d_model, H = (size_t)m->d.n_head, F = (size_t)m->d.d_ff, N = (size_t)cap.N;
    size_t B = (size_t)cap.B, L = (size_t)m->d.n_layer, hd = (size_t)pb_desc_head_dim(&m->d);
    size_t qd = H * hd, kvd = (size_t)m->d.n_kv_head * hd;
    const int rms = m->d.norm == PB_NORM_RMSNORM, gated = m->d.ffn != PB_FFN_GELU, rope = m->d.pos == PB_POS_ROPE;
    size_t nacts = pb_buf_top(&m->d, m->head, m->n_labels, &cap);
    for (size_t l = (size_t)floor; l < L; l++) nacts += pb_buf_layer_acts(&m->d, &cap);
    m->acts_block = pb_alloc(nacts * sizeof(float), PB_MEM_ACTS);
    m->scratch_block = pb_alloc(pb_buf_scratch(&m->d, m->head, m->n_labels, &cap) * sizeof(float), PB_MEM_WORKSPACE);
    if (!m->acts_block || !m->scratch_block) {
        free_buffers(m);
        return PB_ENOMEM;
    }
    size_t rows = m->head == PB_HEAD_LM ? N : B;
    float *p = m->acts_block;
    m->encoded = carve(&p, N * C);
    m->lnf = carve(&p, N * C);
    m->lnf_mean = rms ? NULL : carve(&p, N); /* RMSNorm keeps no mean */
    m->lnf_rstd = carve(&p, N);
    m->pooled = carve(&p, B * C);
    m->logits = carve(&p, head_out(m, &cap));
    m->probs = carve(&p, head_out(m, &cap));
    m->losses = carve(&p, rows);
    m->pool_idx = (int32_t *)carve(&p, ints_as_floats(B));
    m->targets_m = (int32_t *)carve(&p, ints_as_floats(N));
    m->mask_m = (uint8_t *)carve(&p, bytes_as_floats(N));
    for (size_t l = 0; l < L; l++)
        if (l >= (size_t)floor) m->block->carve(&m->acts[l], &p, &m->d, &cap);
        else memset(&m->acts[l], 0, sizeof m->acts[l]);
    assert((size_t)(p - m->acts_block) == nacts);

    size_t Tk = (size_t)cap.Tk, Pk = (size_t)cap.Pk, Pe = (size_t)cap.Pe;
    float *s = m->scratch_block;
    m->block->carve(&m->scratch_acts, &s, &m->d, &cap);
    m->scratch_out[0] = m->scratch_acts.out;
    m->scratch_out[1] = carve(&s, N * C);
    m->dres = carve(&s, N * C);
    m->dln = carve(&s, N * C);
    m->dq = carve(&s, N * qd);
    m->dk = carve(&s, N * kvd);
    m->dv = carve(&s, N * kvd);
    m->datty = carve(&s, N * qd);
    m->proj = carve(&s, N * C);
    m->dsub = carve(&s, N * C);
    m->dfch = carve(&s, N * F);
    m->dfch_gate = gated ? carve(&s, N * F) : NULL;
    m->datt = carve(&s, B * H * (size_t)cap.Tm * Tk);
    m->dlogits = carve(&s, head_out(m, &cap));
    m->dpooled = carve(&s, B * C);
    m->dkf = Pk ? carve(&s, B * Tk * kvd) : NULL;
    m->dvf = Pk ? carve(&s, B * Tk * kvd) : NULL;
    m->prompt = carve(&s, Pe * C);
    m->dprompt = carve(&s, Pe * C);
    m->pk = carve(&s, Pk * kvd);
    m->pv = carve(&s, Pk * kvd);
    m->dpk = carve(&s, Pk * kvd);
    m->dpv = carve(&s, Pk * kvd);
    m->dpgate = cap.Pg ? carve(&s, B) : NULL;
    m->rope = rope ? carve(&s, Tk * hd) : NULL;
    if (m->rope) pb_rope_table(m->rope, (int)Tk, (int)hd, pb_desc_rope_theta(&m->d));
    m->kmask = (uint8_t *)carve(&s, bytes_as_floats(B * Tk));
    assert((size_t)(s - m->scratch_block) == pb_buf_scratch(&m->d, m->head, m->n_labels, &cap));
    m->cap_B = cap.B;
    m->cap_T = cap.T;
    m->buf_floor = floor;
    m->buf_Pe = x->Pe;
    m->buf_Pk = x->Pk;
    m->buf_Pg = x->Pg;
    return PB_OK;
}

/* ---- sites: where methods hook in ------------------------------------------------------------ */

void pb_site_base_fwd(float *out, const float *inp, const pb_tensor *w, const pb_tensor *b, int N) {
    pb_linear_fwd(out, inp, w->data, b ? b->data : NULL, N, w->shape[1], w->shape[0]);
}

/* dinp may be NULL (no input gradient needed); weight/bias gradients only when trainable. */
void pb_site_base_bwd(float *dinp, const float *dout, const float *inp, const pb_tensor *w, const pb_tensor *b, int N) {
    float *dw = w->trainable ? w->grad : NULL;
    float *db = (b && b->trainable) ? b->grad : NULL;
    if (!dinp && !dw && !db) return;
    pb_linear_bwd(dinp, dw, db, dout, inp, w->data, N, w->shape[1], w->shape[0]);
}

static void site_fwd(const pb_model *m, int layer, pb_site site, float *out, const float *inp, const pb_tensor *w,
                     const pb_tensor *b, int N) {
    const pb_linear_hook *h = layer >= 0 ? linear_hook(m, layer, site) : NULL;
    if (h) h->fwd(h->self, out, inp, w, b, N);
    else pb_site_base_fwd(out, inp, w, b, N);
}

static void site_bwd(const pb_model *m, int layer, pb_site site, float *dinp, const float *dout, const float *inp,
                     const pb_tensor *w, const pb_tensor *b, int N) {
    const pb_linear_hook *h = layer >= 0 ? linear_hook(m, layer, site) : NULL;
    if (h) h->bwd(h->self, dinp, dout, inp, w, b, N);
    else pb_site_base_bwd(dinp, dout, inp, w, b, N);
}

/* ---- the block interface (models/block.h) ---------------------------------------------------- */

#define PB_BLOCK(name) extern const pb_block_ops pb_block_##name;
#include "block_list.h"
#undef PB_BLOCK

static const pb_block_ops *const g_blocks[] = {
#define PB_BLOCK(name) &pb_block_##name,
#include "block_list.h"
#undef PB_BLOCK
};

const pb_block_ops *pb_block_select(const pb_model_desc *d, char *why, size_t cap) {
    size_t n = 0;
    if (why && cap) why[0] = '\0';
    for (size_t i = 0; i < sizeof g_blocks / sizeof g_blocks[0]; i++) {
        const char *r = g_blocks[i]->refuses(d);
        if (!r) return g_blocks[i];
        if (why && n < cap) n += (size_t)snprintf(why + n, cap - n, "%s%s: %s", i ? "; " : "", g_blocks[i]->name, r);
    }
    return NULL;
}

const char *pb_model_family(const pb_model_desc *d) {
    const pb_block_ops *b = pb_block_select(d, NULL, 0);
    return b ? b->name : NULL;
}

static int plan_bit(uint32_t mask, pb_site s) { return (mask >> s) & 1u; }
static int kv_width(const pb_model *m) { return m->d.n_kv_head * pb_desc_head_dim(&m->d); }
static const pb_site_tensors *site_tensors(const pb_model *m, int l) { return l >= 0 ? &m->layers[l] : &m->global; }

void pb_blk_site_fwd(const pb_model *m, int l, pb_site s, float *out, const float *inp, int N) {
    site_fwd(m, l, s, out, inp, m->layers[l].w[s], m->layers[l].b[s], N);
}

void pb_blk_site_bwd(const pb_model *m, int l, pb_site s, float *dinp, const float *dout, const float *inp, int N) {
    const pb_layer_plan *p = &m->plan[l];
    if (!plan_bit(p->run, s)) return;
    site_bwd(m, l, s, plan_bit(p->dinp, s) ? dinp : NULL, dout, inp, m->layers[l].w[s], m->layers[l].b[s], N);
}

void pb_blk_norm_fwd(const pb_model *m, int l, pb_site s, float *out, float *mean, float *rstd, const float *inp,
                     int N) {
    const pb_tensor *w = site_tensors(m, l)->w[s], *b = site_tensors(m, l)->b[s];
    if (m->d.norm == PB_NORM_RMSNORM) pb_rmsnorm_fwd(out, rstd, inp, w->data, N, m->d.d_model, pb_desc_rms_eps(&m->d));
    else pb_layernorm_fwd(out, mean, rstd, inp, w->data, b ? b->data : NULL, N, m->d.d_model);
}

void pb_blk_norm_bwd(const pb_model *m, int l, pb_site s, float *dinp, const float *dout, const float *inp,
                     const float *mean, const float *rstd, int N) {
    if (l >= 0) {
        const pb_layer_plan *p = &m->plan[l];
        if (!plan_bit(p->run, s)) return;
        if (!plan_bit(p->dinp, s)) dinp = NULL;
    }
    const pb_tensor *w = site_tensors(m, l)->w[s], *b = site_tensors(m, l)->b[s];
    if (m->d.norm == PB_NORM_RMSNORM) pb_rmsnorm_bwd(dinp, tr(w) ? w->grad : NULL, dout, inp, w->data, rstd, N, m->d.d_model);
    else
        pb_layernorm_bwd(dinp, tr(w) ? w->grad : NULL, tr(b) ? b->grad : NULL, dout, inp, w->data, mean, rstd, N,
                         m->d.d_model);
}

void pb_blk_sublayer_fwd(const pb_model *m, int l, pb_sublayer which, float *h, const float *x, int N) {
    const pb_sublayer_hook *sh = sublayer_hook(m, l, which);
    if (sh) sh->fwd(sh->self, h, x, N); /* the hook saves what its backward needs */
}

const float *pb_blk_sublayer_bwd(pb_model *m, int l, pb_sublayer which, const float *dh, float *dx, const float *x,
                                 int N) {
    const pb_sublayer_hook *sh = sublayer_hook(m, l, which);
    if (!sh) return dh;
    const pb_layer_plan *p = &m->plan[l];
    /* the site under the hook (its d(output) is needed when its backward runs) and the norm whose
     * output x is */
    pb_site under = which == PB_SUB_FFN ? PB_SITE_DOWN : PB_SITE_O;
    int need_dx = which == PB_SUB_FFN ? p->ln2 : p->ln1;
    pb_copy(m->dsub, dh, (size_t)N * m->d.d_model);
    sh->bwd(sh->self, m->dsub, need_dx ? dx : NULL, x, N, plan_bit(p->run, under));
    return m->dsub;
}

/* The prefix helpers below work on rows of width C, which is the key/value width (kvd) here. */

/* Copies rows [P, P+Tm) of each sequence's (Tk) block from src (B,Tm,C), and the prefix p (P,C)
 * into rows [0, P): dst (B,Tk,C). */
static void assemble_prefixed(float *dst, const float *p, const float *src, const pb_dims *x, int C) {
    size_t PC = (size_t)x->Pk * C, TC = (size_t)x->Tm * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < x->B; b++) {
        memcpy(dst + (size_t)b * (PC + TC), p, sizeof(float) * PC);
        memcpy(dst + (size_t)b * (PC + TC) + PC, src + (size_t)b * TC, sizeof(float) * TC);
    }
}

/* The prefix rows' sum over the batch, split over chunks of the (P,C) block so that each element
 * is summed by one thread in batch order: dp (P,C) = sum over b of g[b] (1 if g is NULL) times
 * rows [0, P) of sequence b of dfull (B,Tk,C). */
#define PREFIX_CHUNK 256
static void prefix_batch_sum(float *dp, const float *dfull, const float *g, const pb_dims *x, int C) {
    size_t PC = (size_t)x->Pk * C, TkC = (size_t)x->Tk * C;
    long nchunk = (long)((PC + PREFIX_CHUNK - 1) / PREFIX_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunk; c++) {
        size_t lo = (size_t)c * PREFIX_CHUNK, n = PC - lo < PREFIX_CHUNK ? PC - lo : PREFIX_CHUNK;
        float acc[PREFIX_CHUNK] = {0}; /* (n) */
        for (int b = 0; b < x->B; b++) {
            const float *blk = dfull + (size_t)b * TkC + lo; /* (n) */
            float gb = g ? g[b] : 1.0f;
            if (g) {
#pragma omp simd
                for (size_t i = 0; i < n; i++) acc[i] += gb * blk[i];
            } else {
#pragma omp simd
                for (size_t i = 0; i < n; i++) acc[i] += blk[i];
            }
        }
        memcpy(dp + lo, acc, sizeof(float) * n);
    }
}

/* dsrc (B,Tm,C) += rows [P, ...) of each sequence of dfull (B,Tk,C). */
static void prefix_tokens_add(float *dsrc, const float *dfull, const pb_dims *x, int C) {
    size_t PC = (size_t)x->Pk * C, TC = (size_t)x->Tm * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < x->B; b++) {
        const float *blk = dfull + (size_t)b * (PC + TC) + PC; /* (TC) */
        float *d = dsrc + (size_t)b * TC;                       /* (TC) */
#pragma omp simd
        for (size_t i = 0; i < TC; i++) d[i] += blk[i];
    }
}

/* The inverse for gradients: dsrc (B,Tm,C) += rows [P, ...) of dfull; dp (P,C) = sum over b of
 * rows [0, P). */
static void split_prefixed(float *dsrc, float *dp, const float *dfull, const pb_dims *x, int C) {
    prefix_batch_sum(dp, dfull, NULL, x, C);
    if (dsrc) prefix_tokens_add(dsrc, dfull, x, C);
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, (uint64_t)x->B * x->Pk * C);
}

/* Gated prefix: rows [0, P) of sequence b of full (B,Tk,C) *= g[b]. */
static void gate_prefixed(float *full, const float *g, const pb_dims *x, int C) {
    size_t PC = (size_t)x->Pk * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < x->B; b++) {
        float *blk = full + (size_t)b * x->Tk * C;
        for (size_t i = 0; i < PC; i++) blk[i] *= g[b];
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)x->B * PC);
}

/* split_prefixed for a gated prefix p (P,C) (the ungated one) with gates g (B): dsrc (B,Tm,C) +=
 * rows [P, ...) of dfull; dp (P,C) = sum over b of g[b] rows [0, P); dg (B) += <rows [0, P), p>. */
static void split_prefixed_gated(float *dsrc, float *dp, float *dg, const float *dfull, const float *p,
                                 const float *g, const pb_dims *x, int C) {
    size_t PC = (size_t)x->Pk * C;
    prefix_batch_sum(dp, dfull, g, x, C);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < x->B; b++) {
        const float *blk = dfull + (size_t)b * x->Tk * C;
        double dot = 0.0;
        for (size_t i = 0; i < PC; i++) dot += (double)blk[i] * p[i];
        dg[b] += (float)dot;
    }
    if (dsrc) prefix_tokens_add(dsrc, dfull, x, C);
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * (uint64_t)x->B * PC);
}

const uint8_t *pb_blk_kv_fwd(pb_model *m, int l, pb_layer_acts *a, const float *xin, const pb_dims *x) {
    if (!x->Pk) return m->mask_m;
    const int W = kv_width(m);
    const pb_prefix_hook *ph = prefix_hook(m, l);
    /* every layer gets Pk keys in front; a layer without its own prefix gets none visible (masked),
     * so one key length serves the whole stack */
    if (ph) ph->fwd(ph->self, m->pk, m->pv);
    else {
        memset(m->pk, 0, sizeof(float) * (size_t)x->Pk * W);
        memset(m->pv, 0, sizeof(float) * (size_t)x->Pk * W);
    }
    assemble_prefixed(a->kf, m->pk, a->k, x, W);
    assemble_prefixed(a->vf, m->pv, a->v, x, W);
    if (ph && ph->gate_fwd) { /* UniPELT: sequence b's prefix scaled by its gate */
        ph->gate_fwd(ph->self, a->pgate, xin, m->mask_m, x->B, x->Tm);
        gate_prefixed(a->kf, a->pgate, x, W);
        gate_prefixed(a->vf, a->pgate, x, W);
    }
    for (int b = 0; b < x->B; b++)
        for (int j = 0; j < x->Pk; j++) m->kmask[(size_t)b * x->Tk + j] = ph ? 1 : 0;
    return m->kmask;
}

void pb_blk_kv_bwd_begin(pb_model *m, int l, const pb_dims *x, float **dkf, float **dvf) {
    const pb_layer_plan *p = &m->plan[l];
    const size_t W = (size_t)kv_width(m), NW = (size_t)x->N * W;
    if (p->k) pb_zero(m->dk, NW);
    if (p->v) pb_zero(m->dv, NW);
    if (!x->Pk) {
        *dkf = p->k ? m->dk : NULL;
        *dvf = p->v ? m->dv : NULL;
        return;
    }
    /* gradients w.r.t. the full key/value blocks, split by pb_blk_kv_bwd_end; the prefix's hook
     * takes its share even when it is frozen */
    int want_kv = p->k || p->v || prefix_hook(m, l);
    if (want_kv) {
        pb_zero(m->dkf, (size_t)x->B * x->Tk * W);
        pb_zero(m->dvf, (size_t)x->B * x->Tk * W);
    }
    *dkf = want_kv ? m->dkf : NULL;
    *dvf = want_kv ? m->dvf : NULL;
}

void pb_blk_kv_bwd_end(pb_model *m, int l, const pb_layer_acts *a, const float *xin, const pb_dims *x) {
    if (!x->Pk) return;
    const pb_layer_plan *p = &m->plan[l];
    const pb_prefix_hook *ph = prefix_hook(m, l);
    const int W = kv_width(m);
    if (!(p->k || p->v || ph)) return;
    if (ph && ph->gate_fwd) {
        /* the ungated prefix again (later layers overwrote pk, pv) for d(gate) */
        ph->fwd(ph->self, m->pk, m->pv);
        memset(m->dpgate, 0, sizeof(float) * (size_t)x->B);
        split_prefixed_gated(p->k ? m->dk : NULL, m->dpk, m->dpgate, m->dkf, m->pk, a->pgate, x, W);
        split_prefixed_gated(p->v ? m->dv : NULL, m->dpv, m->dpgate, m->dvf, m->pv, a->pgate, x, W);
        ph->bwd(ph->self, m->dpk, m->dpv);
        ph->gate_bwd(ph->self, p->ln1 ? m->dln : NULL, m->dpgate, xin, m->mask_m, x->B, x->Tm);
    } else {
        split_prefixed(p->k ? m->dk : NULL, m->dpk, m->dkf, x, W);
        split_prefixed(p->v ? m->dv : NULL, m->dpv, m->dvf, x, W);
        if (ph) ph->bwd(ph->self, m->dpk, m->dpv);
    }
}

/* ---- forward ------------------------------------------------------------------------------- */

static pb_status check_batch(const pb_model *m, const pb_batch *b, const pb_dims *x) {
    if (b->B < 1 || b->T < 1) return pb_errorf(PB_EINVAL, "empty batch (B=%d, T=%d)", b->B, b->T);
    if (x->Tm > m->d.max_seq)
        return x->Pe ? pb_errorf(PB_EINVAL,
                                 "sequence length %d plus %d virtual tokens exceeds the backbone's max_seq %d",
                                 b->T, x->Pe, m->d.max_seq)
                     : pb_errorf(PB_EINVAL, "sequence length %d exceeds the backbone's max_seq %d", b->T,
                                 m->d.max_seq);
    size_t n = (size_t)b->B * b->T;
    for (size_t i = 0; i < n; i++)
        if (b->ids[i] < 0 || b->ids[i] >= m->d.vocab)
            return pb_errorf(PB_EINVAL, "token id %d at position %zu is outside the vocabulary [0, %d)", b->ids[i],
                             i, m->d.vocab);
    if (m->head == PB_HEAD_CLS) {
        for (int i = 0; i < b->B; i++)
            if (b->targets[i] < 0 || b->targets[i] >= m->n_labels)
                return pb_errorf(PB_EINVAL, "label %d of example %d is outside [0, %d)", b->targets[i], i,
                                 m->n_labels);
    } else {
        for (size_t i = 0; i < n; i++)
            if (b->targets[i] >= m->d.vocab)
                return pb_errorf(PB_EINVAL, "target id %d at position %zu is outside the vocabulary", b->targets[i],
                                 i);
    }
    return PB_OK;
}

/* Embeddings of the real tokens at rows [Pe, Tm) of each sequence with positions Pe.., and the
 * virtual tokens (from the embed hook) at rows [0, Pe) with positions 0... */
static void embed_fwd(pb_model *m, const pb_batch *b, const pb_dims *x) {
    int C = m->d.d_model;
    const float *wte = m->global.w[PB_SITE_EMBED]->data;                           /* (V,C) */
    const float *wpe = m->global.w[PB_SITE_POS] ? m->global.w[PB_SITE_POS]->data : NULL; /* (max_seq,C) or none */
    if (!x->Pe) {
        pb_embedding_fwd(m->encoded, b->ids, wte, wpe, x->B, x->T, C);
        return;
    }
    const pb_embed_hook *eh = embed_hook(m);
    eh->fwd(eh->self, m->prompt);
    for (int i = 0; i < x->B; i++) {
        float *seq = m->encoded + (size_t)i * x->Tm * C;
        if (wpe) pb_add_fwd(seq, m->prompt, wpe, (size_t)x->Pe * C);
        else pb_copy(seq, m->prompt, (size_t)x->Pe * C);
        pb_embedding_fwd(seq + (size_t)x->Pe * C, b->ids + (size_t)i * x->T, wte, wpe ? wpe + (size_t)x->Pe * C : NULL,
                         1, x->T, C);
    }
}

pb_status pb_model_forward(pb_model *m, const pb_batch *b, int training, float *loss) {
    if (!m->plan_ready) {
        pb_status st = pb_model_prepare(m);
        if (st) return st;
    }
    pb_dims x = make_dims(m, b->B, b->T);
    pb_status st = check_batch(m, b, &x);
    if (st) return st;
    if ((st = ensure_buffers(m, &x, training))) return st;
    if (m->hooks && m->hooks->begin && (st = (pb_status)m->hooks->begin(m->hooks->self, b->B, x.Tm, training)))
        return st;
    const pb_model_desc *d = &m->d;
    const int B = x.B, N = x.N, C = d->d_model, L = d->n_layer;
    int floor = training ? m->floor : L;
    m->dim = x;

    /* token mask and LM targets over the model's positions (virtual tokens: real, ignored) */
    for (int i = 0; i < B; i++)
        for (int t = 0; t < x.Tm; t++) {
            int r = t - x.Pe;
            m->mask_m[(size_t)i * x.Tm + t] = r < 0 ? 1 : b->mask ? b->mask[(size_t)i * x.T + r] : 1;
            if (m->head == PB_HEAD_LM) m->targets_m[(size_t)i * x.Tm + t] = r < 0 ? -1 : b->targets[(size_t)i * x.T + r];
        }
    if (x.Pk)
        for (int i = 0; i < B; i++) memcpy(m->kmask + (size_t)i * x.Tk + x.Pk, m->mask_m + (size_t)i * x.Tm, (size_t)x.Tm);

    embed_fwd(m, b, &x);
    const float *h = m->encoded;
    for (int l = 0; l < L; l++) {
        pb_layer_acts *a = l >= floor ? &m->acts[l] : &m->scratch_acts;
        if (l < floor) a->out = m->scratch_out[l % 2]; /* ping-pong: layer l reads the other one */
        m->block->fwd(m, l, a, h, &x);
        h = a->out;
    }
    m->lnf_in = h;
    pb_blk_norm_fwd(m, -1, PB_SITE_LN_F, m->lnf, m->lnf_mean, m->lnf_rstd, h, N);

    int rows, classes;
    const int32_t *targets;
    if (m->head == PB_HEAD_LM) {
        pb_linear_fwd(m->logits, m->lnf, lm_head(m)->data, NULL, N, C, d->vocab);
        rows = N;
        classes = d->vocab;
        targets = m->targets_m;
    } else {
        for (int i = 0; i < B; i++) {
            int idx = 0;
            if (d->causal) {
                idx = b->T - 1;
                if (b->mask)
                    while (idx > 0 && !b->mask[(size_t)i * b->T + idx]) idx--;
            }
            m->pool_idx[i] = x.Pe + idx;
            memcpy(m->pooled + (size_t)i * C, m->lnf + ((size_t)i * x.Tm + x.Pe + idx) * C, sizeof(float) * (size_t)C);
        }
        site_fwd(m, -1, PB_SITE_HEAD, m->logits, m->pooled, m->global.w[PB_SITE_HEAD], m->global.b[PB_SITE_HEAD], B);
        rows = B;
        classes = m->n_labels;
        targets = b->targets;
    }
    pb_crossentropy_fwd(m->losses, m->probs, m->logits, targets, rows, classes);
    double sum = 0.0;
    int count = 0;
    for (int i = 0; i < rows; i++)
        if (targets[i] >= 0) {
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

/* d(encoded) in dres: token embeddings, positions, and the virtual tokens. */
static void embed_bwd(pb_model *m, const pb_dims *x) {
    const pb_batch *b = &m->last;
    int C = m->d.d_model;
    const pb_tensor *wte = m->global.w[PB_SITE_EMBED], *wpe = m->global.w[PB_SITE_POS];
    float *dwte = tr(wte) ? wte->grad : NULL, *dwpe = tr(wpe) ? wpe->grad : NULL;
    const pb_embed_hook *eh = embed_hook(m);
    if (!x->Pe) {
        if (dwte || dwpe) pb_embedding_bwd(dwte, dwpe, m->dres, b->ids, x->B, x->T, C);
        return;
    }
    size_t PC = (size_t)x->Pe * C;
    memset(m->dprompt, 0, sizeof(float) * PC);
    for (int i = 0; i < x->B; i++) {
        const float *seq = m->dres + (size_t)i * x->Tm * C;
        for (size_t j = 0; j < PC; j++) m->dprompt[j] += seq[j];
        if (dwte || dwpe)
            pb_embedding_bwd(dwte, dwpe ? dwpe + PC : NULL, seq + PC, b->ids + (size_t)i * x->T, 1, x->T, C);
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, (uint64_t)x->B * PC);
    if (dwpe)
        for (size_t j = 0; j < PC; j++) dwpe[j] += m->dprompt[j]; /* positions 0..Pe of the virtual tokens */
    if (eh->trainable) eh->bwd(eh->self, m->dprompt);
}

void pb_model_backward(pb_model *m) {
    assert(m->last_training && "backward needs a training forward");
    const pb_model_desc *d = &m->d;
    const pb_dims *x = &m->dim;
    const int B = x->B, N = x->N, C = d->d_model, L = d->n_layer;
    if (m->last_count == 0) return;
    float scale = 1.0f / (float)m->last_count;
    int gl = m->g_lnf;

    /* Head and loss. */
    if (gl) pb_zero(m->dln, (size_t)N * C);
    if (m->head == PB_HEAD_LM) {
        const pb_tensor *lm = lm_head(m);
        if (gl || tr(lm)) {
            pb_zero(m->dlogits, (size_t)N * d->vocab);
            pb_crossentropy_bwd(m->dlogits, m->probs, m->targets_m, scale, N, d->vocab);
            pb_linear_bwd(gl ? m->dln : NULL, tr(lm) ? lm->grad : NULL, NULL, m->dlogits, m->lnf, lm->data, N, C,
                          d->vocab);
        }
    } else {
        int K = m->n_labels;
        const pb_tensor *hw = m->global.w[PB_SITE_HEAD], *hb = m->global.b[PB_SITE_HEAD];
        if (gl || tr(hw) || tr(hb)) {
            memset(m->dlogits, 0, (size_t)B * K * sizeof(float));
            pb_crossentropy_bwd(m->dlogits, m->probs, m->last.targets, scale, B, K);
            if (gl) memset(m->dpooled, 0, (size_t)B * C * sizeof(float));
            site_bwd(m, -1, PB_SITE_HEAD, gl ? m->dpooled : NULL, m->dlogits, m->pooled, hw, hb, B);
            if (gl)
                for (int i = 0; i < B; i++) {
                    float *dst = m->dln + ((size_t)i * x->Tm + m->pool_idx[i]) * C;
                    const float *src = m->dpooled + (size_t)i * C;
                    for (int c = 0; c < C; c++) dst[c] += src[c];
                }
        }
    }
    if (!gl) return;

    /* Final norm, then the blocks from the top down to the floor. */
    pb_zero(m->dres, (size_t)N * C);
    int need_top = m->plan[L - 1].out;
    pb_blk_norm_bwd(m, -1, PB_SITE_LN_F, need_top ? m->dres : NULL, m->dln, m->lnf_in, m->lnf_mean, m->lnf_rstd, N);
    for (int l = L - 1; l >= 0; l--) {
        if (!m->plan[l].out) return;
        m->block->bwd(m, l, &m->acts[l], m->dres, x);
        if (!m->plan[l].in) return;
    }
    embed_bwd(m, x);
}

pb_status pb_model_optimizer(pb_model *m, const pb_adamw_config *oc, pb_adamw *opt) {
    int nseg = pb_model_segments(m, NULL);
    pb_segment *seg = malloc(sizeof *seg * (size_t)(nseg ? nseg : 1));
    if (!seg) return pb_errorf(PB_ENOMEM, "out of memory");
    pb_model_segments(m, seg);
    pb_status st = pb_adamw_init(opt, oc, seg, nseg);
    free(seg);
    return st;
}
