/* test_nn.c: modules against PyTorch fixtures (tools/fixtures_nn.py): state_dict names and
 * order (nested Sequential, a ResNet BasicBlock), loading torch's state dicts by name
 * (F16/BF16 converted), forward outputs and every parameter/input gradient, running-stat
 * updates (momentum and cumulative), train/eval switching of BatchNorm and Dropout,
 * initialisation bit-identical to torch.manual_seed + construction, strict-load errors,
 * save/load round trips, and the module-building API. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/testlib.h"

/* ---------------------------------------------------------------------------------------
 * A custom module: torchvision's ResNet BasicBlock, written as a user would
 * ------------------------------------------------------------------------------------- */

typedef struct basic_block {
    dc_module base;
    dc_module *conv1, *bn1, *conv2, *bn2, *downsample;
} basic_block;

static dc_tensor *block_forward(dc_module *m, dc_tensor *x)
{
    basic_block *b = (basic_block *)m;
    /* ReLU(inplace=True) and out += identity as in torchvision: relu_, add_ */
    dc_tensor *out = dc_relu_(dc_module_forward(b->bn1, dc_module_forward(b->conv1, x)));
    out = dc_module_forward(b->bn2, dc_module_forward(b->conv2, out));
    dc_tensor *identity = b->downsample ? dc_module_forward(b->downsample, x) : x;
    return dc_relu_(dc_add_(out, identity));
}

static const dc_module_vtable block_vt = {.type = "BasicBlock", .forward = block_forward};

static dc_module *block_new(int64_t inplanes, int64_t planes, int stride)
{
    basic_block *b = (basic_block *)dc_module_new(&block_vt, sizeof *b);
    if (!b) return NULL;
    dc_conv2d_args c3 = {.stride = {stride, stride}, .padding = {1, 1}};
    b->conv1 = dc_module_add_child(&b->base, "conv1", dc_conv2d_new(inplanes, planes, 3, 3, c3, false));
    b->bn1 = dc_module_add_child(&b->base, "bn1", dc_batch_norm2d_new(planes));
    b->conv2 = dc_module_add_child(&b->base, "conv2",
                                   dc_conv2d_new(planes, planes, 3, 3, (dc_conv2d_args){.padding = {1, 1}}, false));
    b->bn2 = dc_module_add_child(&b->base, "bn2", dc_batch_norm2d_new(planes));
    if (stride != 1 || inplanes != planes) {
        dc_conv2d_args c1 = {.stride = {stride, stride}};
        b->downsample = dc_module_add_child(
            &b->base, "downsample",
            DC_SEQUENTIAL(dc_conv2d_new(inplanes, planes, 1, 1, c1, false), dc_batch_norm2d_new(planes)));
    }
    return dc_module_finish(&b->base);
}

/* ---------------------------------------------------------------------------------------
 * The deepc module of each fixture case
 * ------------------------------------------------------------------------------------- */

