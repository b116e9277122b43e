/* test_ops_misc.c: dropout (statistics and its exact backward), embedding, cat / stack /
 * split / chunk, and scaled dot-product attention (causal, BOOL and additive masks, S != L,
 * broadcast batch dims) against PyTorch fixtures (tools/fixtures_nn_ops.py), with
 * finite-difference gradchecks and argument errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testlib.h"

static dc_safetensors *open_case(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "ops/misc/%s", name);
    return tl_fixture(path);
}

static dc_tensor *gy_fixed;

/* ---- dropout -------------------------------------------------------------------------- */

static void test_dropout_statistics(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    const float ps[] = {0.1f, 0.5f, 0.8f};
    for (int c = 0; c < 3; c++) {
        float p = ps[c];
        const int64_t n = 200000;
        dc_tensor *x = TL_CHECK(dc_full(DC_F32, DC_SHAPE(400, 500), 2.0));
        TL_OK(dc_set_requires_grad(x, true));
        dc_rng rng;
        dc_rng_seed(&rng, 1234 + (uint64_t)c);
        dc_tensor *y = TL_CHECK(dc_dropout(x, p, true, &rng));
        const float *v = dc_data_f32(y);
        int64_t zeros = 0;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            zeros += v[i] == 0.0f;
            sum += v[i];
            if (v[i] != 0.0f) assert_float_equal(v[i], 2.0f / (1.0f - p), 1e-6);
        }
        /* binomial: the zero fraction is within 5 standard deviations of p, and the mean is
         * preserved within the matching tolerance */
        double sd = sqrt(p * (1 - p) / (double)n);
        assert_true(fabs((double)zeros / (double)n - p) < 5 * sd);
        assert_true(fabs(sum / (double)n - 2.0) < 5 * 2.0 / (1 - p) * sd);
        /* backward = mask / (1 - p) times the upstream gradient */
        dc_tensor *gy = TL_CHECK(dc_randn(DC_SHAPE(400, 500), &rng));
        TL_OK(dc_backward(y, gy, false));
        const float *g = dc_data_f32(x->grad), *gv = dc_data_f32(gy);
        for (int64_t i = 0; i < n; i++) {
            float expect = v[i] == 0.0f ? 0.0f : gv[i] / (1.0f - p);
            assert_float_equal(g[i], expect, 1e-6 * (1 + fabsf(expect)));
        }
        dc_zero_grad(x);
    }
    dc_pool_pop(m);
}

static void test_dropout_eval_and_edges(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 5);
    dc_tensor *x = TL_CHECK(dc_randn(DC_SHAPE(3, 7), &rng));
    /* eval and p = 0: the identity */
    tl_assert_close_abs(TL_CHECK(dc_dropout(x, 0.5f, false, &rng)), x, 0, "dropout eval");
    tl_assert_close_abs(TL_CHECK(dc_dropout(x, 0.0f, true, &rng)), x, 0, "dropout p=0");
    /* p = 1: all zeros, gradient zero */
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *y = TL_CHECK(dc_dropout(x, 1.0f, true, &rng));
    dc_tensor *z = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(3, 7)));
    tl_assert_close_abs(y, z, 0, "dropout p=1");
    TL_OK(dc_backward(y, TL_CHECK(dc_ones(DC_F32, DC_SHAPE(3, 7))), false));
    tl_assert_close_abs(x->grad, z, 0, "dropout p=1 grad");
    dc_zero_grad(x);
    /* the same seed gives the same mask; NULL rng uses the default generator */
    dc_rng a, b;
    dc_rng_seed(&a, 99);
    dc_rng_seed(&b, 99);
    tl_assert_close_abs(TL_CHECK(dc_dropout(x, 0.3f, true, &a)), TL_CHECK(dc_dropout(x, 0.3f, true, &b)), 0,
                        "dropout reproducible");
    TL_CHECK(dc_dropout(x, 0.3f, true, NULL));
    /* a strided input */
    dc_tensor *xt = TL_CHECK(dc_transpose(x, 0, 1));
    dc_tensor *yt = TL_CHECK(dc_dropout(xt, 0.3f, true, &rng));
    const float *yv = dc_data_f32(yt);
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 3; j++) {
            float xv = dc_data_f32(x)[j * 7 + i], o = yv[i * 3 + j];
            assert_true(o == 0.0f || fabsf(o - xv / 0.7f) < 1e-5f);
        }
    assert_null(dc_dropout(x, 1.5f, true, &rng));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- embedding ------------------------------------------------------------------------ */

