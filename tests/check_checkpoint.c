/* tests/check_checkpoint.c — safetensors checkpoints: round trips, the byte
 * layout read back independently, files written by a second writer (this
 * test's), and every kind of malformed file refused with the model left
 * untouched. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* ---- fixtures ----------------------------------------------------------- */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* linear 5 -> 4, then 4 -> 3: "0.weight" [4, 5], "0.bias" [4],
 * "1.weight" [3, 4], "1.bias" [3]. */
static sl_model *small_model(sl_dtype dtype, uint64_t seed)
{
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    sl_test_add_linear(m, 5, 4, true);
    sl_test_add_linear(m, 4, 3, true);
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

static size_t arena_bytes(sl_model *m)
{
    return (size_t)sl_model_numel(m) * sl_dtype_size(sl_model_dtype(m));
}

static void *snapshot(sl_model *m)
{
    void *copy = malloc(arena_bytes(m));
    memcpy(copy, sl_model_flat_params(m)->data, arena_bytes(m));
    return copy;
}

static bool same_as(sl_model *m, const void *snap)
{
    return memcmp(sl_model_flat_params(m)->data, snap, arena_bytes(m)) == 0;
}

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*size + 1);
    ck_assert_uint_eq(fread(buf, 1, *size, f), *size);
    fclose(f);
    return buf;
}

static void spit(const char *path, const void *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, size, f), size);
    fclose(f);
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = v << 8 | b[k];
    return v;
}

static void put_le64(unsigned char *b, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)(v >> (8 * k));
}

/* ---- a second, independent safetensors writer -------------------------- */

/* What to get wrong on purpose. */
typedef struct forge {
    sl_dtype dtype;        /* of the file's data */
    int drop;              /* index of a parameter left out, or -1 */
    int bad_shape;         /* index whose first extent is written one too big, or -1 */
    const char *bad_dtype; /* written as parameter 0's dtype if not NULL */
    bool extra;            /* append a tensor "9.extra" of one element */
    uint64_t end_shift;    /* added to the last tensor's end offset */
} forge;

static const forge honest = {.dtype = SL_F64, .drop = -1, .bad_shape = -1};

static void append(char *buf, size_t size, const char *fmt, ...) SL_PRINTF(3, 4);
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* Writes m's parameters as a safetensors file, with __metadata__ first and
 * the keys of each description in another order than symlab writes them. */
static void forge_file(const char *path, sl_model *m, const forge *fg)
{
    char header[4096] = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"t\\u00e9st \\\"q\\\"\"}";
    unsigned char data[4096];
    size_t esize = sl_dtype_size(fg->dtype), used = 0;
    for (int i = 0; i < sl_model_nparams(m); i++) {
        if (i == fg->drop)
            continue;
        sl_tensor *t = sl_model_param(m, i);
        int64_t n = sl_tensor_numel(t);
        uint64_t end = used + (uint64_t)n * esize;
        if (i == sl_model_nparams(m) - 1)
            end += fg->end_shift;
        append(header, sizeof header, ",\"%s\":{\"data_offsets\":[%zu,%llu],\"shape\":[",
               sl_model_param_name(m, i), used, (unsigned long long)end);
        for (int d = 0; d < t->ndim; d++)
            append(header, sizeof header, "%s%lld", d ? "," : "",
                   (long long)(t->shape[d] + (i == fg->bad_shape && d == 0)));
        append(header, sizeof header, "], \"dtype\" : \"%s\"}",
               i == 0 && fg->bad_dtype ? fg->bad_dtype : fg->dtype == SL_F32 ? "F32" : "F64");
        for (int64_t j = 0; j < n; j++, used += esize) {
            double v = sl_tensor_flat_get(t, j);
            float f = (float)v;
            uint64_t bits = 0;
            if (fg->dtype == SL_F32)
                memcpy(&bits, &f, 4); /* low half on this little-endian test host */
            else
                memcpy(&bits, &v, 8);
            for (size_t k = 0; k < esize; k++)
                data[used + k] = (unsigned char)(bits >> (8 * k));
        }
    }
    if (fg->extra) {
        append(header, sizeof header,
               ",\"9.extra\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}", used,
               used + 8);
        memset(data + used, 0, 8);
        used += 8;
    }
    append(header, sizeof header, "}");
    while (strlen(header) % 8)
        append(header, sizeof header, " ");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    unsigned char len[8];
    put_le64(len, strlen(header));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    fwrite(data, 1, used, f);
    fclose(f);
}

/* ---- round trips --------------------------------------------------------- */

static void round_trip(sl_dtype dtype)
{
    const char *path = sl_test_tmp_path("model.safetensors");
    sl_model *a = small_model(dtype, 1), *b = small_model(dtype, 2);
    ck_assert(!same_as(b, sl_model_flat_params(a)->data));
    ck_assert_sl_ok(sl_model_save(a, path));
    ck_assert_int_eq(count_entries(sl_test_tmpdir()), 1); /* no temporary left behind */
    ck_assert_sl_ok(sl_model_load(b, path));
    ck_assert(same_as(b, sl_model_flat_params(a)->data));
    /* Saving over an existing checkpoint replaces it. */
    ck_assert_sl_ok(sl_model_save(b, path));
    ck_assert_int_eq(count_entries(sl_test_tmpdir()), 1);
    sl_model_free(a);
    sl_model_free(b);
}

START_TEST(test_round_trip_f64) { round_trip(SL_F64); }
END_TEST

