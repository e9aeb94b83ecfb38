/* plugins/asym/asym_conv2d.c — the W-asymmetric 2-d convolution of Lim,
 * Putterman, Walters, Maron and Jegelka, "The Empirical Impact of Neural
 * Parameter Symmetries, or Lack Thereof" (arXiv 2405.20231): conv2d (square
 * kernel, stride, zero padding; PyTorch's nn.Conv2d so restricted) in which
 * every output filter has exactly n_fix of its in·k·k kernel entries fixed
 * to kappa·N(0,1) values that are never trained.
 *
 * The pattern is asym_linear's with a filter as a row (mask.h): columns are
 * the filter's entries in PyTorch's (C, kh, kw) order, drawn uniformly
 * without replacement per filter from mask_seed, values from mask_seed's
 * own stream.  Storage, as for asym_linear and for the same reason (no
 * optimizer, weight decay, optimizer state or hook can reach an entry that
 * is not a parameter):
 *   param  "weight" (out_channels, in_channels·k·k − n_fix): free entries;
 *   param  "bias"   (out_channels), unless bias=false;
 *   buffer "weight_fixed" (out_channels, n_fix), when n_fix > 0.
 * Forward assembles the effective (O, C, k, k) weight in scratch slot 3 and
 * runs conv2d's own convolution on it (symlab/conv.h, scratch slots 0 to
 * 2); backward accumulates the effective weight's gradient in slot 4 and
 * gathers its free entries into the weight's gradient.
 *
 * Role: opaque, as asym_linear (asym.h): permuting its output channels, or
 * its input channels, moves the pinned entries to other places, which is a
 * different network — the layer has no permutation symmetry, so the
 * walker must not offer one.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/conv.h>

#include "asym.h"
#include "mask.h"

enum { P_WEIGHT = 0, P_BIAS = 1 };
enum { B_FIXED = 0 };
enum { SCRATCH_W = 3, SCRATCH_GW = 4 }; /* 0 to 2: sl_conv2d's (symlab/conv.h) */

typedef struct aconv_state {
    sl_conv2d conv;
    asym_mask mask; /* rows: out_channels, columns: in_channels·k·k */
    bool bias;
    uint64_t mask_seed;
    double kappa;
} aconv_state;

static const sl_option_spec aconv_options[] = {
    {"in_channels", SL_OPT_INT, NULL, "channels of the input image", NULL},
    {"out_channels", SL_OPT_INT, NULL, "channels produced by the convolution", NULL},
    {"kernel_size", SL_OPT_INT, NULL, "side of the square kernel", NULL},
    {"stride", SL_OPT_INT, "1", "step of the kernel", NULL},
    {"padding", SL_OPT_INT, "0", "zeros added on each side of the image", NULL},
    {"n_fix", SL_OPT_INT, NULL,
     "fixed (untrained) entries per output filter, 0 <= n_fix < in_channels*kernel_size^2",
     NULL},
    {"kappa", SL_OPT_FLOAT, "1", "fixed entries are kappa * N(0, 1)", NULL},
    {"mask_seed", SL_OPT_INT, NULL,
     "seed of the fixed entries and values (not the model seed): equal seeds, equal masks",
     NULL},
    {"bias", SL_OPT_BOOL, "true", "learn an additive bias per output channel", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static void aconv_free_state(aconv_state *s)
{
    if (!s)
        return;
    asym_mask_free(&s->mask);
    free(s);
}

static int aconv_create(sl_module *m, const sl_options *opt)
{
    aconv_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "asym_conv2d: out of memory");
    s->bias = sl_options_bool(opt, "bias");
    s->mask_seed = (uint64_t)sl_options_int(opt, "mask_seed");
    s->kappa = sl_options_float(opt, "kappa");
    int rc = sl_conv2d_init(m, &s->conv, sl_options_int(opt, "in_channels"),
                            sl_options_int(opt, "out_channels"),
                            sl_options_int(opt, "kernel_size"), sl_options_int(opt, "stride"),
                            sl_options_int(opt, "padding"));
    int64_t o = s->conv.out_channels, cols = 0;
    if (rc >= 0 && (__builtin_mul_overflow(s->conv.kernel, s->conv.kernel, &cols) ||
                    __builtin_mul_overflow(cols, s->conv.in_channels, &cols)))
        rc = sl_error(SL_EINVAL, "asym_conv2d: in_channels * kernel_size^2 is out of range");
    if (rc >= 0 && !isfinite(s->kappa))
        rc = sl_error(SL_EINVAL, "asym_conv2d: kappa must be finite, got %g", s->kappa);
    if (rc >= 0)
        rc = asym_mask_init(&s->mask, "asym_conv2d", o, cols, sl_options_int(opt, "n_fix"),
                            s->mask_seed);
    if (rc >= 0)
        rc = asym_mask_declare(m, &s->mask, s->bias);
    if (rc < 0) {
        aconv_free_state(s);
        return rc;
    }
    sl_module_set_state(m, s);
    return SL_OK;
}

/* Free weight and bias as PyTorch initialises nn.Conv2d's (fan-in in·k·k);
 * the fixed values from mask_seed (mask.h). */
static int aconv_reset(sl_module *m, sl_rng *rng)
{
    const aconv_state *s = sl_module_state(m);
    return asym_mask_reset(m, &s->mask, s->bias, rng, s->mask_seed, s->kappa);
}

static int aconv_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                              int64_t *out)
{
    const aconv_state *s = sl_module_state(m);
    return sl_conv2d_output_shape(m, &s->conv, ndim, in, out_ndim, out);
}

