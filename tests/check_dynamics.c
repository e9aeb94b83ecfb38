/* The dynamics plugins: syre (anchor decay), teleport (GL(k) action and
 * ascent on |grad L|^2), conserved (Noether quantities and their drift).
 * Every expectation is computed here independently of the plugin code:
 * losses and gradients through sl_model_loss, C and Q by naive loops. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* ---- fixtures ---------------------------------------------------------------- */

static void setup(void) { ck_assert_sl_ok(sl_registry_init()); }

static void add_leaky(sl_model *m, double slope)
{
    sl_options *o = sl_options_new();
    sl_options_set_float(o, "negative_slope", slope);
    ck_assert_sl_ok(sl_model_add(m, "leaky_relu", o));
    sl_options_free(o);
}

/* A chain of linear layers of widths dims[0..n) with `act` between them
 * ("leaky_relu" with slope 0.1, "relu", or NULL for none). */
static sl_model *make_chain(sl_dtype dt, const int64_t *dims, int n, const char *act, bool bias,
                            uint64_t seed)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dt, &m));
    for (int i = 0; i + 1 < n; i++) {
        sl_test_add_linear(m, dims[i], dims[i + 1], bias);
        if (i + 2 < n && act && strcmp(act, "leaky_relu") == 0)
            add_leaky(m, 0.1);
        else if (i + 2 < n && act)
            ck_assert_sl_ok(sl_model_add(m, act, NULL));
    }
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

/* n rows of N(0,1) inputs (d) and targets: regression (k columns, f32) or,
 * with k < 0, labels in [0, -k). */
static void make_data(sl_dataset *d, int64_t n, int64_t dim, int64_t k, uint64_t seed)
{
    sl_rng r;
    sl_rng_seed(&r, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F32, 2, (int64_t[]){n, dim}));
    ck_assert_sl_ok(sl_tensor_normal(&d->x, &r, 0.0, 1.0));
    if (k > 0) {
        ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_F32, 2, (int64_t[]){n, k}));
        ck_assert_sl_ok(sl_tensor_normal(&d->y, &r, 0.0, 1.0));
    } else {
        ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_I64, 1, (int64_t[]){n}));
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)d->y.data)[i] = (int64_t)sl_rng_below(&r, (uint64_t)-k);
    }
}

static sl_tensor as_f64(const sl_tensor *x)
{
    sl_tensor t = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&t, SL_F64, x->ndim, x->shape));
    ck_assert_sl_ok(sl_tensor_copy(&t, x));
    return t;
}

/* Loss and |grad L|^2 of m on all of d. */
static void loss_gradsq(sl_model *m, const sl_dataset *d, const char *loss, double *value,
                        double *gradsq)
{
    sl_tensor x = as_f64(&d->x);
    ck_assert_sl_ok(sl_model_loss(m, sl_registry_find(SL_KIND_LOSS, loss), &x, &d->y, true,
                                  value));
    double nrm;
    ck_assert_sl_ok(sl_norm2(sl_model_flat_grads(m), &nrm));
    *gradsq = nrm * nrm;
    sl_tensor_release(&x);
}

static sl_options *train_opts(int64_t epochs, int64_t batch, const char *loss)
{
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "epochs", epochs);
    sl_options_set_int(o, "batch", batch);
    sl_options_set_int(o, "seed", 3);
    sl_options_set_bool(o, "shuffle", false);
    sl_options_set_string(o, "loss", loss);
    return o;
}

static sl_optim *make_sgd(sl_model *m, double lr, double wd)
{
    sl_options *o = sl_options_new();
    sl_options_set_float(o, "lr", lr);
    sl_options_set_float(o, "weight_decay", wd);
    sl_optim *opt;
    ck_assert_sl_ok(sl_optim_new("sgd", m, o, &opt));
    sl_options_free(o);
    return opt;
}

/* One epoch of `rows` regression rows through a fresh f64 chain (dims,
 * act, with biases) with hook h must fail with SL_EINVAL naming `needle`. */
static void expect_train_refused(sl_hook *h, const int64_t *dims, int n, const char *act,
                                 int64_t rows, const char *needle)
{
    sl_model *m = make_chain(SL_F64, dims, n, act, true, 1);
    sl_dataset d = {0};
    make_data(&d, rows, dims[0], dims[n - 1], 2);
    sl_optim *opt = make_sgd(m, 0.1, 0.0);
    sl_options *t = train_opts(1, rows, "mse");
    sl_train_args args = {.train = &d, .hooks = &h, .nhooks = 1};
    ck_assert_sl_fails(sl_train(m, opt, &args, t), SL_EINVAL, needle);
    sl_options_free(t);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
}

/* Trains with one hook; returns the last history value of `metric` (NAN if
 * absent). */
