/* test_ops_reduce.c: sum / mean / var / max / min / argmax / max_all / softmax / log_softmax
 * / logsumexp and dc__reduce_to_shape, against PyTorch fixtures (tools/fixtures_elementwise.py
 * -> tests/fixtures/ops/reduce/), with finite-difference gradient checks, accuracy on long
 * rows, thread-count independence, and the error cases. */
#include <math.h>
#include <omp.h>

#include "support/testlib.h"
#include "core/internal.h"

typedef struct rctx {
    dc_tensor *indices;
} rctx;

#define CTX ((rctx *)ctx)
#define OP(fname, expr)                                          \
    static dc_tensor *fname(dc_tensor **in, void *ctx)           \
    {                                                            \
        (void)in;                                                \
        (void)ctx;                                               \
        return (expr);                                           \
    }

OP(f_sum_dim1, dc_sum(in[0], 1, (int[]){1}, false))
OP(f_sum_dims02_keep, dc_sum(in[0], 2, (int[]){0, 2}, true))
OP(f_sum_all, dc_sum_all(in[0]))
OP(f_sum_last_neg, dc_sum(in[0], 1, (int[]){-1}, false))
OP(f_sum_transposed, dc_sum(dc_transpose(in[0], 0, 1), 1, (int[]){1}, false))
OP(f_sum_columns, dc_sum(in[0], 1, (int[]){0}, false))
OP(f_sum_nchw_bias, dc_sum(in[0], 3, (int[]){0, 2, 3}, false))
OP(f_sum_0dim, dc_sum(in[0], 0, NULL, false))
OP(f_mean_dim0, dc_mean(in[0], 1, (int[]){0}, false))
OP(f_mean_dims12_keep, dc_mean(in[0], 2, (int[]){1, 2}, true))
OP(f_mean_all, dc_mean_all(in[0]))
OP(f_mean_narrow, dc_mean(dc_narrow(in[0], 1, 2, 3), 1, (int[]){1}, false))
OP(f_var_dim1, dc_var(in[0], 1, (int[]){1}, true, false))
OP(f_var_all_biased, dc_var(in[0], 0, NULL, false, false))
OP(f_var_dims02_keep, dc_var(in[0], 2, (int[]){0, 2}, true, true))
OP(f_var_columns, dc_var(in[0], 1, (int[]){0}, true, false))
OP(f_max_dim1, dc_max(in[0], 1, false, &CTX->indices))
OP(f_max_dim2_keep, dc_max(in[0], 2, true, &CTX->indices))
OP(f_min_dim0, dc_min(in[0], 0, false, &CTX->indices))
OP(f_max_all, dc_max_all(in[0]))
OP(f_argmax_dim1, dc_argmax(in[0], 1, false))
OP(f_argmax_dim0_keep, dc_argmax(in[0], 0, true))
OP(f_softmax_last, dc_softmax(in[0], -1))
OP(f_softmax_dim1, dc_softmax(in[0], 1))
OP(f_softmax_dim0, dc_softmax(in[0], 0))
OP(f_softmax_large, dc_softmax(dc_mul_scalar(in[0], 100.0f), -1))
OP(f_softmax_transposed, dc_softmax(dc_transpose(in[0], 0, 1), -1))
OP(f_log_softmax_last, dc_log_softmax(in[0], -1))
OP(f_log_softmax_dim1, dc_log_softmax(in[0], 1))
OP(f_log_softmax_large, dc_log_softmax(dc_mul_scalar(in[0], 100.0f), -1))
OP(f_lse_dim1, dc_logsumexp(in[0], 1, false))
OP(f_lse_last_keep, dc_logsumexp(in[0], -1, true))

enum { NO_GC = 0, GC = 1 };
typedef struct rcase {
    const char *name;
    tl_fn f;
    int gradcheck;
} rcase;

