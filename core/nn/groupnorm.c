/* core/nn/groupnorm.c — group normalisation (Wu & He 2018; PyTorch
 * nn.GroupNorm(num_groups, num_channels)).
 *
 * in is (B, C, ...), C = num_channels split into num_groups groups of C/G
 * consecutive channels; each (sample, group) — n = C/G * S values, S the
 * product of the trailing dimensions — is normalised to zero mean and unit
 * (biased) variance, then each channel is scaled by "weight" and shifted by
 * "bias" (when affine).  One f64 kernel serves both dtypes: f32 tensors are
 * converted into f64 scratch (slot 0 keeps x for backward, slot 1 the
 * (mean, rstd) of every group, slots 2 and 3 the gradients). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "nn/nn.h"

typedef struct groupnorm_state {
    int64_t groups, channels;
    double eps;
    bool affine;
} groupnorm_state;

enum { GN_WEIGHT = 0, GN_BIAS = 1 };

static const sl_option_spec groupnorm_options[] = {
    {"num_groups", SL_OPT_INT, NULL, "number of groups the channels are split into", NULL},
    {"num_channels", SL_OPT_INT, NULL, "channels C of the (B, C, ...) input", NULL},
    {"eps", SL_OPT_FLOAT, "1e-5", "added to the variance for stability", NULL},
    {"affine", SL_OPT_BOOL, "true", "learn a per-channel weight and bias", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

static int groupnorm_create(sl_module *m, const sl_options *opt)
{
    groupnorm_state st = {
        .groups = sl_options_int(opt, "num_groups"),
        .channels = sl_options_int(opt, "num_channels"),
        .eps = sl_options_float(opt, "eps"),
        .affine = sl_options_bool(opt, "affine"),
    };
    if (st.groups <= 0 || st.channels <= 0 || st.channels % st.groups != 0)
        return sl_error(SL_EINVAL, "groupnorm: num_channels (%lld) must be a positive multiple "
                                   "of num_groups (%lld)",
                        (long long)st.channels, (long long)st.groups);
    if (!(st.eps > 0) || !isfinite(st.eps))
        return sl_error(SL_EINVAL, "groupnorm: eps must be finite and > 0, got %g", st.eps);
    if (st.affine) {
        SL_TRY(sl_module_add_param(m, "weight", 1, &st.channels));
        SL_TRY(sl_module_add_param(m, "bias", 1, &st.channels));
    }
    groupnorm_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "groupnorm: out of memory");
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

/* PyTorch's init: weight ones, bias zeros. */
static int groupnorm_reset(sl_module *m, sl_rng *rng)
{
    (void)rng;
    const groupnorm_state *s = sl_module_state(m);
    if (!s->affine)
        return SL_OK;
    SL_TRY(sl_tensor_fill(sl_module_param(m, GN_WEIGHT), 1.0));
    return sl_tensor_fill(sl_module_param(m, GN_BIAS), 0.0);
}

