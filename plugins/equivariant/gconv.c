/* plugins/equivariant/gconv.c — group convolution for the cyclic group C_N
 * between permutation representations (Cohen & Welling, arXiv 1602.07576;
 * the representations are the object of Xie & Smidt, arXiv 2506.02269).
 *
 * Representations.  C_N = {r^k : k = 0..N-1} acts on the cosets C_N/C_m of
 * its subgroup of order m (m divides N): an orbit of p = N/m points, on
 * which r^k moves point a to a + k mod p.  m = 1 is the regular
 * representation (p = N points), m = N the trivial one (p = 1), anything
 * between a quotient representation C_N/C_m.  A feature vector of c
 * channels in such a representation is laid out channel-major,
 *
 *     (B, c * p):  entry [ch * p + a] is channel ch at orbit point a,
 *
 * and r^k acts on it by (r^k x)[ch, a] = x[ch, (a - k) mod p]: every channel
 * shifts cyclically by k along its orbit.  The same numbers may come as
 * (B, c, p); the output then is (B, c_out, q), which puts the channels on
 * axis 1, where the symmetry probes read a hidden layer's units (with the
 * flat form they report dead-unit counts as unknown).
 *
 * The layer.  Between an input of c_in channels on orbits of p points and
 * an output of c_out channels on orbits of q points, the linear maps that
 * commute with every r^k are exactly
 *
 *     y[o, b] = Σ_c Σ_a weight[o, c, (b - a) mod d] x[c, a] + bias[o],
 *     d = gcd(p, q),
 *
 * because the pairs (b, a) fall into d orbits under the joint shift, told
 * apart by (b - a) mod d.  So regular -> regular is a circular convolution
 * with N taps, trivial -> regular (lifting) broadcasts one tap, regular ->
 * trivial (p = N, q = 1) sums an orbit, and regular <-> C_N/C_m has N/m
 * taps.  weight is (c_out, c_in, d) and bias (c_out): an equivariant bias
 * is constant on each output orbit.
 *
 * Dense equivalent.  The layer computes y = W x + b with the dense
 * (c_out q) x (c_in p) matrix W[(o, b), (c, a)] = weight[o, c, (b - a) mod
 * d] and b[(o, b)] = bias[o]; a relaxation into `linear` (out = c_out q, in =
 * c_in p) starts from exactly these.  Any caller can also read them off the
 * layer itself, without this file: the output for input 0 is b, and for
 * the j-th unit vector e_j it is b + W[:, j] (how tests/check_equivariant.c
 * checks it).  Parameters: c_out c_in d (+ c_out), against c_out q c_in p
 * (+ c_out q) for the dense layer.
 *
 * Computation (tied.c): an index table made once in create() says which tap
 * each dense entry is; forward rebuilds W in a scratch slot and runs one
 * GEMM, so it costs what the dense layer costs, with no allocation once the
 * scratch is grown; backward forms the dense gradient gᵀ x and folds it
 * onto the taps through the table.
 *
 * Role.  weight's rows are its output channels and its axis 1 the input
 * channels, the output is channel-major, and bias is per channel: it is a
 * weight layer in the structure walker's sense whose units are the
 * channels (not the c q entries).  Permuting, rescaling or mixing hidden
 * channels moves rows (every tap) of one layer and columns of the next,
 * which is a symmetry of a network of these with pointwise maps between;
 * the finer symmetries a dense relaxation has are not the walker's to see.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eq.h"

typedef struct gc_state {
    int64_t group, in, out;  /* N, c_in, c_out */
    int64_t p, q, d;         /* input and output orbit sizes, taps = gcd(p, q) */
    bool bias;
    eq_tied tied;            /* W[(o, b), (c, a)] = weight[o, c, (b - a) mod d] */
} gc_state;

enum { GC_WEIGHT = 0, GC_BIAS = 1 };

