/* sd_train.c: deepc's own class-conditional diffusion model. `deepc diffusion train` trains a
 * small UNet2DModel (diffusers layout: config.json + diffusion_pytorch_model.safetensors, so
 * UNet2DModel.from_pretrained loads it) on MNIST / Fashion-MNIST with the DDPM objective
 * (predict the noise of x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t uniform in [0, 1000)),
 * dropping the label to a null class 10% of the time so sampling can use classifier-free
 * guidance; sampling is DDIM (eta 0) in a few dozen steps. The saved weights are an exponential
 * moving average of the trained ones (diffusers' EMAModel), as DDPM training scripts do: the
 * raw weights at lr 1e-3 draw visibly worse samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/internal.h"
#include "../util/util.h"
#include "deepc/data.h"
#include "deepc/optim.h"
#include "deepc/progress.h"
#include "sd_internal.h"

void dc_diffusion_train_defaults(dc_diffusion_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->dataset = "fashion-mnist";
    c->epochs = 10;
    c->batch_size = 128;
    c->lr = 1e-3;
    c->seed = 0;
    c->cond_drop = 0.1f;
    c->base_channels = 32;
    c->ema_decay = 0.999f;
}

static const char *sched_json =
    "{\n  \"_class_name\": \"DDPMScheduler\",\n  \"num_train_timesteps\": 1000,\n  \"beta_start\": 0.0001,\n"
    "  \"beta_end\": 0.02,\n  \"beta_schedule\": \"linear\",\n  \"clip_sample\": true,\n"
    "  \"prediction_type\": \"epsilon\",\n  \"variance_type\": \"fixed_small\"\n}\n";

/* scheduler_config.json (DDPM training schedule; sampling reads it as DDIM) and deepc.json
 * (class names, the null class used for guidance, sampling defaults, how it was trained).
 * The sampling defaults, 25 DDIM steps at guidance 1.5, were chosen on the 4-epoch Fashion-MNIST
 * model with 20 images per class drawn from seeds 100-109 (LeNet-5 agreement: guidance 1 71.5%,
 * 1.25 80.0%, 1.5 83.5%, 2 62.5%, 3 45.5%: stronger guidance saturates this small model's
 * samples); the README's 1,000-image figure uses other seeds (0-9). */
static dc_status write_sidecars(const dc_diffusion_train_config *c, const dc_dataset_info *info, int K, int epochs_done,
                                int64_t count, double secs)
{
    char path[2048], buf[2048];
    snprintf(path, sizeof path, "%s/scheduler_config.json", c->out_dir);
    dc_status st = dc_write_file_atomic(path, sched_json, strlen(sched_json));
    int n = snprintf(buf, sizeof buf, "{\n  \"dataset\": \"%s\",\n  \"class_names\": [", info->name);
    for (int k = 0; k < K; k++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%s\"%s\"", k ? ", " : "", info->class_names[k]);
    snprintf(buf + n, sizeof buf - (size_t)n,
             "],\n  \"null_class\": %d,\n  \"guidance\": 1.5,\n  \"steps\": 25,\n  \"train_seconds\": %.0f,\n"
             "  \"epochs\": %d,\n  \"epochs_planned\": %d,\n  \"batch_size\": %d,\n  \"lr\": %g,\n"
             "  \"channels\": %d,\n  \"ema_decay\": %g,\n  \"seed\": %llu,\n  \"images\": %lld\n}\n",
             K, secs, epochs_done, c->epochs, c->batch_size, c->lr, c->base_channels, c->ema_decay, (unsigned long long)c->seed,
             (long long)count);
    snprintf(path, sizeof path, "%s/deepc.json", c->out_dir);
    if (!st) st = dc_write_file_atomic(path, buf, strlen(buf));
    return st;
}

/* ---- EMA of the weights ---------------------------------------------------------------------
 * After each optimizer step (diffusers' EMAModel.step, no warm-up power):
 *   d = min(decay, (1 + step) / (10 + step)),   ema -= (1 - d) (ema - param)
 * The folder gets the averaged weights: they are swapped into the UNet for the save. */
