/* Data layer: the shipped MNIST-10k, IDX and CSV readers on good and broken
 * files, subsets, splits, normalisation and deterministic batching.
 *
 * Reference values come from independent code here: the IDX files are read
 * back byte by byte through zlib, written by a writer of this file, and the
 * statistics are recomputed with naive loops. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

#define MNIST_DIR SL_TEST_SRCDIR "/data/mnist10k"
#define FASHION_DIR SL_TEST_SRCDIR "/../shared/data/fashion-mnist"

/* ------------------------------------------------------------ helpers */

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static size_t put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
    return (size_t)n;
}

/* An IDX file image in buf: header for (type, dims) then `payload`. */
static size_t idx_image(uint8_t *buf, uint8_t type, int ndim, const int32_t *dims,
                        const void *payload, size_t payload_len)
{
    size_t k = 0;
    buf[k++] = 0;
    buf[k++] = 0;
    buf[k++] = type;
    buf[k++] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        k += put_be(buf + k, (uint32_t)dims[i], 4);
    memcpy(buf + k, payload, payload_len);
    return k + payload_len;
}

/* A 3-d u8 image file of n images h x w with pixel (i, r, c) = pix(i, r, c). */
static uint8_t pix(int i, int r, int c) { return (uint8_t)(i * 37 + r * 11 + c * 3); }

static size_t images_file(uint8_t *buf, int n, int h, int w)
{
    uint8_t data[4096];
    size_t k = 0;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++)
                data[k++] = pix(i, r, c);
    int32_t dims[3] = {n, h, w};
    return idx_image(buf, 0x08, 3, dims, data, k);
}

static size_t labels_file(uint8_t *buf, int n)
{
    uint8_t data[256];
    for (int i = 0; i < n; i++)
        data[i] = (uint8_t)(i % 10);
    int32_t dims[1] = {n};
    return idx_image(buf, 0x08, 1, dims, data, (size_t)n);
}

/* A dataset of n rows with x[i, j] = i * 10 + j (width columns) and y[i] = i. */
static void counting_dataset(sl_dataset *d, int64_t n, int64_t width)
{
    int64_t xs[2] = {n, width}, ys[1] = {n};
    ck_assert_sl_ok(sl_tensor_alloc(&d->x, SL_F32, 2, xs));
    ck_assert_sl_ok(sl_tensor_alloc(&d->y, SL_I64, 1, ys));
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < width; j++)
            ((float *)d->x.data)[i * width + j] = (float)(i * 10 + j);
        ((int64_t *)d->y.data)[i] = i;
    }
}

/* ------------------------------------------------------------ shipped MNIST */

/* Checks an IDX dataset split against the raw file, read independently. */
static void check_mnist_like(const char *dir, const char *images_name, const char *split,
                             int64_t n_expect)
{
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_dataset_idx_dir(dir, split, &d));
    ck_assert_int_eq(sl_dataset_size(&d), n_expect);
    ck_assert_int_eq(d.x.dtype, SL_F32);
    ck_assert_int_eq(d.x.ndim, 4);
    ck_assert_int_eq(d.x.shape[0], n_expect);
    ck_assert_int_eq(d.x.shape[1], 1);
    ck_assert_int_eq(d.x.shape[2], 28);
    ck_assert_int_eq(d.x.shape[3], 28);
    ck_assert_int_eq(d.y.dtype, SL_I64);
    ck_assert_int_eq(d.y.ndim, 1);
    ck_assert_int_eq(d.y.shape[0], n_expect);

    /* Every pixel equals the raw byte / 255, read here through zlib. */
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, images_name);
    gzFile f = gzopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t header[16];
    ck_assert_int_eq(gzread(f, header, 16), 16);
    int64_t npix = n_expect * 28 * 28;
    uint8_t *raw = malloc((size_t)npix);
    ck_assert_int_eq(gzread(f, raw, (unsigned)npix), (int)npix);
    gzclose(f);
    /* (One assertion per loop: each Check assertion costs a pipe write.) */
    const float *x = d.x.data;
    float lo = 1, hi = 0;
    int64_t wrong = 0;
    for (int64_t i = 0; i < npix; i++) {
        wrong += x[i] != (float)raw[i] / 255.0f;
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    free(raw);
    ck_assert_int_eq(wrong, 0);
    ck_assert(lo >= 0.0f && hi <= 1.0f && hi > 0.5f);

    int64_t count[10] = {0}, out_of_range = 0;
    const int64_t *y = d.y.data;
    for (int64_t i = 0; i < n_expect; i++) {
        if (y[i] >= 0 && y[i] <= 9)
            count[y[i]]++;
        else
            out_of_range++;
    }
    ck_assert_int_eq(out_of_range, 0);
    for (int k = 0; k < 10; k++)
        ck_assert_msg(count[k] > 0, "class %d absent", k);
    sl_dataset_release(&d);
}

START_TEST(shipped_mnist_train)
{
    check_mnist_like(MNIST_DIR, "mnist10k-train-images-idx3-ubyte.gz", "train", 8000);
}
END_TEST

START_TEST(shipped_mnist_test)
{
    check_mnist_like(MNIST_DIR, "mnist10k-test-images-idx3-ubyte.gz", "test", 2000);
}
END_TEST

