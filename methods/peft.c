/* peft.c — spec parsing, attach, tensor blocks, hook dispatch, counting, merge (see peft.h). */
#include "peft.h"
#include "kernels.h"
#include "pb_mem.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- registry ------------------------------------------------------------------------------- */

#define PB_METHOD(name) extern const pb_method pb_method_##name;
#include "method_list.h"
#undef PB_METHOD

static const pb_method *const g_methods[] = {
#define PB_METHOD(name) &pb_method_##name,
#include "method_list.h"
#undef PB_METHOD
};

int pb_method_count(void) { return (int)(sizeof g_methods / sizeof g_methods[0]); }
const pb_method *pb_method_at(int i) { return i >= 0 && i < pb_method_count() ? g_methods[i] : NULL; }

const pb_method *pb_method_find(const char *name) {
    for (int i = 0; i < pb_method_count(); i++)
        if (!strcmp(g_methods[i]->name, name)) return g_methods[i];
    return NULL;
}

const char *pb_category_name(pb_category c) {
    static const char *names[] = {
#define PB_CAT_NAME(e, name) name,
        PB_CATEGORY_MAP(PB_CAT_NAME)
#undef PB_CAT_NAME
    };
    return c >= 0 && c < PB_NCATEGORY ? names[c] : "?";
}

/* ---- hyperparameters ------------------------------------------------------------------------ */

static int hp_index(const pb_method *m, const char *key) {
    for (int i = 0; i < m->n_hparams; i++) {
        if (!strcmp(m->hparams[i].key, key)) return i;
        const char *a = m->hparams[i].aliases;
        size_t n = strlen(key);
        while (a && *a) {
            const char *end = strchr(a, ' ');
            size_t len = end ? (size_t)(end - a) : strlen(a);
            if (len == n && !strncmp(a, key, n)) return i;
            a = end ? end + 1 : NULL;
        }
    }
    return -1;
}

static int must_index(const pb_method *m, const char *key) {
    int i = hp_index(m, key);
    assert(i >= 0 && "method asked for a hyperparameter it does not declare");
    return i;
}

long pb_hp_int(const pb_method_ctx *c, const char *key) { return (long)c->hp.num[must_index(c->method, key)]; }
double pb_hp_float(const pb_method_ctx *c, const char *key) { return c->hp.num[must_index(c->method, key)]; }
int pb_hp_bool(const pb_method_ctx *c, const char *key) { return c->hp.num[must_index(c->method, key)] != 0; }
int pb_hp_enum(const pb_method_ctx *c, const char *key) { return (int)c->hp.num[must_index(c->method, key)]; }
uint32_t pb_hp_sites(const pb_method_ctx *c, const char *key) { return c->hp.sites[must_index(c->method, key)]; }
const char *pb_hp_text(const pb_method_ctx *c, const char *key) { return c->hp.raw[must_index(c->method, key)]; }
const char *pb_hpv_text(const pb_method *m, const pb_hp_values *v, const char *key) { return v->raw[must_index(m, key)]; }
double pb_hpv_num(const pb_method *m, const pb_hp_values *v, const char *key) { return v->num[must_index(m, key)]; }
uint32_t pb_hpv_sites(const pb_method *m, const pb_hp_values *v, const char *key) {
    return v->sites[must_index(m, key)];
}

uint32_t pb_hpv_sites_on(const pb_hp_values *v, int i, const pb_model_desc *d, uint32_t allowed) {
    char buf[PB_HP_TEXT_MAX + 1];
    uint32_t mask = 0;
    snprintf(buf, sizeof buf, "%s", v->raw[i]);
    for (char *save = NULL, *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save))
        mask |= pb_desc_target_sites(d, t) & allowed;
    return mask;
}

pb_status pb_ctx_sites(const pb_method_ctx *c, const char *key, uint32_t allowed, uint32_t *mask) {
    int i = must_index(c->method, key);
    uint32_t have = pb_desc_sites(c->d) & allowed;
    char buf[160], names[512];
    size_t n = 0;
    names[0] = '\0';
    for (int s = 0; s < PB_NSITE; s++)
        if (have & (1u << s)) n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", n ? ", " : "", pb_site_name((pb_site)s));
    snprintf(buf, sizeof buf, "%s", c->hp.raw[i]);
    *mask = 0;
    for (char *save = NULL, *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
        uint32_t s = pb_desc_target_sites(c->d, t) & allowed;
        if (!s && strcmp(t, "all-linear") != 0)
            return pb_errorf(PB_EINVAL, "%s: %s: '%s' matches no site of %s that %s can use (it has: %s)",
                             c->method->name, key, t, c->d->name, c->method->name, names);
        *mask |= s;
    }
    if (!*mask)
        return pb_errorf(PB_EINVAL, "%s: %s is empty (sites of %s it can use: %s)", c->method->name, key, c->d->name, names);
    return PB_OK;
}

static void list_keys(const pb_method *m, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->n_hparams && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", m->hparams[i].key);
    if (!m->n_hparams) snprintf(buf, cap, "(none)");
}

