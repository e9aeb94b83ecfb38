/* symlab/conv.h — the 2-d convolution behind the built-in conv2d layer,
 * for layers that convolve with a weight they assemble themselves (the asym
 * plugin's asym_conv2d pins some kernel entries; a low-rank or masked
 * convolution would do the same).  One implementation: conv2d itself runs
 * through these functions, so such a layer gets the same im2col lowering,
 * the same GEMMs and the same rounding.
 *
 * Shapes: input (B, C, H, W), output (B, O, Ho, Wo) with
 * Ho = (H + 2p - k) / s + 1 and likewise Wo (floor); weight (O, C, k, k)
 * (or any contiguous tensor of its O·C·k·k elements in that order, e.g.
 * (O, C·k·k)); bias (O).  Square kernel, no dilation or groups — PyTorch's
 * nn.Conv2d restricted so.  Real dtypes: every tensor of one call has the
 * input's dtype (f32 or f64) and is contiguous.
 *
 * Workspace: the calls use scratch slots 0, 1 and 2 of the module `m`
 * that calls them (module.h's sl_module_scratch); a layer keeps its own
 * scratch in slots 3 and up.  Forward keeps the whole batch's im2col
 * columns there (when they fit in 64 MiB) and records in the sl_conv2d
 * which input they belong to, so that the following backward does not
 * lower every image a second time; nothing is allocated once the slots
 * have grown to the largest batch.  With kept columns the images of a
 * batch run in parallel on symlab's thread pool (symlab/parallel.h), each
 * part with its own column gradient and weight/bias gradient sums (slots 1
 * and 2), added in part order: bit-identical for a given thread count.
 * Errors name the calling module's type (sl_module_type_of).
 * Added at ABI 1.3: a plugin that calls these needs libsymlab 1.3 or later.
 */
#ifndef SYMLAB_CONV_H
#define SYMLAB_CONV_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/module.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A convolution's sizes, and what the last forward left in the workspace.
 * Set it up with sl_conv2d_init; a layer keeps one in its state. */
typedef struct sl_conv2d {
    int64_t in_channels, out_channels, kernel, stride, padding;
    /* private: the input whose columns scratch slot 0 holds (NULL: none),
     * and its batch size */
    const void *cols_of;
    int64_t cols_batch;
} sl_conv2d;

/* Fills *c.  Errors (naming m's type and the option, as its options are
 * called: in_channels, out_channels, kernel_size, stride, padding):
 * SL_EINVAL unless the first four are > 0 and padding >= 0. */
SL_API int sl_conv2d_init(const sl_module *m, sl_conv2d *c, int64_t in_channels,
                          int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding);

/* The output shape (B, O, Ho, Wo) for an input shape, for a layer's
 * output_shape.  Errors: SL_ESHAPE naming the expected (B, C, H, W) or an
 * input smaller than the kernel; SL_EINVAL for padding out of range. */
SL_API int sl_conv2d_output_shape(const sl_module *m, const sl_conv2d *c, int ndim,
                                  const int64_t *in, int *out_ndim, int64_t *out);

/* out = in ⋆ weight (+ bias, when not NULL), out as sl_conv2d_output_shape
 * says (the host allocates it).  Errors: as output_shape, and SL_EINVAL for
 * a non-contiguous tensor, a dtype other than the input's, or a weight or
 * bias of the wrong size. */
SL_API int sl_conv2d_forward(sl_module *m, sl_conv2d *c, const sl_tensor *in,
                             const sl_tensor *weight, const sl_tensor *bias, sl_tensor *out);

/* The backward of the forward just run on `in` with `weight`:
 * grad_weight += dL/dweight, grad_bias += dL/dbias (when not NULL),
 * grad_in = dL/din (when not NULL; overwritten).  grad_weight has the
 * weight's size, grad_bias the bias's.  Errors: as forward. */
SL_API int sl_conv2d_backward(sl_module *m, const sl_conv2d *c, const sl_tensor *in,
                              const sl_tensor *weight, const sl_tensor *grad_out,
                              sl_tensor *grad_weight, sl_tensor *grad_bias, sl_tensor *grad_in);

#ifdef __cplusplus
}
#endif
#endif
