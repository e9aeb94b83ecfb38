/* tests/fuzz/replay.c — runs a harness over every file of its corpus, with
 * the normal compiler and no fuzzer: the corpus (seeds, and every input
 * that once crashed) becomes a regression test in `make check`.
 *
 * The directory is FUZZ_CORPUS (compiled in) or the arguments. */
#include "config.h"

#include <dirent.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (int c; (c = fgetc(f)) != EOF;) {
        if (n == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 4096)))
            abort();
        buf[n++] = (uint8_t)c;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf ? buf : (const uint8_t *)"", n);
    free(buf);
    return 0;
}

static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read %s\n", dir);
        return 1;
    }
    int failed = 0, count = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            failed |= replay_file(path);
            count++;
        }
        free(names[i]);
    }
    free(names);
    printf("replay: %d inputs from %s\n", count, dir);
    return failed || count == 0;
}

int main(int argc, char **argv)
{
    int failed = 0;
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            failed |= replay_dir(argv[i]);
    else
        failed = replay_dir(FUZZ_CORPUS);
    return failed;
}
