/* plugins/asym/weight_matching.c — the "weight_matching" probe: permutes
 * the hidden units of model B to line it up with model A, by the weight
 * matching of Ainsworth, Hayase and Srinivasa, "Git Re-Basin: Merging
 * Models modulo Permutation Symmetries" (arXiv 2209.04836).
 *
 * A is the probe's model, B the checkpoint named by `other`; the aligned B
 * is written to the checkpoint `output`.  Every hidden layer h of the
 * structure walker (structure.h) gets a permutation π_h, the identity at
 * first.  A sweep visits the hidden layers in a random order (from `seed`)
 * and, for each, chooses π_h to maximise
 *     Σ_refs ⟨A_ref, B_ref with its units permuted by π_h⟩,
 * the sum over every parameter the layer's units index — the producing
 * weight's rows and its bias, per-unit parameters of the maps in between
 * (batch norm's weight and bias) and the consuming weight's columns — with
 * every other layer's current permutation already applied to B.  That is
 * one linear assignment on the k × k matrix C = Σ_refs R_A R_Bᵀ (R: the
 * ref's tensor as a (units, width) matrix, sl_unit_ref_rows), solved
 * exactly (assignment.h).  Sweeps repeat until one changes nothing, at most
 * `max_sweeps` times.  Each step can only raise the total inner product
 * ⟨θ_A, π(θ_B)⟩, so the sweeps are a coordinate ascent that ends at a
 * local optimum.
 *
 * Running statistics (buffers) are not part of the objective — they are
 * not weights — but move with their units, so the aligned B computes
 * exactly the function B computed (values move; nothing is recomputed).
 *
 * Records: sweeps, converged (1 if the last sweep changed nothing),
 * units_moved (units not in their original place, over all hidden layers),
 * moved_<h> per hidden layer, and distance_before / distance_after, the
 * Euclidean distance between A's and B's parameter vectors.
 *
 * Models with no hidden layer — asym_linear or figlu networks, which have
 * no permutation symmetry to remove — come back unchanged.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "asym.h"
#include "match.h"

static const sl_option_spec wm_options[] = {
    {"other", SL_OPT_STRING, NULL, "checkpoint (safetensors) of model B, to align to the model",
     NULL},
    {"output", SL_OPT_STRING, NULL, "where to write the aligned B (safetensors)", NULL},
    {"seed", SL_OPT_INT, "0", "seed of the order in which each sweep visits the layers", NULL},
    {"max_sweeps", SL_OPT_INT, "100", "stop after this many sweeps", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static double distance(sl_model *a, sl_model *b)
{
    const sl_tensor *x = sl_model_flat_params(a), *y = sl_model_flat_params(b);
    double s = 0;
    for (int64_t i = 0; i < sl_tensor_numel(x); i++) {
        double d = sl_tensor_flat_get(x, i) - sl_tensor_flat_get(y, i);
        s += d * d;
    }
    return sqrt(s);
}

static int report(asym_matcher *M, int64_t sweeps, bool converged, double before, sl_record *out)
{
    SL_TRY(sl_record_set(out, "sweeps", (double)sweeps));
    SL_TRY(sl_record_set(out, "converged", converged ? 1.0 : 0.0));
    int64_t moved_all = 0;
    for (int h = 0; h < sl_structure_nhidden(M->s); h++) {
        int64_t moved = 0;
        for (int64_t i = 0; i < sl_structure_hidden(M->s, h)->units; i++)
            moved += M->total[h][i] != i;
        char name[32];
        snprintf(name, sizeof name, "moved_%d", h);
        SL_TRY(sl_record_set(out, name, (double)moved));
        moved_all += moved;
    }
    SL_TRY(sl_record_set(out, "units_moved", (double)moved_all));
    SL_TRY(sl_record_set(out, "distance_before", before));
    return sl_record_set(out, "distance_after", distance(M->a, M->b));
}

static int wm_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                      sl_record *out)
{
    (void)data;
    int64_t max_sweeps = sl_options_int(opt, "max_sweeps");
    const char *output = sl_options_string(opt, "output");
    if (max_sweeps < 1)
        return sl_error(SL_EINVAL, "weight_matching: max_sweeps must be >= 1, got %lld",
                        (long long)max_sweeps);
    if (!*output)
        return sl_error(SL_EINVAL, "weight_matching: option 'output' must name a file");
    asym_matcher M = {0};
    sl_model *b = NULL;
    sl_structure *s = NULL;
    int rc = sl_model_structure(model, &s);
    if (rc >= 0)
        rc = asym_load_other(model, sl_options_string(opt, "other"), "weight_matching", &b);
    if (rc >= 0)
        rc = asym_matcher_init(&M, model, b, s);
    int64_t sweeps = 0;
    bool converged = false;
    double before = rc >= 0 ? distance(M.a, M.b) : 0;
    if (rc >= 0)
        rc = asym_matcher_align(&M, (uint64_t)sl_options_int(opt, "seed"), max_sweeps, &sweeps, &converged);
    if (rc >= 0 && (rc = sl_model_save(M.b, output)) < 0)
        rc = sl_error_context(rc, "weight_matching: output");
    if (rc >= 0)
        rc = report(&M, sweeps, converged, before, out);
    asym_matcher_free(&M);
    sl_model_free(b);
    sl_structure_free(s);
    return rc;
}

const sl_probe_type weight_matching_probe = {
    .name = "weight_matching",
    .summary = "permutes model B's hidden units to match the model (Git Re-Basin weight "
               "matching); writes the aligned B",
    .options = wm_options,
    .measure = wm_measure,
};
