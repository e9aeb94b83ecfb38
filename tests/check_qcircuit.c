/* tests/check_qcircuit.c — the density-matrix simulator of plugins/qcircuit.
 *
 * References are independent of the plugin's kernels: dense 2^n x 2^n
 * matrices built here from hand-written 2 x 2 gate matrices and Kronecker
 * embedding, rho' = U rho U^dagger and sum_k K rho K^dagger by plain matrix
 * products, and central finite differences for gradients.
 */
#include "config.h"

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "qc.h"
#include "testutil.h"

#define NMAX 16 /* dense references up to 4 qubits */

typedef struct dmat {
    int n;
    double complex a[NMAX * NMAX];
} dmat;

/* ---- dense reference helpers ------------------------------------------------------- */

static const double complex PX[4] = {0, 1, 1, 0}, PY[4] = {0, -I, I, 0}, PZ[4] = {1, 0, 0, -1},
                            PI2[4] = {1, 0, 0, 1};

static void dense_mul(int d, const double complex *a, const double complex *b, double complex *c)
{
    double complex t[NMAX * NMAX];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double complex s = 0;
            for (int l = 0; l < d; l++)
                s += a[i * d + l] * b[l * d + j];
            t[i * d + j] = s;
        }
    memcpy(c, t, (size_t)(d * d) * sizeof *c);
}

static void dense_dagger(int d, const double complex *a, double complex *b)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            b[j * d + i] = conj(a[i * d + j]);
}

/* U on qubits q[0..k) of n (local bit j = qubit q[j]), identity elsewhere. */
static void embed(int n, int k, const int *q, const double complex *u, double complex *full)
{
    const int d = 1 << n, dl = 1 << k;
    int mask = 0;
    for (int j = 0; j < k; j++)
        mask |= 1 << q[j];
    for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++) {
            if ((r & ~mask) != (c & ~mask)) {
                full[r * d + c] = 0;
                continue;
            }
            int lr = 0, lc = 0;
            for (int j = 0; j < k; j++) {
                lr |= (r >> q[j] & 1) << j;
                lc |= (c >> q[j] & 1) << j;
            }
            full[r * d + c] = u[lr * dl + lc];
        }
}

/* rho <- U rho U^dagger with a full-size U. */
static void dense_conj(dmat *rho, const double complex *u)
{
    const int d = 1 << rho->n;
    double complex ud[NMAX * NMAX];
    dense_dagger(d, u, ud);
    dense_mul(d, u, rho->a, rho->a);
    dense_mul(d, rho->a, ud, rho->a);
}

/* rho <- sum_k K rho K^dagger for 1-qubit Kraus operators on qubit q. */
static void dense_kraus(dmat *rho, int q, int count, const double complex *k)
{
    const int d = 1 << rho->n;
    double complex acc[NMAX * NMAX] = {0}, full[NMAX * NMAX], fd[NMAX * NMAX], t[NMAX * NMAX];
    for (int i = 0; i < count; i++) {
        embed(rho->n, 1, &q, k + 4 * i, full);
        dense_dagger(d, full, fd);
        dense_mul(d, full, rho->a, t);
        dense_mul(d, t, fd, t);
        for (int j = 0; j < d * d; j++)
            acc[j] += t[j];
    }
    memcpy(rho->a, acc, sizeof acc);
}

/* Pauli string from letters (leftmost = qubit 0), full size. */
static void dense_pauli(int n, const char *letters, double complex *full)
{
    const int d = 1 << n;
    for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++) {
            double complex v = 1;
            for (int q = 0; q < n; q++) {
                const double complex *m = letters[q] == 'X'   ? PX
                                          : letters[q] == 'Y' ? PY
                                          : letters[q] == 'Z' ? PZ
                                                              : PI2;
                v *= m[(r >> q & 1) * 2 + (c >> q & 1)];
            }
            full[r * d + c] = v;
        }
}

/* exp(-i a P / 2) from a full Pauli matrix. */
static void dense_rotation(int n, const double complex *p, double a, double complex *u)
{
    const int d = 1 << n;
    for (int i = 0; i < d * d; i++)
        u[i] = -I * sin(a / 2) * p[i];
    for (int i = 0; i < d; i++)
        u[i * d + i] += cos(a / 2);
}

