/* test_rnn.c: recurrent layers (RNN tanh/relu, GRU, LSTM; stacked, batch_first, padded with
 * unsorted lengths like pack_padded_sequence), cells, and dot / general / additive attention
 * with padding masks, against PyTorch fixtures (tools/fixtures_rnn.py): outputs, final states
 * and every input and parameter gradient at TL_RTOL. Plus finite-difference checks of each
 * op's backward, the modules' names and default initialisation, and bad-input errors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support/testlib.h"
#include "deepc/rnn.h"

/* sum(a * g): turns several outputs into one loss with chosen output gradients */
static dc_tensor *wsum(dc_tensor *a, dc_tensor *g) { return dc_sum_all(dc_mul(a, g)); }

static dc_tensor *leaf(dc_safetensors *st, const char *name)
{
    dc_tensor *t = tl_get(st, name);
    TL_OK(dc_set_requires_grad(t, true));
    return t;
}

static dc_tensor *opt_leaf(dc_safetensors *st, const char *name)
{
    return dc_safetensors_has(st, name) ? leaf(st, name) : NULL;
}

static void check_grad(dc_safetensors *st, dc_tensor *t, const char *name)
{
    char key[600];
    snprintf(key, sizeof key, "grad.%s", name);
    if (!t->grad) fail_msg("%s: no gradient for %s", dc_safetensors_path(st), name);
    tl_assert_close(t->grad, tl_get(st, key), TL_RTOL, key);
}

/* ---- layers ------------------------------------------------------------------------------ */

static void run_layer_case(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "rnn/layer_%s", name);
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture(path);
    dc_rnn_mode mode = (dc_rnn_mode)tl_meta_num(st, "mode");
    int layers = (int)tl_meta_num(st, "layers");
    bool bf = tl_meta_num(st, "batch_first") != 0, bias = tl_meta_num(st, "bias") != 0;
    dc_tensor *x = leaf(st, "x"), *h0 = opt_leaf(st, "h0"), *c0 = opt_leaf(st, "c0");
    dc_tensor *lengths = dc_safetensors_has(st, "lengths") ? tl_get_i64(st, "lengths") : NULL;
    const char *pn[4] = {"weight_ih_l%d", "weight_hh_l%d", "bias_ih_l%d", "bias_hh_l%d"};
    int per = bias ? 4 : 2;
    dc_tensor *params[16];
    char names[16][32];
    for (int l = 0; l < layers; l++)
        for (int k = 0; k < per; k++) {
            snprintf(names[l * per + k], 32, pn[k], l);
            params[l * per + k] = leaf(st, names[l * per + k]);
        }
    dc_tensor *out, *hn, *cn = NULL;
    TL_OK(dc_rnn(mode, x, h0, c0, layers, params, bias, lengths, bf, &out, &hn, mode == DC_LSTM ? &cn : NULL));
    tl_assert_close(out, tl_get(st, "out"), TL_RTOL, "out");
    tl_assert_close(hn, tl_get(st, "h_n"), TL_RTOL, "h_n");
    dc_tensor *loss = dc_add(wsum(out, tl_get(st, "gy")), wsum(hn, tl_get(st, "gh")));
    if (mode == DC_LSTM) {
        tl_assert_close(cn, tl_get(st, "c_n"), TL_RTOL, "c_n");
        loss = dc_add(loss, wsum(cn, tl_get(st, "gc")));
    }
    TL_OK(dc_backward(TL_CHECK(loss), NULL, false));
    check_grad(st, x, "x");
    if (h0) check_grad(st, h0, "h0");
    if (c0) check_grad(st, c0, "c0");
    for (int i = 0; i < layers * per; i++) check_grad(st, params[i], names[i]);
    for (int i = 0; i < layers * per; i++) dc_zero_grad(params[i]);

    /* the module: same names, loads the fixture's parameters, same output */
    dc_module *mod = TL_CHECK(dc_rnn_new(mode, x->shape[2], (int64_t)tl_meta_num(st, "hidden"), layers, bias, bf));
    TL_OK(dc_module_load_state_dict(mod, st, false));
    dc_rnn_out r;
    TL_OK(dc_rnn_forward(mod, x, h0, c0, lengths, &r));
    tl_assert_close(r.output, tl_get(st, "out"), TL_RTOL, "module out");
    tl_assert_close(r.h_n, tl_get(st, "h_n"), TL_RTOL, "module h_n");
    if (mode == DC_LSTM) tl_assert_close(r.c_n, tl_get(st, "c_n"), TL_RTOL, "module c_n");
    dc_module_free(mod);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_layer_rnn_tanh_packed(void **s) { (void)s; run_layer_case("rnn_tanh_packed"); }
