/* core/loader.c — discovering plugins: the search path, directory scans,
 * dlopen() and the ABI check, and the public registry entry points that
 * discover on first use.  The table itself is registry.c's. */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "registry_internal.h"

/* A loaded plugin: its handle and a host-owned copy of its descriptor, so
 * fields past the plugin's `size` read as NULL. */
typedef struct loaded {
    void *handle;
    sl_plugin desc;
    char *file;     /* as given */
    char *basename; /* for shadowing along the search path */
} loaded;

/* Each loaded plugin is its own allocation: the registry keeps pointers to
 * its descriptor copy, which must not move when the list grows. */
static loaded **plugins;
static int nplugins;

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Validates the descriptor a plugin returned and copies it into *out. */
static int read_descriptor(const char *path, const sl_plugin *d, sl_plugin *out)
{
    if (!d)
        return sl_error(SL_EPLUGIN, "plugin '%s': sl_plugin_entry returned NULL", path);
    /* The version comes first so that it can be read from any plugin, however
     * old or new; nothing else is touched before it is checked. */
    if (d->abi_major != SL_ABI_MAJOR || d->abi_minor > SL_ABI_MINOR)
        return sl_error(SL_EABI,
                        "plugin '%s' has incompatible ABI version %u.%u (host %u.%u), not loading",
                        path, d->abi_major, d->abi_minor, SL_ABI_MAJOR, SL_ABI_MINOR);
    size_t minimum = offsetof(sl_plugin, summary) + sizeof d->summary;
    if (d->size < minimum)
        return sl_error(SL_EPLUGIN, "plugin '%s': descriptor size %u is too small", path,
                        d->size);
    memset(out, 0, sizeof *out);
    memcpy(out, d, d->size < sizeof *out ? d->size : sizeof *out);
    if (!out->name || !out->version || !out->summary)
        return sl_error(SL_EPLUGIN, "plugin '%s': descriptor lacks a name, version or summary",
                        path);
    return SL_OK;
}

/* Loads one file; `note` keeps a failure (and the names of the types the
 * refused descriptor lists) for `symlab plugins` and for lookups. */
static int load(const char *path, bool note)
{
    SL_TRY(sl_registry_init()); /* built-ins first, so clashes are caught */
    loaded **grown = realloc(plugins, (size_t)(nplugins + 1) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "out of memory");
    plugins = grown;
    loaded *p = calloc(1, sizeof *p);
    if (!p)
        return sl_error(SL_ENOMEM, "out of memory");

    dlerror();
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    int rc;
    if (!p->handle) {
        rc = sl_error(SL_EPLUGIN, "cannot load plugin '%s': %s (ldd may tell which library is missing)",
                      path, dlerror());
        goto fail;
    }
    void *sym = dlsym(p->handle, "sl_plugin_entry");
    if (!sym) {
        const char *why = dlerror();
        rc = sl_error(SL_EPLUGIN, "no entry point sl_plugin_entry in plugin '%s': %s", path,
                      why ? why : "symbol is NULL");
        goto fail;
    }
    const sl_plugin *(*entry)(void);
    *(void **)&entry = sym; /* POSIX: function pointers round-trip through void * */
    if ((rc = read_descriptor(path, entry(), &p->desc)) < 0) {
        memset(&p->desc, 0, sizeof p->desc); /* half-read: list no types */
        goto fail;
    }
    if (p->desc.init && (rc = p->desc.init()) < 0) {
        rc = sl_error_context(SL_EPLUGIN, "plugin '%s': error during initialization", path);
        goto fail;
    }
    if (!(p->file = sl_strdup(path)) || !(p->basename = sl_strdup(base_of(path)))) {
        rc = SL_ENOMEM;
        goto fail;
    }
    if ((rc = sl_registry_add(&p->desc, p->file)) < 0)
        goto fail;
    plugins[nplugins++] = p;
    return SL_OK;
fail:
    if (note) /* before dlclose: the descriptor's names live in the plugin */
        sl_registry_note_failure(sl_last_error(), path, &p->desc);
    free(p->file);
    free(p->basename);
    if (p->handle)
        dlclose(p->handle);
    free(p);
    return rc;
}

int sl_plugin_load(const char *path) { return load(path, false); }

static bool shadowed(const char *name)
{
    for (int i = 0; i < nplugins; i++)
        if (strcmp(plugins[i]->basename, name) == 0)
            return true;
    return false;
}

static int is_plugin_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

/* Loads every *.so in dir (sorted by name), noting failures; a file whose
 * name matches an already-loaded plugin's is shadowed and skipped. */
static void scan(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_plugin_file, alphasort);
    for (int i = 0; i < n; i++) {
        if (!shadowed(names[i]->d_name)) {
            size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
            char *path = malloc(len);
            if (path) {
                snprintf(path, len, "%s/%s", dir, names[i]->d_name);
                load(path, true);
                free(path);
            }
        }
        free(names[i]);
    }
    free(names);
}

/* ---- discovery on first use ------------------------------------------------ */

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
            scan(dir);
        free(copy);
    }
    scan(sl_path(SL_PATH_PLUGINS));
}

int sl_registry_init(void)
{
    if (!started)
        init_once();
    if (init_status < 0)
        return sl_error(init_status, "registry: built-in types could not be registered");
    return SL_OK;
}

int sl_plugin_register(const sl_plugin *plugin, const char *origin)
{
    SL_TRY(sl_registry_init());
    return sl_registry_add(plugin, origin);
}

const void *sl_registry_find(sl_kind kind, const char *name)
{
    if (sl_registry_init() < 0)
        return NULL;
    return sl_registry_lookup(kind, name);
}

int sl_registry_count(void)
{
    sl_registry_init();
    return sl_registry_size();
}
