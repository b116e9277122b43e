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
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../../core/internal.h"
#include "parallel.h"
#include "../kernels_pool.h"

/* total work (elements) below which a loop stays on one thread */
#define PAR_MIN 32768

/* ---------------------------------------------------------------------------------------
 * Max pooling
 * ------------------------------------------------------------------------------------- */

/* One window element against the running maximum, PyTorch's rule (a larger value or a NaN
 * takes over). Written as selects, not a branch: on real activations the comparison is a
 * coin toss, and a mispredicted branch per element cost more than the rest of the kernel. */
static inline void max_take(float v, int64_t pos, float *m, int64_t *best)
{
    bool take = v > *m || isnan(v);
    *m = take ? v : *m;
    *best = take ? pos : *best;
}

/* One plane of the 2x2, stride-2 pooling with every window inside the input (no padding,
 * no dilation): the pooling of LeNet, AlexNet and VGG. Eight outputs at a time come from
 * two rows of sixteen inputs split into their even and odd columns; the four candidates are
 * taken in PyTorch's window order ((0,0), (0,1), (1,0), (1,1)), so values and indices are
 * those of the general loop below. */
static void max_pool_2x2_plane(const float *xp, int64_t W, int64_t OH, int64_t OW, float *yp, int32_t *ip)
{
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = yp + oh * OW;
        int32_t *ir = ip ? ip + oh * OW : NULL;
        int64_t ow = 0;
#if defined(__AVX2__)
        const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
        const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        const __m256i off01 = _mm256_set1_epi32(1), off10 = _mm256_set1_epi32((int32_t)W),
                      off11 = _mm256_set1_epi32((int32_t)W + 1);
        for (; ow + 8 <= OW; ow += 8) {
            __m256 a0 = _mm256_loadu_ps(r0 + 2 * ow), a1 = _mm256_loadu_ps(r0 + 2 * ow + 8);
            __m256 b0 = _mm256_loadu_ps(r1 + 2 * ow), b1 = _mm256_loadu_ps(r1 + 2 * ow + 8);
            /* even / odd columns, lanes in the order (0, 1, 4, 5, 2, 3, 6, 7) of the outputs */
            __m256 v00 = _mm256_shuffle_ps(a0, a1, 0x88), v01 = _mm256_shuffle_ps(a0, a1, 0xDD);
            __m256 v10 = _mm256_shuffle_ps(b0, b1, 0x88), v11 = _mm256_shuffle_ps(b0, b1, 0xDD);
            __m256 m = v00;
            __m256 t1 = _mm256_or_ps(_mm256_cmp_ps(v01, m, _CMP_GT_OQ), _mm256_cmp_ps(v01, v01, _CMP_UNORD_Q));
            m = _mm256_blendv_ps(m, v01, t1);
            __m256 t2 = _mm256_or_ps(_mm256_cmp_ps(v10, m, _CMP_GT_OQ), _mm256_cmp_ps(v10, v10, _CMP_UNORD_Q));
            m = _mm256_blendv_ps(m, v10, t2);
            __m256 t3 = _mm256_or_ps(_mm256_cmp_ps(v11, m, _CMP_GT_OQ), _mm256_cmp_ps(v11, v11, _CMP_UNORD_Q));
            m = _mm256_blendv_ps(m, v11, t3);
            /* back to output order: 64-bit pairs (0, 2, 1, 3) */
            m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8));
            _mm256_storeu_ps(yr + ow, m);
            if (ir) {
                __m256i off = _mm256_setzero_si256();
                off = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(off), _mm256_castsi256_ps(off01), t1));
                off = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(off), _mm256_castsi256_ps(off10), t2));
                off = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(off), _mm256_castsi256_ps(off11), t3));
                off = _mm256_permute4x64_epi64(off, 0xD8);
                __m256i base = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(2 * oh * W + 2 * ow)), lane2);
                _mm256_storeu_si256((__m256i *)(ir + ow), _mm256_add_epi32(base, off));
            }
        }
        /* four more with SSE (LeNet's 5- and 14-wide outputs end in such a run) */
        for (; ow + 4 <= OW; ow += 4) {
            __m128 a0 = _mm_loadu_ps(r0 + 2 * ow), a1 = _mm_loadu_ps(r0 + 2 * ow + 4);
            __m128 b0 = _mm_loadu_ps(r1 + 2 * ow), b1 = _mm_loadu_ps(r1 + 2 * ow + 4);
            __m128 v00 = _mm_shuffle_ps(a0, a1, 0x88), v01 = _mm_shuffle_ps(a0, a1, 0xDD);
            __m128 v10 = _mm_shuffle_ps(b0, b1, 0x88), v11 = _mm_shuffle_ps(b0, b1, 0xDD);
            __m128 m = v00;
            __m128 t1 = _mm_or_ps(_mm_cmpgt_ps(v01, m), _mm_cmpunord_ps(v01, v01));
            m = _mm_blendv_ps(m, v01, t1);
            __m128 t2 = _mm_or_ps(_mm_cmpgt_ps(v10, m), _mm_cmpunord_ps(v10, v10));
            m = _mm_blendv_ps(m, v10, t2);
            __m128 t3 = _mm_or_ps(_mm_cmpgt_ps(v11, m), _mm_cmpunord_ps(v11, v11));
            m = _mm_blendv_ps(m, v11, t3);
            _mm_storeu_ps(yr + ow, m);
            if (ir) {
                __m128 off = _mm_setzero_ps();
                off = _mm_blendv_ps(off, _mm_castsi128_ps(_mm_set1_epi32(1)), t1);
                off = _mm_blendv_ps(off, _mm_castsi128_ps(_mm_set1_epi32((int32_t)W)), t2);
                off = _mm_blendv_ps(off, _mm_castsi128_ps(_mm_set1_epi32((int32_t)W + 1)), t3);
                __m128i base = _mm_add_epi32(_mm_set1_epi32((int32_t)(2 * oh * W + 2 * ow)), _mm_setr_epi32(0, 2, 4, 6));
                _mm_storeu_si128((__m128i *)(ir + ow), _mm_add_epi32(base, _mm_castps_si128(off)));
            }
        }
