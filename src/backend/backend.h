/* backend.h: the per-device table that every op dispatches through.
 *
 * Ops (src/ops) check shapes, create outputs and record autograd; the arithmetic itself is a
 * kernel reached through dc_backend_get(device)->group->fn. A CUDA backend is a second table
 * with the same entries; models, modules and ops do not change.
 *
 * Kernel conventions, for every group:
 *   - pointers are device pointers already offset to the first element;
 *   - float data is F32; index data is I64 unless named otherwise;
 *   - unless a kernel takes strides, its tensors are contiguous row-major;
 *   - kernels do not allocate tensors and do not record autograd; scratch memory comes from
 *     backend->scratch_alloc/scratch_free outside inner loops;
 *   - kernels return DC_OK or set an error and return its status.
 *
 * Each group's struct is declared in its own header (kernels_<group>.h) next to this one,
 * and the CPU instance lives in src/backend/cpu/<group>.c.
 */
#ifndef DEEPC_BACKEND_H
#define DEEPC_BACKEND_H

#include "deepc/core.h"

struct dc_kernels_elementwise;
struct dc_kernels_reduce;
struct dc_kernels_conv;
struct dc_kernels_pool;
struct dc_kernels_norm;
struct dc_kernels_loss;
struct dc_kernels_misc;
struct dc_kernels_rnn;

typedef enum dc_gemm_trans { DC_NO_TRANS = 0, DC_TRANS = 1 } dc_gemm_trans;

typedef struct dc_backend {
    const char *name;
    dc_device device;

    /* memory: 64-byte aligned. alloc may hand out a somewhat larger block it keeps for reuse:
     * *got receives the block's size, which free must be given. free(NULL, n) is a no-op. */
    void *(*alloc)(size_t nbytes, size_t *got);
    void (*free)(void *ptr, size_t got);
    /* kernel scratch (freed before the kernel returns), freed with the size asked for; a
     * backend may round sizes so that scratch of many sizes shares a few blocks */
    void *(*scratch_alloc)(size_t nbytes);
    void (*scratch_free)(void *ptr, size_t nbytes);
    /* returns memory kept for reuse by free to the system (NULL: keeps none) */
    void (*empty_cache)(void);
    void (*memset_zero)(void *ptr, size_t nbytes);
    void (*memcpy)(void *dst, const void *src, size_t nbytes);
    /* Copies an ndim strided block, converting between any two dtypes (strides in elements). */
    dc_status (*copy_strided)(void *dst, dc_dtype dst_dtype, const int64_t *dst_stride,
                              const void *src, dc_dtype src_dtype, const int64_t *src_stride,
                              int ndim, const int64_t *shape);
    /* Fills n contiguous elements of any dtype with value. */
    dc_status (*fill)(void *dst, dc_dtype dtype, int64_t n, double value);

    /* C[m,n] = alpha * op(A) op(B) + beta * C, row-major, leading dimensions in elements. */
    dc_status (*gemm)(dc_gemm_trans ta, dc_gemm_trans tb, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, float *c, int64_t ldc);
    /* batch of gemms with element strides between consecutive matrices (0 = broadcast) */
    dc_status (*gemm_batched)(dc_gemm_trans ta, dc_gemm_trans tb, int64_t batch, int64_t m,
                              int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                              int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b,
                              float beta, float *c, int64_t ldc, int64_t stride_c);

    const struct dc_kernels_elementwise *elementwise;
    const struct dc_kernels_reduce *reduce;
    const struct dc_kernels_conv *conv;
    const struct dc_kernels_pool *pool;
    const struct dc_kernels_norm *norm;
    const struct dc_kernels_loss *loss;
    const struct dc_kernels_misc *misc;
    const struct dc_kernels_rnn *rnn;
} dc_backend;

/* The table for a device; sets an error and returns NULL if the device has no backend. */
const dc_backend *dc_backend_get(dc_device device);
/* The backend of a tensor's device. */
const dc_backend *dc_backend_of(const dc_tensor *t);

/* A group entry that the backend lacks: sets DC_ERR_DEVICE naming the op and device. */
dc_status dc_backend_missing(const dc_backend *be, const char *op);

#endif /* DEEPC_BACKEND_H */