static void run_embedding(const char *name, dc_dtype idx_dtype)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case(name);
    dc_tensor *w = tl_leaf(st, "weight");
    dc_tensor *idx = TL_CHECK(dc_to_dtype(tl_get_i64(st, "indices"), idx_dtype));
    dc_tensor *out = TL_CHECK(dc_embedding(w, idx));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(w, st, "grad.weight", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_embedding_i64(void **s) { (void)s; run_embedding("embedding_i64", DC_I64); }
static void test_embedding_i32(void **s) { (void)s; run_embedding("embedding_i32", DC_I32); }

static dc_tensor *f_embedding(dc_tensor **in, void *ctx)
{
    return dc_mul(dc_embedding(in[0], (dc_tensor *)ctx), gy_fixed);
}

static void test_embedding_gradcheck_and_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("embedding_i64");
    dc_tensor *in[1] = {tl_leaf(st, "weight")};
    gy_fixed = tl_get(st, "gy");
    tl_gradcheck("embedding", f_embedding, 1, in, tl_get_i64(st, "indices"), 1e-2, 1e-3, 1e-2);
    const int64_t bad[] = {1, 10};
    assert_null(dc_embedding(in[0], TL_CHECK(dc_from_data(DC_I64, DC_SHAPE(2), bad))));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "index 10"));
    assert_non_null(strstr(dc_last_error(), "[10, 4]"));
    assert_null(dc_embedding(in[0], TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2)))));
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    /* a 0-d index gives one row */
    dc_tensor *row = TL_CHECK(dc_embedding(in[0], TL_CHECK(dc_full(DC_I64, 0, NULL, 3))));
    assert_int_equal(row->ndim, 1);
    assert_int_equal(row->shape[0], 4);
    dc_clear_error();
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* ---- cat / stack ---------------------------------------------------------------------- */

