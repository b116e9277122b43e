/* sd_infer.c: the no-grad inference path of the diffusion models (UNet2DConditionModel,
 * UNet2DModel, the AutoencoderKL decoder and encoder): the arithmetic of the layers of
 * sd_layers.c, arranged so that memory stays near what a model needs at its widest point.
 *
 *   - Ownership is explicit: every sdi_* layer takes its input tensor's reference (consumes it)
 *     and returns a reference the caller owns, dropping each intermediate the moment it is dead
 *     instead of at the end of a pool. An input nobody else holds (refcount 1, storage not
 *     shared) is overwritten in place: GroupNorm(+SiLU), the time-embedding add, the residual
 *     adds of ResnetBlock2D / Transformer2DModel / Attention.
 *   - Activations come from the backend allocator's best-fit entry (dc__cpu_alloc_fit in
 *     src/backend/cpu/memory.c): mappings of their own, big ones 2 MiB-aligned and backed by
 *     transparent huge pages (a 268 MB VAE activation faults in 134 pages instead of 65536);
 *     freed blocks are kept for reuse only while live plus cached memory stays near the
 *     high-water mark of live bytes, so the process holds little more than it once needed
 *     at one time.
 *   - Kernels are called directly (backend conv / gemm) into those buffers. Convolutions whose
 *     Winograd-transformed weights would be large (a 2560 -> 1280 3x3 layer: 328 MB of kernel
 *     scratch) run in blocks of output channels; 16-bit weights are widened one block at a time
 *     into a small buffer, never as a whole F32 copy.
 *   - One big image (the VAE at 512x512) runs its 3x3 convolutions on row slabs whose input is
 *     made as each slab is needed: GroupNorm+SiLU, or the nearest 2x upsampling, applied on the
 *     fly, so neither the normalised nor the upsampled map ever exists whole, and conv2 of a
 *     ResnetBlock2D writes over its own input.
 *   - Transformer blocks work on token-major [B, HW, C] rows produced straight from NCHW by a
 *     transposed GEMM (no permute copies); GEGLU runs in column blocks of the inner dimension
 *     (no [B, HW, 8C] projection); attention is sliced by query rows, each (batch, head, rows)
 *     slice on one thread with its own score buffer and a vectorised softmax.
 *
 * Numerics: every result is the sum diffusers computes; only the order of a few additions
 * differs (bias + residual folded into a GEMM's accumulator, partial sums over blocks, the
 * softmax's 1 / sum applied to the output row), well inside the 1e-4 the tests allow against
 * diffusers; tests/test_sd.c checks this path against the pool-based layers to 1e-5 with every
 * blocked path forced on. */
#if defined(__GNUC__) && !defined(__clang__)
/* Under the library's default -ftrapping-math GCC does not if-convert the selects in dc__vexpf /
 * dc__verff, so the softmax, SiLU and GELU loops would stay scalar (measured: the softmax took a
 * third of a UNet step). Nothing here relies on floating-point exceptions. Before every include,
 * so that all inline functions share the option and still inline. */
#pragma GCC optimize("no-trapping-math")
#endif
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "../backend/cpu/conv_internal.h"
#include "../backend/cpu/cpu_memory.h"
#include "../backend/kernels_conv.h"
#include "../backend/kernels_elementwise.h"
#include "../core/internal.h"
#include "sd_internal.h"

/* Knobs (tests shrink them to run the blocked paths on small models). */
int sd__infer_path = 1;                        /* 0: the pool-based layers of sd_layers.c */
int64_t sd__conv_scratch_floats = 8 << 20;     /* cap on a conv's transformed / widened weights */
int64_t sd__block_floats = 2 << 20;            /* GEGLU column block and linear widening */
int64_t sd__attn_floats = 1 << 18;             /* one thread's attention scores (1 MiB) */
int sd__own_wino = 1;                          /* 0: 3x3 convs on the backend kernel only */

/* ---- memory ------------------------------------------------------------------------------- */

/* Maps of at least this size come straight from the backend allocator with best-fit reuse
 * (dc__cpu_alloc_fit: the UNet's maps come in many near sizes); smaller tensors are ordinary
 * ones. */
#define SI_MIN_BYTES (64u << 10)

typedef struct si_ext {
    void *p;
    size_t n;
} si_ext;

static void ext_release(void *ctx)
{
    si_ext *e = ctx;
    dc__cpu_free(e->p, e->n);
    free(e);
}

dc_tensor *sd_tensor_new(int ndim, const int64_t *shape)
{
    size_t nb = (size_t)dc__shape_numel(ndim, shape) * sizeof(float);
    dc_pool_mark m = dc_pool_push();
    dc_tensor *t = NULL;
    if (nb < SI_MIN_BYTES) {
        t = dc_empty(DC_F32, ndim, shape);
    } else {
        si_ext *e = dc__malloc(sizeof *e);
        if (e && (e->p = dc__cpu_alloc_fit(nb, 0, &e->n))) {
            t = dc_from_external(DC_F32, ndim, shape, e->p, ext_release, e);
            if (!t) dc__cpu_free(e->p, e->n);
        }
        if (!t) free(e);
    }
    if (t) dc_tensor_retain(t);
    dc_pool_pop(m);
    return t;
}

/* Scratch floats from the same allocator. */
typedef struct si_buf {
    float *p;
    size_t n;
} si_buf;

static float *buf_get(si_buf *b, int64_t floats)
{
    b->p = dc__cpu_alloc_fit((size_t)floats * sizeof(float), 0, &b->n);
    return b->p;
}

static void buf_put(si_buf *b)
{
    dc__cpu_free(b->p, b->n);
    b->p = NULL;
}

static void drop(dc_tensor *t)
{
    if (t) dc_tensor_release(t);
}

/* Nobody else can see t's values: safe to overwrite them. */
static bool unique(const dc_tensor *t) { return t->refcount == 1 && t->storage->refcount == 1; }

static float *F(const dc_tensor *t) { return dc_data_f32(t); }

/* ---- weights -------------------------------------------------------------------------------- */

/* n elements of a 16-bit tensor's data from element off, as F32 */
static void widen(const dc_tensor *t, int64_t off, int64_t n, float *dst)
{
    const uint16_t *s = (const uint16_t *)dc_data(t) + off;
    if (t->dtype == DC_BF16) {
#pragma omp parallel for schedule(static) if (n > (1 << 18))
        for (int64_t i = 0; i < n; i++) {
            uint32_t b = (uint32_t)s[i] << 16;
            memcpy(dst + i, &b, 4);
        }
        return;
    }
#if defined(__F16C__)
    int64_t n8 = n / 8 * 8;
#pragma omp parallel for schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n8; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (int64_t i = n8; i < n; i++) dst[i] = dc__f16_to_f32(s[i]);
#else
#pragma omp parallel for schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; i++) dst[i] = dc__f16_to_f32(s[i]);
#endif
}

/* Rows [r0, r0 + nr) of a weight (rows of `len` elements) as F32: a pointer into the weight
 * when it is F32, else widened into buf (nr * len floats). */
static const float *wrows(const dc_tensor *w, int64_t r0, int64_t nr, int64_t len, float *buf)
{
    if (w->dtype == DC_F32) return F(w) + r0 * len;
    widen(w, r0 * len, nr * len, buf);
    return buf;
}

/* A small F32 parameter vector (bias, norm scale): borrowed, or a widened copy. */
typedef struct si_vec {
    const float *p;
    float *own;
} si_vec;