static dc_module *make_module(const char *n)
{
#define IS(s) (!strcmp(n, s))
    if (IS("linear")) return dc_linear_new(5, 3, true);
    if (IS("linear_nobias")) return dc_linear_new(6, 4, false);
    if (IS("conv2d")) return dc_conv2d_new(3, 4, 3, 2, (dc_conv2d_args){.stride = {2, 1}, .padding = {1, 0}}, true);
    if (IS("conv2d_groups"))
        return dc_conv2d_new(4, 6, 3, 3, (dc_conv2d_args){.padding = {1, 1}, .groups = 2}, false);
    if (IS("conv_transpose2d"))
        return dc_conv_transpose2d_new(
            4, 2, 3, 3, (dc_conv_transpose2d_args){.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}}, true);
    if (IS("batchnorm2d_train") || IS("batchnorm2d_train2") || IS("batchnorm2d_eval")) return dc_batch_norm2d_new(3);
    if (IS("batchnorm1d_train")) return dc_batch_norm1d_new(5);
    if (IS("batchnorm1d_3d")) return dc_batch_norm1d_new_ex(5, 1e-5f, 0.3f, true, true);
    if (IS("batchnorm1d_cumulative")) return dc_batch_norm1d_new_ex(4, 1e-5f, DC_BN_MOMENTUM_NONE, true, true);
    if (IS("batchnorm2d_noaffine")) return dc_batch_norm2d_new_ex(3, 1e-5f, 0.1f, false, true);
    if (IS("batchnorm2d_notrack")) return dc_batch_norm2d_new_ex(3, 1e-5f, 0.1f, true, false);
    if (IS("layernorm")) return dc_layer_norm_new(2, (int64_t[]){4, 5}, 1e-5f, true);
    if (IS("layernorm_noaffine")) return dc_layer_norm_new(1, (int64_t[]){6}, 1e-3f, false);
    if (IS("groupnorm")) return dc_group_norm_new(2, 6, 1e-5f, true);
    if (IS("embedding")) return dc_embedding_new(10, 4, 1);
    if (IS("relu")) return dc_relu_new();
    if (IS("leaky_relu")) return dc_leaky_relu_new(0.2f);
    if (IS("gelu")) return dc_gelu_new(DC_GELU_NONE);
    if (IS("gelu_tanh")) return dc_gelu_new(DC_GELU_TANH);
    if (IS("silu")) return dc_silu_new();
    if (IS("tanh")) return dc_tanh_new();
    if (IS("sigmoid")) return dc_sigmoid_new();
    if (IS("maxpool2d")) return dc_max_pool2d_new((dc_pool2d_args){.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
    if (IS("avgpool2d")) return dc_avg_pool2d_new((dc_pool2d_args){.kernel = {2, 2}, .count_include_pad = true});
    if (IS("avgpool2d_pad"))
        return dc_avg_pool2d_new((dc_pool2d_args){.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
    if (IS("adaptive_avgpool2d")) return dc_adaptive_avg_pool2d_new(2, 3);
    if (IS("flatten")) return dc_flatten_new(1, -1);
    if (IS("seq_mlp"))
        return DC_SEQUENTIAL(dc_linear_new(6, 8, true), dc_relu_new(),
                             DC_SEQUENTIAL(dc_linear_new(8, 8, true), dc_tanh_new()), dc_dropout_new(0.5f),
                             dc_linear_new(8, 3, true));
    if (IS("resnet_block")) return block_new(4, 8, 2);
    if (IS("resnet_block_eval")) return block_new(4, 4, 1);
    if (IS("small_cnn")) {
        dc_pool2d_args p2 = {.kernel = {2, 2}};
        /* one ReLU of each kind: the in-place one must give the same numbers */
        return DC_SEQUENTIAL(dc_conv2d_new(1, 4, 3, 3, (dc_conv2d_args){.padding = {1, 1}}, true), dc_relu_new(),
                             dc_max_pool2d_new(p2), dc_conv2d_new(4, 8, 3, 3, (dc_conv2d_args){.groups = 1}, false),
                             dc_batch_norm2d_new(8), dc_relu_inplace_new(), dc_max_pool2d_new(p2), dc_flatten_new(1, -1),
                             dc_linear_new(32, 16, true), dc_gelu_new(DC_GELU_NONE), dc_linear_new(16, 10, true));
    }
#undef IS
    fail_msg("no deepc module for case %s", n);
    return NULL;
}

/* The state_dict key list of m equals the fixture's (torch's order). */
static void check_keys(dc_module *m, dc_safetensors *st, const char *what)
{
    const char *keys = dc_safetensors_metadata(st, "keys");
    assert_non_null(keys);
    cJSON *j = cJSON_Parse(keys);
    assert_non_null(j);
    dc_tensor_list *sd = TL_CHECK(dc_module_state_dict(m));
    int n = cJSON_GetArraySize(j);
    for (int i = 0; i < n || i < sd->count; i++) {
        const char *want = i < n ? cJSON_GetArrayItem(j, i)->valuestring : "(none)";
        const char *got = i < sd->count ? sd->names[i] : "(none)";
        if (strcmp(want, got)) fail_msg("%s: state_dict key %d is \"%s\", PyTorch's is \"%s\"", what, i, got, want);
    }
    dc_tensor_list_free(sd);
    cJSON_Delete(j);
}

static void run_module_case(const char *name)
{
    dc_pool_mark mark = dc_pool_push();
    char path[128], what[200];
    snprintf(path, sizeof path, "nn/%s", name);
    dc_safetensors *st = tl_fixture(path);
    snprintf(path, sizeof path, "nn/%s_sd", name);
    dc_safetensors *sd = tl_fixture(path);
    dc_module *m = TL_CHECK(make_module(name));
    check_keys(m, st, name);
    TL_OK(dc_module_load_state_dict(m, sd, true));
    dc_module_train(m, tl_meta_num(st, "train") != 0);
    bool int_input = !strcmp(name, "embedding");
    dc_tensor *x = int_input ? tl_get_i64(st, "x") : tl_get(st, "x");
    if (!int_input) TL_OK(dc_set_requires_grad(x, true));
    int passes = (int)tl_meta_num(st, "passes");
    dc_tensor *out = NULL;
    for (int i = 0; i < passes; i++) out = TL_CHECK(dc_module_forward(m, x));
    snprintf(what, sizeof what, "%s forward", name);
    tl_check(out, tl_get(st, "out"), what);
    TL_OK(dc_backward(out, tl_get(st, "gy"), false));
    if (!int_input) {
        snprintf(what, sizeof what, "%s grad.x", name);
        if (!x->grad) fail_msg("%s: no gradient", what);
        tl_check(x->grad, tl_get(st, "grad.x"), what);
    }
    dc_tensor_list *params = TL_CHECK(dc_module_named_parameters(m));
    for (int i = 0; i < params->count; i++) {
        char key[160];
        snprintf(key, sizeof key, "grad.%s", params->names[i]);
        snprintf(what, sizeof what, "%s %s", name, key);
        if (!dc_safetensors_has(st, key)) fail_msg("%s: not in the fixture", what);
        if (!params->tensors[i]->grad) fail_msg("%s: no gradient", what);
        tl_check(params->tensors[i]->grad, tl_get(st, key), what);
    }
    dc_tensor_list_free(params);
    dc_tensor_list *bufs = TL_CHECK(dc_module_named_buffers(m));
    for (int i = 0; i < bufs->count; i++) {
        char key[160];
        snprintf(key, sizeof key, "after.%s", bufs->names[i]);
        snprintf(what, sizeof what, "%s %s", name, key);
        dc_tensor *b = bufs->tensors[i];
        if (b->dtype == DC_I64) {
            int64_t want = (int64_t)dc_item(tl_get_i64(st, key));
            if ((int64_t)dc_item(b) != want) fail_msg("%s: %lld, PyTorch %lld", what, (long long)dc_item(b), (long long)want);
        } else {
            tl_check(b, tl_get(st, key), what);
        }
    }
    dc_tensor_list_free(bufs);
    dc_module_free(m);
    dc_safetensors_close(sd);
    dc_safetensors_close(st);
    dc_pool_pop(mark);
}

#define MODULE_TEST(n) \
    static void test_##n(void **state) { (void)state; run_module_case(#n); }
MODULE_TEST(linear)
MODULE_TEST(linear_nobias)
MODULE_TEST(conv2d)
MODULE_TEST(conv2d_groups)
MODULE_TEST(conv_transpose2d)
MODULE_TEST(batchnorm2d_train)
MODULE_TEST(batchnorm2d_train2)
MODULE_TEST(batchnorm2d_eval)
MODULE_TEST(batchnorm1d_train)
MODULE_TEST(batchnorm1d_3d)
MODULE_TEST(batchnorm1d_cumulative)
MODULE_TEST(batchnorm2d_noaffine)
MODULE_TEST(batchnorm2d_notrack)
MODULE_TEST(layernorm)
MODULE_TEST(layernorm_noaffine)
MODULE_TEST(groupnorm)
MODULE_TEST(embedding)
MODULE_TEST(relu)
MODULE_TEST(leaky_relu)
MODULE_TEST(gelu)
MODULE_TEST(gelu_tanh)
MODULE_TEST(silu)
MODULE_TEST(tanh)
MODULE_TEST(sigmoid)
MODULE_TEST(maxpool2d)
MODULE_TEST(avgpool2d)
MODULE_TEST(avgpool2d_pad)
MODULE_TEST(adaptive_avgpool2d)
MODULE_TEST(flatten)
MODULE_TEST(seq_mlp)
MODULE_TEST(resnet_block)
MODULE_TEST(resnet_block_eval)
MODULE_TEST(small_cnn)

/* ---------------------------------------------------------------------------------------
 * Initialisation: dc_manual_seed(s) + constructing == torch.manual_seed(s) + constructing
 * ------------------------------------------------------------------------------------- */

static int init_bitwise = 0, init_total = 0;
static double init_worst = 0;

static dc_module *make_init(const char *n)
{
#define IS(s) (!strcmp(n, s))
    if (IS("linear")) return dc_linear_new(20, 7, true);
    if (IS("conv2d")) return dc_conv2d_new(3, 8, 3, 5, (dc_conv2d_args){.stride = {2, 2}, .padding = {1, 1}}, true);
    if (IS("conv2d_groups")) return dc_conv2d_new(4, 6, 3, 3, (dc_conv2d_args){.groups = 2}, true);
    if (IS("conv_transpose2d")) return dc_conv_transpose2d_new(4, 6, 3, 2, (dc_conv_transpose2d_args){.groups = 2}, true);
    if (IS("embedding")) return dc_embedding_new(10, 8, 2);
    if (IS("embedding_tail")) return dc_embedding_new(5, 7, DC_EMBEDDING_NO_PADDING);
    if (IS("embedding_small")) return dc_embedding_new(3, 4, DC_EMBEDDING_NO_PADDING);
    if (IS("mlp")) return DC_SEQUENTIAL(dc_linear_new(4, 8, true), dc_relu_new(), dc_linear_new(8, 3, true));
    if (IS("resnet_block")) return block_new(4, 8, 2);
#undef IS
    fail_msg("no init case %s", n);
    return NULL;
}

/* exact: every tensor must equal torch's bit for bit; otherwise within 1e-6 relative */
static void run_init(const char *name, bool exact)
{
    dc_pool_mark mark = dc_pool_push();
    char path[128], what[200];
    snprintf(path, sizeof path, "nn/init_%s", name);
    dc_safetensors *st = tl_fixture(path);
    dc_manual_seed((uint64_t)tl_meta_num(st, "seed"));
    dc_module *m = TL_CHECK(make_init(name));
    check_keys(m, st, name);
    dc_tensor_list *sd = TL_CHECK(dc_module_state_dict(m));
    for (int i = 0; i < sd->count; i++) {
        dc_tensor *t = sd->tensors[i];
        snprintf(what, sizeof what, "init %s %s", name, sd->names[i]);
        if (t->dtype != DC_F32) continue; /* num_batches_tracked: 0 (checked by the key test) */
        dc_tensor *e = tl_get(st, sd->names[i]);
        bool same = !memcmp(dc_data(t), dc_data(e), (size_t)dc_numel(t) * 4);
        init_total++;
        init_bitwise += same;
        double err = tl_max_rel_error(t, e);
        if (err > init_worst) init_worst = err;
        if (exact && !same) fail_msg("%s: not bit-identical to PyTorch (max rel error %.3g)", what, err);
        tl_assert_close(t, e, 1e-6, what);
    }
    /* the generator is left where torch's is: the next draws agree */
    dc_tensor *after = TL_CHECK(dc_rand(DC_SHAPE(5), dc_default_rng()));
    dc_tensor *want = tl_get(st, "after");
    snprintf(what, sizeof what, "init %s: torch.rand(5) after construction", name);
    if (memcmp(dc_data(after), dc_data(want), 5 * sizeof(float))) fail_msg("%s differs", what);
    dc_tensor_list_free(sd);
    dc_module_free(m);
    dc_safetensors_close(st);
    dc_pool_pop(mark);
}

static void test_init_exact(void **state)
{
    (void)state;
    const char *cases[] = {"linear", "conv2d", "conv2d_groups", "conv_transpose2d", "mlp", "resnet_block",
                           "embedding_small"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_init(cases[i], true);
}

/* Embedding's N(0, 1): torch's AVX2 normal_ kernel (blocks of 16, a redone tail) and the
 * double-precision path for tensors under 16 elements, also bit for bit. */
static void test_init_normal(void **state)
{
    (void)state;
    run_init("embedding", true);
    run_init("embedding_tail", true);
    printf("init: %d of %d tensors bit-identical to PyTorch; worst relative error %.3g\n", init_bitwise,
           init_total, init_worst);
}

static void test_init_functions(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_tensor *w = dc_zeros(DC_F32, DC_SHAPE(64, 32, 3, 3));
    int64_t fi, fo;
    TL_OK(dc_init_fans(w, &fi, &fo));
    assert_int_equal(fi, 32 * 9);
    assert_int_equal(fo, 64 * 9);
    assert_true(fabs(dc_init_calculate_gain("leaky_relu", sqrt(5.0)) - sqrt(1.0 / 3)) < 1e-15);
    assert_true(dc_init_calculate_gain("relu", NAN) == sqrt(2.0));
    assert_true(isnan(dc_init_calculate_gain("nope", NAN)));
    dc_rng rng;
    dc_rng_seed(&rng, 3);
    TL_OK(dc_init_kaiming_uniform_(w, 0, DC_FAN_IN, "relu", &rng));
    double bound = sqrt(2.0) * sqrt(3.0 / (32 * 9)), sum = 0, sq = 0;
    const float *p = dc_data_f32(w);
    int64_t n = dc_numel(w);
    for (int64_t i = 0; i < n; i++) {
        assert_true(fabs(p[i]) <= bound);
        sum += p[i];
        sq += (double)p[i] * p[i];
    }
    /* U(-b, b) has variance b^2 / 3 */
    assert_true(fabs(sum / n) < 0.01 * bound);
    assert_true(fabs(sq / n / (bound * bound / 3) - 1) < 0.05);
    TL_OK(dc_init_xavier_normal_(w, 1.0, &rng));
    sq = 0;
    for (int64_t i = 0; i < n; i++) sq += (double)p[i] * p[i];
    assert_true(fabs(sq / n / (2.0 / (fi + fo)) - 1) < 0.05);
    assert_int_not_equal(dc_init_fans(dc_zeros(DC_F32, DC_SHAPE(3)), &fi, &fo), DC_OK);
    assert_int_not_equal(dc_init_uniform_(dc_zeros(DC_I64, DC_SHAPE(3)), 0, 1, NULL), DC_OK);
    dc_pool_pop(mark);
}

/* ---------------------------------------------------------------------------------------
 * train / eval
 * ------------------------------------------------------------------------------------- */

static void test_train_eval(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_manual_seed(0);
    dc_module *net = TL_CHECK(DC_SEQUENTIAL(dc_batch_norm1d_new(4), dc_dropout_new(0.5f)));
    dc_module *bn = TL_CHECK(dc_module_child(net, "0"));
    dc_module *drop = TL_CHECK(dc_module_child(net, "1"));
    assert_true(net->training && bn->training && drop->training);
    dc_tensor *x = TL_CHECK(dc_randn(DC_SHAPE(256, 4), NULL));
    dc_tensor *rm = TL_CHECK(dc_module_tensor(net, "0.running_mean"));
    dc_tensor *nbt = TL_CHECK(dc_module_tensor(net, "0.num_batches_tracked"));
    /* training: batch statistics, running stats move, dropout zeroes about half */
    dc_tensor *y = TL_CHECK(dc_module_forward(net, x));
    assert_int_equal((int64_t)dc_item(nbt), 1);
    float rm0 = dc_data_f32(rm)[0];
    assert_true(rm0 != 0.0f);
    int64_t zeros = 0, n = dc_numel(y);
    const float *py = dc_data_f32(y);
    for (int64_t i = 0; i < n; i++) zeros += py[i] == 0.0f;
    assert_true(zeros > n / 2 - 100 && zeros < n / 2 + 100);
    /* eval propagates to children: running stats used and left alone, dropout is identity */
    dc_module_eval(net);
    assert_true(!net->training && !bn->training && !drop->training);
    y = TL_CHECK(dc_module_forward(net, x));
    assert_int_equal((int64_t)dc_item(nbt), 1);
    assert_true(dc_data_f32(rm)[0] == rm0);
    dc_tensor *ref = TL_CHECK(dc_module_forward(bn, x));
    tl_assert_close(y, ref, 0, "eval: dropout is the identity");
    /* the eval BatchNorm is (x - running_mean) / sqrt(running_var + eps) * w + b */
    dc_tensor *rv = TL_CHECK(dc_module_tensor(net, "0.running_var"));
    float expect = (dc_data_f32(x)[0] - rm0) / sqrtf(dc_data_f32(rv)[0] + 1e-5f);
    assert_true(fabsf(dc_data_f32(ref)[0] - expect) < 1e-5f * (1 + fabsf(expect)));
    dc_module_train(net, true);
    assert_true(bn->training && drop->training);
    dc_module_free(net);
    dc_pool_pop(mark);
}

/* ---------------------------------------------------------------------------------------
 * load_state_dict errors, dtype conversion, save round trips
 * ------------------------------------------------------------------------------------- */

static void test_load_errors(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_safetensors *with_bias = tl_fixture("nn/linear_sd");        /* weight [3, 5], bias [3] */
    dc_safetensors *no_bias = tl_fixture("nn/linear_nobias_sd");   /* weight [4, 6] */
    /* missing */
    dc_module *m = TL_CHECK(dc_linear_new(6, 4, true));
    dc_tensor *w = TL_CHECK(dc_module_tensor(m, "weight"));
    float w0 = dc_data_f32(w)[0];
    assert_int_equal(dc_module_load_state_dict(m, no_bias, true), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "missing key \"bias\""));
    assert_true(dc_data_f32(w)[0] == w0); /* nothing copied */
    TL_OK(dc_module_load_state_dict(m, no_bias, false)); /* non-strict: loads what is there */
    assert_true(dc_data_f32(w)[0] != w0);
    dc_module_free(m);
    /* unexpected */
    m = TL_CHECK(dc_linear_new(5, 3, false));
    assert_int_equal(dc_module_load_state_dict(m, with_bias, true), DC_ERR_FORMAT);
    assert_non_null(strstr(dc_last_error(), "unexpected key \"bias\""));
    TL_OK(dc_module_load_state_dict(m, with_bias, false));
    dc_module_free(m);
    /* mis-shaped: refused even when not strict */
    m = TL_CHECK(dc_linear_new(5, 4, true));
    assert_int_equal(dc_module_load_state_dict(m, with_bias, false), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "\"weight\""));
    assert_non_null(strstr(dc_last_error(), "[3, 5]"));
    assert_non_null(strstr(dc_last_error(), "[4, 5]"));
    dc_module_free(m);
    /* nested names: loading a block's state into a different block names the first culprit */
    dc_safetensors *blk = tl_fixture("nn/resnet_block_sd");
    m = TL_CHECK(block_new(4, 4, 1)); /* no downsample */
    assert_int_equal(dc_module_load_state_dict(m, blk, true), DC_ERR_SHAPE);
    assert_non_null(strstr(dc_last_error(), "conv1.weight"));
    dc_module_free(m);
    m = TL_CHECK(block_new(4, 8, 1)); /* stride 1 but the same shapes and names: loads */
    TL_OK(dc_module_load_state_dict(m, blk, true));
    dc_module_free(m);
    /* a state dict without num_batches_tracked (older PyTorch) loads strictly; it becomes 0 */
    char file[256];
    snprintf(file, sizeof file, "/tmp/deepc_test_nn_%d_bn.safetensors", (int)getpid());
    dc_tensor *ones = dc_ones(DC_F32, DC_SHAPE(3));
    dc_named_tensor items[] = {{"weight", ones}, {"bias", ones}, {"running_mean", ones}, {"running_var", ones}};
    TL_OK(dc_safetensors_save(file, 4, items, NULL));
    m = TL_CHECK(dc_batch_norm2d_new(3));
    dc_tensor *nbt = TL_CHECK(dc_module_tensor(m, "num_batches_tracked"));
    *(int64_t *)dc_data(nbt) = 5;
    TL_OK(dc_module_load(m, file, true));
    assert_int_equal(*(int64_t *)dc_data(nbt), 0);
    assert_true(dc_data_f32(TL_CHECK(dc_module_tensor(m, "running_mean")))[2] == 1.0f);
    dc_module_free(m);
    unlink(file);
    assert_int_not_equal(dc_module_load(NULL, file, true), DC_OK);
    m = TL_CHECK(dc_relu_new());
    assert_int_equal(dc_module_load(m, "/nonexistent/x.safetensors", true), DC_ERR_IO);
    dc_module_free(m);
    dc_safetensors_close(blk);
    dc_safetensors_close(with_bias);
    dc_safetensors_close(no_bias);
    dc_pool_pop(mark);
}

static void test_half_precision_load(void **state)
{
    (void)state;
    const char *files[] = {"nn/linear_f16_sd", "nn/linear_bf16_sd"};
    for (int f = 0; f < 2; f++) {
        dc_pool_mark mark = dc_pool_push();
        dc_safetensors *st = tl_fixture(files[f]);
        dc_module *m = TL_CHECK(dc_linear_new(4, 3, true));
        TL_OK(dc_module_load_state_dict(m, st, true));
        /* exactly the stored half values, widened */
        tl_assert_close(TL_CHECK(dc_module_tensor(m, "weight")), tl_get(st, "weight"), 0, files[f]);
        tl_assert_close(TL_CHECK(dc_module_tensor(m, "bias")), tl_get(st, "bias"), 0, files[f]);
        dc_module_free(m);
        dc_safetensors_close(st);
        dc_pool_pop(mark);
    }
}

static void test_save_roundtrip(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    char file[256];
    snprintf(file, sizeof file, "/tmp/deepc_test_nn_%d_block.safetensors", (int)getpid());
    dc_manual_seed(1);
    dc_module *a = TL_CHECK(block_new(4, 8, 2));
    /* make the buffers non-trivial: one training forward */
    TL_CHECK(dc_module_forward(a, TL_CHECK(dc_randn(DC_SHAPE(2, 4, 6, 6), NULL))));
    const char *meta[] = {"format", "pt", NULL};
    TL_OK(dc_module_save(a, file, meta));
    dc_manual_seed(2);
    dc_module *b = TL_CHECK(block_new(4, 8, 2));
    TL_OK(dc_module_load(b, file, true));
    dc_tensor_list *sa = TL_CHECK(dc_module_state_dict(a)), *sb = TL_CHECK(dc_module_state_dict(b));
    assert_int_equal(sa->count, sb->count);
    assert_int_equal(sa->count, 18);
    for (int i = 0; i < sa->count; i++) {
        assert_string_equal(sa->names[i], sb->names[i]);
        size_t bytes = (size_t)dc_numel(sa->tensors[i]) * dc_dtype_size(sa->tensors[i]->dtype);
        if (memcmp(dc_data(sa->tensors[i]), dc_data(sb->tensors[i]), bytes)) fail_msg("%s differs after reload", sa->names[i]);
    }
    assert_int_equal(*(int64_t *)dc_data(TL_CHECK(dc_module_tensor(b, "bn1.num_batches_tracked"))), 1);
    dc_safetensors *st = TL_CHECK(dc_safetensors_open(file));
    assert_string_equal(dc_safetensors_metadata(st, "format"), "pt");
    dc_dtype dt;
    int nd;
    int64_t shape[DC_MAX_DIMS];
    assert_true(dc_safetensors_info(st, "downsample.1.num_batches_tracked", &dt, &nd, shape));
    assert_int_equal(dt, DC_I64);
    assert_int_equal(nd, 0);
    dc_safetensors_close(st);
    dc_tensor_list_free(sa);
    dc_tensor_list_free(sb);
    dc_module_free(a);
    dc_module_free(b);
    unlink(file);
    dc_pool_pop(mark);
}

/* ---------------------------------------------------------------------------------------
 * The module API itself
 * ------------------------------------------------------------------------------------- */

static const dc_module_vtable tied_vt = {.type = "Tied"};
static const dc_module_vtable head_vt = {.type = "Head"};

static void test_module_api(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_module *net = TL_CHECK(DC_SEQUENTIAL(dc_linear_new(3, 4, true), dc_relu_new(), dc_linear_new(4, 2, false)));
    assert_string_equal(dc_module_type(net), "Sequential");
    assert_int_equal(dc_module_num_parameters(net), 3 * 4 + 4 + 4 * 2);
    assert_string_equal(dc_module_type(TL_CHECK(dc_module_child(net, "2"))), "Linear");
    assert_null(dc_module_child(net, "3"));
    assert_non_null(strstr(dc_last_error(), "\"3\""));
    assert_null(dc_module_tensor(net, "0.nope"));
    assert_null(dc_module_tensor(net, "1.weight"));
    dc_tensor *w2 = TL_CHECK(dc_module_tensor(net, "2.weight"));
    assert_true(w2->requires_grad);
    assert_int_equal(w2->shape[0], 2);
    /* append, and a ModuleList (no forward) */
    TL_OK(dc_sequential_append(net, dc_tanh_new()));
    assert_string_equal(net->children[3].name, "3");
    dc_module *list = TL_CHECK(dc_module_list_new());
    TL_OK(dc_module_list_append(list, dc_linear_new(2, 2, true)));
    TL_OK(dc_module_list_append(list, dc_linear_new(2, 2, true)));
    assert_null(dc_module_forward(list, w2));
    assert_int_equal(dc_last_status(), DC_ERR_UNSUPPORTED);
    dc_tensor_list *keys = TL_CHECK(dc_module_state_dict(list));
    assert_int_equal(keys->count, 4);
    assert_string_equal(keys->names[3], "1.bias");
    dc_tensor_list_free(keys);
    /* shared parameters: listed once by named_parameters, under every name by state_dict */
    dc_module *tied = TL_CHECK(dc_module_new(&tied_vt, sizeof(dc_module)));
    dc_module *emb = TL_CHECK(dc_module_add_child(tied, "wte", dc_embedding_new(5, 3, DC_EMBEDDING_NO_PADDING)));
    dc_module *head = TL_CHECK(dc_module_add_child(tied, "lm_head", dc_module_new(&head_vt, sizeof(dc_module))));
    TL_CHECK(dc_module_add_parameter(head, "weight", TL_CHECK(dc_module_tensor(emb, "weight"))));
    dc_tensor_list *np = TL_CHECK(dc_module_named_parameters(tied));
    dc_tensor_list *sd = TL_CHECK(dc_module_state_dict(tied));
    assert_int_equal(np->count, 1);
    assert_int_equal(sd->count, 2);
    assert_string_equal(sd->names[1], "lm_head.weight");
    assert_int_equal(dc_module_num_parameters(tied), 15);
    dc_tensor_list_free(np);
    dc_tensor_list_free(sd);
    /* registration errors mark the module failed: finish frees it */
    assert_null(dc_module_add_parameter(head, "weight", w2));
    assert_non_null(strstr(dc_last_error(), "already exists"));
    assert_null(dc_module_add_parameter(head, "a.b", w2));
    assert_non_null(strstr(dc_last_error(), "must not contain"));
    assert_null(dc_module_add_child(tied, "again", emb)); /* already has a parent */
    dc_tensor *nonleaf = dc_mul_scalar(w2, 2.0f);
    if (nonleaf) assert_null(dc_module_add_parameter(head, "c", nonleaf));
    assert_null(dc_module_finish(tied));
    /* a NULL inside DC_SEQUENTIAL (a failed constructor) frees the rest and returns NULL */
    assert_null(DC_SEQUENTIAL(dc_linear_new(2, 2, true), dc_linear_new(-1, 2, true), dc_relu_new()));
    assert_non_null(strstr(dc_last_error(), "negative"));
    assert_null(dc_conv2d_new(3, 4, 3, 3, (dc_conv2d_args){.groups = 2}, true));
    assert_null(dc_group_norm_new(4, 6, 1e-5f, true));
    assert_null(dc_embedding_new(4, 2, 4));
    assert_null(dc_dropout_new(1.5f));
    /* input shape errors name the module */
    dc_module *lin = dc_module_child(net, "0");
    assert_null(dc_module_forward(lin, TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 5)))));
    assert_non_null(strstr(dc_last_error(), "Linear(3, 4)"));
    dc_module *bn = TL_CHECK(dc_batch_norm2d_new(3));
    assert_null(dc_module_forward(bn, TL_CHECK(dc_zeros(DC_F32, DC_SHAPE(2, 4, 5, 5)))));
    assert_non_null(strstr(dc_last_error(), "BatchNorm2d(3)"));
    assert_null(dc_module_forward(NULL, w2));
    dc_module_free(bn);
    dc_module_free(list);
    dc_module_free(net);
    dc_module_free(NULL);
    dc_pool_pop(mark);
}

