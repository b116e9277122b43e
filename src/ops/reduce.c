/* reduce.c: reductions (sum, mean, sum_all, mean_all, var, max/min with indices, max_all,
 * argmax, logsumexp) and gather, with their backward passes.
 *
 * The op layer turns "x reduced over these dims" into the kernel's two-sided description
 * (kept dims and reduced dims, each with x's own strides), so reductions read views
 * (transposes, narrows) in place without a contiguous copy.
 */
#include <math.h>

#include "deepc/ops.h"
#include "../core/internal.h"
#include "../backend/kernels_elementwise.h"
#include "../backend/kernels_reduce.h"

/* a strong reference that links the CPU reduce kernels (see ops/elementwise.c) */
extern const struct dc_kernels_reduce dc_cpu_reduce_kernels;
const void *const dc__cpu_reduce_anchor = &dc_cpu_reduce_kernels;

static const struct dc_kernels_reduce *red_kernels(const dc_tensor *t, const char *name)
{
    const dc_backend *be = dc_backend_of(t);
    if (!be) return NULL;
    if (!be->reduce || !be->reduce->reduce) {
        dc_backend_missing(be, name);
        return NULL;
    }
    return be->reduce;
}

/* Marks the reduced dims of x. n_dims == 0 means all. A 0-dim tensor takes dim 0 / -1 and
 * reduces nothing (as PyTorch). */
static dc_status parse_dims(const char *name, const dc_tensor *x, int n_dims, const int *dims,
                            bool *reduced)
{
    for (int i = 0; i < DC_MAX_DIMS; i++) reduced[i] = false;
    if (n_dims < 0 || (n_dims > 0 && !dims))
        return dc_set_error(DC_ERR_ARG, "%s: bad dim list (n_dims = %d)", name, n_dims);
    if (n_dims == 0) {
        for (int i = 0; i < x->ndim; i++) reduced[i] = true;
        return DC_OK;
    }
    for (int j = 0; j < n_dims; j++) {
        int d;
        if (dc__wrap_dim(name, dims[j], x->ndim, &d)) return dc_last_status();
        if (x->ndim == 0) continue;
        if (reduced[d])
            return dc_set_error(DC_ERR_ARG, "%s: dim %d appears multiple times in the list of dims", name, d);
        reduced[d] = true;
    }
    return DC_OK;
}

/* Output shape (keepdim or not) and the keepdim shape. */
static int out_shape(const dc_tensor *x, const bool *reduced, bool keepdim, int64_t *shape,
                     int64_t *kd_shape)
{
    int n = 0;
    for (int i = 0; i < x->ndim; i++) {
        kd_shape[i] = reduced[i] ? 1 : x->shape[i];
        if (!reduced[i]) shape[n++] = x->shape[i];
        else if (keepdim) shape[n++] = 1;
    }
    return n;
}

/* Runs a reduction kernel: returns the F32 result (and the I64 indices if idx_out). */
static dc_tensor *run_reduce(const char *name, dc_reduce_op op, dc_tensor *x, const bool *reduced,
                             bool keepdim, double param, dc_tensor **idx_out)
{
    const struct dc_kernels_reduce *k = red_kernels(x, name);
    if (!k) return NULL;
    int64_t ksh[DC_MAX_DIMS], kst[DC_MAX_DIMS], rsh[DC_MAX_DIMS], rst[DC_MAX_DIMS];
    int nk = 0, nr = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (reduced[i]) {
            rsh[nr] = x->shape[i];
            rst[nr++] = x->stride[i];
        } else {
            ksh[nk] = x->shape[i];
            kst[nk++] = x->stride[i];
        }
    }
    if ((op == DC_RED_MAX || op == DC_RED_MIN) && dc__shape_numel(nr, rsh) == 0 &&
        dc__shape_numel(nk, ksh) != 0) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "%s: cannot reduce over an empty dim of a tensor of shape %s",
                     name, dc_shape_str(x, s, sizeof s));
        return NULL;
    }
    int64_t shape[DC_MAX_DIMS], kd[DC_MAX_DIMS];
    int n = out_shape(x, reduced, keepdim, shape, kd);
    dc_tensor *out = dc__new(DC_F32, n, shape, x->storage->device);
    dc_tensor *idx = idx_out ? dc__new(DC_I64, n, shape, x->storage->device) : NULL;
    if (!out || (idx_out && !idx)) goto fail;
    if (k->reduce(op, dc_data(out), idx ? dc_data(idx) : NULL, dc_data(x), nk, ksh, kst, nr, rsh,
                  rst, param))
        goto fail;
    if (idx_out) *idx_out = idx;
    return out;
