/* bench_train.c: deepc's CNN training and inference throughput, measured exactly as
 * bench/bench_train.py measures PyTorch (random data held in memory, batches by random
 * index, timing forward + backward + Adam step + loss read-out). bench/run_train.sh runs
 * both and prints the ratios.
 *
 *   bench_train --model lenet5 --batch 64 --threads 2 --steps 200 [--infer-batch 1 [--infer-reps N]]
 *
 * Prints one JSON line: {"framework":"deepc","model",...,"train_images_per_second",...}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "deepc/deepc.h"
#include "deepc/models.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *model = "lenet5";
    int batch = 64, threads = 2, steps = 100, warmup = 5, channels = 0, size = 0, infer_batch = 0;
    int infer_reps = 0; /* 0: 2000 images' worth (at least 50 batches) */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--channels")) channels = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--infer-batch")) infer_batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--infer-reps")) infer_reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_train: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    dc_set_num_threads(threads);
    int c = channels ? channels : (!strcmp(model, "lenet5") ? 1 : 3);
    int s = size ? size : (c == 1 ? 28 : 32);
    int64_t n = batch * 8 > 1024 ? batch * 8 : 1024;
    dc_manual_seed(0);
    dc_rng rng;
    dc_rng_seed(&rng, 0);
    dc_tensor *x = dc_randn(DC_SHAPE(n, c, s, s), &rng);
    int64_t *labels = malloc((size_t)n * sizeof *labels);
    for (int64_t i = 0; i < n; i++) labels[i] = (int64_t)dc_rng_below(&rng, 10);
    dc_module *net = dc_cnn_new(model, c, s, 10, NULL);
    if (!x || !net) {
        fprintf(stderr, "bench_train: %s\n", dc_last_error());
        return 1;
    }
    dc_tensor_list *p = dc_module_named_parameters(net);
    dc_optimizer *opt = dc_adam_new(p->count, p->tensors, dc_adam_options(1e-3));
    float *xb = malloc((size_t)batch * c * s * s * sizeof(float));
    int64_t *yb = malloc((size_t)batch * sizeof(int64_t));
    const float *xd = dc_data_f32(x);
    size_t img = (size_t)c * s * s;
    double t0 = 0;
    for (int it = 0; it < warmup + steps; it++) {
        if (it == warmup) t0 = now();
        for (int b = 0; b < batch; b++) { /* x[idx] gather, as PyTorch's x[idx] */
            int64_t k = (int64_t)dc_rng_below(&rng, (uint64_t)n);
            memcpy(xb + b * img, xd + k * img, img * sizeof(float));
            yb[b] = labels[k];
        }
        dc_pool_mark m = dc_pool_push();
        dc_tensor *xt = dc_from_external(DC_F32, 4, (int64_t[]){batch, c, s, s}, xb, NULL, NULL);
        dc_tensor *yt = dc_from_external(DC_I64, 1, (int64_t[]){batch}, yb, NULL, NULL);
        dc_tensor *loss = dc_cross_entropy(dc_module_forward(net, xt), yt, DC_REDUCE_MEAN, DC_IGNORE_INDEX_DEFAULT, 0.0f);
        dc_optimizer_zero_grad(opt);
        if (!loss || dc_backward(loss, NULL, false) || dc_optimizer_step(opt)) {
            fprintf(stderr, "bench_train: %s\n", dc_last_error());
            return 1;
        }
        volatile double l = dc_item(loss);
        (void)l;
        dc_pool_pop(m);
    }
    double dt = now() - t0;
    printf("{\"framework\": \"deepc\", \"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"input\": [%d, %d, %d], "
           "\"train_images_per_second\": %.1f",
           model, batch, threads, c, s, s, steps * batch / dt);
    if (infer_batch > 0) {
        dc_module_eval(net);
        bool prev = dc_set_grad_enabled(false);
        dc_tensor *xi = dc_narrow(x, 0, 0, infer_batch);
        for (int i = 0; i < 20; i++) {
            dc_pool_mark m = dc_pool_push();
            dc_module_forward(net, xi);
            dc_pool_pop(m);
        }
        int reps = infer_reps > 0 ? infer_reps : 2000 / infer_batch > 50 ? 2000 / infer_batch : 50;
        double t1 = now();
        for (int i = 0; i < reps; i++) {
            dc_pool_mark m = dc_pool_push();
            dc_module_forward(net, xi);
            dc_pool_pop(m);
        }
        printf(", \"infer_batch\": %d, \"infer_images_per_second\": %.1f", infer_batch,
               reps * infer_batch / (now() - t1));
        dc_tensor_release(xi);
        dc_set_grad_enabled(prev);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* allocator_peak_mb: the most tensor and scratch memory live at once (the allocator's own
     * count, cached blocks excluded); the gap to peak_rss_mb is caches, data and code. */
    printf(", \"peak_rss_mb\": %.1f, \"allocator_peak_mb\": %.1f}\n", ru.ru_maxrss / 1024.0,
           (double)dc_mem_peak() / (1024.0 * 1024.0));
    dc_optimizer_free(opt);
    dc_tensor_list_free(p);
    dc_module_free(net);
    dc_tensor_release(x);
    free(labels);
    free(xb);
    free(yb);
    return 0;
}
