/* plugins/upsample — bilinear upsampling by an integer factor (PyTorch
 * nn.Upsample(scale_factor=K, mode="bilinear", align_corners=False)).
 *
 * The CNN control arm of input expansion (docs/background/input-expansion.md,
 * "CNN control"): it gives
 * the network the same (H*K, W*K) grid as input_expand but fills it by
 * interpolation instead of constants, separating "more spatial positions"
 * from "constant insertion".
 *
 * in (N, C, H, W) -> out (N, C, H*K, W*K).  For an output row y the source
 * coordinate is s = max(0, (y + 0.5) / K - 0.5); rows i0 = floor(s) and
 * i1 = min(i0 + 1, H - 1) are mixed with weights 1 - l and l, l = s - i0;
 * likewise for columns.  Backward scatters each output gradient back to
 * the four source pixels with the same weights.
 */
#include "config.h"

#include <stdlib.h>

#include <symlab/symlab.h>

static const sl_option_spec upsample_options[] = {
    {"factor", SL_OPT_INT, "2", "scale factor K: (H, W) -> (H*K, W*K)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int upsample_create(sl_module *m, const sl_options *opt)
{
    int64_t k = sl_options_int(opt, "factor");
    if (k < 1)
        return sl_error(SL_EINVAL, "upsample: factor must be >= 1, got %lld", (long long)k);
    int64_t *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "upsample: out of memory");
    *s = k;
    sl_module_set_state(m, s);
    return SL_OK;
}

static int upsample_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                                 int64_t *out)
{
    const int64_t k = *(const int64_t *)sl_module_state(m);
    if (ndim != 4) {
        char got[128];
        return sl_error(SL_ESHAPE, "upsample: expected input (N, C, H, W), got %s",
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 4;
    out[0] = in[0];
    out[1] = in[1];
    out[2] = in[2] * k;
    out[3] = in[3] * k;
    return SL_OK;
}

/* One axis of the interpolation: output index o of an axis of `size`
 * source elements, factor k (align_corners=False). */
typedef struct axis_tap {
    int64_t i0, i1;
    double l0, l1;
} axis_tap;

static axis_tap axis_tap_at(int64_t o, int64_t size, int64_t k)
{
    double s = ((double)o + 0.5) / (double)k - 0.5;
    if (s < 0)
        s = 0;
    int64_t i0 = (int64_t)s;
    axis_tap t = {.i0 = i0, .i1 = i0 < size - 1 ? i0 + 1 : i0};
    t.l1 = s - (double)i0;
    t.l0 = 1.0 - t.l1;
    return t;
}

/* One source for float and for double: upsample_generic.h, included once per type. */
#define T float
#define SUF(name) name##_f32
#include "upsample_generic.h"
#define T double
#define SUF(name) name##_f64
#include "upsample_generic.h"

static int upsample_check(const sl_tensor *t)
{
    if (!sl_tensor_is_contiguous(t) || (t->dtype != SL_F32 && t->dtype != SL_F64))
        return sl_error(SL_EINVAL, "upsample: tensors must be contiguous f32 or f64");
    return SL_OK;
}

static int upsample_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const int64_t k = *(const int64_t *)sl_module_state(m);
    SL_TRY(upsample_check(in));
    int64_t planes = in->shape[0] * in->shape[1];
    if (in->dtype == SL_F32)
        upsample_fwd_f32(in->data, out->data, planes, in->shape[2], in->shape[3], k);
    else
        upsample_fwd_f64(in->data, out->data, planes, in->shape[2], in->shape[3], k);
    return SL_OK;
}

static int upsample_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                             const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in)
        return SL_OK;
    const int64_t k = *(const int64_t *)sl_module_state(m);
    SL_TRY(upsample_check(grad_out));
    int64_t planes = in->shape[0] * in->shape[1];
    if (in->dtype == SL_F32)
        upsample_bwd_f32(grad_out->data, grad_in->data, planes, in->shape[2], in->shape[3], k);
    else
        upsample_bwd_f64(grad_out->data, grad_in->data, planes, in->shape[2], in->shape[3], k);
    return SL_OK;
}

static void upsample_destroy(sl_module *m) { free(sl_module_state(m)); }

static const sl_module_type upsample_type = {
    .name = "upsample",
    .summary = "bilinear upsampling by an integer factor, align_corners=False (PyTorch "
               "nn.Upsample); the CNN control for input_expand",
    .options = upsample_options,
    .create = upsample_create,
    .output_shape = upsample_output_shape,
    .forward = upsample_forward,
    .backward = upsample_backward,
    .destroy = upsample_destroy,
    .role = {.kind = SL_ROLE_PER_UNIT,
             .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR | SL_UNIT_RESAMPLES},
};

static const sl_module_type *const modules[] = {&upsample_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "upsample",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "bilinear upsampling (control arm of input expansion)",
    .modules = modules,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
