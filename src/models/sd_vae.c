/* sd_vae.c: diffusers' AutoencoderKL: the Encoder (DownEncoderBlock2D, mid block with
 * attention, quant_conv -> latent mean / logvar) and the Decoder (post_quant_conv, mid block,
 * UpDecoderBlock2D), read from config.json; plus a tiled decode that blends overlapping latent
 * tiles so big images decode in bounded memory. Decoding runs on the sdi_* inference layers one
 * image at a time (GroupNorm is per sample, so this is exact), which halves the activation
 * memory of a guidance batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "sd_internal.h"

#define MAX_BLOCKS 8

struct dc_vae {
    sd_store *w;
    int n_blocks;
    int channels[MAX_BLOCKS];
    int layers_per_block;
    int groups;
    int latent_channels, in_channels, out_channels;
    float scaling_factor;
    bool quant_conv, mid_attention;
};


void dc_vae_free(dc_vae *v)
{
    if (!v) return;
    dc_mem_empty_cache(); /* the model's activation blocks go back to the system with it */
    sd_store_free(v->w);
    free(v);
}

dc_vae *dc_vae_load(const char *dir, dc_dtype weight_dtype)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = sd_json_load(path);
    if (!j) return NULL;
    dc_vae *v = dc__calloc(1, sizeof *v);
    if (!v) goto fail;
    const char *cls = sd_json_str(j, "_class_name", "AutoencoderKL");
    if (strcmp(cls, "AutoencoderKL")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: VAE class %s is not supported (AutoencoderKL)", path, cls);
        goto fail;
    }
    v->n_blocks = sd_json_ints(j, "block_out_channels", v->channels, MAX_BLOCKS);
    const char *downs[MAX_BLOCKS], *ups[MAX_BLOCKS];
    int nd = sd_json_strs(j, "down_block_types", downs, MAX_BLOCKS);
    int nu = sd_json_strs(j, "up_block_types", ups, MAX_BLOCKS);
    if (v->n_blocks <= 0 || nd != v->n_blocks || nu != v->n_blocks) {
        dc_set_error(DC_ERR_FORMAT, "%s: block_out_channels, down_block_types and up_block_types differ in length",
                     path);
        goto fail;
    }
    for (int i = 0; i < nd; i++)
        if (strcmp(downs[i], "DownEncoderBlock2D") || strcmp(ups[i], "UpDecoderBlock2D")) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: VAE block types %s / %s are not supported (DownEncoderBlock2D, "
                                             "UpDecoderBlock2D)", path, downs[i], ups[i]);
            goto fail;
        }
    v->layers_per_block = sd_json_int(j, "layers_per_block", 1);
    v->groups = sd_json_int(j, "norm_num_groups", 32);
    v->latent_channels = sd_json_int(j, "latent_channels", 4);
    v->in_channels = sd_json_int(j, "in_channels", 3);
    v->out_channels = sd_json_int(j, "out_channels", 3);
    v->scaling_factor = (float)sd_json_num(j, "scaling_factor", 0.18215);
    v->quant_conv = sd_json_bool(j, "use_quant_conv", true);
    v->mid_attention = sd_json_bool(j, "mid_block_add_attention", true);
    if (strcmp(sd_json_str(j, "act_fn", "silu"), "silu")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: act_fn %s is not supported (silu)", path, sd_json_str(j, "act_fn", ""));
        goto fail;
    }
    v->w = sd_store_new("vae");
    if (!v->w) goto fail;
    if (sd_store_load_dir(v->w, dir, (const char *const[]){"diffusion_pytorch_model", "model", NULL}, weight_dtype))
        goto fail;
    cJSON_Delete(j);
    return v;
fail:
    cJSON_Delete(j);
    dc_vae_free(v);
    return NULL;
}

float dc_vae_scaling_factor(const dc_vae *v) { return v->scaling_factor; }
int dc_vae_scale(const dc_vae *v) { return 1 << (v->n_blocks - 1); }

static dc_tensor *mid_block(dc_vae *v, const char *prefix, dc_tensor *h)
{
    char n[256];
    int c = v->channels[v->n_blocks - 1];
    h = sd_resnet(v->w, NAME(n, "%s.mid_block.resnets.0", prefix), h, NULL, c, v->groups, 1e-6f, 1.0f);
    if (v->mid_attention) h = sd_attn_block(v->w, NAME(n, "%s.mid_block.attentions.0", prefix), h, 1, v->groups, 1e-6f);
    return sd_resnet(v->w, NAME(n, "%s.mid_block.resnets.1", prefix), h, NULL, c, v->groups, 1e-6f, 1.0f);
}

