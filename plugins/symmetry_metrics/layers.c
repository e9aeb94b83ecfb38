/* plugins/symmetry_metrics/layers.c — weights, spectra and activations of
 * a model for the order parameters (metrics.h). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "order.h"

int sm_rank_opts_get(const sl_options *opt, const char *who, sm_rank_opts *out)
{
    out->atol = sl_options_float(opt, "rank_atol");
    out->rtol = sl_options_float(opt, "rank_rtol");
    out->top_sv = sl_options_int(opt, "top_sv");
    if (!(out->atol >= 0) || !(out->rtol >= 0))
        return sl_error(SL_EINVAL, "%s: rank_atol and rank_rtol must be >= 0, got %g and %g",
                        who, out->atol, out->rtol);
    if (out->top_sv < 0)
        return sl_error(SL_EINVAL, "%s: top_sv must be >= 0, got %lld", who,
                        (long long)out->top_sv);
    return SL_OK;
}

int sm_set(sl_record *out, const char *prefix, const char *what, double value)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    return sl_record_set(out, name, value);
}

int sm_record_spectrum(sl_record *out, const char *prefix, const double *s, int64_t k,
                           const sm_rank_opts *ro)
{
    SL_TRY(sm_set(out, prefix, "rank", (double)om_rank(s, k, ro->atol, ro->rtol)));
    SL_TRY(sm_set(out, prefix, "stable_rank", om_stable_rank(s, k)));
    SL_TRY(sm_set(out, prefix, "effective_rank", om_effective_rank(s, k)));
    for (int64_t i = 0; i < ro->top_sv; i++) {
        char what[32];
        snprintf(what, sizeof what, "sv%lld", (long long)i);
        SL_TRY(sm_set(out, prefix, what, i < k ? s[i] : 0.0));
    }
    return SL_OK;
}

/* Singular values of an f64 matrix tensor, then its measures. */
static int record_matrix(sl_record *out, const char *prefix, const sl_tensor *w,
                         const sm_rank_opts *ro)
{
    sl_tensor s = {0};
    SL_TRY(sl_svd(w, NULL, &s, NULL));
    int rc = sm_record_spectrum(out, prefix, s.data, sl_tensor_numel(&s), ro);
    sl_tensor_release(&s);
    return rc;
}

int sm_weight_ranks(sl_model *m, const sl_weight_layer *L, const sm_rank_opts *ro,
                    sl_record *out)
{
    sl_tensor w = {0};
    SL_TRY(sl_weight_layer_matrix(m, L, &w));
    int rc = record_matrix(out, sl_module_path(L->mod), &w, ro);
    sl_tensor_release(&w);
    return rc;
}

/* Is layer i (> 0) fed by layer i - 1 through linear maps alone? */
static bool linear_link(sl_model *m, const sl_structure *st, int i)
{
    const sl_weight_layer *prev = sl_structure_layer(st, i - 1), *L = sl_structure_layer(st, i);
    const sl_hidden_layer *h = sl_structure_hidden(st, prev->hidden_out);
    return h && L->hidden_in == prev->hidden_out && (h->symmetry & SL_SYM_GL) &&
           h->nproducers == 1 && h->nconsumers == 1 && L->fan_in == prev->units &&
           sl_model_param(m, L->weight)->ndim == 2;
}

/* P = W_L ... W_1 into *p (allocated; (units_L, fan_in_1)). */
static int chain_product(sl_model *m, const sl_structure *st, sl_tensor *p)
{
    SL_TRY(sl_weight_layer_matrix(m, sl_structure_layer(st, 0), p));
    for (int i = 1; i < sl_structure_nlayers(st); i++) {
        sl_tensor w = {0}, next = {0};
        int rc = sl_weight_layer_matrix(m, sl_structure_layer(st, i), &w);
        if (rc >= 0)
            rc = sl_tensor_alloc(&next, SL_F64, 2, (int64_t[]){w.shape[0], p->shape[1]});
        if (rc >= 0)
            rc = sl_gemm(false, false, 1.0, &w, p, 0.0, &next);
        sl_tensor_release(&w);
        sl_tensor_release(p);
        *p = next;
        SL_TRY(rc);
    }
    return SL_OK;
}

