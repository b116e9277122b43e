/* tensor.c: tensor and storage lifetime, creation, geometry helpers, element access, copies
 * and dtype conversion. Arithmetic lives in src/ops; views with autograd in src/ops/view.c. */
#include <math.h>

#include "internal.h"

/* ---------------------------------------------------------------------------------------
 * dtypes and devices
 * ------------------------------------------------------------------------------------- */

size_t dc_dtype_size(dc_dtype dtype)
{
    static const size_t sizes[DC_DTYPE_COUNT] = {4, 2, 2, 8, 4, 1, 1};
    return (unsigned)dtype < DC_DTYPE_COUNT ? sizes[dtype] : 0;
}

const char *dc_dtype_name(dc_dtype dtype)
{
    static const char *names[DC_DTYPE_COUNT] = {"F32", "F16", "BF16", "I64", "I32", "U8", "BOOL"};
    return (unsigned)dtype < DC_DTYPE_COUNT ? names[dtype] : "?";
}

const char *dc_device_name(dc_device device)
{
    switch (device) {
    case DC_CPU: return "cpu";
    case DC_CUDA: return "cuda";
    default: return "?";
    }
}

/* ---------------------------------------------------------------------------------------
 * fp16 / bf16
 * ------------------------------------------------------------------------------------- */

float dc__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t dc__f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) { /* subnormal half (or zero) */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23;
        uint32_t man = (absx & 0x7fffff) | 0x800000;
        int shift = (int)(126 - e); /* half = mantissa * 2^(e - 126), e in [102, 112] */
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float dc__bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t dc__f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    uint32_t rounding = 0x7fff + ((x >> 16) & 1);
    return (uint16_t)((x + rounding) >> 16);
}

/* ---------------------------------------------------------------------------------------
 * Geometry helpers
 * ------------------------------------------------------------------------------------- */

void dc__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

int64_t dc__shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

const char *dc__shape_fmt(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld",
                                 (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

const char *dc_shape_str(const dc_tensor *t, char *buf, size_t size)
{
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    return dc__shape_fmt(t->ndim, t->shape, buf, size);
}

dc_status dc__wrap_dim(const char *op, int dim, int ndim, int *out)
{
    int lo = ndim > 0 ? -ndim : -1, hi = ndim > 0 ? ndim - 1 : 0;
    if (dim < lo || dim > hi)
        return dc_set_error(DC_ERR_ARG, "%s: dim %d out of range for a %d-d tensor (expected %d..%d)",
                            op, dim, ndim, lo, hi);
    *out = dim < 0 ? dim + (ndim > 0 ? ndim : 1) : dim;
    return DC_OK;
}

bool dc__check_inputs(const char *op, int n, dc_tensor *const *ts)
{
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            if (dc_last_status() == DC_OK)
                dc_set_error(DC_ERR_ARG, "%s: input %d is NULL", op, i);
            return false;
        }
    }
    for (int i = 1; i < n; i++) {
        if (ts[i]->storage->device != ts[0]->storage->device) {
            dc_set_error(DC_ERR_DEVICE, "%s: input %d is on %s but input 0 is on %s", op, i,
                         dc_device_name(ts[i]->storage->device),
                         dc_device_name(ts[0]->storage->device));
            return false;
        }
    }
    return true;
}

dc_status dc__check_f32(const char *op, const dc_tensor *t, const char *what)
{
    if (t->dtype != DC_F32)
        return dc_set_error(DC_ERR_DTYPE, "%s: %s must be F32, got %s", op, what,
                            dc_dtype_name(t->dtype));
    return DC_OK;
}

dc_status dc__check_same_device(const char *op, const dc_tensor *a, const dc_tensor *b)
{
    if (a->storage->device != b->storage->device)
        return dc_set_error(DC_ERR_DEVICE, "%s: tensors on %s and %s", op,
                            dc_device_name(a->storage->device), dc_device_name(b->storage->device));
    return DC_OK;
}

