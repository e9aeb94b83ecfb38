/* tests/check_parallel.c — the thread pool (symlab/parallel.h) and the GEMMs
 * split over it: the documented partition, every item visited once,
 * nested and concurrent loops, and bit-identical results for a given
 * thread count. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>

#include "testutil.h"

#define MAXN 5000

typedef struct visit {
    _Atomic int count[MAXN];
    int64_t begin[64], end[64];
    _Atomic int calls;
} visit;

static void record(void *ctx, int64_t begin, int64_t end, int part)
{
    visit *v = ctx;
    if (part < 0 || part >= 64)
        abort();
    v->begin[part] = begin;
    v->end[part] = end;
    for (int64_t i = begin; i < end; i++)
        atomic_fetch_add(&v->count[i], 1);
    atomic_fetch_add(&v->calls, 1);
}

/* The partition is the header's formula, parts are contiguous, in order,
 * and cover [0, n) once, for many n, grains and thread counts. */
START_TEST(test_partition)
{
    static const int64_t ns[] = {0, 1, 2, 3, 7, 16, 100, 1023, 4999};
    static const int64_t grains[] = {0, 1, 3, 64, 10000};
    for (int threads = 1; threads <= 5; threads++) {
        sl_set_threads(threads);
        for (size_t a = 0; a < (sizeof ns / sizeof ns[0]); a++)
            for (size_t b = 0; b < (sizeof grains / sizeof grains[0]); b++) {
                int64_t n = ns[a], g = grains[b] < 1 ? 1 : grains[b];
                visit *v = calloc(1, sizeof *v);
                ck_assert_ptr_nonnull(v);
                int parts = sl_parallel_parts(n, grains[b]);
                int64_t want = n <= 0 ? 0 : n / g < 1 ? 1 : n / g;
                if (want > threads)
                    want = threads;
                ck_assert_int_eq(parts, want);
                sl_parallel_for(n, grains[b], record, v);
                ck_assert_int_eq(atomic_load(&v->calls), parts);
                for (int p = 0; p < parts; p++) {
                    ck_assert_int_eq(v->begin[p], p * n / parts);
                    ck_assert_int_eq(v->end[p], (p + 1) * n / parts);
                }
                int64_t wrong = 0;
                for (int64_t i = 0; i < n; i++)
                    wrong += atomic_load(&v->count[i]) != 1;
                ck_assert_int_eq(wrong, 0);
                free(v);
            }
    }
    sl_set_threads(1);
}
END_TEST

/* A sum whose rounding depends on the partition: per-part partial sums in
 * part order.  Same thread count, same bits, over many repetitions (the
 * threads that run the parts differ from call to call). */
typedef struct sum_ctx {
    const double *x;
    double partial[64];
} sum_ctx;

static void partial_sum(void *ctx, int64_t begin, int64_t end, int part)
{
    sum_ctx *s = ctx;
    double acc = 0.0;
    for (int64_t i = begin; i < end; i++)
        acc += s->x[i];
    s->partial[part] = acc;
}

static double pool_sum(const double *x, int64_t n)
{
    sum_ctx s = {.x = x};
    sl_parallel_for(n, 100, partial_sum, &s);
    double total = 0.0;
    for (int p = 0; p < sl_parallel_parts(n, 100); p++)
        total += s.partial[p];
    return total;
}

START_TEST(test_reduction_deterministic)
{
    enum { N = 100000 };
    double *x = malloc(N * sizeof *x);
    ck_assert_ptr_nonnull(x);
    sl_rng rng;
    sl_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++)
        x[i] = sl_rng_normal(&rng) * pow(10.0, (double)(i % 17) - 8.0);
    for (int threads = 1; threads <= 4; threads++) {
        sl_set_threads(threads);
        double first = pool_sum(x, N);
        for (int rep = 0; rep < 200; rep++) {
            double again = pool_sum(x, N);
            ck_assert_msg(memcmp(&first, &again, sizeof first) == 0,
                          "threads %d rep %d: %.17g != %.17g", threads, rep, first, again);
        }
    }
    sl_set_threads(1);
    free(x);
}
END_TEST

