/* plugins/equivariant — equivariant layers and the probes that study their
 * loss landscape (background in docs/background/equivariance.md).
 *
 *   deepsets  module  permutation-equivariant linear map on sets (deepsets.c)
 *   set_pool  module  invariant sum / mean over a set (deepsets.c)
 *   gconv     module  C_N group convolution between permutation
 *                     representations: regular, quotient, trivial (gconv.c)
 *   gconv_mixed module  the same between direct sums of those (gconv_mixed.c)
 *   relaxed_gconv module  gconv with group-element-dependent mixes of filter
 *                     banks: approximately equivariant (relaxed_gconv.c)
 *   p4conv    module  rotation-by-90° group convolution on images (p4conv.c)
 *   p4pool    module  max / mean over the four rotations (p4conv.c)
 *   hessian   probe   extreme eigenvalues of the loss Hessian (hessian.c)
 *   equivariance_error probe  ‖f(g·x) − g·f(x)‖ / ‖f(x)‖ over a group, and
 *                     the permutation representation each hidden layer
 *                     carries (equivariance_error.c, permgroup.c)
 */
#include "config.h"

#include "eq.h"

static const sl_module_type *const modules[] = {&eq_deepsets_type, &eq_set_pool_type,
                                                &eq_gconv_type, &eq_gconv_mixed_type, &eq_p4conv_type, &eq_p4pool_type,
                                                &eq_relaxed_gconv_type, NULL};

static const sl_probe_type *const probes[] = {
    &eq_hessian_type,
    &eq_equivariance_error_type, /* equivariance_error.c */
    NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "equivariant",
    .version = "0.1.0",
    .license = "MIT",
    .summary = "equivariant layers (Deep Sets, cyclic and p4 group convolutions) and the Hessian probe",
    .modules = modules,
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
