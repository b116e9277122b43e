/* rnn.c: the recurrent and attention ops of deepc/rnn.h: a whole RNN/GRU/LSTM layer over a
 * padded sequence (one autograd node), stacked layers, the three cells, and fused dot /
 * additive attention with a padding mask. Shapes are checked here; the arithmetic is the rnn
 * kernel group (src/backend/cpu/rnn.c).
 *
 * Several results from one node: a layer returns the output sequence, h_n and c_n, and each
 * of them may feed the loss. The autograd node has one output tensor, so the op writes all
 * three into one "raw" tensor R = [output (T rows); h_n; c_n] ([T+1 or T+2, B, H],
 * time-major) and hands out views of it; the view ops' backwards scatter each gradient into
 * R's shape and autograd sums them before this op's backward reads dR. Cells use R = h'
 * (no view needed) or, for LSTM, R = [h'; c'].
 *
 * Nothing the op returns is saved in its own node (that would be a reference cycle keeping
 * the graph alive when backward never runs), so the states the backward needs are kept in
 * separate buffers. */
#include <math.h>

#include "../backend/kernels_rnn.h"
#include "../core/internal.h"
#include "deepc/ops.h"
#include "deepc/rnn.h"

/* The CPU backend refers to its kernel groups weakly; this strong reference makes the linker
 * pull the rnn kernels out of the static library whenever these ops are linked. */
extern const struct dc_kernels_rnn dc_cpu_rnn_kernels;
const void *const dc__cpu_rnn_anchor = &dc_cpu_rnn_kernels;

const char *dc_rnn_mode_name(dc_rnn_mode mode)
{
    switch (mode) {
    case DC_RNN_TANH: return "RNN_TANH";
    case DC_RNN_RELU: return "RNN_RELU";
    case DC_GRU: return "GRU";
    case DC_LSTM: return "LSTM";
    }
    return "?";
}

int dc_rnn_num_gates(dc_rnn_mode mode) { return dc_rnn_gate_count((int)mode); }

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

/* t itself when contiguous (borrowed), else a contiguous copy that autograd does not see
 * (the op records its own node on the original tensor). */
static dc_tensor *plain_contiguous(dc_tensor *t)
{
    if (!t || dc_is_contiguous(t)) return t;
    dc_tensor *c = dc__new(t->dtype, t->ndim, t->shape, t->storage->device);
    if (!c) return NULL;
    if (dc_backend_of(t)->copy_strided(dc_data(c), c->dtype, c->stride, dc_data(t), t->dtype, t->stride,
                                       t->ndim, t->shape)) {
        dc__discard(c);
        return NULL;
    }
    return c;
}

/* [d0, d1, rest] -> contiguous [d1, d0, rest] (a copy; no autograd). */
static dc_tensor *swap01_copy(const dc_tensor *t)
{
    int64_t shape[DC_MAX_DIMS], stride[DC_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i], stride[i] = t->stride[i];
    shape[0] = t->shape[1], shape[1] = t->shape[0];
    stride[0] = t->stride[1], stride[1] = t->stride[0];
    dc_tensor *c = dc__new(t->dtype, t->ndim, shape, t->storage->device);
    if (!c) return NULL;
    if (dc_backend_of(t)->copy_strided(dc_data(c), c->dtype, c->stride, dc_data(t), t->dtype, stride, t->ndim,
                                       shape)) {
        dc__discard(c);
        return NULL;
    }
    return c;
}

/* Validates lengths ([B], integer, each in 1..T) and returns them as a contiguous I64 tensor
 * (lengths itself when it already is one). NULL lengths: *out = NULL. */
static dc_status lengths_i64(const char *op, const dc_tensor *lengths, int64_t B, int64_t T,
                             dc_tensor **out)
{
    *out = NULL;
    if (!lengths) return DC_OK;
    char s[DC_SHAPE_STR_MAX];
    if (lengths->dtype != DC_I64 && lengths->dtype != DC_I32)
        return dc_set_error(DC_ERR_DTYPE, "%s: lengths must be I64 or I32, got %s", op, dc_dtype_name(lengths->dtype));
    if (lengths->ndim != 1 || lengths->shape[0] != B)
        return dc_set_error(DC_ERR_SHAPE, "%s: lengths %s must be [%lld] (one per batch row)", op,
                            dc_shape_str(lengths, s, sizeof s), (long long)B);
    if (dc_tensor_device(lengths) != DC_CPU)
        return dc_set_error(DC_ERR_DEVICE, "%s: lengths must be on the CPU", op);
    dc_tensor *l = (dc_tensor *)lengths;
    if (lengths->dtype != DC_I64 || !dc_is_contiguous(lengths)) {
        l = dc__new(DC_I64, 1, lengths->shape, DC_CPU);
        if (!l) return dc_last_status();
        if (dc_backend_of(l)->copy_strided(dc_data(l), DC_I64, l->stride, dc_data(lengths), lengths->dtype,
                                           lengths->stride, 1, lengths->shape)) {
            dc__discard(l);
            return dc_last_status();
        }
    }
    const int64_t *p = dc_data(l);
    for (int64_t b = 0; b < B; b++) {
        if (p[b] < 1 || p[b] > T) {
            if (l != lengths) dc__discard(l);
            return dc_set_error(DC_ERR_ARG, "%s: lengths[%lld] = %lld is outside 1..%lld (the padded length)", op,
                                (long long)b, (long long)p[b], (long long)T);
        }
    }
    *out = l;
    return DC_OK;
}