static pb_status set_value(const pb_method *m, int i, const char *val, pb_hp_values *v) {
    const pb_hparam *h = &m->hparams[i];
    char *end;
    errno = 0;
    switch (h->type) {
    case PB_HP_INT: {
        long x = strtol(val, &end, 10);
        if (errno || end == val || *end || x < h->lo || x > h->hi)
            return pb_errorf(PB_EINVAL, "%s: %s=%s is not an integer in [%g, %g]", m->name, h->key, val, h->lo, h->hi);
        v->num[i] = (double)x;
        return PB_OK;
    }
    case PB_HP_FLOAT: {
        double x = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(x) || x < h->lo || x > h->hi)
            return pb_errorf(PB_EINVAL, "%s: %s=%s is not a number in [%g, %g]", m->name, h->key, val, h->lo, h->hi);
        v->num[i] = x;
        return PB_OK;
    }
    case PB_HP_BOOL:
        if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes")) v->num[i] = 1;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no")) v->num[i] = 0;
        else return pb_errorf(PB_EINVAL, "%s: %s=%s is not a boolean (accepted: 1, 0, true, false)", m->name, h->key, val);
        return PB_OK;
    case PB_HP_ENUM: {
        const char *a = h->choices;
        int k = 0;
        size_t n = strlen(val);
        while (a && *a) {
            const char *e = strchr(a, '|');
            size_t len = e ? (size_t)(e - a) : strlen(a);
            if (len == n && !strncmp(a, val, n)) {
                v->num[i] = k;
                return PB_OK;
            }
            k++;
            a = e ? e + 1 : NULL;
        }
        return pb_errorf(PB_EINVAL, "%s: %s=%s is not one of %s", m->name, h->key, val, h->choices);
    }
    case PB_HP_SITES: {
        uint32_t mask = 0;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", val);
        for (char *save = NULL, *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
            uint32_t s = pb_site_lookup(t);
            for (int z = 0; !s && pb_zoo_at(z); z++) s = pb_desc_target_sites(pb_zoo_at(z), t); /* HF names */
            if (!s) {
                char names[2048];
                pb_site_describe_names(names, sizeof names);
                return pb_errorf(PB_EINVAL, "%s: %s: unknown site '%s' (accepted: %s)", m->name, h->key, t, names);
            }
            mask |= s;
        }
        v->sites[i] = mask;
        snprintf(v->raw[i], sizeof v->raw[i], "%s", val);
        return PB_OK;
    }
    case PB_HP_TEXT:
        if (strlen(val) > PB_HP_TEXT_MAX)
            return pb_errorf(PB_EINVAL, "%s: %s is longer than %d bytes (%zu)", m->name, h->key, PB_HP_TEXT_MAX,
                             strlen(val));
        snprintf(v->raw[i], sizeof v->raw[i], "%s", val);
        return PB_OK;
    }
    return pb_errorf(PB_EINTERNAL, "bad hyperparameter type");
}

pb_status pb_peft_parse(const char *spec, const pb_method **method, pb_hp_values *v) {
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof name) return pb_errorf(PB_EINVAL, "bad method spec '%s' (expected NAME[:key=value,...])", spec);
    memcpy(name, spec, n);
    name[n] = '\0';
    const pb_method *m = pb_method_find(name);
    if (!m) {
        char list[1024];
        size_t k = 0;
        for (int i = 0; i < pb_method_count() && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", pb_method_at(i)->name);
        return pb_errorf(PB_EINVAL, "unknown method '%s' (accepted: %s)", name, list);
    }
    assert(m->n_hparams <= PB_MAX_HP);
    memset(v, 0, sizeof *v);
    pb_status st;
    for (int i = 0; i < m->n_hparams; i++)
        if (m->hparams[i].def[0] && (st = set_value(m, i, m->hparams[i].def, v))) return st;
    if (!colon || !colon[1]) {
        *method = m;
        return PB_OK;
    }
    char buf[1024];
    if (strlen(colon + 1) >= sizeof buf) return pb_errorf(PB_EINVAL, "method spec too long");
    strcpy(buf, colon + 1);
    int last = -1; /* the hyperparameter of the previous key=value */
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        char keys[512];
        list_keys(m, keys, sizeof keys);
        if (!eq && last >= 0 && m->hparams[last].type == PB_HP_SITES) {
            /* a site list continued after a comma, as Hugging Face's target_modules lists are
             * written: targets=q_proj,v_proj means targets=q_proj+v_proj */
            char joined[PB_HP_TEXT_MAX + 2];
            if ((size_t)snprintf(joined, sizeof joined, "%s+%s", v->raw[last], kv) > PB_HP_TEXT_MAX)
                return pb_errorf(PB_EINVAL, "%s: %s is longer than %d bytes", m->name, m->hparams[last].key,
                                 PB_HP_TEXT_MAX);
            if ((st = set_value(m, last, joined, v))) return st;
            continue;
        }
        if (!eq)
            return pb_errorf(PB_EINVAL, "%s: '%s' is not key=value (keys: %s; a site list is joined by '+')", m->name,
                             kv, keys);
        *eq = '\0';
        int i = hp_index(m, kv);
        if (i < 0) return pb_errorf(PB_EINVAL, "%s: unknown hyperparameter '%s' (accepted: %s)", m->name, kv, keys);
        if ((st = set_value(m, i, eq + 1, v))) return st;
        v->given[i] = 1;
        last = i;
    }
    *method = m;
    return PB_OK;
}

/* ---- declarations during attach ------------------------------------------------------------- */

int pb_ctx_param(pb_method_ctx *c, const char *name, int layer, pb_site site, int d0, int d1, int trainable) {
    pb_peft *p = c->peft;
    assert((c->n_params == 0 || c->first_param + c->n_params == p->n_params) &&
           "an instance's tensors must be declared together (compose parts first)");
    if (p->n_params == p->cap_params) {
        int cap = p->cap_params ? 2 * p->cap_params : 64;
        pb_tensor *t = realloc(p->params, sizeof *t * (size_t)cap);
        if (!t) return -1;
        p->params = t;
        p->cap_params = cap;
    }
    pb_tensor *t = &p->params[p->n_params];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->site = site;
    t->layer = layer;
    t->ndim = d1 > 0 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1 > 0 ? d1 : 0;
    t->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    t->trainable = trainable;
    if (c->n_params == 0) c->first_param = p->n_params;
    c->n_params++;
    return p->n_params++ - c->first_param;
}

