/* The training loop: learning, determinism, hook events, NaN handling and
 * the no-allocation-in-a-step rule. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* ---- counting allocations ------------------------------------------------- */
/* The test binary interposes the allocator (ELF symbol interposition reaches
 * libsymlab too) and counts calls while `counting` is set.  Sanitizer builds
 * bring their own allocator, so there the count is not taken.  The
 * interposers must be exported: the project compiles with
 * -fvisibility=hidden, which would otherwise keep libsymlab calling libc's
 * allocator and the count at zero whatever happens. */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCATIONS 0
#else
#define COUNT_ALLOCATIONS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static volatile int counting;
static volatile long allocations;
#define INTERPOSE __attribute__((visibility("default")))
INTERPOSE void *malloc(size_t n)
{
    allocations += counting;
    return __libc_malloc(n);
}
INTERPOSE void *calloc(size_t a, size_t b)
{
    allocations += counting;
    return __libc_calloc(a, b);
}
INTERPOSE void *realloc(void *p, size_t n)
{
    allocations += counting;
    return __libc_realloc(p, n);
}
INTERPOSE void *aligned_alloc(size_t al, size_t n)
{
    allocations += counting;
    return __libc_memalign(al, n);
}
#endif

/* ---- fixtures ------------------------------------------------------------- */

/* Two Gaussian blobs per class in 4-d, 3 classes: learnable to ~100%. */
static void make_blobs(sl_dataset *d, int64_t n, uint64_t seed)
{
    sl_rng r;
    sl_rng_seed(&r, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F32, 2, (int64_t[]){n, 4}));
    ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_I64, 1, (int64_t[]){n}));
    float *x = d->x.data;
    int64_t *y = d->y.data;
    for (int64_t i = 0; i < n; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 4; j++)
            x[i * 4 + j] = (float)(0.3 * sl_rng_normal(&r) + (j == y[i] ? 2.0 : 0.0));
    }
}

