/* symlab/files.h — replacing a file atomically, as checkpoints and results
 * files are written.
 *
 * A writer creates a temporary file beside the target, writes it, then
 * renames it over the target: a reader (or a crash) sees the old file or
 * the new one, never half of one, and two writers of one path never share a
 * temporary (each gets its own name from mkstemp).
 *
 * Temporaries are named "<path>.tmp.<pid>.<6 characters>", the pid being
 * the writer's.  A writer killed before its rename (kill -9, power loss)
 * leaves its temporary behind; sl_file_temp removes such orphans of the
 * same path before creating its own.  It removes only names of exactly
 * that pattern, and only when the file has not been modified for 10
 * minutes AND its writer is no longer running on this machine, or when it
 * has not been modified for 24 hours.  The grace period protects a live
 * writer on another machine sharing the directory (whose pid means nothing
 * here): a writer is never idle between creating its temporary and
 * renaming it.  The 24 hours cover a pid reused by an unrelated process.
 * Names "<path>.tmp.<6 characters>" (without a pid, written by symlab 0.1
 * before this scheme) are removed after 24 hours.
 */
#ifndef SYMLAB_FILES_H
#define SYMLAB_FILES_H

#include <symlab/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Creates a new empty temporary file beside `path` (after removing stale
 * ones, see above) with the mode an existing `path` has, else rw-r--r--,
 * for a writer that writes it and renames it over `path` itself (or
 * removes it).  *tmp is its name (malloc'ed; the caller frees it).  SL_EIO
 * naming `path` if it cannot be created.  Checkpoints (sl_model_save) are
 * written this way inside the library. */
SL_API int sl_file_temp(const char *path, char **tmp);

#ifdef __cplusplus
}
#endif
#endif
