/* symlab/ops.h — linear algebra and vector operations.
 *
 * The only door to BLAS and LAPACK: core/blas.c is the one file that
 * includes cblas.h and lapacke.h; every layer, optimizer and plugin calls
 * these wrappers.  Real dtypes f32 and f64 unless a function says otherwise.
 * Matrices are row-major; a 2-d tensor argument must have unit stride in its
 * last dimension (its leading dimension is stride[0]).
 */
#ifndef SYMLAB_OPS_H
#define SYMLAB_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) @ op(B) + beta * C, where op(X) is X or its transpose.
 * A, B, C are 2-d tensors of one dtype (f32 or f64).  With beta == 0, C is
 * overwritten (NaN in C does not propagate).  Errors: SL_ESHAPE naming the
 * three shapes, SL_EDTYPE. */
SL_API int sl_gemm(bool trans_a, bool trans_b, double alpha, const sl_tensor *a,
                   const sl_tensor *b, double beta, sl_tensor *c);

/* Raw row-major GEMM on pointers, for kernels that walk sub-blocks (conv2d).
 * C(m x n) = alpha * op(A) op(B) + beta * C with op(A) m x k, op(B) k x n. */
SL_API void sl_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc);
SL_API void sl_dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                     double alpha, const double *a, int64_t lda, const double *b,
                     int64_t ldb, double beta, double *c, int64_t ldc);

/* Vector operations over all elements of contiguous tensors of one dtype. */
SL_API int sl_axpy(double alpha, const sl_tensor *x, sl_tensor *y); /* y += alpha x */
SL_API int sl_scale(double alpha, sl_tensor *x);                    /* x *= alpha */
SL_API int sl_dot(const sl_tensor *x, const sl_tensor *y, double *out);
SL_API int sl_norm2(const sl_tensor *x, double *out);               /* Euclidean norm */

/* Thin singular value decomposition of an m x n f64 matrix A (unchanged):
 * A = U diag(S) Vt with U m x r, S r, Vt r x n, r = min(m, n), S descending.
 * u, s, vt are allocated here (caller releases them); u or vt may be NULL
 * when only singular values are wanted.  Errors: SL_EDTYPE, SL_ENUMERIC if
 * LAPACK does not converge. */
SL_API int sl_svd(const sl_tensor *a, sl_tensor *u, sl_tensor *s, sl_tensor *vt);

/* Threads of symlab's pool (symlab/parallel.h), which runs its own loops
 * and splits large GEMMs (>= 1; default 1).  BLAS itself always runs on
 * the calling thread, whatever OPENBLAS_NUM_THREADS says.  The same seed
 * and the same thread count give bit-identical results.  Not while a
 * parallel loop runs. */
SL_API void sl_set_threads(int n);
SL_API int sl_get_threads(void);

#ifdef __cplusplus
}
#endif
#endif
