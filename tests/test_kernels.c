/* test_kernels.c — the fast kernels (core/kernels.c) against their double-precision oracle
 * (core/ref.c), the oracle against finite differences, FLOP counts against kernels.h, and
 * determinism.
 *
 * The test list is data: CASES[] holds (kernel, shapes, tolerances) rows; OPS[] describes
 * each kernel once (its tensors and how to call its float and double versions); four generic
 * tests run over every row:
 *   fast_vs_ref   float forward outputs and every backward gradient against the double
 *                 reference, backward started from non-zero gradients (proves +=) and run
 *                 for every subset of requested gradients (the others NULL, proves skipping)
 *   gradcheck     double reference backward against central differences of the double
 *                 reference forward, loss L = sum(out * r) for a fixed random r
 *                 (cross-entropy: the mean loss, i.e. r = 1 / non-ignored rows)
 *   flops         counter deltas of each forward and backward call (every gradient subset)
 *                 against the closed forms of kernels.h, per phase and kind
 *   determinism   bit-identical results twice in a row, and at 1 vs 2 OpenMP threads for the
 *                 outputs kernels.c guarantees to be thread-count invariant
 * plus a few direct checks of documented semantics the oracle could share a mistake with.
 *
 * Letters: N rows, C channels, IC/OC linear in/out, B batch, T (=Tq) and Tk lengths, H and
 * Hkv heads, V vocabulary; gemm uses M, N, K.
 */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "pb_flops.h"
#include "pb_rng.h"
#include "ref.h"

#define MAXT 4                /* most tensors on either side of a kernel */
#define FD_EPS 1e-6           /* central-difference step */
#define FD_ATOL 1e-8          /* gradcheck: |fd - analytic| <= FD_ATOL + FD_RTOL * |analytic| */
#define FD_RTOL 1e-6
#define FD_SAMPLES 32         /* gradcheck at most this many elements per tensor */
#define DROPOUT_SEED 0x5eedull
#define XT_FWD (1u << 8)      /* opdesc.xthreads: forward outputs are thread-count invariant */

typedef enum {
    OP_GEMM,
    OP_LINEAR,
    OP_LAYERNORM,
    OP_RMSNORM,
    OP_GELU,
    OP_SWIGLU,
    OP_ADD,
    OP_SOFTMAX,
    OP_DROPOUT,
    OP_ATTENTION,
    OP_ROPE,
    OP_EMBEDDING,
    OP_CROSSENTROPY,
    NOP
} op_id;

/* One row of the test table: a kernel, a shape set, and the fast-vs-reference tolerance
 * |fast - ref| <= atol + rtol * |ref| (forward outputs and gradients alike). */
typedef struct {
    op_id op;
    const char *label;
    int M, N, K;       /* gemm (M,N,K); N is also rows (or elements) elsewhere */
    int C, IC, OC, V;  /* channels; linear in/out; vocabulary */
    int B, T, Tk;      /* batch; (query) length; key length */
    int H, Hkv;        /* heads */
    int bias;          /* linear, layernorm: b present; embedding: wpe present */
    int causal, kmask; /* attention; kmask 0 none, 1 random, 2 random with fully masked rows */
    int ta, tb, pad;   /* gemm: transposes, extra row-stride elements on A, B, C */
    float alpha, beta; /* gemm */
    pb_phase phase;    /* gemm */
    float p;           /* dropout */
    float eps;         /* rmsnorm */
    int pos0;          /* rope: position of the first token (heads H, width C = H * hs) */
    float theta;       /* rope */
    float xscale;      /* if > 0, every input is U(-xscale, xscale) instead of the kernel's default */
    double atol, rtol;
} tcase;

/* A case brought to life: its tensors in float and in double (same values). */
typedef struct {
    const tcase *c;
    int nx, ny;                            /* inputs, outputs (y[0] the loss output, others saved) */
    size_t xn[MAXT], yn[MAXT];             /* element counts, 0 = absent (passed as NULL) */
    const char *xname[MAXT], *yname[MAXT];
    float xscale[MAXT];                    /* inputs are U(-xscale, xscale) */
    unsigned grads;                        /* bit i: backward has a gradient for input i */
    float *xf[MAXT], *yf[MAXT], *gf[MAXT]; /* inputs, outputs, gradients of inputs */
    double *xd[MAXT], *yd[MAXT], *gd[MAXT];
    float *rf;                             /* (yn[0]) dL/dy[0] */
    double *rd;
    float *wf;                             /* (wn) backward workspace */
    double *wd;
    size_t wn;
    int32_t *ids;                          /* embedding ids (B,T) or cross-entropy targets (N) */
    uint8_t *km;                           /* attention kmask (B,Tk) or NULL */
    float *cs;                             /* rope: pb_rope_table (pos0 + T, hs) for the fast kernel */
    float scale;                           /* cross-entropy: 1 / non-ignored rows */
} inst;

typedef void (*op_fn)(inst *I, unsigned req);

typedef struct {
    const char *name;
    void (*init)(inst *I, pb_rng *rng); /* tensors, sizes, integer inputs */
    op_fn fwd_f, fwd_d;
    op_fn bwd_f, bwd_d;                 /* NULL: no backward kernel */
    unsigned grads;                     /* inputs with gradients (absent ones dropped) */
    /* expected FLOPs of the forward (bwd = 0) or of a backward requesting `req` */
    void (*flops)(const inst *I, int bwd, unsigned req, pb_flops *e);
    int mean_loss;                      /* loss = scale * sum(y[0]) (the mean cross-entropy),
                                         * else sum(y[0] * r); either way r holds dL/dy[0] */
    unsigned xthreads;                  /* bit i: gradient i; XT_FWD: outputs */
} opdesc;

/* ---- calling the kernels: one body per kernel, expanded for float (pb_) and double
 * (pb_ref_); G(i) is gradient i when requested, else NULL ----------------------------------- */

#define G(i) ((req >> (i) & 1u) ? g[i] : NULL)
#define TWIN(name, body)                                                                                    \
    static void name##_f(inst *I, unsigned req) {                                                          \
        const tcase *c = I->c;                                                                             \
        float **x = I->xf, **y = I->yf, **g = I->gf, *r = I->rf, *w = I->wf;                               \
        (void)c, (void)x, (void)y, (void)g, (void)r, (void)w, (void)req;                                   \
        body(pb_);                                                                                         \
    }                                                                                                      \
    static void name##_d(inst *I, unsigned req) {                                                          \
        const tcase *c = I->c;                                                                             \
        double **x = I->xd, **y = I->yd, **g = I->gd, *r = I->rd, *w = I->wd;                              \
        (void)c, (void)x, (void)y, (void)g, (void)r, (void)w, (void)req;                                   \
        body(pb_ref_);                                                                                     \
    }

#define LINEAR_FWD(P) P##linear_fwd(y[0], x[0], x[1], x[2], c->N, c->IC, c->OC)
#define LINEAR_BWD(P) P##linear_bwd(G(0), G(1), G(2), r, x[0], x[1], c->N, c->IC, c->OC)
#define LN_FWD(P) P##layernorm_fwd(y[0], y[1], y[2], x[0], x[1], x[2], c->N, c->C)
#define LN_BWD(P) P##layernorm_bwd(G(0), G(1), G(2), r, x[0], x[1], y[1], y[2], c->N, c->C)
#define RMS_FWD(P) P##rmsnorm_fwd(y[0], y[1], x[0], x[1], c->N, c->C, c->eps)
#define RMS_BWD(P) P##rmsnorm_bwd(G(0), G(1), r, x[0], x[1], y[1], c->N, c->C)
#define SWIGLU_FWD(P) P##swiglu_fwd(y[0], x[0], x[1], I->xn[0])
#define SWIGLU_BWD(P) P##swiglu_bwd(G(0), G(1), r, x[0], x[1], I->xn[0])
#define GELU_FWD(P) P##gelu_fwd(y[0], x[0], I->xn[0])
#define GELU_BWD(P) P##gelu_bwd(G(0), r, x[0], I->xn[0])
#define ADD_FWD(P) P##add_fwd(y[0], x[0], x[1], I->xn[0])
#define SOFTMAX_FWD(P) P##softmax_fwd(y[0], x[0], c->N, c->C)
#define SOFTMAX_BWD(P) P##softmax_bwd(G(0), r, y[0], c->N, c->C)
#define DROPOUT_FWD(P) P##dropout_fwd(y[0], x[0], c->p, DROPOUT_SEED, I->xn[0])
#define DROPOUT_BWD(P) P##dropout_bwd(G(0), r, c->p, DROPOUT_SEED, I->xn[0])
#define ATT_FWD(P) P##attention_fwd(y[0], y[1], x[0], x[1], x[2], I->km, c->B, c->T, c->Tk, c->C, c->H, c->Hkv, c->causal)
#define ATT_BWD(P) P##attention_bwd(G(0), G(1), G(2), w, r, y[1], x[0], x[1], x[2], c->B, c->T, c->Tk, c->C, c->H, c->Hkv)
#define EMB_FWD(P) P##embedding_fwd(y[0], I->ids, x[0], x[1], c->B, c->T, c->C)
#define EMB_BWD(P) P##embedding_bwd(G(0), G(1), r, I->ids, c->B, c->T, c->C)
#define CE_FWD(P) P##crossentropy_fwd(y[0], y[1], x[0], I->ids, c->N, c->V)
#define CE_BWD(P) P##crossentropy_bwd(G(0), y[1], I->ids, I->scale, c->N, c->V)

