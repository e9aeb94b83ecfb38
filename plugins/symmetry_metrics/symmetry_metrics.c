/* plugins/symmetry_metrics/symmetry_metrics.c — the "symmetry_metrics"
 * probe: order parameters of the symmetries of a network
 * (docs/background/order-parameters.md, docs/symmetry-breaking.md): how far
 * each layer sits from the symmetric subspaces of rescaling (dead neurons),
 * permutation (identical neurons) and rotation (low rank), neural collapse,
 * and the alignment of its representations with another network's.
 *
 * For every weight layer i (structure.h; names use the module path, as the
 * parameters do), of its (out, fan_in) matrix W with singular values s:
 *   i.rank            #{k : s_k > max(rank_atol, rank_rtol * s_0)};
 *   i.stable_rank     ||W||_F^2 / ||W||_2^2;
 *   i.effective_rank  exp(-sum_k p_k log p_k), p_k = s_k / sum s (Roy &
 *                     Vetterli's entropy rank; 0 for W = 0);
 *   i.sv<k>           with top_sv = N, the N largest s_k.
 * product.*           the same of W_L ... W_1 when the model is a chain of
 *                     fully connected layers with only linear maps between
 *                     (a deep linear network).
 * For every hidden weight layer additionally:
 *   i.units           its number of units;
 *   i.distinct_neurons clusters of units under single linkage with
 *                     d_jk = ||t_j - t_k|| / (||t_j|| + ||t_k||) < distinct_tol,
 *                     t_j = [w_in,j; b_j; w_out,j], the unit's rows of the
 *                     producing and consuming layers (with up_to_sign,
 *                     min(d(t_j, t_k), d(t_j, -t_k)): the sign flip that
 *                     odd activations such as tanh allow);
 *   i.dead_fraction   (with data) fraction of units whose activation — the
 *                     output of the last per-unit map after the layer
 *                     that keeps its shape, evaluation mode — has
 *                     |a| <= dead_tol on every sample (and position) of the
 *                     first probe_batch rows of the data;
 *   i.act.rank, i.act.stable_rank, i.act.effective_rank
 *                     (with data and activations = true) the same measures
 *                     of the singular values of that activation matrix
 *                     (rows the samples, flattened), centred per feature;
 *   i.cka             (with data and other = checkpoint) linear CKA between
 *                     that activation matrix and the other model's.
 * Totals: "dead_fraction" (dead units / units), "distinct_fraction"
 * (distinct neurons / units), "cka" (mean over the hidden layers), and with
 * labelled data "nc1" = tr(Sigma_W Sigma_B^+)/C of the penultimate
 * features (order.h) and "nc1_classes" = C.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

#include "metrics.h"
#include "order.h"

static const sl_option_spec metrics_options[] = {
    {"probe_batch", SL_OPT_INT, "512",
     "rows of the data used for dead neurons, NC1, activation ranks and CKA", NULL},
    {"dead_tol", SL_OPT_FLOAT, "1e-6", "a unit is dead if |activation| <= dead_tol everywhere",
     NULL},
    {"distinct_tol", SL_OPT_FLOAT, "1e-3",
     "units closer than this relative distance count as one neuron", NULL},
    {"up_to_sign", SL_OPT_BOOL, "false", "also identify neurons t_j = -t_k (odd activations)",
     NULL},
    {"rank_atol", SL_OPT_FLOAT, "0", "rank counts singular values above max(rank_atol, "
     "rank_rtol * largest)", NULL},
    {"rank_rtol", SL_OPT_FLOAT, "1e-3", "relative rank tolerance (see rank_atol)", NULL},
    {"top_sv", SL_OPT_INT, "0", "also record the N largest singular values (i.sv0 ...)", NULL},
    {"nc1", SL_OPT_STRING, "auto",
     "neural collapse of the penultimate features: auto (when the data have labels), true, false",
     "auto|true|false"},
    {"activations", SL_OPT_BOOL, "false",
     "with data: ranks of each hidden layer's centred activations (i.act.*)", NULL},
    {"other", SL_OPT_STRING, "",
     "checkpoint (safetensors) of a second model of the same architecture: linear CKA of "
     "each hidden layer's activations with its (i.cka); \"\" for none", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int set_named(sl_record *out, const sl_weight_layer *L, const char *what, double value)
{
    return sm_set(out, sl_module_path(L->mod), what, value);
}

/* t (units, len): row j the vector [w_in,j; b_j; w_out,j] of hidden layer h,
 * f64: the unit's rows of its producing (OUT) and consuming (IN) refs. */
