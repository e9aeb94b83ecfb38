/* core/nn/optimizers.c — the built-in update rules: sgd, adam, adamw,
 * adagrad, rmsprop.
 *
 * Each follows torch.optim's single-tensor algorithm (PyTorch 2.x, foreach
 * and fused off, maximize off) term for term, with the same option names,
 * defaults and checks, so that a run here and in PyTorch agree to rounding.
 * t = sl_optim_steps(o) + 1 is the step being taken (bias correction, the
 * first-step momentum buffer); a reset makes the next step a first step
 * again.  Per-element state lives in one block allocated in create(), in
 * the model's dtype; step() allocates nothing and walks the flat parameter
 * vector once.  Element updates are computed in the model's dtype, with
 * the step's scalars (lr, momentum, bias corrections) rounded to it once
 * per step, as PyTorch computes on float tensors: for an f32 model this
 * halves the work of the bandwidth-bound update against double arithmetic
 * and keeps the arithmetic PyTorch's.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nn/nn.h"

#define MAX_SLOTS 3

/* One optimizer's state.  buf[] holds the per-element vectors (NULL where
 * the configuration needs none); their meaning per rule:
 *   sgd:     buf[0] momentum_buffer
 *   adam(w): buf[0] exp_avg, buf[1] exp_avg_sq, buf[2] max_exp_avg_sq (amsgrad)
 *   adagrad: buf[0] sum (starts at initial_accumulator_value)
 *   rmsprop: buf[0] square_avg, buf[1] grad_avg (centered),
 *            buf[2] momentum_buffer (momentum > 0) */
typedef struct opt_state {
    double momentum, dampening, weight_decay;
    double beta1, beta2, eps, lr_decay, initial_acc, alpha;
    bool nesterov, amsgrad, centered, decoupled;
    sl_dtype dtype;
    int64_t n;
    void *block; /* owns every buf[] */
    void *buf[MAX_SLOTS];
} opt_state;

/* Scalars of the current step, computed once outside the element loop. */
typedef struct step_coef {
    double lr;
    bool first;        /* t == 1 */
    double step_size;  /* adam: lr / (1 - beta1^t) */
    double bc2_sqrt;   /* adam: sqrt(1 - beta2^t) */
    double clr;        /* adagrad: lr / (1 + (t - 1) lr_decay) */
    double decay;      /* adamw: 1 - lr weight_decay */
} step_coef;

/* ---- the update loops, stamped for float and double ------------------- */

/* sgd: d = g + wd p; b = d (t == 1) or momentum b + (1 - dampening) d;
 * d = nesterov ? d + momentum b : b; p -= lr d.
 *
 * The optimizer step touches every parameter and is bound by memory
 * bandwidth, so it must stream: the four switches are turned into
 * compile-time constants (one inlined copy of the loop per combination,
 * picked once per step), which leaves a loop without branches that the
 * compiler vectorises.  The head loop runs a multiple of 16 elements (the
 * widest vectorisation factor, 16 floats) so that GCC's -O2 cost model
 * ("vector code must replace all scalar code") accepts it.  The scalars
 * are copied into locals first: read through a pointer they might alias
 * p, which defeats vectorisation. */
