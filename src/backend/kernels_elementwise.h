/* kernels_elementwise.h: the elementwise kernel group (one strided "map" entry driven by an
 * op code), plus the op-layer helpers that src/ops/{elementwise,activation,softmax,reduce}.c
 * share to build broadcast outputs and call it.
 *
 * Every elementwise op, forward or backward, is one call of `map`: args[0] is the output,
 * args[1..] the inputs, each with its own element strides over the common (broadcast) shape,
 * so a broadcast input is read through 0 strides and never expanded into a copy. The kernel
 * merges dims that are contiguous in every operand, then runs a specialised inner loop
 * (all stride 1 / one operand a broadcast scalar / generic) that the compiler vectorises.
 */
#ifndef DEEPC_KERNELS_ELEMENTWISE_H
#define DEEPC_KERNELS_ELEMENTWISE_H

#include <stdint.h>

#include "backend.h"

/* Op codes. The comment gives the arity (inputs after the output), the operand dtypes and
 * what params[] holds. F32 unless noted. */
typedef enum dc_ew_op {
    /* ---- binary forward: out = f(a, b) */
    DC_EW_ADD,        /* a + params[0] * b */
    DC_EW_SUB,        /* a - b */
    DC_EW_MUL,        /* a * b */
    DC_EW_DIV,        /* a / b */
    DC_EW_POW,        /* pow(a, b) */
    DC_EW_MAXIMUM,    /* max(a, b), NaN propagating */
    DC_EW_MINIMUM,    /* min(a, b), NaN propagating */
    /* ---- unary forward: out = f(x) */
    DC_EW_COPY,       /* x */
    DC_EW_ADD_SCALAR, /* x + params[0] */
    DC_EW_MUL_SCALAR, /* x * params[0] */
    DC_EW_NEG,
    DC_EW_EXP,
    DC_EW_LOG,
    DC_EW_SQRT,
    DC_EW_RSQRT,
    DC_EW_ABS,
    DC_EW_SIN,
    DC_EW_COS,
    DC_EW_POW_SCALAR, /* pow(x, params[0]) */
    DC_EW_CLAMP,      /* min(max(x, params[0]), params[1]) */
    DC_EW_RELU,
    DC_EW_LEAKY_RELU, /* params[0] = negative slope */
    DC_EW_GELU,       /* erf form */
    DC_EW_GELU_TANH,
    DC_EW_QUICK_GELU, /* x * sigmoid(1.702 x) */
    DC_EW_SILU,
    DC_EW_TANH,
    DC_EW_SIGMOID,
    /* ---- comparisons and selection */
    DC_EW_EQ,         /* out BOOL = a == b */
    DC_EW_GT_SCALAR,  /* out BOOL = x > params[0] */
    DC_EW_LT_SCALAR,  /* out BOOL = x < params[0] */
    DC_EW_WHERE,      /* 3 inputs: cond (BOOL/U8), a, b: out = cond ? a : b */
    DC_EW_WHERE_NOT,  /* 2 inputs: cond (BOOL/U8), g: out = cond ? 0 : g */
    /* ---- backward: out = dL/dx from (gy, x[, y]) */
    DC_EW_EXP_BWD,        /* gy, y:  gy * y */
    DC_EW_LOG_BWD,        /* gy, x:  gy / x */
    DC_EW_SQRT_BWD,       /* gy, y:  gy / (2 y) */
    DC_EW_RSQRT_BWD,      /* gy, y:  -0.5 gy y^3 */
    DC_EW_ABS_BWD,        /* gy, x:  gy * sgn(x) */
    DC_EW_SIN_BWD,        /* gy, x:  gy * cos(x) */
    DC_EW_COS_BWD,        /* gy, x:  -gy * sin(x) */
    DC_EW_POW_SCALAR_BWD, /* gy, x:  gy * p x^(p-1) (0 when p == 0) */
    DC_EW_CLAMP_BWD,      /* gy, x:  gy where lo <= x <= hi */
    DC_EW_RELU_BWD,       /* gy, y:  gy where y > 0 */
    DC_EW_LEAKY_RELU_BWD, /* gy, x:  x > 0 ? gy : gy * slope */
    DC_EW_GELU_BWD,       /* gy, x */
    DC_EW_GELU_TANH_BWD,  /* gy, x */
    DC_EW_QUICK_GELU_BWD, /* gy, x */
    DC_EW_SILU_BWD,       /* gy, x */
    DC_EW_TANH_BWD,       /* gy, y:  gy (1 - y^2) */
    DC_EW_SIGMOID_BWD,    /* gy, y:  gy (1 - y) y */
    DC_EW_DIV_BWD_B,      /* gy, a, b:  -gy * ((a / b) / b) */
    DC_EW_POW_BWD_A,      /* gy, a, e:  gy * e a^(e-1) (0 where e == 0) */
    DC_EW_POW_BWD_E,      /* gy, a, e, out:  gy * out * log(a) (0 where a == 0 and e >= 0) */
    DC_EW_MAXMIN_BWD,     /* gy, a, b: a == b ? gy/2 : (a loses ? 0 : gy), where a loses when
                           * a < b (params[0] > 0: maximum) or a > b (params[0] <= 0: minimum) */
    DC_EW_EXP_DIFF_MUL,   /* gy, x, c:  gy * exp(x - c) (logsumexp backward) */
    DC_EW_VAR_BWD,        /* gy, x, mean:  (params[0] * gy) * (x - mean) */
    DC_EW_OP_COUNT
} dc_ew_op;

