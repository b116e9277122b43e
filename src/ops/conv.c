/* conv.c: the convolution ops, conv2d and conv_transpose2d (NCHW), with their backwards.
 *
 * The ops check arguments, create outputs and record autograd; the arithmetic is in the
 * backend's conv kernels (src/backend/kernels_conv.h). A transposed convolution is the input
 * gradient of the convolution that maps its output back to its input, so both ops run on the
 * same three kernels, described by that convolution's geometry. */
#include "../core/internal.h"
#include "../backend/kernels_conv.h"

#include "deepc/ops.h"

/* The CPU kernels are reached only through the backend table, whose reference to them is
 * weak; this strong reference makes linking these ops pull the kernels out of libdeepc.a. */
extern const struct dc_kernels_conv dc_cpu_conv_kernels;
const void *const dc__cpu_conv_anchor = &dc_cpu_conv_kernels;

/* Normalised arguments: 0 means the default (1) for stride, dilation and groups. */
static int or_one(int v) { return v == 0 ? 1 : v; }

/* Geometry in a node's iarg: n c h w o oh ow kh kw sh sw ph pw dh dw groups. */
static void geom_store(dc_node *node, const dc_conv2d_geom *g)
{
    int64_t *a = node->iarg;
    a[0] = g->n, a[1] = g->c, a[2] = g->h, a[3] = g->w, a[4] = g->o, a[5] = g->oh, a[6] = g->ow;
    a[7] = g->kh, a[8] = g->kw, a[9] = g->sh, a[10] = g->sw, a[11] = g->ph, a[12] = g->pw;
    a[13] = g->dh, a[14] = g->dw, a[15] = g->groups;
}

static dc_conv2d_geom geom_load(const dc_node *node)
{
    const int64_t *a = node->iarg;
    return (dc_conv2d_geom){.n = a[0], .c = a[1], .h = a[2], .w = a[3], .o = a[4], .oh = a[5], .ow = a[6],
                            .kh = (int)a[7], .kw = (int)a[8], .sh = (int)a[9], .sw = (int)a[10],
                            .ph = (int)a[11], .pw = (int)a[12], .dh = (int)a[13], .dw = (int)a[14],
                            .groups = (int)a[15]};
}

static const struct dc_kernels_conv *conv_kernels(const dc_backend *be, const char *op)
{
    if (!be) return NULL;
    if (!be->conv) {
        dc_backend_missing(be, op);
        return NULL;
    }
    return be->conv;
}

/* Checks shared by both ops: dtypes, ranks, and the non-negative / positive arguments. */
static bool check_common(const char *op, dc_tensor *x, dc_tensor *weight, dc_tensor *bias,
                         const int stride[2], const int padding[2], const int dilation[2], int groups)
{
    if (dc__check_f32(op, x, "x") || dc__check_f32(op, weight, "weight") ||
        (bias && dc__check_f32(op, bias, "bias")))
        return false;
    char sx[DC_SHAPE_STR_MAX], sw[DC_SHAPE_STR_MAX];
    if (x->ndim != 4) {
        dc_set_error(DC_ERR_SHAPE, "%s: x must be 4-d [N, C, H, W], got %s", op, dc_shape_str(x, sx, sizeof sx));
        return false;
    }
    if (weight->ndim != 4) {
        dc_set_error(DC_ERR_SHAPE, "%s: weight must be 4-d, got %s", op, dc_shape_str(weight, sw, sizeof sw));
        return false;
    }
    for (int i = 0; i < 2; i++) {
        if (stride[i] < 0 || dilation[i] < 0 || padding[i] < 0) {
            dc_set_error(DC_ERR_ARG, "%s: stride {%d, %d}, padding {%d, %d} and dilation {%d, %d} must not be negative",
                         op, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]);
            return false;
        }
    }
    if (groups < 0) {
        dc_set_error(DC_ERR_ARG, "%s: groups must be positive, got %d", op, groups);
        return false;
    }
    if (weight->shape[2] < 1 || weight->shape[3] < 1) {
        dc_set_error(DC_ERR_SHAPE, "%s: weight %s has an empty kernel", op, dc_shape_str(weight, sw, sizeof sw));
        return false;
    }
    return true;
}

/* Contiguous copies (or new references) of the operands, made with grad off: the op records
 * its own node on the original tensors, so the copies need no graph of their own. Releases
 * what it made and returns false on failure. */
