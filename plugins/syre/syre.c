/* plugins/syre — "syre" hook: symmetry removal by decay toward a static random
 * anchor (Ziyin, Xu, Chuang, arXiv 2408.15495; docs/background/syre.md).
 *
 * Plain weight decay pulls θ toward 0, which lies on every mirror-symmetric
 * subspace {Pθ = 0}; those subspaces then become attractive and neurons
 * collapse.  syre decays toward a small random anchor θ0 instead, which lies
 * on none of them with probability one:
 *
 *     after each optimizer step:  θ -= γ_eff · D ⊙ (θ − θ0)
 *
 * γ_eff = gamma · lr (lr_scaled, the AdamW/gist convention) or gamma.  The
 * step is decoupled from the gradient, so it composes with any optimizer
 * (with Adam the penalty must not enter the moments; docs/background/syre.md).
 *
 * θ0 ~ N(0, sigma0²) per element (sigma0 < 0 means 0.01/sqrt(fan_in)) and
 * D = diag(U[1 − diag_eps, 1 + diag_eps]) are drawn ONCE at TRAIN_BEGIN from
 * `seed`, each parameter from its own stream keyed by its name, so the anchor
 * of a parameter does not depend on which others are included.  Excluded
 * parameters get D = 0: one fused loop over the flat vector, no branches. */
#include "config.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

static const sl_option_spec syre_options[] = {
    {"gamma", SL_OPT_FLOAT, "1e-4", "decay strength toward the anchor (>= 0)", NULL},
    {"lr_scaled", SL_OPT_BOOL, "true",
     "multiply gamma by the optimizer's lr each step (decoupled, AdamW-style)", NULL},
    {"sigma0", SL_OPT_FLOAT, "-1",
     "anchor standard deviation; < 0 means 0.01/sqrt(fan_in) per parameter", NULL},
    {"sigma0_scale", SL_OPT_FLOAT, "0.01", "the c in the default sigma0 = c/sqrt(fan_in)", NULL},
    {"diag_eps", SL_OPT_FLOAT, "0", "D = diag(U[1-eps, 1+eps]); 0 gives D = I", NULL},
    {"seed", SL_OPT_INT, "-1", "seed of anchor and D; < 0 uses the run's seed", NULL},
    {"include", SL_OPT_STRING, "*", "comma-separated fnmatch globs of parameter names", NULL},
    {"exclude", SL_OPT_STRING, "", "comma-separated globs excluded (e.g. \"*.bias\")", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

typedef struct syre_state {
    const sl_options *opt; /* the hook's validated options, owned by the host */
    sl_tensor anchor; /* flat, model dtype: θ0 (0 where excluded) */
    sl_tensor diag;   /* flat, model dtype: D (0 where excluded) */
    int64_t included; /* elements with D > 0, for the report */
} syre_state;

/* The decay loop for float and for double (syre_generic.h). */
#define T float
#define SUF(name) name##_f32
#include "syre_generic.h"
#define T double
#define SUF(name) name##_f64
#include "syre_generic.h"

/* Does `name` match one of the comma-separated globs in `list`? */
static bool matches_any(const char *list, const char *name)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char glob[256];
        if (len > 0 && len < sizeof glob) {
            memcpy(glob, p, len);
            glob[len] = '\0';
            if (fnmatch(glob, name, 0) == 0)
                return true;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Rejects empty or overlong entries so that a typo ("*.bias,,") is an error
 * rather than a silently ignored pattern. */
static int check_globs(const char *key, const char *list)
{
    const char *p = list;
    if (!*p)
        return SL_OK;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= 256)
            return sl_error(SL_EINVAL, "syre: option '%s' has an empty or overlong pattern in '%s'",
                            key, list);
        if (!end)
            return SL_OK;
        p = end + 1;
    }
}

static int syre_create(sl_hook *h, const sl_options *opt)
{
    syre_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "syre: out of memory");
    sl_hook_set_state(h, s);
    s->opt = opt;
    double gamma = sl_options_float(s->opt, "gamma");
    double eps = sl_options_float(s->opt, "diag_eps");
    double sigma0 = sl_options_float(s->opt, "sigma0");
    double scale = sl_options_float(s->opt, "sigma0_scale");
    if (!(gamma >= 0) || !isfinite(gamma))
        return sl_error(SL_EINVAL, "syre: gamma must be finite and >= 0, got %g", gamma);
    if (!(eps >= 0 && eps < 1))
        return sl_error(SL_EINVAL, "syre: diag_eps must be in [0, 1), got %g", eps);
    if (!isfinite(sigma0))
        return sl_error(SL_EINVAL, "syre: sigma0 must be finite, got %g", sigma0);
    if (!(scale >= 0) || !isfinite(scale))
        return sl_error(SL_EINVAL, "syre: sigma0_scale must be finite and >= 0, got %g", scale);
    SL_TRY(check_globs("include", sl_options_string(s->opt, "include")));
    return check_globs("exclude", sl_options_string(s->opt, "exclude"));
}

/* PyTorch's fan_in: numel / shape[0] for a parameter of rank >= 2; a weight
 * layer's bias (structure.h) takes its layer's fan_in; anything else 1. */
