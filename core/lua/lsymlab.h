/* core/lua/lsymlab.h — the Lua 5.4 binding of libsymlab, shared by the
 * binding's files and the symlab executable.
 *
 * The binding stays thin (wrk's model): C wraps libsymlab's objects as
 * userdata classes and reports its errors; conveniences that need no speed
 * live in pure-Lua modules under scripts/lib/symlab.
 *
 * Conventions (Lua's own liolib):
 *   - a class is two luaL_Reg tables, methods and metamethods; __gc and
 *     __close share one function, and a closed object raises a clean
 *     "attempt to use a closed <class>" error instead of crashing;
 *   - every C object a Lua error could strand (options, records, temporary
 *     datasets) lives in a userdata box whose __gc frees it;
 *   - every failure of libsymlab becomes luaL_error("%s", sl_last_error()),
 *     so the message gains the calling script's "file:line:" prefix;
 *   - every call from C back into Lua goes through slua_pcall (lua_pcall
 *     with slua_msgh), never a bare lua_call.
 */
#ifndef SYMLAB_CORE_LUA_LSYMLAB_H
#define SYMLAB_CORE_LUA_LSYMLAB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include <symlab/symlab.h>

/* What the host tells the binding before `require "symlab"`. */
typedef struct slua_config {
    const char *datadir; /* where sl.data.path() looks (build tree or installed) */
    const char *luadir;  /* the pure-Lua helpers' directory (already on package.path) */
    uint64_t seed;       /* --seed: the default seed of models and training */
    const char *argv0;   /* how the host was started: sl.proc.spawn's fallback path */
} slua_config;

/* Copies `cfg` into L's registry and puts luaopen_symlab into
 * package.preload["symlab"].  The standard libraries must be open. */
void slua_preload(lua_State *L, const slua_config *cfg);

/* The module loader: builds and returns the `symlab` table. */
int luaopen_symlab(lua_State *L);

/* ---- errors and calls back into Lua -------------------------------------- */

/* Raises the last libsymlab error as a Lua error (never returns). */
int slua_fail(lua_State *L);
/* Raises the last libsymlab error if rc < 0. */
void slua_check(lua_State *L, int rc);

/* Message handler for lua_pcall: leaves the error value unchanged (so that
 * errors propagate intact through C) and remembers the traceback of the
 * deepest point at which it was first seen, for slua_last_traceback. */
int slua_msgh(lua_State *L);
/* lua_pcall(L, nargs, nresults, <slua_msgh>). */
int slua_pcall(lua_State *L, int nargs, int nresults);
/* Pushes the traceback remembered for the error message `msg`, or a fresh
 * one from the current stack if none was remembered. */
void slua_push_traceback(lua_State *L, const char *msg);

/* ---- boxes: C objects owned by the Lua garbage collector ----------------- */

/* Pushes a userdata holding `p` that calls free_fn(p) (if the slot is not
 * NULL) when collected; returns the slot, which the caller may fill later. */
void **slua_box(lua_State *L, void *p, void (*free_fn)(void *));

/* A new empty sl_options in a box pushed on the stack. */
sl_options *slua_new_options(lua_State *L);
/* Sets every string key of the table at `idx` (if idx != 0 and not nil) into o, except
 * the keys listed in `skip` (NULL-terminated, may be NULL).  Integers,
 * floats, booleans and strings map to the typed setters; anything else is
 * an error naming `owner` and the key. */
void slua_table_to_options(lua_State *L, int idx, sl_options *o, const char *owner,
                           const char *const *skip);
/* slua_new_options + slua_table_to_options + sl_options_validate(spec).
 * Beware: the box is pushed, so callers whose optional table argument may
 * be absent must lua_settop() first when they convert by hand. */
sl_options *slua_options(lua_State *L, int idx, const sl_option_spec *spec, const char *owner);

/* A new empty sl_record in a box pushed on the stack. */
sl_record *slua_new_record(lua_State *L);
/* Pushes a table {name = value, ...} of a record's entries. */
void slua_push_record(lua_State *L, const sl_record *r);

/* A string of the host's configuration ("datadir", "luadir"); "" if unset. */
const char *slua_config_string(lua_State *L, const char *key);

/* The default seed given by --seed (1 unless set). */
uint64_t slua_default_seed(lua_State *L);
/* An optional seed argument: integer >= 0, or the default if absent/nil. */
uint64_t slua_opt_seed(lua_State *L, int idx);

/* ---- classes -------------------------------------------------------------- */

#define SLUA_TENSOR "symlab.tensor"
#define SLUA_MODEL "symlab.model"
#define SLUA_OPTIM "symlab.optimizer"
#define SLUA_DATASET "symlab.dataset"
#define SLUA_HOOK "symlab.hook"
#define SLUA_LAYER "symlab.layer"
#define SLUA_SCHEDULE "symlab.schedule"

/* Creates the metatable `name` with __index = methods (unless the metamethods
 * define __index themselves) and __name, and pops it. */
void slua_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                    const luaL_Reg *metamethods);

/* Tensors: a userdata owning one reference to an sl_tensor view.  Its user
 * value keeps whatever object the memory belongs to (a model, a dataset)
 * reachable for as long as the tensor is. */
typedef struct slua_tensor {
    sl_tensor t;
    bool closed;
} slua_tensor;

/* The open tensor at idx (error if not a tensor or closed). */
sl_tensor *slua_check_tensor(lua_State *L, int idx);
/* Pushes a new, open, empty tensor userdata and returns its sl_tensor for
 * the caller to fill (sl_tensor_alloc and friends): whatever ends up there
 * is released by __gc, even if an error strikes before the caller is done. */
