/* kernels.c — the fast float kernels declared in kernels.h.
 *
 * Matrix products go through cblas_sgemm (OpenBLAS, OpenMP flavour, row-major). Everything
 * else is a plain `#pragma omp parallel for schedule(static)` loop in which every output
 * element is written by exactly one thread and every sum is taken by one thread in a fixed
 * order. Row-wise reductions (softmax, LayerNorm statistics) may be vectorised with
 * `omp simd reduction`, which fixes the summation order at compile time, not at run time.
 *
 * Determinism, what is guaranteed (tests/test_kernels.c asserts exactly this):
 *  - Run to run at a given thread count: every kernel is bit-identical, provided OpenBLAS's
 *    sgemm is (it is for a fixed thread count and fixed pointers).
 *  - Across thread counts: every non-BLAS kernel (LayerNorm, RMSNorm, GELU, SwiGLU, add,
 *    softmax, dropout, RoPE, embedding, cross-entropy) and linear's bias gradient db are bit-identical, because work
 *    is split over rows or over channel blocks whose sums never cross a thread. Attention
 *    is bit-identical too: its products are per-head sgemm calls made inside an OpenMP
 *    parallel region, where the OpenMP build of OpenBLAS runs single-threaded (and with one
 *    thread it is single-threaded anyway). So are pb_fisher_accum and the skinny products of
 *    pb_gemm / pb_linear_* (one output dimension <= 8, e.g. LoRA's rank-r products), which are
 *    split into fixed blocks with one single-threaded sgemm each (see gemm() below). The other
 *    products of pb_gemm and pb_linear_* run on OpenBLAS's threads and are NOT guaranteed
 *    identical across thread counts.
 *
 * Vectorisation: the build's -O2 uses GCC's "very cheap" vectoriser cost model, which leaves
 * most loops scalar, so the hot loops say `omp simd` (or `parallel for simd`). Vector lanes
 * compute exactly what the scalar remainder would (ISO C mode: no FMA contraction; no
 * fast-math), so which elements fall into a thread's vector body or remainder changes
 * nothing. exp goes through exp_v below, plain arithmetic that vectorises; GELU is written
 * as x * sigmoid(2u), the same function as 0.5 x (1 + tanh u).
 *
 * Reductions over rows (linear db, LayerNorm dw/db, RMSNorm dw, embedding backward) are parallelised
 * over blocks of PB_CBLOCK channels: a thread streams over all rows and adds its block into a
 * small local accumulator, so the loop over channels vectorises and each channel is summed
 * in row order whatever the thread count.
 *
 * FLOPs are counted once per call, on the calling thread, outside the parallel regions, by
 * the rules written beside each kernel in kernels.h.
 *
 * Not here: the double-precision oracle (ref.c), tensor allocation (pb_mem.h).
 */
#include "kernels.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "pb_rng.h"

#define PB_CBLOCK 64 /* channels per block in the parallel-over-channels reductions */
#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* exp(x) in plain arithmetic, so that the loops calling it vectorise (libm's expf is a call
 * per element, and glibc's tanhf is slower still: GELU through tanhf cost more than the two
 * MLP matrix products around it). exp(x) = 2^n e^r with n = round(x / ln 2), |r| <= ln2 / 2
 * (Cody-Waite split of ln 2), e^r by its Taylor polynomial to degree 7 (truncation < 1e-8
 * relative), 2^n put in the exponent bits. Within a few ulp of expf. x < -87 (including
 * -inf, i.e. masked scores) gives exactly 0, x > 88 is clamped, NaN gives NaN. */
static inline float exp_v(float x) {
    float xc = x > -87.0f ? x : -87.0f; /* also maps NaN to -87: the integer work stays defined */
    xc = xc < 88.0f ? xc : 88.0f;
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* n in [-126, 127]: a normal 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float y = x < -87.0f ? 0.0f : p * scale;
    return x == x ? y : x;
}

/* ---- data movement --------------------------------------------------------------------- */

#define PB_MOVE_CHUNK 16384 /* floats per chunk of pb_zero / pb_copy */

void pb_zero(float *x, size_t n) {
    /* x (n) */
    if (n <= PB_MOVE_CHUNK) {
        memset(x, 0, n * sizeof(float));
        return;
    }
    long nchunk = (long)((n + PB_MOVE_CHUNK - 1) / PB_MOVE_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunk; c++) {
        size_t lo = (size_t)c * PB_MOVE_CHUNK, len = n - lo < PB_MOVE_CHUNK ? n - lo : PB_MOVE_CHUNK;
        memset(x + lo, 0, len * sizeof(float));
    }
}

