/* tests/check_symbreak.c — input expansion, dropout, batch norm, upsampling,
 * gradient scaling and the symmetry probes (issue 3): gradients against
 * finite differences, layouts against naive loops, running statistics
 * against a naive update, checkpoints, train/eval behaviour, and the
 * invariances the symmetry metrics promise. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "gradcheck.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

#define GRADCHECK(label, type, text, eval, jitter, ...) \
    sl_test_gradcheck(label, type, text, eval, 7, jitter, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

#define MODEL(dtype, seed, ...) sl_test_model(dtype, seed, (const char *const[]){__VA_ARGS__, NULL})

static sl_tensor random_tensor(sl_dtype dtype, int ndim, const int64_t *shape, uint64_t seed)
{
    sl_tensor t = {0};
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&t, dtype, ndim, shape));
    gradcheck_fill(&t, &rng);
    return t;
}

static const double *f64(const sl_tensor *t) { return t->data; }
static double *f64w(sl_tensor *t) { return t->data; }

static double *param(sl_model *m, const char *name)
{
    int i = sl_model_find_param(m, name);
    ck_assert_msg(i >= 0, "no parameter %s", name);
    return sl_model_param(m, i)->data;
}

static double *buffer(sl_model *m, const char *name)
{
    for (int i = 0; i < sl_model_nbuffers(m); i++)
        if (strcmp(sl_model_buffer_name(m, i), name) == 0)
            return sl_model_buffer(m, i)->data;
    ck_abort_msg("no buffer %s", name);
    return NULL;
}

static void expect_near(double got, double want, double tol, const char *what)
{
    ck_assert_msg(fabs(got - want) <= tol * fmax(1.0, fabs(want)), "%s: got %.17g, want %.17g",
                  what, got, want);
}

/* ---------------------------------------------------------------- gradients */

START_TEST(test_gradcheck_input_expand)
{
    GRADCHECK("input_expand image", "input_expand", "factor=2,offset=1,fill=0.5", false, 0, 2,
              2, 3, 3);
    GRADCHECK("input_expand image K3", "input_expand", "factor=3,offset=2", false, 0, 1, 1, 2,
              4);
    GRADCHECK("input_expand interleave", "input_expand", "extra=7", false, 0, 3, 5);
    GRADCHECK("input_expand before", "input_expand", "extra=3,placement=before", false, 0, 2,
              4);
    GRADCHECK("input_expand after", "input_expand", "mode=vector,placement=after", false, 0, 2,
              4);
}
END_TEST

START_TEST(test_gradcheck_dropout_eval)
{
    GRADCHECK("dropout eval", "dropout", "p=0.4", true, 0, 3, 7);
}
END_TEST

START_TEST(test_gradcheck_batchnorm)
{
    GRADCHECK("batchnorm 1d", "batchnorm", "num_features=3", false, 0.5, 5, 3);
    GRADCHECK("batchnorm 1d (N,C,L)", "batchnorm", "num_features=2,mode=1d", false, 0.5, 3, 2,
              4);
    GRADCHECK("batchnorm 2d", "batchnorm", "num_features=2", false, 0.5, 3, 2, 3, 3);
    GRADCHECK("batchnorm no affine", "batchnorm", "num_features=3,affine=false", false, 0, 4,
              3);
    GRADCHECK("batchnorm eval", "batchnorm", "num_features=2,mode=2d", true, 0.5, 2, 2, 2, 3);
}
END_TEST

START_TEST(test_gradcheck_upsample)
{
    GRADCHECK("upsample x2", "upsample", NULL, false, 0, 2, 2, 3, 4);
    GRADCHECK("upsample x3", "upsample", "factor=3", false, 0, 1, 1, 3, 2);
}
END_TEST

/* Train-mode dropout behind a linear layer: the mask is held fixed by
 * replaying the module's noise stream before every forward, so central
 * differences of L = sum(G * y) over the linear's parameters must match
 * the analytic gradient through the mask. */
static double masked_loss(sl_model *m, sl_rng *dropout_rng, const sl_rng *saved,
                          const sl_tensor *x, const sl_tensor *g)
{
    const sl_tensor *y;
    *dropout_rng = *saved;
    ck_assert_sl_ok(sl_model_forward(m, x, &y));
    double s = 0;
    for (int64_t i = 0; i < sl_tensor_numel(y); i++)
        s += f64(y)[i] * f64(g)[i];
    return s;
}

