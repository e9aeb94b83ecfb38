/* plugins/grad_scale — multiply the gradients of some parameters by a
 * constant after backward.
 *
 * The MLP control arm of input expansion (docs/background/input-expansion.md,
 * "MLP control"): with d_c
 * constant inputs of value c in front of a fully connected layer, one plain
 * SGD step moves that layer's effective bias by (1 + c^2 d_c) times what it
 * would move without them.  Scaling the gradient of "0.bias" by that factor
 * reproduces the effect without the inputs.  For plain and momentum SGD
 * without weight decay the gradient scale is exactly a per-parameter
 * learning-rate multiplier (the update is linear in the gradient); with
 * weight decay (added inside the optimizer, after this hook) or with
 * Adam-type optimizers (scale-invariant per element) it is not.
 *
 * Parameters are selected by name with a shell glob (fnmatch(3), no flags):
 * "*.bias" (every bias), "0.bias" (the first layer's).  A pattern matching
 * no parameter is an error at the start of training.
 */
#include "config.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

typedef struct scale_state {
    char *pattern;
    double factor;
} scale_state;

static const sl_option_spec scale_options[] = {
    {"pattern", SL_OPT_STRING, "*.bias",
     "glob (fnmatch) over parameter names, e.g. \"*.bias\" or \"0.bias\"", NULL},
    {"factor", SL_OPT_FLOAT, NULL, "multiplier of the matching gradients (required)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static void scale_destroy(sl_hook *h)
{
    scale_state *s = sl_hook_state(h);
    if (s)
        free(s->pattern);
    free(s);
}

static int scale_create(sl_hook *h, const sl_options *opt)
{
    scale_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "grad_scale: out of memory");
    sl_hook_set_state(h, s);
    s->factor = sl_options_float(opt, "factor");
    const char *pattern = sl_options_string(opt, "pattern");
    s->pattern = malloc(strlen(pattern) + 1);
    if (!s->pattern)
        return sl_error(SL_ENOMEM, "grad_scale: out of memory");
    strcpy(s->pattern, pattern);
    if (!isfinite(s->factor))
        return sl_error(SL_EINVAL, "grad_scale: factor must be finite, got %g", s->factor);
    return SL_OK;
}

static bool scale_matches(const scale_state *s, const char *name)
{
    return fnmatch(s->pattern, name, 0) == 0;
}

static int scale_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    const scale_state *s = sl_hook_state(h);
    const int n = sl_model_nparams(ctx->model);
    if (ev == SL_EV_TRAIN_BEGIN) {
        for (int i = 0; i < n; i++)
            if (scale_matches(s, sl_model_param_name(ctx->model, i)))
                return SL_OK;
        return sl_error(SL_EINVAL, "grad_scale: pattern '%s' matches no parameter", s->pattern);
    }
    if (ev != SL_EV_AFTER_BACKWARD)
        return SL_OK;
    for (int i = 0; i < n; i++)
        if (scale_matches(s, sl_model_param_name(ctx->model, i)))
            SL_TRY(sl_scale(s->factor, sl_model_grad(ctx->model, i)));
    return SL_OK;
}

static const sl_hook_type scale_type = {
    .name = "grad_scale",
    .summary = "after backward, multiply the gradients of parameters matching a glob by "
               "factor: exactly a learning-rate multiplier for plain/momentum SGD without "
               "weight decay (the MLP bias-LR control of input expansion)",
    .options = scale_options,
    .create = scale_create,
    .on_event = scale_on_event,
    .destroy = scale_destroy,
};

static const sl_hook_type *const hooks[] = {&scale_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "grad_scale",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "per-parameter gradient scaling by name pattern",
    .hooks = hooks,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
