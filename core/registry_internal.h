/* core/registry_internal.h — between the registry (the table, a leaf) and
 * the loader (discovery: search path, directory scans, dlopen). */
#ifndef SYMLAB_CORE_REGISTRY_INTERNAL_H
#define SYMLAB_CORE_REGISTRY_INTERNAL_H

#include <symlab/registry.h>

/* The built-in descriptor (core/builtins.c). */
const sl_plugin *sl_builtin_plugin(void);

/* Registers every type of a descriptor, or nothing if any is refused: a
 * name taken or listed twice, a MUST callback NULL, a broken option spec.
 * Messages start "plugin '<origin>': <kind> type '<name>'". */
int sl_registry_add(const sl_plugin *p, const char *origin);

/* The descriptor that registered `type` (a pointer to a type of `kind`),
 * or NULL if no registered plugin provides it. */
const sl_plugin *sl_registry_provider(sl_kind kind, const void *type);

/* The type of `kind` called `name` without loading anything; NULL with
 * SL_ENOTFOUND set (and the refusal that explains it, if one does). */
const void *sl_registry_lookup(sl_kind kind, const char *name);

/* Number of registered types, without loading anything. */
int sl_registry_size(void);

/* Keeps the message of a plugin file that could not be loaded, and the
 * names of the types its descriptor lists (p may be NULL when it could not
 * be read), so that a lookup of one of them can say why it is missing.
 * Copies everything: the plugin is unloaded afterwards. */
void sl_registry_note_failure(const char *message, const char *file, const sl_plugin *p);

#endif
