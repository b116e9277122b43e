/* test_core.c: tensors, views, pools, autograd bookkeeping, and matmul/linear against PyTorch
 * fixtures (tools/fixtures_core.py). */
#include <math.h>

#include "support/testlib.h"
#include "core/internal.h"

/* ---- tensors and pools ---------------------------------------------------------------- */

static void test_create_and_release(void **state)
{
    (void)state;
    int64_t live = dc_live_tensors();
    dc_tensor *t = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 3, 4)));
    assert_int_equal(dc_numel(t), 24);
    assert_true(dc_is_contiguous(t));
    assert_int_equal(t->stride[0], 12);
    dc_tensor *f = TL_CHECK(dc_full(DC_I64, DC_SHAPE(3), 7));
    assert_int_equal(((int64_t *)dc_data(f))[2], 7);
    dc_tensor_release(t);
    dc_tensor_release(f);
    assert_int_equal(dc_live_tensors(), live);
}

static void test_pool_owns_results(void **state)
{
    (void)state;
    int64_t live = dc_live_tensors();
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(4, 4)));
    dc_tensor *v = TL_CHECK(dc_transpose(a, 0, 1));
    dc_tensor *keep = dc_tensor_retain(TL_CHECK(dc_narrow(v, 0, 1, 2)));
    dc_pool_pop(m);
    /* the view keeps the storage of its base alive */
    assert_int_equal(dc_live_tensors(), live + 1);
    dc_pool_mark m2 = dc_pool_push();
    assert_float_equal(dc_item(dc_select(dc_select(keep, 0, 0), 0, 3)), 1.0, 0);
    dc_pool_pop(m2);
    dc_tensor_release(keep);
}

static void test_errors_are_reported(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = dc_zeros(DC_F32, DC_SHAPE(2, 3));
    dc_tensor *b = dc_zeros(DC_F32, DC_SHAPE(4, 5));
    assert_null(dc_matmul(a, b));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[2, 3]"));
    assert_non_null(strstr(dc_last_error(), "[4, 5]"));
    /* a NULL input keeps the first error */
    assert_null(dc_linear(NULL, b, NULL));
    assert_non_null(strstr(dc_last_error(), "matmul"));
    assert_null(dc_view(a, DC_SHAPE(7)));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_null(dc_narrow(a, 1, 2, 2));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_transpose(a, 0, 5));
    assert_null(dc_zeros(DC_F32, DC_SHAPE(-1)));
    dc_clear_error();
    dc_pool_pop(m);
}

static void test_half_conversions(void **state)
{
    (void)state;
    const float values[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333333f, 1e-9f, 70000.0f};
    const uint16_t f16[] = {0x0000, 0x8000, 0x3c00, 0xc100, 0x7bff, 0x0400, 0x0001, 0x3555, 0x0000, 0x7c00};
    const uint16_t bf16[] = {0x0000, 0x8000, 0x3f80, 0xc020, 0x4780, 0x3880, 0x3380, 0x3eab, 0x3089, 0x4789};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        assert_int_equal(dc__f32_to_f16(values[i]), f16[i]);
        assert_int_equal(dc__f32_to_bf16(values[i]), bf16[i]);
    }
    assert_float_equal(dc__f16_to_f32(0x3555), 0.33325195f, 0);
    assert_float_equal(dc__bf16_to_f32(0x3eab), 0.333984375f, 0);
    assert_float_equal(dc__f16_to_f32(0x0001), 5.9604645e-08f, 0);
}

static void test_rng_matches_torch(void **state)
{
    (void)state;
    /* torch.manual_seed(0); torch.rand(3) -> 0.4963, 0.7682, 0.0885 */
    dc_rng rng;
    dc_rng_seed(&rng, 0);
    dc_tensor *r = TL_CHECK(dc_rand(DC_SHAPE(3), &rng));
    const float *p = dc_data_f32(r);
    assert_float_equal(p[0], 0.49625659f, 1e-7);
    assert_float_equal(p[1], 0.76822180f, 1e-7);
    assert_float_equal(p[2], 0.08847743f, 1e-7);
    dc_tensor_release(r);
}

/* ---- views and contiguous ------------------------------------------------------------- */

