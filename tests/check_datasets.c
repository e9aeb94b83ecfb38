/* tests/check_datasets.c — datasets by name: SHA-256, verified downloads
 * (file:// and a loopback HTTP server, so no test needs the network), the
 * catalog, the cache directory, the manifest, and the CIFAR-10 reader.
 *
 * Built without download support, the download tests check instead that
 * every path refuses with the "built without download support" message. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MNIST10K_DIR SL_TEST_SRCDIR "/data/mnist10k"
#define NO_SUPPORT "without download support"

/* ------------------------------------------------------------ helpers */

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/symlab-check-datasets-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void) { nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

/* tmpdir/name (sl_test_path: the buffers rotate). */
static const char *tmp(const char *name) { return sl_test_path(tmpdir, name); }

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries of dir (other than . and ..) whose name contains `part`. */
static int count_entries(const char *dir, const char *part)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | grep -c -- '%s'", dir, part);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = -1;
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* "file://<path>" in a static buffer. */
static const char *file_url(const char *path)
{
    static char url[600];
    snprintf(url, sizeof url, "file://%s", path);
    return url;
}

static void sha256_of(const char *path, char hex[65]) { ck_assert_sl_ok(sl_sha256_file(path, hex)); }

/* Progress reports seen by record_progress. */
typedef struct progress_log {
    int calls;
    int64_t last_done, last_total, max_done;
    bool decreased;
    int cancel_after; /* cancel on this call (0: never) */
} progress_log;

static int record_progress(void *ud, const char *file, int64_t done, int64_t total)
{
    progress_log *p = ud;
    ck_assert_ptr_nonnull(file);
    p->decreased |= done < p->last_done;
    p->last_done = done;
    p->last_total = total;
    p->max_done = done > p->max_done ? done : p->max_done;
    p->calls++;
    return p->cancel_after && p->calls >= p->cancel_after;
}

/* ------------------------------------------------------------ SHA-256 */

/* The FIPS 180-2 example vectors: hashes recorded from the standard, not
 * computed by the code under test. */
START_TEST(sha256_matches_the_standard_vectors)
{
    make_tmpdir();
    char hex[65];
    sl_test_write_bytes(tmp("abc"), "abc", 3);
    sl_test_write_bytes(tmp("empty"), "", 0);
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sl_test_write_bytes(tmp("two"), two_blocks, strlen(two_blocks));
    if (!sl_download_supported()) {
        ck_assert_sl_fails(sl_sha256_file(tmp("abc"), hex), SL_ENOTFOUND, NO_SUPPORT);
        remove_tmpdir();
        return;
    }
    sha256_of(tmp("abc"), hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_of(tmp("empty"), hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_of(tmp("two"), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    ck_assert_sl_fails(sl_sha256_file(tmp("missing"), hex), SL_EIO, "missing");
    remove_tmpdir();
}
END_TEST

/* ------------------------------------------------------------ downloads */

/* A source file of n pseudo-random bytes and its hash. */
static void make_source(const char *path, size_t n, char hex[65])
{
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        buf[i] = (unsigned char)(s >> 16);
    }
    sl_test_write_bytes(path, buf, n);
    free(buf);
    if (sl_download_supported())
        sha256_of(path, hex);
    else
        snprintf(hex, 65, "%064d", 0);
}

START_TEST(download_file_url_verifies_and_renames)
{
    make_tmpdir();
    char hex[65];
    make_source(tmp("src.bin"), 300000, hex);
    mkdir(tmp("out"), 0755);
    progress_log log = {0};
    int rc = sl_download(file_url(tmp("src.bin")), tmp("out/got.bin"), hex, 300000,
                         record_progress, &log);
    if (!sl_download_supported()) {
        ck_assert_int_eq(rc, SL_ENOTFOUND);
        ck_assert_ptr_nonnull(strstr(sl_last_error(), NO_SUPPORT));
        ck_assert_ptr_nonnull(strstr(sl_last_error(), tmp("src.bin")));
        ck_assert(!exists(tmp("out/got.bin")));
        remove_tmpdir();
        return;
    }
    ck_assert_sl_ok(rc);
    char got[65];
    sha256_of(tmp("out/got.bin"), got);
    ck_assert_str_eq(got, hex);
    ck_assert_int_eq(count_entries(tmp("out"), ".tmp."), 0);
    ck_assert_int_gt(log.calls, 0);
    ck_assert(!log.decreased);
    ck_assert_int_eq(log.last_done, 300000);
    ck_assert_int_eq(log.last_total, 300000);
    /* The expected hash may be given in upper case. */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)toupper((unsigned char)hex[i]);
    ck_assert_sl_ok(sl_download(file_url(tmp("src.bin")), tmp("out/again.bin"), upper, 0,
                                NULL, NULL));
    ck_assert(exists(tmp("out/again.bin")));
    remove_tmpdir();
}
END_TEST

START_TEST(download_mismatch_is_refused_and_leaves_nothing)
{
    if (!sl_download_supported())
        return; /* covered by download_file_url_verifies_and_renames */
    make_tmpdir();
    char hex[65], other[65];
    make_source(tmp("src.bin"), 5000, hex);
    sl_test_write_bytes(tmp("other.bin"), "something else", 14);
    sha256_of(tmp("other.bin"), other);
    mkdir(tmp("out"), 0755);
    const char *url = file_url(tmp("src.bin"));
    ck_assert_sl_fails(sl_download(url, tmp("out/got.bin"), other, 0, NULL, NULL), SL_EFORMAT,
                       "SHA-256 mismatch");
    const char *msg = sl_last_error();
    ck_assert_msg(strstr(msg, url) && strstr(msg, hex) && strstr(msg, other),
                  "message names neither URL nor both hashes: %s", msg);
    ck_assert(!strchr(msg, '\n'));
    ck_assert(!exists(tmp("out/got.bin")));
    ck_assert_int_eq(count_entries(tmp("out"), "got"), 0);
    /* A short file against the size it should have: the counts are named. */
    ck_assert_sl_fails(sl_download(url, tmp("out/got.bin"), hex, 6000, NULL, NULL), SL_EFORMAT,
                       "5000 bytes of 6000 expected");
    ck_assert_int_eq(count_entries(tmp("out"), "got"), 0);
    /* A malformed expected hash is the caller's error. */
    ck_assert_sl_fails(sl_download(url, tmp("out/got.bin"), "abc", 0, NULL, NULL), SL_EINVAL,
                       "not 64 hex digits");
    remove_tmpdir();
}
END_TEST

START_TEST(download_cancelled_by_progress_leaves_nothing)
{
    if (!sl_download_supported())
        return;
    make_tmpdir();
    char hex[65];
    make_source(tmp("src.bin"), 4 << 20, hex);
    mkdir(tmp("out"), 0755);
    progress_log log = {.cancel_after = 1};
    ck_assert_sl_fails(sl_download(file_url(tmp("src.bin")), tmp("out/got.bin"), hex, 0,
                                   record_progress, &log),
                       SL_EIO, "cancelled");
    ck_assert_int_eq(count_entries(tmp("out"), "got"), 0);
    remove_tmpdir();
}
END_TEST

/* A one-shot HTTP server on 127.0.0.1 (in a child process) that answers
 * with `status` and a Content-Length of `promised` bytes, sends `sent`
 * bytes and closes: a truncated transfer when sent < promised.  Returns
 * its port; *pid is the child. */
static int serve_once(const char *status, int promised, int sent, pid_t *pid)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(s, 1), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *pid = fork();
    ck_assert_int_ge(*pid, 0);
    if (*pid == 0) {
        int c = accept(s, NULL, NULL);
        char req[4096];
        if (c >= 0 && read(c, req, sizeof req) > 0) {
            char head[256];
            int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Length: %d\r\n"
                             "Connection: close\r\n\r\n", status, promised);
            char body[1024];
            memset(body, 'x', sizeof body);
            if (write(c, head, (size_t)n) == n && sent > 0)
                (void)write(c, body, (size_t)sent);
            close(c);
        }
        _exit(0);
    }
    close(s);
    return ntohs(a.sin_port);
}

