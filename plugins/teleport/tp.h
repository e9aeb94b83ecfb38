/* plugins/teleport/tp.h — private interfaces of the teleport hook.
 *
 * Symmetry teleportation (Zhao, Dehmamy, Walters, Yu, "Symmetry
 * Teleportation for Accelerated Optimization", arXiv:2205.10637; Zhao,
 * Gower, Walters, Yu, "Improving Convergence and Generalization Using
 * Parameter Symmetries", arXiv:2305.13404; docs/background/teleportation.md).
 *
 * Between two consecutive weight layers V = W_m (with its bias as an extra
 * column, acting on h̃ = [h; 1]) and U = W_{m+1} separated by an invertible
 * positively homogeneous activation σ (leaky_relu), the data-dependent GL(k)
 * action keeps the network's output on the teleport batch (columns of h):
 *
 *   form 2022:  U -> U g⁻¹,   V -> σ⁻¹(g σ(V h̃)) h̃⁺
 *   form 2023:  V -> g V,     U -> U σ(V h̃) σ(g V h̃)⁺
 *
 * exactly when the pseudo-inverses act as inverses on the batch (batch size
 * <= the width involved).  Both are applied pair after pair through the
 * depth, recomputing the activations from the moved layers; g⁻¹ is the exact
 * inverse.
 *
 * form "reference_2022" reproduces the 2022 paper's code instead, which is
 * not loss-preserving: U -> U(I − T) in place of U g⁻¹ (right to first
 * order only), and every pair's V rebuilt from the activations of the
 * network as it was before the step, although the pairs before it have
 * already moved.  The loss then changes at second order in T, much more
 * with three or more weight layers than with two (action.c).
 *
 * Files, each doing one thing:
 *   mat.c     small dense f64 matrices, an arena, pinv and its derivative;
 *   net.c     the network as the teleport sees it (from the structure
 *             walker), augmented parameters, its own MLP forward;
 *   action.c  the group action and the transposed tangent of it;
 *   batch.c   the teleport batch;
 *   ascent.c  the ascent on ‖∇L‖² and its guards;
 *   hook.c    options, scheduling, accept/reject, the plugin entry.
 *
 * Matrices are column-convention: h is (features x batch).  Nothing here is
 * exported from the plugin (-fvisibility=hidden and the export regex).
 */
#ifndef TELEPORT_TP_H
#define TELEPORT_TP_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

/* ---- mat.c: small dense matrices (f64, row-major, leading dimension ld) --- */

typedef struct tp_mat {
    double *p;
    int64_t r, c, ld;
} tp_mat;

/* Teleports are rare events, not steady-state steps: their workspaces come
 * from this arena and are freed when the teleport ends.  After a failed
 * allocation every further one returns NULL and `failed` stays set. */
typedef struct tp_arena {
    void **blocks;
    int n, cap;
    bool failed;
} tp_arena;

void tp_arena_free(tp_arena *a);
/* r x c zeros owned by a; .p NULL when out of memory. */
tp_mat tp_mat_new(tp_arena *a, int64_t r, int64_t c);

static inline double *tp_at(const tp_mat *m, int64_t i, int64_t j) { return m->p + i * m->ld + j; }

/* The first `c` columns of m (a view). */
static inline tp_mat tp_cols(const tp_mat *m, int64_t c)
{
    tp_mat v = {m->p, m->r, c, m->ld};
    return v;
}

/* C = alpha op(A) op(B) + beta C. */
void tp_mm(tp_mat *C, const tp_mat *A, bool ta, const tp_mat *B, bool tb, double alpha,
           double beta);
/* op(A) op(B), new (.p NULL when out of memory). */
tp_mat tp_mm_new(tp_arena *a, const tp_mat *A, bool ta, const tp_mat *B, bool tb);
tp_mat tp_copy_new(tp_arena *a, const tp_mat *m);
/* *out = B⁺ (c x r); singular values below rcond * s_max count as zero.
 * SL_ENUMERIC if B is not finite, SL_ENOMEM. */
int tp_pinv(tp_arena *a, const tp_mat *B, double rcond, tp_mat *out);
/* For M = C B⁺ and F = Cᵀ G: ∂⟨G, M⟩/∂B (r x c), B⁺ given as Bp. */
tp_mat tp_pinv_vjp(tp_arena *a, const tp_mat *B, const tp_mat *Bp, const tp_mat *F);

/* ---- net.c: the network ---------------------------------------------------- */

#define TP_MAX_LAYERS 32

/* A positively homogeneous scalar map is c₊x for x > 0 and c₋x for x < 0;
 * invertible (with the same signs) when both are > 0. */
typedef struct tp_slopes {
    double pos, neg;
} tp_slopes;

typedef struct tp_net {
    int nlayers;
    int weight[TP_MAX_LAYERS];  /* model parameter index of each layer's weight */
    int bias[TP_MAX_LAYERS];    /* ... and of its bias, or -1 */
    int64_t in[TP_MAX_LAYERS], out[TP_MAX_LAYERS];
    tp_slopes act[TP_MAX_LAYERS]; /* the activation after layer m (m < nlayers-1) */
} tp_net;

/* Per-layer augmented parameters P_m = [W_m | b_m] (out x in(+1)). */
typedef struct tp_params {
    tp_mat P[TP_MAX_LAYERS];
} tp_params;

