/* core/train.c — the training loop. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static const sl_option_spec train_spec[] = {
    {"epochs", SL_OPT_INT, "1", "passes over the training set", NULL},
    {"batch", SL_OPT_INT, "64", "samples per step", NULL},
    {"seed", SL_OPT_INT, "1", "seed of the shuffling order (and of hooks that draw)", NULL},
    {"loss", SL_OPT_STRING, "cross_entropy", "registered loss type", NULL},
    {"shuffle", SL_OPT_BOOL, "true", "visit samples in a new seeded order each epoch", NULL},
    {"drop_last", SL_OPT_BOOL, "false", "skip a final batch smaller than `batch`", NULL},
    {"eval_batch", SL_OPT_INT, "1000", "batch size for validation", NULL},
    {"progress", SL_OPT_STRING, "auto", "progress bar on stderr", "auto|always|never"},
    {NULL, 0, NULL, NULL, NULL}};

const sl_option_spec *sl_train_options(void) { return train_spec; }

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One state for the whole run, so the loop itself stays short. */
typedef struct run {
    sl_model *model;
    sl_optim *optim;
    const sl_train_args *args;
    const sl_loss_type *loss;
    sl_batcher *batcher;
    sl_train_ctx ctx;
    sl_record *row;
    int64_t epochs, eval_batch;
    bool progress;
} run;

static int call_hooks(run *r, sl_event ev)
{
    for (int i = 0; i < r->args->nhooks; i++)
        SL_TRY(sl_hook_call(r->args->hooks[i], ev, &r->ctx));
    return SL_OK;
}

static void draw_progress(const run *r, int64_t done, int64_t total, double loss)
{
    enum { WIDTH = 30 };
    int filled = total > 0 ? (int)(WIDTH * done / total) : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[WIDTH] = '\0';
    fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.4f ", (long long)r->ctx.epoch + 1,
            (long long)r->epochs, bar, (long long)done, (long long)total, loss);
    if (done == total)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* One optimisation step on (x, y); adds the batch's loss and hits. */
static int step(run *r, const sl_tensor *x, const sl_tensor *y, double *loss_sum,
                int64_t *correct)
{
    sl_train_ctx *c = &r->ctx;
    c->x = x;
    c->y = y;
    sl_model_zero_grad(r->model);
    SL_TRY(call_hooks(r, SL_EV_STEP_BEGIN));
    const sl_tensor *pred;
    SL_TRY(sl_loss_backward(r->model, r->loss, x, y, true, &c->loss_value, &pred));
    if (!isfinite(c->loss_value))
        return sl_error(SL_ENUMERIC,
                        "training stopped: loss is %g at epoch %lld, step %lld (try a smaller "
                        "learning rate, or check the data)",
                        c->loss_value, (long long)c->epoch + 1, (long long)c->step + 1);
    /* Count hits now: hooks may run other forwards through the model. */
    *correct += sl_count_correct(pred, y);
    SL_TRY(call_hooks(r, SL_EV_AFTER_BACKWARD));
    SL_TRY(sl_optim_step(r->optim));
    SL_TRY(call_hooks(r, SL_EV_AFTER_STEP));
    *loss_sum += c->loss_value * (double)x->shape[0];
    c->step++;
    return SL_OK;
}

static int finish_epoch(run *r, double loss_sum, int64_t seen, int64_t correct, double t0)
{
    sl_record *row = r->row;
    sl_record_clear(row);
    SL_TRY(sl_record_set(row, "epoch", (double)(r->ctx.epoch + 1)));
    SL_TRY(sl_record_set(row, "loss", seen ? loss_sum / (double)seen : NAN));
    if (r->args->train->y.dtype == SL_I64)
        SL_TRY(sl_record_set(row, "accuracy", seen ? (double)correct / (double)seen : NAN));
    if (r->args->val) {
        sl_record *val = sl_record_new();
        if (!val)
            return SL_ENOMEM;
        int rc = sl_evaluate(r->model, r->args->val, r->loss->name, r->eval_batch, val);
        for (int i = 0; rc >= 0 && i < sl_record_count(val); i++) {
            char name[64];
            snprintf(name, sizeof name, "val_%s", sl_record_name(val, i));
            rc = sl_record_set(row, name, sl_record_value(val, i));
        }
        sl_record_free(val);
        SL_TRY(rc);
        double val_loss;
        if (sl_record_get(row, "val_loss", &val_loss) == SL_OK && !isfinite(val_loss))
            return sl_error(SL_ENUMERIC, "train: validation loss is %g after epoch %lld (the "
                            "parameters diverged)", val_loss, (long long)r->ctx.epoch + 1);
    }
    SL_TRY(call_hooks(r, SL_EV_EPOCH_END));
    for (int i = 0; i < sl_record_count(r->ctx.metrics); i++)
        SL_TRY(sl_record_set(row, sl_record_name(r->ctx.metrics, i),
                             sl_record_value(r->ctx.metrics, i)));
    SL_TRY(sl_record_set(row, "seconds", now_seconds() - t0));
    if (r->args->history)
        SL_TRY(sl_history_append(r->args->history, row));
    if (r->args->on_epoch)
        SL_TRY(r->args->on_epoch(r->args->userdata, row));
    return SL_OK;
}