/* Downloads <name> from a serve_once server, which must fail with SL_EIO
 * and a message naming the URL and `needle`, leaving nothing behind. */
static void expect_http_failure(const char *status, int promised, int sent, const char *name,
                                int64_t size, const char *needle)
{
    make_tmpdir();
    pid_t pid;
    int port = serve_once(status, promised, sent, &pid);
    char url[128], zeros[65];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/data/%s", port, name);
    snprintf(zeros, sizeof zeros, "%064d", 0);
    int rc = sl_download(url, tmp(name), zeros, size, NULL, NULL);
    waitpid(pid, NULL, 0);
    ck_assert_int_eq(rc, SL_EIO);
    ck_assert_msg(strstr(sl_last_error(), url) && strstr(sl_last_error(), needle), "%s",
                  sl_last_error());
    ck_assert_int_eq(count_entries(tmpdir, name), 0);
    remove_tmpdir();
}

START_TEST(download_truncated_http_transfer_is_refused)
{
    if (sl_download_supported())
        expect_http_failure("200 OK", 1000, 100, "file.bin", 1000, "download failed");
}
END_TEST

START_TEST(download_http_error_status_is_refused)
{
    if (sl_download_supported())
        expect_http_failure("404 Not Found", 9, 9, "missing.bin", 0, "404");
}
END_TEST

