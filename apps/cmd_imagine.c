/* cmd_imagine.c: `deepc imagine` (text-to-image and img2img with a Stable Diffusion diffusers
 * folder, or class-conditional sampling with deepc's own model / a UNet2DModel folder; PNG
 * output with the settings in a tEXt chunk) and `deepc diffusion train` (trains deepc's small
 * class-conditional diffusion model on MNIST / Fashion-MNIST).
 *
 * --model takes a folder or a hub repo id: a repo not yet in deepc's cache is downloaded
 * first (dc_hf_download: only the pipeline's components, safetensors only; HF_HUB_OFFLINE=1
 * uses what is there). Images go to one grid PNG, or with --separate to one PNG each
 * (out.png -> out-000.png, out-001.png, ...: what tools/check_generated_classes.sh feeds to
 * a classifier); --all-classes draws --num-images of every class of a class-conditional
 * model, one grid row per class, and --scale K enlarges the output (nearest neighbour). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "deepc/deepc.h"
#include "deepc/diffusion.h"
#include "deepc/llm.h"

static void imagine_usage(FILE *out)
{
    fprintf(out,
            "usage: deepc imagine [--model DIR|REPO_ID] [--variant fp16] [--negative TEXT] [--steps N]\n"
            "                     [--guidance G] [--scheduler pndm|ddim|ddpm|euler|euler-a|dpmpp-2m] [--karras]\n"
            "                     [--width 512] [--height 512] [--seed 0] [--num-images 1]\n"
            "                     [--init-image FILE --strength 0.75] [--noise torch|deepc]\n"
            "                     [--half] [--vae-tile N] [--threads N] [--separate] [--scale K]\n"
            "                     [--all-classes] [-o out.png] PROMPT\n"
            "\n"
            "With a Stable Diffusion diffusers folder (model_index.json, unet/, vae/, text_encoder/,\n"
            "tokenizer/, scheduler/) generates PROMPT as diffusers' StableDiffusionPipeline does (same\n"
            "seed, same image with --noise torch, the default). With no --model, deepc's own\n"
            "Fashion-MNIST model (models/fashion-ddpm) draws the class named by PROMPT (\"sneaker\",\n"
            "\"bag\", \"dress\", ...); a UNet2DModel folder (deepc diffusion train's output, or a diffusers\n"
            "DDPM pipeline with unet/ and scheduler/) samples with DDIM. Several images are written as\n"
            "a grid, or one PNG each with --separate (out.png -> out-000.png, out-001.png, ...).\n"
            "--all-classes (class-conditional models; no PROMPT) draws --num-images of every class, one\n"
            "grid row per class; --scale K enlarges the images K times. --half keeps weights in 16 bits\n"
            "(half the memory); --vae-tile decodes big images in latent tiles. A REPO_ID (org/name) not\n"
            "in deepc's hub cache is downloaded first (the pipeline's components only, safetensors F32\n"
            "or, with --variant fp16 or when only that exists, the fp16 files; HF_ENDPOINT, HF_TOKEN and\n"
            "HF_HUB_OFFLINE=1 are honoured, see deepc download).\n");
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

/* "org/name" (not a path: no leading '.' or '/', one slash) */
static bool looks_like_repo_id(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash && slash != s && slash[1] && !strchr(slash + 1, '/') && s[0] != '.' && !strstr(s, "..");
}

/* Whether dir is a Stable Diffusion pipeline: model_index.json naming a StableDiffusion*
 * class. A DDPMPipeline (unet/ + scheduler/) has a model_index.json too but is sampled by
 * the class-model path. */
static bool is_sd_pipeline(const char *dir)
{
    char path[4200];
    int len = snprintf(path, sizeof path, "%s/model_index.json", dir);
    if (len < 0 || (size_t)len >= sizeof path) return false;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    const cJSON *c = j ? cJSON_GetObjectItemCaseSensitive(j, "_class_name") : NULL;
    /* unreadable or unnamed: let the SD loader report what is wrong */
    bool sd = !cJSON_IsString(c) || strstr(c->valuestring, "StableDiffusion") != NULL;
    cJSON_Delete(j);
    return sd;
}

typedef struct out_opts {
    const char *path;
    bool separate;
    int cols;  /* grid columns, 0: about square */
    int scale; /* nearest-neighbour enlargement, 1: none */
} out_opts;

/* out.png -> out-007.png (the extension kept; none: -007 appended) */
static void numbered_path(const char *path, int i, int n, char *out, size_t size)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) dot = path + strlen(path);
    snprintf(out, size, "%.*s-%0*d%s", (int)(dot - path), path, n > 1000 ? 4 : 3, i, dot);
}

