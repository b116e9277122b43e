/* reduce.c (CPU): reductions over any set of dims (sum, mean, var, max/min with index,
 * logsumexp), softmax / log_softmax forward and backward, gather and scatter-add.
 *
 * Reductions accumulate in double, so a sum of 10^6 floats is good to ~1e-9 relative, well
 * inside the 1e-5 the tests demand (PyTorch itself uses a float cascade sum). Two layouts get
 * their own loops:
 *   - "row":    the innermost reduced dim has stride 1 (sum over the last dim, over H*W of
 *               NCHW): each output sums contiguous runs with 8 independent accumulators;
 *   - "column": the innermost kept dim has stride 1 and no reduced dim does (sum over the
 *               batch of [N, C], bias gradients): 64 adjacent outputs are accumulated
 *               together while walking the reduced positions, which vectorises.
 * Anything else walks strided runs. Parallel work is split by output and, for few outputs
 * over many elements, by fixed-size blocks of the reduced range whose partial results are
 * combined in order, so results depend on the shapes only, never on the thread count.
 */
/* GCC only if-converts the selects in the vector math (dc__vexpf etc.) when FP comparisons
 * are known not to trap, and only vectorises sqrtf when it need not set errno; without these
 * the loops stay scalar. Results are unchanged (the flags drop floating-point exception and
 * errno side effects only); clang does not assume trapping math by default. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif
#include <math.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "../../core/internal.h"
#include "parallel.h"
#include "../kernels_elementwise.h" /* dc__vexpf */
#include "../kernels_reduce.h"

/* reduced elements per block when a few outputs cover many elements */
#define RED_BLOCK 32768
/* total elements below which a reduction stays on one thread */
#define RED_PAR_MIN 32768
/* outputs accumulated together in the column layout */
#define RED_LANES 64

typedef struct racc {
    double sum;
    float best;
    int64_t idx;
} racc;

/* max/min ordering with PyTorch's NaN rule: a NaN wins and the first NaN stays */
static inline bool better(bool is_max, float v, float best)
{
    if (v != v) return best == best;
    return is_max ? v > best : v < best;
}

/* ---------------------------------------------------------------------------------------
 * Segment primitives over a strided 1-d run
 * ------------------------------------------------------------------------------------- */

/* Sum of a contiguous run. Blocks of 256 are summed in float by 32 lanes (each lane adds 8
 * values, so a block is good to ~1e-6 of its magnitude) and blocks accumulate in double:
 * twice the speed of converting every element to double, and still far more accurate than
 * a float running sum on long rows. */
static double sum_contig(const float *x, int64_t n)
{
    double total[8] = {0};
    int64_t i = 0;
    for (; i + 256 <= n; i += 256) {
        float acc[32] = {0};
        for (int k = 0; k < 256; k += 32)
            for (int j = 0; j < 32; j++) acc[j] += x[i + k + j];
        for (int j = 0; j < 8; j++) total[j] += (double)((acc[j] + acc[j + 8]) + (acc[j + 16] + acc[j + 24]));
    }
    double tail = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) total[j] += (double)x[i + j];
    for (; i < n; i++) tail += (double)x[i];
    return ((total[0] + total[1]) + (total[2] + total[3])) + ((total[4] + total[5]) + (total[6] + total[7])) + tail;
}

static double seg_sum(const float *x, int64_t s, int64_t n)
{
    if (s == 1) return sum_contig(x, n);
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)x[i * s];
    return acc;
}

static double seg_sumsq_dev(const float *x, int64_t s, int64_t n, double c)
{
    if (s == 1) {
        double acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) {
                double d = (double)x[i + j] - c;
                acc[j] += d * d;
            }
        double tail = 0;
        for (; i < n; i++) {
            double d = (double)x[i] - c;
            tail += d * d;
        }
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
    }
    double acc = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i * s] - c;
        acc += d * d;
    }
    return acc;
}

/* sum of exp(x - c) over a run; contiguous runs in float blocks of 64 (8 lanes x 8 values)
 * accumulated in double, as sum_contig */
