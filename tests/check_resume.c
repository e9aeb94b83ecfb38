/* Training checkpoints and exact resume: a child process killed with
 * SIGKILL after writing a checkpoint, resumed, ends bit-identical to an
 * uninterrupted run (every built-in optimizer, with dropout noise and a
 * per-step schedule); chained sl_train calls with start_epoch equal one
 * call; damaged and mismatched checkpoints are refused with a one-line
 * error and change nothing; an optimizer type that cannot expose its state
 * is refused, also when an old plugin's descriptor has the field. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* ---- fixtures ------------------------------------------------------------- */

static char dir[64];
static const char *const files[] = {"run.ckpt", "other.ckpt", "bad.ckpt"};

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_resume.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(sl_test_path(dir, files[i]));
    rmdir(dir);
}

/* 90 samples, 4 features, 3 classes. */
static void make_data(sl_dataset *d)
{
    sl_rng r;
    sl_rng_seed(&r, 11);
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F32, 2, SHAPE(90, 4)));
    ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_I64, 1, SHAPE(90)));
    float *x = d->x.data;
    int64_t *y = d->y.data;
    for (int64_t i = 0; i < 90; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 4; j++)
            x[i * 4 + j] = (float)(sl_rng_normal(&r) + (j == y[i] ? 1.5 : 0.0));
    }
}

/* linear 4 -> hidden, dropout (a noise stream), relu, linear -> 3. */
static sl_model *make_model(int64_t hidden)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F32, &m));
    sl_test_add_linear(m, 4, hidden, true);
    sl_options *o = sl_test_options("p=0.3");
    ck_assert_sl_ok(sl_model_add(m, "dropout", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_add(m, "relu", NULL));
    sl_test_add_linear(m, hidden, 3, true);
    ck_assert_sl_ok(sl_model_build(m, 7));
    return m;
}

/* Each rule with every piece of state it can have switched on. */
static const char *const rules[][2] = {
    {"sgd", "lr=0.1,momentum=0.9,nesterov=true,weight_decay=0.01"},
    {"adam", "lr=0.01,amsgrad=true"},
    {"adamw", "lr=0.01,weight_decay=0.1"},
    {"adagrad", "lr=0.1,lr_decay=0.01,initial_accumulator_value=0.1"},
    {"rmsprop", "lr=0.01,momentum=0.5,centered=true"},
};

/* A run: model, optimizer, a per-step cosine schedule, its options. */
typedef struct run {
    sl_model *m;
    sl_optim *opt;
    sl_schedule *sched;
    sl_options *o;
    sl_history *h;
    sl_options *es; /* early stopping, or NULL */
} run;

static run make_run(int rule, int64_t hidden, const char *train_opts)
{
    run r = {.m = make_model(hidden), .h = sl_history_new()};
    sl_options *oo = sl_test_options(rules[rule][1]);
    ck_assert_sl_ok(sl_optim_new(rules[rule][0], r.m, oo, &r.opt));
    sl_options_free(oo);
    sl_options *so = sl_test_options("t_max=30,eta_min=0.001,interval=step");
    ck_assert_sl_ok(sl_schedule_new("cosine", so, NULL, &r.sched));
    sl_options_free(so);
    r.o = sl_test_options("epochs=4,batch=8,seed=3,record_steps=3");
    if (train_opts)
        ck_assert_sl_ok(sl_options_parse(r.o, train_opts));
    return r;
}

static void free_run(run *r)
{
    sl_optim_free(r->opt);
    sl_model_free(r->m);
    sl_schedule_free(r->sched);
    sl_options_free(r->o);
    sl_options_free(r->es);
    sl_history_free(r->h);
}

static int train(run *r, const sl_dataset *d, int (*on_step)(void *, const sl_step_info *))
{
    sl_train_args a = {.train = d, .history = r->h, .schedule = r->sched, .on_step = on_step,
                       .early_stop = r->es};
    return sl_train(r->m, r->opt, &a, r->o);
}