static int epoch(run *r)
{
    double t0 = now_seconds(), loss_sum = 0.0;
    int64_t seen = 0, correct = 0, done = 0, total = sl_batcher_nbatches(r->batcher);
    sl_record_clear(r->ctx.metrics);
    sl_model_set_training(r->model, true);
    sl_batcher_begin_epoch(r->batcher, r->ctx.epoch);
    const sl_tensor *x, *y;
    int more;
    while ((more = sl_batcher_next(r->batcher, &x, &y)) > 0) {
        SL_TRY(step(r, x, y, &loss_sum, &correct));
        seen += x->shape[0];
        done++;
        if (r->progress)
            draw_progress(r, done, total, loss_sum / (double)seen);
    }
    SL_TRY(more);
    return finish_epoch(r, loss_sum, seen, correct, t0);
}

static int setup(run *r, sl_options *opt)
{
    SL_TRY(sl_options_validate(opt, train_spec, "train"));
    r->epochs = sl_options_int(opt, "epochs");
    r->eval_batch = sl_options_int(opt, "eval_batch");
    int64_t batch = sl_options_int(opt, "batch");
    if (r->epochs < 0 || batch < 1 || r->eval_batch < 1)
        return sl_error(SL_EINVAL, "train: epochs must be >= 0 and batch, eval_batch >= 1");
    if (!r->args->train)
        return sl_error(SL_EINVAL, "train: no training set");
    if (r->args->val)
        SL_TRY(sl_check_finite_dataset(r->args->val, "train: the validation set"));
    SL_TRY(sl_check_finite_params(r->model, "train"));
    if (!(r->loss = sl_registry_find(SL_KIND_LOSS, sl_options_string(opt, "loss"))))
        return sl_error_context(SL_ENOTFOUND, "train: option 'loss'");
    const char *progress = sl_options_string(opt, "progress");
    r->progress = strcmp(progress, "always") == 0 ||
                  (strcmp(progress, "auto") == 0 && isatty(STDERR_FILENO));
    if (sl_options_int(opt, "seed") < 0) /* as sequential{seed = -1} is; it would wrap */
        return sl_error(SL_EINVAL, "train: option 'seed' must be >= 0, got %lld",
                        (long long)sl_options_int(opt, "seed"));
    uint64_t seed = (uint64_t)sl_options_int(opt, "seed");
    SL_TRY(sl_batcher_new(r->args->train, batch, sl_model_dtype(r->model),
                          sl_options_bool(opt, "shuffle"), seed, sl_options_bool(opt, "drop_last"),
                          &r->batcher));
    if (!(r->ctx.metrics = sl_record_new()) || !(r->row = sl_record_new()))
        return SL_ENOMEM;
    r->ctx.model = r->model;
    r->ctx.optim = r->optim;
    r->ctx.loss = r->loss;
    r->ctx.data = r->args->train;
    r->ctx.seed = seed;
    return SL_OK;
}

int sl_train(sl_model *model, sl_optim *optim, const sl_train_args *args,
             const sl_options *options)
{
    if (!model || !optim || !args)
        return sl_error(SL_EINVAL, "train: model, optimizer and arguments are required");
    if (sl_optim_model(optim) != model)
        return sl_error(SL_EINVAL, "train: the optimizer belongs to another model");
    run r = {.model = model, .optim = optim, .args = args};
    sl_options *opt = sl_options_copy(options);
    int rc = opt ? setup(&r, opt) : SL_ENOMEM;
    if (rc >= 0)
        rc = call_hooks(&r, SL_EV_TRAIN_BEGIN);
    for (r.ctx.epoch = 0; rc >= 0 && r.ctx.epoch < r.epochs; r.ctx.epoch++)
        rc = epoch(&r);
    if (rc >= 0) {
        r.ctx.x = r.ctx.y = NULL;
        rc = call_hooks(&r, SL_EV_TRAIN_END);
    }
    if (r.progress && rc < 0)
        fputs("\n", stderr);
    sl_batcher_free(r.batcher);
    sl_record_free(r.ctx.metrics);
    sl_record_free(r.row);
    sl_options_free(opt);
    return rc;
}
