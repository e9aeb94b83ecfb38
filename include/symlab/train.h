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
    int64_t step;             /* steps since TRAIN_BEGIN, 0-based */
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
 * history are appended. */
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
    int64_t step;             /* this step's number since TRAIN_BEGIN */
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
 * drop_last, eval_batch, record_steps. */
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
 * SL_ENUMERIC on a non-finite loss. */
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
