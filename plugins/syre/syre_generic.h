/* plugins/syre/syre_generic.h — syre's decay loop for one element type.
 * Not a header: syre.c includes it once per type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (syre_decay -> syre_decay_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* θ -= f · d ⊙ (θ − θ0); returns Σ d (θ − θ0)² before the update, so the
 * hook can report the distance to the anchor without a second pass. */
static double SUF(syre_decay)(T *p, const T *a, const T *d, int64_t n, double f)
{
    double dist = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double diff = (double)p[i] - (double)a[i];
        dist += (double)d[i] * diff * diff;
        p[i] = (T)((double)p[i] - f * (double)d[i] * diff);
    }
    return dist;
}

#undef T
#undef SUF
