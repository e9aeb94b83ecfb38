/* tests/check_modules.c — the built-in layers: gradients against finite
 * differences, forward against naive reference loops (f64), f32 against
 * f64, shape and option errors, and batch-size changes. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "gradcheck.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

#define GRADCHECK(label, type, text, jitter, ...) \
    sl_test_gradcheck(label, type, text, false, 42, jitter, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

/* A built one-module model from "key=value" option text. */
static sl_model *new_model(sl_dtype dtype, const char *type, const char *text, uint64_t seed)
{
    sl_model *m;
    sl_options *o = sl_test_options(text);
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    ck_assert_sl_ok(sl_model_add(m, type, o));
    ck_assert_sl_ok(sl_model_build(m, seed));
    sl_options_free(o);
    return m;
}

/* A built one-module model, parameters jittered so that ones/zeros initial
 * values (layernorm) do not hide mistakes, and a matching random input. */
typedef struct fixture {
    sl_model *model;
    sl_tensor x;
    const sl_tensor *y;
} fixture;

static void fixture_build(fixture *f, sl_dtype dtype, const char *type, const char *text,
                          int ndim, const int64_t *shape, uint64_t seed)
{
    f->model = new_model(dtype, type, text, seed);
    sl_rng rng;
    sl_rng_seed(&rng, seed + 1);
    sl_tensor *p = sl_model_flat_params(f->model);
    if (sl_model_numel(f->model) > 0) {
        sl_tensor jitter = {0};
        ck_assert_sl_ok(sl_tensor_alloc(&jitter, dtype, 1, p->shape));
        ck_assert_sl_ok(sl_tensor_uniform(&jitter, &rng, -0.5, 0.5));
        ck_assert_sl_ok(sl_axpy(1.0, &jitter, p));
        sl_tensor_release(&jitter);
    }
    ck_assert_sl_ok(sl_tensor_alloc(&f->x, dtype, ndim, shape));
    gradcheck_fill(&f->x, &rng);
}

static void fixture_forward(fixture *f) { ck_assert_sl_ok(sl_model_forward(f->model, &f->x, &f->y)); }

static void fixture_free(fixture *f)
{
    sl_tensor_release(&f->x);
    sl_model_free(f->model);
}

static const double *f64(const sl_tensor *t) { return t->data; }

/* The parameter called `name` ("0.weight"), or NULL if the model has none. */
static const double *param(fixture *f, const char *name)
{
    int i = sl_model_find_param(f->model, name);
    return i < 0 ? NULL : f64(sl_model_param(f->model, i));
}

/* Max |y - ref| relative to the size of ref; shapes must agree. */
static void expect_close(const sl_tensor *y, const double *ref, int64_t n, double tol,
                         const char *what)
{
    ck_assert_int_eq(sl_tensor_numel(y), n);
    double max_diff = 0, max_ref = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        max_diff = fmax(max_diff, fabs(sl_tensor_flat_get(y, i) - ref[i]));
        max_ref = fmax(max_ref, fabs(ref[i]));
    }
    ck_assert_msg(max_diff <= tol * max_ref, "%s: max diff %g (scale %g) > tol %g", what,
                  max_diff, max_ref, tol);
}

/* ---------------------------------------------------------------- gradients */

START_TEST(test_gradcheck_linear)
{
    GRADCHECK("linear", "linear", "in_features=5,out_features=4", 0, 3, 5);
    GRADCHECK("linear bias=false", "linear", "in_features=5,out_features=4,bias=false", 0, 3, 5);
    GRADCHECK("linear 1x1", "linear", "in_features=1,out_features=1", 0, 1, 1);
}
END_TEST

START_TEST(test_gradcheck_conv2d)
{
    const char *base = "in_channels=2,out_channels=3,kernel_size=3";
    GRADCHECK("conv2d", "conv2d", base, 0, 2, 2, 5, 5);
    GRADCHECK("conv2d stride=2 padding=1", "conv2d",
              "in_channels=2,out_channels=3,kernel_size=3,stride=2,padding=1", 0, 2, 2, 6, 7);
    GRADCHECK("conv2d bias=false kernel_size=2", "conv2d",
              "in_channels=2,out_channels=2,kernel_size=2,bias=false", 0, 2, 2, 4, 5);
    GRADCHECK("conv2d kernel_size=1", "conv2d", "in_channels=3,out_channels=2,kernel_size=1", 0,
              2, 3, 3, 3);
    GRADCHECK("conv2d stride=3 padding=2", "conv2d",
              "in_channels=1,out_channels=2,kernel_size=3,stride=3,padding=2", 0, 1, 1, 7, 6);
}
END_TEST

