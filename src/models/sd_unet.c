/* sd_unet.c: diffusers' UNet2DConditionModel (Stable Diffusion 1.x/2.x layouts: CrossAttnDown /
 * Down / mid cross-attention / Up / CrossAttnUp blocks) and UNet2DModel (DownBlock2D,
 * AttnDownBlock2D, UpBlock2D, AttnUpBlock2D, mid block with attention, optional class
 * embedding) read from a config.json, with weights found by their state_dict names. The same
 * forward code trains deepc's own model (parameters created on first use) and runs inference
 * (mmap'd or 16-bit weights, no grad). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "deepc/io.h"
#include "sd_internal.h"

#define MAX_BLOCKS 8

typedef enum blk { BLK_DOWN, BLK_CROSS_DOWN, BLK_ATTN_DOWN, BLK_UP, BLK_CROSS_UP, BLK_ATTN_UP } blk;

struct dc_unet {
    dc_unet_info info;
    sd_store *w;
    char *config_text;   /* the config.json written back by dc_unet_save */
    int n_blocks;
    int channels[MAX_BLOCKS];
    blk down[MAX_BLOCKS], up[MAX_BLOCKS];
    int heads[MAX_BLOCKS];     /* conditional: attention heads per block (down order) */
    int head_dim;              /* UNet2DModel: attention_head_dim (0: one head per block) */
    int layers_per_block;
    int transformer_layers;
    int groups;
    float eps;
    bool flip_sin_to_cos;
    float freq_shift;
    float mid_scale;
    int downsample_padding;
    bool linear_proj;
    bool center_input;
    bool mid_attention;
    bool built;          /* every weight exists: inference may take the sdi_* path */
    dc_rng rng;
};

static int parse_block(const char *name, blk *out)
{
    static const struct { const char *n; blk b; } names[] = {
        {"DownBlock2D", BLK_DOWN},         {"CrossAttnDownBlock2D", BLK_CROSS_DOWN}, {"AttnDownBlock2D", BLK_ATTN_DOWN},
        {"UpBlock2D", BLK_UP},             {"CrossAttnUpBlock2D", BLK_CROSS_UP},     {"AttnUpBlock2D", BLK_ATTN_UP},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i].n, name)) {
            *out = names[i].b;
            return 0;
        }
    return -1;
}