static int neuron_vectors(sl_model *m, const sl_hidden_layer *h, double **t, int64_t *len)
{
    const int64_t k = h->units;
    *len = 0;
    for (int i = 0; i < h->nrefs; i++)
        if (sl_hidden_ref(h, i)->use != SL_UNITS_SELF)
            *len += sl_unit_ref_width(m, sl_hidden_ref(h, i), k);
    double *rows = malloc((size_t)(k * *len) * sizeof *rows);
    *t = malloc((size_t)(k * *len) * sizeof **t);
    if (!rows || !*t) {
        free(rows);
        free(*t);
        return sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    }
    int64_t at = 0;
    for (int i = 0; i < h->nrefs; i++) {
        const sl_unit_ref *r = sl_hidden_ref(h, i);
        if (r->use == SL_UNITS_SELF)
            continue;
        const int64_t width = sl_unit_ref_width(m, r, k);
        int rc = sl_unit_ref_rows(m, r, k, rows);
        if (rc < 0) {
            free(rows);
            free(*t);
            return rc;
        }
        for (int64_t j = 0; j < k; j++)
            memcpy(*t + j * *len + at, rows + j * width, (size_t)width * sizeof *rows);
        at += width;
    }
    free(rows);
    return SL_OK;
}

/* Relative distance of a and (sign * b). */
static double rel_distance(const double *a, const double *b, int64_t n, double sign)
{
    double d = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = a[i] - sign * b[i];
        d += e * e;
        na += a[i] * a[i];
        nb += b[i] * b[i];
    }
    double den = sqrt(na) + sqrt(nb);
    return den > 0 ? sqrt(d) / den : 0;
}

static int64_t find_root(int64_t *parent, int64_t j)
{
    while (parent[j] != j)
        j = parent[j] = parent[parent[j]];
    return j;
}

/* Number of clusters of units under single linkage (union-find). */
static int count_distinct(sl_model *m, const sl_hidden_layer *h, double tol, bool up_to_sign,
                          int64_t *distinct)
{
    double *t;
    int64_t len;
    SL_TRY(neuron_vectors(m, h, &t, &len));
    const int64_t units = h->units;
    int64_t *parent = malloc((size_t)units * sizeof *parent);
    if (!parent) {
        free(t);
        return sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    }
    for (int64_t j = 0; j < units; j++)
        parent[j] = j;
    *distinct = units;
    for (int64_t j = 0; j < units; j++)
        for (int64_t k = j + 1; k < units; k++) {
            double d = rel_distance(t + j * len, t + k * len, len, 1.0);
            if (up_to_sign)
                d = fmin(d, rel_distance(t + j * len, t + k * len, len, -1.0));
            int64_t a = find_root(parent, j), b = find_root(parent, k);
            if (d < tol && a != b) {
                parent[b] = a;
                (*distinct)--;
            }
        }
    free(parent);
    free(t);
    return SL_OK;
}

/* Dead units of h in the last forward's activations; *dead = -1 if the
 * activation does not have the units in dimension 1. */
static void count_dead(const sl_hidden_layer *h, double tol, int64_t *dead)
{
    const sl_tensor *a = sl_module_output(h->act);
    const int64_t units = h->units;
    *dead = -1;
    if (!a || a->ndim < 2 || a->shape[1] != units)
        return;
    const int64_t B = a->shape[0], per = sl_tensor_numel(a) / (B * units);
    *dead = 0;
    for (int64_t j = 0; j < units; j++) {
        bool alive = false;
        for (int64_t b = 0; b < B && !alive; b++)
            for (int64_t k = 0; k < per && !alive; k++)
                alive = fabs(sl_tensor_flat_get(a, (b * units + j) * per + k)) > tol;
        *dead += !alive;
    }
}

