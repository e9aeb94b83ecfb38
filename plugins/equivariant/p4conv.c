/* plugins/equivariant/p4conv.c — group convolution for p4, the group of
 * translations and rotations by multiples of 90° of the pixel grid (Cohen
 * & Welling, arXiv 1602.07576), and pooling over its rotations.
 *
 * Layouts (channels first, "same" zero padding (k - 1)/2, stride 1):
 *   a Z² feature map (an image)  (B, c, H, W);
 *   a p4 feature map             (B, c, 4, H, W): channel c seen under the
 *                                 four rotations r = 0..3 of the filters.
 * R rotates a square array by 90° counter-clockwise, (R f)[i, j] =
 * f[j, n - 1 - i].  The rotation acts on a Z² map by rotating every
 * channel, (g x)[c] = R x[c], and on a p4 map by rotating every plane and
 * shifting the rotation index, (g y)[c, r] = R y[c, r - 1 mod 4].
 *
 * The layer ("input": "z2" lifts an image, "p4" maps p4 to p4), with ⋆
 * correlation and ψ the learned filters:
 *
 *   z2 -> p4:  y[o, r] = Σ_c        x[c]    ⋆ R^r ψ[o, c]                + bias[o]
 *   p4 -> p4:  y[o, r] = Σ_c Σ_s    x[c, s] ⋆ R^r ψ[o, c, (s - r) mod 4] + bias[o]
 *
 * Both commute with g on square inputs: (R x) ⋆ (R ψ) = R (x ⋆ ψ) for
 * odd filters under "same" padding, and the index shift does the rest.
 * They commute with translations as every convolution does (up to the
 * zero border).
 *
 * Parameters: weight (c_out, c_in, k, k) for z2 input, (c_out, c_in, 4, k,
 * k) for p4 input; bias (c_out), shared by the four rotations.  Forward
 * expands the filters into the (4 c_out, c_in' k k) matrix of an ordinary
 * convolution (c_in' = c_in or 4 c_in input planes) through an index table
 * made once in create(), then runs im2col and a GEMM per sample; backward
 * folds the expanded gradient back through the same table.  The dense
 * equivalent is that conv2d: `conv2d` with 4 c_out output and c_in' input
 * channels and these filters computes the same function.
 *
 * Role: a weight layer over channels, like gconv (see gconv.c): weight's
 * rows are output channels, each owning its 4 H W outputs, contiguous on
 * axis 1 of the output; axis 1 of the weight is the input channels.  So
 * permuting or rescaling hidden channels (all four rotations together) is
 * a symmetry the walker sees and applies correctly.
 *
 * p4pool: (B, c, 4, H, W) -> (B, c, H, W), max or mean over the rotations:
 * rotation-invariant channels, which rotate with the image.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eq.h"

typedef struct p4_state {
    int64_t in, out, k;  /* c_in, c_out, kernel size */
    bool lift;           /* z2 input */
    bool bias;
    int64_t planes;      /* input planes: c_in (z2) or 4 c_in (p4) */
    int64_t cols;        /* planes k k */
    int64_t *table;      /* (4 c_out, cols): index into weight of each expanded entry */
} p4_state;

enum { P4_WEIGHT = 0, P4_BIAS = 1 };
enum { P4_FILTERS = 0, P4_COLS = 1, P4_GFILTERS = 2, P4_GCOLS = 3 }; /* scratch slots */