START_TEST(test_round_trip_f32) { round_trip(SL_F32); }
END_TEST

/* A test layer with a buffer (no built-in has one): identity on (B, 3),
 * parameter "scale" [3] and buffer "running_mean" [2, 3], both drawn from
 * the module's stream so that two seeds give two different models. */
static int stat_create(sl_module *m, const sl_options *opt)
{
    int64_t pshape[1] = {3}, bshape[2] = {2, 3};
    SL_TRY(sl_module_add_param(m, "scale", 1, pshape));
    SL_TRY(sl_module_add_buffer(m, "running_mean", 2, bshape));
    return SL_OK;
}

static int stat_reset(sl_module *m, sl_rng *rng)
{
    SL_TRY(sl_tensor_normal(sl_module_param(m, 0), rng, 0.0, 1.0));
    return sl_tensor_normal(sl_module_buffer(m, 0), rng, 0.0, 1.0);
}

static int stat_shape(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out)
{
    *out_ndim = ndim;
    memcpy(out, in, (size_t)ndim * sizeof *in);
    return SL_OK;
}

static int stat_forward(sl_module *m, const sl_tensor *in, sl_tensor *out)
{
    return sl_tensor_copy(out, in);
}

static int stat_backward(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                         const sl_tensor *grad_out, sl_tensor *grad_in)
{
    return grad_in ? sl_tensor_copy(grad_in, grad_out) : SL_OK;
}

static const sl_module_type stat_type = {
    .name = "test_running_stat",
    .summary = "test: a layer with a buffer",
    .create = stat_create,
    .reset_parameters = stat_reset,
    .output_shape = stat_shape,
    .forward = stat_forward,
    .backward = stat_backward,
};

/* "test_counter": identity on any input with one 0-d int64 buffer "count"
 * and no parameter. */
static int counter_create(sl_module *m, const sl_options *opt)
{
    int rc = sl_module_add_buffer_typed(m, "count", SL_I64, 0, NULL);
    return rc < 0 ? rc : SL_OK;
}

static const sl_module_type counter_type = {
    .name = "test_counter",
    .summary = "test: a layer with an integer buffer",
    .create = counter_create,
    .output_shape = stat_shape,
    .forward = stat_forward,
    .backward = stat_backward,
};

/* "test_bad_buffer": declares a complex buffer, which no model can hold. */
static int bad_buffer_create(sl_module *m, const sl_options *opt)
{
    int rc = sl_module_add_buffer_typed(m, "x", SL_C128, 0, NULL);
    return rc < 0 ? rc : SL_OK;
}

static const sl_module_type bad_buffer_type = {
    .name = "test_bad_buffer",
    .summary = "test: a layer with a complex buffer",
    .create = bad_buffer_create,
    .output_shape = stat_shape,
    .forward = stat_forward,
    .backward = stat_backward,
};

static const sl_module_type *const stat_modules[] = {&stat_type, &counter_type,
                                                     &bad_buffer_type, NULL};

static const sl_plugin stat_plugin = {
    SL_PLUGIN_HEADER,
    .name = "check_checkpoint",
    .version = "1.0",
    .summary = "test: a layer with a buffer",
    .modules = stat_modules,
};

/* linear 4 -> 3, then the buffered layer: parameters "0.weight", "0.bias",
 * "1.scale"; buffer "1.running_mean". */
static sl_model *buffered_model(sl_dtype dtype, uint64_t seed)
{
    ck_assert_sl_ok(sl_registry_init());
    if (!sl_registry_find(SL_KIND_MODULE, stat_type.name))
        ck_assert_sl_ok(sl_plugin_register(&stat_plugin, "check_checkpoint"));
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    sl_test_add_linear(m, 4, 3, true);
    ck_assert_sl_ok(sl_model_add(m, stat_type.name, NULL));
    ck_assert_sl_ok(sl_model_build(m, seed));
    ck_assert_int_eq(sl_model_nbuffers(m), 1);
    ck_assert_str_eq(sl_model_buffer_name(m, 0), "1.running_mean");
    return m;
}

static bool same_buffers(sl_model *a, sl_model *b)
{
    const sl_tensor *x = sl_model_buffer(a, 0), *y = sl_model_buffer(b, 0);
    return memcmp(x->data, y->data, sl_tensor_nbytes(x)) == 0;
}

