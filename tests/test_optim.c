/* test_optim.c: optimizers (SGD in all its variants, Adam, AdamW, amsgrad, maximize, param
 * groups, parameters without gradient), gradient clipping and LR schedulers against PyTorch
 * fixtures (tools/fixtures_optim.py); optimizer checkpoints (PyTorch state names, exact
 * resume with a scheduler); argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/testlib.h"

/* PyTorch's parameters after each of 10 steps must match to 1e-6 relative; we also count
 * how many steps matched bit for bit, for the summary. */
#define OPT_RTOL 1e-6
static int bitwise_steps = 0, total_steps = 0;
static double worst_err = 0;

static bool bit_equal(const dc_tensor *a, const dc_tensor *b)
{
    return dc_numel(a) == dc_numel(b) && !memcmp(dc_data(a), dc_data(b), (size_t)dc_numel(a) * 4);
}

static void check(const dc_tensor *actual, const dc_tensor *expected, const char *what)
{
    double e = tl_max_rel_error(actual, expected);
    if (e > worst_err) worst_err = e;
    tl_assert_close(actual, expected, OPT_RTOL, what);
}

static const char *meta(dc_safetensors *st, const char *key) { return dc_safetensors_metadata(st, key); }

static double meta_or(dc_safetensors *st, const char *key, double def)
{
    return meta(st, key) ? tl_meta_num(st, key) : def;
}

static dc_optim_options options_from(dc_safetensors *st, dc_optim_kind kind)
{
    double lr = tl_meta_num(st, "lr");
    dc_optim_options o = kind == DC_OPTIM_SGD ? dc_sgd_options(lr) : kind == DC_OPTIM_ADAM ? dc_adam_options(lr)
                                                                                          : dc_adamw_options(lr);
    o.weight_decay = meta_or(st, "weight_decay", o.weight_decay);
    o.momentum = meta_or(st, "momentum", 0);
    o.dampening = meta_or(st, "dampening", 0);
    o.nesterov = meta_or(st, "nesterov", 0) != 0;
    o.maximize = meta_or(st, "maximize", 0) != 0;
    o.amsgrad = meta_or(st, "amsgrad", 0) != 0;
    o.eps = meta_or(st, "eps", o.eps);
    if (meta(st, "betas")) assert_int_equal(sscanf(meta(st, "betas"), "[%lf, %lf]", &o.beta1, &o.beta2), 2);
    return o;
}

static dc_optim_kind kind_from(dc_safetensors *st)
{
    const char *k = meta(st, "kind");
    assert_non_null(k);
    return !strcmp(k, "sgd") ? DC_OPTIM_SGD : !strcmp(k, "adam") ? DC_OPTIM_ADAM : DC_OPTIM_ADAMW;
}

/* Builds the optimizer of a fixture over p[0], p[1] (two groups when the case has them). */
static dc_optimizer *make_opt(dc_safetensors *st, dc_tensor **p)
{
    dc_optim_kind kind = kind_from(st);
    dc_optim_options o = options_from(st, kind);
    if (tl_meta_num(st, "groups") != 0) {
        dc_optimizer *opt = TL_CHECK(dc_optimizer_new(kind, 1, p, o));
        dc_optim_options o1 = o;
        o1.lr = o.lr * 0.1;
        TL_OK(dc_optimizer_add_param_group(opt, 1, p + 1, o1));
        return opt;
    }
    return TL_CHECK(dc_optimizer_new(kind, 2, p, o));
}

/* Gives p the fixture's gradient for step k (or none). */
static void set_grad(dc_tensor *p, dc_safetensors *st, const char *name)
{
    dc_zero_grad(p);
    if (st && name) p->grad = dc_tensor_retain(tl_get(st, name));
}

static void do_step(dc_optimizer *opt, dc_tensor **p, dc_safetensors *st, int k)
{
    char g0[32], g1[32];
    snprintf(g0, sizeof g0, "g0.%d", k);
    snprintf(g1, sizeof g1, "g1.%d", k);
    bool skip1 = tl_meta_num(st, "skip_p1_odd") != 0 && k % 2 == 1;
    set_grad(p[0], st, g0);
    set_grad(p[1], st, skip1 ? NULL : g1);
    TL_OK(dc_optimizer_step(opt));
}

static void new_params(dc_safetensors *st, dc_tensor **p)
{
    p[0] = tl_get(st, "p0.0");
    p[1] = tl_get(st, "p1.0");
    TL_OK(dc_set_requires_grad(p[0], true));
    TL_OK(dc_set_requires_grad(p[1], true));
}