START_TEST(test_gradcheck_dropout_fixed_mask)
{
    sl_model *m = MODEL(SL_F64, 3, "linear", "in_features=4,out_features=6", "dropout", "p=0.5");
    sl_tensor x = random_tensor(SL_F64, 2, (int64_t[]){3, 4}, 11);
    sl_tensor g = random_tensor(SL_F64, 2, (int64_t[]){3, 6}, 12);
    sl_rng *rng = sl_module_rng(sl_model_module(m, 1));
    const sl_rng saved = *rng;
    masked_loss(m, rng, &saved, &x, &g);
    sl_model_zero_grad(m);
    ck_assert_sl_ok(sl_model_backward(m, &g));
    const sl_tensor *y = sl_model_activation(m, 1);
    int zeros = 0;
    for (int64_t i = 0; i < 18; i++)
        zeros += f64(y)[i] == 0;
    ck_assert_msg(zeros > 0 && zeros < 18, "mask should drop some, not all (%d of 18)", zeros);
    double *p = f64w(sl_model_flat_params(m));
    const double *grad = f64(sl_model_flat_grads(m));
    double max_err = 0;
    for (int64_t i = 0; i < sl_model_numel(m); i++) {
        double keep = p[i], h = 1e-6;
        p[i] = keep + h;
        double plus = masked_loss(m, rng, &saved, &x, &g);
        p[i] = keep - h;
        double minus = masked_loss(m, rng, &saved, &x, &g);
        p[i] = keep;
        double num = (plus - minus) / (2 * h);
        max_err = fmax(max_err, fabs(num - grad[i]) / fmax(1e-3, fabs(num)));
    }
    printf("gradcheck dropout train (fixed mask): max rel err %.1e\n", max_err);
    ck_assert_msg(max_err < 1e-6, "dropout train gradient: max rel err %g", max_err);
    sl_tensor_release(&x);
    sl_tensor_release(&g);
    sl_model_free(m);
}
END_TEST

/* ---------------------------------------------------------------- dropout */

START_TEST(test_dropout_train_eval)
{
    const int64_t n = 100000;
    sl_model *m = MODEL(SL_F64, 5, "dropout", "p=0.25");
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, (int64_t[]){1, n}));
    ck_assert_sl_ok(sl_tensor_fill(&x, 1.0));
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    int64_t zeros = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = f64(y)[i];
        ck_assert_msg(v == 0 || fabs(v - 1 / 0.75) < 1e-15, "value %g is neither 0 nor 4/3", v);
        zeros += v == 0;
    }
    /* 7 standard deviations of a binomial proportion */
    ck_assert_msg(fabs((double)zeros / n - 0.25) < 7 * sqrt(0.25 * 0.75 / n), "dropped %g",
                  (double)zeros / n);
    /* same noise seed -> same mask; another noise seed -> another mask */
    double first = 0;
    for (int64_t i = 0; i < 64; i++)
        first += f64(y)[i] * (double)(i + 1);
    sl_model_seed_noise(m, 5);
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    double again = 0;
    for (int64_t i = 0; i < 64; i++)
        again += f64(y)[i] * (double)(i + 1);
    ck_assert_double_eq(first, again);
    sl_model_seed_noise(m, 6);
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    double other = 0;
    for (int64_t i = 0; i < 64; i++)
        other += f64(y)[i] * (double)(i + 1);
    ck_assert_double_ne(first, other);
    /* evaluation: the identity */
    sl_model_set_training(m, false);
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    for (int64_t i = 0; i < n; i++)
        ck_assert_double_eq(f64(y)[i], 1.0);
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

START_TEST(test_dropout_edges)
{
    sl_tensor x = random_tensor(SL_F32, 2, (int64_t[]){4, 8}, 3);
    const sl_tensor *y;
    sl_model *one = MODEL(SL_F32, 1, "dropout", "p=1");
    ck_assert_sl_ok(sl_model_forward(one, &x, &y));
    for (int64_t i = 0; i < 32; i++)
        ck_assert_float_eq(((const float *)y->data)[i], 0.0f);
    sl_model *zero = MODEL(SL_F32, 1, "dropout", "p=0");
    ck_assert_sl_ok(sl_model_forward(zero, &x, &y));
    for (int64_t i = 0; i < 32; i++)
        ck_assert_float_eq(((const float *)y->data)[i], ((const float *)x.data)[i]);
    sl_model *bad;
    ck_assert_sl_ok(sl_model_new(SL_F32, &bad));
    sl_options *o = sl_test_options("p=1.5");
    ck_assert_sl_fails(sl_model_add(bad, "dropout", o), SL_EINVAL, "p must be in [0, 1]");
    sl_options_free(o);
    sl_model_free(bad);
    sl_model_free(one);
    sl_model_free(zero);
    sl_tensor_release(&x);
}
END_TEST

