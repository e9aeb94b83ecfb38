/* Options: validation against a spec, defaults, coercions, messages. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static const sl_option_spec spec[] = {
    {"size", SL_OPT_INT, NULL, "required size", NULL},
    {"rate", SL_OPT_FLOAT, "0.5", "a rate", NULL},
    {"on", SL_OPT_BOOL, "true", "a switch", NULL},
    {"where", SL_OPT_STRING, "after", "placement", "before|after|interleave"},
    {NULL, 0, NULL, NULL, NULL}};

START_TEST(defaults_and_values)
{
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "size", 3);
    ck_assert_sl_ok(sl_options_validate(o, spec, "demo"));
    ck_assert_int_eq(sl_options_int(o, "size"), 3);
    ck_assert_double_eq(sl_options_float(o, "rate"), 0.5);
    ck_assert(sl_options_bool(o, "on"));
    ck_assert_str_eq(sl_options_string(o, "where"), "after");
    ck_assert(sl_options_has(o, "size"));
    ck_assert(!sl_options_has(o, "rate"));
    sl_options_free(o);
}
END_TEST

START_TEST(integers_and_integral_floats_coerce)
{
    sl_options *o = sl_options_new();
    sl_options_set_float(o, "size", 4.0); /* Lua's 4.0 */
    sl_options_set_int(o, "rate", 2);     /* Lua's 2 for a float option */
    ck_assert_sl_ok(sl_options_validate(o, spec, "demo"));
    ck_assert_int_eq(sl_options_int(o, "size"), 4);
    ck_assert_double_eq(sl_options_float(o, "rate"), 2.0);
    sl_options_set_float(o, "size", 4.5);
    ck_assert_sl_fails(sl_options_validate(o, spec, "demo"), SL_EINVAL,
                       "demo: option 'size' expects an integer, got a number");
    sl_options_free(o);
}
END_TEST

START_TEST(errors_name_owner_and_key)
{
    sl_options *o = sl_options_new();
    ck_assert_sl_fails(sl_options_validate(o, spec, "demo"), SL_EINVAL,
                       "demo: missing required option 'size'");
    sl_options_set_int(o, "size", 1);
    sl_options_set_int(o, "colour", 1);
    ck_assert_sl_fails(sl_options_validate(o, spec, "demo"), SL_EINVAL,
                       "demo: unknown option 'colour'");
    sl_options_free(o);
    o = sl_options_new();
    sl_options_set_int(o, "size", 1);
    sl_options_set_string(o, "where", "inside");
    ck_assert_sl_fails(sl_options_validate(o, spec, "demo"), SL_EINVAL,
                       "option 'where' must be one of before|after|interleave, got 'inside'");
    sl_options_set_string(o, "where", "before");
    sl_options_set_string(o, "on", "yes");
    ck_assert_sl_fails(sl_options_validate(o, spec, "demo"), SL_EINVAL,
                       "option 'on' expects a boolean, got a string");
    sl_options_free(o);
}
END_TEST

START_TEST(text_values_are_typed_by_the_spec)
{
    sl_options *o = sl_options_new();
    ck_assert_sl_ok(sl_options_parse(o, "size=12,rate=1e-3,on=false,where=before"));
    ck_assert_sl_ok(sl_options_validate(o, spec, "demo"));
    ck_assert_int_eq(sl_options_int(o, "size"), 12);
    ck_assert_double_eq(sl_options_float(o, "rate"), 1e-3);
    ck_assert(!sl_options_bool(o, "on"));
    ck_assert_str_eq(sl_options_string(o, "where"), "before");
    sl_options_free(o);
    o = sl_options_new();
    ck_assert_sl_ok(sl_options_parse(o, "size=twelve"));
    ck_assert_sl_fails(sl_options_validate(o, spec, "demo"), SL_EINVAL,
                       "option 'size' expects an integer, got 'twelve'");
    ck_assert_sl_fails(sl_options_parse(o, "novalue"), SL_EINVAL, "expected key=value");
    sl_options_free(o);
}
END_TEST

