/* cpu/norm.c: CPU kernels for batch norm, layer norm, group norm and RMS norm (forward and
 * backward), declared in ../kernels_norm.h.
 *
 * Each op is one or two passes over its data per statistic group, parallel over the
 * independent groups (channels for batch norm, rows for the others). Sums are taken in
 * double with several independent accumulators: double keeps the statistics of large
 * batches exact enough to match PyTorch (whose CPU batch norm also accumulates in double),
 * and the independent accumulators let the compiler vectorise what would otherwise be one
 * long dependency chain. Parameter gradients that sum over rows are split by column ranges
 * across threads, so every sum is taken in the same order whatever the thread count. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../../core/internal.h"
#include "parallel.h"
#include "../kernels_norm.h"

/* work (elements) below which a kernel stays on one thread */
#define PAR_MIN 32768

/* 8 floats as one AVX register (a GCC/Clang vector extension): used where the
 * auto-vectoriser interleaves lane arrays badly. Loads and stores are unaligned. */
typedef float v8f __attribute__((vector_size(32)));
static inline v8f v8_load(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f v8_splat(float f) { return (v8f){f, f, f, f, f, f, f, f}; }

/* ---------------------------------------------------------------------------------------
 * Row sums (vectorised float lanes, accumulated in double)
 * ------------------------------------------------------------------------------------- */

/* The sums below run in 8 float lanes over chunks of CHUNK elements, each chunk's lanes then
 * added in double: vector speed, and an error that does not grow with the row length. */
#define CHUNK 2048

static inline double hsum8(v8f v)
{
    return (((double)v[0] + v[1]) + ((double)v[2] + v[3])) + (((double)v[4] + v[5]) + ((double)v[6] + v[7]));
}

static double dot_f(const float *x, const float *y, int64_t n)
{
    double total = 0;
    int64_t i = 0;
    for (int64_t c0 = 0; c0 + 8 <= n; c0 += CHUNK) {
        int64_t c1 = DC_MIN(n, c0 + CHUNK) & ~(int64_t)7;
        v8f a = v8_splat(0);
        for (i = c0; i < c1; i += 8) a += v8_load(x + i) * v8_load(y + i);
        total += hsum8(a);
    }
    for (i = n & ~(int64_t)7; i < n; i++) total += (double)x[i] * y[i];
    return total;
}

/* sum(x - shift) and sum((x - shift)^2) in one pass: mean and variance from one read of the
 * data. Shifting by a sample of the data keeps var = E[d^2] - E[d]^2 free of cancellation
 * (the shift is within a few standard deviations of the mean). Adds to *s1, *s2. */
static void shifted_sums(const float *x, int64_t n, float shift, double *s1, double *s2)
{
    const v8f vs = v8_splat(shift);
    int64_t i;
    for (int64_t c0 = 0; c0 + 8 <= n; c0 += CHUNK) {
        int64_t c1 = DC_MIN(n, c0 + CHUNK) & ~(int64_t)7;
        v8f a = v8_splat(0), b = v8_splat(0);
        for (i = c0; i < c1; i += 8) {
            v8f d = v8_load(x + i) - vs;
            a += d;
            b += d * d;
        }
        *s1 += hsum8(a);
        *s2 += hsum8(b);
    }
    for (i = n & ~(int64_t)7; i < n; i++) {
        double d = x[i] - shift;
        *s1 += d;
        *s2 += d * d;
    }
}

/* sum(g) and sum(g * x) in one pass; adds to *sg, *sgx */
static void sum_and_dot(const float *g, const float *x, int64_t n, double *sg, double *sgx)
{
    int64_t i;
    for (int64_t c0 = 0; c0 + 8 <= n; c0 += CHUNK) {
        int64_t c1 = DC_MIN(n, c0 + CHUNK) & ~(int64_t)7;
        v8f a = v8_splat(0), b = v8_splat(0);
        for (i = c0; i < c1; i += 8) {
            v8f gv = v8_load(g + i);
            a += gv;
            b += gv * v8_load(x + i);
        }
        *sg += hsum8(a);
        *sgx += hsum8(b);
    }
    for (i = n & ~(int64_t)7; i < n; i++) {
        *sg += g[i];
        *sgx += (double)g[i] * x[i];
    }
}

/* y = x * a + b over n elements */
static void affine_f(const float *x, float *y, int64_t n, float a, float b)
{
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + b;
}

/* ---------------------------------------------------------------------------------------
 * Batch norm
 * ------------------------------------------------------------------------------------- */

/* Columns handled together when s == 1 ([N, C] input): the per-channel data is a column,
 * so sums run over rows with a block of channel accumulators, reading rows contiguously. */
#define BN_COLS 64

static void bn_finish_stats(int64_t ch, double mean, double var_sum, int64_t m,
                            float *running_mean, float *running_var, bool training,
                            float momentum, float eps, float *save_mean, float *save_invstd)
{
    if (training) {
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)(1.0 / sqrt(var_sum / (double)m + (double)eps));
        if (running_mean)
            running_mean[ch] = (float)((double)momentum * mean + (1.0 - (double)momentum) * running_mean[ch]);
        if (running_var)
            running_var[ch] = (float)((double)momentum * var_sum / (double)(m - 1) +
                                      (1.0 - (double)momentum) * running_var[ch]);
    } else {
        save_mean[ch] = running_mean[ch];
        save_invstd[ch] = (float)(1.0 / sqrt((double)running_var[ch] + (double)eps));
    }
}

