/* core/registry.c — the process-wide table of techniques by kind and name. */
#include "config.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "registry_internal.h"

typedef struct entry {
    sl_kind kind;
    const char *name;
    const char *summary;
    const sl_option_spec *options;
    const void *type;
    const sl_plugin *plugin;
    const char *origin;
} entry;

static entry *entries;
static int nentries, capacity;
static char **failures;
static int nfailures;

static const char *const kind_names[SL_KIND_COUNT] = {"module", "hook", "probe", "loss", "optim"};

const char *sl_kind_name(sl_kind kind)
{
    return (unsigned)kind < SL_KIND_COUNT ? kind_names[kind] : "?";
}

static const entry *lookup(sl_kind kind, const char *name)
{
    for (int i = 0; i < nentries; i++)
        if (entries[i].kind == kind && strcmp(entries[i].name, name) == 0)
            return &entries[i];
    return NULL;
}

/* The types of one descriptor list as (kind, type, name, summary, spec). */
typedef struct listed {
    const void *type;
    const char *name, *summary;
    const sl_option_spec *options;
} listed;

static int list_types(const sl_plugin *p, sl_kind kind, listed *out, int max)
{
    int n = 0;
#define LIST(arr, T, HAS_OPTS)                                                            \
    for (T *const *it = (arr); it && *it && n < max; it++, n++) {                         \
        out[n] = (listed){*it, (*it)->name, (*it)->summary, HAS_OPTS((*it))};             \
    }
#define OPTS(t) (t)->options
#define NO_OPTS(t) NULL
    switch (kind) {
    case SL_KIND_MODULE: LIST(p->modules, const sl_module_type, OPTS) break;
    case SL_KIND_HOOK: LIST(p->hooks, const sl_hook_type, OPTS) break;
    case SL_KIND_PROBE: LIST(p->probes, const sl_probe_type, OPTS) break;
    case SL_KIND_LOSS: LIST(p->losses, const sl_loss_type, NO_OPTS) break;
    case SL_KIND_OPTIM: LIST(p->optims, const sl_optim_type, OPTS) break;
    }
#undef LIST
#undef OPTS
#undef NO_OPTS
    return n;
}

#define MAX_TYPES_PER_KIND 256

int sl_registry_add(const sl_plugin *p, const char *origin)
{
    listed types[MAX_TYPES_PER_KIND];
    /* Check everything first, so that a refused plugin registers nothing. */
    int total = 0;
    for (int k = 0; k < SL_KIND_COUNT; k++) {
        int n = list_types(p, (sl_kind)k, types, MAX_TYPES_PER_KIND);
        for (int i = 0; i < n; i++) {
            if (!types[i].name || !*types[i].name || !types[i].summary)
                return sl_error(SL_EPLUGIN, "plugin '%s': a %s type has no name or summary",
                                origin, kind_names[k]);
            const entry *e = lookup((sl_kind)k, types[i].name);
            if (e)
                return sl_error(SL_EPLUGIN,
                                "plugin '%s': %s type '%s' is already provided by %s (%s)", origin,
                                kind_names[k], types[i].name, e->plugin->name, e->origin);
        }
        total += n;
    }
    if (nentries + total > capacity) {
        int cap = capacity ? capacity : 64;
        while (cap < nentries + total)
            cap *= 2;
        entry *grown = realloc(entries, (size_t)cap * sizeof *grown);
        if (!grown)
            return sl_error(SL_ENOMEM, "out of memory");
        entries = grown;
        capacity = cap;
    }
    char *origin_copy = sl_strdup(origin); /* lives as long as the process */
    if (!origin_copy)
        return SL_ENOMEM;
    for (int k = 0; k < SL_KIND_COUNT; k++) {
        int n = list_types(p, (sl_kind)k, types, MAX_TYPES_PER_KIND);
        for (int i = 0; i < n; i++)
            entries[nentries++] = (entry){(sl_kind)k, types[i].name, types[i].summary,
                                          types[i].options, types[i].type, p, origin_copy};
    }
    return SL_OK;
}

int sl_plugin_register(const sl_plugin *plugin, const char *origin)
{
    SL_TRY(sl_registry_init());
    return sl_registry_add(plugin, origin);
}

void sl_registry_note_failure(const char *message)
{
    char **grown = realloc(failures, (size_t)(nfailures + 1) * sizeof *grown);
    if (!grown)
        return;
    failures = grown;
    if ((failures[nfailures] = strdup(message)))
        nfailures++;
}

const void *sl_registry_find(sl_kind kind, const char *name)
{
    if (sl_registry_init() < 0)
        return NULL;
    const entry *e = name ? lookup(kind, name) : NULL;
    if (!e) {
        sl_error(SL_ENOTFOUND, "no %s type '%s'; `symlab plugins` lists what is available",
                 sl_kind_name(kind), name ? name : "(null)");
        return NULL;
    }
    return e->type;
}

int sl_registry_count(void)
{
    sl_registry_init();
    return nentries;
}

int sl_registry_get(int i, sl_registry_entry *out)
{
    if (i < 0 || i >= nentries)
        return sl_error(SL_EINVAL, "registry: index %d out of range", i);
    const entry *e = &entries[i];
    *out = (sl_registry_entry){e->kind, e->name, e->summary, e->options, e->plugin, e->origin};
    return SL_OK;
}

int sl_registry_failure_count(void) { return nfailures; }

const char *sl_registry_failure(int i) { return i >= 0 && i < nfailures ? failures[i] : NULL; }

/* ---- paths ---------------------------------------------------------------- */

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

/* ---- initialisation ------------------------------------------------------- */

static bool started;
static int init_status;

/* Runs once per process.  A plain flag rather than pthread_once: a
 * plugin's init() may itself look types up, which must not deadlock; hosts
 * call sl_registry_init before starting threads. */
static void init_once(void)
{
    started = true;
    init_status = sl_registry_add(sl_builtin_plugin(), "built-in");
    if (init_status < 0)
        return;
    const char *env = getenv("SYMLAB_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env);
        for (char *save = NULL, *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir;
             dir = strtok_r(NULL, ":", &save))
            sl_loader_scan(dir);
        free(copy);
    }
    sl_loader_scan(sl_path(SL_PATH_PLUGINS));
}

int sl_registry_init(void)
{
    if (!started)
        init_once();
    if (init_status < 0)
        return sl_error(init_status, "registry: built-in types could not be registered");
    return SL_OK;
}

int sl_probe_run(const char *name, const sl_options *opt, sl_model *model,
                 const sl_dataset *data, sl_record *out)
{
    const sl_probe_type *type = sl_registry_find(SL_KIND_PROBE, name);
    if (!type)
        return SL_ENOTFOUND;
    sl_options *own = sl_options_copy(opt);
    if (!own)
        return SL_ENOMEM;
    int rc = sl_options_validate(own, type->options, type->name);
    if (rc >= 0) {
        rc = type->measure(own, model, data, out);
        if (rc < 0)
            rc = sl_error_context(rc, "probe %s", name);
    }
    sl_options_free(own);
    return rc;
}

const sl_plugin *sl_registry_provider(sl_kind kind, const void *type)
{
    for (int i = 0; i < nentries; i++)
        if (entries[i].kind == kind && entries[i].type == type)
            return entries[i].plugin;
    return NULL;
}