static dc_unet *unet_from_config(const char *text, const char *where)
{
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        dc_set_error(DC_ERR_FORMAT, "%s: not valid JSON", where);
        return NULL;
    }
    dc_unet *u = dc__calloc(1, sizeof *u);
    if (!u) {
        cJSON_Delete(j);
        return NULL;
    }
    const char *cls = sd_json_str(j, "_class_name", "UNet2DModel");
    u->info.conditional = !strcmp(cls, "UNet2DConditionModel");
    if (!u->info.conditional && strcmp(cls, "UNet2DModel")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: model class %s is not supported (UNet2DConditionModel, UNet2DModel)",
                     where, cls);
        goto fail;
    }
    u->info.in_channels = sd_json_int(j, "in_channels", 4);
    u->info.out_channels = sd_json_int(j, "out_channels", 4);
    u->info.sample_size = sd_json_int(j, "sample_size", 64);
    u->info.cross_attention_dim = sd_json_int(j, "cross_attention_dim", 1280);
    u->info.num_class_embeds = sd_json_int(j, "num_class_embeds", 0);
    u->n_blocks = sd_json_ints(j, "block_out_channels", u->channels, MAX_BLOCKS);
    const char *downs[MAX_BLOCKS], *ups[MAX_BLOCKS];
    int nd = sd_json_strs(j, "down_block_types", downs, MAX_BLOCKS);
    int nu = sd_json_strs(j, "up_block_types", ups, MAX_BLOCKS);
    if (u->n_blocks <= 0 || nd != u->n_blocks || nu != u->n_blocks) {
        dc_set_error(DC_ERR_FORMAT, "%s: block_out_channels, down_block_types and up_block_types must have the same "
                                    "length (%d, %d, %d)", where, u->n_blocks, nd, nu);
        goto fail;
    }
    for (int i = 0; i < u->n_blocks; i++) {
        if (parse_block(downs[i], &u->down[i]) || u->down[i] > BLK_ATTN_DOWN) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: down block type %s is not supported (DownBlock2D, "
                                             "CrossAttnDownBlock2D, AttnDownBlock2D)", where, downs[i]);
            goto fail;
        }
        if (parse_block(ups[i], &u->up[i]) || u->up[i] < BLK_UP) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: up block type %s is not supported (UpBlock2D, CrossAttnUpBlock2D, "
                                             "AttnUpBlock2D)", where, ups[i]);
            goto fail;
        }
        if (!u->info.conditional && (u->down[i] == BLK_CROSS_DOWN || u->up[i] == BLK_CROSS_UP)) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: UNet2DModel cannot have cross-attention blocks", where);
            goto fail;
        }
    }
    u->layers_per_block = sd_json_int(j, "layers_per_block", 2);
    u->groups = sd_json_int(j, "norm_num_groups", 32);
    u->eps = (float)sd_json_num(j, "norm_eps", 1e-5);
    u->flip_sin_to_cos = sd_json_bool(j, "flip_sin_to_cos", true);
    u->freq_shift = (float)sd_json_num(j, "freq_shift", 0);
    u->mid_scale = (float)sd_json_num(j, "mid_block_scale_factor", 1);
    u->downsample_padding = sd_json_int(j, "downsample_padding", 1);
    u->linear_proj = sd_json_bool(j, "use_linear_projection", false);
    u->center_input = sd_json_bool(j, "center_input_sample", false);
    u->mid_attention = sd_json_bool(j, "add_attention", true);
    int tl[MAX_BLOCKS];
    int ntl = sd_json_ints(j, "transformer_layers_per_block", tl, MAX_BLOCKS);
    u->transformer_layers = ntl > 0 ? tl[0] : 1;
    for (int i = 1; i < ntl; i++)
        if (tl[i] != tl[0]) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: per-block transformer_layers_per_block is not supported", where);
            goto fail;
        }
    /* diffusers' naming quirk: for UNet2DConditionModel "attention_head_dim" is the number of
     * heads (num_attention_heads wins when given) */
    int hd[MAX_BLOCKS];
    int nh = sd_json_ints(j, "num_attention_heads", hd, MAX_BLOCKS);
    if (nh <= 0) nh = sd_json_ints(j, "attention_head_dim", hd, MAX_BLOCKS);
    if (u->info.conditional) {
        if (nh <= 0) hd[0] = 8, nh = 1;
        for (int i = 0; i < u->n_blocks; i++) u->heads[i] = nh == 1 ? hd[0] : hd[i];
        if (nh != 1 && nh != u->n_blocks) {
            dc_set_error(DC_ERR_FORMAT, "%s: attention_head_dim has %d entries for %d blocks", where, nh, u->n_blocks);
            goto fail;
        }
    } else {
        u->head_dim = nh > 0 ? hd[0] : 0;
    }
    static const char *const unsupported[][2] = {
        {"class_embed_type", NULL}, {"addition_embed_type", NULL}, {"time_cond_proj_dim", NULL},
        {"encoder_hid_dim", NULL},
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, unsupported[i][0]);
        if (v && !cJSON_IsNull(v)) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: %s is not supported", where, unsupported[i][0]);
            goto fail;
        }
    }
    const char *tet = sd_json_str(j, "time_embedding_type", "positional");
    const char *mid = sd_json_str(j, "mid_block_type", u->info.conditional ? "UNetMidBlock2DCrossAttn" : "UNetMidBlock2D");
    const char *rts = sd_json_str(j, "resnet_time_scale_shift", "default");
    const char *act = sd_json_str(j, "act_fn", "silu");
    if (strcmp(tet, "positional") || strcmp(rts, "default") || strcmp(act, "silu") ||
        (u->info.conditional && strcmp(mid, "UNetMidBlock2DCrossAttn")) ||
        (!u->info.conditional && mid && strcmp(mid, "UNetMidBlock2D"))) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: unsupported setting (time_embedding_type %s, mid_block_type %s, "
                                         "resnet_time_scale_shift %s, act_fn %s)", where, tet, mid, rts, act);
        goto fail;
    }
    if (sd_json_bool(j, "dual_cross_attention", false) || sd_json_bool(j, "only_cross_attention", false)) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: dual/only cross-attention is not supported", where);
        goto fail;
    }
    u->config_text = dc__malloc(strlen(text) + 1);
    if (!u->config_text) goto fail;
    strcpy(u->config_text, text);
    u->w = sd_store_new("unet");
    if (!u->w) goto fail;
    cJSON_Delete(j);
    return u;