static const sl_option_spec p4_options[] = {
    {"in_channels", SL_OPT_INT, NULL, "input channels", NULL},
    {"out_channels", SL_OPT_INT, NULL, "output channels (each seen under 4 rotations)", NULL},
    {"kernel_size", SL_OPT_INT, "3", "odd filter size k", NULL},
    {"input", SL_OPT_STRING, "p4", "z2: lift images (B, c, H, W); p4: (B, c, 4, H, W)",
     "z2|p4"},
    {"bias", SL_OPT_BOOL, "true", "learn a bias per output channel", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* ρ^r(u, v): where R^r ψ reads ψ, (R^r ψ)[u, v] = ψ[ρ^r(u, v)] with
 * ρ(u, v) = (v, k - 1 - u). */
static void rotate_index(int64_t k, int r, int64_t *u, int64_t *v)
{
    for (int t = 0; t < r; t++) {
        int64_t nu = *v, nv = k - 1 - *u;
        *u = nu;
        *v = nv;
    }
}

static void fill_table(p4_state *s)
{
    const int64_t k = s->k;
    for (int64_t o = 0; o < s->out; o++)
        for (int r = 0; r < 4; r++)
            for (int64_t ci = 0; ci < s->planes; ci++)
                for (int64_t u = 0; u < k; u++)
                    for (int64_t v = 0; v < k; v++) {
                        int64_t su = u, sv = v, filt;
                        rotate_index(k, r, &su, &sv);
                        if (s->lift) {
                            filt = o * s->in + ci;
                        } else { /* plane ci = (c, rotation s) reads filter (s - r) mod 4 */
                            int64_t c = ci / 4, rs = ((ci % 4) - r + 4) % 4;
                            filt = (o * s->in + c) * 4 + rs;
                        }
                        s->table[(o * 4 + r) * s->cols + (ci * k + u) * k + v] =
                            (filt * k + su) * k + sv;
                    }
}

static int p4_create(sl_module *m, const sl_options *opt)
{
    p4_state s = {.in = sl_options_int(opt, "in_channels"),
                  .out = sl_options_int(opt, "out_channels"),
                  .k = sl_options_int(opt, "kernel_size"),
                  .lift = strcmp(sl_options_string(opt, "input"), "z2") == 0,
                  .bias = sl_options_bool(opt, "bias")};
    if (s.in <= 0 || s.out <= 0)
        return sl_error(SL_EINVAL, "p4conv: in_channels and out_channels must be > 0, got %lld "
                                   "and %lld", (long long)s.in, (long long)s.out);
    if (s.k < 1 || s.k % 2 == 0)
        return sl_error(SL_EINVAL, "p4conv: kernel_size must be odd and >= 1 (a filter has a "
                                   "centre to rotate about), got %lld", (long long)s.k);
    s.planes = s.lift ? s.in : 4 * s.in;
    s.cols = s.planes * s.k * s.k;
    if (s.lift)
        SL_TRY(sl_module_add_param(m, "weight", 4, (int64_t[]){s.out, s.in, s.k, s.k}));
    else
        SL_TRY(sl_module_add_param(m, "weight", 5, (int64_t[]){s.out, s.in, 4, s.k, s.k}));
    if (s.bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &s.out));
    p4_state *st = malloc(sizeof *st);
    s.table = malloc((size_t)(4 * s.out * s.cols) * sizeof *s.table);
    if (!st || !s.table) {
        free(st);
        free(s.table);
        return sl_error(SL_ENOMEM, "p4conv: out of memory");
    }
    fill_table(&s);
    *st = s;
    sl_module_set_state(m, st);
    return SL_OK;
}

/* PyTorch's conv init for the fan-in planes k k. */
static int p4_reset(sl_module *m, sl_rng *rng)
{
    const p4_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt((double)s->cols);
    SL_TRY(sl_tensor_uniform(sl_module_param(m, P4_WEIGHT), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, P4_BIAS), rng, -bound, bound));
    return SL_OK;
}

