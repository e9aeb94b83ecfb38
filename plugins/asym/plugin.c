/* plugins/asym/plugin.c — the asym plugin's descriptor (asym.h). */
#include "config.h"

#include "asym.h"

static const sl_module_type *const modules[] = {&asym_linear_type, &asym_conv2d_type, &figlu_type,
                                              NULL};

static const sl_probe_type *const probes[] = {&interpolate_probe, &weight_matching_probe, NULL};

static const sl_plugin desc = {
    SL_PLUGIN_HEADER,
    .name = "asym",
    .version = "1.0",
    .license = "MIT",
    .summary = "asymmetric networks (W-asymmetric linear and conv2d, FiGLU) and linear mode "
               "connectivity",
    .modules = modules,
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &desc; }
