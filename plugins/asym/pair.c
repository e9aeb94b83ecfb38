/* plugins/asym/pair.c — the second model of a pair, for the probes that
 * compare two models of one architecture (interpolate, weight_matching).
 * A probe receives one model; the other reaches it as a checkpoint. */
#include "config.h"

#include "asym.h"

int asym_load_other(sl_model *model, const char *path, const char *owner, sl_model **out)
{
    *out = NULL;
    if (!path || !*path)
        return sl_error(SL_EINVAL, "%s: option 'other' must name a checkpoint of the second model",
                        owner);
    sl_model *other;
    SL_TRY(sl_model_clone(model, sl_model_dtype(model), &other));
    int rc = sl_model_load(other, path);
    if (rc < 0) {
        sl_model_free(other);
        return sl_error_context(rc, "%s: other", owner);
    }
    *out = other;
    return SL_OK;
}
