/* plugins/equivariant/hessian.c — probe "hessian": the extreme eigenvalues
 * of the training loss's Hessian, the saddle test of Xie & Smidt (arXiv
 * 2506.02269): a stuck equivariant student sits where the smallest
 * eigenvalue is negative, and escapes once it is not.
 *
 * Method.  Lanczos (with full reorthogonalisation, twice per step, so the
 * basis stays orthonormal to rounding and no spurious copies of converged
 * eigenvalues appear) on Hessian-vector products.  Each product is a
 * central difference of gradients,
 *
 *     H v ≈ (∇L(θ + h v) − ∇L(θ − h v)) / 2h,     |v| = 1,
 *
 * on an f64 clone of the model in evaluation mode (so dropout draws nothing
 * and batch norm uses its running statistics: the loss is one fixed
 * function of θ), whose error is O(h²) times third derivatives plus
 * O(ε |∇L| / h) rounding: about 1e-10 relative at the default h = 1e-5.
 * The caller's model is not touched.
 *
 * The Ritz values are the eigenvalues of the Lanczos tridiagonal T (m x m).
 * They come from sl_svd, LAPACK through symlab's one door to it, applied to
 * T + sI with s the Gershgorin bound of T: that matrix is positive
 * semi-definite, so its singular values are its eigenvalues and its right
 * singular vectors its eigenvectors.  (The plugin does not link LAPACKE
 * itself: core/blas.c stays the only file that includes it.)  The loss of
 * precision is ε s, far below the product's own error.
 *
 * Cost: `iters` Hessian-vector products (two gradients each over the
 * batch) and an (iters + 1) x numel f64 basis in memory.
 *
 * Record: loss; iters (Lanczos steps taken: fewer than asked when the
 * Krylov space closes); lambda_min_1 <= lambda_min_2 <= ... the k smallest
 * Ritz values, lambda_max_1 >= lambda_max_2 >= ... the k largest (NaN
 * where fewer than k exist); residual_min and residual_max, the largest
 * |H y − λ y| bound (|β_m| times the Ritz vector's last entry) among the
 * reported ones at each end: near zero once they have converged, and zero
 * when iters reaches the number of parameters.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eq.h"

static const sl_option_spec hess_options[] = {
    {"loss", SL_OPT_STRING, "mse", "the loss whose Hessian is taken (a registered loss)", NULL},
    {"k", SL_OPT_INT, "3", "how many eigenvalues at each end", NULL},
    {"iters", SL_OPT_INT, "0", "Lanczos steps (0: min(parameters, 100))", NULL},
    {"step", SL_OPT_FLOAT, "1e-5", "h of the central difference of gradients", NULL},
    {"batch", SL_OPT_INT, "0", "use the first `batch` rows of the data (0: all)", NULL},
    {"seed", SL_OPT_INT, "0", "seed of the random start vector", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* Everything one Hessian-vector product needs. */
typedef struct hvp_ctx {
    sl_model *m;              /* the f64 clone */
    const sl_loss_type *loss;
    sl_tensor x, y;           /* the rows used: x an f64 copy, y a view */
    double h;
    int64_t n;                /* parameters */
    double *theta0, *gplus;   /* n each */
} hvp_ctx;

/* g = ∇L at θ0 + t v (v NULL: at θ0); the clone's parameters are θ0 after. */
static int grad_at(hvp_ctx *c, const double *v, double t, double *g, double *value)
{
    double *theta = sl_model_flat_params(c->m)->data;
    for (int64_t i = 0; i < c->n; i++)
        theta[i] = c->theta0[i] + (v ? t * v[i] : 0.0);
    double loss;
    int rc = sl_model_loss(c->m, c->loss, &c->x, &c->y, true, &loss);
    memcpy(theta, c->theta0, (size_t)c->n * sizeof *theta);
    if (rc < 0)
        return rc;
    if (!isfinite(loss))
        return sl_error(SL_ENUMERIC, "hessian: the loss is not finite (%g) near the parameters",
                        loss);
    if (value)
        *value = loss;
    memcpy(g, sl_model_flat_grads(c->m)->data, (size_t)c->n * sizeof *g);
    return SL_OK;
}

