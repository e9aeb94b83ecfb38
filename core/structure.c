/* core/structure.c — the structure walker (structure.h): weight layers and
 * hidden layers from the modules' declared roles. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include <symlab/structure.h>

typedef struct hidden {
    sl_hidden_layer pub;
    sl_unit_ref *refs;
    int cap;
} hidden;

struct sl_structure {
    sl_weight_layer *layers;
    int nlayers, layer_cap;
    hidden *hidden;
    int nhidden, hidden_cap;
};

/* Grows *arr (of `size`-byte elements) to hold at least n + 1. */
static int reserve(void **arr, int *cap, int n, size_t size)
{
    if (n < *cap)
        return SL_OK;
    int c = *cap ? 2 * *cap : 8;
    void *grown = realloc(*arr, (size_t)c * size);
    if (!grown)
        return sl_error(SL_ENOMEM, "structure: out of memory");
    *arr = grown;
    *cap = c;
    return SL_OK;
}

/* Model parameter (or, with buffer, buffer) index of module i's `local`. */
static int find_local(sl_model *m, int module, const char *local, bool buffer)
{
    char name[256];
    if (!local || snprintf(name, sizeof name, "%d.%s", module, local) >= (int)sizeof name)
        return -1;
    if (!buffer)
        return sl_model_find_param(m, name);
    for (int b = 0; b < sl_model_nbuffers(m); b++)
        if (strcmp(sl_model_buffer_name(m, b), name) == 0)
            return b;
    return -1;
}

static int add_ref(hidden *h, sl_unit_ref r)
{
    SL_TRY(reserve((void **)&h->refs, &h->cap, h->pub.nrefs, sizeof *h->refs));
    h->refs[h->pub.nrefs++] = r;
    return SL_OK;
}

/* The open hidden layer while walking: a weight layer's outputs and what
 * the maps after it allow so far. */
typedef struct walk {
    bool open;
    hidden h;
    unsigned all_flags;    /* AND of the per-unit maps' flags (all set: no map) */
    unsigned any_flags;    /* OR of them */
    bool unit_tensors;     /* a map in between has per-unit tensors */
    bool scale_free;       /* a normalising map followed homogeneous ones */
    bool shape_kept;       /* no resampling map yet: act_module still moves */
} walk;

static void walk_drop(walk *w)
{
    free(w->h.refs);
    memset(w, 0, sizeof *w);
}

static unsigned symmetry_of(const walk *w)
{
    unsigned sym = SL_SYM_PERMUTE;
    if (!w->unit_tensors) {
        if (w->all_flags & SL_UNIT_HOMOGENEOUS)
            sym |= SL_SYM_RESCALE;
        if (w->all_flags & SL_UNIT_ODD)
            sym |= SL_SYM_SIGN;
        if ((w->all_flags & SL_UNIT_LINEAR) && !(w->any_flags & SL_UNIT_STOCHASTIC))
            sym |= SL_SYM_GL;
    }
    if (w->scale_free)
        sym |= SL_SYM_SCALE_FREE;
    return sym;
}

/* Adds module i's declared per-unit tensors to the open hidden layer;
 * false if one does not have the units on axis 0 (the map is then not per
 * unit for these units: the hidden layer ends). */
static int add_unit_tensors(sl_model *m, int i, const sl_module_role *role, walk *w, bool *fits)
{
    *fits = true;
    for (const char *const *t = role->unit_tensors; t && *t; t++) {
        int p = find_local(m, i, *t, false), b = p < 0 ? find_local(m, i, *t, true) : -1;
        if (p < 0 && b < 0)
            continue; /* declared but not created (affine = false) */
        const sl_tensor *x = p >= 0 ? sl_model_param(m, p) : sl_model_buffer(m, b);
        if (x->ndim < 1 || x->shape[0] != w->h.pub.units) {
            *fits = false;
            return SL_OK;
        }
        SL_TRY(add_ref(&w->h, (sl_unit_ref){p, b, 0, 1, SL_UNITS_SELF, i}));
        w->unit_tensors = true;
    }
    return SL_OK;
}

/* Closes the open hidden layer into s, read by weight layer `consumer`. */
static int close_hidden(sl_structure *s, walk *w, int consumer)
{
    SL_TRY(reserve((void **)&s->hidden, &s->hidden_cap, s->nhidden, sizeof *s->hidden));
    w->h.pub.symmetry = symmetry_of(w);
    w->h.pub.consumer = consumer;
    int idx = s->nhidden++;
    s->hidden[idx] = w->h;
    s->layers[w->h.pub.producer].hidden_out = idx;
    s->layers[consumer].hidden_in = idx;
    memset(w, 0, sizeof *w); /* the refs now belong to s */
    return SL_OK;
}

