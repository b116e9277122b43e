/* llm_kernels.c: CPU kernels of language-model inference (see llm_kernels.h).
 *
 * Generating a token is memory bound: every weight is read once per token for a single
 * matrix-vector product, so the GEMVs here stream weights straight from where they lie (the
 * mmap'd safetensors file for F32, converted on the fly for F16/BF16) at full memory bandwidth
 * with AVX2 FMA, split across threads so that each thread reads one contiguous stretch.
 * Prompt processing is compute bound and goes to the backend's SGEMM (OpenBLAS). */
#include "llm_kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LLM_AVX2 1
#endif

#include "../backend.h"
#include "parallel.h"

int dc__llm_threads(void)
{
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t;
}

/* ---------------------------------------------------------------------------------------
 * Loading 8 weights as F32
 * ------------------------------------------------------------------------------------- */

static inline float half_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

#ifdef LLM_AVX2
static inline __m256 load8_f32(const float *p) { return _mm256_loadu_ps(p); }
static inline __m256 load8_bf16(const uint16_t *p)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
static inline __m256 load8_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* dst[i0, i1) from 16-bit src[i0, i1) */
static void to_f32_range(const uint16_t *s, dc_dtype dtype, int64_t i, int64_t e, float *dst)
{
#ifdef LLM_AVX2
    for (; i + 8 <= e; i += 8) _mm256_storeu_ps(dst + i, dtype == DC_BF16 ? load8_bf16(s + i) : load8_f16(s + i));
#endif
    for (; i < e; i++) dst[i] = dtype == DC_BF16 ? bf16_to_f32(s[i]) : half_to_f32(s[i]);
}

void dc__llm_to_f32(const void *src, dc_dtype dtype, int64_t n, float *dst)
{
    if (dtype == DC_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    const uint16_t *s = src;
    DC_PAR_FOR(n > 65536, for (int64_t b = 0; b < (n + 4095) / 4096; b++) {
        to_f32_range(s, dtype, b * 4096, b * 4096 + 4096 < n ? b * 4096 + 4096 : n, dst);
    });
}

/* ---------------------------------------------------------------------------------------
 * GEMV
 * ------------------------------------------------------------------------------------- */

/* y[r] = dot(W[r, :], x) for rows r0..r1 of an [out, in] matrix; four rows share each load of
 * x. The templated body is instantiated per dtype so the inner loop has no branch. */
#ifdef LLM_AVX2
#define DOT_ROWS(NAME, T, LOAD8)                                                                   \
    static void NAME(const T *w, int64_t in, const float *x, int64_t r0, int64_t r1, float *y)     \
    {                                                                                              \
        int64_t r = r0;                                                                            \
        for (; r + 4 <= r1; r += 4) {                                                              \
            const T *w0 = w + r * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;                 \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                            \
            int64_t i = 0;                                                                         \
            for (; i + 8 <= in; i += 8) {                                                          \
                __m256 xv = _mm256_loadu_ps(x + i);                                                \
                a0 = _mm256_fmadd_ps(LOAD8(w0 + i), xv, a0);                                       \
                a1 = _mm256_fmadd_ps(LOAD8(w1 + i), xv, a1);                                       \
                a2 = _mm256_fmadd_ps(LOAD8(w2 + i), xv, a2);                                       \
                a3 = _mm256_fmadd_ps(LOAD8(w3 + i), xv, a3);                                       \
            }                                                                                      \
            float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);                  \
            for (; i < in; i++) {                                                                  \
                s0 += (float)LOAD1(w0, i) * x[i];                                                  \
                s1 += (float)LOAD1(w1, i) * x[i];                                                  \
                s2 += (float)LOAD1(w2, i) * x[i];                                                  \
                s3 += (float)LOAD1(w3, i) * x[i];                                                  \
            }                                                                                      \
            y[r] = s0;                                                                             \
            y[r + 1] = s1;                                                                         \
            y[r + 2] = s2;                                                                         \
            y[r + 3] = s3;                                                                         \
        }                                                                                          \
        for (; r < r1; r++) {                                                                      \
            const T *w0 = w + r * in;                                                              \
            __m256 a0 = _mm256_setzero_ps();                                                       \
            int64_t i = 0;                                                                         \
            for (; i + 8 <= in; i += 8) a0 = _mm256_fmadd_ps(LOAD8(w0 + i), _mm256_loadu_ps(x + i), a0); \
            float s0 = hsum8(a0);                                                                  \
            for (; i < in; i++) s0 += (float)LOAD1(w0, i) * x[i];                                  \
            y[r] = s0;                                                                             \
        }                                                                                          \
    }