/* In inference a Sequential keeps only the activations in flight, not one per layer: 12
 * layers over a 512 KiB activation peak at a few activations above the start. */
static void test_sequential_inference_memory(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_module *net = dc_sequential_new(0, NULL);
    for (int i = 0; i < 6; i++) {
        TL_OK(dc_sequential_append(net, dc_linear_new(256, 256, true)));
        TL_OK(dc_sequential_append(net, dc_relu_inplace_new()));
    }
    dc_module_eval(net);
    dc_tensor *x = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(512, 256)));
    const size_t act = 512 * 256 * sizeof(float);
    bool prev = dc_set_grad_enabled(false);
    size_t before = dc_mem_allocated();
    dc_mem_reset_peak();
    dc_tensor *y = TL_CHECK(dc_module_forward(net, x));
    dc_set_grad_enabled(prev);
    size_t extra = dc_mem_peak() - before;
    if (extra > 3 * act) fail_msg("inference peak %zu bytes above the start, more than 3 activations (%zu)", extra, 3 * act);
    assert_int_equal(y->shape[1], 256);
    dc_module_free(net);
    dc_pool_pop(mark);
}

/* Modules made and used with no pool active: the caller owns results, modules own params. */
static void test_no_pool(void **state)
{
    (void)state;
    dc_module *m = TL_CHECK(dc_linear_new(3, 2, true));
    dc_tensor *x = TL_CHECK(dc_ones(DC_F32, DC_SHAPE(1, 3)));
    dc_tensor *y = TL_CHECK(dc_module_forward(m, x));
    assert_int_equal(y->shape[1], 2);
    dc_tensor_release(y);
    dc_tensor_release(x);
    dc_module_free(m);
}

