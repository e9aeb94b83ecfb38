/* core/data/catalog.c — datasets by name: the catalog, the cache directory
 * and the manifest of replacement hashes.
 *
 * Each downloadable file's SHA-256 and size below is the value published
 * for the upstream file by TensorFlow Datasets (its url_checksums/mnist.txt,
 * fashion_mnist.txt and cifar10.txt), which records SHA-256 where
 * torchvision records only MD5.  We could not download the files to check
 * them ourselves; a wrong value would show as a refused download, never as
 * a silently accepted file.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <symlab/datasets.h>

#include "internal.h"

/* The four files of an "idx" dataset, in the order sl_data_load expects:
 * train images, train labels, test images, test labels. */
enum { IDX_TRAIN = 0, IDX_TEST = 2 };

/* MNIST as mirrored by the CVDF (the original site's files, byte for byte);
 * hashes from TensorFlow Datasets' url_checksums/mnist.txt. */
static const sl_data_file mnist_files[] = {
    {"train-images-idx3-ubyte.gz",
     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422},
    {"train-labels-idx1-ubyte.gz",
     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881},
    {"t10k-images-idx3-ubyte.gz",
     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877},
    {"t10k-labels-idx1-ubyte.gz",
     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542},
};

/* Fashion-MNIST from Zalando Research's own bucket; hashes from TensorFlow
 * Datasets' url_checksums/fashion_mnist.txt. */
static const sl_data_file fashion_files[] = {
    {"train-images-idx3-ubyte.gz",
     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880},
    {"train-labels-idx1-ubyte.gz",
     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515},
    {"t10k-images-idx3-ubyte.gz",
     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102},
    {"t10k-labels-idx1-ubyte.gz",
     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148},
};

/* CIFAR-10's binary version from Alex Krizhevsky's page; hash from
 * TensorFlow Datasets' url_checksums/cifar10.txt. */
