/* plugins/symmetry_metrics/units.h — the weight layers of a sequential model
 * and their hidden units, shared by the symmetry_metrics and
 * symmetry_breaking probes (compiled into both plugins).
 *
 * A *weight layer* is a module with a parameter "weight" of rank >= 2
 * (linear: (out, in); conv2d: (out, in, kh, kw)).  Its *units* are the
 * out rows; row j, reshaped to fan_in = numel / out values, is the unit's
 * incoming weight vector w_in,j.
 *
 * A weight layer is *hidden* when a later weight layer reads its units: the
 * next weight layer's fan_in is a multiple r of this layer's units, and
 * unit j's outgoing weights are that layer's columns [j r, (j + 1) r) —
 * r = 1 for linear -> linear, kh*kw for conv -> conv, H*W for
 * conv -> (pool) -> flatten -> linear (channel-major flattening).
 * Modules in between are assumed to act per unit (activations, dropout,
 * batch norm, pooling, flatten); their rank-1 parameters and buffers of
 * length `units` (batch norm's) belong to the units too.
 */
#ifndef SYMLAB_PLUGINS_UNITS_H
#define SYMLAB_PLUGINS_UNITS_H

#include <symlab/symlab.h>

#define SU_MAX_LAYERS 64

typedef struct su_layer {
    int module;      /* module index of the weight layer */
    int weight;      /* model parameter index of its weight */
    int bias;        /* model parameter index of its bias, or -1 */
    int64_t units;   /* weight.shape[0] */
    int64_t fan_in;  /* weight numel / units */
    int next;        /* position in the layer list of the next weight layer, or -1 */
    int64_t block;   /* hidden: columns of the next weight per unit; 0: not hidden */
    int act_module;  /* module whose output holds the units' activations (the last of
                        the per-unit activation/dropout/batchnorm modules after it) */
} su_layer;

/* Fills layers[0..*n) with the model's weight layers in order. */
int su_find_layers(sl_model *m, su_layer *layers, int *n);

/* Permutes the hidden units of layer `l` by perm (unit j moves to position
 * j' with new[j'] = old[perm[j']]): rows of its weight and bias, the
 * per-unit parameters and buffers of the modules up to the next weight
 * layer, and the column blocks of that layer.  The model computes the same
 * function afterwards. */
int su_permute_units(sl_model *m, const su_layer *layers, int l, const int64_t *perm);

/* The matrix of a rank >= 2 parameter as f64 (rows, numel / rows), newly
 * allocated into *out. */
int su_matrix_f64(const sl_tensor *w, sl_tensor *out);

/* Singular values of a parameter's matrix, descending, into a new f64
 * tensor (min(rows, cols)). */
int su_singular_values(const sl_tensor *w, sl_tensor *s);

#endif