static dc_status cpu_batch_norm_forward(const float *x, float *y, int64_t n, int64_t c, int64_t s,
                                        const float *weight, const float *bias,
                                        float *running_mean, float *running_var, bool training,
                                        float momentum, float eps, float *save_mean,
                                        float *save_invstd)
{
    const int64_t m = n * s;
    if (s == 1) {
        int64_t blocks = (c + BN_COLS - 1) / BN_COLS;
        DC_PAR_FOR(n * c > PAR_MIN, for (int64_t bk = 0; bk < blocks; bk++) {
            int64_t c0 = bk * BN_COLS, nc = DC_MIN(BN_COLS, c - c0);
            double mean[BN_COLS], vs[BN_COLS];
            float a[BN_COLS], b[BN_COLS];
            if (training) {
                for (int64_t j = 0; j < nc; j++) mean[j] = vs[j] = 0;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < nc; j++) mean[j] += x[i * c + c0 + j];
                for (int64_t j = 0; j < nc; j++) mean[j] /= (double)m;
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < nc; j++) {
                        double d = x[i * c + c0 + j] - mean[j];
                        vs[j] += d * d;
                    }
            } else {
                for (int64_t j = 0; j < nc; j++) mean[j] = vs[j] = 0;
            }
            for (int64_t j = 0; j < nc; j++) {
                int64_t ch = c0 + j;
                bn_finish_stats(ch, mean[j], vs[j], m, running_mean, running_var, training,
                                momentum, eps, save_mean, save_invstd);
                float w = weight ? weight[ch] : 1.0f;
                a[j] = save_invstd[ch] * w;
                b[j] = (bias ? bias[ch] : 0.0f) - save_mean[ch] * a[j];
            }
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < nc; j++) y[i * c + c0 + j] = x[i * c + c0 + j] * a[j] + b[j];
        });
        return DC_OK;
    }
    DC_PAR_FOR(n * c * s > PAR_MIN, for (int64_t ch = 0; ch < c; ch++) {
        double mean = 0, vs = 0;
        if (training) {
            float shift = x[ch * s];
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < n; i++) shifted_sums(x + (i * c + ch) * s, s, shift, &s1, &s2);
            mean = s1 / (double)m;
            vs = s2 - s1 * mean; /* sum of squared deviations */
            if (vs < 0) vs = 0;
            mean += shift;
        }
        bn_finish_stats(ch, mean, vs, m, running_mean, running_var, training, momentum, eps,
                        save_mean, save_invstd);
        /* y = (x - mean) * invstd * w + b folded into one multiply-add, as PyTorch does */
        float a = save_invstd[ch] * (weight ? weight[ch] : 1.0f);
        float b = (bias ? bias[ch] : 0.0f) - save_mean[ch] * a;
        for (int64_t i = 0; i < n; i++) affine_f(x + (i * c + ch) * s, y + (i * c + ch) * s, s, a, b);
    });
    return DC_OK;
}

