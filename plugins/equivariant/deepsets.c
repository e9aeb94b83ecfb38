/* plugins/equivariant/deepsets.c — the general permutation-equivariant
 * linear map on sets (Deep Sets, Zaheer et al., arXiv 1703.06114) and the
 * invariant pooling that reads a set out.
 *
 * Layout: channels first, as PyTorch's Conv1d — a batch of sets of n
 * elements with c features each is (B, c, n).  In the notation of the paper,
 * with X the n x c_in matrix of one set,
 *
 *     Y = X Λ + (1/n) 1 1ᵀ X Γ + 1 βᵀ          (n x c_out)
 *
 * and here, per sample, with x[c, i] = X[i, c]:
 *
 *     y[o, i] = Σ_c weight[o, 0, c] x[c, i]
 *             + Σ_c weight[o, 1, c] mean_i' x[c, i'] + bias[o]
 *
 * so weight[:, 0, :] = Λᵀ and weight[:, 1, :] = Γᵀ, each PyTorch-style
 * (out, in), and bias = β.  Permuting the set elements (axis 2) permutes
 * the output's the same way, for every Λ, Γ, β, and every linear map with
 * that property has this form.
 *
 * Why this layout and this packing: it makes the layer honestly a weight
 * layer for the structure walker (module.h).  Its output units are the
 * c_out channels, unit-major on axis 1 (channel o's n values are
 * contiguous), and everything that belongs to output channel o — Λ's and
 * Γ's column o and β[o] — is row o of `weight` and `bias`.  So permuting,
 * rescaling or mixing (GL) hidden channels, as the walker does, moves
 * exactly the right numbers, and each of those is a symmetry of a network
 * of these layers with pointwise maps in between (the layer is linear in
 * its channels).  With the set axis first, (B, n, c), or with Λ and Γ as
 * separate parameters, the walker's assumptions would be wrong and the
 * layer would have to be opaque.
 *
 * set_pool: (B, c, n) -> (B, c), the sum or mean over the set: invariant
 * under permutations of the elements; a per-unit linear map on channels.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eq.h"

/* ---- deepsets ------------------------------------------------------------- */

typedef struct ds_state {
    int64_t in, out;
    bool bias;
} ds_state;

enum { DS_WEIGHT = 0, DS_BIAS = 1 };
enum { DS_MEAN = 0, DS_SUMS = 1, DS_TMP = 2 }; /* scratch slots */

static const sl_option_spec ds_options[] = {
    {"in_channels", SL_OPT_INT, NULL, "features per set element (c_in)", NULL},
    {"out_channels", SL_OPT_INT, NULL, "output features per set element (c_out)", NULL},
    {"bias", SL_OPT_BOOL, "true", "learn the per-channel bias β", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

static int ds_create(sl_module *m, const sl_options *opt)
{
    int64_t in = sl_options_int(opt, "in_channels"), out = sl_options_int(opt, "out_channels");
    bool bias = sl_options_bool(opt, "bias");
    if (in <= 0)
        return sl_error(SL_EINVAL, "deepsets: in_channels must be > 0, got %lld", (long long)in);
    if (out <= 0)
        return sl_error(SL_EINVAL, "deepsets: out_channels must be > 0, got %lld",
                        (long long)out);
    SL_TRY(sl_module_add_param(m, "weight", 3, (int64_t[]){out, 2, in}));
    if (bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &out));
    ds_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "deepsets: out of memory");
    *s = (ds_state){in, out, bias};
    sl_module_set_state(m, s);
    return SL_OK;
}

/* U(-1/sqrt(2 c_in), 1/sqrt(2 c_in)): PyTorch's linear init for the 2 c_in
 * inputs (elements and their mean) each output reads. */
static int ds_reset(sl_module *m, sl_rng *rng)
{
    const ds_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt(2.0 * (double)s->in);
    SL_TRY(sl_tensor_uniform(sl_module_param(m, DS_WEIGHT), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, DS_BIAS), rng, -bound, bound));
    return SL_OK;
}

