/* core/lua/lsymlab.c — the `symlab` Lua module: shared helpers (errors,
 * boxes, options, records) and the module table itself. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/lsymlab.h"

#define CONFIG_KEY "symlab.config"
#define TRACEBACK_KEY "symlab.traceback"
#define TRACEBACK_MSG_KEY "symlab.traceback_msg"
#define BOX "symlab.box"

/* ---- errors --------------------------------------------------------------- */

int slua_fail(lua_State *L)
{
    const char *msg = sl_last_error();
    return luaL_error(L, "%s", *msg ? msg : "symlab: unknown error");
}

void slua_check(lua_State *L, int rc)
{
    if (rc < 0)
        slua_fail(L);
}

int slua_msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    /* Keep the first (deepest) traceback seen for this message: an error
     * raised in a callback passes through several handlers on its way out. */
    lua_getfield(L, LUA_REGISTRYINDEX, TRACEBACK_MSG_KEY);
    bool seen = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), msg) == 0;
    lua_pop(L, 1);
    if (!seen) {
        lua_pushstring(L, msg);
        lua_setfield(L, LUA_REGISTRYINDEX, TRACEBACK_MSG_KEY);
        luaL_traceback(L, L, msg, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, TRACEBACK_KEY);
    }
    lua_pushvalue(L, 1);
    return 1;
}

int slua_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs; /* the function's index */
    lua_pushcfunction(L, slua_msgh);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return rc;
}

void slua_push_traceback(lua_State *L, const char *msg)
{
    lua_getfield(L, LUA_REGISTRYINDEX, TRACEBACK_MSG_KEY);
    bool seen = msg && lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), msg) == 0;
    lua_pop(L, 1);
    if (seen)
        lua_getfield(L, LUA_REGISTRYINDEX, TRACEBACK_KEY);
    else
        luaL_traceback(L, L, msg, 1);
}

/* ---- boxes ------------------------------------------------------------------ */

typedef struct box {
    void *p;
    void (*free_fn)(void *);
} box;

static int box_gc(lua_State *L)
{
    box *b = luaL_checkudata(L, 1, BOX);
    if (b->p && b->free_fn)
        b->free_fn(b->p);
    b->p = NULL;
    return 0;
}

void **slua_box(lua_State *L, void *p, void (*free_fn)(void *))
{
    box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->p = NULL;
    b->free_fn = free_fn;
    if (luaL_newmetatable(L, BOX)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    b->p = p;
    return &b->p;
}

static void free_options(void *p) { sl_options_free(p); }
static void free_record(void *p) { sl_record_free(p); }

sl_options *slua_new_options(lua_State *L)
{
    void **slot = slua_box(L, NULL, free_options);
    *slot = sl_options_new();
    if (*slot == NULL)
        luaL_error(L, "out of memory");
    return *slot;
}

sl_record *slua_new_record(lua_State *L)
{
    void **slot = slua_box(L, NULL, free_record);
    *slot = sl_record_new();
    if (*slot == NULL)
        luaL_error(L, "out of memory");
    return *slot;
}

/* ---- options ---------------------------------------------------------------- */

static bool skipped(const char *key, const char *const *skip)
{
    for (; skip && *skip; skip++)
        if (strcmp(key, *skip) == 0)
            return true;
    return false;
}

static void set_option(lua_State *L, sl_options *o, const char *owner, const char *key, int vidx)
{
    int rc;
    switch (lua_type(L, vidx)) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, vidx))
            rc = sl_options_set_int(o, key, lua_tointeger(L, vidx));
        else
            rc = sl_options_set_float(o, key, lua_tonumber(L, vidx));
        break;
    case LUA_TBOOLEAN: rc = sl_options_set_bool(o, key, lua_toboolean(L, vidx)); break;
    case LUA_TSTRING: rc = sl_options_set_string(o, key, lua_tostring(L, vidx)); break;
    default:
        luaL_error(L, "%s: option '%s' must be a number, boolean or string, got %s", owner, key,
                   luaL_typename(L, vidx));
        return;
    }
    slua_check(L, rc);
}

void slua_table_to_options(lua_State *L, int idx, sl_options *o, const char *owner,
                           const char *const *skip)
{
    if (idx == 0 || lua_isnoneornil(L, idx))
        return;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        luaL_error(L, "%s: options must be a table, got %s", owner, luaL_typename(L, idx));
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "%s: option names must be strings, got %s %s", owner,
                       luaL_typename(L, -2), luaL_tolstring(L, -2, NULL));
        const char *key = lua_tostring(L, -2);
        if (!skipped(key, skip))
            set_option(L, o, owner, key, lua_gettop(L));
        lua_pop(L, 1);
    }
}

sl_options *slua_options(lua_State *L, int idx, const sl_option_spec *spec, const char *owner)
{
    idx = lua_absindex(L, idx);
    bool absent = lua_isnoneornil(L, idx); /* before the box takes the slot */
    sl_options *o = slua_new_options(L);
    if (!absent)
        slua_table_to_options(L, idx, o, owner, NULL);
    slua_check(L, sl_options_validate(o, spec, owner));
    return o;
}

/* ---- records ------------------------------------------------------------------ */

/* Counts (epoch, step) read better as Lua integers. */
static bool is_count(const char *name, double v)
{
    return (strcmp(name, "epoch") == 0 || strcmp(name, "step") == 0) && v >= 0.0 &&
           v < 9007199254740992.0 && v == (double)(lua_Integer)v;
}

void slua_push_record(lua_State *L, const sl_record *r)
{
    int n = sl_record_count(r);
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        double v = sl_record_value(r, i);
        if (is_count(sl_record_name(r, i), v))
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
        lua_setfield(L, -2, sl_record_name(r, i));
    }
}

/* ---- configuration and seeds --------------------------------------------------- */

