/* core/checkpoint.c — sl_model_save / sl_model_load as safetensors files.
 *
 * File layout (https://github.com/huggingface/safetensors, so that
 * safetensors.torch.load_file reads our checkpoints and we read theirs):
 *
 *   bytes [0, 8)        N, the header length: unsigned 64-bit little-endian
 *   bytes [8, 8 + N)    the header: one UTF-8 JSON object
 *       {"0.weight":{"dtype":"F32","shape":[256,784],"data_offsets":[0,802816]},
 *        "0.bias":{"dtype":"F32","shape":[256],"data_offsets":[802816,803840]},
 *        ...,
 *        "__metadata__":{"format":"pt","symlab_version":"0.1.0"}}
 *     padded with spaces so that N is a multiple of 8 (data stays aligned)
 *   bytes [8 + N, end)  the data section: every tensor row-major,
 *                       little-endian, packed in header order without gaps;
 *                       data_offsets are [begin, end) relative to its start
 *
 * We write every parameter, then every buffer, under its model name, in the
 * model's dtype (F32 or F64) or, for integer buffers (batch norm's
 * num_batches_tracked), I64.  We read F32 or F64 into real tensors
 * (converting to the model's dtype) and I64 into integer buffers, and insist
 * on exactly the model's names and shapes, and on offsets that tile the data
 * section as the format requires — except that an integer buffer missing
 * from the file keeps its value, as PyTorch does for num_batches_tracked in
 * state dicts older than the buffer (and symlab checkpoints written before
 * it kept one).  The header is
 * parsed by a small strict parser for the subset of JSON the format uses:
 * objects, arrays, strings with escapes and non-negative integers.
 *
 * The same writer and reader serve training checkpoints (core/resume.c),
 * which add tensors of their own and __metadata__ pairs, through
 * sl_safetensors_save / sl_safetensors_load (internal.h).
 *
 * Saving writes "<path>.tmp.XXXXXX" beside the target and renames it into
 * place after fsync, so a crash leaves the old file or the new one, never
 * half of one.  Loading validates everything into staging tensors before it
 * touches the model, so a failed load leaves the model unchanged.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* Larger headers are refused, as the reference implementation does. */
#define MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

/* ---- the model's tensors, parameters then buffers ---------------------- */

/* The model's tensors as a named list (the caller frees it), integer
 * buffers optional on load. */
static int model_tensors(sl_model *m, sl_named_tensor **out, int *n)
{
    int np = sl_model_nparams(m), nb = sl_model_nbuffers(m);
    sl_named_tensor *t = calloc((size_t)(np + nb) + 1, sizeof *t);
    if (!t)
        return sl_error(SL_ENOMEM, "out of memory");
    for (int i = 0; i < np; i++)
        t[i] = (sl_named_tensor){sl_model_param_name(m, i), sl_model_param(m, i), false};
    for (int i = 0; i < nb; i++) {
        sl_tensor *b = sl_model_buffer(m, i);
        t[np + i] = (sl_named_tensor){sl_model_buffer_name(m, i), b, b->dtype == SL_I64};
    }
    *out = t;
    *n = np + nb;
    return SL_OK;
}

static const char *st_dtype_name(sl_dtype d)
{
    return d == SL_F32 ? "F32" : d == SL_I64 ? "I64" : "F64";
}

/* ---- little-endian element encoding (independent of the host's order) -- */

static void put_le(unsigned char *out, uint64_t bits, size_t nbytes)
{
    for (size_t k = 0; k < nbytes; k++)
        out[k] = (unsigned char)(bits >> (8 * k));
}

static uint64_t get_le(const unsigned char *in, size_t nbytes)
{
    uint64_t bits = 0;
    for (size_t k = 0; k < nbytes; k++)
        bits |= (uint64_t)in[k] << (8 * k);
    return bits;
}

/* Element i of a contiguous real tensor as little-endian bytes in `out`. */
static void encode_elem(const sl_tensor *t, int64_t i, unsigned char *out)
{
    if (t->dtype == SL_F32) {
        uint32_t bits;
        memcpy(&bits, (const float *)t->data + i, 4);
        put_le(out, bits, 4);
    } else { /* f64 or i64: 8 bytes, copied as they are */
        uint64_t bits;
        memcpy(&bits, (const char *)t->data + 8 * i, 8);
        put_le(out, bits, 8);
    }
}