/* A random density matrix A A^dagger / Tr. */
static void random_rho(dmat *rho, int n, uint64_t seed)
{
    const int d = 1 << n;
    double complex a[NMAX * NMAX], ad[NMAX * NMAX];
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    rho->n = n;
    for (int i = 0; i < d * d; i++)
        a[i] = sl_rng_normal(&rng) + I * sl_rng_normal(&rng);
    dense_dagger(d, a, ad);
    dense_mul(d, a, ad, rho->a);
    double complex tr = 0;
    for (int i = 0; i < d; i++)
        tr += rho->a[i * d + i];
    for (int i = 0; i < d * d; i++)
        rho->a[i] /= tr;
}

static void to_qc(const dmat *m, qc_rho *r)
{
    const int d = 1 << m->n;
    for (int i = 0; i < d * d; i++) {
        r->re[i] = creal(m->a[i]);
        r->im[i] = cimag(m->a[i]);
    }
}

static double max_diff(const dmat *m, const qc_rho *r)
{
    const int d = 1 << m->n;
    double e = 0;
    for (int i = 0; i < d * d; i++)
        e = fmax(e, cabs(m->a[i] - CMPLX(r->re[i], r->im[i])));
    return e;
}

/* Trace 1, Hermitian, and positive semidefinite (Cholesky of the real
 * 2d x 2d form [[Re, -Im], [Im, Re]] shifted by 1e-12 succeeds). */
static void assert_state(const qc_rho *r, const char *what)
{
    const int d = (int)r->dim, m = 2 * d;
    double tr = 0, herm = 0;
    for (int i = 0; i < d; i++)
        tr += r->re[i * d + i];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            herm = fmax(herm, fabs(r->re[i * d + j] - r->re[j * d + i]) +
                                  fabs(r->im[i * d + j] + r->im[j * d + i]));
    ck_assert_msg(fabs(tr - 1) < 1e-12, "%s: trace %.17g", what, tr);
    ck_assert_msg(herm < 1e-13, "%s: not Hermitian (%g)", what, herm);
    static double a[2 * NMAX * 2 * NMAX];
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double re = r->re[i * d + j], im = r->im[i * d + j];
            a[i * m + j] = a[(d + i) * m + d + j] = re;
            a[i * m + d + j] = -im;
            a[(d + i) * m + j] = im;
        }
    for (int i = 0; i < m; i++)
        a[i * m + i] += 1e-12;
    for (int j = 0; j < m; j++) {
        double s = a[j * m + j];
        for (int l = 0; l < j; l++)
            s -= a[j * m + l] * a[j * m + l];
        ck_assert_msg(s > 0, "%s: not positive semidefinite (pivot %d: %g)", what, j, s);
        a[j * m + j] = sqrt(s);
        for (int i = j + 1; i < m; i++) {
            double t = a[i * m + j];
            for (int l = 0; l < j; l++)
                t -= a[i * m + l] * a[j * m + l];
            a[i * m + j] = t / a[j * m + j];
        }
    }
}

/* ---- channels ---------------------------------------------------------------------- */

/* Kraus operators written from the formulas of channels.c's header. */
static int reference_kraus(qc_channel ch, double p, double complex *k)
{
    const double complex one[4] = {1, 0, 0, 1};
    switch (ch) {
    case QC_CH_AMPLITUDE_DAMPING:
        memcpy(k, (double complex[]){1, 0, 0, sqrt(1 - p), 0, sqrt(p), 0, 0}, 8 * sizeof *k);
        return 2;
    case QC_CH_DEPOLARIZING:
        for (int i = 0; i < 4; i++) {
            k[i] = sqrt(1 - 0.75 * p) * one[i];
            k[4 + i] = sqrt(p / 4) * PX[i];
            k[8 + i] = sqrt(p / 4) * PY[i];
            k[12 + i] = sqrt(p / 4) * PZ[i];
        }
        return 4;
    default: /* dephasing */
        for (int i = 0; i < 4; i++) {
            k[i] = sqrt(1 - p) * one[i];
            k[4 + i] = sqrt(p) * PZ[i];
        }
        return 2;
    }
}

