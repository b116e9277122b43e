/* sd_internal.h: what the diffusion files (src/models/sd_*.c) share: the named weight store
 * (mmap'd safetensors, 16-bit weights converted per layer, or fresh trainable parameters),
 * config.json helpers, the building blocks diffusers' models are made of (conv, linear,
 * group/layer norm, attention, ResnetBlock2D, Transformer2DModel, Down/Upsample2D), and their
 * no-grad inference versions with explicit ownership (sd_infer.c, sd_wino.c). */
#ifndef DEEPC_SD_INTERNAL_H
#define DEEPC_SD_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "deepc/diffusion.h"
#include "deepc/io.h"
#include "deepc/ops.h"

/* ---- weight store -------------------------------------------------------------------- */

typedef struct sd_store {
    char what[32];          /* "unet", "vae", "text_encoder": the start of error messages */
    int n, cap;
    char **names;
    dc_tensor **tensors;    /* owned references: file views (any dtype) or parameters */
    int *slots;             /* open-addressing hash of names -> index (cap * 2 slots) */
    int n_files;
    dc_safetensors *files[8];
    bool create;            /* training: a missing name is created and initialised */
    dc_rng *rng;            /* for create */
    dc_dtype weight_dtype;  /* F32, or F16/BF16: what F32 weights become on first use */
} sd_store;

sd_store *sd_store_new(const char *what);
void sd_store_free(sd_store *s);
/* Loads `dir`/<base>.safetensors, else <base>.fp16.safetensors (the first of `bases` that
 * exists). Tensors are views of the mapped file. weight_dtype F32 keeps each as stored (16-bit
 * ones are widened per use); F16/BF16 converts an F32 tensor to that dtype when it is first
 * used (sd_wt), giving its file pages back. */
dc_status sd_store_load_dir(sd_store *s, const char *dir, const char *const *bases, dc_dtype weight_dtype);
/* Adds (retains) a tensor under a name. */
dc_status sd_store_put(sd_store *s, const char *name, dc_tensor *t);
dc_tensor *sd_store_find(sd_store *s, const char *name);

typedef enum sd_init {
    SD_INIT_KAIMING,  /* PyTorch's Linear/Conv default: U(+-1/sqrt(fan_in)) for weight */
    SD_INIT_BIAS,     /* U(+-1/sqrt(fan_in)), fan_in given */
    SD_INIT_ONES,
    SD_INIT_ZEROS,
    SD_INIT_NORMAL,   /* N(0, 1): nn.Embedding */
} sd_init;

/* The F32 tensor called `name` with the expected shape (NULL + error naming the tensor if it
 * is missing or mis-shaped). 16-bit weights are converted into a pool temporary. In create
 * mode a missing tensor is made as a trainable parameter (init, fan_in for SD_INIT_BIAS). */
dc_tensor *sd_w(sd_store *s, const char *name, int ndim, const int64_t *shape, sd_init init, int64_t fan_in);
/* The stored tensor `name` (any dtype, as in the file) checked against the expected shape
 * (a [O, I] weight also serves [O, I, 1, 1] and the reverse); NULL + error if missing or
 * mis-shaped. Borrowed from the store. Converts to the store's 16-bit dtype on first use. */
dc_tensor *sd_wt(sd_store *s, const char *name, int ndim, const int64_t *shape);
/* Row r of a 2-D weight as F32: a pointer into it, or widened into buf (shape[1] floats). */
const float *sd_row_f32(const dc_tensor *w, int64_t r, float *buf);
/* All parameters (create mode) in creation order. */
int sd_store_params(sd_store *s, dc_tensor ***out);

/* ---- config.json ------------------------------------------------------------------------- */
cJSON *sd_json_load(const char *path);
int sd_json_int(const cJSON *o, const char *key, int dflt);
double sd_json_num(const cJSON *o, const char *key, double dflt);
bool sd_json_bool(const cJSON *o, const char *key, bool dflt);
const char *sd_json_str(const cJSON *o, const char *key, const char *dflt);
/* An int array (or a single int repeated): returns the count (<= max), -1 on a bad type. */
int sd_json_ints(const cJSON *o, const char *key, int *out, int max);
int sd_json_strs(const cJSON *o, const char *key, const char **out, int max);

