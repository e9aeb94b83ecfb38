/* tests/check_optim.c — the built-in optimizers against naive reference
 * implementations of torch.optim's update rules, written here from the
 * PyTorch documentation in their textbook form (bias-corrected moments,
 * plain exponential averages), one element at a time in double. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- one configuration: type, options as text, and the same values as
 * the reference reads them -------------------------------------------- */

typedef struct cfg {
    const char *type;
    const char *opts; /* "key=value,..." handed to sl_options_parse; NULL: defaults */
    double lr, momentum, dampening, wd, beta1, beta2, eps, lr_decay, init_acc, alpha;
    bool nesterov, amsgrad, centered;
} cfg;

static const struct {
    const char *type, *opts;
} cases[] = {
    {"sgd", NULL},
    {"sgd", "lr=0.1,momentum=0.9"},
    {"sgd", "lr=0.1,momentum=0.9,nesterov=true,weight_decay=0.01"},
    {"sgd", "lr=0.05,momentum=0.8,dampening=0.3,weight_decay=0.1"},
    {"adam", NULL},
    {"adam", "lr=0.01,weight_decay=0.1,amsgrad=true"},
    {"adam", "lr=0.02,beta1=0.5,beta2=0.9,eps=1e-3"},
    {"adamw", NULL},
    {"adamw", "lr=0.01,weight_decay=0.1,amsgrad=true"},
    {"adagrad", NULL},
    {"adagrad", "lr=0.1,lr_decay=0.05,weight_decay=0.1,initial_accumulator_value=0.5"},
    {"rmsprop", NULL},
    {"rmsprop", "momentum=0.9,centered=true,weight_decay=0.05"},
    {"rmsprop", "centered=true,alpha=0.9,eps=1e-4"},
    {"rmsprop", "lr=0.001,momentum=0.5"},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* torch.optim's documented defaults. */
static cfg defaults(const char *type)
{
    cfg c = {.type = type};
    if (strcmp(type, "sgd") == 0) {
        c.lr = 0.01;
    } else if (strcmp(type, "adam") == 0 || strcmp(type, "adamw") == 0) {
        c.lr = 0.001;
        c.beta1 = 0.9;
        c.beta2 = 0.999;
        c.eps = 1e-8;
        c.wd = strcmp(type, "adamw") == 0 ? 0.01 : 0.0;
    } else if (strcmp(type, "adagrad") == 0) {
        c.lr = 0.01;
        c.eps = 1e-10;
    } else if (strcmp(type, "rmsprop") == 0) {
        c.lr = 0.01;
        c.alpha = 0.99;
        c.eps = 1e-8;
    }
    return c;
}

/* Reads "key=value,..." into c, independently of the library's parser. */
static cfg make_cfg(int k)
{
    cfg c = defaults(cases[k].type);
    c.opts = cases[k].opts;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", c.opts ? c.opts : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = '\0';
        const char *v = eq + 1;
        bool b = strcmp(v, "true") == 0;
        double x = atof(v);
        if (!strcmp(kv, "lr")) c.lr = x;
        else if (!strcmp(kv, "momentum")) c.momentum = x;
        else if (!strcmp(kv, "dampening")) c.dampening = x;
        else if (!strcmp(kv, "weight_decay")) c.wd = x;
        else if (!strcmp(kv, "beta1")) c.beta1 = x;
        else if (!strcmp(kv, "beta2")) c.beta2 = x;
        else if (!strcmp(kv, "eps")) c.eps = x;
        else if (!strcmp(kv, "lr_decay")) c.lr_decay = x;
        else if (!strcmp(kv, "initial_accumulator_value")) c.init_acc = x;
        else if (!strcmp(kv, "alpha")) c.alpha = x;
        else if (!strcmp(kv, "nesterov")) c.nesterov = b;
        else if (!strcmp(kv, "amsgrad")) c.amsgrad = b;
        else if (!strcmp(kv, "centered")) c.centered = b;
        else ck_abort_msg("test bug: key %s", kv);
    }
    return c;
}

/* ---- the reference ----------------------------------------------------- */

typedef struct ref {
    int64_t n, t;
    double *p, *s1, *s2, *s3; /* params and up to three state vectors */
} ref;