void pb_copy(float *dst, const float *src, size_t n) {
    /* dst (n), src (n), not overlapping */
    if (n <= PB_MOVE_CHUNK) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    long nchunk = (long)((n + PB_MOVE_CHUNK - 1) / PB_MOVE_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunk; c++) {
        size_t lo = (size_t)c * PB_MOVE_CHUNK, len = n - lo < PB_MOVE_CHUNK ? n - lo : PB_MOVE_CHUNK;
        memcpy(dst + lo, src + lo, len * sizeof(float));
    }
}

void pb_colsum(float *d, const float *a, const float *b, int N, int C) {
    /* d (C) accumulated; a (N,C), b (N,C) or NULL */
    int nblk = (C + PB_CBLOCK - 1) / PB_CBLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * PB_CBLOCK, nc = imin(PB_CBLOCK, C - c0);
        float acc[PB_CBLOCK] = {0}; /* (nc) */
        for (int n = 0; n < N; n++) {
            const float *ar = a + (size_t)n * C + c0; /* (nc) */
            if (b) {
                const float *br = b + (size_t)n * C + c0; /* (nc) */
#pragma omp simd
                for (int c = 0; c < nc; c++) acc[c] += ar[c] * br[c];
            } else {
#pragma omp simd
                for (int c = 0; c < nc; c++) acc[c] += ar[c];
            }
        }
#pragma omp simd
        for (int c = 0; c < nc; c++) d[c0 + c] += acc[c];
    }
}

void pb_scale_cols(float *y, const float *x, const float *s, int N, int C, int accumulate) {
    /* y (N,C) written or accumulated; x (N,C), s (C) */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C; /* (C) */
        float *yr = y + (size_t)n * C;       /* (C) */
        if (accumulate) {
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] += xr[c] * s[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = xr[c] * s[c];
        }
    }
}

/* ---- matrix products ------------------------------------------------------------------ */

/* Row-major C(M,N) = alpha op(A)(M,K) op(B)(K,N) + beta C, with the degenerate sizes that
 * cblas rejects (M, N or K zero) handled here. Counts nothing. */
static void sgemm_rm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

/* sgemm_rm for the products of every method and linear layer. A skinny product (one output
 * dimension at most SKINNY, the other at least 2 SPLIT_BLOCK: LoRA's rank-r products) is split
 * along its long output dimension into fixed blocks of SPLIT_BLOCK, one single-threaded sgemm per
 * block inside an OpenMP loop: OpenBLAS's own threading of these shapes is slower at 2 threads than
 * at 1. K is never split, so no sum crosses a block, and the blocks do not depend on the thread
 * count. A product with one output row or column is a matrix-vector product (sgemv), split the
 * same way. Everything else goes to OpenBLAS as one call. */
#define SKINNY 8
#define SPLIT_BLOCK 128
/* One block of a product with a single output column (N == 1: C (M,1) with stride ldc) or row
 * (M == 1), as a matrix-vector product: sgemm would pack and pad the whole long operand for one
 * output column (the gates of UniPELT and gated LoRA/adapters). */
static void gemv_block(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    if (N == 1) { /* C (M) = op(A) (M,K) op(B) (K) */
        const float *x = B;
        int incx = trans_b ? 1 : ldb;
        if (!trans_a) cblas_sgemv(CblasRowMajor, CblasNoTrans, M, K, alpha, A, lda, x, incx, beta, C, ldc);
        else cblas_sgemv(CblasRowMajor, CblasTrans, K, M, alpha, A, lda, x, incx, beta, C, ldc);
    } else { /* M == 1: C^T (N) = op(B)^T (N,K) op(A)^T (K) */
        const float *x = A;
        int incx = trans_a ? lda : 1;
        if (trans_b) cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, x, incx, beta, C, 1);
        else cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, x, incx, beta, C, 1);
    }
}

static void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    int lo = imin(M, N), hi = imax(M, N);
    if (lo == 1 && K > 0) {
        int nblk = (hi + SPLIT_BLOCK - 1) / SPLIT_BLOCK;
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int h0 = blk * SPLIT_BLOCK, hb = imin(SPLIT_BLOCK, hi - h0);
            if (N == 1) /* rows h0.. of op(A) and C */
                gemv_block(trans_a, trans_b, hb, 1, K, alpha, trans_a ? A + h0 : A + (size_t)h0 * lda, lda, B, ldb,
                           beta, C + (size_t)h0 * ldc, ldc);
            else /* columns h0.. of op(B) and C */
                gemv_block(trans_a, trans_b, 1, hb, K, alpha, A, lda, trans_b ? B + (size_t)h0 * ldb : B + h0, ldb,
                           beta, C + h0, ldc);
        }
        return;
    }
    if (lo > SKINNY || hi < 2 * SPLIT_BLOCK || K < SPLIT_BLOCK / 2) {
        sgemm_rm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int nblk = (hi + SPLIT_BLOCK - 1) / SPLIT_BLOCK;
    if (M >= N) {
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int m0 = blk * SPLIT_BLOCK, mb = imin(SPLIT_BLOCK, M - m0);
            const float *Ab = trans_a ? A + m0 : A + (size_t)m0 * lda; /* rows m0.. of op(A) */
            sgemm_rm(trans_a, trans_b, mb, N, K, alpha, Ab, lda, B, ldb, beta, C + (size_t)m0 * ldc, ldc);
        }
    } else {
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int n0 = blk * SPLIT_BLOCK, nb = imin(SPLIT_BLOCK, N - n0);
            const float *Bb = trans_b ? B + (size_t)n0 * ldb : B + n0; /* columns n0.. of op(B) */
            sgemm_rm(trans_a, trans_b, M, nb, K, alpha, A, lda, Bb, ldb, beta, C + n0, ldc);
        }
    }
}