static double train_with(sl_model *m, sl_optim *opt, const sl_dataset *d, sl_hook *hook,
                         int64_t epochs, int64_t batch, const char *loss, const char *metric)
{
    sl_history *h = sl_history_new();
    sl_options *o = train_opts(epochs, batch, loss);
    sl_train_args args = {.train = d, .hooks = &hook, .nhooks = hook ? 1 : 0, .history = h};
    ck_assert_sl_ok(sl_train(m, opt, &args, o));
    double v = NAN;
    if (metric && sl_history_count(h) > 0)
        sl_record_get(sl_history_row(h, sl_history_count(h) - 1), metric, &v);
    sl_options_free(o);
    sl_history_free(h);
    return v;
}

/* ---- teleport ------------------------------------------------------------------ */

/* One teleport before the first step, without a cap (caller frees). */
static sl_options *teleport_opts(const char *form, int64_t steps, double lr, double loss_tol)
{
    sl_options *o = sl_options_new();
    sl_options_set_string(o, "form", form);
    sl_options_set_int(o, "epoch", 0);
    sl_options_set_int(o, "count", 1);
    sl_options_set_int(o, "steps", steps);
    sl_options_set_float(o, "lr", lr);
    sl_options_set_float(o, "cap", 0);
    sl_options_set_float(o, "loss_tol", loss_tol);
    return o;
}

static sl_hook *make_teleport(const char *form, int64_t steps, double lr)
{
    sl_options *o = teleport_opts(form, steps, lr, 1e-3);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    sl_options_free(o);
    return h;
}

/* Exact regime: 4 samples, widths 6 and 7 (and input 5), f64.  With SGD at
 * lr 0 the only change to the model is the teleport. */
static void check_teleport_exact(const char *form, double lr, bool bias)
{
    static const int64_t dims[] = {5, 6, 7, 8};
    sl_model *m = make_chain(SL_F64, dims, 4, "leaky_relu", bias, 11);
    sl_dataset d = {0};
    make_data(&d, 4, 5, 8, 12);
    double l0, g0, l1, g1;
    loss_gradsq(m, &d, "mse", &l0, &g0);
    sl_optim *opt = make_sgd(m, 0.0, 0.0);
    sl_hook *h = make_teleport(form, 5, lr);
    double n = train_with(m, opt, &d, h, 1, 4, "mse", "teleports");
    loss_gradsq(m, &d, "mse", &l1, &g1);
    ck_assert_msg(n == 1, "%s: teleport was not accepted (%g)", form, n);
    ck_assert_msg(fabs(l1 - l0) <= 1e-6 * l0, "%s: loss %.17g -> %.17g", form, l0, l1);
    ck_assert_msg(g1 > 1.05 * g0, "%s: |grad L|^2 %.6g -> %.6g did not rise", form, g0, g1);
    sl_hook_free(h);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
}

START_TEST(teleport_2023_keeps_loss_raises_gradient) { check_teleport_exact("2023", 3.0, false); }
END_TEST

START_TEST(teleport_2022_keeps_loss_raises_gradient) { check_teleport_exact("2022", 1.0, false); }
END_TEST

START_TEST(teleport_with_biases_keeps_loss)
{
    check_teleport_exact("2023", 0.1, true);
    check_teleport_exact("2022", 1.0, true);
}
END_TEST

/* A teleport batch wider than the hidden layer is not loss-preserving for the
 * 2023 action; with a zero tolerance such a teleport must be rejected and
 * the model left bit-identical. */
START_TEST(teleport_rejects_a_loss_increase)
{
    static const int64_t dims[] = {5, 3, 4};
    sl_model *m = make_chain(SL_F64, dims, 3, "leaky_relu", false, 21);
    sl_model *before;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &before));
    sl_dataset d = {0};
    make_data(&d, 40, 5, 4, 22);
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "epoch", 0);
    sl_options_set_int(o, "steps", 5);
    sl_options_set_float(o, "lr", 0.5);
    sl_options_set_float(o, "loss_tol", 0);
    sl_options_set_float(o, "cap", 0);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    sl_optim *opt = make_sgd(m, 0.0, 0.0);
    double rejected = train_with(m, opt, &d, h, 1, 40, "mse", "teleports_rejected");
    ck_assert_msg(rejected == 1, "rejected = %g", rejected);
    sl_tensor *a = sl_model_flat_params(m), *b = sl_model_flat_params(before);
    for (int64_t i = 0; i < sl_tensor_numel(a); i++)
        ck_assert(sl_tensor_flat_get(a, i) == sl_tensor_flat_get(b, i));
    sl_hook_free(h);
    sl_options_free(o);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(before);
    sl_model_free(m);
}
END_TEST

