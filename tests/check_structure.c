/* The structure walker (structure.h): hidden layers and their symmetries
 * from declared roles, exact function-preserving permutations, and a
 * third-party weight layer treated exactly as linear. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "testutil.h"

static sl_structure *walk(sl_model *m)
{
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(m, &s));
    return s;
}

static unsigned symmetry(const sl_structure *s, int h)
{
    ck_assert_int_lt(h, sl_structure_nhidden(s));
    return sl_structure_hidden(s, h)->symmetry;
}

/* The symmetry one map between two linear layers gives. */
static unsigned between(const char *type, const char *options)
{
    const char *const spec[] = {"linear", "in_features=3,out_features=4", type, options,
                                "linear", "in_features=4,out_features=2", NULL};
    sl_model *m = sl_test_model(SL_F64, 1, spec);
    sl_structure *s = walk(m);
    ck_assert_int_eq(sl_structure_nlayers(s), 2);
    unsigned sym = sl_structure_nhidden(s) == 1 ? symmetry(s, 0) : 0;
    sl_structure_free(s);
    sl_model_free(m);
    return sym;
}

START_TEST(symmetries_from_roles)
{
    const unsigned P = SL_SYM_PERMUTE, R = SL_SYM_RESCALE, S = SL_SYM_SIGN, G = SL_SYM_GL;
    ck_assert_uint_eq(between("relu", ""), P | R);
    ck_assert_uint_eq(between("leaky_relu", "negative_slope=0.2"), P | R);
    ck_assert_uint_eq(between("tanh", ""), P | S);
    ck_assert_uint_eq(between("sigmoid", ""), P);
    ck_assert_uint_eq(between("gelu", ""), P);
    ck_assert_uint_eq(between("identity", ""), P | R | S | G);
    ck_assert_uint_eq(between("dropout", "p=0.5"), P | R | S); /* no GL: masks differ per unit */
    ck_assert_uint_eq(between("batchnorm", "num_features=4"), P | SL_SYM_SCALE_FREE);
    ck_assert_uint_eq(between("layernorm", "features=4"), P);
    char text[64];
    sl_symmetry_text(P | R | G, text, sizeof text);
    ck_assert_str_eq(text, "permute,rescale,gl");
}
END_TEST

START_TEST(mlp_layers_and_refs)
{
    const char *const spec[] = {"flatten", "", "linear", "in_features=6,out_features=5",
                                "relu", "", "dropout", "p=0.1",
                                "linear", "in_features=5,out_features=4,bias=false",
                                "batchnorm", "num_features=4", "linear",
                                "in_features=4,out_features=3", NULL};
    sl_model *m = sl_test_model(SL_F32, 2, spec);
    sl_structure *s = walk(m);
    ck_assert_int_eq(sl_structure_nlayers(s), 3);
    ck_assert_int_eq(sl_structure_nhidden(s), 2);
    const sl_weight_layer *L0 = sl_structure_layer(s, 0), *L1 = sl_structure_layer(s, 1);
    ck_assert_int_eq(L0->module, 1);
    ck_assert_int_eq(L0->units, 5);
    ck_assert_int_eq(L0->fan_in, 6);
    ck_assert_int_eq(L0->hidden_in, -1);
    ck_assert_int_eq(L0->hidden_out, 0);
    ck_assert_int_eq(L1->bias, -1);
    ck_assert_int_eq(L1->hidden_in, 0);
    ck_assert_int_eq(sl_structure_layer(s, 2)->hidden_out, -1); /* output layer */
    const sl_hidden_layer *h0 = sl_structure_hidden(s, 0), *h1 = sl_structure_hidden(s, 1);
    ck_assert_ptr_eq(h0->act, sl_model_module(m, 3)); /* after relu and dropout */
    ck_assert_int_eq(h0->nrefs, 3);      /* weight rows, bias, next weight's columns */
    ck_assert_int_eq(sl_hidden_ref(h0, 0)->param, sl_model_find_param(m, "1.weight"));
    ck_assert_int_eq(sl_hidden_ref(h0, 1)->param, sl_model_find_param(m, "1.bias"));
    const sl_unit_ref *in = sl_hidden_ref(h0, 2);
    ck_assert_int_eq(in->param, sl_model_find_param(m, "4.weight"));
    ck_assert_int_eq(in->axis, 1);
    ck_assert_int_eq(in->block, 1);
    ck_assert_int_eq(in->use, SL_UNITS_IN);
    /* h1: weight rows (no bias), batch norm's four per-unit tensors, columns */
    ck_assert_int_eq(h1->nrefs, 6);
    int self = 0, buffers = 0;
    for (int i = 0; i < h1->nrefs; i++) {
        self += sl_hidden_ref(h1, i)->use == SL_UNITS_SELF;
        buffers += sl_hidden_ref(h1, i)->buffer >= 0;
    }
    ck_assert_int_eq(self, 4);
    ck_assert_int_eq(buffers, 2);
    sl_structure_free(s);
    sl_model_free(m);
}
END_TEST

