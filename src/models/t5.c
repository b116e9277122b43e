/* t5.c: T5ForConditionalGeneration as transformers computes it. v1.0 (t5-small): ReLU FFN,
 * lm_head tied to the shared embedding with the decoder output scaled by d_model^-0.5. v1.1 /
 * Flan-T5 ("feed_forward_proj": "gated-gelu"): FFN wo(gelu_new(wi_0 x) * wi_1 x), untied
 * lm_head, no scaling. Both: pre-norm blocks with T5LayerNorm (RMS: no mean, no bias), bias-free
 * projections, attention scores NOT scaled by 1/sqrt(d_kv), and a relative position bias
 * (bucketed, bidirectional in the encoder, causal in the decoder) held by the first block of
 * each stack and shared by the others; cross-attention has no position bias. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summarize_internal.h"

int64_t dc__t5_bucket(int64_t rp, bool bidirectional, int64_t num_buckets, int64_t max_distance)
{
    int64_t bucket = 0;
    if (bidirectional) {
        num_buckets /= 2;
        if (rp > 0) bucket += num_buckets;
        rp = rp < 0 ? -rp : rp;
    } else {
        rp = rp < 0 ? -rp : 0; /* -min(rp, 0) */
    }
    int64_t max_exact = num_buckets / 2;
    if (rp < max_exact) return bucket + rp;
    /* float32 steps, as torch computes them on a float tensor (checked against torch for
     * |rp| < 3000 with the usual bucket settings) */
    float v = logf((float)rp / (float)max_exact) / (float)log((double)max_distance / (double)max_exact) *
              (float)(num_buckets - max_exact);
    int64_t large = max_exact + (int64_t)v;
    if (large > num_buckets - 1) large = num_buckets - 1;
    return bucket + large;
}

static const float *tw(dc_s2s_model *m, const char *name, int ndim, const int64_t *shape)
{
    return dc__hf_weight(m->hf, name, ndim, shape);
}

static bool lin(dc_s2s_model *m, dc__lin *l, const char *name, int64_t out, int64_t in)
{
    l->w = tw(m, name, 2, (const int64_t[]){out, in});
    l->b = NULL;
    l->out = out;
    l->in = in;
    return l->w != NULL;
}

static bool attn(dc_s2s_model *m, dc__attn_w *a, const char *prefix)
{
    char p[200];
    int64_t d = m->d_model, inner = m->inner;
    snprintf(p, sizeof p, "%s.q.weight", prefix);
    if (!lin(m, &a->q, p, inner, d)) return false;
    snprintf(p, sizeof p, "%s.k.weight", prefix);
    if (!lin(m, &a->k, p, inner, d)) return false;
    snprintf(p, sizeof p, "%s.v.weight", prefix);
    if (!lin(m, &a->v, p, inner, d)) return false;
    snprintf(p, sizeof p, "%s.o.weight", prefix);
    return lin(m, &a->o, p, d, inner);
}

static bool ffn(dc_s2s_model *m, dc__layer_w *w, const char *prefix)
{
    char p[200];
    int64_t d = m->d_model, F = m->d_ff;
    if (m->gated) {
        snprintf(p, sizeof p, "%s.DenseReluDense.wi_0.weight", prefix);
        if (!lin(m, &w->fc1, p, F, d)) return false;
        snprintf(p, sizeof p, "%s.DenseReluDense.wi_1.weight", prefix);
        if (!lin(m, &w->fc_gate, p, F, d)) return false;
    } else {
        snprintf(p, sizeof p, "%s.DenseReluDense.wi.weight", prefix);
        if (!lin(m, &w->fc1, p, F, d)) return false;
    }
    snprintf(p, sizeof p, "%s.DenseReluDense.wo.weight", prefix);
    return lin(m, &w->fc2, p, d, F);
}