static int measure_layers(const sl_options *opt, sl_model *model, const sl_structure *st,
                          bool have_data, const sm_rank_opts *ro, sl_record *out)
{
    int64_t units = 0, dead_units = 0, dead_seen = 0, distinct_total = 0;
    for (int i = 0; i < sl_structure_nlayers(st); i++) {
        const sl_weight_layer *L = sl_structure_layer(st, i);
        SL_TRY(sm_weight_ranks(model, L, ro, out));
        const sl_hidden_layer *h = sl_structure_hidden(st, L->hidden_out);
        if (!h)
            continue;
        int64_t distinct = 0, dead = -1;
        SL_TRY(count_distinct(model, h, sl_options_float(opt, "distinct_tol"),
                              sl_options_bool(opt, "up_to_sign"), &distinct));
        SL_TRY(set_named(out, L, "units", (double)h->units));
        SL_TRY(set_named(out, L, "distinct_neurons", (double)distinct));
        units += h->units;
        distinct_total += distinct;
        if (!have_data)
            continue;
        count_dead(h, sl_options_float(opt, "dead_tol"), &dead);
        if (dead >= 0) {
            SL_TRY(set_named(out, L, "dead_fraction", (double)dead / (double)h->units));
            dead_units += dead;
            dead_seen += h->units;
        }
    }
    if (dead_seen > 0)
        SL_TRY(sl_record_set(out, "dead_fraction", (double)dead_units / (double)dead_seen));
    if (units > 0)
        SL_TRY(sl_record_set(out, "distinct_fraction", (double)distinct_total / (double)units));
    return SL_OK;
}

/* A clone of `model` holding the checkpoint at `path`, run forward on the
 * batch (evaluation mode). */
static int other_forward(sl_model *model, const char *path, const sm_batch *b,
                         sl_model **other)
{
    int rc = sl_model_clone(model, sl_model_dtype(model), other);
    if (rc >= 0 && (rc = sl_model_load(*other, path)) < 0)
        rc = sl_error_context(rc, "symmetry_metrics: other");
    if (rc >= 0) {
        const sl_tensor *y;
        sl_model_set_training(*other, false);
        rc = sl_model_forward(*other, b->x, &y);
    }
    return rc;
}

/* One hidden layer: ranks of its centred activations into "<path>.act.*"
 * and, with `other`, their CKA with the other model's ("<path>.cka").
 * K, L (n, n) and s (n) are scratch. */
static int hidden_activation(sl_model *other, const sl_weight_layer *W, const sl_hidden_layer *h,
                             const sm_rank_opts *ro, bool ranks, int64_t n, double *K, double *L,
                             double *s, sl_record *out, double *cka)
{
    const sl_tensor *a = sl_module_output(h->act);
    if (a->shape[0] != n)
        return sl_error(SL_ESTATE, "symmetry_metrics: %s holds %lld rows, the batch %lld",
                        sl_module_path(h->act), (long long)a->shape[0], (long long)n);
    SL_TRY(sm_activation_gram(a, K));
    if (ranks) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s.act", sl_module_path(W->mod));
        SL_TRY(om_gram_spectrum(K, n, s));
        SL_TRY(sm_record_spectrum(out, prefix, s, n, ro));
    }
    if (!other)
        return SL_OK;
    const sl_module *twin = sl_model_find_module(other, sl_module_path(h->act));
    const sl_tensor *b = twin ? sl_module_output(twin) : NULL;
    if (!b || b->shape[0] != n)
        return sl_error(SL_ESTATE, "symmetry_metrics: other: no activations of %s",
                        sl_module_path(h->act));
    SL_TRY(sm_activation_gram(b, L));
    *cka = om_cka(K, L, n);
    return set_named(out, W, "cka", *cka);
}

/* Activation ranks and CKA of every hidden layer, after the forward of b
 * (and of `other` on the same rows). */
