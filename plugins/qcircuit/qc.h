/* plugins/qcircuit/qc.h — private interfaces of the density-matrix simulator.
 *
 * Conventions used by every file of the plugin:
 *   - qubit q is bit q of a basis index (qubit 0 is the least significant);
 *   - rho (2^n x 2^n) is stored as two f64 arrays re[], im[] of 4^n
 *     entries, entry (r, c) at r * 2^n + c ("split" storage: the kernels
 *     gather real and imaginary parts separately, which is what BLAS and
 *     the vectoriser want; 16 * 4^n bytes in all);
 *   - a k-qubit superoperator S (k = 1, 2) acting on qubits q[0..k) is a
 *     dense D x D complex matrix, D = 4^k, row-major, indexed by
 *     (r, c) -> r * 2^k + c where r, c are local basis indices
 *     (local qubit j = bit j of r and c, local qubit j is q[j]):
 *         rho'(r, c) = sum_{r', c'} S[(r, c), (r', c')] rho(r', c').
 *     For a unitary U: S[(r, c), (r', c')] = U[r][r'] conj(U[c][c']);
 *     for a Kraus map: the sum of that over the Kraus operators;
 *   - Pauli strings are two bit masks: x (X or Y on the qubit) and z
 *     (Z or Y on the qubit).  In text, the leftmost letter is qubit 0.
 *
 * Nothing here is exported from the plugin (-fvisibility=hidden and the
 * export regex); the Check suite links these files directly.
 */
#ifndef QCIRCUIT_QC_H
#define QCIRCUIT_QC_H

#include <complex.h>
#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

/* CMPLX(x, y) is C11, but glibc's <complex.h> defines it only for GCC.
 * Where it is missing (clang), build the value with the builtin it stands
 * for: x + y * I would turn an infinite y into a NaN real part. */
#ifndef CMPLX
#define CMPLX(x, y) __builtin_complex((double)(x), (double)(y))
#endif

#define QC_MAX_QUBITS 14   /* 16 * 4^14 = 4 GiB: beyond that rho does not fit here */
#define QC_MAX_LAYERS 100000 /* far beyond any trainable depth; keeps counts in int */

/* ---- density.c: rho storage and in-place superoperator passes ----------- */

typedef struct qc_rho {
    int n;          /* qubits */
    int64_t dim;    /* 2^n */
    double *re;     /* 4^n entries, entry (r, c) at r * dim + c */
    double *im;
} qc_rho;

/* Scratch of the passes, owned by one simulator: the matrices of one pass
 * (qc_apply_super) and of up to QC_STAGE_MAX_PASSES passes of a stage,
 * and one tile per worker thread (allocated by the first stage that needs
 * it, then reused), so a steady state allocates nothing. */
#define QC_MAX_THREADS 16
#define QC_STAGE_MAX_PASSES 64
#define QC_MAT_DOUBLES (32 * 32 + 16 * 16)
typedef struct qc_work {
    double m[32 * 32];  /* the real form [[Re S, -Im S], [Im S, Re S]] */
    double a[16 * 16];  /* Re S, used alone when S is real */
    double *mats;       /* QC_STAGE_MAX_PASSES x (m, a) of a stage */
    void *geom;         /* QC_STAGE_MAX_PASSES pass geometries (density.c) */
    void *stage;        /* a stage's tile geometry (density.c) */
    double *tile[QC_MAX_THREADS]; /* per worker: re then im of one tile */
    size_t tile_bytes;  /* of each tile[i] */
} qc_work;

/* One pass of a stage: the k-qubit superoperator s (qc.h ordering, not
 * owned) on the qubits q[0..k). */
typedef struct qc_stage_op {
    int k;
    int q[2];
    const double complex *s;
} qc_stage_op;

int qc_rho_alloc(qc_rho *rho, int n);
void qc_rho_free(qc_rho *rho);
void qc_rho_zero_state(qc_rho *rho);                 /* |0..0><0..0| */
void qc_rho_copy(qc_rho *dst, const qc_rho *src);    /* same n */
int qc_work_alloc(qc_work *w);
void qc_work_free(qc_work *w);