fail:
    cJSON_Delete(j);
    dc_unet_free(u);
    return NULL;
}

void dc_unet_free(dc_unet *u)
{
    if (!u) return;
    dc_mem_empty_cache(); /* the model's activation blocks go back to the system with it */
    sd_store_free(u->w);
    free(u->config_text);
    free(u);
}

const dc_unet_info *dc_unet_get_info(const dc_unet *u) { return &u->info; }

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        dc_set_error(DC_ERR_IO, "cannot open %s", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        dc_set_error(DC_ERR_IO, "cannot read %s", path);
        return NULL;
    }
    fclose(f);
    b[n] = 0;
    return b;
}

dc_unet *dc_unet_load(const char *dir, dc_dtype weight_dtype)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_text(path);
    if (!text) return NULL;
    dc_unet *u = unet_from_config(text, path);
    free(text);
    if (!u) return NULL;
    if (sd_store_load_dir(u->w, dir, (const char *const[]){"diffusion_pytorch_model", "model", NULL}, weight_dtype)) {
        dc_unet_free(u);
        return NULL;
    }
    u->built = true;
    return u;
}

dc_unet *dc_unet_new(const char *config_json, dc_rng *rng)
{
    dc_unet *u = unet_from_config(config_json, "unet config");
    if (!u) return NULL;
    if (rng) u->rng = *rng;
    else dc_rng_seed(&u->rng, 0);
    u->w->create = true;
    u->w->rng = &u->rng;
    /* one forward at the smallest size creates every parameter, in the model's order */
    bool prev = dc_set_grad_enabled(false);
    dc_pool_mark m = dc_pool_push();
    int64_t s = 1;
    for (int i = 1; i < u->n_blocks; i++) s *= 2;
    dc_tensor *x = dc_zeros(DC_F32, 4, (int64_t[]){1, u->info.in_channels, s, s});
    int64_t lab = 0;
    dc_tensor *ctx = u->info.conditional ? dc_zeros(DC_F32, 3, (int64_t[]){1, 1, u->info.cross_attention_dim}) : NULL;
    dc_tensor *y = dc_unet_forward(u, x, (const float[]){0.0f}, ctx, u->info.num_class_embeds ? &lab : NULL);
    dc_pool_pop(m);
    dc_set_grad_enabled(prev);
    if (!y) {
        dc_unet_free(u);
        return NULL;
    }
    u->built = true;
    return u;
}

int dc_unet_parameters(dc_unet *u, dc_tensor ***params) { return sd_store_params(u->w, params); }

dc_status dc_unet_save(dc_unet *u, const char *dir)
{
    if (dc__mkdir_p(dir)) return dc_last_status();
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (dc_write_file_atomic(path, u->config_text, strlen(u->config_text))) return dc_last_status();
    dc_named_tensor *items = dc__malloc(sizeof *items * (size_t)(u->w->n ? u->w->n : 1));
    if (!items) return dc_last_status();
    for (int i = 0; i < u->w->n; i++) items[i] = (dc_named_tensor){u->w->names[i], u->w->tensors[i]};
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    dc_status st = dc_safetensors_save(path, u->w->n, items, (const char *const[]){"format", "pt", NULL});
    free(items);
    return st;
}

/* ---- forward ------------------------------------------------------------------------------ */


typedef struct skips {
    int n;
    dc_tensor *t[64];
} skips;

static void push_skip(skips *s, dc_tensor *t)
{
    if (s->n < 64) s->t[s->n++] = t;
}

static int attn_heads(const dc_unet *u, int block, int channels)
{
    if (u->info.conditional) return u->heads[block];
    int hd = u->head_dim > 0 ? u->head_dim : channels;
    return channels / hd;
}

