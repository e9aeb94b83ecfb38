/* symlab/plugin.h — what a technique provides, and how the host finds it.
 *
 * A plugin is a shared object exporting exactly one symbol:
 *
 *     SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void);
 *
 * which returns a pointer to a static const descriptor.  The descriptor's
 * FIRST fields are the ABI version it was built against and its own size;
 * the host reads nothing else unless abi_major == SL_ABI_MAJOR and
 * abi_minor <= SL_ABI_MINOR, and reads only fields that fit in `size`.
 * Built-in layers, losses and optimizers are registered through this same
 * descriptor: the core eats its own dog food.
 *
 * A descriptor lists types in five kinds, each list NULL-terminated:
 *   module types — layers (forward, backward, named parameters);
 *   hook types   — training-loop participants (syre, teleportation);
 *   probe types  — measurements returning named numbers;
 *   loss types   — scalar objectives with their gradient;
 *   optim types  — update rules over the flat parameter vector.
 * Names are unique across all loaded plugins within a kind; a later
 * plugin offering a taken name is refused, and so is a plugin listing two
 * types of one name and kind, or a type whose MUST callback is NULL or
 * whose option spec has a default its own type does not parse.
 *
 * This header is what a plugin author needs; the host's side (loading,
 * the registry, searching it) is in symlab/registry.h.
 *
 * MUST/MAY: every callback marked MUST is non-NULL; MAY may be NULL.
 * Callbacks return SL_OK or a negative sl_status after sl_error().
 */
#ifndef SYMLAB_PLUGIN_H
#define SYMLAB_PLUGIN_H

#include <stdint.h>

#include <symlab/data.h>
#include <symlab/export.h>
#include <symlab/model.h>
#include <symlab/module.h>
#include <symlab/optim.h>
#include <symlab/ops.h>
#include <symlab/options.h>
#include <symlab/record.h>
#include <symlab/relax.h>
#include <symlab/rng.h>
#include <symlab/status.h>
#include <symlab/tensor.h>
#include <symlab/train.h>
#include <symlab/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A layer. */
struct sl_module_type {
    const char *name;              /* MUST: "linear" */
    const char *summary;           /* MUST: one line */
    const sl_option_spec *options; /* MAY: NULL means no options */
    /* MUST: validate options, declare params/buffers, set state. */
    int (*create)(sl_module *m, const sl_options *opt);
    /* MAY: initialise params and buffers (default: leave zero). */
    int (*reset_parameters)(sl_module *m, sl_rng *rng);
    /* MUST: output shape for an input shape (batch first); SL_ESHAPE with a
     * message naming the expected shape if the input does not fit. */
    int (*output_shape)(sl_module *m, int ndim, const int64_t *in, int *out_ndim, int64_t *out);
    /* MUST: see module.h for the conventions. */
    int (*forward)(sl_module *m, const sl_tensor *in, sl_tensor *out);
    /* MUST */
    int (*backward)(sl_module *m, const sl_tensor *in, const sl_tensor *out,
                    const sl_tensor *grad_out, sl_tensor *grad_in);
    /* MAY: free the state; called only if the state is not NULL. */
    void (*destroy)(sl_module *m);

    /* ---- ABI minor 1 and later.  The host reads the fields below only
     * from plugins whose abi_minor is at least 1 (for older ones it uses a
     * zero, opaque role), so a plugin built at minor 0 keeps loading. ---- */

    /* SHOULD: what the module is to the structure walker (module.h).  Left
     * zero, the module is opaque and no symmetry technique looks through
     * it. */
    sl_module_role role;

    /* ---- ABI minor 3 and later.  The host reads the field below only
     * from plugins whose abi_minor is at least 3 (older ones count as
     * lacking it), so a plugin built at minor 0..2 keeps loading. ---- */

    /* MAY: declares that the module is a constrained parametrisation of
     * unconstrained layers the host can build, and which: sl_model_relax
     * (relax.h) replaces the module by them.  For inputs of shape `in`
     * (ndim entries, batch first) it describes, through sl_relax_add and
     * sl_relax_set, a list of registered modules that together take that
     * input and compute m's function on it exactly (same output shape),
     * with every parameter given.  NULL: the module is kept as it is. */
    int (*relax)(sl_module *m, int ndim, const int64_t *in, sl_relax *r);
};

/* A training-loop participant (train.h lists the events). */
typedef struct sl_hook_type {
    const char *name;              /* MUST */
    const char *summary;           /* MUST */
    const sl_option_spec *options; /* MAY */
    int (*create)(sl_hook *h, const sl_options *opt);             /* MUST */
    int (*on_event)(sl_hook *h, sl_event ev, sl_train_ctx *ctx);  /* MUST */
    void (*destroy)(sl_hook *h);                                  /* MAY */

    /* ---- ABI minor 3 and later.  The host reads the field below only
     * from plugins whose abi_minor is at least 3 (older ones count as 0),
     * so a plugin built at minor 0 to 2 keeps loading. ---- */

    /* SHOULD: what the hook promises about the training loop, SL_HOOK_*
     * flags (0 promises nothing, which is always safe). */
    unsigned flags;
} sl_hook_type;