static sl_model *make_mlp(sl_dtype dt, uint64_t seed)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dt, &m));
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "in_features", 4);
    sl_options_set_int(o, "out_features", 16);
    ck_assert_sl_ok(sl_model_add(m, "linear", o));
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    sl_options_set_int(o, "in_features", 16);
    sl_options_set_int(o, "out_features", 3);
    ck_assert_sl_ok(sl_model_add(m, "linear", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

static sl_options *train_opts(int64_t epochs, int64_t batch, int64_t seed)
{
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "epochs", epochs);
    sl_options_set_int(o, "batch", batch);
    sl_options_set_int(o, "seed", seed);
    sl_options_set_string(o, "progress", "never");
    return o;
}

static sl_optim *make_sgd(sl_model *m, double lr)
{
    sl_options *o = sl_options_new();
    sl_options_set_float(o, "lr", lr);
    sl_options_set_float(o, "momentum", 0.9);
    sl_optim *opt;
    ck_assert_sl_ok(sl_optim_new("sgd", m, o, &opt));
    sl_options_free(o);
    return opt;
}

/* Trains a fresh model; returns it (caller frees) and fills history. */
static sl_model *train_once(sl_dtype dt, uint64_t seed, sl_history *h)
{
    sl_dataset d = {0};
    make_blobs(&d, 300, 5);
    sl_model *m = make_mlp(dt, seed);
    sl_optim *opt = make_sgd(m, 0.05);
    sl_options *o = train_opts(3, 32, (int64_t)seed);
    sl_train_args args = {.train = &d, .history = h};
    ck_assert_sl_ok(sl_train(m, opt, &args, o));
    sl_options_free(o);
    sl_optim_free(opt);
    sl_dataset_release(&d);
    return m;
}

START_TEST(training_learns_the_blobs)
{
    sl_history *h = sl_history_new();
    sl_model *m = train_once(SL_F32, 1, h);
    ck_assert_int_eq(sl_history_count(h), 3);
    double first, last, acc;
    ck_assert_sl_ok(sl_record_get(sl_history_row(h, 0), "loss", &first));
    ck_assert_sl_ok(sl_record_get(sl_history_row(h, 2), "loss", &last));
    ck_assert_sl_ok(sl_record_get(sl_history_row(h, 2), "accuracy", &acc));
    ck_assert_msg(last < 0.5 * first, "loss %g -> %g", first, last);
    ck_assert_double_gt(acc, 0.9);

    sl_dataset test = {0};
    make_blobs(&test, 90, 6);
    sl_record *r = sl_record_new();
    ck_assert_sl_ok(sl_evaluate(m, &test, "cross_entropy", 16, r));
    ck_assert_sl_ok(sl_record_get(r, "accuracy", &acc));
    ck_assert_double_gt(acc, 0.9);
    ck_assert(sl_model_training(m)); /* evaluate restores the mode */
    sl_record_free(r);
    sl_dataset_release(&test);
    sl_model_free(m);
    sl_history_free(h);
}
END_TEST

static void assert_same_params(sl_model *a, sl_model *b, bool same)
{
    const sl_tensor *pa = sl_model_flat_params(a), *pb = sl_model_flat_params(b);
    ck_assert_int_eq(sl_tensor_numel(pa), sl_tensor_numel(pb));
    bool equal = memcmp(pa->data, pb->data, sl_tensor_nbytes(pa)) == 0;
    ck_assert_msg(equal == same, same ? "runs differ" : "different seeds gave equal runs");
}

START_TEST(same_seed_is_bit_identical)
{
    for (int dt = SL_F32; dt <= SL_F64; dt++) {
        sl_model *a = train_once((sl_dtype)dt, 7, NULL);
        sl_model *b = train_once((sl_dtype)dt, 7, NULL);
        sl_model *c = train_once((sl_dtype)dt, 8, NULL);
        assert_same_params(a, b, true);
        assert_same_params(a, c, false);
        sl_model_free(a);
        sl_model_free(b);
        sl_model_free(c);
    }
}
END_TEST

/* ---- a hook that records the events it sees -------------------------------- */

static int event_counts[6];

static int recorder_create(sl_hook *h, const sl_options *opt)
{
    (void)h;
    (void)opt;
    memset(event_counts, 0, sizeof event_counts);
    return SL_OK;
}

static int recorder_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    (void)h;
    event_counts[ev]++;
    if (ev == SL_EV_STEP_BEGIN) {
        double g;
        ck_assert_sl_ok(sl_norm2(sl_model_flat_grads(ctx->model), &g));
        ck_assert_double_eq(g, 0.0); /* gradients are zero before forward */
        ck_assert_ptr_nonnull(ctx->x);
    }
    if (ev == SL_EV_AFTER_BACKWARD)
        return sl_record_set(ctx->metrics, "recorded_loss", ctx->loss_value);
    return SL_OK;
}

static const sl_hook_type recorder = {.name = "recorder",
                                      .summary = "test: counts events",
                                      .create = recorder_create,
                                      .on_event = recorder_event};
static const sl_hook_type *const test_hooks[] = {&recorder, NULL};
static const sl_plugin test_plugin = {SL_PLUGIN_HEADER, .name = "test", .version = "0",
                                      .summary = "test hooks", .hooks = test_hooks};

