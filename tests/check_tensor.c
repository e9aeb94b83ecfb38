/* Tensors, views, BLAS wrappers and the RNG against naive reference loops. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "testutil.h"

START_TEST(alloc_is_zeroed_contiguous_and_aligned)
{
    sl_tensor t;
    ck_assert_sl_ok(sl_tensor_alloc(&t, SL_F32, 3, (int64_t[]){2, 3, 4}));
    ck_assert_int_eq(sl_tensor_numel(&t), 24);
    ck_assert(sl_tensor_is_contiguous(&t));
    ck_assert_int_eq(t.stride[0], 12);
    ck_assert_int_eq(t.stride[1], 4);
    ck_assert_int_eq(t.stride[2], 1);
    ck_assert_int_eq((uintptr_t)t.data % SL_ALIGNMENT, 0);
    for (int i = 0; i < 24; i++)
        ck_assert_float_eq(((float *)t.data)[i], 0.0f);
    sl_tensor_release(&t);
    ck_assert_ptr_null(t.data);
    sl_tensor_release(&t); /* releasing the empty tensor is a no-op */
}
END_TEST

START_TEST(bad_shapes_are_errors)
{
    sl_tensor t;
    ck_assert_sl_fails(sl_tensor_alloc(&t, SL_F32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}),
                       SL_EINVAL, "ndim 7");
    ck_assert_sl_fails(sl_tensor_alloc(&t, SL_F32, 2, (int64_t[]){2, -1}), SL_EINVAL,
                       "negative extent");
    ck_assert_sl_fails(sl_tensor_alloc(&t, SL_F64, 2, (int64_t[]){INT64_MAX / 2, 4}), SL_EINVAL,
                       "overflows");
}
END_TEST

START_TEST(views_share_storage_and_count_references)
{
    sl_tensor t, row, tr, flat;
    ck_assert_sl_ok(sl_tensor_alloc(&t, SL_F64, 2, (int64_t[]){3, 4}));
    for (int i = 0; i < 12; i++)
        ((double *)t.data)[i] = i;
    ck_assert_sl_ok(sl_tensor_narrow(&t, 0, 1, 2, &row));
    ck_assert_sl_ok(sl_tensor_transpose(&t, 0, 1, &tr));
    ck_assert_sl_ok(sl_tensor_reshape(&t, 1, (int64_t[]){-1}, &flat));
    sl_tensor_release(&t); /* views keep the storage alive */
    ck_assert_double_eq(sl_tensor_get(&row, (int64_t[]){0, 0}), 4.0);
    ck_assert_double_eq(sl_tensor_get(&tr, (int64_t[]){3, 2}), 11.0);
    ck_assert_double_eq(sl_tensor_flat_get(&flat, 7), 7.0);
    ck_assert(!sl_tensor_is_contiguous(&tr));
    ck_assert_sl_fails(sl_tensor_reshape(&tr, 1, (int64_t[]){12}, &t), SL_EINVAL,
                       "not contiguous");
    ck_assert_sl_fails(sl_tensor_reshape(&flat, 2, (int64_t[]){5, 2}, &t), SL_ESHAPE,
                       "12 elements");
    ck_assert_sl_fails(sl_tensor_narrow(&flat, 0, 10, 3, &t), SL_EINVAL, "out of range");
    sl_tensor_release(&row);
    sl_tensor_release(&tr);
    sl_tensor_release(&flat);
}
END_TEST

START_TEST(copy_converts_dtypes_through_strides)
{
    sl_tensor a, b, at;
    ck_assert_sl_ok(sl_tensor_alloc(&a, SL_F64, 2, (int64_t[]){2, 3}));
    for (int i = 0; i < 6; i++)
        ((double *)a.data)[i] = 0.5 * i;
    ck_assert_sl_ok(sl_tensor_transpose(&a, 0, 1, &at));
    ck_assert_sl_ok(sl_tensor_alloc(&b, SL_F32, 2, (int64_t[]){3, 2}));
    ck_assert_sl_ok(sl_tensor_copy(&b, &at));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            ck_assert_float_eq(((float *)b.data)[i * 2 + j], (float)(0.5 * (j * 3 + i)));
    ck_assert_sl_fails(sl_tensor_copy(&b, &a), SL_ESHAPE, "[3, 2]");
    ck_assert_sl_ok(sl_tensor_fill(&at, 2.0));
    ck_assert_double_eq(((double *)a.data)[5], 2.0);
    sl_tensor_release(&a);
    sl_tensor_release(&b);
    sl_tensor_release(&at);
}
END_TEST

