/* The training loop: learning, determinism, hook events, NaN handling, the
 * no-allocation-in-a-step rule, the per-step callback and step rows,
 * schedules in training and early stopping. */
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

#if COUNT_ALLOCATIONS
/* 4 -> 16, residual { linear, relu, linear }, relu, residual { linear 16 -> 8
 * | shortcut linear 16 -> 8, layernorm }, 8 -> 3: containers on every path.
 * (Only the allocation count uses it, which sanitizer builds leave out.) */
static sl_model *make_residual_mlp(sl_dtype dt, uint64_t seed)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dt, &m));
    sl_test_add_linear(m, 4, 16, true);
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    sl_test_add_linear(m, 16, 16, true);
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    sl_test_add_linear(m, 16, 16, false);
    ck_assert_sl_ok(sl_model_end(m));
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    sl_test_add_linear(m, 16, 8, true);
    ck_assert_sl_ok(sl_model_branch(m, "shortcut"));
    sl_test_add_linear(m, 16, 8, true);
    sl_options *o = sl_test_options("features=8");
    ck_assert_sl_ok(sl_model_add(m, "layernorm", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_end(m));
    sl_test_add_linear(m, 8, 3, true);
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}
#endif

#if COUNT_ALLOCATIONS
/* relaxed_gconv (C_4, 1 -> 3 regular channels), relu, gconv to 3 invariant
 * channels, then relaxed in residual form: both layers train beside their
 * dense parts (plugins/equivariant, sl_model_relax). */