static double seg_sumexp(const float *x, int64_t s, int64_t n, float c)
{
    if (s == 1) {
        double total[8] = {0};
        int64_t i = 0;
        for (; i + 64 <= n; i += 64) {
            float acc[8] = {0};
            for (int k = 0; k < 64; k += 8)
                for (int j = 0; j < 8; j++) acc[j] += dc__vexpf(x[i + k + j] - c);
            for (int j = 0; j < 8; j++) total[j] += (double)acc[j];
        }
        double tail = 0;
        for (; i < n; i++) tail += (double)dc__vexpf(x[i] - c);
        return ((total[0] + total[1]) + (total[2] + total[3])) + ((total[4] + total[5]) + (total[6] + total[7])) + tail;
    }
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)dc__vexpf(x[i * s] - c);
    return acc;
}

/* max (or min) of a contiguous run, and whether it holds a NaN (the caller then takes the
 * exact scalar path). GCC does not vectorise a NaN-aware select reduction, so the AVX build
 * (the default x86-64-v3 target) spells it with intrinsics: 4 x 8 lanes, NaNs collected by
 * unordered compares. */
static float run_extreme(bool is_max, const float *x, int64_t n, bool *saw_nan)
{
    int64_t i = 0;
    float r = x[0];
    bool nan_seen = false;
#if defined(__AVX__)
    if (n >= 32) {
        __m256 m0 = _mm256_set1_ps(x[0]), m1 = m0, m2 = m0, m3 = m0;
        __m256 bad = _mm256_setzero_ps();
        if (is_max) {
            for (; i + 32 <= n; i += 32) {
                __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
                __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
                bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q),
                                                     _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
                m0 = _mm256_max_ps(m0, a);
                m1 = _mm256_max_ps(m1, b);
                m2 = _mm256_max_ps(m2, c);
                m3 = _mm256_max_ps(m3, d);
            }
            m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
        } else {
            for (; i + 32 <= n; i += 32) {
                __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
                __m256 c = _mm256_loadu_ps(x + i + 16), d = _mm256_loadu_ps(x + i + 24);
                bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q),
                                                     _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
                m0 = _mm256_min_ps(m0, a);
                m1 = _mm256_min_ps(m1, b);
                m2 = _mm256_min_ps(m2, c);
                m3 = _mm256_min_ps(m3, d);
            }
            m0 = _mm256_min_ps(_mm256_min_ps(m0, m1), _mm256_min_ps(m2, m3));
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, m0);
        for (int j = 0; j < 8; j++) r = (is_max ? lanes[j] > r : lanes[j] < r) ? lanes[j] : r;
        nan_seen = _mm256_movemask_ps(bad) != 0;
    }
#endif
    for (; i < n; i++) {
        float v = x[i];
        nan_seen |= v != v;
        r = (is_max ? v > r : v < r) ? v : r;
    }
    *saw_nan = nan_seen || r != r;
    return r;
}

/* first extreme of a run; `base` is the flat reduced index of x[0] */
static void seg_best(bool is_max, const float *x, int64_t s, int64_t n, int64_t base, racc *a)
{
    if (s == 1 && n >= 16) {
        /* the common case: find the extreme with vector code, then its first position */
        bool saw_nan;
        float m = run_extreme(is_max, x, n, &saw_nan);
        if (!saw_nan) {
            if (a->idx >= 0 && !better(is_max, m, a->best)) return; /* an earlier run wins ties */
            /* first position of m: test 16 at a time (vectorised), then scan that block */
            int64_t i = 0;
            for (; i + 16 <= n; i += 16) {
                int hit = 0;
                for (int j = 0; j < 16; j++) hit |= x[i + j] == m;
                if (hit) break;
            }
            while (x[i] != m) i++;
            a->best = m;
            a->idx = base + i;
            return;
        }
    }
    float best = a->best;
    int64_t idx = a->idx;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i * s];
        if (idx < 0 || better(is_max, v, best)) {
            best = v;
            idx = base + i;
            if (v != v) break;
        }
    }
    a->best = best;
    a->idx = idx;
}

/* ---------------------------------------------------------------------------------------
 * Reduction driver
 * ------------------------------------------------------------------------------------- */

