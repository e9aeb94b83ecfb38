/* core/train.c — the training loop.  It prints nothing: the host sees each
 * step through args->on_step (and draws its progress bar there). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const sl_option_spec train_spec[] = {
    {"epochs", SL_OPT_INT, "1", "passes over the training set", NULL},
    {"batch", SL_OPT_INT, "64", "samples per step", NULL},
    {"seed", SL_OPT_INT, "1", "seed of the shuffling order (and of hooks that draw)", NULL},
    {"loss", SL_OPT_STRING, "cross_entropy", "registered loss type", NULL},
    {"shuffle", SL_OPT_BOOL, "true", "visit samples in a new seeded order each epoch", NULL},
    {"drop_last", SL_OPT_BOOL, "false", "skip a final batch smaller than `batch`", NULL},
    {"eval_batch", SL_OPT_INT, "1000", "batch size for validation", NULL},
    {"record_steps", SL_OPT_INT, "0",
     "keep a step row in the history for every N-th step (0: none)", NULL},
    {"start_epoch", SL_OPT_INT, "0",
     "number of the first epoch (0-based): continues an earlier call's orders and counts",
     NULL},
    {"checkpoint", SL_OPT_STRING, "", "training checkpoint file to write (empty: none)", NULL},
    {"checkpoint_every_steps", SL_OPT_INT, "0", "write the checkpoint every N steps", NULL},
    {"checkpoint_every_epochs", SL_OPT_INT, "0",
     "write the checkpoint every N epochs (with a path and neither interval: 1)", NULL},
    {"resume", SL_OPT_STRING, "", "training checkpoint to continue from (empty: none)", NULL},
    {"max_steps", SL_OPT_INT, "0",
     "end the call after this many of its steps, mid-epoch if need be (0: no limit)", NULL},
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
    sl_record *row;      /* the epoch's history row */
    sl_record *step_row; /* the step's row, when someone wants it */
    sl_early_stop *early_stop;
    int64_t epochs, eval_batch, record_every, nbatches;
    bool stop;           /* early stopping ended the run */
    int64_t max_steps;   /* steps this call may take (0: no limit) */
    int64_t steps_done;  /* steps this call has taken */
    double loss_sum;     /* this epoch so far: sum of batch loss * batch size, */
    int64_t seen;        /* samples, */
    int64_t correct;     /* and hits */
    int64_t start_epoch; /* the first epoch of this call */
    int64_t skip;        /* batches of the first epoch already done (resume) */
    const char *ckpt_path; /* NULL: no checkpoints */
    int64_t ckpt_steps, ckpt_epochs;
    sl_train_ckpt ckpt;
} run;

static int call_hooks(run *r, sl_event ev)
{
    for (int i = 0; i < r->args->nhooks; i++)
        SL_TRY(sl_hook_call(r->args->hooks[i], ev, &r->ctx));
    return SL_OK;
}

/* The learning rate of a schedule for the coming interval. */
static void apply_schedule(run *r)
{
    sl_schedule *sch = r->args->schedule;
    sl_optim_set_lr(r->optim, sl_schedule_lr(sch, sl_optim_lr(r->optim)));
}

/* After a step: its row (for on_step and the history), then on_step. */
static int report_step(run *r, int64_t batch, int64_t samples, double lr)
{
    const sl_train_ctx *c = &r->ctx;
    int64_t number = c->step + 1;
    bool record = r->record_every > 0 && r->args->history && number % r->record_every == 0;
    if (!record && !r->args->on_step)
        return SL_OK;
    sl_record *row = r->step_row;
    sl_record_clear(row);
    SL_TRY(sl_record_set(row, "step", (double)number));
    SL_TRY(sl_record_set(row, "epoch", (double)(c->epoch + 1)));
    SL_TRY(sl_record_set(row, "loss", c->loss_value));
    SL_TRY(sl_record_set(row, "lr", lr));
    for (int i = 0; i < sl_record_count(c->metrics); i++)
        SL_TRY(sl_record_set(row, sl_record_name(c->metrics, i),
                             sl_record_set_this_round(c->metrics, i)
                                 ? sl_record_value(c->metrics, i)
                                 : NAN));
    if (record)
        SL_TRY(sl_history_append_step(r->args->history, row));
    if (!r->args->on_step)
        return SL_OK;
    sl_step_info info = {.step = number,
                         .epoch = c->epoch + 1,
                         .epochs = r->epochs,
                         .batch = batch + 1,
                         .batches = r->nbatches,
                         .samples = samples,
                         .loss = c->loss_value,
                         .epoch_loss = r->loss_sum / (double)r->seen,
                         .lr = lr,
                         .row = row};
    return r->args->on_step(r->args->userdata, &info);
}

/* Writes the training checkpoint: the run stands after `batch` batches of
 * epoch `epoch`. */
static int save_checkpoint(run *r, int64_t epoch, int64_t batch)
{
    sl_train_pos pos = {.epoch = epoch,
                        .batch = batch,
                        .step = r->ctx.step,
                        .loss_sum = batch ? r->loss_sum : 0.0,
                        .seen = batch ? r->seen : 0,
                        .correct = batch ? r->correct : 0};
    return sl_train_checkpoint_save(r->ckpt_path, &r->ckpt, &pos);
}

