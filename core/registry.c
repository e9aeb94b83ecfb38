/* core/registry.c — the process-wide table of techniques by kind and name.
 *
 * A leaf: it checks and records descriptors it is given and answers
 * lookups, and knows nothing of files, search paths or dlopen (loader.c).
 * It also keeps the refusals the loader reports, so that looking up a type
 * whose plugin was refused can say why it is missing.
 */
#include "config.h"

#include <stdio.h>
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

/* A plugin file that could not be loaded: its message, its file's base name
 * without ".so", and the "kind:name" of each type its descriptor lists
 * (none if it could not be read). */
typedef struct failure {
    char *message;
    char *stem;
    char **types;
    int ntypes;
} failure;

static failure *failures;
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

/* One type of a descriptor list, with the first of its MUST callbacks that
 * is NULL (NULL if none is). */
typedef struct listed {
    const void *type;
    const char *name, *summary;
    const sl_option_spec *options;
    const char *missing;
} listed;

#define MISSING1(t, a) (!(t)->a ? #a : NULL)
#define MISSING2(t, a, b) (!(t)->a ? #a : MISSING1(t, b))
#define MISSING3(t, a, b, c) (!(t)->a ? #a : MISSING2(t, b, c))
#define MISSING4(t, a, b, c, d) (!(t)->a ? #a : MISSING3(t, b, c, d))

static int list_types(const sl_plugin *p, sl_kind kind, listed *out, int max)
{
    int n = 0;
#define LIST(arr, T, OPTS, MISSING)                                                       \
    for (T *const *it = (arr); it && *it && n < max; it++, n++) {                         \
        out[n] = (listed){*it, (*it)->name, (*it)->summary, OPTS, MISSING};               \
    }
    switch (kind) {
    case SL_KIND_MODULE:
        LIST(p->modules, const sl_module_type, (*it)->options,
             MISSING4(*it, create, output_shape, forward, backward))
        break;
    case SL_KIND_HOOK:
        LIST(p->hooks, const sl_hook_type, (*it)->options, MISSING2(*it, create, on_event))
        break;
    case SL_KIND_PROBE:
        LIST(p->probes, const sl_probe_type, (*it)->options, MISSING1(*it, measure))
        break;
    case SL_KIND_LOSS: LIST(p->losses, const sl_loss_type, NULL, MISSING1(*it, forward)) break;
    case SL_KIND_OPTIM:
        LIST(p->optims, const sl_optim_type, (*it)->options,
             MISSING3(*it, options, create, step))
        break;
    }
#undef LIST
    return n;
}

#define MAX_TYPES_PER_KIND 256

/* Checks one type of plugin `origin`; `types[0..i)` are the same kind's
 * earlier entries in the same descriptor. */
static int check_type(const char *origin, sl_kind k, const listed *types, int i)
{
    const listed *t = &types[i];
    const char *kind = kind_names[k];
    if (!t->name || !*t->name || !t->summary)
        return sl_error(SL_EPLUGIN, "plugin '%s': a %s type has no name or summary", origin,
                        kind);
    if (t->missing)
        return sl_error(SL_EPLUGIN, "plugin '%s': %s type '%s' has no %s callback (MUST)",
                        origin, kind, t->name, t->missing);
    for (int j = 0; j < i; j++)
        if (strcmp(types[j].name, t->name) == 0)
            return sl_error(SL_EPLUGIN, "plugin '%s': lists two %s types named '%s'", origin,
                            kind, t->name);
    const entry *e = lookup(k, t->name);
    if (e)
        return sl_error(SL_EPLUGIN, "plugin '%s': %s type '%s' is already provided by %s (%s)",
                        origin, kind, t->name, e->plugin->name, e->origin);
    /* A default its own type does not parse is the plugin's fault: refuse
     * it here rather than blame the user's options later. */
    if (sl_option_spec_check(t->options, t->name) < 0)
        return sl_error_context(SL_EPLUGIN, "plugin '%s': %s type '%s'", origin, kind, t->name);
    return SL_OK;
}

