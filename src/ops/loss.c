/* ops/loss.c: the losses of deepc/ops.h: cross-entropy (log-softmax fused in, with
 * ignore_index and label smoothing as PyTorch), NLL and MSE. Shape checks, outputs and
 * autograd here; the arithmetic in ../backend/kernels_loss.h. */
#include <math.h>

#include "../core/internal.h"
#include "../backend/kernels_loss.h"
#include "deepc/ops.h"

/* The CPU kernels are reached only through the backend table, whose reference to them is
 * weak; this strong reference makes linking these ops pull the kernels out of libdeepc.a. */
extern const struct dc_kernels_loss dc_cpu_loss_kernels;
const void *const dc__cpu_loss_anchor = &dc_cpu_loss_kernels;
/* broadcast gradients are summed by dc__reduce_to_shape, which runs on the reduce kernels */
extern const struct dc_kernels_reduce dc_cpu_reduce_kernels;
const void *const dc__cpu_reduce_anchor_loss = &dc_cpu_reduce_kernels;


static const struct dc_kernels_loss *loss_kernels(const dc_tensor *x, const char *op)
{
    const dc_backend *be = dc_backend_of(x);
    if (!be) return NULL;
    if (!be->loss) {
        dc_backend_missing(be, op);
        return NULL;
    }
    return be->loss;
}

static dc_status check_reduction(const char *op, dc_reduction r)
{
    if (r != DC_REDUCE_MEAN && r != DC_REDUCE_SUM && r != DC_REDUCE_NONE)
        return dc_set_error(DC_ERR_ARG, "%s: unknown reduction %d", op, (int)r);
    return DC_OK;
}

/* The upstream gradient of a loss as the kernels take it: a contiguous tensor read with
 * stride 1 (reduction none) or 0 (one value), and the scale (1/count for a mean). */
static dc_tensor *loss_grad(dc_tensor *grad_out, dc_reduction r, int64_t count, int64_t *stride,
                            float *scale)
{
    *stride = r == DC_REDUCE_NONE ? 1 : 0;
    /* a mean over no positions has no gradient to give: 0 (the kernels also write 0 at
     * every ignored position) */
    *scale = r == DC_REDUCE_MEAN ? (count ? 1.0f / (float)count : 0.0f) : 1.0f;
    return dc__dense(grad_out);
}

/* ---------------------------------------------------------------------------------------
 * Class-indexed inputs: logits / log_probs [N, C, d...] or [C], target [N, d...] or []
 * ------------------------------------------------------------------------------------- */

typedef struct class_geom {
    int64_t n, c, s;
} class_geom;

static dc_status check_class_input(const char *op, const dc_tensor *x, const dc_tensor *target,
                                   const char *xname, class_geom *g)
{
    char sx[DC_SHAPE_STR_MAX], st[DC_SHAPE_STR_MAX], se[DC_SHAPE_STR_MAX];
    if (dc__check_f32(op, x, xname)) return dc_last_status();
    if (dc__check_same_device(op, x, target)) return dc_last_status();
    if (target->dtype != DC_I64 && target->dtype != DC_I32)
        return dc_set_error(DC_ERR_DTYPE, "%s: target must hold class indices (I64 or I32), got %s",
                            op, dc_dtype_name(target->dtype));
    if (x->ndim < 1)
        return dc_set_error(DC_ERR_SHAPE, "%s: %s must be [N, C, ...] or [C], got a 0-d tensor", op, xname);
    int64_t expect[DC_MAX_DIMS];
    int ne = 0;
    if (x->ndim == 1) {
        g->n = 1;
        g->c = x->shape[0];
        g->s = 1;
    } else {
        g->n = x->shape[0];
        g->c = x->shape[1];
        g->s = dc__shape_numel(x->ndim - 2, x->shape + 2);
        expect[ne++] = x->shape[0];
        for (int i = 2; i < x->ndim; i++) expect[ne++] = x->shape[i];
    }
    bool ok = target->ndim == ne;
    for (int i = 0; ok && i < ne; i++) ok = target->shape[i] == expect[i];
    if (!ok)
        return dc_set_error(DC_ERR_SHAPE, "%s: target %s does not fit %s %s (expected target %s)", op,
                            dc_shape_str(target, st, sizeof st), xname, dc_shape_str(x, sx, sizeof sx),
                            dc__shape_fmt(ne, expect, se, sizeof se));
    if (g->c < 1 && g->n * g->s > 0)
        return dc_set_error(DC_ERR_SHAPE, "%s: %s %s has no classes", op, xname, dc_shape_str(x, sx, sizeof sx));
    return DC_OK;
}