/* Backward of y = xhat * w + b with xhat = (x - mean) * invstd, per channel over M = n*s:
 *   dbias   = sum(dy)
 *   dweight = sum(dy * xhat)
 * eval (mean, invstd constants):      dx = dy * w * invstd
 * training (mean, invstd depend on x): dx = w * invstd * (dy - dbias/M - xhat * dweight/M)
 * (the last two terms are the paths through the batch mean and the batch variance). */
static dc_status cpu_batch_norm_backward(const float *x, const float *dy, int64_t n, int64_t c,
                                         int64_t s, const float *weight, const float *save_mean,
                                         const float *save_invstd, bool training, float *dx,
                                         float *dweight, float *dbias)
{
    const int64_t m = n * s;
    if (s == 1) {
        int64_t blocks = (c + BN_COLS - 1) / BN_COLS;
        DC_PAR_FOR(n * c > PAR_MIN, for (int64_t bk = 0; bk < blocks; bk++) {
            int64_t c0 = bk * BN_COLS, nc = DC_MIN(BN_COLS, c - c0);
            double sdy[BN_COLS], sdyx[BN_COLS];
            for (int64_t j = 0; j < nc; j++) sdy[j] = sdyx[j] = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < nc; j++) {
                    float g = dy[i * c + c0 + j];
                    sdy[j] += g;
                    sdyx[j] += (double)g * (x[i * c + c0 + j] - save_mean[c0 + j]);
                }
            float k1[BN_COLS], k2[BN_COLS], k3[BN_COLS], mu[BN_COLS];
            for (int64_t j = 0; j < nc; j++) {
                int64_t ch = c0 + j;
                double inv = save_invstd[ch], w = weight ? weight[ch] : 1.0f;
                if (dbias) dbias[ch] = (float)sdy[j];
                if (dweight) dweight[ch] = (float)(sdyx[j] * inv);
                mu[j] = save_mean[ch];
                k1[j] = (float)(w * inv);
                /* dx = k1 * dy - k2 * (x - mean) - k3 */
                k2[j] = training ? (float)(w * inv * inv * inv * sdyx[j] / (double)m) : 0.0f;
                k3[j] = training ? (float)(w * inv * sdy[j] / (double)m) : 0.0f;
            }
            if (dx)
                for (int64_t i = 0; i < n; i++)
                    for (int64_t j = 0; j < nc; j++) {
                        int64_t e = i * c + c0 + j;
                        dx[e] = k1[j] * dy[e] - k2[j] * (x[e] - mu[j]) - k3[j];
                    }
        });
        return DC_OK;
    }
    DC_PAR_FOR(n * c * s > PAR_MIN, for (int64_t ch = 0; ch < c; ch++) {
        double sdy = 0, sdyx = 0, mean = save_mean[ch];
        for (int64_t i = 0; i < n; i++) {
            sum_and_dot(dy + (i * c + ch) * s, x + (i * c + ch) * s, s, &sdy, &sdyx);
        }
        sdyx -= mean * sdy; /* sum(dy * (x - mean)) */
        double inv = save_invstd[ch], w = weight ? weight[ch] : 1.0f;
        if (dbias) dbias[ch] = (float)sdy;
        if (dweight) dweight[ch] = (float)(sdyx * inv);
        if (!dx) continue;
        float k1 = (float)(w * inv);
        float k2 = training ? (float)(w * inv * inv * inv * sdyx / (double)m) : 0.0f;
        float k3 = training ? (float)(w * inv * sdy / (double)m) : 0.0f;
        float mu = (float)mean;
        for (int64_t i = 0; i < n; i++) {
            const float *xp = x + (i * c + ch) * s, *gp = dy + (i * c + ch) * s;
            float *dp = dx + (i * c + ch) * s;
            for (int64_t k = 0; k < s; k++) dp[k] = k1 * gp[k] - k2 * (xp[k] - mu) - k3;
        }
    });
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Layer norm (and the row statistics group norm shares)
 * ------------------------------------------------------------------------------------- */

