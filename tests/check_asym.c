/* tests/check_asym.c — the asym plugin (issue 12): the W-asymmetric linear
 * and conv2d layers and FiGLU against finite differences, fixed entries that
 * no optimizer moves, masks that follow mask_seed and nothing else, roles
 * that keep the structure walker from seeing symmetries these layers
 * removed, the interpolate probe, and weight matching on MLPs, CNNs,
 * third-party layers and residual models. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "assignment.h"
#include "testutil.h"

#define GRADCHECK(label, type, text, ...) \
    sl_test_gradcheck(label, type, text, false, 7, 0.0, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

#define MODEL(dtype, seed, ...) sl_test_model(dtype, seed, (const char *const[]){__VA_ARGS__, NULL})

static sl_tensor random_tensor(int ndim, const int64_t *shape, uint64_t seed)
{
    sl_tensor t = {0};
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&t, SL_F64, ndim, shape));
    ck_assert_sl_ok(sl_tensor_normal(&t, &rng, 0.0, 1.0));
    return t;
}

/* ---------------------------------------------------------------- gradients */

START_TEST(asym_linear_gradcheck)
{
    ck_assert_sl_ok(sl_registry_init());
    GRADCHECK("asym_linear", "asym_linear",
              "in_features=7,out_features=5,n_fix=3,kappa=0.5,mask_seed=4", 3, 7);
    GRADCHECK("asym_linear no bias", "asym_linear",
              "in_features=6,out_features=4,n_fix=5,mask_seed=9,bias=false", 2, 6);
    GRADCHECK("asym_linear n_fix=0", "asym_linear",
              "in_features=4,out_features=3,n_fix=0,mask_seed=1", 2, 4);
}
END_TEST

START_TEST(asym_conv2d_gradcheck)
{
    ck_assert_sl_ok(sl_registry_init());
    GRADCHECK("asym_conv2d", "asym_conv2d",
              "in_channels=2,out_channels=3,kernel_size=3,padding=1,n_fix=5,kappa=0.5,"
              "mask_seed=4",
              2, 2, 5, 5);
    GRADCHECK("asym_conv2d stride 2, no bias", "asym_conv2d",
              "in_channels=3,out_channels=2,kernel_size=2,stride=2,n_fix=11,mask_seed=9,"
              "bias=false",
              2, 3, 5, 4);
    GRADCHECK("asym_conv2d n_fix=0", "asym_conv2d",
              "in_channels=1,out_channels=2,kernel_size=3,n_fix=0,mask_seed=1", 1, 1, 4, 4);
}
END_TEST

/* With n_fix = 0 and conv2d's weight, asym_conv2d is conv2d bit for bit in
 * forward and backward: both run symlab/conv.h's one convolution. */
START_TEST(asym_conv2d_is_conv2d_without_fixed_entries)
{
    const char *shape = "in_channels=3,out_channels=4,kernel_size=3,padding=1,stride=2";
    char text[160];
    snprintf(text, sizeof text, "%s,n_fix=0,mask_seed=1", shape);
    sl_model *c = MODEL(SL_F64, 3, "conv2d", shape, "tanh", "", "flatten", "", "linear",
                        "in_features=36,out_features=2");
    sl_model *a = MODEL(SL_F64, 4, "asym_conv2d", text, "tanh", "", "flatten", "", "linear",
                        "in_features=36,out_features=2");
    ck_assert_int_eq(sl_model_numel(a), sl_model_numel(c));
    ck_assert_sl_ok(sl_tensor_copy(sl_model_flat_params(a), sl_model_flat_params(c)));
    sl_tensor x = random_tensor(4, SHAPE(5, 3, 6, 6), 8);
    sl_tensor y = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&y, SL_I64, 1, SHAPE(5)));
    for (int64_t i = 0; i < 5; i++)
        ((int64_t *)y.data)[i] = i % 2;
    const sl_loss_type *ce = sl_registry_find(SL_KIND_LOSS, "cross_entropy");
    double la, lc;
    ck_assert_sl_ok(sl_model_loss(c, ce, &x, &y, true, &lc));
    ck_assert_sl_ok(sl_model_loss(a, ce, &x, &y, true, &la));
    ck_assert(la == lc);
    const sl_tensor *ga = sl_model_flat_grads(a), *gc = sl_model_flat_grads(c);
    for (int64_t i = 0; i < sl_tensor_numel(ga); i++)
        ck_assert_msg(sl_tensor_flat_get(ga, i) == sl_tensor_flat_get(gc, i),
                      "gradient %lld: %.17g vs conv2d's %.17g", (long long)i,
                      sl_tensor_flat_get(ga, i), sl_tensor_flat_get(gc, i));
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    sl_model_free(a);
    sl_model_free(c);
}
END_TEST

START_TEST(figlu_gradcheck)
{
    ck_assert_sl_ok(sl_registry_init());
    GRADCHECK("figlu", "figlu", "features=6,mask_seed=3", 4, 6);
    GRADCHECK("figlu std=0.3", "figlu", "features=3,mask_seed=8,std=0.3", 2, 3);
}
END_TEST

/* ---------------------------------------------------------------- fixed entries */

/* The effective weight (out, in) of a one-layer, bias-free W-asymmetric
 * model, read through forward alone.  asym_linear: the input is the
 * identity I (in, in), and y = I W_effᵀ = W_effᵀ exactly (each output sums
 * one product with 1 and products with 0).  asym_conv2d (padding 0): the
 * same one-hot rows shaped as (in, C, k, k) images, one output pixel each,
 * y[j, i] = W_eff[i, j] exactly.  `shape` is the input's shape after its
 * first axis (in = its product). */
static void effective_weight_of(sl_model *m, int ndim, const int64_t *shape, int64_t out,
                                double *w)
{
    int64_t in = 1, full[SL_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        in *= full[d + 1] = shape[d];
    full[0] = in;
    sl_tensor eye = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&eye, SL_F64, ndim + 1, full));
    for (int64_t j = 0; j < in; j++)
        ((double *)eye.data)[j * in + j] = 1.0; /* zeroed by alloc */
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &eye, &y));
    ck_assert_int_eq(sl_tensor_numel(y), in * out);
    for (int64_t i = 0; i < out; i++)
        for (int64_t j = 0; j < in; j++)
            w[i * in + j] = sl_tensor_flat_get(y, j * out + i);
    sl_tensor_release(&eye);
}

