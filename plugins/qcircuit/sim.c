/* plugins/qcircuit/sim.c — the cost Tr(O rho(theta)) and its gradient.
 *
 * Each pass of the plan (plan.c) gets one superoperator per evaluation,
 * composed from its ops' superoperators (1-qubit ops are first multiplied
 * together as 4 x 4 matrices, then embedded once per 2-qubit op); an
 * evaluation applies the plan's stages, each several passes in one sweep
 * over rho (density.c).  The adjoint gradient below needs rho between
 * passes, so it applies each pass as a stage of its own.
 *
 * Gradients use the parameter-shift rule: for a rotation R_P(a) the
 * superoperator is S(a) = A + B cos a + C sin a, so
 *     dS/da = [S(a + pi/2) - S(a - pi/2)] / 2        (exact, noise or not).
 * Two ways to use it, same numbers up to rounding:
 *   shift    — 2 cost evaluations per rotation (the textbook form);
 *   adjoint  — one forward pass storing rho before every pass, then one
 *              backward sweep of the observable O through the adjoint
 *              superoperators (S^dagger = conjugate transpose); rotation j
 *              in pass i contributes w_j Tr(O_after_i  D_ij(rho_before_i))
 *              where D_ij is the pass with op j's superoperator replaced by
 *              its shift difference.  About 3 + (rotations / passes)
 *              evaluations instead of 2 * rotations, at the price of one
 *              stored rho per pass.
 * "auto" takes adjoint when the stored states fit in QC_ADJOINT_BYTES.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

#define QC_ADJOINT_BYTES ((size_t)512 << 20)

int qc_sim_init(qc_sim *s, qc_circuit *circ, qc_observable *obs, qc_grad_mode mode)
{
    memset(s, 0, sizeof *s);
    s->circ = *circ;
    s->obs = *obs;
    memset(circ, 0, sizeof *circ);
    memset(obs, 0, sizeof *obs);
    s->grad_mode = mode;
    SL_TRY(qc_plan_build(&s->circ, &s->plan));
    SL_TRY(qc_rho_alloc(&s->rho, s->circ.n));
    SL_TRY(qc_work_alloc(&s->work));
    s->angle = calloc((size_t)s->circ.nops + 1, sizeof *s->angle);
    s->sbuf = malloc(QC_STAGE_MAX_PASSES * 256 * sizeof *s->sbuf);
    if (!s->angle || !s->sbuf)
        return sl_error(SL_ENOMEM, "qcircuit: out of memory");
    return SL_OK;
}

static void free_adjoint(qc_sim *s)
{
    if (s->ckpt)
        for (int i = 0; i < s->plan.npasses; i++)
            qc_rho_free(&s->ckpt[i]);
    free(s->ckpt);
    s->ckpt = NULL;
    qc_rho_free(&s->oback);
    qc_rho_free(&s->tmp);
    s->adjoint_ready = false;
}

void qc_sim_free(qc_sim *s)
{
    free_adjoint(s);
    qc_plan_free(&s->plan);
    qc_rho_free(&s->rho);
    qc_work_free(&s->work);
    qc_circuit_free(&s->circ);
    qc_obs_free(&s->obs);
    free(s->angle);
    free(s->sbuf);
    memset(s, 0, sizeof *s);
}

static void set_angles(qc_sim *s, const double *theta)
{
    for (int i = 0; i < s->circ.nops; i++) {
        const qc_op *op = &s->circ.ops[i];
        s->angle[i] = qc_kind_is_rotation(op->kind) ? op->weight * theta[op->param] : 0.0;
    }
}

/* ---- superoperators of ops and passes ---------------------------------------- */

/* Local Pauli masks of a rotation on its own qubits (bit j = op->q[j]). */
static void local_masks(const qc_op *op, unsigned *lx, unsigned *lz)
{
    *lx = *lz = 0;
    for (int j = 0; j < op->nq; j++) {
        *lx |= (unsigned)(op->x >> op->q[j] & 1) << j;
        *lz |= (unsigned)(op->z >> op->q[j] & 1) << j;
    }
}