/* Images an IDX3 u8 file's header promises and whole images it holds,
 * counted here through zlib. */
static void idx_images_in(const char *path, int64_t *promised, int64_t *held)
{
    gzFile f = gzopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    uint8_t h[16];
    ck_assert_int_eq(gzread(f, h, 16), 16);
    int64_t rows = (int64_t)h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11];
    int64_t cols = (int64_t)h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15];
    *promised = (int64_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
    static char chunk[1 << 16];
    int64_t bytes = 0;
    for (int k; (k = gzread(f, chunk, sizeof chunk)) > 0;)
        bytes += k;
    gzclose(f);
    *held = bytes / (rows * cols);
}

START_TEST(fashion_mnist_if_present)
{
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("fashion-mnist: skipped (%s not found)\n", FASHION_DIR);
        return;
    }
    check_mnist_like(FASHION_DIR, "fashion-test-images-idx3-ubyte.gz", "test", 10000);
    /* The train images must load if the file holds what its header says, and
     * be refused as truncated if it holds less (the developers' copy
     * promises 60002 images and holds 60000). */
    const char *train = FASHION_DIR "/fashion-train-images-idx3-ubyte.gz";
    int64_t promised, held;
    idx_images_in(train, &promised, &held);
    sl_dataset d = {0};
    if (held == promised) {
        ck_assert_sl_ok(sl_dataset_idx_dir(FASHION_DIR, "train", &d));
        ck_assert_int_eq(sl_dataset_size(&d), promised);
        sl_dataset_release(&d);
    } else {
        ck_assert_int_lt(held, promised);
        ck_assert_sl_fails(sl_dataset_idx_dir(FASHION_DIR, "train", &d), SL_EFORMAT, train);
        ck_assert_ptr_nonnull(strstr(sl_last_error(), "truncated"));
        printf("fashion-mnist: train images refused as they should be: %s\n", sl_last_error());
    }
}
END_TEST

/* ------------------------------------------------------------ IDX files */

static void check_small_images(const sl_tensor *t, int n, int h, int w)
{
    ck_assert_int_eq(t->dtype, SL_U8);
    ck_assert_int_eq(t->ndim, 3);
    ck_assert_int_eq(t->shape[0], n);
    ck_assert_int_eq(t->shape[1], h);
    ck_assert_int_eq(t->shape[2], w);
    const uint8_t *p = t->data;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++)
                ck_assert_uint_eq(*p++, pix(i, r, c));
}

START_TEST(idx_round_trip_plain_and_gzip)
{
    uint8_t buf[8192];
    size_t n = images_file(buf, 5, 4, 3);
    write_bytes(sl_test_tmp_path("a-idx3-ubyte"), buf, n);
    write_gz(sl_test_tmp_path("a-idx3-ubyte.gz"), buf, n);
    sl_tensor t = {0};
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("a-idx3-ubyte"), &t));
    check_small_images(&t, 5, 4, 3);
    sl_tensor_release(&t);
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("a-idx3-ubyte.gz"), &t));
    check_small_images(&t, 5, 4, 3);
    sl_tensor_release(&t);
}
END_TEST

START_TEST(idx_wide_types_are_big_endian)
{
    uint8_t payload[64], buf[128];
    int32_t dims[2] = {2, 2};
    size_t k = 0;
    /* i16: -2, 300, -32768, 7 */
    const int16_t i16[4] = {-2, 300, -32768, 7};
    for (int i = 0; i < 4; i++)
        k += put_be(payload + k, (uint16_t)i16[i], 2);
    write_bytes(sl_test_tmp_path("i16"), buf, idx_image(buf, 0x0B, 2, dims, payload, k));
    sl_tensor t = {0};
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("i16"), &t));
    ck_assert_int_eq(t.dtype, SL_I64);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(((int64_t *)t.data)[i], i16[i]);
    sl_tensor_release(&t);

    /* i8 and i32 */
    const int8_t i8[4] = {-128, -1, 0, 127};
    write_bytes(sl_test_tmp_path("i8"), buf, idx_image(buf, 0x09, 2, dims, i8, 4));
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("i8"), &t));
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(((int64_t *)t.data)[i], i8[i]);
    sl_tensor_release(&t);
    const int32_t i32[4] = {INT32_MIN, -70000, 70000, INT32_MAX};
    k = 0;
    for (int i = 0; i < 4; i++)
        k += put_be(payload + k, (uint32_t)i32[i], 4);
    write_bytes(sl_test_tmp_path("i32"), buf, idx_image(buf, 0x0C, 2, dims, payload, k));
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("i32"), &t));
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(((int64_t *)t.data)[i], i32[i]);
    sl_tensor_release(&t);

    /* f32 and f64 */
    const float f32[4] = {1.5f, -0.25f, 3e-8f, 1e30f};
    const double f64[4] = {1.0 / 3.0, -2.5e-300, 0.0, 6.02e23};
    k = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t u;
        memcpy(&u, &f32[i], 4);
        k += put_be(payload + k, u, 4);
    }
    write_bytes(sl_test_tmp_path("f32"), buf, idx_image(buf, 0x0D, 2, dims, payload, k));
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("f32"), &t));
    ck_assert_int_eq(t.dtype, SL_F32);
    ck_assert_mem_eq(t.data, f32, sizeof f32);
    sl_tensor_release(&t);
    k = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t u;
        memcpy(&u, &f64[i], 8);
        k += put_be(payload + k, u, 8);
    }
    write_gz(sl_test_tmp_path("f64.gz"), buf, idx_image(buf, 0x0E, 2, dims, payload, k));
    ck_assert_sl_ok(sl_idx_read(sl_test_tmp_path("f64.gz"), &t));
    ck_assert_int_eq(t.dtype, SL_F64);
    ck_assert_mem_eq(t.data, f64, sizeof f64);
    sl_tensor_release(&t);
}
END_TEST

