/* core/options.c — typed key/value options validated against a spec. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct option {
    char *key;
    sl_option_type type; /* the type of the value as given */
    int64_t i;
    double f;
    bool b;
    char *s;             /* STRING values, and raw text from sl_options_parse */
    bool raw;            /* from text: typed by the spec at validation */
    sl_hook **hooks;     /* HOOKS values: an owned array of borrowed hooks */
    int nhooks;
} option;

struct sl_options {
    option *items;
    int count, capacity;
    const sl_option_spec *spec; /* bound by sl_options_validate */
    const char *owner;
};

sl_options *sl_options_new(void)
{
    sl_options *o = calloc(1, sizeof *o);
    if (!o)
        sl_error(SL_ENOMEM, "out of memory");
    return o;
}

static void clear_value(option *it)
{
    free(it->s);
    it->s = NULL;
    it->raw = false;
    free(it->hooks);
    it->hooks = NULL;
    it->nhooks = 0;
}

void sl_options_free(sl_options *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->count; i++) {
        clear_value(&o->items[i]);
        free(o->items[i].key);
    }
    free(o->items);
    free(o);
}

static option *find(const sl_options *o, const char *key)
{
    for (int i = 0; o && i < o->count; i++)
        if (strcmp(o->items[i].key, key) == 0)
            return &o->items[i];
    return NULL;
}

/* The entry for key, created empty if new. */
static option *slot(sl_options *o, const char *key)
{
    if (!key || !*key) {
        sl_error(SL_EINVAL, "options: empty key");
        return NULL;
    }
    option *it = find(o, key);
    if (it) {
        clear_value(it);
        return it;
    }
    if (o->count == o->capacity) {
        int cap = o->capacity ? 2 * o->capacity : 8;
        option *items = realloc(o->items, (size_t)cap * sizeof *items);
        if (!items) {
            sl_error(SL_ENOMEM, "out of memory");
            return NULL;
        }
        o->items = items;
        o->capacity = cap;
    }
    it = &o->items[o->count];
    memset(it, 0, sizeof *it);
    if (!(it->key = sl_strdup(key)))
        return NULL;
    o->count++;
    return it;
}

int sl_options_set_int(sl_options *o, const char *key, int64_t value)
{
    option *it = slot(o, key);
    if (!it)
        return SL_EINVAL;
    it->type = SL_OPT_INT;
    it->i = value;
    return SL_OK;
}

int sl_options_set_float(sl_options *o, const char *key, double value)
{
    option *it = slot(o, key);
    if (!it)
        return SL_EINVAL;
    it->type = SL_OPT_FLOAT;
    it->f = value;
    return SL_OK;
}

int sl_options_set_bool(sl_options *o, const char *key, bool value)
{
    option *it = slot(o, key);
    if (!it)
        return SL_EINVAL;
    it->type = SL_OPT_BOOL;
    it->b = value;
    return SL_OK;
}

int sl_options_set_string(sl_options *o, const char *key, const char *value)
{
    option *it = slot(o, key);
    if (!it)
        return SL_EINVAL;
    it->type = SL_OPT_STRING;
    if (!(it->s = sl_strdup(value ? value : "")))
        return SL_ENOMEM;
    return SL_OK;
}

/* An owned copy of n hook pointers into *out (NULL for n == 0). */
static int copy_hooks(sl_hook *const *hooks, int n, sl_hook ***out)
{
    *out = NULL;
    if (n <= 0)
        return SL_OK;
    if (!(*out = malloc((size_t)n * sizeof **out)))
        return sl_error(SL_ENOMEM, "out of memory");
    memcpy(*out, hooks, (size_t)n * sizeof **out);
    return SL_OK;
}

int sl_options_set_hooks(sl_options *o, const char *key, sl_hook *const *hooks, int n)
{
    if (n < 0 || (n > 0 && !hooks))
        return sl_error(SL_EINVAL, "options: option '%s' needs a list of %d hooks",
                        key ? key : "(null)", n);
    for (int i = 0; i < n; i++)
        if (!hooks[i])
            return sl_error(SL_EINVAL, "options: option '%s': hook %d is NULL",
                            key ? key : "(null)", i + 1);
    option *it = slot(o, key);
    if (!it)
        return SL_EINVAL;
    it->type = SL_OPT_HOOKS;
    SL_TRY(copy_hooks(hooks, n, &it->hooks));
    it->nhooks = n;
    return SL_OK;
}

int sl_options_parse(sl_options *o, const char *text)
{
    const char *p = text;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p)
            return sl_error(SL_EINVAL, "options: expected key=value, got '%.*s'", (int)len, p);
        char key[128];
        size_t klen = (size_t)(eq - p);
        if (klen >= sizeof key)
            return sl_error(SL_EINVAL, "options: key '%.*s' too long", (int)klen, p);
        memcpy(key, p, klen);
        key[klen] = '\0';
        option *it = slot(o, key);
        if (!it)
            return SL_EINVAL;
        it->type = SL_OPT_STRING;
        it->raw = true;
        if (!(it->s = strndup(eq + 1, len - klen - 1)))
            return sl_error(SL_ENOMEM, "out of memory");
        p = end ? end + 1 : NULL;
    }
    return SL_OK;
}

