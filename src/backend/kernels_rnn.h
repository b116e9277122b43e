/* kernels_rnn.h: the backend kernels behind the recurrent and attention ops (src/ops/rnn.c):
 * a whole recurrent layer (Elman RNN with tanh/relu, GRU, LSTM) over a padded, time-major
 * sequence, forward and backward through time, and fused attention (dot and additive
 * scores, padding mask, softmax, weighted sum of values), forward and backward.
 *
 * Why whole layers: at the sizes seq2seq models use (hidden 64, batch 32) the arithmetic of
 * one time step is a few microseconds, so per-op dispatch, allocation and autograd
 * bookkeeping would dominate. One kernel call runs every step: the input projection of all
 * steps in one GEMM, then per step one GEMM with the hidden weights and one fused pass for
 * the gate nonlinearities; its backward runs BPTT in one pass from the saved gates and
 * finishes with one GEMM per weight.
 *
 * Layouts (all contiguous row-major F32, time-major):
 *   x [T, B, I]; h0, c0 [B, H] (NULL = zeros); w_ih [G*H, I]; w_hh [G*H, H];
 *   b_ih, b_hh [G*H] (NULL = no bias); G = 1 (RNN), 3 (GRU: r, z, n), 4 (LSTM: i, f, g, o),
 *   PyTorch's gate order.
 *   lengths [B] (I64, 1 <= len <= T) or NULL (every row runs T steps). A row stops at its
 *   length like pack_padded_sequence: later steps carry its state unchanged and its output
 *   there is zero.
 *   y [T, B, H] outputs (zero past each row's length); hs [T, B, H] the state after each
 *   step, carried past the length (so hs[T-1] is h_n); cs [T, B, H] the LSTM cell states
 *   likewise; gates [T, B, S*H] what backward needs (S = dc_rnn_saved_gates(mode): RNN 0,
 *   GRU 4 = r, z, n, W_hn h + b_hn; LSTM 4 = i, f, g, o after their nonlinearities).
 * Outputs named d* may be NULL when that gradient is not wanted; the others are overwritten.
 */
#ifndef DEEPC_KERNELS_RNN_H
#define DEEPC_KERNELS_RNN_H

#include <stdbool.h>
#include <stdint.h>

#include "deepc/core.h"

/* Matches dc_rnn_mode in deepc/rnn.h. */
enum { DC_K_RNN_TANH = 0, DC_K_RNN_RELU = 1, DC_K_GRU = 2, DC_K_LSTM = 3 };
/* Matches the score kinds the attention kernels compute. */
enum { DC_K_ATTN_DOT = 0, DC_K_ATTN_ADDITIVE = 1 };

typedef struct dc_rnn_dims {
    int mode;           /* DC_K_* */
    int64_t T, B, I, H; /* steps, batch, input size, hidden size */
} dc_rnn_dims;

typedef struct dc_rnn_weights {
    const float *w_ih, *w_hh, *b_ih, *b_hh; /* biases may be NULL */
} dc_rnn_weights;

static inline int dc_rnn_gate_count(int mode) { return mode == DC_K_GRU ? 3 : mode == DC_K_LSTM ? 4 : 1; }
static inline int dc_rnn_saved_gates(int mode) { return mode == DC_K_GRU || mode == DC_K_LSTM ? 4 : 0; }

struct dc_kernels_rnn {
    /* One layer over T steps (see the layouts above). y may equal hs when lengths is NULL
     * (then the outputs are the states). cs is required for LSTM (NULL otherwise); gates may
     * be NULL when no backward will follow (inference). */
    dc_status (*layer_forward)(const dc_rnn_dims *d, const float *x, const float *h0,
                               const float *c0, const dc_rnn_weights *w, const int64_t *lengths,
                               float *y, float *hs, float *cs, float *gates);
    /* BPTT for layer_forward from dy [T, B, H] (NULL = 0), dh_n and dc_n [B, H] (NULL = 0),
     * given the forward's hs, cs and gates. Produces dx [T, B, I], dh0, dc0 [B, H], dw_ih,
     * dw_hh, db_ih, db_hh. */
    dc_status (*layer_backward)(const dc_rnn_dims *d, const float *x, const float *h0,
                                const float *c0, const dc_rnn_weights *w,
                                const int64_t *lengths, const float *hs, const float *cs,
                                const float *gates, const float *dy, const float *dh_n,
                                const float *dc_n, float *dx, float *dh0, float *dc0,
                                float *dw_ih, float *dw_hh, float *db_ih, float *db_hh);

    /* Attention of B queries over S positions each:
     *   dot:      e[b,s] = q[b] . k[b,s]                        (q [B, E], k [B, S, E])
     *   additive: e[b,s] = sum_j v[j] tanh(q[b,j] + k[b,s,j])   (v [E]; the tanh values are
     *             written to u [B, S, E] for backward, or u may be NULL for inference)
     *   a[b] = softmax over s < len[b] of e[b] (0 at padded positions; lengths NULL = S)
     *   ctx[b] = sum_s a[b,s] val[b,s]                          (val [B, S, Ev], ctx [B, Ev])
     * a [B, S] is written. */
    dc_status (*attention_forward)(int kind, int64_t B, int64_t S, int64_t E, int64_t Ev,
                                   const float *q, const float *k, const float *val,
                                   const float *v, const int64_t *lengths, float *ctx, float *a,
                                   float *u);
    /* Gradients of attention_forward from dctx [B, Ev]: dq [B, E], dk [B, S, E],
     * dval [B, S, Ev], dv [E] (additive). dk may equal dval (keys and values are one tensor,
     * E == Ev): it then receives the sum of both. */
    dc_status (*attention_backward)(int kind, int64_t B, int64_t S, int64_t E, int64_t Ev,
                                    const float *q, const float *k, const float *val,
                                    const float *v, const float *a, const float *u,
                                    const float *dctx, float *dq, float *dk, float *dval,
                                    float *dv);
};

#endif /* DEEPC_KERNELS_RNN_H */