/* Writes `n` bytes of buf to sl_test_tmpdir()/name and expects sl_idx_read to fail
 * with `code` and a message naming the file and containing `what`. */
static void expect_idx_fails(const char *name, const void *buf, size_t n, int code,
                             const char *what)
{
    const char *path = sl_test_tmp_path(name);
    write_bytes(path, buf, n);
    sl_tensor t = {0};
    ck_assert_sl_fails(sl_idx_read(path, &t), code, path);
    ck_assert_msg(strstr(sl_last_error(), what), "'%s' lacks '%s'", sl_last_error(), what);
    ck_assert_ptr_null(t.data);
}

START_TEST(idx_broken_files_are_rejected)
{
    uint8_t good[8192], bad[8192];
    size_t n = images_file(good, 5, 4, 3); /* header 16 bytes + 60 */

    expect_idx_fails("empty", good, 0, SL_EFORMAT, "truncated IDX header");
    expect_idx_fails("short-magic", good, 3, SL_EFORMAT, "truncated IDX header");
    expect_idx_fails("short-extents", good, 10, SL_EFORMAT, "truncated IDX header");
    expect_idx_fails("short-data", good, n - 1, SL_EFORMAT, "truncated");
    expect_idx_fails("header-only", good, 16, SL_EFORMAT, "truncated");

    memcpy(bad, good, n);
    bad[0] = 0x1f;
    expect_idx_fails("bad-magic", bad, n, SL_EFORMAT, "bad magic");
    memcpy(bad, good, n);
    bad[2] = 0x42;
    expect_idx_fails("bad-type", bad, n, SL_EFORMAT, "unknown IDX element type 0x42");
    memcpy(bad, good, n);
    bad[3] = 0;
    expect_idx_fails("ndim0", bad, n, SL_EFORMAT, "ndim 0");
    bad[3] = SL_MAX_DIMS;
    expect_idx_fails("ndim-big", bad, n, SL_EFORMAT, "ndim");
    memcpy(bad, good, n);
    put_be(bad + 8, 0, 4);
    expect_idx_fails("zero-extent", bad, n, SL_EFORMAT, "must be > 0");
    put_be(bad + 8, 0xfffffffe, 4);
    expect_idx_fails("negative-extent", bad, n, SL_EFORMAT, "must be > 0");
    memcpy(bad, good, n);
    put_be(bad + 4, 0x7fffffff, 4);
    put_be(bad + 8, 0x7fffffff, 4);
    put_be(bad + 12, 0x7fffffff, 4);
    expect_idx_fails("huge", bad, n, SL_EFORMAT, "promise more than");
    /* A large but in-limit promise with little data: truncated, not ENOMEM. */
    put_be(bad + 12, 16, 4);
    put_be(bad + 8, 1024, 4);
    put_be(bad + 4, 1024 * 64, 4);
    expect_idx_fails("lying", bad, n, SL_EFORMAT, "truncated");

    memcpy(bad, good, n);
    bad[n] = 7;
    expect_idx_fails("trailing", bad, n + 1, SL_EFORMAT, "trailing bytes");

    sl_tensor t = {0};
    const char *missing = sl_test_tmp_path("does-not-exist");
    ck_assert_sl_fails(sl_idx_read(missing, &t), SL_EIO, missing);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "No such file"));
}
END_TEST

START_TEST(idx_corrupt_gzip_is_rejected)
{
    /* Enough images that the compressed stream has a middle to damage. */
    static uint8_t buf[1 << 16];
    int32_t dims[3] = {40, 28, 28};
    static uint8_t data[40 * 28 * 28];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof data; i++) {
        s = s * 1103515245u + 12345u;
        data[i] = (uint8_t)((s >> 16) & 0x3f);
    }
    size_t n = idx_image(buf, 0x08, 3, dims, data, sizeof data);
    const char *path = sl_test_tmp_path("images.gz");
    write_gz(path, buf, n);
    size_t gzlen;
    uint8_t *gz = read_all(path, &gzlen);
    ck_assert_uint_gt(gzlen, 1000);

    sl_tensor t = {0};
    ck_assert_sl_ok(sl_idx_read(path, &t));
    sl_tensor_release(&t);

    /* Flipped bytes in the middle. */
    for (size_t i = gzlen / 2; i < gzlen / 2 + 8; i++)
        gz[i] ^= 0xff;
    const char *flipped = sl_test_tmp_path("flipped.gz");
    write_bytes(flipped, gz, gzlen);
    ck_assert_sl_fails(sl_idx_read(flipped, &t), SL_EFORMAT, flipped);
    ck_assert_ptr_null(t.data);

    /* Damaged checksum only: the data decode fine but the trailer is wrong. */
    for (size_t i = gzlen / 2; i < gzlen / 2 + 8; i++)
        gz[i] ^= 0xff;
    gz[gzlen - 6] ^= 0x01;
    const char *crc = sl_test_tmp_path("crc.gz");
    write_bytes(crc, gz, gzlen);
    ck_assert_sl_fails(sl_idx_read(crc, &t), SL_EFORMAT, crc);

    /* A gzip stream cut short. */
    gz[gzlen - 6] ^= 0x01;
    const char *cut = sl_test_tmp_path("cut.gz");
    write_bytes(cut, gz, gzlen / 2);
    ck_assert_sl_fails(sl_idx_read(cut, &t), SL_EFORMAT, cut);
    free(gz);
}
END_TEST

