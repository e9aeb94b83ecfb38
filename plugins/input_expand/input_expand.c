/* plugins/input_expand — input dimension expansion (Zhang et al. 2024,
 * arXiv 2409.06402; docs/background/input-expansion.md).
 *
 * Image form, in (N, C, H, W) -> out (N, C, H*K, W*K):
 *     out[n][c][y][x] = fill                                 everywhere, then
 *     out[n][c][K*i + offset][K*j + offset] = in[n][c][i][j]
 * Channels are not added; the spatial grid is dilated and the gaps hold a
 * constant.  Where the original pixel sits inside its K x K cell is not
 * confirmed by the paper: `offset` (default 0, the top-left corner) chooses.
 *
 * Vector form, in (N, F) -> out (N, F + E) with E = `extra` constants:
 *     before      originals at E .. E+F-1, constants first;
 *     after       originals at 0 .. F-1, constants last;
 *     interleave  original j at p_j = j + floor((2j + 1) E / (2F)), i.e. the
 *                 constants spread evenly and centred: F = 1, E = 4 gives
 *                 [c, c, x, c, c] (the 1-d follow-up, arXiv 2602.17952), and
 *                 E = F gives x at the even positions.
 * extra = -1 (the default) means E = (factor - 1) * F, the vector analogue of
 * the image form.
 *
 * `fill` is in the units of whatever reaches this module: put the module
 * before any normalisation (raw pixels in [0, 1], the paper's 0.5), or pass
 * the normalised value (0.5 - mean) / std when the data set is normalised
 * first.  Backward routes the gradient of each original position back to
 * its input element; the constants have no gradient.
 *
 * expand_project is the test-time mask projection of the SBDE follow-up
 * (arXiv 2602.17948): its input is an already expanded image (N, C, H', W')
 * and it resets every inserted position (those off the grid
 * r % K == offset, q % K == offset) to `fill`, passing the original
 * positions unchanged.  On an output of input_expand with the same factor,
 * offset and fill it is the identity; it matters only when something (an
 * attack, noise) changed the expanded image after expansion.  Backward
 * passes the gradient of the original positions and zeroes the others.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

typedef enum expand_mode { MODE_AUTO, MODE_IMAGE, MODE_VECTOR } expand_mode;
typedef enum expand_place { PLACE_BEFORE, PLACE_AFTER, PLACE_INTERLEAVE } expand_place;

typedef struct expand_state {
    expand_mode mode;
    int64_t factor, offset, extra; /* extra < 0: (factor - 1) * F */
    double fill;
    expand_place place;
} expand_state;

