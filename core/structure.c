/* core/structure.c — the structure walker (structure.h): weight layers and
 * hidden layers from the modules' declared roles. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
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

/* Model parameter (or, with buffer, buffer) index of mod's tensor `local`. */
static int find_local(sl_model *m, const sl_module *mod, const char *local, bool buffer)
{
    char name[512];
    if (!local || snprintf(name, sizeof name, "%s.%s", mod->path, local) >= (int)sizeof name)
        return -1;
    if (!buffer)
        return sl_model_find_param(m, name);
    for (int b = 0; b < sl_model_nbuffers(m); b++)
        if (strcmp(sl_model_buffer_name(m, b), name) == 0)
            return b;
    return -1;
}

/* A set of units while walking: the outputs of one or more weight layers
 * (several where residual connections add them up) and what the maps on
 * them allow so far. */
typedef struct group {
    hidden h;
    unsigned all_flags;    /* AND of the per-unit maps' flags (all set: no map) */
    unsigned any_flags;    /* OR of them */
    bool unit_tensors;     /* a map on them has per-unit tensors */
    bool scale_free;       /* a normalising map followed homogeneous ones */
    bool shape_kept;       /* no resampling map yet: the activation still moves */
    bool dead;             /* flows somewhere opaque (or out): not a hidden layer */
    int merged_into;       /* -1, or the group that absorbed this one */
} group;

typedef struct walk {
    sl_model *m;
    sl_structure *s;
    group *g;
    int n, cap;
} walk;

static int add_ref(hidden *h, sl_unit_ref r)
{
    SL_TRY(reserve((void **)&h->refs, &h->cap, h->pub.nrefs, sizeof *h->refs));
    h->refs[h->pub.nrefs++] = r;
    return SL_OK;
}

static int root(const walk *w, int g)
{
    while (g >= 0 && w->g[g].merged_into >= 0)
        g = w->g[g].merged_into;
    return g;
}

static void kill(walk *w, int g)
{
    if ((g = root(w, g)) >= 0)
        w->g[g].dead = true;
}

static unsigned symmetry_of(const group *g)
{
    unsigned sym = SL_SYM_PERMUTE;
    if (!g->unit_tensors) {
        if (g->all_flags & SL_UNIT_HOMOGENEOUS)
            sym |= SL_SYM_RESCALE;
        if (g->all_flags & SL_UNIT_ODD)
            sym |= SL_SYM_SIGN;
        if ((g->all_flags & SL_UNIT_LINEAR) && !(g->any_flags & SL_UNIT_STOCHASTIC))
            sym |= SL_SYM_GL;
    }
    if (g->scale_free)
        sym |= SL_SYM_SCALE_FREE;
    return sym;
}

/* A new group: the outputs of weight layer l (module mod). */
static int open_group(walk *w, int l, const sl_module *mod, int64_t units, int *out)
{
    SL_TRY(reserve((void **)&w->g, &w->cap, w->n, sizeof *w->g));
    group *g = &w->g[w->n];
    memset(g, 0, sizeof *g);
    g->all_flags = ~0u;
    g->shape_kept = true;
    g->merged_into = -1;
    g->h.pub = (sl_hidden_layer){.units = units, .producer = l, .consumer = -1, .act = mod};
    *out = w->n++;
    return SL_OK;
}

