/* core/probe.c — running a registered probe by name. */
#include "config.h"

#include "internal.h"

int sl_probe_run(const char *name, const sl_options *opt, sl_model *model,
                 const sl_dataset *data, sl_record *out)
{
    const sl_probe_type *type = sl_registry_find(SL_KIND_PROBE, name);
    if (!type)
        return SL_ENOTFOUND;
    sl_options *own = sl_options_copy(opt);
    if (!own)
        return SL_ENOMEM;
    int rc = sl_options_validate(own, type->options, type->name);
    if (rc >= 0) {
        rc = type->measure(own, model, data, out);
        if (rc < 0)
            rc = sl_error_context(rc, "probe %s", name);
    }
    sl_options_free(own);
    return rc;
}