dc_status dc__broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                               int *nout, int64_t *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) {
            char sa[DC_SHAPE_STR_MAX], sb[DC_SHAPE_STR_MAX];
            return dc_set_error(DC_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)",
                                op, dc__shape_fmt(na, a, sa, sizeof sa), dc__shape_fmt(nb, b, sb, sizeof sb),
                                i, (long long)da, (long long)db);
        }
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------
 * Storage and tensor lifetime
 * ------------------------------------------------------------------------------------- */

static dc_storage *storage_new(size_t nbytes, dc_device device)
{
    const dc_backend *be = dc_backend_get(device);
    if (!be) return NULL;
    dc_storage *s = dc__malloc(sizeof *s);
    if (!s) return NULL;
    s->data = be->alloc(nbytes, &s->capacity);
    if (!s->data) {
        free(s);
        return NULL;
    }
    s->nbytes = nbytes;
    s->refcount = 1;
    s->overwritten_refs = 0;
    s->device = device;
    s->release = NULL;
    s->release_ctx = NULL;
    return s;
}

static void storage_release(dc_storage *s)
{
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (s->release) {
        s->release(s->release_ctx);
    } else {
        const dc_backend *be = dc_backend_get(s->device);
        if (be) be->free(s->data, s->capacity);
    }
    free(s);
}

static dc_tensor *tensor_struct(dc_storage *s, dc_dtype dtype, int ndim, const int64_t *shape)
{
    dc_tensor *t = dc__calloc(1, sizeof *t);
    if (!t) return NULL;
    t->storage = s;
    t->ndim = ndim;
    t->dtype = dtype;
    t->refcount = 1;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    dc__contiguous_strides(ndim, shape, t->stride);
    dc__live_add(1);
    return t;
}

static dc_status check_shape(const char *op, dc_dtype dtype, int ndim, const int64_t *shape)
{
    if ((unsigned)dtype >= DC_DTYPE_COUNT) return dc_set_error(DC_ERR_DTYPE, "%s: unknown dtype %d", op, (int)dtype);
    if (ndim < 0 || ndim > DC_MAX_DIMS)
        return dc_set_error(DC_ERR_ARG, "%s: %d dims requested, at most %d are supported", op, ndim, DC_MAX_DIMS);
    if (ndim > 0 && !shape) return dc_set_error(DC_ERR_ARG, "%s: shape is NULL", op);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return dc_set_error(DC_ERR_ARG, "%s: negative size %lld at dim %d", op, (long long)shape[i], i);
        if (shape[i] && n > INT64_MAX / 16 / shape[i])
            return dc_set_error(DC_ERR_OOM, "%s: shape too large", op);
        n *= shape[i];
    }
    return DC_OK;
}

dc_tensor *dc__new(dc_dtype dtype, int ndim, const int64_t *shape, dc_device device)
{
    dc__ensure_init();
    if (check_shape("empty", dtype, ndim, shape)) return NULL;
    size_t nbytes = (size_t)dc__shape_numel(ndim, shape) * dc_dtype_size(dtype);
    dc_storage *s = storage_new(nbytes, device);
    if (!s) return NULL;
    dc_tensor *t = tensor_struct(s, dtype, ndim, shape);
    if (!t) {
        storage_release(s);
        return NULL;
    }
    return dc__register(t);
}

dc_tensor *dc__new_zeros(dc_dtype dtype, int ndim, const int64_t *shape, dc_device device)
{
    dc_tensor *t = dc__new(dtype, ndim, shape, device);
    if (t) dc_backend_get(device)->memset_zero(t->storage->data, t->storage->nbytes);
    return t;
}

dc_tensor *dc__view(const dc_tensor *base, int ndim, const int64_t *shape, const int64_t *stride,
                    int64_t offset)
{
    dc_tensor *t = dc__calloc(1, sizeof *t);
    if (!t) return NULL;
    __atomic_add_fetch(&base->storage->refcount, 1, __ATOMIC_RELAXED);
    t->storage = base->storage;
    t->offset = offset;
    t->ndim = ndim;
    t->dtype = base->dtype;
    t->refcount = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->stride[i] = stride[i];
    }
    dc__live_add(1);
    return dc__register(t);
}

