/* core/nn/conv2d_generic.h — the convolution kernels of conv2d.c, written
 * once against T, I and SUF(name) and compiled for float and for double:
 * conv2d.c includes it through generic_real.h (see there).  Not a header; no
 * include guard.   SUF(GEMM) is sl_sgemm or sl_dgemm. */

/* dst[i] += src[i] (col2im's stride-1 runs: dst in gx, src in gcols), one
 * 16-byte vector at a time with GCC/Clang vector extensions; element by
 * element the same additions as the scalar loop. */
typedef T SUF(conv_vec) __attribute__((vector_size(16)));
static void SUF(add_run)(T *dst, const T *src, int64_t n)
{
    const int64_t lanes = (int64_t)(sizeof(SUF(conv_vec)) / sizeof(T));
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        SUF(conv_vec) a, b;
        memcpy(&a, dst + i, sizeof a);
        memcpy(&b, src + i, sizeof b);
        a += b;
        memcpy(dst + i, &a, sizeof a);
    }
    for (; i < n; i++)
        dst[i] += src[i];
}
/* dst[i] += v: forward's bias, vectorised likewise (the plain loop re-read
 * the bias from memory, which y might alias, for every pixel). */
static void SUF(add_scalar)(T *dst, T v, int64_t n)
{
    const int64_t lanes = (int64_t)(sizeof(SUF(conv_vec)) / sizeof(T));
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) {
        SUF(conv_vec) a;
        memcpy(&a, dst + i, sizeof a);
        a += v;
        memcpy(dst + i, &a, sizeof a);
    }
    for (; i < n; i++)
        dst[i] += v;
}
static void SUF(im2col)(const conv_geom *g, const T *x, T *cols)
{
    for (int64_t r = 0; r < g->rows; r++) {
        int64_t c = r / (g->k * g->k), ki = r / g->k % g->k, kj = r % g->k;
        int64_t h0, h1, w0, w1;
        valid_run(ki - g->p, g->s, g->h, g->ho, &h0, &h1);
        valid_run(kj - g->p, g->s, g->w, g->wo, &w0, &w1);
        T *row = cols + r * g->npix;
        for (int64_t oh = 0; oh < g->ho; oh++) {
            T *dst = row + oh * g->wo;
            int64_t lo = oh >= h0 && oh < h1 ? w0 : g->wo, hi = lo == g->wo ? lo : w1;
            /* index of input (c, ih, iw) for ow = 0; only used inside the run */
            int64_t at = (c * g->h + oh * g->s - g->p + ki) * g->w + kj - g->p;
            for (int64_t ow = 0; ow < lo; ow++)
                dst[ow] = 0;
            if (g->s != 1)
                for (int64_t ow = lo; ow < hi; ow++)
                    dst[ow] = x[at + ow * g->s];
            else if (hi > lo) /* stride 1: the run is contiguous, a block copy */
                memcpy(dst + lo, x + at + lo, (size_t)(hi - lo) * sizeof(T));
            for (int64_t ow = hi; ow < g->wo; ow++)
                dst[ow] = 0;
        }
    }
}
/* gx (C, H, W) = the adjoint of im2col applied to gcols.  Rows are added in
 * the same order as the plain loop (r outer), so sums round the same way. */
static void SUF(col2im)(const conv_geom *g, const T *gcols, T *gx)
{
    memset(gx, 0, (size_t)(g->c * g->h * g->w) * sizeof(T));
    for (int64_t r = 0; r < g->rows; r++) {
        int64_t c = r / (g->k * g->k), ki = r / g->k % g->k, kj = r % g->k;
        int64_t h0, h1, w0, w1;
        valid_run(ki - g->p, g->s, g->h, g->ho, &h0, &h1);
        valid_run(kj - g->p, g->s, g->w, g->wo, &w0, &w1);
        const T *row = gcols + r * g->npix;
        for (int64_t oh = h0; oh < h1; oh++) {
            int64_t at = (c * g->h + oh * g->s - g->p + ki) * g->w + kj - g->p;
            const T *src = row + oh * g->wo;
            if (g->s == 1) {
                SUF(add_run)(gx + at + w0, src + w0, w1 - w0);
                continue;
            }
            for (int64_t ow = w0; ow < w1; ow++)
                gx[at + ow * g->s] += src[ow];
        }
    }
}
/* Images [n0, n1) of the batch.  cols_step is rows*npix when every image
 * keeps its columns for backward, 0 when one image's buffer is reused. */
static void SUF(conv_forward)(const conv_geom *g, const T *x, const T *wt, const T *b, T *y,
                              T *cols, int64_t cols_step, int64_t n0, int64_t n1)
{
    for (int64_t n = n0; n < n1; n++) {
        const T *xn = x + n * g->c * g->h * g->w;
        T *yn = y + n * g->o * g->npix;
        T *cn = cols + n * cols_step;
        SUF(im2col)(g, xn, cn);
        /* yn (O, npix) = W (O, rows) @ cols (rows, npix) */
        SUF(GEMM)
        (false, false, g->o, g->npix, g->rows, 1, wt, g->rows, cn, g->npix, 0, yn, g->npix);
        for (int64_t o = 0; b && o < g->o; o++)
            SUF(add_scalar)(yn + o * g->npix, b[o], g->npix);
    }
}
/* Images [n0, n1), their weight and bias gradients added into gw and gb
 * in image order.  With cols_step > 0, cols holds forward's columns of
 * every image (not rebuilt); gcols then is a separate one-image buffer, so
 * a second backward after one forward still finds them.  With cols_step 0,
 * gcols == cols. */
static void SUF(conv_backward)(const conv_geom *g, const T *x, const T *wt, const T *gy, T *gw,
                               T *gb, T *gx, T *cols, int64_t cols_step, T *gcols, int64_t n0,
                               int64_t n1)
{
    for (int64_t n = n0; n < n1; n++) {
        const T *gyn = gy + n * g->o * g->npix;
        T *cn = cols + n * cols_step;
        if (!cols_step)
            SUF(im2col)(g, x + n * g->c * g->h * g->w, cn);
        /* gW (O, rows) += gyn (O, npix) @ cols^T (npix, rows) */
        SUF(GEMM)
        (false, true, g->o, g->rows, g->npix, 1, gyn, g->npix, cn, g->npix, 1, gw, g->rows);
        /* pixels outer: the O sums are independent chains that overlap,
         * each still added in pixel order (o outer waited on one chain). */
        for (int64_t i = 0; gb && i < g->npix; i++)
            for (int64_t o = 0; o < g->o; o++)
                gb[o] += gyn[o * g->npix + i];
        if (!gx)
            continue;
        /* gcols (rows, npix) = W^T (rows, O) @ gyn (O, npix), over cols */
        SUF(GEMM)
        (true, false, g->rows, g->npix, g->o, 1, wt, g->rows, gyn, g->npix, 0, gcols, g->npix);
        SUF(col2im)(g, gcols, gx + n * g->c * g->h * g->w);
    }
}
