/* symlab/structure.h — a model's structure as its modules' declared roles
 * (module.h) make it: weight layers, the hidden units between them, and the
 * parameter symmetries each hidden layer carries.
 *
 * This is the one place symlab works out structure.  syre, teleportation,
 * the conserved quantities, the symmetry probes and weight matching read it
 * and nothing else, so each of them handles any layer that declares its
 * role, built in or from a third-party plugin, the same way.
 *
 * Vocabulary.
 *   weight layer   a module of role SL_ROLE_WEIGHT: its weight's unit axis
 *                  indexes its output units.
 *   hidden layer   the output units of a weight layer that the next weight
 *                  layer reads, with only per-unit maps and unit-major
 *                  reshapes in between.  A weight layer followed by an
 *                  opaque module, or by nothing (the output layer), has no
 *                  hidden layer.  Inside residual blocks (module.h's
 *                  containers) the units a skip connection adds to a
 *                  block's output are one hidden layer — a residual stream
 *                  — written by several weight layers and read by several.
 *   unit ref       one tensor a hidden layer's units index along one axis:
 *                  the producing layer's weight rows and bias (OUT), the
 *                  per-unit tensors of the maps in between (SELF, e.g. batch
 *                  norm's weight and running_mean) and the consuming layer's
 *                  weight columns (IN).  Permuting the units permutes every
 *                  ref along its axis, and the model computes the same
 *                  function.
 * Units index their axis unit-major: with k units and an axis of length n,
 * unit j owns entries [j*n/k, (j+1)*n/k) of it (a block of n/k, which is
 * H*W where a flatten turned channels into features, 1 otherwise).
 *
 * Memory: sl_model_structure allocates the description; it refers to the
 * model's parameters by index, is valid while the model's modules are
 * unchanged, and is freed with sl_structure_free.  Indices hold for every
 * model of the same architecture (a clone, a replica); module pointers
 * belong to the model described — in a clone, find the module by its path
 * (sl_model_find_module(clone, sl_module_path(mod))).  Pointers returned by the
 * accessors live as long as the structure.  Fields of the structs below are
 * only ever appended (ABI minor): read them through the accessors' pointers,
 * never index arrays of them yourself.
 */
#ifndef SYMLAB_STRUCTURE_H
#define SYMLAB_STRUCTURE_H

#include <stdint.h>

#include <symlab/export.h>
#include <symlab/model.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_structure sl_structure; /* opaque */

/* Symmetries of one hidden layer (bit flags). */
enum {
    /* Any permutation of the units: always, for a hidden layer. */
    SL_SYM_PERMUTE = 1u << 0,
    /* Positive rescaling of each unit (OUT refs × a, IN refs ÷ a): every
     * map in between is positively homogeneous and has no per-unit
     * tensors. */
    SL_SYM_RESCALE = 1u << 1,
    /* A sign flip of each unit (OUT and IN refs × −1): every map is odd. */
    SL_SYM_SIGN = 1u << 2,
    /* Any invertible mixing g of the units (OUT → g·OUT, IN → IN·g⁻¹):
     * every map is one linear map shared by all units (identity, average
     * pooling) and deterministic. */
    SL_SYM_GL = 1u << 3,
    /* The scale of each unit's incoming weights is free (a normalising map,
     * batch norm, follows through homogeneous maps only): OUT refs × a
     * leave the function unchanged. */
    SL_SYM_SCALE_FREE = 1u << 4
};

typedef enum sl_unit_use {
    SL_UNITS_OUT = 0,  /* rows of the producing weight layer (weight, bias) */
    SL_UNITS_SELF = 1, /* per-unit tensors of a map in between */
    SL_UNITS_IN = 2    /* columns of the consuming weight layer */
} sl_unit_use;