static bool contiguous_operands(dc_tensor *x, dc_tensor *w, dc_tensor *b, dc_tensor **xc,
                                dc_tensor **wc, dc_tensor **bc)
{
    bool prev = dc_set_grad_enabled(false);
    *xc = dc_contiguous(x);
    *wc = dc_contiguous(w);
    *bc = b ? dc_contiguous(b) : NULL;
    dc_set_grad_enabled(prev);
    if (*xc && *wc && (!b || *bc)) return true;
    if (!dc_pool_active()) {
        dc_tensor_release(*xc);
        dc_tensor_release(*wc);
        dc_tensor_release(*bc);
    }
    return false;
}

static void release_operands(dc_tensor *xc, dc_tensor *wc, dc_tensor *bc)
{
    if (dc_pool_active()) return; /* the pool owns them */
    dc_tensor_release(xc);
    dc_tensor_release(wc);
    dc_tensor_release(bc);
}

/* ---------------------------------------------------------------------------------------
 * conv2d
 *
 * y[n, o, i, j] = b[o] + sum_{c in o's group, p, q} w[o, c, p, q] x[n, c, i sh - ph + p dh,
 *                                                                    j sw - pw + q dw]
 * backward (kernels_conv.h: conv2d_backward):
 *   dx[n, c, ih, iw] = sum over (o, p, q, i, j) that read x[n, c, ih, iw] of w[o, c, p, q] dy[n, o, i, j]
 *   dw[o, c, p, q]   = sum_{n, i, j} dy[n, o, i, j] x[n, c, i sh - ph + p dh, j sw - pw + q dw]
 *   db[o]            = sum_{n, i, j} dy[n, o, i, j]
 * saved: contiguous x and weight
 * ------------------------------------------------------------------------------------- */

static dc_status conv2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_conv2d_geom geom = geom_load(node);
    dc_tensor *x = node->saved[0], *w = node->saved[1];
    const struct dc_kernels_conv *k = conv_kernels(dc_backend_of(g), "conv2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    if (!gc) return dc_last_status();
    bool want_b = node->n_inputs > 2 && dc_node_wants(node, 2);
    dc_tensor *gx = dc_node_wants(node, 0) ? dc__new(DC_F32, 4, x->shape, x->storage->device) : NULL;
    dc_tensor *gw = dc_node_wants(node, 1) ? dc__new(DC_F32, 4, w->shape, w->storage->device) : NULL;
    dc_tensor *gb = want_b ? dc__new(DC_F32, 1, &geom.o, w->storage->device) : NULL;
    if ((dc_node_wants(node, 0) && !gx) || (dc_node_wants(node, 1) && !gw) || (want_b && !gb))
        return dc_last_status();
    dc_status st = k->conv2d_backward(&geom, dc_data_f32(x), dc_data_f32(w), dc_data_f32(gc),
                                      gx ? dc_data_f32(gx) : NULL, gw ? dc_data_f32(gw) : NULL,
                                      gb ? dc_data_f32(gb) : NULL);
    if (st) return st;
    gi[0] = gx;
    gi[1] = gw;
    if (want_b) gi[2] = gb;
    return DC_OK;
}

