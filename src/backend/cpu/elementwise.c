/* elementwise.c (CPU): the strided elementwise "map" kernel behind every elementwise op,
 * activation, comparison, selection and their backward formulas.
 *
 * Shape handling: dims of size 1 are dropped and neighbouring dims that are contiguous in
 * every operand are merged, so [N, C] + [C] becomes N rows of a stride-1 loop, and a
 * contiguous same-shape op becomes one flat loop. Work is split into (row, chunk) tasks so
 * both many short rows and one long row spread over the OpenMP threads; every element is
 * computed independently, so results do not depend on the thread count.
 *
 * The math of each activation and backward follows PyTorch's CPU kernels (aten/src/ATen/
 * native/cpu/{Activation,UnaryOps,BinaryOps}Kernel.cpp and tools/autograd/derivatives.yaml,
 * v1.13), in float, so results agree to rounding.
 */
/* GCC only if-converts the selects in the vector math (dc__vexpf etc.) when FP comparisons
 * are known not to trap, and only vectorises sqrtf when it need not set errno; without these
 * the loops stay scalar. Results are unchanged (the flags drop floating-point exception and
 * errno side effects only); clang does not assume trapping math by default. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif
#include <math.h>

#include "../../core/internal.h"
#include "parallel.h"
#include "../kernels_elementwise.h"

#define EW_MAX_ARGS 5
/* elements per task: big enough to amortise scheduling, small enough to balance 2+ threads */
#define EW_CHUNK 16384
/* below this many elements a parallel region costs more than it saves */
#define EW_PAR_MIN_CHEAP 65536
#define EW_PAR_MIN_HEAVY 8192

/* sqrt(2/pi) and the other constants exactly as PyTorch spells them */
#define K_BETA ((float)(M_SQRT2 * M_2_SQRTPI * 0.5))
#define K_KAPPA 0.044715f
#define K_ALPHA ((float)(M_2_SQRTPI * M_SQRT1_2 * 0.5))

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + dc__vexpf(-x)); }

/* Inner loops. n elements; p[k] points at the first element of operand k in this run and
 * s[k] is its stride. The all-stride-1 and broadcast-scalar cases get their own loops so the
 * compiler vectorises them; the generic case handles transposed / strided views. */
#define LOOP1(OT, AT, EXPR)                                                               \
    do {                                                                                  \
        OT *o_ = (OT *)p[0];                                                              \
        const AT *a_ = (const AT *)p[1];                                                  \
        int64_t so_ = s[0], sa_ = s[1];                                                   \
        if (so_ == 1 && sa_ == 1) {                                                       \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i];                                                             \
                o_[i] = (OT)(EXPR);                                                       \
            }                                                                             \
        } else {                                                                          \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i * sa_];                                                       \
                o_[i * so_] = (OT)(EXPR);                                                 \
            }                                                                             \
        }                                                                                 \
    } while (0)

#define LOOP2(OT, AT, BT, EXPR)                                                           \
    do {                                                                                  \
        OT *o_ = (OT *)p[0];                                                              \
        const AT *a_ = (const AT *)p[1];                                                  \
        const BT *b_ = (const BT *)p[2];                                                  \
        int64_t so_ = s[0], sa_ = s[1], sb_ = s[2];                                       \
        if (so_ == 1 && sa_ == 1 && sb_ == 1) {                                           \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i];                                                             \
                BT y = b_[i];                                                             \
                o_[i] = (OT)(EXPR);                                                       \
            }                                                                             \
        } else if (so_ == 1 && sa_ == 1 && sb_ == 0) {                                    \
            const BT y = b_[0];                                                           \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i];                                                             \
                o_[i] = (OT)(EXPR);                                                       \
            }                                                                             \
        } else if (so_ == 1 && sa_ == 0 && sb_ == 1) {                                    \
            const AT x = a_[0];                                                           \
            for (int64_t i = 0; i < n; i++) {                                             \
                BT y = b_[i];                                                             \
                o_[i] = (OT)(EXPR);                                                       \
            }                                                                             \
        } else {                                                                          \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i * sa_];                                                       \
                BT y = b_[i * sb_];                                                       \
                o_[i * so_] = (OT)(EXPR);                                                 \
            }                                                                             \
        }                                                                                 \
    } while (0)

