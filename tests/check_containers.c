/* Containers (residual blocks, nested sequentials), group norm and global
 * average pooling: gradients against finite differences in f64, PyTorch
 * names, builder errors, determinism, and the structure of residual
 * models. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "testutil.h"

static sl_options *opts(const char *text) { return sl_test_options(text); }

static int add(sl_model *m, const char *type, const char *text)
{
    sl_options *o = opts(text);
    int rc = sl_model_add(m, type, o);
    sl_options_free(o);
    return rc;
}

/* ---- gradient checks ------------------------------------------------------ */

static void check_grad(const char *label, int (*build)(sl_model *), const char *type,
                       const char *text, double jitter, int ndim, const int64_t *shape)
{
    gradcheck_args a = {.type = type, .label = label, .ndim = ndim, .seed = 5,
                        .jitter = jitter, .build = build};
    sl_options *o = text ? opts(text) : NULL;
    a.opt = o;
    memcpy(a.shape, shape, (size_t)ndim * sizeof *shape);
    gradcheck_report r;
    ck_assert_sl_ok(gradcheck_module(&a, &r));
    ck_assert_msg(r.max_rel_err < GRADCHECK_TOL, "%s: max rel err %g", label, r.max_rel_err);
    ck_assert_int_gt(r.ninputs, 0);
    sl_options_free(o);
}

START_TEST(gradcheck_groupnorm_and_global_pool)
{
    check_grad("groupnorm", NULL, "groupnorm", "num_groups=2,num_channels=4", 0.3, 4,
               SHAPE(2, 4, 3, 2));
    check_grad("groupnorm (no affine)", NULL, "groupnorm", "num_groups=4,num_channels=4,affine=false",
               0.0, 3, SHAPE(3, 4, 5));
    check_grad("global_avgpool", NULL, "global_avgpool", NULL, 0.0, 4, SHAPE(2, 3, 4, 5));
}
END_TEST

/* residual { conv, relu, conv } with the identity shortcut */
static int build_identity_block(sl_model *m)
{
    SL_TRY(sl_model_begin(m, "residual", NULL));
    SL_TRY(add(m, "conv2d", "in_channels=3,out_channels=3,kernel_size=3,padding=1"));
    SL_TRY(add(m, "relu", NULL));
    SL_TRY(add(m, "conv2d", "in_channels=3,out_channels=3,kernel_size=3,padding=1"));
    return sl_model_end(m);
}

/* residual { conv stride 2, groupnorm, tanh, conv } with a projection
 * shortcut { conv 1x1 stride 2, batchnorm }, inside a sequential */
static int build_projection_block(sl_model *m)
{
    SL_TRY(sl_model_begin(m, "sequential", NULL));
    SL_TRY(add(m, "conv2d", "in_channels=2,out_channels=3,kernel_size=3,padding=1"));
    SL_TRY(sl_model_begin(m, "residual", NULL));
    SL_TRY(add(m, "conv2d", "in_channels=3,out_channels=4,kernel_size=3,padding=1,stride=2"));
    SL_TRY(add(m, "groupnorm", "num_groups=2,num_channels=4"));
    SL_TRY(add(m, "tanh", NULL));
    SL_TRY(add(m, "conv2d", "in_channels=4,out_channels=4,kernel_size=3,padding=1"));
    SL_TRY(sl_model_branch(m, "shortcut"));
    SL_TRY(add(m, "conv2d", "in_channels=3,out_channels=4,kernel_size=1,stride=2"));
    SL_TRY(add(m, "batchnorm", "num_features=4"));
    SL_TRY(sl_model_end(m));
    SL_TRY(add(m, "global_avgpool", NULL));
    SL_TRY(add(m, "linear", "in_features=4,out_features=3"));
    return sl_model_end(m);
}

START_TEST(gradcheck_residual_models)
{
    check_grad("residual (identity shortcut)", build_identity_block, "residual", NULL, 0.0, 4,
               SHAPE(2, 3, 4, 4));
    check_grad("residual model (projection, nested)", build_projection_block, "sequential",
               NULL, 0.1, 4, SHAPE(3, 2, 6, 6));
}
END_TEST

/* ---- names, semantics, errors --------------------------------------------- */