static bool has_shape2(const dc_tensor *t, int64_t a, int64_t b)
{
    return t->ndim == 2 && t->shape[0] == a && t->shape[1] == b;
}

/* ---------------------------------------------------------------------------------------
 * The recurrent core shared by layers and cells
 *
 * node->iarg: 0 mode, 1 T, 2 B, 3 I, 4 H, 5 raw layout (0: R = h' [B, H]; 1: R = [h'; c']
 * [2, B, H]; 2: layer R = [y; h_n (; c_n)]), 6 batch_first, 7 saved index of h0 (-1),
 * 8 of c0 (-1), 9 of the states [2, T, B, H] (hs, cs), 10 of gates (-1), 11 of lengths (-1)
 * node->saved[0] x (time-major, contiguous), [1] w_ih, [2] w_hh (contiguous)
 * ------------------------------------------------------------------------------------- */

enum { RAW_CELL = 0, RAW_LSTM_CELL = 1, RAW_LAYER = 2 };

static const float *opt_data(dc_node *node, int64_t idx)
{
    return idx >= 0 ? dc_data_f32(node->saved[idx]) : NULL;
}

static dc_status rnn_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    const dc_backend *be = dc_backend_of(g);
    dc_rnn_dims d = {(int)node->iarg[0], node->iarg[1], node->iarg[2], node->iarg[3], node->iarg[4]};
    const int64_t T = d.T, B = d.B, H = d.H, I = d.I, GH = dc_rnn_gate_count(d.mode) * H;
    const int raw = (int)node->iarg[5];
    dc_tensor *gc = dc_contiguous(g);
    if (!gc) return dc_last_status();
    const float *gp = dc_data_f32(gc);
    /* split dR into dy, dh_n, dc_n */
    const float *dy = gp, *dh_n = NULL, *dc_n = NULL;
    if (raw == RAW_LSTM_CELL) dc_n = gp + B * H;
    if (raw == RAW_LAYER) {
        dh_n = gp + T * B * H;
        if (d.mode == DC_K_LSTM) dc_n = gp + (T + 1) * B * H;
    }
    dc_tensor *x = node->inputs[0], *h0 = node->inputs[1], *c0 = node->inputs[2];
    dc_tensor *states = node->saved[node->iarg[9]];
    const float *hs = dc_data_f32(states), *cs = d.mode == DC_K_LSTM ? hs + T * B * H : NULL;
    dc_rnn_weights w = {dc_data_f32(node->saved[1]), dc_data_f32(node->saved[2]), NULL, NULL};

    dc_tensor *gx = NULL, *gh0 = NULL, *gc0 = NULL, *gw[4] = {NULL, NULL, NULL, NULL};
    if (dc_node_wants(node, 0) && !(gx = dc__new(DC_F32, 3, (int64_t[]){T, B, I}, DC_CPU))) return dc_last_status();
    if (dc_node_wants(node, 1) && !(gh0 = dc__new(DC_F32, h0->ndim, h0->shape, DC_CPU))) return dc_last_status();
    if (dc_node_wants(node, 2) && !(gc0 = dc__new(DC_F32, c0->ndim, c0->shape, DC_CPU))) return dc_last_status();
    for (int i = 0; i < 4; i++) {
        dc_tensor *p = node->inputs[3 + i];
        if (dc_node_wants(node, 3 + i) && !(gw[i] = dc__new(DC_F32, p->ndim, p->shape, DC_CPU)))
            return dc_last_status();
    }
    const int64_t *lengths = node->iarg[11] >= 0 ? dc_data(node->saved[node->iarg[11]]) : NULL;
    dc_status st = be->rnn->layer_backward(
        &d, dc_data_f32(node->saved[0]), opt_data(node, node->iarg[7]), opt_data(node, node->iarg[8]), &w, lengths,
        hs, cs, opt_data(node, node->iarg[10]), dy, dh_n, dc_n, gx ? dc_data_f32(gx) : NULL,
        gh0 ? dc_data_f32(gh0) : NULL, gc0 ? dc_data_f32(gc0) : NULL, gw[0] ? dc_data_f32(gw[0]) : NULL,
        gw[1] ? dc_data_f32(gw[1]) : NULL, gw[2] ? dc_data_f32(gw[2]) : NULL, gw[3] ? dc_data_f32(gw[3]) : NULL);
    if (st) return st;
    (void)GH;
    if (gx) {
        /* back to x's own layout: batch_first layers swap, cells may be 1-d */
        if (node->iarg[6]) gx = swap01_copy(gx);
        if (gx && x->ndim != gx->ndim) gx = dc_reshape(gx, x->ndim, x->shape);
        if (!gx) return dc_last_status();
        gi[0] = gx;
    }
    gi[1] = gh0;
    gi[2] = gc0;
    for (int i = 0; i < 4; i++) gi[3 + i] = gw[i];
    return DC_OK;
}