static int groupnorm_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                           int64_t *out)
{
    const groupnorm_state *s = sl_module_state(m);
    if (ndim < 2 || in[1] != s->channels) {
        char got[128];
        return sl_error(SL_ESHAPE, "groupnorm: expected input (B, %lld, ...), got %s",
                        (long long)s->channels, sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

/* t as an f64 array in scratch `slot` (converted, or copied for f64). */
static int as_f64(sl_module *m, int slot, const sl_tensor *t, double **out)
{
    void *p;
    SL_TRY(sl_module_scratch(m, slot, (size_t)sl_tensor_numel(t) * sizeof(double), &p));
    sl_tensor w = {0};
    SL_TRY(sl_tensor_wrap(&w, p, SL_F64, t->ndim, t->shape));
    SL_TRY(sl_tensor_copy(&w, t));
    *out = p;
    return SL_OK;
}

/* Writes the f64 array v into t (converting). */
static int from_f64(const double *v, sl_tensor *t)
{
    sl_tensor w = {0};
    SL_TRY(sl_tensor_wrap(&w, (void *)v, SL_F64, t->ndim, t->shape));
    return sl_tensor_copy(t, &w);
}

/* Sizes: B samples, G groups of n = cg * S values (cg channels of S). */
typedef struct gn_dims {
    int64_t B, G, cg, S;
} gn_dims;

static gn_dims dims_of(const groupnorm_state *s, const sl_tensor *in)
{
    gn_dims d = {in->shape[0], s->groups, s->channels / s->groups, 1};
    for (int i = 2; i < in->ndim; i++)
        d.S *= in->shape[i];
    return d;
}

static int groupnorm_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const groupnorm_state *s = sl_module_state(m);
    const gn_dims d = dims_of(s, in);
    const int64_t n = d.cg * d.S;
    double *x, *stats, *y;
    SL_TRY(as_f64(m, 0, in, &x));
    SL_TRY(sl_module_scratch(m, 1, (size_t)(2 * d.B * d.G) * sizeof(double), (void **)&stats));
    SL_TRY(sl_module_scratch(m, 2, (size_t)sl_tensor_numel(in) * sizeof(double), (void **)&y));
    const sl_tensor *w = s->affine ? sl_module_param(m, GN_WEIGHT) : NULL;
    const sl_tensor *b = s->affine ? sl_module_param(m, GN_BIAS) : NULL;
    for (int64_t r = 0; r < d.B * d.G; r++) {
        const double *xr = x + r * n;
        double mean = 0, var = 0;
        for (int64_t j = 0; j < n; j++)
            mean += xr[j];
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++)
            var += (xr[j] - mean) * (xr[j] - mean);
        const double rstd = 1.0 / sqrt(var / (double)n + s->eps);
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
        for (int64_t j = 0; j < n; j++) {
            const int64_t c = (r % d.G) * d.cg + j / d.S;
            const double v = (xr[j] - mean) * rstd;
            y[r * n + j] = w ? v * sl_tensor_flat_get(w, c) + sl_tensor_flat_get(b, c) : v;
        }
    }
    return from_f64(y, out);
}

/* gx = rstd (g − mean(g) − x̂ mean(g x̂)) over each group, g = gy · weight. */
static int groupnorm_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                              const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const groupnorm_state *s = sl_module_state(m);
    const gn_dims d = dims_of(s, in);
    const int64_t n = d.cg * d.S;
    double *x, *stats, *gy, *gx = NULL;
    SL_TRY(sl_module_scratch(m, 0, (size_t)sl_tensor_numel(in) * sizeof(double), (void **)&x));
    SL_TRY(sl_module_scratch(m, 1, (size_t)(2 * d.B * d.G) * sizeof(double), (void **)&stats));
    SL_TRY(as_f64(m, 2, grad_out, &gy));
    if (grad_in)
        SL_TRY(sl_module_scratch(m, 3, (size_t)sl_tensor_numel(in) * sizeof(double),
                                 (void **)&gx));
    sl_tensor *w = s->affine ? sl_module_param(m, GN_WEIGHT) : NULL;
    sl_tensor *gw = s->affine ? sl_module_grad(m, GN_WEIGHT) : NULL;
    sl_tensor *gb = s->affine ? sl_module_grad(m, GN_BIAS) : NULL;
    for (int64_t r = 0; r < d.B * d.G; r++) {
        const double mean = stats[2 * r], rstd = stats[2 * r + 1];
        double sum_g = 0, sum_gx = 0;
        for (int64_t j = 0; j < n; j++) {
            const int64_t c = (r % d.G) * d.cg + j / d.S;
            const double xhat = (x[r * n + j] - mean) * rstd, go = gy[r * n + j];
            const double g = w ? go * sl_tensor_flat_get(w, c) : go;
            sum_g += g;
            sum_gx += g * xhat;
            if (gw) {
                sl_tensor_set(gw, &c, sl_tensor_flat_get(gw, c) + go * xhat);
                sl_tensor_set(gb, &c, sl_tensor_flat_get(gb, c) + go);
            }
        }
        if (!gx)
            continue;
        const double mg = sum_g / (double)n, mgx = sum_gx / (double)n;
        for (int64_t j = 0; j < n; j++) {
            const int64_t c = (r % d.G) * d.cg + j / d.S;
            const double xhat = (x[r * n + j] - mean) * rstd;
            const double g = w ? gy[r * n + j] * sl_tensor_flat_get(w, c) : gy[r * n + j];
            gx[r * n + j] = rstd * (g - mg - xhat * mgx);
        }
    }
    return gx ? from_f64(gx, grad_in) : SL_OK;
}

static void groupnorm_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type sl_groupnorm_type = {
    .name = "groupnorm",
    .summary = "group normalisation over (B, C, ...) (PyTorch nn.GroupNorm)",
    .options = groupnorm_options,
    .create = groupnorm_create,
    .reset_parameters = groupnorm_reset,
    .output_shape = groupnorm_shape,
    .forward = groupnorm_forward,
    .backward = groupnorm_backward,
    .destroy = groupnorm_destroy,
    /* Opaque on purpose: its statistics tie the channels of a group, so
     * only permutations that keep groups together commute with it, which
     * no SL_UNIT_* flag says; nothing permutes across it. */
    .role = {.kind = SL_ROLE_OPAQUE},
};