START_TEST(hooks_see_every_event_and_report_metrics)
{
    ck_assert_sl_ok(sl_plugin_register(&test_plugin, "check_train"));
    sl_hook *hook;
    ck_assert_sl_ok(sl_hook_new("recorder", NULL, &hook));
    sl_dataset d = {0};
    make_blobs(&d, 100, 1);
    sl_model *m = make_mlp(SL_F64, 1);
    sl_optim *opt = make_sgd(m, 0.01);
    sl_history *h = sl_history_new();
    sl_options *o = train_opts(2, 30, 1); /* 4 batches per epoch: 30, 30, 30, 10 */
    sl_train_args args = {.train = &d, .val = &d, .hooks = &hook, .nhooks = 1, .history = h};
    ck_assert_sl_ok(sl_train(m, opt, &args, o));
    ck_assert_int_eq(event_counts[SL_EV_TRAIN_BEGIN], 1);
    ck_assert_int_eq(event_counts[SL_EV_STEP_BEGIN], 8);
    ck_assert_int_eq(event_counts[SL_EV_AFTER_BACKWARD], 8);
    ck_assert_int_eq(event_counts[SL_EV_AFTER_STEP], 8);
    ck_assert_int_eq(event_counts[SL_EV_EPOCH_END], 2);
    ck_assert_int_eq(event_counts[SL_EV_TRAIN_END], 1);
    double v;
    ck_assert_sl_ok(sl_record_get(sl_history_row(h, 1), "recorded_loss", &v));
    ck_assert_sl_ok(sl_record_get(sl_history_row(h, 1), "val_accuracy", &v));
    ck_assert_int_eq(sl_optim_steps(opt), 8);
    sl_options_free(o);
    sl_history_free(h);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
    sl_hook_free(hook);
}
END_TEST

/* ---- backward stops at the first module with parameters ------------------- */

/* "spy": a parameterless identity that counts its backward calls, and those
 * that had to produce grad_in, in slot `id`. */
static int spy_calls[2], spy_grad_in[2];

static const sl_option_spec spy_options[] = {{"id", SL_OPT_INT, "0", "counter slot", NULL},
                                             {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static int spy_create(sl_module *m, const sl_options *opt)
{
    sl_module_set_state(m, &spy_calls[sl_options_int(opt, "id")]);
    return SL_OK;
}

static int spy_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    *out_ndim = ndim;
    memcpy(out, in, (size_t)ndim * sizeof *in);
    return SL_OK;
}

static int spy_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    return sl_tensor_copy(out, in);
}

static int spy_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                        const sl_tensor *grad_out, sl_tensor *grad_in)
{
    int id = (int)((int *)sl_module_state(m) - spy_calls);
    spy_calls[id]++;
    spy_grad_in[id] += grad_in != NULL;
    return grad_in ? sl_tensor_copy(grad_in, grad_out) : SL_OK;
}

static const sl_module_type spy = {.name = "spy",
                                   .summary = "test: identity that counts backward calls",
                                   .options = spy_options,
                                   .create = spy_create,
                                   .output_shape = spy_shape,
                                   .forward = spy_forward,
                                   .backward = spy_backward};
static const sl_module_type *const spy_modules[] = {&spy, NULL};
static const sl_plugin spy_plugin = {SL_PLUGIN_HEADER, .name = "spy", .version = "0",
                                     .summary = "test module", .modules = spy_modules};

/* linear 4 -> 16, relu, spy 1, linear 16 -> 3; behind spy 0 if `front`. */
static sl_model *spied_mlp(bool front)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *first = sl_test_options("id=0"), *second = sl_test_options("id=1");
    if (front)
        ck_assert_sl_ok(sl_model_add(m, "spy", first));
    sl_test_add_linear(m, 4, 16, true);
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    ck_assert_sl_ok(sl_model_add(m, "spy", second));
    sl_test_add_linear(m, 16, 3, true);
    sl_options_free(first);
    sl_options_free(second);
    ck_assert_sl_ok(sl_model_build(m, 3));
    return m;
}

