/* sd_clip.c: transformers' CLIPTextModel (the Stable Diffusion text encoder): token + position
 * embeddings, pre-norm encoder layers with causal self-attention and quick_gelu (or gelu) MLPs,
 * and the final layer norm; last_hidden_state is what the UNet attends to. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "sd_internal.h"

struct dc_clip_text {
    sd_store *w;
    int hidden, layers, heads, intermediate, max_pos, vocab;
    float eps;
    bool quick_gelu;
};


void dc_clip_text_free(dc_clip_text *c)
{
    if (!c) return;
    sd_store_free(c->w);
    free(c);
}

dc_clip_text *dc_clip_text_load(const char *dir, dc_dtype weight_dtype)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = sd_json_load(path);
    if (!j) return NULL;
    dc_clip_text *c = dc__calloc(1, sizeof *c);
    if (!c) goto fail;
    const char *mt = sd_json_str(j, "model_type", "clip_text_model");
    if (strcmp(mt, "clip_text_model") && strcmp(mt, "clip")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: text encoder model_type %s is not supported (clip_text_model)", path, mt);
        goto fail;
    }
    c->hidden = sd_json_int(j, "hidden_size", 512);
    c->layers = sd_json_int(j, "num_hidden_layers", 12);
    c->heads = sd_json_int(j, "num_attention_heads", 8);
    c->intermediate = sd_json_int(j, "intermediate_size", 2048);
    c->max_pos = sd_json_int(j, "max_position_embeddings", 77);
    c->vocab = sd_json_int(j, "vocab_size", 49408);
    c->eps = (float)sd_json_num(j, "layer_norm_eps", 1e-5);
    const char *act = sd_json_str(j, "hidden_act", "quick_gelu");
    c->quick_gelu = !strcmp(act, "quick_gelu");
    if (!c->quick_gelu && strcmp(act, "gelu")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: hidden_act %s is not supported (quick_gelu, gelu)", path, act);
        goto fail;
    }
    if (c->heads <= 0 || c->hidden % c->heads) {
        dc_set_error(DC_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c->hidden,
                     c->heads);
        goto fail;
    }
    c->w = sd_store_new("text_encoder");
    if (!c->w || sd_store_load_dir(c->w, dir, (const char *const[]){"model", "pytorch_model", NULL}, weight_dtype))
        goto fail;
    cJSON_Delete(j);
    return c;
fail:
    cJSON_Delete(j);
    dc_clip_text_free(c);
    return NULL;
}

dc_tensor *dc_clip_text_forward(dc_clip_text *c, dc_tensor *ids)
{
    if (!ids) return NULL;
    if (ids->ndim != 2 || ids->shape[1] > c->max_pos || (ids->dtype != DC_I64 && ids->dtype != DC_I32)) {
        char b[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "text_encoder: expected token ids [B, L <= %d] (I64), got %s %s", c->max_pos,
                     dc_dtype_name(ids->dtype), dc_shape_str(ids, b, sizeof b));
        return NULL;
    }
    const int64_t B = ids->shape[0], L = ids->shape[1], D = c->hidden;
    char n[256], p[128];
    bool prev = dc_set_grad_enabled(false);
    dc_pool_mark m = dc_pool_push();
    /* embeddings: only the rows the tokens use are read (a 16-bit table is never widened
     * whole: 150 MB of F32 for CLIP-L's 49408 x 768) */
    dc_tensor *tok = sd_wt(c->w, "text_model.embeddings.token_embedding.weight", 2, (int64_t[]){c->vocab, D});
    dc_tensor *pos = sd_wt(c->w, "text_model.embeddings.position_embedding.weight", 2, (int64_t[]){c->max_pos, D});
    dc_tensor *h = tok && pos ? dc_empty(DC_F32, 3, (int64_t[]){B, L, D}) : NULL;
    dc_tensor *idc = h ? dc_contiguous(ids) : NULL;
    float *row = h ? malloc(sizeof(float) * (size_t)(2 * D)) : NULL;
    if (h && (!idc || !row)) h = NULL;
    for (int64_t i = 0; h && i < B * L; i++) {
        int64_t id = idc->dtype == DC_I64 ? ((const int64_t *)dc_data(idc))[i] : ((const int32_t *)dc_data(idc))[i];
        if (id < 0 || id >= c->vocab) {
            dc_set_error(DC_ERR_ARG, "text_encoder: token id %lld outside [0, %d)", (long long)id, c->vocab);
            h = NULL;
            break;
        }
        float *out = dc_data_f32(h) + i * D;
        const float *t = sd_row_f32(tok, id, row), *p = sd_row_f32(pos, i % L, row + D);
        for (int64_t d = 0; d < D; d++) out[d] = t[d] + p[d];
    }
    free(row);
    for (int l = 0; l < c->layers && h; l++) {
        dc_pool_mark lm = dc_pool_push();
        NAME(p, "text_model.encoder.layers.%d", l);
        dc_tensor *a = sd_layer_norm(c->w, NAME(n, "%s.layer_norm1", p), h, c->eps);
        dc_tensor *q = sd_linear(c->w, NAME(n, "%s.self_attn.q_proj", p), a, D, true);
        dc_tensor *k = sd_linear(c->w, NAME(n, "%s.self_attn.k_proj", p), a, D, true);
        dc_tensor *v = sd_linear(c->w, NAME(n, "%s.self_attn.v_proj", p), a, D, true);
        dc_tensor *o = sd_mha(q, k, v, c->heads, true);
        o = sd_linear(c->w, NAME(n, "%s.self_attn.out_proj", p), o, D, true);
        h = dc_add(h, o);
        a = sd_layer_norm(c->w, NAME(n, "%s.layer_norm2", p), h, c->eps);
        a = sd_linear(c->w, NAME(n, "%s.mlp.fc1", p), a, c->intermediate, true);
        a = c->quick_gelu ? dc_quick_gelu(a) : dc_gelu(a, DC_GELU_NONE);
        a = sd_linear(c->w, NAME(n, "%s.mlp.fc2", p), a, D, true);
        h = sd_keep(lm, dc_add(h, a));
    }
    h = sd_layer_norm(c->w, "text_model.final_layer_norm", h, c->eps);
    dc_tensor *r = sd_keep(m, h);
    dc_set_grad_enabled(prev);
    (void)B;
    return r;
}
