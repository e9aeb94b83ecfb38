/* tests/check_fused.c — the update fused into backward (train.c): the same
 * parameters and optimizer state, bit for bit, as the separate step, for
 * every built-in optimizer, f32 and f64, with weight decay and a per-step
 * schedule, through a container; fusion happens only when every hook
 * declares SL_HOOK_NO_GRADIENT_AFTER_BACKWARD; and a fused run at two
 * threads repeats itself bit for bit. */
#include "config.h"

#include "testutil.h"

/* ---- hooks that look at the parameters at AFTER_BACKWARD ------------------ */

/* Counts the steps at whose AFTER_BACKWARD the parameters already differ
 * from STEP_BEGIN's (that is, the update ran inside backward). */
typedef struct watch {
    double before[4096];
    int changed, steps;
} watch;

static watch watched;

static int watch_create(sl_hook *h, const sl_options *opt)
{
    (void)h, (void)opt;
    return SL_OK;
}

static int watch_event(sl_hook *h, sl_event ev, sl_train_ctx *ctx)
{
    (void)h;
    const sl_tensor *p = sl_model_flat_params(ctx->model);
    int64_t n = sl_tensor_numel(p);
    if (n > 4096)
        return sl_error(SL_EINVAL, "watch: model too large");
    if (ev == SL_EV_STEP_BEGIN)
        for (int64_t i = 0; i < n; i++)
            watched.before[i] = sl_tensor_flat_get(p, i);
    if (ev == SL_EV_AFTER_BACKWARD) {
        bool same = true;
        for (int64_t i = 0; i < n; i++)
            same = same && watched.before[i] == sl_tensor_flat_get(p, i);
        watched.changed += !same;
        watched.steps++;
    }
    return SL_OK;
}

/* "peek" promises nothing (it reads the parameters at AFTER_BACKWARD);
 * "blind" declares that it does not (a test of the declaration only: it
 * reads them anyway, to see whether the update already happened). */
static const sl_hook_type peek = {.name = "peek",
                                  .summary = "test: reads parameters after backward",
                                  .create = watch_create,
                                  .on_event = watch_event};
static const sl_hook_type blind = {.name = "blind",
                                   .summary = "test: declares it needs no gradients",
                                   .create = watch_create,
                                   .on_event = watch_event,
                                   .flags = SL_HOOK_NO_GRADIENT_AFTER_BACKWARD};
static const sl_hook_type *const hooks[] = {&peek, &blind, NULL};
static const sl_plugin plugin = {SL_PLUGIN_HEADER, .name = "fused_test", .version = "0",
                                 .summary = "test hooks", .hooks = hooks};

/* ---- fixtures ------------------------------------------------------------- */

static const char *const optimizers[][2] = {
    {"sgd", "lr=0.05"},
    {"sgd", "lr=0.05,momentum=0.9,weight_decay=0.01"},
    {"sgd", "lr=0.05,momentum=0.9,nesterov=true,weight_decay=0.001"},
    {"sgd", "lr=0.05,momentum=0.8,dampening=0.3"},
    {"adam", "lr=0.01,weight_decay=0.01"},
    {"adam", "lr=0.01,amsgrad=true"},
    {"adamw", "lr=0.01,weight_decay=0.1"},
    {"adagrad", "lr=0.05,lr_decay=0.01,weight_decay=0.01"},
    {"rmsprop", "lr=0.01,weight_decay=0.01"},
    {"rmsprop", "lr=0.01,momentum=0.9,centered=true"},
};
#define NOPT ((int)(sizeof optimizers / sizeof optimizers[0]))

/* 120 samples of 6 features, 3 classes. */
static void make_data(sl_dataset *d)
{
    sl_rng r;
    sl_rng_seed(&r, 11);
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F32, 2, SHAPE(120, 6)));
    ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_I64, 1, SHAPE(120)));
    float *x = d->x.data;
    int64_t *y = d->y.data;
    for (int64_t i = 0; i < 120; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 6; j++)
            x[i * 6 + j] = (float)(0.5 * sl_rng_normal(&r) + (j == y[i] ? 1.5 : 0.0));
    }
}

static void add(sl_model *m, const char *type, const char *text)
{
    sl_options *o = sl_test_options(text);
    ck_assert_sl_ok(sl_model_add(m, type, o));
    sl_options_free(o);
}

/* linear - tanh - residual{linear, relu, linear} - linear - identity:
 * a container's parameters are updated after the whole block, and a
 * parameter-free module sits at either end of a weight layer. */
static sl_model *make_model(sl_dtype dt)
{
    ck_assert_sl_ok(sl_registry_init());
    if (!sl_registry_find(SL_KIND_HOOK, "peek"))
        ck_assert_sl_ok(sl_plugin_register(&plugin, "check_fused"));
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dt, &m));
    add(m, "linear", "in_features=6,out_features=12");
    add(m, "tanh", NULL);
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    add(m, "linear", "in_features=12,out_features=12");
    add(m, "relu", NULL);
    add(m, "linear", "in_features=12,out_features=12,bias=false");
    ck_assert_sl_ok(sl_model_end(m));
    add(m, "linear", "in_features=12,out_features=3");
    add(m, "identity", NULL);
    ck_assert_sl_ok(sl_model_build(m, 5));
    return m;
}

typedef struct outcome {
    sl_model *model;
    sl_optim *optim;
} outcome;

/* Trains a fresh model for 3 epochs (batch 25, so a short last batch) with
 * optimizer k, a per-step cosine schedule, and `hook` ("" for none). */
