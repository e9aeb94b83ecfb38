/* tests/testutil.h — shared by the Check suites. */
#ifndef SYMLAB_TESTUTIL_H
#define SYMLAB_TESTUTIL_H

#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <symlab/symlab.h>

#include "gradcheck.h"

/* Asserts that a symlab call succeeded, printing sl_last_error() if not. */
#define ck_assert_sl_ok(expr)                                                          \
    do {                                                                               \
        int ck_sl_rc_ = (expr);                                                        \
        ck_assert_msg(ck_sl_rc_ == SL_OK, "%s failed: %d (%s)", #expr, ck_sl_rc_,      \
                      sl_last_error());                                                \
    } while (0)

/* Asserts a specific failure code and that the message contains `needle`. */
#define ck_assert_sl_fails(expr, code, needle)                                         \
    do {                                                                               \
        int ck_sl_rc_ = (expr);                                                        \
        ck_assert_msg(ck_sl_rc_ == (code), "%s returned %d, wanted %d (%s)", #expr,    \
                      ck_sl_rc_, (code), sl_last_error());                             \
        ck_assert_msg(strstr(sl_last_error(), (needle)) != NULL,                       \
                      "error '%s' does not mention '%s'", sl_last_error(), (needle));  \
    } while (0)

/* Options parsed from "key=value,key=value" text; NULL or "" gives none. */
static inline sl_options *sl_test_options(const char *text)
{
    sl_options *o = sl_options_new();
    ck_assert_ptr_nonnull(o);
    if (text && *text)
        ck_assert_sl_ok(sl_options_parse(o, text));
    return o;
}

/* Appends a linear layer in -> out (with or without a bias) to m. */
static inline void sl_test_add_linear(sl_model *m, int64_t in, int64_t out, bool bias)
{
    sl_options *o = sl_options_new();
    ck_assert_sl_ok(sl_options_set_int(o, "in_features", in));
    ck_assert_sl_ok(sl_options_set_int(o, "out_features", out));
    ck_assert_sl_ok(sl_options_set_bool(o, "bias", bias));
    ck_assert_sl_ok(sl_model_add(m, "linear", o));
    sl_options_free(o);
}

/* A built model from (type, options-text) pairs ending with NULL; options
 * "" or NULL for the type's defaults.  Registers the built-ins and plugins
 * first. */
static inline sl_model *sl_test_model(sl_dtype dtype, uint64_t seed, const char *const *spec)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    for (int i = 0; spec[i]; i += 2) {
        sl_options *o = sl_test_options(spec[i + 1]);
        ck_assert_sl_ok(sl_model_add(m, spec[i], o));
        sl_options_free(o);
    }
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

/* Runs probe `name` with options `text` on m and d; the caller frees the
 * record. */
static inline sl_record *sl_test_probe(const char *name, const char *text, sl_model *m,
                                       const sl_dataset *d)
{
    sl_record *r = sl_record_new();
    ck_assert_ptr_nonnull(r);
    sl_options *o = sl_test_options(text);
    ck_assert_sl_ok(sl_probe_run(name, o, m, d, r));
    sl_options_free(o);
    return r;
}

/* The record's value of `name`, failing the test if it is absent. */
static inline double sl_test_get(const sl_record *r, const char *name)
{
    double v;
    ck_assert_msg(sl_record_get(r, name, &v) == SL_OK, "no '%s' in the record", name);
    return v;
}

/* A classification set for tests: x (n, f) f32 filled by gradcheck_fill
 * from seed, y (n) = the argmax over `classes` of the fixed linear map
 * sum_j x_j sin(c f + j + 1).  The caller releases it. */
static inline sl_dataset sl_test_toy_data(int64_t n, int64_t f, int64_t classes, uint64_t seed)
{
    sl_dataset d = {0};
    sl_rng rng;
    sl_rng_seed(&rng, seed);
    ck_assert_sl_ok(sl_tensor_alloc(&d.x, SL_F32, 2, (const int64_t[]){n, f}));
    gradcheck_fill(&d.x, &rng);
    ck_assert_sl_ok(sl_tensor_alloc(&d.y, SL_I64, 1, &n));
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        double best_v = -INFINITY;
        for (int64_t c = 0; c < classes; c++) {
            double v = 0;
            for (int64_t j = 0; j < f; j++)
                v += sl_tensor_flat_get(&d.x, i * f + j) * sin((double)(c * f + j + 1));
            if (v > best_v) {
                best_v = v;
                best = c;
            }
        }
        ((int64_t *)d.y.data)[i] = best;
    }
    return d;
}

/* Max |a - b| / max(1, |a|) over the outputs of two models on one input x
 * (in either model's dtype). */
