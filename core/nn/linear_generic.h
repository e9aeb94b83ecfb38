/* core/nn/linear_generic.h — the bias loop of linear.c, written once against
 * T, I and SUF(name) and compiled for float and for double: linear.c
 * includes it through generic_real.h (see there).  Not a header; no include
 * guard.  */

/* dst row r += src row r for r < rows, rows of n elements `dst_step` and
 * `src_step` apart: with dst_step 0 the column sums of src (the bias
 * gradient), with src_step 0 one row added to every row (the bias).  Each
 * element's additions happen in row order, as in a plain nested loop, so
 * vectorising across j changes no result; the head of whole 16-element
 * vectors is there because GCC's -O2 cost model vectorises only a loop
 * that needs no scalar epilogue. */
SL_HOT_CLONES static void SUF(add_rows)(T *restrict dst, int64_t dst_step,
                                        const T *restrict src, int64_t src_step, int64_t rows,
                                        int64_t n)
{
    int64_t head = n & ~(int64_t)15;
    for (int64_t r = 0; r < rows; r++) {
        T *restrict d = dst + r * dst_step;
        const T *restrict s = src + r * src_step;
        int64_t j = 0;
        for (; j < head; j++)
            d[j] += s[j];
        for (; j < n; j++)
            d[j] += s[j];
    }
}