static sl_model *projection_model(sl_dtype dt, uint64_t seed)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dt, &m));
    ck_assert_sl_ok(build_projection_block(m));
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

START_TEST(pytorch_names)
{
    sl_model *m = projection_model(SL_F64, 1);
    static const char *const want[] = {
        "0.0.weight", "0.0.bias", "0.1.body.0.weight", "0.1.body.0.bias",
        "0.1.body.1.weight", "0.1.body.1.bias", "0.1.body.3.weight", "0.1.body.3.bias",
        "0.1.shortcut.0.weight", "0.1.shortcut.0.bias", "0.1.shortcut.1.weight",
        "0.1.shortcut.1.bias", "0.3.weight", "0.3.bias"};
    ck_assert_int_eq(sl_model_nparams(m), (int)(sizeof want / sizeof *want));
    for (int i = 0; i < sl_model_nparams(m); i++)
        ck_assert_str_eq(sl_model_param_name(m, i), want[i]);
    ck_assert_int_eq(sl_model_nbuffers(m), 3);
    ck_assert_str_eq(sl_model_buffer_name(m, 0), "0.1.shortcut.1.running_mean");
    ck_assert_str_eq(sl_model_buffer_name(m, 2), "0.1.shortcut.1.num_batches_tracked");
    ck_assert_int_eq(sl_model_nmodules(m), 1);
    ck_assert_str_eq(sl_module_path(sl_model_module(m, 0)), "0");
    sl_model_free(m);
}
END_TEST

/* residual { identity }: y = x + x, exactly. */
START_TEST(residual_adds_the_shortcut)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    ck_assert_sl_ok(add(m, "identity", NULL));
    ck_assert_sl_ok(sl_model_end(m));
    ck_assert_sl_ok(sl_model_build(m, 1));
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, SHAPE(2, 3)));
    sl_rng r;
    sl_rng_seed(&r, 2);
    ck_assert_sl_ok(sl_tensor_normal(&x, &r, 0, 1));
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    for (int64_t i = 0; i < 6; i++)
        ck_assert_double_eq(sl_tensor_flat_get(y, i), 2 * sl_tensor_flat_get(&x, i));
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

START_TEST(builder_errors)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    ck_assert_sl_fails(sl_model_add(m, "residual", NULL), SL_EINVAL, "sl_model_begin");
    ck_assert_sl_fails(sl_model_begin(m, "linear", NULL), SL_EINVAL, "not a container");
    ck_assert_sl_fails(sl_model_end(m), SL_ESTATE, "without an open container");
    ck_assert_sl_fails(sl_model_branch(m, "shortcut"), SL_ESTATE, "outside a container");
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    ck_assert_sl_fails(sl_model_branch(m, "skip"), SL_EINVAL, "no branch 'skip'");
    ck_assert_sl_ok(add(m, "linear", "in_features=3,out_features=4"));
    ck_assert_sl_fails(sl_model_build(m, 1), SL_ESTATE, "not ended");
    ck_assert_sl_ok(sl_model_end(m));
    ck_assert_sl_ok(sl_model_build(m, 1));
    /* body (B, 4) against the identity shortcut's (B, 3), and a 1-based
     * position inside the branch */
    int out_ndim;
    int64_t out[SL_MAX_DIMS];
    ck_assert_sl_fails(sl_model_output_shape(m, 2, SHAPE(5, 3), &out_ndim, out), SL_ESHAPE,
                       "module 1 (residual): the body gives [5, 4] but the shortcut [5, 3]");
    ck_assert_sl_fails(sl_model_output_shape(m, 2, SHAPE(5, 2), &out_ndim, out), SL_ESHAPE,
                       "module 1 (residual): body module 1 (linear)");
    sl_model_free(m);
}
END_TEST

/* Two runs of the same seed train to bit-identical parameters; a clone
 * computes the same function. */
