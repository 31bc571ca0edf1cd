/* sparse.c — sparse fine-tuning: a fixed set of base weight entries trains, the rest is frozen.
 *
 * A fraction `density` of the entries of the targeted weight matrices (default: every linear
 * weight matrix of the backbone) is chosen once and only those change:
 *   W = W0 + scatter(delta),   delta (k), k = floor(density * T),  T = targeted weight entries
 * chosen over all targets together (one global top-k, as FISH mask) by `criterion`:
 *   fisher     largest empirical Fisher, sum over examples of the squared per-example gradient
 *              (Sung et al. 2021, FISH mask: "label" sampling, "square" gradients)
 *   magnitude  largest |W0|
 *   random     a uniform random k-subset (the instance's seed)
 * The task head trains in full, as in FISH (which keeps the classifier trainable).
 * Default density 0.005 (0.5%, FISH's GLUE setting).
 *
 * Fisher and data: a method sees the model at attach, not the data. So criterion=fisher uses
 * the first `fisher_samples` training examples (FISH: num_samples, 1024 at batch size 1; default
 * here 128) as its Fisher pass: during those warm-up steps the hooks accumulate, per example b,
 * (c_b G_b)^2 with G_b = dy_b^T x_b the weight gradient of its rows (the batch-mean loss is
 * rescaled to the example's own mean loss: c_b = count / count_b targets), and nothing but the
 * task head trains (delta is not yet applied and gets no gradient). The selection happens at the
 * start of the first training forward after that; from then on the method is the same as with
 * the other criteria. Deviations from FISH: the Fisher is taken at the model the first training
 * steps see (the head moves during them); FISH computes it in a separate pass before training
 * and budgets keep_num = int(keep_ratio * all parameters) - classifier size over all parameters.
 * The warm-up steps are steps of the run's budget: the method reports them (setting_up), and
 * pb_run_cell records how many in pb_run_result.setup_steps (with the defaults, batch 16 and 128
 * samples: 8 steps). (An API that would avoid the warm-up: a `prepare(ctx, batches)` call from
 * the harness before training; the interface has none.) A choice that fails (out of memory)
 * fails the forward that asked for it.
 * magnitude and random choose at initialisation.
 *
 * Forward: the hook keeps W updated in place, W[idx] = W0[idx] + delta, then runs the frozen
 * product (k adds per forward). The model therefore carries W0 + delta at every moment (as a
 * merged model does); merge writes it one last time. Starts exactly at the base model.
 * Backward: the dense weight gradient G = dy^T x (OC, IC) is computed into the workspace and
 * gathered, d delta += G[idx] — so bwd_w FLOPs are those of full fine-tuning on the targeted
 * sites (2 N IC OC per site), only the memory is sparse.
 *
 * Memory (honest about the sparse part): trainable = k exactly; gradient 4k bytes; frozen
 * buffers (not parameters): the index list (k, 32-bit, stored in a float-sized buffer) and W0 at
 * the chosen entries (k); with criterion=fisher, the Fisher accumulator (T floats, kept for the
 * instance's life since the interface has no release hook); workspace: G (max OC IC), and with
 * criterion=fisher one float per row for the per-example scales.
 * Closed form: trainable = floor(density * T), T = the sum over targeted per-layer sites (each
 * occurrence) of IC * OC (all-linear on the GPT-style backbone: T = L (4 C^2 + 2 C F)); the task
 * head is the framework's to count.
 */
#include "lowrank.h"
#include "pb_mem.h"
#include "peft.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { HP_DENSITY, HP_CRITERION, HP_TARGETS, HP_SAMPLES };
enum { CRIT_FISHER, CRIT_MAGNITUDE, CRIT_RANDOM };

static const pb_hparam sparse_hparams[] = {
    [HP_DENSITY] = {"density", "keep_ratio", PB_HP_FLOAT, "0.005", 1e-9, 1, NULL,
                    "fraction of the targeted weight entries that train"},
    [HP_CRITERION] = {"criterion", NULL, PB_HP_ENUM, "fisher", 0, 0, "fisher|magnitude|random",
                      "how entries are chosen: empirical Fisher, largest |w|, or at random"},
    [HP_TARGETS] = {"targets", "target_modules", PB_HP_SITES, "all-linear", 0, 0, NULL,
                    "weight matrices to choose from (site names or Hugging Face module names, joined by +)"},
    [HP_SAMPLES] = {"fisher_samples", "num_samples", PB_HP_INT, "128", 1, 1e9, NULL,
                    "training examples whose squared gradients form the Fisher (criterion=fisher)"},
};

