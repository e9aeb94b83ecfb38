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

int sl_evaluate(sl_model *model, const sl_dataset *data, const char *loss_name, int64_t batch,
                sl_record *out)
{
    const sl_loss_type *loss = sl_registry_find(SL_KIND_LOSS, loss_name);
    if (!loss)
        return SL_ENOTFOUND;
    if (batch < 1)
        return sl_error(SL_EINVAL, "evaluate: batch must be >= 1, got %lld", (long long)batch);
    sl_batcher *b;
    SL_TRY(sl_batcher_new(data, batch, sl_model_dtype(model), false, 0, false, &b));
    bool was_training = sl_model_training(model);
    sl_model_set_training(model, false);
    double total = 0.0;
    int64_t seen = 0, correct = 0;
    const sl_tensor *x, *y;
    int rc;
    sl_batcher_begin_epoch(b, 0);
    while ((rc = sl_batcher_next(b, &x, &y)) > 0) {
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
    sl_batcher_free(b);
    if (rc < 0)
        return sl_error_context(rc, "evaluate");
    if (seen == 0)
        return sl_error(SL_EINVAL, "evaluate: the dataset is empty");
    SL_TRY(sl_record_set(out, "loss", total / (double)seen));
    if (data->y.dtype == SL_I64)
        SL_TRY(sl_record_set(out, "accuracy", (double)correct / (double)seen));
    return SL_OK;
}