dc_tensor *dc_tensor_retain(dc_tensor *t)
{
    if (t) __atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
    return t;
}

void dc_tensor_release(dc_tensor *t)
{
    if (!t || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    dc_tensor_release(t->grad);
    if (t->grad_fn) dc__node_release(t->grad_fn);
    if (t->overwritten) __atomic_sub_fetch(&t->storage->overwritten_refs, 1, __ATOMIC_ACQ_REL);
    storage_release(t->storage);
    dc__live_add(-1);
    free(t);
}

/* ---------------------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------------------- */

dc_tensor *dc_empty(dc_dtype dtype, int ndim, const int64_t *shape)
{
    return dc__new(dtype, ndim, shape, DC_CPU);
}

dc_tensor *dc_zeros(dc_dtype dtype, int ndim, const int64_t *shape)
{
    return dc__new_zeros(dtype, ndim, shape, DC_CPU);
}

dc_tensor *dc_full(dc_dtype dtype, int ndim, const int64_t *shape, double value)
{
    dc_tensor *t = dc__new(dtype, ndim, shape, DC_CPU);
    if (t && dc_backend_of(t)->fill(t->storage->data, dtype, dc_numel(t), value)) {
        /* the pool (or nobody) owns t; leaving it to the pool is correct, but without a
         * pool the caller never sees it, so release here */
        dc__discard(t);
        return NULL;
    }
    return t;
}

dc_tensor *dc_ones(dc_dtype dtype, int ndim, const int64_t *shape)
{
    return dc_full(dtype, ndim, shape, 1.0);
}

dc_tensor *dc_scalar(float value)
{
    return dc_full(DC_F32, 0, NULL, value);
}

dc_tensor *dc_from_data(dc_dtype dtype, int ndim, const int64_t *shape, const void *data)
{
    if (!data) {
        dc_set_error(DC_ERR_ARG, "from_data: data is NULL");
        return NULL;
    }
    dc_tensor *t = dc__new(dtype, ndim, shape, DC_CPU);
    if (t) dc_backend_of(t)->memcpy(t->storage->data, data, t->storage->nbytes);
    return t;
}

dc_tensor *dc_arange(dc_dtype dtype, double start, double end, double step)
{
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step) ||
        (end - start) / step < 0) {
        dc_set_error(DC_ERR_ARG, "arange: bad range start=%g end=%g step=%g", start, end, step);
        return NULL;
    }
    int64_t n = (int64_t)ceil((end - start) / step);
    dc_tensor *t = dc__new(dtype, 1, (int64_t[]){n}, DC_CPU);
    if (!t) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = start + (double)i * step;
        switch (dtype) {
        case DC_F32: ((float *)t->storage->data)[i] = (float)v; break;
        case DC_F16: ((uint16_t *)t->storage->data)[i] = dc__f32_to_f16((float)v); break;
        case DC_BF16: ((uint16_t *)t->storage->data)[i] = dc__f32_to_bf16((float)v); break;
        case DC_I64: ((int64_t *)t->storage->data)[i] = (int64_t)v; break;
        case DC_I32: ((int32_t *)t->storage->data)[i] = (int32_t)v; break;
        default: ((uint8_t *)t->storage->data)[i] = (uint8_t)v; break;
        }
    }
    return t;
}

dc_tensor *dc_zeros_like(const dc_tensor *t)
{
    if (!t) return NULL;
    return dc__new_zeros(t->dtype, t->ndim, t->shape, t->storage->device);
}

dc_tensor *dc_empty_like(const dc_tensor *t)
{
    if (!t) return NULL;
    return dc__new(t->dtype, t->ndim, t->shape, t->storage->device);
}

static void release_nothing(void *ctx) { (void)ctx; }

