/* core/model.c — sequential models: named parameters in one arena,
 * activations planned once per input shape and reused. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* A parameter or buffer as the model lists it. */
typedef struct named {
    char *name;     /* "<module index>.<local name>" */
    sl_decl *decl;  /* owned by the module */
} named;

struct sl_model {
    sl_dtype dtype;
    bool built, training;
    sl_module **mods;
    int nmods;
    named *params, *buffers;
    int nparams, nbuffers;
    int64_t numel;
    sl_tensor arena, grad_arena; /* 1-d, numel elements each */

    /* Activations: out[i] is module i's output buffer, allocated for
     * `capacity` samples of the planned trailing shape; view[i] the part the
     * current batch uses.  grad[i] likewise for d loss / d out[i]. */
    sl_tensor *out, *view, *grad, *grad_view;
    int64_t capacity;
    int plan_ndim;
    int64_t plan_shape[SL_MAX_DIMS]; /* input shape planned for (batch ignored) */
    sl_tensor input;                 /* retained view of the last forward's input */
    bool have_forward;

    sl_tensor loss_grad;             /* grow-only, for sl_model_loss */
    sl_tensor loss_view;             /* the front of loss_grad, borrowed (storage NULL) */
};

/* Adds "module <i> (<type>)" in front of the current message, dropping a
 * leading "<type>: " that the module's own message already carries, so the
 * type is named once: "module 2 (linear): unknown option 'in'". */
static int module_error(int rc, int index, const char *type)
{
    const char *msg = sl_last_error();
    size_t n = strlen(type);
    if (strncmp(msg, type, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') {
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", msg + n + 2);
        return sl_error(rc, "module %d (%s): %s", index, type, rest);
    }
    return sl_error_context(rc, "module %d (%s)", index, type);
}

int sl_model_new(sl_dtype dtype, sl_model **out)
{
    if (dtype != SL_F32 && dtype != SL_F64)
        return sl_error(SL_EDTYPE, "model: dtype %s (need f32 or f64)", sl_dtype_name(dtype));
    sl_model *m = calloc(1, sizeof *m);
    if (!m)
        return sl_error(SL_ENOMEM, "out of memory");
    m->dtype = dtype;
    m->training = true;
    *out = m;
    return SL_OK;
}

static void release_activations(sl_model *m)
{
    for (int i = 0; m->out && i < m->nmods; i++) {
        sl_tensor_release(&m->out[i]);
        sl_tensor_release(&m->view[i]);
        sl_tensor_release(&m->grad[i]);
        sl_tensor_release(&m->grad_view[i]);
    }
    m->capacity = 0;
}

static void free_named(named *list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i].name);
    free(list);
}

void sl_model_free(sl_model *m)
{
    if (!m)
        return;
    release_activations(m);
    free(m->out);
    free(m->view);
    free(m->grad);
    free(m->grad_view);
    sl_tensor_release(&m->input);
    sl_tensor_release(&m->loss_grad);
    for (int i = 0; i < m->nmods; i++)
        sl_module_destroy(m->mods[i]);
    free(m->mods);
    free_named(m->params, m->nparams);
    free_named(m->buffers, m->nbuffers);
    sl_tensor_release(&m->arena);
    sl_tensor_release(&m->grad_arena);
    free(m);
}

sl_dtype sl_model_dtype(const sl_model *m) { return m->dtype; }
bool sl_model_is_built(const sl_model *m) { return m->built; }
int sl_model_nmodules(const sl_model *m) { return m->nmods; }

sl_module *sl_model_module(sl_model *m, int index)
{
    return index >= 0 && index < m->nmods ? m->mods[index] : NULL;
}