static const sl_tensor *fixed_of(sl_module *m, const aconv_state *s)
{
    return s->mask.nfix ? sl_module_buffer(m, B_FIXED) : NULL;
}

static int aconv_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    aconv_state *s = sl_module_state(m);
    sl_tensor w;
    SL_TRY(asym_mask_effective(m, &s->mask, SCRATCH_W, sl_module_param(m, P_WEIGHT),
                               fixed_of(m, s), &w));
    return sl_conv2d_forward(m, &s->conv, in, &w,
                             s->bias ? sl_module_param(m, P_BIAS) : NULL, out);
}

static int aconv_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                          const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const aconv_state *s = sl_module_state(m);
    sl_dtype dt = sl_module_dtype(m);
    size_t bytes = (size_t)(s->mask.rows * s->mask.cols) * sl_dtype_size(dt);
    /* W_eff as forward left it in its slot (module.h: backward follows
     * forward on the same parameters) */
    void *wp, *gp;
    SL_TRY(sl_module_scratch(m, SCRATCH_W, bytes, &wp));
    SL_TRY(sl_module_scratch(m, SCRATCH_GW, bytes, &gp));
    sl_tensor w, gw;
    SL_TRY(sl_tensor_wrap(&w, wp, dt, 2, (int64_t[]){s->mask.rows, s->mask.cols}));
    SL_TRY(sl_tensor_wrap(&gw, gp, dt, 2, (int64_t[]){s->mask.rows, s->mask.cols}));
    memset(gp, 0, bytes); /* sl_conv2d_backward accumulates */
    SL_TRY(sl_conv2d_backward(m, &s->conv, in, &w, grad_out, &gw,
                              s->bias ? sl_module_grad(m, P_BIAS) : NULL, grad_in));
    asym_mask_gather(&s->mask, &gw, sl_module_grad(m, P_WEIGHT));
    return SL_OK;
}

static void aconv_destroy(sl_module *m) { aconv_free_state(sl_module_state(m)); }

const sl_module_type asym_conv2d_type = {
    .name = "asym_conv2d",
    .summary = "W-asymmetric 2-d convolution: n_fix untrained kappa*N(0,1) entries per "
               "filter (arXiv 2405.20231)",
    .options = aconv_options,
    .create = aconv_create,
    .reset_parameters = aconv_reset,
    .output_shape = aconv_output_shape,
    .forward = aconv_forward,
    .backward = aconv_backward,
    .destroy = aconv_destroy,
    .role = {.kind = SL_ROLE_OPAQUE},
};
