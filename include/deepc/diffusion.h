/* deepc/diffusion.h: image generation. Stable Diffusion 1.x pipelines run natively from their
 * diffusers folders (CLIP text encoder, UNet2DConditionModel, AutoencoderKL, the schedulers
 * PNDM / DDIM / DDPM / Euler / Euler ancestral / DPM-Solver++ 2M), UNet2DModel folders
 * (unconditional or class-conditional, e.g. google/ddpm-cifar10-32), and deepc's own small
 * class-conditional diffusion model trained with the DDPM objective (`deepc diffusion train`).
 *
 *   dc_sd_pipeline *p = dc_sd_pipeline_load("stable-diffusion-v1-5", DC_F32);  // or DC_F16
 *   dc_sd_options o = dc_sd_options_default();
 *   o.prompt = "a photo of an astronaut"; o.steps = 25; o.seed = 0;
 *   dc_tensor *img = dc_sd_generate(p, &o);       // [N, 3, H, W] in [0, 1] (pool rules)
 *   dc_png_write_grid("out.png", img, 0, "parameters", "prompt ...");
 *   dc_sd_pipeline_free(p);
 *
 * Every component computes what diffusers/transformers compute (the tests compare each one
 * against them on small random-weight models, tools/make_sd_fixtures.py), with inference in
 * no-grad mode: attention in row slices with no [B, H, L, S] score tensor and no head
 * transposes, and every block's intermediates freed as the block ends.
 *
 * Noise: dc_noise draws N(0, 1) either exactly as torch.randn(shape, generator=g) does for a
 * CPU torch.Generator seeded the same way (mt19937 + torch's vectorised Box-Muller, see
 * dc_init_normal_ in deepc/nn.h: the default, so a seed gives diffusers' initial latents
 * bit for bit), or with deepc's scalar Box-Muller over the same mt19937 (dc_randn).
 *
 * Weights: F32 safetensors are used in place (mmap'd, no copy); F16/BF16 files (or
 * weight_dtype DC_F16/DC_BF16, which converts an F32 file's tensors on first use and releases
 * their file pages) keep 16-bit weights and widen them to F32 a block at a time as each layer
 * runs, halving the weights' memory.
 */
#ifndef DEEPC_DIFFUSION_H
#define DEEPC_DIFFUSION_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "deepc/core.h"
#include "deepc/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- noise -------------------------------------------------------------------------------- */
typedef struct dc_noise {
    dc_rng rng;
    bool torch; /* true: torch.randn with a CPU generator; false: dc_randn */
} dc_noise;
void dc_noise_init(dc_noise *n, uint64_t seed, bool torch_compatible);
/* A new F32 tensor of N(0, 1) draws. */
dc_tensor *dc_noise_randn(dc_noise *n, int ndim, const int64_t *shape);

/* ---- UNet2DConditionModel / UNet2DModel -------------------------------------------------- */
typedef struct dc_unet dc_unet;
typedef struct dc_unet_info {
    bool conditional;        /* UNet2DConditionModel (cross-attention) */
    int in_channels, out_channels, sample_size;
    int cross_attention_dim; /* conditional only */
    int num_class_embeds;    /* 0: none */
} dc_unet_info;

/* Reads dir/config.json and dir/diffusion_pytorch_model[.fp16].safetensors. */
dc_unet *dc_unet_load(const char *dir, dc_dtype weight_dtype);
/* A UNet2DModel with fresh trainable weights (PyTorch's default init, drawn from rng) from a
 * config.json text. */
dc_unet *dc_unet_new(const char *config_json, dc_rng *rng);
void dc_unet_free(dc_unet *u);
const dc_unet_info *dc_unet_get_info(const dc_unet *u);
/* x [B, C, H, W], t [B] timesteps, context [B, S, D] (conditional) or NULL, class_labels [B]
 * or NULL -> the model output [B, out, H, W]. Differentiable (training) when grad is on. */
dc_tensor *dc_unet_forward(dc_unet *u, dc_tensor *x, const float *t, dc_tensor *context,
                           const int64_t *class_labels);
/* The trainable parameters (dc_unet_new) in creation order; borrowed. */
int dc_unet_parameters(dc_unet *u, dc_tensor ***params);
/* Writes dir/config.json and dir/diffusion_pytorch_model.safetensors (diffusers layout). */
dc_status dc_unet_save(dc_unet *u, const char *dir);