/* Checks the arguments of dc_unet_forward. */
static dc_status check_args(const dc_unet *u, const dc_tensor *x, const dc_tensor *ctx, const int64_t *class_labels)
{
    const dc_unet_info *in = &u->info;
    if (x->ndim != 4 || x->shape[1] != in->in_channels) {
        char b[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "unet: expected a sample [B, %d, H, W], got %s", in->in_channels,
                            dc_shape_str(x, b, sizeof b));
    }
    if (in->conditional && (!ctx || ctx->ndim != 3 || ctx->shape[0] != x->shape[0] ||
                            ctx->shape[2] != in->cross_attention_dim))
        return dc_set_error(DC_ERR_SHAPE, "unet: encoder_hidden_states must be [%lld, S, %d]", (long long)x->shape[0],
                            in->cross_attention_dim);
    if (in->num_class_embeds && !class_labels)
        return dc_set_error(DC_ERR_ARG, "unet: class_labels are required for a class-conditional model");
    for (int64_t i = 0; in->num_class_embeds && i < x->shape[0]; i++)
        if (class_labels[i] < 0 || class_labels[i] >= in->num_class_embeds)
            return dc_set_error(DC_ERR_ARG, "unet: class label %lld outside [0, %d)", (long long)class_labels[i],
                                in->num_class_embeds);
    return DC_OK;
}

/* The time (and class) embedding [B, 4 c0] (pool rules). */
static dc_tensor *time_embedding(dc_unet *u, const float *t, int64_t B, const int64_t *class_labels)
{
    const int c0 = u->channels[0];
    dc_tensor *temb = sd_timestep_embedding(t, B, c0, u->flip_sin_to_cos, u->freq_shift);
    temb = sd_linear(u->w, "time_embedding.linear_1", temb, 4 * c0, true);
    temb = sd_linear(u->w, "time_embedding.linear_2", dc_silu(temb), 4 * c0, true);
    if (u->info.num_class_embeds && temb) {
        dc_tensor *ids = dc_from_data(DC_I64, 1, (int64_t[]){B}, class_labels);
        dc_tensor *cw = sd_w(u->w, "class_embedding.weight", 2, (int64_t[]){u->info.num_class_embeds, 4 * c0},
                             SD_INIT_NORMAL, 0);
        temb = cw ? dc_add(temb, dc_embedding(cw, ids)) : NULL;
    }
    return temb;
}

/* Inference: the sdi_* layers, each block's memory freed as soon as it is dead; skips are
 * held as references until their up block takes them. */
