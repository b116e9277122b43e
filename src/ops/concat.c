/* ops/concat.c: cat, stack, split and chunk (deepc/ops.h, "misc").
 *
 * cat and stack copy each input into its slice of one new tensor (a strided copy per
 * input, any dtype); their backward hands every input a view of the output gradient, so no
 * gradient is copied. split and chunk return narrow views (dc_narrow), differentiable and
 * sharing storage with the input. */
#include "../core/internal.h"
#include "deepc/ops.h"

/* An autograd node holds at most DC_NODE_MAX_INPUTS inputs: a cat/stack of more tensors
 * that needs grad is built as a cat of cats/stacks of at most that many. */
#define GROUP DC_NODE_MAX_INPUTS

/* copies src into dst's storage at the given geometry (dst's dtype) */
static dc_status copy_into(dc_tensor *dst, const int64_t *stride, int64_t offset, const dc_tensor *src)
{
    const dc_backend *be = dc_backend_of(dst);
    void *p = (char *)dst->storage->data + (size_t)offset * dc_dtype_size(dst->dtype);
    return be->copy_strided(p, dst->dtype, stride, dc_data(src), src->dtype, src->stride,
                            src->ndim, src->shape);
}

/* Checks the list: non-NULL, one device, one dtype. */
static bool check_list(const char *op, int n, dc_tensor *const *ts)
{
    if (n < 1 || !ts) {
        dc_set_error(DC_ERR_ARG, "%s: expected a non-empty list of tensors, got %d", op, n);
        return false;
    }
    if (!dc__check_inputs(op, n, ts)) return false;
    for (int i = 1; i < n; i++)
        if (ts[i]->dtype != ts[0]->dtype) {
            dc_set_error(DC_ERR_DTYPE, "%s: tensor %d is %s but tensor 0 is %s", op, i,
                         dc_dtype_name(ts[i]->dtype), dc_dtype_name(ts[0]->dtype));
            return false;
        }
    return true;
}

/* Builds op over groups of GROUP inputs, then joins the partial results with cat along dim
 * (for stack the partials already have the new dim, so cat joins them along it). */
static dc_tensor *grouped(dc_tensor *(*fn)(int, dc_tensor *const *, int), int n,
                          dc_tensor *const *ts, int dim)
{
    int nparts = (n + GROUP - 1) / GROUP;
    dc_tensor **parts = dc__calloc((size_t)nparts, sizeof *parts);
    if (!parts) return NULL;
    dc_tensor *out = NULL;
    int made = 0;
    for (; made < nparts; made++) {
        parts[made] = fn(DC_MIN(GROUP, n - made * GROUP), ts + made * GROUP, dim);
        if (!parts[made]) break;
    }
    if (made == nparts) out = dc_cat(nparts, parts, dim);
    for (int i = 0; i < made; i++) dc__discard(parts[i]);
    free(parts);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * cat
 * ------------------------------------------------------------------------------------- */

/* A 1-d empty tensor is skipped by cat whatever the other shapes (PyTorch's legacy rule, so
 * that `cat([empty, x])` grows an accumulator). */
static bool skipped(const dc_tensor *t, int ndim) { return t->ndim == 1 && t->shape[0] == 0 && ndim != 1; }

/* iarg[0] = dim, iarg[1 + i] = offset of input i along dim (-1: skipped).
 * out = [x_0; x_1; ...] along dim  =>  grad of x_i is the slice of dy at its offset. */
static dc_status cat_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    int dim = (int)node->iarg[0];
    for (int i = 0; i < node->n_inputs; i++) {
        if (!dc_node_wants(node, i)) continue;
        dc_tensor *in = node->inputs[i];
        if (node->iarg[1 + i] < 0) {
            grad_in[i] = dc__new(DC_F32, in->ndim, in->shape, in->storage->device);
        } else {
            grad_in[i] = dc__view(grad_out, in->ndim, in->shape, grad_out->stride,
                                  grad_out->offset + node->iarg[1 + i] * grad_out->stride[dim]);
        }
        if (!grad_in[i]) return dc_last_status();
    }
    return DC_OK;
}

