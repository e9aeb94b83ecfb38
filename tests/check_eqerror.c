/* The equivariance_error probe: the function's error over a group, and the
 * hidden permutation representation it finds in dense networks with known
 * answers.
 *
 * Known answers are built here without the probe: an equivariant network of
 * gconv_mixed layers is turned into linear layers by reading each layer's
 * dense map off the layer itself (its output for the zero input and for
 * every unit vector), so the dense network computes the same function and
 * its hidden neurons carry exactly the representation the gconv_mixed
 * layer declared: for C_6 with hidden "regular+q2+q3+trivial", orbits of 6,
 * 3, 2 and 1 neurons.  Relabeling those neurons (the walker's permute) or
 * rescaling one (ReLU's symmetry) keeps the function, and the probe must
 * still find the representation; a random dense network has none. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "testutil.h"

static void setup(void) { ck_assert_sl_ok(sl_registry_init()); }

/* A built f64 model from "type", "options" pairs, parameters redrawn
 * N(0, 0.5²) so every tap is generic. */
static sl_model *stack(const char *const *spec, uint64_t seed)
{
    sl_model *m = sl_test_model(SL_F64, seed, spec);
    sl_rng r;
    sl_rng_seed(&r, seed + 1);
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &r, 0.0, 0.5));
    return m;
}

/* Rows of N(0, 1) inputs of `shape` (batch first) and zero targets. */
static sl_dataset inputs(int ndim, const int64_t *shape, uint64_t seed)
{
    sl_dataset d = {0};
    sl_rng r;
    sl_rng_seed(&r, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&d.x, SL_F64, ndim, shape));
    ck_assert_sl_ok(sl_tensor_normal(&d.x, &r, 0.0, 1.0));
    ck_assert_sl_ok(sl_tensor_alloc(&d.y, SL_F64, 2, SHAPE(shape[0], 1)));
    return d;
}

/* The dense map (W, b) of module `path` of m, which reads `in` entries per
 * sample: a one-module model of the same type and options, the module's
 * parameters copied in, run on the zero row and the unit rows. */
static void dense_of(sl_model *m, const char *path, int64_t in, sl_tensor *W, sl_tensor *b)
{
    sl_module *mod = sl_model_find_module(m, path);
    ck_assert_ptr_nonnull(mod);
    sl_model *one;
    ck_assert_sl_ok(sl_model_new(SL_F64, &one));
    ck_assert_sl_ok(sl_model_add(one, sl_module_type_of(mod)->name, sl_module_options(mod)));
    ck_assert_sl_ok(sl_model_build(one, 1));
    char name[64];
    for (int i = 0; i < sl_model_nparams(one); i++) {
        snprintf(name, sizeof name, "%s.%s", path, strchr(sl_model_param_name(one, i), '.') + 1);
        ck_assert_sl_ok(sl_tensor_copy(sl_model_param(one, i),
                                       sl_model_param(m, sl_model_find_param(m, name))));
    }
    sl_tensor e = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&e, SL_F64, 2, SHAPE(in + 1, in)));
    for (int64_t j = 0; j < in; j++)
        sl_tensor_set(&e, SHAPE(j + 1, j), 1.0);
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(one, &e, &y));
    const int64_t out = sl_tensor_numel(y) / (in + 1);
    ck_assert_sl_ok(sl_tensor_alloc(W, SL_F64, 2, SHAPE(out, in)));
    ck_assert_sl_ok(sl_tensor_alloc(b, SL_F64, 1, SHAPE(out)));
    const double *yy = y->data;
    for (int64_t o = 0; o < out; o++) {
        sl_tensor_set(b, SHAPE(o), yy[o]);
        for (int64_t j = 0; j < in; j++)
            sl_tensor_set(W, SHAPE(o, j), yy[(j + 1) * out + o] - yy[o]);
    }
    sl_tensor_release(&e);
    sl_model_free(one);
}