static void row_stats(const float *x, int64_t d, float eps, float *mean, float *rstd)
{
    double s1 = 0, s2 = 0;
    if (d > 0) shifted_sums(x, d, x[0], &s1, &s2);
    double m = s1 / (double)d;
    double v = (s2 - s1 * m) / (double)d;
    if (v < 0) v = 0;
    m += d > 0 ? x[0] : 0.0f;
    *mean = (float)m;
    *rstd = (float)(1.0 / sqrt(v + (double)eps));
}

static dc_status cpu_layer_norm_forward(const float *x, float *y, int64_t rows, int64_t d,
                                        const float *weight, const float *bias, float eps,
                                        float *mean, float *rstd)
{
    DC_PAR_FOR(rows * d > PAR_MIN, for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        row_stats(xr, d, eps, &mean[r], &rstd[r]);
        float mu = mean[r], rs = rstd[r];
        if (weight && bias)
            for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mu) * rs * weight[j] + bias[j];
        else if (weight)
            for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mu) * rs * weight[j];
        else if (bias)
            for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mu) * rs + bias[j];
        else
            for (int64_t j = 0; j < d; j++) yr[j] = (xr[j] - mu) * rs;
    });
    return DC_OK;
}

/* Backward over rows of d elements shared by layer norm and RMS norm. With g = dy * w,
 * xhat = (x - mu) * rs (mu = 0 for RMS norm, whose "mean" is NULL):
 *   layer norm: dx = rs * (g - mean_j(g) - xhat * mean_j(g * xhat))
 *               (mean and rstd are functions of the whole row: the subtracted terms are
 *               their paths), i.e. rs*g - rs*mean(g) - rs^3 * (sum(g x) - mu sum(g)) / d * (x - mu)
 *   RMS norm:   y = x * rs * w with d rs / d x_j = -rs^3 x_j / d, so
 *               dx = rs*g - rs^3 * sum(g x) / d * x   (the same with mu = 0, no mean(g) term)
 *   dweight = sum_rows dy * xhat,  dbias = sum_rows dy.
 * One pass per row reads x and dy for the row sums and adds dy * xhat and dy into per-thread
 * partial sums (double) of the parameter gradients; a second pass over the row (now in
 * cache) writes dx. Threads take fixed contiguous row ranges and the partials are added in
 * thread order, so results are deterministic for a fixed thread count. */
