/* core/model_internal.h — the layout of modules, shared by module.c,
 * model.c and evaluate.c only (the model's own struct is private to
 * model.c). */
#ifndef SYMLAB_CORE_MODEL_INTERNAL_H
#define SYMLAB_CORE_MODEL_INTERNAL_H

#include "internal.h"

/* A declared parameter or buffer of one module. */
typedef struct sl_decl {
    char *name;                   /* local name ("weight") */
    int ndim;
    int64_t shape[SL_MAX_DIMS];
    sl_tensor value;              /* view into the model's arena (params) or own storage */
    sl_tensor grad;               /* params only: view into the gradient arena */
} sl_decl;

struct sl_module {
    const sl_module_type *type;
    sl_dtype dtype;
    int index;                    /* position in the model */
    bool training;
    bool declaring;               /* inside create(): declarations allowed */
    void *state;
    sl_options *options;          /* owned copy, validated against type->options */
    sl_decl *params, *buffers;
    int nparams, nbuffers;
    void *scratch[SL_MODULE_SCRATCH_SLOTS];
    size_t scratch_size[SL_MODULE_SCRATCH_SLOTS];
    sl_rng rng;
};

/* Allocates a module of `type` and runs its create(); `index` is its future
 * position (for names and messages). */
int sl_module_create(const sl_module_type *type, sl_dtype dtype, int index,
                     const sl_options *opt, sl_module **out);
void sl_module_destroy(sl_module *m);

/* The model's grow-only buffer shaped like `like` (for loss gradients). */
int sl_model_loss_buffer(sl_model *m, const sl_tensor *like, sl_tensor **out);

#endif