#define LOOP3(OT, AT, BT, CT, EXPR)                                                       \
    do {                                                                                  \
        OT *o_ = (OT *)p[0];                                                              \
        const AT *a_ = (const AT *)p[1];                                                  \
        const BT *b_ = (const BT *)p[2];                                                  \
        const CT *c_ = (const CT *)p[3];                                                  \
        int64_t so_ = s[0], sa_ = s[1], sb_ = s[2], sc_ = s[3];                           \
        if (so_ == 1 && sa_ == 1 && sb_ == 1 && sc_ == 1) {                               \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i];                                                             \
                BT y = b_[i];                                                             \
                CT z = c_[i];                                                             \
                o_[i] = (OT)(EXPR);                                                       \
            }                                                                             \
        } else {                                                                          \
            for (int64_t i = 0; i < n; i++) {                                             \
                AT x = a_[i * sa_];                                                       \
                BT y = b_[i * sb_];                                                       \
                CT z = c_[i * sc_];                                                       \
                o_[i * so_] = (OT)(EXPR);                                                 \
            }                                                                             \
        }                                                                                 \
    } while (0)

#define LOOP4(EXPR)                                                                       \
    do {                                                                                  \
        float *o_ = (float *)p[0];                                                        \
        const float *a_ = (const float *)p[1], *b_ = (const float *)p[2];                 \
        const float *c_ = (const float *)p[3], *d_ = (const float *)p[4];                 \
        for (int64_t i = 0; i < n; i++) {                                                 \
            float x = a_[i * s[1]], y = b_[i * s[2]], z = c_[i * s[3]], w = d_[i * s[4]]; \
            o_[i * s[0]] = (EXPR);                                                        \
        }                                                                                 \
    } while (0)

/* NaN-propagating max/min as torch.maximum / torch.minimum */
static inline float fmax_nan(float a, float b) { return (a != a || b != b) ? NAN : (a > b ? a : b); }
static inline float fmin_nan(float a, float b) { return (a != a || b != b) ? NAN : (a < b ? a : b); }
/* min(max(x, lo), hi) as torch.clamp: NaN stays NaN, and lo > hi gives hi */
static inline float clampf_(float x, float lo, float hi)
{
    float t = x < lo ? lo : x;
    return t > hi ? hi : t;
}
static inline float sgnf_(float x) { return (float)((x > 0) - (x < 0)); }

static inline float gelu_bwd(float g, float x)
{
    float cdf = 0.5f * (1.0f + dc__verff(x * (float)M_SQRT1_2));
    float pdf = K_ALPHA * dc__vexpf(-0.5f * x * x);
    return g * (cdf + x * pdf);
}

static inline float gelu_tanh_bwd(float g, float x)
{
    float x_sq = x * x;
    float x_cube = x_sq * x;
    float inner = K_BETA * (x + K_KAPPA * x_cube);
    float t = dc__vtanhf(inner);
    float left = 0.5f * x;
    float right = 1.0f + t;
    float left_derivative = 0.5f * right;
    float tanh_derivative = 1.0f - t * t;
    float inner_derivative = K_BETA * (1.0f + 3.0f * K_KAPPA * x_sq);
    float right_derivative = left * tanh_derivative * inner_derivative;
    return g * (left_derivative + right_derivative);
}

/* x * sigmoid(1.702 x) differentiated as autograd does through mul and sigmoid */
static inline float quick_gelu_bwd(float g, float x)
{
    float sg = sigmoidf_(1.702f * x);
    float gz = (g * x) * (1.0f - sg) * sg;
    return g * sg + gz * 1.702f;
}

static inline float silu_bwd(float g, float x)
{
    float sg = 1.0f / (1.0f + dc__vexpf(-x));
    return g * sg * (1.0f + x * (1.0f - sg));
}

