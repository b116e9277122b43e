/* memory.c: the CPU backend's memory: every tensor, kernel scratch buffer and diffusion
 * activation comes from here.
 *
 * Freed blocks are kept for reuse:
 *   - blocks of 256 KiB and more ("large") in one list, oldest first: a training step or a
 *     denoising step allocates the same sizes every iteration, and giving them back to the
 *     system only to fault them in again costs more than the arithmetic of small models.
 *     They are mappings of their own (from 2 MiB on, 2 MiB-aligned and backed by transparent
 *     huge pages where the system grants them on request), so a block given back leaves the
 *     process at once; through malloc it would stay in glibc's heap. On a miss, cached blocks
 *     give way, oldest first, until live plus cached memory is within the most ever live plus
 *     CACHE_SLACK_BYTES: the cache saves page faults but adds little to the peak. Without
 *     that bound a backward pass that frees activations of one size while asking for
 *     gradients and scratch of others would hold both sets at once.
 *   - smaller blocks in one free list per 64-byte size class: a batch-1 forward allocates a
 *     dozen small activations and kernel scratch buffers, and glibc's aligned_alloc (which
 *     splits and coalesces chunks, with malloc_consolidate passes) costs more per call than
 *     a small layer's arithmetic. A free-list push / pop under the lock is a few ns.
 *
 * A tensor's block may be a cached one up to an eighth larger than asked; the allocator says
 * what it granted and is given that size back. Kernel scratch comes in power-of-two sizes
 * and is reused at exactly its size.
 *
 * Cached memory does not count in dc_mem_allocated. Under AddressSanitizer nothing is cached
 * and every block comes from malloc, so overruns hit its redzones and stale reads show.
 */
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

#include "../../core/internal.h"
#include "cpu_memory.h"

#define LARGE_MIN_BYTES ((size_t)256 << 10)
#define LARGE_SLOTS 256
/* How far live plus cached memory may rise above the live high-water mark when a tensor or
 * scratch allocation misses: room for a training step's working set of odd sizes, which
 * recur in the same order every step, so that a small model's steady state maps nothing
 * (with no slack LeNet-5 maps 8 blocks a step and AlexNet 33, and runs at 2/3 the speed).
 * The diffusion path asks for none: it frees each map the moment it is dead and reuses by
 * best fit, and the slack would only add to its peak (VAE decode: 638 -> 700 MB). */
#define CACHE_SLACK_BYTES ((size_t)64 << 20)
#define HUGE_PAGE_BYTES ((size_t)2 << 20)
/* small blocks: classes of 64 bytes below LARGE_MIN_BYTES, at most this much kept in all */
#define SMALL_CLASSES (LARGE_MIN_BYTES / 64u)
#define SMALL_MAX_BYTES ((size_t)32 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define DC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DC_ASAN 1
#endif
#endif
#ifndef DC_ASAN
#define DC_ASAN 0
#endif

typedef struct cached_block {
    void *ptr;
    size_t nbytes;
} cached_block;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_block large[LARGE_SLOTS]; /* oldest first */
static int large_count;
static size_t large_bytes;
/* small_free[c]: freed blocks of (c + 1) * 64 bytes, linked through their first word */
static void *small_free[SMALL_CLASSES];
static size_t small_bytes;
/* the most memory ever live (tensors and scratch) since the cache was last emptied */
static size_t live_high_water;

static size_t round_size(size_t nbytes)
{
    if (nbytes == 0) nbytes = 1;
    if (nbytes < LARGE_MIN_BYTES) return (nbytes + 63) & ~(size_t)63;
    return (nbytes + 4095) & ~(size_t)4095;
}

/* ---------------------------------------------------------------------------------------
 * From and to the system
 * ------------------------------------------------------------------------------------- */

static void *sys_alloc(size_t size)
{
    if (DC_ASAN || size < LARGE_MIN_BYTES) return aligned_alloc(64, size);
    if (size < HUGE_PAGE_BYTES) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    /* 2 MiB-aligned, so that every whole 2 MiB of the block can be one huge page: it then
     * faults in 2 MiB at a time (a 268 MB VAE map in 128 faults, not 65536), which also
     * makes a block mapped again after an eviction cheap */
    size_t len = size + HUGE_PAGE_BYTES;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
    size_t head = a - (uintptr_t)p, tail = len - head - size;
    if (head) munmap(p, head);
    if (tail) munmap((char *)a + size, tail);
    madvise((void *)a, size, MADV_HUGEPAGE);
    return (void *)a;
}

static void sys_free(void *p, size_t size)
{
    if (DC_ASAN || size < LARGE_MIN_BYTES)
        free(p);
    else
        munmap(p, size);
}

/* ---------------------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------------------- */

static void large_remove(int i)
{
    large_bytes -= large[i].nbytes;
    memmove(large + i, large + i + 1, (size_t)(large_count - i - 1) * sizeof *large);
    large_count--;
}

/* A cached block of `size` to `size + max_waste` bytes (the smallest; the newest of equals;
 * *got is its size), or NULL after making room for a new one. Called under the lock; blocks
 * to give back to the system are listed in evicted[]. */