/* partial[j] += sum_i x[i] W[i, j] over rows i0..i1 of an [in, out] matrix (4 rows a pass, so
 * partial is read and written once per 4 weight rows). */
#define AXPY_ROWS(NAME, T, LOAD8)                                                                  \
    static void NAME(const T *w, int64_t out, const float *x, int64_t i0, int64_t i1, float *p)    \
    {                                                                                              \
        int64_t i = i0;                                                                            \
        for (; i + 4 <= i1; i += 4) {                                                              \
            const T *w0 = w + i * out, *w1 = w0 + out, *w2 = w1 + out, *w3 = w2 + out;             \
            __m256 x0 = _mm256_set1_ps(x[i]), x1 = _mm256_set1_ps(x[i + 1]);                       \
            __m256 x2 = _mm256_set1_ps(x[i + 2]), x3 = _mm256_set1_ps(x[i + 3]);                   \
            int64_t j = 0;                                                                         \
            for (; j + 8 <= out; j += 8) {                                                         \
                __m256 acc = _mm256_loadu_ps(p + j);                                               \
                acc = _mm256_fmadd_ps(LOAD8(w0 + j), x0, acc);                                     \
                acc = _mm256_fmadd_ps(LOAD8(w1 + j), x1, acc);                                     \
                acc = _mm256_fmadd_ps(LOAD8(w2 + j), x2, acc);                                     \
                acc = _mm256_fmadd_ps(LOAD8(w3 + j), x3, acc);                                     \
                _mm256_storeu_ps(p + j, acc);                                                      \
            }                                                                                      \
            for (; j < out; j++)                                                                   \
                p[j] += (float)LOAD1(w0, j) * x[i] + (float)LOAD1(w1, j) * x[i + 1] +              \
                        (float)LOAD1(w2, j) * x[i + 2] + (float)LOAD1(w3, j) * x[i + 3];           \
        }                                                                                          \
        for (; i < i1; i++) {                                                                      \
            const T *w0 = w + i * out;                                                             \
            __m256 x0 = _mm256_set1_ps(x[i]);                                                      \
            int64_t j = 0;                                                                         \
            for (; j + 8 <= out; j += 8)                                                           \
                _mm256_storeu_ps(p + j, _mm256_fmadd_ps(LOAD8(w0 + j), x0, _mm256_loadu_ps(p + j))); \
            for (; j < out; j++) p[j] += (float)LOAD1(w0, j) * x[i];                               \
        }                                                                                          \
    }

#define LOAD1(p, i) ((p)[i])
DOT_ROWS(dot_rows_f32, float, load8_f32)
AXPY_ROWS(axpy_rows_f32, float, load8_f32)
#undef LOAD1
#define LOAD1(p, i) bf16_to_f32((p)[i])
DOT_ROWS(dot_rows_bf16, uint16_t, load8_bf16)
AXPY_ROWS(axpy_rows_bf16, uint16_t, load8_bf16)
#undef LOAD1
#define LOAD1(p, i) half_to_f32((p)[i])
DOT_ROWS(dot_rows_f16, uint16_t, load8_f16)
AXPY_ROWS(axpy_rows_f16, uint16_t, load8_f16)
#undef LOAD1

