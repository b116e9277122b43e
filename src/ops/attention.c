/* ops/attention.c: scaled dot-product attention (deepc/ops.h, "misc").
 *
 *   P = softmax(scale * Q K^T + mask, causal),  out = P V
 *
 * Forward is two batched GEMMs (backend gemm_batched) around one fused kernel that adds the
 * mask, applies the causal rule and takes the softmax in place; P is kept for backward,
 * which is four batched GEMMs around one fused softmax-backward kernel. Long causal
 * sequences run the GEMMs in row blocks that skip the masked upper triangle. Leading (batch)
 * dims of q, k, v and the mask broadcast as in torch.matmul; the mask is read in place
 * through per-batch offsets, never expanded. */
#include "../core/internal.h"
#include "../backend/kernels_misc.h"
#include "deepc/ops.h"

/* The CPU kernels are reached only through the backend table, whose reference to them is
 * weak; this strong reference makes linking these ops pull the kernels out of libdeepc.a. */
extern const struct dc_kernels_misc dc_cpu_misc_kernels;
const void *const dc__cpu_misc_anchor_sdpa = &dc_cpu_misc_kernels;
/* broadcast gradients are summed by dc__reduce_to_shape, which runs on the reduce kernels */
extern const struct dc_kernels_reduce dc_cpu_reduce_kernels;
const void *const dc__cpu_reduce_anchor_sdpa = &dc_cpu_reduce_kernels;

#include <math.h>


/* t ([b..., r, c]) broadcast to batch dims (nb, batch) + its own last two dims, contiguous:
 * t itself when its batch dims are already those, else an expanded copy */
static dc_tensor *dense_batched(dc_tensor *t, int nb, const int64_t *batch)
{
    int nd = nb + 2;
    int64_t shape[DC_MAX_DIMS], stride[DC_MAX_DIMS];
    bool same = t->ndim == nd;
    for (int i = 0; i < nb; i++) {
        int ti = i - (nd - t->ndim);
        shape[i] = batch[i];
        stride[i] = ti < 0 || t->shape[ti] == 1 ? 0 : t->stride[ti];
        same = same && t->shape[ti] == batch[i];
    }
    if (same) return dc__dense(t);
    for (int i = nb; i < nd; i++) {
        shape[i] = t->shape[t->ndim - (nd - i)];
        stride[i] = t->stride[t->ndim - (nd - i)];
    }
    dc_tensor *c = dc__new(DC_F32, nd, shape, t->storage->device);
    if (!c) return NULL;
    if (dc_backend_of(t)->copy_strided(dc_data(c), DC_F32, c->stride, dc_data(t), t->dtype, stride,
                                       nd, shape)) {
        dc__discard(c);
        return NULL;
    }
    return c;
}

/* A gradient computed at the broadcast shape, summed down to the input's own shape. */
static dc_tensor *to_input_shape(dc_tensor *g, const dc_tensor *in)
{
    return dc_same_shape(g, in) ? g : dc__reduce_to_shape(g, in->ndim, in->shape);
}

/* node layout */
enum { IN_Q, IN_K, IN_V, IN_MASK };
enum { SV_Q, SV_K, SV_V, SV_P };
enum { IA_B, IA_L, IA_S, IA_E, IA_EV, IA_NB, IA_BATCH0 }; /* batch dims from IA_BATCH0 */
enum { IA_CAUSAL = 14 };

/* Causal attention in row blocks: rows [i0, i1) attend only to columns [0, min(S, i1)), so
 * each GEMM is restricted to those columns and about half the work of a long causal
 * sequence is skipped. Short sequences use one block (the plain GEMMs). */
#define CAUSAL_BLOCK 128

static int64_t n_row_blocks(bool causal, int64_t L)
{
    return causal && L > CAUSAL_BLOCK ? (L + CAUSAL_BLOCK - 1) / CAUSAL_BLOCK : 1;
}

/* rows [*i0, *i1) of block rb and the columns they can see */
static int64_t block_rows(int64_t rb, int64_t nblk, int64_t L, int64_t S, bool causal,
                          int64_t *i0, int64_t *i1)
{
    *i0 = nblk == 1 ? 0 : rb * CAUSAL_BLOCK;
    *i1 = nblk == 1 ? L : DC_MIN(L, *i0 + CAUSAL_BLOCK);
    return causal ? DC_MIN(S, *i1) : S;
}

/* Backward, per batch, with dO the gradient of out and s the scale:
 *   dV = P^T dO
 *   dP = dO V^T
 *   dZ = P * (dP - rowsum(dP * P))     (softmax backward; Z = s Q K^T + mask)
 *   dQ = s dZ K,   dK = s dZ^T Q,   dmask = dZ (summed over its broadcast dims).
 * Masked positions have P = 0, hence dZ = 0 there. */
