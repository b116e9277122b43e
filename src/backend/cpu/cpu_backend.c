/* cpu_backend.c: the CPU backend table: memory (with a cache of large blocks), strided
 * copies with dtype conversion, fills, and the wiring of every kernel group. */
#include <omp.h>
#include <math.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

#include "../../core/internal.h"
#include "parallel.h"

dc_status dc__cpu_gemm(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t n, int64_t k,
                       float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                       float beta, float *c, int64_t ldc);
dc_status dc__cpu_gemm_batched(dc_gemm_trans ta, dc_gemm_trans tb, int64_t batch, int64_t m,
                               int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                               int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b,
                               float beta, float *c, int64_t ldc, int64_t stride_c);

/* Kernel groups, each defined in its own file of this folder. The references are strong, so
 * linking the table pulls every group out of the static library. */
#define DC_GROUP(name) extern const struct dc_kernels_##name dc_cpu_##name##_kernels;
DC_GROUP(elementwise)
DC_GROUP(reduce)
DC_GROUP(conv)
DC_GROUP(pool)
DC_GROUP(norm)
DC_GROUP(loss)
DC_GROUP(misc)
DC_GROUP(rnn)
#undef DC_GROUP

/* ---------------------------------------------------------------------------------------
 * Memory. Freed blocks are kept for reuse, by exact (rounded) size:
 *   - blocks of 256 KiB and more in a list of up to 256: a training step allocates the same
 *     activation sizes every iteration, and returning them to the OS only to fault them in
 *     again costs more than the arithmetic on small models. They are mapped directly, and
 *     the cache gives way on a miss so that live plus cached memory stays within the most
 *     ever live plus CACHE_SLACK_BYTES: the cache saves page faults but adds little to the
 *     peak;
 *   - smaller blocks in one free list per 64-byte size class: a batch-1 forward allocates a
 *     dozen small activations and kernel scratch buffers, and glibc's aligned_alloc (which
 *     splits and coalesces chunks, with malloc_consolidate passes) cost more per call than
 *     a small layer's arithmetic. A free list push / pop under the lock is a few ns.
 * Cached memory does not count in dc_mem_allocated. Under AddressSanitizer nothing small is
 * cached, so a use after free is still caught.
 * ------------------------------------------------------------------------------------- */

#define CACHE_MIN_BYTES (256u * 1024u)
#define CACHE_SLOTS 256
#define CACHE_MAX_BYTES ((size_t)2 << 30)
/* How far live plus cached memory may rise above the live high-water mark: room for a small
 * model's whole working set of odd sizes, so that its steady state never maps a block
 * (LeNet-5 and AlexNet training map nothing after the first step). */
#define CACHE_SLACK_BYTES ((size_t)64 << 20)
/* small blocks: classes of 64 bytes below CACHE_MIN_BYTES, at most this much kept in all */
#define SMALL_CLASSES (CACHE_MIN_BYTES / 64u)
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
#define DC_SMALL_CACHE (!DC_ASAN)

typedef struct cached_block {
    void *ptr;
    size_t nbytes;
} cached_block;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cached_block cache[CACHE_SLOTS];
static int cache_count;
static size_t cache_bytes;
/* small_free[c]: freed blocks of (c + 1) * 64 bytes, linked through their first word */
static void *small_free[SMALL_CLASSES];
static size_t small_bytes;
/* the most memory ever live (tensors and scratch) since the cache was last emptied */
static size_t live_high_water;

static size_t round_size(size_t nbytes)
{
    if (nbytes < CACHE_MIN_BYTES) return (nbytes + 63) & ~(size_t)63;
    return (nbytes + 4095) & ~(size_t)4095;
}

/* Large blocks are mapped and unmapped directly: a freed one goes back to the system at
 * once. Through malloc they would land in glibc's heap (its mmap threshold rises to 32 MiB
 * after the first frees), where memory given up by the cache stays resident. Under
 * AddressSanitizer they come from malloc, whose redzones catch a kernel writing past them. */
