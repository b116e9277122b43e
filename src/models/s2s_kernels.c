/* s2s_kernels.c: the float kernels of the encoder-decoder models (BART, T5) and their
 * decoding state: linear layers (a weight-streaming kernel for the few rows of a decoder step,
 * the backend's SGEMM for the encoder), layer norms, activations, encoder attention, and the
 * decoder's cached self-attention and cross-attention for all beams of one step.
 *
 * Why not the tensor ops: a decoder step is ~50 small matmuls on 1-8 rows; creating tensors,
 * pools and autograd checks for each would cost more than the arithmetic, and the caches must
 * be preallocated and written in place. Everything here works on caller-owned buffers and
 * allocates nothing per call. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/backend.h"
#include "summarize_internal.h"

/* ---- linear --------------------------------------------------------------------------------- */

typedef float v8f __attribute__((vector_size(32)));

static inline v8f ldu8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v); /* unaligned load: mmap'd safetensors data is only 4-byte aligned */
    return v;
}

static inline float hsum8(v8f v)
{
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* y[b, n] = dot(x[b], w[n]) for rows b < nb (nb <= 4) of x and one row n of W. Two vectors per
 * iteration and four rows of x: eight accumulators, W's row read once. */
static inline void dot_row4(const float *restrict w, const float *restrict x, int64_t K, int nb, float *out)
{
    v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
    const float *x0 = x, *x1 = x + K, *x2 = x + 2 * K, *x3 = x + 3 * K;
    int64_t k = 0;
    if (nb == 4) {
        for (; k + 16 <= K; k += 16) {
            v8f w0 = ldu8(w + k), w1 = ldu8(w + k + 8);
            a0 += w0 * ldu8(x0 + k); c0 += w1 * ldu8(x0 + k + 8);
            a1 += w0 * ldu8(x1 + k); c1 += w1 * ldu8(x1 + k + 8);
            a2 += w0 * ldu8(x2 + k); c2 += w1 * ldu8(x2 + k + 8);
            a3 += w0 * ldu8(x3 + k); c3 += w1 * ldu8(x3 + k + 8);
        }
    } else if (nb == 2 || nb == 3) {
        for (; k + 16 <= K; k += 16) {
            v8f w0 = ldu8(w + k), w1 = ldu8(w + k + 8);
            a0 += w0 * ldu8(x0 + k); c0 += w1 * ldu8(x0 + k + 8);
            a1 += w0 * ldu8(x1 + k); c1 += w1 * ldu8(x1 + k + 8);
            if (nb == 3) { a2 += w0 * ldu8(x2 + k); c2 += w1 * ldu8(x2 + k + 8); }
        }
    } else {
        for (; k + 16 <= K; k += 16) {
            a0 += ldu8(w + k) * ldu8(x0 + k);
            c0 += ldu8(w + k + 8) * ldu8(x0 + k + 8);
        }
    }
    float s[4] = {hsum8(a0 + c0), hsum8(a1 + c1), hsum8(a2 + c2), hsum8(a3 + c3)};
    for (; k < K; k++) {
        float wk = w[k];
        for (int b = 0; b < nb; b++) s[b] += wk * x[b * K + k];
    }
    for (int b = 0; b < nb; b++) out[b] = s[b];
}

/* Rows [r0, r1) of the concatenated outputs of n linears sharing the input x (m rows). */
static void linear_stream(const float *x, int64_t m, int n, const dc__lin *const *ls, float *const *ys)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += ls[i]->out;
    const int64_t K = ls[0]->in;
    /* static schedule: the same rows go to the same thread, so results are deterministic; one
     * parallel region for all n matrices (q, k and v of a step) saves two fork/joins */
#pragma omp parallel for schedule(static) if (total * K > 32768)
    for (int64_t r = 0; r < total; r++) {
        int i = 0;
        int64_t n0 = r;
        while (n0 >= ls[i]->out) n0 -= ls[i++]->out;
        const dc__lin *l = ls[i];
        const int64_t N = l->out;
        const float *w = l->w + n0 * K;
        float bias = l->b ? l->b[n0] : 0.0f;
        for (int64_t b0 = 0; b0 < m; b0 += 4) {
            int nb = (int)(m - b0 < 4 ? m - b0 : 4);
            float s[4];
            dot_row4(w, x + b0 * K, K, nb, s);
            for (int b = 0; b < nb; b++) ys[i][(b0 + b) * N + n0] = s[b] + bias;
        }
    }
}