static void test_cat_fixture(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("cat_dim1");
    dc_tensor *ts[3] = {tl_leaf(st, "a"), tl_leaf(st, "b"), tl_leaf(st, "c")};
    dc_tensor *out = TL_CHECK(dc_cat(3, ts, 1));
    tl_check(out, tl_get(st, "out"), "cat");
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(ts[0], st, "grad.a", "cat");
    tl_check_grad(ts[1], st, "grad.b", "cat");
    tl_check_grad(ts[2], st, "grad.c", "cat");
    /* negative dim */
    tl_check(TL_CHECK(dc_cat(3, ts, -2)), tl_get(st, "out"), "cat dim -2");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_stack_fixture(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("stack_last");
    dc_tensor *ts[3] = {tl_leaf(st, "a"), tl_leaf(st, "b"), tl_leaf(st, "c")};
    dc_tensor *out = TL_CHECK(dc_stack(3, ts, -1));
    tl_check(out, tl_get(st, "out"), "stack");
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(ts[0], st, "grad.a", "stack");
    tl_check_grad(ts[1], st, "grad.b", "stack");
    tl_check_grad(ts[2], st, "grad.c", "stack");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static dc_tensor *f_cat_many(dc_tensor **in, void *ctx)
{
    int dim = *(int *)ctx;
    return dc_mul(dc_cat(11, in, dim), gy_fixed);
}

static dc_tensor *f_stack_many(dc_tensor **in, void *ctx)
{
    int dim = *(int *)ctx;
    return dc_mul(dc_stack(11, in, dim), gy_fixed);
}

/* More inputs than an autograd node holds: built as a cat of cats, same values and grads. */
static void test_cat_stack_many_inputs(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 3);
    dc_tensor *in[11];
    for (int i = 0; i < 11; i++) {
        in[i] = TL_CHECK(dc_randn(DC_SHAPE(2, 1 + i % 3), &rng));
        TL_OK(dc_set_requires_grad(in[i], true));
    }
    int dim = 1;
    gy_fixed = TL_CHECK(dc_randn(DC_SHAPE(2, 21), &rng)); /* widths 1,2,3,1,2,3,1,2,3,1,2 */
    dc_tensor *y = TL_CHECK(dc_cat(11, in, 1));
    assert_int_equal(y->shape[1], 21);
    bool prev = dc_set_grad_enabled(false);
    tl_assert_close_abs(TL_CHECK(dc_cat(11, in, 1)), y, 0, "grouped cat = flat cat");
    dc_set_grad_enabled(prev);
    tl_gradcheck("cat of 11", f_cat_many, 11, in, &dim, 1e-2, 1e-3, 1e-2);

    dc_tensor *sq[11];
    for (int i = 0; i < 11; i++) {
        sq[i] = TL_CHECK(dc_randn(DC_SHAPE(2, 3), &rng));
        TL_OK(dc_set_requires_grad(sq[i], true));
    }
    gy_fixed = TL_CHECK(dc_randn(DC_SHAPE(2, 11, 3), &rng));
    tl_gradcheck("stack of 11", f_stack_many, 11, sq, &dim, 1e-2, 1e-3, 1e-2);
    /* values: element [1, 7, 2] of the stack is sq[7][1, 2] */
    dc_tensor *s = TL_CHECK(dc_stack(11, sq, 1));
    assert_float_equal(dc_data_f32(s)[1 * 33 + 7 * 3 + 2], dc_data_f32(sq[7])[1 * 3 + 2], 0);
    dc_pool_pop(m);
}

static void test_cat_stack_dtypes_and_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    const int64_t a[] = {1, 2, 3}, b[] = {4, 5};
    dc_tensor *ta = TL_CHECK(dc_from_data(DC_I64, DC_SHAPE(3), a)), *tb = TL_CHECK(dc_from_data(DC_I64, DC_SHAPE(2), b));
    dc_tensor *c = TL_CHECK(dc_cat(2, (dc_tensor *[]){ta, tb}, 0));
    assert_int_equal(c->dtype, DC_I64);
    assert_int_equal(((int64_t *)dc_data(c))[4], 5);
    /* a 1-d empty tensor is skipped, as in PyTorch */
    dc_tensor *x = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(2, 3))), *e = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(0)));
    dc_tensor *ce = TL_CHECK(dc_cat(2, (dc_tensor *[]){e, x}, 1));
    assert_true(dc_same_shape(ce, x));
    /* a strided input (a transposed view) */
    dc_tensor *xt = TL_CHECK(dc_transpose(TL_CHECK(dc_reshape(TL_CHECK(dc_arange(DC_F32, 0, 6, 1)), DC_SHAPE(2, 3))), 0, 1));
    dc_tensor *ct = TL_CHECK(dc_cat(2, (dc_tensor *[]){xt, xt}, 0)); /* [6, 2] */
    assert_float_equal(dc_data_f32(ct)[1], 3.0f, 0); /* xt[0][1] = x[1][0] = 3 */
    assert_float_equal(dc_data_f32(ct)[3 * 2 + 1], 3.0f, 0);
    /* errors */
    dc_tensor *y = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(3, 3)));
    assert_null(dc_cat(2, (dc_tensor *[]){x, y}, 1));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[3, 3]"));
    assert_null(dc_cat(2, (dc_tensor *[]){x, ta}, 0));
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    assert_null(dc_cat(0, NULL, 0));
    assert_null(dc_cat(2, (dc_tensor *[]){x, x}, 2));
    assert_null(dc_stack(2, (dc_tensor *[]){x, y}, 0));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_null(dc_cat(2, (dc_tensor *[]){x, NULL}, 0));
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- split / chunk -------------------------------------------------------------------- */