/* A port on 127.0.0.1 that nothing listens on (bound, then released). */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* No mirror and no network: every connection goes through a proxy that
 * refuses it (libcurl honours all_proxy), which is what a machine without
 * a network sees, whatever this one has.  The error names the canonical URL. */
START_TEST(fetch_without_network_names_the_url)
{
    make_tmpdir();
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", closed_port());
    setenv("all_proxy", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    unsetenv("SYMLAB_DATA_MIRROR");
    unsetenv("SYMLAB_DATA_MANIFEST");
    sl_data_source src = {.root = tmpdir};
    ck_assert_int_lt(sl_data_fetch("fashion-mnist", &src, NULL), 0);
    const char *msg = sl_last_error();
    ck_assert_msg(!strncmp(msg, "fashion-mnist: ", 15) &&
                      strstr(msg, "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
                                  "train-images-idx3-ubyte.gz"),
                  "%s", msg);
    if (!sl_download_supported())
        ck_assert_ptr_nonnull(strstr(msg, NO_SUPPORT));
    ck_assert_int_eq(count_entries(tmp("fashion-mnist"), "ubyte"), 0);
    remove_tmpdir();
}
END_TEST

/* ------------------------------------------------------------ catalog and cache */

START_TEST(catalog_entries_are_well_formed)
{
    ck_assert_int_ge(sl_data_count(), 4);
    const char *want[] = {"mnist", "fashion-mnist", "cifar10", "mnist10k"};
    for (size_t k = 0; k < 4; k++)
        ck_assert_ptr_nonnull(sl_data_find(want[k]));
    for (int i = 0; i < sl_data_count(); i++) {
        const sl_data_entry *e = sl_data_at(i);
        ck_assert_ptr_eq(sl_data_find(e->name), e);
        ck_assert(strcmp(e->format, "idx") == 0 || strcmp(e->format, "cifar10") == 0);
        if (e->url) {
            ck_assert_int_eq(e->nfiles, strcmp(e->format, "idx") == 0 ? 4 : 1);
            ck_assert_int_eq(e->url[strlen(e->url) - 1], '/');
        }
        for (int k = 0; k < e->nfiles; k++) {
            ck_assert_uint_eq(strlen(e->files[k].sha256), 64);
            ck_assert_uint_eq(strspn(e->files[k].sha256, "0123456789abcdef"), 64);
            ck_assert_int_gt(e->files[k].size, 0);
        }
    }
    ck_assert_ptr_null(sl_data_at(-1));
    ck_assert_ptr_null(sl_data_at(sl_data_count()));
    ck_assert_ptr_null(sl_data_find("imagenet"));
    ck_assert_msg(strstr(sl_last_error(), "no dataset 'imagenet'") &&
                      strstr(sl_last_error(), "fashion-mnist"),
                  "%s", sl_last_error());
}
END_TEST

START_TEST(cache_root_follows_the_environment)
{
    char *root = NULL;
    setenv("SYMLAB_DATA", "/data/here", 1);
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    setenv("HOME", "/home/u", 1);
    ck_assert_sl_ok(sl_data_root(NULL, &root));
    ck_assert_str_eq(root, "/data/here");
    free(root);
    sl_data_source src = {.root = "/explicit"};
    ck_assert_sl_ok(sl_data_root(&src, &root));
    ck_assert_str_eq(root, "/explicit");
    free(root);
    setenv("SYMLAB_DATA", "", 1); /* empty counts as unset */
    ck_assert_sl_ok(sl_data_root(NULL, &root));
    ck_assert_str_eq(root, "/xdg/symlab");
    free(root);
    setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as the XDG spec says */
    ck_assert_sl_ok(sl_data_root(NULL, &root));
    ck_assert_str_eq(root, "/home/u/.cache/symlab");
    free(root);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    unsetenv("SYMLAB_DATA");
    ck_assert_sl_fails(sl_data_root(NULL, &root), SL_ENOTFOUND, "SYMLAB_DATA");
}
END_TEST

START_TEST(shipped_dataset_loads_without_download)
{
    sl_data_source src = {.root = "/nonexistent/never/created", .mirror = "file:///nowhere"};
    char *dir = NULL;
    ck_assert_sl_ok(sl_data_fetch("mnist10k", &src, &dir));
    ck_assert_ptr_nonnull(strstr(dir, "mnist10k"));
    free(dir);
    ck_assert(!exists("/nonexistent/never/created"));
    sl_dataset d, ref;
    ck_assert_sl_ok(sl_data_load("mnist10k", "test", &src, &d));
    ck_assert_sl_ok(sl_dataset_idx_dir(MNIST10K_DIR, "test", &ref));
    ck_assert_int_eq(sl_dataset_size(&d), sl_dataset_size(&ref));
    ck_assert_int_eq(memcmp(d.y.data, ref.y.data, (size_t)sl_dataset_size(&d) * 8), 0);
    ck_assert_int_eq(memcmp(d.x.data, ref.x.data, (size_t)sl_tensor_numel(&d.x) * 4), 0);
    sl_dataset_release(&d);
    sl_dataset_release(&ref);
    ck_assert_sl_fails(sl_data_load("mnist10k", "valid", &src, &d), SL_EINVAL, "valid");
}
END_TEST

/* A file:// mirror of "mnist" holding small stand-in files, with a manifest
 * of their hashes: the whole fetch path offline, with no shared data. */
static void make_fake_mnist_mirror(char *manifest_text, size_t cap)
{
    static const char *const files[] = {"train-images-idx3-ubyte.gz",
                                        "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    mkdir(tmp("mirror"), 0755);
    mkdir(tmp("mirror/mnist"), 0755);
    manifest_text[0] = '\0';
    strncat(manifest_text, "# stand-ins for the test\n\n", cap - 1);
    for (int i = 0; i < 4; i++) {
        char path[512], hex[65], line[200];
        snprintf(path, sizeof path, "%s/mirror/mnist/%s", tmpdir, files[i]);
        make_source(path, 1000 + 100 * (size_t)i, hex);
        snprintf(line, sizeof line, "%s  %smnist/%s\n", hex, i == 1 ? "*" : "", files[i]);
        strncat(manifest_text, line, cap - strlen(manifest_text) - 1);
    }
}

START_TEST(fetch_through_a_mirror_with_a_manifest)
{
    if (!sl_download_supported())
        return; /* fetch_without_network_names_the_url covers the refusal */
    make_tmpdir();
    char text[2048];
    make_fake_mnist_mirror(text, sizeof text);
    sl_test_write_bytes(tmp("manifest"), text, strlen(text));
    char mirror[600], root[600], manifest[600]; /* tmp()'s buffers rotate */
    snprintf(mirror, sizeof mirror, "file://%s/mirror/", tmpdir); /* trailing '/' is fine */
    snprintf(root, sizeof root, "%s", tmp("cache"));
    snprintf(manifest, sizeof manifest, "%s", tmp("manifest"));
    sl_data_source src = {.root = root, .mirror = mirror, .manifest = manifest};

    /* Without the manifest the stand-ins fail the catalog's hashes. */
    sl_data_source strict = {.root = root, .mirror = mirror};
    ck_assert_sl_fails(sl_data_fetch("mnist", &strict, NULL), SL_EFORMAT, "SHA-256 mismatch");
    ck_assert_ptr_nonnull(strstr(sl_last_error(), sl_data_find("mnist")->files[0].sha256));
    ck_assert_int_eq(count_entries(tmp("cache/mnist"), "ubyte"), 0);

    char *dir = NULL;
    ck_assert_sl_ok(sl_data_fetch("mnist", &src, &dir));
    ck_assert_str_eq(dir, tmp("cache/mnist"));
    free(dir);
    ck_assert_int_eq(count_entries(tmp("cache/mnist"), "ubyte.gz"), 4);
    ck_assert_int_eq(count_entries(tmp("cache/mnist"), ".tmp."), 0);

    /* Cached files are verified, not fetched again: a dead mirror is fine... */
    sl_data_source dead = src;
    dead.mirror = "file:///nonexistent-mirror";
    ck_assert_sl_ok(sl_data_fetch("mnist", &dead, NULL));
    /* ...but a damaged cached file is refused, and left for the user. */
    sl_test_write_bytes(tmp("cache/mnist/t10k-labels-idx1-ubyte.gz"), "damaged", 7);
    ck_assert_sl_fails(sl_data_fetch("mnist", &dead, NULL), SL_EFORMAT, "delete it");
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "t10k-labels-idx1-ubyte.gz"));
    /* Once deleted, it is fetched again (and the dead mirror is named). */
    remove(tmp("cache/mnist/t10k-labels-idx1-ubyte.gz"));
    ck_assert_sl_fails(sl_data_fetch("mnist", &dead, NULL), SL_EIO,
                       "file:///nonexistent-mirror/mnist/t10k-labels-idx1-ubyte.gz");
    ck_assert_sl_ok(sl_data_fetch("mnist", &src, NULL));
    remove_tmpdir();
}
END_TEST