static void run_optim_case(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128], what[160];
    snprintf(path, sizeof path, "optim/%s", name);
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *p[2];
    new_params(st, p);
    dc_optimizer *opt = make_opt(st, p);
    for (int k = 0; k < 10; k++) {
        do_step(opt, p, st, k);
        for (int i = 0; i < 2; i++) {
            char key[32];
            snprintf(key, sizeof key, "p%d.%d", i, k + 1);
            snprintf(what, sizeof what, "%s: %s", name, key);
            dc_tensor *e = tl_get(st, key);
            check(p[i], e, what);
            total_steps++;
            bitwise_steps += bit_equal(p[i], e);
        }
    }
    /* the optimizer state, through a checkpoint: PyTorch's names and values */
    char file[256];
    snprintf(file, sizeof file, "/tmp/deepc_test_optim_%d_%s.safetensors", (int)getpid(), name);
    TL_OK(dc_optimizer_save(opt, file, NULL));
    dc_safetensors *saved = TL_CHECK(dc_safetensors_open(file));
    int n_state = 0;
    for (int i = 0; i < dc_safetensors_count(st); i++) {
        const char *key = dc_safetensors_name(st, i);
        if (strncmp(key, "state.", 6)) continue;
        n_state++;
        snprintf(what, sizeof what, "%s: %s", name, key);
        if (!dc_safetensors_has(saved, key)) fail_msg("%s: missing from the checkpoint", what);
        check(tl_get(saved, key), tl_get(st, key), what);
    }
    assert_int_equal(dc_safetensors_count(saved), n_state);
    assert_string_equal(dc_safetensors_metadata(saved, "optimizer"),
                        kind_from(st) == DC_OPTIM_SGD ? "SGD" : kind_from(st) == DC_OPTIM_ADAM ? "Adam" : "AdamW");
    dc_safetensors_close(saved);
    unlink(file);
    dc_optimizer_free(opt);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

#define OPT_TEST(n) \
    static void test_##n(void **state) { (void)state; run_optim_case(#n); }
OPT_TEST(sgd_plain)
OPT_TEST(sgd_momentum)
OPT_TEST(sgd_nesterov_wd)
OPT_TEST(sgd_dampening)
OPT_TEST(sgd_maximize)
OPT_TEST(sgd_groups_skip)
OPT_TEST(adam)
OPT_TEST(adam_wd)
OPT_TEST(adam_amsgrad)
OPT_TEST(adam_maximize)
OPT_TEST(adam_groups_skip)
OPT_TEST(adamw)
OPT_TEST(adamw_amsgrad)

/* Save after 4 steps (with a scheduler), rebuild everything, load, continue: every later
 * parameter and lr equals the uninterrupted run bit for bit. */
static void run_resume(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128], file[256];
    snprintf(path, sizeof path, "optim/%s", name);
    snprintf(file, sizeof file, "/tmp/deepc_test_resume_%d_%s.safetensors", (int)getpid(), name);
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *a[2], *b[2];
    new_params(st, a);
    dc_optimizer *oa = make_opt(st, a);
    dc_scheduler *sa = TL_CHECK(dc_cosine_annealing_lr_new(oa, 7, 1e-4));
    for (int k = 0; k < 4; k++) {
        do_step(oa, a, st, k);
        TL_OK(dc_scheduler_step(sa));
    }
    TL_OK(dc_optimizer_save(oa, file, sa));
    /* a fresh run from the saved parameter values */
    for (int i = 0; i < 2; i++) {
        b[i] = dc_clone(dc_detach(a[i]));
        TL_OK(dc_set_requires_grad(b[i], true));
    }
    dc_optimizer *ob = make_opt(st, b);
    dc_scheduler *sb = TL_CHECK(dc_cosine_annealing_lr_new(ob, 7, 1e-4));
    TL_OK(dc_optimizer_load(ob, file, sb));
    assert_int_equal(dc_scheduler_last_epoch(sb), 4);
    for (int k = 4; k < 10; k++) {
        do_step(oa, a, st, k);
        TL_OK(dc_scheduler_step(sa));
        do_step(ob, b, st, k);
        TL_OK(dc_scheduler_step(sb));
        for (int i = 0; i < 2; i++)
            if (!bit_equal(a[i], b[i])) fail_msg("%s: resumed run differs at step %d, param %d", name, k + 1, i);
        for (int g = 0; g < dc_optimizer_num_groups(oa); g++)
            if (dc_optimizer_get_lr(oa, g) != dc_optimizer_get_lr(ob, g))
                fail_msg("%s: lr after resume %.17g, uninterrupted %.17g (step %d, group %d)", name,
                         dc_optimizer_get_lr(ob, g), dc_optimizer_get_lr(oa, g), k + 1, g);
    }
    /* loading into the wrong optimizer type is refused, and changes nothing */
    dc_tensor *c = dc_clone(dc_detach(a[0]));
    dc_optimizer *wrong = TL_CHECK(dc_sgd_new(1, &c, dc_sgd_options(0.1)));
    if (kind_from(st) != DC_OPTIM_SGD) {
        assert_int_equal(dc_optimizer_load(wrong, file, NULL), DC_ERR_FORMAT);
        assert_non_null(strstr(dc_last_error(), "SGD"));
    }
    dc_optimizer_free(wrong);
    unlink(file);
    dc_scheduler_free(sa);
    dc_scheduler_free(sb);
    dc_optimizer_free(oa);
    dc_optimizer_free(ob);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_resume_adam(void **state) { (void)state; run_resume("adam_groups_skip"); }
