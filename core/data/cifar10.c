/* core/data/cifar10.c — CIFAR-10's binary version.
 *
 * The archive cifar-10-binary.tar.gz holds cifar-10-batches-bin/ with
 * data_batch_1.bin .. data_batch_5.bin (train) and test_batch.bin (test),
 * each a sequence of 3073-byte records: the label (0..9), then the 32x32
 * red, green and blue planes, each row-major.  That is exactly the layout
 * of x (N, 3, 32, 32), so a record decodes by a straight copy and scale.
 *
 * The archive is read in place by the download module's libarchive (no
 * extracted copies in the cache to go stale); a directory of extracted .bin
 * files is read with stdio.  Either way every batch's bytes are gathered
 * first, so sizes are checked before the tensors are allocated.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <symlab/datasets.h>

#include "download/download.h"
#include "internal.h"

enum { SIDE = 32, PIXELS = 3 * SIDE * SIDE, RECORD = 1 + PIXELS, CLASSES = 10, MAX_BATCHES = 5 };

/* No CIFAR batch comes near this; a corrupt size must not drive malloc. */
#define MAX_BATCH_BYTES ((int64_t)1 << 28)

typedef struct batches {
    const char *names[MAX_BATCHES]; /* file names of the split, in order */
    int n;
    uint8_t *data[MAX_BATCHES];
    int64_t size[MAX_BATCHES];
} batches;

static int select_split(const char *split, batches *b)
{
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin"};
    *b = (batches){0};
    if (strcmp(split, "train") == 0) {
        for (int i = 0; i < MAX_BATCHES; i++)
            b->names[i] = train[i];
        b->n = MAX_BATCHES;
    } else if (strcmp(split, "test") == 0) {
        b->names[0] = "test_batch.bin";
        b->n = 1;
    } else {
        return sl_error(SL_EINVAL, "cifar10: unknown split '%s' (train or test)", split);
    }
    return SL_OK;
}

static void batches_free(batches *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->data[i]);
}

/* A batch's byte count must be a positive multiple of the record size. */
static int check_size(const char *where, const char *name, int64_t size)
{
    if (size <= 0 || size % RECORD != 0 || size > MAX_BATCH_BYTES)
        return sl_error(SL_EFORMAT, "%s: %s has %lld bytes, not a positive multiple of the "
                        "%d-byte CIFAR-10 record", where, name, (long long)size, RECORD);
    return SL_OK;
}

static int alloc_batch(const char *where, batches *b, int i, int64_t size)
{
    SL_TRY(check_size(where, b->names[i], size));
    if (!(b->data[i] = malloc((size_t)size)))
        return sl_error(SL_ENOMEM, "%s: out of memory reading %s", where, b->names[i]);
    b->size[i] = size;
    return SL_OK;
}

/* ---- a directory of .bin files ------------------------------------------------ */

static int read_bin(const char *dir, batches *b, int i)
{
    size_t n = strlen(dir) + strlen(b->names[i]) + 2;
    char *path = malloc(n);
    if (!path)
        return sl_error(SL_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s", dir, b->names[i]);
    FILE *f = fopen(path, "rb");
    struct stat st;
    int rc = SL_OK;
    if (!f)
        rc = sl_error(SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    else if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = sl_error(SL_EIO, "%s: not a regular file", path);
    if (rc == SL_OK)
        rc = alloc_batch(dir, b, i, (int64_t)st.st_size);
    if (rc == SL_OK && fread(b->data[i], 1, (size_t)b->size[i], f) != (size_t)b->size[i])
        rc = sl_error(SL_EIO, "%s: read error or file changed while reading", path);
    if (f)
        fclose(f);
    free(path);
    return rc;
}

static int read_dir(const char *dir, batches *b)
{
    for (int i = 0; i < b->n; i++)
        SL_TRY(read_bin(dir, b, i));
    return SL_OK;
}

/* ---- the archive --------------------------------------------------------------- */

typedef struct archive_target {
    const char *path;
    batches *b;
} archive_target;

/* Where the module puts member i: a batch buffer, size-checked. */
static int member_buffer(void *ud, int i, int64_t size, void **buf)
{
    archive_target *t = ud;
    SL_TRY(alloc_batch(t->path, t->b, i, size));
    *buf = t->b->data[i];
    return SL_OK;
}

static int read_archive(const char *path, batches *b)
{
    const char *missing = sl_download_missing();
    if (missing)
        return sl_error(SL_ENOTFOUND, "%s: cannot read a .tar.gz: %s (extract it and give "
                        "the folder of .bin files)", path, missing);
    archive_target t = {path, b};
    return sl_archive_read_members(path, b->n, b->names, member_buffer, &t);
}

/* ---- decoding ------------------------------------------------------------------- */

static int decode(const char *path, const batches *b, sl_dataset *out)
{
    int64_t n = 0;
    for (int i = 0; i < b->n; i++)
        n += b->size[i] / RECORD;
    sl_dataset d = {0};
    SL_TRY(sl_tensor_alloc(&d.x, SL_F32, 4, (const int64_t[]){n, 3, SIDE, SIDE}));
    int rc = sl_tensor_alloc(&d.y, SL_I64, 1, (const int64_t[]){n});
    float *x = d.x.data;
    int64_t *y = d.y.data, row = 0;
    for (int i = 0; rc == SL_OK && i < b->n; i++) {
        for (int64_t r = 0; rc == SL_OK && r < b->size[i] / RECORD; r++, row++) {
            const uint8_t *rec = b->data[i] + r * RECORD;
            if (rec[0] >= CLASSES)
                rc = sl_error(SL_EFORMAT, "%s: %s record %lld has label %d (CIFAR-10 labels "
                              "are 0..9)", path, b->names[i], (long long)r + 1, rec[0]);
            y[row] = rec[0];
            for (int j = 0; j < PIXELS; j++)
                x[row * PIXELS + j] = (float)rec[1 + j] / 255.0f;
        }
    }
    if (rc < 0) {
        sl_dataset_release(&d);
        return rc;
    }
    *out = d;
    return SL_OK;
}

int sl_dataset_cifar10(const char *path, const char *split, sl_dataset *out)
{
    if (!path || !split || !out)
        return sl_error(SL_EINVAL, "cifar10: path, split and out must not be NULL");
    batches b;
    SL_TRY(select_split(split, &b));
    struct stat st;
    int rc;
    if (stat(path, &st) != 0)
        rc = sl_error(SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    else
        rc = S_ISDIR(st.st_mode) ? read_dir(path, &b) : read_archive(path, &b);
    if (rc == SL_OK)
        rc = decode(path, &b, out);
    batches_free(&b);
    return rc;
}