typedef struct ema_state {
    int n;
    float **w; /* one copy per parameter */
} ema_state;

static dc_status ema_init(ema_state *e, int n, dc_tensor **params)
{
    e->w = dc__calloc((size_t)n, sizeof *e->w);
    if (!e->w) return dc_last_status();
    e->n = n;
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)dc_numel(params[i]) * sizeof(float);
        if (!(e->w[i] = dc__malloc(bytes))) return dc_last_status();
        memcpy(e->w[i], dc_data_f32(params[i]), bytes);
    }
    return DC_OK;
}

static void ema_update(ema_state *e, dc_tensor **params, float decay, int64_t step)
{
    const float d = DC_MIN(decay, (float)(1 + step) / (float)(10 + step)), a = 1.0f - d;
    for (int i = 0; i < e->n; i++) {
        const float *p = dc_data_f32(params[i]);
        float *w = e->w[i];
        const int64_t n = dc_numel(params[i]);
        for (int64_t k = 0; k < n; k++) w[k] -= a * (w[k] - p[k]);
    }
}

/* exchanges the parameters' values with the averages */
static void ema_swap(ema_state *e, dc_tensor **params)
{
    for (int i = 0; i < e->n; i++) {
        float *p = dc_data_f32(params[i]), *w = e->w[i];
        for (int64_t k = 0, n = dc_numel(params[i]); k < n; k++) {
            float t = p[k];
            p[k] = w[k];
            w[k] = t;
        }
    }
}

/* swap the averages in, save, swap the trained weights back */
static dc_status ema_save(ema_state *e, dc_tensor **params, dc_unet *u, const char *dir)
{
    ema_swap(e, params);
    dc_status st = dc_unet_save(u, dir);
    ema_swap(e, params);
    return st;
}

static void ema_free(ema_state *e)
{
    for (int i = 0; i < e->n && e->w; i++) free(e->w[i]);
    free(e->w);
}

