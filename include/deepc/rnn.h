/* deepc/rnn.h: recurrent layers and cells (Elman RNN with tanh or relu, GRU, LSTM) and
 * attention over padded sequences, as ops with autograd and as modules with PyTorch's names.
 *
 * Semantics follow torch.nn.RNN / GRU / LSTM and their *Cell versions: PyTorch's gate order
 * (GRU r, z, n; LSTM i, f, g, o), both biases, default initialisation U(-1/sqrt(hidden),
 * 1/sqrt(hidden)) for every parameter drawn in registration order (so after
 * dc_manual_seed(s) a module equals torch.manual_seed(s) + constructing the torch module).
 *
 * Variable lengths: pass `lengths` (I64 or I32 [B], each in 1..T) to run each row only for
 * its own length, exactly as pack_padded_sequence(..., enforce_sorted=False) followed by
 * pad_packed_sequence: outputs past a row's length are zero and the final state h_n (c_n) is
 * the state at the row's last real step.
 *
 * A whole layer call is ONE autograd node: its forward runs every time step (one GEMM for
 * the input projections of all steps, then one GEMM and one fused gate pass per step) and
 * its backward runs BPTT in one pass. Results follow the pool rules of deepc/core.h; the
 * output, h_n and c_n of one call are views of one tensor and may all be used in a loss.
 *
 *   dc_module *enc = dc_rnn_new(DC_GRU, 1, 64, 1, true, true);   // batch_first
 *   dc_rnn_out r;
 *   if (dc_rnn_forward(enc, x, NULL, NULL, lengths, &r)) ...      // x [B, T, 1]
 *   // r.output [B, T, 64], r.h_n [1, B, 64]
 */
#ifndef DEEPC_RNN_H
#define DEEPC_RNN_H

#include "deepc/core.h"
#include "deepc/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dc_rnn_mode {
    DC_RNN_TANH = 0, /* torch.nn.RNN(nonlinearity="tanh") */
    DC_RNN_RELU = 1, /* torch.nn.RNN(nonlinearity="relu") */
    DC_GRU = 2,
    DC_LSTM = 3,
} dc_rnn_mode;

/* "RNN_TANH", "RNN_RELU", "GRU", "LSTM" */
const char *dc_rnn_mode_name(dc_rnn_mode mode);
/* Gates per hidden unit: 1, 1, 3, 4 (weights have gates * hidden rows). */
int dc_rnn_num_gates(dc_rnn_mode mode);

/* ---- ops -------------------------------------------------------------------------------- */

/* One layer, one direction, over a padded sequence.
 *   x: [T, B, I], or [B, T, I] when batch_first
 *   h0, c0: [B, H] or NULL (zeros); c0 only for LSTM (must be NULL otherwise)
 *   w_ih [G*H, I], w_hh [G*H, H], b_ih / b_hh [G*H] or NULL
 *   lengths: NULL or I64/I32 [B] with values in 1..T
 * Writes output ([T, B, H] or [B, T, H]), h_n [B, H] and, for LSTM, c_n [B, H] (any of the
 * three pointers may be NULL if not wanted). Returns DC_OK or an error naming the shapes. */
dc_status dc_rnn_layer(dc_rnn_mode mode, dc_tensor *x, dc_tensor *h0, dc_tensor *c0,
                       dc_tensor *w_ih, dc_tensor *w_hh, dc_tensor *b_ih, dc_tensor *b_hh,
                       const dc_tensor *lengths, bool batch_first, dc_tensor **output,
                       dc_tensor **h_n, dc_tensor **c_n);

/* Stacked layers as torch.nn.RNN/GRU/LSTM's forward (one direction, no inter-layer dropout).
 * params: per layer w_ih, w_hh (and b_ih, b_hh when has_bias), layer after layer.
 * h0, c0: [L, B, H] or NULL. Writes output and h_n, c_n [L, B, H]. */
dc_status dc_rnn(dc_rnn_mode mode, dc_tensor *x, dc_tensor *h0, dc_tensor *c0, int num_layers,
                 dc_tensor *const *params, bool has_bias, const dc_tensor *lengths,
                 bool batch_first, dc_tensor **output, dc_tensor **h_n, dc_tensor **c_n);

/* Cells (one step). x [B, I] or unbatched [I]; h, c [B, H] / [H] or NULL (zeros).
 * mode DC_RNN_TANH / DC_RNN_RELU / DC_GRU return h'. */
dc_tensor *dc_rnn_cell(dc_rnn_mode mode, dc_tensor *x, dc_tensor *h, dc_tensor *w_ih,
                       dc_tensor *w_hh, dc_tensor *b_ih, dc_tensor *b_hh);