static void test_resume_adamw_amsgrad(void **state) { (void)state; run_resume("adamw_amsgrad"); }
static void test_resume_sgd(void **state) { (void)state; run_resume("sgd_groups_skip"); }

/* The vectorised, multi-threaded loops on a large parameter equal a plain scalar reference
 * (written here with PyTorch's roundings) bit for bit, for every variant. Tests build in ISO C
 * mode, where the compiler does not contract a * b + c on its own. */
static void test_large_parameters(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    const int64_t n = 100003; /* several threads' worth, and a ragged tail */
    dc_rng rng;
    dc_rng_seed(&rng, 9);
    for (int variant = 0; variant < 4; variant++) {
        dc_tensor *p = TL_CHECK(dc_randn(DC_SHAPE(n), &rng));
        TL_OK(dc_set_requires_grad(p, true));
        float *ref = malloc((size_t)n * sizeof(float)), *m1 = calloc((size_t)n, 4), *v1 = calloc((size_t)n, 4),
              *vm = calloc((size_t)n, 4);
        assert_non_null(ref);
        memcpy(ref, dc_data_f32(p), (size_t)n * 4);
        dc_optim_options o = variant == 0 ? dc_sgd_options(0.05) : dc_adam_options(1e-2);
        dc_optim_kind kind = variant == 0 ? DC_OPTIM_SGD : variant == 3 ? DC_OPTIM_ADAMW : DC_OPTIM_ADAM;
        if (variant == 0) {
            o.momentum = 0.9;
            o.nesterov = true;
            o.weight_decay = 1e-3;
        }
        if (variant == 1) o.weight_decay = 0.1;
        if (variant == 2) o.amsgrad = true, o.maximize = true;
        if (variant == 3) o.weight_decay = 0.05, o.amsgrad = true;
        dc_optimizer *opt = TL_CHECK(dc_optimizer_new(kind, 1, &p, o));
        for (int step = 1; step <= 3; step++) {
            dc_tensor *g = TL_CHECK(dc_randn(DC_SHAPE(n), &rng));
            set_grad(p, NULL, NULL);
            p->grad = dc_tensor_retain(g);
            TL_OK(dc_optimizer_step(opt));
            const float *gg = dc_data_f32(g);
            double bc1 = 1 - pow(o.beta1, step), bc2 = 1 - pow(o.beta2, step);
            for (int64_t i = 0; i < n; i++) {
                float gi = o.maximize ? -gg[i] : gg[i];
                if (variant == 0) {
                    gi = fmaf(ref[i], (float)o.weight_decay, gi);
                    m1[i] = step == 1 ? gi : fmaf(gi, 1.0f, m1[i] * 0.9f);
                    gi = fmaf(m1[i], 0.9f, gi);
                    ref[i] = fmaf(gi, (float)-o.lr, ref[i]);
                    continue;
                }
                float pi = ref[i];
                if (kind == DC_OPTIM_ADAMW) pi = pi * (float)(1 - o.lr * o.weight_decay);
                else if (o.weight_decay != 0) gi = fmaf(pi, (float)o.weight_decay, gi);
                m1[i] = fmaf(gi, (float)(1 - o.beta1), m1[i] * (float)o.beta1);
                v1[i] = fmaf((float)(1 - o.beta2) * gi, gi, v1[i] * (float)o.beta2);
                float vi = v1[i];
                if (o.amsgrad) vi = vm[i] = vi > vm[i] ? vi : vm[i];
                float denom = sqrtf(vi) / (float)sqrt(bc2) + (float)o.eps;
                ref[i] = pi + (float)(-o.lr / bc1) * m1[i] / denom;
            }
            if (memcmp(ref, dc_data_f32(p), (size_t)n * 4))
                fail_msg("variant %d step %d: the fused loop differs from the scalar reference", variant, step);
        }
        dc_optimizer_free(opt);
        free(ref);
        free(m1);
        free(v1);
        free(vm);
    }
    dc_pool_pop(mark);
}

