/* core/tensor.c — tensors, storage and reference counting. */
#include "config.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "internal.h"

struct sl_storage {
    atomic_int refcount;
    size_t nbytes;
    void *data;
};

static const size_t dtype_sizes[SL_DTYPE_COUNT] = {4, 8, 16, 8, 1};
static const char *const dtype_names[SL_DTYPE_COUNT] = {"f32", "f64", "c128", "i64", "u8"};

size_t sl_dtype_size(sl_dtype dtype)
{
    return (unsigned)dtype < SL_DTYPE_COUNT ? dtype_sizes[dtype] : 0;
}

const char *sl_dtype_name(sl_dtype dtype)
{
    return (unsigned)dtype < SL_DTYPE_COUNT ? dtype_names[dtype] : "?";
}

int sl_dtype_parse(const char *name, sl_dtype *out)
{
    for (int i = 0; i < SL_DTYPE_COUNT; i++) {
        if (name && strcmp(name, dtype_names[i]) == 0) {
            *out = (sl_dtype)i;
            return SL_OK;
        }
    }
    return sl_error(SL_EINVAL, "unknown dtype '%s' (expected f32, f64, c128, i64 or u8)",
                    name ? name : "(null)");
}

void *sl_aligned_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        sl_error(SL_ENOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    size_t n = count * size;
    size_t rounded = (n + SL_ALIGNMENT - 1) / SL_ALIGNMENT * SL_ALIGNMENT;
    if (rounded == 0)
        rounded = SL_ALIGNMENT;
    void *p = aligned_alloc(SL_ALIGNMENT, rounded);
    if (!p) {
        sl_error(SL_ENOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void sl_aligned_free(void *p) { free(p); }

bool sl_numel_ok(int n, const int64_t *shape, int64_t *out)
{
    int64_t numel = 1;
    for (int i = 0; i < n; i++)
        if (!sl_mul_ok(numel, shape[i], &numel))
            return false;
    *out = numel;
    return true;
}

char *sl_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        sl_error(SL_ENOMEM, "out of memory");
    return d;
}

/* Fills shape and contiguous strides; checks ndim and extents. */
static int set_contiguous(sl_tensor *t, sl_dtype dtype, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > SL_MAX_DIMS)
        return sl_error(SL_EINVAL, "tensor: ndim %d out of range [0, %d]", ndim, SL_MAX_DIMS);
    if (sl_dtype_size(dtype) == 0)
        return sl_error(SL_EINVAL, "tensor: unknown dtype %d", (int)dtype);
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    t->dtype = dtype;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] < 0)
            return sl_error(SL_EINVAL, "tensor: negative extent %lld in dimension %d",
                            (long long)shape[i], i);
        t->shape[i] = shape[i];
        t->stride[i] = stride;
        if (shape[i] > 0 && stride > INT64_MAX / shape[i])
            return sl_error(SL_EINVAL, "tensor: element count overflows");
        stride *= shape[i] > 0 ? shape[i] : 1;
    }
    return SL_OK;
}

int sl_tensor_alloc(sl_tensor *t, sl_dtype dtype, int ndim, const int64_t *shape)
{
    sl_tensor tmp;
    SL_TRY(set_contiguous(&tmp, dtype, ndim, shape));
    int64_t n = sl_tensor_numel(&tmp);
    size_t esize = sl_dtype_size(dtype);
    if ((uint64_t)n > SIZE_MAX / esize)
        return sl_error(SL_ENOMEM, "tensor: %lld elements do not fit in memory", (long long)n);
    sl_storage *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "out of memory");
    s->nbytes = (size_t)n * esize;
    s->data = sl_aligned_calloc((size_t)n, esize);
    if (!s->data) {
        free(s);
        return SL_ENOMEM;
    }
    atomic_init(&s->refcount, 1);
    tmp.storage = s;
    tmp.data = n > 0 ? s->data : NULL;
    *t = tmp;
    return SL_OK;
}

int sl_tensor_wrap(sl_tensor *t, void *data, sl_dtype dtype, int ndim, const int64_t *shape)
{
    sl_tensor tmp;
    SL_TRY(set_contiguous(&tmp, dtype, ndim, shape));
    tmp.data = data;
    *t = tmp;
    return SL_OK;
}

sl_tensor sl_tensor_retain(const sl_tensor *t)
{
    if (t->storage)
        atomic_fetch_add_explicit(&t->storage->refcount, 1, memory_order_relaxed);
    return *t;
}

