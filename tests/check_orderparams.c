/* tests/check_orderparams.c — the order parameters of the symmetry_metrics
 * plugin (issue 14): numerical rank, NC1 and linear CKA against values
 * computed by hand on tiny inputs, their invariances (CKA of a network with
 * itself, under an orthogonal transform or a permutation of its hidden
 * units), and the rank_log hook against the probe. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "order.h"
#include "testutil.h"

#define MODEL(dtype, seed, ...) sl_test_model(dtype, seed, (const char *const[]){__VA_ARGS__, NULL})

static void expect_near(double got, double want, double tol, const char *what)
{
    ck_assert_msg(fabs(got - want) <= tol * fmax(1.0, fabs(want)), "%s: got %.17g, want %.17g",
                  what, got, want);
}

static double *param(sl_model *m, const char *name)
{
    int i = sl_model_find_param(m, name);
    ck_assert_msg(i >= 0, "no parameter %s", name);
    ck_assert_int_eq(sl_model_param(m, i)->dtype, SL_F64);
    return sl_model_param(m, i)->data;
}

static bool has(const sl_record *r, const char *name)
{
    double v;
    return sl_record_get(r, name, &v) == SL_OK;
}

/* A dataset of n rows x (n, f) from a flat list, labels y (or none). */
static sl_dataset make_set(const double *x, int64_t n, int64_t f, const int64_t *y)
{
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&d.x, SL_F32, 2, SHAPE(n, f)));
    for (int64_t i = 0; i < n * f; i++)
        ((float *)d.x.data)[i] = (float)x[i];
    if (y) {
        ck_assert_sl_ok(sl_tensor_alloc(&d.y, SL_I64, 1, &n));
        memcpy(d.y.data, y, (size_t)n * sizeof *y);
    } else {
        ck_assert_sl_ok(sl_tensor_alloc(&d.y, SL_F32, 2, SHAPE(n, 1)));
    }
    return d;
}

/* n rows of f features uniform in (-1, 1), labels i mod classes. */
static sl_dataset random_set(int64_t n, int64_t f, int64_t classes, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    double *x = malloc((size_t)(n * f) * sizeof *x);
    int64_t *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n * f; i++)
        x[i] = 2 * sl_rng_uniform(&rng) - 1;
    for (int64_t i = 0; i < n; i++)
        y[i] = i % classes;
    sl_dataset d = make_set(x, n, f, y);
    free(x);
    free(y);
    return d;
}

/* ---------------------------------------------------------------- ranks */

START_TEST(test_rank_tolerances)
{
    const double s[] = {4, 3, 1e-4, 0};
    ck_assert_int_eq(om_rank(s, 4, 0, 1e-3), 2);  /* cut 4e-3 */
    ck_assert_int_eq(om_rank(s, 4, 0, 1e-6), 3);  /* cut 4e-6 */
    ck_assert_int_eq(om_rank(s, 4, 0, 0), 3);     /* exact zero never counts */
    ck_assert_int_eq(om_rank(s, 4, 3.5, 1e-6), 1); /* atol wins */
    ck_assert_int_eq(om_rank(s, 4, 0, 0.75), 1);  /* 3 > 3 is false */
    ck_assert_int_eq(om_rank(s, 0, 0, 0), 0);
    const double z[] = {0, 0};
    ck_assert_int_eq(om_rank(z, 2, 0, 1e-3), 0);
    ck_assert(om_stable_rank(z, 2) == 0 && om_effective_rank(z, 2) == 0);
    expect_near(om_stable_rank(s, 4), (16 + 9 + 1e-8) / 16, 1e-15, "stable rank");
    const double e[] = {2, 2, 2};
    expect_near(om_effective_rank(e, 3), 3, 1e-15, "effective rank of a flat spectrum");
}
END_TEST

/* A weight built as a product of a (5, 2) and a (2, 6) matrix has rank 2;
 * one with orthogonal rows of norms 4 and 3 has singular values 4, 3, 0. */
