/* plugins/symmetry_metrics/plugin.c — the plugin's descriptor: the
 * symmetry_metrics probe and the rank_log hook (metrics.h). */
#include "config.h"

#include "metrics.h"

static const sl_probe_type *const probes[] = {&sm_probe_type, NULL};
static const sl_hook_type *const hooks[] = {&sm_rank_log_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "symmetry_metrics",
    .version = "1.1.0",
    .license = "MIT",
    .summary = "order parameters: dead and distinct neurons, ranks, NC1, CKA; rank trajectories",
    .probes = probes,
    .hooks = hooks,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
