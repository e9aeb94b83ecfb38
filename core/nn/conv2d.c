/* core/nn/conv2d.c — 2-d convolution (PyTorch nn.Conv2d, square kernel,
 * no dilation or groups): the conv2d layer, and the convolution itself as
 * symlab/conv.h's sl_conv2d_* functions, which conv2d and plugin layers
 * with weights of their own making (asym_conv2d) share.
 *
 * in is (B, C, H, W), out is (B, O, Ho, Wo) with Ho = (H + 2p - k) / s + 1
 * (floor).  Each image is lowered with im2col into a (C*k*k, Ho*Wo) column
 * matrix in scratch slot 0, so that the convolution is one GEMM
 * W (O, C*k*k) @ cols.  Forward keeps the columns of the whole batch (when
 * they fit, see CONV_KEEP_COLS_MAX) so that backward's weight gradient does
 * not lower every image a second time; the column gradients go to slot 1 and
 * are scattered back with col2im.  Parameters "weight"
 * (O, C, k, k) and "bias" (O), as in PyTorch's state_dict. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nn/nn.h"

/* The sizes, and what the last forward left in scratch slot 0 (sl_conv2d's
 * cols_of: the input whose columns of every image it holds, NULL: nothing
 * usable; cols_batch: that batch's size). */
typedef struct conv2d_state {
    sl_conv2d conv;
    bool bias;
} conv2d_state;

/* Forward keeps the whole batch's columns for backward (which then skips a
 * second im2col per image) while they fit in this; above it, one image's
 * buffer is reused and backward rebuilds them. */
#define CONV_KEEP_COLS_MAX ((size_t)64 << 20)

enum { CONV_WEIGHT = 0, CONV_BIAS = 1 };

/* Sizes of one call; cols is the (C*k*k, Ho*Wo) im2col matrix. */
typedef struct conv_geom {
    int64_t batch, c, h, w, o, k, s, p, ho, wo;
    int64_t rows; /* C*k*k */
    int64_t npix; /* Ho*Wo */
} conv_geom;

static const sl_option_spec conv2d_options[] = {
    {"in_channels", SL_OPT_INT, NULL, "channels of the input image", NULL},
    {"out_channels", SL_OPT_INT, NULL, "channels produced by the convolution", NULL},
    {"kernel_size", SL_OPT_INT, NULL, "side of the square kernel", NULL},
    {"stride", SL_OPT_INT, "1", "step of the kernel", NULL},
    {"padding", SL_OPT_INT, "0", "zeros added on each side of the image", NULL},
    {"bias", SL_OPT_BOOL, "true", "learn an additive bias per output channel", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* The typed kernels.  x (C, H, W) and y (O, Ho, Wo) are one image. */
#define GEMM_f32 sl_sgemm
#define GEMM_f64 sl_dgemm
/* The outputs o in [0, n) whose input index o*s + d falls inside [0, size)
 * form one run [*lo, *hi): computing it once per kernel row lets im2col and
 * col2im copy runs without a bounds test per element (that test, and the
 * select it fed, made im2col a quarter of a CNN step). */
static void valid_run(int64_t d, int64_t s, int64_t size, int64_t n, int64_t *lo, int64_t *hi)
{
    int64_t a = d >= 0 ? 0 : (-d + s - 1) / s;
    int64_t b = size - 1 - d < 0 ? 0 : (size - 1 - d) / s + 1;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
    if (*hi < *lo)
        *hi = *lo;
}

/* The kernels, one source compiled for float and for double. */
#define SL_GENERIC_FILE "nn/conv2d_generic.h"
#include "generic_real.h"

/* One call's work for the thread pool: images [begin, end) of a part. */
typedef struct conv_job {
    const conv_geom *g;
    bool f64;
    const void *x, *w, *b, *gy;
    void *y, *gw, *gb, *gx, *cols, *gcols, *partials;
    int64_t step;
} conv_job;

/* Images per part: at least ~2^17 multiply-adds of GEMM (plus im2col's
 * copy), ~5-10 µs, so that a part pays for its hand-off. */
static int64_t image_grain(const conv_geom *g)
{
    double macs = (double)g->o * (double)g->npix * (double)g->rows;
    return macs >= (1 << 17) ? 1 : (int64_t)((1 << 17) / (macs + 1.0)) + 1;
}

static void forward_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const conv_job *j = ctx;
    if (j->f64)
        conv_forward_f64(j->g, j->x, j->w, j->b, j->y, j->cols, j->step, begin, end);
    else
        conv_forward_f32(j->g, j->x, j->w, j->b, j->y, j->cols, j->step, begin, end);
    (void)part;
}

/* Part 0 adds into the module's gradients; part p > 0 into its zeroed
 * sums in slot 2 (weight then bias), which the caller adds afterwards. */
static void backward_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const conv_job *j = ctx;
    const conv_geom *g = j->g;
    size_t esize = j->f64 ? sizeof(double) : sizeof(float);
    int64_t wn = g->o * g->rows, partial = wn + g->o;
    void *gw = j->gw, *gb = j->gb;
    char *gcols = (char *)j->gcols + (j->step ? (size_t)(part * g->rows * g->npix) * esize : 0);
    if (part > 0) {
        char *sums = (char *)j->partials + (size_t)((part - 1) * partial) * esize;
        memset(sums, 0, (size_t)partial * esize);
        gw = sums;
        gb = gb ? sums + (size_t)wn * esize : NULL;
    }
    if (j->f64)
        conv_backward_f64(g, j->x, j->w, j->gy, gw, gb, j->gx, j->cols, j->step,
                          (double *)gcols, begin, end);
    else
        conv_backward_f32(g, j->x, j->w, j->gy, gw, gb, j->gx, j->cols, j->step,
                          (float *)gcols, begin, end);
}

