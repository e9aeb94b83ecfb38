/* plugins/symmetry_metrics/order.c — ranks, NC1 and linear CKA on f64
 * arrays (order.h has the definitions). */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

#include "order.h"

/* ---------------------------------------------------------------- ranks */

int64_t om_rank(const double *s, int64_t k, double atol, double rtol)
{
    if (k <= 0)
        return 0;
    const double cut = fmax(atol, rtol * s[0]);
    int64_t r = 0;
    for (int64_t i = 0; i < k; i++)
        r += s[i] > cut;
    return r;
}

double om_stable_rank(const double *s, int64_t k)
{
    if (k <= 0 || s[0] <= 0)
        return 0;
    double sum2 = 0;
    for (int64_t i = 0; i < k; i++)
        sum2 += s[i] * s[i];
    return sum2 / (s[0] * s[0]);
}

double om_effective_rank(const double *s, int64_t k)
{
    double sum = 0, entropy = 0;
    for (int64_t i = 0; i < k; i++)
        sum += s[i];
    if (!(sum > 0))
        return 0;
    for (int64_t i = 0; i < k; i++)
        if (s[i] > 0)
            entropy -= s[i] / sum * log(s[i] / sum);
    return exp(entropy);
}

/* ---------------------------------------------------------------- NC1 */

/* Labels must index an array of class sums: a bound that keeps a corrupt
 * label from asking for gigabytes. */
#define NC1_MAX_LABEL (1 << 20)

typedef struct nc1_work {
    int64_t nlabels;   /* max label + 1 */
    int64_t *count;    /* (nlabels) rows per label */
    double *mean;      /* (nlabels, d) class means */
    double *mt;        /* (C, d) centred class means M^T, present classes only */
} nc1_work;

static void nc1_work_free(nc1_work *w)
{
    free(w->count);
    free(w->mean);
    free(w->mt);
}

/* Class counts and means; *classes = labels present. */
static int class_means(const double *h, const int64_t *y, int64_t n, int64_t d, nc1_work *w,
                       int64_t *classes)
{
    int64_t top = -1;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] < 0 || y[i] >= NC1_MAX_LABEL)
            return sl_error(SL_EINVAL, "nc1: label %lld of row %lld is outside [0, %d)",
                            (long long)y[i], (long long)i, NC1_MAX_LABEL);
        top = y[i] > top ? y[i] : top;
    }
    w->nlabels = top + 1;
    w->count = calloc((size_t)(top + 1), sizeof *w->count);
    w->mean = calloc((size_t)((top + 1) * d), sizeof *w->mean);
    if (!w->count || !w->mean)
        return sl_error(SL_ENOMEM, "nc1: out of memory");
    for (int64_t i = 0; i < n; i++) {
        w->count[y[i]]++;
        for (int64_t j = 0; j < d; j++)
            w->mean[y[i] * d + j] += h[i * d + j];
    }
    *classes = 0;
    for (int64_t c = 0; c <= top; c++) {
        if (w->count[c] == 0)
            continue;
        (*classes)++;
        for (int64_t j = 0; j < d; j++)
            w->mean[c * d + j] /= (double)w->count[c];
    }
    return SL_OK;
}

/* M^T (C, d): the present classes' means minus their mean. */
static int centred_means(const nc1_work *in, int64_t d, int64_t C, nc1_work *w)
{
    w->mt = malloc((size_t)(C * d) * sizeof *w->mt);
    double *mu_g = calloc((size_t)d, sizeof *mu_g);
    if (!w->mt || !mu_g) {
        free(mu_g);
        return sl_error(SL_ENOMEM, "nc1: out of memory");
    }
    for (int64_t c = 0; c < in->nlabels; c++)
        if (in->count[c] > 0)
            for (int64_t j = 0; j < d; j++)
                mu_g[j] += in->mean[c * d + j] / (double)C;
    int64_t row = 0;
    for (int64_t c = 0; c < in->nlabels; c++) {
        if (in->count[c] == 0)
            continue;
        for (int64_t j = 0; j < d; j++)
            w->mt[row * d + j] = in->mean[c * d + j] - mu_g[j];
        row++;
    }
    free(mu_g);
    return SL_OK;
}

