/* plugins/teleport/action.c — the GL(k) group action on pairs of weight
 * layers (tp.h) and the transposed tangent of it, ∂obj/∂T from ∂obj/∂θ. */
#include "config.h"

#include "tp.h"

/* The 2022 paper's code (its group_action_MLP and teleport loop), kept to
 * reproduce its runs: for each pair m in turn
 *     V_m <- σ⁻¹((I + T_m) σ(V_m h̃_m)) h̃_m⁺,    U_m <- U_m (I − T_m),
 * where h̃_m are the activations of the network before this step, although
 * the layers before pair m have moved (and V_m, being U_{m−1}, already
 * carries the factor I − T_{m−1}).  Its tangent at T = 0 is the exact 2022
 * form's (so grad_T serves both) and the batch loss moves at second order
 * in T; with two weight layers that error is only U (I − T)(I + T) =
 * U (I − T²), with three or more the stale activations make it far larger
 * (about 10⁴ times on the 5-6-7-8 regression of tests/check_dynamics.c). */
static int apply_reference_2022(tp_arena *a, const tp_net *n, tp_params *p, const tp_mat *X,
                                const tp_mat *T, double rcond)
{
    tp_layer_fwd f[TP_MAX_LAYERS];
    SL_TRY(tp_forward(a, n, p, X, f));
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        tp_mat *V = &p->P[m];
        tp_mat U = tp_cols(&p->P[m + 1], k);
        const tp_mat *H = &f[m].H;
        tp_mat Z = tp_mm_new(a, V, false, H, false);
        tp_mat g = tp_mat_new(a, k, k), ginv = tp_mat_new(a, k, k), Hp;
        if (!Z.p || !g.p || !ginv.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) {
                double t = T ? *tp_at(&T[m], i, j) : 0.0;
                *tp_at(&g, i, j) = (i == j) + t;
                *tp_at(&ginv, i, j) = (i == j) - t; /* the first-order "inverse" */
            }
        tp_apply_act(&Z, &Z, NULL, n->act[m]);
        tp_mat gA = tp_mm_new(a, &g, false, &Z, false), Uc = tp_copy_new(a, &U);
        if (!gA.p || !Uc.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        for (int64_t i = 0; i < gA.r; i++)
            for (int64_t j = 0; j < gA.c; j++)
                *tp_at(&gA, i, j) = tp_act_inv(*tp_at(&gA, i, j), n->act[m]);
        SL_TRY(tp_pinv(a, H, rcond, &Hp));
        tp_mm(V, &gA, false, &Hp, false, 1.0, 0.0);
        tp_mm(&U, &Uc, false, &ginv, false, 1.0, 0.0);
    }
    return SL_OK;
}

