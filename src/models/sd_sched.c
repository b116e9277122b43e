/* sd_sched.c: diffusers' noise schedulers with their step math, read from a
 * scheduler_config.json as Scheduler.from_config does: PNDM (PLMS with skip_prk_steps, SD 1.x's
 * default), DDIM (eta 0), DDPM (fixed_small variance), Euler, Euler ancestral and DPM-Solver++
 * 2M (midpoint, lower-order final steps, Karras sigmas optional). Betas and alphas_cumprod are
 * float32 as torch computes them (linspace in float, cumprod accumulated in double); sigmas
 * are interpolated in double as numpy does; each step's arithmetic is float32 in diffusers'
 * order of operations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"
#include "sd_internal.h"

struct dc_noise_scheduler {
    dc_sched_kind kind;
    bool karras;
    int T;                    /* num_train_timesteps */
    float *betas, *ac;        /* [T] */
    float *full_sigmas;       /* [T] ((1 - ac) / ac)^0.5 in float */
    char spacing[16];         /* leading | linspace | trailing */
    int steps_offset;
    bool set_alpha_to_one;
    bool clip_sample;
    float clip_range;
    int n_steps;              /* num_inference_steps */
    int n;                    /* schedule length (model evaluations) */
    float *timesteps;         /* [n] */
    float *sigmas;            /* [n + 1] (Euler / DPM) */
    float init_sigma;
    /* PNDM state */
    dc_tensor *ets[4];
    int n_ets, counter;
    dc_tensor *cur_sample;
    /* DPM-Solver state */
    dc_tensor *last_x0;
    int lower_order_nums;
};

int dc_sched_parse(const char *name)
{
    static const char *const names[] = {"pndm", "ddim", "ddpm", "euler", "euler-a", "dpmpp-2m"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, names[i])) return i;
    if (!strcmp(name, "euler_a") || !strcmp(name, "euler-ancestral")) return DC_SCHED_EULER_A;
    if (!strcmp(name, "dpm++2m") || !strcmp(name, "dpmpp_2m") || !strcmp(name, "dpm-solver++")) return DC_SCHED_DPMPP_2M;
    return -1;
}

const char *dc_sched_name(dc_sched_kind kind)
{
    static const char *const names[] = {"pndm", "ddim", "ddpm", "euler", "euler-a", "dpmpp-2m"};
    return kind >= 0 && kind <= DC_SCHED_DPMPP_2M ? names[kind] : "config";
}

static void reset_state(dc_noise_scheduler *s)
{
    for (int i = 0; i < 4; i++) {
        if (s->ets[i]) dc_tensor_release(s->ets[i]);
        s->ets[i] = NULL;
    }
    s->n_ets = s->counter = 0;
    if (s->cur_sample) dc_tensor_release(s->cur_sample);
    s->cur_sample = NULL;
    if (s->last_x0) dc_tensor_release(s->last_x0);
    s->last_x0 = NULL;
    s->lower_order_nums = 0;
}

void dc_noise_scheduler_free(dc_noise_scheduler *s)
{
    if (!s) return;
    reset_state(s);
    free(s->betas);
    free(s->ac);
    free(s->full_sigmas);
    free(s->timesteps);
    free(s->sigmas);
    free(s);
}

/* torch.linspace(start, end, n, dtype=float32) on the CPU: float arithmetic, the second half
 * counted back from the end. */
static void linspace_f32(float start, float end, int n, float *out)
{
    float step = (end - start) / (float)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++) out[i] = i < half ? start + step * (float)i : end - step * (float)(n - i - 1);
}

static dc_sched_kind kind_of_class(const char *cls)
{
    if (!cls) return DC_SCHED_DDPM;
    if (!strcmp(cls, "PNDMScheduler")) return DC_SCHED_PNDM;
    if (!strcmp(cls, "DDIMScheduler")) return DC_SCHED_DDIM;
    if (!strcmp(cls, "DDPMScheduler")) return DC_SCHED_DDPM;
    if (!strcmp(cls, "EulerDiscreteScheduler")) return DC_SCHED_EULER;
    if (!strcmp(cls, "EulerAncestralDiscreteScheduler")) return DC_SCHED_EULER_A;
    if (!strcmp(cls, "DPMSolverMultistepScheduler")) return DC_SCHED_DPMPP_2M;
    return (dc_sched_kind)-2;
}

