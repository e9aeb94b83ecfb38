/* plugins/dropout — inverted dropout (PyTorch nn.Dropout).
 *
 * Training mode: every element is kept with probability 1 - p and scaled by
 * 1 / (1 - p), or zeroed with probability p, so the expected output equals
 * the input and evaluation needs no rescaling.  p = 1 zeroes everything.
 * Evaluation mode: the identity.
 *
 * The mask (0 or 1/(1-p) per element, in the module's dtype) is drawn from
 * the module's own noise stream (sl_module_rng: the model's seed, re-seeded
 * by sl_model_seed_noise — replicas that share weights but not noise) and
 * kept in scratch slot 0 for backward, which multiplies by the same mask.
 * Backward uses the mode at the time of the call, so do not switch mode
 * between a forward and its backward.
 */
#include "config.h"

#include <stdlib.h>

#include <symlab/symlab.h>

static const sl_option_spec dropout_options[] = {
    {"p", SL_OPT_FLOAT, "0.5", "probability of zeroing an element in training mode", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int dropout_create(sl_module *m, const sl_options *opt)
{
    double p = sl_options_float(opt, "p");
    if (!(p >= 0 && p <= 1))
        return sl_error(SL_EINVAL, "dropout: p must be in [0, 1], got %g", p);
    double *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "dropout: out of memory");
    *s = p;
    sl_module_set_state(m, s);
    return SL_OK;
}

static int dropout_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                                int64_t *out)
{
    (void)m;
    if (ndim < 1)
        return sl_error(SL_ESHAPE, "dropout: expected input (B, ...), got a scalar");
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

/* One source for float and for double: dropout_generic.h, included once per type. */
#define T float
#define SUF(name) name##_f32
#include "dropout_generic.h"
#define T double
#define SUF(name) name##_f64
#include "dropout_generic.h"

static int dropout_check(const sl_tensor *t)
{
    if (!sl_tensor_is_contiguous(t) || (t->dtype != SL_F32 && t->dtype != SL_F64))
        return sl_error(SL_EINVAL, "dropout: tensors must be contiguous f32 or f64");
    return SL_OK;
}

/* The saved mask (training mode), or NULL when the module is the identity. */
static int dropout_mask(sl_module *m, const sl_tensor *t, void **mask)
{
    *mask = NULL;
    const double p = *(const double *)sl_module_state(m);
    if (!sl_module_training(m) || p == 0)
        return SL_OK;
    size_t bytes = (size_t)sl_tensor_numel(t) * sl_dtype_size(t->dtype);
    return sl_module_scratch(m, 0, bytes > 0 ? bytes : 1, mask);
}

static int dropout_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    SL_TRY(dropout_check(in));
    const double p = *(const double *)sl_module_state(m);
    int64_t n = sl_tensor_numel(in);
    void *mask;
    SL_TRY(dropout_mask(m, in, &mask));
    if (in->dtype == SL_F32) {
        if (mask)
            dropout_mask_f32(mask, n, p, sl_module_rng(m));
        dropout_apply_f32(in->data, mask, out->data, n);
    } else {
        if (mask)
            dropout_mask_f64(mask, n, p, sl_module_rng(m));
        dropout_apply_f64(in->data, mask, out->data, n);
    }
    return SL_OK;
}

static int dropout_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in)
        return SL_OK;
    SL_TRY(dropout_check(grad_out));
    void *mask;
    SL_TRY(dropout_mask(m, in, &mask)); /* same size as in forward: no reallocation */
    int64_t n = sl_tensor_numel(in);
    if (in->dtype == SL_F32)
        dropout_apply_f32(grad_out->data, mask, grad_in->data, n);
    else
        dropout_apply_f64(grad_out->data, mask, grad_in->data, n);
    return SL_OK;
}

static void dropout_destroy(sl_module *m) { free(sl_module_state(m)); }

static const sl_module_type dropout_type = {
    .name = "dropout",
    .summary = "inverted dropout (PyTorch nn.Dropout): zero with probability p, scale the rest "
               "by 1/(1-p) in training; identity in evaluation",
    .options = dropout_options,
    .create = dropout_create,
    .output_shape = dropout_output_shape,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .destroy = dropout_destroy,
    .role = {.kind = SL_ROLE_PER_UNIT,
             .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_STOCHASTIC},
};

static const sl_module_type *const modules[] = {&dropout_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "dropout",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "inverted dropout layer",
    .modules = modules,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
