/* plugins/symmetry_breaking/sb.h — what the probe's files share: its
 * arguments, its working state and one trained replica's measurements.
 * symmetry_breaking.c is the probe (options, pairwise measures, report),
 * replica.c makes and measures one replica. */
#ifndef SYMLAB_PLUGINS_SB_H
#define SYMLAB_PLUGINS_SB_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

typedef struct sb_args {
    int64_t replicas, steps, batch, probe_batch;
    double lr, momentum, weight_decay;
    uint64_t seed;
    bool independent, shuffle;
    const char *loss;
    sl_hook *const *hooks; /* borrowed from the options */
    int nhooks;
} sb_args;

/* What one replica leaves for the pairwise comparison (all f64). */
typedef struct sb_replica {
    sl_model *model;  /* the trained replica, for the alignment */
    double *theta;    /* numel, unit length */
    double *spectra;  /* per weight layer, normalised singular values, concatenated */
    double *grams;    /* per hidden layer, B x B normalised Gram, concatenated */
    double loss;
} sb_replica;

typedef struct sb_work {
    sl_model *base;
    const sl_dataset *data;
    sl_tensor probe_x;             /* probe batch in the model's dtype */
    sl_structure *st;              /* the base model's weight and hidden layers */
    int64_t numel, nspectra, ngrams, B;
    double *theta0;
} sb_work;

/* Scales v to unit length (a zero vector stays zero). */
void sb_normalise(double *v, int64_t n);

/* Copies m's flat parameters into v (n of them, f64), normalised. */
int sb_unit_params(sl_model *m, double *v, int64_t n);

/* Singular values a weight layer contributes: min(units, fan_in). */
int64_t sb_spectrum_length(const sl_weight_layer *L);

/* Replica r: a copy of w->base (re-initialised with independent_init),
 * trained by sl_train with the caller's hooks, optionally shuffled, then
 * measured into out (its theta, spectra, Gram matrices and loss; out->model
 * keeps the trained copy, which the caller frees). */
int sb_run_replica(sb_work *w, const sb_args *a, int64_t r, sb_replica *out);

#endif
