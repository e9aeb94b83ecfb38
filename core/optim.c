/* core/optim.c — the host side of an optimizer instance.
 *
 * An sl_optim binds a registered sl_optim_type to one built model: it owns a
 * validated copy of the user's options, the learning rate (read from "lr",
 * changeable with sl_optim_set_lr) and the step count that update rules use
 * for bias correction.  The type's create() sizes its per-element state from
 * sl_optim_numel(), so step() never allocates.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>

#include "internal.h"
#include "registry_internal.h"

struct sl_optim {
    const sl_optim_type *type;
    sl_model *model;     /* borrowed; outlives the optimizer */
    sl_options *options; /* owned; validated against type->options */
    double lr;
    int64_t steps;       /* since creation or the last reset */
    int64_t numel;       /* sl_model_numel(model) at creation */
    void *state;         /* the type's */
};

/* A validated copy of the user's options (NULL: all defaults) that the
 * optimizer owns, so the caller may free theirs at once. */
static int own_options(const sl_optim_type *type, const sl_options *user, sl_options **out)
{
    sl_options *own = sl_options_copy(user);
    if (!own)
        return sl_error(SL_ENOMEM, "%s: out of memory", type->name);
    int rc = sl_options_validate(own, type->options, type->name);
    if (rc < 0) {
        sl_options_free(own);
        return rc;
    }
    *out = own;
    return SL_OK;
}

static int check_lr(const char *name, double lr)
{
    /* PyTorch accepts lr == 0 (a frozen run, the end of a decay schedule). */
    if (!(lr >= 0.0) || !isfinite(lr))
        return sl_error(SL_EINVAL, "%s: lr must be >= 0 and finite, got %g", name, lr);
    return SL_OK;
}

static int check_new_args(const char *type_name, sl_model *model, sl_optim **out)
{
    if (!out)
        return sl_error(SL_EINVAL, "sl_optim_new: out is NULL");
    *out = NULL;
    if (!type_name)
        return sl_error(SL_EINVAL, "sl_optim_new: no optimizer name");
    if (!model)
        return sl_error(SL_EINVAL, "%s: no model", type_name);
    if (!sl_model_is_built(model))
        return sl_error(SL_ESTATE, "%s: the model must be built before making an optimizer",
                        type_name);
    return SL_OK;
}

int sl_optim_new(const char *type_name, sl_model *model, const sl_options *opt, sl_optim **out)
{
    SL_TRY(check_new_args(type_name, model, out));
    SL_TRY(sl_registry_init());
    const sl_optim_type *type = sl_registry_find(SL_KIND_OPTIM, type_name);
    if (!type)
        return SL_ENOTFOUND;
    sl_optim *o = calloc(1, sizeof *o);
    if (!o)
        return sl_error(SL_ENOMEM, "%s: out of memory", type_name);
    o->type = type;
    o->model = model;
    o->numel = sl_model_numel(model);
    int rc = own_options(type, opt, &o->options);
    if (rc == SL_OK) {
        o->lr = sl_options_float(o->options, "lr");
        rc = check_lr(type->name, o->lr);
    }
    if (rc == SL_OK) {
        rc = type->create(o, o->options);
        /* A create() that fails after setting its state leaves it to destroy(). */
        if (rc < 0 && o->state && type->destroy)
            type->destroy(o);
    }
    if (rc < 0) {
        sl_options_free(o->options);
        free(o);
        return rc;
    }
    *out = o;
    return SL_OK;
}

void sl_optim_free(sl_optim *o)
{
    if (!o)
        return;
    if (o->type->destroy)
        o->type->destroy(o);
    sl_options_free(o->options);
    free(o);
}

