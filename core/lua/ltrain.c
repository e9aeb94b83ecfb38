/* core/lua/ltrain.c — sl.train, sl.evaluate, sl.hook.<type> (with the hook
 * userdata class) and sl.probe.<type>.
 *
 * sl.train handles the keys only Lua can give (hooks, val, on_epoch,
 * on_step, schedule, early_stop, progress, record_steps = true) and passes
 * every other key to the library as sl_options, so validation (an unknown
 * key, a wrong type) is the library's.  The callbacks from the C loop back
 * into Lua go through slua_pcall; a Lua error raised in on_epoch or on_step
 * stops training and is re-raised unchanged once sl_train has cleaned up.
 * The progress bar is drawn here, from the per-step callback: libsymlab
 * prints nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lua/lsymlab.h"

/* ---- hooks ------------------------------------------------------------------- */

typedef struct slua_hook {
    sl_hook *h;
} slua_hook;

static slua_hook *to_hook(lua_State *L, int idx) { return luaL_checkudata(L, idx, SLUA_HOOK); }

sl_hook *slua_check_hook(lua_State *L, int idx)
{
    slua_hook *u = to_hook(L, idx);
    slua_check_open(L, u->h != NULL, "hook");
    return u->h;
}

static int h_gc(lua_State *L)
{
    slua_hook *u = to_hook(L, 1);
    sl_hook_free(u->h);
    u->h = NULL;
    return 0;
}

static int h_close(lua_State *L)
{
    slua_refuse_busy(L, 1, "hook");
    return h_gc(L);
}

/* sl.hook.<type>{options} -> hook: upvalue 1 is the type name. */
static int l_hook(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    lua_settop(L, 1);
    sl_options *opt = slua_new_options(L);
    slua_table_to_options(L, 1, opt, name, NULL);
    slua_hook *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->h = NULL;
    luaL_setmetatable(L, SLUA_HOOK);
    slua_check(L, sl_hook_new(name, opt, &u->h));
    return 1;
}

static int h_name(lua_State *L)
{
    lua_pushstring(L, sl_hook_name(slua_check_hook(L, 1)));
    return 1;
}

static int h_tostring(lua_State *L)
{
    slua_hook *u = to_hook(L, 1);
    if (u->h == NULL)
        lua_pushliteral(L, "hook (closed)");
    else
        lua_pushfstring(L, "hook %s", sl_hook_name(u->h));
    return 1;
}

static const luaL_Reg hook_methods[] = {{"name", h_name}, {"close", h_close}, {NULL, NULL}};
static const luaL_Reg hook_meta[] = {
    {"__gc", h_gc}, {"__close", h_close}, {"__tostring", h_tostring}, {NULL, NULL}};

void slua_open_hook(lua_State *L)
{
    slua_new_class(L, SLUA_HOOK, hook_methods, hook_meta);
    slua_push_kind_table(L, SL_KIND_HOOK, l_hook, NULL);
}

/* ---- probes --------------------------------------------------------------------- */

/* sl.probe.<type>(net, [data], [options]) -> {name = value, ...} */
static int l_probe(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    sl_model *m = slua_check_model(L, 1);
    lua_settop(L, 3);
    int opts = 3;
    const sl_dataset *data = NULL;
    if (lua_istable(L, 2) && lua_isnoneornil(L, 3))
        opts = 2; /* sl.probe.x(net, {options}) */
    else if (!lua_isnoneornil(L, 2))
        data = slua_check_dataset(L, 2);
    sl_options *opt = slua_new_options(L);
    slua_table_to_options(L, opts, opt, name, NULL);
    sl_record *rec = slua_new_record(L);
    slua_check(L, sl_probe_run(name, opt, m, data, rec));
    slua_push_record(L, rec);
    return 1;
}

void slua_open_probe(lua_State *L) { slua_push_kind_table(L, SL_KIND_PROBE, l_probe, NULL); }

/* ---- training ------------------------------------------------------------------------ */

