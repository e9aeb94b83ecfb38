/* core/blas.c — the one file that talks to BLAS and LAPACK.  Everything
 * else calls these wrappers (include/symlab/ops.h), so swapping the BLAS,
 * counting flops or adding a fallback touches only this file. */
#include "config.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "internal.h"

/* OpenBLAS's threading control (declared in its cblas.h on most systems,
 * but not on all; the symbols exist in every OpenBLAS). */
void openblas_set_num_threads(int num_threads);

/* OpenBLAS runs on the calling thread, always: symlab's pool (parallel.c)
 * splits the GEMMs large enough to gain (below) and runs the rest of a
 * step too.  OpenBLAS's own workers spin for a long time after each call
 * (against symlab's loops, and against other processes of a sweep), and
 * its default thread count depends on the machine and the environment
 * (OPENBLAS_NUM_THREADS), which made results differ in the last bits
 * between runs with and without --threads.  Set once at load time, before
 * any GEMM, so the default is one thread whatever the environment says. */
__attribute__((constructor)) static void blas_single_threaded(void)
{
    openblas_set_num_threads(1);
}

void sl_set_threads(int n)
{
    sl_pool_set_threads(n < 1 ? 1 : n);
    openblas_set_num_threads(1);
}

int sl_get_threads(void) { return sl_pool_threads(); }

/* ---- GEMMs split over the pool ------------------------------------------
 *
 * C (m x n) is cut into column blocks (n >= m) or row blocks of GEMM_BLOCK,
 * whole blocks per part, each part one single-threaded GEMM on its slice of
 * op(A) or op(B) and C.  Every element of C is computed by one call over
 * the full k, so the split changes nothing but which call computes it; the
 * partition depends only on the shape and the thread count (parallel.h).
 * A part must be worth GEMM_PART_MACS multiply-adds (~40 µs at one core's
 * ~100 GFLOP/s); smaller GEMMs run whole on the calling thread.  Smaller
 * parts do not pay on the 2-core virtual machines we measure on: with
 * 2^19 (~10 µs) the 784-256-256-10 MLP trained 5-8 % slower on 2 threads
 * than on 1 at batch 16 (the hand-off, and each part packing the shared
 * operand again); with 2^21 it runs even, and the wide MLP still gains
 * 1.5-1.7x (docs/performance.md). */
#define GEMM_BLOCK 16
#define GEMM_PART_MACS (1 << 21)

typedef struct gemm_job {
    bool f64, trans_a, trans_b, split_n;
    int64_t m, n, k, lda, ldb, ldc;
    double alpha, beta;
    const void *a, *b;
    void *c;
} gemm_job;

static void gemm_call(const gemm_job *j, int64_t m, int64_t n, size_t a_off, size_t b_off,
                      size_t c_off)
{
    CBLAS_TRANSPOSE ta = j->trans_a ? CblasTrans : CblasNoTrans;
    CBLAS_TRANSPOSE tb = j->trans_b ? CblasTrans : CblasNoTrans;
    if (j->f64)
        cblas_dgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)j->k, j->alpha,
                    (const double *)j->a + a_off, (blasint)j->lda, (const double *)j->b + b_off,
                    (blasint)j->ldb, j->beta, (double *)j->c + c_off, (blasint)j->ldc);
    else
        cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)j->k,
                    (float)j->alpha, (const float *)j->a + a_off, (blasint)j->lda,
                    (const float *)j->b + b_off, (blasint)j->ldb, (float)j->beta,
                    (float *)j->c + c_off, (blasint)j->ldc);
}

static void gemm_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const gemm_job *j = ctx;
    int64_t dim = j->split_n ? j->n : j->m;
    int64_t i0 = begin * GEMM_BLOCK, i1 = end * GEMM_BLOCK < dim ? end * GEMM_BLOCK : dim;
    if (j->split_n) /* columns i0..i1 of op(B) and C */
        gemm_call(j, j->m, i1 - i0, 0, (size_t)(j->trans_b ? i0 * j->ldb : i0), (size_t)i0);
    else /* rows i0..i1 of op(A) and C */
        gemm_call(j, i1 - i0, j->n, (size_t)(j->trans_a ? i0 : i0 * j->lda), 0,
                  (size_t)(i0 * j->ldc));
    (void)part;
}

