/* plugins/asym/match.c — weight matching (match.h): per hidden layer one
 * linear assignment (assignment.h), swept until nothing changes.  Shared by
 * the weight_matching probe and by symmetry_breaking's aligned distance. */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "assignment.h"
#include "match.h"

static bool is_param_ref(const sl_unit_ref *r) { return r->param >= 0; }

void asym_matcher_free(asym_matcher *M)
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

int asym_matcher_init(asym_matcher *M, sl_model *a, sl_model *b, const sl_structure *s)
{
    *M = (asym_matcher){.a = a, .b = b, .s = s};
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
        return sl_error(SL_ENOMEM, "weight matching: out of memory");
    for (int h = 0; h < nh; h++) {
        int64_t k = sl_structure_hidden(M->s, h)->units;
        if (!(M->total[h] = malloc((size_t)k * sizeof *M->total[h])))
            return sl_error(SL_ENOMEM, "weight matching: out of memory");
        for (int64_t i = 0; i < k; i++)
            M->total[h][i] = i;
    }
    return SL_OK;
}

/* cost = Σ over h's parameter refs of R_A R_Bᵀ (k × k). */
static int layer_cost(asym_matcher *M, const sl_hidden_layer *H)
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
static int match_layer(asym_matcher *M, int h, bool *changed)
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

int asym_matcher_align(asym_matcher *M, uint64_t seed, int64_t max_sweeps, int64_t *sweeps,
                       bool *converged)
{
    int nh = sl_structure_nhidden(M->s);
    int64_t *order = malloc(((size_t)nh + 1) * sizeof *order);
    if (!order)
        return sl_error(SL_ENOMEM, "weight matching: out of memory");
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