START_TEST(test_round_trip_with_buffer)
{
    const char *path = sl_test_tmp_path("buffered.safetensors");
    sl_dtype dtype = _i ? SL_F32 : SL_F64;
    sl_model *a = buffered_model(dtype, 1), *b = buffered_model(dtype, 2);
    ck_assert(!same_buffers(a, b));
    ck_assert_sl_ok(sl_model_save(a, path));
    ck_assert_sl_ok(sl_model_load(b, path));
    ck_assert(same_as(b, sl_model_flat_params(a)->data));
    ck_assert(same_buffers(a, b));

    size_t size;
    unsigned char *buf = slurp(path, &size);
    uint64_t n = le64(buf);
    char *header = strndup((const char *)buf + 8, n);
    size_t es = sl_dtype_size(dtype);
    char want[128];
    snprintf(want, sizeof want, "\"1.running_mean\":{\"dtype\":\"%s\",\"shape\":[2,3],"
             "\"data_offsets\":[%zu,%zu]}", dtype == SL_F32 ? "F32" : "F64", 18 * es, 24 * es);
    ck_assert_msg(strstr(header, want), "header %s lacks %s", header, want);
    ck_assert_uint_eq(size, 8 + n + 24 * es);
    free(header);
    free(buf);

    /* A file without the buffer (the forger writes parameters only) is as
     * incomplete as one without a weight. */
    forge fg = honest;
    fg.dtype = dtype;
    forge_file(path, a, &fg);
    sl_model *c = buffered_model(dtype, 3);
    void *snap = snapshot(c);
    ck_assert_sl_fails(sl_model_load(c, path), SL_EFORMAT, "missing tensor '1.running_mean'");
    ck_assert(same_as(c, snap));
    ck_assert(!same_buffers(a, c));
    free(snap);
    sl_model_free(c);
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

/* The file read back byte by byte against the safetensors specification. */
START_TEST(test_layout)
{
    const char *path = sl_test_tmp_path("layout.safetensors");
    sl_model *m = small_model(SL_F64, 3);
    ck_assert_sl_ok(sl_model_save(m, path));
    size_t size;
    unsigned char *buf = slurp(path, &size);
    uint64_t n = le64(buf);
    ck_assert_uint_eq(n % 8, 0);
    ck_assert_uint_eq(size, 8 + n + (uint64_t)sl_model_numel(m) * 8);
    char *header = strndup((const char *)buf + 8, n);
    ck_assert_int_eq(header[0], '{');
    ck_assert_ptr_nonnull(strstr(header, "\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4,5],"
                                         "\"data_offsets\":[0,160]}"));
    ck_assert_ptr_nonnull(strstr(header, "\"0.bias\":{\"dtype\":\"F64\",\"shape\":[4],"
                                         "\"data_offsets\":[160,192]}"));
    ck_assert_ptr_nonnull(strstr(header, "\"1.weight\":{\"dtype\":\"F64\",\"shape\":[3,4],"
                                         "\"data_offsets\":[192,288]}"));
    ck_assert_ptr_nonnull(strstr(header, "\"1.bias\":{\"dtype\":\"F64\",\"shape\":[3],"
                                         "\"data_offsets\":[288,312]}"));
    ck_assert_ptr_nonnull(strstr(header, "\"__metadata__\":{\"format\":\"pt\""));
    /* Data: parameters in order, little-endian. */
    const unsigned char *data = buf + 8 + n;
    for (int64_t i = 0; i < sl_model_numel(m); i++) {
        uint64_t bits = le64(data + 8 * i);
        double v;
        memcpy(&v, &bits, 8);
        ck_assert_double_eq(v, sl_tensor_flat_get(sl_model_flat_params(m), i));
    }
    free(header);
    free(buf);
    sl_model_free(m);
}
END_TEST

/* f64 into f32 rounds each value; f32 into f64 is exact. */
START_TEST(test_dtype_conversion)
{
    const char *path = sl_test_tmp_path("conv.safetensors");
    sl_model *a64 = small_model(SL_F64, 4), *b32 = small_model(SL_F32, 5);
    ck_assert_sl_ok(sl_model_save(a64, path));
    ck_assert_sl_ok(sl_model_load(b32, path));
    const double *src = sl_model_flat_params(a64)->data;
    const float *dst = sl_model_flat_params(b32)->data;
    for (int64_t i = 0; i < sl_model_numel(a64); i++)
        ck_assert_float_eq(dst[i], (float)src[i]);

    sl_model *c64 = small_model(SL_F64, 6);
    ck_assert_sl_ok(sl_model_save(b32, path));
    ck_assert_sl_ok(sl_model_load(c64, path));
    const double *wide = sl_model_flat_params(c64)->data;
    for (int64_t i = 0; i < sl_model_numel(c64); i++)
        ck_assert_double_eq(wide[i], (double)dst[i]);
    sl_model_free(a64);
    sl_model_free(b32);
    sl_model_free(c64);
}
END_TEST

/* A file from another writer (other key order, escapes in metadata, f32
 * data into an f64 model) loads. */
START_TEST(test_foreign_file)
{
    const char *path = sl_test_tmp_path("foreign.safetensors");
    sl_model *a = small_model(SL_F64, 7), *b = small_model(SL_F64, 8);
    forge_file(path, a, &honest);
    ck_assert_sl_ok(sl_model_load(b, path));
    ck_assert(same_as(b, sl_model_flat_params(a)->data));
    forge fg = honest;
    fg.dtype = SL_F32;
    forge_file(path, a, &fg);
    ck_assert_sl_ok(sl_model_load(b, path));
    for (int64_t i = 0; i < sl_model_numel(a); i++)
        ck_assert_double_eq(sl_tensor_flat_get(sl_model_flat_params(b), i),
                            (double)(float)sl_tensor_flat_get(sl_model_flat_params(a), i));
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

/* An independent reader: safetensors.torch when PyTorch is installed, else
 * Python's own json and struct modules.  Skipped without /usr/bin/python3. */
static const char reader_py[] =
    "import json, struct, sys\n"
    "path = sys.argv[1]\n"
    "try:\n"
    "    from safetensors.torch import load_file\n"
    "    for k, t in load_file(path).items():\n"
    "        print(k, repr(float(t.double().sum())))\n"
    "except ImportError:\n"
    "    b = open(path, 'rb').read()\n"
    "    n = struct.unpack('<Q', b[:8])[0]\n"
    "    h = json.loads(b[8:8 + n].decode('utf-8'))\n"
    "    h.pop('__metadata__')\n"
    "    for k, v in h.items():\n"
    "        s, e = v['data_offsets']\n"
    "        f = {'F32': 'f', 'F64': 'd'}[v['dtype']]\n"
    "        c = (e - s) // struct.calcsize(f)\n"
    "        print(k, repr(sum(struct.unpack('<%d%s' % (c, f), b[8 + n + s:8 + n + e]))))\n";

static void python_reads(sl_dtype dtype)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        return;
    char script[512], model[512], cmd[1200];
    snprintf(script, sizeof script, "%s", sl_test_tmp_path("reader.py"));
    snprintf(model, sizeof model, "%s", sl_test_tmp_path("model.safetensors"));
    spit(script, reader_py, strlen(reader_py));
    sl_model *m = small_model(dtype, 14);
    ck_assert_sl_ok(sl_model_save(m, model));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", script, model);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char name[64];
    double sum;
    int seen = 0;
    while (fscanf(p, "%63s %lf", name, &sum) == 2) {
        int i = sl_model_find_param(m, name);
        ck_assert_msg(i >= 0, "python read an unknown tensor '%s'", name);
        sl_tensor *t = sl_model_param(m, i);
        double want = 0.0;
        for (int64_t j = 0; j < sl_tensor_numel(t); j++)
            want += sl_tensor_flat_get(t, j);
        ck_assert_double_eq_tol(sum, want, 1e-12);
        seen++;
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_int_eq(seen, sl_model_nparams(m));
    sl_model_free(m);
}

START_TEST(test_python_reads_f32) { python_reads(SL_F32); }
END_TEST

START_TEST(test_python_reads_f64) { python_reads(SL_F64); }
END_TEST

/* ---- malformed files ----------------------------------------------------- */

/* Loads path into a fresh model, expecting SL_EFORMAT mentioning needle and
 * the model untouched. */
static void expect_rejected(const char *path, const char *needle)
{
    sl_model *m = small_model(SL_F64, 9);
    void *snap = snapshot(m);
    ck_assert_sl_fails(sl_model_load(m, path), SL_EFORMAT, needle);
    ck_assert_msg(same_as(m, snap), "failed load of %s changed the model", path);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), path));
    free(snap);
    sl_model_free(m);
}

