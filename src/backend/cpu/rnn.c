/* rnn.c: CPU kernels of the rnn group (see ../kernels_rnn.h): whole recurrent layers (RNN
 * tanh/relu, GRU, LSTM) forward and backward through time, and fused attention.
 *
 * The GEMMs go to the backend's sgemm (OpenBLAS). The gate nonlinearities use the local
 * branch-free exp/tanh/sigmoid below instead of libm: libm's scalar calls do not vectorize and
 * at hidden 64, batch 32 they would cost more than the GEMMs. They are within 3e-7 relative of
 * the exact functions (checked by tests/test_rnn.c against PyTorch at 1e-5).
 *
 * Elementwise passes run over rows of the batch and are split across OpenMP threads only when
 * a step is big enough to pay for a parallel region (a region costs about a microsecond, a
 * whole step at the seq2seq sizes a few). Each element is computed by exactly one thread and
 * every reduction has a fixed order, so results do not depend on the thread count. */
#include <math.h>
#include <omp.h>

#include "../../core/internal.h"
#include "parallel.h"
#include "../kernels_elementwise.h" /* dc__exp_poly */
#include "../kernels_rnn.h"

/* deepc never unmasks floating-point exceptions, so the only effect of GCC's default
 * -ftrapping-math here would be to keep it from if-converting the clamps and selects of the
 * exp/tanh below, which leaves every gate loop scalar (4x slower at hidden 64). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

dc_status dc__cpu_gemm(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                       float beta, float *c, int64_t ldc);

/* Below this many elements per pass, one thread does it all. */
#define PAR_MIN 32768

/* ---------------------------------------------------------------------------------------
 * Vectorizable math (branch-free so GCC turns the loops into AVX2/AVX-512 code)
 * ------------------------------------------------------------------------------------- */

/* exp(x): Cephes' range reduction x = n ln2 + r and degree-6 polynomial for e^r, then the
 * exponent bits set directly; about 1e-7 relative over the float range. */
static inline float vexpf(float x)
{
    x = x < -87.0f ? -87.0f : x; /* not fminf/fmaxf: their NaN rules keep GCC scalar */
    x = x > 88.0f ? 88.0f : x;
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f; /* ln2 split in two so n*ln2_hi is exact */
    r = r + n * 2.12194440e-4f;
    float p = dc__exp_poly(r);
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, 4);
    return p * s;
}

static inline float vsigmoidf(float x) { return 1.0f / (1.0f + vexpf(-x)); }

/* tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)); below |x| = 0.25 that formula cancels, so an odd
 * Taylor polynomial (error < 3e-9 there) is used instead, blended without a branch. */
static inline float vtanhf(float x)
{
    float ax = fabsf(x);
    float xs = x < -0.25f ? -0.25f : x;
    xs = xs > 0.25f ? 0.25f : xs;
    float x2 = xs * xs;
    float ps = xs * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f + x2 * 0.0218694885f))));
    float e = vexpf(2.0f * ax);
    float pl = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    float small = (float)(ax < 0.25f);
    return small * ps + (1.0f - small) * pl;
}

/* dot product with 16 independent partial sums (a fixed order, so deterministic), which GCC
 * keeps in vector registers; a plain `s += a[j] * b[j]` is a serial float chain it may not
 * reorder. */
