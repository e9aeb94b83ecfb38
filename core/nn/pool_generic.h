/* core/nn/pool_generic.h — the pooling kernels of pool.c, written once
 * against T, I and SUF(name) and compiled for float and for double: pool.c
 * includes it through generic_real.h (see there).  Not a header; no include
 * guard.   SUF(POOL_EVEN) and SUF(POOL_ODD) are the lane shuffles defined in
 * pool.c. */

/* Output ow of a 2x2/stride-2 row pair: the running maximum and its place. */
static inline void SUF(maxpool2x2_window)(const T *r0, const T *r1, T *y, T *code, int64_t ow)
{
    T bv = r0[2 * ow], best = 0, v;
    v = r0[2 * ow + 1];
    best = MAXPOOL_TAKES(v, bv) ? 1 : best;
    bv = MAXPOOL_TAKES(v, bv) ? v : bv;
    v = r1[2 * ow];
    best = MAXPOOL_TAKES(v, bv) ? 2 : best;
    bv = MAXPOOL_TAKES(v, bv) ? v : bv;
    v = r1[2 * ow + 1];
    best = MAXPOOL_TAKES(v, bv) ? 3 : best;
    bv = MAXPOOL_TAKES(v, bv) ? v : bv;
    y[ow] = bv;
    code[ow] = best;
}

/* kernel 2, stride 2, no padding (the common case): the four elements of a
 * window, in the general loop's order, without its per-window clipping.
 * Same maximum and same winner as maxpool_forward, but the winner is kept as
 * its place in the window (0..3, row-major) in an array of T, so that one
 * 16-byte vector of windows is done at a time (GCC/Clang vector extensions;
 * the scalar form, with an int64 index beside each value, cost more than
 * the convolutions' GEMMs).  The scalar tail computes the same thing. */
typedef T SUF(pool_vec) __attribute__((vector_size(16)));
typedef I SUF(pool_mask) __attribute__((vector_size(16)));
/* One step of the running maximum on vectors: lanes where v takes over *bv
 * (MAXPOOL_TAKES, as masks) get v's value and `place`.  Bitwise selects, so
 * the winner's bits are copied exactly. */
