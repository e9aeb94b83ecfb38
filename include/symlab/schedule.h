/* symlab/schedule.h — learning-rate schedules as objects.
 *
 * A schedule turns a count of finished intervals (steps or epochs) into a
 * learning rate, relative to the base rate it captures the first time it is
 * applied (the optimizer's lr then).  sl_train applies one before every
 * interval and advances it after; a custom loop does the same with
 * sl_schedule_lr and sl_schedule_advance.  Kinds and their options:
 *
 *   "step"    lr = base * gamma^floor(t / step_size), computed as PyTorch's
 *             StepLR does: the previous rate times gamma at each boundary
 *             (so it matches a hand-written `lr = lr * gamma` exactly);
 *   "cosine"  lr = eta_min + (base - eta_min) (1 + cos(pi t / t_max)) / 2
 *             for t < t_max, then eta_min (PyTorch's CosineAnnealingLR in
 *             closed form, held at its floor instead of rising again);
 *   "warmup"  lr = base (start_factor + (1 - start_factor) t / length) for
 *             t < length, then the `after` schedule counted from 0 (or
 *             base without one): warmup followed by cosine, say.
 *
 * Every kind has "interval" ("epoch" or "step"); a warmup and the schedule
 * after it must count the same interval.
 *
 * A schedule's whole state is (base lr, count): sl_schedule_restore replays
 * the count, so a resumed run gets bit-identical rates.  sl_train's
 * training checkpoints (train.h) save and restore this pair with the
 * model and optimizer; a custom loop keeps it beside its own checkpoint.
 */
#ifndef SYMLAB_SCHEDULE_H
#define SYMLAB_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/options.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_schedule sl_schedule; /* opaque */

/* The option spec of `kind`, or NULL (with SL_ENOTFOUND set) if there is no
 * such kind. */
SL_API const sl_option_spec *sl_schedule_options(const char *kind);

/* A new schedule of `kind` from `opt` (validated against its spec; may be
 * NULL when no option is required).  `after` is only for "warmup" and may
 * be NULL; it is borrowed, must outlive the new schedule, and advances with
 * it (use it in one warmup only). */
SL_API int sl_schedule_new(const char *kind, const sl_options *opt, sl_schedule *after,
                           sl_schedule **out);
SL_API void sl_schedule_free(sl_schedule *s);

SL_API const char *sl_schedule_kind(const sl_schedule *s);
/* True if it counts steps, false if epochs. */
SL_API bool sl_schedule_per_step(const sl_schedule *s);

/* The learning rate for the current count.  The first call fixes the base
 * rate to `base_lr` (later calls ignore the argument). */
SL_API double sl_schedule_lr(sl_schedule *s, double base_lr);
/* Counts one finished interval. */
SL_API void sl_schedule_advance(sl_schedule *s);

/* The state: intervals counted, and the base rate (NaN before the first
 * sl_schedule_lr). */
SL_API int64_t sl_schedule_count(const sl_schedule *s);
SL_API double sl_schedule_base_lr(const sl_schedule *s);
/* Puts the schedule (and its `after`) in the state (base_lr, count), as if
 * it had been applied and advanced `count` times from base_lr.  SL_EINVAL
 * for a negative count or a base rate that is negative or not finite. */
SL_API int sl_schedule_restore(sl_schedule *s, double base_lr, int64_t count);

#ifdef __cplusplus
}
#endif
#endif