typedef struct sl_unit_ref {
    int param;         /* model parameter index, or -1 */
    int buffer;        /* model buffer index, or -1 (one of the two is >= 0) */
    int axis;          /* the axis the units index */
    int64_t block;     /* entries of that axis per unit (>= 1) */
    sl_unit_use use;
    int module;        /* top-level position of the weight layer it belongs to, or -1 */
} sl_unit_ref;

typedef struct sl_hidden_layer {
    int64_t units;
    unsigned symmetry;  /* SL_SYM_* */
    /* The weight layers writing these units (one, or several whose outputs
     * a residual connection adds up: a residual stream, every tensor of
     * which moves under one permutation) and reading them; `producer` and
     * `consumer` are the first of each (indices of weight layers). */
    int producer, consumer;
    int nproducers, nconsumers;
    /* The module whose output (sl_module_output) holds the units'
     * activations on axis 1: the last per-unit map after the (first)
     * producer that keeps the layer's shape, or the producer itself. */
    const sl_module *act;
    int nrefs;          /* unit refs; sl_hidden_ref(h, i) for i < nrefs */
} sl_hidden_layer;

typedef struct sl_weight_layer {
    const sl_module *mod; /* the module; sl_module_path(mod) names it ("3.body.0") */
    int module;         /* its position among the top-level modules, or -1 if nested */
    int weight;         /* model parameter index of the weight */
    int bias;           /* model parameter index of the bias, or -1 */
    int unit_axis;      /* the weight's output-unit axis */
    int input_axis;     /* the weight's input-feature axis */
    int64_t units;      /* weight.shape[unit_axis] */
    int64_t fan_in;     /* weight numel / units */
    int hidden_out;     /* hidden layer of its outputs, or -1 */
    int hidden_in;      /* hidden layer its inputs are, or -1 (model input or opaque) */
} sl_weight_layer;

/* Describes m (built) from its modules' roles.  Errors: SL_ESTATE if not
 * built, SL_ENOMEM. */
SL_API int sl_model_structure(sl_model *m, sl_structure **out);
SL_API void sl_structure_free(sl_structure *s);

SL_API int sl_structure_nlayers(const sl_structure *s);
SL_API const sl_weight_layer *sl_structure_layer(const sl_structure *s, int i);
SL_API int sl_structure_nhidden(const sl_structure *s);
SL_API const sl_hidden_layer *sl_structure_hidden(const sl_structure *s, int i);
SL_API const sl_unit_ref *sl_hidden_ref(const sl_hidden_layer *h, int i);

/* The tensor a ref names (a parameter or a buffer of m). */
SL_API sl_tensor *sl_unit_ref_tensor(sl_model *m, const sl_unit_ref *r);
/* Entries of the ref's tensor that belong to one unit (numel / units). */
SL_API int64_t sl_unit_ref_width(sl_model *m, const sl_unit_ref *r, int64_t units);

/* Copies the ref's tensor as f64 into dst, unit-major: dst is (units,
 * width), row j holding every entry unit j owns in the tensor's own order.
 * dst holds units * sl_unit_ref_width() doubles (caller-owned, so hooks can
 * call this in a training step without allocating). */
SL_API int sl_unit_ref_rows(sl_model *m, const sl_unit_ref *r, int64_t units, double *dst);

/* The weight of L as a new f64 (units, fan_in) matrix in *out (row j: unit
 * j's incoming weights), for spectra and ranks.  The caller releases it. */
SL_API int sl_weight_layer_matrix(sl_model *m, const sl_weight_layer *L, sl_tensor *out);

/* Permutes hidden layer `hidden`'s units: unit j' after is unit perm[j']
 * before, in every ref.  perm is a permutation of 0..units-1 (checked).
 * The model computes the same function afterwards (exactly: values move,
 * nothing is recomputed). */
SL_API int sl_structure_permute(sl_model *m, const sl_structure *s, int hidden,
                                const int64_t *perm);

/* "permute,rescale,sign" for a symmetry mask, into buf (always terminated). */
SL_API void sl_symmetry_text(unsigned symmetry, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