/* Runs the kernel on validated inputs and records the node. xt: time-major contiguous
 * [T, B, I] (possibly a copy of x). h0c / c0c: contiguous [B, H] or NULL. Returns R. */
static dc_tensor *rnn_core(const char *op, int mode, int raw, dc_tensor *x, dc_tensor *xt, dc_tensor *h0,
                           dc_tensor *h0c, dc_tensor *c0, dc_tensor *c0c, dc_tensor *w_ih, dc_tensor *w_hh,
                           dc_tensor *b_ih, dc_tensor *b_hh, dc_tensor *len, bool batch_first)
{
    const dc_backend *be = dc_backend_of(xt);
    if (!be->rnn) {
        dc_backend_missing(be, op);
        return NULL;
    }
    const int64_t T = xt->shape[0], B = xt->shape[1], I = xt->shape[2], H = w_hh->shape[1];
    dc_tensor *ins[7] = {x, h0, c0, w_ih, w_hh, b_ih, b_hh};
    const bool grad = dc__any_needs_grad(7, ins);
    dc_tensor *wi = plain_contiguous(w_ih), *wh = plain_contiguous(w_hh);
    dc_tensor *bi = plain_contiguous(b_ih), *bh = plain_contiguous(b_hh);
    if (!wi || !wh || (b_ih && !bi) || (b_hh && !bh)) return NULL;
    int64_t rows = raw == RAW_CELL ? 1 : raw == RAW_LSTM_CELL ? 2 : T + 1 + (mode == DC_K_LSTM);
    dc_tensor *R = raw == RAW_CELL ? dc__new(DC_F32, 2, (int64_t[]){B, H}, DC_CPU)
                                   : dc__new(DC_F32, 3, (int64_t[]){rows, B, H}, DC_CPU);
    /* states hs (and cs) kept for backward, and the gates */
    int64_t ns = mode == DC_K_LSTM ? 2 : 1;
    dc_tensor *states = dc__new(DC_F32, 4, (int64_t[]){ns, T, B, H}, DC_CPU);
    int64_t S = dc_rnn_saved_gates(mode);
    dc_tensor *gates = grad && S ? dc__new(DC_F32, 3, (int64_t[]){T, B, S * H}, DC_CPU) : NULL;
    if (!R || !states || (grad && S && !gates)) return NULL;
    dc_rnn_dims d = {mode, T, B, I, H};
    dc_rnn_weights w = {dc_data_f32(wi), dc_data_f32(wh), bi ? dc_data_f32(bi) : NULL, bh ? dc_data_f32(bh) : NULL};
    float *hs = dc_data_f32(states), *cs = mode == DC_K_LSTM ? hs + T * B * H : NULL;
    const int64_t *lp = len ? dc_data(len) : NULL;
    if (be->rnn->layer_forward(&d, dc_data_f32(xt), h0c ? dc_data_f32(h0c) : NULL, c0c ? dc_data_f32(c0c) : NULL,
                               &w, lp, dc_data_f32(R), hs, cs, gates ? dc_data_f32(gates) : NULL))
        return NULL;
    float *rp = dc_data_f32(R);
    if (raw == RAW_LSTM_CELL) memcpy(rp + B * H, cs, (size_t)(B * H) * sizeof(float));
    if (raw == RAW_LAYER) {
        memcpy(rp + T * B * H, hs + (T - 1) * B * H, (size_t)(B * H) * sizeof(float));
        if (mode == DC_K_LSTM) memcpy(rp + (T + 1) * B * H, cs + (T - 1) * B * H, (size_t)(B * H) * sizeof(float));
    }
    dc_node *node = dc__record(R, op, rnn_backward, 7, ins);
    if (node) {
        node->iarg[0] = mode, node->iarg[1] = T, node->iarg[2] = B, node->iarg[3] = I, node->iarg[4] = H;
        node->iarg[5] = raw, node->iarg[6] = batch_first;
        dc__save(node, xt);
        dc__save(node, wi);
        dc__save(node, wh);
        node->iarg[7] = h0c ? dc__save(node, h0c) : -1;
        node->iarg[8] = c0c ? dc__save(node, c0c) : -1;
        node->iarg[9] = dc__save(node, states);
        node->iarg[10] = gates ? dc__save(node, gates) : -1;
        node->iarg[11] = len ? dc__save(node, len) : -1;
    }
    return R;
}

