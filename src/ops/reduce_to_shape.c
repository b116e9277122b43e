/* reduce_to_shape.c: dc__reduce_to_shape, the step every broadcasting backward ends with:
 * the gradient of a broadcast result summed over the dims an input was broadcast along
 * (leading dims it lacked, and its size-1 dims), giving a tensor of the input's shape. */
#include "../core/internal.h"
#include "../backend/kernels_reduce.h"

dc_tensor *dc__reduce_to_shape(dc_tensor *grad, int ndim, const int64_t *shape)
{
    if (!grad) return NULL;
    char sg[DC_SHAPE_STR_MAX], st[DC_SHAPE_STR_MAX];
    int lead = grad->ndim - ndim;
    bool fits = lead >= 0 && grad->dtype == DC_F32;
    bool need = lead > 0;
    for (int i = 0; i < ndim && fits; i++) {
        int64_t gd = grad->shape[lead + i];
        if (shape[i] != gd && shape[i] != 1) fits = false;
        if (shape[i] == 1 && gd != 1) need = true;
    }
    if (!fits) {
        dc_set_error(DC_ERR_SHAPE, "reduce_to_shape: gradient %s (%s) cannot be summed to shape %s",
                     dc_shape_str(grad, sg, sizeof sg), dc_dtype_name(grad->dtype),
                     dc__shape_fmt(ndim, shape, st, sizeof st));
        return NULL;
    }
    if (!need) return dc__register(dc_tensor_retain(grad));

    const dc_backend *be = dc_backend_of(grad);
    if (!be) return NULL;
    if (!be->reduce || !be->reduce->reduce) {
        dc_backend_missing(be, "reduce_to_shape");
        return NULL;
    }
    /* kept dims: the input's dims that were not broadcast; their order in grad is the
     * order of the output, so the output (contiguous, of `shape`) lines up with them */
    int64_t ksh[DC_MAX_DIMS], kst[DC_MAX_DIMS], rsh[DC_MAX_DIMS], rst[DC_MAX_DIMS];
    int nk = 0, nr = 0;
    for (int i = 0; i < grad->ndim; i++) {
        bool reduced = i < lead || (shape[i - lead] == 1 && grad->shape[i] != 1);
        if (reduced) {
            rsh[nr] = grad->shape[i];
            rst[nr++] = grad->stride[i];
        } else {
            ksh[nk] = grad->shape[i];
            kst[nk++] = grad->stride[i];
        }
    }
    dc_tensor *out = dc__new(DC_F32, ndim, shape, grad->storage->device);
    if (!out) return NULL;
    if (be->reduce->reduce(DC_RED_SUM, dc_data(out), NULL, dc_data(grad), nk, ksh, kst, nr, rsh, rst, 0.0)) {
        dc__discard(out);
        return NULL;
    }
    return out;
}
