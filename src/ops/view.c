/* view.c: ops that change how a storage is looked at, without copying: view/reshape,
 * permute/transpose, narrow/slice/select, expand, squeeze/unsqueeze, flatten, and their
 * backwards. reshape copies (through dc_contiguous) only when no view can express it. */
#include "../core/internal.h"

#include "deepc/ops.h"

/* ---------------------------------------------------------------------------------------
 * Backwards
 * ------------------------------------------------------------------------------------- */

/* y = view(x): dL/dx = dL/dy viewed back to x's shape */
static dc_status reshape_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_tensor *x = node->inputs[0];
    gi[0] = dc_reshape(g, x->ndim, x->shape);
    return gi[0] ? DC_OK : dc_last_status();
}

/* y = permute(x, p): y.dim[i] = x.dim[p[i]], so dL/dx = permute(dL/dy, p^-1) */
static dc_status permute_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    int inv[DC_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++) inv[node->iarg[i]] = i;
    gi[0] = dc_permute(g, inv);
    return gi[0] ? DC_OK : dc_last_status();
}

/* y = x[.., start:end:step, ..] along dim iarg[0]: dL/dx is zero except the selected
 * positions, which get dL/dy. iarg = {dim, start, step, squeeze(0/1)} */
static dc_status slice_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_tensor *x = node->inputs[0];
    dc_tensor *gx = dc__new_zeros(DC_F32, x->ndim, x->shape, x->storage->device);
    if (!gx) return dc_last_status();
    int dim = (int)node->iarg[0];
    int64_t start = node->iarg[1], step = node->iarg[2];
    int64_t shape[DC_MAX_DIMS], stride[DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i == dim && node->iarg[3]) continue; /* select removed this dim */
        shape[nd] = i == dim ? (node->iarg[3] ? 1 : g->shape[nd]) : x->shape[i];
        stride[nd] = i == dim ? gx->stride[i] * step : gx->stride[i];
        nd++;
    }
    dc_tensor *region = dc__view(gx, nd, shape, stride, start * gx->stride[dim]);
    if (!region) return dc_last_status();
    dc_status st = dc_backend_of(gx)->copy_strided(dc_data(region), DC_F32, region->stride, dc_data(g), g->dtype,
                                                   g->stride, g->ndim, g->shape);
    gi[0] = gx;
    return st;
}

/* y = expand(x): each x element feeds many y elements, so dL/dx sums them */
static dc_status expand_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_tensor *x = node->inputs[0];
    gi[0] = dc__reduce_to_shape(g, x->ndim, x->shape);
    return gi[0] ? DC_OK : dc_last_status();
}

/* ---------------------------------------------------------------------------------------
 * view / reshape
 * ------------------------------------------------------------------------------------- */

static dc_status infer_shape(const char *op, const dc_tensor *t, int ndim, const int64_t *shape, int64_t *out)
{
    if (ndim < 0 || ndim > DC_MAX_DIMS)
        return dc_set_error(DC_ERR_ARG, "%s: %d dims (at most %d)", op, ndim, DC_MAX_DIMS);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) return dc_set_error(DC_ERR_ARG, "%s: only one dimension can be inferred (-1)", op);
            infer = i;
        } else if (shape[i] < 0) {
            return dc_set_error(DC_ERR_ARG, "%s: invalid size %lld at dim %d", op, (long long)shape[i], i);
        } else {
            known *= shape[i];
        }
        out[i] = shape[i];
    }
    int64_t n = dc_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known) goto mismatch;
        out[infer] = n / known;
    } else if (known != n) {
        goto mismatch;
    }
    return DC_OK;
mismatch: {
    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
    return dc_set_error(DC_ERR_SHAPE, "%s: shape %s is invalid for input of shape %s (%lld elements)", op,
                        dc__shape_fmt(ndim, shape, a, sizeof a), dc_shape_str(t, b, sizeof b), (long long)n);
}
}