static void ref_reset(const cfg *c, ref *r)
{
    r->t = 0;
    for (int64_t i = 0; i < r->n; i++) {
        r->s1[i] = strcmp(c->type, "adagrad") == 0 ? c->init_acc : 0.0;
        r->s2[i] = r->s3[i] = 0.0;
    }
}

static void ref_sgd(const cfg *c, ref *r, int64_t i, double g)
{
    double p = r->p[i], *buf = &r->s1[i];
    g += c->wd * p;
    if (c->momentum != 0.0) {
        *buf = r->t == 1 ? g : c->momentum * *buf + (1.0 - c->dampening) * g;
        g = c->nesterov ? g + c->momentum * *buf : *buf;
    }
    r->p[i] = p - c->lr * g;
}

static void ref_adam(const cfg *c, ref *r, int64_t i, double g)
{
    double p = r->p[i], *m = &r->s1[i], *v = &r->s2[i], *vmax = &r->s3[i];
    if (strcmp(c->type, "adamw") == 0)
        p -= c->lr * c->wd * p;
    else
        g += c->wd * p;
    *m = c->beta1 * *m + (1.0 - c->beta1) * g;
    *v = c->beta2 * *v + (1.0 - c->beta2) * g * g;
    *vmax = fmax(*vmax, *v);
    double mhat = *m / (1.0 - pow(c->beta1, (double)r->t));
    double vhat = (c->amsgrad ? *vmax : *v) / (1.0 - pow(c->beta2, (double)r->t));
    r->p[i] = p - c->lr * mhat / (sqrt(vhat) + c->eps);
}

static void ref_adagrad(const cfg *c, ref *r, int64_t i, double g)
{
    double p = r->p[i], *sum = &r->s1[i];
    g += c->wd * p;
    double clr = c->lr / (1.0 + (double)(r->t - 1) * c->lr_decay);
    *sum += g * g;
    r->p[i] = p - clr * g / (sqrt(*sum) + c->eps);
}

static void ref_rmsprop(const cfg *c, ref *r, int64_t i, double g)
{
    double p = r->p[i], *sq = &r->s1[i], *gavg = &r->s2[i], *buf = &r->s3[i];
    g += c->wd * p;
    *sq = c->alpha * *sq + (1.0 - c->alpha) * g * g;
    double var = *sq;
    if (c->centered) {
        *gavg = c->alpha * *gavg + (1.0 - c->alpha) * g;
        var -= *gavg * *gavg;
    }
    double avg = sqrt(var) + c->eps;
    if (c->momentum > 0.0) {
        *buf = c->momentum * *buf + g / avg;
        r->p[i] = p - c->lr * *buf;
    } else {
        r->p[i] = p - c->lr * g / avg;
    }
}

static void ref_step(const cfg *c, ref *r, const double *g)
{
    r->t++;
    for (int64_t i = 0; i < r->n; i++) {
        if (strcmp(c->type, "sgd") == 0)
            ref_sgd(c, r, i, g[i]);
        else if (strncmp(c->type, "adam", 4) == 0)
            ref_adam(c, r, i, g[i]);
        else if (strcmp(c->type, "adagrad") == 0)
            ref_adagrad(c, r, i, g[i]);
        else
            ref_rmsprop(c, r, i, g[i]);
    }
}

/* ---- the model under test ---------------------------------------------- */

/* Two linear layers, 5 -> 4 -> 3: 39 parameters over four tensors. */
static sl_model *small_model(sl_dtype dtype, bool build)
{
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    sl_test_add_linear(m, 5, 4, true);
    sl_test_add_linear(m, 4, 3, true);
    if (build)
        ck_assert_sl_ok(sl_model_build(m, 42));
    return m;
}

/* Deterministic gradients of both signs and varied size for step `step`;
 * written into the model (in its dtype) and into g (exactly as stored). */
static void set_grads(sl_model *m, int step, double *g)
{
    sl_tensor *flat = sl_model_flat_grads(m);
    for (int64_t i = 0; i < sl_model_numel(m); i++) {
        double v = sin(0.37 * (double)i + 1.1 * step) + 0.3 * cos(1.7 * (double)i);
        sl_tensor_set(flat, &i, v);
        g[i] = sl_tensor_flat_get(flat, i);
    }
}

