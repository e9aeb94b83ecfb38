/* core/nn/layernorm.c — layer normalisation over the last dimension
 * (PyTorch nn.LayerNorm with normalized_shape = (features,)).
 *
 * in is (B, ..., features); every row of `features` values is normalised to
 * zero mean and unit (biased) variance, then scaled by "weight" and shifted
 * by "bias" when elementwise_affine.  Forward keeps each row's mean and
 * 1/sqrt(var + eps) in scratch slot 0 (2 doubles per row) for backward.
 * Sums run in double for f32 as well. */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "nn/nn.h"

typedef struct layernorm_state {
    int64_t features;
    double eps;
    bool affine;
} layernorm_state;

enum { LN_WEIGHT = 0, LN_BIAS = 1 };

static const sl_option_spec layernorm_options[] = {
    {"features", SL_OPT_INT, NULL, "size of the normalised last dimension", NULL},
    {"eps", SL_OPT_FLOAT, "1e-5", "added to the variance for stability", NULL},
    {"elementwise_affine", SL_OPT_BOOL, "true", "learn a per-feature weight and bias", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* The kernels, one source compiled for float and for double. */
#define SL_GENERIC_FILE "nn/layernorm_generic.h"
#include "generic_real.h"

static int layernorm_create(sl_module *m, const sl_options *opt)
{
    layernorm_state st = {
        .features = sl_options_int(opt, "features"),
        .eps = sl_options_float(opt, "eps"),
        .affine = sl_options_bool(opt, "elementwise_affine"),
    };
    if (st.features <= 0)
        return sl_error(SL_EINVAL, "layernorm: features must be > 0, got %lld",
                        (long long)st.features);
    if (!(st.eps > 0) || !isfinite(st.eps))
        return sl_error(SL_EINVAL, "layernorm: eps must be a finite number > 0, got %g", st.eps);
    if (st.affine) {
        SL_TRY(sl_module_add_param(m, "weight", 1, &st.features));
        SL_TRY(sl_module_add_param(m, "bias", 1, &st.features));
    }
    layernorm_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "layernorm: out of memory");
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

/* PyTorch's init: weight ones, bias zeros (the arena starts zeroed, but a
 * re-initialisation must reset both). */
static int layernorm_reset(sl_module *m, sl_rng *rng)
{
    const layernorm_state *s = sl_module_state(m);
    if (!s->affine)
        return SL_OK;
    SL_TRY(sl_tensor_fill(sl_module_param(m, LN_WEIGHT), 1.0));
    return sl_tensor_fill(sl_module_param(m, LN_BIAS), 0.0);
}

static int layernorm_check_input(const layernorm_state *s, int ndim, const int64_t *in)
{
    if (ndim >= 2 && in[ndim - 1] == s->features)
        return SL_OK;
    char got[128];
    return sl_error(SL_ESHAPE, "layernorm: expected input (B, ..., %lld), got %s",
                    (long long)s->features, sl_shape_str(ndim, in, got, sizeof got));
}

static int layernorm_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                                  int64_t *out)
{
    SL_TRY(layernorm_check_input(sl_module_state(m), ndim, in));
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

/* Checks the input and returns its row count and the (mean, rstd) buffer. */
static int layernorm_prepare(sl_module *m, const sl_tensor *in, int64_t *rows, double **stats)
{
    const layernorm_state *s = sl_module_state(m);
    SL_TRY(layernorm_check_input(s, in->ndim, in->shape));
    if (!sl_tensor_is_contiguous(in) || (in->dtype != SL_F32 && in->dtype != SL_F64))
        return sl_error(SL_EINVAL, "layernorm: input must be a contiguous f32 or f64 tensor");
    *rows = sl_tensor_numel(in) / s->features;
    return sl_module_scratch(m, 0, (size_t)(2 * *rows) * sizeof(double), (void **)stats);
}

static int layernorm_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const layernorm_state *s = sl_module_state(m);
    int64_t rows;
    double *stats;
    SL_TRY(layernorm_prepare(m, in, &rows, &stats));
    const void *w = s->affine ? sl_module_param(m, LN_WEIGHT)->data : NULL;
    const void *b = s->affine ? sl_module_param(m, LN_BIAS)->data : NULL;
    if (in->dtype == SL_F32)
        layernorm_forward_f32(in->data, out->data, w, b, stats, rows, s->features, s->eps);
    else
        layernorm_forward_f64(in->data, out->data, w, b, stats, rows, s->features, s->eps);
    return SL_OK;
}

static int layernorm_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                              const sl_tensor *grad_out, sl_tensor *grad_in)
{
    const layernorm_state *s = sl_module_state(m);
    int64_t rows;
    double *stats;
    SL_TRY(layernorm_prepare(m, in, &rows, &stats));
    const void *w = s->affine ? sl_module_param(m, LN_WEIGHT)->data : NULL;
    void *gw = s->affine ? sl_module_grad(m, LN_WEIGHT)->data : NULL;
    void *gb = s->affine ? sl_module_grad(m, LN_BIAS)->data : NULL;
    void *gx = grad_in ? grad_in->data : NULL;
    if (in->dtype == SL_F32)
        layernorm_backward_f32(in->data, grad_out->data, gx, w, gw, gb, stats, rows,
                               s->features);
    else
        layernorm_backward_f64(in->data, grad_out->data, gx, w, gw, gb, stats, rows,
                               s->features);
    return SL_OK;
}

static void layernorm_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type sl_layernorm_type = {
    .name = "layernorm",
    .summary = "layer normalisation over the last dimension (PyTorch nn.LayerNorm)",
    .options = layernorm_options,
    .create = layernorm_create,
    .reset_parameters = layernorm_reset,
    .output_shape = layernorm_output_shape,
    .forward = layernorm_forward,
    .backward = layernorm_backward,
    .destroy = layernorm_destroy,
    /* Per unit only where the units are the last dimension (B, F); the
     * walker checks the tensors' length against the unit count. */
    .role = {.kind = SL_ROLE_PER_UNIT, .flags = SL_UNIT_COUPLED,
             .unit_tensors = (const char *const[]){"weight", "bias", NULL}},
};