#endif
        for (; ow < OW; ow++) {
            int64_t p = 2 * oh * W + 2 * ow, best = p;
            float m = xp[p];
            max_take(xp[p + 1], p + 1, &m, &best);
            max_take(xp[p + W], p + W, &m, &best);
            max_take(xp[p + W + 1], p + W + 1, &m, &best);
            yr[ow] = m;
            if (ir) ir[ow] = (int32_t)best;
        }
    }
}

static dc_status cpu_max_pool2d_forward(const dc_pool2d_geom *g, const float *x, float *y, int32_t *idx)
{
    const int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    /* the 2x2 / stride-2 path needs every window inside the input (ceil_mode may add a
     * clipped last window) */
    bool k2s2 = g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 &&
                g->dh == 1 && g->dw == 1 && 2 * OH <= H && 2 * OW <= W;
    DC_PAR_FOR(g->planes * H * W > PAR_MIN, for (int64_t p = 0; p < g->planes; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * OH * OW;
        int32_t *ip = idx ? idx + p * OH * OW : NULL;
        if (k2s2) {
            max_pool_2x2_plane(xp, W, OH, OW, yp, ip);
            continue;
        }
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
                for (int64_t ih = h0; ih < h1; ih += g->dh)
                    for (int64_t iw = w0; iw < w1; iw += g->dw) max_take(xp[ih * W + iw], ih * W + iw, &m, &best);
                yp[oh * OW + ow] = m;
                if (ip) ip[oh * OW + ow] = (int32_t)best;
            }
        }
    });
    return DC_OK;
}

/* y = x[idx] per output element, so dL/dx[i] = sum of dy over the outputs whose idx is i
 * (overlapping windows can pick the same input twice). */
static dc_status cpu_max_pool2d_backward(const dc_pool2d_geom *g, const float *dy, const int32_t *idx, float *dx)
{
    const int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
    DC_PAR_FOR(g->planes * hw > PAR_MIN, for (int64_t p = 0; p < g->planes; p++) {
        float *dp = dx + p * hw;
        const float *gp = dy + p * ohw;
        const int32_t *ip = idx + p * ohw;
        memset(dp, 0, (size_t)hw * sizeof *dp);
        for (int64_t i = 0; i < ohw; i++) dp[ip[i]] += gp[i];
    });
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
    DC_PAR_FOR(g->planes * H * W > PAR_MIN, for (int64_t p = 0; p < g->planes; p++) {
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
    });
    return DC_OK;
}

/* y = sum(window) / div, so each input in the window gets dy / div. */
static dc_status cpu_avg_pool2d_backward(const dc_pool2d_geom *g, const float *dy, float *dx)
{
    const int64_t H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    DC_PAR_FOR(g->planes * H * W > PAR_MIN, for (int64_t p = 0; p < g->planes; p++) {
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
    });
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
    DC_PAR_FOR(planes * H * W > PAR_MIN, for (int64_t p = 0; p < planes; p++) {
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
    });
    return DC_OK;
}

/* y = mean(cell): every input of the cell gets dy / (cell area). */
static dc_status cpu_adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                  const float *dy, float *dx)
{
    DC_PAR_FOR(planes * H * W > PAR_MIN, for (int64_t p = 0; p < planes; p++) {
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
    });
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Nearest upsampling by integer factors
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_upsample_nearest2d_forward(int64_t planes, int64_t H, int64_t W, int sh, int sw,
                                                const float *x, float *y)
{
    const int64_t OW = W * sw;
    DC_PAR_FOR(planes * H * W * sh * sw > PAR_MIN, for (int64_t p = 0; p < planes; p++) {
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
    });
    return DC_OK;
}

/* each input pixel is copied to an sh x sw block: its gradient sums that block */
static dc_status cpu_upsample_nearest2d_backward(int64_t planes, int64_t H, int64_t W, int sh, int sw,
                                                 const float *dy, float *dx)
{
    const int64_t OW = W * sw;
    DC_PAR_FOR(planes * H * W * sh * sw > PAR_MIN, for (int64_t p = 0; p < planes; p++) {
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
    });
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
    DC_PAR_FOR(planes * OH * OW > PAR_MIN, for (int64_t p = 0; p < planes; p++) {
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
    });
    return DC_OK;
}

/* y = x where the output overlaps the input: dx is dy on that overlap and 0 where cropped */
static dc_status cpu_pad2d_backward(int64_t planes, int64_t H, int64_t W, const int pad[4], const float *dy,
                                    float *dx)
{
    const int64_t OH = H + pad[2] + pad[3], OW = W + pad[0] + pad[1];
    const int64_t c0 = DC_MAX(pad[0], 0), c1 = DC_MIN(OW, W + pad[0]);
    const int64_t r0 = DC_MAX(pad[2], 0), r1 = DC_MIN(OH, H + pad[2]);
    DC_PAR_FOR(planes * H * W > PAR_MIN, for (int64_t p = 0; p < planes; p++) {
        float *dp = dx + p * H * W;
        const float *gp = dy + p * OH * OW;
        memset(dp, 0, (size_t)(H * W) * sizeof *dp);
        if (c0 >= c1) continue;
        for (int64_t oh = r0; oh < r1; oh++)
            memcpy(dp + (oh - pad[2]) * W + (c0 - pad[0]), gp + oh * OW + c0, (size_t)(c1 - c0) * sizeof *dp);
    });
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