TWIN(linear_fwd, LINEAR_FWD)
TWIN(linear_bwd, LINEAR_BWD)
TWIN(ln_fwd, LN_FWD)
TWIN(ln_bwd, LN_BWD)
TWIN(rms_fwd, RMS_FWD)
TWIN(rms_bwd, RMS_BWD)
TWIN(swiglu_fwd, SWIGLU_FWD)
TWIN(swiglu_bwd, SWIGLU_BWD)
TWIN(gelu_fwd, GELU_FWD)
TWIN(gelu_bwd, GELU_BWD)
TWIN(add_fwd, ADD_FWD)
TWIN(softmax_fwd, SOFTMAX_FWD)
TWIN(softmax_bwd, SOFTMAX_BWD)
TWIN(dropout_fwd, DROPOUT_FWD)
TWIN(dropout_bwd, DROPOUT_BWD)
TWIN(att_fwd, ATT_FWD)
TWIN(att_bwd, ATT_BWD)
TWIN(emb_fwd, EMB_FWD)
TWIN(emb_bwd, EMB_BWD)
TWIN(ce_fwd, CE_FWD)
TWIN(ce_bwd, CE_BWD)

/* RoPE: the fast kernel reads the table, the reference computes the angles from theta. */
static void rope_fwd_f(inst *I, unsigned req) {
    const tcase *c = I->c;
    (void)req;
    pb_rope_fwd(I->yf[0], I->xf[0], I->cs, c->B, c->T, c->H, c->C / c->H, c->pos0);
}
static void rope_fwd_d(inst *I, unsigned req) {
    const tcase *c = I->c;
    (void)req;
    pb_ref_rope_fwd(I->yd[0], I->xd[0], c->B, c->T, c->H, c->C / c->H, c->pos0, c->theta);
}
static void rope_bwd_f(inst *I, unsigned req) {
    const tcase *c = I->c;
    pb_rope_bwd((req & 1u) ? I->gf[0] : NULL, I->rf, I->cs, c->B, c->T, c->H, c->C / c->H, c->pos0);
}
static void rope_bwd_d(inst *I, unsigned req) {
    const tcase *c = I->c;
    pb_ref_rope_bwd((req & 1u) ? I->gd[0] : NULL, I->rd, c->B, c->T, c->H, c->C / c->H, c->pos0, c->theta);
}

/* gemm has no twin in ref.h: its double version is written out here.
 * A (rows_a, lda), B (rows_b, ldb), C0 and C (M, ldc), all with `pad` extra columns. */
static int gemm_lda(const tcase *c) { return (c->ta ? c->M : c->K) + c->pad; }
static int gemm_ldb(const tcase *c) { return (c->tb ? c->K : c->N) + c->pad; }
static int gemm_ldc(const tcase *c) { return c->N + c->pad; }

static void gemm_f(inst *I, unsigned req) {
    const tcase *c = I->c;
    (void)req;
    memcpy(I->yf[0], I->xf[2], I->yn[0] * sizeof(float));
    pb_gemm(c->phase, c->ta, c->tb, c->M, c->N, c->K, c->alpha, I->xf[0], gemm_lda(c), I->xf[1], gemm_ldb(c),
            c->beta, I->yf[0], gemm_ldc(c));
}

static void gemm_d(inst *I, unsigned req) {
    const tcase *c = I->c;
    const double *A = I->xd[0], *Bm = I->xd[1];
    int lda = gemm_lda(c), ldb = gemm_ldb(c), ldc = gemm_ldc(c);
    (void)req;
    memcpy(I->yd[0], I->xd[2], I->yn[0] * sizeof(double)); /* padding columns stay as C0 */
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double s = 0.0;
            for (int k = 0; k < c->K; k++)
                s += (c->ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (c->tb ? Bm[(size_t)j * ldb + k] : Bm[(size_t)k * ldb + j]);
            double *out = &I->yd[0][(size_t)i * ldc + j];
            *out = c->alpha * s + (c->beta != 0.0f ? c->beta * *out : 0.0);
        }
}

/* ---- the kernels' tensors ----------------------------------------------------------------- */

static void tin(inst *I, int i, const char *name, size_t n, float scale) {
    I->xname[i] = name;
    I->xn[i] = n;
    I->xscale[i] = scale;
    if (i + 1 > I->nx) I->nx = i + 1;
}

static void tout(inst *I, int i, const char *name, size_t n) {
    I->yname[i] = name;
    I->yn[i] = n;
    if (i + 1 > I->ny) I->ny = i + 1;
}

static void init_gemm(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    (void)rng;
    tin(I, 0, "A", (size_t)(c->ta ? c->K : c->M) * gemm_lda(c), 1.0f);
    tin(I, 1, "B", (size_t)(c->tb ? c->N : c->K) * gemm_ldb(c), 1.0f);
    tin(I, 2, "C0", (size_t)c->M * gemm_ldc(c), 1.0f);
    tout(I, 0, "C", (size_t)c->M * gemm_ldc(c));
}

static void init_linear(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    (void)rng;
    tin(I, 0, "inp", (size_t)c->N * c->IC, 1.0f);
    tin(I, 1, "w", (size_t)c->OC * c->IC, 1.0f);
    tin(I, 2, "b", c->bias ? (size_t)c->OC : 0, 1.0f);
    tout(I, 0, "out", (size_t)c->N * c->OC);
}

static void init_layernorm(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    (void)rng;
    tin(I, 0, "inp", (size_t)c->N * c->C, 2.0f);
    tin(I, 1, "w", (size_t)c->C, 1.0f);
    tin(I, 2, "b", c->bias ? (size_t)c->C : 0, 1.0f);
    tout(I, 0, "out", (size_t)c->N * c->C);
    tout(I, 1, "mean", (size_t)c->N);
    tout(I, 2, "rstd", (size_t)c->N);
}

static void init_rmsnorm(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    (void)rng;
    tin(I, 0, "inp", (size_t)c->N * c->C, 2.0f);
    tin(I, 1, "w", (size_t)c->C, 1.0f);
    tout(I, 0, "out", (size_t)c->N * c->C);
    tout(I, 1, "rstd", (size_t)c->N);
}

static void init_swiglu(inst *I, pb_rng *rng) {
    (void)rng;
    tin(I, 0, "gate", (size_t)I->c->N, 6.0f);
    tin(I, 1, "up", (size_t)I->c->N, 2.0f);
    tout(I, 0, "out", (size_t)I->c->N);
}

static void init_rope(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    (void)rng;
    int hs = c->C / c->H, P = c->pos0 + c->T;
    tin(I, 0, "x", (size_t)c->B * c->T * c->C, 1.0f);
    tout(I, 0, "out", (size_t)c->B * c->T * c->C);
    I->cs = malloc(sizeof(float) * (size_t)P * hs);
    assert_non_null(I->cs);
    pb_rope_table(I->cs, P, hs, c->theta);
}