void pb_gemm(pb_phase phase, int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    /* A (M,K) or (K,M) if trans_a, row stride lda; B (K,N) or (N,K) if trans_b; C (M,N), ldc */
    gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    pb_flops_add(phase, PB_KIND_MATMUL, 2 * (uint64_t)M * N * K);
}

void pb_linear_fwd(float *out, const float *inp, const float *w, const float *b, int N, int IC, int OC) {
    /* out (N,OC), inp (N,IC), w (OC,IC), b (OC) or NULL */
    float beta = 0.0f;
    if (b) {
        /* Start from the bias and let sgemm accumulate onto it: one pass over out fewer. */
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    gemm(0, 1, N, OC, IC, 1.0f, inp, IC, w, IC, beta, out, OC);
    pb_flops_add(PB_PHASE_FWD, PB_KIND_MATMUL, 2 * (uint64_t)N * IC * OC);
    if (b) pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)N * OC);
}

void pb_linear_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                   int IC, int OC) {
    /* dinp (N,IC), dw (OC,IC), db (OC): accumulated, each may be NULL
     * dout (N,OC), inp (N,IC), w (OC,IC) */
    if (dinp) {
        gemm(0, 0, N, IC, OC, 1.0f, dout, OC, w, IC, 1.0f, dinp, IC);
        pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_MATMUL, 2 * (uint64_t)N * IC * OC);
    }
    if (dw) {
        gemm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_MATMUL, 2 * (uint64_t)N * IC * OC);
    }
    if (db) {
        int nblk = (OC + PB_CBLOCK - 1) / PB_CBLOCK;
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int o0 = blk * PB_CBLOCK, no = imin(PB_CBLOCK, OC - o0);
            float acc[PB_CBLOCK] = {0}; /* (no) */
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC + o0; /* (no) */
#pragma omp simd
                for (int o = 0; o < no; o++) acc[o] += d[o];
            }
#pragma omp simd
            for (int o = 0; o < no; o++) db[o0 + o] += acc[o];
        }
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)N * OC);
    }
}

#define FISHER_ROWS 32 /* output rows per block of pb_fisher_accum */

void pb_fisher_accum(float *F, float *G, const float *dout, const float *inp, const float *scale, int groups, int T,
                     int IC, int OC) {
    /* F (OC,IC) accumulated, G (OC,IC) workspace; dout (groups*T, OC), inp (groups*T, IC), scale (groups) */
    int nblk = (OC + FISHER_ROWS - 1) / FISHER_ROWS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int o0 = blk * FISHER_ROWS, nb = imin(FISHER_ROWS, OC - o0);
        float *Gb = G + (size_t)o0 * IC, *Fb = F + (size_t)o0 * IC; /* (nb, IC) */
        size_t n = (size_t)nb * IC;
        for (int g = 0; g < groups; g++) {
            if (scale[g] == 0.0f) continue;
            sgemm_rm(1, 0, nb, IC, T, 1.0f, dout + (size_t)g * T * OC + o0, OC, inp + (size_t)g * T * IC, IC, 0.0f,
                     Gb, IC);
            float sc = scale[g];
#pragma omp simd
            for (size_t k = 0; k < n; k++) {
                float v = sc * Gb[k];
                Fb[k] += v * v;
            }
        }
    }
    uint64_t used = 0;
    for (int g = 0; g < groups; g++) used += scale[g] != 0.0f;
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_MATMUL, used * 2 * (uint64_t)OC * IC * T);
    pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, used * 3 * (uint64_t)OC * IC);
}

/* ---- normalisation and pointwise ------------------------------------------------------ */

void pb_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                      int N, int C) {
    /* out (N,C), mean (N), rstd (N); inp (N,C); w (C), b (C) or NULL */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C; /* (C) */
        float *y = out + (size_t)n * C;       /* (C) */
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < C; c++) s += x[c];
        float m = s / (float)C;
        float v = 0.0f;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++) {
            float xm = x[c] - m;
            v += xm * xm;
        }
        float r = 1.0f / sqrtf(v / (float)C + PB_LN_EPS);
        if (b) {
#pragma omp simd
            for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * w[c] + b[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) y[c] = (x[c] - m) * r * w[c];
        }
        mean[n] = m;
        rstd[n] = r;
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 8 * (uint64_t)N * C);
}

