/* llm_kernels.h: the fused CPU kernels of language-model inference (src/models/llm_*.c):
 * matrix-vector products over weights stored F32/F16/BF16 in either layout (nn.Linear's
 * [out, in] or GPT-2 Conv1D's [in, out]), matrix products for prompt processing, layer and RMS
 * norms, activations, rotary embeddings and attention over a KV cache. Raw float buffers, no
 * tensors, no allocation: callers hand in scratch memory sized at model load. */
#ifndef DEEPC_LLM_KERNELS_H
#define DEEPC_LLM_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "deepc/core.h"

/* A weight matrix as stored: y = x W^T for [out, in] (in_major false), y = x W for [in, out]. */
typedef struct dc__llm_weight {
    const void *data;
    dc_dtype dtype; /* DC_F32, DC_F16 or DC_BF16 */
    int64_t in, out;
    bool in_major;
} dc__llm_weight;

/* Threads the kernels use (OpenMP's current count). */
int dc__llm_threads(void);

/* y[out] = x[in] W (+ bias). partials: threads x out floats of scratch (in-major weights). */
void dc__llm_gemv(const dc__llm_weight *w, const float *x, const float *bias, float *y, float *partials);
/* y[n, out] = x[n, in] W (+ bias), rows contiguous. F32 weights go straight to the backend's
 * SGEMM; 16-bit ones are converted panel by panel into panel (panel_floats floats). */
dc_status dc__llm_matmul(const dc__llm_weight *w, const float *x, int64_t n, const float *bias, float *y,
                         float *panel, int64_t panel_floats, float *partials);
/* Converts n 16-bit (or F32) values to F32. */
void dc__llm_to_f32(const void *src, dc_dtype dtype, int64_t n, float *dst);

/* Row-wise norms over d: out may equal x. */
void dc__llm_layer_norm(const float *x, int64_t n, int64_t d, const float *w, const float *b, float eps, float *out);
void dc__llm_rms_norm(const float *x, int64_t n, int64_t d, const float *w, float eps, float *out);
/* In place: GPT-2's gelu_new, i.e. 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void dc__llm_gelu_tanh(float *x, int64_t n);
void dc__llm_gelu_erf(float *x, int64_t n);
void dc__llm_relu(float *x, int64_t n);
/* gate[i] = silu(gate[i]) * up[i] */
void dc__llm_silu_mul(float *gate, const float *up, int64_t n);
/* x += y */
void dc__llm_add(float *x, const float *y, int64_t n);

/* Rotary embedding (HF rotate_half convention) of n rows of nh heads of hd dims at
 * positions pos0.., row stride ld floats; cos/sin tables [max_pos, hd/2]. */
void dc__llm_rope(float *x, int64_t n, int64_t ld, int64_t nh, int64_t hd, int64_t pos0, const float *cos_t,
                  const float *sin_t);

/* Causal attention of n query rows at positions pos0..pos0+n-1 against a cache holding
 * positions 0..pos0+n-1: q [n, ldq] with head h at column h*hd; k/v caches [n_kv][ctx][hd];
 * out [n, ldo]. scratch: n * (pos0 + n) floats (n > 1) or n_heads * (pos0 + 1) (n == 1). */
dc_status dc__llm_attention(const float *q, int64_t ldq, const float *kc, const float *vc, int64_t ctx, int64_t n,
                            int64_t pos0, int64_t n_heads, int64_t n_kv, int64_t hd, float scale, float *out,
                            int64_t ldo, float *scratch);

#endif