static bool vec_get(sd_store *s, const char *name, int64_t n, si_vec *v)
{
    v->own = NULL;
    dc_tensor *t = sd_wt(s, name, 1, (int64_t[]){n});
    if (!t) return false;
    if (t->dtype == DC_F32) {
        v->p = F(t);
        return true;
    }
    if (!(v->own = dc__malloc((size_t)n * sizeof(float)))) return false;
    widen(t, 0, n, v->own);
    v->p = v->own;
    return true;
}

static void vec_put(si_vec *v)
{
    free(v->own);
    v->own = NULL;
}

/* ---- GEMM helpers ------------------------------------------------------------------------------ */

static const dc_backend *cpu(void) { return dc_backend_get(DC_CPU); }

/* y [M, N] (row stride ldy) = x W^T + b, or += when accumulate, with W = `prefix`.weight
 * [N, K] and the bias when `bias`. x is [M, K] (row stride ldx), or with x_t its transpose
 * [K, M] (row stride ldx: a channel-major image read as token rows). 16-bit weights are widened
 * in row blocks, each a GEMM into its columns of y. */
static dc_status linear_into(sd_store *s, const char *prefix, const float *x, int64_t ldx, bool x_t, int64_t M,
                             int64_t K, int64_t N, bool bias, float *y, int64_t ldy, bool accumulate)
{
    char n[512];
    dc_tensor *w = sd_wt(s, NAME(n, "%s.weight", prefix), 2, (int64_t[]){N, K});
    if (!w) return dc_last_status();
    si_vec b = {0};
    if (bias && !vec_get(s, NAME(n, "%s.bias", prefix), N, &b)) return dc_last_status();
    float beta = accumulate ? 1.0f : 0.0f;
    if (b.p) { /* the bias goes into the accumulator first, as dc_linear does */
#pragma omp parallel for schedule(static) if (M * N > (1 << 16))
        for (int64_t r = 0; r < M; r++) {
            float *yr = y + r * ldy;
            if (accumulate)
                for (int64_t j = 0; j < N; j++) yr[j] += b.p[j];
            else
                memcpy(yr, b.p, (size_t)N * sizeof(float));
        }
        beta = 1.0f;
    }
    vec_put(&b);
    int64_t nb = N;
    si_buf wb = {0};
    if (w->dtype != DC_F32) {
        nb = DC_MAX(1, DC_MIN(N, sd__block_floats / K));
        if (!buf_get(&wb, nb * K)) return dc_last_status();
    }
    dc_status st = DC_OK;
    for (int64_t n0 = 0; n0 < N && !st; n0 += nb) {
        int64_t nn = DC_MIN(nb, N - n0);
        const float *wp = wrows(w, n0, nn, K, wb.p);
        st = cpu()->gemm(x_t ? DC_TRANS : DC_NO_TRANS, DC_TRANS, M, nn, K, 1.0f, x, ldx, wp, K, beta, y + n0, ldy);
    }
    if (wb.p) buf_put(&wb);
    return st;
}

/* ---- convolution ------------------------------------------------------------------------------- */

/* Floats of the Winograd kernel's transformed weights for o outputs (conv_winograd.c: nxi + 9
 * planes of ceil(o / 6) * 6 x c). */
static int64_t wino_floats(const dc_conv2d_geom *g, int64_t o)
{
    int nxi = g->sh == 2 ? 25 : 16;
    return (nxi + 9) * ((o + 5) / 6 * 6) * g->c;
}

/* Whether sd_wino.c takes a convolution: 3x3, stride 1, padding 1, even width, and enough
 * tiles to keep its GEMMs wide (as the backend's own Winograd threshold). */
static bool own_wino(const dc_conv2d_geom *g)
{
    return sd__own_wino && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->ph == 1 && g->pw == 1 &&
           g->dh == 1 && g->dw == 1 && g->groups == 1 && g->w % 2 == 0 &&
           g->n * ((g->oh + 1) / 2) * (g->ow / 2) >= 64;
}

/* y = conv(x) + b by sd_wino.c in blocks of output channels (the block's transformed weights
 * within the cap), each written in place into its channels of y. */
static dc_status conv_wino(const dc_conv2d_geom *g, const float *x, const dc_tensor *w, const float *bias, float *y)
{
    const int64_t c = g->c, HW = g->h * g->w;
    int64_t ob = g->o;
    while (ob > 8 && 16 * ob * c > sd__conv_scratch_floats) ob = (ob + 1) / 2;
    const int64_t nblk = (g->o + ob - 1) / ob;
    ob = (g->o + nblk - 1) / nblk;
    si_buf ub = {0}, wb = {0};
    if (!buf_get(&ub, 16 * ob * c) || (w->dtype != DC_F32 && !buf_get(&wb, ob * c * 9))) {
        if (ub.p) buf_put(&ub);
        return dc_last_status();
    }
    dc_status st = DC_OK;
    for (int64_t o0 = 0; o0 < g->o && !st; o0 += ob) {
        const int64_t oo = DC_MIN(ob, g->o - o0);
        sd_wino_weights(wrows(w, o0, oo, c * 9, wb.p), oo, c, ub.p);
        st = sd_wino_conv(ub.p, oo, c, g->n, x, c * HW, HW, g->h, 1, (g->h + 1) & ~(int64_t)1, g->h, g->w,
                          bias ? bias + o0 : NULL, y + o0 * HW, g->o * HW, HW);
    }
    buf_put(&ub);
    if (wb.p) buf_put(&wb);
    return st;
}

/* y = conv(x) + b for the geometry g (x, y contiguous NCHW): sd_wino.c where it applies, else
 * the backend kernel, in blocks of output channels when its Winograd weight scratch or a
 * 16-bit weight's widened copy would pass the cap. */
static dc_status conv_run(const dc_conv2d_geom *g, const float *x, const dc_tensor *w, const float *bias, float *y)
{
    if (own_wino(g)) return conv_wino(g, x, w, bias, y);
    const struct dc_kernels_conv *k = cpu()->conv;
    const int64_t per_o = g->c * g->kh * g->kw, ohw = g->oh * g->ow;
    bool wino = dc__conv_winograd_ok(g);
    int64_t ob = g->o;
    if (wino)
        while (ob > 6 && wino_floats(g, ob) > sd__conv_scratch_floats) ob = (ob + 1) / 2;
    if (w->dtype != DC_F32)
        while (ob > 1 && ob * per_o > sd__conv_scratch_floats) ob = (ob + 1) / 2;
    if (ob == g->o && w->dtype == DC_F32) return k->conv2d_forward(g, x, F(w), bias, y);
    /* even blocks (ob rounded so that the last one is not a sliver) */
    int64_t nblk = (g->o + ob - 1) / ob;
    ob = (g->o + nblk - 1) / nblk;
    si_buf wb = {0}, tb = {0};
    if (w->dtype != DC_F32 && !buf_get(&wb, ob * per_o)) return dc_last_status();
    if (g->n > 1 && nblk > 1 && !buf_get(&tb, g->n * ob * ohw)) {
        if (wb.p) buf_put(&wb);
        return dc_last_status();
    }
    dc_status st = DC_OK;
    for (int64_t o0 = 0; o0 < g->o && !st; o0 += ob) {
        dc_conv2d_geom gb = *g;
        gb.o = DC_MIN(ob, g->o - o0);
        const float *wp = wrows(w, o0, gb.o, per_o, wb.p);
        if (g->n == 1 || nblk == 1) { /* one image (or one block): the block's planes are contiguous in y */
            st = k->conv2d_forward(&gb, x, wp, bias ? bias + o0 : NULL, y + o0 * ohw);
            continue;
        }
        st = k->conv2d_forward(&gb, x, wp, bias ? bias + o0 : NULL, tb.p);
        for (int64_t i = 0; i < g->n && !st; i++)
            memcpy(y + (i * g->o + o0) * ohw, tb.p + i * gb.o * ohw, (size_t)(gb.o * ohw) * sizeof(float));
    }
    if (wb.p) buf_put(&wb);
    if (tb.p) buf_put(&tb);
    return st;
}

