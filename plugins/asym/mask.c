/* plugins/asym/mask.c — the fixed-entry pattern of a W-asymmetric weight
 * (mask.h). */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asym.h"
#include "mask.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Row i's fixed columns: the first nfix of a partial Fisher–Yates shuffle of
 * 0..cols-1 (uniform without replacement), then sorted; the free columns are
 * the rest, increasing.  `perm` and `is_fixed` are scratch of `cols`. */
static void draw_columns(asym_mask *k, uint64_t mask_seed, int64_t *perm,
                         unsigned char *is_fixed)
{
    sl_rng rng;
    sl_rng_derive(&rng, mask_seed, ASYM_STREAM_COLUMNS);
    for (int64_t i = 0; i < k->rows; i++) {
        for (int64_t c = 0; c < k->cols; c++)
            perm[c] = c;
        for (int64_t f = 0; f < k->nfix; f++) {
            int64_t j = f + (int64_t)sl_rng_below(&rng, (uint64_t)(k->cols - f));
            int64_t t = perm[f];
            perm[f] = perm[j];
            perm[j] = t;
        }
        int64_t *fix = k->fix_cols + i * k->nfix, *fre = k->free_cols + i * k->nfree;
        memcpy(fix, perm, (size_t)k->nfix * sizeof *fix);
        qsort(fix, (size_t)k->nfix, sizeof *fix, cmp_i64);
        memset(is_fixed, 0, (size_t)k->cols);
        for (int64_t f = 0; f < k->nfix; f++)
            is_fixed[fix[f]] = 1;
        int64_t n = 0;
        for (int64_t c = 0; c < k->cols; c++)
            if (!is_fixed[c])
                fre[n++] = c;
    }
}

int asym_mask_init(asym_mask *k, const char *owner, int64_t rows, int64_t cols, int64_t nfix,
                   uint64_t mask_seed)
{
    *k = (asym_mask){0};
    if (nfix < 0 || nfix >= cols)
        return sl_error(SL_EINVAL, "%s: n_fix must be in [0, %lld), got %lld", owner,
                        (long long)cols, (long long)nfix);
    *k = (asym_mask){.rows = rows, .cols = cols, .nfix = nfix, .nfree = cols - nfix};
    k->fix_cols = malloc((size_t)(rows * nfix + 1) * sizeof *k->fix_cols);
    k->free_cols = malloc((size_t)(rows * k->nfree) * sizeof *k->free_cols);
    int64_t *perm = malloc((size_t)cols * sizeof *perm);
    unsigned char *is_fixed = malloc((size_t)cols);
    int rc = SL_OK;
    if (k->fix_cols && k->free_cols && perm && is_fixed)
        draw_columns(k, mask_seed, perm, is_fixed);
    else
        rc = sl_error(SL_ENOMEM, "%s: out of memory", owner);
    free(perm);
    free(is_fixed);
    if (rc < 0)
        asym_mask_free(k);
    return rc;
}

void asym_mask_free(asym_mask *k)
{
    free(k->fix_cols);
    free(k->free_cols);
    k->fix_cols = k->free_cols = NULL;
}

int asym_mask_declare(sl_module *m, const asym_mask *k, bool bias)
{
    SL_TRY(sl_module_add_param(m, "weight", 2, (int64_t[]){k->rows, k->nfree}));
    if (bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &k->rows));
    if (k->nfix > 0)
        SL_TRY(sl_module_add_buffer(m, "weight_fixed", 2, (int64_t[]){k->rows, k->nfix}));
    return SL_OK;
}

int asym_mask_reset(sl_module *m, const asym_mask *k, bool bias, sl_rng *rng, uint64_t mask_seed,
                    double kappa)
{
    double bound = 1.0 / sqrt((double)k->cols);
    SL_TRY(sl_tensor_uniform(sl_module_param(m, 0), rng, -bound, bound));
    if (bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, 1), rng, -bound, bound));
    if (k->nfix == 0)
        return SL_OK;
    sl_rng vr;
    sl_rng_derive(&vr, mask_seed, ASYM_STREAM_VALUES);
    return sl_tensor_normal(sl_module_buffer(m, 0), &vr, 0.0, kappa);
}

/* w's row i: free entries at free_cols, fixed ones at fix_cols.  Every
 * column of every row is written, so the scratch needs no clearing. */
static void assemble_f32(const asym_mask *k, const float *fw, const float *fx, float *w)
{
    for (int64_t i = 0; i < k->rows; i++) {
        float *row = w + i * k->cols;
        const int64_t *fc = k->free_cols + i * k->nfree, *xc = k->fix_cols + i * k->nfix;
        for (int64_t f = 0; f < k->nfree; f++)
            row[fc[f]] = fw[i * k->nfree + f];
        for (int64_t f = 0; f < k->nfix; f++)
            row[xc[f]] = fx[i * k->nfix + f];
    }
}
static void assemble_f64(const asym_mask *k, const double *fw, const double *fx, double *w)
{
    for (int64_t i = 0; i < k->rows; i++) {
        double *row = w + i * k->cols;
        const int64_t *fc = k->free_cols + i * k->nfree, *xc = k->fix_cols + i * k->nfix;
        for (int64_t f = 0; f < k->nfree; f++)
            row[fc[f]] = fw[i * k->nfree + f];
        for (int64_t f = 0; f < k->nfix; f++)
            row[xc[f]] = fx[i * k->nfix + f];
    }
}

int asym_mask_effective(sl_module *m, const asym_mask *k, int slot, const sl_tensor *weight,
                        const sl_tensor *fixed, sl_tensor *w)
{
    sl_dtype dt = weight->dtype;
    void *p;
    SL_TRY(sl_module_scratch(m, slot, (size_t)(k->rows * k->cols) * sl_dtype_size(dt), &p));
    const void *fx = k->nfix ? fixed->data : NULL;
    if (dt == SL_F32)
        assemble_f32(k, weight->data, fx, p);
    else
        assemble_f64(k, weight->data, fx, p);
    return sl_tensor_wrap(w, p, dt, 2, (int64_t[]){k->rows, k->cols});
}

void asym_mask_gather(const asym_mask *k, const sl_tensor *gw, sl_tensor *grad_free)
{
    for (int64_t i = 0; i < k->rows; i++) {
        const int64_t *fc = k->free_cols + i * k->nfree;
        if (gw->dtype == SL_F32) {
            const float *src = (const float *)gw->data + i * k->cols;
            float *dst = (float *)grad_free->data + i * k->nfree;
            for (int64_t f = 0; f < k->nfree; f++)
                dst[f] += src[fc[f]];
        } else {
            const double *src = (const double *)gw->data + i * k->cols;
            double *dst = (double *)grad_free->data + i * k->nfree;
            for (int64_t f = 0; f < k->nfree; f++)
                dst[f] += src[fc[f]];
        }
    }
}
