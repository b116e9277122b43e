/* blas.c: SGEMM for the CPU backend.
 *
 * OpenBLAS is loaded with dlopen rather than linked, because the kernels it uses are chosen
 * once, when the library initialises, from OPENBLAS_CORETYPE. Debian's 0.3.21 does not know
 * Zen 5 and falls back to its Haswell (AVX2) kernels; on any CPU with AVX-512 the SkylakeX
 * kernels are about twice as fast. So unless the user set OPENBLAS_CORETYPE, deepc sets it
 * before loading the library. Without OpenBLAS a built-in blocked GEMM keeps deepc working. */
#include <dlfcn.h>
#include <omp.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "../../core/internal.h"
#include "parallel.h"

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
    DC_PAR_FOR(m * n * k > 65536, for (int64_t i = 0; i < m; i++) {
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
    });
}

/* ---------------------------------------------------------------------------------------
 * Few-row products (m <= GEMV_MAX_M): a linear layer at batch 1, a decoder step. OpenBLAS
 * packs all of B into its panel layout on every call, which for one row of A costs more
 * than the multiply itself (LeNet's fc1 at batch 1: 16 us in sgemm, 4.5 us here). These
 * loops read B once, straight from where it lies.
 *
 * Every output is summed over p in order in one FMA accumulator, then added to beta C, as
 * OpenBLAS's main kernel does within a K block, so a row gets the same value (most often to
 * the bit, else within an ulp or two) whether it goes through here or, in a large batch,
 * through OpenBLAS. A tree of partial sums is twice as fast on long rows but moves further
 * from OpenBLAS's rounding, and a few PyTorch fixtures (gradients that cancel to 1e-5 of
 * their terms) notice.
 * ------------------------------------------------------------------------------------- */

#define GEMV_MAX_M 4
/* multiply-adds below which the few-row product stays on one thread */
#define GEMV_PAR_MIN 65536

/* C[i, j] = alpha * dot(A_i, B_j) + beta * C[i, j] for the m (<= GEMV_MAX_M) rows of A
 * (contiguous, lda apart) and the columns j in [j0, j1) of op(B), B_j = b + j ldb contiguous.
 * The lanes hold eight outputs, not eight terms: eight rows of B are read 8 x 8 at a time
 * and transposed in registers, then each column of the tile (one p, eight outputs) is one
 * FMA per row of A. The tile stays in cache while every row of A uses it, so B is read from
 * memory once. G groups of eight outputs run at once, so that G x m independent FMA chains
 * hide the FMA latency. Outputs past j1 in the last group reuse row j1 - 1 and are not
 * stored; an output's value does not depend on its group, block or thread. */
static inline __attribute__((always_inline)) void
gemv_dots_m(const int64_t m, const int G, const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k,
            int64_t j0, int64_t j1, float alpha, float beta, float *c, int64_t ldc)
{
    for (int64_t j = j0; j < j1; j += 8 * G) {
        const float *row[4][8];
        for (int g = 0; g < G; g++)
            for (int l = 0; l < 8; l++) row[g][l] = b + DC_MIN(j + 8 * g + l, j1 - 1) * ldb;
        float acc[4][GEMV_MAX_M][8];
        int64_t p = 0;
#if defined(__AVX2__) && defined(__FMA__)
        __m256 s[4][GEMV_MAX_M];
        for (int g = 0; g < G; g++)
            for (int64_t i = 0; i < m; i++) s[g][i] = _mm256_setzero_ps();
        for (; p + 8 <= k; p += 8) {
            /* unrolled, so that the accumulators stay in registers */
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                /* a 4-column half of the tile at a time (fewer live registers): rows l and
                 * l + 4 in the two 128-bit halves, then the classic unpack / shuffle */
                const float *const *rw = row[g];
#pragma GCC unroll 2
                for (int h = 0; h < 8; h += 4) {
                    __m256 r[4], t[4], col[4];
                    for (int l = 0; l < 4; l++)
                        r[l] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(rw[l] + p + h)),
                                                    _mm_loadu_ps(rw[l + 4] + p + h), 1);
                    t[0] = _mm256_unpacklo_ps(r[0], r[1]);
                    t[1] = _mm256_unpackhi_ps(r[0], r[1]);
                    t[2] = _mm256_unpacklo_ps(r[2], r[3]);
                    t[3] = _mm256_unpackhi_ps(r[2], r[3]);
                    col[0] = _mm256_shuffle_ps(t[0], t[2], 0x44);
                    col[1] = _mm256_shuffle_ps(t[0], t[2], 0xEE);
                    col[2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
                    col[3] = _mm256_shuffle_ps(t[1], t[3], 0xEE);
#pragma GCC unroll 4
                    for (int64_t i = 0; i < m; i++) {
                        const float *ai = a + i * lda + p + h;
#pragma GCC unroll 4
                        for (int q = 0; q < 4; q++)
                            s[g][i] = _mm256_fmadd_ps(_mm256_broadcast_ss(ai + q), col[q], s[g][i]);
                    }
                }
            }
        }
        for (; p < k; p++) { /* the last k % 8 terms, with the same FMAs */
            for (int g = 0; g < G; g++) {
                const float *const *rw = row[g];
                __m256 col = _mm256_setr_ps(rw[0][p], rw[1][p], rw[2][p], rw[3][p], rw[4][p], rw[5][p], rw[6][p], rw[7][p]);
                for (int64_t i = 0; i < m; i++) s[g][i] = _mm256_fmadd_ps(_mm256_set1_ps(a[i * lda + p]), col, s[g][i]);
            }
        }
        for (int g = 0; g < G; g++)
            for (int64_t i = 0; i < m; i++) _mm256_storeu_ps(acc[g][i], s[g][i]);