/* Exchanges local qubits 0 and 1 of a 16 x 16 superoperator. */
static void swap_pair(double complex *s)
{
    double complex t[256];
    memcpy(t, s, sizeof t);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            int ri = i >> 2, ci = i & 3, rj = j >> 2, cj = j & 3;
#define SWAP2(v) ((((v) & 1) << 1) | (((v) >> 1) & 1))
            int a = SWAP2(ri) * 4 + SWAP2(ci), b = SWAP2(rj) * 4 + SWAP2(cj);
#undef SWAP2
            s[i * 16 + j] = t[a * 16 + b];
        }
}

/* The op's superoperator at `angle` (4 x 4 for 1-qubit ops, 16 x 16 for
 * 2-qubit ones, in the op's own qubit order). */
static int op_super(const qc_op *op, double angle, double complex *s)
{
    double complex u[16];
    if (op->kind == QC_CHANNEL) {
        if (op->channel == QC_CH_KRAUS)
            return qc_super_from_kraus(op->nq, op->nkraus, op->kraus, s);
        return qc_channel_super(op->channel, op->strength, s);
    }
    if (qc_kind_is_rotation(op->kind)) {
        unsigned lx, lz;
        local_masks(op, &lx, &lz);
        qc_pauli_rotation_unitary(op->nq, lx, lz, angle, u);
    } else {
        qc_gate_unitary(op->kind, angle, u);
    }
    qc_super_from_unitary(op->nq, u, s);
    return SL_OK;
}

/* dS/da by the shift rule. */
static int op_super_deriv(const qc_op *op, double angle, double complex *s)
{
    double complex minus[256];
    const int d2 = op->nq == 1 ? 16 : 256;
    SL_TRY(op_super(op, angle + M_PI / 2, s));
    SL_TRY(op_super(op, angle - M_PI / 2, minus));
    for (int i = 0; i < d2; i++)
        s[i] = 0.5 * (s[i] - minus[i]);
    return SL_OK;
}

/* c = a b for 16 x 16 matrices, skipping zeros of a (embedded 1-qubit ops
 * and permutations are sparse). */
static void mul16(const double complex *a, const double complex *b, double complex *c)
{
    memset(c, 0, 256 * sizeof *c);
    for (int i = 0; i < 16; i++)
        for (int l = 0; l < 16; l++) {
            double complex v = a[i * 16 + l];
            if (v == 0)
                continue;
            for (int j = 0; j < 16; j++)
                c[i * 16 + j] += v * b[l * 16 + j];
        }
}

/* s <- e(acc) s where acc is a 4 x 4 on local qubit `slot`; acc <- I. */
static void fold_acc(double complex *acc, int slot, double complex *s)
{
    double complex e[256], t[256];
    qc_super_embed(acc, slot, e);
    mul16(e, s, t);
    memcpy(s, t, sizeof t);
    qc_super_identity(4, acc);
}

/* The superoperator of pass p (4 x 4 or 16 x 16) into s.  If `deriv` is an
 * item index of the pass, that item contributes its shift derivative. */
static int pass_super(qc_sim *s, const qc_pass *p, int deriv, double complex *out)
{
    double complex acc[2][16], one[256], t[256];
    qc_super_identity(4, acc[0]);
    qc_super_identity(4, acc[1]);
    if (p->k == 2)
        qc_super_identity(16, out);
    for (int it = p->first; it < p->first + p->count; it++) {
        const qc_op *op = &s->circ.ops[s->plan.items[it]];
        double a = s->angle[s->plan.items[it]];
        SL_TRY(it == deriv ? op_super_deriv(op, a, one) : op_super(op, a, one));
        int slot = s->plan.slot[it];
        if (slot < 2) { /* 1-qubit op: into its qubit's accumulator */
            qc_super_mul(4, one, acc[slot], t);
            memcpy(acc[slot], t, 16 * sizeof *t);
            continue;
        }
        fold_acc(acc[0], 0, out);
        fold_acc(acc[1], 1, out);
        if (slot == 3)
            swap_pair(one);
        mul16(one, out, t);
        memcpy(out, t, sizeof t);
    }
    if (p->k == 1) {
        memcpy(out, acc[0], 16 * sizeof *out);
        return SL_OK;
    }
    fold_acc(acc[0], 0, out);
    fold_acc(acc[1], 1, out);
    return SL_OK;
}