/* Checks the weights of a layer/cell: returns H (> 0) or -1 with an error. */
static int64_t check_weights(const char *op, int mode, int64_t I, dc_tensor *w_ih, dc_tensor *w_hh,
                             dc_tensor *b_ih, dc_tensor *b_hh)
{
    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
    if (dc__check_f32(op, w_ih, "weight_ih") || dc__check_f32(op, w_hh, "weight_hh")) return -1;
    const int64_t G = dc_rnn_gate_count(mode);
    if (w_hh->ndim != 2 || w_hh->shape[1] <= 0 || w_hh->shape[0] != G * w_hh->shape[1]) {
        dc_set_error(DC_ERR_SHAPE, "%s: weight_hh %s must be [%lld * hidden, hidden] for %s", op,
                     dc_shape_str(w_hh, a, sizeof a), (long long)G, dc_rnn_mode_name((dc_rnn_mode)mode));
        return -1;
    }
    const int64_t H = w_hh->shape[1];
    if (!has_shape2(w_ih, G * H, I)) {
        dc_set_error(DC_ERR_SHAPE, "%s: weight_ih %s must be [%lld, %lld] (gates * hidden, input size of x)", op,
                     dc_shape_str(w_ih, a, sizeof a), (long long)(G * H), (long long)I);
        return -1;
    }
    dc_tensor *bs[2] = {b_ih, b_hh};
    for (int i = 0; i < 2; i++) {
        if (!bs[i]) continue;
        if (dc__check_f32(op, bs[i], i ? "bias_hh" : "bias_ih")) return -1;
        if (bs[i]->ndim != 1 || bs[i]->shape[0] != G * H) {
            dc_set_error(DC_ERR_SHAPE, "%s: %s %s must be [%lld] (weight_hh %s)", op, i ? "bias_hh" : "bias_ih",
                         dc_shape_str(bs[i], a, sizeof a), (long long)(G * H), dc_shape_str(w_hh, b, sizeof b));
            return -1;
        }
    }
    return H;
}

