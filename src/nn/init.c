/* init.c: torch.nn.init for deepc (uniform, normal, kaiming, xavier), drawing from a dc_rng
 * exactly as torch's CPU generator transforms its mt19937 output, so that the same seed gives
 * the same weights.
 *
 * torch's float uniform_ (aten/src/ATen/core/TransformationHelper.h uniform_real, run serially
 * over the tensor in row-major order):
 *     x    = (mt() & (2^24 - 1)) * 2^-24          (float)
 *     from = (float)low, to = (float)high
 *     val  = x * (to - from) + from               (float arithmetic)
 * PyTorch's CPU kernels are built with GCC's default -ffp-contract=fast on FMA hardware, so
 * that last line is one fused multiply-add; we write fmaf() to get the same rounding
 * (verified bit for bit against torch 1.13 by tests/test_nn.c).
 *
 * torch's normal_ on a contiguous float tensor of 16+ elements (normal_fill_AVX2 in
 * DistributionTemplates.h, the kernel torch 1.13 runs on AVX2 machines): fill the tensor with
 * uniforms as above, then transform each block of 16 with Box-Muller, u1 = 1 - data[j],
 * u2 = data[j + 8] for j < 8, using the cephes log/sincos polynomials of avx_mathfun.h; a tail
 * that is not a multiple of 16 is redone by drawing 16 fresh uniforms for the last 16
 * elements. We evaluate the same polynomials in scalar code with the same fused
 * multiply-adds, so the values are bit-identical too. (torch's AVX-512 build runs a scalar
 * variant with libm's logf/sinf/cosf instead, which differs from its own AVX2 results in the
 * last bits.) Smaller tensors draw each element from the double-precision normal (two 53-bit
 * uniforms, the sin half cached in the generator).
 *
 * Every fused operation is written as fmaf(); the compiler must not add others, so
 * contraction is off for this file (the library is built with -ffp-contract=fast).
 */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>

#include "core/internal.h"
#include "deepc/nn.h"

static dc_status check_target(const char *op, const dc_tensor *t)
{
    if (!t) return dc_set_error(DC_ERR_ARG, "%s: NULL tensor", op);
    if (t->dtype != DC_F32)
        return dc_set_error(DC_ERR_DTYPE, "%s: tensor must be F32, got %s", op, dc_dtype_name(t->dtype));
    if (t->storage->device != DC_CPU)
        return dc_set_error(DC_ERR_DEVICE, "%s: only CPU tensors can be initialised, got %s", op,
                            dc_device_name(t->storage->device));
    if (!dc_is_contiguous(t)) return dc_set_error(DC_ERR_ARG, "%s: tensor must be contiguous", op);
    return DC_OK;
}

dc_status dc_init_fans(const dc_tensor *t, int64_t *fan_in, int64_t *fan_out)
{
    if (!t) return dc_set_error(DC_ERR_ARG, "init_fans: NULL tensor");
    if (t->ndim < 2) {
        char s[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "init_fans: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions (shape %s)",
                            dc_shape_str(t, s, sizeof s));
    }
    int64_t receptive = 1;
    for (int i = 2; i < t->ndim; i++) receptive *= t->shape[i];
    if (fan_in) *fan_in = t->shape[1] * receptive;
    if (fan_out) *fan_out = t->shape[0] * receptive;
    return DC_OK;
}

double dc_init_calculate_gain(const char *nl, double param)
{
    if (!nl) return NAN;
    if (!strcmp(nl, "linear") || !strcmp(nl, "conv1d") || !strcmp(nl, "conv2d") ||
        !strcmp(nl, "conv3d") || !strcmp(nl, "conv_transpose1d") ||
        !strcmp(nl, "conv_transpose2d") || !strcmp(nl, "conv_transpose3d") || !strcmp(nl, "sigmoid"))
        return 1.0;
    if (!strcmp(nl, "tanh")) return 5.0 / 3;
    if (!strcmp(nl, "relu")) return sqrt(2.0);
    if (!strcmp(nl, "leaky_relu")) {
        double slope = isnan(param) ? 0.01 : param;
        /* Python's negative_slope ** 2 */
        return sqrt(2.0 / (1 + pow(slope, 2.0)));
    }
    if (!strcmp(nl, "selu")) return 3.0 / 4;
    dc_set_error(DC_ERR_ARG, "calculate_gain: unsupported nonlinearity \"%s\"", nl);
    return NAN;
}