/* rho <- pass(rho); a heavy pass is its rotation (at angle + shift). */
static int apply_pass(qc_sim *s, const qc_pass *p, qc_rho *rho, int deriv, double shift)
{
    if (p->k == 0) {
        int i = s->plan.items[p->first];
        const qc_op *op = &s->circ.ops[i];
        qc_apply_pauli_rotation(rho, op->x, op->z, s->angle[i] + shift);
        return SL_OK;
    }
    double complex sup[256];
    SL_TRY(pass_super(s, p, deriv, sup));
    qc_stage_op op = {.k = p->k, .q = {p->q[0], p->q[1]}, .s = sup};
    return qc_apply_stage(rho, 1, &op, false, &s->work);
}

/* rho <- the passes of stage st; a heavy pass alone.  With zero_state,
 * rho starts as |0..0><0..0| whatever it holds. */
static int apply_stage(qc_sim *s, const qc_stage *st, bool zero_state, qc_rho *rho)
{
    const qc_pass *first = &s->plan.passes[s->plan.order[st->first]];
    if (first->k == 0) {
        if (zero_state)
            qc_rho_zero_state(rho);
        return apply_pass(s, first, rho, -1, 0.0);
    }
    qc_stage_op ops[QC_STAGE_MAX_PASSES];
    for (int i = 0; i < st->count; i++) {
        const qc_pass *p = &s->plan.passes[s->plan.order[st->first + i]];
        double complex *sup = s->sbuf + 256 * i;
        SL_TRY(pass_super(s, p, -1, sup));
        ops[i] = (qc_stage_op){.k = p->k, .q = {p->q[0], p->q[1]}, .s = sup};
    }
    return qc_apply_stage(rho, st->count, ops, zero_state, &s->work);
}

/* ---- cost ----------------------------------------------------------------------- */

static int run_from_angles(qc_sim *s)
{
    if (s->plan.nstages == 0)
        qc_rho_zero_state(&s->rho);
    for (int i = 0; i < s->plan.nstages; i++)
        SL_TRY(apply_stage(s, &s->plan.stages[i], i == 0, &s->rho));
    s->evals++;
    return SL_OK;
}

int qc_sim_run(qc_sim *s, const double *theta)
{
    set_angles(s, theta);
    return run_from_angles(s);
}

int qc_sim_cost(qc_sim *s, const double *theta, double *cost)
{
    SL_TRY(qc_sim_run(s, theta));
    *cost = qc_obs_expect(&s->obs, &s->rho);
    return SL_OK;
}

/* ---- gradient: shifted evaluations ------------------------------------------------ */

int qc_sim_grad_shift(qc_sim *s, const double *theta, double *grad)
{
    memset(grad, 0, (size_t)s->circ.nparams * sizeof *grad);
    set_angles(s, theta);
    for (int i = 0; i < s->circ.nops; i++) {
        const qc_op *op = &s->circ.ops[i];
        if (!qc_kind_is_rotation(op->kind))
            continue;
        const double a = s->angle[i];
        double plus, minus;
        s->angle[i] = a + M_PI / 2;
        SL_TRY(run_from_angles(s));
        plus = qc_obs_expect(&s->obs, &s->rho);
        s->angle[i] = a - M_PI / 2;
        SL_TRY(run_from_angles(s));
        minus = qc_obs_expect(&s->obs, &s->rho);
        s->angle[i] = a;
        grad[op->param] += op->weight * 0.5 * (plus - minus);
    }
    return SL_OK;
}

/* ---- gradient: adjoint sweep ------------------------------------------------------- */