/* ---------------------------------------------------------------- batchnorm */

/* Naive per-channel statistics of x (N, C, S): mean and biased variance. */
static void naive_stats(const double *x, int64_t N, int64_t C, int64_t S, int64_t c,
                        double *mean, double *var)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t k = 0; k < S; k++)
            s += x[(i * C + c) * S + k];
    *mean = s / (double)(N * S);
    for (int64_t i = 0; i < N; i++)
        for (int64_t k = 0; k < S; k++)
            s2 += pow(x[(i * C + c) * S + k] - *mean, 2);
    *var = s2 / (double)(N * S);
}

START_TEST(test_batchnorm_running_stats)
{
    const int64_t N = 5, C = 3, H = 2, W = 2, S = H * W;
    const double momentum = 0.2, eps = 1e-5;
    sl_model *m = MODEL(SL_F64, 2, "batchnorm", "num_features=3,momentum=0.2");
    double rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1};
    const sl_tensor *y;
    for (int step = 0; step < 3; step++) {
        sl_tensor x = random_tensor(SL_F64, 4, (int64_t[]){N, C, H, W}, 100 + step);
        for (int64_t i = 0; i < N * C * S; i++)
            f64w(&x)[i] = 2 * f64(&x)[i] + 0.3 * step; /* non-trivial mean and spread */
        ck_assert_sl_ok(sl_model_forward(m, &x, &y));
        for (int64_t c = 0; c < C; c++) {
            double mean, var;
            naive_stats(f64(&x), N, C, S, c, &mean, &var);
            rm[c] = (1 - momentum) * rm[c] + momentum * mean;
            rv[c] = (1 - momentum) * rv[c] + momentum * var * (N * S) / (N * S - 1.0);
            /* training output (weight 1, bias 0): standardised per channel */
            double ym, yv;
            naive_stats(f64(y), N, C, S, c, &ym, &yv);
            expect_near(ym, 0, 1e-12, "batch-normalised mean");
            expect_near(yv, var / (var + eps), 1e-12, "batch-normalised variance");
        }
        sl_tensor_release(&x);
    }
    for (int64_t c = 0; c < C; c++) {
        expect_near(buffer(m, "0.running_mean")[c], rm[c], 1e-14, "running_mean");
        expect_near(buffer(m, "0.running_var")[c], rv[c], 1e-14, "running_var");
    }
    /* evaluation uses the running statistics, forward and backward */
    double *w = param(m, "0.weight"), *b = param(m, "0.bias");
    for (int64_t c = 0; c < C; c++) {
        w[c] = 0.5 + c;
        b[c] = -0.25 * c;
    }
    sl_model_set_training(m, false);
    sl_tensor x = random_tensor(SL_F64, 4, (int64_t[]){N, C, H, W}, 200);
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    sl_tensor g = random_tensor(SL_F64, 4, (int64_t[]){N, C, H, W}, 201), gin = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&gin, SL_F64, 4, (int64_t[]){N, C, H, W}));
    sl_module *mod = sl_model_module(m, 0);
    ck_assert_sl_ok(sl_module_type_of(mod)->backward(mod, &x, y, &g, &gin));
    for (int64_t i = 0; i < N * C * S; i++) {
        int64_t c = (i / S) % C;
        double rstd = 1 / sqrt(rv[c] + eps);
        expect_near(f64(y)[i], (f64(&x)[i] - rm[c]) * rstd * w[c] + b[c], 1e-13, "eval output");
        expect_near(f64(&gin)[i], f64(&g)[i] * w[c] * rstd, 1e-13, "eval input gradient");
    }
    /* the running statistics do not move in evaluation mode */
    expect_near(buffer(m, "0.running_mean")[1], rm[1], 0, "running_mean after eval");
    sl_tensor_release(&x);
    sl_tensor_release(&g);
    sl_tensor_release(&gin);
    sl_model_free(m);
}
END_TEST