static void expect_forged_rejected(const forge *fg, const char *needle)
{
    sl_model *src = small_model(SL_F64, 10);
    const char *path = sl_test_tmp_path("forged.safetensors");
    forge_file(path, src, fg);
    expect_rejected(path, needle);
    sl_model_free(src);
}

START_TEST(test_rejects_model_mismatch)
{
    forge fg = honest;
    fg.bad_shape = 2;
    expect_forged_rejected(&fg, "1.weight");
    fg = honest;
    fg.drop = 1;
    expect_forged_rejected(&fg, "missing tensor '0.bias'");
    fg = honest;
    fg.extra = true;
    expect_forged_rejected(&fg, "9.extra");
    fg = honest;
    fg.end_shift = 8;
    expect_forged_rejected(&fg, "data_offsets");
    fg = honest;
    fg.bad_dtype = "BF16";
    expect_forged_rejected(&fg, "BF16");
}
END_TEST

/* A good file with its header replaced by `header` (padded to 8 bytes). */
static void write_with_header(const char *path, const char *header)
{
    size_t n = strlen(header), padded = (n + 7) / 8 * 8;
    unsigned char *buf = calloc(1, 8 + padded + 312);
    put_le64(buf, padded);
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, ' ', padded - n);
    spit(path, buf, 8 + padded + 312);
    free(buf);
}

START_TEST(test_rejects_bad_json)
{
    static const char *const headers[] = {
        "{\"0.weight\":{\"dtype\":\"F64\",}}",
        "{\"0.weight\" {\"dtype\":\"F64\"}}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4,5],\"data_offsets\":[0,160]}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4.0,5],\"data_offsets\":[0,160]}}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[-4,5],\"data_offsets\":[0,160]}}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[04,5],\"data_offsets\":[0,160]}}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4,5],\"data_offsets\":[0]}}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"shape\":[4,5],\"data_offsets\":[0,160],\"x\":1}}",
        "{\"0.weight\":{\"dtype\":\"F64\",\"dtype\":\"F64\"}}",
        "{\"0.weight\":{\"dtype\":\"F\\q64\"}}",
        "{\"0.weight\":{\"dtype\":\"F64\\ud800\"}}",
        "{\"0.weight\":{\"dtype\":\"F64",
        "{\"0.weight\":{\"dtype\":true}}",
        "{\"0.weight\":{\"shape\":[99999999999999999999]}}",
        "{\"__metadata__\":{\"format\":1}}",
        "{} x",
        "[]",
    };
    const char *path = sl_test_tmp_path("json.safetensors");
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        write_with_header(path, headers[i]);
        expect_rejected(path, "byte");
    }
}
END_TEST

START_TEST(test_rejects_truncation)
{
    const char *good = sl_test_tmp_path("good.safetensors");
    const char *bad = sl_test_tmp_path("bad.safetensors");
    sl_model *m = small_model(SL_F64, 11);
    ck_assert_sl_ok(sl_model_save(m, good));
    size_t size;
    unsigned char *buf = slurp(good, &size);
    uint64_t n = le64(buf);

    spit(bad, buf, size - 1); /* last element cut short */
    expect_rejected(bad, "bad.safetensors");
    spit(bad, buf, 8 + n + 8); /* most of the data gone */
    expect_rejected(bad, "data_offsets");
    spit(bad, buf, 8 + n / 2); /* mid-header */
    expect_rejected(bad, "header length");
    spit(bad, buf, 5);
    expect_rejected(bad, "truncated");

    put_le64(buf, size); /* header length beyond the end of the file */
    spit(bad, buf, size);
    expect_rejected(bad, "header length");
    put_le64(buf, n);

    char *colon = memchr(buf + 8, ':', n); /* corrupt JSON in place */
    *colon = ';';
    spit(bad, buf, size);
    expect_rejected(bad, "byte");

    free(buf);
    sl_model_free(m);
}
END_TEST