#define DEFINE_SGD(T, SUF)                                                          \
    typedef struct sgd_coef_##SUF {                                                \
        T weight_decay, momentum, keep, neg_lr; /* keep = 1 - dampening */         \
    } sgd_coef_##SUF;                                                              \
    static inline __attribute__((always_inline)) void sgd_elem_##SUF(              \
        T *restrict p, T *restrict buf, const T *restrict g, int64_t i, T wdc,     \
        T momc, T keep, T neg_lr, bool wd, bool mom, bool first, bool nesterov)    \
    {                                                                              \
        T d = g[i];                                                                \
        if (wd)                                                                    \
            d = d + wdc * p[i];                                                    \
        if (mom) {                                                                 \
            T b = first ? d : momc * buf[i] + keep * d;                            \
            buf[i] = b;                                                            \
            d = nesterov ? d + momc * b : b;                                       \
        }                                                                          \
        p[i] = p[i] + neg_lr * d;                                                  \
    }                                                                              \
    static inline __attribute__((always_inline)) void sgd_span_##SUF(              \
        T *restrict p, T *restrict buf, const T *restrict g, int64_t n,            \
        const sgd_coef_##SUF *k, bool wd, bool mom, bool first, bool nesterov)     \
    {                                                                              \
        const T wdc = k->weight_decay, momc = k->momentum, keep = k->keep,         \
                neg_lr = k->neg_lr;                                                \
        int64_t i = 0, head = n & ~(int64_t)15;                                    \
        for (; i < head; i++)                                                      \
            sgd_elem_##SUF(p, buf, g, i, wdc, momc, keep, neg_lr, wd, mom, first,  \
                           nesterov);                                              \
        for (; i < n; i++)                                                         \
            sgd_elem_##SUF(p, buf, g, i, wdc, momc, keep, neg_lr, wd, mom, first,  \
                           nesterov);                                              \
    }                                                                              \
    /* One vectorised copy per CPU family: see SL_HOT_CLONES. */                \
    SL_HOT_CLONES static void                                                    \
    sgd_run_##SUF(                                                               \
        T *restrict p, T *restrict buf, const T *restrict g, int64_t n,            \
        const sgd_coef_##SUF *k, int flags)                                        \
    {                                                                              \
        switch (flags) {                                                           \
            SGD_CASES(SUF)                                                         \
        }                                                                          \
    }                                                                              \
    static void sgd_kernel_##SUF(const opt_state *s, const step_coef *c, void *pv, \
                                 const void *gv)                                   \
    {                                                                              \
        const sgd_coef_##SUF k = {(T)s->weight_decay, (T)s->momentum,              \
                                  (T)(1.0 - s->dampening), (T)-c->lr};             \
        bool mom = s->buf[0] != NULL;                                              \
        int flags = (s->weight_decay != 0.0) | mom << 1 | (mom && c->first) << 2 | \
                    (mom && s->nesterov) << 3;                                     \
        sgd_run_##SUF(pv, s->buf[0], gv, s->n, &k, flags);                         \
    }
/* One case per combination of the flags above (bits: wd, momentum, first
 * step, nesterov). */
#define SGD_CASE(SUF, F)                                                            \
    case F:                                                                         \
        sgd_span_##SUF(p, buf, g, n, k, (F)&1, (F)&2, (F)&4, (F)&8);             \
        break;
#define SGD_CASES(SUF)                                                              \
    SGD_CASE(SUF, 0) SGD_CASE(SUF, 1) SGD_CASE(SUF, 2) SGD_CASE(SUF, 3)             \
    SGD_CASE(SUF, 6) SGD_CASE(SUF, 7) SGD_CASE(SUF, 10) SGD_CASE(SUF, 11)           \
    SGD_CASE(SUF, 14) SGD_CASE(SUF, 15)

/* torch.lerp's two-sided formula, self + w (end - self), evaluated from
 * the nearer end; and the gradient with PyTorch's L2 weight-decay term
 * (skipped when wd == 0, as there, so that an infinite parameter does not
 * turn into NaN). */
#define DEFINE_HELPERS(T, SUF)                                                      \
    static inline T lerp_##SUF(T self, T end, T w)                                 \
    {                                                                              \
        return w < (T)0.5 ? self + w * (end - self) : end - (end - self) * ((T)1 - w); \
    }                                                                              \
    static inline T plus_l2_##SUF(T g, T p, T wd) { return wd != 0 ? g + wd * p : g; }

/* adam / adamw: p *= 1 - lr wd (adamw) or d = g + wd p (adam);
 * m = lerp(m, d, 1 - beta1); v = beta2 v + (1 - beta2) d^2; vmax = max(vmax, v);
 * p -= step_size m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps). */
