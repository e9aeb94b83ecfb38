/* The equivariant plugin: gradient checks, exact equivariance for every
 * group element, the dense matrix each layer computes, and the structure
 * walker's view of networks built from these layers.
 *
 * Group actions are written here, independently of the plugin: an element
 * acts on one sample's flat entries as a permutation `map`, (g x)[i] =
 * x[map[i]].  C_N on c channels over orbits of p points (channel-major):
 * (r^k x)[ch, a] = x[ch, (a - k) mod p].  S_n on a set (c, n): (σ x)[ch, i]
 * = x[ch, σ(i)] (every element σ of S_n is visited, so the convention's
 * direction does not matter as long as input and output use the same).
 *
 * The Hessian probe is checked against a dense Hessian built here, column by
 * column from central differences of gradients, whose eigenvalues come from
 * LAPACK's symmetric eigensolver (dsyev; the test links LAPACKE itself, the
 * plugin does not). */
#include "config.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>

#include "testutil.h"

static void setup(void) { ck_assert_sl_ok(sl_registry_init()); }

#define GRAD(label, type, text, ...) \
    sl_test_gradcheck(label, type, text, false, 7, 0.0, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

/* ---- models and small helpers ------------------------------------------------ */

/* A built f64 model from "type", "options" pairs ("-": no options), its
 * parameters redrawn N(0, 0.5²) so that every tap and bias is generic. */
static sl_model *stack(const char *const *spec, uint64_t seed)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    for (int i = 0; spec[i]; i += 2) {
        sl_options *o = sl_test_options(strcmp(spec[i + 1], "-") == 0 ? NULL : spec[i + 1]);
        ck_assert_sl_ok(sl_model_add(m, spec[i], o));
        sl_options_free(o);
    }
    ck_assert_sl_ok(sl_model_build(m, seed));
    sl_rng r;
    sl_rng_seed(&r, seed + 1);
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &r, 0.0, 0.5));
    return m;
}

static sl_model *one_module(const char *type, const char *text, uint64_t seed)
{
    return stack((const char *const[]){type, text ? text : "-", NULL}, seed);
}

/* f(x) as a new f64 tensor (the model's output buffer is reused). */
static sl_tensor run(sl_model *m, const sl_tensor *x)
{
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, x, &y));
    sl_tensor out = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&out, SL_F64, y->ndim, y->shape));
    ck_assert_sl_ok(sl_tensor_copy(&out, y));
    return out;
}

/* A new tensor like x with every sample's entries permuted: y[b, i] = x[b, map[i]]. */
static sl_tensor act(const int64_t *map, const sl_tensor *x)
{
    sl_tensor y = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&y, SL_F64, x->ndim, x->shape));
    const int64_t B = x->shape[0], w = sl_tensor_numel(x) / B;
    const double *src = x->data;
    double *dst = y.data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < w; i++)
            dst[b * w + i] = src[b * w + map[i]];
    return y;
}

/* max |a - b| / max(1, max |a|). */
static double rel_gap(const sl_tensor *a, const sl_tensor *b)
{
    ck_assert(sl_tensor_same_shape(a, b));
    double gap = 0, scale = 1;
    for (int64_t i = 0; i < sl_tensor_numel(a); i++) {
        gap = fmax(gap, fabs(sl_tensor_flat_get(a, i) - sl_tensor_flat_get(b, i)));
        scale = fmax(scale, fabs(sl_tensor_flat_get(a, i)));
    }
    return gap / scale;
}

/* The cyclic shift r^k on c channels over orbits of p points. */
static void cyclic_map(int64_t k, int64_t c, int64_t p, int64_t *map)
{
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t a = 0; a < p; a++)
            map[ch * p + a] = ch * p + ((a - k) % p + p) % p;
}

/* The idx-th permutation of 0..n-1 (factorial number system), idx < n!. */
static void nth_permutation(int64_t idx, int64_t n, int64_t *sigma)
{
    int64_t pool[16];
    for (int64_t i = 0; i < n; i++)
        pool[i] = i;
    for (int64_t i = 0, left = n; i < n; i++, left--) {
        int64_t f = 1;
        for (int64_t j = 2; j < left; j++)
            f *= j;
        int64_t pick = idx / f;
        idx %= f;
        sigma[i] = pool[pick];
        for (int64_t j = pick; j + 1 < left; j++)
            pool[j] = pool[j + 1];
    }
}

/* σ acting on the elements of a set of c channels: entry (ch, i) <- (ch, σ(i)). */
static void set_map(const int64_t *sigma, int64_t c, int64_t n, int64_t *map)
{
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < n; i++)
            map[ch * n + i] = ch * n + sigma[i];
}

/* Largest equivariance error of m over `nelem` group elements, element e
 * acting on inputs by in_maps[e] and on outputs by out_maps[e]. */
static double equivariance_error(sl_model *m, const sl_tensor *x, int64_t nelem,
                                 const int64_t *in_maps, int64_t in_w, const int64_t *out_maps,
                                 int64_t out_w)
{
    sl_tensor y = run(m, x);
    double worst = 0;
    for (int64_t e = 0; e < nelem; e++) {
        sl_tensor gx = act(in_maps + e * in_w, x);
        sl_tensor fgx = run(m, &gx);
        sl_tensor gfx = act(out_maps + e * out_w, &y);
        worst = fmax(worst, rel_gap(&gfx, &fgx));
        sl_tensor_release(&gx);
        sl_tensor_release(&fgx);
        sl_tensor_release(&gfx);
    }
    sl_tensor_release(&y);
    return worst;
}

static sl_tensor random_input(int ndim, const int64_t *shape, uint64_t seed)
{
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, ndim, shape));
    sl_rng r;
    sl_rng_seed(&r, seed);
    ck_assert_sl_ok(sl_tensor_normal(&x, &r, 0.0, 1.0));
    return x;
}

/* ---- gradient checks ------------------------------------------------------------ */

START_TEST(gradcheck_deepsets)
{
    GRAD("deepsets", "deepsets", "in_channels=3,out_channels=4", 2, 3, 5);
    GRAD("deepsets no bias", "deepsets", "in_channels=2,out_channels=3,bias=false", 3, 2, 4);
    GRAD("deepsets one element", "deepsets", "in_channels=2,out_channels=2", 2, 2, 1);
    GRAD("set_pool mean", "set_pool", "reduce=mean", 2, 3, 4);
    GRAD("set_pool sum", "set_pool", "reduce=sum", 2, 3, 4);
}
END_TEST

START_TEST(gradcheck_gconv)
{
    GRAD("gconv regular->regular", "gconv", "group=4,in_channels=2,out_channels=3", 2, 8);
    GRAD("gconv lift trivial->regular", "gconv",
         "group=5,in_channels=3,out_channels=2,in_rep=trivial", 2, 3);
    GRAD("gconv regular->trivial", "gconv",
         "group=4,in_channels=2,out_channels=3,out_rep=trivial", 2, 8);
    GRAD("gconv regular->quotient", "gconv",
         "group=6,in_channels=2,out_channels=2,out_rep=quotient,out_subgroup=2", 2, 12);
    GRAD("gconv quotient->regular", "gconv",
         "group=6,in_channels=2,out_channels=2,in_rep=quotient,in_subgroup=3,bias=false", 3, 4);
    GRAD("gconv quotient->quotient", "gconv",
         "group=6,in_channels=1,out_channels=2,in_rep=quotient,in_subgroup=2,"
         "out_rep=quotient,out_subgroup=3", 2, 3);
}
END_TEST

/* ---- exact equivariance -------------------------------------------------------- */

/* gconv on C_N from orbits of p to orbits of q, every r^k. */
static double gconv_equivariance(const char *text, int64_t N, int64_t cin, int64_t p,
                                 int64_t cout, int64_t q, uint64_t seed)
{
    sl_model *m = one_module("gconv", text, seed);
    int64_t in_w = cin * p, out_w = cout * q;
    int64_t *in_maps = malloc((size_t)(N * in_w) * sizeof *in_maps);
    int64_t *out_maps = malloc((size_t)(N * out_w) * sizeof *out_maps);
    for (int64_t k = 0; k < N; k++) {
        cyclic_map(k, cin, p, in_maps + k * in_w);
        cyclic_map(k, cout, q, out_maps + k * out_w);
    }
    sl_tensor x = random_input(2, SHAPE(3, in_w), seed + 1);
    double err = equivariance_error(m, &x, N, in_maps, in_w, out_maps, out_w);
    printf("equivariance gconv %s: max rel err %.2e over %lld elements\n", text, err,
           (long long)N);
    sl_tensor_release(&x);
    free(in_maps);
    free(out_maps);
    sl_model_free(m);
    return err;
}

