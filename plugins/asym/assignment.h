/* plugins/asym/assignment.h — the linear assignment problem.
 *
 * Given an n × n cost matrix C, find the permutation σ that minimises (or
 * maximises) Σ_i C[i][σ(i)].  Weight matching solves one such problem per
 * hidden layer and sweep.  Debian packages no C library for it (only Perl
 * and Python ones), so this is the O(n³) Hungarian method in its
 * shortest-augmenting-path form with row and column potentials (Kuhn 1955;
 * Munkres 1957; Jonker and Volgenant 1987 for the augmenting-path view):
 * rows are added one at a time, each by a Dijkstra-like search over reduced
 * costs C[i][j] − u[i] − v[j] ≥ 0 for the cheapest path to a free column,
 * after which the potentials are updated so reduced costs stay
 * non-negative.  Exact in exact arithmetic; in floating point the result is
 * optimal up to rounding of the sums.
 */
#ifndef SYMLAB_PLUGINS_ASYM_ASSIGNMENT_H
#define SYMLAB_PLUGINS_ASYM_ASSIGNMENT_H

#include <stdbool.h>
#include <stdint.h>

/* Solves the problem for the row-major n × n matrix `cost` (n >= 1, every
 * entry finite), maximising if `maximise`.  On success col[i] is the column
 * assigned to row i (a permutation of 0..n−1).  Allocates O(n) scratch.
 * Returns SL_OK, SL_EINVAL (n < 1), SL_ENUMERIC (a non-finite cost) or
 * SL_ENOMEM, after sl_error(). */
int asym_assign(int64_t n, const double *cost, bool maximise, int64_t *col);

#endif
