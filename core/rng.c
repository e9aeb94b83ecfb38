/* core/rng.c — xoshiro256** seeded by splitmix64 (public-domain algorithms
 * by David Blackman and Sebastiano Vigna). */
#include "config.h"

#include <math.h>

#include "internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void sl_rng_seed(sl_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

void sl_rng_derive(sl_rng *r, uint64_t seed, uint64_t stream)
{
    /* Mix the stream through splitmix before combining, so nearby
     * (seed, stream) pairs give unrelated states. */
    uint64_t x = stream ^ 0x5851F42D4C957F2DULL;
    uint64_t h = splitmix64(&x);
    sl_rng_seed(r, seed ^ h);
}

uint64_t sl_rng_next(sl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sl_rng_uniform(sl_rng *r) { return (double)(sl_rng_next(r) >> 11) * 0x1.0p-53; }

double sl_rng_normal(sl_rng *r)
{
    /* Box-Muller, one value per call: simple and stateless beyond s[]. */
    double u1 = sl_rng_uniform(r), u2 = sl_rng_uniform(r);
    return sqrt(-2.0 * log1p(-u1)) * cos(2.0 * M_PI * u2);
}

uint64_t sl_rng_below(sl_rng *r, uint64_t n)
{
    /* Lemire's nearly-divisionless method, with rejection for exactness. */
    uint64_t x = sl_rng_next(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold) {
            x = sl_rng_next(r);
            m = (__uint128_t)x * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void sl_rng_shuffle(sl_rng *r, int64_t *perm, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)sl_rng_below(r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Fills t element by element in row-major order with draw(r, a, b). */
static int fill_random(sl_tensor *t, sl_rng *r, double a, double b,
                       double (*draw)(sl_rng *, double, double))
{
    if (t->dtype != SL_F32 && t->dtype != SL_F64)
        return sl_error(SL_EDTYPE, "random fill: dtype %s (need f32 or f64)",
                        sl_dtype_name(t->dtype));
    int64_t n = sl_tensor_numel(t);
    int64_t idx[SL_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        sl_tensor_set(t, idx, draw(r, a, b));
        for (int i = t->ndim - 1; i >= 0; i--) {
            if (++idx[i] < t->shape[i])
                break;
            idx[i] = 0;
        }
    }
    return SL_OK;
}

static double draw_uniform(sl_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * sl_rng_uniform(r);
}

static double draw_normal(sl_rng *r, double mean, double std)
{
    return mean + std * sl_rng_normal(r);
}

int sl_tensor_uniform(sl_tensor *t, sl_rng *r, double lo, double hi)
{
    return fill_random(t, r, lo, hi, draw_uniform);
}

int sl_tensor_normal(sl_tensor *t, sl_rng *r, double mean, double std)
{
    return fill_random(t, r, mean, std, draw_normal);
}