static const sl_option_spec expand_options[] = {
    {"mode", SL_OPT_STRING, "auto",
     "image (N,C,H,W) or vector (N,F); auto picks by the input's rank", "auto|image|vector"},
    {"factor", SL_OPT_INT, "2", "expansion factor K (image: H,W -> HK,WK)", NULL},
    {"offset", SL_OPT_INT, "0", "image: position of the original pixel in its KxK cell",
     NULL},
    {"fill", SL_OPT_FLOAT, "0.5",
     "value of the inserted entries, in the units of this module's input", NULL},
    {"extra", SL_OPT_INT, "-1", "vector: number of constants added; -1: (factor-1)*F", NULL},
    {"placement", SL_OPT_STRING, "interleave", "vector: where the constants go",
     "before|after|interleave"},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

/* The K x K cell both modules share: factor K >= 1 and the original
 * pixel's offset in [0, K); errors name the module type `who`. */
static int check_cell(const char *who, int64_t factor, int64_t offset)
{
    if (factor < 1)
        return sl_error(SL_EINVAL, "%s: factor must be >= 1, got %lld", who, (long long)factor);
    if (offset < 0 || offset >= factor)
        return sl_error(SL_EINVAL, "%s: offset must be in [0, factor=%lld), got %lld", who,
                        (long long)factor, (long long)offset);
    return SL_OK;
}

static int expand_create(sl_module *m, const sl_options *opt)
{
    const char *mode = sl_options_string(opt, "mode");
    const char *place = sl_options_string(opt, "placement");
    expand_state st = {
        .mode = strcmp(mode, "image") == 0    ? MODE_IMAGE
                : strcmp(mode, "vector") == 0 ? MODE_VECTOR
                                              : MODE_AUTO,
        .factor = sl_options_int(opt, "factor"),
        .offset = sl_options_int(opt, "offset"),
        .extra = sl_options_int(opt, "extra"),
        .fill = sl_options_float(opt, "fill"),
        .place = strcmp(place, "before") == 0  ? PLACE_BEFORE
                 : strcmp(place, "after") == 0 ? PLACE_AFTER
                                               : PLACE_INTERLEAVE,
    };
    SL_TRY(check_cell("input_expand", st.factor, st.offset));
    if (st.extra < -1)
        return sl_error(SL_EINVAL, "input_expand: extra must be >= 0 (or -1), got %lld",
                        (long long)st.extra);
    expand_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "input_expand: out of memory");
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

/* The form this input takes, or an SL_ESHAPE naming what was expected. */
static int expand_form(const expand_state *s, int ndim, const int64_t *in, expand_mode *form)
{
    expand_mode f = s->mode;
    if (f == MODE_AUTO)
        f = ndim == 4 ? MODE_IMAGE : MODE_VECTOR;
    char got[128];
    if ((f == MODE_IMAGE && ndim != 4) || (f == MODE_VECTOR && ndim != 2))
        return sl_error(SL_ESHAPE, "input_expand: %s form expects input %s, got %s",
                        f == MODE_IMAGE ? "image" : "vector",
                        f == MODE_IMAGE ? "(N, C, H, W)" : "(N, F)",
                        sl_shape_str(ndim, in, got, sizeof got));
    *form = f;
    return SL_OK;
}

static int64_t vector_extra(const expand_state *s, int64_t features)
{
    return s->extra >= 0 ? s->extra : (s->factor - 1) * features;
}

/* Output position of original feature j of F, with E constants. */
static int64_t vector_position(expand_place place, int64_t j, int64_t F, int64_t E)
{
    switch (place) {
    case PLACE_BEFORE:
        return E + j;
    case PLACE_AFTER:
        return j;
    default:
        return j + (2 * j + 1) * E / (2 * F);
    }
}

static int expand_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                               int64_t *out)
{
    const expand_state *s = sl_module_state(m);
    expand_mode form;
    SL_TRY(expand_form(s, ndim, in, &form));
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    /* Checked (a GCC/Clang builtin): a huge `factor` or `extra` must be an
     * error, not signed overflow.  forward and backward then compute the
     * same sizes from an input that passed here. */
    char got[128];
    if (form == MODE_IMAGE) {
        if (__builtin_mul_overflow(in[2], s->factor, &out[2]) ||
            __builtin_mul_overflow(in[3], s->factor, &out[3]))
            return sl_error(SL_EINVAL, "input_expand: factor %lld is out of range for input %s",
                            (long long)s->factor, sl_shape_str(ndim, in, got, sizeof got));
    } else if ((s->extra < 0 && __builtin_mul_overflow(s->factor - 1, in[1], &out[1])) ||
               __builtin_add_overflow(in[1], vector_extra(s, in[1]), &out[1])) {
        return sl_error(SL_EINVAL, "input_expand: %s %lld is out of range for input %s",
                        s->extra >= 0 ? "extra" : "factor",
                        (long long)(s->extra >= 0 ? s->extra : s->factor),
                        sl_shape_str(ndim, in, got, sizeof got));
    }
    return SL_OK;
}

/* One source for float and for double: input_expand_generic.h, included once per type. */
#define T float
#define SUF(name) name##_f32
#include "input_expand_generic.h"
#define T double
#define SUF(name) name##_f64
#include "input_expand_generic.h"


static int expand_check(const sl_tensor *t)
{
    if (!sl_tensor_is_contiguous(t) || (t->dtype != SL_F32 && t->dtype != SL_F64))
        return sl_error(SL_EINVAL, "input_expand: tensors must be contiguous f32 or f64");
    return SL_OK;
}

static int expand_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const expand_state *s = sl_module_state(m);
    expand_mode form;
    SL_TRY(expand_form(s, in->ndim, in->shape, &form));
    SL_TRY(expand_check(in));
    const bool f32 = in->dtype == SL_F32;
    if (form == MODE_IMAGE) {
        int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
        if (f32)
            image_fwd_f32(in->data, out->data, planes, H, W, s->factor, s->offset,
                          (float)s->fill);
        else
            image_fwd_f64(in->data, out->data, planes, H, W, s->factor, s->offset, s->fill);
    } else {
        int64_t N = in->shape[0], F = in->shape[1], E = vector_extra(s, F);
        if (f32)
            vector_fwd_f32(in->data, out->data, N, F, E, s->place, (float)s->fill);
        else
            vector_fwd_f64(in->data, out->data, N, F, E, s->place, s->fill);
    }
    return SL_OK;
}