/* sum over kept k of (1/n) sum_i (v_k . (h_i - mu_{y_i}))^2 / s_k^2. */
static double nc1_sum(const double *h, const int64_t *y, int64_t n, int64_t d,
                      const double *mean, const double *s, const double *vt, int64_t kept)
{
    double total = 0;
    for (int64_t k = 0; k < kept; k++) {
        const double *v = vt + k * d;
        double q = 0;
        for (int64_t i = 0; i < n; i++) {
            double p = 0;
            for (int64_t j = 0; j < d; j++)
                p += v[j] * (h[i * d + j] - mean[y[i] * d + j]);
            q += p * p;
        }
        total += q / (double)n / (s[k] * s[k]);
    }
    return total;
}

int om_nc1(const double *h, const int64_t *y, int64_t n, int64_t d, double *nc1,
           int64_t *classes)
{
    nc1_work w = {0};
    int64_t C = 0;
    int rc = class_means(h, y, n, d, &w, &C);
    if (rc >= 0 && C < 2)
        rc = sl_error(SL_EINVAL, "nc1: needs at least 2 classes among the %lld rows, found %lld",
                      (long long)n, (long long)C);
    if (rc >= 0)
        rc = centred_means(&w, d, C, &w);
    sl_tensor mt = {0}, s = {0}, vt = {0};
    if (rc >= 0)
        rc = sl_tensor_wrap(&mt, w.mt, SL_F64, 2, (int64_t[]){C, d});
    if (rc >= 0)
        rc = sl_svd(&mt, NULL, &s, &vt);
    if (rc >= 0) {
        const double *sv = s.data;
        const int64_t r = sl_tensor_numel(&s);
        const double cut = (double)(C > d ? C : d) * DBL_EPSILON * (r > 0 ? sv[0] : 0);
        int64_t kept = 0;
        while (kept < r && sv[kept] > cut)
            kept++;
        *nc1 = nc1_sum(h, y, n, d, w.mean, sv, vt.data, kept);
        if (classes)
            *classes = C;
    }
    sl_tensor_release(&s);
    sl_tensor_release(&vt);
    nc1_work_free(&w);
    return rc;
}

/* ---------------------------------------------------------------- CKA */

void om_gram_add(const double *x, int64_t n, int64_t p, int64_t ldx, double *K)
{
    if (n > 0 && p > 0)
        sl_dgemm(false, true, n, n, p, 1.0, x, ldx, x, ldx, 1.0, K, n);
}

void om_gram_center(double *K, int64_t n)
{
    /* H K H: subtract each row's mean, then each column's mean of that. */
    for (int64_t i = 0; i < n; i++) {
        double m = 0;
        for (int64_t j = 0; j < n; j++)
            m += K[i * n + j];
        m /= (double)n;
        for (int64_t j = 0; j < n; j++)
            K[i * n + j] -= m;
    }
    for (int64_t j = 0; j < n; j++) {
        double m = 0;
        for (int64_t i = 0; i < n; i++)
            m += K[i * n + j];
        m /= (double)n;
        for (int64_t i = 0; i < n; i++)
            K[i * n + j] -= m;
    }
}

double om_cka(const double *K, const double *L, int64_t n)
{
    double kl = 0, kk = 0, ll = 0;
    for (int64_t i = 0; i < n * n; i++) {
        kl += K[i] * L[i];
        kk += K[i] * K[i];
        ll += L[i] * L[i];
    }
    if (!(kk > 0) || !(ll > 0))
        return NAN;
    return kl / sqrt(kk * ll);
}

int om_gram_spectrum(const double *K, int64_t n, double *s)
{
    sl_tensor k = {0}, sv = {0};
    SL_TRY(sl_tensor_wrap(&k, (void *)K, SL_F64, 2, (int64_t[]){n, n}));
    SL_TRY(sl_svd(&k, NULL, &sv, NULL));
    /* K's eigenvalues are known to about n * eps * (largest): below that
     * they are rounding, and their square roots (~1e-8 of the largest
     * singular value) would be noise, so they count as 0. */
    const double *e = sv.data;
    const double floor = (double)n * DBL_EPSILON * (n > 0 ? e[0] : 0);
    for (int64_t i = 0; i < n; i++)
        s[i] = e[i] > floor ? sqrt(e[i]) : 0.0;
    sl_tensor_release(&sv);
    return SL_OK;
}
