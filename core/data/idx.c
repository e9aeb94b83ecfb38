/* core/data/idx.c — the IDX file format (LeCun's MNIST container) and IDX
 * image/label datasets.
 *
 * An IDX file is: two zero bytes, a type byte, a dimension count, ndim
 * big-endian int32 extents, then the elements big-endian in row-major order.
 * zlib's gz* functions read gzip and plain files alike, so the two need no
 * separate code paths.  Every check a hostile or damaged file could fail is
 * made before its consequence: extents before allocation, the byte count
 * before conversion, and one extra read at the end so that trailing bytes
 * and a bad gzip checksum (verified only at the end of the stream) are seen.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

/* Refuse headers promising more than this many data bytes: no real IDX
 * dataset comes close, and a corrupt extent must not drive an allocation. */
#define IDX_MAX_BYTES ((uint64_t)1 << 34)

/* Data is read in chunks of this size into a buffer grown as bytes arrive,
 * so a lying header costs at most twice the bytes actually present. */
#define IDX_CHUNK ((size_t)1 << 20)

typedef struct idx_type {
    uint8_t code;
    uint8_t size;   /* bytes per element in the file */
    sl_dtype dtype; /* element type in memory */
} idx_type;

static const idx_type idx_types[] = {
    {0x08, 1, SL_U8},  {0x09, 1, SL_I64}, {0x0B, 2, SL_I64},
    {0x0C, 4, SL_I64}, {0x0D, 4, SL_F32}, {0x0E, 8, SL_F64},
};

typedef struct idx_header {
    const idx_type *type;
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    int64_t numel;
    size_t nbytes; /* data bytes the header promises */
} idx_header;

static const idx_type *find_type(uint8_t code)
{
    for (size_t i = 0; i < SL_COUNTOF(idx_types); i++)
        if (idx_types[i].code == code)
            return &idx_types[i];
    return NULL;
}

static int open_idx(const char *path, gzFile *out)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return sl_error(SL_EIO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 17);
    *out = f;
    return SL_OK;
}

/* Maps a pending gz error to a status; SL_OK if there is none. */
static int check_gz(gzFile f, const char *path)
{
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err == Z_OK || err == Z_STREAM_END)
        return SL_OK;
    if (err == Z_ERRNO)
        return sl_error(SL_EIO, "%s: read error: %s", path, strerror(errno));
    if (err == Z_BUF_ERROR)
        return sl_error(SL_EFORMAT, "%s: truncated gzip stream (%s)", path, msg);
    if (err == Z_MEM_ERROR)
        return sl_error(SL_ENOMEM, "%s: out of memory while decompressing", path);
    return sl_error(SL_EFORMAT, "%s: corrupt gzip stream (%s)", path, msg);
}

/* Reads up to n bytes; *got < n only at the end of the file. */
static int read_some(gzFile f, const char *path, void *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
        int k = gzread(f, (char *)buf + *got, (unsigned)want);
        if (k < 0)
            return check_gz(f, path);
        if (k == 0)
            break;
        *got += (size_t)k;
    }
    return check_gz(f, path);
}

static uint64_t load_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Validates the extents and computes the promised byte count. */
static int check_extents(const char *path, const uint8_t *raw, idx_header *h)
{
    uint64_t numel = 1;
    for (int i = 0; i < h->ndim; i++) {
        int32_t e = (int32_t)(uint32_t)load_be(raw + 4 * i, 4);
        if (e <= 0)
            return sl_error(SL_EFORMAT, "%s: IDX extent %d of dimension %d must be > 0", path,
                            (int)e, i);
        h->shape[i] = e;
        if (numel > IDX_MAX_BYTES / (uint64_t)e)
            return sl_error(SL_EFORMAT, "%s: IDX extents promise more than %llu bytes", path,
                            (unsigned long long)IDX_MAX_BYTES);
        numel *= (uint64_t)e;
    }
    if (numel > IDX_MAX_BYTES / h->type->size || numel * h->type->size > SIZE_MAX)
        return sl_error(SL_EFORMAT, "%s: IDX extents promise more than %llu bytes", path,
                        (unsigned long long)IDX_MAX_BYTES);
    h->numel = (int64_t)numel;
    h->nbytes = (size_t)(numel * h->type->size);
    return SL_OK;
}

static int read_header(gzFile f, const char *path, idx_header *h)
{
    uint8_t magic[4], raw[4 * SL_MAX_DIMS];
    size_t got;
    SL_TRY(read_some(f, path, magic, 4, &got));
    if (got < 4)
        return sl_error(SL_EFORMAT, "%s: truncated IDX header (%zu of 4 magic bytes)", path, got);
    if (magic[0] != 0 || magic[1] != 0)
        return sl_error(SL_EFORMAT, "%s: not an IDX file (bad magic %02x %02x %02x %02x)", path,
                        magic[0], magic[1], magic[2], magic[3]);
    h->type = find_type(magic[2]);
    if (!h->type)
        return sl_error(SL_EFORMAT, "%s: unknown IDX element type 0x%02x", path, magic[2]);
    h->ndim = magic[3];
    /* One dimension is kept free: images gain a channel axis. */
    if (h->ndim < 1 || h->ndim > SL_MAX_DIMS - 1)
        return sl_error(SL_EFORMAT, "%s: IDX ndim %d out of range [1, %d]", path, h->ndim,
                        SL_MAX_DIMS - 1);
    size_t need = 4 * (size_t)h->ndim;
    SL_TRY(read_some(f, path, raw, need, &got));
    if (got < need)
        return sl_error(SL_EFORMAT, "%s: truncated IDX header (%zu of %zu extent bytes)", path,
                        got, need);
    return check_extents(path, raw, h);
}

