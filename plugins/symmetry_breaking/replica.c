/* plugins/symmetry_breaking/replica.c — one replica: a copy of the model
 * trained `steps` SGD steps by sl_train (with the caller's hooks) in its
 * own batch order and dropout noise, then its unit parameter vector, the
 * normalised spectra of its weight layers and the normalised centred Gram
 * matrices of its hidden activations on the probe batch. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sb.h"

#define LOSS_WINDOW 20 /* train_loss: the mean of the last steps' losses */

static int64_t replica_seed(uint64_t seed, int64_t r)
{
    sl_rng g;
    sl_rng_derive(&g, seed, 0x73796d62 /* "symb" */ + (uint64_t)r);
    return (int64_t)(sl_rng_next(&g) >> 1);
}

/* Scales v to unit length (a zero vector stays zero). */
void sb_normalise(double *v, int64_t n)
{
    double norm = 0;
    for (int64_t i = 0; i < n; i++)
        norm += v[i] * v[i];
    norm = sqrt(norm);
    for (int64_t i = 0; i < n && norm > 0; i++)
        v[i] /= norm;
}

/* Copies the flat parameters into v (f64) and normalises to unit length. */
int sb_unit_params(sl_model *m, double *v, int64_t n)
{
    sl_tensor dst = {0};
    SL_TRY(sl_tensor_wrap(&dst, v, SL_F64, 1, &n));
    SL_TRY(sl_tensor_copy(&dst, sl_model_flat_params(m)));
    sb_normalise(v, n);
    return SL_OK;
}

int64_t sb_spectrum_length(const sl_weight_layer *L)
{
    return L->units < L->fan_in ? L->units : L->fan_in;
}

static int replica_spectra(sl_model *m, const sb_work *w, double *out)
{
    for (int l = 0; l < sl_structure_nlayers(w->st); l++) {
        sl_tensor mat = {0}, s = {0};
        SL_TRY(sl_weight_layer_matrix(m, sl_structure_layer(w->st, l), &mat));
        int rc = sl_svd(&mat, NULL, &s, NULL);
        sl_tensor_release(&mat);
        SL_TRY(rc);
        int64_t k = sl_tensor_numel(&s);
        memcpy(out, s.data, (size_t)k * sizeof *out);
        sl_tensor_release(&s);
        sb_normalise(out, k);
        out += k;
    }
    return SL_OK;
}

/* Normalised centred Gram matrix (B x B) of one activation (B, ...). */
static int activation_gram(const sl_tensor *a, int64_t B, double *gram)
{
    const int64_t f = sl_tensor_numel(a) / B;
    double *c = malloc((size_t)(B * f) * sizeof *c);
    if (!c)
        return sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
    sl_tensor wrapped = {0};
    int rc = sl_tensor_wrap(&wrapped, c, SL_F64, a->ndim, a->shape);
    if (rc >= 0)
        rc = sl_tensor_copy(&wrapped, a);
    if (rc < 0) {
        free(c);
        return rc;
    }
    for (int64_t j = 0; j < f; j++) { /* centre every feature over the batch */
        double mean = 0;
        for (int64_t b = 0; b < B; b++)
            mean += c[b * f + j];
        mean /= (double)B;
        for (int64_t b = 0; b < B; b++)
            c[b * f + j] -= mean;
    }
    sl_dgemm(false, true, B, B, f, 1.0, c, f, c, f, 0.0, gram, B);
    free(c);
    sb_normalise(gram, B * B);
    return SL_OK;
}

static int replica_grams(sl_model *m, const sb_work *w, double *out)
{
    const sl_tensor *y;
    sl_model_set_training(m, false);
    SL_TRY(sl_model_forward(m, &w->probe_x, &y));
    for (int h = 0; h < sl_structure_nhidden(w->st); h++) {
        const sl_hidden_layer *hl = sl_structure_hidden(w->st, h);
        SL_TRY(activation_gram(sl_module_output(sl_model_find_module(m, sl_module_path(hl->act))), w->B, out));
        out += w->B * w->B;
    }
    return SL_OK;
}