pb_tensor *pb_ctx_tensor(pb_method_ctx *c, int handle) { return &c->peft->params[c->first_param + handle]; }
int pb_ctx_n_base(const pb_method_ctx *c) { return c->peft->n_base; }
const pb_tensor *pb_ctx_base(const pb_method_ctx *c, int i) { return &c->peft->base[i]; }

static const pb_tensor *site_tensor(const pb_method_ctx *c, int layer, pb_site site, int bias) {
    for (int i = 0; i < c->peft->n_base; i++) {
        const pb_tensor *t = &c->peft->base[i];
        if (t->layer == layer && t->site == site && t->is_bias == bias) return t;
    }
    return NULL;
}

const pb_tensor *pb_ctx_site_weight(const pb_method_ctx *c, int layer, pb_site site) {
    return site_tensor(c, layer, site, 0);
}
const pb_tensor *pb_ctx_site_bias(const pb_method_ctx *c, int layer, pb_site site) {
    return site_tensor(c, layer, site, 1);
}

void pb_ctx_unfreeze(pb_method_ctx *c, int i) {
    if (!c->peft->unfrozen[i]) c->peft->unfrozen[i] = 1;
}
int pb_hf_submodules(const pb_model_desc *d, pb_head_kind head) {
    return d->arch == PB_ARCH_ENCDEC && head == PB_HEAD_LM ? 2 : 1;
}
int pb_hf_prefix_layers(const pb_model_desc *d) { return d->arch == PB_ARCH_ENCDEC ? d->n_enc_layer : d->n_layer; }
size_t pb_norms_closed_form(const pb_model_desc *d, pb_head_kind head, uint32_t sites) {
    size_t n = 0;
    for (int s = 0; s < PB_NSITE; s++)
        if ((sites >> s) & 1u) n += (size_t)pb_desc_site_count(d, head, (pb_site)s) * pb_desc_site_params(d, (pb_site)s);
    return n;
}
int pb_ctx_submodules(const pb_method_ctx *c) { return pb_hf_submodules(c->d, c->peft->head); }
int pb_ctx_prefix_layers(const pb_method_ctx *c) { return pb_hf_prefix_layers(c->d); }
void pb_ctx_unfreeze_copy(pb_method_ctx *c, int i) { c->peft->unfrozen[i] = 2; }

static pb_status need_layer(const pb_method_ctx *c, int layer) {
    if (layer < 0 || layer >= c->d->n_layer)
        return pb_errorf(PB_EINVAL, "%s: layer %d out of range [0, %d)", c->method->name, layer, c->d->n_layer);
    return PB_OK;
}

pb_status pb_ctx_hook_linear(pb_method_ctx *c, int layer, pb_site site, int slot) {
    /* Global linear sites (OPT-350m's projections, BERT's pooler) exist only in shape-only models,
     * where nothing runs: counted, not hooked. */
    if (layer < 0 && !c->peft->model && pb_site_is_linear(site) && !pb_site_per_layer(site)) return PB_OK;
    pb_status st = need_layer(c, layer);
    if (st) return st;
    pb_binding *b = &c->peft->lin_b[(size_t)layer * PB_NSITE + site];
    if (b->c)
        return pb_errorf(PB_EINVAL, "%s: site %s of layer %d is already taken by %s", c->method->name,
                         pb_site_name(site), layer, b->c->method->name);
    b->c = c;
    b->slot = slot;
    return PB_OK;
}

pb_status pb_ctx_hook_sublayer(pb_method_ctx *c, int layer, pb_sublayer which, int slot) {
    pb_status st = need_layer(c, layer);
    if (st) return st;
    pb_binding *b = &c->peft->sub_b[(size_t)layer * PB_NSUB + which];
    if (b->c)
        return pb_errorf(PB_EINVAL, "%s: the %s sub-layer of layer %d is already taken by %s", c->method->name,
                         which == PB_SUB_ATTN ? "attention" : "MLP", layer, b->c->method->name);
    b->c = c;
    b->slot = slot;
    return PB_OK;
}

pb_status pb_ctx_hook_prefix(pb_method_ctx *c, int layer, int P) {
    pb_status st = need_layer(c, layer);
    if (st) return st;
    pb_binding *b = &c->peft->pre_b[layer];
    if (b->c)
        return pb_errorf(PB_EINVAL, "%s: layer %d already has a prefix from %s", c->method->name, layer,
                         b->c->method->name);
    b->c = c;
    b->slot = layer;
    c->peft->pre[layer].P = P;
    return PB_OK;
}

static void tr_pre_gate_fwd(void *self, float *g, const float *x, const uint8_t *mask, int B, int Tm);
static void tr_pre_gate_bwd(void *self, float *dx, const float *dg, const float *x, const uint8_t *mask, int B,
                            int Tm);

pb_status pb_ctx_hook_prefix_gate(pb_method_ctx *c, int layer) {
    pb_status st = need_layer(c, layer);
    if (st) return st;
    assert(c->peft->pre_b[layer].c == c && "gate a prefix the method declared");
    assert(c->method->prefix_gate_fwd && c->method->prefix_gate_bwd);
    c->peft->pre[layer].gate_fwd = tr_pre_gate_fwd; /* kept by build_hooks */
    c->peft->pre[layer].gate_bwd = tr_pre_gate_bwd;
    return PB_OK;
}