static void test_layer_rnn_relu_2layers(void **s) { (void)s; run_layer_case("rnn_relu_2layers"); }
static void test_layer_gru_packed(void **s) { (void)s; run_layer_case("gru_packed"); }
static void test_layer_gru_2layers(void **s) { (void)s; run_layer_case("gru_2layers_timemajor"); }
static void test_layer_lstm_packed(void **s) { (void)s; run_layer_case("lstm_packed"); }
static void test_layer_lstm_2layers_nobias(void **s) { (void)s; run_layer_case("lstm_2layers_nobias"); }
static void test_layer_lstm_batch1(void **s) { (void)s; run_layer_case("lstm_batch1"); }
static void test_layer_rnn_batch1_len1(void **s) { (void)s; run_layer_case("rnn_tanh_batch1_len1"); }

/* ---- cells ------------------------------------------------------------------------------- */

static void run_cell_case(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "rnn/cell_%s", name);
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture(path);
    dc_rnn_mode mode = (dc_rnn_mode)tl_meta_num(st, "mode");
    bool bias = tl_meta_num(st, "bias") != 0;
    dc_tensor *x = leaf(st, "x"), *h = opt_leaf(st, "h"), *c = opt_leaf(st, "c");
    const char *pn[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    dc_tensor *p[4] = {NULL, NULL, NULL, NULL};
    for (int k = 0; k < (bias ? 4 : 2); k++) p[k] = leaf(st, pn[k]);
    dc_tensor *h1, *c1 = NULL, *loss;
    if (mode == DC_LSTM) {
        TL_OK(dc_lstm_cell(x, h, c, p[0], p[1], p[2], p[3], &h1, &c1));
        tl_assert_close(c1, tl_get(st, "c_out"), TL_RTOL, "c_out");
        loss = dc_add(wsum(h1, tl_get(st, "gh")), wsum(c1, tl_get(st, "gc")));
    } else {
        h1 = TL_CHECK(dc_rnn_cell(mode, x, h, p[0], p[1], p[2], p[3]));
        loss = wsum(h1, tl_get(st, "gh"));
    }
    tl_assert_close(h1, tl_get(st, "h_out"), TL_RTOL, "h_out");
    TL_OK(dc_backward(TL_CHECK(loss), NULL, false));
    check_grad(st, x, "x");
    if (h) check_grad(st, h, "h");
    if (c) check_grad(st, c, "c");
    for (int k = 0; k < (bias ? 4 : 2); k++) check_grad(st, p[k], pn[k]);

    dc_module *mod = TL_CHECK(dc_rnn_cell_new(mode, x->shape[x->ndim - 1], (int64_t)tl_meta_num(st, "hidden"), bias));
    TL_OK(dc_module_load_state_dict(mod, st, false));
    dc_tensor *mh, *mc;
    TL_OK(dc_rnn_cell_forward(mod, x, h, c, &mh, &mc));
    tl_assert_close(mh, tl_get(st, "h_out"), TL_RTOL, "module h_out");
    if (mode == DC_LSTM) tl_assert_close(mc, tl_get(st, "c_out"), TL_RTOL, "module c_out");
    dc_module_free(mod);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_cell_rnn_tanh(void **s) { (void)s; run_cell_case("rnn_tanh"); }
static void test_cell_rnn_relu(void **s) { (void)s; run_cell_case("rnn_relu"); }
static void test_cell_gru(void **s) { (void)s; run_cell_case("gru"); }
static void test_cell_lstm(void **s) { (void)s; run_cell_case("lstm"); }
static void test_cell_gru_nostate(void **s) { (void)s; run_cell_case("gru_nostate"); }
static void test_cell_lstm_nostate_nobias(void **s) { (void)s; run_cell_case("lstm_nostate_nobias"); }
static void test_cell_rnn_unbatched(void **s) { (void)s; run_cell_case("rnn_tanh_unbatched"); }
static void test_cell_lstm_unbatched(void **s) { (void)s; run_cell_case("lstm_unbatched"); }

/* ---- attention --------------------------------------------------------------------------- */

static void run_attention_case(const char *name, dc_attention_kind kind)
{
    char path[128];
    snprintf(path, sizeof path, "rnn/attention_%s", name);
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture(path);
    dc_tensor *q = leaf(st, "query"), *enc = leaf(st, "values");
    dc_tensor *lengths = dc_safetensors_has(st, "lengths") ? tl_get_i64(st, "lengths") : NULL;
    int64_t E = q->shape[1];
    /* the module, with the fixture's parameters */
    dc_module *att = TL_CHECK(dc_attention_new(kind, E));
    TL_OK(dc_module_load_state_dict(att, st, false)); /* the fixture has more than parameters */
    dc_tensor_list *params = TL_CHECK(dc_module_named_parameters(att));
    for (int i = 0; i < params->count; i++) TL_OK(dc_set_requires_grad(params->tensors[i], true));
    dc_tensor *w = NULL;
    dc_tensor *keys = TL_CHECK(dc_attention_keys(att, enc));
    dc_tensor *ctx = TL_CHECK(dc_attention_forward(att, q, keys, enc, lengths, &w));
    tl_assert_close(ctx, tl_get(st, "context"), TL_RTOL, "context");
    tl_assert_close(w, tl_get(st, "weights"), TL_RTOL, "weights");
    assert_false(dc_needs_grad(w));
    TL_OK(dc_backward(wsum(ctx, tl_get(st, "gout")), NULL, false));
    check_grad(st, q, "query");
    check_grad(st, enc, "values");
    for (int i = 0; i < params->count; i++) check_grad(st, params->tensors[i], params->names[i]);
    dc_tensor_list_free(params);
    dc_module_free(att);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

static void test_attention_dot_masked(void **s) { (void)s; run_attention_case("dot_masked", DC_ATTN_DOT); }
static void test_attention_dot_full(void **s) { (void)s; run_attention_case("dot_full", DC_ATTN_DOT); }
static void test_attention_general(void **s) { (void)s; run_attention_case("general_masked", DC_ATTN_GENERAL); }
static void test_attention_additive_masked(void **s) { (void)s; run_attention_case("additive_masked", DC_ATTN_ADDITIVE); }
static void test_attention_additive_full(void **s) { (void)s; run_attention_case("additive_full", DC_ATTN_ADDITIVE); }

/* ---- default initialisation ---------------------------------------------------------------- */

static void test_init_matches_torch(void **s)
{
    (void)s;
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = tl_fixture("rnn/init");
    dc_manual_seed(7);
    dc_module *gru = TL_CHECK(dc_rnn_new(DC_GRU, 3, 5, 2, true, false));
    dc_module *cell = TL_CHECK(dc_rnn_cell_new(DC_LSTM, 4, 3, true));
    const char *gn[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"};
    char key[64];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "gru.%s", gn[i]);
        tl_assert_close(TL_CHECK(dc_module_tensor(gru, gn[i])), tl_get(st, key), 0, key);
    }
    for (int i = 0; i < 4; i++) {
        const char *cn[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
        snprintf(key, sizeof key, "lstmcell.%s", cn[i]);
        tl_assert_close(TL_CHECK(dc_module_tensor(cell, cn[i])), tl_get(st, key), 0, key);
    }
    dc_module_free(gru);
    dc_module_free(cell);
    dc_safetensors_close(st);
    dc_pool_pop(m);
}

/* ---- finite differences ------------------------------------------------------------------ */

typedef struct fd_ctx {
    dc_rnn_mode mode;
    dc_tensor *lengths, *gy, *gh, *gc;
    bool batch_first;
} fd_ctx;

/* inputs: x, h0, c0, w_ih, w_hh, b_ih, b_hh */
static dc_tensor *fd_layer(dc_tensor **in, void *vctx)
{
    fd_ctx *c = vctx;
    dc_tensor *out, *hn, *cn = NULL;
    if (dc_rnn_layer(c->mode, in[0], in[1], in[2], in[3], in[4], in[5], in[6], c->lengths, c->batch_first, &out, &hn,
                     c->mode == DC_LSTM ? &cn : NULL))
        return NULL;
    dc_tensor *l = dc_add(wsum(out, c->gy), wsum(hn, c->gh));
    return cn ? dc_add(l, wsum(cn, c->gc)) : l;
}

static dc_tensor *fd_cell(dc_tensor **in, void *vctx)
{
    fd_ctx *c = vctx;
    if (c->mode != DC_LSTM) return wsum(dc_rnn_cell(c->mode, in[0], in[1], in[3], in[4], in[5], in[6]), c->gh);
    dc_tensor *h, *cc;
    if (dc_lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6], &h, &cc)) return NULL;
    return dc_add(wsum(h, c->gh), wsum(cc, c->gc));
}

