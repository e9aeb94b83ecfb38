/* core/nn/losses_mse_generic.h — the mean-squared-error kernel of losses.c
 * for one (prediction, target) dtype pair.  Not a header: losses.c includes
 * it once per pair after defining
 *   TP         the prediction (and gradient) element type,
 *   TT         the target element type, and
 *   SUF(name)  name with the pair's suffix (mse -> mse_f32_f64);
 * all three are #undef'd at the end.  No include guard, on purpose. */

/* Sum of squared differences; g = 2 (p - t) * scale when g is not NULL. */
static double SUF(mse)(const TP *p, const TT *t, TP *g, int64_t n, double scale)
{
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)p[i] - (double)t[i];
        total += d * d;
        if (g)
            g[i] = (TP)(2 * d * scale);
    }
    return total;
}

#undef TP
#undef TT
#undef SUF
