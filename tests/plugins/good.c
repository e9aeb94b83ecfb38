/* A minimal well-formed plugin with one probe, for the loader tests
 * (loading it twice exercises the name-clash refusal). */
#include "config.h"

#include <symlab/plugin.h>

static const sl_option_spec count_options[] = {
    {"scale", SL_OPT_FLOAT, "1.0", "multiplies the count", NULL},
    {NULL, 0, NULL, NULL, NULL}};

/* Probe "test_count": the number of parameters times `scale`. */
static int count_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                         sl_record *out)
{
    (void)data;
    return sl_record_set(out, "count",
                         (double)sl_model_numel(model) * sl_options_float(opt, "scale"));
}

static const sl_probe_type count_probe = {
    .name = "test_count",
    .summary = "counts parameters",
    .options = count_options,
    .measure = count_measure,
};

static const sl_probe_type *const probes[] = {&count_probe, NULL};

static const sl_plugin desc = {
    SL_PLUGIN_HEADER,
    .name = "good",
    .version = "1.0",
    .summary = "test: a well-formed plugin",
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &desc; }
