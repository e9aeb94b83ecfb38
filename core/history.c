/* core/history.c — one record per epoch. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

struct sl_history {
    sl_record **rows;
    int count;
};

sl_history *sl_history_new(void)
{
    sl_history *h = calloc(1, sizeof *h);
    if (!h)
        sl_error(SL_ENOMEM, "out of memory");
    return h;
}

void sl_history_free(sl_history *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->count; i++)
        sl_record_free(h->rows[i]);
    free(h->rows);
    free(h);
}

int sl_history_count(const sl_history *h) { return h ? h->count : 0; }

const sl_record *sl_history_row(const sl_history *h, int i)
{
    return h && i >= 0 && i < h->count ? h->rows[i] : NULL;
}

int sl_history_append(sl_history *h, const sl_record *row)
{
    sl_record **rows = realloc(h->rows, (size_t)(h->count + 1) * sizeof *rows);
    if (!rows)
        return sl_error(SL_ENOMEM, "out of memory");
    h->rows = rows;
    sl_record *copy = sl_record_new();
    if (!copy)
        return SL_ENOMEM;
    for (int i = 0; i < sl_record_count(row); i++) {
        int rc = sl_record_set(copy, sl_record_name(row, i), sl_record_value(row, i));
        if (rc < 0) {
            sl_record_free(copy);
            return rc;
        }
    }
    h->rows[h->count++] = copy;
    return SL_OK;
}
