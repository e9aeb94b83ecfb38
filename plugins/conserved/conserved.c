/* plugins/conserved — conserved quantities of gradient flow (../shared/PAPERS.md
 * section 5) and their drift under discrete optimizers.
 *
 * Found by walking the model's modules: every two linear layers l, l+1 with
 * only identity between them form a LINEAR pair, with relu or leaky_relu
 * between them a RESCALE pair (any other activation: no quantity).  With
 * W_l (k x in), b_l (k), W_{l+1} (out x k):
 *
 *   linear  pair:  C = W_l W_lᵀ + b_l b_lᵀ − W_{l+1}ᵀ W_{l+1}      (k x k)
 *                  from the GL(k) symmetry W_l -> g W_l, b_l -> g b_l,
 *                  W_{l+1} -> W_{l+1} g⁻¹ (the bias term is the augmented-
 *                  input form of PAPERS.md 5.2's C_l);
 *   rescale pair:  Q_j = ‖W_l[j,:]‖² + b_l[j]² − ‖W_{l+1}[:,j]‖²   (k)
 *                  from the positive rescaling of neuron j;
 *   softmax:       the column sums 1ᵀW and 1ᵀb of the last linear layer,
 *                  conserved under cross-entropy because 1ᵀ(p − y) = 0.
 *
 * All are exactly conserved under gradient flow; one GD step moves them by
 * O(η²) (PAPERS.md 5.3).  Arithmetic is in f64 whatever the model's dtype.
 *
 *   probe "conserved": the quantities' sizes, and with `reference` (a
 *                      checkpoint of the same model) their drift from it;
 *   hook  "conserved": records the reference at TRAIN_BEGIN and reports the
 *                      same numbers into the epoch's metrics at EPOCH_END
 *                      (and, with `every`, the maximum drift seen at every
 *                      N-th step). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

enum pair_kind { PAIR_LINEAR, PAIR_RESCALE };

#define MAX_LINEAR 64

typedef struct layout {
    int nlinear;
    int linear[MAX_LINEAR];  /* module indices of the linear layers */
    int npairs;
    int first[MAX_LINEAR];   /* pair p couples linear[first[p]] and the next one */
    enum pair_kind kind[MAX_LINEAR];
} layout;

static bool is_type(sl_module *mod, const char *name)
{
    return strcmp(sl_module_type_of(mod)->name, name) == 0;
}

/* Pairs of consecutive linear layers and what separates them. */
static int find_layout(sl_model *m, layout *lay)
{
    memset(lay, 0, sizeof *lay);
    int nrescale = 0, nother = 0;
    for (int i = 0; i < sl_model_nmodules(m); i++) {
        sl_module *mod = sl_model_module(m, i);
        if (is_type(mod, "linear")) {
            if (lay->nlinear == MAX_LINEAR)
                return sl_error(SL_EINVAL, "conserved: more than %d linear layers", MAX_LINEAR);
            if (lay->nlinear > 0 && nother == 0 && nrescale <= 1) {
                lay->first[lay->npairs] = lay->nlinear - 1;
                lay->kind[lay->npairs++] = nrescale ? PAIR_RESCALE : PAIR_LINEAR;
            }
            lay->linear[lay->nlinear++] = i;
            nrescale = nother = 0;
        } else if (is_type(mod, "relu") || is_type(mod, "leaky_relu")) {
            nrescale++;
        } else if (!is_type(mod, "identity")) {
            nother++;
        }
    }
    return SL_OK;
}

typedef struct lin {
    int64_t out, in;
    const sl_tensor *w, *b; /* b NULL without bias */
} lin;

static lin linear_at(sl_model *m, int module)
{
    sl_module *mod = sl_model_module(m, module);
    const sl_options *o = sl_module_options(mod);
    lin l = {sl_options_int(o, "out_features"), sl_options_int(o, "in_features"),
             sl_module_param(mod, 0), sl_options_bool(o, "bias") ? sl_module_param(mod, 1) : NULL};
    return l;
}

