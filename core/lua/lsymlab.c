/* core/lua/lsymlab.c — the `symlab` Lua module, as linit is Lua's: the
 * configuration the host hands in (data and Lua directories, seed), the
 * preloading of `require "symlab"`, and the module table itself.  The
 * shared helpers are in laux.c. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/lsymlab.h"

#define CONFIG_KEY "symlab.config"

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