static int shuffle_units(sl_model *m, const sb_work *w, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int h = 0; h < sl_structure_nhidden(w->st); h++) {
        const int64_t units = sl_structure_hidden(w->st, h)->units;
        int64_t *perm = malloc((size_t)units * sizeof *perm);
        if (!perm)
            return sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
        for (int64_t j = 0; j < units; j++)
            perm[j] = j;
        sl_rng_shuffle(&rng, perm, units);
        int rc = sl_structure_permute(m, w->st, h, perm);
        free(perm);
        SL_TRY(rc);
    }
    return SL_OK;
}

/* The mean loss of the last LOSS_WINDOW steps, from sl_train's on_step. */
typedef struct loss_tail {
    int64_t steps;
    double sum;
    int64_t counted;
} loss_tail;

static int on_step(void *userdata, const sl_step_info *info)
{
    loss_tail *t = userdata;
    if (info->step > t->steps - LOSS_WINDOW) { /* steps count from 1 */
        t->sum += info->loss;
        t->counted++;
    }
    return SL_OK;
}

/* `steps` SGD steps on the subset through sl_train — the loop sl.train
 * runs, calling the caller's hooks — in the replica's own batch order
 * (the training seed), whole batches only. */
static int train_replica(sl_model *m, const sb_work *w, const sb_args *a, uint64_t seed,
                         double *loss)
{
    const int64_t per_epoch = sl_dataset_size(w->data) / a->batch;
    if (per_epoch < 1)
        return sl_error(SL_EINVAL, "symmetry_breaking: batch %lld is larger than the %lld rows "
                        "trained on (option 'subset')", (long long)a->batch,
                        (long long)sl_dataset_size(w->data));
    sl_options *o = sl_options_new(), *t = sl_options_new();
    sl_optim *opt = NULL;
    int rc = o && t ? SL_OK : sl_error(SL_ENOMEM, "symmetry_breaking: out of memory");
    if (rc >= 0) {
        sl_options_set_float(o, "lr", a->lr);
        sl_options_set_float(o, "momentum", a->momentum);
        sl_options_set_float(o, "weight_decay", a->weight_decay);
        sl_options_set_int(t, "epochs", (a->steps + per_epoch - 1) / per_epoch);
        sl_options_set_int(t, "max_steps", a->steps);
        sl_options_set_int(t, "batch", a->batch);
        sl_options_set_int(t, "seed", (int64_t)seed);
        sl_options_set_string(t, "loss", a->loss);
        rc = sl_options_set_bool(t, "drop_last", true);
    }
    if (rc >= 0)
        rc = sl_optim_new("sgd", m, o, &opt);
    loss_tail tail = {.steps = a->steps};
    const sl_train_args args = {.train = w->data,
                                .hooks = a->hooks,
                                .nhooks = a->nhooks,
                                .on_step = on_step,
                                .userdata = &tail};
    if (rc >= 0)
        rc = sl_train(m, opt, &args, t);
    *loss = tail.counted > 0 ? tail.sum / (double)tail.counted : NAN;
    sl_optim_free(opt);
    sl_options_free(o);
    sl_options_free(t);
    return rc;
}

int sb_run_replica(sb_work *w, const sb_args *a, int64_t r, sb_replica *out)
{
    sl_model *m;
    SL_TRY(sl_model_clone(w->base, sl_model_dtype(w->base), &m));
    uint64_t seed = (uint64_t)replica_seed(a->seed, r);
    int rc = a->independent ? sl_model_reset_parameters(m, seed) : SL_OK;
    sl_model_seed_noise(m, seed);
    if (rc >= 0 && a->steps > 0)
        rc = train_replica(m, w, a, seed, &out->loss);
    if (rc >= 0 && a->shuffle)
        rc = shuffle_units(m, w, seed ^ 0x5eed);
    if (rc >= 0)
        rc = sb_unit_params(m, out->theta, w->numel);
    if (rc >= 0)
        rc = replica_spectra(m, w, out->spectra);
    if (rc >= 0 && w->ngrams > 0)
        rc = replica_grams(m, w, out->grams);
    out->model = m;
    return rc;
}