/* Stores element i of the file's data (`file_dtype`, little-endian) into
 * element i of the contiguous tensor t, converting the precision (I64 goes
 * only into I64, bit for bit). */
static void decode_elem(const unsigned char *in, sl_dtype file_dtype, sl_tensor *t, int64_t i)
{
    if (file_dtype == SL_I64) {
        uint64_t bits = get_le(in, 8);
        memcpy((char *)t->data + 8 * i, &bits, 8);
        return;
    }
    double v;
    if (file_dtype == SL_F32) {
        uint32_t bits = (uint32_t)get_le(in, 4);
        float f;
        memcpy(&f, &bits, 4);
        v = f;
    } else {
        uint64_t bits = get_le(in, 8);
        memcpy(&v, &bits, 8);
    }
    if (t->dtype == SL_F32)
        ((float *)t->data)[i] = (float)v;
    else
        ((double *)t->data)[i] = v;
}

/* ---- a growable text buffer for the header ----------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
    bool oom;
} text;

static void text_add(text *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void text_str(text *b, const char *s) { text_add(b, s, strlen(s)); }

static void text_u64(text *b, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    text_add(b, num, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void text_json_string(text *b, const char *s)
{
    text_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            text_add(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            text_add(b, esc, 6);
        } else {
            text_add(b, (const char *)p, 1);
        }
    }
    text_str(b, "\"");
}

/* ---- saving ------------------------------------------------------------ */

/* The header for the n tensors of ts and the metadata pairs of `meta`
 * (may be NULL), space-padded to a multiple of 8 bytes; the data section
 * will be `*data_bytes` long. */
static int build_header(const sl_named_tensor *ts, int n, const sl_options *meta, text *h,
                        uint64_t *data_bytes)
{
    uint64_t offset = 0;
    text_str(h, "{");
    for (int i = 0; i < n; i++) {
        const sl_tensor *t = ts[i].tensor;
        uint64_t nbytes = (uint64_t)sl_tensor_numel(t) * sl_dtype_size(t->dtype);
        text_json_string(h, ts[i].name);
        text_str(h, ":{\"dtype\":\"");
        text_str(h, st_dtype_name(t->dtype));
        text_str(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d)
                text_str(h, ",");
            text_u64(h, (uint64_t)t->shape[d]);
        }
        text_str(h, "],\"data_offsets\":[");
        text_u64(h, offset);
        text_str(h, ",");
        text_u64(h, offset + nbytes);
        text_str(h, "]},");
        offset += nbytes;
    }
    text_str(h, "\"__metadata__\":{\"format\":\"pt\",\"symlab_version\":");
    text_json_string(h, SL_VERSION_STRING);
    for (int i = 0; i < sl_options_count(meta); i++) {
        const char *key = sl_options_key(meta, i);
        text_str(h, ",");
        text_json_string(h, key);
        text_str(h, ":");
        text_json_string(h, sl_options_string(meta, key));
    }
    text_str(h, "}}");
    while (!h->oom && h->len % 8 != 0)
        text_str(h, " ");
    if (h->oom)
        return sl_error(SL_ENOMEM, "out of memory building a checkpoint header");
    *data_bytes = offset;
    return SL_OK;
}

/* Writes tensor t's elements little-endian, through a small chunk buffer. */
static int write_tensor(FILE *f, const sl_tensor *t)
{
    unsigned char chunk[8192];
    size_t esize = sl_dtype_size(t->dtype), used = 0;
    int64_t n = sl_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        encode_elem(t, i, chunk + used);
        used += esize;
        if (used == sizeof chunk || i == n - 1) {
            if (fwrite(chunk, 1, used, f) != used)
                return -1;
            used = 0;
        }
    }
    return 0;
}