START_TEST(manifest_errors_name_the_line)
{
    make_tmpdir();
    char root[600], manifest[600]; /* tmp()'s buffers rotate */
    snprintf(root, sizeof root, "%s", tmp("cache"));
    snprintf(manifest, sizeof manifest, "%s", tmp("m"));
    sl_data_source src = {.root = root, .mirror = "file:///nowhere", .manifest = manifest};
    char zeros[65];
    snprintf(zeros, sizeof zeros, "%064d", 0);
    char text[400];
    snprintf(text, sizeof text, "# ok\n%s  mnist/train-images-idx3-ubyte.gz\nnot a hash\n", zeros);
    sl_test_write_bytes(tmp("m"), text, strlen(text));
    ck_assert_sl_fails(sl_data_fetch("mnist", &src, NULL), SL_EFORMAT, ":3: expected");
    snprintf(text, sizeof text, "%s  imagenet/train.tar\n", zeros);
    sl_test_write_bytes(tmp("m"), text, strlen(text));
    ck_assert_sl_fails(sl_data_fetch("mnist", &src, NULL), SL_EFORMAT, ":1: no dataset 'imagenet'");
    snprintf(text, sizeof text, "%s  cifar10/extra.bin\n", zeros);
    sl_test_write_bytes(tmp("m"), text, strlen(text));
    ck_assert_sl_fails(sl_data_fetch("mnist", &src, NULL), SL_EFORMAT, "has no file 'extra.bin'");
    snprintf(text, sizeof text, "%s  mnist\n", zeros);
    sl_test_write_bytes(tmp("m"), text, strlen(text));
    ck_assert_sl_fails(sl_data_fetch("mnist", &src, NULL), SL_EFORMAT, "not <dataset>/<file>");
    snprintf(manifest, sizeof manifest, "%s", tmp("absent"));
    ck_assert_sl_fails(sl_data_fetch("mnist", &src, NULL), SL_EIO, "absent");
    remove_tmpdir();
}
END_TEST

