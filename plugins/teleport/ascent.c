/* plugins/teleport/ascent.c — the ascent on obj = ‖∇L‖² over g_m = I + T_m,
 * each step from T = 0: ∂obj/∂T = Jᵀ (2 H ∇L), with H∇L a central
 * finite-difference Hessian-vector product in f64 (two extra gradients) and
 * Jᵀ the transposed tangent of the group action (action.c), contracted
 * analytically (pseudo-inverse derivatives included).  Omitted: in the 2023
 * form the coupling of pair m to pair m+1 through moved activations, which
 * vanishes in the exact regime.  Everything runs on the f64 clone s->work. */
#include "config.h"

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
    return strcmp(sl_options_string(opt, "form"), "2022") == 0 ? TP_FORM_2022 : TP_FORM_2023;
}

int tp_ascend(tp_state *s, tp_arena *a, const sl_loss_type *loss, const sl_tensor *x,
              const sl_tensor *y, tp_point *before, tp_point *after)
{
    const tp_net *n = &s->n;
    tp_form form = form_of(s->opt);
    double rcond = sl_options_float(s->opt, "rcond"), lr = sl_options_float(s->opt, "lr");
    double cap = sl_options_float(s->opt, "cap");
    int64_t steps = sl_options_int(s->opt, "steps");
    tp_params p, D;
    SL_TRY(tp_params_new(a, n, &p));
    SL_TRY(tp_params_new(a, n, &D));
    tp_mat X = tp_batch_columns(a, x);
    if (!X.p)
        return sl_error(SL_ENOMEM, "teleport: out of memory");
    if (X.r != n->in[0])
        return sl_error(SL_ESHAPE, "teleport: batch rows have %lld features, the first linear "
                                   "layer takes %lld", (long long)X.r, (long long)n->in[0]);
    tp_point cur;
    SL_TRY(tp_measure(s, loss, x, y, before));
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
            for (int64_t i = 0; i < dT[m].r * dT[m].c; i++)
                dT[m].p[i] *= lr;
        SL_TRY(tp_apply_action(a, n, &p, &X, dT, form, rcond));
        tp_store_params(s->work, n, &p);
    }
    return tp_measure(s, loss, x, y, after);
}