/* One torch float uniform in [from, to). */
static inline float uniform_f32(dc_rng *rng, float from, float to)
{
    float x = (float)(dc_rng_u32(rng) & ((1u << 24) - 1)) * (1.0f / 16777216.0f);
    return fmaf(x, to - from, from);
}

dc_status dc_init_uniform_(dc_tensor *t, double low, double high, dc_rng *rng)
{
    if (check_target("init_uniform_", t)) return dc_last_status();
    if (!rng) rng = dc_default_rng();
    float *p = dc_data_f32(t);
    int64_t n = dc_numel(t);
    float from = (float)low, to = (float)high;
    /* serial: the draws must follow row-major order to reproduce torch's sequence */
    for (int64_t i = 0; i < n; i++) p[i] = uniform_f32(rng, from, to);
    return DC_OK;
}

/* cephes logf as torch's avx_mathfun.h log256_ps evaluates it, for x in (0, 1]. The fmaf
 * calls are where GCC (-ffp-contract=fast, FMA enabled) fuses a multiply into the following
 * add or subtract in torch's AVX2 build. */
static float log_avx2(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    int32_t imm0 = (int32_t)(bits >> 23) - 0x7f;
    bits = (bits & ~0x7f800000u) | 0x3f000000u; /* keep the mantissa, exponent of 0.5 */
    memcpy(&x, &bits, 4);
    float e = (float)imm0 + 1.0f;
    if (x < 0.707106781186547524f) {
        e = e - 1.0f;
        x = (x - 1.0f) + x;
    } else {
        x = x - 1.0f;
    }
    float z = x * x;
    float y = fmaf(7.0376836292E-2f, x, -1.1514610310E-1f);
    y = fmaf(y, x, 1.1676998740E-1f);
    y = fmaf(y, x, -1.2420140846E-1f);
    y = fmaf(y, x, 1.4249322787E-1f);
    y = fmaf(y, x, -1.6668057665E-1f);
    y = fmaf(y, x, 2.0000714765E-1f);
    y = fmaf(y, x, -2.4999993993E-1f);
    y = fmaf(y, x, 3.3333331174E-1f);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    return fmaf(e, 0.693359375f, x);
}

/* sincos256_ps of avx_mathfun.h (cephes), for x >= 0, with the same fused operations. */
static void sincos_avx2(float x, float *s, float *c)
{
    float y = x * 1.27323954473516f; /* 4 / pi */
    int32_t j = (int32_t)y;
    j = (j + 1) & ~1;
    y = (float)j;
    bool swap_sin = (j & 4) != 0;
    bool poly_cos = (j & 2) == 0; /* the cosine polynomial gives cos, the sine one sin */
    bool neg_cos = ((~(j - 2)) & 4) != 0;
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    float z = x * x;
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    float sv = poly_cos ? ys : yc, cv = poly_cos ? yc : ys;
    *s = swap_sin ? -sv : sv;
    *c = neg_cos ? -cv : cv;
}

/* torch's normal_fill_16_AVX2: Box-Muller on 8 pairs, u1 = 1 - data[j], u2 = data[j + 8] */
static void normal_fill_16(float *data, float mean, float std)
{
    const float two_pi = (float)(2.0f * M_PI);
    for (int j = 0; j < 8; j++) {
        const float u1 = 1.0f - data[j];
        const float u2 = data[j + 8];
        const float radius = sqrtf(-2.0f * log_avx2(u1));
        float sn, cs;
        sincos_avx2(two_pi * u2, &sn, &cs);
        data[j] = fmaf(radius * cs, std, mean);
        data[j + 8] = fmaf(radius * sn, std, mean);
    }
}