static const rcase cases[] = {
    {"sum_dim1", f_sum_dim1, GC},
    {"sum_dims02_keepdim", f_sum_dims02_keep, GC},
    {"sum_all", f_sum_all, GC},
    {"sum_last_neg", f_sum_last_neg, GC},
    {"sum_transposed", f_sum_transposed, GC},
    {"sum_columns", f_sum_columns, GC},
    {"sum_nchw_bias", f_sum_nchw_bias, GC},
    {"sum_0dim", f_sum_0dim, GC},
    {"sum_size1", f_sum_dim1, GC},
    {"mean_dim0", f_mean_dim0, GC},
    {"mean_dims12_keepdim", f_mean_dims12_keep, GC},
    {"mean_all", f_mean_all, GC},
    {"mean_narrow", f_mean_narrow, GC},
    {"var_dim1", f_var_dim1, GC},
    {"var_all_biased", f_var_all_biased, GC},
    {"var_dims02_keepdim", f_var_dims02_keep, GC},
    {"var_columns", f_var_columns, GC},
    {"max_dim1_ties", f_max_dim1, NO_GC}, /* ties: not differentiable */
    {"max_dim2_keepdim", f_max_dim2_keep, GC},
    {"min_dim0_ties", f_min_dim0, NO_GC},
    {"max_all_ties", f_max_all, NO_GC},
    {"argmax_dim1", f_argmax_dim1, NO_GC},
    {"argmax_dim0_keepdim", f_argmax_dim0_keep, NO_GC},
    {"softmax_last", f_softmax_last, GC},
    {"softmax_dim1", f_softmax_dim1, GC},
    {"softmax_dim0", f_softmax_dim0, GC},
    {"softmax_large", f_softmax_large, NO_GC}, /* x100: finite differences are too coarse */
    {"softmax_transposed", f_softmax_transposed, GC},
    {"log_softmax_last", f_log_softmax_last, GC},
    {"log_softmax_dim1", f_log_softmax_dim1, GC},
    {"log_softmax_large", f_log_softmax_large, NO_GC},
    {"logsumexp_dim1", f_lse_dim1, GC},
    {"logsumexp_last_keepdim", f_lse_last_keep, GC},
};

static double worst_fwd, worst_bwd;

static void run_case(const rcase *c)
{
    dc_pool_mark m = dc_pool_push();
    char path[160];
    snprintf(path, sizeof path, "ops/reduce/%s.safetensors", c->name);
    dc_safetensors *st = tl_fixture(path);
    bool has_grad = dc_safetensors_has(st, "gout");
    dc_tensor *in[1] = {tl_get(st, "in0")};
    if (has_grad) TL_OK(dc_set_requires_grad(in[0], true));
    rctx ctx = {0};
    dc_tensor *out = c->f(in, &ctx);
    if (!out) fail_msg("%s: %s", c->name, dc_last_error());
    dc_tensor *expected = tl_get(st, "out");
    dc_tensor *outf = out->dtype == DC_F32 ? out : TL_CHECK(dc_to_dtype(out, DC_F32));
    tl_assert_close(outf, expected, TL_RTOL, c->name);
    if (worst_fwd < tl_max_rel_error(outf, expected)) worst_fwd = tl_max_rel_error(outf, expected);
    if (dc_safetensors_has(st, "indices")) {
        assert_non_null(ctx.indices);
        assert_int_equal(ctx.indices->dtype, DC_I64);
        /* first index among ties, exactly as PyTorch CPU */
        tl_assert_close(TL_CHECK(dc_to_dtype(ctx.indices, DC_F32)), tl_get(st, "indices"), 0, c->name);
    }
    if (has_grad) {
        TL_OK(dc_backward(out, tl_get(st, "gout"), false));
        dc_tensor *e = tl_get(st, "grad.in0");
        char what[96];
        snprintf(what, sizeof what, "%s grad.in0", c->name);
        assert_non_null(in[0]->grad);
        tl_assert_close(in[0]->grad, e, TL_RTOL, what);
        if (worst_bwd < tl_max_rel_error(in[0]->grad, e)) worst_bwd = tl_max_rel_error(in[0]->grad, e);
        dc_zero_grad(in[0]);
        if (c->gradcheck) tl_gradcheck(c->name, c->f, 1, in, &ctx, 1e-3, 1e-3, 1e-2);
    } else {
        assert_false(dc_needs_grad(out));
    }
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    printf("reduce fixtures: %zu cases, max relative error forward %.3g, backward %.3g\n",
           sizeof cases / sizeof *cases, worst_fwd, worst_bwd);
}