void pb_layernorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                      const float *mean, const float *rstd, int N, int C) {
    /* dinp (N,C), dw (C), db (C): accumulated, each may be NULL
     * dout (N,C), inp (N,C), w (C), mean (N), rstd (N) */
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;  /* (C) */
            const float *dy = dout + (size_t)n * C; /* (C) */
            float *dx = dinp + (size_t)n * C;       /* (C) */
            float m = mean[n], r = rstd[n];
            /* dnorm = dy*w; dx += r * (dnorm - mean(dnorm) - norm * mean(dnorm*norm)) */
            float sd = 0.0f, sdn = 0.0f;
#pragma omp simd reduction(+ : sd, sdn)
            for (int c = 0; c < C; c++) {
                float dn = dy[c] * w[c];
                sd += dn;
                sdn += dn * ((x[c] - m) * r);
            }
            sd /= (float)C;
            sdn /= (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * w[c] - sd - ((x[c] - m) * r) * sdn);
        }
        pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 10 * (uint64_t)N * C);
    }
    if (dw || db) {
        int nblk = (C + PB_CBLOCK - 1) / PB_CBLOCK;
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * PB_CBLOCK, nc = imin(PB_CBLOCK, C - c0);
            float aw[PB_CBLOCK] = {0}, ab[PB_CBLOCK] = {0}; /* (nc) */
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + c0;  /* (nc) */
                const float *dy = dout + (size_t)n * C + c0; /* (nc) */
                float m = mean[n], r = rstd[n];
                if (dw) {
#pragma omp simd
                    for (int c = 0; c < nc; c++) aw[c] += dy[c] * ((x[c] - m) * r);
                }
                if (db) {
#pragma omp simd
                    for (int c = 0; c < nc; c++) ab[c] += dy[c];
                }
            }
            if (dw) {
#pragma omp simd
                for (int c = 0; c < nc; c++) dw[c0 + c] += aw[c];
            }
            if (db) {
#pragma omp simd
                for (int c = 0; c < nc; c++) db[c0 + c] += ab[c];
            }
        }
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)((dw ? 2 : 0) + (db ? 1 : 0)) * N * C);
    }
}

void pb_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    /* out (N,C), rstd (N); inp (N,C); w (C) */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C; /* (C) */
        float *y = out + (size_t)n * C;       /* (C) */
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = x[c] * r * w[c];
        rstd[n] = r;
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 5 * (uint64_t)N * C);
}

void pb_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w, const float *rstd,
                    int N, int C) {
    /* dinp (N,C), dw (C): accumulated, each may be NULL; dout (N,C), inp (N,C), w (C), rstd (N) */
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;   /* (C) */
            const float *dy = dout + (size_t)n * C; /* (C) */
            float *dx = dinp + (size_t)n * C;       /* (C) */
            float r = rstd[n];
            /* with g = dy*w and xh = x*r: dx += r * (g - xh * mean(g*xh)) = r g - x (r^3 mean(g*x)) */
            float sgx = 0.0f;
#pragma omp simd reduction(+ : sgx)
            for (int c = 0; c < C; c++) sgx += dy[c] * w[c] * x[c];
            float k = r * r * r * (sgx / (float)C);
#pragma omp simd
            for (int c = 0; c < C; c++) dx[c] += r * (dy[c] * w[c]) - x[c] * k;
        }
        pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 7 * (uint64_t)N * C);
    }
    if (dw) {
        int nblk = (C + PB_CBLOCK - 1) / PB_CBLOCK;
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * PB_CBLOCK, nc = imin(PB_CBLOCK, C - c0);
            float aw[PB_CBLOCK] = {0}; /* (nc) */
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C + c0;  /* (nc) */
                const float *dy = dout + (size_t)n * C + c0; /* (nc) */
                float r = rstd[n];
#pragma omp simd
                for (int c = 0; c < nc; c++) aw[c] += dy[c] * (x[c] * r);
            }
#pragma omp simd
            for (int c = 0; c < nc; c++) dw[c0 + c] += aw[c];
        }
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, 2 * (uint64_t)N * C);
    }
}

void pb_gelu_fwd(float *out, const float *inp, size_t n) {
    /* out (n), inp (n) */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        /* 0.5 x (1 + tanh(u)) = x sigmoid(2u): the same function, without tanh's cancellation */
        float x = inp[i];
        float u = GELU_K * (x + GELU_C * x * x * x);
        out[i] = x / (1.0f + exp_v(-2.0f * u));
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 9 * (uint64_t)n);
}

