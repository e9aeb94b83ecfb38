/* plugins/teleport — "teleport" hook: symmetry teleportation (Zhao, Dehmamy,
 * Walters, Yu 2022; Zhao, Gower, Walters, Yu 2023; docs/background/teleportation.md).
 *
 * Between two consecutive linear layers V = W_m (with its bias as an extra
 * column, acting on h̃ = [h; 1]) and U = W_{m+1} separated by an invertible
 * leaky_relu σ, the data-dependent GL(k) action keeps the network's output on
 * the teleport batch (columns of h) unchanged:
 *
 *   form 2022:  U -> U g⁻¹,   V -> σ⁻¹(g σ(V h̃)) h̃⁺
 *   form 2023:  V -> g V,     U -> U σ(V h̃) σ(g V h̃)⁺
 *
 * exactly when the pseudo-inverses act as inverses on the batch (batch size
 * <= the width involved; docs/background/teleportation.md).  Both are applied pair after pair
 * through the depth, recomputing the activations from the moved layers.
 * g⁻¹ is the exact inverse (the reference code's I − T is only first order).
 *
 * The search ascends obj = ‖∇L‖² over g_m = I + T_m, each step from T = 0:
 * ∂obj/∂T = Jᵀ (2 H ∇L), with H∇L a central finite-difference Hessian-vector
 * product in f64 (two extra gradients) and Jᵀ the transposed tangent of the
 * group action, contracted analytically (pseudo-inverse derivatives
 * included, see pinv_vjp).  Omitted: in the 2023 form the coupling of pair m
 * to pair m+1 through moved activations, which vanishes in the exact regime.
 *
 * All of it runs on an f64 clone of the model (allocated at TRAIN_BEGIN), so
 * f32 models teleport with f64 arithmetic; an accepted teleport is copied
 * back.  A teleport that raises the batch loss by more than loss_tol
 * (relative) is rejected and the model left alone.  Matrices below are
 * column-convention: h is (features x batch). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

static const sl_option_spec teleport_options[] = {
    {"form", SL_OPT_STRING, "2023", "group action: 2022 (U g^-1, sigma^-1(g sigma(Vh)) h^+) or "
                                    "2023 (g V, U sigma(Vh) sigma(gVh)^+)", "2022|2023"},
    {"every", SL_OPT_INT, "0", "teleport before every N-th step (step % N == 0); 0: off", NULL},
    {"epoch", SL_OPT_INT, "-1", "teleport in this epoch (0-based) ...; -1: off", NULL},
    {"count", SL_OPT_INT, "1", "... before each of its first `count` steps", NULL},
    {"batch", SL_OPT_INT, "0",
     "teleport batch: N random training rows; 0: the current training batch", NULL},
    {"steps", SL_OPT_INT, "10", "gradient-ascent steps on |grad L|^2 per teleport", NULL},
    {"lr", SL_OPT_FLOAT, "1e-3", "teleport learning rate (step on T)", NULL},
    {"cap", SL_OPT_FLOAT, "100", "stop ascending once |grad L|^2 exceeds this; 0: no cap", NULL},
    {"reset_optim", SL_OPT_BOOL, "true", "reset the optimizer state after a teleport", NULL},
    {"loss_tol", SL_OPT_FLOAT, "1e-3",
     "reject a teleport raising the batch loss by more than this (relative)", NULL},
    {"rcond", SL_OPT_FLOAT, "1e-10", "pseudo-inverse cutoff relative to the largest singular value",
     NULL},
    {"hvp_eps", SL_OPT_FLOAT, "1e-6", "finite-difference step of the Hessian-vector product, "
                                      "relative to max(1, |theta|)", NULL},
    {"seed", SL_OPT_INT, "-1", "seed of the teleport batches; < 0: the run's seed", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

/* ---- small dense matrices (f64, row-major, leading dimension ld) -------- */

typedef struct mat {
    double *p;
    int64_t r, c, ld;
} mat;

/* Teleports are rare events, not steady-state steps: their workspaces come
 * from this arena and are freed when the teleport ends. */
typedef struct arena {
    void **blocks;
    int n, cap;
    bool failed;
} arena;

static double *arena_alloc(arena *a, int64_t n)
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

static void arena_free(arena *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->blocks[i]);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}

static mat mat_new(arena *a, int64_t r, int64_t c)
{
    mat m = {arena_alloc(a, r * c), r, c, c};
    return m;
}

static double *at(const mat *m, int64_t i, int64_t j) { return m->p + i * m->ld + j; }

/* The first `c` columns of m (a view). */
static mat cols(const mat *m, int64_t c)
{
    mat v = {m->p, m->r, c, m->ld};
    return v;
}

/* C = alpha op(A) op(B) + beta C. */
static void mm(mat *C, const mat *A, bool ta, const mat *B, bool tb, double alpha, double beta)
{
    int64_t k = ta ? A->r : A->c;
    sl_dgemm(ta, tb, C->r, C->c, k, alpha, A->p, A->ld, B->p, B->ld, beta, C->p, C->ld);
}