static int p4_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    const p4_state *s = sl_module_state(m);
    const int want = s->lift ? 4 : 5;
    if (ndim != want || in[1] != s->in || (!s->lift && in[2] != 4) || in[ndim - 1] < 1 ||
        in[ndim - 2] < 1) {
        char got[128];
        return sl_error(SL_ESHAPE, "p4conv: expected input (B, %lld%s, H, W), got %s",
                        (long long)s->in, s->lift ? "" : ", 4",
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 5;
    out[0] = in[0];
    out[1] = s->out;
    out[2] = 4;
    out[3] = in[ndim - 2];
    out[4] = in[ndim - 1];
    return SL_OK;
}

/* im2col: cols (planes k k, H W) from one sample's planes x (planes, H, W),
 * zero outside the image; with `adjoint`, its transpose: x = 0, then every
 * column entry added back to the pixel it was read from (the input
 * gradient). */
static void patches(const p4_state *s, sl_dtype dt, void *x, int64_t H, int64_t W, void *cols,
                    bool adjoint)
{
    const int64_t k = s->k, P = (k - 1) / 2, HW = H * W;
    for (int64_t i = 0; adjoint && i < s->planes * HW; i++)
        eq_st(x, dt, i, 0.0);
    for (int64_t ci = 0; ci < s->planes; ci++)
        for (int64_t u = 0; u < k; u++)
            for (int64_t v = 0; v < k; v++) {
                const int64_t row = (ci * k + u) * k + v;
                for (int64_t i = 0; i < H; i++)
                    for (int64_t j = 0; j < W; j++) {
                        int64_t si = i + u - P, sj = j + v - P, c = row * HW + i * W + j;
                        bool in = si >= 0 && si < H && sj >= 0 && sj < W;
                        if (adjoint && in)
                            eq_add(x, dt, ci * HW + si * W + sj, eq_ld(cols, dt, c));
                        else if (!adjoint)
                            eq_st(cols, dt, c, in ? eq_ld(x, dt, ci * HW + si * W + sj) : 0.0);
                    }
            }
}

static int p4_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const p4_state *s = sl_module_state(m);
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(p4_shape(m, in->ndim, in->shape, &nd, os));
    const sl_dtype dt = in->dtype;
    const size_t es = sl_dtype_size(dt);
    const int64_t B = in->shape[0], H = os[3], W = os[4], HW = H * W, rows = 4 * s->out;
    void *F, *cols;
    SL_TRY(eq_scratch(m, P4_FILTERS, rows * s->cols, &F));
    SL_TRY(eq_scratch(m, P4_COLS, s->cols * HW, &cols));
    eq_tied_expand(dt, sl_module_param(m, P4_WEIGHT)->data, s->table, rows * s->cols, F);
    for (int64_t b = 0; b < B; b++) {
        char *yb = (char *)out->data + (size_t)(b * rows * HW) * es;
        patches(s, dt, (char *)in->data + (size_t)(b * s->planes * HW) * es, H, W, cols, false);
        eq_gemm(dt, false, false, rows, HW, s->cols, 1.0, F, s->cols, cols, HW, 0.0, yb, HW);
        if (s->bias)
            for (int64_t r = 0; r < rows; r++) {
                double add = eq_ld(sl_module_param(m, P4_BIAS)->data, dt, r / 4);
                for (int64_t i = 0; i < HW; i++)
                    eq_add(yb, dt, r * HW + i, add);
            }
    }
    return SL_OK;
}