START_TEST(test_batchnorm_errors)
{
    sl_model *m = MODEL(SL_F64, 2, "batchnorm", "num_features=3");
    sl_tensor one = random_tensor(SL_F64, 2, (int64_t[]){1, 3}, 1);
    const sl_tensor *y;
    ck_assert_sl_fails(sl_model_forward(m, &one, &y), SL_ESHAPE, "more than 1 value");
    sl_model_set_training(m, false);
    ck_assert_sl_ok(sl_model_forward(m, &one, &y)); /* fine in evaluation */
    sl_tensor wrong = random_tensor(SL_F64, 2, (int64_t[]){4, 5}, 1);
    ck_assert_sl_fails(sl_model_forward(m, &wrong, &y), SL_ESHAPE, "expected input (N, 3)");
    sl_tensor_release(&one);
    sl_tensor_release(&wrong);
    sl_model_free(m);
}
END_TEST

START_TEST(test_batchnorm_checkpoint)
{
    sl_model *a = MODEL(SL_F32, 4, "linear", "in_features=4,out_features=3", "batchnorm",
                        "num_features=3", "relu", "");
    ck_assert_int_eq(sl_model_nbuffers(a), 3);
    ck_assert_str_eq(sl_model_buffer_name(a, 0), "1.running_mean");
    ck_assert_str_eq(sl_model_buffer_name(a, 1), "1.running_var");
    ck_assert_str_eq(sl_model_buffer_name(a, 2), "1.num_batches_tracked");
    ck_assert_int_eq(sl_model_buffer(a, 2)->dtype, SL_I64);
    ck_assert_int_eq(sl_model_buffer(a, 2)->ndim, 0);
    ck_assert_int_ge(sl_model_find_param(a, "1.weight"), 0);
    ck_assert_int_ge(sl_model_find_param(a, "1.bias"), 0);
    const sl_tensor *y;
    for (int i = 0; i < 3; i++) {
        sl_tensor x = random_tensor(SL_F32, 2, (int64_t[]){8, 4}, 30 + i);
        ck_assert_sl_ok(sl_model_forward(a, &x, &y));
        sl_tensor_release(&x);
    }
    const char *path = sl_test_tmp_path("batchnorm.safetensors");
    ck_assert_sl_ok(sl_model_save(a, path));
    sl_model *b = MODEL(SL_F32, 99, "linear", "in_features=4,out_features=3", "batchnorm",
                        "num_features=3", "relu", "");
    ck_assert_sl_ok(sl_model_load(b, path));
    for (int i = 0; i < 2; i++) {
        const sl_tensor *ba = sl_model_buffer(a, i), *bb = sl_model_buffer(b, i);
        for (int64_t c = 0; c < 3; c++)
            ck_assert_float_eq(((float *)ba->data)[c], ((float *)bb->data)[c]);
    }
    /* running_var really moved away from its initial ones; the three
     * training forwards were counted, and the count came back */
    ck_assert_float_ne(((float *)sl_model_buffer(a, 1)->data)[0], 1.0f);
    ck_assert_int_eq(*(int64_t *)sl_model_buffer(a, 2)->data, 3);
    ck_assert_int_eq(*(int64_t *)sl_model_buffer(b, 2)->data, 3);
    sl_model_set_training(a, false);
    sl_model_set_training(b, false);
    sl_tensor x = random_tensor(SL_F32, 2, (int64_t[]){5, 4}, 40);
    sl_tensor ya = {0};
    ck_assert_sl_ok(sl_model_forward(a, &x, &y));
    ck_assert_sl_ok(sl_tensor_alloc(&ya, SL_F32, 2, y->shape));
    ck_assert_sl_ok(sl_tensor_copy(&ya, y));
    ck_assert_sl_ok(sl_model_forward(b, &x, &y));
    for (int64_t i = 0; i < 15; i++)
        ck_assert_float_eq(((float *)ya.data)[i], ((const float *)y->data)[i]);
    sl_tensor_release(&x);
    sl_tensor_release(&ya);
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

/* ---------------------------------------------------------------- input_expand */

START_TEST(test_input_expand_image_layout)
{
    const int64_t N = 2, C = 3, H = 4, W = 5, K = 3, off = 2;
    const double fill = -0.7;
    sl_model *m = MODEL(SL_F64, 1, "input_expand", "factor=3,offset=2,fill=-0.7");
    sl_tensor x = random_tensor(SL_F64, 4, (int64_t[]){N, C, H, W}, 5);
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    ck_assert_int_eq(y->shape[2], H * K);
    ck_assert_int_eq(y->shape[3], W * K);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t r = 0; r < H * K; r++)
                for (int64_t q = 0; q < W * K; q++) {
                    double want = r % K == off && q % K == off
                                      ? sl_tensor_get(&x, (int64_t[]){n, c, r / K, q / K})
                                      : fill;
                    ck_assert_double_eq(sl_tensor_get(y, (int64_t[]){n, c, r, q}), want);
                }
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

/* Expected rows written out from the documented layouts, x = 1, 2, 3, ...
 * and constants c = 9. */
static void expect_vector_layout(const char *text, int64_t F, const double *want, int64_t len)
{
    sl_model *m = sl_test_model(SL_F64, 1, (const char *const[]){"input_expand", text, NULL});
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, (int64_t[]){1, F}));
    for (int64_t j = 0; j < F; j++)
        f64w(&x)[j] = (double)(j + 1);
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    ck_assert_int_eq(y->shape[1], len);
    for (int64_t i = 0; i < len; i++)
        ck_assert_msg(f64(y)[i] == want[i], "%s: element %lld is %g, want %g", text,
                      (long long)i, f64(y)[i], want[i]);
    sl_tensor_release(&x);
    sl_model_free(m);
}