static void gemm(gemm_job *j)
{
    j->split_n = j->n >= j->m;
    int64_t dim = j->split_n ? j->n : j->m, other = j->split_n ? j->m : j->n;
    int64_t blocks = (dim + GEMM_BLOCK - 1) / GEMM_BLOCK;
    double block_macs = (double)GEMM_BLOCK * (double)other * (double)j->k;
    int64_t grain = block_macs >= GEMM_PART_MACS ? 1 : (int64_t)(GEMM_PART_MACS / block_macs) + 1;
    /* At most one part per thread: a narrower GEMM packs its operands
     * again for less work, which the finer parts of other loops do not. */
    int64_t per_thread = (blocks + sl_get_threads() - 1) / sl_get_threads();
    grain = grain > per_thread ? grain : per_thread;
    if (sl_parallel_parts(blocks, grain) <= 1)
        gemm_call(j, j->m, j->n, 0, 0, 0);
    else
        sl_parallel_for(blocks, grain, gemm_part, j);
}

void sl_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc)
{
    gemm(&(gemm_job){.trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k,
                     .alpha = alpha, .a = a, .lda = lda, .b = b, .ldb = ldb, .beta = beta,
                     .c = c, .ldc = ldc});
}

void sl_dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
              const double *a, int64_t lda, const double *b, int64_t ldb, double beta, double *c,
              int64_t ldc)
{
    gemm(&(gemm_job){.f64 = true, .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n,
                     .k = k, .alpha = alpha, .a = a, .lda = lda, .b = b, .ldb = ldb,
                     .beta = beta, .c = c, .ldc = ldc});
}

/* A 2-d matrix usable by row-major BLAS: unit stride in the last dimension
 * and a leading dimension of at least the row length. */
static bool blas_matrix(const sl_tensor *t)
{
    return t->ndim == 2 && (t->stride[1] == 1 || t->shape[1] <= 1) &&
           t->stride[0] >= (t->shape[1] > 1 ? t->shape[1] : 1);
}

int sl_gemm(bool trans_a, bool trans_b, double alpha, const sl_tensor *a, const sl_tensor *b,
            double beta, sl_tensor *c)
{
    if (a->dtype != b->dtype || a->dtype != c->dtype || (a->dtype != SL_F32 && a->dtype != SL_F64))
        return sl_error(SL_EDTYPE, "gemm: dtypes %s, %s, %s (need one of f32, f64)",
                        sl_dtype_name(a->dtype), sl_dtype_name(b->dtype), sl_dtype_name(c->dtype));
    if (!blas_matrix(a) || !blas_matrix(b) || !blas_matrix(c))
        return sl_error(SL_ESHAPE, "gemm: operands must be 2-d with unit inner stride");
    int64_t m = trans_a ? a->shape[1] : a->shape[0];
    int64_t k = trans_a ? a->shape[0] : a->shape[1];
    int64_t kb = trans_b ? b->shape[1] : b->shape[0];
    int64_t n = trans_b ? b->shape[0] : b->shape[1];
    if (k != kb || c->shape[0] != m || c->shape[1] != n) {
        char sa[64], sb[64], sc[64];
        return sl_error(SL_ESHAPE, "gemm: %s%s @ %s%s does not fit %s",
                        sl_shape_str(2, a->shape, sa, sizeof sa), trans_a ? "^T" : "",
                        sl_shape_str(2, b->shape, sb, sizeof sb), trans_b ? "^T" : "",
                        sl_shape_str(2, c->shape, sc, sizeof sc));
    }
    if (m == 0 || n == 0)
        return SL_OK;
    int64_t lda = a->stride[0] > 0 ? a->stride[0] : 1, ldb = b->stride[0] > 0 ? b->stride[0] : 1,
            ldc = c->stride[0] > 0 ? c->stride[0] : 1;
    if (k == 0)
        return sl_scale(beta, c);
    if (a->dtype == SL_F32)
        sl_sgemm(trans_a, trans_b, m, n, k, (float)alpha, a->data, lda, b->data, ldb, (float)beta,
                 c->data, ldc);
    else
        sl_dgemm(trans_a, trans_b, m, n, k, alpha, a->data, lda, b->data, ldb, beta, c->data, ldc);
    return SL_OK;
}

/* Checks that vector operands are contiguous reals of one dtype and size. */
static int check_vectors(const char *op, const sl_tensor *x, const sl_tensor *y)
{
    if (x->dtype != SL_F32 && x->dtype != SL_F64)
        return sl_error(SL_EDTYPE, "%s: dtype %s (need f32 or f64)", op, sl_dtype_name(x->dtype));
    if (!sl_tensor_is_contiguous(x) || (y && !sl_tensor_is_contiguous(y)))
        return sl_error(SL_EINVAL, "%s: operands must be contiguous", op);
    if (y && (y->dtype != x->dtype || sl_tensor_numel(y) != sl_tensor_numel(x)))
        return sl_error(SL_ESHAPE, "%s: %lld %s elements against %lld %s elements", op,
                        (long long)sl_tensor_numel(x), sl_dtype_name(x->dtype),
                        (long long)sl_tensor_numel(y), sl_dtype_name(y->dtype));
    return SL_OK;
}