/* Weight layer l consumes group g (if any); returns the group of its outputs. */
static int weight_layer(walk *w, sl_module *mod, const sl_module_role *role, int g, int *out)
{
    sl_model *m = w->m;
    sl_structure *s = w->s;
    int wi = find_local(m, mod, role->weight, false);
    const sl_tensor *wt = wi >= 0 ? sl_model_param(m, wi) : NULL;
    if (!wt || role->unit_axis < 0 || role->unit_axis >= wt->ndim || role->input_axis < 0 ||
        role->input_axis >= wt->ndim || role->input_axis == role->unit_axis ||
        wt->shape[role->unit_axis] <= 0)
        return sl_error(SL_EPLUGIN,
                        "module %s (%s): declares a weight layer whose weight '%s' or axes "
                        "(%d, %d) do not match its parameters",
                        mod->path, mod->type->name, role->weight ? role->weight : "(none)",
                        role->unit_axis, role->input_axis);
    SL_TRY(reserve((void **)&s->layers, &s->layer_cap, s->nlayers, sizeof *s->layers));
    const int l = s->nlayers++;
    sl_weight_layer *L = &s->layers[l];
    const int bi = find_local(m, mod, role->bias, false);
    const int64_t units = wt->shape[role->unit_axis];
    *L = (sl_weight_layer){.module = -1,
                           .weight = wi,
                           .bias = bi,
                           .unit_axis = role->unit_axis,
                           .input_axis = role->input_axis,
                           .units = units,
                           .fan_in = sl_tensor_numel(wt) / units,
                           .hidden_out = -1,
                           .hidden_in = -1,
                           .mod = mod};
    for (int i = 0; i < sl_model_nmodules(m); i++)
        if (sl_model_module(m, i) == mod)
            L->module = i;
    if ((g = root(w, g)) >= 0) {
        group *G = &w->g[g];
        const int64_t n = wt->shape[role->input_axis], k = G->h.pub.units;
        if (n % k == 0) {
            SL_TRY(add_ref(&G->h, (sl_unit_ref){wi, -1, role->input_axis, n / k, SL_UNITS_IN,
                                                L->module}));
            L->hidden_in = g; /* a group index until the end of the walk */
            if (G->h.pub.consumer < 0)
                G->h.pub.consumer = l;
            G->h.pub.nconsumers++;
        } else {
            G->dead = true;
        }
    }
    SL_TRY(open_group(w, l, mod, units, out));
    group *N = &w->g[*out];
    N->h.pub.nproducers = 1;
    L->hidden_out = *out;
    SL_TRY(add_ref(&N->h, (sl_unit_ref){wi, -1, role->unit_axis, 1, SL_UNITS_OUT, L->module}));
    if (bi >= 0) {
        const sl_tensor *bt = sl_model_param(m, bi);
        if (bt->ndim != 1 || bt->shape[0] != units)
            return sl_error(SL_EPLUGIN, "module %s (%s): its bias '%s' is not 1-d over its "
                                        "%lld units",
                            mod->path, mod->type->name, role->bias, (long long)units);
        SL_TRY(add_ref(&N->h, (sl_unit_ref){bi, -1, 0, 1, SL_UNITS_OUT, L->module}));
    }
    return SL_OK;
}

/* A per-unit map on group g: its declared per-unit tensors join the group
 * (one that does not have the units on axis 0 means the map is not per
 * unit for these units: the group dies), its flags narrow the symmetry. */
static int per_unit(walk *w, sl_module *mod, const sl_module_role *role, int g)
{
    if ((g = root(w, g)) < 0)
        return SL_OK;
    group *G = &w->g[g];
    const bool before = G->unit_tensors;
    for (const char *const *t = role->unit_tensors; t && *t; t++) {
        int p = find_local(w->m, mod, *t, false), b = p < 0 ? find_local(w->m, mod, *t, true) : -1;
        if (p < 0 && b < 0)
            continue; /* declared but not created (affine = false) */
        const sl_tensor *x = p >= 0 ? sl_model_param(w->m, p) : sl_model_buffer(w->m, b);
        if (x->ndim < 1 || x->shape[0] != G->h.pub.units) {
            G->dead = true;
            return SL_OK;
        }
        SL_TRY(add_ref(&G->h, (sl_unit_ref){p, b, 0, 1, SL_UNITS_SELF, -1}));
        G->unit_tensors = true;
    }
    if ((role->flags & SL_UNIT_NORMALISING) && (G->all_flags & SL_UNIT_HOMOGENEOUS) && !before)
        G->scale_free = true;
    G->all_flags &= role->flags;
    G->any_flags |= role->flags;
    if (role->flags & SL_UNIT_RESAMPLES)
        G->shape_kept = false;
    if (G->shape_kept)
        G->h.pub.act = mod;
    return SL_OK;
}

/* Two groups added together (a residual block's body and shortcut): one
 * set of units from now on, every tensor of both permuted together. */
