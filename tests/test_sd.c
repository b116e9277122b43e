/* test_sd.c: the diffusion components against diffusers / transformers on the small
 * random-weight pipeline of tools/make_sd_fixtures.py (tests/fixtures/sd): CLIP tokens and
 * text states, UNet2DConditionModel noise predictions at three timesteps, AutoencoderKL decode
 * (16-bit stored weights) and encode, the class-conditional UNet2DModel, torch.randn-exact
 * initial latents, and 3-step pipeline images for every scheduler (within 1/255 per pixel),
 * plus img2img, bad-input errors, the PNG writer and a few steps of own-model training; and
 * the no-grad inference path (sd_infer.c) against the pool-based layers with its blocked code
 * paths forced on (conv output-channel blocks, GEGLU column blocks, attention row blocks,
 * one-image row slabs), in F32 and with 16-bit weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepc/diffusion.h"
#include "models/sd_internal.h"
#include "support/testlib.h"

#define COMPONENT_RTOL 1e-4

static char pipe_dir[1024];

static void load_pipe_dir(void) { snprintf(pipe_dir, sizeof pipe_dir, "%s/sd/tiny_pipe", tl_fixtures_dir()); }

static dc_sd_pipeline *load_pipe(void)
{
    load_pipe_dir();
    return TL_CHECK(dc_sd_pipeline_load(pipe_dir, DC_F32));
}

static void test_text_encoder(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    dc_sd_pipeline *p = load_pipe();
    dc_tensor *tokens = tl_get_i64(ref, "tokens");
    const char *texts[3] = {dc_safetensors_metadata(ref, "prompt"), dc_safetensors_metadata(ref, "negative"), ""};
    for (int i = 0; i < 3; i++) {
        int64_t ids[77];
        TL_OK(dc_sd_tokenize(p, texts[i], ids, NULL));
        const int64_t *e = (const int64_t *)dc_data(tokens) + i * 77;
        for (int k = 0; k < 77; k++) assert_int_equal(ids[k], e[k]);
    }
    dc_tensor *out = TL_CHECK(dc_clip_text_forward(dc_sd_pipeline_text_encoder(p), tokens));
    tl_assert_close(out, tl_get(ref, "text_states"), COMPONENT_RTOL, "clip text states");
    printf("clip text: max rel error %.2e\n", tl_max_rel_error(out, tl_get(ref, "text_states")));
    dc_sd_pipeline_free(p);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static void test_unet_cond(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    dc_sd_pipeline *p = load_pipe();
    dc_tensor *x = tl_get(ref, "unet_in");
    dc_tensor *ctx = TL_CHECK(dc_narrow(tl_get(ref, "text_states"), 0, 0, 2));
    bool prev = dc_set_grad_enabled(false);
    const int ts[3] = {999, 500, 1};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "unet_out_t%d", ts[i]);
        float t[2] = {(float)ts[i], (float)ts[i]};
        dc_tensor *y = TL_CHECK(dc_unet_forward(dc_sd_pipeline_unet(p), x, t, ctx, NULL));
        tl_assert_close(y, tl_get(ref, name), COMPONENT_RTOL, name);
        printf("unet t=%d: max rel error %.2e\n", ts[i], tl_max_rel_error(y, tl_get(ref, name)));
    }
    dc_set_grad_enabled(prev);
    dc_sd_pipeline_free(p);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static void test_vae(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    dc_sd_pipeline *p = load_pipe();
    dc_vae *v = dc_sd_pipeline_vae(p);
    dc_tensor *z = dc_div(tl_get(ref, "vae_latents"), dc_full(DC_F32, 0, NULL, dc_vae_scaling_factor(v)));
    dc_tensor *y = TL_CHECK(dc_vae_decode(v, z, 0));
    tl_assert_close(y, tl_get(ref, "vae_decoded"), COMPONENT_RTOL, "vae decode");
    printf("vae decode: max rel error %.2e\n", tl_max_rel_error(y, tl_get(ref, "vae_decoded")));
    /* tiled decode stays close to the whole decode (blended seams) */
    dc_tensor *yt = TL_CHECK(dc_vae_decode(v, z, 8));
    assert_true(tl_max_rel_error(yt, y) < 0.5);
    dc_tensor *mean = TL_CHECK(dc_vae_encode(v, tl_get(ref, "vae_image"), NULL));
    tl_assert_close(mean, tl_get(ref, "vae_encoded_mean"), COMPONENT_RTOL, "vae encode mean");
    printf("vae encode: max rel error %.2e\n", tl_max_rel_error(mean, tl_get(ref, "vae_encoded_mean")));
    dc_sd_pipeline_free(p);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static void test_unet2d_class(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/sd/tiny_unet2d", tl_fixtures_dir());
    dc_unet *u = TL_CHECK(dc_unet_load(dir, DC_F32));
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *y = TL_CHECK(dc_unet_forward(u, tl_get(ref, "unet2d_in"), (const float[]){999, 10, 500}, NULL,
                                            (const int64_t[]){0, 10, 7}));
    tl_assert_close(y, tl_get(ref, "unet2d_out"), COMPONENT_RTOL, "unet2d class-conditional");
    printf("unet2d: max rel error %.2e\n", tl_max_rel_error(y, tl_get(ref, "unet2d_out")));
    /* 16-bit weights: close, not exact */
    dc_unet *uh = TL_CHECK(dc_unet_load(dir, DC_BF16));
    dc_tensor *yh = TL_CHECK(dc_unet_forward(uh, tl_get(ref, "unet2d_in"), (const float[]){999, 10, 500}, NULL,
                                             (const int64_t[]){0, 10, 7}));
    assert_true(tl_max_rel_error(yh, y) < 0.05);
    dc_set_grad_enabled(prev);
    dc_unet_free(uh);
    dc_unet_free(u);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static void test_torch_noise(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    dc_noise n;
    dc_noise_init(&n, 42, true);
    dc_tensor *z = TL_CHECK(dc_noise_randn(&n, 4, (int64_t[]){1, 4, 64, 64}));
    dc_tensor *e = tl_get(ref, "randn_seed42");
    assert_int_equal(memcmp(dc_data(z), dc_data(e), sizeof(float) * 4 * 64 * 64), 0); /* bit-exact */
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static double max_abs_diff(const dc_tensor *nchw, const dc_tensor *nhwc)
{
    const int64_t N = nchw->shape[0], C = nchw->shape[1], H = nchw->shape[2], W = nchw->shape[3];
    const float *a = dc_data_f32(nchw), *b = dc_data_f32(nhwc);
    double mx = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = 0; y < H; y++)
                for (int64_t x = 0; x < W; x++) {
                    double d = fabs(a[((n * C + c) * H + y) * W + x] - b[((n * H + y) * W + x) * C + c]);
                    mx = d > mx ? d : mx;
                }
    return mx;
}

static void test_pipeline_schedulers(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    dc_sd_pipeline *p = load_pipe();
    static const struct { const char *name; dc_sched_kind kind; bool karras; } cases[] = {
        {"pndm", DC_SCHED_PNDM, false},          {"ddim", DC_SCHED_DDIM, false},   {"ddpm", DC_SCHED_DDPM, false},
        {"euler", DC_SCHED_EULER, false},        {"euler-a", DC_SCHED_EULER_A, false},
        {"dpmpp-2m", DC_SCHED_DPMPP_2M, false}, {"dpmpp-2m-karras", DC_SCHED_DPMPP_2M, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dc_pool_mark im = dc_pool_push();
        dc_sd_options o = dc_sd_options_default();
        o.prompt = dc_safetensors_metadata(ref, "prompt");
        o.negative = dc_safetensors_metadata(ref, "negative");
        o.steps = 3;
        o.width = o.height = 32;
        o.seed = 0;
        o.scheduler = cases[i].kind;
        o.karras = cases[i].karras;
        dc_tensor *img = TL_CHECK(dc_sd_generate(p, &o));
        char name[64];
        snprintf(name, sizeof name, "image_%s", cases[i].name);
        double d = max_abs_diff(img, tl_get(ref, name));
        printf("pipeline %-16s max pixel diff %.2e (x255 = %.3f)\n", cases[i].name, d, d * 255);
        assert_true(d <= 1.0 / 255);
        dc_pool_pop(im);
    }
    /* two images, no negative prompt */
    dc_sd_options o = dc_sd_options_default();
    o.prompt = dc_safetensors_metadata(ref, "prompt");
    o.steps = 3;
    o.guidance = 5.0f;
    o.width = o.height = 32;
    o.seed = 3;
    o.num_images = 2;
    o.scheduler = DC_SCHED_DDIM;
    dc_tensor *img = TL_CHECK(dc_sd_generate(p, &o));
    double d = max_abs_diff(img, tl_get(ref, "image_ddim_x2"));
    printf("pipeline ddim x2          max pixel diff %.2e\n", d);
    assert_true(d <= 1.0 / 255);
    /* img2img from the PNG the fixture script wrote */
    char path[1200];
    snprintf(path, sizeof path, "%s/sd/init.png", tl_fixtures_dir());
    int w, h, c;
    uint8_t *pix = TL_CHECK(dc_image_read(path, &w, &h, &c));
    assert_int_equal(w, 32);
    float *init = malloc(sizeof(float) * 3 * 32 * 32);
    for (int ch = 0; ch < 3; ch++)
        for (int k = 0; k < 32 * 32; k++) init[ch * 1024 + k] = (float)pix[k * c + ch] / 255.0f;
    free(pix);
    o = dc_sd_options_default();
    o.prompt = dc_safetensors_metadata(ref, "prompt");
    o.steps = 4;
    o.strength = 0.75f;
    o.seed = 5;
    o.width = o.height = 32;
    o.scheduler = DC_SCHED_DDIM;
    o.init_image = init;
    img = TL_CHECK(dc_sd_generate(p, &o));
    free(init);
    d = max_abs_diff(img, tl_get(ref, "image_img2img"));
    printf("img2img ddim              max pixel diff %.2e\n", d);
    assert_true(d <= 1.0 / 255);
    dc_sd_pipeline_free(p);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_sd_pipeline *p = load_pipe();
    dc_sd_options o = dc_sd_options_default();
    o.prompt = "x";
    o.width = 30;
    o.height = 32;
    assert_null(dc_sd_generate(p, &o));
    assert_non_null(strstr(dc_last_error(), "multiples of 8"));
    /* a prompt over 77 tokens is truncated (with a warning), not an error */
    char longp[2000] = "";
    for (int i = 0; i < 100; i++) strcat(longp, "shoe ");
    int64_t ids[77];
    bool trunc = false;
    TL_OK(dc_sd_tokenize(p, longp, ids, &trunc));
    assert_true(trunc);
    dc_sd_pipeline_free(p);
    assert_null(dc_sd_pipeline_load("/nonexistent-folder", DC_F32));
    assert_non_null(strstr(dc_last_error(), "model_index.json"));
    assert_null(dc_unet_new("{\"_class_name\": \"UNet2DModel\", \"block_out_channels\": [8], "
                            "\"down_block_types\": [\"SkipDownBlock2D\"], \"up_block_types\": [\"UpBlock2D\"]}", NULL));
    assert_non_null(strstr(dc_last_error(), "SkipDownBlock2D"));
    assert_int_equal(dc_sched_parse("nope"), -1);
    assert_int_equal(dc_sched_parse("euler-a"), DC_SCHED_EULER_A);
    dc_pool_pop(m);
}

static void test_png_and_training_step(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *img = dc_rand(4, (int64_t[]){3, 1, 8, 8}, NULL);
    char path[] = "/tmp/deepc_sd_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    TL_OK(dc_png_write_grid(path, img, 0, "parameters", "test"));
    int w, h, c;
    uint8_t *pix = TL_CHECK(dc_image_read(path, &w, &h, &c));
    assert_int_equal(w, 16);
    assert_int_equal(h, 16);
    free(pix);
    unlink(path);
    /* a tiny class-conditional model: loss goes down over a few AdamW steps on one batch */
    const char *cfg = "{\"_class_name\": \"UNet2DModel\", \"sample_size\": 8, \"in_channels\": 1, \"out_channels\": 1,"
                      " \"layers_per_block\": 1, \"block_out_channels\": [8, 16], \"norm_num_groups\": 4,"
                      " \"down_block_types\": [\"DownBlock2D\", \"AttnDownBlock2D\"],"
                      " \"up_block_types\": [\"AttnUpBlock2D\", \"UpBlock2D\"], \"num_class_embeds\": 3,"
                      " \"attention_head_dim\": 8}";
    dc_rng rng;
    dc_rng_seed(&rng, 0);
    dc_unet *u = TL_CHECK(dc_unet_new(cfg, &rng));
    dc_tensor **params;
    int np = dc_unet_parameters(u, &params);
    assert_true(np > 10);
    dc_optimizer *opt = TL_CHECK(dc_adamw_new(np, params, dc_adamw_options(3e-3)));
    dc_tensor *x = dc_randn(4, (int64_t[]){4, 1, 8, 8}, &rng);
    dc_tensor *target = dc_randn(4, (int64_t[]){4, 1, 8, 8}, &rng);
    double first = 0, last = 0;
    for (int it = 0; it < 8; it++) {
        dc_pool_mark sm = dc_pool_push();
        dc_optimizer_zero_grad(opt);
        dc_tensor *y = dc_unet_forward(u, x, (const float[]){10, 200, 500, 900}, NULL, (const int64_t[]){0, 1, 2, 0});
        dc_tensor *loss = TL_CHECK(dc_mse_loss(y, target, DC_REDUCE_MEAN));
        TL_OK(dc_backward(loss, NULL, false));
        TL_OK(dc_optimizer_step(opt));
        if (it == 0) first = dc_item(loss);
        last = dc_item(loss);
        dc_pool_pop(sm);
    }
    printf("tiny unet training: loss %.4f -> %.4f\n", first, last);
    assert_true(last < first);
    char dir[] = "/tmp/deepc_sd_unet_XXXXXX";
    assert_non_null(mkdtemp(dir));
    TL_OK(dc_unet_save(u, dir));
    dc_unet *u2 = TL_CHECK(dc_unet_load(dir, DC_F32));
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *a = dc_unet_forward(u, x, (const float[]){1, 2, 3, 4}, NULL, (const int64_t[]){0, 1, 2, 0});
    dc_tensor *b = dc_unet_forward(u2, x, (const float[]){1, 2, 3, 4}, NULL, (const int64_t[]){0, 1, 2, 0});
    tl_assert_close(b, a, 1e-6, "saved unet reloads");
    dc_set_grad_enabled(prev);
    dc_unet_free(u2);
    char f[1200];
    snprintf(f, sizeof f, "%s/config.json", dir);
    unlink(f);
    snprintf(f, sizeof f, "%s/diffusion_pytorch_model.safetensors", dir);
    unlink(f);
    rmdir(dir);
    dc_optimizer_free(opt);
    dc_unet_free(u);
    dc_pool_pop(m);
}

/* Caps small enough that the tiny models take every blocked path of sd_infer.c. */
static void force_blocks(bool on)
{
    static int64_t saved[6];
    int64_t *knobs[6] = {&sd__conv_scratch_floats, &sd__block_floats,    &sd__attn_floats,
                         &sd__slab_floats,         &sd__slab_min_floats, &sd__wino_chunk_floats};
    if (on) {
        for (int i = 0; i < 6; i++) saved[i] = *knobs[i];
        sd__conv_scratch_floats = 2000; /* weights of 1 or 2 output channels per block */
        sd__block_floats = 64;
        sd__attn_floats = 40;
        sd__slab_floats = 1; /* two rows per slab */
        sd__slab_min_floats = 0;
        sd__wino_chunk_floats = 1; /* Winograd chunks of 8 tiles (column ranges of tile rows) */
    } else {
        for (int i = 0; i < 6; i++) *knobs[i] = saved[i];
    }
}

/* dc_unet_forward / dc_vae_decode on the inference path, default and blocked, against the
 * pool-based layers (sd__infer_path = 0) on the same weights. */
static void check_infer_paths(dc_dtype wd)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    load_pipe_dir();
    dc_sd_pipeline *p = TL_CHECK(dc_sd_pipeline_load(pipe_dir, wd));
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *x = tl_get(ref, "unet_in");
    dc_tensor *ctx = TL_CHECK(dc_narrow(tl_get(ref, "text_states"), 0, 0, 2));
    dc_vae *v = dc_sd_pipeline_vae(p);
    dc_tensor *z = dc_div(tl_get(ref, "vae_latents"), dc_full(DC_F32, 0, NULL, dc_vae_scaling_factor(v)));
    const float t[2] = {500, 500};
    dc_tensor *img = tl_get(ref, "vae_image");
    sd__infer_path = 0;
    dc_tensor *u_ref = TL_CHECK(dc_unet_forward(dc_sd_pipeline_unet(p), x, t, ctx, NULL));
    dc_tensor *v_ref = TL_CHECK(dc_vae_decode(v, z, 0));
    dc_tensor *e_ref = TL_CHECK(dc_vae_encode(v, img, NULL));
    sd__infer_path = 1;
    static const char *const variants[3] = {"default", "blocked", "blocked, backend conv"};
    for (int variant = 0; variant < 3; variant++) {
        force_blocks(variant > 0);
        sd__own_wino = variant < 2;
        dc_tensor *u = TL_CHECK(dc_unet_forward(dc_sd_pipeline_unet(p), x, t, ctx, NULL));
        dc_tensor *d = TL_CHECK(dc_vae_decode(v, z, 0));
        dc_tensor *e = TL_CHECK(dc_vae_encode(v, img, NULL));
        force_blocks(false);
        sd__own_wino = 1;
        printf("inference path (%s, %s): unet %.2e, vae decode %.2e, encode %.2e\n", dc_dtype_name(wd),
               variants[variant], tl_max_rel_error(u, u_ref), tl_max_rel_error(d, v_ref), tl_max_rel_error(e, e_ref));
        tl_assert_close(u, u_ref, 1e-5, "unet inference path");
        tl_assert_close(d, v_ref, 1e-5, "vae decode inference path");
        tl_assert_close(e, e_ref, 1e-5, "vae encode inference path");
    }
    dc_set_grad_enabled(prev);
    dc_sd_pipeline_free(p);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

static void test_infer_paths(void **state)
{
    (void)state;
    check_infer_paths(DC_F32);
    check_infer_paths(DC_F16);
    /* UNet2DModel: attention blocks and class embeddings */
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *ref = tl_fixture("sd/ref.safetensors");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/sd/tiny_unet2d", tl_fixtures_dir());
    dc_unet *u = TL_CHECK(dc_unet_load(dir, DC_F32));
    bool prev = dc_set_grad_enabled(false);
    const float t[3] = {999, 10, 500};
    const int64_t labels[3] = {0, 10, 7};
    sd__infer_path = 0;
    dc_tensor *y_ref = TL_CHECK(dc_unet_forward(u, tl_get(ref, "unet2d_in"), t, NULL, labels));
    sd__infer_path = 1;
    force_blocks(true);
    dc_tensor *y = TL_CHECK(dc_unet_forward(u, tl_get(ref, "unet2d_in"), t, NULL, labels));
    force_blocks(false);
    tl_assert_close(y, y_ref, 1e-5, "unet2d inference path (blocked)");
    dc_set_grad_enabled(prev);
    dc_unet_free(u);
    dc_safetensors_close(ref);
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_encoder),        cmocka_unit_test(test_unet_cond),
        cmocka_unit_test(test_vae),                 cmocka_unit_test(test_unet2d_class),
        cmocka_unit_test(test_torch_noise),         cmocka_unit_test(test_pipeline_schedulers),
        cmocka_unit_test(test_bad_input),           cmocka_unit_test(test_png_and_training_step),
        cmocka_unit_test(test_infer_paths),
    };
    return TL_RUN(tests);
}