static const sl_data_file cifar10_files[] = {
    {"cifar-10-binary.tar.gz",
     "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171},
};

static const sl_data_entry catalog[] = {
    {"mnist", "idx", "https://storage.googleapis.com/cvdf-datasets/mnist/",
     "MNIST handwritten digits: 60000 train, 10000 test, 28x28 grey, 10 classes", 4,
     mnist_files},
    {"fashion-mnist", "idx", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
     "Zalando's Fashion-MNIST: 60000 train, 10000 test, 28x28 grey, 10 classes (MIT)", 4,
     fashion_files},
    {"cifar10", "cifar10", "https://www.cs.toronto.edu/~kriz/",
     "CIFAR-10 (binary version): 50000 train, 10000 test, 32x32 colour, 10 classes", 1,
     cifar10_files},
    {"mnist10k", "idx", NULL,
     "shipped with symlab: 10000 MNIST digits, 8000 train, 2000 test (see its LICENSE.md)", 0,
     NULL},
};

int sl_data_count(void) { return (int)SL_COUNTOF(catalog); }

const sl_data_entry *sl_data_at(int i)
{
    return i >= 0 && i < sl_data_count() ? &catalog[i] : NULL;
}

const sl_data_entry *sl_data_find(const char *name)
{
    for (int i = 0; name && i < sl_data_count(); i++)
        if (strcmp(catalog[i].name, name) == 0)
            return &catalog[i];
    char known[256] = "";
    for (int i = 0; i < sl_data_count(); i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 catalog[i].name);
    sl_error(SL_ENOTFOUND, "no dataset '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

/* ---- paths -------------------------------------------------------------------- */

/* getenv, with an empty value counting as unset. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* A new string "<a><b><c>". */
static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    else
        sl_error(SL_ENOMEM, "out of memory");
    return s;
}

int sl_data_root(const sl_data_source *src, char **out)
{
    if (!out)
        return sl_error(SL_EINVAL, "sl_data_root: out must not be NULL");
    const char *v;
    if (src && src->root && *src->root)
        *out = sl_strdup(src->root);
    else if ((v = env("SYMLAB_DATA")))
        *out = sl_strdup(v);
    else if ((v = env("XDG_CACHE_HOME")) && v[0] == '/') /* XDG: relative values are ignored */
        *out = join3(v, "/", "symlab");
    else if ((v = env("HOME")))
        *out = join3(v, "/", ".cache/symlab");
    else
        return sl_error(SL_ENOTFOUND, "no dataset cache directory: set SYMLAB_DATA (or "
                        "XDG_CACHE_HOME or HOME)");
    return *out ? SL_OK : SL_ENOMEM;
}

/* mkdir -p: creates every missing directory of `path`. */
static int make_dirs(const char *path)
{
    char *p = sl_strdup(path);
    if (!p)
        return SL_ENOMEM;
    int rc = SL_OK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            rc = sl_error(SL_EIO, "%s: cannot create directory: %s", p, strerror(errno));
        else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = sl_error(SL_EIO, "%s: exists and is not a directory", p);
        *s = c;
        if (rc < 0 || c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* ---- the manifest ------------------------------------------------------------- */

/* Index of file `file` in entry e, or -1. */
static int file_index(const sl_data_entry *e, const char *file)
{
    for (int i = 0; i < e->nfiles; i++)
        if (strcmp(e->files[i].name, file) == 0)
            return i;
    return -1;
}

/* Parses one manifest line "<64 hex>  [*]<dataset>/<file>"; if it names a
 * file of `e`, copies its hash into want[index] (lowercased). */
static int manifest_line(const char *path, int lineno, char *line, const sl_data_entry *e,
                         char (*want)[65])
{
    line[strcspn(line, "\r\n")] = '\0';
    char *s = line;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0' || *s == '#')
        return SL_OK;
    char *hash = s;
    while (isxdigit((unsigned char)*s))
        s++;
    if (s - hash != 64 || !isspace((unsigned char)*s))
        return sl_error(SL_EFORMAT, "%s:%d: expected '<64 hex digits>  <dataset>/<file>'",
                        path, lineno);
    *s++ = '\0';
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '*') /* sha256sum's binary-mode marker */
        s++;
    char *slash = strchr(s, '/');
    if (!slash)
        return sl_error(SL_EFORMAT, "%s:%d: '%s' is not <dataset>/<file>", path, lineno, s);
    *slash = '\0';
    const sl_data_entry *d = sl_data_find(s);
    if (!d)
        return sl_error_context(SL_EFORMAT, "%s:%d", path, lineno);
    int i = file_index(d, slash + 1);
    if (i < 0)
        return sl_error(SL_EFORMAT, "%s:%d: dataset '%s' has no file '%s'", path, lineno, s,
                        slash + 1);
    if (d == e) {
        for (int k = 0; k < 64; k++)
            want[i][k] = (char)tolower((unsigned char)hash[k]);
        want[i][64] = '\0';
    }
    return SL_OK;
}

/* The hashes that apply to e's files: the catalog's, replaced by those the
 * manifest (if any) lists; replaced[i] says which. */
static int expected_hashes(const sl_data_entry *e, const char *manifest, char (*want)[65],
                           bool *replaced)
{
    for (int i = 0; i < e->nfiles; i++) {
        snprintf(want[i], 65, "%s", e->files[i].sha256);
        replaced[i] = false;
    }
    if (!manifest)
        return SL_OK;
    FILE *f = fopen(manifest, "r");
    if (!f)
        return sl_error(SL_EIO, "%s: cannot open the dataset manifest: %s", manifest,
                        strerror(errno));
    char line[1024];
    int rc = SL_OK;
    for (int lineno = 1; rc == SL_OK && fgets(line, sizeof line, f); lineno++) {
        if (!strchr(line, '\n') && !feof(f))
            rc = sl_error(SL_EFORMAT, "%s:%d: line too long", manifest, lineno);
        else
            rc = manifest_line(manifest, lineno, line, e, want);
    }
    if (rc == SL_OK && ferror(f))
        rc = sl_error(SL_EIO, "%s: read error", manifest);
    fclose(f);
    for (int i = 0; rc == SL_OK && i < e->nfiles; i++)
        replaced[i] = strcmp(want[i], e->files[i].sha256) != 0;
    return rc;
}

/* ---- fetching ------------------------------------------------------------------- */

enum { MAX_FILES = 4 };

/* A file already in the cache: its hash must be the expected one. */
static int check_cached(const char *path, const char *want)
{
    if (!sl_download_supported())
        return SL_OK; /* cannot hash: used as it is (docs/datasets.md) */
    char got[65];
    SL_TRY(sl_sha256_file(path, got));
    if (strcmp(got, want) != 0)
        return sl_error(SL_EFORMAT, "%s: SHA-256 is %s, expected %s: a damaged or different "
                        "copy; delete it to download it again", path, got, want);
    return SL_OK;
}

/* Makes sure file i of e is in dir, downloading it if it is missing. */
static int fetch_file(const sl_data_entry *e, int i, const char *dir, const char *want,
                      bool replaced, const sl_data_source *src, const char *mirror)
{
    const sl_data_file *f = &e->files[i];
    char *path = join3(dir, "/", f->name), *url = NULL;
    if (!path)
        return SL_ENOMEM;
    struct stat st;
    int rc;
    if (stat(path, &st) == 0) {
        rc = check_cached(path, want);
    } else {
        if (mirror) {
            size_t n = strlen(mirror);
            while (n > 0 && mirror[n - 1] == '/')
                n--;
            size_t len = n + strlen(e->name) + strlen(f->name) + 3;
            if ((url = malloc(len)))
                snprintf(url, len, "%.*s/%s/%s", (int)n, mirror, e->name, f->name);
        } else {
            url = join3(e->url, f->name, "");
        }
        rc = url ? sl_download(url, path, want, replaced ? 0 : f->size,
                               src ? src->progress : NULL, src ? src->ud : NULL)
                 : sl_error(SL_ENOMEM, "out of memory");
    }
    free(url);
    free(path);
    return rc;
}

/* The folder of a dataset shipped in symlab's data directory. */
static int shipped_dir(const sl_data_entry *e, char **dir)
{
    *dir = join3(sl_path(SL_PATH_DATA), "/", e->name);
    return *dir ? SL_OK : SL_ENOMEM;
}

int sl_data_fetch(const char *name, const sl_data_source *src, char **dir_out)
{
    const sl_data_entry *e = sl_data_find(name);
    if (!e)
        return SL_ENOTFOUND;
    char *dir = NULL, *root = NULL;
    int rc;
    if (!e->url) {
        rc = shipped_dir(e, &dir);
    } else {
        char want[MAX_FILES][65];
        bool replaced[MAX_FILES];
        const char *manifest = src && src->manifest ? src->manifest : env("SYMLAB_DATA_MANIFEST");
        const char *mirror = src && src->mirror ? src->mirror : env("SYMLAB_DATA_MIRROR");
        rc = expected_hashes(e, manifest, want, replaced);
        if (rc == SL_OK)
            rc = sl_data_root(src, &root);
        if (rc == SL_OK && !(dir = join3(root, "/", e->name)))
            rc = SL_ENOMEM;
        if (rc == SL_OK)
            rc = make_dirs(dir);
        for (int i = 0; rc == SL_OK && i < e->nfiles; i++)
            rc = fetch_file(e, i, dir, want[i], replaced[i], src, mirror && *mirror ? mirror : NULL);
        if (rc < 0)
            sl_error_context(rc, "%s", e->name);
    }
    free(root);
    if (rc == SL_OK && dir_out)
        *dir_out = dir;
    else
        free(dir);
    return rc;
}

/* ---- loading ---------------------------------------------------------------------- */

/* Split `split` of an "idx" dataset fetched into dir. */
static int load_idx(const sl_data_entry *e, const char *dir, const char *split, sl_dataset *out)
{
    if (!e->url)
        return sl_dataset_idx_dir(dir, split, out);
    int k = strcmp(split, "train") == 0 ? IDX_TRAIN : IDX_TEST;
    char *images = join3(dir, "/", e->files[k].name);
    char *labels = join3(dir, "/", e->files[k + 1].name);
    int rc = images && labels ? sl_dataset_idx(images, labels, out) : SL_ENOMEM;
    free(images);
    free(labels);
    return rc;
}

int sl_data_read(const char *name, const char *dir, const char *split, sl_dataset *out)
{
    if (!dir || !split || !out)
        return sl_error(SL_EINVAL, "sl_data_read: dir, split and out must not be NULL");
    const sl_data_entry *e = sl_data_find(name);
    if (!e)
        return SL_ENOTFOUND;
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
        return sl_error(SL_EINVAL, "%s: unknown split '%s' (train or test)", name, split);
    if (strcmp(e->format, "cifar10") != 0)
        return load_idx(e, dir, split, out);
    char *archive = join3(dir, "/", e->files[0].name);
    int rc = archive ? sl_dataset_cifar10(archive, split, out) : SL_ENOMEM;
    free(archive);
    return rc;
}

int sl_data_load(const char *name, const char *split, const sl_data_source *src,
                 sl_dataset *out)
{
    if (!split || !out)
        return sl_error(SL_EINVAL, "sl_data_load: split and out must not be NULL");
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
        return sl_error(SL_EINVAL, "%s: unknown split '%s' (train or test)",
                        name ? name : "(null)", split);
    char *dir = NULL;
    SL_TRY(sl_data_fetch(name, src, &dir));
    int rc = sl_data_read(name, dir, split, out);
    free(dir);
    return rc;
}