static int merge(walk *w, int a, int b, int *out)
{
    a = root(w, a);
    b = root(w, b);
    *out = a;
    if (a == b)
        return SL_OK;
    if (a < 0 || b < 0 || w->g[a].h.pub.units != w->g[b].h.pub.units) {
        kill(w, a);
        kill(w, b);
        *out = -1;
        return SL_OK;
    }
    group *A = &w->g[a], *B = &w->g[b];
    for (int i = 0; i < B->h.pub.nrefs; i++)
        SL_TRY(add_ref(&A->h, B->h.refs[i]));
    A->h.pub.nproducers += B->h.pub.nproducers;
    A->h.pub.nconsumers += B->h.pub.nconsumers;
    if (A->h.pub.consumer < 0)
        A->h.pub.consumer = B->h.pub.consumer;
    A->all_flags &= B->all_flags;
    A->any_flags |= B->any_flags;
    A->unit_tensors |= B->unit_tensors;
    A->scale_free &= B->scale_free;
    A->dead |= B->dead;
    B->merged_into = a;
    return SL_OK;
}

/* Walks `list` with group g flowing in; *out is the group flowing out. */
static int walk_list(walk *w, const sl_seq *list, int g, int *out)
{
    for (int i = 0; i < list->n; i++) {
        sl_module *mod = list->mods[i];
        const sl_module_role *role = sl_module_role_of(mod);
        int next = g;
        switch (role->kind) {
        case SL_ROLE_WEIGHT: SL_TRY(weight_layer(w, mod, role, g, &next)); break;
        case SL_ROLE_PER_UNIT: SL_TRY(per_unit(w, mod, role, g)); break;
        case SL_ROLE_RESHAPE: break; /* unit-major: the next layer's block says how */
        case SL_ROLE_CONTAINER:
            if (mod->nbranches == 1) { /* sequential */
                SL_TRY(walk_list(w, mod->branches[0], g, &next));
            } else if (mod->nbranches == 2) { /* residual: body(x) + shortcut(x) */
                int body, skip;
                SL_TRY(walk_list(w, mod->branches[0], g, &body));
                SL_TRY(walk_list(w, mod->branches[1], g, &skip));
                SL_TRY(merge(w, body, skip, &next));
            } else {
                kill(w, g);
                next = -1;
            }
            break;
        default: /* opaque: it sees the units, so nothing may move them */
            kill(w, g);
            next = -1;
            break;
        }
        g = next;
    }
    *out = g;
    return SL_OK;
}

/* Keeps the groups with producers and consumers that flow nowhere opaque
 * as the hidden layers, and points the weight layers at them. */
static int settle(walk *w)
{
    sl_structure *s = w->s;
    int *index = malloc((size_t)(w->n ? w->n : 1) * sizeof *index);
    if (!index)
        return sl_error(SL_ENOMEM, "structure: out of memory");
    for (int g = 0; g < w->n; g++) {
        group *G = &w->g[g];
        index[g] = -1;
        if (G->merged_into >= 0 || G->dead || G->h.pub.nconsumers == 0)
            continue;
        int rc = reserve((void **)&s->hidden, &s->hidden_cap, s->nhidden, sizeof *s->hidden);
        if (rc < 0) {
            free(index);
            return rc;
        }
        G->h.pub.symmetry = symmetry_of(G);
        index[g] = s->nhidden;
        s->hidden[s->nhidden++] = G->h;
        G->h.refs = NULL; /* now the structure's */
    }
    for (int l = 0; l < s->nlayers; l++) {
        sl_weight_layer *L = &s->layers[l];
        L->hidden_in = L->hidden_in >= 0 ? index[root(w, L->hidden_in)] : -1;
        L->hidden_out = L->hidden_out >= 0 ? index[root(w, L->hidden_out)] : -1;
    }
    free(index);
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
    walk w = {.m = m, .s = s};
    int g = -1;
    int rc = walk_list(&w, sl_model_root(m), -1, &g);
    kill(&w, g); /* the output's units are not hidden: they are the output */
    if (rc >= 0)
        rc = settle(&w);
    for (int i = 0; i < w.n; i++)
        free(w.g[i].h.refs);
    free(w.g);
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