static sl_optim *new_optim(const cfg *c, sl_model *m)
{
    sl_options *o = sl_options_new();
    if (c->opts)
        ck_assert_sl_ok(sl_options_parse(o, c->opts));
    sl_optim *opt = NULL;
    ck_assert_sl_ok(sl_optim_new(c->type, m, c->opts ? o : NULL, &opt));
    sl_options_free(o); /* the optimizer keeps its own copy */
    return opt;
}

static double max_diff(sl_model *m, const ref *r)
{
    sl_tensor *flat = sl_model_flat_params(m);
    double worst = 0.0;
    for (int64_t i = 0; i < r->n; i++)
        worst = fmax(worst, fabs(sl_tensor_flat_get(flat, i) - r->p[i]));
    return worst;
}

/* Three steps, a reset, a halved learning rate and four more steps; after
 * each step the parameters must match the reference to `tol`. */
static void run_case(int k, sl_dtype dtype, double tol)
{
    cfg c = make_cfg(k);
    sl_model *m = small_model(dtype, true);
    int64_t n = sl_model_numel(m);
    ref r = {.n = n};
    r.p = calloc((size_t)n, sizeof *r.p);
    r.s1 = calloc((size_t)n, sizeof *r.s1);
    r.s2 = calloc((size_t)n, sizeof *r.s2);
    r.s3 = calloc((size_t)n, sizeof *r.s3);
    double *g = calloc((size_t)n, sizeof *g);
    for (int64_t i = 0; i < n; i++)
        r.p[i] = sl_tensor_flat_get(sl_model_flat_params(m), i);
    ref_reset(&c, &r);

    sl_optim *opt = new_optim(&c, m);
    ck_assert_str_eq(sl_optim_name(opt), c.type);
    ck_assert_ptr_eq(sl_optim_model(opt), m);
    ck_assert_int_eq(sl_optim_numel(opt), n);
    ck_assert_double_eq(sl_optim_lr(opt), c.lr);
    for (int step = 0; step < 7; step++) {
        if (step == 3) {
            sl_optim_reset(opt);
            ref_reset(&c, &r);
            ck_assert_int_eq(sl_optim_steps(opt), 0);
            c.lr *= 0.5;
            sl_optim_set_lr(opt, c.lr);
            ck_assert_double_eq(sl_optim_lr(opt), c.lr);
        }
        set_grads(m, step, g);
        ck_assert_sl_ok(sl_optim_step(opt));
        ref_step(&c, &r, g);
        ck_assert_int_eq(sl_optim_steps(opt), r.t);
        double d = max_diff(m, &r);
        ck_assert_msg(d <= tol, "%s %s %s step %d: max |p - ref| = %g > %g", c.type,
                      c.opts ? c.opts : "(defaults)", sl_dtype_name(dtype), step, d, tol);
    }
    sl_optim_free(opt);
    sl_model_free(m);
    free(r.p);
    free(r.s1);
    free(r.s2);
    free(r.s3);
    free(g);
}

START_TEST(test_matches_reference_f64) { run_case(_i, SL_F64, 1e-12); }
END_TEST

/* f32 state and arithmetic drift from the double reference only by
 * rounding: relative 1e-7 per operation over a handful of steps. */
START_TEST(test_matches_reference_f32) { run_case(_i, SL_F32, 2e-5); }
END_TEST

/* The parameters really move: a reference that is never called cannot
 * agree with an optimizer that does nothing. */
START_TEST(test_step_changes_parameters)
{
    sl_model *m = small_model(SL_F64, true);
    int64_t n = sl_model_numel(m);
    double *before = malloc((size_t)n * sizeof *before), *g = malloc((size_t)n * sizeof *g);
    memcpy(before, sl_model_flat_params(m)->data, (size_t)n * sizeof *before);
    cfg c = make_cfg(_i);
    sl_optim *opt = new_optim(&c, m);
    set_grads(m, 0, g);
    ck_assert_sl_ok(sl_optim_step(opt));
    const double *after = sl_model_flat_params(m)->data;
    int moved = 0;
    for (int64_t i = 0; i < n; i++)
        moved += after[i] != before[i];
    ck_assert_int_eq(moved, n);
    sl_optim_free(opt);
    sl_model_free(m);
    free(before);
    free(g);
}
END_TEST