sl_options *sl_options_copy(const sl_options *o)
{
    sl_options *c = sl_options_new();
    for (int i = 0; c && o && i < o->count; i++) {
        const option *it = &o->items[i];
        option *d = slot(c, it->key);
        if (!d || (it->s && !(d->s = sl_strdup(it->s))) ||
            copy_hooks(it->hooks, it->nhooks, &d->hooks) < 0) {
            sl_options_free(c);
            return NULL;
        }
        d->type = it->type;
        d->i = it->i;
        d->f = it->f;
        d->b = it->b;
        d->raw = it->raw;
        d->nhooks = it->nhooks;
    }
    return c;
}

static const char *type_name(sl_option_type t)
{
    switch (t) {
    case SL_OPT_INT: return "an integer";
    case SL_OPT_FLOAT: return "a number";
    case SL_OPT_BOOL: return "a boolean";
    case SL_OPT_STRING: return "a string";
    case SL_OPT_HOOKS: return "a list of hooks";
    }
    return "?";
}

static bool in_choices(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, value, n) == 0)
            return true;
        c = bar ? bar + 1 : NULL;
    }
    return false;
}

/* Parses text as a value of type t into *out (key and owner for messages). */
static int parse_text(const char *owner, const char *key, sl_option_type t, const char *text,
                      option *out)
{
    char *end = NULL;
    errno = 0;
    switch (t) {
    case SL_OPT_INT:
        out->i = strtoll(text, &end, 10);
        if (!*text || *end || errno)
            return sl_error(SL_EINVAL, "%s: option '%s' expects an integer, got '%s'", owner,
                            key, text);
        break;
    case SL_OPT_FLOAT:
        out->f = strtod(text, &end);
        if (!*text || *end || errno)
            return sl_error(SL_EINVAL, "%s: option '%s' expects a number, got '%s'", owner, key,
                            text);
        break;
    case SL_OPT_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            out->b = true;
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            out->b = false;
        else
            return sl_error(SL_EINVAL, "%s: option '%s' expects true or false, got '%s'", owner,
                            key, text);
        break;
    case SL_OPT_STRING:
        break;
    case SL_OPT_HOOKS: /* hooks are objects: only "no hooks" has a text form */
        if (*text)
            return sl_error(SL_EINVAL, "%s: option '%s' takes a list of hooks (from Lua or "
                            "C), not the text '%s'", owner, key, text);
        out->hooks = NULL;
        out->nhooks = 0;
        break;
    }
    out->type = t;
    return SL_OK;
}

/* Converts a user value to the spec's type where that is lossless. */
static int coerce(const char *owner, const sl_option_spec *sp, option *it)
{
    if (it->raw) {
        SL_TRY(parse_text(owner, sp->name, sp->type, it->s, it));
        it->raw = false;
        if (sp->type != SL_OPT_STRING) {
            free(it->s);
            it->s = NULL;
        }
    } else if (it->type == SL_OPT_INT && sp->type == SL_OPT_FLOAT) {
        it->f = (double)it->i;
        it->type = SL_OPT_FLOAT;
    } else if (it->type == SL_OPT_FLOAT && sp->type == SL_OPT_INT && isfinite(it->f) &&
               it->f == floor(it->f) && fabs(it->f) < 9.0e15) {
        it->i = (int64_t)it->f;
        it->type = SL_OPT_INT;
    }
    if (it->type != sp->type)
        return sl_error(SL_EINVAL, "%s: option '%s' expects %s, got %s", owner, sp->name,
                        type_name(sp->type), type_name(it->type));
    if (sp->type == SL_OPT_FLOAT && !isfinite(it->f))
        return sl_error(SL_EINVAL, "%s: option '%s' must be finite", owner, sp->name);
    if (sp->type == SL_OPT_STRING && sp->choices && !in_choices(sp->choices, it->s))
        return sl_error(SL_EINVAL, "%s: option '%s' must be one of %s, got '%s'", owner,
                        sp->name, sp->choices, it->s);
    return SL_OK;
}

static const sl_option_spec *spec_find(const sl_option_spec *spec, const char *key)
{
    for (const sl_option_spec *sp = spec; sp && sp->name; sp++)
        if (strcmp(sp->name, key) == 0)
            return sp;
    return NULL;
}