START_TEST(test_gradcheck_pool)
{
    GRADCHECK("maxpool2d", "maxpool2d", "kernel_size=2", 0, 2, 2, 4, 4);
    GRADCHECK("maxpool2d k=3 stride=2 padding=1", "maxpool2d",
              "kernel_size=3,stride=2,padding=1", 0, 2, 2, 5, 6);
    GRADCHECK("maxpool2d overlapping", "maxpool2d", "kernel_size=2,stride=1", 0, 1, 2, 4, 4);
    GRADCHECK("maxpool2d odd size", "maxpool2d", "kernel_size=2", 0, 1, 1, 5, 3);
    GRADCHECK("avgpool2d", "avgpool2d", "kernel_size=2", 0, 2, 2, 4, 4);
    GRADCHECK("avgpool2d k=3 stride=2 padding=1", "avgpool2d",
              "kernel_size=3,stride=2,padding=1", 0, 2, 2, 5, 6);
}
END_TEST

START_TEST(test_gradcheck_flatten_layernorm)
{
    GRADCHECK("flatten", "flatten", NULL, 0, 2, 3, 2, 2);
    GRADCHECK("flatten 2-d", "flatten", NULL, 0, 3, 4);
    GRADCHECK("reshape split", "reshape", "shape=2x3", 0, 3, 6);
    GRADCHECK("reshape merge", "reshape", "shape=12", 0, 2, 3, 2, 2);
    GRADCHECK("layernorm", "layernorm", "features=6", 0.5, 3, 6);
    GRADCHECK("layernorm 3-d", "layernorm", "features=5", 0.5, 2, 3, 5);
    GRADCHECK("layernorm no affine", "layernorm", "features=6,elementwise_affine=false", 0, 3, 6);
    GRADCHECK("layernorm eps=0.1", "layernorm", "features=4,eps=0.1", 0.5, 3, 4);
}
END_TEST

START_TEST(test_gradcheck_activations)
{
    static const char *const names[] = {"relu", "leaky_relu", "tanh", "sigmoid", "gelu",
                                        "identity"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        GRADCHECK(names[i], names[i], NULL, 0, 3, 4);
        char label[64];
        snprintf(label, sizeof label, "%s 4-d", names[i]);
        GRADCHECK(label, names[i], NULL, 0, 2, 3, 2, 2);
    }
    GRADCHECK("leaky_relu negative_slope=0.3", "leaky_relu", "negative_slope=0.3", 0, 4, 5);
}
END_TEST

/* ---------------------------------------------------------------- naive forwards */

static void linear_reference(fixture *f, double *ref)
{
    const double *x = f64(&f->x), *w = param(f, "0.weight"), *b = param(f, "0.bias");
    int64_t batch = f->x.shape[0], in = f->x.shape[1], out = f->y->shape[1];
    for (int64_t n = 0; n < batch; n++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int64_t i = 0; i < in; i++)
                s += x[n * in + i] * w[o * in + i];
            ref[n * out + o] = s;
        }
}

START_TEST(test_forward_linear)
{
    static const char *const texts[] = {"in_features=7,out_features=3",
                                        "in_features=7,out_features=3,bias=false"};
    for (int t = 0; t < 2; t++) {
        fixture f = {0};
        fixture_build(&f, SL_F64, "linear", texts[t], 2, SHAPE(5, 7), 3);
        fixture_forward(&f);
        ck_assert_int_eq(f.y->ndim, 2);
        ck_assert_int_eq(f.y->shape[0], 5);
        ck_assert_int_eq(f.y->shape[1], 3);
        double ref[15];
        linear_reference(&f, ref);
        expect_close(f.y, ref, 15, 1e-12, texts[t]);
        fixture_free(&f);
    }
}
END_TEST

/* Direct convolution: out[n][o][oh][ow] = b[o] + sum_{c,ki,kj} w[o][c][ki][kj] *
 * x[n][c][oh*s - p + ki][ow*s - p + kj], zero outside the image. */