/* rho <- S(rho) in place for a k-qubit superoperator (k = 1 or 2) on the
 * distinct qubits q[0..k).  Each entry of rho is read and written once. */
void qc_apply_super(qc_rho *rho, int k, const int *q, const double complex *s, qc_work *w);
/* Tiles: a stage's passes act on qubits inside one set Q of
 * qc_tile_qubits(n) qubits that contains qubits 0-2 (all n qubits when n
 * is that small).  qc_tile_set gives such a Q containing `support` (the
 * caller keeps popcount(support | 7) <= qc_tile_qubits(n)). */
int qc_tile_qubits(int n);
uint64_t qc_tile_set(int n, uint64_t support);
/* Tests only: tiles of m qubits (clamped to [5, 8]); 0 restores the default. */
void qc_set_tile_qubits(int m);
/* rho <- S_npass(...S_1(rho)) for the passes ops[0..npass), all on qubits
 * of one tile set, in one sweep over rho (tile by tile; see density.c).
 * rho must be Hermitian and every S Hermiticity-preserving (true for
 * every gate, channel and shift derivative of the simulator): only half of
 * rho is computed, the other half is its mirror.  With zero_state, rho's
 * contents are ignored and taken to be |0..0><0..0| (saves the sweep that
 * would write that state and the reads of it).  SL_EINVAL if the passes
 * do not fit one tile or npass is outside [1, QC_STAGE_MAX_PASSES];
 * SL_ENOMEM if a tile cannot be allocated. */
int qc_apply_stage(qc_rho *rho, int npass, const qc_stage_op *ops, bool zero_state,
                   qc_work *w);
/* rho <- R rho R^dagger, R = exp(-i theta P / 2), P the Pauli string (x, z);
 * one pass over groups of 4 entries; for strings on 3 or more qubits. */
void qc_apply_pauli_rotation(qc_rho *rho, uint64_t x, uint64_t z, double theta);
/* rho <- P rho P for the Pauli string (x, z). */
void qc_apply_pauli(qc_rho *rho, uint64_t x, uint64_t z);
/* Tr(P rho) for the Pauli string (x, z) (complex in general). */
double complex qc_trace_pauli(const qc_rho *rho, uint64_t x, uint64_t z);
double complex qc_trace(const qc_rho *rho);
/* sum over entries of conj(a) * b = Tr(a^dagger b); real for Hermitian a, b. */
double complex qc_inner(const qc_rho *a, const qc_rho *b);

/* ---- gates.c: gate kinds, unitaries, superoperator algebra -------------- */

typedef enum qc_kind {
    QC_H, QC_S, QC_X, QC_Y, QC_Z,   /* fixed 1-qubit Cliffords */
    QC_CNOT, QC_CZ,                 /* fixed 2-qubit Cliffords; q[0] control for CNOT */
    QC_RX, QC_RY, QC_RZ,            /* exp(-i angle P / 2), P = X, Y, Z on q[0] */
    QC_RP,                          /* exp(-i angle P / 2), P the string (x, z) */
    QC_CHANNEL,                     /* a noise channel (channels.c) on q[0] (q[1]) */
    QC_LAYER                        /* marks the end of a layer; no action */
} qc_kind;

const char *qc_kind_name(qc_kind kind);
bool qc_kind_is_rotation(qc_kind kind);
/* The 2^k x 2^k unitary (row-major, local indices) of a fixed gate or a
 * rotation by `angle`; k = 1 or 2.  RP strings of weight <= 2 are handled by
 * the caller through qc_pauli_rotation_unitary. */
void qc_gate_unitary(qc_kind kind, double angle, double complex *u);
/* exp(-i angle P / 2) for a local Pauli string on k qubits (letters as
 * local x, z masks), as a 2^k x 2^k matrix. */
