/* cmd_imagine.c: `deepc imagine` (text-to-image and img2img with a Stable Diffusion diffusers
 * folder, or class-conditional sampling with deepc's own model / a UNet2DModel folder; PNG
 * output with the settings in a tEXt chunk) and `deepc diffusion train` (trains deepc's small
 * class-conditional diffusion model on MNIST / Fashion-MNIST). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "deepc/deepc.h"
#include "deepc/diffusion.h"
#include "deepc/llm.h"

static void imagine_usage(FILE *out)
{
    fprintf(out,
            "usage: deepc imagine [--model DIR|REPO_ID] [--negative TEXT] [--steps N] [--guidance G]\n"
            "                     [--scheduler pndm|ddim|ddpm|euler|euler-a|dpmpp-2m] [--karras]\n"
            "                     [--width 512] [--height 512] [--seed 0] [--num-images 1]\n"
            "                     [--init-image FILE --strength 0.75] [--noise torch|deepc]\n"
            "                     [--half] [--vae-tile N] [--threads N] [-o out.png] PROMPT\n"
            "\n"
            "With a Stable Diffusion diffusers folder (model_index.json, unet/, vae/, text_encoder/,\n"
            "tokenizer/, scheduler/) generates PROMPT as diffusers' StableDiffusionPipeline does (same\n"
            "seed, same image with --noise torch, the default). With no --model, deepc's own\n"
            "Fashion-MNIST model (models/fashion-ddpm) draws the class named by PROMPT (\"sneaker\",\n"
            "\"bag\", \"dress\", ...); a UNet2DModel folder (deepc diffusion train's output, or a diffusers\n"
            "DDPM pipeline with unet/ and scheduler/) samples with DDIM. Several images are written as\n"
            "a grid. --half keeps weights in 16 bits (half the memory); --vae-tile decodes big images in\n"
            "latent tiles. A REPO_ID is looked up in deepc's hub cache (see deepc download).\n");
}

static bool find_default_model(char *out, size_t size)
{
    const char *env = getenv("DEEPC_MODELS");
    if (env) {
        snprintf(out, size, "%s/fashion-ddpm", env);
        if (access(out, R_OK) == 0) return true;
    }
    snprintf(out, size, "models/fashion-ddpm");
    if (access(out, R_OK) == 0) return true;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        const char *rel[] = {"../models/fashion-ddpm", "../main/models/fashion-ddpm", "../share/deepc/models/fashion-ddpm"};
        for (size_t i = 0; i < 3; i++) {
            int len = snprintf(out, size, "%s/%s", exe, rel[i]);
            if (len > 0 && (size_t)len < size && access(out, R_OK) == 0) return true;
        }
    }
    return false;
}

static int run_class_model(dc_args *a, const char *dir, const char *prompt, int steps, float guidance, bool guidance_set,
                           uint64_t seed, int num, const char *outp)
{
    dc_class_model *m = dc_class_model_load(dir);
    if (!m) {
        dc_args_error(a, "%s", dc_last_error());
        return 1;
    }
    int64_t *labels = calloc((size_t)num, sizeof(int64_t));
    int cls = 0;
    if (m->num_classes > 0) {
        cls = dc_class_model_find(m, prompt);
        if (cls < 0) {
            char names[600] = "";
            for (int i = 0; i < m->num_classes; i++) {
                strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, m->class_names[i], sizeof names - strlen(names) - 1);
            }
            dc_args_error(a, "'%s' is not a class of this model (classes: %s)", prompt, names);
            free(labels);
            dc_class_model_free(m);
            return 1;
        }
    } else if (prompt && *prompt) {
        fprintf(stderr, "note: %s is unconditional; the prompt is ignored\n", dir);
    }
    for (int i = 0; i < num; i++) labels[i] = cls;
    if (!guidance_set) guidance = m->guidance;
    if (steps <= 0) steps = m->steps;
    dc_pool_mark pm = dc_pool_push();
    dc_tensor *img = dc_class_model_sample(m, labels, num, steps, guidance, seed, stderr);
    int rc = 0;
    char text[1024];
    int tlen = snprintf(text, sizeof text, "%s\nmodel: %s, class %d (%s), steps %d (ddim), guidance %g, seed %llu",
                        prompt, dir, cls, m->num_classes ? m->class_names[cls] : "-", steps, guidance,
                        (unsigned long long)seed);
    if (tlen < 0) text[0] = '\0'; /* a long prompt is cut: the PNG note is informational */
    if (!img || dc_png_write_grid(outp, img, 0, "parameters", text)) {
        dc_args_error(a, "%s", dc_last_error());
        rc = 1;
    } else {
        printf("wrote %s (%d image%s of '%s')\n", outp, num, num > 1 ? "s" : "", m->num_classes ? m->class_names[cls] : "-");
    }
    dc_pool_pop(pm);
    free(labels);
    dc_class_model_free(m);
    return rc;
}