#define DEFINE_ADAM(T, SUF)                                                         \
    static void adam_kernel_##SUF(const opt_state *s, const step_coef *c, void *pv, \
                                  const void *gv)                                  \
    {                                                                              \
        T *p = pv, *m = s->buf[0], *v = s->buf[1], *vmax = s->buf[2];              \
        const T *g = gv;                                                           \
        const T decay = (T)c->decay, wd = (T)s->weight_decay, beta2 = (T)s->beta2, \
                one_m_beta1 = (T)(1.0 - s->beta1), one_m_beta2 = (T)(1.0 - s->beta2), \
                bc2_sqrt = (T)c->bc2_sqrt, eps = (T)s->eps,                        \
                neg_step = (T)-c->step_size;                                       \
        for (int64_t i = 0; i < s->n; i++) {                                       \
            T pi = p[i], d = g[i];                                                 \
            if (s->decoupled)                                                      \
                pi *= decay;                                                       \
            else                                                                   \
                d = plus_l2_##SUF(d, pi, wd);                                      \
            T mi = lerp_##SUF(m[i], d, one_m_beta1);                               \
            T vi = v[i] * beta2 + one_m_beta2 * d * d;                             \
            m[i] = mi;                                                             \
            v[i] = vi;                                                             \
            if (vmax) {                                                            \
                vi = vmax[i] > vi ? vmax[i] : vi;                                  \
                vmax[i] = vi;                                                      \
            }                                                                      \
            T denom = (T)sqrt(vi) / bc2_sqrt + eps;                                \
            p[i] = pi + neg_step * mi / denom;                                     \
        }                                                                          \
    }

/* adagrad: d = g + wd p; sum += d^2; p -= clr d / (sqrt(sum) + eps). */
#define DEFINE_ADAGRAD(T, SUF)                                                      \
    static void adagrad_kernel_##SUF(const opt_state *s, const step_coef *c, void *pv, \
                                     const void *gv)                               \
    {                                                                              \
        T *p = pv, *sum = s->buf[0];                                               \
        const T *g = gv;                                                           \
        const T wd = (T)s->weight_decay, eps = (T)s->eps, neg_clr = (T)-c->clr;    \
        for (int64_t i = 0; i < s->n; i++) {                                       \
            T d = plus_l2_##SUF(g[i], p[i], wd);                                   \
            T si = sum[i] + d * d;                                                 \
            sum[i] = si;                                                           \
            p[i] = p[i] + neg_clr * d / ((T)sqrt(si) + eps);                       \
        }                                                                          \
    }

/* rmsprop: d = g + wd p; sq = alpha sq + (1 - alpha) d^2;
 * avg = sqrt(sq - ga^2) with ga = lerp(ga, d, 1 - alpha) (centered) or
 * sqrt(sq), plus eps; b = momentum b + d / avg, p -= lr b (momentum > 0)
 * or p -= lr d / avg. */
#define DEFINE_RMSPROP(T, SUF)                                                      \
    static void rmsprop_kernel_##SUF(const opt_state *s, const step_coef *c, void *pv, \
                                     const void *gv)                               \
    {                                                                              \
        T *p = pv, *sq = s->buf[0], *ga = s->buf[1], *mb = s->buf[2];              \
        const T *g = gv;                                                           \
        const T wd = (T)s->weight_decay, alpha = (T)s->alpha,                      \
                one_m_alpha = (T)(1.0 - s->alpha), eps = (T)s->eps,                \
                momentum = (T)s->momentum, neg_lr = (T)-c->lr;                     \
        for (int64_t i = 0; i < s->n; i++) {                                       \
            T d = plus_l2_##SUF(g[i], p[i], wd);                                   \
            T sqi = sq[i] * alpha + one_m_alpha * d * d;                           \
            sq[i] = sqi;                                                           \
            T avg = sqi;                                                           \
            if (ga) {                                                              \
                T gi = lerp_##SUF(ga[i], d, one_m_alpha);                          \
                ga[i] = gi;                                                        \
                avg -= gi * gi;                                                    \
            }                                                                      \
            avg = (T)sqrt(avg) + eps;                                              \
            if (mb) {                                                              \
                T b = mb[i] * momentum + d / avg;                                  \
                mb[i] = b;                                                         \
                p[i] = p[i] + neg_lr * b;                                          \
            } else {                                                               \
                p[i] = p[i] + neg_lr * d / avg;                                    \
            }                                                                      \
        }                                                                          \
    }

