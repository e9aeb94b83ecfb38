/* core/data/csv.c — numeric CSV files as datasets.
 *
 * The accepted format is deliberately small: one row per line (LF or CRLF),
 * cells separated by commas, every cell a number as strtod reads it that is
 * finite in f32, the type the dataset is stored in (surrounding blanks
 * allowed; no NUL bytes anywhere), an optional header line whose cells are not
 * read, and blank lines only at the end.  No quoting.  Every row must have
 * as many cells as the first (header included).  Errors name the file, the
 * 1-based line and, for a bad cell, the 1-based column, as editors count.
 */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest class label accepted: labels index logits, so anything above this
 * is certainly a mistake (a regression target read as classes). */
#define CSV_MAX_CLASS 2147483647.0

typedef struct csv_parse {
    const char *path;
    bool header, classes;
    int label_request;   /* as given: negative counts from the end */
    int64_t line;        /* 1-based number of the current line */
    int64_t blank_line;  /* first blank line seen, 0 if none yet */
    bool seen_first;     /* the first non-blank line has been read */
    int cols;            /* cells per row, 0 until the first row */
    int label;           /* resolved label column */
    double *values;      /* rows * cols, row-major */
    int64_t rows, cap;   /* rows held and room for, in rows */
} csv_parse;

/* Reads the whole file into a NUL-terminated malloc'ed buffer. */
static int slurp(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_error(SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? SL_OK : sl_error(SL_ENOMEM, "%s: out of memory", path);
    while (rc == SL_OK) {
        if (cap - n < 2) {
            char *p = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                rc = sl_error(SL_ENOMEM, "%s: out of memory reading %zu bytes", path, cap * 2);
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    if (rc == SL_OK && ferror(f))
        rc = sl_error(SL_EIO, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SL_OK;
}

static bool is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0';
}

static int count_cells(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* Fixes the row width and the label column from the first line. */
static int set_columns(csv_parse *p, int cols)
{
    if (cols < 2)
        return sl_error(SL_EFORMAT, "%s:%lld: need at least 2 columns (features and a label), "
                        "got %d", p->path, (long long)p->line, cols);
    int label = p->label_request < 0 ? cols + p->label_request : p->label_request;
    if (label < 0 || label >= cols)
        return sl_error(SL_EINVAL, "%s: label column %d out of range for %d columns", p->path,
                        p->label_request, cols);
    p->cols = cols;
    p->label = label;
    return SL_OK;
}

static int parse_cell(const csv_parse *p, char *cell, int col, double *out)
{
    char *end;
    double v = strtod(cell, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == cell || *end || !isfinite(v)) {
        while (*cell == ' ' || *cell == '\t')
            cell++;
        return sl_error(SL_EFORMAT, "%s:%lld: column %d: '%.40s' is not a number", p->path,
                        (long long)p->line, col + 1, cell);
    }
    /* The dataset is stored in f32: 1e39 would silently become inf there. */
    if (!isfinite((float)v))
        return sl_error(SL_EFORMAT, "%s:%lld: column %d: %g is out of the f32 range "
                        "(|x| <= %g)", p->path, (long long)p->line, col + 1, v, (double)FLT_MAX);
    if (p->classes && col == p->label && (v < 0 || v != floor(v) || v > CSV_MAX_CLASS))
        return sl_error(SL_EFORMAT, "%s:%lld: column %d: label %g is not a class (an integer "
                        "in [0, %.0f])", p->path, (long long)p->line, col + 1, v, CSV_MAX_CLASS);
    *out = v;
    return SL_OK;
}

static int reserve_row(csv_parse *p)
{
    if (p->rows < p->cap)
        return SL_OK;
    int64_t cap = p->cap ? 2 * p->cap : 256;
    if ((uint64_t)cap > SIZE_MAX / sizeof(double) / (uint64_t)p->cols)
        return sl_error(SL_ENOMEM, "%s: too many rows", p->path);
    double *v = realloc(p->values, (size_t)cap * (size_t)p->cols * sizeof(double));
    if (!v)
        return sl_error(SL_ENOMEM, "%s: out of memory at line %lld", p->path,
                        (long long)p->line);
    p->values = v;
    p->cap = cap;
    return SL_OK;
}

/* Parses one data row (the commas are cut in place). */
static int parse_row(csv_parse *p, char *s)
{
    int cells = count_cells(s);
    if (p->cols == 0)
        SL_TRY(set_columns(p, cells));
    if (cells != p->cols)
        return sl_error(SL_EFORMAT, "%s:%lld: expected %d columns, got %d", p->path,
                        (long long)p->line, p->cols, cells);
    SL_TRY(reserve_row(p));
    double *row = p->values + p->rows * p->cols;
    for (int c = 0; c < p->cols; c++) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        SL_TRY(parse_cell(p, s, c, &row[c]));
        s = comma ? comma + 1 : s + strlen(s);
    }
    p->rows++;
    return SL_OK;
}

static int parse_line(csv_parse *p, char *s)
{
    if (is_blank(s)) {
        if (!p->blank_line)
            p->blank_line = p->line;
        return SL_OK;
    }
    if (p->blank_line)
        return sl_error(SL_EFORMAT, "%s:%lld: blank line before more data (blank lines are "
                        "allowed only at the end)", p->path, (long long)p->blank_line);
    if (!p->seen_first) {
        p->seen_first = true;
        if (p->header)
            return set_columns(p, count_cells(s));
    }
    return parse_row(p, s);
}

/* Splits buf into lines (cut in place) and parses each. */
static int parse_text(csv_parse *p, char *buf, size_t len)
{
    char *end = buf + len;
    for (char *s = buf; s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *eol = nl ? nl : end;
        p->line++;
        /* A NUL would end the line early as C strings go, dropping the rest. */
        if (memchr(s, '\0', (size_t)(eol - s)))
            return sl_error(SL_EFORMAT, "%s:%lld: NUL byte in the line (not a text file?)",
                            p->path, (long long)p->line);
        *eol = '\0';
        if (eol > s && eol[-1] == '\r')
            eol[-1] = '\0';
        SL_TRY(parse_line(p, s));
        s = eol + 1;
    }
    if (p->rows == 0)
        return sl_error(SL_EFORMAT, "%s: no data rows", p->path);
    return SL_OK;
}

/* Moves the parsed table into x (every column but the label) and y. */
static int build_dataset(const csv_parse *p, sl_dataset *d)
{
    int64_t xshape[2] = {p->rows, p->cols - 1}, yshape[2] = {p->rows, 1};
    SL_TRY(sl_tensor_alloc(&d->x, SL_F32, 2, xshape));
    SL_TRY(p->classes ? sl_tensor_alloc(&d->y, SL_I64, 1, yshape)
                      : sl_tensor_alloc(&d->y, SL_F32, 2, yshape));
    float *x = d->x.data;
    for (int64_t r = 0; r < p->rows; r++) {
        const double *row = p->values + r * p->cols;
        for (int c = 0; c < p->cols; c++)
            if (c != p->label)
                *x++ = (float)row[c];
        if (p->classes)
            ((int64_t *)d->y.data)[r] = (int64_t)row[p->label];
        else
            ((float *)d->y.data)[r] = (float)row[p->label];
    }
    return SL_OK;
}

int sl_dataset_csv(const char *path, bool header, int label_column, bool classes,
                   sl_dataset *out)
{
    if (!path || !out)
        return sl_error(SL_EINVAL, "csv: path and out must not be NULL");
    char *buf = NULL;
    size_t len = 0;
    SL_TRY(slurp(path, &buf, &len));
    csv_parse p = {.path = path, .header = header, .classes = classes,
                   .label_request = label_column};
    sl_dataset d = {0};
    int rc = parse_text(&p, buf, len);
    if (rc == SL_OK)
        rc = build_dataset(&p, &d);
    free(buf);
    free(p.values);
    if (rc < 0) {
        sl_dataset_release(&d);
        return rc;
    }
    *out = d;
    return SL_OK;
}