static void init_pointwise(inst *I, pb_rng *rng) { /* gelu, dropout: N elements */
    (void)rng;
    tin(I, 0, "inp", (size_t)I->c->N, 4.0f);
    tout(I, 0, "out", (size_t)I->c->N);
}

static void init_add(inst *I, pb_rng *rng) {
    (void)rng;
    tin(I, 0, "a", (size_t)I->c->N, 1.0f);
    tin(I, 1, "b", (size_t)I->c->N, 1.0f);
    tout(I, 0, "out", (size_t)I->c->N);
}

static void init_softmax(inst *I, pb_rng *rng) {
    (void)rng;
    tin(I, 0, "inp", (size_t)I->c->N * I->c->C, 3.0f);
    tout(I, 0, "out", (size_t)I->c->N * I->c->C);
}

static void init_attention(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    size_t KC = (size_t)c->Hkv * (c->C / c->H);
    tin(I, 0, "q", (size_t)c->B * c->T * c->C, 1.0f);
    tin(I, 1, "k", (size_t)c->B * c->Tk * KC, 1.0f);
    tin(I, 2, "v", (size_t)c->B * c->Tk * KC, 1.0f);
    tout(I, 0, "out", (size_t)c->B * c->T * c->C);
    tout(I, 1, "att", (size_t)c->B * c->H * c->T * c->Tk);
    I->wn = (size_t)c->B * c->H * c->T * c->Tk;
    if (c->kmask) {
        I->km = calloc((size_t)c->B * c->Tk, 1);
        assert_non_null(I->km);
        for (int i = 0; i < c->B * c->Tk; i++) I->km[i] = pb_rng_uniform(rng) >= 0.25f;
        if (c->kmask == 2) {
            I->km[0] = 0; /* sequence 0, key 0: query 0 sees nothing when causal and Tq == Tk */
            for (int j = 0; j < c->Tk; j++) I->km[(size_t)(c->B - 1) * c->Tk + j] = 0; /* last: nothing */
        }
    }
}

static void init_embedding(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    tin(I, 0, "wte", (size_t)c->V * c->C, 1.0f);
    tin(I, 1, "wpe", c->bias ? (size_t)c->T * c->C : 0, 1.0f);
    tout(I, 0, "out", (size_t)c->B * c->T * c->C);
    I->ids = malloc((size_t)c->B * c->T * sizeof(int32_t));
    assert_non_null(I->ids);
    for (int i = 0; i < c->B * c->T; i++) I->ids[i] = (int32_t)pb_rng_below(rng, (uint64_t)c->V);
}

static void init_crossentropy(inst *I, pb_rng *rng) {
    const tcase *c = I->c;
    tin(I, 0, "logits", (size_t)c->N * c->V, 3.0f);
    tout(I, 0, "losses", (size_t)c->N);
    tout(I, 1, "probs", (size_t)c->N * c->V);
    I->ids = malloc((size_t)c->N * sizeof(int32_t));
    assert_non_null(I->ids);
    int used = 0;
    for (int n = 0; n < c->N; n++) {
        /* row 0 is always ignored, the last never, the others one time in five */
        int ignore = n == 0 || (n < c->N - 1 && pb_rng_uniform(rng) < 0.2f);
        I->ids[n] = ignore ? -1 : (int32_t)pb_rng_below(rng, (uint64_t)c->V);
        used += !ignore;
    }
    I->scale = 1.0f / (float)used;
}

/* ---- expected FLOPs, restated from kernels.h ------------------------------------------- */

static void ef(pb_flops *e, pb_phase ph, pb_flop_kind k, uint64_t n) { e->n[ph][k] += n; }
#define U(x) ((uint64_t)(x))
#define BIT(req, i) ((req) >> (i) & 1u)

static void flops_gemm(const inst *I, int bwd, unsigned req, pb_flops *e) {
    const tcase *c = I->c;
    (void)req;
    if (!bwd) ef(e, c->phase, PB_KIND_MATMUL, 2 * U(c->M) * U(c->N) * U(c->K));
}

static void flops_linear(const inst *I, int bwd, unsigned req, pb_flops *e) {
    const tcase *c = I->c;
    uint64_t mm = 2 * U(c->N) * U(c->IC) * U(c->OC);
    if (!bwd) {
        ef(e, PB_PHASE_FWD, PB_KIND_MATMUL, mm);
        if (c->bias) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, U(c->N) * U(c->OC));
        return;
    }
    if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_MATMUL, mm);
    if (BIT(req, 1)) ef(e, PB_PHASE_BWD_W, PB_KIND_MATMUL, mm);
    if (BIT(req, 2)) ef(e, PB_PHASE_BWD_W, PB_KIND_OTHER, U(c->N) * U(c->OC));
}

static void flops_layernorm(const inst *I, int bwd, unsigned req, pb_flops *e) {
    uint64_t nc = U(I->c->N) * U(I->c->C);
    if (!bwd) {
        ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 8 * nc);
        return;
    }
    if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 10 * nc);
    if (BIT(req, 1)) ef(e, PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * nc);
    if (BIT(req, 2)) ef(e, PB_PHASE_BWD_W, PB_KIND_OTHER, nc);
}

static void flops_rmsnorm(const inst *I, int bwd, unsigned req, pb_flops *e) {
    uint64_t nc = U(I->c->N) * U(I->c->C);
    if (!bwd) {
        ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 5 * nc);
        return;
    }
    if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 7 * nc);
    if (BIT(req, 1)) ef(e, PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * nc);
}

static void flops_swiglu(const inst *I, int bwd, unsigned req, pb_flops *e) {
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 5 * U(I->c->N));
    else if (req) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 8 * U(I->c->N));
}

static void flops_rope(const inst *I, int bwd, unsigned req, pb_flops *e) {
    uint64_t n = 3 * U(I->c->B) * U(I->c->T) * U(I->c->C);
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, n);
    else if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, n);
}

static void flops_gelu(const inst *I, int bwd, unsigned req, pb_flops *e) {
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 9 * U(I->c->N));
    else if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 16 * U(I->c->N));
}

static void flops_add(const inst *I, int bwd, unsigned req, pb_flops *e) {
    (void)req;
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, U(I->c->N));
}

static void flops_softmax(const inst *I, int bwd, unsigned req, pb_flops *e) {
    uint64_t nc = U(I->c->N) * U(I->c->C);
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 5 * nc);
    else if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * nc);
}

static void flops_dropout(const inst *I, int bwd, unsigned req, pb_flops *e) {
    if (I->c->p == 0.0f) return; /* a copy / an accumulation: nothing counted */
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, U(I->c->N));
    else if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, U(I->c->N));
}

static void flops_attention(const inst *I, int bwd, unsigned req, pb_flops *e) {
    const tcase *c = I->c;
    uint64_t blk = U(c->B) * U(c->H) * U(c->T) * U(c->Tk), hs = U(c->C / c->H);
    if (!bwd) {
        ef(e, PB_PHASE_FWD, PB_KIND_MATMUL, 4 * blk * hs);
        ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 6 * blk);
        return;
    }
    if (!req) return;
    ef(e, PB_PHASE_BWD_IN, PB_KIND_MATMUL, 2 * blk * hs * (1 + BIT(req, 0) + BIT(req, 1) + BIT(req, 2)));
    ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 5 * blk);
}

static void flops_embedding(const inst *I, int bwd, unsigned req, pb_flops *e) {
    const tcase *c = I->c;
    uint64_t btc = U(c->B) * U(c->T) * U(c->C);
    if (!bwd) {
        if (c->bias) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, btc);
        return;
    }
    if (BIT(req, 0)) ef(e, PB_PHASE_BWD_W, PB_KIND_OTHER, btc);
    if (BIT(req, 1)) ef(e, PB_PHASE_BWD_W, PB_KIND_OTHER, btc);
}

