/* cpu/pool.c: CPU kernels for pooling and resampling (declared in ../kernels_pool.h): max,
 * average and adaptive-average pooling, nearest upsampling and constant padding, forward and
 * backward.
 *
 * All of these are memory-bound walks over NCHW planes; planes are independent, so each
 * kernel is a parallel loop over planes and every plane's arithmetic happens in one fixed
 * order on one thread (results independent of the thread count). Window bounds and sums
 * follow PyTorch's CPU kernels step for step so that results match to the last bit where
 * the arithmetic allows. */
#include <math.h>
#include <omp.h>

#include "../../core/internal.h"
#include "../kernels_pool.h"

/* total work (elements) below which a loop stays on one thread */
#define PAR_MIN 32768

/* ---------------------------------------------------------------------------------------
 * Max pooling
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_max_pool2d_forward(const dc_pool2d_geom *g, const float *x, float *y, int32_t *idx)
{
    const int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
#pragma omp parallel for schedule(static) if (g->planes * H * W > PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        int32_t *ip = idx ? idx + p * OH * OW : NULL;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = oh * g->sh - g->ph;
            int64_t h1 = DC_MIN(h0 + (int64_t)(g->kh - 1) * g->dh + 1, H);
            while (h0 < 0) h0 += g->dh;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * g->sw - g->pw;
                int64_t w1 = DC_MIN(w0 + (int64_t)(g->kw - 1) * g->dw + 1, W);
                while (w0 < 0) w0 += g->dw;
                /* as PyTorch: start from -inf at the window's first element; a larger value or
                 * a NaN takes over, so ties keep the first maximum and NaN propagates */
                int64_t best = h0 * W + w0;
                float m = -INFINITY;
                for (int64_t ih = h0; ih < h1; ih += g->dh) {
                    for (int64_t iw = w0; iw < w1; iw += g->dw) {
                        float v = xp[ih * W + iw];
                        if (v > m || isnan(v)) {
                            m = v;
                            best = ih * W + iw;
                        }
                    }
                }
                yp[oh * OW + ow] = m;
                if (ip) ip[oh * OW + ow] = (int32_t)best;
            }
        }
    }
    return DC_OK;
}

/* y = x[idx] per output element, so dL/dx[i] = sum of dy over the outputs whose idx is i
 * (overlapping windows can pick the same input twice). */
static dc_status cpu_max_pool2d_backward(const dc_pool2d_geom *g, const float *dy, const int32_t *idx, float *dx)
{
    const int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
#pragma omp parallel for schedule(static) if (g->planes * hw > PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        float *dp = dx + p * hw;
        const float *gp = dy + p * ohw;
        const int32_t *ip = idx + p * ohw;
        memset(dp, 0, (size_t)hw * sizeof *dp);
        for (int64_t i = 0; i < ohw; i++) dp[ip[i]] += gp[i];
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Average pooling
 * ------------------------------------------------------------------------------------- */

/* The window of output (oh, ow) clipped to the input, and its divisor (PyTorch's rule: the
 * window is first clipped to the padded input, which is the divisor with count_include_pad). */
typedef struct avg_window {
    int64_t h0, h1, w0, w1;
    float div;
} avg_window;

static inline avg_window avg_window_at(const dc_pool2d_geom *g, int64_t oh, int64_t ow)
{
    avg_window a;
    int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw;
    int64_t h1 = DC_MIN(h0 + g->kh, g->h + g->ph), w1 = DC_MIN(w0 + g->kw, g->w + g->pw);
    int64_t pool = (h1 - h0) * (w1 - w0);
    a.h0 = DC_MAX(h0, 0);
    a.w0 = DC_MAX(w0, 0);
    a.h1 = DC_MIN(h1, g->h);
    a.w1 = DC_MIN(w1, g->w);
    a.div = (float)(g->count_include_pad ? pool : (a.h1 - a.h0) * (a.w1 - a.w0));
    return a;
}

static dc_status cpu_avg_pool2d_forward(const dc_pool2d_geom *g, const float *x, float *y)
{
    const int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
#pragma omp parallel for schedule(static) if (g->planes * H * W > PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            for (int64_t ow = 0; ow < OW; ow++) {
                avg_window a = avg_window_at(g, oh, ow);
                if (a.h0 >= a.h1 || a.w0 >= a.w1) {
                    yp[oh * OW + ow] = 0.0f;
                    continue;
                }
                float s = 0.0f;
                for (int64_t ih = a.h0; ih < a.h1; ih++)
                    for (int64_t iw = a.w0; iw < a.w1; iw++) s += xp[ih * W + iw];
                yp[oh * OW + ow] = s / a.div;
            }
        }
    }
    return DC_OK;
}