typedef struct {
    int crit;
    size_t k, total;                         /* chosen entries; targeted entries T */
    int n;                                   /* targets */
    int where[PB_LOWRANK_MAX_TARGETS];        /* layer * PB_NSITE + site of target i */
    int ic[PB_LOWRANK_MAX_TARGETS], oc[PB_LOWRANK_MAX_TARGETS];
    size_t off[PB_LOWRANK_MAX_TARGETS], cnt[PB_LOWRANK_MAX_TARGETS]; /* target i's range of the list */
    int fisher[PB_LOWRANK_MAX_TARGETS];      /* Fisher accumulators (OC, IC), criterion=fisher */
    int delta, idx, w0;                      /* (k) each: trainable; frozen index list; frozen W0 */
    size_t max_w;
    uint64_t samples, seen;                  /* Fisher examples wanted / accumulated */
    int selected, counted;
} sparse_state;

static size_t chosen(double density, size_t total) { return (size_t)floor(density * (double)total); }

static pb_status sparse_attach(pb_method_ctx *c) {
    sparse_state *s = c->state;
    uint32_t sites;
    pb_status st = pb_ctx_sites(c, "targets", PB_LOWRANK_SITES, &sites);
    if (st) return st;
    s->crit = pb_hp_enum(c, "criterion");
    s->samples = (uint64_t)pb_hp_int(c, "fisher_samples");
    pb_site first = PB_SITE_Q;
    for (int l = 0; l < c->d->n_layer; l++) /* per-layer sites only (global ones: docs/COUNT.md) */
        for (int site = 0; site < PB_NSITE; site++) {
            if (!(sites & (1u << site))) continue;
            const pb_tensor *w = pb_ctx_site_weight(c, l, (pb_site)site);
            if (!w) continue;
            if (s->n == PB_LOWRANK_MAX_TARGETS)
                return pb_errorf(PB_EINVAL, "sparse: more than %d targets", PB_LOWRANK_MAX_TARGETS);
            if (w->numel > UINT32_MAX)
                return pb_errorf(PB_EINVAL, "sparse: layer %s has more than 2^32 entries", w->name);
            int i = s->n++;
            if (i == 0) first = (pb_site)site;
            s->where[i] = l * PB_NSITE + site; /* where target i sits */
            if ((st = pb_ctx_hook_linear(c, l, (pb_site)site, i))) return st;
            s->oc[i] = w->shape[0];
            s->ic[i] = w->shape[1];
            s->total += w->numel;
            if (w->numel > s->max_w) s->max_w = w->numel;
        }
    double density = pb_hp_float(c, "density");
    s->k = chosen(density, s->total);
    if (s->k == 0)
        return pb_errorf(PB_EINVAL, "sparse: density=%g chooses no entry of the %zu targeted weights; use density >= %g",
                         density, s->total, 1.0 / (double)s->total);
    if (s->k > INT_MAX) return pb_errorf(PB_EINVAL, "sparse: density=%g chooses more than 2^31 entries", density);
    s->delta = pb_ctx_param(c, "sparse.delta", -1, first, (int)s->k, 0, 1);
    s->idx = pb_ctx_param(c, "sparse.index", -1, first, (int)s->k, 0, 0);
    s->w0 = pb_ctx_param(c, "sparse.base", -1, first, (int)s->k, 0, 0);
    if (s->crit == CRIT_FISHER)
        for (int i = 0; i < s->n; i++) {
            const pb_tensor *w = pb_ctx_site_weight(c, s->where[i] / PB_NSITE, (pb_site)(s->where[i] % PB_NSITE));
            char name[64];
            snprintf(name, sizeof name, "%.30s.sparse_fisher", w->name);
            s->fisher[i] = pb_ctx_param(c, name, w->layer, w->site, s->oc[i], s->ic[i], 0);
        }
    pb_ctx_work(c, s->crit == CRIT_FISHER ? 1 : 0, s->max_w); /* G; the per-example scales (B <= N) */
    return PB_OK;
}

