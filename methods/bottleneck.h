/* bottleneck.h — the bottleneck adapter shared by seq_bn, double_seq_bn and par_bn (internal to
 * methods/; implemented in seq_bn.c, which owns the code, so the three methods compose it
 * rather than copy it).
 *
 * One adapter unit sits on one sub-layer output h (N,C), attention (attn.o) or MLP (mlp.down),
 * before the residual add:
 *   z = h            (sequential: Houlsby et al. 2019, Pfeiffer et al. 2021)
 *   z = x            (parallel: He et al. 2022; x is the sub-layer's normalised input)
 *   u = z Wd^T + bd        Wd (r,C), bd (r)
 *   a = act(u)
 *   y = a Wu^T + bu        Wu (C,r), bu (C)
 *   g = sigmoid(z Wg^T + bg)  per token, Wg (1,C), bg (1)    only with gate=1 (UniPELT)
 *   h' = h + s * g * y     (g = 1 without the gate; s = scaling)
 * Wu and bu start at zero, so h' = h at initialisation.
 *
 * Saved per unit and row: h (C) when sequential, u (r), a (r), and with the gate y (C), g (1).
 * Workspace per row (shared by every unit): C + r, + 1 with the gate.
 *
 * The hyperparameters are the same keys in every method (AdapterHub's BnConfig names); each
 * method passes its own defaults through PB_BN_HPARAMS.
 */
#ifndef PB_BOTTLENECK_H
#define PB_BOTTLENECK_H

#include "method.h"

/* Non-linearities, in the order of PB_BN_ACT_CHOICES. */
typedef enum { PB_BN_RELU, PB_BN_GELU, PB_BN_GELU_NEW, PB_BN_SWISH, PB_BN_SILU, PB_BN_TANH } pb_bn_act;
#define PB_BN_ACT_CHOICES "relu|gelu|gelu_new|swish|silu|tanh"

/* Hyperparameter table rows (keys read by pb_bn_attach and pb_bn_closed_form); the defaults are
 * the method's, as strings. */
#define PB_BN_HPARAMS(rf, act, scaling, init)                                                                      \
    {"reduction_factor", "rf", PB_HP_FLOAT, rf, 1, 1e6, NULL,                                                     \
     "bottleneck size = max(1, floor(d_model / reduction_factor)) (AdapterHub)"},                                 \
        {"r", "bottleneck_size down_sample", PB_HP_INT, "0", 0, 65536, NULL,                                      \
         "bottleneck size directly (0: from reduction_factor); at most d_model"},                                 \
        {"non_linearity", "activation act", PB_HP_ENUM, act, 0, 0, PB_BN_ACT_CHOICES,                             \
         "activation between down and up projection (gelu: erf form; gelu_new: tanh approximation)"},             \
        {"scaling", NULL, PB_HP_FLOAT, scaling, 1e-6, 1e6, NULL, "constant s multiplying the adapter output"},     \
        {"init_weights", NULL, PB_HP_ENUM, init, 0, 0, "bert|mam_adapter",                                        \
         "down projection init: bert N(0, 0.02^2), mam_adapter U(+-1/sqrt(d_model)); up is always zero"},          \
        {"gate", "use_gating", PB_HP_BOOL, "0", 0, 1, NULL,                                                       \
         "per-token gate sigmoid(W_g z + b_g) on the adapter output (UniPELT)"}

#define PB_BN_MAX_UNITS 1024

typedef struct {
    int layer;
    pb_sublayer which;
    int down_w, down_b, up_w, up_b;         /* tensor handles */
    int gate_w, gate_b;                     /* -1 without the gate */
} pb_bn_unit;

/* A method's state: the units it attached and their common shape. */
typedef struct {
    int C, r;
    pb_bn_act act;
    int parallel, gate, init;
    float scaling;
    size_t acts_row;                        /* saved floats per row of one unit */
    int n;
    pb_bn_unit u[PB_BN_MAX_UNITS];
} pb_bn_state;

/* Bottleneck size from the hyperparameters (shared by attach and closed_form). */
int pb_bn_size(const pb_method *m, const pb_hp_values *hp, int C);
/* Attaches one unit on every layer's sub-layers in `where` (bit (1 << PB_SUB_ATTN) and/or
 * (1 << PB_SUB_FFN)); parallel = the unit reads the sub-layer's input x. c->state is a
 * pb_bn_state. Errors name the offending hyperparameter. */
pb_status pb_bn_attach(pb_method_ctx *c, unsigned where, int parallel);
/* Trainable parameters: L * units-per-layer * (2rC + r + C [+ C + 1 gate]) + the task head. */
size_t pb_bn_closed_form(const pb_method *m, const pb_hp_values *hp, const pb_model_desc *d, int n_sub);
/* Initialisation (init_weights) and the sublayer hooks, for the method tables. */
void pb_bn_init(pb_method_ctx *c, pb_rng *rng);
void pb_bn_fwd(pb_method_ctx *c, int slot, float *h, const float *x, int N);
void pb_bn_bwd(pb_method_ctx *c, int slot, float *dh, float *dx, const float *x, int N, int need_dh);
/* FLOPs of every unit (pb_method.flops). */
void pb_bn_flops(pb_method_ctx *c, const pb_flops_env *e, pb_flops *f);

#endif