static dc_tensor *forward_infer(dc_unet *u, dc_tensor *x, const float *t, dc_tensor *ctx_in,
                                const int64_t *class_labels)
{
    char n[512], p[256];
    const dc_unet_info *in = &u->info;
    const int64_t B = x->shape[0];
    const int nb = u->n_blocks, c0 = u->channels[0], G = u->groups;
    const float eps = u->eps;
    dc_tensor *skip[64];
    int ns = 0;
    dc_tensor *temb = NULL, *ctx = NULL, *h = NULL;
    {
        dc_pool_mark m = dc_pool_push();
        dc_tensor *te = time_embedding(u, t, B, class_labels);
        temb = sdi_own(te ? dc_silu(te) : NULL); /* every resnet takes SiLU(temb) */
        dc_pool_pop(m);
    }
    if (!temb) goto fail;
    if (ctx_in && !(ctx = sdi_own(ctx_in))) goto fail;
    if (u->center_input) {
        dc_pool_mark m = dc_pool_push();
        h = sdi_own(dc_add_scalar(dc_mul_scalar(x, 2.0f), -1.0f));
        dc_pool_pop(m);
    } else {
        h = sdi_own(x);
    }
    if (!h) goto fail;
    dc_tensor *hin = h;
    h = sdi_conv(u->w, "conv_in", hin, c0, 3, 1, 1);
    dc_tensor_release(hin);
    if (!h) goto fail;
    skip[ns++] = dc_tensor_retain(h);
    for (int b = 0; b < nb; b++) {
        const int ch = u->channels[b], heads = attn_heads(u, b, ch);
        for (int l = 0; l < u->layers_per_block; l++) {
            NAME(p, "down_blocks.%d", b);
            h = sdi_resnet(u->w, NAME(n, "%s.resnets.%d", p, l), h, temb, ch, G, eps, 1.0f);
            if (u->down[b] == BLK_CROSS_DOWN)
                h = sdi_transformer(u->w, NAME(n, "%s.attentions.%d", p, l), h, ctx, heads, G, u->transformer_layers,
                                    u->linear_proj);
            else if (u->down[b] == BLK_ATTN_DOWN)
                h = sdi_attn_block(u->w, NAME(n, "%s.attentions.%d", p, l), h, heads, G, eps);
            if (!h) goto fail;
            if (ns < 64) skip[ns++] = dc_tensor_retain(h);
        }
        if (b < nb - 1) {
            h = sdi_downsample(u->w, NAME(n, "down_blocks.%d.downsamplers.0", b), h, u->downsample_padding);
            if (!h) goto fail;
            if (ns < 64) skip[ns++] = dc_tensor_retain(h);
        }
    }
    const int cl = u->channels[nb - 1];
    h = sdi_resnet(u->w, "mid_block.resnets.0", h, temb, cl, G, eps, u->mid_scale);
    if (in->conditional)
        h = sdi_transformer(u->w, "mid_block.attentions.0", h, ctx, u->heads[nb - 1], G, u->transformer_layers,
                            u->linear_proj);
    else if (u->mid_attention)
        h = sdi_attn_block(u->w, "mid_block.attentions.0", h, attn_heads(u, nb - 1, cl), G, eps);
    h = sdi_resnet(u->w, "mid_block.resnets.1", h, temb, cl, G, eps, u->mid_scale);
    for (int b = 0; b < nb && h; b++) {
        const int rb = nb - 1 - b, ch = u->channels[rb];
        const int heads = in->conditional ? u->heads[rb] : attn_heads(u, rb, ch);
        for (int l = 0; l < u->layers_per_block + 1 && h; l++) {
            if (ns == 0) {
                dc_set_error(DC_ERR_STATE, "unet: skip connections exhausted");
                goto fail;
            }
            NAME(p, "up_blocks.%d", b);
            h = sdi_cat(h, skip[--ns]);
            h = sdi_resnet(u->w, NAME(n, "%s.resnets.%d", p, l), h, temb, ch, G, eps, 1.0f);
            if (u->up[b] == BLK_CROSS_UP)
                h = sdi_transformer(u->w, NAME(n, "%s.attentions.%d", p, l), h, ctx, heads, G, u->transformer_layers,
                                    u->linear_proj);
            else if (u->up[b] == BLK_ATTN_UP)
                h = sdi_attn_block(u->w, NAME(n, "%s.attentions.%d", p, l), h, heads, G, eps);
        }
        if (b < nb - 1 && h) {
            /* the next skip's size (odd sizes: diffusers' forward_upsample_size) */
            const dc_tensor *next = ns > 0 ? skip[ns - 1] : NULL;
            h = sdi_upsample(u->w, NAME(n, "up_blocks.%d.upsamplers.0", b), h, next ? next->shape[2] : 0,
                             next ? next->shape[3] : 0);
        }
    }
    h = sdi_group_norm(u->w, "conv_norm_out", h, G, eps, true);
    if (h) {
        dc_tensor *y = sdi_conv(u->w, "conv_out", h, in->out_channels, 3, 1, 1);
        dc_tensor_release(h);
        h = y;
    }
fail:
    while (ns > 0) dc_tensor_release(skip[--ns]);
    if (temb) dc_tensor_release(temb);
    if (ctx) dc_tensor_release(ctx);
    return h ? dc_autorelease(h) : NULL; /* the caller's pool rules */
}

static dc_tensor *forward_layers(dc_unet *u, dc_tensor *x, const float *t, dc_tensor *ctx, const int64_t *class_labels);

dc_tensor *dc_unet_forward(dc_unet *u, dc_tensor *x, const float *t, dc_tensor *ctx, const int64_t *class_labels)
{
    if (!x) return NULL;
    if (check_args(u, x, ctx, class_labels)) return NULL;
    if (sd__infer_path && u->built && !dc_grad_enabled() && x->storage->device == DC_CPU)
        return forward_infer(u, x, t, ctx, class_labels);
    return forward_layers(u, x, t, ctx, class_labels);
}

