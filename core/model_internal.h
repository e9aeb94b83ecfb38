/* core/model_internal.h — the layout of modules and of the lists that hold
 * them, shared by module.c, model.c, seq.c, nn/container.c, structure.c and
 * evaluate.c only (the model's own struct is private to model.c). */
#ifndef SYMLAB_CORE_MODEL_INTERNAL_H
#define SYMLAB_CORE_MODEL_INTERNAL_H

#include "internal.h"

/* A declared parameter or buffer of one module. */
typedef struct sl_decl {
    char *name;                   /* local name ("weight") */
    sl_dtype dtype;               /* the module's, or SL_I64 for an integer buffer */
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    sl_tensor value;              /* view into the model's arena (params) or own storage */
    sl_tensor grad;               /* params only: view into the gradient arena */
} sl_decl;

typedef struct sl_seq sl_seq;

struct sl_module {
    const sl_module_type *type;
    sl_dtype dtype;
    int index;                    /* position in its list (0-based) */
    char *path;                   /* "3" or "3.body.0": the prefix of its tensors' names */
    uint64_t stream;              /* its random streams: init 2*stream, noise 2*stream + 1 */
    bool training;
    bool declaring;               /* inside create(): declarations allowed */
    void *state;
    sl_options *options;          /* owned copy, validated against type->options */
    sl_decl *params, *buffers;
    int nparams, nbuffers;
    void *scratch[SL_MODULE_SCRATCH_SLOTS];
    size_t scratch_size[SL_MODULE_SCRATCH_SLOTS];
    sl_rng rng;
    /* Containers (role SL_ROLE_CONTAINER) only: their lists of children,
     * named by the container type ("" for sequential; "body", "shortcut"). */
    sl_seq **branches;
    int nbranches;
    const sl_tensor *output;      /* its output in the last forward (probes) */
};

/* An ordered list of modules and the activation buffers planned for it:
 * the model's top level, and each branch of a container. */
struct sl_seq {
    const char *name;             /* "" or the container's branch name */
    sl_module **mods;
    int n;
    /* out[i]: module i's output buffer for `capacity` samples of the planned
     * trailing shape; view[i]: the part the current batch uses; grad[i],
     * grad_view[i] likewise for d loss / d out[i]. */
    sl_tensor *out, *view, *grad, *grad_view;
    int64_t capacity;
    int plan_ndim;
    int64_t plan_shape[SL_MAX_DIMS];
    sl_tensor input;              /* the last forward's input, retained for backward */
    bool have_forward;
    /* If set, called after module i's backward returned (its parameter
     * gradients, and those of the modules inside it, are complete): the
     * model's top level uses it for the fused update (model.c). */
    int (*after_backward)(void *ctx, int index);
    void *after_ctx;
};

/* The sequence runner (seq.c). */
sl_seq *sl_seq_new(const char *name);
void sl_seq_free(sl_seq *s);
int sl_seq_append(sl_seq *s, sl_module *mod);
/* Output shape for an input shape, without running anything. */
int sl_seq_output_shape(sl_seq *s, int ndim, const int64_t *in, int *out_ndim, int64_t *out);
/* Runs every module (an empty list passes x through); *y is the last
 * module's output view (or x).  Plans (allocates) only for a new input
 * shape or a larger batch. */
int sl_seq_forward(sl_seq *s, const sl_tensor *x, const sl_tensor **y);
/* Backpropagates grad_y through the last forward, ADDING into parameter
 * gradients and OVERWRITING grad_in.  With grad_in NULL it stops at the
 * first module with parameters (module.h).  An empty list copies grad_y
 * into grad_in. */
int sl_seq_backward(sl_seq *s, const sl_tensor *grad_y, sl_tensor *grad_in);
/* True if the module or any module inside it has parameters. */
bool sl_module_has_params(const sl_module *m);
/* Prefixes the current error with "module <i> (<type>)" (1-based, within
 * the branch `branch` when not empty) and returns rc. */
int sl_module_error(int rc, const char *branch, int index0, const char *type);

/* Allocates a module of `type` and runs its create(); `index` is its future
 * position in its list and `path` its name prefix (copied). */
int sl_module_create(const sl_module_type *type, sl_dtype dtype, int index, const char *path,
                     const sl_options *opt, sl_module **out);
void sl_module_destroy(sl_module *m);

/* The model's top-level list. */
const sl_seq *sl_model_root(const sl_model *m);

/* The model's grow-only buffer shaped like `like` (for loss gradients). */
int sl_model_loss_buffer(sl_model *m, const sl_tensor *like, sl_tensor **out);

#endif
