/* plugins/asym/asym_linear.c — the W-asymmetric linear layer
 * y = x W_effᵀ + b of Lim, Putterman, Walters, Maron and Jegelka, "The
 * Empirical Impact of Neural Parameter Symmetries, or Lack Thereof"
 * (arXiv 2405.20231).
 *
 * In every output row i, exactly n_fix entries W_eff[i, c] at columns c
 * drawn uniformly at random without replacement (independently per row)
 * hold fixed values kappa·N(0,1) and are never trained.  With the fixed
 * entries pinned in place, permuting the hidden units no longer maps the
 * network onto an equivalent one: the layer has no permutation symmetry.
 *
 * Storage — why the trainable weight is not an (out, in) matrix.  symlab's
 * optimizers update the whole flat parameter vector: SGD with momentum,
 * Adam's moments and AdamW's decoupled decay all touch every element.  A
 * full (out, in) "weight" whose fixed entries are masked in backward would
 * still be decayed by AdamW and would have to be rewritten after each step
 * (what the reference code does).  So the layer stores only what is
 * trained:
 *   param  "weight" (out, in - n_fix): row i holds W_eff's free entries of
 *          row i, in increasing column order;
 *   param  "bias"   (out), unless bias=false;
 *   buffer "weight_fixed" (out, n_fix): row i holds the fixed values, in
 *          increasing column order of the fixed columns.
 * Forward assembles W_eff into scratch; backward gathers dW_eff's free
 * entries into the weight's gradient.  The fixed entries are therefore not
 * in the parameter vector at all: no update, no weight decay, no optimizer
 * state, no anchor or noise from a hook can reach them, by construction.
 * The column sets are not stored in the model: they are a function of the
 * options alone (mask_seed, in/out_features, n_fix), recomputed in create(),
 * so a checkpoint restores exactly when the layer is built with the same
 * options.  A PyTorch port assembles W_eff the same way (or keeps a full
 * weight and a mask, as the reference code does).
 *
 * The masks and the fixed values come from `mask_seed` alone, never from
 * the model's seed: two models built with the same mask_seed share them
 * whatever their initialisation — the setting of the paper's linear mode
 * connectivity experiments.  Give each layer of a network its own
 * mask_seed.
 *
 * Role: opaque (see asym.h for why the walker must not treat it as a weight
 * layer).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asym.h"
#include "mask.h"

enum { P_WEIGHT = 0, P_BIAS = 1 };
enum { B_FIXED = 0 };
enum { SCRATCH_W = 0, SCRATCH_GW = 1 };

typedef struct alin_state {
    asym_mask mask; /* rows: out_features, columns: in_features */
    bool bias;
    uint64_t mask_seed;
    double kappa;
} alin_state;

static const sl_option_spec alin_options[] = {
    {"in_features", SL_OPT_INT, NULL, "size of each input sample", NULL},
    {"out_features", SL_OPT_INT, NULL, "size of each output sample", NULL},
    {"n_fix", SL_OPT_INT, NULL, "fixed (untrained) entries per output row, 0 <= n_fix < in",
     NULL},
    {"kappa", SL_OPT_FLOAT, "1", "fixed entries are kappa * N(0, 1)", NULL},
    {"mask_seed", SL_OPT_INT, NULL,
     "seed of the fixed columns and values (not the model seed): equal seeds, equal masks",
     NULL},
    {"bias", SL_OPT_BOOL, "true", "learn an additive bias", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int alin_create(sl_module *m, const sl_options *opt)
{
    int64_t in = sl_options_int(opt, "in_features"), out = sl_options_int(opt, "out_features");
    double kappa = sl_options_float(opt, "kappa");
    if (in <= 0 || out <= 0)
        return sl_error(SL_EINVAL,
                        "asym_linear: in_features and out_features must be > 0, got %lld, %lld",
                        (long long)in, (long long)out);
    if (!isfinite(kappa))
        return sl_error(SL_EINVAL, "asym_linear: kappa must be finite, got %g", kappa);
    alin_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "asym_linear: out of memory");
    *s = (alin_state){.bias = sl_options_bool(opt, "bias"),
                      .mask_seed = (uint64_t)sl_options_int(opt, "mask_seed"), .kappa = kappa};
    int rc = asym_mask_init(&s->mask, "asym_linear", out, in, sl_options_int(opt, "n_fix"),
                            s->mask_seed);
    if (rc >= 0)
        rc = asym_mask_declare(m, &s->mask, s->bias);
    if (rc < 0) {
        asym_mask_free(&s->mask);
        free(s);
        return rc;
    }
    sl_module_set_state(m, s);
    return SL_OK;
}

/* Free weight and bias as PyTorch's nn.Linear initialises them; the fixed
 * values from mask_seed (mask.h). */
static int alin_reset(sl_module *m, sl_rng *rng)
{
    const alin_state *s = sl_module_state(m);
    return asym_mask_reset(m, &s->mask, s->bias, rng, s->mask_seed, s->kappa);
}

static int alin_check_input(const alin_state *s, int ndim, const int64_t *in)
{
    if (ndim == 2 && in[1] == s->mask.cols)
        return SL_OK;
    char got[128];
    return sl_error(SL_ESHAPE, "asym_linear: expected input (B, %lld), got %s",
                    (long long)s->mask.cols, sl_shape_str(ndim, in, got, sizeof got));
}

static int alin_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                             int64_t *out)
{
    const alin_state *s = sl_module_state(m);
    SL_TRY(alin_check_input(s, ndim, in));
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = s->mask.rows;
    return SL_OK;
}

