/* plugins/asym/asym.h — the asym plugin: networks with their parameter
 * symmetries removed, and the tools to compare them with standard ones
 * (Lim, Putterman, Walters, Maron, Jegelka, "The Empirical Impact of Neural
 * Parameter Symmetries, or Lack Thereof", arXiv 2405.20231).
 *
 *   asym_linear  W-asymmetric linear layer (asym_linear.c)
 *   asym_conv2d  W-asymmetric 2-d convolution (asym_conv2d.c); both pin
 *                their entries through mask.h
 *   figlu        sigmoid(F x) ⊙ x with a fixed random F (figlu.c)
 *   interpolate  probe: loss and accuracy along the straight line between
 *                two models, and the barrier on it (interpolate.c)
 *   weight_matching  probe: permutes a model's hidden units to line it up
 *                with another (weight_matching.c, assignment.c)
 *
 * Why these layers declare themselves opaque to the structure walker
 * (module.h).  The walker's vocabulary describes layers whose hidden units
 * can be permuted: a weight layer's units are its weight's rows and move
 * with them.  An asym_linear's rows also carry pinned entries at fixed
 * columns, shared by every model built with the same mask_seed; permuting
 * its units (or its input features) changes the function unless the
 * pinning moves too, and then the result is a model with other masks.
 * Declared a weight layer over its free weight, the walker would report a
 * permutation symmetry the layer does not have and sl_structure_permute
 * would silently change the network's function.  Opaque says what is true:
 * no hidden layer spans it, so syre, teleportation, the symmetry probes and
 * weight matching see no symmetry there, and weight matching leaves such a
 * network unchanged — which is the point of the construction.  figlu mixes
 * its units through F, so it is no per-unit map either.  (A role for "a
 * weight layer whose units are pinned" — listed as a layer for spectra and
 * ranks, spanning no hidden layer — would let the probes report on these
 * layers too; that is a core change, not made here.)
 */
#ifndef SYMLAB_PLUGINS_ASYM_H
#define SYMLAB_PLUGINS_ASYM_H

#include <symlab/symlab.h>

/* Streams derived from mask_seed (sl_rng_derive), one per purpose, so the
 * columns, the values and F never share draws. */
enum {
    ASYM_STREAM_COLUMNS = 1,
    ASYM_STREAM_VALUES = 2,
    ASYM_STREAM_MIX = 3
};

extern const sl_module_type asym_linear_type;
extern const sl_module_type asym_conv2d_type;
extern const sl_module_type figlu_type;
extern const sl_probe_type interpolate_probe;
extern const sl_probe_type weight_matching_probe;

/* A new model like `model` (same modules, same dtype) holding the
 * checkpoint `path`, into *out (the caller frees it): the second model of
 * a pair, for probes that compare two.  Errors name `owner` and the option
 * "other": an empty path, or the checkpoint's own error (missing file,
 * other names or shapes). */
int asym_load_other(sl_model *model, const char *path, const char *owner, sl_model **out);

#endif
