/* core/nn/global_avgpool.c — global average pooling: (B, C, ...) -> (B, C),
 * the mean of each channel over every trailing position (PyTorch
 * nn.AdaptiveAvgPool2d(1) followed by nn.Flatten()).  Sums run in double. */
#include "config.h"

#include "internal.h"
#include "nn/nn.h"

static int gap_create(sl_module *m, const sl_options *opt)
{
    (void)m;
    (void)opt;
    return SL_OK;
}

static int gap_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    if (ndim < 3) {
        char got[128];
        return sl_error(SL_ESHAPE, "global_avgpool: expected input (B, C, ...) with positions, "
                                   "got %s", sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = in[1];
    return SL_OK;
}

/* Rows of `per` values: (B*C, per) in, (B*C) out. */
static int64_t positions(const sl_tensor *in)
{
    int64_t per = 1;
    for (int i = 2; i < in->ndim; i++)
        per *= in->shape[i];
    return per;
}

static int gap_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    (void)m;
    const int64_t rows = in->shape[0] * in->shape[1], per = positions(in);
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        if (in->dtype == SL_F32)
            for (int64_t k = 0; k < per; k++)
                s += ((const float *)in->data)[r * per + k];
        else
            for (int64_t k = 0; k < per; k++)
                s += ((const double *)in->data)[r * per + k];
        if (out->dtype == SL_F32)
            ((float *)out->data)[r] = (float)(s / (double)per);
        else
            ((double *)out->data)[r] = s / (double)per;
    }
    return SL_OK;
}

static int gap_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                        const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)m;
    (void)out;
    if (!grad_in)
        return SL_OK;
    const int64_t rows = in->shape[0] * in->shape[1], per = positions(in);
    for (int64_t r = 0; r < rows; r++) {
        if (in->dtype == SL_F32) {
            const float g = (float)(((const float *)grad_out->data)[r] / (double)per);
            for (int64_t k = 0; k < per; k++)
                ((float *)grad_in->data)[r * per + k] = g;
        } else {
            const double g = ((const double *)grad_out->data)[r] / (double)per;
            for (int64_t k = 0; k < per; k++)
                ((double *)grad_in->data)[r * per + k] = g;
        }
    }
    return SL_OK;
}

const sl_module_type sl_global_avgpool_type = {
    .name = "global_avgpool",
    .summary = "(B, C, ...) -> (B, C): the mean of every channel (PyTorch "
               "nn.AdaptiveAvgPool2d(1) + nn.Flatten)",
    .create = gap_create,
    .output_shape = gap_shape,
    .forward = gap_forward,
    .backward = gap_backward,
    /* Reduces each channel to its mean: a per-unit linear map that both
     * resamples and reshapes; the channel stays the unit on axis 1. */
    .role = {.kind = SL_ROLE_PER_UNIT,
             .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR | SL_UNIT_RESAMPLES},
};