START_TEST(idx_dataset_pairs_files)
{
    uint8_t buf[8192];
    write_gz(sl_test_tmp_path("toy-train-images-idx3-ubyte.gz"), buf, images_file(buf, 6, 2, 3));
    write_bytes(sl_test_tmp_path("toy-train-labels-idx1-ubyte"), buf, labels_file(buf, 6));
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_dataset_idx_dir(sl_test_tmpdir(), "train", &d));
    ck_assert_int_eq(sl_dataset_size(&d), 6);
    ck_assert_int_eq(d.x.ndim, 4);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(((int64_t *)d.y.data)[i], i % 10);
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 3; c++) {
                int64_t idx[4] = {i, 0, r, c};
                ck_assert_double_eq(sl_tensor_get(&d.x, idx), (float)pix(i, r, c) / 255.0f);
            }
    }
    sl_dataset_release(&d);

    /* No test split yet; then MNIST's t10k naming. */
    ck_assert_sl_fails(sl_dataset_idx_dir(sl_test_tmpdir(), "test", &d), SL_ENOTFOUND,
                       sl_test_tmpdir());
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "test-images-idx3-ubyte"));
    write_bytes(sl_test_tmp_path("t10k-images-idx3-ubyte"), buf, images_file(buf, 3, 2, 3));
    write_bytes(sl_test_tmp_path("t10k-labels-idx1-ubyte"), buf, labels_file(buf, 3));
    ck_assert_sl_ok(sl_dataset_idx_dir(sl_test_tmpdir(), "test", &d));
    ck_assert_int_eq(sl_dataset_size(&d), 3);
    sl_dataset_release(&d);

    /* Two candidates: ambiguous. */
    write_bytes(sl_test_tmp_path("toy-train-images-idx3-ubyte"), buf, images_file(buf, 6, 2, 3));
    ck_assert_sl_fails(sl_dataset_idx_dir(sl_test_tmpdir(), "train", &d), SL_EINVAL,
                       sl_test_tmpdir());
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "toy-train-images-idx3-ubyte"));

    /* Counts that disagree name both files. */
    const char *img = sl_test_tmp_path("m-images"), *lab = sl_test_tmp_path("m-labels");
    write_bytes(img, buf, images_file(buf, 6, 2, 3));
    write_bytes(lab, buf, labels_file(buf, 5));
    ck_assert_sl_fails(sl_dataset_idx(img, lab, &d), SL_EFORMAT, img);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), lab));
    ck_assert_ptr_null(d.x.data);

    /* A negative label in a signed labels file (i8, i16, i32) names its value
     * and entry.  Entry 0, because freeing the tensor before formatting the
     * message (an old bug) overwrites exactly the first bytes of the block. */
    write_bytes(img, buf, images_file(buf, 2, 2, 3));
    const int8_t neg8[2] = {-3, 1};
    write_bytes(lab, buf, idx_image(buf, 0x09, 1, (const int32_t[]){2}, neg8, 2));
    ck_assert_sl_fails(sl_dataset_idx(img, lab, &d), SL_EFORMAT,
                       "label -3 of entry 0 is negative");
    uint8_t neg32[8];
    put_be(neg32, (uint32_t)-70000, 4);
    put_be(neg32 + 4, 4, 4);
    write_bytes(lab, buf, idx_image(buf, 0x0C, 1, (const int32_t[]){2}, neg32, 8));
    ck_assert_sl_fails(sl_dataset_idx(img, lab, &d), SL_EFORMAT, "label -70000 of entry 0");
    ck_assert_ptr_null(d.y.data);

    /* Labels given as images and vice versa. */
    ck_assert_sl_fails(sl_dataset_idx(lab, lab, &d), SL_EFORMAT, lab);
    ck_assert_sl_fails(sl_dataset_idx("/nonexistent/dir/x", lab, &d), SL_EIO,
                       "/nonexistent/dir/x");
    ck_assert_sl_fails(sl_dataset_idx_dir("/nonexistent/dir", "train", &d), SL_EIO,
                       "/nonexistent/dir");
}
END_TEST

/* ------------------------------------------------------------ CSV */

