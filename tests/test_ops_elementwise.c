/* test_ops_elementwise.c: elementwise arithmetic, activations, comparisons, where /
 * masked_fill, gather and the in-place helpers, against PyTorch fixtures
 * (tools/fixtures_elementwise.py -> tests/fixtures/ops/elementwise/), with finite-difference
 * gradient checks of every differentiable op and the error cases. */
#include <math.h>

#include "support/testlib.h"
#include "core/internal.h"

/* ---- the case table ---------------------------------------------------------------------
 * Each case names a fixture and the deepc expression computing it from the fixture inputs
 * in0.. (plus cond / index through the context). */

typedef struct cctx {
    dc_tensor *cond, *index;
} cctx;

#define CTX ((cctx *)ctx)
#define OP(fname, expr)                                          \
    static dc_tensor *fname(dc_tensor **in, void *ctx)           \
    {                                                            \
        (void)in;                                                \
        (void)ctx;                                               \
        return (expr);                                           \
    }

OP(f_add, dc_add(in[0], in[1]))
OP(f_add_scaled, dc_add_scaled(in[0], in[1], -2.5f))
OP(f_sub, dc_sub(in[0], in[1]))
OP(f_mul, dc_mul(in[0], in[1]))
OP(f_mul_transposed, dc_mul(dc_transpose(in[0], 0, 1), in[1]))
OP(f_mul_narrow, dc_mul(dc_narrow(in[0], 1, 1, 3), in[1]))
OP(f_div, dc_div(in[0], in[1]))
OP(f_pow, dc_pow(in[0], in[1]))
OP(f_maximum, dc_maximum(in[0], in[1]))
OP(f_minimum, dc_minimum(in[0], in[1]))
OP(f_add_scalar, dc_add_scalar(in[0], 1.5f))
OP(f_mul_scalar, dc_mul_scalar(in[0], -0.7f))
OP(f_neg, dc_neg(in[0]))
OP(f_exp, dc_exp(in[0]))
OP(f_log, dc_log(in[0]))
OP(f_sqrt, dc_sqrt(in[0]))
OP(f_rsqrt, dc_rsqrt(in[0]))
OP(f_abs, dc_abs(in[0]))
OP(f_sin, dc_sin(in[0]))
OP(f_cos, dc_cos(in[0]))
OP(f_pow2, dc_pow_scalar(in[0], 2.0f))
OP(f_pow3, dc_pow_scalar(in[0], 3.0f))
OP(f_pow05, dc_pow_scalar(in[0], 0.5f))
OP(f_powm15, dc_pow_scalar(in[0], -1.5f))
OP(f_pow0, dc_pow_scalar(in[0], 0.0f))
OP(f_clamp, dc_clamp(in[0], -0.5f, 0.7f))
OP(f_clamp_max, dc_clamp(in[0], -INFINITY, 0.3f))
OP(f_exp_transposed, dc_exp(dc_transpose(in[0], 0, 1)))
OP(f_relu, dc_relu(in[0]))
/* relu_ on a fresh intermediate (x * 1 is exactly x): the in-place path */
OP(f_relu_inplace, dc_relu_(dc_mul_scalar(in[0], 1.0f)))
OP(f_relu_transposed, dc_relu(dc_transpose(in[0], 0, 1)))
OP(f_leaky_relu, dc_leaky_relu(in[0], 0.1f))
OP(f_gelu, dc_gelu(in[0], DC_GELU_NONE))
OP(f_gelu_tanh, dc_gelu(in[0], DC_GELU_TANH))
OP(f_quick_gelu, dc_quick_gelu(in[0]))
OP(f_silu, dc_silu(in[0]))
OP(f_tanh, dc_tanh(in[0]))
OP(f_sigmoid, dc_sigmoid(in[0]))
OP(f_eq, dc_eq(in[0], in[1]))
OP(f_gt, dc_gt_scalar(in[0], 0.25f))
OP(f_lt, dc_lt_scalar(in[0], -0.25f))
OP(f_where, dc_where(CTX->cond, in[0], in[1]))
OP(f_masked_fill, dc_masked_fill(in[0], CTX->cond, 2.5f))
OP(f_masked_fill_big, dc_masked_fill(in[0], CTX->cond, -1e9f))
OP(f_gather1, dc_gather(in[0], 1, CTX->index))
OP(f_gather0, dc_gather(in[0], 0, CTX->index))
OP(f_gather_last, dc_gather(in[0], -1, CTX->index))