/* Applies g_m = I + T_m (T NULL: all zero) to every pair in turn. */
int tp_apply_action(tp_arena *a, const tp_net *n, tp_params *p, const tp_mat *X,
                    const tp_mat *T, tp_form form, double rcond)
{
    if (form == TP_FORM_REFERENCE_2022)
        return apply_reference_2022(a, n, p, X, T, rcond);
    tp_mat h = *X;
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        tp_mat H = tp_augment(a, n, m, &h);
        tp_mat V = p->P[m];
        tp_mat U = tp_cols(&p->P[m + 1], k);
        tp_mat g = tp_mat_new(a, k, k);
        tp_mat Z = tp_mm_new(a, &V, false, &H, false);
        tp_mat A = tp_mat_new(a, k, H.c);
        if (!H.p || !g.p || !Z.p || !A.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++)
                *tp_at(&g, i, j) = (i == j) + (T ? *tp_at(&T[m], i, j) : 0.0);
        tp_apply_act(&Z, &A, NULL, n->act[m]);
        if (form == TP_FORM_2022) {
            /* V' = σ⁻¹(g A) H⁺,  U' = U g⁻¹ */
            tp_mat gA = tp_mm_new(a, &g, false, &A, false), Hp, ginv;
            if (!gA.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            for (int64_t i = 0; i < gA.r; i++)
                for (int64_t j = 0; j < gA.c; j++)
                    *tp_at(&gA, i, j) = tp_act_inv(*tp_at(&gA, i, j), n->act[m]);
            SL_TRY(tp_pinv(a, &H, rcond, &Hp));
            SL_TRY(tp_pinv(a, &g, 0.0, &ginv));
            tp_mm(&V, &gA, false, &Hp, false, 1.0, 0.0);
            tp_mat Uc = tp_copy_new(a, &U);
            if (!Uc.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            tp_mm(&U, &Uc, false, &ginv, false, 1.0, 0.0);
        } else {
            /* V' = g V,  U' = U A σ(g Z)⁺ */
            tp_mat Vc = tp_copy_new(a, &V), gZ = tp_mm_new(a, &g, false, &Z, false), Ap;
            if (!Vc.p || !gZ.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            tp_mm(&V, &g, false, &Vc, false, 1.0, 0.0);
            tp_apply_act(&gZ, &gZ, NULL, n->act[m]);
            SL_TRY(tp_pinv(a, &gZ, rcond, &Ap));
            tp_mat UA = tp_mm_new(a, &U, false, &A, false);
            if (!UA.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            tp_mm(&U, &UA, false, &Ap, false, 1.0, 0.0);
        }
        /* the next pair sees the moved layer's activations */
        tp_mat Zn = tp_mm_new(a, &V, false, &H, false);
        if (!Zn.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        tp_apply_act(&Zn, &Zn, NULL, n->act[m]);
        h = Zn;
    }
    return SL_OK;
}

/* ∂obj/∂T_m for every pair from D = ∂obj/∂P (augmented, per layer). */
int tp_grad_T(tp_arena *a, const tp_net *n, const tp_params *p, const tp_params *D,
              const tp_layer_fwd *f, tp_form form, double rcond, tp_mat *dT)
{
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        if (!(dT[m] = tp_mat_new(a, k, k)).p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
    }
    const bool form2022 = form != TP_FORM_2023; /* exact and reference share it */
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        const tp_layer_fwd *L = &f[m];
        tp_mat U = tp_cols(&p->P[m + 1], k), GU = tp_cols(&D->P[m + 1], k);
        const tp_mat *V = &p->P[m], *GV = &D->P[m];
        if (form2022) {
            /* U' = U g⁻¹: dU = −U T, but only for the last pair: any other
             * U is the next pair's V, which that pair's action rebuilds as
             * σ⁻¹(g' σ(U g⁻¹ g A)) [g A; 1]⁺, free of U g⁻¹ (the g A
             * dependence is the cross term below). */
            if (m + 2 == n->nlayers)
                tp_mm(&dT[m], &U, true, &GU, false, -1.0, 1.0);
            /* V' = σ⁻¹(g A) H⁺: dV = ((T A) ⊘ σ'(Z)) H⁺ */
            tp_mat Hp;
            SL_TRY(tp_pinv(a, &L->H, rcond, &Hp));
            tp_mat GH = tp_mm_new(a, GV, false, &Hp, true); /* k x n */
            if (!GH.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            for (int64_t i = 0; i < GH.r; i++)
                for (int64_t j = 0; j < GH.c; j++)
                    *tp_at(&GH, i, j) /= *tp_at(&L->S, i, j);
            tp_mm(&dT[m], &GH, false, &L->A, true, 1.0, 1.0);
            /* and V' = Z [g_{m-1} A_{m-1}; 1]⁺ moves with the previous pair's g */
            if (m > 0) {
                tp_mat F = tp_mm_new(a, &L->Z, true, GV, false); /* n x aug */
                tp_mat R = F.p ? tp_pinv_vjp(a, &L->H, &Hp, &F) : F;
                if (!R.p)
                    return sl_error(SL_ENOMEM, "teleport: out of memory");
                tp_mat Rk = {R.p, n->out[m - 1], R.c, R.ld};
                tp_mm(&dT[m - 1], &Rk, false, &f[m - 1].A, true, 1.0, 1.0);
            }
        } else {
            /* V' = g V: dV = T V */
            tp_mm(&dT[m], GV, false, V, true, 1.0, 1.0);
            /* U' = U A σ(g Z)⁺: through B = A, E = σ'(Z) ⊙ (T Z) */
            tp_mat Ap;
            SL_TRY(tp_pinv(a, &L->A, rcond, &Ap));
            tp_mat UA = tp_mm_new(a, &U, false, &L->A, false);
            tp_mat F = UA.p ? tp_mm_new(a, &UA, true, &GU, false) : UA; /* n x k */
            tp_mat R = F.p ? tp_pinv_vjp(a, &L->A, &Ap, &F) : F;       /* k x n */
            if (!R.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            for (int64_t i = 0; i < R.r; i++)
                for (int64_t j = 0; j < R.c; j++)
                    *tp_at(&R, i, j) *= *tp_at(&L->S, i, j);
            tp_mm(&dT[m], &R, false, &L->Z, true, 1.0, 1.0);
        }
    }
    return SL_OK;
}