/* ---- clipping --------------------------------------------------------------------------- */

static void run_clip(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128], what[160];
    snprintf(path, sizeof path, "optim/%s", name);
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *p[3];
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "grad.%d", i);
        dc_tensor *g = tl_get(st, key);
        p[i] = dc_zeros(DC_F32, g->ndim, g->shape);
        TL_OK(dc_set_requires_grad(p[i], true));
        p[i]->grad = dc_tensor_retain(g);
    }
    const char *nt = meta(st, "norm_type");
    double norm_type = !strcmp(nt, "inf") ? INFINITY : tl_meta_num(st, "norm_type");
    double total = dc_clip_grad_norm_(3, p, tl_meta_num(st, "max_norm"), norm_type);
    double expect = tl_meta_num(st, "total");
    if (!(fabs(total - expect) <= 1e-6 * fabs(expect)))
        fail_msg("%s: total norm %.9g, PyTorch %.9g", name, total, expect);
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "clipped.%d", i);
        snprintf(what, sizeof what, "%s: %s", name, key);
        check(p[i]->grad, tl_get(st, key), what);
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_clip(void **state)
{
    (void)state;
    const char *cases[] = {"clip_l2", "clip_l2_noop", "clip_inf", "clip_l1", "clip_l3", "clip_big"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_clip(cases[i]);
}

static void test_clip_edge(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *p = dc_zeros(DC_F32, DC_SHAPE(3));
    TL_OK(dc_set_requires_grad(p, true));
    /* no gradients: total 0, nothing to do */
    assert_true(dc_clip_grad_norm_(1, &p, 1.0, 2.0) == 0.0);
    assert_true(isnan(dc_clip_grad_norm_(1, &p, 1.0, -1.0)));
    assert_true(isnan(dc_clip_grad_norm_(1, NULL, 1.0, 2.0)));
    /* clip_grad_value_ */
    p->grad = dc_tensor_retain(dc_from_data(DC_F32, DC_SHAPE(3), (float[]){-3, 0.5f, 2}));
    TL_OK(dc_clip_grad_value_(1, &p, 1.0));
    const float *g = dc_data_f32(p->grad);
    assert_true(g[0] == -1 && g[1] == 0.5f && g[2] == 1);
    /* a large tensor: the chunked, threaded reduction equals the serial double sum */
    int64_t n = 100003;
    dc_tensor *q = dc_zeros(DC_F32, DC_SHAPE(n));
    TL_OK(dc_set_requires_grad(q, true));
    q->grad = dc_tensor_retain(dc_empty(DC_F32, DC_SHAPE(n)));
    float *qg = dc_data_f32(q->grad);
    double ref = 0;
    for (int64_t i = 0; i < n; i++) {
        qg[i] = (float)sin((double)i);
        ref += (double)qg[i] * qg[i];
    }
    double total = dc_clip_grad_norm_(1, &q, 1e9, 2.0);
    assert_true(fabs(total - sqrt(ref)) <= 1e-6 * sqrt(ref));
    dc_pool_pop(m);
}

/* ---- schedulers ------------------------------------------------------------------------- */

static dc_scheduler *make_sched(const char *name, dc_optimizer *opt, dc_scheduler **second)
{
    *second = NULL;
    if (!strcmp(name, "sched_step")) return dc_step_lr_new(opt, 7, 0.5);
    if (!strcmp(name, "sched_multistep")) return dc_multi_step_lr_new(opt, 4, (int64_t[]){5, 12, 12, 30}, 0.3);
    if (!strcmp(name, "sched_cosine")) return dc_cosine_annealing_lr_new(opt, 10, 1e-3);
    if (!strcmp(name, "sched_cosine_long")) return dc_cosine_annealing_lr_new(opt, 40, 0);
    if (!strcmp(name, "sched_linear")) return dc_linear_lr_new(opt, 0.25, 1.0, 8);
    if (!strcmp(name, "sched_linear_decay")) return dc_linear_lr_new(opt, 1.0, 0.1, 20);
    if (!strcmp(name, "sched_onecycle")) return dc_one_cycle_lr_new(opt, dc_one_cycle_options_default(0.5, 40));
    if (!strcmp(name, "sched_onecycle_adam3")) {
        dc_one_cycle_options o = dc_one_cycle_options_default(1e-2, 37);
        o.three_phase = true;
        return dc_one_cycle_lr_new(opt, o);
    }
    if (!strcmp(name, "sched_onecycle_linear")) {
        dc_one_cycle_options o = dc_one_cycle_options_default(0.3, 31);
        o.pct_start = 0.25;
        o.anneal_linear = true;
        o.div_factor = 10.0;
        o.final_div_factor = 100.0;
        return dc_one_cycle_lr_new(opt, o);
    }
    if (!strcmp(name, "sched_warmup_cosine")) {
        dc_scheduler *a = dc_linear_lr_new(opt, 0.1, 1.0, 5);
        *second = dc_cosine_annealing_lr_new(opt, 30, 1e-4);
        return a;
    }
    fail_msg("unknown scheduler case %s", name);
    return NULL;
}

static void run_sched(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "optim/%s", name);
    dc_safetensors *st = tl_fixture(path);
    cJSON *lrs = cJSON_Parse(meta(st, "lrs")), *mom = cJSON_Parse(meta(st, "momentum"));
    cJSON *groups = cJSON_Parse(meta(st, "groups"));
    assert_non_null(lrs);
    assert_non_null(mom);
    assert_non_null(groups);
    int ng = cJSON_GetArraySize(groups);
    bool sgd = !strcmp(meta(st, "opt"), "sgd");
    dc_tensor *p[4];
    dc_optimizer *opt = NULL;
    for (int g = 0; g < ng; g++) {
        p[g] = dc_zeros(DC_F32, DC_SHAPE(1));
        dc_optim_options o = sgd ? dc_sgd_options(0) : dc_adam_options(0);
        o.lr = cJSON_GetArrayItem(groups, g)->valuedouble;
        if (sgd) o.momentum = 0.9;
        if (g == 0)
            opt = TL_CHECK(dc_optimizer_new(sgd ? DC_OPTIM_SGD : DC_OPTIM_ADAM, 1, p, o));
        else
            TL_OK(dc_optimizer_add_param_group(opt, 1, p + g, o));
    }
    dc_scheduler *s2;
    dc_scheduler *s = TL_CHECK(make_sched(name, opt, &s2));
    int steps = cJSON_GetArraySize(lrs);
    for (int k = 0; k < steps; k++) {
        if (k > 0) {
            TL_OK(dc_optimizer_step(opt)); /* no gradients: a no-op, as in the fixture */
            TL_OK(dc_scheduler_step(s));
            if (s2) TL_OK(dc_scheduler_step(s2));
        }
        for (int g = 0; g < ng; g++) {
            double want = cJSON_GetArrayItem(cJSON_GetArrayItem(lrs, k), g)->valuedouble;
            double got = dc_optimizer_get_lr(opt, g);
            if (got != want) fail_msg("%s: step %d group %d: lr %.17g, PyTorch %.17g", name, k, g, got, want);
            if (!s2 && dc_scheduler_get_last_lr(s, g) != want) fail_msg("%s: get_last_lr differs at step %d", name, k);
            double want_m = cJSON_GetArrayItem(cJSON_GetArrayItem(mom, k), g)->valuedouble;
            dc_optim_options *o = dc_optimizer_group(opt, g);
            double got_m = sgd ? o->momentum : o->beta1;
            if (got_m != want_m)
                fail_msg("%s: step %d group %d: momentum %.17g, PyTorch %.17g", name, k, g, got_m, want_m);
        }
    }
    if (!strncmp(name, "sched_onecycle", 14)) {
        /* PyTorch raises when stepping past total_steps */
        assert_int_equal(dc_scheduler_step(s), DC_ERR_STATE);
        assert_non_null(strstr(dc_last_error(), "total steps"));
    }
    dc_scheduler_free(s);
    dc_scheduler_free(s2);
    dc_optimizer_free(opt);
    cJSON_Delete(lrs);
    cJSON_Delete(mom);
    cJSON_Delete(groups);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_schedulers(void **state)
{
    (void)state;
    const char *cases[] = {"sched_step", "sched_multistep", "sched_cosine", "sched_cosine_long",
                           "sched_linear", "sched_linear_decay", "sched_onecycle",
                           "sched_onecycle_adam3", "sched_onecycle_linear", "sched_warmup_cosine"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_sched(cases[i]);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *p = dc_zeros(DC_F32, DC_SHAPE(2, 2));
    TL_OK(dc_set_requires_grad(p, true));
    dc_optim_options o = dc_sgd_options(-1);
    assert_null(dc_sgd_new(1, &p, o));
    assert_non_null(strstr(dc_last_error(), "learning rate"));
    o = dc_sgd_options(0.1);
    o.nesterov = true;
    assert_null(dc_sgd_new(1, &p, o));
    assert_non_null(strstr(dc_last_error(), "nesterov"));
    dc_optim_options a = dc_adam_options(1e-3);
    a.beta2 = 1.0;
    assert_null(dc_adam_new(1, &p, a));
    assert_non_null(strstr(dc_last_error(), "beta parameter at index 1"));
    /* non-leaf, wrong dtype, duplicates */
    dc_tensor *y = dc_mul_scalar(p, 2.0f);
    if (y) {
        assert_null(dc_adam_new(1, &y, dc_adam_options(1e-3)));
        assert_non_null(strstr(dc_last_error(), "non-leaf"));
    }
    dc_tensor *i64 = dc_zeros(DC_I64, DC_SHAPE(2));
    assert_null(dc_adam_new(1, &i64, dc_adam_options(1e-3)));
    assert_null(dc_adam_new(2, (dc_tensor *[]){p, p}, dc_adam_options(1e-3)));
    dc_optimizer *opt = TL_CHECK(dc_adam_new(1, &p, dc_adam_options(1e-3)));
    assert_int_not_equal(dc_optimizer_add_param_group(opt, 1, &p, dc_adam_options(1e-3)), DC_OK);
    assert_non_null(strstr(dc_last_error(), "more than one parameter group"));
    /* a gradient of the wrong shape */
    p->grad = dc_tensor_retain(dc_zeros(DC_F32, DC_SHAPE(4)));
    assert_int_equal(dc_optimizer_step(opt), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "gradient"));
    dc_optimizer_zero_grad(opt);
    assert_null(p->grad);
    TL_OK(dc_optimizer_step(opt)); /* nothing has a gradient: a no-op */
    /* scheduler arguments */
    assert_null(dc_step_lr_new(opt, 0, 0.1));
    assert_null(dc_cosine_annealing_lr_new(opt, 0, 0));
    assert_null(dc_linear_lr_new(opt, 0, 1, 5));
    assert_null(dc_one_cycle_lr_new(opt, dc_one_cycle_options_default(0.1, 0)));
    /* missing checkpoint */
    assert_int_equal(dc_optimizer_load(opt, "/nonexistent/opt.safetensors", NULL), DC_ERR_IO);
    TL_OK(dc_optimizer_set_lr(opt, -1, 0.5));
    assert_true(dc_optimizer_get_lr(opt, 0) == 0.5);
    assert_int_not_equal(dc_optimizer_set_lr(opt, 3, 0.5), DC_OK);
    dc_optimizer_free(opt);
    dc_pool_pop(m);
}

static void test_summary(void **state)
{
    (void)state;
    printf("optim: %d of %d parameter checks equal PyTorch bit for bit; worst relative error %.3g\n",
           bitwise_steps, total_steps, worst_err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_plain),       cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov_wd), cmocka_unit_test(test_sgd_dampening),
        cmocka_unit_test(test_sgd_maximize),    cmocka_unit_test(test_sgd_groups_skip),
        cmocka_unit_test(test_adam),            cmocka_unit_test(test_adam_wd),
        cmocka_unit_test(test_adam_amsgrad),    cmocka_unit_test(test_adam_maximize),
        cmocka_unit_test(test_adam_groups_skip), cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_adamw_amsgrad),   cmocka_unit_test(test_resume_adam),
        cmocka_unit_test(test_resume_adamw_amsgrad), cmocka_unit_test(test_resume_sgd),
        cmocka_unit_test(test_large_parameters),
        cmocka_unit_test(test_clip),            cmocka_unit_test(test_clip_edge),
        cmocka_unit_test(test_schedulers),      cmocka_unit_test(test_errors),
        cmocka_unit_test(test_summary),
    };
    return TL_RUN(tests);
}