typedef struct geom {
    int nk, nr;
    int64_t kshape[DC_MAX_DIMS], kstride[DC_MAX_DIMS];
    int64_t rshape[DC_MAX_DIMS], rstride[DC_MAX_DIMS];
    int64_t K, R;
} geom;

/* drop size-1 dims, merge neighbours contiguous with each other */
static int collapse(int n, const int64_t *shape, const int64_t *stride, int64_t *osh, int64_t *ost)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (shape[i] == 1) continue;
        if (m > 0 && ost[m - 1] == stride[i] * shape[i]) {
            osh[m - 1] *= shape[i];
            ost[m - 1] = stride[i];
            continue;
        }
        osh[m] = shape[i];
        ost[m] = stride[i];
        m++;
    }
    return m;
}

static int64_t kept_offset(const geom *g, int64_t k)
{
    int64_t off = 0;
    for (int i = g->nk - 1; i >= 0; i--) {
        off += (k % g->kshape[i]) * g->kstride[i];
        k /= g->kshape[i];
    }
    return off;
}

/* phase 0: SUM/MEAN/VAR sum, MAX/MIN best, LOGSUMEXP max. phase 1: VAR squared deviations
 * from c, LOGSUMEXP sum of exp(x - c). Over the flat reduced range [s, e). */
static void partial(dc_reduce_op op, int phase, const float *x, const geom *g, int64_t s, int64_t e,
                    double c, racc *a)
{
    int nr = g->nr;
    int64_t L = nr ? g->rshape[nr - 1] : 1, Ls = nr ? g->rstride[nr - 1] : 1;
    int64_t p = s;
    while (p < e) {
        int64_t line = p / L, within = p % L, n = DC_MIN(L - within, e - p);
        int64_t off = 0, rem = line;
        for (int i = nr - 2; i >= 0; i--) {
            off += (rem % g->rshape[i]) * g->rstride[i];
            rem /= g->rshape[i];
        }
        const float *ptr = x + off + within * Ls;
        switch (op) {
        case DC_RED_SUM:
        case DC_RED_MEAN: a->sum += seg_sum(ptr, Ls, n); break;
        case DC_RED_VAR:
            if (phase == 0) a->sum += seg_sum(ptr, Ls, n);
            else a->sum += seg_sumsq_dev(ptr, Ls, n, c);
            break;
        case DC_RED_MAX: seg_best(true, ptr, Ls, n, p, a); break;
        case DC_RED_MIN: seg_best(false, ptr, Ls, n, p, a); break;
        case DC_RED_LOGSUMEXP:
            if (phase == 0) seg_best(true, ptr, Ls, n, p, a);
            else a->sum += seg_sumexp(ptr, Ls, n, (float)c);
            break;
        }
        if ((op == DC_RED_MAX || op == DC_RED_MIN) && a->best != a->best) return; /* NaN found */
        p += n;
    }
}

static void racc_merge(dc_reduce_op op, int phase, racc *into, const racc *b)
{
    bool by_best = op == DC_RED_MAX || op == DC_RED_MIN || (op == DC_RED_LOGSUMEXP && phase == 0);
    if (!by_best) {
        into->sum += b->sum;
        return;
    }
    if (b->idx < 0) return;
    /* blocks merge in order, so a strict comparison keeps the first extreme */
    if (into->idx < 0 || better(op != DC_RED_MIN, b->best, into->best)) *into = *b;
}

static double lse_center(float m) { return isinf(m) ? 0.0 : (double)m; }

