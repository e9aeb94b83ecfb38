/* tests/check_replicas.c — the symmetry_breaking probe done properly
 * (issue 14): replicas trained through sl_train with the caller's hooks,
 * taken at initialisation and after training, and the weight-matched
 * aligned_distance; with the two library pieces it rests on (options of
 * type hooks, sl_train's max_steps). */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "testutil.h"

#define MODEL(dtype, seed, ...) sl_test_model(dtype, seed, (const char *const[]){__VA_ARGS__, NULL})

static sl_model *mlp(uint64_t seed)
{
    return MODEL(SL_F64, seed, "linear", "in_features=4,out_features=8", "relu", "", "linear",
                 "in_features=8,out_features=3");
}

static sl_model *deep_mlp(uint64_t seed)
{
    return MODEL(SL_F64, seed, "linear", "in_features=4,out_features=6", "tanh", "", "linear",
                 "in_features=6,out_features=5", "relu", "", "linear",
                 "in_features=5,out_features=3");
}

static sl_hook *grad_scale(const char *text)
{
    sl_options *o = sl_test_options(text);
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("grad_scale", o, &h));
    sl_options_free(o);
    return h;
}

/* The probe with options `text` plus, when h is not NULL, hooks = {h}. */
static sl_record *probe_hooked(const char *text, sl_hook *h, sl_model *m, const sl_dataset *d)
{
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options(text);
    if (h)
        ck_assert_sl_ok(sl_options_set_hooks(o, "hooks", &h, 1));
    ck_assert_sl_ok(sl_probe_run("symmetry_breaking", o, m, d, r));
    sl_options_free(o);
    return r;
}

#define GET sl_test_get
#define TRAINED "steps=40,batch=16,subset=150,probe_batch=64"

/* ---------------------------------------------------------------- options */

START_TEST(test_options_hooks)
{
    ck_assert_sl_ok(sl_registry_init());
    static const sl_option_spec spec[] = {{"hooks", SL_OPT_HOOKS, "", "h", NULL},
                                          {NULL, SL_OPT_INT, NULL, NULL, NULL}};
    sl_hook *h[2] = {grad_scale("factor=2"), grad_scale("factor=3")};
    /* the default: no hooks */
    sl_options *o = sl_options_new();
    ck_assert_sl_ok(sl_options_validate(o, spec, "t"));
    int n = -1;
    ck_assert_ptr_null(sl_options_hooks(o, "hooks", &n));
    ck_assert_int_eq(n, 0);
    /* set, copied (the list, not the hooks), read back */
    ck_assert_sl_ok(sl_options_set_hooks(o, "hooks", h, 2));
    sl_options *c = sl_options_copy(o);
    sl_options_free(o);
    ck_assert_sl_ok(sl_options_validate(c, spec, "t"));
    sl_hook *const *got = sl_options_hooks(c, "hooks", &n);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_eq(got[0], h[0]);
    ck_assert_ptr_eq(got[1], h[1]);
    sl_options_free(c);
    /* text cannot name hooks; an empty text is the empty list */
    o = sl_test_options("hooks=grad_scale");
    ck_assert_sl_fails(sl_options_validate(o, spec, "t"), SL_EINVAL,
                       "t: option 'hooks' takes a list of hooks");
    sl_options_free(o);
    o = sl_test_options("hooks=");
    ck_assert_sl_ok(sl_options_validate(o, spec, "t"));
    ck_assert_ptr_null(sl_options_hooks(o, "hooks", &n));
    ck_assert_int_eq(n, 0);
    sl_options_free(o);
    /* a hook list where a number is expected, and a NULL hook */
    static const sl_option_spec num[] = {{"lr", SL_OPT_FLOAT, "0.1", "h", NULL},
                                         {NULL, SL_OPT_INT, NULL, NULL, NULL}};
    o = sl_options_new();
    ck_assert_sl_ok(sl_options_set_hooks(o, "lr", h, 1));
    ck_assert_sl_fails(sl_options_validate(o, num, "t"), SL_EINVAL,
                       "option 'lr' expects a number, got a list of hooks");
    sl_hook *null_hook = NULL;
    ck_assert_sl_fails(sl_options_set_hooks(o, "x", &null_hook, 1), SL_EINVAL, "is NULL");
    sl_options_free(o);
    sl_hook_free(h[0]);
    sl_hook_free(h[1]);
}
END_TEST