static void to_f64(const sl_tensor *t, double *out)
{
    int64_t n = sl_tensor_numel(t);
    if (t->dtype == SL_F64)
        memcpy(out, t->data, (size_t)n * sizeof *out);
    else
        for (int64_t i = 0; i < n; i++)
            out[i] = sl_tensor_flat_get(t, i);
}

/* Number of values pair p's quantity has. */
static int64_t pair_size(sl_model *m, const layout *lay, int p)
{
    lin a = linear_at(m, lay->linear[lay->first[p]]);
    return lay->kind[p] == PAIR_LINEAR ? a.out * a.out : a.out;
}

/* Writes pair p's quantity (C row-major, or Q) into q; `work` holds at least
 * a.out*a.in + b.out*b.in doubles. */
static int pair_quantity(sl_model *m, const layout *lay, int p, double *q, double *work)
{
    lin a = linear_at(m, lay->linear[lay->first[p]]);
    lin b = linear_at(m, lay->linear[lay->first[p] + 1]);
    if (b.in != a.out)
        return sl_error(SL_ESHAPE, "conserved: linear layers %d and %d do not chain",
                        lay->linear[lay->first[p]], lay->linear[lay->first[p] + 1]);
    int64_t k = a.out;
    double *wa = work, *wb = work + a.out * a.in;
    to_f64(a.w, wa);
    to_f64(b.w, wb);
    if (lay->kind[p] == PAIR_LINEAR) {
        /* C = Wa Waᵀ − Wbᵀ Wb, then + b bᵀ */
        sl_dgemm(false, true, k, k, a.in, 1.0, wa, a.in, wa, a.in, 0.0, q, k);
        sl_dgemm(true, false, k, k, b.out, -1.0, wb, k, wb, k, 1.0, q, k);
        if (a.b)
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < k; j++)
                    q[i * k + j] += sl_tensor_flat_get(a.b, i) * sl_tensor_flat_get(a.b, j);
        return SL_OK;
    }
    for (int64_t j = 0; j < k; j++) {
        double s = a.b ? sl_tensor_flat_get(a.b, j) * sl_tensor_flat_get(a.b, j) : 0.0;
        for (int64_t i = 0; i < a.in; i++)
            s += wa[j * a.in + i] * wa[j * a.in + i];
        for (int64_t o = 0; o < b.out; o++)
            s -= wb[o * k + j] * wb[o * k + j];
        q[j] = s;
    }
    return SL_OK;
}

/* Column sums of the last linear layer's weight, then the sum of its bias. */
static int64_t colsum_size(sl_model *m, const layout *lay)
{
    return linear_at(m, lay->linear[lay->nlinear - 1]).in + 1;
}

static void colsum_quantity(sl_model *m, const layout *lay, double *q)
{
    lin l = linear_at(m, lay->linear[lay->nlinear - 1]);
    for (int64_t i = 0; i <= l.in; i++)
        q[i] = 0.0;
    for (int64_t o = 0; o < l.out; o++) {
        for (int64_t i = 0; i < l.in; i++)
            q[i] += sl_tensor_flat_get(l.w, o * l.in + i);
        if (l.b)
            q[l.in] += sl_tensor_flat_get(l.b, o);
    }
}

