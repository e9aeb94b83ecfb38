/* core/module.c — module instances: declarations, accessors, scratch. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "registry_internal.h"

sl_dtype sl_module_dtype(const sl_module *m) { return m->dtype; }
const sl_module_type *sl_module_type_of(const sl_module *m) { return m->type; }
bool sl_module_training(const sl_module *m) { return m->training; }
void *sl_module_state(const sl_module *m) { return m->state; }
const sl_options *sl_module_options(const sl_module *m) { return m->options; }
void sl_module_set_state(sl_module *m, void *state) { m->state = state; }
const char *sl_module_path(const sl_module *m) { return m->path; }
const sl_tensor *sl_module_output(const sl_module *m) { return m->output; }
sl_rng *sl_module_rng(sl_module *m) { return &m->rng; }

static int declare(sl_module *m, sl_decl **list, int *count, const char *what, const char *name,
                   sl_dtype dtype, int ndim, const int64_t *shape)
{
    if (!m->declaring)
        return sl_error(SL_ESTATE, "%s: %s '%s' declared outside create()", m->type->name, what,
                        name);
    if (ndim < 0 || ndim > SL_MAX_DIMS)
        return sl_error(SL_EINVAL, "%s: %s '%s' has ndim %d", m->type->name, what, name, ndim);
    if (dtype != m->dtype && dtype != SL_I64)
        return sl_error(SL_EDTYPE, "%s: %s '%s' is %s; buffers are %s (the module's) or i64",
                        m->type->name, what, name, sl_dtype_name(dtype), sl_dtype_name(m->dtype));
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return sl_error(SL_EINVAL, "%s: %s '%s' has a negative extent", m->type->name, what,
                            name);
    int64_t numel;
    if (!sl_numel_ok(ndim, shape, &numel)) {
        char s[128];
        return sl_error(SL_EINVAL, "%s: %s '%s' of shape %s has more elements than an int64 "
                        "counts", m->type->name, what, name, sl_shape_str(ndim, shape, s, sizeof s));
    }
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return sl_error(SL_EINVAL, "%s: name '%s' declared twice", m->type->name, name);
    for (int i = 0; i < m->nbuffers; i++)
        if (strcmp(m->buffers[i].name, name) == 0)
            return sl_error(SL_EINVAL, "%s: name '%s' declared twice", m->type->name, name);
    sl_decl *grown = realloc(*list, (size_t)(*count + 1) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "out of memory");
    *list = grown;
    sl_decl *d = &grown[*count];
    memset(d, 0, sizeof *d);
    if (!(d->name = sl_strdup(name)))
        return SL_ENOMEM;
    d->dtype = dtype;
    d->ndim = ndim;
    if (ndim > 0)
        memcpy(d->shape, shape, (size_t)ndim * sizeof *shape);
    return (*count)++;
}

int sl_module_add_param(sl_module *m, const char *name, int ndim, const int64_t *shape)
{
    return declare(m, &m->params, &m->nparams, "parameter", name, m->dtype, ndim, shape);
}

int sl_module_add_buffer(sl_module *m, const char *name, int ndim, const int64_t *shape)
{
    return declare(m, &m->buffers, &m->nbuffers, "buffer", name, m->dtype, ndim, shape);
}

int sl_module_add_buffer_typed(sl_module *m, const char *name, sl_dtype dtype, int ndim,
                               const int64_t *shape)
{
    return declare(m, &m->buffers, &m->nbuffers, "buffer", name, dtype, ndim, shape);
}

sl_tensor *sl_module_param(sl_module *m, int index)
{
    return index >= 0 && index < m->nparams ? &m->params[index].value : NULL;
}

sl_tensor *sl_module_grad(sl_module *m, int index)
{
    return index >= 0 && index < m->nparams ? &m->params[index].grad : NULL;
}

sl_tensor *sl_module_buffer(sl_module *m, int index)
{
    return index >= 0 && index < m->nbuffers ? &m->buffers[index].value : NULL;
}

int sl_module_scratch(sl_module *m, int slot, size_t nbytes, void **ptr)
{
    if (slot < 0 || slot >= SL_MODULE_SCRATCH_SLOTS)
        return sl_error(SL_EINVAL, "%s: scratch slot %d out of range", m->type->name, slot);
    if (nbytes > m->scratch_size[slot]) {
        void *p = sl_aligned_calloc(nbytes, 1);
        if (!p)
            return SL_ENOMEM;
        if (m->scratch[slot])
            memcpy(p, m->scratch[slot], m->scratch_size[slot]);
        sl_aligned_free(m->scratch[slot]);
        m->scratch[slot] = p;
        m->scratch_size[slot] = nbytes;
    }
    *ptr = m->scratch[slot];
    return SL_OK;
}

int sl_module_create(const sl_module_type *type, sl_dtype dtype, int index, const char *path,
                     const sl_options *opt, sl_module **out)
{
    sl_module *m = calloc(1, sizeof *m);
    if (!m)
        return sl_error(SL_ENOMEM, "out of memory");
    m->type = type;
    m->dtype = dtype;
    m->index = index;
    m->training = true;
    int rc = SL_OK;
    if (!(m->path = sl_strdup(path)) || !(m->options = sl_options_copy(opt))) {
        rc = SL_ENOMEM;
        goto fail;
    }
    if ((rc = sl_options_validate(m->options, type->options, type->name)) < 0)
        goto fail;
    m->declaring = true;
    rc = type->create(m, m->options);
    m->declaring = false;
    if (rc < 0)
        goto fail;
    *out = m;
    return SL_OK;
fail:
    sl_module_destroy(m);
    return rc;
}

static void free_decls(sl_decl *d, int n)
{
    for (int i = 0; i < n; i++) {
        free(d[i].name);
        sl_tensor_release(&d[i].value);
        sl_tensor_release(&d[i].grad);
    }
    free(d);
}

void sl_module_destroy(sl_module *m)
{
    if (!m)
        return;
    if (m->type->destroy && m->state)
        m->type->destroy(m);
    free_decls(m->params, m->nparams);
    free_decls(m->buffers, m->nbuffers);
    for (int i = 0; i < m->nbranches; i++)
        sl_seq_free(m->branches[i]);
    free(m->branches);
    free(m->path);
    for (int i = 0; i < SL_MODULE_SCRATCH_SLOTS; i++)
        sl_aligned_free(m->scratch[i]);
    sl_options_free(m->options);
    free(m);
}

/* The first ABI minor whose sl_module_type carries `role`. */
#define SL_ABI_MINOR_ROLES 1

