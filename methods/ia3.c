/* ia3.c — (IA)^3: learned vectors that rescale activations (Liu et al. 2022; Hugging Face PEFT
 * IA3Config, src/peft/tuners/ia3/{config,layer}.py).
 *
 * What it is: every targeted linear site gets one trainable vector l:
 *   output scaling (attention keys and values by default):  y = (x W^T + b) * l,   l (OC)
 *   input scaling (feedforward_modules, mlp.down by default): y = (x * l) W^T + b,  l (IC)
 * so l_k and l_v rescale the key and value projections and l_ff rescales the input of the MLP
 * down-projection (the GELU output), as the paper's Eq. (l_ff ⊙ gamma(W_1 x)) W_2.
 * Defaults as Hugging Face's for a LLaMA-style model (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES
 * _MAPPING "llama": k_proj, v_proj, down_proj; feedforward: down_proj). Its GPT-2 entry names
 * the fused c_attn (q, k and v) instead; our backbone has separate projections, so k and v.
 * Initialisation: l = 1 (init_ia3_weights=True), so the model starts exactly at the base model.
 * feedforward_modules must be a subset of target_modules when given (PEFT raises otherwise);
 * the default is intersected with the targets, as PEFT's per-model default is. An empty list
 * (feedforward_modules=) scales every target's output.
 *
 * Closed form: the sum over targeted sites (each occurrence) of OC (output-scaled) or IC
 * (input-scaled), from the site shapes (pb_desc_site_shape); the task head is the framework's to
 * count. Defaults on the GPT-style backbone (L layers, width C, MLP width F):
 *   trainable = L (C + C + F).
 * Saved per row: the base output (OC) of every output-scaled site (for d l). Workspace per row:
 * the largest of 2 IC (input-scaled: x * l, and d(x * l)) and OC (output-scaled: dout * l).
 *
 * Merge: output scaling folds into the rows of W and into b (W[o,:] *= l[o], b[o] *= l[o]), as
 * PEFT's merge does; input scaling into the columns of W (W[:,i] *= l[i]). The merged model is
 * the base model's graph, so inference FLOPs are the base model's.
 *
 * Letters: N rows, IC/OC in/out features of a site, C d_model, F d_ff, L layers, K labels.
 */
#include "method.h"
#include "lowrank.h"
#include "kernels.h"

#include <stdio.h>
#include <string.h>

enum { HP_TARGETS, HP_FF };

static const pb_hparam ia3_hparams[] = {
    [HP_TARGETS] = {"targets", "target_modules", PB_HP_SITES, "k_proj+v_proj+down_proj", 0, 0, NULL,
                    "linear sites that get an (IA)^3 vector (site names or Hugging Face module names, joined by +)"},
    [HP_FF] = {"feedforward", "feedforward_modules", PB_HP_SITES, "down_proj", 0, 0, NULL,
               "targets whose INPUT is scaled (the others scale their output); a subset of targets"},
};

#define LINEAR_SITES PB_LOWRANK_SITES
#define MAX_TARGETS 1024

typedef struct {
    int n;
    int l[MAX_TARGETS];          /* tensor handles */
    int ff[MAX_TARGETS];         /* 1: input scaling */
    int ic[MAX_TARGETS], oc[MAX_TARGETS];
    size_t acts_off[MAX_TARGETS]; /* floats per row before this target's saved output */
} ia3_state;

/* The feedforward mask within the targets, as attach computes it (for closed_form). */
static uint32_t ff_mask(const pb_hp_values *hp, const pb_model_desc *d, uint32_t targets) {
    return hp->raw[HP_FF][0] ? pb_hpv_sites_on(hp, HP_FF, d, LINEAR_SITES) & targets : 0;
}

