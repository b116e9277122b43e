/* llm_internal.h: what the language-model files share (src/models/llm_*.c): the model
 * object with its weights, KV cache and scratch buffers, and the per-architecture forward
 * passes. Not public API; see deepc/llm.h. */
#ifndef DEEPC_LLM_INTERNAL_H
#define DEEPC_LLM_INTERNAL_H

#include "deepc/io.h"
#include "deepc/llm.h"
#include "backend/cpu/llm_kernels.h"

/* One transformer block's weights (unused fields stay zero for the other architecture). */
typedef struct llm_layer {
    /* gpt2 */
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    dc__llm_weight c_attn, attn_proj, c_fc, mlp_proj;
    const float *c_attn_b, *attn_proj_b, *c_fc_b, *mlp_proj_b;
    /* llama */
    const float *in_norm, *post_norm;
    dc__llm_weight wq, wk, wv, wo, gate, up, down;
    const float *bq, *bk, *bv, *bo, *gate_b, *up_b, *down_b;
} llm_layer;

typedef struct llm_map { void *base; size_t len; } llm_map;

typedef enum llm_act { LLM_ACT_GELU_TANH = 0, LLM_ACT_GELU, LLM_ACT_RELU, LLM_ACT_SILU } llm_act;

#define LLM_CHUNK 256 /* prompt tokens per forward block (bounds the scratch memory) */

struct dc_llm {
    char path[4096];
    dc_llm_config cfg;
    dc_tokenizer *tok;
    char *config_json;          /* config.json text (task_specific_params, ...) */
    char *gen_config_json;      /* generation_config.json text or NULL */
    llm_act act;
    bool scale_by_layer;        /* gpt2 scale_attn_by_inverse_layer_idx */
    bool scale_weights;         /* gpt2 scale_attn_weights */

    /* weights */
    dc_safetensors *files[64];
    int n_files;
    dc_tensor **held;           /* tensors viewing the files (released at free) */
    int n_held, cap_held;
    void **owned;               /* converted (F32) vectors, rotary tables */
    int n_owned, cap_owned;
    llm_map *maps;              /* huge-page memory of the weight matrices */
    int n_maps, cap_maps;
    dc__llm_weight embed;       /* [vocab, hidden] (wte / embed_tokens) */
    const float *wpe;           /* gpt2 [max_positions, hidden] */
    dc__llm_weight head;        /* [vocab, hidden]; the embedding when tied */
    const float *lnf_w, *lnf_b; /* final norm */
    llm_layer *layers;
    float *rope_cos, *rope_sin; /* [ctx, head_dim/2] */

    /* KV cache: per layer [n_kv][ctx][head_dim] keys then values */
    float *kv;
    int64_t ctx, pos;

    /* scratch, sized at load for LLM_CHUNK rows */
    float *x, *a, *qkv, *att, *mlp, *mlp2, *scores, *partials, *panel, *logits;
    int64_t panel_floats, partials_floats;
    int threads;                /* rows of partials */
    float *embed_row;           /* one converted embedding row (16-bit embeddings) */
};

/* The model-specific forward of n (<= LLM_CHUNK) tokens at positions m->pos..: leaves the
 * final-normed hidden states in m->a (n rows). */
dc_status dc__llm_gpt2_block(dc_llm *m, const int32_t *ids, int64_t n);
dc_status dc__llm_llama_block(dc_llm *m, const int32_t *ids, int64_t n);

/* K / V cache of layer l. */
static inline float *llm_kcache(dc_llm *m, int64_t l)
{
    return m->kv + l * 2 * m->cfg.n_kv_heads * m->ctx * m->cfg.head_dim;
}
static inline float *llm_vcache(dc_llm *m, int64_t l)
{
    return llm_kcache(m, l) + m->cfg.n_kv_heads * m->ctx * m->cfg.head_dim;
}
/* Copies n rows of k (row stride ld, n_kv heads of hd) into the cache at positions pos0.. */
void dc__llm_store_kv(dc_llm *m, int64_t l, const float *k, const float *v, int64_t ldk, int64_t n, int64_t pos0);
/* Writes embedding row id (converted to F32) into out. */
void dc__llm_embed_row(const dc_llm *m, int32_t id, float *out);

#endif
