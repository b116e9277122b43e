/* llm_llama.c: LlamaForCausalLM's forward pass, exactly as transformers computes it: token
 * embeddings; per block RMSNorm -> q/k/v projections -> rotary embeddings (rotate_half, the
 * tables of llm_load.c) -> grouped-query causal attention (each group of n_heads / n_kv_heads
 * query heads reads one cached key/value head), scores / sqrt(head_dim) -> o_proj -> residual;
 * RMSNorm -> down(silu(gate(x)) * up(x)) -> residual; then the final RMSNorm. The LM head (tied
 * or not) is applied by dc_llm_forward. */
#include <math.h>

#include "llm_internal.h"

dc_status dc__llm_llama_block(dc_llm *m, const int32_t *ids, int64_t n)
{
    const dc_llm_config *g = &m->cfg;
    int64_t d = g->hidden_size, H = g->n_heads, KV = g->n_kv_heads, hd = g->head_dim, I = g->intermediate_size;
    int64_t qd = H * hd, kd = KV * hd, pos0 = m->pos;
    float eps = (float)g->norm_eps;
    float *q = m->qkv, *k = q + n * qd, *v = k + n * kd;
    for (int64_t r = 0; r < n; r++) dc__llm_embed_row(m, ids[r], m->x + r * d);
    for (int64_t l = 0; l < g->n_layers; l++) {
        const llm_layer *L = &m->layers[l];
        dc__llm_rms_norm(m->x, n, d, L->in_norm, eps, m->a);
        if (dc__llm_matmul(&L->wq, m->a, n, L->bq, q, m->panel, m->panel_floats, m->partials) ||
            dc__llm_matmul(&L->wk, m->a, n, L->bk, k, m->panel, m->panel_floats, m->partials) ||
            dc__llm_matmul(&L->wv, m->a, n, L->bv, v, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        dc__llm_rope(q, n, qd, H, hd, pos0, m->rope_cos, m->rope_sin);
        dc__llm_rope(k, n, kd, KV, hd, pos0, m->rope_cos, m->rope_sin);
        dc__llm_store_kv(m, l, k, v, kd, n, pos0);
        if (dc__llm_attention(q, qd, llm_kcache(m, l), llm_vcache(m, l), m->ctx, n, pos0, H, KV, hd, 1.0f / sqrtf((float)hd),
                              m->att, qd, m->scores))
            return dc_last_status();
        if (dc__llm_matmul(&L->wo, m->att, n, L->bo, m->a, m->panel, m->panel_floats, m->partials)) return dc_last_status();
        dc__llm_add(m->x, m->a, n * d);
        dc__llm_rms_norm(m->x, n, d, L->post_norm, eps, m->a);
        if (dc__llm_matmul(&L->gate, m->a, n, L->gate_b, m->mlp, m->panel, m->panel_floats, m->partials) ||
            dc__llm_matmul(&L->up, m->a, n, L->up_b, m->mlp2, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        dc__llm_silu_mul(m->mlp, m->mlp2, n * I);
        if (dc__llm_matmul(&L->down, m->mlp, n, L->down_b, m->a, m->panel, m->panel_floats, m->partials))
            return dc_last_status();
        dc__llm_add(m->x, m->a, n * d);
    }
    dc__llm_rms_norm(m->x, n, d, m->lnf_w, eps, m->a);
    return DC_OK;
}
