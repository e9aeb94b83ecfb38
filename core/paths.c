/* core/paths.c — the directories this libsymlab uses: its build tree's when
 * it runs uninstalled, else the installed ones. */
#include "config.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* True when the libsymlab running is the one in its build tree. */
static bool uninstalled(void)
{
    static int cached = -1;
    if (cached < 0) {
        Dl_info info;
        char self[PATH_MAX], build[PATH_MAX];
        cached = dladdr((void *)&sl_path, &info) && info.dli_fname &&
                 realpath(info.dli_fname, self) && realpath(SL_BUILD_LIBDIR, build) &&
                 strncmp(self, build, strlen(build)) == 0 && self[strlen(build)] == '/';
    }
    return cached;
}

const char *sl_path(sl_path_kind kind)
{
    bool build = uninstalled();
    switch (kind) {
    case SL_PATH_PLUGINS: return build ? SL_BUILD_PLUGINDIR : SL_PLUGINDIR;
    case SL_PATH_LUA: return build ? SL_BUILD_LUADIR : SL_LUADIR;
    case SL_PATH_DATA: return build ? SL_BUILD_DATADIR : SL_DATADIR;
    }
    return "";
}

const char *sl_module_dir(void) { return uninstalled() ? SL_BUILD_MODULEDIR : SL_MODULEDIR; }