START_TEST(residual_determinism_and_clone)
{
    sl_model *m[2];
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F32, 4, SHAPE(4, 2, 6, 6)));
    sl_rng r;
    sl_rng_seed(&r, 3);
    ck_assert_sl_ok(sl_tensor_normal(&x, &r, 0, 1));
    sl_tensor grad = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&grad, SL_F32, 2, SHAPE(4, 3)));
    ck_assert_sl_ok(sl_tensor_normal(&grad, &r, 0, 1));
    for (int k = 0; k < 2; k++) {
        m[k] = projection_model(SL_F32, 7);
        sl_options *o = opts("lr=0.1,momentum=0.9");
        sl_optim *opt;
        ck_assert_sl_ok(sl_optim_new("sgd", m[k], o, &opt));
        for (int step = 0; step < 3; step++) {
            const sl_tensor *y;
            sl_model_zero_grad(m[k]);
            ck_assert_sl_ok(sl_model_forward(m[k], &x, &y));
            ck_assert_sl_ok(sl_model_backward(m[k], &grad));
            ck_assert_sl_ok(sl_optim_step(opt));
        }
        sl_optim_free(opt);
        sl_options_free(o);
    }
    const sl_tensor *a = sl_model_flat_params(m[0]), *b = sl_model_flat_params(m[1]);
    ck_assert_int_eq(memcmp(a->data, b->data, (size_t)sl_tensor_numel(a) * sizeof(float)), 0);
    sl_model *c;
    ck_assert_sl_ok(sl_model_clone(m[0], SL_F32, &c));
    const sl_tensor *ya, *yc;
    sl_model_set_training(m[0], false);
    sl_model_set_training(c, false);
    ck_assert_sl_ok(sl_model_forward(m[0], &x, &ya));
    sl_tensor keep = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&keep, SL_F32, ya->ndim, ya->shape));
    ck_assert_sl_ok(sl_tensor_copy(&keep, ya));
    ck_assert_sl_ok(sl_model_forward(c, &x, &yc));
    ck_assert_int_eq(memcmp(keep.data, yc->data, 12 * sizeof(float)), 0);
    sl_tensor_release(&keep);
    sl_tensor_release(&x);
    sl_tensor_release(&grad);
    sl_model_free(c);
    sl_model_free(m[0]);
    sl_model_free(m[1]);
}
END_TEST

/* ---- the structure of residual models --------------------------------------- */

/* stem conv, bn, relu; residual { conv, bn, relu, conv, bn }; relu;
 * residual { conv s2, bn, relu, conv, bn | shortcut conv 1x1 s2, bn }; relu;
 * global_avgpool; linear */
static sl_model *mini_resnet(void)
{
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    ck_assert_sl_ok(add(m, "conv2d", "in_channels=1,out_channels=4,kernel_size=3,padding=1"));
    ck_assert_sl_ok(add(m, "batchnorm", "num_features=4"));
    ck_assert_sl_ok(add(m, "relu", NULL));
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    ck_assert_sl_ok(add(m, "conv2d", "in_channels=4,out_channels=4,kernel_size=3,padding=1"));
    ck_assert_sl_ok(add(m, "batchnorm", "num_features=4"));
    ck_assert_sl_ok(add(m, "relu", NULL));
    ck_assert_sl_ok(add(m, "conv2d", "in_channels=4,out_channels=4,kernel_size=3,padding=1"));
    ck_assert_sl_ok(add(m, "batchnorm", "num_features=4"));
    ck_assert_sl_ok(sl_model_end(m));
    ck_assert_sl_ok(add(m, "relu", NULL));
    ck_assert_sl_ok(sl_model_begin(m, "residual", NULL));
    ck_assert_sl_ok(add(m, "conv2d",
                        "in_channels=4,out_channels=6,kernel_size=3,padding=1,stride=2"));
    ck_assert_sl_ok(add(m, "batchnorm", "num_features=6"));
    ck_assert_sl_ok(add(m, "relu", NULL));
    ck_assert_sl_ok(add(m, "conv2d", "in_channels=6,out_channels=6,kernel_size=3,padding=1"));
    ck_assert_sl_ok(add(m, "batchnorm", "num_features=6"));
    ck_assert_sl_ok(sl_model_branch(m, "shortcut"));
    ck_assert_sl_ok(add(m, "conv2d", "in_channels=4,out_channels=6,kernel_size=1,stride=2"));
    ck_assert_sl_ok(add(m, "batchnorm", "num_features=6"));
    ck_assert_sl_ok(sl_model_end(m));
    ck_assert_sl_ok(add(m, "relu", NULL));
    ck_assert_sl_ok(add(m, "global_avgpool", NULL));
    ck_assert_sl_ok(add(m, "linear", "in_features=6,out_features=3"));
    ck_assert_sl_ok(sl_model_build(m, 11));
    sl_rng r;
    sl_rng_seed(&r, 12);
    for (int i = 0; i < sl_model_nparams(m); i++) /* batch norm's ones and zeros too */
        ck_assert_sl_ok(sl_tensor_normal(sl_model_param(m, i), &r, 0.0, 0.5));
    return m;
}

