/* Fuzz harness: the key=value options parser, validation against a spec
 * of every type, and the getters of what validated. */
#include "config.h"

#include <math.h>

#include "fuzz.h"

static const sl_option_spec spec[] = {
    {"n", SL_OPT_INT, "3", "an integer", NULL},
    {"rate", SL_OPT_FLOAT, "0.5", "a number", NULL},
    {"on", SL_OPT_BOOL, "false", "a switch", NULL},
    {"name", SL_OPT_STRING, "", "any text", NULL},
    {"mode", SL_OPT_STRING, "a", "a choice", "a|bb|ccc"},
    {"need", SL_OPT_INT, NULL, "required", NULL},
    {NULL, 0, NULL, NULL, NULL}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    sl_options *o = sl_options_new();
    int rc = sl_options_parse(o, text);
    fuzz_check_message(rc);
    if (rc == SL_OK) {
        sl_options *copy = sl_options_copy(o);
        rc = sl_options_validate(copy, spec, "fuzz");
        fuzz_check_message(rc);
        if (rc == SL_OK) {
            (void)sl_options_int(copy, "n");
            (void)sl_options_bool(copy, "on");
            (void)sl_options_int(copy, "need");
            if (!isfinite(sl_options_float(copy, "rate")))
                abort(); /* validation promises finite numbers */
            const char *mode = sl_options_string(copy, "mode");
            if (strcmp(mode, "a") && strcmp(mode, "bb") && strcmp(mode, "ccc"))
                abort();
            (void)strlen(sl_options_string(copy, "name"));
        }
        sl_options_free(copy);
    }
    sl_options_free(o);
    free(text);
    return 0;
}
