/* sd_wino.c: 3x3 stride-1 convolutions of the diffusion inference path (sd_infer.c) by
 * Winograd F(2x2, 3x3) (Lavin & Gray 2016; the same transforms as the backend's
 * conv_winograd.c), written so that the caller decides where every byte lives:
 *
 *   - the transformed weights U [16][o][c] are made once per call (per block of output
 *     channels) into the caller's buffer, not per kernel invocation;
 *   - the input may be a row slab with its own channel stride and the output is written at
 *     any channel stride, so a one-image VAE layer runs slab by slab straight into its output,
 *     and a block of output channels lands in place in the full tensor;
 *   - the per-thread transformed tiles come from dc__cpu_alloc_fit at their exact size (best
 *     fit among cached blocks), not as power-of-two kernel scratch, which would round the
 *     largest up by as much as half again.
 *
 * With d a 4x4 input patch, g a 3x3 kernel and
 *   B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |       | 0    0    1   |
 * a 2x2 output tile is A^T [sum_c (G g G^T) (.) (B^T d B)] A: 16 GEMMs M_xi [o, t] = U_xi [o, c]
 * V_xi [c, t] over the tiles t of a chunk, between an input and an output transform. Chunks
 * of tiles run in parallel, one per thread, each with single-threaded GEMMs. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math") /* as sd_infer.c: lets the transform loops vectorise */
#endif
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "../backend/cpu/cpu_memory.h"
#include "../core/internal.h"
#include "sd_internal.h"

int64_t sd__wino_chunk_floats = 1 << 22; /* one thread's V + M (16 MiB) */

void sd_wino_weights(const float *w, int64_t o, int64_t c, float *u)
{
    /* 64 kernels at a time: their 9 taps gathered into rows first, so that the transform and
     * its 16 stores run along contiguous (o, c) pairs in vector registers */
    enum { K = 64 };
    const int64_t n = o * c, nb = (n + K - 1) / K;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nb; blk++) {
        const int64_t k0 = blk * K, kn = DC_MIN(K, n - k0);
        float g[9][K], t[4][3][K];
        for (int64_t k = 0; k < kn; k++)
            for (int i = 0; i < 9; i++) g[i][k] = w[(k0 + k) * 9 + i];
        for (int b = 0; b < 3; b++) /* t = G g */
            for (int64_t k = 0; k < kn; k++) {
                t[0][b][k] = g[b][k];
                t[1][b][k] = 0.5f * (g[b][k] + g[3 + b][k] + g[6 + b][k]);
                t[2][b][k] = 0.5f * (g[b][k] - g[3 + b][k] + g[6 + b][k]);
                t[3][b][k] = g[6 + b][k];
            }
        for (int a = 0; a < 4; a++) { /* U = t G^T */
            float *u0 = u + (a * 4 + 0) * n + k0, *u1 = u + (a * 4 + 1) * n + k0;
            float *u2 = u + (a * 4 + 2) * n + k0, *u3 = u + (a * 4 + 3) * n + k0;
            for (int64_t k = 0; k < kn; k++) {
                u0[k] = t[a][0][k];
                u1[k] = 0.5f * (t[a][0][k] + t[a][1][k] + t[a][2][k]);
                u2[k] = 0.5f * (t[a][0][k] - t[a][1][k] + t[a][2][k]);
                u3[k] = t[a][2][k];
            }
        }
    }
}

/* A run of tiles in one tile row: image n, tile row i, tile columns [j0, j0 + len). */
typedef struct seg {
    int64_t n, i, j0, len;
} seg;

/* The chunk's segments: whole tile rows of consecutive (image, row) pairs when a tile row is
 * shorter than a chunk, else one column range of one tile row. */
static int chunk_segs(int64_t ci, int64_t th, int64_t tw, int64_t tc, int64_t rows_per, int64_t ncol, seg *out)
{
    if (ncol > 1) {
        const int64_t r = ci / ncol, j0 = (ci % ncol) * tc;
        out[0] = (seg){r / th, r % th, j0, DC_MIN(tc, tw - j0)};
        return 1;
    }
    int k = 0;
    for (int64_t r = ci * rows_per; r < (ci + 1) * rows_per; r++) out[k++] = (seg){r / th, r % th, 0, tw};
    return k;
}