/* An f32 model teleports through its f64 twin: the loss keeps to f32 accuracy. */
START_TEST(teleport_f32_model)
{
    static const int64_t dims[] = {5, 6, 7, 8};
    sl_model *m = make_chain(SL_F32, dims, 4, "leaky_relu", true, 31);
    sl_dataset d = {0};
    make_data(&d, 4, 5, 8, 32);
    sl_model *m64;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &m64));
    double l0, g0, l1, g1;
    loss_gradsq(m64, &d, "mse", &l0, &g0);
    sl_optim *opt = make_sgd(m, 0.0, 0.0);
    sl_hook *h = make_teleport("2023", 5, 0.3);
    ck_assert(train_with(m, opt, &d, h, 1, 4, "mse", "teleports") == 1);
    ck_assert_sl_ok(sl_model_copy_state(m64, m));
    loss_gradsq(m64, &d, "mse", &l1, &g1);
    ck_assert_msg(fabs(l1 - l0) <= 1e-4 * l0, "loss %.9g -> %.9g", l0, l1);
    ck_assert_msg(g1 > g0, "|grad L|^2 %.6g -> %.6g", g0, g1);
    sl_hook_free(h);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m64);
    sl_model_free(m);
}
END_TEST

START_TEST(teleport_option_and_model_errors)
{
    sl_hook *h = NULL;
    ck_assert_sl_fails(sl_hook_new("teleport", NULL, &h), SL_EINVAL, "every");
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "every", 1);
    sl_options_set_float(o, "lr", -1);
    ck_assert_sl_fails(sl_hook_new("teleport", o, &h), SL_EINVAL, "lr");
    sl_options_set_float(o, "lr", 1e-3);
    sl_options_set_string(o, "form", "2021");
    ck_assert_sl_fails(sl_hook_new("teleport", o, &h), SL_EINVAL, "form");
    sl_options_set_string(o, "form", "2022");
    sl_options_set_float(o, "max_growth", 0.5);
    ck_assert_sl_fails(sl_hook_new("teleport", o, &h), SL_EINVAL, "max_growth");
    sl_options_set_float(o, "max_growth", 2);
    sl_options_set_float(o, "max_t_norm", -1);
    ck_assert_sl_fails(sl_hook_new("teleport", o, &h), SL_EINVAL, "max_t_norm");
    sl_options_set_float(o, "max_t_norm", 0.1);
    sl_options_set_int(o, "sharpness_iters", 0);
    ck_assert_sl_fails(sl_hook_new("teleport", o, &h), SL_EINVAL, "sharpness_iters");
    sl_options_set_int(o, "sharpness_iters", 20);
    sl_options_set_string(o, "form", "reference_2022");
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    sl_hook_free(h);
    sl_options_set_string(o, "form", "2022");
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    /* ReLU is not invertible: refused at TRAIN_BEGIN, naming the module
     * (1-based: linear, relu, linear) */
    static const int64_t dims[] = {3, 4, 2};
    expect_train_refused(h, dims, 3, "relu", 8, "module 2 (relu)");
    sl_hook_free(h);
    sl_options_free(o);
}
END_TEST

/* ---- teleport runaways and their guards ------------------------------------------ */

/* The 2022 paper's regression: a 5-6-7-8 net without biases, leaky_relu(0.1),
 * 4 samples; inputs, targets and weights all U[0,1); f64. */
static sl_model *make_regression_dims(uint64_t seed, sl_dataset *d, const int64_t *dims, int n)
{
    sl_model *m = make_chain(SL_F64, dims, n, "leaky_relu", false, seed);
    sl_rng r;
    sl_rng_seed(&r, seed);
    ck_assert_sl_ok(sl_tensor_uniform(sl_model_flat_params(m), &r, 0.0, 1.0));
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F64, 2, SHAPE(4, dims[0])));
    ck_assert_sl_ok(sl_tensor_uniform(&d->x, &r, 0.0, 1.0));
    ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_F64, 2, SHAPE(4, dims[n - 1])));
    ck_assert_sl_ok(sl_tensor_uniform(&d->y, &r, 0.0, 1.0));
    return m;
}

static sl_model *make_regression(uint64_t seed, sl_dataset *d)
{
    static const int64_t dims[] = {5, 6, 7, 8};
    return make_regression_dims(seed, d, dims, 4);
}

/* One 2022-style teleport (8 ascent steps, no cap) before the first step;
 * `guard` (NULL: none) set to `value` (a bool guard when value is NAN). */
static sl_hook *make_guarded(const char *form, double lr, const char *guard, double value)
{
    sl_options *o = teleport_opts(form, 8, lr, 1e-6);
    sl_options_set_bool(o, "reset_optim", false);
    if (guard && isnan(value))
        sl_options_set_bool(o, guard, true);
    else if (guard)
        sl_options_set_float(o, guard, value);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    sl_options_free(o);
    return h;
}

typedef struct tele_run {
    int rc;          /* of sl_train: SL_ENUMERIC once the loss is not finite */
    double growth;   /* |grad L|^2 after / before the teleport */
    double accepted; /* teleports */
    double loss;     /* the last epoch's loss */
} tele_run;