START_TEST(gconv_equivariant_every_element)
{
    const double tol = 1e-12;
    ck_assert_double_le(gconv_equivariance("group=4,in_channels=2,out_channels=3", 4, 2, 4, 3,
                                           4, 1), tol);
    ck_assert_double_le(gconv_equivariance("group=6,in_channels=1,out_channels=2,in_rep=trivial",
                                           6, 1, 1, 2, 6, 2), tol);
    ck_assert_double_le(gconv_equivariance("group=6,in_channels=2,out_channels=3,out_rep=trivial",
                                           6, 2, 6, 3, 1, 3), tol);
    ck_assert_double_le(gconv_equivariance("group=6,in_channels=2,out_channels=2,"
                                           "out_rep=quotient,out_subgroup=2",
                                           6, 2, 6, 2, 3, 4), tol);
    ck_assert_double_le(gconv_equivariance("group=6,in_channels=2,out_channels=2,"
                                           "in_rep=quotient,in_subgroup=3",
                                           6, 2, 2, 2, 6, 5), tol);
    ck_assert_double_le(gconv_equivariance("group=6,in_channels=2,out_channels=3,"
                                           "in_rep=quotient,in_subgroup=2,out_rep=quotient,"
                                           "out_subgroup=3",
                                           6, 2, 3, 3, 2, 6), tol);
    ck_assert_double_le(gconv_equivariance("group=8,in_channels=1,out_channels=2,"
                                           "in_rep=quotient,in_subgroup=2,out_rep=quotient,"
                                           "out_subgroup=4",
                                           8, 1, 4, 2, 2, 7), tol);
}
END_TEST

/* deepsets and set_pool on sets of n = 4: all 24 elements of S_4. */
START_TEST(deepsets_equivariant_every_element)
{
    const int64_t n = 4, cin = 3, cout = 2, nperm = 24;
    int64_t *in_maps = malloc((size_t)(nperm * cin * n) * sizeof *in_maps);
    int64_t *out_maps = malloc((size_t)(nperm * cout * n) * sizeof *out_maps);
    int64_t *pool_maps = malloc((size_t)(nperm * cin) * sizeof *pool_maps);
    for (int64_t e = 0; e < nperm; e++) {
        int64_t sigma[4];
        nth_permutation(e, n, sigma);
        set_map(sigma, cin, n, in_maps + e * cin * n);
        set_map(sigma, cout, n, out_maps + e * cout * n);
        for (int64_t c = 0; c < cin; c++) /* invariance: the identity on outputs */
            pool_maps[e * cin + c] = c;
    }
    sl_tensor x = random_input(3, SHAPE(3, cin, n), 11);
    sl_model *m = one_module("deepsets", "in_channels=3,out_channels=2", 12);
    double err = equivariance_error(m, &x, nperm, in_maps, cin * n, out_maps, cout * n);
    printf("equivariance deepsets: max rel err %.2e over %lld elements\n", err, (long long)nperm);
    ck_assert_double_le(err, 1e-12);
    sl_model_free(m);
    const char *reduce[] = {"reduce=sum", "reduce=mean"};
    for (int r = 0; r < 2; r++) {
        m = one_module("set_pool", reduce[r], 13);
        err = equivariance_error(m, &x, nperm, in_maps, cin * n, pool_maps, cin);
        ck_assert_double_le(err, 1e-12);
        sl_model_free(m);
    }
    sl_tensor_release(&x);
    free(in_maps);
    free(out_maps);
    free(pool_maps);
}
END_TEST

/* The check can fail: a generic dense layer is not equivariant. */
START_TEST(dense_layer_is_not_equivariant)
{
    const int64_t N = 4, c = 2, w = N * c;
    int64_t maps[4 * 8];
    for (int64_t k = 0; k < N; k++)
        cyclic_map(k, c, N, maps + k * w);
    sl_model *m = one_module("linear", "in_features=8,out_features=8", 21);
    sl_tensor x = random_input(2, SHAPE(3, w), 22);
    double err = equivariance_error(m, &x, N, maps, w, maps, w);
    ck_assert_msg(err > 1e-3, "a random linear layer passed as equivariant (%g)", err);
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

/* ---- the dense matrix a layer computes ------------------------------------------ */

/* W (out_w, in_w) and b (out_w) of an affine one-module model read off its
 * outputs: f(0) = b, f(e_j) - f(0) = W[:, j].  x_shape's first entry is
 * replaced by the batch of in_w + 1 rows. */
static void dense_by_basis(sl_model *m, int ndim, const int64_t *x_shape, int64_t in_w,
                           int64_t out_w, double *W, double *b)
{
    int64_t shape[SL_MAX_DIMS];
    for (int i = 0; i < ndim; i++)
        shape[i] = x_shape[i];
    shape[0] = in_w + 1;
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, ndim, shape));
    for (int64_t j = 0; j < in_w; j++)
        ((double *)x.data)[j * in_w + j] = 1.0; /* row in_w stays 0 */
    sl_tensor y = run(m, &x);
    const double *Y = y.data;
    for (int64_t r = 0; r < out_w; r++) {
        b[r] = Y[in_w * out_w + r];
        for (int64_t j = 0; j < in_w; j++)
            W[r * in_w + j] = Y[j * out_w + r] - b[r];
    }
    sl_tensor_release(&y);
    sl_tensor_release(&x);
}

static double param(sl_model *m, const char *name, const int64_t *idx)
{
    int i = sl_model_find_param(m, name);
    ck_assert_int_ge(i, 0);
    return sl_tensor_get(sl_model_param(m, i), idx);
}

START_TEST(gconv_dense_equivalent)
{
    /* C_6, 2 channels regular (p = 6) -> 3 channels on C_6/C_2 (q = 3): d = 3 */
    const int64_t cin = 2, p = 6, cout = 3, q = 3, d = 3, in_w = cin * p, out_w = cout * q;
    sl_model *m = one_module("gconv", "group=6,in_channels=2,out_channels=3,out_rep=quotient,"
                                      "out_subgroup=2", 31);
    ck_assert_int_eq(sl_model_numel(m), cout * cin * d + cout);
    double W[9 * 12], b[9], gap = 0;
    dense_by_basis(m, 2, SHAPE(1, in_w), in_w, out_w, W, b);
    for (int64_t o = 0; o < cout; o++)
        for (int64_t bb = 0; bb < q; bb++) {
            gap = fmax(gap, fabs(b[o * q + bb] - param(m, "0.bias", (int64_t[]){o})));
            for (int64_t c = 0; c < cin; c++)
                for (int64_t a = 0; a < p; a++) {
                    int64_t t = ((bb - a) % d + d) % d;
                    double want = param(m, "0.weight", (int64_t[]){o, c, t});
                    gap = fmax(gap, fabs(W[(o * q + bb) * in_w + c * p + a] - want));
                }
        }
    ck_assert_double_le(gap, 1e-12);
    sl_model_free(m);
}
END_TEST

START_TEST(deepsets_dense_equivalent)
{
    const int64_t cin = 2, cout = 3, n = 4, in_w = cin * n, out_w = cout * n;
    sl_model *m = one_module("deepsets", "in_channels=2,out_channels=3", 32);
    ck_assert_int_eq(sl_model_numel(m), 2 * cout * cin + cout);
    double W[12 * 8], b[12], gap = 0;
    dense_by_basis(m, 3, SHAPE(1, cin, n), in_w, out_w, W, b);
    /* Y = X Λ + (1/n) 1 1ᵀ X Γ + 1 βᵀ, with weight[o, 0, c] = Λ[c, o], weight[o, 1, c] = Γ[c, o] */
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < n; i++) {
            gap = fmax(gap, fabs(b[o * n + i] - param(m, "0.bias", (int64_t[]){o})));
            for (int64_t c = 0; c < cin; c++)
                for (int64_t j = 0; j < n; j++) {
                    double want = (i == j ? param(m, "0.weight", (int64_t[]){o, 0, c}) : 0.0) +
                                  param(m, "0.weight", (int64_t[]){o, 1, c}) / (double)n;
                    gap = fmax(gap, fabs(W[(o * n + i) * in_w + c * n + j] - want));
                }
        }
    ck_assert_double_le(gap, 1e-12);
    sl_model_free(m);
}
END_TEST

/* ---- options and shapes ---------------------------------------------------------- */

static int add_gconv(const char *text)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *o = sl_test_options(text);
    int rc = sl_model_add(m, "gconv", o);
    sl_options_free(o);
    sl_model_free(m);
    return rc;
}

START_TEST(bad_options_are_errors)
{
    ck_assert_sl_fails(add_gconv("group=6,in_channels=1,out_channels=1,in_rep=quotient"),
                       SL_EINVAL, "in_subgroup");
    ck_assert_sl_fails(add_gconv("group=6,in_channels=1,out_channels=1,out_rep=quotient,"
                                 "out_subgroup=4"),
                       SL_EINVAL, "out_subgroup must divide group=6");
    ck_assert_sl_fails(add_gconv("group=6,in_channels=1,out_channels=1,in_subgroup=2"),
                       SL_EINVAL, "in_rep=quotient");
    ck_assert_sl_fails(add_gconv("group=0,in_channels=1,out_channels=1"), SL_EINVAL, "group");
    ck_assert_sl_fails(add_gconv("group=4,in_channels=1,out_channels=1,in_rep=standard"),
                       SL_EINVAL, "in_rep");
    sl_model *m = one_module("gconv", "group=4,in_channels=2,out_channels=1", 1);
    int64_t out[SL_MAX_DIMS];
    int nd;
    ck_assert_sl_fails(sl_model_output_shape(m, 2, SHAPE(5, 6), &nd, out), SL_ESHAPE,
                       "expected input (B, 8)");
    sl_model_free(m);
    m = one_module("deepsets", "in_channels=2,out_channels=1", 1);
    ck_assert_sl_fails(sl_model_output_shape(m, 2, SHAPE(5, 2), &nd, out), SL_ESHAPE,
                       "expected input (B, 2, n)");
    sl_model_free(m);
}
END_TEST

