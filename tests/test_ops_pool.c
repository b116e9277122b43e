/* test_ops_pool.c: max / average / adaptive-average pooling, nearest upsampling and constant
 * padding against PyTorch fixtures (tools/fixtures_conv.py): forward and input gradient,
 * including padding + ceil_mode + dilation for max pooling, ties, count_include_pad both
 * ways, non-divisible adaptive sizes, negative padding and 3-d inputs; plus finite-difference
 * gradchecks and argument errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support/testlib.h"

static int meta_i(dc_safetensors *st, const char *key) { return (int)tl_meta_num(st, key); }

typedef enum { OP_MAX, OP_AVG, OP_ADAPTIVE, OP_UPSAMPLE, OP_PAD } op_kind;

typedef struct op_args {
    op_kind kind;
    dc_pool2d_args pool;
    int a, b;   /* adaptive out size / upsample scales */
    int pad[4]; /* pad2d */
    float value;
} op_args;

static op_args read_args(dc_safetensors *st, op_kind kind)
{
    op_args o = {.kind = kind};
    switch (kind) {
    case OP_MAX:
    case OP_AVG:
        o.pool = (dc_pool2d_args){.kernel = {meta_i(st, "k_h"), meta_i(st, "k_w")},
                                  .stride = {meta_i(st, "stride_h"), meta_i(st, "stride_w")},
                                  .padding = {meta_i(st, "pad_h"), meta_i(st, "pad_w")},
                                  .dilation = {meta_i(st, "dil_h"), meta_i(st, "dil_w")},
                                  .ceil_mode = meta_i(st, "ceil_mode") != 0,
                                  .count_include_pad = meta_i(st, "count_include_pad") != 0};
        break;
    case OP_ADAPTIVE:
        o.a = meta_i(st, "out_h"), o.b = meta_i(st, "out_w");
        break;
    case OP_UPSAMPLE:
        o.a = meta_i(st, "scale_h"), o.b = meta_i(st, "scale_w");
        break;
    case OP_PAD:
        o.pad[0] = meta_i(st, "left"), o.pad[1] = meta_i(st, "right");
        o.pad[2] = meta_i(st, "top"), o.pad[3] = meta_i(st, "bottom");
        o.value = (float)tl_meta_num(st, "value");
        break;
    }
    return o;
}

static dc_tensor *apply(dc_tensor *x, const op_args *o)
{
    switch (o->kind) {
    case OP_MAX: return dc_max_pool2d(x, o->pool);
    case OP_AVG: return dc_avg_pool2d(x, o->pool);
    case OP_ADAPTIVE: return dc_adaptive_avg_pool2d(x, o->a, o->b);
    case OP_UPSAMPLE: return dc_upsample_nearest2d(x, o->a, o->b);
    case OP_PAD: return dc_pad2d(x, o->pad, o->value);
    }
    return NULL;
}

