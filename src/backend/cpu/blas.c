/* blas.c: SGEMM for the CPU backend.
 *
 * OpenBLAS is loaded with dlopen rather than linked, because the kernels it uses are chosen
 * once, when the library initialises, from OPENBLAS_CORETYPE. Debian's 0.3.21 does not know
 * Zen 5 and falls back to its Haswell (AVX2) kernels; on any CPU with AVX-512 the SkylakeX
 * kernels are about twice as fast. So unless the user set OPENBLAS_CORETYPE, deepc sets it
 * before loading the library. Without OpenBLAS a built-in blocked GEMM keeps deepc working. */
#include <dlfcn.h>
#include <omp.h>

#include "../../core/internal.h"

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
typedef void (*set_threads_fn)(int n);
typedef char *(*get_str_fn)(void);

static sgemm_fn blas_sgemm;
static set_threads_fn blas_set_threads;
static char blas_info[256] = "built-in";

dc_status dc__blas_load(void)
{
    if (!getenv("OPENBLAS_CORETYPE") && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    const char *candidates[] = {
        getenv("DEEPC_BLAS"),
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
        "libopenblas.so.0",
        "libopenblas.so",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    };
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        if (!candidates[i] || !*candidates[i]) continue;
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        sgemm_fn f = (sgemm_fn)(uintptr_t)dlsym(h, "cblas_sgemm");
        if (!f) {
            dlclose(h);
            continue;
        }
        blas_sgemm = f;
        blas_set_threads = (set_threads_fn)(uintptr_t)dlsym(h, "openblas_set_num_threads");
        get_str_fn corename = (get_str_fn)(uintptr_t)dlsym(h, "openblas_get_corename");
        get_str_fn config = (get_str_fn)(uintptr_t)dlsym(h, "openblas_get_config");
        snprintf(blas_info, sizeof blas_info, "%s (%s kernels) from %s",
                 config ? config() : "BLAS", corename ? corename() : "?", candidates[i]);
        return DC_OK; /* the handle stays open for the life of the process */
    }
    return DC_OK;
}

void dc__blas_set_threads(int n)
{
    if (blas_set_threads) blas_set_threads(n);
}

const char *dc_blas_info(void)
{
    dc__ensure_init();
    return blas_info;
}

/* Built-in fallback: row-major C = alpha op(A) op(B) + beta C, parallel over rows of C. */
static void gemm_fallback(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t n, int64_t k,
                          float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                          float beta, float *c, int64_t ldc)
{
#pragma omp parallel for schedule(static) if (m * n * k > 65536)
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++) ci[j] = beta == 0 ? 0.0f : beta * ci[j];
        for (int64_t p = 0; p < k; p++) {
            float av = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
            if (av == 0) continue;
            if (!tb) {
                const float *bp = b + p * ldb;
                for (int64_t j = 0; j < n; j++) ci[j] += av * bp[j];
            } else {
                for (int64_t j = 0; j < n; j++) ci[j] += av * b[j * ldb + p];
            }
        }
    }
}

dc_status dc__cpu_gemm(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                       float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return DC_OK;
    if (k == 0) { /* C = beta C */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
        return DC_OK;
    }
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || lda > INT32_MAX || ldb > INT32_MAX || ldc > INT32_MAX)
        return dc_set_error(DC_ERR_ARG, "gemm: dimensions exceed 32-bit BLAS limits");
    if (blas_sgemm)
        blas_sgemm(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS, tb ? CBLAS_TRANS : CBLAS_NO_TRANS,
                   (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    else
        gemm_fallback(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return DC_OK;
}

dc_status dc__cpu_gemm_batched(dc_gemm_trans ta, dc_gemm_trans tb, int64_t batch, int64_t m,
                               int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                               int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b,
                               float beta, float *c, int64_t ldc, int64_t stride_c)
{
    /* Small matrices: one GEMM per thread (OpenBLAS runs single-threaded inside a parallel
     * region). Large ones: one at a time, each using all threads. */
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (batch > 1 && flops < 4e6 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
        dc_status st = DC_OK;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < batch; i++) {
            dc_status s = dc__cpu_gemm(ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
                                       beta, c + i * stride_c, ldc);
            if (s) st = s;
        }
        return st;
    }
    for (int64_t i = 0; i < batch; i++) {
        dc_status st = dc__cpu_gemm(ta, tb, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b,
                                    ldb, beta, c + i * stride_c, ldc);
        if (st) return st;
    }
    return DC_OK;
}