static void flops_crossentropy(const inst *I, int bwd, unsigned req, pb_flops *e) {
    uint64_t nv = U(I->c->N) * U(I->c->V);
    if (!bwd) ef(e, PB_PHASE_FWD, PB_KIND_OTHER, 5 * nv + U(I->c->N));
    else if (BIT(req, 0)) ef(e, PB_PHASE_BWD_IN, PB_KIND_OTHER, 2 * nv); /* ignored rows too */
}

#define FWD(f) .fwd_f = f##_f, .fwd_d = f##_d
#define BWD(f) .bwd_f = f##_f, .bwd_d = f##_d
static const opdesc OPS[NOP] = {
    [OP_GEMM] = {"gemm", init_gemm, .fwd_f = gemm_f, .fwd_d = gemm_d, .flops = flops_gemm},
    [OP_LINEAR] = {"linear", init_linear, FWD(linear_fwd), BWD(linear_bwd), .grads = 7, .flops = flops_linear,
                   .xthreads = 1u << 2 /* db only: the products are OpenBLAS-threaded */},
    [OP_LAYERNORM] = {"layernorm", init_layernorm, FWD(ln_fwd), BWD(ln_bwd), .grads = 7, .flops = flops_layernorm,
                      .xthreads = XT_FWD | 7},
    [OP_RMSNORM] = {"rmsnorm", init_rmsnorm, FWD(rms_fwd), BWD(rms_bwd), .grads = 3, .flops = flops_rmsnorm,
                    .xthreads = XT_FWD | 3},
    [OP_SWIGLU] = {"swiglu", init_swiglu, FWD(swiglu_fwd), BWD(swiglu_bwd), .grads = 3, .flops = flops_swiglu,
                   .xthreads = XT_FWD | 3},
    [OP_ROPE] = {"rope", init_rope, FWD(rope_fwd), BWD(rope_bwd), .grads = 1, .flops = flops_rope,
                 .xthreads = XT_FWD | 1},
    [OP_GELU] = {"gelu", init_pointwise, FWD(gelu_fwd), BWD(gelu_bwd), .grads = 1, .flops = flops_gelu,
                 .xthreads = XT_FWD | 1},
    [OP_ADD] = {"add", init_add, FWD(add_fwd), .flops = flops_add, .xthreads = XT_FWD},
    [OP_SOFTMAX] = {"softmax", init_softmax, FWD(softmax_fwd), BWD(softmax_bwd), .grads = 1, .flops = flops_softmax,
                    .xthreads = XT_FWD | 1},
    [OP_DROPOUT] = {"dropout", init_pointwise, FWD(dropout_fwd), BWD(dropout_bwd), .grads = 1,
                    .flops = flops_dropout, .xthreads = XT_FWD | 1},
    [OP_ATTENTION] = {"attention", init_attention, FWD(att_fwd), BWD(att_bwd), .grads = 7, .flops = flops_attention,
                      .xthreads = XT_FWD | 7},
    [OP_EMBEDDING] = {"embedding", init_embedding, FWD(emb_fwd), BWD(emb_bwd), .grads = 3, .flops = flops_embedding,
                      .xthreads = XT_FWD | 3},
    [OP_CROSSENTROPY] = {"crossentropy", init_crossentropy, FWD(ce_fwd), BWD(ce_bwd), .grads = 1,
                         .flops = flops_crossentropy, .mean_loss = 1, .xthreads = XT_FWD | 1},
};

/* ---- the table ---------------------------------------------------------------------------- */

#define TOL(a, r) .atol = (a), .rtol = (r)
static tcase CASES[] = {
    {OP_GEMM, "NN M7 N5 K13", .M = 7, .N = 5, .K = 13, .alpha = 1, .phase = PB_PHASE_FWD, TOL(2e-6, 1e-5)},
    {OP_GEMM, "TN M9 N11 K3 pad3 alpha.5 beta1", .M = 9, .N = 11, .K = 3, .ta = 1, .pad = 3, .alpha = 0.5f,
     .beta = 1, .phase = PB_PHASE_BWD_W, TOL(1e-6, 1e-6)},
    {OP_GEMM, "NT M1 N17 K64 pad1 beta.25", .M = 1, .N = 17, .K = 64, .tb = 1, .pad = 1, .alpha = 1,
     .beta = 0.25f, .phase = PB_PHASE_BWD_IN, TOL(1e-5, 1e-5)},
    {OP_GEMM, "TT M33 N40 K50 pad2 alpha-2", .M = 33, .N = 40, .K = 50, .ta = 1, .tb = 1, .pad = 2, .alpha = -2,
     .phase = PB_PHASE_FWD, TOL(2e-5, 1e-5)},
    {OP_GEMM, "NN M96 N80 K120", .M = 96, .N = 80, .K = 120, .alpha = 1, .phase = PB_PHASE_FWD, TOL(2e-5, 1e-5)},

    {OP_LINEAR, "N7 IC13 OC5 bias", .N = 7, .IC = 13, .OC = 5, .bias = 1, TOL(2e-6, 1e-5)},
    {OP_LINEAR, "N1 IC4 OC3", .N = 1, .IC = 4, .OC = 3, TOL(1e-6, 1e-6)},
    {OP_LINEAR, "N33 IC70 OC130 bias", .N = 33, .IC = 70, .OC = 130, .bias = 1, TOL(2e-5, 1e-5)},
    {OP_LINEAR, "N64 IC96 OC65", .N = 64, .IC = 96, .OC = 65, TOL(2e-5, 1e-5)},

    {OP_LAYERNORM, "N7 C13 bias", .N = 7, .C = 13, .bias = 1, TOL(2e-6, 1e-5)},
    {OP_LAYERNORM, "N1 C5", .N = 1, .C = 5, TOL(1e-6, 1e-6)},
    {OP_LAYERNORM, "N6 C9 tiny variance (eps matters)", .N = 6, .C = 9, .bias = 1, .xscale = 0.003f,
     TOL(2e-6, 1e-5)},
    {OP_LAYERNORM, "N5 C130", .N = 5, .C = 130, TOL(4e-6, 1e-5)},
    {OP_LAYERNORM, "N64 C200 bias", .N = 64, .C = 200, .bias = 1, TOL(2e-5, 1e-5)},

    {OP_RMSNORM, "N7 C13 eps1e-5", .N = 7, .C = 13, .eps = 1e-5f, TOL(2e-6, 1e-5)},
    {OP_RMSNORM, "N1 C5 eps1e-6", .N = 1, .C = 5, .eps = 1e-6f, TOL(1e-6, 1e-6)},
    {OP_RMSNORM, "N6 C9 tiny scale (eps matters)", .N = 6, .C = 9, .eps = 1e-5f, .xscale = 0.003f, TOL(2e-6, 1e-5)},
    {OP_RMSNORM, "N64 C200 eps1e-5", .N = 64, .C = 200, .eps = 1e-5f, TOL(2e-5, 1e-5)},

    {OP_SWIGLU, "n7", .N = 7, TOL(5e-7, 5e-6)},
    {OP_SWIGLU, "n1000", .N = 1000, TOL(5e-7, 5e-6)},

    {OP_GELU, "n7", .N = 7, TOL(5e-7, 5e-6)},
    {OP_GELU, "n1000", .N = 1000, TOL(5e-7, 5e-6)},
    {OP_ADD, "n13", .N = 13, TOL(0, 1e-7)},
    {OP_ADD, "n1001", .N = 1001, TOL(0, 1e-7)},
    {OP_SOFTMAX, "N7 C13", .N = 7, .C = 13, TOL(2e-7, 2e-6)},
    {OP_SOFTMAX, "N1 C1", .N = 1, .C = 1, TOL(0, 0)},
    {OP_SOFTMAX, "N30 C200", .N = 30, .C = 200, TOL(2e-7, 2e-6)},
    {OP_DROPOUT, "p0 n13", .N = 13, .p = 0, TOL(0, 0)},
    {OP_DROPOUT, "p.3 n1000", .N = 1000, .p = 0.3f, TOL(1e-6, 1e-6)},
    {OP_DROPOUT, "p.9 n257", .N = 257, .p = 0.9f, TOL(1e-6, 1e-6)},

    {OP_ATTENTION, "B1 T1 C4 H1", .B = 1, .T = 1, .Tk = 1, .C = 4, .H = 1, .Hkv = 1, TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B2 T5 C12 H3 causal", .B = 2, .T = 5, .Tk = 5, .C = 12, .H = 3, .Hkv = 3, .causal = 1,
     TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B2 T5 C12 H3 kmask-fully-masked", .B = 2, .T = 5, .Tk = 5, .C = 12, .H = 3, .Hkv = 3,
     .kmask = 2, TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B2 Tq4 Tk7 C16 H4 Hkv2 causal kmask (prefix, GQA)", .B = 2, .T = 4, .Tk = 7, .C = 16, .H = 4,
     .Hkv = 2, .causal = 1, .kmask = 1, TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B3 T6 C16 H4 Hkv1 causal kmask-fully-masked (MQA)", .B = 3, .T = 6, .Tk = 6, .C = 16, .H = 4,
     .Hkv = 1, .causal = 1, .kmask = 2, TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B1 Tq5 Tk3 C8 H2 causal (queries with no key)", .B = 1, .T = 5, .Tk = 3, .C = 8, .H = 2,
     .Hkv = 2, .causal = 1, TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B2 Tq13 Tk29 C48 H6 Hkv3 kmask", .B = 2, .T = 13, .Tk = 29, .C = 48, .H = 6, .Hkv = 3,
     .kmask = 1, TOL(1e-6, 1e-5)},
    {OP_ATTENTION, "B2 T40 C64 H4 Hkv2 causal kmask", .B = 2, .T = 40, .Tk = 40, .C = 64, .H = 4, .Hkv = 2,
     .causal = 1, .kmask = 1, TOL(4e-6, 1e-5)},

    {OP_ROPE, "B1 T1 H1 hs2 pos0 theta1e4", .B = 1, .T = 1, .H = 1, .C = 2, .theta = 10000.0f, TOL(1e-7, 1e-6)},
    {OP_ROPE, "B2 T5 H3 hs4 pos0 theta1e4", .B = 2, .T = 5, .H = 3, .C = 12, .theta = 10000.0f, TOL(1e-6, 1e-5)},
    {OP_ROPE, "B2 T7 H2 hs16 pos3 theta1e4 (after a prefix)", .B = 2, .T = 7, .H = 2, .C = 32, .pos0 = 3,
     .theta = 10000.0f, TOL(1e-6, 1e-5)},
    {OP_ROPE, "B3 T40 H4 hs32 pos200 theta5e5", .B = 3, .T = 40, .H = 4, .C = 128, .pos0 = 200,
     .theta = 500000.0f, TOL(2e-6, 1e-5)},

    {OP_EMBEDDING, "B2 T3 C5 V4 wpe", .B = 2, .T = 3, .C = 5, .V = 4, .bias = 1, TOL(1e-6, 1e-6)},
    {OP_EMBEDDING, "B1 T1 C13 V3", .B = 1, .T = 1, .C = 13, .V = 3, TOL(1e-7, 0)},
    {OP_EMBEDDING, "B4 T33 C150 V11 wpe", .B = 4, .T = 33, .C = 150, .V = 11, .bias = 1, TOL(1e-5, 1e-6)},

    {OP_CROSSENTROPY, "N7 V13", .N = 7, .V = 13, TOL(2e-7, 2e-6)},
    {OP_CROSSENTROPY, "N2 V2", .N = 2, .V = 2, TOL(2e-7, 2e-6)},
    {OP_CROSSENTROPY, "N40 V300", .N = 40, .V = 300, TOL(2e-7, 2e-6)},
};
#define NCASES (sizeof CASES / sizeof CASES[0])

