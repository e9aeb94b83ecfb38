/* plugins/qcircuit/qcircuit.c — the plugin descriptor, the "qcircuit" module
 * type, the "value" loss and the "circuit_symmetries" probe.
 *
 *   qcircuit            module  parametrized circuit: parameter "theta" = the
 *                               rotation angles; input (B, ...) is ignored except
 *                               for B; output (B, 1) = Tr(O rho(theta)) in every
 *                               row; backward = parameter-shift gradient
 *   value               loss    mean of pred (grad 1/numel): minimises the cost
 *   symh                hook    symmetry-based minima hopping (symh.c)
 *   circuit_symmetries  probe   group size and spread of C(g . theta) over images
 *
 * The simulation runs in f64 whatever the model's dtype; an f32 model's
 * angles are converted on the way in and the gradient on the way out.
 * Memory: 16 * 4^n bytes for rho (n <= 14), plus one rho per pass for the
 * adjoint gradient when that fits in 512 MiB (otherwise 2 evaluations per
 * rotation).  See docs/quantum.md.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

typedef struct qc_mod {
    qc_sim sim;
    qc_symgroup group;
    bool group_ready;
    double init_scale;
    double *theta, *grad; /* f64 copies, nparams each */
} qc_mod;

static const sl_option_spec qc_options[] = {
    {"n_qubits", SL_OPT_INT, "4", "number of qubits (1..14; rho takes 16 * 4^n bytes)", NULL},
    {"ansatz", SL_OPT_STRING, "hea", "circuit: hardware-efficient, QAOA, or the `circuit` text",
     "hea|qaoa|custom"},
    {"layers", SL_OPT_INT, "3", "layers of the hea / qaoa ansatz", NULL},
    {"entangler", SL_OPT_STRING, "cnot", "two-qubit gate of the hea ladder", "cnot|cz"},
    {"circuit", SL_OPT_STRING, "", "circuit text for ansatz=custom (docs/quantum.md)", NULL},
    {"observable", SL_OPT_STRING, "tfim",
     "tfim | heisenberg | maxcut | a Pauli sum such as \"0.5 ZZII + 1.0 XIII\"", NULL},
    {"coupling", SL_OPT_FLOAT, "1.0", "J of tfim / heisenberg", NULL},
    {"field", SL_OPT_FLOAT, "1.0", "h of tfim / heisenberg", NULL},
    {"periodic", SL_OPT_BOOL, "false", "tfim / heisenberg on a ring instead of a chain", NULL},
    {"edges", SL_OPT_STRING, "", "maxcut graph \"0-1,1-2,...\" (default: the ring)", NULL},
    {"noise", SL_OPT_STRING, "none", "channel inserted by the noise model",
     "none|amplitude_damping|depolarizing|dephasing"},
    {"strength", SL_OPT_FLOAT, "0.0", "gamma (amplitude damping) or p of the noise channel",
     NULL},
    {"noise_at", SL_OPT_STRING, "gate",
     "after every gate on its qubits, or on every qubit at each layer end", "gate|layer"},
    {"gradient", SL_OPT_STRING, "auto", "parameter-shift evaluation: adjoint sweep or 2 runs "
                                        "per rotation (auto: adjoint if it fits in 512 MiB)",
     "auto|adjoint|shift"},
    {"init_scale", SL_OPT_FLOAT, "3.141592653589793", "initial angles ~ U(-s, s)", NULL},
    {NULL, 0, NULL, NULL, NULL}};

static int build_observable(const sl_options *opt, int n, qc_observable *o)
{
    const char *name = sl_options_string(opt, "observable");
    double j = sl_options_float(opt, "coupling"), h = sl_options_float(opt, "field");
    bool periodic = sl_options_bool(opt, "periodic");
    qc_obs_init(o, n);
    if (strcmp(name, "tfim") == 0)
        return qc_obs_tfim(o, j, h, periodic);
    if (strcmp(name, "heisenberg") == 0)
        return qc_obs_heisenberg(o, j, h, periodic);
    if (strcmp(name, "maxcut") == 0)
        return qc_obs_maxcut(o, sl_options_string(opt, "edges"));
    return qc_obs_parse(o, name);
}

