/* cpu/conv.c: CPU kernels for 2-D convolution (declared in ../kernels_conv.h): forward, the
 * input and weight gradients, and the per-channel bias sum / add.
 *
 * The general path is im2col + SGEMM. The batch is cut into chunks of nb images so that
 * each GEMM has enough columns (output pixels) to run near the BLAS kernel's peak even when
 * the spatial size is tiny (ResNet's 4x4 layers), and so that the column buffer of a chunk
 * stays in the outer caches:
 *
 *     col [K = c kh kw, nb oh ow]          im2col of the chunk's images
 *     y_g   [og, nb ohw] = W_g [og, Kg] col_g [Kg, nb ohw]                  (forward)
 *     dW_g [og, Kg]     += dy_g [og, nb ohw] col_g^T                         (weight grad)
 *     dcol_g [Kg, nb ohw] = W_g^T dy_g,  dx = col2im(dcol)                   (input grad)
 *
 * Chunks run in parallel, one per thread, each calling a single-threaded GEMM (OpenBLAS
 * runs single-threaded inside an OpenMP region): no synchronisation inside a chunk, and for
 * the batch sizes of training there are plenty of chunks. The weight gradient is summed per
 * thread and the per-thread sums are added in thread order, so results are deterministic for
 * a fixed thread count. With fewer chunks than threads (batch 1 inference) the chunks run
 * one after another and each GEMM uses all threads instead.
 *
 * Two other families take the shapes where they are faster (the dispatch is at the top of
 * cpu_conv2d_forward / cpu_conv2d_backward): 3x3 convolutions with stride 1 or 2 and enough
 * channels run by Winograd-style transforms (conv_winograd.c), and stride-1 convolutions
 * whose GEMMs would be too thin for BLAS (LeNet's 1 -> 6 and 6 -> 16 channels, a 3-channel
 * stem) by direct kernels (conv_small.c). dc__conv_path = 1 forces this file's path (tests). */
#include <omp.h>

#include "../../core/internal.h"
#include "../kernels_conv.h"
#include "conv_internal.h"

/* Output pixels per GEMM that keep the BLAS kernel efficient (see bench/README.md). */
#define CONV_MIN_COLS 256
/* Upper bound on a chunk's column buffer when it holds several images, in floats (4 MiB). */
#define CONV_MAX_COL_FLOATS (1 << 20)
/* One image's column buffer above this (16 MiB) is split into blocks of output rows. */
#define CONV_SPLIT_FLOATS (1 << 22)

/* ---------------------------------------------------------------------------------------
 * Chunking
 * ------------------------------------------------------------------------------------- */

/* A chunk is nb whole images, or, when one image's column buffer alone would pass
 * CONV_SPLIT_FLOATS (Stable Diffusion's VAE at 512x512: 2.4 GB for one 3x3 layer), a block
 * of `rows` output rows of one image. */
typedef struct conv_plan {
    int64_t nb;       /* images per chunk */
    int64_t rows;     /* output rows per chunk: oh unless images are split */
    int64_t nblk;     /* row blocks per image (1 unless split) */
    int64_t nchunks;
    int64_t maxcols;  /* nb * rows * ow */
    int threads;      /* threads over chunks (1: sequential chunks, threaded GEMM) */
} conv_plan;

/* Chunk ci as images [n0, n0 + nb) and output rows [r0, r1). */
typedef struct chunk {
    int64_t n0, nb, r0, r1;
} chunk;

static chunk chunk_at(const dc_conv2d_geom *g, const conv_plan *p, int64_t ci)
{
    chunk c;
    if (p->nblk > 1) {
        c.n0 = ci / p->nblk;
        c.nb = 1;
        c.r0 = (ci % p->nblk) * p->rows;
        c.r1 = DC_MIN(g->oh, c.r0 + p->rows);
    } else {
        c.n0 = ci * p->nb;
        c.nb = DC_MIN(p->nb, g->n - c.n0);
        c.r0 = 0;
        c.r1 = g->oh;
    }
    return c;
}

/* `backward`: row blocks of one image share input rows, whose gradients they add to, so
 * split images are then done one block after another (with threaded GEMMs). */
