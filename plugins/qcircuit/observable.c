/* plugins/qcircuit/observable.c — observables as weighted sums of Pauli strings.
 *
 * Tr(O rho) costs O(2^n) per term (one diagonal-like sweep), so the cost
 * never needs the dense O; the dense matrix is built only for the adjoint
 * gradient (sim.c) and for tests.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

void qc_obs_init(qc_observable *o, int n)
{
    memset(o, 0, sizeof *o);
    o->n = n;
}

void qc_obs_free(qc_observable *o)
{
    free(o->coef);
    free(o->x);
    free(o->z);
    memset(o, 0, sizeof *o);
}

/* Adds coef * P; a string already present gets its coefficient increased. */
int qc_obs_add(qc_observable *o, double coef, uint64_t x, uint64_t z)
{
    for (int t = 0; t < o->nterms; t++)
        if (o->x[t] == x && o->z[t] == z) {
            o->coef[t] += coef;
            return SL_OK;
        }
    if (o->nterms == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        double *c = realloc(o->coef, (size_t)cap * sizeof *c);
        if (c)
            o->coef = c;
        uint64_t *xs = realloc(o->x, (size_t)cap * sizeof *xs);
        if (xs)
            o->x = xs;
        uint64_t *zs = realloc(o->z, (size_t)cap * sizeof *zs);
        if (zs)
            o->z = zs;
        if (!c || !xs || !zs)
            return sl_error(SL_ENOMEM, "qcircuit: out of memory for the observable");
        o->cap = cap;
    }
    o->coef[o->nterms] = coef;
    o->x[o->nterms] = x;
    o->z[o->nterms] = z;
    o->nterms++;
    return SL_OK;
}

