/* core/lua/laux.c — the binding's auxiliary library, as lauxlib is Lua's:
 * errors and tracebacks, boxes that free C objects when a Lua error
 * unwinds, options and records between Lua tables and C, userdata classes,
 * and the one check every class makes before using an object. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lsymlab.h"

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

static void free_hook_list(void *p) { free(p); }

sl_hook **slua_check_hook_list(lua_State *L, int list, const char *what, int *n)
{
    list = lua_absindex(L, list);
    *n = (int)luaL_len(L, list);
    void **slot = slua_box(L, NULL, free_hook_list);
    sl_hook **hooks = *slot = calloc(*n > 0 ? (size_t)*n : 1, sizeof *hooks);
    if (hooks == NULL)
        luaL_error(L, "out of memory");
    for (int i = 0; i < *n; i++) {
        lua_geti(L, list, i + 1);
        if (luaL_testudata(L, -1, SLUA_HOOK) == NULL)
            luaL_error(L, "%s[%d] is %s, not a hook (made by sl.hook.<type>{})", what, i + 1,
                       luaL_typename(L, -1));
        hooks[i] = slua_check_hook(L, -1);
        lua_pop(L, 1);
    }
    return hooks;
}

/* An option of type hooks: the options copy the list of pointers; the
 * hooks stay anchored by the caller's table for the call. */
static int set_hooks(lua_State *L, sl_options *o, const char *owner, const char *key, int vidx)
{
    char what[160];
    snprintf(what, sizeof what, "%s: option '%s'", owner, key);
    int n;
    sl_hook **hooks = slua_check_hook_list(L, vidx, what, &n);
    int rc = sl_options_set_hooks(o, key, hooks, n);
    lua_pop(L, 1); /* the box: the options keep their own copy */
    return rc;
}

/* Whether the table at idx can be a list of hooks: empty, or a hook first
 * (set_hooks checks the rest).  Otherwise leaves its first item on the
 * stack, for the message. */
static bool is_hook_list(lua_State *L, int idx)
{
    if (lua_geti(L, idx, 1) == LUA_TNIL || luaL_testudata(L, -1, SLUA_HOOK)) {
        lua_pop(L, 1);
        return true;
    }
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
    case LUA_TTABLE:
        if (is_hook_list(L, vidx)) {
            rc = set_hooks(L, o, owner, key, vidx);
            break;
        }
        luaL_error(L, "%s: option '%s' must be a number, boolean, string or list of hooks, "
                   "got a table of %s", owner, key, luaL_typename(L, -1));
        return;
    default:
        luaL_error(L, "%s: option '%s' must be a number, boolean, string or list of hooks, "
                   "got %s", owner, key, luaL_typename(L, vidx));
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

void slua_check_open(lua_State *L, bool open, const char *what)
{
    if (!open)
        luaL_error(L, "attempt to use a closed %s", what);
}