static dc_tensor *randn_leaf(dc_rng *rng, int ndim, const int64_t *shape, float scale)
{
    dc_tensor *t = dc_randn(ndim, shape, rng);
    dc_scale_(t, scale);
    dc_set_requires_grad(t, true);
    return t;
}

static void gradcheck_mode(dc_rnn_mode mode, bool cell)
{
    dc_pool_mark m = dc_pool_push();
    dc_rng rng;
    dc_rng_seed(&rng, 100 + (uint64_t)mode);
    const int64_t T = cell ? 1 : 4, B = 3, I = 2, H = 3, GH = dc_rnn_num_gates(mode) * H;
    fd_ctx c = {mode, NULL, NULL, NULL, NULL, true};
    dc_tensor *in[7];
    in[0] = cell ? randn_leaf(&rng, DC_SHAPE(B, I), 1.0f) : randn_leaf(&rng, DC_SHAPE(B, T, I), 1.0f);
    in[1] = randn_leaf(&rng, DC_SHAPE(B, H), 0.5f);
    in[2] = mode == DC_LSTM ? randn_leaf(&rng, DC_SHAPE(B, H), 0.5f) : NULL;
    in[3] = randn_leaf(&rng, DC_SHAPE(GH, I), 0.5f);
    in[4] = randn_leaf(&rng, DC_SHAPE(GH, H), 0.5f);
    in[5] = randn_leaf(&rng, DC_SHAPE(GH), 0.3f);
    in[6] = randn_leaf(&rng, DC_SHAPE(GH), 0.3f);
    if (!cell) {
        c.lengths = dc_from_data(DC_I64, DC_SHAPE(B), (int64_t[]){4, 1, 3});
        c.gy = dc_randn(DC_SHAPE(B, T, H), &rng);
    }
    c.gh = dc_randn(DC_SHAPE(B, H), &rng);
    c.gc = dc_randn(DC_SHAPE(B, H), &rng);
    char what[64];
    snprintf(what, sizeof what, "%s %s", dc_rnn_mode_name(mode), cell ? "cell" : "layer");
    /* relu's kink makes central differences unreliable where a pre-activation is near 0;
     * with these seeds none is within the step */
    tl_gradcheck(what, cell ? fd_cell : fd_layer, 7, in, &c, mode == DC_RNN_RELU ? 1e-3 : 1e-2, 2e-3, 2e-2);
    dc_pool_pop(m);
}

