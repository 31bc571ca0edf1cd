/* method.h — the PEFT method interface: one `const pb_method` per file in methods/.
 *
 * Design: docs/METHODS.md. How to add one: methods/README.md. A method declares itself (name,
 * category, hyperparameters) and fills the functions it needs; the framework (peft.h) parses
 * specs, allocates tensors, installs hooks on the model, counts, merges. Everything a method
 * declares at attach time is sizes only, so the same code counts real foundation models
 * without allocating them.
 *
 * Shapes: N rows of the current batch (B * Tm), C d_model, F d_ff, L layers, IC/OC the in/out
 * features of a linear site, P virtual tokens or prefix length.
 */
#ifndef PB_METHOD_H
#define PB_METHOD_H

#include <stddef.h>
#include <stdint.h>

#include "models/desc.h"
#include "models/flops.h"
#include "models/hooks.h"
#include "models/model.h"
#include "pb_error.h"
#include "pb_rng.h"

#define PB_METHOD_VERSION 1
#define PB_MAX_HP 16

#define PB_CATEGORY_MAP(X)                             \
    X(SELECTIVE, "selective")                          \
    X(ADDITIVE, "additive")                            \
    X(PROMPT, "prompt")                                \
    X(REPARAM, "reparameterization")                   \
    X(HYBRID, "hybrid")

typedef enum {
#define PB_CAT_ENUM(e, name) PB_CAT_##e,
    PB_CATEGORY_MAP(PB_CAT_ENUM)
#undef PB_CAT_ENUM
    PB_NCATEGORY
} pb_category;

const char *pb_category_name(pb_category c);

/* TEXT: free text (no ',' since ',' separates key=value pairs; at most PB_HP_TEXT_MAX bytes). */
typedef enum { PB_HP_INT, PB_HP_FLOAT, PB_HP_BOOL, PB_HP_ENUM, PB_HP_SITES, PB_HP_TEXT } pb_hp_type;
#define PB_HP_TEXT_MAX 159

typedef struct {
    const char *key;     /* our name: "r" */
    const char *aliases; /* other accepted spellings, space-separated ("lora_r"), or NULL */
    pb_hp_type type;
    const char *def;     /* default as text ("8", "q_proj+v_proj", "none"); "" = empty list */
    double lo, hi;       /* INT/FLOAT range, inclusive */
    const char *choices; /* ENUM: "none|all|lora_only" */
    const char *help;
} pb_hparam;

/* Parsed values, indexed like the method's hparams. */
typedef struct {
    double num[PB_MAX_HP];        /* INT, FLOAT, BOOL (0/1), ENUM (choice index) */
    uint32_t sites[PB_MAX_HP];    /* SITES: mask over pb_site */
    int given[PB_MAX_HP];         /* set by the spec (not the default) */
    char raw[PB_MAX_HP][PB_HP_TEXT_MAX + 1]; /* SITES: the names as written, for per-name
                                                validation; TEXT: the text */
} pb_hp_values;

typedef struct pb_method pb_method;
typedef struct pb_peft pb_peft;
typedef struct pb_method_ctx pb_method_ctx;

/* One attached method instance. */
struct pb_method_ctx {
    const pb_method *method;
    pb_peft *peft;
    const pb_model_desc *d;  /* the model's descriptor */
    int n_labels;            /* classification labels (0: LM head) */
    pb_hp_values hp;
    void *state;             /* method->state_size bytes, zeroed before attach */
    int first_param, n_params; /* its tensors: peft->params[first_param ..] */
    int freeze_head;         /* set by attach to keep the task head frozen */
    int merged;
    uint64_t seed;
    /* the current batch (valid in hooks) */
    int B, Tm, N, training;
    uint64_t step;           /* training forwards so far (the framework counts them before
                                `begin`); a dropout mask is a function of (seed, step, index):
                                pb_ctx_dropout_seed */
    int hold;                /* set by pb_peft_hold (tests): forwards replay the last training
                                forward: the step is not advanced, and detached quantities
                                (DoRA's weight norm) keep their values, so the loss is the
                                surrogate whose exact gradient the backward computes */
    float *acts, *work;      /* its saved activations and workspace, as declared */
};

