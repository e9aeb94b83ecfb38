/* symlab/registry.h — the host's side of plugins: the table of techniques
 * by kind and name, loading plugins, and the directories symlab uses.
 *
 * Plugin authors need only symlab/plugin.h; hosts (the symlab executable,
 * the Lua binding, tests) and plugins that look other types up (a probe
 * that evaluates a loss by name) use this header.  symlab.h includes both.
 *
 * The registry is filled on first use: the built-in types, then every
 * plugin found on the search path (see sl_registry_init).
 */
#ifndef SYMLAB_REGISTRY_H
#define SYMLAB_REGISTRY_H

#include <symlab/data.h>
#include <symlab/export.h>
#include <symlab/model.h>
#include <symlab/options.h>
#include <symlab/plugin.h>
#include <symlab/record.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_kind {
    SL_KIND_MODULE = 0,
    SL_KIND_HOOK = 1,
    SL_KIND_PROBE = 2,
    SL_KIND_LOSS = 3,
    SL_KIND_OPTIM = 4
} sl_kind;
#define SL_KIND_COUNT 5

/* "module", "hook", "probe", "loss", "optim". */
SL_API const char *sl_kind_name(sl_kind kind);

/* Registers the built-in types, then loads every plugin (*.so) found on the
 * search path: each directory of SYMLAB_PLUGIN_PATH (colon-separated), then
 * the build tree's plugins when the running libsymlab is the build tree's,
 * else the installed plugindir.
 * A plugin that fails to load is skipped and its error kept (see
 * sl_registry_failure); the host keeps running.  Idempotent. */
SL_API int sl_registry_init(void);

/* Loads one plugin file and registers its types.  Errors name the file:
 * dlopen failure (with dlerror), no entry point, ABI mismatch (both
 * versions), a name already taken or listed twice, a MUST callback that is
 * NULL or a broken option default (naming the type), failing init. */
SL_API int sl_plugin_load(const char *path);

/* Registers a descriptor already in memory (built-ins, tests). */
SL_API int sl_plugin_register(const sl_plugin *plugin, const char *origin);

/* The type registered under `name` in `kind`, cast to the kind's type; NULL
 * with SL_ENOTFOUND set ("no module type 'foo'; `symlab plugins` lists what
 * is available").  When a plugin on the search path that provides `name`
 * (or whose file is called `name`.so) was refused, the message says so and
 * gives the refusal: "no module type 'foo' (its plugin was refused: plugin
 * '/p/foo.so' has incompatible ABI version 2.0 (host 1.0), not loading)". */
SL_API const void *sl_registry_find(sl_kind kind, const char *name);

/* One registered type, for listings. */
typedef struct sl_registry_entry {
    sl_kind kind;
    const char *name;
    const char *summary;
    const sl_option_spec *options; /* may be NULL */
    const sl_plugin *plugin;       /* the descriptor that provided it */
    const char *origin;            /* file path, or "built-in" */
} sl_registry_entry;

SL_API int sl_registry_count(void);
SL_API int sl_registry_get(int i, sl_registry_entry *out);

/* Plugins skipped by sl_registry_init: the i-th failure message. */
SL_API int sl_registry_failure_count(void);
SL_API const char *sl_registry_failure(int i);

/* Directories this libsymlab uses.  When the running libsymlab is the one in
 * its build tree (symlab used uninstalled), these are the build and source
 * tree's directories; otherwise the installed ones. */
typedef enum sl_path_kind {
    SL_PATH_PLUGINS = 0, /* built-in plugin directory */
    SL_PATH_LUA = 1,     /* pure-Lua helpers (scripts/lib) */
    SL_PATH_DATA = 2     /* shipped datasets (data/) */
} sl_path_kind;
SL_API const char *sl_path(sl_path_kind kind);

/* Runs the probe `name` (options validated against its spec). */
SL_API int sl_probe_run(const char *name, const sl_options *opt, sl_model *model,
                        const sl_dataset *data, sl_record *out);

#ifdef __cplusplus
}
#endif
#endif