static void ff_block(dc_s2s_model *m, const dc__layer_w *w, const float *n, int64_t rows, float *f, float *g,
                     float *out)
{
    if (m->gated) {
        dc__linear_multi(n, rows, 2, (const dc__lin *const[]){&w->fc1, &w->fc_gate}, (float *const[]){f, g});
        dc__activate(f, rows * m->d_ff, m->act);
        for (int64_t i = 0; i < rows * m->d_ff; i++) f[i] *= g[i];
    } else {
        dc__linear(n, rows, &w->fc1, f);
        dc__activate(f, rows * m->d_ff, m->act);
    }
    dc__linear(f, rows, &w->fc2, out);
}

static dc_status t5_encode(dc_s2s_model *m, dc__s2s_state *st, const int32_t *src, int64_t S)
{
    const int64_t d = m->d_model, F = m->d_ff, I = m->inner, H = m->heads;
    size_t n = (size_t)(S * d + 4 * S * I + S * d + 2 * S * F + S * S + H * S * S);
    float *buf = malloc(n * sizeof(float));
    if (!buf) return dc_set_error(DC_ERR_OOM, "summarize: out of memory encoding %lld tokens", (long long)S);
    float *x = buf, *q = x + S * d, *k = q + S * I, *v = k + S * I, *ctx = v + S * I, *o = ctx + S * I,
          *f = o + S * d, *g = f + S * F, *scratch = g + S * F, *bias = scratch + S * S;
    for (int64_t i = 0; i < S; i++) memcpy(x + i * d, m->enc_embed + (int64_t)src[i] * d, (size_t)d * sizeof(float));
    /* bias[h, i, j] = relative_attention_bias[bucket(j - i), h] */
    for (int64_t i = 0; i < S; i++)
        for (int64_t j = 0; j < S; j++) {
            int64_t bk = dc__t5_bucket(j - i, true, m->rel_buckets, m->rel_max_distance);
            for (int64_t h = 0; h < H; h++) bias[(h * S + i) * S + j] = m->enc_rel_bias[bk * H + h];
        }
    float *nrm = st->enc; /* scratch for the normed input until the final norm writes it */
    for (int64_t l = 0; l < m->enc_layers; l++) {
        const dc__layer_w *w = &m->enc[l];
        dc__rms_norm_to(x, nrm, S, d, w->ln_self_w, m->eps);
        dc__linear(nrm, S, &w->self.q, q);
        dc__linear(nrm, S, &w->self.k, k);
        dc__linear(nrm, S, &w->self.v, v);
        dc__attention_full(q, k, v, ctx, S, (int)H, m->head_dim, I, 1.0f, bias, scratch);
        dc__linear(ctx, S, &w->self.o, o);
        dc__add(x, o, S * d);
        dc__rms_norm_to(x, nrm, S, d, w->ln_ff_w, m->eps);
        ff_block(m, w, nrm, S, f, g, o);
        dc__add(x, o, S * d);
    }
    dc__rms_norm_to(x, st->enc, S, d, m->enc_final_ln, m->eps);
    free(buf);
    for (int64_t l = 0; l < m->dec_layers; l++) {
        dc__linear(st->enc, S, &m->dec[l].cross.k, st->cross_k + l * S * I);
        dc__linear(st->enc, S, &m->dec[l].cross.v, st->cross_v + l * S * I);
    }
    return DC_OK;
}