START_TEST(test_input_expand_vector_layout)
{
    expect_vector_layout("fill=9,extra=4", 1, (double[]){9, 9, 1, 9, 9}, 5);
    expect_vector_layout("fill=9", 3, (double[]){1, 9, 2, 9, 3, 9}, 6);
    expect_vector_layout("fill=9,factor=3", 2, (double[]){9, 1, 9, 9, 2, 9}, 6);
    expect_vector_layout("fill=9,extra=2,placement=before", 3, (double[]){9, 9, 1, 2, 3}, 5);
    expect_vector_layout("fill=9,extra=2,placement=after", 3, (double[]){1, 2, 3, 9, 9}, 5);
    expect_vector_layout("fill=9,extra=0", 3, (double[]){1, 2, 3}, 3);
}
END_TEST

/* ---------------------------------------------------------------- upsample */

/* torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]),
 * scale_factor=2, mode="bilinear", align_corners=False). */
START_TEST(test_upsample_matches_torch)
{
    static const double want[16] = {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5,
                                    2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0};
    sl_model *m = MODEL(SL_F32, 1, "upsample", "");
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F32, 4, (int64_t[]){1, 1, 2, 2}));
    for (int i = 0; i < 4; i++)
        ((float *)x.data)[i] = (float)(i + 1);
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq_tol(((const float *)y->data)[i], (float)want[i], 1e-6f);
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

/* Every new layer computes the same in f32 as in f64. */
START_TEST(test_f32_matches_f64)
{
    sl_model *m64 = MODEL(SL_F64, 8, "input_expand", "", "upsample", "", "batchnorm",
                          "num_features=2", "dropout", "p=0.3");
    sl_model *m32;
    ck_assert_sl_ok(sl_model_clone(m64, SL_F32, &m32));
    sl_model_set_training(m64, false);
    sl_model_set_training(m32, false);
    sl_tensor x64 = random_tensor(SL_F64, 4, (int64_t[]){3, 2, 3, 3}, 9), x32 = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x32, SL_F32, 4, x64.shape));
    ck_assert_sl_ok(sl_tensor_copy(&x32, &x64));
    const sl_tensor *y64, *y32;
    ck_assert_sl_ok(sl_model_forward(m64, &x64, &y64));
    ck_assert_sl_ok(sl_model_forward(m32, &x32, &y32));
    ck_assert_int_eq(sl_tensor_numel(y64), 3 * 2 * 12 * 12);
    for (int64_t i = 0; i < sl_tensor_numel(y64); i++)
        ck_assert_double_eq_tol(sl_tensor_flat_get(y32, i), f64(y64)[i], 1e-5);
    sl_tensor_release(&x64);
    sl_tensor_release(&x32);
    sl_model_free(m64);
    sl_model_free(m32);
}
END_TEST

/* ---------------------------------------------------------------- grad_scale */