/* C_6 on R^6, hidden regular+q2+q3+trivial (6 + 3 + 2 + 1 = 12 neurons). */
static const char *const C6_MIXED[] = {
    "gconv_mixed", "group=6,in_reps=regular,out_reps=regular+q2+q3+trivial", "relu", "",
    "gconv_mixed", "group=6,in_reps=regular+q2+q3+trivial,out_reps=regular", NULL};
static const char *const C6_OPTS = "group=C6,input=regular,output=regular";

/* The dense network computing what the C6_MIXED model m computes. */
static sl_model *relaxed_c6(sl_model *m)
{
    char l0[64], l1[64];
    snprintf(l0, sizeof l0, "in_features=6,out_features=12");
    snprintf(l1, sizeof l1, "in_features=12,out_features=6");
    sl_model *d = sl_test_model(SL_F64, 5, (const char *const[]){"linear", l0, "relu", "",
                                                                 "linear", l1, NULL});
    const char *paths[] = {"0", "2"};
    const int64_t ins[] = {6, 12};
    for (int l = 0; l < 2; l++) {
        sl_tensor W = {0}, b = {0};
        dense_of(m, paths[l], ins[l], &W, &b);
        char name[32];
        snprintf(name, sizeof name, "%s.weight", paths[l]);
        ck_assert_sl_ok(sl_tensor_copy(sl_model_param(d, sl_model_find_param(d, name)), &W));
        snprintf(name, sizeof name, "%s.bias", paths[l]);
        ck_assert_sl_ok(sl_tensor_copy(sl_model_param(d, sl_model_find_param(d, name)), &b));
        sl_tensor_release(&W);
        sl_tensor_release(&b);
    }
    return d;
}

/* Every element's error is rounding, and there are |C_6| = 6 of them. */
static void assert_equivariant(const sl_record *r, double elements)
{
    ck_assert_double_eq(sl_test_get(r, "elements"), elements);
    ck_assert_double_eq(sl_test_get(r, "error_0"), 0.0);
    ck_assert_msg(sl_test_get(r, "error_max") < 1e-12, "error_max %g",
                  sl_test_get(r, "error_max"));
}

/* The C_6 hidden layer: one orbit each of 6, 3, 2, 1 neurons. */
static void assert_c6_hidden(const sl_record *r)
{
    ck_assert_double_eq(sl_test_get(r, "0.neurons"), 12);
    ck_assert_msg(sl_test_get(r, "0.residual") < 1e-12, "residual %g",
                  sl_test_get(r, "0.residual"));
    for (int L = 1; L <= 6; L++) {
        char name[32];
        snprintf(name, sizeof name, "0.orbits_%d", L);
        double want = L == 6 || L == 3 || L == 2 || L == 1 ? 1 : 0, got = 0;
        sl_record_get(r, name, &got);
        ck_assert_msg(got == want, "%s = %g, wanted %g", name, got, want);
    }
    ck_assert_double_eq(sl_test_get(r, "0.g0.cycles_6"), 1);
    ck_assert_double_eq(sl_test_get(r, "0.is_rep"), 1);
}