/* LSTMCell: writes h' and c'. */
dc_status dc_lstm_cell(dc_tensor *x, dc_tensor *h, dc_tensor *c, dc_tensor *w_ih,
                       dc_tensor *w_hh, dc_tensor *b_ih, dc_tensor *b_hh, dc_tensor **h_out,
                       dc_tensor **c_out);

/* Attention of each query over the real (non-padded) positions of its row, one fused op:
 *   dot:      e[b,s] = query[b] . keys[b,s]                  query [B, E], keys [B, S, E]
 *   additive: e[b,s] = v . tanh(query[b] + keys[b,s])        v [E] (or [1, E])
 *   a[b] = softmax over s < lengths[b] of e[b] (padded positions get weight 0)
 *   context[b] = sum_s a[b,s] values[b,s]                    values [B, S, Ev] -> [B, Ev]
 * lengths: NULL (all S real) or I64/I32 [B] in 1..S. If weights is not NULL it receives a
 * [B, S] (borrowed, not differentiable). Luong's "general" score is dot attention over
 * keys = Linear(values) (see dc_attention_new); Bahdanau's additive score takes the query and
 * keys already projected (W_q h, W_k enc + b). */
dc_tensor *dc_dot_attention(dc_tensor *query, dc_tensor *keys, dc_tensor *values,
                            const dc_tensor *lengths, dc_tensor **weights);
dc_tensor *dc_additive_attention(dc_tensor *query, dc_tensor *keys, dc_tensor *values,
                                 dc_tensor *v, const dc_tensor *lengths, dc_tensor **weights);

/* ---- modules ---------------------------------------------------------------------------- */

/* torch.nn.RNN / GRU / LSTM (one direction; dropout 0). Parameters weight_ih_l{k},
 * weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}. dc_module_forward(m, x) returns the output
 * with zero initial state and full lengths. */
dc_module *dc_rnn_new(dc_rnn_mode mode, int64_t input_size, int64_t hidden_size, int num_layers,
                      bool bias, bool batch_first);

typedef struct dc_rnn_out {
    dc_tensor *output; /* [T, B, H] or [B, T, H] (borrowed, pool rules) */
    dc_tensor *h_n;    /* [L, B, H] */
    dc_tensor *c_n;    /* [L, B, H] for LSTM, else NULL */
} dc_rnn_out;
/* h0 / c0: [L, B, H] or NULL; lengths as for dc_rnn_layer. */
dc_status dc_rnn_forward(dc_module *m, dc_tensor *x, dc_tensor *h0, dc_tensor *c0,
                         const dc_tensor *lengths, dc_rnn_out *out);

/* torch.nn.RNNCell (DC_RNN_TANH / DC_RNN_RELU), GRUCell, LSTMCell: parameters weight_ih,
 * weight_hh, bias_ih, bias_hh. dc_module_forward(m, x) runs one step from a zero state
 * (LSTM: returns h'). */
dc_module *dc_rnn_cell_new(dc_rnn_mode mode, int64_t input_size, int64_t hidden_size, bool bias);
/* One step: h' (and c' for LSTM, else *c_out = NULL). h, c may be NULL (zeros). */
dc_status dc_rnn_cell_forward(dc_module *m, dc_tensor *x, dc_tensor *h, dc_tensor *c,
                              dc_tensor **h_out, dc_tensor **c_out);

typedef enum dc_attention_kind {
    DC_ATTN_DOT = 0,      /* score = h . enc_s (no parameters) */
    DC_ATTN_GENERAL = 1,  /* Luong: score = h . (W enc_s); parameter W.weight [H, H] */
    DC_ATTN_ADDITIVE = 2, /* Bahdanau: score = v . tanh(W_q h + W_k enc_s + b);
                             query.weight [H, H], key.weight [H, H], key.bias [H], v.weight [1, H] */
} dc_attention_kind;

const char *dc_attention_kind_name(dc_attention_kind kind); /* "dot", "general", "additive" */
/* Parses "dot" / "general" / "additive"; returns -1 if unknown. */
int dc_attention_kind_parse(const char *name);

/* An attention module over encoder outputs of size `hidden` with a decoder state of size
 * `hidden`. Use it as: keys = dc_attention_keys(m, enc) once per sequence batch, then
 * dc_attention_forward(m, h, keys, enc, lengths, &w) at each decoder step. */
dc_module *dc_attention_new(dc_attention_kind kind, int64_t hidden);
dc_attention_kind dc_attention_module_kind(const dc_module *m);
/* The per-sequence precomputation: enc itself (dot), W enc (general), W_k enc + b (additive). */
dc_tensor *dc_attention_keys(dc_module *m, dc_tensor *enc);
/* context [B, H] for decoder state h [B, H]; weights optional [B, S]. */
dc_tensor *dc_attention_forward(dc_module *m, dc_tensor *h, dc_tensor *keys, dc_tensor *values,
                                const dc_tensor *lengths, dc_tensor **weights);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_RNN_H */
