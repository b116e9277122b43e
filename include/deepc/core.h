/* deepc/core.h: status codes, dtypes, devices, tensors, memory pools, autograd, RNG, threads.
 *
 * Everything else in deepc (ops, modules, optimizers, checkpoints, models) is built on what
 * this header declares. See deepc/deepc.h for the usage guide.
 *
 * Ownership rules (read these once):
 *   - Tensors are reference counted (dc_tensor_retain / dc_tensor_release).
 *   - A function that creates a tensor returns one reference. If an autorelease pool is
 *     active on the calling thread (dc_pool_push), that reference belongs to the pool and is
 *     dropped at dc_pool_pop; the caller only borrows it and must dc_tensor_retain what it
 *     wants to keep. With no pool active the caller owns the reference and must release it.
 *   - Views (reshape, permute, narrow, expand, ...) share the storage of their base; the
 *     storage is freed when the last tensor that uses it is released.
 *   - An autograd node holds references to the inputs and saved tensors it needs, so a loss
 *     keeps its graph alive until it is released, or until a backward without retain_graph
 *     has passed each node (it then drops the node's inputs and saved tensors, and an
 *     activation that nothing else holds is freed there, as in PyTorch).
 *
 * Errors: functions that return a pointer return NULL on failure; functions that return
 * dc_status return non-zero. Either way dc_last_error() holds a one-line message saying
 * which op or file failed and why. Ops given a NULL input return NULL without overwriting
 * the message, so a chain of ops can be checked once at the end.
 */
#ifndef DEEPC_CORE_H
#define DEEPC_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------- */

typedef enum dc_status {
    DC_OK = 0,
    DC_ERR_ARG,         /* a bad argument: out-of-range dim, negative size, NULL where not allowed */
    DC_ERR_SHAPE,       /* shapes that do not fit the op */
    DC_ERR_DTYPE,       /* a dtype the op does not take */
    DC_ERR_DEVICE,      /* tensors on different devices, or a device without this op */
    DC_ERR_OOM,         /* allocation failed */
    DC_ERR_IO,          /* a file could not be opened, read or written */
    DC_ERR_FORMAT,      /* a file's content is malformed */
    DC_ERR_STATE,       /* an object is in the wrong state (e.g. backward twice through a freed graph) */
    DC_ERR_UNSUPPORTED, /* valid but not implemented */
    DC_ERR_INTERRUPTED, /* stopped by the user (Ctrl-C) */
} dc_status;

/* The status and message of the last failure on this thread. */
dc_status dc_last_status(void);
const char *dc_last_error(void);
void dc_clear_error(void);
/* Sets the thread's error (printf-style) and returns `status`, so callers can write
 * `return dc_set_error(DC_ERR_ARG, "...")`. */
