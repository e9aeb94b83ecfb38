/* plugins/qcircuit/ansatz.c — circuit builders.
 *
 * The hardware-efficient ansatz (docs/background/quantum-noise.md) has layers
 * of RY and RZ on every qubit, then a CNOT ladder: 2 n parameters per
 * layer, each rotation its own parameter.  QAOA ties angles: one gamma and
 * one beta per layer, shared by every ZZ term and every qubit.
 */
#include "config.h"

#include "qc.h"

int qc_ansatz_hea(qc_circuit *c, int layers, bool cz)
{
    if (layers < 1)
        return sl_error(SL_EINVAL, "qcircuit: layers must be >= 1, got %d", layers);
    for (int l = 0; l < layers; l++) {
        for (int q = 0; q < c->n; q++)
            SL_TRY(qc_circuit_rot(c, QC_RY, q));
        for (int q = 0; q < c->n; q++)
            SL_TRY(qc_circuit_rot(c, QC_RZ, q));
        for (int q = 0; q + 1 < c->n; q++)
            SL_TRY(qc_circuit_gate(c, cz ? QC_CZ : QC_CNOT, q, q + 1));
        qc_op mark = {.kind = QC_LAYER, .param = -1, .q = {-1, -1}};
        SL_TRY(qc_circuit_push(c, &mark));
    }
    return SL_OK;
}

int qc_ansatz_qaoa(qc_circuit *c, int layers, const qc_observable *o)
{
    if (layers < 1)
        return sl_error(SL_EINVAL, "qcircuit: layers must be >= 1, got %d", layers);
    int nzz = 0;
    for (int t = 0; t < o->nterms; t++)
        nzz += o->x[t] == 0 && o->z[t] != 0;
    if (nzz == 0)
        return sl_error(SL_EINVAL, "qcircuit: qaoa needs an observable with Z-type terms "
                                   "(e.g. maxcut)");
    for (int q = 0; q < c->n; q++)
        SL_TRY(qc_circuit_gate(c, QC_H, q, -1));
    for (int l = 0; l < layers; l++) {
        const int gamma = 2 * l, beta = 2 * l + 1;
        for (int t = 0; t < o->nterms; t++)
            if (o->x[t] == 0 && o->z[t] != 0)
                SL_TRY(qc_circuit_rot_param(c, QC_RP, 0, o->z[t], gamma, 1.0));
        for (int q = 0; q < c->n; q++)
            SL_TRY(qc_circuit_rot_param(c, QC_RX, (uint64_t)1 << q, 0, beta, 1.0));
        qc_op mark = {.kind = QC_LAYER, .param = -1, .q = {-1, -1}};
        SL_TRY(qc_circuit_push(c, &mark));
    }
    return SL_OK;
}