int sl_model_add(sl_model *m, const char *type_name, const sl_options *opt)
{
    int index = m->nmods;
    if (m->built)
        return sl_error(SL_ESTATE, "model: cannot add module %d (%s) after build", index,
                        type_name);
    SL_TRY(sl_registry_init());
    const sl_module_type *type = sl_registry_find(SL_KIND_MODULE, type_name);
    if (!type)
        return sl_error_context(SL_ENOTFOUND, "module %d", index);
    sl_module **mods = realloc(m->mods, (size_t)(index + 1) * sizeof *mods);
    if (!mods)
        return sl_error(SL_ENOMEM, "out of memory");
    m->mods = mods;
    sl_module *mod;
    int rc = sl_module_create(type, m->dtype, index, opt, &mod);
    if (rc < 0)
        return module_error(rc, index, type_name);
    mod->training = m->training;
    m->mods[m->nmods++] = mod;
    return SL_OK;
}

/* Appends "<index>.<local>" entries for every declaration of one kind. */
static int list_names(named **list, int *n, const sl_module *mod, sl_decl *decls, int count)
{
    if (count == 0)
        return SL_OK;
    named *grown = realloc(*list, (size_t)(*n + count) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "out of memory");
    *list = grown;
    for (int j = 0; j < count; j++) {
        size_t len = strlen(decls[j].name) + 24;
        char *name = malloc(len);
        if (!name)
            return sl_error(SL_ENOMEM, "out of memory");
        snprintf(name, len, "%d.%s", mod->index, decls[j].name);
        grown[*n].name = name;
        grown[*n].decl = &decls[j];
        (*n)++;
    }
    return SL_OK;
}

/* Fits: sl_module_add_param refused shapes whose count overflows. */
static int64_t decl_numel(const sl_decl *d)
{
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++)
        n *= d->shape[i];
    return n;
}

/* Points every parameter (and its gradient) at its slice of the arenas. */
static int carve_arena(sl_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < m->nparams; i++)
        if (!sl_add_ok(total, decl_numel(m->params[i].decl), &total))
            return sl_error(SL_EINVAL, "model: the parameter count overflows at '%s'",
                            m->params[i].name);
    m->numel = total;
    SL_TRY(sl_tensor_alloc(&m->arena, m->dtype, 1, &total));
    SL_TRY(sl_tensor_alloc(&m->grad_arena, m->dtype, 1, &total));
    int64_t offset = 0;
    for (int i = 0; i < m->nparams; i++) {
        sl_decl *d = m->params[i].decl;
        int64_t n = decl_numel(d);
        sl_tensor slice;
        SL_TRY(sl_tensor_narrow(&m->arena, 0, offset, n, &slice));
        int rc = sl_tensor_reshape(&slice, d->ndim, d->shape, &d->value);
        sl_tensor_release(&slice);
        SL_TRY(rc);
        SL_TRY(sl_tensor_narrow(&m->grad_arena, 0, offset, n, &slice));
        rc = sl_tensor_reshape(&slice, d->ndim, d->shape, &d->grad);
        sl_tensor_release(&slice);
        SL_TRY(rc);
        offset += n;
    }
    for (int i = 0; i < m->nbuffers; i++) {
        sl_decl *d = m->buffers[i].decl;
        SL_TRY(sl_tensor_alloc(&d->value, m->dtype, d->ndim, d->shape));
    }
    return SL_OK;
}

int sl_model_build(sl_model *m, uint64_t seed)
{
    if (m->built)
        return sl_error(SL_ESTATE, "model: already built");
    for (int i = 0; i < m->nmods; i++) {
        sl_module *mod = m->mods[i];
        SL_TRY(list_names(&m->params, &m->nparams, mod, mod->params, mod->nparams));
        SL_TRY(list_names(&m->buffers, &m->nbuffers, mod, mod->buffers, mod->nbuffers));
    }
    SL_TRY(carve_arena(m));
    size_t n = (size_t)(m->nmods > 0 ? m->nmods : 1);
    m->out = calloc(n, sizeof *m->out);
    m->view = calloc(n, sizeof *m->view);
    m->grad = calloc(n, sizeof *m->grad);
    m->grad_view = calloc(n, sizeof *m->grad_view);
    if (!m->out || !m->view || !m->grad || !m->grad_view)
        return sl_error(SL_ENOMEM, "out of memory");
    m->built = true;
    return sl_model_reset_parameters(m, seed);
}

