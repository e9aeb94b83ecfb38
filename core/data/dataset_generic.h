/* core/data/dataset_generic.h — the statistics loops of dataset.c, written
 * once against T, I and SUF(name) and compiled for float and for double:
 * dataset.c includes it through generic_real.h (see there).  Not a header; no
 * include guard.  */

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
