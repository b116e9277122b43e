/* test_ops_loss.c: cross-entropy (ignore_index, label smoothing, [N, C, d...], every
 * reduction), NLL and MSE against PyTorch fixtures (tools/fixtures_nn_ops.py): forward,
 * gradients, finite-difference gradchecks, argument errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support/testlib.h"

static dc_safetensors *open_case(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "ops/loss/%s", name);
    return tl_fixture(path);
}

/* ---- cross-entropy -------------------------------------------------------------------- */

static void run_ce(const char *name, bool as_i32)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case(name);
    dc_reduction r = (dc_reduction)tl_meta_num(st, "reduction");
    int64_t ignore = (int64_t)tl_meta_num(st, "ignore_index");
    float ls = (float)tl_meta_num(st, "label_smoothing");
    dc_tensor *x = tl_leaf(st, "logits"), *t = tl_get_i64(st, "target");
    if (as_i32) t = TL_CHECK(dc_to_dtype(t, DC_I32));
    dc_tensor *out = TL_CHECK(dc_cross_entropy(x, t, r, ignore, ls));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.logits", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_ce_basic(void **s) { (void)s; run_ce("ce_basic", false); }
static void test_ce_basic_i32(void **s) { (void)s; run_ce("ce_basic", true); }
static void test_ce_batch1_sum(void **s) { (void)s; run_ce("ce_batch1_sum", false); }
static void test_ce_ignore_ls_mean(void **s) { (void)s; run_ce("ce_ignore_ls_mean", false); }
static void test_ce_ignore_ls_sum(void **s) { (void)s; run_ce("ce_ignore_ls_sum", false); }
static void test_ce_ignore_ls_none(void **s) { (void)s; run_ce("ce_ignore_ls_none", false); }
static void test_ce_custom_ignore(void **s) { (void)s; run_ce("ce_custom_ignore", false); }
static void test_ce_nd_mean(void **s) { (void)s; run_ce("ce_nd_mean", false); }
static void test_ce_nd_none(void **s) { (void)s; run_ce("ce_nd_none", false); }
static void test_ce_unbatched(void **s) { (void)s; run_ce("ce_unbatched", false); }
static void test_ce_wide(void **s) { (void)s; run_ce("ce_wide", false); }

/* Logits given as a transposed view give the same loss and gradient. */
static void test_ce_strided_logits(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("ce_ignore_ls_mean");
    dc_tensor *x = tl_get(st, "logits"); /* [6, 5] */
    dc_tensor *xt = TL_CHECK(dc_contiguous(TL_CHECK(dc_transpose(x, 0, 1))));
    TL_OK(dc_set_requires_grad(xt, true));
    dc_tensor *out = TL_CHECK(dc_cross_entropy(TL_CHECK(dc_transpose(xt, 0, 1)), tl_get_i64(st, "target"),
                                               DC_REDUCE_MEAN, DC_IGNORE_INDEX_DEFAULT, 0.1f));
    tl_check(out, tl_get(st, "out"), "ce strided");
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check(TL_CHECK(dc_transpose(xt->grad, 0, 1)), tl_get(st, "grad.logits"), "ce strided grad");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* Every target ignored: mean is 0/0 = NaN (as PyTorch), and the gradient is 0. */
static void test_ce_all_ignored(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(2, 3)));
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *t = TL_CHECK(dc_full(DC_I64, DC_SHAPE(2), -100));
    dc_tensor *out = TL_CHECK(dc_cross_entropy(x, t, DC_REDUCE_MEAN, -100, 0.1f));
    assert_true(isnan(dc_item(out)));
    TL_OK(dc_backward(out, NULL, false));
    tl_assert_close_abs(x->grad, TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 3))), 0, "all ignored grad");
    dc_tensor *sum = TL_CHECK(dc_cross_entropy(x, t, DC_REDUCE_SUM, -100, 0.1f));
    assert_float_equal(dc_item(sum), 0.0, 0.0);
    dc_zero_grad(x);
    dc_pool_pop(m);
}