/* ------------------------------------------------------------ CIFAR-10 */

/* Pixel j of global record r, and its label: simple enough to check. */
static uint8_t pixel(int r, int j) { return (uint8_t)((r * 37 + j * 11) & 255); }
static uint8_t label(int r) { return (uint8_t)((r * 3) % 10); }

/* Writes `name` with records [first, first + n) into dir; bad_label puts a
 * label of 10 into its last record. */
static void write_batch(const char *dir, const char *name, int first, int n, bool bad_label)
{
    size_t rec = 3073, size = rec * (size_t)n;
    uint8_t *buf = malloc(size);
    ck_assert_ptr_nonnull(buf);
    for (int r = 0; r < n; r++) {
        buf[r * rec] = label(first + r);
        for (int j = 0; j < 3072; j++)
            buf[r * rec + 1 + (size_t)j] = pixel(first + r, j);
    }
    if (bad_label)
        buf[(size_t)(n - 1) * rec] = 10;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sl_test_write_bytes(path, buf, size);
    free(buf);
}

/* Train: batches of 2, 1, 1, 1, 3 records (records 0..7); test: 2 (100, 101). */
static void write_cifar_dir(const char *dir)
{
    static const int counts[] = {2, 1, 1, 1, 3};
    mkdir(dir, 0755);
    for (int b = 0, first = 0; b < 5; first += counts[b], b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        write_batch(dir, name, first, counts[b], false);
    }
    write_batch(dir, "test_batch.bin", 100, 2, false);
    sl_test_write_bytes(tmp("cifar-10-batches-bin/batches.meta.txt"), "airplane\n", 9);
}

