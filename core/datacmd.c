/* core/datacmd.c — `symlab data list`, `symlab data get NAME...` and
 * `symlab data root`: the catalog of datasets by name, fetched into the
 * cache as sl.data.load would (same cache, mirror and manifest variables),
 * with a progress bar on stderr when it is a terminal. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datacmd.h"
#include "lua/lsymlab.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fputs("usage: symlab data list          the datasets symlab knows, and which are cached\n"
          "       symlab data get NAME...   fetch them into the cache; print their folders\n"
          "       symlab data root          print the cache directory\n"
          "\n"
          "environment: SYMLAB_DATA (cache directory), SYMLAB_DATA_MIRROR (base URL\n"
          "replacing the catalog's), SYMLAB_DATA_MANIFEST (replacement SHA-256 list)\n",
          f);
}

/* "cached", "partial" or "-": how many of e's files are in the cache. */
static const char *cache_state(const sl_data_entry *e, const char *root)
{
    if (!e->url)
        return "shipped";
    int have = 0;
    for (int i = 0; root && i < e->nfiles; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/%s", root, e->name, e->files[i].name);
        have += stat(path, &st) == 0;
    }
    return have == e->nfiles ? "cached" : have ? "partial" : "-";
}

static int cmd_list(void)
{
    char *root = NULL;
    if (sl_data_root(NULL, &root) < 0)
        root = NULL; /* no cache directory: nothing is cached */
    printf("%-14s %-8s %9s  %s\n", "name", "state", "download", "summary");
    for (int i = 0; i < sl_data_count(); i++) {
        const sl_data_entry *e = sl_data_at(i);
        int64_t bytes = 0;
        for (int k = 0; k < e->nfiles; k++)
            bytes += e->files[k].size;
        char size[32] = "-";
        if (bytes > 0)
            snprintf(size, sizeof size, "%.1f MB", (double)bytes / 1e6);
        printf("%-14s %-8s %9s  %s\n", e->name, cache_state(e, root), size, e->summary);
    }
    printf("\ncache: %s%s\n", root ? root : "(none: set SYMLAB_DATA)",
           sl_download_supported() ? "" : " (built without download support)");
    free(root);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_get(int argc, char **argv)
{
    if (argc < 3) {
        fputs("symlab: data get: which dataset? (symlab data get NAME; see symlab data list)\n",
              stderr);
        return EXIT_USAGE;
    }
    slua_bar bar;
    slua_bar_init(&bar, stderr);
    sl_data_source src = {.progress = isatty(STDERR_FILENO) ? slua_bar_progress : NULL,
                          .ud = &bar};
    for (int i = 2; i < argc; i++) {
        char *dir = NULL;
        if (sl_data_fetch(argv[i], &src, &dir) < 0) {
            fprintf(stderr, "symlab: %s\n", sl_last_error());
            return 1;
        }
        printf("%s\n", dir);
        free(dir);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int symlab_cmd_data(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (sub && strcmp(sub, "list") == 0 && argc == 2)
        return cmd_list();
    if (sub && strcmp(sub, "get") == 0)
        return cmd_get(argc, argv);
    if (sub && strcmp(sub, "root") == 0 && argc == 2) {
        char *root = NULL;
        if (sl_data_root(NULL, &root) < 0) {
            fprintf(stderr, "symlab: %s\n", sl_last_error());
            return 1;
        }
        printf("%s\n", root);
        free(root);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (sub)
        fprintf(stderr, "symlab: data: unknown command '%s'%s\n", sub,
                argc > 2 && strcmp(sub, "get") != 0 ? " (or too many arguments)" : "");
    usage(stderr);
    return EXIT_USAGE;
}
