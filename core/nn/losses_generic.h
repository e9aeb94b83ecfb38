/* core/nn/losses_generic.h — the cross-entropy kernel of losses.c, written
 * once against T, I and SUF(name) and compiled for float and for double:
 * losses.c includes it through generic_real.h (see there).  Not a header; no
 * include guard.  */

/* Returns the summed loss of all rows; writes the per-row gradient scaled by
 * `scale` (= 1/B) when g is not NULL.  log-softmax is shifted by the row
 * maximum so that exp never overflows. */
static double SUF(cross_entropy)(const T *x, const int64_t *label, T *g, int64_t rows,
                                 int64_t classes, double scale)
{
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * classes;
        double max = xr[0], sum = 0;
        for (int64_t c = 1; c < classes; c++)
            max = xr[c] > max ? xr[c] : max;
        for (int64_t c = 0; c < classes; c++)
            sum += exp((double)xr[c] - max);
        double log_sum = log(sum);
        total += log_sum - ((double)xr[label[r]] - max);
        if (!g)
            continue;
        for (int64_t c = 0; c < classes; c++) {
            double p = exp((double)xr[c] - max - log_sum);
            g[r * classes + c] = (T)((p - (c == label[r])) * scale);
        }
    }
    return total;
}
