/* tests/check_losses.c — cross_entropy and mse against naive references,
 * their gradients against finite differences, and bad inputs. */
#include "config.h"

#include <math.h>

#include "gradcheck.h"
#include "testutil.h"

static const sl_loss_type *find_loss(const char *name)
{
    ck_assert_sl_ok(sl_registry_init());
    const sl_loss_type *loss = sl_registry_find(SL_KIND_LOSS, name);
    ck_assert_msg(loss != NULL, "no loss %s: %s", name, sl_last_error());
    return loss;
}

static sl_tensor random_tensor(sl_dtype dtype, int64_t rows, int64_t cols, double scale,
                               uint64_t seed)
{
    sl_tensor t = {0};
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&t, dtype, 2, (const int64_t[]){rows, cols}));
    ck_assert_sl_ok(sl_tensor_uniform(&t, &rng, -scale, scale));
    return t;
}

static sl_tensor labels(int64_t n, const int64_t *values)
{
    sl_tensor t = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&t, SL_I64, 1, &n));
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)t.data)[i] = values[i];
    return t;
}

static void expect_values(const sl_tensor *t, const double *ref, double tol, const char *what)
{
    for (int64_t i = 0; i < sl_tensor_numel(t); i++)
        ck_assert_msg(fabs(sl_tensor_flat_get(t, i) - ref[i]) <= tol * fmax(1.0, fabs(ref[i])),
                      "%s[%lld]: %.17g, reference %.17g", what, (long long)i,
                      sl_tensor_flat_get(t, i), ref[i]);
}

static void expect_loss_gradcheck(const char *loss, const sl_tensor *pred,
                                  const sl_tensor *target)
{
    gradcheck_report r;
    ck_assert_sl_ok(gradcheck_loss(loss, pred, target, NULL, &r));
    ck_assert_int_eq(r.ninputs, sl_tensor_numel(pred));
    ck_assert_msg(r.max_rel_err <= GRADCHECK_TOL, "gradcheck %s: max rel err %g", loss,
                  r.max_rel_err);
}

/* ---------------------------------------------------------------- cross_entropy */

/* Straight from the definition, without the max shift: the logits here are
 * small enough for exp. */
static double cross_entropy_reference(const sl_tensor *pred, const int64_t *label, double *grad)
{
    int64_t B = pred->shape[0], C = pred->shape[1];
    double total = 0;
    for (int64_t b = 0; b < B; b++) {
        double z = 0;
        for (int64_t c = 0; c < C; c++)
            z += exp(sl_tensor_flat_get(pred, b * C + c));
        total += -log(exp(sl_tensor_flat_get(pred, b * C + label[b])) / z);
        for (int64_t c = 0; c < C; c++)
            grad[b * C + c] =
                (exp(sl_tensor_flat_get(pred, b * C + c)) / z - (c == label[b] ? 1 : 0)) /
                (double)B;
    }
    return total / (double)B;
}

START_TEST(test_cross_entropy_reference)
{
    const sl_loss_type *ce = find_loss("cross_entropy");
    static const sl_dtype dtypes[] = {SL_F64, SL_F32};
    static const double tol[] = {1e-13, 1e-6};
    const int64_t y[] = {0, 4, 2, 4, 1, 3};
    for (int d = 0; d < 2; d++) {
        sl_tensor pred = random_tensor(dtypes[d], 6, 5, 3.0, 1), target = labels(6, y);
        sl_tensor grad = {0};
        ck_assert_sl_ok(sl_tensor_alloc(&grad, dtypes[d], 2, pred.shape));
        ck_assert_sl_ok(sl_tensor_fill(&grad, NAN));
        double ref_grad[30], value, value_only;
        double ref = cross_entropy_reference(&pred, y, ref_grad);
        ck_assert_sl_ok(ce->forward(&pred, &target, &value, &grad));
        ck_assert_double_eq_tol(value, ref, tol[d] * ref);
        expect_values(&grad, ref_grad, tol[d], "cross_entropy grad");
        ck_assert_sl_ok(ce->forward(&pred, &target, &value_only, NULL));
        ck_assert_double_eq(value_only, value);
        sl_tensor_release(&pred);
        sl_tensor_release(&target);
        sl_tensor_release(&grad);
    }
}
END_TEST

/* Logits far beyond exp's range give the exact answers. */
START_TEST(test_cross_entropy_stable)
{
    const sl_loss_type *ce = find_loss("cross_entropy");
    sl_tensor pred = {0}, grad = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&pred, SL_F64, 2, (const int64_t[]){2, 3}));
    ck_assert_sl_ok(sl_tensor_alloc(&grad, SL_F64, 2, pred.shape));
    double *p = pred.data;
    p[0] = 1000, p[1] = 0, p[2] = -1000; /* label 1: loss 1000 */
    p[3] = 1000, p[4] = 999, p[5] = -5000; /* label 0: log(1 + e^-1) */
    sl_tensor target = labels(2, (const int64_t[]){1, 0});
    double value;
    ck_assert_sl_ok(ce->forward(&pred, &target, &value, &grad));
    ck_assert_double_eq_tol(value, (1000 + log1p(exp(-1.0))) / 2, 1e-12);
    const double *g = grad.data;
    ck_assert_double_eq_tol(g[0], 0.5, 1e-15);
    ck_assert_double_eq_tol(g[1], -0.5, 1e-15);
    ck_assert_double_eq_tol(g[3], (1 / (1 + exp(-1.0)) - 1) / 2, 1e-15);
    ck_assert_double_eq_tol(g[4], exp(-1.0) / (1 + exp(-1.0)) / 2, 1e-15);
    ck_assert_double_eq(g[5], 0.0);
    sl_tensor_release(&pred);
    sl_tensor_release(&grad);
    sl_tensor_release(&target);
}
END_TEST