START_TEST(csv_good_files)
{
    const char *path = sl_test_tmp_path("good.csv");
    write_text(path, "a,b,label\r\n1.5, -2 ,3\r\n0,1e3,0\r\n\r\n\n");
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_dataset_csv(path, true, -1, true, &d));
    ck_assert_int_eq(sl_dataset_size(&d), 2);
    ck_assert_int_eq(d.x.ndim, 2);
    ck_assert_int_eq(d.x.shape[1], 2);
    ck_assert_int_eq(d.x.dtype, SL_F32);
    const float *x = d.x.data;
    ck_assert_float_eq(x[0], 1.5f);
    ck_assert_float_eq(x[1], -2.0f);
    ck_assert_float_eq(x[2], 0.0f);
    ck_assert_float_eq(x[3], 1000.0f);
    ck_assert_int_eq(d.y.dtype, SL_I64);
    ck_assert_int_eq(((int64_t *)d.y.data)[0], 3);
    ck_assert_int_eq(((int64_t *)d.y.data)[1], 0);
    sl_dataset_release(&d);

    /* No header, label first, regression targets. */
    const char *reg = sl_test_tmp_path("reg.csv");
    write_text(reg, "0.5,1,2\n-0.25,3,4");
    ck_assert_sl_ok(sl_dataset_csv(reg, false, 0, false, &d));
    ck_assert_int_eq(d.y.dtype, SL_F32);
    ck_assert_int_eq(d.y.ndim, 2);
    ck_assert_int_eq(d.y.shape[0], 2);
    ck_assert_int_eq(d.y.shape[1], 1);
    ck_assert_float_eq(((float *)d.y.data)[1], -0.25f);
    ck_assert_float_eq(((float *)d.x.data)[3], 4.0f);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(csv_bad_files_name_the_line)
{
    sl_dataset d = {0};
    char want[600];
    const char *ragged = sl_test_tmp_path("ragged.csv");
    write_text(ragged, "x1,x2,x3,x4,y\n1,2,3,4,0\n1,2,3,1\n");
    ck_assert_sl_fails(sl_dataset_csv(ragged, true, -1, true, &d), SL_EFORMAT,
                       "expected 5 columns, got 4");
    snprintf(want, sizeof want, "%s:3:", ragged);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), want));

    const char *cell = sl_test_tmp_path("cell.csv");
    write_text(cell, "1,2,0\r\n3,abc,1\r\n");
    ck_assert_sl_fails(sl_dataset_csv(cell, false, -1, true, &d), SL_EFORMAT,
                       "column 2: 'abc' is not a number");
    snprintf(want, sizeof want, "%s:2:", cell);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), want));

    const char *partial = sl_test_tmp_path("partial.csv");
    write_text(partial, "1,2,0\n1,2x,1\n");
    ck_assert_sl_fails(sl_dataset_csv(partial, false, -1, true, &d), SL_EFORMAT, "'2x'");
    write_text(partial, "1,,0\n");
    ck_assert_sl_fails(sl_dataset_csv(partial, false, -1, true, &d), SL_EFORMAT,
                       "column 2: '' is not a number");
    write_text(partial, "1,nan,0\n");
    ck_assert_sl_fails(sl_dataset_csv(partial, false, -1, true, &d), SL_EFORMAT, "'nan'");

    /* Finite as a double but not in f32, the dataset's type: refused, not inf. */
    write_text(partial, "1,2,0\n3,1e39,1\n");
    ck_assert_sl_fails(sl_dataset_csv(partial, false, -1, true, &d), SL_EFORMAT,
                       "column 2: 1e+39 is out of the f32 range");
    snprintf(want, sizeof want, "%s:2:", partial);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), want));
    write_text(partial, "1,2,0\n3,4,-1e39\n");
    ck_assert_sl_fails(sl_dataset_csv(partial, false, -1, false, &d), SL_EFORMAT,
                       ":2: column 3: -1e+39 is out of the f32 range");
    /* Text after a NUL byte is not silently dropped. */
    write_bytes(partial, "1,2,0\n3,4,1\0xx\n", 15);
    ck_assert_sl_fails(sl_dataset_csv(partial, false, -1, true, &d), SL_EFORMAT,
                       ":2: NUL byte in the line");

    const char *label = sl_test_tmp_path("label.csv");
    write_text(label, "1,2,0\n1,2,1.5\n");
    ck_assert_sl_fails(sl_dataset_csv(label, false, -1, true, &d), SL_EFORMAT, ":2:");
    write_text(label, "1,2,-1\n");
    ck_assert_sl_fails(sl_dataset_csv(label, false, 2, true, &d), SL_EFORMAT, "label");
    ck_assert_sl_fails(sl_dataset_csv(label, false, 3, true, &d), SL_EINVAL, "label column");
    ck_assert_sl_fails(sl_dataset_csv(label, false, -4, false, &d), SL_EINVAL, "label column");

    const char *gap = sl_test_tmp_path("gap.csv");
    write_text(gap, "1,2\n\n3,4\n");
    ck_assert_sl_fails(sl_dataset_csv(gap, false, -1, true, &d), SL_EFORMAT, ":2: blank line");
    const char *empty = sl_test_tmp_path("empty.csv");
    write_text(empty, "a,b\n\n");
    ck_assert_sl_fails(sl_dataset_csv(empty, true, -1, true, &d), SL_EFORMAT, "no data rows");
    ck_assert_sl_fails(sl_dataset_csv(sl_test_tmp_path("missing.csv"), true, -1, true, &d), SL_EIO,
                       "missing.csv");
    ck_assert_ptr_null(d.x.data);
}
END_TEST

