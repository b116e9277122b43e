/* bart.c: BartForConditionalGeneration (bart-large-cnn, distilbart-cnn/xsum) as transformers
 * computes it: token embeddings (scaled by sqrt(d_model) with scale_embedding) plus learned
 * positions at offset 2, layernorm_embedding (absent in some fairseq-converted checkpoints: then
 * skipped), post-LN encoder and decoder layers with biased q/k/v/out projections, q scaled by
 * head_dim^-0.5, FFN with the config's activation (gelu: exact erf), and logits from the shared
 * embedding matrix plus final_logits_bias. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summarize_internal.h"

/* The weight `name` under "model." (BartForConditionalGeneration) or bare (BartModel). */
static const float *bw(dc_s2s_model *m, const char *name, int ndim, const int64_t *shape, bool optional)
{
    char full[320];
    snprintf(full, sizeof full, "model.%s", name);
    if (dc__hf_has(m->hf, full)) return dc__hf_weight(m->hf, full, ndim, shape);
    if (dc__hf_has(m->hf, name)) return dc__hf_weight(m->hf, name, ndim, shape);
    if (!optional) dc_set_error(DC_ERR_FORMAT, "%s: weight 'model.%s' is missing", m->dir, name);
    return NULL;
}

static bool lin(dc_s2s_model *m, dc__lin *l, const char *prefix, int64_t out, int64_t in)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    l->w = bw(m, name, 2, (const int64_t[]){out, in}, false);
    snprintf(name, sizeof name, "%s.bias", prefix);
    l->b = bw(m, name, 1, (const int64_t[]){out}, false);
    l->out = out;
    l->in = in;
    return l->w && l->b;
}

static bool norm(dc_s2s_model *m, const float **w, const float **b, const char *prefix)
{
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    *w = bw(m, name, 1, (const int64_t[]){m->d_model}, false);
    snprintf(name, sizeof name, "%s.bias", prefix);
    *b = bw(m, name, 1, (const int64_t[]){m->d_model}, false);
    return *w && *b;
}

static bool attn(dc_s2s_model *m, dc__attn_w *a, const char *prefix)
{
    char p[200];
    int64_t d = m->d_model;
    snprintf(p, sizeof p, "%s.q_proj", prefix);
    if (!lin(m, &a->q, p, d, d)) return false;
    snprintf(p, sizeof p, "%s.k_proj", prefix);
    if (!lin(m, &a->k, p, d, d)) return false;
    snprintf(p, sizeof p, "%s.v_proj", prefix);
    if (!lin(m, &a->v, p, d, d)) return false;
    snprintf(p, sizeof p, "%s.out_proj", prefix);
    return lin(m, &a->o, p, d, d);
}

static dc_status bart_encode(dc_s2s_model *m, dc__s2s_state *st, const int32_t *src, int64_t S)
{
    const int64_t d = m->d_model, F = m->d_ff, hd = m->head_dim;
    float *x = st->enc;
    float *buf = malloc((size_t)(5 * S * d + S * F + S * S) * sizeof(float));
    if (!buf) return dc_set_error(DC_ERR_OOM, "summarize: out of memory encoding %lld tokens", (long long)S);
    float *q = buf, *k = q + S * d, *v = k + S * d, *ctx = v + S * d, *o = ctx + S * d, *f = o + S * d,
          *scratch = f + S * F;
    for (int64_t i = 0; i < S; i++)
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] = m->enc_embed[(int64_t)src[i] * d + j] * m->embed_scale + m->enc_pos[(i + 2) * d + j];
    if (m->enc_ln_emb_w) dc__layer_norm(x, S, d, m->enc_ln_emb_w, m->enc_ln_emb_b, m->eps);
    for (int64_t l = 0; l < m->enc_layers; l++) {
        const dc__layer_w *w = &m->enc[l];
        dc__linear(x, S, &w->self.q, q);
        dc__linear(x, S, &w->self.k, k);
        dc__linear(x, S, &w->self.v, v);
        dc__attention_full(q, k, v, ctx, S, (int)m->heads, hd, d, 1.0f / sqrtf((float)hd), NULL, scratch);
        dc__linear(ctx, S, &w->self.o, o);
        dc__add(x, o, S * d);
        dc__layer_norm(x, S, d, w->ln_self_w, w->ln_self_b, m->eps);
        dc__linear(x, S, &w->fc1, f);
        dc__activate(f, S * F, m->act);
        dc__linear(f, S, &w->fc2, o);
        dc__add(x, o, S * d);
        dc__layer_norm(x, S, d, w->ln_ff_w, w->ln_ff_b, m->eps);
    }
    free(buf);
    /* cross-attention keys and values: once per source, shared by every beam and step */
    for (int64_t l = 0; l < m->dec_layers; l++) {
        dc__linear(x, S, &m->dec[l].cross.k, st->cross_k + l * S * d);
        dc__linear(x, S, &m->dec[l].cross.v, st->cross_v + l * S * d);
    }
    return DC_OK;
}