START_TEST(test_channels)
{
    const qc_channel chans[] = {QC_CH_AMPLITUDE_DAMPING, QC_CH_DEPOLARIZING, QC_CH_DEPHASING};
    const double ps[] = {0.0, 0.13, 0.6, 1.0};
    qc_rho r;
    qc_work w;
    ck_assert_sl_ok(qc_rho_alloc(&r, 3));
    ck_assert_sl_ok(qc_work_alloc(&w));
    for (int c = 0; c < 3; c++)
        for (int ip = 0; ip < 4; ip++)
            for (int q = 0; q < 3; q++) {
                double complex k[16], s_named[16], s_kraus[16];
                int count = reference_kraus(chans[c], ps[ip], k);
                ck_assert_sl_ok(qc_channel_super(chans[c], ps[ip], s_named));
                ck_assert_sl_ok(qc_super_from_kraus(1, count, k, s_kraus));
                for (int i = 0; i < 16; i++)
                    ck_assert_msg(cabs(s_named[i] - s_kraus[i]) < 1e-15,
                                  "%s(%g): named channel differs from its Kraus map",
                                  qc_channel_name(chans[c]), ps[ip]);
                dmat ref;
                random_rho(&ref, 3, 11 + (uint64_t)q);
                to_qc(&ref, &r);
                qc_apply_super(&r, 1, &q, s_named, &w);
                dense_kraus(&ref, q, count, k);
                char what[64];
                snprintf(what, sizeof what, "%s(%g) on qubit %d", qc_channel_name(chans[c]),
                         ps[ip], q);
                ck_assert_msg(max_diff(&ref, &r) < 1e-14, "%s: differs from dense Kraus by %g",
                              what, max_diff(&ref, &r));
                assert_state(&r, what);
            }
    /* A map that is not trace preserving is refused. */
    double complex bad[4] = {1, 0, 0, 0.5};
    double complex s[16];
    ck_assert_sl_fails(qc_super_from_kraus(1, 1, bad, s), SL_EINVAL, "trace preserving");
    ck_assert_sl_fails(qc_channel_super(QC_CH_DEPOLARIZING, 1.5, s), SL_EINVAL, "[0, 1]");
    qc_work_free(&w);
    qc_rho_free(&r);
}
END_TEST

/* A 2-qubit general Kraus map (a CNOT-correlated damping) through the sim
 * equals its dense reference, and the state stays physical. */
START_TEST(test_kraus_two_qubit)
{
    const double g = 0.3;
    double complex k[3 * 16] = {0};
    /* K0 = |0><0| (x) I + |1><1| (x) diag(1, sqrt(1-g)); K1 = sqrt(g) |1><1| (x) |0><1|,
     * local index = bit0 + 2 bit1 with bit0 the first qubit; K2 = 0 (allowed). */
    for (int y = 0; y < 4; y++)
        k[y * 4 + y] = (y == 3) ? sqrt(1 - g) : 1;
    k[16 + 1 * 4 + 3] = sqrt(g);
    qc_circuit c;
    qc_circuit_init(&c, 3);
    ck_assert_sl_ok(qc_circuit_parse(&c, "ry 0; ry 1; rx 2"));
    ck_assert_sl_ok(qc_circuit_kraus(&c, 0, 2, 3, k));
    ck_assert_sl_ok(qc_circuit_parse(&c, "cnot 2 1"));
    qc_observable o;
    qc_obs_init(&o, 3);
    ck_assert_sl_ok(qc_obs_parse(&o, "ZII"));
    qc_sim sim;
    ck_assert_sl_ok(qc_sim_init(&sim, &c, &o, QC_GRAD_AUTO));
    const double th[3] = {0.7, -1.1, 2.0};
    ck_assert_sl_ok(qc_sim_run(&sim, th));
    assert_state(&sim.rho, "2-qubit Kraus");
    /* dense reference */
    dmat ref = {.n = 3};
    ref.a[0] = 1;
    double complex u[NMAX * NMAX], p[NMAX * NMAX], full[NMAX * NMAX], fd[NMAX * NMAX],
        t[NMAX * NMAX], acc[NMAX * NMAX] = {0};
    const char *strings[3] = {"YII", "IYI", "IIX"};
    for (int i = 0; i < 3; i++) {
        dense_pauli(3, strings[i], p);
        dense_rotation(3, p, th[i], u);
        dense_conj(&ref, u);
    }
    const int q02[2] = {0, 2};
    for (int i = 0; i < 3; i++) {
        embed(3, 2, q02, k + 16 * i, full);
        dense_dagger(8, full, fd);
        dense_mul(8, full, ref.a, t);
        dense_mul(8, t, fd, t);
        for (int j = 0; j < 64; j++)
            acc[j] += t[j];
    }
    memcpy(ref.a, acc, sizeof acc);
    const double complex cnot[16] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0};
    const int q21[2] = {2, 1};
    embed(3, 2, q21, cnot, u);
    dense_conj(&ref, u);
    ck_assert_msg(max_diff(&ref, &sim.rho) < 1e-14, "2-qubit Kraus differs by %g",
                  max_diff(&ref, &sim.rho));
    qc_sim_free(&sim);
}
END_TEST

/* ---- gates against dense matrices ------------------------------------------------------ */

typedef struct tgate {
    const char *name; /* as in the circuit text */
    int q0, q1, q2;
    const char *pauli; /* rp only */
} tgate;