int sl_axpy(double alpha, const sl_tensor *x, sl_tensor *y)
{
    SL_TRY(check_vectors("axpy", x, y));
    blasint n = (blasint)sl_tensor_numel(x);
    if (x->dtype == SL_F32)
        cblas_saxpy(n, (float)alpha, x->data, 1, y->data, 1);
    else
        cblas_daxpy(n, alpha, x->data, 1, y->data, 1);
    return SL_OK;
}

int sl_scale(double alpha, sl_tensor *x)
{
    SL_TRY(check_vectors("scale", x, NULL));
    int64_t n = sl_tensor_numel(x);
    /* BLAS scal with alpha == 0 may leave NaN in place; scaling by zero
     * means "set to zero" here, as beta == 0 does in gemm. */
    if (alpha == 0.0) {
        if (n > 0)
            memset(x->data, 0, sl_tensor_nbytes(x));
    } else if (x->dtype == SL_F32) {
        cblas_sscal((blasint)n, (float)alpha, x->data, 1);
    } else {
        cblas_dscal((blasint)n, alpha, x->data, 1);
    }
    return SL_OK;
}

int sl_dot(const sl_tensor *x, const sl_tensor *y, double *out)
{
    SL_TRY(check_vectors("dot", x, y));
    blasint n = (blasint)sl_tensor_numel(x);
    /* f32 dot products accumulate in double (dsdot) so that long parameter
     * vectors do not lose the small terms. */
    *out = x->dtype == SL_F32 ? cblas_dsdot(n, x->data, 1, y->data, 1)
                              : cblas_ddot(n, x->data, 1, y->data, 1);
    return SL_OK;
}

int sl_norm2(const sl_tensor *x, double *out)
{
    SL_TRY(check_vectors("norm2", x, NULL));
    blasint n = (blasint)sl_tensor_numel(x);
    if (x->dtype == SL_F32) {
        double d = cblas_dsdot(n, x->data, 1, x->data, 1);
        *out = sqrt(d);
    } else {
        *out = cblas_dnrm2(n, x->data, 1);
    }
    return SL_OK;
}

int sl_svd(const sl_tensor *a, sl_tensor *u, sl_tensor *s, sl_tensor *vt)
{
    if (a->dtype != SL_F64)
        return sl_error(SL_EDTYPE, "svd: dtype %s (need f64)", sl_dtype_name(a->dtype));
    if (a->ndim != 2)
        return sl_error(SL_ESHAPE, "svd: need a 2-d matrix, got %d-d", a->ndim);
    int64_t m = a->shape[0], n = a->shape[1], r = m < n ? m : n;
    sl_tensor work = {0}, uu = {0}, ss = {0}, vv = {0}, superb = {0};
    int rc = SL_OK;
    /* LAPACK destroys its input: work on a contiguous copy. */
    if ((rc = sl_tensor_alloc(&work, SL_F64, 2, a->shape)) < 0 ||
        (rc = sl_tensor_copy(&work, a)) < 0 ||
        (rc = sl_tensor_alloc(&ss, SL_F64, 1, (int64_t[]){r})) < 0 ||
        (rc = sl_tensor_alloc(&superb, SL_F64, 1, (int64_t[]){r > 1 ? r - 1 : 1})) < 0)
        goto out;
    if (u && (rc = sl_tensor_alloc(&uu, SL_F64, 2, (int64_t[]){m, r})) < 0)
        goto out;
    if (vt && (rc = sl_tensor_alloc(&vv, SL_F64, 2, (int64_t[]){r, n})) < 0)
        goto out;
    if (r > 0) {
        char job = (u || vt) ? 'S' : 'N';
        double dummy = 0.0;
        lapack_int info = LAPACKE_dgesvd(
            LAPACK_ROW_MAJOR, u ? job : 'N', vt ? job : 'N', (lapack_int)m, (lapack_int)n,
            work.data, (lapack_int)n, ss.data, u ? uu.data : &dummy, (lapack_int)(u ? r : 1),
            vt ? vv.data : &dummy, (lapack_int)(vt ? n : 1), superb.data);
        if (info != 0) {
            rc = info > 0 ? sl_error(SL_ENUMERIC, "svd: did not converge (%d superdiagonals)",
                                     (int)info)
                          : sl_error(SL_EINVAL, "svd: argument %d invalid", (int)-info);
            goto out;
        }
    }
    *s = ss;
    ss = (sl_tensor){0};
    if (u) {
        *u = uu;
        uu = (sl_tensor){0};
    }
    if (vt) {
        *vt = vv;
        vv = (sl_tensor){0};
    }
out:
    sl_tensor_release(&work);
    sl_tensor_release(&uu);
    sl_tensor_release(&ss);
    sl_tensor_release(&vv);
    sl_tensor_release(&superb);
    return rc;
}