int dc_cmd_imagine(int argc, char **argv)
{
    dc_args a;
    dc_args_init(&a, "deepc imagine", argc, argv);
    const char *model = NULL, *negative = NULL, *init_image = NULL, *outp = "out.png", *prompt = NULL;
    int steps = 0, width = 0, height = 0, num = 1, vae_tile = 0, threads = 0;
    float guidance = 7.5f, strength = 0.75f;
    bool guidance_set = false, karras = false, half = false, torch_noise = true;
    int sched = DC_SCHED_FROM_CONFIG;
    uint64_t seed = 0;
    while (dc_args_more(&a) && !a.failed) {
        if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            imagine_usage(stdout);
            return 0;
        } else if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--negative")) negative = dc_args_str(&a, "--negative");
        else if (dc_args_flag(&a, "--steps")) steps = (int)dc_args_int(&a, "--steps", 1, 1000);
        else if (dc_args_flag(&a, "--guidance")) guidance = (float)dc_args_double(&a, "--guidance", 0, 100), guidance_set = true;
        else if (dc_args_flag(&a, "--scheduler")) sched = dc_args_choice(&a, "--scheduler", "pndm|ddim|ddpm|euler|euler-a|dpmpp-2m");
        else if (dc_args_flag(&a, "--karras")) karras = true;
        else if (dc_args_flag(&a, "--width")) width = (int)dc_args_int(&a, "--width", 8, 4096);
        else if (dc_args_flag(&a, "--height")) height = (int)dc_args_int(&a, "--height", 8, 4096);
        else if (dc_args_flag(&a, "--seed")) seed = (uint64_t)dc_args_int(&a, "--seed", 0, INT64_MAX);
        else if (dc_args_flag(&a, "--num-images")) num = (int)dc_args_int(&a, "--num-images", 1, 1000);
        else if (dc_args_flag(&a, "--init-image")) init_image = dc_args_str(&a, "--init-image");
        else if (dc_args_flag(&a, "--strength")) strength = (float)dc_args_double(&a, "--strength", 0, 1);
        else if (dc_args_flag(&a, "--noise")) torch_noise = dc_args_choice(&a, "--noise", "torch|deepc") == 0;
        else if (dc_args_flag(&a, "--half")) half = true;
        else if (dc_args_flag(&a, "--vae-tile")) vae_tile = (int)dc_args_int(&a, "--vae-tile", 8, 4096);
        else if (dc_args_flag(&a, "--threads")) threads = (int)dc_args_int(&a, "--threads", 1, 1024);
        else if (dc_args_flag(&a, "-o") || dc_args_flag(&a, "--output")) outp = dc_args_str(&a, "-o");
        else if (!prompt && (prompt = dc_args_positional(&a))) continue;
        else dc_args_unknown(&a);
    }
    if (a.failed) return 2;
    if (!prompt) {
        imagine_usage(stderr);
        return 2;
    }
    if ((width && width % 8) || (height && height % 8)) {
        dc_args_error(&a, "--width and --height must be multiples of 8 (got %d x %d)", width, height);
        return 2;
    }
    if (threads) dc_set_num_threads(threads);
    char dir[2048];
    if (!model) {
        if (!find_default_model(dir, sizeof dir)) {
            dc_args_error(&a, "deepc's own model (models/fashion-ddpm) was not found; pass --model DIR or set DEEPC_MODELS");
            return 1;
        }
    } else if (access(model, R_OK) == 0) {
        snprintf(dir, sizeof dir, "%s", model);
    } else if (strchr(model, '/') && dc_hf_cache_dir(model, dir, sizeof dir) && access(dir, R_OK) == 0) {
        /* a repo already in deepc's hub cache */
    } else {
        dc_args_error(&a, "--model %s: no such folder (a hub repo id must be downloaded first, e.g. with "
                          "huggingface-cli download %s --local-dir DIR)", model, model);
        return 1;
    }
    char probe[2100];
    snprintf(probe, sizeof probe, "%s/model_index.json", dir);
    if (access(probe, R_OK) != 0) {
        if (init_image || negative) fprintf(stderr, "note: --init-image/--negative apply to Stable Diffusion only\n");
        return run_class_model(&a, dir, prompt, steps, guidance, guidance_set, seed, num, outp);
    }
    dc_sd_pipeline *p = dc_sd_pipeline_load(dir, half ? DC_F16 : DC_F32);
    if (!p) {
        dc_args_error(&a, "%s", dc_last_error());
        return 1;
    }
    dc_sd_options o = dc_sd_options_default();
    o.prompt = prompt;
    o.negative = negative;
    o.steps = steps > 0 ? steps : 25;
    o.guidance = guidance;
    o.scheduler = (dc_sched_kind)sched;
    o.karras = karras;
    o.width = width;
    o.height = height;
    o.seed = seed;
    o.num_images = num;
    o.torch_noise = torch_noise;
    o.strength = strength;
    o.vae_tile = vae_tile;
    o.progress = stderr;
    float *init = NULL;
    int rc = 0;
    dc_pool_mark pm = dc_pool_push();
    if (init_image) {
        int w, h, c;
        uint8_t *pix = dc_image_read(init_image, &w, &h, &c);
        if (!pix) {
            dc_args_error(&a, "%s", dc_last_error());
            rc = 1;
            goto out;
        }
        if ((width && width != w) || (height && height != h) || w % 8 || h % 8) {
            dc_args_error(&a, "--init-image %s is %dx%d: it must be a multiple of 8 and match --width/--height", init_image,
                          w, h);
            free(pix);
            rc = 1;
            goto out;
        }
        o.width = w;
        o.height = h;
        init = malloc(sizeof(float) * 3 * (size_t)w * (size_t)h);
        for (int ch = 0; ch < 3; ch++)
            for (int k = 0; k < w * h; k++) init[(size_t)ch * w * h + k] = (float)pix[k * c + (c >= 3 ? ch : 0)] / 255.0f;
        free(pix);
        o.init_image = init;
    }
    dc_tensor *img = dc_sd_generate(p, &o);
    char text[4096];
    snprintf(text, sizeof text, "%s\nNegative prompt: %s\nSteps: %d, Sampler: %s%s, CFG scale: %g, Seed: %llu, Size: %dx%d, "
             "Model: %s, Noise: %s%s",
             prompt, negative ? negative : "", o.steps, dc_sched_name(o.scheduler), karras ? " karras" : "", guidance,
             (unsigned long long)seed, img ? (int)img->shape[3] : 0, img ? (int)img->shape[2] : 0, dir,
             torch_noise ? "torch" : "deepc", init_image ? ", img2img" : "");
    if (!img || dc_png_write_grid(outp, img, 0, "parameters", text)) {
        dc_args_error(&a, "%s", dc_last_error());
        rc = 1;
    } else {
        printf("wrote %s\n", outp);
    }