static int ds_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    const ds_state *s = sl_module_state(m);
    if (ndim != 3 || in[1] != s->in || in[2] < 1) {
        char got[128];
        return sl_error(SL_ESHAPE, "deepsets: expected input (B, %lld, n) with n >= 1, got %s",
                        (long long)s->in, sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 3;
    out[0] = in[0];
    out[1] = s->out;
    out[2] = in[2];
    return SL_OK;
}

/* dst[r] = scale * Σ_i src[r * n + i] for r < rows (sums in double). */
static void row_sums(sl_dtype dt, const void *src, int64_t rows, int64_t n, double scale,
                     void *dst)
{
    for (int64_t r = 0; r < rows; r++) {
        double acc = 0;
        for (int64_t i = 0; i < n; i++)
            acc += eq_ld(src, dt, r * n + i);
        eq_st(dst, dt, r, scale * acc);
    }
}

static int ds_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const ds_state *s = sl_module_state(m);
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(ds_shape(m, in->ndim, in->shape, &nd, os));
    const sl_dtype dt = in->dtype;
    const int64_t B = in->shape[0], n = in->shape[2], ci = s->in, co = s->out;
    const size_t es = sl_dtype_size(dt);
    const char *w = sl_module_param(m, DS_WEIGHT)->data;
    void *mean, *t;
    SL_TRY(eq_scratch(m, DS_MEAN, B * ci, &mean));
    SL_TRY(eq_scratch(m, DS_TMP, B * co, &t));
    /* mean (B, c_in), kept for backward; t (B, c_out) = mean Γ */
    row_sums(dt, in->data, B * ci, n, 1.0 / (double)n, mean);
    eq_gemm(dt, false, true, B, co, ci, 1.0, mean, ci, w + (size_t)ci * es, 2 * ci, 0.0, t, co);
    for (int64_t b = 0; b < B; b++) {
        char *yb = (char *)out->data + (size_t)(b * co * n) * es;
        /* y_b (c_out, n) = Λᵀ-as-(out, in) x_b (c_in, n) */
        eq_gemm(dt, false, false, co, n, ci, 1.0, w, 2 * ci,
                (const char *)in->data + (size_t)(b * ci * n) * es, n, 0.0, yb, n);
        for (int64_t o = 0; o < co; o++) {
            double add = eq_ld(t, dt, b * co + o) +
                         (s->bias ? eq_ld(sl_module_param(m, DS_BIAS)->data, dt, o) : 0.0);
            for (int64_t i = 0; i < n; i++)
                eq_add(yb, dt, o * n + i, add);
        }
    }
    return SL_OK;
}

static int ds_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const ds_state *s = sl_module_state(m);
    const sl_dtype dt = in->dtype;
    const int64_t B = in->shape[0], n = in->shape[2], ci = s->in, co = s->out;
    const size_t es = sl_dtype_size(dt);
    const char *w = sl_module_param(m, DS_WEIGHT)->data;
    char *gw = sl_module_grad(m, DS_WEIGHT)->data;
    void *mean, *sums, *tmp;
    SL_TRY(eq_scratch(m, DS_MEAN, B * ci, &mean)); /* from forward */
    SL_TRY(eq_scratch(m, DS_SUMS, B * co, &sums));
    /* sums (B, c_out): Σ_i g[b, o, i], what the mean and bias terms see */
    row_sums(dt, grad_out->data, B * co, n, 1.0, sums);
    for (int64_t b = 0; b < B; b++) /* gΛ (out, in) += g_b (out, n) x_bᵀ */
        eq_gemm(dt, false, true, co, ci, n, 1.0,
                (const char *)grad_out->data + (size_t)(b * co * n) * es, n,
                (const char *)in->data + (size_t)(b * ci * n) * es, n, 1.0, gw, 2 * ci);
    /* gΓ (out, in) += sumsᵀ mean */
    eq_gemm(dt, true, false, co, ci, B, 1.0, sums, co, mean, ci, 1.0, gw + (size_t)ci * es,
            2 * ci);
    if (s->bias) {
        void *gb = sl_module_grad(m, DS_BIAS)->data;
        for (int64_t o = 0; o < co; o++) {
            double acc = 0;
            for (int64_t b = 0; b < B; b++)
                acc += eq_ld(sums, dt, b * co + o);
            eq_add(gb, dt, o, acc);
        }
    }
    if (!grad_in)
        return SL_OK;
    SL_TRY(eq_scratch(m, DS_TMP, B * ci, &tmp));
    /* tmp (B, c_in) = sums Γ-as-(out, in) / n: the mean's share, spread evenly */
    eq_gemm(dt, false, false, B, ci, co, 1.0 / (double)n, sums, co, w + (size_t)ci * es, 2 * ci,
            0.0, tmp, ci);
    for (int64_t b = 0; b < B; b++) {
        char *gxb = (char *)grad_in->data + (size_t)(b * ci * n) * es;
        eq_gemm(dt, true, false, ci, n, co, 1.0, w, 2 * ci,
                (const char *)grad_out->data + (size_t)(b * co * n) * es, n, 0.0, gxb, n);
        for (int64_t c = 0; c < ci; c++) {
            double add = eq_ld(tmp, dt, b * ci + c);
            for (int64_t i = 0; i < n; i++)
                eq_add(gxb, dt, c * n + i, add);
        }
    }
    return SL_OK;
}

/* The dense equivalent on sets of n = in[2]: W[(o, i), (c, j)] =
 * Λ[c, o] [i = j] + Γ[c, o] / n and b[(o, i)] = β[o], as `linear` between
 * reshapes (the set size is fixed from here on). */