static void *sys_alloc(size_t size)
{
    if (size < CACHE_MIN_BYTES || DC_ASAN) return aligned_alloc(64, size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    /* Huge pages where the system offers them on request (THP "madvise"): a block mapped
     * again after an eviction then faults in 2 MiB at a time, not 4 KiB. This made the
     * evictions' cost unmeasurable in VGG-11 / ResNet-18 training (bench_train). */
    if (size >= ((size_t)2 << 20)) madvise(p, size, MADV_HUGEPAGE);
    return p;
}

static void sys_free(void *p, size_t size)
{
    if (!p) return;
    if (size < CACHE_MIN_BYTES || DC_ASAN)
        free(p);
    else
        munmap(p, size);
}

static void *cpu_alloc(size_t nbytes)
{
    size_t size = round_size(nbytes ? nbytes : 1);
    void *p = NULL;
    if (size >= CACHE_MIN_BYTES) {
        void *evicted[CACHE_SLOTS];
        size_t evicted_bytes[CACHE_SLOTS];
        int n_evicted = 0;
        pthread_mutex_lock(&cache_lock);
        for (int i = cache_count - 1; i >= 0; i--) {
            if (cache[i].nbytes == size) {
                p = cache[i].ptr;
                cache_bytes -= size;
                memmove(cache + i, cache + i + 1, (size_t)(cache_count - i - 1) * sizeof *cache);
                cache_count--;
                break;
            }
        }
        if (!p) {
            /* A miss: the block comes from the system. Cached blocks of other sizes give way,
             * oldest first, so that live plus cached memory stays within the most ever live
             * plus the slack. Otherwise a backward pass that frees activations of one size
             * while it asks for gradients and scratch of others holds both sets at once. */
            size_t live = dc_mem_allocated() + size;
            if (live > live_high_water) live_high_water = live;
            while (cache_count > 0 && live + cache_bytes > live_high_water + CACHE_SLACK_BYTES) {
                evicted_bytes[n_evicted] = cache[0].nbytes;
                evicted[n_evicted++] = cache[0].ptr;
                cache_bytes -= cache[0].nbytes;
                memmove(cache, cache + 1, (size_t)(cache_count - 1) * sizeof *cache);
                cache_count--;
            }
        }
        pthread_mutex_unlock(&cache_lock);
        for (int i = 0; i < n_evicted; i++) sys_free(evicted[i], evicted_bytes[i]);
    } else if (DC_SMALL_CACHE) {
        size_t c = size / 64 - 1;
        pthread_mutex_lock(&cache_lock);
        p = small_free[c];
        if (p) {
            small_free[c] = *(void **)p;
            small_bytes -= size;
        }
        pthread_mutex_unlock(&cache_lock);
    }
    if (!p) p = sys_alloc(size);
    if (!p) {
        dc_set_error(DC_ERR_OOM, "out of memory allocating a tensor of %zu bytes", nbytes);
        return NULL;
    }
    dc__mem_add(size);
    return p;
}

static void cpu_free(void *ptr, size_t nbytes)
{
    if (!ptr) return;
    size_t size = round_size(nbytes ? nbytes : 1);
    dc__mem_sub(size);
    if (size >= CACHE_MIN_BYTES) {
        pthread_mutex_lock(&cache_lock);
        if (cache_bytes + size <= CACHE_MAX_BYTES) {
            if (cache_count == CACHE_SLOTS) { /* evict the oldest */
                cache_bytes -= cache[0].nbytes;
                sys_free(cache[0].ptr, cache[0].nbytes);
                memmove(cache, cache + 1, (CACHE_SLOTS - 1) * sizeof *cache);
                cache_count--;
            }
            cache[cache_count++] = (cached_block){ptr, size};
            cache_bytes += size;
            ptr = NULL;
        }
        pthread_mutex_unlock(&cache_lock);
    } else if (DC_SMALL_CACHE) {
        size_t c = size / 64 - 1;
        pthread_mutex_lock(&cache_lock);
        if (small_bytes + size <= SMALL_MAX_BYTES) {
            *(void **)ptr = small_free[c];
            small_free[c] = ptr;
            small_bytes += size;
            ptr = NULL;
        }
        pthread_mutex_unlock(&cache_lock);
    }
    sys_free(ptr, size);
}

/* Kernel scratch comes in many one-off sizes (a different transform buffer for every conv
 * shape); rounded up to a power of two they share a few cached blocks instead of each
 * keeping its own. */
static size_t scratch_size(size_t nbytes)
{
    if (nbytes < CACHE_MIN_BYTES) return nbytes;
    size_t s = CACHE_MIN_BYTES;
    while (s < nbytes && s <= SIZE_MAX / 2) s *= 2;
    return s < nbytes ? nbytes : s;
}
static void *cpu_scratch_alloc(size_t nbytes) { return cpu_alloc(scratch_size(nbytes)); }
static void cpu_scratch_free(void *ptr, size_t nbytes) { cpu_free(ptr, scratch_size(nbytes)); }

/* Frees every cached block and lets glibc hand its free heap pages back to the system.
 * Called between phases whose block sizes differ (training at one batch size, evaluation at
 * another): exact-size reuse cannot serve one phase from the other's blocks, so without
 * this both working sets would stay resident. */
static void cpu_empty_cache(void)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < cache_count; i++) sys_free(cache[i].ptr, cache[i].nbytes);
    cache_count = 0;
    cache_bytes = 0;
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