struct pb_method {
    int version;             /* PB_METHOD_VERSION */
    const char *name;        /* spec name, Hugging Face PEFT's where it has the method */
    pb_category category;
    const char *summary;     /* one line */
    const char *paper;       /* "Hu et al. 2021, LoRA: ... (arXiv:2106.09685)" */
    const pb_hparam *hparams;
    int n_hparams;
    /* Per SITES hyperparameter (same index): the Hugging Face PEFT mapping whose entry for a real
     * model's model_type is its default there ("lora", "ia3", "ia3_ff", "ln_tuning"); NULL keeps
     * the hyperparameter's own default everywhere. */
    const char *hf_map[PB_MAX_HP];
    size_t state_size;
    int identity_at_init;    /* outputs equal the base model's at initialisation */
    int needs_cls_head;      /* only meaningful with a classification head (attach refuses LM) */
    int not_peft;            /* full fine-tuning: no PEFT wrapper, so no copy of the head counted */
    const char *const *examples; /* NULL-terminated specs exercised by the registry tests and
                                    shown by `list methods NAME` (small sizes: the tests run
                                    them on a model with d_model 8 and 32 positions) */

    /* Required. Validates hyperparameters against c->d and declares tensors, unfrozen base
     * tensors, hook points and buffers (sizes only; see the pb_ctx_* calls below). */
    pb_status (*attach)(pb_method_ctx *c);
    /* The trainable-parameter count by the closed form written in the file header, from the
     * hyperparameters, the descriptor and the head kind alone, as a formula over site shapes
     * (pb_desc_site_shape, pb_desc_site_count): what the method adds and unfreezes, without the
     * task head, which the framework adds (pb_peft_closed_form). Tests hold it equal to what
     * attach declared on the test families and on every shape-only real model. */
    size_t (*closed_form)(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head);
    /* Initialises the method's tensors; NULL leaves them zero. */
    void (*init)(pb_method_ctx *c, pb_rng *rng);
    /* Start of every forward (c->B, c->Tm, c->N, c->training, c->step, c->acts, c->work are set).
     * A failure (PB_ENOMEM, ...) with its message fails the forward. */
    pb_status (*begin)(pb_method_ctx *c);

    /* Hooks (models/hooks.h); slot = the number the method gave pb_ctx_hook_*. */
    void (*linear_fwd)(pb_method_ctx *c, int slot, float *out, const float *inp, const pb_tensor *w,
                       const pb_tensor *b, int N);
    void (*linear_bwd)(pb_method_ctx *c, int slot, float *dinp, const float *dout, const float *inp,
                       const pb_tensor *w, const pb_tensor *b, int N);
    void (*sublayer_fwd)(pb_method_ctx *c, int slot, float *h, const float *x, int N);
    void (*sublayer_bwd)(pb_method_ctx *c, int slot, float *dh, float *dx, const float *x, int N, int need_dh);
    void (*prefix_fwd)(pb_method_ctx *c, int layer, float *pk, float *pv);
    void (*prefix_bwd)(pb_method_ctx *c, int layer, const float *dpk, const float *dpv);
    /* The prefix gate of a layer declared with pb_ctx_hook_prefix_gate (hooks.h gate_fwd/bwd). */
    void (*prefix_gate_fwd)(pb_method_ctx *c, int layer, float *g, const float *x, const uint8_t *mask, int B,
                            int Tm);
    void (*prefix_gate_bwd)(pb_method_ctx *c, int layer, float *dx, const float *dg, const float *x,
                            const uint8_t *mask, int B, int Tm);
    void (*embed_fwd)(pb_method_ctx *c, float *prompt);
    void (*embed_bwd)(pb_method_ctx *c, const float *dprompt);

