/* ops/norm.c: the normalisation ops of deepc/ops.h: batch norm, layer norm, group norm and
 * RMS norm. Each op checks its arguments, makes its input contiguous, calls one fused
 * forward kernel (../backend/kernels_norm.h) that also leaves the statistics backward
 * needs, and records one autograd node whose backward is one fused kernel call. */
#include "../core/internal.h"
#include "../backend/kernels_norm.h"
#include "deepc/ops.h"

/* The CPU kernels are reached only through the backend table, whose reference to them is
 * weak; this strong reference makes linking these ops pull the kernels out of libdeepc.a. */
extern const struct dc_kernels_norm dc_cpu_norm_kernels;
const void *const dc__cpu_norm_anchor = &dc_cpu_norm_kernels;


static const struct dc_kernels_norm *norm_kernels(const dc_tensor *x, const char *op)
{
    const dc_backend *be = dc_backend_of(x);
    if (!be) return NULL;
    if (!be->norm) {
        dc_backend_missing(be, op);
        return NULL;
    }
    return be->norm;
}

/* A per-channel / per-feature parameter: NULL is allowed; else F32, same device as x, and
 * exactly the shape (ndim, shape). */
static dc_status check_param(const char *op, const dc_tensor *x, const dc_tensor *p,
                             const char *what, int ndim, const int64_t *shape)
{
    if (!p) return DC_OK;
    char sx[DC_SHAPE_STR_MAX], sp[DC_SHAPE_STR_MAX], se[DC_SHAPE_STR_MAX];
    if (p->dtype != DC_F32)
        return dc_set_error(DC_ERR_DTYPE, "%s: %s must be F32, got %s", op, what, dc_dtype_name(p->dtype));
    if (dc__check_same_device(op, x, p)) return dc_last_status();
    bool ok = p->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = p->shape[i] == shape[i];
    if (!ok)
        return dc_set_error(DC_ERR_SHAPE, "%s: %s has shape %s, expected %s for x %s", op, what,
                            dc_shape_str(p, sp, sizeof sp), dc__shape_fmt(ndim, shape, se, sizeof se),
                            dc_shape_str(x, sx, sizeof sx));
    return DC_OK;
}

/* Checks x (non-NULL checked by the caller), F32, and at least min_dims dims. */
static dc_status check_x(const char *op, const dc_tensor *x, int min_dims, const char *layout)
{
    if (dc__check_f32(op, x, "x")) return dc_last_status();
    if (x->ndim < min_dims) {
        char s[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "%s: x must be %s, got %s", op, layout,
                            dc_shape_str(x, s, sizeof s));
    }
    return DC_OK;
}

/* Optional weight/bias contiguous copies for a kernel (NULL stays NULL). */
static bool dense_params(dc_tensor *w, dc_tensor *b, dc_tensor **wc, dc_tensor **bc)
{
    *wc = w ? dc__dense(w) : NULL;
    *bc = b ? dc__dense(b) : NULL;
    if ((w && !*wc) || (b && !*bc)) {
        dc__discard(*wc);
        dc__discard(*bc);
        return false;
    }
    return true;
}

static float *f32_or_null(dc_tensor *t) { return t ? (float *)dc_data(t) : NULL; }

/* The output gradients a backward wants for inputs (x, weight, bias): new tensors shaped
 * like each wanted input, NULL for the others. */
