/* kernels_conv.h: the backend kernels behind the convolution ops (src/ops/conv.c): 2-D
 * convolution forward, its input and weight gradients, and the bias gradient.
 *
 * A transposed convolution is the input gradient of an ordinary one, so it needs no kernels
 * of its own: src/ops/conv.c describes it by the geometry of the convolution whose input
 * gradient it is and calls these.
 *
 * All tensors are contiguous F32, NCHW; weight is [o, c/groups, kh, kw]. Outputs are
 * overwritten (not accumulated into). Results are deterministic for a fixed thread count. */
#ifndef DEEPC_KERNELS_CONV_H
#define DEEPC_KERNELS_CONV_H

#include <stdint.h>

#include "deepc/core.h"

/* The shape of one convolution: x [n, c, h, w] * weight [o, c/groups, kh, kw] -> y [n, o, oh,
 * ow] with oh = (h + 2 ph - dh (kh - 1) - 1) / sh + 1 (and the same for ow). The op fills
 * every field; strides and dilations are >= 1, padding >= 0, groups divides c and o. */
typedef struct dc_conv2d_geom {
    int64_t n, c, h, w; /* input */
    int64_t o, oh, ow;  /* output channels and spatial size */
    int kh, kw;
    int sh, sw;
    int ph, pw;
    int dh, dw;
    int groups;
} dc_conv2d_geom;

struct dc_kernels_conv {
    /* y = conv(x, weight) + bias; bias [o] may be NULL. */
    dc_status (*conv2d_forward)(const dc_conv2d_geom *g, const float *x, const float *weight,
                                const float *bias, float *y);
    /* Gradients of conv2d_forward from dy [n, o, oh, ow]: dx [n, c, h, w] (needs weight),
     * dweight [o, c/groups, kh, kw] (needs x), dbias [o]. Any of dx / dweight / dbias may be
     * NULL when not wanted, and x / weight may be NULL when nothing needs them. */
    dc_status (*conv2d_backward)(const dc_conv2d_geom *g, const float *x, const float *weight,
                                 const float *dy, float *dx, float *dweight, float *dbias);
    /* dbias[j] = sum of dy [n, cj, hw] over n and hw, for j < cj. */
    dc_status (*channel_sum)(const float *dy, int64_t n, int64_t cj, int64_t hw, float *dbias);
    /* y [n, cj, hw] += bias[j] per channel. */
    dc_status (*channel_bias_add)(float *y, int64_t n, int64_t cj, int64_t hw, const float *bias);
};

#endif /* DEEPC_KERNELS_CONV_H */
