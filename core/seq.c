/* core/seq.c — an ordered list of modules run one after another, with its
 * activation buffers planned once per input shape and reused: the model's
 * top level and every branch of a container. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

int sl_module_error(int rc, const char *branch, int index0, const char *type)
{
    /* Drop a leading "<type>: " that the module's own message already
     * carries, so the type is named once: "module 2 (linear): unknown
     * option 'in'".  Positions are 1-based, as Lua counts the modules of a
     * sequential (the 0-based index lives on in parameter names). */
    const char *msg = sl_last_error();
    const char *sep = branch && *branch ? " " : "";
    size_t n = strlen(type);
    if (strncmp(msg, type, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') {
        char rest[1024];
        snprintf(rest, sizeof rest, "%s", msg + n + 2);
        return sl_error(rc, "%s%smodule %d (%s): %s", branch ? branch : "", sep, index0 + 1, type,
                        rest);
    }
    return sl_error_context(rc, "%s%smodule %d (%s)", branch ? branch : "", sep, index0 + 1,
                            type);
}

sl_seq *sl_seq_new(const char *name)
{
    sl_seq *s = calloc(1, sizeof *s);
    if (!s) {
        sl_error(SL_ENOMEM, "out of memory");
        return NULL;
    }
    s->name = name;
    return s;
}

static void release_plan(sl_seq *s)
{
    for (int i = 0; s->out && i < s->n; i++) {
        sl_tensor_release(&s->out[i]);
        sl_tensor_release(&s->view[i]);
        sl_tensor_release(&s->grad[i]);
        sl_tensor_release(&s->grad_view[i]);
    }
    s->capacity = 0;
}

void sl_seq_free(sl_seq *s)
{
    if (!s)
        return;
    release_plan(s);
    for (int i = 0; i < s->n; i++)
        sl_module_destroy(s->mods[i]);
    free(s->mods);
    free(s->out);
    free(s->view);
    free(s->grad);
    free(s->grad_view);
    sl_tensor_release(&s->input);
    free(s);
}

int sl_seq_append(sl_seq *s, sl_module *mod)
{
    size_t n = (size_t)s->n + 1;
    sl_module **mods = realloc(s->mods, n * sizeof *mods);
    if (!mods)
        return sl_error(SL_ENOMEM, "out of memory");
    s->mods = mods;
    sl_tensor *lists[4];
    sl_tensor **slots[4] = {&s->out, &s->view, &s->grad, &s->grad_view};
    for (int k = 0; k < 4; k++) {
        lists[k] = realloc(*slots[k], n * sizeof **slots[k]);
        if (!lists[k])
            return sl_error(SL_ENOMEM, "out of memory");
        memset(&lists[k][n - 1], 0, sizeof lists[k][n - 1]);
        *slots[k] = lists[k];
    }
    s->mods[s->n++] = mod;
    return SL_OK;
}

bool sl_module_has_params(const sl_module *m)
{
    if (m->nparams > 0)
        return true;
    for (int b = 0; b < m->nbranches; b++)
        for (int i = 0; i < m->branches[b]->n; i++)
            if (sl_module_has_params(m->branches[b]->mods[i]))
                return true;
    return false;
}

/* Module i's output shape for the input (ndim, shape), in place. */
static int module_output_shape(sl_seq *s, int i, int *ndim, int64_t *shape)
{
    sl_module *mod = s->mods[i];
    int64_t next[SL_MAX_DIMS] = {0};
    int next_ndim = 0;
    int rc = mod->type->output_shape(mod, *ndim, shape, &next_ndim, next);
    if (rc < 0)
        return sl_module_error(rc, s->name, i, mod->type->name);
    *ndim = next_ndim;
    memcpy(shape, next, sizeof next);
    return SL_OK;
}

int sl_seq_output_shape(sl_seq *s, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    int64_t cur[SL_MAX_DIMS] = {0};
    memcpy(cur, in, (size_t)ndim * sizeof *in);
    for (int i = 0; i < s->n; i++)
        SL_TRY(module_output_shape(s, i, &ndim, cur));
    *out_ndim = ndim;
    memcpy(out, cur, (size_t)ndim * sizeof *cur);
    return SL_OK;
}

