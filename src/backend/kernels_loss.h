/* kernels_loss.h: the backend kernels behind the losses (src/ops/loss.c): cross-entropy
 * with the log-softmax fused in, NLL and MSE.
 *
 * Class-indexed inputs are viewed as [n, c, s]: n samples, c classes, s positions (the
 * product of the trailing dims d..., 1 for [N, C]); the class of position (i, j) is read
 * from logits[(i * c + k) * s + j], its target from target[i * s + j] (I64).
 *
 * A reduction to one value is written by the kernel itself (summed in double in a fixed
 * order, so results do not depend on the thread count). Backward kernels take the upstream
 * gradient as `grad` with `grad_stride` (0: one value for every position, the reduced
 * case) and multiply it by `scale` (1/count for a mean). */
#ifndef DEEPC_KERNELS_LOSS_H
#define DEEPC_KERNELS_LOSS_H

#include <stdint.h>

#include "deepc/ops.h"

struct dc_kernels_loss {
    /* losses[n*s]: per-position loss (0 where the target is ignore_index);
     * lse[n*s]: the position's logsumexp, kept for backward;
     * out: NULL, or where the reduced value goes (sum, or sum/count for a mean);
     * *count: positions not ignored. A target outside [0, c) that is not ignore_index is
     * DC_ERR_ARG. label_smoothing ls mixes in the uniform distribution exactly as PyTorch:
     *   loss = (1 - ls) * (-logp[t]) + ls / c * sum_k(-logp[k]). */
    dc_status (*cross_entropy_forward)(const float *logits, const int64_t *target, int64_t n,
                                       int64_t c, int64_t s, int64_t ignore_index,
                                       float label_smoothing, dc_reduction reduction,
                                       float *losses, float *lse, float *out, int64_t *count);
    /* dlogits = g * (softmax - (1 - ls) * onehot(t) - ls / c), 0 at ignored positions. */
    dc_status (*cross_entropy_backward)(const float *logits, const int64_t *target,
                                        const float *lse, int64_t n, int64_t c, int64_t s,
                                        int64_t ignore_index, float label_smoothing,
                                        const float *grad, int64_t grad_stride, float scale,
                                        float *dlogits);
    /* loss = -log_probs[t] per position; same conventions as cross_entropy_forward. */
    dc_status (*nll_loss_forward)(const float *log_probs, const int64_t *target, int64_t n,
                                  int64_t c, int64_t s, int64_t ignore_index,
                                  dc_reduction reduction, float *losses, float *out,
                                  int64_t *count);
    /* dlog_probs: -g at each target, 0 elsewhere (the whole [n, c, s] is written). */
    dc_status (*nll_loss_backward)(const int64_t *target, int64_t n, int64_t c, int64_t s,
                                   int64_t ignore_index, const float *grad, int64_t grad_stride,
                                   float scale, float *dlog_probs);
    /* (a - b)^2 over n elements: into losses (if non-NULL) and/or the reduced *out. */
    dc_status (*mse_forward)(const float *a, const float *b, int64_t n, dc_reduction reduction,
                             float *losses, float *out);
    /* da = 2 (a - b) g, db = -da (either may be NULL). */
    dc_status (*mse_backward)(const float *a, const float *b, int64_t n, const float *grad,
                              int64_t grad_stride, float scale, float *da, float *db);
};

#endif /* DEEPC_KERNELS_LOSS_H */