static dc_status check_state(const char *op, const char *what, dc_tensor *s, int64_t B, int64_t H, int ndim)
{
    if (!s) return DC_OK;
    if (dc__check_f32(op, s, what)) return dc_last_status();
    bool ok = ndim == 2 ? has_shape2(s, B, H) : (s->ndim == 1 && s->shape[0] == H);
    if (!ok) {
        char a[DC_SHAPE_STR_MAX];
        if (ndim == 2)
            return dc_set_error(DC_ERR_SHAPE, "%s: %s %s must be [%lld, %lld] ([batch, hidden])", op, what,
                                dc_shape_str(s, a, sizeof a), (long long)B, (long long)H);
        return dc_set_error(DC_ERR_SHAPE, "%s: %s %s must be [%lld] for an unbatched input", op, what,
                            dc_shape_str(s, a, sizeof a), (long long)H);
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Layers
 * ------------------------------------------------------------------------------------- */

dc_status dc_rnn_layer(dc_rnn_mode mode, dc_tensor *x, dc_tensor *h0, dc_tensor *c0, dc_tensor *w_ih,
                       dc_tensor *w_hh, dc_tensor *b_ih, dc_tensor *b_hh, const dc_tensor *lengths,
                       bool batch_first, dc_tensor **output, dc_tensor **h_n, dc_tensor **c_n)
{
    static const char *op = "rnn_layer";
    if (output) *output = NULL;
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    if ((unsigned)mode > DC_LSTM) return dc_set_error(DC_ERR_ARG, "%s: unknown mode %d", op, (int)mode);
    dc_tensor *req[3] = {x, w_ih, w_hh};
    if (!dc__check_inputs(op, 3, req)) return dc_last_status() ? dc_last_status() : DC_ERR_ARG;
    if (dc__check_f32(op, x, "input")) return dc_last_status();
    char a[DC_SHAPE_STR_MAX];
    if (x->ndim != 3 || x->shape[0] <= 0 || x->shape[1] <= 0)
        return dc_set_error(DC_ERR_SHAPE, "%s: input %s must be %s with T, B >= 1", op, dc_shape_str(x, a, sizeof a),
                            batch_first ? "[B, T, I]" : "[T, B, I]");
    if (c0 && mode != DC_LSTM)
        return dc_set_error(DC_ERR_ARG, "%s: c0 given for %s (only LSTM has a cell state)", op,
                            dc_rnn_mode_name(mode));
    const int64_t T = x->shape[batch_first ? 1 : 0], B = x->shape[batch_first ? 0 : 1], I = x->shape[2];
    int64_t H = check_weights(op, mode, I, w_ih, w_hh, b_ih, b_hh);
    if (H < 0) return dc_last_status();
    if (check_state(op, "h0", h0, B, H, 2) || check_state(op, "c0", c0, B, H, 2)) return dc_last_status();

    dc_pool_mark mark = dc_pool_push();
    dc_status st = DC_OK;
    dc_tensor *res[3] = {NULL, NULL, NULL};
    dc_tensor *len = NULL;
    if ((st = lengths_i64(op, lengths, B, T, &len))) goto done;
    dc_tensor *xt = batch_first ? swap01_copy(x) : plain_contiguous(x);
    dc_tensor *h0c = plain_contiguous(h0), *c0c = plain_contiguous(c0);
    if (!xt || (h0 && !h0c) || (c0 && !c0c)) goto fail;
    dc_tensor *R = rnn_core(op, (int)mode, RAW_LAYER, x, xt, h0, h0c, c0, c0c, w_ih, w_hh, b_ih, b_hh, len,
                            batch_first);
    if (!R) goto fail;
    if (output) {
        res[0] = dc_narrow(R, 0, 0, T);
        if (res[0] && batch_first) res[0] = dc_transpose(res[0], 0, 1);
        if (!res[0]) goto fail;
    }
    if (h_n && !(res[1] = dc_select(R, 0, T))) goto fail;
    if (c_n && mode == DC_LSTM && !(res[2] = dc_select(R, 0, T + 1))) goto fail;
    for (int i = 0; i < 3; i++) dc_tensor_retain(res[i]);
    goto done;
fail:
    st = dc_last_status() ? dc_last_status() : DC_ERR_STATE;
done:
    dc_pool_pop(mark);
    dc_tensor **outs[3] = {output, h_n, c_n};
    for (int i = 0; i < 3; i++)
        if (!st && res[i]) *outs[i] = dc__register(res[i]);
    return st;
}

dc_status dc_rnn(dc_rnn_mode mode, dc_tensor *x, dc_tensor *h0, dc_tensor *c0, int num_layers,
                 dc_tensor *const *params, bool has_bias, const dc_tensor *lengths, bool batch_first,
                 dc_tensor **output, dc_tensor **h_n, dc_tensor **c_n)
{
    static const char *op = "rnn";
    if (output) *output = NULL;
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    if (num_layers < 1 || !params) return dc_set_error(DC_ERR_ARG, "%s: num_layers %d must be >= 1 with params", op, num_layers);
    if (!x) return dc_last_status() ? dc_last_status() : dc_set_error(DC_ERR_ARG, "%s: input is NULL", op);
    if ((unsigned)mode > DC_LSTM) return dc_set_error(DC_ERR_ARG, "%s: unknown mode %d", op, (int)mode);
    if (c0 && mode != DC_LSTM) return dc_set_error(DC_ERR_ARG, "%s: c0 given for %s", op, dc_rnn_mode_name(mode));
    dc_tensor *st0[2] = {h0, c0};
    for (int i = 0; i < 2; i++) {
        dc_tensor *s = st0[i];
        if (s && (s->ndim != 3 || s->shape[0] != num_layers)) {
            char a[DC_SHAPE_STR_MAX];
            return dc_set_error(DC_ERR_SHAPE, "%s: %s %s must be [%d, B, H] (num_layers first)", op, i ? "c0" : "h0",
                                dc_shape_str(s, a, sizeof a), num_layers);
        }
    }
    const int per = has_bias ? 4 : 2;
    dc_pool_mark mark = dc_pool_push();
    dc_status st = DC_OK;
    dc_tensor *hn[64], *cn[64];
    dc_tensor *res[3] = {NULL, NULL, NULL};
    if (num_layers > 64) {
        st = dc_set_error(DC_ERR_ARG, "%s: %d layers (at most 64)", op, num_layers);
        goto done;
    }
    /* run time-major inside; layer 0 reads x as given */
    dc_tensor *cur = x;
    bool bf = batch_first;
    for (int l = 0; l < num_layers; l++) {
        dc_tensor *const *p = params + l * per;
        dc_tensor *lh = h0 ? dc_select(h0, 0, l) : NULL, *lc = c0 ? dc_select(c0, 0, l) : NULL;
        dc_tensor *out = NULL;
        if ((st = dc_rnn_layer(mode, cur, lh, lc, p[0], p[1], has_bias ? p[2] : NULL, has_bias ? p[3] : NULL,
                               lengths, bf, &out, &hn[l], mode == DC_LSTM ? &cn[l] : NULL)))
            goto done;
        if (bf) out = dc_transpose(out, 0, 1); /* back to the layer's time-major raw view */
        cur = out;
        bf = false;
    }
    res[0] = batch_first ? dc_transpose(cur, 0, 1) : cur;
    res[1] = num_layers == 1 ? dc_unsqueeze(hn[0], 0) : dc_stack(num_layers, hn, 0);
    if (mode == DC_LSTM) res[2] = num_layers == 1 ? dc_unsqueeze(cn[0], 0) : dc_stack(num_layers, cn, 0);
    if (!res[0] || !res[1] || (mode == DC_LSTM && !res[2])) {
        st = dc_last_status() ? dc_last_status() : DC_ERR_STATE;
        goto done;
    }
    for (int i = 0; i < 3; i++) dc_tensor_retain(res[i]);
done:
    dc_pool_pop(mark);
    dc_tensor **outs[3] = {output, h_n, c_n};
    for (int i = 0; i < 3; i++) {
        if (st || !res[i]) continue;
        if (outs[i]) *outs[i] = dc__register(res[i]);
        else dc_tensor_release(res[i]);
    }
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Cells: a layer of one step
 * ------------------------------------------------------------------------------------- */

static dc_status cell_impl(const char *op, int mode, dc_tensor *x, dc_tensor *h, dc_tensor *c, dc_tensor *w_ih,
                           dc_tensor *w_hh, dc_tensor *b_ih, dc_tensor *b_hh, dc_tensor **h_out, dc_tensor **c_out)
{
    *h_out = NULL;
    if (c_out) *c_out = NULL;
    dc_tensor *req[3] = {x, w_ih, w_hh};
    if (!dc__check_inputs(op, 3, req)) return dc_last_status() ? dc_last_status() : DC_ERR_ARG;
    if (dc__check_f32(op, x, "input")) return dc_last_status();
    char a[DC_SHAPE_STR_MAX];
    if ((x->ndim != 1 && x->ndim != 2) || x->shape[0] <= 0)
        return dc_set_error(DC_ERR_SHAPE, "%s: input %s must be [B, I] or [I]", op, dc_shape_str(x, a, sizeof a));
    const bool batched = x->ndim == 2;
    const int64_t B = batched ? x->shape[0] : 1, I = x->shape[x->ndim - 1];
    int64_t H = check_weights(op, mode, I, w_ih, w_hh, b_ih, b_hh);
    if (H < 0) return dc_last_status();
    if (check_state(op, "hx", h, B, H, x->ndim) || check_state(op, "cx", c, B, H, x->ndim)) return dc_last_status();

    dc_pool_mark mark = dc_pool_push();
    dc_status st = DC_OK;
    dc_tensor *res[2] = {NULL, NULL};
    /* x [B, I] is already the time-major [1, B, I] layout; 1-d inputs are one row */
    dc_tensor *xc = plain_contiguous(x), *hc = plain_contiguous(h), *cc = plain_contiguous(c);
    dc_tensor *xt = xc ? dc__view(xc, 3, (int64_t[]){1, B, I}, (int64_t[]){B * I, I, 1}, xc->offset) : NULL;
    dc_tensor *hv = hc ? dc__view(hc, 2, (int64_t[]){B, H}, (int64_t[]){H, 1}, hc->offset) : NULL;
    dc_tensor *cv = cc ? dc__view(cc, 2, (int64_t[]){B, H}, (int64_t[]){H, 1}, cc->offset) : NULL;
    if (!xt || (h && !hv) || (c && !cv)) goto fail;
    int raw = mode == DC_K_LSTM ? RAW_LSTM_CELL : RAW_CELL;
    dc_tensor *R = rnn_core(op, mode, raw, x, xt, h, hv, c, cv, w_ih, w_hh, b_ih, b_hh, NULL, false);
    if (!R) goto fail;
    if (raw == RAW_CELL) {
        res[0] = batched ? R : dc_reshape(R, 1, (int64_t[]){H});
    } else {
        res[0] = dc_select(R, 0, 0);
        res[1] = dc_select(R, 0, 1);
        if (!batched && res[0] && res[1]) {
            res[0] = dc_reshape(res[0], 1, (int64_t[]){H});
            res[1] = dc_reshape(res[1], 1, (int64_t[]){H});
        }
        if (!res[1]) goto fail;
    }
    if (!res[0]) goto fail;
    for (int i = 0; i < 2; i++) dc_tensor_retain(res[i]);
    goto done;
fail:
    st = dc_last_status() ? dc_last_status() : DC_ERR_STATE;
done:
    dc_pool_pop(mark);
    if (!st) {
        *h_out = dc__register(res[0]);
        if (res[1]) {
            if (c_out) *c_out = dc__register(res[1]);
            else dc_tensor_release(res[1]);
        }
    }
    return st;
}

dc_tensor *dc_rnn_cell(dc_rnn_mode mode, dc_tensor *x, dc_tensor *h, dc_tensor *w_ih, dc_tensor *w_hh,
                       dc_tensor *b_ih, dc_tensor *b_hh)
{
    if (mode == DC_LSTM || (unsigned)mode > DC_LSTM) {
        dc_set_error(DC_ERR_ARG, "rnn_cell: mode %s needs dc_lstm_cell (it has a cell state)", dc_rnn_mode_name(mode));
        return NULL;
    }
    dc_tensor *out = NULL;
    cell_impl(mode == DC_GRU ? "gru_cell" : "rnn_cell", (int)mode, x, h, NULL, w_ih, w_hh, b_ih, b_hh, &out, NULL);
    return out;
}

dc_status dc_lstm_cell(dc_tensor *x, dc_tensor *h, dc_tensor *c, dc_tensor *w_ih, dc_tensor *w_hh, dc_tensor *b_ih,
                       dc_tensor *b_hh, dc_tensor **h_out, dc_tensor **c_out)
{
    if (!h_out) return dc_set_error(DC_ERR_ARG, "lstm_cell: h_out is NULL");
    return cell_impl("lstm_cell", DC_K_LSTM, x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out);
}

/* ---------------------------------------------------------------------------------------
 * Attention (see kernels_rnn.h for the math of forward and backward)
 * node: inputs q, k, val, v; saved [0] q, [1] k, [2] val, [3] a, [4] u or v ...
 * ------------------------------------------------------------------------------------- */

static dc_status attention_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    const int kind = (int)node->iarg[0];
    const int64_t B = node->iarg[1], S = node->iarg[2], E = node->iarg[3], Ev = node->iarg[4];
    dc_tensor *gc = dc_contiguous(g);
    if (!gc) return dc_last_status();
    dc_tensor *out[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        dc_tensor *in = node->inputs[i];
        if (dc_node_wants(node, i) && !(out[i] = dc__new(DC_F32, in->ndim, in->shape, DC_CPU))) return dc_last_status();
    }
    const bool shared = node->iarg[7] != 0; /* keys are the values: one gradient, the sum */
    const float *v = node->iarg[5] >= 0 ? dc_data_f32(node->saved[node->iarg[5]]) : NULL;
    const float *u = node->iarg[6] >= 0 ? dc_data_f32(node->saved[node->iarg[6]]) : NULL;
    dc_status st = dc_backend_of(g)->rnn->attention_backward(
        kind, B, S, E, Ev, dc_data_f32(node->saved[0]), dc_data_f32(node->saved[1]), dc_data_f32(node->saved[2]), v,
        dc_data_f32(node->saved[3]), u, dc_data_f32(gc), out[0] ? dc_data_f32(out[0]) : NULL,
        out[1] ? dc_data_f32(out[1]) : NULL, shared ? (out[1] ? dc_data_f32(out[1]) : NULL) : out[2] ? dc_data_f32(out[2]) : NULL,
        out[3] ? dc_data_f32(out[3]) : NULL);
    if (st) return st;
    for (int i = 0; i < 4; i++) gi[i] = out[i];
    return DC_OK;
}

static dc_tensor *attention_impl(const char *op, int kind, dc_tensor *q, dc_tensor *k, dc_tensor *val, dc_tensor *v,
                                 const dc_tensor *lengths, dc_tensor **weights)
{
    if (weights) *weights = NULL;
    dc_tensor *req[3] = {q, k, val};
    if (!dc__check_inputs(op, 3, req)) return NULL;
    if (kind == DC_K_ATTN_ADDITIVE && !dc__check_inputs(op, 1, &v)) return NULL;
    if (dc__check_f32(op, q, "query") || dc__check_f32(op, k, "keys") || dc__check_f32(op, val, "values") ||
        (v && dc__check_f32(op, v, "v")))
        return NULL;
    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX], c[DC_SHAPE_STR_MAX];
    if (q->ndim != 2 || k->ndim != 3 || val->ndim != 3 || k->shape[0] != q->shape[0] ||
        k->shape[2] != q->shape[1] || val->shape[0] != q->shape[0] || val->shape[1] != k->shape[1] ||
        k->shape[1] <= 0) {
        dc_set_error(DC_ERR_SHAPE, "%s: query %s, keys %s, values %s must be [B, E], [B, S, E], [B, S, Ev] with S >= 1",
                     op, dc_shape_str(q, a, sizeof a), dc_shape_str(k, b, sizeof b), dc_shape_str(val, c, sizeof c));
        return NULL;
    }
    const int64_t B = q->shape[0], E = q->shape[1], S = k->shape[1], Ev = val->shape[2];
    if (v && dc_numel(v) != E) {
        dc_set_error(DC_ERR_SHAPE, "%s: v %s must have %lld elements (the query size)", op,
                     dc_shape_str(v, a, sizeof a), (long long)E);
        return NULL;
    }
    const dc_backend *be = dc_backend_of(q);
    if (!be->rnn) {
        dc_backend_missing(be, op);
        return NULL;
    }
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *result = NULL, *wres = NULL;
    dc_tensor *len = NULL;
    if (lengths_i64(op, lengths, B, S, &len)) goto done;
    /* keys == values (dot attention over the encoder outputs): record the tensor once, so
     * its gradient is one sum computed by the kernel rather than two autograd accumulations */
    const bool shared = k == val;
    dc_tensor *ins[4] = {q, k, shared ? NULL : val, kind == DC_K_ATTN_ADDITIVE ? v : NULL};
    bool grad = dc__any_needs_grad(4, ins);
    dc_tensor *qc = plain_contiguous(q), *kc = plain_contiguous(k), *vc = plain_contiguous(val);
    dc_tensor *vv = kind == DC_K_ATTN_ADDITIVE ? plain_contiguous(v) : NULL;
    dc_tensor *ctx = dc__new(DC_F32, 2, (int64_t[]){B, Ev}, DC_CPU);
    dc_tensor *att = dc__new(DC_F32, 2, (int64_t[]){B, S}, DC_CPU);
    dc_tensor *u = grad && kind == DC_K_ATTN_ADDITIVE ? dc__new(DC_F32, 3, (int64_t[]){B, S, E}, DC_CPU) : NULL;
    if (!qc || !kc || !vc || (kind == DC_K_ATTN_ADDITIVE && !vv) || !ctx || !att ||
        (grad && kind == DC_K_ATTN_ADDITIVE && !u))
        goto done;
    if (be->rnn->attention_forward(kind, B, S, E, Ev, dc_data_f32(qc), dc_data_f32(kc), dc_data_f32(vc),
                                   vv ? dc_data_f32(vv) : NULL, len ? dc_data(len) : NULL, dc_data_f32(ctx),
                                   dc_data_f32(att), u ? dc_data_f32(u) : NULL))
        goto done;
    dc_node *node = dc__record(ctx, op, attention_backward, 4, ins);
    if (node) {
        node->iarg[0] = kind, node->iarg[1] = B, node->iarg[2] = S, node->iarg[3] = E, node->iarg[4] = Ev;
        dc__save(node, qc);
        dc__save(node, kc);
        dc__save(node, vc);
        dc__save(node, att);
        node->iarg[5] = vv ? dc__save(node, vv) : -1;
        node->iarg[6] = u ? dc__save(node, u) : -1;
        node->iarg[7] = shared;
    }
    result = dc_tensor_retain(ctx);
    if (weights) wres = dc_tensor_retain(att);
done:
    dc_pool_pop(mark);
    if (result) dc__register(result);
    if (wres) *weights = dc__register(wres);
    return result;
}

dc_tensor *dc_dot_attention(dc_tensor *query, dc_tensor *keys, dc_tensor *values, const dc_tensor *lengths,
                            dc_tensor **weights)
{
    return attention_impl("dot_attention", DC_K_ATTN_DOT, query, keys, values, NULL, lengths, weights);
}

dc_tensor *dc_additive_attention(dc_tensor *query, dc_tensor *keys, dc_tensor *values, dc_tensor *v,
                                 const dc_tensor *lengths, dc_tensor **weights)
{
    return attention_impl("additive_attention", DC_K_ATTN_ADDITIVE, query, keys, values, v, lengths, weights);
}
