/* cpu/row_math.h: the vectorisable pieces of a row softmax shared by the loss kernels
 * (cross-entropy) and the attention softmax (misc.c): a branch-free expf and a NaN-skipping
 * row max. Static inline: each kernel file compiles them with its own loop. */
#ifndef DEEPC_CPU_ROW_MATH_H
#define DEEPC_CPU_ROW_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../kernels_elementwise.h" /* dc__exp_poly */

/* ---------------------------------------------------------------------------------------
 * A branch-free expf the compiler vectorises (Cephes' polynomial, within 1e-7 relative of
 * exp over the float range). exp(x) for x below the float range is exactly 0, so masked
 * (-inf) logits contribute nothing.
 * ------------------------------------------------------------------------------------- */

static inline float sel_f(int c, float a, float b)
{
    uint32_t m = -(uint32_t)c, ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    uint32_t u = (ua & m) | (ub & ~m);
    float r;
    memcpy(&r, &u, 4);
    return r;
}

static inline float exp_f(float x)
{
    float t = x * 1.44269504088896341f;
    t = sel_f(t < -126.0f, -126.0f, t);
    t = sel_f(t > 127.0f, 127.0f, t);
    float sh = t + 12582912.0f; /* 1.5 * 2^23: rounds t to an integer in the low mantissa */
    float n = sh - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = dc__exp_poly(r);
    uint32_t bits;
    memcpy(&bits, &sh, 4);
    uint32_t e = ((bits - 0x4B400000u) + 127u) << 23;
    float sc;
    memcpy(&sc, &e, 4);
    return sel_f(x < -87.33654f, 0.0f, p * sc);
}

/* max of a row (NaN elements are skipped; -inf for an empty row). A scalar running max
 * cannot be vectorised without fast-math, and GCC turns 8 scalar lanes into scalar
 * compares, so this uses 8-float vectors (a GCC/Clang extension) with a bitwise select. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline float row_max(const float *z, int64_t n)
{
    const float ninf = -INFINITY;
    v8f m = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        v8f v;
        memcpy(&v, z + k, sizeof v);
        v8i gt = v > m;
        m = (v8f)(((v8i)v & gt) | ((v8i)m & ~gt));
    }
    float r = ninf;
    for (int q = 0; q < 8; q++) r = m[q] > r ? m[q] : r;
    for (; k < n; k++) r = z[k] > r ? z[k] : r;
    return r;
}

#endif
