/* elementwise.c: broadcasting arithmetic (add, sub, mul, div, pow, maximum, minimum, scalar
 * forms), unary math (neg, exp, log, sqrt, rsqrt, abs, sin, cos, pow_scalar, clamp),
 * comparisons and selection (eq, gt/lt_scalar, where, masked_fill), the in-place helpers used
 * by autograd accumulation and optimizers (add_inplace_, axpy_, scale_), and the shared
 * op-layer helpers declared in backend/kernels_elementwise.h.
 *
 * Every op computes through the backend's elementwise `map` kernel with broadcast strides
 * (0 for broadcast dims), so broadcasting never materialises an expanded copy. Backward
 * passes of broadcasting ops sum the gradient back to each input's shape with
 * dc__reduce_to_shape.
 */
#include <math.h>

#include "deepc/ops.h"
#include "../core/internal.h"
#include "../backend/kernels_elementwise.h"

/* The CPU backend refers to its kernel groups weakly (an unwritten group is NULL), and a weak
 * reference does not pull an object out of the static library: this strong reference does,
 * since every program using elementwise ops links this file. */
extern const struct dc_kernels_elementwise dc_cpu_elementwise_kernels;
const void *const dc__cpu_elementwise_anchor = &dc_cpu_elementwise_kernels;

/* ---------------------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------------------- */

void dc__broadcast_strides(const dc_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        if (i < lead) {
            stride[i] = 0;
        } else {
            int j = i - lead;
            stride[i] = (t->shape[j] == 1 && shape[i] != 1) ? 0 : t->stride[j];
        }
    }
}

bool dc__ew_check(const char *name, int nin, dc_tensor *const *ins)
{
    if (!dc__check_inputs(name, nin, ins)) return false;
    for (int i = 0; i < nin; i++) {
        if (ins[i]->dtype != DC_F32) {
            dc_set_error(DC_ERR_DTYPE, "%s: input %d must be F32, got %s", name, i,
                         dc_dtype_name(ins[i]->dtype));
            return false;
        }
    }
    return true;
}

static const struct dc_kernels_elementwise *ew_kernels(const dc_tensor *t, const char *name)
{
    const dc_backend *be = dc_backend_of(t);
    if (!be) return NULL;
    if (!be->elementwise || !be->elementwise->map) {
        dc_backend_missing(be, name);
        return NULL;
    }
    return be->elementwise;
}

