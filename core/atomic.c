/* core/atomic.c — files written beside their target and renamed into place.
 *
 * A crash or a failure at any point leaves either the old file or the new
 * one, never half of one: the bytes go to "<path>.tmp.<pid>.XXXXXX" in the
 * same directory (so rename() is atomic), are flushed and fsync'ed, and only
 * then renamed over the target.  Checkpoints, downloads and (through
 * sl_file_temp) results files use this.  Each writer has its own temporary;
 * a writer killed before its rename leaves it behind, and the next writer of
 * the same path removes it when it is stale (the rules are in
 * symlab/files.h).
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

#define GRACE_SECONDS (10 * 60)
#define OLD_SECONDS (24 * 60 * 60)

/* Splits path into its directory ("." if none) and base name. */
static int split_path(const char *path, char **dir, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    return *dir ? SL_OK : sl_error(SL_ENOMEM, "%s: out of memory", path);
}

/* True if s is exactly mkstemp's six-character suffix. */
static bool is_suffix(const char *s)
{
    for (int i = 0; i < 6; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return s[6] == '\0';
}

/* For a name "<base>.tmp.<pid>.XXXXXX" sets *pid and returns true; for the
 * older "<base>.tmp.XXXXXX" sets *pid = 0 and returns true. */
static bool temp_of(const char *name, const char *base, long *pid)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || strncmp(name + n, ".tmp.", 5) != 0)
        return false;
    const char *rest = name + n + 5;
    if (is_suffix(rest)) {
        *pid = 0;
        return true;
    }
    char *end;
    errno = 0;
    long p = strtol(rest, &end, 10);
    if (end == rest || !isdigit((unsigned char)*rest) || errno || p <= 0 || *end != '.' ||
        !is_suffix(end + 1))
        return false;
    *pid = p;
    return true;
}

static bool running(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM; /* EPERM: someone else's, alive */
}

/* Removes the orphaned temporaries of `base` in `dir` (best effort). */
static void remove_orphans(const char *dir, const char *base)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(dp)) != NULL;) {
        long pid;
        if (!temp_of(e->d_name, base, &pid))
            continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        struct stat st;
        if (p && (snprintf(p, n, "%s/%s", dir, e->d_name), lstat(p, &st) == 0) &&
            S_ISREG(st.st_mode)) {
            double idle = difftime(now, st.st_mtime);
            if (idle > OLD_SECONDS || (pid > 0 && idle > GRACE_SECONDS && !running(pid)))
                (void)unlink(p);
        }
        free(p);
    }
    closedir(dp);
}

int sl_atomic_begin(const char *path, sl_atomic_file *a)
{
    *a = (sl_atomic_file){.path = path};
    char *dir;
    const char *base;
    SL_TRY(split_path(path, &dir, &base));
    remove_orphans(dir, base);
    free(dir);
    size_t n = strlen(path) + 48;
    if (!(a->tmp = malloc(n)))
        return sl_error(SL_ENOMEM, "%s: out of memory", path);
    snprintf(a->tmp, n, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
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
