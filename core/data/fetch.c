/* core/data/fetch.c — SHA-256 of files and verified downloads.
 *
 * HTTP(S) and file:// transfers are libcurl's; SHA-256 is OpenSSL's EVP
 * interface.  A download streams into a temporary file beside its target
 * (core/atomic.c) while the digest is updated with the same bytes, so the
 * file is read once; it is renamed into place only after the transfer
 * completed, its size matched and its digest matched.  Every other ending
 * removes the temporary file.  Without libcurl/libcrypto (SL_HAVE_DOWNLOAD
 * unset) the functions fail with a message saying so.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifdef SL_HAVE_DOWNLOAD
#include <curl/curl.h>
#include <openssl/evp.h>
#endif

/* Seconds to wait for a connection, and a transfer slower than 1 byte/s for
 * this long counts as stalled: a dead network fails instead of hanging. */
#define CONNECT_TIMEOUT 30L
#define STALL_TIME 60L

#define NO_SUPPORT "symlab was built without download support (configure found no libcurl, " \
                   "libcrypto or libarchive)"

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

#ifdef SL_HAVE_DOWNLOAD

bool sl_download_supported(void) { return true; }

/* The last path component, for progress reports. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void to_hex(const unsigned char *md, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

/* Finishes ctx into hex; false if OpenSSL fails. */
static bool digest_hex(EVP_MD_CTX *ctx, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != 32)
        return false;
    to_hex(md, hex);
    return true;
}

static EVP_MD_CTX *new_sha256(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

int sl_sha256_file(const char *path, char hex[65])
{
    if (!path || !hex)
        return sl_error(SL_EINVAL, "sha256: path and hex must not be NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_error(SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = new_sha256();
    int rc = ctx ? SL_OK : sl_error(SL_ENOMEM, "%s: cannot start SHA-256 (OpenSSL)", path);
    enum { BUF = 1 << 16 };
    unsigned char *buf = rc == SL_OK ? malloc(BUF) : NULL;
    if (rc == SL_OK && !buf)
        rc = sl_error(SL_ENOMEM, "%s: out of memory", path);
    size_t n;
    while (rc == SL_OK && (n = fread(buf, 1, BUF, f)) > 0)
        if (EVP_DigestUpdate(ctx, buf, n) != 1)
            rc = sl_error(SL_ENOMEM, "%s: SHA-256 failed (OpenSSL)", path);
    if (rc == SL_OK && ferror(f))
        rc = sl_error(SL_EIO, "%s: read error: %s", path, strerror(errno));
    if (rc == SL_OK && !digest_hex(ctx, hex))
        rc = sl_error(SL_ENOMEM, "%s: SHA-256 failed (OpenSSL)", path);
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}

/* One transfer: where its bytes go and what it has seen. */
typedef struct transfer {
    const char *name; /* the file name reported to progress */
    sl_atomic_file out;
    EVP_MD_CTX *md;
    int64_t got, size;
    sl_progress_fn progress;
    void *ud;
    bool cancelled;
    int write_errno; /* non-zero once writing failed */
    bool digest_failed;
} transfer;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    transfer *t = arg;
    size_t len = size * n;
    if (fwrite(p, 1, len, t->out.f) != len) {
        t->write_errno = errno ? errno : EIO;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    if (EVP_DigestUpdate(t->md, p, len) != 1) {
        t->digest_failed = true;
        return 0;
    }
    t->got += (int64_t)len;
    return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    transfer *t = arg;
    if (!t->progress)
        return 0;
    int64_t total = t->size > 0 ? t->size : (dltotal > 0 ? (int64_t)dltotal : -1);
    if (t->progress(t->ud, t->name, (int64_t)dlnow, total) != 0) {
        t->cancelled = true;
        return 1; /* libcurl stops with CURLE_ABORTED_BY_CALLBACK */
    }
    return 0;
}

static int setup(CURL *c, const char *url, transfer *t, char *errbuf)
{
    CURLcode e = CURLE_OK;
#define SET(opt, val) \
    if (e == CURLE_OK) \
    e = curl_easy_setopt(c, opt, val)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_data);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, t);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_FAILONERROR, 1L); /* an HTTP status >= 400 is a failure, not a file */
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 10L);
    SET(CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, STALL_TIME);
    SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for DNS timeouts: safe in threads */
    SET(CURLOPT_USERAGENT, "symlab/" SL_VERSION_STRING);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the _STR forms */
    SET(CURLOPT_PROTOCOLS_STR, "http,https,file");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
