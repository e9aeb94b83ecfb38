/* symlab/optim.h — optimizers over a model's flat parameter vector.
 *
 * An optimizer instance (sl_optim) belongs to one built model.  Its type (an
 * sl_optim_type, registered like any technique: built-ins "sgd", "adam",
 * "adamw", "adagrad", "rmsprop") updates the flat parameter tensor from the
 * flat gradient tensor, both 1-d of sl_model_numel() elements.
 */
#ifndef SYMLAB_OPTIM_H
#define SYMLAB_OPTIM_H

#include <stdint.h>

#include <symlab/export.h>
#include <symlab/model.h>
#include <symlab/options.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_optim sl_optim; /* opaque */

/* A new optimizer of registered type `type_name` for the built model `model`
 * (which must outlive it).  `opt` may be NULL; every type has an "lr". */
SL_API int sl_optim_new(const char *type_name, sl_model *model, const sl_options *opt,
                        sl_optim **out);
SL_API void sl_optim_free(sl_optim *o);

/* One update from the current gradients (which it does not zero). */
SL_API int sl_optim_step(sl_optim *o);
/* Forgets all state (momentum, moments, step count), as after a teleport. */
SL_API void sl_optim_reset(sl_optim *o);

SL_API double sl_optim_lr(const sl_optim *o);
SL_API void sl_optim_set_lr(sl_optim *o, double lr);
/* Steps taken since creation or the last reset. */
SL_API int64_t sl_optim_steps(const sl_optim *o);
SL_API sl_model *sl_optim_model(const sl_optim *o);
SL_API const char *sl_optim_name(const sl_optim *o);

/* Training checkpoints (train.h): the i-th tensor of the optimizer's state
 * through its type's state_tensor (plugin.h) — returns 1 and sets *name
 * (static) and *view (a writable view owned by the optimizer), or 0 past
 * the last.  SL_ESTATE, naming the type and its plugin, if the type cannot
 * expose its state. */
SL_API int sl_optim_state_tensor(sl_optim *o, int i, const char **name, sl_tensor *view);
/* Sets the step count (bias corrections, the first-step rule) as a resume
 * restores it; SL_EINVAL if negative. */
SL_API int sl_optim_set_steps(sl_optim *o, int64_t steps);

/* For optimizer types: private state, and the number of elements of the
 * parameter vector (to size per-element state in create()). */
SL_API void *sl_optim_state(const sl_optim *o);
SL_API void sl_optim_set_state(sl_optim *o, void *state);
SL_API int64_t sl_optim_numel(const sl_optim *o);

#ifdef __cplusplus
}
#endif
#endif