static void conv2d_reference(fixture *f, int64_t k, int64_t s, int64_t p, double *ref)
{
    const double *x = f64(&f->x), *w = param(f, "0.weight"), *b = param(f, "0.bias");
    int64_t B = f->x.shape[0], C = f->x.shape[1], H = f->x.shape[2], W = f->x.shape[3];
    int64_t O = f->y->shape[1], Ho = f->y->shape[2], Wo = f->y->shape[3];
    for (int64_t n = 0; n < B; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    double sum = b ? b[o] : 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ki = 0; ki < k; ki++)
                            for (int64_t kj = 0; kj < k; kj++) {
                                int64_t ih = oh * s - p + ki, iw = ow * s - p + kj;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                sum += w[((o * C + c) * k + ki) * k + kj] *
                                       x[((n * C + c) * H + ih) * W + iw];
                            }
                    ref[((n * O + o) * Ho + oh) * Wo + ow] = sum;
                }
}

START_TEST(test_forward_conv2d)
{
    static const struct {
        const char *text;
        int64_t k, s, p, shape[4], ho, wo;
    } cases[] = {
        {"in_channels=2,out_channels=3,kernel_size=3", 3, 1, 0, {2, 2, 6, 5}, 4, 3},
        {"in_channels=2,out_channels=3,kernel_size=3,stride=2,padding=1", 3, 2, 1,
         {2, 2, 7, 6}, 4, 3},
        {"in_channels=3,out_channels=4,kernel_size=2,bias=false,stride=2", 2, 2, 0,
         {3, 3, 5, 5}, 2, 2},
        {"in_channels=1,out_channels=2,kernel_size=5,padding=2", 5, 1, 2, {1, 1, 4, 4}, 4, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fixture f = {0};
        fixture_build(&f, SL_F64, "conv2d", cases[i].text, 4, cases[i].shape, 5);
        fixture_forward(&f);
        ck_assert_int_eq(f.y->shape[2], cases[i].ho);
        ck_assert_int_eq(f.y->shape[3], cases[i].wo);
        int64_t n = sl_tensor_numel(f.y);
        double *ref = malloc((size_t)n * sizeof *ref);
        conv2d_reference(&f, cases[i].k, cases[i].s, cases[i].p, ref);
        expect_close(f.y, ref, n, 1e-12, cases[i].text);
        free(ref);
        fixture_free(&f);
    }
}
END_TEST

/* Windows over a zero- (avg) or -inf- (max) padded image. */
static void pool_reference(fixture *f, bool max, int64_t k, int64_t s, int64_t p, double *ref)
{
    const double *x = f64(&f->x);
    int64_t planes = f->x.shape[0] * f->x.shape[1], H = f->x.shape[2], W = f->x.shape[3];
    int64_t Ho = f->y->shape[2], Wo = f->y->shape[3];
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                double acc = max ? -INFINITY : 0;
                for (int64_t ki = 0; ki < k; ki++)
                    for (int64_t kj = 0; kj < k; kj++) {
                        int64_t ih = oh * s - p + ki, iw = ow * s - p + kj;
                        bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                        double v = inside ? x[(pl * H + ih) * W + iw] : (max ? -INFINITY : 0);
                        acc = max ? fmax(acc, v) : acc + v;
                    }
                ref[(pl * Ho + oh) * Wo + ow] = max ? acc : acc / (double)(k * k);
            }
}

START_TEST(test_forward_pool)
{
    static const struct {
        const char *text;
        int64_t k, s, p, shape[4], ho, wo;
    } cases[] = {
        {"kernel_size=2", 2, 2, 0, {2, 3, 4, 6}, 2, 3},
        {"kernel_size=2", 2, 2, 0, {1, 1, 5, 5}, 2, 2},
        {"kernel_size=3,stride=2,padding=1", 3, 2, 1, {2, 2, 5, 6}, 3, 3},
        {"kernel_size=3,stride=1,padding=1", 3, 1, 1, {1, 2, 4, 4}, 4, 4},
        {"kernel_size=2,stride=1", 2, 1, 0, {2, 1, 3, 4}, 2, 3},
    };
    for (int max = 0; max <= 1; max++)
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            fixture f = {0};
            fixture_build(&f, SL_F64, max ? "maxpool2d" : "avgpool2d", cases[i].text, 4,
                          cases[i].shape, 9);
            fixture_forward(&f);
            ck_assert_int_eq(f.y->shape[0], cases[i].shape[0]);
            ck_assert_int_eq(f.y->shape[1], cases[i].shape[1]);
            ck_assert_int_eq(f.y->shape[2], cases[i].ho);
            ck_assert_int_eq(f.y->shape[3], cases[i].wo);
            int64_t n = sl_tensor_numel(f.y);
            double *ref = malloc((size_t)n * sizeof *ref);
            pool_reference(&f, max, cases[i].k, cases[i].s, cases[i].p, ref);
            expect_close(f.y, ref, n, 1e-14, cases[i].text);
            free(ref);
            fixture_free(&f);
        }
}
END_TEST

