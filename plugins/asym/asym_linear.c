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

enum { P_WEIGHT = 0, P_BIAS = 1 };
enum { B_FIXED = 0 };
enum { SCRATCH_W = 0, SCRATCH_GW = 1 };

typedef struct alin_state {
    int64_t in, out, nfix, nfree;
    bool bias;
    uint64_t mask_seed;
    double kappa;
    int64_t *fix_cols;  /* (out, nfix): row i's fixed columns, increasing */
    int64_t *free_cols; /* (out, nfree): row i's free columns, increasing */
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

static void alin_free_state(alin_state *s)
{
    if (!s)
        return;
    free(s->fix_cols);
    free(s->free_cols);
    free(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Row i's fixed columns: the first nfix of a partial Fisher–Yates shuffle of
 * 0..in-1 (uniform without replacement), then sorted; the free columns are
 * the rest, increasing.  `perm` and `is_fixed` are scratch of `in`. */
static void draw_columns(alin_state *s, int64_t *perm, unsigned char *is_fixed)
{
    sl_rng rng;
    sl_rng_derive(&rng, s->mask_seed, ASYM_STREAM_COLUMNS);
    for (int64_t i = 0; i < s->out; i++) {
        for (int64_t c = 0; c < s->in; c++)
            perm[c] = c;
        for (int64_t k = 0; k < s->nfix; k++) {
            int64_t j = k + (int64_t)sl_rng_below(&rng, (uint64_t)(s->in - k));
            int64_t t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        int64_t *fix = s->fix_cols + i * s->nfix, *fre = s->free_cols + i * s->nfree;
        memcpy(fix, perm, (size_t)s->nfix * sizeof *fix);
        qsort(fix, (size_t)s->nfix, sizeof *fix, cmp_i64);
        memset(is_fixed, 0, (size_t)s->in);
        for (int64_t k = 0; k < s->nfix; k++)
            is_fixed[fix[k]] = 1;
        int64_t f = 0;
        for (int64_t c = 0; c < s->in; c++)
            if (!is_fixed[c])
                fre[f++] = c;
    }
}

static int alin_create(sl_module *m, const sl_options *opt)
{
    int64_t in = sl_options_int(opt, "in_features"), out = sl_options_int(opt, "out_features");
    int64_t nfix = sl_options_int(opt, "n_fix");
    double kappa = sl_options_float(opt, "kappa");
    if (in <= 0 || out <= 0)
        return sl_error(SL_EINVAL,
                        "asym_linear: in_features and out_features must be > 0, got %lld, %lld",
                        (long long)in, (long long)out);
    if (nfix < 0 || nfix >= in)
        return sl_error(SL_EINVAL,
                        "asym_linear: n_fix must be in [0, in_features) = [0, %lld), got %lld",
                        (long long)in, (long long)nfix);
    if (!isfinite(kappa))
        return sl_error(SL_EINVAL, "asym_linear: kappa must be finite, got %g", kappa);
    bool bias = sl_options_bool(opt, "bias");
    SL_TRY(sl_module_add_param(m, "weight", 2, (int64_t[]){out, in - nfix}));
    if (bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &out));
    if (nfix > 0) /* a (out, 0) buffer would be a tensor with no data */
        SL_TRY(sl_module_add_buffer(m, "weight_fixed", 2, (int64_t[]){out, nfix}));
    alin_state *s = calloc(1, sizeof *s);
    int64_t *perm = malloc((size_t)in * sizeof *perm);
    unsigned char *is_fixed = malloc((size_t)in);
    if (s) {
        *s = (alin_state){.in = in, .out = out, .nfix = nfix, .nfree = in - nfix,
                          .bias = bias, .mask_seed = (uint64_t)sl_options_int(opt, "mask_seed"),
                          .kappa = kappa};
        s->fix_cols = malloc((size_t)(out * nfix + 1) * sizeof *s->fix_cols);
        s->free_cols = malloc((size_t)(out * (in - nfix)) * sizeof *s->free_cols);
    }
    if (!s || !perm || !is_fixed || !s->fix_cols || !s->free_cols) {
        alin_free_state(s);
        free(perm);
        free(is_fixed);
        return sl_error(SL_ENOMEM, "asym_linear: out of memory");
    }
    draw_columns(s, perm, is_fixed);
    free(perm);
    free(is_fixed);
    sl_module_set_state(m, s);
    return SL_OK;
}

/* Free weight and bias as PyTorch's nn.Linear initialises a weight,
 * U(-1/sqrt(in), 1/sqrt(in)) from the model's stream; the fixed values
 * kappa·N(0,1) from mask_seed's own stream, row by row. */
static int alin_reset(sl_module *m, sl_rng *rng)
{
    const alin_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt((double)s->in);
    SL_TRY(sl_tensor_uniform(sl_module_param(m, P_WEIGHT), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, P_BIAS), rng, -bound, bound));
    if (s->nfix == 0)
        return SL_OK;
    sl_rng vr;
    sl_rng_derive(&vr, s->mask_seed, ASYM_STREAM_VALUES);
    return sl_tensor_normal(sl_module_buffer(m, B_FIXED), &vr, 0.0, s->kappa);
}

static int alin_check_input(const alin_state *s, int ndim, const int64_t *in)
{
    if (ndim == 2 && in[1] == s->in)
        return SL_OK;
    char got[128];
    return sl_error(SL_ESHAPE, "asym_linear: expected input (B, %lld), got %s",
                    (long long)s->in, sl_shape_str(ndim, in, got, sizeof got));
}

static int alin_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                             int64_t *out)
{
    const alin_state *s = sl_module_state(m);
    SL_TRY(alin_check_input(s, ndim, in));
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = s->out;
    return SL_OK;
}

/* assemble: W (out, in) from the free and fixed entries.
 * gather:   gfree (out, nfree) += gW's free entries.
 * add_bias: y (B, out) += b on every row; bias_grad: gb += column sums. */
#define DEFINE_ALIN(T, SUF)                                                                 \
    static void assemble_##SUF(const alin_state *s, const T *free_w, const T *fixed, T *w) \
    {                                                                                       \
        for (int64_t i = 0; i < s->out; i++) {                                              \
            T *row = w + i * s->in;                                                         \
            const int64_t *fc = s->free_cols + i * s->nfree, *xc = s->fix_cols + i * s->nfix; \
            for (int64_t f = 0; f < s->nfree; f++)                                          \
                row[fc[f]] = free_w[i * s->nfree + f];                                      \
            for (int64_t k = 0; k < s->nfix; k++)                                           \
                row[xc[k]] = fixed[i * s->nfix + k];                                        \
        }                                                                                   \
    }                                                                                       \
    static void gather_##SUF(const alin_state *s, const T *gw, T *gfree)                    \
    {                                                                                       \
        for (int64_t i = 0; i < s->out; i++) {                                              \
            const int64_t *fc = s->free_cols + i * s->nfree;                                \
            for (int64_t f = 0; f < s->nfree; f++)                                          \
                gfree[i * s->nfree + f] += gw[i * s->in + fc[f]];                           \
        }                                                                                   \
    }                                                                                       \
    static void add_bias_##SUF(T *y, const T *b, int64_t rows, int64_t n)                   \
    {                                                                                       \
        for (int64_t r = 0; r < rows; r++)                                                  \
            for (int64_t j = 0; j < n; j++)                                                 \
                y[r * n + j] += b[j];                                                       \
    }                                                                                       \
    static void bias_grad_##SUF(T *gb, const T *g, int64_t rows, int64_t n)                 \
    {                                                                                       \
        for (int64_t r = 0; r < rows; r++)                                                  \
            for (int64_t j = 0; j < n; j++)                                                 \
                gb[j] += g[r * n + j];                                                      \
    }
DEFINE_ALIN(float, f32)
DEFINE_ALIN(double, f64)

/* W_eff into scratch slot SCRATCH_W, wrapped as an (out, in) tensor.  Kept
 * there for backward, which runs on the same parameters. */
static int effective_weight(sl_module *m, const alin_state *s, sl_tensor *w)
{
    sl_dtype dt = sl_module_dtype(m);
    void *p;
    SL_TRY(sl_module_scratch(m, SCRATCH_W, (size_t)(s->out * s->in) * sl_dtype_size(dt), &p));
    const void *fixed = s->nfix ? sl_module_buffer(m, B_FIXED)->data : NULL;
    if (dt == SL_F32)
        assemble_f32(s, sl_module_param(m, P_WEIGHT)->data, fixed, p);
    else
        assemble_f64(s, sl_module_param(m, P_WEIGHT)->data, fixed, p);
    return sl_tensor_wrap(w, p, dt, 2, (int64_t[]){s->out, s->in});
}

static int alin_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const alin_state *s = sl_module_state(m);
    SL_TRY(alin_check_input(s, in->ndim, in->shape));
    sl_tensor w;
    SL_TRY(effective_weight(m, s, &w));
    SL_TRY(sl_gemm(false, true, 1.0, in, &w, 0.0, out));
    if (!s->bias)
        return SL_OK;
    const void *b = sl_module_param(m, P_BIAS)->data;
    if (out->dtype == SL_F32)
        add_bias_f32(out->data, b, out->shape[0], s->out);
    else
        add_bias_f64(out->data, b, out->shape[0], s->out);
    return SL_OK;
}