dc_tensor *dc__ew_apply(const char *name, dc_ew_op op, int nin, dc_tensor *const *ins,
                        dc_dtype out_dtype, const float *params)
{
    if (!dc__check_inputs(name, nin, ins)) return NULL;
    if (nin < 1 || nin > 4) {
        dc_set_error(DC_ERR_ARG, "%s: %d elementwise inputs (1 to 4 supported)", name, nin);
        return NULL;
    }
    int nd = ins[0]->ndim;
    int64_t shape[DC_MAX_DIMS];
    memcpy(shape, ins[0]->shape, sizeof(int64_t) * (size_t)nd);
    for (int i = 1; i < nin; i++) {
        int64_t tmp[DC_MAX_DIMS];
        int ntmp;
        if (ins[i]->ndim > DC_MAX_DIMS ||
            dc__broadcast_shapes(name, nd, shape, ins[i]->ndim, ins[i]->shape, &ntmp, tmp))
            return NULL;
        nd = ntmp;
        memcpy(shape, tmp, sizeof(int64_t) * (size_t)nd);
    }
    const struct dc_kernels_elementwise *k = ew_kernels(ins[0], name);
    if (!k) return NULL;
    dc_tensor *out = dc__new(out_dtype, nd, shape, ins[0]->storage->device);
    if (!out) return NULL;
    void *args[1 + 4];
    int64_t st[1 + 4][DC_MAX_DIMS];
    const int64_t *sp[1 + 4];
    args[0] = dc_data(out);
    memcpy(st[0], out->stride, sizeof(int64_t) * (size_t)nd);
    sp[0] = st[0];
    for (int i = 0; i < nin; i++) {
        args[1 + i] = dc_data(ins[i]);
        dc__broadcast_strides(ins[i], nd, shape, st[1 + i]);
        sp[1 + i] = st[1 + i];
    }
    float p[2] = {params ? params[0] : 0.0f, params ? params[1] : 0.0f};
    if (k->map(op, 1 + nin, args, sp, nd, shape, p)) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

void dc__save_output(dc_node *node, dc_tensor *out)
{
    if (!node) return;
    dc_tensor *alias = dc__view(out, out->ndim, out->shape, out->stride, out->offset);
    if (!alias) return;
    dc__save(node, alias);
    dc__discard(alias); /* the node holds its own reference now */
}

/* Wraps a tensor that was retained by someone else into the backward's pool as a borrowed
 * result (backward functions hand out borrowed tensors). */
static dc_tensor *borrow(dc_tensor *t) { return dc__register(dc_tensor_retain(t)); }

/* ---------------------------------------------------------------------------------------
 * Binary ops with broadcasting
 * ------------------------------------------------------------------------------------- */

/* out = a + alpha * b.  dL/da = sum_bcast(g),  dL/db = alpha * sum_bcast(g) */
static dc_status add_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *a = node->inputs[0], *b = node->inputs[1];
    float alpha[2] = {(float)node->farg[0], 0};
    if (dc_node_wants(node, 0) && !(gin[0] = dc__reduce_to_shape(g, a->ndim, a->shape)))
        return dc_last_status();
    if (dc_node_wants(node, 1)) {
        dc_tensor *gb = dc__reduce_to_shape(g, b->ndim, b->shape);
        if (gb && alpha[0] != 1.0f) gb = dc__ew_apply("add backward", DC_EW_MUL_SCALAR, 1, &gb, DC_F32, alpha);
        if (!(gin[1] = gb)) return dc_last_status();
    }
    return DC_OK;
}

/* out = a - b.  dL/da = sum_bcast(g),  dL/db = -sum_bcast(g) */
static dc_status sub_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *a = node->inputs[0], *b = node->inputs[1];
    if (dc_node_wants(node, 0) && !(gin[0] = dc__reduce_to_shape(g, a->ndim, a->shape)))
        return dc_last_status();
    if (dc_node_wants(node, 1)) {
        dc_tensor *gb = dc__reduce_to_shape(g, b->ndim, b->shape);
        if (gb) gb = dc__ew_apply("sub backward", DC_EW_NEG, 1, &gb, DC_F32, NULL);
        if (!(gin[1] = gb)) return dc_last_status();
    }
    return DC_OK;
}

/* Runs a backward formula over (g, ...) and sums it to input i's shape. */
static dc_status bcast_grad(dc_node *node, int i, const char *name, dc_ew_op op, int n,
                            dc_tensor *const *ins, const float *params, dc_tensor **gin)
{
    if (!dc_node_wants(node, i)) return DC_OK;
    dc_tensor *in = node->inputs[i];
    dc_tensor *full = dc__ew_apply(name, op, n, ins, DC_F32, params);
    if (full) gin[i] = dc__reduce_to_shape(full, in->ndim, in->shape);
    return gin[i] ? DC_OK : dc_last_status();
}

/* out = a * b.  dL/da = sum_bcast(g * b),  dL/db = sum_bcast(g * a) */
static dc_status mul_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *a = node->inputs[0], *b = node->inputs[1];
    dc_status st = bcast_grad(node, 0, "mul backward", DC_EW_MUL, 2, (dc_tensor *[]){g, b}, NULL, gin);
    if (!st) st = bcast_grad(node, 1, "mul backward", DC_EW_MUL, 2, (dc_tensor *[]){g, a}, NULL, gin);
    return st;
}

/* out = a / b.  dL/da = sum_bcast(g / b),  dL/db = sum_bcast(-g * ((a / b) / b)) */
static dc_status div_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *a = node->inputs[0], *b = node->inputs[1];
    dc_status st = bcast_grad(node, 0, "div backward", DC_EW_DIV, 2, (dc_tensor *[]){g, b}, NULL, gin);
    if (!st) st = bcast_grad(node, 1, "div backward", DC_EW_DIV_BWD_B, 3, (dc_tensor *[]){g, a, b}, NULL, gin);
    return st;
}