/* ---- instances ----------------------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

static inst *inst_new(const tcase *c, uint64_t seed) {
    inst *I = xcalloc(1, sizeof *I);
    const opdesc *op = &OPS[c->op];
    pb_rng rng;
    I->c = c;
    pb_rng_seed(&rng, seed);
    op->init(I, &rng);
    for (int i = 0; i < I->nx; i++) {
        if (!I->xn[i]) continue;
        I->xf[i] = xcalloc(I->xn[i], sizeof(float));
        I->xd[i] = xcalloc(I->xn[i], sizeof(double));
        tu_fill(I->xf[i], I->xn[i], seed * 16 + (uint64_t)i, c->xscale > 0 ? c->xscale : I->xscale[i]);
        tu_f2d(I->xd[i], I->xf[i], I->xn[i]);
        if (op->grads >> i & 1u) {
            I->grads |= 1u << i;
            I->gf[i] = xcalloc(I->xn[i], sizeof(float));
            I->gd[i] = xcalloc(I->xn[i], sizeof(double));
        }
    }
    for (int i = 0; i < I->ny; i++) {
        I->yf[i] = xcalloc(I->yn[i], sizeof(float));
        I->yd[i] = xcalloc(I->yn[i], sizeof(double));
    }
    I->rf = xcalloc(I->yn[0], sizeof(float));
    I->rd = xcalloc(I->yn[0], sizeof(double));
    tu_fill(I->rf, I->yn[0], seed * 16 + 9, 1.0f);
    if (op->mean_loss)
        for (size_t j = 0; j < I->yn[0]; j++) I->rf[j] = I->scale;
    tu_f2d(I->rd, I->rf, I->yn[0]);
    I->wf = I->wn ? xcalloc(I->wn, sizeof(float)) : NULL;
    I->wd = I->wn ? xcalloc(I->wn, sizeof(double)) : NULL;
    return I;
}

static void inst_free(inst *I) {
    for (int i = 0; i < MAXT; i++) {
        free(I->xf[i]), free(I->xd[i]), free(I->yf[i]), free(I->yd[i]), free(I->gf[i]), free(I->gd[i]);
    }
    free(I->rf), free(I->rd), free(I->wf), free(I->wd), free(I->ids), free(I->km), free(I->cs);
    free(I);
}

/* Sets the requested gradients (float and double alike) to U(-1,1) from seed. */
static void grads_init(inst *I, unsigned req, uint64_t seed) {
    for (int i = 0; i < I->nx; i++)
        if (req >> i & 1u) {
            tu_fill(I->gf[i], I->xn[i], seed + (uint64_t)i, 1.0f);
            tu_f2d(I->gd[i], I->gf[i], I->xn[i]);
        }
}

/* L(y+) - L(y-) for the loss L = sum(y[0] * r), summed as sum((y+ - y-) * r) so that the
 * outputs a perturbation leaves unchanged cancel exactly instead of adding rounding noise. */
static double loss_diff(const inst *I, const double *yp, const double *ym) {
    double s = 0.0;
    for (size_t j = 0; j < I->yn[0]; j++) s += (yp[j] - ym[j]) * I->rd[j];
    return s;
}

static char *label(const inst *I, const char *what, unsigned req) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s %s: %s (requested 0x%x)", OPS[I->c->op].name, I->c->label, what, req);
    return buf;
}

/* ---- the generic tests --------------------------------------------------------------------- */

static void test_fast_vs_ref(void **state) {
    const tcase *c = *state;
    const opdesc *op = &OPS[c->op];
    inst *I = inst_new(c, 1 + (uint64_t)(c - CASES));
    op->fwd_f(I, 0);
    op->fwd_d(I, 0);
    for (int i = 0; i < I->ny; i++)
        tu_assert_close_fd(I->yf[i], I->yd[i], I->yn[i], c->atol, c->rtol, label(I, I->yname[i], 0));
    if (op->bwd_f) {
        /* Every subset of the gradients, the others NULL, each from non-zero starting values. */
        for (unsigned req = 0; req < 1u << I->nx; req++) {
            if (req & ~I->grads) continue;
            grads_init(I, req, 100 + req);
            op->bwd_f(I, req);
            op->bwd_d(I, req);
            for (int i = 0; i < I->nx; i++)
                if (req >> i & 1u)
                    tu_assert_close_fd(I->gf[i], I->gd[i], I->xn[i], c->atol, c->rtol, label(I, I->xname[i], req));
        }
    }
    inst_free(I);
}