/* add_bias: y (B, out) += b on every row; bias_grad: gb += column sums. */
#define DEFINE_ALIN(T, SUF)                                                 \
    static void add_bias_##SUF(T *y, const T *b, int64_t rows, int64_t n)   \
    {                                                                       \
        for (int64_t r = 0; r < rows; r++)                                  \
            for (int64_t j = 0; j < n; j++)                                 \
                y[r * n + j] += b[j];                                       \
    }                                                                       \
    static void bias_grad_##SUF(T *gb, const T *g, int64_t rows, int64_t n) \
    {                                                                       \
        for (int64_t r = 0; r < rows; r++)                                  \
            for (int64_t j = 0; j < n; j++)                                 \
                gb[j] += g[r * n + j];                                      \
    }
DEFINE_ALIN(float, f32)
DEFINE_ALIN(double, f64)

static const sl_tensor *fixed_of(sl_module *m, const alin_state *s)
{
    return s->mask.nfix ? sl_module_buffer(m, B_FIXED) : NULL;
}

static int alin_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const alin_state *s = sl_module_state(m);
    SL_TRY(alin_check_input(s, in->ndim, in->shape));
    sl_tensor w; /* W_eff, kept in its slot for backward (same parameters) */
    SL_TRY(asym_mask_effective(m, &s->mask, SCRATCH_W, sl_module_param(m, P_WEIGHT),
                               fixed_of(m, s), &w));
    SL_TRY(sl_gemm(false, true, 1.0, in, &w, 0.0, out));
    if (!s->bias)
        return SL_OK;
    const void *b = sl_module_param(m, P_BIAS)->data;
    if (out->dtype == SL_F32)
        add_bias_f32(out->data, b, out->shape[0], s->mask.rows);
    else
        add_bias_f64(out->data, b, out->shape[0], s->mask.rows);
    return SL_OK;
}

/* An (out, in) tensor over scratch `slot` of m. */
static int slot_matrix(sl_module *m, const alin_state *s, int slot, sl_tensor *t)
{
    sl_dtype dt = sl_module_dtype(m);
    void *p;
    SL_TRY(sl_module_scratch(m, slot, (size_t)(s->mask.rows * s->mask.cols) * sl_dtype_size(dt),
                             &p));
    return sl_tensor_wrap(t, p, dt, 2, (int64_t[]){s->mask.rows, s->mask.cols});
}

static int alin_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                         const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const alin_state *s = sl_module_state(m);
    /* gW_eff (out, in) = gout^T @ in, then its free entries into the grad */
    sl_tensor gw;
    SL_TRY(slot_matrix(m, s, SCRATCH_GW, &gw));
    SL_TRY(sl_gemm(true, false, 1.0, grad_out, in, 0.0, &gw));
    asym_mask_gather(&s->mask, &gw, sl_module_grad(m, P_WEIGHT));
    if (s->bias) {
        void *gb = sl_module_grad(m, P_BIAS)->data;
        if (grad_out->dtype == SL_F32)
            bias_grad_f32(gb, grad_out->data, grad_out->shape[0], s->mask.rows);
        else
            bias_grad_f64(gb, grad_out->data, grad_out->shape[0], s->mask.rows);
    }
    if (!grad_in)
        return SL_OK;
    /* gin (B, in) = gout @ W_eff, W_eff as forward left it in scratch */
    sl_tensor w;
    SL_TRY(slot_matrix(m, s, SCRATCH_W, &w));
    return sl_gemm(false, false, 1.0, grad_out, &w, 0.0, grad_in);
}

static void alin_destroy(sl_module *m)
{
    alin_state *s = sl_module_state(m);
    if (!s)
        return;
    asym_mask_free(&s->mask);
    free(s);
}

const sl_module_type asym_linear_type = {
    .name = "asym_linear",
    .summary = "W-asymmetric linear layer: n_fix untrained kappa*N(0,1) entries per row "
               "(arXiv 2405.20231)",
    .options = alin_options,
    .create = alin_create,
    .reset_parameters = alin_reset,
    .output_shape = alin_output_shape,
    .forward = alin_forward,
    .backward = alin_backward,
    .destroy = alin_destroy,
    .role = {.kind = SL_ROLE_OPAQUE},
};