static void run_case(const char *name, op_kind kind)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/pool/%s", name);
    dc_safetensors *st = tl_fixture(path);
    op_args o = read_args(st, kind);
    dc_tensor *x = tl_get(st, "x");
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *out = TL_CHECK(apply(x, &o));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    if (!x->grad) fail_msg("%s: no gradient", name);
    char what[160];
    snprintf(what, sizeof what, "%s grad.x", name);
    tl_check(x->grad, tl_get(st, "grad.x"), what);
    /* the same forward with grad off (max pooling then keeps no indices) */
    bool prev = dc_set_grad_enabled(false);
    out = TL_CHECK(apply(x, &o));
    dc_set_grad_enabled(prev);
    assert_null(out->grad_fn);
    tl_check(out, tl_get(st, "out"), name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

#define POOL_TEST(n, kind) \
    static void test_##n(void **s) { (void)s; run_case(#n, kind); }

POOL_TEST(max_2x2, OP_MAX)
POOL_TEST(max_k3s2p1_ceil, OP_MAX)
POOL_TEST(max_k3s2_floor, OP_MAX)
POOL_TEST(max_dilation2, OP_MAX)
POOL_TEST(max_dilation_ceil, OP_MAX)
POOL_TEST(max_nonsquare, OP_MAX)
POOL_TEST(max_overlap, OP_MAX)
POOL_TEST(max_ties, OP_MAX)
POOL_TEST(max_3d_input, OP_MAX)
POOL_TEST(avg_2x2, OP_AVG)
POOL_TEST(avg_k3s2p1_ceil_incl, OP_AVG)
POOL_TEST(avg_k3s2p1_ceil_excl, OP_AVG)
POOL_TEST(avg_k3s2p1_floor_excl, OP_AVG)
POOL_TEST(avg_nonsquare, OP_AVG)
POOL_TEST(avg_ceil_overhang, OP_AVG)
POOL_TEST(adaptive_7x5_to_3x2, OP_ADAPTIVE)
POOL_TEST(adaptive_global, OP_ADAPTIVE)
POOL_TEST(adaptive_5x4_to_7x6, OP_ADAPTIVE)
POOL_TEST(adaptive_10x10_to_4x3, OP_ADAPTIVE)
POOL_TEST(upsample_2x2, OP_UPSAMPLE)
POOL_TEST(upsample_3x1, OP_UPSAMPLE)
POOL_TEST(pad_1_2_0_3, OP_PAD)
POOL_TEST(pad_negative, OP_PAD)
POOL_TEST(pad_3d, OP_PAD)

/* Max pooling propagates NaN (as PyTorch) and routes its gradient to the NaN's position. */
static void test_max_nan(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float v[8] = {1, 5, NAN, 2, 3, 4, 7, 6};
    dc_tensor *x = dc_from_data(DC_F32, DC_SHAPE(1, 1, 2, 4), v);
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *y = TL_CHECK(dc_max_pool2d(x, (dc_pool2d_args){.kernel = {2, 2}}));
    assert_true(isnan(dc_data_f32(y)[1]));
    assert_true(dc_data_f32(y)[0] == 5.0f);
    TL_OK(dc_backward(y, dc_ones(DC_F32, DC_SHAPE(1, 1, 1, 2)), false));
    const float *g = dc_data_f32(x->grad);
    float expect[8] = {0, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) assert_true(g[i] == expect[i]);
    dc_pool_pop(m);
}

/* ---- finite differences ----------------------------------------------------------------- */

static dc_tensor *gy_fixed;
static dc_tensor *f_op(dc_tensor **in, void *ctx) { return dc_mul(apply(in[0], ctx), gy_fixed); }

static void gradcheck_case(const char *name, op_kind kind)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/pool/%s", name);
    dc_safetensors *st = tl_fixture(path);
    op_args o = read_args(st, kind);
    dc_tensor *x = tl_get(st, "x");
    TL_OK(dc_set_requires_grad(x, true));
    gy_fixed = tl_get(st, "gy");
    /* max pooling: random normal inputs are at least ~1e-3 apart almost surely, but a step of
     * 1e-2 could swap a window's maximum, so use a smaller one there */
    double eps = kind == OP_MAX ? 1e-3 : 1e-2;
    tl_gradcheck(name, f_op, 1, &x, &o, eps, 2e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_gradcheck(void **state)
{
    (void)state;
    gradcheck_case("max_dilation_ceil", OP_MAX);
    gradcheck_case("max_k3s2p1_ceil", OP_MAX);
    gradcheck_case("avg_k3s2p1_ceil_incl", OP_AVG);
    gradcheck_case("avg_k3s2p1_ceil_excl", OP_AVG);
    gradcheck_case("avg_nonsquare", OP_AVG);
    gradcheck_case("adaptive_7x5_to_3x2", OP_ADAPTIVE);
    gradcheck_case("adaptive_5x4_to_7x6", OP_ADAPTIVE);
    gradcheck_case("upsample_3x1", OP_UPSAMPLE);
    gradcheck_case("pad_negative", OP_PAD);
    gradcheck_case("pad_1_2_0_3", OP_PAD);
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
    dc_tensor *x = dc_zeros(DC_F32, DC_SHAPE(2, 3, 4, 4));
    expect_error(dc_max_pool2d(x, (dc_pool2d_args){.kernel = {0, 2}}), "max_pool2d: kernel {0, 2}", "positive");
    expect_error(dc_max_pool2d(x, (dc_pool2d_args){.kernel = {2, 2}, .padding = {2, 0}}), "padding {2, 0}",
                 "half the kernel");
    expect_error(dc_max_pool2d(x, (dc_pool2d_args){.kernel = {5, 5}}), "max_pool2d: input [2, 3, 4, 4]",
                 "too small");
    expect_error(dc_max_pool2d(x, (dc_pool2d_args){.kernel = {2, 2}, .dilation = {4, 4}}), "too small", NULL);
    expect_error(dc_avg_pool2d(x, (dc_pool2d_args){.kernel = {2, 2}, .dilation = {2, 2}}), "avg_pool2d: dilation",
                 NULL);
    expect_error(dc_avg_pool2d(dc_zeros(DC_F32, DC_SHAPE(4, 4)), (dc_pool2d_args){.kernel = {2, 2}}),
                 "avg_pool2d: x must be", "[4, 4]");
    expect_error(dc_adaptive_avg_pool2d(x, 0, 2), "adaptive_avg_pool2d: output size 0x2", NULL);
    expect_error(dc_upsample_nearest2d(x, 2, 0), "upsample_nearest2d: scale factors 2x0", NULL);
    expect_error(dc_pad2d(x, (const int[4]){-2, -2, 0, 0}, 0), "pad2d: padding {-2, -2, 0, 0}", "empty 4x0");
    expect_error(dc_max_pool2d(dc_zeros(DC_I32, DC_SHAPE(1, 1, 4, 4)), (dc_pool2d_args){.kernel = {2, 2}}),
                 "max_pool2d", "F32");
    dc_set_error(DC_ERR_IO, "an earlier failure");
    assert_null(dc_avg_pool2d(NULL, (dc_pool2d_args){.kernel = {2, 2}}));
    assert_string_equal(dc_last_error(), "an earlier failure");
    dc_clear_error();
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_2x2),
        cmocka_unit_test(test_max_k3s2p1_ceil),
        cmocka_unit_test(test_max_k3s2_floor),
        cmocka_unit_test(test_max_dilation2),
        cmocka_unit_test(test_max_dilation_ceil),
        cmocka_unit_test(test_max_nonsquare),
        cmocka_unit_test(test_max_overlap),
        cmocka_unit_test(test_max_ties),
        cmocka_unit_test(test_max_3d_input),
        cmocka_unit_test(test_max_nan),
        cmocka_unit_test(test_avg_2x2),
        cmocka_unit_test(test_avg_k3s2p1_ceil_incl),
        cmocka_unit_test(test_avg_k3s2p1_ceil_excl),
        cmocka_unit_test(test_avg_k3s2p1_floor_excl),
        cmocka_unit_test(test_avg_nonsquare),
        cmocka_unit_test(test_avg_ceil_overhang),
        cmocka_unit_test(test_adaptive_7x5_to_3x2),
        cmocka_unit_test(test_adaptive_global),
        cmocka_unit_test(test_adaptive_5x4_to_7x6),
        cmocka_unit_test(test_adaptive_10x10_to_4x3),
        cmocka_unit_test(test_upsample_2x2),
        cmocka_unit_test(test_upsample_3x1),
        cmocka_unit_test(test_pad_1_2_0_3),
        cmocka_unit_test(test_pad_negative),
        cmocka_unit_test(test_pad_3d),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_errors),
    };
    int rc = TL_RUN(tests);
    tl_report_worst("test_ops_pool");
    return rc;
}
