/* bench_matmul.c: the backend SGEMM (OpenBLAS loaded by src/backend/cpu/blas.c, with the
 * kernels deepc picks for the CPU) on square and layer-shaped products; bench/bench_matmul.py
 * times the same products in PyTorch and in numpy (OpenBLAS called directly), and
 * bench/run_core.sh prints the ratios (see bench/README.md).
 *
 *   bench_matmul [--reps R] [--only NAME]
 *
 * Each figure is the best of R runs after one warm-up (the minimum: the build machines are
 * shared, and other processes only ever add time). Output lines "RESULT name ms gflop" are
 * what run_core.sh reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deepc/core.h"
#include "backend/backend.h"

typedef struct shape {
    const char *name;
    int m, n, k;
    int ta, tb;
} shape;

/* square sizes, then the products of a linear layer's forward / backward at batch 128 */
static const shape SHAPES[] = {
    {"sgemm_256", 256, 256, 256, 0, 0},
    {"sgemm_512", 512, 512, 512, 0, 0},
    {"sgemm_1024", 1024, 1024, 1024, 0, 0},
    {"sgemm_2048", 2048, 2048, 2048, 0, 0},
    {"linear_fwd_128x4096x1024", 128, 4096, 1024, 0, 1},
    {"linear_dw_4096x1024x128", 4096, 1024, 128, 1, 0},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int reps = 10;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--reps R] [--only NAME]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    dc_init();
    const dc_backend *be = dc_backend_get(DC_CPU);
    printf("deepc backend sgemm, %d threads, BLAS: %s\n", dc_get_num_threads(), dc_blas_info());
    printf("%-28s %10s %10s\n", "shape", "ms", "GFLOP/s");
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++) {
        const shape *sh = &SHAPES[s];
        if (only && !strstr(sh->name, only)) continue;
        size_t na = (size_t)sh->m * sh->k, nb = (size_t)sh->k * sh->n, nc = (size_t)sh->m * sh->n;
        float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
        if (!a || !b || !c) {
            fprintf(stderr, "bench_matmul: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < na; i++) a[i] = (float)((i * 7) % 13) * 0.1f - 0.6f;
        for (size_t i = 0; i < nb; i++) b[i] = (float)((i * 5) % 11) * 0.1f - 0.5f;
        int64_t lda = sh->ta ? sh->m : sh->k, ldb = sh->tb ? sh->k : sh->n;
        double best = 1e30;
        for (int r = 0; r <= reps; r++) {
            double t0 = now();
            if (be->gemm(sh->ta ? DC_TRANS : DC_NO_TRANS, sh->tb ? DC_TRANS : DC_NO_TRANS, sh->m, sh->n, sh->k, 1.0f,
                         a, lda, b, ldb, 0.0f, c, sh->n)) {
                fprintf(stderr, "bench_matmul: %s\n", dc_last_error());
                return 1;
            }
            double t = now() - t0;
            if (r > 0 && t < best) best = t; /* run 0 is the warm-up */
        }
        double gflop = 2.0 * sh->m * sh->n * (double)sh->k * 1e-9;
        printf("%-28s %10.3f %10.1f\n", sh->name, best * 1e3, gflop / best);
        printf("RESULT %s %.6f %.4f\n", sh->name, best * 1e3, gflop);
        fflush(stdout);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