/* True if buffers planned earlier serve an input of this shape. */
static bool plan_fits(const sl_seq *s, const sl_tensor *x)
{
    if (s->capacity < x->shape[0] || s->plan_ndim != x->ndim)
        return false;
    for (int i = 1; i < x->ndim; i++)
        if (s->plan_shape[i] != x->shape[i])
            return false;
    return true;
}

/* Allocates every module's output buffer for x's shape (the only place a
 * forward allocates: once per new input shape or larger batch). */
static int plan(sl_seq *s, const sl_tensor *x)
{
    release_plan(s);
    int64_t cur[SL_MAX_DIMS];
    int cur_ndim = x->ndim;
    memcpy(cur, x->shape, sizeof cur);
    for (int i = 0; i < s->n; i++) {
        SL_TRY(module_output_shape(s, i, &cur_ndim, cur));
        if (cur_ndim < 1 || cur[0] != x->shape[0])
            return sl_module_error(sl_error(SL_ESHAPE, "output does not keep the batch "
                                                       "dimension"),
                                   s->name, i, s->mods[i]->type->name);
        SL_TRY(sl_tensor_alloc(&s->out[i], s->mods[i]->dtype, cur_ndim, cur));
    }
    s->capacity = x->shape[0];
    s->plan_ndim = x->ndim;
    memcpy(s->plan_shape, x->shape, sizeof s->plan_shape);
    return SL_OK;
}

/* views[i] = the first `batch` samples of full[i] (no allocation). */
static int narrow_all(sl_tensor *full, sl_tensor *views, int n, int64_t batch)
{
    for (int i = 0; i < n; i++) {
        sl_tensor_release(&views[i]);
        SL_TRY(sl_tensor_narrow(&full[i], 0, 0, batch, &views[i]));
    }
    return SL_OK;
}

int sl_seq_forward(sl_seq *s, const sl_tensor *x, const sl_tensor **y)
{
    s->have_forward = false;
    if (s->n > 0 && !plan_fits(s, x))
        SL_TRY(plan(s, x));
    SL_TRY(narrow_all(s->out, s->view, s->n, x->shape[0]));
    sl_tensor_release(&s->input);
    s->input = sl_tensor_retain(x);
    const sl_tensor *in = x;
    for (int i = 0; i < s->n; i++) {
        sl_module *mod = s->mods[i];
        int rc = mod->type->forward(mod, in, &s->view[i]);
        if (rc < 0)
            return sl_module_error(rc, s->name, i, mod->type->name);
        mod->output = &s->view[i];
        in = &s->view[i];
    }
    s->have_forward = true;
    *y = in;
    return SL_OK;
}

int sl_seq_backward(sl_seq *s, const sl_tensor *grad_y, sl_tensor *grad_in)
{
    if (!s->have_forward)
        return sl_error(SL_ESTATE, "backward without a successful forward");
    if (s->n == 0)
        return grad_in ? sl_tensor_copy(grad_in, grad_y) : SL_OK;
    const int last = s->n - 1;
    /* Gradient buffers mirror the activation buffers; allocated at the
     * first backward after a (re)plan. */
    for (int i = 0; i < last; i++)
        if (!s->grad[i].storage)
            SL_TRY(sl_tensor_alloc(&s->grad[i], s->out[i].dtype, s->out[i].ndim,
                                   s->out[i].shape));
    SL_TRY(narrow_all(s->grad, s->grad_view, last, grad_y->shape[0]));
    /* Without a consumer of the input gradient, gradients flow down only as
     * far as the first module with parameters: that module gets grad_in =
     * NULL (module.h: skip that work) and the ones below are not called.
     * Behind a flatten, say, the first linear layer then skips its
     * input-gradient GEMM, as costly as its weight gradient. */
    int first = 0;
    if (!grad_in)
        while (first < last && !sl_module_has_params(s->mods[first]))
            first++;
    const sl_tensor *g = grad_y;
    for (int i = last; i >= first; i--) {
        sl_module *mod = s->mods[i];
        const sl_tensor *in = i == 0 ? &s->input : &s->view[i - 1];
        sl_tensor *gin = i == 0 ? grad_in : i == first && !grad_in ? NULL : &s->grad_view[i - 1];
        int rc = mod->type->backward(mod, in, &s->view[i], g, gin);
        if (rc < 0)
            return sl_module_error(rc, s->name, i, mod->type->name);
        if (s->after_backward)
            SL_TRY(s->after_backward(s->after_ctx, i));
        g = gin;
    }
    return SL_OK;
}
