/* runtime.c: library start-up (threads, BLAS selection, allocator settings) and the memory
 * and tensor counters used by tests and benchmarks. */
#include <malloc.h>
#include <omp.h>
#include <pthread.h>

#include "internal.h"

/* src/backend/cpu/blas.c */
dc_status dc__blas_load(void);
void dc__blas_set_threads(int n);

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int num_threads = 1;
static size_t mem_allocated, mem_peak;
static int64_t live_tensors;

static int env_threads(void)
{
    const char *names[] = {"DEEPC_NUM_THREADS", "OMP_NUM_THREADS"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        if (v && *v) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end == '\0' && n > 0 && n <= 1024) return (int)n;
            fprintf(stderr, "deepc: warning: ignoring %s=%s (expected a positive integer)\n", names[i], v);
        }
    }
    return omp_get_num_procs();
}

static void init_once_fn(void)
{
    /* Keep big blocks on the heap rather than mmap/munmap per allocation: a training step
     * frees and reallocates the same activation sizes every time. */
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    num_threads = env_threads();
    omp_set_num_threads(num_threads);
    dc__blas_load();
    dc__blas_set_threads(num_threads);
}

void dc__ensure_init(void) { pthread_once(&init_once, init_once_fn); }

dc_status dc_init(void)
{
    dc__ensure_init();
    return DC_OK;
}

void dc_set_num_threads(int n)
{
    dc__ensure_init();
    if (n < 1) n = 1;
    num_threads = n;
    omp_set_num_threads(n);
    dc__blas_set_threads(n);
}

int dc_get_num_threads(void)
{
    dc__ensure_init();
    return num_threads;
}

void dc__mem_add(size_t nbytes)
{
    size_t now = __atomic_add_fetch(&mem_allocated, nbytes, __ATOMIC_RELAXED);
    size_t peak = __atomic_load_n(&mem_peak, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&mem_peak, &peak, now, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED)) {
    }
}

void dc__mem_sub(size_t nbytes) { __atomic_sub_fetch(&mem_allocated, nbytes, __ATOMIC_RELAXED); }
void dc__live_add(int delta) { __atomic_add_fetch(&live_tensors, delta, __ATOMIC_RELAXED); }
size_t dc_mem_allocated(void) { return __atomic_load_n(&mem_allocated, __ATOMIC_RELAXED); }
size_t dc_mem_peak(void) { return __atomic_load_n(&mem_peak, __ATOMIC_RELAXED); }
void dc_mem_reset_peak(void) { __atomic_store_n(&mem_peak, dc_mem_allocated(), __ATOMIC_RELAXED); }
int64_t dc_live_tensors(void) { return __atomic_load_n(&live_tensors, __ATOMIC_RELAXED); }

void dc_mem_empty_cache(void)
{
    const dc_backend *cpu = dc_backend_get(DC_CPU);
    if (cpu && cpu->empty_cache) cpu->empty_cache();
}