static void check_cifar(const sl_dataset *d, int n, int first)
{
    ck_assert_int_eq(d->x.ndim, 4);
    ck_assert_int_eq(d->x.shape[0], n);
    ck_assert_int_eq(d->x.shape[1], 3);
    ck_assert_int_eq(d->x.shape[2], 32);
    ck_assert_int_eq(d->x.shape[3], 32);
    ck_assert_int_eq(d->y.dtype, SL_I64);
    const float *x = d->x.data;
    const int64_t *y = d->y.data;
    for (int r = 0; r < n; r++) {
        ck_assert_int_eq(y[r], label(first + r));
        for (int j = 0; j < 3072; j += 97)
            ck_assert_float_eq(x[r * 3072 + j], (float)pixel(first + r, j) / 255.0f);
    }
}

START_TEST(cifar10_reads_a_directory_of_batches)
{
    make_tmpdir();
    write_cifar_dir(tmp("cifar-10-batches-bin"));
    sl_dataset d;
    ck_assert_sl_ok(sl_dataset_cifar10(tmp("cifar-10-batches-bin"), "train", &d));
    check_cifar(&d, 8, 0);
    sl_dataset_release(&d);
    ck_assert_sl_ok(sl_dataset_cifar10(tmp("cifar-10-batches-bin"), "test", &d));
    check_cifar(&d, 2, 100);
    sl_dataset_release(&d);
    ck_assert_sl_fails(sl_dataset_cifar10(tmp("cifar-10-batches-bin"), "val", &d), SL_EINVAL,
                       "unknown split 'val'");
    /* A batch whose size is not whole records, then a label out of range. */
    sl_test_write_bytes(tmp("cifar-10-batches-bin/test_batch.bin"), "short", 5);
    ck_assert_sl_fails(sl_dataset_cifar10(tmp("cifar-10-batches-bin"), "test", &d), SL_EFORMAT,
                       "test_batch.bin has 5 bytes");
    write_batch(tmp("cifar-10-batches-bin"), "test_batch.bin", 100, 3, true);
    ck_assert_sl_fails(sl_dataset_cifar10(tmp("cifar-10-batches-bin"), "test", &d), SL_EFORMAT,
                       "record 3 has label 10");
    remove(tmp("cifar-10-batches-bin/data_batch_4.bin"));
    ck_assert_sl_fails(sl_dataset_cifar10(tmp("cifar-10-batches-bin"), "train", &d), SL_EIO,
                       "data_batch_4.bin");
    remove_tmpdir();
}
END_TEST

