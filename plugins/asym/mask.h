/* plugins/asym/mask.h — the pattern of fixed entries of a W-asymmetric
 * weight, shared by asym_linear (rows = output features, columns = input
 * features) and asym_conv2d (rows = output filters, columns = the filter's
 * in·k·k entries in PyTorch's (C, kh, kw) order).
 *
 * In every row, exactly nfix columns drawn uniformly at random without
 * replacement, independently per row, hold fixed values kappa·N(0,1) that
 * are never trained (Lim, Putterman, Walters, Maron, Jegelka, arXiv
 * 2405.20231).  The columns and the values come from mask_seed alone, never
 * from the model's seed, so two models built with the same mask_seed share
 * them.  A layer stores only what is trained:
 *   param  "weight"       (rows, nfree): row i's free entries, increasing column;
 *   buffer "weight_fixed" (rows, nfix):  row i's fixed values, increasing column
 *                         (absent when nfix == 0: a tensor needs data);
 * and assembles the effective (rows, cols) weight for each forward (see
 * asym_linear.c for why the fixed entries live outside the parameters).
 */
#ifndef SYMLAB_PLUGINS_ASYM_MASK_H
#define SYMLAB_PLUGINS_ASYM_MASK_H

#include <symlab/symlab.h>

typedef struct asym_mask {
    int64_t rows, cols, nfix, nfree;
    int64_t *fix_cols;  /* (rows, nfix): row i's fixed columns, increasing */
    int64_t *free_cols; /* (rows, nfree): row i's free columns, increasing */
} asym_mask;

/* Draws the columns from mask_seed into *k (allocated here; asym_mask_free
 * releases them).  The layer declares "weight" (rows, nfree) and, when
 * nfix > 0, "weight_fixed" (rows, nfix) itself.  Errors name `owner`:
 * SL_EINVAL unless 0 <= nfix < cols, SL_ENOMEM. */
int asym_mask_init(asym_mask *k, const char *owner, int64_t rows, int64_t cols, int64_t nfix,
                   uint64_t mask_seed);

void asym_mask_free(asym_mask *k);

/* Declares the layer's tensors, in this order: param "weight" (rows, nfree)
 * (index 0), param "bias" (rows) when `bias` (index 1), buffer
 * "weight_fixed" (rows, nfix) when nfix > 0 (buffer index 0; a (rows, 0)
 * tensor would have no data).  Call it from create(). */
int asym_mask_declare(sl_module *m, const asym_mask *k, bool bias);

/* Initialises what asym_mask_declare declared: the free weight and the bias
 * as PyTorch initialises nn.Linear's and nn.Conv2d's, U(±1/sqrt(cols)) with
 * cols the fan-in, from the model's stream `rng`; the fixed values
 * kappa·N(0,1) from mask_seed's own stream, row by row (the same whatever
 * the model's seed). */
int asym_mask_reset(sl_module *m, const asym_mask *k, bool bias, sl_rng *rng, uint64_t mask_seed,
                    double kappa);

/* The effective weight (rows, cols) assembled from the free entries `weight`
 * and the fixed ones `fixed` (NULL when nfix == 0), in the module's scratch
 * `slot`; *w wraps it (valid until the slot is resized).  Forward calls it;
 * backward may read the same slot again. */
int asym_mask_effective(sl_module *m, const asym_mask *k, int slot, const sl_tensor *weight,
                        const sl_tensor *fixed, sl_tensor *w);

/* grad_free (rows, nfree) += the free entries of gw (rows, cols); both of
 * one real dtype, contiguous. */
void asym_mask_gather(const asym_mask *k, const sl_tensor *gw, sl_tensor *grad_free);

#endif
