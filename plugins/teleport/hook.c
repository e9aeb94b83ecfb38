/* plugins/teleport/hook.c — the "teleport" hook: when to teleport, the
 * f64 clone it works on, and whether to keep the result.
 *
 * All of the arithmetic runs on an f64 clone of the model (allocated at
 * TRAIN_BEGIN), so f32 models teleport with f64 arithmetic; an accepted
 * teleport is copied back.  A teleport is rejected, and the model left
 * alone, when it raises the batch loss by more than loss_tol (relative),
 * when it leaves ‖∇L‖² above max_growth times its value before, or, with
 * sharpness_guard, when the largest Hessian eigenvalue of the batch loss at
 * the teleported point exceeds 2 / (the training optimizer's lr): the
 * point where a gradient-descent step of that size stops being stable. */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "tp.h"

static const sl_option_spec teleport_options[] = {
    {"form", SL_OPT_STRING, "2023",
     "group action: 2022 (U g^-1, sigma^-1(g sigma(Vh)) h^+), 2023 (g V, U sigma(Vh) "
     "sigma(gVh)^+), or reference_2022: the 2022 paper's code (U (I - T), activations from the "
     "weights before the step): NOT loss-preserving, badly so for 3+ weight layers",
     "2022|2023|reference_2022"},
    {"every", SL_OPT_INT, "0", "teleport before every N-th step (step % N == 0); 0: off", NULL},
    {"epoch", SL_OPT_INT, "-1", "teleport in this epoch (0-based) ...; -1: off", NULL},
    {"count", SL_OPT_INT, "1", "... before each of its first `count` steps", NULL},
    {"batch", SL_OPT_INT, "0",
     "teleport batch: N random training rows; 0: the current training batch", NULL},
    {"steps", SL_OPT_INT, "10", "gradient-ascent steps on |grad L|^2 per teleport", NULL},
    {"lr", SL_OPT_FLOAT, "1e-3", "teleport learning rate (step on T)", NULL},
    {"cap", SL_OPT_FLOAT, "100", "stop ascending once |grad L|^2 exceeds this; 0: no cap", NULL},
    {"max_growth", SL_OPT_FLOAT, "0",
     "keep |grad L|^2 <= max_growth x its value before the teleport: the ascent step that "
     "would exceed it is undone and the ascent stops (a start already above it is rejected); "
     "0: off, else >= 1", NULL},
    {"max_t_norm", SL_OPT_FLOAT, "0",
     "clamp each ascent step: every pair's T_m (g_m = I + T_m, T_m = lr dobj/dT_m) is scaled "
     "down to Frobenius norm max_t_norm when longer; 0: off", NULL},
    {"sharpness_guard", SL_OPT_BOOL, "false",
     "reject a teleport whose largest Hessian eigenvalue on the teleport batch (power "
     "iteration) exceeds 2 / the optimizer's lr (the stability limit of plain gradient descent)",
     NULL},
    {"sharpness_iters", SL_OPT_INT, "20", "power-iteration steps of sharpness_guard", NULL},
    {"reset_optim", SL_OPT_BOOL, "true", "reset the optimizer state after a teleport", NULL},
    {"loss_tol", SL_OPT_FLOAT, "1e-3",
     "reject a teleport raising the batch loss by more than this (relative)", NULL},
    {"rcond", SL_OPT_FLOAT, "1e-10", "pseudo-inverse cutoff relative to the largest singular value",
     NULL},
    {"hvp_eps", SL_OPT_FLOAT, "1e-6", "finite-difference step of the Hessian-vector product, "
                                      "relative to max(1, |theta|)", NULL},
    {"seed", SL_OPT_INT, "-1", "seed of the teleport batches; < 0: the run's seed", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int tele_create(sl_hook *h, const sl_options *opt)
{
    tp_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    sl_hook_set_state(h, s);
    s->opt = opt;
    static const char *const nonneg_int[] = {"every", "count", "batch", "steps"};
    for (size_t i = 0; i < sizeof nonneg_int / sizeof *nonneg_int; i++)
        if (sl_options_int(opt, nonneg_int[i]) < 0)
            return sl_error(SL_EINVAL, "teleport: %s must be >= 0, got %lld", nonneg_int[i],
                            (long long)sl_options_int(opt, nonneg_int[i]));
    static const char *const nonneg_float[] = {"lr", "cap", "loss_tol", "rcond", "max_growth",
                                               "max_t_norm"};
    for (size_t i = 0; i < sizeof nonneg_float / sizeof *nonneg_float; i++) {
        double v = sl_options_float(opt, nonneg_float[i]);
        if (!(v >= 0) || !isfinite(v))
            return sl_error(SL_EINVAL, "teleport: %s must be finite and >= 0, got %g",
                            nonneg_float[i], v);
    }
    double eps = sl_options_float(opt, "hvp_eps");
    if (!(eps > 0) || !isfinite(eps))
        return sl_error(SL_EINVAL, "teleport: hvp_eps must be finite and > 0, got %g", eps);
    if (sl_options_int(opt, "sharpness_iters") < 1)
        return sl_error(SL_EINVAL, "teleport: sharpness_iters must be >= 1, got %lld",
                        (long long)sl_options_int(opt, "sharpness_iters"));
    double growth = sl_options_float(opt, "max_growth");
    if (growth > 0 && growth < 1)
        return sl_error(SL_EINVAL, "teleport: max_growth must be 0 (off) or >= 1, got %g",
                        growth);
    if (sl_options_int(opt, "every") == 0 && sl_options_int(opt, "epoch") < 0)
        return sl_error(SL_EINVAL, "teleport: set 'every' (steps) or 'epoch' to say when");
    return SL_OK;
}

static void tele_release(tp_state *s)
{
    sl_model_free(s->work);
    s->work = NULL;
    sl_tensor_release(&s->x);
    sl_tensor_release(&s->y);
    sl_tensor_release(&s->theta);
    sl_tensor_release(&s->v);
    sl_tensor_release(&s->gp);
    sl_tensor_release(&s->backup);
    free(s->perm);
    s->perm = NULL;
}

static int tele_begin(tp_state *s, sl_train_ctx *ctx)
{
    tele_release(s);
    sl_structure *st;
    SL_TRY(sl_model_structure(ctx->model, &st));
    int rc = tp_describe_net(ctx->model, st, &s->n);
    sl_structure_free(st);
    SL_TRY(rc);
    int64_t seed = sl_options_int(s->opt, "seed");
    s->seed = seed >= 0 ? (uint64_t)seed : ctx->seed;
    s->epoch_seen = -1;
    s->teleports = s->accepted = s->rejected = 0;
    SL_TRY(sl_model_clone(ctx->model, SL_F64, &s->work));
    int64_t np = sl_model_numel(ctx->model);
    SL_TRY(sl_tensor_alloc(&s->theta, SL_F64, 1, &np));
    SL_TRY(sl_tensor_alloc(&s->v, SL_F64, 1, &np));
    SL_TRY(sl_tensor_alloc(&s->gp, SL_F64, 1, &np));
    SL_TRY(sl_tensor_alloc(&s->backup, sl_model_dtype(ctx->model), 1, &np));
    return tp_batch_begin(s, ctx, sl_options_int(s->opt, "batch"));
}

/* Whether a teleport from `before` to `after` keeps the loss within tol
 * and ‖∇L‖² within max_growth (0: any). */
static bool acceptable(tp_point before, tp_point after, double tol, double max_growth)
{
    return isfinite(before.loss) && isfinite(before.gradsq) && isfinite(after.loss) &&
           isfinite(after.gradsq) && after.loss - before.loss <= tol * fabs(before.loss) &&
           (max_growth == 0 || after.gradsq <= max_growth * before.gradsq);
}

static int teleport_now(tp_state *s, sl_train_ctx *ctx)
{
    const sl_tensor *x = NULL, *y = NULL;
    SL_TRY(tp_fill_batch(s, ctx, &x, &y));
    SL_TRY(sl_model_copy_state(s->work, ctx->model));
    tp_arena a = {0};
    tp_point before = {0, 0}, after = {0, 0};
    int64_t taken = 0;
    int rc = tp_ascend(s, &a, ctx->loss, x, y, &before, &after, &taken);
    if (a.failed && rc >= 0)
        rc = sl_error(SL_ENOMEM, "teleport: out of memory");
    tp_arena_free(&a);
    if (rc == SL_ENUMERIC) /* a diverged ascent is a rejected teleport, not a failure */
        after.loss = after.gradsq = NAN;
    else
        SL_TRY(rc);
    s->teleports++;
    double tol = sl_options_float(s->opt, "loss_tol");
    double growth = sl_options_float(s->opt, "max_growth");
    bool ok = acceptable(before, after, tol, growth);
    double sharpness = NAN;
    if (ok) {
        sl_tensor *p = sl_model_flat_params(ctx->model);
        SL_TRY(sl_tensor_copy(&s->backup, p));
        SL_TRY(sl_model_copy_state(ctx->model, s->work));
        if (sl_model_dtype(ctx->model) != SL_F64) {
            /* Judge the weights the model really got: a teleport toward an
             * ill-conditioned g can be exact in f64 and ruined by rounding. */
            SL_TRY(sl_model_copy_state(s->work, ctx->model));
            SL_TRY(tp_measure(s, ctx->loss, x, y, &after));
            ok = acceptable(before, after, tol, growth);
        }
        if (ok && sl_options_bool(s->opt, "sharpness_guard")) {
            SL_TRY(tp_sharpness(s, ctx->loss, x, y, sl_options_int(s->opt, "sharpness_iters"),
                                &sharpness));
            double lr = sl_optim_lr(ctx->optim);
            ok = isfinite(sharpness) && (lr <= 0 || sharpness <= 2.0 / lr);
        }
        if (!ok)
            SL_TRY(sl_tensor_copy(p, &s->backup));
    }
    if (ok) {
        if (sl_options_bool(s->opt, "reset_optim"))
            sl_optim_reset(ctx->optim);
        s->accepted++;
    } else {
        s->rejected++;
    }
    sl_record *r = ctx->metrics;
    SL_TRY(sl_record_set(r, "teleport_loss_before", before.loss));
    SL_TRY(sl_record_set(r, "teleport_loss_after", after.loss));
    SL_TRY(sl_record_set(r, "teleport_gradsq_before", before.gradsq));
    SL_TRY(sl_record_set(r, "teleport_gradsq_after", after.gradsq));
    SL_TRY(sl_record_set(r, "teleport_steps", (double)taken));
    if (sl_options_bool(s->opt, "sharpness_guard"))
        SL_TRY(sl_record_set(r, "teleport_sharpness", sharpness));
    SL_TRY(sl_record_set(r, "teleports", (double)s->accepted));
    return sl_record_set(r, "teleports_rejected", (double)s->rejected);
}

static int tele_step_begin(tp_state *s, sl_train_ctx *ctx)
{
    if (ctx->epoch != s->epoch_seen) {
        s->epoch_seen = ctx->epoch;
        s->step_in_epoch = 0;
    }
    int64_t in_epoch = s->step_in_epoch++;
    int64_t every = sl_options_int(s->opt, "every"), epoch = sl_options_int(s->opt, "epoch");
    bool due = (every > 0 && ctx->step % every == 0) ||
               (epoch >= 0 && ctx->epoch == epoch && in_epoch < sl_options_int(s->opt, "count"));
    return due ? teleport_now(s, ctx) : SL_OK;
}

static int tele_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    tp_state *s = sl_hook_state(h);
    switch (ev) {
    case SL_EV_TRAIN_BEGIN:
        return tele_begin(s, ctx);
    case SL_EV_STEP_BEGIN:
        return tele_step_begin(s, ctx);
    default:
        return SL_OK;
    }
}

static void tele_destroy(sl_hook *h)
{
    tp_state *s = sl_hook_state(h);
    tele_release(s);
    free(s);
}

static const sl_hook_type teleport_type = {
    .name = "teleport",
    .summary = "symmetry teleportation: climb |grad L|^2 along the GL(k) action of leaky_relu MLPs",
    .options = teleport_options,
    .create = tele_create,
    .on_event = tele_on_event,
    .destroy = tele_destroy,
    /* acts only outside AFTER_BACKWARD: the update may be fused */
    .flags = SL_HOOK_NO_GRADIENT_AFTER_BACKWARD,
};

static const sl_hook_type *const hooks[] = {&teleport_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "teleport",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "symmetry teleportation (Zhao et al. 2022, 2023)",
    .hooks = hooks,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
