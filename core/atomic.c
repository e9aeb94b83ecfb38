/* core/atomic.c — files written beside their target and renamed into place.
 *
 * A crash or a failure at any point leaves either the old file or the new
 * one, never half of one: the bytes go to "<path>.tmp.XXXXXX" in the same
 * directory (so rename() is atomic), are flushed and fsync'ed, and only then
 * renamed over the target.  Checkpoints and downloads both use this.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* New files get the mode an existing file had, else rw-r--r-- (mkstemp's
 * 0600 would hide results and datasets from the rest of a group). */
static void set_mode(int fd, const char *path)
{
    struct stat st;
    mode_t mode = 0644;
    if (stat(path, &st) == 0)
        mode = st.st_mode & 07777;
    (void)fchmod(fd, mode);
}

/* Makes the rename itself durable (best effort: some file systems refuse
 * to open or sync a directory, and the data is already safe). */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int sl_atomic_begin(const char *path, sl_atomic_file *a)
{
    *a = (sl_atomic_file){.path = path};
    size_t n = strlen(path) + sizeof ".tmp.XXXXXX";
    if (!(a->tmp = malloc(n)))
        return sl_error(SL_ENOMEM, "%s: out of memory", path);
    snprintf(a->tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int rc = sl_error(SL_EIO, "%s: cannot create a temporary file: %s", path,
                          strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        return rc;
    }
    set_mode(fd, path);
    if (!(a->f = fdopen(fd, "wb"))) {
        int err = errno;
        close(fd);
        remove(a->tmp);
        free(a->tmp);
        a->tmp = NULL;
        return sl_error(SL_EIO, "%s: cannot open a temporary file: %s", path, strerror(err));
    }
    return SL_OK;
}

void sl_atomic_abort(sl_atomic_file *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        remove(a->tmp);
    free(a->tmp);
    *a = (sl_atomic_file){0};
}

int sl_atomic_commit(sl_atomic_file *a, const char *what)
{
    FILE *f = a->f;
    a->f = NULL;
    int failed = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    if (fclose(f) != 0 && !failed) {
        err = errno;
        failed = 1;
    }
    if (!failed && rename(a->tmp, a->path) != 0) {
        err = errno;
        failed = 1;
    }
    const char *path = a->path;
    if (failed) {
        sl_atomic_abort(a);
        return sl_error(SL_EIO, "%s: cannot write %s: %s", path, what, strerror(err));
    }
    sync_parent_dir(path);
    free(a->tmp);
    *a = (sl_atomic_file){0};
    return SL_OK;
}
