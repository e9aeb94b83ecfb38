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

START_TEST(refused_plugin_is_named_when_its_type_is_missing)
{
    setenv("SYMLAB_PLUGIN_PATH", SL_TEST_PLUGINDIR, 1);
    ck_assert_sl_ok(sl_registry_init());
    /* The descriptor was read, then init failed: its probe is known. */
    ck_assert_ptr_null(sl_registry_find(SL_KIND_PROBE, "never_started"));
    ck_assert_msg(strstr(sl_last_error(), "no probe type 'never_started' (its plugin was "
                                          "refused: plugin '") &&
                      strstr(sl_last_error(), "fail_init.so': error during initialization"),
                  "%s", sl_last_error());
    /* Refused for its ABI, nothing read but the file name. */
    ck_assert_ptr_null(sl_registry_find(SL_KIND_MODULE, "bad_abi"));
    ck_assert_msg(strstr(sl_last_error(), "no module type 'bad_abi' (its plugin was refused: ") &&
                      strstr(sl_last_error(), "incompatible ABI version"),
                  "%s", sl_last_error());
    ck_assert_ptr_null(strchr(sl_last_error(), '\n'));
    /* Unrelated names keep the plain message. */
    ck_assert_ptr_null(sl_registry_find(SL_KIND_MODULE, "scale2"));
    ck_assert_str_eq(sl_last_error(),
                     "no module type 'scale2'; `symlab plugins` lists what is available");
}
END_TEST

/* ---- descriptors refused as a whole ------------------------------------------ */

static int ok_create(sl_module *m, const sl_options *o) { return SL_OK; }
static int ok_shape(sl_module *m, int n, const int64_t *in, int *on, int64_t *out) { return 0; }
static int ok_forward(sl_module *m, const sl_tensor *in, sl_tensor *out) { return SL_OK; }
static int ok_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *go, sl_tensor *gi) { return SL_OK; }
static int ok_hook(sl_hook *h, const sl_options *o) { return SL_OK; }
static int ok_measure(const sl_options *o, sl_model *m, const sl_dataset *d, sl_record *r)
{
    return SL_OK;
}
static int ok_optim(sl_optim *o, const sl_options *opt) { return SL_OK; }

static const sl_option_spec lr_spec[] = {{"lr", SL_OPT_FLOAT, "0.1", "step", NULL},
                                         {NULL, 0, NULL, NULL, NULL}};
static const sl_module_type no_forward = {.name = "t_nofwd", .summary = "s", .create = ok_create,
                                          .output_shape = ok_shape, .backward = ok_backward};
static const sl_module_type no_create = {.name = "t_nocreate", .summary = "s",
                                         .output_shape = ok_shape, .forward = ok_forward,
                                         .backward = ok_backward};
static const sl_hook_type no_event = {.name = "t_noevent", .summary = "s", .create = ok_hook};
static const sl_probe_type no_measure = {.name = "t_nomeasure", .summary = "s"};
static const sl_loss_type no_loss = {.name = "t_noloss", .summary = "s"};
static const sl_optim_type no_step = {.name = "t_nostep", .summary = "s", .options = lr_spec,
                                      .create = ok_optim};
static const sl_module_type *const m_nofwd[] = {&no_forward, NULL};
static const sl_module_type *const m_nocreate[] = {&no_create, NULL};
static const sl_hook_type *const h_noevent[] = {&no_event, NULL};
static const sl_probe_type *const p_nomeasure[] = {&no_measure, NULL};
static const sl_loss_type *const l_noloss[] = {&no_loss, NULL};
static const sl_optim_type *const o_nostep[] = {&no_step, NULL};

#define TEST_DESC(...) \
    {SL_PLUGIN_HEADER, .name = "t", .version = "0", .summary = "test", __VA_ARGS__}