uint64_t slua_default_seed(lua_State *L)
{
    int top = lua_gettop(L);
    uint64_t seed = 1;
    if (lua_getfield(L, LUA_REGISTRYINDEX, CONFIG_KEY) == LUA_TTABLE &&
        lua_getfield(L, -1, "seed") == LUA_TNUMBER)
        seed = (uint64_t)lua_tointeger(L, -1);
    lua_settop(L, top);
    return seed;
}

uint64_t slua_opt_seed(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return slua_default_seed(L);
    lua_Integer s = luaL_checkinteger(L, idx);
    luaL_argcheck(L, s >= 0, idx, "seed must be >= 0");
    return (uint64_t)s;
}

void slua_preload(lua_State *L, const slua_config *cfg)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, cfg->datadir ? cfg->datadir : "");
    lua_setfield(L, -2, "datadir");
    lua_pushstring(L, cfg->luadir ? cfg->luadir : "");
    lua_setfield(L, -2, "luadir");
    lua_pushinteger(L, (lua_Integer)cfg->seed);
    lua_setfield(L, -2, "seed");
    lua_pushstring(L, cfg->argv0 ? cfg->argv0 : "symlab");
    lua_setfield(L, -2, "argv0");
    lua_setfield(L, LUA_REGISTRYINDEX, CONFIG_KEY);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_symlab);
    lua_setfield(L, -2, "symlab");
    lua_pop(L, 1);
}

/* ---- classes ---------------------------------------------------------------------- */

void slua_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                    const luaL_Reg *metamethods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, metamethods, 0);
    if (lua_getfield(L, -1, "__index") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* ---- the module ---------------------------------------------------------------------- */

static int l_set_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 4096, 1, "expected a positive number of threads");
    sl_set_threads((int)n);
    lua_pushinteger(L, sl_get_threads());
    lua_setfield(L, lua_upvalueindex(1), "threads");
    return 0;
}

/* The string stays anchored in the configuration table in the registry. */
const char *slua_config_string(lua_State *L, const char *key)
{
    int top = lua_gettop(L);
    const char *s = "";
    if (lua_getfield(L, LUA_REGISTRYINDEX, CONFIG_KEY) == LUA_TTABLE &&
        lua_getfield(L, -1, key) == LUA_TSTRING)
        s = lua_tostring(L, -1);
    lua_settop(L, top);
    return s;
}

/* sl.clock() -> seconds on a monotonic clock, for timing inside scripts
 * (os.clock measures CPU time of all threads, not wall time). */
static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
    return 1;
}

/* sl.file_temp(path) -> the name of a new empty file beside path, unique to
 * this writer, for writing and then os.rename over path (symlab/files.h;
 * also removes orphans that dead writers left for path). */
static int l_file_temp(lua_State *L)
{
    char *tmp;
    slua_check(L, sl_file_temp(luaL_checkstring(L, 1), &tmp));
    lua_pushstring(L, tmp);
    free(tmp);
    return 1;
}

/* sl.<name> for a name the binding does not define: the pure-Lua helper
 * module symlab.<name> (scripts/lib/symlab/<name>.lua: results, table, qc,
 * ...), loaded on first use and cached in sl; nil if there is none. */
static int l_helper_module(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    lua_pushfstring(L, "symlab.%s", lua_tostring(L, 2)); /* 3: module name */
    lua_getglobal(L, "package");                        /* 4 */
    lua_getfield(L, 4, "searchpath");
    lua_pushvalue(L, 3);
    lua_getfield(L, 4, "path");
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1))
        return 0;
    lua_getglobal(L, "require");
    lua_pushvalue(L, 3);
    lua_call(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

int luaopen_symlab(lua_State *L)
{
    static const luaL_Reg funcs[] = {{NULL, NULL}};
    luaL_newlib(L, funcs); /* checks the Lua version the binding was built for */
    int sl = lua_gettop(L);

    slua_check(L, sl_registry_init());

    lua_pushstring(L, SL_VERSION_STRING);
    lua_setfield(L, sl, "version");
    lua_pushfstring(L, "%d.%d", (int)SL_ABI_MAJOR, (int)SL_ABI_MINOR);
    lua_setfield(L, sl, "abi");
    lua_pushinteger(L, (lua_Integer)slua_default_seed(L));
    lua_setfield(L, sl, "seed");
    lua_pushinteger(L, sl_get_threads());
    lua_setfield(L, sl, "threads");
    lua_pushvalue(L, sl);
    lua_pushcclosure(L, l_set_threads, 1);
    lua_setfield(L, sl, "set_threads");
    lua_pushcfunction(L, l_clock);
    lua_setfield(L, sl, "clock");
    lua_pushcfunction(L, l_file_temp);
    lua_setfield(L, sl, "file_temp");
    lua_pushstring(L, slua_config_string(L, "datadir"));
    lua_setfield(L, sl, "datadir");
    lua_pushstring(L, slua_config_string(L, "luadir"));
    lua_setfield(L, sl, "luadir");

    slua_open_tensor(L);
    lua_setfield(L, sl, "tensor");
    slua_open_nn(L);
    lua_setfield(L, sl, "nn");
    slua_open_loss(L);
    lua_setfield(L, sl, "loss");
    slua_open_optim(L);
    lua_setfield(L, sl, "optim");
    slua_open_data(L);
    slua_open_datasets(L);
    lua_setfield(L, sl, "data");
    slua_open_hook(L);
    lua_setfield(L, sl, "hook");
    slua_open_probe(L);
    lua_setfield(L, sl, "probe");
    slua_open_proc(L);
    lua_setfield(L, sl, "proc");
    slua_open_train(L);
    slua_open_registry(L);
    lua_settop(L, sl);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_helper_module);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, sl);
    return 1;
}