static const char *skip_space(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

int qc_obs_parse(qc_observable *o, const char *text)
{
    const char *p = skip_space(text);
    int term = 0;
    while (*p) {
        double sign = 1.0;
        if (*p == '+' || *p == '-') {
            sign = *p == '-' ? -1.0 : 1.0;
            p = skip_space(p + 1);
        } else if (term > 0) {
            return sl_error(SL_EINVAL, "qcircuit: observable term %d: expected '+' or '-' before '%.10s'",
                            term + 1, p);
        }
        double coef = 1.0;
        if (isdigit((unsigned char)*p) || *p == '.') {
            char *end;
            coef = strtod(p, &end);
            if (!isfinite(coef))
                return sl_error(SL_EINVAL, "qcircuit: observable term %d: coefficient '%.*s' "
                                "is not a finite number", term + 1, (int)(end - p), p);
            p = skip_space(end);
            if (*p == '*')
                p = skip_space(p + 1);
        }
        uint64_t x = 0, z = 0;
        int len = 0;
        for (; *p && strchr("IXYZixyz", *p); p++, len++) {
            if (len >= o->n)
                return sl_error(SL_EINVAL, "qcircuit: observable term %d is longer than %d qubits",
                                term + 1, o->n);
            uint64_t b = (uint64_t)1 << len;
            char ch = (char)toupper((unsigned char)*p);
            if (ch == 'X' || ch == 'Y')
                x |= b;
            if (ch == 'Z' || ch == 'Y')
                z |= b;
        }
        if (len != o->n)
            return sl_error(SL_EINVAL,
                            "qcircuit: observable term %d: expected %d Pauli letters (IXYZ), got %d",
                            term + 1, o->n, len);
        SL_TRY(qc_obs_add(o, sign * coef, x, z));
        p = skip_space(p);
        term++;
    }
    if (term == 0)
        return sl_error(SL_EINVAL, "qcircuit: empty observable");
    return SL_OK;
}

/* Neighbour pairs of a chain (and the closing pair of a ring with n > 2). */
static int npairs(int n, bool periodic) { return periodic && n > 2 ? n : n - 1; }

int qc_obs_tfim(qc_observable *o, double j, double h, bool periodic)
{
    for (int i = 0; i < npairs(o->n, periodic); i++) {
        uint64_t zz = ((uint64_t)1 << i) | ((uint64_t)1 << ((i + 1) % o->n));
        SL_TRY(qc_obs_add(o, -j, 0, zz));
    }
    for (int i = 0; i < o->n; i++)
        SL_TRY(qc_obs_add(o, -h, (uint64_t)1 << i, 0));
    return SL_OK;
}

int qc_obs_heisenberg(qc_observable *o, double j, double h, bool periodic)
{
    for (int i = 0; i < npairs(o->n, periodic); i++) {
        uint64_t m = ((uint64_t)1 << i) | ((uint64_t)1 << ((i + 1) % o->n));
        SL_TRY(qc_obs_add(o, j, m, 0));
        SL_TRY(qc_obs_add(o, j, m, m));
        SL_TRY(qc_obs_add(o, j, 0, m));
    }
    if (h != 0.0)
        for (int i = 0; i < o->n; i++)
            SL_TRY(qc_obs_add(o, h, 0, (uint64_t)1 << i));
    return SL_OK;
}

static int maxcut_edge(qc_observable *o, int a, int b)
{
    if (a < 0 || b < 0 || a >= o->n || b >= o->n || a == b)
        return sl_error(SL_EINVAL, "qcircuit: maxcut edge %d-%d is not between two of the %d qubits",
                        a, b, o->n);
    SL_TRY(qc_obs_add(o, 0.5, 0, ((uint64_t)1 << a) | ((uint64_t)1 << b)));
    return qc_obs_add(o, -0.5, 0, 0);
}

int qc_obs_maxcut(qc_observable *o, const char *edges)
{
    if (!edges || !*skip_space(edges)) {
        for (int i = 0; i < npairs(o->n, true); i++)
            SL_TRY(maxcut_edge(o, i, (i + 1) % o->n));
        return SL_OK;
    }
    const char *p = edges;
    while (*(p = skip_space(p))) {
        char *end;
        long a = strtol(p, &end, 10);
        if (end == p || *end != '-')
            return sl_error(SL_EINVAL, "qcircuit: maxcut edges: expected 'A-B' at '%.10s'", p);
        p = end + 1;
        long b = strtol(p, &end, 10);
        if (end == p)
            return sl_error(SL_EINVAL, "qcircuit: maxcut edges: expected 'A-B' at '%.10s'", p);
        SL_TRY(maxcut_edge(o, (int)(a < -1 || a > 64 ? -1 : a), (int)(b < -1 || b > 64 ? -1 : b)));
        p = skip_space(end);
        if (*p == ',')
            p++;
        else if (*p)
            return sl_error(SL_EINVAL, "qcircuit: maxcut edges: expected ',' at '%.10s'", p);
    }
    return SL_OK;
}

double qc_obs_expect(const qc_observable *o, const qc_rho *rho)
{
    double acc = 0.0;
    for (int t = 0; t < o->nterms; t++)
        acc += o->coef[t] * creal(qc_trace_pauli(rho, o->x[t], o->z[t]));
    return acc;
}

/* O[r][r ^ x] += coef * ph(r ^ x), the Pauli matrix of qc.h column by column. */
void qc_obs_dense(const qc_observable *o, qc_rho *out)
{
    static const double complex ipow[4] = {1.0, I, -1.0, -I};
    const int64_t dim = out->dim;
    memset(out->re, 0, (size_t)(dim * dim) * sizeof(double));
    memset(out->im, 0, (size_t)(dim * dim) * sizeof(double));
    for (int t = 0; t < o->nterms; t++)
        for (int64_t y = 0; y < dim; y++) {
            int e = __builtin_popcountll(o->x[t] & o->z[t]) +
                    2 * (__builtin_popcountll((uint64_t)y & o->z[t]) & 1);
            int64_t i = (y ^ (int64_t)o->x[t]) * dim + y;
            out->re[i] += o->coef[t] * creal(ipow[e & 3]);
            out->im[i] += o->coef[t] * cimag(ipow[e & 3]);
        }
}