enum { GC = 1, NO_GC = 0 };
typedef struct ecase {
    const char *name;
    int nin;
    tl_fn f;
    int gradcheck;
} ecase;

static const ecase cases[] = {
    {"add_same", 2, f_add, GC},
    {"add_bcast", 2, f_add, GC},
    {"add_bcast_rev", 2, f_add, GC},
    {"add_0dim", 2, f_add, GC},
    {"add_0dim_both", 2, f_add, GC},
    {"add_size1", 2, f_add, GC},
    {"add_row", 2, f_add, GC},
    {"add_scaled", 2, f_add_scaled, GC},
    {"sub_bcast", 2, f_sub, GC},
    {"mul_bcast", 2, f_mul, GC},
    {"mul_transposed", 2, f_mul_transposed, GC},
    {"mul_narrow", 2, f_mul_narrow, GC},
    {"div_bcast", 2, f_div, GC},
    {"div_0dim", 2, f_div, GC},
    {"pow_bcast", 2, f_pow, NO_GC}, /* 0^e has a one-sided derivative at the zero */
    {"maximum_ties", 2, f_maximum, NO_GC},
    {"minimum_ties", 2, f_minimum, NO_GC},
    {"add_scalar", 1, f_add_scalar, GC},
    {"mul_scalar", 1, f_mul_scalar, GC},
    {"neg", 1, f_neg, GC},
    {"exp", 1, f_exp, GC},
    {"log", 1, f_log, GC},
    {"sqrt", 1, f_sqrt, GC},
    {"rsqrt", 1, f_rsqrt, GC},
    {"abs", 1, f_abs, GC},
    {"sin", 1, f_sin, GC},
    {"cos", 1, f_cos, GC},
    {"pow_scalar_2", 1, f_pow2, GC},
    {"pow_scalar_3", 1, f_pow3, GC},
    {"pow_scalar_0.5", 1, f_pow05, GC},
    {"pow_scalar_-1.5", 1, f_powm15, GC},
    {"pow_scalar_0", 1, f_pow0, GC},
    {"clamp", 1, f_clamp, GC},
    {"clamp_max", 1, f_clamp_max, GC},
    {"exp_transposed", 1, f_exp_transposed, GC},
    {"relu", 1, f_relu, GC},
    {"relu", 1, f_relu_inplace, GC},
    {"relu_transposed", 1, f_relu_transposed, GC},
    {"leaky_relu", 1, f_leaky_relu, GC},
    {"gelu", 1, f_gelu, GC},
    {"gelu_tanh", 1, f_gelu_tanh, GC},
    {"quick_gelu", 1, f_quick_gelu, GC},
    {"silu", 1, f_silu, GC},
    {"tanh", 1, f_tanh, GC},
    {"sigmoid", 1, f_sigmoid, GC},
    {"gelu_0dim", 1, f_gelu, GC},
    {"eq", 2, f_eq, NO_GC},
    {"gt_scalar", 1, f_gt, NO_GC},
    {"lt_scalar", 1, f_lt, NO_GC},
    {"where_bcast", 2, f_where, GC},
    {"where_same", 2, f_where, GC},
    {"masked_fill", 1, f_masked_fill, GC},
    {"masked_fill_same", 1, f_masked_fill_big, GC},
    {"gather_dim1", 1, f_gather1, GC},
    {"gather_dim0", 1, f_gather0, GC},
    {"gather_3d_last", 1, f_gather_last, GC},
};

static double worst_fwd, worst_bwd;

static void note(double *worst, double e)
{
    if (e > *worst) *worst = e;
}

