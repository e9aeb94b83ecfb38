/* symlab/parallel.h — symlab's thread pool: one parallel loop over [0, n).
 *
 * The pool has sl_get_threads() - 1 worker threads (ops.h: sl_set_threads),
 * started at the first loop that splits and kept for the life of the
 * process; the calling thread works too.  A loop is cut into parts by a
 * fixed rule that depends only on n, grain and the thread count:
 *
 *     parts = min(4 threads, max(1, n / grain))    (0 when n <= 0;
 *                                                   1 with one thread)
 *     part p covers [p n / parts, (p + 1) n / parts)   (integer division)
 *
 * and fn(ctx, begin, end, part) is called once per part.  Which thread runs
 * a part is NOT fixed: idle threads take the next part not yet taken, so a
 * worker descheduled by a busy machine never stalls the loop (the caller
 * takes its parts).  Results that depend only on the part — per-part
 * partial sums combined in part order afterwards — are therefore
 * bit-identical for a given thread count, whoever ran what.
 *
 * Waiting workers poll briefly (half a millisecond) and then sleep in the
 * kernel, so the pool does not burn a core another process needs.
 *
 * A loop started from inside fn, or while another thread of the process
 * is running a loop, runs its parts one after another on the calling
 * thread (same parts, same results).  sl_set_threads must not be called
 * while a loop runs.  Thread start-up failure is not an error: the loop
 * then runs on the calling thread.
 */
#ifndef SYMLAB_PARALLEL_H
#define SYMLAB_PARALLEL_H

#include <stdint.h>

#include <symlab/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One part of a loop: items [begin, end) of part `part` (0 <= part <
 * sl_parallel_parts(n, grain)), e.g. to index per-part scratch. */
typedef void (*sl_parallel_fn)(void *ctx, int64_t begin, int64_t end, int part);

/* Number of parts sl_parallel_for(n, grain, ...) uses at the current thread
 * count (formula above; grain < 1 counts as 1).  Size per-part scratch
 * with it (at most 4 sl_get_threads()). */
SL_API int sl_parallel_parts(int64_t n, int64_t grain);

/* Calls fn on every part of [0, n) and returns when all have returned.
 * `grain` is the smallest number of items worth a part of its own (a
 * part costing less than ~10 microseconds does not pay for the hand-off).
 * fn must not fail: collect errors in ctx per part. */
SL_API void sl_parallel_for(int64_t n, int64_t grain, sl_parallel_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
