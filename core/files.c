/* core/files.c — temporaries beside a file, renamed over it; removing the
 * orphans of writers that died (the rules are in symlab/files.h). */
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

int sl_file_temp(const char *path, char **tmp, int *fd)
{
    if (!path || !*path || !tmp || !fd)
        return sl_error(SL_EINVAL, "sl_file_temp: path, tmp and fd are required");
    char *dir;
    const char *base;
    SL_TRY(split_path(path, &dir, &base));
    remove_orphans(dir, base);
    free(dir);
    size_t n = strlen(path) + 48;
    char *name = malloc(n);
    if (!name)
        return sl_error(SL_ENOMEM, "%s: out of memory", path);
    snprintf(name, n, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int f = mkstemp(name);
    if (f < 0) {
        int rc = sl_error(SL_EIO, "%s: cannot create a temporary file: %s", path,
                          strerror(errno));
        free(name);
        return rc;
    }
    /* The mode an existing file had, else rw-r--r-- (mkstemp's 0600 would
     * hide results from the rest of a group). */
    struct stat st;
    (void)fchmod(f, stat(path, &st) == 0 ? st.st_mode & 07777 : 0644);
    *tmp = name;
    *fd = f;
    return SL_OK;
}

/* Makes the rename itself durable (best effort: some file systems refuse
 * to open or sync a directory, and the data is already safe). */
static void sync_parent_dir(const char *path)
{
    char *dir;
    const char *base;
    if (split_path(path, &dir, &base) < 0)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int sl_file_commit(const char *tmp, const char *path)
{
    if (rename(tmp, path) != 0) {
        int rc = sl_error(SL_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        remove(tmp);
        return rc;
    }
    sync_parent_dir(path);
    return SL_OK;
}