static conv_plan make_plan(const dc_conv2d_geom *g, bool backward)
{
    conv_plan p;
    int64_t ohw = g->oh * g->ow, k = g->c * g->kh * g->kw;
    int t = omp_get_max_threads();
    if (omp_in_parallel()) t = 1;
    if (k * ohw > CONV_SPLIT_FLOATS && g->oh > 1) {
        p.nb = 1;
        p.rows = DC_MAX(1, CONV_SPLIT_FLOATS / (k * g->ow));
        p.nblk = (g->oh + p.rows - 1) / p.rows;
        p.nchunks = g->n * p.nblk;
        p.maxcols = p.rows * g->ow;
        p.threads = (!backward && t > 1 && p.nchunks >= t) ? t : 1;
        return p;
    }
    p.rows = g->oh;
    p.nblk = 1;
    int64_t nb = (CONV_MIN_COLS + ohw - 1) / ohw;
    if (nb < 1) nb = 1;
    /* keep the column buffer bounded (but never below one image) */
    while (nb > 1 && nb * ohw * k > CONV_MAX_COL_FLOATS) nb--;
    if (nb > g->n) nb = g->n;
    int64_t nchunks = (g->n + nb - 1) / nb;
    if (t > 1 && nchunks >= t) {
        /* round the chunk count up to a multiple of the threads, then even the chunks out */
        nchunks = (nchunks + t - 1) / t * t;
        nb = (g->n + nchunks - 1) / nchunks;
        nchunks = (g->n + nb - 1) / nb;
    } else if (t > 1 && g->n >= t) {
        /* fewer big chunks than threads: one image per chunk still gives every thread work */
        nb = (g->n + t - 1) / t;
        nchunks = (g->n + nb - 1) / nb;
    }
    p.nb = nb;
    p.nchunks = nchunks;
    p.maxcols = nb * ohw;
    p.threads = (t > 1 && nchunks >= t) ? t : 1;
    return p;
}

static bool is_pointwise(const dc_conv2d_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* ---------------------------------------------------------------------------------------
 * im2col / col2im
 * ------------------------------------------------------------------------------------- */

/* The range [lo, hi) of output columns whose input column ow*s + off lies inside [0, w). */
static inline void valid_range(int64_t ow, int64_t s, int64_t off, int64_t w, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = w - off <= 0 ? 0 : (w - off + s - 1) / s;
    if (h > ow) h = ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Stride-2 row copies, 8 outputs at a time from 16 inputs with one shuffle: the stride-2
 * layers of ResNet spend as long in a scalar gather here as in a third of their GEMM. The
 * vector steps are taken only while all 16 inputs lie inside the row (reading past its end
 * could leave the buffer; writing could touch another thread's image). */
static inline void gather2(float *dst, const float *src, int64_t lo, int64_t hi, int64_t room)
{
    int64_t j = lo;
    for (; j + 8 <= hi && 2 * j + 16 <= room; j += 8) {
        dc_v8 a = dc_load8(src + 2 * j), b = dc_load8(src + 2 * j + 8);
        dc_store8(dst + j, __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14));
    }
    for (; j < hi; j++) dst[j] = src[2 * j];
}

static inline void scatter_add2(float *dst, const float *src, int64_t lo, int64_t hi, int64_t room)
{
    int64_t j = lo;
    const dc_v8 z = dc_splat8(0.0f);
    for (; j + 8 <= hi && 2 * j + 16 <= room; j += 8) {
        dc_v8 s = dc_load8(src + j);
        dc_store8(dst + 2 * j, dc_load8(dst + 2 * j) + __builtin_shufflevector(s, z, 0, 8, 1, 8, 2, 8, 3, 8));
        dc_store8(dst + 2 * j + 8, dc_load8(dst + 2 * j + 8) + __builtin_shufflevector(s, z, 4, 8, 5, 8, 6, 8, 7, 8));
    }
    for (; j < hi; j++) dst[2 * j] += src[j];
}

/* col [c kh kw, ld] gets, for images x[0..nb) of one chunk and output rows [r0, r1),
 * column i (r1 - r0) ow + (oh - r0) ow + ow. */
void dc__conv_im2col(const dc_conv2d_geom *g, const float *x, int64_t nb, int64_t r0, int64_t r1, float *col,
                     int64_t ld)
{
    const int64_t H = g->h, W = g->w, OW = g->ow, ohw = (r1 - r0) * OW, hw = H * W;
    for (int64_t c = 0; c < g->c; c++) {
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++) {
                float *row = col + ((c * g->kh + ki) * g->kw + kj) * ld;
                int64_t off_w = (int64_t)kj * g->dw - g->pw, lo, hi;
                valid_range(OW, g->sw, off_w, W, &lo, &hi);
                for (int64_t i = 0; i < nb; i++) {
                    const float *plane = x + (i * g->c + c) * hw;
                    float *dst = row + i * ohw;
                    for (int64_t oh = r0; oh < r1; oh++, dst += OW) {
                        int64_t ih = oh * g->sh - g->ph + (int64_t)ki * g->dh;
                        if (ih < 0 || ih >= H) {
                            memset(dst, 0, (size_t)OW * sizeof *dst);
                            continue;
                        }
                        const float *src = plane + ih * W + off_w;
                        /* rows two or more apart defeat the hardware prefetcher (a 1x1 stride-2
                         * layer spent a third of its time waiting here): ask for rows four ahead */
                        if (g->sh > 1) {
                            const char *next = (const char *)(src + 4 * g->sh * W);
                            for (int64_t b = 0; b < W * 4; b += 64) __builtin_prefetch(next + b);
                        }
                        for (int64_t j = 0; j < lo; j++) dst[j] = 0.0f;
                        if (g->sw == 1) {
                            memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof *dst);
                        } else if (g->sw == 2) {
                            gather2(dst, src, lo, hi, W - off_w);
                        } else {
                            for (int64_t j = lo; j < hi; j++) dst[j] = src[j * g->sw];
                        }
                        for (int64_t j = hi; j < OW; j++) dst[j] = 0.0f;
                    }
                }
            }
        }
    }
}