/* out = a^e.  dL/da = sum_bcast(g * e * a^(e-1)), 0 where e == 0;
 *             dL/de = sum_bcast(g * out * log(a)), 0 where a == 0 and e >= 0 (as PyTorch) */
static dc_status pow_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *a = node->inputs[0], *e = node->inputs[1], *out = node->saved[0];
    dc_status st = bcast_grad(node, 0, "pow backward", DC_EW_POW_BWD_A, 3, (dc_tensor *[]){g, a, e}, NULL, gin);
    if (!st) st = bcast_grad(node, 1, "pow backward", DC_EW_POW_BWD_E, 4, (dc_tensor *[]){g, a, e, out}, NULL, gin);
    return st;
}

/* maximum / minimum: the winner gets g, a tie splits g in halves (PyTorch's rule).
 *   maximum: dL/da = g where a > b, g/2 where a == b;  dL/db symmetric.  minimum likewise. */
static dc_status maxmin_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *a = node->inputs[0], *b = node->inputs[1];
    float p[2] = {(float)node->farg[0], 0};
    dc_status st = bcast_grad(node, 0, "maximum/minimum backward", DC_EW_MAXMIN_BWD, 3, (dc_tensor *[]){g, a, b}, p, gin);
    if (!st) st = bcast_grad(node, 1, "maximum/minimum backward", DC_EW_MAXMIN_BWD, 3, (dc_tensor *[]){g, b, a}, p, gin);
    return st;
}

static dc_tensor *binary(const char *name, dc_ew_op op, dc_tensor *a, dc_tensor *b, float param,
                         dc_backward_fn backward, bool save_out)
{
    dc_tensor *ins[2] = {a, b};
    if (!dc__ew_check(name, 2, ins)) return NULL;
    float p[2] = {param, 0};
    dc_tensor *out = dc__ew_apply(name, op, 2, ins, DC_F32, p);
    if (!out) return NULL;
    dc_node *node = dc__record(out, name, backward, 2, ins);
    if (node) {
        node->farg[0] = param;
        if (save_out) dc__save_output(node, out);
    }
    return out;
}

dc_tensor *dc_add_scaled(dc_tensor *a, dc_tensor *b, float alpha)
{
    return binary("add", DC_EW_ADD, a, b, alpha, add_backward, false);
}
dc_tensor *dc_add(dc_tensor *a, dc_tensor *b) { return dc_add_scaled(a, b, 1.0f); }
dc_tensor *dc_sub(dc_tensor *a, dc_tensor *b) { return binary("sub", DC_EW_SUB, a, b, 0, sub_backward, false); }
dc_tensor *dc_mul(dc_tensor *a, dc_tensor *b) { return binary("mul", DC_EW_MUL, a, b, 0, mul_backward, false); }
dc_tensor *dc_div(dc_tensor *a, dc_tensor *b) { return binary("div", DC_EW_DIV, a, b, 0, div_backward, false); }
dc_tensor *dc_pow(dc_tensor *a, dc_tensor *e) { return binary("pow", DC_EW_POW, a, e, 0, pow_backward, true); }
dc_tensor *dc_maximum(dc_tensor *a, dc_tensor *b)
{
    return binary("maximum", DC_EW_MAXIMUM, a, b, 1.0f, maxmin_backward, false);
}
dc_tensor *dc_minimum(dc_tensor *a, dc_tensor *b)
{
    return binary("minimum", DC_EW_MINIMUM, a, b, -1.0f, maxmin_backward, false);
}

/* ---------------------------------------------------------------------------------------
 * Unary ops
 * ------------------------------------------------------------------------------------- */

/* Generic unary backward: gx = bwd_op(g, x or out) with the forward's params. */
static dc_status unary_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *src = node->iarg[1] ? node->saved[0] : node->inputs[0];
    float p[2] = {(float)node->farg[0], (float)node->farg[1]};
    gin[0] = dc__ew_apply(node->op, (dc_ew_op)node->iarg[0], 2, (dc_tensor *[]){g, src}, DC_F32, p);
    return gin[0] ? DC_OK : dc_last_status();
}