static void effective_weight(sl_model *m, int64_t in, int64_t out, double *w)
{
    effective_weight_of(m, 1, SHAPE(in), out, w);
}

enum { IN = 9, OUT = 6, NFIX = 4 };
#define ALIN_OPTIONS "in_features=9,out_features=6,n_fix=4,kappa=0.7,bias=false,mask_seed="

static sl_model *one_layer(uint64_t model_seed, const char *mask_seed)
{
    char text[128];
    snprintf(text, sizeof text, "%s%s", ALIN_OPTIONS, mask_seed);
    return MODEL(SL_F64, model_seed, "asym_linear", text);
}

/* One W-asymmetric layer under test: the model, its effective weight's
 * (rows, cols) and input shape for effective_weight_of, and the training
 * data's input and target shapes. */
typedef struct fixed_case {
    sl_model *m;
    int64_t rows, cols, nfix;
    int wdim;
    int64_t wshape[3];
    int xdim, ydim;
    int64_t xshape[4], yshape[4];
} fixed_case;

/* Trains the case's model for 25 full-batch MSE steps with `optim` and
 * checks that in every row exactly nfix entries of W_eff kept their bits,
 * that they are the weight_fixed buffer's values in column order, and
 * that every other entry moved. */
static void check_fixed_under(fixed_case *c, const char *optim, const char *options)
{
    sl_model *m = c->m;
    int64_t n = c->rows * c->cols;
    double *before = malloc((size_t)n * sizeof *before), *after = malloc((size_t)n * sizeof *after);
    ck_assert_ptr_nonnull(before);
    ck_assert_ptr_nonnull(after);
    effective_weight_of(m, c->wdim, c->wshape, c->rows, before);
    sl_tensor x = random_tensor(c->xdim, c->xshape, 1), y = random_tensor(c->ydim, c->yshape, 2);
    const sl_loss_type *mse = sl_registry_find(SL_KIND_LOSS, "mse");
    sl_options *o = sl_test_options(options);
    sl_optim *opt;
    ck_assert_sl_ok(sl_optim_new(optim, m, o, &opt));
    for (int step = 0; step < 25; step++) {
        double loss;
        ck_assert_sl_ok(sl_model_loss(m, mse, &x, &y, true, &loss));
        ck_assert_sl_ok(sl_optim_step(opt));
    }
    effective_weight_of(m, c->wdim, c->wshape, c->rows, after);
    const sl_tensor *fixed = sl_model_buffer(m, 0);
    ck_assert_str_eq(sl_model_buffer_name(m, 0), "0.weight_fixed");
    for (int64_t i = 0; i < c->rows; i++) {
        int64_t kept = 0;
        for (int64_t j = 0; j < c->cols; j++) {
            if (before[i * c->cols + j] != after[i * c->cols + j])
                continue;
            ck_assert_int_lt(kept, c->nfix);
            ck_assert_msg(after[i * c->cols + j] == sl_tensor_get(fixed, SHAPE(i, kept)),
                          "%s: row %lld col %lld kept %.17g, buffer holds %.17g", optim,
                          (long long)i, (long long)j, after[i * c->cols + j],
                          sl_tensor_get(fixed, SHAPE(i, kept)));
            kept++;
        }
        ck_assert_msg(kept == c->nfix, "%s: row %lld kept %lld entries, wanted %lld", optim,
                      (long long)i, (long long)kept, (long long)c->nfix);
    }
    sl_optim_free(opt);
    sl_options_free(o);
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    free(before);
    free(after);
}

/* Each optimizer on a fresh model from build(). */
static void check_fixed_under_all(sl_model *(*build)(fixed_case *c))
{
    static const char *const optims[][2] = {{"sgd", "lr=0.2,momentum=0.9,weight_decay=0.1"},
                                            {"adam", "lr=0.05,weight_decay=0.1"},
                                            {"adamw", "lr=0.05,weight_decay=0.5"}};
    for (int i = 0; i < 3; i++) {
        fixed_case c;
        build(&c);
        check_fixed_under(&c, optims[i][0], optims[i][1]);
        sl_model_free(c.m);
    }
}

static sl_model *linear_case(fixed_case *c)
{
    *c = (fixed_case){.rows = OUT, .cols = IN, .nfix = NFIX, .wdim = 1, .wshape = {IN},
                      .xdim = 2, .ydim = 2, .xshape = {16, IN}, .yshape = {16, OUT}};
    return c->m = one_layer(5, "77");
}

/* Filters of 2·3·3 = 18 entries, 5 fixed; trained on 4×4 images (2×2
 * output pixels), read on 3×3 ones. */
static sl_model *conv_case(fixed_case *c)
{
    *c = (fixed_case){.rows = 4, .cols = 18, .nfix = 5, .wdim = 3, .wshape = {2, 3, 3},
                      .xdim = 4, .ydim = 4, .xshape = {16, 2, 4, 4}, .yshape = {16, 4, 2, 2}};
    return c->m = MODEL(SL_F64, 5, "asym_conv2d",
                        "in_channels=2,out_channels=4,kernel_size=3,n_fix=5,kappa=0.7,"
                        "bias=false,mask_seed=77");
}

START_TEST(fixed_entries_never_change)
{
    check_fixed_under_all(linear_case);
}
END_TEST

START_TEST(conv_fixed_entries_never_change)
{
    check_fixed_under_all(conv_case);
}
END_TEST

/* Only the free entries are parameters: the optimizer has no state for the
 * fixed ones. */
START_TEST(fixed_entries_are_not_parameters)
{
    sl_model *m = MODEL(SL_F32, 1, "asym_linear",
                        "in_features=10,out_features=7,n_fix=3,mask_seed=2");
    ck_assert_int_eq(sl_model_numel(m), 7 * (10 - 3) + 7);
    ck_assert_str_eq(sl_model_param_name(m, 0), "0.weight");
    ck_assert_int_eq(sl_model_param(m, 0)->shape[1], 7);
    ck_assert_int_eq(sl_model_nbuffers(m), 1);
    sl_model_free(m);
    m = MODEL(SL_F32, 1, "asym_conv2d",
              "in_channels=3,out_channels=5,kernel_size=3,n_fix=7,mask_seed=2");
    ck_assert_int_eq(sl_model_numel(m), 5 * (27 - 7) + 5);
    ck_assert_str_eq(sl_model_param_name(m, 0), "0.weight");
    ck_assert_int_eq(sl_model_param(m, 0)->shape[1], 20);
    ck_assert_str_eq(sl_model_buffer_name(m, 0), "0.weight_fixed");
    ck_assert_int_eq(sl_model_buffer(m, 0)->shape[1], 7);
    sl_model_free(m);
}
END_TEST

