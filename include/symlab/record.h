/* symlab/record.h — ordered named numbers: what probes return, what hooks
 * report during training, one row of a training history.
 */
#ifndef SYMLAB_RECORD_H
#define SYMLAB_RECORD_H

#include <symlab/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_record sl_record; /* opaque */

SL_API sl_record *sl_record_new(void);   /* NULL when out of memory */
SL_API void sl_record_free(sl_record *r);
/* Removes every entry, keeping the memory (no allocation when refilled with
 * the same names). */
SL_API void sl_record_clear(sl_record *r);
/* Sets `name` to `value`, appending it if new (insertion order is kept). */
SL_API int sl_record_set(sl_record *r, const char *name, double value);
/* The value of `name` into *value; SL_ENOTFOUND if absent. */
SL_API int sl_record_get(const sl_record *r, const char *name, double *value);
SL_API int sl_record_count(const sl_record *r);
/* The i-th entry (0 <= i < count). */
SL_API const char *sl_record_name(const sl_record *r, int i);
SL_API double sl_record_value(const sl_record *r, int i);

#ifdef __cplusplus
}
#endif
#endif