static dc_status sdpa_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    dc_tensor *q = node->saved[SV_Q], *k = node->saved[SV_K], *v = node->saved[SV_V];
    dc_tensor *p = node->saved[SV_P];
    const dc_backend *be = dc_backend_of(q);
    const struct dc_kernels_misc *km = be ? be->misc : NULL;
    if (!km) return dc_backend_missing(be, "scaled_dot_product_attention backward");
    const int64_t B = node->iarg[IA_B], L = node->iarg[IA_L], S = node->iarg[IA_S];
    const int64_t E = node->iarg[IA_E], Ev = node->iarg[IA_EV];
    const int nb = (int)node->iarg[IA_NB];
    const float scale = (float)node->farg[0];
    bool want_q = dc_node_wants(node, IN_Q), want_k = dc_node_wants(node, IN_K);
    bool want_v = dc_node_wants(node, IN_V), want_m = dc_node_wants(node, IN_MASK);
    dc_device dev = q->storage->device;
    int64_t shape[DC_MAX_DIMS];
    for (int i = 0; i < nb; i++) shape[i] = node->iarg[IA_BATCH0 + i];

    const bool causal = node->iarg[IA_CAUSAL] != 0;
    const int64_t nblk = n_row_blocks(causal, L);
    dc_tensor *g = dc__dense(grad_out);
    if (!g) return dc_last_status();
    const float *pp = dc_data(p), *gp = dc_data(g), *qp = dc_data(q), *kp = dc_data(k), *vp = dc_data(v);
    dc_status st;
    int64_t i0, i1, nc;
    if (want_v) {
        /* dV[:nc] += P[i0:i1, :nc]^T dO[i0:i1] over row blocks */
        shape[nb] = S;
        shape[nb + 1] = Ev;
        dc_tensor *dv = causal ? dc__new_zeros(DC_F32, nb + 2, shape, dev) : dc__new(DC_F32, nb + 2, shape, dev);
        if (!dv) return dc_last_status();
        for (int64_t rb = 0; rb < nblk; rb++) {
            nc = block_rows(rb, nblk, L, S, causal, &i0, &i1);
            if ((st = be->gemm_batched(DC_TRANS, DC_NO_TRANS, B, nc, Ev, i1 - i0, 1.0f, pp + i0 * S, S, L * S,
                                       gp + i0 * Ev, Ev, L * Ev, causal ? 1.0f : 0.0f, dc_data(dv), Ev, S * Ev)))
                return st;
        }
        if (!(grad_in[IN_V] = to_input_shape(dv, node->inputs[IN_V]))) return dc_last_status();
    }
    if (!want_q && !want_k && !want_m) return DC_OK;
    shape[nb] = L;
    shape[nb + 1] = S;
    /* causal GEMMs leave the columns a row cannot see unwritten: they must read as 0 (and
     * dV, dK accumulate over the row blocks) */
    dc_tensor *dz = causal ? dc__new_zeros(DC_F32, nb + 2, shape, dev) : dc__new(DC_F32, nb + 2, shape, dev);
    if (!dz) return dc_last_status();
    float *zp = dc_data(dz);
    for (int64_t rb = 0; rb < nblk; rb++) {
        nc = block_rows(rb, nblk, L, S, causal, &i0, &i1);
        if ((st = be->gemm_batched(DC_NO_TRANS, DC_TRANS, B, i1 - i0, nc, Ev, 1.0f, gp + i0 * Ev, Ev, L * Ev,
                                   vp, Ev, S * Ev, 0.0f, zp + i0 * S, S, L * S)))
            return st;
    }
    if ((st = km->attn_softmax_backward(pp, zp, B, L, S))) return st;
    if (want_q) {
        shape[nb] = L;
        shape[nb + 1] = E;
        dc_tensor *dq = dc__new(DC_F32, nb + 2, shape, dev);
        if (!dq) return dc_last_status();
        for (int64_t rb = 0; rb < nblk; rb++) {
            nc = block_rows(rb, nblk, L, S, causal, &i0, &i1);
            if ((st = be->gemm_batched(DC_NO_TRANS, DC_NO_TRANS, B, i1 - i0, E, nc, scale, zp + i0 * S, S, L * S,
                                       kp, E, S * E, 0.0f, (float *)dc_data(dq) + i0 * E, E, L * E)))
                return st;
        }
        if (!(grad_in[IN_Q] = to_input_shape(dq, node->inputs[IN_Q]))) return dc_last_status();
    }
    if (want_k) {
        shape[nb] = S;
        shape[nb + 1] = E;
        dc_tensor *dk = causal ? dc__new_zeros(DC_F32, nb + 2, shape, dev) : dc__new(DC_F32, nb + 2, shape, dev);
        if (!dk) return dc_last_status();
        for (int64_t rb = 0; rb < nblk; rb++) {
            nc = block_rows(rb, nblk, L, S, causal, &i0, &i1);
            if ((st = be->gemm_batched(DC_TRANS, DC_NO_TRANS, B, nc, E, i1 - i0, scale, zp + i0 * S, S, L * S,
                                       qp + i0 * E, E, L * E, causal ? 1.0f : 0.0f, dc_data(dk), E, S * E)))
                return st;
        }
        if (!(grad_in[IN_K] = to_input_shape(dk, node->inputs[IN_K]))) return dc_last_status();
    }
    if (want_m && !(grad_in[IN_MASK] = to_input_shape(dz, node->inputs[IN_MASK])))
        return dc_last_status();
    return DC_OK;
}