/* Column layout: lanes of the innermost kept dim accumulate together (SUM/MEAN/VAR/MAX/MIN). */
static void reduce_columns(dc_reduce_op op, float *out, int64_t *idx, const float *x, const geom *g,
                           double param)
{
    int64_t lanes_total = g->kshape[g->nk - 1];
    int64_t outer = g->K / lanes_total;
    int64_t nblk = (lanes_total + RED_LANES - 1) / RED_LANES;
    int64_t tasks = outer * nblk;
    int nr = g->nr;
    DC_PAR_FOR(g->K * g->R >= RED_PAR_MIN && tasks > 1, for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nblk, l0 = (t % nblk) * RED_LANES;
        int64_t nl = DC_MIN(RED_LANES, lanes_total - l0);
        /* kept offset of the first lane of this block */
        int64_t koff = 0, rem = o;
        for (int i = g->nk - 2; i >= 0; i--) {
            koff += (rem % g->kshape[i]) * g->kstride[i];
            rem /= g->kshape[i];
        }
        const float *base = x + koff + l0;
        double acc[RED_LANES], mean[RED_LANES];
        float best[RED_LANES], blk[RED_LANES];
        int64_t bidx[RED_LANES];
        for (int64_t j = 0; j < nl; j++) {
            acc[j] = 0;
            blk[j] = 0;
            best[j] = base[j]; /* reduced position 0 (R >= 1 here) */
            bidx[j] = 0;
        }
        int passes = op == DC_RED_VAR ? 2 : 1;
        for (int pass = 0; pass < passes; pass++) {
            int64_t ctr[DC_MAX_DIMS] = {0};
            int64_t off = 0;
            for (int64_t r = 0; r < g->R; r++) {
                const float *row = base + off;
                if (op == DC_RED_MAX || op == DC_RED_MIN) {
                    bool mx = op == DC_RED_MAX;
                    for (int64_t j = 0; j < nl; j++)
                        if (better(mx, row[j], best[j])) {
                            best[j] = row[j];
                            bidx[j] = r;
                        }
                } else if (pass == 0) {
                    for (int64_t j = 0; j < nl; j++) blk[j] += row[j];
                    /* flush float partials into double every 8 rows */
                    if (((r + 1) & 7) == 0 || r + 1 == g->R)
                        for (int64_t j = 0; j < nl; j++) {
                            acc[j] += (double)blk[j];
                            blk[j] = 0;
                        }
                } else {
                    for (int64_t j = 0; j < nl; j++) {
                        double d = (double)row[j] - mean[j];
                        acc[j] += d * d;
                    }
                }
                /* odometer over the reduced dims (no division per position) */
                for (int i = nr - 1; i >= 0; i--) {
                    off += g->rstride[i];
                    if (++ctr[i] < g->rshape[i]) break;
                    off -= g->rstride[i] * g->rshape[i];
                    ctr[i] = 0;
                }
            }
            if (op == DC_RED_VAR && pass == 0)
                for (int64_t j = 0; j < nl; j++) {
                    mean[j] = acc[j] / (double)g->R;
                    acc[j] = 0;
                }
        }
        float *dst = out + o * lanes_total + l0;
        for (int64_t j = 0; j < nl; j++) {
            switch (op) {
            case DC_RED_SUM: dst[j] = (float)acc[j]; break;
            case DC_RED_MEAN: dst[j] = (float)(acc[j] / (double)g->R); break;
            case DC_RED_VAR: dst[j] = (float)(acc[j] / fmax((double)g->R - param, 0.0)); break;
            default:
                dst[j] = best[j];
                if (idx) idx[o * lanes_total + l0 + j] = bidx[j];
                break;
            }
        }
    });
}