    /* Folds the method into the base weights (c->peft->model is runnable). NULL: cannot. */
    pb_status (*merge)(pb_method_ctx *c);
    /* Nonzero while the method is still choosing what trains, spending training steps on it
     * (sparse's Fisher warm-up: its trainable set is final only after them). NULL: the trainable
     * set is final from the first step. pb_run_cell counts those steps (setup_steps). */
    int (*setting_up)(const pb_method_ctx *c);

    /* Required. Adds to `add` the FLOPs its hooks execute in one forward (e->training: and the
     * backward of one training step) at e's dims and plan, by the kernels' rules (models/flops.h
     * helpers): for a linear hook the whole site, base product included; for sublayer, prefix and
     * embed hooks their bodies (the model's own work around them is pb_flops_base's). From the
     * state attach declared, nothing allocated. Methods without hooks add nothing; hybrids add
     * their parts' (pb_ctx_parts_flops). tests/test_count_flops.c holds it equal to a measured step. */
    void (*flops)(pb_method_ctx *c, const pb_flops_env *e, pb_flops *add);
};

/* The seed of dropout mask `stream` (the method's own number: a target, a layer) of the current
 * training forward: c->seed, c->step and stream mixed, for pb_dropout_fwd/bwd. */
uint64_t pb_ctx_dropout_seed(const pb_method_ctx *c, int stream);

/* ---- hyperparameters (valid from attach on) ------------------------------------------------- */

long pb_hp_int(const pb_method_ctx *c, const char *key);
double pb_hp_float(const pb_method_ctx *c, const char *key);
int pb_hp_bool(const pb_method_ctx *c, const char *key);
int pb_hp_enum(const pb_method_ctx *c, const char *key);       /* index into choices */
uint32_t pb_hp_sites(const pb_method_ctx *c, const char *key); /* mask over pb_site */
const char *pb_hp_text(const pb_method_ctx *c, const char *key); /* "" when not given */
/* The sites of a SITES hyperparameter that this model has, restricted to `allowed`; PB_EINVAL
 * naming the first name that matches none of them (and listing what the model has). */
pb_status pb_ctx_sites(const pb_method_ctx *c, const char *key, uint32_t allowed, uint32_t *mask);
/* The same on a value set, for closed_form. */
double pb_hpv_num(const pb_method *m, const pb_hp_values *v, const char *key);
uint32_t pb_hpv_sites(const pb_method *m, const pb_hp_values *v, const char *key);
const char *pb_hpv_text(const pb_method *m, const pb_hp_values *v, const char *key);
/* The sites SITES hyperparameter i selects on d, restricted to `allowed`, resolved name by name as
 * pb_ctx_sites does at attach (pb_desc_target_sites: a real model's own module names), for
 * closed_form. */
uint32_t pb_hpv_sites_on(const pb_hp_values *v, int i, const pb_model_desc *d, uint32_t allowed);

/* ---- declarations during attach ------------------------------------------------------------- */

/* An added tensor (d1 = 0 for a vector). Keep the handle, not the pointer: the table may move
 * while tensors are being declared. A hybrid composes its parts before declaring its own
 * tensors (each instance's tensors are one contiguous range). trainable = 0 declares a frozen buffer (VeRA's
 * shared projections): allocated and booked as frozen, not counted as a parameter.
 * Returns a handle for pb_ctx_tensor. */
int pb_ctx_param(pb_method_ctx *c, const char *name, int layer, pb_site site, int d0, int d1, int trainable);
/* The tensor behind a handle (data/grad valid once allocated; NULL data in shape-only mode). */
pb_tensor *pb_ctx_tensor(pb_method_ctx *c, int handle);
/* Base tensors: the model's table (runnable) or the layout's (shape-only). */
int pb_ctx_n_base(const pb_method_ctx *c);
const pb_tensor *pb_ctx_base(const pb_method_ctx *c, int i);
/* The base tensor of a site's weight / bias (NULL if none). */
const pb_tensor *pb_ctx_site_weight(const pb_method_ctx *c, int layer, pb_site site);
const pb_tensor *pb_ctx_site_bias(const pb_method_ctx *c, int layer, pb_site site);
/* Hugging Face PEFT's num_transformer_submodules: 2 for an encoder-decoder with its LM head
 * (SEQ_2_SEQ_LM: prompt tuning and p-tuning learn separate virtual tokens for the decoder), else 1.
 * pb_hf_submodules: the same from the descriptor and head, for closed_form. */
