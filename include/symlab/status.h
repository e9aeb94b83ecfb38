/* symlab/status.h — status codes and the error message of the last failure.
 *
 * Every fallible libsymlab function returns an int: SL_OK (0) on success, a
 * negative sl_status on failure.  On failure it also records a one-line,
 * human-readable message (no trailing newline) that names what failed: the
 * option, the file, the module.  The message is per thread and stays until
 * the next failure on that thread.  Library code never prints and never
 * exits; the symlab executable and the Lua binding decide how to report.
 */
#ifndef SYMLAB_STATUS_H
#define SYMLAB_STATUS_H

#include <symlab/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_status {
    SL_OK = 0,
    SL_EINVAL = -1,    /* bad argument or option value */
    SL_ENOMEM = -2,    /* allocation failed */
    SL_EIO = -3,       /* a file could not be opened, read or written */
    SL_EFORMAT = -4,   /* a file is truncated or corrupt */
    SL_ENOTFOUND = -5, /* no technique, parameter or file of that name */
    SL_EABI = -6,      /* plugin built against an incompatible ABI */
    SL_ESHAPE = -7,    /* tensor shapes do not fit */
    SL_EDTYPE = -8,    /* tensor dtype not supported here */
    SL_ENUMERIC = -9,  /* NaN or Inf where a finite number was needed */
    SL_EPLUGIN = -10,  /* a plugin could not be loaded or failed to start */
    SL_ESTATE = -11    /* called in the wrong state (e.g. backward before forward) */
} sl_status;

/* The message of the last failure on this thread ("" if none).  The pointer
 * stays valid until the next failure on this thread. */
SL_API const char *sl_last_error(void);

/* Records a message (printf format) and returns `code`, so that a failure
 * reads `return sl_error(SL_EINVAL, "linear: in_features must be > 0");`. */
SL_API int sl_error(int code, const char *fmt, ...) SL_PRINTF(2, 3);

/* Prepends context to the current message and returns `code`:
 * sl_error_context(rc, "module 3 (linear)") turns "bad shape" into
 * "module 3 (linear): bad shape". */
SL_API int sl_error_context(int code, const char *fmt, ...) SL_PRINTF(2, 3);

/* A short name for a status code ("invalid argument"). */
SL_API const char *sl_status_name(int code);

/* Propagate a failure: evaluates `expr` once and returns its status if < 0. */
#define SL_TRY(expr)                   \
    do {                               \
        int sl_try_rc_ = (expr);       \
        if (sl_try_rc_ < 0)            \
            return sl_try_rc_;         \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