/* Makes room for more bytes in *buf (capacity *cap, at most `limit`). */
static int grow(const char *path, uint8_t **buf, size_t *cap, size_t limit)
{
    size_t grown = *cap == 0 ? (limit < IDX_CHUNK ? limit : IDX_CHUNK)
                             : (*cap > limit / 2 ? limit : 2 * *cap);
    uint8_t *p = realloc(*buf, grown ? grown : 1);
    if (!p)
        return sl_error(SL_ENOMEM, "%s: out of memory reading %zu bytes", path, grown);
    *buf = p;
    *cap = grown;
    return SL_OK;
}

/* Reads exactly h->nbytes of data into a new malloc'ed buffer, then makes
 * sure nothing follows. */
static int read_payload(gzFile f, const char *path, const idx_header *h, uint8_t **out)
{
    uint8_t *buf = NULL;
    size_t cap = 0, have = 0, got = 0;
    int rc = grow(path, &buf, &cap, h->nbytes);
    while (rc == SL_OK && have < h->nbytes) {
        if (have == cap)
            rc = grow(path, &buf, &cap, h->nbytes);
        if (rc == SL_OK)
            rc = read_some(f, path, buf + have, cap - have, &got);
        if (rc == SL_OK && got < cap - have)
            rc = sl_error(SL_EFORMAT, "%s: truncated: the header promises %zu data bytes, "
                          "the file has %zu", path, h->nbytes, have + got);
        have += got;
    }
    uint8_t extra;
    if (rc == SL_OK)
        rc = read_some(f, path, &extra, 1, &got);
    if (rc == SL_OK && got)
        rc = sl_error(SL_EFORMAT, "%s: trailing bytes after the %zu data bytes the header "
                      "promises", path, h->nbytes);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return SL_OK;
}

/* Big-endian file elements to native tensor elements. */
static void decode(const idx_header *h, const uint8_t *raw, void *dst)
{
    int64_t n = h->numel;
    int size = h->type->size;
    if (h->type->dtype == SL_U8) {
        memcpy(dst, raw, (size_t)n);
    } else if (h->type->dtype == SL_I64) {
        int64_t *y = dst;
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = load_be(raw + i * size, size);
            uint64_t sign = (uint64_t)1 << (8 * size - 1);
            y[i] = (int64_t)(v ^ sign) - (int64_t)sign; /* sign-extend */
        }
    } else if (h->type->dtype == SL_F32) {
        float *y = dst;
        for (int64_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)load_be(raw + 4 * i, 4);
            memcpy(&y[i], &v, 4);
        }
    } else {
        double *y = dst;
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = load_be(raw + 8 * i, 8);
            memcpy(&y[i], &v, 8);
        }
    }
}

int sl_idx_read(const char *path, sl_tensor *out)
{
    if (!path || !out)
        return sl_error(SL_EINVAL, "idx: path and out must not be NULL");
    gzFile f = NULL;
    SL_TRY(open_idx(path, &f));
    idx_header h;
    uint8_t *raw = NULL;
    int rc = read_header(f, path, &h);
    if (rc == SL_OK)
        rc = read_payload(f, path, &h, &raw);
    int close_rc = gzclose_r(f);
    if (rc == SL_OK && close_rc != Z_OK)
        rc = sl_error(SL_EFORMAT, "%s: corrupt gzip stream (error %d at close)", path, close_rc);
    sl_tensor t = {0};
    if (rc == SL_OK)
        rc = sl_tensor_alloc(&t, h.type->dtype, h.ndim, h.shape);
    if (rc == SL_OK) {
        decode(&h, raw, t.data);
        *out = t;
    }
    free(raw);
    return rc;
}

/* ------------------------------------------------------------ datasets */

/* u8 (N, H, W) -> f32 (N, 1, H, W) / 255. */
static int images_to_f32(const char *path, const sl_tensor *img, sl_tensor *x)
{
    if (img->dtype != SL_U8 || img->ndim != 3) {
        char s[96];
        return sl_error(SL_EFORMAT, "%s: expected u8 images (N, H, W), got %s %s", path,
                        sl_dtype_name(img->dtype),
                        sl_shape_str(img->ndim, img->shape, s, sizeof s));
    }
    int64_t shape[4] = {img->shape[0], 1, img->shape[1], img->shape[2]};
    SL_TRY(sl_tensor_alloc(x, SL_F32, 4, shape));
    const uint8_t *src = img->data;
    float *dst = x->data;
    for (int64_t i = 0, n = sl_tensor_numel(img); i < n; i++)
        dst[i] = (float)src[i] / 255.0f;
    return SL_OK;
}