static void test_gradcheck_layers(void **s)
{
    (void)s;
    for (int mode = DC_RNN_TANH; mode <= DC_LSTM; mode++) gradcheck_mode((dc_rnn_mode)mode, false);
}

static void test_gradcheck_cells(void **s)
{
    (void)s;
    for (int mode = DC_RNN_TANH; mode <= DC_LSTM; mode++) gradcheck_mode((dc_rnn_mode)mode, true);
}

typedef struct fd_att {
    bool additive;
    dc_tensor *lengths, *g;
} fd_att;

/* inputs: q, k, values, v */
static dc_tensor *fd_attention(dc_tensor **in, void *vctx)
{
    fd_att *c = vctx;
    dc_tensor *ctx = c->additive ? dc_additive_attention(in[0], in[1], in[2], in[3], c->lengths, NULL)
                                 : dc_dot_attention(in[0], in[1], in[2], c->lengths, NULL);
    return wsum(ctx, c->g);
}

static void test_gradcheck_attention(void **s)
{
    (void)s;
    for (int additive = 0; additive < 2; additive++) {
        dc_pool_mark m = dc_pool_push();
        dc_rng rng;
        dc_rng_seed(&rng, 5);
        const int64_t B = 3, S = 4, E = 3, Ev = 2;
        dc_tensor *in[4] = {randn_leaf(&rng, DC_SHAPE(B, E), 1.0f), randn_leaf(&rng, DC_SHAPE(B, S, E), 1.0f),
                            randn_leaf(&rng, DC_SHAPE(B, S, Ev), 1.0f),
                            additive ? randn_leaf(&rng, DC_SHAPE(E), 1.0f) : NULL};
        fd_att c = {additive, dc_from_data(DC_I64, DC_SHAPE(B), (int64_t[]){4, 2, 1}), dc_randn(DC_SHAPE(B, Ev), &rng)};
        tl_gradcheck(additive ? "additive attention" : "dot attention", fd_attention, 4, in, &c, 1e-2, 2e-3, 2e-2);
        dc_pool_pop(m);
    }
}

