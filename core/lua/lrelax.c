/* core/lua/lrelax.c — sl.nn.relax(net [, {residual =, input_shape =}]):
 * a new model with every layer that declares a dense form replaced by it
 * (symlab/relax.h). */
#include "config.h"

#include <string.h>

#include "lua/lsymlab.h"

/* Reads {residual = bool, input_shape = {B, ...}} at idx (absent: defaults). */
static void relax_options(lua_State *L, int idx, sl_relax_options *o)
{
    memset(o, 0, sizeof *o);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (key && strcmp(key, "residual") == 0) {
            if (!lua_isboolean(L, -1))
                luaL_error(L, "relax: option 'residual' must be a boolean, got %s",
                           luaL_typename(L, -1));
            o->residual = lua_toboolean(L, -1);
        } else if (key && strcmp(key, "input_shape") == 0) {
            if (!lua_istable(L, -1))
                luaL_error(L, "relax: option 'input_shape' must be a list of extents, batch "
                              "first, got %s", luaL_typename(L, -1));
            lua_Integer n = luaL_len(L, -1);
            if (n < 1 || n > SL_MAX_DIMS)
                luaL_error(L, "relax: input_shape has 1..%d extents, got %d", SL_MAX_DIMS,
                           (int)n);
            o->ndim = (int)n;
            for (int i = 0; i < o->ndim; i++) {
                lua_geti(L, -1, i + 1);
                lua_Integer v = lua_tointeger(L, -1);
                if (!lua_isinteger(L, -1) || v < 1)
                    luaL_error(L, "relax: input_shape[%d] must be a positive integer", i + 1);
                o->shape[i] = v;
                lua_pop(L, 1);
            }
        } else {
            luaL_error(L, "relax: unknown option '%s' (residual, input_shape)",
                       key ? key : luaL_typename(L, -2));
        }
        lua_pop(L, 1);
    }
}

/* sl.nn.relax(net, opts) -> model */
int slua_nn_relax(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    sl_relax_options o;
    relax_options(L, 2, &o);
    slua_model *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->m = NULL;
    luaL_setmetatable(L, SLUA_MODEL);
    slua_check(L, sl_model_relax(m, &o, &u->m));
    return 1;
}