/* ---- the structure walker's view ---------------------------------------------------- */

/* Hidden layers have `units` channels each; permuting every one (a cycle,
 * shuffled) moves the parameters and keeps the function to 1e-12. */
static void check_hidden_channels(const char *const *spec, int ndim, const int64_t *xshape,
                                  const int64_t *units, int nhidden)
{
    sl_model *m = stack(spec, 40), *p;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &p));
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(m, &s));
    ck_assert_int_eq(sl_structure_nhidden(s), nhidden);
    sl_rng r;
    sl_rng_seed(&r, 41);
    for (int h = 0; h < nhidden; h++) {
        const sl_hidden_layer *H = sl_structure_hidden(s, h);
        ck_assert_int_eq(H->units, units[h]);
        ck_assert_uint_eq(H->symmetry & SL_SYM_RESCALE, SL_SYM_RESCALE); /* relu between */
        int64_t perm[16];
        for (int64_t j = 0; j < H->units; j++)
            perm[j] = (j + 1) % H->units;
        sl_rng_shuffle(&r, perm, H->units);
        ck_assert_sl_ok(sl_structure_permute(p, s, h, perm));
    }
    double moved = 0;
    for (int64_t i = 0; i < sl_model_numel(m); i++)
        moved = fmax(moved, fabs(sl_tensor_flat_get(sl_model_flat_params(m), i) -
                                 sl_tensor_flat_get(sl_model_flat_params(p), i)));
    ck_assert_msg(moved > 1e-3, "the permutation moved nothing (%g)", moved);
    sl_tensor x = random_input(ndim, xshape, 42);
    sl_tensor ya = run(m, &x), yb = run(p, &x);
    double gap = rel_gap(&ya, &yb);
    ck_assert_msg(gap < 1e-12, "outputs differ by %.3e after permuting channels", gap);
    sl_tensor_release(&ya);
    sl_tensor_release(&yb);
    sl_tensor_release(&x);
    sl_structure_free(s);
    sl_model_free(p);
    sl_model_free(m);
}

START_TEST(gconv_network_structure)
{
    /* C_4 on R^4: lift the regular input (1 channel) to 3 regular channels,
     * then 2 channels on C_4/C_2, then an invariant readout and a linear head. */
    const char *const spec[] = {
        "gconv", "group=4,in_channels=1,out_channels=3", "relu", "-",
        "gconv", "group=4,in_channels=3,out_channels=2,out_rep=quotient,out_subgroup=2",
        "relu", "-",
        "gconv", "group=4,in_channels=2,out_channels=4,in_rep=quotient,in_subgroup=2,"
                 "out_rep=trivial", "relu", "-",
        "linear", "in_features=4,out_features=2", NULL};
    check_hidden_channels(spec, 2, SHAPE(3, 4), (const int64_t[]){3, 2, 4}, 3);
}
END_TEST

START_TEST(deepsets_network_structure)
{
    const char *const spec[] = {"deepsets", "in_channels=2,out_channels=5", "relu", "-",
                                "deepsets", "in_channels=5,out_channels=3", "relu", "-",
                                "set_pool", "reduce=sum", "linear",
                                "in_features=3,out_features=2", NULL};
    check_hidden_channels(spec, 3, SHAPE(3, 2, 4), (const int64_t[]){5, 3}, 2);
}
END_TEST

/* rows x in_w inputs N(0, 1) and rows x out_w targets N(0, 1), f32 as data
 * come. */
static sl_dataset regression_data(int64_t rows, int ndim, const int64_t *x_shape, int64_t out_w,
                                  uint64_t seed)
{
    sl_dataset d = {0};
    int64_t shape[SL_MAX_DIMS];
    memcpy(shape, x_shape, (size_t)ndim * sizeof *shape);
    shape[0] = rows;
    sl_rng r;
    sl_rng_seed(&r, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&d.x, SL_F32, ndim, shape));
    ck_assert_sl_ok(sl_tensor_normal(&d.x, &r, 0.0, 1.0));
    ck_assert_sl_ok(sl_tensor_alloc(&d.y, SL_F32, 2, SHAPE(rows, out_w)));
    ck_assert_sl_ok(sl_tensor_normal(&d.y, &r, 0.0, 1.0));
    return d;
}

/* The channels-on-axis-1 form (B, c, p) computes the same numbers as (B, c * p). */
START_TEST(gconv_three_d_layout)
{
    sl_model *m = one_module("gconv", "group=6,in_channels=2,out_channels=3,out_rep=quotient,"
                                      "out_subgroup=3", 60);
    sl_tensor x3 = random_input(3, SHAPE(4, 2, 6), 61), x2 = {0};
    ck_assert_sl_ok(sl_tensor_reshape(&x3, 2, SHAPE(4, 12), &x2));
    sl_tensor y3 = run(m, &x3), y2 = run(m, &x2);
    ck_assert_int_eq(y3.ndim, 3);
    ck_assert_int_eq(y3.shape[1], 3);
    ck_assert_int_eq(y3.shape[2], 2);
    ck_assert_int_eq(y2.ndim, 2);
    ck_assert_int_eq(y2.shape[1], 6);
    for (int64_t i = 0; i < 24; i++)
        ck_assert(sl_tensor_flat_get(&y3, i) == sl_tensor_flat_get(&y2, i));
    sl_tensor_release(&y2);
    sl_tensor_release(&y3);
    sl_tensor_release(&x2);
    sl_tensor_release(&x3);
    sl_model_free(m);
}
END_TEST

/* The symmetry probes read a gconv network through the walker: dead
 * channels (one killed by a large negative bias) and the rescaling
 * quantity Q_j = |row j of layer 0, every tap, and its bias|² − |column j
 * of layer 1, every tap|², computed here by loops. */
