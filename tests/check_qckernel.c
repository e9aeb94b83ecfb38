/* tests/check_qckernel.c — the density-matrix kernel of plugins/qcircuit
 * against a straightforward reference, on random noisy circuits.
 *
 * The reference applies the circuit op by op, in the order written, each
 * op's superoperator S to every block of rho by a plain complex
 * matrix-vector product (heavy Pauli rotations through
 * qc_apply_pauli_rotation, which is its own, unfused kernel).  The
 * simulator fuses ops into passes, groups passes into cache-sized tiles,
 * computes half of each Hermitian rho and mirrors the other half; none of
 * that may change rho by more than rounding (1e-13 per entry), and the
 * result must be bit-identical for 1 and 2 threads.  Tiles are made small
 * (qc_set_tile_qubits) so that circuits of 6-8 qubits cross many of them.
 */
#include "config.h"

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qc.h"
#include "testutil.h"

/* A 2-qubit Kraus map: 0.7 I + 0.3 (CZ . (X (x) I)) as a unitary mixture. */
static double complex kraus2[2 * 16];

static void init_kraus2(void)
{
    memset(kraus2, 0, sizeof kraus2);
    for (int i = 0; i < 4; i++)
        kraus2[i * 4 + i] = sqrt(0.7);
    /* U = CZ (X on local qubit 0): |r> -> |r ^ 1> then phase -1 on |11> */
    for (int c = 0; c < 4; c++) {
        int r = c ^ 1;
        kraus2[16 + r * 4 + c] = sqrt(0.3) * (r == 3 ? -1.0 : 1.0);
    }
}

/* A random circuit of `len` ops on n qubits: every gate kind, rotations on
 * 1-3 qubits (fresh or tied parameters), the named channels, 2-qubit
 * Kraus maps and layer marks. */
static void random_circuit(qc_circuit *c, int n, int len, sl_rng *rng)
{
    static const qc_kind fixed[] = {QC_H, QC_S, QC_X, QC_Y, QC_Z};
    static const qc_kind rots[] = {QC_RX, QC_RY, QC_RZ};
    static const qc_channel chans[] = {QC_CH_AMPLITUDE_DAMPING, QC_CH_DEPOLARIZING,
                                       QC_CH_DEPHASING};
    qc_circuit_init(c, n);
    for (int i = 0; i < len; i++) {
        int q0 = (int)sl_rng_below(rng, (uint64_t)n), q1 = (int)sl_rng_below(rng, (uint64_t)n - 1);
        q1 += q1 >= q0;
        int what = (int)sl_rng_below(rng, 20);
        if (what < 3)
            ck_assert_sl_ok(qc_circuit_gate(c, fixed[sl_rng_below(rng, 5)], q0, -1));
        else if (what < 7)
            ck_assert_sl_ok(qc_circuit_gate(c, sl_rng_below(rng, 2) ? QC_CNOT : QC_CZ, q0, q1));
        else if (what < 11)
            ck_assert_sl_ok(qc_circuit_rot(c, rots[sl_rng_below(rng, 3)], q0));
        else if (what < 13) { /* a Pauli string on 2 or 3 qubits, tied to parameter 0 */
            uint64_t support = (uint64_t)1 << q0 | (uint64_t)1 << q1;
            if (what == 12 && n > 2)
                support |= (uint64_t)1 << sl_rng_below(rng, (uint64_t)n);
            uint64_t x = 0, z = 0;
            for (int q = 0; q < n; q++)
                if (support >> q & 1) {
                    int l = 1 + (int)sl_rng_below(rng, 3); /* X, Y or Z */
                    x |= (uint64_t)(l != 3) << q;
                    z |= (uint64_t)(l != 1) << q;
                }
            ck_assert_sl_ok(qc_circuit_rot_param(c, QC_RP, x, z, 0, 0.5));
        } else if (what < 18)
            ck_assert_sl_ok(qc_circuit_channel(c, chans[sl_rng_below(rng, 3)],
                                               0.3 * sl_rng_uniform(rng), q0));
        else if (what < 19)
            ck_assert_sl_ok(qc_circuit_kraus(c, q0, q1, 2, kraus2));
        else {
            qc_op mark = {.kind = QC_LAYER, .param = -1};
            ck_assert_sl_ok(qc_circuit_push(c, &mark));
        }
    }
}