/* The dense unitary of one test gate at angle a. */
static void tgate_unitary(int n, const tgate *g, double a, double complex *full)
{
    const double h = 1 / sqrt(2.0);
    const double complex H[4] = {h, h, h, -h}, S[4] = {1, 0, 0, I};
    const double complex CNOT[16] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0};
    const double complex CZ[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1};
    const int q[2] = {g->q0, g->q1};
    char letters[8] = "IIIIIII";
    letters[n] = 0;
    const char *nm = g->name;
    if (!strcmp(nm, "h")) embed(n, 1, q, H, full);
    else if (!strcmp(nm, "s")) embed(n, 1, q, S, full);
    else if (!strcmp(nm, "x")) embed(n, 1, q, PX, full);
    else if (!strcmp(nm, "y")) embed(n, 1, q, PY, full);
    else if (!strcmp(nm, "z")) embed(n, 1, q, PZ, full);
    else if (!strcmp(nm, "cnot")) embed(n, 2, q, CNOT, full);
    else if (!strcmp(nm, "cz")) embed(n, 2, q, CZ, full);
    else {
        if (!strcmp(nm, "rp")) {
            int qs[3] = {g->q0, g->q1, g->q2};
            for (int j = 0; g->pauli[j]; j++)
                letters[qs[j]] = g->pauli[j];
        } else {
            letters[g->q0] = (char)(nm[1] - 'a' + 'A');
        }
        double complex p[NMAX * NMAX];
        dense_pauli(n, letters, p);
        dense_rotation(n, p, a, full);
    }
}

static void tgate_text(const tgate *g, char *buf, size_t size)
{
    if (!strcmp(g->name, "rp")) {
        const int qs[3] = {g->q0, g->q1, g->q2};
        int at = snprintf(buf, size, "rp %s", g->pauli);
        for (int j = 0; g->pauli[j]; j++)
            at += snprintf(buf + at, size - (size_t)at, " %d", qs[j]);
    } else if (!strcmp(g->name, "cnot") || !strcmp(g->name, "cz")) {
        snprintf(buf, size, "%s %d %d", g->name, g->q0, g->q1);
    } else {
        snprintf(buf, size, "%s %d", g->name, g->q0);
    }
}

/* Runs `gates` from a random state (circuit text through parse, plan,
 * fusion and kernels) and compares with the dense product. */
static void check_gates(int n, const tgate *gates, int ngates, uint64_t seed)
{
    char text[4096] = "";
    for (int i = 0; i < ngates; i++) {
        char one[64];
        tgate_text(&gates[i], one, sizeof one);
        strcat(text, one);
        strcat(text, "\n");
    }
    qc_circuit c;
    qc_circuit_init(&c, n);
    ck_assert_sl_ok(qc_circuit_parse(&c, text));
    double theta[64];
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int i = 0; i < 64; i++)
        theta[i] = 6 * sl_rng_uniform(&rng) - 3;
    /* the sim starts from |0>; prepend nothing and compare from |0> */
    qc_observable o;
    qc_obs_init(&o, n);
    char zs[16] = "ZZZZZZZZ";
    zs[n] = 0;
    ck_assert_sl_ok(qc_obs_parse(&o, zs));
    qc_sim sim;
    ck_assert_sl_ok(qc_sim_init(&sim, &c, &o, QC_GRAD_AUTO));
    ck_assert_sl_ok(qc_sim_run(&sim, theta));
    dmat ref = {.n = n};
    ref.a[0] = 1;
    int k = 0;
    for (int i = 0; i < ngates; i++) {
        double complex u[NMAX * NMAX];
        bool rot = gates[i].name[0] == 'r';
        tgate_unitary(n, &gates[i], rot ? theta[k] : 0, u);
        k += rot;
        dense_conj(&ref, u);
    }
    ck_assert_msg(max_diff(&ref, &sim.rho) < 1e-13, "n=%d: %d gates differ by %g (first %s)", n,
                  ngates, max_diff(&ref, &sim.rho), gates[0].name);
    qc_sim_free(&sim);
}

