/* core/loader.c — loading plugins with dlopen() and checking their ABI. */
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

int sl_plugin_load(const char *path)
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
    if ((rc = read_descriptor(path, entry(), &p->desc)) < 0)
        goto fail;
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
    free(p->file);
    free(p->basename);
    if (p->handle)
        dlclose(p->handle);
    free(p);
    return rc;
}

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

void sl_loader_scan(const char *dir)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_plugin_file, alphasort);
    for (int i = 0; i < n; i++) {
        if (!shadowed(names[i]->d_name)) {
            size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
            char *path = malloc(len);
            if (path) {
                snprintf(path, len, "%s/%s", dir, names[i]->d_name);
                if (sl_plugin_load(path) < 0)
                    sl_registry_note_failure(sl_last_error());
                free(path);
            }
        }
        free(names[i]);
    }
    free(names);
}