static void test_split_chunk(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = TL_CHECK(dc_reshape(TL_CHECK(dc_arange(DC_F32, 0, 14, 1)), DC_SHAPE(2, 7)));
    TL_OK(dc_set_requires_grad(x, true));
    dc_tensor *p[8];
    assert_int_equal(dc_split(x, 3, 1, p, 8), 3);
    assert_int_equal(p[0]->shape[1], 3);
    assert_int_equal(p[2]->shape[1], 1);
    assert_true(p[1]->storage == x->storage); /* views */
    assert_float_equal(dc_data_f32(p[1])[0], 3.0f, 0);
    assert_float_equal(dc_data_f32(p[2])[0], 6.0f, 0);
    /* the pieces route their gradients back: sum of a weighted cat of the pieces */
    dc_tensor *back = TL_CHECK(dc_cat(3, p, 1));
    TL_OK(dc_backward(back, TL_CHECK(dc_reshape(TL_CHECK(dc_arange(DC_F32, 0, 14, 1)), DC_SHAPE(2, 7))), false));
    tl_assert_close_abs(x->grad, x, 0, "split/cat round-trip grad");
    dc_zero_grad(x);
    /* max_out smaller than the count: count returned, only max_out written */
    dc_tensor *one[1] = {NULL};
    assert_int_equal(dc_split(x, 2, -1, one, 1), 4);
    assert_non_null(one[0]);
    assert_int_equal(dc_split(x, 2, -1, NULL, 0), 4);
    /* chunk: torch.chunk sizes (ceil), possibly fewer pieces than asked */
    assert_int_equal(dc_chunk(x, 3, 1, p, 8), 3); /* 3, 3, 1 */
    assert_int_equal(p[2]->shape[1], 1);
    assert_int_equal(dc_chunk(x, 4, 1, p, 8), 4); /* 2, 2, 2, 1 */
    assert_int_equal(dc_chunk(x, 6, 1, p, 8), 4); /* 2, 2, 2, 1 */
    assert_int_equal(dc_chunk(x, 2, 0, p, 8), 2);
    assert_int_equal(p[1]->shape[0], 1);
    /* errors */
    assert_int_equal(dc_split(x, 0, 1, p, 8), -1);
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_int_equal(dc_chunk(x, 0, 1, p, 8), -1);
    assert_int_equal(dc_split(x, 2, 5, p, 8), -1);
    dc_clear_error();
    dc_pool_pop(m);
}

/* ---- scaled dot-product attention ----------------------------------------------------- */

static void run_sdpa(const char *name)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case(name);
    bool causal = tl_meta_num(st, "causal") != 0;
    float scale = (float)tl_meta_num(st, "scale");
    dc_tensor *q = tl_leaf(st, "q"), *k = tl_leaf(st, "k"), *v = tl_leaf(st, "v"), *mask = NULL;
    const char *kind = dc_safetensors_metadata(st, "mask");
    bool fmask = kind && strcmp(kind, "float") == 0;
    if (kind && strcmp(kind, "bool") == 0) mask = TL_CHECK(dc_to_dtype(tl_get(st, "mask"), DC_BOOL));
    if (fmask) mask = tl_leaf(st, "mask");
    dc_tensor *out = TL_CHECK(dc_scaled_dot_product_attention(q, k, v, mask, causal, scale));
    tl_check(out, tl_get(st, "out"), name);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    tl_check_grad(q, st, "grad.q", name);
    tl_check_grad(k, st, "grad.k", name);
    tl_check_grad(v, st, "grad.v", name);
    if (fmask) tl_check_grad(mask, st, "grad.mask", name);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_sdpa_plain(void **s) { (void)s; run_sdpa("sdpa_plain"); }
static void test_sdpa_causal(void **s) { (void)s; run_sdpa("sdpa_causal"); }
static void test_sdpa_causal_rect(void **s) { (void)s; run_sdpa("sdpa_causal_rect"); }
static void test_sdpa_bool_mask(void **s) { (void)s; run_sdpa("sdpa_bool_mask"); }
static void test_sdpa_float_mask(void **s) { (void)s; run_sdpa("sdpa_float_mask"); }
static void test_sdpa_broadcast_kv(void **s) { (void)s; run_sdpa("sdpa_broadcast_kv"); }
static void test_sdpa_2d(void **s) { (void)s; run_sdpa("sdpa_2d"); }

typedef struct sdpa_args {
    dc_tensor *bool_mask;
    bool causal;
    float scale;
} sdpa_args;

static dc_tensor *f_sdpa(dc_tensor **in, void *ctx)
{
    sdpa_args *a = ctx;
    return dc_mul(dc_scaled_dot_product_attention(in[0], in[1], in[2], a->bool_mask ? a->bool_mask : in[3],
                                                  a->causal, a->scale),
                  gy_fixed);
}

