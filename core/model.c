/* core/model.c — sequential models: named parameters in one arena,
 * activations planned once per input shape and reused. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

/* How deep containers may nest. */
#define SL_MAX_NESTING 16

/* A parameter or buffer as the model lists it. */
typedef struct named {
    char *name;     /* "<module index>.<local name>" */
    sl_decl *decl;  /* owned by the module */
} named;

struct sl_model {
    sl_dtype dtype;
    bool built, training;
    sl_seq *root;                    /* the top-level modules */
    /* While building: the containers opened by sl_model_begin, innermost
     * last, and the list sl_model_add appends to. */
    sl_module *open[SL_MAX_NESTING];
    sl_seq *resume[SL_MAX_NESTING];  /* the list each was added to */
    int nopen;
    sl_seq *cursor;
    named *params, *buffers;
    int nparams, nbuffers;
    int64_t numel;
    sl_tensor arena, grad_arena;     /* 1-d, numel elements each */

    /* The fused update's listener (sl_model_set_backward_listener). */
    int (*listener)(void *ctx, int64_t begin, int64_t end);
    void *listener_ctx;

    sl_tensor loss_grad;             /* grow-only, for sl_model_loss */
    sl_tensor loss_view;             /* the front of loss_grad, borrowed (storage NULL) */
};

int sl_model_new(sl_dtype dtype, sl_model **out)
{
    if (dtype != SL_F32 && dtype != SL_F64)
        return sl_error(SL_EDTYPE, "model: dtype %s (need f32 or f64)", sl_dtype_name(dtype));
    sl_model *m = calloc(1, sizeof *m);
    if (!m)
        return sl_error(SL_ENOMEM, "out of memory");
    m->dtype = dtype;
    m->training = true;
    if (!(m->root = sl_seq_new(""))) {
        free(m);
        return SL_ENOMEM;
    }
    m->cursor = m->root;
    *out = m;
    return SL_OK;
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
    sl_seq_free(m->root);
    sl_tensor_release(&m->loss_grad);
    free_named(m->params, m->nparams);
    free_named(m->buffers, m->nbuffers);
    sl_tensor_release(&m->arena);
    sl_tensor_release(&m->grad_arena);
    free(m);
}

sl_dtype sl_model_dtype(const sl_model *m) { return m->dtype; }
bool sl_model_is_built(const sl_model *m) { return m->built; }
int sl_model_nmodules(const sl_model *m) { return m->root->n; }
const sl_seq *sl_model_root(const sl_model *m) { return m->root; }

sl_module *sl_model_module(sl_model *m, int index)
{
    return index >= 0 && index < m->root->n ? m->root->mods[index] : NULL;
}

static sl_module *find_in(const sl_seq *list, const char *path)
{
    for (int i = 0; i < list->n; i++) {
        sl_module *mod = list->mods[i];
        if (strcmp(mod->path, path) == 0)
            return mod;
        for (int b = 0; b < mod->nbranches; b++) {
            sl_module *found = find_in(mod->branches[b], path);
            if (found)
                return found;
        }
    }
    return NULL;
}

sl_module *sl_model_find_module(sl_model *m, const char *path)
{
    return path ? find_in(m->root, path) : NULL;
}

/* FNV-1a of a module's path: the random streams of a module inside a
 * container (top-level modules keep their position, as before containers
 * existed, so flat models draw what they always drew). */
static uint64_t path_stream(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return h >> 1; /* 2 * stream + 1 must not wrap onto another's */
}

/* Creates a module of type_name at the end of the list being built. */
static int add_module(sl_model *m, const char *type_name, const sl_options *opt,
                      sl_module **out)
{
    sl_seq *list = m->cursor;
    const int index = list->n;
    if (m->built)
        return sl_error(SL_ESTATE, "model: cannot add module %d (%s) after build", index + 1,
                        type_name);
    SL_TRY(sl_registry_init());
    const sl_module_type *type = sl_registry_find(SL_KIND_MODULE, type_name);
    if (!type)
        return sl_error_context(SL_ENOTFOUND, "module %d", index + 1);
    char path[256];
    const sl_module *parent = m->nopen ? m->open[m->nopen - 1] : NULL;
    int len = parent ? snprintf(path, sizeof path, "%s%s%s.%d", parent->path,
                                *list->name ? "." : "", list->name, index)
                     : snprintf(path, sizeof path, "%d", index);
    if (len < 0 || (size_t)len >= sizeof path)
        return sl_error(SL_EINVAL, "model: modules nested too deeply");
    sl_module *mod;
    int rc = sl_module_create(type, m->dtype, index, path, opt, &mod);
    if (rc < 0)
        return sl_module_error(rc, list->name, index, type_name);
    mod->training = m->training;
    mod->stream = parent ? path_stream(path) : (uint64_t)index;
    if ((rc = sl_seq_append(list, mod)) < 0) {
        sl_module_destroy(mod);
        return rc;
    }
    *out = mod;
    return SL_OK;
}

