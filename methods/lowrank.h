/* lowrank.h — the low-rank pieces shared by the LoRA family (LoRA and DoRA use all of it; VeRA the
 * product and the bias options; LoHa and sparse the site helpers).
 *
 * Two levels, so methods compose them instead of copying:
 *
 *  1. The product and its backward, over plain pointers (A and B may be slices of larger
 *     matrices, given by their row strides):
 *         u (N,r)    = xd (N,IC) A^T              A (r,IC), row stride lda
 *         out (N,OC) = beta out + scale u B^T     B (OC,r), row stride ldb
 *     LoRA passes its own A, B; VeRA passes slices of its shared frozen A and the matrix
 *     diag(lambda_b) B diag(lambda_d).
 *
 *  2. A LoRA adapter set: the hyperparameters (r, alpha, dropout, targets, bias, use_rslora, with
 *     Hugging Face aliases), attach (targets validated, A and B declared per target, hooks,
 *     buffers), the closed form, the initialisation, input dropout, the per-site branch forward and
 *     backward, and the dense update s B A for merging. LoRA is this set plus the frozen product;
 *     DoRA wraps the same set in its magnitude/direction decomposition.
 *     Optionally (s->gate, LoRA's `gate`; UniPELT, Mao et al. 2022) each target's branch is gated
 *     per token: branch = g ⊙ (s dropout(x) A^T B^T), g (N) = sigmoid(x Wg^T + bg), Wg (1, IC),
 *     bg (1), both trainable. A gated set cannot be merged (g depends on the input).
 *
 * Buffers of a set (floats, N rows): saved activations u (N, r) per target, at
 * c->acts + i N r, and with the gate g (N) per target behind all of them, at
 * c->acts + N (n r + i) (the set's region is the first acts_row * N floats); workspace du (N, r)
 * at c->work, when dropout > 0 the dropout output (N, max IC) after it, and with the gate
 * g ⊙ u / s dout B (N, r) and the gate's pre-activation gradient (N) after those (the first
 * work_row * N floats). A method that declares more buffers after the set's places them behind
 * these.
 */
#ifndef PB_LOWRANK_H
#define PB_LOWRANK_H

#include "method.h"
#include "kernels.h"

/* ---- 1. the product ------------------------------------------------------------------------- */

/* u (N,r) = xd A^T;  out (N,OC) = beta out + scale u B^T.
 * FLOPs: fwd MATMUL 2 N IC r + 2 N r OC. */
void pb_lowrank_fwd(float *out, float *u, const float *xd, const float *A, int lda, const float *B, int ldb,
                    float scale, float beta, int N, int IC, int OC, int r);
/* dB (OC,r) += scale dout^T u;  du (N,r) = scale dout B;  dA (r,IC) += du^T xd (dA NULL: skipped,
 * xd may then be NULL). The input gradient du A is left to the caller (dropout, strides).
 * FLOPs: bwd_w MATMUL 2 N OC r (+ 2 N r IC with dA); bwd_in MATMUL 2 N OC r. */
void pb_lowrank_bwd(float *dA, float *dB, float *du, const float *dout, const float *u, const float *xd,
                    const float *A, int lda, const float *B, int ldb, float scale, int N, int IC, int OC, int r);

/* ---- 2. the LoRA adapter set ---------------------------------------------------------------- */

enum { PB_LR_HP_R, PB_LR_HP_ALPHA, PB_LR_HP_DROPOUT, PB_LR_HP_TARGETS, PB_LR_HP_BIAS, PB_LR_HP_RSLORA, PB_LR_NHP };
/* The rows of the set's hyperparameter table, for a method that appends its own rows (LoRA's gate). */
#define PB_LOWRANK_HPARAM_ROWS                                                                                     \
    [PB_LR_HP_R] = {"r", "lora_r rank", PB_HP_INT, "8", 1, 65536, NULL, "rank of the update"},                   \
    [PB_LR_HP_ALPHA] = {"alpha", "lora_alpha", PB_HP_FLOAT, "8", 1e-6, 1e6, NULL, "scale numerator: s = alpha/r"}, \
    [PB_LR_HP_DROPOUT] = {"dropout", "lora_dropout", PB_HP_FLOAT, "0", 0, 0.99, NULL, "dropout on the LoRA input"}, \
    [PB_LR_HP_TARGETS] = {"targets", "target_modules", PB_HP_SITES, "q_proj+v_proj", 0, 0, NULL,                  \
                          "linear sites to adapt (site names or Hugging Face module names, joined by +)"},       \
    [PB_LR_HP_BIAS] = {"bias", NULL, PB_HP_ENUM, "none", 0, 0, "none|all|lora_only", "which biases train"},       \
    [PB_LR_HP_RSLORA] = {"use_rslora", "rslora", PB_HP_BOOL, "0", 0, 1, NULL,                                     \
                         "scale by alpha/sqrt(r) instead of alpha/r"}

/* Every linear site but the task head (the runnable family's seven; fused q/k/v, cross-attention,
 * OPT-350m's projections and the pooler on real models). */