static dc_status cpu_reduce(dc_reduce_op op, float *out, int64_t *idx, const float *x, int nk,
                            const int64_t *kshape, const int64_t *kstride, int nr,
                            const int64_t *rshape, const int64_t *rstride, double param)
{
    geom g;
    g.K = dc__shape_numel(nk, kshape);
    g.R = dc__shape_numel(nr, rshape);
    if (g.K == 0) return DC_OK;
    bool best_op = op == DC_RED_MAX || op == DC_RED_MIN;
    if (g.R == 0) {
        if (best_op)
            return dc_set_error(DC_ERR_SHAPE, "%s: cannot reduce over zero elements",
                                op == DC_RED_MAX ? "max" : "min");
        float v = op == DC_RED_SUM ? 0.0f : op == DC_RED_LOGSUMEXP ? -INFINITY : NAN;
        for (int64_t k = 0; k < g.K; k++) out[k] = v;
        return DC_OK;
    }
    g.nk = collapse(nk, kshape, kstride, g.kshape, g.kstride);
    g.nr = collapse(nr, rshape, rstride, g.rshape, g.rstride);

    /* column layout: innermost kept dim contiguous, no reduced dim contiguous */
    bool rows_contig = g.nr > 0 && g.rstride[g.nr - 1] == 1;
    if (!rows_contig && g.nk > 0 && g.kstride[g.nk - 1] == 1 && g.nr > 0 && op != DC_RED_LOGSUMEXP) {
        reduce_columns(op, out, idx, x, &g, param);
        return DC_OK;
    }

    /* few outputs over many elements: split each reduced range into fixed blocks */
    int64_t nblk = (g.K < 16 && g.R >= 2 * RED_BLOCK) ? (g.R + RED_BLOCK - 1) / RED_BLOCK : 1;
    int64_t tasks = g.K * nblk;
    racc *acc = malloc((size_t)tasks * sizeof *acc);
    double *center = op == DC_RED_VAR || op == DC_RED_LOGSUMEXP ? malloc((size_t)g.K * sizeof *center) : NULL;
    if (!acc || ((op == DC_RED_VAR || op == DC_RED_LOGSUMEXP) && !center)) {
        free(acc);
        free(center);
        return dc_set_error(DC_ERR_OOM, "reduce: out of memory for %lld partial results", (long long)tasks);
    }
    bool par = g.K * g.R >= RED_PAR_MIN && tasks > 1;
    int phases = (op == DC_RED_VAR || op == DC_RED_LOGSUMEXP) ? 2 : 1;
    for (int phase = 0; phase < phases; phase++) {
        DC_PAR_FOR(par, for (int64_t t = 0; t < tasks; t++) {
            int64_t k = t / nblk, b = t % nblk;
            int64_t s = b * (g.R / nblk) + DC_MIN(b, g.R % nblk);
            int64_t e = s + g.R / nblk + (b < g.R % nblk ? 1 : 0);
            racc a = {0.0, 0.0f, -1};
            partial(op, phase, x + kept_offset(&g, k), &g, s, e, center ? center[k] : 0.0, &a);
            acc[t] = a;
        });
        for (int64_t k = 0; k < g.K; k++) {
            racc a = acc[k * nblk];
            for (int64_t b = 1; b < nblk; b++) racc_merge(op, phase, &a, &acc[k * nblk + b]);
            switch (op) {
            case DC_RED_SUM: out[k] = (float)a.sum; break;
            case DC_RED_MEAN: out[k] = (float)(a.sum / (double)g.R); break;
            case DC_RED_MAX:
            case DC_RED_MIN:
                out[k] = a.best;
                if (idx) idx[k] = a.idx;
                break;
            case DC_RED_VAR:
                if (phase == 0) center[k] = a.sum / (double)g.R;
                else out[k] = (float)(a.sum / fmax((double)g.R - param, 0.0));
                break;
            case DC_RED_LOGSUMEXP:
                if (phase == 0) center[k] = lse_center(a.best);
                else out[k] = (float)(log(a.sum) + center[k]);
                break;
            }
        }
    }
    free(acc);
    free(center);
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Softmax
 * ------------------------------------------------------------------------------------- */

/* One softmax row of n contiguous elements (the common inner == 1 layout), vectorised:
 * max over 8 lanes, exp(x - max) stored while summing in double, then one scale. */
static void softmax_row(float *y, const float *x, int64_t n, bool log_)
{
    bool saw_nan;
    float m = run_extreme(true, x, n, &saw_nan);
    if (saw_nan) m = NAN;
    double acc[8] = {0}, tail = 0;
    int64_t i = 0;
    if (log_) {
        tail = seg_sumexp(x, 1, n, m);
        i = n;
    } else {
        for (; i + 64 <= n; i += 64) {
            float blk[8] = {0};
            for (int k = 0; k < 64; k += 8)
                for (int j = 0; j < 8; j++) {
                    float e = dc__vexpf(x[i + k + j] - m);
                    y[i + k + j] = e;
                    blk[j] += e;
                }
            for (int j = 0; j < 8; j++) acc[j] += (double)blk[j];
        }
        for (; i < n; i++) {
            float e = dc__vexpf(x[i] - m);
            y[i] = e;
            tail += (double)e;
        }
    }
    double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
    if (log_) {
        float lse = (float)log(sum);
        for (i = 0; i < n; i++) y[i] = (x[i] - m) - lse;
    } else {
        float inv = (float)(1.0 / sum);
        for (i = 0; i < n; i++) y[i] *= inv;
    }
}

/* softmax over the middle dim, max-subtracted for stability; the normaliser in double.
 * inner == 1: one contiguous row per task. inner > 1: a block of adjacent columns per
 * task, walked row by row so the loads stay contiguous. */
static dc_status cpu_softmax(float *out, const float *x, int64_t outer, int64_t n, int64_t inner,
                             bool log_)
{
    if (n == 0 || outer * inner == 0) return DC_OK;
    if (inner == 1) {
        DC_PAR_FOR(outer * n >= RED_PAR_MIN && outer > 1, for (int64_t o = 0; o < outer; o++) {
            softmax_row(out + o * n, x + o * n, n, log_);
        });
        return DC_OK;
    }
    int64_t nblk = (inner + RED_LANES - 1) / RED_LANES, tasks = outer * nblk;
    DC_PAR_FOR(tasks * n * RED_LANES >= RED_PAR_MIN && tasks > 1, for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nblk, c0 = (t % nblk) * RED_LANES, nc = DC_MIN(RED_LANES, inner - c0);
        const float *xb = x + o * n * inner + c0;
        float *yb = out + o * n * inner + c0;
        float m[RED_LANES];
        double sum[RED_LANES];
        for (int64_t j = 0; j < nc; j++) {
            m[j] = xb[j];
            sum[j] = 0;
        }
        for (int64_t i = 1; i < n; i++)
            for (int64_t j = 0; j < nc; j++) {
                float v = xb[i * inner + j];
                m[j] = (v > m[j] || v != v) && m[j] == m[j] ? v : m[j];
            }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < nc; j++) {
                float e = dc__vexpf(xb[i * inner + j] - m[j]);
                if (!log_) yb[i * inner + j] = e;
                sum[j] += (double)e;
            }
        float f[RED_LANES];
        for (int64_t j = 0; j < nc; j++) f[j] = log_ ? (float)log(sum[j]) : (float)(1.0 / sum[j]);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < nc; j++) {
                if (log_) yb[i * inner + j] = (xb[i * inner + j] - m[j]) - f[j];
                else yb[i * inner + j] *= f[j];
            }
    });
    return DC_OK;
}