dc_tensor *dc_cat(int n, dc_tensor *const *ts, int dim)
{
    static const char *op = "cat";
    if (!check_list(op, n, ts)) return NULL;
    if (n > GROUP && dc__any_needs_grad(n, ts)) return grouped(dc_cat, n, ts, dim);
    /* the reference tensor: the first one not skipped */
    int ref = 0;
    for (int i = 0; i < n; i++)
        if (!(ts[i]->ndim == 1 && ts[i]->shape[0] == 0)) {
            ref = i;
            break;
        }
    const dc_tensor *r = ts[ref];
    if (r->ndim == 0) {
        dc_set_error(DC_ERR_SHAPE, "cat: zero-dimensional tensor %d cannot be concatenated", ref);
        return NULL;
    }
    int d;
    if (dc__wrap_dim(op, dim, r->ndim, &d)) return NULL;
    int64_t shape[DC_MAX_DIMS];
    for (int k = 0; k < r->ndim; k++) shape[k] = r->shape[k];
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const dc_tensor *t = ts[i];
        if (skipped(t, r->ndim)) continue;
        bool ok = t->ndim == r->ndim;
        for (int k = 0; ok && k < r->ndim; k++) ok = k == d || t->shape[k] == r->shape[k];
        if (!ok) {
            char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
            dc_set_error(DC_ERR_SHAPE, "cat: tensor %d has shape %s, tensor %d has %s; they must match except in dim %d",
                         i, dc_shape_str(t, a, sizeof a), ref, dc_shape_str(r, b, sizeof b), d);
            return NULL;
        }
        shape[d] += t->shape[d];
    }
    dc_tensor *out = dc__new(r->dtype, r->ndim, shape, r->storage->device);
    if (!out) return NULL;
    int64_t off = 0, offsets[GROUP];
    for (int i = 0; i < n; i++) {
        const dc_tensor *t = ts[i];
        if (i < GROUP) offsets[i] = -1;
        if (skipped(t, r->ndim)) continue;
        if (i < GROUP) offsets[i] = off;
        if (dc_numel(t) && copy_into(out, out->stride, off * out->stride[d], t)) {
            dc__discard(out);
            return NULL;
        }
        off += t->shape[d];
    }
    dc_node *node = dc__record(out, op, cat_backward, n, ts);
    if (node) {
        node->iarg[0] = d;
        for (int i = 0; i < n; i++) node->iarg[1 + i] = offsets[i];
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * stack
 * ------------------------------------------------------------------------------------- */

/* iarg[0] = dim. out[..., i, ...] = x_i  =>  grad of x_i is dy with index i taken at dim. */
static dc_status stack_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    int dim = (int)node->iarg[0];
    int64_t stride[DC_MAX_DIMS];
    for (int k = 0, j = 0; k < grad_out->ndim; k++)
        if (k != dim) stride[j++] = grad_out->stride[k];
    for (int i = 0; i < node->n_inputs; i++) {
        if (!dc_node_wants(node, i)) continue;
        dc_tensor *in = node->inputs[i];
        grad_in[i] = dc__view(grad_out, in->ndim, in->shape, stride,
                              grad_out->offset + (int64_t)i * grad_out->stride[dim]);
        if (!grad_in[i]) return dc_last_status();
    }
    return DC_OK;
}