fail:
    if (out) dc__discard(out);
    if (idx) dc__discard(idx);
    return NULL;
}

/* A view of g (the reduction result, keepdim or not) with x's rank: size 1 at reduced dims. */
static dc_tensor *keepdim_view(dc_tensor *g, const dc_tensor *x, const bool *reduced, bool keepdim)
{
    int64_t shape[DC_MAX_DIMS], stride[DC_MAX_DIMS];
    int j = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (reduced[i]) {
            shape[i] = 1;
            stride[i] = 0;
            if (keepdim) j++;
        } else {
            shape[i] = g->shape[j];
            stride[i] = g->stride[j++];
        }
    }
    return dc__view(g, x->ndim, shape, stride, g->offset);
}

/* gx = scale * g broadcast back over the reduced dims (contiguous, x's shape) */
static dc_tensor *expand_grad(const char *name, dc_tensor *g, const dc_tensor *x, const bool *reduced,
                              bool keepdim, float scale)
{
    dc_tensor *gv = keepdim_view(g, x, reduced, keepdim);
    if (!gv) return NULL;
    const dc_backend *be = dc_backend_of(x);
    dc_tensor *out = dc__new(DC_F32, x->ndim, x->shape, x->storage->device);
    if (!out) return NULL;
    int64_t gs[DC_MAX_DIMS];
    dc__broadcast_strides(gv, x->ndim, x->shape, gs);
    void *args[2] = {dc_data(out), dc_data(gv)};
    const int64_t *sp[2] = {out->stride, gs};
    if (!be->elementwise || !be->elementwise->map) {
        dc_backend_missing(be, name);
        return NULL;
    }
    if (be->elementwise->map(scale == 1.0f ? DC_EW_COPY : DC_EW_MUL_SCALAR, 2, args, sp, x->ndim,
                             x->shape, (float[]){scale, 0}))
        return NULL;
    return out;
}

/* The reduced dims live in a node as a bitmask in iarg[0], keepdim in iarg[1]. */
static void save_dims(dc_node *node, const bool *reduced, bool keepdim)
{
    int64_t mask = 0;
    for (int i = 0; i < DC_MAX_DIMS; i++)
        if (reduced[i]) mask |= (int64_t)1 << i;
    node->iarg[0] = mask;
    node->iarg[1] = keepdim;
}

static void load_dims(const dc_node *node, bool *reduced, bool *keepdim)
{
    for (int i = 0; i < DC_MAX_DIMS; i++) reduced[i] = (node->iarg[0] >> i) & 1;
    *keepdim = node->iarg[1] != 0;
}

static int64_t reduced_count(const dc_tensor *x, const bool *reduced)
{
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++)
        if (reduced[i]) n *= x->shape[i];
    return n;
}

/* ---------------------------------------------------------------------------------------
 * sum / mean
 * ------------------------------------------------------------------------------------- */

/* sum:  dL/dx = g broadcast over the reduced dims
 * mean: dL/dx = g / count broadcast over the reduced dims (count = reduced elements) */
static dc_status sum_mean_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *x = node->inputs[0];
    bool reduced[DC_MAX_DIMS], keepdim;
    load_dims(node, reduced, &keepdim);
    float scale = (float)node->farg[0];
    gin[0] = expand_grad(node->op, g, x, reduced, keepdim, scale);
    return gin[0] ? DC_OK : dc_last_status();
}

