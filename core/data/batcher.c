/* core/data/batcher.c — mini-batches gathered into preallocated tensors.
 *
 * Everything is allocated in sl_batcher_new; sl_batcher_begin_epoch and
 * sl_batcher_next only write into that memory, so a training loop's steady
 * state allocates nothing here.  The batch handed out is a view (vx, vy) of
 * the full batch tensors (bx, by): for the final short batch only its leading
 * extent shrinks, which for a contiguous tensor is exactly the narrowed view
 * of the first rows, made without touching the reference count.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct sl_batcher {
    sl_tensor src_x, src_y; /* the dataset's tensors (one reference each) */
    sl_tensor bx, by;       /* batch capacity rows; owned */
    sl_tensor vx, vy;       /* what next() hands out: bx, by with shape[0] = rows;
                               borrowed views (no reference of their own) */
    int64_t *perm;          /* visiting order of the current epoch */
    int64_t n, batch, pos;  /* rows, batch size, next position in perm */
    int64_t x_row, y_row;   /* elements per row of x and y */
    uint64_t seed;
    bool shuffle, drop_last;
};

/* Gathers rows converting f32 <-> f64: one source, batcher_generic.h, included
 * once per direction. */
#define TD double
#define TS float
#define SUF(name) name##_f32_to_f64
#include "data/batcher_generic.h"
#define TD float
#define TS double
#define SUF(name) name##_f64_to_f32
#include "data/batcher_generic.h"

/* Same dtype: one memcpy per row. */
static void gather_bytes(void *dst, const void *src, const int64_t *rows, int64_t n,
                         size_t row_bytes)
{
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)dst + (size_t)i * row_bytes, (const char *)src + (size_t)rows[i] * row_bytes,
               row_bytes);
}

/* dst rows [0, n) = src rows perm[0..n); dtypes checked in sl_batcher_new. */
static void gather(sl_tensor *dst, const sl_tensor *src, const int64_t *rows, int64_t n,
                   int64_t width)
{
    if (dst->dtype == src->dtype)
        gather_bytes(dst->data, src->data, rows, n, (size_t)width * sl_dtype_size(src->dtype));
    else if (src->dtype == SL_F32)
        gather_f32_to_f64(dst->data, src->data, rows, n, width);
    else
        gather_f64_to_f32(dst->data, src->data, rows, n, width);
}

static int check_args(const sl_dataset *d, int64_t batch, sl_dtype x_dtype, bool drop_last)
{
    if (!d)
        return sl_error(SL_EINVAL, "batcher: dataset must not be NULL");
    if (d->x.ndim < 1 || d->y.ndim < 1 || d->x.shape[0] != d->y.shape[0] ||
        d->x.shape[0] == 0)
        return sl_error(SL_ESHAPE, "batcher: x and y need the same, non-zero number of rows "
                        "(%lld vs %lld)", (long long)(d->x.ndim ? d->x.shape[0] : 0),
                        (long long)(d->y.ndim ? d->y.shape[0] : 0));
    if (!sl_tensor_is_contiguous(&d->x) || !sl_tensor_is_contiguous(&d->y))
        return sl_error(SL_EINVAL, "batcher: dataset tensors must be contiguous");
    if (d->x.dtype != SL_F32 && d->x.dtype != SL_F64)
        return sl_error(SL_EDTYPE, "batcher: dataset x is %s (need f32 or f64)",
                        sl_dtype_name(d->x.dtype));
    if (x_dtype != SL_F32 && x_dtype != SL_F64)
        return sl_error(SL_EDTYPE, "batcher: batches can be f32 or f64, not %s",
                        sl_dtype_name(x_dtype));
    if (sl_dtype_size(d->y.dtype) == 0)
        return sl_error(SL_EDTYPE, "batcher: dataset y has unknown dtype %d", (int)d->y.dtype);
    if (batch < 1)
        return sl_error(SL_EINVAL, "batcher: batch size must be >= 1, got %lld",
                        (long long)batch);
    if (drop_last && batch > d->x.shape[0])
        return sl_error(SL_EINVAL, "batcher: batch size %lld with drop_last leaves no batch "
                        "of a dataset of %lld rows", (long long)batch,
                        (long long)d->x.shape[0]);
    return SL_OK;
}