/* ---- saving --------------------------------------------------------------- */

START_TEST(test_save_into_missing_directory)
{
    const char *path = sl_test_tmp_path("no/such/dir/model.safetensors");
    sl_model *m = small_model(SL_F32, 12);
    ck_assert_sl_fails(sl_model_save(m, path), SL_EIO, path);
    ck_assert_int_eq(count_entries(sl_test_tmpdir()), 0);
    sl_model_free(m);
}
END_TEST

/* ---- orphaned temporaries ---------------------------------------------------- */

/* Number of entries of tmpdir whose name starts with prefix. */
static int count_prefixed(const char *prefix)
{
    DIR *d = opendir(sl_test_tmpdir());
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* Sets the modification time of tmpdir/name to `seconds` ago. */
static void age_file(const char *name, double seconds)
{
    struct timespec t[2] = {{.tv_sec = time(NULL) - (time_t)seconds}, {0}};
    t[1] = t[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, sl_test_tmp_path(name), t, 0), 0);
}

/* Ages every entry of tmpdir whose name starts with prefix. */
static void age_prefixed(const char *prefix, double seconds)
{
    DIR *d = opendir(sl_test_tmpdir());
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            age_file(e->d_name, seconds);
    closedir(d);
}

/* An empty file tmpdir/name, `seconds` old. */
static void touch_aged(const char *name, double seconds)
{
    FILE *f = fopen(sl_test_tmp_path(name), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    age_file(name, seconds);
}

/* The pid of a process that has exited. */
static long dead_pid(void)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    return (long)child;
}

/* A model of about 8 MB, so that saving takes long enough to be killed in
 * the middle. */
static sl_model *big_model(void)
{
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_test_add_linear(m, 1000, 1000, true);
    ck_assert_sl_ok(sl_model_build(m, 3));
    return m;
}

START_TEST(test_killed_writer_leaves_no_lasting_orphan)
{
    char path[512];
    snprintf(path, sizeof path, "%s", sl_test_tmp_path("big.safetensors"));
    sl_model *m = big_model();
    /* kill -9 a child in the middle of saving until one leaves its temporary. */
    int orphans = 0;
    for (int attempt = 0; attempt < 50 && orphans == 0; attempt++) {
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
            for (;;)
                if (sl_model_save(m, path) < 0)
                    _exit(1);
        }
        int status = 0;
        while (count_prefixed("big.safetensors.tmp.") == 0)
            ck_assert_msg(waitpid(child, &status, WNOHANG) == 0, "the saving child exited");
        kill(child, SIGKILL);
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFSIGNALED(status));
        orphans = count_prefixed("big.safetensors.tmp.");
    }
    ck_assert_int_ge(orphans, 1);
    /* A fresh orphan may belong to a writer elsewhere: kept for now. */
    ck_assert_sl_ok(sl_model_save(m, path));
    ck_assert_int_eq(count_prefixed("big.safetensors.tmp."), orphans);
    /* Eleven minutes later the next save removes it. */
    age_prefixed("big.safetensors.tmp.", 11 * 60);
    ck_assert_sl_ok(sl_model_save(m, path));
    ck_assert_int_eq(count_prefixed("big.safetensors.tmp."), 0);
    ck_assert_sl_ok(sl_model_load(m, path));
    sl_model_free(m);
}
END_TEST

START_TEST(test_orphan_removal_touches_only_our_dead_temporaries)
{
    char name[128];
    long dead = dead_pid(), me = (long)getpid();
    struct {
        const char *fmt;
        long pid;
        double age;
        bool removed;
    } files[] = {
        {"m.st.tmp.%ld.aB3dE9", dead, 11 * 60, true},    /* dead writer, idle */
        {"m.st.tmp.%ld.aB3dE8", dead, 60, false},        /* dead, but maybe remote */
        {"m.st.tmp.%ld.aB3dE7", me, 60 * 60, false},     /* a live writer */
        {"m.st.tmp.%ld.aB3dE6", me, 25 * 3600, true},    /* pid reused: too old */
        /* "%.0ld" prints nothing for 0: the older names carry no pid. */
        {"m.st.tmp.xY7zQ1%.0ld", 0, 25 * 3600, true},    /* older naming, old */
        {"m.st.tmp.xY7zQ2%.0ld", 0, 3600, false},        /* older naming, recent */
        {"m.st.tmp.%ld.aB3dE", dead, 25 * 3600, false},  /* not mkstemp's suffix */
        {"m.st.tmp.%ld.aB3dE5x", dead, 25 * 3600, false},
        {"m.st.tmp.%ldx.aB3dE5", dead, 25 * 3600, false},
        {"m.st.tmpx.%ld.aB3dE5", dead, 25 * 3600, false},
        {"m.stx.tmp.%ld.aB3dE5", dead, 25 * 3600, false}, /* another file's */
        {"xm.st.tmp.%ld.aB3dE5", dead, 25 * 3600, false},
    };
    size_t n = sizeof files / sizeof files[0];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, files[i].fmt, files[i].pid);
        touch_aged(name, files[i].age);
    }
    sl_model *m = small_model(SL_F32, 4);
    ck_assert_sl_ok(sl_model_save(m, sl_test_tmp_path("m.st")));
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, files[i].fmt, files[i].pid);
        ck_assert_msg((access(sl_test_tmp_path(name), F_OK) != 0) == files[i].removed, "%s: %s", name,
                      files[i].removed ? "kept" : "removed");
        kept += !files[i].removed;
    }
    ck_assert_int_eq(count_entries(sl_test_tmpdir()), 1 + kept); /* and the checkpoint */
    sl_model_free(m);
}
END_TEST

