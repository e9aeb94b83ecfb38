/* plugins/qcircuit/qcircuit_generic.h — the dtype conversions and the loss
 * of qcircuit.c for one element type.  Not a header: qcircuit.c includes
 * it once per type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (load -> load_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* Conversions between the module's dtype and the f64 simulation, once. */
static void SUF(load)(const T *src, double *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = (double)src[i];
}
static void SUF(fill)(T *dst, int64_t n, double v)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = (T)v;
}
static void SUF(accumulate)(T *dst, const double *src, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] += (T)(scale * src[i]);
}
static double SUF(sum)(const T *src, int64_t n)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++)
        acc += (double)src[i];
    return acc;
}

static double SUF(value)(const T *pred, T *grad, int64_t n)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        acc += (double)pred[i];
        if (grad)
            grad[i] = (T)(1.0 / (double)n);
    }
    return acc / (double)n;
}

#undef T
#undef SUF
