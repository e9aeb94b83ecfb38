/* core/data/dataset.c — dataset bookkeeping, statistics, normalisation,
 * subsets and seeded splits. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The rng stream of sl_dataset_split, apart from the batcher's per-epoch
 * streams (0, 1, 2, ...) so that a split and an epoch order drawn from the
 * same seed are unrelated. */
#define SPLIT_STREAM UINT64_C(0x73706c6974000000) /* "split" */

int64_t sl_dataset_size(const sl_dataset *d)
{
    return d && d->x.ndim > 0 ? d->x.shape[0] : 0;
}

void sl_dataset_release(sl_dataset *d)
{
    if (!d)
        return;
    sl_tensor_release(&d->x);
    sl_tensor_release(&d->y);
}

/* x must be a non-empty contiguous f32 or f64 tensor. */
static int check_real_x(const sl_dataset *d, const char *who)
{
    if (!d)
        return sl_error(SL_EINVAL, "%s: dataset must not be NULL", who);
    if (d->x.dtype != SL_F32 && d->x.dtype != SL_F64)
        return sl_error(SL_EDTYPE, "%s: x is %s (need f32 or f64)", who,
                        sl_dtype_name(d->x.dtype));
    if (!d->x.data || sl_tensor_numel(&d->x) == 0)
        return sl_error(SL_EINVAL, "%s: dataset is empty", who);
    if (!sl_tensor_is_contiguous(&d->x))
        return sl_error(SL_EINVAL, "%s: x is not contiguous", who);
    return SL_OK;
}

/* The loops, one source compiled for float and for double. */
#define SL_GENERIC_FILE "data/dataset_generic.h"
#include "generic_real.h"

int sl_dataset_stats(const sl_dataset *d, double *mean, double *std)
{
    SL_TRY(check_real_x(d, "dataset stats"));
    if (!mean || !std)
        return sl_error(SL_EINVAL, "dataset stats: mean and std must not be NULL");
    int64_t n = sl_tensor_numel(&d->x);
    if (d->x.dtype == SL_F32)
        stats_f32(d->x.data, n, mean, std);
    else
        stats_f64(d->x.data, n, mean, std);
    return SL_OK;
}

int sl_dataset_normalize(sl_dataset *d, double mean, double std)
{
    SL_TRY(check_real_x(d, "dataset normalize"));
    if (!isfinite(mean) || !isfinite(std) || std <= 0.0)
        return sl_error(SL_EINVAL, "dataset normalize: need a finite mean and std > 0, got "
                        "mean %g, std %g", mean, std);
    int64_t n = sl_tensor_numel(&d->x);
    if (d->x.dtype == SL_F32)
        normalize_f32(d->x.data, n, mean, std);
    else
        normalize_f64(d->x.data, n, mean, std);
    return SL_OK;
}

/* A new tensor like t but with `rows` rows. */
static int alloc_rows(const sl_tensor *t, int64_t rows, sl_tensor *out)
{
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = rows;
    return sl_tensor_alloc(out, t->dtype, t->ndim, shape);
}

/* dst row i = src row index[i], through one-row views (any strides, any
 * real dtype; same-dtype contiguous rows copy with one memmove). */
static int copy_rows(sl_tensor *dst, const sl_tensor *src, const int64_t *index, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        sl_tensor drow, srow;
        SL_TRY(sl_tensor_narrow(dst, 0, i, 1, &drow));
        int rc = sl_tensor_narrow(src, 0, index[i], 1, &srow);
        if (rc == SL_OK)
            rc = sl_tensor_copy(&drow, &srow);
        sl_tensor_release(&drow);
        sl_tensor_release(&srow);
        SL_TRY(rc);
    }
    return SL_OK;
}

static int check_pair(const sl_dataset *d, const char *who)
{
    if (!d)
        return sl_error(SL_EINVAL, "%s: dataset must not be NULL", who);
    if (d->x.ndim < 1 || d->y.ndim < 1 || d->x.shape[0] != d->y.shape[0])
        return sl_error(SL_ESHAPE, "%s: x and y must have the same leading extent (%lld vs "
                        "%lld)", who, (long long)(d->x.ndim ? d->x.shape[0] : -1),
                        (long long)(d->y.ndim ? d->y.shape[0] : -1));
    return SL_OK;
}

/* dst = a new tensor of `dtype` and the given shape holding src's values
 * (same element count): copied through a view of dst in src's shape, which
 * takes care of src's strides and dtype at once. */
static int converted_copy(const sl_tensor *src, sl_dtype dtype, int ndim, const int64_t *shape,
                          sl_tensor *dst)
{
    sl_tensor view;
    SL_TRY(sl_tensor_alloc(dst, dtype, ndim, shape));
    int rc = sl_tensor_reshape(dst, src->ndim, src->shape, &view);
    if (rc == SL_OK) {
        rc = sl_tensor_copy(&view, src);
        sl_tensor_release(&view);
    }
    if (rc < 0)
        sl_tensor_release(dst);
    return rc;
}

