/* plugins/qcircuit/symmetry.c — the circuit-symmetry group
 * (docs/background/quantum-noise.md, "The symmetries").
 *
 * Construction [DERIVED from gate identities; the paper's formalism is
 * UNCONFIRMED].  With R_Q(a) = exp(-i a Q / 2):
 *   R_Q(a + pi) = R_Q(a) (-iQ)          a shift by pi inserts Q;
 *   F R_Q(a) = R_Q(-a) F  if {F, Q} = 0, = R_Q(a) F if [F, Q] = 0;
 *   C F = (C F C^dagger) C               Cliffords map the Pauli F to a Pauli.
 * Write the shifted circuit as F_j U_j (U_j the original prefix).  Before
 * rotation j the frame F_j passes through: the angle must flip sign if F_j
 * anticommutes with Q_j, and a shift of j multiplies the frame by Q_j.  At
 * the end, C(g . theta) = Tr(O F rho F) = C(theta) when F commutes with
 * every term of O.  Frames may also start as any Z string (Z|0> = |0>).
 * Pauli channels commute with the frame, so depolarizing and dephasing
 * noise keep the symmetry; amplitude damping commutes only with Z frames.
 *
 * Everything above is linear over GF(2) in the choice of shifted parameters
 * and starting Z's (frames multiply, commutation bits add).  Each generator
 * (shift one parameter, or start with Z on one qubit) is pushed through
 * the circuit once, giving its action (shift and flip bits per parameter)
 * and a syndrome: its final frame's anticommutation with each term of O,
 * plus, for a parameter used by several rotations (QAOA), whether its
 * occurrences disagree on the flip.  The group is the set of actions of
 * syndrome-free combinations: Gaussian elimination on the syndrome gives
 * them, a second elimination on the actions gives a basis of 2^rank
 * distinct elements.  A parameter used with a weight other than +-1 is not
 * shifted (its pi shift would not insert a Pauli).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

static bool anticommute(uint64_t x1, uint64_t z1, uint64_t x2, uint64_t z2)
{
    return __builtin_popcountll((x1 & z2) ^ (z1 & x2)) & 1;
}

static inline void bit_flip(uint64_t *set, int i) { set[i >> 6] ^= (uint64_t)1 << (i & 63); }
static inline bool bit_get(const uint64_t *set, int i) { return set[i >> 6] >> (i & 63) & 1; }

/* F <- C F C^dagger for a fixed Clifford gate. */
static void conjugate(const qc_op *op, uint64_t *x, uint64_t *z)
{
    const int a = op->q[0], b = op->q[1];
    if (a < 0) /* marks and whole-register ops act on no single qubit */
        return;
    uint64_t xa = *x >> a & 1, za = *z >> a & 1;
    switch (op->kind) {
    case QC_H: /* X <-> Z */
        *x = (*x & ~((uint64_t)1 << a)) | (za << a);
        *z = (*z & ~((uint64_t)1 << a)) | (xa << a);
        break;
    case QC_S: /* X -> Y */
        *z ^= xa << a;
        break;
    case QC_CNOT: /* X_c -> X_c X_t, Z_t -> Z_c Z_t */
        *x ^= xa << b;
        *z ^= (*z >> b & 1) << a;
        break;
    case QC_CZ: /* X_a -> X_a Z_b, X_b -> Z_a X_b */
        *z ^= (xa << b) | ((*x >> b & 1) << a);
        break;
    default: /* Paulis map a Pauli frame to itself up to sign; channels, marks: nothing */
        break;
    }
}

/* Layout of one generator's row: syndrome bits, then shift bits, then flip bits. */
typedef struct layout {
    int nsyn, nparams;
    int wsyn, wpar, width; /* words */
} layout;

/* Pushes one generator through the circuit and fills its row.  `first`
 * (nparams bytes) is scratch: 0 unseen, 1 first occurrence kept its sign,
 * 2 it flipped. */
static void propagate(const qc_circuit *c, const qc_observable *o, const layout *L,
                      int shift_param, uint64_t start_z, const bool *shiftable, int8_t *first,
                      uint64_t *row)
{
    uint64_t fx = 0, fz = start_z;
    uint64_t *syn = row, *shift = row + L->wsyn, *flip = shift + L->wpar;
    memset(first, 0, (size_t)L->nparams);
    if (shift_param >= 0)
        bit_flip(shift, shift_param);
    int occurrence = 0;
    for (int i = 0; i < c->nops; i++) {
        const qc_op *op = &c->ops[i];
        if (!qc_kind_is_rotation(op->kind)) {
            conjugate(op, &fx, &fz);
            continue;
        }
        bool f = anticommute(fx, fz, op->x, op->z);
        if (first[op->param] == 0) {
            first[op->param] = f ? 2 : 1;
            if (f)
                bit_flip(flip, op->param);
        } else if ((first[op->param] == 2) != f) {
            /* this occurrence of a tied parameter disagrees with its first */
            bit_flip(syn, o->nterms + occurrence);
        }
        occurrence++;
        if (op->param == shift_param && shiftable[op->param]) {
            fx ^= op->x;
            fz ^= op->z;
        }
    }
    for (int t = 0; t < o->nterms; t++)
        if (anticommute(fx, fz, o->x[t], o->z[t]))
            bit_flip(syn, t);
}

/* Row reduction of rows[0..nrows) (width words) on bit columns [c0, c1):
 * returns the number of pivot rows, moved to the front. */