static void bart_step(dc_s2s_model *m, dc__s2s_state *st, const int32_t *tokens, int64_t pos, float *logits)
{
    const int B = st->beams;
    const int64_t d = m->d_model, hd = m->head_dim, T = st->max_len;
    const float scale = 1.0f / sqrtf((float)hd);
    float *x = st->x, *h = st->h;
    for (int b = 0; b < B; b++)
        for (int64_t j = 0; j < d; j++)
            x[b * d + j] = m->dec_embed[(int64_t)tokens[b] * d + j] * m->embed_scale + m->dec_pos[(pos + 2) * d + j];
    if (m->dec_ln_emb_w) dc__layer_norm(x, B, d, m->dec_ln_emb_w, m->dec_ln_emb_b, m->eps);
    for (int64_t l = 0; l < m->dec_layers; l++) {
        const dc__layer_w *w = &m->dec[l];
        float *kc = st->self_k + ((l * T + pos) * B) * d, *vc = st->self_v + ((l * T + pos) * B) * d;
        dc__linear_multi(x, B, 3, (const dc__lin *const[]){&w->self.q, &w->self.k, &w->self.v},
                         (float *const[]){st->q, kc, vc});
        dc__self_attention_step(st, (int)l, pos, (int)m->heads, hd, scale, NULL);
        dc__linear(st->ctx, B, &w->self.o, h);
        dc__add(x, h, B * d);
        dc__layer_norm(x, B, d, w->ln_self_w, w->ln_self_b, m->eps);
        dc__linear(x, B, &w->cross.q, st->q);
        dc__cross_attention_step(st, (int)l, (int)m->heads, hd, scale);
        dc__linear(st->ctx, B, &w->cross.o, h);
        dc__add(x, h, B * d);
        dc__layer_norm(x, B, d, w->ln_cross_w, w->ln_cross_b, m->eps);
        dc__linear(x, B, &w->fc1, st->ff);
        dc__activate(st->ff, B * m->d_ff, m->act);
        dc__linear(st->ff, B, &w->fc2, h);
        dc__add(x, h, B * d);
        dc__layer_norm(x, B, d, w->ln_ff_w, w->ln_ff_b, m->eps);
    }
    dc__linear(x, B, &m->lm_head, logits); /* lm_head.b is final_logits_bias */
}

