/* symlab/module.h — a module (layer) instance, as its type's callbacks see it.
 *
 * The host owns every sl_module: it allocates it, calls the type's create()
 * (which declares named parameters and buffers and sets private state), then
 * — when the model is built — places all parameters of the model in one flat
 * arena and calls reset_parameters().  Parameter and buffer tensors are
 * therefore valid only from reset_parameters() on; create() must not touch
 * them.  Parameter gradients live in a second arena of the same layout.
 *
 * Conventions every module type follows (THNN's, written down):
 *   - forward(m, in, out): `out` is allocated by the host with the shape
 *     output_shape() gave; the module overwrites it.
 *   - backward(m, in, out, grad_out, grad_in): called after forward() on the
 *     same `in` with `out` unchanged; ADDS (+=) parameter gradients into
 *     sl_module_grad() and OVERWRITES grad_in.  grad_in is NULL when nobody
 *     needs it (the first module with parameters: nothing below it learns):
 *     skip that work.  Modules below that one are not called at all.
 *   - the leading dimension of `in` is the batch; a module handles any batch
 *     size up to the largest it was shaped for, without allocating once its
 *     scratch has grown to that size.
 */
#ifndef SYMLAB_MODULE_H
#define SYMLAB_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/rng.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_module sl_module;           /* opaque, host-owned */
typedef struct sl_module_type sl_module_type; /* plugin.h */

/* dtype the module computes in (f32 or f64), fixed at creation. */
SL_API sl_dtype sl_module_dtype(const sl_module *m);
SL_API const sl_module_type *sl_module_type_of(const sl_module *m);
/* True in training mode (dropout active, batch statistics), false in eval. */
SL_API bool sl_module_training(const sl_module *m);

/* The type's private state: set in create(), freed by the type's destroy(). */
SL_API void *sl_module_state(const sl_module *m);
SL_API void sl_module_set_state(sl_module *m, void *state);

/* Declare, in create() only, a trainable parameter or a non-trainable buffer
 * (running statistics) of the given shape and the module's dtype.  `name` is
 * local ("weight", "running_mean"); the model prefixes the module's index.
 * Returns the index (0, 1, ... in declaration order) or a negative status. */
SL_API int sl_module_add_param(sl_module *m, const char *name, int ndim, const int64_t *shape);
SL_API int sl_module_add_buffer(sl_module *m, const char *name, int ndim, const int64_t *shape);
/* A buffer of an explicit dtype: the module's own, or SL_I64 for counters
 * (PyTorch's batch-norm "num_batches_tracked", a 0-d int64).  Integer
 * buffers are not touched by dtype conversion: a model cloned to f64 keeps
 * them int64, and checkpoints store them as "I64".  Since ABI 1.1. */
SL_API int sl_module_add_buffer_typed(sl_module *m, const char *name, sl_dtype dtype, int ndim,
                                      const int64_t *shape);

/* The declared tensors, by index; valid from reset_parameters() on.  The
 * pointers stay valid for the module's lifetime. */
SL_API sl_tensor *sl_module_param(sl_module *m, int index);
SL_API sl_tensor *sl_module_grad(sl_module *m, int index);
SL_API sl_tensor *sl_module_buffer(sl_module *m, int index);

/* A grow-only workspace owned by the module (SL_ALIGNMENT-aligned, contents
 * kept between calls, so forward can leave data for backward).  Allocates
 * only when `nbytes` exceeds what it already has.  slot 0..3 are independent
 * workspaces (e.g. 0: im2col columns, 1: saved mask). */
#define SL_MODULE_SCRATCH_SLOTS 4
SL_API int sl_module_scratch(sl_module *m, int slot, size_t nbytes, void **ptr);

/* This module's random stream, derived from the model's seed and the
 * module's position, so one module's draws never shift another's. */
SL_API sl_rng *sl_module_rng(sl_module *m);

#ifdef __cplusplus
}
#endif
#endif