/* Permutes every hidden layer of a copy of m at random: the copy's
 * parameters move, its function does not. */
static void check_permutation_keeps_function(const char *const *spec, int ndim,
                                             const int64_t *xshape)
{
    sl_model *m = sl_test_model(SL_F64, 3, spec), *p;
    sl_rng rng;
    sl_rng_seed(&rng, 9);
    for (int i = 0; i < sl_model_nparams(m); i++) /* layers without an init too */
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &rng, 0.0, 0.5));
    sl_model_set_training(m, false);
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &p));
    sl_model_set_training(p, false);
    sl_structure *s = walk(m);
    ck_assert_int_gt(sl_structure_nhidden(s), 0);
    for (int h = 0; h < sl_structure_nhidden(s); h++) {
        int64_t k = sl_structure_hidden(s, h)->units, perm[64];
        ck_assert_int_le(k, 64);
        for (int64_t j = 0; j < k; j++)
            perm[j] = (j + 1) % k; /* a cycle: moves every unit */
        sl_rng_shuffle(&rng, perm, k);
        ck_assert_sl_ok(sl_structure_permute(p, s, h, perm));
    }
    double moved = 0;
    for (int64_t i = 0; i < sl_model_numel(m); i++)
        moved = fmax(moved, fabs(sl_tensor_flat_get(sl_model_flat_params(m), i) -
                                 sl_tensor_flat_get(sl_model_flat_params(p), i)));
    ck_assert_msg(moved > 1e-3, "the permutation moved nothing (%g)", moved);
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, ndim, xshape));
    ck_assert_sl_ok(sl_tensor_normal(&x, &rng, 0.0, 1.0));
    double gap = sl_test_output_gap(m, p, &x);
    ck_assert_msg(gap < 1e-12, "outputs differ by %.3e after permuting", gap);
    int64_t bad[3] = {0, 0, 0};
    ck_assert_sl_fails(sl_structure_permute(p, s, 0, bad), SL_EINVAL, "not a permutation");
    sl_tensor_release(&x);
    sl_structure_free(s);
    sl_model_free(p);
    sl_model_free(m);
}

START_TEST(permute_mlp_with_batchnorm)
{
    const char *const spec[] = {"linear", "in_features=5,out_features=7", "batchnorm",
                                "num_features=7", "tanh", "", "linear",
                                "in_features=7,out_features=6", "leaky_relu",
                                "negative_slope=0.1", "linear", "in_features=6,out_features=3",
                                NULL};
    check_permutation_keeps_function(spec, 2, SHAPE(4, 5));
}
END_TEST

/* Channels through pooling, and through flatten into a block of H*W columns. */
START_TEST(permute_cnn_through_flatten)
{
    const char *const spec[] = {
        "conv2d", "in_channels=2,out_channels=4,kernel_size=3,padding=1", "relu", "",
        "maxpool2d", "kernel_size=2", "conv2d", "in_channels=4,out_channels=5,kernel_size=3",
        "relu", "", "flatten", "", "linear", "in_features=20,out_features=3", NULL};
    sl_model *m = sl_test_model(SL_F64, 4, spec);
    sl_structure *s = walk(m);
    ck_assert_int_eq(sl_structure_nhidden(s), 2);
    const sl_hidden_layer *h0 = sl_structure_hidden(s, 0), *h1 = sl_structure_hidden(s, 1);
    ck_assert_ptr_eq(h0->act, sl_model_module(m, 1)); /* relu; maxpool resamples */
    ck_assert_uint_eq(h0->symmetry, SL_SYM_PERMUTE | SL_SYM_RESCALE);
    ck_assert_int_eq(sl_hidden_ref(h0, 2)->block, 1); /* conv -> conv */
    ck_assert_int_eq(sl_hidden_ref(h1, 2)->block, 4); /* 5 channels of 2x2 -> 20 features */
    sl_structure_free(s);
    sl_model_free(m);
    check_permutation_keeps_function(spec, 4, SHAPE(3, 2, 8, 8));
}
END_TEST

/* ---- a layer from a plugin built against the public headers ------------ */

