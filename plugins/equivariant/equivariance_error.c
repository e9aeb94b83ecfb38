/* plugins/equivariant/equivariance_error.c — probe "equivariance_error":
 * how far a model is from commuting with a group acting by permutations on
 * its input and output, and which permutation representation, if any, each
 * of its hidden layers carries.
 *
 * Function.  For every element g of the group (permgroup.h: a named group
 * with its input and output representations, or explicit generators),
 *
 *     error_g = ‖f(g·X) − g·f(X)‖ / ‖f(X)‖      (Frobenius over the rows X),
 *
 * on an f64 clone of the model in evaluation mode (the caller's model is
 * not touched).  An exactly equivariant model gives rounding, ~1e-16.
 *
 * Hidden layers.  Xie & Smidt (arXiv 2506.02269) observe that an
 * unconstrained network trained from equivariant weights can end up
 * equivariant again, but under a different permutation representation on
 * its hidden neurons.  For each hidden layer of the structure walker and
 * each generator s, with A = the layer's activations on X and A_s those on
 * s·X (B x k, k the entries of one sample's activation: a dense layer's
 * units, or every channel at every orbit point of a group convolution),
 * the probe looks for the relabeling σ_s of the k neurons with
 * A_s[:, j] ≈ A[:, σ_s(j)] for every j: a linear assignment (Hungarian
 * method, plugins/asym/assignment.h) on the cost C[j][i] = ‖A_s[:, j] −
 * A[:, i]‖².  With rescale (the default) each column is first divided by
 * its norm, so a neuron matches another up to a positive factor: a ReLU
 * network's rescaling symmetry turns a permutation representation P_s into
 * the equivalent D P_s D⁻¹, and that should still count.  The residual is
 * sqrt(Σ_j C[j][σ_s(j)] / Σ_j ‖A[:, j]‖²) over the (normalised) columns;
 * near zero means the layer carries P_s.  The orbits of the group the σ_s
 * generate give the representation: for C_N an orbit of N neurons is a
 * regular channel, of N/m a quotient C_N/C_m one, of 1 a trivial one.
 * is_rep checks that the σ_s satisfy the group's relations (the closure of
 * (input action, σ) has exactly as many elements as the group).  Dead
 * neurons (all-zero columns) match each other at no cost, so their labels
 * are arbitrary: `dead` counts them.
 *
 * Records:
 *   elements, error_max, error_mean (over every element, the identity
 *   included), error_<e> for each element e (element 0 is the identity;
 *   for a named C_N, element e is r^e);
 *   per hidden layer h: <h>.neurons, <h>.dead, <h>.residual (the largest
 *   over generators), <h>.g<s>.residual, <h>.g<s>.cycles_<L> (how many
 *   cycles of length L σ_s has), <h>.orbits_<L> (orbits of size L of the
 *   group the σ_s generate) and <h>.is_rep; with `permutations`, also
 *   <h>.g<s>.perm_<j> = σ_s(j) (0-based), to compare two models' relabelings.
 * Cost: one forward per element and per generator over the rows, and a
 * k x k assignment per hidden layer and generator (O(k³)).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../asym/assignment.h"
#include "eq.h"
#include "permgroup.h"

#define WHO "equivariance_error"

static const sl_option_spec ee_options[] = {
    {"group", SL_OPT_STRING, "", "C<N> (cyclic) or S<n> (symmetric); empty: give generators", NULL},
    {"input", SL_OPT_STRING, "",
     "the input's representation, channel-major blocks: regular*2+q2+trivial (C_N, qM = C_N/C_M) "
     "or perm*2+trivial (S_n)", NULL},
    {"output", SL_OPT_STRING, "", "the output's representation, same form", NULL},
    {"input_generators", SL_OPT_STRING, "",
     "instead of group: permutations p of the input entries, acting as y[i] = x[p[i]]; "
     "entries separated by spaces, generators by ';'", NULL},
    {"output_generators", SL_OPT_STRING, "", "the matching permutations of the output entries",
     NULL},
    {"hidden", SL_OPT_BOOL, "true",
     "also find the permutation representation each hidden layer carries", NULL},
    {"rescale", SL_OPT_BOOL, "true",
     "hidden search: match neurons up to a positive factor (ReLU rescaling symmetry)", NULL},
    {"permutations", SL_OPT_BOOL, "false",
     "hidden search: also record each relabeling, <h>.g<s>.perm_<j> = the neuron j reads", NULL},
    {"batch", SL_OPT_INT, "0", "use the first `batch` rows of the data (0: all)", NULL},
    {"max_elements", SL_OPT_INT, "1000", "refuse a group with more elements", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* One hidden layer's activations on X. */