static size_t sparse_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head) {
    uint32_t sites = pb_hpv_sites_on(hp, HP_TARGETS, d, PB_LOWRANK_SITES);
    size_t total = 0, ic, oc;
    for (int s = 0; s < PB_NSITE; s++)
        if ((sites & (1u << s)) && pb_site_per_layer((pb_site)s)) { /* per-layer sites only, as attach */
            pb_lowrank_site_dims((pb_site)s, d, &ic, &oc);
            total += (size_t)pb_desc_site_count(d, head, (pb_site)s) * ic * oc;
        }
    return chosen(hp->num[HP_DENSITY], total);
}

/* ---- choosing the entries ------------------------------------------------------------------- */

static const pb_tensor *target_weight(pb_method_ctx *c, const sparse_state *s, int i) {
    return pb_ctx_site_weight(c, s->where[i] / PB_NSITE, (pb_site)(s->where[i] % PB_NSITE));
}

/* The score of entry j of target i as an order-preserving key: scores are >= 0 (|w|, sums of
 * squares), whose IEEE bit patterns sort as the numbers do. */
static uint32_t score_key(pb_method_ctx *c, const sparse_state *s, int i, size_t j) {
    float v = s->crit == CRIT_MAGNITUDE ? fabsf(target_weight(c, s, i)->data[j])
                                        : pb_ctx_tensor(c, s->fisher[i])->data[j];
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* Appends entry j of target i to the list. */
static void take(pb_method_ctx *c, sparse_state *s, int i, size_t j, size_t *n) {
    uint32_t *idx = (uint32_t *)pb_ctx_tensor(c, s->idx)->data; /* (k) */
    idx[*n] = (uint32_t)j;
    s->cnt[i]++;
    (*n)++;
}

/* The k largest scores over all targets, ties broken by position: a two-level radix select on the
 * 32-bit keys (16 high bits, then 16 low bits within the threshold's bucket), then one pass that
 * takes every key above the threshold and the first ties. Three passes, 2^16 counters. */
static pb_status choose_top(pb_method_ctx *c, sparse_state *s) {
    size_t *hist = pb_alloc(sizeof(size_t) << 16, PB_MEM_WORKSPACE);
    if (!hist) return pb_errorf(PB_ENOMEM, "sparse: out of memory choosing entries");
    uint32_t thr = 0;
    size_t above = 0; /* keys strictly above the current bucket */
    for (int level = 0; level < 2; level++) {
        memset(hist, 0, sizeof(size_t) << 16);
        for (int i = 0; i < s->n; i++)
            for (size_t j = 0; j < (size_t)s->oc[i] * s->ic[i]; j++) {
                uint32_t key = score_key(c, s, i, j);
                if (level == 0) hist[key >> 16]++;
                else if ((key >> 16) == (thr >> 16)) hist[key & 0xffffu]++;
            }
        uint32_t b = 0xffffu;
        while (above + hist[b] < s->k) above += hist[b--]; /* k <= count, so b stays >= 0 */
        thr |= level == 0 ? b << 16 : b;
    }
    pb_free(hist);
    size_t ties = s->k - above, n = 0;
    for (int i = 0; i < s->n; i++) {
        s->off[i] = n;
        for (size_t j = 0; j < (size_t)s->oc[i] * s->ic[i]; j++) {
            uint32_t key = score_key(c, s, i, j);
            if (key > thr || (key == thr && ties > 0)) {
                if (key == thr) ties--;
                take(c, s, i, j, &n);
            }
        }
    }
    return n == s->k ? PB_OK : pb_errorf(PB_EINTERNAL, "sparse: chose %zu entries, expected %zu", n, s->k);
}

/* A uniform random k-subset, in order (selection sampling, Knuth's algorithm S). */
static void choose_random(pb_method_ctx *c, sparse_state *s, pb_rng *rng) {
    size_t n = 0, left = s->total;
    for (int i = 0; i < s->n; i++) {
        s->off[i] = n;
        for (size_t j = 0; j < (size_t)s->oc[i] * s->ic[i]; j++, left--)
            if (pb_rng_below(rng, left) < s->k - n) take(c, s, i, j, &n);
    }
}

/* Chooses the entries, records W0 at them; delta is 0, so W is unchanged. A failure (out of
 * memory) is returned: the instance stays unselected and the forward that asked fails. */
static pb_status choose(pb_method_ctx *c, sparse_state *s, pb_rng *rng) {
    memset(s->cnt, 0, sizeof s->cnt);
    if (s->crit == CRIT_RANDOM) choose_random(c, s, rng);
    else {
        pb_status st = choose_top(c, s);
        if (st) return st;
    }
    const uint32_t *idx = (const uint32_t *)pb_ctx_tensor(c, s->idx)->data;
    float *w0 = pb_ctx_tensor(c, s->w0)->data;
    for (int i = 0; i < s->n; i++) {
        const float *w = target_weight(c, s, i)->data;
        for (size_t j = s->off[i]; j < s->off[i] + s->cnt[i]; j++) w0[j] = w[idx[j]];
    }
    s->selected = 1;
    return PB_OK;
}

static void sparse_init(pb_method_ctx *c, pb_rng *rng) {
    sparse_state *s = c->state;
    /* magnitude: out of memory leaves it unselected, and the first forward retries (and fails) */
    if (s->crit != CRIT_FISHER) (void)choose(c, s, rng); /* delta stays 0 */
}

static pb_status sparse_begin(pb_method_ctx *c) {
    sparse_state *s = c->state;
    s->counted = 0;
    if (s->selected) return PB_OK;
    if (s->crit == CRIT_MAGNITUDE) return choose(c, s, NULL); /* init could not */
    if (s->crit == CRIT_FISHER && c->training && s->seen >= s->samples) return choose(c, s, NULL);
    return PB_OK;
}

/* Still in the Fisher warm-up: the steps so far trained only the task head. */
static int sparse_setting_up(const pb_method_ctx *c) {
    const sparse_state *s = c->state;
    return s->crit == CRIT_FISHER && !s->selected;
}

/* ---- hooks ---------------------------------------------------------------------------------- */

/* W[idx] = W0[idx] + delta over target i's entries. FLOPs: fwd OTHER cnt. */
static void apply(pb_method_ctx *c, const sparse_state *s, int i, float *w) {
    const uint32_t *idx = (const uint32_t *)pb_ctx_tensor(c, s->idx)->data;
    const float *w0 = pb_ctx_tensor(c, s->w0)->data, *delta = pb_ctx_tensor(c, s->delta)->data;
    for (size_t j = s->off[i]; j < s->off[i] + s->cnt[i]; j++) w[idx[j]] = w0[j] + delta[j];
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, s->cnt[i]);
}

