/* plugins/qcircuit/symh.c — hook "symh": symmetry-based minima hopping
 * (docs/background/quantum-noise.md; the schedule is ours, the paper's was
 * not available to us).
 *
 * Training alternates local optimisation phases of `every` epochs (with a
 * one-row dataset and the "value" loss, one epoch is one optimizer step)
 * and hops.  At the end of a phase the hook evaluates the noisy cost at
 * `samples` random symmetric images g . theta of the current point (the
 * group of symmetry.c); if the best image is lower by more than `tol`,
 * theta jumps there and the optimizer's state is reset (a new local phase
 * starts from the image).  Otherwise hopping stops, and training simply
 * continues.  At most `hops` jumps.
 *
 * Without noise, or with unital Pauli noise, every image has the same cost
 * and no jump happens; under amplitude damping the images differ and the
 * hop moves to the lowest of them.
 *
 * Metrics (in the epoch's history row): symh_hops (jumps so far),
 * symh_gain (cost decrease of this jump, 0 if none), symh_checked (1 in an
 * epoch where images were evaluated).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

static const sl_option_spec symh_options[] = {
    {"every", SL_OPT_INT, "100", "epochs of local optimisation between hop attempts", NULL},
    {"hops", SL_OPT_INT, "10", "largest number of jumps", NULL},
    {"samples", SL_OPT_INT, "64", "symmetric images evaluated per hop attempt", NULL},
    {"tol", SL_OPT_FLOAT, "1e-6", "jump only if the best image is lower by more than this",
     NULL},
    {"seed", SL_OPT_INT, "0", "seed of the sampled elements (0: the run's seed)", NULL},
    {NULL, 0, NULL, NULL, NULL}};

typedef struct symh {
    int64_t every, hops, samples;
    double tol;
    uint64_t seed, run_seed;
    int64_t jumps, attempts;
    bool stopped;
    /* buffers, sized at TRAIN_BEGIN */
    double *theta, *img, *best;
    uint64_t *bits;
    int nparams;
} symh;

static void symh_free_buffers(symh *s)
{
    free(s->theta);
    free(s->img);
    free(s->best);
    free(s->bits);
    s->theta = s->img = s->best = NULL;
    s->bits = NULL;
}

static int symh_create(sl_hook *h, const sl_options *opt)
{
    symh *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "symh: out of memory");
    sl_hook_set_state(h, s);
    s->every = sl_options_int(opt, "every");
    s->hops = sl_options_int(opt, "hops");
    s->samples = sl_options_int(opt, "samples");
    s->tol = sl_options_float(opt, "tol");
    s->seed = (uint64_t)sl_options_int(opt, "seed");
    if (s->every < 1 || s->hops < 0 || s->samples < 1 || !(s->tol >= 0))
        return sl_error(SL_EINVAL, "symh: need every >= 1, hops >= 0, samples >= 1, tol >= 0");
    return SL_OK;
}

static void symh_destroy(sl_hook *h)
{
    symh *s = sl_hook_state(h);
    symh_free_buffers(s);
    free(s);
}

static int symh_begin(symh *s, sl_train_ctx *ctx)
{
    sl_module *mod;
    qc_symgroup *g;
    qc_sim *sim = qc_model_sim(ctx->model, &mod, &g);
    if (!sim)
        return sl_error_context(SL_EINVAL, "symh");
    s->jumps = s->attempts = 0;
    s->stopped = false;
    symh_free_buffers(s);
    s->nparams = sim->circ.nparams;
    size_t bytes = (size_t)s->nparams * sizeof(double) + 8;
    s->theta = malloc(bytes);
    s->img = malloc(bytes);
    s->best = malloc(bytes);
    s->bits = calloc((size_t)g->words * 2, sizeof *s->bits);
    if (!s->theta || !s->img || !s->best || !s->bits)
        return sl_error(SL_ENOMEM, "symh: out of memory");
    /* "SYMH" keeps this stream apart from the run's other uses of its seed */
    s->run_seed = s->seed ? s->seed : ctx->seed ^ 0x53594d48u;
    return SL_OK;
}

/* One hop attempt: the best of `samples` images, taken if lower by tol. */
static int symh_hop(symh *s, sl_train_ctx *ctx)
{
    sl_module *mod;
    qc_symgroup *g;
    qc_sim *sim = qc_model_sim(ctx->model, &mod, &g);
    if (!sim)
        return sl_error_context(SL_EINVAL, "symh");
    double c0, best = INFINITY;
    qc_theta_get(mod, s->theta);
    SL_TRY(qc_sim_cost(sim, s->theta, &c0));
    sl_rng rng;
    sl_rng_derive(&rng, s->run_seed, (uint64_t)s->attempts++);
    for (int64_t i = 0; i < s->samples; i++) {
        double c;
        qc_sym_random(g, &rng, s->bits, s->bits + g->words);
        qc_sym_apply(s->nparams, s->bits, s->bits + g->words, s->theta, s->img);
        SL_TRY(qc_sim_cost(sim, s->img, &c));
        if (c < best) {
            best = c;
            memcpy(s->best, s->img, (size_t)s->nparams * sizeof *s->best);
        }
    }
    SL_TRY(sl_record_set(ctx->metrics, "symh_checked", 1));
    if (!(best < c0 - s->tol)) {
        s->stopped = true;
        SL_TRY(sl_record_set(ctx->metrics, "symh_gain", 0.0));
        return sl_record_set(ctx->metrics, "symh_hops", (double)s->jumps);
    }
    qc_theta_set(mod, s->best);
    if (ctx->optim)
        sl_optim_reset(ctx->optim);
    s->jumps++;
    SL_TRY(sl_record_set(ctx->metrics, "symh_gain", c0 - best));
    return sl_record_set(ctx->metrics, "symh_hops", (double)s->jumps);
}

static int symh_on_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    symh *s = sl_hook_state(h);
    if (ev == SL_EV_TRAIN_BEGIN)
        return symh_begin(s, ctx);
    if (ev != SL_EV_EPOCH_END || s->stopped || s->jumps >= s->hops ||
        (ctx->epoch + 1) % s->every != 0)
        return SL_OK;
    return symh_hop(s, ctx);
}

const sl_hook_type qc_symh_type = {
    .name = "symh",
    .summary = "symmetry-based minima hopping for qcircuit models (jump to the best "
               "symmetric image of the current minimum)",
    .options = symh_options,
    .create = symh_create,
    .on_event = symh_on_event,
    .destroy = symh_destroy,
    /* acts only outside AFTER_BACKWARD: the update may be fused */
    .flags = SL_HOOK_NO_GRADIENT_AFTER_BACKWARD,
};