dc_status dc_diffusion_train(const dc_diffusion_train_config *c)
{
    dc_dataset_id id;
    if (dc_dataset_parse(c->dataset, &id)) return dc_last_status();
    if (id == DC_DATASET_CIFAR10)
        return dc_set_error(DC_ERR_UNSUPPORTED, "diffusion train: --dataset must be mnist or fashion-mnist");
    if (c->epochs < 1 || c->batch_size < 1 || !(c->lr > 0) || c->base_channels < 8 || c->base_channels % 8)
        return dc_set_error(DC_ERR_ARG, "diffusion train: bad epochs/batch/lr/channels (%d, %d, %g, %d; channels a "
                                        "multiple of 8)", c->epochs, c->batch_size, c->lr, c->base_channels);
    if (!(c->ema_decay >= 0 && c->ema_decay < 1))
        return dc_set_error(DC_ERR_ARG, "diffusion train: --ema-decay must be in [0, 1), got %g", c->ema_decay);
    dc_dataset *ds = dc_dataset_load(id, DC_SPLIT_TRAIN, c->data_dir);
    if (!ds) return dc_last_status();
    const dc_dataset_info *info = ds->info;
    const int64_t count = c->limit > 0 && c->limit < ds->count ? c->limit : ds->count;
    const int ch = c->base_channels, K = info->num_classes;
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\n  \"_class_name\": \"UNet2DModel\",\n  \"_diffusers_version\": \"0.27.2\",\n  \"sample_size\": %d,\n"
             "  \"in_channels\": 1,\n  \"out_channels\": 1,\n  \"layers_per_block\": 1,\n"
             "  \"block_out_channels\": [%d, %d, %d],\n  \"down_block_types\": [\"DownBlock2D\", \"DownBlock2D\", "
             "\"AttnDownBlock2D\"],\n  \"up_block_types\": [\"AttnUpBlock2D\", \"UpBlock2D\", \"UpBlock2D\"],\n"
             "  \"norm_num_groups\": 8,\n  \"attention_head_dim\": %d,\n  \"num_class_embeds\": %d,\n"
             "  \"flip_sin_to_cos\": true,\n  \"freq_shift\": 0\n}\n",
             info->height, ch, 2 * ch, 2 * ch, ch, K + 1);
    dc_rng rng;
    dc_rng_seed(&rng, c->seed);
    dc_unet *u = dc_unet_new(cfg, &rng);
    dc_noise_scheduler *s = dc_noise_scheduler_load(NULL, DC_SCHED_DDPM, false);
    dc_tensor **params = NULL;
    int np = u ? dc_unet_parameters(u, &params) : 0;
    dc_optim_options oo = dc_adamw_options(c->lr);
    oo.weight_decay = 0.0;
    dc_optimizer *opt = u ? dc_adamw_new(np, params, oo) : NULL;
    ema_state ema = {0};
    if (opt && c->ema_decay > 0 && ema_init(&ema, np, params)) opt = (dc_optimizer_free(opt), NULL);
    int64_t *idx = dc__malloc(sizeof(int64_t) * (size_t)count);
    const int64_t B = c->batch_size, HW = (int64_t)info->height * info->width;
    float *xb = dc__malloc(sizeof(float) * (size_t)(B * HW));
    float *tb = dc__malloc(sizeof(float) * (size_t)B);
    int64_t *lb = dc__malloc(sizeof(int64_t) * (size_t)B);
    dc_status st = (!u || !s || !opt || !idx || !xb || !tb || !lb) ? dc_last_status() : DC_OK;
    const int64_t steps_per_epoch = count / B, total = steps_per_epoch * c->epochs;
    const int64_t warmup = total / 20 > 0 ? total / 20 : 1;
    int64_t step = 0;
    double t0 = dc__now();
    for (int64_t i = 0; i < count && !st; i++) idx[i] = i;
    for (int e = 0; e < c->epochs && !st; e++) {
        dc_shuffle_indices(idx, count, &rng);
        char label[64];
        snprintf(label, sizeof label, "epoch %d/%d", e + 1, c->epochs);
        dc_progress *bar = c->log ? dc_progress_begin(c->log, DC_PROGRESS_AUTO, label, steps_per_epoch, true) : NULL;
        double run_loss = 0;
        for (int64_t b = 0; b < steps_per_epoch && !st; b++, step++) {
            /* lr: linear warm-up then cosine decay to 0 */
            double lr = step < warmup ? c->lr * (double)(step + 1) / (double)warmup
                                      : 0.5 * c->lr * (1 + cos(M_PI * (double)(step - warmup) / (double)(total - warmup)));
            dc_optimizer_set_lr(opt, -1, lr);
            dc_pool_mark m = dc_pool_push();
            for (int64_t k = 0; k < B; k++) {
                int64_t j = idx[b * B + k];
                const uint8_t *px = ds->images + j * ds->image_size;
                for (int64_t q = 0; q < HW; q++) xb[k * HW + q] = (float)px[q] / 127.5f - 1.0f;
                tb[k] = (float)dc_rng_below(&rng, 1000);
                lb[k] = dc_rng_uniform_f32(&rng) < c->cond_drop ? K : ds->labels[j];
            }
            dc_tensor *x0 = dc_from_data(DC_F32, 4, (int64_t[]){B, 1, info->height, info->width}, xb);
            dc_tensor *eps = dc_randn(4, (int64_t[]){B, 1, info->height, info->width}, &rng);
            dc_tensor *xt = dc_empty(DC_F32, 4, (int64_t[]){B, 1, info->height, info->width});
            if (!x0 || !eps || !xt) {
                st = dc_last_status();
                dc_pool_pop(m);
                break;
            }
            const float *xp = dc_data_f32(x0), *ep = dc_data_f32(eps);
            float *tp = dc_data_f32(xt);
            for (int64_t k = 0; k < B; k++) {
                float ab = dc_noise_scheduler_alpha_bar(s, (int)tb[k]);
                float sa = sqrtf(ab), sb = sqrtf(1.0f - ab);
                for (int64_t q = 0; q < HW; q++) tp[k * HW + q] = sa * xp[k * HW + q] + sb * ep[k * HW + q];
            }
            dc_optimizer_zero_grad(opt);
            dc_tensor *pred = dc_unet_forward(u, xt, tb, NULL, lb);
            dc_tensor *loss = dc_mse_loss(pred, eps, DC_REDUCE_MEAN);
            if (!loss || dc_backward(loss, NULL, false) || dc_optimizer_step(opt)) st = dc_last_status();
            else if (ema.n) ema_update(&ema, params, c->ema_decay, step);
            if (!st) run_loss = b == 0 ? dc_item(loss) : 0.98 * run_loss + 0.02 * dc_item(loss);
            dc_pool_pop(m);
            if (bar) dc_progress_update(bar, b + 1, (b + 1) * B, run_loss);
        }
        if (bar) dc_progress_end(bar, NULL);
        /* a usable model after every epoch: weights, scheduler and class names */
        if (!st) st = ema.n ? ema_save(&ema, params, u, c->out_dir) : dc_unet_save(u, c->out_dir);
        if (!st) st = write_sidecars(c, info, K, e + 1, count, dc__now() - t0);
    }
    double secs = dc__now() - t0;
    if (!st && c->log) fprintf(c->log, "trained in %.0f s; model in %s\n", secs, c->out_dir);
    free(idx);
    free(xb);
    free(tb);
    free(lb);
    dc_optimizer_free(opt);
    ema_free(&ema);
    dc_noise_scheduler_free(s);
    dc_unet_free(u);
    dc_dataset_free(ds);
    return st;
}