static void run_case(const ecase *c)
{
    dc_pool_mark m = dc_pool_push();
    char path[160];
    snprintf(path, sizeof path, "ops/elementwise/%s.safetensors", c->name);
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *in[4] = {0};
    cctx ctx = {0};
    bool has_grad = dc_safetensors_has(st, "gout");
    for (int i = 0; i < c->nin; i++) {
        char n[16];
        snprintf(n, sizeof n, "in%d", i);
        in[i] = tl_get(st, n);
        if (has_grad) TL_OK(dc_set_requires_grad(in[i], true));
    }
    if (dc_safetensors_has(st, "cond")) ctx.cond = TL_CHECK(dc_to_dtype(tl_get(st, "cond"), DC_BOOL));
    if (dc_safetensors_has(st, "index")) ctx.index = tl_get_i64(st, "index");

    dc_tensor *out = c->f(in, &ctx);
    if (!out) fail_msg("%s: %s", c->name, dc_last_error());
    dc_tensor *expected = tl_get(st, "out");
    dc_tensor *outf = out->dtype == DC_F32 ? out : TL_CHECK(dc_to_dtype(out, DC_F32));
    tl_assert_close(outf, expected, TL_RTOL, c->name);
    note(&worst_fwd, tl_max_rel_error(outf, expected));
    if (out->dtype != DC_F32) assert_false(dc_needs_grad(out)); /* masks record no grad */

    if (has_grad) {
        TL_OK(dc_backward(out, tl_get(st, "gout"), false));
        for (int i = 0; i < c->nin; i++) {
            char n[24], what[96];
            snprintf(n, sizeof n, "grad.in%d", i);
            snprintf(what, sizeof what, "%s %s", c->name, n);
            dc_tensor *e = tl_get(st, n);
            if (!in[i]->grad) {
                /* no gradient reached the input: PyTorch's must be zero too */
                dc_tensor *z = dc_zeros_like(e);
                tl_assert_close(z, e, TL_RTOL, what);
                continue;
            }
            tl_assert_close(in[i]->grad, e, TL_RTOL, what);
            note(&worst_bwd, tl_max_rel_error(in[i]->grad, e));
            dc_zero_grad(in[i]);
        }
        if (c->gradcheck) tl_gradcheck(c->name, c->f, c->nin, in, &ctx, 1e-3, 1e-3, 1e-2);
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    printf("elementwise fixtures: %zu cases, max relative error forward %.3g, backward %.3g\n",
           sizeof cases / sizeof *cases, worst_fwd, worst_bwd);
}

/* ---- large tensors: the parallel and chunked paths against a plain loop ------------------- */

static void test_large_broadcast(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 7);
    /* [300, 1, 517] * [400, 1] -> [300, 400, 517]: rows of 517 with a broadcast scalar */
    dc_tensor *a = dc_randn(DC_SHAPE(300, 1, 517), &rng);
    dc_tensor *b = dc_randn(DC_SHAPE(400, 1), &rng);
    dc_tensor *c = TL_CHECK(dc_mul(a, b));
    const float *pa = dc_data_f32(a), *pb = dc_data_f32(b), *pc = dc_data_f32(c);
    for (int64_t i = 0; i < 300; i++)
        for (int64_t j = 0; j < 400; j++)
            for (int64_t k = 0; k < 517; k += 37)
                assert_true(pc[(i * 400 + j) * 517 + k] == pa[i * 517 + k] * pb[j]);
    /* a long contiguous unary op spread over chunks */
    dc_tensor *t = TL_CHECK(dc_tanh(c));
    const float *pt = dc_data_f32(t);
    for (int64_t i = 0; i < dc_numel(c); i += 1013) assert_true(fabsf(pt[i] - tanhf(pc[i])) <= 1e-6f);
    dc_pool_pop(m);
}

/* ---- in-place helpers --------------------------------------------------------------------- */

