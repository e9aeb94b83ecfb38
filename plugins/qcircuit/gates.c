/* plugins/qcircuit/gates.c — gate unitaries and the superoperator algebra.
 *
 * Rotations are R_P(angle) = exp(-i angle P / 2) = cos(angle/2) I - i sin(angle/2) P,
 * the convention of docs/background/quantum-noise.md (so a shift by pi
 * inserts -iP).
 * Fixed gates: H, S = diag(1, i), the Paulis, CNOT (q[0] control, q[1]
 * target), CZ.  Matrices use local indices: local qubit j is bit j.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "qc.h"

const char *qc_kind_name(qc_kind kind)
{
    static const char *const names[] = {"h",  "s",  "x",  "y",  "z",       "cnot",   "cz",
                                        "rx", "ry", "rz", "rp", "channel", "layer"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

bool qc_kind_is_rotation(qc_kind kind)
{
    return kind == QC_RX || kind == QC_RY || kind == QC_RZ || kind == QC_RP;
}

/* The 2^k x 2^k matrix of a Pauli string over k local qubits: column y goes
 * to row y ^ x with phase i^{#Y} (-1)^{popcount(y & z)}. */
void qc_pauli_matrix(int k, unsigned x, unsigned z, double complex *p)
{
    static const double complex ipow[4] = {1.0, I, -1.0, -I};
    const int d = 1 << k;
    memset(p, 0, (size_t)(d * d) * sizeof *p);
    for (int y = 0; y < d; y++) {
        int e = __builtin_popcount(x & z) + 2 * (__builtin_popcount((unsigned)y & z) & 1);
        p[(y ^ (int)x) * d + y] = ipow[e & 3];
    }
}

void qc_pauli_rotation_unitary(int k, unsigned x, unsigned z, double angle, double complex *u)
{
    const int d = 1 << k;
    qc_pauli_matrix(k, x, z, u);
    for (int i = 0; i < d * d; i++)
        u[i] *= -I * sin(angle / 2);
    for (int i = 0; i < d; i++)
        u[i * d + i] += cos(angle / 2);
}

void qc_gate_unitary(qc_kind kind, double angle, double complex *u)
{
    const double h = 1.0 / sqrt(2.0);
    switch (kind) {
    case QC_H: memcpy(u, (double complex[]){h, h, h, -h}, 4 * sizeof *u); break;
    case QC_S: memcpy(u, (double complex[]){1, 0, 0, I}, 4 * sizeof *u); break;
    case QC_X: qc_pauli_matrix(1, 1, 0, u); break;
    case QC_Y: qc_pauli_matrix(1, 1, 1, u); break;
    case QC_Z: qc_pauli_matrix(1, 0, 1, u); break;
    case QC_RX: qc_pauli_rotation_unitary(1, 1, 0, angle, u); break;
    case QC_RY: qc_pauli_rotation_unitary(1, 1, 1, angle, u); break;
    case QC_RZ: qc_pauli_rotation_unitary(1, 0, 1, angle, u); break;
    case QC_CNOT: /* |c t>: local bit 0 is the control; flips bit 1 when bit 0 is set */
        memset(u, 0, 16 * sizeof *u);
        for (int y = 0; y < 4; y++)
            u[((y & 1) ? y ^ 2 : y) * 4 + y] = 1;
        break;
    case QC_CZ:
        memset(u, 0, 16 * sizeof *u);
        for (int y = 0; y < 4; y++)
            u[y * 4 + y] = y == 3 ? -1 : 1;
        break;
    default: /* QC_RP, channels and marks have no fixed unitary here */
        memset(u, 0, 4 * sizeof *u);
        u[0] = u[3] = 1;
        break;
    }
}

void qc_super_from_unitary(int k, const double complex *u, double complex *s)
{
    const int d = 1 << k, d2 = d * d;
    for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++)
            for (int r1 = 0; r1 < d; r1++)
                for (int c1 = 0; c1 < d; c1++)
                    s[(r * d + c) * d2 + r1 * d + c1] = u[r * d + r1] * conj(u[c * d + c1]);
}

void qc_super_mul(int d, const double complex *a, const double complex *b, double complex *c)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double complex acc = 0;
            for (int l = 0; l < d; l++)
                acc += a[i * d + l] * b[l * d + j];
            c[i * d + j] = acc;
        }
}

void qc_super_identity(int d, double complex *s)
{
    memset(s, 0, (size_t)(d * d) * sizeof *s);
    for (int i = 0; i < d; i++)
        s[i * d + i] = 1;
}

/* s1 acts on local qubit j's row bit and column bit; the other qubit's bits
 * pass through unchanged. */
void qc_super_embed(const double complex *s1, int j, double complex *s2)
{
    memset(s2, 0, 256 * sizeof *s2);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            for (int r1 = 0; r1 < 4; r1++)
                for (int c1 = 0; c1 < 4; c1++) {
                    int o = 1 - j; /* the other qubit: its bits must agree */
                    if ((r >> o & 1) != (r1 >> o & 1) || (c >> o & 1) != (c1 >> o & 1))
                        continue;
                    int a = (r >> j & 1) * 2 + (c >> j & 1), b = (r1 >> j & 1) * 2 + (c1 >> j & 1);
                    s2[(r * 4 + c) * 16 + r1 * 4 + c1] = s1[a * 4 + b];
                }
}