/* snprintf into buf (the module paths of layers), returning buf */
const char *sd_name(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
#define NAME(buf, ...) sd_name(buf, sizeof buf, __VA_ARGS__)

/* ---- scopes: intermediates of a block die at its end ---------------------------------------- */
/* Keeps r alive past dc_pool_pop(m) by handing it to the enclosing pool. */
dc_tensor *sd_keep(dc_pool_mark m, dc_tensor *r);

/* ---- layers (prefix = diffusers' module path) ---------------------------------------------- */
dc_tensor *sd_conv(sd_store *s, const char *prefix, dc_tensor *x, int64_t out, int k, int stride, int pad);
dc_tensor *sd_linear(sd_store *s, const char *prefix, dc_tensor *x, int64_t out, bool bias);
/* GroupNorm (affine), optionally followed by SiLU. */
dc_tensor *sd_group_norm(sd_store *s, const char *prefix, dc_tensor *x, int groups, float eps, bool silu);
dc_tensor *sd_layer_norm(sd_store *s, const char *prefix, dc_tensor *x, float eps);
/* Multi-head attention of q [B, L, H*D], k [B, S, H*D], v [B, S, H*D] -> [B, L, H*D], scale
 * 1/sqrt(D) (causal when asked). With grad off: sliced (bounded scratch) gemm + softmax with no
 * head transposes; with grad on: dc_scaled_dot_product_attention. */
dc_tensor *sd_mha(dc_tensor *q, dc_tensor *k, dc_tensor *v, int heads, bool causal);
/* diffusers' ResnetBlock2D (time_embedding_norm "default"); temb may be NULL (VAE). */
dc_tensor *sd_resnet(sd_store *s, const char *prefix, dc_tensor *x, dc_tensor *temb, int64_t out_ch,
                     int groups, float eps, float output_scale);
/* diffusers' Attention on a feature map with group_norm and residual (VAE / UNet2DModel). */
dc_tensor *sd_attn_block(sd_store *s, const char *prefix, dc_tensor *x, int heads, int groups, float eps);
/* Transformer2DModel (SD 1.x: GroupNorm eps 1e-6, proj_in/out conv 1x1 or linear) with
 * BasicTransformerBlock layers (self-attn, cross-attn, GEGLU). */
dc_tensor *sd_transformer2d(sd_store *s, const char *prefix, dc_tensor *x, dc_tensor *ctx, int heads,
                            int groups, int layers, bool linear_proj);
/* Downsample2D: conv 3x3 stride 2 (padding 0: pad right/bottom by 1 first, as the VAE). */
dc_tensor *sd_downsample(sd_store *s, const char *prefix, dc_tensor *x, int padding);
/* Upsample2D: nearest x2 then conv 3x3; out_h/out_w > 0 force the size (UNet odd sizes). */
dc_tensor *sd_upsample(sd_store *s, const char *prefix, dc_tensor *x, int64_t out_h, int64_t out_w);
/* diffusers' get_timestep_embedding: [n] timesteps -> [n, dim]. */
dc_tensor *sd_timestep_embedding(const float *t, int64_t n, int64_t dim, bool flip_sin_to_cos, float shift);
/* SiLU in place-ish helpers */
dc_tensor *sd_silu(dc_tensor *x);

/* ---- inference path (sd_infer.c) ------------------------------------------------------------ */
/* 0 selects the pool-based layers above for inference too (tests compare the two). */
extern int sd__infer_path;
/* Caps, in floats (tests shrink them to exercise the blocked paths): a conv's transformed or
 * widened weights per block of output channels; GEGLU column blocks and 16-bit linear blocks;
 * one thread's attention scores. */
extern int64_t sd__conv_scratch_floats, sd__block_floats, sd__attn_floats;
/* One-image maps of at least sd__slab_min_floats run ResnetBlock2D / Upsample2D convolutions on
 * row slabs of about sd__slab_floats input floats. */
extern int64_t sd__slab_floats, sd__slab_min_floats;
/* 0: 3x3 stride-1 convolutions on the backend's kernel instead of sd_wino.c */
extern int sd__own_wino;

/* A new F32 tensor (uninitialised); maps of 64 KiB and more come from dc__cpu_alloc_fit
 * (best-fit reuse of cached blocks). The caller owns the reference (not autoreleased). */
dc_tensor *sd_tensor_new(int ndim, const int64_t *shape);
/* A contiguous F32 tensor with t's values that the caller owns (t itself when it already is). */
dc_tensor *sdi_own(dc_tensor *t);

/* Kernels: GroupNorm(+SiLU) of x [N, C, S] into y (may be x); multi-head attention o = softmax(q
 * k^T / sqrt(D)) v per batch and head with rows of q/k/v/o at the given strides (o may be q). */
void sd_group_norm_kernel(const float *x, float *y, int64_t N, int64_t C, int64_t S, int64_t G, const float *w,
                          const float *b, float eps, bool silu);
dc_status sd_attention(const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                       float *o, int64_t ldo, int64_t B, int64_t L, int64_t S, int heads, int64_t D, bool causal);

/* Winograd F(2x2, 3x3) (sd_wino.c). sd_wino_weights: u [16][o][c] from w [o][c][3][3].
 * sd_wino_conv: for n images (x at image stride ldx_n, channel stride ldx, hin rows of w), the
 * stride-1 3x3 convolution with column padding 1 and row padding pr (rows outside [0, hin)
 * read as 0), oh output rows (even) of which the first oh_valid are written, w even, + bias,
 * into y (image stride ldy_n, channel stride ldy, rows of w). */
extern int64_t sd__wino_chunk_floats;
void sd_wino_weights(const float *w, int64_t o, int64_t c, float *u);
dc_status sd_wino_conv(const float *u, int64_t o, int64_t c, int64_t n, const float *x, int64_t ldx_n, int64_t ldx,
                       int64_t hin, int pr, int64_t oh, int64_t oh_valid, int64_t w, const float *bias, float *y,
                       int64_t ldy_n, int64_t ldy);

/* Layers with explicit ownership: each consumes its input x (one reference: overwritten in
 * place when nobody else holds it) and returns a new reference the caller owns; NULL + error
 * on failure (x still consumed). sdi_conv borrows x. */
dc_tensor *sdi_conv(sd_store *s, const char *prefix, const dc_tensor *x, int64_t out, int k, int stride, int pad);
dc_tensor *sdi_group_norm(sd_store *s, const char *prefix, dc_tensor *x, int groups, float eps, bool silu);
/* temb_silu: SiLU(time embedding) [B, T] or NULL */
dc_tensor *sdi_resnet(sd_store *s, const char *prefix, dc_tensor *x, const dc_tensor *temb_silu, int64_t out_ch,
                      int groups, float eps, float output_scale);
dc_tensor *sdi_attn_block(sd_store *s, const char *prefix, dc_tensor *x, int heads, int groups, float eps);
/* ctx [B, S, D] contiguous F32 (borrowed) */
dc_tensor *sdi_transformer(sd_store *s, const char *prefix, dc_tensor *x, const dc_tensor *ctx, int heads, int groups,
                           int layers, bool linear_proj);
dc_tensor *sdi_upsample(sd_store *s, const char *prefix, dc_tensor *x, int64_t out_h, int64_t out_w);
dc_tensor *sdi_downsample(sd_store *s, const char *prefix, dc_tensor *x, int padding);
/* channel concatenation of a and b (both consumed) */
dc_tensor *sdi_cat(dc_tensor *a, dc_tensor *b);

/* fills a tensor with torch.randn(shape, generator) values (or deepc's own normals) */
dc_status sd_randn_fill(dc_tensor *t, dc_noise *noise);

#endif