/* rho <- S rho for a k-qubit superoperator on q[0..k), block by block. */
static void ref_apply(qc_rho *rho, int k, const int *q, const double complex *s)
{
    const int64_t dim = rho->dim;
    const int d = 1 << k, d2 = d * d;
    int64_t mask = 0;
    for (int j = 0; j < k; j++)
        mask |= (int64_t)1 << q[j];
    for (int64_t r0 = 0; r0 < dim; r0++)
        for (int64_t c0 = 0; c0 < dim; c0++) {
            if ((r0 & mask) || (c0 & mask))
                continue;
            int64_t at[16];
            double complex v[16], w[16];
            for (int lr = 0; lr < d; lr++)
                for (int lc = 0; lc < d; lc++) {
                    int64_t r = r0, c = c0;
                    for (int j = 0; j < k; j++) {
                        r |= (int64_t)(lr >> j & 1) << q[j];
                        c |= (int64_t)(lc >> j & 1) << q[j];
                    }
                    at[lr * d + lc] = r * dim + c;
                    v[lr * d + lc] = CMPLX(rho->re[r * dim + c], rho->im[r * dim + c]);
                }
            for (int i = 0; i < d2; i++) {
                w[i] = 0;
                for (int j = 0; j < d2; j++)
                    w[i] += s[i * d2 + j] * v[j];
            }
            for (int i = 0; i < d2; i++) {
                rho->re[at[i]] = creal(w[i]);
                rho->im[at[i]] = cimag(w[i]);
            }
        }
}

/* The circuit applied op by op from |0..0>. */
static void ref_run(const qc_circuit *c, const double *theta, qc_rho *rho)
{
    qc_rho_zero_state(rho);
    for (int i = 0; i < c->nops; i++) {
        const qc_op *op = &c->ops[i];
        double complex u[16], s[256];
        const double a = qc_kind_is_rotation(op->kind) ? op->weight * theta[op->param] : 0.0;
        if (op->kind == QC_LAYER)
            continue;
        if (op->nq > 2) {
            qc_apply_pauli_rotation(rho, op->x, op->z, a);
            continue;
        }
        if (op->kind == QC_CHANNEL) {
            if (op->channel == QC_CH_KRAUS)
                ck_assert_sl_ok(qc_super_from_kraus(op->nq, op->nkraus, op->kraus, s));
            else
                ck_assert_sl_ok(qc_channel_super(op->channel, op->strength, s));
        } else {
            if (op->kind == QC_RP) {
                unsigned lx = 0, lz = 0;
                for (int j = 0; j < op->nq; j++) {
                    lx |= (unsigned)(op->x >> op->q[j] & 1) << j;
                    lz |= (unsigned)(op->z >> op->q[j] & 1) << j;
                }
                qc_pauli_rotation_unitary(op->nq, lx, lz, a, u);
            } else {
                qc_gate_unitary(op->kind, a, u);
            }
            qc_super_from_unitary(op->nq, u, s);
        }
        ref_apply(rho, op->nq, op->q, s);
    }
}

static double rho_max_diff(const qc_rho *a, const qc_rho *b)
{
    double e = 0;
    for (int64_t i = 0; i < a->dim * a->dim; i++)
        e = fmax(e, fabs(a->re[i] - b->re[i]) + fabs(a->im[i] - b->im[i]));
    return e;
}

static bool rho_identical(const qc_rho *a, const qc_rho *b)
{
    size_t bytes = (size_t)(a->dim * a->dim) * sizeof(double);
    return memcmp(a->re, b->re, bytes) == 0 && memcmp(a->im, b->im, bytes) == 0;
}

/* One random circuit at n qubits and tile size m: the simulator's rho
 * equals the reference to 1e-13 and is the same for 1 and 2 threads. */