static void assert_same_params(sl_model *a, sl_model *b, const char *what)
{
    const sl_tensor *x = sl_model_flat_params(a), *y = sl_model_flat_params(b);
    ck_assert_int_eq(sl_tensor_numel(x), sl_tensor_numel(y));
    ck_assert_msg(memcmp(x->data, y->data, sl_tensor_nbytes(x)) == 0,
                  "%s: parameters differ from the uninterrupted run's", what);
}

static void assert_same_history(const sl_history *a, const sl_history *b, const char *what)
{
    ck_assert_int_eq(sl_history_count(a), sl_history_count(b));
    for (int i = 0; i < sl_history_count(a); i++) {
        double x, y;
        ck_assert_sl_ok(sl_record_get(sl_history_row(a, i), "loss", &x));
        ck_assert_sl_ok(sl_record_get(sl_history_row(b, i), "loss", &y));
        ck_assert_msg(memcmp(&x, &y, sizeof x) == 0, "%s: epoch %d loss %.17g vs %.17g", what,
                      i + 1, x, y);
        ck_assert_sl_ok(sl_record_get(sl_history_row(b, i), "epoch", &y));
        ck_assert_int_eq((int)y, i + 1);
    }
    /* Step rows (every third step), also those from before the kill. */
    ck_assert_int_eq(sl_history_step_count(a), sl_history_step_count(b));
    sl_record *ra = sl_record_new(), *rb = sl_record_new();
    for (int64_t i = 0; i < sl_history_step_count(a); i++) {
        ck_assert_sl_ok(sl_history_step_row(a, i, ra));
        ck_assert_sl_ok(sl_history_step_row(b, i, rb));
        ck_assert_int_eq(sl_record_count(ra), sl_record_count(rb));
        for (int k = 0; k < sl_record_count(ra); k++) {
            double x = sl_record_value(ra, k), y;
            ck_assert_sl_ok(sl_record_get(rb, sl_record_name(ra, k), &y));
            ck_assert_msg(memcmp(&x, &y, sizeof x) == 0, "%s: step row %lld '%s' %.17g vs %.17g",
                          what, (long long)i, sl_record_name(ra, k), x, y);
        }
    }
    sl_record_free(ra);
    sl_record_free(rb);
}

/* ---- kill -9 and resume --------------------------------------------------- */

static int64_t kill_step;

static int kill_at_step(void *userdata, const sl_step_info *info)
{
    (void)userdata;
    if (info->step == kill_step)
        raise(SIGKILL);
    return SL_OK;
}

static int steps_seen;

static int count_steps(void *userdata, const sl_step_info *info)
{
    (void)userdata, (void)info;
    steps_seen++;
    return SL_OK;
}

/* Runs rule `rule` with train options `opts` and early stopping `es` (may
 * be NULL) in a child process that kills itself with SIGKILL at step
 * kill_step; fails unless it died so. */
static void crash_child(int rule, const char *opts, const char *es, const sl_dataset *d)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        run crash = make_run(rule, 16, opts);
        crash.es = es ? sl_test_options(es) : NULL;
        train(&crash, d, kill_at_step);
        _exit(3); /* not killed: the parent fails */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the child was not killed (status %d)", status);
}

/* The child trains with a checkpoint every 5 steps (12 batches an epoch,
 * so the last one before the kill is mid-epoch 3) and is killed at step
 * 27; the parent resumes from what it left. */