START_TEST(test_requires_built_model)
{
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(SL_F64, &m));
    sl_test_add_linear(m, 2, 2, true);
    const char *never = sl_test_tmp_path("never.safetensors");
    ck_assert_sl_fails(sl_model_save(m, never), SL_ESTATE, "built");
    ck_assert_sl_fails(sl_model_load(m, never), SL_ESTATE, "build");
    ck_assert_int_ne(access(never, F_OK), 0);
    sl_model_free(m);
}
END_TEST

START_TEST(test_load_missing_file)
{
    sl_model *m = small_model(SL_F64, 13);
    ck_assert_sl_fails(sl_model_load(m, "/nonexistent/model.safetensors"), SL_EIO,
                       "/nonexistent/model.safetensors");
    sl_model_free(m);
}
END_TEST


/* ---- integer buffers ------------------------------------------------------ */

/* linear 4 -> 3, then test_counter: "0.weight", "0.bias"; buffer "1.count". */
static sl_model *counter_model(sl_dtype dtype, uint64_t seed)
{
    ck_assert_sl_ok(sl_registry_init());
    if (!sl_registry_find(SL_KIND_MODULE, stat_type.name))
        ck_assert_sl_ok(sl_plugin_register(&stat_plugin, "check_checkpoint"));
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    sl_test_add_linear(m, 4, 3, true);
    ck_assert_sl_ok(sl_model_add(m, counter_type.name, NULL));
    ck_assert_sl_ok(sl_model_build(m, seed));
    ck_assert_int_eq(sl_model_nbuffers(m), 1);
    return m;
}

static int64_t *count_of(sl_model *m) { return sl_model_buffer(m, 0)->data; }

/* Replaces the first occurrence of `from` in the file by `to` (same length). */
static void patch_file(const char *path, const char *from, const char *to)
{
    size_t size, n = strlen(from);
    ck_assert_uint_eq(strlen(to), n);
    unsigned char *buf = slurp(path, &size);
    buf[size] = '\0';
    unsigned char *at = (unsigned char *)strstr((char *)buf + 8, from);
    ck_assert_msg(at != NULL, "no '%s' in %s", from, path);
    memcpy(at, to, n);
    spit(path, buf, size);
    free(buf);
}

START_TEST(test_integer_buffer_round_trip)
{
    const char *path = sl_test_tmp_path("counter.safetensors");
    sl_model *a = counter_model(SL_F32, 1), *b = counter_model(SL_F32, 2), *c;
    ck_assert_int_eq(sl_model_buffer(a, 0)->dtype, SL_I64);
    *count_of(a) = INT64_C(1) << 40; /* beyond what a float keeps exactly */
    *count_of(a) += 3;
    ck_assert_sl_ok(sl_model_save(a, path));
    size_t size;
    unsigned char *buf = slurp(path, &size);
    char *header = strndup((const char *)buf + 8, le64(buf));
    ck_assert_msg(strstr(header, "\"1.count\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":"
                                 "[60,68]}"),
                  "header %s", header);
    ck_assert_uint_eq(le64(buf + size - 8), (INT64_C(1) << 40) + 3);
    free(header);
    free(buf);
    ck_assert_sl_ok(sl_model_load(b, path));
    ck_assert_int_eq(*count_of(b), (INT64_C(1) << 40) + 3);
    /* A clone in f64 keeps the counter an integer. */
    ck_assert_sl_ok(sl_model_clone(a, SL_F64, &c));
    ck_assert_int_eq(sl_model_buffer(c, 0)->dtype, SL_I64);
    ck_assert_int_eq(*count_of(c), (INT64_C(1) << 40) + 3);
    sl_model_free(c);

    /* A file without the counter (older checkpoints, other writers) loads
     * and leaves it as it was. */
    forge_file(path, a, &honest);
    *count_of(b) = 11;
    ck_assert_sl_ok(sl_model_load(b, path));
    ck_assert_int_eq(*count_of(b), 11);
    ck_assert(same_as(b, sl_model_flat_params(a)->data));

    /* Integers load only from I64, reals only from F32/F64. */
    ck_assert_sl_ok(sl_model_save(a, path));
    patch_file(path, "\"I64\"", "\"F64\"");
    void *snap = snapshot(b);
    ck_assert_sl_fails(sl_model_load(b, path), SL_EFORMAT,
                       "tensor '1.count' has dtype F64; the model's integer buffer loads only I64");
    ck_assert_sl_ok(sl_model_save(a, path));
    patch_file(path, "\"F32\"", "\"I64\"");
    ck_assert_sl_fails(sl_model_load(b, path), SL_EFORMAT,
                       "has dtype I64; only F32 and F64 load into real tensors");
    ck_assert(same_as(b, snap));
    ck_assert_int_eq(*count_of(b), 11);
    free(snap);
    sl_model_free(a);
    sl_model_free(b);
}
END_TEST

