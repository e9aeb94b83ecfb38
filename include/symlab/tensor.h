/* symlab/tensor.h — the tensor ABI shared by the host and every plugin.
 *
 * A tensor is a strided view (sl_tensor, a plain value) onto a reference-
 * counted block of memory (sl_storage, opaque).  Views are cheap to make and
 * to copy; whoever obtains a view from sl_tensor_alloc(), sl_tensor_view()
 * or sl_tensor_retain() owns one reference and gives it back with
 * sl_tensor_release().  A zero-initialised sl_tensor (`sl_tensor t = {0};`)
 * is the empty tensor: releasing it is a no-op.
 *
 * Layout is row-major by convention: a contiguous tensor has
 * stride[ndim-1] == 1 and stride[i] == stride[i+1] * shape[i+1].
 */
#ifndef SYMLAB_TENSOR_H
#define SYMLAB_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types.  Append-only: values never change and are never reused. */
typedef enum sl_dtype {
    SL_F32 = 0,  /* float; the default for training */
    SL_F64 = 1,  /* double; gradient checks, conservation laws */
    SL_C128 = 2, /* double complex (re, im interleaved); quantum states */
    SL_I64 = 3,  /* int64_t; class labels */
    SL_U8 = 4    /* uint8_t; raw image bytes */
} sl_dtype;

#define SL_DTYPE_COUNT 5

/* Largest number of dimensions a tensor may have. */
#define SL_MAX_DIMS 6

/* Alignment, in bytes, of every block sl_tensor_alloc() returns. */
#define SL_ALIGNMENT 64

typedef struct sl_storage sl_storage; /* opaque, reference-counted owner */

typedef struct sl_tensor {
    void *data;                   /* first element of the view; NULL iff numel == 0 or empty */
    int64_t shape[SL_MAX_DIMS];   /* shape[i] >= 0 for i < ndim; entries >= ndim are 0 */
    int64_t stride[SL_MAX_DIMS];  /* in elements, never bytes; always filled in */
    int32_t ndim;                 /* 0 <= ndim <= SL_MAX_DIMS; 0 is a scalar (1 element) */
    sl_dtype dtype;
    sl_storage *storage;          /* owner of the memory; NULL for the empty tensor and for
                                     views wrapping foreign memory (sl_tensor_wrap) */
} sl_tensor;

/* Size in bytes of one element, 0 for an unknown dtype. */
SL_API size_t sl_dtype_size(sl_dtype dtype);
/* "f32", "f64", "c128", "i64", "u8"; "?" for an unknown dtype. */
SL_API const char *sl_dtype_name(sl_dtype dtype);
/* Parses a name of sl_dtype_name(); SL_EINVAL naming `name` if unknown. */
SL_API int sl_dtype_parse(const char *name, sl_dtype *out);

/* Allocates a contiguous, zero-filled tensor of the given shape into *t
 * (whose previous contents are overwritten, not released).  Memory is
 * SL_ALIGNMENT-aligned.  Errors: SL_EINVAL for a bad ndim or negative extent,
 * SL_ENOMEM. */
SL_API int sl_tensor_alloc(sl_tensor *t, sl_dtype dtype, int ndim, const int64_t *shape);

/* Makes *t a contiguous view of foreign memory that symlab does not own and
 * never frees (storage == NULL; retain/release are no-ops on it).  The caller
 * keeps `data` alive for as long as the view is used. */
SL_API int sl_tensor_wrap(sl_tensor *t, void *data, sl_dtype dtype, int ndim,
                          const int64_t *shape);

/* Takes one more reference to t's storage and returns a copy of the view. */
SL_API sl_tensor sl_tensor_retain(const sl_tensor *t);

/* Gives back the reference held by *t and resets *t to the empty tensor.
 * The memory is freed when the last reference goes. */
SL_API void sl_tensor_release(sl_tensor *t);

/* Number of elements (product of the shape; 1 for ndim == 0). */
SL_API int64_t sl_tensor_numel(const sl_tensor *t);
/* Bytes covered by the elements of a contiguous tensor: numel * dtype size. */
SL_API size_t sl_tensor_nbytes(const sl_tensor *t);
/* True if the view is row-major contiguous. */
SL_API bool sl_tensor_is_contiguous(const sl_tensor *t);
/* True if both have the same ndim and extents (dtype not compared). */
SL_API bool sl_tensor_same_shape(const sl_tensor *a, const sl_tensor *b);
/* Writes "[64, 1, 28, 28]" into buf (always NUL-terminated); returns buf. */
SL_API const char *sl_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* Views.  Each writes a new view holding its own reference into *out; *out
 * may alias *t only if the caller does not need *t afterwards (the reference
 * *t held is then released correctly exactly once by releasing *out). */

/* A view of t with another shape; t must be contiguous and the element count
 * unchanged.  One extent may be -1 (inferred). */
SL_API int sl_tensor_reshape(const sl_tensor *t, int ndim, const int64_t *shape,
                             sl_tensor *out);
/* The elements [start, start + length) along dimension `dim`. */
SL_API int sl_tensor_narrow(const sl_tensor *t, int dim, int64_t start, int64_t length,
                            sl_tensor *out);
/* The tensor with dimensions d0 and d1 swapped (no copy). */
SL_API int sl_tensor_transpose(const sl_tensor *t, int d0, int d1, sl_tensor *out);

/* Elementwise operations.  Any strides; shapes must match exactly. */

/* dst = src, converting between dtypes where both are real (f32, f64, i64,
 * u8); c128 copies only to c128. */
SL_API int sl_tensor_copy(sl_tensor *dst, const sl_tensor *src);
/* Sets every element to `value` (real part for c128). */
SL_API int sl_tensor_fill(sl_tensor *t, double value);

/* Typed element access for tests and slow paths: the element at the given
 * multi-index (ndim entries), converted to double. */
SL_API double sl_tensor_get(const sl_tensor *t, const int64_t *index);
SL_API void sl_tensor_set(sl_tensor *t, const int64_t *index, double value);

/* Element i of a contiguous tensor in row-major order, converted to double. */
SL_API double sl_tensor_flat_get(const sl_tensor *t, int64_t i);

#ifdef __cplusplus
}
#endif
#endif
