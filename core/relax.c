/* core/relax.c — sl_model_relax (relax.h): a copy of a model in which every
 * module whose type declares `relax` is replaced by the unconstrained
 * modules it describes.
 *
 * How: the model is cloned and the clone run once on a zero sample of the
 * requested shape, in evaluation mode, which records every module's input
 * shape (its list's input, or its predecessor's output).  The new model is
 * then assembled module by module from the clone: containers reopened,
 * relaxable modules asked for their replacement at their input shape, the
 * others added with their own type and options.  After building it, every
 * parameter and buffer is filled: a copied module's from the clone under
 * the same name (paths are kept, since a replacement takes its module's
 * place), a replacement's from the values its relax() gave (or zero, for
 * the free part of the residual form).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "registry_internal.h"

/* ABI minor from which sl_module_type carries `relax`. */
#define SL_ABI_MINOR_RELAX 3

typedef int (*sl_relax_fn)(sl_module *m, int ndim, const int64_t *in, sl_relax *r);

typedef struct relax_value {
    char *name;       /* local parameter name */
    sl_tensor value;  /* owned copy */
} relax_value;

typedef struct relax_item {
    char *type;
    sl_options *opt;
    relax_value *values;
    int nvalues;
} relax_item;

struct sl_relax {
    relax_item *items;
    int n;
};

/* One relaxed module of the new model. */
typedef struct relax_plan {
    char *path;          /* the module's path, shared by original and replacement */
    sl_relax r;
} relax_plan;

typedef struct relax_ctx {
    sl_model *out;
    bool residual;
    relax_plan *plans;
    int nplans;
} relax_ctx;