struct dc_kernels_elementwise {
    /* args[0] = output, args[1..nargs-1] = inputs; strides[k] are element strides of args[k]
     * over shape (0 for broadcast dims); params (2 floats) as described per op. The output may alias
     * an input with the same strides (in-place ops: dst = dst + alpha * src). */
    dc_status (*map)(dc_ew_op op, int nargs, void *const *args, const int64_t *const *strides,
                     int ndim, const int64_t *shape, const float *params);
};

/* ---------------------------------------------------------------------------------------
 * Op-layer helpers (defined in src/ops/elementwise.c; not kernels)
 * ------------------------------------------------------------------------------------- */

/* Broadcasts the inputs, allocates the output (out_dtype), and runs `op`. Records no grad.
 * `name` is the op named in errors; params is NULL or 2 floats. Returns NULL with an error set. */
dc_tensor *dc__ew_apply(const char *name, dc_ew_op op, int nin, dc_tensor *const *ins,
                        dc_dtype out_dtype, const float *params);
/* The common elementwise front-end: checks that the inputs are present, on one device and
 * F32 (keeps an earlier error for NULL inputs). */
bool dc__ew_check(const char *name, int nin, dc_tensor *const *ins);
/* A differentiable unary op: out = op(x); backward gx = bwd_op(gy, use_out ? out : x) with
 * the same params (up to 2). */
dc_tensor *dc__ew_unary(const char *name, dc_ew_op op, dc_tensor *x, const float *params,
                        dc_ew_op bwd_op, bool use_out);
/* The same op written into x's own buffer (for ops whose backward reads only their output).
 * Returns a new tensor over x's storage that carries the autograd record; x's values are
 * overwritten. Works in place only when nothing can read x's old values later (see
 * dc_relu_); otherwise it falls back to dc__ew_unary. */
dc_tensor *dc__ew_unary_inplace(const char *name, dc_ew_op op, dc_tensor *x, const float *params,
                                dc_ew_op bwd_op);
/* Saves a storage-sharing alias of an op's own output for its backward. Saving `out` itself
 * would make a reference cycle (out -> grad_fn -> saved out) that leaks whenever backward
 * never runs. */
void dc__save_output(dc_node *node, dc_tensor *out);
/* Element strides of t read over a broadcast shape (0 where t is broadcast). */
void dc__broadcast_strides(const dc_tensor *t, int ndim, const int64_t *shape, int64_t *stride);

/* ---------------------------------------------------------------------------------------
 * Branch-free float math for kernels. libm's expf/tanhf/erff are calls the compiler cannot
 * vectorise; these are plain arithmetic and selects, so loops over them become AVX2/AVX-512
 * code. Measured against double-precision references: exp <= 1 ulp (Cephes polynomial,
 * subnormal results included), tanh <= 5 ulp / 3e-7 absolute and erf <= 6 ulp / 4e-7
 * absolute (Eigen's rational approximations); NaN and +-inf handled like libm.
 * ------------------------------------------------------------------------------------- */

#include <math.h>
#include <string.h>

static inline float dc__f32_from_bits(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
/* e^r for the reduced argument |r| <= ln2/2: Cephes' degree-6 polynomial. Every exp in the
 * library (dc__vexpf below, the row kernels' exp_f, the RNN gates, the SD softmax) reduces
 * x = n ln2 + r its own way for its input range and shares these coefficients. */
static inline float dc__exp_poly(float r)
{
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}
/* exp: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n applied as two
 * halves so that n in [-150, 129] neither under- nor overflows the exponent field early */
static inline float dc__vexpf(float x)
{
    float xs = x != x ? 0.0f : x;
    xs = xs < -104.0f ? -104.0f : xs;
    xs = xs > 89.0f ? 89.0f : xs;
    float n = floorf(xs * 1.44269504088896341f + 0.5f);
    float r = xs - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = dc__exp_poly(r);
    int32_t ni = (int32_t)n;
    int32_t e1 = ni >> 1, e2 = ni - e1;
    float y = p * dc__f32_from_bits((e1 + 127) << 23) * dc__f32_from_bits((e2 + 127) << 23);
    return x != x ? x : y;
}
/* tanh: odd rational approximation on [-7.9, 7.9] (beyond, tanh rounds to +-1) */
static inline float dc__vtanhf(float x)
{
    float xc = x < -7.90531110763549805f ? -7.90531110763549805f : x;
    xc = xc > 7.90531110763549805f ? 7.90531110763549805f : xc;
    float x2 = xc * xc;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    float y = p / q;
    return fabsf(x) < 0.0004f ? x : y;
}
/* erf: odd rational approximation on [-4, 4] (beyond, erf rounds to +-1) */
static inline float dc__verff(float x)
{
    float xc = x < -4.0f ? -4.0f : x;
    xc = xc > 4.0f ? 4.0f : xc;
    float x2 = xc * xc;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * xc;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

#endif /* DEEPC_KERNELS_ELEMENTWISE_H */