/* Full-batch GD at lr `gd_lr` for `epochs` epochs on the regression of
 * `seed`, with hook h (which it frees). */
static tele_run run_regression(uint64_t seed, sl_hook *h, double gd_lr, int64_t epochs)
{
    sl_dataset d = {0};
    sl_model *m = make_regression(seed, &d);
    sl_optim *opt = make_sgd(m, gd_lr, 0.0);
    sl_history *hist = sl_history_new();
    sl_options *o = train_opts(epochs, 4, "mse");
    sl_train_args args = {.train = &d, .hooks = &h, .nhooks = 1, .history = hist};
    tele_run r = {.rc = sl_train(m, opt, &args, o), .growth = NAN, .accepted = NAN, .loss = NAN};
    ck_assert_msg(sl_history_count(hist) > 0, "no epoch finished");
    const sl_record *first = sl_history_row(hist, 0);
    double before = NAN, after = NAN;
    sl_record_get(first, "teleport_gradsq_before", &before);
    sl_record_get(first, "teleport_gradsq_after", &after);
    sl_record_get(first, "teleports", &r.accepted);
    sl_record_get(sl_history_row(hist, sl_history_count(hist) - 1), "loss", &r.loss);
    r.growth = after / before;
    sl_options_free(o);
    sl_history_free(hist);
    sl_optim_free(opt);
    sl_hook_free(h);
    sl_dataset_release(&d);
    sl_model_free(m);
    return r;
}

/* Seed 6 at teleport lr 2.25e-6: the 8 unguarded ascent steps raise
 * |grad L|^2 about 2e5-fold while keeping the loss, the hook accepts, and
 * GD at lr 1.6e-3 then diverges.  Each guard alone must stop that. */
#define RUNAWAY_SEED 6
#define RUNAWAY_LR 2.25e-6
#define GD_LR 1.6e-3

START_TEST(teleport_unguarded_runaway)
{
    tele_run r = run_regression(RUNAWAY_SEED, make_guarded("2022", RUNAWAY_LR, NULL, 0), GD_LR,
                                100);
    ck_assert_msg(r.accepted == 1 && r.growth > 100, "no runaway: growth %g, accepted %g",
                  r.growth, r.accepted);
    ck_assert_msg(r.rc == SL_ENUMERIC, "GD did not diverge after the runaway (rc %d)", r.rc);
}
END_TEST

START_TEST(teleport_max_growth_stops_runaway)
{
    tele_run r = run_regression(RUNAWAY_SEED, make_guarded("2022", RUNAWAY_LR, "max_growth", 4),
                                GD_LR, 100);
    ck_assert_int_eq(r.rc, SL_OK);
    ck_assert_msg(r.accepted == 1, "the guarded teleport was rejected");
    ck_assert_msg(r.growth > 1 && r.growth <= 4, "|grad L|^2 grew %g-fold", r.growth);
    ck_assert(isfinite(r.loss));
    /* a step 50 times larger overflows |grad L|^2 (unguarded: a rejected
     * teleport); the guard undoes the overflowing step and keeps the rest */
    r = run_regression(RUNAWAY_SEED, make_guarded("2022", 50 * RUNAWAY_LR, NULL, 0), GD_LR, 100);
    ck_assert_msg(r.accepted == 0 && !(r.growth < 1e100), "no overflow: growth %g", r.growth);
    r = run_regression(RUNAWAY_SEED, make_guarded("2022", 50 * RUNAWAY_LR, "max_growth", 4),
                       GD_LR, 100);
    ck_assert_int_eq(r.rc, SL_OK);
    ck_assert_msg(r.accepted == 1 && r.growth <= 4, "growth %g, accepted %g", r.growth,
                  r.accepted);
}
END_TEST

START_TEST(teleport_max_t_norm_stops_runaway)
{
    tele_run r = run_regression(RUNAWAY_SEED,
                                make_guarded("2022", RUNAWAY_LR, "max_t_norm", 0.05), GD_LR, 100);
    ck_assert_int_eq(r.rc, SL_OK);
    ck_assert_msg(r.accepted == 1, "the clamped teleport was rejected");
    /* 8 steps of |T|_F <= 0.05 move g at most to within ~e^0.4 of I */
    ck_assert_msg(r.growth > 1 && r.growth < 4, "|grad L|^2 grew %g-fold", r.growth);
    ck_assert(isfinite(r.loss));
}
END_TEST

START_TEST(teleport_sharpness_guard_stops_runaway)
{
    tele_run r = run_regression(RUNAWAY_SEED,
                                make_guarded("2022", RUNAWAY_LR, "sharpness_guard", NAN), GD_LR,
                                100);
    ck_assert_int_eq(r.rc, SL_OK);
    ck_assert_msg(r.accepted == 0, "the runaway teleport was accepted");
    /* a modest teleport (lr 1e-6: |grad L|^2 x1.3) passes the same guard */
    r = run_regression(RUNAWAY_SEED, make_guarded("2022", 1e-6, "sharpness_guard", NAN), GD_LR,
                       100);
    ck_assert_int_eq(r.rc, SL_OK);
    ck_assert_msg(r.accepted == 1, "a modest teleport was rejected");
}
END_TEST