static const sl_option_spec gc_options[] = {
    {"group", SL_OPT_INT, NULL, "N, the order of the cyclic group C_N", NULL},
    {"in_channels", SL_OPT_INT, NULL, "input channels", NULL},
    {"out_channels", SL_OPT_INT, NULL, "output channels", NULL},
    {"in_rep", SL_OPT_STRING, "regular", "representation of each input channel",
     "regular|quotient|trivial"},
    {"out_rep", SL_OPT_STRING, "regular", "representation of each output channel",
     "regular|quotient|trivial"},
    {"in_subgroup", SL_OPT_INT, "0",
     "with in_rep=quotient: the order m of C_m (1 < m < N, m divides N; orbit N/m)", NULL},
    {"out_subgroup", SL_OPT_INT, "0", "with out_rep=quotient: the order m of C_m", NULL},
    {"bias", SL_OPT_BOOL, "true", "learn a bias per output channel", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

int eq_orbit_size(const sl_options *opt, const char *owner, const char *side, int64_t group,
                  int64_t *p)
{
    char rep_key[16], sub_key[16];
    snprintf(rep_key, sizeof rep_key, "%s_rep", side);
    snprintf(sub_key, sizeof sub_key, "%s_subgroup", side);
    const char *rep = sl_options_string(opt, rep_key);
    int64_t m = sl_options_int(opt, sub_key);
    bool quotient = strcmp(rep, "quotient") == 0;
    if (!quotient && m != 0)
        return sl_error(SL_EINVAL, "%s: %s applies only with %s=quotient (got %s)", owner,
                        sub_key, rep_key, rep);
    if (quotient && (m <= 1 || m >= group || group % m != 0))
        return sl_error(SL_EINVAL,
                        "%s: %s must divide group=%lld and lie strictly between 1 and it "
                        "for a quotient representation, got %lld",
                        owner, sub_key, (long long)group, (long long)m);
    *p = quotient ? group / m : strcmp(rep, "trivial") == 0 ? 1 : group;
    return SL_OK;
}

int64_t eq_cyclic_block(eq_tied *t, int64_t row0, int64_t col0, int64_t co, int64_t q,
                        int64_t ci, int64_t p, int64_t base, int64_t ch0)
{
    const int64_t d = eq_gcd(p, q);
    for (int64_t o = 0; o < co; o++)
        for (int64_t b = 0; b < q; b++) {
            if (t->bias_of_row)
                t->bias_of_row[row0 + o * q + b] = ch0 + o;
            for (int64_t c = 0; c < ci; c++)
                for (int64_t a = 0; a < p; a++)
                    t->table[(row0 + o * q + b) * t->cols + col0 + c * p + a] =
                        base + (o * ci + c) * d + ((b - a) % d + d) % d;
        }
    return co * ci * d;
}

static int gc_create(sl_module *m, const sl_options *opt)
{
    gc_state s = {.group = sl_options_int(opt, "group"),
                  .in = sl_options_int(opt, "in_channels"),
                  .out = sl_options_int(opt, "out_channels"),
                  .bias = sl_options_bool(opt, "bias")};
    if (s.group < 1)
        return sl_error(SL_EINVAL, "gconv: group must be >= 1, got %lld", (long long)s.group);
    if (s.in <= 0 || s.out <= 0)
        return sl_error(SL_EINVAL, "gconv: in_channels and out_channels must be > 0, got %lld "
                                   "and %lld", (long long)s.in, (long long)s.out);
    SL_TRY(eq_orbit_size(opt, "gconv", "in", s.group, &s.p));
    SL_TRY(eq_orbit_size(opt, "gconv", "out", s.group, &s.q));
    s.d = eq_gcd(s.p, s.q);
    SL_TRY(sl_module_add_param(m, "weight", 3, (int64_t[]){s.out, s.in, s.d}));
    if (s.bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &s.out));
    gc_state *st = malloc(sizeof *st);
    if (!st)
        return sl_error(SL_ENOMEM, "gconv: out of memory");
    *st = s;
    sl_module_set_state(m, st); /* destroy() frees it from here on */
    SL_TRY(eq_tied_init(&st->tied, s.out * s.q, s.in * s.p, s.bias));
    eq_cyclic_block(&st->tied, 0, 0, s.out, s.q, s.in, s.p, 0, 0);
    return SL_OK;
}

/* PyTorch's linear init for the true fan-in, the c_in p inputs each output
 * entry reads: U(-1/sqrt(c_in p), 1/sqrt(c_in p)). */
static int gc_reset(sl_module *m, sl_rng *rng)
{
    const gc_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt((double)(s->in * s->p));
    SL_TRY(sl_tensor_uniform(sl_module_param(m, GC_WEIGHT), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, GC_BIAS), rng, -bound, bound));
    return SL_OK;
}

int eq_cyclic_shape(const char *owner, int64_t cin, int64_t p, int64_t cout, int64_t q, int ndim,
                    const int64_t *in, int *out_ndim, int64_t *out)
{
    if (!(ndim == 2 && in[1] == cin * p) && !(ndim == 3 && in[1] == cin && in[2] == p)) {
        char got[128];
        return sl_error(SL_ESHAPE,
                        "%s: expected input (B, %lld) = (B, in_channels %lld x orbit %lld), "
                        "or (B, %lld, %lld), got %s",
                        owner, (long long)(cin * p), (long long)cin, (long long)p,
                        (long long)cin, (long long)p, sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = ndim;
    out[0] = in[0];
    if (ndim == 2) {
        out[1] = cout * q;
    } else {
        out[1] = cout;
        out[2] = q;
    }
    return SL_OK;
}

static int gc_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    const gc_state *s = sl_module_state(m);
    return eq_cyclic_shape("gconv", s->in, s->p, s->out, s->q, ndim, in, out_ndim, out);
}

static int gc_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const gc_state *s = sl_module_state(m);
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(gc_shape(m, in->ndim, in->shape, &nd, os));
    return eq_tied_forward(m, &s->tied, in, out);
}

static int gc_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const gc_state *s = sl_module_state(m);
    return eq_tied_backward(m, &s->tied, in, grad_out, grad_in);
}

/* The dense equivalent (see the top of this file) as `linear`. */
static int gc_relax(sl_module *m, int ndim, const int64_t *in, sl_relax *r)
{
    const gc_state *s = sl_module_state(m);
    return eq_tied_relax(m, ndim, in, &s->tied, r);
}

static void gc_destroy(sl_module *m)
{
    gc_state *s = sl_module_state(m);
    eq_tied_free(&s->tied);
    free(s);
}

const sl_module_type eq_gconv_type = {
    .name = "gconv",
    .summary = "C_N group convolution between permutation representations (regular, "
               "quotient C_N/C_m, trivial) on (B, channels * orbit)",
    .options = gc_options,
    .create = gc_create,
    .reset_parameters = gc_reset,
    .output_shape = gc_shape,
    .forward = gc_forward,
    .backward = gc_backward,
    .destroy = gc_destroy,
    /* A weight layer over channels: see "Role" at the top of this file. */
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 1},
    .relax = gc_relax,
};