void qc_pauli_rotation_unitary(int k, unsigned x, unsigned z, double angle, double complex *u);
/* The Pauli string's own 2^k x 2^k matrix. */
void qc_pauli_matrix(int k, unsigned x, unsigned z, double complex *p);
/* S = U (x) conj(U) in the (r, c) ordering of qc.h, for a k-qubit U. */
void qc_super_from_unitary(int k, const double complex *u, double complex *s);
/* c = a b for D x D superoperators (c may not alias a or b). */
void qc_super_mul(int d, const double complex *a, const double complex *b, double complex *c);
void qc_super_identity(int d, double complex *s);
/* The 16 x 16 superoperator acting as the 4 x 4 s1 on local qubit j (0/1)
 * of a pair and as the identity on the other. */
void qc_super_embed(const double complex *s1, int j, double complex *s2);

/* ---- channels.c ---------------------------------------------------------- */
/* Kraus operators of the named channels are listed in channels.c's header. */

typedef enum qc_channel {
    QC_CH_NONE = 0,
    QC_CH_AMPLITUDE_DAMPING,
    QC_CH_DEPOLARIZING,
    QC_CH_DEPHASING,
    QC_CH_KRAUS                 /* a general Kraus map given by its operators */
} qc_channel;

/* "none", "amplitude_damping", "depolarizing", "dephasing", "kraus". */
const char *qc_channel_name(qc_channel ch);
int qc_channel_parse(const char *name, qc_channel *out);
/* The 1-qubit Kraus operators of a named channel of strength p (2 x 2
 * each, row-major, into k[0..4*count)); *count <= 4.  SL_EINVAL if p is
 * outside the channel's range. */
int qc_channel_kraus(qc_channel ch, double p, double complex *k, int *count);
/* S = sum_i K_i (x) conj(K_i) for `count` Kraus operators on k qubits;
 * SL_EINVAL unless sum K^dagger K = I to 1e-10 (a trace-preserving map). */
int qc_super_from_kraus(int k, int count, const double complex *kraus, double complex *s);
/* The superoperator of a named 1-qubit channel. */
int qc_channel_super(qc_channel ch, double p, double complex *s);

/* ---- circuit.c: a gate list and its parameters --------------------------- */

typedef struct qc_op {
    qc_kind kind;
    int nq;                 /* qubits touched (1 or 2; RP: popcount(x | z)) */
    int q[2];               /* the qubits for nq <= 2 */
    uint64_t x, z;          /* RP: the Pauli string; RX/RY/RZ: their 1-qubit string */
    int param;              /* rotations: parameter index, angle = weight * theta[param] */
    double weight;
    qc_channel channel;     /* QC_CHANNEL */
    double strength;
    const double complex *kraus; /* QC_CH_KRAUS: `nkraus` operators, not owned */
    int nkraus;
} qc_op;

typedef struct qc_circuit {
    int n;                  /* qubits */
    int nops, cap;
    qc_op *ops;
    int nparams;            /* 1 + the largest parameter index */
} qc_circuit;

void qc_circuit_init(qc_circuit *c, int n);
void qc_circuit_free(qc_circuit *c);
int qc_circuit_push(qc_circuit *c, const qc_op *op);
/* Appends gates; rotations take a new parameter (qc_circuit_rot) or a given
 * one (qc_circuit_rot_param, for tied angles). */
int qc_circuit_gate(qc_circuit *c, qc_kind kind, int q0, int q1);
int qc_circuit_rot(qc_circuit *c, qc_kind kind, int q);
int qc_circuit_rot_param(qc_circuit *c, qc_kind kind, uint64_t x, uint64_t z, int param,
                         double weight);
int qc_circuit_channel(qc_circuit *c, qc_channel ch, double p, int q);
int qc_circuit_kraus(qc_circuit *c, int q0, int q1, int nkraus, const double complex *k);
/* Parses the circuit text format of docs/quantum.md into c (qubits < c->n). */
int qc_circuit_parse(qc_circuit *c, const char *text);
/* dst = src with channel `ch` of strength p after every gate on each qubit
 * it touches (per_layer false) or on every qubit at each layer mark and at
 * the end (per_layer true).  dst is initialised here. */
