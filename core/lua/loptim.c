/* core/lua/loptim.c — sl.optim.<type>(net, {lr=, ...}) and the optimizer
 * userdata class (sl.optim.schedule is lschedule.c's).
 *
 * An optimizer belongs to one model, which must outlive it: its user value
 * holds the model userdata, and every method first checks that the model
 * has not been closed.
 */
#include "config.h"

#include "lua/lsymlab.h"

typedef struct slua_optim {
    sl_optim *o;
} slua_optim;

static slua_optim *to_optim(lua_State *L, int idx) { return luaL_checkudata(L, idx, SLUA_OPTIM); }

sl_optim *slua_check_optim(lua_State *L, int idx)
{
    slua_optim *u = to_optim(L, idx);
    slua_check_open(L, u->o != NULL, "optimizer");
    lua_getiuservalue(L, idx, 1);
    slua_model *owner = luaL_testudata(L, -1, SLUA_MODEL);
    if (owner == NULL || owner->m == NULL)
        luaL_error(L, "optimizer %s: its model has been closed", sl_optim_name(u->o));
    lua_pop(L, 1);
    return u->o;
}

static int o_gc(lua_State *L)
{
    slua_optim *u = to_optim(L, 1);
    sl_optim_free(u->o);
    u->o = NULL;
    return 0;
}

static int o_close(lua_State *L)
{
    slua_refuse_busy(L, 1, "optimizer");
    return o_gc(L);
}

/* sl.optim.<type>(net, {options}): upvalue 1 is the type name. */
static int l_optim(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    sl_model *m = slua_check_model(L, 1);
    lua_settop(L, 2);
    sl_options *opt = slua_new_options(L);
    slua_table_to_options(L, 2, opt, name, NULL);
    slua_optim *u = lua_newuserdatauv(L, sizeof *u, 1);
    u->o = NULL;
    luaL_setmetatable(L, SLUA_OPTIM);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    slua_check(L, sl_optim_new(name, m, opt, &u->o));
    return 1;
}

static int m_step(lua_State *L)
{
    slua_check(L, sl_optim_step(slua_check_optim(L, 1)));
    lua_settop(L, 1);
    return 1;
}

static int m_reset(lua_State *L)
{
    sl_optim_reset(slua_check_optim(L, 1));
    lua_settop(L, 1);
    return 1;
}

/* opt:lr() -> the learning rate; opt:lr(new) sets it and returns the old. */
static int m_lr(lua_State *L)
{
    sl_optim *o = slua_check_optim(L, 1);
    double old = sl_optim_lr(o);
    if (!lua_isnoneornil(L, 2)) {
        double lr = luaL_checknumber(L, 2);
        luaL_argcheck(L, lr >= 0.0 && lr == lr, 2, "learning rate must be >= 0");
        sl_optim_set_lr(o, lr);
    }
    lua_pushnumber(L, old);
    return 1;
}

static int m_steps(lua_State *L)
{
    lua_pushinteger(L, sl_optim_steps(slua_check_optim(L, 1)));
    return 1;
}

static int m_name(lua_State *L)
{
    lua_pushstring(L, sl_optim_name(slua_check_optim(L, 1)));
    return 1;
}

/* The model this optimizer updates. */
static int m_model(lua_State *L)
{
    slua_check_optim(L, 1);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int m_tostring(lua_State *L)
{
    slua_optim *u = to_optim(L, 1);
    if (u->o == NULL)
        lua_pushliteral(L, "optimizer (closed)");
    else
        lua_pushfstring(L, "optimizer %s (lr %f, %I steps)", sl_optim_name(u->o),
                        sl_optim_lr(u->o), (lua_Integer)sl_optim_steps(u->o));
    return 1;
}

static const luaL_Reg methods[] = {{"step", m_step},   {"reset", m_reset}, {"lr", m_lr},
                                   {"steps", m_steps}, {"name", m_name},   {"model", m_model},
                                   {"close", o_close}, {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", o_gc}, {"__close", o_close}, {"__tostring", m_tostring}, {NULL, NULL}};

void slua_open_optim(lua_State *L)
{
    slua_new_class(L, SLUA_OPTIM, methods, metamethods);
    slua_push_kind_table(L, SL_KIND_OPTIM, l_optim, NULL);
    slua_open_schedule(L);
    lua_setfield(L, -2, "schedule");
}