static void dot_rows(const dc__llm_weight *w, const float *x, int64_t r0, int64_t r1, float *y)
{
    if (w->dtype == DC_F32) dot_rows_f32(w->data, w->in, x, r0, r1, y);
    else if (w->dtype == DC_BF16) dot_rows_bf16(w->data, w->in, x, r0, r1, y);
    else dot_rows_f16(w->data, w->in, x, r0, r1, y);
}

static void axpy_rows(const dc__llm_weight *w, const float *x, int64_t i0, int64_t i1, float *p)
{
    if (w->dtype == DC_F32) axpy_rows_f32(w->data, w->out, x, i0, i1, p);
    else if (w->dtype == DC_BF16) axpy_rows_bf16(w->data, w->out, x, i0, i1, p);
    else axpy_rows_f16(w->data, w->out, x, i0, i1, p);
}
#else
static inline float load1(const void *p, dc_dtype dt, int64_t i)
{
    if (dt == DC_F32) return ((const float *)p)[i];
    if (dt == DC_BF16) return bf16_to_f32(((const uint16_t *)p)[i]);
    return half_to_f32(((const uint16_t *)p)[i]);
}

static void dot_rows(const dc__llm_weight *w, const float *x, int64_t r0, int64_t r1, float *y)
{
    for (int64_t r = r0; r < r1; r++) {
        float s = 0;
        for (int64_t i = 0; i < w->in; i++) s += load1(w->data, w->dtype, r * w->in + i) * x[i];
        y[r] = s;
    }
}

static void axpy_rows(const dc__llm_weight *w, const float *x, int64_t i0, int64_t i1, float *p)
{
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = 0; j < w->out; j++) p[j] += load1(w->data, w->dtype, i * w->out + j) * x[i];
}
#endif

void dc__llm_gemv(const dc__llm_weight *w, const float *x, const float *bias, float *y, float *partials)
{
    int nt = dc__llm_threads();
    if (!w->in_major) {
        /* rows of W are outputs: each thread takes a contiguous block of rows (a multiple of 4) */
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            int64_t per = ((w->out + T - 1) / T + 3) / 4 * 4;
            int64_t r0 = t * per, r1 = r0 + per < w->out ? r0 + per : w->out;
            if (r0 < r1) {
                dot_rows(w, x, r0, r1, y);
                if (bias)
                    for (int64_t r = r0; r < r1; r++) y[r] += bias[r];
            }
        }
        return;
    }
    /* rows of W are inputs: thread t sums its block of rows into its own partial vector (one
     * contiguous stream of weights per thread), then the partials are added in thread order so
     * the result does not depend on scheduling */
    int64_t out = w->out;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t per = (w->in + T - 1) / T;
        int64_t i0 = t * per, i1 = i0 + per < w->in ? i0 + per : w->in;
        float *p = partials + (int64_t)t * out;
        memset(p, 0, (size_t)out * sizeof(float));
        if (i0 < i1) axpy_rows(w, x, i0, i1, p);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t j = 0; j < out; j++) {
            float s = bias ? bias[j] : 0.0f;
            float acc = 0.0f;
            for (int u = 0; u < T; u++) acc += partials[(int64_t)u * out + j];
            y[j] = s + acc;
        }
    }
}

