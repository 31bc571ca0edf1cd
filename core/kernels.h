/* kernels.h — the engine's kernels: forward/backward pairs over plain float arrays.
 *
 * Conventions (docs/ARCHITECTURE.md, STYLE.md):
 *  - Argument order: outputs, saved activations, inputs, parameters, dimensions. A backward
 *    takes the same order with `d`-prefixed gradients first.
 *  - Every backward ACCUMULATES (+=) into its gradient outputs. A NULL gradient output is
 *    skipped entirely: its FLOPs are neither spent nor counted. This is how frozen tensors cost
 *    nothing and how backward stops early.
 *  - Matrix products go through cblas_sgemm (OpenBLAS, OpenMP flavour); everything else is an
 *    OpenMP loop with a static schedule and no floating-point reduction across threads, so
 *    results are bit-identical run to run at a given thread count.
 *  - Each kernel adds its FLOPs to the thread's counters (pb_flops.h) once, on the calling
 *    thread. The per-element counts stated below are the documented rule; tests check them.
 *  - Shapes: N rows (N = B*T for token-wise ops), C channels, B batch, T (Tq, Tk) sequence
 *    length, H query heads, Hkv key/value heads (H % Hkv == 0), hs = C / H head size,
 *    V vocabulary, IC/OC in/out features.
 *
 * Every forward/backward pair here has a double-precision naive twin in ref.h, the test oracle.
 * The helpers (pb_zero, pb_copy, pb_colsum, pb_scale_cols), the in-place backwards
 * (pb_gelu_bwd_inplace, pb_swiglu_bwd_inplace, pb_rope_bwd_inplace) and pb_fisher_accum are
 * checked against their plain definitions in tests/test_kernels.c.
 */
#ifndef PB_KERNELS_H
#define PB_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "pb_flops.h"

/* ---- data movement --------------------------------------------------------------------- */

/* x (n) = 0 and dst (n) = src (n), split over the threads in fixed chunks (a serial memset of
 * the (N, d_ff) gradient buffers does not shrink with the thread count). Count nothing. */
void pb_zero(float *x, size_t n);
void pb_copy(float *dst, const float *src, size_t n);

/* Column-wise helpers for methods' elementwise work. They count nothing: the caller counts by
 * its own documented rule.
 * pb_colsum: d (C) += sum over rows n of a (N,C) * b (N,C) (of a alone when b is NULL), each
 *   column summed in row order into a local accumulator by one thread (blocks of channels), so
 *   the result does not depend on the thread count.
 * pb_scale_cols: y (N,C) = x (N,C) * s (C), row by row (y += ... when accumulate). */
void pb_colsum(float *d, const float *a, const float *b, int N, int C);
void pb_scale_cols(float *y, const float *x, const float *s, int N, int C, int accumulate);

/* ---- matrix products ------------------------------------------------------------------ */

/* Row-major C(M,N) = alpha * op(A) op(B) + beta * C, through cblas_sgemm; adds 2*M*N*K
 * MATMUL FLOPs to `phase`. For use by methods that need a product the linear kernels don't
 * cover. */
void pb_gemm(pb_phase phase, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Linear layer, PyTorch weight layout.
 *   out (N,OC) = inp (N,IC) . w(OC,IC)^T + b(OC)       b may be NULL
 * FLOPs: fwd MATMUL 2*N*IC*OC; fwd OTHER N*OC when b != NULL. */
void pb_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC);
/*   dinp (N,IC) += dout . w       bwd_in  MATMUL 2*N*IC*OC      (skipped if dinp NULL)
 *   dw (OC,IC)  += dout^T . inp   bwd_w   MATMUL 2*N*IC*OC      (skipped if dw NULL)
 *   db (OC)     += sum_n dout     bwd_w   OTHER  N*OC           (skipped if db NULL) */
void pb_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                   int IC, int OC);

/* The empirical Fisher of a linear layer's weight from per-example gradients: for each group g
 * of T rows with scale[g] != 0, F (OC,IC) += (scale[g] dout_g^T inp_g)^2, dout (groups*T, OC),
 * inp (groups*T, IC); G (OC, IC) is workspace. Split over fixed blocks of output rows: a block's
 * products (single-threaded sgemm) and squares are taken by one thread in group order, while
 * they are in cache, so F has the same bits at any thread count. FLOPs per group that is not
 * skipped: bwd_w MATMUL 2*OC*IC*T, bwd_w OTHER 3*OC*IC. */
void pb_fisher_accum(float *F, float *G, const float *dout, const float *inp, const float *scale, int groups, int T,
                     int IC, int OC);