static void test_view_geometry(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = TL_CHECK(dc_arange(DC_F32, 0, 24, 1));
    dc_tensor *b = TL_CHECK(dc_view(a, DC_SHAPE(2, 3, 4)));
    dc_tensor *p = TL_CHECK(dc_permute(b, (int[]){2, 0, 1}));
    assert_false(dc_is_contiguous(p));
    assert_int_equal(p->shape[0], 4);
    dc_tensor *c = TL_CHECK(dc_contiguous(p));
    /* c[i][j][k] = b[j][k][i] = 12 j + 4 k + i */
    const float *cp = dc_data_f32(c);
    assert_float_equal(cp[(3 * 2 + 1) * 3 + 2], 12 * 1 + 4 * 2 + 3, 0);
    /* view of a non-contiguous tensor that strides allow (merging dims 1,2 of a transpose-free slice) */
    dc_tensor *n = TL_CHECK(dc_narrow(b, 0, 1, 1));
    TL_CHECK(dc_view(n, DC_SHAPE(12)));
    /* view that strides forbid fails, reshape copies */
    assert_null(dc_view(p, DC_SHAPE(24)));
    dc_tensor *r = TL_CHECK(dc_reshape(p, DC_SHAPE(-1)));
    assert_int_equal(r->shape[0], 24);
    dc_tensor *e = TL_CHECK(dc_expand(TL_CHECK(dc_unsqueeze(a, 0)), DC_SHAPE(3, 24)));
    assert_int_equal(e->stride[0], 0);
    dc_tensor *s = TL_CHECK(dc_slice(a, 0, -5, 100, 2));
    assert_int_equal(s->shape[0], 3);
    assert_float_equal(dc_item(dc_select(s, 0, 2)), 23, 0);
    dc_clear_error();
    dc_pool_pop(m);
}

static void check_view_fixture(const char *name, dc_tensor *(*f)(dc_tensor *))
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/core/view_%s.safetensors", name);
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *x = tl_get(st, "x");
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *y = TL_CHECK(f(x));
    tl_assert_close(y, tl_get(st, "out"), 0, name);
    dc_tensor *loss = TL_CHECK(dc_sum_all(dc_mul(y, tl_get(st, "w"))));
    TL_OK(dc_backward(loss, NULL, false));
    tl_assert_close(x->grad, tl_get(st, "grad.x"), TL_RTOL, name);
    dc_zero_grad(x);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static dc_tensor *v_permute(dc_tensor *x) { return dc_permute(x, (int[]){2, 0, 3, 1}); }
static dc_tensor *v_transpose_reshape(dc_tensor *x) { return dc_reshape(dc_transpose(x, 1, 2), DC_SHAPE(6, 20)); }
static dc_tensor *v_narrow(dc_tensor *x) { return dc_narrow(x, 2, 1, 2); }
static dc_tensor *v_slice_step(dc_tensor *x) { return dc_slice(x, 2, 1, 4, 2); }
static dc_tensor *v_select(dc_tensor *x) { return dc_select(x, 1, 2); }
static dc_tensor *v_expand(dc_tensor *x) { return dc_expand(dc_narrow(x, 1, 0, 1), DC_SHAPE(2, 3, 4, 5)); }
static dc_tensor *v_unsqueeze_flatten(dc_tensor *x) { return dc_flatten(dc_unsqueeze(x, 1), 2, 4); }

static void test_view_gradients(void **state)
{
    (void)state;
    check_view_fixture("permute", v_permute);
    check_view_fixture("transpose_reshape", v_transpose_reshape);
    check_view_fixture("narrow", v_narrow);
    check_view_fixture("slice_step", v_slice_step);
    check_view_fixture("select", v_select);
    check_view_fixture("expand", v_expand);
    check_view_fixture("unsqueeze_flatten", v_unsqueeze_flatten);
}

/* ---- matmul / linear -------------------------------------------------------------------- */