START_TEST(symmetry_probes_on_gconv)
{
    const char *const spec[] = {"gconv", "group=4,in_channels=1,out_channels=3", "relu", "-",
                                "gconv", "group=4,in_channels=3,out_channels=2,out_rep=trivial",
                                NULL};
    sl_model *m = stack(spec, 62);
    const int b0 = sl_model_find_param(m, "0.bias");
    sl_tensor_set(sl_model_param(m, b0), (int64_t[]){1}, -100.0); /* channel 1 never fires */
    sl_dataset d = regression_data(16, 3, SHAPE(1, 1, 4), 2, 63);
    sl_record *r = sl_record_new();
    ck_assert_sl_ok(sl_probe_run("symmetry_metrics", NULL, m, &d, r));
    double v;
    ck_assert_sl_ok(sl_record_get(r, "0.units", &v));
    ck_assert_double_eq(v, 3);
    ck_assert_sl_ok(sl_record_get(r, "0.dead_fraction", &v));
    ck_assert_double_eq_tol(v, 1.0 / 3.0, 1e-15);
    sl_record_clear(r);
    ck_assert_sl_ok(sl_probe_run("conserved", NULL, m, &d, r));
    const sl_tensor *w0 = sl_model_param(m, sl_model_find_param(m, "0.weight"));
    const sl_tensor *w1 = sl_model_param(m, sl_model_find_param(m, "2.weight"));
    double l2 = 0;
    for (int64_t j = 0; j < 3; j++) {
        double q = pow(sl_tensor_get(sl_model_param(m, b0), (int64_t[]){j}), 2);
        for (int64_t t = 0; t < 4; t++)
            q += pow(sl_tensor_get(w0, (int64_t[]){j, 0, t}), 2);
        for (int64_t o = 0; o < 2; o++)
            q -= pow(sl_tensor_get(w1, (int64_t[]){o, j, 0}), 2);
        l2 += q * q;
    }
    ck_assert_sl_ok(sl_record_get(r, "Q0_l2", &v));
    ck_assert_double_eq_tol(v, sqrt(l2), 1e-12 * fmax(1.0, v));
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* ---- relaxed_gconv and relaxation (sl_model_relax) -------------------------------------- */

START_TEST(gradcheck_relaxed_gconv)
{
    GRAD("relaxed_gconv regular->regular", "relaxed_gconv",
         "group=4,in_channels=2,out_channels=3,banks=3,mix_init=random", 2, 8);
    GRAD("relaxed_gconv lift", "relaxed_gconv",
         "group=5,in_channels=3,out_channels=2,in_rep=trivial,mix_init=random", 2, 3);
    GRAD("relaxed_gconv regular->trivial", "relaxed_gconv",
         "group=4,in_channels=2,out_channels=2,out_rep=trivial,mix_init=random", 2, 8);
    GRAD("relaxed_gconv regular->quotient no bias", "relaxed_gconv",
         "group=6,in_channels=2,out_channels=2,out_rep=quotient,out_subgroup=2,bias=false", 2,
         12);
    GRAD("relaxed_gconv (B, c, p)", "relaxed_gconv",
         "group=4,in_channels=2,out_channels=1,banks=2,mix_init=random", 2, 2, 4);
}
END_TEST

/* relaxed_gconv on C_N with `text`, its parameters generic (stack()); with
 * `equal`, every bank's mixing weight is then made the same at every group
 * element (a different constant per bank).  The largest error over every r^k. */
static double relaxed_equivariance(const char *text, bool equal, int64_t N, int64_t cin,
                                   int64_t p, int64_t cout, int64_t q, uint64_t seed)
{
    sl_model *m = one_module("relaxed_gconv", text, seed);
    if (equal) {
        sl_tensor *mix = sl_model_param(m, sl_model_find_param(m, "0.mix"));
        for (int64_t l = 0; l < mix->shape[0]; l++)
            for (int64_t h = 0; h < mix->shape[1]; h++)
                sl_tensor_set(mix, (int64_t[]){l, h}, 0.3 + 0.25 * (double)l);
    }
    int64_t in_w = cin * p, out_w = cout * q;
    int64_t *in_maps = malloc((size_t)(N * in_w) * sizeof *in_maps);
    int64_t *out_maps = malloc((size_t)(N * out_w) * sizeof *out_maps);
    for (int64_t k = 0; k < N; k++) {
        cyclic_map(k, cin, p, in_maps + k * in_w);
        cyclic_map(k, cout, q, out_maps + k * out_w);
    }
    sl_tensor x = random_input(2, SHAPE(3, in_w), seed + 1);
    double err = equivariance_error(m, &x, N, in_maps, in_w, out_maps, out_w);
    printf("equivariance relaxed_gconv %s, %s mix: max rel err %.2e over %lld elements\n", text,
           equal ? "equal" : "generic", err, (long long)N);
    sl_tensor_release(&x);
    free(in_maps);
    free(out_maps);
    sl_model_free(m);
    return err;
}

START_TEST(relaxed_gconv_equivariant_with_equal_mix_only)
{
    static const struct {
        const char *text;
        int64_t N, cin, p, cout, q;
    } cases[] = {
        {"group=4,in_channels=2,out_channels=3,banks=3", 4, 2, 4, 3, 4},
        {"group=6,in_channels=2,out_channels=2,in_rep=trivial,banks=2", 6, 2, 1, 2, 6},
        {"group=6,in_channels=2,out_channels=2,out_rep=quotient,out_subgroup=2", 6, 2, 6, 2, 3},
        {"group=6,in_channels=1,out_channels=2,in_rep=quotient,in_subgroup=3,banks=2", 6, 1, 2,
         2, 6},
        {"group=4,in_channels=2,out_channels=2,out_rep=trivial,banks=2", 4, 2, 4, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int64_t N = cases[i].N, ci = cases[i].cin, p = cases[i].p, co = cases[i].cout,
                      q = cases[i].q;
        ck_assert_double_le(relaxed_equivariance(cases[i].text, true, N, ci, p, co, q, 80 + i),
                            1e-12);
        double err = relaxed_equivariance(cases[i].text, false, N, ci, p, co, q, 90 + i);
        ck_assert_msg(err > 1e-3, "generic mix passed as equivariant (%g): %s", err,
                      cases[i].text);
    }
}
END_TEST

/* One bank mixed with weight 1 everywhere is gconv with that bank's taps;
 * and the parameter count is c_out c_in L d + c_out + L s. */
START_TEST(relaxed_gconv_one_bank_is_gconv)
{
    const char *opts = "group=6,in_channels=2,out_channels=3,out_rep=quotient,out_subgroup=2";
    char text[160];
    snprintf(text, sizeof text, "%s,banks=1", opts);
    sl_model *r = one_module("relaxed_gconv", text, 100), *g = one_module("gconv", opts, 101);
    ck_assert_int_eq(sl_model_numel(r), 3 * 2 * 1 * 3 + 3 + 1 * 6);
    sl_tensor_fill(sl_model_param(r, sl_model_find_param(r, "0.mix")), 1.0);
    const sl_tensor *rw = sl_model_param(r, 0);
    ck_assert_int_eq(sl_tensor_numel(rw), sl_tensor_numel(sl_model_param(g, 0)));
    for (int64_t i = 0; i < sl_tensor_numel(rw); i++)
        sl_tensor_set(sl_model_param(g, 0), (int64_t[]){i / 3 / 2, i / 3 % 2, i % 3},
                      sl_tensor_flat_get(rw, i));
    ck_assert_sl_ok(sl_tensor_copy(sl_model_param(g, 1), sl_model_param(r, 1)));
    sl_tensor x = random_input(2, SHAPE(4, 12), 102);
    sl_tensor yr = run(r, &x), yg = run(g, &x);
    ck_assert_double_le(rel_gap(&yr, &yg), 1e-14);
    sl_model *eq = one_module("relaxed_gconv", "group=4,in_channels=3,out_channels=2,banks=3,"
                                               "in_rep=trivial", 103);
    ck_assert_int_eq(sl_model_numel(eq), 2 * 3 * 3 * 1 + 2 + 3 * 4);
    sl_tensor_release(&x);
    sl_tensor_release(&yr);
    sl_tensor_release(&yg);
    sl_model_free(eq);
    sl_model_free(g);
    sl_model_free(r);
}
END_TEST

START_TEST(relaxed_gconv_network_structure)
{
    const char *const spec[] = {
        "relaxed_gconv", "group=4,in_channels=1,out_channels=3,banks=2", "relu", "-",
        "relaxed_gconv", "group=4,in_channels=3,out_channels=4,banks=3,out_rep=quotient,"
                         "out_subgroup=2", "relu", "-",
        "relaxed_gconv", "group=4,in_channels=4,out_channels=2,in_rep=quotient,in_subgroup=2,"
                         "out_rep=trivial", NULL};
    check_hidden_channels(spec, 2, SHAPE(3, 4), (const int64_t[]){3, 4}, 2);
}
END_TEST

/* m relaxed (residual or not) with the given input shape; its output on a
 * random batch equals m's to 1e-12, and no module of the result declares a
 * relaxation (unless residual, where the originals sit in the bodies). */
static sl_model *relaxed(sl_model *m, bool residual, int ndim, const int64_t *shape,
                         uint64_t seed)
{
    sl_relax_options o = {.residual = residual, .ndim = ndim};
    memcpy(o.shape, shape, (size_t)ndim * sizeof *shape);
    sl_model *r;
    ck_assert_sl_ok(sl_model_relax(m, &o, &r));
    int64_t batch[SL_MAX_DIMS];
    memcpy(batch, shape, (size_t)ndim * sizeof *shape);
    batch[0] = 5;
    sl_tensor x = random_input(ndim, batch, seed);
    sl_tensor ya = run(m, &x), yb = run(r, &x);
    double gap = rel_gap(&ya, &yb);
    printf("relax%s: %lld -> %lld parameters, outputs differ by %.2e\n",
           residual ? " (residual)" : "", (long long)sl_model_numel(m),
           (long long)sl_model_numel(r), gap);
    ck_assert_msg(gap <= 1e-12, "relaxed outputs differ by %.3e", gap);
    sl_tensor_release(&ya);
    sl_tensor_release(&yb);
    sl_tensor_release(&x);
    return r;
}

static bool has_param(sl_model *m, const char *name) { return sl_model_find_param(m, name) >= 0; }

START_TEST(relax_mlp_like)
{
    const char *const spec[] = {
        "gconv", "group=4,in_channels=1,out_channels=3", "relu", "-",
        "gconv_mixed", "group=4,in_reps=regular*3,out_reps=regular+q2*2", "tanh", "-",
        "relaxed_gconv", "group=4,in_channels=8,out_channels=2,in_rep=trivial,banks=2", "tanh",
        "-", "linear", "in_features=8,out_features=2", NULL};
    sl_model *m = stack(spec, 110);
    sl_model *r = relaxed(m, false, 2, SHAPE(1, 4), 111);
    /* every equivariant layer is now a linear layer of the dense size */
    ck_assert_str_eq(sl_module_type_of(sl_model_module(r, 0))->name, "linear");
    ck_assert_str_eq(sl_module_type_of(sl_model_module(r, 2))->name, "linear");
    ck_assert_str_eq(sl_module_type_of(sl_model_module(r, 4))->name, "linear");
    ck_assert_int_eq(sl_model_numel(r), (12 * 4 + 12) + (8 * 12 + 8) + (8 * 8 + 8) + 18);
    /* the dense model's hidden layers are its features, permutable one by one */
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(r, &s));
    ck_assert_int_eq(sl_structure_nhidden(s), 3);
    ck_assert_int_eq(sl_structure_hidden(s, 0)->units, 12);
    sl_structure_free(s);
    /* the last linear was copied with its parameters, not re-drawn */
    ck_assert(sl_tensor_flat_get(sl_model_param(r, sl_model_find_param(r, "6.weight")), 3) ==
              sl_tensor_flat_get(sl_model_param(m, sl_model_find_param(m, "6.weight")), 3));
    sl_model *res = relaxed(m, true, 2, SHAPE(1, 4), 112);
    ck_assert(has_param(res, "0.body.0.weight") && has_param(res, "0.shortcut.0.weight"));
    ck_assert(has_param(res, "4.body.0.mix"));
    for (int i = 0; i < sl_model_nparams(res); i++)
        if (strstr(sl_model_param_name(res, i), "shortcut")) {
            const sl_tensor *t = sl_model_param(res, i);
            for (int64_t j = 0; j < sl_tensor_numel(t); j++)
                ck_assert(sl_tensor_flat_get(t, j) == 0.0);
        }
    sl_model_free(res);
    sl_model_free(r);
    sl_model_free(m);
}
END_TEST

/* Containers, the (B, c, p) layout, sets and images: replacements keep every
 * shape, so the modules around them (set_pool, p4pool) work unchanged. */
START_TEST(relax_containers_sets_images)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *o = sl_test_options("group=4,in_channels=2,out_channels=2");
    ck_assert_sl_ok(sl_model_add(m, "gconv", o));
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    ck_assert_sl_ok(sl_model_add(m, "gconv", o));
    ck_assert_sl_ok(sl_model_branch(m, "shortcut"));
    ck_assert_sl_ok(sl_model_begin(m, "sequential", NULL));
    ck_assert_sl_ok(sl_model_add(m, "relaxed_gconv", o));
    ck_assert_sl_ok(sl_model_end(m));
    ck_assert_sl_ok(sl_model_end(m));
    sl_options_free(o);
    o = sl_test_options("group=4,in_channels=2,out_channels=1,out_rep=trivial");
    ck_assert_sl_ok(sl_model_add(m, "gconv", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_build(m, 120));
    sl_rng rng;
    sl_rng_seed(&rng, 121);
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &rng, 0.0, 0.5));
    sl_model *r = relaxed(m, false, 3, SHAPE(1, 2, 4), 122);
    ck_assert(has_param(r, "1.body.1.1.weight"));     /* reshape, linear, reshape */
    ck_assert(has_param(r, "1.shortcut.0.0.1.weight"));
    sl_model_free(r);
    r = relaxed(m, true, 3, SHAPE(1, 2, 4), 123);
    sl_model_free(r);
    sl_model_free(m);

    const char *const sets[] = {"deepsets", "in_channels=2,out_channels=3", "relu", "-",
                                "deepsets", "in_channels=3,out_channels=2,bias=false",
                                "set_pool", "reduce=mean", NULL};
    m = stack(sets, 124);
    r = relaxed(m, false, 3, SHAPE(1, 2, 5), 125);
    ck_assert_int_eq(sl_model_numel(r), (15 * 10 + 15) + 10 * 15);
    sl_model_free(r);
    r = relaxed(m, true, 3, SHAPE(1, 2, 5), 126);
    sl_model_free(r);
    sl_model_free(m);

    const char *const images[] = {"p4conv", "input=z2,in_channels=1,out_channels=2", "relu", "-",
                                  "p4conv", "in_channels=2,out_channels=2,kernel_size=5",
                                  "p4pool", "reduce=max", NULL};
    m = stack(images, 127);
    r = relaxed(m, false, 4, SHAPE(1, 1, 6, 6), 128);
    ck_assert_str_eq(sl_module_type_of(sl_model_find_module(r, "0.0"))->name, "conv2d");
    ck_assert_str_eq(sl_module_type_of(sl_model_find_module(r, "2.1"))->name, "conv2d");
    sl_model_free(r);
    sl_model_free(m);
}
END_TEST

