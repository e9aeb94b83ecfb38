/* core/download/download.h — the interface between libsymlab and its
 * download module (never installed).
 *
 * Why a module: libcurl, OpenSSL's libcrypto and libarchive bring ~50 shared
 * objects with them (Kerberos, LDAP, GnuTLS, ICU, ...).  Linked into
 * libsymlab, the dynamic loader mapped them all before `main`: an empty
 * program linked against them starts in ~66 ms instead of ~10, and every
 * symlab process (a sweep starts hundreds) paid that for a download it
 * almost never made.  So the code that needs them is built as download.so
 * (installed in $(pkglibdir), never on the plugin path), and core/data/
 * fetch.c dlopen()s it at the first download, hash or archive read.
 *
 * The module links libsymlab and reports errors with sl_error like any
 * libsymlab function; its messages name the file or URL.  Buffers it hands
 * back were allocated with malloc, and the caller frees them.
 */
#ifndef SYMLAB_CORE_DOWNLOAD_H
#define SYMLAB_CORE_DOWNLOAD_H

#include <stdint.h>
#include <stdio.h>

#include <symlab/datasets.h>

/* Bumped whenever sl_download_ops changes: libsymlab refuses a module of
 * another version (a stale install beside a new library). */
#define SL_DOWNLOAD_ABI 1

/* Gives read_members the buffer for member i of `size` bytes in *buf; a
 * status (an error stops the read and is returned). */
typedef int (*sl_member_alloc_fn)(void *ud, int i, int64_t size, void **buf);

typedef struct sl_download_ops {
    unsigned abi; /* SL_DOWNLOAD_ABI */

    /* SHA-256 of the file at path into hex[65] (64 lowercase digits, NUL).
     * SL_EIO if it cannot be read. */
    int (*sha256_file)(const char *path, char hex[65]);

    /* Streams url (http, https or file) into `out`, updating a SHA-256 of
     * the same bytes.  name: the file name given to progress; size: the
     * expected byte count, or <= 0 if unknown (progress's total).  On SL_OK
     * hex holds the digest and *got the byte count; on failure (network,
     * HTTP status >= 400, write error, cancel) the message names the URL and
     * `out` holds whatever arrived.  Nothing is renamed or removed here:
     * the caller owns the file. */
    int (*transfer)(const char *url, FILE *out, const char *name, int64_t size,
                    sl_progress_fn progress, void *ud, char hex[65], int64_t *got);

    /* Reads the regular-file members of the tar archive at path (gzip or
     * not) whose last path component is names[i], i < n, each into the
     * buffer alloc gives.  A name found twice, a member without a size, a
     * short read, a corrupt archive or a name never found is an error
     * naming path and the member.  Members not named are skipped. */
    int (*read_members)(const char *path, int n, const char *const names[],
                        sl_member_alloc_fn alloc, void *ud);
} sl_download_ops;

/* The module's one exported symbol. */
#define SL_DOWNLOAD_ENTRY "sl_download_module"
SL_API const sl_download_ops *sl_download_module(void);

/* libsymlab's side (core/data/fetch.c).  Why the module cannot be used (not
 * built, or dlopen() failed: the loader's message), or NULL once it is
 * loaded; the first call loads it. */
const char *sl_download_missing(void);

/* read_members through the module,
 * loading it first; SL_ENOTFOUND, with a message naming path, if it cannot
 * be loaded. */
int sl_archive_read_members(const char *path, int n, const char *const names[],
                            sl_member_alloc_fn alloc, void *ud);

#endif