static dc_status rows_backward(const float *x, const float *dy, int64_t rows, int64_t d,
                               const float *weight, const float *mean, const float *rstd,
                               float *dx, float *dweight, float *dbias)
{
    /* parameter-gradient partials: per thread, float sums over FLUSH rows are added into
     * double totals (float keeps the hot loop 8 wide; double keeps 10^5 rows exact) */
    enum { FLUSH = 32 };
    const bool pg = dweight || dbias;
    int nt = rows * d > PAR_MIN ? omp_get_max_threads() : 1;
    if (nt > rows) nt = rows > 0 ? (int)rows : 1;
    const size_t per = 2 * (size_t)d; /* doubles (dweight, dbias) per thread */
    double *part = NULL;
    float *fpart = NULL;
    if (pg) {
        part = dc__calloc((size_t)nt * per, sizeof *part);
        fpart = dc__calloc((size_t)nt * per, sizeof *fpart);
        if (!part || !fpart) {
            free(part);
            free(fpart);
            return dc_last_status();
        }
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
        double *pw = pg ? part + (size_t)t * per : NULL;
        float *fw = pg ? fpart + (size_t)t * per : NULL;
        for (int64_t r = r0; r < r1; r++) {
            const float *xr = x + r * d, *gr = dy + r * d;
            const float mu = mean ? mean[r] : 0.0f, rs = rstd[r];
            const v8f vmu = v8_splat(mu), vrs = v8_splat(rs);
            /* row sums of g = dy * w and g * x */
            v8f a = v8_splat(0), c = v8_splat(0);
            int64_t j = 0;
            for (; j + 8 <= d; j += 8) {
                v8f g = v8_load(gr + j);
                if (weight) g *= v8_load(weight + j);
                a += g;
                c += g * v8_load(xr + j);
            }
            double sg = 0, sgx = 0;
            for (int q = 0; q < 8; q++) {
                sg += a[q];
                sgx += c[q];
            }
            for (; j < d; j++) {
                float g = gr[j] * (weight ? weight[j] : 1.0f);
                sg += g;
                sgx += (double)g * xr[j];
            }
            if (fw) {
                float *fb = fw + d;
                for (j = 0; j + 8 <= d; j += 8) {
                    v8f g = v8_load(gr + j);
                    v8_store(fw + j, v8_load(fw + j) + g * ((v8_load(xr + j) - vmu) * vrs));
                    v8_store(fb + j, v8_load(fb + j) + g);
                }
                for (; j < d; j++) {
                    fw[j] += gr[j] * ((xr[j] - mu) * rs);
                    fb[j] += gr[j];
                }
                if ((r - r0) % FLUSH == FLUSH - 1 || r == r1 - 1)
                    for (j = 0; j < 2 * d; j++) {
                        pw[j] += fw[j];
                        fw[j] = 0;
                    }
            }
            if (!dx) continue;
            double drs = rs;
            float c2 = (float)(drs * drs * drs * (sgx - (double)mu * sg) / (double)d);
            float c0 = mean ? (float)(drs * sg / (double)d) : 0.0f;
            const v8f vc2 = v8_splat(c2), vc0 = v8_splat(c0);
            float *dr = dx + r * d;
            for (j = 0; j + 8 <= d; j += 8) {
                v8f g = v8_load(gr + j);
                if (weight) g *= v8_load(weight + j);
                v8_store(dr + j, vrs * g - vc2 * (v8_load(xr + j) - vmu) - vc0);
            }
            for (; j < d; j++)
                dr[j] = rs * gr[j] * (weight ? weight[j] : 1.0f) - c2 * (xr[j] - mu) - c0;
        }
    }
    if (pg) {
        for (int64_t j = 0; j < d; j++) {
            double sw = 0, sb = 0;
            for (int t = 0; t < nt; t++) {
                sw += part[(size_t)t * per + (size_t)j];
                sb += part[(size_t)t * per + (size_t)d + (size_t)j];
            }
            if (dweight) dweight[j] = (float)sw;
            if (dbias) dbias[j] = (float)sb;
        }
        free(part);
        free(fpart);
    }
    return DC_OK;
}

static dc_status cpu_layer_norm_backward(const float *x, const float *dy, int64_t rows, int64_t d,
                                         const float *weight, const float *mean, const float *rstd,
                                         float *dx, float *dweight, float *dbias)
{
    return rows_backward(x, dy, rows, d, weight, mean, rstd, dx, dweight, dbias);
}

