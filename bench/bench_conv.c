/* bench_conv.c: deepc's conv2d forward and forward+backward on the layer shapes of ResNet-18
 * (CIFAR variant) and LeNet-5; bench/bench_conv.py times PyTorch on the same shapes and
 * bench/run_core.sh runs both and prints the ratios (see bench/README.md).
 *
 *   bench_conv [--batch N] [--reps R] [--only NAME]
 *
 * --batch sets the ResNet batch (default 128; LeNet always uses 64). Each figure is the
 * best of R timed runs after two warm-up runs (the minimum: the build machines are shared,
 * and other processes only ever add time). "fwd" runs with grad off; "fwd+bwd" runs the
 * forward with grad on and backward from a fixed output gradient, computing the gradients
 * of weight, bias (LeNet) and input (except for layers fed by the data: ResNet's stem and
 * LeNet's conv1), as training does. Each run is timed on the wall clock and in process CPU
 * time (all threads); on a loaded machine the CPU time is the steadier figure. Output lines
 * "RESULT name fwd_ms fwdbwd_ms gflop fwd_cpu_ms fwdbwd_cpu_ms" are what run_core.sh reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deepc/core.h"
#include "deepc/ops.h"

typedef struct shape {
    const char *name;
    int resnet; /* batch from --batch (else 64) */
    int c, o, hw, k, stride, pad;
    int bias, grad_x;
} shape;

static const shape SHAPES[] = {
    {"resnet_stem_3-64_32", 1, 3, 64, 32, 3, 1, 1, 0, 0},
    {"resnet_l1_64-64_32", 1, 64, 64, 32, 3, 1, 1, 0, 1},
    {"resnet_l2a_64-128_s2", 1, 64, 128, 32, 3, 2, 1, 0, 1},
    {"resnet_l2b_128-128_16", 1, 128, 128, 16, 3, 1, 1, 0, 1},
    {"resnet_l2ds_1x1_64-128_s2", 1, 64, 128, 32, 1, 2, 0, 0, 1},
    {"resnet_l3a_128-256_s2", 1, 128, 256, 16, 3, 2, 1, 0, 1},
    {"resnet_l3b_256-256_8", 1, 256, 256, 8, 3, 1, 1, 0, 1},
    {"resnet_l3ds_1x1_128-256_s2", 1, 128, 256, 16, 1, 2, 0, 0, 1},
    {"resnet_l4a_256-512_s2", 1, 256, 512, 8, 3, 2, 1, 0, 1},
    {"resnet_l4b_512-512_4", 1, 512, 512, 4, 3, 1, 1, 0, 1},
    {"resnet_l4ds_1x1_256-512_s2", 1, 256, 512, 8, 1, 2, 0, 0, 1},
    {"lenet_conv1_1-6_28", 0, 1, 6, 28, 5, 1, 2, 1, 0},
    {"lenet_conv2_6-16_14", 0, 6, 16, 14, 5, 1, 0, 1, 1},
};

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_conv: %s: %s\n", what, dc_last_error());
    exit(1);
}

typedef struct setup {
    dc_tensor *x, *w, *b, *gy;
    dc_conv2d_args args;
} setup;

/* one timed step; returns wall seconds, and process CPU seconds in *cpu */
static double step(setup *s, int backward, double *cpu)
{
    dc_pool_mark m = dc_pool_push();
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
    if (!backward) {
        bool prev = dc_set_grad_enabled(false);
        if (!dc_conv2d(s->x, s->w, s->b, s->args)) die("conv2d");
        dc_set_grad_enabled(prev);
    } else {
        dc_tensor *y = dc_conv2d(s->x, s->w, s->b, s->args);
        if (!y || dc_backward(y, s->gy, false)) die("conv2d backward");
    }
    double t = clock_s(CLOCK_MONOTONIC) - t0;
    *cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    dc_pool_pop(m);
    /* as PyTorch's zero_grad(set_to_none=True) between steps */
    dc_zero_grad(s->x);
    dc_zero_grad(s->w);
    dc_zero_grad(s->b);
    return t;
}

/* best wall time of reps runs (after two warm-ups); the best CPU time goes to *cpu */
static double best_time(setup *s, int backward, int reps, double *cpu)
{
    double ts[64], cs[64], c;
    if (reps > 64) reps = 64;
    for (int i = 0; i < 2; i++) step(s, backward, &c);
    for (int i = 0; i < reps; i++) ts[i] = step(s, backward, &cs[i]);
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    qsort(cs, (size_t)reps, sizeof *cs, cmp_double);
    *cpu = cs[0];
    return ts[0];
}

int main(int argc, char **argv)
{
    int batch = 128, reps = 7;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--batch N] [--reps R] [--only NAME]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    dc_init();
    printf("deepc conv2d, %d threads, BLAS: %s\n", dc_get_num_threads(), dc_blas_info());
    printf("%-28s %6s %10s %10s %10s %10s\n", "shape", "batch", "fwd ms", "GFLOP/s", "f+b ms", "GFLOP/s");
    dc_rng rng;
    dc_rng_seed(&rng, 0);
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
        const shape *sh = &SHAPES[i];
        if (only && !strstr(sh->name, only)) continue;
        int n = sh->resnet ? batch : 64;
        setup s = {0};
        s.args = (dc_conv2d_args){.stride = {sh->stride, sh->stride}, .padding = {sh->pad, sh->pad}};
        s.x = dc_randn(DC_SHAPE(n, sh->c, sh->hw, sh->hw), &rng);
        s.w = dc_randn(DC_SHAPE(sh->o, sh->c, sh->k, sh->k), &rng);
        s.b = sh->bias ? dc_randn(DC_SHAPE(sh->o), &rng) : NULL;
        if (!s.x || !s.w || (sh->bias && !s.b)) die("setup");
        if (sh->grad_x) dc_set_requires_grad(s.x, true);
        dc_set_requires_grad(s.w, true);
        if (s.b) dc_set_requires_grad(s.b, true);
        int64_t ohw = (sh->hw + 2 * sh->pad - sh->k) / sh->stride + 1;
        s.gy = dc_randn(DC_SHAPE(n, sh->o, ohw, ohw), &rng);
        if (!s.gy) die("setup");
        double flop = 2.0 * n * sh->o * (double)(ohw * ohw) * sh->c * sh->k * sh->k;
        double cf, cb;
        double tf = best_time(&s, 0, reps, &cf);
        double tb = best_time(&s, 1, reps, &cb);
        double fb_flop = flop * (sh->grad_x ? 3 : 2);
        printf("%-28s %6d %10.3f %10.1f %10.3f %10.1f\n", sh->name, n, tf * 1e3, flop / tf * 1e-9, tb * 1e3,
               fb_flop / tb * 1e-9);
        printf("RESULT %s %.6f %.6f %.1f %.6f %.6f\n", sh->name, tf * 1e3, tb * 1e3, fb_flop * 1e-9, cf * 1e3,
               cb * 1e3);
        fflush(stdout);
        dc_tensor_release(s.x);
        dc_tensor_release(s.w);
        dc_tensor_release(s.b);
        dc_tensor_release(s.gy);
    }
    return 0;
}
