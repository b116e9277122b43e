/* cpu/loss.c: CPU kernels for cross-entropy (log-softmax fused in), NLL and MSE losses,
 * declared in ../kernels_loss.h.
 *
 * Cross-entropy never materialises log-softmax: forward keeps only each position's
 * logsumexp, backward recomputes softmax from it. Positions are independent and run in
 * parallel; reductions to one value are summed afterwards in a fixed order, so results do
 * not depend on the thread count. */
#include <math.h>
#include <string.h>

#include "../../core/internal.h"
#include "parallel.h"
#include "row_math.h"
#include "../kernels_loss.h"

#define PAR_MIN 32768
/* positions handled together when the class dim is strided ([N, C, d...] inputs): the
 * loop over classes then reads rows of BLOCK contiguous positions */
#define BLOCK 64


/* ---------------------------------------------------------------------------------------
 * Reductions and target checks
 * ------------------------------------------------------------------------------------- */

/* sum (or mean over count) of losses, in index order, in double */
static void reduce_losses(const float *losses, int64_t n, dc_reduction reduction, int64_t count,
                          float *out)
{
    if (!out || reduction == DC_REDUCE_NONE) return;
    double a[4] = {0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) a[k] += losses[i + k];
    for (; i < n; i++) a[0] += losses[i];
    double sum = (a[0] + a[1]) + (a[2] + a[3]);
    if (reduction == DC_REDUCE_SUM)
        *out = (float)sum;
    else
        *out = count ? (float)(sum / (double)count) : NAN; /* all ignored: 0/0, as PyTorch */
}

/* The first target outside [0, c) that is not ignore_index (sequential, so the error
 * names the same element whatever the thread count); -1 when all are valid. */
static int64_t find_bad_target(const int64_t *target, int64_t m, int64_t c, int64_t ignore_index)
{
    for (int64_t i = 0; i < m; i++)
        if (target[i] != ignore_index && (target[i] < 0 || target[i] >= c)) return i;
    return -1;
}

static dc_status bad_target(const char *op, const int64_t *target, int64_t at, int64_t c)
{
    return dc_set_error(DC_ERR_ARG, "%s: target %lld at position %lld is out of bounds for %lld classes",
                        op, (long long)target[at], (long long)at, (long long)c);
}

static int64_t count_valid(const int64_t *target, int64_t m, int64_t ignore_index)
{
    int64_t count = 0;
    for (int64_t i = 0; i < m; i++) count += target[i] != ignore_index;
    return count;
}

/* ---------------------------------------------------------------------------------------
 * Cross-entropy
 * ------------------------------------------------------------------------------------- */

/* sum_k exp(z_k - mx) and sum_k z_k over a row: vectorised float partial sums over blocks
 * of 512, added up in double (so rows of 50k classes keep full precision) */
static void row_expsum(const float *z, int64_t c, float mx, double *sum, double *zsum)
{
    double s = 0, zs = 0;
    for (int64_t k0 = 0; k0 < c; k0 += 512) {
        int64_t k1 = DC_MIN(c, k0 + 512), k = k0;
        float a[8] = {0}, b[8] = {0};
        for (; k + 8 <= k1; k += 8)
            for (int q = 0; q < 8; q++) {
                a[q] += exp_f(z[k + q] - mx);
                b[q] += z[k + q];
            }
        for (; k < k1; k++) {
            a[0] += exp_f(z[k] - mx);
            b[0] += z[k];
        }
        s += ((double)a[0] + a[1] + a[2] + a[3]) + ((double)a[4] + a[5] + a[6] + a[7]);
        zs += ((double)b[0] + b[1] + b[2] + b[3]) + ((double)b[4] + b[5] + b[6] + b[7]);
    }
    *sum = s;
    *zsum = zs;
}

/* With lse = log sum_k exp(z_k) and logp_k = z_k - lse:
 *   loss = (1 - ls) (lse - z_t) + ls / c * sum_k (lse - z_k) = (1 - ls)(lse - z_t) + ls (lse - mean_k z_k) */
