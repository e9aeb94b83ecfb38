/* core/nn/activations.c — elementwise activations (PyTorch semantics):
 * relu, leaky_relu (negative_slope), tanh, sigmoid, gelu (exact erf form)
 * and identity.
 *
 * One generic module serves them all: the same create, output_shape,
 * forward and backward, which look up the type's kernels in `act_kinds`.
 * A kernel pair comes, for f32 and f64, from two functions: the value f(x)
 * and the derivative f'(x), which may use x, the saved output y and the
 * option a (negative_slope).  Math runs in double for both dtypes, except
 * for relu and identity, whose results are exact in the tensor's own type,
 * so that computing there gives the same bits without two conversions per
 * element.  Any shape; out has the shape of in. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nn/nn.h"

typedef void (*act_forward_fn)(const void *x, void *y, int64_t n, double a);
typedef void (*act_backward_fn)(const void *x, const void *y, const void *gy, void *gx,
                                int64_t n, double a);

/* What distinguishes one activation from another. */
typedef struct act_kind {
    const sl_module_type *type;
    act_forward_fn forward[2];   /* [0] f32, [1] f64 */
    act_backward_fn backward[2];
    int64_t grain;               /* elements per part of the thread pool */
} act_kind;

typedef struct act_state {
    const act_kind *kind;
    double a; /* negative_slope for leaky_relu, unused otherwise */
} act_state;

/* Logistic function without overflow for large |x|. */
static double logistic(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

#define SQRT1_2 0.70710678118654752440   /* 1/sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */

/* relu'(0) = 0 and leaky_relu'(0) = a, as PyTorch.  The value tests x < 0
 * so that NaN passes through, as in PyTorch: a NaN must reach the loss and
 * stop training, not be silently zeroed. */
static double leaky_relu_value(double x, double a) { return x < 0 ? a * x : x; }
static double leaky_relu_deriv(double x, double y, double a) { return x > 0 ? 1 : a; }
static double tanh_value(double x, double a) { return tanh(x); }
static double tanh_deriv(double x, double y, double a) { return 1 - y * y; }
static double sigmoid_value(double x, double a) { return logistic(x); }
static double sigmoid_deriv(double x, double y, double a) { return y * (1 - y); }
static double gelu_value(double x, double a) { return 0.5 * x * (1 + erf(x * SQRT1_2)); }
static double gelu_deriv(double x, double y, double a)
{
    return 0.5 * (1 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}

/* The kernels, one source compiled for float and for double. */
#define SL_GENERIC_FILE "nn/activations_generic.h"
#include "generic_real.h"

/* Elements per part of the thread pool: relu streams ~16 bytes per
 * element in ~1 ns; the transcendental ones cost 10-50 ns.  Elementwise,
 * so any split gives the same bits. */
#define ACT_GRAIN_CHEAP 65536
#define ACT_GRAIN_MATH 4096

#define ACT_KIND(NAME, GRAIN)                                                           \
    {&sl_##NAME##_type, {NAME##_forward_f32, NAME##_forward_f64},                       \
     {NAME##_backward_f32, NAME##_backward_f64}, GRAIN}

static const act_kind act_kinds[] = {
    ACT_KIND(relu, ACT_GRAIN_CHEAP), ACT_KIND(leaky_relu, ACT_GRAIN_CHEAP),
    ACT_KIND(tanh, ACT_GRAIN_MATH),  ACT_KIND(sigmoid, ACT_GRAIN_MATH),
    ACT_KIND(gelu, ACT_GRAIN_MATH),  ACT_KIND(identity, ACT_GRAIN_CHEAP),
};

static const sl_option_spec leaky_relu_options[] = {
    {"negative_slope", SL_OPT_FLOAT, "0.01", "slope for x < 0", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

static int act_create(sl_module *m, const sl_options *opt)
{
    const sl_module_type *type = sl_module_type_of(m);
    const act_kind *kind = NULL;
    for (size_t i = 0; i < SL_COUNTOF(act_kinds); i++)
        if (act_kinds[i].type == type)
            kind = &act_kinds[i];
    if (!kind)
        return sl_error(SL_EINVAL, "%s: not an activation type", type->name);
    double a = 0;
    if (type == &sl_leaky_relu_type) {
        a = sl_options_float(opt, "negative_slope");
        if (!isfinite(a))
            return sl_error(SL_EINVAL, "leaky_relu: negative_slope must be finite, got %g", a);
    }
    act_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "%s: out of memory", type->name);
    *s = (act_state){kind, a};
    sl_module_set_state(m, s);
    return SL_OK;
}

static int act_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                            int64_t *out)
{
    *out_ndim = ndim;
    memcpy(out, in, (size_t)ndim * sizeof *in);
    return SL_OK;
}

/* Index of the kernel for in's dtype, after checking layout. */
static int act_prepare(sl_module *m, const sl_tensor *in, int *which)
{
    if (!sl_tensor_is_contiguous(in) || (in->dtype != SL_F32 && in->dtype != SL_F64))
        return sl_error(SL_EINVAL, "%s: input must be a contiguous f32 or f64 tensor",
                        sl_module_type_of(m)->name);
    *which = in->dtype == SL_F32 ? 0 : 1;
    return SL_OK;
}

typedef struct act_job {
    const act_state *s;
    int which;
    size_t esize;
    const char *x, *y, *gy;
    char *out;
} act_job;

static void forward_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const act_job *j = ctx;
    size_t at = (size_t)begin * j->esize;
    j->s->kind->forward[j->which](j->x + at, j->out + at, end - begin, j->s->a);
    (void)part;
}

static void backward_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const act_job *j = ctx;
    size_t at = (size_t)begin * j->esize;
    j->s->kind->backward[j->which](j->x + at, j->y + at, j->gy + at, j->out + at, end - begin,
                                   j->s->a);
    (void)part;
}

static int act_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const act_state *s = sl_module_state(m);
    int which = 0;
    SL_TRY(act_prepare(m, in, &which));
    act_job j = {.s = s, .which = which, .esize = sl_dtype_size(in->dtype), .x = in->data,
                 .out = out->data};
    sl_parallel_for(sl_tensor_numel(in), s->kind->grain, forward_part, &j);
    return SL_OK;
}

static int act_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                        const sl_tensor *grad_out, sl_tensor *grad_in)
{
    const act_state *s = sl_module_state(m);
    int which = 0;
    if (!grad_in)
        return SL_OK;
    SL_TRY(act_prepare(m, in, &which));
    act_job j = {.s = s, .which = which, .esize = sl_dtype_size(in->dtype), .x = in->data,
                 .y = out->data, .gy = grad_out->data, .out = grad_in->data};
    sl_parallel_for(sl_tensor_numel(in), s->kind->grain, backward_part, &j);
    return SL_OK;
}

