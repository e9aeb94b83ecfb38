/* core/nn/groupnorm.c — group normalisation (Wu & He 2018; PyTorch
 * nn.GroupNorm(num_groups, num_channels)).
 *
 * in is (B, C, ...), C = num_channels split into num_groups groups of C/G
 * consecutive channels; each (sample, group) — n = C/G * S values, S the
 * product of the trailing dimensions — is normalised to zero mean and unit
 * (biased) variance, then each channel is scaled by "weight" and shifted by
 * "bias" (when affine).  One f64 kernel serves both dtypes: f32 tensors are
 * converted into f64 scratch (slot 0 keeps x for backward, slot 1 the
 * (mean, rstd) of every group followed by weight, bias and their gradient
 * sums per channel, slots 2 and 3 the gradients). */
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

/* Slot 1: (mean, rstd) of each of the B*G groups, then the per-channel
 * weight, bias, d weight and d bias in f64 (C each), so the loops over every
 * value index plain arrays. */
typedef struct gn_scratch {
    double *stats, *w, *b, *gw, *gb;
} gn_scratch;

static int channel_scratch(sl_module *m, int64_t groups, int64_t channels, gn_scratch *g)
{
    double *p;
    SL_TRY(sl_module_scratch(m, 1, (size_t)(2 * groups + 4 * channels) * sizeof(double),
                             (void **)&p));
    *g = (gn_scratch){p, p + 2 * groups, p + 2 * groups + channels,
                      p + 2 * groups + 2 * channels, p + 2 * groups + 3 * channels};
    return SL_OK;
}

/* Copies t into the f64 array dst (converting). */
static int into_f64(const sl_tensor *t, double *dst)
{
    sl_tensor w = {0};
    SL_TRY(sl_tensor_wrap(&w, dst, SL_F64, t->ndim, t->shape));
    return sl_tensor_copy(&w, t);
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
    double *x, *y;
    gn_scratch g;
    SL_TRY(as_f64(m, 0, in, &x));
    SL_TRY(channel_scratch(m, d.B * d.G, s->channels, &g));
    SL_TRY(sl_module_scratch(m, 2, (size_t)sl_tensor_numel(in) * sizeof(double), (void **)&y));
    double *stats = g.stats;
    if (s->affine) {
        SL_TRY(into_f64(sl_module_param(m, GN_WEIGHT), g.w));
        SL_TRY(into_f64(sl_module_param(m, GN_BIAS), g.b));
    }
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
            y[r * n + j] = s->affine ? v * g.w[c] + g.b[c] : v;
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
    double *x, *gy, *gx = NULL;
    gn_scratch sc;
    SL_TRY(sl_module_scratch(m, 0, (size_t)sl_tensor_numel(in) * sizeof(double), (void **)&x));
    SL_TRY(channel_scratch(m, d.B * d.G, s->channels, &sc)); /* forward's stats and w */
    SL_TRY(as_f64(m, 2, grad_out, &gy));
    const double *stats = sc.stats;
    if (grad_in)
        SL_TRY(sl_module_scratch(m, 3, (size_t)sl_tensor_numel(in) * sizeof(double),
                                 (void **)&gx));
    const double *w = s->affine ? sc.w : NULL;
    double *gw = s->affine ? sc.gw : NULL, *gb = s->affine ? sc.gb : NULL;
    if (s->affine) { /* backward ADDS: start from the gradients so far */
        SL_TRY(into_f64(sl_module_grad(m, GN_WEIGHT), gw));
        SL_TRY(into_f64(sl_module_grad(m, GN_BIAS), gb));
    }
    for (int64_t r = 0; r < d.B * d.G; r++) {
        const double mean = stats[2 * r], rstd = stats[2 * r + 1];
        double sum_g = 0, sum_gx = 0;
        for (int64_t j = 0; j < n; j++) {
            const int64_t c = (r % d.G) * d.cg + j / d.S;
            const double xhat = (x[r * n + j] - mean) * rstd, go = gy[r * n + j];
            const double g = w ? go * w[c] : go;
            sum_g += g;
            sum_gx += g * xhat;
            if (gw) {
                gw[c] += go * xhat;
                gb[c] += go;
            }
        }
        if (!gx)
            continue;
        const double mg = sum_g / (double)n, mgx = sum_gx / (double)n;
        for (int64_t j = 0; j < n; j++) {
            const int64_t c = (r % d.G) * d.cg + j / d.S;
            const double xhat = (x[r * n + j] - mean) * rstd;
            const double g = w ? gy[r * n + j] * w[c] : gy[r * n + j];
            gx[r * n + j] = rstd * (g - mg - xhat * mgx);
        }
    }
    if (gw) {
        SL_TRY(from_f64(gw, sl_module_grad(m, GN_WEIGHT)));
        SL_TRY(from_f64(gb, sl_module_grad(m, GN_BIAS)));
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