/* ---- loading and sampling ------------------------------------------------------------------ */

void dc_class_model_free(dc_class_model *m)
{
    if (!m) return;
    dc_unet_free(m->unet);
    dc_noise_scheduler_free(m->sched);
    free(m);
}

dc_class_model *dc_class_model_load(const char *dir)
{
    char path[2048], unet_dir[2048];
    dc_class_model *m = dc__calloc(1, sizeof *m);
    if (!m) return NULL;
    m->guidance = 3.0f;
    m->steps = 50;
    /* deepc's own folder (config.json at the top) or a diffusers DDPMPipeline (unet/, scheduler/) */
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (dc__is_file(path)) {
        snprintf(unet_dir, sizeof unet_dir, "%s", dir);
        snprintf(path, sizeof path, "%s/scheduler_config.json", dir);
    } else {
        snprintf(unet_dir, sizeof unet_dir, "%s/unet", dir);
        snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    }
    if (!(m->unet = dc_unet_load(unet_dir, DC_F32))) goto fail;
    if (dc_unet_get_info(m->unet)->conditional) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: a UNet2DConditionModel needs a Stable Diffusion pipeline folder", dir);
        goto fail;
    }
    m->sched = dc_noise_scheduler_load(dc__is_file(path) ? path : NULL, DC_SCHED_DDIM, false);
    if (!m->sched) goto fail;
    snprintf(path, sizeof path, "%s/deepc.json", dir);
    if (dc__is_file(path)) {
        cJSON *j = sd_json_load(path);
        if (!j) goto fail;
        const char *names[16];
        int n = sd_json_strs(j, "class_names", names, 16);
        for (int i = 0; i < n; i++) dc__strlcpy(m->class_names[i], sizeof m->class_names[i], names[i]);
        m->num_classes = n > 0 ? n : 0;
        m->guidance = (float)sd_json_num(j, "guidance", 3.0);
        m->steps = sd_json_int(j, "steps", 50);
        cJSON_Delete(j);
    } else if (dc_unet_get_info(m->unet)->num_class_embeds > 0) {
        m->num_classes = dc_unet_get_info(m->unet)->num_class_embeds;
        for (int i = 0; i < m->num_classes && i < 16; i++) snprintf(m->class_names[i], 32, "%d", i);
        m->guidance = 1.0f;
    }
    return m;
fail:
    dc_class_model_free(m);
    return NULL;
}

