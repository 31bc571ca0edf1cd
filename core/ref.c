/* ref.c — the double-precision oracle (see ref.h): each kernel written the most obvious way,
 * straight from its formula, so that a reader can check it by eye. Slow on purpose. */
#include "ref.h"

#include <math.h>
#include "kernels.h" /* PB_LN_EPS */
#include "pb_rng.h"

/* ---- linear --------------------------------------------------------------------------- */

void pb_ref_linear_fwd(double *out, const double *inp, const double *w, const double *b, int N, int IC, int OC) {
    /* out (N,OC), inp (N,IC), w (OC,IC), b (OC) or NULL */
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IC; i++) s += inp[(size_t)n * IC + i] * w[(size_t)o * IC + i];
            out[(size_t)n * OC + o] = s;
        }
}

void pb_ref_linear_bwd(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                       const double *w, int N, int IC, int OC) {
    /* dinp (N,IC), dw (OC,IC), db (OC); dout (N,OC), inp (N,IC), w (OC,IC) */
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double d = dout[(size_t)n * OC + o];
            for (int i = 0; i < IC; i++) {
                if (dinp) dinp[(size_t)n * IC + i] += d * w[(size_t)o * IC + i];
                if (dw) dw[(size_t)o * IC + i] += d * inp[(size_t)n * IC + i];
            }
            if (db) db[o] += d;
        }
}

/* ---- normalisation and pointwise ------------------------------------------------------ */

void pb_ref_layernorm_fwd(double *out, double *mean, double *rstd, const double *inp, const double *w,
                          const double *b, int N, int C) {
    /* out (N,C), mean (N), rstd (N); inp (N,C), w (C), b (C) or NULL */
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        double r = 1.0 / sqrt(v + (double)PB_LN_EPS);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - m) * r * w[c] + (b ? b[c] : 0.0);
        mean[n] = m;
        rstd[n] = r;
    }
}

void pb_ref_layernorm_bwd(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                          const double *w, const double *mean, const double *rstd, int N, int C) {
    /* dinp (N,C), dw (C), db (C); dout (N,C), inp (N,C), w (C), mean (N), rstd (N)
     * With xh = (x - mean) * rstd and g = dout * w:
     *   dx = rstd * (g - mean_c(g) - xh * mean_c(g * xh)),  dw = sum_n dout * xh,  db = sum_n dout */
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double m = mean[n], r = rstd[n];
        double gm = 0.0, gxm = 0.0;
        for (int c = 0; c < C; c++) {
            double xh = (x[c] - m) * r, g = dy[c] * w[c];
            gm += g;
            gxm += g * xh;
            if (dw) dw[c] += dy[c] * xh;
            if (db) db[c] += dy[c];
        }
        gm /= C;
        gxm /= C;
        if (dinp)
            for (int c = 0; c < C; c++) {
                double xh = (x[c] - m) * r, g = dy[c] * w[c];
                dinp[(size_t)n * C + c] += r * (g - gm - xh * gxm);
            }
    }
}

void pb_ref_rmsnorm_fwd(double *out, double *rstd, const double *inp, const double *w, int N, int C, float eps) {
    /* out (N,C), rstd (N); inp (N,C), w (C): out = x / sqrt(mean(x^2) + eps) * w */
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double ms = 0.0;
        for (int c = 0; c < C; c++) ms += x[c] * x[c];
        ms /= C;
        double r = 1.0 / sqrt(ms + (double)eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = x[c] * r * w[c];
        rstd[n] = r;
    }
}

void pb_ref_rmsnorm_bwd(double *dinp, double *dw, const double *dout, const double *inp, const double *w,
                        const double *rstd, int N, int C) {
    /* dinp (N,C), dw (C); dout (N,C), inp (N,C), w (C), rstd (N)
     * With xh = x * rstd and g = dout * w:  dx = rstd * (g - xh * mean_c(g * xh)),  dw = sum_n dout * xh */
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double r = rstd[n], gxm = 0.0;
        for (int c = 0; c < C; c++) {
            gxm += dy[c] * w[c] * x[c] * r;
            if (dw) dw[c] += dy[c] * x[c] * r;
        }
        gxm /= C;
        if (dinp)
            for (int c = 0; c < C; c++) dinp[(size_t)n * C + c] += r * (dy[c] * w[c] - x[c] * r * gxm);
    }
}

void pb_ref_gelu_fwd(double *out, const double *inp, size_t n) {
    const double k = sqrt(2.0 / 3.14159265358979323846);
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
    }
}

void pb_ref_gelu_bwd(double *dinp, const double *dout, const double *inp, size_t n) {
    if (!dinp) return;
    const double k = sqrt(2.0 / 3.14159265358979323846);
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double t = tanh(k * (x + 0.044715 * x * x * x));
        double sech2 = 1.0 - t * t;
        double g = 0.5 * (1.0 + t) + 0.5 * x * sech2 * k * (1.0 + 3.0 * 0.044715 * x * x);
        dinp[i] += g * dout[i];
    }
}

