/* symlab/rng.h — deterministic random numbers.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64.  The state is a
 * plain value: copy it to replay a stream.  Every random choice symlab makes
 * (initialisation, shuffling, dropout masks, anchors) draws from an sl_rng
 * derived from the user's seed, so one seed and one thread count reproduce a
 * run bit for bit.
 */
#ifndef SYMLAB_RNG_H
#define SYMLAB_RNG_H

#include <stdint.h>

#include <symlab/export.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_rng {
    uint64_t s[4];
} sl_rng;

/* Seeds r from a 64-bit seed (any value, including 0). */
SL_API void sl_rng_seed(sl_rng *r, uint64_t seed);
/* A new generator for a named sub-purpose: the same (seed, stream) always
 * gives the same generator, and different streams are independent.  Used so
 * that, e.g., module 3's dropout noise does not shift when module 1 draws. */
SL_API void sl_rng_derive(sl_rng *r, uint64_t seed, uint64_t stream);
SL_API uint64_t sl_rng_next(sl_rng *r);          /* uniform 64-bit */
SL_API double sl_rng_uniform(sl_rng *r);         /* uniform in [0, 1), 53 bits */
SL_API double sl_rng_normal(sl_rng *r);          /* standard normal */
SL_API uint64_t sl_rng_below(sl_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n > 0 */
/* Fisher-Yates shuffle of perm[0..n). */
SL_API void sl_rng_shuffle(sl_rng *r, int64_t *perm, int64_t n);

/* Fill a real tensor (any strides) with U[lo, hi) or N(mean, std^2). */
SL_API int sl_tensor_uniform(sl_tensor *t, sl_rng *r, double lo, double hi);
SL_API int sl_tensor_normal(sl_tensor *t, sl_rng *r, double mean, double std);

#ifdef __cplusplus
}
#endif
#endif