static sl_model *make_relaxed_equivariant(uint64_t seed)
{
    sl_model *m, *r;
    ck_assert_sl_ok(sl_model_new(SL_F32, &m));
    sl_options *o = sl_test_options("group=4,in_channels=1,out_channels=3,mix_init=random");
    ck_assert_sl_ok(sl_model_add(m, "relaxed_gconv", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    o = sl_test_options("group=4,in_channels=3,out_channels=3,out_rep=trivial");
    ck_assert_sl_ok(sl_model_add(m, "gconv", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_build(m, seed));
    sl_relax_options ro = {.residual = true, .ndim = 2, .shape = {1, 4}};
    ck_assert_sl_ok(sl_model_relax(m, &ro, &r));
    sl_model_free(m);
    return r;
}
#endif

static sl_options *train_opts(int64_t epochs, int64_t batch, int64_t seed)
{
    sl_options *o = sl_options_new();
    sl_options_set_int(o, "epochs", epochs);
    sl_options_set_int(o, "batch", batch);
    sl_options_set_int(o, "seed", seed);
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

/* _i: 0 the MLP, 1 a model with residual blocks (their branches plan and
 * keep buffers of their own), 2 equivariant layers relaxed in residual form. */
START_TEST(steady_state_step_does_not_allocate)
{
#if COUNT_ALLOCATIONS
    sl_dataset d = {0};
    make_blobs(&d, 64, 1);
    sl_model *m = _i == 0   ? make_mlp(SL_F32, 1)
                  : _i == 1 ? make_residual_mlp(SL_F32, 1)
                            : make_relaxed_equivariant(1);
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


/* ---- the per-step callback and step rows ----------------------------------- */

/* "scripted": reports "score" = scores[epoch] at EPOCH_END (for early
 * stopping) and "odd_step" = step number on odd-numbered steps only. */
static double scores[8];

static int scripted_create(sl_hook *h, const sl_options *opt)
{
    (void)h;
    (void)opt;
    return SL_OK;
}

static int scripted_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    (void)h;
    if (ev == SL_EV_EPOCH_END)
        return sl_record_set(ctx->metrics, "score", scores[ctx->epoch]);
    if (ev == SL_EV_AFTER_STEP && (ctx->step + 1) % 2 == 1)
        return sl_record_set(ctx->metrics, "odd_step", (double)(ctx->step + 1));
    return SL_OK;
}

static const sl_hook_type scripted = {.name = "scripted",
                                      .summary = "test: scripted metrics",
                                      .create = scripted_create,
                                      .on_event = scripted_event};
static const sl_hook_type *const scripted_hooks[] = {&scripted, NULL};
static const sl_plugin scripted_plugin = {SL_PLUGIN_HEADER, .name = "scripted", .version = "0",
                                          .summary = "test hooks", .hooks = scripted_hooks};

static sl_hook *scripted_hook(void)
{
    if (!sl_registry_find(SL_KIND_HOOK, "scripted"))
        ck_assert_sl_ok(sl_plugin_register(&scripted_plugin, "check_train"));
    sl_hook *h;
    ck_assert_sl_ok(sl_hook_new("scripted", NULL, &h));
    return h;
}

/* What on_step saw: one entry per step. */
typedef struct seen_steps {
    int n;
    int64_t step[64], epoch[64], batch[64], batches[64];
    double loss[64], lr[64], epoch_loss[64], odd[64];
    sl_model *model;
    double params[8][256]; /* flat parameters after each epoch (on_epoch) */
    int epochs_seen;
} seen_steps;

static int see_step(void *userdata, const sl_step_info *info)
{
    seen_steps *s = userdata;
    if (s->n == 64)
        return sl_error(SL_EINVAL, "too many steps");
    int i = s->n++;
    s->step[i] = info->step;
    s->epoch[i] = info->epoch;
    s->batch[i] = info->batch;
    s->batches[i] = info->batches;
    s->loss[i] = info->loss;
    s->lr[i] = info->lr;
    s->epoch_loss[i] = info->epoch_loss;
    s->odd[i] = NAN;
    (void)sl_record_get(info->row, "odd_step", &s->odd[i]);
    return SL_OK;
}

static int see_epoch(void *userdata, const sl_record *row)
{
    (void)row;
    seen_steps *s = userdata;
    const sl_tensor *p = sl_model_flat_params(s->model);
    if (s->epochs_seen == 8 || sl_tensor_numel(p) > 256)
        return sl_error(SL_EINVAL, "test buffer too small");
    memcpy(s->params[s->epochs_seen++], p->data, sl_tensor_nbytes(p));
    return SL_OK;
}

/* Trains make_mlp(f64, 3) on 100 blobs in batches of 30 (4 steps per
 * epoch) with the scripted hook. */
static sl_model *train_scripted(sl_train_args *args, int64_t epochs, int64_t record_steps)
{
    sl_dataset *d = calloc(1, sizeof *d);
    make_blobs(d, 100, 1);
    sl_model *m = make_mlp(SL_F64, 3);
    sl_optim *opt = make_sgd(m, 0.05);
    sl_hook *hook = scripted_hook();
    sl_options *o = train_opts(epochs, 30, 1);
    sl_options_set_int(o, "record_steps", record_steps);
    if (args->userdata)
        ((seen_steps *)args->userdata)->model = m;
    args->train = d;
    args->hooks = &hook;
    args->nhooks = 1;
    ck_assert_sl_ok(sl_train(m, opt, args, o));
    sl_options_free(o);
    sl_hook_free(hook);
    sl_optim_free(opt);
    sl_dataset_release(d);
    free(d);
    return m;
}

START_TEST(on_step_sees_every_step_and_changes_nothing)
{
    sl_train_args plain = {0};
    sl_model *a = train_scripted(&plain, 2, 0);
    seen_steps seen = {0};
    sl_history *h = sl_history_new();
    sl_train_args args = {.on_step = see_step, .userdata = &seen, .history = h};
    sl_model *b = train_scripted(&args, 2, 1);
    assert_same_params(a, b, true); /* watching and recording change no bit */
    ck_assert_int_eq(seen.n, 8);
    ck_assert_int_eq(sl_history_step_count(h), 8);
    sl_record *row = sl_record_new();
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(seen.step[i], i + 1);
        ck_assert_int_eq(seen.epoch[i], i / 4 + 1);
        ck_assert_int_eq(seen.batch[i], i % 4 + 1);
        ck_assert_int_eq(seen.batches[i], 4);
        ck_assert_double_eq(seen.lr[i], 0.05);
        /* A metric set on odd steps only is NaN in the even steps' rows. */
        if ((i + 1) % 2)
            ck_assert_double_eq(seen.odd[i], i + 1);
        else
            ck_assert(isnan(seen.odd[i]));
        double v;
        ck_assert_sl_ok(sl_history_step_row(h, i, row));
        ck_assert_sl_ok(sl_record_get(row, "step", &v));
        ck_assert_double_eq(v, i + 1);
        ck_assert_sl_ok(sl_record_get(row, "epoch", &v));
        ck_assert_double_eq(v, i / 4 + 1);
        ck_assert_sl_ok(sl_record_get(row, "loss", &v));
        ck_assert_double_eq(v, seen.loss[i]);
        ck_assert_sl_ok(sl_record_get(row, "lr", &v));
        ck_assert_double_eq(v, 0.05);
        ck_assert_int_eq(sl_record_get(row, "odd_step", &v) == SL_OK, (i + 1) % 2);
    }
    /* The running epoch loss at an epoch's last step is the epoch row's loss. */
    for (int e = 0; e < 2; e++) {
        double loss;
        ck_assert_sl_ok(sl_record_get(sl_history_row(h, e), "loss", &loss));
        ck_assert_double_eq(seen.epoch_loss[4 * e + 3], loss);
    }
    ck_assert_sl_fails(sl_history_step_row(h, 8, row), SL_EINVAL, "no step row 8");
    sl_record_free(row);
    sl_history_free(h);
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

START_TEST(record_steps_keeps_every_nth_step)
{
    sl_history *h = sl_history_new();
    sl_train_args args = {.history = h};
    sl_model_free(train_scripted(&args, 2, 3)); /* 8 steps: rows for steps 3 and 6 */
    ck_assert_int_eq(sl_history_step_count(h), 2);
    sl_record *row = sl_record_new();
    double v;
    ck_assert_sl_ok(sl_history_step_row(h, 1, row));
    ck_assert_sl_ok(sl_record_get(row, "step", &v));
    ck_assert_double_eq(v, 6);
    /* A second run appends to the same history. */
    sl_model_free(train_scripted(&args, 1, 1));
    ck_assert_int_eq(sl_history_step_count(h), 6);
    ck_assert_sl_ok(sl_history_step_row(h, 5, row));
    ck_assert_sl_ok(sl_record_get(row, "step", &v));
    ck_assert_double_eq(v, 4);
    sl_record_free(row);
    sl_history_free(h);

    sl_dataset d = {0};
    make_blobs(&d, 10, 1);
    sl_model *m = make_mlp(SL_F32, 1);
    sl_optim *opt = make_sgd(m, 0.01);
    sl_train_args bad = {.train = &d};
    sl_options *o = train_opts(1, 4, 1);
    sl_options_set_int(o, "record_steps", -1);
    ck_assert_sl_fails(sl_train(m, opt, &bad, o), SL_EINVAL, "record_steps must be >= 0");
    sl_options_free(o);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
}
END_TEST

#if COUNT_ALLOCATIONS
/* on_step that counts allocations during the second epoch's steps. */
static int count_second_epoch(void *userdata, const sl_step_info *info)
{
    (void)userdata;
    counting = info->epoch == 2 && info->batch < info->batches;
    return SL_OK;
}
#endif

/* Without hooks the update is fused into backward (train.c): that path
 * must not allocate either. */
START_TEST(fused_training_step_does_not_allocate)
{
#if COUNT_ALLOCATIONS
    sl_dataset d = {0};
    make_blobs(&d, 100, 1);
    sl_model *m = make_mlp(SL_F32, 3);
    sl_optim *opt = make_sgd(m, 0.05);
    sl_options *o = train_opts(3, 30, 1);
    sl_train_args args = {.train = &d, .on_step = count_second_epoch};
    allocations = 0;
    ck_assert_sl_ok(sl_train(m, opt, &args, o));
    counting = 0;
    ck_assert_int_eq(allocations, 0);
    ck_assert_int_eq(sl_optim_steps(opt), 12);
    sl_options_free(o);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
#else
    printf("fused_training_step_does_not_allocate: skipped under sanitizers\n");
#endif
}
END_TEST

START_TEST(observed_training_step_does_not_allocate)
{
#if COUNT_ALLOCATIONS
    sl_history *h = sl_history_new();
    sl_train_args args = {.on_step = count_second_epoch, .history = h};
    allocations = 0;
    sl_model_free(train_scripted(&args, 3, 1)); /* a hook metric, step rows, on_step */
    counting = 0;
    ck_assert_int_eq(allocations, 0);
    ck_assert_int_eq(sl_history_step_count(h), 12);
    sl_history_free(h);
#else
    printf("observed_training_step_does_not_allocate: skipped under sanitizers\n");
#endif
}
END_TEST

/* ---- schedules in training ------------------------------------------------- */

START_TEST(schedules_set_the_rate_per_step_or_per_epoch)
{
    sl_schedule *per_step, *per_epoch;
    sl_options *o = sl_test_options("step_size=3,gamma=0.5,interval=step");
    ck_assert_sl_ok(sl_schedule_new("step", o, NULL, &per_step));
    sl_options_free(o);
    o = sl_test_options("t_max=2,eta_min=0.01");
    ck_assert_sl_ok(sl_schedule_new("cosine", o, NULL, &per_epoch));
    sl_options_free(o);

    seen_steps seen = {0};
    sl_train_args args = {.on_step = see_step, .userdata = &seen, .schedule = per_step};
    sl_model_free(train_scripted(&args, 2, 0));
    double lr = 0.05;
    for (int i = 0; i < 8; i++) {
        ck_assert_double_eq(seen.lr[i], lr);
        if ((i + 1) % 3 == 0)
            lr *= 0.5;
    }
    ck_assert_int_eq(sl_schedule_count(per_step), 8);

    memset(&seen, 0, sizeof seen);
    args.schedule = per_epoch;
    sl_model_free(train_scripted(&args, 3, 0));
    for (int i = 0; i < 12; i++) {
        double t = (double)(i / 4), want = t >= 2 ? 0.01
                                                  : 0.01 + 0.04 * (1 + cos(M_PI * t / 2)) / 2;
        ck_assert_double_eq_tol(seen.lr[i], want, 1e-16);
    }
    ck_assert_int_eq(sl_schedule_count(per_epoch), 3);
    sl_schedule_free(per_step);
    sl_schedule_free(per_epoch);
}
END_TEST

/* ---- early stopping -------------------------------------------------------- */

/* Trains with the scripted hook reporting `s` as "score" (n epochs at most)
 * and early stopping `es`; fills seen and returns the model. */
static sl_model *stop_early(const double *s, int n, const char *es, sl_history *h,
                            seen_steps *seen)
{
    memset(scores, 0, sizeof scores);
    memcpy(scores, s, (size_t)n * sizeof *s);
    memset(seen, 0, sizeof *seen);
    sl_options *o = sl_test_options(es);
    sl_train_args args = {.on_epoch = see_epoch, .userdata = seen, .history = h,
                          .early_stop = o};
    sl_model *m = train_scripted(&args, n, 0);
    sl_options_free(o);
    return m;
}

static void assert_params_are(sl_model *m, const double *want)
{
    const sl_tensor *p = sl_model_flat_params(m);
    ck_assert(memcmp(p->data, want, sl_tensor_nbytes(p)) == 0);
}

START_TEST(early_stopping_stops_and_restores_the_best)
{
    const double s[] = {5, 3, 4, 3.5, 2, 1};
    sl_history *h = sl_history_new();
    seen_steps seen = {0};
    sl_model *m = stop_early(s, 6, "metric=score,mode=min,patience=2,restore_best=true", h,
                             &seen);
    ck_assert_int_eq(sl_history_count(h), 4); /* epochs 3 and 4 did not improve on 3 */
    ck_assert_int_eq(sl_history_best_epoch(h), 2);
    ck_assert_int_eq(sl_history_stopped_epoch(h), 4);
    ck_assert_int_eq(seen.epochs_seen, 4);
    assert_params_are(m, seen.params[1]); /* epoch 2's parameters are back */
    ck_assert(memcmp(seen.params[1], seen.params[3], sizeof seen.params[1]) != 0);
    sl_model_free(m);
    sl_history_free(h);

    /* Without restore_best the last epoch's parameters stay. */
    h = sl_history_new();
    m = stop_early(s, 6, "metric=score,patience=2", h, &seen);
    ck_assert_int_eq(sl_history_stopped_epoch(h), 4);
    assert_params_are(m, seen.params[3]);
    sl_model_free(m);
    sl_history_free(h);
}
END_TEST

START_TEST(early_stopping_modes_and_min_delta)
{
    sl_history *h = sl_history_new();
    seen_steps seen = {0};
    /* min_delta: 4.95 and 4.9 are not better than 5 by more than 0.1. */
    const double small[] = {5, 4.95, 4.9, 1};
    sl_model_free(stop_early(small, 4, "metric=score,patience=2,min_delta=0.1", h, &seen));
    ck_assert_int_eq(sl_history_best_epoch(h), 1);
    ck_assert_int_eq(sl_history_stopped_epoch(h), 3);
    /* mode=max: higher is better. */
    const double up[] = {1, 2, 1.5, 1.5, 3};
    sl_model_free(stop_early(up, 5, "metric=score,mode=max,patience=2", h, &seen));
    ck_assert_int_eq(sl_history_best_epoch(h), 2);
    ck_assert_int_eq(sl_history_stopped_epoch(h), 4);
    /* Never stopping: all epochs run, stopped_epoch stays 0. */
    const double down[] = {3, 2, 1};
    sl_model_free(stop_early(down, 3, "metric=score,patience=1", h, &seen));
    ck_assert_int_eq(sl_history_best_epoch(h), 3);
    ck_assert_int_eq(sl_history_stopped_epoch(h), 0);
    sl_history_free(h);

    /* A metric the rows do not have, and bad options, are refused. */
    sl_dataset d = {0};
    make_blobs(&d, 10, 1);
    sl_model *m = make_mlp(SL_F32, 1);
    sl_optim *opt = make_sgd(m, 0.01);
    sl_options *o = train_opts(1, 4, 1), *es = sl_test_options("patience=1");
    sl_train_args args = {.train = &d, .early_stop = es};
    ck_assert_sl_fails(sl_train(m, opt, &args, o), SL_EINVAL,
                       "metric 'val_loss' is not in the epoch's history row");
    sl_options_free(es);
    args.early_stop = es = sl_test_options("patience=0");
    ck_assert_sl_fails(sl_train(m, opt, &args, o), SL_EINVAL, "patience must be >= 1");
    sl_options_free(es);
    args.early_stop = es = sl_test_options("wait=3");
    ck_assert_sl_fails(sl_train(m, opt, &args, o), SL_EINVAL, "early_stop: unknown option 'wait'");
    sl_options_free(es);
    sl_options_free(o);
    sl_optim_free(opt);
    sl_model_free(m);
    sl_dataset_release(&d);
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
    tcase_add_loop_test(tc, steady_state_step_does_not_allocate, 0, 3);
    tcase_add_test(tc, clone_copies_architecture_and_state);
    tcase_add_test(tc, on_step_sees_every_step_and_changes_nothing);
    tcase_add_test(tc, record_steps_keeps_every_nth_step);
    tcase_add_test(tc, observed_training_step_does_not_allocate);
    tcase_add_test(tc, fused_training_step_does_not_allocate);
    tcase_add_test(tc, schedules_set_the_rate_per_step_or_per_epoch);
    tcase_add_test(tc, early_stopping_stops_and_restores_the_best);
    tcase_add_test(tc, early_stopping_modes_and_min_delta);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(train_suite()); }
