/* tests/gradcheck.c — see gradcheck.h. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gradcheck.h"

/* ---------------------------------------------------------------- helpers */

static double rel_err(double a, double n)
{
    if (!isfinite(a) || !isfinite(n))
        return INFINITY;
    double d = fmax(fmax(fabs(a), fabs(n)), GRADCHECK_FLOOR);
    return fabs(a - n) / d;
}

/* A value of U(-1, 1) that is at least 1e-3 from zero and, when `prev` is
 * given, at least 1e-4 from each of prev[0..n). */
static double draw_clear(sl_rng *rng, const double *prev, int64_t n)
{
    for (;;) {
        double v = 2 * sl_rng_uniform(rng) - 1;
        bool clear = fabs(v) >= 1e-3;
        for (int64_t j = 0; clear && prev && j < n; j++)
            clear = fabs(v - prev[j]) >= 1e-4;
        if (clear)
            return v;
    }
}

void gradcheck_fill(sl_tensor *t, sl_rng *rng)
{
    int64_t n = sl_tensor_numel(t);
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v)
        abort();
    bool spread = n <= 4096;
    for (int64_t i = 0; i < n; i++)
        v[i] = draw_clear(rng, spread ? v : NULL, i);
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == SL_F32)
            ((float *)t->data)[i] = (float)v[i];
        else
            ((double *)t->data)[i] = v[i];
    }
    free(v);
}

static double *f64_data(const sl_tensor *t) { return t->data; }

/* sum(G * y) over every element, in double. */
static double weighted_sum(const sl_tensor *g, const sl_tensor *y)
{
    double s = 0;
    int64_t n = sl_tensor_numel(y);
    for (int64_t i = 0; i < n; i++)
        s += f64_data(g)[i] * f64_data(y)[i];
    return s;
}

/* ---------------------------------------------------------------- modules */

/* Everything one module check holds; released by module_check_free. */
typedef struct module_check {
    sl_model *model;
    sl_module *mod;
    const sl_module_type *type;
    sl_tensor x, y, g, gin, analytic_in, analytic_params;
} module_check;

static void module_check_free(module_check *c)
{
    sl_tensor_release(&c->x);
    sl_tensor_release(&c->y);
    sl_tensor_release(&c->g);
    sl_tensor_release(&c->gin);
    sl_tensor_release(&c->analytic_in);
    sl_tensor_release(&c->analytic_params);
    sl_model_free(c->model);
}

static int module_check_setup(module_check *c, const gradcheck_args *a)
{
    SL_TRY(sl_registry_init());
    SL_TRY(sl_model_new(SL_F64, &c->model));
    SL_TRY(a->build ? a->build(c->model) : sl_model_add(c->model, a->type, a->opt));
    SL_TRY(sl_model_build(c->model, a->seed));
    sl_model_set_training(c->model, !a->eval);
    c->mod = sl_model_module(c->model, 0);
    c->type = sl_module_type_of(c->mod);
    int ondim;
    int64_t oshape[SL_MAX_DIMS];
    SL_TRY(c->type->output_shape(c->mod, a->ndim, a->shape, &ondim, oshape));
    SL_TRY(sl_tensor_alloc(&c->x, SL_F64, a->ndim, a->shape));
    SL_TRY(sl_tensor_alloc(&c->gin, SL_F64, a->ndim, a->shape));
    SL_TRY(sl_tensor_alloc(&c->analytic_in, SL_F64, a->ndim, a->shape));
    SL_TRY(sl_tensor_alloc(&c->y, SL_F64, ondim, oshape));
    SL_TRY(sl_tensor_alloc(&c->g, SL_F64, ondim, oshape));
    int64_t np = sl_model_numel(c->model);
    SL_TRY(sl_tensor_alloc(&c->analytic_params, SL_F64, 1, &np));
    sl_rng rng;
    sl_rng_derive(&rng, a->seed, 0x67726164 /* "grad" */);
    gradcheck_fill(&c->x, &rng);
    double *p = f64_data(sl_model_flat_params(c->model));
    for (int64_t i = 0; a->jitter > 0 && i < np; i++)
        p[i] += a->jitter * (2 * sl_rng_uniform(&rng) - 1);
    return sl_tensor_uniform(&c->g, &rng, -1.0, 1.0);
}

static int module_loss(module_check *c, double *value)
{
    SL_TRY(c->type->forward(c->mod, &c->x, &c->y));
    *value = weighted_sum(&c->g, &c->y);
    return SL_OK;
}

/* One backward into fresh gradients; then a second with grad_in NULL, which
 * must exactly double the parameter gradients.  Returns in *ok whether the
 * conventions held. */