/* Relaxed, the model trains as a dense one: a gradient step on the dense
 * weights leaves the equivariant subspace (the relaxed model stops being
 * invariant), and the residual form's φ and W_free both get gradients. */
START_TEST(relax_keeps_training)
{
    const char *const spec[] = {"gconv", "group=4,in_channels=1,out_channels=3", "tanh", "-",
                                "gconv", "group=4,in_channels=3,out_channels=1,out_rep=trivial",
                                NULL};
    sl_model *m = stack(spec, 130);
    for (int residual = 0; residual < 2; residual++) {
        sl_model *r = relaxed(m, residual, 2, SHAPE(1, 4), 131);
        sl_tensor x = random_input(2, SHAPE(6, 4), 132);
        const sl_tensor *y;
        ck_assert_sl_ok(sl_model_forward(r, &x, &y));
        sl_tensor g = random_input(2, SHAPE(6, 1), 133);
        sl_model_zero_grad(r);
        ck_assert_sl_ok(sl_model_backward(r, &g));
        for (int i = 0; i < sl_model_nparams(r); i++) {
            double norm = 0;
            for (int64_t j = 0; j < sl_tensor_numel(sl_model_grad(r, i)); j++)
                norm += fabs(sl_tensor_flat_get(sl_model_grad(r, i), j));
            ck_assert_msg(norm > 0, "no gradient reaches %s", sl_model_param_name(r, i));
        }
        /* one plain gradient step, then the invariance error under r^1 */
        sl_tensor *p = sl_model_flat_params(r);
        for (int64_t j = 0; j < sl_tensor_numel(p); j++)
            sl_tensor_set(p, (int64_t[]){j},
                          sl_tensor_flat_get(p, j) -
                              0.5 * sl_tensor_flat_get(sl_model_flat_grads(r), j));
        int64_t maps[2 * 4];
        cyclic_map(0, 1, 4, maps);
        cyclic_map(1, 1, 4, maps + 4);
        double err = equivariance_error(r, &x, 2, maps, 4, (const int64_t[]){0, 0}, 1);
        ck_assert_msg(err > 1e-6, "the relaxed model stayed invariant (%g)", err);
        sl_tensor_release(&g);
        sl_tensor_release(&x);
        sl_model_free(r);
    }
    sl_model_free(m);
}
END_TEST

START_TEST(relax_errors)
{
    sl_model *m = one_module("gconv", "group=4,in_channels=1,out_channels=1", 140);
    sl_model *r = NULL;
    ck_assert_sl_fails(sl_model_relax(m, NULL, &r), SL_ESTATE, "no input shape");
    sl_relax_options o = {.ndim = 2, .shape = {1, 5}};
    ck_assert_sl_fails(sl_model_relax(m, &o, &r), SL_ESHAPE, "expected input (B, 4)");
    /* after a forward, its shape is the default */
    sl_tensor x = random_input(2, SHAPE(2, 4), 141);
    sl_tensor y = run(m, &x);
    ck_assert_sl_ok(sl_model_relax(m, NULL, &r));
    sl_model_free(r);
    sl_tensor_release(&y);
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

/* A third-party layer, y = 2 x on (B, n), that declares its dense form
 * (`linear` with W = 2 I, no bias): relaxation needs nothing but the
 * declaration.  The same callbacks in a descriptor of ABI minor 2, from
 * before `relax` existed, must not be read. */
static int twice_create(sl_module *m, const sl_options *opt) { return SL_OK; }
static int twice_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    if (ndim != 2)
        return sl_error(SL_ESHAPE, "twice: expected (B, n)");
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = in[1];
    return SL_OK;
}
static int twice_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    for (int64_t i = 0; i < sl_tensor_numel(in); i++)
        ((double *)out->data)[i] = 2 * ((const double *)in->data)[i];
    return SL_OK;
}
static int twice_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                          const sl_tensor *grad_out, sl_tensor *grad_in)
{
    return grad_in ? twice_forward(m, grad_out, grad_in) : SL_OK;
}
static int twice_relax(sl_module *m, int ndim, const int64_t *in, sl_relax *r)
{
    sl_options *o = sl_test_options(NULL);
    sl_options_set_int(o, "in_features", in[1]);
    sl_options_set_int(o, "out_features", in[1]);
    sl_options_set_bool(o, "bias", false);
    int rc = sl_relax_add(r, "linear", o);
    sl_options_free(o);
    sl_tensor W = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&W, SL_F64, 2, (int64_t[]){in[1], in[1]}));
    for (int64_t i = 0; i < in[1]; i++)
        sl_tensor_set(&W, (int64_t[]){i, i}, 2.0);
    if (rc >= 0)
        rc = sl_relax_set(r, "weight", &W);
    sl_tensor_release(&W);
    return rc;
}
#define TWICE(label)                                                                         \
    {.name = label, .summary = "test: y = 2 x", .create = twice_create,                     \
     .output_shape = twice_shape, .forward = twice_forward, .backward = twice_backward,     \
     .relax = twice_relax}
static const sl_module_type twice = TWICE("twice"), twice_old = TWICE("twice_old");
static const sl_module_type *const twice_modules[] = {&twice, NULL};
static const sl_module_type *const twice_old_modules[] = {&twice_old, NULL};
static const sl_plugin twice_plugin = {SL_PLUGIN_HEADER, .name = "twice", .version = "1",
                                       .summary = "test", .modules = twice_modules};
static const sl_plugin twice_old_plugin = {.abi_major = SL_ABI_MAJOR, .abi_minor = 2,
                                           .size = sizeof(sl_plugin), .name = "twice_old",
                                           .version = "1", .summary = "test: minor 2",
                                           .modules = twice_old_modules};