int dc_class_model_find(const dc_class_model *m, const char *name)
{
    for (int i = 0; i < m->num_classes; i++) {
        const char *c = m->class_names[i];
        if (!strcasecmp(c, name)) return i;
        /* "T-shirt/top" answers to "t-shirt" and "top"; "Ankle boot" to "boot" */
        const char *slash = strchr(c, '/');
        if (slash && (!strncasecmp(c, name, (size_t)(slash - c)) && strlen(name) == (size_t)(slash - c))) return i;
        if (slash && !strcasecmp(slash + 1, name)) return i;
        const char *sp = strrchr(c, ' ');
        if (sp && !strcasecmp(sp + 1, name)) return i;
    }
    char *end;
    long v = strtol(name, &end, 10);
    if (*name && !*end && v >= 0 && v < m->num_classes) return (int)v;
    return -1;
}

dc_tensor *dc_class_model_sample(dc_class_model *m, const int64_t *labels, int n, int steps, float guidance,
                                 uint64_t seed, FILE *progress)
{
    const dc_unet_info *in = dc_unet_get_info(m->unet);
    const bool cond = in->num_class_embeds > 0;
    const bool cfg = cond && guidance > 1.0f && m->num_classes < in->num_class_embeds;
    if (cond)
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= in->num_class_embeds) {
                dc_set_error(DC_ERR_ARG, "sample: class %lld outside [0, %d)", (long long)labels[i], in->num_class_embeds);
                return NULL;
            }
    if (dc_noise_scheduler_set_timesteps(m->sched, steps)) return NULL;
    bool prev = dc_set_grad_enabled(false);
    dc_pool_mark pm = dc_pool_push();
    dc_noise noise;
    dc_noise_init(&noise, seed, true);
    const int64_t S = in->sample_size, C = in->in_channels;
    dc_tensor *x = dc_noise_randn(&noise, 4, (int64_t[]){n, C, S, S});
    if (x) x = dc_mul_scalar(x, dc_noise_scheduler_init_sigma(m->sched));
    if (x) dc_tensor_retain(x);
    int64_t *lab = dc__malloc(sizeof(int64_t) * (size_t)(2 * n));
    float *ts = dc__malloc(sizeof(float) * (size_t)(2 * n));
    const int L = dc_noise_scheduler_len(m->sched);
    dc_progress *bar = progress ? dc_progress_begin(progress, DC_PROGRESS_AUTO, "denoising", L, false) : NULL;
    for (int i = 0; i < L && x && lab && ts; i++) {
        dc_pool_mark sm = dc_pool_push();
        float t = dc_noise_scheduler_timestep(m->sched, i);
        for (int k = 0; k < 2 * n; k++) {
            ts[k] = t;
            lab[k] = !cond ? 0 : k < n ? labels[k] : m->num_classes;
        }
        dc_tensor *inp = cfg ? dc_cat(2, (dc_tensor *[]){x, x}, 0) : x;
        dc_tensor *eps = dc_unet_forward(m->unet, inp, ts, NULL, cond ? lab : NULL);
        if (cfg && eps) {
            dc_tensor *pr[2];
            if (dc_chunk(eps, 2, 0, pr, 2) != 2) eps = NULL;
            else eps = dc_add(pr[1], dc_mul_scalar(dc_sub(pr[0], pr[1]), guidance)); /* uncond + g (cond - uncond) */
        }
        dc_tensor *next = dc_noise_scheduler_step(m->sched, i, eps, x, &noise);
        if (next) dc_tensor_retain(next);
        dc_tensor_release(x);
        x = next;
        dc_pool_pop(sm);
        if (bar) dc_progress_update(bar, i + 1, (int64_t)(i + 1) * n, NAN);
    }
    if (bar) dc_progress_end(bar, NULL);
    free(lab);
    free(ts);
    dc_tensor *r = NULL;
    if (x) {
        dc_autorelease(x);
        r = dc_clamp(dc_add_scalar(dc_mul_scalar(x, 0.5f), 0.5f), 0.0f, 1.0f);
        if (r) dc_tensor_retain(r);
    }
    dc_pool_pop(pm);
    dc_set_grad_enabled(prev);
    return r ? dc_autorelease(r) : NULL;
}