START_TEST(test_rank_of_low_rank_weights)
{
    sl_model *m = MODEL(SL_F64, 3, "linear", "in_features=6,out_features=5");
    double *W = param(m, "0.weight");
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 6; j++)
            W[i * 6 + j] = sin(1.0 + i) * cos(0.3 * j) + (i + 1.0) * (j % 3 == 0 ? 1 : -0.5);
    sl_record *r = sl_test_probe("symmetry_metrics", "", m, NULL);
    ck_assert_double_eq(sl_test_get(r, "0.rank"), 2);
    sl_record_free(r);
    memset(W, 0, 30 * sizeof *W);
    W[0 * 6 + 1] = 4;
    W[3 * 6 + 2] = -3;
    r = sl_test_probe("symmetry_metrics", "top_sv=3", m, NULL);
    ck_assert_double_eq(sl_test_get(r, "0.rank"), 2);
    expect_near(sl_test_get(r, "0.sv0"), 4, 1e-14, "sv0");
    expect_near(sl_test_get(r, "0.sv1"), 3, 1e-14, "sv1");
    ck_assert(fabs(sl_test_get(r, "0.sv2")) < 1e-14);
    sl_record_free(r);
    r = sl_test_probe("symmetry_metrics", "rank_rtol=0.8", m, NULL); /* cut 3.2 */
    ck_assert_double_eq(sl_test_get(r, "0.rank"), 1);
    sl_record_free(r);
    r = sl_test_probe("symmetry_metrics", "rank_atol=5", m, NULL);
    ck_assert_double_eq(sl_test_get(r, "0.rank"), 0);
    sl_record_free(r);
    sl_model_free(m);
}
END_TEST

/* A deep linear chain 4 -> 3 -> 3 -> 2: the product's singular values are
 * those of W3 W2 W1 computed by hand; a relu in between ends the chain. */