dc_tensor *dc_conv2d(dc_tensor *x, dc_tensor *weight, dc_tensor *bias, dc_conv2d_args args)
{
    const char *op = "conv2d";
    dc_tensor *ins[3] = {x, weight, bias};
    int n_in = bias ? 3 : 2;
    if (!dc__check_inputs(op, n_in, ins)) return NULL;
    if (!check_common(op, x, weight, bias, args.stride, args.padding, args.dilation, args.groups)) return NULL;
    char sx[DC_SHAPE_STR_MAX], sw[DC_SHAPE_STR_MAX], sb[DC_SHAPE_STR_MAX];
    dc_conv2d_geom g = {
        .n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3], .o = weight->shape[0],
        .kh = (int)weight->shape[2], .kw = (int)weight->shape[3],
        .sh = or_one(args.stride[0]), .sw = or_one(args.stride[1]),
        .ph = args.padding[0], .pw = args.padding[1],
        .dh = or_one(args.dilation[0]), .dw = or_one(args.dilation[1]), .groups = or_one(args.groups),
    };
    if (weight->shape[1] * g.groups != g.c) {
        dc_set_error(DC_ERR_SHAPE, "conv2d: weight %s expects %lld input channels, x has %lld ([N, C, H, W] = %s)",
                     dc_shape_str(weight, sw, sizeof sw), (long long)(weight->shape[1] * g.groups), (long long)g.c,
                     dc_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    if (g.o % g.groups != 0) {
        dc_set_error(DC_ERR_SHAPE, "conv2d: weight %s has %lld output channels, not divisible by groups = %d",
                     dc_shape_str(weight, sw, sizeof sw), (long long)g.o, g.groups);
        return NULL;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != g.o)) {
        dc_set_error(DC_ERR_SHAPE, "conv2d: bias %s does not match weight %s (expected [%lld])",
                     dc_shape_str(bias, sb, sizeof sb), dc_shape_str(weight, sw, sizeof sw), (long long)g.o);
        return NULL;
    }
    int64_t eff_h = (int64_t)g.dh * (g.kh - 1) + 1, eff_w = (int64_t)g.dw * (g.kw - 1) + 1;
    if (g.h + 2 * (int64_t)g.ph < eff_h || g.w + 2 * (int64_t)g.pw < eff_w) {
        dc_set_error(DC_ERR_SHAPE,
                     "conv2d: kernel %lldx%lld (dilated to %lldx%lld) is larger than the padded input %lldx%lld (x %s, padding {%d, %d})",
                     (long long)g.kh, (long long)g.kw, (long long)eff_h, (long long)eff_w,
                     (long long)(g.h + 2 * g.ph), (long long)(g.w + 2 * g.pw), dc_shape_str(x, sx, sizeof sx), g.ph, g.pw);
        return NULL;
    }
    g.oh = (g.h + 2 * (int64_t)g.ph - eff_h) / g.sh + 1;
    g.ow = (g.w + 2 * (int64_t)g.pw - eff_w) / g.sw + 1;
    const dc_backend *be = dc_backend_of(x);
    const struct dc_kernels_conv *k = conv_kernels(be, op);
    if (!k) return NULL;

    dc_tensor *xc, *wc, *bc;
    if (!contiguous_operands(x, weight, bias, &xc, &wc, &bc)) return NULL;
    dc_tensor *y = dc__new(DC_F32, DC_SHAPE(g.n, g.o, g.oh, g.ow), x->storage->device);
    dc_tensor *result = NULL;
    if (!y) goto done;
    if (k->conv2d_forward(&g, dc_data_f32(xc), dc_data_f32(wc), bc ? dc_data_f32(bc) : NULL, dc_data_f32(y))) {
        dc__discard(y);
        goto done;
    }
    dc_node *node = dc__record(y, op, conv2d_backward, n_in, ins);
    if (node) {
        geom_store(node, &g);
        dc__save(node, xc);
        dc__save(node, wc);
    }
    result = y;
done:
    release_operands(xc, wc, bc);
    return result;
}

/* ---------------------------------------------------------------------------------------
 * conv_transpose2d
 *
 * With C the convolution from [N, Cout, OH, OW] to [N, Cin, H, W] that has this op's weight
 * [Cin, Cout/groups, kh, kw] (as [o, c/groups, kh, kw]), stride, padding and dilation:
 *   y = C^T x + b                  (C^T: the input gradient of C, conv2d_backward's dx)
 * backward:
 *   dx = C dy                      (conv2d_forward of dy)
 *   dw = conv2d_backward's dweight with C's input dy and C's output gradient x
 *   db[o] = sum_{n, i, j} dy[n, o, i, j]
 * saved: contiguous x and weight
 * ------------------------------------------------------------------------------------- */

static dc_status conv_transpose2d_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_conv2d_geom geom = geom_load(node); /* the geometry of C */
    dc_tensor *x = node->saved[0], *w = node->saved[1];
    const struct dc_kernels_conv *k = conv_kernels(dc_backend_of(g), "conv_transpose2d backward");
    if (!k) return dc_last_status();
    dc_tensor *gc = dc_contiguous(g);
    if (!gc) return dc_last_status();
    dc_status st;
    if (dc_node_wants(node, 0)) {
        dc_tensor *gx = dc__new(DC_F32, 4, x->shape, x->storage->device);
        if (!gx) return dc_last_status();
        if ((st = k->conv2d_forward(&geom, dc_data_f32(gc), dc_data_f32(w), NULL, dc_data_f32(gx)))) return st;
        gi[0] = gx;
    }
    if (dc_node_wants(node, 1)) {
        dc_tensor *gw = dc__new(DC_F32, 4, w->shape, w->storage->device);
        if (!gw) return dc_last_status();
        if ((st = k->conv2d_backward(&geom, dc_data_f32(gc), NULL, dc_data_f32(x), NULL, dc_data_f32(gw), NULL)))
            return st;
        gi[1] = gw;
    }
    if (node->n_inputs > 2 && dc_node_wants(node, 2)) {
        dc_tensor *gb = dc__new(DC_F32, 1, &geom.c, w->storage->device);
        if (!gb) return dc_last_status();
        if ((st = k->channel_sum(dc_data_f32(gc), geom.n, geom.c, geom.h * geom.w, dc_data_f32(gb)))) return st;
        gi[2] = gb;
    }
    return DC_OK;
}