START_TEST(killed_run_resumes_bit_identical)
{
    sl_dataset d = {0};
    make_data(&d);
    run full = make_run(_i, 16, NULL);
    ck_assert_sl_ok(train(&full, &d, NULL));

    char opts[600];
    snprintf(opts, sizeof opts, "checkpoint=%s,checkpoint_every_steps=5",
             sl_test_path(dir, "run.ckpt"));
    kill_step = 27;
    crash_child(_i, opts, NULL, &d);
    struct stat st;
    ck_assert_int_eq(stat(sl_test_path(dir, "run.ckpt"), &st), 0);

    snprintf(opts, sizeof opts, "resume=%s", sl_test_path(dir, "run.ckpt"));
    run resumed = make_run(_i, 16, opts);
    steps_seen = 0;
    ck_assert_sl_ok(train(&resumed, &d, count_steps));
    ck_assert_int_eq(steps_seen, 48 - 25); /* from the checkpoint of step 25 on */
    assert_same_params(full.m, resumed.m, rules[_i][0]);
    assert_same_history(full.h, resumed.h, rules[_i][0]);
    ck_assert_int_eq(sl_optim_steps(resumed.opt), sl_optim_steps(full.opt));
    ck_assert_int_eq(sl_schedule_count(resumed.sched), sl_schedule_count(full.sched));
    free_run(&full);
    free_run(&resumed);
    sl_dataset_release(&d);
}
END_TEST

/* Early stopping's verdicts and best state survive the kill: the resumed
 * run stops after the same epoch and restores the same best parameters. */
static const char early_stop[] = "metric=loss,patience=2,min_delta=0.01,restore_best=true";

START_TEST(early_stopping_resumes_with_its_verdicts_and_best_state)
{
    sl_dataset d = {0};
    make_data(&d);
    run full = make_run(0, 16, "epochs=12");
    full.es = sl_test_options(early_stop);
    ck_assert_sl_ok(train(&full, &d, NULL));
    int64_t stopped = sl_history_stopped_epoch(full.h), best = sl_history_best_epoch(full.h);
    ck_assert_int_lt(stopped, 12); /* it stopped early */
    ck_assert_int_lt(best, stopped - 1);
    /* Killed in the epoch that stops, after its third batch: the checkpoint
     * of an earlier step holds a best epoch and a wait of at least one. */
    kill_step = (stopped - 1) * 12 + 3;

    char opts[600];
    snprintf(opts, sizeof opts, "epochs=12,checkpoint=%s,checkpoint_every_steps=5",
             sl_test_path(dir, "run.ckpt"));
    crash_child(0, opts, early_stop, &d);

    snprintf(opts, sizeof opts, "epochs=12,resume=%s", sl_test_path(dir, "run.ckpt"));
    run resumed = make_run(0, 16, opts);
    resumed.es = sl_test_options(early_stop);
    ck_assert_sl_ok(train(&resumed, &d, NULL));
    assert_same_params(full.m, resumed.m, "early stopping");
    assert_same_history(full.h, resumed.h, "early stopping");
    ck_assert_int_eq(sl_history_stopped_epoch(resumed.h), stopped);
    ck_assert_int_eq(sl_history_best_epoch(resumed.h), best);

    /* The checkpoint of the epoch that stopped resumes to no further step. */
    snprintf(opts, sizeof opts, "epochs=12,checkpoint=%s", sl_test_path(dir, "other.ckpt"));
    run whole = make_run(0, 16, opts);
    whole.es = sl_test_options(early_stop);
    ck_assert_sl_ok(train(&whole, &d, NULL));
    snprintf(opts, sizeof opts, "epochs=12,resume=%s", sl_test_path(dir, "other.ckpt"));
    run after = make_run(0, 16, opts);
    after.es = sl_test_options(early_stop);
    steps_seen = 0;
    ck_assert_sl_ok(train(&after, &d, count_steps));
    ck_assert_int_eq(steps_seen, 0);
    assert_same_params(full.m, after.m, "resumed after the stop");
    ck_assert_int_eq(sl_history_stopped_epoch(after.h), stopped);
    free_run(&whole);
    free_run(&after);

    /* The same checkpoint without early stopping is another run. */
    run plain = make_run(0, 16, opts);
    ck_assert_sl_fails(train(&plain, &d, NULL), SL_EINVAL,
                       "written with early_stop 'restore_best', this run has 'none'");
    free_run(&full);
    free_run(&resumed);
    free_run(&plain);
    sl_dataset_release(&d);
}
END_TEST