static const char *const train_lua_keys[] = {"hooks",      "val",         "on_epoch",
                                              "on_step",    "schedule",    "early_stop",
                                              "progress",   "record_steps", "checkpoint",
                                              NULL};

typedef struct epoch_state {
    lua_State *L;
    int history;   /* stack index of the history array */
    int on_epoch;  /* stack index of the callback, 0 if none */
    int on_step;   /* stack index of the per-step callback, 0 if none */
    bool progress; /* draw the bar */
    bool drawn;    /* a bar line is on the screen */
    int error_ref; /* the Lua error raised by a callback, or LUA_NOREF */
} epoch_state;

/* Keeps the error value at the top of the stack (popping it) for l_train
 * to re-raise; the library sees a failing callback. */
static int callback_failed(epoch_state *st, const char *which)
{
    st->error_ref = luaL_ref(st->L, LUA_REGISTRYINDEX);
    return sl_error(SL_EINVAL, "train: %s failed", which);
}

/* Pushes a step row as a table, leaving out NaN entries (hook metrics not
 * set during this step). */
static void push_step_row(lua_State *L, const sl_record *row)
{
    lua_createtable(L, 0, sl_record_count(row));
    for (int i = 0; i < sl_record_count(row); i++) {
        double v = sl_record_value(row, i);
        if (v != v)
            continue;
        if (v == (lua_Integer)v && (strcmp(sl_record_name(row, i), "step") == 0 ||
                                    strcmp(sl_record_name(row, i), "epoch") == 0))
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
        lua_setfield(L, -2, sl_record_name(row, i));
    }
}

/* Protected part of on_step: call_on_step(fn, row) -> fn(row as a table). */
static int call_on_step(lua_State *L)
{
    push_step_row(L, lua_touserdata(L, 2));
    lua_remove(L, 2);
    lua_call(L, 1, 0);
    return 0;
}

/* sl_train's on_step: the bar, then the script's callback. */
static int on_step(void *userdata, const sl_step_info *info)
{
    epoch_state *st = userdata;
    if (st->progress) {
        slua_progress_step(info);
        st->drawn = info->batch != info->batches;
    }
    if (!st->on_step)
        return SL_OK;
    lua_State *L = st->L;
    if (!lua_checkstack(L, 4))
        return sl_error(SL_ENOMEM, "train: Lua stack overflow");
    lua_pushcfunction(L, call_on_step);
    lua_pushvalue(L, st->on_step);
    lua_pushlightuserdata(L, (void *)info->row);
    return slua_pcall(L, 2, 0) == LUA_OK ? SL_OK : callback_failed(st, "on_step");
}

/* Protected part of the callback: append_row(history, row) makes the row
 * table, appends it to the history and returns it. */
static int append_row(lua_State *L)
{
    const sl_record *row = lua_touserdata(L, 2);
    slua_push_record(L, row);
    lua_pushvalue(L, -1);
    lua_seti(L, 1, luaL_len(L, 1) + 1);
    return 1;
}

/* sl_train's on_epoch: a negative return stops training. */
static int on_epoch(void *userdata, const sl_record *row)
{
    epoch_state *st = userdata;
    lua_State *L = st->L;
    if (!lua_checkstack(L, 6))
        return sl_error(SL_ENOMEM, "train: Lua stack overflow");
    if (st->on_epoch)
        lua_pushvalue(L, st->on_epoch);
    lua_pushcfunction(L, append_row);
    lua_pushvalue(L, st->history);
    lua_pushlightuserdata(L, (void *)row);
    int rc = slua_pcall(L, 2, 1);
    if (rc == LUA_OK && st->on_epoch)
        rc = slua_pcall(L, 1, 0);
    else if (st->on_epoch)
        lua_remove(L, -2); /* the callback, below the error */
    else if (rc == LUA_OK)
        lua_pop(L, 1);
    return rc == LUA_OK ? SL_OK : callback_failed(st, "on_epoch");
}