/* Naive C = alpha op(A) op(B) + beta C in double. */
static void naive_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                       const sl_tensor *a, const sl_tensor *b, double beta, double *c)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++) {
                double av = sl_tensor_get(a, ta ? (int64_t[]){p, i} : (int64_t[]){i, p});
                double bv = sl_tensor_get(b, tb ? (int64_t[]){j, p} : (int64_t[]){p, j});
                s += av * bv;
            }
            c[i * n + j] = alpha * s + beta * c[i * n + j];
        }
}

static void check_gemm(sl_dtype dt, bool ta, bool tb, double tol)
{
    int64_t m = 5, n = 7, k = 3;
    sl_tensor a, b, c;
    sl_rng r;
    sl_rng_seed(&r, 42);
    ck_assert_sl_ok(sl_tensor_alloc(&a, dt, 2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k}));
    ck_assert_sl_ok(sl_tensor_alloc(&b, dt, 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n}));
    ck_assert_sl_ok(sl_tensor_alloc(&c, dt, 2, (int64_t[]){m, n}));
    sl_tensor_normal(&a, &r, 0, 1);
    sl_tensor_normal(&b, &r, 0, 1);
    sl_tensor_normal(&c, &r, 0, 1);
    double ref[35];
    for (int i = 0; i < 35; i++)
        ref[i] = sl_tensor_flat_get(&c, i);
    naive_gemm(ta, tb, m, n, k, 1.5, &a, &b, 0.25, ref);
    ck_assert_sl_ok(sl_gemm(ta, tb, 1.5, &a, &b, 0.25, &c));
    for (int i = 0; i < 35; i++)
        ck_assert_double_eq_tol(sl_tensor_flat_get(&c, i), ref[i], tol);
    sl_tensor_release(&a);
    sl_tensor_release(&b);
    sl_tensor_release(&c);
}

START_TEST(gemm_matches_naive_loops)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(SL_F64, ta, tb, 1e-12);
            check_gemm(SL_F32, ta, tb, 1e-5);
        }
}
END_TEST

START_TEST(gemm_rejects_mismatched_shapes)
{
    sl_tensor a, b, c;
    sl_tensor_alloc(&a, SL_F32, 2, (int64_t[]){2, 3});
    sl_tensor_alloc(&b, SL_F32, 2, (int64_t[]){4, 5});
    sl_tensor_alloc(&c, SL_F32, 2, (int64_t[]){2, 5});
    ck_assert_sl_fails(sl_gemm(false, false, 1, &a, &b, 0, &c), SL_ESHAPE,
                       "[2, 3] @ [4, 5] does not fit [2, 5]");
    sl_tensor_release(&b);
    sl_tensor_alloc(&b, SL_F64, 2, (int64_t[]){3, 5});
    ck_assert_sl_fails(sl_gemm(false, false, 1, &a, &b, 0, &c), SL_EDTYPE, "f64");
    sl_tensor_release(&a);
    sl_tensor_release(&b);
    sl_tensor_release(&c);
}
END_TEST

START_TEST(vector_ops_match_loops)
{
    sl_tensor x, y;
    sl_rng r;
    sl_rng_seed(&r, 7);
    sl_tensor_alloc(&x, SL_F64, 1, (int64_t[]){100});
    sl_tensor_alloc(&y, SL_F64, 1, (int64_t[]){100});
    sl_tensor_normal(&x, &r, 0, 1);
    sl_tensor_normal(&y, &r, 0, 1);
    double dot = 0, nrm = 0, y0[100];
    for (int i = 0; i < 100; i++) {
        double xi = sl_tensor_flat_get(&x, i), yi = sl_tensor_flat_get(&y, i);
        dot += xi * yi;
        nrm += xi * xi;
        y0[i] = yi + 0.5 * xi;
    }
    double got;
    ck_assert_sl_ok(sl_dot(&x, &y, &got));
    ck_assert_double_eq_tol(got, dot, 1e-12);
    ck_assert_sl_ok(sl_norm2(&x, &got));
    ck_assert_double_eq_tol(got, sqrt(nrm), 1e-12);
    ck_assert_sl_ok(sl_axpy(0.5, &x, &y));
    for (int i = 0; i < 100; i++)
        ck_assert_double_eq_tol(sl_tensor_flat_get(&y, i), y0[i], 1e-14);
    ((double *)y.data)[3] = NAN;
    ck_assert_sl_ok(sl_scale(0.0, &y)); /* zero means zero, even over NaN */
    ck_assert_double_eq(sl_tensor_flat_get(&y, 3), 0.0);
    sl_tensor_release(&x);
    sl_tensor_release(&y);
}
END_TEST

