/* core/lua/lprogress.c — the training progress bar of the symlab executable.
 *
 * libsymlab prints nothing; sl.train passes each step (sl_step_info) here
 * when its `progress` option asks for a bar: "auto" draws one when stderr is
 * a terminal, "always" draws one anyway, "never" does not.  The bar is
 * redrawn in place on one line and erased at the end of each epoch, so
 * whatever the script prints per epoch is not interleaved with it.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lua/lsymlab.h"

bool slua_progress_wanted(const char *mode)
{
    return strcmp(mode, "always") == 0 || (strcmp(mode, "auto") == 0 && isatty(STDERR_FILENO));
}

void slua_progress_step(const sl_step_info *s)
{
    enum { WIDTH = 30 };
    int filled = s->batches > 0 ? (int)(WIDTH * s->batch / s->batches) : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[WIDTH] = '\0';
    fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.4f ", (long long)s->epoch,
            (long long)s->epochs, bar, (long long)s->batch, (long long)s->batches,
            s->epoch_loss);
    if (s->batch == s->batches)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

void slua_progress_abort(void)
{
    fputs("\n", stderr);
    fflush(stderr);
}