/* The embedding's padding row: looked up like any row, but it gets no gradient. */
static void test_embedding_padding(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_manual_seed(0);
    dc_module *m = TL_CHECK(dc_embedding_new(3, 2, 1));
    dc_tensor *w = TL_CHECK(dc_module_tensor(m, "weight"));
    assert_true(dc_data_f32(w)[2] == 0.0f && dc_data_f32(w)[3] == 0.0f);
    dc_tensor *idx = TL_CHECK(dc_from_data(DC_I64, DC_SHAPE(4), (int64_t[]){0, 1, 2, 1}));
    dc_data_f32(w)[2] = 0.5f; /* a non-zero padding row still looks up its value */
    dc_tensor *out = TL_CHECK(dc_module_forward(m, idx));
    assert_true(dc_data_f32(out)[2] == 0.5f);
    TL_OK(dc_backward(TL_CHECK(dc_sum_all(dc_mul(out, out))), NULL, false));
    const float *g = dc_data_f32(w->grad);
    assert_true(g[2] == 0.0f && g[3] == 0.0f);        /* padding row: no gradient */
    assert_true(fabsf(g[0] - 2 * dc_data_f32(w)[0]) < 1e-6f); /* d(sum o^2)/dw0 = 2 w0 */
    dc_module_free(m);
    dc_pool_pop(mark);
}