int sl_dataset_from_tensors(const sl_tensor *x, const sl_tensor *y, sl_dataset *out)
{
    if (x->dtype == SL_C128 || y->dtype == SL_C128)
        return sl_error(SL_EDTYPE, "dataset: x and y must be real, got %s and %s",
                        sl_dtype_name(x->dtype), sl_dtype_name(y->dtype));
    if (x->ndim < 2 || y->ndim < 1 || y->ndim > 2 || x->shape[0] != y->shape[0]) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "dataset: need x (N, ...) and y (N) or (N, k), got %s and %s",
                        sl_shape_str(x->ndim, x->shape, a, sizeof a),
                        sl_shape_str(y->ndim, y->shape, b, sizeof b));
    }
    sl_dataset d = {0};
    int64_t n = x->shape[0];
    int64_t yshape[2] = {n, y->ndim == 2 ? y->shape[1] : 1};
    int rc = converted_copy(x, SL_F32, x->ndim, x->shape, &d.x);
    if (rc == SL_OK)
        rc = y->dtype == SL_I64 && y->ndim == 1 ? converted_copy(y, SL_I64, 1, y->shape, &d.y)
                                                : converted_copy(y, SL_F32, 2, yshape, &d.y);
    if (rc < 0) {
        sl_dataset_release(&d);
        return rc;
    }
    *out = d;
    return SL_OK;
}

int sl_dataset_subset(const sl_dataset *d, const int64_t *index, int64_t n, sl_dataset *out)
{
    SL_TRY(check_pair(d, "dataset subset"));
    if (!out || n < 0 || (n > 0 && !index))
        return sl_error(SL_EINVAL, "dataset subset: bad arguments (n %lld)", (long long)n);
    int64_t size = d->x.shape[0];
    for (int64_t i = 0; i < n; i++)
        if (index[i] < 0 || index[i] >= size)
            return sl_error(SL_EINVAL, "dataset subset: index[%lld] = %lld out of range "
                            "[0, %lld)", (long long)i, (long long)index[i], (long long)size);
    sl_dataset s = {0};
    int rc = alloc_rows(&d->x, n, &s.x);
    if (rc == SL_OK)
        rc = alloc_rows(&d->y, n, &s.y);
    if (rc == SL_OK)
        rc = copy_rows(&s.x, &d->x, index, n);
    if (rc == SL_OK)
        rc = copy_rows(&s.y, &d->y, index, n);
    if (rc < 0) {
        sl_dataset_release(&s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

int sl_dataset_head_x(const sl_dataset *d, int64_t rows, sl_dtype dtype, sl_tensor *out)
{
    SL_TRY(check_pair(d, "dataset head"));
    const int64_t n = d->x.shape[0];
    if (!out || rows < 1 || n < 1)
        return sl_error(SL_EINVAL, "dataset head: need rows >= 1 of a non-empty dataset (rows "
                        "%lld, size %lld)", (long long)rows, (long long)n);
    sl_tensor view = {0}, t = {0};
    SL_TRY(sl_tensor_narrow(&d->x, 0, 0, rows < n ? rows : n, &view));
    int rc = sl_tensor_alloc(&t, dtype, view.ndim, view.shape);
    if (rc >= 0)
        rc = sl_tensor_copy(&t, &view);
    sl_tensor_release(&view);
    if (rc < 0) {
        sl_tensor_release(&t);
        return rc;
    }
    *out = t;
    return SL_OK;
}

int sl_dataset_split(const sl_dataset *d, int64_t n_first, uint64_t seed, sl_dataset *first,
                     sl_dataset *rest)
{
    SL_TRY(check_pair(d, "dataset split"));
    int64_t n = d->x.shape[0];
    if (!first || !rest || n_first < 0 || n_first > n)
        return sl_error(SL_EINVAL, "dataset split: first part of %lld rows out of range "
                        "[0, %lld]", (long long)n_first, (long long)n);
    int64_t *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
    if (!perm)
        return sl_error(SL_ENOMEM, "dataset split: out of memory");
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    sl_rng r;
    sl_rng_derive(&r, seed, SPLIT_STREAM);
    sl_rng_shuffle(&r, perm, n);
    sl_dataset a = {0}, b = {0};
    int rc = sl_dataset_subset(d, perm, n_first, &a);
    if (rc == SL_OK)
        rc = sl_dataset_subset(d, perm + n_first, n - n_first, &b);
    free(perm);
    if (rc < 0) {
        sl_dataset_release(&a);
        return rc;
    }
    *first = a;
    *rest = b;
    return SL_OK;
}
