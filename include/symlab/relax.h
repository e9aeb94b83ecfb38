/* symlab/relax.h — relaxation: the same network with its constrained
 * (equivariant, weight-tied) layers replaced by the unconstrained layers
 * that compute the same function, ready to keep training.
 *
 * Which modules can be relaxed, and into what, is declared by each module
 * type through its `relax` callback (plugin.h; ABI minor 3): nothing is
 * decided from a type's name.  A module without one is copied unchanged,
 * with its parameters and buffers.
 *
 * The callback describes the replacement for one input shape, as a list of
 * registered module types with options (sl_relax_add) and the starting
 * value of every parameter of each (sl_relax_set).  One module replaces
 * the original directly, under the same path ("3.weight" of `gconv` becomes
 * "3.weight" of `linear`); several form a `sequential` in its place
 * ("3.0", "3.1.weight", ...).  Example: a gconv on (B, c p) inputs relaxes
 * to one `linear`; a deepsets layer on (B, c, n) to `reshape`, `linear`,
 * `reshape`, so that the modules around it see the shapes they saw.
 */
#ifndef SYMLAB_RELAX_H
#define SYMLAB_RELAX_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/model.h>
#include <symlab/options.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_relax sl_relax; /* opaque, host-owned; valid during one relax() call */

/* In a relax() callback: appends a module of the registered type `type`,
 * made from `opt` (copied; NULL for all defaults), to the replacement. */
SL_API int sl_relax_add(sl_relax *r, const char *type, const sl_options *opt);
/* In a relax() callback: the starting value of parameter `name` (local:
 * "weight") of the module last added; copied, converted to the model's
 * dtype, and checked against the declared shape when the relaxed model is
 * built.  Every parameter of every added module must be given. */
SL_API int sl_relax_set(sl_relax *r, const char *name, const sl_tensor *value);

/* True if the type declares a relaxation (a `relax` callback, from a
 * plugin of ABI minor 3 or later): `symlab describe` says so. */
SL_API bool sl_module_type_relaxable(const sl_module_type *type);

typedef struct sl_relax_options {
    /* false: each relaxable module becomes its dense form D with D's
     * parameters at the values that reproduce the module (W = B(φ)).
     * true: it becomes a `residual` block, body the original module (φ,
     * still trainable) and shortcut D with every parameter 0, so that
     * W = B(φ) + W_free with W_free = 0 at the start. */
    bool residual;
    /* The input shape (batch first; the batch entry is ignored) the
     * replacements are made for: a relaxed layer may depend on it (the set
     * size of deepsets, the image size of p4conv).  ndim 0: the shape of
     * the model's last forward, an error if it has run none. */
    int ndim;
    int64_t shape[SL_MAX_DIMS];
} sl_relax_options;

/* A new built model, in m's dtype and training mode, in which every module
 * whose type declares `relax` is replaced as above (also inside
 * containers), and every other module is a copy of m's with its parameters
 * and buffers.  m is not changed.  For every input of the given shape the
 * new model's output equals m's up to rounding (the tests ask 1e-12 in
 * f64).  opt may be NULL (not residual, shape of the last forward).
 * Errors: SL_ESTATE for an unbuilt model or no shape, SL_EINVAL for a
 * replacement that does not fit (named by module path and type). */
SL_API int sl_model_relax(sl_model *m, const sl_relax_options *opt, sl_model **out);

#ifdef __cplusplus
}
#endif
#endif