static int build_circuit(const sl_options *opt, int n, const qc_observable *o, qc_circuit *c)
{
    const char *ansatz = sl_options_string(opt, "ansatz");
    int64_t layers = sl_options_int(opt, "layers"); /* checked before it becomes an int */
    qc_circuit_init(c, n);
    if (layers < 1 || layers > QC_MAX_LAYERS)
        return sl_error(SL_EINVAL, "qcircuit: option 'layers' must be in [1, %d], got %lld",
                        QC_MAX_LAYERS, (long long)layers);
    if (strcmp(ansatz, "hea") == 0)
        return qc_ansatz_hea(c, (int)layers,
                             strcmp(sl_options_string(opt, "entangler"), "cz") == 0);
    if (strcmp(ansatz, "qaoa") == 0)
        return qc_ansatz_qaoa(c, (int)layers, o);
    const char *text = sl_options_string(opt, "circuit");
    if (!*text)
        return sl_error(SL_EINVAL, "qcircuit: ansatz=custom needs the circuit option");
    SL_TRY(qc_circuit_parse(c, text));
    if (c->nparams == 0)
        return sl_error(SL_EINVAL, "qcircuit: the circuit has no rotation (no parameter)");
    return SL_OK;
}

static int qc_setup(qc_mod *st, const sl_options *opt)
{
    int64_t n = sl_options_int(opt, "n_qubits");
    if (n < 1 || n > QC_MAX_QUBITS)
        return sl_error(SL_EINVAL, "qcircuit: n_qubits must be in [1, %d], got %lld",
                        QC_MAX_QUBITS, (long long)n);
    qc_channel ch;
    SL_TRY(qc_channel_parse(sl_options_string(opt, "noise"), &ch));
    double p = sl_options_float(opt, "strength");
    if (!(p >= 0.0 && p <= 1.0))
        return sl_error(SL_EINVAL, "qcircuit: strength must be in [0, 1], got %g", p);
    const char *gm = sl_options_string(opt, "gradient");
    qc_grad_mode mode = strcmp(gm, "adjoint") == 0 ? QC_GRAD_ADJOINT
                        : strcmp(gm, "shift") == 0 ? QC_GRAD_SHIFT
                                                   : QC_GRAD_AUTO;
    qc_observable obs;
    qc_circuit bare, noisy;
    int rc = build_observable(opt, (int)n, &obs);
    qc_circuit_init(&bare, (int)n);
    if (rc == SL_OK)
        rc = build_circuit(opt, (int)n, &obs, &bare);
    if (rc == SL_OK)
        rc = qc_circuit_with_noise(&bare, ch, p, strcmp(sl_options_string(opt, "noise_at"),
                                                        "layer") == 0, &noisy);
    qc_circuit_free(&bare);
    if (rc != SL_OK) {
        qc_obs_free(&obs);
        return rc;
    }
    /* the sim owns circuit and observable from here, even on failure */
    SL_TRY(qc_sim_init(&st->sim, &noisy, &obs, mode));
    int P = st->sim.circ.nparams;
    st->theta = calloc((size_t)P + 1, sizeof *st->theta);
    st->grad = calloc((size_t)P + 1, sizeof *st->grad);
    if (!st->theta || !st->grad)
        return sl_error(SL_ENOMEM, "qcircuit: out of memory");
    st->init_scale = sl_options_float(opt, "init_scale");
    return SL_OK;
}

static void qc_destroy(sl_module *m)
{
    qc_mod *st = sl_module_state(m);
    qc_sim_free(&st->sim);
    qc_sym_free(&st->group);
    free(st->theta);
    free(st->grad);
    free(st);
}

static int qc_create(sl_module *m, const sl_options *opt)
{
    qc_mod *st = calloc(1, sizeof *st);
    if (!st)
        return sl_error(SL_ENOMEM, "qcircuit: out of memory");
    sl_module_set_state(m, st);
    SL_TRY(qc_setup(st, opt));
    int rc = sl_module_add_param(m, "theta", 1, (int64_t[]){st->sim.circ.nparams});
    return rc < 0 ? rc : SL_OK;
}

static int qc_reset(sl_module *m, sl_rng *rng)
{
    const qc_mod *st = sl_module_state(m);
    return sl_tensor_uniform(sl_module_param(m, 0), rng, -st->init_scale, st->init_scale);
}

static int qc_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    if (ndim < 1)
        return sl_error(SL_ESHAPE, "qcircuit: input must be (B, ...), got a scalar");
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = 1;
    return SL_OK;
}

