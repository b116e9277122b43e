/* clip.c: gradient clipping (torch.nn.utils.clip_grad_norm_ and clip_grad_value_).
 *
 * clip_grad_norm_ (torch 1.13):
 *   norms      = [norm(g, p) for each gradient]          (one float per tensor)
 *   total      = norm(stack(norms), p)                   (float)
 *   clip_coef  = max_norm / (total + 1e-6)               (float)
 *   g         *= min(clip_coef, 1)                       (every gradient, even when 1)
 * Each tensor's sum of |g|^p is accumulated in double over fixed-size chunks whose partial
 * sums are added in chunk order, so the result does not depend on the thread count (and is
 * at least as accurate as PyTorch's float accumulation). */
#include <math.h>

#include "optim_internal.h"

#define CHUNK 16384

/* *out = sum |x|^p over n floats (p = 2 and p = 1 get fast paths); deterministic */
static dc_status pow_sum(const float *x, int64_t n, double p, double *out)
{
    int64_t nchunks = (n + CHUNK - 1) / CHUNK;
    double total = 0;
    /* fixed chunking, partials combined serially in order */
    double partial_small[64];
    double *partial = nchunks <= 64 ? partial_small : dc__malloc((size_t)nchunks * sizeof(double));
    if (!partial) return dc_last_status();
#pragma omp parallel for schedule(static) if (nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * CHUNK, hi = DC_MIN(n, lo + CHUNK);
        double s = 0;
        if (p == 2) {
            for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
        } else if (p == 1) {
            for (int64_t i = lo; i < hi; i++) s += fabs((double)x[i]);
        } else {
            for (int64_t i = lo; i < hi; i++) s += pow(fabs((double)x[i]), p);
        }
        partial[c] = s;
    }
    for (int64_t c = 0; c < nchunks; c++) total += partial[c];
    if (partial != partial_small) free(partial);
    *out = total;
    return DC_OK;
}

static float max_abs(const float *x, int64_t n)
{
    float m = 0;
    /* max is order-independent, so a plain reduction is deterministic */
#pragma omp parallel for reduction(max : m) schedule(static) if (n > CHUNK)
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m || a != a) m = a;
    }
    return m;
}

static dc_status check_grads(const char *op, int n, dc_tensor *const *params)
{
    if (n < 0 || (n > 0 && !params)) return dc_set_error(DC_ERR_ARG, "%s: %d parameters from a NULL array", op, n);
    for (int i = 0; i < n; i++) {
        if (!params[i]) return dc_set_error(DC_ERR_ARG, "%s: parameter %d is NULL", op, i);
        const dc_tensor *g = params[i]->grad;
        if (!g) continue;
        if (g->dtype != DC_F32 || !dc_is_contiguous(g) || g->storage->device != DC_CPU)
            return dc_set_error(DC_ERR_ARG, "%s: the gradient of parameter %d must be a contiguous F32 CPU tensor",
                                op, i);
    }
    return DC_OK;
}

double dc_clip_grad_norm_(int n, dc_tensor *const *params, double max_norm, double norm_type)
{
    const char *op = "clip_grad_norm_";
    if (check_grads(op, n, params)) return NAN;
    if (!(norm_type > 0)) {
        dc_set_error(DC_ERR_ARG, "%s: norm_type must be positive or INFINITY, got %g", op, norm_type);
        return NAN;
    }
    bool inf_norm = isinf(norm_type);
    int count = 0;
    float total = 0;      /* float, as torch's stacked norm */
    double acc = 0;       /* sum over tensors of norm_i^p */
    for (int i = 0; i < n; i++) {
        dc_tensor *g = params[i]->grad;
        if (!g) continue;
        count++;
        const float *x = dc_data_f32(g);
        int64_t m = dc_numel(g);
        if (inf_norm) {
            float a = max_abs(x, m);
            if (a > total || a != a) total = a;
        } else {
            double s = 0;
            if (pow_sum(x, m, norm_type, &s)) return NAN;
            /* each tensor's norm is rounded to float before the norm of norms, as torch */
            float norm_i = (float)(norm_type == 2 ? sqrt(s) : pow(s, 1.0 / norm_type));
            acc += norm_type == 2 ? (double)norm_i * norm_i : pow(fabs((double)norm_i), norm_type);
        }
    }
    if (count == 0) return 0.0;
    if (!inf_norm) total = (float)(norm_type == 2 ? sqrt(acc) : pow(acc, 1.0 / norm_type));
    float coef = (float)max_norm / (total + 1e-6f);
    if (coef > 1.0f) coef = 1.0f;
    for (int i = 0; i < n; i++) {
        dc_tensor *g = params[i]->grad;
        if (!g) continue;
        float *x = dc_data_f32(g);
        int64_t m = dc_numel(g);
#pragma omp parallel for schedule(static) if (m > CHUNK)
        for (int64_t k = 0; k < m; k++) x[k] *= coef;
    }
    return total;
}

dc_status dc_clip_grad_value_(int n, dc_tensor *const *params, double clip_value)
{
    if (check_grads("clip_grad_value_", n, params)) return dc_last_status();
    if (!(clip_value >= 0))
        return dc_set_error(DC_ERR_ARG, "clip_grad_value_: clip_value must be >= 0, got %g", clip_value);
    float c = (float)clip_value;
    for (int i = 0; i < n; i++) {
        dc_tensor *g = params[i]->grad;
        if (!g) continue;
        float *x = dc_data_f32(g);
        int64_t m = dc_numel(g);
#pragma omp parallel for schedule(static) if (m > CHUNK)
        for (int64_t k = 0; k < m; k++) x[k] = x[k] < -c ? -c : (x[k] > c ? c : x[k]);
    }
    return DC_OK;
}