/* ---------------------------------------------------------------- probe batch */

START_TEST(test_dataset_head_x)
{
    sl_dataset d = sl_test_toy_data(10, 3, 2, 1);
    sl_tensor h = {0};
    ck_assert_sl_ok(sl_dataset_head_x(&d, 4, SL_F64, &h));
    ck_assert_int_eq(h.dtype, SL_F64);
    ck_assert_int_eq(h.ndim, 2);
    ck_assert_int_eq(h.shape[0], 4);
    ck_assert_int_eq(h.shape[1], 3);
    for (int64_t i = 0; i < 12; i++) /* f32 -> f64 is exact */
        ck_assert_double_eq(((const double *)h.data)[i], ((const float *)d.x.data)[i]);
    sl_tensor_release(&h);
    ck_assert_sl_ok(sl_dataset_head_x(&d, 50, SL_F32, &h)); /* all rows, a copy */
    ck_assert_int_eq(h.shape[0], 10);
    ck_assert_ptr_ne(h.data, d.x.data);
    ck_assert_int_eq(memcmp(h.data, d.x.data, 30 * sizeof(float)), 0);
    sl_tensor_release(&h);
    ck_assert_sl_fails(sl_dataset_head_x(&d, 0, SL_F32, &h), SL_EINVAL, "rows >= 1");
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- max_steps */

typedef struct counts {
    int steps, begin, end, epoch_end;
} counts;

static int count_step(void *u, const sl_step_info *info)
{
    (void)info;
    ((counts *)u)->steps++;
    return SL_OK;
}

START_TEST(test_train_max_steps)
{
    sl_dataset d = sl_test_toy_data(64, 4, 3, 8); /* 4 batches of 16 per epoch */
    sl_model *m = mlp(3);
    sl_optim *opt;
    sl_options *oo = sl_test_options("lr=0.05");
    ck_assert_sl_ok(sl_optim_new("sgd", m, oo, &opt));
    sl_history *hist = sl_history_new();
    counts c = {0};
    sl_train_args args = {.train = &d, .history = hist, .on_step = count_step, .userdata = &c};
    sl_options *to = sl_test_options("epochs=3,batch=16,max_steps=6");
    ck_assert_sl_ok(sl_train(m, opt, &args, to));
    ck_assert_int_eq(c.steps, 6);
    ck_assert_int_eq(sl_history_count(hist), 2); /* one whole epoch and a partial one */
    /* a cap beyond the epochs changes nothing */
    c.steps = 0;
    sl_options_free(to);
    to = sl_test_options("epochs=1,batch=16,max_steps=100");
    ck_assert_sl_ok(sl_train(m, opt, &args, to));
    ck_assert_int_eq(c.steps, 4);
    sl_options_free(to);
    to = sl_test_options("max_steps=-1");
    ck_assert_sl_fails(sl_train(m, opt, &args, to), SL_EINVAL, "max_steps must be >= 0");
    sl_options_free(to);
    to = sl_test_options("max_steps=2,checkpoint=/nonexistent/x");
    ck_assert_sl_fails(sl_train(m, opt, &args, to), SL_EINVAL, "max_steps cannot be combined");
    sl_options_free(to);
    sl_history_free(hist);
    sl_optim_free(opt);
    sl_options_free(oo);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- hooks */

/* The replicas are trained through the hooks: a hook that zeroes every
 * gradient leaves every replica at the shared start (all distances 0), one
 * that scales the biases' gradients changes the result, and a factor of 1
 * reproduces the probe without hooks bit for bit. */
START_TEST(test_hooks_train_the_replicas)
{
    sl_dataset d = sl_test_toy_data(200, 4, 3, 8);
    sl_model *m = mlp(3);
    sl_record *plain = probe_hooked(TRAINED, NULL, m, &d);
    ck_assert_msg(GET(plain, "drift") > 1e-3, "replicas should move (%g)", GET(plain, "drift"));

    sl_hook *frozen = grad_scale("pattern=*,factor=0");
    sl_record *fr = probe_hooked(TRAINED, frozen, m, &d);
    ck_assert_double_eq(GET(fr, "drift"), 0.0);
    ck_assert_double_eq(GET(fr, "distance"), 0.0);
    ck_assert_double_eq(GET(fr, "aligned_distance"), 0.0);

    sl_hook *one = grad_scale("pattern=0.bias,factor=1");
    sl_record *same = probe_hooked(TRAINED, one, m, &d);
    ck_assert_double_eq(GET(same, "distance"), GET(plain, "distance"));
    ck_assert_double_eq(GET(same, "train_loss"), GET(plain, "train_loss"));

    sl_hook *bias = grad_scale("pattern=0.bias,factor=30");
    sl_record *sc = probe_hooked(TRAINED, bias, m, &d);
    ck_assert_msg(fabs(GET(sc, "drift") - GET(plain, "drift")) > 1e-3 * GET(plain, "drift"),
                  "scaled bias gradients should change the replicas (drift %g vs %g)",
                  GET(sc, "drift"), GET(plain, "drift"));
    ck_assert_double_ne(GET(sc, "distance"), GET(plain, "distance"));

    /* a hook's own error reaches the caller, naming the replica */
    sl_hook *bad = grad_scale("pattern=nothing,factor=2");
    sl_record *r = sl_record_new();
    sl_options *o = sl_test_options(TRAINED);
    ck_assert_sl_ok(sl_options_set_hooks(o, "hooks", &bad, 1));
    ck_assert_sl_fails(sl_probe_run("symmetry_breaking", o, m, &d, r), SL_EINVAL,
                       "matches no parameter");
    sl_options_free(o);
    sl_record_free(r);

    sl_record_free(plain);
    sl_record_free(fr);
    sl_record_free(same);
    sl_record_free(sc);
    sl_hook_free(frozen);
    sl_hook_free(one);
    sl_hook_free(bias);
    sl_hook_free(bad);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- init / trained */

/* The probe starts its replicas from the model as it stands and leaves the
 * model alone: at initialisation and after training it measures two
 * different points, each reproducibly. */
START_TEST(test_init_and_trained)
{
    sl_dataset d = sl_test_toy_data(200, 4, 3, 8);
    sl_model *m = mlp(3);
    sl_tensor before = {0};
    const sl_tensor *p = sl_model_flat_params(m);
    ck_assert_sl_ok(sl_tensor_alloc(&before, SL_F64, 1, p->shape));
    ck_assert_sl_ok(sl_tensor_copy(&before, p));
    sl_record *init = probe_hooked(TRAINED, NULL, m, &d);
    for (int64_t i = 0; i < sl_tensor_numel(p); i++)
        ck_assert_double_eq(sl_tensor_flat_get(p, i), sl_tensor_flat_get(&before, i));

    sl_optim *opt;
    sl_options *oo = sl_test_options("lr=0.1,momentum=0.9");
    ck_assert_sl_ok(sl_optim_new("sgd", m, oo, &opt));
    sl_train_args args = {.train = &d};
    sl_options *to = sl_test_options("epochs=30,batch=16");
    ck_assert_sl_ok(sl_train(m, opt, &args, to));
    sl_record *trained = probe_hooked(TRAINED, NULL, m, &d);
    sl_record *again = probe_hooked(TRAINED, NULL, m, &d);
    ck_assert_double_eq(GET(trained, "distance"), GET(again, "distance"));
    ck_assert_double_eq(GET(trained, "aligned_distance"), GET(again, "aligned_distance"));
    ck_assert_double_ne(GET(trained, "distance"), GET(init, "distance"));
    /* replicas of the trained model start where the loss is already low */
    ck_assert_msg(GET(trained, "train_loss") < 0.7 * GET(init, "train_loss"),
                  "train_loss after training %g, at initialisation %g",
                  GET(trained, "train_loss"), GET(init, "train_loss"));
    printf("symmetry_breaking at init: distance %.4g aligned %.4g drift %.4g loss %.4g\n"
           "               after training: distance %.4g aligned %.4g drift %.4g loss %.4g\n",
           GET(init, "distance"), GET(init, "aligned_distance"), GET(init, "drift"),
           GET(init, "train_loss"), GET(trained, "distance"), GET(trained, "aligned_distance"),
           GET(trained, "drift"), GET(trained, "train_loss"));
    sl_record_free(init);
    sl_record_free(trained);
    sl_record_free(again);
    sl_options_free(to);
    sl_options_free(oo);
    sl_optim_free(opt);
    sl_tensor_release(&before);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

/* ---------------------------------------------------------------- alignment */

/* Replicas that differ only by a permutation of hidden units (no training,
 * shuffle_units) are far apart as vectors and at aligned distance 0, with
 * one hidden layer and with two. */
START_TEST(test_aligned_zero_for_permuted_replicas)
{
    sl_dataset d = sl_test_toy_data(200, 4, 3, 8);
    sl_model *nets[2] = {mlp(3), deep_mlp(4)};
    for (int k = 0; k < 2; k++) {
        sl_record *r = probe_hooked("steps=0,shuffle_units=true,replicas=5", NULL, nets[k], &d);
        ck_assert_msg(GET(r, "distance") > 0.1, "shuffled distance %g", GET(r, "distance"));
        ck_assert_msg(GET(r, "aligned_distance") < 1e-14, "net %d: aligned distance %g", k,
                      GET(r, "aligned_distance"));
        sl_record_free(r);
        sl_model_free(nets[k]);
    }
    sl_dataset_release(&d);
}
END_TEST

/* With one hidden layer weight matching is exact, so aligned_distance does
 * not move when the trained replicas are shuffled, and it never exceeds the
 * plain distance (the identity is a candidate). */
START_TEST(test_aligned_invariant_after_training)
{
    sl_dataset d = sl_test_toy_data(200, 4, 3, 8);
    sl_model *m = mlp(3);
    sl_record *base = probe_hooked(TRAINED ",independent_init=true", NULL, m, &d);
    sl_record *shuf =
        probe_hooked(TRAINED ",independent_init=true,shuffle_units=true", NULL, m, &d);
    double a = GET(base, "aligned_distance"), b = GET(shuf, "aligned_distance");
    ck_assert_msg(fabs(a - b) <= 1e-12, "aligned %.17g vs shuffled %.17g", a, b);
    ck_assert_msg(a > 1e-3, "independent replicas stay apart after alignment (%g)", a);
    ck_assert_msg(a <= GET(base, "distance") + 1e-15, "aligned %g > plain %g", a,
                  GET(base, "distance"));
    ck_assert_msg(GET(shuf, "distance") > a, "shuffled plain %g vs aligned %g",
                  GET(shuf, "distance"), a);
    sl_record_free(base);
    sl_record_free(shuf);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

static Suite *replicas_suite(void)
{
    Suite *s = suite_create("replicas");
    TCase *lib = tcase_create("library");
    tcase_add_test(lib, test_options_hooks);
    tcase_add_test(lib, test_dataset_head_x);
    tcase_add_test(lib, test_train_max_steps);
    suite_add_tcase(s, lib);
    TCase *probe = tcase_create("symmetry_breaking");
    tcase_set_timeout(probe, 60);
    tcase_add_test(probe, test_hooks_train_the_replicas);
    tcase_add_test(probe, test_init_and_trained);
    tcase_add_test(probe, test_aligned_zero_for_permuted_replicas);
    tcase_add_test(probe, test_aligned_invariant_after_training);
    suite_add_tcase(s, probe);
    return s;
}

int main(void) { return sl_test_run(replicas_suite()); }