sl_tensor *slua_new_tensor(lua_State *L);
/* sl_tensor_alloc into *t, raising its error; also tells the collector
 * about the memory (which Lua cannot see), so that loops making many
 * temporary tensors do not let garbage pile up. */
void slua_tensor_alloc(lua_State *L, sl_tensor *t, sl_dtype dtype, int ndim,
                       const int64_t *shape);
/* Pushes a tensor userdata holding a new reference to `view`, whose user
 * value is the value at owner_idx (0: none). */
void slua_push_view(lua_State *L, const sl_tensor *view, int owner_idx);
/* A contiguous tensor of dtype `dtype` with the contents of *src, as a new
 * tensor userdata pushed on the stack; *src itself if it already fits (then
 * nothing is pushed and false returned). */
bool slua_push_converted(lua_State *L, const sl_tensor *src, sl_dtype dtype,
                         const sl_tensor **out);

/* Models: the userdata wraps the sl_model; m == NULL once closed. */
typedef struct slua_model {
    sl_model *m;
} slua_model;
sl_model *slua_check_model(lua_State *L, int idx);

/* Datasets: the userdata owns the sl_dataset. */
typedef struct slua_dataset {
    sl_dataset d;
    bool closed;
} slua_dataset;
sl_dataset *slua_check_dataset(lua_State *L, int idx);
/* Pushes a new, empty dataset userdata and returns its sl_dataset to fill. */
sl_dataset *slua_new_dataset(lua_State *L);

/* Optimizers, hooks and schedules (for sl.train). */
sl_optim *slua_check_optim(lua_State *L, int idx);
sl_hook *slua_check_hook(lua_State *L, int idx);
/* The list of sl.hook objects at `list` as a C array of *n pointers, kept
 * in a box pushed on the stack (freed with it; the hooks stay the list's).
 * A non-hook item raises "<what>[i] is <type>, not a hook". */
sl_hook **slua_check_hook_list(lua_State *L, int list, const char *what, int *n);
sl_schedule *slua_check_schedule(lua_State *L, int idx);

/* The training progress bar (lprogress.c): whether the `progress` option
 * `mode` ("auto", "always", "never") wants one, drawing one step of it on
 * stderr, and ending a line left unfinished by a failed run. */
bool slua_progress_wanted(const char *mode);
void slua_progress_step(const sl_step_info *s);
void slua_progress_abort(void);

/* Raises "attempt to use a closed <what>" unless open: the check every
 * userdata class makes before touching its C object (laux.c). */
void slua_check_open(lua_State *L, bool open, const char *what);

/* Objects in use by a running sl.train (lbusy.c): slua_busy adds delta to
 * the mark of the userdata at idx (a mark also keeps it from being
 * collected); slua_refuse_busy raises "cannot close the <what>: sl.train is
 * using it" if the userdata at idx is marked.  Every close() method and
 * __close calls it; __gc does not need to. */
void slua_busy(lua_State *L, int idx, int delta);
void slua_refuse_busy(lua_State *L, int idx, const char *what);

/* A table whose missing fields are resolved by name in the registry: reading
 * t.<name> finds the type of `kind` called <name> (an error naming it if
 * there is none) and caches `ctor` as a closure with the name as upvalue 1.
 * Pushes the table; `funcs` (may be NULL) are set in it first. */
void slua_push_kind_table(lua_State *L, sl_kind kind, lua_CFunction ctor, const luaL_Reg *funcs);

/* The sub-libraries: each pushes its table (or sets fields of the symlab
 * table at the top of the stack, for slua_open_train/registry). */
void slua_open_tensor(lua_State *L); /* pushes sl.tensor */
void slua_open_nn(lua_State *L);     /* pushes sl.nn; also sets up model class */
void slua_open_loss(lua_State *L);   /* pushes sl.loss */
void slua_open_optim(lua_State *L);  /* pushes sl.optim */
void slua_open_schedule(lua_State *L); /* pushes sl.optim.schedule */
void slua_open_data(lua_State *L);   /* pushes sl.data */
void slua_open_datasets(lua_State *L); /* adds load, get, list, ... to the table on top */
void slua_open_hook(lua_State *L);   /* pushes sl.hook */
void slua_open_probe(lua_State *L);  /* pushes sl.probe */
void slua_open_train(lua_State *L);  /* sets sl.train, sl.evaluate */
void slua_open_registry(lua_State *L); /* sets sl.plugins, sl.describe, ... */
void slua_open_proc(lua_State *L);   /* pushes sl.proc (lproc.c: task index, spawn, wait) */

/* The download progress bar of sl.data.load and `symlab data get`: an
 * sl_progress_fn whose ud is an slua_bar (slua_bar_init first). */
typedef struct slua_bar {
    FILE *out;
    char file[256]; /* the file being shown */
    int64_t last;   /* the last mark drawn for it, -1 for none */
    bool finished;  /* its final line is drawn */
} slua_bar;
void slua_bar_init(slua_bar *b, FILE *out);
int slua_bar_progress(void *ud, const char *file, int64_t done, int64_t total);

/* The text of `symlab describe NAME` and sl.describe: every type called
 * `name` in any kind, with its options.  Pushes the string, or returns false
 * (pushing nothing, sl_last_error set) if no type has that name. */
bool slua_push_description(lua_State *L, const char *name);

#endif
