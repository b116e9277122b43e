/* cpu/conv_small.c: stride-1 convolutions whose GEMMs are too thin for BLAS: few output
 * channels (LeNet's 6 and 16) or a short reduction (ResNet's 3-channel stem, K = 27).
 *
 * OpenBLAS packs both operands of every call into its panel layout; with K = 25 or M = 6 the
 * packing and the edge handling cost more than the arithmetic. These kernels skip packing
 * and im2col: each image is copied into zero-padded planes that stay in L1/L2 (see "The
 * padded-row layout" below), and register-blocked loops read the weights and the shifted
 * input rows in place:
 *
 *   forward      y_n [o, q]  = W [o, k] col_n [k, q] + b       (6 x 16 blocks, pixels or
 *                                                               channels in the lanes)
 *   weight grad  dW [o, k]  += dy_n [o, q] col_n [k, q]^T      (4 x 3 dot blocks, or 6 x 16
 *                                                               with channels in the lanes)
 *   input grad   dx_n = col2im(W^T dy_n), the col2im fused into the GEMM's stores
 *
 * Images are spread over threads; weight-gradient sums are per thread, added in thread
 * order at the end, so results are deterministic for a fixed thread count.
 *
 * The kernels use GCC vector extensions (8 floats), which compile to AVX2 + FMA with the
 * library's x86-64-v3 flags and to plain SSE or scalar code elsewhere. */
#include <omp.h>

#include "../../core/internal.h"
#include "conv_internal.h"

typedef dc_v8 v8;

#define NN_MR 6
#define NN_NR 16
/* pixels summed in registers before a block is added to memory: long float sums lose
 * precision (a 64x64 image summed at once: 1e-6 of the result; in blocks: 2e-7) */
#define SUM_BLOCK 256
#define NT_MR 4
#define NT_NR 3

