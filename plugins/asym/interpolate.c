/* plugins/asym/interpolate.c — the "interpolate" probe: linear mode
 * connectivity of two models of one architecture.
 *
 * Along θ(λ) = (1 − λ) θ₁ + λ θ₂ at k evenly spaced points λ_i = i/(k − 1)
 * (every parameter and every buffer, so batch norm's running statistics are
 * interpolated too), it evaluates the loss and, for label targets, the
 * accuracy on the probe's dataset in evaluation mode.  θ₁ is the probe's
 * model, θ₂ the checkpoint named by the option `other` (a model saved from
 * the same architecture; for asymmetric layers, built with the same
 * mask_seed — the fixed entries are then equal at both ends and stay so).
 * Entries equal at both ends are kept exactly, not recomputed.
 *
 * Running statistics (batch norm's) of θ(λ) are the interpolated ones
 * unless `refresh_batches` > 0: then, before evaluating at each λ, that
 * many batches of the dataset (in order, cycling) are run forward in
 * training mode, so every module updates its statistics from θ(λ)'s own
 * activations (an exponential average with the module's momentum: the
 * interpolated start keeps a weight of (1 − momentum)^refresh_batches).
 *
 * Records:
 *   lambda_i, loss_i, acc_i   the curve, i = 0 .. k−1 (acc_* for labels);
 *   barrier                   L(θ(½)) − ½ (L(θ₁) + L(θ₂)), the midpoint
 *                             barrier (θ(½) is evaluated even when k is
 *                             even);
 *   max_barrier               max_i L(θ(λ_i)) − [(1 − λ_i) L(θ₁) + λ_i L(θ₂)],
 *                             the largest rise above the chord;
 *   acc_barrier, max_acc_barrier   the same for the accuracy, as a drop
 *                             below the chord.
 * The model itself is not changed.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "asym.h"

static const sl_option_spec interp_options[] = {
    {"other", SL_OPT_STRING, NULL, "checkpoint (safetensors) of the second model, theta_2",
     NULL},
    {"points", SL_OPT_INT, "25", "k: evaluate at lambda = i/(k-1), i = 0..k-1 (k >= 2)", NULL},
    {"loss", SL_OPT_STRING, "cross_entropy", "loss to evaluate", NULL},
    {"batch", SL_OPT_INT, "1000", "evaluation batch size", NULL},
    {"refresh_batches", SL_OPT_INT, "0",
     "training-mode forward batches that refresh running statistics at each point (0: none)",
     NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

/* dst = (1 − t) a + t b elementwise, entries equal in a and b copied. */
#define DEFINE_LERP(T, SUF)                                                              \
    static void lerp_##SUF(T *dst, const T *a, const T *b, int64_t n, double t)          \
    {                                                                                    \
        for (int64_t i = 0; i < n; i++)                                                  \
            dst[i] = a[i] == b[i] ? a[i] : (T)((1 - t) * (double)a[i] + t * (double)b[i]); \
    }
DEFINE_LERP(float, f32)
DEFINE_LERP(double, f64)

static void lerp(sl_tensor *dst, const sl_tensor *a, const sl_tensor *b, double t)
{
    int64_t n = sl_tensor_numel(dst);
    if (dst->dtype == SL_F32)
        lerp_f32(dst->data, a->data, b->data, n, t);
    else
        lerp_f64(dst->data, a->data, b->data, n, t);
}

/* work = θ(t) of a and b, parameters and buffers. */
static void set_point(sl_model *work, sl_model *a, sl_model *b, double t)
{
    lerp(sl_model_flat_params(work), sl_model_flat_params(a), sl_model_flat_params(b), t);
    for (int i = 0; i < sl_model_nbuffers(work); i++)
        lerp(sl_model_buffer(work, i), sl_model_buffer(a, i), sl_model_buffer(b, i), t);
}

typedef struct point {
    double loss, acc; /* acc NaN without labels */
} point;

/* Runs n batches of the batcher forward in training mode (cycling through
 * epochs), so running statistics follow the current parameters. */
static int refresh_statistics(sl_model *work, sl_batcher *batcher, int64_t n)
{
    const sl_tensor *x, *y, *pred;
    int64_t epoch = 0;
    sl_model_set_training(work, true);
    sl_batcher_begin_epoch(batcher, epoch);
    for (int64_t i = 0; i < n; i++) {
        int more = sl_batcher_next(batcher, &x, &y);
        if (more == 0) {
            sl_batcher_begin_epoch(batcher, ++epoch);
            more = sl_batcher_next(batcher, &x, &y);
        }
        if (more < 0)
            return more;
        SL_TRY(sl_model_forward(work, x, &pred));
    }
    sl_model_set_training(work, false);
    return SL_OK;
}