static void check_matmul(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    char path[128];
    snprintf(path, sizeof path, "ops/core/matmul_%s.safetensors", name);
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *a = tl_get(st, "a"), *b = tl_get(st, "b");
    TL_OK(dc_set_requires_grad(a, true));
    TL_OK(dc_set_requires_grad(b, true));
    dc_tensor *out = TL_CHECK(dc_matmul(a, b));
    tl_assert_close(out, tl_get(st, "out"), TL_RTOL, name);
    TL_OK(dc_backward(out, tl_get(st, "gout"), false));
    tl_assert_close(a->grad, tl_get(st, "grad.a"), TL_RTOL, name);
    tl_assert_close(b->grad, tl_get(st, "grad.b"), TL_RTOL, name);
    dc_zero_grad(a);
    dc_zero_grad(b);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_matmul_fixtures(void **state)
{
    (void)state;
    const char *cases[] = {"2d", "1d_1d", "1d_2d", "2d_1d", "batched", "bcast_left", "bcast_right",
                           "bcast_both", "1d_batched", "batch1"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_matmul(cases[i]);
}

static void test_linear_fixtures(void **state)
{
    (void)state;
    const char *cases[] = {"2d", "3d", "nobias", "batch1"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dc_pool_mark m = dc_pool_push();
        char path[128];
        snprintf(path, sizeof path, "ops/core/linear_%s.safetensors", cases[i]);
        dc_safetensors *st = tl_fixture(path);
        dc_tensor *x = tl_get(st, "x"), *w = tl_get(st, "weight");
        dc_tensor *b = dc_safetensors_has(st, "bias") ? tl_get(st, "bias") : NULL;
        TL_OK(dc_set_requires_grad(x, true));
        TL_OK(dc_set_requires_grad(w, true));
        if (b) TL_OK(dc_set_requires_grad(b, true));
        dc_tensor *out = TL_CHECK(dc_linear(x, w, b));
        tl_assert_close(out, tl_get(st, "out"), TL_RTOL, cases[i]);
        TL_OK(dc_backward(out, tl_get(st, "gout"), false));
        tl_assert_close(x->grad, tl_get(st, "grad.x"), TL_RTOL, cases[i]);
        tl_assert_close(w->grad, tl_get(st, "grad.weight"), TL_RTOL, cases[i]);
        if (b) tl_assert_close(b->grad, tl_get(st, "grad.bias"), TL_RTOL, cases[i]);
        dc_zero_grad(x);
        dc_zero_grad(w);
        dc_zero_grad(b);
        dc_safetensors_close(st);
        dc_pool_pop(m);
    }
}

static dc_tensor *f_matmul(dc_tensor **in, void *ctx)
{
    (void)ctx;
    return dc_matmul(in[0], in[1]);
}
static dc_tensor *f_linear(dc_tensor **in, void *ctx)
{
    (void)ctx;
    return dc_linear(in[0], in[1], in[2]);
}
static dc_tensor *f_views(dc_tensor **in, void *ctx)
{
    (void)ctx;
    dc_tensor *x = in[0];
    dc_tensor *a = dc_reshape(dc_permute(x, (int[]){1, 0, 2}), DC_SHAPE(3, 8));
    dc_tensor *b = dc_expand(dc_select(dc_slice(x, 2, 0, 4, 3), 0, 1), DC_SHAPE(2, 3, 2));
    return dc_add(dc_sum(dc_mul(a, a), 1, (int[]){1}, true), dc_sum(b, 1, (int[]){0}, false));
}

static void test_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 1);
    dc_tensor *a = dc_randn(DC_SHAPE(2, 3, 4), &rng), *b = dc_randn(DC_SHAPE(4, 5), &rng);
    dc_set_requires_grad(a, true);
    dc_set_requires_grad(b, true);
    tl_gradcheck("matmul", f_matmul, 2, (dc_tensor *[]){a, b}, NULL, 1e-2, 1e-3, 1e-2);
    dc_tensor *x = dc_randn(DC_SHAPE(3, 5), &rng), *w = dc_randn(DC_SHAPE(2, 5), &rng), *bias = dc_randn(DC_SHAPE(2), &rng);
    dc_set_requires_grad(x, true);
    dc_set_requires_grad(w, true);
    dc_set_requires_grad(bias, true);
    tl_gradcheck("linear", f_linear, 3, (dc_tensor *[]){x, w, bias}, NULL, 1e-2, 1e-3, 1e-2);
    dc_tensor *v = dc_randn(DC_SHAPE(2, 3, 4), &rng);
    dc_set_requires_grad(v, true);
    tl_gradcheck("views", f_views, 1, (dc_tensor *[]){v}, NULL, 1e-2, 1e-3, 1e-2);
    dc_pool_pop(m);
}

/* ---- autograd semantics ------------------------------------------------------------------ */

