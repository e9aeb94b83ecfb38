/* core/lua/lschedule.c — sl.optim.schedule.<kind>{options} and the schedule
 * userdata class (schedule.h).
 *
 *   local s = sl.optim.schedule.warmup { length = 100, interval = "step",
 *               after = sl.optim.schedule.cosine { t_max = 900, interval = "step" } }
 *   sl.train(net, opt, ds, { schedule = s, ... })
 *
 * A warmup's `after` schedule is kept alive by the warmup's user value.
 */
#include "config.h"

#include "lua/lsymlab.h"

typedef struct slua_schedule {
    sl_schedule *s;
} slua_schedule;

static const char *const lua_keys[] = {"after", NULL};

static slua_schedule *to_schedule(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SLUA_SCHEDULE);
}

sl_schedule *slua_check_schedule(lua_State *L, int idx)
{
    slua_schedule *u = to_schedule(L, idx);
    slua_check_open(L, u->s != NULL, "schedule");
    return u->s;
}

static int s_gc(lua_State *L)
{
    slua_schedule *u = to_schedule(L, 1);
    sl_schedule_free(u->s);
    u->s = NULL;
    return 0;
}

/* close() and __close: refused while sl.train uses the schedule. */
static int s_close(lua_State *L)
{
    slua_refuse_busy(L, 1, "schedule");
    return s_gc(L);
}

/* sl.optim.schedule.<kind>{options}: upvalue 1 is the kind. */
static int l_schedule(lua_State *L)
{
    const char *kind = lua_tostring(L, lua_upvalueindex(1));
    lua_settop(L, 1);
    if (!lua_isnil(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    sl_options *opt = slua_new_options(L); /* index 2 */
    slua_table_to_options(L, lua_isnil(L, 1) ? 0 : 1, opt, kind, lua_keys);
    sl_schedule *after = NULL;
    if (lua_istable(L, 1) && lua_getfield(L, 1, "after") != LUA_TNIL) {
        if (luaL_testudata(L, -1, SLUA_SCHEDULE) == NULL)
            return luaL_error(L, "schedule %s: 'after' is %s, not a schedule", kind,
                              luaL_typename(L, -1));
        after = slua_check_schedule(L, -1);
    } else {
        lua_pushnil(L);
    }
    int anchor = lua_gettop(L); /* the after schedule, or nil */
    slua_schedule *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->s = NULL;
    luaL_setmetatable(L, SLUA_SCHEDULE);
    lua_pushvalue(L, anchor);
    lua_setiuservalue(L, -2, 1);
    slua_check(L, sl_schedule_new(kind, opt, after, &u->s));
    return 1;
}

/* s:lr([base]) -> the rate for the current count; `base` is needed (and
 * fixed) only before the schedule was first applied. */
static int m_lr(lua_State *L)
{
    sl_schedule *s = slua_check_schedule(L, 1);
    double base = sl_schedule_base_lr(s);
    if (base != base) { /* NaN: not fixed yet */
        base = luaL_checknumber(L, 2);
        luaL_argcheck(L, base >= 0 && base - base == 0, 2, "base lr must be finite and >= 0");
    }
    lua_pushnumber(L, sl_schedule_lr(s, base));
    return 1;
}

static int m_advance(lua_State *L)
{
    sl_schedule_advance(slua_check_schedule(L, 1));
    lua_settop(L, 1);
    return 1;
}

/* s:state() -> {base_lr=, count=}; base_lr is nil before the first use. */
static int m_state(lua_State *L)
{
    sl_schedule *s = slua_check_schedule(L, 1);
    lua_createtable(L, 0, 2);
    double base = sl_schedule_base_lr(s);
    if (base == base) {
        lua_pushnumber(L, base);
        lua_setfield(L, -2, "base_lr");
    }
    lua_pushinteger(L, sl_schedule_count(s));
    lua_setfield(L, -2, "count");
    return 1;
}

/* s:restore{base_lr=, count=} puts back a state s:state() gave. */
static int m_restore(lua_State *L)
{
    sl_schedule *s = slua_check_schedule(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "base_lr");
    lua_getfield(L, 2, "count");
    if (!lua_isnumber(L, -2) || !lua_isinteger(L, -1))
        return luaL_error(L, "schedule %s: restore needs {base_lr = number, count = integer}",
                          sl_schedule_kind(s));
    slua_check(L, sl_schedule_restore(s, lua_tonumber(L, -2), lua_tointeger(L, -1)));
    lua_settop(L, 1);
    return 1;
}

static int m_kind(lua_State *L)
{
    lua_pushstring(L, sl_schedule_kind(slua_check_schedule(L, 1)));
    return 1;
}

static int m_interval(lua_State *L)
{
    lua_pushstring(L, sl_schedule_per_step(slua_check_schedule(L, 1)) ? "step" : "epoch");
    return 1;
}

static int m_tostring(lua_State *L)
{
    slua_schedule *u = to_schedule(L, 1);
    if (u->s == NULL)
        lua_pushliteral(L, "schedule (closed)");
    else
        lua_pushfstring(L, "schedule %s (per %s, count %I)", sl_schedule_kind(u->s),
                        sl_schedule_per_step(u->s) ? "step" : "epoch",
                        (lua_Integer)sl_schedule_count(u->s));
    return 1;
}

static const luaL_Reg methods[] = {{"lr", m_lr},           {"advance", m_advance},
                                   {"state", m_state},     {"restore", m_restore},
                                   {"kind", m_kind},       {"interval", m_interval},
                                   {"close", s_close},     {NULL, NULL}};
static const luaL_Reg metamethods[] = {
    {"__gc", s_gc}, {"__close", s_close}, {"__tostring", m_tostring}, {NULL, NULL}};

void slua_open_schedule(lua_State *L)
{
    static const char *const kinds[] = {"step", "cosine", "warmup"};
    slua_new_class(L, SLUA_SCHEDULE, methods, metamethods);
    lua_createtable(L, 0, 3);
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        lua_pushstring(L, kinds[i]);
        lua_pushcclosure(L, l_schedule, 1);
        lua_setfield(L, -2, kinds[i]);
    }
}
