/* core/nn/flatten.c — (B, d1, d2, ...) -> (B, d1*d2*...) (PyTorch nn.Flatten
 * with its defaults start_dim=1, end_dim=-1).  A contiguous reshape, so
 * forward and backward are plain copies. */
#include "config.h"

#include <string.h>

#include "internal.h"
#include "nn/nn.h"

static int flatten_create(sl_module *m, const sl_options *opt) { return SL_OK; }

static int flatten_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                                int64_t *out)
{
    if (ndim < 1)
        return sl_error(SL_ESHAPE, "flatten: expected input (B, ...), got a scalar");
    int64_t features = 1;
    for (int i = 1; i < ndim; i++)
        features *= in[i];
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = features;
    return SL_OK;
}

/* dst = src element for element; both contiguous with the same count. */
static int flatten_copy(sl_tensor *dst, const sl_tensor *src)
{
    if (!sl_tensor_is_contiguous(src))
        return sl_error(SL_EINVAL, "flatten: input must be contiguous");
    if (sl_tensor_numel(src) != sl_tensor_numel(dst) || src->dtype != dst->dtype) {
        char a[128], b[128];
        return sl_error(SL_ESHAPE, "flatten: cannot copy %s into %s",
                        sl_shape_str(src->ndim, src->shape, a, sizeof a),
                        sl_shape_str(dst->ndim, dst->shape, b, sizeof b));
    }
    if (sl_tensor_numel(src) > 0)
        memcpy(dst->data, src->data, sl_tensor_nbytes(src));
    return SL_OK;
}

static int flatten_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    return flatten_copy(out, in);
}

static int flatten_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    return grad_in ? flatten_copy(grad_in, grad_out) : SL_OK;
}

const sl_module_type sl_flatten_type = {
    .name = "flatten",
    .summary = "flattens (B, d1, d2, ...) to (B, d1*d2*...) (PyTorch nn.Flatten)",
    .options = NULL,
    .create = flatten_create,
    .output_shape = flatten_output_shape,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .role = {.kind = SL_ROLE_RESHAPE},
};
