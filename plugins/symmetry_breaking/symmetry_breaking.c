/* plugins/symmetry_breaking — the workbench's replica-distance metric.
 *
 * Zhang et al. 2024 (docs/background/input-expansion.md) define a "degree of symmetry
 * breaking" (a replica distance) whose formula is not available to us.
 * This probe is a clearly labelled proxy, defined here and in
 * docs/symmetry-breaking.md:
 *
 *   1. R replicas (`replicas`) of the given model: copies of its current
 *      parameters (shared initialisation, the spin-glass sense of replicas),
 *      or with `independent_init`, fresh initialisations from seeds.
 *   2. Each is trained `steps` SGD steps (lr, momentum, weight_decay,
 *      batch) by sl_train — the loop sl.train runs, with the caller's
 *      `hooks` (an option of type hooks: the objects given to sl.train for
 *      the arm measured, so a control living in a hook is trained as the
 *      arm is) — on the same random `subset` rows of the data; replicas
 *      differ only in the order of the batches and in their dropout noise
 *      (sl_model_seed_noise), both drawn from (seed, replica).  The
 *      replicas start from the model as it is when the probe runs (at
 *      initialisation, or after training: docs/symmetry-breaking.md).
 *   3. theta_r = all parameters of replica r flattened, normalised to unit
 *      length.  Reported:
 *        distance          mean over pairs r < s of ||theta_r - theta_s||  (in [0, 2])
 *        distance_std      its standard deviation over the pairs
 *        overlap           mean over pairs of theta_r . theta_s = 1 - |.|^2 / 2
 *        aligned_distance  mean over pairs of min over hidden-unit permutations
 *                          pi of ||theta_r - pi(theta_s)||, pi found by weight
 *                          matching (plugins/asym/match.h: exact with one
 *                          hidden layer, a local optimum with more)
 *        drift             mean over replicas of ||theta_r - theta_0||, theta_0 the
 *                          normalised given model (how far training moved at all)
 *        spectral_distance mean over pairs of the mean over weight layers of
 *                          ||s_r - s_s||, s the singular values of the layer's
 *                          (out, fan_in) matrix divided by their Euclidean norm
 *                          (= the spectrum of W / ||W||_F): invariant under
 *                          permutations (and rotations) of hidden units
 *        gram_distance     mean over pairs of the mean over hidden layers of
 *                          ||G_r - G_s||_F, G the Gram matrix A A^T of the
 *                          layer's centred activations A (probe_batch rows of
 *                          the subset, evaluation mode) divided by its
 *                          Frobenius norm; equals sqrt(2 - 2 CKA), CKA the
 *                          linear centred kernel alignment; permutation-
 *                          invariant (absent without hidden layers)
 *        train_loss        mean training loss of the replicas' last min(steps, 20) steps
 *
 * Reading: with a shared initialisation, replicas drift apart only as far as
 * the training noise can push them.  A larger distance means the noise moves
 * them further — more nearly degenerate (flat, symmetric) directions around
 * the trajectory; a smaller distance means the data pin the parameters down
 * (in the Ising analogy, one ordered state is selected: the symmetry is
 * broken).  Whether the paper's metric grows or shrinks with "more symmetry
 * breaking" is unconfirmed; compare configurations, do not read absolute
 * values.  The plain distance is not permutation-invariant: with
 * independent_init it mostly measures the permutation (and rotation)
 * ambiguity, which the aligned distance removes (permutations) and the
 * spectral and Gram variants remove (both).
 *
 * shuffle_units (a check of the metric) permutes the hidden units of every
 * replica at random after training: the functions are unchanged, the plain
 * distance grows, the spectral and Gram distances do not move.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match.h" /* weight matching, from plugins/asym */
#include "sb.h"

#define MAX_SWEEPS 100 /* weight matching's limit; one hidden layer needs one sweep */

static const sl_option_spec sb_options[] = {
    {"replicas", SL_OPT_INT, "4", "number of replicas R (>= 2)", NULL},
    {"steps", SL_OPT_INT, "200", "SGD steps per replica (0: measure the given model)", NULL},
    {"subset", SL_OPT_INT, "1000", "rows of the data drawn once and shared (0: all)", NULL},
    {"batch", SL_OPT_INT, "32", "batch size", NULL},
    {"lr", SL_OPT_FLOAT, "0.05", "SGD learning rate", NULL},
    {"momentum", SL_OPT_FLOAT, "0", "SGD momentum", NULL},
    {"weight_decay", SL_OPT_FLOAT, "0", "SGD weight decay", NULL},
    {"loss", SL_OPT_STRING, "cross_entropy", "loss type", NULL},
    {"seed", SL_OPT_INT, "1", "seed of the subset, the batch orders, the noise and the alignment", NULL},
    {"independent_init", SL_OPT_BOOL, "false",
     "re-initialise each replica from its own seed instead of copying the model", NULL},
    {"probe_batch", SL_OPT_INT, "256", "rows of the subset for the Gram variant", NULL},
    {"shuffle_units", SL_OPT_BOOL, "false",
     "check: permute hidden units of each replica after training", NULL},
    {"hooks", SL_OPT_HOOKS, "",
     "hooks the replicas are trained with (the ones given to sl.train)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static double euclid(const double *a, const double *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(d);
}

static double dot(const double *a, const double *b, int64_t n)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++)
        d += a[i] * b[i];
    return d;
}