dc_status dc__bart_setup(dc_s2s_model *m)
{
    const cJSON *c = m->hf->config;
    m->d_model = dc__json_int(c, "d_model", 1024);
    m->enc_layers = dc__json_int(c, "encoder_layers", 12);
    m->dec_layers = dc__json_int(c, "decoder_layers", 12);
    m->heads = dc__json_int(c, "encoder_attention_heads", 16);
    int64_t dec_heads = dc__json_int(c, "decoder_attention_heads", 16);
    m->d_ff = dc__json_int(c, "encoder_ffn_dim", 4096);
    int64_t dec_ff = dc__json_int(c, "decoder_ffn_dim", 4096);
    m->vocab = dc__json_int(c, "vocab_size", 50265);
    int64_t max_pos = dc__json_int(c, "max_position_embeddings", 1024);
    m->max_source = max_pos;
    m->eps = 1e-5f;
    const char *act = dc__json_str(c, "activation_function", "gelu");
    if (!dc__act_parse(act, &m->act))
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: activation_function '%s' is not supported", m->dir, act);
    if (m->d_model <= 0 || m->heads <= 0 || m->d_model % m->heads || m->enc_layers < 0 || m->vocab <= 0 ||
        max_pos <= 0 || m->d_ff <= 0)
        return dc_set_error(DC_ERR_FORMAT, "%s: config.json has an invalid BART shape (d_model %lld, heads %lld)",
                            m->dir, (long long)m->d_model, (long long)m->heads);
    if (dec_heads != m->heads || dec_ff != m->d_ff)
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: encoder and decoder with different head counts or FFN sizes",
                            m->dir);
    if (dc__json_bool(c, "normalize_before", false) || dc__json_bool(c, "add_final_layer_norm", false))
        return dc_set_error(DC_ERR_UNSUPPORTED, "%s: pre-LN (mBART-style) BART is not supported", m->dir);
    if (m->dec_layers <= 0 || !bw(m, "decoder.layers.0.self_attn.q_proj.weight", 0, NULL, true))
        return dc_set_error(DC_ERR_FORMAT, "%s has no decoder weights (model.decoder.layers.*): summarization needs "
                            "an encoder-decoder checkpoint", m->dir);
    m->head_dim = m->d_model / m->heads;
    m->inner = m->d_model;
    m->embed_scale = dc__json_bool(c, "scale_embedding", false) ? sqrtf((float)m->d_model) : 1.0f;
    const int64_t d = m->d_model, V = m->vocab;
    const float *shared = bw(m, "shared.weight", 2, (const int64_t[]){V, d}, true);
    m->enc_embed = bw(m, "encoder.embed_tokens.weight", 2, (const int64_t[]){V, d}, true);
    m->dec_embed = bw(m, "decoder.embed_tokens.weight", 2, (const int64_t[]){V, d}, true);
    if (!m->enc_embed) m->enc_embed = shared;
    if (!m->dec_embed) m->dec_embed = shared;
    if (!m->enc_embed || !m->dec_embed)
        return dc_last_status() ? dc_last_status()
                                : dc_set_error(DC_ERR_FORMAT, "%s: no token embeddings (model.shared.weight)", m->dir);
    m->enc_pos = bw(m, "encoder.embed_positions.weight", 2, (const int64_t[]){max_pos + 2, d}, false);
    m->dec_pos = bw(m, "decoder.embed_positions.weight", 2, (const int64_t[]){max_pos + 2, d}, false);
    if (!m->enc_pos || !m->dec_pos) return dc_last_status();
    if (bw(m, "encoder.layernorm_embedding.weight", 0, NULL, true) &&
        !norm(m, &m->enc_ln_emb_w, &m->enc_ln_emb_b, "encoder.layernorm_embedding"))
        return dc_last_status();
    if (bw(m, "decoder.layernorm_embedding.weight", 0, NULL, true) &&
        !norm(m, &m->dec_ln_emb_w, &m->dec_ln_emb_b, "decoder.layernorm_embedding"))
        return dc_last_status();
    m->enc = calloc((size_t)m->enc_layers + 1, sizeof *m->enc);
    m->dec = calloc((size_t)m->dec_layers, sizeof *m->dec);
    if (!m->enc || !m->dec) return dc_set_error(DC_ERR_OOM, "out of memory");
    char p[160], q[200];
    for (int64_t l = 0; l < m->enc_layers; l++) {
        dc__layer_w *w = &m->enc[l];
        snprintf(p, sizeof p, "encoder.layers.%lld", (long long)l);
        snprintf(q, sizeof q, "%s.self_attn", p);
        if (!attn(m, &w->self, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.self_attn_layer_norm", p);
        if (!norm(m, &w->ln_self_w, &w->ln_self_b, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.fc1", p);
        if (!lin(m, &w->fc1, q, m->d_ff, d)) return dc_last_status();
        snprintf(q, sizeof q, "%s.fc2", p);
        if (!lin(m, &w->fc2, q, d, m->d_ff)) return dc_last_status();
        snprintf(q, sizeof q, "%s.final_layer_norm", p);
        if (!norm(m, &w->ln_ff_w, &w->ln_ff_b, q)) return dc_last_status();
    }
    for (int64_t l = 0; l < m->dec_layers; l++) {
        dc__layer_w *w = &m->dec[l];
        snprintf(p, sizeof p, "decoder.layers.%lld", (long long)l);
        snprintf(q, sizeof q, "%s.self_attn", p);
        if (!attn(m, &w->self, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.self_attn_layer_norm", p);
        if (!norm(m, &w->ln_self_w, &w->ln_self_b, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.encoder_attn", p);
        if (!attn(m, &w->cross, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.encoder_attn_layer_norm", p);
        if (!norm(m, &w->ln_cross_w, &w->ln_cross_b, q)) return dc_last_status();
        snprintf(q, sizeof q, "%s.fc1", p);
        if (!lin(m, &w->fc1, q, m->d_ff, d)) return dc_last_status();
        snprintf(q, sizeof q, "%s.fc2", p);
        if (!lin(m, &w->fc2, q, d, m->d_ff)) return dc_last_status();
        snprintf(q, sizeof q, "%s.final_layer_norm", p);
        if (!norm(m, &w->ln_ff_w, &w->ln_ff_b, q)) return dc_last_status();
    }
    /* the head: lm_head.weight when stored, else tied to the shared embedding */
    m->lm_head.w = dc__hf_has(m->hf, "lm_head.weight")
                       ? dc__hf_weight(m->hf, "lm_head.weight", 2, (const int64_t[]){V, d})
                       : (shared ? shared : m->dec_embed);
    if (!m->lm_head.w) return dc_last_status();
    m->lm_head.out = V;
    m->lm_head.in = d;
    m->lm_head.b = dc__hf_has(m->hf, "final_logits_bias")
                       ? dc__hf_weight(m->hf, "final_logits_bias", 2, (const int64_t[]){1, V})
                       : NULL;
    if (dc__hf_has(m->hf, "final_logits_bias") && !m->lm_head.b) return dc_last_status();
    m->encode = bart_encode;
    m->step = bart_step;
    return DC_OK;
}