/* ------------------------------------------------------------ datasets */

START_TEST(stats_and_normalize_match_naive_loops)
{
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_dataset_idx_dir(MNIST_DIR, "test", &d));
    int64_t n = sl_tensor_numel(&d.x);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; i++)
        sum += sl_tensor_flat_get(&d.x, i);
    double naive_mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double e = sl_tensor_flat_get(&d.x, i) - naive_mean;
        sq += e * e;
    }
    double naive_std = sqrt(sq / (double)n);
    double mean, std;
    ck_assert_sl_ok(sl_dataset_stats(&d, &mean, &std));
    ck_assert_double_eq_tol(mean, naive_mean, 1e-9);
    ck_assert_double_eq_tol(std, naive_std, 1e-9);

    float before[50];
    memcpy(before, (float *)d.x.data + 300, sizeof before);
    ck_assert_sl_ok(sl_dataset_normalize(&d, mean, std));
    for (int i = 0; i < 50; i++)
        ck_assert_float_eq_tol(((float *)d.x.data)[300 + i],
                               (float)((before[i] - mean) / std), 1e-6f);
    double m2, s2;
    ck_assert_sl_ok(sl_dataset_stats(&d, &m2, &s2));
    ck_assert_double_eq_tol(m2, 0.0, 1e-5);
    ck_assert_double_eq_tol(s2, 1.0, 1e-5);
    ck_assert_sl_fails(sl_dataset_normalize(&d, 0.0, 0.0), SL_EINVAL, "std");
    sl_dataset_release(&d);
}
END_TEST

START_TEST(subset_copies_rows)
{
    sl_dataset d = {0}, s = {0};
    counting_dataset(&d, 10, 3);
    const int64_t index[4] = {7, 2, 2, 9};
    ck_assert_sl_ok(sl_dataset_subset(&d, index, 4, &s));
    ck_assert_int_eq(sl_dataset_size(&s), 4);
    ck_assert_ptr_ne(s.x.data, d.x.data);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(((int64_t *)s.y.data)[i], index[i]);
        for (int j = 0; j < 3; j++)
            ck_assert_float_eq(((float *)s.x.data)[i * 3 + j], (float)(index[i] * 10 + j));
    }
    ((float *)s.x.data)[0] = -1;
    ck_assert_float_eq(((float *)d.x.data)[21], 70.0f);
    const int64_t bad[1] = {10};
    ck_assert_sl_fails(sl_dataset_subset(&d, bad, 1, &s), SL_EINVAL, "out of range");
    sl_dataset_release(&s);
    sl_dataset_release(&d);
}
END_TEST

/* Marks which original rows (y values) a dataset holds. */
static void mark_rows(const sl_dataset *d, int *seen)
{
    for (int64_t i = 0; i < sl_dataset_size(d); i++) {
        int64_t r = ((int64_t *)d->y.data)[i];
        ck_assert_float_eq(((float *)d->x.data)[i * 2 + 1], (float)(r * 10 + 1));
        seen[r]++;
    }
}

START_TEST(split_sizes_and_disjointness)
{
    sl_dataset d = {0}, a = {0}, b = {0}, a2 = {0}, b2 = {0};
    counting_dataset(&d, 100, 2);
    ck_assert_sl_ok(sl_dataset_split(&d, 30, 42, &a, &b));
    ck_assert_int_eq(sl_dataset_size(&a), 30);
    ck_assert_int_eq(sl_dataset_size(&b), 70);
    int seen[100] = {0};
    mark_rows(&a, seen);
    mark_rows(&b, seen);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i], 1);

    /* Shuffled: not simply the first 30 rows. */
    int in_order = 0;
    for (int i = 0; i < 30; i++)
        in_order += ((int64_t *)a.y.data)[i] == i;
    ck_assert_int_lt(in_order, 30);

    ck_assert_sl_ok(sl_dataset_split(&d, 30, 42, &a2, &b2));
    ck_assert_mem_eq(a.y.data, a2.y.data, 30 * sizeof(int64_t));
    ck_assert_mem_eq(b.y.data, b2.y.data, 70 * sizeof(int64_t));
    sl_dataset_release(&a2);
    sl_dataset_release(&b2);
    ck_assert_sl_ok(sl_dataset_split(&d, 30, 43, &a2, &b2));
    ck_assert(memcmp(a.y.data, a2.y.data, 30 * sizeof(int64_t)) != 0);
    sl_dataset_release(&a2);
    sl_dataset_release(&b2);

    ck_assert_sl_fails(sl_dataset_split(&d, 101, 1, &a2, &b2), SL_EINVAL, "101");
    sl_dataset_release(&a);
    sl_dataset_release(&b);
    sl_dataset_release(&d);
}
END_TEST

/* ------------------------------------------------------------ batcher */

/* The y values (row ids) of every batch of one epoch, in order. */
static int64_t epoch_order(sl_batcher *b, int64_t epoch, int64_t *order, int64_t *sizes)
{
    sl_batcher_begin_epoch(b, epoch);
    const sl_tensor *x, *y;
    int64_t k = 0, nb = 0;
    while (sl_batcher_next(b, &x, &y) == 1) {
        ck_assert_int_eq(x->shape[0], y->shape[0]);
        for (int64_t i = 0; i < y->shape[0]; i++) {
            int64_t r = ((const int64_t *)y->data)[i];
            /* x row travels with its y row */
            ck_assert_float_eq(((const float *)x->data)[i * 3 + 2], (float)(r * 10 + 2));
            order[k++] = r;
        }
        sizes[nb++] = y->shape[0];
    }
    return k;
}