static int ds_relax(sl_module *m, int ndim, const int64_t *in, sl_relax *r)
{
    const ds_state *s = sl_module_state(m);
    int od;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(ds_shape(m, ndim, in, &od, os));
    const sl_dtype dt = sl_module_dtype(m);
    const int64_t n = in[2], rows = s->out * n, cols = s->in * n;
    const void *w = sl_module_param(m, DS_WEIGHT)->data;
    sl_tensor W = {0}, b = {0};
    int rc = sl_tensor_alloc(&W, dt, 2, (int64_t[]){rows, cols});
    if (rc >= 0 && s->bias)
        rc = sl_tensor_alloc(&b, dt, 1, &rows);
    for (int64_t o = 0; rc >= 0 && o < s->out; o++)
        for (int64_t i = 0; i < n; i++) {
            if (s->bias)
                eq_st(b.data, dt, o * n + i, eq_ld(sl_module_param(m, DS_BIAS)->data, dt, o));
            for (int64_t c = 0; c < s->in; c++)
                for (int64_t j = 0; j < n; j++)
                    eq_st(W.data, dt, (o * n + i) * cols + c * n + j,
                          (i == j ? eq_ld(w, dt, (o * 2 + 0) * s->in + c) : 0.0) +
                              eq_ld(w, dt, (o * 2 + 1) * s->in + c) / (double)n);
        }
    if (rc >= 0)
        rc = eq_relax_affine(m, ndim, in, &W, s->bias ? &b : NULL, r);
    sl_tensor_release(&W);
    sl_tensor_release(&b);
    return rc;
}

static void ds_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type eq_deepsets_type = {
    .name = "deepsets",
    .summary = "permutation-equivariant linear map on sets (B, c_in, n) -> (B, c_out, n): "
               "y = Λ x + Γ mean(x) + β (Deep Sets)",
    .options = ds_options,
    .create = ds_create,
    .reset_parameters = ds_reset,
    .output_shape = ds_shape,
    .forward = ds_forward,
    .backward = ds_backward,
    .destroy = ds_destroy,
    /* A weight layer: see the top of this file for why row o of `weight`
     * (out, 2, in) is all of output channel o, and axis 2 its inputs. */
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 2},
    .relax = ds_relax,
};

/* ---- set_pool -------------------------------------------------------------- */

static const sl_option_spec pool_options[] = {
    {"reduce", SL_OPT_STRING, "mean", "sum or mean over the set's elements", "sum|mean"},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

int eq_reduce_create(sl_module *m, const sl_options *opt)
{
    bool *mean = malloc(sizeof *mean);
    if (!mean)
        return sl_error(SL_ENOMEM, "%s: out of memory", sl_module_type_of(m)->name);
    *mean = strcmp(sl_options_string(opt, "reduce"), "mean") == 0;
    sl_module_set_state(m, mean);
    return SL_OK;
}

void eq_reduce_destroy(sl_module *m) { free(sl_module_state(m)); }

static int pool_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    if (ndim != 3 || in[2] < 1) {
        char got[128];
        return sl_error(SL_ESHAPE, "set_pool: expected input (B, c, n) with n >= 1, got %s",
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = in[1];
    return SL_OK;
}

static double pool_scale(const sl_module *m, int64_t n)
{
    return eq_reduce_mean(m) ? 1.0 / (double)n : 1.0;
}

static int pool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(pool_shape(m, in->ndim, in->shape, &nd, os));
    const int64_t n = in->shape[2];
    row_sums(in->dtype, in->data, in->shape[0] * in->shape[1], n, pool_scale(m, n), out->data);
    return SL_OK;
}

static int pool_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                         const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in)
        return SL_OK;
    const int64_t rows = in->shape[0] * in->shape[1], n = in->shape[2];
    const double scale = pool_scale(m, n);
    for (int64_t r = 0; r < rows; r++) {
        double g = scale * eq_ld(grad_out->data, in->dtype, r);
        for (int64_t i = 0; i < n; i++)
            eq_st(grad_in->data, in->dtype, r * n + i, g);
    }
    return SL_OK;
}

const sl_module_type eq_set_pool_type = {
    .name = "set_pool",
    .summary = "(B, c, n) -> (B, c): sum or mean over a set's elements, permutation invariant",
    .options = pool_options,
    .create = eq_reduce_create,
    .output_shape = pool_shape,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = eq_reduce_destroy,
    /* One linear reduction applied to each channel alike (as global_avgpool):
     * commutes with any mixing of the channels, and shrinks each channel's
     * extent to one value. */
    .role = {.kind = SL_ROLE_PER_UNIT,
             .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR | SL_UNIT_RESAMPLES},
};