static void load_dense(void)
{
    if (!sl_registry_find(SL_KIND_MODULE, "dense"))
        ck_assert_sl_ok(sl_plugin_load(SL_TEST_PLUGINDIR "/dense.so"));
}

START_TEST(third_party_transposed_weight)
{
    load_dense();
    const char *const spec[] = {"dense_t", "in_features=4,out_features=6", "relu", "",
                                "dense_t", "in_features=6,out_features=5", "tanh", "",
                                "linear", "in_features=5,out_features=2", NULL};
    sl_model *m = sl_test_model(SL_F64, 5, spec);
    /* no reset_parameters: give the dense layers weights */
    sl_rng r;
    sl_rng_seed(&r, 11);
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &r, 0.0, 0.5));
    sl_structure *s = walk(m);
    ck_assert_int_eq(sl_structure_nhidden(s), 2);
    ck_assert_int_eq(sl_structure_layer(s, 0)->units, 6);
    ck_assert_int_eq(sl_structure_layer(s, 0)->fan_in, 4);
    ck_assert_int_eq(sl_hidden_ref(sl_structure_hidden(s, 0), 0)->axis, 1);
    ck_assert_int_eq(sl_hidden_ref(sl_structure_hidden(s, 0), 2)->axis, 0);
    sl_structure_free(s);
    sl_model_free(m);
    check_permutation_keeps_function(spec, 2, SHAPE(3, 4));
}
END_TEST

/* The same network from linear and from the plugin's dense layer. */
static sl_model *twin(const char *type)
{
    const char *const spec[] = {type, "in_features=4,out_features=6", "relu", "",
                                type, "in_features=6,out_features=5", "relu", "",
                                type, "in_features=5,out_features=3", NULL};
    sl_model *m = sl_test_model(SL_F64, 6, spec);
    sl_rng r;
    sl_rng_seed(&r, 12); /* identical weights in both, whatever their own init */
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &r, 0.0, 0.5));
    return m;
}

static void make_rows(sl_dataset *d, int64_t n)
{
    sl_rng r;
    sl_rng_seed(&r, 13);
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F64, 2, SHAPE(n, 4)));
    ck_assert_sl_ok(sl_tensor_normal(&d->x, &r, 0.0, 1.0));
    ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_I64, 1, SHAPE(n)));
    for (int64_t i = 0; i < n; i++)
        ((int64_t *)d->y.data)[i] = (int64_t)sl_rng_below(&r, 3);
}

/* Probe records of the linear and the dense twin agree name for name. */
static void same_probe(const char *probe, const char *options, const sl_dataset *d, double tol)
{
    sl_model *a = twin("linear"), *b = twin("dense");
    sl_record *ra = sl_record_new(), *rb = sl_record_new();
    sl_options *o = sl_test_options(options);
    ck_assert_sl_ok(sl_probe_run(probe, o, a, d, ra));
    ck_assert_sl_ok(sl_probe_run(probe, o, b, d, rb));
    ck_assert_int_gt(sl_record_count(ra), 0);
    ck_assert_int_eq(sl_record_count(ra), sl_record_count(rb));
    for (int i = 0; i < sl_record_count(ra); i++) {
        double v;
        ck_assert_sl_ok(sl_record_get(rb, sl_record_name(ra, i), &v));
        double u = sl_record_value(ra, i);
        ck_assert_msg(fabs(u - v) <= tol * fmax(1.0, fabs(u)), "%s %s: linear %.17g, dense %.17g",
                      probe, sl_record_name(ra, i), u, v);
    }
    sl_options_free(o);
    sl_record_free(ra);
    sl_record_free(rb);
    sl_model_free(a);
    sl_model_free(b);
}

START_TEST(third_party_layer_in_probes)
{
    load_dense();
    sl_dataset d = {0};
    make_rows(&d, 64);
    same_probe("symmetry_metrics", "probe_batch=32", &d, 0.0);
    same_probe("conserved", NULL, &d, 0.0);
    same_probe("symmetry_breaking", "replicas=3,steps=4,batch=8,probe_batch=16,lr=0.05", &d,
               1e-9);
    sl_dataset_release(&d);
}
END_TEST

/* syre's anchor scale comes from each weight layer's fan_in, biases
 * included: at lr 0 the parameters move only by the anchor pull, so the
 * twins end bit-identical. */
