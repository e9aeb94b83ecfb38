/* plugins/symmetry_metrics/order.h — the arithmetic of the order
 * parameters on plain f64 arrays: ranks of a spectrum, neural collapse
 * (NC1) of labelled features, linear CKA of two Gram matrices.
 *
 * Nothing here knows about models: the probe and the hook (metrics.h) pull
 * weights and activations out of a model and call these; the tests call
 * them on hand-made inputs.  Matrices are row-major.  Functions that can
 * fail return SL_OK or a negative sl_status after sl_error().
 */
#ifndef SYMLAB_METRICS_ORDER_H
#define SYMLAB_METRICS_ORDER_H

#include <stdint.h>

/* ---- ranks of a spectrum s (k values, descending, >= 0; an SVD's) ---- */

/* Numerical rank: #{i : s_i > max(atol, rtol * s_0)} (numpy's
 * matrix_rank convention with explicit tolerances).  0 for k = 0 or s = 0. */
int64_t om_rank(const double *s, int64_t k, double atol, double rtol);
/* Stable rank sum s_i^2 / s_0^2; 0 for s = 0. */
double om_stable_rank(const double *s, int64_t k);
/* Entropy effective rank exp(-sum p_i log p_i), p_i = s_i / sum s (Roy &
 * Vetterli); 0 for s = 0. */
double om_effective_rank(const double *s, int64_t k);

/* ---- neural collapse ---- */

/* NC1 = tr(Sigma_W Sigma_B^+) / C of features h (n, d) with labels y (n,
 * values >= 0):
 *   C        the number of distinct labels present (>= 2, else SL_EINVAL);
 *   mu_c     the mean of class c's rows; mu_G = (1/C) sum_c mu_c;
 *   Sigma_W  (1/n) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T;
 *   Sigma_B  (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)^T = M M^T / C, M the
 *            (d, C) matrix of centred class means;
 *   Sigma_B^+ its pseudo-inverse from the SVD of M (sl_svd), keeping the
 *            singular values above max(C, d) * DBL_EPSILON * s_0 (numpy's
 *            default rank cut-off), so tr(Sigma_W Sigma_B^+) / C =
 *            sum_k v_k^T Sigma_W v_k / s_k^2 over the kept left singular
 *            vectors v_k of M.
 * With balanced classes this is Papyan, Han and Donoho's NC1.  *classes
 * receives C (may be NULL).  Errors: SL_EINVAL (fewer than two classes, a
 * negative label), SL_ENOMEM, SL_ENUMERIC (the SVD). */
int om_nc1(const double *h, const int64_t *y, int64_t n, int64_t d, double *nc1,
           int64_t *classes);

/* ---- linear CKA ---- */

/* K += X X^T for a block of columns X (n, p) with row stride ldx (>= p):
 * the uncentred Gram matrix K (n, n) is built up block by block, so
 * features of any width never need one big f64 copy. */
void om_gram_add(const double *x, int64_t n, int64_t p, int64_t ldx, double *K);
/* K <- H K H, H = I - 11^T/n: the Gram matrix of the column-centred
 * features. */
void om_gram_center(double *K, int64_t n);
/* Linear CKA <K, L>_F / sqrt(<K, K>_F <L, L>_F) of two CENTRED Gram
 * matrices (n, n) of one batch (Kornblith et al. 2019); NaN when either is
 * zero (constant features: alignment undefined). */
double om_cka(const double *K, const double *L, int64_t n);
/* Singular values of the centred features whose centred Gram matrix is K
 * (n, n): sqrt of K's eigenvalues, descending, into s (n values), from
 * sl_svd of the symmetric K.  Eigenvalues below n * DBL_EPSILON * (the
 * largest) are rounding and give 0: singular values under about
 * sqrt(n * eps) ~ 1e-7 of the largest are not resolved this way.  Errors:
 * SL_ENOMEM, SL_ENUMERIC. */
int om_gram_spectrum(const double *K, int64_t n, double *s);

#endif