int sm_product_ranks(sl_model *m, const sl_structure *st, const sm_rank_opts *ro,
                     sl_record *out, bool *done)
{
    const int n = sl_structure_nlayers(st);
    *done = false;
    if (n < 2 || sl_structure_layer(st, 0)->hidden_in >= 0 ||
        sl_model_param(m, sl_structure_layer(st, 0)->weight)->ndim != 2)
        return SL_OK;
    for (int i = 1; i < n; i++)
        if (!linear_link(m, st, i))
            return SL_OK;
    sl_tensor p = {0};
    int rc = chain_product(m, st, &p);
    if (rc >= 0)
        rc = record_matrix(out, "product", &p, ro);
    sl_tensor_release(&p);
    *done = rc >= 0;
    return rc;
}

int sm_batch_forward(sl_model *m, const sl_dataset *data, int64_t rows, sm_batch *b)
{
    memset(b, 0, sizeof *b);
    SL_TRY(sl_batcher_new(data, rows, sl_model_dtype(m), false, 0, false, &b->batcher));
    sl_batcher_begin_epoch(b->batcher, 0);
    int rc = sl_batcher_next(b->batcher, &b->x, &b->y);
    if (rc == 0)
        rc = sl_error(SL_EINVAL, "symmetry_metrics: the data set is empty");
    bool training = sl_model_training(m);
    sl_model_set_training(m, false);
    const sl_tensor *out;
    if (rc > 0)
        rc = sl_model_forward(m, b->x, &out);
    sl_model_set_training(m, training);
    if (rc < 0)
        sm_batch_free(b);
    return rc < 0 ? rc : SL_OK;
}

void sm_batch_free(sm_batch *b)
{
    sl_batcher_free(b->batcher);
    memset(b, 0, sizeof *b);
}

const char *sm_nc1_unavailable(const sl_structure *st, const sm_batch *b)
{
    const int n = sl_structure_nlayers(st);
    if (!b->y || b->y->dtype != SL_I64 || b->y->ndim != 1)
        return "the data's targets are not class labels";
    if (n < 1)
        return "the model has no weight layer";
    if (sl_structure_layer(st, n - 1)->module < 0)
        return "the last weight layer is inside a container (its input is not recorded)";
    const int64_t *y = b->y->data;
    for (int64_t i = 1; i < b->y->shape[0]; i++)
        if (y[i] != y[0])
            return NULL;
    return "the probe rows hold fewer than 2 classes";
}

/* A (rows, cols) f64 copy of t (rows, ...), row r its r-th sample. */
static int flatten_f64(const sl_tensor *t, double **out, int64_t *cols)
{
    const int64_t n = t->shape[0], numel = sl_tensor_numel(t);
    *cols = n > 0 ? numel / n : 0;
    *out = malloc((size_t)(numel > 0 ? numel : 1) * sizeof **out);
    if (!*out)
        return sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    for (int64_t i = 0; i < numel; i++)
        (*out)[i] = sl_tensor_flat_get(t, i);
    return SL_OK;
}

int sm_nc1(sl_model *m, const sl_structure *st, const sm_batch *b, double *nc1,
           int64_t *classes)
{
    const char *why = sm_nc1_unavailable(st, b);
    if (why)
        return sl_error(SL_EINVAL, "nc1: %s", why);
    const sl_weight_layer *L = sl_structure_layer(st, sl_structure_nlayers(st) - 1);
    const sl_tensor *h = L->module == 0 ? b->x : sl_model_activation(m, L->module - 1);
    if (!h || h->ndim < 1 || h->shape[0] != b->y->shape[0])
        return sl_error(SL_ESTATE, "nc1: no penultimate features of the batch");
    double *f;
    int64_t d;
    SL_TRY(flatten_f64(h, &f, &d));
    int rc = om_nc1(f, b->y->data, h->shape[0], d, nc1, classes);
    free(f);
    return rc;
}

/* Columns converted to f64 at a time: bounds the copy, not the width. */
#define GRAM_BLOCK 512

int sm_activation_gram(const sl_tensor *a, double *K)
{
    const int64_t n = a->shape[0], p = n > 0 ? sl_tensor_numel(a) / n : 0;
    const int64_t w = p < GRAM_BLOCK ? p : GRAM_BLOCK;
    memset(K, 0, (size_t)(n * n) * sizeof *K);
    double *buf = malloc((size_t)(n * (w > 0 ? w : 1)) * sizeof *buf);
    if (!buf)
        return sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    for (int64_t c0 = 0; c0 < p; c0 += w) {
        const int64_t cw = p - c0 < w ? p - c0 : w;
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < cw; c++)
                buf[i * cw + c] = sl_tensor_flat_get(a, i * p + c0 + c);
        om_gram_add(buf, n, cw, cw, K);
    }
    free(buf);
    om_gram_center(K, n);
    return SL_OK;
}