START_TEST(gconv_network_is_equivariant)
{
    sl_model *m = stack(C6_MIXED, 11);
    sl_dataset d = inputs(2, SHAPE(40, 6), 12);
    sl_record *r = sl_test_probe("equivariance_error", C6_OPTS, m, &d);
    assert_equivariant(r, 6);
    /* gconv_mixed is opaque to the walker: no hidden layer to report */
    double v;
    ck_assert_int_eq(sl_record_get(r, "0.neurons", &v), SL_ENOTFOUND);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* The relaxed (dense) network: same function, the representation found. */
START_TEST(relaxed_network_representation_found)
{
    sl_model *m = stack(C6_MIXED, 13), *dense = relaxed_c6(m);
    sl_dataset d = inputs(2, SHAPE(40, 6), 14);
    ck_assert(sl_test_output_gap(m, dense, &d.x) < 1e-13);
    sl_record *r = sl_test_probe("equivariance_error", C6_OPTS, dense, &d);
    assert_equivariant(r, 6);
    assert_c6_hidden(r);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(dense);
    sl_model_free(m);
}
END_TEST

/* Relabeled hidden neurons: another choice of which neurons form which
 * orbit; the probe's relabeling moves with them. */
START_TEST(relabeled_neurons_found)
{
    sl_model *m = stack(C6_MIXED, 15), *dense = relaxed_c6(m);
    sl_dataset d = inputs(2, SHAPE(40, 6), 16);
    sl_record *r0 = sl_test_probe("equivariance_error", "group=C6,input=regular,output=regular,"
                                                        "permutations=true", dense, &d);
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(dense, &s));
    const int64_t perm[12] = {11, 3, 7, 0, 9, 1, 5, 10, 2, 8, 4, 6};
    ck_assert_sl_ok(sl_structure_permute(dense, s, 0, perm));
    sl_structure_free(s);
    ck_assert(sl_test_output_gap(m, dense, &d.x) < 1e-13);
    sl_record *r1 = sl_test_probe("equivariance_error", "group=C6,input=regular,output=regular,"
                                                        "permutations=true", dense, &d);
    assert_c6_hidden(r1);
    /* neuron j' after is perm[j'] before: σ1(j') = perm⁻¹(σ0(perm[j'])) */
    int64_t inv[12];
    for (int j = 0; j < 12; j++)
        inv[perm[j]] = j;
    for (int j = 0; j < 12; j++) {
        char name[32];
        snprintf(name, sizeof name, "0.g0.perm_%d", j);
        double s1 = sl_test_get(r1, name);
        snprintf(name, sizeof name, "0.g0.perm_%lld", (long long)perm[j]);
        ck_assert_double_eq(s1, (double)inv[(int64_t)sl_test_get(r0, name)]);
    }
    sl_record_free(r1);
    sl_record_free(r0);
    sl_dataset_release(&d);
    sl_model_free(dense);
    sl_model_free(m);
}
END_TEST

/* ReLU's rescaling (incoming weights × a, outgoing ÷ a) keeps the function;
 * with rescale the representation is still found, without it the rescaled
 * neuron no longer matches its orbit. */
START_TEST(rescaled_neuron)
{
    sl_model *m = stack(C6_MIXED, 17), *dense = relaxed_c6(m);
    sl_dataset d = inputs(2, SHAPE(40, 6), 18);
    sl_tensor *W0 = sl_model_param(dense, sl_model_find_param(dense, "0.weight"));
    sl_tensor *b0 = sl_model_param(dense, sl_model_find_param(dense, "0.bias"));
    sl_tensor *W1 = sl_model_param(dense, sl_model_find_param(dense, "2.weight"));
    const int64_t j = 2; /* a neuron of the regular orbit */
    for (int64_t i = 0; i < 6; i++) {
        sl_tensor_set(W0, SHAPE(j, i), 3.0 * sl_tensor_get(W0, SHAPE(j, i)));
        sl_tensor_set(W1, SHAPE(i, j), sl_tensor_get(W1, SHAPE(i, j)) / 3.0);
    }
    sl_tensor_set(b0, SHAPE(j), 3.0 * sl_tensor_get(b0, SHAPE(j)));
    ck_assert(sl_test_output_gap(m, dense, &d.x) < 1e-13);
    sl_record *r = sl_test_probe("equivariance_error", C6_OPTS, dense, &d);
    assert_equivariant(r, 6);
    assert_c6_hidden(r);
    sl_record_free(r);
    r = sl_test_probe("equivariance_error", "group=C6,input=regular,output=regular,rescale=false",
                      dense, &d);
    ck_assert_msg(sl_test_get(r, "0.residual") > 0.1, "residual %g without rescale",
                  sl_test_get(r, "0.residual"));
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(dense);
    sl_model_free(m);
}
END_TEST

/* The checks can fail: a random dense network is far from equivariant and
 * its hidden layer carries no representation. */