pb_status pb_ctx_hook_embed(pb_method_ctx *c, int P) {
    pb_binding *b = &c->peft->embed_b;
    if (b->c) return pb_errorf(PB_EINVAL, "%s: the input already has virtual tokens from %s", c->method->name, b->c->method->name);
    b->c = c;
    c->peft->hooks.embed.P = P;
    return PB_OK;
}

/* Per-context buffer sizes live in the state the framework keeps beside each context. */
typedef struct {
    pb_method_ctx c;
    size_t acts_row, acts_fixed, work_row, work_fixed;
} ctx_box;

void pb_ctx_acts(pb_method_ctx *c, size_t per_row, size_t fixed) {
    ctx_box *x = (ctx_box *)c;
    x->acts_row += per_row;
    x->acts_fixed += fixed;
}

void pb_ctx_work(pb_method_ctx *c, size_t per_row, size_t fixed) {
    ctx_box *x = (ctx_box *)c;
    x->work_row += per_row;
    x->work_fixed += fixed;
}

/* Hugging Face PEFT's default target modules per model_type (src/peft/utils/constants.py:
 * TRANSFORMERS_MODELS_TO_{LORA,IA3,LN_TUNING}_TARGET_MODULES_MAPPING and
 * TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING; LoHa and VeRA copy LoRA's). NULL: the
 * mapping has no entry (PEFT then asks for target_modules). */
static const struct {
    const char *type, *lora, *ia3, *ia3_ff, *ln;
} g_hf_defaults[] = {
    {"gpt2", "c_attn", "c_attn+mlp.c_proj", "mlp.c_proj", "ln_1+ln_2+ln_f"},
    {"bert", "query+value", "key+value+output.dense", "output.dense", NULL},
    {"roberta", "query+value", "key+value+output.dense", "output.dense", NULL},
    {"t5", "q+v", "k+v+wo", "wo", "layer_norm+final_layer_norm"},
    {"mt5", "q+v", "k+v+wi_1", "", "layer_norm+final_layer_norm"},
    {"bloom", "query_key_value", "query_key_value+mlp.dense_4h_to_h", "mlp.dense_4h_to_h",
     "input_layernorm+post_attention_layernorm+ln_f"},
    {"opt", "q_proj+v_proj", "q_proj+k_proj+fc2", "fc2", NULL},
    {"llama", "q_proj+v_proj", "k_proj+v_proj+down_proj", "down_proj", "input_layernorm+post_attention_layernorm+norm"},
    {"mistral", "q_proj+v_proj", "k_proj+v_proj+down_proj", "down_proj", "input_layernorm+post_attention_layernorm+norm"},
    {"qwen2", "q_proj+v_proj", "q_proj+v_proj+down_proj", "down_proj", "post_attention_layernorm"},
    {"vit", NULL, NULL, NULL, NULL},
};

/* On a real model, SITES hyperparameters left at their default take PEFT's default for its
 * model_type. */
static pb_status hf_default_targets(pb_method_ctx *c) {
    const pb_names *n = c->d->names;
    if (!n || !n->type) return PB_OK;
    for (int i = 0; i < c->method->n_hparams; i++) {
        const pb_hparam *h = &c->method->hparams[i];
        const char *map = c->method->hf_map[i];
        if (h->type != PB_HP_SITES || !map || c->hp.given[i]) continue;
        const char *val = NULL;
        int known = 0;
        for (size_t k = 0; k < sizeof g_hf_defaults / sizeof g_hf_defaults[0]; k++) {
            if (strcmp(g_hf_defaults[k].type, n->type)) continue;
            known = 1;
            if (!strcmp(map, "lora")) val = g_hf_defaults[k].lora;
            else if (!strcmp(map, "ia3")) val = g_hf_defaults[k].ia3;
            else if (!strcmp(map, "ia3_ff")) val = g_hf_defaults[k].ia3_ff;
            else if (!strcmp(map, "ln_tuning")) val = g_hf_defaults[k].ln;
        }
        if (!val)
            return pb_errorf(PB_EINVAL,
                             "%s: Hugging Face PEFT has no default %s for %s (model_type %s)%s; give %s=... (names "
                             "of its modules, e.g. %s)",
                             c->method->name, h->key, c->d->name, n->type, known ? "" : " (unknown model_type)",
                             h->key, pb_desc_site_path(c->d, c->d->fused_qkv ? PB_SITE_QKV : PB_SITE_Q, 0));
        snprintf(c->hp.raw[i], sizeof c->hp.raw[i], "%s", val);
        uint32_t mask = 0;
        char buf[PB_HP_TEXT_MAX + 1];
        snprintf(buf, sizeof buf, "%s", val);
        for (char *save = NULL, *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save))
            mask |= pb_desc_target_sites(c->d, t);
        c->hp.sites[i] = mask;
    }
    return PB_OK;
}