/* Writes the tensor as it is if contiguous, else through a contiguous copy. */
static int write_model_tensor(FILE *f, const sl_tensor *t)
{
    if (sl_tensor_is_contiguous(t))
        return write_tensor(f, t);
    sl_tensor c = {0};
    int rc = sl_tensor_alloc(&c, t->dtype, t->ndim, t->shape);
    if (rc == SL_OK)
        rc = sl_tensor_copy(&c, t);
    if (rc == SL_OK)
        rc = write_tensor(f, &c);
    sl_tensor_release(&c);
    return rc < 0 ? -1 : 0;
}

static int write_all(FILE *f, const sl_named_tensor *ts, int n, const text *h)
{
    unsigned char len[8];
    put_le(len, (uint64_t)h->len, 8);
    if (fwrite(len, 1, 8, f) != 8 || fwrite(h->s, 1, h->len, f) != h->len)
        return -1;
    for (int i = 0; i < n; i++)
        if (write_model_tensor(f, ts[i].tensor) < 0)
            return -1;
    return 0;
}

/* Writes header h and the tensors to a temporary file beside path and
 * renames it over path (core/atomic.c). */
static int save_atomically(const sl_named_tensor *ts, int n, const text *h, const char *path,
                           const char *what)
{
    sl_atomic_file a;
    SL_TRY(sl_atomic_begin(path, &a));
    if (write_all(a.f, ts, n, h) < 0) {
        int err = errno;
        sl_atomic_abort(&a);
        return sl_error(SL_EIO, "%s: cannot write %s: %s", path, what, strerror(err));
    }
    return sl_atomic_commit(&a, what);
}

int sl_safetensors_save(const char *path, const sl_named_tensor *ts, int n,
                        const sl_options *meta, const char *what)
{
    text h = {0};
    uint64_t data_bytes = 0;
    int rc = build_header(ts, n, meta, &h, &data_bytes);
    if (rc == SL_OK)
        rc = save_atomically(ts, n, &h, path, what);
    free(h.s);
    return rc;
}

static int check_savable(sl_model *m, const char *path)
{
    if (!m || !path)
        return sl_error(SL_EINVAL, "sl_model_save: model and path are required");
    if (!sl_model_is_built(m))
        return sl_error(SL_ESTATE, "%s: cannot save a model that is not built", path);
    sl_dtype d = sl_model_dtype(m);
    if (d != SL_F32 && d != SL_F64)
        return sl_error(SL_EDTYPE, "%s: checkpoints hold f32 or f64 models, not %s", path,
                        sl_dtype_name(d));
    return SL_OK;
}

int sl_model_save(sl_model *m, const char *path)
{
    SL_TRY(check_savable(m, path));
    sl_named_tensor *ts = NULL;
    int n = 0;
    SL_TRY(model_tensors(m, &ts, &n));
    int rc = sl_safetensors_save(path, ts, n, NULL, "checkpoint");
    free(ts);
    return rc;
}

/* ---- the strict header parser ------------------------------------------ */

/* One tensor described by the header. */
typedef struct entry {
    char *name;
    char *dtype;                 /* as written: "F32", "BF16", ... */
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    uint64_t begin, end;         /* data_offsets */
    bool used;                   /* matched by a model tensor */
} entry;

typedef struct parser {
    const char *path;
    const char *s;   /* the header, not NUL-terminated */
    size_t n, pos;
    entry *entries;
    int count, cap;
    sl_options *meta; /* __metadata__'s pairs, when the caller wants them */
} parser;

/* A format error at the current position, as a byte offset in the file. */
static int fail(parser *p, const char *what)
{
    return sl_error(SL_EFORMAT, "%s: malformed safetensors header at byte %zu: %s", p->path,
                    (size_t)8 + p->pos, what);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(parser *p)
{
    skip_ws(p);
    return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1;
}

static int expect(parser *p, char c, const char *what)
{
    if (peek(p) != (unsigned char)c)
        return fail(p, what);
    p->pos++;
    return SL_OK;
}

static int hex4(parser *p, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        if (p->pos >= p->n)
            return fail(p, "unterminated \\u escape");
        char c = p->s[p->pos++];
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad hex digit in \\u escape");
        v = v * 16 + digit;
    }
    *out = v;
    return SL_OK;
}