static mat mm_new(arena *a, const mat *A, bool ta, const mat *B, bool tb)
{
    mat C = mat_new(a, ta ? A->c : A->r, tb ? B->r : B->c);
    if (C.p)
        mm(&C, A, ta, B, tb, 1.0, 0.0);
    return C;
}

static mat copy_new(arena *a, const mat *m)
{
    mat c = mat_new(a, m->r, m->c);
    if (c.p)
        for (int64_t i = 0; i < m->r; i++)
            memcpy(at(&c, i, 0), at(m, i, 0), (size_t)m->c * sizeof(double));
    return c;
}

/* Moore-Penrose pseudo-inverse via LAPACK's SVD; singular values below
 * rcond * s_max count as zero. */
static int pinv(arena *a, const mat *B, double rcond, mat *out)
{
    mat Bc = B->ld == B->c ? *B : copy_new(a, B);
    *out = mat_new(a, B->c, B->r);
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
                *at(out, i, j) += vi * U[j * q + l];
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
static mat pinv_vjp(arena *a, const mat *B, const mat *Bp, const mat *F)
{
    int64_t r = B->r, c = B->c;
    mat R = mat_new(a, r, c);
    mat FBt = mm_new(a, F, false, Bp, true);   /* c x c */
    mat P = mm_new(a, B, false, Bp, false);    /* B B⁺, r x r */
    mat Q = mm_new(a, Bp, false, B, false);    /* B⁺ B, c x c */
    mat BBt = mm_new(a, Bp, false, Bp, true);  /* B⁺B⁺ᵀ, c x c */
    mat BtB = mm_new(a, Bp, true, Bp, false);  /* B⁺ᵀB⁺, r x r */
    mat FtBBt = mat_new(a, r, c);
    mat FtQ = mat_new(a, r, c);
    if (!R.p || !FBt.p || !P.p || !Q.p || !BBt.p || !BtB.p || !FtBBt.p || !FtQ.p)
        return R;
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < r; j++)
            *at(&P, i, j) = (i == j) - *at(&P, i, j);
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < c; j++)
            *at(&Q, i, j) = (i == j) - *at(&Q, i, j);
    mm(&R, Bp, true, &FBt, false, -1.0, 0.0);       /* −B⁺ᵀ (F B⁺ᵀ) */
    mm(&FtBBt, F, true, &BBt, false, 1.0, 0.0);     /* Fᵀ B⁺B⁺ᵀ */
    mm(&R, &P, false, &FtBBt, false, 1.0, 1.0);
    mm(&FtQ, F, true, &Q, false, 1.0, 0.0);         /* Fᵀ Q */
    mm(&R, &BtB, false, &FtQ, false, 1.0, 1.0);
    return R;
}

/* ---- the network as the teleport sees it ---------------------------------- */

#define MAX_LAYERS 32

/* A positively homogeneous scalar map is c₊x for x > 0 and c₋x for x < 0;
 * invertible (with the same signs) when both are > 0. */
typedef struct slopes {
    double pos, neg;
} slopes;

typedef struct net {
    int nlayers;
    int weight[MAX_LAYERS];   /* model parameter index of each layer's weight */
    int bias[MAX_LAYERS];     /* ... and of its bias, or -1 */
    int64_t in[MAX_LAYERS], out[MAX_LAYERS];
    slopes act[MAX_LAYERS];   /* the activation after layer m (m < nlayers-1) */
} net;

static const char *type_name(sl_model *m, int i)
{
    return sl_module_type_of(sl_model_module(m, i))->name;
}

/* c₊ and c₋ of module i (per-unit, homogeneous), read by running its
 * forward on rows of +1 and −1 shaped like its k-unit input. */
static int measure_slopes(sl_model *m, int i, int64_t k, slopes *out)
{
    sl_module *mod = sl_model_module(m, i);
    int64_t shape[2] = {2, k};
    sl_tensor x = {0}, y = {0};
    int rc = sl_tensor_alloc(&x, sl_module_dtype(mod), 2, shape);
    if (rc >= 0)
        rc = sl_tensor_alloc(&y, sl_module_dtype(mod), 2, shape);
    for (int64_t j = 0; rc >= 0 && j < k; j++) {
        sl_tensor_set(&x, (int64_t[]){0, j}, 1.0);
        sl_tensor_set(&x, (int64_t[]){1, j}, -1.0);
    }
    if (rc >= 0)
        rc = sl_module_type_of(mod)->forward(mod, &x, &y);
    if (rc >= 0) {
        out->pos = sl_tensor_flat_get(&y, 0);
        out->neg = -sl_tensor_flat_get(&y, k);
    }
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    return rc;
}

/* Modules that pass values through unchanged for the teleport's own MLP
 * forward: reshapes and identity-like per-unit maps without tensors. */