/* The guard's power iteration against the top eigenvalue of a Hessian
 * built here column by column from central differences of gradients. */
START_TEST(teleport_sharpness_is_top_hessian_eigenvalue)
{
    sl_dataset d = {0};
    sl_model *m = make_regression(RUNAWAY_SEED, &d);
    sl_optim *opt = make_sgd(m, 0.0, 0.0); /* lr 0: the guard never rejects */
    sl_options *o = teleport_opts("2022", 8, 1e-6, 1e-3);
    sl_options_set_bool(o, "sharpness_guard", true);
    sl_options_set_int(o, "sharpness_iters", 200);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    double lambda = train_with(m, opt, &d, h, 1, 4, "mse", "teleport_sharpness");
    const sl_loss_type *mse = sl_registry_find(SL_KIND_LOSS, "mse");
    sl_tensor *p = sl_model_flat_params(m), *g = sl_model_flat_grads(m);
    int64_t n = sl_tensor_numel(p);
    sl_tensor H = {0}, u = {0}, sv = {0}, vt = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&H, SL_F64, 2, SHAPE(n, n)));
    double *hd = H.data, *pd = p->data, value, step = 1e-5;
    for (int64_t j = 0; j < n; j++) {
        double pj = pd[j];
        for (int side = -1; side <= 1; side += 2) {
            pd[j] = pj + side * step;
            ck_assert_sl_ok(sl_model_loss(m, mse, &d.x, &d.y, true, &value));
            for (int64_t i = 0; i < n; i++)
                hd[i * n + j] += side * sl_tensor_flat_get(g, i) / (2 * step);
        }
        pd[j] = pj;
    }
    ck_assert_sl_ok(sl_svd(&H, &u, &sv, &vt));
    /* the largest |eigenvalue| and its sign from the Rayleigh quotient */
    double top = ((double *)sv.data)[0], rq = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            rq += ((double *)u.data)[i * n] * hd[i * n + j] * ((double *)u.data)[j * n];
    ck_assert_msg(rq > 0 && fabs(rq - top) < 1e-6 * top, "top eigenvalue sign: %g vs %g", rq, top);
    ck_assert_msg(fabs(lambda - top) < 1e-4 * top, "power iteration %.10g, Hessian %.10g", lambda,
                  top);
    sl_tensor_release(&H);
    sl_tensor_release(&u);
    sl_tensor_release(&sv);
    sl_tensor_release(&vt);
    sl_hook_free(h);
    sl_options_free(o);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* |change of the batch loss| / loss after one teleport step of lr `lr` with
 * form `form` on a chain of widths dims (no biases), 4 samples. */
static double one_step_loss_change(const int64_t *dims, int n, const char *form, double lr)
{
    sl_dataset d = {0};
    sl_model *m = make_regression_dims(RUNAWAY_SEED, &d, dims, n);
    double l0, g0, l1, g1;
    loss_gradsq(m, &d, "mse", &l0, &g0);
    sl_optim *opt = make_sgd(m, 0.0, 0.0);
    /* loss_tol: accept anything, as the paper's code does */
    sl_options *o = teleport_opts(form, 1, lr, 1e300);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("teleport", o, &h));
    ck_assert(train_with(m, opt, &d, h, 1, 4, "mse", "teleports") == 1);
    loss_gradsq(m, &d, "mse", &l1, &g1);
    sl_hook_free(h);
    sl_options_free(o);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
    return fabs(l1 - l0) / l0;
}

/* reference_2022 is the paper's U(I - T) with stale activations.  Its
 * tangent at T = 0 is the exact form's, so the loss moves at second order
 * in the step (halving lr quarters the change); with two weight layers the
 * only error is U(I - T)(I + T) = U(I - T^2), with three the stale
 * activations add a far larger one; the exact 2022 form keeps the loss. */
START_TEST(teleport_reference_2022_is_not_loss_preserving)
{
    static const int64_t deep[] = {5, 6, 7, 8}, shallow[] = {5, 6, 8};
    const double lr = 2.5e-7;
    double d1 = one_step_loss_change(deep, 4, "reference_2022", lr);
    double d2 = one_step_loss_change(deep, 4, "reference_2022", lr / 2);
    ck_assert_msg(d1 > 1e-6, "depth 3: loss change %g", d1);
    ck_assert_msg(d1 / d2 > 3.2 && d1 / d2 < 4.8, "depth 3: not second order (%g, %g)", d1, d2);
    double s1 = one_step_loss_change(shallow, 3, "reference_2022", lr);
    double s2 = one_step_loss_change(shallow, 3, "reference_2022", lr / 2);
    ck_assert_msg(s1 / s2 > 3.2 && s1 / s2 < 4.8, "depth 2: not second order (%g, %g)", s1, s2);
    ck_assert_msg(s1 < 1e-2 * d1, "depth 2 changed nearly as much as depth 3 (%g, %g)", s1, d1);
    double e1 = one_step_loss_change(deep, 4, "2022", lr);
    ck_assert_msg(e1 < 1e-12, "exact 2022 changed the loss by %g", e1);
}
END_TEST