START_TEST(null_must_callbacks_are_refused_at_load)
{
    static const struct {
        sl_plugin desc;
        const char *want;
    } cases[] = {
        {TEST_DESC(.modules = m_nofwd), "module type 't_nofwd' has no forward callback"},
        {TEST_DESC(.modules = m_nocreate), "module type 't_nocreate' has no create callback"},
        {TEST_DESC(.hooks = h_noevent), "hook type 't_noevent' has no on_event callback"},
        {TEST_DESC(.probes = p_nomeasure), "probe type 't_nomeasure' has no measure callback"},
        {TEST_DESC(.losses = l_noloss), "loss type 't_noloss' has no forward callback"},
        {TEST_DESC(.optims = o_nostep), "optim type 't_nostep' has no step callback"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_sl_fails(sl_plugin_register(&cases[i].desc, "/plugins/t.so"), SL_EPLUGIN,
                           cases[i].want);
        ck_assert_ptr_nonnull(strstr(sl_last_error(), "plugin '/plugins/t.so': "));
    }
    ck_assert_ptr_null(sl_registry_find(SL_KIND_MODULE, "t_nofwd"));
    ck_assert_ptr_null(sl_registry_find(SL_KIND_OPTIM, "t_nostep"));
}
END_TEST

static const sl_probe_type twin_a = {.name = "t_twin", .summary = "a", .measure = ok_measure};
static const sl_probe_type twin_b = {.name = "t_twin", .summary = "b", .measure = ok_measure};
static const sl_probe_type single = {.name = "t_single", .summary = "c", .measure = ok_measure};
static const sl_probe_type *const twins[] = {&single, &twin_a, &twin_b, NULL};

START_TEST(two_types_of_one_name_in_one_plugin_are_refused)
{
    const sl_plugin desc = TEST_DESC(.probes = twins);
    ck_assert_sl_fails(sl_plugin_register(&desc, "twins.so"), SL_EPLUGIN,
                       "plugin 'twins.so': lists two probe types named 't_twin'");
    /* Refused as a whole: not even the other probe, and nothing listed twice. */
    ck_assert_ptr_null(sl_registry_find(SL_KIND_PROBE, "t_single"));
    int seen = 0;
    for (int i = 0; i < sl_registry_count(); i++) {
        sl_registry_entry e;
        ck_assert_sl_ok(sl_registry_get(i, &e));
        seen += strcmp(e.name, "t_twin") == 0;
    }
    ck_assert_int_eq(seen, 0);
}
END_TEST

static const sl_option_spec broken_spec[] = {{"n", SL_OPT_INT, "ten", "a count", NULL},
                                             {NULL, 0, NULL, NULL, NULL}};
static const sl_option_spec broken_choice[] = {{"mode", SL_OPT_STRING, "c", "mode", "a|b"},
                                               {NULL, 0, NULL, NULL, NULL}};
static const sl_probe_type broken = {.name = "t_broken", .summary = "s", .options = broken_spec,
                                     .measure = ok_measure};
static const sl_probe_type *const brokens[] = {&broken, NULL};

START_TEST(broken_option_default_is_the_plugins_fault)
{
    const sl_plugin desc = TEST_DESC(.probes = brokens);
    ck_assert_sl_fails(sl_plugin_register(&desc, "broken.so"), SL_EPLUGIN,
                       "plugin 'broken.so': probe type 't_broken': t_broken: its own default "
                       "'ten' of option 'n' is not an integer (a bug in t_broken, not in the "
                       "options given)");
    /* Validating against such a spec directly says the same, with or
     * without a user value for the option. */
    sl_options *o = sl_test_options("n=3");
    ck_assert_sl_fails(sl_options_validate(o, broken_spec, "tech"), SL_EINVAL,
                       "tech: its own default 'ten' of option 'n' is not an integer (a bug in "
                       "tech");
    sl_options_free(o);
    o = sl_test_options(NULL);
    ck_assert_sl_fails(sl_options_validate(o, broken_choice, "tech"), SL_EINVAL,
                       "its own default 'c' of option 'mode' is not among a|b (a bug in tech");
    sl_options_free(o);
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
    tcase_add_test(tc, refused_plugin_is_named_when_its_type_is_missing);
    tcase_add_test(tc, null_must_callbacks_are_refused_at_load);
    tcase_add_test(tc, two_types_of_one_name_in_one_plugin_are_refused);
    tcase_add_test(tc, broken_option_default_is_the_plugins_fault);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(loader_suite()); }