static int adjoint_prepare(qc_sim *s)
{
    if (s->adjoint_ready)
        return SL_OK;
    const int n = s->circ.n;
    s->ckpt = calloc((size_t)s->plan.npasses + 1, sizeof *s->ckpt);
    if (!s->ckpt)
        return sl_error(SL_ENOMEM, "qcircuit: out of memory for the adjoint gradient");
    int rc = SL_OK;
    for (int i = 0; i < s->plan.npasses && rc == SL_OK; i++)
        rc = qc_rho_alloc(&s->ckpt[i], n);
    if (rc == SL_OK)
        rc = qc_rho_alloc(&s->oback, n);
    if (rc == SL_OK)
        rc = qc_rho_alloc(&s->tmp, n);
    if (rc != SL_OK) {
        free_adjoint(s);
        return sl_error_context(rc, "qcircuit: adjoint gradient");
    }
    s->adjoint_ready = true;
    return SL_OK;
}

static bool use_adjoint(const qc_sim *s)
{
    if (s->grad_mode != QC_GRAD_AUTO)
        return s->grad_mode == QC_GRAD_ADJOINT;
    size_t bytes = (size_t)16 << (2 * s->circ.n);
    return bytes * (size_t)(s->plan.npasses + 2) <= QC_ADJOINT_BYTES;
}

/* d/da of Tr(O_after pass(rho_before)) for item `it` of pass p. */
static int item_grad(qc_sim *s, const qc_pass *p, int i, int it, double *g)
{
    qc_rho_copy(&s->tmp, &s->ckpt[i]);
    if (p->k != 0) {
        SL_TRY(apply_pass(s, p, &s->tmp, it, 0.0));
        *g = creal(qc_inner(&s->oback, &s->tmp));
        return SL_OK;
    }
    SL_TRY(apply_pass(s, p, &s->tmp, -1, M_PI / 2));
    double plus = creal(qc_inner(&s->oback, &s->tmp));
    qc_rho_copy(&s->tmp, &s->ckpt[i]);
    SL_TRY(apply_pass(s, p, &s->tmp, -1, -M_PI / 2));
    *g = 0.5 * (plus - creal(qc_inner(&s->oback, &s->tmp)));
    return SL_OK;
}

/* O <- pass^dagger(O). */
static int adjoint_pass(qc_sim *s, const qc_pass *p)
{
    if (p->k == 0) {
        int i = s->plan.items[p->first];
        const qc_op *op = &s->circ.ops[i];
        qc_apply_pauli_rotation(&s->oback, op->x, op->z, -s->angle[i]);
        return SL_OK;
    }
    double complex sup[256], adj[256];
    SL_TRY(pass_super(s, p, -1, sup));
    const int d2 = p->k == 1 ? 4 : 16;
    for (int a = 0; a < d2; a++)
        for (int b = 0; b < d2; b++)
            adj[a * d2 + b] = conj(sup[b * d2 + a]);
    qc_stage_op op = {.k = p->k, .q = {p->q[0], p->q[1]}, .s = adj};
    return qc_apply_stage(&s->oback, 1, &op, false, &s->work);
}

static int grad_adjoint(qc_sim *s, const double *theta, double *grad)
{
    SL_TRY(adjoint_prepare(s));
    memset(grad, 0, (size_t)s->circ.nparams * sizeof *grad);
    set_angles(s, theta);
    qc_rho_zero_state(&s->rho);
    for (int i = 0; i < s->plan.npasses; i++) {
        qc_rho_copy(&s->ckpt[i], &s->rho);
        SL_TRY(apply_pass(s, &s->plan.passes[i], &s->rho, -1, 0.0));
    }
    qc_obs_dense(&s->obs, &s->oback);
    for (int i = s->plan.npasses - 1; i >= 0; i--) {
        const qc_pass *p = &s->plan.passes[i];
        for (int it = p->first; it < p->first + p->count; it++) {
            const qc_op *op = &s->circ.ops[s->plan.items[it]];
            if (!qc_kind_is_rotation(op->kind))
                continue;
            double g;
            SL_TRY(item_grad(s, p, i, it, &g));
            grad[op->param] += op->weight * g;
        }
        if (i > 0)
            SL_TRY(adjoint_pass(s, p));
    }
    s->evals += 3;
    return SL_OK;
}

int qc_sim_grad(qc_sim *s, const double *theta, double *grad)
{
    return use_adjoint(s) ? grad_adjoint(s, theta, grad) : qc_sim_grad_shift(s, theta, grad);
}