dc_noise_scheduler *dc_noise_scheduler_load(const char *config, dc_sched_kind kind, bool karras)
{
    cJSON *j = NULL;
    if (config && !(j = sd_json_load(config))) return NULL;
    dc_noise_scheduler *s = dc__calloc(1, sizeof *s);
    if (!s) goto fail;
    const char *cls = j ? sd_json_str(j, "_class_name", NULL) : NULL;
    if (kind == DC_SCHED_FROM_CONFIG) {
        kind = kind_of_class(cls);
        if ((int)kind == -2) {
            dc_set_error(DC_ERR_UNSUPPORTED, "%s: scheduler %s is not supported (PNDM, DDIM, DDPM, Euler, Euler "
                                             "ancestral, DPM-Solver multistep); pick one with --scheduler",
                         config, cls);
            goto fail;
        }
        if (kind == DC_SCHED_DPMPP_2M && j) karras = karras || sd_json_bool(j, "use_karras_sigmas", false);
    }
    s->kind = kind;
    s->karras = karras;
    s->T = j ? sd_json_int(j, "num_train_timesteps", 1000) : 1000;
    if (s->T < 2 || s->T > 100000) {
        dc_set_error(DC_ERR_FORMAT, "scheduler: num_train_timesteps %d out of range", s->T);
        goto fail;
    }
    const char *pred = j ? sd_json_str(j, "prediction_type", "epsilon") : "epsilon";
    if (strcmp(pred, "epsilon")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: prediction_type %s is not supported (epsilon)", config, pred);
        goto fail;
    }
    if (j && cJSON_GetObjectItemCaseSensitive(j, "trained_betas") &&
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "trained_betas"))) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: trained_betas are not supported", config);
        goto fail;
    }
    double b0 = j ? sd_json_num(j, "beta_start", 1e-4) : 1e-4, b1 = j ? sd_json_num(j, "beta_end", 0.02) : 0.02;
    const char *sched = j ? sd_json_str(j, "beta_schedule", "linear") : "linear";
    /* DDIM/DDPM/PNDM default to "leading", Euler and DPM-Solver to "linspace" */
    const char *dflt_spacing = (kind == DC_SCHED_EULER || kind == DC_SCHED_EULER_A || kind == DC_SCHED_DPMPP_2M)
                                   ? "linspace" : "leading";
    snprintf(s->spacing, sizeof s->spacing, "%s", j ? sd_json_str(j, "timestep_spacing", dflt_spacing) : dflt_spacing);
    if (strcmp(s->spacing, "leading") && strcmp(s->spacing, "linspace") && strcmp(s->spacing, "trailing")) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: timestep_spacing %s is not supported", config, s->spacing);
        goto fail;
    }
    s->steps_offset = j ? sd_json_int(j, "steps_offset", 0) : 0;
    s->set_alpha_to_one = j ? sd_json_bool(j, "set_alpha_to_one", kind == DC_SCHED_DDIM) : (kind == DC_SCHED_DDIM);
    s->clip_sample = (kind == DC_SCHED_DDIM || kind == DC_SCHED_DDPM) && (j ? sd_json_bool(j, "clip_sample", true) : true);
    s->clip_range = j ? (float)sd_json_num(j, "clip_sample_range", 1.0) : 1.0f;
    if (j && sd_json_bool(j, "thresholding", false)) {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: thresholding is not supported", config);
        goto fail;
    }
    s->betas = dc__malloc(sizeof(float) * (size_t)s->T);
    s->ac = dc__malloc(sizeof(float) * (size_t)s->T);
    s->full_sigmas = dc__malloc(sizeof(float) * (size_t)s->T);
    if (!s->betas || !s->ac || !s->full_sigmas) goto fail;
    if (!strcmp(sched, "linear")) {
        linspace_f32((float)b0, (float)b1, s->T, s->betas);
    } else if (!strcmp(sched, "scaled_linear")) {
        linspace_f32((float)sqrt(b0), (float)sqrt(b1), s->T, s->betas);
        for (int i = 0; i < s->T; i++) s->betas[i] = s->betas[i] * s->betas[i];
    } else if (!strcmp(sched, "squaredcos_cap_v2")) {
        for (int i = 0; i < s->T; i++) {
            double t1 = (double)i / s->T, t2 = (double)(i + 1) / s->T;
            double a1 = cos((t1 + 0.008) / 1.008 * M_PI / 2), a2 = cos((t2 + 0.008) / 1.008 * M_PI / 2);
            double b = 1 - (a2 * a2) / (a1 * a1);
            s->betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    } else {
        dc_set_error(DC_ERR_UNSUPPORTED, "%s: beta_schedule %s is not supported (linear, scaled_linear, "
                                         "squaredcos_cap_v2)", config, sched);
        goto fail;
    }
    double acc = 1.0; /* torch's CPU cumprod accumulates in double */
    for (int i = 0; i < s->T; i++) {
        acc *= (double)(1.0f - s->betas[i]);
        s->ac[i] = (float)acc;
        s->full_sigmas[i] = powf((1.0f - s->ac[i]) / s->ac[i], 0.5f);
    }
    cJSON_Delete(j);
    return s;
fail:
    cJSON_Delete(j);
    dc_noise_scheduler_free(s);
    return NULL;
}