#define PB_LOWRANK_SITES                                                                                          \
    ((1u << PB_SITE_Q) | (1u << PB_SITE_K) | (1u << PB_SITE_V) | (1u << PB_SITE_O) | (1u << PB_SITE_UP) |          \
     (1u << PB_SITE_GATE) | (1u << PB_SITE_DOWN) | (1u << PB_SITE_QKV) | (1u << PB_SITE_XQ) | (1u << PB_SITE_XK) |  \
     (1u << PB_SITE_XV) | (1u << PB_SITE_XO) | (1u << PB_SITE_PROJ_IN) | (1u << PB_SITE_PROJ_OUT) |                \
     (1u << PB_SITE_POOLER))
#define PB_LOWRANK_MAX_TARGETS 1024

typedef struct {
    int r;
    float scale, dropout;
    int gate;                                  /* per-token gate on the branch: set by the caller
                                                  before pb_lowrank_attach (LoRA's `gate`) */
    int n;                                     /* targets */
    int a[PB_LOWRANK_MAX_TARGETS], b[PB_LOWRANK_MAX_TARGETS]; /* tensor handles */
    int gw[PB_LOWRANK_MAX_TARGETS], gb[PB_LOWRANK_MAX_TARGETS]; /* gate Wg (1,IC), bg (1) (gate only) */
    int ic[PB_LOWRANK_MAX_TARGETS], oc[PB_LOWRANK_MAX_TARGETS];
    size_t max_ic, max_oc, max_w;              /* largest IC, OC, OC*IC over targets */
    size_t acts_row, work_row;                 /* floats per row the set declared */
} pb_lowrank;

/* Reads r, alpha, dropout, bias, use_rslora from c's hyperparameters (c's method must use
 * PB_LOWRANK_HPARAM_ROWS), and for every targeted linear site: hooks it, declares A (r,IC) and
 * B (OC,r) named "<weight>.lora_A/B" (with s->gate also Wg (1,IC), bg (1) named
 * "<weight>.lora_gate.weight/bias"), u (N,r) (and g (N)) saved; unfreezes the biases `bias`
 * selects; declares the workspace. Errors name the method and the offending value. */
pb_status pb_lowrank_attach(pb_method_ctx *c, pb_lowrank *s);
/* Trainable count of the set: sum over targets of r (IC + OC) + per_oc * OC, plus the biases
 * `bias` selects (the task head is the framework's). per_oc: extra trainable floats per output
 * feature that the method adds per target (DoRA's magnitude: 1). The gate is not included (see
 * below). */
size_t pb_lowrank_closed_form(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head, size_t per_oc);
/* Trainable floats of the gates: sum over targets of IC + 1. */
size_t pb_lowrank_gate_count(const pb_hp_values *hp, const pb_model_desc *d, pb_head_kind head);
/* A ~ U(-1/sqrt(IC), 1/sqrt(IC)) (kaiming_uniform(a=sqrt(5)), as Hugging Face); B stays 0; with
 * the gate, Wg ~ N(0, 0.02^2) (AdapterHub's LoRA gate), bg = 0 (drawn after every A, so the
 * ungated set draws the same numbers as before the gate existed). */
void pb_lowrank_init(pb_method_ctx *c, pb_lowrank *s, pb_rng *rng);
/* The branch of target i: out (N,OC) = beta out + s dropout(x) A^T B^T (times g with the gate);
 * saves u (and g). */
void pb_lowrank_site_fwd(pb_method_ctx *c, pb_lowrank *s, int i, float *out, float beta, const float *x, int N);
/* Its backward for dout (N,OC) = d(branch output): dA, dB (dWg, dbg) +=; dinp (N,IC) += (NULL:
 * skipped). */
void pb_lowrank_site_bwd(pb_method_ctx *c, pb_lowrank *s, int i, float *dinp, const float *dout, const float *x,
                         int N);
/* w (OC,IC) += s B A for target i (merge, DoRA's weight norm); MATMUL FLOPs to `phase`. */
void pb_lowrank_add_delta(pb_method_ctx *c, const pb_lowrank *s, int i, float *w, pb_phase phase);
/* The base weight of target i (runnable models). */
pb_tensor *pb_lowrank_weight(pb_method_ctx *c, const pb_lowrank *s, int i);

/* FLOPs of target i's branch (pb_lowrank_site_fwd, and with bwd pb_lowrank_site_bwd with an
 * input gradient when dinp) by the kernels' rules; the base product is the caller's. */
void pb_lowrank_branch_flops(const pb_lowrank *s, int i, const pb_flops_env *e, int bwd, int dinp, pb_flops *f);
/* The layer and site of target i. */
void pb_lowrank_target(pb_method_ctx *c, const pb_lowrank *s, int i, int *layer, pb_site *site);

/* ---- bias options shared by the family ------------------------------------------------------ */

/* bias = 0 none, 1 all (every backbone bias, as BitFit), 2 only the targeted sites' biases. */
void pb_lowrank_unfreeze_bias(pb_method_ctx *c, int layer, pb_site site); /* the site's bias, if any */
void pb_lowrank_unfreeze_all_biases(pb_method_ctx *c);
/* Biases counted by the closed form for option `bias` on targeted sites `sites`. */
size_t pb_lowrank_bias_count(int bias, uint32_t sites, const pb_model_desc *d, pb_head_kind head);
/* In and out features of a linear site (pb_desc_site_shape). */
void pb_lowrank_site_dims(pb_site site, const pb_model_desc *d, size_t *ic, size_t *oc);

#endif