void pb_ref_add_fwd(double *out, const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

void pb_ref_swiglu_fwd(double *out, const double *gate, const double *up, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = gate[i] * ref_sigmoid(gate[i]) * up[i];
}

void pb_ref_swiglu_bwd(double *dgate, double *dup, const double *dout, const double *gate, const double *up,
                       size_t n) {
    /* d silu(g) / dg = s + g s (1 - s), s = sigmoid(g) */
    for (size_t i = 0; i < n; i++) {
        double g = gate[i], s = ref_sigmoid(g);
        if (dgate) dgate[i] += dout[i] * up[i] * (s + g * s * (1.0 - s));
        if (dup) dup[i] += dout[i] * g * s;
    }
}

void pb_ref_softmax_fwd(double *out, const double *inp, int N, int C) {
    /* out (N,C), inp (N,C) */
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double *y = out + (size_t)n * C;
        double mx = -INFINITY, s = 0.0;
        for (int c = 0; c < C; c++) mx = fmax(mx, x[c]);
        for (int c = 0; c < C; c++) s += exp(x[c] - mx);
        for (int c = 0; c < C; c++) y[c] = exp(x[c] - mx) / s;
    }
}

void pb_ref_softmax_bwd(double *dinp, const double *dout, const double *out, int N, int C) {
    /* dinp (N,C); dout (N,C), out (N,C): dx_c = y_c (dy_c - sum_j y_j dy_j) */
    if (!dinp) return;
    for (int n = 0; n < N; n++) {
        const double *y = out + (size_t)n * C, *dy = dout + (size_t)n * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += y[c] * dy[c];
        for (int c = 0; c < C; c++) dinp[(size_t)n * C + c] += y[c] * (dy[c] - dot);
    }
}

void pb_ref_dropout_fwd(double *out, const double *inp, float p, uint64_t seed, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int keep = p == 0.0f || pb_hash_uniform(seed, i) >= p;
        out[i] = keep ? inp[i] / (1.0 - (double)p) : 0.0;
    }
}

void pb_ref_dropout_bwd(double *dinp, const double *dout, float p, uint64_t seed, size_t n) {
    if (!dinp) return;
    for (size_t i = 0; i < n; i++) {
        int keep = p == 0.0f || pb_hash_uniform(seed, i) >= p;
        dinp[i] += keep ? dout[i] / (1.0 - (double)p) : 0.0;
    }
}

/* ---- attention ------------------------------------------------------------------------ */

/* Is key j visible to query i of sequence b? */
static int ref_visible(const uint8_t *kmask, int b, int i, int j, int Tq, int Tk, int causal) {
    if (causal && j > i + (Tk - Tq)) return 0;
    if (kmask && !kmask[(size_t)b * Tk + j]) return 0;
    return 1;
}

void pb_ref_attention_fwd(double *out, double *att, const double *q, const double *k, const double *v,
                          const uint8_t *kmask, int B, int Tq, int Tk, int C, int H, int Hkv, int causal) {
    /* out (B,Tq,C), att (B,H,Tq,Tk); q (B,Tq,C), k, v (B,Tk,KC); kmask (B,Tk) or NULL */
    int hs = C / H, KC = Hkv * hs, G = H / Hkv;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / G;
            for (int i = 0; i < Tq; i++) {
                double *a = att + (((size_t)b * H + h) * Tq + i) * Tk; /* (Tk) */
                const double *qi = q + ((size_t)b * Tq + i) * C + h * hs;
                double mx = -INFINITY, s = 0.0;
                for (int j = 0; j < Tk; j++) {
                    const double *kj = k + ((size_t)b * Tk + j) * KC + g * hs;
                    double d = 0.0;
                    for (int e = 0; e < hs; e++) d += qi[e] * kj[e];
                    a[j] = d * scale;
                    if (ref_visible(kmask, b, i, j, Tq, Tk, causal)) mx = fmax(mx, a[j]);
                }
                for (int j = 0; j < Tk; j++) {
                    a[j] = ref_visible(kmask, b, i, j, Tq, Tk, causal) ? exp(a[j] - mx) : 0.0;
                    s += a[j];
                }
                for (int j = 0; j < Tk; j++) a[j] = s > 0.0 ? a[j] / s : 0.0;
                double *o = out + ((size_t)b * Tq + i) * C + h * hs;
                for (int e = 0; e < hs; e++) {
                    double y = 0.0;
                    for (int j = 0; j < Tk; j++) y += a[j] * v[((size_t)b * Tk + j) * KC + g * hs + e];
                    o[e] = y;
                }
            }
        }
}

