/* core/download/download.c — the download module: transfers (libcurl),
 * SHA-256 (OpenSSL's EVP interface) and tar archive members (libarchive).
 *
 * Built as download.so and loaded by core/data/fetch.c at first use
 * (download.h says why).  Everything here is a thin layer over the three
 * libraries; what to do with the bytes — temporary files, verification,
 * renaming, decoding — stays in libsymlab.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include <symlab/symlab.h>

#include "download.h"

/* Seconds to wait for a connection, and a transfer slower than 1 byte/s for
 * this long counts as stalled: a dead network fails instead of hanging. */
#define CONNECT_TIMEOUT 30L
#define STALL_TIME 60L

/* ---- SHA-256 -------------------------------------------------------------------- */

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

static int sha256_file(const char *path, char hex[65])
{
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

/* ---- transfers ------------------------------------------------------------------- */

/* One transfer: where its bytes go and what it has seen. */
typedef struct transfer_state {
    const char *name; /* the file name reported to progress */
    FILE *out;
    EVP_MD_CTX *md;
    int64_t got, size;
    sl_progress_fn progress;
    void *ud;
    bool cancelled;
    int write_errno; /* non-zero once writing failed */
    bool digest_failed;
} transfer_state;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    transfer_state *t = arg;
    size_t len = size * n;
    if (fwrite(p, 1, len, t->out) != len) {
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
    transfer_state *t = arg;
    if (!t->progress)
        return 0;
    int64_t total = t->size > 0 ? t->size : (dltotal > 0 ? (int64_t)dltotal : -1);
    if (t->progress(t->ud, t->name, (int64_t)dlnow, total) != 0) {
        t->cancelled = true;
        return 1; /* libcurl stops with CURLE_ABORTED_BY_CALLBACK */
    }
    return 0;
}

static int setup(CURL *c, const char *url, transfer_state *t, char *errbuf)
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

/* Runs the transfer described by t; a status naming the URL. */
static int run(const char *url, transfer_state *t)
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
        return sl_error(SL_EIO, "%s: cannot write: %s", url, strerror(t->write_errno));
    if (t->digest_failed)
        return sl_error(SL_ENOMEM, "%s: SHA-256 failed (OpenSSL)", url);
    if (e != CURLE_OK)
        return sl_error(SL_EIO, "%s: download failed: %s", url,
                        errbuf[0] ? errbuf : curl_easy_strerror(e));
    return SL_OK;
}

static int transfer(const char *url, FILE *out, const char *name, int64_t size,
                    sl_progress_fn progress, void *ud, char hex[65], int64_t *got)
{
    transfer_state t = {.name = name, .out = out, .size = size, .progress = progress, .ud = ud};
    if (!(t.md = new_sha256()))
        return sl_error(SL_ENOMEM, "%s: cannot start SHA-256 (OpenSSL)", url);
    int rc = run(url, &t);
    if (rc == SL_OK && !digest_hex(t.md, hex))
        rc = sl_error(SL_ENOMEM, "%s: SHA-256 failed (OpenSSL)", url);
    *got = t.got;
    EVP_MD_CTX_free(t.md);
    return rc;
}

/* ---- archive members ----------------------------------------------------------- */

/* Index of the name an archive member's last path component is, or -1. */
static int member_index(int n, const char *const names[], const char *member)
{
    const char *slash = strrchr(member, '/');
    const char *base = slash ? slash + 1 : member;
    for (int i = 0; i < n; i++)
        if (strcmp(base, names[i]) == 0)
            return i;
    return -1;
}

static int read_member(const char *path, struct archive *a, struct archive_entry *e,
                       const char *name, sl_member_alloc_fn alloc, void *ud, int i)
{
    if (!archive_entry_size_is_set(e))
        return sl_error(SL_EFORMAT, "%s: %s has no size in the archive", path, name);
    int64_t size = (int64_t)archive_entry_size(e);
    void *buf;
    SL_TRY(alloc(ud, i, size, &buf));
    la_ssize_t got = archive_read_data(a, buf, (size_t)size);
    if (got < 0)
        return sl_error(SL_EFORMAT, "%s: %s: %s", path, name, archive_error_string(a));
    if (got != size)
        return sl_error(SL_EFORMAT, "%s: %s: truncated (%lld of %lld bytes)", path, name,
                        (long long)got, (long long)size);
    return SL_OK;
}

static int read_members(const char *path, int n, const char *const names[],
                        sl_member_alloc_fn alloc, void *ud)
{
    bool *seen = calloc((size_t)(n > 0 ? n : 1), sizeof *seen);
    struct archive *a = seen ? archive_read_new() : NULL;
    if (!a) {
        free(seen);
        return sl_error(SL_ENOMEM, "%s: cannot start libarchive", path);
    }
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    int rc = SL_OK;
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK)
        rc = sl_error(SL_EIO, "%s: cannot open: %s", path, archive_error_string(a));
    struct archive_entry *e;
    int r = ARCHIVE_OK;
    while (rc == SL_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        int i = archive_entry_filetype(e) == AE_IFREG
                    ? member_index(n, names, archive_entry_pathname(e)) : -1;
        if (i < 0)
            continue;
        if (seen[i])
            rc = sl_error(SL_EFORMAT, "%s: %s appears twice in the archive", path, names[i]);
        else
            rc = read_member(path, a, e, names[i], alloc, ud, i);
        seen[i] = true;
    }
    if (rc == SL_OK && r != ARCHIVE_EOF)
        rc = sl_error(SL_EFORMAT, "%s: corrupt archive: %s", path, archive_error_string(a));
    for (int i = 0; rc == SL_OK && i < n; i++)
        if (!seen[i])
            rc = sl_error(SL_EFORMAT, "%s: the archive has no %s", path, names[i]);
    archive_read_free(a);
    free(seen);
    return rc;
}

/* ---- the entry point ------------------------------------------------------------ */

const sl_download_ops *sl_download_module(void)
{
    static const sl_download_ops ops = {
        .abi = SL_DOWNLOAD_ABI,
        .sha256_file = sha256_file,
        .transfer = transfer,
        .read_members = read_members,
    };
    return &ops;
}
