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

/* ---- the update loops, one source compiled for float and for double ----- */

/* nn/optimizers_generic.h, written once against the element type T and
 * the name suffixer SUF(), compiled for float and for double through
 * generic_real.h: sgd_kernel_f32, sgd_kernel_f64, ... as ordinary code that
 * debuggers and diagnostics can point into. */
#define SL_GENERIC_FILE "nn/optimizers_generic.h"
#include "generic_real.h"

/* ---- shared plumbing -------------------------------------------------- */

typedef void (*kernel_fn)(const opt_state *s, const step_coef *c, void *p, const void *g,
                          int64_t begin, int64_t end);

/* One update over elements [begin, end), split over the thread pool: each
 * element's update reads and writes only that element, so any split gives
 * the same bits.  A part is UPDATE_GRAIN elements (1 MB per f32 array):
 * the update runs right after the layer's backward, on gradients in the
 * caller's cache, and a worker must first pull its part across cores.
 * With 32768 elements a worker's part took 4-10x the caller's on the
 * 2-core virtual machines (the 784-256-256-10 MLP ran ~20 % slower on 2
 * threads at batch 16); now only layers of 512k+ parameters split. */
#define UPDATE_GRAIN 262144

typedef struct update_job {
    kernel_fn kernel;
    const opt_state *s;
    const step_coef *c;
    void *p;
    const void *g;
    int64_t offset;
} update_job;

static void update_part(void *ctx, int64_t begin, int64_t end, int part)
{
    const update_job *j = ctx;
    j->kernel(j->s, j->c, j->p, j->g, j->offset + begin, j->offset + end);
    (void)part;
}

static int run_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads, kernel_fn f32,
                    kernel_fn f64, int64_t begin, int64_t end)
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
    if (begin < 0 || end > s->n || begin > end)
        return sl_error(SL_EINVAL, "%s: update range [%lld, %lld) outside the %lld parameters",
                        name, (long long)begin, (long long)end, (long long)s->n);
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
    update_job j = {.kernel = s->dtype == SL_F32 ? f32 : f64, .s = s, .c = &c,
                    .p = params->data, .g = grads->data, .offset = begin};
    sl_parallel_for(end - begin, UPDATE_GRAIN, update_part, &j);
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
    return run_step(o, params, grads, sgd_kernel_f32, sgd_kernel_f64, 0, sl_tensor_numel(params));
}

static int sgd_step_range(sl_optim *o, sl_tensor *params, const sl_tensor *grads,
                         int64_t begin, int64_t end)
{
    return run_step(o, params, grads, sgd_kernel_f32, sgd_kernel_f64, begin, end);
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
    .step_range = sgd_step_range,
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
    return run_step(o, params, grads, adam_kernel_f32, adam_kernel_f64, 0, sl_tensor_numel(params));
}

static int adam_step_range(sl_optim *o, sl_tensor *params, const sl_tensor *grads,
                         int64_t begin, int64_t end)
{
    return run_step(o, params, grads, adam_kernel_f32, adam_kernel_f64, begin, end);
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
    .step_range = adam_step_range,
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
    .step_range = adam_step_range,
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
    return run_step(o, params, grads, adagrad_kernel_f32, adagrad_kernel_f64, 0, sl_tensor_numel(params));
}

static int adagrad_step_range(sl_optim *o, sl_tensor *params, const sl_tensor *grads,
                         int64_t begin, int64_t end)
{
    return run_step(o, params, grads, adagrad_kernel_f32, adagrad_kernel_f64, begin, end);
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
    .step_range = adagrad_step_range,
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
    return run_step(o, params, grads, rmsprop_kernel_f32, rmsprop_kernel_f64, 0, sl_tensor_numel(params));
}

static int rmsprop_step_range(sl_optim *o, sl_tensor *params, const sl_tensor *grads,
                         int64_t begin, int64_t end)
{
    return run_step(o, params, grads, rmsprop_kernel_f32, rmsprop_kernel_f64, begin, end);
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
    .step_range = rmsprop_step_range,
};
