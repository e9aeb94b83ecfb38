/* plugins/equivariant/relax.c — the dense forms the layers of this plugin
 * declare for relaxation (sl_model_relax, symlab/relax.h): each layer is an
 * affine map y = W vec(x) + b of the flattened sample, and relaxes into the
 * `linear` layer with that W and b, between `reshape`s when its input or
 * output is not (B, features).  p4conv relaxes into a `conv2d` instead
 * (p4conv.c). */
#include "config.h"

#include <stdio.h>

#include "eq.h"

/* "4x3x8" from the trailing extents of a shape (batch first). */
static void shape_text(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 1; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i > 1 ? "x" : "",
                                 (long long)shape[i]);
}

int eq_relax_reshape(sl_relax *r, int ndim, const int64_t *shape)
{
    char text[96];
    shape_text(ndim, shape, text, sizeof text);
    sl_options *o = sl_options_new();
    if (!o)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    int rc = sl_options_set_string(o, "shape", text);
    if (rc >= 0)
        rc = sl_relax_add(r, "reshape", o);
    sl_options_free(o);
    return rc;
}

int eq_relax_affine(sl_module *m, int ndim, const int64_t *in, const sl_tensor *W,
                    const sl_tensor *b, sl_relax *r)
{
    int out_ndim;
    int64_t out[SL_MAX_DIMS];
    SL_TRY(sl_module_type_of(m)->output_shape(m, ndim, in, &out_ndim, out));
    if (ndim != 2)
        SL_TRY(eq_relax_reshape(r, 2, (int64_t[]){in[0], W->shape[1]}));
    sl_options *o = sl_options_new();
    if (!o)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    int rc = sl_options_set_int(o, "in_features", W->shape[1]);
    if (rc >= 0)
        rc = sl_options_set_int(o, "out_features", W->shape[0]);
    if (rc >= 0)
        rc = sl_options_set_bool(o, "bias", b != NULL);
    if (rc >= 0)
        rc = sl_relax_add(r, "linear", o);
    sl_options_free(o);
    SL_TRY(rc);
    SL_TRY(sl_relax_set(r, "weight", W));
    if (b)
        SL_TRY(sl_relax_set(r, "bias", b));
    return out_ndim != 2 ? eq_relax_reshape(r, out_ndim, out) : SL_OK;
}

int eq_relax_dense(sl_module *m, int ndim, const int64_t *in, const eq_tied *t, const void *W,
                   sl_relax *r)
{
    const sl_dtype dt = sl_module_dtype(m);
    sl_tensor Wt = {0}, bt = {0};
    int rc = sl_tensor_wrap(&Wt, (void *)W, dt, 2, (int64_t[]){t->rows, t->cols});
    if (rc >= 0 && t->bias_of_row) {
        rc = sl_tensor_alloc(&bt, dt, 1, &t->rows);
        const void *bias = sl_module_param(m, 1)->data;
        for (int64_t i = 0; rc >= 0 && i < t->rows; i++)
            eq_st(bt.data, dt, i, eq_ld(bias, dt, t->bias_of_row[i]));
    }
    if (rc >= 0)
        rc = eq_relax_affine(m, ndim, in, &Wt, t->bias_of_row ? &bt : NULL, r);
    sl_tensor_release(&bt);
    return rc;
}

int eq_tied_relax(sl_module *m, int ndim, const int64_t *in, const eq_tied *t, sl_relax *r)
{
    sl_tensor W = {0};
    SL_TRY(sl_tensor_alloc(&W, sl_module_dtype(m), 2, (int64_t[]){t->rows, t->cols}));
    eq_tied_expand(W.dtype, sl_module_param(m, 0)->data, t->table, t->rows * t->cols, W.data);
    int rc = eq_relax_dense(m, ndim, in, t, W.data, r);
    sl_tensor_release(&W);
    return rc;
}