#undef SET
    if (e != CURLE_OK)
        return sl_error(SL_EIO, "%s: cannot set up the download: %s", url, curl_easy_strerror(e));
    return SL_OK;
}

/* Runs the transfer into t->out; a status naming the URL. */
static int transfer_run(const char *url, transfer *t)
{
    CURL *c = curl_easy_init();
    if (!c)
        return sl_error(SL_ENOMEM, "%s: cannot start libcurl", url);
    char errbuf[CURL_ERROR_SIZE] = "";
    int rc = setup(c, url, t, errbuf);
    CURLcode e = rc == SL_OK ? curl_easy_perform(c) : CURLE_OK;
    curl_easy_cleanup(c);
    if (rc < 0)
        return rc;
    if (t->cancelled)
        return sl_error(SL_EIO, "%s: download cancelled", url);
    if (t->write_errno)
        return sl_error(SL_EIO, "%s: cannot write %s: %s", url, t->out.tmp,
                        strerror(t->write_errno));
    if (t->digest_failed)
        return sl_error(SL_ENOMEM, "%s: SHA-256 failed (OpenSSL)", url);
    if (e != CURLE_OK)
        return sl_error(SL_EIO, "%s: download failed: %s", url,
                        errbuf[0] ? errbuf : curl_easy_strerror(e));
    return SL_OK;
}

/* Digest and size of the received bytes against what was expected: one
 * message with both hashes, and the byte counts (a short count usually means
 * a truncated transfer). */
static int transfer_verify(const char *url, const char *dest, transfer *t, const char *want)
{
    char got[65];
    if (!digest_hex(t->md, got))
        return sl_error(SL_ENOMEM, "%s: SHA-256 failed (OpenSSL)", url);
    bool size_ok = t->size <= 0 || t->got == t->size;
    if (strcmp(got, want) == 0 && size_ok)
        return SL_OK;
    char sizes[96] = "";
    if (!size_ok)
        snprintf(sizes, sizeof sizes, " of %lld expected", (long long)t->size);
    return sl_error(SL_EFORMAT, "%s: SHA-256 mismatch: expected %s, got %s (%lld bytes%s); "
                    "not saved as %s", url, want, got, (long long)t->got, sizes, dest);
}

int sl_download(const char *url, const char *dest, const char *sha256, int64_t size,
                sl_progress_fn progress, void *ud)
{
    char want[65];
    if (!url || !dest)
        return sl_error(SL_EINVAL, "download: url and dest must not be NULL");
    if (!parse_sha256(sha256, want))
        return sl_error(SL_EINVAL, "%s: expected SHA-256 '%s' is not 64 hex digits", url,
                        sha256 ? sha256 : "(null)");
    transfer t = {.name = base_name(dest), .size = size, .progress = progress, .ud = ud};
    if (!(t.md = new_sha256()))
        return sl_error(SL_ENOMEM, "%s: cannot start SHA-256 (OpenSSL)", url);
    int rc = sl_atomic_begin(dest, &t.out);
    if (rc == SL_OK)
        rc = transfer_run(url, &t);
    if (rc == SL_OK)
        rc = transfer_verify(url, dest, &t, want);
    if (rc == SL_OK)
        rc = sl_atomic_commit(&t.out, "download");
    else
        sl_atomic_abort(&t.out);
    if (rc == SL_OK && progress)
        progress(ud, t.name, t.got, t.got);
    EVP_MD_CTX_free(t.md);
    return rc;
}

#else /* !SL_HAVE_DOWNLOAD */

bool sl_download_supported(void) { return false; }

int sl_sha256_file(const char *path, char hex[65])
{
    (void)hex;
    return sl_error(SL_ENOTFOUND, "%s: cannot compute SHA-256: " NO_SUPPORT,
                    path ? path : "(null)");
}

int sl_download(const char *url, const char *dest, const char *sha256, int64_t size,
                sl_progress_fn progress, void *ud)
{
    char want[65];
    (void)dest;
    (void)size;
    (void)progress;
    (void)ud;
    if (!parse_sha256(sha256, want))
        return sl_error(SL_EINVAL, "%s: expected SHA-256 '%s' is not 64 hex digits",
                        url ? url : "(null)", sha256 ? sha256 : "(null)");
    return sl_error(SL_ENOTFOUND, "cannot download %s: " NO_SUPPORT, url ? url : "(null)");
}

#endif
