/* Learning-rate schedules: their values against naive formulas, the
 * hand-written decay they replace, resuming from (base, count), errors. */
#include "config.h"

#include <math.h>

#include "testutil.h"

static sl_schedule *make(const char *kind, const char *text, sl_schedule *after)
{
    sl_options *o = sl_test_options(text);
    sl_schedule *s;
    ck_assert_sl_ok(sl_schedule_new(kind, o, after, &s));
    sl_options_free(o);
    return s;
}

START_TEST(step_matches_a_hand_written_decay_bit_for_bit)
{
    /* What scripts wrote by hand: lr = lr * 0.8 after every epoch. */
    sl_schedule *s = make("step", "step_size=1,gamma=0.8", NULL);
    ck_assert(!sl_schedule_per_step(s));
    ck_assert(isnan(sl_schedule_base_lr(s)));
    double lr = 0.05;
    for (int e = 0; e < 40; e++) {
        ck_assert_msg(sl_schedule_lr(s, 0.05) == lr, "epoch %d: %.17g != %.17g", e,
                      sl_schedule_lr(s, 0.05), lr);
        sl_schedule_advance(s);
        lr = lr * 0.8;
    }
    ck_assert_double_eq(sl_schedule_base_lr(s), 0.05);
    sl_schedule_free(s);
    /* step_size 3: constant for three intervals, then times gamma. */
    s = make("step", "step_size=3,gamma=0.5,interval=step", NULL);
    ck_assert(sl_schedule_per_step(s));
    const double want[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.25};
    for (int t = 0; t < 7; t++, sl_schedule_advance(s))
        ck_assert_double_eq(sl_schedule_lr(s, 1.0), want[t]);
    sl_schedule_free(s);
}
END_TEST

START_TEST(warmup_then_cosine_follows_the_formulas)
{
    const int L = 4, T = 10;
    const double base = 0.3, eta = 0.01, start = 0.25;
    sl_schedule *cos_s = make("cosine", "t_max=10,eta_min=0.01,interval=step", NULL);
    sl_schedule *s = make("warmup", "length=4,start_factor=0.25,interval=step", cos_s);
    for (int t = 0; t < L + T + 3; t++, sl_schedule_advance(s)) {
        double want;
        if (t < L)
            want = base * (start + (1 - start) * t / L);
        else if (t - L < T)
            want = eta + (base - eta) * (1 + cos(M_PI * (t - L) / T)) / 2;
        else
            want = eta;
        ck_assert_double_eq_tol(sl_schedule_lr(s, base), want, 1e-15);
    }
    ck_assert_int_eq(sl_schedule_count(s), L + T + 3);
    ck_assert_int_eq(sl_schedule_count(cos_s), T + 3);
    /* Warmup alone ends at the base rate. */
    sl_schedule *w = make("warmup", "length=2", NULL);
    sl_schedule_advance(w);
    sl_schedule_advance(w);
    ck_assert_double_eq(sl_schedule_lr(w, 0.7), 0.7);
    sl_schedule_free(w);
    sl_schedule_free(s);
    sl_schedule_free(cos_s);
}
END_TEST

START_TEST(restore_replays_the_count_exactly)
{
    sl_schedule *a_cos = make("step", "step_size=2,gamma=0.9,interval=step", NULL);
    sl_schedule *a = make("warmup", "length=3,interval=step", a_cos);
    sl_schedule_lr(a, 0.123);
    for (int i = 0; i < 37; i++)
        sl_schedule_advance(a);
    double want = sl_schedule_lr(a, 0.123);
    sl_schedule *b_cos = make("step", "step_size=2,gamma=0.9,interval=step", NULL);
    sl_schedule *b = make("warmup", "length=3,interval=step", b_cos);
    ck_assert_sl_ok(sl_schedule_restore(b, sl_schedule_base_lr(a), sl_schedule_count(a)));
    ck_assert(sl_schedule_lr(b, 99.0) == want); /* the base is already fixed */
    ck_assert_int_eq(sl_schedule_count(b_cos), sl_schedule_count(a_cos));
    sl_schedule_advance(a);
    sl_schedule_advance(b);
    ck_assert(sl_schedule_lr(a, 0) == sl_schedule_lr(b, 0));
    ck_assert_sl_fails(sl_schedule_restore(b, 0.1, -1), SL_EINVAL, "cannot restore count -1");
    ck_assert_sl_fails(sl_schedule_restore(b, NAN, 1), SL_EINVAL, "cannot restore");
    sl_schedule_free(a);
    sl_schedule_free(a_cos);
    sl_schedule_free(b);
    sl_schedule_free(b_cos);
}
END_TEST

START_TEST(bad_schedules_are_refused_with_their_option)
{
    sl_schedule *s = NULL, *per_epoch = make("cosine", "t_max=3", NULL);
    sl_options *o = sl_test_options("step_size=0");
    ck_assert_sl_fails(sl_schedule_new("step", o, NULL, &s), SL_EINVAL,
                       "schedule step: step_size must be >= 1, got 0");
    sl_options_free(o);
    ck_assert_sl_fails(sl_schedule_new("step", NULL, NULL, &s), SL_EINVAL, "step_size");
    o = sl_test_options("t_max=3,eta_min=-1");
    ck_assert_sl_fails(sl_schedule_new("cosine", o, NULL, &s), SL_EINVAL, "eta_min");
    sl_options_free(o);
    o = sl_test_options("length=2,start_factor=1.5");
    ck_assert_sl_fails(sl_schedule_new("warmup", o, NULL, &s), SL_EINVAL, "in [0, 1]");
    sl_options_free(o);
    o = sl_test_options("length=2,interval=step");
    ck_assert_sl_fails(sl_schedule_new("warmup", o, per_epoch, &s), SL_EINVAL,
                       "counts steps but its 'after' schedule counts epochs");
    sl_options_free(o);
    o = sl_test_options("step_size=2");
    ck_assert_sl_fails(sl_schedule_new("step", o, per_epoch, &s), SL_EINVAL,
                       "only a warmup takes an 'after'");
    sl_options_free(o);
    o = sl_test_options("t_max=3,interval=hour");
    ck_assert_sl_fails(sl_schedule_new("cosine", o, NULL, &s), SL_EINVAL, "interval");
    sl_options_free(o);
    ck_assert_sl_fails(sl_schedule_new("linear", NULL, NULL, &s), SL_ENOTFOUND,
                       "no schedule 'linear'");
    ck_assert_ptr_null(sl_schedule_options("linear"));
    ck_assert_ptr_nonnull(sl_schedule_options("cosine"));
    ck_assert_ptr_null(s);
    sl_schedule_free(per_epoch);
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, step_matches_a_hand_written_decay_bit_for_bit);
    tcase_add_test(tc, warmup_then_cosine_follows_the_formulas);
    tcase_add_test(tc, restore_replays_the_count_exactly);
    tcase_add_test(tc, bad_schedules_are_refused_with_their_option);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(schedule_suite()); }
