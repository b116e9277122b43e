/* summarize_internal.h: what the summarization files share (not public API): the Hugging Face
 * folder reader (hf_folder.c), the encoder-decoder model object with its per-architecture
 * hooks (bart.c, t5.c), the decoding state with its caches, and the float kernels the two
 * architectures use (s2s_kernels.c). Beam search lives in beam_search.c, the pipeline in
 * summarize.c. */
#ifndef DEEPC_SUMMARIZE_INTERNAL_H
#define DEEPC_SUMMARIZE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "deepc/core.h"
#include "deepc/io.h"
#include "deepc/summarize.h"
#include "deepc/tokenizer.h"

/* ---- Hugging Face folder (config.json, generation_config.json, safetensors shards) ---------
 * A minimal reader: the causal-LM work (deepc/llm.h) has its own; the two should merge. */
typedef struct dc__hf_folder {
    char *dir;
    cJSON *config;     /* config.json (required) */
    cJSON *gen_config; /* generation_config.json or NULL */
    int n_shards;
    dc_safetensors **shards;
    int n_owned;       /* tensors handed out (released at close) */
    int cap_owned;
    dc_tensor **owned;
} dc__hf_folder;

dc__hf_folder *dc__hf_folder_open(const char *dir);
void dc__hf_folder_close(dc__hf_folder *f);
bool dc__hf_has(const dc__hf_folder *f, const char *name);
/* A contiguous F32 tensor of the named weight (a view of the mapping when stored as F32, a
 * converted copy otherwise), owned by the folder. Checks the shape when ndim > 0 (a mismatch
 * is DC_ERR_FORMAT naming the tensor). NULL with an error when missing. */
const float *dc__hf_weight(dc__hf_folder *f, const char *name, int ndim, const int64_t *shape);
/* Config accessors: the value of a key, or def when absent / of another type. */
int64_t dc__json_int(const cJSON *obj, const char *key, int64_t def);
double dc__json_num(const cJSON *obj, const char *key, double def);
bool dc__json_bool(const cJSON *obj, const char *key, bool def);
const char *dc__json_str(const cJSON *obj, const char *key, const char *def);
char *dc__read_text_file(const char *path, size_t *len); /* malloc'd, NUL-terminated; NULL + error */

/* ---- kernels (s2s_kernels.c): row-major float buffers, no allocation ----------------------- */
typedef struct dc__lin {
    const float *w; /* [out, in] as PyTorch's nn.Linear */
    const float *b; /* [out] or NULL */
    int64_t out, in;
} dc__lin;

/* y[m, out] = x[m, in] W^T + b. Few rows (decoder steps): a weight-streaming kernel that reads
 * W once for all rows; many rows (the encoder): the backend's SGEMM. */
void dc__linear(const float *x, int64_t m, const dc__lin *l, float *y);
/* Several linears of the same input (equal `in`), ys[i] = x W_i^T + b_i, in one pass. */
void dc__linear_multi(const float *x, int64_t m, int n, const dc__lin *const *ls, float *const *ys);
void dc__layer_norm(float *x, int64_t m, int64_t d, const float *w, const float *b, float eps);
void dc__layer_norm_to(const float *x, float *y, int64_t m, int64_t d, const float *w, const float *b, float eps);
/* T5LayerNorm: y = w * x / sqrt(mean(x^2) + eps) (no mean, no bias) */
void dc__rms_norm_to(const float *x, float *y, int64_t m, int64_t d, const float *w, float eps);
typedef enum dc__act { DC__ACT_GELU, DC__ACT_GELU_NEW, DC__ACT_RELU, DC__ACT_SILU, DC__ACT_TANH } dc__act;
bool dc__act_parse(const char *name, dc__act *out);
void dc__activate(float *x, int64_t n, dc__act act);
void dc__add(float *y, const float *x, int64_t n);
/* Full attention of S queries over S keys (the encoder): q, k, v, ctx [S, ld] with head h at
 * columns h*hd; scores = scale * q k^T + bias (bias [heads, S, S] or NULL); scratch [S, S]. */
void dc__attention_full(const float *q, const float *k, const float *v, float *ctx, int64_t S,
                        int heads, int64_t hd, int64_t ld, float scale, const float *bias,
                        float *scratch);

/* ---- the model ----------------------------------------------------------------------------- */
typedef enum dc__arch { DC__ARCH_BART = 0, DC__ARCH_T5 } dc__arch;

typedef struct dc__attn_w {
    dc__lin q, k, v, o;
} dc__attn_w;