static double l2(const double *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

static double absmax(const double *v, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s = fabs(v[i]) > s ? fabs(v[i]) : s;
    return s;
}

/* Scratch sized for the largest pair: quantity of the model, of the
 * reference, and the f64 weight copies. */
typedef struct scratch {
    double *q, *qref, *work;
} scratch;

static int scratch_alloc(sl_model *m, const layout *lay, scratch *s)
{
    int64_t nq = colsum_size(m, lay), nw = 0;
    for (int p = 0; p < lay->npairs; p++) {
        lin a = linear_at(m, lay->linear[lay->first[p]]);
        lin b = linear_at(m, lay->linear[lay->first[p] + 1]);
        int64_t n = pair_size(m, lay, p);
        nq = n > nq ? n : nq;
        nw = a.out * a.in + b.out * b.in > nw ? a.out * a.in + b.out * b.in : nw;
    }
    s->q = malloc((size_t)nq * sizeof(double));
    s->qref = malloc((size_t)nq * sizeof(double));
    s->work = malloc((size_t)(nw > 0 ? nw : 1) * sizeof(double));
    if (!s->q || !s->qref || !s->work)
        return sl_error(SL_ENOMEM, "conserved: out of memory");
    return SL_OK;
}

static void scratch_free(scratch *s)
{
    free(s->q);
    free(s->qref);
    free(s->work);
}

/* Puts name = value where name is printf(fmt, p, suffix). */
static int put(sl_record *out, const char *prefix, int p, const char *suffix, double v)
{
    char name[64];
    if (p >= 0)
        snprintf(name, sizeof name, "%s%d_%s", prefix, p, suffix);
    else
        snprintf(name, sizeof name, "%s_%s", prefix, suffix);
    return sl_record_set(out, name, v);
}

/* Every quantity of `m` and, with ref, its drift since ref; also the largest
 * drift of all into *max_drift when not NULL. */
static int report(sl_model *m, sl_model *ref, const layout *lay, bool softmax, scratch *s,
                  sl_record *out, double *max_drift)
{
    double worst = 0.0;
    for (int p = 0; p < lay->npairs; p++) {
        int64_t n = pair_size(m, lay, p);
        SL_TRY(pair_quantity(m, lay, p, s->q, s->work));
        bool lin_pair = lay->kind[p] == PAIR_LINEAR;
        const char *pre = lin_pair ? "C" : "Q";
        if (out) {
            SL_TRY(put(out, pre, p, lin_pair ? "norm" : "l2", l2(s->q, n)));
            if (!lin_pair) {
                SL_TRY(put(out, pre, p, "absmax", absmax(s->q, n)));
                double sum = 0.0;
                for (int64_t j = 0; j < n; j++)
                    sum += s->q[j];
                SL_TRY(put(out, pre, p, "sum", sum));
            }
        }
        if (!ref)
            continue;
        SL_TRY(pair_quantity(ref, lay, p, s->qref, s->work));
        for (int64_t j = 0; j < n; j++)
            s->qref[j] = s->q[j] - s->qref[j];
        /* C: Frobenius norm of the change; Q: the largest change of a neuron. */
        double d = lin_pair ? l2(s->qref, n) : absmax(s->qref, n);
        worst = d > worst ? d : worst;
        if (out)
            SL_TRY(put(out, pre, p, "drift", d));
    }
    if (softmax && lay->nlinear > 0) {
        int64_t n = colsum_size(m, lay);
        colsum_quantity(m, lay, s->q);
        if (out)
            SL_TRY(put(out, "colsum", -1, "norm", l2(s->q, n)));
        if (ref) {
            colsum_quantity(ref, lay, s->qref);
            for (int64_t j = 0; j < n; j++)
                s->qref[j] = s->q[j] - s->qref[j];
            double d = l2(s->qref, n);
            worst = d > worst ? d : worst;
            if (out)
                SL_TRY(put(out, "colsum", -1, "drift", d));
        }
    }
    if (max_drift)
        *max_drift = worst;
    return SL_OK;
}

/* ---- probe ---------------------------------------------------------------- */

static const sl_option_spec probe_options[] = {
    {"reference", SL_OPT_STRING, "",
     "checkpoint (safetensors) of the same model to measure drift from; \"\" for none", NULL},
    {"softmax", SL_OPT_BOOL, "false",
     "also report the last layer's column sums (conserved under cross-entropy)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int probe_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                         sl_record *out)
{
    (void)data;
    layout lay;
    SL_TRY(find_layout(model, &lay));
    if (lay.nlinear == 0)
        return sl_error(SL_EINVAL, "conserved: the model has no linear layer");
    const char *path = sl_options_string(opt, "reference");
    sl_model *ref = NULL;
    if (*path) {
        int rc = sl_model_clone(model, SL_F64, &ref);
        if (rc >= 0 && (rc = sl_model_load(ref, path)) < 0)
            rc = sl_error_context(rc, "conserved: reference");
        if (rc < 0) {
            sl_model_free(ref);
            return rc;
        }
    }
    scratch s = {0};
    int rc = scratch_alloc(model, &lay, &s);
    if (rc >= 0)
        rc = report(model, ref, &lay, sl_options_bool(opt, "softmax"), &s, out, NULL);
    scratch_free(&s);
    sl_model_free(ref);
    return rc;
}

static const sl_probe_type conserved_probe = {
    .name = "conserved",
    .summary = "conserved quantities C_l, Q_j, softmax column sums, and drift from a checkpoint",
    .options = probe_options,
    .measure = probe_measure,
};

/* ---- hook ----------------------------------------------------------------- */

static const sl_option_spec hook_options[] = {
    {"softmax", SL_OPT_STRING, "auto",
     "report the last layer's column sums: auto (with cross_entropy), true, false",
     "auto|true|false"},
    {"every", SL_OPT_INT, "0",
     "also measure after every N-th step and report the largest drift seen (0: epoch ends only)",
     NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

typedef struct hook_state {
    const sl_options *opt;
    sl_model *ref; /* f64 copy of the model at TRAIN_BEGIN */
    layout lay;
    scratch s;
    bool softmax;
    double max_drift; /* largest drift seen at the measured steps this run */
} hook_state;

static int hook_create(sl_hook *h, const sl_options *opt)
{
    hook_state *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "conserved: out of memory");
    sl_hook_set_state(h, s);
    s->opt = opt;
    if (sl_options_int(opt, "every") < 0)
        return sl_error(SL_EINVAL, "conserved: every must be >= 0, got %lld",
                        (long long)sl_options_int(opt, "every"));
    return SL_OK;
}

static void hook_release(hook_state *s)
{
    sl_model_free(s->ref);
    s->ref = NULL;
    scratch_free(&s->s);
    memset(&s->s, 0, sizeof s->s);
}

static int hook_begin(hook_state *s, sl_train_ctx *ctx)
{
    hook_release(s);
    SL_TRY(find_layout(ctx->model, &s->lay));
    if (s->lay.nlinear == 0)
        return sl_error(SL_EINVAL, "conserved: the model has no linear layer");
    const char *sm = sl_options_string(s->opt, "softmax");
    s->softmax = strcmp(sm, "true") == 0 ||
                 (strcmp(sm, "auto") == 0 && strcmp(ctx->loss->name, "cross_entropy") == 0);
    s->max_drift = 0.0;
    SL_TRY(sl_model_clone(ctx->model, SL_F64, &s->ref));
    return scratch_alloc(ctx->model, &s->lay, &s->s);
}

static int hook_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    hook_state *s = sl_hook_state(h);
    int64_t every = sl_options_int(s->opt, "every");
    double d;
    switch (ev) {
    case SL_EV_TRAIN_BEGIN:
        return hook_begin(s, ctx);
    case SL_EV_AFTER_STEP:
        if (every <= 0 || (ctx->step + 1) % every != 0)
            return SL_OK;
        SL_TRY(report(ctx->model, s->ref, &s->lay, s->softmax, &s->s, NULL, &d));
        s->max_drift = d > s->max_drift ? d : s->max_drift;
        return SL_OK;
    case SL_EV_EPOCH_END:
        SL_TRY(report(ctx->model, s->ref, &s->lay, s->softmax, &s->s, ctx->metrics, &d));
        s->max_drift = d > s->max_drift ? d : s->max_drift;
        return sl_record_set(ctx->metrics, "conserved_max_drift", s->max_drift);
    default:
        return SL_OK;
    }
}

static void hook_destroy(sl_hook *h)
{
    hook_state *s = sl_hook_state(h);
    hook_release(s);
    free(s);
}

static const sl_hook_type conserved_hook = {
    .name = "conserved",
    .summary = "drift of conserved quantities since TRAIN_BEGIN, reported at each epoch end",
    .options = hook_options,
    .create = hook_create,
    .on_event = hook_on_event,
    .destroy = hook_destroy,
};

static const sl_hook_type *const hooks[] = {&conserved_hook, NULL};
static const sl_probe_type *const probes[] = {&conserved_probe, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "conserved",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "Noether: conserved quantities of gradient flow and their drift",
    .hooks = hooks,
    .probes = probes,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