#define DEFINE_KERNELS(T, SUF) \
    DEFINE_HELPERS(T, SUF)     \
    DEFINE_SGD(T, SUF)         \
    DEFINE_ADAM(T, SUF)        \
    DEFINE_ADAGRAD(T, SUF)     \
    DEFINE_RMSPROP(T, SUF)

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* ---- shared plumbing -------------------------------------------------- */

typedef void (*kernel_fn)(const opt_state *s, const step_coef *c, void *p, const void *g);

static int run_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads, kernel_fn f32,
                    kernel_fn f64)
{
    opt_state *s = sl_optim_state(o);
    const char *name = sl_optim_name(o);
    if (!s)
        return sl_error(SL_ESTATE, "%s: optimizer has no state", name);
    if (params->dtype != s->dtype || grads->dtype != s->dtype ||
        sl_tensor_numel(params) != s->n || sl_tensor_numel(grads) != s->n ||
        !sl_tensor_is_contiguous(params) || !sl_tensor_is_contiguous(grads))
        return sl_error(SL_ESHAPE, "%s: expected contiguous %s parameters and gradients of "
                        "%lld elements", name, sl_dtype_name(s->dtype), (long long)s->n);
    double lr = sl_optim_lr(o);
    double t = (double)(sl_optim_steps(o) + 1);
    step_coef c = {
        .lr = lr,
        .first = sl_optim_steps(o) == 0,
        .step_size = lr / (1.0 - pow(s->beta1, t)),
        .bc2_sqrt = sqrt(1.0 - pow(s->beta2, t)),
        .clr = lr / (1.0 + (t - 1.0) * s->lr_decay),
        .decay = 1.0 - lr * s->weight_decay,
    };
    if (s->n > 0)
        (s->dtype == SL_F32 ? f32 : f64)(s, &c, params->data, grads->data);
    return SL_OK;
}

/* Allocates the per-element vectors named by `slots` (bit i: buf[i]) as one
 * zero-filled block and makes s the optimizer's state (freed by destroy). */
static int attach_state(sl_optim *o, opt_state *s, unsigned slots)
{
    const char *name = sl_optim_name(o);
    sl_model *model = sl_optim_model(o);
    s->dtype = sl_model_dtype(model);
    s->n = sl_optim_numel(o);
    if (s->dtype != SL_F32 && s->dtype != SL_F64)
        return sl_error(SL_EDTYPE, "%s: the model must be f32 or f64, not %s", name,
                        sl_dtype_name(s->dtype));
    size_t esize = sl_dtype_size(s->dtype);
    size_t count = 0;
    for (int k = 0; k < MAX_SLOTS; k++)
        count += (slots >> k) & 1u;
    opt_state *own = malloc(sizeof *own);
    if (!own)
        return sl_error(SL_ENOMEM, "%s: out of memory", name);
    *own = *s;
    /* One spare element keeps the block non-empty for an empty model. */
    own->block = sl_aligned_calloc(count * (size_t)s->n + 1, esize);
    if (!own->block) {
        free(own);
        return sl_error(SL_ENOMEM, "%s: out of memory for %zu state vectors of %lld elements",
                        name, count, (long long)s->n);
    }
    char *next = own->block;
    for (int k = 0; k < MAX_SLOTS; k++) {
        own->buf[k] = ((slots >> k) & 1u) ? next : NULL;
        if (own->buf[k])
            next += (size_t)s->n * esize;
    }
    sl_optim_set_state(o, own);
    return SL_OK;
}

/* Zeroes every state vector (adagrad then refills its accumulator). */
static void zero_state(sl_optim *o)
{
    opt_state *s = sl_optim_state(o);
    for (int k = 0; s && k < MAX_SLOTS; k++)
        if (s->buf[k])
            memset(s->buf[k], 0, (size_t)s->n * sl_dtype_size(s->dtype));
}

static void destroy_state(sl_optim *o)
{
    opt_state *s = sl_optim_state(o);
    if (s)
        sl_aligned_free(s->block);
    free(s);
    sl_optim_set_state(o, NULL);
}

