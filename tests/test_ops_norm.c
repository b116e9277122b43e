/* test_ops_norm.c: batch norm (1-d and 2-d, training and eval, running-stat updates),
 * layer norm, group norm and RMS norm against PyTorch fixtures (tools/fixtures_nn_ops.py):
 * forward, every gradient, finite-difference gradchecks, argument errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support/testlib.h"

/* ---- batch norm ----------------------------------------------------------------------- */

static void run_batch_norm(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/norm/%s", name);
    dc_safetensors *st = tl_fixture(path);
    bool training = tl_meta_num(st, "training") != 0, affine = tl_meta_num(st, "affine") != 0;
    float momentum = (float)tl_meta_num(st, "momentum"), eps = (float)tl_meta_num(st, "eps");
    dc_tensor *x = tl_leaf(st, "x");
    dc_tensor *w = affine ? tl_leaf(st, "weight") : NULL, *b = affine ? tl_leaf(st, "bias") : NULL;
    dc_tensor *rm = tl_get(st, "running_mean"), *rv = tl_get(st, "running_var");
    dc_tensor *out = TL_CHECK(dc_batch_norm(x, rm, rv, w, b, training, momentum, eps));
    tl_check(out, tl_get(st, "out"), name);
    tl_check(rm, tl_get(st, "running_mean_after"), "running_mean after");
    tl_check(rv, tl_get(st, "running_var_after"), "running_var after");
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.x", name);
    if (affine) {
        tl_check_grad(w, st, "grad.weight", name);
        tl_check_grad(b, st, "grad.bias", name);
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_bn2d_train(void **s) { (void)s; run_batch_norm("bn2d_train"); }
static void test_bn2d_eval(void **s) { (void)s; run_batch_norm("bn2d_eval"); }
static void test_bn2d_train_batch1(void **s) { (void)s; run_batch_norm("bn2d_train_batch1"); }
static void test_bn2d_train_noaffine(void **s) { (void)s; run_batch_norm("bn2d_train_noaffine"); }
static void test_bn1d_train(void **s) { (void)s; run_batch_norm("bn1d_train"); }
static void test_bn1d_eval(void **s) { (void)s; run_batch_norm("bn1d_eval"); }
static void test_bn1d_train_wide(void **s) { (void)s; run_batch_norm("bn1d_train_wide"); }
static void test_bn1d_seq_train(void **s) { (void)s; run_batch_norm("bn1d_seq_train"); }

/* A non-contiguous input (a transposed view) gives the same result as its contiguous copy. */
static void test_bn_strided_input(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("ops/norm/bn2d_train");
    dc_tensor *x = tl_get(st, "x"); /* [3, 4, 5, 3] */
    dc_tensor *xt = TL_CHECK(dc_contiguous(TL_CHECK(dc_transpose(x, 2, 3))));
    TL_OK(dc_set_requires_grad(xt, true));
    dc_tensor *view = TL_CHECK(dc_transpose(xt, 2, 3)); /* same values as x, strided */
    dc_tensor *rm = tl_get(st, "running_mean"), *rv = tl_get(st, "running_var");
    dc_tensor *out = TL_CHECK(dc_batch_norm(view, rm, rv, tl_get(st, "weight"), tl_get(st, "bias"), true, 0.1f, 1e-5f));
    tl_check(out, tl_get(st, "out"), "bn strided forward");
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check(TL_CHECK(dc_transpose(xt->grad, 2, 3)), tl_get(st, "grad.x"), "bn strided grad.x");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* eval without running stats uses the batch's own (BatchNorm with track_running_stats=False) */
static void test_bn_eval_without_stats(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("ops/norm/bn1d_train");
    dc_tensor *x = tl_get(st, "x");
    dc_tensor *out = TL_CHECK(dc_batch_norm(x, NULL, NULL, tl_get(st, "weight"), tl_get(st, "bias"), false, 0.1f, 1e-5f));
    tl_check(out, tl_get(st, "out"), "bn eval without running stats");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static dc_tensor *gy_fixed; /* the upstream gradient the gradcheck functions multiply by */

static dc_tensor *f_bn_train(dc_tensor **in, void *ctx)
{
    (void)ctx;
    return dc_mul(dc_batch_norm(in[0], NULL, NULL, in[1], in[2], true, 0.1f, 1e-5f), gy_fixed);
}

static dc_tensor *f_bn_eval(dc_tensor **in, void *ctx)
{
    dc_tensor **stats = ctx;
    return dc_mul(dc_batch_norm(in[0], stats[0], stats[1], in[1], in[2], false, 0.1f, 1e-5f), gy_fixed);
}

static void test_bn_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    const char *cases[] = {"bn2d_train_batch1", "bn1d_train", "bn1d_eval"};
    for (int c = 0; c < 3; c++) {
        char path[128];
        snprintf(path, sizeof path, "ops/norm/%s", cases[c]);
        dc_safetensors *st = tl_fixture(path);
        dc_tensor *in[3] = {tl_leaf(st, "x"), tl_leaf(st, "weight"), tl_leaf(st, "bias")};
        gy_fixed = tl_get(st, "gy");
        dc_tensor *stats[2] = {tl_get(st, "running_mean"), tl_get(st, "running_var")};
        tl_gradcheck(cases[c], c == 2 ? f_bn_eval : f_bn_train, 3, in, stats, 1e-2, 2e-3, 1e-2);
        dc_safetensors_close(st);
    }
    dc_pool_pop(m);
}

static void test_bn_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 3, 4, 4)));
    dc_tensor *w4 = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(4)));
    assert_null(dc_batch_norm(x, NULL, NULL, w4, NULL, true, 0.1f, 1e-5f));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "batch_norm"));
    assert_non_null(strstr(dc_last_error(), "[2, 3, 4, 4]"));
    dc_tensor *one = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(1, 3)));
    assert_null(dc_batch_norm(one, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    assert_non_null(strstr(dc_last_error(), "more than 1 value per channel"));
    assert_null(dc_batch_norm(TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(3))), NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    dc_tensor *rm = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(3)));
    assert_null(dc_batch_norm(x, rm, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_batch_norm(NULL, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- layer norm ----------------------------------------------------------------------- */

static void run_layer_norm(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/norm/%s", name);
    dc_safetensors *st = tl_fixture(path);
    bool affine = tl_meta_num(st, "affine") != 0;
    int n_norm = (int)tl_meta_num(st, "n_norm");
    float eps = (float)tl_meta_num(st, "eps");
    dc_tensor *x = tl_leaf(st, "x");
    dc_tensor *w = affine ? tl_leaf(st, "weight") : NULL, *b = affine ? tl_leaf(st, "bias") : NULL;
    dc_tensor *out = TL_CHECK(dc_layer_norm(x, n_norm, w, b, eps));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.x", name);
    if (affine) {
        tl_check_grad(w, st, "grad.weight", name);
        tl_check_grad(b, st, "grad.bias", name);
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_ln_batch1(void **s) { (void)s; run_layer_norm("ln_batch1"); }
static void test_ln_last2(void **s) { (void)s; run_layer_norm("ln_last2"); }
static void test_ln_noaffine(void **s) { (void)s; run_layer_norm("ln_noaffine"); }
static void test_ln_wide(void **s) { (void)s; run_layer_norm("ln_wide"); }

static dc_tensor *f_ln(dc_tensor **in, void *ctx)
{
    return dc_mul(dc_layer_norm(in[0], *(int *)ctx, in[1], in[2], 1e-5f), gy_fixed);
}

static void test_ln_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("ops/norm/ln_last2");
    dc_tensor *in[3] = {tl_leaf(st, "x"), tl_leaf(st, "weight"), tl_leaf(st, "bias")};
    gy_fixed = tl_get(st, "gy");
    int n_norm = 2;
    tl_gradcheck("layer_norm", f_ln, 3, in, &n_norm, 1e-2, 2e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_ln_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 3, 4)));
    assert_null(dc_layer_norm(x, 4, NULL, NULL, 1e-5f));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    dc_tensor *w = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(3, 5)));
    assert_null(dc_layer_norm(x, 2, w, NULL, 1e-5f));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[3, 4]"));
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- group norm ----------------------------------------------------------------------- */

static void run_group_norm(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/norm/%s", name);
    dc_safetensors *st = tl_fixture(path);
    bool affine = tl_meta_num(st, "affine") != 0;
    int groups = (int)tl_meta_num(st, "groups");
    float eps = (float)tl_meta_num(st, "eps");
    dc_tensor *x = tl_leaf(st, "x");
    dc_tensor *w = affine ? tl_leaf(st, "weight") : NULL, *b = affine ? tl_leaf(st, "bias") : NULL;
    dc_tensor *out = TL_CHECK(dc_group_norm(x, groups, w, b, eps));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.x", name);
    if (affine) {
        tl_check_grad(w, st, "grad.weight", name);
        tl_check_grad(b, st, "grad.bias", name);
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_gn_batch1(void **s) { (void)s; run_group_norm("gn_batch1"); }
static void test_gn_3d(void **s) { (void)s; run_group_norm("gn_3d"); }
static void test_gn_one_group(void **s) { (void)s; run_group_norm("gn_one_group"); }
static void test_gn_per_channel(void **s) { (void)s; run_group_norm("gn_per_channel"); }

static dc_tensor *f_gn(dc_tensor **in, void *ctx)
{
    return dc_mul(dc_group_norm(in[0], *(int *)ctx, in[1], in[2], 1e-5f), gy_fixed);
}

static void test_gn_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("ops/norm/gn_batch1");
    dc_tensor *in[3] = {tl_leaf(st, "x"), tl_leaf(st, "weight"), tl_leaf(st, "bias")};
    gy_fixed = tl_get(st, "gy");
    int groups = 3;
    tl_gradcheck("group_norm", f_gn, 3, in, &groups, 1e-2, 2e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_gn_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 6, 3)));
    assert_null(dc_group_norm(x, 4, NULL, NULL, 1e-5f));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "4 groups"));
    assert_null(dc_group_norm(x, 0, NULL, NULL, 1e-5f));
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- RMS norm ------------------------------------------------------------------------- */