static pb_status ia3_attach(pb_method_ctx *c) {
    ia3_state *s = c->state;
    uint32_t sites, ff = 0;
    pb_status st = pb_ctx_sites(c, "targets", LINEAR_SITES, &sites);
    if (st) return st;
    if (c->hp.raw[HP_FF][0]) {
        if ((st = pb_ctx_sites(c, "feedforward", LINEAR_SITES, &ff))) return st;
        if (c->hp.given[HP_FF] && (ff & ~sites))
            return pb_errorf(PB_EINVAL, "ia3: feedforward=%s is not a subset of targets=%s", c->hp.raw[HP_FF],
                             c->hp.raw[HP_TARGETS]);
        ff &= sites;
    }
    size_t acts = 0, work = 0;
    for (int l = -1; l < c->d->n_layer; l++) /* -1: global linear sites (real models) */
        for (int site = 0; site < PB_NSITE; site++) {
            if (!(sites & (1u << site))) continue;
            const pb_tensor *w = pb_ctx_site_weight(c, l, (pb_site)site);
            if (!w) continue;
            if (s->n == MAX_TARGETS) return pb_errorf(PB_EINVAL, "ia3: more than %d targets", MAX_TARGETS);
            int i = s->n++;
            if ((st = pb_ctx_hook_linear(c, l, (pb_site)site, i))) return st;
            s->oc[i] = w->shape[0];
            s->ic[i] = w->shape[1];
            s->ff[i] = (ff >> site) & 1u;
            char name[64];
            snprintf(name, sizeof name, "%.40s.ia3_l", w->name);
            s->l[i] = pb_ctx_param(c, name, l, (pb_site)site, s->ff[i] ? s->ic[i] : s->oc[i], 0, 1);
            s->acts_off[i] = acts;
            if (s->ff[i]) {
                if (2 * (size_t)s->ic[i] > work) work = 2 * (size_t)s->ic[i];
            } else {
                acts += (size_t)s->oc[i];
                if ((size_t)s->oc[i] > work) work = (size_t)s->oc[i];
            }
        }
    pb_ctx_acts(c, acts, 0);
    pb_ctx_work(c, work, 0);
    return PB_OK;
}

static size_t ia3_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    uint32_t sites = pb_hpv_sites_on(hp, HP_TARGETS, d, LINEAR_SITES), ff = ff_mask(hp, d, sites);
    size_t n = 0;
    for (int s = 0; s < PB_NSITE; s++) {
        int ic, oc;
        if (!(sites & (1u << s)) || !pb_desc_site_shape(d, (pb_site)s, &ic, &oc, NULL)) continue;
        n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * (size_t)((ff >> s) & 1u ? ic : oc);
    }
    return n;
}

static void ia3_init(pb_method_ctx *c, pb_rng *rng) {
    (void)rng;
    ia3_state *s = c->state;
    for (int i = 0; i < s->n; i++) {
        pb_tensor *t = pb_ctx_tensor(c, s->l[i]);
        for (size_t j = 0; j < t->numel; j++) t->data[j] = 1.0f;
    }
}

/* xs (N,IC) = x * l, row by row. */
static void scale_cols(float *xs, const float *x, const float *l, int N, int IC) { pb_scale_cols(xs, x, l, N, IC, 0); }

static void ia3_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                    int N) {
    ia3_state *s = c->state;
    int i = slot, ic = s->ic[i], oc = s->oc[i];
    const float *l = pb_ctx_tensor(c, s->l[i])->data;
    if (s->ff[i]) {
        float *xs = c->work; /* (N,IC) */
        scale_cols(xs, x, l, N, ic);
        pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)N * ic);
        pb_site_base_fwd(out, xs, w, b, N);
        return;
    }
    float *base = c->acts + s->acts_off[i] * (size_t)N; /* (N,OC) saved */
    pb_site_base_fwd(base, x, w, b, N);
    scale_cols(out, base, l, N, oc);
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)N * oc);
}

static void ia3_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x, const pb_tensor *w,
                    const pb_tensor *b, int N) {
    ia3_state *s = c->state;
    int i = slot, ic = s->ic[i], oc = s->oc[i];
    pb_tensor *lt = pb_ctx_tensor(c, s->l[i]);
    const float *l = lt->data;
    float *dl = lt->grad;
    int base_trains = w->trainable || (b && b->trainable);
    if (s->ff[i]) {
        /* y = xs W^T + b, xs = x * l:  g = dy W;  dl += sum_n x * g;  dinp += g * l */
        float *xs = c->work, *g = c->work + (size_t)N * ic; /* (N,IC) each */
        if (w->trainable) {
            scale_cols(xs, x, l, N, ic); /* the base weight's gradient needs the scaled input */
            pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)N * ic);
        }
        pb_zero(g, (size_t)N * ic);
        pb_site_base_bwd(g, dout, xs, w, b, N);
        pb_colsum(dl, x, g, N, ic);
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * (uint64_t)N * ic);
        if (dinp) {
            pb_scale_cols(dinp, g, l, N, ic, 1);
            pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, (uint64_t)N * ic);
        }
        return;
    }
    /* y = base * l:  dl += sum_n dy * base;  d(base) = dy * l into the frozen product */
    const float *base = c->acts + s->acts_off[i] * (size_t)N;
    pb_colsum(dl, dout, base, N, oc);
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * (uint64_t)N * oc);
    if (!dinp && !base_trains) return;
    float *dbase = c->work; /* (N,OC) */
    scale_cols(dbase, dout, l, N, oc);
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, (uint64_t)N * oc);
    pb_site_base_bwd(dinp, dbase, x, w, b, N);
}

