/* symlab/train.h — the training loop, evaluation, and what hooks see.
 *
 * One step: zero gradients; STEP_BEGIN; forward; loss; backward;
 * AFTER_BACKWARD; optimizer step; AFTER_STEP.  Around the steps: TRAIN_BEGIN,
 * EPOCH_END after each epoch (after validation), TRAIN_END.  A non-finite
 * loss stops training with SL_ENUMERIC naming the epoch and step.  Nothing is
 * allocated inside a step once the first batch has been seen.
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
                                 row (last value wins), cleared at each epoch start */
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
 * "seconds", and whatever hooks put in ctx->metrics. */
typedef struct sl_history sl_history; /* opaque */
SL_API sl_history *sl_history_new(void);
SL_API void sl_history_free(sl_history *h);
SL_API int sl_history_count(const sl_history *h);
SL_API const sl_record *sl_history_row(const sl_history *h, int i);

typedef struct sl_train_args {
    const sl_dataset *train;  /* required */
    const sl_dataset *val;    /* may be NULL */
    sl_hook *const *hooks;    /* nhooks hooks, called in order; may be NULL */
    int nhooks;
    sl_history *history;      /* may be NULL */
    /* Called after each epoch's row is complete; a negative return stops
     * training and is returned by sl_train.  May be NULL. */
    int (*on_epoch)(void *userdata, const sl_record *row);
    void *userdata;
} sl_train_args;

/* The options sl_train accepts: epochs, batch, seed, loss, shuffle,
 * drop_last, progress ("auto": a bar when stderr is a terminal). */
SL_API const sl_option_spec *sl_train_options(void);

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