int pb_ctx_submodules(const pb_method_ctx *c);
int pb_hf_submodules(const pb_model_desc *d, pb_head_kind head);
/* The blocks a prefix attaches to: every block, or an encoder-decoder's encoder blocks (PEFT's
 * num_layers = config.num_layers; the decoder reuses them). pb_hf_prefix_layers: for closed_form. */
int pb_ctx_prefix_layers(const pb_method_ctx *c);
int pb_hf_prefix_layers(const pb_model_desc *d);
/* For closed forms: the parameters of every norm of d at `sites` (a mask; each occurrence: every
 * block that has it, both final norms of an encoder-decoder, the embedding norm), gain and bias
 * from pb_desc_site_shape (2C for LayerNorm, C for RMSNorm). ln_tuning and double_seq_bn's
 * layer_norms. */
size_t pb_norms_closed_form(const pb_model_desc *d, pb_head_kind head, uint32_t sites);
/* Trains base tensor i in place. */
void pb_ctx_unfreeze(pb_method_ctx *c, int base_index);
/* Trains base tensor i as Hugging Face PEFT does with a module it copies (modules_to_save, LN
 * tuning): the same training here, but the copy counts in "all params" (docs/COUNT.md). */
void pb_ctx_unfreeze_copy(pb_method_ctx *c, int base_index);
/* Hook points. `slot` is the method's own number for this attachment (usually the index of
 * its target in the method's state); the hook functions receive it back, so no method has to
 * look its targets up. An error (PB_EINVAL) if another method already holds the same linear
 * site or sub-layer. */
pb_status pb_ctx_hook_linear(pb_method_ctx *c, int layer, pb_site site, int slot);
pb_status pb_ctx_hook_sublayer(pb_method_ctx *c, int layer, pb_sublayer which, int slot);
pb_status pb_ctx_hook_prefix(pb_method_ctx *c, int layer, int P);
/* Gates the prefix c declared on `layer` per sequence (the method's prefix_gate_fwd/bwd). */
pb_status pb_ctx_hook_prefix_gate(pb_method_ctx *c, int layer);
pb_status pb_ctx_hook_embed(pb_method_ctx *c, int P);
/* Buffers for the current batch: saved activations (booked PB_MEM_ACTS) and workspace
 * (PB_MEM_WORKSPACE), in floats per row (N) plus a fixed count. Accumulates over calls. */
void pb_ctx_acts(pb_method_ctx *c, size_t per_row, size_t fixed);
void pb_ctx_work(pb_method_ctx *c, size_t per_row, size_t fixed);
/* The closed form of a part's spec (hybrids' closed_form); 0 if the spec does not parse. */
size_t pb_part_closed_form(const char *spec, const pb_model_desc *d, pb_head_kind head);
/* Attaches another method as a part of this one (hybrids): spec "NAME:key=value,...". */
pb_status pb_ctx_compose(pb_method_ctx *c, const char *spec, pb_method_ctx **part);
/* The FLOPs of the parts c composed (each part's own flops function). */
void pb_ctx_parts_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *add);
/* A method without hooks adds no FLOPs of its own (selective methods). */
void pb_flops_none(pb_method_ctx *c, const pb_flops_env *e, pb_flops *add);

/* ---- the registry (method_list.h) ----------------------------------------------------------- */

int pb_method_count(void);
const pb_method *pb_method_at(int i);
const pb_method *pb_method_find(const char *name);

#endif