typedef struct hid {
    const sl_module *act;  /* in the clone */
    int64_t k;             /* neurons: entries per sample */
    double *a;             /* B x k, on X */
    int64_t *sigma;        /* ngen x k */
    double *res;           /* ngen */
} hid;

typedef struct ee_ctx {
    sl_model *m;           /* the f64 clone */
    sl_tensor x, y, gx;    /* the rows, their labels (unused), a permuted copy */
    int64_t B, nin, nout;
    double *fx;            /* B x nout: f(X) */
    eq_pgroup g;
    sl_structure *s;
    int nh;
    hid *h;
    bool rescale, perms;
} ee_ctx;

static double *dalloc(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(double)); }

/* gx = the input permuted by the input part of p (rows of nin entries). */
static void permute_input(ee_ctx *c, const int64_t *p)
{
    const double *x = c->x.data;
    double *gx = c->gx.data;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t i = 0; i < c->nin; i++)
            gx[b * c->nin + i] = x[b * c->nin + p[i]];
}

/* Forward of t; *y the output, checked to hold nout entries per row. */
static int forward(ee_ctx *c, const sl_tensor *t, const sl_tensor **y)
{
    SL_TRY(sl_model_forward(c->m, t, y));
    if (sl_tensor_numel(*y) != c->B * c->nout || !sl_tensor_is_contiguous(*y))
        return sl_error(SL_ESHAPE, WHO ": the model's output changed shape");
    return SL_OK;
}

/* error_e for every element, and their max and mean. */
static int function_errors(ee_ctx *c, sl_record *out)
{
    double den = 0, mx = 0, sum = 0;
    for (int64_t i = 0; i < c->B * c->nout; i++)
        den += c->fx[i] * c->fx[i];
    const int64_t ld = c->nin + c->nout;
    for (int64_t e = 0; e < c->g.order; e++) {
        const int64_t *p = c->g.el + e * ld;
        permute_input(c, p);
        const sl_tensor *y;
        SL_TRY(forward(c, &c->gx, &y));
        const double *fy = y->data;
        double num = 0;
        for (int64_t b = 0; b < c->B; b++)
            for (int64_t i = 0; i < c->nout; i++) {
                double d = fy[b * c->nout + i] - c->fx[b * c->nout + p[c->nin + i] - c->nin];
                num += d * d;
            }
        double err = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
        char name[48];
        snprintf(name, sizeof name, "error_%lld", (long long)e);
        SL_TRY(sl_record_set(out, name, err));
        mx = fmax(mx, err);
        sum += err;
    }
    SL_TRY(sl_record_set(out, "elements", (double)c->g.order));
    SL_TRY(sl_record_set(out, "error_max", mx));
    return sl_record_set(out, "error_mean", sum / (double)c->g.order);
}

/* Copies the activation of H's module (after the last forward) into dst. */
static int read_act(ee_ctx *c, const hid *H, double *dst)
{
    const sl_tensor *t = sl_module_output(H->act);
    if (!t || sl_tensor_numel(t) != c->B * H->k)
        return sl_error(SL_ESTATE, WHO ": no activation of module %s", sl_module_path(H->act));
    sl_tensor w = {0};
    SL_TRY(sl_tensor_wrap(&w, dst, SL_F64, t->ndim, t->shape));
    int rc = sl_tensor_copy(&w, t);
    sl_tensor_release(&w);
    return rc;
}

/* Column norms of the B x k matrix a into n (k). */
static void column_norms(const double *a, int64_t B, int64_t k, double *n)
{
    for (int64_t j = 0; j < k; j++)
        n[j] = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < k; j++)
            n[j] += a[b * k + j] * a[b * k + j];
    double top = 0;
    for (int64_t j = 0; j < k; j++)
        top = fmax(top, n[j] = sqrt(n[j]));
    for (int64_t j = 0; j < k; j++)
        if (n[j] <= 1e-12 * top)
            n[j] = 0; /* dead: a zero column */
}

/* σ and residual of generator s on one hidden layer, from its activations
 * on s·X (as) and on X (H->a).  work: 3k + k² doubles. */