static dc_tensor *block_fn(dc_tensor **in, void *ctx)
{
    return dc_module_forward((dc_module *)ctx, in[0]);
}

static void test_block_gradcheck(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_manual_seed(5);
    dc_module *b = TL_CHECK(block_new(2, 3, 2));
    dc_module_eval(b); /* eval: a fixed function of x (running stats are not updated) */
    dc_tensor *x = TL_CHECK(dc_randn(DC_SHAPE(1, 2, 5, 5), NULL));
    TL_OK(dc_set_requires_grad(x, true));
    tl_gradcheck("BasicBlock input", block_fn, 1, &x, b, 1e-2, 1e-3, 1e-2);
    dc_module_free(b);
    dc_pool_pop(mark);
}

static void test_summary(void **state)
{
    (void)state;
    tl_report_worst("nn");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear), cmocka_unit_test(test_linear_nobias), cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_conv2d_groups), cmocka_unit_test(test_conv_transpose2d),
        cmocka_unit_test(test_batchnorm2d_train), cmocka_unit_test(test_batchnorm2d_train2),
        cmocka_unit_test(test_batchnorm2d_eval), cmocka_unit_test(test_batchnorm1d_train),
        cmocka_unit_test(test_batchnorm1d_3d), cmocka_unit_test(test_batchnorm1d_cumulative),
        cmocka_unit_test(test_batchnorm2d_noaffine), cmocka_unit_test(test_batchnorm2d_notrack),
        cmocka_unit_test(test_layernorm), cmocka_unit_test(test_layernorm_noaffine),
        cmocka_unit_test(test_groupnorm), cmocka_unit_test(test_embedding), cmocka_unit_test(test_relu),
        cmocka_unit_test(test_leaky_relu), cmocka_unit_test(test_gelu), cmocka_unit_test(test_gelu_tanh),
        cmocka_unit_test(test_silu), cmocka_unit_test(test_tanh), cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_maxpool2d), cmocka_unit_test(test_avgpool2d), cmocka_unit_test(test_avgpool2d_pad),
        cmocka_unit_test(test_adaptive_avgpool2d), cmocka_unit_test(test_flatten), cmocka_unit_test(test_seq_mlp),
        cmocka_unit_test(test_resnet_block), cmocka_unit_test(test_resnet_block_eval),
        cmocka_unit_test(test_small_cnn), cmocka_unit_test(test_init_exact), cmocka_unit_test(test_init_normal),
        cmocka_unit_test(test_init_functions), cmocka_unit_test(test_train_eval),
        cmocka_unit_test(test_load_errors), cmocka_unit_test(test_half_precision_load),
        cmocka_unit_test(test_save_roundtrip), cmocka_unit_test(test_module_api), cmocka_unit_test(test_no_pool),
        cmocka_unit_test(test_embedding_padding), cmocka_unit_test(test_block_gradcheck),
        cmocka_unit_test(test_summary), cmocka_unit_test(test_sequential_inference_memory),
    };
    return TL_RUN(tests);
}