/* Forward quantities of pair m at the current parameters. */
typedef struct tp_layer_fwd {
    tp_mat H, Z, A, S; /* augmented input, pre-activation, activation, σ'(Z) */
} tp_layer_fwd;

/* Fills n from the model's structure: a chain of dense weight layers whose
 * hidden layers pass through invertible positively homogeneous maps, with
 * only pass-through modules before the first and after the last.
 * SL_EINVAL naming the module that does not fit. */
int tp_describe_net(sl_model *m, const sl_structure *st, tp_net *n);

double tp_act_inv(double y, tp_slopes a);
/* A = σ(Z) elementwise (A may be Z), and S = σ'(Z) unless S is NULL. */
void tp_apply_act(const tp_mat *Z, tp_mat *A, tp_mat *S, tp_slopes a);

int64_t tp_aug(const tp_net *n, int m); /* columns of P_m */
/* Allocates p's matrices; SL_ENOMEM. */
int tp_params_new(tp_arena *a, const tp_net *n, tp_params *p);
/* p <- the model's parameters (or, with grads, its gradients). */
void tp_load_params(sl_model *work, const tp_net *n, tp_params *p, bool grads);
void tp_store_params(sl_model *work, const tp_net *n, const tp_params *p);
/* [h; 1] for layer m if it has a bias, h otherwise; .p NULL when out of memory. */
tp_mat tp_augment(tp_arena *a, const tp_net *n, int m, const tp_mat *h);
/* f[m] for every pair m < nlayers-1 on the batch X (features x batch). */
int tp_forward(tp_arena *a, const tp_net *n, const tp_params *p, const tp_mat *X,
               tp_layer_fwd *f);

/* ---- action.c: the group action -------------------------------------------- */

typedef enum tp_form {
    TP_FORM_2022,           /* U g⁻¹, σ⁻¹(g σ(V h̃)) h̃⁺ (exact inverse) */
    TP_FORM_2023,           /* g V, U σ(V h̃) σ(g V h̃)⁺ */
    TP_FORM_REFERENCE_2022  /* the 2022 paper's code: U(I − T), stale activations */
} tp_form;

/* Applies g_m = I + T_m (T NULL: all zero) to every pair of p in turn, on
 * the batch X. */
int tp_apply_action(tp_arena *a, const tp_net *n, tp_params *p, const tp_mat *X,
                    const tp_mat *T, tp_form form, double rcond);
/* dT[m] = ∂obj/∂T_m at T = 0 for every pair, from D = ∂obj/∂P (augmented,
 * per layer) and the forward f at p. */
int tp_grad_T(tp_arena *a, const tp_net *n, const tp_params *p, const tp_params *D,
              const tp_layer_fwd *f, tp_form form, double rcond, tp_mat *dT);

/* ---- the hook's state (hook.c), shared by batch.c and ascent.c -------------- */

typedef struct tp_state {
    const sl_options *opt;
    sl_model *work;         /* f64 clone */
    tp_net n;
    sl_tensor x, y;         /* teleport batch buffers (x f64, y the data's dtype) */
    sl_tensor theta, v, gp; /* flat f64 buffers: saved θ, ∇L, gradient at θ + εv */
    sl_tensor backup;       /* the model's parameters before a teleport (model dtype) */
    int64_t *perm;          /* row order for random teleport batches */
    int64_t nperm;
    int64_t epoch_seen, step_in_epoch;
    int64_t teleports, accepted, rejected;
    uint64_t seed;
} tp_state;

/* ---- batch.c: the teleport batch -------------------------------------------- */

/* Sets up s->x, s->y and s->perm for `batch` random rows (0: none). */
int tp_batch_begin(tp_state *s, sl_train_ctx *ctx, int64_t batch);
/* The teleport batch: random rows of the training set, or the current batch
 * converted to f64. */
int tp_fill_batch(tp_state *s, sl_train_ctx *ctx, const sl_tensor **x, const sl_tensor **y);
/* X (features x batch) from a batch-first f64 tensor; .p NULL when out of memory. */
tp_mat tp_batch_columns(tp_arena *a, const sl_tensor *x);

/* ---- ascent.c: the ascent on ‖∇L‖² ------------------------------------------- */

/* The batch loss and ‖∇L‖² at one point. */
typedef struct tp_point {
    double loss, gradsq;
} tp_point;

/* Loss and ‖∇L‖² of s->work on the batch; ∇L kept in s->v. */
int tp_measure(tp_state *s, const sl_loss_type *loss, const sl_tensor *x, const sl_tensor *y,
               tp_point *out);
/* The ascent on s->work: before is the point it starts from, after the
 * point it ends at, *taken the number of ascent steps kept.  SL_ENUMERIC
 * when the weights became non-finite. */
int tp_ascend(tp_state *s, tp_arena *a, const sl_loss_type *loss, const sl_tensor *x,
              const sl_tensor *y, tp_point *before, tp_point *after, int64_t *taken);
/* The Rayleigh quotient vᵀHv (H the Hessian of the batch loss at s->work)
 * after `iters` steps of power iteration from v = ∇L/‖∇L‖ on the
 * finite-difference Hessian-vector product: the eigenvalue of largest
 * magnitude, when it converges.  Leaves work's gradients and s->v
 * overwritten, its parameters as they were. */
int tp_sharpness(tp_state *s, const sl_loss_type *loss, const sl_tensor *x, const sl_tensor *y,
                 int64_t iters, double *out);

#endif
