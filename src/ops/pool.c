/* pool.c: pooling and resampling ops on the last two dims of [N, C, H, W] (or [C, H, W])
 * tensors: max_pool2d, avg_pool2d, adaptive_avg_pool2d, upsample_nearest2d and pad2d, with
 * their backwards. Output sizes and argument rules follow PyTorch's; the arithmetic is in the
 * backend's pool kernels (src/backend/kernels_pool.h). */
#include <limits.h>

#include "../core/internal.h"
#include "../backend/kernels_pool.h"

#include "deepc/ops.h"

/* The CPU kernels are reached only through the backend table, whose reference to them is
 * weak; this strong reference makes linking these ops pull the kernels out of libdeepc.a. */
extern const struct dc_kernels_pool dc_cpu_pool_kernels;
const void *const dc__cpu_pool_anchor = &dc_cpu_pool_kernels;

static const struct dc_kernels_pool *pool_kernels(const dc_tensor *t, const char *op)
{
    const dc_backend *be = dc_backend_of(t);
    if (!be) return NULL;
    if (!be->pool) {
        dc_backend_missing(be, op);
        return NULL;
    }
    return be->pool;
}

/* The common input rules: one F32 tensor of 3 or 4 dims. */
static bool check_input(const char *op, dc_tensor *x)
{
    if (!dc__check_inputs(op, 1, &x)) return false;
    if (dc__check_f32(op, x, "x")) return false;
    if (x->ndim != 3 && x->ndim != 4) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "%s: x must be [N, C, H, W] or [C, H, W], got %s", op, dc_shape_str(x, s, sizeof s));
        return false;
    }
    return true;
}

/* x's leading dims with the last two replaced by (oh, ow) */
static void out_shape(const dc_tensor *x, int64_t oh, int64_t ow, int64_t *shape)
{
    for (int i = 0; i < x->ndim - 2; i++) shape[i] = x->shape[i];
    shape[x->ndim - 2] = oh;
    shape[x->ndim - 1] = ow;
}

static int64_t planes_of(const dc_tensor *x)
{
    int64_t p = 1;
    for (int i = 0; i < x->ndim - 2; i++) p *= x->shape[i];
    return p;
}

/* A contiguous version of x made with grad off (the op records its node on x itself). */
static dc_tensor *contiguous_nograd(dc_tensor *x)
{
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *c = dc_contiguous(x);
    dc_set_grad_enabled(prev);
    return c;
}

static void drop(dc_tensor *t)
{
    if (!dc_pool_active()) dc_tensor_release(t);
}

/* ---------------------------------------------------------------------------------------
 * Window geometry shared by max and average pooling
 * ------------------------------------------------------------------------------------- */

static void geom_store(dc_node *node, const dc_pool2d_geom *g)
{
    int64_t *a = node->iarg;
    a[0] = g->planes, a[1] = g->h, a[2] = g->w, a[3] = g->oh, a[4] = g->ow, a[5] = g->kh, a[6] = g->kw;
    a[7] = g->sh, a[8] = g->sw, a[9] = g->ph, a[10] = g->pw, a[11] = g->dh, a[12] = g->dw;
    a[13] = g->count_include_pad;
}

static dc_pool2d_geom geom_load(const dc_node *node)
{
    const int64_t *a = node->iarg;
    return (dc_pool2d_geom){.planes = a[0], .h = a[1], .w = a[2], .oh = a[3], .ow = a[4], .kh = (int)a[5],
                            .kw = (int)a[6], .sh = (int)a[7], .sw = (int)a[8], .ph = (int)a[9], .pw = (int)a[10],
                            .dh = (int)a[11], .dw = (int)a[12], .count_include_pad = a[13] != 0};
}

/* PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil mode the last window
 * must start inside the input or its left padding. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode)
{
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t q = num / stride;
    if (num % stride != 0 && num < 0) q--; /* round toward -inf */
    int64_t out = q + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