static void run_row(dc_ew_op op, int64_t n, char *const *p, const int64_t *s, float p0, float p1)
{
    switch (op) {
    case DC_EW_ADD:
        if (p0 == 1.0f) LOOP2(float, float, float, x + y);
        else LOOP2(float, float, float, x + p0 * y);
        break;
    case DC_EW_SUB: LOOP2(float, float, float, x - y); break;
    case DC_EW_MUL: LOOP2(float, float, float, x * y); break;
    case DC_EW_DIV: LOOP2(float, float, float, x / y); break;
    case DC_EW_POW: LOOP2(float, float, float, powf(x, y)); break;
    case DC_EW_MAXIMUM: LOOP2(float, float, float, fmax_nan(x, y)); break;
    case DC_EW_MINIMUM: LOOP2(float, float, float, fmin_nan(x, y)); break;

    case DC_EW_COPY: LOOP1(float, float, x); break;
    case DC_EW_ADD_SCALAR: LOOP1(float, float, x + p0); break;
    case DC_EW_MUL_SCALAR: LOOP1(float, float, x * p0); break;
    case DC_EW_NEG: LOOP1(float, float, -x); break;
    case DC_EW_EXP: LOOP1(float, float, dc__vexpf(x)); break;
    case DC_EW_LOG: LOOP1(float, float, logf(x)); break;
    case DC_EW_SQRT: LOOP1(float, float, sqrtf(x)); break;
    case DC_EW_RSQRT: LOOP1(float, float, 1.0f / sqrtf(x)); break;
    case DC_EW_ABS: LOOP1(float, float, fabsf(x)); break;
    case DC_EW_SIN: LOOP1(float, float, sinf(x)); break;
    case DC_EW_COS: LOOP1(float, float, cosf(x)); break;
    case DC_EW_POW_SCALAR:
        /* PyTorch special-cases these exponents (pow_tensor_scalar_optimized_kernel) */
        if (p0 == 2.0f) LOOP1(float, float, x * x);
        else if (p0 == 3.0f) LOOP1(float, float, x * x * x);
        else if (p0 == 0.5f) LOOP1(float, float, sqrtf(x));
        else if (p0 == -0.5f) LOOP1(float, float, 1.0f / sqrtf(x));
        else if (p0 == -1.0f) LOOP1(float, float, 1.0f / x);
        else if (p0 == -2.0f) LOOP1(float, float, 1.0f / (x * x));
        else LOOP1(float, float, powf(x, p0));
        break;
    case DC_EW_CLAMP:
        LOOP1(float, float, clampf_(x, p0, p1));
        break;
    case DC_EW_RELU: LOOP1(float, float, x != x ? x : (x > 0.0f ? x : 0.0f)); break;
    case DC_EW_LEAKY_RELU: LOOP1(float, float, x > 0.0f ? x : x * p0); break;
    case DC_EW_GELU: LOOP1(float, float, x * 0.5f * (1.0f + dc__verff(x * (float)M_SQRT1_2))); break;
    case DC_EW_GELU_TANH:
        LOOP1(float, float, 0.5f * x * (1.0f + dc__vtanhf(K_BETA * (x + K_KAPPA * x * x * x))));
        break;
    case DC_EW_QUICK_GELU: LOOP1(float, float, x * sigmoidf_(1.702f * x)); break;
    case DC_EW_SILU: LOOP1(float, float, x / (1.0f + dc__vexpf(-x))); break;
    case DC_EW_TANH: LOOP1(float, float, dc__vtanhf(x)); break;
    case DC_EW_SIGMOID: LOOP1(float, float, sigmoidf_(x)); break;

    case DC_EW_EQ: LOOP2(uint8_t, float, float, x == y); break;
    case DC_EW_GT_SCALAR: LOOP1(uint8_t, float, x > p0); break;
    case DC_EW_LT_SCALAR: LOOP1(uint8_t, float, x < p0); break;
    case DC_EW_WHERE: LOOP3(float, uint8_t, float, float, x ? y : z); break;
    case DC_EW_WHERE_NOT: LOOP2(float, uint8_t, float, x ? 0.0f : y); break;

    case DC_EW_EXP_BWD: LOOP2(float, float, float, x * y); break;
    case DC_EW_LOG_BWD: LOOP2(float, float, float, x / y); break;
    case DC_EW_SQRT_BWD: LOOP2(float, float, float, x / (2.0f * y)); break;
    case DC_EW_RSQRT_BWD: LOOP2(float, float, float, -0.5f * x * (y * y * y)); break;
    case DC_EW_ABS_BWD: LOOP2(float, float, float, x * sgnf_(y)); break;
    case DC_EW_SIN_BWD: LOOP2(float, float, float, x * cosf(y)); break;
    case DC_EW_COS_BWD: LOOP2(float, float, float, x * -sinf(y)); break;
    case DC_EW_POW_SCALAR_BWD:
        if (p0 == 0.0f) LOOP2(float, float, float, ((void)x, (void)y, 0.0f));
        else if (p0 == 2.0f) LOOP2(float, float, float, x * (2.0f * y));
        else if (p0 == 3.0f) LOOP2(float, float, float, x * (3.0f * (y * y)));
        else if (p0 == 1.5f) LOOP2(float, float, float, x * (1.5f * sqrtf(y)));
        else if (p0 == 0.5f) LOOP2(float, float, float, x * (0.5f / sqrtf(y)));
        else if (p0 == -1.0f) LOOP2(float, float, float, x * (-1.0f / (y * y)));
        else LOOP2(float, float, float, x * (p0 * powf(y, p0 - 1.0f)));
        break;
    case DC_EW_CLAMP_BWD: LOOP2(float, float, float, (y >= p0 && y <= p1) ? x : 0.0f); break;
    case DC_EW_RELU_BWD: LOOP2(float, float, float, y <= 0.0f ? 0.0f : x); break;
    case DC_EW_LEAKY_RELU_BWD: LOOP2(float, float, float, y > 0.0f ? x : x * p0); break;
    case DC_EW_GELU_BWD: LOOP2(float, float, float, gelu_bwd(x, y)); break;
    case DC_EW_GELU_TANH_BWD: LOOP2(float, float, float, gelu_tanh_bwd(x, y)); break;
    case DC_EW_QUICK_GELU_BWD: LOOP2(float, float, float, quick_gelu_bwd(x, y)); break;
    case DC_EW_SILU_BWD: LOOP2(float, float, float, silu_bwd(x, y)); break;
    case DC_EW_TANH_BWD: LOOP2(float, float, float, x * (1.0f - y * y)); break;
    case DC_EW_SIGMOID_BWD: LOOP2(float, float, float, x * (1.0f - y) * y); break;
    case DC_EW_DIV_BWD_B: LOOP3(float, float, float, float, -x * ((y / z) / z)); break;
    case DC_EW_POW_BWD_A: LOOP3(float, float, float, float, z == 0.0f ? 0.0f : x * (z * powf(y, z - 1.0f))); break;
    case DC_EW_POW_BWD_E: LOOP4((z >= 0.0f && y == 0.0f) ? 0.0f : x * (w * logf(y))); break;
    case DC_EW_MAXMIN_BWD:
        if (p0 > 0) LOOP3(float, float, float, float, y == z ? x / 2.0f : (y < z ? 0.0f : x));
        else LOOP3(float, float, float, float, y == z ? x / 2.0f : (y > z ? 0.0f : x));
        break;
    case DC_EW_EXP_DIFF_MUL: LOOP3(float, float, float, float, x * dc__vexpf(y - z)); break;
    case DC_EW_VAR_BWD: LOOP3(float, float, float, float, (p0 * x) * (y - z)); break;
    default: break;
    }
}