int qc_circuit_with_noise(const qc_circuit *src, qc_channel ch, double p, bool per_layer,
                          qc_circuit *dst);

/* ---- observable.c: weighted Pauli strings -------------------------------- */

typedef struct qc_observable {
    int n;
    int nterms, cap;
    double *coef;
    uint64_t *x, *z;
} qc_observable;

void qc_obs_init(qc_observable *o, int n);
void qc_obs_free(qc_observable *o);
int qc_obs_add(qc_observable *o, double coef, uint64_t x, uint64_t z);
/* "0.5 ZZII + 1.0 XIII - YYII": optional coefficient, then n letters of
 * IXYZ, joined by + or -. */
int qc_obs_parse(qc_observable *o, const char *text);
/* H = -J sum Z_i Z_{i+1} - h sum X_i (open chain, or periodic). */
int qc_obs_tfim(qc_observable *o, double j, double h, bool periodic);
/* H = J sum (X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}) + h sum Z_i. */
int qc_obs_heisenberg(qc_observable *o, double j, double h, bool periodic);
/* C = sum over edges (i, j) of (Z_i Z_j - 1) / 2 = -(cut size): edges
 * "0-1,1-2,..." or, when empty, the ring (the chain when n == 2). */
int qc_obs_maxcut(qc_observable *o, const char *edges);
/* Tr(O rho). */
double qc_obs_expect(const qc_observable *o, const qc_rho *rho);
/* The dense matrix of O into a qc_rho-shaped buffer. */
void qc_obs_dense(const qc_observable *o, qc_rho *out);

/* ---- ansatz.c ------------------------------------------------------------ */

/* Hardware-efficient: per layer RY then RZ on every qubit, then the ladder
 * CNOT(i, i+1) (or CZ) for i = 0..n-2, then a layer mark. */
int qc_ansatz_hea(qc_circuit *c, int layers, bool cz);
/* QAOA: H on every qubit, then per layer exp(-i gamma_l Z_iZ_j / 2) for every
 * ZZ term of `o` (one tied gamma_l) and RX(beta_l) on every qubit (one
 * tied beta_l), then a layer mark.  2 * layers parameters. */
int qc_ansatz_qaoa(qc_circuit *c, int layers, const qc_observable *o);

/* ---- plan.c: fusion of a circuit into passes ----------------------------- */

/* A pass: a 1- or 2-qubit superoperator composed from ops[item..item+count)
 * of the plan's item list, or one heavy Pauli rotation (3+ qubits). */
typedef struct qc_pass {
    int k;                  /* 1 or 2; 0 for a heavy rotation */
    int q[2];
    int first, count;       /* into plan->items / plan->slot */
} qc_pass;

/* A stage: passes order[first..first+count) applied in one sweep over rho
 * (qc_apply_stage), or one heavy rotation pass (count 1). */
typedef struct qc_stage {
    int first, count;
} qc_stage;

typedef struct qc_plan {
    int npasses, nitems;
    qc_pass *passes;
    int *items;             /* op indices, in application order */
    int *slot;              /* for each item: local qubit (0/1) of a 1-qubit op
                               inside a 2-qubit pass, 2 if it spans both */
    int nstages;
    qc_stage *stages;
    int *order;             /* pass indices, stage after stage */
} qc_plan;

/* Fuses consecutive 1-qubit gates and channels on a qubit, and folds them
 * into the next 2-qubit op on that qubit (and consecutive 2-qubit ops on
 * the same pair) into passes; then groups passes whose qubits fit one tile
 * (qc_tile_qubits(n) at the time of the call) into stages, each one sweep
 * over rho.  A pass may move ahead of earlier ones on other qubits only. */