START_TEST(test_buffers_are_the_models_dtype_or_i64)
{
    sl_model_free(counter_model(SL_F64, 1)); /* registers the test types */
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(SL_F32, &m));
    ck_assert_sl_fails(sl_model_add(m, bad_buffer_type.name, NULL), SL_EDTYPE,
                       "module 1 (test_bad_buffer): buffer 'x' is c128; buffers are f32 (the "
                       "module's) or i64");
    sl_model_free(m);
}
END_TEST


/* ---- PyTorch batch norm ---------------------------------------------------- */

#define TORCH_FILE SL_TEST_SRCDIR "/tests/data/torch_batchnorm.safetensors"
#define TORCH_REF SL_TEST_SRCDIR "/tests/data/torch_batchnorm.txt"
#define TORCH_SCRIPT SL_TEST_SRCDIR "/tests/torch_batchnorm.py"

/* Sequential(Linear(4, 3), BatchNorm1d(3)), as tests/torch_batchnorm.py
 * builds it. */
static sl_model *torch_like_model(sl_dtype dtype, uint64_t seed)
{
    ck_assert_sl_ok(sl_registry_init());
    sl_model *m = NULL;
    ck_assert_sl_ok(sl_model_new(dtype, &m));
    sl_test_add_linear(m, 4, 3, true);
    sl_options *o = sl_test_options("num_features=3");
    ck_assert_sl_ok(sl_model_add(m, "batchnorm", o));
    sl_options_free(o);
    ck_assert_sl_ok(sl_model_build(m, seed));
    return m;
}

/* The numbers after `name` on its line of `text` ("name v1 v2 ..."); their
 * count. */
static int reference(const char *text, const char *name, double *v, int max)
{
    size_t n = strlen(name);
    for (const char *line = text; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, n) != 0 || line[n] != ' ')
            continue;
        char buf[4096];
        size_t len = strcspn(line, "\n");
        ck_assert_uint_lt(len, sizeof buf);
        memcpy(buf, line, len);
        buf[len] = '\0';
        const char *p = buf + n;
        int count = 0;
        char *end;
        for (double x = strtod(p, &end); end != p && count < max; x = strtod(p, &end)) {
            v[count++] = x;
            p = end;
        }
        return count;
    }
    ck_abort_msg("no reference line '%s'", name);
    return 0;
}

static sl_tensor *named_tensor(sl_model *m, const char *name)
{
    for (int i = 0; i < sl_model_nparams(m); i++)
        if (strcmp(sl_model_param_name(m, i), name) == 0)
            return sl_model_param(m, i);
    for (int i = 0; i < sl_model_nbuffers(m); i++)
        if (strcmp(sl_model_buffer_name(m, i), name) == 0)
            return sl_model_buffer(m, i);
    ck_abort_msg("no tensor '%s'", name);
    return NULL;
}

/* m's output in evaluation mode, computed in f64, on the reference input. */
static void eval_output(sl_model *m, const char *ref, double out[6])
{
    double in[8];
    ck_assert_int_eq(reference(ref, "input", in, 8), 8);
    sl_model *c;
    ck_assert_sl_ok(sl_model_clone(m, SL_F64, &c));
    sl_model_set_training(c, false);
    sl_tensor x;
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F64, 2, (int64_t[]){2, 4}));
    memcpy(x.data, in, sizeof in);
    const sl_tensor *y;
    ck_assert_sl_ok(sl_model_forward(c, &x, &y));
    memcpy(out, y->data, 6 * sizeof *out);
    sl_tensor_release(&x);
    sl_model_free(c);
}

static void assert_outputs(const double *got, const double *want, const char *what)
{
    for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= 1e-12, "%s %d: %.17g, PyTorch %.17g", what, i,
                      got[i], want[i]);
}

/* A state_dict PyTorch wrote (with num_batches_tracked, an int64 0-d
 * tensor) loads, every value exactly, and the model computes what
 * PyTorch's did. */
START_TEST(test_loads_a_pytorch_batchnorm)
{
    size_t size;
    char *ref = (char *)slurp(TORCH_REF, &size);
    ref[size] = '\0';
    sl_model *m = torch_like_model(SL_F64, 1);
    ck_assert_sl_ok(sl_model_load(m, TORCH_FILE));
    const char *names[] = {"0.weight",     "0.bias",      "1.weight",           "1.bias",
                           "1.running_mean", "1.running_var", "1.num_batches_tracked"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        double want[16];
        sl_tensor *t = named_tensor(m, names[k]);
        ck_assert_int_eq(reference(ref, names[k], want, 16), sl_tensor_numel(t));
        for (int64_t i = 0; i < sl_tensor_numel(t); i++)
            ck_assert_msg(sl_tensor_flat_get(t, i) == want[i], "%s[%lld]: %.17g, file %.17g",
                          names[k], (long long)i, sl_tensor_flat_get(t, i), want[i]);
    }
    ck_assert_int_eq(*(int64_t *)named_tensor(m, "1.num_batches_tracked")->data, 5);
    double got[6], want[6];
    ck_assert_int_eq(reference(ref, "output", want, 6), 6);
    eval_output(m, ref, got);
    assert_outputs(got, want, "output");
    sl_model_free(m);
    free(ref);
}
END_TEST

/* Both ways through PyTorch itself, where it is installed: symlab's
 * checkpoint loads with strict=True and computes the same; PyTorch's,
 * after two more training batches, loads back with the count at 3 + 2. */