/* ---- syre ---------------------------------------------------------------------- */

static sl_hook *make_syre(double gamma, double sigma0, bool lr_scaled, const char *include,
                          const char *exclude, int64_t seed)
{
    sl_options *o = sl_options_new();
    sl_options_set_float(o, "gamma", gamma);
    sl_options_set_float(o, "sigma0", sigma0);
    sl_options_set_bool(o, "lr_scaled", lr_scaled);
    if (include)
        sl_options_set_string(o, "include", include);
    if (exclude)
        sl_options_set_string(o, "exclude", exclude);
    sl_options_set_int(o, "seed", seed);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("syre", o, &h));
    sl_options_free(o);
    return h;
}

/* The rescaling toy of docs/background/syre.md: f = u w x on y = a x with
 * a = 1, decay 0.1, started at exactly (0, 0).  Plain decay (sigma0 = 0, and
 * SGD's own weight_decay) never moves; syre escapes to the balanced branch
 * |u w| = a - gamma. */
static double rescaling_toy(sl_hook *h, double sgd_wd)
{
    static const int64_t dims[] = {1, 1, 1};
    sl_model *m = make_chain(SL_F64, dims, 3, NULL, false, 1);
    ck_assert_sl_ok(sl_tensor_fill(sl_model_flat_params(m), 0.0));
    sl_dataset d = {0};
    make_data(&d, 64, 1, 1, 5);
    for (int64_t i = 0; i < 64; i++)
        ((float *)d.y.data)[i] = ((float *)d.x.data)[i]; /* a = 1 */
    sl_optim *opt = make_sgd(m, 0.1, sgd_wd);
    train_with(m, opt, &d, h, 200, 64, "mse", NULL);
    double uw = sl_tensor_flat_get(sl_model_flat_params(m), 0) *
                sl_tensor_flat_get(sl_model_flat_params(m), 1);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
    return uw;
}

START_TEST(syre_escapes_the_symmetric_point)
{
    sl_hook *plain = make_syre(0.1, 0.0, true, NULL, NULL, 1);
    sl_hook *syre = make_syre(0.1, 0.01, true, NULL, NULL, 1);
    ck_assert_msg(rescaling_toy(plain, 0.0) == 0.0, "plain decay left the origin");
    ck_assert_msg(rescaling_toy(NULL, 0.1) == 0.0, "SGD weight decay left the origin");
    double uw = rescaling_toy(syre, 0.0);
    ck_assert_msg(fabs(uw) > 0.5 * (1.0 - 0.1), "syre: |uw| = %g", fabs(uw));
    sl_hook_free(plain);
    sl_hook_free(syre);
}
END_TEST

/* With SGD at lr 0 only syre moves parameters: gamma 0.5 unscaled for 80
 * steps puts θ at θ0 (to 0.5^80).  Excluded biases must not move at all;
 * the anchor's spread must be 0.01/sqrt(fan_in). */
static sl_model *anchor_run(const char *include, const char *exclude, int64_t seed)
{
    static const int64_t dims[] = {20, 30, 5};
    sl_model *m = make_chain(SL_F64, dims, 3, "relu", true, 4);
    sl_dataset d = {0};
    make_data(&d, 8, 20, 5, 6);
    sl_optim *opt = make_sgd(m, 0.0, 0.0);
    sl_hook *h = make_syre(0.5, -1.0, false, include, exclude, seed);
    train_with(m, opt, &d, h, 80, 8, "mse", NULL);
    sl_hook_free(h);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    return m;
}

static double std_of(const sl_tensor *t)
{
    int64_t n = sl_tensor_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = sl_tensor_flat_get(t, i);
        s += v;
        s2 += v * v;
    }
    return sqrt(s2 / (double)n - (s / (double)n) * (s / (double)n));
}

static bool same_tensor(const sl_tensor *a, const sl_tensor *b)
{
    for (int64_t i = 0; i < sl_tensor_numel(a); i++)
        if (sl_tensor_flat_get(a, i) != sl_tensor_flat_get(b, i))
            return false;
    return true;
}