START_TEST(svd_reconstructs_the_matrix)
{
    sl_tensor a, u, s, vt;
    sl_rng r;
    sl_rng_seed(&r, 3);
    sl_tensor_alloc(&a, SL_F64, 2, (int64_t[]){4, 6});
    sl_tensor_normal(&a, &r, 0, 1);
    ck_assert_sl_ok(sl_svd(&a, &u, &s, &vt));
    ck_assert_int_eq(u.shape[1], 4);
    ck_assert_int_eq(vt.shape[0], 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++) {
            double v = 0;
            for (int k = 0; k < 4; k++)
                v += sl_tensor_get(&u, (int64_t[]){i, k}) * sl_tensor_flat_get(&s, k) *
                     sl_tensor_get(&vt, (int64_t[]){k, j});
            ck_assert_double_eq_tol(v, sl_tensor_get(&a, (int64_t[]){i, j}), 1e-12);
        }
    for (int k = 1; k < 4; k++)
        ck_assert(sl_tensor_flat_get(&s, k) <= sl_tensor_flat_get(&s, k - 1));
    sl_tensor_release(&u);
    sl_tensor_release(&s);
    sl_tensor_release(&vt);
    ck_assert_sl_ok(sl_svd(&a, NULL, &s, NULL));
    ck_assert_int_eq(sl_tensor_numel(&s), 4);
    sl_tensor_release(&s);
    sl_tensor_release(&a);
}
END_TEST

START_TEST(rng_is_reproducible_and_roughly_uniform)
{
    sl_rng a, b, c;
    sl_rng_seed(&a, 99);
    sl_rng_seed(&b, 99);
    sl_rng_derive(&c, 99, 1);
    double sum = 0, sq = 0;
    int n = 100000;
    bool differs = false;
    for (int i = 0; i < n; i++) {
        uint64_t x = sl_rng_next(&a);
        ck_assert_uint_eq(x, sl_rng_next(&b));
        differs |= x != sl_rng_next(&c);
    }
    ck_assert(differs);
    for (int i = 0; i < n; i++) {
        double z = sl_rng_normal(&a);
        sum += z;
        sq += z * z;
    }
    ck_assert_double_eq_tol(sum / n, 0.0, 0.02);
    ck_assert_double_eq_tol(sq / n, 1.0, 0.02);
    int64_t perm[50], seen[50] = {0};
    for (int i = 0; i < 50; i++)
        perm[i] = i;
    sl_rng_shuffle(&a, perm, 50);
    for (int i = 0; i < 50; i++)
        seen[perm[i]]++;
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(seen[i], 1);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt(sl_rng_below(&a, 7), 7);
}
END_TEST

START_TEST(records_keep_order_and_reuse_names)
{
    sl_record *r = sl_record_new();
    ck_assert_sl_ok(sl_record_set(r, "loss", 1.0));
    ck_assert_sl_ok(sl_record_set(r, "acc", 0.5));
    ck_assert_sl_ok(sl_record_set(r, "loss", 2.0));
    ck_assert_int_eq(sl_record_count(r), 2);
    ck_assert_str_eq(sl_record_name(r, 0), "loss");
    ck_assert_double_eq(sl_record_value(r, 0), 2.0);
    sl_record_clear(r);
    ck_assert_int_eq(sl_record_count(r), 0);
    ck_assert_sl_ok(sl_record_set(r, "other", 3.0));
    double v;
    ck_assert_sl_fails(sl_record_get(r, "loss", &v), SL_ENOTFOUND, "loss");
    ck_assert_sl_ok(sl_record_get(r, "other", &v));
    ck_assert_double_eq(v, 3.0);
    sl_record_free(r);
}
END_TEST

static Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, alloc_is_zeroed_contiguous_and_aligned);
    tcase_add_test(tc, bad_shapes_are_errors);
    tcase_add_test(tc, views_share_storage_and_count_references);
    tcase_add_test(tc, copy_converts_dtypes_through_strides);
    tcase_add_test(tc, gemm_matches_naive_loops);
    tcase_add_test(tc, gemm_rejects_mismatched_shapes);
    tcase_add_test(tc, vector_ops_match_loops);
    tcase_add_test(tc, svd_reconstructs_the_matrix);
    tcase_add_test(tc, rng_is_reproducible_and_roughly_uniform);
    tcase_add_test(tc, records_keep_order_and_reuse_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(tensor_suite()); }