static dc_tensor *sum_or_mean(const char *name, dc_reduce_op op, dc_tensor *x, int n_dims,
                              const int *dims, bool keepdim)
{
    if (!dc__ew_check(name, 1, &x)) return NULL;
    bool reduced[DC_MAX_DIMS];
    if (parse_dims(name, x, n_dims, dims, reduced)) return NULL;
    dc_tensor *out = run_reduce(name, op, x, reduced, keepdim, 0.0, NULL);
    if (!out) return NULL;
    dc_node *node = dc__record(out, name, sum_mean_backward, 1, &x);
    if (node) {
        save_dims(node, reduced, keepdim);
        node->farg[0] = op == DC_RED_MEAN ? 1.0 / (double)reduced_count(x, reduced) : 1.0;
    }
    return out;
}

dc_tensor *dc_sum(dc_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return sum_or_mean("sum", DC_RED_SUM, x, n_dims, dims, keepdim);
}
dc_tensor *dc_mean(dc_tensor *x, int n_dims, const int *dims, bool keepdim)
{
    return sum_or_mean("mean", DC_RED_MEAN, x, n_dims, dims, keepdim);
}
dc_tensor *dc_sum_all(dc_tensor *x) { return sum_or_mean("sum_all", DC_RED_SUM, x, 0, NULL, false); }
dc_tensor *dc_mean_all(dc_tensor *x) { return sum_or_mean("mean_all", DC_RED_MEAN, x, 0, NULL, false); }

/* ---------------------------------------------------------------------------------------
 * var
 * ------------------------------------------------------------------------------------- */

/* var = sum (x - mean)^2 / (count - correction)
 * dL/dx = (2 / (count - correction)) g (x - mean), g and mean broadcast over the reduced dims */
static dc_status var_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *x = node->inputs[0];
    bool reduced[DC_MAX_DIMS], keepdim;
    load_dims(node, reduced, &keepdim);
    dc_tensor *mean = run_reduce("var backward", DC_RED_MEAN, x, reduced, true, 0.0, NULL);
    dc_tensor *gv = keepdim_view(g, x, reduced, keepdim);
    if (!mean || !gv) return dc_last_status();
    float p[2] = {(float)node->farg[0], 0};
    gin[0] = dc__ew_apply("var backward", DC_EW_VAR_BWD, 3, (dc_tensor *[]){gv, x, mean}, DC_F32, p);
    return gin[0] ? DC_OK : dc_last_status();
}