/* Two models with one mask_seed and different model seeds pin the same
 * entries to the same values; another mask_seed pins others. */
START_TEST(masks_follow_mask_seed)
{
    sl_model *a = one_layer(1, "31"), *b = one_layer(2, "31"), *c = one_layer(3, "32");
    double wa[OUT * IN], wb[OUT * IN], wc[OUT * IN];
    effective_weight(a, IN, OUT, wa);
    effective_weight(b, IN, OUT, wb);
    effective_weight(c, IN, OUT, wc);
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < OUT * IN; i++) {
        same_ab += wa[i] == wb[i];
        same_ac += wa[i] == wc[i];
    }
    ck_assert_int_eq(same_ab, OUT * NFIX); /* the fixed entries, nothing else */
    ck_assert_int_eq(same_ac, 0);          /* other columns or other values */
    sl_model_free(a);
    sl_model_free(b);
    sl_model_free(c);
}
END_TEST

/* Over many rows every column is fixed about equally often (per row the
 * columns are a uniform draw without replacement), and the fixed values
 * have standard deviation kappa. */
START_TEST(mask_columns_are_uniform)
{
    enum { ROWS = 3000, COLS = 10, FIX = 3 };
    sl_model *m = MODEL(SL_F64, 1, "asym_linear",
                        "in_features=10,out_features=3000,n_fix=3,kappa=0.25,bias=false,"
                        "mask_seed=5");
    sl_model *p;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &p));
    ck_assert_sl_ok(sl_tensor_fill(sl_model_param(p, 0), 1e9)); /* free entries: 1e9 */
    static double w[ROWS * COLS];
    effective_weight(p, COLS, ROWS, w);
    int64_t count[COLS] = {0};
    double sum2 = 0;
    for (int64_t i = 0; i < ROWS; i++) {
        int per_row = 0;
        for (int64_t j = 0; j < COLS; j++)
            if (w[i * COLS + j] != 1e9) {
                count[j]++;
                per_row++;
                sum2 += w[i * COLS + j] * w[i * COLS + j];
            }
        ck_assert_int_eq(per_row, FIX);
    }
    /* each count ~ Binomial(3000, 0.3): mean 900, sd 25 */
    for (int j = 0; j < COLS; j++)
        ck_assert_msg(llabs(count[j] - 900) < 125, "column %d fixed %lld times of 3000", j,
                      (long long)count[j]);
    double sd = sqrt(sum2 / (ROWS * FIX));
    ck_assert_msg(fabs(sd - 0.25) < 0.01, "fixed values have sd %g, kappa 0.25", sd);
    sl_model_free(p);
    sl_model_free(m);
}
END_TEST

/* FiGLU's F is the same for one mask_seed whatever the model seed. */
START_TEST(figlu_mix_follows_mask_seed)
{
    sl_model *a = MODEL(SL_F64, 1, "figlu", "features=5,mask_seed=3");
    sl_model *b = MODEL(SL_F64, 2, "figlu", "features=5,mask_seed=3");
    sl_model *c = MODEL(SL_F64, 1, "figlu", "features=5,mask_seed=4");
    const sl_tensor *fa = sl_model_buffer(a, 0), *fb = sl_model_buffer(b, 0),
                    *fc = sl_model_buffer(c, 0);
    int same_ab = 0, same_ac = 0;
    for (int64_t i = 0; i < 25; i++) {
        same_ab += sl_tensor_flat_get(fa, i) == sl_tensor_flat_get(fb, i);
        same_ac += sl_tensor_flat_get(fa, i) == sl_tensor_flat_get(fc, i);
    }
    ck_assert_int_eq(same_ab, 25);
    ck_assert_int_eq(same_ac, 0);
    /* and the forward is sigmoid(F x) * x */
    sl_tensor x = random_tensor(2, SHAPE(2, 5), 3);
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(a, &x, &y));
    for (int64_t r = 0; r < 2; r++)
        for (int64_t i = 0; i < 5; i++) {
            double z = 0;
            for (int64_t j = 0; j < 5; j++)
                z += sl_tensor_get(fa, SHAPE(i, j)) * sl_tensor_get(&x, SHAPE(r, j));
            double want = sl_tensor_get(&x, SHAPE(r, i)) / (1 + exp(-z));
            ck_assert_double_eq_tol(sl_tensor_get(y, SHAPE(r, i)), want, 1e-14);
        }
    sl_tensor_release(&x);
    sl_model_free(a);
    sl_model_free(b);
    sl_model_free(c);
}
END_TEST

START_TEST(bad_options)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F32, &m));
    sl_options *o = sl_test_options("in_features=4,out_features=3,n_fix=4,mask_seed=1");
    ck_assert_sl_fails(sl_model_add(m, "asym_linear", o), SL_EINVAL, "n_fix");
    sl_options_free(o);
    o = sl_test_options("in_features=4,out_features=3,n_fix=1");
    ck_assert_sl_fails(sl_model_add(m, "asym_linear", o), SL_EINVAL, "mask_seed");
    sl_options_free(o);
    o = sl_test_options("in_channels=2,out_channels=3,kernel_size=2,n_fix=8,mask_seed=1");
    ck_assert_sl_fails(sl_model_add(m, "asym_conv2d", o), SL_EINVAL, "n_fix must be in [0, 8)");
    sl_options_free(o);
    o = sl_test_options("in_channels=2,out_channels=3,kernel_size=0,n_fix=1,mask_seed=1");
    ck_assert_sl_fails(sl_model_add(m, "asym_conv2d", o), SL_EINVAL,
                       "kernel_size must be > 0, got 0");
    sl_options_free(o);
    o = sl_test_options("features=0,mask_seed=1");
    ck_assert_sl_fails(sl_model_add(m, "figlu", o), SL_EINVAL, "features");
    sl_options_free(o);
    sl_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- roles */

/* A standard MLP has hidden layers; its W-asymmetric and σ-asymmetric
 * versions have none the walker could permute. */