static void t5_step(dc_s2s_model *m, dc__s2s_state *st, const int32_t *tokens, int64_t pos, float *logits)
{
    const int B = st->beams;
    const int64_t d = m->d_model, I = m->inner, T = st->max_len, hd = m->head_dim;
    float *x = st->x, *h = st->h;
    for (int b = 0; b < B; b++) memcpy(x + b * d, m->dec_embed + (int64_t)tokens[b] * d, (size_t)d * sizeof(float));
    for (int64_t l = 0; l < m->dec_layers; l++) {
        const dc__layer_w *w = &m->dec[l];
        float *kc = st->self_k + ((l * T + pos) * B) * I, *vc = st->self_v + ((l * T + pos) * B) * I;
        dc__rms_norm_to(x, h, B, d, w->ln_self_w, m->eps);
        dc__linear_multi(h, B, 3, (const dc__lin *const[]){&w->self.q, &w->self.k, &w->self.v},
                         (float *const[]){st->q, kc, vc});
        dc__self_attention_step(st, (int)l, pos, (int)m->heads, hd, 1.0f, st->pos_bias);
        dc__linear(st->ctx, B, &w->self.o, h);
        dc__add(x, h, B * d);
        dc__rms_norm_to(x, h, B, d, w->ln_cross_w, m->eps);
        dc__linear(h, B, &w->cross.q, st->q);
        dc__cross_attention_step(st, (int)l, (int)m->heads, hd, 1.0f);
        dc__linear(st->ctx, B, &w->cross.o, h);
        dc__add(x, h, B * d);
        dc__rms_norm_to(x, h, B, d, w->ln_ff_w, m->eps);
        ff_block(m, w, h, B, st->ff, st->ff2, h);
        dc__add(x, h, B * d);
    }
    dc__rms_norm_to(x, h, B, d, m->dec_final_ln, m->eps);
    if (m->logit_scale != 1.0f)
        for (int64_t i = 0; i < B * d; i++) h[i] *= m->logit_scale;
    dc__linear(h, B, &m->lm_head, logits);
}