#else
        for (int g = 0; g < G; g++)
            for (int64_t i = 0; i < m; i++)
                for (int l = 0; l < 8; l++) acc[g][i][l] = 0.0f;
        for (; p < k; p++)
            for (int g = 0; g < G; g++)
                for (int64_t i = 0; i < m; i++)
                    for (int l = 0; l < 8; l++) acc[g][i][l] += a[i * lda + p] * row[g][l][p];
#endif
        for (int g = 0; g < G; g++)
            for (int64_t i = 0; i < m; i++) {
                float *ci = c + i * ldc + j + 8 * g;
                int64_t nj = DC_MIN(8, j1 - (j + 8 * g));
                for (int64_t l = 0; l < nj; l++) ci[l] = alpha * acc[g][i][l] + (beta == 0 ? 0.0f : beta * ci[l]);
            }
    }
}

/* one copy per row count, so the accumulators live in registers */
static void gemv_dots(int64_t m, const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k, int64_t j0,
                      int64_t j1, float alpha, float beta, float *c, int64_t ldc)
{
    switch (m) {
    case 1: gemv_dots_m(1, 4, a, lda, b, ldb, k, j0, j1, alpha, beta, c, ldc); break;
    case 2: gemv_dots_m(2, 2, a, lda, b, ldb, k, j0, j1, alpha, beta, c, ldc); break;
    case 3: gemv_dots_m(3, 1, a, lda, b, ldb, k, j0, j1, alpha, beta, c, ldc); break;
    default: gemv_dots_m(4, 1, a, lda, b, ldb, k, j0, j1, alpha, beta, c, ldc); break;
    }
}

/* C[i, j0:j1] = alpha * sum_p A[i, p] B[p, j0:j1] + beta * C[i, j0:j1] (j1 - j0 <= 64) with
 * A[i, p] at a[i si + p sp] and B's rows ldb apart. Each sum runs over p in order in its own
 * accumulator and is added to beta C at the end, as OpenBLAS's kernels do, so results agree
 * with the large-m path (and PyTorch) to the last bit or two; vectorises over j. */
static void gemv_axpys(int64_t m, const float *a, int64_t si, int64_t sp, const float *b, int64_t ldb, int64_t k,
                       int64_t j0, int64_t j1, float alpha, float beta, float *c, int64_t ldc)
{
    const int64_t nj = j1 - j0;
    for (int64_t i = 0; i < m; i++) {
        float acc[64] = {0};
        const float *ai = a + i * si;
        for (int64_t p = 0; p < k; p++) {
            const float *bp = b + p * ldb + j0;
            float av = ai[p * sp];
            for (int64_t j = 0; j < nj; j++) acc[j] += av * bp[j];
        }
        float *ci = c + i * ldc + j0;
        for (int64_t j = 0; j < nj; j++) ci[j] = alpha * acc[j] + (beta == 0 ? 0.0f : beta * ci[j]);
    }
}

/* The few-row product, for B in either layout when the rows of op(A) are contiguous
 * (ta == NO_TRANS, or a transposed A with lda == 1), and for any A when B is not transposed.
 * Columns are split between threads in blocks of 64, each column computed whole by one
 * thread, so the result does not depend on the thread count. */
static bool gemm_few_rows_ok(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t lda)
{
    return m <= GEMV_MAX_M && (!tb || !ta || lda == 1);
}

static void gemm_few_rows(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t n, int64_t k,
                          float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                          float beta, float *c, int64_t ldc)
{
    int64_t blocks = (n + 63) / 64;
    /* element (i, p) of op(A) at a[i si + p sp] */
    int64_t si = ta ? 1 : lda, sp = ta ? lda : 1;
    DC_PAR_FOR(m * n * k >= GEMV_PAR_MIN && blocks > 1, for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t j0 = blk * 64, j1 = DC_MIN(j0 + 64, n);
        if (tb) gemv_dots(m, a, si, b, ldb, k, j0, j1, alpha, beta, c, ldc); /* sp == 1 here */
        else gemv_axpys(m, a, si, sp, b, ldb, k, j0, j1, alpha, beta, c, ldc);
    });
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
    if (gemm_few_rows_ok(ta, tb, m, lda))
        gemm_few_rows(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (blas_sgemm)
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
