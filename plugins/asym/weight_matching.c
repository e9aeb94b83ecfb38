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
#include "assignment.h"

static const sl_option_spec wm_options[] = {
    {"other", SL_OPT_STRING, NULL, "checkpoint (safetensors) of model B, to align to the model",
     NULL},
    {"output", SL_OPT_STRING, NULL, "where to write the aligned B (safetensors)", NULL},
    {"seed", SL_OPT_INT, "0", "seed of the order in which each sweep visits the layers", NULL},
    {"max_sweeps", SL_OPT_INT, "100", "stop after this many sweeps", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

/* Workspace for one alignment, sized for the largest hidden layer. */
typedef struct matcher {
    sl_model *a, *b; /* b: the working copy, permuted in place */
    const sl_structure *s;
    double *ra, *rb;   /* one ref's rows of A and of B */
    double *cost;      /* k × k */
    int64_t *col;      /* the assignment */
    int64_t **total;   /* per hidden layer: position i holds B's original unit total[h][i] */
    int64_t *scratch;  /* k, for composing permutations */
} matcher;

static bool is_param_ref(const sl_unit_ref *r) { return r->param >= 0; }

static void matcher_free(matcher *M)
{
    free(M->ra);
    free(M->rb);
    free(M->cost);
    free(M->col);
    free(M->scratch);
    if (M->total)
        for (int h = 0; h < sl_structure_nhidden(M->s); h++)
            free(M->total[h]);
    free(M->total);
}

static int matcher_init(matcher *M)
{
    int64_t kmax = 1, rows = 1;
    int nh = sl_structure_nhidden(M->s);
    for (int h = 0; h < nh; h++) {
        const sl_hidden_layer *H = sl_structure_hidden(M->s, h);
        kmax = H->units > kmax ? H->units : kmax;
        for (int i = 0; i < H->nrefs; i++) {
            int64_t n = H->units * sl_unit_ref_width(M->a, sl_hidden_ref(H, i), H->units);
            rows = n > rows ? n : rows;
        }
    }
    M->ra = malloc((size_t)rows * sizeof *M->ra);
    M->rb = malloc((size_t)rows * sizeof *M->rb);
    M->cost = malloc((size_t)(kmax * kmax) * sizeof *M->cost);
    M->col = malloc((size_t)kmax * sizeof *M->col);
    M->scratch = malloc((size_t)kmax * sizeof *M->scratch);
    M->total = calloc((size_t)nh + 1, sizeof *M->total);
    if (!M->ra || !M->rb || !M->cost || !M->col || !M->scratch || !M->total)
        return sl_error(SL_ENOMEM, "weight_matching: out of memory");
    for (int h = 0; h < nh; h++) {
        int64_t k = sl_structure_hidden(M->s, h)->units;
        if (!(M->total[h] = malloc((size_t)k * sizeof *M->total[h])))
            return sl_error(SL_ENOMEM, "weight_matching: out of memory");
        for (int64_t i = 0; i < k; i++)
            M->total[h][i] = i;
    }
    return SL_OK;
}

/* cost = Σ over h's parameter refs of R_A R_Bᵀ (k × k). */
static int layer_cost(matcher *M, const sl_hidden_layer *H)
{
    int64_t k = H->units;
    for (int64_t i = 0; i < k * k; i++)
        M->cost[i] = 0;
    for (int i = 0; i < H->nrefs; i++) {
        const sl_unit_ref *r = sl_hidden_ref(H, i);
        if (!is_param_ref(r))
            continue;
        int64_t w = sl_unit_ref_width(M->a, r, k);
        SL_TRY(sl_unit_ref_rows(M->a, r, k, M->ra));
        SL_TRY(sl_unit_ref_rows(M->b, r, k, M->rb));
        sl_dgemm(false, true, k, k, w, 1.0, M->ra, w, M->rb, w, 1.0, M->cost, k);
    }
    return SL_OK;
}

/* Re-solves hidden layer h; applies the assignment to B if it raises the
 * objective.  *changed is set when it does. */
static int match_layer(matcher *M, int h, bool *changed)
{
    const sl_hidden_layer *H = sl_structure_hidden(M->s, h);
    int64_t k = H->units;
    SL_TRY(layer_cost(M, H));
    SL_TRY(asym_assign(k, M->cost, true, M->col));
    double keep = 0, take = 0, scale = 0;
    for (int64_t i = 0; i < k; i++) {
        keep += M->cost[i * k + i];
        take += M->cost[i * k + M->col[i]];
        scale += fabs(M->cost[i * k + M->col[i]]);
    }
    /* Ties and rounding: move only for a gain above round-off, so sweeps
     * cannot cycle between equally good assignments. */
    if (!(take > keep + 1e-12 * scale))
        return SL_OK;
    SL_TRY(sl_structure_permute(M->b, M->s, h, M->col));
    for (int64_t i = 0; i < k; i++)
        M->scratch[i] = M->total[h][M->col[i]];
    for (int64_t i = 0; i < k; i++)
        M->total[h][i] = M->scratch[i];
    *changed = true;
    return SL_OK;
}

/* Sweeps until one changes nothing or max_sweeps have run. */
static int align(matcher *M, uint64_t seed, int64_t max_sweeps, int64_t *sweeps, bool *converged)
{
    int nh = sl_structure_nhidden(M->s);
    int64_t *order = malloc(((size_t)nh + 1) * sizeof *order);
    if (!order)
        return sl_error(SL_ENOMEM, "weight_matching: out of memory");
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    *sweeps = 0;
    *converged = nh == 0;
    int rc = SL_OK;
    while (!*converged && *sweeps < max_sweeps && rc >= 0) {
        for (int h = 0; h < nh; h++)
            order[h] = h;
        sl_rng_shuffle(&rng, order, nh);
        bool changed = false;
        for (int h = 0; h < nh && rc >= 0; h++)
            rc = match_layer(M, (int)order[h], &changed);
        ++*sweeps;
        *converged = !changed;
    }
    free(order);
    return rc;
}

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

static int report(matcher *M, int64_t sweeps, bool converged, double before, sl_record *out)
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
    matcher M = {.a = model};
    sl_structure *s = NULL;
    int rc = sl_model_structure(model, &s);
    M.s = s;
    if (rc >= 0)
        rc = asym_load_other(model, sl_options_string(opt, "other"), "weight_matching", &M.b);
    if (rc >= 0)
        rc = matcher_init(&M);
    int64_t sweeps = 0;
    bool converged = false;
    double before = rc >= 0 ? distance(M.a, M.b) : 0;
    if (rc >= 0)
        rc = align(&M, (uint64_t)sl_options_int(opt, "seed"), max_sweeps, &sweeps, &converged);
    if (rc >= 0 && (rc = sl_model_save(M.b, output)) < 0)
        rc = sl_error_context(rc, "weight_matching: output");
    if (rc >= 0)
        rc = report(&M, sweeps, converged, before, out);
    if (s)
        matcher_free(&M);
    sl_model_free(M.b);
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