START_TEST(relax_is_declared_and_minor_gated)
{
    if (!sl_registry_find(SL_KIND_MODULE, "twice")) {
        ck_assert_sl_ok(sl_plugin_register(&twice_plugin, "test"));
        ck_assert_sl_ok(sl_plugin_register(&twice_old_plugin, "test"));
    }
    ck_assert(sl_module_type_relaxable(&twice));
    ck_assert(!sl_module_type_relaxable(&twice_old));
    const char *const spec[] = {"linear", "in_features=3,out_features=4", "twice", "-",
                                "twice_old", "-", NULL};
    sl_model *m = stack(spec, 150);
    sl_model *r = relaxed(m, false, 2, SHAPE(1, 3), 151);
    ck_assert_str_eq(sl_module_type_of(sl_model_module(r, 1))->name, "linear");
    ck_assert_str_eq(sl_module_type_of(sl_model_module(r, 2))->name, "twice_old");
    sl_model_free(r);
    sl_model_free(m);
}
END_TEST

static void relax_tcases(Suite *s)
{
    TCase *t = tcase_create("relax");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, gradcheck_relaxed_gconv);
    tcase_add_test(t, relaxed_gconv_equivariant_with_equal_mix_only);
    tcase_add_test(t, relaxed_gconv_one_bank_is_gconv);
    tcase_add_test(t, relaxed_gconv_network_structure);
    tcase_add_test(t, relax_mlp_like);
    tcase_add_test(t, relax_containers_sets_images);
    tcase_add_test(t, relax_keeps_training);
    tcase_add_test(t, relax_errors);
    tcase_add_test(t, relax_is_declared_and_minor_gated);
    suite_add_tcase(s, t);
}

/* ---- gconv_mixed: direct sums of representations -------------------------------------- */

/* r^k on blocks of (channels, orbit), laid one after another. */
static void mixed_map(int64_t k, int nblocks, const int64_t *channels, const int64_t *orbit,
                      int64_t *map)
{
    int64_t off = 0;
    for (int i = 0; i < nblocks; i++) {
        cyclic_map(k, channels[i], orbit[i], map + off);
        for (int64_t e = 0; e < channels[i] * orbit[i]; e++)
            map[off + e] += off;
        off += channels[i] * orbit[i];
    }
}

START_TEST(gradcheck_gconv_mixed)
{
    GRAD("gconv_mixed", "gconv_mixed",
         "group=4,in_reps=regular*2+q2+trivial,out_reps=q2*2+regular+trivial", 2, 11);
    GRAD("gconv_mixed no bias", "gconv_mixed",
         "group=6,in_reps=regular,out_reps=q3*2+q2,bias=false", 2, 6);
}
END_TEST

START_TEST(gconv_mixed_equivariant_every_element)
{
    const int64_t N = 6, ci[3] = {2, 1, 1}, pi[3] = {6, 3, 1}, co[3] = {1, 2, 1},
                  qo[3] = {2, 6, 3};
    const int64_t in_w = 2 * 6 + 3 + 1, out_w = 2 + 12 + 3;
    int64_t in_maps[6 * 16], out_maps[6 * 17];
    for (int64_t k = 0; k < N; k++) {
        mixed_map(k, 3, ci, pi, in_maps + k * in_w);
        mixed_map(k, 3, co, qo, out_maps + k * out_w);
    }
    sl_model *m = one_module("gconv_mixed",
                             "group=6,in_reps=regular*2+q2+trivial,out_reps=q3+regular*2+q2", 90);
    sl_tensor x = random_input(2, SHAPE(3, in_w), 91);
    double err = equivariance_error(m, &x, N, in_maps, in_w, out_maps, out_w);
    printf("equivariance gconv_mixed: max rel err %.2e over %lld elements\n", err, (long long)N);
    ck_assert_double_le(err, 1e-12);
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

/* With one block on each side it is gconv, parameter for parameter. */
START_TEST(gconv_mixed_single_block_is_gconv)
{
    sl_model *g = one_module("gconv", "group=6,in_channels=2,out_channels=3,out_rep=quotient,"
                                      "out_subgroup=2", 92);
    sl_model *m = one_module("gconv_mixed", "group=6,in_reps=regular*2,out_reps=q2*3", 93);
    ck_assert_int_eq(sl_model_numel(g), sl_model_numel(m));
    ck_assert_sl_ok(sl_tensor_copy(sl_model_flat_params(m), sl_model_flat_params(g)));
    sl_tensor x = random_input(2, SHAPE(4, 12), 94);
    sl_tensor yg = run(g, &x), ym = run(m, &x);
    ck_assert_double_le(rel_gap(&yg, &ym), 0.0);
    sl_tensor_release(&yg);
    sl_tensor_release(&ym);
    sl_tensor_release(&x);
    sl_model_free(m);
    sl_model_free(g);
}
END_TEST

static int add_mixed(const char *text)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *o = sl_test_options(text);
    int rc = sl_model_add(m, "gconv_mixed", o);
    sl_options_free(o);
    sl_model_free(m);
    return rc;
}

/* Opaque: channels of different blocks are not interchangeable, so no
 * hidden layer spans it; bad block lists are errors naming the option. */
START_TEST(gconv_mixed_is_opaque)
{
    const char *const spec[] = {"gconv", "group=4,in_channels=1,out_channels=2", "relu", "-",
                                "gconv_mixed", "group=4,in_reps=regular*2,out_reps=q2+regular",
                                "relu", "-",
                                "linear", "in_features=6,out_features=1", NULL};
    sl_model *m = stack(spec, 95);
    ck_assert_int_eq(sl_module_role_of(sl_model_module(m, 2))->kind, SL_ROLE_OPAQUE);
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(m, &s));
    ck_assert_int_eq(sl_structure_nhidden(s), 0);
    sl_structure_free(s);
    sl_model_free(m);
    ck_assert_sl_fails(add_mixed("group=6,in_reps=regular*0,out_reps=regular"), SL_EINVAL,
                       "in_reps: bad channel count");
    ck_assert_sl_fails(add_mixed("group=6,in_reps=regular,out_reps=q4"), SL_EINVAL,
                       "out_reps: 'q4'");
    ck_assert_sl_fails(add_mixed("group=6,in_reps=regular+,out_reps=regular"), SL_EINVAL,
                       "in_reps: empty");
}
END_TEST

/* ---- p4: rotations by 90° of square images ------------------------------------------ */

/* (R f)[i, j] = f[j, n - 1 - i] on the n x n planes of a sample of `planes`
 * planes, and with `p4`, planes grouped by 4 rotations whose index shifts
 * by one: (g y)[c, r] = R y[c, r - 1 mod 4].  map is for act(). */
static void rotation_map(int64_t planes, bool p4, int64_t n, int64_t *map)
{
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t src = p4 ? pl / 4 * 4 + (pl % 4 + 3) % 4 : pl;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++)
                map[(pl * n + i) * n + j] = (src * n + j) * n + (n - 1 - i);
    }
}

/* Equivariance of m under the 4 rotations, g^e the e-fold composite. */
static double rotation_error(sl_model *m, int ndim, const int64_t *xshape, int64_t in_planes,
                             bool in_p4, int64_t out_planes, bool out_p4, int64_t n)
{
    const int64_t in_w = in_planes * n * n, out_w = out_planes * n * n;
    int64_t *g_in = malloc((size_t)in_w * sizeof *g_in), *g_out = malloc((size_t)out_w * sizeof *g_out);
    int64_t *in_maps = malloc((size_t)(4 * in_w) * sizeof *in_maps);
    int64_t *out_maps = malloc((size_t)(4 * out_w) * sizeof *out_maps);
    rotation_map(in_planes, in_p4, n, g_in);
    rotation_map(out_planes, out_p4, n, g_out);
    for (int64_t i = 0; i < in_w; i++)
        in_maps[i] = i;
    for (int64_t i = 0; i < out_w; i++)
        out_maps[i] = i;
    for (int e = 1; e < 4; e++) { /* (g^e x)[i] = (g^(e-1) x)[g[i]] */
        for (int64_t i = 0; i < in_w; i++)
            in_maps[e * in_w + i] = in_maps[(e - 1) * in_w + g_in[i]];
        for (int64_t i = 0; i < out_w; i++)
            out_maps[e * out_w + i] = out_maps[(e - 1) * out_w + g_out[i]];
    }
    sl_tensor x = random_input(ndim, xshape, 70);
    double err = equivariance_error(m, &x, 4, in_maps, in_w, out_maps, out_w);
    sl_tensor_release(&x);
    free(g_in);
    free(g_out);
    free(in_maps);
    free(out_maps);
    return err;
}

START_TEST(gradcheck_p4)
{
    GRAD("p4conv lift", "p4conv", "input=z2,in_channels=2,out_channels=2", 2, 2, 4, 4);
    GRAD("p4conv p4", "p4conv", "in_channels=2,out_channels=1", 2, 2, 4, 3, 4);
    GRAD("p4conv 1x1 no bias", "p4conv", "in_channels=1,out_channels=2,kernel_size=1,bias=false",
         1, 1, 4, 3, 3);
    GRAD("p4conv lift 5x5", "p4conv", "input=z2,in_channels=1,out_channels=1,kernel_size=5", 1,
         1, 5, 5);
    GRAD("p4pool max", "p4pool", "reduce=max", 2, 2, 4, 3, 3);
    GRAD("p4pool mean", "p4pool", "reduce=mean", 2, 2, 4, 3, 3);
}
END_TEST

