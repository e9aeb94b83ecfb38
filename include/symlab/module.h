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

/* ---- Structural roles ----------------------------------------------------
 *
 * Every module type declares what it is to the symmetry machinery (the
 * structure walker in structure.h, and through it syre, teleportation, the
 * conserved quantities, the symmetry probes and weight matching).  Nothing
 * in symlab decides structure from a type's name: a third-party layer that
 * declares itself a weight layer is handled exactly as `linear` is.
 *
 * Units.  A weight layer's output has its units (features, channels) on
 * axis 1 of the activation (batch first), unit-major: unit j's entries
 * (one, or a channel's H*W map) are contiguous in the flattened sample.
 */
typedef enum sl_role_kind {
    /* Undeclared or opaque: the walker knows nothing of it, so no hidden
     * layer spans it (it ends one).  The default for plugins built before
     * roles existed (ABI minor 0). */
    SL_ROLE_OPAQUE = 0,
    /* Mixes units through a weight: output unit j = f(row j of the weight,
     * input).  Declares which parameter is the weight (and the bias), the
     * weight's output-unit axis and its input-feature axis. */
    SL_ROLE_WEIGHT = 1,
    /* Acts on each unit (feature or channel) separately, the same way for
     * every unit up to the unit's own entries in `unit_tensors`: so any
     * permutation of the units commutes with it.  SL_UNIT_* flags say what
     * more commutes with it. */
    SL_ROLE_PER_UNIT = 2,
    /* Rearranges a sample without mixing units and keeps them unit-major
     * (flatten of (B, C, H, W) into (B, C*H*W)). */
    SL_ROLE_RESHAPE = 3,
    /* Holds other modules (sequential, residual). */
    SL_ROLE_CONTAINER = 4
} sl_role_kind; /* append-only */

/* Properties of a per-unit map f (bit flags; a map may have several). */
enum {
    /* f(a x) = a f(x) for a > 0 (relu, leaky relu, max/avg pooling): the
     * unit can be rescaled, incoming weights by a and outgoing by 1/a. */
    SL_UNIT_HOMOGENEOUS = 1u << 0,
    /* f(-x) = -f(x) (tanh, identity): the unit's sign can be flipped. */
    SL_UNIT_ODD = 1u << 1,
    /* f is one linear map applied identically to every unit (identity,
     * average pooling, bilinear upsampling): it commutes with any invertible
     * mixing of the units, GL(k). */
    SL_UNIT_LINEAR = 1u << 2,
    /* f is random in training mode (dropout): the symmetries above hold
     * for each draw, permutation holds in distribution. */
    SL_UNIT_STOCHASTIC = 1u << 3,
    /* f normalises each unit by statistics of that unit (batch norm):
     * f(a x) = f(x) for a > 0, so the incoming weights' scale is free. */
    SL_UNIT_NORMALISING = 1u << 4,
    /* f's statistics couple the units (layer norm): permutations still
     * commute with it, per-unit rescaling and sign flips do not. */
    SL_UNIT_COUPLED = 1u << 5,
    /* f changes a unit's spatial extent (pooling, upsampling, padding): the
     * unit's activation is read before it (probes measure dead units and
     * representations on the last map that keeps the layer's shape). */
    SL_UNIT_RESAMPLES = 1u << 6
};

/* What a module type is, for the structure walker.  A zero-initialised
 * role is SL_ROLE_OPAQUE. */
typedef struct sl_module_role {
    sl_role_kind kind;
    unsigned flags;              /* SL_UNIT_* (per-unit maps only) */
    /* SL_ROLE_WEIGHT: the local name of the weight parameter ("weight")
     * and of the bias, if the module has one ("bias"; NULL or a name the
     * module did not declare: no bias).  The weight's `unit_axis` indexes
     * output units (its length is the unit count) and `input_axis` the
     * input features, which are unit-major: when the input has k units,
     * unit j's features are entries [j*s, (j+1)*s) of that axis, s =
     * shape[input_axis] / k.  linear (out, in): 0, 1; conv2d (out, in, kh,
     * kw): 0, 1.  The bias, if any, is 1-d over the output units. */
    const char *weight, *bias;
    int unit_axis, input_axis;
    /* SL_ROLE_PER_UNIT: local names of the parameters and buffers whose
     * axis 0 indexes the units (batch norm's weight, bias, running_mean,
     * running_var), NULL-terminated; NULL if the map has none.  They move
     * with their unit under a permutation. */
    const char *const *unit_tensors;
} sl_module_role;

/* The declared role of a type, or of m's type (a zero, opaque role for a
 * type from a plugin built before roles existed). */
SL_API const sl_module_role *sl_module_type_role(const sl_module_type *type);
SL_API const sl_module_role *sl_module_role_of(const sl_module *m);
/* One line for `symlab describe`: "weight (weight 'weight': units on axis
 * 0, ...)", "per-unit (homogeneous)", "reshape"; snprintf's return. */
SL_API int sl_role_text(const sl_module_role *role, char *buf, size_t size);
/* "opaque", "weight", "per-unit", "reshape", "container". */
SL_API const char *sl_role_kind_name(sl_role_kind kind);
/* The flags as text ("homogeneous,odd"), into buf (always terminated). */
SL_API void sl_role_flags_text(unsigned flags, char *buf, size_t size);

/* dtype the module computes in (f32 or f64), fixed at creation. */
SL_API sl_dtype sl_module_dtype(const sl_module *m);
SL_API const sl_module_type *sl_module_type_of(const sl_module *m);
/* Its place in the model: the prefix of its tensors' names, "3" for the
 * fourth top-level module, "3.body.0" inside a residual block. */
SL_API const char *sl_module_path(const sl_module *m);
/* Its output in the model's last forward (a view owned by the model, valid
 * until the next forward); NULL before any forward.  For probes. */
SL_API const sl_tensor *sl_module_output(const sl_module *m);
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
 * only when `nbytes` exceeds what it already has.  Slots 0 to
 * SL_MODULE_SCRATCH_SLOTS - 1 are independent workspaces (e.g. 0: im2col
 * columns, 1: saved mask); symlab/conv.h's convolution takes 0 to 2 of the
 * module that calls it.  A slot outside that range is SL_EINVAL.  (The
 * count lives in the host, so raising it changes no plugin's ABI: it was 4
 * until ABI 1.3.) */
#define SL_MODULE_SCRATCH_SLOTS 8
SL_API int sl_module_scratch(sl_module *m, int slot, size_t nbytes, void **ptr);

/* This module's random stream, derived from the model's seed and the
 * module's position, so one module's draws never shift another's. */
SL_API sl_rng *sl_module_rng(sl_module *m);

#ifdef __cplusplus
}
#endif
#endif