static outcome train(sl_dtype dt, int k, bool fuse, const char *hook, int threads)
{
    sl_set_threads(threads);
    sl_dataset d = {0};
    make_data(&d);
    outcome r = {.model = make_model(dt)};
    sl_options *o = sl_test_options(optimizers[k][1]);
    ck_assert_sl_ok(sl_optim_new(optimizers[k][0], r.model, o, &r.optim));
    sl_options_free(o);
    sl_schedule *sch;
    o = sl_test_options("t_max=10,eta_min=0.001,interval=step");
    ck_assert_sl_ok(sl_schedule_new("cosine", o, NULL, &sch));
    sl_options_free(o);
    sl_hook *h = NULL;
    if (*hook)
        ck_assert_sl_ok(sl_hook_new(hook, NULL, &h));
    sl_train_args args = {.train = &d, .schedule = sch, .hooks = &h, .nhooks = h ? 1 : 0};
    o = sl_test_options("epochs=3,batch=25,seed=4");
    ck_assert_sl_ok(sl_options_set_bool(o, "fuse_update", fuse));
    ck_assert_sl_ok(sl_train(r.model, r.optim, &args, o));
    sl_options_free(o);
    sl_hook_free(h);
    sl_schedule_free(sch);
    sl_dataset_release(&d);
    sl_set_threads(1);
    return r;
}

static void release(outcome *r)
{
    sl_optim_free(r->optim);
    sl_model_free(r->model);
}

/* Parameters, step counts and every optimizer state tensor equal bit for
 * bit. */
static void assert_same(const outcome *a, const outcome *b, const char *what)
{
    const sl_tensor *pa = sl_model_flat_params(a->model), *pb = sl_model_flat_params(b->model);
    ck_assert_msg(memcmp(pa->data, pb->data, sl_tensor_nbytes(pa)) == 0,
                  "%s: parameters differ", what);
    ck_assert_int_eq(sl_optim_steps(a->optim), sl_optim_steps(b->optim));
    for (int i = 0;; i++) {
        const char *na, *nb;
        sl_tensor va, vb;
        int ra = sl_optim_state_tensor(a->optim, i, &na, &va);
        int rb = sl_optim_state_tensor(b->optim, i, &nb, &vb);
        ck_assert_int_eq(ra, rb);
        if (ra <= 0)
            break;
        ck_assert_msg(memcmp(va.data, vb.data, sl_tensor_nbytes(&va)) == 0,
                      "%s: optimizer state '%s' differs", what, na);
        sl_tensor_release(&va);
        sl_tensor_release(&vb);
    }
}

/* ---- tests ---------------------------------------------------------------- */

static void fused_equals_separate(sl_dtype dt, int k)
{
    char what[128];
    snprintf(what, sizeof what, "%s %s %s", sl_dtype_name(dt), optimizers[k][0],
             optimizers[k][1]);
    outcome sep = train(dt, k, false, "", 1);
    outcome fus = train(dt, k, true, "", 1);
    assert_same(&sep, &fus, what);
    /* The run moved: a test that could not fail would prove nothing. */
    sl_model *init = make_model(dt);
    const sl_tensor *p0 = sl_model_flat_params(init), *p1 = sl_model_flat_params(sep.model);
    ck_assert_msg(memcmp(p0->data, p1->data, sl_tensor_nbytes(p0)) != 0, "%s: no update", what);
    sl_model_free(init);
    release(&sep);
    release(&fus);
}

START_TEST(test_fused_f32) { fused_equals_separate(SL_F32, _i); }
END_TEST

START_TEST(test_fused_f64) { fused_equals_separate(SL_F64, _i); }
END_TEST

/* A hook that does not declare the flag sees the parameters of before the
 * update at AFTER_BACKWARD at every step; one that declares it sees them
 * updated (the update ran inside backward); both end where the separate
 * step ends. */
START_TEST(test_hooks_decide)
{
    for (int k = 0; k < NOPT; k += 4) {
        outcome sep = train(SL_F32, k, false, "", 1);
        watched = (watch){0};
        outcome a = train(SL_F32, k, true, "peek", 1);
        ck_assert_int_eq(watched.steps, 15);
        ck_assert_int_eq(watched.changed, 0);
        assert_same(&sep, &a, "with a hook that reads gradients");
        watched = (watch){0};
        outcome b = train(SL_F32, k, true, "blind", 1);
        ck_assert_int_eq(watched.steps, 15);
        ck_assert_int_eq(watched.changed, 15);
        assert_same(&sep, &b, "with a hook that declares it does not");
        /* fuse_update = false: the declaration alone does not fuse. */
        watched = (watch){0};
        outcome c = train(SL_F32, k, false, "blind", 1);
        ck_assert_int_eq(watched.changed, 0);
        release(&sep), release(&a), release(&b), release(&c);
    }
}
END_TEST

/* Two threads: a fused run repeats itself bit for bit, and matches the
 * separate step at two threads. */
START_TEST(test_two_threads)
{
    for (int k = 0; k < NOPT; k += 3) {
        outcome a = train(SL_F32, k, true, "", 2);
        outcome b = train(SL_F32, k, true, "", 2);
        outcome c = train(SL_F32, k, false, "", 2);
        assert_same(&a, &b, "fused, two threads, twice");
        assert_same(&a, &c, "fused and separate, two threads");
        release(&a), release(&b), release(&c);
    }
}
END_TEST

static Suite *fused_suite(void)
{
    Suite *s = suite_create("fused");
    TCase *tc = tcase_create("update");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_fused_f32, 0, NOPT);
    tcase_add_loop_test(tc, test_fused_f64, 0, NOPT);
    tcase_add_test(tc, test_hooks_decide);
    tcase_add_test(tc, test_two_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(fused_suite()); }