/* Records out = op(x) for unary_backward (no-op when nothing needs grad); returns out. */
static dc_tensor *record_unary(dc_tensor *out, const char *name, dc_tensor *x, const float *params,
                               dc_ew_op bwd_op, bool use_out)
{
    dc_node *node = dc__record(out, name, unary_backward, 1, &x);
    if (node) {
        node->iarg[0] = bwd_op;
        node->iarg[1] = use_out;
        node->farg[0] = params ? params[0] : 0.0;
        node->farg[1] = params ? params[1] : 0.0;
        if (use_out) dc__save_output(node, out);
    }
    return out;
}

dc_tensor *dc__ew_unary(const char *name, dc_ew_op op, dc_tensor *x, const float *params,
                        dc_ew_op bwd_op, bool use_out)
{
    if (!dc__ew_check(name, 1, &x)) return NULL;
    dc_tensor *out = dc__ew_apply(name, op, 1, &x, DC_F32, params);
    return out ? record_unary(out, name, x, params, bwd_op, use_out) : NULL;
}

/* In place is safe only when x's old values have no other reader: x is a contiguous F32
 * tensor held by a single reference (no graph node keeps it as an input, so no backward
 * reads it) and its storage by x alone, apart from tensors an earlier in-place op already
 * overwrote (so add_ then relu_ chain; any view, or a producer that saved its output,
 * blocks it). The caller gives up x's values by asking for in place, as with PyTorch's
 * inplace=True. */
static bool can_overwrite(const dc_tensor *x)
{
    const dc_storage *s = x->storage;
    return x->dtype == DC_F32 && !x->overwritten && dc_is_contiguous(x) &&
           __atomic_load_n(&x->refcount, __ATOMIC_ACQUIRE) == 1 &&
           __atomic_load_n(&s->refcount, __ATOMIC_ACQUIRE) - __atomic_load_n(&s->overwritten_refs, __ATOMIC_ACQUIRE) == 1;
}

/* PyTorch refuses in-place ops on leaves that require grad: their values are the parameters. */
static bool check_not_grad_leaf(const char *name, const dc_tensor *x)
{
    if (x->requires_grad && !x->grad_fn && dc_grad_enabled()) {
        dc_set_error(DC_ERR_STATE, "%s: a leaf tensor that requires grad cannot be modified in place", name);
        return false;
    }
    return true;
}

/* out = op(x) or op(x, b) (b broadcast to x's shape) written into x's buffer; returns out,
 * a view of that buffer, and marks x overwritten: x stays only as the graph's edge to its
 * producer. The caller has checked can_overwrite(x) and records the node on out. */
static dc_tensor *overwrite(const char *name, dc_ew_op op, dc_tensor *x, dc_tensor *b, const float p[2])
{
    const struct dc_kernels_elementwise *k = ew_kernels(x, name);
    if (!k) return NULL;
    dc_tensor *out = dc__view(x, x->ndim, x->shape, x->stride, x->offset);
    if (!out) return NULL;
    int64_t sb[DC_MAX_DIMS];
    void *args[3] = {dc_data(out), dc_data(x), b ? dc_data(b) : NULL};
    const int64_t *sp[3] = {out->stride, x->stride, sb};
    if (b) dc__broadcast_strides(b, x->ndim, x->shape, sb);
    if (k->map(op, b ? 3 : 2, args, sp, x->ndim, x->shape, p)) {
        dc__discard(out);
        return NULL;
    }
    x->overwritten = true;
    __atomic_add_fetch(&x->storage->overwritten_refs, 1, __ATOMIC_ACQ_REL);
    return out;
}

