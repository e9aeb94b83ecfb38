/* core/history.c — one record per epoch, and step rows.
 *
 * Step rows are stored by column (one array of doubles per name, NaN where
 * a row has no value), with room reserved before training for every row
 * the run can record: appending a row then only writes numbers.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct column {
    char *name;
    double *v; /* step_cap values */
} column;

struct sl_history {
    sl_record **rows;
    int count;
    column *cols;
    int ncols;
    int64_t nsteps, step_cap;
    int64_t best_epoch, stopped_epoch;
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
    for (int i = 0; i < h->ncols; i++) {
        free(h->cols[i].name);
        free(h->cols[i].v);
    }
    free(h->cols);
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

/* Column values [from, to) set to NaN. */
static void fill_nan(double *v, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++)
        v[i] = NAN;
}

/* Every column grown to `cap` rows. */
static int grow_steps(sl_history *h, int64_t cap)
{
    if (cap <= h->step_cap)
        return SL_OK;
    for (int i = 0; i < h->ncols; i++) {
        double *v = realloc(h->cols[i].v, (size_t)cap * sizeof *v);
        if (!v)
            return sl_error(SL_ENOMEM, "history: out of memory for %lld step rows",
                            (long long)cap);
        fill_nan(v, h->step_cap, cap);
        h->cols[i].v = v;
    }
    h->step_cap = cap;
    return SL_OK;
}

int sl_history_reserve_steps(sl_history *h, int64_t n)
{
    return n > 0 ? grow_steps(h, h->nsteps + n) : SL_OK;
}

static int find_column(sl_history *h, const char *name)
{
    for (int i = 0; i < h->ncols; i++)
        if (strcmp(h->cols[i].name, name) == 0)
            return i;
    column *cols = realloc(h->cols, (size_t)(h->ncols + 1) * sizeof *cols);
    if (!cols)
        return sl_error(SL_ENOMEM, "history: out of memory");
    h->cols = cols;
    column c = {sl_strdup(name), malloc((size_t)(h->step_cap > 0 ? h->step_cap : 1) *
                                        sizeof(double))};
    if (!c.name || !c.v) {
        free(c.name);
        free(c.v);
        return sl_error(SL_ENOMEM, "history: out of memory");
    }
    fill_nan(c.v, 0, h->step_cap);
    h->cols[h->ncols] = c;
    return h->ncols++;
}

int sl_history_append_step(sl_history *h, const sl_record *row)
{
    /* Beyond the reserved room (a history reused without reserving), grow
     * geometrically so that appends stay amortised O(1). */
    if (h->nsteps == h->step_cap)
        SL_TRY(grow_steps(h, h->step_cap > 0 ? 2 * h->step_cap : 64));
    for (int i = 0; i < sl_record_count(row); i++) {
        int c = find_column(h, sl_record_name(row, i));
        if (c < 0)
            return c;
        h->cols[c].v[h->nsteps] = sl_record_value(row, i);
    }
    h->nsteps++;
    return SL_OK;
}

int64_t sl_history_step_count(const sl_history *h) { return h ? h->nsteps : 0; }

int sl_history_step_row(const sl_history *h, int64_t i, sl_record *out)
{
    if (!h || !out || i < 0 || i >= h->nsteps)
        return sl_error(SL_EINVAL, "history: no step row %lld (%lld recorded)", (long long)i,
                        (long long)sl_history_step_count(h));
    sl_record_clear(out);
    for (int c = 0; c < h->ncols; c++)
        if (!isnan(h->cols[c].v[i]))
            SL_TRY(sl_record_set(out, h->cols[c].name, h->cols[c].v[i]));
    return SL_OK;
}

void sl_history_set_early_stop(sl_history *h, int64_t best_epoch, int64_t stopped_epoch)
{
    h->best_epoch = best_epoch;
    h->stopped_epoch = stopped_epoch;
}

int64_t sl_history_best_epoch(const sl_history *h) { return h ? h->best_epoch : 0; }
int64_t sl_history_stopped_epoch(const sl_history *h) { return h ? h->stopped_epoch : 0; }
