/* plugins/teleport/ascent.c — the ascent on obj = ‖∇L‖² over g_m = I + T_m,
 * each step from T = 0: ∂obj/∂T = Jᵀ (2 H ∇L), with H∇L a central
 * finite-difference Hessian-vector product in f64 (two extra gradients) and
 * Jᵀ the transposed tangent of the group action (action.c), contracted
 * analytically (pseudo-inverse derivatives included).  Omitted: in the 2023
 * form the coupling of pair m to pair m+1 through moved activations, which
 * vanishes in the exact regime.  Everything runs on the f64 clone s->work.
 *
 * Guards against runaways (an exact teleport keeps the loss whatever it does
 * to the curvature, so the loss check alone accepts a point where training
 * then diverges): `cap` stops once ‖∇L‖² exceeds an absolute level (as the
 * 2023 code does), `max_growth` undoes the step that takes ‖∇L‖² above a
 * multiple of its value before the teleport and stops, `max_t_norm` clamps
 * every step's ‖T_m‖_F (the learn-to-teleport code normalises it), and
 * tp_sharpness serves the hook's sharpness guard. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp.h"

/* ∂obj/∂θ = 2 H ∇L by central differences along v = ∇L (already in s->v),
 * left in work's gradient arena. */
static int hvp(tp_state *s, const sl_loss_type *loss, const sl_tensor *x, const sl_tensor *y)
{
    sl_tensor *p = sl_model_flat_params(s->work), *g = sl_model_flat_grads(s->work);
    double pn, vn, value;
    SL_TRY(sl_tensor_copy(&s->theta, p));
    SL_TRY(sl_norm2(p, &pn));
    SL_TRY(sl_norm2(&s->v, &vn));
    if (vn == 0) {
        sl_model_zero_grad(s->work);
        return SL_OK;
    }
    double eps = sl_options_float(s->opt, "hvp_eps") * (pn > 1 ? pn : 1) / vn;
    SL_TRY(sl_axpy(eps, &s->v, p));
    SL_TRY(sl_model_loss(s->work, loss, x, y, true, &value));
    SL_TRY(sl_tensor_copy(&s->gp, g));
    SL_TRY(sl_tensor_copy(p, &s->theta));
    SL_TRY(sl_axpy(-eps, &s->v, p));
    SL_TRY(sl_model_loss(s->work, loss, x, y, true, &value));
    SL_TRY(sl_tensor_copy(p, &s->theta));
    /* g <- (g+ − g−) / ε  =  2 (g+ − g−) / (2ε) */
    SL_TRY(sl_scale(-1.0, g));
    SL_TRY(sl_axpy(1.0, &s->gp, g));
    return sl_scale(1.0 / eps, g);
}

int tp_measure(tp_state *s, const sl_loss_type *loss, const sl_tensor *x, const sl_tensor *y,
               tp_point *out)
{
    SL_TRY(sl_model_loss(s->work, loss, x, y, true, &out->loss));
    SL_TRY(sl_tensor_copy(&s->v, sl_model_flat_grads(s->work)));
    double nrm;
    SL_TRY(sl_norm2(&s->v, &nrm));
    out->gradsq = nrm * nrm;
    return SL_OK;
}

static tp_form form_of(const sl_options *opt)
{
    const char *f = sl_options_string(opt, "form");
    return strcmp(f, "2022") == 0 ? TP_FORM_2022
           : strcmp(f, "2023") == 0 ? TP_FORM_2023 : TP_FORM_REFERENCE_2022;
}

/* T_m <- lr T_m, then rescaled to Frobenius norm max_norm where longer
 * (max_norm 0: no clamp). */
static void scale_step(tp_mat *T, double lr, double max_norm)
{
    double sq = 0;
    for (int64_t i = 0; i < T->r * T->c; i++) {
        T->p[i] *= lr;
        sq += T->p[i] * T->p[i];
    }
    if (max_norm > 0 && sqrt(sq) > max_norm) {
        double f = max_norm / sqrt(sq);
        for (int64_t i = 0; i < T->r * T->c; i++)
            T->p[i] *= f;
    }
}

/* Copies the values of src into dst (same shapes). */
static void params_copy(const tp_net *n, tp_params *dst, const tp_params *src)
{
    for (int m = 0; m < n->nlayers; m++)
        memcpy(dst->P[m].p, src->P[m].p,
               (size_t)(src->P[m].r * src->P[m].c) * sizeof(double));
}

