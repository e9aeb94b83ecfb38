/* core/nn/linear.c — fully connected layer, y = x W^T + b (PyTorch nn.Linear).
 *
 * in is (B, in_features), out is (B, out_features); parameters "weight"
 * (out_features, in_features) and "bias" (out_features), named and laid out
 * as PyTorch's state_dict so checkpoints move between the two. */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "nn/nn.h"

typedef struct linear_state {
    int64_t in_features;
    int64_t out_features;
    bool bias;
} linear_state;

enum { LINEAR_WEIGHT = 0, LINEAR_BIAS = 1 };

static const sl_option_spec linear_options[] = {
    {"in_features", SL_OPT_INT, NULL, "size of each input sample", NULL},
    {"out_features", SL_OPT_INT, NULL, "size of each output sample", NULL},
    {"bias", SL_OPT_BOOL, "true", "learn an additive bias", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* The bias loop, one source compiled for float and for double. */
#define SL_GENERIC_FILE "nn/linear_generic.h"
#include "generic_real.h"

/* dst (rows, n) += src, row by row as add_rows_*; same dtype. */
static void add_rows(sl_tensor *dst, int64_t dst_step, const sl_tensor *src, int64_t src_step,
                     int64_t rows, int64_t n)
{
    if (dst->dtype == SL_F32)
        add_rows_f32(dst->data, dst_step, src->data, src_step, rows, n);
    else
        add_rows_f64(dst->data, dst_step, src->data, src_step, rows, n);
}

static int linear_create(sl_module *m, const sl_options *opt)
{
    int64_t in = sl_options_int(opt, "in_features");
    int64_t out = sl_options_int(opt, "out_features");
    bool bias = sl_options_bool(opt, "bias");
    if (in <= 0)
        return sl_error(SL_EINVAL, "linear: in_features must be > 0, got %lld", (long long)in);
    if (out <= 0)
        return sl_error(SL_EINVAL, "linear: out_features must be > 0, got %lld",
                        (long long)out);
    int64_t wshape[2] = {out, in}, numel;
    if (!sl_numel_ok(2, wshape, &numel))
        return sl_error(SL_EINVAL, "linear: in_features * out_features (%lld * %lld) is out of "
                        "range", (long long)in, (long long)out);
    SL_TRY(sl_module_add_param(m, "weight", 2, wshape));
    if (bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &out));
    /* State last, so that a failure above leaves nothing to free. */
    linear_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "linear: out of memory");
    *s = (linear_state){in, out, bias};
    sl_module_set_state(m, s);
    return SL_OK;
}

/* PyTorch's init: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)). */
static int linear_reset(sl_module *m, sl_rng *rng)
{
    const linear_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt((double)s->in_features);
    SL_TRY(sl_tensor_uniform(sl_module_param(m, LINEAR_WEIGHT), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, LINEAR_BIAS), rng, -bound, bound));
    return SL_OK;
}

static int linear_check_input(const linear_state *s, int ndim, const int64_t *in)
{
    if (ndim == 2 && in[1] == s->in_features)
        return SL_OK;
    char got[128];
    return sl_error(SL_ESHAPE, "linear: expected input (B, %lld), got %s",
                    (long long)s->in_features, sl_shape_str(ndim, in, got, sizeof got));
}

static int linear_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                               int64_t *out)
{
    const linear_state *s = sl_module_state(m);
    SL_TRY(linear_check_input(s, ndim, in));
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = s->out_features;
    return SL_OK;
}

static int linear_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const linear_state *s = sl_module_state(m);
    SL_TRY(linear_check_input(s, in->ndim, in->shape));
    SL_TRY(sl_gemm(false, true, 1.0, in, sl_module_param(m, LINEAR_WEIGHT), 0.0, out));
    if (!s->bias)
        return SL_OK;
    /* y (B, out) += b on every row */
    add_rows(out, s->out_features, sl_module_param(m, LINEAR_BIAS), 0, out->shape[0],
             s->out_features);
    return SL_OK;
}

static int linear_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                           const sl_tensor *grad_out, sl_tensor *grad_in)
{
    const linear_state *s = sl_module_state(m);
    /* gW (out, in) += gout^T (out, B) @ in (B, in) */
    SL_TRY(sl_gemm(true, false, 1.0, grad_out, in, 1.0, sl_module_grad(m, LINEAR_WEIGHT)));
    /* gb (out) += column sums of gout (B, out) */
    if (s->bias)
        add_rows(sl_module_grad(m, LINEAR_BIAS), 0, grad_out, s->out_features,
                 grad_out->shape[0], s->out_features);
    /* gin (B, in) = gout (B, out) @ W (out, in) */
    if (grad_in)
        SL_TRY(sl_gemm(false, false, 1.0, grad_out, sl_module_param(m, LINEAR_WEIGHT), 0.0,
                       grad_in));
    return SL_OK;
}

static void linear_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type sl_linear_type = {
    .name = "linear",
    .summary = "fully connected layer y = x W^T + b (PyTorch nn.Linear)",
    .options = linear_options,
    .create = linear_create,
    .reset_parameters = linear_reset,
    .output_shape = linear_output_shape,
    .forward = linear_forward,
    .backward = linear_backward,
    .destroy = linear_destroy,
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 1},
};