/* gelu'(x). d/dx [0.5 x (1 + tanh u)] = 0.5 (1 + t) + 0.5 x (1 - t^2) u', t = tanh u. With
 * e = exp(-2u) and s = sigmoid(2u) = 1 / (1 + e) = (1 + t) / 2 this is s + 2 x u' s (1 - s),
 * and 1 - s = e s is taken without cancellation. */
static inline float gelu_grad(float x) {
    float u = GELU_K * (x + GELU_C * x * x * x);
    float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x);
    float e = exp_v(-2.0f * u);
    float sg = 1.0f / (1.0f + e);
    return sg + 2.0f * x * du * (e * sg) * sg;
}

void pb_gelu_bwd(float *dinp, const float *dout, const float *inp, size_t n) {
    /* dinp (n) accumulated (NULL: nothing done); dout (n), inp (n) */
    if (!dinp) return;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] += gelu_grad(inp[i]) * dout[i];
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 16 * (uint64_t)n);
}

void pb_gelu_bwd_inplace(float *d, const float *inp, size_t n) {
    /* d (n): d(out) on entry, d(inp) on exit; inp (n) */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) d[i] = gelu_grad(inp[i]) * d[i];
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 16 * (uint64_t)n);
}

void pb_swiglu_fwd(float *out, const float *gate, const float *up, size_t n) {
    /* out (n); gate (n), up (n) */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + exp_v(-g)) * up[i];
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 5 * (uint64_t)n);
}

/* silu(g) = g s and silu'(g) = s (1 + g (1 - s)), s = sigmoid(g) = 1 / (1 + e), e = exp(-g); 1 - s
 * is taken as e s, without cancellation. */
static inline void silu_and_grad(float g, float *silu, float *dsilu) {
    float e = exp_v(-g);
    float sg = 1.0f / (1.0f + e);
    *silu = g * sg;
    *dsilu = sg * (1.0f + g * (e * sg));
}

void pb_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    /* dgate (n), dup (n): accumulated, each may be NULL; dout (n), gate (n), up (n) */
    if (!dgate && !dup) return;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float a, da;
        silu_and_grad(gate[i], &a, &da);
        if (dgate) dgate[i] += dout[i] * up[i] * da;
        if (dup) dup[i] += dout[i] * a;
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 8 * (uint64_t)n);
}

void pb_swiglu_bwd_inplace(float *dgate, float *d, const float *gate, const float *up, size_t n) {
    /* dgate (n) written; d (n): d(out) on entry, d(up) on exit; gate (n), up (n) */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float a, da, dy = d[i];
        silu_and_grad(gate[i], &a, &da);
        dgate[i] = dy * up[i] * da;
        d[i] = dy * a;
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 8 * (uint64_t)n);
}

void pb_add_fwd(float *out, const float *a, const float *b, size_t n) {
    /* out (n), a (n), b (n) */
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)n);
}

/* Stable softmax of x (n) into y (n), which may alias x. Returns the sum of exp(x - max) and
 * the max in *max_out (the cross-entropy's log-sum-exp). */
static inline float softmax_row(float *y, const float *x, int n, float *max_out) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) {
        float e = exp_v(x[j] - mx);
        y[j] = e;
        s += e;
    }
    float inv = 1.0f / s;
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] *= inv;
    *max_out = mx;
    return s;
}

void pb_softmax_fwd(float *out, const float *inp, int N, int C) {
    /* out (N,C), inp (N,C) */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float mx;
        softmax_row(out + (size_t)n * C, inp + (size_t)n * C, C, &mx);
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 5 * (uint64_t)N * C);
}

void pb_softmax_bwd(float *dinp, const float *dout, const float *out, int N, int C) {
    /* dinp (N,C) accumulated (NULL: nothing done); dout (N,C), out (N,C) */
    if (!dinp) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *y = out + (size_t)n * C;   /* (C) */
        const float *dy = dout + (size_t)n * C; /* (C) */
        float *dx = dinp + (size_t)n * C;       /* (C) */
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += y[c] * dy[c];
#pragma omp simd
        for (int c = 0; c < C; c++) dx[c] += y[c] * (dy[c] - dot);
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 4 * (uint64_t)N * C);
}

void pb_dropout_fwd(float *out, const float *inp, float p, uint64_t seed, size_t n) {
    /* out (n), inp (n) */
    assert(p >= 0.0f && p < 1.0f);
    if (p == 0.0f) {
        if (out != inp) memcpy(out, inp, n * sizeof(float));
        return;
    }
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = pb_hash_uniform(seed, i) >= p ? inp[i] * scale : 0.0f;
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)n);
}