/* Reads opts.hooks (a list of hook userdata) into an array kept in a box
 * pushed on the stack; the hooks stay anchored by the options table. */
static sl_hook **check_hooks(lua_State *L, int opts, int *n)
{
    *n = 0;
    if (opts == 0 || lua_getfield(L, opts, "hooks") == LUA_TNIL) {
        if (opts)
            lua_pop(L, 1);
        slua_box(L, NULL, NULL); /* the caller expects a box */
        return NULL;
    }
    int list = lua_gettop(L);
    luaL_argexpected(L, lua_istable(L, list), 4, "a list of hooks in 'hooks'");
    sl_hook **hooks = slua_check_hook_list(L, list, "train: hooks", n);
    lua_remove(L, list); /* the box stays on top */
    return hooks;
}

/* Pushes a list of what sl_train will use (net, opt, ds, opts.val,
 * opts.schedule and opts.hooks' entries, already checked), read once so that
 * on_epoch changing opts cannot unbalance the marks. */
static int push_in_use(lua_State *L, int opts)
{
    lua_createtable(L, 8, 0);
    int list = lua_gettop(L), n = 0;
    for (int i = 1; i <= 3; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, list, ++n);
    }
    if (opts && lua_getfield(L, opts, "val") != LUA_TNIL)
        lua_rawseti(L, list, ++n);
    else
        lua_pop(L, opts ? 1 : 0);
    if (opts && lua_getfield(L, opts, "schedule") != LUA_TNIL)
        lua_rawseti(L, list, ++n);
    else
        lua_pop(L, opts ? 1 : 0);
    if (opts && lua_getfield(L, opts, "hooks") == LUA_TTABLE) {
        for (lua_Integer i = 1, count = luaL_len(L, -1); i <= count; i++) {
            lua_geti(L, -1, i);
            lua_rawseti(L, list, ++n);
        }
    }
    lua_pop(L, opts ? 1 : 0);
    return list;
}

static void mark_in_use(lua_State *L, int list, int delta)
{
    for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, list); i <= n; i++) {
        lua_rawgeti(L, list, i);
        slua_busy(L, -1, delta);
        lua_pop(L, 1);
    }
}

/* sl.train(net, opt, ds, {epochs=, batch=, ..., hooks=, val=, on_epoch=}) -> history */

/* opts.record_steps: true means every step, false none, N every N-th. */
static void set_record_steps(lua_State *L, int opts, sl_options *opt)
{
    int t = lua_getfield(L, opts, "record_steps"), isint = 0;
    lua_Integer n = lua_tointegerx(L, -1, &isint);
    if (t == LUA_TBOOLEAN)
        n = lua_toboolean(L, -1);
    else if (t != LUA_TNIL && (t != LUA_TNUMBER || !isint))
        luaL_error(L, "train: option 'record_steps' must be true, false or an integer N, "
                   "got %s", luaL_typename(L, -1));
    if (t != LUA_TNIL)
        slua_check(L, sl_options_set_int(opt, "record_steps", (int64_t)n));
    lua_pop(L, 1);
}

/* opts.checkpoint: a path, or {path=, every_steps=, every_epochs=}, set as
 * the options checkpoint and checkpoint_every_steps/_epochs. */