START_TEST(test_gates_dense)
{
    static const char *const one[] = {"h", "s", "x", "y", "z", "rx", "ry", "rz"};
    for (int n = 1; n <= 4; n++) {
        /* each gate alone, after a state-spreading prefix */
        for (unsigned g = 0; g < sizeof one / sizeof *one; g++)
            for (int q = 0; q < n; q++) {
                tgate seq[2 * 4 + 1];
                int m = 0;
                for (int j = 0; j < n; j++)
                    seq[m++] = (tgate){"ry", j, -1, -1, NULL};
                for (int j = 0; j < n; j++)
                    seq[m++] = (tgate){"rx", j, -1, -1, NULL};
                seq[m++] = (tgate){one[g], q, -1, -1, NULL};
                check_gates(n, seq, m, 100 + (uint64_t)(g * 8 + (unsigned)q));
            }
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                if (a == b)
                    continue;
                const char *two[] = {"cnot", "cz"};
                for (int t = 0; t < 2; t++) {
                    tgate seq[2 * 4 + 1];
                    int m = 0;
                    for (int j = 0; j < n; j++)
                        seq[m++] = (tgate){"ry", j, -1, -1, NULL};
                    for (int j = 0; j < n; j++)
                        seq[m++] = (tgate){"rz", j, -1, -1, NULL};
                    seq[m++] = (tgate){two[t], a, b, -1, NULL};
                    check_gates(n, seq, m, 200 + (uint64_t)(a * 4 + b));
                }
                tgate rp[3] = {{"ry", a, -1, -1, NULL}, {"rx", b, -1, -1, NULL},
                               {"rp", a, b, -1, "XY"}};
                check_gates(n, rp, 3, 300 + (uint64_t)(a * 4 + b));
            }
    }
    /* weight-3 rotation (its own kernel) and a long mixed circuit (fusion) */
    tgate heavy[] = {{"ry", 0, -1, -1, NULL}, {"rx", 2, -1, -1, NULL}, {"h", 3, -1, -1, NULL},
                     {"rp", 3, 1, 0, "YZX"},  {"cnot", 3, 0, -1, NULL}, {"ry", 3, -1, -1, NULL},
                     {"cz", 1, 2, -1, NULL},  {"rz", 1, -1, -1, NULL}, {"cnot", 0, 1, -1, NULL},
                     {"cnot", 1, 0, -1, NULL}, {"s", 0, -1, -1, NULL}, {"rp", 2, 0, -1, "ZX"},
                     {"rx", 0, -1, -1, NULL}, {"cnot", 2, 3, -1, NULL}, {"h", 0, -1, -1, NULL}};
    check_gates(4, heavy, (int)(sizeof heavy / sizeof *heavy), 400);
}
END_TEST

/* Every op of a noisy circuit applied one by one keeps rho physical. */
START_TEST(test_state_after_every_channel)
{
    const qc_channel chans[] = {QC_CH_AMPLITUDE_DAMPING, QC_CH_DEPOLARIZING, QC_CH_DEPHASING};
    for (int c = 0; c < 3; c++) {
        qc_circuit bare, noisy;
        qc_circuit_init(&bare, 3);
        ck_assert_sl_ok(qc_ansatz_hea(&bare, 2, false));
        ck_assert_sl_ok(qc_circuit_with_noise(&bare, chans[c], 0.2, false, &noisy));
        qc_rho r;
        qc_work w;
        ck_assert_sl_ok(qc_rho_alloc(&r, 3));
        ck_assert_sl_ok(qc_work_alloc(&w));
        qc_rho_zero_state(&r);
        sl_rng rng;
        sl_rng_seed(&rng, 5);
        int nchannels = 0;
        for (int i = 0; i < noisy.nops; i++) {
            const qc_op *op = &noisy.ops[i];
            double complex u[16], s[256];
            if (op->kind == QC_LAYER)
                continue;
            if (op->kind == QC_CHANNEL) {
                ck_assert_sl_ok(qc_channel_super(op->channel, op->strength, s));
                qc_apply_super(&r, 1, op->q, s, &w);
                char what[64];
                snprintf(what, sizeof what, "%s after op %d", qc_channel_name(op->channel), i);
                assert_state(&r, what);
                nchannels++;
                continue;
            }
            qc_gate_unitary(op->kind, 6 * sl_rng_uniform(&rng) - 3, u);
            qc_super_from_unitary(op->nq, u, s);
            qc_apply_super(&r, op->nq, op->q, s, &w);
        }
        ck_assert_int_ge(nchannels, 20);
        qc_work_free(&w);
        qc_rho_free(&r);
        qc_circuit_free(&bare);
        qc_circuit_free(&noisy);
    }
}
END_TEST

/* ---- gradients ------------------------------------------------------------------------- */

