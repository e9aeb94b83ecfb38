/* Plugin loader: broken plugins are refused with one-line errors naming the
 * file and the cause, and the host keeps working. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define PLUGIN(name) SL_TEST_PLUGINDIR "/" name ".so"

START_TEST(wrong_abi_major_is_refused)
{
    ck_assert_sl_fails(sl_plugin_load(PLUGIN("bad_abi")), SL_EABI, "bad_abi.so");
    char want[128];
    snprintf(want, sizeof want, "incompatible ABI version %d.0 (host %d.%d)", SL_ABI_MAJOR + 1,
             SL_ABI_MAJOR, SL_ABI_MINOR);
    ck_assert_msg(strstr(sl_last_error(), want), "'%s' lacks '%s'", sl_last_error(), want);
    ck_assert_ptr_null(strchr(sl_last_error(), '\n'));
}
END_TEST

START_TEST(missing_entry_point_is_refused)
{
    ck_assert_sl_fails(sl_plugin_load(PLUGIN("no_entry")), SL_EPLUGIN,
                       "no entry point sl_plugin_entry");
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "no_entry.so"));
}
END_TEST

START_TEST(failing_init_is_reported_and_unloaded)
{
    ck_assert_sl_fails(sl_plugin_load(PLUGIN("fail_init")), SL_EPLUGIN,
                       "error during initialization: the test plugin refuses to start");
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "fail_init.so"));
    ck_assert_ptr_null(sl_registry_find(SL_KIND_PROBE, "fail_init"));
}
END_TEST

START_TEST(missing_file_reports_dlerror)
{
    ck_assert_sl_fails(sl_plugin_load("/nonexistent/plugin.so"), SL_EPLUGIN,
                       "cannot load plugin '/nonexistent/plugin.so'");
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "No such file"));
}
END_TEST

START_TEST(host_keeps_working_after_failures)
{
    ck_assert_int_lt(sl_plugin_load(PLUGIN("bad_abi")), 0);
    ck_assert_int_lt(sl_plugin_load(PLUGIN("no_entry")), 0);
    ck_assert_int_lt(sl_plugin_load(PLUGIN("fail_init")), 0);
    ck_assert_ptr_nonnull(sl_registry_find(SL_KIND_MODULE, "linear"));
    ck_assert_sl_ok(sl_plugin_load(PLUGIN("good")));
    ck_assert_ptr_nonnull(sl_registry_find(SL_KIND_PROBE, "test_count"));
}
END_TEST

START_TEST(good_plugin_probe_runs_with_validated_options)
{
    ck_assert_sl_ok(sl_plugin_load(PLUGIN("good")));
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "in_features", 3);
    sl_options_set_int(o, "out_features", 2);
    ck_assert_sl_ok(sl_model_add(m, "linear", o));
    ck_assert_sl_ok(sl_model_build(m, 1));
    sl_options_free(o);

    sl_record *r = sl_record_new();
    o = sl_options_new();
    sl_options_set_float(o, "scale", 2.0);
    ck_assert_sl_ok(sl_probe_run("test_count", o, m, NULL, r));
    double v;
    ck_assert_sl_ok(sl_record_get(r, "count", &v));
    ck_assert_double_eq(v, 16.0); /* (3*2 + 2) * 2 */

    sl_options_set_int(o, "bogus", 1);
    ck_assert_sl_fails(sl_probe_run("test_count", o, m, NULL, r), SL_EINVAL,
                       "test_count: unknown option 'bogus'");
    sl_options_free(o);
    sl_record_free(r);
    sl_model_free(m);
}
END_TEST

START_TEST(name_clash_is_refused)
{
    ck_assert_sl_ok(sl_plugin_load(PLUGIN("good")));
    ck_assert_sl_fails(sl_plugin_load(PLUGIN("good")), SL_EPLUGIN,
                       "probe type 'test_count' is already provided by good");
    ck_assert_ptr_nonnull(sl_registry_find(SL_KIND_PROBE, "test_count"));
}
END_TEST

START_TEST(unknown_type_names_the_kind_and_name)
{
    ck_assert_ptr_null(sl_registry_find(SL_KIND_HOOK, "no_such_hook"));
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "no hook type 'no_such_hook'"));
}
END_TEST

START_TEST(search_path_loads_good_and_records_failures)
{
    setenv("SYMLAB_PLUGIN_PATH", "/nonexistent-dir:" SL_TEST_PLUGINDIR, 1);
    ck_assert_sl_ok(sl_registry_init());
    ck_assert_ptr_nonnull(sl_registry_find(SL_KIND_PROBE, "test_count"));
    int n = sl_registry_failure_count();
    ck_assert_int_eq(n, 3);
    const char *want[] = {"bad_abi.so", "fail_init.so", "no_entry.so"}; /* sorted scan */
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(sl_registry_failure(i), want[i]), "failure %d: %s", i,
                      sl_registry_failure(i));
    /* The registry lists built-ins with their origin. */
    bool saw_linear = false;
    for (int i = 0; i < sl_registry_count(); i++) {
        sl_registry_entry e;
        ck_assert_sl_ok(sl_registry_get(i, &e));
        if (e.kind == SL_KIND_MODULE && strcmp(e.name, "linear") == 0)
            saw_linear = strcmp(e.origin, "built-in") == 0;
    }
    ck_assert(saw_linear);
}
END_TEST

static Suite *loader_suite(void)
{
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, wrong_abi_major_is_refused);
    tcase_add_test(tc, missing_entry_point_is_refused);
    tcase_add_test(tc, failing_init_is_reported_and_unloaded);
    tcase_add_test(tc, missing_file_reports_dlerror);
    tcase_add_test(tc, host_keeps_working_after_failures);
    tcase_add_test(tc, good_plugin_probe_runs_with_validated_options);
    tcase_add_test(tc, name_clash_is_refused);
    tcase_add_test(tc, unknown_type_names_the_kind_and_name);
    tcase_add_test(tc, search_path_loads_good_and_records_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(loader_suite()); }