dc_status dc__llm_matmul(const dc__llm_weight *w, const float *x, int64_t n, const float *bias, float *y,
                         float *panel, int64_t panel_floats, float *partials)
{
    if (n == 1) {
        dc__llm_gemv(w, x, bias, y, partials);
        return DC_OK;
    }
    const dc_backend *be = dc_backend_get(DC_CPU);
    if (!be) return dc_last_status();
    int64_t in = w->in, out = w->out;
    /* bias first, then C = x W + C: torch.addmm(bias, x, W) order */
    float beta = 0.0f;
    if (bias) {
        DC_PAR_FOR(n * out > 65536, for (int64_t r = 0; r < n; r++) {
            memcpy(y + r * out, bias, (size_t)out * sizeof(float));
        });
        beta = 1.0f;
    }
    if (w->dtype == DC_F32) {
        if (w->in_major)
            return be->gemm(DC_NO_TRANS, DC_NO_TRANS, n, out, in, 1.0f, x, in, w->data, out, beta, y, out);
        return be->gemm(DC_NO_TRANS, DC_TRANS, n, out, in, 1.0f, x, in, w->data, in, beta, y, out);
    }
    size_t esz = 2;
    if (!w->in_major) {
        /* panels of output rows: y[:, r0:r0+R] = x panel^T */
        int64_t R = panel_floats / in;
        if (R < 1) return dc_set_error(DC_ERR_STATE, "llm: conversion panel too small for a row of %lld", (long long)in);
        for (int64_t r0 = 0; r0 < out; r0 += R) {
            int64_t rn = out - r0 < R ? out - r0 : R;
            dc__llm_to_f32((const char *)w->data + (size_t)(r0 * in) * esz, w->dtype, rn * in, panel);
            dc_status st = be->gemm(DC_NO_TRANS, DC_TRANS, n, rn, in, 1.0f, x, in, panel, in, beta, y + r0, out);
            if (st) return st;
        }
        return DC_OK;
    }
    /* panels of input rows: y += x[:, i0:i0+R] panel, accumulating */
    int64_t R = panel_floats / out;
    if (R < 1) return dc_set_error(DC_ERR_STATE, "llm: conversion panel too small for a row of %lld", (long long)out);
    for (int64_t i0 = 0; i0 < in; i0 += R) {
        int64_t rn = in - i0 < R ? in - i0 : R;
        dc__llm_to_f32((const char *)w->data + (size_t)(i0 * out) * esz, w->dtype, rn * out, panel);
        dc_status st = be->gemm(DC_NO_TRANS, DC_NO_TRANS, n, out, rn, 1.0f, x + i0, in, panel, out, beta, y, out);
        if (st) return st;
        beta = 1.0f;
    }
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Norms and activations
 * ------------------------------------------------------------------------------------- */

/* torch.layer_norm: mean, then biased variance of (x - mean), in float; y = (x - mean) *
 * rsqrt(var + eps) * w + b. Sums are taken in double so the result is the exact one rounded,
 * which is what torch's (pairwise/vectorised) float sums approximate to within an ulp or two. */
void dc__llm_layer_norm(const float *x, int64_t n, int64_t d, const float *w, const float *b, float eps, float *out)
{
    DC_PAR_FOR(n > 1, for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        float *yr = out + r * d;
        double s = 0;
        for (int64_t i = 0; i < d; i++) s += xr[i];
        float mean = (float)(s / (double)d);
        double v = 0;
        for (int64_t i = 0; i < d; i++) {
            double c = (double)(xr[i] - mean);
            v += c * c;
        }
        float rstd = (float)(1.0 / sqrt(v / (double)d + (double)eps));
        for (int64_t i = 0; i < d; i++) yr[i] = (xr[i] - mean) * rstd * w[i] + (b ? b[i] : 0.0f);
    });
}

/* LlamaRMSNorm: x * rsqrt(mean(x^2) + eps), then * weight. */
void dc__llm_rms_norm(const float *x, int64_t n, int64_t d, const float *w, float eps, float *out)
{
    DC_PAR_FOR(n > 1, for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        float *yr = out + r * d;
        double s = 0;
        for (int64_t i = 0; i < d; i++) s += (double)xr[i] * xr[i];
        float var = (float)(s / (double)d);
        float rs = 1.0f / sqrtf(var + eps);
        for (int64_t i = 0; i < d; i++) yr[i] = w[i] * (xr[i] * rs);
    });
}

void dc__llm_gelu_tanh(float *x, int64_t n)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    DC_PAR_FOR(n > 16384, for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    });
}

void dc__llm_gelu_erf(float *x, int64_t n)
{
    DC_PAR_FOR(n > 16384, for (int64_t i = 0; i < n; i++) {
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    });
}