static void *large_take(size_t size, size_t max_waste, size_t slack, size_t *got, cached_block *evicted,
                        int *n_evicted)
{
    int best = -1;
    for (int i = large_count - 1; i >= 0; i--) {
        size_t n = large[i].nbytes;
        if (n >= size && n - size <= max_waste && (best < 0 || n < large[best].nbytes)) {
            best = i;
            if (n == size) break;
        }
    }
    size_t live = dc_mem_allocated() + size;
    if (live > live_high_water) live_high_water = live;
    if (best >= 0) {
        void *p = large[best].ptr;
        *got = large[best].nbytes;
        large_remove(best);
        return p;
    }
    while (large_count > 0 && live + large_bytes > live_high_water + slack) {
        evicted[(*n_evicted)++] = large[0];
        large_remove(0);
    }
    return NULL;
}

/* best_fit: a cached block up to an eighth larger will do (its size is returned in *got) */
static void *alloc_block(size_t nbytes, bool best_fit, size_t slack, size_t *got)
{
    size_t size = round_size(nbytes);
    size_t max_waste = best_fit ? size / 8 : 0;
    void *p = NULL;
    *got = size;
    if (!DC_ASAN && size >= LARGE_MIN_BYTES) {
        cached_block evicted[LARGE_SLOTS];
        int n_evicted = 0;
        pthread_mutex_lock(&cache_lock);
        p = large_take(size, max_waste, slack, got, evicted, &n_evicted);
        pthread_mutex_unlock(&cache_lock);
        for (int i = 0; i < n_evicted; i++) sys_free(evicted[i].ptr, evicted[i].nbytes);
    } else if (!DC_ASAN) {
        size_t c = size / 64 - 1;
        pthread_mutex_lock(&cache_lock);
        p = small_free[c];
        if (p) {
            small_free[c] = *(void **)p;
            small_bytes -= size;
        }
        pthread_mutex_unlock(&cache_lock);
    }
    if (!p) p = sys_alloc(*got);
    if (!p) {
        dc_set_error(DC_ERR_OOM, "out of memory allocating %zu bytes", nbytes);
        return NULL;
    }
    dc__mem_add(*got);
    return p;
}

void *dc__cpu_alloc_fit(size_t nbytes, size_t slack, size_t *got)
{
    return alloc_block(nbytes, true, slack, got);
}

void *dc__cpu_alloc(size_t nbytes, size_t *got) { return dc__cpu_alloc_fit(nbytes, CACHE_SLACK_BYTES, got); }

void dc__cpu_free(void *ptr, size_t nbytes)
{
    if (!ptr) return;
    size_t size = round_size(nbytes);
    dc__mem_sub(size);
    if (DC_ASAN) {
        sys_free(ptr, size);
        return;
    }
    cached_block old = {NULL, 0};
    pthread_mutex_lock(&cache_lock);
    if (size >= LARGE_MIN_BYTES) {
        if (large_count == LARGE_SLOTS) {
            old = large[0];
            large_remove(0);
        }
        large[large_count++] = (cached_block){ptr, size};
        large_bytes += size;
        ptr = NULL;
    } else if (small_bytes + size <= SMALL_MAX_BYTES) {
        size_t c = size / 64 - 1;
        *(void **)ptr = small_free[c];
        small_free[c] = ptr;
        small_bytes += size;
        ptr = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    if (old.ptr) sys_free(old.ptr, old.nbytes);
    if (ptr) sys_free(ptr, size);
}

/* Kernel scratch comes in many one-off sizes (a different transform buffer for every conv
 * shape); rounded up to a power of two they share a few cached blocks instead of each
 * keeping its own. */
static size_t scratch_size(size_t nbytes)
{
    if (nbytes < LARGE_MIN_BYTES) return nbytes;
    size_t s = LARGE_MIN_BYTES;
    while (s < nbytes && s <= SIZE_MAX / 2) s *= 2;
    return s < nbytes ? nbytes : s;
}
void *dc__cpu_scratch_alloc(size_t nbytes)
{
    size_t got;
    return alloc_block(scratch_size(nbytes), false, CACHE_SLACK_BYTES, &got);
}
void dc__cpu_scratch_free(void *ptr, size_t nbytes) { dc__cpu_free(ptr, scratch_size(nbytes)); }

/* Frees every cached block and lets glibc hand its free heap pages back to the system.
 * Called between phases whose block sizes differ (training at one batch size, evaluation at
 * another; a UNet and then a VAE): the high-water mark starts again from what is live. */
void dc__cpu_empty_cache(void)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < large_count; i++) sys_free(large[i].ptr, large[i].nbytes);
    large_count = 0;
    large_bytes = 0;
    for (size_t c = 0; c < SMALL_CLASSES; c++) {
        while (small_free[c]) {
            void *next = *(void **)small_free[c];
            free(small_free[c]);
            small_free[c] = next;
        }
    }
    small_bytes = 0;
    live_high_water = dc_mem_allocated();
    pthread_mutex_unlock(&cache_lock);
    malloc_trim(0);
}

__attribute__((destructor)) static void cache_drain(void) { dc__cpu_empty_cache(); }
