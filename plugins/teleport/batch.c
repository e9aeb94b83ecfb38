/* plugins/teleport/batch.c — the teleport batch: `batch` distinct random
 * rows of the training set (a seeded partial shuffle per teleport), or the
 * current training batch, in f64. */
#include "config.h"

#include <stdlib.h>

#include "tp.h"

/* Shape of `like` with its leading extent replaced by b. */
static int alloc_rows(sl_tensor *out, sl_dtype dt, const sl_tensor *like, int64_t b)
{
    int64_t shape[SL_MAX_DIMS];
    for (int i = 0; i < like->ndim; i++)
        shape[i] = like->shape[i];
    shape[0] = b;
    return sl_tensor_alloc(out, dt, like->ndim, shape);
}

int tp_batch_begin(tp_state *s, sl_train_ctx *ctx, int64_t b)
{
    int64_t N = sl_dataset_size(ctx->data);
    if (b <= 0)
        return SL_OK;
    b = b < N ? b : N;
    SL_TRY(alloc_rows(&s->x, SL_F64, &ctx->data->x, b));
    SL_TRY(alloc_rows(&s->y, ctx->data->y.dtype, &ctx->data->y, b));
    if (!(s->perm = malloc((size_t)N * sizeof *s->perm)))
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    s->nperm = N;
    return SL_OK;
}

/* Copies row `from` of src into row `to` of dst (converting the dtype). */
static int copy_row(sl_tensor *dst, int64_t to, const sl_tensor *src, int64_t from)
{
    sl_tensor a, b;
    SL_TRY(sl_tensor_narrow(dst, 0, to, 1, &a));
    int rc = sl_tensor_narrow(src, 0, from, 1, &b);
    if (rc >= 0)
        rc = sl_tensor_copy(&a, &b);
    sl_tensor_release(&a);
    sl_tensor_release(&b);
    return rc;
}

/* Fills the teleport batch: random rows of the training set, or the current
 * batch converted to f64. */
int tp_fill_batch(tp_state *s, sl_train_ctx *ctx, const sl_tensor **x, const sl_tensor **y)
{
    if (!s->perm) {
        if (!ctx->x)
            return sl_error(SL_ESTATE, "teleport: no current batch");
        sl_tensor_release(&s->x);
        SL_TRY(alloc_rows(&s->x, SL_F64, ctx->x, ctx->x->shape[0]));
        SL_TRY(sl_tensor_copy(&s->x, ctx->x));
        *x = &s->x;
        *y = ctx->y;
        return SL_OK;
    }
    sl_rng r;
    sl_rng_derive(&r, s->seed, 0x7e1e0000u + (uint64_t)s->teleports);
    int64_t b = s->x.shape[0];
    for (int64_t i = 0; i < s->nperm; i++)
        s->perm[i] = i;
    for (int64_t i = 0; i < b; i++) { /* partial Fisher-Yates: b distinct rows */
        int64_t j = i + (int64_t)sl_rng_below(&r, (uint64_t)(s->nperm - i));
        int64_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
        SL_TRY(copy_row(&s->x, i, &ctx->data->x, s->perm[i]));
        SL_TRY(copy_row(&s->y, i, &ctx->data->y, s->perm[i]));
    }
    *x = &s->x;
    *y = &s->y;
    return SL_OK;
}

/* X (features x batch) from a batch-first f64 tensor. */
tp_mat tp_batch_columns(tp_arena *a, const sl_tensor *x)
{
    int64_t b = x->shape[0], d = sl_tensor_numel(x) / (b > 0 ? b : 1);
    tp_mat X = tp_mat_new(a, d, b);
    if (X.p)
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < d; j++)
                *tp_at(&X, j, i) = ((const double *)x->data)[i * d + j];
    return X;
}