/* Training checkpoints: the state vectors that are in use, under the names
 * torch.optim's state dicts give them (`names` lists slot k's name). */
static int slot_view(sl_optim *o, int i, const char *const names[MAX_SLOTS],
                     const char **name, sl_tensor *view)
{
    opt_state *s = sl_optim_state(o);
    for (int k = 0; s && k < MAX_SLOTS; k++) {
        if (!s->buf[k] || i-- > 0)
            continue;
        *name = names[k];
        SL_TRY(sl_tensor_wrap(view, s->buf[k], s->dtype, 1, &s->n));
        return 1;
    }
    return 0;
}

static int sgd_state(sl_optim *o, int i, const char **name, sl_tensor *view)
{
    static const char *const names[MAX_SLOTS] = {"momentum_buffer"};
    return slot_view(o, i, names, name, view);
}

static int adam_state(sl_optim *o, int i, const char **name, sl_tensor *view)
{
    static const char *const names[MAX_SLOTS] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return slot_view(o, i, names, name, view);
}

static int adagrad_state(sl_optim *o, int i, const char **name, sl_tensor *view)
{
    static const char *const names[MAX_SLOTS] = {"sum"};
    return slot_view(o, i, names, name, view);
}

static int rmsprop_state(sl_optim *o, int i, const char **name, sl_tensor *view)
{
    static const char *const names[MAX_SLOTS] = {"square_avg", "grad_avg", "momentum_buffer"};
    return slot_view(o, i, names, name, view);
}

/* PyTorch's range checks, with the option named. */
static int need_at_least(const char *owner, const char *key, double value, double lo)
{
    if (!(value >= lo))
        return sl_error(SL_EINVAL, "%s: option '%s' must be >= %g, got %g", owner, key, lo,
                        value);
    return SL_OK;
}

static int need_beta(const char *owner, const char *key, double value)
{
    if (!(value >= 0.0 && value < 1.0))
        return sl_error(SL_EINVAL, "%s: option '%s' must be in [0, 1), got %g", owner, key,
                        value);
    return SL_OK;
}

/* ---- sgd -------------------------------------------------------------- */

static const sl_option_spec sgd_options[] = {
    {"lr", SL_OPT_FLOAT, "0.01", "learning rate", NULL},
    {"momentum", SL_OPT_FLOAT, "0", "momentum factor", NULL},
    {"dampening", SL_OPT_FLOAT, "0", "dampening for momentum", NULL},
    {"weight_decay", SL_OPT_FLOAT, "0", "L2 penalty added to the gradient", NULL},
    {"nesterov", SL_OPT_BOOL, "false", "Nesterov momentum (needs momentum > 0, dampening 0)",
     NULL},
    {NULL, SL_OPT_FLOAT, NULL, NULL, NULL},
};

static int sgd_create(sl_optim *o, const sl_options *opt)
{
    opt_state s = {
        .momentum = sl_options_float(opt, "momentum"),
        .dampening = sl_options_float(opt, "dampening"),
        .weight_decay = sl_options_float(opt, "weight_decay"),
        .nesterov = sl_options_bool(opt, "nesterov"),
    };
    SL_TRY(need_at_least("sgd", "momentum", s.momentum, 0.0));
    SL_TRY(need_at_least("sgd", "weight_decay", s.weight_decay, 0.0));
    if (s.nesterov && (s.momentum <= 0.0 || s.dampening != 0.0))
        return sl_error(SL_EINVAL, "sgd: option 'nesterov' requires momentum > 0 and "
                        "dampening 0, got momentum %g, dampening %g", s.momentum, s.dampening);
    return attach_state(o, &s, s.momentum != 0.0 ? 1u : 0u);
}

static int sgd_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads)
{
    return run_step(o, params, grads, sgd_kernel_f32, sgd_kernel_f64);
}

const sl_optim_type sl_sgd_type = {
    .name = "sgd",
    .summary = "stochastic gradient descent with optional (Nesterov) momentum",
    .options = sgd_options,
    .create = sgd_create,
    .step = sgd_step,
    .reset = zero_state,
    .destroy = destroy_state,
    .state_tensor = sgd_state,
};