#define load8 dc_load8
#define store8 dc_store8
#define splat dc_splat8
static inline float hsum(v8 v)
{
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* C [m, n] = sum_p A[m ars + aoff[p]] B[boff[p] + n] (+ bias[m]) for an M x N block, N a
 * multiple of 16 (callers pad their buffers so that whole 16-column panels can be read and
 * written). aoff NULL means aoff[p] = p. Row m of C starts at C + coff[m] (coff NULL: m ldc);
 * with `accumulate` the block is added to C instead of stored. Rows past M reuse row M-1 and
 * are not stored, so every block runs the same register kernel: 6 rows x 16 columns, 12
 * accumulators. (Always inlined into the two wrappers below, so the aoff test folds away.) */
static inline __attribute__((always_inline)) void
gemm_nn_impl(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, const int64_t *aoff, const float *B,
             const int64_t *boff, float *C, int64_t ldc, const int64_t *coff, bool accumulate, const float *bias)
{
    for (int64_t n0 = 0; n0 < N; n0 += NN_NR) {
        const float *bp = B + n0;
        for (int64_t m0 = 0; m0 < M; m0 += NN_MR) {
            int64_t mm = DC_MIN(NN_MR, M - m0);
            const float *a[NN_MR];
            v8 acc[NN_MR][2];
            for (int i = 0; i < NN_MR; i++) {
                int64_t r = m0 + (i < mm ? i : mm - 1);
                a[i] = A + r * ars;
                acc[i][0] = acc[i][1] = splat(bias ? bias[r] : 0.0f);
            }
            for (int64_t p = 0; p < K; p++) {
                const float *row = bp + boff[p];
                v8 b0 = load8(row), b1 = load8(row + 8);
                for (int i = 0; i < NN_MR; i++) {
                    v8 s = splat(aoff ? a[i][aoff[p]] : a[i][p]);
                    acc[i][0] += s * b0;
                    acc[i][1] += s * b1;
                }
            }
            for (int i = 0; i < mm; i++) {
                float *c = C + (coff ? coff[m0 + i] : (m0 + i) * ldc) + n0;
                if (accumulate) {
                    acc[i][0] += load8(c);
                    acc[i][1] += load8(c + 8);
                }
                store8(c, acc[i][0]);
                store8(c + 8, acc[i][1]);
            }
        }
    }
}

static void gemm_nn(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, const float *B, const int64_t *boff,
                    float *C, int64_t ldc, const float *bias)
{
    gemm_nn_impl(M, N, K, A, ars, NULL, B, boff, C, ldc, NULL, false, bias);
}

static void gemm_nn_scatter_add(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, const int64_t *aoff,
                                const float *B, const int64_t *boff, float *C, const int64_t *coff)
{
    gemm_nn_impl(M, N, K, A, ars, aoff, B, boff, C, 0, coff, true, NULL);
}

/* dst [cols, rows] (row stride ldd) = src [rows, cols] (row stride lds)^T, in 8 x 8 tiles
 * of register shuffles (a scalar transpose would cost as much as the o-vectorised GEMMs it
 * feeds). */
static void transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst, int64_t ldd)
{
    int64_t r8 = rows & ~(int64_t)7, c8 = cols & ~(int64_t)7;
    for (int64_t r = 0; r < r8; r += 8) {
        for (int64_t c = 0; c < c8; c += 8) {
            v8 a[8], b[8];
            for (int i = 0; i < 8; i++) a[i] = load8(src + (r + i) * lds + c);
            for (int i = 0; i < 8; i += 2) {
                b[i] = __builtin_shufflevector(a[i], a[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
                b[i + 1] = __builtin_shufflevector(a[i], a[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
            }
            for (int i = 0; i < 8; i += 4) {
                for (int j = 0; j < 2; j++) {
                    a[i + j] = __builtin_shufflevector(b[i + j], b[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
                    a[i + j + 2] = __builtin_shufflevector(b[i + j], b[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
                }
            }
            /* a[0] a[2] a[1] a[3] hold rows 0-3 of the transposed lower / upper halves */
            const int order[4] = {0, 2, 1, 3};
            for (int i = 0; i < 4; i++) {
                v8 lo = a[order[i]], hi = a[order[i] + 4];
                store8(dst + (c + i) * ldd + r, __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 8, 9, 10, 11));
                store8(dst + (c + i + 4) * ldd + r, __builtin_shufflevector(lo, hi, 4, 5, 6, 7, 12, 13, 14, 15));
            }
        }
        for (int64_t c = c8; c < cols; c++)
            for (int i = 0; i < 8; i++) dst[c * ldd + r + i] = src[(r + i) * lds + c];
    }
    for (int64_t r = r8; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[c * ldd + r] = src[r * lds + c];
}

/* C [m, n] += sum_p A[m lda + p] B[boff[n] + p]: dot products of rows, 4 x 3 at a time,
 * each accumulated in 8 lanes and summed at the end (a fixed order). */
static void gemm_nt_acc(int64_t M, int64_t N, int64_t P_all, const float *A_all, int64_t lda, const float *B_all,
                        const int64_t *boff, float *C, int64_t ldc)
{
    /* in blocks of 4 SUM_BLOCK columns, each summed in registers and then added to C */
    for (int64_t pb = 0; pb < P_all; pb += 4 * SUM_BLOCK) {
    const int64_t P = DC_MIN(4 * SUM_BLOCK, P_all - pb);
    const float *A = A_all + pb, *B = B_all + pb;
    const int64_t p8 = P & ~(int64_t)7;
    for (int64_t m0 = 0; m0 < M; m0 += NT_MR) {
        int64_t mm = DC_MIN(NT_MR, M - m0);
        const float *a[NT_MR];
        for (int i = 0; i < NT_MR; i++) a[i] = A + (m0 + (i < mm ? i : mm - 1)) * lda;
        for (int64_t n0 = 0; n0 < N; n0 += NT_NR) {
            int64_t nn = DC_MIN(NT_NR, N - n0);
            const float *b[NT_NR];
            for (int j = 0; j < NT_NR; j++) b[j] = B + boff[n0 + (j < nn ? j : nn - 1)];
            v8 acc[NT_MR][NT_NR];
            for (int i = 0; i < NT_MR; i++)
                for (int j = 0; j < NT_NR; j++) acc[i][j] = splat(0.0f);
            for (int64_t p = 0; p < p8; p += 8) {
                v8 bv[NT_NR];
                for (int j = 0; j < NT_NR; j++) bv[j] = load8(b[j] + p);
                for (int i = 0; i < NT_MR; i++) {
                    v8 av = load8(a[i] + p);
                    for (int j = 0; j < NT_NR; j++) acc[i][j] += av * bv[j];
                }
            }
            for (int i = 0; i < mm; i++) {
                for (int j = 0; j < nn; j++) {
                    float s = hsum(acc[i][j]);
                    for (int64_t p = p8; p < P; p++) s += a[i][p] * b[j][p];
                    C[(m0 + i) * ldc + n0 + j] += s;
                }
            }
        }
    }
    }
}

/* The same products with the output channels in the vector lanes ("o-vectorised"), for
 * convolutions whose output rows are short (LeNet's 10-wide conv2: a 16-column panel of
 * pixels would be 40% junk). Pixels are gathered through qoff (flat positions of the valid
 * output pixels), so no work is spent on junk columns; the results come out transposed.
 *
 *   fwd:    yt [q, o]  = b[o] + sum_k xp[koff[k] + qoff[q]] wt[k, o]      (6 q x 16 o blocks)
 *   wgrad:  dwt[k, o] += sum_q xp[koff[k] + qoff[q]] dyt[q, o]            (6 k x 16 o blocks)
 *
 * wt / dyt / yt / dwt rows are o16 floats (o rounded up to 16, zero-padded). Rows past the
 * end of q (or k) reuse the last one and are not stored. */
static void ovec_forward(int64_t nq, const int64_t *qoff, int64_t K, const int64_t *koff, const float *xp,
                         const float *wt, int64_t o16, const float *bias16, float *yt)
{
    for (int64_t o0 = 0; o0 < o16; o0 += 16) {
        v8 b0 = load8(bias16 + o0), b1 = load8(bias16 + o0 + 8);
        for (int64_t q0 = 0; q0 < nq; q0 += NN_MR) {
            int64_t qq = DC_MIN(NN_MR, nq - q0);
            const float *px[NN_MR];
            v8 acc[NN_MR][2];
            for (int i = 0; i < NN_MR; i++) {
                px[i] = xp + qoff[q0 + (i < qq ? i : qq - 1)];
                acc[i][0] = b0;
                acc[i][1] = b1;
            }
            for (int64_t k = 0; k < K; k++) {
                const float *wr = wt + k * o16 + o0;
                v8 w0 = load8(wr), w1 = load8(wr + 8);
                int64_t ko = koff[k];
                for (int i = 0; i < NN_MR; i++) {
                    v8 sv = splat(px[i][ko]);
                    acc[i][0] += sv * w0;
                    acc[i][1] += sv * w1;
                }
            }
            for (int i = 0; i < qq; i++) {
                store8(yt + (q0 + i) * o16 + o0, acc[i][0]);
                store8(yt + (q0 + i) * o16 + o0 + 8, acc[i][1]);
            }
        }
    }
}

static void ovec_wgrad_acc(int64_t nq_all, const int64_t *qoff_all, int64_t K, const int64_t *koff, const float *xp,
                           const float *dyt_all, int64_t o16, float *dwt)
{
    for (int64_t qb = 0; qb < nq_all; qb += SUM_BLOCK) {
    const int64_t nq = DC_MIN(SUM_BLOCK, nq_all - qb);
    const int64_t *qoff = qoff_all + qb;
    const float *dyt = dyt_all + qb * o16;
    for (int64_t o0 = 0; o0 < o16; o0 += 16) {
        for (int64_t k0 = 0; k0 < K; k0 += NN_MR) {
            int64_t kk = DC_MIN(NN_MR, K - k0);
            const float *pk[NN_MR];
            v8 acc[NN_MR][2];
            for (int i = 0; i < NN_MR; i++) {
                pk[i] = xp + koff[k0 + (i < kk ? i : kk - 1)];
                acc[i][0] = acc[i][1] = splat(0.0f);
            }
            for (int64_t q = 0; q < nq; q++) {
                const float *dr = dyt + q * o16 + o0;
                v8 d0 = load8(dr), d1 = load8(dr + 8);
                int64_t qo = qoff[q];
                for (int i = 0; i < NN_MR; i++) {
                    v8 sv = splat(pk[i][qo]);
                    acc[i][0] += sv * d0;
                    acc[i][1] += sv * d1;
                }
            }
            for (int i = 0; i < kk; i++) {
                float *d = dwt + (k0 + i) * o16 + o0;
                store8(d, load8(d) + acc[i][0]);
                store8(d + 8, load8(d + 8) + acc[i][1]);
            }
        }
    }
    }
}

/* Copies one short row (an image row of a few dozen floats): inline vector moves, where a
 * memcpy call per row costs as much as the copy itself at these sizes. */
static inline void copy_row(float *dst, const float *src, int64_t n)
{
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) store8(dst + j, load8(src + j));
    for (; j < n; j++) dst[j] = src[j];
}

/* The sum of a short row (one image's plane of dy), in 8 lanes added in a fixed order. */
static inline double sum_row(const float *p, int64_t n)
{
    v8 a = splat(0.0f);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) a += load8(p + j);
    double s = hsum(a);
    for (; j < n; j++) s += p[j];
    return s;
}

/* ---------------------------------------------------------------------------------------
 * Input gradient with images in the lanes ("n-vectorised"), for shapes where the Z GEMM of
 * the backward below wastes many multiply-adds on the zero border of dy (LeNet's conv2:
 * 1.44 per useful one). Eight images are interleaved, dyt [o, oh, dw + ow + dw, 8] (each
 * pixel's 8 values side by side, dw zero columns on either side), and
 *
 *   dxt [c, y, x, :] = sum_{o, p, r} W[o, c, p, r] dyt[o, y + ph - p dh, x + pw - r dw, :]
 *
 * runs over only the taps that land inside dy: the range of p is exact for each output row,
 * the range of r is the union over a pair of output pixels (its one extra tap reads the
 * zero columns), about 1.08 multiply-adds per useful one on LeNet's conv2. Blocks of 6
 * channels x 2 pixels: 12 accumulators. dxt is then transposed back into the images of dx.
 * wt [c / 6][o][kh][kw][6] holds W with each block's 6 channels side by side.
 * ------------------------------------------------------------------------------------- */

#define NB_C 6

static int64_t ceil_div_pos(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

static void nvec_dgrad(const dc_conv2d_geom *g, const float *wt, const float *dyt, int64_t dyw, float *dxt)
{
    const int64_t ncb = (g->c + NB_C - 1) / NB_C;
    for (int64_t cb = 0; cb < ncb; cb++) {
        const int64_t c0 = cb * NB_C, cc = DC_MIN(NB_C, g->c - c0);
        const float *wb = wt + cb * g->o * g->kh * g->kw * NB_C;
        for (int64_t y = 0; y < g->h; y++) {
            const int64_t ty = y + g->ph; /* dy row = ty - p dh, in [0, oh) */
            const int64_t p_lo = ceil_div_pos(ty - (g->oh - 1), g->dh), p_hi = DC_MIN(g->kh - 1, ty / g->dh);
            for (int64_t x = 0; x < g->w; x += 2) {
                const int64_t x2 = DC_MIN(x + 1, g->w - 1);
                /* dy column = x + pw - r dw, in [0, ow) for some pixel of the pair */
                const int64_t r_lo = ceil_div_pos(x + g->pw - (g->ow - 1), g->dw);
                const int64_t r_hi = DC_MIN(g->kw - 1, (x2 + g->pw) / g->dw);
                v8 acc[2][NB_C];
                for (int i = 0; i < NB_C; i++) acc[0][i] = acc[1][i] = splat(0.0f);
                for (int64_t o = 0; o < g->o; o++) {
                    for (int64_t p = p_lo; p <= p_hi; p++) {
                        const float *drow = dyt + ((o * g->oh + ty - p * g->dh) * dyw + g->dw + x + g->pw) * 8;
                        const float *wp = wb + (o * g->kh + p) * g->kw * NB_C;
                        for (int64_t r = r_lo; r <= r_hi; r++) {
                            const float *d = drow - r * g->dw * 8;
                            v8 d0 = load8(d), d1 = load8(d + (x2 - x) * 8);
                            const float *wr = wp + r * NB_C;
                            for (int i = 0; i < NB_C; i++) {
                                v8 sv = splat(wr[i]);
                                acc[0][i] += sv * d0;
                                acc[1][i] += sv * d1;
                            }
                        }
                    }
                }
                for (int i = 0; i < cc; i++) {
                    float *dst = dxt + (((c0 + i) * g->h + y) * g->w + x) * 8;
                    store8(dst, acc[0][i]);
                    if (x2 != x) store8(dst + 8, acc[1][i]);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * The padded-row layout
 *
 * For a stride-1 convolution, copy each input plane into a zero-padded plane of width
 * wp = w + 2 pw and compute the output on the same width: output (i, j) sits at q = i wp + j
 * and tap (p, r) of channel c reads the padded input at c plane + p dh wp + r dw + q. So
 * column q of im2col row k = (c, p, r) is padded[off_k + q]: every im2col row is the padded
 * input shifted by off_k, and the kernels read it in place with no im2col at all. Computed
 * with pixels in the vector lanes, the wp - ow columns past each output row are junk,
 * computed and dropped (12% of the work for LeNet's 28-wide conv1, 6% for a 32-wide 3x3
 * stem); where that waste is large the o-vectorised kernels above skip the junk instead.
 * ------------------------------------------------------------------------------------- */

#define SMALL_MAX_K 512 /* the 16-column B panel (K x 64 bytes) must stay in L1 */

static bool small_ok(const dc_conv2d_geom *g)
{
    if (dc__conv_path == 1) return false;
    int64_t k = g->c * g->kh * g->kw;
    if (g->groups != 1 || g->sh != 1 || g->sw != 1 || k > SMALL_MAX_K || k == 0) return false;
    return k <= 64 || g->o <= 32;
}

typedef struct flat {
    int64_t hp, wp;   /* padded input plane */
    int64_t plane;    /* floats per padded plane, with slack so panels may read past the end */
    int64_t n;        /* oh * wp: output columns computed */
    int64_t n16;      /* n rounded up to whole 16-column panels */
    int64_t k;        /* c kh kw */
    int64_t ohw;      /* valid output pixels */
    int64_t o16;      /* o rounded up to 16 (o-vectorised layouts) */
    bool ovec_fwd;    /* forward with output channels in the lanes */
    bool ovec_wgrad;  /* weight gradient likewise */
    bool direct;      /* read_geom: x is read where it lies, not from padded copies */
} flat;

static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

static flat flat_geom(const dc_conv2d_geom *g)
{
    flat f;
    f.hp = g->h + 2 * g->ph;
    f.wp = g->w + 2 * g->pw;
    f.n = g->oh * f.wp;
    f.n16 = round_up(f.n, NN_NR);
    /* the furthest read is off_max + n16 - 1 with off_max < hp wp - n + wp: one extra row
     * plus a panel covers it */
    f.plane = f.hp * f.wp + f.wp + NN_NR;
    f.k = g->c * g->kh * g->kw;
    f.ohw = g->oh * g->ow;
    f.o16 = round_up(g->o, 16);
    /* multiply-adds each layout performs (with its padding waste); the o-vectorised forward
     * also pays a transpose of the output, the pixel-vectorised weight gradient a horizontal
     * sum per dot product */
    double qvec_fwd = (double)f.n16 * (double)round_up(g->o, NN_MR) * (double)f.k;
    double ovec_fwd = (double)round_up(f.ohw, NN_MR) * (double)f.o16 * (double)f.k * 1.15;
    double qvec_wg = (double)f.n * (double)round_up(g->o, NT_MR) * (double)round_up(f.k, NT_NR) * 1.3;
    double ovec_wg = (double)round_up(f.k, NN_MR) * (double)f.o16 * (double)f.ohw;
    f.ovec_fwd = ovec_fwd < qvec_fwd;
    f.ovec_wgrad = ovec_wg < qvec_wg;
    f.direct = false;
    return f;
}

/* The layout the input is read in. The o-vectorised kernels read only valid taps of valid
 * pixels, never a panel past a row's end, so an unpadded input needs no padded copy: they
 * read x itself, with rows of w and planes of h w floats (LeNet's conv2: no copy per image).
 * Otherwise (padding, or whole pixel panels) the padded planes of f. */
static flat read_geom(const dc_conv2d_geom *g, const flat *f, bool ovec)
{
    flat r = *f;
    r.direct = ovec && g->ph == 0 && g->pw == 0;
    if (r.direct) {
        r.wp = g->w;
        r.plane = g->h * g->w;
    }
    return r;
}

/* off[k] for k = (c, p, r) */
static void flat_offsets(const dc_conv2d_geom *g, const flat *f, int64_t *off)
{
    int64_t k = 0;
    for (int64_t c = 0; c < g->c; c++)
        for (int p = 0; p < g->kh; p++)
            for (int r = 0; r < g->kw; r++) off[k++] = c * f->plane + (int64_t)p * g->dh * f->wp + (int64_t)r * g->dw;
}

/* qoff[i ow + j] = i wp + j: where each valid output pixel sits in the padded-row layout */
static void flat_pixels(const dc_conv2d_geom *g, const flat *f, int64_t *qoff)
{
    for (int64_t i = 0; i < g->oh; i++)
        for (int64_t j = 0; j < g->ow; j++) qoff[i * g->ow + j] = i * f->wp + j;
}

/* x [c, h, w] -> padded planes (the padding and slack were zeroed once, and only the
 * interior is rewritten) */
static void flat_pad(const dc_conv2d_geom *g, const flat *f, const float *x, float *xp)
{
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t i = 0; i < g->h; i++)
            copy_row(xp + c * f->plane + (i + g->ph) * f->wp + g->pw, x + (c * g->h + i) * g->w, g->w);
}

/* ---------------------------------------------------------------------------------------
 * Forward. Pixel-vectorised: ybuf [o, n16] = W [o, k] padded-im2col [k, n16] + b, then the
 * valid columns of each row go to y. O-vectorised: yt [q, o16] from ovec_forward, then
 * transposed into y.
 * ------------------------------------------------------------------------------------- */

bool dc__conv_small_forward(const dc_conv2d_geom *g, const float *x, const float *w, const float *bias, float *y)
{
    if (!small_ok(g)) return false;
    const dc_backend *be = dc_backend_get(DC_CPU);
    const flat f = flat_geom(g);
    const int64_t ohw = f.ohw, chw = g->c * g->h * g->w;
    int threads = omp_in_parallel() ? 1 : (int)DC_MIN((int64_t)omp_get_max_threads(), g->n);
    const size_t xp_f = (size_t)(g->c * f.plane);
    const size_t y_f = f.ovec_fwd ? (size_t)(ohw * f.o16) : (size_t)(g->o * f.n16);
    /* whole cache lines per thread (no false sharing; the tables after them stay aligned) */
    const size_t per_thread = (size_t)round_up((int64_t)(xp_f + y_f), 16);
    /* shared: wt [k, o16] and bias16 (o-vectorised), then the offset tables */
    const size_t shared_f = f.ovec_fwd ? (size_t)round_up((f.k + 1) * f.o16, 16) : 0;
    const size_t bytes = ((size_t)threads * per_thread + shared_f) * sizeof(float) + (size_t)(f.k + ohw) * sizeof(int64_t);
    float *scratch = be->scratch_alloc(bytes);
    if (!scratch) return false; /* the GEMM path will try (and report) the allocation again */
    float *wt = scratch + (size_t)threads * per_thread, *bias16 = wt + f.k * f.o16;
    int64_t *off = (int64_t *)(wt + shared_f), *qoff = off + f.k;
    const flat fr = read_geom(g, &f, f.ovec_fwd);
    flat_offsets(g, &fr, off);
    if (f.ovec_fwd) {
        flat_pixels(g, &fr, qoff);
        memset(wt, 0, shared_f * sizeof *wt);
        for (int64_t o = 0; o < g->o; o++) {
            for (int64_t k = 0; k < f.k; k++) wt[k * f.o16 + o] = w[o * f.k + k];
            if (bias) bias16[o] = bias[o];
        }
    }
#pragma omp parallel num_threads(threads)
    {
        float *xp = scratch + (size_t)omp_get_thread_num() * per_thread, *yb = xp + xp_f;
        if (!fr.direct) memset(xp, 0, xp_f * sizeof *xp);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g->n; n++) {
            const float *xs = x + n * chw;
            if (!fr.direct) {
                flat_pad(g, &f, xs, xp);
                xs = xp;
            }
            float *yn = y + n * g->o * ohw;
            if (f.ovec_fwd) {
                ovec_forward(ohw, qoff, f.k, off, xs, wt, f.o16, bias16, yb);
                transpose(yb, ohw, g->o, f.o16, yn, ohw);
            } else {
                gemm_nn(g->o, f.n16, f.k, w, f.k, xs, off, yb, f.n16, bias);
                for (int64_t o = 0; o < g->o; o++)
                    for (int64_t i = 0; i < g->oh; i++)
                        copy_row(yn + o * ohw + i * g->ow, yb + o * f.n16 + i * f.wp, g->ow);
            }
        }
    }
    be->scratch_free(scratch, bytes);
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Backward (the math is in conv.c's comment), in the padded-row layout with dy copied to
 * rows of dyb (junk columns and a zero lead of (kw - 1) dw floats before each row):
 *
 *   dW [o, k] += sum_q dyb[o, q] padded[off_k + q]            (or o-vectorised: dwt [k, o])
 *
 *   dx: col2im(W^T dy) adds, for every tap k = (c, p, r), sum_o W[o, k] dyb[o, q] into the
 *   padded dx at off_k + q. The taps of one kernel row (c, p) land at the same place shifted
 *   by r dw, so they are summed first, in one GEMM with reduction over (o, r):
 *     Z[(c, p), s] = sum_{o, r} W[o, c, p, r] dyb[o, s - r dw],  dx_padded[c, p dh wp + s] += Z
 *   (a reduction of o kw instead of o: far fewer stores per multiply-add), stored by adding
 *   each 16-column block straight into dx. Then the padding is cropped off.
 *
 * The threads' dW sums are added in thread order.
 * ------------------------------------------------------------------------------------- */

bool dc__conv_small_backward(const dc_conv2d_geom *g, const float *x, const float *w, const float *dy, float *dx,
                             float *dw, float *db)
{
    if (!small_ok(g)) return false;
    const dc_backend *be = dc_backend_get(DC_CPU);
    const flat f = flat_geom(g);
    const bool ovec = dw && f.ovec_wgrad;
    const int64_t ohw = f.ohw, chw = g->c * g->h * g->w, wsize = g->o * f.k;
    const int64_t lead = (int64_t)(g->kw - 1) * g->dw;          /* zeros before each dyb row */
    const int64_t nz16 = round_up(f.n + lead, NN_NR);          /* Z columns */
    const int64_t ldz = round_up(lead, NN_NR) + nz16;          /* dyb row stride */
    const int64_t mz = g->c * g->kh, kz = g->o * g->kw;         /* Z rows, reduction */
    int threads = omp_in_parallel() ? 1 : (int)DC_MIN((int64_t)omp_get_max_threads(), g->n);
    const flat fr = read_geom(g, &f, ovec);
    /* the input gradient n-vectorised where that wastes less than the Z GEMM: multiply-adds
     * per useful one, the n-vectorised ~1.1 times its empty lanes in the last group of 8 */
    const double useful = (double)g->o * (double)f.k * (double)ohw;
    const double z_waste = (double)round_up(mz, NN_MR) * (double)nz16 * (double)kz / useful;
    const double n_waste = 1.1 * (double)round_up(g->n, 8) / (double)g->n;
    const bool nvec = dx && z_waste > 1.25 && n_waste < z_waste;
    const int64_t dyw = g->ow + 2 * g->dw, ncb = (g->c + NB_C - 1) / NB_C;
    const size_t xp_f = (size_t)(g->c * f.plane);
    const size_t xc_f = dw && !fr.direct ? xp_f : 0; /* the padded copy of x */
    const size_t dyb_f = ((dx && !nvec) || (dw && !ovec)) ? (size_t)(g->o * ldz) : 0;
    const size_t dyt_f = ovec ? (size_t)(ohw * f.o16) : 0;
    const size_t dxp_f = dx && !nvec ? xp_f : 0;
    const size_t dyt8_f = nvec ? (size_t)(g->o * g->oh * dyw * 8) : 0, dxt8_f = nvec ? (size_t)(chw * 8) : 0;
    const size_t dw_f = dw ? (size_t)(ovec ? f.k * f.o16 : wsize) : 0;
    const size_t db_f = db ? (size_t)(2 * g->o) : 0; /* o doubles */
    /* each thread's scratch, in this order (offsets in floats; the db sums 8-byte aligned) */
    const size_t dyb_at = xc_f, dyt_at = dyb_at + dyb_f, dxp_at = dyt_at + dyt_f, dyt8_at = dxp_at + dxp_f;
    const size_t dxt8_at = dyt8_at + dyt8_f, acc_at = dxt8_at + dxt8_f;
    const size_t db_at = (size_t)round_up((int64_t)(acc_at + dw_f), 2);
    /* whole cache lines per thread (no false sharing; the tables after them stay aligned) */
    const size_t per_thread = (size_t)round_up((int64_t)(db_at + db_f), 16);
    const size_t wt_f = nvec ? (size_t)round_up(ncb * g->o * g->kh * g->kw * NB_C, 16) : 0;
    const size_t n_tab = (size_t)(f.k + ohw + 2 * kz + mz);
    const size_t bytes = ((size_t)threads * per_thread + wt_f) * sizeof(float) + n_tab * sizeof(int64_t);
    float *scratch = be->scratch_alloc(bytes);
    if (!scratch) return false;
    float *wt = scratch + (size_t)threads * per_thread;
    int64_t *off = (int64_t *)(wt + wt_f), *qoff = off + f.k;
    if (nvec) /* W [o, c, p, r] -> wt [c / 6][o][p][r][6], channels past c zero */
        for (int64_t cb = 0; cb < ncb; cb++)
            for (int64_t o = 0; o < g->o; o++)
                for (int64_t pr = 0; pr < g->kh * g->kw; pr++)
                    for (int i = 0; i < NB_C; i++) {
                        int64_t c = cb * NB_C + i;
                        wt[((cb * g->o + o) * g->kh * g->kw + pr) * NB_C + i] =
                            c < g->c ? w[(o * g->c + c) * g->kh * g->kw + pr] : 0.0f;
                    }
    int64_t *zaoff = qoff + ohw, *zboff = zaoff + kz, *zcoff = zboff + kz;
    flat_offsets(g, &fr, off);
    flat_pixels(g, &fr, qoff);
    for (int64_t o = 0; o < g->o; o++)
        for (int r = 0; r < g->kw; r++) {
            zaoff[o * g->kw + r] = o * f.k + r;                       /* W[o, c, p, r] from row (c, p) */
            zboff[o * g->kw + r] = o * ldz - (int64_t)r * g->dw;      /* dyb[o, s - r dw] */
        }
    for (int64_t c = 0; c < g->c; c++)
        for (int p = 0; p < g->kh; p++) zcoff[c * g->kh + p] = c * f.plane + (int64_t)p * g->dh * f.wp;
    const int64_t dyb0 = round_up(lead, NN_NR); /* row o of dy starts at dyb + dyb0 + o ldz */
#pragma omp parallel num_threads(threads)
    {
        float *xp = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *dyb = xp + dyb_at, *dyt = xp + dyt_at, *dxp = xp + dxp_at, *dyt8 = xp + dyt8_at, *dxt8 = xp + dxt8_at;
        float *acc = xp + acc_at;
        double *dbs = (double *)(xp + db_at);
        memset(xp, 0, acc_at * sizeof *xp);
        if (dw) memset(acc, 0, dw_f * sizeof *acc);
        if (db) memset(dbs, 0, (size_t)g->o * sizeof *dbs);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g->n; n++) {
            const float *gy = dy + n * g->o * ohw;
            if (db)
                for (int64_t o = 0; o < g->o; o++) dbs[o] += sum_row(gy + o * ohw, ohw);
            if (dyb_f)
                for (int64_t o = 0; o < g->o; o++)
                    for (int64_t i = 0; i < g->oh; i++)
                        copy_row(dyb + dyb0 + o * ldz + i * f.wp, gy + o * ohw + i * g->ow, g->ow);
            if (dw) {
                const float *xs = x + n * chw;
                if (!fr.direct) {
                    flat_pad(g, &f, xs, xp);
                    xs = xp;
                }
                if (ovec) {
                    transpose(gy, g->o, ohw, ohw, dyt, f.o16);
                    ovec_wgrad_acc(ohw, qoff, f.k, off, xs, dyt, f.o16, acc);
                } else {
                    gemm_nt_acc(g->o, f.k, f.n, dyb + dyb0, ldz, xs, off, acc, f.k);
                }
            }
            if (dx && !nvec) {
                memset(dxp, 0, dxp_f * sizeof *dxp);
                gemm_nn_scatter_add(mz, nz16, kz, w, g->kw, zaoff, dyb + dyb0, zboff, dxp, zcoff);
                float *dxn = dx + n * chw;
                for (int64_t c = 0; c < g->c; c++)
                    for (int64_t i = 0; i < g->h; i++)
                        copy_row(dxn + (c * g->h + i) * g->w, dxp + c * f.plane + (i + g->ph) * f.wp + g->pw, g->w);
            }
        }
        if (nvec) {
#pragma omp for schedule(static)
            for (int64_t n0 = 0; n0 < g->n; n0 += 8) {
                const int64_t cnt = DC_MIN(8, g->n - n0);
                for (int64_t o = 0; o < g->o; o++)
                    for (int64_t i = 0; i < g->oh; i++)
                        transpose(dy + (n0 * g->o + o) * ohw + i * g->ow, cnt, g->ow, g->o * ohw,
                                  dyt8 + ((o * g->oh + i) * dyw + g->dw) * 8, 8);
                nvec_dgrad(g, wt, dyt8, dyw, dxt8);
                transpose(dxt8, chw, cnt, 8, dx + n0 * chw, chw);
            }
        }
        if (db) {
#pragma omp for schedule(static)
            for (int64_t o = 0; o < g->o; o++) {
                double s = 0;
                for (int u = 0; u < threads; u++) s += ((const double *)(scratch + (size_t)u * per_thread + db_at))[o];
                db[o] = (float)s;
            }
        }
        if (dw) {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < wsize; i++) {
                /* element (o, k) of dw; the o-vectorised sums hold it at (k, o) */
                size_t j = ovec ? (size_t)((i % f.k) * f.o16 + i / f.k) : (size_t)i;
                float s = 0.0f;
                for (int u = 0; u < threads; u++) s += scratch[(size_t)u * per_thread + acc_at + j];
                dw[i] = s;
            }
        }
    }
    be->scratch_free(scratch, bytes);
    return true;
}