int sl_optim_step(sl_optim *o)
{
    if (!o)
        return sl_error(SL_EINVAL, "sl_optim_step: no optimizer");
    sl_tensor *params = sl_model_flat_params(o->model);
    const sl_tensor *grads = sl_model_flat_grads(o->model);
    if (!params || !grads || sl_model_numel(o->model) != o->numel)
        return sl_error(SL_ESTATE, "%s: the model's parameters changed since the optimizer "
                                   "was made", o->type->name);
    int rc = o->type->step(o, params, grads);
    if (rc < 0)
        return rc;
    o->steps++;
    return SL_OK;
}

void sl_optim_reset(sl_optim *o)
{
    if (!o)
        return;
    o->steps = 0;
    if (o->type->reset)
        o->type->reset(o);
}

double sl_optim_lr(const sl_optim *o) { return o ? o->lr : 0.0; }

/* Out-of-range values are the caller's bug; keep the last good rate rather
 * than let a NaN reach the parameters. */
void sl_optim_set_lr(sl_optim *o, double lr)
{
    if (o && lr >= 0.0 && isfinite(lr))
        o->lr = lr;
}

int64_t sl_optim_steps(const sl_optim *o) { return o ? o->steps : 0; }
sl_model *sl_optim_model(const sl_optim *o) { return o ? o->model : NULL; }
const char *sl_optim_name(const sl_optim *o) { return o ? o->type->name : ""; }
void *sl_optim_state(const sl_optim *o) { return o ? o->state : NULL; }
void sl_optim_set_state(sl_optim *o, void *state)
{
    if (o)
        o->state = state;
}
int64_t sl_optim_numel(const sl_optim *o) { return o ? o->numel : 0; }

/* The first ABI minor whose sl_optim_type carries state_tensor, and
 * step_range. */
#define SL_ABI_MINOR_OPTIM_STATE 2
#define SL_ABI_MINOR_OPTIM_RANGE 3

bool sl_optim_can_fuse(const sl_optim *o)
{
    const sl_plugin *p = sl_registry_provider(SL_KIND_OPTIM, o->type);
    return !(p && p->abi_minor < SL_ABI_MINOR_OPTIM_RANGE) && o->type->step_range != NULL;
}

int sl_optim_step_range(sl_optim *o, int64_t begin, int64_t end)
{
    sl_tensor *params = sl_model_flat_params(o->model);
    const sl_tensor *grads = sl_model_flat_grads(o->model);
    if (!params || !grads || sl_model_numel(o->model) != o->numel)
        return sl_error(SL_ESTATE, "%s: the model's parameters changed since the optimizer "
                                   "was made", o->type->name);
    return o->type->step_range(o, params, grads, begin, end);
}

void sl_optim_count_step(sl_optim *o) { o->steps++; }

/* The type's state_tensor, or NULL for a type built before the field
 * existed (a type not in the registry was handed to us at this header's
 * minor, as tests do). */
static int (*state_fn(const sl_optim_type *type))(sl_optim *, int, const char **, sl_tensor *)
{
    const sl_plugin *p = sl_registry_provider(SL_KIND_OPTIM, type);
    if (p && p->abi_minor < SL_ABI_MINOR_OPTIM_STATE)
        return NULL;
    return type->state_tensor;
}

int sl_optim_state_tensor(sl_optim *o, int i, const char **name, sl_tensor *view)
{
    if (!o || !name || !view || i < 0)
        return sl_error(SL_EINVAL, "sl_optim_state_tensor: bad arguments");
    int (*fn)(sl_optim *, int, const char **, sl_tensor *) = state_fn(o->type);
    if (!fn) {
        const sl_plugin *p = sl_registry_provider(SL_KIND_OPTIM, o->type);
        return sl_error(SL_ESTATE, "optimizer '%s' (plugin '%s') cannot save its state (its type "
                        "has no state_tensor), so it cannot be checkpointed or resumed",
                        o->type->name, p ? p->name : "?");
    }
    return fn(o, i, name, view);
}

int sl_optim_set_steps(sl_optim *o, int64_t steps)
{
    if (!o || steps < 0)
        return sl_error(SL_EINVAL, "sl_optim_set_steps: a step count must be >= 0");
    o->steps = steps;
    return SL_OK;
}