/* ---- chained calls -------------------------------------------------------- */

START_TEST(chained_calls_with_start_epoch_equal_one_call)
{
    sl_dataset d = {0};
    make_data(&d);
    run full = make_run(1, 16, NULL);
    ck_assert_sl_ok(train(&full, &d, NULL));
    run chain = make_run(1, 16, "epochs=2");
    ck_assert_sl_ok(train(&chain, &d, NULL));
    ck_assert_sl_ok(sl_options_parse(chain.o, "epochs=2,start_epoch=2"));
    ck_assert_sl_ok(train(&chain, &d, NULL));
    assert_same_params(full.m, chain.m, "train(2); train(2, start_epoch=2)");
    assert_same_history(full.h, chain.h, "chained");
    /* Without start_epoch the orders restart: the test can tell. */
    run restart = make_run(1, 16, "epochs=2");
    ck_assert_sl_ok(train(&restart, &d, NULL));
    ck_assert_sl_ok(train(&restart, &d, NULL));
    const sl_tensor *x = sl_model_flat_params(full.m), *y = sl_model_flat_params(restart.m);
    ck_assert_msg(memcmp(x->data, y->data, sl_tensor_nbytes(x)) != 0,
                  "restarting the epoch orders should change the result");
    free_run(&full);
    free_run(&chain);
    free_run(&restart);
    sl_dataset_release(&d);
}
END_TEST

/* Epoch checkpoints: a run stopped after epoch 2 by its callback resumes
 * from the epoch-2 checkpoint; a finished run's checkpoint resumes to no
 * further step. */
static int stop_in_epoch_3(void *userdata, const sl_step_info *info)
{
    (void)userdata;
    return info->epoch == 3 && info->batch == 4 ? -1 : SL_OK;
}

START_TEST(epoch_checkpoints_resume_at_the_epoch_boundary)
{
    sl_dataset d = {0};
    make_data(&d);
    run full = make_run(4, 16, NULL);
    ck_assert_sl_ok(train(&full, &d, NULL));
    char opts[600];
    snprintf(opts, sizeof opts, "checkpoint=%s,checkpoint_every_epochs=2",
             sl_test_path(dir, "run.ckpt"));
    run stopped = make_run(4, 16, opts);
    ck_assert_int_lt(train(&stopped, &d, stop_in_epoch_3), 0);
    snprintf(opts, sizeof opts, "resume=%s", sl_test_path(dir, "run.ckpt"));
    run resumed = make_run(4, 16, opts);
    steps_seen = 0;
    ck_assert_sl_ok(train(&resumed, &d, count_steps));
    ck_assert_int_eq(steps_seen, 48 - 24); /* epochs 3 and 4 */
    assert_same_params(full.m, resumed.m, "epoch checkpoint");
    assert_same_history(full.h, resumed.h, "epoch checkpoint");
    free_run(&full);
    free_run(&stopped);
    free_run(&resumed);
    sl_dataset_release(&d);
}
END_TEST

/* ---- refusals -------------------------------------------------------------- */

/* A checkpoint written after 1 epoch of run `rule`. */
static void write_checkpoint(const sl_dataset *d, int rule)
{
    char opts[600];
    snprintf(opts, sizeof opts, "epochs=1,checkpoint=%s", sl_test_path(dir, "run.ckpt"));
    run r = make_run(rule, 16, opts);
    ck_assert_sl_ok(train(&r, d, NULL));
    free_run(&r);
}

/* Resuming `r` fails with `needle` in a one-line message and leaves its
 * parameters, step count and schedule untouched. */
static void assert_refused(run *r, const sl_dataset *d, int code, const char *needle)
{
    sl_model *before;
    ck_assert_sl_ok(sl_model_clone(r->m, SL_F32, &before));
    ck_assert_sl_fails(train(r, d, NULL), code, needle);
    ck_assert_ptr_null(strchr(sl_last_error(), '\n'));
    assert_same_params(before, r->m, "a refused resume");
    ck_assert_int_eq(sl_optim_steps(r->opt), 0);
    ck_assert_int_eq(sl_schedule_count(r->sched), 0);
    sl_model_free(before);
}