static void make_sim(qc_sim *sim, int n, int layers, qc_channel ch, double p, bool qaoa)
{
    qc_circuit bare, noisy;
    qc_observable o;
    qc_obs_init(&o, n);
    qc_circuit_init(&bare, n);
    if (qaoa) {
        ck_assert_sl_ok(qc_obs_maxcut(&o, ""));
        ck_assert_sl_ok(qc_ansatz_qaoa(&bare, layers, &o));
    } else {
        ck_assert_sl_ok(qc_obs_tfim(&o, 1.0, 1.0, false));
        ck_assert_sl_ok(qc_ansatz_hea(&bare, layers, false));
    }
    ck_assert_sl_ok(qc_circuit_with_noise(&bare, ch, p, false, &noisy));
    qc_circuit_free(&bare);
    ck_assert_sl_ok(qc_sim_init(sim, &noisy, &o, QC_GRAD_AUTO));
}

static void random_theta(double *theta, int n, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++)
        theta[i] = 2 * M_PI * sl_rng_uniform(&rng) - M_PI;
}

START_TEST(test_parameter_shift)
{
    const struct { qc_channel ch; double p; bool qaoa; } cases[] = {
        {QC_CH_NONE, 0, false}, {QC_CH_AMPLITUDE_DAMPING, 0.05, false},
        {QC_CH_DEPOLARIZING, 0.1, false}, {QC_CH_DEPHASING, 0.1, true}};
    for (unsigned k = 0; k < sizeof cases / sizeof *cases; k++) {
        qc_sim sim;
        make_sim(&sim, 3, 2, cases[k].ch, cases[k].p, cases[k].qaoa);
        const int P = sim.circ.nparams;
        double theta[64], adj[64], shift[64];
        random_theta(theta, P, 9 + k);
        sim.grad_mode = QC_GRAD_ADJOINT;
        ck_assert_sl_ok(qc_sim_grad(&sim, theta, adj));
        ck_assert_sl_ok(qc_sim_grad_shift(&sim, theta, shift));
        double worst = 0;
        const double h = 1e-5;
        for (int p = 0; p < P; p++) {
            double cp, cm, t = theta[p];
            theta[p] = t + h;
            ck_assert_sl_ok(qc_sim_cost(&sim, theta, &cp));
            theta[p] = t - h;
            ck_assert_sl_ok(qc_sim_cost(&sim, theta, &cm));
            theta[p] = t;
            double fd = (cp - cm) / (2 * h);
            worst = fmax(worst, fabs(fd - shift[p]));
            ck_assert_msg(fabs(adj[p] - shift[p]) < 1e-12, "case %u param %d: adjoint %.15g vs "
                          "shift %.15g", k, p, adj[p], shift[p]);
        }
        printf("parameter shift vs central differences (case %u, %d params): max |diff| %.2e\n",
               k, P, worst);
        ck_assert_msg(worst < 1e-8, "case %u: parameter shift differs from FD by %g", k, worst);
        qc_sim_free(&sim);
    }
}
END_TEST

/* ---- symmetries ------------------------------------------------------------------------ */

/* max |C(g theta) - C(theta)| over all elements (or 512 random ones). */
static double symmetry_deviation(qc_sim *sim, const qc_symgroup *g, const double *theta)
{
    const int P = sim->circ.nparams;
    double c0, worst = 0, img[64];
    uint64_t bits[2] = {0}, shift[2], flip[2];
    ck_assert_sl_ok(qc_sim_cost(sim, theta, &c0));
    const int64_t count = g->rank <= 9 ? (int64_t)1 << g->rank : 512;
    sl_rng rng;
    sl_rng_seed(&rng, 3);
    for (int64_t e = 0; e < count; e++) {
        if (g->rank <= 9) {
            bits[0] = (uint64_t)e;
            qc_sym_element(g, bits, shift, flip);
        } else {
            qc_sym_random(g, &rng, shift, flip);
        }
        qc_sym_apply(P, shift, flip, theta, img);
        double c;
        ck_assert_sl_ok(qc_sim_cost(sim, img, &c));
        worst = fmax(worst, fabs(c - c0));
    }
    return worst;
}

