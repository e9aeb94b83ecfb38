/* plugins/conserved — conserved quantities of gradient flow and their drift
 * under discrete optimizers (Głuch & Urbanke 2021; docs/background/
 * conserved-quantities.md).
 *
 * Read from the model's structure (structure.h): every hidden layer of k
 * units whose maps allow any invertible mixing (identity-like: SL_SYM_GL)
 * gives a LINEAR pair, one whose maps allow positive rescaling (relu, leaky
 * relu, ...: SL_SYM_RESCALE) a RESCALE pair; other hidden layers give no
 * quantity.  With R the unit-major rows (units, width) of each unit ref —
 * the producing layer's weight W_l and bias b_l, the consuming layer's
 * weight columns W_{l+1} (a block of H*W columns per unit after a flatten):
 *
 *   linear  pair:  C = W_l W_lᵀ + b_l b_lᵀ − W_{l+1}ᵀ W_{l+1}      (k x k)
 *                  from the GL(k) symmetry W_l -> g W_l, b_l -> g b_l,
 *                  W_{l+1} -> W_{l+1} g⁻¹ (the bias term is the
 *                  augmented-input form of C_l);
 *   rescale pair:  Q_j = ‖W_l[j,:]‖² + b_l[j]² − ‖W_{l+1}[:,j]‖²   (k)
 *                  from the positive rescaling of neuron j;
 *   softmax:       the column sums 1ᵀW and 1ᵀb of the last weight layer,
 *                  conserved under cross-entropy because 1ᵀ(p − y) = 0.
 *
 * All are exactly conserved under gradient flow; one GD step moves them by
 * O(η²).  Arithmetic is in f64 whatever the model's dtype.
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

#define MAX_PAIRS 64

/* The model's quantities: one per hidden layer whose symmetry gives one
 * (structure.h), numbered in order as "pairs", and the last weight layer
 * for the column sums. */
typedef struct layout {
    sl_structure *st;
    int npairs;
    int hidden[MAX_PAIRS];   /* pair p's hidden layer */
    enum pair_kind kind[MAX_PAIRS];
    int last;                /* the last weight layer, or -1 */
} layout;

static void layout_free(layout *lay)
{
    sl_structure_free(lay->st);
    memset(lay, 0, sizeof *lay);
}

/* GL(k) symmetry (identity-like maps between): the matrix C; positive
 * rescaling (relu, leaky relu, ...): the vector Q; anything else: none. */
static int find_layout(sl_model *m, layout *lay)
{
    memset(lay, 0, sizeof *lay);
    SL_TRY(sl_model_structure(m, &lay->st));
    lay->last = sl_structure_nlayers(lay->st) - 1;
    if (lay->last < 0) {
        layout_free(lay);
        return sl_error(SL_EINVAL, "conserved: the model has no weight layer");
    }
    for (int h = 0; h < sl_structure_nhidden(lay->st); h++) {
        unsigned sym = sl_structure_hidden(lay->st, h)->symmetry;
        if (!(sym & (SL_SYM_GL | SL_SYM_RESCALE)))
            continue;
        if (lay->npairs == MAX_PAIRS) {
            layout_free(lay);
            return sl_error(SL_EINVAL, "conserved: more than %d hidden layers", MAX_PAIRS);
        }
        lay->hidden[lay->npairs] = h;
        lay->kind[lay->npairs++] = (sym & SL_SYM_GL) ? PAIR_LINEAR : PAIR_RESCALE;
    }
    return SL_OK;
}

static const sl_hidden_layer *pair_hidden(const layout *lay, int p)
{
    return sl_structure_hidden(lay->st, lay->hidden[p]);
}

/* Number of values pair p's quantity has. */
static int64_t pair_size(const layout *lay, int p)
{
    int64_t k = pair_hidden(lay, p)->units;
    return lay->kind[p] == PAIR_LINEAR ? k * k : k;
}

/* Writes pair p's quantity (C row-major, or Q) into q: over the unit refs
 * (rows of the producing layer's weight and bias, +; columns of the
 * consuming layer's weight, −) of the hidden layer,
 *   C = Σ± R Rᵀ  and  Q_j = Σ± ‖R_j‖²,  R the ref's (units, width) rows.
 * Terms are summed in the order the quantities were first defined in (for
 * Q: bias, incoming, outgoing; for C: incoming, outgoing, bias), so results
 * do not move with the order refs are listed in.  `work` holds the largest
 * ref's rows. */