static int p4_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const p4_state *s = sl_module_state(m);
    const sl_dtype dt = in->dtype;
    const size_t es = sl_dtype_size(dt);
    const int64_t B = in->shape[0], H = in->shape[in->ndim - 2], W = in->shape[in->ndim - 1];
    const int64_t HW = H * W, rows = 4 * s->out;
    void *F, *cols, *gF, *gcols;
    SL_TRY(eq_scratch(m, P4_FILTERS, rows * s->cols, &F)); /* forward's filters */
    SL_TRY(eq_scratch(m, P4_COLS, s->cols * HW, &cols));
    SL_TRY(eq_scratch(m, P4_GFILTERS, rows * s->cols, &gF));
    SL_TRY(eq_scratch(m, P4_GCOLS, s->cols * HW, &gcols));
    for (int64_t b = 0; b < B; b++) {
        const char *gb = (const char *)grad_out->data + (size_t)(b * rows * HW) * es;
        patches(s, dt, (char *)in->data + (size_t)(b * s->planes * HW) * es, H, W, cols, false);
        /* gF (rows, cols) (+)= g_b (rows, HW) cols_bᵀ */
        eq_gemm(dt, false, true, rows, s->cols, HW, 1.0, gb, HW, cols, HW, b > 0 ? 1.0 : 0.0,
                gF, s->cols);
        if (grad_in) {
            eq_gemm(dt, true, false, s->cols, HW, rows, 1.0, F, s->cols, gb, HW, 0.0, gcols, HW);
            patches(s, dt, (char *)grad_in->data + (size_t)(b * s->planes * HW) * es, H, W, gcols,
                    true);
        }
    }
    eq_tied_fold(dt, gF, s->table, rows * s->cols, sl_module_grad(m, P4_WEIGHT)->data);
    if (s->bias) {
        void *gbias = sl_module_grad(m, P4_BIAS)->data;
        for (int64_t o = 0; o < s->out; o++) {
            double acc = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < 4 * HW; i++)
                    acc += eq_ld(grad_out->data, dt, (b * rows + o * 4) * HW + i);
            eq_add(gbias, dt, o, acc);
        }
    }
    return SL_OK;
}

/* The dense equivalent: `conv2d` (4 c_out outputs, `planes` inputs,
 * padding (k - 1)/2) with the rotated filters the forward expands, bias
 * repeated over the four rotations; reshapes around it turn the p4 maps
 * (B, c, 4, H, W) into the (B, 4 c, H, W) images it reads and writes. */
static int p4_relax(sl_module *m, int ndim, const int64_t *in, sl_relax *r)
{
    const p4_state *s = sl_module_state(m);
    int od;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(p4_shape(m, ndim, in, &od, os));
    const int64_t H = os[3], W = os[4], rows = 4 * s->out;
    if (!s->lift)
        SL_TRY(eq_relax_reshape(r, 4, (int64_t[]){in[0], s->planes, H, W}));
    sl_options *o = sl_options_new();
    if (!o)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    int rc = sl_options_set_int(o, "in_channels", s->planes);
    if (rc >= 0)
        rc = sl_options_set_int(o, "out_channels", rows);
    if (rc >= 0)
        rc = sl_options_set_int(o, "kernel_size", s->k);
    if (rc >= 0)
        rc = sl_options_set_int(o, "padding", (s->k - 1) / 2);
    if (rc >= 0)
        rc = sl_options_set_bool(o, "bias", s->bias);
    if (rc >= 0)
        rc = sl_relax_add(r, "conv2d", o);
    sl_options_free(o);
    SL_TRY(rc);
    const sl_dtype dt = sl_module_dtype(m);
    sl_tensor F = {0}, b = {0};
    rc = sl_tensor_alloc(&F, dt, 4, (int64_t[]){rows, s->planes, s->k, s->k});
    if (rc >= 0) {
        eq_tied_expand(dt, sl_module_param(m, P4_WEIGHT)->data, s->table, rows * s->cols,
                       F.data);
        rc = sl_relax_set(r, "weight", &F);
    }
    if (rc >= 0 && s->bias)
        rc = sl_tensor_alloc(&b, dt, 1, &rows);
    if (rc >= 0 && s->bias) {
        for (int64_t i = 0; i < rows; i++)
            eq_st(b.data, dt, i, eq_ld(sl_module_param(m, P4_BIAS)->data, dt, i / 4));
        rc = sl_relax_set(r, "bias", &b);
    }
    sl_tensor_release(&F);
    sl_tensor_release(&b);
    SL_TRY(rc);
    return eq_relax_reshape(r, 5, os);
}

static void p4_destroy(sl_module *m)
{
    p4_state *s = sl_module_state(m);
    free(s->table);
    free(s);
}

