/* matmul.c: matrix products through the backend GEMM (OpenBLAS sgemm on the CPU):
 * linear, matmul (torch.matmul broadcasting rules) and bmm, with their backwards. */
#include "../core/internal.h"

#include "deepc/ops.h"

/* A 2-d (or batched, last two dims) operand as GEMM sees it: a base pointer, a leading
 * dimension and whether it is stored transposed. Row-major contiguous is NO_TRANS with
 * ld = cols; a transposed view of a contiguous matrix (stride[-2] == 1) is TRANS with
 * ld = stride[-1]. Anything else must be copied first. */
static bool gemm_layout(const dc_tensor *t, dc_gemm_trans *trans, int64_t *ld)
{
    int n = t->ndim;
    int64_t rows = t->shape[n - 2], cols = t->shape[n - 1];
    int64_t sr = t->stride[n - 2], sc = t->stride[n - 1];
    if ((sc == 1 || cols == 1) && (sr >= cols || rows == 1)) {
        *trans = DC_NO_TRANS;
        *ld = rows == 1 ? DC_MAX(cols, 1) : sr;
        return *ld >= DC_MAX(cols, 1);
    }
    if ((sr == 1 || rows == 1) && (sc >= rows || cols == 1)) {
        *trans = DC_TRANS;
        *ld = cols == 1 ? DC_MAX(rows, 1) : sc;
        return *ld >= DC_MAX(rows, 1);
    }
    return false;
}

/* ---------------------------------------------------------------------------------------
 * linear: y[M, out] = x[M, in] W[out, in]^T + b
 * backward: dx = dy W ; dW = dy^T x ; db = sum_rows dy
 * ------------------------------------------------------------------------------------- */

static dc_status linear_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    dc_tensor *x = node->saved[0], *w = node->saved[1];
    const dc_backend *be = dc_backend_of(g);
    int64_t in = w->shape[1], out = w->shape[0];
    int64_t m = dc_numel(g) / DC_MAX(out, 1);
    dc_tensor *gc = dc_contiguous(g);
    if (!gc) return dc_last_status();
    const float *gp = dc_data_f32(gc);
    dc_status st = DC_OK;
    if (dc_node_wants(node, 0)) {
        dc_tensor *gx = dc__new(DC_F32, x->ndim, x->shape, x->storage->device);
        if (!gx) return dc_last_status();
        st = be->gemm(DC_NO_TRANS, DC_NO_TRANS, m, in, out, 1.0f, gp, out, dc_data_f32(w), in, 0.0f,
                      dc_data_f32(gx), in);
        gi[0] = gx;
        if (st) return st;
    }
    if (dc_node_wants(node, 1)) {
        dc_tensor *gw = dc__new(DC_F32, 2, w->shape, w->storage->device);
        if (!gw) return dc_last_status();
        st = be->gemm(DC_TRANS, DC_NO_TRANS, out, in, m, 1.0f, gp, out, dc_data_f32(x), in, 0.0f,
                      dc_data_f32(gw), in);
        gi[1] = gw;
        if (st) return st;
    }
    if (node->n_inputs > 2 && dc_node_wants(node, 2)) {
        int64_t rows = m;
        gi[2] = dc_sum(dc_reshape(gc, 2, (int64_t[]){rows, out}), 1, (int[]){0}, false);
        if (!gi[2]) return dc_last_status();
    }
    return DC_OK;
}

