/* test_interop.c: checkpoints move between PyTorch and deepc. A LeNet-5 trained by PyTorch
 * (tools/fixtures_interop.py) loads into deepc's lenet5 by state_dict name and gives the same
 * logits and the same MNIST test accuracy; a deepc model saved and reloaded is unchanged. */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "support/testlib.h"

static dc_module *lenet_from_fixture(dc_safetensors **st_out)
{
    dc_safetensors *st = tl_fixture("interop/lenet5_mnist_torch");
    dc_module *m = TL_CHECK(dc_cnn_new("lenet5", 1, 28, 10, NULL));
    TL_OK(dc_module_load_state_dict(m, st, true));
    *st_out = st;
    return m;
}

static void test_torch_logits(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    dc_safetensors *st;
    dc_module *m = lenet_from_fixture(&st);
    dc_module_eval(m);
    dc_safetensors *lg = tl_fixture("interop/lenet5_mnist_torch_logits");
    bool prev = dc_set_grad_enabled(false);
    dc_tensor *y = TL_CHECK(dc_module_forward(m, tl_get(lg, "x")));
    dc_set_grad_enabled(prev);
    tl_assert_close(y, tl_get(lg, "logits"), TL_RTOL, "lenet5 logits of PyTorch weights");
    dc_safetensors_close(lg);
    dc_safetensors_close(st);
    dc_module_free(m);
    dc_pool_pop(mark);
}

static void test_torch_accuracy(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data", tl_shared_dir());
    dc_dataset *test = dc_dataset_load(DC_DATASET_MNIST, DC_SPLIT_TEST, dir);
    if (!test) fail_msg("MNIST test set not found under %s: %s", dir, dc_last_error());
    dc_safetensors *st;
    dc_module *m = lenet_from_fixture(&st);
    double torch_acc = tl_meta_num(st, "accuracy"), loss;
    dc_metrics met;
    TL_OK(dc_evaluate(m, test, NULL, test->count, 500, &loss, &met));
    print_message("PyTorch-trained LeNet-5: accuracy %.4f in PyTorch, %.4f in deepc (loss %.6f vs %.6f)\n", torch_acc,
                  met.accuracy, tl_meta_num(st, "loss"), loss);
    assert_true(fabs(met.accuracy - torch_acc) <= 0.0002 + 1e-9); /* +- 0.02 points */
    assert_true(fabs(loss - tl_meta_num(st, "loss")) <= 1e-4);
    dc_safetensors_close(st);
    dc_module_free(m);
    dc_dataset_free(test);
}

static void test_save_reload(void **state)
{
    (void)state;
    dc_pool_mark mark = dc_pool_push();
    const char *models[] = {"lenet5", "resnet20", "vgg11"};
    for (int i = 0; i < 3; i++) {
        dc_manual_seed((uint64_t)i);
        dc_module *a = TL_CHECK(dc_cnn_new(models[i], 3, 32, 10, NULL));
        dc_module *b = TL_CHECK(dc_cnn_new(models[i], 3, 32, 10, NULL));
        char path[] = "/tmp/deepc_interop_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        TL_OK(dc_module_save(a, path, NULL));
        TL_OK(dc_module_load(b, path, true));
        unlink(path);
        dc_tensor_list *sa = dc_module_state_dict(a), *sb = dc_module_state_dict(b);
        assert_int_equal(sa->count, sb->count);
        for (int k = 0; k < sa->count; k++) {
            assert_string_equal(sa->names[k], sb->names[k]);
            dc_tensor *fa = dc_to_dtype(sa->tensors[k], DC_F32), *fb = dc_to_dtype(sb->tensors[k], DC_F32);
            tl_assert_close(fb, fa, 0, sa->names[k]);
        }
        dc_tensor_list_free(sa);
        dc_tensor_list_free(sb);
        dc_module_free(a);
        dc_module_free(b);
    }
    dc_pool_pop(mark);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_logits),
        cmocka_unit_test(test_torch_accuracy),
        cmocka_unit_test(test_save_reload),
    };
    return TL_RUN(tests);
}