dc_status dc__t5_setup(dc_s2s_model *m)
{
    const cJSON *c = m->hf->config;
    m->d_model = dc__json_int(c, "d_model", 512);
    m->head_dim = dc__json_int(c, "d_kv", 64);
    m->heads = dc__json_int(c, "num_heads", 8);
    m->d_ff = dc__json_int(c, "d_ff", 2048);
    m->enc_layers = dc__json_int(c, "num_layers", 6);
    m->dec_layers = dc__json_int(c, "num_decoder_layers", m->enc_layers);
    m->vocab = dc__json_int(c, "vocab_size", 32128);
    m->rel_buckets = dc__json_int(c, "relative_attention_num_buckets", 32);
    m->rel_max_distance = dc__json_int(c, "relative_attention_max_distance", 128);
    m->eps = (float)dc__json_num(c, "layer_norm_epsilon", 1e-6);
    m->max_source = dc__json_int(c, "n_positions", 512);
    m->inner = m->heads * m->head_dim;
    if (m->d_model <= 0 || m->heads <= 0 || m->head_dim <= 0 || m->d_ff <= 0 || m->vocab <= 0 ||
        m->enc_layers < 0 || m->rel_buckets < 2 || m->rel_max_distance < 2)
        return dc_set_error(DC_ERR_FORMAT, "%s: config.json has an invalid T5 shape", m->dir);
    /* feed_forward_proj: "relu" or "gated-gelu" (HF maps gated-gelu to gelu_new) */
    const char *proj = dc__json_str(c, "feed_forward_proj", "relu");
    const char *actname = proj;
    m->gated = strncmp(proj, "gated-", 6) == 0;
    if (m->gated) actname = proj + 6;
    if (strcmp(proj, "gated-gelu") == 0) actname = "gelu_new";
    if (!dc__act_parse(actname, &m->act))
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: feed_forward_proj '%s' is not supported", m->dir, proj);
    if (m->dec_layers <= 0 || !dc__hf_has(m->hf, "decoder.block.0.layer.0.SelfAttention.q.weight"))
        return dc_set_error(DC_ERR_FORMAT, "%s has no decoder weights (decoder.block.*): summarization needs an "
                            "encoder-decoder checkpoint, not a T5 encoder", m->dir);
    const int64_t d = m->d_model, V = m->vocab;
    const float *shared = dc__hf_has(m->hf, "shared.weight") ? tw(m, "shared.weight", 2, (const int64_t[]){V, d}) : NULL;
    m->enc_embed = dc__hf_has(m->hf, "encoder.embed_tokens.weight")
                       ? tw(m, "encoder.embed_tokens.weight", 2, (const int64_t[]){V, d}) : shared;
    m->dec_embed = dc__hf_has(m->hf, "decoder.embed_tokens.weight")
                       ? tw(m, "decoder.embed_tokens.weight", 2, (const int64_t[]){V, d}) : shared;
    if (!m->enc_embed || !m->dec_embed)
        return dc_last_status() ? dc_last_status()
                                : dc_set_error(DC_ERR_FORMAT, "%s: no token embeddings (shared.weight)", m->dir);
    const int64_t rb[2] = {m->rel_buckets, m->heads};
    m->enc_rel_bias = tw(m, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2, rb);
    m->dec_rel_bias = tw(m, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2, rb);
    m->enc_final_ln = tw(m, "encoder.final_layer_norm.weight", 1, (const int64_t[]){d});
    m->dec_final_ln = tw(m, "decoder.final_layer_norm.weight", 1, (const int64_t[]){d});
    if (!m->enc_rel_bias || !m->dec_rel_bias || !m->enc_final_ln || !m->dec_final_ln) return dc_last_status();
    m->enc = calloc((size_t)m->enc_layers + 1, sizeof *m->enc);
    m->dec = calloc((size_t)m->dec_layers, sizeof *m->dec);
    if (!m->enc || !m->dec) return dc_set_error(DC_ERR_OOM, "out of memory");
    char p[160], q[200];
    const int64_t dshape[1] = {d};
    for (int64_t l = 0; l < m->enc_layers; l++) {
        dc__layer_w *w = &m->enc[l];
        snprintf(p, sizeof p, "encoder.block.%lld.layer", (long long)l);
        snprintf(q, sizeof q, "%s.0.SelfAttention", p);
        if (!attn(m, &w->self, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.0.layer_norm.weight", p);
        if (!(w->ln_self_w = tw(m, q, 1, dshape))) return dc_last_status();
        snprintf(q, sizeof q, "%s.1", p);
        if (!ffn(m, w, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.1.layer_norm.weight", p);
        if (!(w->ln_ff_w = tw(m, q, 1, dshape))) return dc_last_status();
    }
    for (int64_t l = 0; l < m->dec_layers; l++) {
        dc__layer_w *w = &m->dec[l];
        snprintf(p, sizeof p, "decoder.block.%lld.layer", (long long)l);
        snprintf(q, sizeof q, "%s.0.SelfAttention", p);
        if (!attn(m, &w->self, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.0.layer_norm.weight", p);
        if (!(w->ln_self_w = tw(m, q, 1, dshape))) return dc_last_status();
        snprintf(q, sizeof q, "%s.1.EncDecAttention", p);
        if (!attn(m, &w->cross, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.1.layer_norm.weight", p);
        if (!(w->ln_cross_w = tw(m, q, 1, dshape))) return dc_last_status();
        snprintf(q, sizeof q, "%s.2", p);
        if (!ffn(m, w, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.2.layer_norm.weight", p);
        if (!(w->ln_ff_w = tw(m, q, 1, dshape))) return dc_last_status();
    }
    /* tie_word_embeddings (default true, v1.0): the shared matrix with d_model^-0.5 scaling;
     * untied (v1.1): lm_head.weight as it is */
    bool tied = dc__json_bool(c, "tie_word_embeddings", true);
    if (tied) {
        m->lm_head.w = shared ? shared : m->dec_embed;
        m->logit_scale = (float)pow((double)d, -0.5); /* model_dim ** -0.5 in Python, then float */
    } else {
        m->lm_head.w = tw(m, "lm_head.weight", 2, (const int64_t[]){V, d});
        if (!m->lm_head.w) return dc_last_status();
        m->logit_scale = 1.0f;
    }
    m->lm_head.b = NULL;
    m->lm_head.out = V;
    m->lm_head.in = d;
    m->encode = t5_encode;
    m->step = t5_step;
    return DC_OK;
}