/* ---- accuracy on long rows: sums of 2^20 values of mixed sign against a double loop -------- */

static void test_long_rows(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 3);
    const int64_t n = 1 << 20;
    dc_tensor *x = dc_randn(DC_SHAPE(2, n), &rng);
    TL_OK(dc_scale_(x, 10.0f));
    dc_tensor *shifted = TL_CHECK(dc_add_scalar(x, 1000.0f)); /* large mean: var needs 2 passes */
    const float *p = dc_data_f32(shifted);
    double worst = 0;
    for (int r = 0; r < 2; r++) {
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++) s += p[r * n + i];
        double mean = s / (double)n;
        for (int64_t i = 0; i < n; i++) s2 += (p[r * n + i] - mean) * (p[r * n + i] - mean);
        double var = s2 / (double)(n - 1);
        float got_sum = dc_data_f32(TL_CHECK(dc_sum(shifted, 1, (int[]){1}, false)))[r];
        float got_mean = dc_data_f32(TL_CHECK(dc_mean(shifted, 1, (int[]){1}, false)))[r];
        float got_var = dc_data_f32(TL_CHECK(dc_var(shifted, 1, (int[]){1}, true, false)))[r];
        worst = fmax(worst, fabs(got_sum - s) / fabs(s));
        worst = fmax(worst, fabs(got_mean - mean) / fabs(mean));
        worst = fmax(worst, fabs(got_var - var) / var);
        /* the column layout over the same data: sum over dim 0 of the transpose */
        dc_tensor *t = TL_CHECK(dc_transpose(shifted, 0, 1)); /* [n, 2], strided */
        float got_col = dc_data_f32(TL_CHECK(dc_sum(t, 1, (int[]){0}, false)))[r];
        worst = fmax(worst, fabs(got_col - s) / fabs(s));
    }
    /* all elements: the blocked path */
    double total = 0;
    for (int64_t i = 0; i < 2 * n; i++) total += p[i];
    worst = fmax(worst, fabs(dc_item(dc_sum_all(shifted)) - total) / fabs(total));
    printf("long rows (2^20): max relative error %.3g\n", worst);
    assert_true(worst < 1e-6);
    dc_pool_pop(m);
}

/* ---- results do not depend on the thread count ------------------------------------------ */

static void test_thread_independence(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 11);
    dc_tensor *x = dc_randn(DC_SHAPE(3, 300000), &rng);
    int prev = dc_get_num_threads();
    float a[3], b[3];
    float sa, sb;
    dc_set_num_threads(1);
    dc_copy_to_f32(TL_CHECK(dc_sum(x, 1, (int[]){1}, false)), a, 3);
    sa = (float)dc_item(dc_sum_all(x));
    dc_set_num_threads(2);
    dc_copy_to_f32(TL_CHECK(dc_sum(x, 1, (int[]){1}, false)), b, 3);
    sb = (float)dc_item(dc_sum_all(x));
    dc_set_num_threads(prev);
    assert_memory_equal(a, b, sizeof a);
    assert_true(sa == sb);
    dc_pool_pop(m);
}

/* ---- dc__reduce_to_shape ---------------------------------------------------------------- */

static void test_reduce_to_shape(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *g = dc_arange(DC_F32, 0, 60, 1);
    g = TL_CHECK(dc_view(g, DC_SHAPE(3, 4, 5)));
    /* [3, 4, 5] -> [4, 1]: sum over dims 0 and 2 */
    dc_tensor *r = TL_CHECK(dc__reduce_to_shape(g, 2, (int64_t[]){4, 1}));
    assert_int_equal(r->ndim, 2);
    const float *p = dc_data_f32(r);
    for (int j = 0; j < 4; j++) {
        double s = 0;
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 5; k++) s += i * 20 + j * 5 + k;
        assert_float_equal(p[j], s, 1e-3);
    }
    /* no reduction needed: the gradient itself */
    assert_ptr_equal(dc__reduce_to_shape(g, 3, g->shape), g);
    /* a 0-dim target */
    assert_float_equal(dc_item(TL_CHECK(dc__reduce_to_shape(g, 0, NULL))), 59 * 60 / 2, 1e-3);
    /* not a broadcast of the target */
    assert_null(dc__reduce_to_shape(g, 2, (int64_t[]){3, 5}));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- NaN propagation and edge cases ----------------------------------------------------- */