static int alin_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                         const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const alin_state *s = sl_module_state(m);
    sl_dtype dt = sl_module_dtype(m);
    /* gW_eff (out, in) = gout^T @ in, then its free entries into the grad */
    void *p;
    SL_TRY(sl_module_scratch(m, SCRATCH_GW, (size_t)(s->out * s->in) * sl_dtype_size(dt), &p));
    sl_tensor gw;
    SL_TRY(sl_tensor_wrap(&gw, p, dt, 2, (int64_t[]){s->out, s->in}));
    SL_TRY(sl_gemm(true, false, 1.0, grad_out, in, 0.0, &gw));
    void *gfree = sl_module_grad(m, P_WEIGHT)->data;
    if (dt == SL_F32)
        gather_f32(s, p, gfree);
    else
        gather_f64(s, p, gfree);
    if (s->bias) {
        void *gb = sl_module_grad(m, P_BIAS)->data;
        if (dt == SL_F32)
            bias_grad_f32(gb, grad_out->data, grad_out->shape[0], s->out);
        else
            bias_grad_f64(gb, grad_out->data, grad_out->shape[0], s->out);
    }
    if (!grad_in)
        return SL_OK;
    /* gin (B, in) = gout @ W_eff, W_eff as forward left it in scratch */
    void *wp;
    SL_TRY(sl_module_scratch(m, SCRATCH_W, (size_t)(s->out * s->in) * sl_dtype_size(dt), &wp));
    sl_tensor w;
    SL_TRY(sl_tensor_wrap(&w, wp, dt, 2, (int64_t[]){s->out, s->in}));
    return sl_gemm(false, false, 1.0, grad_out, &w, 0.0, grad_in);
}

static void alin_destroy(sl_module *m) { alin_free_state(sl_module_state(m)); }

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