dc_tensor *dc_scaled_dot_product_attention(dc_tensor *q, dc_tensor *k, dc_tensor *v,
                                           dc_tensor *mask, bool is_causal, float scale)
{
    static const char *op = "scaled_dot_product_attention";
    if (!dc__check_inputs(op, 3, (dc_tensor *[]){q, k, v})) return NULL;
    if (dc__check_f32(op, q, "q") || dc__check_f32(op, k, "k") || dc__check_f32(op, v, "v"))
        return NULL;
    char sq[DC_SHAPE_STR_MAX], sk[DC_SHAPE_STR_MAX], sv[DC_SHAPE_STR_MAX], sm[DC_SHAPE_STR_MAX];
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2 || q->shape[q->ndim - 1] != k->shape[k->ndim - 1] ||
        k->shape[k->ndim - 2] != v->shape[v->ndim - 2]) {
        dc_set_error(DC_ERR_SHAPE, "%s: expected q [..., L, E], k [..., S, E], v [..., S, Ev], got q %s, k %s, v %s",
                     op, dc_shape_str(q, sq, sizeof sq), dc_shape_str(k, sk, sizeof sk),
                     dc_shape_str(v, sv, sizeof sv));
        return NULL;
    }
    if (mask) {
        if (!dc__check_inputs(op, 2, (dc_tensor *[]){q, mask})) return NULL;
        if (mask->dtype != DC_BOOL && mask->dtype != DC_U8 && mask->dtype != DC_F32) {
            dc_set_error(DC_ERR_DTYPE, "%s: mask must be BOOL (true = keep) or F32 (added), got %s",
                         op, dc_dtype_name(mask->dtype));
            return NULL;
        }
    }
    const int64_t L = q->shape[q->ndim - 2], E = q->shape[q->ndim - 1];
    const int64_t S = k->shape[k->ndim - 2], Ev = v->shape[v->ndim - 1];
    /* batch dims: q's, k's and v's leading dims broadcast together */
    int nb = 0, n2;
    int64_t batch[DC_MAX_DIMS], tmp[DC_MAX_DIMS];
    if (dc__broadcast_shapes(op, q->ndim - 2, q->shape, k->ndim - 2, k->shape, &nb, batch) ||
        dc__broadcast_shapes(op, nb, batch, v->ndim - 2, v->shape, &n2, tmp))
        return NULL;
    nb = n2;
    memcpy(batch, tmp, sizeof tmp);
    if (nb + 2 > DC_MAX_DIMS) {
        dc_set_error(DC_ERR_SHAPE, "%s: too many batch dims", op);
        return NULL;
    }
    const int64_t B = dc__shape_numel(nb, batch);
    /* the mask must broadcast to [batch..., L, S] */
    int64_t full[DC_MAX_DIMS];
    for (int i = 0; i < nb; i++) full[i] = batch[i];
    full[nb] = L;
    full[nb + 1] = S;
    int64_t mstride[DC_MAX_DIMS] = {0};
    if (mask) {
        bool ok = mask->ndim <= nb + 2;
        for (int i = 0; ok && i < mask->ndim; i++) {
            int fi = nb + 2 - mask->ndim + i;
            ok = mask->shape[i] == 1 || mask->shape[i] == full[fi];
            mstride[fi] = mask->shape[i] == 1 ? 0 : mask->stride[i];
        }
        if (!ok) {
            char sf[DC_SHAPE_STR_MAX];
            dc_set_error(DC_ERR_SHAPE, "%s: mask %s does not broadcast to the scores [..., L, S] = %s (q %s, k %s)",
                         op, dc_shape_str(mask, sm, sizeof sm), dc__shape_fmt(nb + 2, full, sf, sizeof sf),
                         dc_shape_str(q, sq, sizeof sq), dc_shape_str(k, sk, sizeof sk));
            return NULL;
        }
    }
    const dc_backend *be = dc_backend_of(q);
    if (!be) return NULL;
    if (!be->misc) {
        dc_backend_missing(be, op);
        return NULL;
    }
    if (!(scale > 0)) scale = E > 0 ? 1.0f / sqrtf((float)E) : 1.0f;

    dc_device dev = q->storage->device;
    dc_tensor *qc = dense_batched(q, nb, batch), *kc = dense_batched(k, nb, batch);
    dc_tensor *vc = dense_batched(v, nb, batch);
    dc_tensor *p = dc__new(DC_F32, nb + 2, full, dev);
    int64_t oshape[DC_MAX_DIMS];
    memcpy(oshape, full, sizeof oshape);
    oshape[nb + 1] = Ev;
    dc_tensor *out = dc__new(DC_F32, nb + 2, oshape, dev);
    int64_t *moff = mask ? dc__malloc((size_t)DC_MAX(B, 1) * sizeof *moff) : NULL;
    dc_status st = !qc || !kc || !vc || !p || !out || (mask && !moff) ? dc_last_status() : DC_OK;
    if (!st && mask) {
        /* element offset of each batch's [L, S] mask plane */
        for (int64_t b = 0; b < B; b++) {
            int64_t rem = b, off = 0;
            for (int i = nb - 1; i >= 0; i--) {
                off += (rem % batch[i]) * mstride[i];
                rem /= batch[i];
            }
            moff[b] = off;
        }
    }
    const int64_t nblk = n_row_blocks(is_causal, L);
    for (int64_t rb = 0; rb < nblk && !st; rb++) {
        int64_t i0, i1, nc = block_rows(rb, nblk, L, S, is_causal, &i0, &i1);
        /* P[i0:i1, :nc] = scale * Q[i0:i1] K[:nc]^T (the softmax zero-fills columns >= nc) */
        st = be->gemm_batched(DC_NO_TRANS, DC_TRANS, B, i1 - i0, nc, E, scale,
                              (const float *)dc_data(qc) + i0 * E, E, L * E, dc_data(kc), E, S * E,
                              0.0f, (float *)dc_data(p) + i0 * S, S, L * S);
    }
    if (!st)
        st = be->misc->attn_softmax_forward(dc_data(p), B, L, S, mask ? dc_data(mask) : NULL,
                                            mask ? mask->dtype : DC_F32, moff, mstride[nb],
                                            mstride[nb + 1], is_causal);
    for (int64_t rb = 0; rb < nblk && !st; rb++) {
        int64_t i0, i1, nc = block_rows(rb, nblk, L, S, is_causal, &i0, &i1);
        /* out[i0:i1] = P[i0:i1, :nc] V[:nc] */
        st = be->gemm_batched(DC_NO_TRANS, DC_NO_TRANS, B, i1 - i0, Ev, nc, 1.0f,
                              (const float *)dc_data(p) + i0 * S, S, L * S, dc_data(vc), Ev, S * Ev,
                              0.0f, (float *)dc_data(out) + i0 * Ev, Ev, L * Ev);
    }
    free(moff);
    if (!st) {
        /* a BOOL mask has no gradient; an F32 one is an input like q, k, v */
        dc_tensor *fmask = mask && mask->dtype == DC_F32 ? mask : NULL;
        dc_node *node = dc__record(out, op, sdpa_backward, 4, (dc_tensor *[]){q, k, v, fmask});
        if (node) {
            dc__save(node, qc);
            dc__save(node, kc);
            dc__save(node, vc);
            dc__save(node, p);
            node->iarg[IA_B] = B;
            node->iarg[IA_L] = L;
            node->iarg[IA_S] = S;
            node->iarg[IA_E] = E;
            node->iarg[IA_EV] = Ev;
            node->iarg[IA_NB] = nb;
            for (int i = 0; i < nb; i++) node->iarg[IA_BATCH0 + i] = batch[i];
            node->iarg[IA_CAUSAL] = is_causal;
            node->farg[0] = scale;
        }
    }
    dc__discard(qc);
    dc__discard(kc);
    dc__discard(vc);
    dc__discard(p);
    if (st) {
        dc__discard(out);
        return NULL;
    }
    return out;
}