/* ---- normalisation and pointwise ------------------------------------------------------ */

#define PB_LN_EPS 1e-5f
/* LayerNorm over the last dimension, eps PB_LN_EPS (biased variance).
 *   out (N,C), mean (N), rstd (N) saved; inp (N,C); w, b (C)   b may be NULL
 * FLOPs: fwd OTHER 8*N*C. */
void pb_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      int N, int C);
/* dinp += ... bwd_in OTHER 10*N*C; dw += ... bwd_w OTHER 3*N*C (counts dw and db together,
 * 2*N*C for dw alone, N*C for db alone). */
void pb_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                      const float *mean, const float *rstd, int N, int C);

/* RMSNorm over the last dimension (LLaMA's LlamaRMSNorm: no mean, no bias), epsilon eps:
 *   out (N,C) = inp * rstd * w,  rstd (N) = 1 / sqrt(mean_c(inp^2) + eps) saved; inp (N,C), w (C)
 * FLOPs: fwd OTHER 5*N*C. */
void pb_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
/* dinp += ... bwd_in OTHER 7*N*C; dw += ... bwd_w OTHER 2*N*C. */
void pb_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                    int N, int C);

/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 * FLOPs: fwd OTHER 9*n; bwd_in OTHER 16*n. */
void pb_gelu_fwd(float *out, const float *inp, size_t n);
void pb_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n);
/* The same backward in place, d = gelu'(inp) * d: the bits of pb_gelu_bwd into a zeroed buffer,
 * without the zeroing and the extra pass (the model's (N, d_ff) MLP gradient). Same FLOPs. */
void pb_gelu_bwd_inplace(float *d, const float *inp, size_t n);

/* SwiGLU's gated activation (LLaMA's act_fn(gate_proj(x)) * up_proj(x)):
 *   out (n) = silu(gate) * up,  silu(g) = g sigmoid(g);  gate, up (n)
 * FLOPs: fwd OTHER 5*n (the sigmoid 4, the product 1). */
void pb_swiglu_fwd(float *out, const float *gate, const float *up, size_t n);
/* dgate (n) += dout * up * silu'(gate), dup (n) += dout * silu(gate); either may be NULL (both:
 * nothing done). FLOPs: bwd_in OTHER 8*n when either is requested (the activation is recomputed
 * once for both). */
void pb_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);
/* The same backward in place, for the model's (N, d_ff) buffers: d holds d(out) on entry and
 * d(up) on exit, and dgate (n) is written, not accumulated: the bits of pb_swiglu_bwd into
 * zeroed buffers, without the zeroing. Same FLOPs. */
void pb_swiglu_bwd_inplace(float *dgate, float *d, const float *gate, const float *up, size_t n);

/* out = a + b (residual connection). FLOPs: fwd OTHER n. Its backward is a copy of dout into
 * both branches, done by the caller's accumulation and not counted. */
void pb_add_fwd(float *out, const float *a, const float *b, size_t n);

/* Row-wise softmax: out (N,C) from inp (N,C). FLOPs: fwd OTHER 5*N*C; bwd_in OTHER 4*N*C. */
void pb_softmax_fwd(float *out, const float *inp, int N, int C);
void pb_softmax_bwd(float *dinp, const float *dout, const float *out, int N, int C);

/* Inverted dropout with probability p in [0,1): out = inp * keep / (1-p), keep_i =
 * pb_hash_uniform(seed, i) >= p. The mask is recomputed in backward from (seed, i), so nothing
 * is saved. p == 0 copies. FLOPs: fwd OTHER n; bwd_in OTHER n (0 when p == 0). */
void pb_dropout_fwd(float *out, const float *inp, float p, uint64_t seed, size_t n);
void pb_dropout_bwd(float *dinp, const float *dout, float p, uint64_t seed, size_t n);

/* ---- attention ------------------------------------------------------------------------ */

/* Multi-head scaled dot-product attention with optional grouped key/value heads.
 *   out (B,Tq,C)             concatenated heads
 *   att (B,H,Tq,Tk)          saved softmax probabilities
 *   q (B,Tq,C), k, v (B,Tk,Hkv*hs)   head h reads columns [h*hs, (h+1)*hs) of q and kv head
 *                            h / (H/Hkv) of k and v
 *   kmask (B,Tk) or NULL     key j of sequence b is attended only if kmask[b*Tk+j] != 0
 *   causal                   query i attends key j only if j <= i + (Tk - Tq) (so extra keys
 *                            in front, e.g. prefixes, are visible to every query)
 * Scores are scaled by 1/sqrt(hs). A query with no visible key outputs zeros.
 * FLOPs per call: fwd MATMUL 4*B*H*Tq*Tk*hs (scores and weighted sum, full blocks);
 *                 fwd OTHER  B*H*Tq*Tk*(1 + 5) (scale, softmax).
 * The products run as per-(b, head) cblas_sgemm calls inside one OpenMP loop. */