static int weight_layer(sl_model *m, sl_structure *s, int i, const sl_module_role *role,
                        walk *w)
{
    int wi = find_local(m, i, role->weight, false);
    const sl_tensor *wt = wi >= 0 ? sl_model_param(m, wi) : NULL;
    if (!wt || role->unit_axis < 0 || role->unit_axis >= wt->ndim || role->input_axis < 0 ||
        role->input_axis >= wt->ndim || role->input_axis == role->unit_axis ||
        wt->shape[role->unit_axis] <= 0)
        return sl_error(SL_EPLUGIN,
                        "module %d (%s): declares a weight layer whose weight '%s' or axes "
                        "(%d, %d) do not match its parameters",
                        i + 1, sl_module_type_of(sl_model_module(m, i))->name,
                        role->weight ? role->weight : "(none)", role->unit_axis,
                        role->input_axis);
    SL_TRY(reserve((void **)&s->layers, &s->layer_cap, s->nlayers, sizeof *s->layers));
    int l = s->nlayers++;
    sl_weight_layer *L = &s->layers[l];
    int bi = find_local(m, i, role->bias, false);
    *L = (sl_weight_layer){.module = i,
                           .weight = wi,
                           .bias = bi,
                           .unit_axis = role->unit_axis,
                           .input_axis = role->input_axis,
                           .units = wt->shape[role->unit_axis],
                           .fan_in = sl_tensor_numel(wt) / wt->shape[role->unit_axis],
                           .hidden_out = -1,
                           .hidden_in = -1};
    if (w->open) {
        int64_t n = wt->shape[role->input_axis], k = w->h.pub.units;
        if (n % k == 0) {
            SL_TRY(add_ref(&w->h, (sl_unit_ref){wi, -1, role->input_axis, n / k, SL_UNITS_IN, i}));
            SL_TRY(close_hidden(s, w, l));
        } else {
            walk_drop(w);
        }
    }
    /* Open this layer's outputs as the next candidate hidden layer. */
    w->open = true;
    w->all_flags = ~0u;
    w->shape_kept = true;
    w->h.pub = (sl_hidden_layer){.units = L->units, .producer = l, .act_module = i};
    SL_TRY(add_ref(&w->h, (sl_unit_ref){wi, -1, role->unit_axis, 1, SL_UNITS_OUT, i}));
    if (bi >= 0) {
        const sl_tensor *bt = sl_model_param(m, bi);
        if (bt->ndim != 1 || bt->shape[0] != L->units)
            return sl_error(SL_EPLUGIN, "module %d (%s): its bias '%s' is not 1-d over its %lld "
                                        "units",
                            i + 1, sl_module_type_of(sl_model_module(m, i))->name, role->bias,
                            (long long)L->units);
        SL_TRY(add_ref(&w->h, (sl_unit_ref){bi, -1, 0, 1, SL_UNITS_OUT, i}));
    }
    return SL_OK;
}

static int per_unit(sl_model *m, int i, const sl_module_role *role, walk *w)
{
    if (!w->open)
        return SL_OK;
    bool fits;
    bool before = w->unit_tensors;
    SL_TRY(add_unit_tensors(m, i, role, w, &fits));
    if (!fits) {
        walk_drop(w);
        return SL_OK;
    }
    if ((role->flags & SL_UNIT_NORMALISING) && (w->all_flags & SL_UNIT_HOMOGENEOUS) && !before)
        w->scale_free = true;
    w->all_flags &= role->flags;
    w->any_flags |= role->flags;
    if (role->flags & SL_UNIT_RESAMPLES)
        w->shape_kept = false;
    if (w->shape_kept)
        w->h.pub.act_module = i;
    return SL_OK;
}

int sl_model_structure(sl_model *m, sl_structure **out)
{
    *out = NULL;
    if (!sl_model_is_built(m))
        return sl_error(SL_ESTATE, "structure: the model is not built");
    sl_structure *s = calloc(1, sizeof *s);
    if (!s)
        return sl_error(SL_ENOMEM, "structure: out of memory");
    walk w = {0};
    int rc = SL_OK;
    for (int i = 0; i < sl_model_nmodules(m) && rc >= 0; i++) {
        const sl_module_role *role = sl_module_role_of(sl_model_module(m, i));
        switch (role->kind) {
        case SL_ROLE_WEIGHT: rc = weight_layer(m, s, i, role, &w); break;
        case SL_ROLE_PER_UNIT: rc = per_unit(m, i, role, &w); break;
        case SL_ROLE_RESHAPE: break; /* unit-major: the next layer's block says how */
        default: walk_drop(&w); break;
        }
    }
    walk_drop(&w); /* the output layer's units are not hidden */
    if (rc < 0) {
        sl_structure_free(s);
        return rc;
    }
    *out = s;
    return SL_OK;
}

void sl_structure_free(sl_structure *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nhidden; i++)
        free(s->hidden[i].refs);
    free(s->hidden);
    free(s->layers);
    free(s);
}

int sl_structure_nlayers(const sl_structure *s) { return s->nlayers; }
int sl_structure_nhidden(const sl_structure *s) { return s->nhidden; }

const sl_weight_layer *sl_structure_layer(const sl_structure *s, int i)
{
    return i >= 0 && i < s->nlayers ? &s->layers[i] : NULL;
}