/* `prefix` conv (k x k, stride, padding) of x [N, C, H, W] (borrowed) -> a new [N, out, OH, OW]. */
dc_tensor *sdi_conv(sd_store *s, const char *prefix, const dc_tensor *x, int64_t out, int k, int stride,
                          int pad)
{
    if (!x) return NULL;
    char n[512];
    dc_conv2d_geom g = {.n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3], .o = out, .kh = k,
                        .kw = k, .sh = stride, .sw = stride, .ph = pad, .pw = pad, .dh = 1, .dw = 1, .groups = 1};
    g.oh = (g.h + 2 * pad - k) / stride + 1;
    g.ow = (g.w + 2 * pad - k) / stride + 1;
    if (g.oh < 1 || g.ow < 1) {
        dc_set_error(DC_ERR_SHAPE, "%s: %s: a %dx%d kernel does not fit the %lldx%lld input", s->what, prefix, k, k,
                     (long long)g.h, (long long)g.w);
        return NULL;
    }
    dc_tensor *w = sd_wt(s, NAME(n, "%s.weight", prefix), 4, (int64_t[]){out, g.c, k, k});
    si_vec b = {0};
    if (!w || !vec_get(s, NAME(n, "%s.bias", prefix), out, &b)) return NULL;
    dc_tensor *y = sd_tensor_new(4, (int64_t[]){g.n, out, g.oh, g.ow});
    if (y && conv_run(&g, F(x), w, b.p, F(y))) {
        drop(y);
        y = NULL;
    }
    vec_put(&b);
    return y;
}

/* ---- row slabs: 3x3 convolutions of a transformed input that is never materialised --------- */

/* Produces rows [r0, r0 + nr) of a virtual conv input [c, H, W] into dst (channel stride ld). */
typedef struct slab_src {
    void (*fill)(const struct slab_src *src, int64_t r0, int64_t nr, float *dst, int64_t ld);
    const float *x;        /* the tensor behind the virtual input */
    int64_t c, h, w;       /* x's geometry */
    const float *a, *b;    /* GroupNorm+SiLU: silu(x a_c + b_c) */
} slab_src;

static void fill_gn_silu(const slab_src *src, int64_t r0, int64_t nr, float *dst, int64_t ld)
{
    const int64_t W = src->w, HW = src->h * src->w;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < src->c; c++) {
        const float a = src->a[c], b = src->b[c];
        const float *xs = src->x + c * HW + r0 * W;
        float *d = dst + c * ld;
        for (int64_t i = 0; i < nr * W; i++) {
            float v = xs[i] * a + b;
            d[i] = v / (1.0f + dc__vexpf(-v));
        }
    }
}

/* nearest 2x upsampling of x [c, h, w] (diffusers' Upsample2D interpolate) */
static void fill_up2(const slab_src *src, int64_t r0, int64_t nr, float *dst, int64_t ld)
{
    const int64_t W = 2 * src->w;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < src->c; c++)
        for (int64_t i = 0; i < nr; i++) {
            const float *xr = src->x + (c * src->h + (r0 + i) / 2) * src->w;
            float *d = dst + c * ld + i * W;
            for (int64_t j = 0; j < W; j++) d[j] = xr[j / 2];
        }
}

int64_t sd__slab_floats = 4 << 20;        /* a slab's input rows */
int64_t sd__slab_min_floats = 8 << 20;    /* images at least this big take the slab paths */
/* the slab paths widen a 16-bit weight whole: VAE-sized layers only (512 x 512 x 9 is 2.4M) */
#define SLAB_MAX_WEIGHT ((int64_t)1 << 24)

/* y [o, H, W] = conv3x3(pad 1)(virtual input [c, H, W]) + b for one image, R output rows at a
 * time: the block's input rows (one more above and below, zeros outside the image) are produced
 * into a slab and convolved with padding 0 across rows, by sd_wino.c straight into y's rows
 * (the weights transformed once for all slabs), or for odd widths by the backend kernel into a
 * buffer that is then copied. The top halo of each slab is the previous slab's last row,
 * carried over rather than produced again, so y may be the very tensor the source reads (in
 * place): a row of y is written only after every slab that reads it. */
static dc_status conv3x3_slabs(const slab_src *src, int64_t H, int64_t W, const dc_tensor *w, const float *bias,
                               int64_t o, float *y)
{
    const int64_t c = src->c;
    const int64_t R = DC_MIN(DC_MAX(2, sd__slab_floats / (c * W)) & ~(int64_t)1, (H + 1) & ~(int64_t)1);
    const int64_t ld = (R + 2) * W; /* slab channel stride: always R + 2 rows (zeros past the image) */
    /* sd_wino.c writes each slab's rows straight into y (even widths); else the backend kernel
     * into a buffer, copied */
    const bool own = sd__own_wino && W % 2 == 0;
    si_buf sb = {0}, tb = {0}, wb = {0}, ub = {0};
    dc_status st = DC_OK;
    if (!buf_get(&sb, c * ld) || (own ? !buf_get(&ub, 16 * o * c) : !buf_get(&tb, o * R * W)) ||
        (w->dtype != DC_F32 && !buf_get(&wb, o * c * 9)))
        st = dc_last_status();
    const float *wp = st ? NULL : wrows(w, 0, o, c * 9, wb.p);
    if (!st && own) sd_wino_weights(wp, o, c, ub.p);
    float *slab = sb.p;
    const dc_conv2d_geom g = {.n = 1, .c = c, .h = R + 2, .w = W, .o = o, .oh = R, .ow = W, .kh = 3, .kw = 3,
                              .sh = 1, .sw = 1, .ph = 0, .pw = 1, .dh = 1, .dw = 1, .groups = 1};
    for (int64_t r0 = 0; r0 < H && !st; r0 += R) {
        const int64_t rr = DC_MIN(R, H - r0);
        /* slab row k is input row r0 - 1 + k: row 0 is zero padding or carried over */
        for (int64_t ch = 0; ch < c; ch++) {
            float *d = slab + ch * ld;
            if (r0 == 0)
                memset(d, 0, (size_t)W * sizeof(float));
            else
                memcpy(d, d + R * W, (size_t)W * sizeof(float));
        }
        const int64_t nfill = DC_MIN(R + 1, H - r0);
        src->fill(src, r0, nfill, slab + W, ld);
        if (nfill < R + 1)
            for (int64_t ch = 0; ch < c; ch++)
                memset(slab + ch * ld + (1 + nfill) * W, 0, (size_t)((R + 1 - nfill) * W) * sizeof(float));
        if (own) {
            st = sd_wino_conv(ub.p, o, c, 1, slab, 0, ld, R + 2, 0, R, rr, W, bias, y + r0 * W, 0, H * W);
            continue;
        }
        st = cpu()->conv->conv2d_forward(&g, slab, wp, bias, tb.p);
        if (st) break;
#pragma omp parallel for schedule(static)
        for (int64_t oc = 0; oc < o; oc++)
            memcpy(y + (oc * H + r0) * W, tb.p + oc * R * W, (size_t)(rr * W) * sizeof(float));
    }
    if (sb.p) buf_put(&sb);
    if (tb.p) buf_put(&tb);
    if (wb.p) buf_put(&wb);
    if (ub.p) buf_put(&ub);
    return st;
}