static dc_status cpu_softmax_backward(float *gx, const float *gy, const float *y, int64_t outer,
                                      int64_t n, int64_t inner, bool log_)
{
    int64_t tasks = outer * inner;
    DC_PAR_FOR(tasks * n >= RED_PAR_MIN && tasks > 1, for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / inner, in = t % inner, base = o * n * inner + in;
        const float *g = gy + base, *yy = y + base;
        float *d = gx + base;
        double dot = 0;
        if (inner == 1) {
            /* contiguous rows: vectorisable loops */
            double acc[8] = {0};
            int64_t i = 0;
            if (log_) {
                for (; i + 8 <= n; i += 8)
                    for (int j = 0; j < 8; j++) acc[j] += (double)g[i + j];
                for (; i < n; i++) dot += (double)g[i];
            } else {
                for (; i + 8 <= n; i += 8)
                    for (int j = 0; j < 8; j++) acc[j] += (double)g[i + j] * (double)yy[i + j];
                for (; i < n; i++) dot += (double)g[i] * (double)yy[i];
            }
            dot += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            float s = (float)dot;
            if (log_)
                for (i = 0; i < n; i++) d[i] = g[i] - dc__vexpf(yy[i]) * s;
            else
                for (i = 0; i < n; i++) d[i] = yy[i] * (g[i] - s);
            continue;
        }
        if (log_) {
            for (int64_t i = 0; i < n; i++) dot += (double)g[i * inner];
            float s = (float)dot;
            for (int64_t i = 0; i < n; i++) d[i * inner] = g[i * inner] - dc__vexpf(yy[i * inner]) * s;
        } else {
            for (int64_t i = 0; i < n; i++) dot += (double)g[i * inner] * (double)yy[i * inner];
            float s = (float)dot;
            for (int64_t i = 0; i < n; i++) d[i * inner] = yy[i * inner] * (g[i * inner] - s);
        }
    });
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Gather / scatter-add
 * ------------------------------------------------------------------------------------- */