START_TEST(p4_equivariant_every_rotation)
{
    const int64_t n = 5;
    sl_model *m = one_module("p4conv", "input=z2,in_channels=2,out_channels=3", 71);
    double err = rotation_error(m, 4, SHAPE(2, 2, n, n), 2, false, 12, true, n);
    sl_model_free(m);
    m = one_module("p4conv", "in_channels=2,out_channels=2,kernel_size=3", 72);
    err = fmax(err, rotation_error(m, 5, SHAPE(2, 2, 4, n, n), 8, true, 8, true, n));
    sl_model_free(m);
    m = one_module("p4pool", "reduce=max", 73);
    err = fmax(err, rotation_error(m, 5, SHAPE(2, 3, 4, n, n), 12, true, 3, false, n));
    sl_model_free(m);
    const char *const spec[] = {"p4conv", "input=z2,in_channels=1,out_channels=3", "relu", "-",
                                "p4conv", "in_channels=3,out_channels=2,kernel_size=5", "p4pool",
                                "reduce=mean", NULL};
    m = stack(spec, 74);
    err = fmax(err, rotation_error(m, 4, SHAPE(2, 1, 6, 6), 1, false, 2, false, 6));
    sl_model_free(m);
    printf("equivariance p4: max rel err %.2e over 4 rotations\n", err);
    ck_assert_double_le(err, 1e-12);
}
END_TEST

/* p4conv is conv2d with 4 c_out outputs whose filters are the rotated
 * copies, R^r ψ[o, c, (s - r) mod 4] for output (o, r) and input plane (c, s),
 * built here with this file's own R. */
START_TEST(p4conv_is_a_rotated_conv2d)
{
    const int64_t cin = 2, cout = 2, k = 3, n = 6;
    sl_model *g = one_module("p4conv", "in_channels=2,out_channels=2", 75);
    sl_model *c = one_module("conv2d", "in_channels=8,out_channels=8,kernel_size=3,padding=1", 76);
    ck_assert_int_eq(sl_model_numel(g), cout * cin * 4 * k * k + cout);
    const sl_tensor *psi = sl_model_param(g, sl_model_find_param(g, "0.weight"));
    sl_tensor *w = sl_model_param(c, sl_model_find_param(c, "0.weight"));
    sl_tensor *b = sl_model_param(c, sl_model_find_param(c, "0.bias"));
    for (int64_t o = 0; o < cout; o++)
        for (int64_t r = 0; r < 4; r++) {
            sl_tensor_set(b, (int64_t[]){o * 4 + r},
                          param(g, "0.bias", (int64_t[]){o}));
            for (int64_t ci = 0; ci < cin; ci++)
                for (int64_t s = 0; s < 4; s++)
                    for (int64_t u = 0; u < k; u++)
                        for (int64_t v = 0; v < k; v++) {
                            int64_t su = u, sv = v; /* (R^r f)[u, v] = f at R applied r times */
                            for (int64_t t = 0; t < r; t++) {
                                int64_t nu = sv, nv = k - 1 - su;
                                su = nu;
                                sv = nv;
                            }
                            double val = sl_tensor_get(psi, (int64_t[]){o, ci, (s - r + 4) % 4,
                                                                         su, sv});
                            sl_tensor_set(w, (int64_t[]){o * 4 + r, ci * 4 + s, u, v}, val);
                        }
        }
    sl_tensor x = random_input(5, SHAPE(3, cin, 4, n, n), 77), x4 = {0};
    ck_assert_sl_ok(sl_tensor_reshape(&x, 4, SHAPE(3, cin * 4, n, n), &x4));
    sl_tensor yg = run(g, &x), yc = run(c, &x4), yg4 = {0};
    ck_assert_sl_ok(sl_tensor_reshape(&yg, 4, SHAPE(3, cout * 4, n, n), &yg4));
    double gap = rel_gap(&yc, &yg4);
    ck_assert_msg(gap <= 1e-12, "p4conv and its conv2d differ by %.3e", gap);
    sl_tensor_release(&yg4);
    sl_tensor_release(&yg);
    sl_tensor_release(&yc);
    sl_tensor_release(&x4);
    sl_tensor_release(&x);
    sl_model_free(c);
    sl_model_free(g);
}
END_TEST

START_TEST(p4_network_structure)
{
    const char *const spec[] = {"p4conv", "input=z2,in_channels=1,out_channels=3", "relu", "-",
                                "p4conv", "in_channels=3,out_channels=4", "relu", "-",
                                "p4pool", "reduce=max", "flatten", "-", "linear",
                                "in_features=64,out_features=2", NULL};
    check_hidden_channels(spec, 4, SHAPE(2, 1, 4, 4), (const int64_t[]){3, 4}, 2);
}
END_TEST

/* ---- f32: the same numbers as f64, to f32 precision ---------------------------------- */

/* Output and MSE parameter gradients of m and of its f32 clone on one
 * input: the largest relative gap, over outputs and over gradients. */
static double f32_gap(const char *const *spec, int ndim, const int64_t *xshape)
{
    sl_model *m = stack(spec, 80), *f;
    ck_assert_sl_ok(sl_model_clone(m, SL_F32, &f));
    sl_tensor x = random_input(ndim, xshape, 81), xf = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&xf, SL_F32, ndim, xshape));
    ck_assert_sl_ok(sl_tensor_copy(&xf, &x));
    sl_tensor y = run(m, &x), yf = run(f, &xf), target = {0};
    double gap = rel_gap(&y, &yf);
    ck_assert_sl_ok(sl_tensor_alloc(&target, SL_F32, y.ndim, y.shape)); /* zeros */
    const sl_loss_type *mse = sl_registry_find(SL_KIND_LOSS, "mse");
    double v;
    ck_assert_sl_ok(sl_model_loss(m, mse, &x, &target, true, &v));
    ck_assert_sl_ok(sl_model_loss(f, mse, &xf, &target, true, &v));
    gap = fmax(gap, rel_gap(sl_model_flat_grads(m), sl_model_flat_grads(f)));
    sl_tensor_release(&target);
    sl_tensor_release(&y);
    sl_tensor_release(&yf);
    sl_tensor_release(&xf);
    sl_tensor_release(&x);
    sl_model_free(f);
    sl_model_free(m);
    return gap;
}

START_TEST(f32_matches_f64)
{
    const char *const sets[] = {"deepsets", "in_channels=2,out_channels=3", "tanh", "-",
                                "deepsets", "in_channels=3,out_channels=2", "set_pool",
                                "reduce=mean", NULL};
    const char *const cyclic[] = {"gconv", "group=6,in_channels=1,out_channels=3", "tanh", "-",
                                  "gconv", "group=6,in_channels=3,out_channels=2,"
                                           "out_rep=quotient,out_subgroup=2", NULL};
    const char *const p4[] = {"p4conv", "input=z2,in_channels=1,out_channels=2", "tanh", "-",
                              "p4conv", "in_channels=2,out_channels=2", "p4pool", "-", NULL};
    double gap = f32_gap(sets, 3, SHAPE(3, 2, 5));
    gap = fmax(gap, f32_gap(cyclic, 2, SHAPE(3, 6)));
    gap = fmax(gap, f32_gap(p4, 4, SHAPE(2, 1, 5, 5)));
    printf("f32 against f64: max rel gap %.1e\n", gap);
    ck_assert_double_le(gap, 1e-5);
}
END_TEST

/* ---- the Hessian probe ---------------------------------------------------------- */

#define HESS_STEP 1e-5

/* The eigenvalues (ascending) of m's MSE Hessian on all of d, from a dense
 * Hessian of central differences of gradients, symmetrised. */
static double *dense_hessian_eigenvalues(sl_model *m, const sl_dataset *d)
{
    const int64_t n = sl_model_numel(m);
    const sl_loss_type *mse = sl_registry_find(SL_KIND_LOSS, "mse");
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, d->x.ndim, d->x.shape));
    ck_assert_sl_ok(sl_tensor_copy(&x, &d->x));
    double *H = malloc((size_t)(n * n) * sizeof *H), *gp = malloc((size_t)n * sizeof *gp);
    double *ev = malloc((size_t)n * sizeof *ev);
    double *theta = sl_model_flat_params(m)->data;
    const double *g = sl_model_flat_grads(m)->data;
    sl_model_set_training(m, false);
    for (int64_t j = 0; j < n; j++) {
        double keep = theta[j], value;
        theta[j] = keep + HESS_STEP;
        ck_assert_sl_ok(sl_model_loss(m, mse, &x, &d->y, true, &value));
        memcpy(gp, g, (size_t)n * sizeof *gp);
        theta[j] = keep - HESS_STEP;
        ck_assert_sl_ok(sl_model_loss(m, mse, &x, &d->y, true, &value));
        theta[j] = keep;
        for (int64_t i = 0; i < n; i++)
            H[i * n + j] = (gp[i] - g[i]) / (2 * HESS_STEP);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            H[i * n + j] = H[j * n + i] = 0.5 * (H[i * n + j] + H[j * n + i]);
    ck_assert_int_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)n, H, (lapack_int)n,
                                   ev), 0);
    free(gp);
    free(H);
    sl_tensor_release(&x);
    return ev;
}