static int hvp(hvp_ctx *c, const double *v, double *out)
{
    SL_TRY(grad_at(c, v, c->h, c->gplus, NULL));
    SL_TRY(grad_at(c, v, -c->h, out, NULL));
    for (int64_t i = 0; i < c->n; i++)
        out[i] = (c->gplus[i] - out[i]) / (2.0 * c->h);
    return SL_OK;
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Lanczos from a random unit vector: alpha[0..*m), beta[0..*m) (beta[j]
 * couples steps j and j + 1; beta[*m - 1] is the residual norm).  V holds
 * (*m + 1) rows of n.  Stops early when the Krylov space closes. */
static int lanczos(hvp_ctx *c, uint64_t seed, int64_t *m, double *V, double *alpha,
                   double *beta)
{
    const int64_t n = c->n, want = *m;
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        V[i] = sl_rng_normal(&rng);
    double nrm = sqrt(dot(V, V, n)), scale = 0;
    for (int64_t i = 0; i < n; i++)
        V[i] /= nrm;
    for (int64_t j = 0; j < want; j++) {
        double *q = V + j * n, *w = V + (j + 1) * n;
        SL_TRY(hvp(c, q, w));
        alpha[j] = dot(q, w, n);
        for (int64_t i = 0; i < n; i++)
            w[i] -= alpha[j] * q[i] + (j > 0 ? beta[j - 1] * q[i - n] : 0.0);
        for (int pass = 0; pass < 2; pass++)
            for (int64_t r = 0; r <= j; r++) {
                const double *v = V + r * n;
                double proj = dot(v, w, n);
                for (int64_t i = 0; i < n; i++)
                    w[i] -= proj * v[i];
            }
        beta[j] = sqrt(dot(w, w, n));
        scale = fmax(scale, fabs(alpha[j]) + beta[j] + (j > 0 ? beta[j - 1] : 0.0));
        *m = j + 1;
        if (beta[j] <= 1e-12 * scale || j + 1 == want)
            break;
        for (int64_t i = 0; i < n; i++)
            w[i] /= beta[j];
    }
    return SL_OK;
}

/* Eigenvalues of the tridiagonal T (alpha, beta) into lam[0..m) descending,
 * and the last entry of each eigenvector into last[0..m). */
static int tridiagonal_eigen(int64_t m, const double *alpha, const double *beta, double *lam,
                             double *last)
{
    sl_tensor T = {0}, s = {0}, vt = {0};
    SL_TRY(sl_tensor_alloc(&T, SL_F64, 2, (int64_t[]){m, m}));
    double *t = T.data, shift = 0;
    for (int64_t i = 0; i < m; i++) {
        t[i * m + i] = alpha[i];
        if (i + 1 < m)
            t[i * m + i + 1] = t[(i + 1) * m + i] = beta[i];
        shift = fmax(shift, fabs(alpha[i]) + (i > 0 ? fabs(beta[i - 1]) : 0.0) +
                                (i + 1 < m ? fabs(beta[i]) : 0.0));
    }
    for (int64_t i = 0; i < m; i++)
        t[i * m + i] += shift;
    int rc = sl_svd(&T, NULL, &s, &vt);
    if (rc == SL_OK)
        for (int64_t i = 0; i < m; i++) {
            lam[i] = ((const double *)s.data)[i] - shift;
            last[i] = ((const double *)vt.data)[i * m + m - 1];
        }
    sl_tensor_release(&vt);
    sl_tensor_release(&s);
    sl_tensor_release(&T);
    return rc;
}

static int put(sl_record *out, const char *prefix, int64_t i, double v)
{
    char name[48];
    snprintf(name, sizeof name, "%s_%lld", prefix, (long long)i);
    return sl_record_set(out, name, v);
}

/* The k eigenvalues at each end and their residual bounds. */
static int report(sl_record *out, int64_t k, int64_t m, const double *lam, const double *last,
                  double beta_m)
{
    double res_min = 0, res_max = 0;
    for (int64_t i = 0; i < k; i++) {
        bool have = i < m;
        SL_TRY(put(out, "lambda_min", i + 1, have ? lam[m - 1 - i] : NAN));
        if (have)
            res_min = fmax(res_min, fabs(beta_m * last[m - 1 - i]));
    }
    for (int64_t i = 0; i < k; i++) {
        bool have = i < m;
        SL_TRY(put(out, "lambda_max", i + 1, have ? lam[i] : NAN));
        if (have)
            res_max = fmax(res_max, fabs(beta_m * last[i]));
    }
    SL_TRY(sl_record_set(out, "residual_min", res_min));
    return sl_record_set(out, "residual_max", res_max);
}

int eq_take_rows(const sl_dataset *d, int64_t batch, sl_tensor *x, sl_tensor *y)
{
    const int64_t N = sl_dataset_size(d);
    if (batch <= 0 || batch > N)
        batch = N;
    sl_tensor xv = {0};
    SL_TRY(sl_tensor_narrow(&d->x, 0, 0, batch, &xv));
    int rc = sl_tensor_alloc(x, SL_F64, xv.ndim, xv.shape);
    if (rc == SL_OK)
        rc = sl_tensor_copy(x, &xv);
    sl_tensor_release(&xv);
    if (rc == SL_OK)
        rc = sl_tensor_narrow(&d->y, 0, 0, batch, y);
    return rc;
}

static int run(hvp_ctx *c, const sl_options *opt, sl_record *out)
{
    const int64_t k = sl_options_int(opt, "k");
    int64_t cap = sl_options_int(opt, "iters");
    if (cap == 0)
        cap = c->n < 100 ? c->n : 100;
    if (cap > c->n)
        cap = c->n;
    /* work: alpha, beta, eigenvalues, eigenvectors' last entries; cap each */
    double *V = malloc((size_t)(cap + 1) * (size_t)c->n * sizeof *V);
    double *work = malloc((size_t)(4 * cap) * sizeof *work);
    double *alpha = work, *beta = work + cap, *lam = work + 2 * cap, *last = work + 3 * cap;
    int rc = V && work ? SL_OK : sl_error(SL_ENOMEM, "hessian: out of memory for %lld x %lld "
                                                     "Lanczos vectors",
                                          (long long)(cap + 1), (long long)c->n);
    double loss = NAN;
    int64_t m = cap;
    if (rc == SL_OK)
        rc = grad_at(c, NULL, 0.0, c->gplus, &loss);
    if (rc == SL_OK)
        rc = lanczos(c, (uint64_t)sl_options_int(opt, "seed"), &m, V, alpha, beta);
    if (rc == SL_OK)
        rc = tridiagonal_eigen(m, alpha, beta, lam, last);
    if (rc == SL_OK && (rc = sl_record_set(out, "loss", loss)) == SL_OK &&
        (rc = sl_record_set(out, "iters", (double)m)) == SL_OK)
        rc = report(out, k, m, lam, last, beta[m - 1]);
    free(work);
    free(V);
    return rc;
}

static int hess_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                        sl_record *out)
{
    if (!data)
        return sl_error(SL_EINVAL, "hessian: needs data (the loss is taken over its rows)");
    const char *loss_name = sl_options_string(opt, "loss");
    hvp_ctx c = {.loss = sl_registry_find(SL_KIND_LOSS, loss_name),
                 .h = sl_options_float(opt, "step")};
    if (!c.loss)
        return sl_error_context(SL_ENOTFOUND, "hessian: option loss");
    if (sl_options_int(opt, "k") < 1)
        return sl_error(SL_EINVAL, "hessian: k must be >= 1, got %lld",
                        (long long)sl_options_int(opt, "k"));
    if (sl_options_int(opt, "iters") < 0)
        return sl_error(SL_EINVAL, "hessian: iters must be >= 0 (0: automatic)");
    if (!(c.h > 0))
        return sl_error(SL_EINVAL, "hessian: step must be > 0, got %g", c.h);
    SL_TRY(sl_model_clone(model, SL_F64, &c.m));
    sl_model_set_training(c.m, false);
    c.n = sl_model_numel(c.m);
    c.theta0 = malloc((size_t)c.n * sizeof *c.theta0);
    c.gplus = malloc((size_t)c.n * sizeof *c.gplus);
    int rc = c.theta0 && c.gplus ? SL_OK : sl_error(SL_ENOMEM, "hessian: out of memory");
    if (rc == SL_OK && c.n == 0)
        rc = sl_error(SL_EINVAL, "hessian: the model has no parameters");
    if (rc == SL_OK) {
        memcpy(c.theta0, sl_model_flat_params(c.m)->data, (size_t)c.n * sizeof *c.theta0);
        rc = eq_take_rows(data, sl_options_int(opt, "batch"), &c.x, &c.y);
    }
    if (rc == SL_OK)
        rc = run(&c, opt, out);
    sl_tensor_release(&c.x);
    sl_tensor_release(&c.y);
    free(c.gplus);
    free(c.theta0);
    sl_model_free(c.m);
    return rc;
}

const sl_probe_type eq_hessian_type = {
    .name = "hessian",
    .summary = "extreme eigenvalues of the loss Hessian (Lanczos on f64 finite-difference "
               "Hessian-vector products)",
    .options = hess_options,
    .measure = hess_measure,
};