void pb_dropout_bwd(float *dinp, const float *dout, float p, uint64_t seed, size_t n) {
    /* dinp (n) accumulated (NULL: nothing done); dout (n) */
    assert(p >= 0.0f && p < 1.0f);
    if (!dinp) return;
    if (p == 0.0f) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] += pb_hash_uniform(seed, i) >= p ? dout[i] * scale : 0.0f;
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, (uint64_t)n);
}

/* ---- attention ------------------------------------------------------------------------ */

/* One row of attention probabilities, in place. row (Tk) holds raw scores q.k on entry and
 * probabilities on exit. Keys j < jend are visible unless km (Tk) marks them 0; keys
 * j >= jend (causal rule) get probability 0, and so does every key of a row with none
 * visible. */
static inline void att_softmax_row(float *row, int Tk, int jend, const uint8_t *km, float scale) {
    float mx = -INFINITY;
    if (km) {
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < jend; j++) {
            float s = km[j] ? row[j] * scale : -INFINITY;
            row[j] = s;
            mx = s > mx ? s : mx;
        }
    } else {
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < jend; j++) {
            float s = row[j] * scale;
            row[j] = s;
            mx = s > mx ? s : mx;
        }
    }
    if (mx == -INFINITY) jend = 0; /* no visible key: the whole row is 0 */
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < jend; j++) {
        float e = exp_v(row[j] - mx); /* masked keys: exp_v(-inf) = 0 */
        row[j] = e;
        sum += e;
    }
    float inv = jend > 0 ? 1.0f / sum : 0.0f;
#pragma omp simd
    for (int j = 0; j < jend; j++) row[j] *= inv;
#pragma omp simd
    for (int j = jend; j < Tk; j++) row[j] = 0.0f;
}

void pb_attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                      const uint8_t *kmask, int B, int Tq, int Tk, int C, int H, int Hkv, int causal) {
    /* out (B,Tq,C), att (B,H,Tq,Tk); q (B,Tq,C), k, v (B,Tk,KC) with KC = Hkv*hs; kmask (B,Tk) */
    assert(H > 0 && Hkv > 0 && H % Hkv == 0 && C % H == 0);
    int hs = C / H, KC = Hkv * hs, G = H / Hkv;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / G;
        const float *qh = q + (size_t)b * Tq * C + (size_t)h * hs;   /* (Tq,hs) row stride C */
        const float *kh = k + (size_t)b * Tk * KC + (size_t)g * hs;  /* (Tk,hs) row stride KC */
        const float *vh = v + (size_t)b * Tk * KC + (size_t)g * hs;  /* (Tk,hs) row stride KC */
        float *oh = out + (size_t)b * Tq * C + (size_t)h * hs;       /* (Tq,hs) row stride C */
        float *ah = att + (size_t)bh * Tq * Tk;                       /* (Tq,Tk) */
        const uint8_t *km = kmask ? kmask + (size_t)b * Tk : NULL;    /* (Tk) */
        sgemm_rm(0, 1, Tq, Tk, hs, 1.0f, qh, C, kh, KC, 0.0f, ah, Tk);
        for (int i = 0; i < Tq; i++) {
            int jend = causal ? imax(0, imin(Tk, i + (Tk - Tq) + 1)) : Tk;
            att_softmax_row(ah + (size_t)i * Tk, Tk, jend, km, scale);
        }
        sgemm_rm(0, 0, Tq, hs, Tk, 1.0f, ah, Tk, vh, KC, 0.0f, oh, C);
    }
    uint64_t blk = (uint64_t)B * H * Tq * Tk;
    pb_flops_add(PB_PHASE_FWD, PB_KIND_MATMUL, 4 * blk * hs);
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 6 * blk);
}

