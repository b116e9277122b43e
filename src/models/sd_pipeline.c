/* sd_pipeline.c: diffusers' StableDiffusionPipeline / StableDiffusionImg2ImgPipeline from a
 * model folder: CLIP tokenisation (77 tokens, truncation with a warning), prompt and negative
 * prompt encoding, classifier-free guidance, the denoising loop with any scheduler, the VAE
 * decode (whole or tiled) and img2img through the VAE encoder; plus the PNG grid writer with a
 * tEXt chunk that records the prompt and settings. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "deepc/progress.h"
#include "sd_internal.h"

struct dc_sd_pipeline {
    char dir[1024];
    dc_tokenizer *tok;
    dc_clip_text *text;
    dc_unet *unet;
    dc_vae *vae;
    char sched_config[1100];
};

void dc_sd_pipeline_free(dc_sd_pipeline *p)
{
    if (!p) return;
    dc_tokenizer_free(p->tok);
    dc_clip_text_free(p->text);
    dc_unet_free(p->unet);
    dc_vae_free(p->vae);
    free(p);
}

dc_unet *dc_sd_pipeline_unet(dc_sd_pipeline *p) { return p->unet; }
dc_vae *dc_sd_pipeline_vae(dc_sd_pipeline *p) { return p->vae; }
dc_clip_text *dc_sd_pipeline_text_encoder(dc_sd_pipeline *p) { return p->text; }
dc_tokenizer *dc_sd_pipeline_tokenizer(dc_sd_pipeline *p) { return p->tok; }

dc_sd_pipeline *dc_sd_pipeline_load(const char *dir, dc_dtype weight_dtype)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    cJSON *j = sd_json_load(path);
    if (!j) {
        dc_set_error(DC_ERR_IO, "%s is not a diffusers pipeline folder (no model_index.json)", dir);
        return NULL;
    }
    const char *cls = sd_json_str(j, "_class_name", "");
    if (strcmp(cls, "StableDiffusionPipeline") && strcmp(cls, "StableDiffusionImg2ImgPipeline")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: pipeline class %s is not supported (StableDiffusionPipeline)", path, cls);
        cJSON_Delete(j);
        return NULL;
    }
    cJSON_Delete(j);
    static const char *const parts[] = {"scheduler/scheduler_config.json", "text_encoder/config.json", "tokenizer",
                                        "unet/config.json", "vae/config.json"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, parts[i]);
        if (!dc__is_file(path) && !dc__is_dir(path)) {
            dc_set_error(DC_ERR_IO, "%s: missing component %s", dir, parts[i]);
            return NULL;
        }
    }
    dc_sd_pipeline *p = dc__calloc(1, sizeof *p);
    if (!p) return NULL;
    dc__strlcpy(p->dir, sizeof p->dir, dir);
    snprintf(p->sched_config, sizeof p->sched_config, "%s/scheduler/scheduler_config.json", dir);
    snprintf(path, sizeof path, "%s/tokenizer", dir);
    if (!(p->tok = dc_tokenizer_load(path))) goto fail;
    snprintf(path, sizeof path, "%s/text_encoder", dir);
    if (!(p->text = dc_clip_text_load(path, weight_dtype))) goto fail;
    snprintf(path, sizeof path, "%s/unet", dir);
    if (!(p->unet = dc_unet_load(path, weight_dtype))) goto fail;
    if (!dc_unet_get_info(p->unet)->conditional) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s/unet: a Stable Diffusion pipeline needs a UNet2DConditionModel", dir);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/vae", dir);
    if (!(p->vae = dc_vae_load(path, weight_dtype))) goto fail;
    return p;
fail:
    dc_sd_pipeline_free(p);
    return NULL;
}

dc_sd_options dc_sd_options_default(void)
{
    return (dc_sd_options){.prompt = "", .negative = NULL, .steps = 25, .guidance = 7.5f,
                           .scheduler = DC_SCHED_FROM_CONFIG, .num_images = 1, .torch_noise = true,
                           .strength = 0.75f};
}

#define MAX_TOKENS 77

dc_status dc_sd_tokenize(dc_sd_pipeline *p, const char *text, int64_t *ids, bool *truncated)
{
    dc_encoding full = {0};
    if (dc_tokenizer_encode(p->tok, text, (size_t)-1, true, false, &full)) return dc_last_status();
    if (truncated) *truncated = full.n > MAX_TOKENS;
    dc_encoding_free(&full);
    dc_batch_options o = dc_batch_options_default();
    o.max_length = MAX_TOKENS;
    o.padding = DC_PAD_MAX_LENGTH;
    dc_encoding enc = {0};
    if (dc_tokenizer_encode_batch(p->tok, &text, 1, &o, &enc)) return dc_last_status();
    if (enc.n != MAX_TOKENS) {
        dc_encoding_free(&enc);
        return dc_set_error(DC_ERR_STATE, "tokenizer: expected %d ids, got %zu", MAX_TOKENS, enc.n);
    }
    for (int i = 0; i < MAX_TOKENS; i++) ids[i] = enc.ids[i];
    dc_encoding_free(&enc);
    return DC_OK;
}

static dc_tensor *encode_text(dc_sd_pipeline *p, const char *text)
{
    int64_t ids[MAX_TOKENS];
    bool trunc = false;
    if (dc_sd_tokenize(p, text, ids, &trunc)) return NULL;
    if (trunc)
        fprintf(stderr, "warning: the prompt is longer than %d tokens (CLIP's limit) and was truncated, as "
                        "diffusers does\n", MAX_TOKENS - 2);
    dc_tensor *t = dc_from_data(DC_I64, 2, (int64_t[]){1, MAX_TOKENS}, ids);
    return dc_clip_text_forward(p->text, t);
}

/* repeats x [1, ...] n times along dim 0 */
static dc_tensor *repeat0(dc_tensor *x, int n)
{
    if (!x || n == 1) return x;
    int64_t shape[DC_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[0] = n;
    return dc_contiguous(dc_expand(x, x->ndim, shape));
}

dc_tensor *dc_sd_generate(dc_sd_pipeline *p, const dc_sd_options *o)
{
    const dc_unet_info *ui = dc_unet_get_info(p->unet);
    const int vs = dc_vae_scale(p->vae);
    int W = o->width > 0 ? o->width : ui->sample_size * vs, H = o->height > 0 ? o->height : ui->sample_size * vs;
    if (W % 8 || H % 8 || W % vs || H % vs) {
        dc_set_error(DC_ERR_ARG, "imagine: width and height must be multiples of 8 (got %dx%d)", W, H);
        return NULL;
    }
    if (o->steps < 1 || o->num_images < 1) {
        dc_set_error(DC_ERR_ARG, "imagine: steps and num_images must be >= 1 (got %d, %d)", o->steps, o->num_images);
        return NULL;
    }
    const int N = o->num_images;
    const bool cfg = o->guidance > 1.0f;
    bool prev = dc_set_grad_enabled(false);
    dc_pool_mark m = dc_pool_push();
    dc_tensor *result = NULL;
    dc_noise_scheduler *s = dc_noise_scheduler_load(p->sched_config, o->scheduler, o->karras);
    if (!s || dc_noise_scheduler_set_timesteps(s, o->steps)) goto done;
    dc_tensor *cond = encode_text(p, o->prompt ? o->prompt : "");
    dc_tensor *ctx = repeat0(cond, N);
    if (cfg) {
        dc_tensor *unc = repeat0(encode_text(p, o->negative ? o->negative : ""), N);
        ctx = dc_cat(2, (dc_tensor *[]){unc, ctx}, 0);
    }
    if (!ctx) goto done;
    dc_noise noise;
    dc_noise_init(&noise, o->seed, o->torch_noise);
    const int64_t lh = H / vs, lw = W / vs;
    const int64_t lshape[4] = {N, ui->in_channels, lh, lw};
    int start = 0;
    dc_tensor *lat = NULL;
    if (o->init_image) {
        int n = dc_noise_scheduler_len(s);
        int init_t = (int)((float)o->steps * o->strength);
        if (init_t > o->steps) init_t = o->steps;
        start = o->steps - init_t;
        if (start < 0) start = 0;
        if (start >= n) {
            dc_set_error(DC_ERR_ARG, "imagine: strength %g with %d steps leaves no denoising step", o->strength,
                         o->steps);
            goto done;
        }
        dc_tensor *img = dc_from_data(DC_F32, 4, (int64_t[]){1, 3, H, W}, o->init_image);
        img = dc_add_scalar(dc_mul_scalar(img, 2.0f), -1.0f);
        dc_tensor *logvar = NULL;
        dc_tensor *mean = dc_vae_encode(p->vae, img, &logvar);
        if (!mean) goto done;
        dc_tensor *eps0 = dc_noise_randn(&noise, mean->ndim, mean->shape);
        dc_tensor *z = dc_add(mean, dc_mul(dc_exp(dc_mul_scalar(logvar, 0.5f)), eps0));
        z = dc_mul_scalar(z, dc_vae_scaling_factor(p->vae));
        z = repeat0(z, N);
        dc_tensor *nz = dc_noise_randn(&noise, 4, lshape);
        lat = dc_noise_scheduler_add_noise(s, start, z, nz);
    } else if (o->latents) {
        lat = dc_mul_scalar((dc_tensor *)o->latents, dc_noise_scheduler_init_sigma(s));
    } else {
        lat = dc_mul_scalar(dc_noise_randn(&noise, 4, lshape), dc_noise_scheduler_init_sigma(s));
    }
    if (!lat) goto done;
    dc_tensor_retain(lat);
    int n = dc_noise_scheduler_len(s);
    dc_progress *bar = o->progress ? dc_progress_begin(o->progress, DC_PROGRESS_AUTO, "denoising", n - start, false)
                                   : NULL;
    float *ts = dc__malloc(sizeof(float) * (size_t)(2 * N));
    for (int i = start; i < n && lat && ts; i++) {
        dc_pool_mark sm = dc_pool_push();
        float t = dc_noise_scheduler_timestep(s, i);
        for (int k = 0; k < 2 * N; k++) ts[k] = t;
        dc_tensor *inp = cfg ? dc_cat(2, (dc_tensor *[]){lat, lat}, 0) : lat;
        inp = dc_noise_scheduler_scale_input(s, i, inp);
        dc_tensor *eps = dc_unet_forward(p->unet, inp, ts, ctx, NULL);
        if (cfg && eps) {
            dc_tensor *pr[2];
            if (dc_chunk(eps, 2, 0, pr, 2) != 2) eps = NULL;
            else eps = dc_add(pr[0], dc_mul_scalar(dc_sub(pr[1], pr[0]), o->guidance));
        }
        dc_tensor *next = dc_noise_scheduler_step(s, i, eps, lat, &noise);
        if (next) dc_tensor_retain(next);
        dc_tensor_release(lat);
        lat = next;
        dc_pool_pop(sm);
        if (bar) dc_progress_update(bar, i - start + 1, (int64_t)(i - start + 1) * N, NAN);
    }
    free(ts);
    if (bar) dc_progress_end(bar, NULL);
    if (!lat) goto done;
    dc_autorelease(lat);
    dc_tensor *img = dc_vae_decode(p->vae, dc_div(lat, dc_full(DC_F32, 0, NULL, dc_vae_scaling_factor(p->vae))), o->vae_tile);
    /* (x / 2 + 0.5).clamp(0, 1) */
    result = dc_clamp(dc_add_scalar(dc_div(img, dc_full(DC_F32, 0, NULL, 2.0)), 0.5f), 0.0f, 1.0f);
done:
    if (result) dc_tensor_retain(result);
    dc_pool_pop(m);
    dc_noise_scheduler_free(s);
    dc_set_grad_enabled(prev);
    return result ? dc_autorelease(result) : NULL;
}

/* ---- PNG ------------------------------------------------------------------------------- */

typedef struct png_err_ctx {
    char msg[256];
} png_err_ctx;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_err_ctx *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

dc_status dc_png_write_grid(const char *path, const dc_tensor *images, int cols, const char *key, const char *text)
{
    if (!images || images->ndim != 4 || (images->shape[1] != 1 && images->shape[1] != 3))
        return dc_set_error(DC_ERR_SHAPE, "png: expected images [N, 1 or 3, H, W]");
    const int64_t N = images->shape[0], C = images->shape[1], H = images->shape[2], W = images->shape[3];
    if (cols <= 0) {
        cols = (int)ceil(sqrt((double)N));
        if (cols < 1) cols = 1;
    }
    if (cols > N) cols = (int)N;
    const int64_t rows = (N + cols - 1) / cols, GW = cols * W, GH = rows * H;
    float *data = malloc(sizeof(float) * (size_t)(N * C * H * W));
    uint8_t *pix = calloc((size_t)(GW * GH * C), 1);
    if (!data || !pix) {
        free(data);
        free(pix);
        return dc_set_error(DC_ERR_OOM, "png: out of memory for a %lldx%lld grid", (long long)GW, (long long)GH);
    }
    if (dc_copy_to_f32(images, data, N * C * H * W)) {
        free(data);
        free(pix);
        return dc_last_status();
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++)
                for (int64_t c = 0; c < C; c++) {
                    float v = data[((n * C + c) * H + y) * W + x];
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    /* numpy_to_pil: (images * 255).round() */
                    pix[(((n / cols) * H + y) * GW + (n % cols) * W + x) * C + c] = (uint8_t)lrintf(v * 255.0f);
                }
    free(data);
    char tmp[4096];
    dc__tmp_path(path, tmp, sizeof tmp);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(pix);
        return dc_set_error(DC_ERR_IO, "png: cannot write %s", path);
    }
    png_err_ctx err = {{0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rowp = NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        remove(tmp);
        free(pix);
        free(rowp);
        return dc_set_error(DC_ERR_IO, "png: cannot write %s: %s", path, err.msg[0] ? err.msg : "out of memory");
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)GW, (png_uint_32)GH, 8, C == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (key && text) {
        png_text t = {0};
        t.compression = PNG_TEXT_COMPRESSION_NONE;
        t.key = (png_charp)key;
        t.text = (png_charp)text;
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    rowp = malloc(sizeof(png_bytep) * (size_t)GH);
    if (!rowp) png_error(png, "out of memory");
    for (int64_t y = 0; y < GH; y++) rowp[y] = pix + y * GW * C;
    png_write_image(png, rowp);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rowp);
    free(pix);
    if (fclose(fp)) {
        remove(tmp);
        return dc_set_error(DC_ERR_IO, "png: cannot write %s", path);
    }
    return dc__commit_tmp(tmp, path);
}