static void resume_with(int rule, int64_t hidden, const char *extra, const char *file, int code,
                        const sl_dataset *d, const char *needle)
{
    char opts[600];
    snprintf(opts, sizeof opts, "resume=%s%s%s", sl_test_path(dir, file), extra ? "," : "",
             extra ? extra : "");
    run r = make_run(rule, hidden, opts);
    assert_refused(&r, d, code, needle);
    free_run(&r);
}

START_TEST(damaged_checkpoints_are_refused)
{
    sl_dataset d = {0};
    make_data(&d);
    write_checkpoint(&d, 0);
    FILE *f = fopen(sl_test_path(dir, "run.ckpt"), "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_gt(n, 200);
    ck_assert_uint_lt(n, sizeof buf);

    sl_test_write_bytes(sl_test_path(dir, "bad.ckpt"), buf, n - 7);
    resume_with(0, 16, NULL, "bad.ckpt", SL_EFORMAT, &d, "bad.ckpt: tensor 'rng.3' has data_offsets");
    sl_test_write_bytes(sl_test_path(dir, "bad.ckpt"), buf, 100);
    resume_with(0, 16, NULL, "bad.ckpt", SL_EFORMAT, &d, "bad.ckpt: truncated");
    /* A model checkpoint is not a training checkpoint. */
    sl_model *m = make_model(16);
    ck_assert_sl_ok(sl_model_save(m, sl_test_path(dir, "bad.ckpt")));
    sl_model_free(m);
    resume_with(0, 16, NULL, "bad.ckpt", SL_EFORMAT, &d, "not a training checkpoint");
    /* Damaged metadata: a number that is not one. */
    char *at = memmem(buf, n, "\"epoch\":\"1\"", 11);
    ck_assert_ptr_nonnull(at);
    at[9] = 'x';
    sl_test_write_bytes(sl_test_path(dir, "bad.ckpt"), buf, n);
    resume_with(0, 16, NULL, "bad.ckpt", SL_EFORMAT, &d, "metadata 'epoch' is 'x'");
    resume_with(0, 16, NULL, "missing.ckpt", SL_EIO, &d, "missing.ckpt: cannot open");
    sl_dataset_release(&d);
}
END_TEST

START_TEST(mismatched_runs_are_refused_naming_the_mismatch)
{
    sl_dataset d = {0};
    make_data(&d);
    write_checkpoint(&d, 0);
    resume_with(1, 16, NULL, "run.ckpt", SL_EINVAL, &d,
                "written with optimizer 'sgd', this run uses 'adam'");
    resume_with(0, 12, NULL, "run.ckpt", SL_EFORMAT, &d,
                "tensor '0.weight' has shape [16, 4], the training run expects [12, 4]");
    resume_with(0, 16, "batch=9", "run.ckpt", SL_EINVAL, &d,
                "the checkpoint's run has batch = 8, this run 9");
    resume_with(0, 16, "seed=4", "run.ckpt", SL_EINVAL, &d, "seed = 3, this run 4");
    resume_with(0, 16, "start_epoch=3", "run.ckpt", SL_EINVAL, &d, "start_epoch = 0");
    /* Momentum switched off: the optimizer has no momentum buffer. */
    run r = make_run(0, 16, NULL);
    sl_optim_free(r.opt);
    sl_options *oo = sl_test_options("lr=0.1");
    ck_assert_sl_ok(sl_optim_new("sgd", r.m, oo, &r.opt));
    sl_options_free(oo);
    char opts[600];
    snprintf(opts, sizeof opts, "resume=%s", sl_test_path(dir, "run.ckpt"));
    ck_assert_sl_ok(sl_options_parse(r.o, opts));
    assert_refused(&r, &d, SL_EFORMAT, "unexpected tensor 'optim.momentum_buffer'");
    free_run(&r);
    /* Past this run's epochs. */
    resume_with(0, 16, "epochs=0", "run.ckpt", SL_EINVAL, &d, "outside this run's epochs");
    sl_dataset_release(&d);
}
END_TEST

/* ---- optimizer types that cannot save their state ------------------------ */

static int plain_create(sl_optim *o, const sl_options *opt)
{
    (void)o, (void)opt;
    return SL_OK;
}

static int plain_step(sl_optim *o, sl_tensor *params, const sl_tensor *grads)
{
    (void)o;
    return sl_tensor_copy(params, grads);
}

static int no_state(sl_optim *o, int i, const char **name, sl_tensor *view)
{
    (void)o, (void)i, (void)name, (void)view;
    return 0;
}

static const sl_option_spec plain_options[] = {{"lr", SL_OPT_FLOAT, "0.1", "rate", NULL},
                                               {NULL, 0, NULL, NULL, NULL}};
/* Built at this ABI without state_tensor. */
static const sl_optim_type stateless = {.name = "opaque_state", .summary = "test",
                                        .options = plain_options, .create = plain_create,
                                        .step = plain_step};
static const sl_optim_type *const new_optims[] = {&stateless, NULL};
static const sl_plugin new_plugin = {SL_PLUGIN_HEADER, .name = "newopt", .version = "0",
                                     .summary = "test", .optims = new_optims};
/* Says ABI 1.1, before the field existed: whatever lies there is not read. */
static const sl_optim_type old_type = {.name = "old_rule", .summary = "test",
                                       .options = plain_options, .create = plain_create,
                                       .step = plain_step, .state_tensor = no_state};
static const sl_optim_type *const old_optims[] = {&old_type, NULL};
static const sl_plugin old_plugin = {.abi_major = SL_ABI_MAJOR, .abi_minor = 1,
                                     .size = sizeof(sl_plugin), .name = "oldopt",
                                     .version = "0", .summary = "test", .optims = old_optims};

START_TEST(optimizers_without_state_access_are_refused)
{
    ck_assert_sl_ok(sl_plugin_register(&new_plugin, "test"));
    ck_assert_sl_ok(sl_plugin_register(&old_plugin, "test"));
    sl_dataset d = {0};
    make_data(&d);
    const char *types[] = {"opaque_state", "old_rule"}, *plugins[] = {"newopt", "oldopt"};
    for (int k = 0; k < 2; k++) {
        char opts[600], needle[160];
        snprintf(opts, sizeof opts, "epochs=1,checkpoint=%s", sl_test_path(dir, "other.ckpt"));
        run r = make_run(0, 16, opts);
        sl_optim_free(r.opt);
        ck_assert_sl_ok(sl_optim_new(types[k], r.m, NULL, &r.opt));
        snprintf(needle, sizeof needle, "optimizer '%s' (plugin '%s') cannot save its state",
                 types[k], plugins[k]);
        ck_assert_sl_fails(train(&r, &d, NULL), SL_ESTATE, needle);
        struct stat st;
        ck_assert_int_ne(stat(sl_test_path(dir, "other.ckpt"), &st), 0);
        free_run(&r);
    }
    sl_dataset_release(&d);
}
END_TEST

static Suite *resume_suite(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("resume");
    tcase_add_checked_fixture(tc, make_dir, remove_dir);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, killed_run_resumes_bit_identical, 0,
                        (int)(sizeof rules / sizeof rules[0]));
    tcase_add_test(tc, early_stopping_resumes_with_its_verdicts_and_best_state);
    tcase_add_test(tc, chained_calls_with_start_epoch_equal_one_call);
    tcase_add_test(tc, epoch_checkpoints_resume_at_the_epoch_boundary);
    tcase_add_test(tc, damaged_checkpoints_are_refused);
    tcase_add_test(tc, mismatched_runs_are_refused_naming_the_mismatch);
    tcase_add_test(tc, optimizers_without_state_access_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(resume_suite()); }
