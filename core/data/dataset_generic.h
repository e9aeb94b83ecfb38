/* core/data/dataset_generic.h — the statistics loops of dataset.c for one element
 * type.  Not a header: dataset.c includes it once per type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (stats -> stats_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* Two passes (mean, then squared deviations) in double: the one-pass
 * sum-of-squares formula loses all precision when |mean| >> std. */
static void SUF(stats)(const T *x, int64_t n, double *mean, double *std)
{
    double sum = 0.0, dev = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    double m = sum / (double)n;
    for (int64_t i = 0; i < n; i++)
        dev += ((double)x[i] - m) * ((double)x[i] - m);
    *mean = m;
    *std = sqrt(dev / (double)n);
}

static void SUF(normalize)(T *x, int64_t n, double mean, double std)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = (T)(((double)x[i] - mean) / std);
}

#undef T
#undef SUF
