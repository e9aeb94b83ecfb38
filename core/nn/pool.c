/* core/nn/pool.c — 2-d max and average pooling (PyTorch nn.MaxPool2d and
 * nn.AvgPool2d with ceil_mode=False, count_include_pad=True).
 *
 * in is (B, C, H, W), out is (B, C, Ho, Wo) with Ho = (H + 2p - k) / s + 1.
 * Both types share options, creation and shape logic; they differ only in
 * their kernels.  maxpool2d keeps, in scratch slot 0, the position of each
 * window's maximum (first one on ties, NaN wins like PyTorch) for backward. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nn/nn.h"

typedef struct pool_state {
    int64_t kernel, stride, padding;
} pool_state;

/* Sizes of one call: `planes` = B*C independent (H, W) images. */
typedef struct pool_geom {
    int64_t planes, h, w, ho, wo, k, s, p;
} pool_geom;

static const sl_option_spec pool_options[] = {
    {"kernel_size", SL_OPT_INT, NULL, "side of the square window", NULL},
    {"stride", SL_OPT_INT, "0", "step of the window; 0 means kernel_size", NULL},
    {"padding", SL_OPT_INT, "0", "implicit padding on each side (at most kernel_size/2)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* Window (oh, ow) covers rows [oh*s - p, oh*s - p + k) clipped to the image;
 * with p <= k/2 the clipped window is never empty. */
#define POOL_WINDOW(g, oh, ow)                                                          \
    int64_t h0 = (oh) * (g)->s - (g)->p, w0 = (ow) * (g)->s - (g)->p;                  \
    int64_t h1 = h0 + (g)->k < (g)->h ? h0 + (g)->k : (g)->h;                          \
    int64_t w1 = w0 + (g)->k < (g)->w ? w0 + (g)->k : (g)->w;                          \
    if (h0 < 0)                                                                        \
        h0 = 0;                                                                        \
    if (w0 < 0)                                                                        \
        w0 = 0

#define DEFINE_POOL(T, SUF)                                                            \
    static void maxpool_forward_##SUF(const pool_geom *g, const T *x, T *y, int64_t *arg) \
    {                                                                                  \
        for (int64_t pl = 0; pl < g->planes; pl++) {                                   \
            const T *xp = x + pl * g->h * g->w;                                        \
            for (int64_t oh = 0; oh < g->ho; oh++)                                     \
                for (int64_t ow = 0; ow < g->wo; ow++) {                               \
                    POOL_WINDOW(g, oh, ow);                                            \
                    /* The running maximum lives in a local (read back through xp, \
                     * which y and arg might alias, it cost a reload per element). */ \
                    int64_t best = h0 * g->w + w0;                                     \
                    T bv = xp[best];                                                   \
                    for (int64_t i = h0; i < h1; i++)                                  \
                        for (int64_t j = w0; j < w1; j++) {                            \
                            T v = xp[i * g->w + j];                                    \
                            /* selects, not a branch: which element wins is data, \
                             * and a branch on it was mispredicted a third of the time */ \
                            bool take = (v > bv) | ((v != v) & (bv == bv)); /* NaN wins */ \
                            best = take ? i * g->w + j : best;                         \
                            bv = take ? v : bv;                                        \
                        }                                                              \
                    int64_t o = (pl * g->ho + oh) * g->wo + ow;                        \
                    y[o] = bv;                                                         \
                    arg[o] = best;                                                     \
                }                                                                      \
        }                                                                              \
    }                                                                                  \
    static void maxpool_backward_##SUF(const pool_geom *g, const T *gy, T *gx,          \
                                       const int64_t *arg)                             \
    {                                                                                  \
        memset(gx, 0, (size_t)(g->planes * g->h * g->w) * sizeof(T));                  \
        for (int64_t pl = 0; pl < g->planes; pl++)                                     \
            for (int64_t o = pl * g->ho * g->wo; o < (pl + 1) * g->ho * g->wo; o++)    \
                gx[pl * g->h * g->w + arg[o]] += gy[o];                                \
    }                                                                                  \
    /* count_include_pad: every window divides by k*k, padding included. */            \
    static void avgpool_forward_##SUF(const pool_geom *g, const T *x, T *y)             \
    {                                                                                  \
        double scale = 1.0 / (double)(g->k * g->k);                                    \
        for (int64_t pl = 0; pl < g->planes; pl++) {                                   \
            const T *xp = x + pl * g->h * g->w;                                        \
            for (int64_t oh = 0; oh < g->ho; oh++)                                     \
                for (int64_t ow = 0; ow < g->wo; ow++) {                               \
                    POOL_WINDOW(g, oh, ow);                                            \
                    double sum = 0;                                                    \
                    for (int64_t i = h0; i < h1; i++)                                  \
                        for (int64_t j = w0; j < w1; j++)                              \
                            sum += xp[i * g->w + j];                                   \
                    y[(pl * g->ho + oh) * g->wo + ow] = (T)(sum * scale);              \
                }                                                                      \
        }                                                                              \
    }                                                                                  \
    static void avgpool_backward_##SUF(const pool_geom *g, const T *gy, T *gx)          \
    {                                                                                  \
        T scale = (T)(1.0 / (double)(g->k * g->k));                                    \
        memset(gx, 0, (size_t)(g->planes * g->h * g->w) * sizeof(T));                  \
        for (int64_t pl = 0; pl < g->planes; pl++) {                                   \
            T *gxp = gx + pl * g->h * g->w;                                            \
            for (int64_t oh = 0; oh < g->ho; oh++)                                     \
                for (int64_t ow = 0; ow < g->wo; ow++) {                               \
                    POOL_WINDOW(g, oh, ow);                                            \
                    T share = gy[(pl * g->ho + oh) * g->wo + ow] * scale;              \
                    for (int64_t i = h0; i < h1; i++)                                  \
                        for (int64_t j = w0; j < w1; j++)                              \
                            gxp[i * g->w + j] += share;                                \
                }                                                                      \
        }                                                                              \
    }
DEFINE_POOL(float, f32)
DEFINE_POOL(double, f64)

/* Shared by both types; the message names the type. */
static int pool_create(sl_module *m, const sl_options *opt)
{
    const char *name = sl_module_type_of(m)->name;
    pool_state st = {
        .kernel = sl_options_int(opt, "kernel_size"),
        .stride = sl_options_int(opt, "stride"),
        .padding = sl_options_int(opt, "padding"),
    };
    if (st.kernel <= 0)
        return sl_error(SL_EINVAL, "%s: kernel_size must be > 0, got %lld", name,
                        (long long)st.kernel);
    if (st.stride < 0)
        return sl_error(SL_EINVAL, "%s: stride must be >= 0 (0: kernel_size), got %lld", name,
                        (long long)st.stride);
    if (st.padding < 0 || st.padding > st.kernel / 2)
        return sl_error(SL_EINVAL, "%s: padding must be in [0, kernel_size/2 = %lld], got %lld",
                        name, (long long)(st.kernel / 2), (long long)st.padding);
    if (st.stride == 0)
        st.stride = st.kernel;
    pool_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "%s: out of memory", name);
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

static int pool_geometry(sl_module *m, int ndim, const int64_t *in, pool_geom *g)
{
    const pool_state *s = sl_module_state(m);
    const char *name = sl_module_type_of(m)->name;
    char got[128];
    if (ndim != 4)
        return sl_error(SL_ESHAPE, "%s: expected input (B, C, H, W), got %s", name,
                        sl_shape_str(ndim, in, got, sizeof got));
    if (in[2] + 2 * s->padding < s->kernel || in[3] + 2 * s->padding < s->kernel)
        return sl_error(SL_ESHAPE, "%s: input %s is smaller than kernel_size %lld (padding %lld)",
                        name, sl_shape_str(ndim, in, got, sizeof got), (long long)s->kernel,
                        (long long)s->padding);
    *g = (pool_geom){.planes = in[0] * in[1], .h = in[2], .w = in[3],
                     .k = s->kernel, .s = s->stride, .p = s->padding};
    g->ho = (g->h + 2 * g->p - g->k) / g->s + 1;
    g->wo = (g->w + 2 * g->p - g->k) / g->s + 1;
    return SL_OK;
}

static int pool_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                             int64_t *out)
{
    pool_geom g;
    SL_TRY(pool_geometry(m, ndim, in, &g));
    *out_ndim = 4;
    out[0] = in[0];
    out[1] = in[1];
    out[2] = g.ho;
    out[3] = g.wo;
    return SL_OK;
}

