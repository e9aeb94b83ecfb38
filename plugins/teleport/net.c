/* plugins/teleport/net.c — the network as the teleport sees it: a chain of
 * dense weight layers read from the structure walker (structure.h), the
 * slopes of the activations between them, augmented parameters [W | b], and
 * the teleport's own f64 MLP forward on the teleport batch. */
#include "config.h"

#include <string.h>

#include "tp.h"

static const char *type_name(sl_model *m, int i)
{
    return sl_module_type_of(sl_model_module(m, i))->name;
}

/* c₊ and c₋ of module i (per-unit, homogeneous), read by running its
 * forward on rows of +1 and −1 shaped like its k-unit input. */
static int measure_slopes(sl_model *m, int i, int64_t k, tp_slopes *out)
{
    sl_module *mod = sl_model_module(m, i);
    int64_t shape[2] = {2, k};
    sl_tensor x = {0}, y = {0};
    int rc = sl_tensor_alloc(&x, sl_module_dtype(mod), 2, shape);
    if (rc >= 0)
        rc = sl_tensor_alloc(&y, sl_module_dtype(mod), 2, shape);
    for (int64_t j = 0; rc >= 0 && j < k; j++) {
        sl_tensor_set(&x, (int64_t[]){0, j}, 1.0);
        sl_tensor_set(&x, (int64_t[]){1, j}, -1.0);
    }
    if (rc >= 0)
        rc = sl_module_type_of(mod)->forward(mod, &x, &y);
    if (rc >= 0) {
        out->pos = sl_tensor_flat_get(&y, 0);
        out->neg = -sl_tensor_flat_get(&y, k);
    }
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    return rc;
}

/* Modules that pass values through unchanged for the teleport's own MLP
 * forward: reshapes and identity-like per-unit maps without tensors. */
static bool passes_through(const sl_module_role *r)
{
    const unsigned id = SL_UNIT_HOMOGENEOUS | SL_UNIT_ODD | SL_UNIT_LINEAR;
    return r->kind == SL_ROLE_RESHAPE ||
           (r->kind == SL_ROLE_PER_UNIT && (r->flags & id) == id && !r->unit_tensors &&
            !(r->flags & (SL_UNIT_RESAMPLES | SL_UNIT_STOCHASTIC)));
}

/* Accepts a chain of 2-d weight layers (linear) whose hidden layers pass
 * through invertible positively homogeneous maps (leaky_relu), with only
 * pass-through modules before the first and after the last (structure.h). */
int tp_describe_net(sl_model *m, const sl_structure *st, tp_net *n)
{
    memset(n, 0, sizeof *n);
    n->nlayers = sl_structure_nlayers(st);
    if (n->nlayers < 2 || n->nlayers > TP_MAX_LAYERS)
        return sl_error(SL_EINVAL, "teleport: needs 2 to %d weight layers separated by "
                                   "invertible activations such as leaky_relu", TP_MAX_LAYERS);
    const int first = sl_structure_layer(st, 0)->module;
    const int last = sl_structure_layer(st, n->nlayers - 1)->module;
    for (int i = 0; i < sl_model_nmodules(m); i++)
        if ((i < first || i > last) && !passes_through(sl_module_role_of(sl_model_module(m, i))))
            return sl_error(SL_EINVAL, "teleport: module %d (%s) does not fit; teleport needs "
                                       "weight layers separated by leaky_relu", i + 1,
                            type_name(m, i));
    for (int l = 0; l < n->nlayers; l++) {
        const sl_weight_layer *L = sl_structure_layer(st, l);
        if (L->module < 0)
            return sl_error(SL_EINVAL, "teleport: module %s (%s) is inside a container; "
                                       "teleport needs a plain chain of weight layers",
                            sl_module_path(L->mod), sl_module_type_of(L->mod)->name);
        const sl_tensor *w = sl_model_param(m, L->weight);
        if (w->ndim != 2 || L->unit_axis != 0 || L->input_axis != 1)
            return sl_error(SL_EINVAL, "teleport: module %d (%s) is not a dense (out, in) "
                                       "weight layer", L->module + 1, type_name(m, L->module));
        n->weight[l] = L->weight;
        n->bias[l] = L->bias;
        n->out[l] = w->shape[0];
        n->in[l] = w->shape[1];
        if (l + 1 == n->nlayers)
            break;
        const sl_hidden_layer *h = sl_structure_hidden(st, L->hidden_out);
        const int next = sl_structure_layer(st, l + 1)->module;
        const sl_tensor *wn = sl_model_param(m, sl_structure_layer(st, l + 1)->weight);
        if (!h || h->consumer != l + 1 || h->nproducers != 1 || h->nconsumers != 1 ||
            (h->symmetry & SL_SYM_RESCALE) == 0 ||
            wn->ndim != 2 || wn->shape[1] != n->out[l])
            return sl_error(SL_EINVAL, "teleport: modules %d to %d do not fit; teleport needs "
                                       "weight layers separated by leaky_relu",
                            L->module + 1, next + 1);
        n->act[l] = (tp_slopes){1.0, 1.0};
        for (int i = L->module + 1; i < next; i++) {
            if (sl_module_role_of(sl_model_module(m, i))->kind != SL_ROLE_PER_UNIT)
                continue;
            tp_slopes s;
            SL_TRY(measure_slopes(m, i, n->out[l], &s));
            if (!(s.pos > 0 && s.neg > 0))
                return sl_error(SL_EINVAL, "teleport: module %d (%s) maps x to %g x (x > 0) and "
                                           "%g x (x < 0); the action needs an invertible "
                                           "activation", i + 1, type_name(m, i), s.pos, s.neg);
            n->act[l].pos *= s.pos;
            n->act[l].neg *= s.neg;
        }
    }
    return SL_OK;
}