START_TEST(walker_sees_no_symmetry)
{
    sl_model *std = MODEL(SL_F64, 1, "linear", "in_features=5,out_features=4", "relu", "",
                          "linear", "in_features=4,out_features=3");
    sl_model *w = MODEL(SL_F64, 1, "asym_linear", "in_features=5,out_features=4,n_fix=2,mask_seed=1",
                        "relu", "", "asym_linear",
                        "in_features=4,out_features=3,n_fix=2,mask_seed=2");
    sl_model *s = MODEL(SL_F64, 1, "linear", "in_features=5,out_features=4", "figlu",
                        "features=4,mask_seed=1", "linear", "in_features=4,out_features=3");
    sl_structure *st;
    ck_assert_sl_ok(sl_model_structure(std, &st));
    ck_assert_int_eq(sl_structure_nhidden(st), 1);
    sl_structure_free(st);
    ck_assert_sl_ok(sl_model_structure(w, &st));
    ck_assert_int_eq(sl_structure_nhidden(st), 0);
    sl_structure_free(st);
    ck_assert_sl_ok(sl_model_structure(s, &st));
    ck_assert_int_eq(sl_structure_nlayers(st), 2);
    ck_assert_int_eq(sl_structure_nhidden(st), 0);
    sl_structure_free(st);
    sl_model_free(std);
    sl_model_free(w);
    sl_model_free(s);
    /* conv2d -> asym_conv2d: the standard conv's channels end at an opaque
     * layer, so no hidden layer; with conv2d after it there is one. */
    sl_model *c = MODEL(SL_F64, 1, "conv2d", "in_channels=1,out_channels=3,kernel_size=3", "relu",
                        "", "asym_conv2d",
                        "in_channels=3,out_channels=2,kernel_size=3,n_fix=4,mask_seed=1");
    sl_model *cs = MODEL(SL_F64, 1, "conv2d", "in_channels=1,out_channels=3,kernel_size=3",
                         "relu", "", "conv2d", "in_channels=3,out_channels=2,kernel_size=3");
    ck_assert_sl_ok(sl_model_structure(c, &st));
    ck_assert_int_eq(sl_structure_nhidden(st), 0);
    sl_structure_free(st);
    ck_assert_sl_ok(sl_model_structure(cs, &st));
    ck_assert_int_eq(sl_structure_nhidden(st), 1);
    sl_structure_free(st);
    sl_model_free(c);
    sl_model_free(cs);
}
END_TEST


/* ---------------------------------------------------------------- interpolate */

/* A fresh file name under /tmp (the file exists, empty); unlink it after. */
static void temp_path(char *buf, size_t size)
{
    snprintf(buf, size, "/tmp/check_asym.XXXXXX");
    int fd = mkstemp(buf);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

/* Runs the interpolate probe on a against b (saved to a checkpoint). */
static sl_record *interpolate(sl_model *a, sl_model *b, const sl_dataset *d, const char *extra)
{
    char path[64], text[256];
    temp_path(path, sizeof path);
    ck_assert_sl_ok(sl_model_save(b, path));
    snprintf(text, sizeof text, "other=%s%s%s", path, extra ? "," : "", extra ? extra : "");
    sl_record *r = sl_test_probe("interpolate", text, a, d);
    unlink(path);
    return r;
}

static double get_i(const sl_record *r, const char *stem, int i)
{
    char name[32];
    snprintf(name, sizeof name, "%s_%d", stem, i);
    return sl_test_get(r, name);
}

/* n rows of 4 features and labels in 0..2. */
static void label_data(sl_dataset *d, int64_t n, uint64_t seed)
{
    sl_tensor x = random_tensor(2, SHAPE(n, 4), seed), y = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&y, SL_I64, 1, SHAPE(n)));
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)y.data)[i] = i % 3;
    ck_assert_sl_ok(sl_dataset_from_tensors(&x, &y, d));
    sl_tensor_release(&x);
    sl_tensor_release(&y);
}

/* A model against itself: a flat curve, no barrier. */
START_TEST(interpolate_identical_models)
{
    sl_model *a = MODEL(SL_F32, 3, "asym_linear", "in_features=4,out_features=6,n_fix=2,mask_seed=1",
                        "relu", "", "linear", "in_features=6,out_features=3");
    sl_dataset d = {0};
    label_data(&d, 30, 4);
    sl_record *r = interpolate(a, a, &d, "points=5");
    double l0 = get_i(r, "loss", 0), a0 = get_i(r, "acc", 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_double_eq(get_i(r, "lambda", i), i / 4.0);
        ck_assert_double_eq(get_i(r, "loss", i), l0);
        ck_assert_double_eq(get_i(r, "acc", i), a0);
    }
    ck_assert_double_eq(sl_test_get(r, "barrier"), 0.0);
    ck_assert_double_eq(sl_test_get(r, "acc_barrier"), 0.0);
    ck_assert_double_le(fabs(sl_test_get(r, "max_barrier")), 1e-6 * l0);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(a);
}
END_TEST

/* A linear model under MSE: along the line the residual of row n is
 * d_n + λ e_n, so L(λ) = mean (d + λ e)², a quadratic whose midpoint
 * barrier is −mean(e²)/4 and whose rise above the chord is never
 * positive. */