/* y = sum(window) / div, so each input in the window gets dy / div. */
static dc_status cpu_avg_pool2d_backward(const dc_pool2d_geom *g, const float *dy, float *dx)
{
    const int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
#pragma omp parallel for schedule(static) if (g->planes * H * W > PAR_MIN)
    for (int64_t p = 0; p < g->planes; p++) {
        float *dp = dx + p * H * W;
        const float *gp = dy + p * OH * OW;
        memset(dp, 0, (size_t)(H * W) * sizeof *dp);
        for (int64_t oh = 0; oh < OH; oh++) {
            for (int64_t ow = 0; ow < OW; ow++) {
                avg_window a = avg_window_at(g, oh, ow);
                if (a.h0 >= a.h1 || a.w0 >= a.w1) continue;
                float v = gp[oh * OW + ow] / a.div;
                for (int64_t ih = a.h0; ih < a.h1; ih++)
                    for (int64_t iw = a.w0; iw < a.w1; iw++) dp[ih * W + iw] += v;
            }
        }
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Adaptive average pooling: cell i covers [floor(i n / o), ceil((i + 1) n / o)).
 * ------------------------------------------------------------------------------------- */

static inline int64_t ad_start(int64_t i, int64_t o, int64_t n) { return (i * n) / o; }
static inline int64_t ad_end(int64_t i, int64_t o, int64_t n) { return ((i + 1) * n + o - 1) / o; }

static dc_status cpu_adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                 const float *x, float *y)
{
#pragma omp parallel for schedule(static) if (planes * H * W > PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = ad_start(oh, OH, H), h1 = ad_end(oh, OH, H);
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ad_start(ow, OW, W), w1 = ad_end(ow, OW, W);
                float s = 0.0f;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * W + iw];
                yp[oh * OW + ow] = s / (float)(h1 - h0) / (float)(w1 - w0);
            }
        }
    }
    return DC_OK;
}

/* y = mean(cell): every input of the cell gets dy / (cell area). */
static dc_status cpu_adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                  const float *dy, float *dx)
{
#pragma omp parallel for schedule(static) if (planes * H * W > PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        float *dp = dx + p * H * W;
        const float *gp = dy + p * OH * OW;
        memset(dp, 0, (size_t)(H * W) * sizeof *dp);
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = ad_start(oh, OH, H), h1 = ad_end(oh, OH, H);
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ad_start(ow, OW, W), w1 = ad_end(ow, OW, W);
                float v = gp[oh * OW + ow] / (float)(h1 - h0) / (float)(w1 - w0);
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) dp[ih * W + iw] += v;
            }
        }
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Nearest upsampling by integer factors
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int sh, int sw,
                                                const float *x, float *y)
{
    const int64_t OW = W * sw;
#pragma omp parallel for schedule(static) if (planes * H * W * sh * sw > PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * H * sh * OW;
        for (int64_t ih = 0; ih < H; ih++) {
            float *row = yp + ih * sh * OW;
            for (int64_t iw = 0; iw < W; iw++) {
                float v = xp[ih * W + iw];
                for (int j = 0; j < sw; j++) row[iw * sw + j] = v;
            }
            for (int r = 1; r < sh; r++) memcpy(row + r * OW, row, (size_t)OW * sizeof *row);
        }
    }
    return DC_OK;
}