static int match(ee_ctx *c, hid *H, int s, const double *as, double *work)
{
    const int64_t k = H->k, B = c->B;
    double *ns = work, *n0 = work + k, *cost = work + 2 * k;
    column_norms(as, B, k, ns);
    column_norms(H->a, B, k, n0);
    /* cost[j][i] = |u_j|² + |v_i|² − 2 u_j·v_i, u = as's columns, v = a's */
    sl_dgemm(true, false, k, k, B, 1.0, as, k, H->a, k, 0.0, cost, k);
    double den = 0;
    for (int64_t j = 0; j < k; j++) {
        double v = c->rescale ? (n0[j] > 0) : n0[j] * n0[j];
        den += v;
    }
    for (int64_t j = 0; j < k; j++)
        for (int64_t i = 0; i < k; i++) {
            double uu, vv, uv = cost[j * k + i];
            if (c->rescale) {
                uu = ns[j] > 0;
                vv = n0[i] > 0;
                uv = ns[j] > 0 && n0[i] > 0 ? uv / (ns[j] * n0[i]) : 0.0;
            } else {
                uu = ns[j] * ns[j];
                vv = n0[i] * n0[i];
            }
            cost[j * k + i] = fmax(0.0, uu + vv - 2.0 * uv);
        }
    int64_t *sig = H->sigma + (int64_t)s * k;
    SL_TRY(asym_assign(k, cost, false, sig));
    /* The residual from the columns themselves: the cost's expansion
     * cancels to about 1e-16, which would floor the residual at 1e-8. */
    double num = 0;
    for (int64_t j = 0; j < k; j++) {
        const int64_t i = sig[j];
        double fu = 1.0, fv = 1.0;
        if (c->rescale) {
            fu = ns[j] > 0 ? 1.0 / ns[j] : 0.0;
            fv = n0[i] > 0 ? 1.0 / n0[i] : 0.0;
        }
        for (int64_t b = 0; b < B; b++) {
            double d = as[b * k + j] * fu - H->a[b * k + i] * fv;
            num += d * d;
        }
    }
    H->res[s] = den > 0 ? sqrt(num / den) : 0.0;
    return SL_OK;
}

/* For each generator: forward s·X and match every hidden layer. */
static int hidden_search(ee_ctx *c)
{
    int64_t kmax = 1;
    for (int h = 0; h < c->nh; h++)
        kmax = c->h[h].k > kmax ? c->h[h].k : kmax;
    double *as = dalloc(c->B * kmax), *work = dalloc(3 * kmax + kmax * kmax);
    int rc = as && work ? SL_OK : sl_error(SL_ENOMEM, WHO ": out of memory");
    const int64_t ld = c->nin + c->nout;
    for (int s = 0; s < c->g.ngen && rc == SL_OK; s++) {
        permute_input(c, c->g.gen + (int64_t)s * ld);
        const sl_tensor *y;
        rc = forward(c, &c->gx, &y);
        for (int h = 0; h < c->nh && rc == SL_OK; h++)
            if ((rc = read_act(c, &c->h[h], as)) == SL_OK)
                rc = match(c, &c->h[h], s, as, work);
    }
    free(work);
    free(as);
    return rc;
}

/* Sets the record entry named by fmt and its arguments. */
static int setf(sl_record *out, double v, const char *fmt, ...) SL_PRINTF(3, 4);
static int setf(sl_record *out, double v, const char *fmt, ...)
{
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return sl_record_set(out, name, v);
}

/* counts[L] = how many cycles of length L the permutation p (k) has. */
static void cycle_counts(const int64_t *p, int64_t k, int64_t *counts, char *seen)
{
    memset(seen, 0, (size_t)k);
    memset(counts, 0, (size_t)(k + 1) * sizeof *counts);
    for (int64_t j = 0; j < k; j++) {
        int64_t len = 0;
        for (int64_t i = j; !seen[i]; i = p[i], len++)
            seen[i] = 1;
        counts[len] += len > 0;
    }
}

/* Orbit sizes of the group the σ_s generate: union-find over j ~ σ_s(j). */
static void orbit_counts(const hid *H, int ngen, int64_t *counts, int64_t *root, int64_t *size)
{
    const int64_t k = H->k;
    for (int64_t j = 0; j < k; j++)
        root[j] = j, size[j] = 0;
    for (int s = 0; s < ngen; s++)
        for (int64_t j = 0; j < k; j++) {
            int64_t a = j, b = H->sigma[(int64_t)s * k + j];
            while (root[a] != a)
                a = root[a];
            while (root[b] != b)
                b = root[b];
            if (a != b)
                root[a < b ? b : a] = a < b ? a : b;
        }
    for (int64_t j = 0; j < k; j++) {
        int64_t a = j;
        while (root[a] != a)
            a = root[a];
        size[a]++;
    }
    memset(counts, 0, (size_t)(k + 1) * sizeof *counts);
    for (int64_t j = 0; j < k; j++)
        counts[size[j]] += size[j] > 0;
}