int sl_option_spec_check(const sl_option_spec *spec, const char *owner)
{
    for (const sl_option_spec *sp = spec; sp && sp->name; sp++) {
        if (!sp->default_value)
            continue;
        option d = {0};
        bool parses = parse_text(owner, sp->name, sp->type, sp->default_value, &d) == SL_OK;
        if (!parses || (sp->type == SL_OPT_STRING && sp->choices &&
                        !in_choices(sp->choices, sp->default_value)))
            return sl_error(SL_EINVAL, "%s: its own default '%s' of option '%s' is not %s%s "
                            "(a bug in %s, not in the options given)", owner, sp->default_value,
                            sp->name, parses ? "among " : type_name(sp->type),
                            parses ? sp->choices : "", owner);
    }
    return SL_OK;
}

int sl_options_validate(sl_options *o, const sl_option_spec *spec, const char *owner)
{
    if (!o)
        return sl_error(SL_EINVAL, "%s: no options object", owner);
    SL_TRY(sl_option_spec_check(spec, owner));
    for (const sl_option_spec *sp = spec; sp && sp->name; sp++)
        if (!sp->default_value && !find(o, sp->name))
            return sl_error(SL_EINVAL, "%s: missing required option '%s' (%s)", owner, sp->name,
                            sp->help ? sp->help : type_name(sp->type));
    for (int i = 0; i < o->count; i++) {
        const sl_option_spec *sp = spec_find(spec, o->items[i].key);
        if (!sp)
            return sl_error(SL_EINVAL, "%s: unknown option '%s'", owner, o->items[i].key);
        SL_TRY(coerce(owner, sp, &o->items[i]));
    }
    o->spec = spec;
    o->owner = owner;
    return SL_OK;
}

/* A getter asked for a key its technique does not declare with that type:
 * a bug in the technique (a typo in the key, a spec out of step with the
 * code), which would otherwise read as a silent 0 / false / "".  Recorded
 * as an error; the sanitizer build (configure --enable-sanitizers), which
 * the test suite runs under in CI, aborts so that the bug cannot pass. */
static void misuse(const sl_options *o, const char *key, sl_option_type t)
{
    const sl_option_spec *sp = o ? spec_find(o->spec, key) : NULL;
    const char *owner = o && o->owner ? o->owner : "options";
    if (!sp)
        sl_error(SL_EINVAL, "%s: getter for option '%s', which %s", owner, key ? key : "(null)",
                 o && o->spec ? "is not declared" : "was never validated against a spec");
    else
        sl_error(SL_EINVAL, "%s: option '%s' is %s, read as %s", owner, key, type_name(sp->type),
                 type_name(t));
#ifdef SL_ABORT_ON_MISUSE
    fprintf(stderr, "symlab: %s (aborting: a bug in the caller)\n", sl_last_error());
    abort();
#endif
}

/* The user's value for key, or the spec default parsed into *tmp; NULL
 * (after misuse()) if the key is not declared with type t. */
static const option *lookup(const sl_options *o, const char *key, sl_option_type t, option *tmp)
{
    const option *it = key ? find(o, key) : NULL;
    if (it && it->type == t && !it->raw)
        return it;
    const sl_option_spec *sp = o && key ? spec_find(o->spec, key) : NULL;
    memset(tmp, 0, sizeof *tmp);
    if (!sp || sp->type != t || !sp->default_value ||
        parse_text(o->owner ? o->owner : "options", key, t, sp->default_value, tmp) < 0) {
        misuse(o, key, t);
        return NULL;
    }
    tmp->s = (char *)sp->default_value; /* borrowed, never freed */
    return tmp;
}

int64_t sl_options_int(const sl_options *o, const char *key)
{
    option tmp;
    const option *it = lookup(o, key, SL_OPT_INT, &tmp);
    return it ? it->i : 0;
}

double sl_options_float(const sl_options *o, const char *key)
{
    option tmp;
    const option *it = lookup(o, key, SL_OPT_FLOAT, &tmp);
    return it ? it->f : 0.0;
}

bool sl_options_bool(const sl_options *o, const char *key)
{
    option tmp;
    const option *it = lookup(o, key, SL_OPT_BOOL, &tmp);
    return it ? it->b : false;
}

const char *sl_options_string(const sl_options *o, const char *key)
{
    option tmp;
    const option *it = lookup(o, key, SL_OPT_STRING, &tmp);
    return it && it->s ? it->s : "";
}

sl_hook *const *sl_options_hooks(const sl_options *o, const char *key, int *n)
{
    option tmp;
    const option *it = lookup(o, key, SL_OPT_HOOKS, &tmp);
    *n = it ? it->nhooks : 0;
    return it ? it->hooks : NULL;
}

bool sl_options_has(const sl_options *o, const char *key) { return find(o, key) != NULL; }

int sl_options_count(const sl_options *o) { return o ? o->count : 0; }

const char *sl_options_key(const sl_options *o, int i)
{
    return o && i >= 0 && i < o->count ? o->items[i].key : NULL;
}