static void test_inplace(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float d[6] = {1, 2, 3, 4, 5, 6}, r[3] = {10, 20, 30};
    dc_tensor *x = dc_from_data(DC_F32, DC_SHAPE(2, 3), d);
    dc_tensor *row = dc_from_data(DC_F32, DC_SHAPE(3), r);
    TL_OK(dc_add_inplace_(x, row));
    TL_OK(dc_axpy_(x, -0.5f, row));
    TL_OK(dc_scale_(x, 2.0f));
    const float *p = dc_data_f32(x);
    for (int i = 0; i < 6; i++) assert_float_equal(p[i], 2.0f * (d[i] + 0.5f * r[i % 3]), 1e-6);
    /* into a transposed view: the strided destination is honoured */
    dc_tensor *xt = TL_CHECK(dc_transpose(x, 0, 1)); /* [3, 2] */
    dc_tensor *col = dc_from_data(DC_F32, DC_SHAPE(3, 1), r);
    TL_OK(dc_add_inplace_(xt, col));
    for (int i = 0; i < 6; i++)
        assert_float_equal(p[i], 2.0f * (d[i] + 0.5f * r[i % 3]) + r[i % 3], 1e-5);
    /* src must broadcast to dst, not the other way */
    dc_tensor *big = dc_zeros(DC_F32, DC_SHAPE(4, 2, 3));
    assert_int_equal(dc_add_inplace_(x, big), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[4, 2, 3]"));
    assert_non_null(strstr(dc_last_error(), "[2, 3]"));
    assert_int_not_equal(dc_axpy_(NULL, 1.0f, x), DC_OK);
    dc_tensor *ix = dc_zeros(DC_I64, DC_SHAPE(2, 3));
    assert_int_equal(dc_scale_(ix, 2.0f), DC_ERR_DTYPE);
    dc_clear_error();
    dc_pool_pop(m);
}

/* autograd accumulation goes through dc_add_inplace_: a tensor used twice sums both paths */
static void test_accumulation(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float d[3] = {1, 2, 3};
    dc_tensor *x = dc_from_data(DC_F32, DC_SHAPE(3), d);
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *y = dc_add(dc_mul(x, x), dc_mul_scalar(x, 3.0f)); /* x^2 + 3x */
    TL_OK(dc_backward(dc_sum_all(y), NULL, false));
    TL_OK(dc_backward(dc_sum_all(dc_exp(x)), NULL, false)); /* grads accumulate across calls */
    const float *g = dc_data_f32(x->grad);
    for (int i = 0; i < 3; i++) assert_float_equal(g[i], 2 * d[i] + 3 + expf(d[i]), 1e-4);
    dc_pool_pop(m);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *a = dc_zeros(DC_F32, DC_SHAPE(3, 1, 5));
    dc_tensor *b = dc_zeros(DC_F32, DC_SHAPE(4, 3));
    assert_null(dc_add(a, b));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "add"));
    assert_non_null(strstr(dc_last_error(), "[3, 1, 5]"));
    assert_non_null(strstr(dc_last_error(), "[4, 3]"));
    /* a NULL input propagates and keeps the first error */
    assert_null(dc_relu(dc_mul(dc_add(a, b), a)));
    assert_non_null(strstr(dc_last_error(), "add"));
    assert_null(dc_where(NULL, a, a));
    assert_null(dc_gather(NULL, 0, NULL));
    dc_clear_error();
    /* dtypes */
    dc_tensor *i64 = dc_zeros(DC_I64, DC_SHAPE(3, 1, 5));
    assert_null(dc_exp(i64));
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    assert_null(dc_where(a, a, a)); /* cond must be a mask */
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    /* masked_fill: the mask must broadcast to x's own shape */
    dc_tensor *mask = dc_zeros(DC_BOOL, DC_SHAPE(2, 3, 1, 5));
    assert_null(dc_masked_fill(a, mask, 0));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    /* gather: out of range index, rank mismatch */
    int64_t bad[2] = {0, 5};
    dc_tensor *x = dc_zeros(DC_F32, DC_SHAPE(2, 5));
    assert_null(dc_gather(x, 1, dc_from_data(DC_I64, DC_SHAPE(2, 1), bad)));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "5"));
    assert_null(dc_gather(x, 1, dc_from_data(DC_I64, DC_SHAPE(2), bad)));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_null(dc_gather(x, 2, dc_from_data(DC_I64, DC_SHAPE(2, 1), bad)));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_gelu(x, (dc_gelu_approx)7));
    dc_clear_error();
    dc_pool_pop(m);
}