/* ---- normalisation --------------------------------------------------------------------------------- */

/* mean and 1 / std of one (sample, group) block of len values, in double (as PyTorch's CPU
 * GroupNorm accumulates) */
static void group_stats(const float *xs, int64_t len, float eps, float *mean_out, float *rstd_out)
{
    double s4[4] = {0, 0, 0, 0}, q4[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= len; i += 4)
        for (int l = 0; l < 4; l++) s4[l] += xs[i + l];
    double sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    for (; i < len; i++) sum += xs[i];
    const double mean = sum / (double)len;
    for (i = 0; i + 4 <= len; i += 4)
        for (int l = 0; l < 4; l++) {
            double d = xs[i + l] - mean;
            q4[l] += d * d;
        }
    double sq = (q4[0] + q4[1]) + (q4[2] + q4[3]);
    for (; i < len; i++) {
        double d = xs[i] - mean;
        sq += d * d;
    }
    *mean_out = (float)mean;
    *rstd_out = (float)(1.0 / sqrt(sq / (double)len + eps));
}

/* GroupNorm as a per-(sample, channel) affine: y = x a + b, a and b [N * C]. */
static void gn_coeffs(const float *x, int64_t N, int64_t C, int64_t S, int64_t G, const float *w, const float *b,
                      float eps, float *a_out, float *b_out)
{
    const int64_t cg = C / G;
#pragma omp parallel for schedule(static)
    for (int64_t ng = 0; ng < N * G; ng++) {
        float m, rstd;
        group_stats(x + ng * cg * S, cg * S, eps, &m, &rstd);
        const int64_t c0 = (ng % G) * cg, n = ng / G;
        for (int64_t c = 0; c < cg; c++) {
            a_out[n * C + c0 + c] = rstd * w[c0 + c];
            b_out[n * C + c0 + c] = b[c0 + c] - m * rstd * w[c0 + c];
        }
    }
}

/* GroupNorm (+SiLU) of x [N, C, S] into y (y == x allowed): the statistics of each (sample,
 * group), then y = x a + b per channel in the same pass over the group. */
static void gn_kernel(const float *x, float *y, int64_t N, int64_t C, int64_t S, int64_t G, const float *w,
                      const float *b, float eps, bool silu)
{
    const int64_t cg = C / G, len = cg * S;
#pragma omp parallel for schedule(static)
    for (int64_t ng = 0; ng < N * G; ng++) {
        const float *xs = x + ng * len;
        float *ys = y + ng * len;
        float m, rstd;
        group_stats(xs, len, eps, &m, &rstd);
        const int64_t c0 = (ng % G) * cg;
        for (int64_t c = 0; c < cg; c++) {
            const float a = rstd * w[c0 + c], bb = b[c0 + c] - m * rstd * w[c0 + c];
            const float *xc = xs + c * S;
            float *yc = ys + c * S;
            if (silu)
                for (int64_t j = 0; j < S; j++) {
                    float v = xc[j] * a + bb;
                    yc[j] = v / (1.0f + dc__vexpf(-v));
                }
            else
                for (int64_t j = 0; j < S; j++) yc[j] = xc[j] * a + bb;
        }
    }
}

void sd_group_norm_kernel(const float *x, float *y, int64_t N, int64_t C, int64_t S, int64_t G, const float *w,
                          const float *b, float eps, bool silu)
{
    gn_kernel(x, y, N, C, S, G, w, b, eps, silu);
}

/* GroupNorm(+SiLU) of x (consumed): in place when x is unshared, else into a new tensor. */
dc_tensor *sdi_group_norm(sd_store *s, const char *prefix, dc_tensor *x, int groups, float eps, bool silu)
{
    if (!x) return NULL;
    char n[512];
    const int64_t N = x->shape[0], C = x->shape[1], S = dc_numel(x) / (N * C);
    if (groups <= 0 || C % groups) {
        dc_set_error(DC_ERR_SHAPE, "%s: %s: %lld channels do not split into %d groups", s->what, prefix,
                     (long long)C, groups);
        drop(x);
        return NULL;
    }
    si_vec w = {0}, b = {0};
    dc_tensor *y = NULL;
    if (vec_get(s, NAME(n, "%s.weight", prefix), C, &w) && vec_get(s, NAME(n, "%s.bias", prefix), C, &b)) {
        y = unique(x) ? dc_tensor_retain(x) : sd_tensor_new(x->ndim, x->shape);
        if (y) gn_kernel(F(x), F(y), N, C, S, groups, w.p, b.p, eps, silu);
    }
    vec_put(&w);
    vec_put(&b);
    drop(x);
    return y;
}

/* LayerNorm over the last dim of M rows of D (mean and variance in double). */
static void ln_rows(const float *x, float *y, int64_t M, int64_t D, const float *w, const float *b, float eps)
{
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double sum = 0, sq = 0;
        for (int64_t j = 0; j < D; j++) sum += xr[j];
        const double mean = sum / (double)D;
        for (int64_t j = 0; j < D; j++) {
            double d = xr[j] - mean;
            sq += d * d;
        }
        const float rstd = (float)(1.0 / sqrt(sq / (double)D + eps)), m = (float)mean;
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - m) * rstd * w[j] + b[j];
    }
}

static dc_status layer_norm(sd_store *s, const char *prefix, const float *x, float *y, int64_t M, int64_t D,
                            float eps)
{
    char n[512];
    si_vec w = {0}, b = {0};
    dc_status st = DC_OK;
    if (vec_get(s, NAME(n, "%s.weight", prefix), D, &w) && vec_get(s, NAME(n, "%s.bias", prefix), D, &b))
        ln_rows(x, y, M, D, w.p, b.p, eps);
    else
        st = dc_last_status();
    vec_put(&w);
    vec_put(&b);
    return st;
}

/* ---- attention ------------------------------------------------------------------------------------ */

/* 8-float vectors by GCC/Clang vector extensions (AVX with the library's x86-64-v3 flags):
 * the max and sum reductions of the softmax, which the compiler will not vectorise itself
 * (float reductions reassociate). */
typedef float si_v8 __attribute__((vector_size(32)));
typedef int32_t si_v8i __attribute__((vector_size(32)));
typedef float si_v8u __attribute__((vector_size(32), aligned(4)));
static inline si_v8 ld8(const float *p) { return *(const si_v8u *)p; }
static inline si_v8 max8(si_v8 a, si_v8 b)
{
    si_v8i m = (si_v8i)(a > b);
    return (si_v8)(((si_v8i)a & m) | ((si_v8i)b & ~m));
}

/* e^x for the softmax's x = s - max <= 0: Cephes' reduction x = n ln2 + r and degree-6
 * polynomial (as dc__vexpf, about 1 ulp), without dc__vexpf's NaN, overflow and subnormal
 * handling, which x <= 0 never needs (below -87 it returns ~1e-38 for 0: nothing next to the
 * row's largest term, which contributes 1) */