static void add_utf8(text *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    text_add(b, u, n);
}

/* A \uXXXX escape (the backslash and 'u' already read), joining a
 * surrogate pair; NUL is refused since names are C strings. */
static int unicode_escape(parser *p, text *b)
{
    unsigned cp, lo;
    SL_TRY(hex4(p, &cp));
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, "unpaired low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->pos + 2 > p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "unpaired high surrogate in \\u escape");
        p->pos += 2;
        SL_TRY(hex4(p, &lo));
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, "bad low surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0)
        return fail(p, "NUL character in a string");
    add_utf8(b, cp);
    return SL_OK;
}

static int escape(parser *p, text *b)
{
    if (p->pos >= p->n)
        return fail(p, "unterminated string");
    char c = p->s[p->pos++];
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        text_add(b, &to[hit - from], 1);
        return SL_OK;
    }
    if (c == 'u')
        return unicode_escape(p, b);
    p->pos--;
    return fail(p, "unknown escape in string");
}

/* A string into a new NUL-terminated *out (caller frees). */
static int parse_string(parser *p, char **out)
{
    SL_TRY(expect(p, '"', "expected a string"));
    text b = {0};
    text_add(&b, "", 0);
    int rc = SL_OK;
    for (;;) {
        if (p->pos >= p->n) {
            rc = fail(p, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c == '"')
            break;
        if (c < 0x20) {
            p->pos--;
            rc = fail(p, "control character in string");
            break;
        }
        if (c == '\\') {
            if ((rc = escape(p, &b)) < 0)
                break;
        } else {
            text_add(&b, (const char *)&c, 1);
        }
    }
    if (rc == SL_OK && b.oom)
        rc = sl_error(SL_ENOMEM, "%s: out of memory reading the header", p->path);
    if (rc < 0) {
        free(b.s);
        return rc;
    }
    *out = b.s;
    return SL_OK;
}

/* A non-negative integer without sign, fraction, exponent or leading zeros,
 * at most INT64_MAX. */
static int parse_uint(parser *p, uint64_t *out)
{
    int c = peek(p);
    if (c < '0' || c > '9')
        return fail(p, "expected a non-negative integer");
    if (c == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return fail(p, "leading zero in an integer");
    uint64_t v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned digit = (unsigned)(p->s[p->pos] - '0');
        if (v > ((uint64_t)INT64_MAX - digit) / 10)
            return fail(p, "integer too large");
        v = v * 10 + digit;
        p->pos++;
    }
    if (p->pos < p->n && strchr(".eE", p->s[p->pos]))
        return fail(p, "expected an integer, not a fraction");
    *out = v;
    return SL_OK;
}

/* '[' uint (',' uint)* ']' or '[]', at most `max` items. */
static int parse_uint_array(parser *p, uint64_t *items, int max, int *count)
{
    SL_TRY(expect(p, '[', "expected '['"));
    *count = 0;
    if (peek(p) == ']') {
        p->pos++;
        return SL_OK;
    }
    for (;;) {
        if (*count == max)
            return fail(p, "too many array elements");
        SL_TRY(parse_uint(p, &items[(*count)++]));
        int c = peek(p);
        p->pos++;
        if (c == ']')
            return SL_OK;
        if (c != ',') {
            p->pos--;
            return fail(p, "expected ',' or ']'");
        }
    }
}

/* Calls member(p, key, ctx) for each "key": of an object; the callback
 * parses the value. */
typedef int (*member_fn)(parser *p, const char *key, void *ctx);

static int parse_object(parser *p, member_fn member, void *ctx)
{
    SL_TRY(expect(p, '{', "expected '{'"));
    if (peek(p) == '}') {
        p->pos++;
        return SL_OK;
    }
    for (;;) {
        char *key = NULL;
        SL_TRY(parse_string(p, &key));
        int rc = expect(p, ':', "expected ':'");
        if (rc == SL_OK)
            rc = member(p, key, ctx);
        free(key);
        SL_TRY(rc);
        int c = peek(p);
        p->pos++;
        if (c == '}')
            return SL_OK;
        if (c != ',') {
            p->pos--;
            return fail(p, "expected ',' or '}'");
        }
    }
}

/* __metadata__ values must be strings (the format's rule); kept only for
 * a caller that asked. */
static int metadata_member(parser *p, const char *key, void *ctx)
{
    (void)ctx;
    char *value = NULL;
    SL_TRY(parse_string(p, &value));
    int rc = p->meta ? sl_options_set_string(p->meta, key, value) : SL_OK;
    free(value);
    return rc < 0 ? sl_error(rc, "%s: cannot keep metadata '%s'", p->path, key) : SL_OK;
}

/* One of "dtype", "shape", "data_offsets", each exactly once. */
static int tensor_member(parser *p, const char *key, void *ctx)
{
    entry *e = ctx;
    uint64_t items[SL_MAX_DIMS];
    int count;
    if (strcmp(key, "dtype") == 0) {
        if (e->dtype)
            return fail(p, "duplicate key 'dtype'");
        return parse_string(p, &e->dtype);
    }
    if (strcmp(key, "shape") == 0) {
        if (e->ndim >= 0)
            return fail(p, "duplicate key 'shape'");
        SL_TRY(parse_uint_array(p, items, SL_MAX_DIMS, &count));
        for (int d = 0; d < count; d++)
            e->shape[d] = (int64_t)items[d];
        e->ndim = count;
        return SL_OK;
    }
    if (strcmp(key, "data_offsets") == 0) {
        if (e->end != UINT64_MAX)
            return fail(p, "duplicate key 'data_offsets'");
        SL_TRY(parse_uint_array(p, items, 2, &count));
        if (count != 2)
            return fail(p, "data_offsets must hold two integers");
        e->begin = items[0];
        e->end = items[1];
        return SL_OK;
    }
    return fail(p, "unknown key in a tensor description");
}

static int find_entry(const parser *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->entries[i].name, name) == 0)
            return i;
    return -1;
}