void dc__linear_multi(const float *x, int64_t m, int n, const dc__lin *const *ls, float *const *ys)
{
    if (m <= 8) {
        linear_stream(x, m, n, ls, ys);
        return;
    }
    for (int i = 0; i < n; i++) dc__linear(x, m, ls[i], ys[i]);
}

void dc__linear(const float *x, int64_t m, const dc__lin *l, float *y)
{
    if (m <= 8) {
        linear_stream(x, m, 1, &l, &y);
        return;
    }
    const dc_backend *be = dc_backend_get(DC_CPU);
    be->gemm(DC_NO_TRANS, DC_TRANS, m, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 0.0f, y, l->out);
    if (l->b) {
#pragma omp parallel for schedule(static) if (m * l->out > 65536)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < l->out; j++) y[i * l->out + j] += l->b[j];
    }
}

/* ---- norms and activations ---------------------------------------------------------------- */

void dc__layer_norm_to(const float *x, float *y, int64_t m, int64_t d, const float *w, const float *b, float eps)
{
#pragma omp parallel for schedule(static) if (m * d > 65536)
    for (int64_t i = 0; i < m; i++) {
        const float *xi = x + i * d;
        float *yi = y + i * d;
        /* two passes in double: the mean and the biased variance, as torch's layer_norm */
        double mean = 0, var = 0;
        for (int64_t j = 0; j < d; j++) mean += xi[j];
        mean /= (double)d;
        for (int64_t j = 0; j < d; j++) var += ((double)xi[j] - mean) * ((double)xi[j] - mean);
        var /= (double)d;
        float rstd = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
        for (int64_t j = 0; j < d; j++) yi[j] = (xi[j] - mu) * rstd * (w ? w[j] : 1.0f) + (b ? b[j] : 0.0f);
    }
}

void dc__layer_norm(float *x, int64_t m, int64_t d, const float *w, const float *b, float eps)
{
    dc__layer_norm_to(x, x, m, d, w, b, eps);
}

void dc__rms_norm_to(const float *x, float *y, int64_t m, int64_t d, const float *w, float eps)
{
#pragma omp parallel for schedule(static) if (m * d > 65536)
    for (int64_t i = 0; i < m; i++) {
        const float *xi = x + i * d;
        float *yi = y + i * d;
        double ss = 0;
        for (int64_t j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        /* T5LayerNorm: hidden * rsqrt(mean(hidden^2) + eps), then weight * hidden */
        float r = 1.0f / sqrtf((float)(ss / (double)d) + eps);
        for (int64_t j = 0; j < d; j++) yi[j] = w[j] * (xi[j] * r);
    }
}

bool dc__act_parse(const char *name, dc__act *out)
{
    static const struct { const char *name; dc__act act; } acts[] = {
        {"gelu", DC__ACT_GELU},      {"gelu_new", DC__ACT_GELU_NEW}, {"gelu_pytorch_tanh", DC__ACT_GELU_NEW},
        {"gelu_fast", DC__ACT_GELU_NEW}, {"relu", DC__ACT_RELU},     {"silu", DC__ACT_SILU},
        {"swish", DC__ACT_SILU},     {"tanh", DC__ACT_TANH},
    };
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (strcmp(name, acts[i].name) == 0) {
            *out = acts[i].act;
            return true;
        }
    return false;
}

void dc__activate(float *x, int64_t n, dc__act act)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        switch (act) {
        case DC__ACT_GELU: v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); break;
        case DC__ACT_GELU_NEW:
            v = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
            break;
        case DC__ACT_RELU: v = v > 0 ? v : 0.0f; break;
        case DC__ACT_SILU: v = v / (1.0f + expf(-v)); break;
        case DC__ACT_TANH: v = tanhf(v); break;
        }
        x[i] = v;
    }
}