static void test_nan_and_edges(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    float d[6] = {1, NAN, 3, 7, 7, 2};
    dc_tensor *x = dc_from_data(DC_F32, DC_SHAPE(2, 3), d);
    dc_tensor *idx = NULL;
    dc_tensor *mx = TL_CHECK(dc_max(x, 1, false, &idx));
    assert_true(isnan(dc_data_f32(mx)[0]));
    assert_int_equal(((int64_t *)dc_data(idx))[0], 1);
    assert_float_equal(dc_data_f32(mx)[1], 7, 0);
    assert_int_equal(((int64_t *)dc_data(idx))[1], 0); /* first of the tie */
    assert_true(isnan(dc_item(dc_max_all(x))));
    /* sum over an empty dim is 0, mean NaN, max an error */
    dc_tensor *e = dc_zeros(DC_F32, DC_SHAPE(3, 0));
    dc_tensor *s = TL_CHECK(dc_sum(e, 1, (int[]){1}, false));
    assert_int_equal(dc_numel(s), 3);
    assert_float_equal(dc_data_f32(s)[2], 0, 0);
    assert_true(isnan(dc_data_f32(TL_CHECK(dc_mean(e, 1, (int[]){1}, false)))[0]));
    assert_null(dc_max(e, 1, false, NULL));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_null(dc_max_all(e));
    /* 0-dim inputs */
    dc_tensor *z = dc_scalar(2.5f);
    assert_float_equal(dc_item(TL_CHECK(dc_softmax(z, 0))), 1.0, 0);
    assert_float_equal(dc_item(TL_CHECK(dc_max(z, 0, false, NULL))), 2.5, 0);
    assert_int_equal(dc_item(TL_CHECK(dc_argmax(z, -1, false))), 0);
    dc_clear_error();
    dc_pool_pop(m);
}

static void test_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = dc_zeros(DC_F32, DC_SHAPE(2, 3));
    assert_null(dc_sum(x, 1, (int[]){2}, false));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "sum"));
    assert_null(dc_sum(x, 2, (int[]){1, -1}, false));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_softmax(x, -3));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_var(dc_zeros(DC_I64, DC_SHAPE(2)), 0, NULL, true, false));
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    /* NULL propagates without overwriting the first error */
    dc_set_error(DC_ERR_IO, "first");
    assert_null(dc_mean_all(dc_softmax(NULL, 0)));
    assert_null(dc_max(NULL, 0, false, NULL));
    assert_null(dc_logsumexp(NULL, 0, false));
    assert_string_equal(dc_last_error(), "first");
    dc_clear_error();
    dc_pool_pop(m);
}

/* a composite: gradients of reductions flow into other ops (and through broadcasting) */
static dc_tensor *f_chain(dc_tensor **in, void *ctx)
{
    (void)ctx;
    dc_tensor *x = in[0];
    dc_tensor *centred = dc_sub(x, dc_mean(x, 1, (int[]){1}, true));
    dc_tensor *y = dc_mul(dc_softmax(x, 1), centred);
    return dc_add(dc_sum(dc_mul(y, y), 1, (int[]){0}, false), dc_logsumexp(x, 0, false));
}

static void test_chain(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 5);
    dc_tensor *x = dc_randn(DC_SHAPE(4, 6), &rng);
    TL_OK(dc_set_requires_grad(x, true));
    tl_gradcheck("reduction chain", f_chain, 1, &x, NULL, 1e-3, 1e-3, 1e-2);
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_thread_independence),
        cmocka_unit_test(test_reduce_to_shape),
        cmocka_unit_test(test_nan_and_edges),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_chain),
    };
    return TL_RUN(tests);
}