int sl_model_reset_parameters(sl_model *m, uint64_t seed)
{
    if (!m->built)
        return sl_error(SL_ESTATE, "model: not built");
    sl_tensor_fill(&m->arena, 0.0);
    sl_tensor_fill(&m->grad_arena, 0.0);
    for (int i = 0; i < m->nmods; i++) {
        sl_module *mod = m->mods[i];
        for (int j = 0; j < mod->nbuffers; j++)
            sl_tensor_fill(&mod->buffers[j].value, 0.0);
        /* Each module draws its initialisation and its noise from streams
         * of its own, so inserting a module elsewhere changes nothing here. */
        sl_rng init;
        sl_rng_derive(&init, seed, 2 * (uint64_t)i);
        if (mod->type->reset_parameters) {
            int rc = mod->type->reset_parameters(mod, &init);
            if (rc < 0)
                return module_error(rc, i, mod->type->name);
        }
    }
    sl_model_seed_noise(m, seed);
    return SL_OK;
}

void sl_model_seed_noise(sl_model *m, uint64_t seed)
{
    for (int i = 0; i < m->nmods; i++)
        sl_rng_derive(&m->mods[i]->rng, seed, 2 * (uint64_t)i + 1);
}

void sl_model_set_training(sl_model *m, bool training)
{
    m->training = training;
    for (int i = 0; i < m->nmods; i++)
        m->mods[i]->training = training;
}

bool sl_model_training(const sl_model *m) { return m->training; }

/* Shape of module i's output for an input of shape (ndim, in), in place:
 * (ndim, shape) goes in as the input and comes out as the output. */
static int module_output_shape(sl_model *m, int i, int *ndim, int64_t *shape)
{
    sl_module *mod = m->mods[i];
    int64_t next[SL_MAX_DIMS] = {0};
    int next_ndim = 0;
    int rc = mod->type->output_shape(mod, *ndim, shape, &next_ndim, next);
    if (rc < 0)
        return module_error(rc, i, mod->type->name);
    *ndim = next_ndim;
    memcpy(shape, next, sizeof next);
    return SL_OK;
}

int sl_model_output_shape(sl_model *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    int64_t cur[SL_MAX_DIMS] = {0};
    memcpy(cur, in, (size_t)ndim * sizeof *in);
    for (int i = 0; i < m->nmods; i++)
        SL_TRY(module_output_shape(m, i, &ndim, cur));
    *out_ndim = ndim;
    memcpy(out, cur, (size_t)ndim * sizeof *cur);
    return SL_OK;
}

/* True if activations planned earlier serve an input of this shape. */
static bool plan_fits(const sl_model *m, const sl_tensor *x)
{
    if (m->capacity < x->shape[0] || m->plan_ndim != x->ndim)
        return false;
    for (int i = 1; i < x->ndim; i++)
        if (m->plan_shape[i] != x->shape[i])
            return false;
    return true;
}

/* Allocates every module's output buffer for x's shape (the only place
 * forward allocates: once per new input shape or larger batch). */
static int plan(sl_model *m, const sl_tensor *x)
{
    release_activations(m);
    int64_t cur[SL_MAX_DIMS];
    int cur_ndim = x->ndim;
    memcpy(cur, x->shape, sizeof cur);
    for (int i = 0; i < m->nmods; i++) {
        SL_TRY(module_output_shape(m, i, &cur_ndim, cur));
        if (cur_ndim < 1 || cur[0] != x->shape[0])
            return sl_error(SL_ESHAPE, "module %d (%s): output does not keep the batch dimension",
                            i, m->mods[i]->type->name);
        SL_TRY(sl_tensor_alloc(&m->out[i], m->dtype, cur_ndim, cur));
    }
    m->capacity = x->shape[0];
    m->plan_ndim = x->ndim;
    memcpy(m->plan_shape, x->shape, sizeof m->plan_shape);
    return SL_OK;
}

/* view[i] = the first `batch` samples of out[i] (no allocation). */
static int narrow_all(sl_tensor *full, sl_tensor *views, int n, int64_t batch)
{
    for (int i = 0; i < n; i++) {
        sl_tensor_release(&views[i]);
        SL_TRY(sl_tensor_narrow(&full[i], 0, 0, batch, &views[i]));
    }
    return SL_OK;
}