static void test_gradcheck(void **state) {
    const tcase *c = *state;
    const opdesc *op = &OPS[c->op];
    inst *I = inst_new(c, 1000 + (uint64_t)(c - CASES));
    for (int i = 0; i < I->nx; i++)
        if (I->gd[i]) memset(I->gd[i], 0, I->xn[i] * sizeof(double));
    op->fwd_d(I, 0);
    op->bwd_d(I, I->grads);
    double *yp = xcalloc(I->yn[0], sizeof(double));
    int checked = 0;
    for (int i = 0; i < I->nx; i++) {
        if (!(I->grads >> i & 1u)) continue;
        size_t n = I->xn[i], step = n <= FD_SAMPLES ? 1 : n / FD_SAMPLES;
        for (size_t j = (step > 1) ? (size_t)(c - CASES) % step : 0; j < n; j += step) {
            double x0 = I->xd[i][j];
            I->xd[i][j] = x0 + FD_EPS;
            op->fwd_d(I, 0);
            memcpy(yp, I->yd[0], I->yn[0] * sizeof(double));
            I->xd[i][j] = x0 - FD_EPS;
            op->fwd_d(I, 0);
            I->xd[i][j] = x0;
            double fd = loss_diff(I, yp, I->yd[0]) / (2 * FD_EPS), an = I->gd[i][j];
            if (!(fabs(fd - an) <= FD_ATOL + FD_RTOL * fabs(an)))
                fail_msg("%s %s: d loss / d %s[%zu]: finite difference %.12g, reference backward %.12g", op->name,
                         c->label, I->xname[i], j, fd, an);
            checked++;
        }
    }
    assert_true(checked > 0);
    free(yp);
    inst_free(I);
}

static void assert_flops(const inst *I, const pb_flops *got, const pb_flops *want, const char *what, unsigned req) {
    for (int p = 0; p < PB_NPHASE; p++)
        for (int k = 0; k < PB_NKIND; k++)
            if (got->n[p][k] != want->n[p][k])
                fail_msg("%s: %s %s FLOPs %llu, kernels.h says %llu", label(I, what, req), pb_phase_key((pb_phase)p),
                         k == PB_KIND_MATMUL ? "matmul" : "other", (unsigned long long)got->n[p][k],
                         (unsigned long long)want->n[p][k]);
}

static void test_flops(void **state) {
    const tcase *c = *state;
    const opdesc *op = &OPS[c->op];
    inst *I = inst_new(c, 2000 + (uint64_t)(c - CASES));
    pb_flops before, after, got, want;
    memset(&want, 0, sizeof want);
    op->flops(I, 0, 0, &want);
    pb_flops_get(&before);
    op->fwd_f(I, 0);
    pb_flops_get(&after);
    pb_flops_diff(&got, &after, &before);
    assert_flops(I, &got, &want, "forward", 0);
    if (op->bwd_f)
        for (unsigned req = 0; req < 1u << I->nx; req++) {
            if (req & ~I->grads) continue;
            memset(&want, 0, sizeof want);
            op->flops(I, 1, req, &want);
            pb_flops_get(&before);
            op->bwd_f(I, req);
            pb_flops_get(&after);
            pb_flops_diff(&got, &after, &before);
            assert_flops(I, &got, &want, "backward", req);
        }
    inst_free(I);
}

/* Copies of a fast run's outputs and gradients. */
typedef struct {
    float *y[MAXT], *g[MAXT];
} snapshot;

static void run_fast(inst *I, snapshot *s) {
    const opdesc *op = &OPS[I->c->op];
    op->fwd_f(I, 0);
    if (op->bwd_f) {
        grads_init(I, I->grads, 77);
        op->bwd_f(I, I->grads);
    }
    for (int i = 0; i < MAXT; i++) {
        s->y[i] = i < I->ny ? xcalloc(I->yn[i], sizeof(float)) : NULL;
        if (s->y[i]) memcpy(s->y[i], I->yf[i], I->yn[i] * sizeof(float));
        s->g[i] = I->gf[i] ? xcalloc(I->xn[i], sizeof(float)) : NULL;
        if (s->g[i]) memcpy(s->g[i], I->gf[i], I->xn[i] * sizeof(float));
    }
}

static void assert_same_runs(const inst *I, const snapshot *a, const snapshot *b, unsigned which, const char *how) {
    char what[300];
    for (int i = 0; i < I->ny; i++)
        if (which & XT_FWD) {
            snprintf(what, sizeof what, "%s %s: %s", OPS[I->c->op].name, I->c->label, I->yname[i]);
            tu_assert_same(a->y[i], b->y[i], I->yn[i], what);
        }
    for (int i = 0; i < I->nx; i++)
        if (a->g[i] && (which >> i & 1u)) {
            snprintf(what, sizeof what, "%s %s: d%s (%s)", OPS[I->c->op].name, I->c->label, I->xname[i], how);
            tu_assert_same(a->g[i], b->g[i], I->xn[i], what);
        }
}

static void snapshot_free(snapshot *s) {
    for (int i = 0; i < MAXT; i++) free(s->y[i]), free(s->g[i]);
}

static void test_determinism(void **state) {
    const tcase *c = *state;
    const opdesc *op = &OPS[c->op];
    inst *I = inst_new(c, 3000 + (uint64_t)(c - CASES));
    snapshot a, b;
    run_fast(I, &a);
    run_fast(I, &b);
    assert_same_runs(I, &a, &b, ~0u, "twice in a row");
    snapshot_free(&a), snapshot_free(&b);
    if (op->xthreads) {
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        run_fast(I, &a);
        omp_set_num_threads(2);
        run_fast(I, &b);
        omp_set_num_threads(saved);
        assert_same_runs(I, &a, &b, op->xthreads, "1 vs 2 threads");
        snapshot_free(&a), snapshot_free(&b);
    }
    inst_free(I);
}

/* ---- direct checks of documented semantics ----------------------------------------------- */

/* A query with no visible key: probabilities 0, output 0, and nothing flows back through it. */
static void test_attention_no_visible_key(void **state) {
    (void)state;
    enum { B = 1, T = 4, C = 4, H = 1 };
    float q[B * T * C], k[B * T * C], v[B * T * C], out[B * T * C], att[B * H * T * T], datt[B * H * T * T];
    float dout[B * T * C], dq[B * T * C] = {0}, dk[B * T * C] = {0}, dv[B * T * C] = {0};
    uint8_t kmask[B * T] = {0, 1, 1, 1}; /* causal: query 0 sees only key 0, which is masked */
    tu_fill(q, B * T * C, 1, 1.0f), tu_fill(k, B * T * C, 2, 1.0f), tu_fill(v, B * T * C, 3, 1.0f);
    tu_fill(dout, B * T * C, 4, 1.0f);
    pb_attention_fwd(out, att, q, k, v, kmask, B, T, T, C, H, H, 1);
    for (int j = 0; j < T; j++) assert_true(att[j] == 0.0f);
    for (int e = 0; e < C; e++) assert_true(out[e] == 0.0f);
    for (int i = 1; i < T; i++) {
        float s = 0.0f;
        assert_true(att[i * T + 0] == 0.0f);               /* masked key */
        for (int j = i + 1; j < T; j++) assert_true(att[i * T + j] == 0.0f); /* future keys */
        for (int j = 0; j < T; j++) s += att[i * T + j];
        assert_true(fabsf(s - 1.0f) < 1e-6f);
    }
    pb_attention_bwd(dq, dk, dv, datt, dout, att, q, k, v, B, T, T, C, H, H);
    for (int e = 0; e < C; e++) {
        assert_true(dq[e] == 0.0f); /* query 0 */
        assert_true(dk[e] == 0.0f); /* key 0, masked for everyone */
        assert_true(dv[e] == 0.0f);
    }
    /* (query 1 sees key 1 alone, so its dq is 0 too; query 2 sees keys 1 and 2) */
    assert_true(dq[2 * C] != 0.0f && dk[C] != 0.0f && dv[C] != 0.0f);
}