/* ---- no grad, no leaks, errors ----------------------------------------------------------- */

static void test_no_grad_records_nothing(void **s)
{
    (void)s;
    dc_pool_mark m = dc_pool_push();
    dc_module *lstm = TL_CHECK(dc_rnn_new(DC_LSTM, 2, 3, 2, true, true));
    dc_tensor *x = dc_randn(DC_SHAPE(2, 5, 2), NULL);
    bool prev = dc_set_grad_enabled(false);
    dc_rnn_out r;
    TL_OK(dc_rnn_forward(lstm, x, NULL, NULL, NULL, &r));
    dc_set_grad_enabled(prev);
    assert_false(dc_needs_grad(r.output));
    assert_null(r.output->grad_fn);
    assert_int_equal(r.h_n->shape[0], 2);
    dc_module_free(lstm);
    dc_pool_pop(m);
}

static void test_graph_freed_without_backward(void **s)
{
    (void)s;
    int64_t live = dc_live_tensors();
    dc_module *gru = TL_CHECK(dc_rnn_new(DC_GRU, 2, 3, 1, true, false));
    dc_module *cell = TL_CHECK(dc_rnn_cell_new(DC_LSTM, 2, 3, true));
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = dc_randn(DC_SHAPE(4, 2, 2), NULL);
    dc_rnn_out r;
    TL_OK(dc_rnn_forward(gru, x, NULL, NULL, NULL, &r));
    dc_tensor *h, *c;
    TL_OK(dc_rnn_cell_forward(cell, dc_select(x, 0, 0), NULL, NULL, &h, &c));
    assert_true(dc_needs_grad(c));
    dc_pool_pop(m);
    dc_module_free(gru);
    dc_module_free(cell);
    assert_int_equal(dc_live_tensors(), live);
}