/* Both walk index's shape; the outer loop runs over every coordinate except `dim`, so each
 * task touches its own line of gx in scatter_add and threads never collide. */
static void line_offsets(int64_t t, int ndim, const int64_t *shape, int dim, const int64_t *s1,
                         const int64_t *s2, int64_t *o1, int64_t *o2)
{
    *o1 = *o2 = 0;
    for (int i = ndim - 1; i >= 0; i--) {
        if (i == dim) continue;
        int64_t c = t % shape[i];
        t /= shape[i];
        *o1 += c * s1[i];
        *o2 += c * s2[i];
    }
}

static dc_status cpu_gather(float *out, const float *x, const int64_t *x_stride, int64_t x_dim_size,
                            const int64_t *index, const int64_t *index_stride, int ndim,
                            const int64_t *shape, int dim)
{
    int64_t n = ndim ? shape[dim] : 1;
    int64_t lines = n ? dc__shape_numel(ndim, shape) / n : 0;
    int64_t ostride[DC_MAX_DIMS];
    dc__contiguous_strides(ndim, shape, ostride);
    int64_t os_dim = ndim ? ostride[dim] : 1, is_dim = ndim ? index_stride[dim] : 1;
    int64_t xs_dim = ndim ? x_stride[dim] : 1;
    int bad = 0;
    int64_t bad_value = 0;
#pragma omp parallel for schedule(static) if (lines * n >= RED_PAR_MIN && lines > 1) reduction(| : bad)
    for (int64_t t = 0; t < lines; t++) {
        int64_t xo, io, oo = 0, rem = t;
        line_offsets(t, ndim, shape, dim, x_stride, index_stride, &xo, &io);
        for (int i = ndim - 1; i >= 0; i--) {
            if (i == dim) continue;
            oo += (rem % shape[i]) * ostride[i];
            rem /= shape[i];
        }
        for (int64_t j = 0; j < n; j++) {
            int64_t v = index[io + j * is_dim];
            if (v < 0 || v >= x_dim_size) {
                bad = 1;
#pragma omp critical(dc_gather_bad)
                bad_value = v;
                out[oo + j * os_dim] = 0;
                continue;
            }
            out[oo + j * os_dim] = x[xo + v * xs_dim];
        }
    }
    if (bad)
        return dc_set_error(DC_ERR_ARG, "gather: index %lld is out of bounds for dim %d with size %lld",
                            (long long)bad_value, dim, (long long)x_dim_size);
    return DC_OK;
}

static dc_status cpu_scatter_add(float *gx, const int64_t *gx_stride, const float *src,
                                 const int64_t *index, const int64_t *index_stride, int ndim,
                                 const int64_t *shape, int dim)
{
    int64_t n = ndim ? shape[dim] : 1;
    int64_t lines = n ? dc__shape_numel(ndim, shape) / n : 0;
    int64_t sstride[DC_MAX_DIMS];
    dc__contiguous_strides(ndim, shape, sstride);
    int64_t ss_dim = ndim ? sstride[dim] : 1, is_dim = ndim ? index_stride[dim] : 1;
    int64_t gs_dim = ndim ? gx_stride[dim] : 1;
    DC_PAR_FOR(lines * n >= RED_PAR_MIN && lines > 1, for (int64_t t = 0; t < lines; t++) {
        int64_t go, io, so = 0, rem = t;
        line_offsets(t, ndim, shape, dim, gx_stride, index_stride, &go, &io);
        for (int i = ndim - 1; i >= 0; i--) {
            if (i == dim) continue;
            so += (rem % shape[i]) * sstride[i];
            rem /= shape[i];
        }
        for (int64_t j = 0; j < n; j++) gx[go + index[io + j * is_dim] * gs_dim] += src[so + j * ss_dim];
    });
    return DC_OK;
}

const struct dc_kernels_reduce dc_cpu_reduce_kernels = {
    .reduce = cpu_reduce,
    .softmax = cpu_softmax,
    .softmax_backward = cpu_softmax_backward,
    .gather = cpu_gather,
    .scatter_add = cpu_scatter_add,
};