static pb_status attach_one(pb_peft *p, const char *spec, uint64_t seed, pb_method_ctx **out) {
    if (p->n_ctx == PB_MAX_PARTS) return pb_errorf(PB_EINVAL, "too many method parts (at most %d)", PB_MAX_PARTS);
    const pb_method *m;
    pb_hp_values v;
    pb_status st = pb_peft_parse(spec, &m, &v);
    if (st) return st;
    if (m->version != PB_METHOD_VERSION)
        return pb_errorf(PB_EINTERNAL, "method %s has interface version %d, expected %d", m->name, m->version,
                         PB_METHOD_VERSION);
    ctx_box *box = calloc(1, sizeof *box);
    if (!box) return pb_errorf(PB_ENOMEM, "out of memory");
    pb_method_ctx *c = &box->c;
    c->method = m;
    c->peft = p;
    c->d = p->d;
    c->n_labels = p->n_labels;
    c->hp = v;
    c->seed = seed;
    if (m->state_size && !(c->state = calloc(1, m->state_size))) {
        free(box);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    p->ctx[p->n_ctx++] = c;
    if ((st = hf_default_targets(c))) return st;
    if ((st = m->attach(c))) return st;
    if (c->n_params == 0) c->first_param = p->n_params;
    *out = c;
    return PB_OK;
}

size_t pb_part_closed_form(const char *spec, const pb_model_desc *d, pb_head_kind head) {
    const pb_method *m;
    pb_hp_values v;
    if (pb_peft_parse(spec, &m, &v) != PB_OK) return 0;
    return m->closed_form(&v, d, head);
}

pb_status pb_ctx_compose(pb_method_ctx *c, const char *spec, pb_method_ctx **part) {
    pb_status st = attach_one(c->peft, spec, c->seed * 31u + (uint64_t)c->peft->n_ctx, part);
    if (st) return pb_error_context(st, "%s", c->method->name);
    return PB_OK;
}

/* ---- hook trampolines ----------------------------------------------------------------------- */

static void tr_lin_fwd(void *self, float *out, const float *inp, const pb_tensor *w, const pb_tensor *b, int N) {
    pb_binding *x = self;
    x->c->method->linear_fwd(x->c, x->slot, out, inp, w, b, N);
}
static void tr_lin_bwd(void *self, float *dinp, const float *dout, const float *inp, const pb_tensor *w,
                       const pb_tensor *b, int N) {
    pb_binding *x = self;
    x->c->method->linear_bwd(x->c, x->slot, dinp, dout, inp, w, b, N);
}
static void tr_sub_fwd(void *self, float *h, const float *in, int N) {
    pb_binding *x = self;
    x->c->method->sublayer_fwd(x->c, x->slot, h, in, N);
}
static void tr_sub_bwd(void *self, float *dh, float *dx, const float *in, int N, int need_dh) {
    pb_binding *x = self;
    x->c->method->sublayer_bwd(x->c, x->slot, dh, dx, in, N, need_dh);
}
static void tr_pre_fwd(void *self, float *pk, float *pv) {
    pb_binding *x = self;
    x->c->method->prefix_fwd(x->c, x->slot, pk, pv);
}
static void tr_pre_bwd(void *self, const float *dpk, const float *dpv) {
    pb_binding *x = self;
    x->c->method->prefix_bwd(x->c, x->slot, dpk, dpv);
}
static void tr_pre_gate_fwd(void *self, float *g, const float *x, const uint8_t *mask, int B, int Tm) {
    pb_binding *b = self;
    b->c->method->prefix_gate_fwd(b->c, b->slot, g, x, mask, B, Tm);
}
static void tr_pre_gate_bwd(void *self, float *dx, const float *dg, const float *x, const uint8_t *mask, int B,
                            int Tm) {
    pb_binding *b = self;
    b->c->method->prefix_gate_bwd(b->c, b->slot, dx, dg, x, mask, B, Tm);
}
static void tr_emb_fwd(void *self, float *prompt) {
    pb_binding *x = self;
    x->c->method->embed_fwd(x->c, prompt);
}
static void tr_emb_bwd(void *self, const float *dprompt) {
    pb_binding *x = self;
    x->c->method->embed_bwd(x->c, dprompt);
}

static int ctx_trains(const pb_method_ctx *c) {
    for (int i = 0; i < c->n_params; i++)
        if (c->peft->params[c->first_param + i].trainable) return 1;
    return 0;
}

/* Fills the model-facing hook tables from the bindings (skipping merged instances). */
static void build_hooks(pb_peft *p) {
    int L = p->d->n_layer;
    for (int i = 0; i < L * PB_NSITE; i++) {
        pb_binding *b = &p->lin_b[i];
        int on = b->c && !b->c->merged;
        p->lin[i] = (pb_linear_hook){.self = b, .trainable = on && ctx_trains(b->c), .fwd = on ? tr_lin_fwd : NULL,
                                     .bwd = on ? tr_lin_bwd : NULL};
    }
    for (int i = 0; i < L * PB_NSUB; i++) {
        pb_binding *b = &p->sub_b[i];
        int on = b->c && !b->c->merged;
        p->sub[i] = (pb_sublayer_hook){.self = b, .trainable = on && ctx_trains(b->c), .fwd = on ? tr_sub_fwd : NULL,
                                       .bwd = on ? tr_sub_bwd : NULL};
    }
    for (int l = 0; l < L; l++) {
        pb_binding *b = &p->pre_b[l];
        int on = b->c && !b->c->merged;
        int P = p->pre[l].P, gated = p->pre[l].gate_fwd != NULL;
        p->pre[l] = (pb_prefix_hook){.self = b, .trainable = on && ctx_trains(b->c), .P = on ? P : 0,
                                     .fwd = on ? tr_pre_fwd : NULL, .bwd = on ? tr_pre_bwd : NULL,
                                     .gate_fwd = on && gated ? tr_pre_gate_fwd : NULL,
                                     .gate_bwd = on && gated ? tr_pre_gate_bwd : NULL};
    }
    pb_binding *e = &p->embed_b;
    int on = e->c && !e->c->merged;
    int P = p->hooks.embed.P;
    p->hooks.embed = (pb_embed_hook){.self = e, .trainable = on && ctx_trains(e->c), .P = on ? P : 0,
                                     .fwd = on ? tr_emb_fwd : NULL, .bwd = on ? tr_emb_bwd : NULL};
}

/* Start of every forward: size the methods' buffers for N rows and let them prepare. */
static int peft_begin(void *self, int B, int Tm, int training) {
    pb_peft *p = self;
    size_t N = (size_t)B * Tm, na = 0, nw = 0;
    for (int i = 0; i < p->n_ctx; i++) {
        ctx_box *x = (ctx_box *)p->ctx[i];
        na += x->acts_row * N + x->acts_fixed;
        nw += x->work_row * N + x->work_fixed;
    }
    if (na > p->cap_acts) {
        pb_free(p->acts_block);
        if (!(p->acts_block = pb_alloc(na * sizeof(float), PB_MEM_ACTS))) return PB_ENOMEM;
        p->cap_acts = na;
    }
    if (nw > p->cap_work) {
        pb_free(p->work_block);
        if (!(p->work_block = pb_alloc(nw * sizeof(float), PB_MEM_WORKSPACE))) return PB_ENOMEM;
        p->cap_work = nw;
    }
    size_t oa = 0, ow = 0;
    for (int i = 0; i < p->n_ctx; i++) {
        ctx_box *x = (ctx_box *)p->ctx[i];
        pb_method_ctx *c = &x->c;
        c->B = B;
        c->Tm = Tm;
        c->N = (int)N;
        c->training = training;
        c->acts = p->acts_block ? p->acts_block + oa : NULL;
        c->work = p->work_block ? p->work_block + ow : NULL;
        oa += x->acts_row * N + x->acts_fixed;
        ow += x->work_row * N + x->work_fixed;
        if (training && !c->hold) c->step++;
        if (c->method->begin && !c->merged) {
            pb_status st = c->method->begin(c);
            if (st) return st;
        }
    }
    return PB_OK;
}

uint64_t pb_ctx_dropout_seed(const pb_method_ctx *c, int stream) {
    return c->seed ^ (c->step * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)stream << 40);
}