/* p == 0 is an exact copy / accumulation; p > 0 keeps about 1 - p of the elements. */
static void test_dropout_exact(void **state) {
    (void)state;
    enum { n = 20000 };
    float *x = xcalloc(n, sizeof(float)), *y = xcalloc(n, sizeof(float)), *g = xcalloc(n, sizeof(float));
    float *want = xcalloc(n, sizeof(float));
    tu_fill(x, n, 5, 1.0f);
    tu_fill(g, n, 6, 1.0f);
    pb_dropout_fwd(y, x, 0.0f, 42, n);
    tu_assert_same(y, x, n, "dropout p=0 forward");
    for (int i = 0; i < n; i++) want[i] = g[i] + x[i];
    pb_dropout_bwd(g, x, 0.0f, 42, n);
    tu_assert_same(g, want, n, "dropout p=0 backward");
    pb_dropout_fwd(y, x, 0.25f, 42, n);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        kept += y[i] != 0.0f;
        if (y[i] != 0.0f) assert_true(y[i] == x[i] * (1.0f / 0.75f));
    }
    assert_in_range(kept, (int)(0.74 * n), (int)(0.76 * n));
    free(x), free(y), free(g), free(want);
}

/* Ignored rows: loss 0, probabilities still computed, gradient row untouched. */
static void test_crossentropy_ignored(void **state) {
    (void)state;
    enum { N = 3, V = 5 };
    float logits[N * V], probs[N * V], losses[N], d[N * V], d0[N * V];
    int32_t targets[N] = {2, -1, 4};
    tu_fill(logits, N * V, 7, 3.0f);
    tu_fill(d, N * V, 8, 1.0f);
    memcpy(d0, d, sizeof d);
    pb_crossentropy_fwd(losses, probs, logits, targets, N, V);
    assert_true(losses[1] == 0.0f);
    assert_true(losses[0] > 0.0f && losses[2] > 0.0f);
    float s = 0.0f;
    for (int j = 0; j < V; j++) s += probs[V + j];
    assert_true(fabsf(s - 1.0f) < 1e-6f);
    pb_crossentropy_bwd(d, probs, targets, 0.5f, N, V);
    tu_assert_same(d + V, d0 + V, V, "dlogits of the ignored row");
    assert_true(d[2] != d0[2]);
}

/* GELU and SwiGLU over a wide range of inputs, including saturated tails; NaN in gives NaN out of the
 * kernels whose exp is hand-written (a training run must be able to see it diverge). */
static void test_extremes_and_nan(void **state) {
    (void)state;
    enum { n = 13 };
    float x[n] = {-1e4f, -30, -10, -5, -1, -1e-3f, 0, 1e-3f, 1, 5, 10, 30, 1e4f}, y[n], g[n] = {0}, dy[n];
    double xd[n], yd[n], gd[n] = {0}, dyd[n];
    for (int i = 0; i < n; i++) dy[i] = 1.0f;
    tu_f2d(xd, x, n), tu_f2d(dyd, dy, n);
    pb_gelu_fwd(y, x, n), pb_ref_gelu_fwd(yd, xd, n);
    pb_gelu_bwd(g, dy, x, n), pb_ref_gelu_bwd(gd, dyd, xd, n);
    tu_assert_close_fd(y, yd, n, 1e-6, 1e-6, "gelu at extremes");
    tu_assert_close_fd(g, gd, n, 1e-6, 1e-6, "gelu' at extremes");
    float up[n], dgate[n] = {0}, dup[n] = {0};
    double upd[n], dgated[n] = {0}, dupd[n] = {0};
    for (int i = 0; i < n; i++) up[i] = 1.0f;
    tu_f2d(upd, up, n);
    pb_swiglu_fwd(y, x, up, n), pb_ref_swiglu_fwd(yd, xd, upd, n);
    pb_swiglu_bwd(dgate, dup, dy, x, up, n), pb_ref_swiglu_bwd(dgated, dupd, dyd, xd, upd, n);
    tu_assert_close_fd(y, yd, n, 1e-6, 1e-6, "swiglu at extremes");
    tu_assert_close_fd(dgate, dgated, n, 1e-6, 1e-6, "swiglu d(gate) at extremes");
    tu_assert_close_fd(dup, dupd, n, 1e-6, 1e-6, "swiglu d(up) at extremes");

    float row[4] = {1.0f, NAN, -2.0f, 0.5f}, out[4], probs[4], loss;
    int32_t target = 0;
    pb_gelu_fwd(out, row, 4);
    assert_true(isnan(out[1]) && !isnan(out[0]));
    pb_softmax_fwd(out, row, 1, 4);
    for (int j = 0; j < 4; j++) assert_true(isnan(out[j]));
    pb_crossentropy_fwd(&loss, probs, row, &target, 1, 4);
    assert_true(isnan(loss));
}

/* The data-movement and column helpers, the in-place GELU backward, the skinny products (split
 * into fixed blocks) and the Fisher accumulation: each against its plain definition, and the same
 * bits at 1 and 2 threads where the kernel promises it. */
static void test_helpers_and_skinny(void **state) {
    (void)state;
    enum { N = 300, C = 70, n = N * C };
    float *a = xcalloc(n, sizeof(float)), *b = xcalloc(n, sizeof(float)), *y = xcalloc(n, sizeof(float));
    float *z = xcalloc(n, sizeof(float)), *sc = xcalloc(C, sizeof(float)), d1[C], d2[C];
    tu_fill(a, n, 1, 1.0f), tu_fill(b, n, 2, 1.0f), tu_fill(sc, C, 3, 1.0f);
    pb_copy(y, a, n);
    tu_assert_same(y, a, n, "pb_copy");
    pb_zero(y, n);
    for (int i = 0; i < n; i++) assert_true(y[i] == 0.0f);
    /* in-place GELU backward = pb_gelu_bwd into a zeroed buffer, bit for bit */
    pb_gelu_bwd(y, b, a, n);
    pb_copy(z, b, n);
    pb_gelu_bwd_inplace(z, a, n);
    tu_assert_same(z, y, n, "gelu backward in place");
    /* column sums and column scaling */
    double ref[C];
    for (int c = 0; c < C; c++) {
        ref[c] = 0.5;
        for (int r = 0; r < N; r++) ref[c] += (double)a[r * C + c] * b[r * C + c];
    }
    for (int t = 1; t <= 2; t++) {
        int saved = omp_get_max_threads();
        omp_set_num_threads(t);
        float *d = t == 1 ? d1 : d2;
        for (int c = 0; c < C; c++) d[c] = 0.5f;
        pb_colsum(d, a, b, N, C);
        omp_set_num_threads(saved);
    }
    tu_assert_close_fd(d1, ref, C, 1e-4, 1e-4, "pb_colsum");
    tu_assert_same(d1, d2, C, "pb_colsum at 1 and 2 threads");
    pb_scale_cols(y, a, sc, N, C, 0);
    pb_scale_cols(y, a, sc, N, C, 1);
    for (int i = 0; i < n; i++) assert_true(y[i] == a[i] * sc[i % C] + a[i] * sc[i % C]);
    /* skinny products through pb_gemm (split into blocks): every transpose case, tall and wide */
    enum { L = 600, K = 96, R = 5 };
    float *A = xcalloc(L * K, sizeof(float)), *B = xcalloc(L * K, sizeof(float));
    float *P1 = xcalloc(L * L, sizeof(float)), *P2 = xcalloc(L * L, sizeof(float));
    tu_fill(A, L * K, 4, 1.0f), tu_fill(B, L * K, 5, 1.0f);
    for (int w = 0; w < 4; w++) /* R or 1 wide (matrix-vector), tall or wide */
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int tall = w & 1, narrow = w & 2 ? 1 : R;
                int M = tall ? L : narrow, Nn = tall ? narrow : L;
                int lda = ta ? M : K, ldb = tb ? K : Nn;
                for (int t = 1; t <= 2; t++) {
                    int saved = omp_get_max_threads();
                    omp_set_num_threads(t);
                    float *P = t == 1 ? P1 : P2;
                    for (int i = 0; i < M * Nn; i++) P[i] = 1.0f;
                    pb_gemm(PB_PHASE_FWD, ta, tb, M, Nn, K, 0.5f, A, lda, B, ldb, 2.0f, P, Nn);
                    omp_set_num_threads(saved);
                }
                double *pr = xcalloc((size_t)M * Nn, sizeof(double));
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < Nn; j++) {
                        double acc = 0.0;
                        for (int k = 0; k < K; k++)
                            acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                        pr[i * Nn + j] = 0.5 * acc + 2.0;
                    }
                tu_assert_close_fd(P1, pr, (size_t)M * Nn, 1e-4, 1e-4, "skinny pb_gemm");
                tu_assert_same(P1, P2, (size_t)M * Nn, "skinny pb_gemm at 1 and 2 threads");
                free(pr);
            }
    /* Fisher accumulation: F += (scale_g dout_g^T inp_g)^2 per group (scale 0 skipped), 1 vs 2 threads */
    enum { NG = 3, T = 7, OC = 70, IC = 9 };
    float *dout = xcalloc(NG * T * OC, sizeof(float)), *inp = xcalloc(NG * T * IC, sizeof(float));
    float *F1 = xcalloc(OC * IC, sizeof(float)), *F2 = xcalloc(OC * IC, sizeof(float)), *G = xcalloc(OC * IC, sizeof(float));
    float scale[NG] = {0.5f, 0.0f, 2.0f};
    double *Fr = xcalloc(OC * IC, sizeof(double));
    tu_fill(dout, NG * T * OC, 6, 1.0f), tu_fill(inp, NG * T * IC, 7, 1.0f);
    for (int t = 1; t <= 2; t++) {
        int saved = omp_get_max_threads();
        omp_set_num_threads(t);
        float *F = t == 1 ? F1 : F2;
        for (int i = 0; i < OC * IC; i++) F[i] = 0.25f;
        pb_fisher_accum(F, G, dout, inp, scale, NG, T, IC, OC);
        omp_set_num_threads(saved);
    }
    for (int i = 0; i < OC * IC; i++) Fr[i] = 0.25;
    for (int g = 0; g < NG; g++)
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < IC; k++) {
                double acc = 0.0;
                for (int t = 0; t < T; t++) acc += (double)dout[(g * T + t) * OC + o] * inp[(g * T + t) * IC + k];
                Fr[o * IC + k] += scale[g] * acc * scale[g] * acc;
            }
    tu_assert_close_fd(F1, Fr, OC * IC, 1e-4, 1e-4, "pb_fisher_accum");
    tu_assert_same(F1, F2, OC * IC, "pb_fisher_accum at 1 and 2 threads");
    free(a), free(b), free(y), free(z), free(sc), free(A), free(B), free(P1), free(P2);
    free(dout), free(inp), free(F1), free(F2), free(G), free(Fr);
}