/* Flags of sl_hook_type.flags. */
enum {
    /* At SL_EV_AFTER_BACKWARD the hook neither reads nor changes the
     * parameters, the gradients or the optimizer (it may ignore the event
     * or only read ctx->loss_value, x, y and write ctx->metrics).  When
     * every hook of a run promises this and the optimizer can update a
     * range of the parameters (step_range below), sl_train applies each
     * layer's update as soon as its backward has finished (the fused
     * update: the gradient is still in cache), and AFTER_BACKWARD then
     * comes after the update; the parameters are bit-identical to those of
     * the separate step.  Gradients remain readable at AFTER_STEP. */
    SL_HOOK_NO_GRADIENT_AFTER_BACKWARD = 1u << 0
};

/* A measurement.  `data` may be NULL if the probe needs none (it then
 * fails with SL_EINVAL when it does). */
typedef struct sl_probe_type {
    const char *name;              /* MUST */
    const char *summary;           /* MUST */
    const sl_option_spec *options; /* MAY */
    int (*measure)(const sl_options *opt, sl_model *model, const sl_dataset *data,
                   sl_record *out);                               /* MUST */
} sl_probe_type;

/* A loss: the mean over the batch of a per-sample loss. */
struct sl_loss_type {
    const char *name;              /* MUST */
    const char *summary;           /* MUST */
    /* MUST: *value = loss of pred (B, ...) against target; if grad_pred is
     * not NULL, OVERWRITE it with d value / d pred (same shape as pred).
     * Targets are i64 (B) labels or real tensors shaped like pred, as the
     * loss documents; anything else is SL_ESHAPE/SL_EDTYPE. */
    int (*forward)(const sl_tensor *pred, const sl_tensor *target, double *value,
                   sl_tensor *grad_pred);
};

/* An update rule.  `lr` is one of its options (the host reads it). */
typedef struct sl_optim_type {
    const char *name;              /* MUST */
    const char *summary;           /* MUST */
    const sl_option_spec *options; /* MUST: includes "lr" */
    int (*create)(sl_optim *o, const sl_options *opt);            /* MUST */
    /* MUST: update params (1-d, sl_optim_numel elements) from grads. */
    int (*step)(sl_optim *o, sl_tensor *params, const sl_tensor *grads);
    void (*reset)(sl_optim *o);   /* MAY: forget state */
    void (*destroy)(sl_optim *o); /* MAY */

    /* ---- ABI minor 2 and later.  The host reads the field below only
     * from plugins whose abi_minor is at least 2 (older ones count as
     * lacking it), so a plugin built at minor 0 or 1 keeps loading. ---- */

    /* SHOULD (needed for training checkpoints): the i-th tensor (0-based)
     * of the optimizer's state.  Sets *name (static, unique within the
     * type, e.g. "exp_avg") and *view (a writable view of the state itself,
     * owned by the optimizer; f32/f64 or i64, any shape) and returns 1, or
     * returns 0 when i is past the last.  A checkpoint saves every view
     * and a resume writes them back, with the step count the host keeps,
     * so everything step() reads besides its options must be in them.  A
     * type without it cannot be checkpointed: a checkpoint or a resume
     * with it fails, naming the type, rather than lose its state. */
    int (*state_tensor)(sl_optim *o, int i, const char **name, sl_tensor *view);

    /* ---- ABI minor 3 and later (read only from plugins whose abi_minor
     * is at least 3; older ones count as lacking it). ---- */

    /* MAY: the update of elements [begin, end) of params only, from the
     * same elements of grads, with the same step count and learning rate
     * as step().  The host calls it for disjoint ranges that together
     * cover every element exactly once, then counts one step; the result
     * must be bit-identical to one step() (true of any rule whose update
     * of an element reads only that element's parameter, gradient and
     * state).  A type with it can have its update fused into backward
     * (see SL_HOOK_NO_GRADIENT_AFTER_BACKWARD). */
    int (*step_range)(sl_optim *o, sl_tensor *params, const sl_tensor *grads, int64_t begin,
                      int64_t end);
} sl_optim_type;

typedef struct sl_plugin {
    uint32_t abi_major;            /* FIRST: SL_ABI_MAJOR at build time */
    uint32_t abi_minor;            /* SL_ABI_MINOR at build time */
    uint32_t size;                 /* sizeof(sl_plugin) at build time */
    const char *name;              /* MUST: "example" */
    const char *version;           /* MUST: the plugin's own version */
    const char *license;           /* MAY */
    const char *summary;           /* MUST: one line */
    const sl_module_type *const *modules; /* MAY; NULL-terminated */
    const sl_hook_type *const *hooks;     /* MAY */
    const sl_probe_type *const *probes;   /* MAY */
    const sl_loss_type *const *losses;    /* MAY */
    const sl_optim_type *const *optims;   /* MAY */
    /* MAY: called once after loading, before any type is used; a failure
     * unloads the plugin ("error during initialization: <message>"). */
    int (*init)(void);
} sl_plugin;

/* Fills in the version fields of a descriptor:
 *   static const sl_plugin desc = { SL_PLUGIN_HEADER, .name = "example", ... }; */
#define SL_PLUGIN_HEADER \
    .abi_major = SL_ABI_MAJOR, .abi_minor = SL_ABI_MINOR, .size = sizeof(sl_plugin)

/* The one symbol a plugin exports. */
SL_PLUGIN_EXPORT const sl_plugin *sl_plugin_entry(void);

#ifdef __cplusplus
}
#endif
#endif