/* The transforms, one row of tiles at a time, as loops over restrict pointers so that they
 * vectorise. */

/* ev[j] = src[2j] for j in [0, len) (+ ev[len] = right), od[j + 1] = src[2j + 1]; od[0] = left */
static inline void deinterleave(const float *restrict src, int64_t len, float left, float right, float *restrict ev,
                                float *restrict od)
{
    for (int64_t j = 0; j < len; j++) {
        ev[j] = src[2 * j];
        od[j + 1] = src[2 * j + 1];
    }
    ev[len] = right;
    od[0] = left;
}

/* d B along one input row: the patch columns of tile j are od[j], ev[j], od[j + 1], ev[j + 1] */
static inline void col_transform(const float *restrict ev, const float *restrict od, int64_t len, float *restrict e0,
                                 float *restrict e1, float *restrict e2, float *restrict e3)
{
    for (int64_t j = 0; j < len; j++) {
        e0[j] = od[j] - od[j + 1];
        e1[j] = ev[j] + od[j + 1];
        e2[j] = od[j + 1] - ev[j];
        e3[j] = ev[j] - ev[j + 1];
    }
}

/* B^T . across the patch's four rows */
static inline void row_transform(const float *restrict a0, const float *restrict a1, const float *restrict a2,
                                 const float *restrict a3, int64_t len, float *restrict v0, float *restrict v1,
                                 float *restrict v2, float *restrict v3)
{
    for (int64_t j = 0; j < len; j++) {
        v0[j] = a0[j] - a2[j];
        v1[j] = a1[j] + a2[j];
        v2[j] = a2[j] - a1[j];
        v3[j] = a1[j] - a3[j];
    }
}

/* Y = A^T M A + b for a row of tiles, m[xi] at m + xi * ms: rows 2i (y0) and, unless y1 is
 * NULL (past the image), 2i + 1 */
static inline void out_transform(const float *restrict m, int64_t ms, int64_t len, float b, float *restrict y0,
                                 float *restrict y1)
{
    for (int64_t j = 0; j < len; j++) {
        float s0[4];
        for (int q = 0; q < 4; q++) s0[q] = m[q * ms + j] + m[(4 + q) * ms + j] + m[(8 + q) * ms + j];
        y0[2 * j] = s0[0] + s0[1] + s0[2] + b;
        y0[2 * j + 1] = s0[1] - s0[2] - s0[3] + b;
    }
    if (!y1) return;
    for (int64_t j = 0; j < len; j++) {
        float s1[4];
        for (int q = 0; q < 4; q++) s1[q] = m[(4 + q) * ms + j] - m[(8 + q) * ms + j] - m[(12 + q) * ms + j];
        y1[2 * j] = s1[0] + s1[1] + s1[2] + b;
        y1[2 * j + 1] = s1[1] - s1[2] - s1[3] + b;
    }
}

