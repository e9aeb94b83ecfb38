/* symlab/model.h — sequential models with PyTorch-style named parameters.
 *
 * A model is a list of modules applied in order, some of which may be
 * containers holding lists of their own (residual blocks, nested
 * sequentials).  Its parameters are named by path as PyTorch's
 * nn.Sequential names them ("0.weight", "2.bias", "3.running_mean",
 * "4.body.0.weight"), and live in one contiguous arena, so the
 * whole parameter vector (and the gradient vector, same layout) is one flat
 * 1-d tensor: what optimizers, syre, teleportation and interpolation use.
 *
 * Lifecycle: sl_model_new, sl_model_add (any number), sl_model_build (arena
 * and initialisation), then forward/backward/step.  Adding after build is an
 * SL_ESTATE error.
 */
#ifndef SYMLAB_MODEL_H
#define SYMLAB_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/module.h>
#include <symlab/options.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_model sl_model; /* opaque */

/* A new empty model computing in `dtype` (SL_F32 or SL_F64). */
SL_API int sl_model_new(sl_dtype dtype, sl_model **out);
SL_API void sl_model_free(sl_model *m);
SL_API sl_dtype sl_model_dtype(const sl_model *m);

/* Appends a module of the registered type `type_name` made from `opt` (may
 * be NULL for all defaults; validated against the type's spec).  Errors name
 * the module's position and type: "module 2 (linear): unknown option 'in'". */
SL_API int sl_model_add(sl_model *m, const char *type_name, const sl_options *opt);

/* Containers.  sl_model_begin appends a container module ("residual",
 * "sequential"; role SL_ROLE_CONTAINER) and makes it the place where
 * sl_model_add (and nested sl_model_begin) append, into its first branch
 * ("body" for residual, "" for sequential); sl_model_branch switches to the
 * container's branch of that name ("shortcut"); sl_model_end closes it.
 * Modules inside are named by their path, as PyTorch names submodules:
 * "3.body.0.weight", "2.1.bias" (a sequential inside a sequential).
 * Errors: SL_EINVAL for a non-container given to begin (or a container to
 * sl_model_add) and an unknown branch, SL_ESTATE for end or branch without
 * an open container and for a build with one still open. */
SL_API int sl_model_begin(sl_model *m, const char *type_name, const sl_options *opt);
SL_API int sl_model_branch(sl_model *m, const char *branch);
SL_API int sl_model_end(sl_model *m);

/* Allocates the parameter and gradient arenas and initialises parameters
 * from `seed` (each module from its own derived stream).  Build once. */
SL_API int sl_model_build(sl_model *m, uint64_t seed);
SL_API bool sl_model_is_built(const sl_model *m);
/* Re-initialises all parameters and buffers from `seed` (and the noise
 * streams, as sl_model_seed_noise(m, seed) does). */
SL_API int sl_model_reset_parameters(sl_model *m, uint64_t seed);
/* Re-seeds only the modules' noise streams (dropout masks and the like),
 * leaving parameters alone: replicas of one initialisation that differ in
 * their noise. */
SL_API void sl_model_seed_noise(sl_model *m, uint64_t seed);

/* A new built model with the same modules (types and options) and a copy of
 * m's parameters and buffers, in `dtype` (f32 or f64; values converted).
 * Replicas, interpolation endpoints and f64 re-evaluations start here. */
SL_API int sl_model_clone(sl_model *m, sl_dtype dtype, sl_model **out);

/* Copies parameters and buffers of src into dst, which must have the same
 * names and shapes (dtypes may differ). */
SL_API int sl_model_copy_state(sl_model *dst, sl_model *src);

/* The top-level modules (a container's children: structure.h, or
 * sl_module_path and sl_module_output on what the walker returns). */
SL_API int sl_model_nmodules(const sl_model *m);
SL_API sl_module *sl_model_module(sl_model *m, int index);
/* The module at `path` ("3", "3.body.0"; sl_module_path), at any depth, or
 * NULL.  Paths are the same in every model of one architecture (clones). */
SL_API sl_module *sl_model_find_module(sl_model *m, const char *path);
/* The options a module was created with (validated; getters give defaults). */
SL_API const sl_options *sl_module_options(const sl_module *mod);

/* Output of module `index` in the last forward (batch-first view owned by
 * the model, valid until the next forward); NULL before any forward.  For
 * probes that look at hidden activations. */
SL_API const sl_tensor *sl_model_activation(const sl_model *m, int index);

/* Training (true) or evaluation (false) mode for every module. */
SL_API void sl_model_set_training(sl_model *m, bool training);
SL_API bool sl_model_training(const sl_model *m);

/* Output shape for an input shape, without running anything. */
SL_API int sl_model_output_shape(sl_model *m, int ndim, const int64_t *in, int *out_ndim,
                                 int64_t *out);

/* Runs every module on x (dtype of the model; leading dimension the batch).
 * *y points at the model's own output buffer, valid until the next forward.
 * Activation buffers grow to the largest batch seen and are then reused:
 * no allocation in steady state.  The model keeps a reference to x until
 * the next forward so that backward can use it. */
SL_API int sl_model_forward(sl_model *m, const sl_tensor *x, const sl_tensor **y);

/* Backpropagates grad_y (shape of the last forward's output) through the
 * last forward, ADDING into the parameter gradients.  It stops at the first
 * module with parameters: no gradient reaches the input or the
 * parameterless modules in front (module.h). */
SL_API int sl_model_backward(sl_model *m, const sl_tensor *grad_y);

/* Sets every parameter gradient to zero. */
SL_API void sl_model_zero_grad(sl_model *m);

/* Named parameters (trainable) in order of declaration.  Tensors are views
 * into the arenas, valid for the model's lifetime. */
SL_API int sl_model_nparams(const sl_model *m);
SL_API const char *sl_model_param_name(const sl_model *m, int i);
SL_API sl_tensor *sl_model_param(sl_model *m, int i);
SL_API sl_tensor *sl_model_grad(sl_model *m, int i);
/* Index of the parameter called `name`, or -1. */
SL_API int sl_model_find_param(const sl_model *m, const char *name);

/* Named buffers (non-trainable state, e.g. running statistics), in the
 * model's dtype or SL_I64 (counters such as "1.num_batches_tracked"). */
SL_API int sl_model_nbuffers(const sl_model *m);
SL_API const char *sl_model_buffer_name(const sl_model *m, int i);
SL_API sl_tensor *sl_model_buffer(sl_model *m, int i);

/* All parameters (gradients) as one flat 1-d tensor over the arena, in the
 * order of sl_model_param; writing into it writes the parameters. */
SL_API sl_tensor *sl_model_flat_params(sl_model *m);
SL_API sl_tensor *sl_model_flat_grads(sl_model *m);
SL_API int64_t sl_model_numel(const sl_model *m);

/* Checkpoints: safetensors files holding every parameter and buffer under
 * its name, loadable by PyTorch's safetensors.  Saving writes a temporary
 * file beside `path` and renames it, so a crash never leaves half a file.
 * Loading requires the same names, shapes and a real dtype (converted to the
 * model's; integer buffers are I64 in the file, bit for bit); extra or
 * missing tensors are SL_EFORMAT errors naming them, except that an integer
 * buffer missing from the file keeps its value (files from before the
 * buffer existed, as PyTorch allows for num_batches_tracked). */
SL_API int sl_model_save(sl_model *m, const char *path);
SL_API int sl_model_load(sl_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