/* Large logits: the fused log-softmax stays finite where exp() alone would overflow. */
static void test_ce_large_logits(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    const float v[] = {1000.0f, 0.0f, -1000.0f, 500.0f, 1000.0f, 999.0f};
    dc_tensor *x = TL_CHECK(dc_from_data(DC_F32, DC_SHAPE(2, 3), v));
    const int64_t tv[] = {0, 2};
    dc_tensor *t = TL_CHECK(dc_from_data(DC_I64, DC_SHAPE(2), tv));
    dc_tensor *out = TL_CHECK(dc_cross_entropy(x, t, DC_REDUCE_NONE, -100, 0.0f));
    float got[2];
    TL_OK(dc_copy_to_f32(out, got, 2));
    assert_float_equal(got[0], 0.0, 1e-6);
    assert_float_equal(got[1], 1.0 + log1p(exp(-1.0)), 1e-5);
    dc_pool_pop(m);
}

static dc_tensor *gy_fixed;

typedef struct ce_args {
    dc_tensor *target;
    dc_reduction r;
    int64_t ignore;
    float ls;
} ce_args;

static dc_tensor *f_ce(dc_tensor **in, void *ctx)
{
    ce_args *a = ctx;
    dc_tensor *l = dc_cross_entropy(in[0], a->target, a->r, a->ignore, a->ls);
    return a->r == DC_REDUCE_NONE ? dc_mul(l, gy_fixed) : l;
}

static void test_ce_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    const char *cases[] = {"ce_ignore_ls_mean", "ce_nd_mean", "ce_ignore_ls_none"};
    for (int c = 0; c < 3; c++) {
        dc_safetensors *st = open_case(cases[c]);
        ce_args a = {tl_get_i64(st, "target"), (dc_reduction)tl_meta_num(st, "reduction"),
                     (int64_t)tl_meta_num(st, "ignore_index"), (float)tl_meta_num(st, "label_smoothing")};
        gy_fixed = tl_get(st, "gy");
        dc_tensor *in[1] = {tl_leaf(st, "logits")};
        tl_gradcheck(cases[c], f_ce, 1, in, &a, 1e-2, 1e-3, 1e-2);
        dc_safetensors_close(st);
    }
    dc_pool_pop(m);
}

static void test_ce_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(4, 3)));
    const int64_t bad[] = {0, 1, 3, 2};
    dc_tensor *t = TL_CHECK(dc_from_data(DC_I64, DC_SHAPE(4), bad));
    assert_null(dc_cross_entropy(x, t, DC_REDUCE_MEAN, -100, 0.0f));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "target 3"));
    dc_tensor *t5 = TL_CHECK(dc_zeros(DC_I64, DC_SHAPE(5)));
    assert_null(dc_cross_entropy(x, t5, DC_REDUCE_MEAN, -100, 0.0f));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[4, 3]"));
    assert_non_null(strstr(dc_last_error(), "[5]"));
    dc_tensor *tf = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(4)));
    assert_null(dc_cross_entropy(x, tf, DC_REDUCE_MEAN, -100, 0.0f));
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    dc_tensor *t0 = TL_CHECK(dc_zeros(DC_I64, DC_SHAPE(4)));
    assert_null(dc_cross_entropy(x, t0, DC_REDUCE_MEAN, -100, 1.5f));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_cross_entropy(x, t0, (dc_reduction)7, -100, 0.0f));
    assert_null(dc_cross_entropy(NULL, t0, DC_REDUCE_MEAN, -100, 0.0f));
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- NLL ------------------------------------------------------------------------------ */

