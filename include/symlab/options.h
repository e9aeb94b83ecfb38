/* symlab/options.h — typed key/value options for techniques.
 *
 * Options reach plugins as an sl_options object, never as Lua values.  Each
 * technique declares its options in an sl_option_spec table; the host
 * validates a user's options against that table before the technique sees
 * them (unknown key, wrong type, value not among the choices, missing
 * required option: each an SL_EINVAL whose message names the technique and
 * the key).  Getters then return the user's value or the spec's default.
 */
#ifndef SYMLAB_OPTIONS_H
#define SYMLAB_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_option_type {
    SL_OPT_INT = 0,    /* int64_t; a float with an integral value is accepted */
    SL_OPT_FLOAT = 1,  /* double; an integer is accepted */
    SL_OPT_BOOL = 2,
    SL_OPT_STRING = 3,
    /* A list of hook instances (train.h), borrowed: for techniques that
     * train copies of a model the way sl_train would (a probe that trains
     * replicas).  Only C (sl_options_set_hooks) or the Lua binding (a list
     * of sl.hook objects) can give one, never text; a spec's default must
     * be "" (no hooks).  Appended in ABI minor 3. */
    SL_OPT_HOOKS = 4
} sl_option_type;

typedef struct sl_hook sl_hook; /* train.h */

/* One option of a technique.  A spec table ends with an entry whose name is
 * NULL. */
typedef struct sl_option_spec {
    const char *name;          /* lower_snake_case */
    sl_option_type type;
    const char *default_value; /* as text ("0.1", "true", "after"); NULL: required */
    const char *help;          /* one line, shown by `symlab describe` */
    const char *choices;       /* STRING only: "before|after|interleave", or NULL for any */
} sl_option_spec;

typedef struct sl_options sl_options; /* opaque */

/* A new, empty options object; NULL when out of memory. */
SL_API sl_options *sl_options_new(void);
SL_API void sl_options_free(sl_options *o);
/* A deep copy of o's values (not its bound spec): what a technique keeps
 * when it must validate a caller's const options.  o may be NULL (gives an
 * empty object).  NULL when out of memory. */
SL_API sl_options *sl_options_copy(const sl_options *o);

/* Setters copy key and value; setting a key again replaces its value. */
SL_API int sl_options_set_int(sl_options *o, const char *key, int64_t value);
SL_API int sl_options_set_float(sl_options *o, const char *key, double value);
SL_API int sl_options_set_bool(sl_options *o, const char *key, bool value);
SL_API int sl_options_set_string(sl_options *o, const char *key, const char *value);
/* Copies the list of n hook pointers (n >= 0; hooks may be NULL when n is
 * 0), not the hooks: the caller keeps them alive, and unused by anyone
 * else, while the options (or copies of them) are in use. */
SL_API int sl_options_set_hooks(sl_options *o, const char *key, sl_hook *const *hooks, int n);

/* Parses "key=value,key=value" as the command line gives it; values are typed
 * by the spec at validation time.  SL_EINVAL on a malformed pair. */
SL_API int sl_options_parse(sl_options *o, const char *text);

/* Checks o against spec on behalf of the technique `owner` and binds the spec
 * to o so that getters can fall back to defaults.  Also checks the spec's
 * own defaults (a broken default is the technique author's SL_EINVAL). */
SL_API int sl_options_validate(sl_options *o, const sl_option_spec *spec, const char *owner);

/* Getters: the user's value, else the default of the bound spec.  Asking for
 * a key that the spec does not declare, or with the wrong type (or of
 * options never validated, for a key the user did not set), is a bug in the
 * caller: the getter records an SL_EINVAL naming the technique and the key
 * (sl_last_error) and returns 0 / false / "".  A symlab built with
 * --enable-sanitizers aborts there instead, so tests cannot miss it. */
SL_API int64_t sl_options_int(const sl_options *o, const char *key);
SL_API double sl_options_float(const sl_options *o, const char *key);
SL_API bool sl_options_bool(const sl_options *o, const char *key);
SL_API const char *sl_options_string(const sl_options *o, const char *key);
/* The hooks given for key, their number in *n (0 and NULL: none). */
SL_API sl_hook *const *sl_options_hooks(const sl_options *o, const char *key, int *n);
/* True if the user gave the key (not just the default). */
SL_API bool sl_options_has(const sl_options *o, const char *key);

/* Number of keys the user set, and the i-th key in the order they were set
 * (for copying and printing). */
SL_API int sl_options_count(const sl_options *o);
SL_API const char *sl_options_key(const sl_options *o, int i);

#ifdef __cplusplus
}
#endif
#endif