static int pair_quantity(sl_model *m, const layout *lay, int p, double *q, double *work)
{
    const sl_hidden_layer *h = pair_hidden(lay, p);
    const int64_t k = h->units;
    const bool matrix = lay->kind[p] == PAIR_LINEAR;
    memset(q, 0, (size_t)pair_size(lay, p) * sizeof *q);
    static const int order_q[] = {0, 1, 2}, order_c[] = {1, 2, 0};
    for (int pass = 0; pass < 3; pass++) {
        /* pass kinds: 0 the bias (1-d OUT refs), 1 other OUT refs, 2 IN refs */
        const int want = (matrix ? order_c : order_q)[pass];
        for (int i = 0; i < h->nrefs; i++) {
            const sl_unit_ref *r = sl_hidden_ref(h, i);
            const bool bias = r->use == SL_UNITS_OUT && sl_unit_ref_tensor(m, r)->ndim == 1;
            if ((want == 0) != bias || (want == 1 && r->use != SL_UNITS_OUT) ||
                (want == 2 && r->use != SL_UNITS_IN))
                continue;
            const double sign = r->use == SL_UNITS_IN ? -1.0 : 1.0;
            const int64_t width = sl_unit_ref_width(m, r, k);
            SL_TRY(sl_unit_ref_rows(m, r, k, work));
            if (matrix && bias) {
                for (int64_t a = 0; a < k; a++)
                    for (int64_t b = 0; b < k; b++)
                        q[a * k + b] += work[a] * work[b];
            } else if (matrix) {
                sl_dgemm(false, true, k, k, width, sign, work, width, work, width, 1.0, q, k);
            } else {
                for (int64_t j = 0; j < k; j++)
                    for (int64_t c = 0; c < width; c++)
                        q[j] += sign * work[j * width + c] * work[j * width + c];
            }
        }
    }
    return SL_OK;
}

/* Column sums of the last weight layer's (units, fan_in) matrix, then the
 * sum of its bias. */
static int64_t colsum_size(const layout *lay)
{
    return sl_structure_layer(lay->st, lay->last)->fan_in + 1;
}

static int colsum_quantity(sl_model *m, const layout *lay, double *q, double *work)
{
    const sl_weight_layer *L = sl_structure_layer(lay->st, lay->last);
    sl_unit_ref w = {L->weight, -1, L->unit_axis, 1, SL_UNITS_OUT, L->module};
    SL_TRY(sl_unit_ref_rows(m, &w, L->units, work));
    for (int64_t i = 0; i <= L->fan_in; i++)
        q[i] = 0.0;
    for (int64_t o = 0; o < L->units; o++) {
        for (int64_t i = 0; i < L->fan_in; i++)
            q[i] += work[o * L->fan_in + i];
        if (L->bias >= 0)
            q[L->fan_in] += sl_tensor_flat_get(sl_model_param(m, L->bias), o);
    }
    return SL_OK;
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
    const sl_weight_layer *last = sl_structure_layer(lay->st, lay->last);
    int64_t nq = colsum_size(lay), nw = last->units * last->fan_in;
    for (int p = 0; p < lay->npairs; p++) {
        const sl_hidden_layer *h = pair_hidden(lay, p);
        int64_t n = pair_size(lay, p);
        nq = n > nq ? n : nq;
        for (int i = 0; i < h->nrefs; i++) {
            int64_t rows = sl_tensor_numel(sl_unit_ref_tensor(m, sl_hidden_ref(h, i)));
            nw = rows > nw ? rows : nw;
        }
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
        int64_t n = pair_size(lay, p);
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
    if (softmax) {
        int64_t n = colsum_size(lay);
        SL_TRY(colsum_quantity(m, lay, s->q, s->work));
        if (out)
            SL_TRY(put(out, "colsum", -1, "norm", l2(s->q, n)));
        if (ref) {
            SL_TRY(colsum_quantity(ref, lay, s->qref, s->work));
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
    const char *path = sl_options_string(opt, "reference");
    sl_model *ref = NULL;
    if (*path) {
        int rc = sl_model_clone(model, SL_F64, &ref);
        if (rc >= 0 && (rc = sl_model_load(ref, path)) < 0)
            rc = sl_error_context(rc, "conserved: reference");
        if (rc < 0) {
            sl_model_free(ref);
            layout_free(&lay);
            return rc;
        }
    }
    scratch s = {0};
    int rc = scratch_alloc(model, &lay, &s);
    if (rc >= 0)
        rc = report(model, ref, &lay, sl_options_bool(opt, "softmax"), &s, out, NULL);
    scratch_free(&s);
    sl_model_free(ref);
    layout_free(&lay);
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
    layout_free(&s->lay);
}

static int hook_begin(hook_state *s, sl_train_ctx *ctx)
{
    hook_release(s);
    SL_TRY(find_layout(ctx->model, &s->lay));
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
    /* acts only outside AFTER_BACKWARD: the update may be fused */
    .flags = SL_HOOK_NO_GRADIENT_AFTER_BACKWARD,
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
