/* plugins/batchnorm — batch normalisation over channels (PyTorch
 * nn.BatchNorm1d for (N, C) and (N, C, L), nn.BatchNorm2d for (N, C, H, W)).
 *
 * The input is viewed as (N, C, S), S the product of the dimensions after
 * the channel (1 for (N, C)); statistics are per channel over the n = N*S
 * values.
 *   training:   mean, var = batch mean and biased variance;
 *               running_mean = (1 - momentum) running_mean + momentum mean
 *               running_var  = (1 - momentum) running_var  + momentum var n/(n-1)
 *               (PyTorch's rule: the running variance is the unbiased one);
 *   evaluation: mean, var = running_mean, running_var.
 *   y = (x - mean) / sqrt(var + eps) * weight + bias   (weight, bias if affine)
 * Parameters "weight" (ones), "bias" (zeros); buffers "running_mean" (zeros),
 * "running_var" (ones) and the 0-d int64 "num_batches_tracked" (0, plus one
 * per training forward) — PyTorch's names and types, so they appear in the
 * model's named state and in safetensors checkpoints as "<i>.running_mean",
 * and a PyTorch state_dict loads with strict=True both ways.  The count
 * only travels (momentum is never None here, so nothing averages by it).
 * Forward keeps each channel's (mean, 1/sqrt(var + eps)) in scratch slot 0
 * for backward; sums run in double for f32 too.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

typedef struct bn_state {
    int64_t features;
    int rank; /* 0: any of 2, 3, 4; else the required input rank */
    double momentum, eps;
    bool affine;
} bn_state;

enum { BN_WEIGHT = 0, BN_BIAS = 1 };
enum { BN_MEAN = 0, BN_VAR = 1, BN_COUNT = 2 };