static bool passes_through(const sl_module_role *r)
{
    const unsigned id = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR;
    return r->kind == SL_ROLE_RESHAPE ||
           (r->kind == SL_ROLE_PER_UNIT && (r->flags & id) == id && !r->unit_tensors &&
            !(r->flags & (SL_UNIT_RESAMPLES | SL_UNIT_STOCHASTIC)));
}

/* Accepts a chain of 2-d weight layers (linear) whose hidden layers pass
 * through invertible positively homogeneous maps (leaky_relu), with only
 * pass-through modules before the first and after the last (structure.h). */
static int describe_net(sl_model *m, const sl_structure *st, net *n)
{
    memset(n, 0, sizeof *n);
    n->nlayers = sl_structure_nlayers(st);
    if (n->nlayers < 2 || n->nlayers > MAX_LAYERS)
        return sl_error(SL_EINVAL, "teleport: needs 2 to %d weight layers separated by "
                                   "invertible activations such as leaky_relu", MAX_LAYERS);
    const int first = sl_structure_layer(st, 0)->module;
    const int last = sl_structure_layer(st, n->nlayers - 1)->module;
    for (int i = 0; i < sl_model_nmodules(m); i++)
        if ((i < first || i > last) && !passes_through(sl_module_role_of(sl_model_module(m, i))))
            return sl_error(SL_EINVAL, "teleport: module %d (%s) does not fit; teleport needs "
                                       "weight layers separated by leaky_relu", i + 1,
                            type_name(m, i));
    for (int l = 0; l < n->nlayers; l++) {
        const sl_weight_layer *L = sl_structure_layer(st, l);
        if (L->module < 0)
            return sl_error(SL_EINVAL, "teleport: module %s (%s) is inside a container; "
                                       "teleport needs a plain chain of weight layers",
                            sl_module_path(L->mod), sl_module_type_of(L->mod)->name);
        const sl_tensor *w = sl_model_param(m, L->weight);
        if (w->ndim != 2 || L->unit_axis != 0 || L->input_axis != 1)
            return sl_error(SL_EINVAL, "teleport: module %d (%s) is not a dense (out, in) "
                                       "weight layer", L->module + 1, type_name(m, L->module));
        n->weight[l] = L->weight;
        n->bias[l] = L->bias;
        n->out[l] = w->shape[0];
        n->in[l] = w->shape[1];
        if (l + 1 == n->nlayers)
            break;
        const sl_hidden_layer *h = sl_structure_hidden(st, L->hidden_out);
        const int next = sl_structure_layer(st, l + 1)->module;
        const sl_tensor *wn = sl_model_param(m, sl_structure_layer(st, l + 1)->weight);
        if (!h || h->consumer != l + 1 || h->nproducers != 1 || h->nconsumers != 1 ||
            (h->symmetry & SL_SYM_RESCALE) == 0 ||
            wn->ndim != 2 || wn->shape[1] != n->out[l])
            return sl_error(SL_EINVAL, "teleport: modules %d to %d do not fit; teleport needs "
                                       "weight layers separated by leaky_relu",
                            L->module + 1, next + 1);
        n->act[l] = (slopes){1.0, 1.0};
        for (int i = L->module + 1; i < next; i++) {
            if (sl_module_role_of(sl_model_module(m, i))->kind != SL_ROLE_PER_UNIT)
                continue;
            slopes s;
            SL_TRY(measure_slopes(m, i, n->out[l], &s));
            if (!(s.pos > 0 && s.neg > 0))
                return sl_error(SL_EINVAL, "teleport: module %d (%s) maps x to %g x (x > 0) and "
                                           "%g x (x < 0); the action needs an invertible "
                                           "activation", i + 1, type_name(m, i), s.pos, s.neg);
            n->act[l].pos *= s.pos;
            n->act[l].neg *= s.neg;
        }
    }
    return SL_OK;
}

static double act(double z, slopes a) { return z > 0 ? a.pos * z : a.neg * z; }
static double act_inv(double y, slopes a) { return y > 0 ? y / a.pos : y / a.neg; }
static double act_deriv(double z, slopes a) { return z > 0 ? a.pos : a.neg; }

/* Per-layer augmented parameters P_m = [W_m | b_m] (out x in(+1)). */
typedef struct params {
    mat P[MAX_LAYERS];
} params;

static int64_t aug(const net *n, int m) { return n->in[m] + (n->bias[m] >= 0 ? 1 : 0); }

static void load_params(sl_model *work, const net *n, params *p, bool grads)
{
    for (int m = 0; m < n->nlayers; m++) {
        sl_tensor *(*get)(sl_model *, int) = grads ? sl_model_grad : sl_model_param;
        const double *w = get(work, n->weight[m])->data;
        const double *b = n->bias[m] >= 0 ? get(work, n->bias[m])->data : NULL;
        for (int64_t i = 0; i < n->out[m]; i++) {
            memcpy(at(&p->P[m], i, 0), w + i * n->in[m], (size_t)n->in[m] * sizeof(double));
            if (b)
                *at(&p->P[m], i, n->in[m]) = b[i];
        }
    }
}