static void set_checkpoint(lua_State *L, int opts, sl_options *opt)
{
    static const char *const keys[][2] = {{"path", "checkpoint"},
                                          {"every_steps", "checkpoint_every_steps"},
                                          {"every_epochs", "checkpoint_every_epochs"}};
    int t = lua_getfield(L, opts, "checkpoint");
    if (t == LUA_TSTRING)
        slua_check(L, sl_options_set_string(opt, "checkpoint", lua_tostring(L, -1)));
    else if (t == LUA_TTABLE)
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            int kt = lua_getfield(L, -1, keys[i][0]), isint = 0;
            lua_Integer n = lua_tointegerx(L, -1, &isint);
            if (kt != LUA_TNIL && (i == 0 ? kt != LUA_TSTRING : !isint))
                luaL_error(L, "train: checkpoint.%s must be %s, got %s", keys[i][0],
                           i == 0 ? "a path" : "an integer", luaL_typename(L, -1));
            if (kt != LUA_TNIL)
                slua_check(L, i == 0 ? sl_options_set_string(opt, keys[i][1], lua_tostring(L, -1))
                                     : sl_options_set_int(opt, keys[i][1], (int64_t)n));
            lua_pop(L, 1);
        }
    else if (t != LUA_TNIL)
        luaL_error(L, "train: option 'checkpoint' must be a path or a table {path=, "
                   "every_steps=, every_epochs=}, got %s", luaL_typename(L, -1));
    if (t == LUA_TTABLE && !sl_options_has(opt, "checkpoint"))
        luaL_error(L, "train: option 'checkpoint' needs a path");
    lua_pop(L, 1);
}

/* A resumed run's history starts with the rows its checkpoint kept: put
 * them in front of the rows on_epoch appended. */
static void prepend_restored(lua_State *L, int list, const sl_history *h)
{
    lua_Integer have = luaL_len(L, list), restored = sl_history_count(h) - have;
    if (restored <= 0)
        return;
    for (lua_Integer i = have; i >= 1; i--) {
        lua_geti(L, list, i);
        lua_seti(L, list, i + restored);
    }
    for (lua_Integer i = 1; i <= restored; i++) {
        slua_push_record(L, sl_history_row(h, (int)i - 1));
        lua_seti(L, list, i);
    }
}

/* opts.early_stop: a table of early-stopping options, or true for the
 * defaults; the options box is pushed (nil when off). */
static const sl_options *check_early_stop(lua_State *L, int opts)
{
    int t = lua_getfield(L, opts, "early_stop");
    int idx = lua_gettop(L);
    if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx)))
        return NULL;
    luaL_argexpected(L, t == LUA_TTABLE || t == LUA_TBOOLEAN, 4,
                     "a table (or true) in 'early_stop'");
    sl_options *o = slua_new_options(L);
    slua_table_to_options(L, t == LUA_TTABLE ? idx : 0, o, "early_stop", NULL);
    return o;
}

