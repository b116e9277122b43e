/* cpu/conv_winograd.c: 3x3 convolutions with stride 1 or 2 by Winograd-style minimal
 * filtering (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): the
 * forward pass, the input gradient and the weight gradient.
 *
 * Stride 1, F(2x2, 3x3). Each 2x2 block ("tile") of the output depends on a 4x4 patch d of
 * the input. With
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0   |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |        | 0    0    1   |
 *
 * the tile is  Y = A^T [ sum_c (G g_oc G^T) (.) (B^T d_c B) ] A  ((.) elementwise), so with
 * U_xi[o, c] = (G g_oc G^T)_xi and V_xi[c, t] = (B^T d_ct B)_xi for the 16 positions xi of
 * the 4x4 transforms, the channel sums are 16 independent GEMMs
 *
 *   M_xi [o, t] = U_xi [o, c] V_xi [c, t]
 *
 * costing 16 c o multiply-adds per tile against 36 c o for the direct 2x2 outputs (2.25x
 * less), while the transforms touch each input and output value a few times (about 4x the
 * activation, against 9x for the im2col of a 3x3 kernel). The constants are 0, +-1 and
 * +-1/2, so rounding stays close to the direct sum.
 *
 * Stride 2. A 2x2 output tile reads a 5x5 patch (patches 4 apart). In one dimension,
 * y0 = w0 x0 + w1 x1 + w2 x2 and y1 = w0 x2 + w1 x3 + w2 x4: the even taps are F(2, 2) on
 * x0, x2, x4 (3 products) and the odd tap is plain (2 products), so with
 *
 *   B^T = | 1  0 -1  0  0 |    G = | 1 0 0 |    A^T = | 1 1 0 1 0 |
 *         | 0  0  1  0  0 |        | 1 0 1 |          | 0 1 1 0 1 |
 *         | 0  0 -1  0  1 |        | 0 0 1 |
 *         | 0  1  0  0  0 |        | 0 1 0 |
 *         | 0  0  0  1  0 |        | 0 1 0 |
 *
 * the same formula holds with 5x5 transforms: 25 GEMMs, 25 c o multiply-adds per tile
 * against 36 (1.44x less), all constants 0 and +-1.
 *
 * Gradients. For stride 1 the input gradient is the stride-1 convolution of dy with the
 * kernel flipped and its channel axes swapped, padding 2 - p: the forward routine with other
 * weights. For stride 2 it is the adjoint of the algorithm: dy tiles transformed by A,
 * the GEMMs with U^T, then B (.) B^T scattered back onto the (overlapping) patches. The
 * weight gradient is the same trilinear form with output and filter exchanged:
 *   dW_oc = G^T [ sum_t (A e_ot A^T) (.) (B^T d_ct B) ] G      (e = the dy tile)
 * i.e. 16 (25) GEMMs reducing over tiles, then one small transform per (o, c).
 *
 * The batch is cut into chunks of whole images whose transformed buffers stay within the
 * outer caches; chunks run in parallel with single-threaded GEMMs, as in conv.c. */
#include <omp.h>

#include "../../core/internal.h"
#include "conv_internal.h"

/* (C + O) x tiles per chunk: the chunk's V and M take nxi x this x 4 bytes (4-6 MiB) */
#define WINO_CHUNK_FLOATS (1 << 16)
/* tiles per GEMM below which a chunk takes more images */
#define WINO_MIN_TILES 128

int dc__conv_path = 0;

static bool shape_ok(const dc_conv2d_geom *g)
{
    if (dc__conv_path == 1) return false;
    /* With fewer than 48 input channels the transforms cost more than the products save:
     * ResNet-20 (16 and 32 channels) trains 20% faster on 28x28 images through the direct
     * kernels (conv_small.c) and im2col. dc__conv_path = 2 (tests) lifts this bound so the
     * Winograd code is still checked on small shapes. */
    if (g->c < 48 && dc__conv_path != 2) return false;
    /* stride 2 saves less (1.44x) against costlier transforms: measured, its forward pays
     * from 8x8 outputs (16 tiles per image) up, its gradients from 16x16 (see below) */
    bool s1 = g->sh == 1 && g->sw == 1 && g->ph <= 2 && g->pw <= 2;
    bool s2 = g->sh == 2 && g->sw == 2 && ((g->oh + 1) / 2) * ((g->ow + 1) / 2) >= 16;
    return g->kh == 3 && g->kw == 3 && (s1 || s2) && g->dh == 1 && g->dw == 1 && g->groups == 1 && g->c >= 16 &&
           g->o >= 16 && g->oh >= 2 && g->ow >= 2;
}

bool dc__conv_winograd_ok(const dc_conv2d_geom *g)
{
    /* the weight transform (per call) must be paid for by enough tiles: 64 per call is
     * where it breaks even against im2col + GEMM (a 4x4 layer at batch 16) */
    return shape_ok(g) && g->n * ((g->oh + 1) / 2) * ((g->ow + 1) / 2) >= 64;
}

bool dc__conv_winograd_wgrad_ok(const dc_conv2d_geom *g)
{
    /* with fewer than 16 tiles per image (4x4 outputs) the per-chunk GEMMs are too short
     * against their nxi o c accumulators */
    int64_t tiles = ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
    return shape_ok(g) && tiles >= (g->sh == 2 ? 64 : 16); /* stride 2: see shape_ok */
}

/* ---------------------------------------------------------------------------------------
 * The GEMMs. With K = c as short as 64, OpenBLAS's per-call costs (packing both operands,
 * a separate pass for beta = 0) are a third of the time, so the products run on a kernel
 * of their own: U is packed once per call into blocks of 6 rows ([xi][block][c][6]), and
 * V is read in place, 16 columns x up to WINO_KB rows at a time (16 KiB: L1), with a 6 x 16
 * register block. ld is a multiple of 16, so whole panels are always read and written
 * (the columns past the chunk's tiles are junk that nothing reads back).
 * ------------------------------------------------------------------------------------- */

#define WINO_MR 6
#define WINO_KB 256

