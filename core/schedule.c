/* core/schedule.c — learning-rate schedules (schedule.h).
 *
 * A schedule is a pure function of (base lr, count) except for "step",
 * whose rate is kept as a running product so that it rounds exactly as a
 * hand-written decay loop does.  Setting the base or restoring a state
 * therefore replays the count from the start: the same (base, count) always
 * gives the same bits.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef enum kind { K_STEP, K_COSINE, K_WARMUP } kind;

struct sl_schedule {
    kind kind;
    bool per_step;
    int64_t length;      /* step: step_size; cosine: t_max; warmup: length */
    double factor;       /* step: gamma; cosine: eta_min; warmup: start_factor */
    sl_schedule *after;  /* warmup only; borrowed */
    int64_t count;       /* intervals finished */
    double base;         /* NaN until the first sl_schedule_lr */
    double cur;          /* step: the current rate */
};

#define INTERVAL {"interval", SL_OPT_STRING, "epoch", "what one count is", "epoch|step"}
static const sl_option_spec step_spec[] = {
    {"step_size", SL_OPT_INT, NULL, "intervals between two decays", NULL},
    {"gamma", SL_OPT_FLOAT, "0.1", "factor applied at each decay", NULL},
    INTERVAL,
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};
static const sl_option_spec cosine_spec[] = {
    {"t_max", SL_OPT_INT, NULL, "intervals from the base rate down to eta_min", NULL},
    {"eta_min", SL_OPT_FLOAT, "0", "the final learning rate", NULL},
    INTERVAL,
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};
static const sl_option_spec warmup_spec[] = {
    {"length", SL_OPT_INT, NULL, "intervals of linear warmup", NULL},
    {"start_factor", SL_OPT_FLOAT, "0", "fraction of the base rate at count 0", NULL},
    INTERVAL,
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static const struct {
    const char *name;
    const sl_option_spec *spec;
    const char *length_key, *factor_key;
} kinds[] = {[K_STEP] = {"step", step_spec, "step_size", "gamma"},
             [K_COSINE] = {"cosine", cosine_spec, "t_max", "eta_min"},
             [K_WARMUP] = {"warmup", warmup_spec, "length", "start_factor"}};

static int find_kind(const char *name)
{
    for (size_t k = 0; name && k < SL_COUNTOF(kinds); k++)
        if (strcmp(kinds[k].name, name) == 0)
            return (int)k;
    return sl_error(SL_ENOTFOUND, "no schedule '%s' (step, cosine or warmup)",
                    name ? name : "(null)");
}

const sl_option_spec *sl_schedule_options(const char *kind_name)
{
    int k = find_kind(kind_name);
    return k < 0 ? NULL : kinds[k].spec;
}

/* The factor's range: gamma and eta_min >= 0, start_factor in [0, 1]. */
static int check_values(const sl_schedule *s)
{
    const char *name = kinds[s->kind].name;
    if (s->length < 1)
        return sl_error(SL_EINVAL, "schedule %s: %s must be >= 1, got %lld", name,
                        kinds[s->kind].length_key, (long long)s->length);
    if (!(s->factor >= 0) || !isfinite(s->factor) || (s->kind == K_WARMUP && s->factor > 1))
        return sl_error(SL_EINVAL, "schedule %s: %s must be %s, got %g", name,
                        kinds[s->kind].factor_key,
                        s->kind == K_WARMUP ? "in [0, 1]" : "finite and >= 0", s->factor);
    if (s->after && s->kind != K_WARMUP)
        return sl_error(SL_EINVAL, "schedule %s: only a warmup takes an 'after' schedule", name);
    if (s->after && s->after->per_step != s->per_step)
        return sl_error(SL_EINVAL, "schedule warmup: it counts %ss but its 'after' schedule "
                        "counts %ss", s->per_step ? "step" : "epoch",
                        s->after->per_step ? "step" : "epoch");
    return SL_OK;
}

int sl_schedule_new(const char *kind_name, const sl_options *opt, sl_schedule *after,
                    sl_schedule **out)
{
    if (!out)
        return sl_error(SL_EINVAL, "sl_schedule_new: out is NULL");
    *out = NULL;
    int k = find_kind(kind_name);
    if (k < 0)
        return k;
    char owner[32];
    snprintf(owner, sizeof owner, "schedule %s", kinds[k].name);
    sl_options *own = sl_options_copy(opt);
    if (!own)
        return sl_error(SL_ENOMEM, "%s: out of memory", owner);
    int rc = sl_options_validate(own, kinds[k].spec, owner);
    sl_schedule s = {.kind = (kind)k, .after = after, .base = NAN, .cur = NAN};
    if (rc == SL_OK) {
        s.per_step = strcmp(sl_options_string(own, "interval"), "step") == 0;
        s.length = sl_options_int(own, kinds[k].length_key);
        s.factor = sl_options_float(own, kinds[k].factor_key);
        rc = check_values(&s);
    }
    sl_options_free(own);
    if (rc < 0)
        return rc;
    if (!(*out = malloc(sizeof **out)))
        return sl_error(SL_ENOMEM, "%s: out of memory", owner);
    **out = s;
    return SL_OK;
}

void sl_schedule_free(sl_schedule *s) { free(s); }

const char *sl_schedule_kind(const sl_schedule *s) { return kinds[s->kind].name; }
bool sl_schedule_per_step(const sl_schedule *s) { return s->per_step; }
int64_t sl_schedule_count(const sl_schedule *s) { return s->count; }
double sl_schedule_base_lr(const sl_schedule *s) { return s->base; }

static double value(const sl_schedule *s)
{
    double t = (double)s->count, n = (double)s->length;
    switch (s->kind) {
    case K_STEP:
        return s->cur;
    case K_COSINE:
        if (s->count >= s->length)
            return s->factor;
        return s->factor + (s->base - s->factor) * (1 + cos(M_PI * t / n)) / 2;
    case K_WARMUP:
        if (s->count < s->length)
            return s->base * (s->factor + (1 - s->factor) * t / n);
        return s->after ? value(s->after) : s->base;
    }
    return s->base;
}

void sl_schedule_advance(sl_schedule *s)
{
    s->count++;
    if (s->kind == K_STEP && s->count % s->length == 0)
        s->cur *= s->factor;
    /* The after schedule starts counting once the warmup is over. */
    if (s->kind == K_WARMUP && s->after && s->count > s->length)
        sl_schedule_advance(s->after);
}

/* Back to count 0 at `base`, this schedule and the one after it. */
static void rewind_to(sl_schedule *s, double base)
{
    s->count = 0;
    s->base = s->cur = base;
    if (s->after)
        rewind_to(s->after, base);
}

int sl_schedule_restore(sl_schedule *s, double base_lr, int64_t count)
{
    if (count < 0 || !(base_lr >= 0) || !isfinite(base_lr))
        return sl_error(SL_EINVAL, "schedule %s: cannot restore count %lld at base lr %g",
                        kinds[s->kind].name, (long long)count, base_lr);
    rewind_to(s, base_lr);
    for (int64_t i = 0; i < count; i++)
        sl_schedule_advance(s);
    return SL_OK;
}

double sl_schedule_lr(sl_schedule *s, double base_lr)
{
    if (isnan(s->base))
        (void)sl_schedule_restore(s, base_lr, s->count); /* base_lr is a checked optimizer lr */
    return value(s);
}