START_TEST(copy_is_deep_and_unbound)
{
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "size", 5);
    sl_options_set_string(o, "where", "interleave");
    sl_options *c = sl_options_copy(o);
    sl_options_free(o);
    ck_assert_int_eq(sl_options_count(c), 2);
    ck_assert_str_eq(sl_options_key(c, 1), "where");
    ck_assert_sl_ok(sl_options_validate(c, spec, "demo"));
    ck_assert_str_eq(sl_options_string(c, "where"), "interleave");
    sl_options_free(c);
}
END_TEST

START_TEST(broken_default_in_spec_is_reported)
{
    static const sl_option_spec bad[] = {{"k", SL_OPT_INT, "ten", "", NULL},
                                         {NULL, 0, NULL, NULL, NULL}};
    sl_options *o = sl_options_new();
    /* The technique's fault, not the user's: no "expects ..., got" wording. */
    ck_assert_sl_fails(sl_options_validate(o, bad, "broken"), SL_EINVAL,
                       "broken: its own default 'ten' of option 'k' is not an integer (a bug "
                       "in broken, not in the options given)");
    sl_options_free(o);
}
END_TEST

/* Runs one misuse of a getter in a child: in the sanitizer build
 * (SL_ABORT_ON_MISUSE) it must abort; otherwise it must return the zero
 * value and leave an error naming the owner and the key. */
typedef enum { GET_INT, GET_FLOAT, GET_BOOL, GET_STRING } getter;

static void expect_misuse(const sl_options *o, getter g, const char *key, const char *needle)
{
    fflush(NULL);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        sl_error(SL_OK, "(none)");
        bool zero = g == GET_INT      ? sl_options_int(o, key) == 0
                    : g == GET_FLOAT  ? sl_options_float(o, key) == 0.0
                    : g == GET_BOOL   ? !sl_options_bool(o, key)
                                      : strcmp(sl_options_string(o, key), "") == 0;
        _exit(zero && strstr(sl_last_error(), needle) ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
#ifdef SL_ABORT_ON_MISUSE
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "'%s' did not abort", key);
#else
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "'%s': no zero value or no error mentioning '%s'", key, needle);
#endif
}

START_TEST(getter_misuse_is_an_error)
{
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "size", 3);
    /* Before validation: only what the user set can be read. */
    ck_assert_int_eq(sl_options_int(o, "size"), 3);
    expect_misuse(o, GET_FLOAT, "rate", "options: getter for option 'rate', which was never "
                                        "validated against a spec");
    ck_assert_sl_ok(sl_options_validate(o, spec, "demo"));
    expect_misuse(o, GET_INT, "sizes", "demo: getter for option 'sizes', which is not declared");
    expect_misuse(o, GET_BOOL, "size", "demo: option 'size' is an integer, read as a boolean");
    expect_misuse(o, GET_STRING, "rate", "demo: option 'rate' is a number, read as a string");
    expect_misuse(o, GET_FLOAT, "where", "demo: option 'where' is a string, read as a number");
    expect_misuse(NULL, GET_INT, "size", "getter for option 'size'");
    /* Declared keys still read without an error. */
    sl_error(SL_OK, "(none)");
    ck_assert_double_eq(sl_options_float(o, "rate"), 0.5);
    ck_assert_str_eq(sl_last_error(), "(none)");
    sl_options_free(o);
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, defaults_and_values);
    tcase_add_test(tc, integers_and_integral_floats_coerce);
    tcase_add_test(tc, errors_name_owner_and_key);
    tcase_add_test(tc, text_values_are_typed_by_the_spec);
    tcase_add_test(tc, copy_is_deep_and_unbound);
    tcase_add_test(tc, broken_default_in_spec_is_reported);
    tcase_add_test(tc, getter_misuse_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(options_suite()); }
