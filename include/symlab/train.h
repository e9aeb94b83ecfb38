/* symlab/train.h — the training loop, evaluation, and what hooks see.
 *
 * One step: zero gradients; (a per-step schedule sets the learning rate);
 * STEP_BEGIN; forward; loss; backward; AFTER_BACKWARD; optimizer step;
 * AFTER_STEP; the host's on_step callback.  Around the steps: TRAIN_BEGIN,
 * EPOCH_END after each epoch (after validation), the host's on_epoch,
 * early stopping's decision, TRAIN_END.  A non-finite loss stops training
 * with SL_ENUMERIC naming the epoch and step.  Nothing is allocated inside a
 * step once the first batch has been seen (a hook metric's name seen for the
 * first time, and step rows beyond what was reserved, excepted — see
 * record_steps).
 *
 * The library prints nothing: progress display is the host's, through
 * on_step (the symlab executable draws its bar that way).
 */
#ifndef SYMLAB_TRAIN_H
#define SYMLAB_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/data.h>
#include <symlab/export.h>
#include <symlab/model.h>
#include <symlab/optim.h>
#include <symlab/options.h>
#include <symlab/record.h>
#include <symlab/schedule.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_loss_type sl_loss_type; /* plugin.h */
typedef struct sl_hook sl_hook;           /* opaque hook instance */

/* Points in training at which hooks are called.  Append-only. */
typedef enum sl_event {
    SL_EV_TRAIN_BEGIN = 0,
    SL_EV_STEP_BEGIN = 1,     /* before forward; gradients are zero */
    SL_EV_AFTER_BACKWARD = 2, /* gradients of this batch are in place */
    SL_EV_AFTER_STEP = 3,     /* the optimizer has updated the parameters */
    SL_EV_EPOCH_END = 4,
    SL_EV_TRAIN_END = 5
} sl_event;

/* Everything a hook may read or change during training.  Owned by the host;
 * fields may be appended in a minor ABI version. */
typedef struct sl_train_ctx {
    sl_model *model;
    sl_optim *optim;
    const sl_loss_type *loss;
    const sl_dataset *data;   /* the training set */
    const sl_tensor *x;       /* current batch inputs; NULL outside a step */
    const sl_tensor *y;       /* current batch targets; NULL outside a step */
    int64_t epoch;            /* 0-based */
    int64_t step;             /* steps since epoch 0 (since TRAIN_BEGIN unless the call
                                 has start_epoch or resume), 0-based */
    double loss_value;        /* loss of the current batch (valid from AFTER_BACKWARD) */
    uint64_t seed;            /* the run's seed, for hooks that draw */
    sl_record *metrics;       /* numbers a hook reports; they enter this epoch's history
                                 row (last value wins), cleared at each epoch start;
                                 those set during a step also enter its step row */
} sl_train_ctx;

/* Hook instances.  sl_hook_new validates `opt` against the type's spec. */
SL_API int sl_hook_new(const char *type_name, const sl_options *opt, sl_hook **out);
SL_API void sl_hook_free(sl_hook *h);
SL_API const char *sl_hook_name(const sl_hook *h);
/* For hook types: private state set in create(), freed by destroy(). */
SL_API void *sl_hook_state(const sl_hook *h);
SL_API void sl_hook_set_state(sl_hook *h, void *state);

/* One row per epoch: "epoch", "loss" (mean training loss), "accuracy" where
 * targets are labels, "val_loss" and "val_accuracy" with a validation set,
 * "seconds", and whatever hooks put in ctx->metrics.  With the option
 * record_steps = N > 0, also one step row for every N-th step (see
 * sl_step_info for its entries).  Rows from several sl_train calls on one
 * history are appended; a resume appends the rows (and step rows) its
 * checkpoint kept first. */
typedef struct sl_history sl_history; /* opaque */
SL_API sl_history *sl_history_new(void);
SL_API void sl_history_free(sl_history *h);
SL_API int sl_history_count(const sl_history *h);
SL_API const sl_record *sl_history_row(const sl_history *h, int i);
/* Step rows: their number, and row i (0 <= i < count) copied into `out`
 * (cleared first; entries that were NaN — a hook metric not set during that
 * step — are left out).  SL_EINVAL for i out of range. */