/* Optimisation step number `batch` of the epoch on (x, y); adds the
 * batch's loss and hits. */
static int step(run *r, int64_t batch, const sl_tensor *x, const sl_tensor *y)
{
    sl_train_ctx *c = &r->ctx;
    c->x = x;
    c->y = y;
    sl_model_zero_grad(r->model);
    sl_record_next_round(c->metrics);
    if (r->args->schedule && sl_schedule_per_step(r->args->schedule))
        apply_schedule(r);
    SL_TRY(call_hooks(r, SL_EV_STEP_BEGIN));
    const sl_tensor *pred;
    SL_TRY(sl_loss_backward(r->model, r->loss, x, y, true, &c->loss_value, &pred));
    if (!isfinite(c->loss_value))
        return sl_error(SL_ENUMERIC,
                        "training stopped: loss is %g at epoch %lld, step %lld (try a smaller "
                        "learning rate, or check the data)",
                        c->loss_value, (long long)c->epoch + 1, (long long)c->step + 1);
    /* Count hits now: hooks may run other forwards through the model. */
    r->correct += sl_count_correct(pred, y);
    SL_TRY(call_hooks(r, SL_EV_AFTER_BACKWARD));
    double lr = sl_optim_lr(r->optim);
    SL_TRY(sl_optim_step(r->optim));
    SL_TRY(call_hooks(r, SL_EV_AFTER_STEP));
    if (r->args->schedule && sl_schedule_per_step(r->args->schedule))
        sl_schedule_advance(r->args->schedule);
    r->loss_sum += c->loss_value * (double)x->shape[0];
    r->seen += x->shape[0];
    SL_TRY(report_step(r, batch, x->shape[0], lr));
    c->step++;
    r->steps_done++;
    if (r->ckpt_steps > 0 && c->step % r->ckpt_steps == 0)
        SL_TRY(save_checkpoint(r, c->epoch, batch + 1));
    return SL_OK;
}

static int finish_epoch(run *r, double t0)
{
    sl_record *row = r->row;
    int64_t seen = r->seen;
    sl_record_clear(row);
    SL_TRY(sl_record_set(row, "epoch", (double)(r->ctx.epoch + 1)));
    SL_TRY(sl_record_set(row, "loss", seen ? r->loss_sum / (double)seen : NAN));
    if (r->args->train->y.dtype == SL_I64)
        SL_TRY(sl_record_set(row, "accuracy", seen ? (double)r->correct / (double)seen : NAN));
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
    if (r->early_stop)
        SL_TRY(sl_early_stop_judge(r->early_stop, r->ctx.epoch, row, &r->stop));
    return SL_OK;
}

static bool capped(const run *r) { return r->max_steps > 0 && r->steps_done >= r->max_steps; }

static int epoch(run *r)
{
    double t0 = now_seconds();
    int64_t batch = 0;
    if (r->skip == 0) { /* else a resume restored this epoch's sums */
        r->loss_sum = 0.0;
        r->seen = r->correct = 0;
    }
    sl_record_clear(r->ctx.metrics);
    sl_model_set_training(r->model, true);
    sl_schedule *sch = r->args->schedule;
    if (sch && !sl_schedule_per_step(sch))
        apply_schedule(r);
    sl_batcher_begin_epoch(r->batcher, r->ctx.epoch);
    const sl_tensor *x, *y;
    int more = 1;
    /* A resume mid-epoch passes over the batches already done: the same
     * order, so the same batches follow. */
    for (; batch < r->skip && (more = sl_batcher_next(r->batcher, &x, &y)) > 0; batch++)
        ;
    r->skip = 0;
    while (more > 0 && !capped(r) && (more = sl_batcher_next(r->batcher, &x, &y)) > 0)
        SL_TRY(step(r, batch++, x, y));
    SL_TRY(more);
    SL_TRY(finish_epoch(r, t0));
    if (sch && !sl_schedule_per_step(sch))
        sl_schedule_advance(sch);
    return SL_OK;
}