const sl_module_role *sl_module_type_role(const sl_module_type *type)
{
    static const sl_module_role opaque = {0};
    /* A type not in the registry was handed to us directly (tests build
     * modules from descriptors they own, at this header's minor). */
    const sl_plugin *p = sl_registry_provider(SL_KIND_MODULE, type);
    if (p && p->abi_minor < SL_ABI_MINOR_ROLES)
        return &opaque;
    return &type->role;
}

const sl_module_role *sl_module_role_of(const sl_module *m)
{
    return sl_module_type_role(m->type);
}

int sl_role_text(const sl_module_role *role, char *buf, size_t size)
{
    char flags[128];
    switch (role->kind) {
    case SL_ROLE_WEIGHT:
        return snprintf(buf, size, "weight (weight '%s': units on axis %d, inputs on axis %d; "
                                   "bias '%s')",
                        role->weight ? role->weight : "?", role->unit_axis, role->input_axis,
                        role->bias ? role->bias : "none");
    case SL_ROLE_PER_UNIT:
        sl_role_flags_text(role->flags, flags, sizeof flags);
        return snprintf(buf, size, "per-unit (%s)", flags[0] ? flags : "no further symmetry");
    default:
        return snprintf(buf, size, "%s", sl_role_kind_name(role->kind));
    }
}

const char *sl_role_kind_name(sl_role_kind kind)
{
    static const char *const names[] = {"opaque", "weight", "per-unit", "reshape", "container"};
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}

void sl_role_flags_text(unsigned flags, char *buf, size_t size)
{
    static const char *const names[] = {"homogeneous", "odd",     "linear",   "stochastic",
                                        "normalising", "coupled", "resamples"};
    sl_flags_text(flags, names, (int)(sizeof names / sizeof *names), buf, size);
}
