/* core/data/batcher_generic.h — the converting row gather of batcher.c for
 * one pair of element types.  Not a header: batcher.c includes it once per
 * conversion after defining
 *   TD, TS     the destination and source element types, and
 *   SUF(name)  name with the conversion's suffix (gather -> gather_f32_to_f64);
 * all three are #undef'd at the end.  No include guard, on purpose. */

/* dst row i = src row rows[i], converted element by element. */
static void SUF(gather)(TD *dst, const TS *src, const int64_t *rows, int64_t n, int64_t width)
{
    for (int64_t i = 0; i < n; i++) {
        const TS *s = src + rows[i] * width;
        TD *d = dst + i * width;
        for (int64_t j = 0; j < width; j++)
            d[j] = (TD)s[j];
    }
}

#undef TD
#undef TS
#undef SUF