START_TEST(syre_anchor_scale_and_patterns)
{
    static const int64_t dims[] = {20, 30, 5};
    sl_model *init = make_chain(SL_F64, dims, 3, "relu", true, 4);
    sl_model *m = anchor_run("*", "*.bias", 7);
    ck_assert(same_tensor(sl_model_param(m, 1), sl_model_param(init, 1)));
    ck_assert(same_tensor(sl_model_param(m, 3), sl_model_param(init, 3)));
    double s0 = std_of(sl_model_param(m, 0)), s2 = std_of(sl_model_param(m, 2));
    ck_assert_msg(fabs(s0 / (0.01 / sqrt(20.0)) - 1) < 0.1, "std %g", s0);
    ck_assert_msg(fabs(s2 / (0.01 / sqrt(30.0)) - 1) < 0.2, "std %g", s2);
    /* include only module 0: module 2 untouched, module 0's anchor the same
     * as above (streams keyed by name) */
    sl_model *m0 = anchor_run("0.*", NULL, 7);
    ck_assert(same_tensor(sl_model_param(m0, 2), sl_model_param(init, 2)));
    ck_assert(same_tensor(sl_model_param(m0, 0), sl_model_param(m, 0)));
    ck_assert(!same_tensor(sl_model_param(m0, 1), sl_model_param(init, 1)));
    /* determinism: same seed, same anchor; another seed, another anchor */
    sl_model *again = anchor_run("*", "*.bias", 7);
    sl_model *other = anchor_run("*", "*.bias", 8);
    ck_assert(same_tensor(sl_model_flat_params(again), sl_model_flat_params(m)));
    ck_assert(!same_tensor(sl_model_param(other, 0), sl_model_param(m, 0)));
    sl_model_free(init);
    sl_model_free(m);
    sl_model_free(m0);
    sl_model_free(again);
    sl_model_free(other);
}
END_TEST

START_TEST(syre_option_errors)
{
    sl_hook *h = NULL;
    sl_options *o = sl_options_new();
    sl_options_set_float(o, "gamma", -1);
    ck_assert_sl_fails(sl_hook_new("syre", o, &h), SL_EINVAL, "gamma");
    sl_options_set_float(o, "gamma", 0.1);
    sl_options_set_float(o, "diag_eps", 1.5);
    ck_assert_sl_fails(sl_hook_new("syre", o, &h), SL_EINVAL, "diag_eps");
    sl_options_set_float(o, "diag_eps", 0.01);
    sl_options_set_string(o, "exclude", "*.bias,,");
    ck_assert_sl_fails(sl_hook_new("syre", o, &h), SL_EINVAL, "exclude");
    sl_options_set_string(o, "exclude", "");
    sl_options_set_string(o, "include", "nothing.*");
    ck_assert_sl_ok(sl_hook_new("syre", o, &h));
    static const int64_t dims[] = {3, 2};
    expect_train_refused(h, dims, 2, NULL, 4, "select no parameter");
    sl_hook_free(h);
    sl_options_free(o);
}
END_TEST

/* ---- conserved ------------------------------------------------------------------- */

static double w(sl_model *m, int param, int64_t i, int64_t j, int64_t cols)
{
    return sl_tensor_flat_get(sl_model_param(m, param), i * cols + j);
}

static double gr(sl_model *m, int param, int64_t i, int64_t j, int64_t cols)
{
    return sl_tensor_flat_get(sl_model_grad(m, param), i * cols + j);
}

/* C = W1 W1ᵀ − W2ᵀ W2 by loops, for W1 (k x in), W2 (out x k). */
static void naive_C(sl_model *m, int64_t in, int64_t k, int64_t out, double *C)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t t = 0; t < in; t++)
                s += w(m, 0, i, t, in) * w(m, 0, j, t, in);
            for (int64_t o = 0; o < out; o++)
                s -= w(m, 1, o, i, k) * w(m, 1, o, j, k);
            C[i * k + j] = s;
        }
}

static double probe_value(sl_model *m, const char *reference, const char *name)
{
    sl_options *o = sl_options_new();
    sl_options_set_string(o, "reference", reference);
    sl_record *r = sl_record_new();
    ck_assert_sl_ok(sl_probe_run("conserved", o, m, NULL, r));
    double v = NAN;
    ck_assert_sl_ok(sl_record_get(r, name, &v));
    sl_record_free(r);
    sl_options_free(o);
    return v;
}

/* One GD step changes C by η²(∇W1 ∇W1ᵀ − ∇W2ᵀ ∇W2)
 * (docs/background/conserved-quantities.md). */