static inline float exp_nonpos(float x)
{
    x = x < -87.0f ? -87.0f : x;
    const float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = dc__exp_poly(r);
    const int32_t e = ((int32_t)n + 127) << 23;
    float sc;
    memcpy(&sc, &e, 4);
    return p * sc;
}

/* exp(row - max) over a row's first `valid` entries (the rest of the S set to 0); returns
 * 1 / their sum: the caller scales the row's output by it (D values instead of S). */
static inline float softmax_row(float *row, int64_t valid, int64_t S)
{
    si_v8 vm = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t j = 0;
    for (; j + 8 <= valid; j += 8) vm = max8(vm, ld8(row + j));
    float mx = -INFINITY;
    for (int l = 0; l < 8; l++) mx = vm[l] > mx ? vm[l] : mx;
    for (; j < valid; j++) mx = row[j] > mx ? row[j] : mx;
    for (j = 0; j < valid; j++) row[j] = exp_nonpos(row[j] - mx);
    si_v8 vs = {0, 0, 0, 0, 0, 0, 0, 0};
    for (j = 0; j + 8 <= valid; j += 8) vs += ld8(row + j);
    float sum = ((vs[0] + vs[1]) + (vs[2] + vs[3])) + ((vs[4] + vs[5]) + (vs[6] + vs[7]));
    for (; j < valid; j++) sum += row[j];
    for (j = valid; j < S; j++) row[j] = 0.0f;
    return 1.0f / sum;
}

dc_status sd_attention(const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                       float *o, int64_t ldo, int64_t B, int64_t L, int64_t S, int heads, int64_t D, bool causal)
{
    if (B * L * S == 0) return DC_OK;
    const dc_backend *be = cpu();
    int64_t R = DC_MAX(1, DC_MIN(L, sd__attn_floats / S));
    const int64_t nr = (L + R - 1) / R, items = B * heads * nr;
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > items) threads = (int)items;
    si_buf sb = {0};
    const int64_t per = R * S + R; /* scores, then the rows' 1 / sum */
    if (!buf_get(&sb, (int64_t)threads * per)) return dc_last_status();
    const float scale = 1.0f / sqrtf((float)D);
    dc_status st = DC_OK;
    /* each (batch, head, row block) is one item on one thread: its GEMMs run single-threaded
     * (as BLAS does inside a parallel region) and nothing is shared, so no barriers between
     * the two products and the softmax, and results do not depend on the schedule */
#pragma omp parallel num_threads(threads)
    {
        float *sc = sb.p + (size_t)omp_get_thread_num() * (size_t)per, *inv = sc + R * S;
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int64_t b = it / (heads * nr), h = (it / nr) % heads, r0 = (it % nr) * R, rr = DC_MIN(R, L - r0);
            dc_status s1 = be->gemm(DC_NO_TRANS, DC_TRANS, rr, S, D, scale, q + (b * L + r0) * ldq + h * D, ldq,
                                    k + b * S * ldk + h * D, ldk, 0.0f, sc, S);
            if (!s1) {
                for (int64_t i = 0; i < rr; i++)
                    inv[i] = softmax_row(sc + i * S, causal ? DC_MIN(S, r0 + i + 1) : S, S);
                float *orow = o + (b * L + r0) * ldo + h * D;
                s1 = be->gemm(DC_NO_TRANS, DC_NO_TRANS, rr, D, S, 1.0f, sc, S, v + b * S * ldv + h * D, ldv, 0.0f,
                              orow, ldo);
                for (int64_t i = 0; i < rr; i++)
                    for (int64_t d = 0; d < D; d++) orow[i * ldo + d] *= inv[i];
            }
            if (s1) {
#pragma omp atomic write
                st = s1;
            }
        }
    }
    buf_put(&sb);
    return st;
}

/* ---- blocks ------------------------------------------------------------------------------------- */

/* ResnetBlock2D for one big image (the VAE decoder's last levels): both convolutions run on
 * row slabs with GroupNorm+SiLU applied as the slabs are made, conv2 writes over its own input,
 * and the shortcut is accumulated into the result by one GEMM, so the block holds only x and
 * h (a 256 -> 128 block at 512x512: 402 MB instead of 670). */
static dc_tensor *resnet_slabs(sd_store *s, const char *prefix, dc_tensor *x, const float *tproj, int64_t o,
                               int groups, float eps, float output_scale)
{
    char n[512];
    const int64_t C = x->shape[1], H = x->shape[2], W = x->shape[3], HW = H * W;
    dc_tensor *w1 = sd_wt(s, NAME(n, "%s.conv1.weight", prefix), 4, (int64_t[]){o, C, 3, 3});
    dc_tensor *w2 = sd_wt(s, NAME(n, "%s.conv2.weight", prefix), 4, (int64_t[]){o, o, 3, 3});
    dc_tensor *wsc = C != o ? sd_wt(s, NAME(n, "%s.conv_shortcut.weight", prefix), 4, (int64_t[]){o, C, 1, 1}) : NULL;
    si_vec n1w = {0}, n1b = {0}, n2w = {0}, n2b = {0}, c1b = {0}, c2b = {0}, scb = {0};
    float *ab = dc__malloc(sizeof(float) * (size_t)(2 * C + 2 * o));
    dc_tensor *h = sd_tensor_new(4, (int64_t[]){1, o, H, W});
    si_buf wb = {0};
    dc_status st = DC_OK;
    if (!w1 || !w2 || (C != o && !wsc) || !ab || !h || !vec_get(s, NAME(n, "%s.norm1.weight", prefix), C, &n1w) ||
        !vec_get(s, NAME(n, "%s.norm1.bias", prefix), C, &n1b) ||
        !vec_get(s, NAME(n, "%s.norm2.weight", prefix), o, &n2w) ||
        !vec_get(s, NAME(n, "%s.norm2.bias", prefix), o, &n2b) ||
        !vec_get(s, NAME(n, "%s.conv1.bias", prefix), o, &c1b) ||
        !vec_get(s, NAME(n, "%s.conv2.bias", prefix), o, &c2b) ||
        (wsc && !vec_get(s, NAME(n, "%s.conv_shortcut.bias", prefix), o, &scb)))
        st = dc_last_status();
    if (!st) {
        gn_coeffs(F(x), 1, C, HW, groups, n1w.p, n1b.p, eps, ab, ab + C);
        slab_src src = {.fill = fill_gn_silu, .x = F(x), .c = C, .h = H, .w = W, .a = ab, .b = ab + C};
        st = conv3x3_slabs(&src, H, W, w1, c1b.p, o, F(h));
    }
    float *hp = h ? F(h) : NULL;
    if (!st && tproj) {
#pragma omp parallel for schedule(static)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t i = 0; i < HW; i++) hp[oc * HW + i] += tproj[oc];
    }
    if (!st) {
        float *a2 = ab + 2 * C, *b2 = a2 + o;
        gn_coeffs(hp, 1, o, HW, groups, n2w.p, n2b.p, eps, a2, b2);
        slab_src src = {.fill = fill_gn_silu, .x = hp, .c = o, .h = H, .w = W, .a = a2, .b = b2};
        st = conv3x3_slabs(&src, H, W, w2, c2b.p, o, hp);
    }
    if (!st && wsc) { /* h += W_sc x + b_sc */
#pragma omp parallel for schedule(static)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t i = 0; i < HW; i++) hp[oc * HW + i] += scb.p[oc];
        if (wsc->dtype != DC_F32 && !buf_get(&wb, o * C)) st = dc_last_status();
        if (!st)
            st = cpu()->gemm(DC_NO_TRANS, DC_NO_TRANS, o, HW, C, 1.0f, wrows(wsc, 0, o, C, wb.p), C, F(x), HW, 1.0f,
                             hp, HW);
    } else if (!st) {
        const float *xp = F(x);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < o * HW; i++) hp[i] += xp[i];
    }
    if (!st && output_scale != 1.0f) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < o * HW; i++) hp[i] /= output_scale;
    }
    si_vec *vs[7] = {&n1w, &n1b, &n2w, &n2b, &c1b, &c2b, &scb};
    for (int i = 0; i < 7; i++) vec_put(vs[i]);
    if (wb.p) buf_put(&wb);
    free(ab);
    drop(x);
    if (st) {
        drop(h);
        return NULL;
    }
    return h;
}