START_TEST(interpolate_linear_mse_is_quadratic)
{
    enum { N = 20, D = 3, K = 6 };
    sl_model *a = MODEL(SL_F64, 1, "linear", "in_features=3,out_features=1");
    sl_model *b = MODEL(SL_F64, 2, "linear", "in_features=3,out_features=1");
    sl_tensor x = random_tensor(2, SHAPE(N, D), 5), y = random_tensor(2, SHAPE(N, 1), 6);
    sl_dataset ds = {0};
    ck_assert_sl_ok(sl_dataset_from_tensors(&x, &y, &ds)); /* rounds to f32: read back */
    sl_record *r = interpolate(a, b, &ds, "points=6,loss=mse");
    const sl_tensor *wa = sl_model_param(a, 0), *ba = sl_model_param(a, 1);
    const sl_tensor *wb = sl_model_param(b, 0), *bb = sl_model_param(b, 1);
    double dres[N], e[N], q = 0;
    for (int n = 0; n < N; n++) {
        dres[n] = sl_tensor_flat_get(ba, 0) - sl_tensor_flat_get(&ds.y, n);
        e[n] = sl_tensor_flat_get(bb, 0) - sl_tensor_flat_get(ba, 0);
        for (int j = 0; j < D; j++) {
            double xv = sl_tensor_flat_get(&ds.x, n * D + j);
            dres[n] += xv * sl_tensor_flat_get(wa, j);
            e[n] += xv * (sl_tensor_flat_get(wb, j) - sl_tensor_flat_get(wa, j));
        }
        q += e[n] * e[n] / N;
    }
    for (int i = 0; i < K; i++) {
        double t = i / (K - 1.0), want = 0;
        for (int n = 0; n < N; n++)
            want += (dres[n] + t * e[n]) * (dres[n] + t * e[n]) / N;
        ck_assert_double_eq_tol(get_i(r, "loss", i), want, 1e-12 * want);
    }
    ck_assert_double_eq_tol(sl_test_get(r, "barrier"), -q / 4, 1e-12 * q);
    ck_assert_double_le(sl_test_get(r, "max_barrier"), 1e-12 * q); /* the endpoints, 0 */
    ck_assert_double_ge(sl_test_get(r, "max_barrier"), -1e-12 * q);
    ck_assert_int_eq(sl_record_get(r, "acc_0", &q), SL_ENOTFOUND); /* no labels */
    sl_record_free(r);
    sl_dataset_release(&ds);
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

/* With refresh_batches, θ(λ)'s running statistics come from its own
 * activations.  B is A with nonsense statistics; after refreshing on full
 * batches (0.9^300 of the start left) every point holds the data's
 * statistics of the shared weights, so the curve is flat at the loss of A
 * holding the statistics computed here by hand. */
START_TEST(interpolate_refreshes_statistics)
{
    enum { N = 40, IN_F = 4, H = 5 };
    sl_model *a = MODEL(SL_F64, 1, "linear", "in_features=4,out_features=5", "batchnorm",
                        "num_features=5", "linear", "in_features=5,out_features=3");
    sl_dataset d = {0};
    label_data(&d, N, 2);
    sl_model *b, *ref;
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &b));
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &ref));
    ck_assert_str_eq(sl_model_buffer_name(b, 0), "1.running_mean");
    ck_assert_sl_ok(sl_tensor_fill(sl_model_buffer(b, 0), 3.0));
    ck_assert_sl_ok(sl_tensor_fill(sl_model_buffer(b, 1), 50.0));
    const sl_tensor *w = sl_model_param(a, 0), *bias = sl_model_param(a, 1);
    for (int64_t j = 0; j < H; j++) { /* mean and unbiased variance of unit j */
        double h[N], mean = 0, var = 0;
        for (int64_t n = 0; n < N; n++) {
            h[n] = sl_tensor_flat_get(bias, j);
            for (int64_t i = 0; i < IN_F; i++)
                h[n] += sl_tensor_flat_get(&d.x, n * IN_F + i) * sl_tensor_get(w, SHAPE(j, i));
            mean += h[n] / N;
        }
        for (int64_t n = 0; n < N; n++)
            var += (h[n] - mean) * (h[n] - mean) / (N - 1);
        sl_tensor_set(sl_model_buffer(ref, 0), &j, mean);
        sl_tensor_set(sl_model_buffer(ref, 1), &j, var);
    }
    sl_record *e = sl_record_new();
    ck_assert_sl_ok(sl_evaluate(ref, &d, "cross_entropy", N, e));
    double want = sl_test_get(e, "loss");
    sl_record *r = interpolate(a, b, &d, "points=3,batch=40,refresh_batches=300");
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(get_i(r, "loss", i), want, 1e-9);
    sl_record *plain = interpolate(a, b, &d, "points=3,batch=40");
    ck_assert_double_gt(fabs(get_i(plain, "loss", 1) - want), 1e-3); /* the option matters */
    sl_record_free(plain);
    sl_record_free(r);
    sl_record_free(e);
    sl_model_free(ref);
    sl_model_free(b);
    sl_dataset_release(&d);
    sl_model_free(a);
}
END_TEST

START_TEST(interpolate_bad_options)
{
    sl_model *a = MODEL(SL_F32, 1, "linear", "in_features=4,out_features=3");
    sl_dataset d = {0};
    label_data(&d, 6, 1);
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options("other=/nonexistent/b.safetensors");
    ck_assert_sl_fails(sl_probe_run("interpolate", o, a, &d, r), SL_EIO, "other");
    sl_options_free(o);
    o = sl_test_options("other=x,points=1");
    ck_assert_sl_fails(sl_probe_run("interpolate", o, a, &d, r), SL_EINVAL, "points");
    sl_options_free(o);
    o = sl_test_options("");
    ck_assert_sl_fails(sl_probe_run("interpolate", o, a, &d, r), SL_EINVAL, "other");
    sl_options_free(o);
    o = sl_test_options("other=x");
    ck_assert_sl_fails(sl_probe_run("interpolate", o, a, NULL, r), SL_EINVAL, "dataset");
    sl_options_free(o);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(a);
}
END_TEST

/* ---------------------------------------------------------------- assignment */

/* The best sum over all permutations of 0..n-1, by enumeration. */
static void brute(int n, const double *c, int depth, int *perm, bool *used, double sum,
                  double *best_min, double *best_max)
{
    if (depth == n) {
        *best_min = fmin(*best_min, sum);
        *best_max = fmax(*best_max, sum);
        return;
    }
    for (int j = 0; j < n; j++) {
        if (used[j])
            continue;
        used[j] = true;
        perm[depth] = j;
        brute(n, c, depth + 1, perm, used, sum + c[depth * n + j], best_min, best_max);
        used[j] = false;
    }
}

/* Σ_i c[i][col[i]], after checking col is a permutation. */
static double assignment_sum(int n, const double *c, const int64_t *col)
{
    bool seen[8] = {false};
    double s = 0;
    for (int i = 0; i < n; i++) {
        ck_assert(col[i] >= 0 && col[i] < n && !seen[col[i]]);
        seen[col[i]] = true;
        s += c[i * n + col[i]];
    }
    return s;
}

static void check_against_brute(int n, const double *c)
{
    int perm[8];
    bool used[8] = {false};
    double lo = INFINITY, hi = -INFINITY;
    brute(n, c, 0, perm, used, 0.0, &lo, &hi);
    int64_t col[8];
    ck_assert_sl_ok(asym_assign(n, c, false, col));
    ck_assert_double_eq_tol(assignment_sum(n, c, col), lo, 1e-9 * (1 + fabs(lo)));
    ck_assert_sl_ok(asym_assign(n, c, true, col));
    ck_assert_double_eq_tol(assignment_sum(n, c, col), hi, 1e-9 * (1 + fabs(hi)));
}

