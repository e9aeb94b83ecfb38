/* plugins/equivariant/relaxed_gconv.c — relaxed C_N group convolution
 * (Wang, Walters & Yu, "Approximately Equivariant Networks for Imperfectly
 * Symmetric Dynamics", arXiv 2201.11969): gconv's filter replaced by a mix
 * of L filter banks whose mixing weights depend on the group element, so
 * the layer can be "a little" non-equivariant, by an amount it learns.
 *
 * Representations and layout are gconv's (gconv.c): c channels on orbits
 * of p points, (B, c * p) or (B, c, p), r^k shifting every orbit by k.
 * With d = gcd(p, q) taps as in gconv and L banks ψ_l,
 *
 *     y[o, b] = Σ_c Σ_a Σ_l mix[l, h] ψ_l[o, c, (b - a) mod d] x[c, a] + bias[o]
 *
 * where h is the group element the weights follow: the input's orbit point
 * h = a when the input has one (p > 1: regular -> regular, regular ->
 * quotient, ...), and the output's h = b for a lifting layer (p = 1,
 * trivial input), as the paper does for group and lifting convolutions
 * (its w_l(h) and w_l(g)).  So the effective filter at h is
 * Ψ(h) = Σ_l mix[l, h] ψ_l.  If every mix[l, ·] is constant over h the
 * filter is the same at every h and the layer is gconv with the filter
 * Σ_l mix[l] ψ_l: exactly equivariant.  Generic mix values make it
 * non-equivariant (both tested for every group element).
 *
 * Parameters: weight (c_out, c_in, L, d) — the banks, each output
 * channel's row holding all of its banks; bias (c_out), shared along the
 * orbit as in gconv; mix (L, s), s = p (or q when p = 1), shared by all
 * channels.  c_out c_in L d + c_out + L s in all.
 *
 * Initialisation: mix_init = "equal" (default) sets mix = 1/L, the exactly
 * equivariant start, with the banks drawn U(±sqrt(L / (c_in p))) so that
 * the mean filter has gconv's scale; "random" draws mix U(0, 2/L), a
 * generic, non-equivariant start.
 *
 * Computation: the dense (c_out q, c_in p) matrix W is built in scratch
 * (gconv's tap table says which tap each entry is; h follows from the
 * entry's position) and applied by one GEMM (tied.c); backward folds the
 * dense gradient gᵀ x onto the banks (times mix) and onto mix (times the
 * banks).  No allocation once the scratch has grown.
 *
 * Role: a weight layer over channels, as gconv: weight's axis 0 is the
 * output channels (every bank of a channel moves with it), axis 1 the input
 * channels; mix belongs to no channel, so permuting or rescaling hidden
 * channels leaves it alone, which keeps the function (tested).
 *
 * Relaxation: the dense W and b, as `linear` (relax.c).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eq.h"

typedef struct rg_state {
    int64_t in, out;     /* c_in, c_out */
    int64_t p, q, d;     /* orbits and taps, as gconv */
    int64_t banks;       /* L */
    int64_t s;           /* positions of mix: p, or q for a lifting layer */
    bool bias, random_mix;
    int mix;             /* index of the mix parameter */
    eq_tied tied;        /* W's entry e reads taps (o c_in + c) d + t, bias o */
} rg_state;

enum { RG_WEIGHT = 0, RG_BIAS = 1 };

static const sl_option_spec rg_options[] = {
    {"group", SL_OPT_INT, NULL, "N, the order of the cyclic group C_N", NULL},
    {"in_channels", SL_OPT_INT, NULL, "input channels", NULL},
    {"out_channels", SL_OPT_INT, NULL, "output channels", NULL},
    {"banks", SL_OPT_INT, "2", "L, the number of filter banks mixed", NULL},
    {"mix_init", SL_OPT_STRING, "equal",
     "equal: mix = 1/L at every group element (exactly equivariant); random: U(0, 2/L)",
     "equal|random"},
    {"in_rep", SL_OPT_STRING, "regular", "representation of each input channel",
     "regular|quotient|trivial"},
    {"out_rep", SL_OPT_STRING, "regular", "representation of each output channel",
     "regular|quotient|trivial"},
    {"in_subgroup", SL_OPT_INT, "0", "with in_rep=quotient: the order m of C_m", NULL},
    {"out_subgroup", SL_OPT_INT, "0", "with out_rep=quotient: the order m of C_m", NULL},
    {"bias", SL_OPT_BOOL, "true", "learn a bias per output channel", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

static int rg_create(sl_module *m, const sl_options *opt)
{
    const int64_t group = sl_options_int(opt, "group");
    rg_state s = {.in = sl_options_int(opt, "in_channels"),
                  .out = sl_options_int(opt, "out_channels"),
                  .banks = sl_options_int(opt, "banks"),
                  .bias = sl_options_bool(opt, "bias"),
                  .random_mix = strcmp(sl_options_string(opt, "mix_init"), "random") == 0};
    if (group < 1)
        return sl_error(SL_EINVAL, "relaxed_gconv: group must be >= 1, got %lld",
                        (long long)group);
    if (s.in <= 0 || s.out <= 0)
        return sl_error(SL_EINVAL, "relaxed_gconv: in_channels and out_channels must be > 0, "
                                   "got %lld and %lld", (long long)s.in, (long long)s.out);
    if (s.banks < 1)
        return sl_error(SL_EINVAL, "relaxed_gconv: banks must be >= 1, got %lld",
                        (long long)s.banks);
    SL_TRY(eq_orbit_size(opt, "relaxed_gconv", "in", group, &s.p));
    SL_TRY(eq_orbit_size(opt, "relaxed_gconv", "out", group, &s.q));
    s.d = eq_gcd(s.p, s.q);
    s.s = s.p > 1 ? s.p : s.q;
    SL_TRY(sl_module_add_param(m, "weight", 4, (int64_t[]){s.out, s.in, s.banks, s.d}));
    if (s.bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &s.out));
    s.mix = sl_module_add_param(m, "mix", 2, (int64_t[]){s.banks, s.s});
    SL_TRY(s.mix);
    rg_state *st = malloc(sizeof *st);
    if (!st)
        return sl_error(SL_ENOMEM, "relaxed_gconv: out of memory");
    *st = s;
    sl_module_set_state(m, st); /* destroy() frees it from here on */
    SL_TRY(eq_tied_init(&st->tied, s.out * s.q, s.in * s.p, s.bias));
    eq_cyclic_block(&st->tied, 0, 0, s.out, s.q, s.in, s.p, 0, 0);
    return SL_OK;
}

static int rg_reset(sl_module *m, sl_rng *rng)
{
    const rg_state *s = sl_module_state(m);
    double fan = (double)(s->in * s->p), L = (double)s->banks;
    SL_TRY(sl_tensor_uniform(sl_module_param(m, RG_WEIGHT), rng, -sqrt(L / fan),
                             sqrt(L / fan)));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, RG_BIAS), rng, -1 / sqrt(fan),
                                 1 / sqrt(fan)));
    if (s->random_mix)
        return sl_tensor_uniform(sl_module_param(m, s->mix), rng, 0.0, 2.0 / L);
    return sl_tensor_fill(sl_module_param(m, s->mix), 1.0 / L);
}