/* ---- adam, adamw ------------------------------------------------------ */

#define ADAM_COMMON_OPTIONS                                                          \
    {"lr", SL_OPT_FLOAT, "0.001", "learning rate", NULL},                             \
    {"beta1", SL_OPT_FLOAT, "0.9", "decay rate of the first moment", NULL},           \
    {"beta2", SL_OPT_FLOAT, "0.999", "decay rate of the second moment", NULL},        \
    {"eps", SL_OPT_FLOAT, "1e-8", "added to the denominator", NULL},                  \
    {"amsgrad", SL_OPT_BOOL, "false", "use the maximum of past second moments", NULL}

static const sl_option_spec adam_options[] = {
    ADAM_COMMON_OPTIONS,
    {"weight_decay", SL_OPT_FLOAT, "0", "L2 penalty added to the gradient", NULL},
    {NULL, SL_OPT_FLOAT, NULL, NULL, NULL},
};

static const sl_option_spec adamw_options[] = {
    ADAM_COMMON_OPTIONS,
    {"weight_decay", SL_OPT_FLOAT, "0.01", "decoupled weight decay (p *= 1 - lr wd)", NULL},
    {NULL, SL_OPT_FLOAT, NULL, NULL, NULL},
};

static int adam_family_create(sl_optim *o, const sl_options *opt, bool decoupled)
{
    const char *name = sl_optim_name(o);
    opt_state s = {
        .beta1 = sl_options_float(opt, "beta1"),
        .beta2 = sl_options_float(opt, "beta2"),
        .eps = sl_options_float(opt, "eps"),
        .weight_decay = sl_options_float(opt, "weight_decay"),
        .amsgrad = sl_options_bool(opt, "amsgrad"),
        .decoupled = decoupled,
    };
    SL_TRY(need_at_least(name, "eps", s.eps, 0.0));
    SL_TRY(need_beta(name, "beta1", s.beta1));
    SL_TRY(need_beta(name, "beta2", s.beta2));
    SL_TRY(need_at_least(name, "weight_decay", s.weight_decay, 0.0));
    return attach_state(o, &s, s.amsgrad ? 7u : 3u);
}

static int adam_create(sl_optim *o, const sl_options *opt)
{
    return adam_family_create(o, opt, false);
}

static int adamw_create(sl_optim *o, const sl_options *opt)
{
    return adam_family_create(o, opt, true);
}

static int adam_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads)
{
    return run_step(o, params, grads, adam_kernel_f32, adam_kernel_f64);
}

const sl_optim_type sl_adam_type = {
    .name = "adam",
    .summary = "Adam (Kingma & Ba), weight_decay as an L2 gradient term",
    .options = adam_options,
    .create = adam_create,
    .step = adam_step,
    .reset = zero_state,
    .destroy = destroy_state,
    .state_tensor = adam_state,
};

const sl_optim_type sl_adamw_type = {
    .name = "adamw",
    .summary = "AdamW (Loshchilov & Hutter): Adam with decoupled weight decay",
    .options = adamw_options,
    .create = adamw_create,
    .step = adam_step,
    .reset = zero_state,
    .destroy = destroy_state,
    .state_tensor = adam_state,
};

/* ---- adagrad ---------------------------------------------------------- */

static const sl_option_spec adagrad_options[] = {
    {"lr", SL_OPT_FLOAT, "0.01", "learning rate", NULL},
    {"lr_decay", SL_OPT_FLOAT, "0", "lr / (1 + (t - 1) lr_decay)", NULL},
    {"weight_decay", SL_OPT_FLOAT, "0", "L2 penalty added to the gradient", NULL},
    {"initial_accumulator_value", SL_OPT_FLOAT, "0", "starting sum of squared gradients",
     NULL},
    {"eps", SL_OPT_FLOAT, "1e-10", "added to the denominator", NULL},
    {NULL, SL_OPT_FLOAT, NULL, NULL, NULL},
};

