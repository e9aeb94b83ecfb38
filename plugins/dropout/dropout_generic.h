/* plugins/dropout/dropout_generic.h — the dropout kernels of dropout.c for
 * one element type.  Not a header: dropout.c includes it once per type
 * after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (dropout_mask -> dropout_mask_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* mask[i] = 0 with probability p else 1/(1-p); y = x * mask.  gx = gy * mask.
 * Eval mode passes mask = NULL (identity). */
static void SUF(dropout_mask)(T *mask, int64_t n, double p, sl_rng *rng)
{
    const T keep = p < 1 ? (T)(1.0 / (1.0 - p)) : (T)0;
    for (int64_t i = 0; i < n; i++)
        mask[i] = sl_rng_uniform(rng) < p ? (T)0 : keep;
}
static void SUF(dropout_apply)(const T *x, const T *mask, T *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = mask ? x[i] * mask[i] : x[i];
}

#undef T
#undef SUF
