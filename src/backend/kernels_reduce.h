/* kernels_reduce.h: the reduction kernel group: sum / mean / var / max / min / logsumexp over
 * any set of dims of a strided tensor, softmax and log_softmax with their backward, and
 * gather / scatter-add along a dim (torch.gather and its gradient).
 */
#ifndef DEEPC_KERNELS_REDUCE_H
#define DEEPC_KERNELS_REDUCE_H

#include "backend.h"

typedef enum dc_reduce_op {
    DC_RED_SUM,
    DC_RED_MEAN,
    DC_RED_VAR,       /* param = correction: divides by max(count - param, 0) (1 = unbiased) */
    DC_RED_MAX,       /* NaN propagates; idx gets the first extreme (or first NaN) */
    DC_RED_MIN,
    DC_RED_LOGSUMEXP, /* max + log(sum(exp(x - max))), max taken as 0 when infinite */
} dc_reduce_op;

struct dc_kernels_reduce {
    /* out[k] = op over the reduced dims of x, for every position k of the kept dims.
     * x is described twice over: kept dims (nk, kshape, kstride) and reduced dims (nr, rshape,
     * rstride), element strides. out is contiguous row-major over the kept dims. idx (MAX/MIN
     * only, may be NULL) receives the row-major flat index over the reduced dims of the
     * chosen element. Accumulation is in double; results do not depend on the thread count.
     * A reduction over zero elements gives 0 (SUM), NaN (MEAN/VAR), -inf (LOGSUMEXP) and is
     * an error for MAX/MIN. */
    dc_status (*reduce)(dc_reduce_op op, float *out, int64_t *idx, const float *x, int nk,
                        const int64_t *kshape, const int64_t *kstride, int nr,
                        const int64_t *rshape, const int64_t *rstride, double param);
    /* softmax (or log_softmax) over the middle dim of a contiguous [outer, n, inner] */
    dc_status (*softmax)(float *out, const float *x, int64_t outer, int64_t n, int64_t inner,
                         bool log);
    /* gx from gy and the forward output y (all contiguous [outer, n, inner]):
     *   softmax:      gx = y * (gy - sum_n(gy * y))
     *   log_softmax:  gx = gy - exp(y) * sum_n(gy) */
    dc_status (*softmax_backward)(float *gx, const float *gy, const float *y, int64_t outer,
                                  int64_t n, int64_t inner, bool log);
    /* out[i] = x[i with coordinate dim replaced by index[i]] over index's shape (ndim dims);
     * x and index strided; out contiguous. Indices must be in [0, x_dim_size): an index out
     * of range is DC_ERR_ARG naming it. */
    dc_status (*gather)(float *out, const float *x, const int64_t *x_stride, int64_t x_dim_size,
                        const int64_t *index, const int64_t *index_stride, int ndim,
                        const int64_t *shape, int dim);
    /* the adjoint: gx[... index[i] ...] += src[i]; gx strided (x's geometry), src contiguous
     * over shape, index strided. Indices are assumed checked by the forward. */
    dc_status (*scatter_add)(float *gx, const int64_t *gx_stride, const float *src,
                             const int64_t *index, const int64_t *index_stride, int ndim,
                             const int64_t *shape, int dim);
};

#endif /* DEEPC_KERNELS_REDUCE_H */
