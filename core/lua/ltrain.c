/* core/lua/ltrain.c — sl.train, sl.evaluate, sl.hook.<type> (with the hook
 * userdata class) and sl.probe.<type>.
 *
 * sl.train handles the keys only Lua can give (hooks, val, on_epoch) and
 * passes every other key to the library as sl_options, so validation (an
 * unknown key, a wrong type) is the library's.  The per-epoch callback from
 * the C loop back into Lua goes through slua_pcall; a Lua error raised in
 * on_epoch stops training and is re-raised unchanged once sl_train has
 * cleaned up.
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
    if (u->h == NULL)
        luaL_error(L, "attempt to use a closed hook");
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

static const char *const train_lua_keys[] = {"hooks", "val", "on_epoch", NULL};

typedef struct epoch_state {
    lua_State *L;
    int history;   /* stack index of the history array */
    int on_epoch;  /* stack index of the callback, 0 if none */
    int error_ref; /* the Lua error raised by on_epoch, or LUA_NOREF */
} epoch_state;

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
    if (rc == LUA_OK)
        return SL_OK;
    st->error_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the error value */
    return sl_error(SL_EINVAL, "train: on_epoch failed");
}

static void free_hooks(void *p) { free(p); }

/* Reads opts.hooks (a list of hook userdata) into an array kept in a box
 * pushed on the stack; the hooks stay anchored by the options table. */
static sl_hook **check_hooks(lua_State *L, int opts, int *n)
{
    *n = 0;
    void **slot = slua_box(L, NULL, free_hooks);
    if (opts == 0 || lua_getfield(L, opts, "hooks") == LUA_TNIL) {
        if (opts)
            lua_pop(L, 1);
        return NULL;
    }
    int list = lua_gettop(L);
    luaL_argexpected(L, lua_istable(L, list), 4, "a list of hooks in 'hooks'");
    int count = (int)luaL_len(L, list);
    sl_hook **hooks = *slot = calloc(count > 0 ? (size_t)count : 1, sizeof *hooks);
    if (hooks == NULL)
        luaL_error(L, "out of memory");
    for (int i = 0; i < count; i++) {
        lua_geti(L, list, i + 1);
        if (luaL_testudata(L, -1, SLUA_HOOK) == NULL)
            luaL_error(L, "train: hooks[%d] is %s, not a hook (made by sl.hook.<type>{})", i + 1,
                       luaL_typename(L, -1));
        hooks[i] = slua_check_hook(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    *n = count;
    return hooks;
}

/* Pushes a list of what sl_train will use (net, opt, ds, opts.val and
 * opts.hooks' entries, already checked), read once so that on_epoch changing
 * opts cannot unbalance the marks. */
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
static int l_train(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    sl_optim *o = slua_check_optim(L, 2);
    sl_dataset *train = slua_check_dataset(L, 3);
    int opts = lua_isnoneornil(L, 4) ? 0 : 4;
    if (opts)
        luaL_checktype(L, opts, LUA_TTABLE);
    lua_settop(L, 4);

    sl_options *opt = slua_new_options(L);
    slua_table_to_options(L, opts, opt, "train", train_lua_keys);
    if (!sl_options_has(opt, "seed"))
        slua_check(L, sl_options_set_int(opt, "seed", (int64_t)slua_default_seed(L)));
    slua_check(L, sl_options_validate(opt, sl_train_options(), "train"));

    sl_train_args args = {.train = train};
    args.hooks = check_hooks(L, opts, &args.nhooks);
    epoch_state st = {.L = L, .error_ref = LUA_NOREF};
    if (opts && lua_getfield(L, opts, "val") != LUA_TNIL)
        args.val = slua_check_dataset(L, -1); /* anchored by the options table */
    lua_pop(L, opts ? 1 : 0);
    if (opts && lua_getfield(L, opts, "on_epoch") != LUA_TNIL) {
        luaL_argexpected(L, lua_isfunction(L, -1), 4, "a function in 'on_epoch'");
        st.on_epoch = lua_gettop(L);
    } else if (opts) {
        lua_pop(L, 1);
    }
    lua_newtable(L);
    st.history = lua_gettop(L);
    args.on_epoch = on_epoch;
    args.userdata = &st;

    int in_use = push_in_use(L, opts);
    mark_in_use(L, in_use, 1); /* closing any of them in on_epoch is refused */
    int rc = sl_train(m, o, &args, opt);
    mark_in_use(L, in_use, -1);
    if (st.error_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, st.error_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, st.error_ref);
        return lua_error(L);
    }
    slua_check(L, rc);
    lua_pushvalue(L, st.history);
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