static void check_circuit(int n, int len, int m, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    qc_circuit c, copy;
    random_circuit(&c, n, len, &rng);
    qc_circuit_init(&copy, n);
    for (int i = 0; i < c.nops; i++)
        ck_assert_sl_ok(qc_circuit_push(&copy, &c.ops[i]));
    qc_observable o;
    qc_obs_init(&o, n);
    ck_assert_sl_ok(qc_obs_add(&o, 1.0, 0, 1));
    double theta[256];
    for (int p = 0; p < c.nparams; p++)
        theta[p] = 6 * sl_rng_uniform(&rng) - 3;

    qc_set_tile_qubits(m);
    qc_sim sim;
    ck_assert_sl_ok(qc_sim_init(&sim, &c, &o, QC_GRAD_AUTO));
    qc_rho ref, one;
    ck_assert_sl_ok(qc_rho_alloc(&ref, n));
    ck_assert_sl_ok(qc_rho_alloc(&one, n));
    ref_run(&copy, theta, &ref);

    sl_set_threads(1);
    ck_assert_sl_ok(qc_sim_run(&sim, theta));
    qc_rho_copy(&one, &sim.rho);
    sl_set_threads(2);
    ck_assert_sl_ok(qc_sim_run(&sim, theta));
    sl_set_threads(1);
    double e = rho_max_diff(&ref, &one);
    ck_assert_msg(e < 1e-13, "n=%d m=%d seed=%llu (%d ops, %d passes): rho differs from the "
                  "reference by %g", n, m, (unsigned long long)seed, copy.nops,
                  sim.plan.npasses, e);
    ck_assert_msg(rho_identical(&one, &sim.rho), "n=%d m=%d seed=%llu: 1 and 2 threads differ",
                  n, m, (unsigned long long)seed);
    qc_rho_free(&ref);
    qc_rho_free(&one);
    qc_sim_free(&sim);
    qc_circuit_free(&copy);
    qc_set_tile_qubits(0);
}

START_TEST(test_random_circuits)
{
    init_kraus2();
    /* m = 0: the default tile size (rho of <= 7 qubits is one tile) */
    const struct { int n, len, m; } cases[] = {
        {2, 40, 0}, {3, 60, 0}, {5, 80, 0}, {6, 80, 5}, {7, 80, 5},
        {7, 80, 6}, {8, 60, 5}, {8, 60, 0}};
    for (unsigned k = 0; k < sizeof cases / sizeof *cases; k++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            check_circuit(cases[k].n, cases[k].len, cases[k].m, 1000 * k + seed);
}
END_TEST

/* The adjoint gradient (per-pass checkpoints) and the parameter-shift
 * gradient (whole evaluations) agree through the tiled path. */
START_TEST(test_gradient_tiled)
{
    init_kraus2();
    qc_set_tile_qubits(5);
    qc_circuit bare, noisy;
    qc_observable o;
    qc_obs_init(&o, 7);
    ck_assert_sl_ok(qc_obs_tfim(&o, 1.0, 0.7, false));
    qc_circuit_init(&bare, 7);
    ck_assert_sl_ok(qc_ansatz_hea(&bare, 2, false));
    ck_assert_sl_ok(qc_circuit_with_noise(&bare, QC_CH_AMPLITUDE_DAMPING, 0.05, false, &noisy));
    qc_circuit_free(&bare);
    qc_sim sim;
    ck_assert_sl_ok(qc_sim_init(&sim, &noisy, &o, QC_GRAD_ADJOINT));
    const int P = sim.circ.nparams;
    double theta[64], adj[64], shift[64];
    sl_rng rng;
    sl_rng_seed(&rng, 77);
    for (int p = 0; p < P; p++)
        theta[p] = 6 * sl_rng_uniform(&rng) - 3;
    ck_assert_sl_ok(qc_sim_grad(&sim, theta, adj));
    ck_assert_sl_ok(qc_sim_grad_shift(&sim, theta, shift));
    for (int p = 0; p < P; p++)
        ck_assert_msg(fabs(adj[p] - shift[p]) < 1e-12, "param %d: adjoint %.15g vs shift %.15g",
                      p, adj[p], shift[p]);
    qc_sim_free(&sim);
    qc_set_tile_qubits(0);
}
END_TEST

static Suite *qckernel_suite(void)
{
    Suite *s = suite_create("qckernel");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_random_circuits);
    tcase_add_test(tc, test_gradient_tiled);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(qckernel_suite()); }
