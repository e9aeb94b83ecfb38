/* A plugin built against a future ABI major: the host must refuse it
 * without reading anything past the version fields. */
#include "config.h"

#include <symlab/plugin.h>

static const sl_plugin desc = {
    .abi_major = SL_ABI_MAJOR + 1,
    .abi_minor = 0,
    .size = sizeof(sl_plugin),
    .name = "bad_abi",
    .version = "0",
    .summary = "test: wrong ABI major",
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &desc; }
