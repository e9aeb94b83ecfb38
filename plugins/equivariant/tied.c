/* plugins/equivariant/tied.c — a linear layer whose dense matrix is tied to
 * a smaller parameter vector through an index table: what gconv and
 * gconv_mixed compute, and the filter expansion of p4conv (eq.h). */
#include "config.h"

#include <stdlib.h>

#include "eq.h"

void eq_tied_expand(sl_dtype dt, const void *w, const int64_t *table, int64_t n, void *dst)
{
    for (int64_t e = 0; e < n; e++)
        eq_st(dst, dt, e, eq_ld(w, dt, table[e]));
}

void eq_tied_fold(sl_dtype dt, const void *src, const int64_t *table, int64_t n, void *gw)
{
    for (int64_t e = 0; e < n; e++)
        eq_add(gw, dt, table[e], eq_ld(src, dt, e));
}

int eq_tied_init(eq_tied *t, int64_t rows, int64_t cols, bool bias)
{
    *t = (eq_tied){.rows = rows, .cols = cols};
    t->table = malloc((size_t)(rows * cols) * sizeof *t->table);
    t->bias_of_row = bias ? malloc((size_t)rows * sizeof *t->bias_of_row) : NULL;
    if (!t->table || (bias && !t->bias_of_row)) {
        eq_tied_free(t);
        return sl_error(SL_ENOMEM, "equivariant: out of memory for a %lld x %lld weight table",
                        (long long)rows, (long long)cols);
    }
    return SL_OK;
}

void eq_tied_free(eq_tied *t)
{
    free(t->table);
    free(t->bias_of_row);
    t->table = NULL;
    t->bias_of_row = NULL;
}

int eq_dense_forward(sl_module *m, const eq_tied *t, const void *W, const sl_tensor *in,
                     sl_tensor *out)
{
    const sl_dtype dt = in->dtype;
    const int64_t B = in->shape[0], rows = t->rows, cols = t->cols;
    /* y (B, rows) = x (B, cols) Wᵀ */
    eq_gemm(dt, false, true, B, rows, cols, 1.0, in->data, cols, W, cols, 0.0, out->data, rows);
    if (t->bias_of_row) {
        const void *bias = sl_module_param(m, 1)->data;
        for (int64_t i = 0; i < B; i++)
            for (int64_t r = 0; r < rows; r++)
                eq_add(out->data, dt, i * rows + r, eq_ld(bias, dt, t->bias_of_row[r]));
    }
    return SL_OK;
}

int eq_tied_forward(sl_module *m, const eq_tied *t, const sl_tensor *in, sl_tensor *out)
{
    void *W;
    SL_TRY(eq_scratch(m, EQ_TIED_DENSE, t->rows * t->cols, &W));
    eq_tied_expand(in->dtype, sl_module_param(m, 0)->data, t->table, t->rows * t->cols, W);
    return eq_dense_forward(m, t, W, in, out);
}

int eq_dense_backward(sl_module *m, const eq_tied *t, const sl_tensor *in,
                      const sl_tensor *grad_out, sl_tensor *grad_in, void **G)
{
    const sl_dtype dt = in->dtype;
    const int64_t B = in->shape[0], rows = t->rows, cols = t->cols;
    void *W;
    SL_TRY(eq_scratch(m, EQ_TIED_DENSE, rows * cols, &W)); /* forward's matrix */
    SL_TRY(eq_scratch(m, EQ_TIED_DGRAD, rows * cols, G));
    if (grad_in) /* gx (B, cols) = g (B, rows) W */
        eq_gemm(dt, false, false, B, cols, rows, 1.0, grad_out->data, rows, W, cols, 0.0,
                grad_in->data, cols);
    /* G (rows, cols) = gᵀ x */
    eq_gemm(dt, true, false, rows, cols, B, 1.0, grad_out->data, rows, in->data, cols, 0.0, *G,
            cols);
    if (t->bias_of_row) {
        void *gb = sl_module_grad(m, 1)->data;
        for (int64_t r = 0; r < rows; r++) {
            double acc = 0;
            for (int64_t i = 0; i < B; i++)
                acc += eq_ld(grad_out->data, dt, i * rows + r);
            eq_add(gb, dt, t->bias_of_row[r], acc);
        }
    }
    return SL_OK;
}

int eq_tied_backward(sl_module *m, const eq_tied *t, const sl_tensor *in,
                     const sl_tensor *grad_out, sl_tensor *grad_in)
{
    void *G;
    SL_TRY(eq_dense_backward(m, t, in, grad_out, grad_in, &G));
    /* each dense entry's gradient onto its parameter */
    eq_tied_fold(in->dtype, G, t->table, t->rows * t->cols, sl_module_grad(m, 0)->data);
    return SL_OK;
}
