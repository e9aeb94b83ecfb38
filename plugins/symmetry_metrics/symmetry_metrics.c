/* plugins/symmetry_metrics — order parameters of the symmetries of a
 * trained network (PAPERS.md section 8.2): how far each layer sits from the
 * symmetric subspaces of rescaling (dead neurons), permutation (identical
 * neurons) and rotation (low rank).
 *
 * For every weight layer i (see units.h; names use the module index, as the
 * parameters do):
 *   i.stable_rank     ||W||_F^2 / ||W||_2^2 of the (out, fan_in) matrix;
 *   i.effective_rank  exp(-sum_k p_k log p_k), p_k = s_k / sum s (Roy &
 *                     Vetterli's entropy rank; 0 for W = 0).
 * For every hidden weight layer additionally:
 *   i.units           its number of units;
 *   i.distinct_neurons clusters of units under single linkage with
 *                     d_jk = ||t_j - t_k|| / (||t_j|| + ||t_k||) < distinct_tol,
 *                     t_j = [w_in,j; b_j; w_out,j] (section 8.2; with
 *                     up_to_sign, min(d(t_j, t_k), d(t_j, -t_k)): the sign
 *                     flip that odd activations such as tanh allow);
 *   i.dead_fraction   (with data) fraction of units whose activation — the
 *                     output of the activation/dropout/batchnorm modules
 *                     right after the layer, evaluation mode — has
 *                     |a| <= dead_tol on every sample (and position) of the
 *                     first probe_batch rows of the data.
 * Totals over the hidden layers: "dead_fraction" (dead units / units) and
 * "distinct_fraction" (distinct neurons / units).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <symlab/symlab.h>

#include "units.h"

static const sl_option_spec metrics_options[] = {
    {"probe_batch", SL_OPT_INT, "512", "rows of the data used for dead-neuron detection", NULL},
    {"dead_tol", SL_OPT_FLOAT, "1e-6", "a unit is dead if |activation| <= dead_tol everywhere",
     NULL},
    {"distinct_tol", SL_OPT_FLOAT, "1e-3",
     "units closer than this relative distance count as one neuron", NULL},
    {"up_to_sign", SL_OPT_BOOL, "false", "also identify neurons t_j = -t_k (odd activations)",
     NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int set_named(sl_record *out, int module, const char *what, double value)
{
    char name[64];
    snprintf(name, sizeof name, "%d.%s", module, what);
    return sl_record_set(out, name, value);
}

/* Stable and entropy effective rank of one weight. */
static int measure_ranks(sl_model *m, const su_layer *L, sl_record *out)
{
    sl_tensor s = {0};
    SL_TRY(su_singular_values(sl_model_param(m, L->weight), &s));
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
    SL_TRY(set_named(out, L->module, "stable_rank", stable));
    return set_named(out, L->module, "effective_rank", sum > 0 ? exp(entropy) : 0);
}

/* t (units, len): the vectors [w_in,j; b_j; w_out,j] of layer L, f64. */
static int neuron_vectors(sl_model *m, const su_layer *L, double **t, int64_t *len)
{
    const su_layer *next = L + 1;
    const int64_t out_next = next->units;
    *len = L->fan_in + (L->bias >= 0) + out_next * L->block;
    *t = malloc((size_t)(L->units * *len) * sizeof **t);
    if (!*t)
        return sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    const sl_tensor *w = sl_model_param(m, L->weight), *w2 = sl_model_param(m, next->weight);
    for (int64_t j = 0; j < L->units; j++) {
        double *v = *t + j * *len;
        for (int64_t i = 0; i < L->fan_in; i++)
            *v++ = sl_tensor_flat_get(w, j * L->fan_in + i);
        if (L->bias >= 0)
            *v++ = sl_tensor_flat_get(sl_model_param(m, L->bias), j);
        for (int64_t o = 0; o < out_next; o++)
            for (int64_t b = 0; b < L->block; b++)
                *v++ = sl_tensor_flat_get(w2, o * next->fan_in + j * L->block + b);
    }
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
static int count_distinct(sl_model *m, const su_layer *L, double tol, bool up_to_sign,
                          int64_t *distinct)
{
    double *t;
    int64_t len;
    SL_TRY(neuron_vectors(m, L, &t, &len));
    int64_t *parent = malloc((size_t)L->units * sizeof *parent);
    if (!parent) {
        free(t);
        return sl_error(SL_ENOMEM, "symmetry_metrics: out of memory");
    }
    for (int64_t j = 0; j < L->units; j++)
        parent[j] = j;
    *distinct = L->units;
    for (int64_t j = 0; j < L->units; j++)
        for (int64_t k = j + 1; k < L->units; k++) {
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

/* Dead units of L in the last forward's activations; *dead = -1 if the
 * activation does not have the units in dimension 1. */
static void count_dead(const sl_model *m, const su_layer *L, double tol, int64_t *dead)
{
    const sl_tensor *a = sl_model_activation(m, L->act_module);
    *dead = -1;
    if (!a || a->ndim < 2 || a->shape[1] != L->units)
        return;
    const int64_t B = a->shape[0], per = sl_tensor_numel(a) / (B * L->units);
    *dead = 0;
    for (int64_t j = 0; j < L->units; j++) {
        bool alive = false;
        for (int64_t b = 0; b < B && !alive; b++)
            for (int64_t k = 0; k < per && !alive; k++)
                alive = fabs(sl_tensor_flat_get(a, (b * L->units + j) * per + k)) > tol;
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

static int metrics_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                           sl_record *out)
{
    su_layer layers[SU_MAX_LAYERS];
    int n;
    SL_TRY(su_find_layers(model, layers, &n));
    const int64_t probe_batch = sl_options_int(opt, "probe_batch");
    if (probe_batch < 1)
        return sl_error(SL_EINVAL, "symmetry_metrics: probe_batch must be >= 1");
    const bool have_data = data && sl_dataset_size(data) > 0;
    if (have_data)
        SL_TRY(probe_forward(model, data, probe_batch));
    int64_t units = 0, dead_units = 0, dead_seen = 0, distinct_total = 0;
    for (int i = 0; i < n; i++) {
        const su_layer *L = &layers[i];
        SL_TRY(measure_ranks(model, L, out));
        if (L->block == 0)
            continue;
        int64_t distinct = 0, dead = -1;
        SL_TRY(count_distinct(model, L, sl_options_float(opt, "distinct_tol"),
                              sl_options_bool(opt, "up_to_sign"), &distinct));
        SL_TRY(set_named(out, L->module, "units", (double)L->units));
        SL_TRY(set_named(out, L->module, "distinct_neurons", (double)distinct));
        units += L->units;
        distinct_total += distinct;
        if (!have_data)
            continue;
        count_dead(model, L, sl_options_float(opt, "dead_tol"), &dead);
        if (dead >= 0) {
            SL_TRY(set_named(out, L->module, "dead_fraction", (double)dead / (double)L->units));
            dead_units += dead;
            dead_seen += L->units;
        }
    }
    if (dead_seen > 0)
        SL_TRY(sl_record_set(out, "dead_fraction", (double)dead_units / (double)dead_seen));
    if (units > 0)
        SL_TRY(sl_record_set(out, "distinct_fraction", (double)distinct_total / (double)units));
    return SL_OK;
}

static const sl_probe_type metrics_type = {
    .name = "symmetry_metrics",
    .summary = "per layer: stable and effective rank of each weight; per hidden layer: "
               "distinct neurons and (with data) dead-neuron fraction (PAPERS.md 8.2)",
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