static int rg_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    const rg_state *s = sl_module_state(m);
    return eq_cyclic_shape("relaxed_gconv", s->in, s->p, s->out, s->q, ndim, in, out_ndim, out);
}

/* The position of mix that dense entry e follows (see the top). */
static inline int64_t mix_pos(const rg_state *s, int64_t e)
{
    const int64_t cols = s->tied.cols;
    return s->p > 1 ? (e % cols) % s->p : (e / cols) % s->q;
}

/* W[e] = Σ_l mix[l, h(e)] ψ[oc, l, t] for the tap (oc, t) of entry e. */
static void expand(sl_module *m, const rg_state *s, void *W)
{
    const sl_dtype dt = sl_module_dtype(m);
    const void *psi = sl_module_param(m, RG_WEIGHT)->data;
    const void *mix = sl_module_param(m, s->mix)->data;
    const int64_t n = s->tied.rows * s->tied.cols, L = s->banks, d = s->d;
    for (int64_t e = 0; e < n; e++) {
        const int64_t tap = s->tied.table[e], oc = tap / d, t = tap % d, h = mix_pos(s, e);
        double acc = 0;
        for (int64_t l = 0; l < L; l++)
            acc += eq_ld(mix, dt, l * s->s + h) * eq_ld(psi, dt, (oc * L + l) * d + t);
        eq_st(W, dt, e, acc);
    }
}

static int rg_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const rg_state *s = sl_module_state(m);
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(rg_shape(m, in->ndim, in->shape, &nd, os));
    void *W;
    SL_TRY(eq_scratch(m, EQ_TIED_DENSE, s->tied.rows * s->tied.cols, &W));
    expand(m, s, W);
    return eq_dense_forward(m, &s->tied, W, in, out);
}

static int rg_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const rg_state *s = sl_module_state(m);
    void *G;
    SL_TRY(eq_dense_backward(m, &s->tied, in, grad_out, grad_in, &G));
    const sl_dtype dt = in->dtype;
    const void *psi = sl_module_param(m, RG_WEIGHT)->data;
    const void *mix = sl_module_param(m, s->mix)->data;
    void *gpsi = sl_module_grad(m, RG_WEIGHT)->data, *gmix = sl_module_grad(m, s->mix)->data;
    const int64_t n = s->tied.rows * s->tied.cols, L = s->banks, d = s->d;
    for (int64_t e = 0; e < n; e++) {
        const int64_t tap = s->tied.table[e], oc = tap / d, t = tap % d, h = mix_pos(s, e);
        const double g = eq_ld(G, dt, e);
        for (int64_t l = 0; l < L; l++) {
            const int64_t w = (oc * L + l) * d + t, x = l * s->s + h;
            eq_add(gpsi, dt, w, g * eq_ld(mix, dt, x));
            eq_add(gmix, dt, x, g * eq_ld(psi, dt, w));
        }
    }
    return SL_OK;
}

/* The dense equivalent, as `linear`. */
static int rg_relax(sl_module *m, int ndim, const int64_t *in, sl_relax *r)
{
    const rg_state *s = sl_module_state(m);
    sl_tensor W = {0};
    SL_TRY(sl_tensor_alloc(&W, sl_module_dtype(m), 2, (int64_t[]){s->tied.rows, s->tied.cols}));
    expand(m, s, W.data);
    int rc = eq_relax_dense(m, ndim, in, &s->tied, W.data, r);
    sl_tensor_release(&W);
    return rc;
}

static void rg_destroy(sl_module *m)
{
    rg_state *s = sl_module_state(m);
    eq_tied_free(&s->tied);
    free(s);
}

const sl_module_type eq_relaxed_gconv_type = {
    .name = "relaxed_gconv",
    .summary = "relaxed C_N group convolution: L filter banks mixed by weights that depend on "
               "the group element (Wang, Walters & Yu); equivariant when the weights are equal",
    .options = rg_options,
    .create = rg_create,
    .reset_parameters = rg_reset,
    .output_shape = rg_shape,
    .forward = rg_forward,
    .backward = rg_backward,
    .destroy = rg_destroy,
    /* A weight layer over channels: see "Role" at the top of this file. */
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 1},
    .relax = rg_relax,
};