/* torch's at::normal_distribution<double>: two 53-bit uniforms, sin half cached */
static double normal_f64(dc_rng *rng)
{
    if (rng->has_next_normal) {
        rng->has_next_normal = false;
        return rng->next_normal;
    }
    double u1 = (double)(dc_rng_u64(rng) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
    double u2 = (double)(dc_rng_u64(rng) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
    double r = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * M_PI * u1;
    rng->next_normal = r * sin(theta);
    rng->has_next_normal = true;
    return r * cos(theta);
}

dc_status dc_init_normal_(dc_tensor *t, double mean, double std, dc_rng *rng)
{
    if (check_target("init_normal_", t)) return dc_last_status();
    if (!(std >= 0)) return dc_set_error(DC_ERR_ARG, "init_normal_: std must be >= 0, got %g", std);
    if (!rng) rng = dc_default_rng();
    float *p = dc_data_f32(t);
    int64_t n = dc_numel(t);
    if (n >= 16) {
        for (int64_t i = 0; i < n; i++) p[i] = uniform_f32(rng, 0.0f, 1.0f);
        for (int64_t i = 0; i + 15 < n; i += 16) normal_fill_16(p + i, (float)mean, (float)std);
        if (n % 16 != 0) {
            float *tail = p + n - 16;
            for (int i = 0; i < 16; i++) tail[i] = uniform_f32(rng, 0.0f, 1.0f);
            normal_fill_16(tail, (float)mean, (float)std);
        }
    } else {
        for (int64_t i = 0; i < n; i++) p[i] = (float)(normal_f64(rng) * std + mean);
    }
    return DC_OK;
}

static dc_status correct_fan(const char *op, const dc_tensor *t, dc_fan_mode mode, double *fan)
{
    int64_t fi = 0, fo = 0;
    if (dc_init_fans(t, &fi, &fo)) return dc_last_status();
    int64_t f = mode == DC_FAN_OUT ? fo : fi;
    if (f <= 0) return dc_set_error(DC_ERR_SHAPE, "%s: fan is %lld", op, (long long)f);
    *fan = (double)f;
    return DC_OK;
}

dc_status dc_init_kaiming_uniform_(dc_tensor *t, double a, dc_fan_mode mode, const char *nonlinearity,
                                   dc_rng *rng)
{
    if (check_target("kaiming_uniform_", t)) return dc_last_status();
    if (dc_numel(t) == 0) return DC_OK; /* torch: "Initializing zero-element tensors is a no-op" */
    double fan = 0, gain = dc_init_calculate_gain(nonlinearity ? nonlinearity : "leaky_relu", a);
    if (isnan(gain)) return dc_last_status();
    if (correct_fan("kaiming_uniform_", t, mode, &fan)) return dc_last_status();
    double std = gain / sqrt(fan);
    double bound = sqrt(3.0) * std;
    return dc_init_uniform_(t, -bound, bound, rng);
}

dc_status dc_init_kaiming_normal_(dc_tensor *t, double a, dc_fan_mode mode, const char *nonlinearity,
                                  dc_rng *rng)
{
    if (check_target("kaiming_normal_", t)) return dc_last_status();
    if (dc_numel(t) == 0) return DC_OK;
    double fan = 0, gain = dc_init_calculate_gain(nonlinearity ? nonlinearity : "leaky_relu", a);
    if (isnan(gain)) return dc_last_status();
    if (correct_fan("kaiming_normal_", t, mode, &fan)) return dc_last_status();
    return dc_init_normal_(t, 0, gain / sqrt(fan), rng);
}

dc_status dc_init_xavier_uniform_(dc_tensor *t, double gain, dc_rng *rng)
{
    if (check_target("xavier_uniform_", t)) return dc_last_status();
    int64_t fi = 0, fo = 0;
    if (dc_init_fans(t, &fi, &fo)) return dc_last_status();
    double std = gain * sqrt(2.0 / (double)(fi + fo));
    double a = sqrt(3.0) * std;
    return dc_init_uniform_(t, -a, a, rng);
}

dc_status dc_init_xavier_normal_(dc_tensor *t, double gain, dc_rng *rng)
{
    if (check_target("xavier_normal_", t)) return dc_last_status();
    int64_t fi = 0, fo = 0;
    if (dc_init_fans(t, &fi, &fo)) return dc_last_status();
    double std = gain * sqrt(2.0 / (double)(fi + fo));
    return dc_init_normal_(t, 0, std, rng);
}
