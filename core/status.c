/* core/status.c — the per-thread message of the last failure. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define SL_ERROR_MAX 1024

static _Thread_local char last_error[SL_ERROR_MAX];

const char *sl_last_error(void) { return last_error; }

int sl_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

int sl_error_context(int code, const char *fmt, ...)
{
    char prefix[SL_ERROR_MAX];
    char old[SL_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* Truncation of over-long messages is acceptable; using the result
     * tells the compiler so. */
    if (snprintf(last_error, sizeof last_error, "%s: %s", prefix, old) < 0)
        last_error[0] = '\0';
    return code;
}

const char *sl_status_name(int code)
{
    switch (code) {
    case SL_OK: return "success";
    case SL_EINVAL: return "invalid argument";
    case SL_ENOMEM: return "out of memory";
    case SL_EIO: return "input/output error";
    case SL_EFORMAT: return "malformed data";
    case SL_ENOTFOUND: return "not found";
    case SL_EABI: return "incompatible ABI";
    case SL_ESHAPE: return "shape mismatch";
    case SL_EDTYPE: return "unsupported dtype";
    case SL_ENUMERIC: return "non-finite value";
    case SL_EPLUGIN: return "plugin failure";
    case SL_ESTATE: return "wrong state";
    default: return "unknown error";
    }
}
