/* core/nn/reshape.c — (B, ...) -> (B, shape...) with the same number of
 * entries per sample (PyTorch's Tensor.view with the batch kept; ONNX
 * Reshape).  A contiguous reshape, so forward and backward are copies.
 *
 * The option `shape` gives the trailing extents as "4x3x8" (x-separated,
 * so that it survives the comma-separated text form of options).
 *
 * Role: opaque.  A reshape may split or merge the unit axis (a relaxed
 * deepsets layer ends with (B, c n) -> (B, c, n): c n dense features
 * become c channels of n), which is not a rearrangement that keeps units
 * whole, so the structure walker must not see through it.  `flatten` is
 * the reshape that does keep them. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nn/nn.h"

typedef struct reshape_state {
    int ndim;                      /* trailing extents, batch excluded */
    int64_t shape[SL_MAX_DIMS - 1];
    int64_t count;                 /* their product */
} reshape_state;

static const sl_option_spec reshape_options[] = {
    {"shape", SL_OPT_STRING, NULL, "extents after the batch, e.g. 4x3x8", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

static int reshape_create(sl_module *m, const sl_options *opt)
{
    reshape_state s = {.count = 1};
    const char *text = sl_options_string(opt, "shape"), *p = text;
    for (;;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || s.ndim == SL_MAX_DIMS - 1 || !sl_mul_ok(s.count, v, &s.count))
            return sl_error(SL_EINVAL, "reshape: shape '%s' is not 1 to %d positive extents "
                                       "joined by 'x'", text, SL_MAX_DIMS - 1);
        s.shape[s.ndim++] = v;
        if (*end == '\0')
            break;
        if (*end != 'x')
            return sl_error(SL_EINVAL, "reshape: shape '%s': unexpected '%c'", text, *end);
        p = end + 1;
    }
    reshape_state *st = malloc(sizeof *st);
    if (!st)
        return sl_error(SL_ENOMEM, "reshape: out of memory");
    *st = s;
    sl_module_set_state(m, st);
    return SL_OK;
}

static int reshape_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                                int64_t *out)
{
    const reshape_state *s = sl_module_state(m);
    int64_t count = 1;
    for (int i = 1; i < ndim; i++)
        count *= in[i];
    if (ndim < 1 || count != s->count) {
        char got[128];
        return sl_error(SL_ESHAPE, "reshape: expected (B, ...) with %lld entries per sample, "
                                   "got %s", (long long)s->count,
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = s->ndim + 1;
    out[0] = in[0];
    memcpy(out + 1, s->shape, (size_t)s->ndim * sizeof *out);
    return SL_OK;
}

/* dst = src entry for entry: both contiguous (host buffers), same count. */
static int reshape_copy(sl_tensor *dst, const sl_tensor *src)
{
    if (sl_tensor_numel(src) != sl_tensor_numel(dst) || !sl_tensor_is_contiguous(src))
        return sl_error(SL_ESHAPE, "reshape: input and output differ in size or layout");
    memcpy(dst->data, src->data, sl_tensor_nbytes(src));
    return SL_OK;
}

static int reshape_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    return reshape_copy(out, in);
}

static int reshape_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    return grad_in ? reshape_copy(grad_in, grad_out) : SL_OK;
}

static void reshape_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type sl_reshape_type = {
    .name = "reshape",
    .summary = "reshapes each sample: (B, ...) -> (B, shape...), same entries in order",
    .options = reshape_options,
    .create = reshape_create,
    .output_shape = reshape_output_shape,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .destroy = reshape_destroy,
    /* Opaque: it may split or merge units (see the top of this file). */
    .role = {.kind = SL_ROLE_OPAQUE},
};