/* a + b written into a's buffer (b broadcast to a's shape), recorded as dc_add */
dc_tensor *dc_add_(dc_tensor *a, dc_tensor *b)
{
    dc_tensor *ins[2] = {a, b};
    if (!dc__ew_check("add_", 2, ins) || !check_not_grad_leaf("add_", a)) return NULL;
    int nd;
    int64_t shape[DC_MAX_DIMS];
    if (b->ndim > DC_MAX_DIMS || dc__broadcast_shapes("add_", a->ndim, a->shape, b->ndim, b->shape, &nd, shape))
        return NULL;
    if (nd != a->ndim || memcmp(shape, a->shape, sizeof(int64_t) * (size_t)nd) || !can_overwrite(a))
        return dc_add(a, b);
    dc_tensor *out = overwrite("add_", DC_EW_ADD, a, b, (const float[2]){1.0f, 0.0f});
    if (!out) return NULL;
    dc_node *node = dc__record(out, "add_", add_backward, 2, ins);
    if (node) node->farg[0] = 1.0;
    return out;
}

dc_tensor *dc__ew_unary_inplace(const char *name, dc_ew_op op, dc_tensor *x, const float *params,
                                dc_ew_op bwd_op)
{
    if (!dc__ew_check(name, 1, &x) || !check_not_grad_leaf(name, x)) return NULL;
    if (!can_overwrite(x)) return dc__ew_unary(name, op, x, params, bwd_op, true);
    float p[2] = {params ? params[0] : 0.0f, params ? params[1] : 0.0f};
    dc_tensor *out = overwrite(name, op, x, NULL, p);
    return out ? record_unary(out, name, x, params, bwd_op, true) : NULL;
}

/* x + s: dL/dx = g */
static dc_status identity_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (dc_node_wants(node, 0)) gin[0] = borrow(g);
    return DC_OK;
}

/* s * x: dL/dx = s * g;  -x: dL/dx = -g (s = -1) */
static dc_status scale_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    float p[2] = {(float)node->farg[0], 0};
    gin[0] = dc__ew_apply(node->op, p[0] == -1.0f ? DC_EW_NEG : DC_EW_MUL_SCALAR, 1, &g, DC_F32, p);
    return gin[0] ? DC_OK : dc_last_status();
}

static dc_tensor *scalar_op(const char *name, dc_ew_op op, dc_tensor *x, float s,
                            dc_backward_fn backward, float bwd_scale)
{
    if (!dc__ew_check(name, 1, &x)) return NULL;
    float p[2] = {s, 0};
    dc_tensor *out = dc__ew_apply(name, op, 1, &x, DC_F32, p);
    if (!out) return NULL;
    dc_node *node = dc__record(out, name, backward, 1, &x);
    if (node) node->farg[0] = bwd_scale;
    return out;
}

dc_tensor *dc_add_scalar(dc_tensor *a, float s)
{
    return scalar_op("add_scalar", DC_EW_ADD_SCALAR, a, s, identity_backward, 1.0f);
}
dc_tensor *dc_mul_scalar(dc_tensor *a, float s)
{
    return scalar_op("mul_scalar", DC_EW_MUL_SCALAR, a, s, scale_backward, s);
}
dc_tensor *dc_neg(dc_tensor *a) { return scalar_op("neg", DC_EW_NEG, a, 0, scale_backward, -1.0f); }

