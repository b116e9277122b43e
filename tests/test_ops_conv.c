/* test_ops_conv.c: conv2d and conv_transpose2d against PyTorch fixtures
 * (tools/fixtures_conv.py): forward, grad x / weight / bias for batch 1, non-square kernels,
 * stride with padding, dilation, groups and depthwise, 1x1, the fast 3x3 and small-channel
 * paths, output_padding; plus finite-difference gradchecks, non-contiguous inputs, results
 * that do not depend on the thread count, and argument errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support/testlib.h"

static int meta_i(dc_safetensors *st, const char *key) { return (int)tl_meta_num(st, key); }

static dc_conv2d_args conv_args(dc_safetensors *st)
{
    return (dc_conv2d_args){.stride = {meta_i(st, "stride_h"), meta_i(st, "stride_w")},
                            .padding = {meta_i(st, "pad_h"), meta_i(st, "pad_w")},
                            .dilation = {meta_i(st, "dil_h"), meta_i(st, "dil_w")},
                            .groups = meta_i(st, "groups")};
}

static dc_conv_transpose2d_args convt_args(dc_safetensors *st)
{
    return (dc_conv_transpose2d_args){.stride = {meta_i(st, "stride_h"), meta_i(st, "stride_w")},
                                      .padding = {meta_i(st, "pad_h"), meta_i(st, "pad_w")},
                                      .output_padding = {meta_i(st, "outpad_h"), meta_i(st, "outpad_w")},
                                      .dilation = {meta_i(st, "dil_h"), meta_i(st, "dil_w")},
                                      .groups = meta_i(st, "groups")};
}

/* Forward, then backward with the fixture's gy, comparing out and every gradient. */
static void run_case(const char *name, bool transpose)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/conv/%s", name);
    dc_safetensors *st = tl_fixture(path);
    bool bias = tl_meta_num(st, "bias") != 0;
    dc_tensor *x = tl_leaf(st, "x"), *w = tl_leaf(st, "w"), *b = bias ? tl_leaf(st, "b") : NULL;
    dc_tensor *out = transpose ? TL_CHECK(dc_conv_transpose2d(x, w, b, convt_args(st)))
                               : TL_CHECK(dc_conv2d(x, w, b, conv_args(st)));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(x, st, "grad.x", name);
    tl_check_grad(w, st, "grad.w", name);
    if (bias) tl_check_grad(b, st, "grad.b", name);
    /* weight-only gradient (as for a network's first layer): the same numbers */
    dc_zero_grad(w);
    TL_OK(dc_set_requires_grad(x, false));
    if (b) TL_OK(dc_set_requires_grad(b, false));
    out = transpose ? TL_CHECK(dc_conv_transpose2d(x, w, b, convt_args(st)))
                    : TL_CHECK(dc_conv2d(x, w, b, conv_args(st)));
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(w, st, "grad.w", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

#define CONV_TEST(n) \
    static void test_##n(void **s) { (void)s; run_case(#n, false); }
#define CONVT_TEST(n) \
    static void test_##n(void **s) { (void)s; run_case(#n, true); }

CONV_TEST(basic)
CONV_TEST(batch1_nonsquare)
CONV_TEST(stride2_pad1)
CONV_TEST(stride_asym)
CONV_TEST(dilation2)
CONV_TEST(dilation_asym)
CONV_TEST(groups2)
CONV_TEST(depthwise)
CONV_TEST(pointwise)
CONV_TEST(pointwise_batch1)
CONV_TEST(downsample_1x1_s2)
CONV_TEST(stride2_wide_rows)
CONV_TEST(pad_larger_than_input)
CONV_TEST(kernel_equals_input)
CONV_TEST(lenet_conv1)
CONV_TEST(lenet_conv2)
CONV_TEST(k3_wide_8x8)
CONV_TEST(k3_wide_odd)
CONV_TEST(k3_wide_pad0)
CONV_TEST(k3_wide_pad2)
CONV_TEST(k3_small_spatial)
CONV_TEST(k3_s2_wide)
CONV_TEST(stem_like)
CONVT_TEST(t_basic)
CONVT_TEST(t_outpad_dilation)
CONVT_TEST(t_nonsquare_batch1)
CONVT_TEST(t_depthwise)
CONVT_TEST(t_upsample_k2s2)

/* A non-contiguous x (a transposed view of a contiguous tensor) gives the fixture's numbers,
 * and its gradient arrives in x's own shape. */
static void test_strided_input(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("ops/conv/k3_wide_odd");
    dc_tensor *x = tl_get(st, "x"); /* [2, 16, 7, 9] */
    dc_tensor *xt = TL_CHECK(dc_contiguous(dc_transpose(x, 2, 3)));
    TL_OK(dc_set_requires_grad(xt, true));
    dc_tensor *view = TL_CHECK(dc_transpose(xt, 2, 3)); /* x's values, strided */
    assert_false(dc_is_contiguous(view));
    dc_tensor *out = TL_CHECK(dc_conv2d(view, tl_get(st, "w"), tl_get(st, "b"), conv_args(st)));
    tl_check(out, tl_get(st, "out"), "strided x");
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    assert_non_null(xt->grad);
    tl_check(TL_CHECK(dc_transpose(xt->grad, 2, 3)), tl_get(st, "grad.x"), "strided x grad");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* ---- finite differences ----------------------------------------------------------------- */

static dc_tensor *gy_fixed; /* the upstream gradient the gradcheck functions multiply by */

static dc_tensor *f_conv(dc_tensor **in, void *ctx)
{
    return dc_mul(dc_conv2d(in[0], in[1], in[2], *(dc_conv2d_args *)ctx), gy_fixed);
}

static dc_tensor *f_convt(dc_tensor **in, void *ctx)
{
    return dc_mul(dc_conv_transpose2d(in[0], in[1], in[2], *(dc_conv_transpose2d_args *)ctx), gy_fixed);
}

static void gradcheck_case(const char *name, bool transpose)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/conv/%s", name);
    dc_safetensors *st = tl_fixture(path);
    bool bias = tl_meta_num(st, "bias") != 0;
    dc_tensor *in[3] = {tl_leaf(st, "x"), tl_leaf(st, "w"), bias ? tl_leaf(st, "b") : NULL};
    gy_fixed = tl_get(st, "gy");
    if (transpose) {
        dc_conv_transpose2d_args a = convt_args(st);
        tl_gradcheck(name, f_convt, 3, in, &a, 1e-2, 2e-3, 1e-2);
    } else {
        dc_conv2d_args a = conv_args(st);
        tl_gradcheck(name, f_conv, 3, in, &a, 1e-2, 2e-3, 1e-2);
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_conv_gradcheck(void **state)
{
    (void)state;
    const char *cases[] = {"batch1_nonsquare", "stride_asym", "dilation_asym", "groups2", "depthwise",
                           "pointwise_batch1", "pad_larger_than_input"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) gradcheck_case(cases[i], false);
}

static void test_conv_transpose_gradcheck(void **state)
{
    (void)state;
    const char *cases[] = {"t_basic", "t_outpad_dilation", "t_nonsquare_batch1"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) gradcheck_case(cases[i], true);
}

/* ---- determinism across thread counts --------------------------------------------------------
 * Each thread count gives a fixed result; 1 and 2 threads may differ only by float rounding of
 * the weight-gradient sums (per-thread partial sums), well inside the PyTorch tolerance. */

static void conv_all(dc_safetensors *st, int threads, dc_tensor **out, dc_tensor **gx, dc_tensor **gw)
{
    dc_set_num_threads(threads);
    dc_tensor *x = tl_leaf(st, "x"), *w = tl_leaf(st, "w");
    *out = TL_CHECK(dc_conv2d(x, w, NULL, conv_args(st)));
    TL_OK(dc_backward(*out, tl_get(st, "gy"), false));
    *gx = x->grad;
    *gw = w->grad;
}

static void test_threads_deterministic(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    int prev = dc_get_num_threads();
    const char *cases[] = {"k3_small_spatial", "k3_wide_odd", "lenet_conv2", "stride2_pad1"};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[128];
        snprintf(path, sizeof path, "ops/conv/%s", cases[c]);
        dc_safetensors *st = tl_fixture(path);
        dc_tensor *o1, *x1, *w1, *o2, *x2, *w2, *o3, *x3, *w3;
        conv_all(st, 1, &o1, &x1, &w1);
        conv_all(st, 2, &o2, &x2, &w2);
        conv_all(st, 2, &o3, &x3, &w3);
        /* the same thread count: bit for bit */
        assert_memory_equal(dc_data_f32(o2), dc_data_f32(o3), (size_t)dc_numel(o2) * 4);
        assert_memory_equal(dc_data_f32(x2), dc_data_f32(x3), (size_t)dc_numel(x2) * 4);
        assert_memory_equal(dc_data_f32(w2), dc_data_f32(w3), (size_t)dc_numel(w2) * 4);
        tl_assert_close(o1, o2, 1e-6, "1 vs 2 threads: out");
        tl_assert_close(x1, x2, 1e-6, "1 vs 2 threads: grad x");
        tl_assert_close(w1, w2, 1e-6, "1 vs 2 threads: grad w");
        dc_safetensors_close(st);
    }
    dc_set_num_threads(prev);
    dc_pool_pop(m);
}

/* ---- fast paths against the plain im2col + GEMM path -----------------------------------------
 * Winograd (3x3 stride 1) and the direct small-channel kernels take over for shapes bigger
 * than the fixtures; on such shapes their forward and all gradients must agree with the
 * im2col + GEMM path (dc__conv_path = 1 forces it) to PyTorch's tolerance. */

extern int dc__conv_path; /* src/backend/cpu/conv_internal.h */
extern int dc__conv_wide;

/* fast = 2: every specialised kernel wherever it is valid; 0: what the dispatcher picks */
static void run_paths_mode(int fast, int64_t n, int64_t c, int64_t hw, int64_t o, int k, int stride, int pad,
                           bool bias)
{
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, (uint64_t)(n * 131 + c * 17 + hw * 5 + o + k));
    dc_tensor *x = dc_randn(DC_SHAPE(n, c, hw, hw), &rng), *w = dc_randn(DC_SHAPE(o, c, k, k), &rng);
    dc_tensor *b = bias ? dc_randn(DC_SHAPE(o), &rng) : NULL;
    dc_conv2d_args a = {.stride = {stride, stride}, .padding = {pad, pad}};
    dc_tensor *out[2], *gx[2], *gw[2], *gb[2], *gy = NULL;
    for (int path = 0; path < 2; path++) {
        dc__conv_path = path ? 1 : fast;
        dc_zero_grad(x);
        dc_zero_grad(w);
        TL_OK(dc_set_requires_grad(x, true));
        TL_OK(dc_set_requires_grad(w, true));
        if (b) {
            dc_zero_grad(b);
            TL_OK(dc_set_requires_grad(b, true));
        }
        out[path] = TL_CHECK(dc_conv2d(x, w, b, a));
        if (!gy) gy = dc_randn(out[path]->ndim, out[path]->shape, &rng);
        TL_OK(dc_backward(out[path], gy, false));
        gx[path] = x->grad;
        gw[path] = w->grad;
        gb[path] = b ? b->grad : NULL;
        x->grad = w->grad = NULL; /* keep them (the pool owns the references now) */
        dc_autorelease(gx[path]);
        dc_autorelease(gw[path]);
        if (b) {
            b->grad = NULL;
            dc_autorelease(gb[path]);
        }
    }
    dc__conv_path = 0;
    char what[128];
    snprintf(what, sizeof what, "fast path vs GEMM [%lld, %lld, %lld, %lld] k%d s%d p%d: out", (long long)n,
             (long long)c, (long long)hw, (long long)hw, k, stride, pad);
    tl_check(out[0], out[1], what);
    tl_check(gx[0], gx[1], "fast path vs GEMM: grad x");
    tl_check(gw[0], gw[1], "fast path vs GEMM: grad w");
    if (b) tl_check(gb[0], gb[1], "fast path vs GEMM: grad b");
    dc_pool_pop(m);
}

static void run_paths(int64_t n, int64_t c, int64_t hw, int64_t o, int k, int stride, int pad, bool bias)
{
    run_paths_mode(2, n, c, hw, o, k, stride, pad, bias);
}

static void test_fast_paths_match_gemm(void **state)
{
    (void)state;
    /* the dispatcher's own choice on ResNet-20's shapes (direct kernels and im2col) */
    run_paths_mode(0, 3, 16, 14, 16, 3, 1, 1, false);
    run_paths_mode(0, 2, 32, 7, 32, 3, 1, 1, false);
    run_paths_mode(0, 3, 16, 14, 32, 3, 2, 1, false);
    run_paths(3, 32, 16, 48, 3, 1, 1, true);   /* Winograd: all three passes */
    run_paths(2, 64, 9, 32, 3, 1, 1, false);   /* odd size: partial tiles */
    run_paths(20, 32, 4, 40, 3, 1, 1, false);  /* 4x4: Winograd forward and input gradient */
    run_paths(2, 16, 12, 24, 3, 1, 0, true);   /* padding 0 (input gradient padding 2) */
    run_paths(3, 16, 33, 24, 3, 2, 1, true);   /* stride 2, 5x5 transforms: all three passes */
    run_paths(2, 16, 31, 20, 3, 2, 0, false);  /* stride 2, odd size, no padding */
    run_paths(20, 16, 16, 24, 3, 2, 1, true);  /* stride 2, 8x8 outputs: Winograd forward only */
    run_paths(5, 3, 32, 64, 3, 1, 1, false);   /* stem: direct kernels, channels in the lanes */
    run_paths(9, 1, 28, 6, 5, 1, 2, true);     /* LeNet conv1 */
    run_paths(9, 6, 14, 16, 5, 1, 0, true);    /* LeNet conv2 (input gradient by the Z GEMM) */
    run_paths(19, 6, 14, 16, 5, 1, 0, true);   /* LeNet conv2, images in the lanes: 2 groups + 3 */
    run_paths(17, 4, 9, 8, 5, 1, 2, true);     /* the same with padding, 4 channels (half a block) */
    run_paths(11, 8, 10, 8, 3, 1, 1, false);   /* 8 channels: a full block and a partial one */
    run_paths(4, 5, 11, 12, 3, 1, 2, true);    /* direct kernels, pixels in the lanes */
    /* the 16-float Winograd GEMM (AVX-512 machines), run here with default code generation */
    dc__conv_wide = 1;
    run_paths(3, 32, 16, 48, 3, 1, 1, true);
    run_paths(2, 64, 9, 40, 3, 1, 1, false);
    run_paths(3, 16, 33, 24, 3, 2, 1, true);
    dc__conv_wide = -1;
}

/* ---- inference mode and ownership --------------------------------------------------------- */

/* With grad off nothing is recorded; with no pool the caller owns the result. */
static void test_no_grad_no_pool(void **state)
{
    (void)state;
    dc_safetensors *st = tl_fixture("ops/conv/basic");
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = dc_tensor_retain(tl_leaf(st, "x")), *w = dc_tensor_retain(tl_get(st, "w"));
    dc_tensor *b = dc_tensor_retain(tl_get(st, "b")), *expect = dc_tensor_retain(tl_get(st, "out"));
    dc_pool_pop(m);
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *out = TL_CHECK(dc_conv2d(x, w, b, conv_args(st)));
    dc_set_grad_enabled(prev);
    assert_null(out->grad_fn);
    tl_check(out, expect, "no grad, no pool");
    dc_tensor_release(out);
    out = TL_CHECK(dc_conv2d(x, w, b, conv_args(st))); /* recorded, still owned by us */
    assert_non_null(out->grad_fn);
    dc_tensor_release(out);
    dc_tensor_release(x);
    dc_tensor_release(w);
    dc_tensor_release(b);
    dc_tensor_release(expect);
    dc_safetensors_close(st);
}

/* ---- argument errors ------------------------------------------------------------------------ */

static void expect_error_at(dc_tensor *result, const char *a, const char *b, int line)
{
    if (result) fail_msg("line %d: expected an error, got a result", line);
    if (a && !strstr(dc_last_error(), a)) fail_msg("line %d: error '%s' lacks '%s'", line, dc_last_error(), a);
    if (b && !strstr(dc_last_error(), b)) fail_msg("line %d: error '%s' lacks '%s'", line, dc_last_error(), b);
    dc_clear_error();
}
#define expect_error(result, a, b) expect_error_at((result), (a), (b), __LINE__)

static void test_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = dc_zeros(DC_F32, DC_SHAPE(2, 3, 28, 28));
    dc_tensor *w = dc_zeros(DC_F32, DC_SHAPE(6, 1, 5, 5));
    dc_conv2d_args a = {0};
    expect_error(dc_conv2d(x, w, NULL, a), "conv2d: weight [6, 1, 5, 5] expects 1 input channels, x has 3",
                 "[2, 3, 28, 28]");
    dc_tensor *w3 = dc_zeros(DC_F32, DC_SHAPE(6, 3, 5, 5));
    dc_tensor *small = dc_zeros(DC_F32, DC_SHAPE(1, 3, 4, 4));
    expect_error(dc_conv2d(small, w3, NULL, a), "conv2d: kernel 5x5", "larger than the padded input 4x4");
    a.padding[0] = a.padding[1] = 1; /* 6x6 padded: too small for 7x7 */
    expect_error(dc_conv2d(small, dc_zeros(DC_F32, DC_SHAPE(6, 3, 7, 7)), NULL, a), "padded input 6x6",
                 "[1, 3, 4, 4]");
    TL_CHECK(dc_conv2d(small, w3, NULL, a)); /* 5x5 fits in 6x6 */
    a = (dc_conv2d_args){.dilation = {2, 2}}; /* 5x5 dilated to 9x9 */
    expect_error(dc_conv2d(small, w3, NULL, a), "dilated to 9x9", NULL);
    a = (dc_conv2d_args){0};
    expect_error(dc_conv2d(x, w3, dc_zeros(DC_F32, DC_SHAPE(5)), a), "conv2d: bias [5]", "expected [6]");
    a.groups = 4;
    expect_error(dc_conv2d(x, w3, NULL, a), "expects 12 input channels", NULL);
    a = (dc_conv2d_args){.groups = 3};
    dc_tensor *w_g = dc_zeros(DC_F32, DC_SHAPE(4, 1, 3, 3));
    expect_error(dc_conv2d(x, w_g, NULL, a), "4 output channels", "groups = 3");
    a = (dc_conv2d_args){.padding = {-1, 0}};
    expect_error(dc_conv2d(x, w3, NULL, a), "conv2d:", "must not be negative");
    a = (dc_conv2d_args){0};
    expect_error(dc_conv2d(dc_zeros(DC_F32, DC_SHAPE(3, 28, 28)), w3, NULL, a), "x must be 4-d", "[3, 28, 28]");
    expect_error(dc_conv2d(x, dc_zeros(DC_F32, DC_SHAPE(6, 3, 5)), NULL, a), "weight must be 4-d", NULL);
    expect_error(dc_conv2d(dc_zeros(DC_I64, DC_SHAPE(2, 3, 28, 28)), w3, NULL, a), "conv2d", "F32");
    /* NULL input: NULL result, the earlier error kept */
    dc_set_error(DC_ERR_IO, "an earlier failure");
    assert_null(dc_conv2d(NULL, w3, NULL, a));
    assert_string_equal(dc_last_error(), "an earlier failure");
    dc_clear_error();

    /* conv_transpose2d */
    dc_conv_transpose2d_args t = {.stride = {2, 2}, .output_padding = {2, 0}};
    dc_tensor *wt = dc_zeros(DC_F32, DC_SHAPE(3, 4, 3, 3));
    dc_tensor *xt = dc_zeros(DC_F32, DC_SHAPE(2, 3, 5, 5));
    expect_error(dc_conv_transpose2d(xt, wt, NULL, t), "conv_transpose2d: output_padding {2, 0}",
                 "smaller than either stride");
    t = (dc_conv_transpose2d_args){0};
    expect_error(dc_conv_transpose2d(dc_zeros(DC_F32, DC_SHAPE(2, 5, 5, 5)), wt, NULL, t),
                 "expects 3 input channels, x has 5", NULL);
    expect_error(dc_conv_transpose2d(xt, wt, dc_zeros(DC_F32, DC_SHAPE(3)), t), "bias [3]", "expected [4]");
    t = (dc_conv_transpose2d_args){.padding = {4, 4}};
    expect_error(dc_conv_transpose2d(dc_zeros(DC_F32, DC_SHAPE(1, 3, 2, 2)), wt, NULL, t), "too small", NULL);
    t = (dc_conv_transpose2d_args){.groups = 2};
    expect_error(dc_conv_transpose2d(xt, wt, NULL, t), "not divisible by groups = 2", NULL);
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_batch1_nonsquare),
        cmocka_unit_test(test_stride2_pad1),
        cmocka_unit_test(test_stride_asym),
        cmocka_unit_test(test_dilation2),
        cmocka_unit_test(test_dilation_asym),
        cmocka_unit_test(test_groups2),
        cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_pointwise),
        cmocka_unit_test(test_pointwise_batch1),
        cmocka_unit_test(test_downsample_1x1_s2),
        cmocka_unit_test(test_stride2_wide_rows),
        cmocka_unit_test(test_pad_larger_than_input),
        cmocka_unit_test(test_kernel_equals_input),
        cmocka_unit_test(test_lenet_conv1),
        cmocka_unit_test(test_lenet_conv2),
        cmocka_unit_test(test_k3_wide_8x8),
        cmocka_unit_test(test_k3_wide_odd),
        cmocka_unit_test(test_k3_wide_pad0),
        cmocka_unit_test(test_k3_wide_pad2),
        cmocka_unit_test(test_k3_small_spatial),
        cmocka_unit_test(test_k3_s2_wide),
        cmocka_unit_test(test_stem_like),
        cmocka_unit_test(test_t_basic),
        cmocka_unit_test(test_t_outpad_dilation),
        cmocka_unit_test(test_t_nonsquare_batch1),
        cmocka_unit_test(test_t_depthwise),
        cmocka_unit_test(test_t_upsample_k2s2),
        cmocka_unit_test(test_strided_input),
        cmocka_unit_test(test_conv_gradcheck),
        cmocka_unit_test(test_conv_transpose_gradcheck),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_fast_paths_match_gemm),
        cmocka_unit_test(test_no_grad_no_pool),
        cmocka_unit_test(test_errors),
    };
    int rc = TL_RUN(tests);
    tl_report_worst("test_ops_conv");
    return rc;
}