int pb_peft_setting_up(const pb_peft *p) {
    for (int i = 0; i < p->n_ctx; i++) {
        const pb_method_ctx *c = p->ctx[i];
        if (c->method->setting_up && c->method->setting_up(c)) return 1;
    }
    return 0;
}

void pb_peft_hold(pb_peft *p, int on) {
    for (int i = 0; i < p->n_ctx; i++) p->ctx[i]->hold = on;
}

/* ---- create / free -------------------------------------------------------------------------- */

pb_status pb_peft_create(pb_peft *p, const char *spec, const pb_model_desc *d, pb_head_kind head, int n_labels,
                         pb_model *model, uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->d = model ? &model->d : d;
    p->head = head;
    p->n_labels = n_labels;
    p->model = model;
    int L = p->d->n_layer;
    if (model) {
        p->base = model->tensors;
        p->n_base = model->n_tensors;
        p->n_base_params = model->n_params;
    } else {
        p->n_base = pb_model_layout(p->d, head, n_labels, NULL, NULL);
        p->base = calloc((size_t)p->n_base, sizeof *p->base);
        if (!p->base) return pb_errorf(PB_ENOMEM, "out of memory");
        p->base_owned = 1;
        pb_model_layout(p->d, head, n_labels, p->base, &p->n_base_params);
    }
    p->unfrozen = calloc((size_t)p->n_base, 1);
    p->lin = calloc((size_t)L * PB_NSITE, sizeof *p->lin);
    p->sub = calloc((size_t)L * PB_NSUB, sizeof *p->sub);
    p->pre = calloc((size_t)L, sizeof *p->pre);
    p->lin_b = calloc((size_t)L * PB_NSITE, sizeof *p->lin_b);
    p->sub_b = calloc((size_t)L * PB_NSUB, sizeof *p->sub_b);
    p->pre_b = calloc((size_t)L, sizeof *p->pre_b);
    if (!p->unfrozen || !p->lin || !p->sub || !p->pre || !p->lin_b || !p->sub_b || !p->pre_b) {
        pb_peft_free(p);
        return pb_errorf(PB_ENOMEM, "out of memory");
    }
    pb_method_ctx *top;
    pb_status st = attach_one(p, spec, seed, &top);
    if (st) {
        pb_peft_free(p);
        return st;
    }
    /* The task head trains unless the method keeps it frozen. */
    if ((head == PB_HEAD_CLS || head == PB_HEAD_TOKCLS) && !top->freeze_head)
        for (int i = 0; i < p->n_base; i++)
            if (p->base[i].site == PB_SITE_HEAD) p->unfrozen[i] = 2;
    if (!model) return PB_OK;

    /* Allocate the added tensors: trainable ones in one block, frozen buffers in another. */
    for (int i = 0; i < p->n_params; i++) {
        if (p->params[i].trainable) p->n_train += p->params[i].numel;
        else p->n_frozen += p->params[i].numel;
    }
    p->train_block = pb_alloc(p->n_train * sizeof(float), PB_MEM_TRAINABLE);
    p->frozen_block = pb_alloc(p->n_frozen * sizeof(float), PB_MEM_FROZEN);
    p->grads = pb_alloc(p->n_train * sizeof(float), PB_MEM_GRADS);
    if (!p->train_block || !p->frozen_block || !p->grads) {
        pb_peft_free(p);
        return PB_ENOMEM;
    }
    size_t ot = 0, of = 0;
    for (int i = 0; i < p->n_params; i++) {
        pb_tensor *t = &p->params[i];
        if (t->trainable) {
            t->data = p->train_block + ot;
            t->grad = p->grads + ot;
            t->offset = ot;
            ot += t->numel;
        } else {
            t->data = p->frozen_block + of;
            t->offset = of;
            of += t->numel;
        }
    }
    for (int i = 0; i < p->n_ctx; i++) {
        pb_method_ctx *c = p->ctx[i];
        if (!c->method->init) continue;
        pb_rng rng;
        pb_rng_seed(&rng, c->seed * 0x9e3779b97f4a7c15ull + (uint64_t)i);
        c->method->init(c, &rng);
    }
    /* Base tensors: exactly the unfrozen ones train. */
    pb_model_set_trainable_all(model, 0);
    for (int i = 0; i < p->n_base; i++)
        if (p->unfrozen[i]) pb_tensor_set_trainable(model, &model->tensors[i], 1);
    build_hooks(p);
    p->hooks.self = p;
    p->hooks.begin = peft_begin;
    p->hooks.linear = p->lin;
    p->hooks.sublayer = p->sub;
    p->hooks.prefix = p->pre;
    pb_model_set_hooks(model, &p->hooks);
    if ((st = pb_model_prepare(model))) {
        pb_peft_free(p);
        return st;
    }
    return PB_OK;
}