/* target as contiguous I64 */
static dc_tensor *dense_i64(dc_tensor *target)
{
    return target->dtype == DC_I64 ? dc__dense(target) : dc_to_dtype(target, DC_I64);
}

/* The loss output: target-shaped for reduction none, else 0-d. */
static dc_tensor *loss_out(const dc_tensor *target, dc_reduction r, dc_device dev)
{
    return r == DC_REDUCE_NONE ? dc__new(DC_F32, target->ndim, target->shape, dev)
                               : dc__new(DC_F32, 0, NULL, dev);
}

/* ---------------------------------------------------------------------------------------
 * cross_entropy
 * ------------------------------------------------------------------------------------- */

/* saved: logits (contiguous), target (I64), lse; iarg: n, c, s, ignore_index, reduction,
 * count; farg: label_smoothing. The math is in the kernel's comment (cpu/loss.c). */
static dc_status cross_entropy_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *logits = node->saved[0], *target = node->saved[1], *lse = node->saved[2];
    const struct dc_kernels_loss *k = loss_kernels(logits, "cross_entropy backward");
    if (!k) return dc_last_status();
    int64_t stride;
    float scale;
    dc_tensor *g = loss_grad(grad_out, (dc_reduction)node->iarg[4], node->iarg[5], &stride, &scale);
    dc_tensor *in = node->inputs[0];
    dc_tensor *d = dc__new(DC_F32, in->ndim, in->shape, in->storage->device);
    if (!g || !d) return dc_last_status();
    grad_in[0] = d;
    return k->cross_entropy_backward(dc_data(logits), dc_data(target), dc_data(lse), node->iarg[0],
                                     node->iarg[1], node->iarg[2], node->iarg[3],
                                     (float)node->farg[0], dc_data(g), stride, scale, dc_data(d));
}

dc_tensor *dc_cross_entropy(dc_tensor *logits, dc_tensor *target, dc_reduction reduction,
                            int64_t ignore_index, float label_smoothing)
{
    static const char *op = "cross_entropy";
    if (!dc__check_inputs(op, 2, (dc_tensor *[]){logits, target})) return NULL;
    class_geom g;
    if (check_class_input(op, logits, target, "logits", &g) || check_reduction(op, reduction))
        return NULL;
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f)) {
        dc_set_error(DC_ERR_ARG, "cross_entropy: label_smoothing must be in [0, 1], got %g", label_smoothing);
        return NULL;
    }
    const struct dc_kernels_loss *k = loss_kernels(logits, op);
    if (!k) return NULL;
    dc_device dev = logits->storage->device;
    int64_t m = g.n * g.s;
    dc_tensor *lc = dc__dense(logits), *tc = dense_i64(target);
    dc_tensor *out = loss_out(target, reduction, dev);
    dc_tensor *losses = reduction == DC_REDUCE_NONE ? out : dc__new(DC_F32, 1, &m, dev);
    dc_tensor *lse = dc__new(DC_F32, 1, &m, dev);
    dc_status st = !lc || !tc || !out || !losses || !lse ? dc_last_status() : DC_OK;
    int64_t count = 0;
    if (!st)
        st = k->cross_entropy_forward(dc_data(lc), dc_data(tc), g.n, g.c, g.s, ignore_index,
                                      label_smoothing, reduction, dc_data(losses), dc_data(lse),
                                      reduction == DC_REDUCE_NONE ? NULL : dc_data(out), &count);
    if (!st) {
        dc_node *node = dc__record(out, op, cross_entropy_backward, 1, &logits);
        if (node) {
            dc__save(node, lc);
            dc__save(node, tc);
            dc__save(node, lse);
            node->iarg[0] = g.n;
            node->iarg[1] = g.c;
            node->iarg[2] = g.s;
            node->iarg[3] = ignore_index;
            node->iarg[4] = reduction;
            node->iarg[5] = count;
            node->farg[0] = label_smoothing;
        }
    }
    dc__discard(lc);
    dc__discard(tc);
    dc__discard(lse);
    if (losses != out) dc__discard(losses);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * nll_loss
 * ------------------------------------------------------------------------------------- */