START_TEST(batcher_is_deterministic_and_complete)
{
    sl_dataset d = {0};
    counting_dataset(&d, 23, 3);
    sl_batcher *b1, *b2;
    ck_assert_sl_ok(sl_batcher_new(&d, 5, SL_F32, true, 7, false, &b1));
    ck_assert_sl_ok(sl_batcher_new(&d, 5, SL_F32, true, 7, false, &b2));
    ck_assert_int_eq(sl_batcher_nbatches(b1), 5);
    int64_t o1[23], o2[23], o3[23], s1[8], s2[8];

    /* Every row once per epoch; batches 5,5,5,5,3. */
    ck_assert_int_eq(epoch_order(b1, 3, o1, s1), 23);
    int seen[23] = {0};
    for (int i = 0; i < 23; i++)
        seen[o1[i]]++;
    for (int i = 0; i < 23; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(s1[0], 5);
    ck_assert_int_eq(s1[4], 3);

    /* Same (seed, epoch), even after other epochs: same order. */
    epoch_order(b2, 0, o2, s2);
    epoch_order(b2, 5, o2, s2);
    ck_assert_int_eq(epoch_order(b2, 3, o2, s2), 23);
    ck_assert_mem_eq(o1, o2, sizeof o1);
    /* Another epoch: another order. */
    epoch_order(b1, 4, o3, s1);
    ck_assert(memcmp(o1, o3, sizeof o1) != 0);
    sl_batcher_free(b2);

    /* Another seed: another order. */
    ck_assert_sl_ok(sl_batcher_new(&d, 5, SL_F32, true, 8, false, &b2));
    epoch_order(b2, 3, o2, s2);
    ck_assert(memcmp(o1, o2, sizeof o1) != 0);
    sl_batcher_free(b2);
    sl_batcher_free(b1);

    /* Without shuffle: identity order. */
    ck_assert_sl_ok(sl_batcher_new(&d, 4, SL_F32, false, 7, false, &b1));
    ck_assert_int_eq(epoch_order(b1, 9, o1, s1), 23);
    for (int i = 0; i < 23; i++)
        ck_assert_int_eq(o1[i], i);
    sl_batcher_free(b1);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(batcher_reuses_memory_and_drops_last)
{
    sl_dataset d = {0};
    counting_dataset(&d, 23, 3);
    sl_batcher *b;
    ck_assert_sl_ok(sl_batcher_new(&d, 5, SL_F32, true, 1, true, &b));
    ck_assert_int_eq(sl_batcher_nbatches(b), 4);
    /* The batcher keeps its own references: the dataset may go first. */
    sl_dataset_release(&d);
    const sl_tensor *x, *y;
    const void *first_x = NULL;
    int nb = 0;
    for (int e = 0; e < 2; e++) {
        sl_batcher_begin_epoch(b, e);
        while (sl_batcher_next(b, &x, &y) == 1) {
            if (!first_x)
                first_x = x->data;
            ck_assert_ptr_eq(x->data, first_x);
            ck_assert_int_eq(x->shape[0], 5);
            nb++;
        }
        ck_assert_int_eq(sl_batcher_next(b, &x, &y), 0);
    }
    ck_assert_int_eq(nb, 8);
    sl_batcher_free(b);

    counting_dataset(&d, 23, 3);
    ck_assert_sl_fails(sl_batcher_new(&d, 24, SL_F32, true, 1, true, &b), SL_EINVAL, "24");
    ck_assert_sl_fails(sl_batcher_new(&d, 0, SL_F32, true, 1, false, &b), SL_EINVAL, "batch");
    ck_assert_sl_fails(sl_batcher_new(&d, 4, SL_I64, true, 1, false, &b), SL_EDTYPE, "i64");
    /* A batch of INT64_MAX rows is one batch of all 23 (its count once
     * overflowed computing (n + batch - 1) / batch). */
    ck_assert_sl_ok(sl_batcher_new(&d, INT64_MAX, SL_F32, true, 1, false, &b));
    ck_assert_int_eq(sl_batcher_nbatches(b), 1);
    ck_assert_int_eq(sl_batcher_next(b, &x, &y), 1);
    ck_assert_int_eq(x->shape[0], 23);
    sl_batcher_free(b);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(batcher_converts_to_f64)
{
    sl_dataset d = {0};
    ck_assert_sl_ok(sl_dataset_idx_dir(MNIST_DIR, "test", &d));
    sl_batcher *b;
    ck_assert_sl_ok(sl_batcher_new(&d, 64, SL_F64, true, 3, false, &b));
    ck_assert_int_eq(sl_batcher_nbatches(b), 32);
    sl_batcher_begin_epoch(b, 2);
    const sl_tensor *x, *y;
    int64_t rows = 0;
    int64_t label_sum = 0, naive_sum = 0;
    double pix_sum = 0, naive_pix = 0;
    while (sl_batcher_next(b, &x, &y) == 1) {
        ck_assert_int_eq(x->dtype, SL_F64);
        ck_assert_int_eq(x->ndim, 4);
        ck_assert_int_eq(x->shape[3], 28);
        ck_assert_int_eq(y->dtype, SL_I64);
        for (int64_t i = 0; i < sl_tensor_numel(x); i++)
            pix_sum += ((const double *)x->data)[i];
        for (int64_t i = 0; i < y->shape[0]; i++)
            label_sum += ((const int64_t *)y->data)[i];
        rows += x->shape[0];
    }
    ck_assert_int_eq(rows, 2000);
    for (int64_t i = 0; i < 2000; i++)
        naive_sum += ((int64_t *)d.y.data)[i];
    for (int64_t i = 0; i < sl_tensor_numel(&d.x); i++)
        naive_pix += ((float *)d.x.data)[i];
    ck_assert_int_eq(label_sum, naive_sum);
    ck_assert_double_eq_tol(pix_sum, naive_pix, 1e-6 * naive_pix);
    sl_batcher_free(b);
    sl_dataset_release(&d);
}
END_TEST

START_TEST(from_tensors_copies_and_converts)
{
    sl_tensor x, y, labels;
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 3, (int64_t[]){3, 2, 2}));
    ck_assert_sl_ok(sl_tensor_alloc(&y, SL_F64, 1, (int64_t[]){3}));
    ck_assert_sl_ok(sl_tensor_alloc(&labels, SL_I64, 1, (int64_t[]){3}));
    for (int i = 0; i < 12; i++)
        ((double *)x.data)[i] = 0.25 * i;
    for (int i = 0; i < 3; i++) {
        ((double *)y.data)[i] = -i;
        ((int64_t *)labels.data)[i] = 2 - i;
    }
    sl_tensor xt; /* a strided source: x with its last two dims swapped */
    ck_assert_sl_ok(sl_tensor_transpose(&x, 1, 2, &xt));
    sl_dataset d;
    ck_assert_sl_ok(sl_dataset_from_tensors(&xt, &y, &d));
    ck_assert_int_eq(d.x.dtype, SL_F32);
    ck_assert_int_eq(d.y.ndim, 2);
    ck_assert_int_eq(d.y.shape[1], 1);
    for (int64_t n = 0; n < 3; n++)
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < 2; j++)
                ck_assert_double_eq(sl_tensor_get(&d.x, (int64_t[]){n, i, j}),
                                    sl_tensor_get(&x, (int64_t[]){n, j, i}));
    ((double *)x.data)[0] = 99; /* a copy: the dataset does not see this */
    ck_assert_double_eq(sl_tensor_flat_get(&d.x, 0), 0.0);
    ck_assert_double_eq(sl_tensor_flat_get(&d.y, 2), -2.0);
    sl_dataset_release(&d);
    ck_assert_sl_ok(sl_dataset_from_tensors(&x, &labels, &d));
    ck_assert_int_eq(d.y.dtype, SL_I64);
    ck_assert_double_eq(sl_tensor_flat_get(&d.y, 0), 2.0);
    sl_dataset_release(&d);
    sl_tensor short_y;
    ck_assert_sl_ok(sl_tensor_narrow(&y, 0, 0, 2, &short_y));
    ck_assert_sl_fails(sl_dataset_from_tensors(&x, &short_y, &d), SL_ESHAPE, "[3, 2, 2] and [2]");
    sl_tensor_release(&short_y);
    sl_tensor_release(&xt);
    sl_tensor_release(&x);
    sl_tensor_release(&y);
    sl_tensor_release(&labels);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *mnist = tcase_create("mnist");
    tcase_set_timeout(mnist, 60);
    tcase_add_test(mnist, shipped_mnist_train);
    tcase_add_test(mnist, shipped_mnist_test);
    tcase_add_test(mnist, fashion_mnist_if_present);
    suite_add_tcase(s, mnist);
    TCase *idx = tcase_create("idx");
    sl_test_add_tmpdir(idx);
    tcase_add_test(idx, idx_round_trip_plain_and_gzip);
    tcase_add_test(idx, idx_wide_types_are_big_endian);
    tcase_add_test(idx, idx_broken_files_are_rejected);
    tcase_add_test(idx, idx_corrupt_gzip_is_rejected);
    tcase_add_test(idx, idx_dataset_pairs_files);
    suite_add_tcase(s, idx);
    TCase *csv = tcase_create("csv");
    sl_test_add_tmpdir(csv);
    tcase_add_test(csv, csv_good_files);
    tcase_add_test(csv, csv_bad_files_name_the_line);
    suite_add_tcase(s, csv);
    TCase *ds = tcase_create("dataset");
    tcase_set_timeout(ds, 30);
    tcase_add_test(ds, stats_and_normalize_match_naive_loops);
    tcase_add_test(ds, subset_copies_rows);
    tcase_add_test(ds, split_sizes_and_disjointness);
    tcase_add_test(ds, batcher_is_deterministic_and_complete);
    tcase_add_test(ds, batcher_reuses_memory_and_drops_last);
    tcase_add_test(ds, batcher_converts_to_f64);
    tcase_add_test(ds, from_tensors_copies_and_converts);
    suite_add_tcase(s, ds);
    return s;
}

int main(void) { return sl_test_run(data_suite()); }