void pb_attention_bwd(float *dq, float *dk, float *dv, float *datt, const float *dout, const float *att,
                      const float *q, const float *k, const float *v, int B, int Tq, int Tk, int C, int H,
                      int Hkv) {
    /* dq (B,Tq,C), dk, dv (B,Tk,KC): accumulated, each may be NULL; datt (B,H,Tq,Tk) workspace
     * dout (B,Tq,C), att (B,H,Tq,Tk), q (B,Tq,C), k, v (B,Tk,KC) with KC = Hkv*hs */
    if (!dq && !dk && !dv) return;
    assert(H > 0 && Hkv > 0 && H % Hkv == 0 && C % H == 0);
    int hs = C / H, KC = Hkv * hs, G = H / Hkv;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel
    {
        /* Per query head: datt = dout.v^T, softmax backward (times scale) in place, dq. */
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H, g = h / G;
            const float *doh = dout + (size_t)b * Tq * C + (size_t)h * hs; /* (Tq,hs) stride C */
            const float *kh = k + (size_t)b * Tk * KC + (size_t)g * hs;    /* (Tk,hs) stride KC */
            const float *vh = v + (size_t)b * Tk * KC + (size_t)g * hs;    /* (Tk,hs) stride KC */
            const float *ah = att + (size_t)bh * Tq * Tk;                   /* (Tq,Tk) */
            float *dah = datt + (size_t)bh * Tq * Tk;                       /* (Tq,Tk) */
            sgemm_rm(0, 1, Tq, Tk, hs, 1.0f, doh, C, vh, KC, 0.0f, dah, Tk);
            for (int i = 0; i < Tq; i++) {
                const float *a = ah + (size_t)i * Tk; /* (Tk) */
                float *da = dah + (size_t)i * Tk;     /* (Tk) */
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int j = 0; j < Tk; j++) dot += a[j] * da[j];
#pragma omp simd
                for (int j = 0; j < Tk; j++) da[j] = a[j] * (da[j] - dot) * scale;
            }
            if (dq) sgemm_rm(0, 0, Tq, hs, Tk, 1.0f, dah, Tk, kh, KC, 1.0f, dq + (size_t)b * Tq * C + (size_t)h * hs, C);
        }
        /* Per key/value head: dk, dv summed over the query heads of the group, in order, so
         * each element of dk and dv has one writer. (Implicit barrier above.) */
        if (dk || dv) {
#pragma omp for schedule(static)
            for (int bg = 0; bg < B * Hkv; bg++) {
                int b = bg / Hkv, g = bg % Hkv;
                float *dkh = dk ? dk + (size_t)b * Tk * KC + (size_t)g * hs : NULL; /* (Tk,hs) stride KC */
                float *dvh = dv ? dv + (size_t)b * Tk * KC + (size_t)g * hs : NULL; /* (Tk,hs) stride KC */
                for (int h = g * G; h < (g + 1) * G; h++) {
                    size_t bh = (size_t)b * H + h;
                    const float *qh = q + (size_t)b * Tq * C + (size_t)h * hs;     /* (Tq,hs) stride C */
                    const float *doh = dout + (size_t)b * Tq * C + (size_t)h * hs; /* (Tq,hs) stride C */
                    const float *ah = att + bh * Tq * Tk;                           /* (Tq,Tk) */
                    const float *dah = datt + bh * Tq * Tk;                         /* (Tq,Tk) */
                    if (dkh) sgemm_rm(1, 0, Tk, hs, Tq, 1.0f, dah, Tk, qh, C, 1.0f, dkh, KC);
                    if (dvh) sgemm_rm(1, 0, Tk, hs, Tq, 1.0f, ah, Tk, doh, C, 1.0f, dvh, KC);
                }
            }
        }
    }
    uint64_t blk = (uint64_t)B * H * Tq * Tk;
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_MATMUL, 2 * blk * hs * (uint64_t)(1 + !!dq + !!dk + !!dv));
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 5 * blk);
}

/* ---- rotary position embeddings -------------------------------------------------------- */

void pb_rope_table(float *cs, int P, int hs, float theta) {
    /* cs (P, hs): row p = cos(p f_i) for i < hs/2, then sin(p f_i); f_i = theta^(-2i/hs) */
    int h2 = hs / 2;
    assert(hs % 2 == 0 && theta > 0.0f);
    for (int p = 0; p < P; p++)
        for (int i = 0; i < h2; i++) {
            double a = (double)p * pow((double)theta, -2.0 * i / hs);
            cs[(size_t)p * hs + i] = (float)cos(a);
            cs[(size_t)p * hs + h2 + i] = (float)sin(a);
        }
}

/* One token's heads rotated by its row of the table: out (nh*hs) = R(sign * angles) x; out may be
 * x. acc: out += instead of =. */
static inline void rope_row(float *out, const float *x, const float *row, int nh, int hs, float sign, int acc) {
    int h2 = hs / 2;
    const float *co = row, *si = row + h2; /* (h2) (h2) */
    for (int h = 0; h < nh; h++) {
        const float *a = x + (size_t)h * hs;
        float *o = out + (size_t)h * hs;
#pragma omp simd
        for (int i = 0; i < h2; i++) {
            float x0 = a[i], x1 = a[i + h2], s = sign * si[i];
            float y0 = x0 * co[i] - x1 * s, y1 = x1 * co[i] + x0 * s;
            if (acc) {
                o[i] += y0;
                o[i + h2] += y1;
            } else {
                o[i] = y0;
                o[i + h2] = y1;
            }
        }
    }
}

void pb_rope_fwd(float *out, const float *x, const float *cs, int B, int T, int nh, int hs, int pos0) {
    /* out, x (B,T,nh*hs); cs (>= pos0+T, hs) */
    size_t W = (size_t)nh * hs;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++)
        rope_row(out + (size_t)bt * W, x + (size_t)bt * W, cs + (size_t)(pos0 + bt % T) * hs, nh, hs, 1.0f, 0);
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 3 * (uint64_t)B * T * W);
}

