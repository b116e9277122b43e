/* bench_sd.c: deepc side of bench/run_sd.sh: seconds per UNet step of the full-size SD 1.5
 * UNet at 512x512 (64x64 latents), batch 2 (classifier-free guidance), or one VAE decode of a
 * 64x64 latent, with the random weights of tools/make_sd_bench_models.py (mmap'd F32, or the
 * F16 file with --half). Prints one JSON line: median seconds, this process's peak RSS and the
 * peak of deepc's tensor and scratch memory (dc_mem_peak: what the rest of the RSS is not).
 *   bench_sd --what unet|vae [--models DIR] [--threads 2] [--reps 3] [--half] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "deepc/deepc.h"
#include "deepc/diffusion.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *what = "unet", *models = "/tmp/deepc-sd-bench";
    int threads = 2, reps = 3;
    bool half = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--what") && i + 1 < argc) what = argv[++i];
        else if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--half")) half = true;
        else {
            fprintf(stderr, "usage: bench_sd --what unet|vae [--models DIR] [--threads N] [--reps N] [--half]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 100) reps = 3;
    dc_set_num_threads(threads);
    dc_set_grad_enabled(false);
    char dir[1024];
    dc_rng rng;
    dc_rng_seed(&rng, 0);
    double times[100];
    dc_pool_mark m = dc_pool_push();
    dc_unet *u = NULL;
    dc_vae *v = NULL;
    if (!strcmp(what, "unet")) {
        snprintf(dir, sizeof dir, "%s/%s", models, half ? "unet-fp16" : "unet");
        u = dc_unet_load(dir, DC_F32);
    } else {
        snprintf(dir, sizeof dir, "%s/vae", models);
        v = dc_vae_load(dir, half ? DC_F16 : DC_F32);
    }
    if (!u && !v) {
        fprintf(stderr, "bench_sd: %s\n", dc_last_error());
        return 1;
    }
    dc_tensor *x = dc_randn(4, (int64_t[]){u ? 2 : 1, 4, 64, 64}, &rng);
    dc_tensor *ctx = dc_randn(3, (int64_t[]){2, 77, 768}, &rng);
    const float t[2] = {500, 500};
    for (int r = 0; r <= reps; r++) { /* r = 0: warm-up */
        dc_pool_mark rm = dc_pool_push();
        double t0 = now();
        dc_tensor *y = u ? dc_unet_forward(u, x, t, ctx, NULL) : dc_vae_decode(v, x, 0);
        double dt = now() - t0;
        if (!y) {
            fprintf(stderr, "bench_sd: %s\n", dc_last_error());
            return 1;
        }
        if (r > 0) times[r - 1] = dt;
        dc_pool_pop(rm);
    }
    qsort(times, (size_t)reps, sizeof(double), cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"what\": \"%s\", \"half\": %s, \"seconds\": %.3f, \"peak_rss_mb\": %.0f, \"tensor_peak_mb\": %.0f}\n",
           what, half ? "true" : "false", times[reps / 2], (double)ru.ru_maxrss / 1024.0,
           (double)dc_mem_peak() / 1048576.0);
    dc_pool_pop(m);
    dc_unet_free(u);
    dc_vae_free(v);
    return 0;
}
