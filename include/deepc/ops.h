/* deepc/ops.h: differentiable tensor ops. Each op has a forward and (where PyTorch has one) a
 * backward recorded by autograd; all compute is F32. Semantics follow the PyTorch function
 * of the same name (torch.X or torch.nn.functional.X) unless noted.
 *
 * All ops: NULL input -> NULL result with the earlier error kept; a bad argument -> NULL
 * with a one-line error naming the op and the shapes involved. Results follow the pool
 * rules of deepc/core.h. `dim` arguments may be negative (counted from the end).
 */
#ifndef DEEPC_OPS_H
#define DEEPC_OPS_H

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- views (no copy; share storage; differentiable) -------------------------------------- */
/* -1 in shape is inferred. reshape copies only when a view is impossible. */
dc_tensor *dc_view(dc_tensor *t, int ndim, const int64_t *shape);
dc_tensor *dc_reshape(dc_tensor *t, int ndim, const int64_t *shape);
dc_tensor *dc_permute(dc_tensor *t, const int *dims);
dc_tensor *dc_transpose(dc_tensor *t, int dim0, int dim1);
dc_tensor *dc_narrow(dc_tensor *t, int dim, int64_t start, int64_t length);
/* Python-style slice t[start:end:step] along dim (negative start/end count from the end). */
dc_tensor *dc_slice(dc_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/* t[index] along dim: removes the dim. */
dc_tensor *dc_select(dc_tensor *t, int dim, int64_t index);
/* Broadcast to shape (size-1 dims and new leading dims); -1 keeps a size. */
dc_tensor *dc_expand(dc_tensor *t, int ndim, const int64_t *shape);
dc_tensor *dc_squeeze(dc_tensor *t, int dim);
dc_tensor *dc_unsqueeze(dc_tensor *t, int dim);
dc_tensor *dc_flatten(dc_tensor *t, int start_dim, int end_dim);

/* ---- elementwise with broadcasting ---------------------------------------------------- */
dc_tensor *dc_add(dc_tensor *a, dc_tensor *b);
/* a += b (torch's add_, e.g. ResNet's out += identity): b broadcast into a's buffer, the
 * result a tensor over it with dc_add's gradient. a's values are overwritten. As dc_relu_,
 * it falls back to dc_add when another reader of a exists or b would broadcast a. */
dc_tensor *dc_add_(dc_tensor *a, dc_tensor *b);
dc_tensor *dc_sub(dc_tensor *a, dc_tensor *b);
dc_tensor *dc_mul(dc_tensor *a, dc_tensor *b);
dc_tensor *dc_div(dc_tensor *a, dc_tensor *b);
dc_tensor *dc_add_scalar(dc_tensor *a, float s);
dc_tensor *dc_mul_scalar(dc_tensor *a, float s);
/* a + alpha * b */
dc_tensor *dc_add_scaled(dc_tensor *a, dc_tensor *b, float alpha);
dc_tensor *dc_neg(dc_tensor *a);
dc_tensor *dc_exp(dc_tensor *a);
dc_tensor *dc_log(dc_tensor *a);
dc_tensor *dc_sqrt(dc_tensor *a);
dc_tensor *dc_rsqrt(dc_tensor *a);
dc_tensor *dc_abs(dc_tensor *a);
dc_tensor *dc_sin(dc_tensor *a);
dc_tensor *dc_cos(dc_tensor *a);
dc_tensor *dc_pow_scalar(dc_tensor *a, float exponent);
dc_tensor *dc_pow(dc_tensor *a, dc_tensor *exponent);
/* clamp to [lo, hi]; pass -INFINITY / INFINITY for one-sided */
dc_tensor *dc_clamp(dc_tensor *a, float lo, float hi);
dc_tensor *dc_maximum(dc_tensor *a, dc_tensor *b);
dc_tensor *dc_minimum(dc_tensor *a, dc_tensor *b);

/* ---- activations ---------------------------------------------------------------------- */
dc_tensor *dc_relu(dc_tensor *x);
/* torch.relu_ / nn.ReLU(inplace=True): writes relu(x) into x's buffer and returns a tensor
 * over it carrying the autograd record, so conv -> bn -> relu keeps two activations, not
 * three. x's values are overwritten. Falls back to out of place (same result) when another
 * reader of x exists: a view of x, a graph node holding x, or x's producer saving it. A
 * leaf that requires grad is an error, as in PyTorch. */
dc_tensor *dc_relu_(dc_tensor *x);
dc_tensor *dc_leaky_relu(dc_tensor *x, float negative_slope);
typedef enum dc_gelu_approx { DC_GELU_NONE = 0, DC_GELU_TANH = 1 } dc_gelu_approx;
dc_tensor *dc_gelu(dc_tensor *x, dc_gelu_approx approximate);
dc_tensor *dc_quick_gelu(dc_tensor *x); /* x * sigmoid(1.702 x), CLIP */
dc_tensor *dc_silu(dc_tensor *x);
dc_tensor *dc_tanh(dc_tensor *x);
dc_tensor *dc_sigmoid(dc_tensor *x);

/* ---- comparisons and selection (no grad for masks) ------------------------------------- */
/* BOOL results */
dc_tensor *dc_eq(dc_tensor *a, dc_tensor *b);
dc_tensor *dc_gt_scalar(dc_tensor *a, float s);
dc_tensor *dc_lt_scalar(dc_tensor *a, float s);
/* cond ? a : b with broadcasting; cond is BOOL (or U8). Differentiable in a and b. */
dc_tensor *dc_where(dc_tensor *cond, dc_tensor *a, dc_tensor *b);
/* copy of x with value where mask (BOOL, broadcastable to x) is true */
dc_tensor *dc_masked_fill(dc_tensor *x, dc_tensor *mask, float value);

/* ---- reductions ----------------------------------------------------------------------- */
/* Over the listed dims (n_dims == 0 means all dims). */
dc_tensor *dc_sum(dc_tensor *x, int n_dims, const int *dims, bool keepdim);
dc_tensor *dc_mean(dc_tensor *x, int n_dims, const int *dims, bool keepdim);
dc_tensor *dc_sum_all(dc_tensor *x);  /* 0-dim */
dc_tensor *dc_mean_all(dc_tensor *x); /* 0-dim */
/* max over one dim; if indices is not NULL it receives the I64 argmax (borrowed like any result) */
dc_tensor *dc_max(dc_tensor *x, int dim, bool keepdim, dc_tensor **indices);
dc_tensor *dc_min(dc_tensor *x, int dim, bool keepdim, dc_tensor **indices);
dc_tensor *dc_max_all(dc_tensor *x);
dc_tensor *dc_argmax(dc_tensor *x, int dim, bool keepdim); /* I64, no grad */
/* variance (unbiased or not) over dims */
dc_tensor *dc_var(dc_tensor *x, int n_dims, const int *dims, bool unbiased, bool keepdim);
dc_tensor *dc_softmax(dc_tensor *x, int dim);
dc_tensor *dc_log_softmax(dc_tensor *x, int dim);
dc_tensor *dc_logsumexp(dc_tensor *x, int dim, bool keepdim);

/* ---- linear algebra (OpenBLAS sgemm) ----------------------------------------------------- */
/* torch.matmul semantics: 1-d/2-d/batched with broadcasting of batch dims. */
dc_tensor *dc_matmul(dc_tensor *a, dc_tensor *b);
/* [B, n, k] x [B, k, m] */
dc_tensor *dc_bmm(dc_tensor *a, dc_tensor *b);
/* x [..., in] , weight [out, in], bias [out] or NULL -> [..., out] */
dc_tensor *dc_linear(dc_tensor *x, dc_tensor *weight, dc_tensor *bias);

/* ---- convolution and pooling (NCHW) ------------------------------------------------------ */
typedef struct dc_conv2d_args {
    int stride[2];   /* {h, w}; 0 means 1 */
    int padding[2];
    int dilation[2]; /* 0 means 1 */
    int groups;      /* 0 means 1 */
} dc_conv2d_args;
/* x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O] or NULL */
dc_tensor *dc_conv2d(dc_tensor *x, dc_tensor *weight, dc_tensor *bias, dc_conv2d_args args);
typedef struct dc_conv_transpose2d_args {
    int stride[2];
    int padding[2];
    int output_padding[2];
    int dilation[2];
    int groups;
} dc_conv_transpose2d_args;
/* x [N, C, H, W], weight [C, O/groups, kh, kw], bias [O] or NULL */
dc_tensor *dc_conv_transpose2d(dc_tensor *x, dc_tensor *weight, dc_tensor *bias,
                               dc_conv_transpose2d_args args);
typedef struct dc_pool2d_args {
    int kernel[2];
    int stride[2];   /* 0 means = kernel */
    int padding[2];
    int dilation[2]; /* max pool only; 0 means 1 */
    bool ceil_mode;
    bool count_include_pad; /* avg pool; PyTorch's default is true */
} dc_pool2d_args;
dc_tensor *dc_max_pool2d(dc_tensor *x, dc_pool2d_args args);
dc_tensor *dc_avg_pool2d(dc_tensor *x, dc_pool2d_args args);
dc_tensor *dc_adaptive_avg_pool2d(dc_tensor *x, int out_h, int out_w);
/* nearest-neighbour upsampling by an integer factor (diffusers' Upsample2D) */
dc_tensor *dc_upsample_nearest2d(dc_tensor *x, int scale_h, int scale_w);
/* zero (or constant) padding of the last two dims: {left, right, top, bottom} */
dc_tensor *dc_pad2d(dc_tensor *x, const int pad[4], float value);

/* ---- normalisation ------------------------------------------------------------------------ */
/* x [N, C, ...]. training: batch statistics, and running stats (if given) are updated in
 * place with momentum (unbiased variance, as PyTorch). eval: running stats are used; with
 * running stats NULL the batch's own are used (BatchNorm with track_running_stats=False).
 * running_mean/var must be contiguous [C] (or both NULL); weight/bias [C] or NULL. */
dc_tensor *dc_batch_norm(dc_tensor *x, dc_tensor *running_mean, dc_tensor *running_var,
                         dc_tensor *weight, dc_tensor *bias, bool training, float momentum,
                         float eps);
/* normalises over the last n_norm dims; weight/bias of that shape or NULL */
dc_tensor *dc_layer_norm(dc_tensor *x, int n_norm, dc_tensor *weight, dc_tensor *bias, float eps);
dc_tensor *dc_group_norm(dc_tensor *x, int num_groups, dc_tensor *weight, dc_tensor *bias, float eps);
/* x / sqrt(mean(x^2, last dim) + eps) * weight (weight may be NULL) */
dc_tensor *dc_rms_norm(dc_tensor *x, dc_tensor *weight, float eps);

/* ---- losses ---------------------------------------------------------------------------- */
typedef enum dc_reduction { DC_REDUCE_MEAN = 0, DC_REDUCE_SUM, DC_REDUCE_NONE } dc_reduction;
/* logits [N, C] (or [N, C, d...], or [C] with a 0-d target), target I64 (or I32) class
 * indices [N] (or [N, d...]). label_smoothing and ignore_index combine as in PyTorch:
 * ignored positions contribute nothing and a mean divides by the number not ignored (all
 * ignored: NaN). A target outside [0, C) that is not ignore_index is an error. */
dc_tensor *dc_cross_entropy(dc_tensor *logits, dc_tensor *target, dc_reduction reduction,
                            int64_t ignore_index, float label_smoothing);
dc_tensor *dc_nll_loss(dc_tensor *log_probs, dc_tensor *target, dc_reduction reduction,
                       int64_t ignore_index);
/* input and target broadcast together (PyTorch warns but does the same) */
dc_tensor *dc_mse_loss(dc_tensor *input, dc_tensor *target, dc_reduction reduction);
#define DC_IGNORE_INDEX_DEFAULT (-100)

/* ---- misc -------------------------------------------------------------------------------- */
/* training: zero with probability p and scale the rest by 1/(1-p); eval (or p = 0): x
 * itself (a new reference). The mask comes from one 64-bit draw of rng (NULL: the default
 * generator), so it does not depend on the thread count; it is not torch's mask. */
dc_tensor *dc_dropout(dc_tensor *x, float p, bool training, dc_rng *rng);
/* weight [num, dim], indices I64/I32 any shape -> [..., dim] */
dc_tensor *dc_embedding(dc_tensor *weight, dc_tensor *indices);
/* any dtype (all the same); a 1-d empty tensor in the list is skipped, as in PyTorch */
dc_tensor *dc_cat(int n, dc_tensor *const *ts, int dim);
dc_tensor *dc_stack(int n, dc_tensor *const *ts, int dim);
/* split into pieces of `size` along dim (last may be smaller); writes up to max_out views,
 * returns the number of pieces (or -1 on error) */
int dc_split(dc_tensor *t, int64_t size, int dim, dc_tensor **out, int max_out);
/* torch.chunk: pieces of ceil(len / chunks), so possibly fewer than `chunks` */
int dc_chunk(dc_tensor *t, int chunks, int dim, dc_tensor **out, int max_out);
/* q [..., L, E], k [..., S, E], v [..., S, Ev]; mask NULL, BOOL (true = keep, as PyTorch)
 * or F32 (added to scores, and differentiable), broadcastable to [..., L, S]; scale <= 0
 * means 1/sqrt(E). is_causal keeps column j <= row i (top-left aligned, as PyTorch) and may
 * be combined with a mask. Leading dims of q, k, v broadcast. A row with nothing to attend
 * to gives zeros (PyTorch 2.5's safe softmax), not NaN. */
dc_tensor *dc_scaled_dot_product_attention(dc_tensor *q, dc_tensor *k, dc_tensor *v,
                                           dc_tensor *mask, bool is_causal, float scale);
/* gathers along dim with I64 index of the same rank (torch.gather) */
dc_tensor *dc_gather(dc_tensor *x, int dim, dc_tensor *index);

/* ---- in-place, not recorded by autograd (optimizers, accumulation) ----------------------- */
/* dst += alpha * src (src broadcastable to dst) */
dc_status dc_add_inplace_(dc_tensor *dst, const dc_tensor *src);
dc_status dc_axpy_(dc_tensor *dst, float alpha, const dc_tensor *src);
dc_status dc_scale_(dc_tensor *dst, float alpha);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_OPS_H */