out:
    dc_pool_pop(pm);
    free(init);
    dc_sd_pipeline_free(p);
    return rc;
}

static void diffusion_usage(FILE *out)
{
    fprintf(out,
            "usage: deepc diffusion train [--dataset fashion-mnist|mnist] [--epochs 10] [--batch-size 128]\n"
            "                             [--lr 1e-3] [--channels 32] [--seed 0] [--limit N] [--data-dir DIR]\n"
            "                             [--threads N] --out DIR\n"
            "\n"
            "Trains deepc's small class-conditional UNet2DModel with the DDPM objective (10%% of labels\n"
            "dropped for classifier-free guidance) and writes a diffusers folder (config.json,\n"
            "diffusion_pytorch_model.safetensors, scheduler_config.json) plus deepc.json (class names),\n"
            "ready for `deepc imagine --model DIR CLASS`.\n");
}

int dc_cmd_diffusion(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "train")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            diffusion_usage(stdout);
            return 0;
        }
        diffusion_usage(stderr);
        return 2;
    }
    dc_args a;
    dc_args_init(&a, "deepc diffusion train", argc - 1, argv + 1);
    dc_diffusion_train_config c;
    dc_diffusion_train_defaults(&c);
    c.log = stderr;
    int threads = 0;
    while (dc_args_more(&a) && !a.failed) {
        if (dc_args_flag(&a, "--help")) {
            diffusion_usage(stdout);
            return 0;
        } else if (dc_args_flag(&a, "--dataset")) c.dataset = dc_args_str(&a, "--dataset");
        else if (dc_args_flag(&a, "--epochs")) c.epochs = (int)dc_args_int(&a, "--epochs", 1, 10000);
        else if (dc_args_flag(&a, "--batch-size")) c.batch_size = (int)dc_args_int(&a, "--batch-size", 1, 65536);
        else if (dc_args_flag(&a, "--lr")) c.lr = dc_args_double(&a, "--lr", 1e-8, 10);
        else if (dc_args_flag(&a, "--channels")) c.base_channels = (int)dc_args_int(&a, "--channels", 8, 512);
        else if (dc_args_flag(&a, "--seed")) c.seed = (uint64_t)dc_args_int(&a, "--seed", 0, INT64_MAX);
        else if (dc_args_flag(&a, "--limit")) c.limit = dc_args_int(&a, "--limit", 1, INT64_MAX);
        else if (dc_args_flag(&a, "--data-dir")) c.data_dir = dc_args_str(&a, "--data-dir");
        else if (dc_args_flag(&a, "--out")) c.out_dir = dc_args_str(&a, "--out");
        else if (dc_args_flag(&a, "--threads")) threads = (int)dc_args_int(&a, "--threads", 1, 1024);
        else dc_args_unknown(&a);
    }
    if (a.failed) return 2;
    if (!c.out_dir) {
        dc_args_error(&a, "--out DIR is required");
        return 2;
    }
    if (threads) dc_set_num_threads(threads);
    if (dc_diffusion_train(&c)) {
        dc_args_error(&a, "%s", dc_last_error());
        return 1;
    }
    return 0;
}