START_TEST(test_product_rank)
{
    sl_model *m = MODEL(SL_F64, 5, "linear", "in_features=4,out_features=3,bias=false", "linear",
                        "in_features=3,out_features=3,bias=false", "identity", "", "linear",
                        "in_features=3,out_features=2,bias=false");
    double *W1 = param(m, "0.weight"), *W2 = param(m, "1.weight"), *W3 = param(m, "3.weight");
    memset(W1, 0, 12 * sizeof *W1);
    memset(W2, 0, 9 * sizeof *W2);
    memset(W3, 0, 6 * sizeof *W3);
    W1[0 * 4 + 0] = 2; /* W1 = [2e1; 3e2; 1e3]ᵀ rows */
    W1[1 * 4 + 1] = 3;
    W1[2 * 4 + 2] = 1;
    W2[0] = W2[4] = W2[8] = 1; /* identity */
    W3[0 * 3 + 0] = 1;         /* W3 = [[1, 1, 0], [0, 0, 5]] */
    W3[0 * 3 + 1] = 1;
    W3[1 * 3 + 2] = 5;
    /* P = W3 W1 = [[2, 3, 0, 0], [0, 0, 5, 0]]: singular values 5, sqrt 13 */
    sl_record *r = sl_test_probe("symmetry_metrics", "top_sv=2", m, NULL);
    ck_assert_double_eq(sl_test_get(r, "product.rank"), 2);
    expect_near(sl_test_get(r, "product.sv0"), 5, 1e-14, "product sv0");
    expect_near(sl_test_get(r, "product.sv1"), sqrt(13), 1e-14, "product sv1");
    expect_near(sl_test_get(r, "product.stable_rank"), (25 + 13) / 25.0, 1e-14, "stable");
    sl_record_free(r);
    W1[2 * 4 + 2] = 0; /* P = [[2, 3, 0, 0], 0]: rank 1, singular value sqrt 13 */
    r = sl_test_probe("symmetry_metrics", "top_sv=1", m, NULL);
    ck_assert_double_eq(sl_test_get(r, "product.rank"), 1);
    expect_near(sl_test_get(r, "product.sv0"), sqrt(13), 1e-14, "rank-1 product sv0");
    ck_assert_double_eq(sl_test_get(r, "1.rank"), 3);
    sl_record_free(r);
    sl_model_free(m);
    m = MODEL(SL_F64, 5, "linear", "in_features=4,out_features=3", "relu", "", "linear",
              "in_features=3,out_features=2");
    r = sl_test_probe("symmetry_metrics", "", m, NULL);
    ck_assert(!has(r, "product.rank"));
    ck_assert(has(r, "0.rank") && has(r, "2.rank"));
    sl_record_free(r);
    sl_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- NC1 */

/* One feature; class 0 at {0, 2}, class 1 at {4}: mu = 1, 4, mu_G = 2.5,
 * Sigma_W = (1 + 1 + 0)/3 = 2/3, Sigma_B = (1.5^2 + 1.5^2)/2 = 9/4,
 * NC1 = (2/3) / (9/4) / 2 = 4/27. */
START_TEST(test_nc1_three_points)
{
    const double h[] = {0, 2, 4};
    const int64_t y[] = {0, 0, 1};
    double nc1;
    int64_t C;
    ck_assert_sl_ok(om_nc1(h, y, 3, 1, &nc1, &C));
    ck_assert_int_eq(C, 2);
    expect_near(nc1, 4.0 / 27.0, 1e-15, "nc1");
    /* labels 0 and 2 (1 absent): the same two classes */
    const int64_t y2[] = {2, 2, 0};
    ck_assert_sl_ok(om_nc1(h, y2, 3, 1, &nc1, &C));
    ck_assert_int_eq(C, 2);
    expect_near(nc1, 4.0 / 27.0, 1e-15, "nc1, labels 0 and 2");
}
END_TEST

/* Tight clusters: class 0 at (±1e-3, 0), class 1 twice at (10, 0).
 * Sigma_W = diag(2e-6/4, 0), Sigma_B = diag(25, 0): NC1 = 5e-7/25/2 = 1e-8.
 * Spread orthogonal to the class means is invisible: with the class-0
 * points at (0, ±1e-3) NC1 is 0 (Sigma_B^+ has no such direction). */
START_TEST(test_nc1_tight_clusters)
{
    const double h[] = {-1e-3, 0, 1e-3, 0, 10, 0, 10, 0};
    const int64_t y[] = {0, 0, 1, 1};
    double nc1;
    ck_assert_sl_ok(om_nc1(h, y, 4, 2, &nc1, NULL));
    expect_near(nc1, 1e-8, 1e-12, "nc1 tight");
    const double v[] = {0, -1e-3, 0, 1e-3, 10, 0, 10, 0};
    ck_assert_sl_ok(om_nc1(v, y, 4, 2, &nc1, NULL));
    ck_assert_msg(fabs(nc1) < 1e-20, "nc1 orthogonal spread = %g", nc1);
    /* three classes in the plane: Sigma_B has rank 2 */
    const double t[] = {0, 0, 0, 1, 4, 0, 4, 0, 0, 6, 0, 6};
    const int64_t yt[] = {0, 0, 1, 1, 2, 2};
    ck_assert_sl_ok(om_nc1(t, yt, 6, 2, &nc1, NULL));
    /* mu = (0, .5), (4, 0), (0, 6); mu_G = (4/3, 13/6); Sigma_W = diag(0, 1/12) (two
     * deviations of 0.5 in y among 6 rows); Sigma_B^+ from M by hand: */
    double M[2][3] = {{-4.0 / 3, 8.0 / 3, -4.0 / 3}, {0.5 - 13.0 / 6, -13.0 / 6, 6 - 13.0 / 6}};
    double B[2][2] = {{0}};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                B[a][b] += M[a][c] * M[b][c] / 3;
    double det = B[0][0] * B[1][1] - B[0][1] * B[1][0];
    double inv11 = B[0][0] / det; /* (B^-1)_yy */
    expect_near(nc1, (1.0 / 12) * inv11 / 3, 1e-13, "nc1 three classes");
}
END_TEST

START_TEST(test_nc1_errors)
{
    const double h[] = {0, 1, 2};
    const int64_t one[] = {3, 3, 3}, neg[] = {0, -1, 1};
    double nc1;
    ck_assert_sl_fails(om_nc1(h, one, 3, 1, &nc1, NULL), SL_EINVAL, "at least 2 classes");
    ck_assert_sl_fails(om_nc1(h, neg, 3, 1, &nc1, NULL), SL_EINVAL, "label -1 of row 1");
}
END_TEST

/* Through the probe: a single linear layer's penultimate features are the
 * data themselves (4/27 again); behind linear + relu they are the relu's
 * output, checked against om_nc1 on a hand-made forward. */
START_TEST(test_nc1_probe)
{
    const double x[] = {0, 2, 4};
    const int64_t y[] = {0, 0, 1};
    sl_dataset d = make_set(x, 3, 1, y);
    sl_model *m = MODEL(SL_F64, 1, "linear", "in_features=1,out_features=2");
    sl_record *r = sl_test_probe("symmetry_metrics", "", m, &d);
    expect_near(sl_test_get(r, "nc1"), 4.0 / 27.0, 1e-15, "probe nc1");
    ck_assert_double_eq(sl_test_get(r, "nc1_classes"), 2);
    sl_record_free(r);
    r = sl_test_probe("symmetry_metrics", "nc1=false", m, &d);
    ck_assert(!has(r, "nc1"));
    sl_record_free(r);
    sl_model_free(m);
    sl_dataset_release(&d);

    m = MODEL(SL_F64, 7, "linear", "in_features=3,out_features=4", "relu", "", "linear",
              "in_features=4,out_features=3");
    d = random_set(30, 3, 3, 8);
    double *W = param(m, "0.weight"), *b = param(m, "0.bias");
    double h[30 * 4];
    for (int i = 0; i < 30; i++)
        for (int u = 0; u < 4; u++) {
            double a = b[u];
            for (int j = 0; j < 3; j++)
                a += W[u * 3 + j] * (double)((float *)d.x.data)[i * 3 + j];
            h[i * 4 + u] = a > 0 ? a : 0;
        }
    double want;
    ck_assert_sl_ok(om_nc1(h, d.y.data, 30, 4, &want, NULL));
    r = sl_test_probe("symmetry_metrics", "probe_batch=30", m, &d);
    expect_near(sl_test_get(r, "nc1"), want, 1e-12, "probe nc1 after relu");
    sl_record_free(r);
    sl_dataset_release(&d);
    /* regression targets: auto skips, true refuses */
    d = make_set(x, 3, 1, NULL);
    sl_model_free(m);
    m = MODEL(SL_F64, 1, "linear", "in_features=1,out_features=1");
    r = sl_test_probe("symmetry_metrics", "", m, &d);
    ck_assert(!has(r, "nc1"));
    sl_record_free(r);
    sl_options *o = sl_test_options("nc1=true");
    r = sl_record_new();
    ck_assert_sl_fails(sl_probe_run("symmetry_metrics", o, m, &d, r), SL_EINVAL,
                       "nc1: the data's targets are not class labels");
    sl_dataset_release(&d);
    /* one class among the probe rows: auto skips, true refuses */
    const int64_t same[] = {1, 1, 1};
    d = make_set(x, 3, 1, same);
    sl_record *r2 = sl_test_probe("symmetry_metrics", "", m, &d);
    ck_assert(!has(r2, "nc1"));
    sl_record_free(r2);
    ck_assert_sl_fails(sl_probe_run("symmetry_metrics", o, m, &d, r), SL_EINVAL,
                       "fewer than 2 classes");
    sl_record_free(r);
    sl_options_free(o);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- CKA */

/* CKA of centred features X (n, p) and Y (n, q) from the Gram route. */
static double cka_of(const double *X, int64_t p, const double *Y, int64_t q, int64_t n)
{
    double *K = calloc((size_t)(n * n), sizeof *K), *L = calloc((size_t)(n * n), sizeof *L);
    om_gram_add(X, n, p, p, K);
    om_gram_add(Y, n, q, q, L);
    om_gram_center(K, n);
    om_gram_center(L, n);
    double c = om_cka(K, L, n);
    free(K);
    free(L);
    return c;
}

/* With one feature each, linear CKA is the squared correlation:
 * x = (1, 2, 3, 4), y = (1, 3, 2, 4) have correlation 4/5, CKA 0.64. */
START_TEST(test_cka_hand)
{
    const double x[] = {1, 2, 3, 4}, y[] = {1, 3, 2, 4};
    expect_near(cka_of(x, 1, y, 1, 4), 0.64, 1e-15, "cka");
    expect_near(cka_of(x, 1, x, 1, 4), 1, 1e-15, "self");
    const double y10[] = {10, 30, 20, 40}; /* isotropic scaling */
    expect_near(cka_of(x, 1, y10, 1, 4), 0.64, 1e-15, "scaled");
    /* two features, rotated by 30 degrees, then shifted: still 1 */
    const double X[] = {1, 0, 0, 2, -1, 1, 3, -2, 0.5, 0.5};
    double Y[10];
    const double c = cos(M_PI / 6), s = sin(M_PI / 6);
    for (int i = 0; i < 5; i++) {
        Y[i * 2] = c * X[i * 2] - s * X[i * 2 + 1] + 7;
        Y[i * 2 + 1] = s * X[i * 2] + c * X[i * 2 + 1] - 3;
    }
    expect_near(cka_of(X, 2, Y, 2, 5), 1, 1e-14, "rotated");
    /* constant features: undefined */
    const double k[] = {2, 2, 2, 2};
    ck_assert(isnan(cka_of(x, 1, k, 1, 4)));
    /* spectrum of the centred rows (1, 0), (-1, 0), (0, 0): sqrt 2, 0, 0 */
    const double r[] = {1, 0, -1, 0, 0, 0};
    double K[9] = {0}, sv[3];
    om_gram_add(r, 3, 2, 2, K);
    om_gram_center(K, 3);
    ck_assert_sl_ok(om_gram_spectrum(K, 3, sv));
    expect_near(sv[0], sqrt(2), 1e-15, "sv0");
    ck_assert(sv[1] < 1e-7 && sv[2] < 1e-7);
}
END_TEST

static void save_to(sl_model *m, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s", sl_test_tmp_path(name));
    ck_assert_sl_ok(sl_model_save(m, path));
}

static double probe_cka(sl_model *a, const char *path, const sl_dataset *d, const char *key)
{
    char text[1024];
    snprintf(text, sizeof text, "other=%s,probe_batch=64", path);
    sl_record *r = sl_test_probe("symmetry_metrics", text, a, d);
    double v = sl_test_get(r, key);
    sl_record_free(r);
    return v;
}

/* A network against itself, against a copy whose hidden units are rotated
 * by an orthogonal Q (W1 -> Q W1, b1 -> Q b1, W2 -> W2 Q^T: same function,
 * features Q h) and, with relu, a copy whose units are permuted: CKA 1. */
START_TEST(test_cka_invariances)
{
    sl_dataset d = random_set(64, 4, 2, 3);
    sl_model *a = MODEL(SL_F64, 11, "linear", "in_features=4,out_features=3", "identity", "",
                        "linear", "in_features=3,out_features=2");
    char path[4096];
    save_to(a, "self.safetensors", path, sizeof path);
    expect_near(probe_cka(a, path, &d, "0.cka"), 1, 1e-12, "self");
    sl_model *b;
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &b));
    const double c1 = cos(0.7), s1 = sin(0.7), c2 = cos(-1.9), s2 = sin(-1.9);
    /* Q = R_xy(0.7) R_yz(-1.9) */
    const double R1[3][3] = {{c1, -s1, 0}, {s1, c1, 0}, {0, 0, 1}};
    const double R2[3][3] = {{1, 0, 0}, {0, c2, -s2}, {0, s2, c2}};
    double Q[3][3] = {{0}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                Q[i][j] += R1[i][k] * R2[k][j];
    const double *W1 = param(a, "0.weight"), *b1 = param(a, "0.bias"), *W2 = param(a, "2.weight");
    double *V1 = param(b, "0.weight"), *c1b = param(b, "0.bias"), *V2 = param(b, "2.weight");
    for (int i = 0; i < 3; i++) {
        c1b[i] = 0;
        for (int k = 0; k < 3; k++)
            c1b[i] += Q[i][k] * b1[k];
        for (int j = 0; j < 4; j++) {
            V1[i * 4 + j] = 0;
            for (int k = 0; k < 3; k++)
                V1[i * 4 + j] += Q[i][k] * W1[k * 4 + j];
        }
    }
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 3; i++) {
            V2[o * 3 + i] = 0;
            for (int k = 0; k < 3; k++)
                V2[o * 3 + i] += W2[o * 3 + k] * Q[i][k];
        }
    sl_tensor x64 = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x64, SL_F64, 2, d.x.shape));
    ck_assert_sl_ok(sl_tensor_copy(&x64, &d.x));
    ck_assert(sl_test_output_gap(a, b, &x64) < 1e-12);
    sl_tensor_release(&x64);
    save_to(b, "rotated.safetensors", path, sizeof path);
    expect_near(probe_cka(a, path, &d, "0.cka"), 1, 1e-12, "rotated");
    expect_near(probe_cka(a, path, &d, "cka"), 1, 1e-12, "mean");
    sl_model_free(b);
    sl_model_free(a);

    /* relu MLP: a permutation of its hidden units */
    a = MODEL(SL_F64, 12, "linear", "in_features=4,out_features=6", "relu", "", "linear",
              "in_features=6,out_features=5", "relu", "", "linear", "in_features=5,out_features=2");
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &b));
    sl_structure *st;
    ck_assert_sl_ok(sl_model_structure(b, &st));
    const int64_t perm[] = {3, 0, 5, 1, 4, 2};
    ck_assert_sl_ok(sl_structure_permute(b, st, 0, perm));
    sl_structure_free(st);
    save_to(b, "permuted.safetensors", path, sizeof path);
    expect_near(probe_cka(a, path, &d, "0.cka"), 1, 1e-12, "permuted");
    expect_near(probe_cka(a, path, &d, "2.cka"), 1, 1e-12, "layer 2 untouched");
    sl_model_free(b);
    /* another initialisation: alignment strictly between 0 and 1 */
    b = MODEL(SL_F64, 99, "linear", "in_features=4,out_features=6", "relu", "", "linear",
              "in_features=6,out_features=5", "relu", "", "linear", "in_features=5,out_features=2");
    save_to(b, "other.safetensors", path, sizeof path);
    double c = probe_cka(a, path, &d, "0.cka");
    ck_assert_msg(c > 0 && c < 0.999, "cka of two initialisations = %g", c);
    sl_model_free(b);
    sl_model_free(a);
    sl_dataset_release(&d);
}
END_TEST

