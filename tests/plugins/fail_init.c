/* A plugin whose init() fails: the host reports it and unloads it. */
#include "config.h"

#include <symlab/plugin.h>

static int init(void) { return sl_error(SL_EPLUGIN, "the test plugin refuses to start"); }

static const sl_plugin desc = {
    SL_PLUGIN_HEADER,
    .name = "fail_init",
    .version = "0",
    .summary = "test: init fails",
    .init = init,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &desc; }