START_TEST(backward_stops_at_the_first_module_with_parameters)
{
    if (!sl_registry_find(SL_KIND_MODULE, "spy"))
        ck_assert_sl_ok(sl_plugin_register(&spy_plugin, "check_train"));
    sl_dataset d = {0};
    make_blobs(&d, 8, 2);
    const sl_loss_type *ce = sl_registry_find(SL_KIND_LOSS, "cross_entropy");
    sl_model *plain = spied_mlp(false), *fronted = spied_mlp(true);
    sl_tensor x;
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, (int64_t[]){8, 4}));
    ck_assert_sl_ok(sl_tensor_copy(&x, &d.x));
    ck_assert_sl_ok(sl_tensor_copy(sl_model_flat_params(fronted), sl_model_flat_params(plain)));
    double lp, lf;
    memset(spy_calls, 0, sizeof spy_calls);
    memset(spy_grad_in, 0, sizeof spy_grad_in);
    sl_model_zero_grad(plain);
    sl_model_zero_grad(fronted);
    ck_assert_sl_ok(sl_model_loss(plain, ce, &x, &d.y, true, &lp));
    ck_assert_sl_ok(sl_model_loss(fronted, ce, &x, &d.y, true, &lf));
    /* The spy in front of every parameter is never asked for a gradient; the
     * one between the linear layers is, both times, with grad_in. */
    ck_assert_int_eq(spy_calls[0], 0);
    ck_assert_int_eq(spy_calls[1], 2);
    ck_assert_int_eq(spy_grad_in[1], 2);
    /* And the gradients are exactly those of the model without it. */
    ck_assert_double_eq(lp, lf);
    const sl_tensor *gp = sl_model_flat_grads(plain), *gf = sl_model_flat_grads(fronted);
    ck_assert_int_eq(sl_tensor_numel(gp), sl_tensor_numel(gf));
    ck_assert(memcmp(gp->data, gf->data, sl_tensor_nbytes(gp)) == 0);
    double norm;
    ck_assert_sl_ok(sl_norm2(gp, &norm));
    ck_assert_double_gt(norm, 0.0);
    sl_tensor_release(&x);
    sl_model_free(plain);
    sl_model_free(fronted);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(non_finite_loss_stops_training)
{
    sl_dataset d = {0};
    make_blobs(&d, 64, 1);
    ((float *)d.x.data)[4 * 40 + 1] = NAN; /* sample 40 is poisoned */
    sl_model *m = make_mlp(SL_F32, 1);      /* the NaN must pass through relu */
    sl_optim *opt = make_sgd(m, 0.01);
    sl_options *o = train_opts(1, 16, 1);
    sl_options_set_bool(o, "shuffle", false);
    sl_train_args args = {.train = &d};
    ck_assert_sl_fails(sl_train(m, opt, &args, o), SL_ENUMERIC, "at epoch 1, step 3");
    sl_options_free(o);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(bad_train_options_name_the_key)
{
    sl_dataset d = {0};
    make_blobs(&d, 10, 1);
    sl_model *m = make_mlp(SL_F32, 1);
    sl_optim *opt = make_sgd(m, 0.01);
    sl_train_args args = {.train = &d};
    sl_options *o = train_opts(1, 4, 1);
    sl_options_set_int(o, "epoch", 3);
    ck_assert_sl_fails(sl_train(m, opt, &args, o), SL_EINVAL, "train: unknown option 'epoch'");
    sl_options_free(o);
    o = train_opts(1, 4, 1);
    sl_options_set_string(o, "loss", "hinge");
    ck_assert_sl_fails(sl_train(m, opt, &args, o), SL_ENOTFOUND, "no loss type 'hinge'");
    sl_options_free(o);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(steady_state_step_does_not_allocate)
{
#if COUNT_ALLOCATIONS
    sl_dataset d = {0};
    make_blobs(&d, 64, 1);
    sl_model *m = make_mlp(SL_F32, 1);
    sl_optim *opt = make_sgd(m, 0.01);
    const sl_loss_type *ce = sl_registry_find(SL_KIND_LOSS, "cross_entropy");
    sl_batcher *b;
    ck_assert_sl_ok(sl_batcher_new(&d, 16, SL_F32, true, 1, false, &b));
    const sl_tensor *x, *y;
    double loss;
    /* The first epoch grows every buffer; the second must not allocate.
     * (No Check assertion inside: Check itself allocates to record them.) */
    int rc = SL_OK;
    for (int epoch = 0; epoch < 2 && rc >= 0; epoch++) {
        counting = epoch == 1;
        sl_batcher_begin_epoch(b, epoch);
        while (rc >= 0 && sl_batcher_next(b, &x, &y) > 0) {
            rc = sl_model_loss(m, ce, x, y, true, &loss);
            if (rc >= 0)
                rc = sl_optim_step(opt);
        }
        counting = 0;
    }
    ck_assert_sl_ok(rc);
    ck_assert_int_eq(allocations, 0);
    sl_batcher_free(b);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
#else
    printf("steady_state_step_does_not_allocate: skipped under sanitizers\n");
#endif
}
END_TEST

START_TEST(clone_copies_architecture_and_state)
{
    sl_model *m = make_mlp(SL_F32, 3), *c;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &c));
    ck_assert_int_eq(sl_model_nmodules(c), 3);
    ck_assert_int_eq(sl_model_numel(c), sl_model_numel(m));
    for (int64_t i = 0; i < sl_model_numel(m); i++)
        ck_assert_double_eq(sl_tensor_flat_get(sl_model_flat_params(c), i),
                            sl_tensor_flat_get(sl_model_flat_params(m), i));
    /* Same function: forwards agree to f32 rounding; hidden activations are
     * visible after a forward. */
    sl_dataset d = {0};
    make_blobs(&d, 8, 2);
    sl_tensor x64;
    ck_assert_sl_ok(sl_tensor_alloc(&x64, SL_F64, 2, d.x.shape));
    ck_assert_sl_ok(sl_tensor_copy(&x64, &d.x));
    ck_assert_ptr_null(sl_model_activation(m, 1));
    const sl_tensor *ym, *yc;
    ck_assert_sl_ok(sl_model_forward(m, &d.x, &ym));
    ck_assert_sl_ok(sl_model_forward(c, &x64, &yc));
    for (int64_t i = 0; i < sl_tensor_numel(ym); i++)
        ck_assert_double_eq_tol(sl_tensor_flat_get(ym, i), sl_tensor_flat_get(yc, i), 1e-5);
    const sl_tensor *hidden = sl_model_activation(m, 1);
    ck_assert_ptr_nonnull(hidden);
    ck_assert_int_eq(hidden->shape[1], 16);
    /* copy_state overwrites; a different architecture is refused. */
    ck_assert_sl_ok(sl_model_reset_parameters(c, 99));
    ck_assert_sl_ok(sl_model_copy_state(c, m));
    ck_assert_double_eq(sl_tensor_flat_get(sl_model_flat_params(c), 5),
                        sl_tensor_flat_get(sl_model_flat_params(m), 5));
    sl_model *other;
    ck_assert_sl_ok(sl_model_new(SL_F32, &other));
    ck_assert_sl_ok(sl_model_add(other, "relu", NULL));
    ck_assert_sl_ok(sl_model_build(other, 1));
    ck_assert_sl_fails(sl_model_copy_state(other, m), SL_ESHAPE, "0 parameter against 4");
    sl_model_free(other);
    sl_tensor_release(&x64);
    sl_dataset_release(&d);
    sl_model_free(c);
    sl_model_free(m);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, training_learns_the_blobs);
    tcase_add_test(tc, same_seed_is_bit_identical);
    tcase_add_test(tc, hooks_see_every_event_and_report_metrics);
    tcase_add_test(tc, backward_stops_at_the_first_module_with_parameters);
    tcase_add_test(tc, non_finite_loss_stops_training);
    tcase_add_test(tc, bad_train_options_name_the_key);
    tcase_add_test(tc, steady_state_step_does_not_allocate);
    tcase_add_test(tc, clone_copies_architecture_and_state);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(train_suite()); }