/* exp: dL/dx = g * out */
dc_tensor *dc_exp(dc_tensor *a) { return dc__ew_unary("exp", DC_EW_EXP, a, NULL, DC_EW_EXP_BWD, true); }
/* log: dL/dx = g / x */
dc_tensor *dc_log(dc_tensor *a) { return dc__ew_unary("log", DC_EW_LOG, a, NULL, DC_EW_LOG_BWD, false); }
/* sqrt: dL/dx = g / (2 out) */
dc_tensor *dc_sqrt(dc_tensor *a) { return dc__ew_unary("sqrt", DC_EW_SQRT, a, NULL, DC_EW_SQRT_BWD, true); }
/* rsqrt: dL/dx = -0.5 g out^3 */
dc_tensor *dc_rsqrt(dc_tensor *a) { return dc__ew_unary("rsqrt", DC_EW_RSQRT, a, NULL, DC_EW_RSQRT_BWD, true); }
/* abs: dL/dx = g sgn(x) (0 at 0) */
dc_tensor *dc_abs(dc_tensor *a) { return dc__ew_unary("abs", DC_EW_ABS, a, NULL, DC_EW_ABS_BWD, false); }
/* sin: dL/dx = g cos(x);  cos: dL/dx = -g sin(x) */
dc_tensor *dc_sin(dc_tensor *a) { return dc__ew_unary("sin", DC_EW_SIN, a, NULL, DC_EW_SIN_BWD, false); }
dc_tensor *dc_cos(dc_tensor *a) { return dc__ew_unary("cos", DC_EW_COS, a, NULL, DC_EW_COS_BWD, false); }
/* pow_scalar: dL/dx = g p x^(p-1), 0 when p == 0 */
dc_tensor *dc_pow_scalar(dc_tensor *a, float exponent)
{
    float p[2] = {exponent, 0};
    return dc__ew_unary("pow_scalar", DC_EW_POW_SCALAR, a, p, DC_EW_POW_SCALAR_BWD, false);
}
/* clamp: dL/dx = g where lo <= x <= hi, else 0 */
dc_tensor *dc_clamp(dc_tensor *a, float lo, float hi)
{
    float p[2] = {lo, hi};
    return dc__ew_unary("clamp", DC_EW_CLAMP, a, p, DC_EW_CLAMP_BWD, false);
}

/* ---------------------------------------------------------------------------------------
 * Comparisons and selection
 * ------------------------------------------------------------------------------------- */

dc_tensor *dc_eq(dc_tensor *a, dc_tensor *b)
{
    dc_tensor *ins[2] = {a, b};
    if (!dc__ew_check("eq", 2, ins)) return NULL;
    return dc__ew_apply("eq", DC_EW_EQ, 2, ins, DC_BOOL, NULL);
}

dc_tensor *dc_gt_scalar(dc_tensor *a, float s)
{
    if (!dc__ew_check("gt_scalar", 1, &a)) return NULL;
    return dc__ew_apply("gt_scalar", DC_EW_GT_SCALAR, 1, &a, DC_BOOL, (float[]){s, 0});
}

dc_tensor *dc_lt_scalar(dc_tensor *a, float s)
{
    if (!dc__ew_check("lt_scalar", 1, &a)) return NULL;
    return dc__ew_apply("lt_scalar", DC_EW_LT_SCALAR, 1, &a, DC_BOOL, (float[]){s, 0});
}

static dc_status check_mask(const char *name, const dc_tensor *m, const char *what)
{
    if (m->dtype != DC_BOOL && m->dtype != DC_U8)
        return dc_set_error(DC_ERR_DTYPE, "%s: %s must be BOOL or U8, got %s", name, what,
                            dc_dtype_name(m->dtype));
    return DC_OK;
}

/* out = cond ? a : b.  dL/da = sum_bcast(cond ? g : 0),  dL/db = sum_bcast(cond ? 0 : g) */
static dc_status where_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    dc_tensor *cond = node->inputs[0];
    dc_status st = DC_OK;
    if (dc_node_wants(node, 1)) {
        dc_tensor *zero = dc__new_zeros(DC_F32, 0, NULL, g->storage->device);
        if (!zero) return dc_last_status();
        st = bcast_grad(node, 1, "where backward", DC_EW_WHERE, 3, (dc_tensor *[]){cond, g, zero}, NULL, gin);
        dc__discard(zero);
    }
    if (!st) st = bcast_grad(node, 2, "where backward", DC_EW_WHERE_NOT, 2, (dc_tensor *[]){cond, g}, NULL, gin);
    return st;
}

dc_tensor *dc_where(dc_tensor *cond, dc_tensor *a, dc_tensor *b)
{
    dc_tensor *ins[3] = {cond, a, b};
    if (!dc__check_inputs("where", 3, ins)) return NULL;
    if (check_mask("where", cond, "cond") || dc__check_f32("where", a, "a") ||
        dc__check_f32("where", b, "b"))
        return NULL;
    dc_tensor *out = dc__ew_apply("where", DC_EW_WHERE, 3, ins, DC_F32, NULL);
    if (!out) return NULL;
    dc__record(out, "where", where_backward, 3, ins);
    return out;
}