int sl_registry_add(const sl_plugin *p, const char *origin)
{
    listed types[MAX_TYPES_PER_KIND];
    /* Check everything first, so that a refused plugin registers nothing. */
    int total = 0;
    for (int k = 0; k < SL_KIND_COUNT; k++) {
        int n = list_types(p, (sl_kind)k, types, MAX_TYPES_PER_KIND);
        for (int i = 0; i < n; i++)
            SL_TRY(check_type(origin, (sl_kind)k, types, i));
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

/* ---- refusals ---------------------------------------------------------------- */

/* "kind:name", malloc'ed. */
static char *type_key(sl_kind kind, const char *name)
{
    size_t n = strlen(kind_names[kind]) + strlen(name) + 2;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "%s:%s", kind_names[kind], name);
    return key;
}

/* The file's base name without a trailing ".so". */
static char *stem_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    const char *base = slash ? slash + 1 : file;
    size_t n = strlen(base);
    if (n > 3 && strcmp(base + n - 3, ".so") == 0)
        n -= 3;
    return strndup(base, n);
}

static void note_types(failure *f, const sl_plugin *p)
{
    listed types[MAX_TYPES_PER_KIND];
    for (int k = 0; p && k < SL_KIND_COUNT; k++) {
        int n = list_types(p, (sl_kind)k, types, MAX_TYPES_PER_KIND);
        for (int i = 0; i < n; i++) {
            char **grown = types[i].name ? realloc(f->types, (size_t)(f->ntypes + 1) *
                                                                 sizeof *grown)
                                         : NULL;
            if (!grown)
                continue;
            f->types = grown;
            if ((grown[f->ntypes] = type_key((sl_kind)k, types[i].name)))
                f->ntypes++;
        }
    }
}

void sl_registry_note_failure(const char *message, const char *file, const sl_plugin *p)
{
    failure *grown = realloc(failures, (size_t)(nfailures + 1) * sizeof *grown);
    if (!grown)
        return;
    failures = grown;
    failure *f = &failures[nfailures];
    *f = (failure){.message = strdup(message), .stem = file ? stem_of(file) : NULL};
    if (!f->message) {
        free(f->stem);
        return;
    }
    note_types(f, p);
    nfailures++;
}

int sl_registry_failure_count(void) { return nfailures; }

const char *sl_registry_failure(int i) { return i >= 0 && i < nfailures ? failures[i].message : NULL; }

/* The refusal that explains why `name` of `kind` is missing: a refused
 * descriptor that lists it, else a refused file named after it. */
static const char *refusal_for(sl_kind kind, const char *name)
{
    char *key = type_key(kind, name);
    const char *why = NULL;
    for (int i = 0; key && !why && i < nfailures; i++)
        for (int j = 0; !why && j < failures[i].ntypes; j++)
            if (strcmp(failures[i].types[j], key) == 0)
                why = failures[i].message;
    free(key);
    for (int i = 0; !why && i < nfailures; i++)
        if (failures[i].stem && strcmp(failures[i].stem, name) == 0)
            why = failures[i].message;
    return why;
}

/* ---- lookups ------------------------------------------------------------------ */

const void *sl_registry_lookup(sl_kind kind, const char *name)
{
    const entry *e = name ? lookup(kind, name) : NULL;
    if (e)
        return e->type;
    const char *why = name ? refusal_for(kind, name) : NULL;
    if (why)
        sl_error(SL_ENOTFOUND, "no %s type '%s' (its plugin was refused: %s)",
                 sl_kind_name(kind), name, why);
    else
        sl_error(SL_ENOTFOUND, "no %s type '%s'; `symlab plugins` lists what is available",
                 sl_kind_name(kind), name ? name : "(null)");
    return NULL;
}

int sl_registry_get(int i, sl_registry_entry *out)
{
    if (i < 0 || i >= nentries)
        return sl_error(SL_EINVAL, "registry: index %d out of range", i);
    const entry *e = &entries[i];
    *out = (sl_registry_entry){e->kind, e->name, e->summary, e->options, e->plugin, e->origin};
    return SL_OK;
}

int sl_registry_size(void) { return nentries; }

const sl_plugin *sl_registry_provider(sl_kind kind, const void *type)
{
    for (int i = 0; i < nentries; i++)
        if (entries[i].kind == kind && entries[i].type == type)
            return entries[i].plugin;
    return NULL;
}