/* A loop inside a part runs inline, with the same partition. */
static void nested(void *ctx, int64_t begin, int64_t end, int part)
{
    visit *v = ctx;
    for (int64_t i = begin; i < end; i++) {
        visit *inner = calloc(1, sizeof *inner);
        if (!inner)
            abort();
        sl_parallel_for(10, 1, record, inner);
        bool ok = atomic_load(&inner->calls) == sl_parallel_parts(10, 1);
        for (int k = 0; k < 10; k++)
            ok = ok && atomic_load(&inner->count[k]) == 1;
        free(inner);
        /* Counted twice (a wrong count) if the inner loop misbehaved. */
        atomic_fetch_add(&v->count[i], ok ? 1 : 2);
    }
    (void)part;
}

START_TEST(test_nested)
{
    sl_set_threads(3);
    visit *v = calloc(1, sizeof *v);
    ck_assert_ptr_nonnull(v);
    sl_parallel_for(30, 1, nested, v);
    for (int i = 0; i < 30; i++)
        ck_assert_int_eq(atomic_load(&v->count[i]), 1);
    free(v);
    sl_set_threads(1);
}
END_TEST

/* Two threads of the program running loops at once: each completes, each
 * item once (one of them runs inline). */
static void *loop_thread(void *arg)
{
    for (int rep = 0; rep < 200; rep++) {
        visit *v = calloc(1, sizeof *v);
        ck_assert_ptr_nonnull(v);
        sl_parallel_for(MAXN, 1, record, v);
        int wrong = 0;
        for (int i = 0; i < MAXN; i++)
            wrong += atomic_load(&v->count[i]) != 1;
        free(v);
        ck_assert_int_eq(wrong, 0);
    }
    (void)arg;
    return NULL;
}

START_TEST(test_concurrent_callers)
{
    sl_set_threads(2);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, loop_thread, NULL), 0);
    loop_thread(NULL);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    sl_set_threads(1);
}
END_TEST

/* GEMMs large enough to be split: the same bits on every call at a given
 * thread count, and within rounding of the one-thread result (an element
 * is computed by one call over the full k whatever the split). */
static void fill(float *a, int64_t n, uint64_t seed)
{
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++)
        a[i] = (float)sl_rng_normal(&rng);
}

START_TEST(test_gemm_split)
{
    static const struct {
        bool ta, tb;
        int64_t m, n, k;
    } shapes[] = {
        {false, true, 64, 256, 784},  /* forward x @ W^T */
        {true, false, 256, 784, 64},  /* weight gradient g^T @ x */
        {false, false, 64, 784, 256}, /* input gradient g @ W */
        {false, false, 517, 33, 300}, /* split by rows, ragged */
    };
    for (size_t s = 0; s < (sizeof shapes / sizeof shapes[0]); s++) {
        int64_t m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        bool ta = shapes[s].ta, tb = shapes[s].tb;
        float *a = malloc((size_t)(m * k) * sizeof *a), *b = malloc((size_t)(k * n) * sizeof *b);
        float *c1 = malloc((size_t)(m * n) * sizeof *c1), *c2 = malloc((size_t)(m * n) * sizeof *c2);
        ck_assert(a && b && c1 && c2);
        fill(a, m * k, 1);
        fill(b, k * n, 2);
        int64_t lda = ta ? m : k, ldb = tb ? k : n;
        sl_set_threads(1);
        fill(c1, m * n, 3);
        sl_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c1, n);
        for (int threads = 2; threads <= 3; threads++) {
            sl_set_threads(threads);
            float *ref = NULL;
            for (int rep = 0; rep < 5; rep++) {
                fill(c2, m * n, 3);
                sl_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c2, n);
                float worst = 0.0f;
                for (int64_t i = 0; i < m * n; i++) {
                    float d = fabsf(c1[i] - c2[i]) / (1.0f + fabsf(c1[i]));
                    worst = d > worst ? d : worst;
                }
                ck_assert_msg(worst <= 1e-4f, "shape %zu threads %d: relative difference %g",
                              s, threads, (double)worst);
                if (!ref) {
                    ref = malloc((size_t)(m * n) * sizeof *ref);
                    ck_assert_ptr_nonnull(ref);
                    memcpy(ref, c2, (size_t)(m * n) * sizeof *ref);
                } else {
                    ck_assert(memcmp(ref, c2, (size_t)(m * n) * sizeof *ref) == 0);
                }
            }
            free(ref);
        }
        sl_set_threads(1);
        free(a), free(b), free(c1), free(c2);
    }
}
END_TEST

static Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, test_partition);
    tcase_add_test(tc, test_reduction_deterministic);
    tcase_add_test(tc, test_nested);
    tcase_add_test(tc, test_concurrent_callers);
    tcase_add_test(tc, test_gemm_split);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(parallel_suite()); }