SL_API int64_t sl_history_step_count(const sl_history *h);
SL_API int sl_history_step_row(const sl_history *h, int64_t i, sl_record *out);
/* Early stopping's outcome in the last sl_train with `early_stop`: the
 * 1-based epoch whose metric was best (0: none finite), and the epoch after
 * which training stopped early (0: it ran all its epochs). */
SL_API int64_t sl_history_best_epoch(const sl_history *h);
SL_API int64_t sl_history_stopped_epoch(const sl_history *h);

/* What the host's on_step callback receives after each step.  Counts are
 * 1-based, as in history rows. */
typedef struct sl_step_info {
    int64_t step;             /* this step's number since epoch 0 (see start_epoch) */
    int64_t epoch;            /* this epoch's number */
    int64_t epochs;           /* epochs the run will do (fewer if it stops early) */
    int64_t batch;            /* this batch's number within the epoch */
    int64_t batches;          /* batches per epoch */
    int64_t samples;          /* samples in this batch */
    double loss;              /* this batch's loss, before the update */
    double epoch_loss;        /* sample-weighted mean loss of the epoch so far */
    double lr;                /* the learning rate this step's update used */
    /* The step row: "step", "epoch", "loss", "lr", then every name in
     * ctx->metrics, NaN where a hook did not set it during this step.
     * Owned by the loop, valid during the call. */
    const sl_record *row;
} sl_step_info;

typedef struct sl_train_args {
    const sl_dataset *train;  /* required */
    const sl_dataset *val;    /* may be NULL */
    sl_hook *const *hooks;    /* nhooks hooks, called in order; may be NULL */
    int nhooks;
    sl_history *history;      /* may be NULL */
    /* Called after each epoch's row is complete; a negative return stops
     * training and is returned by sl_train.  May be NULL. */
    int (*on_epoch)(void *userdata, const sl_record *row);
    void *userdata;           /* passed to on_epoch and on_step */
    /* Fields below were appended in ABI 1.1; zero them (designated
     * initialisers do) to leave them unused. */
    /* Called after each step (after the AFTER_STEP hooks); a negative return
     * stops training and is returned by sl_train.  May be NULL.  Nothing it
     * receives is allocated per step. */
    int (*on_step)(void *userdata, const sl_step_info *info);
    /* Sets the optimizer's learning rate before every step or epoch (its
     * interval) and advances after it; its count carries over to the next
     * sl_train.  Borrowed; may be NULL. */
    sl_schedule *schedule;
    /* Early stopping, validated against sl_early_stop_options(); NULL: off. */
    const sl_options *early_stop;
} sl_train_args;