int sl_model_forward(sl_model *m, const sl_tensor *x, const sl_tensor **y)
{
    if (!m->built)
        return sl_error(SL_ESTATE, "model: forward before build");
    if (x->dtype != m->dtype)
        return sl_error(SL_EDTYPE, "model: input is %s, model computes in %s",
                        sl_dtype_name(x->dtype), sl_dtype_name(m->dtype));
    if (x->ndim < 1)
        return sl_error(SL_ESHAPE, "model: input needs a batch dimension");
    if (!sl_tensor_is_contiguous(x))
        return sl_error(SL_EINVAL, "model: input must be contiguous (copy it first)");
    if (m->nmods == 0)
        return sl_error(SL_ESTATE, "model: no modules");
    m->have_forward = false;
    if (!plan_fits(m, x))
        SL_TRY(plan(m, x));
    SL_TRY(narrow_all(m->out, m->view, m->nmods, x->shape[0]));
    sl_tensor_release(&m->input);
    m->input = sl_tensor_retain(x);
    const sl_tensor *in = x;
    for (int i = 0; i < m->nmods; i++) {
        sl_module *mod = m->mods[i];
        int rc = mod->type->forward(mod, in, &m->view[i]);
        if (rc < 0)
            return module_error(rc, i, mod->type->name);
        in = &m->view[i];
    }
    m->have_forward = true;
    *y = in;
    return SL_OK;
}

int sl_model_backward(sl_model *m, const sl_tensor *grad_y)
{
    if (!m->have_forward)
        return sl_error(SL_ESTATE, "model: backward without a successful forward");
    int last = m->nmods - 1;
    if (!sl_tensor_same_shape(grad_y, &m->view[last]) || grad_y->dtype != m->dtype) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "model: output gradient %s %s, output %s %s",
                        sl_shape_str(grad_y->ndim, grad_y->shape, a, sizeof a),
                        sl_dtype_name(grad_y->dtype),
                        sl_shape_str(m->view[last].ndim, m->view[last].shape, b, sizeof b),
                        sl_dtype_name(m->dtype));
    }
    /* Gradient buffers mirror the activation buffers; allocated at the
     * first backward after a (re)plan. */
    for (int i = 0; i < last; i++)
        if (!m->grad[i].storage)
            SL_TRY(sl_tensor_alloc(&m->grad[i], m->dtype, m->out[i].ndim, m->out[i].shape));
    SL_TRY(narrow_all(m->grad, m->grad_view, last, grad_y->shape[0]));
    /* Gradients flow down only as far as the first module with parameters:
     * nothing below it needs them (the input takes none), so that module
     * gets grad_in = NULL (module.h: skip that work) and the ones below are
     * not called.  Behind a flatten, say, the first linear layer then skips
     * its input-gradient GEMM, as costly as its weight gradient. */
    int first = 0;
    while (first < last && m->mods[first]->nparams == 0)
        first++;
    const sl_tensor *g = grad_y;
    for (int i = last; i >= first; i--) {
        sl_module *mod = m->mods[i];
        const sl_tensor *in = i == 0 ? &m->input : &m->view[i - 1];
        sl_tensor *gin = i == first ? NULL : &m->grad_view[i - 1];
        int rc = mod->type->backward(mod, in, &m->view[i], g, gin);
        if (rc < 0)
            return module_error(rc, i, mod->type->name);
        g = gin;
    }
    return SL_OK;
}

const sl_tensor *sl_model_activation(const sl_model *m, int index)
{
    return m->have_forward && index >= 0 && index < m->nmods ? &m->view[index] : NULL;
}

/* Copies one list of named tensors (params or buffers) by position. */
static int copy_named(const named *dst, int ndst, const named *src, int nsrc, const char *what)
{
    if (ndst != nsrc)
        return sl_error(SL_ESHAPE, "model copy: %d %s against %d", ndst, what, nsrc);
    for (int i = 0; i < ndst; i++) {
        if (strcmp(dst[i].name, src[i].name) != 0)
            return sl_error(SL_ESHAPE, "model copy: %s '%s' against '%s'", what, dst[i].name,
                            src[i].name);
        int rc = sl_tensor_copy(&dst[i].decl->value, &src[i].decl->value);
        if (rc < 0)
            return sl_error_context(rc, "model copy: %s '%s'", what, dst[i].name);
    }
    return SL_OK;
}