/* One latent [1, c, h, w] (consumed) -> its image [1, out, H, W] (owned), on the sdi_* layers. */
static dc_tensor *decode_one(dc_vae *v, dc_tensor *h)
{
    char n[256];
    const int nb = v->n_blocks, G = v->groups;
    if (v->quant_conv && h) {
        dc_tensor *y = sdi_conv(v->w, "post_quant_conv", h, v->latent_channels, 1, 1, 0);
        dc_tensor_release(h);
        h = y;
    }
    if (h) {
        dc_tensor *y = sdi_conv(v->w, "decoder.conv_in", h, v->channels[nb - 1], 3, 1, 1);
        dc_tensor_release(h);
        h = y;
    }
    const int c = v->channels[nb - 1];
    h = sdi_resnet(v->w, "decoder.mid_block.resnets.0", h, NULL, c, G, 1e-6f, 1.0f);
    if (v->mid_attention) h = sdi_attn_block(v->w, "decoder.mid_block.attentions.0", h, 1, G, 1e-6f);
    h = sdi_resnet(v->w, "decoder.mid_block.resnets.1", h, NULL, c, G, 1e-6f, 1.0f);
    for (int b = 0; b < nb && h; b++) {
        const int ch = v->channels[nb - 1 - b];
        for (int l = 0; l < v->layers_per_block + 1; l++)
            h = sdi_resnet(v->w, NAME(n, "decoder.up_blocks.%d.resnets.%d", b, l), h, NULL, ch, G, 1e-6f, 1.0f);
        if (b < nb - 1) h = sdi_upsample(v->w, NAME(n, "decoder.up_blocks.%d.upsamplers.0", b), h, 0, 0);
    }
    h = sdi_group_norm(v->w, "decoder.conv_norm_out", h, G, 1e-6f, true);
    if (!h) return NULL;
    dc_tensor *y = sdi_conv(v->w, "decoder.conv_out", h, v->out_channels, 3, 1, 1);
    dc_tensor_release(h);
    return y;
}

static dc_tensor *decode_whole(dc_vae *v, dc_tensor *z)
{
    if (sd__infer_path && z->storage->device == DC_CPU) {
        const int64_t B = z->shape[0], s = dc_vae_scale(v);
        dc_tensor *out = dc_empty(DC_F32, 4, (int64_t[]){B, v->out_channels, z->shape[2] * s, z->shape[3] * s});
        for (int64_t i = 0; i < B && out; i++) {
            dc_pool_mark m = dc_pool_push();
            dc_tensor *zi = sdi_own(dc_narrow(z, 0, i, 1));
            dc_pool_pop(m);
            dc_tensor *y = decode_one(v, zi);
            if (!y) {
                dc__discard(out);
                return NULL;
            }
            memcpy(dc_data_f32(out) + i * dc_numel(y), dc_data_f32(y), (size_t)dc_numel(y) * sizeof(float));
            dc_tensor_release(y);
        }
        return out;
    }
    char n[256];
    dc_pool_mark m = dc_pool_push();
    dc_tensor *h = z;
    if (v->quant_conv) h = sd_conv(v->w, "post_quant_conv", h, v->latent_channels, 1, 1, 0);
    h = sd_conv(v->w, "decoder.conv_in", h, v->channels[v->n_blocks - 1], 3, 1, 1);
    h = mid_block(v, "decoder", h);
    for (int b = 0; b < v->n_blocks && h; b++) {
        int ch = v->channels[v->n_blocks - 1 - b];
        for (int l = 0; l < v->layers_per_block + 1; l++)
            h = sd_resnet(v->w, NAME(n, "decoder.up_blocks.%d.resnets.%d", b, l), h, NULL, ch, v->groups, 1e-6f, 1.0f);
        if (b < v->n_blocks - 1) h = sd_upsample(v->w, NAME(n, "decoder.up_blocks.%d.upsamplers.0", b), h, 0, 0);
    }
    h = sd_group_norm(v->w, "decoder.conv_norm_out", h, v->groups, 1e-6f, true);
    h = sd_conv(v->w, "decoder.conv_out", h, v->out_channels, 3, 1, 1);
    return sd_keep(m, h);
}

/* Tiled decode: latent tiles of `tile` with 1/4 overlap, each decoded alone, blended linearly
 * across the overlaps (diffusers' tiled_decode scheme), so memory is that of one tile. */