/* Geometry of a forward/backward call, after checking the input's layout. */
static int pool_prepare(sl_module *m, const sl_tensor *in, pool_geom *g)
{
    if (!sl_tensor_is_contiguous(in) || (in->dtype != SL_F32 && in->dtype != SL_F64))
        return sl_error(SL_EINVAL, "%s: input must be a contiguous f32 or f64 tensor",
                        sl_module_type_of(m)->name);
    return pool_geometry(m, in->ndim, in->shape, g);
}

static int maxpool_argmax(sl_module *m, const pool_geom *g, int64_t **arg)
{
    size_t nbytes = (size_t)(g->planes * g->ho * g->wo) * sizeof(int64_t);
    return sl_module_scratch(m, 0, nbytes, (void **)arg);
}

static int maxpool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    pool_geom g;
    int64_t *arg;
    SL_TRY(pool_prepare(m, in, &g));
    SL_TRY(maxpool_argmax(m, &g, &arg));
    if (in->dtype == SL_F32)
        maxpool_forward_f32(&g, in->data, out->data, arg);
    else
        maxpool_forward_f64(&g, in->data, out->data, arg);
    return SL_OK;
}

static int maxpool_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    pool_geom g;
    int64_t *arg;
    if (!grad_in)
        return SL_OK;
    SL_TRY(pool_prepare(m, in, &g));
    SL_TRY(maxpool_argmax(m, &g, &arg)); /* same size as forward's: no allocation */
    if (in->dtype == SL_F32)
        maxpool_backward_f32(&g, grad_out->data, grad_in->data, arg);
    else
        maxpool_backward_f64(&g, grad_out->data, grad_in->data, arg);
    return SL_OK;
}