static void test_bad_inputs(void **s)
{
    (void)s;
    dc_pool_mark m = dc_pool_push();
    dc_tensor *x = dc_randn(DC_SHAPE(5, 2, 3), NULL);
    dc_tensor *wi = dc_randn(DC_SHAPE(12, 3), NULL), *wh = dc_randn(DC_SHAPE(12, 3), NULL); /* LSTM, H = 3 */
    dc_tensor *out, *hn;
    /* weight_ih of the wrong input size */
    assert_int_equal(dc_rnn_layer(DC_LSTM, x, NULL, NULL, dc_randn(DC_SHAPE(12, 5), NULL), wh, NULL, NULL, NULL, false,
                                  &out, &hn, NULL),
                     DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[12, 5]"));
    /* GRU weights with LSTM mode */
    assert_int_equal(dc_rnn_layer(DC_GRU, x, NULL, NULL, wi, wh, NULL, NULL, NULL, false, &out, &hn, NULL),
                     DC_ERR_SHAPE);
    /* lengths out of range, of the wrong size, of a float type */
    dc_tensor *bad = dc_from_data(DC_I64, DC_SHAPE(2), (int64_t[]){6, 1});
    assert_int_equal(dc_rnn_layer(DC_LSTM, x, NULL, NULL, wi, wh, NULL, NULL, bad, false, &out, &hn, NULL), DC_ERR_ARG);
    assert_non_null(strstr(dc_last_error(), "lengths[0] = 6"));
    dc_tensor *zero = dc_from_data(DC_I64, DC_SHAPE(2), (int64_t[]){0, 1});
    assert_int_equal(dc_rnn_layer(DC_LSTM, x, NULL, NULL, wi, wh, NULL, NULL, zero, false, &out, &hn, NULL), DC_ERR_ARG);
    dc_tensor *three = dc_from_data(DC_I64, DC_SHAPE(3), (int64_t[]){1, 1, 1});
    assert_int_equal(dc_rnn_layer(DC_LSTM, x, NULL, NULL, wi, wh, NULL, NULL, three, false, &out, &hn, NULL), DC_ERR_SHAPE);
    assert_int_equal(dc_rnn_layer(DC_LSTM, x, NULL, NULL, wi, wh, NULL, NULL, dc_ones(DC_F32, DC_SHAPE(2)), false, &out,
                                  &hn, NULL),
                     DC_ERR_DTYPE);
    /* h0 of the wrong batch; c0 for a GRU */
    assert_int_equal(dc_rnn_layer(DC_LSTM, x, dc_zeros(DC_F32, DC_SHAPE(3, 3)), NULL, wi, wh, NULL, NULL, NULL, false,
                                  &out, &hn, NULL),
                     DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "[3, 3]"));
    assert_int_equal(dc_rnn_layer(DC_GRU, x, NULL, dc_zeros(DC_F32, DC_SHAPE(2, 3)), dc_randn(DC_SHAPE(9, 3), NULL),
                                  dc_randn(DC_SHAPE(9, 3), NULL), NULL, NULL, NULL, false, &out, &hn, NULL),
                     DC_ERR_ARG);
    /* NULL input propagates */
    assert_int_not_equal(dc_rnn_layer(DC_LSTM, NULL, NULL, NULL, wi, wh, NULL, NULL, NULL, false, &out, &hn, NULL), DC_OK);
    assert_null(dc_rnn_cell(DC_LSTM, dc_select(x, 0, 0), NULL, wi, wh, NULL, NULL));
    /* attention */
    dc_tensor *q = dc_randn(DC_SHAPE(2, 3), NULL), *k = dc_randn(DC_SHAPE(2, 4, 3), NULL);
    assert_null(dc_dot_attention(q, dc_randn(DC_SHAPE(2, 4, 5), NULL), k, NULL, NULL));
    assert_int_equal(dc_last_status(), DC_ERR_SHAPE);
    assert_null(dc_dot_attention(q, k, k, dc_from_data(DC_I64, DC_SHAPE(2), (int64_t[]){5, 1}), NULL));
    assert_int_equal(dc_last_status(), DC_ERR_ARG);
    assert_null(dc_additive_attention(q, k, k, NULL, NULL, NULL));
    assert_null(dc_rnn_new(DC_GRU, 0, 4, 1, true, false));
    assert_int_equal(dc_attention_kind_parse("bahdanau"), -1);
    assert_int_equal(dc_attention_kind_parse("general"), DC_ATTN_GENERAL);
    dc_clear_error();
    dc_pool_pop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_rnn_tanh_packed),
        cmocka_unit_test(test_layer_rnn_relu_2layers),
        cmocka_unit_test(test_layer_gru_packed),
        cmocka_unit_test(test_layer_gru_2layers),
        cmocka_unit_test(test_layer_lstm_packed),
        cmocka_unit_test(test_layer_lstm_2layers_nobias),
        cmocka_unit_test(test_layer_lstm_batch1),
        cmocka_unit_test(test_layer_rnn_batch1_len1),
        cmocka_unit_test(test_cell_rnn_tanh),
        cmocka_unit_test(test_cell_rnn_relu),
        cmocka_unit_test(test_cell_gru),
        cmocka_unit_test(test_cell_lstm),
        cmocka_unit_test(test_cell_gru_nostate),
        cmocka_unit_test(test_cell_lstm_nostate_nobias),
        cmocka_unit_test(test_cell_rnn_unbatched),
        cmocka_unit_test(test_cell_lstm_unbatched),
        cmocka_unit_test(test_attention_dot_masked),
        cmocka_unit_test(test_attention_dot_full),
        cmocka_unit_test(test_attention_general),
        cmocka_unit_test(test_attention_additive_masked),
        cmocka_unit_test(test_attention_additive_full),
        cmocka_unit_test(test_init_matches_torch),
        cmocka_unit_test(test_gradcheck_layers),
        cmocka_unit_test(test_gradcheck_cells),
        cmocka_unit_test(test_gradcheck_attention),
        cmocka_unit_test(test_no_grad_records_nothing),
        cmocka_unit_test(test_graph_freed_without_backward),
        cmocka_unit_test(test_bad_inputs),
    };
    return TL_RUN(tests);
}