void pb_ref_attention_bwd(double *dq, double *dk, double *dv, double *datt, const double *dout, const double *att,
                          const double *q, const double *k, const double *v, int B, int Tq, int Tk, int C, int H,
                          int Hkv) {
    /* dq (B,Tq,C), dk, dv (B,Tk,KC); datt (B,H,Tq,Tk) workspace; dout (B,Tq,C), att (B,H,Tq,Tk)
     * With s_ij = scale q_i.k_j and a = softmax_j(s): dv_j += sum_i a_ij dout_i;
     * da_ij = dout_i.v_j; ds_ij = a_ij (da_ij - sum_l a_il da_il); dq_i += scale sum_j ds_ij k_j;
     * dk_j += scale sum_i ds_ij q_i. */
    if (!dq && !dk && !dv) return;
    int hs = C / H, KC = Hkv * hs, G = H / Hkv;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / G;
            for (int i = 0; i < Tq; i++) {
                const double *a = att + (((size_t)b * H + h) * Tq + i) * Tk; /* (Tk) */
                double *da = datt + (((size_t)b * H + h) * Tq + i) * Tk;      /* (Tk) */
                const double *doi = dout + ((size_t)b * Tq + i) * C + h * hs; /* (hs) */
                const double *qi = q + ((size_t)b * Tq + i) * C + h * hs;     /* (hs) */
                double dot = 0.0;
                for (int j = 0; j < Tk; j++) {
                    const double *vj = v + ((size_t)b * Tk + j) * KC + g * hs;
                    double d = 0.0;
                    for (int e = 0; e < hs; e++) d += doi[e] * vj[e];
                    da[j] = d;
                    dot += a[j] * d;
                }
                for (int j = 0; j < Tk; j++) da[j] = a[j] * (da[j] - dot) * scale;
                for (int j = 0; j < Tk; j++) {
                    size_t kv = ((size_t)b * Tk + j) * KC + g * hs;
                    for (int e = 0; e < hs; e++) {
                        if (dq) dq[((size_t)b * Tq + i) * C + h * hs + e] += da[j] * k[kv + e];
                        if (dk) dk[kv + e] += da[j] * qi[e];
                        if (dv) dv[kv + e] += a[j] * doi[e];
                    }
                }
            }
        }
}

/* ---- rotary position embeddings -------------------------------------------------------- */

/* Rotates each head's pairs (i, i + hs/2) of x by sign times the angle (pos0 + t) theta^(-2i/hs). */
static void ref_rope(double *out, const double *x, int B, int T, int nh, int hs, int pos0, float theta, double sign,
                     int acc) {
    int h2 = hs / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < nh; h++)
                for (int i = 0; i < h2; i++) {
                    size_t j = (((size_t)b * T + t) * nh + h) * hs + i;
                    double a = sign * (pos0 + t) * pow((double)theta, -2.0 * i / hs);
                    double y0 = x[j] * cos(a) - x[j + h2] * sin(a), y1 = x[j + h2] * cos(a) + x[j] * sin(a);
                    out[j] = acc ? out[j] + y0 : y0;
                    out[j + h2] = acc ? out[j + h2] + y1 : y1;
                }
}

void pb_ref_rope_fwd(double *out, const double *x, int B, int T, int nh, int hs, int pos0, float theta) {
    ref_rope(out, x, B, T, nh, hs, pos0, theta, 1.0, 0);
}

void pb_ref_rope_bwd(double *dx, const double *dout, int B, int T, int nh, int hs, int pos0, float theta) {
    if (dx) ref_rope(dx, dout, B, T, nh, hs, pos0, theta, -1.0, 1);
}

/* ---- embeddings and loss --------------------------------------------------------------- */

void pb_ref_embedding_fwd(double *out, const int32_t *ids, const double *wte, const double *wpe, int B, int T,
                          int C) {
    /* out (B,T,C); ids (B,T); wte (V,C); wpe (>=T,C) or NULL */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t bt = (size_t)b * T + t;
                out[bt * C + c] = wte[(size_t)ids[bt] * C + c] + (wpe ? wpe[(size_t)t * C + c] : 0.0);
            }
}

void pb_ref_embedding_bwd(double *dwte, double *dwpe, const double *dout, const int32_t *ids, int B, int T, int C) {
    /* dwte (V,C), dwpe (T,C); dout (B,T,C); ids (B,T) */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t bt = (size_t)b * T + t;
                if (dwte) dwte[(size_t)ids[bt] * C + c] += dout[bt * C + c];
                if (dwpe) dwpe[(size_t)t * C + c] += dout[bt * C + c];
            }
}

void pb_ref_crossentropy_fwd(double *losses, double *probs, const double *logits, const int32_t *targets, int N,
                             int V) {
    /* losses (N), probs (N,V); logits (N,V), targets (N) */
    for (int n = 0; n < N; n++) {
        const double *x = logits + (size_t)n * V;
        double mx = -INFINITY, s = 0.0;
        for (int j = 0; j < V; j++) mx = fmax(mx, x[j]);
        for (int j = 0; j < V; j++) s += exp(x[j] - mx);
        for (int j = 0; j < V; j++) probs[(size_t)n * V + j] = exp(x[j] - mx) / s;
        losses[n] = targets[n] >= 0 ? -(x[targets[n]] - mx - log(s)) : 0.0;
    }
}

void pb_ref_crossentropy_bwd(double *dlogits, const double *probs, const int32_t *targets, float scale, int N,
                             int V) {
    /* dlogits (N,V); probs (N,V), targets (N) */
    if (!dlogits) return;
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        for (int j = 0; j < V; j++)
            dlogits[(size_t)n * V + j] += (double)scale * (probs[(size_t)n * V + j] - (j == targets[n] ? 1.0 : 0.0));
    }
}
