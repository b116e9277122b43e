/* internal.h: what the library's own files share and users never see: storage, tensor
 * construction helpers, autograd nodes and the argument checks every op uses. */
#ifndef DEEPC_INTERNAL_H
#define DEEPC_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deepc/core.h"
#include "../backend/backend.h"

/* ---------------------------------------------------------------------------------------
 * Storage
 * ------------------------------------------------------------------------------------- */

struct dc_storage {
    void *data;
    size_t nbytes;
    size_t capacity;            /* what the backend granted (>= nbytes), handed back to free */
    int refcount;
    int overwritten_refs;       /* references held by tensors marked overwritten */
    dc_device device;
    void (*release)(void *ctx); /* external memory: called instead of backend->free */
    void *release_ctx;
};

/* ---------------------------------------------------------------------------------------
 * Tensor construction (all register the new tensor with the current pool)
 * ------------------------------------------------------------------------------------- */

/* A new contiguous tensor with fresh, uninitialised storage on `device`. */
dc_tensor *dc__new(dc_dtype dtype, int ndim, const int64_t *shape, dc_device device);
/* A new contiguous zero-filled tensor. */
dc_tensor *dc__new_zeros(dc_dtype dtype, int ndim, const int64_t *shape, dc_device device);
/* A view of base's storage with the given geometry (no autograd; see ops/view.c). */
dc_tensor *dc__view(const dc_tensor *base, int ndim, const int64_t *shape,
                    const int64_t *stride, int64_t offset);
/* Hands a freshly created tensor to the current pool (if any); returns t. */
dc_tensor *dc__register(dc_tensor *t);
/* Drops a tensor that was just created but will not be returned (error paths): releases it
 * when no pool is active, else leaves it to the pool that owns it. */
void dc__discard(dc_tensor *t);
/* x's values as a contiguous tensor without a graph edge (the calling op's own node routes the
 * gradient to x): x itself (a new reference) or a copy. */
dc_tensor *dc__dense(dc_tensor *x);
/* Writes contiguous row-major strides for shape. */
void dc__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
int64_t dc__shape_numel(int ndim, const int64_t *shape);
/* Formats a shape as "[2, 3]". */
const char *dc__shape_fmt(int ndim, const int64_t *shape, char *buf, size_t size);

/* Normalises a possibly negative dim; sets an error naming `op` when out of range. */
dc_status dc__wrap_dim(const char *op, int dim, int ndim, int *out);

/* Argument checks every op uses: non-NULL (NULL means an earlier failure: keep its error,
 * but set one if none is set), dtype, same device. */
bool dc__check_inputs(const char *op, int n, dc_tensor *const *ts);
dc_status dc__check_f32(const char *op, const dc_tensor *t, const char *what);
dc_status dc__check_same_device(const char *op, const dc_tensor *a, const dc_tensor *b);

/* Broadcasts two shapes as PyTorch does; sets DC_ERR_SHAPE naming op and both shapes. */
dc_status dc__broadcast_shapes(const char *op, int na, const int64_t *a, int nb,
                               const int64_t *b, int *nout, int64_t *out);

/* ---------------------------------------------------------------------------------------
 * Autograd nodes
 * ------------------------------------------------------------------------------------- */

#define DC_NODE_MAX_INPUTS 8
#define DC_NODE_MAX_SAVED 8

/* Computes the gradients of a node's inputs from the gradient of its output.
 * Called with grad mode off and inside a pool: tensors written to grad_in are borrowed from
 * that pool (autograd retains what it keeps). Leave grad_in[i] NULL when inputs[i] is NULL
 * or does not need grad (dc_node_wants(node, i) says which). Each grad_in[i] must have
 * inputs[i]'s shape. */
typedef dc_status (*dc_backward_fn)(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in);

struct dc_node {
    const char *op;
    int refcount;
    dc_backward_fn backward;
    int n_inputs;
    dc_tensor *inputs[DC_NODE_MAX_INPUTS]; /* retained; NULL for absent optional inputs */
    int n_saved;
    dc_tensor *saved[DC_NODE_MAX_SAVED];   /* retained; released after backward */
    bool released;                         /* saved buffers freed by backward */
    /* small op parameters, so most ops need no allocation of their own */
    int64_t iarg[16];
    double farg[8];
    /* larger op state: freed with ctx_free (or free) when the node dies */
    void *ctx;
    void (*ctx_free)(void *ctx);
};

/* True when grad mode is on and any non-NULL tensor in ts needs grad. */
bool dc__any_needs_grad(int n, dc_tensor *const *ts);
/* Records `out` as produced by op from inputs (retained, NULL allowed) and returns the node,
 * or returns NULL (and records nothing) when no input needs grad or grad mode is off.
 * Usage in an op:
 *     dc_node *node = dc__record(out, "relu", relu_backward, 1, (dc_tensor *[]){x});
 *     if (node) dc__save_output(node, out);
 */
dc_node *dc__record(dc_tensor *out, const char *op, dc_backward_fn backward, int n_inputs,
                    dc_tensor *const *inputs);
/* Keeps a tensor for backward (retained; returns its index in node->saved). Never pass the
 * op's own output: out -> grad_fn -> saved out is a cycle that leaks when backward never
 * runs. Use dc__save_output for that. */
int dc__save(dc_node *node, dc_tensor *t);
/* Saves a storage-sharing alias of the op's output (no cycle). Defined in ops/elementwise.c. */
void dc__save_output(dc_node *node, dc_tensor *out);
/* True when the backward must produce grad_in[i]. */
bool dc_node_wants(const dc_node *node, int i);
void dc__node_release(dc_node *node);

/* Sums `grad` (shape of a broadcast result) down to `ndim`/`shape` (a broadcast input).
 * Returns grad itself (a new reference via the pool) when no reduction is needed. */
dc_tensor *dc__reduce_to_shape(dc_tensor *grad, int ndim, const int64_t *shape);

/* ---------------------------------------------------------------------------------------
 * Misc
 * ------------------------------------------------------------------------------------- */

/* Implicit dc_init on first use (cheap after the first call). */
void dc__ensure_init(void);
/* Memory accounting for backends. */
void dc__mem_add(size_t nbytes);
void dc__mem_sub(size_t nbytes);
void dc__live_add(int delta);

/* Checked allocation for the library's own small structures: sets DC_ERR_OOM naming the
 * call site and returns NULL on failure. */
void *dc__malloc_at(size_t n, const char *file, int line);
void *dc__calloc_at(size_t count, size_t n, const char *file, int line);
void *dc__realloc_at(void *p, size_t n, const char *file, int line);
#define dc__malloc(n) dc__malloc_at((n), __FILE__, __LINE__)
#define dc__calloc(c, n) dc__calloc_at((c), (n), __FILE__, __LINE__)
#define dc__realloc(p, n) dc__realloc_at((p), (n), __FILE__, __LINE__)

/* fp16 / bf16 conversion (round to nearest even) */
float dc__f16_to_f32(uint16_t h);
uint16_t dc__f32_to_f16(float f);
float dc__bf16_to_f32(uint16_t h);
uint16_t dc__f32_to_bf16(float f);

#define DC_UNUSED(x) ((void)(x))
#define DC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DC_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif /* DEEPC_INTERNAL_H */
