/* core/data/fetch.c — SHA-256 of files, verified downloads and archive
 * members, through the download module.
 *
 * The work is done by download.so (core/download/download.h says why it is
 * a module), dlopen()ed here at the first call and kept for the life of the
 * process.  A download streams into a temporary file beside its target
 * (core/atomic.c) while the module digests the same bytes, so the file is
 * read once; it is renamed into place only after the transfer completed,
 * its size matched and its digest matched.  Every other ending removes the
 * temporary file.  Built without libcurl/libcrypto/libarchive
 * (SL_HAVE_DOWNLOAD unset), or with the module missing, the functions fail
 * with a message saying so.
 */
#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "download/download.h"
#include "internal.h"

#define NO_SUPPORT "symlab was built without download support (configure found no libcurl, " \
                   "libcrypto or libarchive)"

/* ---- the module ------------------------------------------------------------------ */

static const sl_download_ops *module_ops;
static char module_error[4096 + 256]; /* room for a path and the words around it */
static pthread_once_t module_once = PTHREAD_ONCE_INIT;

#ifdef SL_HAVE_DOWNLOAD
static void module_load(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/download.so", sl_module_dir());
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(module_error, sizeof module_error, "cannot load the download module: %s",
                 dlerror());
        return;
    }
    const sl_download_ops *(*entry)(void);
    *(void **)&entry = dlsym(h, SL_DOWNLOAD_ENTRY);
    const sl_download_ops *ops = entry ? entry() : NULL;
    if (!ops || ops->abi != SL_DOWNLOAD_ABI) {
        snprintf(module_error, sizeof module_error, "%s is not this symlab's download module "
                 "(a stale install? reinstall symlab)", path);
        dlclose(h);
        return;
    }
    module_ops = ops; /* never closed: libcurl and OpenSSL keep global state */
}
#else
static void module_load(void) { snprintf(module_error, sizeof module_error, NO_SUPPORT); }
#endif

const char *sl_download_missing(void)
{
    pthread_once(&module_once, module_load);
    return module_ops ? NULL : module_error;
}

bool sl_download_supported(void) { return !sl_download_missing(); }

/* The module's functions; NULL after setting an error that starts with
 * `what` (the file or URL concerned). */
static const sl_download_ops *ops_for(const char *what)
{
    const char *missing = sl_download_missing();
    if (missing)
        sl_error(SL_ENOTFOUND, "%s: %s", what, missing);
    return module_ops;
}

/* ---- hashes and downloads ------------------------------------------------------- */

/* Normalises a hex SHA-256 to lowercase in out[65]; false unless 64 hex digits. */
static bool parse_sha256(const char *s, char out[65])
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return false;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[64] = '\0';
    return true;
}

/* The last path component, for progress reports. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int sl_sha256_file(const char *path, char hex[65])
{
    if (!path || !hex)
        return sl_error(SL_EINVAL, "sha256: path and hex must not be NULL");
    const sl_download_ops *ops = ops_for(path);
    return ops ? ops->sha256_file(path, hex) : SL_ENOTFOUND;
}

/* Digest and size of the received bytes against what was expected: one
 * message with both hashes, and the byte counts (a short count usually means
 * a truncated transfer). */
static int verify(const char *url, const char *dest, const char *want, const char *got,
                  int64_t got_size, int64_t size)
{
    bool size_ok = size <= 0 || got_size == size;
    if (strcmp(got, want) == 0 && size_ok)
        return SL_OK;
    char sizes[96] = "";
    if (!size_ok)
        snprintf(sizes, sizeof sizes, " of %lld expected", (long long)size);
    return sl_error(SL_EFORMAT, "%s: SHA-256 mismatch: expected %s, got %s (%lld bytes%s); "
                    "not saved as %s", url, want, got, (long long)got_size, sizes, dest);
}

int sl_download(const char *url, const char *dest, const char *sha256, int64_t size,
                sl_progress_fn progress, void *ud)
{
    char want[65], got[65];
    if (!url || !dest)
        return sl_error(SL_EINVAL, "download: url and dest must not be NULL");
    if (!parse_sha256(sha256, want))
        return sl_error(SL_EINVAL, "%s: expected SHA-256 '%s' is not 64 hex digits", url,
                        sha256 ? sha256 : "(null)");
    const sl_download_ops *ops = ops_for(url);
    if (!ops)
        return SL_ENOTFOUND;
    sl_atomic_file out;
    int64_t n = 0;
    int rc = sl_atomic_begin(dest, &out);
    if (rc == SL_OK)
        rc = ops->transfer(url, out.f, base_name(dest), size, progress, ud, got, &n);
    if (rc == SL_OK)
        rc = verify(url, dest, want, got, n, size);
    if (rc == SL_OK)
        rc = sl_atomic_commit(&out, "download");
    else
        sl_atomic_abort(&out);
    if (rc == SL_OK && progress)
        progress(ud, base_name(dest), n, n);
    return rc;
}

int sl_archive_read_members(const char *path, int n, const char *const names[],
                            sl_member_alloc_fn alloc, void *ud)
{
    const sl_download_ops *ops = ops_for(path);
    return ops ? ops->read_members(path, n, names, alloc, ud) : SL_ENOTFOUND;
}