dc_sched_kind dc_noise_scheduler_kind(const dc_noise_scheduler *s) { return s->kind; }
int dc_noise_scheduler_len(const dc_noise_scheduler *s) { return s->n; }
float dc_noise_scheduler_timestep(const dc_noise_scheduler *s, int i) { return s->timesteps[i]; }
float dc_noise_scheduler_init_sigma(const dc_noise_scheduler *s) { return s->init_sigma; }
float dc_noise_scheduler_alpha_bar(const dc_noise_scheduler *s, int t) { return s->ac[t]; }
int dc_noise_scheduler_train_steps(const dc_noise_scheduler *s) { return s->T; }

/* np.interp(x, arange(T), fp) in double */
static double interp(double x, const float *fp, int n)
{
    if (x <= 0) return fp[0];
    if (x >= n - 1) return fp[n - 1];
    int j = (int)floor(x);
    double slope = ((double)fp[j + 1] - (double)fp[j]);
    return slope * (x - j) + fp[j];
}

/* diffusers' _sigma_to_t: log-sigma interpolation into the training schedule (numpy 1.x
 * computes the distances in float32) */
static double sigma_to_t(double sigma, const float *log_sigmas, int T)
{
    float ls = (float)log(sigma > 1e-10 ? sigma : 1e-10);
    int count = 0;
    for (int i = 0; i < T; i++) count += (ls - log_sigmas[i]) >= 0.0f;
    /* argmax of the cumulative count = the first index reaching the total */
    int low = 0, c = 0;
    for (int i = 0; i < T; i++) {
        c += (ls - log_sigmas[i]) >= 0.0f;
        if (c == count) {
            low = i;
            break;
        }
    }
    if (low > T - 2) low = T - 2;
    /* (low - log_sigma) / (low - high) is float32 too (a float32 array minus a scalar) */
    float lo = log_sigmas[low], hi = log_sigmas[low + 1];
    float w = (lo - ls) / (lo - hi);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (double)(1.0f - w) * low + (double)w * (low + 1);
}