int tp_ascend(tp_state *s, tp_arena *a, const sl_loss_type *loss, const sl_tensor *x,
              const sl_tensor *y, tp_point *before, tp_point *after, int64_t *taken)
{
    const tp_net *n = &s->n;
    tp_form form = form_of(s->opt);
    double rcond = sl_options_float(s->opt, "rcond"), lr = sl_options_float(s->opt, "lr");
    double cap = sl_options_float(s->opt, "cap");
    double max_growth = sl_options_float(s->opt, "max_growth");
    double max_t_norm = sl_options_float(s->opt, "max_t_norm");
    int64_t steps = sl_options_int(s->opt, "steps");
    tp_params p, D, prev;
    SL_TRY(tp_params_new(a, n, &p));
    SL_TRY(tp_params_new(a, n, &D));
    if (max_growth > 0)
        SL_TRY(tp_params_new(a, n, &prev));
    tp_mat X = tp_batch_columns(a, x);
    if (!X.p)
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    if (X.r != n->in[0])
        return sl_error(SL_ESHAPE, "teleport: batch rows have %lld features, the first linear "
                                   "layer takes %lld", (long long)X.r, (long long)n->in[0]);
    tp_point cur;
    SL_TRY(tp_measure(s, loss, x, y, before));
    const double limit = max_growth * before->gradsq;
    *taken = 0;
    tp_load_params(s->work, n, &p, false);
    /* Neither action is the identity at g = I: 2022 projects V onto the
     * batch's span (V h̃ h̃⁺), 2023 projects U onto the span of the hidden
     * activations (U A A⁺).  Both keep the batch loss but can lower ‖∇L‖²
     * (the reference code does the same).  Start the ascent from there, so
     * that T = 0 is the identity and the tangents below are taken at the
     * point they describe. */
    SL_TRY(tp_apply_action(a, n, &p, &X, NULL, form, rcond));
    tp_store_params(s->work, n, &p);
    for (int64_t it = 0; it < steps; it++) {
        SL_TRY(tp_measure(s, loss, x, y, &cur));
        if (cap > 0 && cur.gradsq > cap)
            break;
        SL_TRY(hvp(s, loss, x, y));
        tp_load_params(s->work, n, &D, true);
        tp_layer_fwd f[TP_MAX_LAYERS];
        tp_mat dT[TP_MAX_LAYERS];
        SL_TRY(tp_forward(a, n, &p, &X, f));
        SL_TRY(tp_grad_T(a, n, &p, &D, f, form, rcond, dT));
        for (int m = 0; m + 1 < n->nlayers; m++)
            scale_step(&dT[m], lr, max_t_norm);
        if (max_growth > 0)
            params_copy(n, &prev, &p);
        SL_TRY(tp_apply_action(a, n, &p, &X, dT, form, rcond));
        tp_store_params(s->work, n, &p);
        if (max_growth > 0) {
            /* a non-finite ‖∇L‖² (the step overflowed) counts as too much */
            SL_TRY(tp_measure(s, loss, x, y, &cur));
            if (!(cur.gradsq <= limit)) {
                params_copy(n, &p, &prev);
                tp_store_params(s->work, n, &p);
                break;
            }
        }
        ++*taken;
    }
    return tp_measure(s, loss, x, y, after);
}

int tp_sharpness(tp_state *s, const sl_loss_type *loss, const sl_tensor *x, const sl_tensor *y,
                 int64_t iters, double *out)
{
    /* start from ∇L (it often leans toward the top eigenvector) */
    tp_point at;
    SL_TRY(tp_measure(s, loss, x, y, &at));
    double nrm = sqrt(at.gradsq), lambda = 0;
    if (!(nrm > 0)) {
        SL_TRY(sl_tensor_fill(&s->v, 1.0));
        SL_TRY(sl_norm2(&s->v, &nrm));
    }
    SL_TRY(sl_scale(1.0 / nrm, &s->v));
    sl_tensor *g = sl_model_flat_grads(s->work);
    for (int64_t it = 0; it < iters; it++) {
        SL_TRY(hvp(s, loss, x, y)); /* g = 2 H v, ‖v‖ = 1 */
        SL_TRY(sl_dot(&s->v, g, &lambda));
        lambda /= 2;
        SL_TRY(sl_norm2(g, &nrm));
        if (!(nrm > 0) || !isfinite(nrm))
            break;
        SL_TRY(sl_tensor_copy(&s->v, g));
        SL_TRY(sl_scale(1.0 / nrm, &s->v));
    }
    *out = lambda;
    return SL_OK;
}