void dc__llm_relu(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.0f;
}

void dc__llm_silu_mul(float *gate, const float *up, int64_t n)
{
    DC_PAR_FOR(n > 16384, for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    });
}

void dc__llm_add(float *x, const float *y, int64_t n)
{
    DC_PAR_FOR(n > 65536, for (int64_t i = 0; i < n; i++) {
        x[i] += y[i];
    });
}

/* q_embed = q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-q[half:], q[:half]). */
void dc__llm_rope(float *x, int64_t n, int64_t ld, int64_t nh, int64_t hd, int64_t pos0, const float *cos_t,
                  const float *sin_t)
{
    int64_t half = hd / 2;
    DC_PAR_FOR(n > 1, for (int64_t r = 0; r < n; r++) {
        const float *c = cos_t + (pos0 + r) * half, *s = sin_t + (pos0 + r) * half;
        for (int64_t h = 0; h < nh; h++) {
            float *v = x + r * ld + h * hd;
            for (int64_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    });
}

/* ---------------------------------------------------------------------------------------
 * Attention over the KV cache
 * ------------------------------------------------------------------------------------- */

/* softmax of s[0..len) in place (max-subtracted, as torch) */
static void softmax_inplace(float *s, int64_t len)
{
    float mx = s[0];
    for (int64_t j = 1; j < len; j++) mx = s[j] > mx ? s[j] : mx;
    float sum = 0;
    for (int64_t j = 0; j < len; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < len; j++) s[j] *= inv;
}

static float dot(const float *a, const float *b, int64_t n)
{
    int64_t i = 0;
    float s = 0;
#ifdef LLM_AVX2
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    s = hsum8(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

dc_status dc__llm_attention(const float *q, int64_t ldq, const float *kc, const float *vc, int64_t ctx, int64_t n,
                            int64_t pos0, int64_t n_heads, int64_t n_kv, int64_t hd, float scale, float *out,
                            int64_t ldo, float *scratch)
{
    int64_t group = n_heads / n_kv, S = pos0 + n;
    if (n == 1) {
        /* one query: per head, scores over the cache, softmax, weighted sum of values */
#pragma omp parallel for schedule(static)
        for (int64_t h = 0; h < n_heads; h++) {
            const float *qh = q + h * hd;
            const float *kh = kc + (h / group) * ctx * hd, *vh = vc + (h / group) * ctx * hd;
            float *s = scratch + h * S, *o = out + h * hd;
            for (int64_t j = 0; j < S; j++) s[j] = dot(qh, kh + j * hd, hd) * scale;
            softmax_inplace(s, S);
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int64_t j = 0; j < S; j++) {
                float p = s[j];
                const float *vj = vh + j * hd;
                for (int64_t d = 0; d < hd; d++) o[d] += p * vj[d];
            }
        }
        return DC_OK;
    }
    /* a block of queries: per head two SGEMMs (scores = q k^T, out = p v) with the causal
     * mask and softmax between them */
    const dc_backend *be = dc_backend_get(DC_CPU);
    if (!be) return dc_last_status();
    for (int64_t h = 0; h < n_heads; h++) {
        const float *kh = kc + (h / group) * ctx * hd, *vh = vc + (h / group) * ctx * hd;
        dc_status st = be->gemm(DC_NO_TRANS, DC_TRANS, n, S, hd, scale, q + h * hd, ldq, kh, hd, 0.0f, scratch, S);
        if (st) return st;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float *s = scratch + i * S;
            int64_t valid = pos0 + i + 1;
            softmax_inplace(s, valid);
            memset(s + valid, 0, (size_t)(S - valid) * sizeof(float));
        }
        st = be->gemm(DC_NO_TRANS, DC_NO_TRANS, n, hd, S, 1.0f, scratch, S, vh, hd, 0.0f, out + h * hd, ldo);
        if (st) return st;
    }
    return DC_OK;
}
