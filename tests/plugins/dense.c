/* A third-party weight layer, written only against the public headers (no
 * config.h, nothing from core/): the structure tests check that every
 * symmetry technique handles it exactly as it handles the built-in linear.
 *
 *   dense    y = x Wᵀ + b, W stored (out, in)  — linear's layout;
 *   dense_t  y = x W + b,  W stored (in, out)  — transposed storage, so the
 *            walker must go by the declared axes, not by habit.
 * Both take (B, in) inputs and f32 or f64; no initialisation (tests set
 * the weights). */
#include <symlab/symlab.h>

typedef struct dense_state {
    int64_t in, out;
    bool transposed;
} dense_state;

static const sl_option_spec dense_options[] = {
    {"in_features", SL_OPT_INT, NULL, "inputs", NULL},
    {"out_features", SL_OPT_INT, NULL, "outputs", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int create(sl_module *m, const sl_options *opt, bool transposed)
{
    int64_t in = sl_options_int(opt, "in_features"), out = sl_options_int(opt, "out_features");
    if (in <= 0 || out <= 0)
        return sl_error(SL_EINVAL, "dense: in_features and out_features must be > 0");
    int64_t shape[2] = {transposed ? in : out, transposed ? out : in};
    SL_TRY(sl_module_add_param(m, "weight", 2, shape));
    SL_TRY(sl_module_add_param(m, "bias", 1, &out));
    return SL_OK;
}

static int create_n(sl_module *m, const sl_options *o) { return create(m, o, false); }
static int create_t(sl_module *m, const sl_options *o) { return create(m, o, true); }

/* Sizes from the weight's shape and the type's declared layout. */
static dense_state state_of(sl_module *m)
{
    const sl_tensor *w = sl_module_param(m, 0);
    bool t = sl_module_type_of(m)->role.unit_axis == 1;
    dense_state s = {t ? w->shape[0] : w->shape[1], t ? w->shape[1] : w->shape[0], t};
    return s;
}

static int shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    dense_state s = state_of(m);
    if (ndim != 2 || in[1] != s.in)
        return sl_error(SL_ESHAPE, "dense: expects (B, %lld)", (long long)s.in);
    *out_ndim = 2;
    out[0] = in[0];
    out[1] = s.out;
    return SL_OK;
}

static int forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    dense_state s = state_of(m);
    SL_TRY(sl_gemm(false, !s.transposed, 1.0, in, sl_module_param(m, 0), 0.0, out));
    const sl_tensor *b = sl_module_param(m, 1);
    for (int64_t r = 0; r < out->shape[0]; r++)
        for (int64_t j = 0; j < s.out; j++)
            sl_tensor_set(out, (int64_t[]){r, j},
                          sl_tensor_flat_get(out, r * s.out + j) + sl_tensor_flat_get(b, j));
    return SL_OK;
}

static int backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                    const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)out;
    dense_state s = state_of(m);
    /* dW (out, in) = gᵀ x, or (in, out) = xᵀ g; db = Σ_rows g; dx = g W or g Wᵀ */
    if (s.transposed)
        SL_TRY(sl_gemm(true, false, 1.0, in, grad_out, 1.0, sl_module_grad(m, 0)));
    else
        SL_TRY(sl_gemm(true, false, 1.0, grad_out, in, 1.0, sl_module_grad(m, 0)));
    sl_tensor *db = sl_module_grad(m, 1);
    for (int64_t j = 0; j < s.out; j++) {
        double acc = sl_tensor_flat_get(db, j);
        for (int64_t r = 0; r < grad_out->shape[0]; r++)
            acc += sl_tensor_flat_get(grad_out, r * s.out + j);
        sl_tensor_set(db, &j, acc);
    }
    if (grad_in)
        SL_TRY(sl_gemm(false, s.transposed, 1.0, grad_out, sl_module_param(m, 0), 0.0, grad_in));
    return SL_OK;
}

static const sl_module_type dense = {
    .name = "dense",
    .summary = "test: a third-party dense layer, weight (out, in)",
    .options = dense_options,
    .create = create_n,
    .output_shape = shape,
    .forward = forward,
    .backward = backward,
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 0,
             .input_axis = 1},
};

static const sl_module_type dense_t = {
    .name = "dense_t",
    .summary = "test: a third-party dense layer, weight stored (in, out)",
    .options = dense_options,
    .create = create_t,
    .output_shape = shape,
    .forward = forward,
    .backward = backward,
    .role = {.kind = SL_ROLE_WEIGHT, .weight = "weight", .bias = "bias", .unit_axis = 1,
             .input_axis = 0},
};

static const sl_module_type *const modules[] = {&dense, &dense_t, NULL};

static const sl_plugin desc = {
    SL_PLUGIN_HEADER,
    .name = "dense",
    .version = "1.0",
    .summary = "test: third-party weight layers",
    .modules = modules,
};

SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void) { return &desc; }