static bool is_heavy(dc_ew_op op)
{
    switch (op) {
    case DC_EW_ADD: case DC_EW_SUB: case DC_EW_MUL: case DC_EW_DIV: case DC_EW_MAXIMUM:
    case DC_EW_MINIMUM: case DC_EW_COPY: case DC_EW_ADD_SCALAR: case DC_EW_MUL_SCALAR:
    case DC_EW_NEG: case DC_EW_ABS: case DC_EW_CLAMP: case DC_EW_RELU: case DC_EW_LEAKY_RELU:
    case DC_EW_EQ: case DC_EW_GT_SCALAR: case DC_EW_LT_SCALAR: case DC_EW_WHERE:
    case DC_EW_WHERE_NOT: case DC_EW_RELU_BWD: case DC_EW_LEAKY_RELU_BWD: case DC_EW_CLAMP_BWD:
    case DC_EW_TANH_BWD: case DC_EW_SIGMOID_BWD: case DC_EW_EXP_BWD: case DC_EW_MAXMIN_BWD:
        return false;
    default: return true;
    }
}

static size_t operand_size(dc_ew_op op, int k)
{
    if (k == 0) return (op == DC_EW_EQ || op == DC_EW_GT_SCALAR || op == DC_EW_LT_SCALAR) ? 1 : 4;
    if (k == 1 && (op == DC_EW_WHERE || op == DC_EW_WHERE_NOT)) return 1;
    return 4;
}