static int eliminate(uint64_t *rows, int nrows, int width, int c0, int c1)
{
    int rank = 0;
    for (int col = c0; col < c1 && rank < nrows; col++) {
        int piv = -1;
        for (int r = rank; r < nrows; r++)
            if (bit_get(rows + (size_t)r * width, col)) {
                piv = r;
                break;
            }
        if (piv < 0)
            continue;
        uint64_t *pr = rows + (size_t)piv * width, *rr = rows + (size_t)rank * width;
        for (int w = 0; w < width; w++) {
            uint64_t t = pr[w];
            pr[w] = rr[w];
            rr[w] = t;
        }
        for (int r = 0; r < nrows; r++)
            if (r != rank && bit_get(rows + (size_t)r * width, col))
                for (int w = 0; w < width; w++)
                    rows[(size_t)r * width + w] ^= rr[w];
        rank++;
    }
    return rank;
}

int qc_sym_build(const qc_circuit *c, const qc_observable *o, qc_symgroup *g)
{
    memset(g, 0, sizeof *g);
    const int P = c->nparams;
    layout L = {.nparams = P};
    /* Syndrome: one bit per observable term, one per rotation op (used
     * only for later occurrences of tied parameters; simpler than counting). */
    int nrot = 0;
    for (int i = 0; i < c->nops; i++)
        nrot += qc_kind_is_rotation(c->ops[i].kind);
    L.nsyn = o->nterms + nrot;
    L.wsyn = (L.nsyn + 63) / 64;
    L.wpar = (P + 63) / 64 + 1;
    L.width = L.wsyn + 2 * L.wpar;
    bool *shiftable = malloc((size_t)P + 1);
    int8_t *first = malloc((size_t)P + 1);
    const int ngen = P + c->n;
    uint64_t *rows = calloc((size_t)ngen * L.width + 1, sizeof *rows);
    if (!shiftable || !rows || !first) {
        free(shiftable);
        free(first);
        free(rows);
        return sl_error(SL_ENOMEM, "qcircuit: out of memory enumerating symmetries");
    }
    for (int p = 0; p < P; p++)
        shiftable[p] = true;
    for (int i = 0; i < c->nops; i++)
        if (qc_kind_is_rotation(c->ops[i].kind) && fabs(fabs(c->ops[i].weight) - 1.0) > 0)
            shiftable[c->ops[i].param] = false;
    int nrows = 0;
    for (int p = 0; p < P; p++)
        if (shiftable[p])
            propagate(c, o, &L, p, 0, shiftable, first, rows + (size_t)nrows++ * L.width);
    for (int q = 0; q < c->n; q++)
        propagate(c, o, &L, -1, (uint64_t)1 << q, shiftable, first, rows + (size_t)nrows++ * L.width);
    g->ngenerators = nrows;
    /* Kernel of the syndrome: rows past the syndrome rank have zero syndrome. */
    int srank = eliminate(rows, nrows, L.width, 0, L.nsyn);
    uint64_t *kernel = rows + (size_t)srank * L.width;
    int nker = nrows - srank;
    int rank = eliminate(kernel, nker, L.width, 64 * L.wsyn, 64 * L.wsyn + 128 * L.wpar);
    g->nparams = P;
    g->words = (P + 63) / 64 > 0 ? (P + 63) / 64 : 1;
    g->rank = rank;
    g->shift = calloc((size_t)(rank + 1) * g->words, sizeof *g->shift);
    g->flip = calloc((size_t)(rank + 1) * g->words, sizeof *g->flip);
    if (!g->shift || !g->flip) {
        free(shiftable);
        free(first);
        free(rows);
        qc_sym_free(g);
        return sl_error(SL_ENOMEM, "qcircuit: out of memory enumerating symmetries");
    }
    for (int r = 0; r < rank; r++) {
        const uint64_t *row = kernel + (size_t)r * L.width;
        memcpy(g->shift + (size_t)r * g->words, row + L.wsyn, (size_t)g->words * sizeof(uint64_t));
        memcpy(g->flip + (size_t)r * g->words, row + L.wsyn + L.wpar,
               (size_t)g->words * sizeof(uint64_t));
    }
    free(shiftable);
    free(first);
    free(rows);
    return SL_OK;
}

void qc_sym_free(qc_symgroup *g)
{
    free(g->shift);
    free(g->flip);
    memset(g, 0, sizeof *g);
}

void qc_sym_element(const qc_symgroup *g, const uint64_t *bits, uint64_t *shift, uint64_t *flip)
{
    memset(shift, 0, (size_t)g->words * sizeof *shift);
    memset(flip, 0, (size_t)g->words * sizeof *flip);
    for (int r = 0; r < g->rank; r++)
        if (bit_get(bits, r))
            for (int w = 0; w < g->words; w++) {
                shift[w] ^= g->shift[(size_t)r * g->words + w];
                flip[w] ^= g->flip[(size_t)r * g->words + w];
            }
}

void qc_sym_random(const qc_symgroup *g, sl_rng *rng, uint64_t *shift, uint64_t *flip)
{
    memset(shift, 0, (size_t)g->words * sizeof *shift);
    memset(flip, 0, (size_t)g->words * sizeof *flip);
    for (int r = 0; r < g->rank; r++)
        if (sl_rng_next(rng) >> 63)
            for (int w = 0; w < g->words; w++) {
                shift[w] ^= g->shift[(size_t)r * g->words + w];
                flip[w] ^= g->flip[(size_t)r * g->words + w];
            }
}

void qc_sym_apply(int nparams, const uint64_t *shift, const uint64_t *flip, const double *theta,
                  double *out)
{
    for (int p = 0; p < nparams; p++) {
        double v = bit_get(flip, p) ? -theta[p] : theta[p];
        out[p] = bit_get(shift, p) ? v + M_PI : v;
    }
}