dc_tensor *dc_var(dc_tensor *x, int n_dims, const int *dims, bool unbiased, bool keepdim)
{
    if (!dc__ew_check("var", 1, &x)) return NULL;
    bool reduced[DC_MAX_DIMS];
    if (parse_dims("var", x, n_dims, dims, reduced)) return NULL;
    double correction = unbiased ? 1.0 : 0.0;
    dc_tensor *out = run_reduce("var", DC_RED_VAR, x, reduced, keepdim, correction, NULL);
    if (!out) return NULL;
    dc_node *node = dc__record(out, "var", var_backward, 1, &x);
    if (node) {
        save_dims(node, reduced, keepdim);
        double denom = fmax((double)reduced_count(x, reduced) - correction, 0.0);
        node->farg[0] = 2.0 / denom;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * max / min / argmax / max_all
 * ------------------------------------------------------------------------------------- */

/* max/min over dim: dL/dx = g at the chosen index along dim, 0 elsewhere */
static dc_status select_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *x = node->inputs[0], *idx = node->saved[0];
    int dim = (int)node->iarg[2];
    bool reduced[DC_MAX_DIMS], keepdim;
    load_dims(node, reduced, &keepdim);
    const dc_backend *be = dc_backend_of(x);
    /* g in contiguous layout (its keepdim geometry has the same memory order) */
    dc_tensor *gc = dc_is_contiguous(g) ? g : dc__ew_apply(node->op, DC_EW_COPY, 1, &g, DC_F32, NULL);
    dc_tensor *gx = dc__new_zeros(DC_F32, x->ndim, x->shape, x->storage->device);
    if (!gc || !gx) return dc_last_status();
    int64_t kd[DC_MAX_DIMS], ist[DC_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) kd[i] = reduced[i] ? 1 : x->shape[i];
    dc__contiguous_strides(x->ndim, kd, ist);
    if (be->reduce->scatter_add(dc_data(gx), gx->stride, dc_data(gc), dc_data(idx), ist, x->ndim, kd,
                                dim))
        return dc_last_status();
    gin[0] = gx;
    return DC_OK;
}

static dc_tensor *max_min(const char *name, dc_reduce_op op, dc_tensor *x, int dim, bool keepdim,
                          dc_tensor **indices, bool record)
{
    if (indices) *indices = NULL;
    if (!dc__ew_check(name, 1, &x)) return NULL;
    bool reduced[DC_MAX_DIMS];
    if (parse_dims(name, x, 1, &dim, reduced)) return NULL;
    int d = 0;
    dc__wrap_dim(name, dim, x->ndim, &d);
    dc_tensor *idx = NULL;
    dc_tensor *out = run_reduce(name, op, x, reduced, keepdim, 0.0, &idx);
    if (!out) return NULL;
    if (!record) {
        dc__discard(out);
        if (indices) *indices = idx;
        return idx;
    }
    dc_node *node = dc__record(out, name, select_backward, 1, &x);
    if (node) {
        save_dims(node, reduced, keepdim);
        node->iarg[2] = x->ndim ? d : 0;
        dc__save(node, idx);
    }
    if (indices) *indices = idx;
    else dc__discard(idx);
    return out;
}

dc_tensor *dc_max(dc_tensor *x, int dim, bool keepdim, dc_tensor **indices)
{
    return max_min("max", DC_RED_MAX, x, dim, keepdim, indices, true);
}
dc_tensor *dc_min(dc_tensor *x, int dim, bool keepdim, dc_tensor **indices)
{
    return max_min("min", DC_RED_MIN, x, dim, keepdim, indices, true);
}
dc_tensor *dc_argmax(dc_tensor *x, int dim, bool keepdim)
{
    return max_min("argmax", DC_RED_MAX, x, dim, keepdim, NULL, false);
}

/* max over everything: PyTorch splits the gradient evenly between tied maxima:
 *   dL/dx = g / count(x == max) where x == max, 0 elsewhere */
static dc_status max_all_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *x = node->inputs[0], *out = node->saved[0];
    dc_tensor *mask = dc__ew_apply("max_all backward", DC_EW_EQ, 2, (dc_tensor *[]){x, out}, DC_BOOL, NULL);
    dc_tensor *maskf = mask ? dc_to_dtype(mask, DC_F32) : NULL;
    dc_tensor *count = maskf ? dc_sum_all(maskf) : NULL;
    dc_tensor *share = count ? dc__ew_apply("max_all backward", DC_EW_DIV, 2, (dc_tensor *[]){g, count}, DC_F32, NULL) : NULL;
    gin[0] = share ? dc__ew_apply("max_all backward", DC_EW_MUL, 2, (dc_tensor *[]){maskf, share}, DC_F32, NULL) : NULL;
    return gin[0] ? DC_OK : dc_last_status();
}

dc_tensor *dc_max_all(dc_tensor *x)
{
    if (!dc__ew_check("max_all", 1, &x)) return NULL;
    if (dc_numel(x) == 0) {
        dc_set_error(DC_ERR_SHAPE, "max_all: the tensor has no elements");
        return NULL;
    }
    bool reduced[DC_MAX_DIMS];
    parse_dims("max_all", x, 0, NULL, reduced);
    dc_tensor *out = run_reduce("max_all", DC_RED_MAX, x, reduced, false, 0.0, NULL);
    if (!out) return NULL;
    dc_node *node = dc__record(out, "max_all", max_all_backward, 1, &x);
    if (node) dc__save_output(node, out);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * logsumexp
 * ------------------------------------------------------------------------------------- */

/* out = log sum exp(x):  dL/dx = g exp(x - out), g and out broadcast over dim */
static dc_status logsumexp_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *x = node->inputs[0], *out = node->saved[0];
    bool reduced[DC_MAX_DIMS], keepdim;
    load_dims(node, reduced, &keepdim);
    dc_tensor *gv = keepdim_view(g, x, reduced, keepdim);
    dc_tensor *ov = keepdim_view(out, x, reduced, keepdim);
    if (!gv || !ov) return dc_last_status();
    gin[0] = dc__ew_apply("logsumexp backward", DC_EW_EXP_DIFF_MUL, 3, (dc_tensor *[]){gv, x, ov}, DC_F32, NULL);
    return gin[0] ? DC_OK : dc_last_status();
}

