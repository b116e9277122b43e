/* cpu/conv_internal.h: what the CPU convolution files (conv.c, conv_small.c,
 * conv_winograd.c) share. */
#ifndef DEEPC_CPU_CONV_INTERNAL_H
#define DEEPC_CPU_CONV_INTERNAL_H

#include <stdbool.h>

#include "../kernels_conv.h"

/* 8-float vectors (GCC vector extensions): AVX2 with the library's x86-64-v3 flags, SSE pairs
 * or scalar code elsewhere. v8u is for unaligned addresses. */
typedef float dc_v8 __attribute__((vector_size(32)));
typedef float dc_v8u __attribute__((vector_size(32), aligned(4)));
static inline dc_v8 dc_load8(const float *p) { return *(const dc_v8u *)p; }
static inline void dc_store8(float *p, dc_v8 v) { *(dc_v8u *)p = v; }
static inline dc_v8 dc_splat8(float s) { return (dc_v8){s, s, s, s, s, s, s, s}; }

/* im2col of output rows [r0, r1) of nb consecutive images of x into col [c kh kw, ld]
 * (column i (r1 - r0) ow + p). */
void dc__conv_im2col(const dc_conv2d_geom *g, const float *x, int64_t nb, int64_t r0, int64_t r1, float *col,
                     int64_t ld);
/* dx (nb images) += the adjoint of im2col applied to col (the same layout). */
void dc__conv_col2im(const dc_conv2d_geom *g, const float *col, int64_t ld, int64_t nb, int64_t r0, int64_t r1,
                     float *dx);

/* Direct kernels for convolutions too small for GEMM (conv_small.c). Each returns false,
 * having done nothing, when the geometry is not one it handles. */
bool dc__conv_small_forward(const dc_conv2d_geom *g, const float *x, const float *w,
                            const float *bias, float *y);
bool dc__conv_small_backward(const dc_conv2d_geom *g, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db);

/* Which algorithms may run: 0 = the best for each shape, 1 = im2col + GEMM only, 2 = the
 * specialised kernels wherever they are valid, even where they do not pay (tests compare
 * these; benchmarks measure each). Not thread-safe: set it between calls. */
extern int dc__conv_path;
/* The Winograd GEMM's vectors: -1 = the CPU's best (16 floats with AVX-512, else 8), 0 = 8,
 * 1 = 16 without AVX-512 code generation (tests check the wide path's logic with it). */
extern int dc__conv_wide;

/* Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions with enough channels
 * (conv_winograd.c): the forward pass, the input gradient and the weight gradient. */
bool dc__conv_winograd_ok(const dc_conv2d_geom *g);
dc_status dc__conv_winograd_forward(const dc_conv2d_geom *g, const float *x, const float *w, const float *bias,
                                    float *y);
bool dc__conv_winograd_dgrad_ok(const dc_conv2d_geom *g);
dc_status dc__conv_winograd_backward_data(const dc_conv2d_geom *g, const float *w, const float *dy, float *dx);
/* The weight gradient by F(3x3, 2x2), for the layers with at least 16 tiles per image. */
bool dc__conv_winograd_wgrad_ok(const dc_conv2d_geom *g);
dc_status dc__conv_winograd_backward_weight(const dc_conv2d_geom *g, const float *x, const float *dy, float *dw);

#endif /* DEEPC_CPU_CONV_INTERNAL_H */