static inline float dotf(const float *restrict a, const float *restrict b, int64_t n)
{
    float acc[16] = {0};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[j + l] * b[j + l];
    float s = 0.0f;
    for (; j < n; j++) s += a[j] * b[j];
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

static inline bool row_active(const int64_t *lengths, int64_t b, int64_t t)
{
    return !lengths || t < lengths[b];
}

/* ---------------------------------------------------------------------------------------
 * Layer forward
 *
 * RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh)
 * GRU:  r = s(W_ir x + b_ir + W_hr h + b_hr), z = s(W_iz x + b_iz + W_hz h + b_hz),
 *       n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h
 * LSTM: i, f, o = s(...), g = tanh(...), c' = f c + i g, h' = o tanh(c')
 * ------------------------------------------------------------------------------------- */

/* the gates of one row at one step; xw/hw are the input/hidden projections of that row
 * (xw with b_ih already added, hw without b_hh). bhh is never NULL (zeros when the layer
 * has no bias): a conditional load would keep GCC from vectorizing the loops. */
static inline void step_row(int mode, int64_t H, const float *restrict xw, const float *restrict hw,
                            const float *restrict bhh, const float *restrict hprev,
                            const float *restrict cprev, float *restrict h, float *restrict c,
                            float *restrict g)
{
    switch (mode) {
    case DC_K_RNN_TANH:
        for (int64_t j = 0; j < H; j++) h[j] = vtanhf(xw[j] + hw[j] + bhh[j]);
        break;
    case DC_K_RNN_RELU:
        for (int64_t j = 0; j < H; j++) {
            float p = xw[j] + hw[j] + bhh[j];
            h[j] = p > 0.0f ? p : 0.0f;
        }
        break;
    case DC_K_GRU:
        for (int64_t j = 0; j < H; j++) {
            float br = bhh[j], bz = bhh[H + j], bn = bhh[2 * H + j];
            float r = vsigmoidf(xw[j] + hw[j] + br);
            float z = vsigmoidf(xw[H + j] + hw[H + j] + bz);
            float hn = hw[2 * H + j] + bn;
            float n = vtanhf(xw[2 * H + j] + r * hn);
            h[j] = (1.0f - z) * n + z * hprev[j];
            g[j] = r, g[H + j] = z, g[2 * H + j] = n, g[3 * H + j] = hn;
        }
        break;
    case DC_K_LSTM:
        for (int64_t j = 0; j < H; j++) {
            float bi = bhh[j], bf = bhh[H + j], bg = bhh[2 * H + j], bo = bhh[3 * H + j];
            float i = vsigmoidf(xw[j] + hw[j] + bi);
            float f = vsigmoidf(xw[H + j] + hw[H + j] + bf);
            float gg = vtanhf(xw[2 * H + j] + hw[2 * H + j] + bg);
            float o = vsigmoidf(xw[3 * H + j] + hw[3 * H + j] + bo);
            float cn = f * cprev[j] + i * gg;
            c[j] = cn;
            h[j] = o * vtanhf(cn);
            g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
        }
        break;
    }
}

static dc_status layer_forward(const dc_rnn_dims *d, const float *x, const float *h0, const float *c0,
                               const dc_rnn_weights *w, const int64_t *lengths, float *y, float *hs,
                               float *cs, float *gates)
{
    const int mode = d->mode;
    const int64_t T = d->T, B = d->B, I = d->I, H = d->H;
    const int64_t G = dc_rnn_gate_count(mode), GH = G * H, S = dc_rnn_saved_gates(mode);
    if (T <= 0 || B <= 0) return DC_OK;
    const bool need_scratch_gates = S > 0 && !gates;
    /* scratch: input projections of all steps, the hidden projection of one step, zero
     * initial states when none are given, and per-step gates for inference */
    size_t n_xw = (size_t)(T * B * GH), n_hw = (size_t)(B * GH), n_zero = (size_t)(B * DC_MAX(H, GH));
    size_t n_g = need_scratch_gates ? (size_t)(B * S * H) : 0;
    float *scratch = malloc((n_xw + n_hw + n_zero + n_g) * sizeof(float));
    if (!scratch) return dc_set_error(DC_ERR_OOM, "rnn: out of memory for %zu floats of scratch", n_xw + n_hw);
    float *xw = scratch, *hw = xw + n_xw, *zero = hw + n_hw, *gscr = zero + n_zero;
    memset(zero, 0, n_zero * sizeof(float));
    if (!h0) h0 = zero;
    if (!c0) c0 = zero;
    const float *bhh = w->b_hh ? w->b_hh : zero;

    /* all input projections in one GEMM, bias rows first so the GEMM accumulates onto them */
    dc_status st;
    if (w->b_ih) {
        for (int64_t r = 0; r < T * B; r++) memcpy(xw + r * GH, w->b_ih, (size_t)GH * sizeof(float));
    }
    st = dc__cpu_gemm(DC_NO_TRANS, DC_TRANS, T * B, GH, I, 1.0f, x, I, w->w_ih, I, w->b_ih ? 1.0f : 0.0f, xw, GH);
    if (st) goto done;

    for (int64_t t = 0; t < T; t++) {
        const float *hprev = t == 0 ? h0 : hs + (t - 1) * B * H;
        const float *cprev = mode == DC_K_LSTM ? (t == 0 ? c0 : cs + (t - 1) * B * H) : NULL;
        if (t == 0 && hprev == zero) {
            memset(hw, 0, n_hw * sizeof(float));
        } else {
            st = dc__cpu_gemm(DC_NO_TRANS, DC_TRANS, B, GH, H, 1.0f, hprev, H, w->w_hh, H, 0.0f, hw, GH);
            if (st) goto done;
        }
        float *ht = hs + t * B * H, *yt = y + t * B * H;
        float *ct = mode == DC_K_LSTM ? cs + t * B * H : NULL;
        float *gt = S ? (gates ? gates + t * B * S * H : gscr) : NULL;
        DC_PAR_FOR(B * GH >= PAR_MIN, for (int64_t b = 0; b < B; b++) {
            float *hb = ht + b * H;
            if (!row_active(lengths, b, t)) { /* past this row's length: carry the state */
                memcpy(hb, hprev + b * H, (size_t)H * sizeof(float));
                if (ct) memcpy(ct + b * H, cprev + b * H, (size_t)H * sizeof(float));
                if (gt) memset(gt + b * S * H, 0, (size_t)(S * H) * sizeof(float));
                if (yt != ht) memset(yt + b * H, 0, (size_t)H * sizeof(float));
                continue;
            }
            step_row(mode, H, xw + (t * B + b) * GH, hw + b * GH, bhh, hprev + b * H,
                     cprev ? cprev + b * H : NULL, hb, ct ? ct + b * H : NULL, gt ? gt + b * S * H : NULL);
            if (yt != ht) memcpy(yt + b * H, hb, (size_t)H * sizeof(float));
        });
    }
    st = DC_OK;
done:
    free(scratch);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Layer backward (BPTT). Per step, from dh (gradient of the state after the step, which is
 * the carried gradient plus dy[t]) and for LSTM dc:
 *
 * RNN:  da = dh * act'(a)     (tanh: 1 - h'^2; relu: h' > 0);  dh_prev = da W_hh
 * GRU:  dn = dh (1 - z), dz = dh (h - n), dan = dn (1 - n^2),
 *       dr = dan hn, dhn = dan r, dar = dr r (1 - r), daz = dz z (1 - z)
 *       input-side gate grads [dar, daz, dan], hidden-side [dar, daz, dhn]
 *       dh_prev = [dar, daz, dhn] W_hh + dh z
 * LSTM: dct = dc + dh o (1 - tanh^2 c'), do = dh tanh c', di = dct g, dg = dct i,
 *       df = dct c, dc_prev = dct f; dai = di i (1 - i), daf = df f (1 - f),
 *       dag = dg (1 - g^2), dao = do o (1 - o); dh_prev = [dai, daf, dag, dao] W_hh
 * Rows past their length pass dh (and dc) through unchanged and have zero gate grads.
 * Then, over all steps at once: dx = dG_i W_ih, dW_ih = dG_i^T x, db_ih = sum dG_i,
 * dW_hh = sum_t dG_h[t]^T h_{t-1}, db_hh = sum dG_h.
 * ------------------------------------------------------------------------------------- */

static void col_sums(const float *m, int64_t rows, int64_t cols, float *out)
{
    memset(out, 0, (size_t)cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) out[j] += m[r * cols + j];
}

/* one row of the GRU / LSTM backward step (math above); separate functions so the pointers
 * can be restrict and the loops vectorize */
static inline void gru_back_row(int64_t H, const float *restrict dhb, const float *restrict dyb,
                                const float *restrict gb, const float *restrict hp, float *restrict gi,
                                float *restrict gh, float *restrict dhdb)
{
    for (int64_t j = 0; j < H; j++) {
        float g = dhb[j] + dyb[j];
        float r = gb[j], z = gb[H + j], n = gb[2 * H + j], hn = gb[3 * H + j];
        float dn = g * (1.0f - z), dz = g * (hp[j] - n);
        float dan = dn * (1.0f - n * n);
        float dar = dan * hn * r * (1.0f - r);
        float daz = dz * z * (1.0f - z);
        gi[j] = dar, gi[H + j] = daz, gi[2 * H + j] = dan;
        gh[j] = dar, gh[H + j] = daz, gh[2 * H + j] = dan * r;
        dhdb[j] = g * z;
    }
}

static inline void lstm_back_row(int64_t H, const float *restrict dhb, const float *restrict dyb,
                                 const float *restrict gb, const float *restrict cb, const float *restrict cp,
                                 float *restrict gi, float *restrict dcb, float *restrict dhdb)
{
    for (int64_t j = 0; j < H; j++) {
        float g = dhb[j] + dyb[j];
        float i = gb[j], f = gb[H + j], gg = gb[2 * H + j], o = gb[3 * H + j];
        float tc = vtanhf(cb[j]);
        float dct = dcb[j] + g * o * (1.0f - tc * tc);
        gi[j] = dct * gg * i * (1.0f - i);
        gi[H + j] = dct * cp[j] * f * (1.0f - f);
        gi[2 * H + j] = dct * i * (1.0f - gg * gg);
        gi[3 * H + j] = g * tc * o * (1.0f - o);
        dcb[j] = dct * f;
        dhdb[j] = 0.0f;
    }
}

static dc_status layer_backward(const dc_rnn_dims *d, const float *x, const float *h0, const float *c0,
                                const dc_rnn_weights *w, const int64_t *lengths, const float *hs,
                                const float *cs, const float *gates, const float *dy, const float *dh_n,
                                const float *dc_n, float *dx, float *dh0, float *dc0, float *dw_ih,
                                float *dw_hh, float *db_ih, float *db_hh)
{
    const int mode = d->mode;
    const int64_t T = d->T, B = d->B, I = d->I, H = d->H;
    const int64_t G = dc_rnn_gate_count(mode), GH = G * H, S = dc_rnn_saved_gates(mode);
    const bool lstm = mode == DC_K_LSTM, gru = mode == DC_K_GRU;
    size_t n_dg = (size_t)(T * B * GH), n_bh = (size_t)(B * H);
    size_t total = n_dg * (gru ? 2 : 1) + 4 * n_bh;
    float *scratch = malloc(total * sizeof(float));
    if (!scratch) return dc_set_error(DC_ERR_OOM, "rnn backward: out of memory for %zu floats of scratch", total);
    float *dgi = scratch, *dgh = gru ? dgi + n_dg : dgi;
    float *dh = dgi + n_dg * (gru ? 2 : 1), *dhd = dh + n_bh, *dc = dhd + n_bh, *zero = dc + n_bh;
    memset(zero, 0, n_bh * sizeof(float));
    if (!h0) h0 = zero;
    if (!c0) c0 = zero;
    if (dh_n) memcpy(dh, dh_n, n_bh * sizeof(float));
    else memset(dh, 0, n_bh * sizeof(float));
    if (dc_n) memcpy(dc, dc_n, n_bh * sizeof(float));
    else memset(dc, 0, n_bh * sizeof(float));
    dc_status st = DC_OK;

    for (int64_t t = T - 1; t >= 0; t--) {
        const float *ht = hs + t * B * H;
        const float *hprev = t == 0 ? h0 : hs + (t - 1) * B * H;
        const float *ct = lstm ? cs + t * B * H : NULL;
        const float *cprev = lstm ? (t == 0 ? c0 : cs + (t - 1) * B * H) : NULL;
        const float *gt = S ? gates + t * B * S * H : NULL;
        float *dgit = dgi + t * B * GH, *dght = dgh + t * B * GH;
        DC_PAR_FOR(B * GH >= PAR_MIN, for (int64_t b = 0; b < B; b++) {
            float *dhb = dh + b * H, *dhdb = dhd + b * H, *dcb = dc + b * H;
            float *gi = dgit + b * GH, *gh = dght + b * GH;
            if (!row_active(lengths, b, t)) {
                memset(gi, 0, (size_t)GH * sizeof(float));
                if (gru) memset(gh, 0, (size_t)GH * sizeof(float));
                memcpy(dhdb, dhb, (size_t)H * sizeof(float)); /* dc stays as it is */
                continue;
            }
            const float *dyb = dy ? dy + (t * B + b) * H : zero + b * H; /* no branch in the loops */
            const float *hb = ht + b * H;
            if (mode == DC_K_RNN_TANH || mode == DC_K_RNN_RELU) {
                for (int64_t j = 0; j < H; j++) {
                    float g = dhb[j] + dyb[j];
                    float hv = hb[j];
                    gi[j] = mode == DC_K_RNN_TANH ? g * (1.0f - hv * hv) : (hv > 0.0f ? g : 0.0f);
                    dhdb[j] = 0.0f;
                }
            } else if (gru) {
                gru_back_row(H, dhb, dyb, gt + b * S * H, hprev + b * H, gi, gh, dhdb);
            } else {
                lstm_back_row(H, dhb, dyb, gt + b * S * H, ct + b * H, cprev + b * H, gi, dcb, dhdb);
            }
        });
        /* dh_prev = dG_h W_hh + direct term */
        memcpy(dh, dhd, n_bh * sizeof(float));
        if ((st = dc__cpu_gemm(DC_NO_TRANS, DC_NO_TRANS, B, H, GH, 1.0f, dght, GH, w->w_hh, H, 1.0f, dh, H)))
            goto done;
    }
    if (dh0) memcpy(dh0, dh, n_bh * sizeof(float));
    if (dc0 && lstm) memcpy(dc0, dc, n_bh * sizeof(float));
    if (dx && (st = dc__cpu_gemm(DC_NO_TRANS, DC_NO_TRANS, T * B, I, GH, 1.0f, dgi, GH, w->w_ih, I, 0.0f, dx, I)))
        goto done;
    if (dw_ih && (st = dc__cpu_gemm(DC_TRANS, DC_NO_TRANS, GH, I, T * B, 1.0f, dgi, GH, x, I, 0.0f, dw_ih, I)))
        goto done;
    if (dw_hh) {
        /* steps 1..T-1 see the stored states hs[0..T-2]; step 0 sees h0 */
        if (T > 1) {
            if ((st = dc__cpu_gemm(DC_TRANS, DC_NO_TRANS, GH, H, (T - 1) * B, 1.0f, dgh + B * GH, GH, hs, H,
                                   0.0f, dw_hh, H)))
                goto done;
        } else {
            memset(dw_hh, 0, (size_t)(GH * H) * sizeof(float));
        }
        if (h0 != zero &&
            (st = dc__cpu_gemm(DC_TRANS, DC_NO_TRANS, GH, H, B, 1.0f, dgh, GH, h0, H, 1.0f, dw_hh, H)))
            goto done;
    }
    if (db_ih) col_sums(dgi, T * B, GH, db_ih);
    if (db_hh) col_sums(dgh, T * B, GH, db_hh);
done:
    free(scratch);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Attention
 * ------------------------------------------------------------------------------------- */

static dc_status attention_forward(int kind, int64_t B, int64_t S, int64_t E, int64_t Ev, const float *q,
                                   const float *k, const float *val, const float *v, const int64_t *lengths,
                                   float *ctx, float *a, float *u)
{
    DC_PAR_FOR(B * S * E >= PAR_MIN, for (int64_t b = 0; b < B; b++) {
        int64_t n = lengths ? lengths[b] : S;
        const float *qb = q + b * E;
        float *ab = a + b * S;
        float mx = -INFINITY;
        float ubuf[256];
        for (int64_t s = 0; s < n; s++) {
            const float *ks = k + (b * S + s) * E;
            float e = 0.0f;
            if (kind == DC_K_ATTN_DOT) {
                e = dotf(qb, ks, E);
            } else {
                /* u = tanh(q + k) (kept for backward, or in chunks on the stack), e = v . u */
                float *us = u ? u + (b * S + s) * E : NULL;
                for (int64_t j0 = 0; j0 < E; j0 += 256) {
                    int64_t m = DC_MIN(256, E - j0);
                    float *ut = us ? us + j0 : ubuf;
                    for (int64_t j = 0; j < m; j++) ut[j] = vtanhf(qb[j0 + j] + ks[j0 + j]);
                    e += dotf(v + j0, ut, m);
                }
            }
            ab[s] = e;
            mx = e > mx ? e : mx;
        }
        /* softmax over the real positions; padded ones get exactly 0, as exp(-inf) in torch */
        float sum = 0.0f;
        for (int64_t s = 0; s < n; s++) {
            ab[s] = expf(ab[s] - mx);
            sum += ab[s];
        }
        float inv = 1.0f / sum;
        for (int64_t s = 0; s < n; s++) ab[s] *= inv;
        for (int64_t s = n; s < S; s++) ab[s] = 0.0f;
        if (u && kind != DC_K_ATTN_DOT && n < S) memset(u + (b * S + n) * E, 0, (size_t)((S - n) * E) * sizeof(float));
        float *cb = ctx + b * Ev;
        memset(cb, 0, (size_t)Ev * sizeof(float));
        for (int64_t s = 0; s < n; s++) {
            const float *vs = val + (b * S + s) * Ev;
            float w = ab[s];
            for (int64_t j = 0; j < Ev; j++) cb[j] += w * vs[j];
        }
    });
    return DC_OK;
}

/* Backward of attention, per query b over its n real positions:
 *   dval[s] = a[s] dctx;  da[s] = dctx . val[s];  de[s] = a[s] (da[s] - sum_s' a[s'] da[s'])
 *   dot:      dq = sum_s de[s] k[s];  dk[s] = de[s] q
 *   additive: dp[s,j] = de[s] v[j] (1 - u[s,j]^2);  dq[j] = sum_s dp[s,j];  dk[s,j] = dp[s,j];
 *             dv[j] = sum_{b,s} de[b,s] u[b,s,j]
 * Padded positions have a = 0 and get zero gradients. */
static dc_status attention_backward(int kind, int64_t B, int64_t S, int64_t E, int64_t Ev, const float *q,
                                    const float *k, const float *val, const float *v, const float *a,
                                    const float *u, const float *dctx, float *dq, float *dk, float *dval,
                                    float *dv)
{
    /* keys and values may be one tensor (dot attention over the encoder outputs): then
     * dk == dval and receives the sum of both gradients */
    const bool alias = dk && dk == dval;
    float *de_all = malloc((size_t)(B * S) * sizeof(float));
    if (!de_all) return dc_set_error(DC_ERR_OOM, "attention backward: out of memory");
    DC_PAR_FOR(B * S * E >= PAR_MIN, for (int64_t b = 0; b < B; b++) {
        const float *ab = a + b * S, *db = dctx + b * Ev;
        float *de = de_all + b * S;
        float dot = 0.0f;
        for (int64_t s = 0; s < S; s++) {
            const float *vs = val + (b * S + s) * Ev;
            float da = dotf(db, vs, Ev);
            de[s] = da;
            dot += ab[s] * da;
            if (dval) {
                float *dvs = dval + (b * S + s) * Ev;
                for (int64_t j = 0; j < Ev; j++) dvs[j] = ab[s] * db[j];
            }
        }
        for (int64_t s = 0; s < S; s++) de[s] = ab[s] * (de[s] - dot);
        float *dqb = dq ? dq + b * E : NULL;
        if (dqb) memset(dqb, 0, (size_t)E * sizeof(float));
        const float *qb = q + b * E;
        for (int64_t s = 0; s < S; s++) {
            float *dks = dk ? dk + (b * S + s) * E : NULL;
            if (kind == DC_K_ATTN_DOT) {
                const float *ks = k + (b * S + s) * E;
                if (dqb)
                    for (int64_t j = 0; j < E; j++) dqb[j] += de[s] * ks[j];
                if (dks && alias)
                    for (int64_t j = 0; j < E; j++) dks[j] += de[s] * qb[j];
                else if (dks)
                    for (int64_t j = 0; j < E; j++) dks[j] = de[s] * qb[j];
            } else {
                const float *us = u + (b * S + s) * E;
                for (int64_t j = 0; j < E; j++) {
                    float dp = de[s] * v[j] * (1.0f - us[j] * us[j]);
                    if (dqb) dqb[j] += dp;
                    if (dks) dks[j] = alias ? dks[j] + dp : dp;
                }
            }
        }
    });
    if (dv && kind != DC_K_ATTN_DOT) { /* one fixed summation order, outside the parallel loop */
        memset(dv, 0, (size_t)E * sizeof(float));
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++) {
                float de = de_all[b * S + s];
                const float *us = u + (b * S + s) * E;
                for (int64_t j = 0; j < E; j++) dv[j] += de * us[j];
            }
    }
    free(de_all);
    return DC_OK;
}

const struct dc_kernels_rnn dc_cpu_rnn_kernels = {
    .layer_forward = layer_forward,
    .layer_backward = layer_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
};
