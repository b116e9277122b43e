/* ops/misc.c: dropout and embedding (deepc/ops.h, "misc"). Checks, outputs and autograd
 * here; the kernels in ../backend/kernels_misc.h. cat/stack/split/chunk live in concat.c,
 * scaled dot-product attention in attention.c. */
#include "../core/internal.h"
#include "../backend/kernels_misc.h"
#include "deepc/ops.h"

/* The CPU kernels are reached only through the backend table, whose reference to them is
 * weak; this strong reference makes linking these ops pull the kernels out of libdeepc.a. */
extern const struct dc_kernels_misc dc_cpu_misc_kernels;
const void *const dc__cpu_misc_anchor = &dc_cpu_misc_kernels;


static const struct dc_kernels_misc *misc_kernels(const dc_tensor *x, const char *op)
{
    const dc_backend *be = dc_backend_of(x);
    if (!be) return NULL;
    if (!be->misc) {
        dc_backend_missing(be, op);
        return NULL;
    }
    return be->misc;
}

/* ---------------------------------------------------------------------------------------
 * dropout
 * ------------------------------------------------------------------------------------- */

/* saved: mask (U8, 1 = kept); farg: scale = 1/(1-p).
 * y = x * mask * scale  =>  dx = dy * mask * scale. */
static dc_status dropout_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *mask = node->saved[0], *in = node->inputs[0];
    const struct dc_kernels_misc *k = misc_kernels(in, "dropout backward");
    if (!k) return dc_last_status();
    dc_tensor *g = dc__dense(grad_out), *d = dc__new(DC_F32, in->ndim, in->shape, in->storage->device);
    if (!g || !d) return dc_last_status();
    grad_in[0] = d;
    return k->dropout_backward(dc_data(g), dc_data(mask), dc_numel(in), (float)node->farg[0], dc_data(d));
}

dc_tensor *dc_dropout(dc_tensor *x, float p, bool training, dc_rng *rng)
{
    static const char *op = "dropout";
    if (!dc__check_inputs(op, 1, &x)) return NULL;
    if (dc__check_f32(op, x, "x")) return NULL;
    if (!(p >= 0.0f && p <= 1.0f)) {
        dc_set_error(DC_ERR_ARG, "dropout: probability has to be between 0 and 1, but got %g", p);
        return NULL;
    }
    /* eval (or nothing to drop): the identity, x itself, as PyTorch returns its input */
    if (!training || p == 0.0f) return dc__register(dc_tensor_retain(x));
    const struct dc_kernels_misc *k = misc_kernels(x, op);
    if (!k) return NULL;
    if (!rng) rng = dc_default_rng();
    /* p == 1 drops everything: scale 0 rather than 1/0, so the output and gradient are 0 */
    float scale = p == 1.0f ? 0.0f : 1.0f / (1.0f - p);
    uint64_t seed = dc_rng_u64(rng);
    dc_device dev = x->storage->device;
    dc_tensor *xc = dc__dense(x), *out = dc__new(DC_F32, x->ndim, x->shape, dev);
    dc_tensor *mask = dc__new(DC_U8, x->ndim, x->shape, dev);
    dc_status st = !xc || !out || !mask ? dc_last_status() : DC_OK;
    if (!st) st = k->dropout_forward(dc_data(xc), dc_data(out), dc_data(mask), dc_numel(x), p, scale, seed);
    if (!st) {
        dc_node *node = dc__record(out, op, dropout_backward, 1, &x);
        if (node) {
            dc__save(node, mask);
            node->farg[0] = scale;
        }
    }
    dc__discard(xc);
    dc__discard(mask);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* ---------------------------------------------------------------------------------------
 * embedding
 * ------------------------------------------------------------------------------------- */

/* saved: indices (contiguous). out[i, :] = weight[idx[i], :]  =>  dweight[r, :] is the sum
 * of dy[i, :] over every i with idx[i] == r (a scatter-add: an index can repeat). */
static dc_status embedding_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    if (!dc_node_wants(node, 0)) return DC_OK;
    dc_tensor *idx = node->saved[0], *w = node->inputs[0];
    const struct dc_kernels_misc *k = misc_kernels(w, "embedding backward");
    if (!k) return dc_last_status();
    dc_tensor *g = dc__dense(grad_out), *d = dc__new(DC_F32, 2, w->shape, w->storage->device);
    if (!g || !d) return dc_last_status();
    grad_in[0] = d;
    return k->embedding_backward(dc_data(g), dc_data(idx), idx->dtype, dc_numel(idx), w->shape[0],
                                 w->shape[1], dc_data(d));
}

dc_tensor *dc_embedding(dc_tensor *weight, dc_tensor *indices)
{
    static const char *op = "embedding";
    if (!dc__check_inputs(op, 2, (dc_tensor *[]){weight, indices})) return NULL;
    char sw[DC_SHAPE_STR_MAX], si[DC_SHAPE_STR_MAX];
    if (dc__check_f32(op, weight, "weight")) return NULL;
    if (weight->ndim != 2) {
        dc_set_error(DC_ERR_SHAPE, "embedding: weight must be [num, dim], got %s", dc_shape_str(weight, sw, sizeof sw));
        return NULL;
    }
    if (indices->dtype != DC_I64 && indices->dtype != DC_I32) {
        dc_set_error(DC_ERR_DTYPE, "embedding: indices must be I64 or I32, got %s", dc_dtype_name(indices->dtype));
        return NULL;
    }
    if (indices->ndim + 1 > DC_MAX_DIMS) {
        dc_set_error(DC_ERR_SHAPE, "embedding: indices %s have too many dims for a [..., dim] result",
                     dc_shape_str(indices, si, sizeof si));
        return NULL;
    }
    const struct dc_kernels_misc *k = misc_kernels(weight, op);
    if (!k) return NULL;
    int64_t shape[DC_MAX_DIMS];
    for (int i = 0; i < indices->ndim; i++) shape[i] = indices->shape[i];
    shape[indices->ndim] = weight->shape[1];
    dc_tensor *wc = dc__dense(weight), *ic = dc__dense(indices);
    dc_tensor *out = dc__new(DC_F32, indices->ndim + 1, shape, weight->storage->device);
    dc_status st = !wc || !ic || !out ? dc_last_status() : DC_OK;
    if (!st) {
        st = k->embedding_forward(dc_data(wc), weight->shape[0], weight->shape[1], dc_data(ic),
                                  ic->dtype, dc_numel(ic), dc_data(out));
        if (st) { /* name the shapes too: the kernel only knows the row count */
            char msg[256];
            snprintf(msg, sizeof msg, "%s", dc_last_error());
            dc_set_error(st, "%s (weight %s, indices %s)", msg, dc_shape_str(weight, sw, sizeof sw),
                         dc_shape_str(indices, si, sizeof si));
        }
    }
    if (!st) {
        dc_node *node = dc__record(out, op, embedding_backward, 1, &weight);
        if (node) dc__save(node, ic);
    }
    dc__discard(wc);
    dc__discard(ic);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}
