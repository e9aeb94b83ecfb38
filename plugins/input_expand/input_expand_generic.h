/* plugins/input_expand/input_expand_generic.h — the expansion kernels of
 * input_expand.c for one element type.  Not a header: input_expand.c
 * includes it once per type after defining
 *   T          the element type (float, double), and
 *   SUF(name)  name with the type's suffix (image_fwd -> image_fwd_f32);
 * both are #undef'd at the end.  No include guard, on purpose. */

/* Image kernels.  x, gx are (planes, H, W); y, gy are (planes, H*K, W*K). */
static void SUF(image_fwd)(const T *x, T *y, int64_t planes, int64_t H, int64_t W, int64_t K,
                           int64_t off, T fill)
{
    const int64_t HK = H * K, WK = W * K;
    for (int64_t i = 0; i < planes * HK * WK; i++)
        y[i] = fill;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < H; i++) {
            T *row = y + (p * HK + K * i + off) * WK + off;
            const T *src = x + (p * H + i) * W;
            for (int64_t j = 0; j < W; j++)
                row[K * j] = src[j];
        }
}
static void SUF(image_bwd)(const T *gy, T *gx, int64_t planes, int64_t H, int64_t W, int64_t K,
                           int64_t off)
{
    const int64_t HK = H * K, WK = W * K;
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < H; i++) {
            const T *row = gy + (p * HK + K * i + off) * WK + off;
            T *dst = gx + (p * H + i) * W;
            for (int64_t j = 0; j < W; j++)
                dst[j] = row[K * j];
        }
}

/* Mask projection (expand_project): x, y (or gy, gx) are (planes, HK, WK);
 * positions on the expansion grid (r % K == off and q % K == off) pass,
 * every other position becomes `fill` forward and gets no gradient. */
static void SUF(project)(const T *x, T *y, int64_t planes, int64_t HK, int64_t WK, int64_t K,
                         int64_t off, T fill)
{
    for (int64_t p = 0; p < planes; p++)
        for (int64_t r = 0; r < HK; r++) {
            const T *src = x + (p * HK + r) * WK;
            T *dst = y + (p * HK + r) * WK;
            const bool on_row = r % K == off;
            for (int64_t q = 0; q < WK; q++)
                dst[q] = on_row && q % K == off ? src[q] : fill;
        }
}

/* Vector kernels.  x, gx are (N, F); y, gy are (N, F + E). */
static void SUF(vector_fwd)(const T *x, T *y, int64_t N, int64_t F, int64_t E,
                            expand_place place, T fill)
{
    const int64_t FE = F + E;
    for (int64_t n = 0; n < N; n++) {
        T *row = y + n * FE;
        for (int64_t i = 0; i < FE; i++)
            row[i] = fill;
        for (int64_t j = 0; j < F; j++)
            row[vector_position(place, j, F, E)] = x[n * F + j];
    }
}
static void SUF(vector_bwd)(const T *gy, T *gx, int64_t N, int64_t F, int64_t E,
                            expand_place place)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < F; j++)
            gx[n * F + j] = gy[n * (F + E) + vector_position(place, j, F, E)];
}

#undef T
#undef SUF