dc_status sd_wino_conv(const float *u, int64_t o, int64_t c, int64_t n, const float *x, int64_t ldx_n, int64_t ldx,
                       int64_t hin, int pr, int64_t oh, int64_t oh_valid, int64_t w, const float *bias, float *y,
                       int64_t ldy_n, int64_t ldy)
{
    const dc_backend *be = dc_backend_get(DC_CPU);
    const int64_t th = oh / 2, tw = w / 2;
    /* tiles per chunk: V [16][c][tc] and M [16][o][tc] within the budget */
    int64_t tc = DC_MAX(8, sd__wino_chunk_floats / (16 * (c + o)));
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    int64_t rows_per = 1, ncol = 1;
    const int64_t nrows = n * th;
    if (tc >= tw) {
        /* whole tile rows per chunk (seg[] below holds 64), dividing the rows evenly and
         * leaving a chunk for every thread */
        rows_per = DC_MAX(1, DC_MIN(DC_MIN(tc / tw, 64), nrows / threads));
        while (rows_per > 1 && nrows % rows_per) rows_per--;
        tc = rows_per * tw;
    } else {
        ncol = (tw + tc - 1) / tc;
        tc = (tw + ncol - 1) / ncol;
    }
    const int64_t chunks = ncol > 1 ? nrows * ncol : nrows / rows_per;
    if (threads > chunks) threads = (int)chunks;
    /* per thread: V, M and the 16 column-transformed rows of one channel */
    const int64_t per = 16 * (c + o) * tc + 16 * (tc + 2) + 4 * 2 * (tc + 2);
    size_t got;
    float *scratch = dc__cpu_alloc_fit((size_t)(threads * per) * sizeof(float), 0, &got);
    if (!scratch) return dc_last_status();
    dc_status st = DC_OK;
#pragma omp parallel num_threads(threads)
    {
        float *V = scratch + (size_t)omp_get_thread_num() * (size_t)per, *M = V + 16 * c * tc, *E = M + 16 * o * tc;
        float *ev = E + 16 * (tc + 2), *od = ev + 4 * (tc + 2); /* even / odd input columns of 4 rows */
        seg segs[64];
#pragma omp for schedule(static)
        for (int64_t ci = 0; ci < chunks; ci++) {
            const int ns = chunk_segs(ci, th, tw, tc, rows_per, ncol, segs);
            int64_t T = 0;
            /* input transform: V[xi][ch][t] = (B^T d B)_xi */
            for (int s = 0; s < ns; s++) {
                const seg sg = segs[s];
                for (int64_t ch = 0; ch < c; ch++) {
                    const float *xc = x + sg.n * ldx_n + ch * ldx;
                    for (int k = 0; k < 4; k++) {
                        const int64_t r = 2 * sg.i - pr + k;
                        float *e = ev + k * (tc + 2), *d = od + k * (tc + 2);
                        if (r < 0 || r >= hin) { /* padding rows */
                            memset(e, 0, (size_t)(sg.len + 1) * sizeof(float));
                            memset(d, 0, (size_t)(sg.len + 1) * sizeof(float));
                            continue;
                        }
                        const float *src = xc + r * w + 2 * sg.j0;
                        deinterleave(src, sg.len, sg.j0 > 0 ? src[-1] : 0.0f,
                                     2 * (sg.j0 + sg.len) < w ? src[2 * sg.len] : 0.0f, e, d);
                    }
                    float *ek = E; /* [k][q][tc + 2]: the column transforms of the 4 rows */
                    for (int k = 0; k < 4; k++)
                        col_transform(ev + k * (tc + 2), od + k * (tc + 2), sg.len, ek + (k * 4 + 0) * (tc + 2),
                                      ek + (k * 4 + 1) * (tc + 2), ek + (k * 4 + 2) * (tc + 2),
                                      ek + (k * 4 + 3) * (tc + 2));
                    for (int q = 0; q < 4; q++)
                        row_transform(ek + q * (tc + 2), ek + (4 + q) * (tc + 2), ek + (8 + q) * (tc + 2),
                                      ek + (12 + q) * (tc + 2), sg.len, V + ((0 * 4 + q) * c + ch) * tc + T,
                                      V + ((1 * 4 + q) * c + ch) * tc + T, V + ((2 * 4 + q) * c + ch) * tc + T,
                                      V + ((3 * 4 + q) * c + ch) * tc + T);
                }
                T += sg.len;
            }
            /* the 16 products */
            dc_status s1 = DC_OK;
            for (int xi = 0; xi < 16 && !s1; xi++)
                s1 = be->gemm(DC_NO_TRANS, DC_NO_TRANS, o, T, c, 1.0f, u + (int64_t)xi * o * c, c, V + xi * c * tc, tc,
                              0.0f, M + xi * o * tc, tc);
            if (s1) {
#pragma omp atomic write
                st = s1;
                continue;
            }
            /* output transform: Y = A^T M A (+ bias) into rows 2i, 2i + 1 */
            T = 0;
            for (int s = 0; s < ns; s++) {
                const seg sg = segs[s];
                if (2 * sg.i >= oh_valid) {
                    T += sg.len;
                    continue;
                }
                const bool row1 = 2 * sg.i + 1 < oh_valid;
                for (int64_t oc = 0; oc < o; oc++) {
                    float *y0 = y + sg.n * ldy_n + oc * ldy + 2 * sg.i * w + 2 * sg.j0;
                    out_transform(M + oc * tc + T, o * tc, sg.len, bias ? bias[oc] : 0.0f, y0, row1 ? y0 + w : NULL);
                }
                T += sg.len;
            }
        }
    }
    dc__cpu_free(scratch, got);
    return st;
}