static void test_autograd_semantics(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *w = dc_full(DC_F32, DC_SHAPE(3), 2.0);
    dc_set_requires_grad(w, true);
    /* y = sum(w * w): dy/dw = 2w, accumulated over two backwards */
    for (int i = 0; i < 2; i++) {
        dc_tensor *y = TL_CHECK(dc_sum_all(dc_mul(w, w)));
        TL_OK(dc_backward(y, NULL, false));
        /* a second backward through a freed graph is an error, not a crash */
        assert_int_equal(dc_backward(y, NULL, false), DC_ERR_STATE);
        dc_clear_error();
    }
    assert_float_equal(dc_data_f32(w->grad)[1], 8.0, 1e-6);
    dc_zero_grad(w);
    assert_null(w->grad);
    /* retain_graph allows a second pass */
    dc_tensor *y = TL_CHECK(dc_sum_all(dc_mul(w, w)));
    TL_OK(dc_backward(y, NULL, true));
    TL_OK(dc_backward(y, NULL, false));
    assert_float_equal(dc_data_f32(w->grad)[0], 8.0, 1e-6);
    dc_zero_grad(w);
    /* no-grad mode records nothing */
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *z = dc_mul(w, w);
    assert_null(z->grad_fn);
    assert_false(dc_needs_grad(z));
    dc_set_grad_enabled(prev);
    /* detach cuts the graph */
    dc_tensor *d = dc_detach(dc_mul(w, w));
    assert_false(dc_needs_grad(d));
    /* backward on a non-scalar needs a gradient */
    assert_int_equal(dc_backward(dc_mul(w, w), NULL, false), DC_ERR_SHAPE);
    dc_clear_error();
    dc_pool_pop(m);
}

/* Without retain_graph, backward lets each activation go once it has passed it (as PyTorch
 * frees saved variables): when only the graph holds the intermediates, what is left after
 * backward is the leaf and its gradient. */
static void test_backward_frees_activations(void **state)
{
    (void)state;
    const size_t block = (size_t)1 << 18; /* 65536 floats */
    dc_pool_mark outer = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 3);
    dc_tensor *w = dc_randn(DC_SHAPE(1 << 16), &rng);
    dc_set_requires_grad(w, true);
    size_t base = dc_mem_allocated();
    dc_tensor *loss;
    {
        dc_pool_mark inner = dc_pool_push();
        dc_tensor *h = w;
        for (int i = 0; i < 8; i++) h = dc_tanh(dc_mul_scalar(h, 0.9f));
        loss = dc_tensor_retain(TL_CHECK(dc_sum_all(h)));
        dc_pool_pop(inner);
    }
    /* the graph holds all 16 intermediates */
    assert_true(dc_mem_allocated() >= base + 16 * block);
    TL_OK(dc_backward(loss, NULL, false));
    assert_non_null(w->grad);
    assert_true(dc_mem_allocated() <= base + block + 4096);
    /* the freed graph still refuses a second pass */
    assert_int_equal(dc_backward(loss, NULL, false), DC_ERR_STATE);
    dc_clear_error();
    dc_tensor_release(loss);
    dc_pool_pop(outer);
}

static void test_deep_graph(void **state)
{
    (void)state;
    /* 20000 chained ops: backward must not recurse */
    dc_pool_mark m = dc_pool_push();
    dc_tensor *w = dc_full(DC_F32, DC_SHAPE(1), 1.0);
    dc_set_requires_grad(w, true);
    dc_tensor *y = w;
    for (int i = 0; i < 20000; i++) y = dc_mul_scalar(y, 1.0f);
    TL_OK(dc_backward(dc_sum_all(y), NULL, false));
    assert_float_equal(dc_data_f32(w->grad)[0], 1.0, 0);
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_release),
        cmocka_unit_test(test_pool_owns_results),
        cmocka_unit_test(test_errors_are_reported),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_rng_matches_torch),
        cmocka_unit_test(test_view_geometry),
        cmocka_unit_test(test_view_gradients),
        cmocka_unit_test(test_matmul_fixtures),
        cmocka_unit_test(test_linear_fixtures),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_autograd_semantics),
        cmocka_unit_test(test_backward_frees_activations),
        cmocka_unit_test(test_deep_graph),
    };
    return TL_RUN(tests);
}
