/* core/finite.c — refusing NaN and infinities where training needs finite
 * numbers, with a message that says where the first one is.
 *
 * sl_train checks its validation set and the parameters once before the
 * first step: a NaN there otherwise surfaces only as val_loss = nan in the
 * history, with no error.  (A NaN in the training set stops training at the
 * first non-finite loss, naming the epoch and step.) */
#include "config.h"

#include <math.h>

#include "internal.h"

int64_t sl_tensor_first_nonfinite(const sl_tensor *t)
{
    int64_t n = sl_tensor_numel(t);
    bool flat = sl_tensor_is_contiguous(t);
    if (flat && t->dtype == SL_F32) {
        const float *v = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(v[i]))
                return i;
    } else if (flat && t->dtype == SL_F64) {
        const double *v = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(v[i]))
                return i;
    } else if (t->dtype == SL_F32 || t->dtype == SL_F64) {
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(sl_tensor_flat_get(t, i)))
                return i;
    }
    return -1;
}

/* "nan", "inf" or "-inf" (printf may say "-nan": the sign of a NaN means
 * nothing to the reader). */
static const char *show(double v) { return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

/* SL_ENUMERIC naming `what`, the tensor `part` and the first bad row. */
static int check_rows(const sl_tensor *t, const char *what, const char *part)
{
    int64_t i = sl_tensor_first_nonfinite(t);
    if (i < 0)
        return SL_OK;
    int64_t row_size = t->shape[0] > 0 ? sl_tensor_numel(t) / t->shape[0] : 1;
    return sl_error(SL_ENUMERIC, "%s: %s has a non-finite value (%s) in row %lld", what, part,
                    show(sl_tensor_flat_get(t, i)), (long long)(i / row_size) + 1);
}

int sl_check_finite_dataset(const sl_dataset *d, const char *what)
{
    SL_TRY(check_rows(&d->x, what, "x"));
    return check_rows(&d->y, what, "y");
}

int sl_check_finite_params(sl_model *m, const char *what)
{
    for (int p = 0; p < sl_model_nparams(m); p++) {
        const sl_tensor *t = sl_model_param(m, p);
        int64_t i = sl_tensor_first_nonfinite(t);
        if (i >= 0)
            return sl_error(SL_ENUMERIC, "%s: parameter '%s' holds a non-finite value (%s) at "
                            "element %lld", what, sl_model_param_name(m, p),
                            show(sl_tensor_flat_get(t, i)), (long long)i + 1);
    }
    return SL_OK;
}
