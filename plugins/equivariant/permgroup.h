/* plugins/equivariant/permgroup.h — finite groups acting by permutations
 * on the entries of a sample, for the equivariance_error probe
 * (permgroup.c).
 *
 * Convention: a permutation π of 0..n−1 acts on a vector by gathering,
 * (π·x)[i] = x[π[i]].  Applying e and then s is the permutation
 * i ↦ e[s[i]].  A group acting on both the input (n_in entries) and the
 * output (n_out entries) of a model is held as permutations of the
 * disjoint union, n_in + n_out entries, the output's indices offset by
 * n_in: each element is one such permutation, and composing them composes
 * both actions at once.
 */
#ifndef SYMLAB_PLUGIN_PERMGROUP_H
#define SYMLAB_PLUGIN_PERMGROUP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct eq_pgroup {
    int64_t nin, nout;   /* entries of one input sample, of one output sample */
    int ngen;            /* generators */
    int64_t *gen;        /* ngen x (nin + nout), owned */
    int64_t order;       /* elements found */
    int64_t *el;         /* order x (nin + nout), owned; element 0 is the identity */
} eq_pgroup;

/* Reads the actions from the probe's options: either `group` ("C<N>" or
 * "S<n>") with `input` and `output` representations ("regular*2+q2+trivial"
 * for C_N; "perm*2+trivial" for S_n), or `input_generators` and
 * `output_generators` (permutations of 0..n−1 in gather form, entries
 * separated by spaces, generators by ';').  The lengths must be nin and
 * nout, the model's entries per sample.  Then enumerates the group
 * (breadth first from the identity over the generators; at most
 * max_elements elements).  Errors: SL_EINVAL naming the option, SL_ENOMEM.
 * Free with eq_pgroup_free (also after a failure). */
int eq_pgroup_from_options(const char *who, const char *group, const char *input,
                           const char *output, const char *in_gens, const char *out_gens,
                           int64_t nin, int64_t nout, int64_t max_elements, eq_pgroup *g);
void eq_pgroup_free(eq_pgroup *g);

/* Breadth-first closure of the ngen permutations gens (each of n entries)
 * into *el (allocated, element 0 the identity) and *order.  Stops with
 * *order = cap + 1 (and the elements found so far) once more than cap
 * elements exist, so a caller can tell "too many" without enumerating a
 * huge group.  SL_ENOMEM only. */
int eq_perm_closure(int ngen, const int64_t *gens, int64_t n, int64_t cap, int64_t **el,
                    int64_t *order);

#endif