START_TEST(random_dense_network)
{
    sl_model *m = stack((const char *const[]){"linear", "in_features=6,out_features=12", "relu",
                                              "", "linear", "in_features=12,out_features=6",
                                              NULL},
                        19);
    sl_dataset d = inputs(2, SHAPE(40, 6), 20);
    sl_record *r = sl_test_probe("equivariance_error", C6_OPTS, m, &d);
    ck_assert_double_eq(sl_test_get(r, "error_0"), 0.0);
    ck_assert_msg(sl_test_get(r, "error_1") > 0.1, "error_1 %g", sl_test_get(r, "error_1"));
    ck_assert_msg(sl_test_get(r, "0.residual") > 0.1, "residual %g",
                  sl_test_get(r, "0.residual"));
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* S_3 on sets: deepsets is equivariant under all six elements; the dense
 * network's hidden channels are permutation representations (orbits of 3). */
START_TEST(deepsets_s3)
{
    sl_model *m = stack((const char *const[]){"deepsets", "in_channels=2,out_channels=2", "relu",
                                              "", "deepsets", "in_channels=2,out_channels=1",
                                              "flatten", "", NULL},
                        21);
    sl_dataset d = inputs(3, SHAPE(30, 2, 3), 22);
    sl_record *r = sl_test_probe("equivariance_error", "group=S3,input=perm*2,output=perm", m, &d);
    assert_equivariant(r, 6);
    ck_assert_double_eq(sl_test_get(r, "0.neurons"), 6);
    ck_assert_double_eq(sl_test_get(r, "0.orbits_3"), 2);
    ck_assert_msg(sl_test_get(r, "0.residual") < 1e-12, "residual %g",
                  sl_test_get(r, "0.residual"));
    ck_assert_double_eq(sl_test_get(r, "0.is_rep"), 1);
    sl_record_free(r);
    /* the wrong output action: the error says so */
    r = sl_test_probe("equivariance_error",
                      "input_generators=1 0 2 4 3 5; 2 0 1 5 3 4,output_generators=0 1 2; 0 1 2",
                      m, &d);
    ck_assert_msg(sl_test_get(r, "error_max") > 0.1, "error_max %g", sl_test_get(r, "error_max"));
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* Explicit generators give what the named group gives, element by element
 * (C_4's r in gather form: y[a] = x[a - 1], the map 3 0 1 2). */
START_TEST(explicit_generators_match_named)
{
    sl_model *m = stack((const char *const[]){"linear", "in_features=4,out_features=5", "tanh", "",
                                              "linear", "in_features=5,out_features=4", NULL},
                        23);
    sl_dataset d = inputs(2, SHAPE(20, 4), 24);
    sl_record *a = sl_test_probe("equivariance_error", "group=C4,input=regular,output=regular",
                                 m, &d);
    sl_record *b = sl_test_probe("equivariance_error",
                                 "input_generators=3 0 1 2,output_generators=3 0 1 2", m, &d);
    ck_assert_double_eq(sl_test_get(b, "elements"), 4);
    for (int e = 0; e < 4; e++) {
        char name[16];
        snprintf(name, sizeof name, "error_%d", e);
        ck_assert_double_eq(sl_test_get(a, name), sl_test_get(b, name));
    }
    sl_record_free(b);
    sl_record_free(a);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

/* The symmetry probes of the earlier issues read a Deep Sets network
 * through the walker: its hidden channels (each owning a row of the packed
 * weight and n set entries) are a hidden layer that weight matching can
 * realign.  B is A with its hidden channels shuffled (the same function);
 * weight matching must put every parameter back exactly, and
 * symmetry_metrics must see the channels as units. */
START_TEST(symmetry_probes_on_deepsets)
{
    sl_model *a = stack((const char *const[]){"deepsets", "in_channels=2,out_channels=4", "relu",
                                              "", "deepsets", "in_channels=4,out_channels=1",
                                              "flatten", "", NULL},
                        27);
    sl_model *b;
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &b));
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(a, &s));
    ck_assert_int_eq(sl_structure_nhidden(s), 1);
    const int64_t perm[4] = {2, 3, 1, 0};
    ck_assert_sl_ok(sl_structure_permute(b, s, 0, perm));
    sl_structure_free(s);
    sl_dataset d = inputs(3, SHAPE(10, 2, 3), 28);
    ck_assert(sl_test_output_gap(a, b, &d.x) < 1e-13);
    const char *pb = sl_test_tmp_path("b.safetensors");
    char out[512], text[1200];
    snprintf(out, sizeof out, "%s", sl_test_tmp_path("aligned.safetensors"));
    ck_assert_sl_ok(sl_model_save(b, pb));
    snprintf(text, sizeof text, "other=%s,output=%s", pb, out);
    sl_record *r = sl_test_probe("weight_matching", text, a, NULL);
    ck_assert_double_eq(sl_test_get(r, "units_moved"), 4);
    ck_assert_double_eq(sl_test_get(r, "distance_after"), 0.0);
    sl_record_free(r);
    r = sl_test_probe("symmetry_metrics", NULL, a, &d);
    ck_assert_double_eq(sl_test_get(r, "0.units"), 4);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(b);
    sl_model_free(a);
}
END_TEST

static void refused(const char *text, sl_model *m, const sl_dataset *d, const char *needle)
{
    sl_options *o = sl_test_options(text);
    sl_record *r = sl_record_new();
    ck_assert_sl_fails(sl_probe_run("equivariance_error", o, m, d, r), SL_EINVAL, needle);
    sl_record_free(r);
    sl_options_free(o);
}

START_TEST(bad_input)
{
    sl_model *m = stack((const char *const[]){"linear", "in_features=4,out_features=4", NULL}, 25);
    sl_dataset d = inputs(2, SHAPE(8, 4), 26);
    refused("group=D4,input=regular,output=regular", m, &d, "group: 'D4'");
    refused("group=C4,input=regular*2,output=regular", m, &d, "input");
    refused("group=C4,input=q3,output=regular", m, &d, "'q3'");
    refused("group=C4,input=regular", m, &d, "output");
    refused("", m, &d, "either group");
    refused("input_generators=0 1 1 2,output_generators=0 1 2 3", m, &d, "not a permutation");
    refused("input_generators=1 0 2 3,output_generators=1 0 2", m, &d, "generator 1 has 3");
    refused("input_generators=1 0 2 3; 0 1 2 3,output_generators=1 0 2 3", m, &d,
            "2 input generators but 1");
    refused("group=C4,input=regular,output=regular,max_elements=3", m, &d, "max_elements");
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options("group=C4,input=regular,output=regular");
    ck_assert_sl_fails(sl_probe_run("equivariance_error", o, m, NULL, r), SL_EINVAL,
                       "needs data");
    sl_options_free(o);
    sl_record_free(r);
    sl_dataset_release(&d);
    sl_model_free(m);
}
END_TEST

static Suite *eqerror_suite(void)
{
    Suite *s = suite_create("equivariance_error");
    TCase *t = tcase_create("probe");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, gconv_network_is_equivariant);
    tcase_add_test(t, relaxed_network_representation_found);
    tcase_add_test(t, relabeled_neurons_found);
    tcase_add_test(t, rescaled_neuron);
    tcase_add_test(t, random_dense_network);
    tcase_add_test(t, deepsets_s3);
    tcase_add_test(t, explicit_generators_match_named);
    tcase_add_test(t, bad_input);
    suite_add_tcase(s, t);
    TCase *w = tcase_create("walker");
    tcase_add_checked_fixture(w, setup, NULL);
    sl_test_add_tmpdir(w);
    tcase_add_test(w, symmetry_probes_on_deepsets);
    suite_add_tcase(s, w);
    return s;
}

int main(void) { return sl_test_run(eqerror_suite()); }