/* Whether (input action, σ) generates no more elements than the group. */
static int is_rep(ee_ctx *c, const hid *H, bool *yes)
{
    const int64_t k = H->k, n = c->nin + k;
    int64_t *gens = malloc((size_t)((c->g.ngen > 0 ? c->g.ngen : 1) * n) * sizeof *gens);
    if (!gens)
        return sl_error(SL_ENOMEM, WHO ": out of memory");
    for (int s = 0; s < c->g.ngen; s++) {
        memcpy(gens + s * n, c->g.gen + s * (c->nin + c->nout), (size_t)c->nin * sizeof *gens);
        for (int64_t j = 0; j < k; j++)
            gens[s * n + c->nin + j] = c->nin + H->sigma[(int64_t)s * k + j];
    }
    int64_t *el = NULL, order = 0;
    int rc = eq_perm_closure(c->g.ngen, gens, n, c->g.order, &el, &order);
    *yes = order == c->g.order;
    free(el);
    free(gens);
    return rc;
}

static int hidden_report(ee_ctx *c, sl_record *out)
{
    int64_t kmax = 1;
    for (int h = 0; h < c->nh; h++)
        kmax = c->h[h].k > kmax ? c->h[h].k : kmax;
    int64_t *counts = malloc((size_t)(3 * kmax + 1) * sizeof *counts);
    char *seen = malloc((size_t)kmax);
    if (!counts || !seen) {
        free(counts);
        free(seen);
        return sl_error(SL_ENOMEM, WHO ": out of memory");
    }
    int64_t *root = counts + kmax + 1, *size = root + kmax;
    int rc = SL_OK;
    for (int h = 0; h < c->nh && rc == SL_OK; h++) {
        hid *H = &c->h[h];
        double worst = 0, *norms = dalloc(H->k);
        if (!norms) {
            rc = sl_error(SL_ENOMEM, WHO ": out of memory");
            break;
        }
        column_norms(H->a, c->B, H->k, norms);
        int64_t dead = 0;
        for (int64_t j = 0; j < H->k; j++)
            dead += norms[j] == 0;
        free(norms);
        rc = setf(out, (double)H->k, "%d.neurons", h);
        if (rc == SL_OK)
            rc = setf(out, (double)dead, "%d.dead", h);
        for (int s = 0; s < c->g.ngen && rc == SL_OK; s++) {
            worst = fmax(worst, H->res[s]);
            rc = setf(out, H->res[s], "%d.g%d.residual", h, s);
            cycle_counts(H->sigma + (int64_t)s * H->k, H->k, counts, seen);
            for (int64_t L = 1; L <= H->k && rc == SL_OK; L++)
                if (counts[L])
                    rc = setf(out, (double)counts[L], "%d.g%d.cycles_%lld", h, s, (long long)L);
            for (int64_t j = 0; j < H->k && rc == SL_OK && c->perms; j++)
                rc = setf(out, (double)H->sigma[(int64_t)s * H->k + j], "%d.g%d.perm_%lld", h, s,
                          (long long)j);
        }
        if (rc == SL_OK)
            rc = setf(out, worst, "%d.residual", h);
        orbit_counts(H, c->g.ngen, counts, root, size);
        for (int64_t L = 1; L <= H->k && rc == SL_OK; L++)
            if (counts[L])
                rc = setf(out, (double)counts[L], "%d.orbits_%lld", h, (long long)L);
        bool yes = false;
        if (rc == SL_OK)
            rc = is_rep(c, H, &yes);
        if (rc == SL_OK)
            rc = setf(out, yes ? 1.0 : 0.0, "%d.is_rep", h);
    }
    free(seen);
    free(counts);
    return rc;
}

/* The walker's hidden layers of the clone and their activations on X
 * (after the forward of X). */