static double fan_in_of(sl_model *m, const sl_structure *st, int i)
{
    for (int l = 0; l < sl_structure_nlayers(st); l++) {
        const sl_weight_layer *L = sl_structure_layer(st, l);
        if (L->weight == i || L->bias == i)
            return (double)L->fan_in;
    }
    const sl_tensor *p = sl_model_param(m, i);
    if (p->ndim >= 2)
        return (double)(sl_tensor_numel(p) / (p->shape[0] > 0 ? p->shape[0] : 1));
    return 1.0;
}

/* FNV-1a of the name: the parameter's own random stream. */
static uint64_t name_stream(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return h;
}

/* Draws θ0 and D for every included parameter into the flat buffers. */
static int draw_anchor(syre_state *s, sl_model *m, const sl_structure *st, uint64_t seed)
{
    double sigma0 = sl_options_float(s->opt, "sigma0");
    double scale = sl_options_float(s->opt, "sigma0_scale");
    double eps = sl_options_float(s->opt, "diag_eps");
    const char *inc = sl_options_string(s->opt, "include");
    const char *exc = sl_options_string(s->opt, "exclude");
    int64_t offset = 0;
    s->included = 0;
    for (int i = 0; i < sl_model_nparams(m); i++) {
        const char *name = sl_model_param_name(m, i);
        int64_t n = sl_tensor_numel(sl_model_param(m, i));
        sl_tensor a, d;
        SL_TRY(sl_tensor_narrow(&s->anchor, 0, offset, n, &a));
        int rc = sl_tensor_narrow(&s->diag, 0, offset, n, &d);
        if (rc >= 0 && matches_any(inc, name) && !matches_any(exc, name)) {
            double sd = sigma0 >= 0 ? sigma0 : scale / sqrt(fan_in_of(m, st, i));
            uint64_t stream = name_stream(name);
            sl_rng r;
            sl_rng_derive(&r, seed, stream);
            rc = sl_tensor_normal(&a, &r, 0.0, sd);
            sl_rng_derive(&r, seed, stream ^ 0x9e3779b97f4a7c15ull);
            if (rc >= 0)
                rc = eps > 0 ? sl_tensor_uniform(&d, &r, 1.0 - eps, 1.0 + eps)
                             : sl_tensor_fill(&d, 1.0);
            s->included += n;
        }
        sl_tensor_release(&a);
        sl_tensor_release(&d);
        SL_TRY(rc);
        offset += n;
    }
    return SL_OK;
}

static int syre_begin(syre_state *s, sl_train_ctx *ctx)
{
    sl_model *m = ctx->model;
    int64_t n = sl_model_numel(m);
    sl_dtype dt = sl_model_dtype(m);
    /* Allocated here once per run (a new run may have another model). */
    sl_tensor_release(&s->anchor);
    sl_tensor_release(&s->diag);
    SL_TRY(sl_tensor_alloc(&s->anchor, dt, 1, &n));
    SL_TRY(sl_tensor_alloc(&s->diag, dt, 1, &n));
    int64_t seed = sl_options_int(s->opt, "seed");
    sl_structure *st;
    SL_TRY(sl_model_structure(m, &st));
    int rc = draw_anchor(s, m, st, seed >= 0 ? (uint64_t)seed : ctx->seed);
    sl_structure_free(st);
    SL_TRY(rc);
    if (s->included == 0)
        return sl_error(SL_EINVAL, "syre: include '%s' / exclude '%s' select no parameter",
                        sl_options_string(s->opt, "include"),
                        sl_options_string(s->opt, "exclude"));
    return SL_OK;
}

static int syre_after_step(syre_state *s, sl_train_ctx *ctx)
{
    sl_tensor *p = sl_model_flat_params(ctx->model);
    if (sl_tensor_numel(p) != sl_tensor_numel(&s->anchor))
        return sl_error(SL_ESTATE, "syre: the model changed since TRAIN_BEGIN");
    double f = sl_options_float(s->opt, "gamma");
    if (sl_options_bool(s->opt, "lr_scaled"))
        f *= sl_optim_lr(ctx->optim);
    int64_t n = sl_tensor_numel(p);
    double dist = p->dtype == SL_F32
                      ? syre_decay_f32(p->data, s->anchor.data, s->diag.data, n, f)
                      : syre_decay_f64(p->data, s->anchor.data, s->diag.data, n, f);
    return sl_record_set(ctx->metrics, "syre_dist", sqrt(dist));
}

static int syre_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    syre_state *s = sl_hook_state(h);
    switch (ev) {
    case SL_EV_TRAIN_BEGIN:
        return syre_begin(s, ctx);
    case SL_EV_AFTER_STEP:
        return syre_after_step(s, ctx);
    default:
        return SL_OK;
    }
}

static void syre_destroy(sl_hook *h)
{
    syre_state *s = sl_hook_state(h);
    sl_tensor_release(&s->anchor);
    sl_tensor_release(&s->diag);
    free(s);
}

static const sl_hook_type syre_type = {
    .name = "syre",
    .summary = "decay toward a static random anchor after each step (syre, symmetry removal)",
    .options = syre_options,
    .create = syre_create,
    .on_event = syre_on_event,
    .destroy = syre_destroy,
    /* acts only outside AFTER_BACKWARD: the update may be fused */
    .flags = SL_HOOK_NO_GRADIENT_AFTER_BACKWARD,
};

static const sl_hook_type *const hooks[] = {&syre_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "syre",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "syre: remove parameter symmetries by decaying toward a random anchor",
    .hooks = hooks,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
