/* cpu/misc.c: CPU kernels for dropout, embedding and the fused softmax of scaled dot-product
 * attention, declared in ../kernels_misc.h. (The attention GEMMs go through the backend's
 * gemm_batched; this file only has what sits between them.) */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../../core/internal.h"
#include "parallel.h"
#include "row_math.h"
#include "../kernels_misc.h"

#define PAR_MIN 32768

/* ---------------------------------------------------------------------------------------
 * Dropout
 * ------------------------------------------------------------------------------------- */

/* murmur3's 32-bit finaliser: a bijective mix with full avalanche */
static inline uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* The mask is a keyed hash of the element index, two finaliser rounds each keyed by half of
 * the call's 64-bit seed: a pure function of (seed, index), so threads fill any part of it
 * and the result does not depend on the thread count. 32-bit arithmetic keeps the loop 8
 * lanes wide on AVX2 (64-bit multiplies are not native there). The loops are branch-free
 * (the mask multiplies): a branch on a random mask mispredicts half the time.
 * dropout_block does elements [i0, i0 + len); blocks are aligned to a power of two, so the
 * high half of the index is the same for the whole block. */
static void dropout_block(const float *restrict x, float *restrict y, uint8_t *restrict mask,
                          int64_t i0, uint32_t len, uint32_t threshold, float scale, uint32_t k0,
                          uint32_t k1)
{
    const uint32_t base = (uint32_t)i0, hi = (uint32_t)((uint64_t)i0 >> 32);
    const uint32_t k1h = k1 + hi * 0x7feb352du;
    /* three single-purpose loops over a sub-block, each vectorised (GCC vectorises none of
     * the work when the hash, the float scaling and the byte store share one loop) */
    float keep[256];
    for (int64_t e0 = 0; e0 < (int64_t)len; e0 += 256) {
        int64_t m = DC_MIN(256, (int64_t)len - e0);
        const uint32_t b0 = base + (uint32_t)e0;
        for (int64_t e = 0; e < m; e++) {
            uint32_t h = fmix32(((b0 + (uint32_t)e) ^ k0) * 0x9e3779b1u);
            h = fmix32(h + k1h);
            keep[e] = (h >> 8) >= threshold ? 1.0f : 0.0f;
        }
        const float *xs = x + e0;
        float *ys = y + e0;
        uint8_t *ms = mask + e0;
        for (int64_t e = 0; e < m; e++) ys[e] = xs[e] * (keep[e] * scale);
        for (int64_t e = 0; e < m; e++) ms[e] = (uint8_t)keep[e];
    }
}

static dc_status cpu_dropout_forward(const float *x, float *y, uint8_t *mask, int64_t n, float p,
                                     float scale, uint64_t seed)
{
    /* drop when the top 24 bits (a uniform in [0, 2^24)) fall below p * 2^24 */
    const uint32_t threshold = (uint32_t)((double)p * 16777216.0);
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const int64_t block = 16384, blocks = (n + block - 1) / block;
    DC_PAR_FOR(n > PAR_MIN, for (int64_t b = 0; b < blocks; b++) {
        int64_t i0 = b * block, len = DC_MIN(block, n - i0);
        dropout_block(x + i0, y + i0, mask + i0, i0, (uint32_t)len, threshold, scale, k0, k1);
    });
    return DC_OK;
}

static dc_status cpu_dropout_backward(const float *dy, const uint8_t *mask, int64_t n, float scale,
                                      float *dx)
{
    DC_PAR_FOR(n > PAR_MIN, for (int64_t i = 0; i < n; i++) {
        dx[i] = dy[i] * ((float)mask[i] * scale);
    });
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Embedding
 * ------------------------------------------------------------------------------------- */

static inline int64_t load_index(const void *idx, dc_dtype dtype, int64_t i)
{
    return dtype == DC_I32 ? ((const int32_t *)idx)[i] : ((const int64_t *)idx)[i];
}

static dc_status check_indices(const void *idx, dc_dtype dtype, int64_t n, int64_t num)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t v = load_index(idx, dtype, i);
        if (v < 0 || v >= num)
            return dc_set_error(DC_ERR_ARG, "embedding: index %lld at position %lld is out of range for %lld rows",
                                (long long)v, (long long)i, (long long)num);
    }
    return DC_OK;
}

static dc_status cpu_embedding_forward(const float *weight, int64_t num, int64_t dim,
                                       const void *idx, dc_dtype idx_dtype, int64_t n, float *out)
{
    if (check_indices(idx, idx_dtype, n, num)) return dc_last_status();
    DC_PAR_FOR(n * dim > PAR_MIN, for (int64_t i = 0; i < n; i++) {
        memcpy(out + i * dim, weight + load_index(idx, idx_dtype, i) * dim, (size_t)dim * sizeof *out);
    });
    return DC_OK;
}