static void karras_sigmas(double smin, double smax, int n, double *out)
{
    double rho = 7.0, min_inv = pow(smin, 1 / rho), max_inv = pow(smax, 1 / rho);
    for (int i = 0; i < n; i++) {
        double ramp = n > 1 ? (double)i / (n - 1) : 0;
        out[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
    }
}

dc_status dc_noise_scheduler_set_timesteps(dc_noise_scheduler *s, int n)
{
    if (n < 1 || n > s->T)
        return dc_set_error(DC_ERR_ARG, "scheduler: steps must be in [1, %d], got %d", s->T, n);
    reset_state(s);
    free(s->timesteps);
    free(s->sigmas);
    s->timesteps = dc__calloc((size_t)n + 2, sizeof(float));
    s->sigmas = dc__calloc((size_t)n + 2, sizeof(float));
    double *ts = dc__calloc((size_t)n + 2, sizeof(double));
    double *sg = dc__calloc((size_t)n + 2, sizeof(double));
    if (!s->timesteps || !s->sigmas || !ts || !sg) {
        free(ts);
        free(sg);
        return dc_last_status();
    }
    s->n_steps = n;
    const int T = s->T;
    if (s->kind == DC_SCHED_DPMPP_2M) {
        /* linspace(0, T-1, n+1).round()[::-1][:-1] etc. */
        if (!strcmp(s->spacing, "linspace")) {
            for (int i = 0; i < n; i++) ts[i] = round((double)(T - 1) * (n - i) / n);
        } else if (!strcmp(s->spacing, "leading")) {
            int ratio = T / (n + 1);
            for (int i = 0; i < n; i++) ts[i] = (double)(n - i) * ratio + s->steps_offset;
        } else {
            double ratio = (double)T / n;
            for (int i = 0; i < n; i++) ts[i] = round(T - i * ratio) - 1;
        }
    } else if (!strcmp(s->spacing, "linspace")) {
        for (int i = 0; i < n; i++) {
            double v = n > 1 ? (double)(T - 1) * (n - 1 - i) / (n - 1) : 0;
            if (s->kind == DC_SCHED_EULER || s->kind == DC_SCHED_EULER_A) ts[i] = (float)v; /* float32 linspace */
            else ts[i] = round(v);
        }
    } else if (!strcmp(s->spacing, "leading")) {
        int ratio = T / n;
        for (int i = 0; i < n; i++) ts[i] = (double)(n - 1 - i) * ratio + s->steps_offset;
    } else {
        double ratio = (double)T / n;
        for (int i = 0; i < n; i++) ts[i] = round(T - i * ratio) - 1;
    }
    int len = n;
    if (s->kind == DC_SCHED_PNDM) {
        /* plms_timesteps = concat(_timesteps[:-1], _timesteps[-2:-1], _timesteps[-1:])[::-1]
         * with _timesteps ascending: in descending order t_0, t_1, t_1, t_2, ... */
        if (n >= 2) {
            double tmp[n + 1];
            tmp[0] = ts[0];
            tmp[1] = ts[1];
            tmp[2] = ts[1];
            for (int i = 2; i < n; i++) tmp[i + 1] = ts[i];
            for (int i = 0; i <= n; i++) ts[i] = tmp[i];
            len = n + 1;
        }
    }
    if (s->kind == DC_SCHED_EULER || s->kind == DC_SCHED_EULER_A || s->kind == DC_SCHED_DPMPP_2M) {
        for (int i = 0; i < n; i++) sg[i] = interp(ts[i], s->full_sigmas, T);
        if (s->karras && s->kind != DC_SCHED_EULER_A) {
            float *log_sigmas = dc__malloc(sizeof(float) * (size_t)T);
            if (!log_sigmas) {
                free(ts);
                free(sg);
                return dc_last_status();
            }
            for (int i = 0; i < T; i++) log_sigmas[i] = logf(s->full_sigmas[i]);
            double smin, smax;
            if (s->kind == DC_SCHED_DPMPP_2M) smin = s->full_sigmas[0], smax = s->full_sigmas[T - 1];
            else smin = sg[n - 1], smax = sg[0];
            karras_sigmas(smin, smax, n, sg);
            for (int i = 0; i < n; i++) {
                double t = sigma_to_t(sg[i], log_sigmas, T);
                ts[i] = s->kind == DC_SCHED_DPMPP_2M ? round(t) : (double)(float)t;
            }
            free(log_sigmas);
        }
        for (int i = 0; i < n; i++) s->sigmas[i] = (float)sg[i];
        s->sigmas[n] = 0.0f;
    }
    for (int i = 0; i < len; i++) s->timesteps[i] = (float)ts[i];
    s->n = len;
    s->init_sigma = 1.0f;
    if (s->kind == DC_SCHED_EULER || s->kind == DC_SCHED_EULER_A) {
        float mx = 0;
        for (int i = 0; i <= n; i++) mx = s->sigmas[i] > mx ? s->sigmas[i] : mx;
        s->init_sigma = (!strcmp(s->spacing, "linspace") || !strcmp(s->spacing, "trailing"))
                            ? mx : powf(mx * mx + 1.0f, 0.5f);
    }
    free(ts);
    free(sg);
    return DC_OK;
}

dc_tensor *dc_noise_scheduler_scale_input(dc_noise_scheduler *s, int i, dc_tensor *x)
{
    if (!x) return NULL;
    if (s->kind != DC_SCHED_EULER && s->kind != DC_SCHED_EULER_A) return x;
    float sg = s->sigmas[i];
    dc_tensor *d = dc_full(DC_F32, 0, NULL, powf(sg * sg + 1.0f, 0.5f));
    return dc_div(x, d);
}

static float acp(const dc_noise_scheduler *s, int t, float final)
{
    return t >= 0 ? s->ac[t < s->T ? t : s->T - 1] : final;
}

/* a new contiguous tensor shaped like x */
static dc_tensor *like(dc_tensor *x) { return dc_empty(DC_F32, x->ndim, x->shape); }

dc_tensor *dc_noise_scheduler_step(dc_noise_scheduler *s, int i, dc_tensor *eps, dc_tensor *x, dc_noise *noise)
{
    if (!eps || !x) return NULL;
    if (i < 0 || i >= s->n) {
        dc_set_error(DC_ERR_ARG, "scheduler: step %d outside the schedule of %d", i, s->n);
        return NULL;
    }
    eps = dc_contiguous(eps);
    x = dc_contiguous(x);
    if (!eps || !x) return NULL;
    const int64_t N = dc_numel(x);
    const float *e = dc_data_f32(eps), *xs = dc_data_f32(x);
    const int T = s->T;
    int t = (int)s->timesteps[i];
    dc_tensor *out = like(x);
    if (!out) return NULL;
    float *o = dc_data_f32(out);
    switch (s->kind) {
    case DC_SCHED_PNDM: {
        int prev_t = t - T / s->n_steps;
        if (s->counter != 1) {
            if (s->n_ets == 4) {
                dc_tensor_release(s->ets[0]);
                memmove(s->ets, s->ets + 1, 3 * sizeof(dc_tensor *));
                s->n_ets = 3;
            }
            s->ets[s->n_ets++] = dc_tensor_retain(eps);
        } else {
            prev_t = t;
            t = t + T / s->n_steps;
        }
        const float *sample = xs;
        dc_tensor *mo_t = like(x);
        if (!mo_t) return NULL;
        float *mo = dc_data_f32(mo_t);
        const float *e1 = s->n_ets > 0 ? dc_data_f32(s->ets[s->n_ets - 1]) : NULL;
        const float *e2 = s->n_ets > 1 ? dc_data_f32(s->ets[s->n_ets - 2]) : NULL;
        const float *e3 = s->n_ets > 2 ? dc_data_f32(s->ets[s->n_ets - 3]) : NULL;
        const float *e4 = s->n_ets > 3 ? dc_data_f32(s->ets[s->n_ets - 4]) : NULL;
        if (s->n_ets == 1 && s->counter == 0) {
            memcpy(mo, e, sizeof(float) * (size_t)N);
            if (s->cur_sample) dc_tensor_release(s->cur_sample);
            s->cur_sample = dc_tensor_retain(x);
        } else if (s->n_ets == 1 && s->counter == 1) {
            for (int64_t k = 0; k < N; k++) mo[k] = (e[k] + e1[k]) / 2.0f;
            sample = s->cur_sample ? dc_data_f32(s->cur_sample) : xs;
        } else if (s->n_ets == 2) {
            for (int64_t k = 0; k < N; k++) mo[k] = (3.0f * e1[k] - e2[k]) / 2.0f;
        } else if (s->n_ets == 3) {
            for (int64_t k = 0; k < N; k++) mo[k] = (23.0f * e1[k] - 16.0f * e2[k] + 5.0f * e3[k]) / 12.0f;
        } else {
            for (int64_t k = 0; k < N; k++)
                mo[k] = (1.0f / 24.0f) * (55.0f * e1[k] - 59.0f * e2[k] + 37.0f * e3[k] - 9.0f * e4[k]);
        }
        float a_t = acp(s, t, 0), a_prev = acp(s, prev_t, s->set_alpha_to_one ? 1.0f : s->ac[0]);
        float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
        float sc = powf(a_prev / a_t, 0.5f);
        float denom = a_t * powf(b_prev, 0.5f) + powf(a_t * b_t * a_prev, 0.5f);
        float diff = a_prev - a_t;
        for (int64_t k = 0; k < N; k++) o[k] = sc * sample[k] - (diff * mo[k]) / denom;
        if (s->n_ets == 1 && s->counter == 1 && s->cur_sample) {
            dc_tensor_release(s->cur_sample);
            s->cur_sample = NULL;
        }
        s->counter++;
        break;
    }
    case DC_SCHED_DDIM: {
        int prev_t = t - T / s->n_steps;
        float a_t = acp(s, t, 0), a_prev = acp(s, prev_t, s->set_alpha_to_one ? 1.0f : s->ac[0]);
        float b_t = 1.0f - a_t;
        float sb = powf(b_t, 0.5f), sa = powf(a_t, 0.5f), sap = powf(a_prev, 0.5f);
        float dirc = powf(1.0f - a_prev - 0.0f, 0.5f);
        for (int64_t k = 0; k < N; k++) {
            float x0 = (xs[k] - sb * e[k]) / sa;
            if (s->clip_sample) x0 = x0 < -s->clip_range ? -s->clip_range : x0 > s->clip_range ? s->clip_range : x0;
            o[k] = sap * x0 + dirc * e[k];
        }
        break;
    }
    case DC_SCHED_DDPM: {
        int prev_t = t - T / s->n_steps;
        float a_t = acp(s, t, 0), a_prev = acp(s, prev_t, 1.0f);
        float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
        float cur_a = a_t / a_prev, cur_b = 1.0f - cur_a;
        float sb = powf(b_t, 0.5f), sa = powf(a_t, 0.5f);
        float c0 = (powf(a_prev, 0.5f) * cur_b) / b_t, c1 = powf(cur_a, 0.5f) * b_prev / b_t;
        for (int64_t k = 0; k < N; k++) {
            float x0 = (xs[k] - sb * e[k]) / sa;
            if (s->clip_sample) x0 = x0 < -s->clip_range ? -s->clip_range : x0 > s->clip_range ? s->clip_range : x0;
            o[k] = c0 * x0 + c1 * xs[k];
        }
        if (t > 0) {
            float var = (1.0f - a_prev) / (1.0f - a_t) * cur_b;
            if (var < 1e-20f) var = 1e-20f;
            float sd = powf(var, 0.5f);
            dc_tensor *z = dc_noise_randn(noise, x->ndim, x->shape);
            if (!z) return NULL;
            const float *zp = dc_data_f32(z);
            for (int64_t k = 0; k < N; k++) o[k] = o[k] + sd * zp[k];
        }
        break;
    }
    case DC_SCHED_EULER: {
        /* diffusers draws (and, with s_churn 0, ignores) a noise tensor every step */
        if (!dc_noise_randn(noise, x->ndim, x->shape)) return NULL;
        float sg = s->sigmas[i], dt = s->sigmas[i + 1] - sg;
        for (int64_t k = 0; k < N; k++) {
            float x0 = xs[k] - sg * e[k];
            float d = (xs[k] - x0) / sg;
            o[k] = xs[k] + d * dt;
        }
        break;
    }
    case DC_SCHED_EULER_A: {
        float sf = s->sigmas[i], st = s->sigmas[i + 1];
        float up = powf(st * st * (sf * sf - st * st) / (sf * sf), 0.5f);
        float down = powf(st * st - up * up, 0.5f);
        float dt = down - sf;
        dc_tensor *z = dc_noise_randn(noise, x->ndim, x->shape);
        if (!z) return NULL;
        const float *zp = dc_data_f32(z);
        for (int64_t k = 0; k < N; k++) {
            float x0 = xs[k] - sf * e[k];
            float d = (xs[k] - x0) / sf;
            o[k] = xs[k] + d * dt;
            o[k] = o[k] + zp[k] * up;
        }
        break;
    }
    case DC_SCHED_DPMPP_2M: {
        int n = s->n;
        bool lower_final = i == n - 1; /* final_sigmas_type "zero" */
        float sg_s0 = s->sigmas[i];
        float a_s0 = 1.0f / powf(sg_s0 * sg_s0 + 1.0f, 0.5f), s_s0 = sg_s0 * a_s0;
        dc_tensor *x0t = like(x);
        if (!x0t) return NULL;
        float *x0 = dc_data_f32(x0t);
        for (int64_t k = 0; k < N; k++) x0[k] = (xs[k] - s_s0 * e[k]) / a_s0;
        float sg_t = s->sigmas[i + 1];
        float a_t = 1.0f / powf(sg_t * sg_t + 1.0f, 0.5f), s_t = sg_t * a_t;
        float l_t = logf(a_t) - logf(s_t), l_s0 = logf(a_s0) - logf(s_s0);
        float h = l_t - l_s0;
        float c_x = s_t / s_s0, c_d = a_t * (expf(-h) - 1.0f);
        if (s->lower_order_nums < 1 || lower_final || !s->last_x0) {
            for (int64_t k = 0; k < N; k++) o[k] = c_x * xs[k] - c_d * x0[k];
        } else {
            float sg_s1 = s->sigmas[i - 1];
            float a_s1 = 1.0f / powf(sg_s1 * sg_s1 + 1.0f, 0.5f), s_s1 = sg_s1 * a_s1;
            float l_s1 = logf(a_s1) - logf(s_s1);
            float h0 = l_s0 - l_s1, r0 = h0 / h;
            float inv_r0 = 1.0f / r0;
            const float *m1 = dc_data_f32(s->last_x0);
            for (int64_t k = 0; k < N; k++) {
                float D1 = inv_r0 * (x0[k] - m1[k]);
                o[k] = c_x * xs[k] - c_d * x0[k] - 0.5f * c_d * D1;
            }
        }
        if (s->last_x0) dc_tensor_release(s->last_x0);
        s->last_x0 = dc_tensor_retain(x0t);
        if (s->lower_order_nums < 2) s->lower_order_nums++;
        break;
    }
    default: dc_set_error(DC_ERR_ARG, "scheduler: unknown kind"); return NULL;
    }
    return out;
}

dc_tensor *dc_noise_scheduler_add_noise(dc_noise_scheduler *s, int i, dc_tensor *x0, dc_tensor *noise)
{
    x0 = dc_contiguous(x0);
    noise = dc_contiguous(noise);
    if (!x0 || !noise) return NULL;
    dc_tensor *out = like(x0);
    if (!out) return NULL;
    const int64_t N = dc_numel(x0);
    const float *a = dc_data_f32(x0), *z = dc_data_f32(noise);
    float *o = dc_data_f32(out);
    if (s->kind == DC_SCHED_EULER || s->kind == DC_SCHED_EULER_A) {
        float sg = s->sigmas[i];
        for (int64_t k = 0; k < N; k++) o[k] = a[k] + z[k] * sg;
    } else if (s->kind == DC_SCHED_DPMPP_2M) {
        float sg = s->sigmas[i];
        float at = 1.0f / powf(sg * sg + 1.0f, 0.5f), st = sg * at;
        for (int64_t k = 0; k < N; k++) o[k] = at * a[k] + st * z[k];
    } else {
        int t = (int)s->timesteps[i];
        float ab = s->ac[t];
        float sa = powf(ab, 0.5f), sb = powf(1.0f - ab, 0.5f);
        for (int64_t k = 0; k < N; k++) o[k] = sa * a[k] + sb * z[k];
    }
    return out;
}