static int hidden_setup(ee_ctx *c)
{
    SL_TRY(sl_model_structure(c->m, &c->s));
    c->nh = sl_structure_nhidden(c->s);
    c->h = calloc((size_t)c->nh + 1, sizeof *c->h);
    if (!c->h)
        return sl_error(SL_ENOMEM, WHO ": out of memory");
    for (int h = 0; h < c->nh; h++) {
        hid *H = &c->h[h];
        H->act = sl_structure_hidden(c->s, h)->act;
        const sl_tensor *t = sl_module_output(H->act);
        if (!t)
            return sl_error(SL_ESTATE, WHO ": no activation of module %s",
                            sl_module_path(H->act));
        H->k = sl_tensor_numel(t) / c->B;
        H->a = dalloc(c->B * H->k);
        H->sigma = malloc((size_t)((c->g.ngen > 0 ? c->g.ngen : 1) * H->k) * sizeof *H->sigma);
        H->res = dalloc(c->g.ngen);
        if (!H->a || !H->sigma || !H->res)
            return sl_error(SL_ENOMEM, WHO ": out of memory");
        SL_TRY(read_act(c, H, H->a));
    }
    return SL_OK;
}

static void ee_free(ee_ctx *c)
{
    if (c->h)
        for (int h = 0; h < c->nh; h++) {
            free(c->h[h].a);
            free(c->h[h].sigma);
            free(c->h[h].res);
        }
    free(c->h);
    sl_structure_free(c->s);
    eq_pgroup_free(&c->g);
    free(c->fx);
    sl_tensor_release(&c->gx);
    sl_tensor_release(&c->y);
    sl_tensor_release(&c->x);
    sl_model_free(c->m);
}

static int ee_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                      sl_record *out)
{
    if (!data)
        return sl_error(SL_EINVAL, WHO ": needs data (the rows the model is evaluated on)");
    const int64_t max_el = sl_options_int(opt, "max_elements");
    if (max_el < 1)
        return sl_error(SL_EINVAL, WHO ": max_elements must be >= 1, got %lld",
                        (long long)max_el);
    ee_ctx c = {.rescale = sl_options_bool(opt, "rescale"),
                .perms = sl_options_bool(opt, "permutations")};
    int rc = sl_model_clone(model, SL_F64, &c.m);
    if (rc == SL_OK) {
        sl_model_set_training(c.m, false);
        rc = eq_take_rows(data, sl_options_int(opt, "batch"), &c.x, &c.y);
    }
    if (rc == SL_OK) {
        c.B = c.x.shape[0];
        c.nin = c.B > 0 ? sl_tensor_numel(&c.x) / c.B : 0;
        rc = c.B > 0 && c.nin > 0 ? sl_tensor_alloc(&c.gx, SL_F64, c.x.ndim, c.x.shape)
                                  : sl_error(SL_EINVAL, WHO ": the data has no rows");
    }
    const sl_tensor *y = NULL;
    if (rc == SL_OK)
        rc = sl_model_forward(c.m, &c.x, &y);
    if (rc == SL_OK) {
        c.nout = sl_tensor_numel(y) / c.B;
        c.fx = dalloc(c.B * c.nout);
        rc = c.fx ? SL_OK : sl_error(SL_ENOMEM, WHO ": out of memory");
    }
    if (rc == SL_OK) {
        sl_tensor w = {0};
        rc = sl_tensor_wrap(&w, c.fx, SL_F64, y->ndim, y->shape);
        if (rc == SL_OK)
            rc = sl_tensor_copy(&w, y);
        sl_tensor_release(&w);
    }
    if (rc == SL_OK)
        rc = eq_pgroup_from_options(WHO, sl_options_string(opt, "group"),
                                    sl_options_string(opt, "input"),
                                    sl_options_string(opt, "output"),
                                    sl_options_string(opt, "input_generators"),
                                    sl_options_string(opt, "output_generators"), c.nin, c.nout,
                                    max_el, &c.g);
    bool hidden = sl_options_bool(opt, "hidden");
    if (rc == SL_OK && hidden)
        rc = hidden_setup(&c); /* reads the activations of the forward of X */
    if (rc == SL_OK)
        rc = function_errors(&c, out);
    if (rc == SL_OK && hidden)
        rc = hidden_search(&c);
    if (rc == SL_OK && hidden)
        rc = hidden_report(&c, out);
    ee_free(&c);
    return rc;
}

const sl_probe_type eq_equivariance_error_type = {
    .name = "equivariance_error",
    .summary = "relative equivariance error |f(g x) - g f(x)| / |f(x)| over a permutation group, "
               "and the permutation representation each hidden layer carries",
    .options = ee_options,
    .measure = ee_measure,
};