static void sparse_fwd(pb_method_ctx *c, int slot, float *out, const float *x, const pb_tensor *w, const pb_tensor *b,
                       int N) {
    sparse_state *s = c->state;
    int i = slot;
    if (s->selected && s->cnt[i]) apply(c, s, i, w->data);
    pb_site_base_fwd(out, x, w, b, N);
}

/* Fisher warm-up: F += (c_b dy_b^T x_b)^2 for each example b of the batch (c_b = 0: no target,
 * skipped). The scales sit in the workspace behind G. */
static void accumulate_fisher(pb_method_ctx *c, sparse_state *s, int i, const float *dout, const float *x) {
    const pb_model *m = c->peft->model;
    int OC = s->oc[i], IC = s->ic[i], Tm = c->Tm;
    float *F = pb_ctx_tensor(c, s->fisher[i])->data, *G = c->work; /* (OC, IC) each */
    float *scale = c->work + s->max_w;                              /* (B) */
    for (int b = 0; b < c->B; b++) {
        int cb = 1; /* classification: one target per example */
        if (m->head == PB_HEAD_LM) {
            cb = 0;
            for (int t = 0; t < m->last.T; t++) cb += m->last.targets[(size_t)b * m->last.T + t] >= 0;
        }
        scale[b] = cb ? (float)m->last_count / (float)cb : 0.0f;
    }
    pb_fisher_accum(F, G, dout, x, scale, c->B, Tm, IC, OC);
    if (!s->counted) {
        s->seen += (uint64_t)c->B;
        s->counted = 1;
    }
}