const sl_hidden_layer *sl_structure_hidden(const sl_structure *s, int i)
{
    return i >= 0 && i < s->nhidden ? &s->hidden[i].pub : NULL;
}

const sl_unit_ref *sl_hidden_ref(const sl_hidden_layer *h, int i)
{
    /* pub is the first member of hidden, so h is the hidden it lives in. */
    const hidden *hd = (const hidden *)h;
    return i >= 0 && i < h->nrefs ? &hd->refs[i] : NULL;
}

sl_tensor *sl_unit_ref_tensor(sl_model *m, const sl_unit_ref *r)
{
    return r->param >= 0 ? sl_model_param(m, r->param) : sl_model_buffer(m, r->buffer);
}

/* The ref's tensor viewed as (outer, units, inner): unit j owns [.., j, ..]. */
static void ref_view(sl_model *m, const sl_unit_ref *r, int64_t units, int64_t *outer,
                     int64_t *inner)
{
    const sl_tensor *t = sl_unit_ref_tensor(m, r);
    *outer = 1;
    for (int d = 0; d < r->axis; d++)
        *outer *= t->shape[d];
    *inner = sl_tensor_numel(t) / (*outer * units);
}

int64_t sl_unit_ref_width(sl_model *m, const sl_unit_ref *r, int64_t units)
{
    return sl_tensor_numel(sl_unit_ref_tensor(m, r)) / units;
}

int sl_unit_ref_rows(sl_model *m, const sl_unit_ref *r, int64_t units, double *dst)
{
    const sl_tensor *t = sl_unit_ref_tensor(m, r);
    if (!sl_tensor_is_contiguous(t))
        return sl_error(SL_ESHAPE, "structure: a unit tensor is not contiguous");
    int64_t outer, inner;
    ref_view(m, r, units, &outer, &inner);
    const int64_t width = outer * inner;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < units; j++)
            for (int64_t k = 0; k < inner; k++)
                dst[j * width + o * inner + k] = sl_tensor_flat_get(t, (o * units + j) * inner + k);
    return SL_OK;
}

/* Permutes the middle index of t viewed as (outer, units, inner). */
static int permute_middle(sl_tensor *t, int64_t outer, int64_t units, int64_t inner,
                          const int64_t *perm)
{
    if (!sl_tensor_is_contiguous(t))
        return sl_error(SL_ESHAPE, "structure: a unit tensor is not contiguous");
    size_t row = (size_t)inner * sl_dtype_size(t->dtype);
    size_t bytes = (size_t)(outer * units) * row;
    char *copy = malloc(bytes ? bytes : 1);
    if (!copy)
        return sl_error(SL_ENOMEM, "structure: out of memory");
    memcpy(copy, t->data, bytes);
    char *dst = t->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < units; j++)
            memcpy(dst + (size_t)(o * units + j) * row,
                   copy + (size_t)(o * units + perm[j]) * row, row);
    free(copy);
    return SL_OK;
}

int sl_structure_permute(sl_model *m, const sl_structure *s, int hidden_index,
                         const int64_t *perm)
{
    const sl_hidden_layer *h = sl_structure_hidden(s, hidden_index);
    if (!h)
        return sl_error(SL_EINVAL, "structure: no hidden layer %d", hidden_index);
    const int64_t k = h->units;
    unsigned char *seen = calloc((size_t)k, 1);
    if (!seen)
        return sl_error(SL_ENOMEM, "structure: out of memory");
    for (int64_t j = 0; j < k; j++) {
        if (perm[j] < 0 || perm[j] >= k || seen[perm[j]]) {
            free(seen);
            return sl_error(SL_EINVAL, "structure: not a permutation of %lld units",
                            (long long)k);
        }
        seen[perm[j]] = 1;
    }
    free(seen);
    for (int i = 0; i < h->nrefs; i++) {
        const sl_unit_ref *r = sl_hidden_ref(h, i);
        int64_t outer, inner;
        ref_view(m, r, k, &outer, &inner);
        SL_TRY(permute_middle(sl_unit_ref_tensor(m, r), outer, k, inner, perm));
    }
    return SL_OK;
}

void sl_flags_text(unsigned flags, const char *const *names, int nnames, char *buf,
                   size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < nnames; i++) {
        if (!(flags & (1u << i)))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

void sl_symmetry_text(unsigned symmetry, char *buf, size_t size)
{
    static const char *const names[] = {"permute", "rescale", "sign", "gl", "scale_free"};
    sl_flags_text(symmetry, names, (int)(sizeof names / sizeof *names), buf, size);
}

int sl_weight_layer_matrix(sl_model *m, const sl_weight_layer *L, sl_tensor *out)
{
    int64_t shape[2] = {L->units, L->fan_in};
    SL_TRY(sl_tensor_alloc(out, SL_F64, 2, shape));
    sl_unit_ref r = {L->weight, -1, L->unit_axis, 1, SL_UNITS_OUT, L->module};
    int rc = sl_unit_ref_rows(m, &r, L->units, out->data);
    if (rc < 0)
        sl_tensor_release(out);
    return rc;
}