START_TEST(assignment_matches_brute_force)
{
    sl_rng rng;
    sl_rng_seed(&rng, 17);
    double c[49];
    for (int n = 1; n <= 7; n++)
        for (int rep = 0; rep < (n < 7 ? 30 : 6); rep++) {
            for (int i = 0; i < n * n; i++) /* real costs, then integer ones with ties */
                c[i] = rep % 2 ? sl_rng_normal(&rng) : (double)sl_rng_below(&rng, 3);
            check_against_brute(n, c);
        }
}
END_TEST

START_TEST(assignment_bad_input)
{
    double c[4] = {1, 2, NAN, 4};
    int64_t col[2];
    ck_assert_sl_fails(asym_assign(2, c, false, col), SL_ENUMERIC, "(1, 0)");
    ck_assert_sl_fails(asym_assign(0, c, false, col), SL_EINVAL, "1 x 1");
}
END_TEST

/* ---------------------------------------------------------------- weight matching */

static void randomise(sl_model *m, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &rng, 0.0, 0.5));
}

/* A few SGD steps on random labels, so the weights are not an init. */
static void train_briefly(sl_model *m, int64_t in_features)
{
    sl_dataset d = {0};
    sl_tensor x = random_tensor(2, SHAPE(32, in_features), 21), y = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&y, SL_I64, 1, SHAPE(32)));
    for (int64_t i = 0; i < 32; i++)
        ((int64_t *)y.data)[i] = (i * 7) % 3;
    const sl_loss_type *ce = sl_registry_find(SL_KIND_LOSS, "cross_entropy");
    sl_options *o = sl_test_options("lr=0.1,momentum=0.9");
    sl_optim *opt;
    ck_assert_sl_ok(sl_optim_new("sgd", m, o, &opt));
    for (int step = 0; step < 30; step++) {
        double loss;
        ck_assert_sl_ok(sl_model_loss(m, ce, &x, &y, true, &loss));
        ck_assert_sl_ok(sl_optim_step(opt));
    }
    sl_optim_free(opt);
    sl_options_free(o);
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    sl_dataset_release(&d);
}

/* Aligns b to a with the probe; returns the aligned model (a clone of a
 * holding the probe's output) and the record in *rec. */
static sl_model *weight_match(sl_model *a, sl_model *b, sl_record **rec)
{
    char pb[64], pout[64], text[200];
    temp_path(pb, sizeof pb);
    temp_path(pout, sizeof pout);
    ck_assert_sl_ok(sl_model_save(b, pb));
    snprintf(text, sizeof text, "other=%s,output=%s,seed=3", pb, pout);
    *rec = sl_test_probe("weight_matching", text, a, NULL);
    sl_model *c;
    ck_assert_sl_ok(sl_model_clone(a, sl_model_dtype(a), &c));
    ck_assert_sl_ok(sl_model_load(c, pout));
    unlink(pb);
    unlink(pout);
    return c;
}

/* b = a with every hidden layer shuffled; weight matching must undo it
 * exactly, and b computes a's function to round-off. */
static void check_recovers(sl_model *a, int ndim, const int64_t *xshape)
{
    sl_model *b;
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &b));
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(a, &s));
    ck_assert_int_gt(sl_structure_nhidden(s), 0);
    sl_rng rng;
    sl_rng_seed(&rng, 99);
    int64_t moved = 0;
    for (int h = 0; h < sl_structure_nhidden(s); h++) {
        int64_t k = sl_structure_hidden(s, h)->units, perm[64];
        for (int64_t j = 0; j < k; j++)
            perm[j] = j;
        sl_rng_shuffle(&rng, perm, k);
        for (int64_t j = 0; j < k; j++)
            moved += perm[j] != j;
        ck_assert_sl_ok(sl_structure_permute(b, s, h, perm));
    }
    ck_assert_int_gt(moved, 0);
    sl_tensor x = random_tensor(ndim, xshape, 5);
    sl_model_set_training(a, false);
    sl_model_set_training(b, false);
    ck_assert_double_le(sl_test_output_gap(a, b, &x), 1e-12);
    sl_record *r;
    sl_model *c = weight_match(a, b, &r);
    ck_assert_double_eq(sl_test_get(r, "units_moved"), (double)moved);
    ck_assert_double_eq(sl_test_get(r, "converged"), 1.0);
    ck_assert_double_gt(sl_test_get(r, "distance_before"), 0.1);
    ck_assert_double_eq(sl_test_get(r, "distance_after"), 0.0);
    const sl_tensor *pa = sl_model_flat_params(a), *pc = sl_model_flat_params(c);
    for (int64_t i = 0; i < sl_tensor_numel(pa); i++)
        ck_assert_msg(sl_tensor_flat_get(pa, i) == sl_tensor_flat_get(pc, i),
                      "parameter %lld not recovered", (long long)i);
    for (int i = 0; i < sl_model_nbuffers(a); i++)
        for (int64_t j = 0; j < sl_tensor_numel(sl_model_buffer(a, i)); j++)
            ck_assert(sl_tensor_flat_get(sl_model_buffer(a, i), j) ==
                      sl_tensor_flat_get(sl_model_buffer(c, i), j));
    sl_record_free(r);
    sl_tensor_release(&x);
    sl_structure_free(s);
    sl_model_free(c);
    sl_model_free(b);
}

START_TEST(weight_matching_recovers_permuted_mlp)
{
    sl_model *a = MODEL(SL_F64, 4, "linear", "in_features=6,out_features=9", "relu", "",
                        "linear", "in_features=9,out_features=7", "tanh", "", "linear",
                        "in_features=7,out_features=3");
    train_briefly(a, 6);
    check_recovers(a, 2, SHAPE(5, 6));
    sl_model_free(a);
}
END_TEST

/* Channels, batch norm's per-unit tensors, pooling and a flatten into
 * blocks of H*W features. */
START_TEST(weight_matching_recovers_permuted_cnn)
{
    sl_model *a = MODEL(SL_F64, 5, "conv2d", "in_channels=2,out_channels=4,kernel_size=3,padding=1",
                        "batchnorm", "num_features=4", "relu", "", "maxpool2d", "kernel_size=2",
                        "conv2d", "in_channels=4,out_channels=5,kernel_size=3", "relu", "",
                        "flatten", "", "linear", "in_features=20,out_features=3");
    randomise(a, 6);
    sl_rng rng;
    sl_rng_seed(&rng, 8); /* running statistics that differ per channel */
    for (int i = 0; i < sl_model_nbuffers(a); i++) /* not the i64 num_batches_tracked */
        if (sl_model_buffer(a, i)->dtype != SL_I64)
            ck_assert_sl_ok(sl_tensor_uniform(sl_model_buffer(a, i), &rng, 0.5, 1.5));
    check_recovers(a, 4, SHAPE(2, 2, 8, 8));
    sl_model_free(a);
}
END_TEST

