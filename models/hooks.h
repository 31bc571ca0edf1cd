/* hooks.h — the hook points a model offers to PEFT methods (owned by models/, implemented by
 * methods/, so the model never includes a method).
 *
 * Four kinds, matching where the survey's methods act:
 *  - linear:   replaces one linear site's forward/backward (LoRA, DoRA, VeRA, LoHa, (IA)3,
 *              sparse deltas). The hook computes the whole site output, usually by calling
 *              pb_site_base_fwd/bwd for the frozen product and adding its own term.
 *  - sublayer: transforms a sub-layer's output (after attn.o, or after mlp.down) before the
 *              residual add, seeing the sub-layer's normalised input (serial and parallel
 *              adapters).
 *  - prefix:   prepends P trainable key/value vectors to every layer's attention (prefix tuning),
 *              optionally scaled per sequence by a gate computed from the layer's input (UniPELT).
 *  - embed:    prepends P virtual token embeddings to the input (prompt tuning, P-tuning).
 * `trainable` says whether the hook owns trainable tensors: it decides which points of the
 * graph need gradients (model.h "backward plan"). Every function receives the hook's `self`.
 */
#ifndef PB_HOOKS_H
#define PB_HOOKS_H

#include "desc.h"

struct pb_tensor_s;

typedef struct {
    void *self;
    int trainable;
    /* out (N,OC) = site(inp (N,IC)) */
    void (*fwd)(void *self, float *out, const float *inp, const struct pb_tensor_s *w, const struct pb_tensor_s *b,
                int N);
    /* dinp (N,IC) += ... (dinp NULL: not needed); own gradients +=; base w/b gradients when they
     * are trainable (pb_site_base_bwd does that). */
    void (*bwd)(void *self, float *dinp, const float *dout, const float *inp, const struct pb_tensor_s *w,
                const struct pb_tensor_s *b, int N);
} pb_linear_hook;

typedef enum { PB_SUB_ATTN, PB_SUB_FFN, PB_NSUB } pb_sublayer;

typedef struct {
    void *self;
    int trainable;
    /* h (N,C) in place: the sub-layer output; x (N,C): the sub-layer's normalised input. */
    void (*fwd)(void *self, float *h, const float *x, int N);
    /* dh (N,C): d(new h) on entry; on exit d(old h) when need_dh (else contents undefined).
     * dx (N,C) += the gradient into x, or NULL when not needed. */
    void (*bwd)(void *self, float *dh, float *dx, const float *x, int N, int need_dh);
} pb_sublayer_hook;

typedef struct {
    void *self;
    int trainable;
    int P; /* prefix length */
    /* pk, pv (P,C): this layer's prefix keys and values for the current forward. */
    void (*fwd)(void *self, float *pk, float *pv);
    /* dpk, dpv (P,C): gradients of the loss w.r.t. this layer's prefix keys/values (summed over
     * the batch, each sequence's weighted by its gate when gated); the hook accumulates into its
     * own tensors. */
    void (*bwd)(void *self, const float *dpk, const float *dpv);
    /* Optional per-sequence gate (UniPELT); NULL: none. g (B): sequence b's gate, from x (B,Tm,C),
     * the layer's ln_1 output, and mask (B,Tm) (1 = real token). The model multiplies sequence
     * b's prefix keys and values by g[b]. With a gate, the model calls fwd again in backward
     * (for d g), so fwd must return the same prefix within one forward/backward. */
    void (*gate_fwd)(void *self, float *g, const float *x, const uint8_t *mask, int B, int Tm);
    /* dg (B): d(loss)/d(g); dx (B,Tm,C) += the gradient into x (NULL: not needed); the hook
     * accumulates its own tensors' gradients. */
    void (*gate_bwd)(void *self, float *dx, const float *dg, const float *x, const uint8_t *mask, int B, int Tm);
} pb_prefix_hook;

typedef struct {
    void *self;
    int trainable;
    int P; /* virtual tokens */
    /* prompt (P,C): the virtual token embeddings (positions are added by the model). */
    void (*fwd)(void *self, float *prompt);
    /* dprompt (P,C): gradient summed over the batch. */
    void (*bwd)(void *self, const float *dprompt);
} pb_embed_hook;

/* All hooks of a model; NULL pointers / NULL fwd mean "none". `begin` runs at the start of
 * every forward (methods compute reparameterised prompts or resize their buffers there) and
 * may fail (out of memory). */
typedef struct {
    void *self;
    int (*begin)(void *self, int B, int T, int training); /* returns 0 (PB_OK) or a pb_status */
    pb_linear_hook *linear;     /* (L * PB_NSITE), by [layer * PB_NSITE + site] (the head is never hooked) */
    pb_sublayer_hook *sublayer; /* (L * PB_NSUB) */
    pb_prefix_hook *prefix;     /* (L) */
    pb_embed_hook embed;
} pb_model_hooks;

#endif