START_TEST(residual_streams_share_one_permutation)
{
    sl_model *m = mini_resnet();
    sl_structure *s;
    ck_assert_sl_ok(sl_model_structure(m, &s));
    ck_assert_int_eq(sl_structure_nlayers(s), 7);
    /* Hidden layers: the first stream (stem + block 1's last conv write it;
     * block 1's first conv, block 2's first conv and its shortcut read it),
     * inside block 1, inside block 2, and the second stream (block 2's last
     * conv and shortcut write it, the linear layer reads it). */
    ck_assert_int_eq(sl_structure_nhidden(s), 4);
    int streams = 0;
    for (int h = 0; h < sl_structure_nhidden(s); h++) {
        const sl_hidden_layer *hl = sl_structure_hidden(s, h);
        const int producers = hl->nproducers, consumers = hl->nconsumers;
        /* batch norm after every producer: no rescaling, a free incoming scale */
        ck_assert_uint_eq(hl->symmetry, SL_SYM_PERMUTE | SL_SYM_SCALE_FREE);
        if (producers == 2 && consumers == 3 && hl->units == 4)
            streams |= 1;
        if (producers == 2 && consumers == 1 && hl->units == 6)
            streams |= 2;
    }
    ck_assert_int_eq(streams, 3);
    /* Permuting every hidden layer, streams included, keeps the function. */
    sl_model *p;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &p));
    sl_model_set_training(m, false);
    sl_model_set_training(p, false);
    sl_rng r;
    sl_rng_seed(&r, 13);
    for (int h = 0; h < sl_structure_nhidden(s); h++) {
        int64_t k = sl_structure_hidden(s, h)->units, perm[8];
        for (int64_t j = 0; j < k; j++)
            perm[j] = (j + 1) % k;
        ck_assert_sl_ok(sl_structure_permute(p, s, h, perm));
    }
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 4, SHAPE(2, 1, 8, 8)));
    ck_assert_sl_ok(sl_tensor_normal(&x, &r, 0, 1));
    const sl_tensor *ya, *yb;
    ck_assert_sl_ok(sl_model_forward(m, &x, &ya));
    double keep[6];
    for (int i = 0; i < 6; i++)
        keep[i] = sl_tensor_flat_get(ya, i);
    ck_assert_sl_ok(sl_model_forward(p, &x, &yb));
    double gap = 0, moved = 0;
    for (int i = 0; i < 6; i++)
        gap = fmax(gap, fabs(keep[i] - sl_tensor_flat_get(yb, i)));
    for (int64_t i = 0; i < sl_model_numel(m); i++)
        moved = fmax(moved, fabs(sl_tensor_flat_get(sl_model_flat_params(m), i) -
                                 sl_tensor_flat_get(sl_model_flat_params(p), i)));
    ck_assert_msg(moved > 1e-2, "nothing moved (%g)", moved);
    ck_assert_msg(gap < 1e-12, "outputs moved by %g", gap);
    sl_tensor_release(&x);
    sl_structure_free(s);
    sl_model_free(p);
    sl_model_free(m);
}
END_TEST

static Suite *containers_suite(void)
{
    Suite *s = suite_create("containers");
    TCase *g = tcase_create("gradcheck");
    tcase_set_timeout(g, 120); /* hang guard only (valgrind is slow) */
    tcase_add_test(g, gradcheck_groupnorm_and_global_pool);
    tcase_add_test(g, gradcheck_residual_models);
    suite_add_tcase(s, g);
    TCase *t = tcase_create("containers");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, pytorch_names);
    tcase_add_test(t, residual_adds_the_shortcut);
    tcase_add_test(t, builder_errors);
    tcase_add_test(t, residual_determinism_and_clone);
    tcase_add_test(t, residual_streams_share_one_permutation);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return sl_test_run(containers_suite()); }
