/* plugins/equivariant/eq.h — shared by the files of the equivariant plugin
 * (internal: nothing here is exported; the plugin exports only
 * sl_plugin_entry). */
#ifndef SYMLAB_PLUGIN_EQ_H
#define SYMLAB_PLUGIN_EQ_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

extern const sl_module_type eq_deepsets_type;
extern const sl_module_type eq_set_pool_type;
extern const sl_module_type eq_gconv_type;
extern const sl_module_type eq_p4conv_type;
extern const sl_module_type eq_p4pool_type;
extern const sl_probe_type eq_hessian_type;

/* The pooling modules (set_pool, p4pool): their option "reduce" chooses a
 * mean ("mean") or another reduction; the state holds which (deepsets.c). */
int eq_reduce_create(sl_module *m, const sl_options *opt);
void eq_reduce_destroy(sl_module *m);
static inline bool eq_reduce_mean(const sl_module *m)
{
    return *(const bool *)sl_module_state(m);
}

/* Element i of a contiguous f32 or f64 buffer, as double, and back.  The
 * element loops of these layers are O(size of the activation); the O(size x
 * width) work goes through eq_gemm. */
static inline double eq_ld(const void *p, sl_dtype dt, int64_t i)
{
    return dt == SL_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline void eq_st(void *p, sl_dtype dt, int64_t i, double v)
{
    if (dt == SL_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}
static inline void eq_add(void *p, sl_dtype dt, int64_t i, double v)
{
    if (dt == SL_F32)
        ((float *)p)[i] += (float)v;
    else
        ((double *)p)[i] += v;
}

/* Row-major C (m x n) = alpha op(A) op(B) + beta C on raw pointers of dtype
 * dt (sl_sgemm / sl_dgemm). */
static inline void eq_gemm(sl_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                           double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                           double beta, void *c, int64_t ldc)
{
    if (dt == SL_F32)
        sl_sgemm(ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    else
        sl_dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* One contiguous scratch slot of `count` elements of dt (module.h). */
static inline int eq_scratch(sl_module *m, int slot, int64_t count, void **ptr)
{
    size_t n = (size_t)(count > 0 ? count : 1) * sl_dtype_size(sl_module_dtype(m));
    return sl_module_scratch(m, slot, n, ptr);
}

#endif