/* out = mask ? value : x.  dL/dx = mask ? 0 : g */
static dc_status masked_fill_backward(dc_node *node, dc_tensor *g, dc_tensor **gin)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    gin[0] = dc__ew_apply("masked_fill backward", DC_EW_WHERE_NOT, 2,
                          (dc_tensor *[]){node->inputs[1], g}, DC_F32, NULL);
    return gin[0] ? DC_OK : dc_last_status();
}

dc_tensor *dc_masked_fill(dc_tensor *x, dc_tensor *mask, float value)
{
    dc_tensor *ins[2] = {x, mask};
    if (!dc__check_inputs("masked_fill", 2, ins)) return NULL;
    if (dc__check_f32("masked_fill", x, "x") || check_mask("masked_fill", mask, "mask")) return NULL;
    int nd;
    int64_t shape[DC_MAX_DIMS];
    if (dc__broadcast_shapes("masked_fill", x->ndim, x->shape, mask->ndim, mask->shape, &nd, shape))
        return NULL;
    if (nd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char sx[DC_SHAPE_STR_MAX], sm[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "masked_fill: mask %s does not broadcast to x %s",
                     dc_shape_str(mask, sm, sizeof sm), dc_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    dc_tensor *fill = dc__new(DC_F32, 0, NULL, x->storage->device);
    if (!fill) return NULL;
    dc_status st = dc_fill_(fill, value);
    dc_tensor *out = st ? NULL : dc__ew_apply("masked_fill", DC_EW_WHERE, 3, (dc_tensor *[]){mask, fill, x}, DC_F32, NULL);
    dc__discard(fill);
    if (!out) return NULL;
    dc__record(out, "masked_fill", masked_fill_backward, 2, ins);
    return out;
}

/* ---------------------------------------------------------------------------------------
 * In-place helpers (not recorded by autograd)
 * ------------------------------------------------------------------------------------- */

static dc_status null_status(const char *name)
{
    if (dc_last_status() == DC_OK) dc_set_error(DC_ERR_ARG, "%s: NULL tensor", name);
    return dc_last_status();
}

dc_status dc_axpy_(dc_tensor *dst, float alpha, const dc_tensor *src)
{
    const char *name = "axpy_";
    if (!dst || !src) return null_status(name);
    if (dc__check_f32(name, dst, "dst") || dc__check_f32(name, src, "src") ||
        dc__check_same_device(name, dst, src))
        return dc_last_status();
    int nd;
    int64_t shape[DC_MAX_DIMS];
    if (dc__broadcast_shapes(name, dst->ndim, dst->shape, src->ndim, src->shape, &nd, shape))
        return dc_last_status();
    if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "%s: src %s does not broadcast to dst %s", name,
                            dc_shape_str(src, b, sizeof b), dc_shape_str(dst, a, sizeof a));
    }
    const struct dc_kernels_elementwise *k = ew_kernels(dst, name);
    if (!k) return dc_last_status();
    int64_t ss[DC_MAX_DIMS];
    dc__broadcast_strides(src, nd, shape, ss);
    void *args[3] = {dc_data(dst), dc_data(dst), dc_data(src)};
    const int64_t *sp[3] = {dst->stride, dst->stride, ss};
    return k->map(DC_EW_ADD, 3, args, sp, nd, shape, (float[]){alpha, 0});
}

dc_status dc_add_inplace_(dc_tensor *dst, const dc_tensor *src) { return dc_axpy_(dst, 1.0f, src); }

dc_status dc_scale_(dc_tensor *dst, float alpha)
{
    if (!dst) return null_status("scale_");
    if (dc__check_f32("scale_", dst, "dst")) return dc_last_status();
    const struct dc_kernels_elementwise *k = ew_kernels(dst, "scale_");
    if (!k) return dc_last_status();
    void *args[2] = {dc_data(dst), dc_data(dst)};
    const int64_t *sp[2] = {dst->stride, dst->stride};
    return k->map(DC_EW_MUL_SCALAR, 2, args, sp, dst->ndim, dst->shape, (float[]){alpha, 0});
}