static void run_nll(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case(name);
    dc_reduction r = (dc_reduction)tl_meta_num(st, "reduction");
    int64_t ignore = (int64_t)tl_meta_num(st, "ignore_index");
    dc_tensor *x = tl_leaf(st, "log_probs");
    dc_tensor *out = TL_CHECK(dc_nll_loss(x, tl_get_i64(st, "target"), r, ignore));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.log_probs", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_nll_mean(void **s) { (void)s; run_nll("nll_mean"); }
static void test_nll_nd_none(void **s) { (void)s; run_nll("nll_nd_none"); }
static void test_nll_sum(void **s) { (void)s; run_nll("nll_sum"); }

typedef struct nll_args {
    dc_tensor *target;
    dc_reduction r;
} nll_args;

static dc_tensor *f_nll(dc_tensor **in, void *ctx)
{
    nll_args *a = ctx;
    dc_tensor *l = dc_nll_loss(in[0], a->target, a->r, DC_IGNORE_INDEX_DEFAULT);
    return a->r == DC_REDUCE_NONE ? dc_mul(l, gy_fixed) : l;
}

static void test_nll_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("nll_nd_none");
    nll_args a = {tl_get_i64(st, "target"), DC_REDUCE_NONE};
    gy_fixed = tl_get(st, "gy");
    dc_tensor *in[1] = {tl_leaf(st, "log_probs")};
    tl_gradcheck("nll_loss", f_nll, 1, in, &a, 1e-2, 1e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* ---- MSE ------------------------------------------------------------------------------ */

static void run_mse(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case(name);
    dc_reduction r = (dc_reduction)tl_meta_num(st, "reduction");
    dc_tensor *a = tl_leaf(st, "input"), *b = tl_leaf(st, "target");
    dc_tensor *out = TL_CHECK(dc_mse_loss(a, b, r));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(a, st, "grad.input", name);
    tl_check_grad(b, st, "grad.target", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_mse_mean(void **s) { (void)s; run_mse("mse_mean"); }
static void test_mse_sum(void **s) { (void)s; run_mse("mse_sum"); }
static void test_mse_none(void **s) { (void)s; run_mse("mse_none"); }
static void test_mse_broadcast(void **s) { (void)s; run_mse("mse_broadcast"); }

static dc_tensor *f_mse(dc_tensor **in, void *ctx)
{
    (void)ctx;
    return dc_mse_loss(in[0], in[1], DC_REDUCE_MEAN);
}

static void test_mse_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("mse_broadcast");
    dc_tensor *in[2] = {tl_leaf(st, "input"), tl_leaf(st, "target")};
    tl_gradcheck("mse_loss", f_mse, 2, in, NULL, 1e-2, 1e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_mse_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(3, 4))), *b = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(5)));
    assert_null(dc_mse_loss(a, b, DC_REDUCE_MEAN));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "mse_loss"));
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- no pool: the caller owns results and nothing leaks -------------------------------- */

static void test_no_pool_ownership(void **state)
{
    (void)state;
    int64_t live = dc_live_tensors();
    dc_tensor *x = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(3, 4)));
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *t = TL_CHECK(dc_zeros(DC_I64, DC_SHAPE(3)));
    dc_tensor *l = TL_CHECK(dc_cross_entropy(x, t, DC_REDUCE_MEAN, -100, 0.1f));
    TL_OK(dc_backward(l, NULL, false));
    dc_tensor_release(l);
    dc_tensor *bad = TL_CHECK(dc_full(DC_I64, DC_SHAPE(3), 9));
    assert_null(dc_cross_entropy(x, bad, DC_REDUCE_MEAN, -100, 0.0f));
    dc_tensor_release(bad);
    dc_tensor_release(t);
    dc_tensor_release(x);
    assert_int_equal(dc_live_tensors(), live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_basic),
        cmocka_unit_test(test_ce_basic_i32),
        cmocka_unit_test(test_ce_batch1_sum),
        cmocka_unit_test(test_ce_ignore_ls_mean),
        cmocka_unit_test(test_ce_ignore_ls_sum),
        cmocka_unit_test(test_ce_ignore_ls_none),
        cmocka_unit_test(test_ce_custom_ignore),
        cmocka_unit_test(test_ce_nd_mean),
        cmocka_unit_test(test_ce_nd_none),
        cmocka_unit_test(test_ce_unbatched),
        cmocka_unit_test(test_ce_wide),
        cmocka_unit_test(test_ce_strided_logits),
        cmocka_unit_test(test_ce_all_ignored),
        cmocka_unit_test(test_ce_large_logits),
        cmocka_unit_test(test_ce_gradcheck),
        cmocka_unit_test(test_ce_errors),
        cmocka_unit_test(test_nll_mean),
        cmocka_unit_test(test_nll_nd_none),
        cmocka_unit_test(test_nll_sum),
        cmocka_unit_test(test_nll_gradcheck),
        cmocka_unit_test(test_mse_mean),
        cmocka_unit_test(test_mse_sum),
        cmocka_unit_test(test_mse_none),
        cmocka_unit_test(test_mse_broadcast),
        cmocka_unit_test(test_mse_gradcheck),
        cmocka_unit_test(test_mse_errors),
        cmocka_unit_test(test_no_pool_ownership),
    };
    int rc = TL_RUN(tests);
    tl_report_worst("test_ops_loss");
    return rc;
}