/* dx[0..nb) += the adjoint of im2col (same layout) applied to col. */
void dc__conv_col2im(const dc_conv2d_geom *g, const float *col, int64_t ld, int64_t nb, int64_t r0, int64_t r1,
                     float *dx)
{
    const int64_t H = g->h, W = g->w, OW = g->ow, ohw = (r1 - r0) * OW, hw = H * W;
    for (int64_t c = 0; c < g->c; c++) {
        for (int ki = 0; ki < g->kh; ki++) {
            for (int kj = 0; kj < g->kw; kj++) {
                const float *row = col + ((c * g->kh + ki) * g->kw + kj) * ld;
                int64_t off_w = (int64_t)kj * g->dw - g->pw, lo, hi;
                valid_range(OW, g->sw, off_w, W, &lo, &hi);
                for (int64_t i = 0; i < nb; i++) {
                    float *plane = dx + (i * g->c + c) * hw;
                    const float *src = row + i * ohw;
                    for (int64_t oh = r0; oh < r1; oh++, src += OW) {
                        int64_t ih = oh * g->sh - g->ph + (int64_t)ki * g->dh;
                        if (ih < 0 || ih >= H) continue;
                        float *dst = plane + ih * W + off_w;
                        if (g->sw == 1) {
                            for (int64_t j = lo; j < hi; j++) dst[j] += src[j];
                        } else if (g->sw == 2) {
                            scatter_add2(dst, src, lo, hi, W - off_w);
                        } else {
                            for (int64_t j = lo; j < hi; j++) dst[j * g->sw] += src[j];
                        }
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Bias helpers
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_channel_bias_add(float *y, int64_t n, int64_t cj, int64_t hw, const float *bias)
{
#pragma omp parallel for schedule(static) if (n * cj * hw > 65536)
    for (int64_t r = 0; r < n * cj; r++) {
        float b = bias[r % cj], *p = y + r * hw;
        for (int64_t i = 0; i < hw; i++) p[i] += b;
    }
    return DC_OK;
}

/* Sums in double per channel, in a fixed order (channels are split across threads, never
 * the sum of one channel), so the result does not depend on the thread count. */
static dc_status cpu_channel_sum(const float *dy, int64_t n, int64_t cj, int64_t hw, float *out)
{
#pragma omp parallel for schedule(static) if (n * cj * hw > 65536)
    for (int64_t j = 0; j < cj; j++) {
        double acc = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *p = dy + (i * cj + j) * hw;
            /* 8 float lanes over blocks of 1024, each block added in double */
            for (int64_t k0 = 0; k0 < hw; k0 += 1024) {
                const int64_t k1 = DC_MIN(hw, k0 + 1024);
                float a[8] = {0};
                int64_t k = k0;
                for (; k + 8 <= k1; k += 8)
                    for (int u = 0; u < 8; u++) a[u] += p[k + u];
                double s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
                for (; k < k1; k++) s += p[k];
                acc += s;
            }
        }
        out[j] = (float)acc;
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Forward
 * ------------------------------------------------------------------------------------- */

/* One chunk (images n0.., rows r0..r1). col / tmp are this thread's scratch. A single image
 * is multiplied straight into y (row stride ohw); several go through tmp [o, nb rows ow]. */
static dc_status forward_chunk(const dc_backend *be, const dc_conv2d_geom *g, const float *x,
                               const float *w, const float *bias, float *y, chunk ch, float *col, float *tmp)
{
    const int64_t ohw = g->oh * g->ow, bw = (ch.r1 - ch.r0) * g->ow, ncols = ch.nb * bw;
    const int64_t og = g->o / g->groups, kg = g->c / g->groups * g->kh * g->kw;
    const float *xs = x + ch.n0 * g->c * g->h * g->w;
    const float *b;
    int64_t ldb;
    if (is_pointwise(g) && ch.nb == 1) {
        b = xs + ch.r0 * g->ow;
        ldb = ohw;
    } else {
        dc__conv_im2col(g, xs, ch.nb, ch.r0, ch.r1, col, ncols);
        b = col;
        ldb = ncols;
    }
    float *c = ch.nb == 1 ? y + ch.n0 * g->o * ohw + ch.r0 * g->ow : tmp;
    const int64_t ldc = ch.nb == 1 ? ohw : ncols;
    for (int gi = 0; gi < g->groups; gi++) {
        dc_status st = be->gemm(DC_NO_TRANS, DC_NO_TRANS, og, ncols, kg, 1.0f, w + gi * og * kg, kg,
                                b + gi * kg * ldb, ldb, 0.0f, c + gi * og * ldc, ldc);
        if (st) return st;
    }
    for (int64_t i = 0; i < ch.nb; i++) {
        float *yi = y + (ch.n0 + i) * g->o * ohw + ch.r0 * g->ow;
        for (int64_t o = 0; o < g->o; o++) {
            float *dst = yi + o * ohw;
            if (ch.nb > 1) memcpy(dst, tmp + o * ncols + i * bw, (size_t)bw * sizeof *dst);
            if (bias) {
                float bv = bias[o];
                for (int64_t j = 0; j < bw; j++) dst[j] += bv;
            }
        }
    }
    return DC_OK;
}

static dc_status cpu_conv2d_forward(const dc_conv2d_geom *g, const float *x, const float *w,
                                    const float *bias, float *y)
{
    if (g->n == 0 || g->o == 0 || g->oh * g->ow == 0) return DC_OK;
    /* Winograd first: where both apply (3x3, 16-32 output channels) it is the faster */
    if (dc__conv_winograd_ok(g)) return dc__conv_winograd_forward(g, x, w, bias, y);
    if (dc__conv_small_forward(g, x, w, bias, y)) return DC_OK;
    const dc_backend *be = dc_backend_get(DC_CPU);
    conv_plan p = make_plan(g, false);
    const int64_t k = g->c * g->kh * g->kw;
    /* whole cache lines per thread, so threads never share one */
    const size_t per_thread = (size_t)((k * p.maxcols + (p.nb > 1 ? g->o * p.maxcols : 0) + 15) & ~(int64_t)15);
    float *scratch = be->scratch_alloc((size_t)p.threads * per_thread * sizeof(float));
    if (!scratch) return dc_last_status();
    dc_status st = DC_OK;
    if (p.threads > 1) {
#pragma omp parallel num_threads(p.threads)
        {
            int t = omp_get_thread_num();
            float *col = scratch + (size_t)t * per_thread, *tmp = col + k * p.maxcols;
#pragma omp for schedule(static)
            for (int64_t ci = 0; ci < p.nchunks; ci++) {
                dc_status s = forward_chunk(be, g, x, w, bias, y, chunk_at(g, &p, ci), col, tmp);
                if (s) {
#pragma omp atomic write
                    st = s;
                }
            }
        }
    } else {
        for (int64_t ci = 0; ci < p.nchunks && !st; ci++)
            st = forward_chunk(be, g, x, w, bias, y, chunk_at(g, &p, ci), scratch, scratch + k * p.maxcols);
    }
    be->scratch_free(scratch, (size_t)p.threads * per_thread * sizeof(float));
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Backward
 *
 * With y = W col + b (per group, col the im2col of x):
 *   dW = dy col^T        (summed over every chunk of the batch)
 *   db = sum of dy over n, oh, ow
 *   dcol = W^T dy, and dx = col2im(dcol): every input pixel collects the gradient of each
 *   output pixel whose window covered it, times the weight that joined them.
 * ------------------------------------------------------------------------------------- */

static dc_status backward_chunk(const dc_backend *be, const dc_conv2d_geom *g, const float *x,
                                const float *w, const float *dy, float *dx, float *dw_acc,
                                bool first, chunk ch, float *col, float *dyt)
{
    const int64_t ohw = g->oh * g->ow, bw = (ch.r1 - ch.r0) * g->ow, ncols = ch.nb * bw;
    const int64_t og = g->o / g->groups, kg = g->c / g->groups * g->kh * g->kw;
    const int64_t chw = g->c * g->h * g->w;
    const bool direct = is_pointwise(g) && ch.nb == 1;
    /* dy of the chunk as [o, ncols] with row stride ldg */
    const float *gy;
    int64_t ldg;
    if (ch.nb == 1) {
        gy = dy + ch.n0 * g->o * ohw + ch.r0 * g->ow;
        ldg = ohw;
    } else {
        for (int64_t i = 0; i < ch.nb; i++)
            for (int64_t o = 0; o < g->o; o++)
                memcpy(dyt + o * ncols + i * ohw, dy + ((ch.n0 + i) * g->o + o) * ohw, (size_t)ohw * sizeof *dyt);
        gy = dyt;
        ldg = ncols;
    }
    /* the input rows of a pointwise layer are its output rows */
    const float *xb = direct ? x + ch.n0 * chw + ch.r0 * g->ow : col;
    const int64_t ldx = direct ? ohw : ncols;
    if (dw_acc) {
        if (!direct) dc__conv_im2col(g, x + ch.n0 * chw, ch.nb, ch.r0, ch.r1, col, ncols);
        for (int gi = 0; gi < g->groups; gi++) {
            dc_status st = be->gemm(DC_NO_TRANS, DC_TRANS, og, kg, ncols, 1.0f, gy + gi * og * ldg, ldg,
                                    xb + gi * kg * ldx, ldx, first ? 0.0f : 1.0f, dw_acc + gi * og * kg, kg);
            if (st) return st;
        }
    }
    if (dx) {
        float *dcol = direct ? dx + ch.n0 * chw + ch.r0 * g->ow : col;
        for (int gi = 0; gi < g->groups; gi++) {
            dc_status st = be->gemm(DC_TRANS, DC_NO_TRANS, kg, ncols, og, 1.0f, w + gi * og * kg, kg,
                                    gy + gi * og * ldg, ldg, 0.0f, dcol + gi * kg * ldx, ldx);
            if (st) return st;
        }
        if (!direct) {
            /* a chunk's first rows start its images' dx; later row blocks add to it */
            if (ch.r0 == 0) memset(dx + ch.n0 * chw, 0, (size_t)(ch.nb * chw) * sizeof *dx);
            dc__conv_col2im(g, dcol, ncols, ch.nb, ch.r0, ch.r1, dx + ch.n0 * chw);
        }
    }
    return DC_OK;
}

static dc_status cpu_conv2d_backward(const dc_conv2d_geom *g, const float *x, const float *w,
                                     const float *dy, float *dx, float *dw, float *db)
{
    const int64_t ohw = g->oh * g->ow;
    const int64_t wsize = g->o * (g->c / g->groups) * g->kh * g->kw;
    if ((!dx && !dw) || g->n == 0 || ohw == 0 || g->o == 0) {
        if (db) cpu_channel_sum(dy, g->n, g->o, ohw, db);
        if (dx) memset(dx, 0, (size_t)(g->n * g->c * g->h * g->w) * sizeof *dx);
        if (dw) memset(dw, 0, (size_t)wsize * sizeof *dw);
        return DC_OK;
    }
    /* the direct kernels sum db while dy is in cache */
    if (!dc__conv_winograd_ok(g) && dc__conv_small_backward(g, x, w, dy, dx, dw, db)) return DC_OK;
    if (db) cpu_channel_sum(dy, g->n, g->o, ohw, db);
    if (dx && dc__conv_winograd_dgrad_ok(g)) {
        dc_status st = dc__conv_winograd_backward_data(g, w, dy, dx);
        if (st) return st;
        dx = NULL;
    }
    if (dw && dc__conv_winograd_wgrad_ok(g)) {
        dc_status st = dc__conv_winograd_backward_weight(g, x, dy, dw);
        if (st) return st;
        dw = NULL;
    }
    if (!dx && !dw) return DC_OK; /* what is left, if anything, goes by im2col + GEMM */
    const dc_backend *be = dc_backend_get(DC_CPU);
    conv_plan p = make_plan(g, true);
    const int64_t k = g->c * g->kh * g->kw;
    /* per thread: col (also dcol), dy transposed (nb > 1), and a weight-gradient sum for
     * every thread but the first, which sums straight into dw */
    const size_t col_f = (size_t)(k * p.maxcols), dyt_f = p.nb > 1 ? (size_t)(g->o * p.maxcols) : 0;
    const size_t dw_f = dw ? (size_t)wsize : 0;
    const size_t per_thread = (col_f + dyt_f + dw_f + 15) & ~(size_t)15; /* whole cache lines */
    float *scratch = be->scratch_alloc((size_t)p.threads * per_thread * sizeof(float));
    if (!scratch) return dc_last_status();
    dc_status st = DC_OK;
    if (p.threads > 1) {
#pragma omp parallel num_threads(p.threads)
        {
            int t = omp_get_thread_num();
            float *col = scratch + (size_t)t * per_thread, *dyt = col + col_f;
            float *acc = dw ? (t == 0 ? dw : dyt + dyt_f) : NULL;
            bool first = true;
#pragma omp for schedule(static)
            for (int64_t ci = 0; ci < p.nchunks; ci++) {
                dc_status s = backward_chunk(be, g, x, w, dy, dx, acc, first, chunk_at(g, &p, ci), col, dyt);
                first = false;
                if (s) {
#pragma omp atomic write
                    st = s;
                }
            }
            if (acc && first) memset(acc, 0, (size_t)wsize * sizeof *acc);
            /* the implicit barrier of the loop above separates the sums from the reduction */
#pragma omp barrier
            if (dw) {
#pragma omp for schedule(static)
                for (int64_t i = 0; i < wsize; i++) {
                    float s = dw[i];
                    for (int u = 1; u < p.threads; u++) s += scratch[(size_t)u * per_thread + col_f + dyt_f + i];
                    dw[i] = s;
                }
            }
        }
    } else {
        for (int64_t ci = 0; ci < p.nchunks && !st; ci++)
            st = backward_chunk(be, g, x, w, dy, dx, dw, ci == 0, chunk_at(g, &p, ci), scratch, scratch + col_f);
    }
    be->scratch_free(scratch, (size_t)p.threads * per_thread * sizeof(float));
    return st;
}

const struct dc_kernels_conv dc_cpu_conv_kernels = {
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .channel_sum = cpu_channel_sum,
    .channel_bias_add = cpu_channel_bias_add,
};
