/* core/nn/layernorm_generic.h — the layer-norm kernels of layernorm.c,
 * written once against T, I and SUF(name) and compiled for float and for
 * double: layernorm.c includes it through generic_real.h (see there).  Not a
 * header; no include guard.  */

/* x, y, gy, gx are (rows, n); w, b, gw, gb are (n) or NULL without affine;
 * stats holds (mean, rstd) per row. */
static void SUF(layernorm_forward)(const T *x, T *y, const T *w, const T *b, double *stats,
                                   int64_t rows, int64_t n, double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        double mean = 0, var = 0;
        for (int64_t j = 0; j < n; j++)
            mean += xr[j];
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++)
            var += ((double)xr[j] - mean) * ((double)xr[j] - mean);
        double rstd = 1.0 / sqrt(var / (double)n + eps);
        for (int64_t j = 0; j < n; j++) {
            double v = ((double)xr[j] - mean) * rstd;
            yr[j] = (T)(w ? v * w[j] + b[j] : v);
        }
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
    }
}
/* gx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)),
 * gxhat = gy * w. */
static void SUF(layernorm_backward)(const T *x, const T *gy, T *gx, const T *w, T *gw, T *gb,
                                    const double *stats, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n, *gyr = gy + r * n;
        double mean = stats[2 * r], rstd = stats[2 * r + 1];
        double sum_g = 0, sum_gx = 0;
        for (int64_t j = 0; j < n; j++) {
            double xhat = ((double)xr[j] - mean) * rstd;
            double g = w ? (double)gyr[j] * w[j] : (double)gyr[j];
            sum_g += g;
            sum_gx += g * xhat;
            if (gw) {
                gw[j] += (T)(gyr[j] * xhat);
                gb[j] += gyr[j];
            }
        }
        if (!gx)
            continue;
        double mg = sum_g / (double)n, mgx = sum_gx / (double)n;
        for (int64_t j = 0; j < n; j++) {
            double xhat = ((double)xr[j] - mean) * rstd;
            double g = w ? (double)gyr[j] * w[j] : (double)gyr[j];
            gx[r * n + j] = (T)(rstd * (g - mg - xhat * mgx));
        }
    }
}
