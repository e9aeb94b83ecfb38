/* core/nn/container.c — modules that hold lists of modules.
 *
 *   sequential  its one list (branch ""), run in order: nn.Sequential inside
 *               a model, children named "<path>.<i>";
 *   residual    y = body(x) + shortcut(x), shortcut the identity when its
 *               list is empty (He et al. 2016): branches "body" and
 *               "shortcut", children named "<path>.body.<i>" and
 *               "<path>.shortcut.<i>", as a PyTorch module with attributes
 *               `body` and `shortcut` (nn.Sequential) names them.
 * Their children are added by the model builder (sl_model_begin,
 * sl_model_branch, sl_model_end); these callbacks only run them. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "../model_internal.h"
#include "nn.h"

/* Gives m its named, empty branches. */
static int add_branches(sl_module *m, const char *const *names, int n)
{
    if (!(m->branches = calloc((size_t)n, sizeof *m->branches)))
        return sl_error(SL_ENOMEM, "out of memory");
    for (int b = 0; b < n; b++) {
        if (!(m->branches[b] = sl_seq_new(names[b])))
            return SL_ENOMEM;
        m->nbranches++;
    }
    return SL_OK;
}

/* ---- sequential ------------------------------------------------------------ */

static int seq_create(sl_module *m, const sl_options *opt)
{
    (void)opt;
    static const char *const names[] = {""};
    return add_branches(m, names, 1);
}

static int seq_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    return sl_seq_output_shape(m->branches[0], ndim, in, out_ndim, out);
}

static int seq_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const sl_tensor *y;
    SL_TRY(sl_seq_forward(m->branches[0], in, &y));
    return sl_tensor_copy(out, y);
}

static int seq_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                        const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)in;
    (void)out;
    return sl_seq_backward(m->branches[0], grad_out, grad_in);
}

const sl_module_type sl_sequential_type = {
    .name = "sequential",
    .summary = "runs its modules in order (PyTorch nn.Sequential); in Lua, a plain list of "
               "layers inside sl.nn.sequential or sl.nn.residual",
    .create = seq_create,
    .output_shape = seq_shape,
    .forward = seq_forward,
    .backward = seq_backward,
    .role = {.kind = SL_ROLE_CONTAINER},
};

/* ---- residual -------------------------------------------------------------- */

enum { BODY = 0, SHORTCUT = 1 };

static int res_create(sl_module *m, const sl_options *opt)
{
    (void)opt;
    static const char *const names[] = {"body", "shortcut"};
    return add_branches(m, names, 2);
}

static int res_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    int64_t skip[SL_MAX_DIMS];
    int skip_ndim;
    if (m->branches[BODY]->n == 0)
        return sl_error(SL_EINVAL, "residual: the body is empty");
    SL_TRY(sl_seq_output_shape(m->branches[BODY], ndim, in, out_ndim, out));
    SL_TRY(sl_seq_output_shape(m->branches[SHORTCUT], ndim, in, &skip_ndim, skip));
    if (skip_ndim != *out_ndim || memcmp(skip, out, (size_t)skip_ndim * sizeof *skip) != 0) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "residual: the body gives %s but the shortcut %s; add a "
                                   "projection to the shortcut",
                        sl_shape_str(*out_ndim, out, a, sizeof a),
                        sl_shape_str(skip_ndim, skip, b, sizeof b));
    }
    return SL_OK;
}

static int res_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const sl_tensor *body, *skip;
    SL_TRY(sl_seq_forward(m->branches[BODY], in, &body));
    SL_TRY(sl_seq_forward(m->branches[SHORTCUT], in, &skip));
    SL_TRY(sl_tensor_copy(out, body));
    return sl_axpy(1.0, skip, out);
}

static int res_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                        const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    /* Both branches add into the parameter gradients; their input
     * gradients add up in grad_in (the shortcut's through scratch). */
    SL_TRY(sl_seq_backward(m->branches[BODY], grad_out, grad_in));
    sl_seq *sc = m->branches[SHORTCUT];
    if (!grad_in) {
        /* Nobody reads the input gradient: the shortcut needs one only for
         * its own parameters. */
        return sc->n ? sl_seq_backward(sc, grad_out, NULL) : SL_OK;
    }
    void *p;
    SL_TRY(sl_module_scratch(m, 0, (size_t)sl_tensor_numel(in) * sl_dtype_size(in->dtype), &p));
    sl_tensor g = {0};
    SL_TRY(sl_tensor_wrap(&g, p, in->dtype, in->ndim, in->shape));
    SL_TRY(sl_seq_backward(sc, grad_out, &g));
    return sl_axpy(1.0, &g, grad_in);
}

const sl_module_type sl_residual_type = {
    .name = "residual",
    .summary = "y = body(x) + shortcut(x), the shortcut the identity unless given (He et al. "
               "2016); sl.nn.residual { layers..., shortcut = { layers... } }",
    .create = res_create,
    .output_shape = res_shape,
    .forward = res_forward,
    .backward = res_backward,
    .role = {.kind = SL_ROLE_CONTAINER},
};
