/* plugins/equivariant/gconv_mixed.c — C_N group convolution between direct
 * sums of permutation representations: a hidden layer that mixes regular,
 * quotient and trivial channels, as in the teacher-student networks of Xie
 * & Smidt (arXiv 2506.02269), where the mixture is what relaxation may
 * change.
 *
 * A representation is a list of blocks, "regular*3+q2*2+trivial": 3
 * regular channels (orbits of N points), 2 channels on C_N/C_2 (N/2
 * points), 1 trivial channel; "qM" is C_N/C_M (M divides N), a count of 1
 * may be left out.  The tensor is (B, Σ_blocks channels * orbit), blocks in
 * order, each channel-major as in gconv.c, and r^k shifts every channel
 * along its own orbit.
 *
 * Between input block j (c_j channels, orbits of p_j) and output block i
 * (c_i, q_i) the layer is gconv's map, with d_ij = gcd(p_j, q_i) taps:
 *
 *     y_i[o, b] = Σ_j Σ_c Σ_a w_ij[o, c, (b - a) mod d_ij] x_j[c, a] + bias_i[o]
 *
 * which is every equivariant linear map between the two sums.  Parameters:
 * `weight`, 1-d, the w_ij (c_i, c_j, d_ij) one after another for i in
 * order, j in order within each i; `bias`, 1-d, one per output channel in
 * block order.  The dense equivalent is read off the layer as for gconv
 * (output at 0 and at the unit vectors); the tests check it block by block
 * against gconv.
 *
 * Role: opaque, on purpose.  The structure walker assumes a weight whose
 * rows are output units of equal width and whose units can be permuted
 * freely among themselves.  Here channels of different blocks own
 * different numbers of entries (q_i), the packed weight has no (out, in)
 * axes, and swapping a regular channel with a quotient one is not a
 * symmetry of the network at all: only permutations within a block are.
 * Declaring it a weight layer would let syre, teleportation and the
 * permutation tools apply moves that change the function.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eq.h"

#define GM_MAX_BLOCKS 16

typedef struct gm_side {
    int nblocks;
    int64_t channels[GM_MAX_BLOCKS], orbit[GM_MAX_BLOCKS];
    int64_t width;    /* Σ channels * orbit */
    int64_t nchan;    /* Σ channels */
} gm_side;

typedef struct gm_state {
    int64_t group;
    gm_side in, out;
    bool bias;
    int64_t nweight;  /* packed weight entries */
    eq_tied tied;     /* the dense map's entries in the packed weight and bias */
} gm_state;

static const sl_option_spec gm_options[] = {
    {"group", SL_OPT_INT, NULL, "N, the order of the cyclic group C_N", NULL},
    {"in_reps", SL_OPT_STRING, NULL,
     "input blocks, e.g. regular*2+q2*1+trivial (qM: C_N/C_M)", NULL},
    {"out_reps", SL_OPT_STRING, NULL, "output blocks, same form", NULL},
    {"bias", SL_OPT_BOOL, "true", "learn a bias per output channel", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL},
};

/* One block "name[*count]" of `text` (length n) into side. */
static int parse_block(const char *key, const char *text, size_t n, int64_t group, gm_side *s)
{
    char tok[64];
    if (n == 0 || n >= sizeof tok)
        return sl_error(SL_EINVAL, "gconv_mixed: %s: empty or overlong block", key);
    memcpy(tok, text, n);
    tok[n] = '\0';
    int64_t count = 1, m;
    char *star = strchr(tok, '*'), *end;
    if (star) {
        *star = '\0';
        count = strtoll(star + 1, &end, 10);
        if (*end || end == star + 1 || count < 1)
            return sl_error(SL_EINVAL, "gconv_mixed: %s: bad channel count in '%s'", key,
                            star + 1);
    }
    if (strcmp(tok, "regular") == 0)
        m = 1;
    else if (strcmp(tok, "trivial") == 0)
        m = group;
    else if (tok[0] == 'q' && isdigit((unsigned char)tok[1]) &&
             (m = strtoll(tok + 1, &end, 10), !*end) && m >= 1 && m <= group && group % m == 0)
        ;
    else
        return sl_error(SL_EINVAL,
                        "gconv_mixed: %s: '%s' is not regular, trivial or qM with M dividing "
                        "group=%lld", key, tok, (long long)group);
    if (s->nblocks == GM_MAX_BLOCKS)
        return sl_error(SL_EINVAL, "gconv_mixed: %s: more than %d blocks", key, GM_MAX_BLOCKS);
    s->channels[s->nblocks] = count;
    s->orbit[s->nblocks] = group / m;
    s->width += count * (group / m);
    s->nchan += count;
    s->nblocks++;
    return SL_OK;
}