void sl_tensor_release(sl_tensor *t)
{
    if (!t)
        return;
    sl_storage *s = t->storage;
    if (s && atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) == 1) {
        sl_aligned_free(s->data);
        free(s);
    }
    memset(t, 0, sizeof *t);
}

void sl_tensor_release_all(sl_tensor *t, int n)
{
    for (int i = 0; i < n; i++)
        sl_tensor_release(&t[i]);
}

int64_t sl_tensor_numel(const sl_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t sl_tensor_nbytes(const sl_tensor *t)
{
    return (size_t)sl_tensor_numel(t) * sl_dtype_size(t->dtype);
}

bool sl_tensor_is_contiguous(const sl_tensor *t)
{
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            return false;
        expect *= t->shape[i];
    }
    return true;
}

bool sl_tensor_same_shape(const sl_tensor *a, const sl_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

const char *sl_shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    int n = snprintf(buf, size, "[");
    used = n > 0 ? (size_t)n : 0;
    for (int i = 0; i < ndim && used < size; i++) {
        n = snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

int sl_tensor_reshape(const sl_tensor *t, int ndim, const int64_t *shape, sl_tensor *out)
{
    if (!sl_tensor_is_contiguous(t))
        return sl_error(SL_EINVAL, "reshape: tensor is not contiguous");
    if (ndim < 0 || ndim > SL_MAX_DIMS)
        return sl_error(SL_EINVAL, "reshape: ndim %d out of range", ndim);
    int64_t resolved[SL_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        resolved[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0)
                return sl_error(SL_EINVAL, "reshape: more than one extent is -1");
            infer = i;
        } else if (shape[i] < 0) {
            return sl_error(SL_EINVAL, "reshape: negative extent %lld", (long long)shape[i]);
        } else if (!sl_mul_ok(known, shape[i], &known)) {
            char b[128];
            return sl_error(SL_ESHAPE, "reshape: the element count of %s overflows",
                            sl_shape_str(ndim, shape, b, sizeof b));
        }
    }
    int64_t numel = sl_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return sl_error(SL_ESHAPE, "reshape: cannot infer extent of %lld elements",
                            (long long)numel);
        resolved[infer] = numel / known;
        known = numel;
    }
    if (known != numel) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "reshape: %s has %lld elements, %s has %lld",
                        sl_shape_str(t->ndim, t->shape, a, sizeof a), (long long)numel,
                        sl_shape_str(ndim, resolved, b, sizeof b), (long long)known);
    }
    sl_tensor v;
    SL_TRY(set_contiguous(&v, t->dtype, ndim, resolved));
    v.data = t->data;
    v.storage = t->storage;
    sl_tensor_retain(&v);
    *out = v;
    return SL_OK;
}

int sl_tensor_narrow(const sl_tensor *t, int dim, int64_t start, int64_t length, sl_tensor *out)
{
    if (dim < 0 || dim >= t->ndim)
        return sl_error(SL_EINVAL, "narrow: dimension %d out of range for a %d-d tensor", dim,
                        t->ndim);
    if (start < 0 || length < 0 || start + length > t->shape[dim])
        return sl_error(SL_EINVAL, "narrow: [%lld, %lld) out of range [0, %lld) in dimension %d",
                        (long long)start, (long long)(start + length), (long long)t->shape[dim],
                        dim);
    sl_tensor v = *t;
    v.shape[dim] = length;
    if (t->data)
        v.data = (char *)t->data + start * t->stride[dim] * (int64_t)sl_dtype_size(t->dtype);
    sl_tensor_retain(&v);
    *out = v;
    return SL_OK;
}

int sl_tensor_transpose(const sl_tensor *t, int d0, int d1, sl_tensor *out)
{
    if (d0 < 0 || d0 >= t->ndim || d1 < 0 || d1 >= t->ndim)
        return sl_error(SL_EINVAL, "transpose: dimensions %d, %d out of range for a %d-d tensor",
                        d0, d1, t->ndim);
    sl_tensor v = *t;
    v.shape[d0] = t->shape[d1];
    v.shape[d1] = t->shape[d0];
    v.stride[d0] = t->stride[d1];
    v.stride[d1] = t->stride[d0];
    sl_tensor_retain(&v);
    *out = v;
    return SL_OK;
}

/* Byte offset of the element at a multi-index. */
static ptrdiff_t offset_of(const sl_tensor *t, const int64_t *index)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++)
        off += index[i] * t->stride[i];
    return (ptrdiff_t)(off * (int64_t)sl_dtype_size(t->dtype));
}