static int measure_activations(sl_model *other, const sl_structure *st, const sm_batch *b,
                               const sm_rank_opts *ro, bool ranks, sl_record *out)
{
    const int64_t n = b->x->shape[0];
    double *K = malloc((size_t)(n * n) * sizeof *K), *L = malloc((size_t)(n * n) * sizeof *L);
    double *s = malloc((size_t)n * sizeof *s);
    int rc = K && L && s ? SL_OK : sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    double sum = 0;
    int count = 0;
    for (int i = 0; rc >= 0 && i < sl_structure_nlayers(st); i++) {
        const sl_weight_layer *W = sl_structure_layer(st, i);
        const sl_hidden_layer *h = sl_structure_hidden(st, W->hidden_out);
        if (!h || !sl_module_output(h->act))
            continue;
        double cka = NAN;
        rc = hidden_activation(other, W, h, ro, ranks, n, K, L, s, out, &cka);
        sum += cka;
        count++;
    }
    if (rc >= 0 && other && count > 0)
        rc = sl_record_set(out, "cka", sum / count);
    free(K);
    free(L);
    free(s);
    return rc;
}

/* NC1 as the option asks: "auto" skips quietly where it does not apply. */
static int measure_nc1(const sl_options *opt, sl_model *model, const sl_structure *st,
                       const sm_batch *b, sl_record *out)
{
    const char *mode = sl_options_string(opt, "nc1");
    if (strcmp(mode, "false") == 0)
        return SL_OK;
    const char *why = b->x ? sm_nc1_unavailable(st, b) : "it needs data";
    if (why) {
        if (strcmp(mode, "true") == 0)
            return sl_error(SL_EINVAL, "symmetry_metrics: nc1: %s", why);
        return SL_OK;
    }
    double nc1;
    int64_t classes;
    SL_TRY(sm_nc1(model, st, b, &nc1, &classes));
    SL_TRY(sl_record_set(out, "nc1", nc1));
    return sl_record_set(out, "nc1_classes", (double)classes);
}

static int metrics_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                           sl_record *out)
{
    const int64_t probe_batch = sl_options_int(opt, "probe_batch");
    if (probe_batch < 1)
        return sl_error(SL_EINVAL, "symmetry_metrics: probe_batch must be >= 1");
    sm_rank_opts ro;
    SL_TRY(sm_rank_opts_get(opt, "symmetry_metrics", &ro));
    const char *other_path = sl_options_string(opt, "other");
    const bool ranks = sl_options_bool(opt, "activations");
    const bool have_data = data && sl_dataset_size(data) > 0;
    if (!have_data && (*other_path || ranks))
        return sl_error(SL_EINVAL, "symmetry_metrics: %s needs data",
                        *other_path ? "other (CKA)" : "activations");
    sm_batch b = {0};
    if (have_data)
        SL_TRY(sm_batch_forward(model, data, probe_batch, &b));
    sl_structure *st = NULL;
    sl_model *other = NULL;
    bool product;
    int rc = sl_model_structure(model, &st);
    if (rc >= 0)
        rc = measure_layers(opt, model, st, have_data, &ro, out);
    if (rc >= 0)
        rc = sm_product_ranks(model, st, &ro, out, &product);
    if (rc >= 0)
        rc = measure_nc1(opt, model, st, &b, out);
    if (rc >= 0 && *other_path)
        rc = other_forward(model, other_path, &b, &other);
    if (rc >= 0 && (other || ranks))
        rc = measure_activations(other, st, &b, &ro, ranks, out);
    sl_model_free(other);
    sl_structure_free(st);
    sm_batch_free(&b);
    return rc;
}

const sl_probe_type sm_probe_type = {
    .name = "symmetry_metrics",
    .summary = "per layer: rank, stable and effective rank of each weight; per hidden layer: "
               "distinct neurons and, with data, dead-neuron fraction, activation ranks and "
               "CKA with another model; NC1 of the penultimate features "
               "(docs/symmetry-breaking.md)",
    .options = metrics_options,
    .measure = metrics_measure,
};