/* Mean over the hidden (grams) or all (spectra) layers of per-layer distances. */
static double spectral_pair(const sb_work *w, const double *a, const double *b)
{
    double sum = 0;
    const int n = sl_structure_nlayers(w->st);
    for (int l = 0; l < n; l++) {
        int64_t k = sb_spectrum_length(sl_structure_layer(w->st, l));
        sum += euclid(a, b, k);
        a += k;
        b += k;
    }
    return n > 0 ? sum / n : 0;
}

static double gram_pair(const sb_work *w, const double *a, const double *b)
{
    int64_t layers = w->ngrams / (w->B * w->B);
    double sum = 0;
    for (int64_t l = 0; l < layers; l++)
        sum += euclid(a + l * w->B * w->B, b + l * w->B * w->B, w->B * w->B);
    return sum / (double)layers;
}

/* min over hidden-unit permutations π of ||theta_r - π(theta_s)||: a copy of
 * replica s weight-matched onto replica r (maximising <theta_r, π theta_s>
 * is minimising the distance of the unit vectors), normalised into
 * `scratch`.  Exact with one hidden layer, a local optimum with more. */
static int aligned_pair(const sb_work *w, const sb_replica *r, const sb_replica *s,
                        uint64_t seed, double *scratch, double *d)
{
    sl_model *b;
    SL_TRY(sl_model_clone(s->model, sl_model_dtype(s->model), &b));
    asym_matcher M;
    int64_t sweeps;
    bool converged;
    int rc = asym_matcher_init(&M, r->model, b, w->st);
    if (rc >= 0)
        rc = asym_matcher_align(&M, seed, MAX_SWEEPS, &sweeps, &converged);
    if (rc >= 0)
        rc = sb_unit_params(b, scratch, w->numel);
    if (rc >= 0)
        *d = euclid(r->theta, scratch, w->numel);
    asym_matcher_free(&M);
    sl_model_free(b);
    return rc;
}

static int report(const sb_work *w, const sb_args *a, const sb_replica *rep, sl_record *out)
{
    double *scratch = malloc((size_t)w->numel * sizeof *scratch);
    if (!scratch)
        return sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
    double sd = 0, sd2 = 0, sq = 0, ss = 0, sg = 0, sa = 0, drift = 0, loss = 0;
    int rc = SL_OK;
    int64_t pairs = 0;
    for (int64_t r = 0; r < a->replicas; r++) {
        drift += euclid(rep[r].theta, w->theta0, w->numel);
        loss += rep[r].loss;
        for (int64_t s = r + 1; rc >= 0 && s < a->replicas; s++) {
            double d = euclid(rep[r].theta, rep[s].theta, w->numel), da = 0;
            rc = aligned_pair(w, &rep[r], &rep[s], a->seed, scratch, &da);
            sa += da;
            sd += d;
            sd2 += d * d;
            sq += dot(rep[r].theta, rep[s].theta, w->numel);
            ss += spectral_pair(w, rep[r].spectra, rep[s].spectra);
            if (w->ngrams > 0)
                sg += gram_pair(w, rep[r].grams, rep[s].grams);
            pairs++;
        }
    }
    free(scratch);
    SL_TRY(rc);
    const double P = (double)pairs, R = (double)a->replicas;
    SL_TRY(sl_record_set(out, "distance", sd / P));
    SL_TRY(sl_record_set(out, "distance_std", sqrt(fmax(0, sd2 / P - (sd / P) * (sd / P)))));
    SL_TRY(sl_record_set(out, "overlap", sq / P));
    SL_TRY(sl_record_set(out, "aligned_distance", sa / P));
    SL_TRY(sl_record_set(out, "drift", drift / R));
    SL_TRY(sl_record_set(out, "spectral_distance", ss / P));
    if (w->ngrams > 0)
        SL_TRY(sl_record_set(out, "gram_distance", sg / P));
    if (a->steps > 0)
        SL_TRY(sl_record_set(out, "train_loss", loss / R));
    return SL_OK;
}