static dc_status cpu_map(dc_ew_op op, int nargs, void *const *args, const int64_t *const *strides,
                         int ndim, const int64_t *shape, const float *params)
{
    if (nargs < 1 || nargs > EW_MAX_ARGS || (unsigned)op >= DC_EW_OP_COUNT)
        return dc_set_error(DC_ERR_ARG, "elementwise map: bad op %d with %d operands", (int)op, nargs);
    /* drop size-1 dims and merge dims contiguous in every operand */
    int64_t sh[DC_MAX_DIMS], st[EW_MAX_ARGS][DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) return DC_OK;
        if (shape[i] == 1) continue;
        bool merge = nd > 0;
        for (int k = 0; k < nargs && merge; k++)
            if (st[k][nd - 1] != strides[k][i] * shape[i]) merge = false;
        if (merge) {
            sh[nd - 1] *= shape[i];
            for (int k = 0; k < nargs; k++) st[k][nd - 1] = strides[k][i];
            continue;
        }
        sh[nd] = shape[i];
        for (int k = 0; k < nargs; k++) st[k][nd] = strides[k][i];
        nd++;
    }
    if (nd == 0) { /* one element */
        sh[0] = 1;
        for (int k = 0; k < nargs; k++) st[k][0] = 1;
        nd = 1;
    }
    int64_t inner = sh[nd - 1], rows = 1;
    for (int i = 0; i < nd - 1; i++) rows *= sh[i];
    int64_t chunks = (inner + EW_CHUNK - 1) / EW_CHUNK;
    int64_t tasks = rows * chunks, total = rows * inner;
    size_t esz[EW_MAX_ARGS];
    int64_t inner_stride[EW_MAX_ARGS];
    for (int k = 0; k < nargs; k++) {
        esz[k] = operand_size(op, k);
        inner_stride[k] = st[k][nd - 1];
    }
    float p0 = params ? params[0] : 0.0f, p1 = params ? params[1] : 0.0f;
    int64_t par_min = is_heavy(op) ? EW_PAR_MIN_HEAVY : EW_PAR_MIN_CHEAP;
    DC_PAR_FOR(total >= par_min && tasks > 1, for (int64_t t = 0; t < tasks; t++) {
        int64_t r = t / chunks, c = t % chunks;
        int64_t start = c * EW_CHUNK, len = DC_MIN(EW_CHUNK, inner - start);
        int64_t off[EW_MAX_ARGS] = {0};
        int64_t rem = r;
        for (int i = nd - 2; i >= 0; i--) {
            int64_t idx = rem % sh[i];
            rem /= sh[i];
            for (int k = 0; k < nargs; k++) off[k] += idx * st[k][i];
        }
        char *p[EW_MAX_ARGS];
        for (int k = 0; k < nargs; k++)
            p[k] = (char *)args[k] + (off[k] + start * inner_stride[k]) * (int64_t)esz[k];
        run_row(op, len, p, inner_stride, p0, p1);
    });
    return DC_OK;
}

const struct dc_kernels_elementwise dc_cpu_elementwise_kernels = {
    .map = cpu_map,
};