static inline double sl_test_output_gap(sl_model *a, sl_model *b, const sl_tensor *x)
{
    const sl_tensor *ya, *yb;
    sl_tensor keep = {0};
    ck_assert_sl_ok(sl_model_forward(a, x, &ya));
    ck_assert_sl_ok(sl_tensor_alloc(&keep, SL_F64, ya->ndim, ya->shape));
    ck_assert_sl_ok(sl_tensor_copy(&keep, ya));
    ck_assert_sl_ok(sl_model_forward(b, x, &yb));
    double gap = 0;
    for (int64_t i = 0; i < sl_tensor_numel(&keep); i++) {
        double u = sl_tensor_flat_get(&keep, i), v = sl_tensor_flat_get(yb, i);
        gap = fmax(gap, fabs(u - v) / fmax(1.0, fabs(u)));
    }
    sl_tensor_release(&keep);
    return gap;
}

/* An int64_t shape literal and its length: SHAPE(2, 3, 5), NDIM(2, 3, 5). */
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

/* Checks module type `type` with options `text` against finite differences
 * (gradcheck.h) on an input of `shape`, failing above GRADCHECK_TOL. */
static inline void sl_test_gradcheck(const char *label, const char *type, const char *text,
                                     bool eval, uint64_t seed, double jitter, int ndim,
                                     const int64_t *shape)
{
    sl_options *o = sl_test_options(text);
    gradcheck_args a = {.type = type, .opt = o, .ndim = ndim, .seed = seed, .label = label,
                        .eval = eval, .jitter = jitter};
    for (int i = 0; i < ndim; i++)
        a.shape[i] = shape[i];
    gradcheck_report r;
    ck_assert_sl_ok(gradcheck_module(&a, &r));
    ck_assert_msg(r.max_rel_err <= GRADCHECK_TOL, "gradcheck %s: max rel err %g > %g", label,
                  r.max_rel_err, GRADCHECK_TOL);
    sl_options_free(o);
}

/* Writes n bytes to path (created or replaced), failing the test on error. */
static inline void sl_test_write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* "<dir>/<name>" in one of 8 static buffers used in turn: a few such paths
 * can be alive at once, so copy one that must outlive later calls. */
static inline const char *sl_test_path(const char *dir, const char *name)
{
    static char bufs[8][512];
    static int next;
    char *p = bufs[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* ---- temporary files -------------------------------------------------------
 * A failed ck_assert ends the forked test process at once, so cleanup at the
 * end of a test, or in a checked teardown (which runs in that process), is
 * skipped.  sl_test_add_tmpdir(tc) instead gives the TCase one directory that
 * the runner process makes before the TCase's tests and removes, with all it
 * holds, after them (an unchecked fixture), pass or fail; a checked setup
 * gives each test a fresh, empty subdirectory of it: sl_test_tmpdir(). */

static inline char *sl_test_tmproot_buf(void)
{
    static char root[256];
    return root;
}

static inline char *sl_test_tmpdir_buf(void)
{
    static char dir[320];
    return dir;
}

/* The current test's directory (valid in tests of a TCase given
 * sl_test_add_tmpdir). */
static inline const char *sl_test_tmpdir(void)
{
    return sl_test_tmpdir_buf();
}

/* sl_test_tmpdir()/name (sl_test_path's rotating buffers). */
static inline const char *sl_test_tmp_path(const char *name)
{
    return sl_test_path(sl_test_tmpdir(), name);
}

static inline void sl_test_tmproot_make(void)
{
    char *root = sl_test_tmproot_buf();
    const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(root, 256, "%s/symlab-check-XXXXXX", base);
    ck_assert_msg(mkdtemp(root) != NULL, "cannot make a temporary directory in %s", base);
}

static inline int sl_test_remove_entry(const char *path, const struct stat *st, int flag,
                                       struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static inline void sl_test_tmproot_remove(void)
{
    char *root = sl_test_tmproot_buf();
    if (root[0])
        nftw(root, sl_test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
}

static inline void sl_test_tmpdir_make(void)
{
    char *dir = sl_test_tmpdir_buf();
    snprintf(dir, 320, "%s/test-XXXXXX", sl_test_tmproot_buf());
    ck_assert_msg(mkdtemp(dir) != NULL, "cannot make a directory in %s", sl_test_tmproot_buf());
}

/* Gives tc's tests sl_test_tmpdir() and removes it however they end. */
static inline void sl_test_add_tmpdir(TCase *tc)
{
    tcase_add_unchecked_fixture(tc, sl_test_tmproot_make, sl_test_tmproot_remove);
    tcase_add_checked_fixture(tc, sl_test_tmpdir_make, NULL);
}

/* Runs a suite in fork mode (a crash fails one test, not the runner) and
 * returns the process exit status. */
static inline int sl_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