static int64_t rup(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* Strides between the transformed matrices, and row strides inside them, are kept off
 * powers of two: 16 streams 2^k bytes apart all land in the same cache sets (a 512 x 512
 * layer's U matrices are exactly 1 MiB apart), and the L1 then holds a fraction of what the
 * kernels expect. An odd multiple of 64 bytes spreads them over every set. */
static int64_t skew(int64_t n)
{
    n = rup(n, 16);
    return (n / 16) % 2 ? n : n + 16;
}

/* up [nxi][ps] with ps = skew(ceil(no / 6) 6 nc), each [ceil(no / 6)][nc][6] = G g G^T for
 * the 3x3 kernels g read at w + o so + c sc (row stride 3), optionally flipped in both
 * spatial dims; zero rows past no. The kernels are first gathered into nine arrays in the
 * packed order (g9 [9][ps]); the transform then runs on 8 kernels at a time in vector
 * registers, written once per stride for a type V (8 lanes, or 1 for the tail). */
#define DEFINE_WT_TILES(NAME, V, LD, ST, S2)                                                   \
    static inline void NAME(const float *g9, float *up, int64_t ps, int64_t j)                 \
    {                                                                                          \
        enum { T = (S2) ? 5 : 4 };                                                             \
        V gk[3][3], t[T][3];                                                                   \
        for (int ab = 0; ab < 9; ab++) gk[ab / 3][ab % 3] = LD(g9 + ab * ps + j);              \
        for (int b = 0; b < 3; b++) { /* t = G g, column by column */                          \
            if (S2) {                                                                          \
                t[0][b] = gk[0][b], t[1][b] = gk[0][b] + gk[2][b], t[2][b] = gk[2][b];         \
                t[3 % T][b] = gk[1][b], t[4 % T][b] = gk[1][b];                                \
            } else {                                                                           \
                t[0][b] = gk[0][b], t[1][b] = 0.5f * (gk[0][b] + gk[1][b] + gk[2][b]);         \
                t[2][b] = 0.5f * (gk[0][b] - gk[1][b] + gk[2][b]), t[3][b] = gk[2][b];         \
            }                                                                                  \
        }                                                                                      \
        for (int a = 0; a < T; a++) { /* U = t G^T, row by row */                              \
            float *u = up + a * T * ps + j;                                                    \
            if (S2) {                                                                          \
                ST(u, t[a][0]), ST(u + ps, t[a][0] + t[a][2]), ST(u + 2 * ps, t[a][2]);        \
                ST(u + 3 * ps, t[a][1]), ST(u + 4 * ps, t[a][1]);                              \
            } else {                                                                           \
                ST(u, t[a][0]), ST(u + ps, 0.5f * (t[a][0] + t[a][1] + t[a][2]));              \
                ST(u + 2 * ps, 0.5f * (t[a][0] - t[a][1] + t[a][2])), ST(u + 3 * ps, t[a][2]); \
            }                                                                                  \
        }                                                                                      \
    }
static inline float wld1(const float *p) { return *p; }
static inline void wst1(float *p, float v) { *p = v; }
DEFINE_WT_TILES(wt_s1_8, dc_v8, dc_load8, dc_store8, 0)
DEFINE_WT_TILES(wt_s1_1, float, wld1, wst1, 0)
DEFINE_WT_TILES(wt_s2_8, dc_v8, dc_load8, dc_store8, 1)
DEFINE_WT_TILES(wt_s2_1, float, wld1, wst1, 1)

static void weight_transform(bool s2, const float *w, int64_t no, int64_t nc, int64_t so, int64_t sc, bool flip,
                             float *up, float *g9)
{
    const int64_t nob = rup(no, WINO_MR) / WINO_MR, np = nob * WINO_MR * nc, ps = skew(np);
#pragma omp parallel for schedule(static) if (np > 16384)
    for (int64_t j = 0; j < np; j++) {
        int64_t r = j % WINO_MR, c = (j / WINO_MR) % nc, o = (j / WINO_MR / nc) * WINO_MR + r;
        const float *src = w + o * so + c * sc;
        for (int ab = 0; ab < 9; ab++) g9[ab * ps + j] = o < no ? src[flip ? 8 - ab : ab] : 0.0f;
    }
#pragma omp parallel for schedule(static) if (np > 16384)
    for (int64_t j0 = 0; j0 < np; j0 += 256) {
        const int64_t j1 = DC_MIN(np, j0 + 256);
        int64_t j = j0;
        if (s2) {
            for (; j + 8 <= j1; j += 8) wt_s2_8(g9, up, ps, j);
            for (; j < j1; j++) wt_s2_1(g9, up, ps, j);
        } else {
            for (; j + 8 <= j1; j += 8) wt_s1_8(g9, up, ps, j);
            for (; j < j1; j++) wt_s1_1(g9, up, ps, j);
        }
    }
}

/* m [no, ld] = U [no, nc] v [nc, ld] for columns [0, ncols), ncols a multiple of the panel
 * width NR. Blocked as a GEMM must be once U outgrows L2 (512 x 512 is 1 MiB): a block of
 * WINO_MB rows of U by WINO_KB columns (96 KiB) stays in L2 while every NR-column panel of v
 * passes it, and each panel (WINO_KB x NR floats) stays in L1 while the block's 6-row groups
 * use it. The register block is 6 rows x 2 vectors.
 *
 * Instantiated for 8-float vectors (AVX2, NR 16) and 16-float vectors (NR 32): once with
 * AVX-512 code generation, picked at run time on CPUs that have it, and once with the
 * library's default flags, which tests force on any CPU to check the wide path's logic. */
#define WINO_MB 96

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

/* broadcasts written as initialisers: (V){0} + s would cost an add per broadcast, which
 * the compiler may not drop (0 + -0 is +0) */
#define SPLAT8(s) {s, s, s, s, s, s, s, s}
#define SPLAT16(s) {s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}

#define DEFINE_WGEMM(NAME, V, VU, VW, SPLAT, ATTR)                                                    \
    ATTR static void NAME(int64_t no, int64_t nc, int64_t ncols, const float *up, const float *v, int64_t ld, \
                          float *m)                                                            \
    {                                                                                          \
        const int64_t nob = rup(no, WINO_MR) / WINO_MR, obs = WINO_MB / WINO_MR;               \
        for (int64_t k0 = 0; k0 < nc; k0 += WINO_KB) {                                         \
            const int64_t kn = DC_MIN(WINO_KB, nc - k0);                                       \
            for (int64_t ob0 = 0; ob0 < nob; ob0 += obs) {                                     \
                const int64_t ob1 = DC_MIN(nob, ob0 + obs);                                    \
                for (int64_t n0 = 0; n0 < ncols; n0 += 2 * (VW)) {                             \
                    const float *vb = v + k0 * ld + n0;                                        \
                    for (int64_t ob = ob0; ob < ob1; ob++) {                                   \
                        const float *a = up + (ob * nc + k0) * WINO_MR;                        \
                        const int64_t rows = DC_MIN(WINO_MR, no - ob * WINO_MR);               \
                        float *c = m + ob * WINO_MR * ld + n0;                                 \
                        V acc[WINO_MR][2];                                                     \
                        for (int r = 0; r < WINO_MR; r++) {                                    \
                            if (k0 > 0 && r < rows) {                                          \
                                acc[r][0] = *(const VU *)(c + r * ld);                         \
                                acc[r][1] = *(const VU *)(c + r * ld + (VW));                  \
                            } else {                                                           \
                                acc[r][0] = acc[r][1] = (V){0};                                \
                            }                                                                  \
                        }                                                                      \
                        for (int64_t p = 0; p < kn; p++) {                                     \
                            V b0 = *(const VU *)(vb + p * ld), b1 = *(const VU *)(vb + p * ld + (VW)); \
                            for (int r = 0; r < WINO_MR; r++) {                                \
                                const float sv = a[p * WINO_MR + r];                           \
                                V s = SPLAT(sv);                                               \
                                acc[r][0] += s * b0;                                           \
                                acc[r][1] += s * b1;                                           \
                            }                                                                  \
                        }                                                                      \
                        for (int r = 0; r < rows; r++) {                                       \
                            *(VU *)(c + r * ld) = acc[r][0];                                   \
                            *(VU *)(c + r * ld + (VW)) = acc[r][1];                            \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }
DEFINE_WGEMM(wgemm8, dc_v8, dc_v8u, 8, SPLAT8, )
DEFINE_WGEMM(wgemm16, v16, v16u, 16, SPLAT16, )
#if defined(__x86_64__) && defined(__GNUC__)
DEFINE_WGEMM(wgemm16_avx512, v16, v16u, 16, SPLAT16, __attribute__((target("avx512f"))))
#define HAVE_WGEMM_AVX512 1
#endif

int dc__conv_wide = -1;

typedef void (*wgemm_fn)(int64_t no, int64_t nc, int64_t ncols, const float *up, const float *v, int64_t ld,
                         float *m);

/* the GEMM kernel for this CPU and its panel width */
static wgemm_fn pick_wgemm(int64_t *nr)
{
    if (dc__conv_wide == 0) {
        *nr = 16;
        return wgemm8;
    }
    if (dc__conv_wide == 1) {
        *nr = 32;
        return wgemm16;
    }
#ifdef HAVE_WGEMM_AVX512
    if (__builtin_cpu_supports("avx512f")) {
        *nr = 32;
        return wgemm16_avx512;
    }
#endif
    *nr = 16;
    return wgemm8;
}

/* A transform pass: source planes [c, h, w] are cut into th x tw tiles (each the 2x2
 * output block of one GEMM column) and destination planes [o, oh, ow] are rebuilt from them.
 * ph / pw is the convolution's padding. */
typedef struct wino {
    bool s2;              /* stride 2: 5x5 transforms (else stride 1, 4x4) */
    int nxi;              /* 16 or 25 transformed positions */
    int64_t n, c, h, w;   /* source */
    int64_t o, oh, ow;    /* destination */
    int ph, pw;
    int64_t th, tw, tpi;  /* tiles down, across, per image */
    /* the chunk being transformed: tile rows [a0, a1) of each image, whose columns sit
     * cpi = (a1 - a0) tw apart (the whole image, a0 = 0 and a1 = th, unless images are split) */
    int64_t a0, a1, cpi;
} wino;

/* scratch floats a pass needs for its row buffers */
static int64_t rows_floats(const wino *p)
{
    if (!p->s2) return rup(10 * (p->tw + 1), 16);
    return rup(24 * (p->tw + 1) + 8, 16); /* input: 5 x 4 phase rows + a padded row; dgrad: 5 x 4 */
}

/* The transforms below work on 8 tiles at a time in vector registers, with a scalar tail:
 * written element-wise on arrays the compiler cannot prove disjoint, they would stay scalar
 * and cost as much as the GEMMs. Each per-tile step is defined once for a type V with
 * loader LD and storer ST, and instantiated for dc_v8 (8 tiles) and float (1 tile). */
static inline float ld1(const float *p) { return *p; }
static inline void st1(float *p, float v) { *p = v; }

/* input: tile j's rows k = 0..3 are ev[k][j], od[k][j], ev[k][j+1], od[k][j+1] (row stride
 * tw1); V = B^T d B goes to dst + xi xs + j */
#define DEFINE_INPUT_TILES(NAME, V, LD, ST)                                                    \
    static inline void NAME(const float *ev, const float *od, int64_t tw1, float *dst, int64_t xs,  \
                            int64_t j)                                                         \
    {                                                                                          \
        V t[4][4];                                                                             \
        for (int k = 0; k < 4; k++) { /* row k times B */                                      \
            V d0 = LD(ev + k * tw1 + j), d1 = LD(od + k * tw1 + j);                            \
            V d2 = LD(ev + k * tw1 + j + 1), d3 = LD(od + k * tw1 + j + 1);                    \
            t[k][0] = d0 - d2;                                                                 \
            t[k][1] = d1 + d2;                                                                 \
            t[k][2] = d2 - d1;                                                                 \
            t[k][3] = d1 - d3;                                                                 \
        }                                                                                      \
        for (int b = 0; b < 4; b++) { /* B^T times the columns */                              \
            ST(dst + (0 * 4 + b) * xs + j, t[0][b] - t[2][b]);                                 \
            ST(dst + (1 * 4 + b) * xs + j, t[1][b] + t[2][b]);                                 \
            ST(dst + (2 * 4 + b) * xs + j, t[2][b] - t[1][b]);                                 \
            ST(dst + (3 * 4 + b) * xs + j, t[1][b] - t[3][b]);                                 \
        }                                                                                      \
    }
DEFINE_INPUT_TILES(input_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_INPUT_TILES(input_tiles1, float, ld1, st1)

/* output: M at src + xi xs + j; the two output rows' even columns go to qe[0 or tw + j],
 * odd columns to qo[...] (bias added) */
#define DEFINE_OUTPUT_TILES(NAME, V, LD, ST)                                                   \
    static inline void NAME(const float *src, int64_t xs, float *qe, float *qo, int64_t tw, float bv, \
                            int64_t j)                                                         \
    {                                                                                          \
        V t[2][4];                                                                             \
        for (int b = 0; b < 4; b++) { /* A^T M */                                              \
            V m0 = LD(src + (0 * 4 + b) * xs + j), m1 = LD(src + (1 * 4 + b) * xs + j);        \
            V m2 = LD(src + (2 * 4 + b) * xs + j), m3 = LD(src + (3 * 4 + b) * xs + j);        \
            t[0][b] = m0 + m1 + m2;                                                            \
            t[1][b] = m1 - m2 - m3;                                                            \
        }                                                                                      \
        for (int r = 0; r < 2; r++) { /* times A */                                            \
            ST(qe + r * tw + j, t[r][0] + t[r][1] + t[r][2] + bv);                             \
            ST(qo + r * tw + j, t[r][1] - t[r][2] - t[r][3] + bv);                             \
        }                                                                                      \
    }
DEFINE_OUTPUT_TILES(output_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_OUTPUT_TILES(output_tiles1, float, ld1, st1)

/* dy: the 2x2 block e of tile j is (ev0[j], od0[j]; ev1[j], od1[j]); E = A e A^T goes to
 * dst + xi xs + j. A e has rows e0, e0 + e1, e0 - e1, -e1 (each an (even, odd) pair (p, q)),
 * and each row times A^T is (p, p + q, p - q, -q). */
#define DEFINE_DY_TILES(NAME, V, LD, ST)                                                       \
    static inline void NAME(const float *ev0, const float *od0, const float *ev1, const float *od1, \
                            float *dst, int64_t xs, int64_t j)                                 \
    {                                                                                          \
        V e0 = LD(ev0 + j), e1 = LD(od0 + j), f0 = LD(ev1 + j), f1 = LD(od1 + j);              \
        V pr[4] = {e0, e0 + f0, e0 - f0, -f0}, qr[4] = {e1, e1 + f1, e1 - f1, -f1};            \
        for (int u = 0; u < 4; u++) {                                                          \
            ST(dst + (u * 4 + 0) * xs + j, pr[u]);                                             \
            ST(dst + (u * 4 + 1) * xs + j, pr[u] + qr[u]);                                     \
            ST(dst + (u * 4 + 2) * xs + j, pr[u] - qr[u]);                                     \
            ST(dst + (u * 4 + 3) * xs + j, -qr[u]);                                            \
        }                                                                                      \
    }
DEFINE_DY_TILES(dy_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_DY_TILES(dy_tiles1, float, ld1, st1)

/* V [16, c, ld] (matrices xs apart) at columns (image, tile) for nb images of x: d = the
 * 4x4 patch at (2 i - ph, 2 j - pw), zero outside the input; V = B^T d B. For each tile row,
 * the four input rows are built zero-padded and split into even and odd columns (ev, od):
 * tile j reads columns 2j .. 2j+3 = ev[j], od[j], ev[j+1], od[j+1]. */
/* stride 2, input: tile j's patch row k has columns 4j .. 4j+4 = ph4[k][0..3][j], ph4[k][0][j+1]
 * (phase arrays of stride tw1, rows of 4 tw1); V = B^T d B goes to dst + xi xs + j */
#define DEFINE_INPUT2_TILES(NAME, V, LD, ST)                                                   \
    static inline void NAME(const float *ph4, int64_t tw1, float *dst, int64_t xs, int64_t j)  \
    {                                                                                          \
        V t[5][5];                                                                             \
        for (int k = 0; k < 5; k++) { /* row k times B */                                      \
            const float *r = ph4 + k * 4 * tw1;                                                \
            V x0 = LD(r + j), x1 = LD(r + tw1 + j), x2 = LD(r + 2 * tw1 + j);                  \
            V x3 = LD(r + 3 * tw1 + j), x4 = LD(r + j + 1);                                    \
            t[k][0] = x0 - x2;                                                                 \
            t[k][1] = x2;                                                                      \
            t[k][2] = x4 - x2;                                                                 \
            t[k][3] = x1;                                                                      \
            t[k][4] = x3;                                                                      \
        }                                                                                      \
        for (int b = 0; b < 5; b++) { /* B^T times the columns */                              \
            ST(dst + (0 * 5 + b) * xs + j, t[0][b] - t[2][b]);                                 \
            ST(dst + (1 * 5 + b) * xs + j, t[2][b]);                                           \
            ST(dst + (2 * 5 + b) * xs + j, t[4][b] - t[2][b]);                                 \
            ST(dst + (3 * 5 + b) * xs + j, t[1][b]);                                           \
            ST(dst + (4 * 5 + b) * xs + j, t[3][b]);                                           \
        }                                                                                      \
    }
DEFINE_INPUT2_TILES(input2_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_INPUT2_TILES(input2_tiles1, float, ld1, st1)

/* stride 2, output: A^T M A with A^T = (1 1 0 1 0; 0 1 1 0 1) */
#define DEFINE_OUTPUT2_TILES(NAME, V, LD, ST)                                                  \
    static inline void NAME(const float *src, int64_t xs, float *qe, float *qo, int64_t tw, float bv, \
                            int64_t j)                                                         \
    {                                                                                          \
        V t[2][5];                                                                             \
        for (int b = 0; b < 5; b++) {                                                          \
            V m0 = LD(src + (0 * 5 + b) * xs + j), m1 = LD(src + (1 * 5 + b) * xs + j);        \
            V m2 = LD(src + (2 * 5 + b) * xs + j), m3 = LD(src + (3 * 5 + b) * xs + j);        \
            V m4 = LD(src + (4 * 5 + b) * xs + j);                                             \
            t[0][b] = m0 + m1 + m3;                                                            \
            t[1][b] = m1 + m2 + m4;                                                            \
        }                                                                                      \
        for (int r = 0; r < 2; r++) {                                                          \
            ST(qe + r * tw + j, t[r][0] + t[r][1] + t[r][3] + bv);                             \
            ST(qo + r * tw + j, t[r][1] + t[r][2] + t[r][4] + bv);                             \
        }                                                                                      \
    }
DEFINE_OUTPUT2_TILES(output2_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_OUTPUT2_TILES(output2_tiles1, float, ld1, st1)

/* stride 2, dy: E = A e A^T with A = (1 0; 1 1; 0 1; 1 0; 0 1) */
#define DEFINE_DY2_TILES(NAME, V, LD, ST)                                                      \
    static inline void NAME(const float *ev0, const float *od0, const float *ev1, const float *od1, \
                            float *dst, int64_t xs, int64_t j)                                 \
    {                                                                                          \
        V e0 = LD(ev0 + j), e1 = LD(od0 + j), f0 = LD(ev1 + j), f1 = LD(od1 + j);              \
        V pr[5] = {e0, e0 + f0, f0, e0, f0}, qr[5] = {e1, e1 + f1, f1, e1, f1};                \
        for (int u = 0; u < 5; u++) {                                                          \
            ST(dst + (u * 5 + 0) * xs + j, pr[u]);                                             \
            ST(dst + (u * 5 + 1) * xs + j, pr[u] + qr[u]);                                     \
            ST(dst + (u * 5 + 2) * xs + j, qr[u]);                                             \
            ST(dst + (u * 5 + 3) * xs + j, pr[u]);                                             \
            ST(dst + (u * 5 + 4) * xs + j, qr[u]);                                             \
        }                                                                                      \
    }
DEFINE_DY2_TILES(dy2_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_DY2_TILES(dy2_tiles1, float, ld1, st1)

/* stride 2, input gradient: the 5x5 patch contribution B Q B^T, with B (5x5) the transpose
 * of B^T: x0 = m0, x1 = m3, x2 = m1 - m0 - m2, x3 = m4, x4 = m2, added to the phase rows
 * z [5 rows][4 phases][tw1]: patch column 4j + b is phase b at j, and column 4j + 4 is
 * phase 0 at j + 1 (where the next tile's column 0 also lands). */
#define DEFINE_PATCH2_TILES(NAME, V, LD, ST)                                                   \
    static inline void NAME(const float *src, int64_t xs, float *z, int64_t tw1, int64_t j)    \
    {                                                                                          \
        V s[5][5];                                                                             \
        for (int b = 0; b < 5; b++) {                                                          \
            V m0 = LD(src + (0 * 5 + b) * xs + j), m1 = LD(src + (1 * 5 + b) * xs + j);        \
            V m2 = LD(src + (2 * 5 + b) * xs + j), m3 = LD(src + (3 * 5 + b) * xs + j);        \
            V m4 = LD(src + (4 * 5 + b) * xs + j);                                             \
            s[0][b] = m0;                                                                      \
            s[1][b] = m3;                                                                      \
            s[2][b] = m1 - m0 - m2;                                                            \
            s[3][b] = m4;                                                                      \
            s[4][b] = m2;                                                                      \
        }                                                                                      \
        for (int k = 0; k < 5; k++) {                                                          \
            float *r = z + k * 4 * tw1;                                                        \
            ST(r + j, LD(r + j) + s[k][0]);                                                    \
            ST(r + tw1 + j, LD(r + tw1 + j) + s[k][3]);                                        \
            ST(r + 2 * tw1 + j, LD(r + 2 * tw1 + j) + (s[k][1] - s[k][0] - s[k][2]));          \
            ST(r + 3 * tw1 + j, LD(r + 3 * tw1 + j) + s[k][4]);                                \
            ST(r + j + 1, LD(r + j + 1) + s[k][2]);                                            \
        }                                                                                      \
    }
DEFINE_PATCH2_TILES(patch2_tiles8, dc_v8, dc_load8, dc_store8)
DEFINE_PATCH2_TILES(patch2_tiles1, float, ld1, st1)

static void input_transform(const wino *p, const float *x, int64_t nb, float *v, int64_t ld, int64_t xs,
                            float *buf)
{
    const int64_t tw = p->tw, tw1 = tw + 1, wrow = 2 * tw1;
    const int64_t lo = p->pw, hi = DC_MIN(wrow, p->w + p->pw); /* padded columns holding input */
    float *ev = buf, *od = ev + 4 * tw1, *r = od + 4 * tw1;
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t c = 0; c < p->c; c++) {
            const float *plane = x + (i * p->c + c) * p->h * p->w;
            for (int64_t a = p->a0; a < p->a1; a++) {
                for (int k = 0; k < 4; k++) {
                    int64_t ih = 2 * a - p->ph + k;
                    memset(r, 0, (size_t)wrow * sizeof *r);
                    if (ih >= 0 && ih < p->h && hi > lo)
                        memcpy(r + lo, plane + ih * p->w, (size_t)(hi - lo) * sizeof *r);
                    float *e = ev + k * tw1, *d = od + k * tw1;
                    for (int64_t j = 0; j < tw1; j++) {
                        e[j] = r[2 * j];
                        d[j] = r[2 * j + 1];
                    }
                }
                float *dst = v + c * ld + i * p->cpi + (a - p->a0) * tw;
                int64_t j = 0;
                for (; j + 8 <= tw; j += 8) input_tiles8(ev, od, tw1, dst, xs, j);
                for (; j < tw; j++) input_tiles1(ev, od, tw1, dst, xs, j);
            }
        }
    }
}

/* Writes the two output rows 2a, 2a + 1 of a tile row from their even / odd columns. */
static void interleave_rows(const wino *p, float *plane, int64_t a, const float *qe, const float *qo)
{
    const int64_t tw = p->tw;
    for (int rr = 0; rr < 2 && 2 * a + rr < p->oh; rr++) {
        float *row = plane + (2 * a + rr) * p->ow;
        const float *e = qe + rr * tw, *d = qo + rr * tw;
        int64_t full = p->ow / 2;
        for (int64_t j = 0; j < full; j++) {
            row[2 * j] = e[j];
            row[2 * j + 1] = d[j];
        }
        if (p->ow & 1) row[2 * full] = e[full];
    }
}

/* y (nb images) = A^T M A per tile, plus bias, clipped to the output. */
static void output_transform(const wino *p, const float *m, int64_t ld, int64_t xs, int64_t nb, const float *bias,
                             float *y, float *buf)
{
    const int64_t tw = p->tw; /* M [16, o, ld], matrices xs apart */
    float *qe = buf, *qo = qe + 2 * tw; /* the even / odd output columns of two rows */
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t o = 0; o < p->o; o++) {
            float *plane = y + (i * p->o + o) * p->oh * p->ow;
            const float bv = bias ? bias[o] : 0.0f;
            for (int64_t a = p->a0; a < p->a1; a++) {
                const float *src = m + o * ld + i * p->cpi + (a - p->a0) * tw;
                int64_t j = 0;
                for (; j + 8 <= tw; j += 8) output_tiles8(src, xs, qe, qo, tw, bv, j);
                for (; j < tw; j++) output_tiles1(src, xs, qe, qo, tw, bv, j);
                interleave_rows(p, plane, a, qe, qo);
            }
        }
    }
}

/* q[ph tw1 + j] = r[4 j + ph] for the four phases ph of a row of 4 tw1 floats; 8 j at a
 * time with two rounds of shuffles */
static void split4(const float *r, int64_t tw1, float *q)
{
    int64_t j = 0;
    for (; j + 8 <= tw1; j += 8) {
        dc_v8 a = dc_load8(r + 4 * j), b = dc_load8(r + 4 * j + 8);
        dc_v8 c = dc_load8(r + 4 * j + 16), d = dc_load8(r + 4 * j + 24);
        dc_v8 ab0 = __builtin_shufflevector(a, b, 0, 4, 8, 12, 1, 5, 9, 13);
        dc_v8 ab1 = __builtin_shufflevector(a, b, 2, 6, 10, 14, 3, 7, 11, 15);
        dc_v8 cd0 = __builtin_shufflevector(c, d, 0, 4, 8, 12, 1, 5, 9, 13);
        dc_v8 cd1 = __builtin_shufflevector(c, d, 2, 6, 10, 14, 3, 7, 11, 15);
        dc_store8(q + j, __builtin_shufflevector(ab0, cd0, 0, 1, 2, 3, 8, 9, 10, 11));
        dc_store8(q + tw1 + j, __builtin_shufflevector(ab0, cd0, 4, 5, 6, 7, 12, 13, 14, 15));
        dc_store8(q + 2 * tw1 + j, __builtin_shufflevector(ab1, cd1, 0, 1, 2, 3, 8, 9, 10, 11));
        dc_store8(q + 3 * tw1 + j, __builtin_shufflevector(ab1, cd1, 4, 5, 6, 7, 12, 13, 14, 15));
    }
    for (; j < tw1; j++)
        for (int ph = 0; ph < 4; ph++) q[ph * tw1 + j] = r[4 * j + ph];
}

/* stride 2: V [25, c, ld] for nb images of x; the patch of tile (a, j) starts at
 * (4a - ph, 4j - pw). Each patch row is built zero-padded and split into its four column
 * phases, so that column 4j + r is phase r at j. */
static void input_transform_s2(const wino *p, const float *x, int64_t nb, float *v, int64_t ld, int64_t xs,
                               float *buf)
{
    const int64_t tw = p->tw, tw1 = tw + 1, wrow = 4 * tw1;
    const int64_t lo = p->pw, hi = DC_MIN(wrow, p->w + p->pw); /* padded columns holding input */
    float *ph4 = buf, *r = ph4 + 20 * tw1;
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t c = 0; c < p->c; c++) {
            const float *plane = x + (i * p->c + c) * p->h * p->w;
            for (int64_t a = p->a0; a < p->a1; a++) {
                for (int k = 0; k < 5; k++) {
                    int64_t ih = 4 * a - p->ph + k;
                    memset(r, 0, (size_t)wrow * sizeof *r);
                    if (ih >= 0 && ih < p->h && hi > lo)
                        memcpy(r + lo, plane + ih * p->w, (size_t)(hi - lo) * sizeof *r);
                    split4(r, tw1, ph4 + k * 4 * tw1);
                }
                float *dst = v + c * ld + i * p->cpi + (a - p->a0) * tw;
                int64_t j = 0;
                for (; j + 8 <= tw; j += 8) input2_tiles8(ph4, tw1, dst, xs, j);
                for (; j < tw; j++) input2_tiles1(ph4, tw1, dst, xs, j);
            }
        }
    }
}

/* stride 2: y (nb images) = A^T M A per tile, plus bias, clipped to the output */
static void output_transform_s2(const wino *p, const float *m, int64_t ld, int64_t xs, int64_t nb,
                                const float *bias, float *y, float *buf)
{
    const int64_t tw = p->tw;
    float *qe = buf, *qo = qe + 2 * tw;
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t o = 0; o < p->o; o++) {
            float *plane = y + (i * p->o + o) * p->oh * p->ow;
            const float bv = bias ? bias[o] : 0.0f;
            for (int64_t a = p->a0; a < p->a1; a++) {
                const float *src = m + o * ld + i * p->cpi + (a - p->a0) * tw;
                int64_t j = 0;
                for (; j + 8 <= tw; j += 8) output2_tiles8(src, xs, qe, qo, tw, bv, j);
                for (; j < tw; j++) output2_tiles1(src, xs, qe, qo, tw, bv, j);
                interleave_rows(p, plane, a, qe, qo);
            }
        }
    }
}

/* stride 2, input gradient: dx (nb images, o channels) = the sum over tiles of B Q B^T
 * placed at (4a - ph, 4j - pw). Tile row a covers padded rows 4a .. 4a+4 and shares the last
 * with tile row a + 1, so five phase rows are kept: after tile row a, rows 0-3 are complete
 * and go (cropped) to dx, and row 4 carries over as the next tile row's row 0. */
static void patch_transform_s2(const wino *p, const float *m, int64_t ld, int64_t xs, int64_t nb,
                               const float *bias, float *dx, float *buf)
{
    (void)bias;
    const int64_t tw = p->tw, tw1 = tw + 1, zr = 4 * tw1; /* floats per phase row */
    float *z = buf;
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t o = 0; o < p->o; o++) {
            float *dst = dx + (i * p->o + o) * p->oh * p->ow;
            memset(z, 0, (size_t)(5 * zr) * sizeof *z);
            for (int64_t a = 0; a <= p->th; a++) { /* whole images only (see dgrad_ok) */
                if (a < p->th) {
                    const float *src = m + o * ld + i * p->cpi + (a - p->a0) * tw;
                    int64_t j = 0;
                    for (; j + 8 <= tw; j += 8) patch2_tiles8(src, xs, z, tw1, j);
                    for (; j < tw; j++) patch2_tiles1(src, xs, z, tw1, j);
                }
                /* padded rows 4a .. 4a+3 are complete (after the last tile row, only 4a) */
                for (int k = 0; k < (a < p->th ? 4 : 1); k++) {
                    int64_t ih = 4 * a + k - p->ph;
                    if (ih < 0 || ih >= p->oh) continue;
                    const float *zk = z + k * zr;
                    float *row = dst + ih * p->ow;
                    for (int64_t iw = 0; iw < p->ow; iw++) {
                        int64_t pc = iw + p->pw; /* padded column: phase pc % 4 at pc / 4 */
                        row[iw] = pc < 4 * tw1 ? zk[(pc & 3) * tw1 + (pc >> 2)] : 0.0f;
                    }
                }
                memcpy(z, z + 4 * zr, (size_t)zr * sizeof *z);
                memset(z + zr, 0, (size_t)(4 * zr) * sizeof *z);
            }
            /* rows past the last tile's patch get nothing from it */
            for (int64_t ih = DC_MAX(0, 4 * p->th + 1 - p->ph); ih < p->oh; ih++)
                memset(dst + ih * p->ow, 0, (size_t)p->ow * sizeof *dst);
        }
    }
}

/* E [nxi, c, ld] (matrices xs apart) at columns (image, tile) for nb images of dy, the source
 * [c, h, w] of this pass: E = A e A^T for the 2x2 block e of each tile (zero past the edge). */
static void dy_transform(const wino *p, const float *dy, int64_t nb, float *e, int64_t ld, int64_t xs, float *buf)
{
    const int64_t tw = p->tw;
    float *ev0 = buf, *od0 = ev0 + tw, *ev1 = od0 + tw, *od1 = ev1 + tw; /* dy rows 2a, 2a + 1 split */
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t o = 0; o < p->c; o++) {
            const float *plane = dy + (i * p->c + o) * p->h * p->w;
            for (int64_t a = p->a0; a < p->a1; a++) {
                for (int k = 0; k < 2; k++) {
                    float *ev = k ? ev1 : ev0, *od = k ? od1 : od0;
                    int64_t row = 2 * a + k;
                    if (row >= p->h) {
                        memset(ev, 0, (size_t)tw * sizeof *ev);
                        memset(od, 0, (size_t)tw * sizeof *od);
                        continue;
                    }
                    const float *src = plane + row * p->w;
                    int64_t full = p->w / 2;
                    for (int64_t j = 0; j < full; j++) {
                        ev[j] = src[2 * j];
                        od[j] = src[2 * j + 1];
                    }
                    if (p->w & 1) {
                        ev[full] = src[2 * full];
                        od[full] = 0.0f;
                    }
                }
                float *dst = e + o * ld + i * p->cpi + (a - p->a0) * tw;
                int64_t j = 0;
                if (p->s2) {
                    for (; j + 8 <= tw; j += 8) dy2_tiles8(ev0, od0, ev1, od1, dst, xs, j);
                    for (; j < tw; j++) dy2_tiles1(ev0, od0, ev1, od1, dst, xs, j);
                } else {
                    for (; j + 8 <= tw; j += 8) dy_tiles8(ev0, od0, ev1, od1, dst, xs, j);
                    for (; j < tw; j++) dy_tiles1(ev0, od0, ev1, od1, dst, xs, j);
                }
            }
        }
    }
}

/* Chunks of whole images: enough tiles for an efficient GEMM, their transformed buffers
 * within the cache budget, and as many chunks as threads where the batch allows. An image
 * whose buffers alone would pass WINO_SPLIT_FLOATS (a 512x512 VAE layer: 2 GB) is cut into
 * blocks of tile rows instead, one per chunk. */
#define WINO_SPLIT_FLOATS (1 << 22)

typedef struct wino_plan {
    int64_t nb, nchunks;
    int64_t rows, nblk; /* tile rows per chunk and blocks per image (th and 1 unless split) */
    int threads;
} wino_plan;

static bool wino_split(const wino *p) { return (p->c + p->o) * p->tpi * p->nxi > WINO_SPLIT_FLOATS && p->th > 1; }

static wino_plan plan_chunks(const wino *p, int64_t min_tiles)
{
    wino_plan q;
    int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (wino_split(p)) {
        q.nb = 1;
        q.rows = DC_MAX(1, WINO_SPLIT_FLOATS / ((p->c + p->o) * p->tw * p->nxi));
        q.nblk = (p->th + q.rows - 1) / q.rows;
        q.nchunks = p->n * q.nblk;
        q.threads = (t > 1 && q.nchunks >= t) ? t : 1;
        return q;
    }
    q.rows = p->th;
    q.nblk = 1;
    int64_t nb = (min_tiles + p->tpi - 1) / p->tpi;
    while (nb > 1 && (p->c + p->o) * nb * p->tpi * p->nxi > 16 * WINO_CHUNK_FLOATS) nb--;
    if (nb > p->n) nb = p->n;
    int64_t nchunks = (p->n + nb - 1) / nb;
    if (t > 1 && nchunks >= t) {
        nchunks = (nchunks + t - 1) / t * t;
        nb = (p->n + nchunks - 1) / nchunks;
        nchunks = (p->n + nb - 1) / nb;
    } else if (t > 1 && p->n >= t) {
        nb = (p->n + t - 1) / t;
        nchunks = (p->n + nb - 1) / nb;
    }
    q.nb = nb;
    q.nchunks = nchunks;
    q.threads = (t > 1 && nchunks >= t) ? t : 1;
    return q;
}

/* chunk ci of the plan: images [*n0, *n0 + *cnt) and the pass restricted to its tile rows */
static wino chunk_pass(const wino *p, const wino_plan *q, int64_t ci, int64_t *n0, int64_t *cnt)
{
    wino c = *p;
    if (q->nblk > 1) {
        *n0 = ci / q->nblk;
        *cnt = 1;
        c.a0 = (ci % q->nblk) * q->rows;
        c.a1 = DC_MIN(p->th, c.a0 + q->rows);
    } else {
        *n0 = ci * q->nb;
        *cnt = DC_MIN(q->nb, p->n - *n0);
        c.a0 = 0;
        c.a1 = p->th;
    }
    c.cpi = (c.a1 - c.a0) * p->tw;
    return c;
}

typedef void (*in_fn)(const wino *p, const float *src, int64_t nb, float *v, int64_t ld, int64_t xs, float *buf);
typedef void (*out_fn)(const wino *p, const float *m, int64_t ld, int64_t xs, int64_t nb, const float *bias,
                       float *dst, float *buf);

/* dst = out(U in(src)) chunk by chunk, with up the packed transformed weights [nxi][ps] */
static dc_status winograd_run(const wino *p, in_fn in, out_fn out, const float *src, const float *up, int64_t ps,
                              const float *bias, float *dst)
{
    const dc_backend *be = dc_backend_get(DC_CPU);
    wino_plan q = plan_chunks(p, WINO_MIN_TILES);
    const int64_t nb = q.nb, nchunks = q.nchunks;
    const int threads = q.threads;
    int64_t nr;
    const wgemm_fn wgemm = pick_wgemm(&nr);
    const int64_t maxcols = q.nblk > 1 ? q.rows * p->tw : nb * p->tpi;
    const int64_t ld = skew(rup(maxcols, nr)); /* tile columns per chunk, whole panels */
    const int64_t om = rup(p->o, WINO_MR);         /* M rows, whole register blocks */
    const int64_t vs = skew(p->c * ld), ms = skew(om * ld);
    const size_t per_thread = (size_t)(p->nxi * (vs + ms) + rows_floats(p));
    float *scratch = be->scratch_alloc((size_t)threads * per_thread * sizeof(float));
    if (!scratch) return dc_last_status();
#pragma omp parallel num_threads(threads)
    {
        float *v = scratch + (size_t)omp_get_thread_num() * per_thread;
        float *m = v + p->nxi * vs, *rows = m + p->nxi * ms;
        /* a last, smaller chunk leaves columns of V unwritten: keep them finite */
        memset(v, 0, (size_t)(p->nxi * vs) * sizeof *v);
#pragma omp for schedule(static)
        for (int64_t ci = 0; ci < nchunks; ci++) {
            int64_t n0, cnt;
            wino pc = chunk_pass(p, &q, ci, &n0, &cnt);
            int64_t cols = rup(cnt * pc.cpi, nr);
            in(&pc, src + n0 * p->c * p->h * p->w, cnt, v, ld, vs, rows);
            for (int xi = 0; xi < p->nxi; xi++)
                wgemm(p->o, p->c, cols, up + xi * ps, v + xi * vs, ld, m + xi * ms);
            out(&pc, m, ld, ms, cnt, bias, dst + n0 * p->o * p->oh * p->ow, rows);
        }
    }
    be->scratch_free(scratch, (size_t)threads * per_thread * sizeof(float));
    return DC_OK;
}

/* packed transformed weights, run, free */
static dc_status transform_and_run(const wino *p, in_fn in, out_fn out, const float *w, int64_t so, int64_t sc,
                                   bool flip, const float *src, const float *bias, float *dst)
{
    const dc_backend *be = dc_backend_get(DC_CPU);
    int64_t ps = skew(rup(p->o, WINO_MR) * p->c);
    size_t bytes = (size_t)((p->nxi + 9) * ps) * sizeof(float);
    float *up = be->scratch_alloc(bytes);
    if (!up) return dc_last_status();
    weight_transform(p->s2, w, p->o, p->c, so, sc, flip, up, up + p->nxi * ps);
    dc_status st = winograd_run(p, in, out, src, up, ps, bias, dst);
    be->scratch_free(up, bytes);
    return st;
}

/* the pass whose source is the convolution's input x and destination its output y */
static wino forward_pass(const dc_conv2d_geom *g)
{
    wino p = {.s2 = g->sh == 2, .n = g->n, .c = g->c, .h = g->h, .w = g->w, .o = g->o, .oh = g->oh, .ow = g->ow,
              .ph = g->ph, .pw = g->pw};
    p.nxi = p.s2 ? 25 : 16;
    p.th = (g->oh + 1) / 2;
    p.tw = (g->ow + 1) / 2;
    p.tpi = p.th * p.tw;
    p.a0 = 0, p.a1 = p.th, p.cpi = p.tpi;
    return p;
}

bool dc__conv_winograd_dgrad_ok(const dc_conv2d_geom *g)
{
    if (!dc__conv_winograd_ok(g)) return false;
    /* the stride-2 input gradient adds overlapping patches across tile rows, so it runs on
     * whole images only; its scatter of 5x5 patches pays off from 16x16 outputs up (an 8x8
     * layer is faster by GEMM + col2im) */
    wino p = forward_pass(g);
    return !p.s2 || (!wino_split(&p) && p.tpi >= 64);
}

dc_status dc__conv_winograd_forward(const dc_conv2d_geom *g, const float *x, const float *w, const float *bias,
                                    float *y)
{
    wino p = forward_pass(g);
    return transform_and_run(&p, p.s2 ? input_transform_s2 : input_transform,
                             p.s2 ? output_transform_s2 : output_transform, w, g->c * 9, 9, false, x, bias, y);
}

dc_status dc__conv_winograd_backward_data(const dc_conv2d_geom *g, const float *w, const float *dy, float *dx)
{
    if (g->sh == 1) {
        /* dx = conv3x3(dy, W flipped with in/out channels swapped, padding 2 - p): the
         * forward pass with source dy and destination dx; U'[c, o] from W[o, c] */
        wino p = {.s2 = false, .nxi = 16, .n = g->n, .c = g->o, .h = g->oh, .w = g->ow, .o = g->c, .oh = g->h,
                  .ow = g->w, .ph = 2 - g->ph, .pw = 2 - g->pw};
        p.th = (g->h + 1) / 2;
        p.tw = (g->w + 1) / 2;
        p.tpi = p.th * p.tw;
        p.a0 = 0, p.a1 = p.th, p.cpi = p.tpi;
        return transform_and_run(&p, input_transform, output_transform, w, 9, g->c * 9, true, dy, NULL, dx);
    }
    /* stride 2: the adjoint algorithm on the forward pass's tiles, source dy, destination dx,
     * with U^T (rows c, reduction over o) */
    wino p = {.s2 = true, .nxi = 25, .n = g->n, .c = g->o, .h = g->oh, .w = g->ow, .o = g->c, .oh = g->h,
              .ow = g->w, .ph = g->ph, .pw = g->pw};
    p.th = (g->oh + 1) / 2;
    p.tw = (g->ow + 1) / 2;
    p.tpi = p.th * p.tw;
    p.a0 = 0, p.a1 = p.th, p.cpi = p.tpi;
    return transform_and_run(&p, dy_transform, patch_transform_s2, w, 9, g->c * 9, false, dy, NULL, dx);
}

/* ---------------------------------------------------------------------------------------
 * Weight gradient: V from x (the forward input transform), E = A e A^T from dy, then
 * Mw_xi [o, c] += E_xi [o, t] V_xi [c, t]^T over the chunk's tiles (OpenBLAS: long K),
 * accumulated per thread and added in thread order; dW = G^T Mw G per (o, c).
 * ------------------------------------------------------------------------------------- */

/* tiles per float GEMM sum of the weight gradient (see below) */
#define WINO_WG_K 512

/* one dimension of G^T m: 3 values from 4 (stride 1) or 5 (stride 2), in double */
static inline void gt_1d(bool s2, const double *m, int stride, double *w)
{
    if (s2) {
        w[0] = m[0] + m[stride];
        w[1] = m[3 * stride] + m[4 * stride];
        w[2] = m[stride] + m[2 * stride];
    } else {
        w[0] = m[0] + 0.5 * (m[stride] + m[2 * stride]);
        w[1] = 0.5 * (m[stride] - m[2 * stride]);
        w[2] = 0.5 * (m[stride] + m[2 * stride]) + m[3 * stride];
    }
}

dc_status dc__conv_winograd_backward_weight(const dc_conv2d_geom *g, const float *x, const float *dy, float *dw)
{
    const dc_backend *be = dc_backend_get(DC_CPU);
    wino p = forward_pass(g);
    const int nxi = p.nxi, T = p.s2 ? 5 : 4;
    /* the reduction runs over tiles: take chunks of at least 512 tiles where memory allows */
    wino_plan q = plan_chunks(&p, 512);
    const int64_t ld = skew(q.nblk > 1 ? q.rows * p.tw : q.nb * p.tpi), oc = g->o * g->c;
    const int64_t vs = skew(g->c * ld), es = skew(g->o * ld), mws = skew(oc);
    const int64_t rows_f = rows_floats(&p);
    const size_t per_thread = (size_t)(nxi * (vs + es) + rows_f + nxi * mws);
    const size_t acc_per_thread = (size_t)(nxi * mws);
    float *scratch = be->scratch_alloc((size_t)q.threads * per_thread * sizeof(float));
    double *accs = scratch ? be->scratch_alloc((size_t)q.threads * acc_per_thread * sizeof(double)) : NULL;
    if (!accs) {
        be->scratch_free(scratch, (size_t)q.threads * per_thread * sizeof(float));
        return dc_last_status();
    }
    dc_status st = DC_OK;
#pragma omp parallel num_threads(q.threads)
    {
        int t = omp_get_thread_num();
        float *v = scratch + (size_t)t * per_thread, *e = v + nxi * vs, *rows = e + nxi * es;
        float *mw = rows + rows_f;
        double *acc = accs + (size_t)t * acc_per_thread;
        memset(acc, 0, acc_per_thread * sizeof *acc);
#pragma omp for schedule(static)
        for (int64_t ci = 0; ci < q.nchunks; ci++) {
            int64_t n0, cnt;
            wino pc = chunk_pass(&p, &q, ci, &n0, &cnt), pdc = pc;
            pdc.c = g->o, pdc.h = g->oh, pdc.w = g->ow; /* dy as the source: same tiles */
            int64_t cols = cnt * pc.cpi;
            if (p.s2)
                input_transform_s2(&pc, x + n0 * g->c * g->h * g->w, cnt, v, ld, vs, rows);
            else
                input_transform(&pc, x + n0 * g->c * g->h * g->w, cnt, v, ld, vs, rows);
            dy_transform(&pdc, dy + n0 * g->o * g->oh * g->ow, cnt, e, ld, es, rows);
            /* float sums over at most WINO_WG_K tiles, added up in double: the transformed
             * products cancel in G^T M G, and one long float sum over a large image loses
             * about 1e-5 of the result (a 260x270 image, against 5e-7 this way) */
            for (int64_t k0 = 0; k0 < cols; k0 += WINO_WG_K) {
                const int64_t kn = DC_MIN(WINO_WG_K, cols - k0);
                for (int xi = 0; xi < nxi; xi++) {
                    dc_status s = be->gemm(DC_NO_TRANS, DC_TRANS, g->o, g->c, kn, 1.0f, e + xi * es + k0, ld,
                                           v + xi * vs + k0, ld, 0.0f, mw + xi * mws, g->c);
                    if (s) {
#pragma omp atomic write
                        st = s;
                    }
                }
                for (int64_t i = 0; i < nxi * mws; i++) acc[i] += mw[i];
            }
        }
        /* dW = G^T (sum over threads of Mw) G, per (o, c); the loop's barrier comes first */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < oc; i++) {
            double m[25], tt[3][5], d[3][3];
            for (int xi = 0; xi < nxi; xi++) {
                double sum = 0.0;
                for (int u = 0; u < q.threads; u++) sum += accs[(size_t)u * acc_per_thread + (size_t)(xi * mws + i)];
                m[xi] = sum;
            }
            for (int b = 0; b < T; b++) { /* G^T m, column by column */
                double col[3];
                gt_1d(p.s2, m + b, T, col);
                for (int a = 0; a < 3; a++) tt[a][b] = col[a];
            }
            for (int a = 0; a < 3; a++) gt_1d(p.s2, tt[a], 1, d[a]); /* times G */
            for (int a = 0; a < 9; a++) dw[i * 9 + a] = (float)d[a / 3][a % 3]; /* (o, c) row-major = i */
        }
    }
    be->scratch_free(accs, (size_t)q.threads * acc_per_thread * sizeof(double));
    be->scratch_free(scratch, (size_t)q.threads * per_thread * sizeof(float));
    return st;
}