static bool pool_geom(const char *op, const dc_tensor *x, dc_pool2d_args a, bool max_pool, dc_pool2d_geom *g)
{
    char s[DC_SHAPE_STR_MAX];
    int stride[2], dil[2];
    for (int i = 0; i < 2; i++) {
        stride[i] = a.stride[i] == 0 ? a.kernel[i] : a.stride[i];
        dil[i] = a.dilation[i] == 0 ? 1 : a.dilation[i];
    }
    if (a.kernel[0] <= 0 || a.kernel[1] <= 0 || stride[0] <= 0 || stride[1] <= 0 || dil[0] <= 0 || dil[1] <= 0) {
        dc_set_error(DC_ERR_ARG, "%s: kernel {%d, %d}, stride {%d, %d} and dilation {%d, %d} must be positive", op,
                     a.kernel[0], a.kernel[1], a.stride[0], a.stride[1], a.dilation[0], a.dilation[1]);
        return false;
    }
    if (!max_pool && (dil[0] != 1 || dil[1] != 1)) {
        dc_set_error(DC_ERR_ARG, "%s: dilation {%d, %d} is not supported (max_pool2d only)", op, a.dilation[0],
                     a.dilation[1]);
        return false;
    }
    for (int i = 0; i < 2; i++) {
        if (a.padding[i] < 0 || a.padding[i] > a.kernel[i] / 2) {
            dc_set_error(DC_ERR_ARG, "%s: padding {%d, %d} must be between 0 and half the kernel {%d, %d}", op,
                         a.padding[0], a.padding[1], a.kernel[0], a.kernel[1]);
            return false;
        }
    }
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    g->planes = planes_of(x);
    g->h = h;
    g->w = w;
    g->kh = a.kernel[0], g->kw = a.kernel[1];
    g->sh = stride[0], g->sw = stride[1];
    g->ph = a.padding[0], g->pw = a.padding[1];
    g->dh = dil[0], g->dw = dil[1];
    g->count_include_pad = a.count_include_pad;
    g->oh = pool_out_size(h, g->kh, g->ph, g->sh, g->dh, a.ceil_mode);
    g->ow = pool_out_size(w, g->kw, g->pw, g->sw, g->dw, a.ceil_mode);
    if (g->oh < 1 || g->ow < 1) {
        dc_set_error(DC_ERR_SHAPE, "%s: input %s gives output size %lldx%lld, which is too small (kernel {%d, %d}, stride {%d, %d}, padding {%d, %d}, dilation {%d, %d})",
                     op, dc_shape_str(x, s, sizeof s), (long long)g->oh, (long long)g->ow, g->kh, g->kw, g->sh, g->sw,
                     g->ph, g->pw, g->dh, g->dw);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * max_pool2d: y = x[idx] with idx the argmax of each window.
 * backward: dx[idx] += dy (saved: idx, I32 positions in each plane)
 * ------------------------------------------------------------------------------------- */

static dc_status max_pool2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_pool2d_geom geom = geom_load(node);
    dc_tensor *x = node->inputs[0], *idx = node->saved[0];
    const struct dc_kernels_pool *k = pool_kernels(g, "max_pool2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    dc_tensor *gx = gc ? dc__new(DC_F32, x->ndim, x->shape, x->storage->device) : NULL;
    if (!gx) return dc_last_status();
    dc_status st = k->max_pool2d_backward(&geom, dc_data_f32(gc), dc_data(idx), dc_data_f32(gx));
    gi[0] = gx;
    return st;
}

dc_tensor *dc_max_pool2d(dc_tensor *x, dc_pool2d_args args)
{
    const char *op = "max_pool2d";
    if (!check_input(op, x)) return NULL;
    dc_pool2d_geom g;
    if (!pool_geom(op, x, args, true, &g)) return NULL;
    if (g.h * g.w > INT32_MAX) {
        dc_set_error(DC_ERR_SHAPE, "max_pool2d: planes of %lldx%lld elements are too large", (long long)g.h,
                     (long long)g.w);
        return NULL;
    }
    const struct dc_kernels_pool *k = pool_kernels(x, op);
    if (!k) return NULL;
    int64_t shape[4];
    out_shape(x, g.oh, g.ow, shape);
    bool need_grad = dc__any_needs_grad(1, &x);
    dc_tensor *xc = contiguous_nograd(x);
    if (!xc) return NULL;
    dc_tensor *y = dc__new(DC_F32, x->ndim, shape, x->storage->device);
    dc_tensor *idx = need_grad && y ? dc__new(DC_I32, x->ndim, shape, x->storage->device) : NULL;
    dc_tensor *result = NULL;
    if (!y || (need_grad && !idx)) goto fail;
    if (k->max_pool2d_forward(&g, dc_data_f32(xc), dc_data_f32(y), idx ? dc_data(idx) : NULL)) goto fail;
    dc_node *node = dc__record(y, op, max_pool2d_backward, 1, &x);
    if (node) {
        geom_store(node, &g);
        dc__save(node, idx);
    }
    result = y;
    y = NULL;
fail:
    if (y) dc__discard(y);
    if (idx) drop(idx); /* the node holds its own reference */
    drop(xc);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * avg_pool2d: y = sum(window ∩ input) / div (div per PyTorch's count_include_pad rule)
 * backward: every input of a window gets dy / div
 * ------------------------------------------------------------------------------------- */

static dc_status avg_pool2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_pool2d_geom geom = geom_load(node);
    dc_tensor *x = node->inputs[0];
    const struct dc_kernels_pool *k = pool_kernels(g, "avg_pool2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    dc_tensor *gx = gc ? dc__new(DC_F32, x->ndim, x->shape, x->storage->device) : NULL;
    if (!gx) return dc_last_status();
    dc_status st = k->avg_pool2d_backward(&geom, dc_data_f32(gc), dc_data_f32(gx));
    gi[0] = gx;
    return st;
}

dc_tensor *dc_avg_pool2d(dc_tensor *x, dc_pool2d_args args)
{
    const char *op = "avg_pool2d";
    if (!check_input(op, x)) return NULL;
    dc_pool2d_geom g;
    if (!pool_geom(op, x, args, false, &g)) return NULL;
    const struct dc_kernels_pool *k = pool_kernels(x, op);
    if (!k) return NULL;
    int64_t shape[4];
    out_shape(x, g.oh, g.ow, shape);
    dc_tensor *xc = contiguous_nograd(x);
    if (!xc) return NULL;
    dc_tensor *y = dc__new(DC_F32, x->ndim, shape, x->storage->device);
    if (y && k->avg_pool2d_forward(&g, dc_data_f32(xc), dc_data_f32(y))) {
        dc__discard(y);
        y = NULL;
    }
    drop(xc);
    if (!y) return NULL;
    dc_node *node = dc__record(y, op, avg_pool2d_backward, 1, &x);
    if (node) geom_store(node, &g);
    return y;
}

/* ---------------------------------------------------------------------------------------
 * adaptive_avg_pool2d: cell (i, j) averages rows [floor(i H / oh), ceil((i+1) H / oh)) and
 * the same columns. backward: every input of a cell gets dy / (cell area).
 * iarg = {planes, h, w, oh, ow}
 * ------------------------------------------------------------------------------------- */

static dc_status adaptive_avg_pool2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    const int64_t *a = node->iarg;
    dc_tensor *x = node->inputs[0];
    const struct dc_kernels_pool *k = pool_kernels(g, "adaptive_avg_pool2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    dc_tensor *gx = gc ? dc__new(DC_F32, x->ndim, x->shape, x->storage->device) : NULL;
    if (!gx) return dc_last_status();
    dc_status st = k->adaptive_avg_pool2d_backward(a[0], a[1], a[2], a[3], a[4], dc_data_f32(gc), dc_data_f32(gx));
    gi[0] = gx;
    return st;
}

dc_tensor *dc_adaptive_avg_pool2d(dc_tensor *x, int out_h, int out_w)
{
    const char *op = "adaptive_avg_pool2d";
    if (!check_input(op, x)) return NULL;
    char s[DC_SHAPE_STR_MAX];
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    if (out_h <= 0 || out_w <= 0) {
        dc_set_error(DC_ERR_ARG, "%s: output size %dx%d must be positive (x %s)", op, out_h, out_w,
                     dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    if (h == 0 || w == 0) {
        dc_set_error(DC_ERR_SHAPE, "%s: x %s has an empty spatial size", op, dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    const struct dc_kernels_pool *k = pool_kernels(x, op);
    if (!k) return NULL;
    int64_t shape[4], planes = planes_of(x);
    out_shape(x, out_h, out_w, shape);
    dc_tensor *xc = contiguous_nograd(x);
    if (!xc) return NULL;
    dc_tensor *y = dc__new(DC_F32, x->ndim, shape, x->storage->device);
    if (y && k->adaptive_avg_pool2d_forward(planes, h, w, out_h, out_w, dc_data_f32(xc), dc_data_f32(y))) {
        dc__discard(y);
        y = NULL;
    }
    drop(xc);
    if (!y) return NULL;
    dc_node *node = dc__record(y, op, adaptive_avg_pool2d_backward, 1, &x);
    if (node) {
        node->iarg[0] = planes, node->iarg[1] = h, node->iarg[2] = w;
        node->iarg[3] = out_h, node->iarg[4] = out_w;
    }
    return y;
}

/* ---------------------------------------------------------------------------------------
 * upsample_nearest2d: y[i, j] = x[i / sh, j / sw]
 * backward: dx[i, j] = sum of dy over the sh x sw block it was copied to
 * iarg = {planes, h, w, sh, sw}
 * ------------------------------------------------------------------------------------- */

static dc_status upsample_nearest2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    const int64_t *a = node->iarg;
    dc_tensor *x = node->inputs[0];
    const struct dc_kernels_pool *k = pool_kernels(g, "upsample_nearest2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    dc_tensor *gx = gc ? dc__new(DC_F32, x->ndim, x->shape, x->storage->device) : NULL;
    if (!gx) return dc_last_status();
    dc_status st = k->upsample_nearest2d_backward(a[0], a[1], a[2], (int)a[3], (int)a[4], dc_data_f32(gc),
                                                  dc_data_f32(gx));
    gi[0] = gx;
    return st;
}

dc_tensor *dc_upsample_nearest2d(dc_tensor *x, int scale_h, int scale_w)
{
    const char *op = "upsample_nearest2d";
    if (!check_input(op, x)) return NULL;
    if (scale_h < 1 || scale_w < 1) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_ARG, "%s: scale factors %dx%d must be positive integers (x %s)", op, scale_h, scale_w,
                     dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    const struct dc_kernels_pool *k = pool_kernels(x, op);
    if (!k) return NULL;
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1], shape[4], planes = planes_of(x);
    out_shape(x, h * scale_h, w * scale_w, shape);
    dc_tensor *xc = contiguous_nograd(x);
    if (!xc) return NULL;
    dc_tensor *y = dc__new(DC_F32, x->ndim, shape, x->storage->device);
    if (y && k->upsample_nearest2d_forward(planes, h, w, scale_h, scale_w, dc_data_f32(xc), dc_data_f32(y))) {
        dc__discard(y);
        y = NULL;
    }
    drop(xc);
    if (!y) return NULL;
    dc_node *node = dc__record(y, op, upsample_nearest2d_backward, 1, &x);
    if (node) {
        node->iarg[0] = planes, node->iarg[1] = h, node->iarg[2] = w;
        node->iarg[3] = scale_h, node->iarg[4] = scale_w;
    }
    return y;
}

/* ---------------------------------------------------------------------------------------
 * pad2d: y = x placed at (top, left) in a [h + top + bottom, w + left + right] plane of
 * `value` (negative amounts crop). backward: dx = dy on the overlap, 0 where x was cropped.
 * iarg = {planes, h, w, left, right, top, bottom}
 * ------------------------------------------------------------------------------------- */

static dc_status pad2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    const int64_t *a = node->iarg;
    int pad[4] = {(int)a[3], (int)a[4], (int)a[5], (int)a[6]};
    dc_tensor *x = node->inputs[0];
    const struct dc_kernels_pool *k = pool_kernels(g, "pad2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    dc_tensor *gx = gc ? dc__new(DC_F32, x->ndim, x->shape, x->storage->device) : NULL;
    if (!gx) return dc_last_status();
    dc_status st = k->pad2d_backward(a[0], a[1], a[2], pad, dc_data_f32(gc), dc_data_f32(gx));
    gi[0] = gx;
    return st;
}

dc_tensor *dc_pad2d(dc_tensor *x, const int pad[4], float value)
{
    const char *op = "pad2d";
    if (!dc__check_inputs(op, 1, &x)) return NULL;
    if (dc__check_f32(op, x, "x")) return NULL;
    char s[DC_SHAPE_STR_MAX];
    if (!pad) {
        dc_set_error(DC_ERR_ARG, "%s: pad is NULL", op);
        return NULL;
    }
    if (x->ndim < 2) {
        dc_set_error(DC_ERR_SHAPE, "%s: x must have at least 2 dims, got %s", op, dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    int64_t h = x->shape[x->ndim - 2], w = x->shape[x->ndim - 1];
    int64_t oh = h + pad[2] + pad[3], ow = w + pad[0] + pad[1];
    if (oh <= 0 || ow <= 0) {
        dc_set_error(DC_ERR_SHAPE, "%s: padding {%d, %d, %d, %d} (left, right, top, bottom) of x %s gives an empty %lldx%lld output",
                     op, pad[0], pad[1], pad[2], pad[3], dc_shape_str(x, s, sizeof s), (long long)oh, (long long)ow);
        return NULL;
    }
    const struct dc_kernels_pool *k = pool_kernels(x, op);
    if (!k) return NULL;
    int64_t shape[DC_MAX_DIMS], planes = planes_of(x);
    out_shape(x, oh, ow, shape);
    dc_tensor *xc = contiguous_nograd(x);
    if (!xc) return NULL;
    dc_tensor *y = dc__new(DC_F32, x->ndim, shape, x->storage->device);
    if (y && k->pad2d_forward(planes, h, w, pad, value, dc_data_f32(xc), dc_data_f32(y))) {
        dc__discard(y);
        y = NULL;
    }
    drop(xc);
    if (!y) return NULL;
    dc_node *node = dc__record(y, op, pad2d_backward, 1, &x);
    if (node) {
        node->iarg[0] = planes, node->iarg[1] = h, node->iarg[2] = w;
        for (int i = 0; i < 4; i++) node->iarg[3 + i] = pad[i];
    }
    return y;
}