/* results that are never backpropagated must not leak (no reference cycle through saved
 * outputs), with and without a pool */
static void test_no_cycle_leak(void **state)
{
    (void)state;
    int64_t live = dc_live_tensors();
    dc_tensor *x = dc_ones(DC_F32, DC_SHAPE(4));
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *ys[] = {dc_exp(x), dc_tanh(x), dc_sigmoid(x), dc_relu(x), dc_sqrt(x), dc_rsqrt(x),
                       dc_pow(x, x)};
    for (size_t i = 0; i < sizeof ys / sizeof *ys; i++) {
        assert_non_null(ys[i]);
        dc_tensor_release(ys[i]);
    }
    dc_tensor_release(x);
    assert_int_equal(dc_live_tensors(), live);
}

/* relu_ writes into its input's buffer only when nothing else can read that input, and
 * otherwise gives dc_relu's result without touching it */
static void test_relu_inplace(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float d[6] = {-1, 2, -3, 4, -5, 6}, g[6] = {1, 2, 3, 4, 5, 6};
    dc_tensor *x = dc_from_data(DC_F32, DC_SHAPE(2, 3), d);
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *gout = dc_from_data(DC_F32, DC_SHAPE(2, 3), g);

    /* a fresh intermediate: overwritten in place, gradient as relu's */
    dc_tensor *t = TL_CHECK(dc_mul_scalar(x, 2.0f));
    dc_tensor *y = TL_CHECK(dc_relu_(t));
    assert_ptr_equal(dc_data(y), dc_data(t));
    TL_OK(dc_backward(y, gout, false));
    const float *gx = dc_data_f32(x->grad);
    for (int i = 0; i < 6; i++) {
        assert_float_equal(dc_data_f32(y)[i], d[i] > 0 ? 2 * d[i] : 0, 0);
        assert_float_equal(gx[i], d[i] > 0 ? 2 * g[i] : 0, 0);
    }
    dc_zero_grad(x);

    /* another op holds t (and reads it in backward): out of place, t intact, grads exact */
    t = TL_CHECK(dc_mul_scalar(x, 2.0f));
    dc_tensor *sq = TL_CHECK(dc_mul(t, t));
    y = TL_CHECK(dc_relu_(t));
    assert_ptr_not_equal(dc_data(y), dc_data(t));
    for (int i = 0; i < 6; i++) assert_float_equal(dc_data_f32(t)[i], 2 * d[i], 0);
    TL_OK(dc_backward(dc_sum_all(dc_add(sq, y)), NULL, false));
    gx = dc_data_f32(x->grad);
    for (int i = 0; i < 6; i++) assert_float_equal(gx[i], 8 * d[i] + (d[i] > 0 ? 2 : 0), 1e-6);
    dc_zero_grad(x);

    /* a view of t exists: out of place */
    t = TL_CHECK(dc_mul_scalar(x, 2.0f));
    dc_tensor *tv = TL_CHECK(dc_transpose(t, 0, 1));
    y = TL_CHECK(dc_relu_(t));
    assert_ptr_not_equal(dc_data(y), dc_data(t));
    assert_float_equal(dc_data_f32(tv)[0], -2, 0);

    /* t's producer saved its output (exp): out of place, exp's backward still exact */
    t = TL_CHECK(dc_exp(x));
    y = TL_CHECK(dc_relu_(t));
    assert_ptr_not_equal(dc_data(y), dc_data(t));
    TL_OK(dc_backward(dc_sum_all(y), NULL, false));
    for (int i = 0; i < 6; i++) assert_float_equal(dc_data_f32(x->grad)[i], expf(d[i]), 1e-6);
    dc_zero_grad(x);

    /* a leaf that requires grad: an error, as in PyTorch */
    assert_null(dc_relu_(x));
    assert_int_equal(dc_last_status(), DC_ERR_STATE);
    assert_non_null(strstr(dc_last_error(), "relu_"));
    dc_clear_error();

    /* no grad mode: in place, nothing recorded */
    bool prev = dc_set_grad_enabled(false);
    t = TL_CHECK(dc_mul_scalar(x, 1.0f));
    y = TL_CHECK(dc_relu_(t));
    dc_set_grad_enabled(prev);
    assert_ptr_equal(dc_data(y), dc_data(t));
    assert_false(dc_needs_grad(y));
    dc_pool_pop(m);
}