void pb_peft_free(pb_peft *p) {
    if (p->model) pb_model_set_hooks(p->model, NULL);
    for (int i = 0; i < p->n_ctx; i++) {
        free(p->ctx[i]->state);
        free((ctx_box *)p->ctx[i]);
    }
    if (p->base_owned) free(p->base);
    free(p->unfrozen);
    free(p->params);
    free(p->lin);
    free(p->sub);
    free(p->pre);
    free(p->lin_b);
    free(p->sub_b);
    free(p->pre_b);
    pb_free(p->train_block);
    pb_free(p->frozen_block);
    pb_free(p->grads);
    pb_free(p->acts_block);
    pb_free(p->work_block);
    memset(p, 0, sizeof *p);
}

/* ---- counting, optimizer, merge ------------------------------------------------------------- */

void pb_peft_counts(const pb_peft *p, size_t *trainable, size_t *all) {
    size_t tr = 0, added = 0, head_copy = 0;
    for (int i = 0; i < p->n_base; i++)
        if (p->unfrozen[i]) {
            tr += p->base[i].numel;
            if (p->unfrozen[i] == 2) head_copy += p->base[i].numel;
        }
    for (int i = 0; i < p->n_params; i++)
        if (p->params[i].trainable) added += p->params[i].numel;
    tr += added;
    *trainable = tr;
    *all = p->n_base_params + added + (p->ctx[0]->method->not_peft ? 0 : head_copy);
}

size_t pb_peft_closed_form(const pb_peft *p) {
    const pb_method_ctx *c = p->ctx[0];
    size_t n = c->method->closed_form ? c->method->closed_form(&c->hp, p->d, p->head) : 0;
    /* the task head trains with every method that does not freeze it (pb_peft_create) */
    return n + (c->freeze_head ? 0 : pb_model_task_head_params(p->d, p->head, p->n_labels));
}

int pb_peft_segments(pb_peft *p, pb_segment *seg) {
    int n = p->model ? pb_model_segments(p->model, seg) : 0;
    for (int i = 0; i < p->n_params; i++) {
        pb_tensor *t = &p->params[i];
        if (!t->trainable) continue;
        if (seg) seg[n] = (pb_segment){.param = t->data, .grad = t->grad, .n = t->numel, .decay = t->ndim == 2};
        n++;
    }
    return n;
}

void pb_peft_zero_grad(pb_peft *p) {
    if (p->model) pb_model_zero_grad(p->model);
    if (p->grads) pb_zero(p->grads, p->n_train);
}

pb_status pb_peft_merge(pb_peft *p) {
    for (int i = 0; i < p->n_ctx; i++) {
        pb_method_ctx *c = p->ctx[i];
        int hooked = 0;
        for (int k = 0; k < p->d->n_layer * PB_NSITE; k++) hooked |= p->lin_b[k].c == c;
        for (int k = 0; k < p->d->n_layer * PB_NSUB; k++) hooked |= p->sub_b[k].c == c;
        for (int k = 0; k < p->d->n_layer; k++) hooked |= p->pre_b[k].c == c;
        hooked |= p->embed_b.c == c;
        if (!hooked || c->merged) continue; /* selective methods change the base in place */
        if (!c->method->merge)
            return pb_errorf(PB_EINVAL, "%s cannot be merged into the base weights", c->method->name);
        pb_status st = c->method->merge(c);
        if (st) return st;
        c->merged = 1;
    }
    build_hooks(p);
    pb_model_set_hooks(p->model, &p->hooks);
    return pb_model_prepare(p->model);
}

size_t pb_peft_adapter_bytes(const pb_peft *p) {
    size_t tr, all;
    pb_peft_counts(p, &tr, &all);
    return tr * sizeof(float);
}

/* ---- FLOPs and memory from shapes (models/flops.h) ------------------------------------------ */

void pb_flops_none(pb_method_ctx *c, const pb_flops_env *e, pb_flops *add) {
    (void)c, (void)e, (void)add;
}

void pb_ctx_parts_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *add) {
    pb_peft *p = c->peft;
    for (int i = 0; i < p->n_ctx; i++)
        if (p->ctx[i] != c && p->ctx[i]->method->flops) p->ctx[i]->method->flops(p->ctx[i], e, add);
}

