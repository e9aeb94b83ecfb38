/* core/lua/lbusy.c — objects in use by a running sl.train.
 *
 * sl.train hands the model, optimizer, datasets and hooks to sl_train, which
 * keeps using them until it returns; on_epoch runs Lua in between.  Closing
 * one of them there would free what the loop uses next, so sl.train marks
 * each as busy for its duration and close() refuses a busy object with a
 * one-line error.  The marks live in a registry table keyed by the userdata
 * itself: that also anchors the objects, so a script that drops its last
 * reference inside on_epoch cannot get them collected either.  The mark is a
 * count because on_epoch may call sl.train again with the same objects.
 *
 * __gc needs no check: it runs only on an unreachable object (never a marked
 * one) or when the state is closed, after which the process exits without
 * returning into sl_train.
 */
#include "config.h"

#include "lua/lsymlab.h"

#define BUSY "symlab.busy"

/* Pushes the table of marks, creating it on first use. */
static void push_marks(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, BUSY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, BUSY);
}

void slua_busy(lua_State *L, int idx, int delta)
{
    idx = lua_absindex(L, idx);
    push_marks(L);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    lua_Integer count = lua_tointeger(L, -1) + delta;
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    if (count > 0)
        lua_pushinteger(L, count);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

void slua_refuse_busy(lua_State *L, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    push_marks(L);
    lua_pushvalue(L, idx);
    bool busy = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    if (busy)
        luaL_error(L, "cannot close the %s: sl.train is using it (close it after sl.train "
                   "returns)", what);
}