/* Whether a one-image block at this size takes the slab path. */
static bool use_slabs(const dc_tensor *x, int64_t o)
{
    return x->shape[0] == 1 && x->shape[1] * x->shape[2] * x->shape[3] >= sd__slab_min_floats &&
           DC_MAX(x->shape[1], o) * o * 9 <= SLAB_MAX_WEIGHT;
}

/* diffusers' ResnetBlock2D on x (consumed); temb_silu [B, T] (SiLU already applied) or NULL. */
dc_tensor *sdi_resnet(sd_store *s, const char *prefix, dc_tensor *x, const dc_tensor *temb_silu,
                      int64_t out_ch, int groups, float eps, float output_scale)
{
    if (!x) return NULL;
    char n[512];
    const int64_t B = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    if (groups <= 0 || C % groups || out_ch % groups) {
        dc_set_error(DC_ERR_SHAPE, "%s: %s: %lld -> %lld channels do not split into %d groups", s->what, prefix,
                     (long long)C, (long long)out_ch, groups);
        drop(x);
        return NULL;
    }
    float *tp = NULL; /* time_emb_proj(SiLU(temb)) [B, out] */
    if (temb_silu) {
        const int64_t T = temb_silu->shape[1];
        tp = dc__malloc(sizeof(float) * (size_t)(B * out_ch));
        if (!tp || linear_into(s, NAME(n, "%s.time_emb_proj", prefix), F(temb_silu), T, false, B, T, out_ch, true, tp,
                               out_ch, false)) {
            free(tp);
            drop(x);
            return NULL;
        }
    }
    if (use_slabs(x, out_ch)) {
        dc_tensor *y = resnet_slabs(s, prefix, x, tp, out_ch, groups, eps, output_scale);
        free(tp);
        return y;
    }
    /* the shortcut first: then x is dead after norm1 and can be normalised in place */
    dc_tensor *sc = C != out_ch ? sdi_conv(s, NAME(n, "%s.conv_shortcut", prefix), x, out_ch, 1, 1, 0)
                                : dc_tensor_retain(x);
    if (!sc) {
        free(tp);
        drop(x);
        return NULL;
    }
    dc_tensor *h = sdi_group_norm(s, NAME(n, "%s.norm1", prefix), x, groups, eps, true);
    dc_tensor *h1 = sdi_conv(s, NAME(n, "%s.conv1", prefix), h, out_ch, 3, 1, 1);
    drop(h);
    if (h1 && tp) {
        float *hp = F(h1);
#pragma omp parallel for schedule(static)
        for (int64_t bo = 0; bo < B * out_ch; bo++)
            for (int64_t i = 0; i < HW; i++) hp[bo * HW + i] += tp[bo];
    }
    free(tp);
    h1 = sdi_group_norm(s, NAME(n, "%s.norm2", prefix), h1, groups, eps, true);
    dc_tensor *h2 = sdi_conv(s, NAME(n, "%s.conv2", prefix), h1, out_ch, 3, 1, 1);
    drop(h1);
    if (h2) {
        float *hp = F(h2);
        const float *sp = F(sc);
        const int64_t total = dc_numel(h2);
        if (output_scale != 1.0f) {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < total; i++) hp[i] = (sp[i] + hp[i]) / output_scale;
        } else {
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < total; i++) hp[i] = sp[i] + hp[i];
        }
    }
    drop(sc);
    return h2;
}

/* y [B, C, P] (residual x, consumed) = x + W t^T + b for token rows t [B, P, C]: diffusers'
 * proj_out / to_out followed by the residual add, folded into the GEMM's accumulator. */
static dc_tensor *tokens_out_residual(sd_store *s, const char *prefix, const float *t, dc_tensor *x, bool conv_w)
{
    const int64_t B = x->shape[0], C = x->shape[1], P = dc_numel(x) / (B * C);
    char n[512];
    dc_tensor *y = unique(x) ? dc_tensor_retain(x) : sd_tensor_new(x->ndim, x->shape);
    if (!y) {
        drop(x);
        return NULL;
    }
    if (y != x) memcpy(F(y), F(x), (size_t)dc_numel(x) * sizeof(float));
    drop(x);
    dc_tensor *w = sd_wt(s, NAME(n, "%s.weight", prefix), conv_w ? 4 : 2,
                         conv_w ? (int64_t[]){C, C, 1, 1} : (int64_t[]){C, C});
    si_vec b = {0};
    si_buf wb = {0};
    dc_status st = DC_OK;
    if (!w || !vec_get(s, NAME(n, "%s.bias", prefix), C, &b)) st = dc_last_status();
    if (!st && w->dtype != DC_F32 && !buf_get(&wb, C * C)) st = dc_last_status();
    if (!st) {
        const float *wp = wrows(w, 0, C, C, wb.p);
        float *yp = F(y);
#pragma omp parallel for schedule(static)
        for (int64_t bc = 0; bc < B * C; bc++)
            for (int64_t i = 0; i < P; i++) yp[bc * P + i] += b.p[bc % C];
        for (int64_t bi = 0; bi < B && !st; bi++)
            st = cpu()->gemm(DC_NO_TRANS, DC_TRANS, C, P, C, 1.0f, wp, C, t + bi * P * C, C, 1.0f, yp + bi * C * P, P);
    }
    if (wb.p) buf_put(&wb);
    vec_put(&b);
    if (st) {
        drop(y);
        return NULL;
    }
    return y;
}

/* diffusers' Attention on a feature map (VAE mid block, UNet2DModel): group_norm, q/k/v,
 * attention, to_out and the residual, on x (consumed). */