START_TEST(test_pytorch_round_trip)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        printf("test_pytorch_round_trip: skipped (no /usr/bin/python3 with torch)\n");
        return;
    }
    size_t size;
    char *ref = (char *)slurp(TORCH_REF, &size);
    ref[size] = '\0';
    char a_path[512], b_path[512], cmd[2048];
    snprintf(a_path, sizeof a_path, "%s", sl_test_tmp_path("symlab.safetensors"));
    snprintf(b_path, sizeof b_path, "%s", sl_test_tmp_path("torch.safetensors"));
    sl_model *a = torch_like_model(SL_F32, 5);
    sl_rng r;
    sl_rng_seed(&r, 3);
    sl_tensor x;
    ck_assert_sl_ok(sl_tensor_alloc(&x, SL_F32, 2, (int64_t[]){8, 4}));
    const sl_tensor *y;
    for (int i = 0; i < 3; i++) {
        ck_assert_sl_ok(sl_tensor_normal(&x, &r, 0.5, 2.0));
        ck_assert_sl_ok(sl_model_forward(a, &x, &y)); /* training mode: counted */
    }
    sl_tensor_release(&x);
    ck_assert_sl_ok(sl_model_save(a, a_path));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s roundtrip %s %s", TORCH_SCRIPT, a_path,
             b_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    ck_assert_msg(pclose(p) == 0, "%s failed:\n%s", cmd, out);

    double got[6], want[6], count;
    ck_assert_int_eq(reference(out, "loaded_count", &count, 1), 1);
    ck_assert_double_eq(count, 3);
    ck_assert_int_eq(reference(out, "loaded_output", want, 6), 6);
    eval_output(a, ref, got);
    assert_outputs(got, want, "symlab's model in PyTorch");

    sl_model *b = torch_like_model(SL_F32, 6);
    ck_assert_sl_ok(sl_model_load(b, b_path));
    ck_assert_int_eq(*(int64_t *)named_tensor(b, "1.num_batches_tracked")->data, 5);
    ck_assert_int_eq(reference(out, "trained_output", want, 6), 6);
    eval_output(b, ref, got);
    assert_outputs(got, want, "PyTorch's model in symlab");
    sl_model_free(a);
    sl_model_free(b);
    free(ref);
}
END_TEST

/* ---- the temporary-directory fixture itself -------------------------------- */

/* Writes a file into its directory, then fails before any cleanup of its own. */
START_TEST(writes_then_fails)
{
    FILE *f = fopen(sl_test_tmp_path("left.safetensors"), "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_msg(0, "deliberate failure after writing a file");
}
END_TEST

/* A failed assertion ends the test's process at once; the files it wrote
 * must still go.  A child process runs a one-test suite (forked per test, as
 * make check runs) with TMPDIR pointing at an empty directory (inside this
 * test's own, so nothing outlives a failure here either); after it, that
 * directory must be empty again. */
START_TEST(tmpdir_removed_after_failed_test)
{
    char base[512];
    snprintf(base, sizeof base, "%s", sl_test_tmp_path("inner"));
    ck_assert_int_eq(mkdir(base, 0700), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("TMPDIR", base, 1);
        Suite *s = suite_create("inner");
        TCase *tc = tcase_create("inner");
        sl_test_add_tmpdir(tc);
        tcase_add_test(tc, writes_then_fails);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_SILENT);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        _exit(failed == 1 ? 0 : 3);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    int left = count_entries(base);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the inner test did not fail exactly once (status %d)", status);
    ck_assert_msg(left == 0, "%d entries left in %s after the failed test", left, base);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("round trip");
    sl_test_add_tmpdir(tc);
    tcase_add_test(tc, test_round_trip_f64);
    tcase_add_test(tc, test_round_trip_f32);
    tcase_add_loop_test(tc, test_round_trip_with_buffer, 0, 2);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_dtype_conversion);
    tcase_add_test(tc, test_foreign_file);
    tcase_add_test(tc, test_python_reads_f32);
    tcase_add_test(tc, test_python_reads_f64);
    tcase_add_test(tc, test_integer_buffer_round_trip);
    tcase_add_test(tc, test_buffers_are_the_models_dtype_or_i64);
    tcase_add_test(tc, test_loads_a_pytorch_batchnorm);
    suite_add_tcase(s, tc);
    tc = tcase_create("pytorch");
    sl_test_add_tmpdir(tc);
    tcase_set_timeout(tc, 300); /* importing torch takes seconds */
    tcase_add_test(tc, test_pytorch_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("rejects");
    sl_test_add_tmpdir(tc);
    tcase_add_test(tc, test_rejects_model_mismatch);
    tcase_add_test(tc, test_rejects_bad_json);
    tcase_add_test(tc, test_rejects_truncation);
    suite_add_tcase(s, tc);
    tc = tcase_create("save");
    sl_test_add_tmpdir(tc);
    tcase_add_test(tc, test_save_into_missing_directory);
    tcase_add_test(tc, test_requires_built_model);
    tcase_add_test(tc, test_load_missing_file);
    tcase_add_test(tc, test_killed_writer_leaves_no_lasting_orphan);
    tcase_add_test(tc, test_orphan_removal_touches_only_our_dead_temporaries);
    suite_add_tcase(s, tc);
    tc = tcase_create("fixtures");
    sl_test_add_tmpdir(tc);
    tcase_add_test(tc, tmpdir_removed_after_failed_test);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sl_test_run(checkpoint_suite()); }