/* Ties: the first maximum in row-major window order receives the gradient. */
START_TEST(test_maxpool_ties)
{
    fixture f = {0};
    fixture_build(&f, SL_F64, "maxpool2d", "kernel_size=2", 4, SHAPE(1, 1, 2, 2), 1);
    double *x = f.x.data;
    x[0] = 0.5, x[1] = 2.0, x[2] = 2.0, x[3] = -1.0;
    fixture_forward(&f);
    ck_assert_double_eq(f64(f.y)[0], 2.0);
    sl_tensor g = {0}, gin = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&g, SL_F64, 4, SHAPE(1, 1, 1, 1)));
    ck_assert_sl_ok(sl_tensor_alloc(&gin, SL_F64, 4, SHAPE(1, 1, 2, 2)));
    ck_assert_sl_ok(sl_tensor_fill(&g, 3.0));
    sl_module *mod = sl_model_module(f.model, 0);
    ck_assert_sl_ok(sl_module_type_of(mod)->backward(mod, &f.x, f.y, &g, &gin));
    ck_assert_double_eq(f64(&gin)[0], 0.0);
    ck_assert_double_eq(f64(&gin)[1], 3.0);
    ck_assert_double_eq(f64(&gin)[2], 0.0);
    ck_assert_double_eq(f64(&gin)[3], 0.0);
    sl_tensor_release(&g);
    sl_tensor_release(&gin);
    fixture_free(&f);
}
END_TEST

/* The 2x2 fast path in f32 over a row wide enough for its vector part and
 * its scalar tail: many ties and some NaN.  Reference: NaN wins, otherwise
 * the first maximum in row-major window order; backward routes the whole
 * gradient to that position. */
START_TEST(test_maxpool_2x2_f32_ties_and_nan)
{
    enum { N = 2, C = 3, H = 6, W = 18, HO = H / 2, WO = W / 2 };
    fixture f = {0};
    fixture_build(&f, SL_F32, "maxpool2d", "kernel_size=2", 4, SHAPE(N, C, H, W), 1);
    float *x = f.x.data;
    sl_rng rng;
    sl_rng_seed(&rng, 11);
    for (int i = 0; i < N * C * H * W; i++)
        x[i] = i % 37 == 5 ? NAN : (float)sl_rng_below(&rng, 3) - 1.0f; /* -1, 0, 1 */
    fixture_forward(&f);
    sl_tensor g = {0}, gin = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&g, SL_F32, 4, SHAPE(N, C, HO, WO)));
    ck_assert_sl_ok(sl_tensor_alloc(&gin, SL_F32, 4, SHAPE(N, C, H, W)));
    for (int i = 0; i < N * C * HO * WO; i++)
        ((float *)g.data)[i] = (float)(i + 1);
    sl_module *mod = sl_model_module(f.model, 0);
    ck_assert_sl_ok(sl_module_type_of(mod)->backward(mod, &f.x, f.y, &g, &gin));
    const float *y = f.y->data, *gi = gin.data;
    for (int nc = 0; nc < N * C; nc++)
        for (int i = 0; i < HO; i++)
            for (int j = 0; j < WO; j++) {
                int best = -1;
                for (int di = 0; di < 2; di++)
                    for (int dj = 0; dj < 2; dj++) {
                        int at = (nc * H + 2 * i + di) * W + 2 * j + dj;
                        if (best < 0 || (!isnan(x[best]) && (isnan(x[at]) || x[at] > x[best])))
                            best = at;
                    }
                int o = (nc * HO + i) * WO + j;
                if (isnan(x[best]))
                    ck_assert_msg(isnan(y[o]), "output %d should be NaN", o);
                else
                    ck_assert_float_eq(y[o], x[best]);
                for (int di = 0; di < 2; di++)
                    for (int dj = 0; dj < 2; dj++) {
                        int at = (nc * H + 2 * i + di) * W + 2 * j + dj;
                        ck_assert_float_eq(gi[at], at == best ? (float)(o + 1) : 0.0f);
                    }
            }
    sl_tensor_release(&g);
    sl_tensor_release(&gin);
    fixture_free(&f);
}
END_TEST