static int add_entry(parser *p, const char *name, entry **out)
{
    if (find_entry(p, name) >= 0)
        return fail(p, "duplicate tensor name");
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        entry *e = realloc(p->entries, (size_t)cap * sizeof *e);
        if (!e)
            return sl_error(SL_ENOMEM, "%s: out of memory reading the header", p->path);
        p->entries = e;
        p->cap = cap;
    }
    entry *e = &p->entries[p->count];
    memset(e, 0, sizeof *e);
    e->ndim = -1;
    e->end = UINT64_MAX;
    if (!(e->name = sl_strdup(name)))
        return SL_ENOMEM;
    p->count++;
    *out = e;
    return SL_OK;
}

static int header_member(parser *p, const char *key, void *ctx)
{
    bool *seen_metadata = ctx;
    if (strcmp(key, "__metadata__") == 0) {
        if (*seen_metadata)
            return fail(p, "duplicate __metadata__");
        *seen_metadata = true;
        return parse_object(p, metadata_member, NULL);
    }
    entry *e = NULL;
    SL_TRY(add_entry(p, key, &e));
    SL_TRY(parse_object(p, tensor_member, e));
    if (!e->dtype || e->ndim < 0 || e->end == UINT64_MAX)
        return fail(p, "tensor description lacks dtype, shape or data_offsets");
    return SL_OK;
}

static int parse_header(parser *p)
{
    bool seen_metadata = false;
    SL_TRY(parse_object(p, header_member, &seen_metadata));
    if (peek(p) != -1)
        return fail(p, "trailing characters after the header object");
    return SL_OK;
}

static void free_entries(parser *p)
{
    for (int i = 0; i < p->count; i++) {
        free(p->entries[i].name);
        free(p->entries[i].dtype);
    }
    free(p->entries);
}

/* ---- loading ----------------------------------------------------------- */