dc_tensor *dc_from_external(dc_dtype dtype, int ndim, const int64_t *shape, void *data,
                            void (*release)(void *ctx), void *ctx)
{
    dc__ensure_init();
    if (check_shape("from_external", dtype, ndim, shape)) return NULL;
    dc_storage *s = dc__malloc(sizeof *s);
    if (!s) return NULL;
    s->data = data;
    s->nbytes = (size_t)dc__shape_numel(ndim, shape) * dc_dtype_size(dtype);
    s->capacity = s->nbytes;
    s->refcount = 1;
    s->overwritten_refs = 0;
    s->device = DC_CPU;
    /* Until the tensor is safely registered the caller still owns data: a failure below must
     * not call `release`, and the backend must never free external memory. */
    s->release = release_nothing;
    s->release_ctx = NULL;
    dc_tensor *t = tensor_struct(s, dtype, ndim, shape);
    if (!t) {
        free(s);
        return NULL;
    }
    if (!dc__register(t)) return NULL; /* released with release_nothing: data untouched */
    s->release = release ? release : release_nothing;
    s->release_ctx = ctx;
    return t;
}

/* ---------------------------------------------------------------------------------------
 * Queries and element access
 * ------------------------------------------------------------------------------------- */

int64_t dc_numel(const dc_tensor *t) { return t ? dc__shape_numel(t->ndim, t->shape) : 0; }