static void store_params(sl_model *work, const net *n, const params *p)
{
    for (int m = 0; m < n->nlayers; m++) {
        double *w = sl_model_param(work, n->weight[m])->data;
        double *b = n->bias[m] >= 0 ? sl_model_param(work, n->bias[m])->data : NULL;
        for (int64_t i = 0; i < n->out[m]; i++) {
            memcpy(w + i * n->in[m], at(&p->P[m], i, 0), (size_t)n->in[m] * sizeof(double));
            if (b)
                b[i] = *at(&p->P[m], i, n->in[m]);
        }
    }
}

static int params_new(arena *a, const net *n, params *p)
{
    for (int m = 0; m < n->nlayers; m++)
        if (!(p->P[m] = mat_new(a, n->out[m], aug(n, m))).p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
    return SL_OK;
}

/* [h; 1] for layers with a bias, h otherwise, from the rows of x (batch x in)
 * or from activations A (k x batch). */
static mat augment(arena *a, const net *n, int m, const mat *h)
{
    mat H = mat_new(a, aug(n, m), h->c);
    if (!H.p)
        return H;
    for (int64_t i = 0; i < h->r; i++)
        memcpy(at(&H, i, 0), at(h, i, 0), (size_t)h->c * sizeof(double));
    if (n->bias[m] >= 0)
        for (int64_t j = 0; j < h->c; j++)
            *at(&H, h->r, j) = 1.0;
    return H;
}

/* Forward quantities of pair m at the current parameters. */
typedef struct layer_fwd {
    mat H, Z, A, S; /* augmented input, pre-activation, activation, σ'(Z) */
} layer_fwd;

static void apply_act(const mat *Z, mat *A, mat *S, slopes a)
{
    for (int64_t i = 0; i < Z->r; i++)
        for (int64_t j = 0; j < Z->c; j++) {
            double z = *at(Z, i, j);
            *at(A, i, j) = act(z, a);
            if (S)
                *at(S, i, j) = act_deriv(z, a);
        }
}

static int forward(arena *a, const net *n, const params *p, const mat *X, layer_fwd *f)
{
    mat h = *X;
    for (int m = 0; m + 1 < n->nlayers; m++) {
        f[m].H = augment(a, n, m, &h);
        if (!f[m].H.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        f[m].Z = mm_new(a, &p->P[m], false, &f[m].H, false);
        f[m].A = mat_new(a, f[m].Z.r, f[m].Z.c);
        f[m].S = mat_new(a, f[m].Z.r, f[m].Z.c);
        if (!f[m].Z.p || !f[m].A.p || !f[m].S.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        apply_act(&f[m].Z, &f[m].A, &f[m].S, n->act[m]);
        h = f[m].A;
    }
    return SL_OK;
}

/* Applies g_m = I + T_m (T NULL: all zero) to every pair in turn. */
static int apply_action(arena *a, const net *n, params *p, const mat *X, const mat *T,
                        bool form2022, double rcond)
{
    mat h = *X;
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        mat H = augment(a, n, m, &h);
        mat V = p->P[m];
        mat U = cols(&p->P[m + 1], k);
        mat g = mat_new(a, k, k);
        mat Z = mm_new(a, &V, false, &H, false);
        mat A = mat_new(a, k, H.c);
        if (!H.p || !g.p || !Z.p || !A.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++)
                *at(&g, i, j) = (i == j) + (T ? *at(&T[m], i, j) : 0.0);
        apply_act(&Z, &A, NULL, n->act[m]);
        if (form2022) {
            /* V' = σ⁻¹(g A) H⁺,  U' = U g⁻¹ */
            mat gA = mm_new(a, &g, false, &A, false), Hp, ginv;
            if (!gA.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            for (int64_t i = 0; i < gA.r; i++)
                for (int64_t j = 0; j < gA.c; j++)
                    *at(&gA, i, j) = act_inv(*at(&gA, i, j), n->act[m]);
            SL_TRY(pinv(a, &H, rcond, &Hp));
            SL_TRY(pinv(a, &g, 0.0, &ginv));
            mm(&V, &gA, false, &Hp, false, 1.0, 0.0);
            mat Uc = copy_new(a, &U);
            if (!Uc.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            mm(&U, &Uc, false, &ginv, false, 1.0, 0.0);
        } else {
            /* V' = g V,  U' = U A σ(g Z)⁺ */
            mat Vc = copy_new(a, &V), gZ = mm_new(a, &g, false, &Z, false), Ap;
            if (!Vc.p || !gZ.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            mm(&V, &g, false, &Vc, false, 1.0, 0.0);
            apply_act(&gZ, &gZ, NULL, n->act[m]);
            SL_TRY(pinv(a, &gZ, rcond, &Ap));
            mat UA = mm_new(a, &U, false, &A, false);
            if (!UA.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            mm(&U, &UA, false, &Ap, false, 1.0, 0.0);
        }
        /* the next pair sees the moved layer's activations */
        mat Zn = mm_new(a, &V, false, &H, false);
        if (!Zn.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        apply_act(&Zn, &Zn, NULL, n->act[m]);
        h = Zn;
    }
    return SL_OK;
}

/* ∂obj/∂T_m for every pair from D = ∂obj/∂P (augmented, per layer). */
static int grad_T(arena *a, const net *n, const params *p, const params *D, const layer_fwd *f,
                  bool form2022, double rcond, mat *dT)
{
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        if (!(dT[m] = mat_new(a, k, k)).p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
    }
    for (int m = 0; m + 1 < n->nlayers; m++) {
        int64_t k = n->out[m];
        const layer_fwd *L = &f[m];
        mat U = cols(&p->P[m + 1], k), GU = cols(&D->P[m + 1], k);
        const mat *V = &p->P[m], *GV = &D->P[m];
        if (form2022) {
            /* U' = U g⁻¹: dU = −U T, but only for the last pair: any other
             * U is the next pair's V, which that pair's action rebuilds as
             * σ⁻¹(g' σ(U g⁻¹ g A)) [g A; 1]⁺, free of U g⁻¹ (the g A
             * dependence is the cross term below). */
            if (m + 2 == n->nlayers)
                mm(&dT[m], &U, true, &GU, false, -1.0, 1.0);
            /* V' = σ⁻¹(g A) H⁺: dV = ((T A) ⊘ σ'(Z)) H⁺ */
            mat Hp;
            SL_TRY(pinv(a, &L->H, rcond, &Hp));
            mat GH = mm_new(a, GV, false, &Hp, true); /* k x n */
            if (!GH.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            for (int64_t i = 0; i < GH.r; i++)
                for (int64_t j = 0; j < GH.c; j++)
                    *at(&GH, i, j) /= *at(&L->S, i, j);
            mm(&dT[m], &GH, false, &L->A, true, 1.0, 1.0);
            /* and V' = Z [g_{m-1} A_{m-1}; 1]⁺ moves with the previous pair's g */
            if (m > 0) {
                mat F = mm_new(a, &L->Z, true, GV, false); /* n x aug */
                mat R = F.p ? pinv_vjp(a, &L->H, &Hp, &F) : F;
                if (!R.p)
                    return sl_error(SL_ENOMEM, "teleport: out of memory");
                mat Rk = {R.p, n->out[m - 1], R.c, R.ld};
                mm(&dT[m - 1], &Rk, false, &f[m - 1].A, true, 1.0, 1.0);
            }
        } else {
            /* V' = g V: dV = T V */
            mm(&dT[m], GV, false, V, true, 1.0, 1.0);
            /* U' = U A σ(g Z)⁺: through B = A, E = σ'(Z) ⊙ (T Z) */
            mat Ap;
            SL_TRY(pinv(a, &L->A, rcond, &Ap));
            mat UA = mm_new(a, &U, false, &L->A, false);
            mat F = UA.p ? mm_new(a, &UA, true, &GU, false) : UA; /* n x k */
            mat R = F.p ? pinv_vjp(a, &L->A, &Ap, &F) : F;       /* k x n */
            if (!R.p)
                return sl_error(SL_ENOMEM, "teleport: out of memory");
            for (int64_t i = 0; i < R.r; i++)
                for (int64_t j = 0; j < R.c; j++)
                    *at(&R, i, j) *= *at(&L->S, i, j);
            mm(&dT[m], &R, false, &L->Z, true, 1.0, 1.0);
        }
    }
    return SL_OK;
}

/* ---- the hook -------------------------------------------------------------- */

typedef struct tele_state {
    const sl_options *opt;
    sl_model *work;      /* f64 clone */
    net n;
    sl_tensor x, y;      /* teleport batch buffers (x f64, y the data's dtype) */
    sl_tensor theta, v, gp; /* flat f64 buffers: saved θ, ∇L, gradient at θ + εv */
    sl_tensor backup;    /* the model's parameters before a teleport (model dtype) */
    int64_t *perm;       /* row order for random teleport batches */
    int64_t nperm;
    int64_t epoch_seen, step_in_epoch;
    int64_t teleports, accepted, rejected;
    uint64_t seed;
} tele_state;

static int tele_create(sl_hook *h, const sl_options *opt)
{
    tele_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    sl_hook_set_state(h, s);
    s->opt = opt;
    static const char *const nonneg_int[] = {"every", "count", "batch", "steps"};
    for (size_t i = 0; i < sizeof nonneg_int / sizeof *nonneg_int; i++)
        if (sl_options_int(opt, nonneg_int[i]) < 0)
            return sl_error(SL_EINVAL, "teleport: %s must be >= 0, got %lld", nonneg_int[i],
                            (long long)sl_options_int(opt, nonneg_int[i]));
    static const char *const nonneg_float[] = {"lr", "cap", "loss_tol", "rcond"};
    for (size_t i = 0; i < sizeof nonneg_float / sizeof *nonneg_float; i++) {
        double v = sl_options_float(opt, nonneg_float[i]);
        if (!(v >= 0) || !isfinite(v))
            return sl_error(SL_EINVAL, "teleport: %s must be finite and >= 0, got %g",
                            nonneg_float[i], v);
    }
    double eps = sl_options_float(opt, "hvp_eps");
    if (!(eps > 0) || !isfinite(eps))
        return sl_error(SL_EINVAL, "teleport: hvp_eps must be finite and > 0, got %g", eps);
    if (sl_options_int(opt, "every") == 0 && sl_options_int(opt, "epoch") < 0)
        return sl_error(SL_EINVAL, "teleport: set 'every' (steps) or 'epoch' to say when");
    return SL_OK;
}

static void tele_release(tele_state *s)
{
    sl_model_free(s->work);
    s->work = NULL;
    sl_tensor_release(&s->x);
    sl_tensor_release(&s->y);
    sl_tensor_release(&s->theta);
    sl_tensor_release(&s->v);
    sl_tensor_release(&s->gp);
    sl_tensor_release(&s->backup);
    free(s->perm);
    s->perm = NULL;
}

/* Shape of `t` with its leading extent replaced by b. */
static int alloc_rows(sl_tensor *out, sl_dtype dt, const sl_tensor *like, int64_t b)
{
    int64_t shape[SL_MAX_DIMS];
    for (int i = 0; i < like->ndim; i++)
        shape[i] = like->shape[i];
    shape[0] = b;
    return sl_tensor_alloc(out, dt, like->ndim, shape);
}

static int tele_begin(tele_state *s, sl_train_ctx *ctx)
{
    tele_release(s);
    sl_structure *st;
    SL_TRY(sl_model_structure(ctx->model, &st));
    int rc = describe_net(ctx->model, st, &s->n);
    sl_structure_free(st);
    SL_TRY(rc);
    int64_t seed = sl_options_int(s->opt, "seed");
    s->seed = seed >= 0 ? (uint64_t)seed : ctx->seed;
    s->epoch_seen = -1;
    s->teleports = s->accepted = s->rejected = 0;
    SL_TRY(sl_model_clone(ctx->model, SL_F64, &s->work));
    int64_t np = sl_model_numel(ctx->model);
    SL_TRY(sl_tensor_alloc(&s->theta, SL_F64, 1, &np));
    SL_TRY(sl_tensor_alloc(&s->v, SL_F64, 1, &np));
    SL_TRY(sl_tensor_alloc(&s->gp, SL_F64, 1, &np));
    SL_TRY(sl_tensor_alloc(&s->backup, sl_model_dtype(ctx->model), 1, &np));
    int64_t b = sl_options_int(s->opt, "batch"), N = sl_dataset_size(ctx->data);
    if (b > 0) {
        b = b < N ? b : N;
        SL_TRY(alloc_rows(&s->x, SL_F64, &ctx->data->x, b));
        SL_TRY(alloc_rows(&s->y, ctx->data->y.dtype, &ctx->data->y, b));
        if (!(s->perm = malloc((size_t)N * sizeof *s->perm)))
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        s->nperm = N;
    }
    return SL_OK;
}

/* Copies row `from` of src into row `to` of dst (converting the dtype). */
static int copy_row(sl_tensor *dst, int64_t to, const sl_tensor *src, int64_t from)
{
    sl_tensor a, b;
    SL_TRY(sl_tensor_narrow(dst, 0, to, 1, &a));
    int rc = sl_tensor_narrow(src, 0, from, 1, &b);
    if (rc >= 0)
        rc = sl_tensor_copy(&a, &b);
    sl_tensor_release(&a);
    sl_tensor_release(&b);
    return rc;
}

/* Fills the teleport batch: random rows of the training set, or the current
 * batch converted to f64. */
static int fill_batch(tele_state *s, sl_train_ctx *ctx, const sl_tensor **x, const sl_tensor **y)
{
    if (!s->perm) {
        if (!ctx->x)
            return sl_error(SL_ESTATE, "teleport: no current batch");
        sl_tensor_release(&s->x);
        SL_TRY(alloc_rows(&s->x, SL_F64, ctx->x, ctx->x->shape[0]));
        SL_TRY(sl_tensor_copy(&s->x, ctx->x));
        *x = &s->x;
        *y = ctx->y;
        return SL_OK;
    }
    sl_rng r;
    sl_rng_derive(&r, s->seed, 0x7e1e0000u + (uint64_t)s->teleports);
    int64_t b = s->x.shape[0];
    for (int64_t i = 0; i < s->nperm; i++)
        s->perm[i] = i;
    for (int64_t i = 0; i < b; i++) { /* partial Fisher-Yates: b distinct rows */
        int64_t j = i + (int64_t)sl_rng_below(&r, (uint64_t)(s->nperm - i));
        int64_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
        SL_TRY(copy_row(&s->x, i, &ctx->data->x, s->perm[i]));
        SL_TRY(copy_row(&s->y, i, &ctx->data->y, s->perm[i]));
    }
    *x = &s->x;
    *y = &s->y;
    return SL_OK;
}

/* X (features x batch) from a batch-first f64 tensor. */
static mat batch_columns(arena *a, const sl_tensor *x)
{
    int64_t b = x->shape[0], d = sl_tensor_numel(x) / (b > 0 ? b : 1);
    mat X = mat_new(a, d, b);
    if (X.p)
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < d; j++)
                *at(&X, j, i) = ((const double *)x->data)[i * d + j];
    return X;
}

/* ∂obj/∂θ = 2 H ∇L by central differences along v = ∇L (already in s->v),
 * left in work's gradient arena. */
static int hvp(tele_state *s, const sl_loss_type *loss, const sl_tensor *x, const sl_tensor *y)
{
    sl_tensor *p = sl_model_flat_params(s->work), *g = sl_model_flat_grads(s->work);
    double pn, vn, value;
    SL_TRY(sl_tensor_copy(&s->theta, p));
    SL_TRY(sl_norm2(p, &pn));
    SL_TRY(sl_norm2(&s->v, &vn));
    if (vn == 0) {
        sl_model_zero_grad(s->work);
        return SL_OK;
    }
    double eps = sl_options_float(s->opt, "hvp_eps") * (pn > 1 ? pn : 1) / vn;
    SL_TRY(sl_axpy(eps, &s->v, p));
    SL_TRY(sl_model_loss(s->work, loss, x, y, true, &value));
    SL_TRY(sl_tensor_copy(&s->gp, g));
    SL_TRY(sl_tensor_copy(p, &s->theta));
    SL_TRY(sl_axpy(-eps, &s->v, p));
    SL_TRY(sl_model_loss(s->work, loss, x, y, true, &value));
    SL_TRY(sl_tensor_copy(p, &s->theta));
    /* g <- (g+ − g−) / ε  =  2 (g+ − g−) / (2ε) */
    SL_TRY(sl_scale(-1.0, g));
    SL_TRY(sl_axpy(1.0, &s->gp, g));
    return sl_scale(1.0 / eps, g);
}

/* Loss and ‖∇L‖² of work on the batch; ∇L kept in s->v. */
static int loss_and_gradsq(tele_state *s, const sl_loss_type *loss, const sl_tensor *x,
                           const sl_tensor *y, double *value, double *gradsq)
{
    SL_TRY(sl_model_loss(s->work, loss, x, y, true, value));
    SL_TRY(sl_tensor_copy(&s->v, sl_model_flat_grads(s->work)));
    double nrm;
    SL_TRY(sl_norm2(&s->v, &nrm));
    *gradsq = nrm * nrm;
    return SL_OK;
}

/* The ascent loop on work; returns the batch loss and ‖∇L‖² before/after. */
static int ascend(tele_state *s, arena *a, const sl_loss_type *loss, const sl_tensor *x,
                  const sl_tensor *y, double out[4])
{
    const net *n = &s->n;
    bool form2022 = strcmp(sl_options_string(s->opt, "form"), "2022") == 0;
    double rcond = sl_options_float(s->opt, "rcond"), lr = sl_options_float(s->opt, "lr");
    double cap = sl_options_float(s->opt, "cap");
    int64_t steps = sl_options_int(s->opt, "steps");
    params p, D;
    SL_TRY(params_new(a, n, &p));
    SL_TRY(params_new(a, n, &D));
    mat X = batch_columns(a, x);
    if (!X.p)
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    if (X.r != n->in[0])
        return sl_error(SL_ESHAPE, "teleport: batch rows have %lld features, the first linear "
                                   "layer takes %lld", (long long)X.r, (long long)n->in[0]);
    double value, gradsq;
    SL_TRY(loss_and_gradsq(s, loss, x, y, &out[0], &out[1]));
    load_params(s->work, n, &p, false);
    /* Neither action is the identity at g = I: 2022 projects V onto the
     * batch's span (V h̃ h̃⁺), 2023 projects U onto the span of the hidden
     * activations (U A A⁺).  Both keep the batch loss but can lower ‖∇L‖²
     * (the reference code does the same).  Start the ascent from there, so
     * that T = 0 is the identity and the tangents below are taken at the
     * point they describe. */
    SL_TRY(apply_action(a, n, &p, &X, NULL, form2022, rcond));
    store_params(s->work, n, &p);
    for (int64_t it = 0; it < steps; it++) {
        SL_TRY(loss_and_gradsq(s, loss, x, y, &value, &gradsq));
        if (cap > 0 && gradsq > cap)
            break;
        SL_TRY(hvp(s, loss, x, y));
        load_params(s->work, n, &D, true);
        layer_fwd f[MAX_LAYERS];
        mat dT[MAX_LAYERS];
        SL_TRY(forward(a, n, &p, &X, f));
        SL_TRY(grad_T(a, n, &p, &D, f, form2022, rcond, dT));
        for (int m = 0; m + 1 < n->nlayers; m++)
            for (int64_t i = 0; i < dT[m].r * dT[m].c; i++)
                dT[m].p[i] *= lr;
        SL_TRY(apply_action(a, n, &p, &X, dT, form2022, rcond));
        store_params(s->work, n, &p);
    }
    return loss_and_gradsq(s, loss, x, y, &out[2], &out[3]);
}

static bool finite4(const double v[4])
{
    return isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]) && isfinite(v[3]);
}

static int teleport_now(tele_state *s, sl_train_ctx *ctx)
{
    const sl_tensor *x = NULL, *y = NULL;
    SL_TRY(fill_batch(s, ctx, &x, &y));
    SL_TRY(sl_model_copy_state(s->work, ctx->model));
    arena a = {0};
    double v[4] = {0};
    int rc = ascend(s, &a, ctx->loss, x, y, v);
    if (a.failed && rc >= 0)
        rc = sl_error(SL_ENOMEM, "teleport: out of memory");
    arena_free(&a);
    if (rc == SL_ENUMERIC) /* a diverged ascent is a rejected teleport, not a failure */
        v[2] = v[3] = NAN;
    else
        SL_TRY(rc);
    s->teleports++;
    double tol = sl_options_float(s->opt, "loss_tol");
    bool ok = finite4(v) && v[2] - v[0] <= tol * fabs(v[0]);
    if (ok) {
        sl_tensor *p = sl_model_flat_params(ctx->model);
        SL_TRY(sl_tensor_copy(&s->backup, p));
        SL_TRY(sl_model_copy_state(ctx->model, s->work));
        if (sl_model_dtype(ctx->model) != SL_F64) {
            /* Judge the weights the model really got: a teleport toward an
             * ill-conditioned g can be exact in f64 and ruined by rounding. */
            SL_TRY(sl_model_copy_state(s->work, ctx->model));
            SL_TRY(loss_and_gradsq(s, ctx->loss, x, y, &v[2], &v[3]));
            ok = finite4(v) && v[2] - v[0] <= tol * fabs(v[0]);
            if (!ok)
                SL_TRY(sl_tensor_copy(p, &s->backup));
        }
    }
    if (ok) {
        if (sl_options_bool(s->opt, "reset_optim"))
            sl_optim_reset(ctx->optim);
        s->accepted++;
    } else {
        s->rejected++;
    }
    sl_record *r = ctx->metrics;
    SL_TRY(sl_record_set(r, "teleport_loss_before", v[0]));
    SL_TRY(sl_record_set(r, "teleport_loss_after", v[2]));
    SL_TRY(sl_record_set(r, "teleport_gradsq_before", v[1]));
    SL_TRY(sl_record_set(r, "teleport_gradsq_after", v[3]));
    SL_TRY(sl_record_set(r, "teleports", (double)s->accepted));
    return sl_record_set(r, "teleports_rejected", (double)s->rejected);
}

static int tele_step_begin(tele_state *s, sl_train_ctx *ctx)
{
    if (ctx->epoch != s->epoch_seen) {
        s->epoch_seen = ctx->epoch;
        s->step_in_epoch = 0;
    }
    int64_t in_epoch = s->step_in_epoch++;
    int64_t every = sl_options_int(s->opt, "every"), epoch = sl_options_int(s->opt, "epoch");
    bool due = (every > 0 && ctx->step % every == 0) ||
               (epoch >= 0 && ctx->epoch == epoch && in_epoch < sl_options_int(s->opt, "count"));
    return due ? teleport_now(s, ctx) : SL_OK;
}

static int tele_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    tele_state *s = sl_hook_state(h);
    switch (ev) {
    case SL_EV_TRAIN_BEGIN:
        return tele_begin(s, ctx);
    case SL_EV_STEP_BEGIN:
        return tele_step_begin(s, ctx);
    default:
        return SL_OK;
    }
}

static void tele_destroy(sl_hook *h)
{
    tele_state *s = sl_hook_state(h);
    tele_release(s);
    free(s);
}

static const sl_hook_type teleport_type = {
    .name = "teleport",
    .summary = "symmetry teleportation: climb |grad L|^2 along the GL(k) action of leaky_relu MLPs",
    .options = teleport_options,
    .create = tele_create,
    .on_event = tele_on_event,
    .destroy = tele_destroy,
};

static const sl_hook_type *const hooks[] = {&teleport_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "teleport",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "symmetry teleportation (Zhao et al. 2022, 2023)",
    .hooks = hooks,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