dc_tensor *dc_linear(dc_tensor *x, dc_tensor *weight, dc_tensor *bias)
{
    dc_tensor *ins[3] = {x, weight, bias};
    if (!dc__check_inputs("linear", bias ? 3 : 2, ins)) return NULL;
    if (dc__check_f32("linear", x, "input") || dc__check_f32("linear", weight, "weight")) return NULL;
    char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
    if (weight->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != weight->shape[1]) {
        dc_set_error(DC_ERR_SHAPE, "linear: input %s does not match weight %s (expected [..., %lld])",
                     dc_shape_str(x, a, sizeof a), dc_shape_str(weight, b, sizeof b),
                     weight->ndim == 2 ? (long long)weight->shape[1] : -1LL);
        return NULL;
    }
    int64_t in = weight->shape[1], out = weight->shape[0];
    if (bias && (bias->ndim != 1 || bias->shape[0] != out || bias->dtype != DC_F32)) {
        dc_set_error(DC_ERR_SHAPE, "linear: bias %s does not match weight %s (expected [%lld])",
                     dc_shape_str(bias, a, sizeof a), dc_shape_str(weight, b, sizeof b), (long long)out);
        return NULL;
    }
    dc_tensor *xc = dc_contiguous(x), *wc = dc_contiguous(weight);
    dc_tensor *bc = bias ? dc_contiguous(bias) : NULL;
    if (!xc || !wc || (bias && !bc)) return NULL;
    int64_t shape[DC_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = out;
    dc_tensor *y = dc__new(DC_F32, x->ndim, shape, x->storage->device);
    dc_tensor *result = NULL;
    if (!y) goto done;
    int64_t m = dc_numel(x) / DC_MAX(in, 1);
    const dc_backend *be = dc_backend_of(x);
    float beta = 0.0f;
    if (bc) { /* C starts as the bias in every row, then accumulates x W^T */
        float *yp = dc_data_f32(y);
        const float *bp = dc_data_f32(bc);
        for (int64_t r = 0; r < m; r++) memcpy(yp + r * out, bp, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    if (be->gemm(DC_NO_TRANS, DC_TRANS, m, out, in, 1.0f, dc_data_f32(xc), in, dc_data_f32(wc), in, beta,
                 dc_data_f32(y), out)) {
        dc__discard(y);
        goto done;
    }
    dc_node *node = dc__record(y, "linear", linear_backward, bias ? 3 : 2, ins);
    if (node) {
        dc__save(node, xc);
        dc__save(node, wc);
    }
    result = y;
done:
    if (!dc_pool_active()) {
        dc_tensor_release(xc);
        dc_tensor_release(wc);
        dc_tensor_release(bc);
    }
    return result;
}

/* ---------------------------------------------------------------------------------------
 * matmul: batched C = A B with broadcast batch dims.
 * backward: dA = dC B^T (summed over A's broadcast dims), dB = A^T dC (likewise)
 * ------------------------------------------------------------------------------------- */

static dc_status matmul_backward(dc_node *node, dc_tensor *g, dc_tensor **gi)
{
    /* saved: the 2-d-or-more operands as multiplied (1-d inputs were unsqueezed) */
    dc_tensor *a = node->saved[0], *b = node->saved[1];
    dc_tensor *ga_in = node->inputs[0], *gb_in = node->inputs[1];
    /* g has the shape of the (un-squeezed) product */
    dc_tensor *g2 = dc_reshape(g, (int)node->iarg[0], node->iarg + 1);
    if (!g2) return dc_last_status();
    if (dc_node_wants(node, 0)) {
        dc_tensor *ga = dc_matmul(g2, dc_transpose(b, -1, -2));
        ga = dc__reduce_to_shape(ga, a->ndim, a->shape);
        gi[0] = dc_reshape(ga, ga_in->ndim, ga_in->shape);
        if (!gi[0]) return dc_last_status();
    }
    if (dc_node_wants(node, 1)) {
        dc_tensor *gb = dc_matmul(dc_transpose(a, -1, -2), g2);
        gb = dc__reduce_to_shape(gb, b->ndim, b->shape);
        gi[1] = dc_reshape(gb, gb_in->ndim, gb_in->shape);
        if (!gi[1]) return dc_last_status();
    }
    return DC_OK;
}

dc_tensor *dc_matmul(dc_tensor *a_in, dc_tensor *b_in)
{
    dc_tensor *ins[2] = {a_in, b_in};
    if (!dc__check_inputs("matmul", 2, ins)) return NULL;
    if (dc__check_f32("matmul", a_in, "a") || dc__check_f32("matmul", b_in, "b")) return NULL;
    char sa[DC_SHAPE_STR_MAX], sb[DC_SHAPE_STR_MAX];
    if (a_in->ndim == 0 || b_in->ndim == 0) {
        dc_set_error(DC_ERR_SHAPE, "matmul: both arguments need at least 1 dim, got %s and %s",
                     dc_shape_str(a_in, sa, sizeof sa), dc_shape_str(b_in, sb, sizeof sb));
        return NULL;
    }
    dc_pool_mark mark = dc_pool_push(); /* intermediates below die with this scope */
    dc_tensor *result = NULL;
    /* promote 1-d operands as torch does, remembering which dims to drop at the end */
    bool squeeze_m = a_in->ndim == 1, squeeze_n = b_in->ndim == 1;
    dc_tensor *a = squeeze_m ? dc_unsqueeze(a_in, 0) : a_in;
    dc_tensor *b = squeeze_n ? dc_unsqueeze(b_in, 1) : b_in;
    int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t k2 = b->shape[b->ndim - 2], n = b->shape[b->ndim - 1];
    if (k != k2) {
        dc_set_error(DC_ERR_SHAPE, "matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                     dc_shape_str(a_in, sa, sizeof sa), dc_shape_str(b_in, sb, sizeof sb), (long long)k,
                     (long long)k2);
        goto done;
    }
    int64_t batch_shape[DC_MAX_DIMS];
    int nbatch;
    if (dc__broadcast_shapes("matmul", a->ndim - 2, a->shape, b->ndim - 2, b->shape, &nbatch, batch_shape))
        goto done;
    if (nbatch + 2 > DC_MAX_DIMS) {
        dc_set_error(DC_ERR_SHAPE, "matmul: too many dims");
        goto done;
    }
    int64_t batch = dc__shape_numel(nbatch, batch_shape);
    int64_t ashape[DC_MAX_DIMS], bshape[DC_MAX_DIMS], cshape[DC_MAX_DIMS];
    memcpy(ashape, batch_shape, sizeof(int64_t) * (size_t)nbatch);
    memcpy(bshape, batch_shape, sizeof(int64_t) * (size_t)nbatch);
    memcpy(cshape, batch_shape, sizeof(int64_t) * (size_t)nbatch);
    ashape[nbatch] = m, ashape[nbatch + 1] = k;
    bshape[nbatch] = k, bshape[nbatch + 1] = n;
    cshape[nbatch] = m, cshape[nbatch + 1] = n;
    /* operands as [batch, rows, cols] with a GEMM-friendly layout; a broadcast operand (all
     * batch strides zero after expand) is passed once with batch stride 0 */
    dc_tensor *ops[2] = {a, b};
    const int64_t *shapes[2] = {ashape, bshape};
    const float *ptr[2];
    dc_gemm_trans tr[2];
    int64_t ld[2], bstride[2];
    for (int i = 0; i < 2; i++) {
        dc_tensor *e = dc_expand(ops[i], nbatch + 2, shapes[i]);
        if (!e) goto done;
        bool shared = true; /* every batch dim has stride 0 */
        for (int d = 0; d < nbatch; d++)
            if (e->shape[d] != 1 && e->stride[d] != 0) shared = false;
        /* the batch dims must collapse into one stride */
        bool uniform = true;
        int64_t expect = -1;
        for (int d = nbatch - 1; d >= 0 && !shared; d--) {
            if (e->shape[d] == 1) continue;
            if (expect >= 0 && e->stride[d] != expect) uniform = false;
            expect = e->stride[d] * e->shape[d];
        }
        if (!shared && (!uniform || !gemm_layout(e, &tr[i], &ld[i]))) e = dc_contiguous(e);
        if (!e) goto done;
        if (!gemm_layout(e, &tr[i], &ld[i])) {
            e = dc_contiguous(e);
            if (!e || !gemm_layout(e, &tr[i], &ld[i])) goto done;
        }
        bstride[i] = 0;
        for (int d = nbatch - 1; d >= 0 && !shared; d--)
            if (e->shape[d] != 1) {
                bstride[i] = e->stride[d];
                break;
            }
        ptr[i] = dc_data_f32(e);
        ops[i] = e;
    }
    dc_tensor *c = dc__new(DC_F32, nbatch + 2, cshape, a_in->storage->device);
    if (!c) goto done;
    dc_status st = dc_backend_of(c)->gemm_batched(tr[0], tr[1], batch, m, n, k, 1.0f, ptr[0], ld[0], bstride[0],
                                                  ptr[1], ld[1], bstride[1], 0.0f, dc_data_f32(c), n, m * n);
    if (st) goto done;
    /* autograd: record on the unsqueezed operands, then view back to the promoted shape */
    dc_node *node = dc__record(c, "matmul", matmul_backward, 2, ins);
    if (node) {
        dc__save(node, a);
        dc__save(node, b);
        node->iarg[0] = nbatch + 2;
        for (int i = 0; i < nbatch + 2; i++) node->iarg[1 + i] = cshape[i];
    }
    result = c;
    if (squeeze_m || squeeze_n) {
        int64_t out_shape[DC_MAX_DIMS];
        int nd = 0;
        for (int i = 0; i < nbatch; i++) out_shape[nd++] = cshape[i];
        if (!squeeze_m) out_shape[nd++] = m;
        if (!squeeze_n) out_shape[nd++] = n;
        /* the product's node already maps to the inputs; a plain view of c keeps the graph */
        dc_tensor *v = dc__view(c, nd, out_shape, (int64_t[DC_MAX_DIMS]){0}, 0);
        if (!v) {
            result = NULL;
            goto done;
        }
        dc__contiguous_strides(nd, out_shape, v->stride);
        v->grad_fn = c->grad_fn; /* share the node: same data, same gradient flow */
        if (v->grad_fn) v->grad_fn->refcount++;
        v->requires_grad = c->requires_grad;
        result = v;
    }
done:
    /* keep the result past the local pool */
    if (result) dc_tensor_retain(result);
    dc_pool_pop(mark);
    if (result) dc__register(result);
    return result;
}

dc_tensor *dc_bmm(dc_tensor *a, dc_tensor *b)
{
    dc_tensor *ins[2] = {a, b};
    if (!dc__check_inputs("bmm", 2, ins)) return NULL;
    if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0]) {
        char sa[DC_SHAPE_STR_MAX], sb[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "bmm: expected [B, n, k] and [B, k, m], got %s and %s",
                     dc_shape_str(a, sa, sizeof sa), dc_shape_str(b, sb, sizeof sb));
        return NULL;
    }
    return dc_matmul(a, b);
}