START_TEST(conserved_linear_one_step_drift)
{
    enum { IN = 3, K = 4, OUT = 2 };
    const double eta = 0.1;
    static const int64_t dims[] = {IN, K, OUT};
    sl_model *m = make_chain(SL_F64, dims, 3, NULL, false, 41);
    sl_dataset d = {0};
    make_data(&d, 10, IN, OUT, 42);
    const char *path = sl_test_tmp_path("chain.safetensors");
    ck_assert_sl_ok(sl_model_save(m, path));
    double C0[K * K], C1[K * K], expect[K * K], l, g;
    naive_C(m, IN, K, OUT, C0);
    loss_gradsq(m, &d, "mse", &l, &g);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double s = 0;
            for (int t = 0; t < IN; t++)
                s += gr(m, 0, i, t, IN) * gr(m, 0, j, t, IN);
            for (int o = 0; o < OUT; o++)
                s -= gr(m, 1, o, i, K) * gr(m, 1, o, j, K);
            expect[i * K + j] = eta * eta * s;
        }
    sl_optim *opt = make_sgd(m, eta, 0.0);
    ck_assert_sl_ok(sl_optim_step(opt));
    naive_C(m, IN, K, OUT, C1);
    double fro = 0;
    for (int i = 0; i < K * K; i++) {
        ck_assert_msg(fabs(C1[i] - C0[i] - expect[i]) < 1e-10, "entry %d: %.3e vs %.3e", i,
                      C1[i] - C0[i], expect[i]);
        fro += expect[i] * expect[i];
    }
    fro = sqrt(fro);
    ck_assert_msg(fro > 1e-6, "the drift is trivially small (%g)", fro);
    double drift = probe_value(m, path, "C0_drift");
    ck_assert_msg(fabs(drift - fro) < 1e-10, "probe drift %.17g, expected %.17g", drift, fro);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* ReLU with biases: Q_j moves by η²(‖a_j‖² − ‖c_j‖²) per step; the hook's
 * drift after one full-batch epoch equals the largest of them; the softmax
 * column sums do not move at all under cross-entropy. */
START_TEST(conserved_rescale_and_softmax)
{
    enum { IN = 3, K = 5, OUT = 4 };
    const double eta = 0.2;
    static const int64_t dims[] = {IN, K, OUT};
    sl_model *m = make_chain(SL_F64, dims, 3, "relu", true, 51);
    sl_dataset d = {0};
    make_data(&d, 12, IN, -OUT, 52);
    double l, g, expect = 0;
    loss_gradsq(m, &d, "cross_entropy", &l, &g);
    for (int j = 0; j < K; j++) {
        double a = gr(m, 1, 0, j, 1) * gr(m, 1, 0, j, 1), c = 0; /* bias j */
        for (int t = 0; t < IN; t++)
            a += gr(m, 0, j, t, IN) * gr(m, 0, j, t, IN);
        for (int o = 0; o < OUT; o++)
            c += gr(m, 2, o, j, K) * gr(m, 2, o, j, K);
        double dq = fabs(eta * eta * (a - c));
        expect = dq > expect ? dq : expect;
    }
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("conserved", NULL, &h));
    sl_optim *opt = make_sgd(m, eta, 0.0);
    double drift = train_with(m, opt, &d, h, 1, 12, "cross_entropy", "Q0_drift");
    ck_assert_msg(expect > 1e-8, "trivial expectation %g", expect);
    ck_assert_msg(fabs(drift - expect) < 1e-12, "Q drift %.17g, expected %.17g", drift, expect);
    double cs = train_with(m, opt, &d, h, 5, 4, "cross_entropy", "colsum_drift");
    ck_assert_msg(cs < 1e-12, "column sums drifted by %g", cs);
    sl_hook_free(h);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

static Suite *dynamics_suite(void)
{
    Suite *s = suite_create("dynamics");
    TCase *t = tcase_create("teleport");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, teleport_2023_keeps_loss_raises_gradient);
    tcase_add_test(t, teleport_2022_keeps_loss_raises_gradient);
    tcase_add_test(t, teleport_with_biases_keeps_loss);
    tcase_add_test(t, teleport_rejects_a_loss_increase);
    tcase_add_test(t, teleport_f32_model);
    tcase_add_test(t, teleport_option_and_model_errors);
    tcase_add_test(t, teleport_unguarded_runaway);
    tcase_add_test(t, teleport_max_growth_stops_runaway);
    tcase_add_test(t, teleport_max_t_norm_stops_runaway);
    tcase_add_test(t, teleport_sharpness_guard_stops_runaway);
    tcase_add_test(t, teleport_sharpness_is_top_hessian_eigenvalue);
    tcase_add_test(t, teleport_reference_2022_is_not_loss_preserving);
    suite_add_tcase(s, t);
    TCase *y = tcase_create("syre");
    tcase_add_checked_fixture(y, setup, NULL);
    tcase_add_test(y, syre_escapes_the_symmetric_point);
    tcase_add_test(y, syre_anchor_scale_and_patterns);
    tcase_add_test(y, syre_option_errors);
    suite_add_tcase(s, y);
    TCase *c = tcase_create("conserved");
    sl_test_add_tmpdir(c);
    tcase_add_checked_fixture(c, setup, NULL);
    tcase_add_test(c, conserved_linear_one_step_drift);
    tcase_add_test(c, conserved_rescale_and_softmax);
    suite_add_tcase(s, c);
    return s;
}

int main(void) { return sl_test_run(dynamics_suite()); }