int sl_model_copy_state(sl_model *dst, sl_model *src)
{
    if (!dst->built || !src->built)
        return sl_error(SL_ESTATE, "model copy: both models must be built");
    SL_TRY(copy_named(dst->params, dst->nparams, src->params, src->nparams, "parameter"));
    return copy_named(dst->buffers, dst->nbuffers, src->buffers, src->nbuffers, "buffer");
}

int sl_model_clone(sl_model *m, sl_dtype dtype, sl_model **out)
{
    if (!m->built)
        return sl_error(SL_ESTATE, "model clone: the model is not built");
    sl_model *c;
    SL_TRY(sl_model_new(dtype, &c));
    int rc = SL_OK;
    for (int i = 0; rc >= 0 && i < m->nmods; i++)
        rc = sl_model_add(c, m->mods[i]->type->name, m->mods[i]->options);
    if (rc >= 0)
        rc = sl_model_build(c, 0);
    if (rc >= 0)
        rc = sl_model_copy_state(c, m);
    if (rc < 0) {
        sl_model_free(c);
        return rc;
    }
    sl_model_set_training(c, m->training);
    *out = c;
    return SL_OK;
}

/* Once per training step over every gradient: memset (all-zero bits are
 * 0.0 in f32 and f64, and the arena is one contiguous block) runs at memory
 * speed, where the generic fill loop took several percent of a step. */
void sl_model_zero_grad(sl_model *m)
{
    if (m->built && m->numel > 0) /* a model without parameters has no arena */
        memset(m->grad_arena.data, 0, (size_t)m->numel * sl_dtype_size(m->dtype));
}

int sl_model_nparams(const sl_model *m) { return m->nparams; }

const char *sl_model_param_name(const sl_model *m, int i)
{
    return i >= 0 && i < m->nparams ? m->params[i].name : NULL;
}

sl_tensor *sl_model_param(sl_model *m, int i)
{
    return i >= 0 && i < m->nparams ? &m->params[i].decl->value : NULL;
}

sl_tensor *sl_model_grad(sl_model *m, int i)
{
    return i >= 0 && i < m->nparams ? &m->params[i].decl->grad : NULL;
}

int sl_model_find_param(const sl_model *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return i;
    return -1;
}

int sl_model_nbuffers(const sl_model *m) { return m->nbuffers; }

const char *sl_model_buffer_name(const sl_model *m, int i)
{
    return i >= 0 && i < m->nbuffers ? m->buffers[i].name : NULL;
}

sl_tensor *sl_model_buffer(sl_model *m, int i)
{
    return i >= 0 && i < m->nbuffers ? &m->buffers[i].decl->value : NULL;
}

sl_tensor *sl_model_flat_params(sl_model *m) { return m->built ? &m->arena : NULL; }
sl_tensor *sl_model_flat_grads(sl_model *m) { return m->built ? &m->grad_arena : NULL; }
int64_t sl_model_numel(const sl_model *m) { return m->numel; }

int sl_model_loss_buffer(sl_model *m, const sl_tensor *like, sl_tensor **out)
{
    int64_t need = sl_tensor_numel(like);
    if (!m->loss_grad.storage || sl_tensor_numel(&m->loss_grad) < need) {
        sl_tensor_release(&m->loss_grad);
        SL_TRY(sl_tensor_alloc(&m->loss_grad, m->dtype, 1, &need));
    }
    /* A borrowed view (no reference, so nothing to release) of the front of
     * the buffer, shaped like `like`: no allocation per step. */
    SL_TRY(sl_tensor_wrap(&m->loss_view, m->loss_grad.data, m->dtype, like->ndim, like->shape));
    *out = &m->loss_view;
    return SL_OK;
}