static int avgpool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    pool_geom g;
    SL_TRY(pool_prepare(m, in, &g));
    if (in->dtype == SL_F32)
        avgpool_forward_f32(&g, in->data, out->data);
    else
        avgpool_forward_f64(&g, in->data, out->data);
    return SL_OK;
}

static int avgpool_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    pool_geom g;
    if (!grad_in)
        return SL_OK;
    SL_TRY(pool_prepare(m, in, &g));
    if (in->dtype == SL_F32)
        avgpool_backward_f32(&g, grad_out->data, grad_in->data);
    else
        avgpool_backward_f64(&g, grad_out->data, grad_in->data);
    return SL_OK;
}

static void pool_destroy(sl_module *m) { free(sl_module_state(m)); }

const sl_module_type sl_maxpool2d_type = {
    .name = "maxpool2d",
    .summary = "2-d max pooling over (B, C, H, W) (PyTorch nn.MaxPool2d)",
    .options = pool_options,
    .create = pool_create,
    .output_shape = pool_output_shape,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
    .destroy = pool_destroy,
};

const sl_module_type sl_avgpool2d_type = {
    .name = "avgpool2d",
    .summary = "2-d average pooling over (B, C, H, W), padding counted (PyTorch nn.AvgPool2d)",
    .options = pool_options,
    .create = pool_create,
    .output_shape = pool_output_shape,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .destroy = pool_destroy,
};
