/* plugins/symmetry_metrics/rank_log.c — the "rank_log" hook: rank
 * trajectories during training.
 *
 * At the end of every `every`-th epoch it puts into the epoch's history row
 * the rank measures the symmetry_metrics probe reports for each weight
 * layer — "<path>.rank", ".stable_rank", ".effective_rank" and, with
 * top_sv, ".sv0" ... — the same of the end-to-end matrix ("product.*") of
 * a deep linear network, and with nc1 = true the neural collapse "nc1" of
 * the penultimate features on the first probe_batch rows of the training
 * set (evaluation mode).  Names and tolerances are the probe's
 * (symmetry_metrics.c), so a trajectory and a single measurement read
 * alike.  It reads the model and changes nothing: a run with the hook is
 * bit-identical to one without.  Its work (an SVD per layer, one forward
 * with nc1) happens at epoch ends, never inside a training step.
 */
#include "config.h"

#include <stdlib.h>

#include "metrics.h"

static const sl_option_spec rank_log_options[] = {
    {"every", SL_OPT_INT, "1", "measure at the end of every N-th epoch", NULL},
    {"rank_atol", SL_OPT_FLOAT, "0",
     "rank counts singular values above max(rank_atol, rank_rtol * largest)", NULL},
    {"rank_rtol", SL_OPT_FLOAT, "1e-3", "relative rank tolerance (see rank_atol)", NULL},
    {"top_sv", SL_OPT_INT, "0", "also record the N largest singular values (i.sv0 ...)", NULL},
    {"nc1", SL_OPT_BOOL, "false", "also record NC1 of the penultimate features", NULL},
    {"probe_batch", SL_OPT_INT, "512", "rows of the training set NC1 is measured on", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

typedef struct rank_log {
    const sl_options *opt;
    sm_rank_opts ro;
} rank_log;

static int rank_log_create(sl_hook *h, const sl_options *opt)
{
    rank_log *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "rank_log: out of memory");
    sl_hook_set_state(h, s);
    s->opt = opt;
    SL_TRY(sm_rank_opts_get(opt, "rank_log", &s->ro));
    if (sl_options_int(opt, "every") < 1)
        return sl_error(SL_EINVAL, "rank_log: every must be >= 1, got %lld",
                        (long long)sl_options_int(opt, "every"));
    if (sl_options_int(opt, "probe_batch") < 1)
        return sl_error(SL_EINVAL, "rank_log: probe_batch must be >= 1, got %lld",
                        (long long)sl_options_int(opt, "probe_batch"));
    return SL_OK;
}

static int log_nc1(rank_log *s, sl_train_ctx *ctx, const sl_structure *st)
{
    sm_batch b;
    SL_TRY(sm_batch_forward(ctx->model, ctx->data, sl_options_int(s->opt, "probe_batch"), &b));
    double nc1;
    int rc = sm_nc1(ctx->model, st, &b, &nc1, NULL);
    sm_batch_free(&b);
    SL_TRY(rc);
    return sl_record_set(ctx->metrics, "nc1", nc1);
}

static int log_ranks(rank_log *s, sl_train_ctx *ctx)
{
    sl_structure *st;
    SL_TRY(sl_model_structure(ctx->model, &st));
    int rc = SL_OK;
    bool product;
    for (int i = 0; rc >= 0 && i < sl_structure_nlayers(st); i++)
        rc = sm_weight_ranks(ctx->model, sl_structure_layer(st, i), &s->ro, ctx->metrics);
    if (rc >= 0)
        rc = sm_product_ranks(ctx->model, st, &s->ro, ctx->metrics, &product);
    if (rc >= 0 && sl_options_bool(s->opt, "nc1"))
        rc = log_nc1(s, ctx, st);
    sl_structure_free(st);
    return rc;
}

static int rank_log_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    rank_log *s = sl_hook_state(h);
    if (ev != SL_EV_EPOCH_END || (ctx->epoch + 1) % sl_options_int(s->opt, "every") != 0)
        return SL_OK;
    return log_ranks(s, ctx);
}

static void rank_log_destroy(sl_hook *h) { free(sl_hook_state(h)); }

const sl_hook_type sm_rank_log_type = {
    .name = "rank_log",
    .summary = "per-layer rank, stable and effective rank (and optionally NC1) at epoch ends",
    .options = rank_log_options,
    .create = rank_log_create,
    .on_event = rank_log_event,
    .destroy = rank_log_destroy,
    /* acts only outside AFTER_BACKWARD: the update may be fused */
    .flags = SL_HOOK_NO_GRADIENT_AFTER_BACKWARD,
};
