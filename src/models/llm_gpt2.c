/* llm_gpt2.c: GPT2LMHeadModel's forward pass (gpt2, distilgpt2, gpt2-medium... by config),
 * exactly as transformers computes it: token + learned position embeddings; per block
 * ln_1 -> Conv1D c_attn (x W + b, W stored [in, out]) -> causal attention with scores
 * q k^T / sqrt(head_dim) (and / (layer + 1) when scale_attn_by_inverse_layer_idx) -> c_proj ->
 * residual; ln_2 -> c_fc -> gelu_new -> c_proj -> residual; then ln_f. The LM head (wte^T,
 * tied) is applied by dc_llm_forward. */
#include <math.h>

#include "llm_internal.h"

dc_status dc__llm_gpt2_block(dc_llm *m, const int32_t *ids, int64_t n)
{
    const dc_llm_config *g = &m->cfg;
    int64_t d = g->hidden_size, H = g->n_heads, hd = g->head_dim, I = g->intermediate_size, pos0 = m->pos;
    float eps = (float)g->norm_eps;
    for (int64_t r = 0; r < n; r++) {
        float *xr = m->x + r * d;
        dc__llm_embed_row(m, ids[r], xr);
        const float *pe = m->wpe + (pos0 + r) * d;
        for (int64_t i = 0; i < d; i++) xr[i] += pe[i];
    }
    for (int64_t l = 0; l < g->n_layers; l++) {
        const llm_layer *L = &m->layers[l];
        dc__llm_layer_norm(m->x, n, d, L->ln1_w, L->ln1_b, eps, m->a);
        if (dc__llm_matmul(&L->c_attn, m->a, n, L->c_attn_b, m->qkv, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        /* qkv rows are [q | k | v], each H heads of hd */
        dc__llm_store_kv(m, l, m->qkv + d, m->qkv + 2 * d, 3 * d, n, pos0);
        float scale = m->scale_weights ? 1.0f / sqrtf((float)hd) : 1.0f;
        if (m->scale_by_layer) scale /= (float)(l + 1);
        if (dc__llm_attention(m->qkv, 3 * d, llm_kcache(m, l), llm_vcache(m, l), m->ctx, n, pos0, H, H, hd, scale, m->att, d,
                              m->scores))
            return dc_last_status();
        if (dc__llm_matmul(&L->attn_proj, m->att, n, L->attn_proj_b, m->a, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        dc__llm_add(m->x, m->a, n * d);
        dc__llm_layer_norm(m->x, n, d, L->ln2_w, L->ln2_b, eps, m->a);
        if (dc__llm_matmul(&L->c_fc, m->a, n, L->c_fc_b, m->mlp, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        if (m->act == LLM_ACT_GELU_TANH) dc__llm_gelu_tanh(m->mlp, n * I);
        else if (m->act == LLM_ACT_GELU) dc__llm_gelu_erf(m->mlp, n * I);
        else dc__llm_relu(m->mlp, n * I);
        if (dc__llm_matmul(&L->mlp_proj, m->mlp, n, L->mlp_proj_b, m->a, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        dc__llm_add(m->x, m->a, n * d);
    }
    dc__llm_layer_norm(m->x, n, d, m->lnf_w, m->lnf_b, eps, m->a);
    return DC_OK;
}