dc_tensor *sdi_attn_block(sd_store *s, const char *prefix, dc_tensor *x, int heads, int groups, float eps)
{
    if (!x) return NULL;
    char n[512];
    const int64_t B = x->shape[0], C = x->shape[1], P = x->shape[2] * x->shape[3];
    dc_tensor *g = sd_tensor_new(x->ndim, x->shape);
    si_buf q = {0}, k = {0}, v = {0};
    si_vec gw = {0}, gb = {0};
    dc_status st = DC_OK;
    if (!g || !buf_get(&q, B * P * C) || !buf_get(&k, B * P * C) || !buf_get(&v, B * P * C) ||
        !vec_get(s, NAME(n, "%s.group_norm.weight", prefix), C, &gw) ||
        !vec_get(s, NAME(n, "%s.group_norm.bias", prefix), C, &gb))
        st = dc_last_status();
    if (!st && (groups <= 0 || C % groups || heads <= 0 || C % heads))
        st = dc_set_error(DC_ERR_SHAPE, "%s: %s: %lld channels do not split into %d groups and %d heads", s->what,
                          prefix, (long long)C, groups, heads);
    if (!st) gn_kernel(F(x), F(g), B, C, P, groups, gw.p, gb.p, eps, false);
    vec_put(&gw);
    vec_put(&gb);
    /* q, k, v [B, P, C] straight from the channel-major normalised map */
    const char *names[3] = {"to_q", "to_k", "to_v"};
    float *dst[3] = {q.p, k.p, v.p};
    for (int i = 0; i < 3 && !st; i++)
        for (int64_t bi = 0; bi < B && !st; bi++)
            st = linear_into(s, NAME(n, "%s.%s", prefix, names[i]), F(g) + bi * C * P, P, true, P, C, C, true,
                             dst[i] + bi * P * C, C, false);
    drop(g);
    /* the output overwrites q: each (batch, head, rows) slice reads its own q block before
     * writing the same block of the output, and no other slice touches it */
    if (!st) st = sd_attention(q.p, C, k.p, C, v.p, C, q.p, C, B, P, P, heads, C / heads, false);
    if (k.p) buf_put(&k);
    if (v.p) buf_put(&v);
    dc_tensor *y = NULL;
    if (!st) y = tokens_out_residual(s, NAME(n, "%s.to_out.0", prefix), q.p, x, false);
    else drop(x);
    if (q.p) buf_put(&q);
    return y;
}

/* GEGLU feed-forward of the normalised rows a [M, C], added into h [M, C]. In column blocks
 * of the inner dimension: h += (p * gelu(g)) W2[:, block]^T with p, g the block's columns of
 * both proj halves, so no [M, 8C] projection is ever held (net.2's bias goes in first). */
static dc_status ff_geglu(sd_store *s, const char *prefix, const float *a, float *h, int64_t M, int64_t C)
{
    char n[512];
    const int64_t inner = 4 * C;
    dc_tensor *w1 = sd_wt(s, NAME(n, "%s.net.0.proj.weight", prefix), 2, (int64_t[]){2 * inner, C});
    dc_tensor *w2 = sd_wt(s, NAME(n, "%s.net.2.weight", prefix), 2, (int64_t[]){C, inner});
    if (!w1 || !w2) return dc_last_status();
    si_vec b1 = {0}, b2 = {0};
    si_buf pb = {0}, gbuf = {0}, wb = {0};
    dc_status st = DC_OK;
    int64_t jb = DC_MIN(inner, DC_MAX(16, sd__block_floats / DC_MAX(M, 1)));
    if (!vec_get(s, NAME(n, "%s.net.0.proj.bias", prefix), 2 * inner, &b1) ||
        !vec_get(s, NAME(n, "%s.net.2.bias", prefix), C, &b2) || !buf_get(&pb, M * jb) || !buf_get(&gbuf, M * jb) ||
        (w1->dtype != DC_F32 && !buf_get(&wb, 3 * jb * C)))
        st = dc_last_status();
    if (!st) {
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < M; r++)
            for (int64_t j = 0; j < C; j++) h[r * C + j] += b2.p[j];
    }
    const dc_backend *be = cpu();
    for (int64_t j0 = 0; j0 < inner && !st; j0 += jb) {
        const int64_t jj = DC_MIN(jb, inner - j0);
        float *P = pb.p, *G = gbuf.p;
        const float *wp = wrows(w1, j0, jj, C, wb.p), *wg = wrows(w1, inner + j0, jj, C, wb.p ? wb.p + jb * C : NULL);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < M; r++) {
            memcpy(P + r * jj, b1.p + j0, (size_t)jj * sizeof(float));
            memcpy(G + r * jj, b1.p + inner + j0, (size_t)jj * sizeof(float));
        }
        st = be->gemm(DC_NO_TRANS, DC_TRANS, M, jj, C, 1.0f, a, C, wp, C, 1.0f, P, jj);
        if (!st) st = be->gemm(DC_NO_TRANS, DC_TRANS, M, jj, C, 1.0f, a, C, wg, C, 1.0f, G, jj);
        if (st) break;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < M * jj; i++) {
            float g = G[i];
            P[i] *= g * 0.5f * (1.0f + dc__verff(g * (float)M_SQRT1_2));
        }
        /* net.2's columns [j0, j0 + jj): in place for F32, else widened row by row */
        const float *w2p = F(w2) + j0;
        int64_t ld2 = inner;
        if (w2->dtype != DC_F32) {
            float *dst = wb.p + 2 * jb * C;
            for (int64_t c = 0; c < C; c++) widen(w2, c * inner + j0, jj, dst + c * jj);
            w2p = dst;
            ld2 = jj;
        }
        st = be->gemm(DC_NO_TRANS, DC_TRANS, M, C, jj, 1.0f, P, jj, w2p, ld2, 1.0f, h, C);
    }
    vec_put(&b1);
    vec_put(&b2);
    if (pb.p) buf_put(&pb);
    if (gbuf.p) buf_put(&gbuf);
    if (wb.p) buf_put(&wb);
    return st;
}

/* q/k/v projections, attention and to_out (+ the residual, into h [M, C]) of one attention
 * layer on the normalised rows a [M, C] (overwritten with the attention output: it is dead
 * once projected); ctx [B, S, Dc], or NULL for self-attention. */
static dc_status attention_layer(sd_store *s, const char *prefix, float *a, float *h, const dc_tensor *ctx,
                                 int64_t B, int64_t P, int64_t C, int heads, float *qb, float *kb, float *vb)
{
    char n[512];
    const int64_t M = B * P;
    const float *src = ctx ? F(ctx) : a;
    const int64_t S = ctx ? ctx->shape[1] : P, Dc = ctx ? ctx->shape[2] : C;
    dc_status st = linear_into(s, NAME(n, "%s.to_q", prefix), a, C, false, M, C, C, false, qb, C, false);
    if (!st) st = linear_into(s, NAME(n, "%s.to_k", prefix), src, Dc, false, B * S, Dc, C, false, kb, C, false);
    if (!st) st = linear_into(s, NAME(n, "%s.to_v", prefix), src, Dc, false, B * S, Dc, C, false, vb, C, false);
    if (!st) st = sd_attention(qb, C, kb, C, vb, C, a, C, B, P, S, heads, C / heads, false);
    if (!st) st = linear_into(s, NAME(n, "%s.to_out.0", prefix), a, C, false, M, C, C, true, h, C, true);
    return st;
}