/* ---- AutoencoderKL ---------------------------------------------------------------------- */
typedef struct dc_vae dc_vae;
dc_vae *dc_vae_load(const char *dir, dc_dtype weight_dtype);
void dc_vae_free(dc_vae *v);
float dc_vae_scaling_factor(const dc_vae *v);
/* 2^(number of blocks - 1): image size / latent size. */
int dc_vae_scale(const dc_vae *v);
/* Decodes z [B, 4, h, w] (already divided by the scaling factor) -> [B, 3, H, W] in about
 * [-1, 1]. tile > 0: decode overlapping latent tiles of that size and blend them (bounded
 * memory for big images; not bit-equal to an untiled decode). */
dc_tensor *dc_vae_decode(dc_vae *v, dc_tensor *z, int tile);
/* x [B, 3, H, W] in [-1, 1] -> the latent distribution's mean (and logvar, if asked). */
dc_tensor *dc_vae_encode(dc_vae *v, dc_tensor *x, dc_tensor **logvar);

/* ---- CLIP text encoder -------------------------------------------------------------------- */
typedef struct dc_clip_text dc_clip_text;
dc_clip_text *dc_clip_text_load(const char *dir, dc_dtype weight_dtype);
void dc_clip_text_free(dc_clip_text *c);
/* ids [B, L] (I64) -> last_hidden_state [B, L, hidden] (final layer norm applied). */
dc_tensor *dc_clip_text_forward(dc_clip_text *c, dc_tensor *ids);

/* ---- schedulers --------------------------------------------------------------------------- */
typedef enum dc_sched_kind {
    DC_SCHED_FROM_CONFIG = -1, /* the folder's _class_name */
    DC_SCHED_PNDM = 0,
    DC_SCHED_DDIM,
    DC_SCHED_DDPM,
    DC_SCHED_EULER,
    DC_SCHED_EULER_A,
    DC_SCHED_DPMPP_2M,
} dc_sched_kind;
/* "pndm|ddim|ddpm|euler|euler-a|dpmpp-2m" -> kind, -1 if unknown */
int dc_sched_parse(const char *name);
const char *dc_sched_name(dc_sched_kind kind);

typedef struct dc_noise_scheduler dc_noise_scheduler;
/* config: a scheduler_config.json path (NULL: DDPM defaults, linear betas 1e-4..0.02, 1000
 * steps). The betas, spacing and offsets come from the config, as diffusers'
 * Scheduler.from_config does for any of the kinds. */
dc_noise_scheduler *dc_noise_scheduler_load(const char *config, dc_sched_kind kind, bool karras);
void dc_noise_scheduler_free(dc_noise_scheduler *s);
dc_sched_kind dc_noise_scheduler_kind(const dc_noise_scheduler *s);
dc_status dc_noise_scheduler_set_timesteps(dc_noise_scheduler *s, int steps);
/* Number of model evaluations of the schedule (PNDM: steps + 1). */
int dc_noise_scheduler_len(const dc_noise_scheduler *s);
float dc_noise_scheduler_timestep(const dc_noise_scheduler *s, int i);
float dc_noise_scheduler_init_sigma(const dc_noise_scheduler *s);
/* Scales the model input of evaluation i (Euler: x / sqrt(sigma^2 + 1); else x itself). */
dc_tensor *dc_noise_scheduler_scale_input(dc_noise_scheduler *s, int i, dc_tensor *x);
/* One step from evaluation i: the model output eps and the sample -> the previous sample.
 * noise draws the DDPM / Euler-ancestral noise (and Euler's unused draw, as diffusers). */
dc_tensor *dc_noise_scheduler_step(dc_noise_scheduler *s, int i, dc_tensor *eps, dc_tensor *x, dc_noise *noise);
/* q(x_t | x_0) at evaluation i's timestep (img2img): add_noise of each scheduler. */
dc_tensor *dc_noise_scheduler_add_noise(dc_noise_scheduler *s, int i, dc_tensor *x0, dc_tensor *noise);
/* alphas_cumprod[t] of the training schedule */
float dc_noise_scheduler_alpha_bar(const dc_noise_scheduler *s, int t);
int dc_noise_scheduler_train_steps(const dc_noise_scheduler *s);

/* ---- Stable Diffusion pipeline ------------------------------------------------------------- */
typedef struct dc_sd_pipeline dc_sd_pipeline;
/* A diffusers StableDiffusionPipeline folder (model_index.json, scheduler/, text_encoder/,
 * tokenizer/, unet/, vae/). */