typedef struct dc__layer_w {
    dc__attn_w self, cross;
    /* BART: post-LN norms with bias; T5: pre-LN RMS norms (b NULL) */
    const float *ln_self_w, *ln_self_b, *ln_cross_w, *ln_cross_b, *ln_ff_w, *ln_ff_b;
    dc__lin fc1, fc2; /* BART fc1/fc2; T5 wi (or wi_0) / wo */
    dc__lin fc_gate;  /* T5 v1.1: wi_1 (the linear half of the gated FFN) */
} dc__layer_w;

typedef struct dc__s2s_state dc__s2s_state;

struct dc_s2s_model {
    dc__arch arch;
    char *dir;
    dc__hf_folder *hf;
    dc_tokenizer *tok;
    int64_t d_model, heads, head_dim, inner, d_ff, enc_layers, dec_layers, vocab, max_source;
    float eps;
    dc__act act;
    bool gated;             /* T5 v1.1 */
    /* BART */
    float embed_scale;      /* sqrt(d_model) with scale_embedding, else 1 */
    const float *enc_pos, *dec_pos; /* learned positions [max_pos + 2, d] */
    const float *enc_ln_emb_w, *enc_ln_emb_b, *dec_ln_emb_w, *dec_ln_emb_b; /* NULL: none */
    const float *final_logits_bias; /* [vocab] or NULL */
    /* T5 */
    int64_t rel_buckets, rel_max_distance;
    const float *enc_rel_bias, *dec_rel_bias; /* [buckets, heads] */
    const float *enc_final_ln, *dec_final_ln;
    float logit_scale;      /* d_model^-0.5 for tied T5 heads, else 1 */
    /* shared */
    const float *enc_embed, *dec_embed; /* [vocab, d] */
    dc__lin lm_head;
    dc__layer_w *enc, *dec;
    /* per-architecture hooks */
    dc_status (*encode)(dc_s2s_model *m, dc__s2s_state *st, const int32_t *src, int64_t n);
    /* one decoder step for st->beams rows: tokens[b] at position pos, using cache slots */
    void (*step)(dc_s2s_model *m, dc__s2s_state *st, const int32_t *tokens, int64_t pos, float *logits);
};

/* Decoding state: caches and scratch for one source and up to `beams` rows, max_len steps. */
struct dc__s2s_state {
    int64_t S;          /* source length */
    int beams;
    int64_t max_len;    /* decoder positions the caches hold */
    float *enc;         /* [S, d] encoder output */
    float *cross_k, *cross_v; /* [layers][S][inner], computed once, shared by all beams */
    float *self_k, *self_v;   /* [layers][max_len][beams][inner] */
    /* slot[b * max_len + j]: which cache slot holds row b's keys/values at position j. Beam
     * reordering copies these small int rows instead of the caches. */
    int32_t *slot, *slot_tmp;
    float *x, *h, *q, *ctx, *ff, *ff2, *scores; /* scratch for one step */
    float *pos_bias;    /* T5 decoder: [heads][max_len] bias by distance */
    /* encoder scratch (freed after encoding) */
};

dc__s2s_state *dc__s2s_state_new(dc_s2s_model *m, int64_t S, int beams, int64_t max_len);
void dc__s2s_state_free(dc__s2s_state *st);
/* Decoder attention for one step, all rows: self-attention over positions 0..pos through the
 * slot table (after storing this step's k, v) and cross-attention over the source. */
void dc__self_attention_step(dc__s2s_state *st, int layer, int64_t pos, int heads, int64_t hd,
                             float scale, const float *pos_bias);
void dc__cross_attention_step(dc__s2s_state *st, int layer, int heads, int64_t hd, float scale);

dc_status dc__bart_setup(dc_s2s_model *m);
dc_status dc__t5_setup(dc_s2s_model *m);
/* T5's relative position bucket (transformers' _relative_position_bucket) */
int64_t dc__t5_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets, int64_t max_distance);

/* beam_search.c */
dc_status dc__generate(dc_s2s_model *m, dc__s2s_state *st, const dc_generate_config *cfg,
                       dc_generate_progress_fn progress, void *ctx, int32_t **out, int64_t *n_out);
/* Resolves max/min_new_tokens into max/min_length (decoder prompt of one token). */
void dc__gen_lengths(const dc_generate_config *cfg, int *max_length, int *min_length);

#endif /* DEEPC_SUMMARIZE_INTERNAL_H */