static pb_status ia3_merge(pb_method_ctx *c) {
    ia3_state *s = c->state;
    for (int i = 0; i < s->n; i++) {
        const pb_tensor *lt = pb_ctx_tensor(c, s->l[i]);
        pb_tensor *w = (pb_tensor *)pb_ctx_site_weight(c, lt->layer, lt->site);
        pb_tensor *b = (pb_tensor *)pb_ctx_site_bias(c, lt->layer, lt->site);
        int ic = s->ic[i], oc = s->oc[i];
        const float *l = lt->data;
        /* W (OC, IC): input scaling multiplies column i, output scaling row o (and b[o]) */
        for (int o = 0; o < oc; o++)
            for (int j = 0; j < ic; j++) w->data[(size_t)o * ic + j] *= s->ff[i] ? l[j] : l[o];
        if (!s->ff[i] && b)
            for (int o = 0; o < oc; o++) b->data[o] *= l[o];
        pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)oc * ic + (!s->ff[i] && b ? (uint64_t)oc : 0));
    }
    return PB_OK;
}

static const char *const ia3_examples[] = {
    "ia3", "ia3:target_modules=q_proj+k_proj+v_proj+c_fc+down_proj,feedforward_modules=c_fc+down_proj",
    "ia3:targets=attn.o+mlp.up,feedforward=", NULL};

static void ia3_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_ia3 = {
    .version = PB_METHOD_VERSION,
    .name = "ia3",
    .category = PB_CAT_ADDITIVE,
    .summary = "(IA)^3: learned vectors rescale keys, values and the MLP down-projection input",
    .paper = "Liu et al. 2022, Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context "
             "Learning (arXiv:2205.05638)",
    .hparams = ia3_hparams,
    .hf_map = {[HP_TARGETS] = "ia3", [HP_FF] = "ia3_ff"},
    .n_hparams = sizeof ia3_hparams / sizeof ia3_hparams[0],
    .state_size = sizeof(ia3_state),
    .identity_at_init = 1,
    .examples = ia3_examples,
    .attach = ia3_attach,
    .closed_form = ia3_closed_form,
    .init = ia3_init,
    .linear_fwd = ia3_fwd,
    .linear_bwd = ia3_bwd,
    .merge = ia3_merge,
    .flops = ia3_flops,
};

/* FLOPs per target: the scaling (of the input for feed-forward targets, of the output otherwise)
 * around the frozen product, and their backward as ia3_bwd runs it. */
static void ia3_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const ia3_state *s = c->state;
    uint64_t N = (uint64_t)e->x.N;
    for (int i = 0; i < s->n; i++) {
        const pb_tensor *t = pb_ctx_tensor(c, s->l[i]);
        int l = t->layer, dinp, ic = s->ic[i], oc = s->oc[i];
        if (l < 0) continue; /* global sites of shape-only models: counted, never hooked */
        pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, N * (uint64_t)(s->ff[i] ? ic : oc));
        pb_flops_linear_fwd(f, N, (uint64_t)ic, (uint64_t)oc, pb_ctx_site_bias(c, l, t->site) != NULL);
        if (!pb_flops_site_bwd(e, l, t->site, &dinp)) continue;
        int wtr = pb_flops_site_tr(e, l, t->site, 0), btr = pb_flops_site_tr(e, l, t->site, 1);
        if (s->ff[i]) {
            if (wtr) pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, N * (uint64_t)ic);
            pb_flops_site_base_bwd(e, l, t->site, (int)N, ic, oc, 1, f);
            pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * N * (uint64_t)ic);
            if (dinp) pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, N * (uint64_t)ic);
            continue;
        }
        pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * N * (uint64_t)oc);
        if (!dinp && !wtr && !btr) continue;
        pb_flops_put(f, PB_PHASE_BWD_IN, PB_KIND_OTHER, N * (uint64_t)oc);
        pb_flops_site_base_bwd(e, l, t->site, (int)N, ic, oc, dinp, f);
    }
}
