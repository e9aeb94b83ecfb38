/* plugins/asym/assignment.c — linear assignment by the Hungarian method
 * with potentials (assignment.h). */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include <symlab/symlab.h>

#include "assignment.h"

/* Working arrays, indexed 0..n for columns (column 0 is a virtual column
 * holding the row being added) and rows 1..n (row 0 unused). */
typedef struct lap {
    int64_t n;
    const double *cost;
    double sign;     /* +1 minimise, −1 maximise (minimise −C) */
    double *u, *v;   /* row and column potentials */
    double *minv;    /* cheapest reduced cost reaching each column this round */
    int64_t *owner;  /* owner[j]: the row assigned to column j, 0 if none */
    int64_t *via;    /* via[j]: the column before j on the cheapest path */
    bool *seen;      /* columns already in the search tree this round */
} lap;

static double reduced(const lap *L, int64_t i, int64_t j)
{
    return L->sign * L->cost[(i - 1) * L->n + (j - 1)] - L->u[i] - L->v[j];
}

/* Adds row `row`: grows a tree of tight edges from it until a free column
 * is reached, moving potentials by the smallest slack each time, then flips
 * the assignments along the path found. */
static void add_row(lap *L, int64_t row)
{
    int64_t n = L->n, j0 = 0;
    L->owner[0] = row;
    for (int64_t j = 0; j <= n; j++) {
        L->minv[j] = INFINITY;
        L->seen[j] = false;
    }
    do {
        L->seen[j0] = true;
        int64_t i0 = L->owner[j0], j1 = 0;
        double delta = INFINITY;
        for (int64_t j = 1; j <= n; j++) {
            if (L->seen[j])
                continue;
            double r = reduced(L, i0, j);
            if (r < L->minv[j]) {
                L->minv[j] = r;
                L->via[j] = j0;
            }
            if (L->minv[j] < delta) {
                delta = L->minv[j];
                j1 = j;
            }
        }
        for (int64_t j = 0; j <= n; j++) {
            if (L->seen[j]) {
                L->u[L->owner[j]] += delta;
                L->v[j] -= delta;
            } else {
                L->minv[j] -= delta;
            }
        }
        j0 = j1;
    } while (L->owner[j0] != 0);
    while (j0) { /* augment: each column on the path takes its predecessor's row */
        int64_t j1 = L->via[j0];
        L->owner[j0] = L->owner[j1];
        j0 = j1;
    }
}

int asym_assign(int64_t n, const double *cost, bool maximise, int64_t *col)
{
    if (n < 1)
        return sl_error(SL_EINVAL, "assignment: the matrix must be at least 1 x 1, got %lld",
                        (long long)n);
    for (int64_t i = 0; i < n * n; i++)
        if (!isfinite(cost[i]))
            return sl_error(SL_ENUMERIC, "assignment: cost (%lld, %lld) is not finite",
                            (long long)(i / n), (long long)(i % n));
    size_t m = (size_t)n + 1;
    lap L = {.n = n, .cost = cost, .sign = maximise ? -1.0 : 1.0};
    L.u = calloc(m, sizeof *L.u);
    L.v = calloc(m, sizeof *L.v);
    L.minv = calloc(m, sizeof *L.minv);
    L.owner = calloc(m, sizeof *L.owner);
    L.via = calloc(m, sizeof *L.via);
    L.seen = calloc(m, sizeof *L.seen);
    int rc = SL_OK;
    if (!L.u || !L.v || !L.minv || !L.owner || !L.via || !L.seen) {
        rc = sl_error(SL_ENOMEM, "assignment: out of memory");
    } else {
        for (int64_t i = 1; i <= n; i++)
            add_row(&L, i);
        for (int64_t j = 1; j <= n; j++)
            col[L.owner[j] - 1] = j - 1;
    }
    free(L.u);
    free(L.v);
    free(L.minv);
    free(L.owner);
    free(L.via);
    free(L.seen);
    return rc;
}