/* The pool-based layers: training (grad on) and building a new model's parameters. */
static dc_tensor *forward_layers(dc_unet *u, dc_tensor *x, const float *t, dc_tensor *ctx, const int64_t *class_labels)
{
    char n[512], p[256];
    const dc_unet_info *in = &u->info;
    const int64_t B = x->shape[0];
    const int nb = u->n_blocks, c0 = u->channels[0], G = u->groups;
    const float eps = u->eps;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *temb = time_embedding(u, t, B, class_labels);
    dc_tensor *h = u->center_input ? dc_add_scalar(dc_mul_scalar(x, 2.0f), -1.0f) : x;
    h = sd_conv(u->w, "conv_in", h, c0, 3, 1, 1);
    skips sk = {0};
    push_skip(&sk, h);
    /* down */
    for (int b = 0; b < nb && h; b++) {
        int ch = u->channels[b];
        int heads = attn_heads(u, b, ch);
        for (int l = 0; l < u->layers_per_block && h; l++) {
            NAME(p, "down_blocks.%d", b);
            h = sd_resnet(u->w, NAME(n, "%s.resnets.%d", p, l), h, temb, ch, G, eps, 1.0f);
            if (u->down[b] == BLK_CROSS_DOWN)
                h = sd_transformer2d(u->w, NAME(n, "%s.attentions.%d", p, l), h, ctx, heads, G, u->transformer_layers,
                                     u->linear_proj);
            else if (u->down[b] == BLK_ATTN_DOWN)
                h = sd_attn_block(u->w, NAME(n, "%s.attentions.%d", p, l), h, heads, G, eps);
            push_skip(&sk, h);
        }
        if (b < nb - 1 && h) {
            h = sd_downsample(u->w, NAME(n, "down_blocks.%d.downsamplers.0", b), h, u->downsample_padding);
            push_skip(&sk, h);
        }
    }
    /* mid */
    int cl = u->channels[nb - 1];
    h = sd_resnet(u->w, "mid_block.resnets.0", h, temb, cl, G, eps, u->mid_scale);
    if (in->conditional)
        h = sd_transformer2d(u->w, "mid_block.attentions.0", h, ctx, u->heads[nb - 1], G, u->transformer_layers,
                             u->linear_proj);
    else if (u->mid_attention)
        h = sd_attn_block(u->w, "mid_block.attentions.0", h, attn_heads(u, nb - 1, cl), G, eps);
    h = sd_resnet(u->w, "mid_block.resnets.1", h, temb, cl, G, eps, u->mid_scale);
    /* up */
    for (int b = 0; b < nb && h; b++) {
        int rb = nb - 1 - b; /* the matching down block */
        int ch = u->channels[rb];
        int heads = in->conditional ? u->heads[rb] : attn_heads(u, rb, ch);
        for (int l = 0; l < u->layers_per_block + 1 && h; l++) {
            dc_tensor *skip = sk.n > 0 ? sk.t[--sk.n] : NULL;
            if (!skip) {
                dc_set_error(DC_ERR_STATE, "unet: skip connections exhausted");
                h = NULL;
                break;
            }
            NAME(p, "up_blocks.%d", b);
            h = dc_cat(2, (dc_tensor *[]){h, skip}, 1);
            h = sd_resnet(u->w, NAME(n, "%s.resnets.%d", p, l), h, temb, ch, G, eps, 1.0f);
            if (u->up[b] == BLK_CROSS_UP)
                h = sd_transformer2d(u->w, NAME(n, "%s.attentions.%d", p, l), h, ctx, heads, G, u->transformer_layers,
                                     u->linear_proj);
            else if (u->up[b] == BLK_ATTN_UP)
                h = sd_attn_block(u->w, NAME(n, "%s.attentions.%d", p, l), h, heads, G, eps);
        }
        if (b < nb - 1 && h) {
            /* the next skip's size (odd sizes: diffusers' forward_upsample_size) */
            dc_tensor *next = sk.n > 0 ? sk.t[sk.n - 1] : NULL;
            h = sd_upsample(u->w, NAME(n, "up_blocks.%d.upsamplers.0", b), h, next ? next->shape[2] : 0,
                            next ? next->shape[3] : 0);
        }
    }
    h = sd_group_norm(u->w, "conv_norm_out", h, G, eps, true);
    h = sd_conv(u->w, "conv_out", h, in->out_channels, 3, 1, 1);
    return sd_keep(m, h);
}