START_TEST(test_symmetries)
{
    const struct { qc_channel ch; double p; bool invariant; } cases[] = {
        {QC_CH_NONE, 0, true}, {QC_CH_DEPOLARIZING, 0.1, true}, {QC_CH_DEPHASING, 0.1, true},
        {QC_CH_AMPLITUDE_DAMPING, 0.1, false}};
    for (int qaoa = 0; qaoa < 2; qaoa++)
        for (unsigned k = 0; k < sizeof cases / sizeof *cases; k++) {
            qc_sim sim;
            make_sim(&sim, 3, 2, cases[k].ch, cases[k].p, qaoa);
            qc_symgroup g;
            ck_assert_sl_ok(qc_sym_build(&sim.circ, &sim.obs, &g));
            ck_assert_int_gt(g.rank, qaoa ? 0 : 4);
            double theta[64];
            random_theta(theta, sim.circ.nparams, 21 + k);
            double dev = symmetry_deviation(&sim, &g, theta);
            printf("symmetries %s, %s: 2^%d elements, max |C(g.theta) - C(theta)| = %.2e\n",
                   qaoa ? "qaoa/maxcut" : "hea/tfim", qc_channel_name(cases[k].ch), g.rank, dev);
            if (cases[k].invariant)
                ck_assert_msg(dev <= 1e-12, "%s: symmetry broken by %g",
                              qc_channel_name(cases[k].ch), dev);
            else if (!qaoa) /* qaoa's X-type images start in |+>: see docs/quantum.md */
                ck_assert_msg(dev > 1e-3, "amplitude damping left every image degenerate (%g)",
                              dev);
            /* control: flipping one angle alone is not a symmetry */
            if (!qaoa && cases[k].ch == QC_CH_NONE) {
                double c0, c1;
                ck_assert_sl_ok(qc_sim_cost(&sim, theta, &c0));
                theta[1] = -theta[1];
                ck_assert_sl_ok(qc_sim_cost(&sim, theta, &c1));
                ck_assert_msg(fabs(c1 - c0) > 1e-6, "control flip left the cost unchanged");
            }
            qc_sym_free(&g);
            qc_sim_free(&sim);
        }
}
END_TEST

/* ---- the plugin through the registry ---------------------------------------------------- */

static sl_model *qc_model(sl_dtype dtype, const char *noise, double strength)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "n_qubits", 3);
    sl_options_set_int(o, "layers", 2);
    sl_options_set_string(o, "noise", noise);
    sl_options_set_float(o, "strength", strength);
    ck_assert_sl_ok(sl_model_add(m, "qcircuit", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_build(m, 4));
    return m;
}

START_TEST(test_module)
{
    sl_model *m = qc_model(SL_F64, "amplitude_damping", 0.05);
    ck_assert_int_eq(sl_model_numel(m), 12);
    /* forward: every row is the cost of a direct simulation */
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, (int64_t[]){3, 1}));
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    qc_sim sim;
    make_sim(&sim, 3, 2, QC_CH_AMPLITUDE_DAMPING, 0.05, false);
    double c;
    ck_assert_sl_ok(qc_sim_cost(&sim, sl_model_flat_params(m)->data, &c));
    for (int64_t b = 0; b < 3; b++)
        ck_assert_double_eq_tol(sl_tensor_flat_get(y, b), c, 1e-14);
    /* the value loss is the mean with gradient 1/numel */
    const sl_loss_type *loss = sl_registry_find(SL_KIND_LOSS, "value");
    ck_assert_ptr_nonnull(loss);
    double v;
    ck_assert_sl_ok(sl_model_loss(m, loss, &x, &x, true, &v));
    ck_assert_double_eq_tol(v, c, 1e-14);
    double g[16];
    ck_assert_sl_ok(qc_sim_grad_shift(&sim, sl_model_flat_params(m)->data, g));
    for (int i = 0; i < 12; i++)
        ck_assert_double_eq_tol(sl_tensor_flat_get(sl_model_flat_grads(m), i), g[i], 1e-12);
    qc_sim_free(&sim);
    sl_tensor_release(&x);
    sl_model_free(m);
    /* the module passes the generic gradient check (input gradient zero) */
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "n_qubits", 2);
    sl_options_set_int(o, "layers", 2);
    sl_options_set_string(o, "noise", "depolarizing");
    sl_options_set_float(o, "strength", 0.05);
    gradcheck_args a = {.type = "qcircuit", .opt = o, .ndim = 2, .shape = {2, 1}, .seed = 3};
    gradcheck_report r;
    ck_assert_sl_ok(gradcheck_module(&a, &r));
    ck_assert_msg(r.max_rel_err <= GRADCHECK_TOL, "gradcheck qcircuit: %g", r.max_rel_err);
    sl_options_free(o);
    /* an f32 model computes in f64 inside */
    m = qc_model(SL_F32, "none", 0);
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F32, 2, (int64_t[]){1, 1}));
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    ck_assert(isfinite(sl_tensor_flat_get(y, 0)));
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