/* Options given through the typed setters (an integer lr is coerced). */
START_TEST(test_typed_options)
{
    sl_model *m = small_model(SL_F64, true);
    sl_options *o = sl_options_new();
    ck_assert_sl_ok(sl_options_set_int(o, "lr", 2));
    ck_assert_sl_ok(sl_options_set_float(o, "momentum", 0.5));
    ck_assert_sl_ok(sl_options_set_bool(o, "nesterov", true));
    sl_optim *opt = NULL;
    ck_assert_sl_ok(sl_optim_new("sgd", m, o, &opt));
    sl_options_free(o);
    ck_assert_double_eq(sl_optim_lr(opt), 2.0);
    sl_optim_free(opt);
    sl_model_free(m);
}
END_TEST

static void expect_bad(const char *type, const char *opts, int code, const char *needle)
{
    sl_model *m = small_model(SL_F64, true);
    sl_options *o = sl_options_new();
    ck_assert_sl_ok(sl_options_parse(o, opts));
    sl_optim *opt = (sl_optim *)&opt; /* must be reset to NULL on failure */
    ck_assert_sl_fails(sl_optim_new(type, m, o, &opt), code, needle);
    ck_assert_ptr_null(opt);
    sl_options_free(o);
    sl_model_free(m);
}

START_TEST(test_bad_options)
{
    expect_bad("sgd", "lr=-0.1", SL_EINVAL, "lr");
    expect_bad("adam", "lr=-1", SL_EINVAL, "adam");
    expect_bad("sgd", "nesterov=true", SL_EINVAL, "nesterov");
    expect_bad("sgd", "momentum=0.9,dampening=0.1,nesterov=true", SL_EINVAL, "nesterov");
    expect_bad("sgd", "momentum=-0.5", SL_EINVAL, "momentum");
    expect_bad("adam", "betas=0.9", SL_EINVAL, "betas");
    expect_bad("adam", "beta1=1", SL_EINVAL, "beta1");
    expect_bad("adamw", "beta2=-0.1", SL_EINVAL, "beta2");
    expect_bad("adam", "eps=-1e-8", SL_EINVAL, "eps");
    expect_bad("adamw", "weight_decay=-0.01", SL_EINVAL, "weight_decay");
    expect_bad("adagrad", "lr_decay=-1", SL_EINVAL, "lr_decay");
    expect_bad("adagrad", "initial_accumulator_value=-1", SL_EINVAL,
               "initial_accumulator_value");
    expect_bad("rmsprop", "alpha=-0.5", SL_EINVAL, "alpha");
    expect_bad("rmsprop", "centered=maybe", SL_EINVAL, "centered");
    expect_bad("rmsprop", "momentum=abc", SL_EINVAL, "momentum");
    expect_bad("no_such_optimizer", "lr=0.1", SL_ENOTFOUND, "no_such_optimizer");
}
END_TEST

START_TEST(test_needs_built_model)
{
    sl_model *m = small_model(SL_F64, false);
    sl_optim *opt = NULL;
    ck_assert_sl_fails(sl_optim_new("adam", m, NULL, &opt), SL_ESTATE, "adam");
    ck_assert_ptr_null(opt);
    sl_model_free(m);
}
END_TEST

/* set_lr refuses values that would poison the parameters. */
START_TEST(test_set_lr_keeps_last_good_value)
{
    sl_model *m = small_model(SL_F32, true);
    sl_optim *opt = NULL;
    ck_assert_sl_ok(sl_optim_new("rmsprop", m, NULL, &opt));
    sl_optim_set_lr(opt, 0.25);
    sl_optim_set_lr(opt, NAN);
    sl_optim_set_lr(opt, -1.0);
    ck_assert_double_eq(sl_optim_lr(opt), 0.25);
    sl_optim_free(opt);
    sl_model_free(m);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("reference");
    tcase_add_loop_test(tc, test_matches_reference_f64, 0, NCASES);
    tcase_add_loop_test(tc, test_matches_reference_f32, 0, NCASES);
    tcase_add_loop_test(tc, test_step_changes_parameters, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("options");
    tcase_add_test(tc, test_typed_options);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_needs_built_model);
    tcase_add_test(tc, test_set_lr_keeps_last_good_value);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(optim_suite()); }