void dc__add(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

static void softmax_row(float *s, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    float sum = 0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

/* ---- attention ---------------------------------------------------------------------------- */

void dc__attention_full(const float *q, const float *k, const float *v, float *ctx, int64_t S, int heads,
                        int64_t hd, int64_t ld, float scale, const float *bias, float *scratch)
{
    const dc_backend *be = dc_backend_get(DC_CPU);
    for (int h = 0; h < heads; h++) {
        /* scores = scale * Q_h K_h^T: the heads are column blocks of the [S, ld] projections */
        be->gemm(DC_NO_TRANS, DC_TRANS, S, S, hd, scale, q + h * hd, ld, k + h * hd, ld, 0.0f, scratch, S);
        const float *bh = bias ? bias + (int64_t)h * S * S : NULL;
#pragma omp parallel for schedule(static) if (S * S > 16384)
        for (int64_t i = 0; i < S; i++) {
            float *row = scratch + i * S;
            if (bh)
                for (int64_t j = 0; j < S; j++) row[j] += bh[i * S + j];
            softmax_row(row, S);
        }
        be->gemm(DC_NO_TRANS, DC_NO_TRANS, S, hd, S, 1.0f, scratch, S, v + h * hd, ld, 0.0f, ctx + h * hd, ld);
    }
}

static inline float dot(const float *a, const float *b, int64_t n)
{
    v8f acc = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc += ldu8(a + i) * ldu8(b + i);
    float s = hsum8(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* c += p * v over n floats */
static inline void axpy(float *restrict c, float p, const float *restrict v, int64_t n)
{
    for (int64_t e = 0; e < n; e++) c[e] += p * v[e];
}

void dc__self_attention_step(dc__s2s_state *st, int layer, int64_t pos, int heads, int64_t hd, float scale,
                             const float *pos_bias)
{
    const int B = st->beams;
    const int64_t inner = (int64_t)heads * hd, T = st->max_len, n = pos + 1;
    const float *K = st->self_k + (int64_t)layer * T * B * inner;
    const float *V = st->self_v + (int64_t)layer * T * B * inner;
    int64_t stride = T > st->S ? T : st->S;
#pragma omp parallel for schedule(static) if (B * heads * n * hd > 8192)
    for (int bh = 0; bh < B * heads; bh++) {
        int b = bh / heads, h = bh % heads;
        const float *q = st->q + (int64_t)b * inner + h * hd;
        const int32_t *slot = st->slot + (int64_t)b * T;
        float *s = st->scores + (int64_t)bh * stride;
        for (int64_t j = 0; j < n; j++) {
            /* position j of row b was written by the beam that then sat in slot[j] */
            const float *kj = K + (j * B + slot[j]) * inner + h * hd;
            s[j] = scale * dot(q, kj, hd) + (pos_bias ? pos_bias[(int64_t)h * T + (pos - j)] : 0.0f);
        }
        softmax_row(s, n);
        float *c = st->ctx + (int64_t)b * inner + h * hd;
        for (int64_t e = 0; e < hd; e++) c[e] = 0;
        for (int64_t j = 0; j < n; j++) axpy(c, s[j], V + (j * B + slot[j]) * inner + h * hd, hd);
    }
}

void dc__cross_attention_step(dc__s2s_state *st, int layer, int heads, int64_t hd, float scale)
{
    const int B = st->beams;
    const int64_t inner = (int64_t)heads * hd, S = st->S;
    const float *K = st->cross_k + (int64_t)layer * S * inner;
    const float *V = st->cross_v + (int64_t)layer * S * inner;
    int64_t stride = st->max_len > S ? st->max_len : S;
    /* one head per iteration with all beams together: every beam attends to the same source,
     * so each key and value row is read once per step rather than once per beam */
#pragma omp parallel for schedule(static) if (B * heads * S * hd > 8192)
    for (int h = 0; h < heads; h++) {
        float *s = st->scores + (int64_t)h * B * stride;
        for (int64_t j = 0; j < S; j++) {
            const float *kj = K + j * inner + h * hd;
            for (int b = 0; b < B; b++) s[b * stride + j] = scale * dot(st->q + (int64_t)b * inner + h * hd, kj, hd);
        }
        for (int b = 0; b < B; b++) {
            softmax_row(s + b * stride, S);
            float *c = st->ctx + (int64_t)b * inner + h * hd;
            for (int64_t e = 0; e < hd; e++) c[e] = 0;
        }
        for (int64_t j = 0; j < S; j++) {
            const float *vj = V + j * inner + h * hd;
            for (int b = 0; b < B; b++) axpy(st->ctx + (int64_t)b * inner + h * hd, s[b * stride + j], vj, hd);
        }
    }
}

/* ---- decoding state ----------------------------------------------------------------------- */

dc__s2s_state *dc__s2s_state_new(dc_s2s_model *m, int64_t S, int beams, int64_t max_len)
{
    dc__s2s_state *st = calloc(1, sizeof *st);
    if (!st) goto oom;
    st->S = S;
    st->beams = beams;
    st->max_len = max_len;
    int64_t d = m->d_model, inner = m->inner, L = m->dec_layers;
    int64_t wide = d > inner ? d : inner;
    int64_t span = max_len > S ? max_len : S;
    st->enc = malloc((size_t)(S * d) * sizeof(float));
    st->cross_k = malloc((size_t)(L * S * inner) * sizeof(float));
    st->cross_v = malloc((size_t)(L * S * inner) * sizeof(float));
    st->self_k = malloc((size_t)(L * max_len * beams * inner) * sizeof(float));
    st->self_v = malloc((size_t)(L * max_len * beams * inner) * sizeof(float));
    st->slot = calloc((size_t)(beams * max_len), sizeof(int32_t));
    st->slot_tmp = calloc((size_t)(beams * max_len), sizeof(int32_t));
    st->x = malloc((size_t)(beams * wide) * sizeof(float));
    st->h = malloc((size_t)(beams * wide) * sizeof(float));
    st->q = malloc((size_t)(beams * inner) * sizeof(float));
    st->ctx = malloc((size_t)(beams * inner) * sizeof(float));
    st->ff = malloc((size_t)(beams * m->d_ff) * sizeof(float));
    st->ff2 = malloc((size_t)(beams * m->d_ff) * sizeof(float));
    st->scores = malloc((size_t)(beams * m->heads * span) * sizeof(float));
    if (m->arch == DC__ARCH_T5) st->pos_bias = malloc((size_t)(m->heads * max_len) * sizeof(float));
    if (!st->enc || !st->cross_k || !st->cross_v || !st->self_k || !st->self_v || !st->slot || !st->slot_tmp ||
        !st->x || !st->h || !st->q || !st->ctx || !st->ff || !st->ff2 || !st->scores ||
        (m->arch == DC__ARCH_T5 && !st->pos_bias)) {
        dc__s2s_state_free(st);
        goto oom;
    }
    for (int b = 0; b < beams; b++)
        for (int64_t j = 0; j < max_len; j++) st->slot[b * max_len + j] = b;
    if (m->arch == DC__ARCH_T5) {
        /* decoder self-attention bias by distance pos - j (unidirectional buckets) */
        for (int64_t dist = 0; dist < max_len; dist++) {
            int64_t bucket = dc__t5_bucket(-dist, false, m->rel_buckets, m->rel_max_distance);
            for (int64_t h = 0; h < m->heads; h++)
                st->pos_bias[h * max_len + dist] = m->dec_rel_bias[bucket * m->heads + h];
        }
    }
    return st;
oom:
    dc_set_error(DC_ERR_OOM, "summarize: out of memory for the decoding state (source %lld tokens, %d beams, "
                 "%lld steps)", (long long)S, beams, (long long)max_len);
    return NULL;
}

void dc__s2s_state_free(dc__s2s_state *st)
{
    if (!st) return;
    free(st->enc);
    free(st->cross_k);
    free(st->cross_v);
    free(st->self_k);
    free(st->self_v);
    free(st->slot);
    free(st->slot_tmp);
    free(st->x);
    free(st->h);
    free(st->q);
    free(st->ctx);
    free(st->ff);
    free(st->ff2);
    free(st->scores);
    free(st->pos_bias);
    free(st);
}
