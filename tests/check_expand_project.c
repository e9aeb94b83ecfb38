/* tests/check_expand_project.c — the SBDE test-time mask projection
 * (module expand_project of plugins/input_expand): its gradient against
 * finite differences, its layout against the rule written out by hand, that
 * it is the identity on what input_expand produces, and its shape errors. */
#include "config.h"

#include <math.h>

#include "gradcheck.h"
#include "testutil.h"

#define MODEL(dtype, seed, ...) sl_test_model(dtype, seed, (const char *const[]){__VA_ARGS__, NULL})

static sl_tensor random_tensor(int ndim, const int64_t *shape, uint64_t seed)
{
    sl_tensor t = {0};
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&t, SL_F64, ndim, shape));
    gradcheck_fill(&t, &rng);
    return t;
}

START_TEST(test_gradcheck_expand_project)
{
    sl_test_gradcheck("expand_project K2", "expand_project", "factor=2,offset=1,fill=0.5", false,
                      3, 0, 4, SHAPE(2, 2, 4, 6));
    sl_test_gradcheck("expand_project K3", "expand_project", "factor=3,offset=2", false, 4, 0, 4,
                      SHAPE(1, 1, 6, 3));
}
END_TEST

/* A 1x1x4x4 input 1..16 with K = 2, offset 1, fill 9: the grid positions
 * (rows and columns 1 and 3) keep their value, the rest become 9. */
START_TEST(test_expand_project_by_hand)
{
    sl_model *m = MODEL(SL_F64, 1, "expand_project", "factor=2,offset=1,fill=9");
    sl_tensor x = {0};
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 4, SHAPE(1, 1, 4, 4)));
    for (int i = 0; i < 16; i++)
        ((double *)x.data)[i] = i + 1;
    const double want[16] = {9, 9, 9, 9, 9, 6, 9, 8, 9, 9, 9, 9, 9, 14, 9, 16};
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    for (int i = 0; i < 16; i++)
        ck_assert_msg(((const double *)y->data)[i] == want[i], "element %d is %g, want %g", i,
                      ((const double *)y->data)[i], want[i]);
    sl_tensor_release(&x);
    sl_model_free(m);
}
END_TEST

/* input_expand then expand_project with the same factor, offset and fill:
 * the projection changes nothing; with another fill it resets exactly the
 * inserted positions. */
START_TEST(test_expand_project_after_expand)
{
    const int64_t H = 5, W = 3, K = 3, off = 1;
    sl_model *m = MODEL(SL_F64, 1, "input_expand", "factor=3,offset=1,fill=0.25",
                        "expand_project", "factor=3,offset=1,fill=0.25");
    sl_model *e = MODEL(SL_F64, 1, "input_expand", "factor=3,offset=1,fill=0.25");
    sl_model *other = MODEL(SL_F64, 1, "input_expand", "factor=3,offset=1,fill=0.25",
                            "expand_project", "factor=3,offset=1,fill=-2");
    sl_tensor x = random_tensor(4, SHAPE(2, 2, H, W), 7);
    const sl_tensor *y, *ye, *yo;
    ck_assert_sl_ok(sl_model_forward(m, &x, &y));
    ck_assert_sl_ok(sl_model_forward(e, &x, &ye));
    ck_assert_sl_ok(sl_model_forward(other, &x, &yo));
    ck_assert_int_eq(sl_tensor_numel(y), 2 * 2 * H * K * W * K);
    for (int64_t i = 0; i < sl_tensor_numel(y); i++) {
        int64_t q = i % (W * K), r = i / (W * K) % (H * K);
        bool grid = r % K == off && q % K == off;
        ck_assert(((const double *)y->data)[i] == ((const double *)ye->data)[i]);
        ck_assert(((const double *)yo->data)[i] == (grid ? ((const double *)ye->data)[i] : -2.0));
    }
    sl_tensor_release(&x);
    sl_model_free(m);
    sl_model_free(e);
    sl_model_free(other);
}
END_TEST

START_TEST(test_expand_project_errors)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_options *o = sl_test_options("factor=2,offset=2");
    ck_assert_int_eq(sl_model_add(m, "expand_project", o), SL_EINVAL);
    sl_options_free(o);
    sl_model_free(m);
    /* a side that is not a multiple of the factor is a shape error naming it */
    sl_model *p = MODEL(SL_F64, 1, "expand_project", "factor=2");
    int64_t out[SL_MAX_DIMS];
    int out_ndim;
    ck_assert_int_eq(sl_model_output_shape(p, 4, SHAPE(1, 1, 5, 4), &out_ndim, out), SL_ESHAPE);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "expand_project"));
    sl_model_free(p);
}
END_TEST

static Suite *expand_project_suite(void)
{
    Suite *s = suite_create("expand_project");
    TCase *tc = tcase_create("expand_project");
    tcase_add_test(tc, test_gradcheck_expand_project);
    tcase_add_test(tc, test_expand_project_by_hand);
    tcase_add_test(tc, test_expand_project_after_expand);
    tcase_add_test(tc, test_expand_project_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(expand_project_suite()); }