/* One source for float and for double: qcircuit_generic.h, included once per type. */
#define T float
#define SUF(name) name##_f32
#include "qcircuit_generic.h"
#define T double
#define SUF(name) name##_f64
#include "qcircuit_generic.h"

void qc_theta_get(sl_module *mod, double *theta)
{
    const sl_tensor *p = sl_module_param(mod, 0);
    if (p->dtype == SL_F32)
        load_f32(p->data, theta, sl_tensor_numel(p));
    else
        load_f64(p->data, theta, sl_tensor_numel(p));
}

void qc_theta_set(sl_module *mod, const double *theta)
{
    sl_tensor *p = sl_module_param(mod, 0);
    int64_t n = sl_tensor_numel(p);
    for (int64_t i = 0; i < n; i++) {
        if (p->dtype == SL_F32)
            ((float *)p->data)[i] = (float)theta[i];
        else
            ((double *)p->data)[i] = theta[i];
    }
}

static int qc_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    qc_mod *st = sl_module_state(m);
    double cost;
    qc_theta_get(m, st->theta);
    SL_TRY(qc_sim_cost(&st->sim, st->theta, &cost));
    int64_t b = in->shape[0];
    if (out->dtype == SL_F32)
        fill_f32(out->data, b, cost);
    else
        fill_f64(out->data, b, cost);
    return SL_OK;
}

/* d(sum_b g_b C) / d theta = (sum_b g_b) dC/dtheta; the input gets zero. */
static int qc_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)in;
    (void)out;
    qc_mod *st = sl_module_state(m);
    if (!sl_tensor_is_contiguous(grad_out))
        return sl_error(SL_EINVAL, "qcircuit: grad_out must be contiguous");
    int64_t nb = sl_tensor_numel(grad_out);
    double g = grad_out->dtype == SL_F32 ? sum_f32(grad_out->data, nb)
                                         : sum_f64(grad_out->data, nb);
    if (grad_in)
        SL_TRY(sl_tensor_fill(grad_in, 0.0));
    qc_theta_get(m, st->theta);
    SL_TRY(qc_sim_grad(&st->sim, st->theta, st->grad));
    sl_tensor *gt = sl_module_grad(m, 0);
    int64_t P = sl_tensor_numel(gt);
    if (gt->dtype == SL_F32)
        accumulate_f32(gt->data, st->grad, P, g);
    else
        accumulate_f64(gt->data, st->grad, P, g);
    return SL_OK;
}

const sl_module_type qc_module_type = {
    .name = "qcircuit",
    .summary = "parametrized quantum circuit under noise; output = Tr(O rho(theta))",
    .options = qc_options,
    .create = qc_create,
    .reset_parameters = qc_reset,
    .output_shape = qc_shape,
    .forward = qc_forward,
    .backward = qc_backward,
    .destroy = qc_destroy,
};

/* ---- access for the hook and the probe -------------------------------------------- */

qc_sim *qc_model_sim(sl_model *model, sl_module **mod, qc_symgroup **group)
{
    for (int i = 0; i < sl_model_nmodules(model); i++) {
        sl_module *m = sl_model_module(model, i);
        if (sl_module_type_of(m) != &qc_module_type)
            continue;
        qc_mod *st = sl_module_state(m);
        if (group) {
            if (!st->group_ready) {
                if (qc_sym_build(&st->sim.circ, &st->sim.obs, &st->group) != SL_OK)
                    return NULL;
                st->group_ready = true;
            }
            *group = &st->group;
        }
        *mod = m;
        return &st->sim;
    }
    sl_error(SL_EINVAL, "qcircuit: the model has no qcircuit module");
    return NULL;
}

/* ---- loss "value" ---------------------------------------------------------------- */


/* The model's output is the objective itself: loss = mean(pred), target ignored. */
static int value_forward(const sl_tensor *pred, const sl_tensor *target, double *value,
                         sl_tensor *grad_pred)
{
    (void)target;
    if (!sl_tensor_is_contiguous(pred) || (grad_pred && !sl_tensor_is_contiguous(grad_pred)))
        return sl_error(SL_EINVAL, "value: pred must be contiguous");
    int64_t n = sl_tensor_numel(pred);
    if (n == 0)
        return sl_error(SL_ESHAPE, "value: empty prediction");
    if (pred->dtype == SL_F32)
        *value = value_f32(pred->data, grad_pred ? grad_pred->data : NULL, n);
    else if (pred->dtype == SL_F64)
        *value = value_f64(pred->data, grad_pred ? grad_pred->data : NULL, n);
    else
        return sl_error(SL_EDTYPE, "value: pred must be f32 or f64, got %s",
                        sl_dtype_name(pred->dtype));
    return SL_OK;
}