static int read_args(const sl_options *opt, sb_args *a)
{
    *a = (sb_args){
        .replicas = sl_options_int(opt, "replicas"),
        .steps = sl_options_int(opt, "steps"),
        .batch = sl_options_int(opt, "batch"),
        .probe_batch = sl_options_int(opt, "probe_batch"),
        .lr = sl_options_float(opt, "lr"),
        .momentum = sl_options_float(opt, "momentum"),
        .weight_decay = sl_options_float(opt, "weight_decay"),
        .seed = (uint64_t)sl_options_int(opt, "seed"),
        .independent = sl_options_bool(opt, "independent_init"),
        .shuffle = sl_options_bool(opt, "shuffle_units"),
        .loss = sl_options_string(opt, "loss"),
    };
    a->hooks = sl_options_hooks(opt, "hooks", &a->nhooks);
    if (a->replicas < 2)
        return sl_error(SL_EINVAL, "symmetry_breaking: replicas must be >= 2, got %lld",
                        (long long)a->replicas);
    if (a->steps < 0 || a->batch < 1 || a->probe_batch < 2)
        return sl_error(SL_EINVAL,
                        "symmetry_breaking: need steps >= 0, batch >= 1, probe_batch >= 2");
    if (!sl_registry_find(SL_KIND_LOSS, a->loss))
        return sl_error(SL_ENOTFOUND, "symmetry_breaking: option 'loss': no loss type '%s'",
                        a->loss);
    return SL_OK;
}

static int setup(sb_work *w, const sb_args *a)
{
    SL_TRY(sl_model_structure(w->base, &w->st));
    w->numel = sl_model_numel(w->base);
    w->nspectra = 0;
    const int hidden = sl_structure_nhidden(w->st);
    for (int l = 0; l < sl_structure_nlayers(w->st); l++)
        w->nspectra += sb_spectrum_length(sl_structure_layer(w->st, l));
    SL_TRY(sl_dataset_head_x(w->data, a->probe_batch, sl_model_dtype(w->base), &w->probe_x));
    w->B = w->probe_x.shape[0];
    w->ngrams = hidden * w->B * w->B;
    w->theta0 = malloc((size_t)w->numel * sizeof *w->theta0);
    if (!w->theta0)
        return sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
    return sb_unit_params(w->base, w->theta0, w->numel);
}

static void free_replicas(sb_replica *rep, int64_t n)
{
    for (int64_t r = 0; rep && r < n; r++) {
        sl_model_free(rep[r].model);
        free(rep[r].theta);
        free(rep[r].spectra);
        free(rep[r].grams);
    }
    free(rep);
}

static int measure_all(sb_work *w, const sb_args *a, sl_record *out)
{
    SL_TRY(setup(w, a));
    sb_replica *rep = calloc((size_t)a->replicas, sizeof *rep);
    int rc = rep ? SL_OK : sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
    for (int64_t r = 0; rc >= 0 && r < a->replicas; r++) {
        rep[r].theta = malloc((size_t)w->numel * sizeof(double));
        rep[r].spectra = malloc((size_t)(w->nspectra + 1) * sizeof(double));
        rep[r].grams = malloc((size_t)(w->ngrams + 1) * sizeof(double));
        if (!rep[r].theta || !rep[r].spectra || !rep[r].grams)
            rc = sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
        if (rc >= 0)
            rc = sb_run_replica(w, a, r, &rep[r]);
        if (rc < 0)
            rc = sl_error_context(rc, "replica %lld", (long long)r);
    }
    if (rc >= 0)
        rc = report(w, a, rep, out);
    free_replicas(rep, a->replicas);
    return rc;
}

static int sb_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                      sl_record *out)
{
    sb_args a;
    SL_TRY(read_args(opt, &a));
    if (!data || sl_dataset_size(data) < 2)
        return sl_error(SL_EINVAL, "symmetry_breaking: needs a training data set");
    const int64_t n = sl_dataset_size(data), want = sl_options_int(opt, "subset");
    sl_dataset sub = {0}, rest = {0};
    const sl_dataset *use = data;
    if (want > 0 && want < n) {
        SL_TRY(sl_dataset_split(data, want, a.seed, &sub, &rest));
        sl_dataset_release(&rest);
        use = &sub;
    }
    sb_work w = {.base = model, .data = use};
    int rc = measure_all(&w, &a, out);
    sl_tensor_release(&w.probe_x);
    sl_structure_free(w.st);
    free(w.theta0);
    sl_dataset_release(&sub);
    return rc;
}

static const sl_probe_type sb_type = {
    .name = "symmetry_breaking",
    .summary = "replica distance (workbench proxy of Zhang et al. 2024, not the paper's formula): "
               "R replicas from the model's parameters trained S SGD steps (with the caller's "
               "hooks) on one data subset, differing in batch order and dropout noise; mean "
               "pairwise distance of unit-norm parameter vectors, plus permutation-invariant "
               "variants: weight-matched (aligned), spectral and Gram "
               "(larger: noise moves replicas further apart; see docs/symmetry-breaking.md)",
    .options = sb_options,
    .measure = sb_measure,
};

static const sl_probe_type *const probes[] = {&sb_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "symmetry_breaking",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "replica-distance symmetry-breaking metric",
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
