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

/* Output ow of a 2x2/stride-2 row pair: the running maximum and its place. */
#define MAXPOOL2X2_WINDOW(T, r0, r1, y, code, ow)                                      \
    do {                                                                               \
        T bv_ = (r0)[2 * (ow)], best_ = 0, v_;                                         \
        v_ = (r0)[2 * (ow) + 1];                                                       \
        best_ = MAXPOOL_TAKES(v_, bv_) ? 1 : best_;                                    \
        bv_ = MAXPOOL_TAKES(v_, bv_) ? v_ : bv_;                                       \
        v_ = (r1)[2 * (ow)];                                                           \
        best_ = MAXPOOL_TAKES(v_, bv_) ? 2 : best_;                                    \
        bv_ = MAXPOOL_TAKES(v_, bv_) ? v_ : bv_;                                       \
        v_ = (r1)[2 * (ow) + 1];                                                       \
        best_ = MAXPOOL_TAKES(v_, bv_) ? 3 : best_;                                    \
        bv_ = MAXPOOL_TAKES(v_, bv_) ? v_ : bv_;                                       \
        (y)[ow] = bv_;                                                                 \
        (code)[ow] = best_;                                                            \
    } while (0)

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

/* One step of the running maximum on vectors: lanes where v takes over bv
 * (MAXPOOL_TAKES, as masks) get v's value and `place`.  Bitwise selects, so
 * the winner's bits are copied exactly. */
#define MAXPOOL_VSTEP(V, M, v, bv, best, place)                                        \
    do {                                                                               \
        M t_ = MAXPOOL_TAKES(v, bv);                                                   \
        (bv) = (V)(((M)(v) & t_) | ((M)(bv) & ~t_));                                   \
        (best) = (V)(((M)(place) & t_) | ((M)(best) & ~t_));                           \
    } while (0)

#define DEFINE_POOL(T, I, SUF)                                                         \
    /* kernel 2, stride 2, no padding (the common case): the four elements of a   \
     * window, in the general loop's order, without its per-window clipping.      \
     * Same maximum and same winner as maxpool_forward, but the winner is kept as \
     * its place in the window (0..3, row-major) in an array of T, so that one    \
     * 16-byte vector of windows is done at a time (GCC/Clang vector extensions; \
     * the scalar form, with an int64 index beside each value, cost more than    \
     * the convolutions' GEMMs).  The scalar tail computes the same thing. */    \
    typedef T pool_vec_##SUF __attribute__((vector_size(16)));                         \
    typedef I pool_mask_##SUF __attribute__((vector_size(16)));                        \
    static void maxpool2x2_row_##SUF(const T *r0, const T *r1, T *y, T *code,          \
                                     int64_t n)                                        \
    {                                                                                  \
        const int64_t lanes = (int64_t)(sizeof(pool_vec_##SUF) / sizeof(T));           \
        const pool_vec_##SUF zero = {0}, one = zero + 1, two = one + 1,                \
                             three = two + 1;                                          \
        int64_t ow = 0;                                                                \
        for (; ow + lanes <= n; ow += lanes) {                                         \
            pool_vec_##SUF p0, p1, q0, q1;                                             \
            memcpy(&p0, r0 + 2 * ow, sizeof p0);                                       \
            memcpy(&p1, r0 + 2 * ow + lanes, sizeof p1);                               \
            memcpy(&q0, r1 + 2 * ow, sizeof q0);                                       \
            memcpy(&q1, r1 + 2 * ow + lanes, sizeof q1);                               \
            pool_vec_##SUF bv = POOL_EVEN_##SUF(p0, p1), best = zero;                  \
            pool_vec_##SUF v = POOL_ODD_##SUF(p0, p1);                                 \
            MAXPOOL_VSTEP(pool_vec_##SUF, pool_mask_##SUF, v, bv, best, one);          \
            v = POOL_EVEN_##SUF(q0, q1);                                               \
            MAXPOOL_VSTEP(pool_vec_##SUF, pool_mask_##SUF, v, bv, best, two);          \
            v = POOL_ODD_##SUF(q0, q1);                                                \
            MAXPOOL_VSTEP(pool_vec_##SUF, pool_mask_##SUF, v, bv, best, three);        \
            memcpy(y + ow, &bv, sizeof bv);                                            \
            memcpy(code + ow, &best, sizeof best);                                     \
        }                                                                              \
        for (; ow < n; ow++)                                                           \
            MAXPOOL2X2_WINDOW(T, r0, r1, y, code, ow);                                 \
    }                                                                                  \
    static void maxpool2x2_forward_##SUF(const pool_geom *g, const T *x, T *y, T *code) \
    {                                                                                  \
        for (int64_t pl = 0; pl < g->planes; pl++)                                     \
            for (int64_t oh = 0; oh < g->ho; oh++) {                                   \
                const T *r0 = x + (pl * g->h + 2 * oh) * g->w;                         \
                int64_t o = (pl * g->ho + oh) * g->wo;                                 \
                maxpool2x2_row_##SUF(r0, r0 + g->w, y + o, code + o, g->wo);           \
            }                                                                          \
    }                                                                                  \
    static void maxpool2x2_backward_##SUF(const pool_geom *g, const T *gy, T *gx,       \
                                          const T *code)                               \
    {                                                                                  \
        memset(gx, 0, (size_t)(g->planes * g->h * g->w) * sizeof(T));                  \
        for (int64_t pl = 0; pl < g->planes; pl++)                                     \
            for (int64_t oh = 0; oh < g->ho; oh++) {                                   \
                T *r0 = gx + (pl * g->h + 2 * oh) * g->w;                              \
                int64_t o = (pl * g->ho + oh) * g->wo;                                 \
                for (int64_t ow = 0; ow < g->wo; ow++) {                               \
                    int c = (int)code[o + ow];                                         \
                    r0[(c >> 1) * g->w + 2 * ow + (c & 1)] += gy[o + ow];              \
                }                                                                      \
            }                                                                          \
    }                                                                                  \
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
                            bool take = MAXPOOL_TAKES(v, bv);                          \
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
DEFINE_POOL(float, int32_t, f32)
DEFINE_POOL(double, int64_t, f64)

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

static int maxpool_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    pool_geom g;
    void *arg;
    SL_TRY(pool_prepare(m, in, &g));
    SL_TRY(maxpool_argmax(m, &g, in->dtype, &arg));
    bool two = maxpool_is_2x2(&g);
    if (in->dtype == SL_F32 && two)
        maxpool2x2_forward_f32(&g, in->data, out->data, arg);
    else if (in->dtype == SL_F32)
        maxpool_forward_f32(&g, in->data, out->data, arg);
    else if (two)
        maxpool2x2_forward_f64(&g, in->data, out->data, arg);
    else
        maxpool_forward_f64(&g, in->data, out->data, arg);
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
    bool two = maxpool_is_2x2(&g);
    if (in->dtype == SL_F32 && two)
        maxpool2x2_backward_f32(&g, grad_out->data, grad_in->data, arg);
    else if (in->dtype == SL_F32)
        maxpool_backward_f32(&g, grad_out->data, grad_in->data, arg);
    else if (two)
        maxpool2x2_backward_f64(&g, grad_out->data, grad_in->data, arg);
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
