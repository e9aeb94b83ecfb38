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

/* NaN wins, else the strictly larger value; ties keep the earlier one. */
#define MAXPOOL_TAKES(v, bv) (((v) > (bv)) | (((v) != (v)) & ((bv) == (bv))))

/* The even and odd lanes of two 16-byte vectors laid end to end, i.e. the
 * left and right columns of consecutive 2x2 windows. */
#ifdef __clang__
#define POOL_EVEN_f32(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define POOL_ODD_f32(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#define POOL_EVEN_f64(a, b) __builtin_shufflevector(a, b, 0, 2)
#define POOL_ODD_f64(a, b) __builtin_shufflevector(a, b, 1, 3)
#else
#define POOL_EVEN_f32(a, b) __builtin_shuffle(a, b, (pool_mask_f32){0, 2, 4, 6})
#define POOL_ODD_f32(a, b) __builtin_shuffle(a, b, (pool_mask_f32){1, 3, 5, 7})
#define POOL_EVEN_f64(a, b) __builtin_shuffle(a, b, (pool_mask_f64){0, 2})
#define POOL_ODD_f64(a, b) __builtin_shuffle(a, b, (pool_mask_f64){1, 3})
#endif

/* The kernels, one source compiled for float and for double. */
#define SL_GENERIC_FILE "nn/pool_generic.h"
#include "generic_real.h"

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

/* kernel 2, stride 2, no padding: the fast path with winners kept as T. */
static bool maxpool_is_2x2(const pool_geom *g) { return g->k == 2 && g->s == 2 && g->p == 0; }

/* Scratch slot 0: the winner of each window for backward (an int64 offset in
 * the plane, or with the 2x2 path its place in the window as a T). */
static int maxpool_argmax(sl_module *m, const pool_geom *g, sl_dtype dtype, void **arg)
{
    size_t each = maxpool_is_2x2(g) ? sl_dtype_size(dtype) : sizeof(int64_t);
    return sl_module_scratch(m, 0, (size_t)(g->planes * g->ho * g->wo) * each, arg);
}

/* The planes of one call split over the thread pool: every kernel works
 * plane by plane with plane-relative offsets, so a part is the same kernel
 * on a sub-geometry of its planes (any split gives the same bits). */
enum pool_op { MAX_FWD, MAX_BWD, AVG_FWD, AVG_BWD };

typedef struct pool_job {
    const pool_geom *g;
    enum pool_op op;
    bool f64, two;
    const void *src; /* x (forward) or gy (backward) */
    void *dst;       /* y or gx */
    void *arg;       /* maxpool's winners */
} pool_job;

static void pool_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const pool_job *j = ctx;
    pool_geom g = *j->g;
    g.planes = end - begin;
    size_t es = j->f64 ? sizeof(double) : sizeof(float);
    size_t in_plane = (size_t)(g.h * g.w), out_plane = (size_t)(g.ho * g.wo);
    bool fwd = j->op == MAX_FWD || j->op == AVG_FWD;
    const char *src = (const char *)j->src + (size_t)begin * (fwd ? in_plane : out_plane) * es;
    char *dst = (char *)j->dst + (size_t)begin * (fwd ? out_plane : in_plane) * es;
    char *arg = j->arg ? (char *)j->arg + (size_t)begin * out_plane *
                                              (j->two ? es : sizeof(int64_t))
                       : NULL;
    switch (j->op) {
    case MAX_FWD:
        if (j->two)
            j->f64 ? maxpool2x2_forward_f64(&g, (const double *)src, (double *)dst, (double *)arg)
                   : maxpool2x2_forward_f32(&g, (const float *)src, (float *)dst, (float *)arg);
        else
            j->f64 ? maxpool_forward_f64(&g, (const double *)src, (double *)dst, (int64_t *)arg)
                   : maxpool_forward_f32(&g, (const float *)src, (float *)dst, (int64_t *)arg);
        break;
    case MAX_BWD:
        if (j->two)
            j->f64 ? maxpool2x2_backward_f64(&g, (const double *)src, (double *)dst,
                                             (const double *)arg)
                   : maxpool2x2_backward_f32(&g, (const float *)src, (float *)dst,
                                             (const float *)arg);
        else
            j->f64 ? maxpool_backward_f64(&g, (const double *)src, (double *)dst,
                                          (const int64_t *)arg)
                   : maxpool_backward_f32(&g, (const float *)src, (float *)dst,
                                          (const int64_t *)arg);
        break;
    case AVG_FWD:
        j->f64 ? avgpool_forward_f64(&g, (const double *)src, (double *)dst)
               : avgpool_forward_f32(&g, (const float *)src, (float *)dst);
        break;
    case AVG_BWD:
        j->f64 ? avgpool_backward_f64(&g, (const double *)src, (double *)dst)
               : avgpool_backward_f32(&g, (const float *)src, (float *)dst);
        break;
    }
    (void)part;
}

/* Planes per part: ~32768 input elements. */
static void pool_run(const pool_geom *g, enum pool_op op, sl_dtype dtype, const void *src,
                     void *dst, void *arg)
{
    pool_job j = {.g = g, .op = op, .f64 = dtype == SL_F64, .two = maxpool_is_2x2(g),
                  .src = src, .dst = dst, .arg = arg};
    int64_t plane = g->h * g->w > 0 ? g->h * g->w : 1;
    sl_parallel_for(g->planes, 32768 / plane + 1, pool_part, &j);
}

static int maxpool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    pool_geom g;
    void *arg;
    SL_TRY(pool_prepare(m, in, &g));
    SL_TRY(maxpool_argmax(m, &g, in->dtype, &arg));
    pool_run(&g, MAX_FWD, in->dtype, in->data, out->data, arg);
    return SL_OK;
}

static int maxpool_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    pool_geom g;
    void *arg;
    if (!grad_in)
        return SL_OK;
    SL_TRY(pool_prepare(m, in, &g));
    SL_TRY(maxpool_argmax(m, &g, in->dtype, &arg)); /* same size as forward's: no allocation */
    pool_run(&g, MAX_BWD, in->dtype, grad_out->data, grad_in->data, arg);
    return SL_OK;
}

static int avgpool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    pool_geom g;
    SL_TRY(pool_prepare(m, in, &g));
    pool_run(&g, AVG_FWD, in->dtype, in->data, out->data, NULL);
    return SL_OK;
}

static int avgpool_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    pool_geom g;
    if (!grad_in)
        return SL_OK;
    SL_TRY(pool_prepare(m, in, &g));
    pool_run(&g, AVG_BWD, in->dtype, grad_out->data, grad_in->data, NULL);
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
    .role = {.kind = SL_ROLE_PER_UNIT, .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_RESAMPLES},
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
    .role = {.kind = SL_ROLE_PER_UNIT,
             .flags = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR | SL_UNIT_RESAMPLES},
};
