/* plugins/batchnorm/batchnorm_generic.h — the batch-norm kernels of
 * batchnorm.c for one element type.  Not a header: batchnorm.c includes it
 * once per type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (bn_normalize -> bn_normalize_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* x, y, gx, gy are (N, C, S); w, b, gw, gb are (C) or NULL; rm, rv (C) the
 * running buffers; stats (C, 2) holds (mean, rstd) per channel. */
static void SUF(bn_batch_stats)(const T *x, T *rm, T *rv, double *stats, int64_t N, int64_t C,
                                int64_t S, double momentum, double eps)
{
    const double n = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++)
                mean += x[(i * C + c) * S + k];
        mean /= n;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                double d = (double)x[(i * C + c) * S + k] - mean;
                var += d * d;
            }
        var /= n;
        stats[2 * c] = mean;
        stats[2 * c + 1] = 1.0 / sqrt(var + eps);
        rm[c] = (T)((1 - momentum) * rm[c] + momentum * mean);
        rv[c] = (T)((1 - momentum) * rv[c] + momentum * var * n / (n - 1));
    }
}
static void SUF(bn_running_stats)(const T *rm, const T *rv, double *stats, int64_t C,
                                  double eps)
{
    for (int64_t c = 0; c < C; c++) {
        stats[2 * c] = rm[c];
        stats[2 * c + 1] = 1.0 / sqrt((double)rv[c] + eps);
    }
}
static void SUF(bn_normalize)(const T *x, T *y, const T *w, const T *b, const double *stats,
                              int64_t N, int64_t C, int64_t S)
{
    for (int64_t i = 0; i < N; i++)
        for (int64_t c = 0; c < C; c++) {
            double scale = stats[2 * c + 1] * (w ? (double)w[c] : 1.0);
            double shift = (b ? (double)b[c] : 0.0) - stats[2 * c] * scale;
            const T *xc = x + (i * C + c) * S;
            T *yc = y + (i * C + c) * S;
            for (int64_t k = 0; k < S; k++)
                yc[k] = (T)(xc[k] * scale + shift);
        }
}
/* Training: gx = w rstd (gy - mean(gy) - xhat mean(gy xhat)).  Evaluation: the
 * statistics are constants, gx = w rstd gy.  Both: gw += sum gy xhat, gb += sum gy. */
static void SUF(bn_backward)(const T *x, const T *gy, T *gx, const T *w, T *gw, T *gb,
                             const double *stats, int64_t N, int64_t C, int64_t S,
                             bool batch_stats)
{
    const double n = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        const double mean = stats[2 * c], rstd = stats[2 * c + 1];
        double sum_g = 0, sum_gx = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                int64_t at = (i * C + c) * S + k;
                sum_g += gy[at];
                sum_gx += gy[at] * ((double)x[at] - mean) * rstd;
            }
        if (gw) {
            gw[c] += (T)sum_gx;
            gb[c] += (T)sum_g;
        }
        if (!gx)
            continue;
        const double scale = rstd * (w ? (double)w[c] : 1.0);
        const double mg = batch_stats ? sum_g / n : 0, mgx = batch_stats ? sum_gx / n : 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < S; k++) {
                int64_t at = (i * C + c) * S + k;
                double xhat = ((double)x[at] - mean) * rstd;
                gx[at] = (T)(scale * (gy[at] - mg - xhat * mgx));
            }
    }
}

#undef T
#undef SUF
