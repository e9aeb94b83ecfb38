/* A plugin whose init() fails: the host reports it and unloads it, and a
 * lookup of the probe it lists says why that probe is missing. */
#include "config.h"

#include <symlab/plugin.h>

static int init(void) { return sl_error(SL_EPLUGIN, "the test plugin refuses to start"); }

static int never_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                         sl_record *out)
{
    return sl_error(SL_ESTATE, "never_started: the plugin never started");
}

static const sl_probe_type never_probe = {
    .name = "never_started", .summary = "test: listed by a plugin that fails to start",
    .measure = never_measure};
static const sl_probe_type *const probes[] = {&never_probe, NULL};

static const sl_plugin desc = {
    SL_PLUGIN_HEADER,
    .name = "fail_init",
    .version = "0",
    .summary = "test: init fails",
    .probes = probes,
    .init = init,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &desc; }
