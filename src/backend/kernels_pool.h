/* kernels_pool.h: the backend kernels behind the pooling and resampling ops (src/ops/pool.c):
 * max / average / adaptive-average pooling, nearest-neighbour upsampling and constant padding,
 * forward and backward.
 *
 * Every kernel works on contiguous F32 data seen as `planes` = N * C independent [h, w]
 * images. Gradient outputs are overwritten (not accumulated into). Each plane is handled by
 * one thread, so results do not depend on the thread count. */
#ifndef DEEPC_KERNELS_POOL_H
#define DEEPC_KERNELS_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "deepc/core.h"

/* A pooling window geometry: planes of [h, w] -> [oh, ow]; window kh x kw with stride,
 * padding and dilation (1 for average pooling). The op computes oh / ow (ceil_mode included),
 * so windows may reach past the padded input; those parts count for nothing. */
typedef struct dc_pool2d_geom {
    int64_t planes, h, w, oh, ow;
    int kh, kw;
    int sh, sw;
    int ph, pw;
    int dh, dw;
    bool count_include_pad; /* average pooling: divide by the window clipped to the padded
                               input (true) or to the input itself (false) */
} dc_pool2d_geom;

struct dc_kernels_pool {
    /* y = max over each window (NaN wins, then the first maximum); idx (may be NULL) gets
     * the position ih * w + iw of the chosen element in its plane, as PyTorch's indices. */
    dc_status (*max_pool2d_forward)(const dc_pool2d_geom *g, const float *x, float *y, int32_t *idx);
    /* dx = 0, then dx[idx] += dy for every output element. */
    dc_status (*max_pool2d_backward)(const dc_pool2d_geom *g, const float *dy, const int32_t *idx, float *dx);
    dc_status (*avg_pool2d_forward)(const dc_pool2d_geom *g, const float *x, float *y);
    dc_status (*avg_pool2d_backward)(const dc_pool2d_geom *g, const float *dy, float *dx);
    /* output cell (i, j) averages rows [floor(i h / oh), ceil((i + 1) h / oh)) and likewise
     * for columns */
    dc_status (*adaptive_avg_pool2d_forward)(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                                             const float *x, float *y);
    dc_status (*adaptive_avg_pool2d_backward)(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                                              const float *dy, float *dx);
    /* y [h * sh, w * sw]: y[i, j] = x[i / sh, j / sw] */
    dc_status (*upsample_nearest2d_forward)(int64_t planes, int64_t h, int64_t w, int sh, int sw,
                                            const float *x, float *y);
    dc_status (*upsample_nearest2d_backward)(int64_t planes, int64_t h, int64_t w, int sh, int sw,
                                             const float *dy, float *dx);
    /* pad = {left, right, top, bottom}, each may be negative (crops); y is
     * [h + top + bottom, w + left + right], `value` outside x. */
    dc_status (*pad2d_forward)(int64_t planes, int64_t h, int64_t w, const int pad[4], float value,
                               const float *x, float *y);
    dc_status (*pad2d_backward)(int64_t planes, int64_t h, int64_t w, const int pad[4], const float *dy,
                                float *dx);
};

#endif /* DEEPC_KERNELS_POOL_H */
