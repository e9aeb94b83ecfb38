/* core/lua/lregistry.c — what is registered: the lazily resolved type
 * tables (sl.nn, sl.optim, sl.loss, sl.hook, sl.probe), sl.plugins,
 * sl.describe and the text `symlab describe` prints. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lua/lsymlab.h"

/* ---- lazily resolved type tables -------------------------------------------- */

/* __index(t, name): upvalue 1 the kind, upvalue 2 the constructor. */
static int kind_index(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    sl_kind kind = (sl_kind)lua_tointeger(L, lua_upvalueindex(1));
    const char *name = lua_tostring(L, 2);
    if (sl_registry_find(kind, name) == NULL)
        return slua_fail(L);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, lua_tocfunction(L, lua_upvalueindex(2)), 1);
    lua_pushvalue(L, 2); /* cache t[name] so the lookup happens once */
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);
    return 1;
}

void slua_push_kind_table(lua_State *L, sl_kind kind, lua_CFunction ctor, const luaL_Reg *funcs)
{
    lua_newtable(L);
    if (funcs)
        luaL_setfuncs(L, funcs, 0);
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, kind);
    lua_pushcfunction(L, ctor);
    lua_pushcclosure(L, kind_index, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* ---- listings ------------------------------------------------------------------- */

/* sl.plugins() -> array of {kind, name, summary, plugin, version, abi, origin}. */
static int l_plugins(lua_State *L)
{
    int n = sl_registry_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        sl_registry_entry e;
        slua_check(L, sl_registry_get(i, &e));
        lua_createtable(L, 0, 7);
        lua_pushstring(L, sl_kind_name(e.kind));
        lua_setfield(L, -2, "kind");
        lua_pushstring(L, e.name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, e.summary ? e.summary : "");
        lua_setfield(L, -2, "summary");
        lua_pushstring(L, e.plugin && e.plugin->name ? e.plugin->name : "?");
        lua_setfield(L, -2, "plugin");
        lua_pushstring(L, e.plugin && e.plugin->version ? e.plugin->version : "?");
        lua_setfield(L, -2, "version");
        if (e.plugin)
            lua_pushfstring(L, "%d.%d", (int)e.plugin->abi_major, (int)e.plugin->abi_minor);
        else
            lua_pushliteral(L, "?");
        lua_setfield(L, -2, "abi");
        lua_pushstring(L, e.origin ? e.origin : "");
        lua_setfield(L, -2, "origin");
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

/* sl.plugin_failures() -> array of one-line messages of plugins not loaded. */
static int l_plugin_failures(lua_State *L)
{
    int n = sl_registry_failure_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const char *msg = sl_registry_failure(i);
        lua_pushstring(L, msg ? msg : "");
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

/* sl.types(kind) -> the names registered in one kind, in registration order. */
static int l_types(lua_State *L)
{
    static const char *const kinds[] = {"module", "hook", "probe", "loss", "optim", NULL};
    sl_kind kind = (sl_kind)luaL_checkoption(L, 1, NULL, kinds);
    lua_newtable(L);
    int n = sl_registry_count(), k = 0;
    for (int i = 0; i < n; i++) {
        sl_registry_entry e;
        if (sl_registry_get(i, &e) == SL_OK && e.kind == kind) {
            lua_pushstring(L, e.name);
            lua_seti(L, -2, ++k);
        }
    }
    return 1;
}

/* ---- describe -------------------------------------------------------------------- */

static const char *type_name(sl_option_type t)
{
    switch (t) {
    case SL_OPT_INT: return "int";
    case SL_OPT_FLOAT: return "float";
    case SL_OPT_BOOL: return "bool";
    case SL_OPT_STRING: return "string";
    case SL_OPT_HOOKS: return "hooks";
    }
    return "?";
}

static int max_int(int a, int b) { return a > b ? a : b; }

static void add_padded(luaL_Buffer *b, const char *s, int width)
{
    luaL_addstring(b, s);
    for (int n = (int)strlen(s); n < width; n++)
        luaL_addchar(b, ' ');
}

static void describe_options(luaL_Buffer *b, const sl_option_spec *spec)
{
    if (spec == NULL || spec->name == NULL) {
        luaL_addstring(b, "  (no options)\n");
        return;
    }
    int wn = 4, wt = 4, wd = 7, wc = 7;
    for (const sl_option_spec *o = spec; o->name; o++) {
        wn = max_int(wn, (int)strlen(o->name));
        wt = max_int(wt, (int)strlen(type_name(o->type)));
        wd = max_int(wd, o->default_value ? (int)strlen(o->default_value) : 10);
        wc = max_int(wc, o->choices ? (int)strlen(o->choices) : 1);
    }
    luaL_addstring(b, "  ");
    add_padded(b, "name", wn + 2);
    add_padded(b, "type", wt + 2);
    add_padded(b, "default", wd + 2);
    add_padded(b, "choices", wc + 2);
    luaL_addstring(b, "help\n");
    for (const sl_option_spec *o = spec; o->name; o++) {
        luaL_addstring(b, "  ");
        add_padded(b, o->name, wn + 2);
        add_padded(b, type_name(o->type), wt + 2);
        add_padded(b, o->default_value ? o->default_value : "(required)", wd + 2);
        add_padded(b, o->choices ? o->choices : "-", wc + 2);
        luaL_addstring(b, o->help ? o->help : "");
        luaL_addchar(b, '\n');
    }
}

bool slua_push_description(lua_State *L, const char *name)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int found = 0, n = sl_registry_count();
    for (int i = 0; i < n; i++) {
        sl_registry_entry e;
        if (sl_registry_get(i, &e) != SL_OK || strcmp(e.name, name) != 0)
            continue;
        if (found++)
            luaL_addchar(&b, '\n');
        lua_pushfstring(L, "%s: %s\n  kind: %s   plugin: %s (%s)\n", e.name,
                        e.summary ? e.summary : "", sl_kind_name(e.kind),
                        e.plugin && e.plugin->name ? e.plugin->name : "?",
                        e.origin ? e.origin : "?");
        luaL_addvalue(&b);
        if (e.kind == SL_KIND_MODULE) {
            char role[256];
            sl_role_text(sl_module_type_role(sl_registry_find(SL_KIND_MODULE, e.name)), role,
                         sizeof role);
            lua_pushfstring(L, "  role: %s\n", role);
            luaL_addvalue(&b);
        }
        luaL_addstring(&b, "options:\n");
        describe_options(&b, e.options);
    }
    if (!found) {
        luaL_pushresult(&b);
        lua_pop(L, 1);
        sl_error(SL_ENOTFOUND, "no technique called '%s'; see `symlab plugins`", name);
        return false;
    }
    luaL_pushresult(&b);
    return true;
}

static int l_describe(lua_State *L)
{
    if (!slua_push_description(L, luaL_checkstring(L, 1)))
        return slua_fail(L);
    return 1;
}

void slua_open_registry(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"plugins", l_plugins},
                                     {"plugin_failures", l_plugin_failures},
                                     {"types", l_types},
                                     {"describe", l_describe},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