/* Writes images [N, C, H, W] as o->path (a grid) or one PNG each. Returns the status. */
static dc_status write_images(const out_opts *o, dc_tensor *img, const char *text)
{
    if (o->scale > 1 && !(img = dc_upsample_nearest2d(img, o->scale, o->scale))) return dc_last_status();
    if (!o->separate) return dc_png_write_grid(o->path, img, o->cols, "parameters", text);
    const int n = (int)img->shape[0];
    for (int i = 0; i < n; i++) {
        char path[4096];
        numbered_path(o->path, i, n, path, sizeof path);
        dc_pool_mark pm = dc_pool_push();
        dc_tensor *one = dc_narrow(img, 0, i, 1);
        dc_status st = one ? dc_png_write_grid(path, one, 1, "parameters", text) : dc_last_status();
        dc_pool_pop(pm);
        if (st) return st;
    }
    return DC_OK;
}

static void print_written(const out_opts *o, int n)
{
    if (o->separate && n > 1) {
        char first[4096], last[4096];
        numbered_path(o->path, 0, n, first, sizeof first);
        numbered_path(o->path, n - 1, n, last, sizeof last);
        printf("wrote %s ... %s", first, last);
    } else printf("wrote %s", o->path);
}

static int run_class_model(dc_args *a, const char *dir, const char *prompt, bool all_classes, int steps, float guidance,
                           bool guidance_set, uint64_t seed, int num, const out_opts *oo)
{
    dc_class_model *m = dc_class_model_load(dir);
    if (!m) {
        dc_args_error(a, "%s", dc_last_error());
        return 1;
    }
    int cls = 0;
    if (all_classes && m->num_classes <= 0) {
        dc_args_error(a, "--all-classes: %s is not class-conditional", dir);
        dc_class_model_free(m);
        return 1;
    }
    if (all_classes) {
        if (prompt && *prompt) fprintf(stderr, "note: --all-classes draws every class; the prompt is ignored\n");
    } else if (m->num_classes > 0) {
        cls = prompt ? dc_class_model_find(m, prompt) : -1;
        if (cls < 0) {
            char names[600] = "";
            for (int i = 0; i < m->num_classes; i++) {
                strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, m->class_names[i], sizeof names - strlen(names) - 1);
            }
            dc_args_error(a, "'%s' is not a class of this model (classes: %s)", prompt ? prompt : "", names);
            dc_class_model_free(m);
            return 1;
        }
    } else if (prompt && *prompt) {
        fprintf(stderr, "note: %s is unconditional; the prompt is ignored\n", dir);
    }
    const int total = all_classes ? num * m->num_classes : num;
    int64_t *labels = calloc((size_t)total, sizeof(int64_t));
    if (!labels) {
        dc_args_error(a, "out of memory");
        dc_class_model_free(m);
        return 1;
    }
    /* --all-classes: class-major, so a grid of `num` columns has one row per class */
    for (int i = 0; i < total; i++) labels[i] = all_classes ? i / num : cls;
    out_opts o = *oo;
    if (all_classes && !o.cols) o.cols = num;
    if (!guidance_set) guidance = m->guidance;
    if (steps <= 0) steps = m->steps;
    dc_pool_mark pm = dc_pool_push();
    dc_tensor *img = dc_class_model_sample(m, labels, total, steps, guidance, seed, stderr);
    int rc = 0;
    char what[160], text[1024];
    if (all_classes) snprintf(what, sizeof what, "%d classes, one row each", m->num_classes);
    else if (m->num_classes) snprintf(what, sizeof what, "class %d (%s)", cls, m->class_names[cls]);
    else snprintf(what, sizeof what, "unconditional");
    int tlen = snprintf(text, sizeof text, "%s\nmodel: %s, %s, steps %d (ddim), guidance %g, seed %llu",
                        all_classes ? "--all-classes" : prompt ? prompt : "", dir, what, steps, guidance,
                        (unsigned long long)seed);
    if (tlen < 0) text[0] = '\0'; /* a long prompt is cut: the PNG note is informational */
    if (!img || write_images(&o, img, text)) {
        dc_args_error(a, "%s", dc_last_error());
        rc = 1;
    } else {
        print_written(&o, total);
        if (all_classes) printf(" (%d image%s of each of %d classes, one row per class)\n", num, num > 1 ? "s" : "", m->num_classes);
        else printf(" (%d image%s of '%s')\n", num, num > 1 ? "s" : "", m->num_classes ? m->class_names[cls] : "-");
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
    const char *model = NULL, *negative = NULL, *init_image = NULL, *prompt = NULL, *variant = NULL;
    int steps = 0, width = 0, height = 0, num = 1, vae_tile = 0, threads = 0;
    float guidance = 7.5f, strength = 0.75f;
    bool guidance_set = false, karras = false, half = false, torch_noise = true, all_classes = false;
    out_opts oo = {"out.png", false, 0, 1};
    int sched = DC_SCHED_FROM_CONFIG;
    uint64_t seed = 0;
    while (dc_args_more(&a) && !a.failed) {
        if (dc_args_flag(&a, "--help") || dc_args_flag(&a, "-h")) {
            imagine_usage(stdout);
            return 0;
        } else if (dc_args_flag(&a, "--model")) model = dc_args_str(&a, "--model");
        else if (dc_args_flag(&a, "--variant")) variant = dc_args_str(&a, "--variant");
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
        else if (dc_args_flag(&a, "--separate")) oo.separate = true;
        else if (dc_args_flag(&a, "--scale")) oo.scale = (int)dc_args_int(&a, "--scale", 1, 16);
        else if (dc_args_flag(&a, "--all-classes")) all_classes = true;
        else if (dc_args_flag(&a, "-o") || dc_args_flag(&a, "--output")) oo.path = dc_args_str(&a, "-o");
        else if (!prompt && (prompt = dc_args_positional(&a))) continue;
        else dc_args_unknown(&a);
    }
    if (a.failed) return 2;
    if (!prompt && !all_classes) {
        imagine_usage(stderr);
        return 2;
    }
    if ((width && width % 8) || (height && height % 8)) {
        dc_args_error(&a, "--width and --height must be multiples of 8 (got %d x %d)", width, height);
        return 2;
    }
    if (threads) dc_set_num_threads(threads);
    char dir[4096];
    if (!model) {
        if (!find_default_model(dir, sizeof dir)) {
            dc_args_error(&a, "deepc's own model (models/fashion-ddpm) was not found; pass --model DIR or set DEEPC_MODELS");
            return 1;
        }
    } else if (access(model, R_OK) == 0) {
        snprintf(dir, sizeof dir, "%s", model);
    } else if (looks_like_repo_id(model)) {
        /* a hub repo: the cache when a finished download is there, else fetched now (resumes a
         * partial one; HF_HUB_OFFLINE=1 never touches the network) */
        dc_hf_download_opts ho = {0};
        ho.variant = variant;
        ho.use_cache = true;
        ho.quiet = !isatty(2);
        if (dc_hf_download(model, &ho, dir, sizeof dir)) {
            dc_args_error(&a, "--model %s: not a folder, and the hub download failed: %s", model, dc_last_error());
            return 1;
        }
    } else {
        dc_args_error(&a, "--model %s: no such folder (nor a hub repo id org/name)", model);
        return 1;
    }
    if (!is_sd_pipeline(dir)) {
        if (init_image || negative) fprintf(stderr, "note: --init-image/--negative apply to Stable Diffusion only\n");
        return run_class_model(&a, dir, prompt, all_classes, steps, guidance, guidance_set, seed, num, &oo);
    }
    if (all_classes) {
        dc_args_error(&a, "--all-classes needs a class-conditional model; %s is a Stable Diffusion pipeline", dir);
        return 2;
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
    int tlen = snprintf(text, sizeof text, "%s\nNegative prompt: %s\nSteps: %d, Sampler: %s%s, CFG scale: %g, Seed: %llu, Size: %dx%d, "
             "Model: %s, Noise: %s%s",
             prompt, negative ? negative : "", o.steps, dc_sched_name(o.scheduler), karras ? " karras" : "", guidance,
             (unsigned long long)seed, img ? (int)img->shape[3] : 0, img ? (int)img->shape[2] : 0, dir,
             torch_noise ? "torch" : "deepc", init_image ? ", img2img" : "");
    if (tlen < 0) text[0] = '\0'; /* cut when too long: the PNG note is informational */
    if (!img || write_images(&oo, img, text)) {
        dc_args_error(&a, "%s", dc_last_error());
        rc = 1;
    } else {
        print_written(&oo, num);
        printf("\n");
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
            "                             [--lr 1e-3] [--channels 32] [--ema-decay 0.999] [--seed 0] [--limit N]\n"
            "                             [--data-dir DIR] [--threads N] --out DIR\n"
            "\n"
            "Trains deepc's small class-conditional UNet2DModel with the DDPM objective (10%% of labels\n"
            "dropped for classifier-free guidance) and writes a diffusers folder (config.json,\n"
            "diffusion_pytorch_model.safetensors, scheduler_config.json) plus deepc.json (class names),\n"
            "ready for `deepc imagine --model DIR CLASS`. The saved weights are an exponential moving\n"
            "average of the trained ones (--ema-decay 0 saves the raw weights).\n");
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
        else if (dc_args_flag(&a, "--ema-decay")) c.ema_decay = (float)dc_args_double(&a, "--ema-decay", 0, 0.999999);
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