dc_tensor *dc_stack(int n, dc_tensor *const *ts, int dim)
{
    static const char *op = "stack";
    if (!check_list(op, n, ts)) return NULL;
    const dc_tensor *r = ts[0];
    if (r->ndim + 1 > DC_MAX_DIMS) {
        dc_set_error(DC_ERR_SHAPE, "stack: %d-d tensors leave no room for a new dim", r->ndim);
        return NULL;
    }
    int d;
    if (dc__wrap_dim(op, dim, r->ndim + 1, &d)) return NULL;
    for (int i = 1; i < n; i++)
        if (!dc_same_shape(ts[i], r)) {
            char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
            dc_set_error(DC_ERR_SHAPE, "stack: expects each tensor to be equal size, but got %s at entry 0 and %s at entry %d",
                         dc_shape_str(r, a, sizeof a), dc_shape_str(ts[i], b, sizeof b), i);
            return NULL;
        }
    if (n > GROUP && dc__any_needs_grad(n, ts)) return grouped(dc_stack, n, ts, d);
    int64_t shape[DC_MAX_DIMS];
    for (int k = 0, j = 0; k <= r->ndim; k++) shape[k] = k == d ? n : r->shape[j++];
    dc_tensor *out = dc__new(r->dtype, r->ndim + 1, shape, r->storage->device);
    if (!out) return NULL;
    int64_t stride[DC_MAX_DIMS];
    for (int k = 0, j = 0; k <= r->ndim; k++)
        if (k != d) stride[j++] = out->stride[k];
    for (int i = 0; i < n; i++)
        if (dc_numel(ts[i]) && copy_into(out, stride, (int64_t)i * out->stride[d], ts[i])) {
            dc__discard(out);
            return NULL;
        }
    dc_node *node = dc__record(out, op, stack_backward, n, ts);
    if (node) node->iarg[0] = d;
    return out;
}

/* ---------------------------------------------------------------------------------------
 * split / chunk
 * ------------------------------------------------------------------------------------- */

/* Narrow views of pieces with the given sizes; writes up to max_out, returns n_pieces. */
static int narrow_pieces(const char *op, dc_tensor *t, int d, int64_t size, int64_t n_pieces,
                         dc_tensor **out, int max_out)
{
    if (n_pieces > INT32_MAX) {
        dc_set_error(DC_ERR_ARG, "%s: %lld pieces is too many", op, (long long)n_pieces);
        return -1;
    }
    if (max_out > 0 && !out) {
        dc_set_error(DC_ERR_ARG, "%s: out is NULL but max_out is %d", op, max_out);
        return -1;
    }
    int64_t len = t->shape[d];
    for (int64_t i = 0; i < n_pieces && i < max_out; i++) {
        int64_t start = DC_MIN(i * size, len), piece = DC_MIN(size, len - start);
        out[i] = dc_narrow(t, d, start, piece);
        if (!out[i]) {
            for (int64_t j = 0; j < i; j++) {
                dc__discard(out[j]);
                out[j] = NULL;
            }
            return -1;
        }
    }
    return (int)n_pieces;
}

int dc_split(dc_tensor *t, int64_t size, int dim, dc_tensor **out, int max_out)
{
    static const char *op = "split";
    if (!dc__check_inputs(op, 1, &t)) return -1;
    if (t->ndim == 0) {
        dc_set_error(DC_ERR_SHAPE, "split: a 0-d tensor cannot be split");
        return -1;
    }
    int d;
    if (dc__wrap_dim(op, dim, t->ndim, &d)) return -1;
    int64_t len = t->shape[d];
    if (size < 0 || (size == 0 && len > 0)) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_ARG, "split: split size %lld for dim %d of %s must be positive",
                     (long long)size, d, dc_shape_str(t, s, sizeof s));
        return -1;
    }
    int64_t n_pieces = len == 0 ? 1 : (len + size - 1) / size;
    return narrow_pieces(op, t, d, size, n_pieces, out, max_out);
}

int dc_chunk(dc_tensor *t, int chunks, int dim, dc_tensor **out, int max_out)
{
    static const char *op = "chunk";
    if (!dc__check_inputs(op, 1, &t)) return -1;
    if (t->ndim == 0) {
        dc_set_error(DC_ERR_SHAPE, "chunk: a 0-d tensor cannot be chunked");
        return -1;
    }
    if (chunks < 1) {
        dc_set_error(DC_ERR_ARG, "chunk: number of chunks must be positive, got %d", chunks);
        return -1;
    }
    int d;
    if (dc__wrap_dim(op, dim, t->ndim, &d)) return -1;
    int64_t len = t->shape[d];
    /* as torch.chunk: pieces of ceil(len / chunks), so there may be fewer than `chunks`;
     * an empty dim gives `chunks` empty pieces */
    if (len == 0) return narrow_pieces(op, t, d, 0, chunks, out, max_out);
    int64_t size = (len + chunks - 1) / chunks;
    return narrow_pieces(op, t, d, size, (len + size - 1) / size, out, max_out);
}