/* ---------------------------------------------------------------------------------------
 * Group norm: each (sample, group) is a contiguous row of (c/groups) * s elements.
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_group_norm_forward(const float *x, float *y, int64_t n, int64_t c, int64_t s,
                                        int64_t groups, const float *weight, const float *bias,
                                        float eps, float *mean, float *rstd)
{
    const int64_t cg = c / groups, d = cg * s;
    DC_PAR_FOR(n * c * s > PAR_MIN, for (int64_t r = 0; r < n * groups; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        row_stats(xr, d, eps, &mean[r], &rstd[r]);
        int64_t g = r % groups;
        for (int64_t k = 0; k < cg; k++) {
            int64_t ch = g * cg + k;
            float a = rstd[r] * (weight ? weight[ch] : 1.0f);
            float b = (bias ? bias[ch] : 0.0f) - mean[r] * a;
            affine_f(xr + k * s, yr + k * s, s, a, b);
        }
    });
    return DC_OK;
}

/* Backward: as layer norm over each (sample, group) row, with g = dy * w[channel]:
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dweight[ch] = sum_{n, s} dy * xhat,  dbias[ch] = sum_{n, s} dy. */
static dc_status cpu_group_norm_backward(const float *x, const float *dy, int64_t n, int64_t c,
                                         int64_t s, int64_t groups, const float *weight,
                                         const float *mean, const float *rstd, float *dx,
                                         float *dweight, float *dbias)
{
    const int64_t cg = c / groups, d = cg * s;
    /* per (sample, channel): sum(dy) and sum(dy * x), taken once and used both for dx and
     * for the parameter gradients (so x and dy are read twice in all, not four times) */
    double *sums = dc__malloc((size_t)(n * c) * 2 * sizeof *sums);
    if (!sums) return dc_last_status();
    DC_PAR_FOR(n * c * s > PAR_MIN, for (int64_t r = 0; r < n * groups; r++) {
        const float *xr = x + r * d, *gr = dy + r * d;
        int64_t g = r % groups;
        double *sr = sums + 2 * r * cg; /* channels of row r are (r * cg ...) in [n, c] order */
        double mu = mean[r], rs = rstd[r], sg = 0, sgx = 0;
        for (int64_t k = 0; k < cg; k++) {
            double w = weight ? weight[g * cg + k] : 1.0, a = 0, b = 0;
            sum_and_dot(gr + k * s, xr + k * s, s, &a, &b);
            sr[2 * k] = a;
            sr[2 * k + 1] = b;
            sg += w * a;
            sgx += w * b;
        }
        if (!dx) continue;
        double mg = sg / (double)d, mgx = rs * (sgx - mu * sg) / (double)d;
        float c2 = (float)(rs * rs * mgx), c0 = (float)(rs * mg), fmu = (float)mu;
        float *dr = dx + r * d;
        for (int64_t k = 0; k < cg; k++) {
            float c1 = (float)(rs * (weight ? weight[g * cg + k] : 1.0f));
            const float *xk = xr + k * s, *gk = gr + k * s;
            float *dk = dr + k * s;
            for (int64_t j = 0; j < s; j++) dk[j] = c1 * gk[j] - c2 * (xk[j] - fmu) - c0;
        }
    });
    if (dweight || dbias) {
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t g = ch / cg;
            double sw = 0, sb = 0;
            for (int64_t i = 0; i < n; i++) {
                int64_t r = i * groups + g;
                double t = sums[2 * (i * c + ch)], u = sums[2 * (i * c + ch) + 1];
                sb += t;
                sw += (u - (double)mean[r] * t) * rstd[r];
            }
            if (dweight) dweight[ch] = (float)sw;
            if (dbias) dbias[ch] = (float)sb;
        }
    }
    free(sums);
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * RMS norm
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_rms_norm_forward(const float *x, float *y, int64_t rows, int64_t d,
                                      const float *weight, float eps, float *rstd)
{
    DC_PAR_FOR(rows * d > PAR_MIN, for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double ms = dot_f(xr, xr, d) / (double)d;
        float rs = (float)(1.0 / sqrt(ms + (double)eps));
        rstd[r] = rs;
        if (weight)
            for (int64_t j = 0; j < d; j++) yr[j] = xr[j] * rs * weight[j];
        else
            for (int64_t j = 0; j < d; j++) yr[j] = xr[j] * rs;
    });
    return DC_OK;
}

/* RMS norm backward: rows_backward with no mean (its comment has the math). */
static dc_status cpu_rms_norm_backward(const float *x, const float *dy, int64_t rows, int64_t d,
                                       const float *weight, const float *rstd, float *dx,
                                       float *dweight)
{
    return rows_backward(x, dy, rows, d, weight, NULL, rstd, dx, dweight, NULL);
}

const struct dc_kernels_norm dc_cpu_norm_kernels = {
    .batch_norm_forward = cpu_batch_norm_forward,
    .batch_norm_backward = cpu_batch_norm_backward,
    .layer_norm_forward = cpu_layer_norm_forward,
    .layer_norm_backward = cpu_layer_norm_backward,
    .group_norm_forward = cpu_group_norm_forward,
    .group_norm_backward = cpu_group_norm_backward,
    .rms_norm_forward = cpu_rms_norm_forward,
    .rms_norm_backward = cpu_rms_norm_backward,
};