__attribute__((destructor)) static void cpu_cache_drain(void) { cpu_empty_cache(); }

static void cpu_memset_zero(void *ptr, size_t nbytes) { memset(ptr, 0, nbytes); }
static void cpu_memcpy(void *dst, const void *src, size_t nbytes)
{
    if (nbytes) memmove(dst, src, nbytes);
}

/* ---------------------------------------------------------------------------------------
 * Strided copy with conversion
 * ------------------------------------------------------------------------------------- */

static inline float load_f32(const char *p, dc_dtype t)
{
    switch (t) {
    case DC_F32: return *(const float *)p;
    case DC_F16: return dc__f16_to_f32(*(const uint16_t *)p);
    case DC_BF16: return dc__bf16_to_f32(*(const uint16_t *)p);
    case DC_I64: return (float)*(const int64_t *)p;
    case DC_I32: return (float)*(const int32_t *)p;
    default: return (float)*(const uint8_t *)p;
    }
}

static inline void store_f32(char *p, dc_dtype t, float v)
{
    switch (t) {
    case DC_F32: *(float *)p = v; break;
    case DC_F16: *(uint16_t *)p = dc__f32_to_f16(v); break;
    case DC_BF16: *(uint16_t *)p = dc__f32_to_bf16(v); break;
    case DC_I64: *(int64_t *)p = (int64_t)v; break;
    case DC_I32: *(int32_t *)p = (int32_t)v; break;
    case DC_BOOL: *(uint8_t *)p = v != 0; break;
    default: *(uint8_t *)p = (uint8_t)v; break;
    }
}

static inline int64_t load_int(const char *p, dc_dtype t)
{
    switch (t) {
    case DC_I64: return *(const int64_t *)p;
    case DC_I32: return *(const int32_t *)p;
    default: return *(const uint8_t *)p;
    }
}

static inline bool is_int(dc_dtype t) { return t == DC_I64 || t == DC_I32 || t == DC_U8 || t == DC_BOOL; }

/* one row: n elements */
static void copy_row(char *dst, dc_dtype dt, int64_t ds, const char *src, dc_dtype st, int64_t ss, int64_t n)
{
    size_t dsz = dc_dtype_size(dt), ssz = dc_dtype_size(st);
    if (dt == st && ds == 1 && ss == 1) {
        memcpy(dst, src, (size_t)n * dsz);
        return;
    }
    if (dt == DC_F32 && st == DC_F32) {
        float *d = (float *)dst;
        const float *s = (const float *)src;
        for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
        return;
    }
    if (dt == st) {
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * ds * (int64_t)dsz, src + i * ss * (int64_t)ssz, dsz);
        return;
    }
    if (is_int(dt) && is_int(st) && dt != DC_BOOL) {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = load_int(src + i * ss * (int64_t)ssz, st);
            char *p = dst + i * ds * (int64_t)dsz;
            if (dt == DC_I64) *(int64_t *)p = v;
            else if (dt == DC_I32) *(int32_t *)p = (int32_t)v;
            else *(uint8_t *)p = (uint8_t)v;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++)
        store_f32(dst + i * ds * (int64_t)dsz, dt, load_f32(src + i * ss * (int64_t)ssz, st));
}

