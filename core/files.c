/* core/files.c — sl_file_temp: a writer's own temporary file beside a
 * target, for writers outside the library (the Lua results module) that
 * write it themselves and rename it; atomic.c does the work. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

int sl_file_temp(const char *path, char **tmp)
{
    if (!path || !*path || !tmp)
        return sl_error(SL_EINVAL, "sl_file_temp: path and tmp are required");
    sl_atomic_file a;
    SL_TRY(sl_atomic_begin(path, &a));
    fclose(a.f);
    *tmp = a.tmp; /* the caller's now */
    return SL_OK;
}