START_TEST(test_bad_options)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *o = sl_options_new();
    sl_options_set_string(o, "ansatz", "custom");
    sl_options_set_string(o, "circuit", "ry 0\nfoo 1");
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL, "line 2");
    sl_options_set_string(o, "circuit", "ry 7");
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL, "qubit 7");
    sl_options_set_string(o, "circuit", "ry 0");
    sl_options_set_string(o, "observable", "0.5 ZZ");
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL, "observable");
    /* Values that were once accepted silently: an infinite coefficient or
     * angle, and 2^32 + 1 layers wrapped to one by an int cast. */
    sl_options_set_string(o, "observable", "1e999 ZZZZ");
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL,
                       "observable term 1: coefficient '1e999' is not a finite number");
    sl_options_set_string(o, "observable", "ZZZZ - 1e400 ZZZZ");
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL, "observable term 2");
    sl_options_set_string(o, "observable", "ZZZZ");
    sl_options_set_string(o, "circuit", "ry 0\ndepolarizing 0 1e999");
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL,
                       "circuit line 2: '1e999' is not a finite number");
    sl_options_free(o);
    o = sl_options_new();
    sl_options_set_int(o, "n_qubits", 2);
    sl_options_set_int(o, "layers", ((int64_t)1 << 32) + 1);
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL,
                       "option 'layers' must be in [1, 100000], got 4294967297");
    sl_options_set_int(o, "layers", 0);
    ck_assert_sl_fails(sl_model_add(m, "qcircuit", o), SL_EINVAL, "got 0");
    sl_options_free(o);
    sl_model_free(m);
}
END_TEST

/* SYMH jumps under amplitude damping (images differ), never without noise
 * or under depolarizing noise (images degenerate). */
static double train_cost(const char *noise, double strength, bool with_symh, double *hops)
{
    sl_model *m = qc_model(SL_F64, noise, strength);
    sl_optim *opt;
    sl_options *oo = sl_options_new();
    sl_options_set_float(oo, "lr", 0.05);
    ck_assert_sl_ok(sl_optim_new("adam", m, oo, &opt));
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&d.x, SL_F32, 2, (int64_t[]){1, 1}));
    ck_assert_sl_ok(sl_tensor_alloc(&d.y, SL_F32, 2, (int64_t[]){1, 1}));
    sl_options *to = sl_options_new();
    sl_options_set_int(to, "epochs", 120);
    sl_options_set_int(to, "batch", 1);
    sl_options_set_string(to, "loss", "value");
    sl_hook *h = NULL;
    sl_options *ho = sl_options_new();
    sl_options_set_int(ho, "every", 40);
    sl_options_set_int(ho, "hops", 2);
    sl_options_set_int(ho, "samples", 32);
    ck_assert_sl_ok(sl_hook_new("symh", ho, &h));
    sl_history *hist = sl_history_new();
    sl_train_args args = {.train = &d, .hooks = &h, .nhooks = with_symh ? 1 : 0,
                          .history = hist};
    ck_assert_sl_ok(sl_train(m, opt, &args, to));
    *hops = 0;
    for (int i = 0; i < sl_history_count(hist); i++) {
        double v;
        if (sl_record_get(sl_history_row(hist, i), "symh_hops", &v) == SL_OK)
            *hops = v;
    }
    sl_tensor x = {0};
    const sl_tensor *y;
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, (int64_t[]){1, 1}));
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    double c = sl_tensor_flat_get(y, 0);
    sl_tensor_release(&x);
    sl_history_free(hist);
    sl_hook_free(h);
    sl_options_free(ho);
    sl_options_free(to);
    sl_options_free(oo);
    sl_dataset_release(&d);
    sl_optim_free(opt);
    sl_model_free(m);
    return c;
}

START_TEST(test_symh)
{
    double hops;
    double plain = train_cost("amplitude_damping", 0.1, false, &hops);
    double hopped = train_cost("amplitude_damping", 0.1, true, &hops);
    printf("symh: adam %.6f, adam+symh %.6f after %g jumps\n", plain, hopped, hops);
    ck_assert_msg(hops >= 1, "symh never jumped under amplitude damping");
    train_cost("none", 0, true, &hops);
    ck_assert_msg(hops == 0, "symh jumped without noise (%g)", hops);
    train_cost("depolarizing", 0.1, true, &hops);
    ck_assert_msg(hops == 0, "symh jumped under depolarizing noise (%g)", hops);
}
END_TEST

static Suite *qcircuit_suite(void)
{
    Suite *s = suite_create("qcircuit");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_channels);
    tcase_add_test(tc, test_kraus_two_qubit);
    tcase_add_test(tc, test_gates_dense);
    tcase_add_test(tc, test_state_after_every_channel);
    tcase_add_test(tc, test_parameter_shift);
    tcase_add_test(tc, test_symmetries);
    tcase_add_test(tc, test_module);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_symh);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(qcircuit_suite()); }