const sl_loss_type qc_value_loss = {
    .name = "value",
    .summary = "mean of the prediction (the model outputs its own objective, e.g. a cost)",
    .forward = value_forward,
};

/* ---- probe "circuit_symmetries" --------------------------------------------------- */

static const sl_option_spec sym_options[] = {
    {"samples", SL_OPT_INT, "64", "random group elements evaluated", NULL},
    {"seed", SL_OPT_INT, "1", "seed of the sampled elements", NULL},
    {NULL, 0, NULL, NULL, NULL}};

static int sym_measure(const sl_options *opt, sl_model *model, const sl_dataset *data,
                       sl_record *out)
{
    (void)data;
    sl_module *mod;
    qc_symgroup *g;
    qc_sim *sim = qc_model_sim(model, &mod, &g);
    if (!sim)
        return sl_error_context(SL_EINVAL, "circuit_symmetries");
    int64_t samples = sl_options_int(opt, "samples");
    if (samples < 1)
        return sl_error(SL_EINVAL, "circuit_symmetries: samples must be >= 1");
    const int P = sim->circ.nparams;
    double *theta = malloc((size_t)P * sizeof *theta), *img = malloc((size_t)P * sizeof *img);
    uint64_t *bits = calloc((size_t)g->words * 2, sizeof *bits);
    int rc = theta && img && bits ? SL_OK : sl_error(SL_ENOMEM, "circuit_symmetries: out of memory");
    double c0 = 0, lo = INFINITY, hi = -INFINITY, sum = 0, sum2 = 0;
    if (rc == SL_OK) {
        qc_theta_get(mod, theta);
        rc = qc_sim_cost(sim, theta, &c0);
    }
    sl_rng rng;
    sl_rng_seed(&rng, (uint64_t)sl_options_int(opt, "seed"));
    for (int64_t i = 0; i < samples && rc == SL_OK; i++) {
        double c;
        qc_sym_random(g, &rng, bits, bits + g->words);
        qc_sym_apply(P, bits, bits + g->words, theta, img);
        rc = qc_sim_cost(sim, img, &c);
        lo = fmin(lo, c);
        hi = fmax(hi, c);
        sum += c;
        sum2 += c * c;
    }
    if (rc == SL_OK) {
        double mean = sum / (double)samples;
        double var = fmax(0.0, sum2 / (double)samples - mean * mean);
        SL_TRY(sl_record_set(out, "log2_group_size", g->rank));
        SL_TRY(sl_record_set(out, "generators", g->ngenerators));
        SL_TRY(sl_record_set(out, "params", P));
        SL_TRY(sl_record_set(out, "passes", sim->plan.npasses));
        SL_TRY(sl_record_set(out, "cost", c0));
        SL_TRY(sl_record_set(out, "image_min", lo));
        SL_TRY(sl_record_set(out, "image_max", hi));
        SL_TRY(sl_record_set(out, "image_mean", mean));
        SL_TRY(sl_record_set(out, "image_std", sqrt(var)));
        SL_TRY(sl_record_set(out, "image_spread", hi - lo));
    }
    free(theta);
    free(img);
    free(bits);
    return rc;
}

const sl_probe_type qc_symmetries_probe = {
    .name = "circuit_symmetries",
    .summary = "circuit-symmetry group size and the spread of C(g . theta) over sampled images",
    .options = sym_options,
    .measure = sym_measure,
};

/* ---- the descriptor ------------------------------------------------------------------ */

static const sl_module_type *const modules[] = {&qc_module_type, NULL};
static const sl_hook_type *const hooks[] = {&qc_symh_type, NULL};
static const sl_probe_type *const probes[] = {&qc_symmetries_probe, NULL};
static const sl_loss_type *const losses[] = {&qc_value_loss, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "qcircuit",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "density-matrix simulation of noisy parametrized circuits, symmetries, SYMH",
    .modules = modules,
    .hooks = hooks,
    .probes = probes,
    .losses = losses,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