dc_tensor *dc_logsumexp(dc_tensor *x, int dim, bool keepdim)
{
    if (!dc__ew_check("logsumexp", 1, &x)) return NULL;
    bool reduced[DC_MAX_DIMS];
    if (parse_dims("logsumexp", x, 1, &dim, reduced)) return NULL;
    dc_tensor *out = run_reduce("logsumexp", DC_RED_LOGSUMEXP, x, reduced, keepdim, 0.0, NULL);
    if (!out) return NULL;
    dc_node *node = dc__record(out, "logsumexp", logsumexp_backward, 1, &x);
    if (node) {
        save_dims(node, reduced, keepdim);
        dc__save_output(node, out);
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * gather
 * ------------------------------------------------------------------------------------- */

/* out[i] = x[i with dim -> index[i]]:  dL/dx = scatter_add of g at the same positions */
static dc_status gather_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *x = node->inputs[0], *index = node->inputs[1];
    int dim = (int)node->iarg[0];
    dc_tensor *gc = dc_is_contiguous(g) ? g : dc__ew_apply("gather backward", DC_EW_COPY, 1, &g, DC_F32, NULL);
    dc_tensor *gx = dc__new_zeros(DC_F32, x->ndim, x->shape, x->storage->device);
    if (!gc || !gx) return dc_last_status();
    if (dc_backend_of(x)->reduce->scatter_add(dc_data(gx), gx->stride, dc_data(gc), dc_data(index),
                                              index->stride, index->ndim, index->shape, dim))
        return dc_last_status();
    gin[0] = gx;
    return DC_OK;
}

dc_tensor *dc_gather(dc_tensor *x, int dim, dc_tensor *index)
{
    dc_tensor *ins[2] = {x, index};
    if (!dc__check_inputs("gather", 2, ins)) return NULL;
    if (dc__check_f32("gather", x, "x")) return NULL;
    if (index->dtype != DC_I64) {
        dc_set_error(DC_ERR_DTYPE, "gather: index must be I64, got %s", dc_dtype_name(index->dtype));
        return NULL;
    }
    char sx[DC_SHAPE_STR_MAX], si[DC_SHAPE_STR_MAX];
    if (index->ndim != x->ndim) {
        dc_set_error(DC_ERR_SHAPE, "gather: index %s and x %s must have the same number of dims",
                     dc_shape_str(index, si, sizeof si), dc_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    int d;
    if (dc__wrap_dim("gather", dim, x->ndim, &d)) return NULL;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d && index->shape[i] > x->shape[i]) {
            dc_set_error(DC_ERR_SHAPE, "gather: index %s is larger than x %s at dim %d (gathering along dim %d)",
                         dc_shape_str(index, si, sizeof si), dc_shape_str(x, sx, sizeof sx), i, d);
            return NULL;
        }
    }
    const struct dc_kernels_reduce *k = red_kernels(x, "gather");
    if (!k) return NULL;
    dc_tensor *out = dc__new(DC_F32, index->ndim, index->shape, x->storage->device);
    if (!out) return NULL;
    int64_t dim_size = x->ndim ? x->shape[d] : 1;
    if (k->gather(dc_data(out), dc_data(x), x->stride, dim_size, dc_data(index), index->stride,
                  index->ndim, index->shape, d)) {
        dc__discard(out);
        return NULL;
    }
    dc_node *node = dc__record(out, "gather", gather_backward, 2, ins);
    if (node) node->iarg[0] = d;
    return out;
}
