/* symlab/datasets.h — datasets by name: a catalog of well-known datasets, a
 * cache directory, verified downloads, and the CIFAR-10 binary reader.
 *
 * sl_data_load("fashion-mnist", "train", NULL, &d) finds the dataset's files
 * in the cache (<root>/fashion-mnist/), downloads the missing ones from the
 * catalog's URLs, checks every file's SHA-256 against the value recorded in
 * core/data/catalog.c, and reads the split.  Nothing here prints: progress
 * is reported through a callback, failures through sl_error().
 *
 * Downloads need libcurl, OpenSSL's libcrypto (SHA-256) and libarchive (for
 * the CIFAR-10 archive); configure detects them.  Without them
 * (sl_download_supported() is false) files already in the cache are used
 * unverified and a missing file is an SL_ENOTFOUND error saying that symlab
 * was built without download support.  docs/datasets.md has the details.
 */
#ifndef SYMLAB_DATASETS_H
#define SYMLAB_DATASETS_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/data.h>
#include <symlab/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called as a download proceeds: `file` is the file's name, `done` the bytes
 * received so far, `total` the expected size (-1 if unknown).  It is called
 * at least once with done == total when a file completes.  Return 0 to go
 * on, non-zero to cancel (the download then fails with SL_EIO, "cancelled",
 * and leaves nothing behind). */
typedef int (*sl_progress_fn)(void *ud, const char *file, int64_t done, int64_t total);

/* True if this libsymlab was built with download support. */
SL_API bool sl_download_supported(void);

/* The SHA-256 of a file's bytes as 64 lowercase hex digits and a NUL in
 * hex[65].  SL_EIO if it cannot be read; SL_ENOTFOUND without download
 * support. */
SL_API int sl_sha256_file(const char *path, char hex[65]);

/* Downloads `url` (http, https or file) to `dest`.  The bytes go to a
 * temporary file beside dest, which is renamed over dest only if their
 * SHA-256 equals `sha256` (64 hex digits, either case) and, if size > 0,
 * their count equals `size`.  On any failure — network, HTTP status >= 400,
 * truncated transfer, mismatch, cancel — nothing is left behind and the
 * one-line message names the URL (and, for a mismatch, both hashes).
 * progress may be NULL. */
SL_API int sl_download(const char *url, const char *dest, const char *sha256, int64_t size,
                       sl_progress_fn progress, void *ud);

/* ---- the catalog ---------------------------------------------------------- */

typedef struct sl_data_file {
    const char *name;   /* file name, both in the cache folder and at the URL */
    const char *sha256; /* 64 lowercase hex digits of the upstream file */
    int64_t size;       /* bytes of the upstream file */
} sl_data_file;

typedef struct sl_data_entry {
    const char *name;    /* "fashion-mnist" */
    const char *format;  /* "idx" (4 files: train images, labels, test images,
                            labels) or "cifar10" (1 file: the binary archive) */
    const char *url;     /* base URL, ends with '/': file f is at url + f.name;
                            NULL for a dataset shipped with symlab */
    const char *summary; /* one line: what it is, its size and licence */
    int nfiles;
    const sl_data_file *files;
} sl_data_entry;

/* The catalog's entries, in a fixed order: i in [0, sl_data_count()). */
SL_API int sl_data_count(void);
SL_API const sl_data_entry *sl_data_at(int i);
/* The entry called `name`; NULL and SL_ENOTFOUND (listing the known names)
 * if there is none. */
SL_API const sl_data_entry *sl_data_find(const char *name);

/* Where files come from.  Every field may be NULL (or the whole struct, for
 * all defaults):
 *   root     the cache directory; default $SYMLAB_DATA, else
 *            $XDG_CACHE_HOME/symlab, else $HOME/.cache/symlab.  A dataset's
 *            files live in <root>/<name>/.
 *   mirror   a base URL replacing the catalog's: file f of dataset d is
 *            fetched from <mirror>/<d>/<f>; default $SYMLAB_DATA_MIRROR.
 *   manifest a file of lines "<sha256>  <dataset>/<file>" (sha256sum's
 *            format; blank lines and lines starting with '#' are skipped)
 *            whose hashes replace the catalog's for the files it names, for
 *            mirrors that hold other versions of the files; default
 *            $SYMLAB_DATA_MANIFEST.  A line naming a file the catalog does
 *            not have is an error.  Sizes are not checked for such files.
 *   progress, ud   download progress (sl_progress_fn), or NULL. */
typedef struct sl_data_source {
    const char *root;
    const char *mirror;
    const char *manifest;
    sl_progress_fn progress;
    void *ud;
} sl_data_source;

/* The cache directory src selects, as a new malloc'ed string (*out). */
SL_API int sl_data_root(const sl_data_source *src, char **out);

/* Makes sure every file of dataset `name` is in its cache folder, checking
 * the SHA-256 of those present and downloading those missing (creating the
 * folders as needed).  *dir_out (may be NULL) receives the folder as a new
 * malloc'ed string; for a shipped dataset that is its folder in symlab's
 * data directory and nothing is downloaded. */
SL_API int sl_data_fetch(const char *name, const sl_data_source *src, char **dir_out);

/* Reads split "train" or "test" of dataset `name` from `dir`, the folder
 * sl_data_fetch gave, without checking or fetching anything. */
SL_API int sl_data_read(const char *name, const char *dir, const char *split, sl_dataset *out);

/* sl_data_fetch, then reads split "train" or "test" of the dataset: x f32
 * (N, C, H, W) in [0, 1], y i64 (N) class labels. */
SL_API int sl_data_load(const char *name, const char *split, const sl_data_source *src,
                        sl_dataset *out);

/* ---- CIFAR-10 --------------------------------------------------------------- */

/* Reads split "train" (data_batch_1.bin .. data_batch_5.bin, in order) or
 * "test" (test_batch.bin) of CIFAR-10's binary version.  `path` is either
 * the archive cifar-10-binary.tar.gz (read with libarchive, without
 * extracting; SL_ENOTFOUND without download support) or a directory holding
 * the .bin files.  A record is one label byte (0..9) and 3072 pixel bytes
 * (1024 red, 1024 green, 1024 blue, each row-major 32x32).  x becomes f32
 * (N, 3, 32, 32) scaled to [0, 1], y i64 (N).  A file whose size is not a
 * positive multiple of 3073 bytes, or a label above 9, is SL_EFORMAT. */
SL_API int sl_dataset_cifar10(const char *path, const char *split, sl_dataset *out);

#ifdef __cplusplus
}
#endif
#endif