int qc_plan_build(const qc_circuit *c, qc_plan *p);
void qc_plan_free(qc_plan *p);

/* ---- sim.c: cost and gradient of a compiled circuit ---------------------- */

typedef enum qc_grad_mode { QC_GRAD_AUTO, QC_GRAD_SHIFT, QC_GRAD_ADJOINT } qc_grad_mode;

typedef struct qc_sim {
    qc_circuit circ;        /* with noise inserted */
    qc_observable obs;
    qc_plan plan;
    qc_rho rho;
    qc_work work;
    double *angle;          /* per op: weight * theta[param] (rotations) */
    double complex *sbuf;   /* QC_STAGE_MAX_PASSES x 256: a stage's superoperators */
    /* adjoint gradient (allocated on first use): states before each pass,
     * the observable evolved backwards, a temporary */
    qc_rho *ckpt;
    qc_rho oback, tmp;
    bool adjoint_ready;
    qc_grad_mode grad_mode;
    int64_t evals;          /* cost evaluations so far (passes / plan size) */
} qc_sim;

/* Takes ownership of circ and obs (moved into the sim). */
int qc_sim_init(qc_sim *s, qc_circuit *circ, qc_observable *obs, qc_grad_mode mode);
void qc_sim_free(qc_sim *s);
/* Tr(O rho(theta)), rho from |0..0>. */
int qc_sim_cost(qc_sim *s, const double *theta, double *cost);
/* grad[p] = dC/dtheta_p by the parameter-shift rule (overwrites grad). */
int qc_sim_grad(qc_sim *s, const double *theta, double *grad);
/* The same by plain shifted evaluations (2 per rotation): the reference. */
int qc_sim_grad_shift(qc_sim *s, const double *theta, double *grad);
/* rho(theta) left in s->rho (for tests and probes). */
int qc_sim_run(qc_sim *s, const double *theta);

/* ---- symmetry.c: the circuit-symmetry group ------------------------------ */

/* A group element acts on theta as theta_p -> sign_p theta_p + pi shift_p. */
typedef struct qc_symgroup {
    int nparams;
    int words;              /* 64-bit words per bit set: (nparams + 63) / 64 */
    int rank;               /* the group has 2^rank elements */
    uint64_t *shift;        /* rank bit sets of shifted parameters (basis) */
    uint64_t *flip;         /* rank bit sets of sign-flipped parameters */
    int ngenerators;        /* candidates tried: one per parameter + one per qubit */
} qc_symgroup;

/* Enumerates the group of (circuit without noise, observable): see
 * symmetry.c for the construction. */
int qc_sym_build(const qc_circuit *c, const qc_observable *o, qc_symgroup *g);
void qc_sym_free(qc_symgroup *g);
/* The element sum_i bits_i basis_i (bits a `words`-long set over the rank)
 * into shift/flip bit sets of g->words words each. */
void qc_sym_element(const qc_symgroup *g, const uint64_t *bits, uint64_t *shift,
                    uint64_t *flip);
/* A uniformly random element (may be the identity). */
void qc_sym_random(const qc_symgroup *g, sl_rng *rng, uint64_t *shift, uint64_t *flip);
/* out = g . theta (out may alias theta). */
void qc_sym_apply(int nparams, const uint64_t *shift, const uint64_t *flip,
                  const double *theta, double *out);

/* ---- qcircuit.c / symh.c ------------------------------------------------- */

extern const sl_module_type qc_module_type;
extern const sl_hook_type qc_symh_type;
extern const sl_probe_type qc_symmetries_probe;
extern const sl_loss_type qc_value_loss;
/* The simulator of the first qcircuit module of a model; NULL (and an
 * sl_error) if there is none.  *mod receives that module. */
qc_sim *qc_model_sim(sl_model *model, sl_module **mod, qc_symgroup **group);
/* The module's angles as f64 (converted from f32), and back. */
void qc_theta_get(sl_module *mod, double *theta);
void qc_theta_set(sl_module *mod, const double *theta);

#endif
