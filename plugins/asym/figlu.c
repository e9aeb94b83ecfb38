/* plugins/asym/figlu.c — FiGLU(x) = sigmoid(F x) ⊙ x, the σ-asymmetric
 * nonlinearity of Lim, Putterman, Walters, Maron and Jegelka, "The
 * Empirical Impact of Neural Parameter Symmetries, or Lack Thereof"
 * (arXiv 2405.20231): a gated linear unit whose gate mixes the units
 * through a fixed random matrix F (k × k, entries std·N(0,1), std = 1 in
 * the paper's MLPs), so no permutation of the units commutes with it
 * unless it also permutes F — which is fixed.
 *
 * F is the buffer "mix" (k, k), drawn from `mask_seed` alone (not the model
 * seed), so two models built with the same mask_seed share it.  No
 * parameters.  Input (B, k).
 *
 * Gradient: with z = F x, s = sigmoid(z), y = s ⊙ x,
 *   dL/dx = g ⊙ s + Fᵀ (g ⊙ x ⊙ s ⊙ (1 - s)).
 *
 * Role: opaque.  It is not a per-unit map (unit j's output depends on every
 * unit through F), not a weight layer (F is not trained and its output
 * units are its input units), and the walker has no kind for "mixes its
 * units through a fixed matrix".  Opaque is the honest declaration: it
 * ends the hidden layer of the weight layer before it, so no symmetry
 * technique assumes a permutation symmetry that FiGLU broke.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "asym.h"

enum { B_MIX = 0 };
enum { SCRATCH_S = 0, SCRATCH_U = 1 };

typedef struct figlu_state {
    int64_t k;
    uint64_t mask_seed;
    double std;
} figlu_state;

static const sl_option_spec figlu_options[] = {
    {"features", SL_OPT_INT, NULL, "units k (input (B, k))", NULL},
    {"mask_seed", SL_OPT_INT, NULL, "seed of the fixed mixing matrix F (not the model seed)",
     NULL},
    {"std", SL_OPT_FLOAT, "1", "F's entries are std * N(0, 1)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int figlu_create(sl_module *m, const sl_options *opt)
{
    int64_t k = sl_options_int(opt, "features");
    double std = sl_options_float(opt, "std");
    if (k <= 0)
        return sl_error(SL_EINVAL, "figlu: features must be > 0, got %lld", (long long)k);
    if (!isfinite(std))
        return sl_error(SL_EINVAL, "figlu: std must be finite, got %g", std);
    SL_TRY(sl_module_add_buffer(m, "mix", 2, (int64_t[]){k, k}));
    figlu_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "figlu: out of memory");
    *s = (figlu_state){k, (uint64_t)sl_options_int(opt, "mask_seed"), std};
    sl_module_set_state(m, s);
    return SL_OK;
}

static int figlu_reset(sl_module *m, sl_rng *rng)
{
    (void)rng; /* F comes from mask_seed, never from the model's seed */
    const figlu_state *s = sl_module_state(m);
    sl_rng fr;
    sl_rng_derive(&fr, s->mask_seed, ASYM_STREAM_MIX);
    return sl_tensor_normal(sl_module_buffer(m, B_MIX), &fr, 0.0, s->std);
}

static int figlu_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                              int64_t *out)
{
    const figlu_state *s = sl_module_state(m);
    if (ndim != 2 || in[1] != s->k) {
        char got[128];
        return sl_error(SL_ESHAPE, "figlu: expected input (B, %lld), got %s", (long long)s->k,
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = s->k;
    return SL_OK;
}

/* gate: s = sigmoid(s) in place, y = s ⊙ x.
 * grad: u = g ⊙ x ⊙ s ⊙ (1 - s); after gx = u F, gx += g ⊙ s. */
#define DEFINE_FIGLU(T, SUF)                                                         \
    static void gate_##SUF(T *s, const T *x, T *y, int64_t n)                       \
    {                                                                                \
        for (int64_t i = 0; i < n; i++) {                                            \
            s[i] = (T)(1.0 / (1.0 + exp(-(double)s[i])));                            \
            y[i] = s[i] * x[i];                                                      \
        }                                                                            \
    }                                                                                \
    static void gate_grad_##SUF(const T *g, const T *x, const T *s, T *u, int64_t n) \
    {                                                                                \
        for (int64_t i = 0; i < n; i++)                                              \
            u[i] = g[i] * x[i] * s[i] * (1 - s[i]);                                  \
    }                                                                                \
    static void add_direct_##SUF(const T *g, const T *s, T *gx, int64_t n)           \
    {                                                                                \
        for (int64_t i = 0; i < n; i++)                                              \
            gx[i] += g[i] * s[i];                                                    \
    }
DEFINE_FIGLU(float, f32)
DEFINE_FIGLU(double, f64)

/* A (B, k) workspace in scratch slot `slot`, as a tensor. */
static int workspace(sl_module *m, int slot, int64_t batch, sl_tensor *t)
{
    const figlu_state *s = sl_module_state(m);
    sl_dtype dt = sl_module_dtype(m);
    void *p;
    SL_TRY(sl_module_scratch(m, slot, (size_t)(batch * s->k) * sl_dtype_size(dt), &p));
    return sl_tensor_wrap(t, p, dt, 2, (int64_t[]){batch, s->k});
}

static int figlu_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    sl_tensor s;
    SL_TRY(workspace(m, SCRATCH_S, in->shape[0], &s));
    /* z (B, k) = x (B, k) @ F^T: z_i = sum_j F_ij x_j */
    SL_TRY(sl_gemm(false, true, 1.0, in, sl_module_buffer(m, B_MIX), 0.0, &s));
    int64_t n = sl_tensor_numel(in);
    if (in->dtype == SL_F32)
        gate_f32(s.data, in->data, out->data, n);
    else
        gate_f64(s.data, in->data, out->data, n);
    return SL_OK; /* the gate s stays in scratch for backward */
}

static int figlu_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                          const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in)
        return SL_OK; /* no parameters */
    sl_tensor s, u;
    SL_TRY(workspace(m, SCRATCH_S, in->shape[0], &s));
    SL_TRY(workspace(m, SCRATCH_U, in->shape[0], &u));
    int64_t n = sl_tensor_numel(in);
    bool f32 = in->dtype == SL_F32;
    if (f32)
        gate_grad_f32(grad_out->data, in->data, s.data, u.data, n);
    else
        gate_grad_f64(grad_out->data, in->data, s.data, u.data, n);
    /* gx (B, k) = u (B, k) @ F: gx_j = sum_i u_i F_ij */
    SL_TRY(sl_gemm(false, false, 1.0, &u, sl_module_buffer(m, B_MIX), 0.0, grad_in));
    if (f32)
        add_direct_f32(grad_out->data, s.data, grad_in->data, n);
    else
        add_direct_f64(grad_out->data, s.data, grad_in->data, n);
    return SL_OK;
}

static void figlu_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type figlu_type = {
    .name = "figlu",
    .summary = "sigmoid(F x) * x with a fixed random F from mask_seed (sigma-asymmetric, "
               "arXiv 2405.20231)",
    .options = figlu_options,
    .create = figlu_create,
    .reset_parameters = figlu_reset,
    .output_shape = figlu_output_shape,
    .forward = figlu_forward,
    .backward = figlu_backward,
    .destroy = figlu_destroy,
    .role = {.kind = SL_ROLE_OPAQUE},
};
