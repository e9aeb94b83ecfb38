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
extern const sl_module_type eq_gconv_mixed_type;
extern const sl_module_type eq_p4conv_type;
extern const sl_module_type eq_p4pool_type;
extern const sl_module_type eq_relaxed_gconv_type;
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

static inline int64_t eq_gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A linear map y = W x + b whose dense W (rows, cols) and b (rows) are
 * tied to the module's parameters 0 (the weight, any shape) and 1 (the
 * bias): W's entry e is weight[table[e]], b[r] = bias[bias_of_row[r]]
 * (tied.c).  Forward builds W in scratch slot EQ_TIED_DENSE and runs one
 * GEMM; backward forms the dense gradient in slot EQ_TIED_DGRAD (so W
 * stays valid for a second backward) and folds it onto the parameters
 * through the table.  Inputs are contiguous (B, cols) in effect. */
enum { EQ_TIED_DENSE = 0, EQ_TIED_DGRAD = 1 };
typedef struct eq_tied {
    int64_t rows, cols;
    int64_t *table;       /* rows * cols, owned */
    int64_t *bias_of_row; /* rows, owned; NULL: no bias */
} eq_tied;

/* Allocates the tables (contents for the caller to fill). */
int eq_tied_init(eq_tied *t, int64_t rows, int64_t cols, bool bias);
void eq_tied_free(eq_tied *t);
int eq_tied_forward(sl_module *m, const eq_tied *t, const sl_tensor *in, sl_tensor *out);
int eq_tied_backward(sl_module *m, const eq_tied *t, const sl_tensor *in,
                     const sl_tensor *grad_out, sl_tensor *grad_in);
/* The same two steps for a dense W (rows, cols) the caller has built in
 * slot EQ_TIED_DENSE by other means (relaxed_gconv.c): y = x Wᵀ + b; and
 * gx = g W, bias gradients, and the dense gradient gᵀ x, left in slot
 * EQ_TIED_DGRAD at *G for the caller to fold. */
int eq_dense_forward(sl_module *m, const eq_tied *t, const void *W, const sl_tensor *in,
                     sl_tensor *out);
int eq_dense_backward(sl_module *m, const eq_tied *t, const sl_tensor *in,
                      const sl_tensor *grad_out, sl_tensor *grad_in, void **G);
/* dst[e] = w[table[e]] and gw[table[e]] += src[e], for e < n. */
void eq_tied_expand(sl_dtype dt, const void *w, const int64_t *table, int64_t n, void *dst);
void eq_tied_fold(sl_dtype dt, const void *src, const int64_t *table, int64_t n, void *gw);

/* The orbit size of one side ("in" or "out") of a C_N layer from its
 * options <side>_rep and <side>_subgroup, validated; errors name `owner`
 * (gconv.c). */
int eq_orbit_size(const sl_options *opt, const char *owner, const char *side, int64_t group,
                  int64_t *p);
/* A C_N layer's shapes: input (B, cin p) or (B, cin, p), output of the
 * input's rank, (B, cout q) or (B, cout, q); errors name `owner`. */
int eq_cyclic_shape(const char *owner, int64_t cin, int64_t p, int64_t cout, int64_t q, int ndim,
                    const int64_t *in, int *out_ndim, int64_t *out);

/* Fills the tables of t for one pair of blocks of a C_N group convolution
 * (gconv.c): output rows [row0, row0 + co q) — co channels on orbits of q —
 * from input columns [col0, col0 + ci p), entry ((o, b), (c, a)) tied to
 * weight[base + (o ci + c) d + (b - a) mod d], d = gcd(p, q), and row (o, b)
 * to bias[ch0 + o].  Returns the block's weight entries, co ci d. */
int64_t eq_cyclic_block(eq_tied *t, int64_t row0, int64_t col0, int64_t co, int64_t q,
                        int64_t ci, int64_t p, int64_t base, int64_t ch0);

/* Relaxation (relax.c; the `relax` callback of plugin.h).  A layer that is
 * the affine map y = W vec(x) + b (W (rows, cols) and b (rows) or NULL, in
 * the module's dtype) relaxes into `linear` with that W and b, with a
 * `reshape` before it when the input (ndim, in) is not (B, cols) and one
 * after it when m's output for that input is not (B, rows). */
int eq_relax_affine(sl_module *m, int ndim, const int64_t *in, const sl_tensor *W,
                    const sl_tensor *b, sl_relax *r);
/* The same with b[row] = bias[t->bias_of_row[row]] (parameter 1), W given
 * as a raw (rows, cols) buffer; and with W the table's expansion of
 * parameter 0 (gconv, gconv_mixed). */
int eq_relax_dense(sl_module *m, int ndim, const int64_t *in, const eq_tied *t, const void *W,
                   sl_relax *r);
int eq_tied_relax(sl_module *m, int ndim, const int64_t *in, const eq_tied *t, sl_relax *r);
/* Appends reshape { shape = trailing extents of (ndim, shape) }. */
int eq_relax_reshape(sl_relax *r, int ndim, const int64_t *shape);

/* ---- shared by the probes (hessian.c, equivariance_error.c) ---- */

/* The rows [0, batch) of d (batch <= 0 or past the end: all): x as a new
 * contiguous f64 copy, y as a view; the caller releases both (hessian.c). */
int eq_take_rows(const sl_dataset *d, int64_t batch, sl_tensor *x, sl_tensor *y);

/* The equivariance_error probe (equivariance_error.c). */
extern const sl_probe_type eq_equivariance_error_type;

#endif