/* saved: target (I64); iarg: n, c, s, ignore_index, reduction, count.
 * loss = -log_probs[t]  =>  d/d log_probs = -g at the target class, 0 elsewhere. */
static dc_status nll_loss_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *target = node->saved[0], *in = node->inputs[0];
    const struct dc_kernels_loss *k = loss_kernels(in, "nll_loss backward");
    if (!k) return dc_last_status();
    int64_t stride;
    float scale;
    dc_tensor *g = loss_grad(grad_out, (dc_reduction)node->iarg[4], node->iarg[5], &stride, &scale);
    dc_tensor *d = dc__new(DC_F32, in->ndim, in->shape, in->storage->device);
    if (!g || !d) return dc_last_status();
    grad_in[0] = d;
    return k->nll_loss_backward(dc_data(target), node->iarg[0], node->iarg[1], node->iarg[2],
                                node->iarg[3], dc_data(g), stride, scale, dc_data(d));
}

dc_tensor *dc_nll_loss(dc_tensor *log_probs, dc_tensor *target, dc_reduction reduction,
                       int64_t ignore_index)
{
    static const char *op = "nll_loss";
    if (!dc__check_inputs(op, 2, (dc_tensor *[]){log_probs, target})) return NULL;
    class_geom g;
    if (check_class_input(op, log_probs, target, "log_probs", &g) || check_reduction(op, reduction))
        return NULL;
    const struct dc_kernels_loss *k = loss_kernels(log_probs, op);
    if (!k) return NULL;
    dc_device dev = log_probs->storage->device;
    int64_t m = g.n * g.s;
    dc_tensor *lc = dc__dense(log_probs), *tc = dense_i64(target);
    dc_tensor *out = loss_out(target, reduction, dev);
    dc_tensor *losses = reduction == DC_REDUCE_NONE ? out : dc__new(DC_F32, 1, &m, dev);
    dc_status st = !lc || !tc || !out || !losses ? dc_last_status() : DC_OK;
    int64_t count = 0;
    if (!st)
        st = k->nll_loss_forward(dc_data(lc), dc_data(tc), g.n, g.c, g.s, ignore_index, reduction,
                                 dc_data(losses), reduction == DC_REDUCE_NONE ? NULL : dc_data(out),
                                 &count);
    if (!st) {
        dc_node *node = dc__record(out, op, nll_loss_backward, 1, &log_probs);
        if (node) {
            dc__save(node, tc);
            node->iarg[0] = g.n;
            node->iarg[1] = g.c;
            node->iarg[2] = g.s;
            node->iarg[3] = ignore_index;
            node->iarg[4] = reduction;
            node->iarg[5] = count;
        }
    }
    dc__discard(lc);
    dc__discard(tc);
    if (losses != out) dc__discard(losses);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * mse_loss
 * ------------------------------------------------------------------------------------- */

/* input and target broadcast to one shape (as PyTorch, which warns but broadcasts):
 * a contiguous copy of t expanded to (ndim, shape), or t itself when it already has it */
static dc_tensor *dense_expanded(dc_tensor *t, int ndim, const int64_t *shape)
{
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same) return dc__dense(t);
    int64_t stride[DC_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int ti = i - (ndim - t->ndim);
        stride[i] = ti < 0 || t->shape[ti] == 1 ? 0 : t->stride[ti];
    }
    dc_tensor *c = dc__new(DC_F32, ndim, shape, t->storage->device);
    if (!c) return NULL;
    if (dc_backend_of(t)->copy_strided(dc_data(c), DC_F32, c->stride, dc_data(t), t->dtype, stride,
                                       ndim, shape)) {
        dc__discard(c);
        return NULL;
    }
    return c;
}

