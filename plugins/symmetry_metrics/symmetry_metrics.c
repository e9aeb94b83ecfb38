/* plugins/symmetry_metrics — order parameters of the symmetries of a
 * trained network (docs/background/order-parameters.md): how far each layer sits from the
 * symmetric subspaces of rescaling (dead neurons), permutation (identical
 * neurons) and rotation (low rank).
 *
 * For every weight layer i (structure.h; names use the module index, as the
 * parameters do):
 *   i.stable_rank     ||W||_F^2 / ||W||_2^2 of the (out, fan_in) matrix;
 *   i.effective_rank  exp(-sum_k p_k log p_k), p_k = s_k / sum s (Roy &
 *                     Vetterli's entropy rank; 0 for W = 0).
 * For every hidden weight layer additionally:
 *   i.units           its number of units;
 *   i.distinct_neurons clusters of units under single linkage with
 *                     d_jk = ||t_j - t_k|| / (||t_j|| + ||t_k||) < distinct_tol,
 *                     t_j = [w_in,j; b_j; w_out,j], the unit's rows of the
 *                     producing and consuming layers (section 8.2; with
 *                     up_to_sign, min(d(t_j, t_k), d(t_j, -t_k)): the sign
 *                     flip that odd activations such as tanh allow);
 *   i.dead_fraction   (with data) fraction of units whose activation — the
 *                     output of the last per-unit map after the layer
 *                     that keeps its shape, evaluation mode — has
 *                     |a| <= dead_tol on every sample (and position) of the
 *                     first probe_batch rows of the data.
 * Totals over the hidden layers: "dead_fraction" (dead units / units) and
 * "distinct_fraction" (distinct neurons / units).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

static const sl_option_spec metrics_options[] = {
    {"probe_batch", SL_OPT_INT, "512", "rows of the data used for dead-neuron detection", NULL},
    {"dead_tol", SL_OPT_FLOAT, "1e-6", "a unit is dead if |activation| <= dead_tol everywhere",
     NULL},
    {"distinct_tol", SL_OPT_FLOAT, "1e-3",
     "units closer than this relative distance count as one neuron", NULL},
    {"up_to_sign", SL_OPT_BOOL, "false", "also identify neurons t_j = -t_k (odd activations)",
     NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int set_named(sl_record *out, const sl_weight_layer *L, const char *what, double value)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", sl_module_path(L->mod), what);
    return sl_record_set(out, name, value);
}

/* Stable and entropy effective rank of one weight. */
static int measure_ranks(sl_model *m, const sl_weight_layer *L, sl_record *out)
{
    sl_tensor w = {0}, s = {0};
    SL_TRY(sl_weight_layer_matrix(m, L, &w));
    int rc = sl_svd(&w, NULL, &s, NULL);
    sl_tensor_release(&w);
    SL_TRY(rc);
    const double *sv = s.data;
    int64_t k = sl_tensor_numel(&s);
    double sum = 0, sum2 = 0, entropy = 0;
    for (int64_t i = 0; i < k; i++) {
        sum += sv[i];
        sum2 += sv[i] * sv[i];
    }
    for (int64_t i = 0; i < k && sum > 0; i++)
        if (sv[i] > 0)
            entropy -= sv[i] / sum * log(sv[i] / sum);
    double stable = k > 0 && sv[0] > 0 ? sum2 / (sv[0] * sv[0]) : 0;
    sl_tensor_release(&s);
    SL_TRY(set_named(out, L, "stable_rank", stable));
    return set_named(out, L, "effective_rank", sum > 0 ? exp(entropy) : 0);
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

/* Evaluation-mode forward of the first probe_batch rows (mode restored). */
static int probe_forward(sl_model *m, const sl_dataset *data, int64_t rows)
{
    sl_batcher *b;
    const sl_tensor *x, *y;
    SL_TRY(sl_batcher_new(data, rows, sl_model_dtype(m), false, 0, false, &b));
    sl_batcher_begin_epoch(b, 0);
    int rc = sl_batcher_next(b, &x, &y);
    bool training = sl_model_training(m);
    sl_model_set_training(m, false);
    const sl_tensor *out;
    if (rc > 0)
        rc = sl_model_forward(m, x, &out);
    sl_model_set_training(m, training);
    sl_batcher_free(b);
    return rc < 0 ? rc : SL_OK;
}

static int measure_layers(const sl_options *opt, sl_model *model, const sl_structure *st,
                          bool have_data, sl_record *out)
{
    int64_t units = 0, dead_units = 0, dead_seen = 0, distinct_total = 0;
    for (int i = 0; i < sl_structure_nlayers(st); i++) {
        const sl_weight_layer *L = sl_structure_layer(st, i);
        SL_TRY(measure_ranks(model, L, out));
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

static int metrics_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                           sl_record *out)
{
    const int64_t probe_batch = sl_options_int(opt, "probe_batch");
    if (probe_batch < 1)
        return sl_error(SL_EINVAL, "symmetry_metrics: probe_batch must be >= 1");
    const bool have_data = data && sl_dataset_size(data) > 0;
    if (have_data)
        SL_TRY(probe_forward(model, data, probe_batch));
    sl_structure *st;
    SL_TRY(sl_model_structure(model, &st));
    int rc = measure_layers(opt, model, st, have_data, out);
    sl_structure_free(st);
    return rc;
}

static const sl_probe_type metrics_type = {
    .name = "symmetry_metrics",
    .summary = "per layer: stable and effective rank of each weight; per hidden layer: "
               "distinct neurons and (with data) dead-neuron fraction "
               "(docs/background/order-parameters.md)",
    .options = metrics_options,
    .measure = metrics_measure,
};

static const sl_probe_type *const probes[] = {&metrics_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "symmetry_metrics",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "dead neurons, distinct neurons, stable and effective rank",
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
