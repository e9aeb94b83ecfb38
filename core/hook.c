/* core/hook.c — hook instances. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"
#include "registry_internal.h"

struct sl_hook {
    const sl_hook_type *type;
    void *state;
    sl_options *options; /* validated copy */
};

int sl_hook_new(const char *type_name, const sl_options *opt, sl_hook **out)
{
    const sl_hook_type *type = sl_registry_find(SL_KIND_HOOK, type_name);
    if (!type)
        return SL_ENOTFOUND;
    sl_hook *h = calloc(1, sizeof *h);
    if (!h)
        return sl_error(SL_ENOMEM, "out of memory");
    h->type = type;
    int rc = SL_ENOMEM;
    if (!(h->options = sl_options_copy(opt)) ||
        (rc = sl_options_validate(h->options, type->options, type->name)) < 0 ||
        (rc = type->create(h, h->options)) < 0) {
        if (rc != SL_ENOMEM && rc < 0)
            rc = sl_error_context(rc, "hook %s", type_name);
        sl_hook_free(h);
        return rc;
    }
    *out = h;
    return SL_OK;
}

void sl_hook_free(sl_hook *h)
{
    if (!h)
        return;
    if (h->type->destroy && h->state)
        h->type->destroy(h);
    sl_options_free(h->options);
    free(h);
}

const char *sl_hook_name(const sl_hook *h) { return h->type->name; }
void *sl_hook_state(const sl_hook *h) { return h->state; }
void sl_hook_set_state(sl_hook *h, void *state) { h->state = state; }

/* The first ABI minor whose sl_hook_type carries flags. */
#define SL_ABI_MINOR_HOOK_FLAGS 3

bool sl_hook_allows_fused_update(const sl_hook *h)
{
    const sl_plugin *p = sl_registry_provider(SL_KIND_HOOK, h->type);
    if (p && p->abi_minor < SL_ABI_MINOR_HOOK_FLAGS)
        return false;
    return (h->type->flags & SL_HOOK_NO_GRADIENT_AFTER_BACKWARD) != 0;
}

int sl_hook_call(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    int rc = h->type->on_event(h, ev, ctx);
    return rc < 0 ? sl_error_context(rc, "hook %s", h->type->name) : SL_OK;
}