pb_status pb_peft_plan_in(const pb_peft *p, int no_hooks, pb_plan_in *in, int *Pe, int *Pk) {
    const int L = p->d->n_layer;
    memset(in, 0, sizeof *in);
    pb_plan_layer_in *li = calloc((size_t)(L > 0 ? L : 1), sizeof *li);
    if (!li) return pb_errorf(PB_ENOMEM, "out of memory");
    in->n_layer = L;
    in->layer = li;
    *Pe = *Pk = 0;
    for (int i = 0; i < p->n_base; i++) {
        const pb_tensor *t = &p->base[i];
        if (!p->unfrozen[i]) continue;
        uint32_t *mask = t->layer >= 0 ? (t->is_bias ? &li[t->layer].tr_b : &li[t->layer].tr_w)
                                       : (t->is_bias ? &in->tr_b : &in->tr_w);
        *mask |= 1u << t->site;
    }
    if (no_hooks) return PB_OK;
    for (int l = 0; l < L; l++) {
        for (int s = 0; s < PB_NSITE; s++) {
            const pb_binding *b = &p->lin_b[(size_t)l * PB_NSITE + s];
            if (!b->c) continue;
            li[l].hook |= 1u << s;
            if (ctx_trains(b->c)) li[l].hook_tr |= 1u << s;
        }
        for (int w = 0; w < PB_NSUB; w++) {
            const pb_binding *b = &p->sub_b[(size_t)l * PB_NSUB + w];
            li[l].sub[w] = b->c ? (ctx_trains(b->c) ? 2 : 1) : 0;
        }
        const pb_binding *b = &p->pre_b[l];
        if (b->c && p->pre[l].P > 0) {
            li[l].prefix = ctx_trains(b->c) ? 2 : 1;
            li[l].gated = p->pre[l].gate_fwd != NULL;
            if (p->pre[l].P > *Pk) *Pk = p->pre[l].P;
        }
    }
    if (p->embed_b.c && p->hooks.embed.P > 0) {
        in->embed_hook = ctx_trains(p->embed_b.c) ? 2 : 1;
        *Pe = p->hooks.embed.P;
    }
    return PB_OK;
}

int pb_peft_mergeable(const pb_peft *p) {
    for (int i = 0; i < p->n_ctx; i++) {
        const pb_method_ctx *c = p->ctx[i];
        int hooked = p->embed_b.c == c;
        for (int k = 0; k < p->d->n_layer * PB_NSITE; k++) hooked |= p->lin_b[k].c == c;
        for (int k = 0; k < p->d->n_layer * PB_NSUB; k++) hooked |= p->sub_b[k].c == c;
        for (int k = 0; k < p->d->n_layer; k++) hooked |= p->pre_b[k].c == c;
        if (hooked && !c->merged && !c->method->merge) return 0;
        /* a gated LoRA refuses at merge time */
        if (hooked && !strcmp(c->method->name, "lora") && pb_hp_bool(c, "gate")) return 0;
    }
    return 1;
}

pb_status pb_peft_flops(const pb_peft *p, int B, int T, int training, int merged, pb_flops *out) {
    memset(out, 0, sizeof *out);
    if (merged && !pb_peft_mergeable(p))
        return pb_errorf(PB_EINVAL, "%s cannot be merged into the base weights", p->ctx[0]->method->name);
    pb_plan_in in;
    int Pe, Pk;
    pb_status st = pb_peft_plan_in(p, merged, &in, &Pe, &Pk);
    if (st) return st;
    pb_flops_env e;
    if ((st = pb_flops_env_init(&e, p->d, p->head, p->n_labels, &in, B, T, Pe, Pk, training))) {
        free((void *)in.layer);
        return st;
    }
    pb_flops_base(&e, out);
    if (!merged) {
        pb_method_ctx *c = p->ctx[0];
        assert(c->method->flops && "every method declares its FLOPs");
        c->method->flops(c, &e, out);
    }
    pb_flops_env_free(&e);
    free((void *)in.layer);
    return PB_OK;
}

pb_status pb_peft_mem(const pb_peft *p, int B, int T, pb_precision prec, size_t bytes[PB_MEM_NCAT]) {
    pb_plan_in in;
    int Pe, Pk;
    pb_status st = pb_peft_plan_in(p, 0, &in, &Pe, &Pk);
    if (st) return st;
    pb_flops_env e;
    if ((st = pb_flops_env_init(&e, p->d, p->head, p->n_labels, &in, B, T, Pe, Pk, 1))) {
        free((void *)in.layer);
        return st;
    }
    pb_mem_in mi = {0};
    size_t base_tr = 0;
    for (int i = 0; i < p->n_base; i++)
        if (p->unfrozen[i]) base_tr += p->base[i].numel;
    mi.trainable_params = base_tr;
    mi.frozen_params = p->n_base_params - base_tr;
    for (int i = 0; i < p->n_params; i++)
        if (p->params[i].trainable) mi.trainable_params += p->params[i].numel;
        else mi.frozen_params += p->params[i].numel;
    size_t N = (size_t)e.x.N;
    for (int i = 0; i < p->n_ctx; i++) {
        const ctx_box *x = (const ctx_box *)p->ctx[i];
        mi.method_acts += x->acts_row * N + x->acts_fixed;
        mi.method_work += x->work_row * N + x->work_fixed;
    }
    pb_mem_estimate(&e, &mi, prec, bytes);
    pb_flops_env_free(&e);
    free((void *)in.layer);
    return PB_OK;
}
