/* plugins/example/example_generic.h — the scale module's arithmetic, written
 * once for both real dtypes.  Not a header: example.c includes it once per
 * element type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (scale_fwd -> scale_fwd_f32);
 * both are #undef'd at the end, so the next inclusion can define them
 * again.  No include guard, on purpose.  Unlike one big macro, this is
 * ordinary C: compiler messages and debuggers show its real lines. */

/* y = w x, and the backward sums, written once for both real dtypes. */
static void SUF(scale_fwd)(const T *x, T *y, int64_t n, T w)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = w * x[i];
}
static void SUF(scale_bwd)(const T *x, const T *gy, T *gx, int64_t n, T w, T *gw)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        acc += (double)x[i] * (double)gy[i];
        if (gx)
            gx[i] = w * gy[i];
    }
    *gw += (T)acc;
}

#undef T
#undef SUF