static void run_rms_norm(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/norm/%s", name);
    dc_safetensors *st = tl_fixture(path);
    bool affine = tl_meta_num(st, "affine") != 0;
    float eps = (float)tl_meta_num(st, "eps");
    dc_tensor *x = tl_leaf(st, "x"), *w = affine ? tl_leaf(st, "weight") : NULL;
    dc_tensor *out = TL_CHECK(dc_rms_norm(x, w, eps));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.x", name);
    if (affine) tl_check_grad(w, st, "grad.weight", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_rms(void **s) { (void)s; run_rms_norm("rms"); }
static void test_rms_batch1_noweight(void **s) { (void)s; run_rms_norm("rms_batch1_noweight"); }

static dc_tensor *f_rms(dc_tensor **in, void *ctx)
{
    (void)ctx;
    return dc_mul(dc_rms_norm(in[0], in[1], 1e-6f), gy_fixed);
}

static void test_rms_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("ops/norm/rms");
    dc_tensor *in[2] = {tl_leaf(st, "x"), tl_leaf(st, "weight")};
    gy_fixed = tl_get(st, "gy");
    tl_gradcheck("rms_norm", f_rms, 2, in, NULL, 1e-2, 2e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* ---- larger shapes: the multi-threaded paths agree with the single-threaded ones ---------- */

static void test_threads_deterministic(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 7);
    dc_tensor *x = TL_CHECK(dc_randn(DC_SHAPE(8, 32, 16, 16), &rng));
    dc_tensor *w = TL_CHECK(dc_randn(DC_SHAPE(32), &rng)), *b = TL_CHECK(dc_randn(DC_SHAPE(32), &rng));
    dc_tensor *gy = TL_CHECK(dc_randn(DC_SHAPE(8, 32, 16, 16), &rng));
    TL_OK(dc_set_requires_grad(x, true));
    TL_OK(dc_set_requires_grad(w, true));
    dc_tensor *res[2][3];
    int saved = dc_get_num_threads();
    for (int t = 0; t < 2; t++) {
        dc_set_num_threads(t == 0 ? 1 : 2);
        dc_zero_grad(x);
        dc_zero_grad(w);
        dc_tensor *y = TL_CHECK(dc_batch_norm(x, NULL, NULL, w, b, true, 0.1f, 1e-5f));
        TL_OK(dc_backward(y, gy, false));
        res[t][0] = y;
        res[t][1] = x->grad;
        res[t][2] = w->grad;
        dc_autorelease(dc_tensor_retain(x->grad));
        dc_autorelease(dc_tensor_retain(w->grad));
    }
    dc_set_num_threads(saved);
    for (int i = 0; i < 3; i++) tl_assert_close_abs(res[1][i], res[0][i], 0, "batch_norm 1 vs 2 threads");
    dc_zero_grad(x);
    dc_zero_grad(w);
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bn2d_train),
        cmocka_unit_test(test_bn2d_eval),
        cmocka_unit_test(test_bn2d_train_batch1),
        cmocka_unit_test(test_bn2d_train_noaffine),
        cmocka_unit_test(test_bn1d_train),
        cmocka_unit_test(test_bn1d_eval),
        cmocka_unit_test(test_bn1d_train_wide),
        cmocka_unit_test(test_bn1d_seq_train),
        cmocka_unit_test(test_bn_strided_input),
        cmocka_unit_test(test_bn_eval_without_stats),
        cmocka_unit_test(test_bn_gradcheck),
        cmocka_unit_test(test_bn_errors),
        cmocka_unit_test(test_ln_batch1),
        cmocka_unit_test(test_ln_last2),
        cmocka_unit_test(test_ln_noaffine),
        cmocka_unit_test(test_ln_wide),
        cmocka_unit_test(test_ln_gradcheck),
        cmocka_unit_test(test_ln_errors),
        cmocka_unit_test(test_gn_batch1),
        cmocka_unit_test(test_gn_3d),
        cmocka_unit_test(test_gn_one_group),
        cmocka_unit_test(test_gn_per_channel),
        cmocka_unit_test(test_gn_gradcheck),
        cmocka_unit_test(test_gn_errors),
        cmocka_unit_test(test_rms),
        cmocka_unit_test(test_rms_batch1_noweight),
        cmocka_unit_test(test_rms_gradcheck),
        cmocka_unit_test(test_threads_deterministic),
    };
    int rc = TL_RUN(tests);
    tl_report_worst("test_ops_norm");
    return rc;
}