/* The options sl_train accepts: epochs, batch, seed, loss, shuffle,
 * drop_last, eval_batch, record_steps, start_epoch, checkpoint,
 * checkpoint_every_steps, checkpoint_every_epochs, resume, max_steps.
 *
 * max_steps = N > 0 ends the call after N of its steps, mid-epoch if need
 * be (training a fixed number of steps, as a probe's replicas are): that
 * epoch's row covers the batches done, EPOCH_END and TRAIN_END are called
 * as usual.  Not combined with checkpoint or resume (SL_EINVAL).
 *
 * Continuing a run.  A call trains epochs start_epoch .. start_epoch +
 * epochs - 1 (0-based; start_epoch defaults to 0): epoch e is shuffled
 * from (seed, e), the history rows and step counts go on from there
 * (ctx->step and step rows count from epoch 0, start_epoch x batches per
 * epoch being the first step of the call).  The model, optimizer and
 * schedule carry their own state from call to call, so
 *     sl_train(epochs = 2); sl_train(epochs = 2, start_epoch = 2)
 * on the same model, optimizer and schedule is bit-identical to
 *     sl_train(epochs = 4).
 * Nothing is automatic: a second call without start_epoch restarts the
 * epoch orders at (seed, 0).
 *
 * Training checkpoints.  With checkpoint = PATH, the loop writes PATH
 * atomically (temp file, fsync, rename: a crash leaves the previous
 * checkpoint whole) after every checkpoint_every_steps-th step (counted
 * from epoch 0) and after every checkpoint_every_epochs-th epoch (counted
 * from epoch 0; with a path and neither interval given, every epoch).  The
 * file holds everything the next steps read: the model's parameters and
 * buffers, the optimizer's state tensors (plugin.h: state_tensor), its
 * step count and learning rate, the schedule's (base rate, count), every
 * module's noise stream, the epoch and the number of its batches done,
 * that epoch's running loss sum, sample count and hits, the history rows
 * and step rows of the call so far, early stopping's verdicts (best value and epoch,
 * epochs without improvement, the epoch it stopped after) and, with
 * restore_best, its best parameters and buffers, and the run's batch,
 * seed, shuffle, drop_last, dataset size and start_epoch
 * (docs/design-notes.md lists the names).
 * Writing one allocates and does file I/O: it is the one exception to
 * "nothing allocated in a step".
 *
 * resume = PATH continues the same call: run it again with the same
 * model architecture, optimizer type and options, schedule, dataset and
 * options plus resume, and it picks up after the last checkpointed step,
 * passing over the batches of the epoch already done, so that kill -9 and
 * resume end bit-identical to an uninterrupted run (the history too,
 * except "seconds").  A checkpoint at the end of the run resumes to no
 * further step.  Before changing anything a resume checks the file and
 * refuses, with one line naming the file and the mismatch: a damaged or
 * truncated file, a model checkpoint (not a training one), another
 * optimizer type, schedule kind or early_stop use (none, on,
 * restore_best), another batch/seed/shuffle/drop_last/
 * dataset size/start_epoch, a tensor of another name or shape (another
 * model, or optimizer options that keep other state), and a position
 * outside this call's epochs.  A refused resume changes nothing.
 *
 * Not in a checkpoint: hooks' private state and the metrics they set
 * earlier in an interrupted epoch, and the host's callbacks' own state.  A
 * resumed run that early stopping had ended trains no further.  An
 * optimizer type without state_tensor cannot be
 * checkpointed: SL_ESTATE naming it and its plugin, before the first
 * step. */
SL_API const sl_option_spec *sl_train_options(void);

/* Early stopping's options: after each epoch, the history row's `metric`
 * ("val_loss") counts as improved when it beats the best so far by more
 * than `min_delta` in direction `mode` ("min", "max", or "auto": max for
 * names containing "acc", else min); training stops once `patience` epochs
 * in a row have not improved.  With `restore_best`, the parameters and
 * buffers of the best epoch are put back when training ends (stopped early
 * or not; the optimizer's state is not).  A metric missing from the row is
 * an SL_EINVAL naming it. */
SL_API const sl_option_spec *sl_early_stop_options(void);

/* Trains `model` with `optim` on args->train.  Returns SL_OK, the first
 * failing status of a module, hook or callback (with context), or
 * SL_ENUMERIC on a non-finite loss; with checkpoint or resume also
 * SL_EIO/SL_EFORMAT/SL_EINVAL/SL_ESTATE from the checkpoint (above). */
SL_API int sl_train(sl_model *model, sl_optim *optim, const sl_train_args *args,
                    const sl_options *opt);

/* Evaluation mode over all of `data` in batches of `batch`: puts "loss" and,
 * for label targets, "accuracy" into `out`.  Restores the model's mode. */
SL_API int sl_evaluate(sl_model *model, const sl_dataset *data, const char *loss_name,
                       int64_t batch, sl_record *out);

/* Loss (mean over the batch) of the model on (x, y); with want_grad, also
 * zeroes the gradients and backpropagates, leaving d loss / d params in the
 * gradient arena.  For hooks that evaluate at other parameters. */
SL_API int sl_model_loss(sl_model *model, const sl_loss_type *loss, const sl_tensor *x,
                         const sl_tensor *y, bool want_grad, double *value);

#ifdef __cplusplus
}
#endif
#endif