dc_status dc_set_error(dc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *dc_status_name(dc_status status);

/* ---------------------------------------------------------------------------------------
 * Dtypes and devices
 * ------------------------------------------------------------------------------------- */

typedef enum dc_dtype {
    DC_F32 = 0, /* all compute */
    DC_F16,     /* storage only: converts to F32 with dc_to_dtype */
    DC_BF16,    /* storage only */
    DC_I64,     /* class indices, token ids (PyTorch's default integer type) */
    DC_I32,
    DC_U8,      /* images */
    DC_BOOL,    /* masks (one byte per element, 0 or 1) */
    DC_DTYPE_COUNT
} dc_dtype;

size_t dc_dtype_size(dc_dtype dtype);
const char *dc_dtype_name(dc_dtype dtype); /* "F32", "F16", ... as safetensors spells them */

typedef enum dc_device {
    DC_CPU = 0,
    DC_CUDA,
    DC_DEVICE_COUNT
} dc_device;

const char *dc_device_name(dc_device device);

/* ---------------------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------------------- */

#define DC_MAX_DIMS 8

typedef struct dc_storage dc_storage;
typedef struct dc_node dc_node;

/* A strided view of a storage. Fields are readable; change them only through the API. */
typedef struct dc_tensor {
    dc_storage *storage;
    int64_t offset;              /* in elements, from the start of the storage */
    int ndim;
    int64_t shape[DC_MAX_DIMS];
    int64_t stride[DC_MAX_DIMS]; /* in elements */
    dc_dtype dtype;
    int refcount;
    bool requires_grad;          /* set on leaves by the user, on results by autograd */
    bool retain_grad;            /* keep .grad on a non-leaf after backward */
    struct dc_tensor *grad;      /* accumulated gradient (owned), or NULL */
    dc_node *grad_fn;            /* the op that produced this tensor, or NULL for a leaf */
    uint64_t visit;              /* autograd bookkeeping: last backward that reached it */
    bool grad_owned;             /* autograd bookkeeping: .grad is exclusive to this tensor */
    bool overwritten;            /* an in-place op (dc_relu_, dc_add_) reused its buffer: its
                                    values are gone, only the graph still holds it */
} dc_tensor;

/* Builds the (ndim, shape) argument pair from a list: dc_zeros(DC_F32, DC_SHAPE(2, 3)). */
#define DC_SHAPE(...) \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

dc_tensor *dc_empty(dc_dtype dtype, int ndim, const int64_t *shape);
dc_tensor *dc_zeros(dc_dtype dtype, int ndim, const int64_t *shape);
dc_tensor *dc_ones(dc_dtype dtype, int ndim, const int64_t *shape);
dc_tensor *dc_full(dc_dtype dtype, int ndim, const int64_t *shape, double value);
dc_tensor *dc_scalar(float value);  /* a 0-dim F32 tensor */
/* Copies `data` (dtype-sized elements, row-major) into a new tensor. */
dc_tensor *dc_from_data(dc_dtype dtype, int ndim, const int64_t *shape, const void *data);
dc_tensor *dc_arange(dc_dtype dtype, double start, double end, double step);
dc_tensor *dc_zeros_like(const dc_tensor *t);
dc_tensor *dc_empty_like(const dc_tensor *t);

/* Wraps memory the caller keeps alive (e.g. an mmap'd checkpoint); `release(ctx)` is called
 * when the last tensor using it goes away. `release` may be NULL. */
dc_tensor *dc_from_external(dc_dtype dtype, int ndim, const int64_t *shape, void *data,
                            void (*release)(void *ctx), void *ctx);

dc_tensor *dc_tensor_retain(dc_tensor *t);
void dc_tensor_release(dc_tensor *t);

int64_t dc_numel(const dc_tensor *t);
bool dc_is_contiguous(const dc_tensor *t);
dc_device dc_tensor_device(const dc_tensor *t);
bool dc_same_shape(const dc_tensor *a, const dc_tensor *b);
/* "[2, 3, 4]" into buf (always NUL-terminated); returns buf. */
const char *dc_shape_str(const dc_tensor *t, char *buf, size_t size);
#define DC_SHAPE_STR_MAX 128

/* Raw element pointer at the tensor's offset (CPU tensors). For contiguous F32 tensors
 * this is the row-major buffer. */
void *dc_data(const dc_tensor *t);
float *dc_data_f32(const dc_tensor *t);
/* The value of a one-element tensor as a double (any dtype). NAN on error. */
double dc_item(const dc_tensor *t);
/* Copies the elements (in logical row-major order, converted to F32) to `out`. */
dc_status dc_copy_to_f32(const dc_tensor *t, float *out, int64_t n);

/* Copies src's values into dst (same numel; dtype converts). Not recorded by autograd. */
dc_status dc_copy_(dc_tensor *dst, const dc_tensor *src);
dc_status dc_fill_(dc_tensor *t, double value);

/* A new tensor of another dtype (a copy, or a new reference when the dtype already matches). */
dc_tensor *dc_to_dtype(const dc_tensor *t, dc_dtype dtype);
/* A contiguous tensor with the same values: the input itself (new reference) if already
 * contiguous, else a copy. Differentiable. */
dc_tensor *dc_contiguous(dc_tensor *t);
/* A deep copy (always new storage). Differentiable. */
dc_tensor *dc_clone(dc_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Autorelease pools (see the ownership rules at the top)
 * ------------------------------------------------------------------------------------- */

typedef struct dc_pool_mark { int depth; } dc_pool_mark;
dc_pool_mark dc_pool_push(void);
/* Releases every reference handed to pools pushed since (and including) `mark`. */
void dc_pool_pop(dc_pool_mark mark);
/* Hands a reference the caller owns to the innermost pool (or releases nothing if none:
 * then the caller still owns it). Returns t. */
dc_tensor *dc_autorelease(dc_tensor *t);
bool dc_pool_active(void);

/* ---------------------------------------------------------------------------------------
 * Autograd
 * ------------------------------------------------------------------------------------- */

dc_status dc_set_requires_grad(dc_tensor *t, bool requires_grad);
/* Backward from `root`. `grad` may be NULL for a one-element root (then 1 is used).
 * Gradients accumulate into the .grad of leaves that require grad. Unless retain_graph,
 * each node lets go of its saved tensors and inputs once it has run (activations die as
 * the backward passes them), and a second backward through the same graph is an error. */
dc_status dc_backward(dc_tensor *root, const dc_tensor *grad, bool retain_graph);
/* Drops t's gradient (PyTorch's zero_grad(set_to_none=True)). */
void dc_zero_grad(dc_tensor *t);
/* A tensor sharing t's storage, cut from the graph, that never requires grad. */
dc_tensor *dc_detach(dc_tensor *t);
/* Grad mode is per thread. dc_set_grad_enabled returns the previous mode, so
 *   bool prev = dc_set_grad_enabled(false); ... dc_set_grad_enabled(prev);
 * is PyTorch's `with torch.no_grad():`. With grad disabled nothing is recorded and no
 * activation is kept. */
bool dc_set_grad_enabled(bool enabled);
bool dc_grad_enabled(void);
/* True when t is part of a graph that backward can reach (requires grad). */
bool dc_needs_grad(const dc_tensor *t);

/* ---------------------------------------------------------------------------------------
 * Random numbers: a seedable generator (mt19937), with PyTorch's CPU transforms where noted.
 * ------------------------------------------------------------------------------------- */

typedef struct dc_rng {
    uint32_t mt[624];
    int index;
    /* torch's CPU generator caches the second value of a Box-Muller pair */
    bool has_next_normal;
    double next_normal;
} dc_rng;

void dc_rng_seed(dc_rng *rng, uint64_t seed);
uint32_t dc_rng_u32(dc_rng *rng);
uint64_t dc_rng_u64(dc_rng *rng);
/* Uniform in [0, 1) with 24 random bits (as torch's float uniform_). */
float dc_rng_uniform_f32(dc_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double dc_rng_uniform_f64(dc_rng *rng);
double dc_rng_normal(dc_rng *rng);
/* A uniform integer in [0, n). */
uint64_t dc_rng_below(dc_rng *rng, uint64_t n);
/* The process-wide default generator (dc_manual_seed reseeds it). Not thread-safe. */
dc_rng *dc_default_rng(void);
void dc_manual_seed(uint64_t seed);

/* Fills t (F32) in place, not recorded by autograd. */
dc_status dc_uniform_(dc_tensor *t, double low, double high, dc_rng *rng);
dc_status dc_normal_(dc_tensor *t, double mean, double std, dc_rng *rng);
dc_tensor *dc_rand(int ndim, const int64_t *shape, dc_rng *rng);  /* U[0,1) */
dc_tensor *dc_randn(int ndim, const int64_t *shape, dc_rng *rng); /* N(0,1) */

/* ---------------------------------------------------------------------------------------
 * Library state and threads
 * ------------------------------------------------------------------------------------- */

/* Optional: called implicitly by the first op. Reads DEEPC_NUM_THREADS (else
 * OMP_NUM_THREADS), loads OpenBLAS choosing its fastest kernels for this CPU. */
dc_status dc_init(void);
void dc_set_num_threads(int n);
int dc_get_num_threads(void);
/* What BLAS is in use, e.g. "OpenBLAS 0.3.21 (SkylakeX kernels)", or "built-in". */
const char *dc_blas_info(void);

/* Bytes of tensor storage currently allocated and the peak since start (or last reset). */
size_t dc_mem_allocated(void);
size_t dc_mem_peak(void);
void dc_mem_reset_peak(void);
/* Gives the memory that backends keep for reuse (freed blocks, cached by size) back to the
 * system, like torch.cuda.empty_cache(). Worth calling between phases that allocate
 * different sizes, e.g. training at batch 64 and evaluation at batch 256. */
void dc_mem_empty_cache(void);
/* Number of live dc_tensor objects (for leak checks in tests). */
int64_t dc_live_tensors(void);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_CORE_H */