dc_tensor *sdi_transformer(sd_store *s, const char *prefix, dc_tensor *x, const dc_tensor *ctx, int heads, int groups,
                           int layers, bool linear_proj)
{
    if (!x) return NULL;
    char n[512], p[400];
    const int64_t B = x->shape[0], C = x->shape[1], P = x->shape[2] * x->shape[3], M = B * P;
    const int64_t S = ctx ? DC_MAX(P, ctx->shape[1]) : P;
    if (heads <= 0 || C % heads || groups <= 0 || C % groups) {
        dc_set_error(DC_ERR_SHAPE, "%s: %s: %lld channels do not split into %d heads and %d groups", s->what, prefix,
                     (long long)C, heads, groups);
        drop(x);
        return NULL;
    }
    dc_tensor *g = sd_tensor_new(x->ndim, x->shape);
    si_buf h = {0}, a = {0}, qb = {0}, kb = {0}, vb = {0};
    si_vec gw = {0}, gb = {0};
    dc_status st = DC_OK;
    if (!g || !buf_get(&h, M * C) || !buf_get(&a, M * C) || !buf_get(&qb, M * C) || !buf_get(&kb, B * S * C) ||
        !buf_get(&vb, B * S * C) ||
        !vec_get(s, NAME(n, "%s.norm.weight", prefix), C, &gw) || !vec_get(s, NAME(n, "%s.norm.bias", prefix), C, &gb))
        st = dc_last_status();
    if (!st) gn_kernel(F(x), F(g), B, C, P, groups, gw.p, gb.p, 1e-6f, false);
    vec_put(&gw);
    vec_put(&gb);
    /* proj_in (a 1x1 conv or a linear: the same product) straight into token rows */
    for (int64_t bi = 0; bi < B && !st; bi++)
        st = linear_into(s, NAME(n, "%s.proj_in", prefix), F(g) + bi * C * P, P, true, P, C, C, true,
                         h.p + bi * P * C, C, false);
    drop(g);
    for (int l = 0; l < layers && !st; l++) {
        NAME(p, "%s.transformer_blocks.%d", prefix, l);
        st = layer_norm(s, NAME(n, "%s.norm1", p), h.p, a.p, M, C, 1e-5f);
        if (!st) st = attention_layer(s, NAME(n, "%s.attn1", p), a.p, h.p, NULL, B, P, C, heads, qb.p, kb.p, vb.p);
        if (!st) st = layer_norm(s, NAME(n, "%s.norm2", p), h.p, a.p, M, C, 1e-5f);
        if (!st) st = attention_layer(s, NAME(n, "%s.attn2", p), a.p, h.p, ctx, B, P, C, heads, qb.p, kb.p, vb.p);
        if (!st) st = layer_norm(s, NAME(n, "%s.norm3", p), h.p, a.p, M, C, 1e-5f);
        if (!st) st = ff_geglu(s, NAME(n, "%s.ff", p), a.p, h.p, M, C);
    }
    if (a.p) buf_put(&a);
    if (qb.p) buf_put(&qb);
    if (kb.p) buf_put(&kb);
    if (vb.p) buf_put(&vb);
    dc_tensor *y = NULL;
    if (!st) y = tokens_out_residual(s, NAME(n, "%s.proj_out", prefix), h.p, x, !linear_proj);
    else drop(x);
    if (h.p) buf_put(&h);
    return y;
}

/* nearest resize of x [B, C, H, W] to oh x ow: torch picks src = floor(dst * in / out) */
static void nearest(const float *x, float *y, int64_t NC, int64_t H, int64_t W, int64_t oh, int64_t ow)
{
    const float sh = (float)H / (float)oh, sw = (float)W / (float)ow;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < NC; c++)
        for (int64_t i = 0; i < oh; i++) {
            const int64_t si = DC_MIN((int64_t)floorf((float)i * sh), H - 1);
            const float *xr = x + (c * H + si) * W;
            float *yr = y + (c * oh + i) * ow;
            for (int64_t j = 0; j < ow; j++) yr[j] = xr[DC_MIN((int64_t)floorf((float)j * sw), W - 1)];
        }
}

dc_tensor *sdi_upsample(sd_store *s, const char *prefix, dc_tensor *x, int64_t oh, int64_t ow)
{
    if (!x) return NULL;
    char n[512];
    const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (oh <= 0 || ow <= 0) oh = 2 * H, ow = 2 * W;
    if (B == 1 && oh == 2 * H && ow == 2 * W && C * oh * ow >= sd__slab_min_floats && C * C * 9 <= SLAB_MAX_WEIGHT) {
        /* one big image: the upsampled map exists only a slab at a time */
        dc_tensor *w = sd_wt(s, NAME(n, "%s.conv.weight", prefix), 4, (int64_t[]){C, C, 3, 3});
        si_vec b = {0};
        dc_tensor *y = NULL;
        if (w && vec_get(s, NAME(n, "%s.conv.bias", prefix), C, &b)) y = sd_tensor_new(4, (int64_t[]){1, C, oh, ow});
        slab_src src = {.fill = fill_up2, .x = F(x), .c = C, .h = H, .w = W};
        if (y && conv3x3_slabs(&src, oh, ow, w, b.p, C, F(y))) {
            drop(y);
            y = NULL;
        }
        vec_put(&b);
        drop(x);
        return y;
    }
    dc_tensor *u = sd_tensor_new(4, (int64_t[]){B, C, oh, ow});
    if (u) nearest(F(x), F(u), B * C, H, W, oh, ow);
    drop(x);
    dc_tensor *y = u ? sdi_conv(s, NAME(n, "%s.conv", prefix), u, C, 3, 1, 1) : NULL;
    drop(u);
    return y;
}

dc_tensor *sdi_downsample(sd_store *s, const char *prefix, dc_tensor *x, int padding)
{
    if (!x) return NULL;
    char n[512];
    const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    dc_tensor *y;
    if (padding == 0) { /* diffusers pads right and bottom by one, then a padding-0 conv */
        dc_tensor *xp = sd_tensor_new(4, (int64_t[]){B, C, H + 1, W + 1});
        if (xp) {
            float *d = F(xp);
            const float *src = F(x);
#pragma omp parallel for schedule(static)
            for (int64_t c = 0; c < B * C; c++) {
                for (int64_t i = 0; i < H; i++) {
                    memcpy(d + (c * (H + 1) + i) * (W + 1), src + (c * H + i) * W, (size_t)W * sizeof(float));
                    d[(c * (H + 1) + i) * (W + 1) + W] = 0.0f;
                }
                memset(d + (c * (H + 1) + H) * (W + 1), 0, (size_t)(W + 1) * sizeof(float));
            }
        }
        y = xp ? sdi_conv(s, NAME(n, "%s.conv", prefix), xp, C, 3, 2, 0) : NULL;
        drop(xp);
    } else {
        y = sdi_conv(s, NAME(n, "%s.conv", prefix), x, C, 3, 2, padding);
    }
    drop(x);
    return y;
}

dc_tensor *sdi_cat(dc_tensor *a, dc_tensor *b)
{
    dc_tensor *y = NULL;
    if (a && b) {
        const int64_t B = a->shape[0], C1 = a->shape[1], C2 = b->shape[1], HW = a->shape[2] * a->shape[3];
        y = sd_tensor_new(4, (int64_t[]){B, C1 + C2, a->shape[2], a->shape[3]});
        if (y)
            for (int64_t i = 0; i < B; i++) {
                memcpy(F(y) + i * (C1 + C2) * HW, F(a) + i * C1 * HW, (size_t)(C1 * HW) * sizeof(float));
                memcpy(F(y) + (i * (C1 + C2) + C1) * HW, F(b) + i * C2 * HW, (size_t)(C2 * HW) * sizeof(float));
            }
    }
    drop(a);
    drop(b);
    return y;
}

dc_tensor *sdi_own(dc_tensor *t)
{
    /* a pool temporary (or a borrowed tensor) as a contiguous tensor the caller owns */
    if (!t) return NULL;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *c = dc_contiguous(t);
    if (c && c->dtype != DC_F32) c = dc_to_dtype(c, DC_F32);
    if (c) dc_tensor_retain(c);
    dc_pool_pop(m);
    return c;
}
