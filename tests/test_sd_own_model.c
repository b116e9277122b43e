/* test_sd_own_model.c: deepc's own diffusion model (models/fashion-ddpm, written by `deepc
 * diffusion train`) computes what diffusers computes with the same folder. The reference is
 * tests/fixtures/sd/own_model_forward.safetensors, written by
 *
 *     /work/venv-sd/bin/python tools/check_diffusion_model.py models/fashion-ddpm
 *
 * which first checks that diffusers.UNet2DModel.from_pretrained loads the folder with no
 * missing or unexpected weights, then runs one forward (batch 2, timesteps [10, 700], class
 * labels [3, 10]: a real class and the null class of classifier-free guidance). After the
 * model is retrained, run that command again and commit the fixture with the model: the
 * fixture records the sha256 of the weights, and a mismatch fails here with that command.
 *
 * deepc loads the folder as `deepc imagine` does (dc_class_model_load: config.json, weights,
 * scheduler_config.json, deepc.json) and runs the UNet in inference mode (no grad: the path
 * sampling takes) and with grad on (the path training takes); both must match diffusers at
 * 1e-4 relative. Skipped, with a message, only when models/fashion-ddpm is absent. */
#include "support/testlib.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "deepc/diffusion.h"
#include "util/sha256.h"

#define MODEL_DIR "models/fashion-ddpm"
#define FIXTURE "sd/own_model_forward.safetensors"
#define REGEN "/work/venv-sd/bin/python tools/check_diffusion_model.py " MODEL_DIR

static void test_own_model_matches_diffusers(void **state)
{
    (void)state;
    if (access(MODEL_DIR "/config.json", R_OK)) {
        printf("  skipped: %s is not in this checkout (run from the repo root; `deepc diffusion train --out %s` "
               "makes it)\n", MODEL_DIR, MODEL_DIR);
        skip();
    }
    char fx[4096];
    snprintf(fx, sizeof fx, "%s/%s", tl_fixtures_dir(), FIXTURE);
    if (access(fx, R_OK)) fail_msg("%s is missing: run %s", fx, REGEN);
    dc_pool_mark mark = dc_pool_push();
    dc_safetensors *ref = tl_fixture(FIXTURE);
    /* the fixture belongs to these weights */
    const char *want = dc_safetensors_metadata(ref, "weights_sha256");
    char have[65];
    TL_OK(dc__sha256_file(MODEL_DIR "/diffusion_pytorch_model.safetensors", have));
    if (!want || strcmp(want, have))
        fail_msg("%s was made from other weights (sha256 %.12s..., %s/diffusion_pytorch_model.safetensors is %.12s...): "
                 "run %s", FIXTURE, want ? want : "(none)", MODEL_DIR, have, REGEN);

    dc_class_model *m = dc_class_model_load(MODEL_DIR);
    if (!m) fail_msg("dc_class_model_load(%s): %s", MODEL_DIR, dc_last_error());
    const dc_unet_info *info = dc_unet_get_info(m->unet);
    dc_tensor *x = tl_get(ref, "x"), *t = tl_get(ref, "timesteps"), *want_out = tl_get(ref, "out");
    dc_tensor *lab = tl_get_i64(ref, "class_labels");
    assert_int_equal(x->shape[0], 2);
    assert_int_equal(x->shape[1], info->in_channels);
    assert_int_equal(x->shape[2], info->sample_size);
    assert_int_equal(info->num_class_embeds, m->num_classes + 1); /* the null class last */
    const float *ts = dc_data_f32(t);
    const int64_t *labels = (const int64_t *)dc_data(lab); /* tl_get_i64: contiguous I64 */
    printf("  %s: %d classes, %dx%dx%d; timesteps [%g, %g], labels [%lld, %lld]\n", MODEL_DIR, m->num_classes,
           info->in_channels, info->sample_size, info->sample_size, ts[0], ts[1], (long long)labels[0],
           (long long)labels[1]);

    bool prev = dc_set_grad_enabled(false);
    dc_tensor *y = TL_CHECK(dc_unet_forward(m->unet, x, ts, NULL, labels));
    printf("  inference path: max rel error vs diffusers %.3g\n", tl_max_rel_error(y, want_out));
    tl_assert_close(y, want_out, 1e-4, "own model forward (no grad) vs diffusers");
    dc_set_grad_enabled(true);
    dc_tensor *yg = TL_CHECK(dc_unet_forward(m->unet, x, ts, NULL, labels));
    printf("  training path:  max rel error vs diffusers %.3g\n", tl_max_rel_error(yg, want_out));
    tl_assert_close(yg, want_out, 1e-4, "own model forward (grad on) vs diffusers");
    dc_set_grad_enabled(prev);

    dc_pool_pop(mark);
    dc_safetensors_close(ref);
    dc_class_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_model_matches_diffusers),
    };
    return TL_RUN(tests);
}