static dc_status cpu_cross_entropy_forward(const float *logits, const int64_t *target, int64_t n,
                                           int64_t c, int64_t s, int64_t ignore_index,
                                           float label_smoothing, dc_reduction reduction,
                                           float *losses, float *lse, float *out, int64_t *count)
{
    int64_t bad = find_bad_target(target, n * s, c, ignore_index);
    if (bad >= 0) return bad_target("cross_entropy", target, bad, c);
    const double ls = label_smoothing;
    if (s == 1) {
        DC_PAR_FOR(n * c > PAR_MIN, for (int64_t i = 0; i < n; i++) {
            const float *z = logits + i * c;
            float mx = row_max(z, c);
            if (mx == -INFINITY) mx = 0; /* all -inf: keep exp() finite, lse = -inf */
            double sum, zsum;
            row_expsum(z, c, mx, &sum, &zsum);
            double l = (double)mx + log(sum);
            lse[i] = (float)l;
            int64_t t = target[i];
            if (t == ignore_index) {
                losses[i] = 0;
                continue;
            }
            double v = (1.0 - ls) * (l - z[t]);
            if (ls != 0) v += ls * (l - zsum / (double)c);
            losses[i] = (float)v;
        });
    } else {
        int64_t jblocks = (s + BLOCK - 1) / BLOCK;
        DC_PAR_FOR(n * c * s > PAR_MIN, for (int64_t task = 0; task < n * jblocks; task++) {
            int64_t i = task / jblocks, j0 = (task % jblocks) * BLOCK, nb = DC_MIN(BLOCK, s - j0);
            const float *z = logits + i * c * s + j0;
            float mx[BLOCK], a[BLOCK], zs[BLOCK];
            for (int64_t j = 0; j < nb; j++) {
                mx[j] = -INFINITY;
                a[j] = zs[j] = 0;
            }
            for (int64_t k = 0; k < c; k++)
                for (int64_t j = 0; j < nb; j++) mx[j] = sel_f(z[k * s + j] > mx[j], z[k * s + j], mx[j]);
            for (int64_t j = 0; j < nb; j++)
                if (mx[j] == -INFINITY) mx[j] = 0;
            for (int64_t k = 0; k < c; k++)
                for (int64_t j = 0; j < nb; j++) {
                    a[j] += exp_f(z[k * s + j] - mx[j]);
                    zs[j] += z[k * s + j];
                }
            for (int64_t j = 0; j < nb; j++) {
                int64_t p = i * s + j0 + j;
                double l = (double)mx[j] + log((double)a[j]);
                lse[p] = (float)l;
                int64_t t = target[p];
                if (t == ignore_index) {
                    losses[p] = 0;
                    continue;
                }
                double v = (1.0 - ls) * (l - z[t * s + j]);
                if (ls != 0) v += ls * (l - (double)zs[j] / (double)c);
                losses[p] = (float)v;
            }
        });
    }
    *count = count_valid(target, n * s, ignore_index);
    reduce_losses(losses, n * s, reduction, *count, out);
    return DC_OK;
}

/* d loss / d z_k = g * (softmax_k - (1 - ls) [k == t] - ls / c), softmax_k = exp(z_k - lse):
 * the nll term contributes softmax - onehot, the smoothing term ls/c * sum_k(lse - z_k)
 * contributes ls * softmax - ls/c; together softmax - (1-ls) onehot - ls/c. */