static void test_sdpa_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    /* additive mask (its gradient too), custom scale */
    dc_safetensors *st = open_case("sdpa_float_mask");
    dc_tensor *in[4] = {tl_leaf(st, "q"), tl_leaf(st, "k"), tl_leaf(st, "v"), tl_leaf(st, "mask")};
    gy_fixed = tl_get(st, "gy");
    sdpa_args a = {NULL, false, 0.3f};
    tl_gradcheck("sdpa float mask", f_sdpa, 4, in, &a, 1e-2, 1e-3, 1e-2);
    dc_safetensors_close(st);
    /* causal + BOOL mask + broadcast k/v batch dims */
    st = open_case("sdpa_broadcast_kv");
    dc_tensor *in2[4] = {tl_leaf(st, "q"), tl_leaf(st, "k"), tl_leaf(st, "v"), NULL};
    gy_fixed = tl_get(st, "gy");
    sdpa_args b = {TL_CHECK(dc_to_dtype(tl_get(st, "mask"), DC_BOOL)), true, 0.0f};
    tl_gradcheck("sdpa causal bool broadcast", f_sdpa, 3, in2, &b, 1e-2, 1e-3, 1e-2);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* A row with nothing to attend to gives zeros (PyTorch 2.5's safe softmax), not NaN, and
 * passes no gradient. */
static void test_sdpa_fully_masked_row(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 11);
    dc_tensor *q = TL_CHECK(dc_randn(DC_SHAPE(2, 3, 4), &rng)), *k = TL_CHECK(dc_randn(DC_SHAPE(2, 5, 4), &rng));
    dc_tensor *v = TL_CHECK(dc_randn(DC_SHAPE(2, 5, 2), &rng));
    TL_OK(dc_set_requires_grad(q, true));
    uint8_t mv[15];
    for (int i = 0; i < 15; i++) mv[i] = i >= 5; /* row 0 fully masked */
    dc_tensor *mask = TL_CHECK(dc_from_data(DC_BOOL, DC_SHAPE(3, 5), mv));
    dc_tensor *out = TL_CHECK(dc_scaled_dot_product_attention(q, k, v, mask, false, 0));
    const float *o = dc_data_f32(out);
    for (int b = 0; b < 2; b++)
        for (int j = 0; j < 2; j++) assert_float_equal(o[b * 6 + j], 0.0f, 0);
    for (int i = 0; i < 12; i++) assert_false(isnan(o[i]));
    TL_OK(dc_backward(out, TL_CHECK(dc_ones(DC_F32, DC_SHAPE(2, 3, 2))), false));
    const float *g = dc_data_f32(q->grad);
    for (int b = 0; b < 2; b++)
        for (int e = 0; e < 4; e++) assert_float_equal(g[b * 12 + e], 0.0f, 0);
    dc_zero_grad(q);
    dc_pool_pop(m);
}