int sl_model_add(sl_model *m, const char *type_name, const sl_options *opt)
{
    SL_TRY(sl_registry_init());
    const sl_module_type *type = sl_registry_find(SL_KIND_MODULE, type_name);
    if (type && sl_module_type_role(type)->kind == SL_ROLE_CONTAINER)
        return sl_error(SL_EINVAL, "model: %s is a container; open it with sl_model_begin",
                        type_name);
    sl_module *mod;
    return add_module(m, type_name, opt, &mod);
}

int sl_model_begin(sl_model *m, const char *type_name, const sl_options *opt)
{
    if (m->nopen == SL_MAX_NESTING)
        return sl_error(SL_EINVAL, "model: containers nested deeper than %d", SL_MAX_NESTING);
    SL_TRY(sl_registry_init());
    const sl_module_type *type = sl_registry_find(SL_KIND_MODULE, type_name);
    if (type && sl_module_type_role(type)->kind != SL_ROLE_CONTAINER)
        return sl_error(SL_EINVAL, "model: %s is not a container", type_name);
    sl_module *mod;
    SL_TRY(add_module(m, type_name, opt, &mod));
    m->resume[m->nopen] = m->cursor;
    m->open[m->nopen++] = mod;
    m->cursor = mod->branches[0];
    return SL_OK;
}

int sl_model_branch(sl_model *m, const char *branch)
{
    if (m->nopen == 0)
        return sl_error(SL_ESTATE, "model: branch '%s' outside a container", branch);
    sl_module *c = m->open[m->nopen - 1];
    for (int b = 0; b < c->nbranches; b++)
        if (strcmp(c->branches[b]->name, branch) == 0) {
            m->cursor = c->branches[b];
            return SL_OK;
        }
    return sl_error(SL_EINVAL, "model: %s has no branch '%s'", c->type->name, branch);
}

int sl_model_end(sl_model *m)
{
    if (m->nopen == 0)
        return sl_error(SL_ESTATE, "model: end without an open container");
    m->cursor = m->resume[--m->nopen];
    return SL_OK;
}

/* Calls fn on every module of the tree below `list`, depth first, in the
 * order of their tensors' names. */
static int each_module(sl_seq *list, int (*fn)(sl_module *, void *), void *arg)
{
    for (int i = 0; i < list->n; i++) {
        sl_module *mod = list->mods[i];
        SL_TRY(fn(mod, arg));
        for (int b = 0; b < mod->nbranches; b++)
            SL_TRY(each_module(mod->branches[b], fn, arg));
    }
    return SL_OK;
}

/* Appends "<path>.<local>" entries for every declaration of one kind. */
static int list_names(named **list, int *n, const sl_module *mod, sl_decl *decls, int count)
{
    if (count == 0)
        return SL_OK;
    named *grown = realloc(*list, (size_t)(*n + count) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "out of memory");
    *list = grown;
    for (int j = 0; j < count; j++) {
        size_t len = strlen(mod->path) + strlen(decls[j].name) + 2;
        char *name = malloc(len);
        if (!name)
            return sl_error(SL_ENOMEM, "out of memory");
        snprintf(name, len, "%s.%s", mod->path, decls[j].name);
        grown[*n].name = name;
        grown[*n].decl = &decls[j];
        (*n)++;
    }
    return SL_OK;
}

static int name_tensors(sl_module *mod, void *arg)
{
    sl_model *m = arg;
    SL_TRY(list_names(&m->params, &m->nparams, mod, mod->params, mod->nparams));
    return list_names(&m->buffers, &m->nbuffers, mod, mod->buffers, mod->nbuffers);
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
        SL_TRY(sl_tensor_alloc(&d->value, d->dtype, d->ndim, d->shape));
    }
    return SL_OK;
}

int sl_model_build(sl_model *m, uint64_t seed)
{
    if (m->built)
        return sl_error(SL_ESTATE, "model: already built");
    if (m->nopen)
        return sl_error(SL_ESTATE, "model: %s (module %s) was opened and not ended",
                        m->open[m->nopen - 1]->type->name, m->open[m->nopen - 1]->path);
    SL_TRY(each_module(m->root, name_tensors, m));
    SL_TRY(carve_arena(m));
    m->built = true;
    return sl_model_reset_parameters(m, seed);
}

typedef struct seeding {
    uint64_t seed;
    bool init;   /* reset parameters and buffers too, not only the noise */
} seeding;

static int seed_module(sl_module *mod, void *arg)
{
    const seeding *sd = arg;
    /* Each module draws its initialisation and its noise from streams of
     * its own, so inserting a module elsewhere changes nothing here. */
    sl_rng_derive(&mod->rng, sd->seed, 2 * mod->stream + 1);
    if (!sd->init)
        return SL_OK;
    for (int j = 0; j < mod->nbuffers; j++)
        sl_tensor_fill(&mod->buffers[j].value, 0.0);
    sl_rng init;
    sl_rng_derive(&init, sd->seed, 2 * mod->stream);
    if (mod->type->reset_parameters) {
        int rc = mod->type->reset_parameters(mod, &init);
        if (rc < 0)
            return sl_error_context(rc, "module %s (%s)", mod->path, mod->type->name);
    }
    return SL_OK;
}