static dc_tensor *decode_tiled(dc_vae *v, dc_tensor *z, int tile)
{
    const int64_t B = z->shape[0], h = z->shape[2], w = z->shape[3];
    const int s = dc_vae_scale(v);
    const int64_t overlap = tile / 4, stride = tile - overlap;
    dc_tensor *out = dc_zeros(DC_F32, 4, (int64_t[]){B, v->out_channels, h * s, w * s});
    dc_tensor *wsum = dc_zeros(DC_F32, 2, (int64_t[]){h * s, w * s});
    if (!out || !wsum) return NULL;
    float *op = dc_data_f32(out), *wp = dc_data_f32(wsum);
    const int64_t H = h * s, W = w * s, ov = overlap * s;
    for (int64_t y0 = 0; y0 < h; y0 += stride) {
        for (int64_t x0 = 0; x0 < w; x0 += stride) {
            int64_t th = DC_MIN(tile, h - y0), tw = DC_MIN(tile, w - x0);
            dc_pool_mark m = dc_pool_push();
            dc_tensor *zt = dc_contiguous(dc_narrow(dc_narrow(z, 2, y0, th), 3, x0, tw));
            dc_tensor *d = decode_whole(v, zt);
            if (!d) {
                dc_pool_pop(m);
                return NULL;
            }
            const float *dp = dc_data_f32(d);
            int64_t TH = th * s, TW = tw * s, Y0 = y0 * s, X0 = x0 * s;
            for (int64_t i = 0; i < TH; i++) {
                /* ramps over the overlapping borders (none at the image edge) */
                float wy = 1.0f;
                if (y0 > 0 && i < ov) wy = (float)(i + 1) / (float)(ov + 1);
                if (y0 + th < h && i >= TH - ov) wy = DC_MIN(wy, (float)(TH - i) / (float)(ov + 1));
                for (int64_t jx = 0; jx < TW; jx++) {
                    float wx = 1.0f;
                    if (x0 > 0 && jx < ov) wx = (float)(jx + 1) / (float)(ov + 1);
                    if (x0 + tw < w && jx >= TW - ov) wx = DC_MIN(wx, (float)(TW - jx) / (float)(ov + 1));
                    float wt = wy * wx;
                    wp[(Y0 + i) * W + X0 + jx] += wt;
                    for (int64_t b = 0; b < B; b++)
                        for (int c = 0; c < v->out_channels; c++)
                            op[((b * v->out_channels + c) * H + Y0 + i) * W + X0 + jx] +=
                                wt * dp[((b * v->out_channels + c) * TH + i) * TW + jx];
                }
            }
            dc_pool_pop(m);
            if (x0 + tw >= w) break;
        }
        if (y0 + DC_MIN(tile, h - y0) >= h) break;
    }
    for (int64_t b = 0; b < B; b++)
        for (int c = 0; c < v->out_channels; c++)
            for (int64_t i = 0; i < H * W; i++) op[(b * v->out_channels + c) * H * W + i] /= wp[i];
    return out;
}

dc_tensor *dc_vae_decode(dc_vae *v, dc_tensor *z, int tile)
{
    if (!z) return NULL;
    if (z->ndim != 4 || z->shape[1] != v->latent_channels) {
        char b[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "vae: decode expects latents [B, %d, h, w], got %s", v->latent_channels,
                     dc_shape_str(z, b, sizeof b));
        return NULL;
    }
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *r = (tile > 0 && (z->shape[2] > tile || z->shape[3] > tile)) ? decode_tiled(v, z, tile)
                                                                            : decode_whole(v, z);
    dc_set_grad_enabled(prev);
    return r;
}

/* The encoder's moments (before the chunk into mean / logvar) of x, on the pool-based layers. */
static dc_tensor *encode_layers(dc_vae *v, dc_tensor *x)
{
    char n[256];
    dc_tensor *h = sd_conv(v->w, "encoder.conv_in", x, v->channels[0], 3, 1, 1);
    for (int b = 0; b < v->n_blocks && h; b++) {
        for (int l = 0; l < v->layers_per_block; l++)
            h = sd_resnet(v->w, NAME(n, "encoder.down_blocks.%d.resnets.%d", b, l), h, NULL, v->channels[b], v->groups,
                          1e-6f, 1.0f);
        if (b < v->n_blocks - 1) h = sd_downsample(v->w, NAME(n, "encoder.down_blocks.%d.downsamplers.0", b), h, 0);
    }
    h = mid_block(v, "encoder", h);
    h = sd_group_norm(v->w, "encoder.conv_norm_out", h, v->groups, 1e-6f, true);
    h = sd_conv(v->w, "encoder.conv_out", h, 2 * v->latent_channels, 3, 1, 1);
    if (v->quant_conv) h = sd_conv(v->w, "quant_conv", h, 2 * v->latent_channels, 1, 1, 0);
    return h;
}