dc_sd_pipeline *dc_sd_pipeline_load(const char *dir, dc_dtype weight_dtype);
void dc_sd_pipeline_free(dc_sd_pipeline *p);
dc_unet *dc_sd_pipeline_unet(dc_sd_pipeline *p);
dc_vae *dc_sd_pipeline_vae(dc_sd_pipeline *p);
dc_clip_text *dc_sd_pipeline_text_encoder(dc_sd_pipeline *p);
dc_tokenizer *dc_sd_pipeline_tokenizer(dc_sd_pipeline *p);

typedef struct dc_sd_options {
    const char *prompt;
    const char *negative;    /* NULL: "" (unconditional) */
    int steps;               /* 25 */
    float guidance;          /* 7.5; <= 1 turns classifier-free guidance off */
    dc_sched_kind scheduler; /* DC_SCHED_FROM_CONFIG */
    bool karras;             /* Karras sigmas (DPM-Solver++, Euler) */
    int width, height;       /* 0: unet sample_size * vae scale; multiples of 8 */
    uint64_t seed;
    int num_images;          /* 1 */
    bool torch_noise;        /* true: torch.randn-compatible noise (default) */
    const float *init_image; /* img2img: [3, height, width] in [0, 1], or NULL */
    float strength;          /* img2img: 0.75 */
    int vae_tile;            /* latent tile for a tiled decode (0: whole image) */
    FILE *progress;          /* a bar per denoising step, or NULL */
    const dc_tensor *latents; /* optional initial latents (then seed only feeds step noise) */
} dc_sd_options;
dc_sd_options dc_sd_options_default(void);
/* Tokenises a prompt as CLIPTokenizer(padding="max_length", max_length=77, truncation=True);
 * *truncated is set when the prompt had more than 75 tokens. ids must hold 77. */
dc_status dc_sd_tokenize(dc_sd_pipeline *p, const char *text, int64_t *ids, bool *truncated);
/* txt2img or img2img -> images [N, 3, H, W] in [0, 1]. */
dc_tensor *dc_sd_generate(dc_sd_pipeline *p, const dc_sd_options *o);

/* ---- deepc's own class-conditional model ----------------------------------------------------- */
typedef struct dc_diffusion_train_config {
    const char *dataset;   /* "fashion-mnist" | "mnist" */
    const char *data_dir;  /* NULL: the usual search */
    const char *out_dir;
    int epochs;            /* 10 */
    int batch_size;        /* 128 */
    double lr;             /* 1e-3 (AdamW, cosine decay with warm-up) */
    uint64_t seed;
    int64_t limit;         /* use only the first `limit` training images (0: all) */
    float cond_drop;       /* probability of the null class (classifier-free guidance): 0.1 */
    int base_channels;     /* 32: block_out_channels (c, 2c, 2c) */
    float ema_decay;       /* 0.999: the saved weights are their exponential moving average, as
                              diffusers' EMAModel (decay min(d, (1 + step) / (10 + step))); 0: off */
    FILE *log;             /* progress, or NULL */
} dc_diffusion_train_config;
void dc_diffusion_train_defaults(dc_diffusion_train_config *c);
dc_status dc_diffusion_train(const dc_diffusion_train_config *c);

/* A class-conditional UNet2DModel folder with deepc.json (class names, null class). */
typedef struct dc_class_model {
    dc_unet *unet;
    int num_classes;         /* real classes; the null class is num_classes */
    char class_names[16][32];
    float guidance;          /* default guidance scale */
    int steps;               /* default DDIM steps */
    dc_noise_scheduler *sched;
} dc_class_model;
dc_class_model *dc_class_model_load(const char *dir);
void dc_class_model_free(dc_class_model *m);
/* "sneaker" / "Sneaker" / "7" -> class index, -1 if none matches. */
int dc_class_model_find(const dc_class_model *m, const char *name);
/* Samples n images of the given classes with DDIM (eta 0) and classifier-free guidance ->
 * [n, C, H, W] in [0, 1]. */
dc_tensor *dc_class_model_sample(dc_class_model *m, const int64_t *labels, int n, int steps, float guidance,
                                 uint64_t seed, FILE *progress);

/* ---- PNG ---------------------------------------------------------------------------------- */
/* Writes images [N, C, H, W] in [0, 1] (C = 1 or 3) as one PNG, a grid of `cols` columns
 * (0: about square), with a tEXt chunk key = text when both are non-NULL. */
dc_status dc_png_write_grid(const char *path, const dc_tensor *images, int cols, const char *key,
                            const char *text);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_DIFFUSION_H */