/* dweight[r, :] = sum over i with idx[i] == r of dy[i, :]. Repeated indices make this a
 * scatter-add; splitting the columns across threads (each thread walks all indices in
 * order for its columns) keeps it race-free and independent of the thread count. */
static dc_status cpu_embedding_backward(const float *dy, const void *idx, dc_dtype idx_dtype,
                                        int64_t n, int64_t num, int64_t dim, float *dweight)
{
    memset(dweight, 0, (size_t)(num * dim) * sizeof *dweight);
    if (check_indices(idx, idx_dtype, n, num)) return dc_last_status();
    const int64_t cb = 64; /* columns per task: a cache line of floats, four times over */
    int64_t blocks = (dim + cb - 1) / cb;
    DC_PAR_FOR(n * dim > PAR_MIN && blocks > 1, for (int64_t bk = 0; bk < blocks; bk++) {
        int64_t j0 = bk * cb, nj = DC_MIN(cb, dim - j0);
        for (int64_t i = 0; i < n; i++) {
            float *dst = dweight + load_index(idx, idx_dtype, i) * dim + j0;
            const float *src = dy + i * dim + j0;
            for (int64_t j = 0; j < nj; j++) dst[j] += src[j];
        }
    });
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Attention softmax
 * ------------------------------------------------------------------------------------- */

/* row[j] = exp(row[j] - mx), returns the sum (float lanes, added in double) */
static double exp_row(float *row, int64_t n, float mx)
{
    float a[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int q = 0; q < 8; q++) {
            float e = exp_f(row[j + q] - mx);
            row[j + q] = e;
            a[q] += e;
        }
    double t = 0;
    for (; j < n; j++) {
        float e = exp_f(row[j] - mx);
        row[j] = e;
        t += e;
    }
    return ((double)a[0] + a[1] + a[2] + a[3]) + ((double)a[4] + a[5] + a[6] + a[7]) + t;
}

static dc_status cpu_attn_softmax_forward(float *scores, int64_t batch, int64_t l, int64_t s,
                                          const void *mask, dc_dtype mask_dtype,
                                          const int64_t *mask_offsets, int64_t mask_stride_l,
                                          int64_t mask_stride_s, bool causal)
{
    DC_PAR_FOR(batch * l * s > PAR_MIN, for (int64_t r = 0; r < batch * l; r++) {
        int64_t b = r / l, i = r % l;
        float *row = scores + r * s;
        /* causal: columns j > i are masked; they are simply left out and zeroed */
        int64_t lim = causal ? DC_MIN(s, i + 1) : s;
        if (mask) {
            int64_t base = mask_offsets[b] + i * mask_stride_l;
            if (mask_dtype == DC_F32) {
                const float *m = (const float *)mask + base;
                if (mask_stride_s == 1)
                    for (int64_t j = 0; j < lim; j++) row[j] += m[j];
                else
                    for (int64_t j = 0; j < lim; j++) row[j] += m[j * mask_stride_s];
            } else {
                const uint8_t *m = (const uint8_t *)mask + base;
                for (int64_t j = 0; j < lim; j++)
                    if (!m[j * mask_stride_s]) row[j] = -INFINITY;
            }
        }
        float mx = row_max(row, lim);
        if (mx == -INFINITY) { /* nothing to attend to: an all-zero row, not NaN */
            memset(row, 0, (size_t)s * sizeof *row);
            continue;
        }
        double sum = exp_row(row, lim, mx);
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < lim; j++) row[j] *= inv;
        if (lim < s) memset(row + lim, 0, (size_t)(s - lim) * sizeof *row);
    });
    return DC_OK;
}

/* Softmax backward per row: p_j = exp(z_j) / sum, so dz_j = p_j (dp_j - sum_k dp_k p_k). */
static dc_status cpu_attn_softmax_backward(const float *p, float *dp, int64_t batch, int64_t l,
                                           int64_t s)
{
    DC_PAR_FOR(batch * l * s > PAR_MIN, for (int64_t r = 0; r < batch * l; r++) {
        const float *pr = p + r * s;
        float *dr = dp + r * s;
        float a[8] = {0};
        int64_t j = 0;
        for (; j + 8 <= s; j += 8)
            for (int q = 0; q < 8; q++) a[q] += pr[j + q] * dr[j + q];
        double t = 0;
        for (; j < s; j++) t += (double)pr[j] * dr[j];
        float dot = (float)(((double)a[0] + a[1] + a[2] + a[3]) + ((double)a[4] + a[5] + a[6] + a[7]) + t);
        for (j = 0; j < s; j++) dr[j] = pr[j] * (dr[j] - dot);
    });
    return DC_OK;
}

const struct dc_kernels_misc dc_cpu_misc_kernels = {
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .attn_softmax_forward = cpu_attn_softmax_forward,
    .attn_softmax_backward = cpu_attn_softmax_backward,
};