/* A function at opts[key], left on the stack (its index), or 0. */
static int opt_function(lua_State *L, int opts, const char *key)
{
    if (lua_getfield(L, opts, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_isfunction(L, -1))
        luaL_error(L, "bad argument #4 to 'train' (a function in '%s')", key);
    return lua_gettop(L);
}

/* Sets history.steps (with record_steps), history.best_epoch and
 * history.stopped_epoch (with early_stop) on the table at the top. */
static void finish_history(lua_State *L, const sl_history *h, bool early_stop)
{
    int64_t n = sl_history_step_count(h);
    if (n > 0) {
        sl_record *row = slua_new_record(L);
        lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
        for (int64_t i = 0; i < n; i++) {
            slua_check(L, sl_history_step_row(h, i, row));
            push_step_row(L, row);
            lua_seti(L, -2, i + 1);
        }
        lua_setfield(L, -3, "steps");
        lua_pop(L, 1);
    }
    if (early_stop) {
        lua_pushinteger(L, sl_history_best_epoch(h));
        lua_setfield(L, -2, "best_epoch");
        if (sl_history_stopped_epoch(h) > 0) {
            lua_pushinteger(L, sl_history_stopped_epoch(h));
            lua_setfield(L, -2, "stopped_epoch");
        }
    }
}

static void free_history(void *p) { sl_history_free(p); }

/* sl.train(net, opt, ds, {epochs=, batch=, ..., hooks=, val=, on_epoch=, on_step=,
 *          schedule=, early_stop=, progress=, record_steps=, start_epoch=, checkpoint=,
 *          resume=}) -> history */
static int l_train(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    sl_optim *o = slua_check_optim(L, 2);
    sl_dataset *train = slua_check_dataset(L, 3);
    int opts = lua_isnoneornil(L, 4) ? 0 : 4;
    if (opts)
        luaL_checktype(L, opts, LUA_TTABLE);
    lua_settop(L, 4);
    if (!opts) {
        lua_newtable(L);
        lua_replace(L, 4);
        opts = 4;
    }

    sl_options *opt = slua_new_options(L);
    slua_table_to_options(L, opts, opt, "train", train_lua_keys);
    set_record_steps(L, opts, opt);
    set_checkpoint(L, opts, opt);
    if (!sl_options_has(opt, "seed"))
        slua_check(L, sl_options_set_int(opt, "seed", (int64_t)slua_default_seed(L)));
    slua_check(L, sl_options_validate(opt, sl_train_options(), "train"));

    epoch_state st = {.L = L, .error_ref = LUA_NOREF};
    int t = lua_getfield(L, opts, "progress");
    const char *progress = t == LUA_TNIL ? "auto" : t == LUA_TSTRING ? lua_tostring(L, -1) : "";
    if (strcmp(progress, "auto") && strcmp(progress, "always") && strcmp(progress, "never"))
        return luaL_error(L, "train: option 'progress' must be one of auto|always|never, got %s",
                          luaL_tolstring(L, -1, NULL));
    st.progress = slua_progress_wanted(progress);
    lua_pop(L, 1);

    sl_train_args args = {.train = train};
    args.hooks = check_hooks(L, opts, &args.nhooks);
    if (lua_getfield(L, opts, "val") != LUA_TNIL)
        args.val = slua_check_dataset(L, -1); /* anchored by the options table */
    lua_pop(L, 1);
    if (lua_getfield(L, opts, "schedule") != LUA_TNIL)
        args.schedule = slua_check_schedule(L, -1);
    lua_pop(L, 1);
    args.early_stop = check_early_stop(L, opts);
    st.on_epoch = opt_function(L, opts, "on_epoch");
    st.on_step = opt_function(L, opts, "on_step");
    void **hist = slua_box(L, sl_history_new(), free_history);
    if (*hist == NULL)
        return slua_fail(L);
    lua_newtable(L);
    st.history = lua_gettop(L);
    args.history = *hist;
    args.on_epoch = on_epoch;
    args.on_step = st.progress || st.on_step ? on_step : NULL;
    args.userdata = &st;

    int in_use = push_in_use(L, opts);
    mark_in_use(L, in_use, 1); /* closing any of them in on_epoch is refused */
    int rc = sl_train(m, o, &args, opt);
    mark_in_use(L, in_use, -1);
    if (rc < 0 && st.drawn)
        slua_progress_abort();
    if (st.error_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, st.error_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, st.error_ref);
        return lua_error(L);
    }
    slua_check(L, rc);
    prepend_restored(L, st.history, *hist);
    lua_pushvalue(L, st.history);
    finish_history(L, *hist, args.early_stop != NULL);
    return 1;
}

static const sl_option_spec evaluate_options[] = {
    {"loss", SL_OPT_STRING, "cross_entropy", "registered loss type", NULL},
    {"batch", SL_OPT_INT, "1000", "samples per forward pass", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

/* sl.evaluate(net, ds, {loss=, batch=}) -> {loss=, accuracy=} */
static int l_evaluate(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    sl_dataset *d = slua_check_dataset(L, 2);
    sl_options *opt = slua_options(L, 3, evaluate_options, "evaluate");
    int64_t batch = sl_options_int(opt, "batch");
    if (batch < 1)
        return luaL_error(L, "evaluate: option 'batch' must be >= 1, got %d", (int)batch);
    sl_record *rec = slua_new_record(L);
    slua_check(L, sl_evaluate(m, d, sl_options_string(opt, "loss"), batch, rec));
    slua_push_record(L, rec);
    return 1;
}

void slua_open_train(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"train", l_train}, {"evaluate", l_evaluate}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