/* PyTorch's computeStride: strides for viewing t as `shape` without a copy, or false. */
static bool view_strides(const dc_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    if (dc_numel(t) == 0 || dc_is_contiguous(t)) {
        dc__contiguous_strides(ndim, shape, stride);
        return true;
    }
    int64_t view_d = ndim - 1;
    int64_t chunk_base_stride = t->ndim ? t->stride[t->ndim - 1] : 1;
    int64_t tensor_numel = 1, view_numel = 1;
    for (int64_t td = t->ndim - 1; td >= 0; td--) {
        tensor_numel *= t->shape[td];
        if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                stride[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (td > 0) {
                chunk_base_stride = t->stride[td - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

dc_tensor *dc_view(dc_tensor *t, int ndim, const int64_t *shape)
{
    if (!dc__check_inputs("view", 1, &t)) return NULL;
    int64_t sh[DC_MAX_DIMS], st[DC_MAX_DIMS];
    if (infer_shape("view", t, ndim, shape, sh)) return NULL;
    if (!view_strides(t, ndim, sh, st)) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "view: shape %s is not compatible with the strides of input %s; use reshape",
                     dc__shape_fmt(ndim, sh, a, sizeof a), dc_shape_str(t, b, sizeof b));
        return NULL;
    }
    dc_tensor *out = dc__view(t, ndim, sh, st, t->offset);
    dc__record(out, "view", reshape_backward, 1, &t);
    return out;
}

dc_tensor *dc_reshape(dc_tensor *t, int ndim, const int64_t *shape)
{
    if (!dc__check_inputs("reshape", 1, &t)) return NULL;
    int64_t sh[DC_MAX_DIMS], st[DC_MAX_DIMS];
    if (infer_shape("reshape", t, ndim, shape, sh)) return NULL;
    if (view_strides(t, ndim, sh, st)) {
        dc_tensor *out = dc__view(t, ndim, sh, st, t->offset);
        dc__record(out, "reshape", reshape_backward, 1, &t);
        return out;
    }
    dc_tensor *c = dc_contiguous(t);
    if (!c) return NULL;
    dc_tensor *out = dc_view(c, ndim, sh);
    if (!dc_pool_active()) dc_tensor_release(c); /* out keeps what it needs */
    return out;
}

dc_tensor *dc_flatten(dc_tensor *t, int start_dim, int end_dim)
{
    if (!dc__check_inputs("flatten", 1, &t)) return NULL;
    if (t->ndim == 0) return dc_reshape(t, 1, (int64_t[]){1});
    int s, e;
    if (dc__wrap_dim("flatten", start_dim, t->ndim, &s) || dc__wrap_dim("flatten", end_dim, t->ndim, &e)) return NULL;
    if (s > e) {
        dc_set_error(DC_ERR_ARG, "flatten: start_dim %d after end_dim %d", start_dim, end_dim);
        return NULL;
    }
    int64_t sh[DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < s; i++) sh[nd++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= t->shape[i];
    sh[nd++] = m;
    for (int i = e + 1; i < t->ndim; i++) sh[nd++] = t->shape[i];
    return dc_reshape(t, nd, sh);
}

dc_tensor *dc_squeeze(dc_tensor *t, int dim)
{
    if (!dc__check_inputs("squeeze", 1, &t)) return NULL;
    if (t->ndim == 0) return dc_reshape(t, 0, NULL);
    int d;
    if (dc__wrap_dim("squeeze", dim, t->ndim, &d)) return NULL;
    if (t->shape[d] != 1) return dc_reshape(t, t->ndim, t->shape); /* PyTorch: no-op */
    int64_t sh[DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < t->ndim; i++)
        if (i != d) sh[nd++] = t->shape[i];
    return dc_reshape(t, nd, sh);
}

dc_tensor *dc_unsqueeze(dc_tensor *t, int dim)
{
    if (!dc__check_inputs("unsqueeze", 1, &t)) return NULL;
    if (t->ndim >= DC_MAX_DIMS) {
        dc_set_error(DC_ERR_ARG, "unsqueeze: tensor already has %d dims", DC_MAX_DIMS);
        return NULL;
    }
    int d;
    if (dc__wrap_dim("unsqueeze", dim, t->ndim + 1, &d)) return NULL;
    int64_t sh[DC_MAX_DIMS], st[DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i <= t->ndim; i++) {
        if (i == d) {
            sh[nd] = 1;
            st[nd] = i < t->ndim ? t->stride[i] * t->shape[i] : 1;
            nd++;
        }
        if (i < t->ndim) {
            sh[nd] = t->shape[i];
            st[nd] = t->stride[i];
            nd++;
        }
    }
    dc_tensor *out = dc__view(t, nd, sh, st, t->offset);
    dc__record(out, "unsqueeze", reshape_backward, 1, &t);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * permute / transpose
 * ------------------------------------------------------------------------------------- */

dc_tensor *dc_permute(dc_tensor *t, const int *dims)
{
    if (!dc__check_inputs("permute", 1, &t)) return NULL;
    if (!dims && t->ndim) {
        dc_set_error(DC_ERR_ARG, "permute: dims is NULL");
        return NULL;
    }
    int64_t sh[DC_MAX_DIMS], st[DC_MAX_DIMS];
    bool seen[DC_MAX_DIMS] = {0};
    int p[DC_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        if (dc__wrap_dim("permute", dims[i], t->ndim, &p[i])) return NULL;
        if (seen[p[i]]) {
            dc_set_error(DC_ERR_ARG, "permute: dim %d repeated", p[i]);
            return NULL;
        }
        seen[p[i]] = true;
        sh[i] = t->shape[p[i]];
        st[i] = t->stride[p[i]];
    }
    dc_tensor *out = dc__view(t, t->ndim, sh, st, t->offset);
    dc_node *node = dc__record(out, "permute", permute_backward, 1, &t);
    if (node)
        for (int i = 0; i < t->ndim; i++) node->iarg[i] = p[i];
    return out;
}

dc_tensor *dc_transpose(dc_tensor *t, int dim0, int dim1)
{
    if (!dc__check_inputs("transpose", 1, &t)) return NULL;
    int a, b;
    if (t->ndim == 0) return dc_permute(t, NULL);
    if (dc__wrap_dim("transpose", dim0, t->ndim, &a) || dc__wrap_dim("transpose", dim1, t->ndim, &b)) return NULL;
    int p[DC_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) p[i] = i;
    p[a] = b;
    p[b] = a;
    return dc_permute(t, p);
}

/* ---------------------------------------------------------------------------------------
 * narrow / slice / select
 * ------------------------------------------------------------------------------------- */

static dc_tensor *slice_impl(const char *op, dc_tensor *t, int dim, int64_t start, int64_t len,
                             int64_t step, bool squeeze)
{
    int64_t sh[DC_MAX_DIMS], st[DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == dim) {
            if (squeeze) continue;
            sh[nd] = len;
            st[nd] = t->stride[i] * step;
        } else {
            sh[nd] = t->shape[i];
            st[nd] = t->stride[i];
        }
        nd++;
    }
    dc_tensor *out = dc__view(t, nd, sh, st, t->offset + start * t->stride[dim]);
    dc_node *node = dc__record(out, op, slice_backward, 1, &t);
    if (node) {
        node->iarg[0] = dim;
        node->iarg[1] = start;
        node->iarg[2] = step;
        node->iarg[3] = squeeze;
    }
    return out;
}

dc_tensor *dc_narrow(dc_tensor *t, int dim, int64_t start, int64_t length)
{
    if (!dc__check_inputs("narrow", 1, &t)) return NULL;
    int d;
    if (dc__wrap_dim("narrow", dim, t->ndim, &d)) return NULL;
    if (t->ndim == 0) {
        dc_set_error(DC_ERR_ARG, "narrow: cannot narrow a 0-dim tensor");
        return NULL;
    }
    if (start < 0) start += t->shape[d];
    if (start < 0 || length < 0 || start + length > t->shape[d]) {
        dc_set_error(DC_ERR_ARG, "narrow: start %lld + length %lld exceeds dim %d of size %lld", (long long)start,
                     (long long)length, d, (long long)t->shape[d]);
        return NULL;
    }
    return slice_impl("narrow", t, d, start, length, 1, false);
}

dc_tensor *dc_slice(dc_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
    if (!dc__check_inputs("slice", 1, &t)) return NULL;
    int d;
    if (t->ndim == 0) {
        dc_set_error(DC_ERR_ARG, "slice: cannot slice a 0-dim tensor");
        return NULL;
    }
    if (dc__wrap_dim("slice", dim, t->ndim, &d)) return NULL;
    if (step <= 0) {
        dc_set_error(DC_ERR_ARG, "slice: step must be positive, got %lld", (long long)step);
        return NULL;
    }
    int64_t n = t->shape[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = DC_MIN(DC_MAX(start, 0), n);
    end = DC_MIN(DC_MAX(end, start), n);
    int64_t len = (end - start + step - 1) / step;
    return slice_impl("slice", t, d, start, len, step, false);
}

dc_tensor *dc_select(dc_tensor *t, int dim, int64_t index)
{
    if (!dc__check_inputs("select", 1, &t)) return NULL;
    int d;
    if (t->ndim == 0) {
        dc_set_error(DC_ERR_ARG, "select: cannot index a 0-dim tensor");
        return NULL;
    }
    if (dc__wrap_dim("select", dim, t->ndim, &d)) return NULL;
    int64_t i = index < 0 ? index + t->shape[d] : index;
    if (i < 0 || i >= t->shape[d]) {
        dc_set_error(DC_ERR_ARG, "select: index %lld out of range for dim %d of size %lld", (long long)index, d,
                     (long long)t->shape[d]);
        return NULL;
    }
    return slice_impl("select", t, d, i, 1, 1, true);
}

/* ---------------------------------------------------------------------------------------
 * expand
 * ------------------------------------------------------------------------------------- */

dc_tensor *dc_expand(dc_tensor *t, int ndim, const int64_t *shape)
{
    if (!dc__check_inputs("expand", 1, &t)) return NULL;
    if (ndim < t->ndim || ndim > DC_MAX_DIMS) {
        char a[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "expand: cannot expand %s to %d dims", dc_shape_str(t, a, sizeof a), ndim);
        return NULL;
    }
    int64_t sh[DC_MAX_DIMS], st[DC_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t want = shape[i];
        if (i < lead) {
            if (want < 0) goto bad;
            sh[i] = want;
            st[i] = 0;
            continue;
        }
        int64_t have = t->shape[i - lead];
        if (want == -1) want = have;
        if (have == want) {
            sh[i] = have;
            st[i] = t->stride[i - lead];
        } else if (have == 1 && want >= 0) {
            sh[i] = want;
            st[i] = 0;
        } else {
            goto bad;
        }
    }
    {
        dc_tensor *out = dc__view(t, ndim, sh, st, t->offset);
        dc__record(out, "expand", expand_backward, 1, &t);
        return out;
    }
bad: {
    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
    dc_set_error(DC_ERR_SHAPE, "expand: cannot expand %s to %s", dc_shape_str(t, a, sizeof a),
                 dc__shape_fmt(ndim, shape, b, sizeof b));
    return NULL;
}
}