/* The in-place backwards of SwiGLU and RoPE are their accumulating backwards into zeroed buffers,
 * bit for bit, and RoPE in place is RoPE out of place. RoPE is Hugging Face LLaMA's rotate_half
 * convention, worked by hand: with hs = 4 and theta = 10000, channels (0, 2) turn by the angle p
 * and channels (1, 3) by p / 100 at position p. And rotated queries and keys score by their
 * relative position only: <R_m q, R_n k> = <R_{m+3} q, R_{n+3} k>. */
static void test_swiglu_rope_semantics(void **state) {
    (void)state;
    enum { n = 3000 };
    float *g = xcalloc(n, sizeof(float)), *u = xcalloc(n, sizeof(float)), *d = xcalloc(n, sizeof(float));
    float *dg1 = xcalloc(n, sizeof(float)), *du1 = xcalloc(n, sizeof(float)), *dg2 = xcalloc(n, sizeof(float));
    tu_fill(g, n, 1, 8.0f), tu_fill(u, n, 2, 2.0f), tu_fill(d, n, 3, 1.0f);
    pb_swiglu_bwd(dg1, du1, d, g, u, n);
    pb_swiglu_bwd_inplace(dg2, d, g, u, n);
    tu_assert_same(dg2, dg1, n, "swiglu backward in place: d(gate)");
    tu_assert_same(d, du1, n, "swiglu backward in place: d(up)");

    enum { B = 2, T = 6, NH = 3, HS = 8, P0 = 4, W = NH * HS };
    float cs[(P0 + T) * HS], x[B * T * W], y[B * T * W], dy[B * T * W], dx[B * T * W] = {0};
    pb_rope_table(cs, P0 + T, HS, 10000.0f);
    tu_fill(x, B * T * W, 4, 1.0f), tu_fill(dy, B * T * W, 5, 1.0f);
    pb_rope_fwd(y, x, cs, B, T, NH, HS, P0);
    pb_rope_fwd(x, x, cs, B, T, NH, HS, P0);
    tu_assert_same(x, y, B * T * W, "rope forward in place");
    pb_rope_bwd(dx, dy, cs, B, T, NH, HS, P0);
    pb_rope_bwd_inplace(dy, cs, B, T, NH, HS, P0);
    tu_assert_same(dy, dx, B * T * W, "rope backward in place");

    float t4[3 * 4], e[4] = {1, 0, 0, 0}, f[4] = {0, 1, 0, 0}, o[4];
    pb_rope_table(t4, 3, 4, 10000.0f);
    pb_rope_fwd(o, e, t4, 1, 1, 1, 4, 2); /* position 2 */
    assert_true(fabsf(o[0] - cosf(2.0f)) < 1e-6f && o[1] == 0.0f && fabsf(o[2] - sinf(2.0f)) < 1e-6f && o[3] == 0.0f);
    pb_rope_fwd(o, f, t4, 1, 1, 1, 4, 2);
    assert_true(o[0] == 0.0f && fabsf(o[1] - cosf(0.02f)) < 1e-6f && o[2] == 0.0f && fabsf(o[3] - sinf(0.02f)) < 1e-6f);

    enum { PR = 16 };
    float tab[PR * HS], q[HS], k[HS], qa[HS], ka[HS], qb[HS], kb[HS];
    pb_rope_table(tab, PR, HS, 10000.0f);
    tu_fill(q, HS, 6, 1.0f), tu_fill(k, HS, 7, 1.0f);
    pb_rope_fwd(qa, q, tab, 1, 1, 1, HS, 5), pb_rope_fwd(ka, k, tab, 1, 1, 1, HS, 2);
    pb_rope_fwd(qb, q, tab, 1, 1, 1, HS, 8), pb_rope_fwd(kb, k, tab, 1, 1, 1, HS, 5);
    float sa = 0.0f, sb = 0.0f;
    for (int i = 0; i < HS; i++) sa += qa[i] * ka[i], sb += qb[i] * kb[i];
    assert_true(fabsf(sa - sb) < 1e-5f);
    free(g), free(u), free(d), free(dg1), free(du1), free(dg2);
}

/* ---- registration: every generic test over every case ------------------------------------ */

typedef struct {
    const char *name;
    CMUnitTestFunction fn;
    int needs_bwd;
} generic_test;

static const generic_test GENERIC[] = {
    {"fast_vs_ref", test_fast_vs_ref, 0},
    {"gradcheck", test_gradcheck, 1},
    {"flops", test_flops, 0},
    {"determinism", test_determinism, 0},
};
#define NGENERIC (sizeof GENERIC / sizeof GENERIC[0])
#define NDIRECT 6 /* the direct checks registered after the generic ones */

int main(void) {
    struct CMUnitTest *tests = xcalloc(NCASES * NGENERIC + NDIRECT, sizeof *tests);
    size_t n = 0;
    for (size_t g = 0; g < NGENERIC; g++)
        for (size_t k = 0; k < NCASES; k++) {
            if (GENERIC[g].needs_bwd && !OPS[CASES[k].op].bwd_f) continue;
            char *name = xcalloc(160, 1);
            snprintf(name, 160, "%s: %s %s", GENERIC[g].name, OPS[CASES[k].op].name, CASES[k].label);
            tests[n++] = (struct CMUnitTest){name, GENERIC[g].fn, NULL, NULL, &CASES[k]};
        }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_attention_no_visible_key);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_dropout_exact);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_crossentropy_ignored);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_extremes_and_nan);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_helpers_and_skinny);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_swiglu_rope_semantics);
    int failed = _cmocka_run_group_tests("kernels", tests, n, NULL, NULL);
    for (size_t i = 0; i < n - NDIRECT; i++) free((char *)tests[i].name);
    free(tests);
    return failed;
}
