/* plugins/example — one small technique of each kind, showing the whole
 * plugin path: a module with a parameter, a hook, and a probe.  Built like
 * any out-of-tree plugin (see docs/plugin-guide.md):
 *
 *   cc -shared -fPIC example.c -o example.so $(pkg-config --cflags --libs symlab)
 *
 *   scale      module  y = w * x with one learnable scalar w
 *   grad_clip  hook    rescales the gradient to a maximum global norm
 *   param_norm probe   Euclidean norm of each named parameter, and of all
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <symlab/symlab.h>

/* ---- module "scale" ------------------------------------------------------ */

static const sl_option_spec scale_options[] = {
    {"init", SL_OPT_FLOAT, "1.0", "initial value of the gain w", NULL},
    {NULL, 0, NULL, NULL, NULL}};

/* State: the initial gain, kept for reset_parameters (parameters do not
 * exist yet in create). */
static int scale_create(sl_module *m, const sl_options *opt)
{
    double *init = malloc(sizeof *init);
    if (!init)
        return sl_error(SL_ENOMEM, "scale: out of memory");
    *init = sl_options_float(opt, "init");
    sl_module_set_state(m, init);
    int rc = sl_module_add_param(m, "weight", 1, (int64_t[]){1});
    return rc < 0 ? rc : SL_OK;
}

static int scale_reset(sl_module *m, sl_rng *rng)
{
    (void)rng;
    const double *init = sl_module_state(m);
    return sl_tensor_fill(sl_module_param(m, 0), *init);
}

static int scale_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

/* The module's loops, written once and compiled for float and for double:
 * example_generic.h is included once per element type. */
#define T float
#define SUF(name) name##_f32
#include "example_generic.h"
#define T double
#define SUF(name) name##_f64
#include "example_generic.h"

static int need_contiguous(const sl_tensor *t)
{
    return sl_tensor_is_contiguous(t) ? SL_OK
                                      : sl_error(SL_EINVAL, "scale: input must be contiguous");
}

static int scale_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    SL_TRY(need_contiguous(in));
    const sl_tensor *w = sl_module_param(m, 0);
    int64_t n = sl_tensor_numel(in);
    if (in->dtype == SL_F32)
        scale_fwd_f32(in->data, out->data, n, *(const float *)w->data);
    else
        scale_fwd_f64(in->data, out->data, n, *(const double *)w->data);
    return SL_OK;
}

static int scale_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                          const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    SL_TRY(need_contiguous(grad_out));
    const sl_tensor *w = sl_module_param(m, 0);
    sl_tensor *gw = sl_module_grad(m, 0);
    int64_t n = sl_tensor_numel(in);
    if (in->dtype == SL_F32)
        scale_bwd_f32(in->data, grad_out->data, grad_in ? grad_in->data : NULL, n,
                      *(const float *)w->data, gw->data);
    else
        scale_bwd_f64(in->data, grad_out->data, grad_in ? grad_in->data : NULL, n,
                      *(const double *)w->data, gw->data);
    return SL_OK;
}

static void scale_destroy(sl_module *m) { free(sl_module_state(m)); }

static const sl_module_type scale_type = {
    .name = "scale",
    .summary = "y = w * x with one learnable scalar gain (example plugin)",
    .options = scale_options,
    .create = scale_create,
    .reset_parameters = scale_reset,
    .output_shape = scale_shape,
    .forward = scale_forward,
    .backward = scale_backward,
    .destroy = scale_destroy,
    /* One gain shared by every unit: the same linear map on each, so it
     * commutes with permutations, rescalings and sign flips of the units. */
    .role = {.kind = SL_ROLE_PER_UNIT,
             .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR},
};

/* ---- hook "grad_clip" ----------------------------------------------------- */

static const sl_option_spec clip_options[] = {
    {"max_norm", SL_OPT_FLOAT, "1.0", "largest allowed Euclidean norm of the whole gradient",
     NULL},
    {NULL, 0, NULL, NULL, NULL}};

static int clip_create(sl_hook *h, const sl_options *opt)
{
    double *max_norm = malloc(sizeof *max_norm);
    if (!max_norm)
        return sl_error(SL_ENOMEM, "grad_clip: out of memory");
    *max_norm = sl_options_float(opt, "max_norm");
    sl_hook_set_state(h, max_norm);
    if (!(*max_norm > 0))
        return sl_error(SL_EINVAL, "grad_clip: max_norm must be > 0, got %g", *max_norm);
    return SL_OK;
}

/* After backward: g <- g * min(1, max_norm / |g|), on the flat gradient. */
static int clip_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    if (ev != SL_EV_AFTER_BACKWARD)
        return SL_OK;
    const double max_norm = *(const double *)sl_hook_state(h);
    sl_tensor *g = sl_model_flat_grads(ctx->model);
    double norm;
    SL_TRY(sl_norm2(g, &norm));
    SL_TRY(sl_record_set(ctx->metrics, "grad_norm", norm));
    return norm > max_norm ? sl_scale(max_norm / norm, g) : SL_OK;
}

static void clip_destroy(sl_hook *h) { free(sl_hook_state(h)); }

static const sl_hook_type clip_type = {
    .name = "grad_clip",
    .summary = "rescale the gradient to at most max_norm (example plugin)",
    .options = clip_options,
    .create = clip_create,
    .on_event = clip_on_event,
    .destroy = clip_destroy,
};

/* ---- probe "param_norm" --------------------------------------------------- */

static int norm_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                        sl_record *out)
{
    (void)opt;
    (void)data;
    for (int i = 0; i < sl_model_nparams(model); i++) {
        const sl_tensor *p = sl_model_param(model, i);
        double norm;
        SL_TRY(sl_norm2(p, &norm));
        SL_TRY(sl_record_set(out, sl_model_param_name(model, i), norm));
    }
    double total;
    SL_TRY(sl_norm2(sl_model_flat_params(model), &total));
    return sl_record_set(out, "total", total);
}

static const sl_probe_type norm_type = {
    .name = "param_norm",
    .summary = "Euclidean norm of each named parameter and of all (example plugin)",
    .measure = norm_measure,
};

/* ---- the descriptor ------------------------------------------------------- */

static const sl_module_type *const modules[] = {&scale_type, NULL};
static const sl_hook_type *const hooks[] = {&clip_type, NULL};
static const sl_probe_type *const probes[] = {&norm_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "example",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "a module, a hook and a probe showing how plugins are written",
    .modules = modules,
    .hooks = hooks,
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