/* The calling module's type name, for errors. */
static const char *who(const sl_module *m) { return sl_module_type_of(m)->name; }

static int require_positive(const sl_module *m, const char *option, int64_t value)
{
    if (value > 0)
        return SL_OK;
    return sl_error(SL_EINVAL, "%s: %s must be > 0, got %lld", who(m), option, (long long)value);
}

int sl_conv2d_init(const sl_module *m, sl_conv2d *c, int64_t in_channels, int64_t out_channels,
                   int64_t kernel, int64_t stride, int64_t padding)
{
    SL_TRY(require_positive(m, "in_channels", in_channels));
    SL_TRY(require_positive(m, "out_channels", out_channels));
    SL_TRY(require_positive(m, "kernel_size", kernel));
    SL_TRY(require_positive(m, "stride", stride));
    if (padding < 0)
        return sl_error(SL_EINVAL, "%s: padding must be >= 0, got %lld", who(m),
                        (long long)padding);
    *c = (sl_conv2d){.in_channels = in_channels, .out_channels = out_channels,
                     .kernel = kernel, .stride = stride, .padding = padding};
    return SL_OK;
}

/* Fills g from an input shape, or fails with SL_ESHAPE naming what fits. */
static int conv2d_geometry(const sl_module *m, const sl_conv2d *s, int ndim, const int64_t *in,
                           conv_geom *g)
{
    char got[128];
    if (ndim != 4 || in[1] != s->in_channels)
        return sl_error(SL_ESHAPE, "%s: expected input (B, %lld, H, W), got %s", who(m),
                        (long long)s->in_channels, sl_shape_str(ndim, in, got, sizeof got));
    int64_t k = s->kernel, p = s->padding, hp, wp;
    if (!sl_add_ok(in[2], p, &hp) || !sl_add_ok(hp, p, &hp) || !sl_add_ok(in[3], p, &wp) ||
        !sl_add_ok(wp, p, &wp))
        return sl_error(SL_EINVAL, "%s: padding %lld is out of range for input %s", who(m),
                        (long long)p, sl_shape_str(ndim, in, got, sizeof got));
    if (hp < k || wp < k)
        return sl_error(SL_ESHAPE,
                        "%s: input %s is smaller than kernel_size %lld (padding %lld)", who(m),
                        sl_shape_str(ndim, in, got, sizeof got), (long long)k, (long long)p);
    *g = (conv_geom){.batch = in[0], .c = in[1], .h = in[2], .w = in[3],
                     .o = s->out_channels, .k = k, .s = s->stride, .p = p};
    g->ho = (hp - k) / g->s + 1;
    g->wo = (wp - k) / g->s + 1;
    /* rows * npix is the size of one image's im2col columns.  The weight's
     * declaration already bounds C*k*k; only padding makes Ho*Wo huge. */
    int64_t cols;
    if (!sl_numel_ok(3, (const int64_t[]){g->c, k, k}, &g->rows))
        return sl_error(SL_EINVAL, "%s: kernel_size %lld is out of range", who(m),
                        (long long)k);
    if (!sl_mul_ok(g->ho, g->wo, &g->npix) || !sl_mul_ok(g->rows, g->npix, &cols))
        return sl_error(SL_EINVAL, "%s: padding %lld is out of range for input %s", who(m),
                        (long long)p, sl_shape_str(ndim, in, got, sizeof got));
    return SL_OK;
}

