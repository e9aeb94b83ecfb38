/* plugins/upsample/upsample_generic.h — the bilinear kernels of upsample.c
 * for one element type.  Not a header: upsample.c includes it once per
 * type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (upsample_fwd -> upsample_fwd_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* x, gx are (planes, H, W); y, gy are (planes, H*K, W*K). */
static void SUF(upsample_fwd)(const T *x, T *y, int64_t planes, int64_t H, int64_t W, int64_t K)
{
    const int64_t HK = H * K, WK = W * K;
    for (int64_t oy = 0; oy < HK; oy++) {
        axis_tap r = axis_tap_at(oy, H, K);
        for (int64_t ox = 0; ox < WK; ox++) {
            axis_tap c = axis_tap_at(ox, W, K);
            for (int64_t p = 0; p < planes; p++) {
                const T *xp = x + p * H * W;
                y[(p * HK + oy) * WK + ox] =
                    (T)(r.l0 * (c.l0 * xp[r.i0 * W + c.i0] + c.l1 * xp[r.i0 * W + c.i1]) +
                        r.l1 * (c.l0 * xp[r.i1 * W + c.i0] + c.l1 * xp[r.i1 * W + c.i1]));
            }
        }
    }
}
static void SUF(upsample_bwd)(const T *gy, T *gx, int64_t planes, int64_t H, int64_t W,
                              int64_t K)
{
    const int64_t HK = H * K, WK = W * K;
    for (int64_t i = 0; i < planes * H * W; i++)
        gx[i] = 0;
    for (int64_t oy = 0; oy < HK; oy++) {
        axis_tap r = axis_tap_at(oy, H, K);
        for (int64_t ox = 0; ox < WK; ox++) {
            axis_tap c = axis_tap_at(ox, W, K);
            for (int64_t p = 0; p < planes; p++) {
                T *gp = gx + p * H * W;
                double g = gy[(p * HK + oy) * WK + ox];
                gp[r.i0 * W + c.i0] += (T)(r.l0 * c.l0 * g);
                gp[r.i0 * W + c.i1] += (T)(r.l0 * c.l1 * g);
                gp[r.i1 * W + c.i0] += (T)(r.l1 * c.l0 * g);
                gp[r.i1 * W + c.i1] += (T)(r.l1 * c.l1 * g);
            }
        }
    }
}

#undef T
#undef SUF
