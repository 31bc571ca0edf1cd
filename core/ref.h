/* ref.h — naive double-precision twins of the kernels in kernels.h: the test oracle; slow on
 * purpose.
 *
 * Each pb_ref_<name> has the argument order and semantics of pb_<name> (outputs, saved
 * activations, inputs, parameters, dimensions; backward ACCUMULATES into its gradients; a NULL
 * gradient is skipped), with double* in place of float*. Integer arrays (ids, targets, kmask)
 * and scalar arguments keep their types, so a dropout mask is the same pb_hash_uniform rule.
 *
 * Not: fast, threaded, or FLOP-counted. Plain loops, no BLAS, no OpenMP. No twin of pb_gemm.
 * Shapes and letters as in kernels.h.
 */
#ifndef PB_REF_H
#define PB_REF_H

#include <stddef.h>
#include <stdint.h>

/* out (N,OC) = inp (N,IC) . w(OC,IC)^T + b(OC); b may be NULL */
void pb_ref_linear_fwd(double *out, const double *inp, const double *w, const double *b, int N, int IC, int OC);
/* dinp (N,IC), dw (OC,IC), db (OC) += ... */
void pb_ref_linear_bwd(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                       const double *w, int N, int IC, int OC);

/* out (N,C), mean (N), rstd (N); inp (N,C), w (C), b (C) or NULL; eps PB_LN_EPS */
void pb_ref_layernorm_fwd(double *out, double *mean, double *rstd, const double *inp, const double *w,
                          const double *b, int N, int C);
void pb_ref_layernorm_bwd(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                          const double *w, const double *mean, const double *rstd, int N, int C);

/* out (N,C), rstd (N); inp (N,C), w (C) */
void pb_ref_rmsnorm_fwd(double *out, double *rstd, const double *inp, const double *w, int N, int C, float eps);
void pb_ref_rmsnorm_bwd(double *dinp, double *dw, const double *dout, const double *inp, const double *w,
                        const double *rstd, int N, int C);

void pb_ref_gelu_fwd(double *out, const double *inp, size_t n);
void pb_ref_gelu_bwd(double *dinp, const double *dout, const double *inp, size_t n);

void pb_ref_add_fwd(double *out, const double *a, const double *b, size_t n);

/* out = silu(gate) * up; dgate, dup += ... */
void pb_ref_swiglu_fwd(double *out, const double *gate, const double *up, size_t n);
void pb_ref_swiglu_bwd(double *dgate, double *dup, const double *dout, const double *gate, const double *up, size_t n);

void pb_ref_softmax_fwd(double *out, const double *inp, int N, int C);
void pb_ref_softmax_bwd(double *dinp, const double *dout, const double *out, int N, int C);

void pb_ref_dropout_fwd(double *out, const double *inp, float p, uint64_t seed, size_t n);
void pb_ref_dropout_bwd(double *dinp, const double *dout, float p, uint64_t seed, size_t n);

/* out (B,Tq,C), att (B,H,Tq,Tk); q (B,Tq,C), k, v (B,Tk,Hkv*hs); kmask (B,Tk) or NULL */
void pb_ref_attention_fwd(double *out, double *att, const double *q, const double *k, const double *v,
                          const uint8_t *kmask, int B, int Tq, int Tk, int C, int H, int Hkv, int causal);
/* dq, dk, dv += ...; datt (B,H,Tq,Tk) workspace */
void pb_ref_attention_bwd(double *dq, double *dk, double *dv, double *datt, const double *dout, const double *att,
                          const double *q, const double *k, const double *v, int B, int Tq, int Tk, int C, int H,
                          int Hkv);

/* RoPE on x (B,T,nh*hs) at positions pos0.., the angles computed here from theta (the fast
 * kernels read them from pb_rope_table's table, which this checks too); dx += R^T dout. */
void pb_ref_rope_fwd(double *out, const double *x, int B, int T, int nh, int hs, int pos0, float theta);
void pb_ref_rope_bwd(double *dx, const double *dout, int B, int T, int nh, int hs, int pos0, float theta);

void pb_ref_embedding_fwd(double *out, const int32_t *ids, const double *wte, const double *wpe, int B, int T,
                          int C);
void pb_ref_embedding_bwd(double *dwte, double *dwpe, const double *dout, const int32_t *ids, int B, int T, int C);

void pb_ref_crossentropy_fwd(double *losses, double *probs, const double *logits, const int32_t *targets, int N,
                             int V);
void pb_ref_crossentropy_bwd(double *dlogits, const double *probs, const int32_t *targets, float scale, int N,
                             int V);

#endif
