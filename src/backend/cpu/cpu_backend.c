/* cpu_backend.c: the CPU backend table: memory (memory.c), strided copies with dtype
 * conversion, fills, and the wiring of every kernel group. */
#include <omp.h>
#include <math.h>
#include <pthread.h>

#include "../../core/internal.h"
#include "cpu_memory.h"
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
    .alloc = dc__cpu_alloc,
    .free = dc__cpu_free,
    .scratch_alloc = dc__cpu_scratch_alloc,
    .scratch_free = dc__cpu_scratch_free,
    .empty_cache = dc__cpu_empty_cache,
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