static void relax_clear(sl_relax *r)
{
    for (int i = 0; i < r->n; i++) {
        relax_item *it = &r->items[i];
        free(it->type);
        sl_options_free(it->opt);
        for (int j = 0; j < it->nvalues; j++) {
            free(it->values[j].name);
            sl_tensor_release(&it->values[j].value);
        }
        free(it->values);
    }
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

int sl_relax_add(sl_relax *r, const char *type, const sl_options *opt)
{
    relax_item *grown = realloc(r->items, (size_t)(r->n + 1) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    r->items = grown;
    relax_item *it = &grown[r->n];
    *it = (relax_item){.type = strdup(type), .opt = opt ? sl_options_copy(opt) : sl_options_new()};
    r->n++; /* freed by relax_clear from here on */
    if (!it->type || !it->opt)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    return SL_OK;
}

int sl_relax_set(sl_relax *r, const char *name, const sl_tensor *value)
{
    if (r->n == 0)
        return sl_error(SL_ESTATE, "relax: parameter '%s' given before any module", name);
    relax_item *it = &r->items[r->n - 1];
    relax_value *grown = realloc(it->values, (size_t)(it->nvalues + 1) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    it->values = grown;
    relax_value *v = &grown[it->nvalues];
    *v = (relax_value){.name = strdup(name)};
    it->nvalues++;
    if (!v->name)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    SL_TRY(sl_tensor_alloc(&v->value, value->dtype, value->ndim, value->shape));
    return sl_tensor_copy(&v->value, value);
}

/* The type's relax callback; NULL for a plugin built before it existed. */
static sl_relax_fn type_relax(const sl_module_type *type)
{
    const sl_plugin *p = sl_registry_provider(SL_KIND_MODULE, type);
    if (p && p->abi_minor < SL_ABI_MINOR_RELAX)
        return NULL;
    return type->relax;
}

bool sl_module_type_relaxable(const sl_module_type *type) { return type_relax(type) != NULL; }

/* Adds the replacement's modules at the cursor of ctx->out. */
static int add_items(relax_ctx *ctx, const sl_relax *r)
{
    for (int i = 0; i < r->n; i++)
        SL_TRY(sl_model_add(ctx->out, r->items[i].type, r->items[i].opt));
    return SL_OK;
}

/* Asks mod (whose input in the clone's recorded forward is `in`) for its
 * replacement and adds it, or the residual block around it. */
static int add_relaxed(relax_ctx *ctx, sl_module *mod, const sl_tensor *in, sl_relax_fn fn)
{
    relax_plan *grown = realloc(ctx->plans, (size_t)(ctx->nplans + 1) * sizeof *grown);
    if (!grown)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    ctx->plans = grown;
    relax_plan *p = &grown[ctx->nplans];
    *p = (relax_plan){.path = strdup(mod->path)};
    ctx->nplans++;
    if (!p->path)
        return sl_error(SL_ENOMEM, "relax: out of memory");
    int rc = fn(mod, in->ndim, in->shape, &p->r);
    if (rc >= 0 && p->r.n == 0)
        rc = sl_error(SL_EINVAL, "its relax() described no module");
    if (rc < 0)
        return sl_error_context(rc, "relax: module %s (%s)", mod->path, mod->type->name);
    if (ctx->residual) {
        SL_TRY(sl_model_begin(ctx->out, "residual", NULL));
        SL_TRY(sl_model_add(ctx->out, mod->type->name, mod->options));
        SL_TRY(sl_model_branch(ctx->out, "shortcut"));
        SL_TRY(add_items(ctx, &p->r));
        return sl_model_end(ctx->out);
    }
    if (p->r.n == 1)
        return add_items(ctx, &p->r);
    SL_TRY(sl_model_begin(ctx->out, "sequential", NULL));
    SL_TRY(add_items(ctx, &p->r));
    return sl_model_end(ctx->out);
}

/* Rebuilds the list (of the clone, after its recorded forward) in ctx->out. */
static int add_list(relax_ctx *ctx, const sl_seq *list)
{
    for (int i = 0; i < list->n; i++) {
        sl_module *mod = list->mods[i];
        const sl_tensor *in = i == 0 ? &list->input : &list->view[i - 1];
        sl_relax_fn fn = type_relax(mod->type);
        if (mod->nbranches > 0) {
            SL_TRY(sl_model_begin(ctx->out, mod->type->name, mod->options));
            for (int b = 0; b < mod->nbranches; b++) {
                SL_TRY(sl_model_branch(ctx->out, mod->branches[b]->name));
                SL_TRY(add_list(ctx, mod->branches[b]));
            }
            SL_TRY(sl_model_end(ctx->out));
        } else if (fn) {
            SL_TRY(add_relaxed(ctx, mod, in, fn));
        } else {
            SL_TRY(sl_model_add(ctx->out, mod->type->name, mod->options));
        }
    }
    return SL_OK;
}

/* If `name` ("3.1.weight") lies under plan p's path, *rest is what
 * follows "<path>." ("1.weight"). */
static bool under(const relax_plan *p, const char *name, const char **rest)
{
    size_t n = strlen(p->path);
    if (strncmp(name, p->path, n) != 0 || name[n] != '.')
        return false;
    *rest = name + n + 1;
    return true;
}

/* The value relax() gave for `local` of item k, or NULL. */
static const sl_tensor *given(const sl_relax *r, int k, const char *local)
{
    for (int j = 0; j < r->items[k].nvalues; j++)
        if (strcmp(r->items[k].values[j].name, local) == 0)
            return &r->items[k].values[j].value;
    return NULL;
}

/* `rest` inside a replacement: "weight" (one item) or "<k>.weight" (a
 * sequential of several); *k and *local say which. */
static bool split_item(const sl_relax *r, const char *rest, int *k, const char **local)
{
    if (r->n == 1) {
        *k = 0;
        *local = rest;
        return true;
    }
    char *dot;
    long idx = strtol(rest, &dot, 10);
    if (dot == rest || *dot != '.' || idx < 0 || idx >= r->n)
        return false;
    *k = (int)idx;
    *local = dot + 1;
    return true;
}

/* Fills parameter i of ctx->out, which lies in plan p's replacement
 * (relative name `rest`), from the clone c. */
static int fill_relaxed(relax_ctx *ctx, sl_model *c, const relax_plan *p, const char *rest,
                        sl_tensor *dst)
{
    if (ctx->residual) {
        if (strncmp(rest, "body.0.", 7) == 0) { /* φ: the original's own parameter */
            char src[512];
            snprintf(src, sizeof src, "%s.%s", p->path, rest + 7);
            int j = sl_model_find_param(c, src);
            if (j < 0)
                return sl_error(SL_EINVAL, "relax: no parameter '%s' to copy", src);
            return sl_tensor_copy(dst, sl_model_param(c, j));
        }
        if (strncmp(rest, "shortcut.", 9) != 0)
            return sl_error(SL_EINVAL, "relax: unexpected parameter '%s.%s'", p->path, rest);
        return sl_tensor_fill(dst, 0.0); /* W_free = 0 */
    }
    int k;
    const char *local;
    const sl_tensor *v = split_item(&p->r, rest, &k, &local) ? given(&p->r, k, local) : NULL;
    if (!v)
        return sl_error(SL_EINVAL, "relax: module %s: its relax() gave no value for '%s'",
                        p->path, rest);
    if (sl_tensor_numel(v) != sl_tensor_numel(dst) || v->ndim != dst->ndim ||
        memcmp(v->shape, dst->shape, (size_t)v->ndim * sizeof *v->shape) != 0) {
        char a[128], b[128];
        return sl_error(SL_EINVAL, "relax: module %s: value %s for '%s', which is %s", p->path,
                        sl_shape_str(v->ndim, v->shape, a, sizeof a), rest,
                        sl_shape_str(dst->ndim, dst->shape, b, sizeof b));
    }
    return sl_tensor_copy(dst, v);
}

static const relax_plan *plan_of(const relax_ctx *ctx, const char *name, const char **rest)
{
    for (int p = 0; p < ctx->nplans; p++)
        if (under(&ctx->plans[p], name, rest))
            return &ctx->plans[p];
    return NULL;
}

/* Every parameter and buffer of ctx->out from the clone c or the plans. */
static int fill(relax_ctx *ctx, sl_model *c)
{
    sl_model *o = ctx->out;
    for (int i = 0; i < sl_model_nparams(o); i++) {
        const char *name = sl_model_param_name(o, i), *rest;
        const relax_plan *p = plan_of(ctx, name, &rest);
        if (p) {
            SL_TRY(fill_relaxed(ctx, c, p, rest, sl_model_param(o, i)));
            continue;
        }
        int j = sl_model_find_param(c, name);
        if (j < 0)
            return sl_error(SL_EINVAL, "relax: no parameter '%s' in the model", name);
        SL_TRY(sl_tensor_copy(sl_model_param(o, i), sl_model_param(c, j)));
    }
    for (int i = 0; i < sl_model_nbuffers(o); i++) {
        const char *name = sl_model_buffer_name(o, i), *rest;
        const relax_plan *p = plan_of(ctx, name, &rest);
        char src[512];
        if (p && ctx->residual && strncmp(rest, "body.0.", 7) == 0)
            snprintf(src, sizeof src, "%s.%s", p->path, rest + 7);
        else if (p)
            return sl_error(SL_EINVAL, "relax: module %s: its relaxed form has a buffer ('%s'), "
                                       "which relaxation cannot fill", p->path, rest);
        else
            snprintf(src, sizeof src, "%s", name);
        int j = 0;
        while (j < sl_model_nbuffers(c) && strcmp(sl_model_buffer_name(c, j), src) != 0)
            j++;
        if (j == sl_model_nbuffers(c))
            return sl_error(SL_EINVAL, "relax: no buffer '%s' in the model", src);
        SL_TRY(sl_tensor_copy(sl_model_buffer(o, i), sl_model_buffer(c, j)));
    }
    return SL_OK;
}

/* Runs the clone c once on a zero sample of the relaxation's input shape,
 * so every list holds its modules' input shapes. */
static int record_shapes(sl_model *c, int ndim, const int64_t *shape)
{
    int64_t s[SL_MAX_DIMS];
    memcpy(s, shape, (size_t)ndim * sizeof *s);
    s[0] = 1;
    sl_tensor x = {0};
    SL_TRY(sl_tensor_alloc(&x, sl_model_dtype(c), ndim, s));
    sl_tensor_fill(&x, 0.0);
    const sl_tensor *y;
    sl_model_set_training(c, false);
    int rc = sl_model_forward(c, &x, &y);
    sl_tensor_release(&x);
    return rc < 0 ? sl_error_context(rc, "relax: a forward at the input shape") : SL_OK;
}

int sl_model_relax(sl_model *m, const sl_relax_options *opt, sl_model **out)
{
    if (!sl_model_is_built(m))
        return sl_error(SL_ESTATE, "relax: the model is not built");
    const sl_seq *root = sl_model_root(m);
    int ndim = opt && opt->ndim > 0 ? opt->ndim : root->plan_ndim;
    const int64_t *shape = opt && opt->ndim > 0 ? opt->shape : root->plan_shape;
    if (ndim < 1 || ndim > SL_MAX_DIMS)
        return sl_error(SL_ESTATE, "relax: no input shape: give one, or run a forward first "
                                   "(a relaxed layer may depend on it)");
    sl_model *c;
    SL_TRY(sl_model_clone(m, sl_model_dtype(m), &c));
    relax_ctx ctx = {.residual = opt && opt->residual};
    int rc = record_shapes(c, ndim, shape);
    if (rc >= 0)
        rc = sl_model_new(sl_model_dtype(m), &ctx.out);
    if (rc >= 0)
        rc = add_list(&ctx, sl_model_root(c));
    if (rc >= 0)
        rc = sl_model_build(ctx.out, 0);
    if (rc >= 0)
        rc = fill(&ctx, c);
    for (int p = 0; p < ctx.nplans; p++) {
        free(ctx.plans[p].path);
        relax_clear(&ctx.plans[p].r);
    }
    free(ctx.plans);
    sl_model_free(c);
    if (rc < 0) {
        sl_model_free(ctx.out);
        return rc;
    }
    sl_model_set_training(ctx.out, sl_model_training(m));
    *out = ctx.out;
    return SL_OK;
}
