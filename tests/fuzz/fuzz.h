/* tests/fuzz/fuzz.h — shared by the fuzz harnesses.
 *
 * Each harness defines LLVMFuzzerTestOneInput: one input in, one parser run,
 * no output; a crash, a sanitizer report or an abort() is a finding.  The
 * same harness is linked two ways: with libFuzzer (clang -fsanitize=fuzzer,
 * `make fuzz`) to search for inputs, and with replay.c (any compiler, `make
 * check`) to run every input kept in tests/fuzz/corpus/<name>/ again. */
#ifndef SYMLAB_FUZZ_H
#define SYMLAB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <symlab/symlab.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* This process's temporary files, created on first use, removed at exit. */
static inline char (*fuzz_paths(void))[64]
{
    static char paths[4][64];
    return paths;
}

static inline void fuzz_remove_files(void)
{
    for (int i = 0; i < 4; i++)
        if (fuzz_paths()[i][0])
            unlink(fuzz_paths()[i]);
}

/* The readers take paths: writes data to temporary file number `slot`
 * (0..3) and returns its path. */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
    char *path = fuzz_paths()[slot];
    if (!path[0]) {
        snprintf(path, 64, "%s/symlab-fuzz-%d-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", slot);
        int fd = mkstemp(path);
        if (fd < 0)
            abort();
        close(fd);
        static int registered;
        if (!registered++)
            atexit(fuzz_remove_files);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    return path;
}

/* A NUL-terminated copy of data (malloc'ed); NUL bytes inside are kept, so
 * the text ends at the first one, as a C caller's string would. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A failure must leave a message.  (Not checked: that it is one line.
 * Messages quote the offending text, which may itself hold a newline.) */
static inline void fuzz_check_message(int rc)
{
    if (rc < 0 && !*sl_last_error())
        abort();
}

#endif