START_TEST(test_forward_flatten)
{
    fixture f = {0};
    fixture_build(&f, SL_F64, "flatten", NULL, 4, SHAPE(3, 2, 3, 4), 2);
    fixture_forward(&f);
    ck_assert_int_eq(f.y->ndim, 2);
    ck_assert_int_eq(f.y->shape[0], 3);
    ck_assert_int_eq(f.y->shape[1], 24);
    /* Element (n, c, h, w) lands at column (c*3 + h)*4 + w. */
    double ref[72];
    for (int64_t n = 0; n < 3; n++)
        for (int64_t c = 0; c < 2; c++)
            for (int64_t h = 0; h < 3; h++)
                for (int64_t w = 0; w < 4; w++)
                    ref[n * 24 + (c * 3 + h) * 4 + w] =
                        sl_tensor_get(&f.x, SHAPE(n, c, h, w));
    expect_close(f.y, ref, 72, 0, "flatten");
    fixture_free(&f);
}
END_TEST

static void layernorm_reference(fixture *f, int64_t features, double eps, double *ref)
{
    const double *x = f64(&f->x), *w = param(f, "0.weight"), *b = param(f, "0.bias");
    int64_t rows = sl_tensor_numel(&f->x) / features;
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < features; j++)
            mean += x[r * features + j] / (double)features;
        for (int64_t j = 0; j < features; j++)
            var += pow(x[r * features + j] - mean, 2) / (double)features;
        for (int64_t j = 0; j < features; j++) {
            double v = (x[r * features + j] - mean) / sqrt(var + eps);
            ref[r * features + j] = w ? v * w[j] + b[j] : v;
        }
    }
}