/* start_epoch, checkpoint, checkpoint_every_*, resume. */
static int setup_checkpoints(run *r, sl_options *opt, int64_t batch, uint64_t seed)
{
    r->start_epoch = sl_options_int(opt, "start_epoch");
    r->ckpt_steps = sl_options_int(opt, "checkpoint_every_steps");
    r->ckpt_epochs = sl_options_int(opt, "checkpoint_every_epochs");
    const char *path = sl_options_string(opt, "checkpoint");
    bool resume = *sl_options_string(opt, "resume") != '\0';
    if (r->start_epoch < 0 || r->ckpt_steps < 0 || r->ckpt_epochs < 0)
        return sl_error(SL_EINVAL, "train: start_epoch, checkpoint_every_steps and "
                        "checkpoint_every_epochs must be >= 0");
    if (r->start_epoch > INT64_MAX / 2 / (r->nbatches + 1) ||
        r->epochs > INT64_MAX / 2 - r->start_epoch)
        return sl_error(SL_EINVAL, "train: option 'start_epoch' is out of range");
    if (*path) {
        r->ckpt_path = path;
        if (r->ckpt_steps == 0 && r->ckpt_epochs == 0)
            r->ckpt_epochs = 1;
    } else if (r->ckpt_steps || r->ckpt_epochs) {
        return sl_error(SL_EINVAL, "train: checkpoint_every_steps/_epochs need a 'checkpoint' "
                        "path");
    }
    r->ckpt = (sl_train_ckpt){.model = r->model,
                              .optim = r->optim,
                              .schedule = r->args->schedule,
                              .history = r->args->history,
                              .history_from = sl_history_count(r->args->history),
                              .steps_from = sl_history_step_count(r->args->history),
                              .early_stop = r->early_stop,
                              .id = {.batch = batch,
                                     .samples = sl_dataset_size(r->args->train),
                                     .start_epoch = r->start_epoch,
                                     .seed = seed,
                                     .shuffle = sl_options_bool(opt, "shuffle"),
                                     .drop_last = sl_options_bool(opt, "drop_last")},
                              .end_epoch = r->start_epoch + r->epochs,
                              .nbatches = r->nbatches};
    /* An optimizer that cannot expose its state is refused now, not after
     * the first interval's training. */
    const char *name;
    sl_tensor view;
    if (*path || resume)
        SL_TRY(sl_optim_state_tensor(r->optim, 0, &name, &view));
    r->ctx.epoch = r->start_epoch;
    r->ctx.step = r->start_epoch * r->nbatches;
    if (!resume)
        return SL_OK;
    sl_train_pos pos;
    const char *from = sl_options_string(opt, "resume");
    SL_TRY(sl_train_checkpoint_load(from, &r->ckpt, &pos));
    /* A run that early stopping had ended stays ended. */
    if (r->early_stop) {
        sl_early_stop_state es;
        sl_early_stop_get(r->early_stop, &es);
        r->stop = es.stopped_epoch > 0;
    }
    r->ctx.epoch = pos.epoch;
    r->ctx.step = pos.step;
    r->skip = pos.batch;
    r->loss_sum = pos.loss_sum;
    r->seen = pos.seen;
    r->correct = pos.correct;
    return SL_OK;
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
    if ((r->record_every = sl_options_int(opt, "record_steps")) < 0)
        return sl_error(SL_EINVAL, "train: record_steps must be >= 0, got %lld",
                        (long long)r->record_every);
    if (sl_options_int(opt, "seed") < 0) /* as sequential{seed = -1} is; it would wrap */
        return sl_error(SL_EINVAL, "train: option 'seed' must be >= 0, got %lld",
                        (long long)sl_options_int(opt, "seed"));
    uint64_t seed = (uint64_t)sl_options_int(opt, "seed");
    r->max_steps = sl_options_int(opt, "max_steps");
    if (r->max_steps < 0)
        return sl_error(SL_EINVAL, "train: max_steps must be >= 0, got %lld",
                        (long long)r->max_steps);
    /* A checkpoint taken after a capped, partial epoch would claim the epoch
     * done; nothing needs the pair yet, so it is refused, not half-done. */
    if (r->max_steps > 0 && (*sl_options_string(opt, "checkpoint") ||
                             *sl_options_string(opt, "resume")))
        return sl_error(SL_EINVAL, "train: max_steps cannot be combined with checkpoint or "
                        "resume");
    SL_TRY(sl_batcher_new(r->args->train, batch, sl_model_dtype(r->model),
                          sl_options_bool(opt, "shuffle"), seed, sl_options_bool(opt, "drop_last"),
                          &r->batcher));
    r->nbatches = sl_batcher_nbatches(r->batcher);
    if (!(r->ctx.metrics = sl_record_new()) || !(r->row = sl_record_new()) ||
        !(r->step_row = sl_record_new()))
        return SL_ENOMEM;
    if (r->record_every > 0 && r->args->history)
        SL_TRY(sl_history_reserve_steps(r->args->history,
                                        r->epochs * r->nbatches / r->record_every));
    if (r->args->early_stop)
        SL_TRY(sl_early_stop_new(r->args->early_stop, r->model, &r->early_stop));
    SL_TRY(setup_checkpoints(r, opt, batch, seed));
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
    for (; rc >= 0 && !r.stop && !capped(&r) && r.ctx.epoch < r.start_epoch + r.epochs;
         r.ctx.epoch++) {
        rc = epoch(&r);
        if (rc >= 0 && r.ckpt_epochs > 0 && (r.ctx.epoch + 1) % r.ckpt_epochs == 0)
            rc = save_checkpoint(&r, r.ctx.epoch + 1, 0);
    }
    r.ctx.x = r.ctx.y = NULL;
    if (rc >= 0 && r.early_stop)
        rc = sl_early_stop_finish(r.early_stop, args->history);
    if (rc >= 0)
        rc = call_hooks(&r, SL_EV_TRAIN_END);
    sl_early_stop_free(r.early_stop);
    sl_batcher_free(r.batcher);
    sl_record_free(r.ctx.metrics);
    sl_record_free(r.row);
    sl_record_free(r.step_row);
    sl_options_free(opt);
    return rc;
}