void pb_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                      const uint8_t *kmask, int B, int Tq, int Tk, int C, int H, int Hkv, int causal);
/* Backward; datt (B,H,Tq,Tk) is caller-provided workspace (contents on entry ignored).
 *   dq (B,Tq,C) += ...; dk, dv (B,Tk,Hkv*hs) += ...   any of them may be NULL (skipped; if all
 *   three are NULL nothing is done)
 * FLOPs: bwd_in MATMUL 2*B*H*Tq*Tk*hs for d(att) = dout.v^T, plus 2*B*H*Tq*Tk*hs for each of
 *        dq, dk, dv requested; bwd_in OTHER B*H*Tq*Tk*(4 + 1) (softmax backward, scale). */
void pb_attention_bwd(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                      const float *q, const float *k, const float *v, int B, int Tq, int Tk, int C, int H,
                      int Hkv);

/* ---- rotary position embeddings -------------------------------------------------------- */

/* RoPE, the Hugging Face LLaMA convention (rotate_half): in every head of width hs (even), channel
 * i < hs/2 is paired with channel i + hs/2 and the pair is rotated by the angle p * theta^(-2i/hs),
 * p the token's position:
 *   out[i]        = x[i] cos - x[i + hs/2] sin
 *   out[i + hs/2] = x[i + hs/2] cos + x[i] sin
 * The angles come from a table cs (P, hs) that pb_rope_table fills once per shape: row p holds the
 * cosines of its hs/2 angles, then their sines (computed in double). It counts nothing. */
void pb_rope_table(float *cs, int P, int hs, float theta);
/* out, x (B,T,nh*hs): token t of every sequence is at position pos0 + t (rows pos0 .. pos0+T-1 of
 * cs are read). out may be x (in place). FLOPs: fwd OTHER 3*B*T*nh*hs. */
void pb_rope_fwd(float *out, const float *x, const float *cs, int B, int T, int nh, int hs, int pos0);
/* dx (B,T,nh*hs) += the rotation by the opposite angle of dout. FLOPs: bwd_in OTHER 3*B*T*nh*hs. */
void pb_rope_bwd(float *dx, const float *dout, const float *cs, int B, int T, int nh, int hs, int pos0);
/* The same backward in place, d = R^T d: the bits of pb_rope_bwd into a zeroed buffer (the
 * model's dq, dk). Same FLOPs. */
void pb_rope_bwd_inplace(float *d, const float *cs, int B, int T, int nh, int hs, int pos0);

/* ---- embeddings and loss --------------------------------------------------------------- */

/* out (B,T,C) = wte[ids[b,t]] + wpe[t]; wpe (>=T, C) may be NULL. ids must be in [0, V).
 * FLOPs: fwd OTHER B*T*C when wpe != NULL (the add), else 0. */
void pb_embedding_fwd(float *out, const int32_t *ids, const float *wte, const float *wpe, int B, int T, int C);
/* dwte (V,C) += scatter of dout by ids; dwpe (T,C) += sum over b. NULL skips.
 * Deterministic: parallel over channels, never two threads on one element.
 * FLOPs: bwd_w OTHER B*T*C for each of dwte, dwpe requested. */
void pb_embedding_bwd(float *dwte, float *dwpe, const float *dout, const int32_t *ids, int B, int T, int C);

/* Cross-entropy from logits. losses (N) = -log softmax(logits (N,V))[targets[n]]; rows with
 * targets[n] < 0 are ignored (loss 0, no gradient). probs (N,V) saved.
 * FLOPs: fwd OTHER 5*N*V + N (softmax and log; every row, ignored ones included, since
 *        their probabilities are computed too). */
void pb_crossentropy_fwd(float *losses, float *probs, const float *logits, const int32_t *targets, int N, int V);
/* dlogits (N,V) += scale * (probs - onehot(target)) for non-ignored rows (scale usually
 * 1/number of non-ignored rows). FLOPs: bwd_in OTHER 2*N*V. */
void pb_crossentropy_bwd(float *dlogits, const float *probs, const int32_t *targets, float scale, int N, int V);

#endif