dc_tensor *dc_conv_transpose2d(dc_tensor *x, dc_tensor *weight, dc_tensor *bias,
                               dc_conv_transpose2d_args args)
{
    const char *op = "conv_transpose2d";
    dc_tensor *ins[3] = {x, weight, bias};
    int n_in = bias ? 3 : 2;
    if (!dc__check_inputs(op, n_in, ins)) return NULL;
    if (!check_common(op, x, weight, bias, args.stride, args.padding, args.dilation, args.groups)) return NULL;
    char sx[DC_SHAPE_STR_MAX], sw[DC_SHAPE_STR_MAX], sb[DC_SHAPE_STR_MAX];
    int groups = or_one(args.groups);
    int64_t cin = x->shape[1];
    if (weight->shape[0] != cin) {
        dc_set_error(DC_ERR_SHAPE, "conv_transpose2d: weight %s expects %lld input channels, x has %lld ([N, C, H, W] = %s)",
                     dc_shape_str(weight, sw, sizeof sw), (long long)weight->shape[0], (long long)cin,
                     dc_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    if (cin % groups != 0) {
        dc_set_error(DC_ERR_SHAPE, "conv_transpose2d: %lld input channels (x %s) are not divisible by groups = %d",
                     (long long)cin, dc_shape_str(x, sx, sizeof sx), groups);
        return NULL;
    }
    /* C: the convolution whose input gradient this op is */
    dc_conv2d_geom g = {
        .n = x->shape[0], .c = weight->shape[1] * groups, .o = cin, .oh = x->shape[2], .ow = x->shape[3],
        .kh = (int)weight->shape[2], .kw = (int)weight->shape[3],
        .sh = or_one(args.stride[0]), .sw = or_one(args.stride[1]),
        .ph = args.padding[0], .pw = args.padding[1],
        .dh = or_one(args.dilation[0]), .dw = or_one(args.dilation[1]), .groups = groups,
    };
    if (bias && (bias->ndim != 1 || bias->shape[0] != g.c)) {
        dc_set_error(DC_ERR_SHAPE, "conv_transpose2d: bias %s does not match weight %s (expected [%lld])",
                     dc_shape_str(bias, sb, sizeof sb), dc_shape_str(weight, sw, sizeof sw), (long long)g.c);
        return NULL;
    }
    int sv[2] = {g.sh, g.sw}, dv[2] = {g.dh, g.dw};
    for (int i = 0; i < 2; i++) {
        int op_i = args.output_padding[i];
        if (op_i < 0 || (op_i >= sv[i] && op_i >= dv[i])) {
            dc_set_error(DC_ERR_ARG,
                         "conv_transpose2d: output_padding {%d, %d} must be non-negative and smaller than either stride {%d, %d} or dilation {%d, %d}",
                         args.output_padding[0], args.output_padding[1], g.sh, g.sw, g.dh, g.dw);
            return NULL;
        }
    }
    g.h = (g.oh - 1) * g.sh - 2 * (int64_t)g.ph + (int64_t)g.dh * (g.kh - 1) + args.output_padding[0] + 1;
    g.w = (g.ow - 1) * g.sw - 2 * (int64_t)g.pw + (int64_t)g.dw * (g.kw - 1) + args.output_padding[1] + 1;
    if (g.h <= 0 || g.w <= 0) {
        dc_set_error(DC_ERR_SHAPE,
                     "conv_transpose2d: output size %lldx%lld is too small (x %s, weight %s, stride {%d, %d}, padding {%d, %d})",
                     (long long)g.h, (long long)g.w, dc_shape_str(x, sx, sizeof sx), dc_shape_str(weight, sw, sizeof sw),
                     g.sh, g.sw, g.ph, g.pw);
        return NULL;
    }
    const dc_backend *be = dc_backend_of(x);
    const struct dc_kernels_conv *k = conv_kernels(be, op);
    if (!k) return NULL;

    dc_tensor *xc, *wc, *bc;
    if (!contiguous_operands(x, weight, bias, &xc, &wc, &bc)) return NULL;
    dc_tensor *y = dc__new(DC_F32, DC_SHAPE(g.n, g.c, g.h, g.w), x->storage->device);
    dc_tensor *result = NULL;
    if (!y) goto done;
    if (k->conv2d_backward(&g, NULL, dc_data_f32(wc), dc_data_f32(xc), dc_data_f32(y), NULL, NULL) ||
        (bc && k->channel_bias_add(dc_data_f32(y), g.n, g.c, g.h * g.w, dc_data_f32(bc)))) {
        dc__discard(y);
        goto done;
    }
    dc_node *node = dc__record(y, op, conv_transpose2d_backward, n_in, ins);
    if (node) {
        geom_store(node, &g);
        dc__save(node, xc);
        dc__save(node, wc);
    }
    result = y;
done:
    release_operands(xc, wc, bc);
    return result;
}