/* Activation ranks: a hidden layer that sees a one-dimensional input has
 * centred activations of rank 1 (identity map), the CKA path's errors. */
START_TEST(test_activation_rank_and_errors)
{
    sl_dataset d = random_set(40, 1, 2, 5);
    sl_model *a = MODEL(SL_F64, 2, "linear", "in_features=1,out_features=3", "identity", "",
                        "linear", "in_features=3,out_features=2");
    sl_record *r = sl_test_probe("symmetry_metrics", "activations=true", a, &d);
    ck_assert_double_eq(sl_test_get(r, "0.act.rank"), 1);
    expect_near(sl_test_get(r, "0.act.effective_rank"), 1, 1e-15, "act effective rank");
    ck_assert(!has(r, "0.cka"));
    sl_record_free(r);
    sl_options *o = sl_test_options("other=/nonexistent/b.safetensors");
    r = sl_record_new();
    ck_assert_sl_fails(sl_probe_run("symmetry_metrics", o, a, NULL, r), SL_EINVAL,
                       "other (CKA) needs data");
    ck_assert(sl_probe_run("symmetry_metrics", o, a, &d, r) < 0);
    ck_assert_msg(strstr(sl_last_error(), "other") != NULL, "%s", sl_last_error());
    sl_options_free(o);
    o = sl_test_options("rank_rtol=-1");
    ck_assert_sl_fails(sl_probe_run("symmetry_metrics", o, a, NULL, r), SL_EINVAL, "rank_rtol");
    sl_options_free(o);
    sl_record_free(r);
    sl_model_free(a);
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- rank_log hook */

static sl_history *train_logged(sl_model *m, const sl_dataset *d, const char *hook_opts,
                                int64_t epochs)
{
    sl_options *oo = sl_test_options("lr=0.05");
    sl_optim *opt;
    ck_assert_sl_ok(sl_optim_new("sgd", m, oo, &opt));
    sl_options_free(oo);
    sl_hook *h = NULL;
    if (hook_opts) {
        sl_options *ho = sl_test_options(hook_opts);
        ck_assert_sl_ok(sl_hook_new("rank_log", ho, &h));
        sl_options_free(ho);
    }
    sl_history *hist = sl_history_new();
    char text[128];
    snprintf(text, sizeof text, "epochs=%lld,batch=8,seed=3", (long long)epochs);
    sl_options *t = sl_test_options(text);
    sl_train_args args = {.train = d, .hooks = &h, .nhooks = h ? 1 : 0, .history = hist};
    ck_assert_sl_ok(sl_train(m, opt, &args, t));
    sl_options_free(t);
    sl_hook_free(h);
    sl_optim_free(opt);
    return hist;
}

/* Every epoch's row has the probe's rank measures of that moment; the last
 * row equals the probe on the trained model; the hook changes nothing. */
START_TEST(test_rank_log_hook)
{
    sl_dataset d = random_set(48, 4, 3, 9);
    sl_model *a = MODEL(SL_F32, 4, "linear", "in_features=4,out_features=8", "relu", "",
                        "linear", "in_features=8,out_features=3");
    sl_model *b;
    ck_assert_sl_ok(sl_model_clone(a, SL_F32, &b));
    sl_history *ha = train_logged(a, &d, "nc1=true,top_sv=2,probe_batch=48", 3);
    sl_history *hb = train_logged(b, &d, NULL, 3);
    ck_assert_int_eq(sl_history_count(ha), 3);
    const sl_record *last = sl_history_row(ha, 2);
    sl_record *r = sl_test_probe("symmetry_metrics", "top_sv=2,probe_batch=48", a, &d);
    static const char *const names[] = {"0.rank", "0.stable_rank", "0.effective_rank", "0.sv0",
                                        "0.sv1", "2.rank", "2.effective_rank", "nc1"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        ck_assert_msg(sl_test_get(last, names[i]) == sl_test_get(r, names[i]),
                      "%s: hook %.17g, probe %.17g", names[i], sl_test_get(last, names[i]),
                      sl_test_get(r, names[i]));
    ck_assert(has(sl_history_row(ha, 0), "0.rank") && has(sl_history_row(ha, 1), "nc1"));
    sl_tensor *pa = sl_model_flat_params(a), *pb = sl_model_flat_params(b);
    ck_assert_int_eq(memcmp(pa->data, pb->data, sl_tensor_nbytes(pa)), 0);
    sl_record_free(r);
    sl_history_free(ha);
    sl_history_free(hb);
    /* every = 2: only the second epoch's row */
    ha = train_logged(a, &d, "every=2", 3);
    ck_assert(!has(sl_history_row(ha, 0), "0.rank"));
    ck_assert(has(sl_history_row(ha, 1), "0.rank"));
    ck_assert(!has(sl_history_row(ha, 2), "0.rank"));
    sl_history_free(ha);
    sl_model_free(a);
    sl_model_free(b);
    sl_dataset_release(&d);
    sl_hook *h = NULL;
    sl_options *o = sl_test_options("every=0");
    ck_assert_sl_fails(sl_hook_new("rank_log", o, &h), SL_EINVAL, "every must be >= 1");
    sl_options_free(o);
    o = sl_test_options("top_sv=-1");
    ck_assert_sl_fails(sl_hook_new("rank_log", o, &h), SL_EINVAL, "top_sv");
    sl_options_free(o);
}
END_TEST

static Suite *orderparams_suite(void)
{
    Suite *s = suite_create("orderparams");
    TCase *math = tcase_create("arithmetic");
    tcase_add_test(math, test_rank_tolerances);
    tcase_add_test(math, test_nc1_three_points);
    tcase_add_test(math, test_nc1_tight_clusters);
    tcase_add_test(math, test_nc1_errors);
    tcase_add_test(math, test_cka_hand);
    suite_add_tcase(s, math);
    TCase *probe = tcase_create("probe");
    sl_test_add_tmpdir(probe);
    tcase_add_test(probe, test_rank_of_low_rank_weights);
    tcase_add_test(probe, test_product_rank);
    tcase_add_test(probe, test_nc1_probe);
    tcase_add_test(probe, test_cka_invariances);
    tcase_add_test(probe, test_activation_rank_and_errors);
    tcase_add_test(probe, test_rank_log_hook);
    suite_add_tcase(s, probe);
    return s;
}

int main(void) { return sl_test_run(orderparams_suite()); }