typedef struct sweep_ctx {
    sl_model *work, *a, *b;
    const sl_options *opt;
    const sl_dataset *data;
    sl_record *scratch;
    sl_batcher *batcher; /* NULL: no refresh */
} sweep_ctx;

/* Loss and accuracy at θ(t), statistics refreshed first if asked. */
static int evaluate_at(const sweep_ctx *c, double t, point *p)
{
    set_point(c->work, c->a, c->b, t);
    if (c->batcher)
        SL_TRY(refresh_statistics(c->work, c->batcher,
                                  sl_options_int(c->opt, "refresh_batches")));
    sl_record_clear(c->scratch);
    SL_TRY(sl_evaluate(c->work, c->data, sl_options_string(c->opt, "loss"),
                       sl_options_int(c->opt, "batch"), c->scratch));
    SL_TRY(sl_record_get(c->scratch, "loss", &p->loss));
    if (sl_record_get(c->scratch, "accuracy", &p->acc) < 0)
        p->acc = NAN;
    return SL_OK;
}

static int put_indexed(sl_record *out, const char *stem, int64_t i, double v)
{
    char name[48];
    snprintf(name, sizeof name, "%s_%lld", stem, (long long)i);
    return sl_record_set(out, name, v);
}

/* The curve, then the barriers from it. */
static int sweep(const sweep_ctx *c, sl_record *out)
{
    int64_t k = sl_options_int(c->opt, "points");
    point p0, p1, mid, p;
    SL_TRY(evaluate_at(c, 0.0, &p0));
    SL_TRY(evaluate_at(c, 1.0, &p1));
    SL_TRY(evaluate_at(c, 0.5, &mid));
    bool labels = !isnan(p0.acc);
    double max_barrier = -INFINITY, max_acc_barrier = -INFINITY;
    for (int64_t i = 0; i < k; i++) {
        double t = (double)i / (double)(k - 1);
        if (i == 0)
            p = p0;
        else if (i == k - 1)
            p = p1;
        else
            SL_TRY(evaluate_at(c, t, &p));
        SL_TRY(put_indexed(out, "lambda", i, t));
        SL_TRY(put_indexed(out, "loss", i, p.loss));
        max_barrier = fmax(max_barrier, p.loss - ((1 - t) * p0.loss + t * p1.loss));
        if (labels) {
            SL_TRY(put_indexed(out, "acc", i, p.acc));
            max_acc_barrier = fmax(max_acc_barrier, (1 - t) * p0.acc + t * p1.acc - p.acc);
        }
    }
    SL_TRY(sl_record_set(out, "barrier", mid.loss - 0.5 * (p0.loss + p1.loss)));
    SL_TRY(sl_record_set(out, "max_barrier", max_barrier));
    if (labels) {
        SL_TRY(sl_record_set(out, "acc_barrier", 0.5 * (p0.acc + p1.acc) - mid.acc));
        SL_TRY(sl_record_set(out, "max_acc_barrier", max_acc_barrier));
    }
    return SL_OK;
}

static int interp_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                          sl_record *out)
{
    if (!data)
        return sl_error(SL_EINVAL, "interpolate: needs a dataset to evaluate on");
    int64_t k = sl_options_int(opt, "points");
    if (k < 2)
        return sl_error(SL_EINVAL, "interpolate: points must be >= 2, got %lld", (long long)k);
    if (!sl_registry_find(SL_KIND_LOSS, sl_options_string(opt, "loss")))
        return sl_error_context(SL_ENOTFOUND, "interpolate: option 'loss'");
    int64_t refresh = sl_options_int(opt, "refresh_batches"), batch = sl_options_int(opt, "batch");
    if (refresh < 0 || batch < 1)
        return sl_error(SL_EINVAL, "interpolate: refresh_batches must be >= 0 and batch >= 1");
    sweep_ctx c = {.a = model, .opt = opt, .data = data, .scratch = sl_record_new()};
    int rc = c.scratch ? SL_OK : sl_error(SL_ENOMEM, "interpolate: out of memory");
    if (rc >= 0)
        rc = asym_load_other(model, sl_options_string(opt, "other"), "interpolate", &c.b);
    if (rc >= 0)
        rc = sl_model_clone(model, sl_model_dtype(model), &c.work);
    if (rc >= 0 && refresh > 0)
        rc = sl_batcher_new(data, batch, sl_model_dtype(model), false, 0, false, &c.batcher);
    if (rc >= 0)
        rc = sweep(&c, out);
    sl_batcher_free(c.batcher);
    sl_record_free(c.scratch);
    sl_model_free(c.work);
    sl_model_free(c.b);
    return rc;
}

const sl_probe_type interpolate_probe = {
    .name = "interpolate",
    .summary = "loss and accuracy along (1-t) theta_1 + t theta_2 (a checkpoint), and the "
               "barrier",
    .options = interp_options,
    .measure = interp_measure,
};
