/* plugins/asym/match.h — weight matching: permute model B's hidden units to
 * line them up with model A's (Ainsworth, Hayase and Srinivasa, "Git
 * Re-Basin", arXiv 2209.04836; weight_matching.c describes the objective).
 *
 * Every hidden layer h of the structure walker (structure.h) gets a
 * permutation, the identity at first.  A sweep visits the hidden layers in
 * a random order and re-solves each one's linear assignment exactly
 * (assignment.h) with the other layers' permutations applied, moving B only
 * for a gain above round-off; sweeps repeat until one changes nothing.
 * Each step can only raise ⟨θ_A, π(θ_B)⟩ — equivalently, for A and B of
 * fixed norms, only lower ‖θ_A − π(θ_B)‖ — so the result is a local
 * optimum (the global one when there is a single hidden layer).
 *
 * Used by the weight_matching probe and by symmetry_breaking's
 * aligned_distance; the library (libassignment.la) holds both files. */
#ifndef SYMLAB_PLUGINS_ASYM_MATCH_H
#define SYMLAB_PLUGINS_ASYM_MATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

/* Workspace for one alignment, sized for the largest hidden layer. */
typedef struct asym_matcher {
    sl_model *a, *b;   /* b is permuted in place (its function is unchanged) */
    const sl_structure *s; /* the structure of a (and b: one architecture) */
    double *ra, *rb;   /* one ref's rows of A and of B */
    double *cost;      /* k × k */
    int64_t *col;      /* the assignment */
    int64_t **total;   /* per hidden layer: position i holds B's original unit total[h][i] */
    int64_t *scratch;  /* k, for composing permutations */
} asym_matcher;

/* Sets M up for models a and b of the structure s (all borrowed).
 * SL_ENOMEM; call asym_matcher_free whatever it returns. */
int asym_matcher_init(asym_matcher *M, sl_model *a, sl_model *b, const sl_structure *s);

/* Frees M's workspace (M zeroed or initialised). */
void asym_matcher_free(asym_matcher *M);

/* Sweeps until one changes nothing or max_sweeps have run; the sweep order
 * is drawn from seed.  Reports the sweeps done and whether the last changed
 * nothing (true at once without hidden layers). */
int asym_matcher_align(asym_matcher *M, uint64_t seed, int64_t max_sweeps, int64_t *sweeps,
                       bool *converged);

#endif