void pb_rope_bwd(float *dx, const float *dout, const float *cs, int B, int T, int nh, int hs, int pos0) {
    /* dx (B,T,nh*hs) accumulated (NULL: nothing done); dout (B,T,nh*hs); cs (>= pos0+T, hs) */
    if (!dx) return;
    size_t W = (size_t)nh * hs;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++)
        rope_row(dx + (size_t)bt * W, dout + (size_t)bt * W, cs + (size_t)(pos0 + bt % T) * hs, nh, hs, -1.0f, 1);
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 3 * (uint64_t)B * T * W);
}

void pb_rope_bwd_inplace(float *d, const float *cs, int B, int T, int nh, int hs, int pos0) {
    /* d (B,T,nh*hs): d(out) on entry, d(x) on exit; cs (>= pos0+T, hs) */
    size_t W = (size_t)nh * hs;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++)
        rope_row(d + (size_t)bt * W, d + (size_t)bt * W, cs + (size_t)(pos0 + bt % T) * hs, nh, hs, -1.0f, 0);
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 3 * (uint64_t)B * T * W);
}

/* ---- embeddings and loss --------------------------------------------------------------- */

void pb_embedding_fwd(float *out, const int32_t *ids, const float *wte, const float *wpe, int B, int T, int C) {
    /* out (B,T,C); ids (B,T); wte (V,C); wpe (>=T,C) or NULL */
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        assert(ids[bt] >= 0);
        float *o = out + (size_t)bt * C;               /* (C) */
        const float *e = wte + (size_t)ids[bt] * C;     /* (C) */
        if (wpe) {
            const float *p = wpe + (size_t)(bt % T) * C; /* (C) */
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, (size_t)C * sizeof(float));
        }
    }
    if (wpe) pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, (uint64_t)B * T * C);
}

void pb_embedding_bwd(float *dwte, float *dwpe, const float *dout, const int32_t *ids, int B, int T, int C) {
    /* dwte (V,C), dwpe (T,C): accumulated, each may be NULL; dout (B,T,C); ids (B,T) */
    int nblk = (C + PB_CBLOCK - 1) / PB_CBLOCK;
    if (dwte) {
        /* A token may repeat, so rows of dwte are shared: split over channels instead. */
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * PB_CBLOCK, nc = imin(PB_CBLOCK, C - c0);
            for (int bt = 0; bt < B * T; bt++) {
                const float *d = dout + (size_t)bt * C + c0; /* (nc) */
                float *w = dwte + (size_t)ids[bt] * C + c0;  /* (nc) */
#pragma omp simd
                for (int c = 0; c < nc; c++) w[c] += d[c];
            }
        }
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)B * T * C);
    }
    if (dwpe) {
#pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * PB_CBLOCK, nc = imin(PB_CBLOCK, C - c0);
            for (int t = 0; t < T; t++) {
                float acc[PB_CBLOCK] = {0}; /* (nc) */
                for (int b = 0; b < B; b++) {
                    const float *d = dout + ((size_t)b * T + t) * C + c0; /* (nc) */
#pragma omp simd
                    for (int c = 0; c < nc; c++) acc[c] += d[c];
                }
                float *w = dwpe + (size_t)t * C + c0; /* (nc) */
#pragma omp simd
                for (int c = 0; c < nc; c++) w[c] += acc[c];
            }
        }
        pb_flops_add(PB_PHASE_BWD_W, PB_KIND_OTHER, (uint64_t)B * T * C);
    }
}

void pb_crossentropy_fwd(float *losses, float *probs, const float *logits, const int32_t *targets, int N, int V) {
    /* losses (N), probs (N,V); logits (N,V), targets (N) */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V; /* (V) */
        float *p = probs + (size_t)n * V;        /* (V) */
        float mx, s = softmax_row(p, x, V, &mx);
        int t = targets[n];
        assert(t < V);
        losses[n] = t >= 0 ? logf(s) - (x[t] - mx) : 0.0f;
    }
    pb_flops_add(PB_PHASE_FWD, PB_KIND_OTHER, 5 * (uint64_t)N * V + (uint64_t)N);
}

void pb_crossentropy_bwd(float *dlogits, const float *probs, const int32_t *targets, float scale, int N, int V) {
    /* dlogits (N,V) accumulated (NULL: nothing done); probs (N,V), targets (N) */
    if (!dlogits) return;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        int t = targets[n];
        if (t < 0) continue;
        const float *p = probs + (size_t)n * V; /* (V) */
        float *d = dlogits + (size_t)n * V;     /* (V) */
#pragma omp simd
        for (int j = 0; j < V; j++) d[j] += scale * (p[j] - (j == t ? 1.0f : 0.0f));
    }
    pb_flops_add(PB_PHASE_BWD_IN, PB_KIND_OTHER, 2 * (uint64_t)N * V);
}