static int expand_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                           const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in) /* no parameters: nothing to do for a first layer */
        return SL_OK;
    const expand_state *s = sl_module_state(m);
    expand_mode form;
    SL_TRY(expand_form(s, in->ndim, in->shape, &form));
    SL_TRY(expand_check(grad_out));
    const bool f32 = in->dtype == SL_F32;
    if (form == MODE_IMAGE) {
        int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
        if (f32)
            image_bwd_f32(grad_out->data, grad_in->data, planes, H, W, s->factor, s->offset);
        else
            image_bwd_f64(grad_out->data, grad_in->data, planes, H, W, s->factor, s->offset);
    } else {
        int64_t N = in->shape[0], F = in->shape[1], E = vector_extra(s, F);
        if (f32)
            vector_bwd_f32(grad_out->data, grad_in->data, N, F, E, s->place);
        else
            vector_bwd_f64(grad_out->data, grad_in->data, N, F, E, s->place);
    }
    return SL_OK;
}

static void expand_destroy(sl_module *m) { free(sl_module_state(m)); }

static const sl_module_type expand_type = {
    .name = "input_expand",
    .summary = "input dimension expansion: dilate images by K (or pad vectors) with a constant "
               "fill (Zhang et al. 2024); fill is in the units of this module's input",
    .options = expand_options,
    .create = expand_create,
    .output_shape = expand_output_shape,
    .forward = expand_forward,
    .backward = expand_backward,
    .destroy = expand_destroy,
    /* Opaque, deliberately: the vector form appends new features (units),
     * so it is not a per-unit map; it is meant for the model's input,
     * where no hidden layer spans it anyway. */
    .role = {.kind = SL_ROLE_OPAQUE},
};

/* ---------------------------------------------------------------- expand_project */

typedef struct project_state {
    int64_t factor, offset;
    double fill;
} project_state;

static const sl_option_spec project_options[] = {
    {"factor", SL_OPT_INT, "2", "expansion factor K the input was expanded with", NULL},
    {"offset", SL_OPT_INT, "0", "position of the original pixel in its KxK cell", NULL},
    {"fill", SL_OPT_FLOAT, "0.5", "value the inserted positions are reset to", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int project_create(sl_module *m, const sl_options *opt)
{
    project_state st = {.factor = sl_options_int(opt, "factor"),
                        .offset = sl_options_int(opt, "offset"),
                        .fill = sl_options_float(opt, "fill")};
    SL_TRY(check_cell("expand_project", st.factor, st.offset));
    project_state *s = malloc(sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "expand_project: out of memory");
    *s = st;
    sl_module_set_state(m, s);
    return SL_OK;
}

static int project_output_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim,
                                int64_t *out)
{
    const project_state *s = sl_module_state(m);
    char got[128];
    if (ndim != 4 || in[2] % s->factor != 0 || in[3] % s->factor != 0)
        return sl_error(SL_ESHAPE,
                        "expand_project: expects an expanded image (N, C, H, W) with H and W "
                        "multiples of factor=%lld, got %s",
                        (long long)s->factor, sl_shape_str(ndim, in, got, sizeof got));
    *out_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        out[i] = in[i];
    return SL_OK;
}

static int project_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    const project_state *s = sl_module_state(m);
    SL_TRY(expand_check(in));
    int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
    if (in->dtype == SL_F32)
        project_f32(in->data, out->data, planes, H, W, s->factor, s->offset, (float)s->fill);
    else
        project_f64(in->data, out->data, planes, H, W, s->factor, s->offset, s->fill);
    return SL_OK;
}

static int project_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                            const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    if (!grad_in)
        return SL_OK;
    const project_state *s = sl_module_state(m);
    SL_TRY(expand_check(grad_out));
    int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
    /* the same kernel with fill 0: the reset positions do not depend on the input */
    if (in->dtype == SL_F32)
        project_f32(grad_out->data, grad_in->data, planes, H, W, s->factor, s->offset, 0.0f);
    else
        project_f64(grad_out->data, grad_in->data, planes, H, W, s->factor, s->offset, 0.0);
    return SL_OK;
}

static const sl_module_type project_type = {
    .name = "expand_project",
    .summary = "SBDE test-time mask projection: reset the inserted positions of an expanded "
               "image to the fill value (arXiv 2602.17948)",
    .options = project_options,
    .create = project_create,
    .output_shape = project_output_shape,
    .forward = project_forward,
    .backward = project_backward,
    .destroy = expand_destroy,
    /* Opaque: an input-side transform, like input_expand. */
    .role = {.kind = SL_ROLE_OPAQUE},
};

static const sl_module_type *const modules[] = {&expand_type, &project_type, NULL};

static const sl_plugin plugin = {
    SL_PLUGIN_HEADER,
    .name = "input_expand",
    .version = "1.0.0",
    .license = "MIT",
    .summary = "input dimension expansion for symmetry breaking "
               "(docs/background/input-expansion.md)",
    .modules = modules,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &plugin; }