START_TEST(test_forward_layernorm)
{
    static const struct {
        const char *text;
        int64_t features;
        double eps;
        int ndim;
        int64_t shape[3];
    } cases[] = {
        {"features=6", 6, 1e-5, 2, {4, 6}},
        {"features=5,eps=0.5", 5, 0.5, 3, {2, 3, 5}},
        {"features=6,elementwise_affine=false", 6, 1e-5, 2, {3, 6}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fixture f = {0};
        fixture_build(&f, SL_F64, "layernorm", cases[i].text, cases[i].ndim, cases[i].shape, 4);
        fixture_forward(&f);
        int64_t n = sl_tensor_numel(f.y);
        double ref[30];
        layernorm_reference(&f, cases[i].features, cases[i].eps, ref);
        expect_close(f.y, ref, n, 1e-12, cases[i].text);
        fixture_free(&f);
    }
    /* PyTorch's initialisation: weight ones, bias zeros. */
    sl_model *m = new_model(SL_F64, "layernorm", "features=3", 1);
    ck_assert_int_eq(sl_model_nparams(m), 2);
    ck_assert_str_eq(sl_model_param_name(m, 0), "0.weight");
    ck_assert_str_eq(sl_model_param_name(m, 1), "0.bias");
    for (int64_t j = 0; j < 3; j++) {
        ck_assert_double_eq(sl_tensor_flat_get(sl_model_param(m, 0), j), 1.0);
        ck_assert_double_eq(sl_tensor_flat_get(sl_model_param(m, 1), j), 0.0);
    }
    sl_model_free(m);
}
END_TEST

/* Independent formulations of each activation. */
static double ref_activation(const char *name, double x)
{
    if (!strcmp(name, "relu"))
        return fmax(x, 0);
    if (!strcmp(name, "leaky_relu"))
        return x >= 0 ? x : 0.01 * x;
    if (!strcmp(name, "tanh"))
        return (exp(x) - exp(-x)) / (exp(x) + exp(-x));
    if (!strcmp(name, "sigmoid"))
        return 0.5 * (1 + tanh(0.5 * x));
    if (!strcmp(name, "gelu"))
        return 0.5 * x * erfc(-x / sqrt(2.0));
    return x;
}

START_TEST(test_forward_activations)
{
    static const char *const names[] = {"relu", "leaky_relu", "tanh", "sigmoid", "gelu",
                                        "identity"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        fixture f = {0};
        fixture_build(&f, SL_F64, names[i], NULL, 3, SHAPE(2, 3, 5), 6);
        double *x = f.x.data;
        for (int64_t j = 0; j < 30; j++)
            x[j] *= 8; /* reach the saturated regions too */
        fixture_forward(&f);
        ck_assert_int_eq(f.y->ndim, 3);
        double ref[30];
        for (int64_t j = 0; j < 30; j++)
            ref[j] = ref_activation(names[i], x[j]);
        expect_close(f.y, ref, 30, 1e-14, names[i]);
        fixture_free(&f);
    }
    /* Extreme inputs stay finite. */
    fixture f = {0};
    fixture_build(&f, SL_F64, "sigmoid", NULL, 2, SHAPE(1, 2), 1);
    ((double *)f.x.data)[0] = -800, ((double *)f.x.data)[1] = 800;
    fixture_forward(&f);
    ck_assert_double_eq(f64(f.y)[0], 0.0);
    ck_assert_double_eq(f64(f.y)[1], 1.0);
    fixture_free(&f);
}
END_TEST

START_TEST(test_leaky_relu_slope)
{
    fixture f = {0};
    fixture_build(&f, SL_F64, "leaky_relu", "negative_slope=0.25", 2, SHAPE(1, 2), 1);
    ((double *)f.x.data)[0] = -2, ((double *)f.x.data)[1] = 3;
    fixture_forward(&f);
    ck_assert_double_eq(f64(f.y)[0], -0.5);
    ck_assert_double_eq(f64(f.y)[1], 3.0);
    fixture_free(&f);
}
END_TEST

/* ---------------------------------------------------------------- f32 vs f64 */

static const struct layer_case {
    const char *type, *text;
    int ndim;
    int64_t shape[4];
} layer_cases[] = {
    {"linear", "in_features=30,out_features=7", 2, {4, 30}},
    {"conv2d", "in_channels=3,out_channels=4,kernel_size=3,stride=2,padding=1", 4, {2, 3, 7, 7}},
    {"maxpool2d", "kernel_size=3,stride=2,padding=1", 4, {2, 3, 6, 6}},
    {"avgpool2d", "kernel_size=2", 4, {2, 3, 6, 6}},
    {"flatten", NULL, 4, {2, 3, 2, 2}},
    {"layernorm", "features=16", 2, {5, 16}},
    {"relu", NULL, 2, {4, 9}},
    {"leaky_relu", NULL, 2, {4, 9}},
    {"tanh", NULL, 2, {4, 9}},
    {"sigmoid", NULL, 2, {4, 9}},
    {"gelu", NULL, 2, {4, 9}},
    {"identity", NULL, 2, {4, 9}},
};

START_TEST(test_f32_matches_f64)
{
    const struct layer_case *c = &layer_cases[_i];
    fixture d = {0}, s = {0};
    fixture_build(&d, SL_F64, c->type, c->text, c->ndim, c->shape, 11);
    fixture_build(&s, SL_F32, c->type, c->text, c->ndim, c->shape, 11);
    /* The same parameters and input, rounded to f32. */
    if (sl_model_numel(d.model) > 0)
        ck_assert_sl_ok(
            sl_tensor_copy(sl_model_flat_params(s.model), sl_model_flat_params(d.model)));
    ck_assert_sl_ok(sl_tensor_copy(&s.x, &d.x));
    fixture_forward(&d);
    fixture_forward(&s);
    ck_assert_int_eq(s.y->dtype, SL_F32);
    ck_assert(sl_tensor_same_shape(s.y, d.y));
    expect_close(s.y, f64(d.y), sl_tensor_numel(d.y), 1e-5, c->type);
    fixture_free(&d);
    fixture_free(&s);
}
END_TEST

/* ---------------------------------------------------------------- errors */

static void expect_shape_error(const char *type, const char *text, int ndim,
                               const int64_t *shape, const char *needle)
{
    fixture f = {0};
    fixture_build(&f, SL_F64, type, text, ndim, shape, 1);
    ck_assert_sl_fails(sl_model_forward(f.model, &f.x, &f.y), SL_ESHAPE, needle);
    int out_ndim;
    int64_t out[SL_MAX_DIMS];
    ck_assert_sl_fails(sl_model_output_shape(f.model, ndim, shape, &out_ndim, out), SL_ESHAPE,
                       type);
    fixture_free(&f);
}

START_TEST(test_shape_errors)
{
    expect_shape_error("linear", "in_features=5,out_features=2", 2, SHAPE(3, 4),
                       "expected input (B, 5), got [3, 4]");
    expect_shape_error("linear", "in_features=4,out_features=2", 3, SHAPE(3, 2, 2),
                       "got [3, 2, 2]");
    expect_shape_error("conv2d", "in_channels=2,out_channels=2,kernel_size=3", 4,
                       SHAPE(1, 3, 5, 5), "expected input (B, 2, H, W), got [1, 3, 5, 5]");
    expect_shape_error("conv2d", "in_channels=2,out_channels=2,kernel_size=3", 3,
                       SHAPE(1, 2, 5), "got [1, 2, 5]");
    expect_shape_error("conv2d", "in_channels=1,out_channels=2,kernel_size=3", 4,
                       SHAPE(1, 1, 2, 5), "smaller than kernel_size 3");
    expect_shape_error("maxpool2d", "kernel_size=2", 3, SHAPE(2, 4, 4), "got [2, 4, 4]");
    expect_shape_error("avgpool2d", "kernel_size=3", 4, SHAPE(2, 1, 2, 4), "kernel_size 3");
    expect_shape_error("layernorm", "features=6", 2, SHAPE(3, 5),
                       "expected input (B, ..., 6), got [3, 5]");
}
END_TEST

static void expect_option_error(const char *type, const char *text, const char *needle)
{
    sl_model *m;
    sl_options *o = sl_test_options(text);
    ck_assert_sl_ok(sl_model_new(SL_F32, &m));
    ck_assert_sl_fails(sl_model_add(m, type, o), SL_EINVAL, needle);
    ck_assert_int_eq(sl_model_nmodules(m), 0);
    sl_model_free(m);
    sl_options_free(o);
}

START_TEST(test_option_errors)
{
    expect_option_error("linear", "in_features=0,out_features=3", "in_features");
    expect_option_error("linear", "in_features=2,out_features=-3", "out_features");
    expect_option_error("linear", "in_features=2", "out_features");
    expect_option_error("linear", "in_features=2,out_features=3,infeatures=2", "infeatures");
    expect_option_error("conv2d", "in_channels=0,out_channels=1,kernel_size=3", "in_channels");
    expect_option_error("conv2d", "in_channels=1,out_channels=0,kernel_size=3", "out_channels");
    expect_option_error("conv2d", "in_channels=1,out_channels=1,kernel_size=0", "kernel_size");
    expect_option_error("conv2d", "in_channels=1,out_channels=1,kernel_size=3,stride=0",
                        "stride");
    expect_option_error("conv2d", "in_channels=1,out_channels=1,kernel_size=3,padding=-1",
                        "padding");
    expect_option_error("maxpool2d", "kernel_size=0", "kernel_size");
    expect_option_error("maxpool2d", "kernel_size=2,padding=2", "padding");
    expect_option_error("avgpool2d", "kernel_size=2,stride=-1", "stride");
    expect_option_error("layernorm", "features=0", "features");
    expect_option_error("layernorm", "features=4,eps=-1", "eps");
    expect_option_error("relu", "negative_slope=0.1", "negative_slope");
    expect_option_error("flatten", "start_dim=1", "start_dim");
    expect_option_error("reshape", "shape=2x0", "positive extents");
    expect_option_error("reshape", "shape=3y4", "unexpected 'y'");
}
END_TEST

/* ---------------------------------------------------------------- batch sizes */

/* A smaller batch after a larger one reuses the module's scratch (no
 * allocation) and computes the same rows; the larger batch afterwards still
 * gives the original result. */
START_TEST(test_batch_size_change)
{
    const struct layer_case *c = &layer_cases[_i];
    fixture f = {0};
    fixture_build(&f, SL_F64, c->type, c->text, c->ndim, c->shape, 13);
    fixture_forward(&f);
    int64_t n = sl_tensor_numel(f.y), per_row = n / f.y->shape[0];
    double *first = malloc((size_t)n * sizeof *first);
    memcpy(first, f.y->data, (size_t)n * sizeof *first);
    sl_module *mod = sl_model_module(f.model, 0);
    void *scratch[SL_MODULE_SCRATCH_SLOTS], *now;
    for (int s = 0; s < SL_MODULE_SCRATCH_SLOTS; s++)
        ck_assert_sl_ok(sl_module_scratch(mod, s, 0, &scratch[s]));

    sl_tensor part = {0};
    ck_assert_sl_ok(sl_tensor_narrow(&f.x, 0, 0, 1, &part));
    ck_assert_sl_ok(sl_model_forward(f.model, &part, &f.y));
    ck_assert_int_eq(f.y->shape[0], 1);
    /* BLAS may block a GEMM of another size differently: rounding only. */
    expect_close(f.y, first, per_row, 1e-14, "smaller batch");
    for (int s = 0; s < SL_MODULE_SCRATCH_SLOTS; s++) {
        ck_assert_sl_ok(sl_module_scratch(mod, s, 0, &now));
        ck_assert_ptr_eq(now, scratch[s]);
    }
    fixture_forward(&f);
    expect_close(f.y, first, n, 0, "larger batch again");
    sl_tensor_release(&part);
    free(first);
    fixture_free(&f);
}
END_TEST

/* PyTorch's names and initialisation bounds. */
START_TEST(test_parameters_like_pytorch)
{
    fixture f = {0};
    fixture_build(&f, SL_F64, "conv2d", "in_channels=2,out_channels=3,kernel_size=2", 4,
                  SHAPE(1, 2, 3, 3), 1);
    ck_assert_int_eq(sl_model_nparams(f.model), 2);
    ck_assert_str_eq(sl_model_param_name(f.model, 0), "0.weight");
    ck_assert_str_eq(sl_model_param_name(f.model, 1), "0.bias");
    ck_assert_int_eq(sl_model_param(f.model, 0)->ndim, 4);
    fixture_free(&f);

    sl_model *m = new_model(SL_F64, "linear", "in_features=16,out_features=50", 7);
    const sl_tensor *w = sl_model_param(m, 0);
    ck_assert_int_eq(w->shape[0], 50);
    ck_assert_int_eq(w->shape[1], 16);
    double lo = 1, hi = -1; /* bound 1/sqrt(16) = 0.25 */
    for (int64_t i = 0; i < sl_model_numel(m); i++) {
        double v = sl_tensor_flat_get(sl_model_flat_params(m), i);
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    ck_assert(lo >= -0.25 && hi < 0.25);
    ck_assert(lo < -0.2 && hi > 0.2);
    sl_model_free(m);
}
END_TEST

static Suite *modules_suite(void)
{
    Suite *s = suite_create("modules");
    TCase *grad = tcase_create("gradcheck");
    tcase_set_timeout(grad, 60);
    tcase_add_test(grad, test_gradcheck_linear);
    tcase_add_test(grad, test_gradcheck_conv2d);
    tcase_add_test(grad, test_gradcheck_pool);
    tcase_add_test(grad, test_gradcheck_flatten_layernorm);
    tcase_add_test(grad, test_gradcheck_activations);
    suite_add_tcase(s, grad);
    TCase *fwd = tcase_create("forward");
    tcase_add_test(fwd, test_forward_linear);
    tcase_add_test(fwd, test_forward_conv2d);
    tcase_add_test(fwd, test_forward_pool);
    tcase_add_test(fwd, test_maxpool_ties);
    tcase_add_test(fwd, test_maxpool_2x2_f32_ties_and_nan);
    tcase_add_test(fwd, test_forward_flatten);
    tcase_add_test(fwd, test_forward_layernorm);
    tcase_add_test(fwd, test_forward_activations);
    tcase_add_test(fwd, test_leaky_relu_slope);
    tcase_add_test(fwd, test_parameters_like_pytorch);
    int ncases = (int)(sizeof layer_cases / sizeof *layer_cases);
    tcase_add_loop_test(fwd, test_f32_matches_f64, 0, ncases);
    tcase_add_loop_test(fwd, test_batch_size_change, 0, ncases);
    suite_add_tcase(s, fwd);
    TCase *err = tcase_create("errors");
    tcase_add_test(err, test_shape_errors);
    tcase_add_test(err, test_option_errors);
    suite_add_tcase(s, err);
    return s;
}

int main(void) { return sl_test_run(modules_suite()); }