/* saved: a, b (broadcast, contiguous); iarg: reduction, n.
 * loss_i = (a_i - b_i)^2  =>  da_i = 2 (a_i - b_i) g_i, db_i = -da_i, each then summed over
 * the dims its input was broadcast along. */
static dc_status mse_loss_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    dc_tensor *a = node->saved[0], *b = node->saved[1];
    const struct dc_kernels_loss *k = loss_kernels(a, "mse_loss backward");
    if (!k) return dc_last_status();
    int64_t stride;
    float scale;
    dc_tensor *g = loss_grad(grad_out, (dc_reduction)node->iarg[0], node->iarg[1], &stride, &scale);
    if (!g) return dc_last_status();
    dc_tensor *da = NULL, *db = NULL;
    if (dc_node_wants(node, 0) && !(da = dc__new(DC_F32, a->ndim, a->shape, a->storage->device)))
        return dc_last_status();
    if (dc_node_wants(node, 1) && !(db = dc__new(DC_F32, a->ndim, a->shape, a->storage->device)))
        return dc_last_status();
    dc_status st = k->mse_backward(dc_data(a), dc_data(b), dc_numel(a), dc_data(g), stride, scale,
                                   da ? dc_data(da) : NULL, db ? dc_data(db) : NULL);
    if (st) return st;
    for (int i = 0; i < 2; i++) {
        dc_tensor *d = i ? db : da, *in = node->inputs[i];
        if (!d) continue;
        grad_in[i] = dc_same_shape(d, in) ? d : dc__reduce_to_shape(d, in->ndim, in->shape);
        if (!grad_in[i]) return dc_last_status();
    }
    return DC_OK;
}

dc_tensor *dc_mse_loss(dc_tensor *input, dc_tensor *target, dc_reduction reduction)
{
    static const char *op = "mse_loss";
    if (!dc__check_inputs(op, 2, (dc_tensor *[]){input, target})) return NULL;
    if (dc__check_f32(op, input, "input") || dc__check_f32(op, target, "target") ||
        check_reduction(op, reduction))
        return NULL;
    int nd;
    int64_t shape[DC_MAX_DIMS];
    if (dc__broadcast_shapes(op, input->ndim, input->shape, target->ndim, target->shape, &nd, shape))
        return NULL;
    const struct dc_kernels_loss *k = loss_kernels(input, op);
    if (!k) return NULL;
    dc_device dev = input->storage->device;
    dc_tensor *a = dense_expanded(input, nd, shape), *b = dense_expanded(target, nd, shape);
    dc_tensor *out = reduction == DC_REDUCE_NONE ? dc__new(DC_F32, nd, shape, dev) : dc__new(DC_F32, 0, NULL, dev);
    dc_status st = !a || !b || !out ? dc_last_status() : DC_OK;
    int64_t n = dc__shape_numel(nd, shape);
    if (!st)
        st = k->mse_forward(dc_data(a), dc_data(b), n, reduction,
                            reduction == DC_REDUCE_NONE ? dc_data(out) : NULL,
                            reduction == DC_REDUCE_NONE ? NULL : dc_data(out));
    if (!st) {
        dc_node *node = dc__record(out, op, mse_loss_backward, 2, (dc_tensor *[]){input, target});
        if (node) {
            dc__save(node, a);
            dc__save(node, b);
            node->iarg[0] = reduction;
            node->iarg[1] = n;
        }
    }
    dc__discard(a);
    dc__discard(b);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}