START_TEST(test_cross_entropy_gradcheck)
{
    sl_tensor pred = random_tensor(SL_F64, 4, 7, 2.0, 3);
    sl_tensor target = labels(4, (const int64_t[]){6, 0, 3, 3});
    expect_loss_gradcheck("cross_entropy", &pred, &target);
    sl_tensor_release(&pred);
    sl_tensor_release(&target);
}
END_TEST

START_TEST(test_cross_entropy_bad_input)
{
    const sl_loss_type *ce = find_loss("cross_entropy");
    sl_tensor pred = random_tensor(SL_F64, 3, 5, 1.0, 4);
    double value;
    sl_tensor bad = labels(3, (const int64_t[]){0, 1, 5});
    ck_assert_sl_fails(ce->forward(&pred, &bad, &value, NULL), SL_EINVAL, "target[2] = 5");
    sl_tensor_release(&bad);
    bad = labels(3, (const int64_t[]){-1, 1, 2});
    ck_assert_sl_fails(ce->forward(&pred, &bad, &value, NULL), SL_EINVAL, "target[0] = -1");
    sl_tensor_release(&bad);
    bad = labels(2, (const int64_t[]){0, 1});
    ck_assert_sl_fails(ce->forward(&pred, &bad, &value, NULL), SL_ESHAPE, "cross_entropy");
    sl_tensor_release(&bad);
    bad = random_tensor(SL_F64, 3, 1, 1.0, 5);
    ck_assert_sl_fails(ce->forward(&pred, &bad, &value, NULL), SL_EDTYPE, "i64");
    sl_tensor_release(&bad);
    sl_tensor_release(&pred);
}
END_TEST

/* ---------------------------------------------------------------- mse */

START_TEST(test_mse_reference)
{
    const sl_loss_type *mse = find_loss("mse");
    static const struct {
        sl_dtype pred, target;
        double tol;
    } cases[] = {{SL_F64, SL_F64, 1e-14}, {SL_F32, SL_F32, 1e-6},
                 {SL_F32, SL_F64, 1e-6},  {SL_F64, SL_F32, 1e-14}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sl_tensor pred = random_tensor(cases[k].pred, 5, 3, 2.0, 6);
        sl_tensor target = random_tensor(cases[k].target, 5, 3, 2.0, 7);
        sl_tensor grad = {0};
        ck_assert_sl_ok(sl_tensor_alloc(&grad, cases[k].pred, 2, pred.shape));
        double ref = 0, ref_grad[15], value;
        for (int64_t i = 0; i < 15; i++) {
            double d = sl_tensor_flat_get(&pred, i) - sl_tensor_flat_get(&target, i);
            ref += d * d / 15;
            ref_grad[i] = 2 * d / 15;
        }
        ck_assert_sl_ok(mse->forward(&pred, &target, &value, &grad));
        ck_assert_double_eq_tol(value, ref, cases[k].tol * ref);
        expect_values(&grad, ref_grad, cases[k].tol, "mse grad");
        sl_tensor_release(&pred);
        sl_tensor_release(&target);
        sl_tensor_release(&grad);
    }
}
END_TEST

START_TEST(test_mse_gradcheck)
{
    sl_tensor pred = random_tensor(SL_F64, 3, 4, 1.0, 8);
    sl_tensor target = random_tensor(SL_F32, 3, 4, 1.0, 9);
    expect_loss_gradcheck("mse", &pred, &target);
    sl_tensor_release(&pred);
    sl_tensor_release(&target);
}
END_TEST

START_TEST(test_mse_bad_input)
{
    const sl_loss_type *mse = find_loss("mse");
    sl_tensor pred = random_tensor(SL_F64, 3, 4, 1.0, 10);
    sl_tensor other = random_tensor(SL_F64, 4, 3, 1.0, 11);
    double value;
    ck_assert_sl_fails(mse->forward(&pred, &other, &value, NULL), SL_ESHAPE, "[4, 3]");
    sl_tensor_release(&other);
    sl_tensor target = labels(3, (const int64_t[]){0, 1, 2});
    ck_assert_sl_fails(mse->forward(&pred, &target, &value, NULL), SL_EDTYPE, "mse");
    sl_tensor_release(&target);
    sl_tensor_release(&pred);
}
END_TEST

static Suite *losses_suite(void)
{
    Suite *s = suite_create("losses");
    TCase *ce = tcase_create("cross_entropy");
    tcase_add_test(ce, test_cross_entropy_reference);
    tcase_add_test(ce, test_cross_entropy_stable);
    tcase_add_test(ce, test_cross_entropy_gradcheck);
    tcase_add_test(ce, test_cross_entropy_bad_input);
    suite_add_tcase(s, ce);
    TCase *mse = tcase_create("mse");
    tcase_add_test(mse, test_mse_reference);
    tcase_add_test(mse, test_mse_gradcheck);
    tcase_add_test(mse, test_mse_bad_input);
    suite_add_tcase(s, mse);
    return s;
}

int main(void) { return sl_test_run(losses_suite()); }