int sl_conv2d_output_shape(const sl_module *m, const sl_conv2d *c, int ndim, const int64_t *in,
                           int *out_ndim, int64_t *out)
{
    conv_geom g;
    SL_TRY(conv2d_geometry(m, c, ndim, in, &g));
    *out_ndim = 4;
    out[0] = g.batch;
    out[1] = g.o;
    out[2] = g.ho;
    out[3] = g.wo;
    return SL_OK;
}

/* Scratch slot 0 holds the im2col columns: of the whole batch when they fit
 * in CONV_KEEP_COLS_MAX (*step = rows*npix elements between images), else of
 * one image (*step = 0).  Slot 1 is backward's one-image column gradient
 * when slot 0 is kept.  Both grow once to the largest batch seen. */
static int conv2d_columns(sl_module *m, const conv_geom *g, sl_dtype dtype, void **cols,
                          int64_t *step)
{
    size_t image = (size_t)(g->rows * g->npix) * sl_dtype_size(dtype);
    bool keep = image * (size_t)g->batch <= CONV_KEEP_COLS_MAX;
    *step = keep ? g->rows * g->npix : 0;
    return sl_module_scratch(m, 0, keep ? image * (size_t)g->batch : image, cols);
}

/* t (NULL allowed when `optional`) is contiguous, of the input's dtype and
 * of n elements. */
static int check_tensor(const sl_module *m, const char *what, const sl_tensor *t, bool optional,
                        sl_dtype dtype, int64_t n)
{
    if (!t && optional)
        return SL_OK;
    if (!t || !sl_tensor_is_contiguous(t) || t->dtype != dtype || sl_tensor_numel(t) != n)
        return sl_error(SL_EINVAL,
                        "%s: %s must be a contiguous tensor of %lld %s values", who(m), what,
                        (long long)n, sl_dtype_name(dtype));
    return SL_OK;
}

static int conv2d_check_input(const sl_module *m, const sl_tensor *in)
{
    if (!sl_tensor_is_contiguous(in) || (in->dtype != SL_F32 && in->dtype != SL_F64))
        return sl_error(SL_EINVAL, "%s: input must be a contiguous f32 or f64 tensor", who(m));
    return SL_OK;
}

/* The checks forward and backward share: input, geometry, weight, bias. */
static int conv2d_check(const sl_module *m, const sl_conv2d *c, const sl_tensor *in,
                        const sl_tensor *weight, const sl_tensor *bias, conv_geom *g)
{
    SL_TRY(conv2d_check_input(m, in));
    SL_TRY(conv2d_geometry(m, c, in->ndim, in->shape, g));
    SL_TRY(check_tensor(m, "weight", weight, false, in->dtype, g->o * g->rows));
    return check_tensor(m, "bias", bias, true, in->dtype, g->o);
}

int sl_conv2d_forward(sl_module *m, sl_conv2d *c, const sl_tensor *in, const sl_tensor *weight,
                      const sl_tensor *bias, sl_tensor *out)
{
    conv_geom g;
    void *cols;
    int64_t step;
    c->cols_of = NULL; /* stays NULL if anything below fails */
    SL_TRY(conv2d_check(m, c, in, weight, bias, &g));
    SL_TRY(check_tensor(m, "output", out, false, in->dtype, g.batch * g.o * g.npix));
    SL_TRY(conv2d_columns(m, &g, in->dtype, &cols, &step));
    conv_job j = {.g = &g, .f64 = in->dtype == SL_F64, .x = in->data, .w = weight->data,
                  .b = bias ? bias->data : NULL, .y = out->data, .cols = cols, .step = step};
    /* Images in parallel only when each keeps its own columns. */
    if (step)
        sl_parallel_for(g.batch, image_grain(&g), forward_part, &j);
    else
        forward_part(&j, 0, g.batch, 0);
    if (step) {
        c->cols_of = in->data;
        c->cols_batch = g.batch;
    }
    return SL_OK;
}