bool dc_is_contiguous(const dc_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

dc_device dc_tensor_device(const dc_tensor *t) { return t->storage->device; }

bool dc_same_shape(const dc_tensor *a, const dc_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

void *dc_data(const dc_tensor *t)
{
    if (!t) return NULL;
    return (char *)t->storage->data + (size_t)t->offset * dc_dtype_size(t->dtype);
}

float *dc_data_f32(const dc_tensor *t)
{
    if (!t || t->dtype != DC_F32) {
        if (t) dc_set_error(DC_ERR_DTYPE, "data_f32: tensor is %s", dc_dtype_name(t->dtype));
        return NULL;
    }
    return (float *)dc_data(t);
}

static double load_elem(const void *p, dc_dtype dtype)
{
    switch (dtype) {
    case DC_F32: return *(const float *)p;
    case DC_F16: return dc__f16_to_f32(*(const uint16_t *)p);
    case DC_BF16: return dc__bf16_to_f32(*(const uint16_t *)p);
    case DC_I64: return (double)*(const int64_t *)p;
    case DC_I32: return *(const int32_t *)p;
    case DC_U8:
    case DC_BOOL: return *(const uint8_t *)p;
    default: return NAN;
    }
}

double dc_item(const dc_tensor *t)
{
    if (!t) return NAN;
    if (dc_numel(t) != 1) {
        char s[DC_SHAPE_STR_MAX];
        dc_set_error(DC_ERR_SHAPE, "item: tensor of shape %s has %lld elements, expected 1",
                     dc_shape_str(t, s, sizeof s), (long long)dc_numel(t));
        return NAN;
    }
    if (t->storage->device != DC_CPU) {
        float v = NAN;
        if (dc_copy_to_f32(t, &v, 1)) return NAN;
        return v;
    }
    return load_elem(dc_data(t), t->dtype);
}

dc_status dc_copy_to_f32(const dc_tensor *t, float *out, int64_t n)
{
    if (!t || !out) return dc_set_error(DC_ERR_ARG, "copy_to_f32: NULL argument");
    if (n != dc_numel(t))
        return dc_set_error(DC_ERR_SHAPE, "copy_to_f32: buffer holds %lld elements, tensor has %lld",
                            (long long)n, (long long)dc_numel(t));
    if (t->storage->device != DC_CPU)
        return dc_set_error(DC_ERR_DEVICE, "copy_to_f32: tensor is on %s", dc_device_name(t->storage->device));
    int64_t stride[DC_MAX_DIMS];
    dc__contiguous_strides(t->ndim, t->shape, stride);
    return dc_backend_of(t)->copy_strided(out, DC_F32, stride, dc_data(t), t->dtype, t->stride,
                                          t->ndim, t->shape);
}

dc_status dc_copy_(dc_tensor *dst, const dc_tensor *src)
{
    if (!dst || !src) return dc_set_error(DC_ERR_ARG, "copy_: NULL argument");
    if (dc_numel(dst) != dc_numel(src)) {
        char a[DC_SHAPE_STR_MAX], b[DC_SHAPE_STR_MAX];
        return dc_set_error(DC_ERR_SHAPE, "copy_: destination %s and source %s differ in size",
                            dc_shape_str(dst, a, sizeof a), dc_shape_str(src, b, sizeof b));
    }
    if (dc__check_same_device("copy_", dst, src)) return dc_last_status();
    const dc_backend *be = dc_backend_of(dst);
    if (dc_same_shape(dst, src))
        return be->copy_strided(dc_data(dst), dst->dtype, dst->stride, dc_data(src), src->dtype,
                                src->stride, dst->ndim, dst->shape);
    /* same numel, different shapes: both must be walkable in row-major order */
    if (!dc_is_contiguous(dst) || !dc_is_contiguous(src))
        return dc_set_error(DC_ERR_SHAPE, "copy_: shapes differ and a tensor is not contiguous");
    int64_t n = dc_numel(dst), one = 1;
    return be->copy_strided(dc_data(dst), dst->dtype, &one, dc_data(src), src->dtype, &one, 1, &n);
}

dc_status dc_fill_(dc_tensor *t, double value)
{
    if (!t) return dc_set_error(DC_ERR_ARG, "fill_: NULL tensor");
    const dc_backend *be = dc_backend_of(t);
    if (dc_is_contiguous(t)) return be->fill(dc_data(t), t->dtype, dc_numel(t), value);
    /* broadcast a one-element source over the strided destination */
    dc_tensor *one = dc__new(t->dtype, 0, NULL, t->storage->device);
    if (!one) return dc_last_status();
    dc_status st = be->fill(dc_data(one), t->dtype, 1, value);
    int64_t zero[DC_MAX_DIMS] = {0};
    if (!st)
        st = be->copy_strided(dc_data(t), t->dtype, t->stride, dc_data(one), t->dtype, zero,
                              t->ndim, t->shape);
    dc__discard(one);
    return st;
}

dc_tensor *dc_to_dtype(const dc_tensor *t, dc_dtype dtype)
{
    if (!t) return NULL;
    if (t->dtype == dtype) return dc__register(dc_tensor_retain((dc_tensor *)t));
    dc_tensor *out = dc__new(dtype, t->ndim, t->shape, t->storage->device);
    if (!out) return NULL;
    if (dc_backend_of(t)->copy_strided(out->storage->data, dtype, out->stride, dc_data(t), t->dtype,
                                       t->stride, t->ndim, t->shape)) {
        dc__discard(out);
        return NULL;
    }
    return out;
}

/* contiguous and clone: copies whose gradient is the incoming gradient itself */
static dc_status copy_backward(dc_node *node, dc_tensor *grad_out, dc_tensor **grad_in)
{
    DC_UNUSED(node);
    grad_in[0] = grad_out;
    return DC_OK;
}

dc_tensor *dc_clone(dc_tensor *t)
{
    if (!dc__check_inputs("clone", 1, &t)) return NULL;
    dc_tensor *out = dc__new(t->dtype, t->ndim, t->shape, t->storage->device);
    if (!out) return NULL;
    if (dc_backend_of(t)->copy_strided(out->storage->data, t->dtype, out->stride, dc_data(t),
                                       t->dtype, t->stride, t->ndim, t->shape)) {
        dc__discard(out);
        return NULL;
    }
    dc__record(out, "clone", copy_backward, 1, &t);
    return out;
}

dc_tensor *dc_contiguous(dc_tensor *t)
{
    if (!t) return NULL;
    if (dc_is_contiguous(t)) return dc__register(dc_tensor_retain(t));
    return dc_clone(t);
}

dc_tensor *dc__dense(dc_tensor *x)
{
    if (dc_is_contiguous(x)) return dc__register(dc_tensor_retain(x));
    dc_tensor *c = dc__new(x->dtype, x->ndim, x->shape, x->storage->device);
    if (!c) return NULL;
    if (dc_backend_of(x)->copy_strided(dc_data(c), c->dtype, c->stride, dc_data(x), x->dtype, x->stride, x->ndim,
                                       x->shape)) {
        dc__discard(c);
        return NULL;
    }
    return c;
}