/* A third-party weight layer stored transposed (tests/plugins/dense.c). */
START_TEST(weight_matching_third_party_layer)
{
    ck_assert_sl_ok(sl_registry_init());
    if (!sl_registry_find(SL_KIND_MODULE, "dense_t"))
        ck_assert_sl_ok(sl_plugin_load(SL_TEST_PLUGINDIR "/dense.so"));
    sl_model *a = MODEL(SL_F64, 1, "dense_t", "in_features=4,out_features=8", "relu", "",
                        "dense_t", "in_features=8,out_features=6", "tanh", "", "linear",
                        "in_features=6,out_features=2");
    randomise(a, 2);
    check_recovers(a, 2, SHAPE(3, 4));
    sl_model_free(a);
}
END_TEST

/* Residual models, built with containers (model.h); options text as in
 * sl_test_model. */
static void add(sl_model *m, const char *type, const char *text)
{
    sl_options *o = sl_test_options(text);
    ck_assert_sl_ok(sl_model_add(m, type, o));
    sl_options_free(o);
}

/* linear 6→8; residual { linear, relu, linear }; relu;
 * residual { linear, tanh, linear | shortcut linear }; linear 10→3.
 * Hidden layers: the first stream (8 units: the stem and block 1's last
 * linear write it, block 1's first linear, block 2's first linear and
 * shortcut read it), one inside each block, and the second stream (10:
 * block 2's last linear and shortcut write it, the head reads it). */
static sl_model *residual_mlp(uint64_t seed)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    add(m, "linear", "in_features=6,out_features=8");
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    add(m, "linear", "in_features=8,out_features=12");
    add(m, "relu", NULL);
    add(m, "linear", "in_features=12,out_features=8");
    ck_assert_sl_ok(sl_model_end(m));
    add(m, "relu", NULL);
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    add(m, "linear", "in_features=8,out_features=9");
    add(m, "tanh", NULL);
    add(m, "linear", "in_features=9,out_features=10");
    ck_assert_sl_ok(sl_model_branch(m, "shortcut"));
    add(m, "linear", "in_features=8,out_features=10");
    ck_assert_sl_ok(sl_model_end(m));
    add(m, "linear", "in_features=10,out_features=3");
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

/* A small ResNet: conv, batch norm, relu; residual { conv, bn, relu, conv,
 * bn }; relu; residual { conv s2, bn, relu, conv, bn | shortcut conv 1×1
 * s2, bn }; relu; global average pool; linear. */
static sl_model *mini_resnet(uint64_t seed)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    add(m, "conv2d", "in_channels=2,out_channels=4,kernel_size=3,padding=1");
    add(m, "batchnorm", "num_features=4");
    add(m, "relu", NULL);
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    add(m, "conv2d", "in_channels=4,out_channels=4,kernel_size=3,padding=1");
    add(m, "batchnorm", "num_features=4");
    add(m, "relu", NULL);
    add(m, "conv2d", "in_channels=4,out_channels=4,kernel_size=3,padding=1");
    add(m, "batchnorm", "num_features=4");
    ck_assert_sl_ok(sl_model_end(m));
    add(m, "relu", NULL);
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    add(m, "conv2d", "in_channels=4,out_channels=6,kernel_size=3,padding=1,stride=2");
    add(m, "batchnorm", "num_features=6");
    add(m, "relu", NULL);
    add(m, "conv2d", "in_channels=6,out_channels=6,kernel_size=3,padding=1");
    add(m, "batchnorm", "num_features=6");
    ck_assert_sl_ok(sl_model_branch(m, "shortcut"));
    add(m, "conv2d", "in_channels=4,out_channels=6,kernel_size=1,stride=2");
    add(m, "batchnorm", "num_features=6");
    ck_assert_sl_ok(sl_model_end(m));
    add(m, "relu", NULL);
    add(m, "global_avgpool", NULL);
    add(m, "linear", "in_features=6,out_features=3");
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

/* Batch norm's affine parameters and running statistics away from their
 * ones and zeros, different per channel, so every ref carries information. */
static void randomise_resnet(sl_model *m, uint64_t seed)
{
    randomise(m, seed);
    sl_rng rng;
    sl_rng_seed(&rng, seed + 1);
    for (int i = 0; i < sl_model_nbuffers(m); i++) /* not the i64 num_batches_tracked */
        if (sl_model_buffer(m, i)->dtype != SL_I64)
            ck_assert_sl_ok(sl_tensor_uniform(sl_model_buffer(m, i), &rng, 0.5, 1.5));
}

/* The residual streams are hidden layers the walker ties: a random
 * permutation of every hidden layer, streams included, is undone exactly. */
START_TEST(weight_matching_recovers_permuted_residual_mlp)
{
    sl_model *a = residual_mlp(4);
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(a, &s));
    ck_assert_int_eq(sl_structure_nhidden(s), 4);
    int streams = 0;
    for (int h = 0; h < sl_structure_nhidden(s); h++)
        streams += sl_structure_hidden(s, h)->nproducers == 2;
    ck_assert_int_eq(streams, 2);
    sl_structure_free(s);
    train_briefly(a, 6);
    check_recovers(a, 2, SHAPE(5, 6));
    sl_model_free(a);
}
END_TEST

START_TEST(weight_matching_recovers_permuted_resnet)
{
    sl_model *a = mini_resnet(5);
    randomise_resnet(a, 6);
    check_recovers(a, 4, SHAPE(2, 2, 8, 8));
    sl_model_free(a);
}
END_TEST

/* Two independent initialisations of a residual model: the aligned B is
 * B's function to f64 round-off, and closer to A. */