/* add_ then relu_ (ResNet's out += identity; relu) reuse one buffer, with dc_add's and
 * dc_relu's gradients; a broadcast that would grow a, or a view of a, falls back */
static void test_add_inplace(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float d[6] = {-1, 2, -3, 4, -5, 6}, e[3] = {0.5f, -3, 1};
    dc_tensor *x = dc_from_data(DC_F32, DC_SHAPE(2, 3), d), *b = dc_from_data(DC_F32, DC_SHAPE(3), e);
    TL_OK(dc_set_requires_grad(x, true));
    TL_OK(dc_set_requires_grad(b, true));
    dc_tensor *t = TL_CHECK(dc_mul_scalar(x, 2.0f));
    dc_tensor *s = TL_CHECK(dc_add_(t, b));
    dc_tensor *y = TL_CHECK(dc_relu_(s));
    assert_ptr_equal(dc_data(s), dc_data(t));
    assert_ptr_equal(dc_data(y), dc_data(t));
    float want[6];
    for (int i = 0; i < 6; i++) {
        want[i] = fmaxf(2 * d[i] + e[i % 3], 0);
        assert_float_equal(dc_data_f32(y)[i], want[i], 0);
    }
    TL_OK(dc_backward(dc_sum_all(y), NULL, false));
    for (int i = 0; i < 6; i++) assert_float_equal(dc_data_f32(x->grad)[i], want[i] > 0 ? 2 : 0, 0);
    for (int j = 0; j < 3; j++)
        assert_float_equal(dc_data_f32(b->grad)[j], (want[j] > 0) + (want[j + 3] > 0), 0);
    dc_zero_grad(x);
    dc_zero_grad(b);

    /* a [3] += b [2, 3] would grow a: out of place, like dc_add */
    dc_tensor *small = TL_CHECK(dc_mul_scalar(b, 1.0f));
    dc_tensor *grown = TL_CHECK(dc_add_(small, x));
    assert_int_equal(grown->ndim, 2);
    assert_ptr_not_equal(dc_data(grown), dc_data(small));
    /* a view of a exists: out of place, the view keeps its values */
    t = TL_CHECK(dc_mul_scalar(x, 2.0f));
    dc_tensor *tv = TL_CHECK(dc_transpose(t, 0, 1));
    s = TL_CHECK(dc_add_(t, b));
    assert_ptr_not_equal(dc_data(s), dc_data(t));
    assert_float_equal(dc_data_f32(tv)[0], -2, 0);
    /* a leaf that requires grad */
    assert_null(dc_add_(x, b));
    assert_int_equal(dc_last_status(), DC_ERR_STATE);
    dc_clear_error();
    dc_pool_pop(m);
}

/* grad mode off: nothing is recorded */
static void test_no_grad(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = dc_ones(DC_F32, DC_SHAPE(4));
    TL_OK(dc_set_requires_grad(x, true));
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *y = dc_gelu(dc_mul(x, x), DC_GELU_NONE);
    dc_set_grad_enabled(prev);
    assert_false(dc_needs_grad(y));
    assert_true(dc_needs_grad(dc_add(x, x)));
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_large_broadcast),
        cmocka_unit_test(test_inplace),
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_no_cycle_leak),
        cmocka_unit_test(test_no_grad),
        cmocka_unit_test(test_relu_inplace),
        cmocka_unit_test(test_add_inplace),
    };
    return TL_RUN(tests);
}
