/* core/registry_internal.h — between the registry and the plugin loader. */
#ifndef SYMLAB_CORE_REGISTRY_INTERNAL_H
#define SYMLAB_CORE_REGISTRY_INTERNAL_H

#include <symlab/plugin.h>

/* The built-in descriptor (core/builtins.c). */
const sl_plugin *sl_builtin_plugin(void);

/* Registers every type of a descriptor, or nothing if any name is taken. */
int sl_registry_add(const sl_plugin *p, const char *origin);

/* The descriptor that registered `type` (a pointer to a type of `kind`),
 * or NULL if no registered plugin provides it. */
const sl_plugin *sl_registry_provider(sl_kind kind, const void *type);

/* Keeps the message of a plugin that could not be loaded. */
void sl_registry_note_failure(const char *message);

/* Loads every *.so in dir (sorted by name), noting failures; a file whose
 * name matches an already-loaded plugin's is shadowed and skipped. */
void sl_loader_scan(const char *dir);

#endif