static dc_status alloc_grads(dc_node *node, int n, dc_tensor **grad_in)
{
    for (int i = 0; i < n; i++) {
        if (!dc_node_wants(node, i)) continue;
        dc_tensor *in = node->inputs[i];
        grad_in[i] = dc__new(DC_F32, in->ndim, in->shape, in->storage->device);
        if (!grad_in[i]) return dc_last_status();
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * batch_norm
 * ------------------------------------------------------------------------------------- */

/* saved: x (contiguous), mean [C], invstd [C]; iarg: n, c, s, training */
static dc_status batch_norm_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    dc_tensor *x = node->saved[0], *mean = node->saved[1], *invstd = node->saved[2];
    const struct dc_kernels_norm *k = norm_kernels(x, "batch_norm backward");
    if (!k) return dc_last_status();
    dc_tensor *g = dc__dense(grad_out), *w = node->inputs[1] ? dc__dense(node->inputs[1]) : NULL;
    if (!g || (node->inputs[1] && !w)) return dc_last_status();
    dc_status st = alloc_grads(node, 3, grad_in);
    if (st) return st;
    return k->batch_norm_backward(dc_data(x), dc_data(g), node->iarg[0], node->iarg[1],
                                  node->iarg[2], f32_or_null(w), dc_data(mean), dc_data(invstd),
                                  node->iarg[3] != 0, f32_or_null(grad_in[0]),
                                  f32_or_null(grad_in[1]), f32_or_null(grad_in[2]));
}

dc_tensor *dc_batch_norm(dc_tensor *x, dc_tensor *running_mean, dc_tensor *running_var,
                         dc_tensor *weight, dc_tensor *bias, bool training, float momentum,
                         float eps)
{
    static const char *op = "batch_norm";
    if (!dc__check_inputs(op, 1, &x)) return NULL;
    if (check_x(op, x, 2, "[N, C, ...]")) return NULL;
    const int64_t n = x->shape[0], c = x->shape[1], s = dc__shape_numel(x->ndim - 2, x->shape + 2);
    char sx[DC_SHAPE_STR_MAX];
    if (check_param(op, x, weight, "weight", 1, &c) || check_param(op, x, bias, "bias", 1, &c) ||
        check_param(op, x, running_mean, "running_mean", 1, &c) ||
        check_param(op, x, running_var, "running_var", 1, &c))
        return NULL;
    if (!running_mean != !running_var) {
        dc_set_error(DC_ERR_ARG, "batch_norm: running_mean and running_var must both be given or both be NULL");
        return NULL;
    }
    if ((running_mean && !dc_is_contiguous(running_mean)) || (running_var && !dc_is_contiguous(running_var))) {
        dc_set_error(DC_ERR_ARG, "batch_norm: running_mean / running_var must be contiguous (they are updated in place)");
        return NULL;
    }
    if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1)) {
        dc_set_error(DC_ERR_ARG, "batch_norm: eps %g must be >= 0 and momentum %g in [0, 1]", eps, momentum);
        return NULL;
    }
    /* Without running statistics the batch's own are used even in eval, as PyTorch's
     * BatchNorm with track_running_stats=False does. */
    bool use_batch = training || !running_mean;
    if (use_batch && n * s <= 1) {
        dc_set_error(DC_ERR_SHAPE, "batch_norm: expected more than 1 value per channel when training, got x %s",
                     dc_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    const struct dc_kernels_norm *k = norm_kernels(x, op);
    if (!k) return NULL;

    dc_tensor *xc = dc__dense(x), *wc = NULL, *bc = NULL;
    if (!xc || !dense_params(weight, bias, &wc, &bc)) {
        dc__discard(xc);
        return NULL;
    }
    dc_device dev = x->storage->device;
    dc_tensor *out = dc__new(DC_F32, x->ndim, x->shape, dev);
    dc_tensor *mean = dc__new(DC_F32, 1, &c, dev), *invstd = dc__new(DC_F32, 1, &c, dev);
    dc_status st = !out || !mean || !invstd ? dc_last_status() : DC_OK;
    if (!st)
        st = k->batch_norm_forward(dc_data(xc), dc_data(out), n, c, s, f32_or_null(wc), f32_or_null(bc),
                                   use_batch && !training ? NULL : f32_or_null(running_mean),
                                   use_batch && !training ? NULL : f32_or_null(running_var),
                                   use_batch, momentum, eps, dc_data(mean), dc_data(invstd));
    dc_node *node = NULL;
    if (!st) {
        node = dc__record(out, op, batch_norm_backward, 3, (dc_tensor *[]){x, weight, bias});
        if (node) {
            dc__save(node, xc);
            dc__save(node, mean);
            dc__save(node, invstd);
            node->iarg[0] = n;
            node->iarg[1] = c;
            node->iarg[2] = s;
            node->iarg[3] = use_batch;
        }
    }
    dc__discard(xc);
    dc__discard(wc);
    dc__discard(bc);
    dc__discard(mean);
    dc__discard(invstd);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * layer_norm
 * ------------------------------------------------------------------------------------- */

/* saved: x (contiguous), mean [rows], rstd [rows]; iarg: rows, d */
static dc_status layer_norm_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    dc_tensor *x = node->saved[0], *mean = node->saved[1], *rstd = node->saved[2];
    const struct dc_kernels_norm *k = norm_kernels(x, "layer_norm backward");
    if (!k) return dc_last_status();
    dc_tensor *g = dc__dense(grad_out), *w = node->inputs[1] ? dc__dense(node->inputs[1]) : NULL;
    if (!g || (node->inputs[1] && !w)) return dc_last_status();
    dc_status st = alloc_grads(node, 3, grad_in);
    if (st) return st;
    return k->layer_norm_backward(dc_data(x), dc_data(g), node->iarg[0], node->iarg[1],
                                  f32_or_null(w), dc_data(mean), dc_data(rstd),
                                  f32_or_null(grad_in[0]), f32_or_null(grad_in[1]),
                                  f32_or_null(grad_in[2]));
}

dc_tensor *dc_layer_norm(dc_tensor *x, int n_norm, dc_tensor *weight, dc_tensor *bias, float eps)
{
    static const char *op = "layer_norm";
    if (!dc__check_inputs(op, 1, &x)) return NULL;
    if (dc__check_f32(op, x, "x")) return NULL;
    if (n_norm < 1 || n_norm > x->ndim) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_ARG, "layer_norm: cannot normalise over the last %d dims of x %s", n_norm,
                     dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    const int64_t *nshape = x->shape + x->ndim - n_norm;
    if (check_param(op, x, weight, "weight", n_norm, nshape) ||
        check_param(op, x, bias, "bias", n_norm, nshape))
        return NULL;
    if (!(eps >= 0)) {
        dc_set_error(DC_ERR_ARG, "layer_norm: eps %g must be >= 0", eps);
        return NULL;
    }
    const struct dc_kernels_norm *k = norm_kernels(x, op);
    if (!k) return NULL;
    const int64_t d = dc__shape_numel(n_norm, nshape), rows = d ? dc_numel(x) / d : 0;

    dc_tensor *xc = dc__dense(x), *wc = NULL, *bc = NULL;
    if (!xc || !dense_params(weight, bias, &wc, &bc)) {
        dc__discard(xc);
        return NULL;
    }
    dc_device dev = x->storage->device;
    dc_tensor *out = dc__new(DC_F32, x->ndim, x->shape, dev);
    dc_tensor *mean = dc__new(DC_F32, 1, &rows, dev), *rstd = dc__new(DC_F32, 1, &rows, dev);
    dc_status st = !out || !mean || !rstd ? dc_last_status() : DC_OK;
    if (!st)
        st = k->layer_norm_forward(dc_data(xc), dc_data(out), rows, d, f32_or_null(wc),
                                   f32_or_null(bc), eps, dc_data(mean), dc_data(rstd));
    if (!st) {
        dc_node *node = dc__record(out, op, layer_norm_backward, 3, (dc_tensor *[]){x, weight, bias});
        if (node) {
            dc__save(node, xc);
            dc__save(node, mean);
            dc__save(node, rstd);
            node->iarg[0] = rows;
            node->iarg[1] = d;
        }
    }
    dc__discard(xc);
    dc__discard(wc);
    dc__discard(bc);
    dc__discard(mean);
    dc__discard(rstd);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * group_norm
 * ------------------------------------------------------------------------------------- */

/* saved: x (contiguous), mean [N*G], rstd [N*G]; iarg: n, c, s, groups */
static dc_status group_norm_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    dc_tensor *x = node->saved[0], *mean = node->saved[1], *rstd = node->saved[2];
    const struct dc_kernels_norm *k = norm_kernels(x, "group_norm backward");
    if (!k) return dc_last_status();
    dc_tensor *g = dc__dense(grad_out), *w = node->inputs[1] ? dc__dense(node->inputs[1]) : NULL;
    if (!g || (node->inputs[1] && !w)) return dc_last_status();
    dc_status st = alloc_grads(node, 3, grad_in);
    if (st) return st;
    return k->group_norm_backward(dc_data(x), dc_data(g), node->iarg[0], node->iarg[1],
                                  node->iarg[2], node->iarg[3], f32_or_null(w), dc_data(mean),
                                  dc_data(rstd), f32_or_null(grad_in[0]),
                                  f32_or_null(grad_in[1]), f32_or_null(grad_in[2]));
}

dc_tensor *dc_group_norm(dc_tensor *x, int num_groups, dc_tensor *weight, dc_tensor *bias, float eps)
{
    static const char *op = "group_norm";
    if (!dc__check_inputs(op, 1, &x)) return NULL;
    if (check_x(op, x, 2, "[N, C, ...]")) return NULL;
    const int64_t n = x->shape[0], c = x->shape[1], s = dc__shape_numel(x->ndim - 2, x->shape + 2);
    if (num_groups < 1 || c % num_groups != 0) {
        char sx[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_ARG, "group_norm: %lld channels of x %s cannot be split into %d groups",
                     (long long)c, dc_shape_str(x, sx, sizeof sx), num_groups);
        return NULL;
    }
    if (check_param(op, x, weight, "weight", 1, &c) || check_param(op, x, bias, "bias", 1, &c))
        return NULL;
    if (!(eps >= 0)) {
        dc_set_error(DC_ERR_ARG, "group_norm: eps %g must be >= 0", eps);
        return NULL;
    }
    const struct dc_kernels_norm *k = norm_kernels(x, op);
    if (!k) return NULL;

    dc_tensor *xc = dc__dense(x), *wc = NULL, *bc = NULL;
    if (!xc || !dense_params(weight, bias, &wc, &bc)) {
        dc__discard(xc);
        return NULL;
    }
    dc_device dev = x->storage->device;
    int64_t ng = n * num_groups;
    dc_tensor *out = dc__new(DC_F32, x->ndim, x->shape, dev);
    dc_tensor *mean = dc__new(DC_F32, 1, &ng, dev), *rstd = dc__new(DC_F32, 1, &ng, dev);
    dc_status st = !out || !mean || !rstd ? dc_last_status() : DC_OK;
    if (!st)
        st = k->group_norm_forward(dc_data(xc), dc_data(out), n, c, s, num_groups, f32_or_null(wc),
                                   f32_or_null(bc), eps, dc_data(mean), dc_data(rstd));
    if (!st) {
        dc_node *node = dc__record(out, op, group_norm_backward, 3, (dc_tensor *[]){x, weight, bias});
        if (node) {
            dc__save(node, xc);
            dc__save(node, mean);
            dc__save(node, rstd);
            node->iarg[0] = n;
            node->iarg[1] = c;
            node->iarg[2] = s;
            node->iarg[3] = num_groups;
        }
    }
    dc__discard(xc);
    dc__discard(wc);
    dc__discard(bc);
    dc__discard(mean);
    dc__discard(rstd);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * rms_norm
 * ------------------------------------------------------------------------------------- */

/* saved: x (contiguous), rstd [rows]; iarg: rows, d */
static dc_status rms_norm_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    dc_tensor *x = node->saved[0], *rstd = node->saved[1];
    const struct dc_kernels_norm *k = norm_kernels(x, "rms_norm backward");
    if (!k) return dc_last_status();
    dc_tensor *g = dc__dense(grad_out), *w = node->inputs[1] ? dc__dense(node->inputs[1]) : NULL;
    if (!g || (node->inputs[1] && !w)) return dc_last_status();
    dc_status st = alloc_grads(node, 2, grad_in);
    if (st) return st;
    return k->rms_norm_backward(dc_data(x), dc_data(g), node->iarg[0], node->iarg[1],
                                f32_or_null(w), dc_data(rstd), f32_or_null(grad_in[0]),
                                f32_or_null(grad_in[1]));
}

dc_tensor *dc_rms_norm(dc_tensor *x, dc_tensor *weight, float eps)
{
    static const char *op = "rms_norm";
    if (!dc__check_inputs(op, 1, &x)) return NULL;
    if (check_x(op, x, 1, "at least 1-d")) return NULL;
    const int64_t d = x->shape[x->ndim - 1], rows = d ? dc_numel(x) / d : 0;
    if (check_param(op, x, weight, "weight", 1, &d)) return NULL;
    if (!(eps >= 0)) {
        dc_set_error(DC_ERR_ARG, "rms_norm: eps %g must be >= 0", eps);
        return NULL;
    }
    const struct dc_kernels_norm *k = norm_kernels(x, op);
    if (!k) return NULL;

    dc_tensor *xc = dc__dense(x), *wc = NULL, *unused = NULL;
    if (!xc || !dense_params(weight, NULL, &wc, &unused)) {
        dc__discard(xc);
        return NULL;
    }
    dc_device dev = x->storage->device;
    dc_tensor *out = dc__new(DC_F32, x->ndim, x->shape, dev);
    dc_tensor *rstd = dc__new(DC_F32, 1, &rows, dev);
    dc_status st = !out || !rstd ? dc_last_status() : DC_OK;
    if (!st) st = k->rms_norm_forward(dc_data(xc), dc_data(out), rows, d, f32_or_null(wc), eps, dc_data(rstd));
    if (!st) {
        dc_node *node = dc__record(out, op, rms_norm_backward, 2, (dc_tensor *[]){x, weight});
        if (node) {
            dc__save(node, xc);
            dc__save(node, rstd);
            node->iarg[0] = rows;
            node->iarg[1] = d;
        }
    }
    dc__discard(xc);
    dc__discard(wc);
    dc__discard(rstd);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}
