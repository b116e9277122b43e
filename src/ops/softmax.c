/* softmax.c: softmax and log_softmax over any dim, with backward.
 *
 * The kernel works on a contiguous [outer, n, inner] block (n = the softmax dim), so a
 * strided input is copied to contiguous first (rare: softmax inputs are usually fresh
 * results). The forward subtracts the row max before exp, so large logits do not overflow.
 */
#include "deepc/ops.h"
#include "../core/internal.h"
#include "../backend/kernels_elementwise.h"
#include "../backend/kernels_reduce.h"

/* A contiguous F32 tensor with t's values (t itself, re-registered, when already
 * contiguous); records no grad. */
static dc_tensor *contig(dc_tensor *t, const char *name)
{
    if (dc_is_contiguous(t)) return dc__register(dc_tensor_retain(t));
    return dc__ew_apply(name, DC_EW_COPY, 1, &t, DC_F32, NULL);
}

static void split_dims(const dc_tensor *x, int d, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *n = *inner = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (i < d) *outer *= x->shape[i];
        else if (i == d) *n = x->shape[i];
        else *inner *= x->shape[i];
    }
}

/* softmax:     dL/dx = y (g - sum_dim(g y))
 * log_softmax: dL/dx = g - exp(y) sum_dim(g)          (y = the forward output) */
static dc_status softmax_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *y = node->saved[0];
    bool log_ = node->iarg[1] != 0;
    int64_t outer, n, inner;
    split_dims(y, (int)node->iarg[0], &outer, &n, &inner);
    dc_tensor *gc = contig(g, node->op);
    dc_tensor *gx = dc__new(DC_F32, y->ndim, y->shape, y->storage->device);
    if (!gc || !gx) return dc_last_status();
    if (dc_backend_of(y)->reduce->softmax_backward(dc_data(gx), dc_data(gc), dc_data(y), outer, n,
                                                   inner, log_))
        return dc_last_status();
    gin[0] = gx;
    return DC_OK;
}

static dc_tensor *softmax_impl(const char *name, dc_tensor *x, int dim, bool log_)
{
    if (!dc__ew_check(name, 1, &x)) return NULL;
    int d;
    if (dc__wrap_dim(name, dim, x->ndim, &d)) return NULL;
    const dc_backend *be = dc_backend_of(x);
    if (!be) return NULL;
    if (!be->reduce || !be->reduce->softmax) {
        dc_backend_missing(be, name);
        return NULL;
    }
    dc_tensor *xc = contig(x, name);
    if (!xc) return NULL;
    dc_tensor *out = dc__new(DC_F32, x->ndim, x->shape, x->storage->device);
    int64_t outer, n, inner;
    split_dims(x, x->ndim ? d : 0, &outer, &n, &inner);
    dc_status st = out ? be->reduce->softmax(dc_data(out), dc_data(xc), outer, n, inner, log_) : dc_last_status();
    dc__discard(xc);
    if (st) {
        if (out) dc__discard(out);
        return NULL;
    }
    dc_node *node = dc__record(out, name, softmax_backward, 1, &x);
    if (node) {
        node->iarg[0] = x->ndim ? d : 0;
        node->iarg[1] = log_;
        dc__save_output(node, out);
    }
    return out;
}

dc_tensor *dc_softmax(dc_tensor *x, int dim) { return softmax_impl("softmax", x, dim, false); }
dc_tensor *dc_log_softmax(dc_tensor *x, int dim) { return softmax_impl("log_softmax", x, dim, true); }
