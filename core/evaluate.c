/* core/evaluate.c — loss and accuracy of a model on a dataset, and the loss
 * (with gradient) of one batch. */
#include "config.h"

#include <math.h>

#include "internal.h"
#include "model_internal.h"

int64_t sl_count_correct(const sl_tensor *pred, const sl_tensor *y)
{
    if (y->dtype != SL_I64 || pred->ndim != 2 || !sl_tensor_is_contiguous(pred))
        return 0;
    int64_t rows = pred->shape[0], cols = pred->shape[1], correct = 0;
    const int64_t *labels = y->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        if (pred->dtype == SL_F32) {
            const float *p = (const float *)pred->data + r * cols;
            for (int64_t c = 1; c < cols; c++)
                if (p[c] > p[best])
                    best = c;
        } else {
            const double *p = (const double *)pred->data + r * cols;
            for (int64_t c = 1; c < cols; c++)
                if (p[c] > p[best])
                    best = c;
        }
        correct += best == labels[r * y->stride[0]];
    }
    return correct;
}

int sl_loss_backward(sl_model *model, const sl_loss_type *loss, const sl_tensor *x,
                     const sl_tensor *y, bool want_grad, double *value, const sl_tensor **pred)
{
    SL_TRY(sl_model_forward(model, x, pred));
    sl_tensor *grad = NULL;
    if (want_grad)
        SL_TRY(sl_model_loss_buffer(model, *pred, &grad));
    int rc = loss->forward(*pred, y, value, grad);
    if (rc < 0)
        return sl_error_context(rc, "loss %s", loss->name);
    if (!isfinite(*value))
        return SL_OK; /* the caller decides; backpropagating NaN helps nobody */
    return want_grad ? sl_model_backward(model, grad) : SL_OK;
}

int sl_model_loss(sl_model *model, const sl_loss_type *loss, const sl_tensor *x,
                  const sl_tensor *y, bool want_grad, double *value)
{
    const sl_tensor *pred;
    if (want_grad)
        sl_model_zero_grad(model);
    return sl_loss_backward(model, loss, x, y, want_grad, value, &pred);
}

/* Batches of an evaluation: views of the dataset's own rows when they are
 * already in the model's dtype (no copy: evaluation visits the rows in
 * order), else the batcher's converted copies. */
typedef struct eval_batches {
    const sl_dataset *data;
    sl_batcher *batcher; /* NULL: views */
    int64_t batch, pos;
    sl_tensor vx, vy;
} eval_batches;

static bool viewable(const sl_dataset *d, sl_dtype dtype)
{
    return d->x.dtype == dtype && d->x.ndim >= 1 && d->y.ndim >= 1 &&
           d->x.shape[0] == d->y.shape[0] && d->x.shape[0] > 0 &&
           sl_tensor_is_contiguous(&d->x) && sl_tensor_is_contiguous(&d->y);
}

static int batches_open(eval_batches *e, const sl_dataset *d, int64_t batch, sl_dtype dtype)
{
    *e = (eval_batches){.data = d, .batch = batch};
    if (viewable(d, dtype))
        return SL_OK;
    SL_TRY(sl_batcher_new(d, batch, dtype, false, 0, false, &e->batcher));
    sl_batcher_begin_epoch(e->batcher, 0);
    return SL_OK;
}

/* 1 and the next batch, 0 past the last, or a negative status. */
static int batches_next(eval_batches *e, const sl_tensor **x, const sl_tensor **y)
{
    if (e->batcher)
        return sl_batcher_next(e->batcher, x, y);
    int64_t n = e->data->x.shape[0], len = n - e->pos < e->batch ? n - e->pos : e->batch;
    if (len <= 0)
        return 0;
    sl_tensor_release(&e->vx);
    sl_tensor_release(&e->vy);
    SL_TRY(sl_tensor_narrow(&e->data->x, 0, e->pos, len, &e->vx));
    SL_TRY(sl_tensor_narrow(&e->data->y, 0, e->pos, len, &e->vy));
    e->pos += len;
    *x = &e->vx;
    *y = &e->vy;
    return 1;
}

static void batches_close(eval_batches *e)
{
    sl_batcher_free(e->batcher);
    sl_tensor_release(&e->vx);
    sl_tensor_release(&e->vy);
}

int sl_evaluate(sl_model *model, const sl_dataset *data, const char *loss_name, int64_t batch,
                sl_record *out)
{
    const sl_loss_type *loss = sl_registry_find(SL_KIND_LOSS, loss_name);
    if (!loss)
        return SL_ENOTFOUND;
    if (batch < 1)
        return sl_error(SL_EINVAL, "evaluate: batch must be >= 1, got %lld", (long long)batch);
    eval_batches b;
    SL_TRY(batches_open(&b, data, batch, sl_model_dtype(model)));
    bool was_training = sl_model_training(model);
    sl_model_set_training(model, false);
    double total = 0.0;
    int64_t seen = 0, correct = 0;
    const sl_tensor *x, *y;
    int rc;
    while ((rc = batches_next(&b, &x, &y)) > 0) {
        const sl_tensor *pred;
        double value;
        if ((rc = sl_model_forward(model, x, &pred)) < 0 ||
            (rc = loss->forward(pred, y, &value, NULL)) < 0)
            break;
        total += value * (double)x->shape[0];
        seen += x->shape[0];
        correct += sl_count_correct(pred, y);
    }
    sl_model_set_training(model, was_training);
    batches_close(&b);
    if (rc < 0)
        return sl_error_context(rc, "evaluate");
    if (seen == 0)
        return sl_error(SL_EINVAL, "evaluate: the dataset is empty");
    SL_TRY(sl_record_set(out, "loss", total / (double)seen));
    if (data->y.dtype == SL_I64)
        SL_TRY(sl_record_set(out, "accuracy", (double)correct / (double)seen));
    return SL_OK;
}