static double load_real(const void *p, sl_dtype dtype)
{
    switch (dtype) {
    case SL_F32: return *(const float *)p;
    case SL_F64: return *(const double *)p;
    case SL_C128: return *(const double *)p;
    case SL_I64: return (double)*(const int64_t *)p;
    case SL_U8: return *(const uint8_t *)p;
    }
    return 0.0;
}

static void store_real(void *p, sl_dtype dtype, double v)
{
    switch (dtype) {
    case SL_F32: *(float *)p = (float)v; break;
    case SL_F64: *(double *)p = v; break;
    case SL_C128: ((double *)p)[0] = v; ((double *)p)[1] = 0.0; break;
    case SL_I64: *(int64_t *)p = (int64_t)v; break;
    case SL_U8: *(uint8_t *)p = (uint8_t)v; break;
    }
}

double sl_tensor_get(const sl_tensor *t, const int64_t *index)
{
    return load_real((const char *)t->data + offset_of(t, index), t->dtype);
}

void sl_tensor_set(sl_tensor *t, const int64_t *index, double value)
{
    store_real((char *)t->data + offset_of(t, index), t->dtype, value);
}

double sl_tensor_flat_get(const sl_tensor *t, int64_t i)
{
    return load_real((const char *)t->data + i * (int64_t)sl_dtype_size(t->dtype), t->dtype);
}

/* Calls fn(dst_elem, src_elem) for every element of two same-shaped tensors
 * of any strides, walking the multi-index in row-major order. */
typedef void (*elem_fn)(void *dst, sl_dtype dd, const void *src, sl_dtype sd, double value);

static void for_each_pair(sl_tensor *dst, const sl_tensor *src, elem_fn fn, double value)
{
    int64_t n = sl_tensor_numel(dst);
    if (n == 0)
        return;
    int64_t idx[SL_MAX_DIMS] = {0};
    size_t dsz = sl_dtype_size(dst->dtype), ssz = src ? sl_dtype_size(src->dtype) : 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t doff = 0, soff = 0;
        for (int i = 0; i < dst->ndim; i++) {
            doff += idx[i] * dst->stride[i];
            if (src)
                soff += idx[i] * src->stride[i];
        }
        fn((char *)dst->data + doff * (int64_t)dsz, dst->dtype,
           src ? (const char *)src->data + soff * (int64_t)ssz : NULL, src ? src->dtype : SL_F64,
           value);
        for (int i = dst->ndim - 1; i >= 0; i--) {
            if (++idx[i] < dst->shape[i])
                break;
            idx[i] = 0;
        }
    }
}

static void copy_elem(void *dst, sl_dtype dd, const void *src, sl_dtype sd, double value)
{
    (void)value;
    if (dd == SL_C128)
        memcpy(dst, src, 16);
    else
        store_real(dst, dd, load_real(src, sd));
}

static void fill_elem(void *dst, sl_dtype dd, const void *src, sl_dtype sd, double value)
{
    (void)src;
    (void)sd;
    store_real(dst, dd, value);
}

int sl_tensor_copy(sl_tensor *dst, const sl_tensor *src)
{
    if (!sl_tensor_same_shape(dst, src)) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "copy: destination %s, source %s",
                        sl_shape_str(dst->ndim, dst->shape, a, sizeof a),
                        sl_shape_str(src->ndim, src->shape, b, sizeof b));
    }
    if ((dst->dtype == SL_C128) != (src->dtype == SL_C128))
        return sl_error(SL_EDTYPE, "copy: cannot convert %s to %s", sl_dtype_name(src->dtype),
                        sl_dtype_name(dst->dtype));
    if (dst->dtype == src->dtype && sl_tensor_is_contiguous(dst) &&
        sl_tensor_is_contiguous(src)) {
        if (dst->data != src->data && sl_tensor_nbytes(dst) > 0)
            memmove(dst->data, src->data, sl_tensor_nbytes(dst));
        return SL_OK;
    }
    for_each_pair(dst, src, copy_elem, 0.0);
    return SL_OK;
}

int sl_tensor_fill(sl_tensor *t, double value)
{
    if (t->dtype == SL_F32 && sl_tensor_is_contiguous(t)) {
        float *p = t->data, v = (float)value;
        for (int64_t i = 0, n = sl_tensor_numel(t); i < n; i++)
            p[i] = v;
        return SL_OK;
    }
    if (t->dtype == SL_F64 && sl_tensor_is_contiguous(t)) {
        double *p = t->data;
        for (int64_t i = 0, n = sl_tensor_numel(t); i < n; i++)
            p[i] = value;
        return SL_OK;
    }
    for_each_pair(t, NULL, fill_elem, value);
    return SL_OK;
}