static inline void SUF(maxpool_vstep)(SUF(pool_vec) v, SUF(pool_vec) *bv, SUF(pool_vec) *best,
                                      SUF(pool_vec) place)
{
    SUF(pool_mask) t = MAXPOOL_TAKES(v, *bv);
    *bv = (SUF(pool_vec))(((SUF(pool_mask))v & t) | ((SUF(pool_mask))*bv & ~t));
    *best = (SUF(pool_vec))(((SUF(pool_mask))place & t) | ((SUF(pool_mask))*best & ~t));
}
static void SUF(maxpool2x2_row)(const T *r0, const T *r1, T *y, T *code, int64_t n)
{
    const int64_t lanes = (int64_t)(sizeof(SUF(pool_vec)) / sizeof(T));
    const SUF(pool_vec) zero = {0}, one = zero + 1, two = one + 1, three = two + 1;
    int64_t ow = 0;
    for (; ow + lanes <= n; ow += lanes) {
        SUF(pool_vec) p0, p1, q0, q1;
        memcpy(&p0, r0 + 2 * ow, sizeof p0);
        memcpy(&p1, r0 + 2 * ow + lanes, sizeof p1);
        memcpy(&q0, r1 + 2 * ow, sizeof q0);
        memcpy(&q1, r1 + 2 * ow + lanes, sizeof q1);
        SUF(pool_vec) bv = SUF(POOL_EVEN)(p0, p1), best = zero;
        SUF(pool_vec) v = SUF(POOL_ODD)(p0, p1);
        SUF(maxpool_vstep)(v, &bv, &best, one);
        v = SUF(POOL_EVEN)(q0, q1);
        SUF(maxpool_vstep)(v, &bv, &best, two);
        v = SUF(POOL_ODD)(q0, q1);
        SUF(maxpool_vstep)(v, &bv, &best, three);
        memcpy(y + ow, &bv, sizeof bv);
        memcpy(code + ow, &best, sizeof best);
    }
    for (; ow < n; ow++)
        SUF(maxpool2x2_window)(r0, r1, y, code, ow);
}
static void SUF(maxpool2x2_forward)(const pool_geom *g, const T *x, T *y, T *code)
{
    for (int64_t pl = 0; pl < g->planes; pl++)
        for (int64_t oh = 0; oh < g->ho; oh++) {
            const T *r0 = x + (pl * g->h + 2 * oh) * g->w;
            int64_t o = (pl * g->ho + oh) * g->wo;
            SUF(maxpool2x2_row)(r0, r0 + g->w, y + o, code + o, g->wo);
        }
}
static void SUF(maxpool2x2_backward)(const pool_geom *g, const T *gy, T *gx, const T *code)
{
    memset(gx, 0, (size_t)(g->planes * g->h * g->w) * sizeof(T));
    for (int64_t pl = 0; pl < g->planes; pl++)
        for (int64_t oh = 0; oh < g->ho; oh++) {
            T *r0 = gx + (pl * g->h + 2 * oh) * g->w;
            int64_t o = (pl * g->ho + oh) * g->wo;
            for (int64_t ow = 0; ow < g->wo; ow++) {
                int c = (int)code[o + ow];
                r0[(c >> 1) * g->w + 2 * ow + (c & 1)] += gy[o + ow];
            }
        }
}
static void SUF(maxpool_forward)(const pool_geom *g, const T *x, T *y, int64_t *arg)
{
    for (int64_t pl = 0; pl < g->planes; pl++) {
        const T *xp = x + pl * g->h * g->w;
        for (int64_t oh = 0; oh < g->ho; oh++)
            for (int64_t ow = 0; ow < g->wo; ow++) {
                POOL_WINDOW(g, oh, ow);
                /* The running maximum lives in a local (read back through xp,
                 * which y and arg might alias, it cost a reload per element). */
                int64_t best = h0 * g->w + w0;
                T bv = xp[best];
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++) {
                        T v = xp[i * g->w + j];
                        /* selects, not a branch: which element wins is data,
                         * and a branch on it was mispredicted a third of the time */
                        bool take = MAXPOOL_TAKES(v, bv);
                        best = take ? i * g->w + j : best;
                        bv = take ? v : bv;
                    }
                int64_t o = (pl * g->ho + oh) * g->wo + ow;
                y[o] = bv;
                arg[o] = best;
            }
    }
}
static void SUF(maxpool_backward)(const pool_geom *g, const T *gy, T *gx, const int64_t *arg)
{
    memset(gx, 0, (size_t)(g->planes * g->h * g->w) * sizeof(T));
    for (int64_t pl = 0; pl < g->planes; pl++)
        for (int64_t o = pl * g->ho * g->wo; o < (pl + 1) * g->ho * g->wo; o++)
            gx[pl * g->h * g->w + arg[o]] += gy[o];
}
/* count_include_pad: every window divides by k*k, padding included. */
static void SUF(avgpool_forward)(const pool_geom *g, const T *x, T *y)
{
    double scale = 1.0 / (double)(g->k * g->k);
    for (int64_t pl = 0; pl < g->planes; pl++) {
        const T *xp = x + pl * g->h * g->w;
        for (int64_t oh = 0; oh < g->ho; oh++)
            for (int64_t ow = 0; ow < g->wo; ow++) {
                POOL_WINDOW(g, oh, ow);
                double sum = 0;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++)
                        sum += xp[i * g->w + j];
                y[(pl * g->ho + oh) * g->wo + ow] = (T)(sum * scale);
            }
    }
}
static void SUF(avgpool_backward)(const pool_geom *g, const T *gy, T *gx)
{
    T scale = (T)(1.0 / (double)(g->k * g->k));
    memset(gx, 0, (size_t)(g->planes * g->h * g->w) * sizeof(T));
    for (int64_t pl = 0; pl < g->planes; pl++) {
        T *gxp = gx + pl * g->h * g->w;
        for (int64_t oh = 0; oh < g->ho; oh++)
            for (int64_t ow = 0; ow < g->wo; ow++) {
                POOL_WINDOW(g, oh, ow);
                T share = gy[(pl * g->ho + oh) * g->wo + ow] * scale;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++)
                        gxp[i * g->w + j] += share;
            }
    }
}
