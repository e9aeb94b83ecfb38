/* plugins/qcircuit/channels.c — noise channels as Kraus maps and superoperators.
 *
 * Every channel is rho -> sum_i K_i rho K_i^dagger with sum_i K_i^dagger K_i = I.
 * The named 1-qubit channels of strength p (docs/background/quantum-noise.md):
 *
 *   amplitude_damping (gamma = p in [0, 1]) — non-unital: E(I) != I
 *       K0 = [[1, 0], [0, sqrt(1 - p)]]      K1 = [[0, sqrt(p)], [0, 0]]
 *
 *   depolarizing (p in [0, 1]): rho -> (1 - p) rho + p I/2 (Tr rho) — unital
 *       K0 = sqrt(1 - 3p/4) I   K1 = sqrt(p/4) X   K2 = sqrt(p/4) Y   K3 = sqrt(p/4) Z
 *
 *   dephasing (p in [0, 1]): rho -> (1 - p) rho + p Z rho Z — unital
 *       K0 = sqrt(1 - p) I      K1 = sqrt(p) Z
 *
 *   kraus: any list of 2^k x 2^k operators (k = 1, 2) given by the caller;
 *       it must satisfy sum K^dagger K = I to 1e-10 (checked).
 *
 * Unital Pauli channels (depolarizing, dephasing) commute with conjugation
 * by any Pauli, E(P rho P) = P E(rho) P, which is why the circuit
 * symmetries survive them; amplitude damping commutes only with Z.
 * A channel becomes the superoperator S = sum_i K_i (x) conj(K_i) (qc.h
 * ordering), applied in one pass like a gate and fused with its neighbours.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "qc.h"

static const char *const channel_names[] = {"none", "amplitude_damping", "depolarizing",
                                            "dephasing", "kraus"};

const char *qc_channel_name(qc_channel ch)
{
    return (unsigned)ch < sizeof channel_names / sizeof channel_names[0] ? channel_names[ch]
                                                                          : "?";
}

int qc_channel_parse(const char *name, qc_channel *out)
{
    for (unsigned i = 0; i < sizeof channel_names / sizeof channel_names[0]; i++)
        if (strcmp(name, channel_names[i]) == 0) {
            *out = (qc_channel)i;
            return SL_OK;
        }
    return sl_error(SL_EINVAL,
                    "qcircuit: unknown noise channel '%s' (none|amplitude_damping|"
                    "depolarizing|dephasing)",
                    name);
}

/* k[4*i .. 4*i+4) = a * (Pauli with masks x, z) for the i-th operator. */
static void put_pauli(double complex *k, double a, unsigned x, unsigned z)
{
    qc_pauli_matrix(1, x, z, k);
    for (int i = 0; i < 4; i++)
        k[i] *= a;
}

int qc_channel_kraus(qc_channel ch, double p, double complex *k, int *count)
{
    if (!(p >= 0.0 && p <= 1.0))
        return sl_error(SL_EINVAL, "qcircuit: %s strength must be in [0, 1], got %g",
                        qc_channel_name(ch), p);
    switch (ch) {
    case QC_CH_NONE:
        put_pauli(k, 1.0, 0, 0);
        *count = 1;
        return SL_OK;
    case QC_CH_AMPLITUDE_DAMPING:
        memcpy(k, (double complex[]){1, 0, 0, sqrt(1 - p), 0, sqrt(p), 0, 0}, 8 * sizeof *k);
        *count = 2;
        return SL_OK;
    case QC_CH_DEPOLARIZING:
        put_pauli(k, sqrt(1 - 0.75 * p), 0, 0);
        put_pauli(k + 4, sqrt(p / 4), 1, 0);
        put_pauli(k + 8, sqrt(p / 4), 1, 1);
        put_pauli(k + 12, sqrt(p / 4), 0, 1);
        *count = 4;
        return SL_OK;
    case QC_CH_DEPHASING:
        put_pauli(k, sqrt(1 - p), 0, 0);
        put_pauli(k + 4, sqrt(p), 0, 1);
        *count = 2;
        return SL_OK;
    default:
        return sl_error(SL_EINVAL, "qcircuit: channel '%s' has no fixed Kraus operators",
                        qc_channel_name(ch));
    }
}

int qc_super_from_kraus(int k, int count, const double complex *kraus, double complex *s)
{
    const int d = 1 << k, d2 = d * d;
    if (count < 1)
        return sl_error(SL_EINVAL, "qcircuit: a Kraus map needs at least one operator");
    /* Trace preservation: sum_i K_i^dagger K_i = I. */
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double complex acc = 0;
            for (int i = 0; i < count; i++)
                for (int l = 0; l < d; l++)
                    acc += conj(kraus[i * d2 + l * d + a]) * kraus[i * d2 + l * d + b];
            if (cabs(acc - (a == b ? 1.0 : 0.0)) > 1e-10)
                return sl_error(SL_EINVAL,
                                "qcircuit: Kraus operators are not trace preserving "
                                "(sum K^dagger K differs from I by %g at (%d, %d))",
                                cabs(acc - (a == b ? 1.0 : 0.0)), a, b);
        }
    double complex one[256];
    memset(s, 0, (size_t)(d2 * d2) * sizeof *s);
    for (int i = 0; i < count; i++) {
        qc_super_from_unitary(k, kraus + i * d2, one); /* K (x) conj(K): same formula */
        for (int j = 0; j < d2 * d2; j++)
            s[j] += one[j];
    }
    return SL_OK;
}

int qc_channel_super(qc_channel ch, double p, double complex *s)
{
    double complex k[16];
    int count;
    SL_TRY(qc_channel_kraus(ch, p, k, &count));
    return qc_super_from_kraus(1, count, k, s);
}