static int parse_side(const sl_options *opt, const char *key, int64_t group, gm_side *s)
{
    memset(s, 0, sizeof *s);
    const char *text = sl_options_string(opt, key);
    for (;;) {
        const char *plus = strchr(text, '+');
        size_t n = plus ? (size_t)(plus - text) : strlen(text);
        SL_TRY(parse_block(key, text, n, group, s));
        if (!plus)
            return SL_OK;
        text = plus + 1;
    }
}

/* The index tables, block pair by block pair, and the packed weight's size. */
static void fill_table(gm_state *s)
{
    int64_t base = 0, row0 = 0, ch0 = 0;
    for (int i = 0; i < s->out.nblocks; i++) {
        const int64_t co = s->out.channels[i], q = s->out.orbit[i];
        int64_t col0 = 0;
        for (int j = 0; j < s->in.nblocks; j++) {
            const int64_t ci = s->in.channels[j], p = s->in.orbit[j];
            base += eq_cyclic_block(&s->tied, row0, col0, co, q, ci, p, base, ch0);
            col0 += ci * p;
        }
        row0 += co * q;
        ch0 += co;
    }
    s->nweight = base;
}

static int gm_create(sl_module *m, const sl_options *opt)
{
    gm_state s = {.group = sl_options_int(opt, "group"), .bias = sl_options_bool(opt, "bias")};
    if (s.group < 1)
        return sl_error(SL_EINVAL, "gconv_mixed: group must be >= 1, got %lld",
                        (long long)s.group);
    SL_TRY(parse_side(opt, "in_reps", s.group, &s.in));
    SL_TRY(parse_side(opt, "out_reps", s.group, &s.out));
    gm_state *st = malloc(sizeof *st);
    if (!st)
        return sl_error(SL_ENOMEM, "gconv_mixed: out of memory");
    *st = s;
    sl_module_set_state(m, st); /* destroy() frees it from here on */
    SL_TRY(eq_tied_init(&st->tied, s.out.width, s.in.width, s.bias));
    fill_table(st);
    SL_TRY(sl_module_add_param(m, "weight", 1, &st->nweight));
    if (st->bias)
        SL_TRY(sl_module_add_param(m, "bias", 1, &st->out.nchan));
    return SL_OK;
}

/* gconv's init, per output block: U(±1/sqrt(fan-in)) with the true fan-in
 * of every output entry, the whole input width. */
static int gm_reset(sl_module *m, sl_rng *rng)
{
    const gm_state *s = sl_module_state(m);
    double bound = 1.0 / sqrt((double)s->in.width);
    SL_TRY(sl_tensor_uniform(sl_module_param(m, 0), rng, -bound, bound));
    if (s->bias)
        SL_TRY(sl_tensor_uniform(sl_module_param(m, 1), rng, -bound, bound));
    return SL_OK;
}

static int gm_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    const gm_state *s = sl_module_state(m);
    if (ndim != 2 || in[1] != s->in.width) {
        char got[128];
        return sl_error(SL_ESHAPE, "gconv_mixed: expected input (B, %lld), got %s",
                        (long long)s->in.width, sl_shape_str(ndim, in, got, sizeof got));
    }
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = s->out.width;
    return SL_OK;
}

static int gm_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const gm_state *s = sl_module_state(m);
    int nd;
    int64_t os[SL_MAX_DIMS];
    SL_TRY(gm_shape(m, in->ndim, in->shape, &nd, os));
    return eq_tied_forward(m, &s->tied, in, out);
}

static int gm_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                       const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    const gm_state *s = sl_module_state(m);
    return eq_tied_backward(m, &s->tied, in, grad_out, grad_in);
}

static int gm_relax(sl_module *m, int ndim, const int64_t *in, sl_relax *r)
{
    const gm_state *s = sl_module_state(m);
    return eq_tied_relax(m, ndim, in, &s->tied, r);
}

static void gm_destroy(sl_module *m)
{
    gm_state *s = sl_module_state(m);
    eq_tied_free(&s->tied);
    free(s);
}

const sl_module_type eq_gconv_mixed_type = {
    .name = "gconv_mixed",
    .summary = "C_N group convolution between direct sums of regular, quotient and trivial "
               "representations (B, Σ channels * orbit)",
    .options = gm_options,
    .create = gm_create,
    .reset_parameters = gm_reset,
    .output_shape = gm_shape,
    .forward = gm_forward,
    .backward = gm_backward,
    .destroy = gm_destroy,
    /* Opaque: see "Role" at the top of this file. */
    .role = {.kind = SL_ROLE_OPAQUE},
    .relax = gm_relax,
};