static dc_status cpu_cross_entropy_backward(const float *logits, const int64_t *target,
                                            const float *lse, int64_t n, int64_t c, int64_t s,
                                            int64_t ignore_index, float label_smoothing,
                                            const float *grad, int64_t grad_stride, float scale,
                                            float *dlogits)
{
    const float uni = label_smoothing / (float)c, hit = 1.0f - label_smoothing;
    if (s == 1) {
        DC_PAR_FOR(n * c > PAR_MIN, for (int64_t i = 0; i < n; i++) {
            const float *z = logits + i * c;
            float *d = dlogits + i * c;
            int64_t t = target[i];
            if (t == ignore_index) {
                memset(d, 0, (size_t)c * sizeof *d);
                continue;
            }
            float g = grad[i * grad_stride] * scale, l = lse[i];
            for (int64_t k = 0; k < c; k++) d[k] = g * (exp_f(z[k] - l) - uni);
            d[t] -= g * hit;
        });
    } else {
        int64_t jblocks = (s + BLOCK - 1) / BLOCK;
        DC_PAR_FOR(n * c * s > PAR_MIN, for (int64_t task = 0; task < n * jblocks; task++) {
            int64_t i = task / jblocks, j0 = (task % jblocks) * BLOCK, nb = DC_MIN(BLOCK, s - j0);
            const float *z = logits + i * c * s + j0;
            float *d = dlogits + i * c * s + j0;
            float g[BLOCK], l[BLOCK];
            for (int64_t j = 0; j < nb; j++) {
                int64_t p = i * s + j0 + j;
                g[j] = target[p] == ignore_index ? 0.0f : grad[p * grad_stride] * scale;
                l[j] = lse[p];
            }
            for (int64_t k = 0; k < c; k++)
                for (int64_t j = 0; j < nb; j++) d[k * s + j] = g[j] * (exp_f(z[k * s + j] - l[j]) - uni);
            for (int64_t j = 0; j < nb; j++) {
                int64_t t = target[i * s + j0 + j];
                if (t != ignore_index) d[t * s + j] -= g[j] * hit;
            }
        });
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * NLL
 * ------------------------------------------------------------------------------------- */

static dc_status cpu_nll_loss_forward(const float *log_probs, const int64_t *target, int64_t n,
                                      int64_t c, int64_t s, int64_t ignore_index,
                                      dc_reduction reduction, float *losses, float *out,
                                      int64_t *count)
{
    int64_t bad = find_bad_target(target, n * s, c, ignore_index);
    if (bad >= 0) return bad_target("nll_loss", target, bad, c);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) {
            int64_t p = i * s + j, t = target[p];
            losses[p] = t == ignore_index ? 0.0f : -log_probs[(i * c + t) * s + j];
        }
    *count = count_valid(target, n * s, ignore_index);
    reduce_losses(losses, n * s, reduction, *count, out);
    return DC_OK;
}

/* d loss / d logp_k = -g [k == t] */
static dc_status cpu_nll_loss_backward(const int64_t *target, int64_t n, int64_t c, int64_t s,
                                       int64_t ignore_index, const float *grad, int64_t grad_stride,
                                       float scale, float *dlog_probs)
{
    memset(dlog_probs, 0, (size_t)(n * c * s) * sizeof *dlog_probs);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < s; j++) {
            int64_t p = i * s + j, t = target[p];
            if (t != ignore_index) dlog_probs[(i * c + t) * s + j] = -grad[p * grad_stride] * scale;
        }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * MSE
 * ------------------------------------------------------------------------------------- */

/* elements per partial sum: the partials are summed in order afterwards, so the result is
 * the same for every thread count */
#define MSE_CHUNK 4096

static dc_status cpu_mse_forward(const float *a, const float *b, int64_t n, dc_reduction reduction,
                                 float *losses, float *out)
{
    if (losses) {
        DC_PAR_FOR(n > PAR_MIN, for (int64_t i = 0; i < n; i++) {
            float d = a[i] - b[i];
            losses[i] = d * d;
        });
    }
    if (!out || reduction == DC_REDUCE_NONE) return DC_OK;
    int64_t chunks = (n + MSE_CHUNK - 1) / MSE_CHUNK;
    double *part = chunks ? dc__malloc((size_t)chunks * sizeof *part) : NULL;
    if (chunks && !part) return dc_last_status();
    DC_PAR_FOR(n > PAR_MIN, for (int64_t ch = 0; ch < chunks; ch++) {
        int64_t i0 = ch * MSE_CHUNK, i1 = DC_MIN(n, i0 + MSE_CHUNK);
        double acc[8] = {0};
        int64_t i = i0;
        for (; i + 8 <= i1; i += 8)
            for (int k = 0; k < 8; k++) {
                double d = (double)a[i + k] - b[i + k];
                acc[k] += d * d;
            }
        for (; i < i1; i++) {
            double d = (double)a[i] - b[i];
            acc[0] += d * d;
        }
        part[ch] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    });
    double sum = 0;
    for (int64_t ch = 0; ch < chunks; ch++) sum += part[ch];
    free(part);
    if (reduction == DC_REDUCE_SUM)
        *out = (float)sum;
    else
        *out = n ? (float)(sum / (double)n) : NAN; /* mean of nothing: NaN, as PyTorch */
    return DC_OK;
}

/* d (a - b)^2 / da = 2 (a - b), / db = -2 (a - b) */
static dc_status cpu_mse_backward(const float *a, const float *b, int64_t n, const float *grad,
                                  int64_t grad_stride, float scale, float *da, float *db)
{
    const float k = 2.0f * scale;
    DC_PAR_FOR(n > PAR_MIN, for (int64_t i = 0; i < n; i++) {
        float v = k * (a[i] - b[i]) * grad[i * grad_stride];
        if (da) da[i] = v;
        if (db) db[i] = -v;
    });
    return DC_OK;
}

const struct dc_kernels_loss dc_cpu_loss_kernels = {
    .cross_entropy_forward = cpu_cross_entropy_forward,
    .cross_entropy_backward = cpu_cross_entropy_backward,
    .nll_loss_forward = cpu_nll_loss_forward,
    .nll_loss_backward = cpu_nll_loss_backward,
    .mse_forward = cpu_mse_forward,
    .mse_backward = cpu_mse_backward,
};