/* Strided q/k/v (the usual [B, L, H, E] -> [B, H, L, E] transpose) match contiguous ones. */
static void test_sdpa_strided(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = open_case("sdpa_plain"); /* q [2, 3, 4, 8] */
    dc_tensor *q = tl_get(st, "q"), *k = tl_get(st, "k"), *v = tl_get(st, "v");
    dc_tensor *qt = TL_CHECK(dc_transpose(TL_CHECK(dc_contiguous(TL_CHECK(dc_transpose(q, 1, 2)))), 1, 2));
    dc_tensor *kt = TL_CHECK(dc_transpose(TL_CHECK(dc_contiguous(TL_CHECK(dc_transpose(k, 1, 2)))), 1, 2));
    assert_false(dc_is_contiguous(qt));
    dc_tensor *out = TL_CHECK(dc_scaled_dot_product_attention(qt, kt, v, NULL, false, 0));
    tl_check(out, tl_get(st, "out"), "sdpa strided");
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* Long causal sequences run in row blocks that skip the masked triangle: the same values
 * and gradients as an explicit lower-triangular BOOL mask, for L = S, S < L and S > L. */
static void test_sdpa_causal_blocks(void **state)
{
    (void)state;
    const int64_t shapes[3][2] = {{300, 300}, {300, 170}, {260, 420}}; /* {L, S} */
    for (int c = 0; c < 3; c++) {
        dc_pool_mark m = dc_pool_push();
        int64_t L = shapes[c][0], S = shapes[c][1];
        dc_rng rng;
        dc_rng_seed(&rng, 40 + (uint64_t)c);
        dc_tensor *q = TL_CHECK(dc_randn(DC_SHAPE(2, L, 16), &rng)), *k = TL_CHECK(dc_randn(DC_SHAPE(2, S, 16), &rng));
        dc_tensor *v = TL_CHECK(dc_randn(DC_SHAPE(2, S, 8), &rng)), *gy = TL_CHECK(dc_randn(DC_SHAPE(2, L, 8), &rng));
        uint8_t *mv = malloc((size_t)(L * S));
        assert_non_null(mv);
        for (int64_t i = 0; i < L; i++)
            for (int64_t j = 0; j < S; j++) mv[i * S + j] = j <= i;
        dc_tensor *tril = TL_CHECK(dc_from_data(DC_BOOL, DC_SHAPE(L, S), mv));
        free(mv);
        dc_tensor *res[2][4];
        for (int way = 0; way < 2; way++) {
            dc_tensor *in[3] = {TL_CHECK(dc_clone(q)), TL_CHECK(dc_clone(k)), TL_CHECK(dc_clone(v))};
            for (int i = 0; i < 3; i++) TL_OK(dc_set_requires_grad(in[i], true));
            dc_tensor *out = TL_CHECK(dc_scaled_dot_product_attention(in[0], in[1], in[2], way ? tril : NULL,
                                                                     way == 0, 0));
            TL_OK(dc_backward(out, gy, false));
            res[way][0] = out;
            for (int i = 0; i < 3; i++) res[way][1 + i] = dc_autorelease(dc_tensor_retain(in[i]->grad));
            for (int i = 0; i < 3; i++) dc_zero_grad(in[i]);
        }
        const char *what[4] = {"causal blocks out", "causal blocks grad q", "causal blocks grad k", "causal blocks grad v"};
        for (int i = 0; i < 4; i++) tl_assert_close(res[0][i], res[1][i], TL_RTOL, what[i]);
        dc_pool_pop(m);
    }
}

static void test_sdpa_errors(void **state)
{
    (void)state;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *q = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 4, 8))), *k = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 6, 7)));
    dc_tensor *v = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 6, 5)));
    assert_null(dc_scaled_dot_product_attention(q, k, v, NULL, false, 0));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[2, 6, 7]"));
    dc_tensor *k8 = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(3, 6, 8)));
    assert_null(dc_scaled_dot_product_attention(q, k8, v, NULL, false, 0));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    dc_tensor *k2 = TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 6, 8)));
    dc_tensor *badmask = TL_CHECK(dc_zeros(DC_BOOL, DC_SHAPE(4, 5)));
    assert_null(dc_scaled_dot_product_attention(q, k2, v, badmask, false, 0));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[4, 5]"));
    dc_tensor *imask = TL_CHECK(dc_zeros(DC_I64, DC_SHAPE(4, 6)));
    assert_null(dc_scaled_dot_product_attention(q, k2, v, imask, false, 0));
    assert_int_equal(dc_last_status(), DC_ERR_DTYPE);
    dc_clear_error();
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropout_statistics),
        cmocka_unit_test(test_dropout_eval_and_edges),
        cmocka_unit_test(test_embedding_i64),
        cmocka_unit_test(test_embedding_i32),
        cmocka_unit_test(test_embedding_gradcheck_and_errors),
        cmocka_unit_test(test_cat_fixture),
        cmocka_unit_test(test_stack_fixture),
        cmocka_unit_test(test_cat_stack_many_inputs),
        cmocka_unit_test(test_cat_stack_dtypes_and_errors),
        cmocka_unit_test(test_split_chunk),
        cmocka_unit_test(test_sdpa_plain),
        cmocka_unit_test(test_sdpa_causal),
        cmocka_unit_test(test_sdpa_causal_rect),
        cmocka_unit_test(test_sdpa_bool_mask),
        cmocka_unit_test(test_sdpa_float_mask),
        cmocka_unit_test(test_sdpa_broadcast_kv),
        cmocka_unit_test(test_sdpa_2d),
        cmocka_unit_test(test_sdpa_gradcheck),
        cmocka_unit_test(test_sdpa_fully_masked_row),
        cmocka_unit_test(test_sdpa_strided),
        cmocka_unit_test(test_sdpa_causal_blocks),
        cmocka_unit_test(test_sdpa_errors),
    };
    int rc = TL_RUN(tests);
    tl_report_worst("test_ops_misc");
    return rc;
}
