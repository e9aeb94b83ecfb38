/* core/nn/losses.c — the built-in losses, each a mean over the batch with
 * sums in double (PyTorch reduction='mean').
 *
 *   cross_entropy: pred (B, C) logits, target i64 (B) labels in [0, C);
 *                  L = -mean_b log softmax(pred_b)[target_b],
 *                  dL/dpred = (softmax - onehot) / B.
 *   mse:           pred and target of one shape, real dtypes (f32 or f64,
 *                  not necessarily the same); L = mean over all elements of
 *                  (pred - target)^2, dL/dpred = 2 (pred - target) / numel.
 *
 * Inputs must be contiguous.  grad_pred, when given, has pred's shape and
 * dtype and is overwritten. */
#include "config.h"

#include <math.h>

#include "internal.h"
#include "nn/nn.h"

/* ---------------------------------------------------------------- kernels */

/* One source per kernel: losses_generic.h (cross entropy) compiled for
 * float and for double, losses_mse_generic.h once per (prediction, target)
 * dtype pair. */
#define SL_GENERIC_FILE "nn/losses_generic.h"
#include "generic_real.h"

#define TP float
#define TT float
#define SUF(name) name##_f32_f32
#include "nn/losses_mse_generic.h"
#define TP float
#define TT double
#define SUF(name) name##_f32_f64
#include "nn/losses_mse_generic.h"
#define TP double
#define TT float
#define SUF(name) name##_f64_f32
#include "nn/losses_mse_generic.h"
#define TP double
#define TT double
#define SUF(name) name##_f64_f64
#include "nn/losses_mse_generic.h"

/* ---------------------------------------------------------------- checks */

static bool is_real(sl_dtype dt) { return dt == SL_F32 || dt == SL_F64; }

/* pred must be a contiguous real tensor; grad_pred, if given, its twin. */
static int check_pred(const char *loss, const sl_tensor *pred, const sl_tensor *grad_pred)
{
    if (!is_real(pred->dtype))
        return sl_error(SL_EDTYPE, "%s: pred must be f32 or f64, got %s", loss,
                        sl_dtype_name(pred->dtype));
    if (!sl_tensor_is_contiguous(pred))
        return sl_error(SL_EINVAL, "%s: pred must be contiguous", loss);
    if (!grad_pred)
        return SL_OK;
    if (!sl_tensor_same_shape(pred, grad_pred) || grad_pred->dtype != pred->dtype ||
        !sl_tensor_is_contiguous(grad_pred)) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "%s: grad_pred %s %s does not match pred %s %s", loss,
                        sl_shape_str(grad_pred->ndim, grad_pred->shape, a, sizeof a),
                        sl_dtype_name(grad_pred->dtype),
                        sl_shape_str(pred->ndim, pred->shape, b, sizeof b),
                        sl_dtype_name(pred->dtype));
    }
    return SL_OK;
}

static int check_labels(const sl_tensor *pred, const sl_tensor *target)
{
    char a[128], b[128];
    if (pred->ndim != 2)
        return sl_error(SL_ESHAPE, "cross_entropy: expected pred (B, C), got %s",
                        sl_shape_str(pred->ndim, pred->shape, a, sizeof a));
    if (target->dtype != SL_I64)
        return sl_error(SL_EDTYPE, "cross_entropy: target must be i64 labels, got %s",
                        sl_dtype_name(target->dtype));
    if (target->ndim != 1 || target->shape[0] != pred->shape[0] ||
        !sl_tensor_is_contiguous(target))
        return sl_error(SL_ESHAPE, "cross_entropy: expected target (%lld) for pred %s, got %s",
                        (long long)pred->shape[0],
                        sl_shape_str(pred->ndim, pred->shape, a, sizeof a),
                        sl_shape_str(target->ndim, target->shape, b, sizeof b));
    const int64_t *label = target->data;
    int64_t classes = pred->shape[1];
    for (int64_t r = 0; r < target->shape[0]; r++)
        if (label[r] < 0 || label[r] >= classes)
            return sl_error(SL_EINVAL, "cross_entropy: target[%lld] = %lld is not a class in "
                            "[0, %lld)", (long long)r, (long long)label[r], (long long)classes);
    return SL_OK;
}

/* ---------------------------------------------------------------- losses */

static int cross_entropy_forward(const sl_tensor *pred, const sl_tensor *target, double *value,
                                 sl_tensor *grad_pred)
{
    SL_TRY(check_pred("cross_entropy", pred, grad_pred));
    SL_TRY(check_labels(pred, target));
    int64_t rows = pred->shape[0], classes = pred->shape[1];
    if (rows == 0 || classes == 0)
        return sl_error(SL_ESHAPE, "cross_entropy: empty batch or no classes");
    double scale = 1.0 / (double)rows;
    void *g = grad_pred ? grad_pred->data : NULL;
    double total = pred->dtype == SL_F32
                       ? cross_entropy_f32(pred->data, target->data, g, rows, classes, scale)
                       : cross_entropy_f64(pred->data, target->data, g, rows, classes, scale);
    *value = total * scale;
    return SL_OK;
}

static int mse_forward(const sl_tensor *pred, const sl_tensor *target, double *value,
                       sl_tensor *grad_pred)
{
    SL_TRY(check_pred("mse", pred, grad_pred));
    if (!is_real(target->dtype))
        return sl_error(SL_EDTYPE, "mse: target must be f32 or f64, got %s",
                        sl_dtype_name(target->dtype));
    if (!sl_tensor_same_shape(pred, target) || !sl_tensor_is_contiguous(target)) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "mse: target %s does not match pred %s",
                        sl_shape_str(target->ndim, target->shape, a, sizeof a),
                        sl_shape_str(pred->ndim, pred->shape, b, sizeof b));
    }
    int64_t n = sl_tensor_numel(pred);
    if (n == 0)
        return sl_error(SL_ESHAPE, "mse: empty pred");
    double scale = 1.0 / (double)n, total;
    void *g = grad_pred ? grad_pred->data : NULL;
    if (pred->dtype == SL_F32)
        total = target->dtype == SL_F32 ? mse_f32_f32(pred->data, target->data, g, n, scale)
                                        : mse_f32_f64(pred->data, target->data, g, n, scale);
    else
        total = target->dtype == SL_F32 ? mse_f64_f32(pred->data, target->data, g, n, scale)
                                        : mse_f64_f64(pred->data, target->data, g, n, scale);
    *value = total * scale;
    return SL_OK;
}

const sl_loss_type sl_cross_entropy_type = {
    .name = "cross_entropy",
    .summary = "softmax cross-entropy of (B, C) logits against i64 labels, batch mean",
    .forward = cross_entropy_forward,
};

const sl_loss_type sl_mse_type = {
    .name = "mse",
    .summary = "mean squared error over all elements (PyTorch reduction='mean')",
    .forward = mse_forward,
};