static void act_destroy(sl_module *m) { free(sl_module_state(m)); }

#define ACT_TYPE(NAME, SUMMARY, OPTIONS, FLAGS)                                         \
    const sl_module_type sl_##NAME##_type = {                                           \
        .name = #NAME,                                                                  \
        .summary = SUMMARY,                                                             \
        .options = OPTIONS,                                                             \
        .create = act_create,                                                           \
        .output_shape = act_output_shape,                                               \
        .forward = act_forward,                                                         \
        .backward = act_backward,                                                       \
        .destroy = act_destroy,                                                         \
        .role = {.kind = SL_ROLE_PER_UNIT, .flags = (FLAGS)},                           \
    };

ACT_TYPE(relu, "max(x, 0) elementwise (PyTorch nn.ReLU)", NULL, SL_UNIT_HOMOGENEOUS)
ACT_TYPE(leaky_relu, "x if x > 0 else negative_slope * x (PyTorch nn.LeakyReLU)",
         leaky_relu_options, SL_UNIT_HOMOGENEOUS)
ACT_TYPE(tanh, "hyperbolic tangent elementwise (PyTorch nn.Tanh)", NULL, SL_UNIT_ODD)
ACT_TYPE(sigmoid, "logistic function 1 / (1 + exp(-x)) elementwise (PyTorch nn.Sigmoid)", NULL, 0)
ACT_TYPE(gelu, "x * Phi(x), exact erf form (PyTorch nn.GELU)", NULL, 0)
ACT_TYPE(identity, "passes its input through unchanged (PyTorch nn.Identity)", NULL,
         SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR)
