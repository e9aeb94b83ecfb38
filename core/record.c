/* core/record.c — ordered named numbers. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct entry {
    char *name;
    double value;
    unsigned round; /* the record's round when last set */
} entry;

struct sl_record {
    entry *items;
    int count, capacity; /* entries [count, names) keep their names for reuse */
    int names;
    unsigned round;      /* see sl_record_next_round */
};

sl_record *sl_record_new(void)
{
    sl_record *r = calloc(1, sizeof *r);
    if (!r)
        sl_error(SL_ENOMEM, "out of memory");
    return r;
}

void sl_record_free(sl_record *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->names; i++)
        free(r->items[i].name);
    free(r->items);
    free(r);
}

void sl_record_clear(sl_record *r)
{
    if (r)
        r->count = 0;
}

int sl_record_set(sl_record *r, const char *name, double value)
{
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->items[i].name, name) == 0) {
            r->items[i].value = value;
            r->items[i].round = r->round;
            return SL_OK;
        }
    }
    /* After a clear, the same names come back in the same order: reuse the
     * kept string instead of allocating. */
    if (r->count < r->names && strcmp(r->items[r->count].name, name) == 0) {
        r->items[r->count].round = r->round;
        r->items[r->count++].value = value;
        return SL_OK;
    }
    if (r->count < r->names) {
        char *copy = sl_strdup(name);
        if (!copy)
            return SL_ENOMEM;
        free(r->items[r->count].name);
        r->items[r->count].name = copy;
        r->items[r->count].round = r->round;
        r->items[r->count++].value = value;
        return SL_OK;
    }
    if (r->names == r->capacity) {
        int cap = r->capacity ? 2 * r->capacity : 8;
        entry *items = realloc(r->items, (size_t)cap * sizeof *items);
        if (!items)
            return sl_error(SL_ENOMEM, "out of memory");
        r->items = items;
        r->capacity = cap;
    }
    char *copy = sl_strdup(name);
    if (!copy)
        return SL_ENOMEM;
    r->items[r->names].name = copy;
    r->items[r->names].value = value;
    r->items[r->names].round = r->round;
    r->names++;
    r->count++;
    return SL_OK;
}

int sl_record_get(const sl_record *r, const char *name, double *value)
{
    for (int i = 0; i < r->count; i++) {
        if (strcmp(r->items[i].name, name) == 0) {
            *value = r->items[i].value;
            return SL_OK;
        }
    }
    return sl_error(SL_ENOTFOUND, "no value named '%s'", name);
}

int sl_record_count(const sl_record *r) { return r ? r->count : 0; }

const char *sl_record_name(const sl_record *r, int i)
{
    return i >= 0 && i < r->count ? r->items[i].name : NULL;
}

double sl_record_value(const sl_record *r, int i)
{
    return i >= 0 && i < r->count ? r->items[i].value : 0.0;
}

void sl_record_next_round(sl_record *r) { r->round++; }

bool sl_record_set_this_round(const sl_record *r, int i)
{
    return i >= 0 && i < r->count && r->items[i].round == r->round;
}