/* The same for one image [1, C, H, W] (consumed) on the sdi_* layers; the caller owns the result. */
static dc_tensor *encode_one(dc_vae *v, dc_tensor *h)
{
    char n[256];
    const int G = v->groups, nb = v->n_blocks;
    if (h) {
        dc_tensor *y = sdi_conv(v->w, "encoder.conv_in", h, v->channels[0], 3, 1, 1);
        dc_tensor_release(h);
        h = y;
    }
    for (int b = 0; b < nb && h; b++) {
        for (int l = 0; l < v->layers_per_block; l++)
            h = sdi_resnet(v->w, NAME(n, "encoder.down_blocks.%d.resnets.%d", b, l), h, NULL, v->channels[b], G, 1e-6f,
                           1.0f);
        if (b < nb - 1) h = sdi_downsample(v->w, NAME(n, "encoder.down_blocks.%d.downsamplers.0", b), h, 0);
    }
    const int c = v->channels[nb - 1];
    h = sdi_resnet(v->w, "encoder.mid_block.resnets.0", h, NULL, c, G, 1e-6f, 1.0f);
    if (v->mid_attention) h = sdi_attn_block(v->w, "encoder.mid_block.attentions.0", h, 1, G, 1e-6f);
    h = sdi_resnet(v->w, "encoder.mid_block.resnets.1", h, NULL, c, G, 1e-6f, 1.0f);
    h = sdi_group_norm(v->w, "encoder.conv_norm_out", h, G, 1e-6f, true);
    const char *convs[2] = {"encoder.conv_out", v->quant_conv ? "quant_conv" : NULL};
    for (int i = 0; i < 2 && h && convs[i]; i++) {
        dc_tensor *y = sdi_conv(v->w, convs[i], h, 2 * v->latent_channels, i ? 1 : 3, 1, i ? 0 : 1);
        dc_tensor_release(h);
        h = y;
    }
    return h;
}

dc_tensor *dc_vae_encode(dc_vae *v, dc_tensor *x, dc_tensor **logvar)
{
    if (!x) return NULL;
    int s = dc_vae_scale(v);
    if (x->ndim != 4 || x->shape[1] != v->in_channels || x->shape[2] % s || x->shape[3] % s) {
        char b[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "vae: encode expects images [B, %d, H, W] with H, W multiples of %d, got %s",
                     v->in_channels, s, dc_shape_str(x, b, sizeof b));
        return NULL;
    }
    bool prev = dc_set_grad_enabled(false);
    dc_pool_mark m = dc_pool_push();
    dc_tensor *h;
    if (sd__infer_path && x->storage->device == DC_CPU) {
        /* the sdi_* layers, one image at a time (GroupNorm is per sample) */
        const int64_t B = x->shape[0], lc = 2 * v->latent_channels;
        h = dc_empty(DC_F32, 4, (int64_t[]){B, lc, x->shape[2] / s, x->shape[3] / s});
        for (int64_t i = 0; i < B && h; i++) {
            dc_tensor *e = encode_one(v, sdi_own(dc_narrow(x, 0, i, 1)));
            if (!e) {
                h = NULL;
                break;
            }
            memcpy(dc_data_f32(h) + i * dc_numel(e), dc_data_f32(e), (size_t)dc_numel(e) * sizeof(float));
            dc_tensor_release(e);
        }
    } else {
        h = encode_layers(v, x);
    }
    dc_tensor *parts[2] = {NULL, NULL};
    if (h && dc_chunk(h, 2, 1, parts, 2) != 2) h = NULL;
    dc_tensor *mean = h ? dc_contiguous(parts[0]) : NULL;
    dc_tensor *lv = h ? dc_contiguous(dc_clamp(parts[1], -30.0f, 20.0f)) : NULL;
    if (mean) dc_tensor_retain(mean);
    if (lv) dc_tensor_retain(lv);
    dc_pool_pop(m);
    dc_set_grad_enabled(prev);
    if (!mean || !lv) {
        if (mean) dc_tensor_release(mean);
        if (lv) dc_tensor_release(lv);
        return NULL;
    }
    dc_autorelease(mean);
    dc_autorelease(lv);
    if (logvar) *logvar = lv;
    return mean;
}
