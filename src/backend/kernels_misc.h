/* kernels_misc.h: the backend kernels behind dropout, embedding and scaled dot-product
 * attention (src/ops/misc.c, src/ops/attention.c). cat/stack/split need no kernels of their
 * own: they are strided copies and views. */
#ifndef DEEPC_KERNELS_MISC_H
#define DEEPC_KERNELS_MISC_H

#include <stdbool.h>
#include <stdint.h>

#include "deepc/core.h"

struct dc_kernels_misc {
    /* mask[i] = 1 (keep) or 0, drawn independently with P(0) = p from a counter-based hash
     * of (seed, i), so the result depends only on seed, not on the thread count;
     * y[i] = x[i] * mask[i] * scale. */
    dc_status (*dropout_forward)(const float *x, float *y, uint8_t *mask, int64_t n, float p,
                                 float scale, uint64_t seed);
    /* dx[i] = dy[i] * mask[i] * scale */
    dc_status (*dropout_backward)(const float *dy, const uint8_t *mask, int64_t n, float scale,
                                  float *dx);

    /* out[i, :] = weight[idx[i], :] for n indices (idx_dtype DC_I64 or DC_I32); an index
     * outside [0, num) is DC_ERR_ARG. */
    dc_status (*embedding_forward)(const float *weight, int64_t num, int64_t dim,
                                   const void *idx, dc_dtype idx_dtype, int64_t n, float *out);
    /* dweight (overwritten, [num, dim]) = sum over i of dy[i, :] scattered to row idx[i]. */
    dc_status (*embedding_backward)(const float *dy, const void *idx, dc_dtype idx_dtype,
                                    int64_t n, int64_t num, int64_t dim, float *dweight);

    /* Attention softmax, in place on scores [batch, l, s] (already scaled): adds the mask,
     * applies the causal rule (column j > row i is masked), then softmax over s.
     * mask: NULL, or DC_BOOL / DC_U8 (nonzero = keep) or DC_F32 (added); element (b, i, j)
     * of the mask is at mask[mask_offsets[b] + i * mask_stride_l + j * mask_stride_s]
     * (strides may be 0 for broadcast). A row with every column masked becomes all zeros
     * (as PyTorch 2.5+'s safe softmax), not NaN. */
    dc_status (*attn_softmax_forward)(float *scores, int64_t batch, int64_t l, int64_t s,
                                      const void *mask, dc_dtype mask_dtype,
                                      const int64_t *mask_offsets, int64_t mask_stride_l,
                                      int64_t mask_stride_s, bool causal);
    /* Softmax backward in place: dp <- p * (dp - sum_j(dp * p)) per row of [batch, l, s]. */
    dc_status (*attn_softmax_backward)(const float *p, float *dp, int64_t batch, int64_t l,
                                       int64_t s);
};

#endif /* DEEPC_KERNELS_MISC_H */