const sl_module_type eq_p4conv_type = {
    .name = "p4conv",
    .summary = "p4 group convolution (rotations by 90° and translations): lifting "
               "(B, c, H, W) or p4 (B, c, 4, H, W) -> (B, c_out, 4, H, W)",
    .options = p4_options,
    .create = p4_create,
    .reset_parameters = p4_reset,
    .output_shape = p4_shape,
    .forward = p4_forward,
    .backward = p4_backward,
    .destroy = p4_destroy,
    /* A weight layer over channels: see "Role" at the top of this file. */
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 1},
    .relax = p4_relax,
};

/* ---- p4pool ------------------------------------------------------------------ */

static const sl_option_spec pool_options[] = {
    {"reduce", SL_OPT_STRING, "max", "max or mean over the four rotations", "max|mean"},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

static int pool_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    if (ndim != 5 || in[2] != 4) {
        char got[128];
        return sl_error(SL_ESHAPE, "p4pool: expected input (B, c, 4, H, W), got %s",
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 4;
    out[0] = in[0];
    out[1] = in[1];
    out[2] = in[3];
    out[3] = in[4];
    return SL_OK;
}

/* The rotation of (row, position) that max pooling picks: the first largest. */
static int argmax4(const sl_tensor *in, int64_t row, int64_t HW, int64_t i)
{
    int best = 0;
    for (int r = 1; r < 4; r++)
        if (eq_ld(in->data, in->dtype, (row * 4 + r) * HW + i) >
            eq_ld(in->data, in->dtype, (row * 4 + best) * HW + i))
            best = r;
    return best;
}

static int pool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(pool_shape(m, in->ndim, in->shape, &nd, os));
    const bool mean = eq_reduce_mean(m);
    const int64_t rows = in->shape[0] * in->shape[1], HW = in->shape[3] * in->shape[4];
    for (int64_t row = 0; row < rows; row++)
        for (int64_t i = 0; i < HW; i++) {
            double v;
            if (mean) {
                v = 0;
                for (int r = 0; r < 4; r++)
                    v += eq_ld(in->data, in->dtype, (row * 4 + r) * HW + i);
                v /= 4;
            } else {
                v = eq_ld(in->data, in->dtype, (row * 4 + argmax4(in, row, HW, i)) * HW + i);
            }
            eq_st(out->data, in->dtype, row * HW + i, v);
        }
    return SL_OK;
}

static int pool_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                         const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in)
        return SL_OK;
    const bool mean = eq_reduce_mean(m);
    const int64_t rows = in->shape[0] * in->shape[1], HW = in->shape[3] * in->shape[4];
    for (int64_t row = 0; row < rows; row++)
        for (int64_t i = 0; i < HW; i++) {
            double g = eq_ld(grad_out->data, in->dtype, row * HW + i);
            int pick = mean ? -1 : argmax4(in, row, HW, i);
            for (int r = 0; r < 4; r++)
                eq_st(grad_in->data, in->dtype, (row * 4 + r) * HW + i,
                      mean ? g / 4 : (r == pick ? g : 0.0));
        }
    return SL_OK;
}

const sl_module_type eq_p4pool_type = {
    .name = "p4pool",
    .summary = "(B, c, 4, H, W) -> (B, c, H, W): max or mean over the four rotations",
    .options = pool_options,
    .create = eq_reduce_create,
    .output_shape = pool_shape,
    .forward = pool_forward,
    .backward = pool_backward,
    .destroy = eq_reduce_destroy,
    /* Acts on each channel alone and shrinks its extent from 4 H W to H W.
     * Max is positively homogeneous; mean is one linear map for every
     * channel (so also odd and GL-commuting).  The role is per type, so
     * it states what holds for both: homogeneous. */
    .role = {.kind = SL_ROLE_PER_UNIT, .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_RESAMPLES},
};