/* The whole file into a new buffer. */
static int read_file(const char *path, unsigned char **out, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_error(SL_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sl_error(SL_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return sl_error(SL_ENOMEM, "%s: out of memory for %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (got != n) {
        free(buf);
        return sl_error(SL_EIO, "%s: read %zu of %zu bytes: %s", path, got, n,
                        err ? strerror(err) : "file shrank");
    }
    *out = buf;
    *size = n;
    return SL_OK;
}

/* Checks the header length against the file; *header_len on success. */
static int check_lengths(const char *path, const unsigned char *buf, size_t size,
                         uint64_t *header_len)
{
    if (size < 8)
        return sl_error(SL_EFORMAT, "%s: truncated: %zu bytes, too short for a safetensors "
                        "header length", path, size);
    uint64_t n = get_le(buf, 8);
    if (n < 2 || n > MAX_HEADER_BYTES)
        return sl_error(SL_EFORMAT, "%s: implausible safetensors header length %llu", path,
                        (unsigned long long)n);
    if (n > size - 8)
        return sl_error(SL_EFORMAT, "%s: truncated: header length %llu exceeds the %zu bytes "
                        "after it", path, (unsigned long long)n, size - 8);
    *header_len = n;
    return SL_OK;
}

static int by_begin(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The format's rule: tensors tile the data section without gaps or
 * overlaps, so every byte belongs to exactly one tensor. */
static int check_tiling(parser *p, uint64_t data_bytes)
{
    entry **order = malloc((p->count > 0 ? (size_t)p->count : 1) * sizeof *order);
    if (!order)
        return sl_error(SL_ENOMEM, "%s: out of memory", p->path);
    for (int i = 0; i < p->count; i++)
        order[i] = &p->entries[i];
    qsort(order, (size_t)p->count, sizeof *order, by_begin);
    uint64_t at = 0;
    int rc = SL_OK;
    for (int i = 0; i < p->count && rc == SL_OK; i++) {
        if (order[i]->begin != at)
            rc = sl_error(SL_EFORMAT, "%s: tensor '%s' starts at data byte %llu, expected %llu "
                          "(gap or overlap)", p->path, order[i]->name,
                          (unsigned long long)order[i]->begin, (unsigned long long)at);
        at = order[i]->end;
    }
    if (rc == SL_OK && at != data_bytes)
        rc = sl_error(SL_EFORMAT, "%s: tensors cover %llu of the %llu data bytes", p->path,
                      (unsigned long long)at, (unsigned long long)data_bytes);
    free(order);
    return rc;
}

/* Entry e against tensor t of the `what`: dtype, shape and extent. */
static int check_entry(const parser *p, const entry *e, const sl_tensor *t, const char *what,
                       uint64_t data_bytes, sl_dtype *file_dtype)
{
    bool integer = t->dtype == SL_I64;
    if (integer && strcmp(e->dtype, "I64") == 0)
        *file_dtype = SL_I64;
    else if (!integer && strcmp(e->dtype, "F32") == 0)
        *file_dtype = SL_F32;
    else if (!integer && strcmp(e->dtype, "F64") == 0)
        *file_dtype = SL_F64;
    else
        return integer ? sl_error(SL_EFORMAT, "%s: tensor '%s' has dtype %s; the %s's integer "
                                  "buffer loads only I64", p->path, e->name, e->dtype, what)
                       : sl_error(SL_EFORMAT, "%s: tensor '%s' has dtype %s; only F32 and F64 "
                                  "load into real tensors", p->path, e->name, e->dtype);
    if (e->ndim != t->ndim || memcmp(e->shape, t->shape, (size_t)t->ndim * sizeof *e->shape)) {
        char want[96], got[96];
        return sl_error(SL_EFORMAT, "%s: tensor '%s' has shape %s, the %s expects %s",
                        p->path, e->name, sl_shape_str(e->ndim, e->shape, got, sizeof got), what,
                        sl_shape_str(t->ndim, t->shape, want, sizeof want));
    }
    uint64_t nbytes = (uint64_t)sl_tensor_numel(t) * sl_dtype_size(*file_dtype);
    if (e->begin > e->end || e->end > data_bytes || e->end - e->begin != nbytes)
        return sl_error(SL_EFORMAT, "%s: tensor '%s' has data_offsets [%llu, %llu], expected "
                        "%llu bytes within the %llu data bytes", p->path, e->name,
                        (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)nbytes, (unsigned long long)data_bytes);
    return SL_OK;
}

/* Matches every tensor of ts to one entry and decodes it into staging[i]
 * (allocated here); then refuses entries the `what` does not have. */
static int stage(parser *p, const sl_named_tensor *ts, int n, const char *what,
                 const unsigned char *data, uint64_t data_bytes, sl_tensor *staging)
{
    for (int i = 0; i < n; i++) {
        const char *name = ts[i].name;
        const sl_tensor *t = ts[i].tensor;
        int k = find_entry(p, name);
        if (k < 0 && ts[i].optional)
            continue; /* staging[i] stays empty: the tensor keeps its value */
        if (k < 0)
            return sl_error(SL_EFORMAT, "%s: missing tensor '%s'", p->path, name);
        entry *e = &p->entries[k];
        sl_dtype fd = SL_F32;
        SL_TRY(check_entry(p, e, t, what, data_bytes, &fd));
        e->used = true;
        SL_TRY(sl_tensor_alloc(&staging[i], t->dtype, t->ndim, t->shape));
        const unsigned char *src = data + e->begin;
        size_t fsize = sl_dtype_size(fd);
        for (int64_t j = 0; j < sl_tensor_numel(t); j++)
            decode_elem(src + (size_t)j * fsize, fd, &staging[i], j);
    }
    for (int k = 0; k < p->count; k++)
        if (!p->entries[k].used)
            return sl_error(SL_EFORMAT, "%s: unexpected tensor '%s' (not in the %s)", p->path,
                            p->entries[k].name, what);
    return check_tiling(p, data_bytes);
}

/* Parses and validates buf (the whole file), lets `check` judge the
 * metadata, and stages every tensor. */
static int load_buffer(const sl_safetensors_load_args *a, const unsigned char *buf, size_t size,
                       sl_tensor *staging)
{
    uint64_t header_len = 0;
    SL_TRY(check_lengths(a->path, buf, size, &header_len));
    parser p = {.path = a->path, .s = (const char *)buf + 8, .n = (size_t)header_len};
    if (a->check && !(p.meta = sl_options_new()))
        return sl_error(SL_ENOMEM, "%s: out of memory", a->path);
    int rc = parse_header(&p);
    if (rc == SL_OK && a->check)
        rc = a->check(a->userdata, p.meta);
    if (rc == SL_OK)
        rc = stage(&p, a->tensors, a->n, a->what, buf + 8 + header_len,
                   (uint64_t)size - 8 - header_len, staging);
    free_entries(&p);
    sl_options_free(p.meta);
    return rc;
}

int sl_safetensors_load(const sl_safetensors_load_args *a)
{
    int n = a->n;
    sl_tensor *staging = calloc(n > 0 ? (size_t)n : 1, sizeof *staging);
    if (!staging)
        return sl_error(SL_ENOMEM, "%s: out of memory", a->path);
    unsigned char *buf = NULL;
    size_t size = 0;
    int rc = read_file(a->path, &buf, &size);
    if (rc == SL_OK)
        rc = load_buffer(a, buf, size, staging);
    /* Commit only after everything validated; copies between tensors of
     * one dtype and shape cannot fail. */
    for (int i = 0; rc == SL_OK && i < n; i++)
        if (staging[i].storage)
            rc = sl_tensor_copy(a->tensors[i].tensor, &staging[i]);
    sl_tensor_release_all(staging, n);
    free(staging);
    free(buf);
    return rc;
}

int sl_model_load(sl_model *m, const char *path)
{
    if (!m || !path)
        return sl_error(SL_EINVAL, "sl_model_load: model and path are required");
    if (!sl_model_is_built(m))
        return sl_error(SL_ESTATE, "%s: build the model before loading into it", path);
    sl_named_tensor *ts = NULL;
    int n = 0;
    SL_TRY(model_tensors(m, &ts, &n));
    int rc = sl_safetensors_load(&(sl_safetensors_load_args){
        .path = path, .what = "model", .tensors = ts, .n = n});
    free(ts);
    return rc;
}