START_TEST(third_party_layer_in_syre)
{
    load_dense();
    sl_dataset d = {0};
    make_rows(&d, 16);
    sl_model *m[2] = {twin("linear"), twin("dense")};
    for (int k = 0; k < 2; k++) {
        sl_options *ho = sl_test_options("gamma=0.5,lr_scaled=false,seed=3");
        sl_hook *h;
        ck_assert_sl_ok(sl_hook_new("syre", ho, &h));
        sl_options *oo = sl_test_options("lr=0");
        sl_optim *opt;
        ck_assert_sl_ok(sl_optim_new("sgd", m[k], oo, &opt));
        sl_options *to = sl_test_options("epochs=1,batch=8");
        sl_train_args args = {.train = &d, .hooks = &h, .nhooks = 1};
        ck_assert_sl_ok(sl_train(m[k], opt, &args, to));
        sl_options_free(to);
        sl_optim_free(opt);
        sl_options_free(oo);
        sl_hook_free(h);
        sl_options_free(ho);
    }
    const sl_tensor *a = sl_model_flat_params(m[0]), *b = sl_model_flat_params(m[1]);
    for (int64_t i = 0; i < sl_tensor_numel(a); i++)
        ck_assert_msg(sl_tensor_flat_get(a, i) == sl_tensor_flat_get(b, i),
                      "parameter %lld: %.17g vs %.17g", (long long)i, sl_tensor_flat_get(a, i),
                      sl_tensor_flat_get(b, i));
    sl_model_free(m[0]);
    sl_model_free(m[1]);
    sl_dataset_release(&d);
}
END_TEST

/* ---- roles from plugins built before roles existed --------------------- */

static int pass_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    (void)m;
    *out_ndim = ndim;
    memcpy(out, in, (size_t)ndim * sizeof *in);
    return SL_OK;
}
static int pass_create(sl_module *m, const sl_options *o)
{
    (void)m;
    (void)o;
    return SL_OK;
}
static int pass_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    (void)m;
    return sl_tensor_copy(out, in);
}
static int pass_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                         const sl_tensor *grad_out, sl_tensor *grad_in)
{
    (void)m;
    (void)in;
    (void)out;
    return grad_in ? sl_tensor_copy(grad_in, grad_out) : SL_OK;
}

/* Declares a per-unit role, but in a descriptor of ABI minor 0, where the
 * field did not exist: the host must not read it. */
static const sl_module_type old_pass = {
    .name = "old_pass", .summary = "test: identity from an ABI 1.0 plugin",
    .create = pass_create, .output_shape = pass_shape, .forward = pass_forward,
    .backward = pass_backward,
    .role = {.kind = SL_ROLE_PER_UNIT, .flags = SL_UNIT_HOMOGENEOUS}};
static const sl_module_type *const old_modules[] = {&old_pass, NULL};
static const sl_plugin old_plugin = {.abi_major = SL_ABI_MAJOR, .abi_minor = 0,
                                     .size = sizeof(sl_plugin), .name = "old",
                                     .version = "1", .summary = "test: minor 0",
                                     .modules = old_modules};

START_TEST(minor_zero_plugins_are_opaque)
{
    if (!sl_registry_find(SL_KIND_MODULE, "old_pass"))
        ck_assert_sl_ok(sl_plugin_register(&old_plugin, "test"));
    const char *const spec[] = {"linear", "in_features=3,out_features=4", "old_pass", "",
                                "linear", "in_features=4,out_features=2", NULL};
    sl_model *m = sl_test_model(SL_F64, 7, spec);
    ck_assert_int_eq(sl_module_role_of(sl_model_module(m, 1))->kind, SL_ROLE_OPAQUE);
    sl_structure *s = walk(m);
    ck_assert_int_eq(sl_structure_nlayers(s), 2);
    ck_assert_int_eq(sl_structure_nhidden(s), 0); /* nothing looks through it */
    sl_structure_free(s);
    sl_model_free(m);
}
END_TEST

static Suite *structure_suite(void)
{
    Suite *s = suite_create("structure");
    TCase *t = tcase_create("walker");
    tcase_add_test(t, symmetries_from_roles);
    tcase_add_test(t, mlp_layers_and_refs);
    tcase_add_test(t, permute_mlp_with_batchnorm);
    tcase_add_test(t, permute_cnn_through_flatten);
    tcase_add_test(t, minor_zero_plugins_are_opaque);
    suite_add_tcase(s, t);
    TCase *p = tcase_create("third_party");
    tcase_set_timeout(p, 120); /* a hang guard only (valgrind is slow) */
    tcase_add_test(p, third_party_transposed_weight);
    tcase_add_test(p, third_party_layer_in_probes);
    tcase_add_test(p, third_party_layer_in_syre);
    suite_add_tcase(s, p);
    return s;
}

int main(void) { return sl_test_run(structure_suite()); }