static double act(double z, tp_slopes a) { return z > 0 ? a.pos * z : a.neg * z; }
double tp_act_inv(double y, tp_slopes a) { return y > 0 ? y / a.pos : y / a.neg; }
static double act_deriv(double z, tp_slopes a) { return z > 0 ? a.pos : a.neg; }

int64_t tp_aug(const tp_net *n, int m) { return n->in[m] + (n->bias[m] >= 0 ? 1 : 0); }

void tp_load_params(sl_model *work, const tp_net *n, tp_params *p, bool grads)
{
    for (int m = 0; m < n->nlayers; m++) {
        sl_tensor *(*get)(sl_model *, int) = grads ? sl_model_grad : sl_model_param;
        const double *w = get(work, n->weight[m])->data;
        const double *b = n->bias[m] >= 0 ? get(work, n->bias[m])->data : NULL;
        for (int64_t i = 0; i < n->out[m]; i++) {
            memcpy(tp_at(&p->P[m], i, 0), w + i * n->in[m], (size_t)n->in[m] * sizeof(double));
            if (b)
                *tp_at(&p->P[m], i, n->in[m]) = b[i];
        }
    }
}

void tp_store_params(sl_model *work, const tp_net *n, const tp_params *p)
{
    for (int m = 0; m < n->nlayers; m++) {
        double *w = sl_model_param(work, n->weight[m])->data;
        double *b = n->bias[m] >= 0 ? sl_model_param(work, n->bias[m])->data : NULL;
        for (int64_t i = 0; i < n->out[m]; i++) {
            memcpy(w + i * n->in[m], tp_at(&p->P[m], i, 0), (size_t)n->in[m] * sizeof(double));
            if (b)
                b[i] = *tp_at(&p->P[m], i, n->in[m]);
        }
    }
}

int tp_params_new(tp_arena *a, const tp_net *n, tp_params *p)
{
    for (int m = 0; m < n->nlayers; m++)
        if (!(p->P[m] = tp_mat_new(a, n->out[m], tp_aug(n, m))).p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
    return SL_OK;
}

/* [h; 1] for layers with a bias, h otherwise, from the rows of x (batch x in)
 * or from activations A (k x batch). */
tp_mat tp_augment(tp_arena *a, const tp_net *n, int m, const tp_mat *h)
{
    tp_mat H = tp_mat_new(a, tp_aug(n, m), h->c);
    if (!H.p)
        return H;
    for (int64_t i = 0; i < h->r; i++)
        memcpy(tp_at(&H, i, 0), tp_at(h, i, 0), (size_t)h->c * sizeof(double));
    if (n->bias[m] >= 0)
        for (int64_t j = 0; j < h->c; j++)
            *tp_at(&H, h->r, j) = 1.0;
    return H;
}

void tp_apply_act(const tp_mat *Z, tp_mat *A, tp_mat *S, tp_slopes a)
{
    for (int64_t i = 0; i < Z->r; i++)
        for (int64_t j = 0; j < Z->c; j++) {
            double z = *tp_at(Z, i, j);
            *tp_at(A, i, j) = act(z, a);
            if (S)
                *tp_at(S, i, j) = act_deriv(z, a);
        }
}

int tp_forward(tp_arena *a, const tp_net *n, const tp_params *p, const tp_mat *X, tp_layer_fwd *f)
{
    tp_mat h = *X;
    for (int m = 0; m + 1 < n->nlayers; m++) {
        f[m].H = tp_augment(a, n, m, &h);
        if (!f[m].H.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        f[m].Z = tp_mm_new(a, &p->P[m], false, &f[m].H, false);
        f[m].A = tp_mat_new(a, f[m].Z.r, f[m].Z.c);
        f[m].S = tp_mat_new(a, f[m].Z.r, f[m].Z.c);
        if (!f[m].Z.p || !f[m].A.p || !f[m].S.p)
            return sl_error(SL_ENOMEM, "teleport: out of memory");
        tp_apply_act(&f[m].Z, &f[m].A, &f[m].S, n->act[m]);
        h = f[m].A;
    }
    return SL_OK;
}
