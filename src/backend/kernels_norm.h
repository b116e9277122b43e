/* kernels_norm.h: the backend kernels behind the normalisation ops (src/ops/norm.c):
 * batch norm, layer norm, group norm and RMS norm, forward and backward.
 *
 * Every kernel works on contiguous F32 data. Statistics are accumulated in double (as
 * PyTorch's CPU kernels do for batch norm), so results match PyTorch to float rounding.
 * Outputs named d* may be NULL when that gradient is not wanted; those that are given are
 * overwritten (not accumulated into). */
#ifndef DEEPC_KERNELS_NORM_H
#define DEEPC_KERNELS_NORM_H

#include <stdbool.h>
#include <stdint.h>

#include "deepc/core.h"

struct dc_kernels_norm {
    /* Batch norm of x viewed as [n, c, s] (s = product of the spatial dims, 1 for [N, C]).
     * training: per-channel batch mean and 1/sqrt(biased var + eps) go to save_mean /
     * save_invstd ([c] each); when running_mean / running_var are non-NULL they are updated
     * in place: r = (1 - momentum) r + momentum * stat, with the unbiased variance
     * (n*s / (n*s - 1) times the biased one), as PyTorch. n*s must be > 1.
     * eval: running_mean / running_var (both required) are used; save_mean / save_invstd
     * receive them as mean and 1/sqrt(running_var + eps).
     * weight / bias [c] may be NULL (1 and 0). */
    dc_status (*batch_norm_forward)(const float *x, float *y, int64_t n, int64_t c, int64_t s,
                                    const float *weight, const float *bias, float *running_mean,
                                    float *running_var, bool training, float momentum,
                                    float eps, float *save_mean, float *save_invstd);
    /* Gradients of batch_norm_forward from dy. `training` says whether the statistics were
     * the batch's own (then they depend on x). */
    dc_status (*batch_norm_backward)(const float *x, const float *dy, int64_t n, int64_t c,
                                     int64_t s, const float *weight, const float *save_mean,
                                     const float *save_invstd, bool training, float *dx,
                                     float *dweight, float *dbias);

    /* Normalises each of `rows` rows of length d: y = (x - mean) * rstd * w + b, with
     * rstd = 1/sqrt(biased var + eps); mean / rstd [rows] are written for backward.
     * weight / bias [d] may be NULL. */
    dc_status (*layer_norm_forward)(const float *x, float *y, int64_t rows, int64_t d,
                                    const float *weight, const float *bias, float eps,
                                    float *mean, float *rstd);
    dc_status (*layer_norm_backward)(const float *x, const float *dy, int64_t rows, int64_t d,
                                     const float *weight, const float *mean, const float *rstd,
                                     float *dx, float *dweight, float *dbias);

    /* Group norm of x viewed as [n, c, s] with `groups` groups of c/groups channels:
     * statistics per (sample, group) go to mean / rstd [n * groups]; weight / bias are
     * per channel [c] (or NULL). */
    dc_status (*group_norm_forward)(const float *x, float *y, int64_t n, int64_t c, int64_t s,
                                    int64_t groups, const float *weight, const float *bias,
                                    float eps, float *mean, float *rstd);
    dc_status (*group_norm_backward)(const float *x, const float *dy, int64_t n, int64_t c,
                                     int64_t s, int64_t groups, const float *weight,
                                     const float *mean, const float *rstd, float *dx,
                                     float *dweight, float *dbias);

    /* RMS norm of `rows` rows of length d: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps)
     * written to rstd [rows]; weight [d] may be NULL. */
    dc_status (*rms_norm_forward)(const float *x, float *y, int64_t rows, int64_t d,
                                  const float *weight, float eps, float *rstd);
    dc_status (*rms_norm_backward)(const float *x, const float *dy, int64_t rows, int64_t d,
                                   const float *weight, const float *rstd, float *dx,
                                   float *dweight);
};

#endif /* DEEPC_KERNELS_NORM_H */
