/* update.c: the fused per-parameter update loops of SGD and Adam/AdamW.
 *
 * PyTorch's single-tensor path runs each update as a chain of in-place tensor ops (mul_, add_,
 * addcmul_, sqrt, div, add_, addcdiv_), one pass over memory each. We do the same arithmetic
 * in one pass per parameter, element by element, rounding to float after each op exactly
 * where PyTorch does, so the results match PyTorch's to the last bit or very nearly:
 *   - scalars (lr, betas, ...) are cast to float, as ATen does for float tensors;
 *   - "x.add_(y, alpha=a)" is ATen's vectorised fmadd(y, a, x): one fused multiply-add, fmaf;
 *   - "v.addcmul_(g, g, value=c)" computes v + (c * g) * g, and torch's AVX2 kernels are built
 *     with GCC's -ffp-contract=fast, which fuses that last multiply-add too: fmaf;
 *   - everything else is rounded op by op, so the compiler must not contract a * b + c into
 *     an FMA on its own: contraction is switched off for this file (the library is built with
 *     -ffp-contract=fast).
 * With these roundings all 260 parameter checks of tests/test_optim.c (SGD, Adam, AdamW,
 * amsgrad, 10 steps each) equal torch 1.13's CPU results bit for bit.
 * Loops are elementwise with no reduction, so results do not depend on the thread count.
 */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "optim_internal.h"

/* Below this many elements a parallel region costs more than the loop. */
#define PAR_MIN 32768

/* SGD, torch/optim/sgd.py _single_tensor_sgd:
 *   d_p = -grad if maximize else grad
 *   d_p = d_p + wd * p                               (weight_decay != 0)
 *   buf = d_p (first step) | buf = buf * momentum + (1 - dampening) * d_p
 *   d_p = d_p + momentum * buf (nesterov) | d_p = buf (momentum != 0)
 *   p   = p - lr * d_p
 */
void dc__sgd_update(float *p, const float *g, float *buf, int64_t n, sgd_consts c)
{
    const bool use_mom = buf != NULL;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = c.maximize ? -g[i] : g[i];
        if (c.wd != 0.0f) d = fmaf(p[i], c.wd, d);
        if (use_mom) {
            float b;
            if (c.first) {
                b = d;
            } else {
                b = buf[i] * c.momentum;
                b = fmaf(d, c.one_minus_dampening, b);
            }
            buf[i] = b;
            d = c.nesterov ? fmaf(b, c.momentum, d) : b;
        }
        p[i] = fmaf(d, c.lr_neg, p[i]);
    }
}

/* Adam / AdamW, torch/optim/adam.py and adamw.py (_single_tensor_*, capturable=False):
 *   g = -grad if maximize else grad
 *   AdamW: p = p * (1 - lr * wd)          Adam: g = g + wd * p
 *   m = m * beta1 + (1 - beta1) * g
 *   v = v * beta2 + (1 - beta2) * g * g   (addcmul_: fma((1 - beta2) * g, g, v))
 *   vmax = max(vmax, v) (amsgrad; then used in place of v)
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   p = p + (-lr / (1 - beta1^t) * m) / denom
 */
/* One element of Adam (the scalar tail, and the whole loop without AVX2); `ams` is a
 * constant at each call, so the amsgrad branch is resolved at compile time. */
static inline __attribute__((always_inline)) void adam_elem(float *restrict p, const float *restrict g,
                                                            float *restrict m, float *restrict v,
                                                            float *restrict vmax, int64_t i,
                                                            const adam_consts *c, bool ams)
{
    float gi = c->maximize ? -g[i] : g[i];
    float pi = p[i];
    if (c->decay != 1.0f) pi = pi * c->decay;
    if (c->wd != 0.0f) gi = fmaf(pi, c->wd, gi);
    float mi = m[i] * c->beta1;
    mi = fmaf(gi, c->one_minus_beta1, mi);
    float vi = v[i] * c->beta2;
    vi = fmaf(c->one_minus_beta2 * gi, gi, vi);
    m[i] = mi;
    v[i] = vi;
    if (ams) {
        /* torch.maximum: NaN propagates */
        float mx = vmax[i];
        mx = (vi > mx || vi != vi) ? vi : mx;
        vmax[i] = mx;
        vi = mx;
    }
    float denom = sqrtf(vi) / c->bc2_sqrt + c->eps;
    p[i] = pi + c->step_size_neg * mi / denom;
}

#if defined(__AVX2__) && defined(__FMA__)
/* Eight elements of adam_elem with AVX2 + FMA. GCC will not vectorise sqrtf while it may set
 * errno (a "#pragma GCC optimize" does not lift that), so the loop is written out; every
 * operation is the IEEE-rounded one of the scalar code, so results are identical. */
static inline __attribute__((always_inline)) void adam_vec8(float *restrict p, const float *restrict g,
                                                            float *restrict m, float *restrict v,
                                                            float *restrict vmax, int64_t i,
                                                            const adam_consts *c, bool ams)
{
    __m256 gi = _mm256_loadu_ps(g + i);
    if (c->maximize) gi = _mm256_sub_ps(_mm256_setzero_ps(), gi);
    __m256 pi = _mm256_loadu_ps(p + i);
    if (c->decay != 1.0f) pi = _mm256_mul_ps(pi, _mm256_set1_ps(c->decay));
    if (c->wd != 0.0f) gi = _mm256_fmadd_ps(pi, _mm256_set1_ps(c->wd), gi);
    __m256 mi = _mm256_mul_ps(_mm256_loadu_ps(m + i), _mm256_set1_ps(c->beta1));
    mi = _mm256_fmadd_ps(gi, _mm256_set1_ps(c->one_minus_beta1), mi);
    __m256 vi = _mm256_mul_ps(_mm256_loadu_ps(v + i), _mm256_set1_ps(c->beta2));
    vi = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(c->one_minus_beta2), gi), gi, vi);
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    if (ams) {
        __m256 mx = _mm256_loadu_ps(vmax + i);
        /* vi > mx, or vi is NaN: take vi (torch.maximum propagates NaN) */
        __m256 take = _mm256_or_ps(_mm256_cmp_ps(vi, mx, _CMP_GT_OQ), _mm256_cmp_ps(vi, vi, _CMP_UNORD_Q));
        mx = _mm256_blendv_ps(mx, vi, take);
        _mm256_storeu_ps(vmax + i, mx);
        vi = mx;
    }
    __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), _mm256_set1_ps(c->bc2_sqrt)),
                                 _mm256_set1_ps(c->eps));
    __m256 upd = _mm256_div_ps(_mm256_mul_ps(_mm256_set1_ps(c->step_size_neg), mi), denom);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, upd));
}
#define ADAM_VEC 8
#else
#define ADAM_VEC 1
#endif

/* Blocks of 8 (vector) elements are split among threads; the remainder runs scalar. */
static void adam_run(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                     const adam_consts *c, bool ams)
{
    int64_t nv = n / ADAM_VEC;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t b = 0; b < nv; b++) {
#if ADAM_VEC == 8
        adam_vec8(p, g, m, v, vmax, b * 8, c, ams);
#else
        adam_elem(p, g, m, v, vmax, b, c, ams);
#endif
    }
    for (int64_t i = nv * ADAM_VEC; i < n; i++) adam_elem(p, g, m, v, vmax, i, c, ams);
}

void dc__adam_update(float *p, const float *g, float *m, float *v, float *vmax, int64_t n,
                     adam_consts c)
{
    if (vmax)
        adam_run(p, g, m, v, vmax, n, &c, true);
    else
        adam_run(p, g, m, v, NULL, n, &c, false);
}