/* The archive as upstream packs it (made with the system's tar), read in place. */
START_TEST(cifar10_reads_the_archive)
{
    make_tmpdir();
    write_cifar_dir(tmp("cifar-10-batches-bin"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && tar czf cifar-10-binary.tar.gz cifar-10-batches-bin",
             tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    sl_dataset d;
    int rc = sl_dataset_cifar10(tmp("cifar-10-binary.tar.gz"), "train", &d);
    if (!sl_download_supported()) {
        ck_assert_int_eq(rc, SL_ENOTFOUND);
        ck_assert_ptr_nonnull(strstr(sl_last_error(), "libarchive"));
        ck_assert_ptr_nonnull(strstr(sl_last_error(), "folder of .bin files"));
        remove_tmpdir();
        return;
    }
    ck_assert_sl_ok(rc);
    check_cifar(&d, 8, 0);
    sl_dataset_release(&d);
    ck_assert_sl_ok(sl_dataset_cifar10(tmp("cifar-10-binary.tar.gz"), "test", &d));
    check_cifar(&d, 2, 100);
    sl_dataset_release(&d);
    /* An archive missing a batch, and a truncated archive. */
    snprintf(cmd, sizeof cmd, "cd '%s' && rm cifar-10-batches-bin/data_batch_3.bin && "
             "tar czf partial.tar.gz cifar-10-batches-bin && "
             "head -c $(( $(wc -c < cifar-10-binary.tar.gz) / 2 )) cifar-10-binary.tar.gz > cut.tar.gz", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_sl_fails(sl_dataset_cifar10(tmp("partial.tar.gz"), "train", &d), SL_EFORMAT,
                       "the archive has no data_batch_3.bin");
    ck_assert_int_lt(sl_dataset_cifar10(tmp("cut.tar.gz"), "train", &d), 0);
    ck_assert_ptr_nonnull(strstr(sl_last_error(), "cut.tar.gz"));
    remove_tmpdir();
}
END_TEST

/* sl_data_load("cifar10") end to end: a stand-in archive on a file://
 * mirror, its hash in a manifest. */
START_TEST(cifar10_loads_by_name_through_a_mirror)
{
    if (!sl_download_supported())
        return;
    make_tmpdir();
    write_cifar_dir(tmp("cifar-10-batches-bin"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p mirror/cifar10 && tar czf "
             "mirror/cifar10/cifar-10-binary.tar.gz cifar-10-batches-bin", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    char hex[65], line[200], root[600], manifest[600], mirror[600];
    sha256_of(tmp("mirror/cifar10/cifar-10-binary.tar.gz"), hex);
    snprintf(line, sizeof line, "%s  cifar10/cifar-10-binary.tar.gz\n", hex);
    sl_test_write_bytes(tmp("manifest"), line, strlen(line));
    snprintf(root, sizeof root, "%s", tmp("cache"));
    snprintf(manifest, sizeof manifest, "%s", tmp("manifest"));
    snprintf(mirror, sizeof mirror, "file://%s/mirror", tmpdir);
    sl_data_source src = {.root = root, .mirror = mirror, .manifest = manifest};
    sl_dataset d;
    ck_assert_sl_ok(sl_data_load("cifar10", "test", &src, &d));
    check_cifar(&d, 2, 100);
    sl_dataset_release(&d);
    ck_assert(exists(tmp("cache/cifar10/cifar-10-binary.tar.gz")));
    ck_assert_sl_ok(sl_data_load("cifar10", "train", &src, &d));
    check_cifar(&d, 8, 0);
    sl_dataset_release(&d);
    remove_tmpdir();
}
END_TEST

static Suite *datasets_suite(void)
{
    Suite *s = suite_create("datasets");
    TCase *dl = tcase_create("download");
    tcase_add_test(dl, sha256_matches_the_standard_vectors);
    tcase_add_test(dl, download_file_url_verifies_and_renames);
    tcase_add_test(dl, download_mismatch_is_refused_and_leaves_nothing);
    tcase_add_test(dl, download_cancelled_by_progress_leaves_nothing);
    tcase_add_test(dl, download_truncated_http_transfer_is_refused);
    tcase_add_test(dl, download_http_error_status_is_refused);
    tcase_add_test(dl, fetch_without_network_names_the_url);
    suite_add_tcase(s, dl);
    TCase *cat = tcase_create("catalog");
    tcase_add_test(cat, catalog_entries_are_well_formed);
    tcase_add_test(cat, cache_root_follows_the_environment);
    tcase_add_test(cat, shipped_dataset_loads_without_download);
    tcase_add_test(cat, fetch_through_a_mirror_with_a_manifest);
    tcase_add_test(cat, manifest_errors_name_the_line);
    suite_add_tcase(s, cat);
    TCase *cf = tcase_create("cifar10");
    tcase_add_test(cf, cifar10_reads_a_directory_of_batches);
    tcase_add_test(cf, cifar10_reads_the_archive);
    tcase_add_test(cf, cifar10_loads_by_name_through_a_mirror);
    suite_add_tcase(s, cf);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the loopback server may write to a closed socket */
    return sl_test_run(datasets_suite());
}