static int module_analytic(module_check *c, bool *ok)
{
    double unused;
    sl_model_zero_grad(c->model);
    SL_TRY(module_loss(c, &unused));
    SL_TRY(sl_tensor_fill(&c->gin, NAN));
    SL_TRY(c->type->backward(c->mod, &c->x, &c->y, &c->g, &c->gin));
    SL_TRY(sl_tensor_copy(&c->analytic_in, &c->gin));
    sl_tensor *grads = sl_model_flat_grads(c->model);
    SL_TRY(sl_tensor_copy(&c->analytic_params, grads));
    SL_TRY(c->type->backward(c->mod, &c->x, &c->y, &c->g, NULL));
    *ok = true;
    for (int64_t i = 0; i < sl_tensor_numel(grads); i++) {
        double once = f64_data(&c->analytic_params)[i];
        if (fabs(f64_data(grads)[i] - 2 * once) > 1e-12 * fmax(1.0, fabs(once))) {
            printf("gradcheck %s: parameter gradient %lld not accumulated (%g after two "
                   "backwards, %g after one)\n", c->type->name, (long long)i,
                   f64_data(grads)[i], once);
            *ok = false;
            break;
        }
    }
    return SL_OK;
}

/* Largest error of the central differences over the elements of v (which the
 * loss reads) against analytic[]. */
static int module_numeric(module_check *c, double *v, int64_t n, const double *analytic,
                          double *max_err)
{
    const double h = GRADCHECK_STEP;
    for (int64_t i = 0; i < n; i++) {
        double saved = v[i], plus, minus;
        v[i] = saved + h;
        SL_TRY(module_loss(c, &plus));
        v[i] = saved - h;
        SL_TRY(module_loss(c, &minus));
        v[i] = saved;
        *max_err = fmax(*max_err, rel_err(analytic[i], (plus - minus) / (2 * h)));
    }
    return SL_OK;
}

int gradcheck_module(const gradcheck_args *a, gradcheck_report *r)
{
    module_check c = {0};
    bool ok = false;
    int rc = module_check_setup(&c, a);
    if (rc >= 0)
        rc = module_analytic(&c, &ok);
    *r = (gradcheck_report){.max_rel_err = ok ? 0.0 : INFINITY,
                            .ninputs = sl_tensor_numel(&c.x),
                            .nparams = c.model ? sl_model_numel(c.model) : 0};
    if (rc >= 0)
        rc = module_numeric(&c, f64_data(&c.x), r->ninputs, f64_data(&c.analytic_in),
                            &r->max_rel_err);
    if (rc >= 0 && r->nparams > 0)
        rc = module_numeric(&c, f64_data(sl_model_flat_params(c.model)), r->nparams,
                            f64_data(&c.analytic_params), &r->max_rel_err);
    if (rc >= 0)
        printf("gradcheck %s: max rel err %.1e over %lld inputs, %lld params\n",
               a->label ? a->label : a->type, r->max_rel_err, (long long)r->ninputs,
               (long long)r->nparams);
    module_check_free(&c);
    return rc;
}

/* ---------------------------------------------------------------- losses */

int gradcheck_loss(const char *name, const sl_tensor *pred, const sl_tensor *target,
                   const char *label, gradcheck_report *r)
{
    *r = (gradcheck_report){.max_rel_err = INFINITY, .ninputs = sl_tensor_numel(pred)};
    SL_TRY(sl_registry_init());
    const sl_loss_type *loss = sl_registry_find(SL_KIND_LOSS, name);
    if (!loss)
        return SL_ENOTFOUND;
    if (pred->dtype != SL_F64 || !sl_tensor_is_contiguous(pred))
        return sl_error(SL_EINVAL, "gradcheck_loss: pred must be contiguous f64");
    sl_tensor grad = {0}, p = {0};
    double value;
    int rc = sl_tensor_alloc(&grad, SL_F64, pred->ndim, pred->shape);
    if (rc >= 0)
        rc = sl_tensor_alloc(&p, SL_F64, pred->ndim, pred->shape);
    if (rc >= 0)
        rc = sl_tensor_copy(&p, pred);
    if (rc >= 0)
        rc = sl_tensor_fill(&grad, NAN);
    if (rc >= 0)
        rc = loss->forward(&p, target, &value, &grad);
    const double h = GRADCHECK_STEP;
    double max_err = 0;
    for (int64_t i = 0; rc >= 0 && i < r->ninputs; i++) {
        double *v = f64_data(&p), saved = v[i], plus = 0, minus = 0;
        v[i] = saved + h;
        rc = loss->forward(&p, target, &plus, NULL);
        v[i] = saved - h;
        if (rc >= 0)
            rc = loss->forward(&p, target, &minus, NULL);
        v[i] = saved;
        max_err = fmax(max_err, rel_err(f64_data(&grad)[i], (plus - minus) / (2 * h)));
    }
    if (rc >= 0) {
        r->max_rel_err = max_err;
        printf("gradcheck %s: max rel err %.1e over %lld inputs, 0 params\n",
               label ? label : name, max_err, (long long)r->ninputs);
    }
    sl_tensor_release(&grad);
    sl_tensor_release(&p);
    return rc;
}