static dc_status cpu_copy_strided(void *dst, dc_dtype dst_dtype, const int64_t *dst_stride,
                                  const void *src, dc_dtype src_dtype, const int64_t *src_stride,
                                  int ndim, const int64_t *shape)
{
    /* collapse dims that are contiguous with their inner neighbour in both tensors, drop
     * size-1 dims */
    int64_t sh[DC_MAX_DIMS], ds[DC_MAX_DIMS], ss[DC_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) return DC_OK;
        if (shape[i] == 1) continue;
        if (nd > 0 && ds[nd - 1] == dst_stride[i] * shape[i] && ss[nd - 1] == src_stride[i] * shape[i]) {
            sh[nd - 1] *= shape[i];
            ds[nd - 1] = dst_stride[i];
            ss[nd - 1] = src_stride[i];
            continue;
        }
        sh[nd] = shape[i];
        ds[nd] = dst_stride[i];
        ss[nd] = src_stride[i];
        nd++;
    }
    if (nd == 0) { /* a single element */
        sh[0] = 1;
        ds[0] = ss[0] = 1;
        nd = 1;
    }
    int64_t inner = sh[nd - 1], rows = 1;
    for (int i = 0; i < nd - 1; i++) rows *= sh[i];
    size_t dsz = dc_dtype_size(dst_dtype), ssz = dc_dtype_size(src_dtype);
    DC_PAR_FOR(rows * inner > (1 << 16) && rows > 1, for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, doff = 0, soff = 0;
        for (int i = nd - 2; i >= 0; i--) {
            int64_t idx = rem % sh[i];
            rem /= sh[i];
            doff += idx * ds[i];
            soff += idx * ss[i];
        }
        copy_row((char *)dst + doff * (int64_t)dsz, dst_dtype, ds[nd - 1],
                 (const char *)src + soff * (int64_t)ssz, src_dtype, ss[nd - 1], inner);
    });
    return DC_OK;
}

static dc_status cpu_fill(void *dst, dc_dtype dtype, int64_t n, double value)
{
    switch (dtype) {
    case DC_F32: {
        float *p = dst, v = (float)value;
        if (v == 0.0f && !signbit(v)) {
            memset(p, 0, (size_t)n * 4);
            break;
        }
        for (int64_t i = 0; i < n; i++) p[i] = v;
        break;
    }
    case DC_F16:
    case DC_BF16: {
        uint16_t *p = dst, v = dtype == DC_F16 ? dc__f32_to_f16((float)value) : dc__f32_to_bf16((float)value);
        for (int64_t i = 0; i < n; i++) p[i] = v;
        break;
    }
    case DC_I64: {
        int64_t *p = dst, v = (int64_t)value;
        for (int64_t i = 0; i < n; i++) p[i] = v;
        break;
    }
    case DC_I32: {
        int32_t *p = dst, v = (int32_t)value;
        for (int64_t i = 0; i < n; i++) p[i] = v;
        break;
    }
    case DC_BOOL: memset(dst, value != 0, (size_t)n); break;
    case DC_U8: memset(dst, (uint8_t)value, (size_t)n); break;
    default: return dc_set_error(DC_ERR_DTYPE, "fill: unknown dtype %d", (int)dtype);
    }
    return DC_OK;
}

static dc_backend cpu_backend = {
    .name = "cpu",
    .device = DC_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .scratch_alloc = cpu_scratch_alloc,
    .scratch_free = cpu_scratch_free,
    .empty_cache = cpu_empty_cache,
    .memset_zero = cpu_memset_zero,
    .memcpy = cpu_memcpy,
    .copy_strided = cpu_copy_strided,
    .fill = cpu_fill,
    .gemm = dc__cpu_gemm,
    .gemm_batched = dc__cpu_gemm_batched,
};

static pthread_once_t wire_once = PTHREAD_ONCE_INIT;
static void wire_groups(void)
{
    cpu_backend.elementwise = &dc_cpu_elementwise_kernels;
    cpu_backend.reduce = &dc_cpu_reduce_kernels;
    cpu_backend.conv = &dc_cpu_conv_kernels;
    cpu_backend.pool = &dc_cpu_pool_kernels;
    cpu_backend.norm = &dc_cpu_norm_kernels;
    cpu_backend.loss = &dc_cpu_loss_kernels;
    cpu_backend.misc = &dc_cpu_misc_kernels;
    cpu_backend.rnn = &dc_cpu_rnn_kernels;
}

const dc_backend *dc_backend_get(dc_device device)
{
    if (device == DC_CPU) {
        pthread_once(&wire_once, wire_groups);
        return &cpu_backend;
    }
    dc_set_error(DC_ERR_DEVICE, "no backend for device %s in this build", dc_device_name(device));
    return NULL;
}

const dc_backend *dc_backend_of(const dc_tensor *t) { return dc_backend_get(t->storage->device); }

dc_status dc_backend_missing(const dc_backend *be, const char *op)
{
    return dc_set_error(DC_ERR_DEVICE, "%s is not available on the %s backend", op, be ? be->name : "?");
}