int sl_model_reset_parameters(sl_model *m, uint64_t seed)
{
    if (!m->built)
        return sl_error(SL_ESTATE, "model: not built");
    sl_tensor_fill(&m->arena, 0.0);
    sl_tensor_fill(&m->grad_arena, 0.0);
    seeding sd = {seed, true};
    return each_module(m->root, seed_module, &sd);
}

void sl_model_seed_noise(sl_model *m, uint64_t seed)
{
    seeding sd = {seed, false};
    each_module(m->root, seed_module, &sd); /* cannot fail without init */
}

static int set_training(sl_module *mod, void *arg)
{
    mod->training = *(const bool *)arg;
    return SL_OK;
}

void sl_model_set_training(sl_model *m, bool training)
{
    m->training = training;
    each_module(m->root, set_training, &training);
}

bool sl_model_training(const sl_model *m) { return m->training; }

int sl_model_output_shape(sl_model *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    return sl_seq_output_shape(m->root, ndim, in, out_ndim, out);
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
    if (m->root->n == 0)
        return sl_error(SL_ESTATE, "model: no modules");
    return sl_seq_forward(m->root, x, y);
}

int sl_model_backward(sl_model *m, const sl_tensor *grad_y)
{
    sl_seq *r = m->root;
    if (!r->have_forward)
        return sl_error(SL_ESTATE, "model: backward without a successful forward");
    const sl_tensor *y = &r->view[r->n - 1];
    if (!sl_tensor_same_shape(grad_y, y) || grad_y->dtype != m->dtype) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "model: output gradient %s %s, output %s %s",
                        sl_shape_str(grad_y->ndim, grad_y->shape, a, sizeof a),
                        sl_dtype_name(grad_y->dtype), sl_shape_str(y->ndim, y->shape, b, sizeof b),
                        sl_dtype_name(m->dtype));
    }
    /* No one takes the input's gradient: it stops at the first module with
     * parameters (seq.c). */
    return sl_seq_backward(r, grad_y, NULL);
}

/* [*lo, *hi): the elements of the arena that mod's parameters and those of
 * the modules inside it occupy (contiguous: the arena is carved in
 * each_module's depth-first order); *lo > *hi-style empty when none. */
static void subtree_range(const sl_module *mod, const sl_model *m, int64_t *lo, int64_t *hi)
{
    size_t esize = sl_dtype_size(m->dtype);
    const char *base = m->arena.data;
    for (int j = 0; j < mod->nparams; j++) {
        const sl_tensor *v = &mod->params[j].value;
        int64_t begin = (int64_t)(((const char *)v->data - base) / (ptrdiff_t)esize);
        int64_t end = begin + sl_tensor_numel(v);
        *lo = begin < *lo ? begin : *lo;
        *hi = end > *hi ? end : *hi;
    }
    for (int b = 0; b < mod->nbranches; b++)
        for (int i = 0; i < mod->branches[b]->n; i++)
            subtree_range(mod->branches[b]->mods[i], m, lo, hi);
}

static int report_module(void *ctx, int index)
{
    sl_model *m = ctx;
    int64_t lo = m->numel, hi = 0;
    subtree_range(m->root->mods[index], m, &lo, &hi);
    return lo < hi ? m->listener(m->listener_ctx, lo, hi) : SL_OK;
}

void sl_model_set_backward_listener(sl_model *m, int (*fn)(void *ctx, int64_t begin, int64_t end),
                                    void *ctx)
{
    m->listener = fn;
    m->listener_ctx = ctx;
    m->root->after_backward = fn ? report_module : NULL;
    m->root->after_ctx = fn ? m : NULL;
}

const sl_tensor *sl_model_activation(const sl_model *m, int index)
{
    const sl_seq *r = m->root;
    return r->have_forward && index >= 0 && index < r->n ? &r->view[index] : NULL;
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

/* Rebuilds the modules of `list` (and of the containers in it) in c. */
static int add_copies(sl_model *c, const sl_seq *list)
{
    for (int i = 0; i < list->n; i++) {
        const sl_module *mod = list->mods[i];
        if (mod->nbranches == 0) {
            SL_TRY(sl_model_add(c, mod->type->name, mod->options));
            continue;
        }
        SL_TRY(sl_model_begin(c, mod->type->name, mod->options));
        for (int b = 0; b < mod->nbranches; b++) {
            SL_TRY(sl_model_branch(c, mod->branches[b]->name));
            SL_TRY(add_copies(c, mod->branches[b]));
        }
        SL_TRY(sl_model_end(c));
    }
    return SL_OK;
}

int sl_model_clone(sl_model *m, sl_dtype dtype, sl_model **out)
{
    if (!m->built)
        return sl_error(SL_ESTATE, "model clone: the model is not built");
    sl_model *c;
    SL_TRY(sl_model_new(dtype, &c));
    int rc = add_copies(c, m->root);
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
