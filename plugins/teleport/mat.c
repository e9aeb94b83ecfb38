/* plugins/teleport/mat.c — small dense f64 matrices for the teleport: an
 * arena for a teleport's workspaces, products through sl_dgemm, the
 * Moore-Penrose pseudo-inverse and its vector-Jacobian product. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tp.h"

static double *arena_alloc(tp_arena *a, int64_t n)
{
    if (a->failed)
        return NULL;
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 64;
        void **b = realloc(a->blocks, (size_t)cap * sizeof *b);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        a->blocks = b;
        a->cap = cap;
    }
    double *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (!p)
        a->failed = true;
    else
        a->blocks[a->n++] = p;
    return p;
}

void tp_arena_free(tp_arena *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

tp_mat tp_mat_new(tp_arena *a, int64_t r, int64_t c)
{
    tp_mat m = {arena_alloc(a, r * c), r, c, c};
    return m;
}

void tp_mm(tp_mat *C, const tp_mat *A, bool ta, const tp_mat *B, bool tb, double alpha,
           double beta)
{
    int64_t k = ta ? A->r : A->c;
    sl_dgemm(ta, tb, C->r, C->c, k, alpha, A->p, A->ld, B->p, B->ld, beta, C->p, C->ld);
}

tp_mat tp_mm_new(tp_arena *a, const tp_mat *A, bool ta, const tp_mat *B, bool tb)
{
    tp_mat C = tp_mat_new(a, ta ? A->c : A->r, tb ? B->r : B->c);
    if (C.p)
        tp_mm(&C, A, ta, B, tb, 1.0, 0.0);
    return C;
}

tp_mat tp_copy_new(tp_arena *a, const tp_mat *m)
{
    tp_mat c = tp_mat_new(a, m->r, m->c);
    if (c.p)
        for (int64_t i = 0; i < m->r; i++)
            memcpy(tp_at(&c, i, 0), tp_at(m, i, 0), (size_t)m->c * sizeof(double));
    return c;
}

/* Via LAPACK's SVD. */
int tp_pinv(tp_arena *a, const tp_mat *B, double rcond, tp_mat *out)
{
    tp_mat Bc = B->ld == B->c ? *B : tp_copy_new(a, B);
    *out = tp_mat_new(a, B->c, B->r);
    if (!Bc.p || !out->p)
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    for (int64_t i = 0; i < B->r * B->c; i++)
        if (!isfinite(Bc.p[i]))
            return sl_error(SL_ENUMERIC, "teleport: the ascent diverged (non-finite weights); "
                                         "lower lr or set cap");
    sl_tensor t, u = {0}, s = {0}, vt = {0};
    SL_TRY(sl_tensor_wrap(&t, Bc.p, SL_F64, 2, (int64_t[]){B->r, B->c}));
    SL_TRY(sl_svd(&t, &u, &s, &vt));
    int64_t q = s.shape[0];
    const double *U = u.data, *S = s.data, *Vt = vt.data;
    double cut = q > 0 ? rcond * S[0] : 0.0;
    for (int64_t l = 0; l < q; l++) {
        if (!(S[l] > cut) || S[l] == 0.0)
            continue;
        for (int64_t i = 0; i < B->c; i++) {
            double vi = Vt[l * B->c + i] / S[l];
            for (int64_t j = 0; j < B->r; j++)
                *tp_at(out, i, j) += vi * U[j * q + l];
        }
    }
    sl_tensor_release(&u);
    sl_tensor_release(&s);
    sl_tensor_release(&vt);
    return SL_OK;
}

/* For M = C B⁺ (B r x c, constant rank), ∂⟨G, M⟩/∂B in the direction E,
 * given F = Cᵀ G (c x r): with P = I − B B⁺ and Q = I − B⁺ B,
 *   dB⁺ = −B⁺ E B⁺ + B⁺B⁺ᵀ Eᵀ P + Q Eᵀ B⁺ᵀB⁺          (Golub & Pereyra)
 * so the gradient with respect to E (r x c) is
 *   −B⁺ᵀ F B⁺ᵀ + P Fᵀ B⁺B⁺ᵀ + B⁺ᵀB⁺ Fᵀ Q. */
tp_mat tp_pinv_vjp(tp_arena *a, const tp_mat *B, const tp_mat *Bp, const tp_mat *F)
{
    int64_t r = B->r, c = B->c;
    tp_mat R = tp_mat_new(a, r, c);
    tp_mat FBt = tp_mm_new(a, F, false, Bp, true);  /* c x c */
    tp_mat P = tp_mm_new(a, B, false, Bp, false);   /* B B⁺, r x r */
    tp_mat Q = tp_mm_new(a, Bp, false, B, false);   /* B⁺ B, c x c */
    tp_mat BBt = tp_mm_new(a, Bp, false, Bp, true); /* B⁺B⁺ᵀ, c x c */
    tp_mat BtB = tp_mm_new(a, Bp, true, Bp, false); /* B⁺ᵀB⁺, r x r */
    tp_mat FtBBt = tp_mat_new(a, r, c);
    tp_mat FtQ = tp_mat_new(a, r, c);
    if (!R.p || !FBt.p || !P.p || !Q.p || !BBt.p || !BtB.p || !FtBBt.p || !FtQ.p)
        return R;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < r; j++)
            *tp_at(&P, i, j) = (i == j) - *tp_at(&P, i, j);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < c; j++)
            *tp_at(&Q, i, j) = (i == j) - *tp_at(&Q, i, j);
    tp_mm(&R, Bp, true, &FBt, false, -1.0, 0.0);    /* −B⁺ᵀ (F B⁺ᵀ) */
    tp_mm(&FtBBt, F, true, &BBt, false, 1.0, 0.0);  /* Fᵀ B⁺B⁺ᵀ */
    tp_mm(&R, &P, false, &FtBBt, false, 1.0, 1.0);
    tp_mm(&FtQ, F, true, &Q, false, 1.0, 0.0);      /* Fᵀ Q */
    tp_mm(&R, &BtB, false, &FtQ, false, 1.0, 1.0);
    return R;
}