/* Integer (N) -> i64 (N), every label >= 0. */
static int labels_to_i64(const char *path, const sl_tensor *lab, sl_tensor *y)
{
    if (lab->ndim != 1 || (lab->dtype != SL_U8 && lab->dtype != SL_I64)) {
        char s[96];
        return sl_error(SL_EFORMAT, "%s: expected integer labels (N), got %s %s", path,
                        sl_dtype_name(lab->dtype),
                        sl_shape_str(lab->ndim, lab->shape, s, sizeof s));
    }
    SL_TRY(sl_tensor_alloc(y, SL_I64, 1, lab->shape));
    int rc = sl_tensor_copy(y, lab);
    const int64_t *v = y->data;
    for (int64_t i = 0; rc == SL_OK && i < lab->shape[0]; i++)
        if (v[i] < 0) /* the message reads v[i]: format it before releasing y */
            rc = sl_error(SL_EFORMAT, "%s: label %lld of entry %lld is negative", path,
                          (long long)v[i], (long long)i);
    if (rc < 0)
        sl_tensor_release(y);
    return rc;
}

int sl_dataset_idx(const char *images_path, const char *labels_path, sl_dataset *out)
{
    if (!images_path || !labels_path || !out)
        return sl_error(SL_EINVAL, "idx dataset: paths and out must not be NULL");
    sl_tensor img = {0}, lab = {0};
    sl_dataset d = {0};
    int rc = sl_idx_read(images_path, &img);
    if (rc == SL_OK)
        rc = sl_idx_read(labels_path, &lab);
    if (rc == SL_OK && img.ndim >= 1 && lab.ndim >= 1 && img.shape[0] != lab.shape[0])
        rc = sl_error(SL_EFORMAT, "%s has %lld images but %s has %lld labels", images_path,
                      (long long)img.shape[0], labels_path, (long long)lab.shape[0]);
    if (rc == SL_OK)
        rc = images_to_f32(images_path, &img, &d.x);
    if (rc == SL_OK)
        rc = labels_to_i64(labels_path, &lab, &d.y);
    sl_tensor_release(&img);
    sl_tensor_release(&lab);
    if (rc < 0) {
        sl_dataset_release(&d);
        return rc;
    }
    *out = d;
    return SL_OK;
}

/* ------------------------------------------------------------ directories */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* True if `name` is <anything><stem>-<kind>-idx<d>-ubyte, optionally .gz. */
static bool matches(const char *name, const char *stem, const char *kind)
{
    char plain[160], gz[164];
    snprintf(plain, sizeof plain, "%s-%s-ubyte", stem, kind);
    snprintf(gz, sizeof gz, "%s.gz", plain);
    return ends_with(name, plain) || ends_with(name, gz);
}

static bool matches_split(const char *name, const char *split, const char *kind)
{
    return matches(name, split, kind) ||
           (strcmp(split, "test") == 0 && matches(name, "t10k", kind));
}

/* Finds the one file of `dir` matching the split and kind ("images-idx3"). */
static int find_one(const char *dir, const char *split, const char *kind, char **path)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return sl_error(SL_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    char *found = NULL;
    int rc = SL_OK;
    for (struct dirent *e; rc == SL_OK && (e = readdir(dp)) != NULL;) {
        if (!matches_split(e->d_name, split, kind))
            continue;
        if (found) {
            rc = sl_error(SL_EINVAL, "%s: both %s and %s match *%s-%s-ubyte[.gz]; keep one",
                          dir, found, e->d_name, split, kind);
            break;
        }
        found = sl_strdup(e->d_name);
        if (!found)
            rc = SL_ENOMEM;
    }
    closedir(dp);
    if (rc == SL_OK && !found)
        rc = sl_error(SL_ENOTFOUND, "%s: no file matches *%s-%s-ubyte[.gz]%s", dir, split, kind,
                      strcmp(split, "test") == 0 ? " or t10k-*" : "");
    if (rc == SL_OK) {
        size_t n = strlen(dir) + strlen(found) + 2;
        *path = malloc(n);
        if (*path)
            snprintf(*path, n, "%s/%s", dir, found);
        else
            rc = sl_error(SL_ENOMEM, "out of memory");
    }
    free(found);
    return rc;
}

int sl_dataset_idx_dir(const char *dir, const char *split, sl_dataset *out)
{
    if (!dir || !split || !out)
        return sl_error(SL_EINVAL, "idx dataset: dir, split and out must not be NULL");
    if (!*split || strlen(split) > 64 || strchr(split, '/'))
        return sl_error(SL_EINVAL, "idx dataset: bad split name '%s' (e.g. \"train\", \"test\")",
                        split);
    char *images = NULL, *labels = NULL;
    int rc = find_one(dir, split, "images-idx3", &images);
    if (rc == SL_OK)
        rc = find_one(dir, split, "labels-idx1", &labels);
    if (rc == SL_OK)
        rc = sl_dataset_idx(images, labels, out);
    free(images);
    free(labels);
    return rc;
}