static const sl_option_spec bn_options[] = {
    {"num_features", SL_OPT_INT, NULL, "number of channels C (dimension 1 of the input)", NULL},
    {"mode", SL_OPT_STRING, "auto",
     "1d: (N,C) or (N,C,L); 2d: (N,C,H,W); auto: by the input's rank", "auto|1d|2d"},
    {"momentum", SL_OPT_FLOAT, "0.1", "weight of the batch in the running statistics", NULL},
    {"eps", SL_OPT_FLOAT, "1e-5", "added to the variance for stability", NULL},
    {"affine", SL_OPT_BOOL, "true", "learn a per-channel weight and bias", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int bn_create(sl_module *m, const sl_options *opt)
{
    const char *mode = sl_options_string(opt, "mode");
    bn_state st = {
        .features = sl_options_int(opt, "num_features"),
        .rank = strcmp(mode, "2d") == 0 ? 4 : strcmp(mode, "1d") == 0 ? -1 : 0,
        .momentum = sl_options_float(opt, "momentum"),
        .eps = sl_options_float(opt, "eps"),
        .affine = sl_options_bool(opt, "affine"),
    };
    if (st.features <= 0)
        return sl_error(SL_EINVAL, "batchnorm: num_features must be > 0, got %lld",
                        (long long)st.features);
    if (!(st.eps > 0) || !isfinite(st.eps))
        return sl_error(SL_EINVAL, "batchnorm: eps must be a finite number > 0, got %g", st.eps);
    if (!(st.momentum >= 0 && st.momentum <= 1))
        return sl_error(SL_EINVAL, "batchnorm: momentum must be in [0, 1], got %g",
                        st.momentum);
    if (st.affine) {
        SL_TRY(sl_module_add_param(m, "weight", 1, &st.features));
        SL_TRY(sl_module_add_param(m, "bias", 1, &st.features));
    }
    SL_TRY(sl_module_add_buffer(m, "running_mean", 1, &st.features));
    SL_TRY(sl_module_add_buffer(m, "running_var", 1, &st.features));
    SL_TRY(sl_module_add_buffer_typed(m, "num_batches_tracked", SL_I64, 0, NULL));
    bn_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "batchnorm: out of memory");
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

static int bn_reset(sl_module *m, sl_rng *rng)
{
    (void)rng;
    const bn_state *s = sl_module_state(m);
    if (s->affine) {
        SL_TRY(sl_tensor_fill(sl_module_param(m, BN_WEIGHT), 1.0));
        SL_TRY(sl_tensor_fill(sl_module_param(m, BN_BIAS), 0.0));
    }
    SL_TRY(sl_tensor_fill(sl_module_buffer(m, BN_MEAN), 0.0));
    SL_TRY(sl_tensor_fill(sl_module_buffer(m, BN_COUNT), 0.0));
    return sl_tensor_fill(sl_module_buffer(m, BN_VAR), 1.0);
}

static int bn_check_input(const bn_state *s, int ndim, const int64_t *in)
{
    bool rank_ok = s->rank == 0    ? ndim >= 2 && ndim <= 4
                   : s->rank == 4 ? ndim == 4
                                  : ndim == 2 || ndim == 3;
    if (rank_ok && in[1] == s->features)
        return SL_OK;
    char got[128];
    const char *want = s->rank == 4 ? "(N, %lld, H, W)"
                       : s->rank == 0 ? "(N, %lld), (N, %lld, L) or (N, %lld, H, W)"
                                      : "(N, %lld) or (N, %lld, L)";
    char wanted[96];
    long long c = (long long)s->features;
    snprintf(wanted, sizeof wanted, want, c, c, c);
    return sl_error(SL_ESHAPE, "batchnorm: expected input %s, got %s", wanted,
                    sl_shape_str(ndim, in, got, sizeof got));
}

static int bn_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                           int64_t *out)
{
    SL_TRY(bn_check_input(sl_module_state(m), ndim, in));
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

/* The kernels for float and for double (batchnorm_generic.h). */
#define T float
#define SUF(name) name##_f32
#include "batchnorm_generic.h"
#define T double
#define SUF(name) name##_f64
#include "batchnorm_generic.h"

/* Checks the input; gives N, S and the (mean, rstd) workspace. */
static int bn_prepare(sl_module *m, const sl_tensor *in, int64_t *N, int64_t *S,
                      double **stats)
{
    const bn_state *s = sl_module_state(m);
    SL_TRY(bn_check_input(s, in->ndim, in->shape));
    if (!sl_tensor_is_contiguous(in) || (in->dtype != SL_F32 && in->dtype != SL_F64))
        return sl_error(SL_EINVAL, "batchnorm: input must be a contiguous f32 or f64 tensor");
    *N = in->shape[0];
    *S = 1;
    for (int i = 2; i < in->ndim; i++)
        *S *= in->shape[i];
    return sl_module_scratch(m, 0, (size_t)(2 * s->features) * sizeof(double), (void **)stats);
}

static int bn_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const bn_state *s = sl_module_state(m);
    int64_t N, S;
    double *stats;
    SL_TRY(bn_prepare(m, in, &N, &S, &stats));
    const bool train = sl_module_training(m);
    if (train && N * S < 2)
        return sl_error(SL_ESHAPE, "batchnorm: training needs more than 1 value per channel, "
                                   "got input of batch %lld", (long long)N);
    void *rm = sl_module_buffer(m, BN_MEAN)->data, *rv = sl_module_buffer(m, BN_VAR)->data;
    const void *w = s->affine ? sl_module_param(m, BN_WEIGHT)->data : NULL;
    const void *b = s->affine ? sl_module_param(m, BN_BIAS)->data : NULL;
    const int64_t C = s->features;
    if (train)
        ++*(int64_t *)sl_module_buffer(m, BN_COUNT)->data;
    if (in->dtype == SL_F32) {
        if (train)
            bn_batch_stats_f32(in->data, rm, rv, stats, N, C, S, s->momentum, s->eps);
        else
            bn_running_stats_f32(rm, rv, stats, C, s->eps);
        bn_normalize_f32(in->data, out->data, w, b, stats, N, C, S);
    } else {
        if (train)
            bn_batch_stats_f64(in->data, rm, rv, stats, N, C, S, s->momentum, s->eps);
        else
            bn_running_stats_f64(rm, rv, stats, C, s->eps);
        bn_normalize_f64(in->data, out->data, w, b, stats, N, C, S);
    }
    return SL_OK;
}

static int bn_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const bn_state *s = sl_module_state(m);
    int64_t N, S;
    double *stats;
    SL_TRY(bn_prepare(m, in, &N, &S, &stats));
    if (!sl_tensor_is_contiguous(grad_out))
        return sl_error(SL_EINVAL, "batchnorm: output gradient must be contiguous");
    const void *w = s->affine ? sl_module_param(m, BN_WEIGHT)->data : NULL;
    void *gw = s->affine ? sl_module_grad(m, BN_WEIGHT)->data : NULL;
    void *gb = s->affine ? sl_module_grad(m, BN_BIAS)->data : NULL;
    void *gx = grad_in ? grad_in->data : NULL;
    const bool train = sl_module_training(m);
    if (in->dtype == SL_F32)
        bn_backward_f32(in->data, grad_out->data, gx, w, gw, gb, stats, N, s->features, S,
                        train);
    else
        bn_backward_f64(in->data, grad_out->data, gx, w, gw, gb, stats, N, s->features, S,
                        train);
    return SL_OK;
}

static void bn_destroy(sl_module *m) { free(sl_module_state(m)); }

static const sl_module_type bn_type = {
    .name = "batchnorm",
    .summary = "batch normalisation over channels, 1-d (N,C[,L]) and 2-d (N,C,H,W), with "
               "running_mean/running_var buffers (PyTorch nn.BatchNorm1d/2d)",
    .options = bn_options,
    .create = bn_create,
    .reset_parameters = bn_reset,
    .output_shape = bn_output_shape,
    .forward = bn_forward,
    .backward = bn_backward,
    .destroy = bn_destroy,
    .role = {.kind = SL_ROLE_PER_UNIT, .flags = SL_UNIT_NORMALISING,
             .unit_tensors = (const char *const[]){"weight", "bias", "running_mean",
                                                   "running_var", NULL}},
};

static const sl_module_type *const modules[] = {&bn_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "batchnorm",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "batch normalisation with PyTorch-compatible running statistics",
    .modules = modules,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