static void check_keeps_function(sl_model *a, sl_model *b, int ndim, const int64_t *xshape)
{
    sl_record *r;
    sl_model *c = weight_match(a, b, &r);
    sl_tensor x = random_tensor(ndim, xshape, 3);
    sl_model_set_training(b, false);
    sl_model_set_training(c, false);
    double gap = sl_test_output_gap(b, c, &x);
    ck_assert_msg(gap <= 1e-13, "aligned model's outputs differ by %g", gap);
    ck_assert_double_gt(sl_test_get(r, "units_moved"), 0);
    ck_assert_double_lt(sl_test_get(r, "distance_after"), sl_test_get(r, "distance_before"));
    ck_assert_double_eq(sl_test_get(r, "converged"), 1.0);
    sl_record_free(r);
    sl_tensor_release(&x);
    sl_model_free(c);
}

START_TEST(weight_matching_keeps_residual_function)
{
    sl_model *a = residual_mlp(1), *b = residual_mlp(2);
    check_keeps_function(a, b, 2, SHAPE(7, 6));
    sl_model_free(a);
    sl_model_free(b);
    a = mini_resnet(1);
    b = mini_resnet(2);
    randomise_resnet(a, 3);
    randomise_resnet(b, 4);
    check_keeps_function(a, b, 4, SHAPE(3, 2, 8, 8));
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

/* Two independent initialisations: the aligned B is B's function in
 * other coordinates, closer to A. */
START_TEST(weight_matching_keeps_function)
{
    const char *const spec[] = {"linear", "in_features=5,out_features=16", "relu", "",
                                "linear", "in_features=16,out_features=12", "relu", "",
                                "linear", "in_features=12,out_features=3", NULL};
    sl_model *a = sl_test_model(SL_F64, 1, spec), *b = sl_test_model(SL_F64, 2, spec);
    sl_record *r;
    sl_model *c = weight_match(a, b, &r);
    sl_tensor x = random_tensor(2, SHAPE(7, 5), 3);
    double gap = sl_test_output_gap(b, c, &x);
    ck_assert_msg(gap <= 1e-13, "aligned model's outputs differ by %g", gap);
    ck_assert_double_gt(sl_test_get(r, "units_moved"), 0);
    ck_assert_double_lt(sl_test_get(r, "distance_after"), sl_test_get(r, "distance_before"));
    ck_assert_double_eq(sl_test_get(r, "converged"), 1.0);
    ck_assert_double_ge(sl_test_get(r, "sweeps"), 2); /* the last one changes nothing */
    sl_record_free(r);
    sl_tensor_release(&x);
    sl_model_free(a);
    sl_model_free(b);
    sl_model_free(c);
}
END_TEST

/* Asymmetric networks have no hidden layer to permute: B comes back as is. */
START_TEST(weight_matching_leaves_asym_alone)
{
    const char *const spec[] = {"asym_linear", "in_features=5,out_features=6,n_fix=2,mask_seed=1",
                                "relu", "", "asym_linear",
                                "in_features=6,out_features=3,n_fix=2,mask_seed=2", NULL};
    sl_model *a = sl_test_model(SL_F64, 1, spec), *b = sl_test_model(SL_F64, 2, spec);
    sl_record *r;
    sl_model *c = weight_match(a, b, &r);
    ck_assert_double_eq(sl_test_get(r, "sweeps"), 0);
    ck_assert_double_eq(sl_test_get(r, "units_moved"), 0);
    ck_assert_double_eq(sl_test_get(r, "distance_after"), sl_test_get(r, "distance_before"));
    for (int64_t i = 0; i < sl_model_numel(b); i++)
        ck_assert(sl_tensor_flat_get(sl_model_flat_params(b), i) ==
                  sl_tensor_flat_get(sl_model_flat_params(c), i));
    sl_record_free(r);
    sl_model_free(a);
    sl_model_free(b);
    sl_model_free(c);
}
END_TEST

START_TEST(weight_matching_bad_options)
{
    sl_model *a = MODEL(SL_F32, 1, "linear", "in_features=4,out_features=3");
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options("other=/nonexistent/b.safetensors");
    ck_assert_sl_fails(sl_probe_run("weight_matching", o, a, NULL, r), SL_EINVAL, "output");
    sl_options_free(o);
    o = sl_test_options("other=/nonexistent/b.safetensors,output=/tmp/x");
    ck_assert_sl_fails(sl_probe_run("weight_matching", o, a, NULL, r), SL_EIO, "other");
    sl_options_free(o);
    sl_record_free(r);
    sl_model_free(a);
}
END_TEST

static Suite *asym_suite(void)
{
    Suite *s = suite_create("asym");
    TCase *layers = tcase_create("layers");
    tcase_add_test(layers, asym_linear_gradcheck);
    tcase_add_test(layers, asym_conv2d_gradcheck);
    tcase_add_test(layers, asym_conv2d_is_conv2d_without_fixed_entries);
    tcase_add_test(layers, figlu_gradcheck);
    tcase_add_test(layers, fixed_entries_never_change);
    tcase_add_test(layers, conv_fixed_entries_never_change);
    tcase_add_test(layers, fixed_entries_are_not_parameters);
    tcase_add_test(layers, masks_follow_mask_seed);
    tcase_add_test(layers, mask_columns_are_uniform);
    tcase_add_test(layers, figlu_mix_follows_mask_seed);
    tcase_add_test(layers, bad_options);
    tcase_add_test(layers, walker_sees_no_symmetry);
    suite_add_tcase(s, layers);
    TCase *interp = tcase_create("interpolate");
    tcase_add_test(interp, interpolate_identical_models);
    tcase_add_test(interp, interpolate_linear_mse_is_quadratic);
    tcase_add_test(interp, interpolate_refreshes_statistics);
    tcase_add_test(interp, interpolate_bad_options);
    suite_add_tcase(s, interp);
    TCase *match = tcase_create("weight_matching");
    tcase_add_test(match, assignment_matches_brute_force);
    tcase_add_test(match, assignment_bad_input);
    tcase_add_test(match, weight_matching_recovers_permuted_mlp);
    tcase_add_test(match, weight_matching_recovers_permuted_cnn);
    tcase_add_test(match, weight_matching_third_party_layer);
    tcase_add_test(match, weight_matching_keeps_function);
    tcase_add_test(match, weight_matching_recovers_permuted_residual_mlp);
    tcase_add_test(match, weight_matching_recovers_permuted_resnet);
    tcase_add_test(match, weight_matching_keeps_residual_function);
    tcase_add_test(match, weight_matching_leaves_asym_alone);
    tcase_add_test(match, weight_matching_bad_options);
    suite_add_tcase(s, match);
    return s;
}

int main(void) { return sl_test_run(asym_suite()); }