int sl_conv2d_backward(sl_module *m, const sl_conv2d *c, const sl_tensor *in,
                       const sl_tensor *weight, const sl_tensor *grad_out,
                       sl_tensor *grad_weight, sl_tensor *grad_bias, sl_tensor *grad_in)
{
    conv_geom g;
    void *cols, *gcols;
    int64_t step;
    SL_TRY(conv2d_check(m, c, in, weight, NULL, &g));
    SL_TRY(check_tensor(m, "grad_bias", grad_bias, true, in->dtype, g.o));
    SL_TRY(check_tensor(m, "grad_out", grad_out, false, in->dtype, g.batch * g.o * g.npix));
    SL_TRY(check_tensor(m, "grad_weight", grad_weight, false, in->dtype, g.o * g.rows));
    SL_TRY(check_tensor(m, "grad_in", grad_in, true, in->dtype, sl_tensor_numel(in)));
    SL_TRY(conv2d_columns(m, &g, in->dtype, &cols, &step));
    /* module.h: backward follows forward on the same input, so the kept
     * columns are this input's; the check only guards against misuse. */
    if (c->cols_of != in->data || c->cols_batch != g.batch)
        step = 0;
    /* Kept columns: images in parallel, part p with its own column-gradient
     * buffer (slot 1) and, for p > 0, its own weight and bias gradient sums
     * (slot 2), added into the caller's in part order afterwards. */
    size_t esize = sl_dtype_size(in->dtype);
    int parts = step ? sl_parallel_parts(g.batch, image_grain(&g)) : 1;
    int64_t partial = g.o * g.rows + g.o;
    void *partials = NULL;
    gcols = cols;
    if (step)
        SL_TRY(sl_module_scratch(m, 1, (size_t)(parts * g.rows * g.npix) * esize, &gcols));
    if (parts > 1)
        SL_TRY(sl_module_scratch(m, 2, (size_t)((parts - 1) * partial) * esize, &partials));
    conv_job j = {.g = &g, .f64 = in->dtype == SL_F64, .x = in->data, .w = weight->data,
                  .gy = grad_out->data, .gw = grad_weight->data,
                  .gb = grad_bias ? grad_bias->data : NULL,
                  .gx = grad_in ? grad_in->data : NULL, .cols = cols, .step = step,
                  .gcols = gcols, .partials = partials};
    if (parts > 1)
        sl_parallel_for(g.batch, image_grain(&g), backward_part, &j);
    else
        backward_part(&j, 0, g.batch, 0);
    for (int p = 1; p < parts; p++) {
        char *sums = (char *)partials + (size_t)((p - 1) * partial) * esize;
        if (j.f64) {
            add_run_f64(j.gw, (const double *)sums, g.o * g.rows);
            if (j.gb)
                add_run_f64(j.gb, (const double *)sums + g.o * g.rows, g.o);
        } else {
            add_run_f32(j.gw, (const float *)sums, g.o * g.rows);
            if (j.gb)
                add_run_f32(j.gb, (const float *)sums + g.o * g.rows, g.o);
        }
    }
    return SL_OK;
}

/* ---- the conv2d layer ----------------------------------------------------- */

static int conv2d_create(sl_module *m, const sl_options *opt)
{
    conv2d_state st = {.bias = sl_options_bool(opt, "bias")};
    SL_TRY(sl_conv2d_init(m, &st.conv, sl_options_int(opt, "in_channels"),
                          sl_options_int(opt, "out_channels"), sl_options_int(opt, "kernel_size"),
                          sl_options_int(opt, "stride"), sl_options_int(opt, "padding")));
    int64_t wshape[4] = {st.conv.out_channels, st.conv.in_channels, st.conv.kernel,
                         st.conv.kernel};
    SL_TRY(sl_module_add_param(m, "weight", 4, wshape));
    if (st.bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &st.conv.out_channels));
    conv2d_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "conv2d: out of memory");
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

/* PyTorch's init (kaiming_uniform with a = sqrt(5) reduces to this):
 * weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C*k*k. */
static int conv2d_reset(sl_module *m, sl_rng *rng)
{
    const conv2d_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt((double)(s->conv.in_channels * s->conv.kernel * s->conv.kernel));
    SL_TRY(sl_tensor_uniform(sl_module_param(m, CONV_WEIGHT), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, CONV_BIAS), rng, -bound, bound));
    return SL_OK;
}

static int conv2d_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                               int64_t *out)
{
    const conv2d_state *s = sl_module_state(m);
    return sl_conv2d_output_shape(m, &s->conv, ndim, in, out_ndim, out);
}

static int conv2d_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    conv2d_state *s = sl_module_state(m);
    return sl_conv2d_forward(m, &s->conv, in, sl_module_param(m, CONV_WEIGHT),
                             s->bias ? sl_module_param(m, CONV_BIAS) : NULL, out);
}

static int conv2d_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                           const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const conv2d_state *s = sl_module_state(m);
    return sl_conv2d_backward(m, &s->conv, in, sl_module_param(m, CONV_WEIGHT), grad_out,
                              sl_module_grad(m, CONV_WEIGHT),
                              s->bias ? sl_module_grad(m, CONV_BIAS) : NULL, grad_in);
}

static void conv2d_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type sl_conv2d_type = {
    .name = "conv2d",
    .summary = "2-d convolution over (B, C, H, W) images (PyTorch nn.Conv2d)",
    .options = conv2d_options,
    .create = conv2d_create,
    .reset_parameters = conv2d_reset,
    .output_shape = conv2d_output_shape,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
    .destroy = conv2d_destroy,
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 1},
};