/* The accumulator starts (and restarts) at initial_accumulator_value. */
static void adagrad_reset(sl_optim *o)
{
    opt_state *s = sl_optim_state(o);
    if (!s)
        return;
    sl_tensor sum;
    int64_t shape[1] = {s->n};
    if (sl_tensor_wrap(&sum, s->buf[0], s->dtype, 1, shape) == SL_OK)
        sl_tensor_fill(&sum, s->initial_acc);
}

static int adagrad_create(sl_optim *o, const sl_options *opt)
{
    opt_state s = {
        .lr_decay = sl_options_float(opt, "lr_decay"),
        .weight_decay = sl_options_float(opt, "weight_decay"),
        .initial_acc = sl_options_float(opt, "initial_accumulator_value"),
        .eps = sl_options_float(opt, "eps"),
    };
    SL_TRY(need_at_least("adagrad", "lr_decay", s.lr_decay, 0.0));
    SL_TRY(need_at_least("adagrad", "weight_decay", s.weight_decay, 0.0));
    SL_TRY(need_at_least("adagrad", "initial_accumulator_value", s.initial_acc, 0.0));
    SL_TRY(need_at_least("adagrad", "eps", s.eps, 0.0));
    SL_TRY(attach_state(o, &s, 1u));
    adagrad_reset(o);
    return SL_OK;
}

static int adagrad_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads)
{
    return run_step(o, params, grads, adagrad_kernel_f32, adagrad_kernel_f64);
}

const sl_optim_type sl_adagrad_type = {
    .name = "adagrad",
    .summary = "Adagrad: per-element steps scaled by accumulated squared gradients",
    .options = adagrad_options,
    .create = adagrad_create,
    .step = adagrad_step,
    .reset = adagrad_reset,
    .destroy = destroy_state,
    .state_tensor = adagrad_state,
};

/* ---- rmsprop ---------------------------------------------------------- */

static const sl_option_spec rmsprop_options[] = {
    {"lr", SL_OPT_FLOAT, "0.01", "learning rate", NULL},
    {"alpha", SL_OPT_FLOAT, "0.99", "smoothing constant of the squared-gradient average",
     NULL},
    {"eps", SL_OPT_FLOAT, "1e-8", "added to the denominator", NULL},
    {"weight_decay", SL_OPT_FLOAT, "0", "L2 penalty added to the gradient", NULL},
    {"momentum", SL_OPT_FLOAT, "0", "momentum factor", NULL},
    {"centered", SL_OPT_BOOL, "false", "normalise by the estimated gradient variance", NULL},
    {NULL, SL_OPT_FLOAT, NULL, NULL, NULL},
};

static int rmsprop_create(sl_optim *o, const sl_options *opt)
{
    opt_state s = {
        .alpha = sl_options_float(opt, "alpha"),
        .eps = sl_options_float(opt, "eps"),
        .weight_decay = sl_options_float(opt, "weight_decay"),
        .momentum = sl_options_float(opt, "momentum"),
        .centered = sl_options_bool(opt, "centered"),
    };
    SL_TRY(need_at_least("rmsprop", "eps", s.eps, 0.0));
    SL_TRY(need_at_least("rmsprop", "momentum", s.momentum, 0.0));
    SL_TRY(need_at_least("rmsprop", "weight_decay", s.weight_decay, 0.0));
    SL_TRY(need_at_least("rmsprop", "alpha", s.alpha, 0.0));
    unsigned slots = 1u | (s.centered ? 2u : 0u) | (s.momentum > 0.0 ? 4u : 0u);
    return attach_state(o, &s, slots);
}

static int rmsprop_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads)
{
    return run_step(o, params, grads, rmsprop_kernel_f32, rmsprop_kernel_f64);
}

const sl_optim_type sl_rmsprop_type = {
    .name = "rmsprop",
    .summary = "RMSprop (Hinton), optionally centered and with momentum",
    .options = rmsprop_options,
    .create = rmsprop_create,
    .step = rmsprop_step,
    .reset = zero_state,
    .destroy = destroy_state,
    .state_tensor = rmsprop_state,
};