/* each input pixel is copied to an sh x sw block: its gradient sums that block */
static dc_status cpu_upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int sh, int sw,
                                                 const float *dy, float *dx)
{
    const int64_t OW = W * sw;
#pragma omp parallel for schedule(static) if (planes * H * W * sh * sw > PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *gp = dy + p * H * sh * OW;
        float *dp = dx + p * H * W;
        for (int64_t ih = 0; ih < H; ih++) {
            for (int64_t iw = 0; iw < W; iw++) {
                float s = 0.0f;
                for (int r = 0; r < sh; r++)
                    for (int j = 0; j < sw; j++) s += gp[(ih * sh + r) * OW + iw * sw + j];
                dp[ih * W + iw] = s;
            }
        }
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Constant padding (negative amounts crop)
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_pad2d_forward(int64_t planes, int64_t H, int64_t W, const int pad[4], float value,
                                   const float *x, float *y)
{
    const int64_t OH = H + pad[2] + pad[3], OW = W + pad[0] + pad[1];
    /* output columns [c0, c1) and rows [r0, r1) come from the input */
    const int64_t c0 = DC_MAX(pad[0], 0), c1 = DC_MIN(OW, W + pad[0]);
    const int64_t r0 = DC_MAX(pad[2], 0), r1 = DC_MIN(OH, H + pad[2]);
#pragma omp parallel for schedule(static) if (planes * OH * OW > PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            float *row = yp + oh * OW;
            if (oh < r0 || oh >= r1 || c0 >= c1) {
                for (int64_t j = 0; j < OW; j++) row[j] = value;
                continue;
            }
            for (int64_t j = 0; j < c0; j++) row[j] = value;
            memcpy(row + c0, xp + (oh - pad[2]) * W + (c0 - pad[0]), (size_t)(c1 - c0) * sizeof *row);
            for (int64_t j = c1; j < OW; j++) row[j] = value;
        }
    }
    return DC_OK;
}

/* y = x where the output overlaps the input: dx is dy on that overlap and 0 where cropped */
static dc_status cpu_pad2d_backward(int64_t planes, int64_t H, int64_t W, const int pad[4], const float *dy,
                                    float *dx)
{
    const int64_t OH = H + pad[2] + pad[3], OW = W + pad[0] + pad[1];
    const int64_t c0 = DC_MAX(pad[0], 0), c1 = DC_MIN(OW, W + pad[0]);
    const int64_t r0 = DC_MAX(pad[2], 0), r1 = DC_MIN(OH, H + pad[2]);
#pragma omp parallel for schedule(static) if (planes * H * W > PAR_MIN)
    for (int64_t p = 0; p < planes; p++) {
        float *dp = dx + p * H * W;
        const float *gp = dy + p * OH * OW;
        memset(dp, 0, (size_t)(H * W) * sizeof *dp);
        if (c0 >= c1) continue;
        for (int64_t oh = r0; oh < r1; oh++)
            memcpy(dp + (oh - pad[2]) * W + (c0 - pad[0]), gp + oh * OW + c0, (size_t)(c1 - c0) * sizeof *dp);
    }
    return DC_OK;
}

const struct dc_kernels_pool dc_cpu_pool_kernels = {
    .max_pool2d_forward = cpu_max_pool2d_forward,
    .max_pool2d_backward = cpu_max_pool2d_backward,
    .avg_pool2d_forward = cpu_avg_pool2d_forward,
    .avg_pool2d_backward = cpu_avg_pool2d_backward,
    .adaptive_avg_pool2d_forward = cpu_adaptive_avg_pool2d_forward,
    .adaptive_avg_pool2d_backward = cpu_adaptive_avg_pool2d_backward,
    .upsample_nearest2d_forward = cpu_upsample_nearest2d_forward,
    .upsample_nearest2d_backward = cpu_upsample_nearest2d_backward,
    .pad2d_forward = cpu_pad2d_forward,
    .pad2d_backward = cpu_pad2d_backward,
};