/* Batch tensors like src (dtype `dtype`) with `rows` rows. */
static int alloc_batch(const sl_tensor *src, sl_dtype dtype, int64_t rows, sl_tensor *out)
{
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, src->shape, sizeof shape);
    shape[0] = rows;
    return sl_tensor_alloc(out, dtype, src->ndim, shape);
}

int sl_batcher_new(const sl_dataset *d, int64_t batch, sl_dtype x_dtype, bool shuffle,
                   uint64_t seed, bool drop_last, sl_batcher **out)
{
    if (!out)
        return sl_error(SL_EINVAL, "batcher: out must not be NULL");
    SL_TRY(check_args(d, batch, x_dtype, drop_last));
    sl_batcher *b = calloc(1, sizeof *b);
    if (!b)
        return sl_error(SL_ENOMEM, "batcher: out of memory");
    b->n = d->x.shape[0];
    b->batch = batch;
    b->seed = seed;
    b->shuffle = shuffle;
    b->drop_last = drop_last;
    b->x_row = sl_tensor_numel(&d->x) / b->n;
    b->y_row = sl_tensor_numel(&d->y) / b->n;
    int64_t cap = batch < b->n ? batch : b->n;
    b->perm = malloc((size_t)b->n * sizeof *b->perm);
    int rc = b->perm ? SL_OK : sl_error(SL_ENOMEM, "batcher: out of memory");
    if (rc == SL_OK)
        rc = alloc_batch(&d->x, x_dtype, cap, &b->bx);
    if (rc == SL_OK)
        rc = alloc_batch(&d->y, d->y.dtype, cap, &b->by);
    if (rc < 0) {
        sl_batcher_free(b);
        return rc;
    }
    b->src_x = sl_tensor_retain(&d->x);
    b->src_y = sl_tensor_retain(&d->y);
    sl_batcher_begin_epoch(b, 0);
    *out = b;
    return SL_OK;
}

void sl_batcher_free(sl_batcher *b)
{
    if (!b)
        return;
    sl_tensor_release(&b->src_x);
    sl_tensor_release(&b->src_y);
    sl_tensor_release(&b->bx);
    sl_tensor_release(&b->by);
    free(b->perm);
    free(b);
}

void sl_batcher_begin_epoch(sl_batcher *b, int64_t epoch)
{
    if (!b)
        return;
    /* Restart from the identity so the order depends on (seed, epoch) only,
     * not on the epochs visited before. */
    for (int64_t i = 0; i < b->n; i++)
        b->perm[i] = i;
    if (b->shuffle) {
        sl_rng r;
        sl_rng_derive(&r, b->seed, (uint64_t)epoch);
        sl_rng_shuffle(&r, b->perm, b->n);
    }
    b->pos = 0;
}

int sl_batcher_next(sl_batcher *b, const sl_tensor **x, const sl_tensor **y)
{
    if (!b || b->pos >= b->n)
        return 0;
    int64_t rows = b->n - b->pos < b->batch ? b->n - b->pos : b->batch;
    if (rows < b->batch && b->drop_last)
        return 0;
    const int64_t *order = b->perm + b->pos;
    gather(&b->bx, &b->src_x, order, rows, b->x_row);
    gather(&b->by, &b->src_y, order, rows, b->y_row);
    b->vx = b->bx;
    b->vx.shape[0] = rows;
    b->vy = b->by;
    b->vy.shape[0] = rows;
    b->pos += rows;
    if (x)
        *x = &b->vx;
    if (y)
        *y = &b->vy;
    return 1;
}

int64_t sl_batcher_nbatches(const sl_batcher *b)
{
    if (!b)
        return 0;
    /* Not (n + batch - 1) / batch: batch may be as large as INT64_MAX. */
    return b->n / b->batch + (!b->drop_last && b->n % b->batch != 0);
}