static void sparse_bwd(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *x,
                       const pb_tensor *w, const pb_tensor *b, int N) {
    sparse_state *s = c->state;
    int i = slot, OC = s->oc[i], IC = s->ic[i];
    pb_site_base_bwd(dinp, dout, x, w, b, N);
    if (!s->selected) {
        if (s->crit == CRIT_FISHER) accumulate_fisher(c, s, i, dout, x);
        return;
    }
    if (!s->cnt[i]) return;
    /* dense G = dy^T x, gathered at the chosen entries */
    float *G = c->work; /* (OC, IC) */
    pb_gemm(PB_PHASE_BWD_W, 1, 0, OC, IC, N, 1.0f, dout, OC, x, IC, 0.0f, G, IC);
    const uint32_t *idx = (const uint32_t *)pb_ctx_tensor(c, s->idx)->data;
    float *gd = pb_ctx_tensor(c, s->delta)->grad;
    for (size_t j = s->off[i]; j < s->off[i] + s->cnt[i]; j++) gd[j] += G[idx[j]];
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, s->cnt[i]);
}

static pb_status sparse_merge(pb_method_ctx *c) {
    sparse_state *s = c->state;
    if (s->selected)
        for (int i = 0; i < s->n; i++) apply(c, s, i, ((pb_tensor *)target_weight(c, s, i))->data);
    return PB_OK;
}

static const char *const sparse_examples[] = {
    "sparse:criterion=magnitude", "sparse:density=0.05,criterion=random,targets=q_proj+c_fc",
    "sparse:density=0.1,criterion=magnitude,targets=v+c_proj", "sparse:density=0.02,fisher_samples=2", NULL};

static void sparse_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

const pb_method pb_method_sparse = {
    .version = PB_METHOD_VERSION,
    .name = "sparse",
    .category = PB_CAT_SELECTIVE,
    .summary = "sparse fine-tuning: a fixed fraction of weight entries (Fisher, magnitude or random) trains",
    .paper = "Sung et al. 2021, Training Neural Networks with Fixed Sparse Masks (FISH mask, arXiv:2111.09839)",
    .hparams = sparse_hparams,
    .n_hparams = sizeof sparse_hparams / sizeof sparse_hparams[0],
    .state_size = sizeof(sparse_state),
    .identity_at_init = 1,
    .examples = sparse_examples,
    .attach = sparse_attach,
    .closed_form = sparse_closed_form,
    .init = sparse_init,
    .begin = sparse_begin,
    .linear_fwd = sparse_fwd,
    .linear_bwd = sparse_bwd,
    .merge = sparse_merge,
    .setting_up = sparse_setting_up,
    .flops = sparse_flops,
};

/* FLOPs per target: the frozen product; once entries are chosen, the k adds that keep W current
 * (forward) and the dense weight gradient with its gather (backward); during a Fisher warm-up
 * (runnable, not yet chosen) the per-example gradients instead. Shape-only models have not
 * chosen: they count the state after the choice, every target holding entries (k in total). */
static void sparse_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f) {
    const sparse_state *s = c->state;
    uint64_t N = (uint64_t)e->x.N;
    int warm = !s->selected && s->crit == CRIT_FISHER && c->peft->model;
    for (int i = 0; i < s->n; i++) {
        int l = s->where[i] / PB_NSITE, dinp;
        pb_site site = (pb_site)(s->where[i] % PB_NSITE);
        uint64_t IC = (uint64_t)s->ic[i], OC = (uint64_t)s->oc[i];
        uint64_t cnt = s->selected ? s->cnt[i] : (i == 0 ? s->k : 0); /* shape-only: k in total */
        int has = s->selected ? s->cnt[i] > 0 : 1;
        if (!warm && has) pb_flops_put(f, PB_PHASE_FWD, PB_KIND_OTHER, cnt);
        pb_flops_site_base(e, l, site, (int)N, (int)IC, (int)OC, f);
        if (!pb_flops_site_bwd(e, l, site, &dinp)) continue;
        if (warm) {
            for (int b = 0; b < e->x.B; b++) {
                pb_flops_gemm(f, PB_PHASE_BWD_W, OC, IC, (uint64_t)e->x.Tm);
                pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, 3 * OC * IC);
            }
        } else if (has) {
            pb_flops_gemm(f, PB_PHASE_BWD_W, OC, IC, N);
            pb_flops_put(f, PB_PHASE_BWD_W, PB_KIND_OTHER, cnt);
        }
    }
}