static double rec(const sl_record *r, const char *prefix, int i)
{
    char name[48];
    snprintf(name, sizeof name, "%s_%d", prefix, i);
    double v;
    ck_assert_sl_ok(sl_record_get(r, name, &v));
    return v;
}

/* The probe's k extremes against the dense eigenvalues ev (ascending, n):
 * the largest gap beyond the probe's own residual bound, relative to the
 * spectral radius. */
static double hessian_gap(sl_model *m, const sl_dataset *d, const char *options, int k,
                          const double *ev, int64_t n)
{
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options(options);
    ck_assert_sl_ok(sl_probe_run("hessian", o, m, d, r));
    double res_min, res_max, scale = fmax(1.0, fmax(fabs(ev[0]), fabs(ev[n - 1]))), gap = 0;
    ck_assert_sl_ok(sl_record_get(r, "residual_min", &res_min));
    ck_assert_sl_ok(sl_record_get(r, "residual_max", &res_max));
    for (int i = 0; i < k; i++) {
        double lo = rec(r, "lambda_min", i + 1), hi = rec(r, "lambda_max", i + 1);
        gap = fmax(gap, fmax(0.0, fabs(lo - ev[i]) - res_min) / scale);
        gap = fmax(gap, fmax(0.0, fabs(hi - ev[n - 1 - i]) - res_max) / scale);
    }
    printf("hessian %s: smallest %.10g (dense %.10g), largest %.10g (dense %.10g), residuals "
           "%.1e %.1e, gap %.1e\n",
           options, rec(r, "lambda_min", 1), ev[0], rec(r, "lambda_max", 1), ev[n - 1], res_min,
           res_max, gap);
    sl_options_free(o);
    sl_record_free(r);
    return gap;
}

/* A tiny tanh MLP (26 parameters): Lanczos over the whole space. */
START_TEST(hessian_matches_dense_eigensolver)
{
    const char *const spec[] = {"linear", "in_features=3,out_features=4", "tanh", "-", "linear",
                                "in_features=4,out_features=2", NULL};
    sl_model *m = stack(spec, 50);
    sl_dataset d = regression_data(20, 2, SHAPE(1, 3), 2, 51);
    const int64_t n = sl_model_numel(m);
    double *ev = dense_hessian_eigenvalues(m, &d);
    ck_assert_msg(ev[0] < 0, "want a point with negative curvature (smallest %g)", ev[0]);
    ck_assert_double_le(hessian_gap(m, &d, "k=3", 3, ev, n), 1e-8);
    free(ev);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* An equivariant network (38 parameters) with fewer Lanczos steps than
 * parameters: the extremes converge, within the residual bound reported. */
START_TEST(hessian_partial_lanczos_on_gconv)
{
    const char *const spec[] = {"gconv", "group=6,in_channels=1,out_channels=4", "tanh", "-",
                                "gconv", "group=6,in_channels=4,out_channels=2,out_rep=trivial",
                                NULL};
    sl_model *m = stack(spec, 52);
    sl_dataset d = regression_data(30, 2, SHAPE(1, 6), 2, 53);
    const int64_t n = sl_model_numel(m);
    ck_assert_int_eq(n, 38);
    double *ev = dense_hessian_eigenvalues(m, &d);
    ck_assert_double_le(hessian_gap(m, &d, "k=2,iters=30,seed=4", 2, ev, n), 1e-8);
    free(ev);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* The caller's model (an f32 one: the probe works on an f64 clone) keeps
 * its parameters and gradients, and the same options give the same record. */
START_TEST(hessian_leaves_model_and_repeats)
{
    const char *const spec[] = {"deepsets", "in_channels=1,out_channels=2", "tanh", "-",
                                "set_pool", "reduce=sum", "linear",
                                "in_features=2,out_features=1", NULL};
    sl_model *m64 = stack(spec, 54), *m;
    ck_assert_sl_ok(sl_model_clone(m64, SL_F32, &m));
    sl_dataset d = regression_data(10, 3, SHAPE(1, 1, 3), 1, 55);
    const int64_t n = sl_model_numel(m);
    for (int64_t i = 0; i < n; i++)
        ((float *)sl_model_flat_grads(m)->data)[i] = (float)i;
    sl_tensor before = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&before, SL_F32, 1, &n));
    ck_assert_sl_ok(sl_tensor_copy(&before, sl_model_flat_params(m)));
    sl_record *r1 = sl_record_new(), *r2 = sl_record_new();
    sl_options *o = sl_test_options("k=2,iters=6,seed=3");
    ck_assert_sl_ok(sl_probe_run("hessian", o, m, &d, r1));
    ck_assert_sl_ok(sl_probe_run("hessian", o, m, &d, r2));
    for (int64_t i = 0; i < n; i++) {
        ck_assert(sl_tensor_flat_get(&before, i) == sl_tensor_flat_get(sl_model_flat_params(m), i));
        ck_assert(((float *)sl_model_flat_grads(m)->data)[i] == (float)i);
    }
    ck_assert_int_eq(sl_record_count(r1), sl_record_count(r2));
    for (int i = 0; i < sl_record_count(r1); i++)
        ck_assert_msg(sl_record_value(r1, i) == sl_record_value(r2, i), "%s differs",
                      sl_record_name(r1, i));
    double iters;
    ck_assert_sl_ok(sl_record_get(r1, "iters", &iters));
    ck_assert_double_eq(iters, 6);
    sl_options_free(o);
    sl_record_free(r1);
    sl_record_free(r2);
    sl_tensor_release(&before);
    sl_dataset_release(&d);
    sl_model_free(m);
    sl_model_free(m64);
}
END_TEST

START_TEST(hessian_bad_input)
{
    sl_model *m = one_module("linear", "in_features=2,out_features=1", 1);
    sl_dataset d = regression_data(4, 2, SHAPE(1, 2), 1, 2);
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options(NULL);
    ck_assert_sl_fails(sl_probe_run("hessian", o, m, NULL, r), SL_EINVAL, "needs data");
    sl_options_free(o);
    o = sl_test_options("loss=nope");
    ck_assert_sl_fails(sl_probe_run("hessian", o, m, &d, r), SL_ENOTFOUND, "nope");
    sl_options_free(o);
    o = sl_test_options("k=0");
    ck_assert_sl_fails(sl_probe_run("hessian", o, m, &d, r), SL_EINVAL, "k must be >= 1");
    sl_options_free(o);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

static Suite *equivariant_suite(void)
{
    Suite *s = suite_create("equivariant");
    TCase *g = tcase_create("gradcheck");
    tcase_add_checked_fixture(g, setup, NULL);
    tcase_add_test(g, gradcheck_deepsets);
    tcase_add_test(g, gradcheck_gconv);
    suite_add_tcase(s, g);
    TCase *e = tcase_create("equivariance");
    tcase_add_checked_fixture(e, setup, NULL);
    tcase_add_test(e, gconv_equivariant_every_element);
    tcase_add_test(e, deepsets_equivariant_every_element);
    tcase_add_test(e, dense_layer_is_not_equivariant);
    tcase_add_test(e, gconv_dense_equivalent);
    tcase_add_test(e, deepsets_dense_equivalent);
    tcase_add_test(e, bad_options_are_errors);
    suite_add_tcase(s, e);
    TCase *w = tcase_create("structure");
    tcase_add_checked_fixture(w, setup, NULL);
    tcase_add_test(w, gconv_network_structure);
    tcase_add_test(w, deepsets_network_structure);
    tcase_add_test(w, gconv_three_d_layout);
    tcase_add_test(w, symmetry_probes_on_gconv);
    suite_add_tcase(s, w);
    TCase *mx = tcase_create("gconv_mixed");
    tcase_add_checked_fixture(mx, setup, NULL);
    tcase_add_test(mx, gradcheck_gconv_mixed);
    tcase_add_test(mx, gconv_mixed_equivariant_every_element);
    tcase_add_test(mx, gconv_mixed_single_block_is_gconv);
    tcase_add_test(mx, gconv_mixed_is_opaque);
    suite_add_tcase(s, mx);
    TCase *p4 = tcase_create("p4");
    tcase_add_checked_fixture(p4, setup, NULL);
    tcase_add_test(p4, gradcheck_p4);
    tcase_add_test(p4, p4_equivariant_every_rotation);
    tcase_add_test(p4, p4conv_is_a_rotated_conv2d);
    tcase_add_test(p4, p4_network_structure);
    tcase_add_test(p4, f32_matches_f64);
    suite_add_tcase(s, p4);
    TCase *h = tcase_create("hessian");
    tcase_add_checked_fixture(h, setup, NULL);
    tcase_add_test(h, hessian_matches_dense_eigensolver);
    tcase_add_test(h, hessian_partial_lanczos_on_gconv);
    tcase_add_test(h, hessian_leaves_model_and_repeats);
    tcase_add_test(h, hessian_bad_input);
    suite_add_tcase(s, h);
    relax_tcases(s);
    return s;
}

int main(void) { return sl_test_run(equivariant_suite()); }