static sl_model *train_one_step(const sl_dataset *d, const char *hook_opts, int *rc)
{
    sl_model *m = MODEL(SL_F64, 21, "linear", "in_features=4,out_features=3");
    sl_optim *opt;
    sl_options *oo = sl_test_options("lr=0.1,momentum=0.9");
    ck_assert_sl_ok(sl_optim_new("sgd", m, oo, &opt));
    sl_hook *h = NULL;
    if (hook_opts) {
        sl_options *ho = sl_test_options(hook_opts);
        ck_assert_sl_ok(sl_hook_new("grad_scale", ho, &h));
        sl_options_free(ho);
    }
    sl_train_args args = {.train = d, .hooks = h ? &h : NULL, .nhooks = h ? 1 : 0};
    sl_options *to = sl_test_options("epochs=1,batch=16,shuffle=false");
    *rc = sl_train(m, opt, &args, to);
    sl_options_free(to);
    sl_hook_free(h);
    sl_optim_free(opt);
    sl_options_free(oo);
    return m;
}

START_TEST(test_grad_scale)
{
    sl_dataset d = sl_test_toy_data(16, 4, 3, 5);
    int rc;
    sl_model *init = MODEL(SL_F64, 21, "linear", "in_features=4,out_features=3");
    sl_model *plain = train_one_step(&d, NULL, &rc);
    ck_assert_sl_ok(rc);
    sl_model *scaled = train_one_step(&d, "pattern=*.bias,factor=3", &rc);
    ck_assert_sl_ok(rc);
    const double *w0 = param(init, "0.weight"), *b0 = param(init, "0.bias");
    for (int i = 0; i < 12; i++)
        expect_near(param(scaled, "0.weight")[i] - w0[i], param(plain, "0.weight")[i] - w0[i],
                    1e-14, "unmatched weight moves as without the hook");
    for (int i = 0; i < 3; i++) {
        double moved = param(plain, "0.bias")[i] - b0[i];
        ck_assert_msg(fabs(moved) > 1e-6, "bias should move");
        expect_near(param(scaled, "0.bias")[i] - b0[i], 3 * moved, 1e-12,
                    "bias moves 3x (learning-rate multiplier)");
    }
    sl_model *none = train_one_step(&d, "pattern=*.gamma,factor=2", &rc);
    ck_assert_int_eq(rc, SL_EINVAL);
    ck_assert_msg(strstr(sl_last_error(), "matches no parameter"), "%s", sl_last_error());
    sl_model_free(none);
    sl_model_free(init);
    sl_model_free(plain);
    sl_model_free(scaled);
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- probes */

static sl_record *probe(const char *name, const char *text, sl_model *m, const sl_dataset *d)
{
    sl_record *r = sl_record_new();
    ck_assert_ptr_nonnull(r);
    sl_options *o = sl_test_options(text);
    ck_assert_sl_ok(sl_probe_run(name, o, m, d, r));
    sl_options_free(o);
    return r;
}

static double get(const sl_record *r, const char *name)
{
    double v;
    ck_assert_msg(sl_record_get(r, name, &v) == SL_OK, "no '%s' in the record", name);
    return v;
}

static sl_model *mlp(uint64_t seed)
{
    return MODEL(SL_F64, seed, "linear", "in_features=4,out_features=8", "relu", "", "linear",
                 "in_features=8,out_features=3");
}

/* Permutes the hidden units of mlp(): rows of W1 and b1, columns of W2 —
 * written independently of the probes' own permutation code. */
static void permute_hidden(sl_model *m, const int64_t *perm)
{
    double w1[8][4], b1[8], w2[3][8];
    double *W1 = param(m, "0.weight"), *B1 = param(m, "0.bias"), *W2 = param(m, "2.weight");
    memcpy(w1, W1, sizeof w1);
    memcpy(b1, B1, sizeof b1);
    memcpy(w2, W2, sizeof w2);
    for (int j = 0; j < 8; j++) {
        for (int i = 0; i < 4; i++)
            W1[j * 4 + i] = w1[perm[j]][i];
        B1[j] = b1[perm[j]];
        for (int o = 0; o < 3; o++)
            W2[o * 8 + j] = w2[o][perm[j]];
    }
}

static const int64_t PERM[8] = {3, 7, 0, 5, 1, 6, 2, 4};

START_TEST(test_symmetry_breaking_zero_and_shuffle)
{
    sl_dataset d = sl_test_toy_data(200, 4, 3, 8);
    sl_model *m = mlp(3);
    /* no training: every replica is the model itself */
    sl_record *r = probe("symmetry_breaking", "steps=0", m, &d);
    ck_assert_double_eq(get(r, "distance"), 0.0);
    ck_assert_double_eq(get(r, "spectral_distance"), 0.0);
    ck_assert_double_eq(get(r, "gram_distance"), 0.0);
    expect_near(get(r, "overlap"), 1.0, 1e-14, "overlap of a model with itself");
    sl_record_free(r);
    /* permuting hidden units moves the parameters, not the invariant variants */
    r = probe("symmetry_breaking", "steps=0,shuffle_units=true", m, &d);
    ck_assert_msg(get(r, "distance") > 0.1, "shuffled distance %g", get(r, "distance"));
    ck_assert_msg(get(r, "spectral_distance") < 1e-12, "spectral %g",
                  get(r, "spectral_distance"));
    ck_assert_msg(get(r, "gram_distance") < 1e-10, "gram %g", get(r, "gram_distance"));
    sl_record_free(r);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(test_symmetry_breaking_invariance)
{
    sl_dataset d = sl_test_toy_data(200, 4, 3, 8);
    const char *o = "steps=40,batch=16,subset=150,probe_batch=64";
    sl_model *m = mlp(3);
    sl_record *base = probe("symmetry_breaking", o, m, &d);
    sl_record *again = probe("symmetry_breaking", o, m, &d);
    ck_assert_double_eq(get(base, "distance"), get(again, "distance")); /* deterministic */
    ck_assert_msg(get(base, "distance") > 1e-4, "replicas should drift apart");
    ck_assert_msg(get(base, "train_loss") < 1.2, "training should lower the loss");
    /* the same model with its hidden units permuted */
    permute_hidden(m, PERM);
    sl_record *perm = probe("symmetry_breaking", o, m, &d);
    expect_near(get(perm, "spectral_distance"), get(base, "spectral_distance"), 1e-9,
                "spectral distance of the permuted model");
    expect_near(get(perm, "gram_distance"), get(base, "gram_distance"), 1e-9,
                "gram distance of the permuted model");
    /* replicas permuted independently after training */
    sl_record *shuf = probe("symmetry_breaking",
                            "steps=40,batch=16,subset=150,probe_batch=64,shuffle_units=true", m,
                            &d);
    expect_near(get(shuf, "spectral_distance"), get(perm, "spectral_distance"), 1e-9,
                "spectral distance of shuffled replicas");
    expect_near(get(shuf, "gram_distance"), get(perm, "gram_distance"), 1e-9,
                "gram distance of shuffled replicas");
    ck_assert_msg(get(shuf, "distance") > 2 * get(perm, "distance"),
                  "shuffling should inflate the plain distance (%g vs %g)",
                  get(shuf, "distance"), get(perm, "distance"));
    /* independent initialisations are further apart than shared ones */
    sl_record *ind = probe("symmetry_breaking",
                           "steps=40,batch=16,subset=150,probe_batch=64,independent_init=true",
                           m, &d);
    ck_assert_msg(get(ind, "distance") > get(perm, "distance"), "independent %g vs shared %g",
                  get(ind, "distance"), get(perm, "distance"));
    sl_record_free(base);
    sl_record_free(again);
    sl_record_free(perm);
    sl_record_free(shuf);
    sl_record_free(ind);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(test_symmetry_breaking_errors)
{
    sl_dataset d = sl_test_toy_data(20, 4, 3, 8);
    sl_model *m = mlp(3);
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options("replicas=1");
    ck_assert_sl_fails(sl_probe_run("symmetry_breaking", o, m, &d, r), SL_EINVAL,
                       "replicas must be >= 2");
    sl_options_free(o);
    o = sl_test_options("batch=64,subset=10");
    ck_assert_sl_fails(sl_probe_run("symmetry_breaking", o, m, &d, r), SL_EINVAL,
                       "larger than the 10 rows");
    sl_options_free(o);
    o = sl_test_options("");
    ck_assert_sl_fails(sl_probe_run("symmetry_breaking", o, m, NULL, r), SL_EINVAL,
                       "needs a training data set");
    sl_options_free(o);
    sl_record_free(r);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(test_symmetry_metrics_neurons)
{
    sl_model *m = MODEL(SL_F64, 4, "linear", "in_features=4,out_features=5", "relu", "",
                        "linear", "in_features=5,out_features=3");
    double *W1 = param(m, "0.weight"), *b1 = param(m, "0.bias"), *W2 = param(m, "2.weight");
    for (int i = 0; i < 4; i++) {
        W1[1 * 4 + i] = W1[0 * 4 + i];  /* unit 1 duplicates unit 0 */
        W1[2 * 4 + i] = 0;              /* unit 2: dead (0 x - 1) */
        W1[4 * 4 + i] = -W1[3 * 4 + i]; /* unit 4 = -unit 3: dead, a sign twin */
    }
    b1[0] = b1[1] = b1[3] = 5;
    b1[2] = -1;
    b1[4] = -5;
    for (int o = 0; o < 3; o++) {
        W2[o * 5 + 1] = W2[o * 5 + 0];
        W2[o * 5 + 4] = -W2[o * 5 + 3];
    }
    sl_dataset d = sl_test_toy_data(100, 4, 3, 2);
    sl_record *r = probe("symmetry_metrics", "", m, &d);
    ck_assert_double_eq(get(r, "0.units"), 5);
    ck_assert_double_eq(get(r, "0.distinct_neurons"), 4);
    ck_assert_double_eq(get(r, "0.dead_fraction"), 0.4);
    ck_assert_double_eq(get(r, "dead_fraction"), 0.4);
    expect_near(get(r, "distinct_fraction"), 0.8, 1e-15, "distinct_fraction");
    sl_record_free(r);
    r = probe("symmetry_metrics", "up_to_sign=true", m, &d);
    ck_assert_double_eq(get(r, "0.distinct_neurons"), 3);
    sl_record_free(r);
    /* without data: no dead fraction, the rest still there */
    r = probe("symmetry_metrics", "", m, NULL);
    double v;
    ck_assert_int_eq(sl_record_get(r, "0.dead_fraction", &v), SL_ENOTFOUND);
    ck_assert_double_eq(get(r, "0.distinct_neurons"), 4);
    sl_record_free(r);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(test_symmetry_metrics_ranks)
{
    sl_model *m = MODEL(SL_F64, 4, "linear", "in_features=4,out_features=3");
    double *W = param(m, "0.weight");
    memset(W, 0, 12 * sizeof *W);
    W[0 * 4 + 1] = 3; /* singular values 4, 3, 0 */
    W[1 * 4 + 3] = -4;
    sl_record *r = probe("symmetry_metrics", "", m, NULL);
    expect_near(get(r, "0.stable_rank"), 25.0 / 16.0, 1e-12, "stable rank");
    double p = 4.0 / 7.0, q = 3.0 / 7.0;
    expect_near(get(r, "0.effective_rank"), exp(-(p * log(p) + q * log(q))), 1e-12,
                "effective rank");
    sl_record_free(r);
    sl_model_free(m);
}
END_TEST

static Suite *symbreak_suite(void)
{
    Suite *s = suite_create("symbreak");
    TCase *grad = tcase_create("gradcheck");
    tcase_add_test(grad, test_gradcheck_input_expand);
    tcase_add_test(grad, test_gradcheck_dropout_eval);
    tcase_add_test(grad, test_gradcheck_dropout_fixed_mask);
    tcase_add_test(grad, test_gradcheck_batchnorm);
    tcase_add_test(grad, test_gradcheck_upsample);
    suite_add_tcase(s, grad);
    TCase *layers = tcase_create("layers");
    sl_test_add_tmpdir(layers);
    tcase_add_test(layers, test_dropout_train_eval);
    tcase_add_test(layers, test_dropout_edges);
    tcase_add_test(layers, test_batchnorm_running_stats);
    tcase_add_test(layers, test_batchnorm_errors);
    tcase_add_test(layers, test_batchnorm_checkpoint);
    tcase_add_test(layers, test_input_expand_image_layout);
    tcase_add_test(layers, test_input_expand_vector_layout);
    tcase_add_test(layers, test_upsample_matches_torch);
    tcase_add_test(layers, test_f32_matches_f64);
    suite_add_tcase(s, layers);
    TCase *hooks = tcase_create("grad_scale");
    tcase_add_test(hooks, test_grad_scale);
    suite_add_tcase(s, hooks);
    TCase *probes = tcase_create("probes");
    tcase_set_timeout(probes, 30);
    tcase_add_test(probes, test_symmetry_breaking_zero_and_shuffle);
    tcase_add_test(probes, test_symmetry_breaking_invariance);
    tcase_add_test(probes, test_symmetry_breaking_errors);
    tcase_add_test(probes, test_symmetry_metrics_neurons);
    tcase_add_test(probes, test_symmetry_metrics_ranks);
    suite_add_tcase(s, probes);
    return s;
}

int main(void) { return sl_test_run(symbreak_suite()); }
