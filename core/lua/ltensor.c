/* core/lua/ltensor.c — sl.tensor and the tensor userdata class.
 *
 * A tensor userdata owns one reference to an sl_tensor view.  Views of a
 * model's parameters or a dataset's inputs also keep that model or dataset
 * userdata reachable through the tensor's user value, so a view never
 * outlives the object it describes.  Indices are 1-based, as in Lua.
 */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lsymlab.h"

/* ---- the userdata ------------------------------------------------------------ */

static slua_tensor *to_tensor(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SLUA_TENSOR);
}

sl_tensor *slua_check_tensor(lua_State *L, int idx)
{
    slua_tensor *u = to_tensor(L, idx);
    slua_check_open(L, !u->closed, "tensor");
    return &u->t;
}

sl_tensor *slua_new_tensor(lua_State *L)
{
    slua_tensor *u = lua_newuserdatauv(L, sizeof *u, 1);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SLUA_TENSOR);
    return &u->t;
}

void slua_tensor_alloc(lua_State *L, sl_tensor *t, sl_dtype dtype, int ndim,
                       const int64_t *shape)
{
    slua_check(L, sl_tensor_alloc(t, dtype, ndim, shape));
    size_t kb = sl_tensor_nbytes(t) >> 10;
    if (kb > 0)
        lua_gc(L, LUA_GCSTEP, kb > INT_MAX ? INT_MAX : (int)kb);
}

void slua_push_view(lua_State *L, const sl_tensor *view, int owner_idx)
{
    if (owner_idx != 0)
        owner_idx = lua_absindex(L, owner_idx);
    sl_tensor *t = slua_new_tensor(L);
    *t = sl_tensor_retain(view);
    if (owner_idx != 0) {
        lua_pushvalue(L, owner_idx);
        lua_setiuservalue(L, -2, 1);
    }
}

bool slua_push_converted(lua_State *L, const sl_tensor *src, sl_dtype dtype,
                         const sl_tensor **out)
{
    if (src->dtype == dtype && sl_tensor_is_contiguous(src)) {
        *out = src;
        return false;
    }
    sl_tensor *t = slua_new_tensor(L);
    slua_tensor_alloc(L, t, dtype, src->ndim, src->shape);
    slua_check(L, sl_tensor_copy(t, src));
    *out = t;
    return true;
}

static int t_close(lua_State *L)
{
    slua_tensor *u = to_tensor(L, 1);
    if (!u->closed) {
        sl_tensor_release(&u->t);
        u->closed = true;
        lua_pushnil(L);
        lua_setiuservalue(L, 1, 1);
    }
    return 0;
}

/* ---- shapes, dtypes, indices --------------------------------------------------- */

static sl_dtype opt_dtype(lua_State *L, int idx, sl_dtype def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    sl_dtype d;
    slua_check(L, sl_dtype_parse(luaL_checkstring(L, idx), &d));
    return d;
}

/* Reads a shape table {d1, d2, ...} into shape; returns ndim.  With
 * `infer`, one extent may be -1 (reshape works it out). */
static int check_shape_ex(lua_State *L, int idx, int64_t *shape, bool infer)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer n = luaL_len(L, idx);
    if (n > SL_MAX_DIMS)
        luaL_error(L, "shape: at most %d dimensions, got %d", SL_MAX_DIMS, (int)n);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, idx, i);
        int isint;
        lua_Integer d = lua_tointegerx(L, -1, &isint);
        if (!isint || d < (infer ? -1 : 0))
            luaL_error(L, "shape: extent %d must be a non-negative integer, got %s", (int)i,
                       luaL_tolstring(L, -1, NULL));
        shape[i - 1] = d;
        lua_pop(L, 1);
    }
    return (int)n;
}

static int check_shape(lua_State *L, int idx, int64_t *shape)
{
    return check_shape_ex(L, idx, shape, false);
}

static void push_shape(lua_State *L, const sl_tensor *t)
{
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_seti(L, -2, i + 1);
    }
}

/* Reads ndim 1-based indices from the stack starting at `first` into a
 * 0-based multi-index, checking bounds. */
static void check_index(lua_State *L, const sl_tensor *t, int first, int given, int64_t *index)
{
    if (given != t->ndim)
        luaL_error(L, "tensor of %d dimensions needs %d indices, got %d", t->ndim, t->ndim,
                   given);
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 1 || i > t->shape[d])
            luaL_error(L, "index %d is %d, outside 1..%d", d + 1, (int)i, (int)t->shape[d]);
        index[d] = i - 1;
    }
}

/* Pushes an element as an integer for integer dtypes, else a number. */
static void push_element(lua_State *L, const sl_tensor *t, double v)
{
    if (t->dtype == SL_I64 || t->dtype == SL_U8)
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
}

/* ---- constructors --------------------------------------------------------------- */

static int l_full(lua_State *L, double value)
{
    int64_t shape[SL_MAX_DIMS];
    int ndim = check_shape(L, 1, shape);
    sl_dtype dtype = opt_dtype(L, 2, SL_F32);
    sl_tensor *t = slua_new_tensor(L);
    slua_tensor_alloc(L, t, dtype, ndim, shape);
    if (value != 0.0)
        slua_check(L, sl_tensor_fill(t, value));
    return 1;
}

static int l_zeros(lua_State *L) { return l_full(L, 0.0); }
static int l_ones(lua_State *L) { return l_full(L, 1.0); }

/* The shape of a nested table, following first elements. */
static int nested_shape(lua_State *L, int idx, int64_t *shape)
{
    int ndim = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (ndim == SL_MAX_DIMS)
            luaL_error(L, "tensor.from: nested deeper than %d levels", SL_MAX_DIMS);
        shape[ndim++] = (int64_t)luaL_len(L, -1);
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return ndim;
}

static double check_element(lua_State *L, int idx, int64_t pos)
{
    int isnum;
    double v = lua_tonumberx(L, idx, &isnum);
    if (!isnum)
        luaL_error(L, "tensor.from: element %d is %s, not a number", (int)(pos + 1),
                   luaL_typename(L, idx));
    return v;
}

/* Copies the nested table at the top of the stack, of dimension `dim`, into
 * t at flat position *pos (t is contiguous). */
static void fill_nested(lua_State *L, sl_tensor *t, int dim, int64_t *index)
{
    if ((int64_t)luaL_len(L, -1) != t->shape[dim])
        luaL_error(L, "tensor.from: ragged table: dimension %d has length %d, expected %d",
                   dim + 1, (int)luaL_len(L, -1), (int)t->shape[dim]);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        index[dim] = i;
        lua_geti(L, -1, i + 1);
        if (dim + 1 < t->ndim) {
            if (!lua_istable(L, -1))
                luaL_error(L, "tensor.from: ragged table: expected a table at depth %d", dim + 2);
            fill_nested(L, t, dim + 1, index);
        } else {
            sl_tensor_set(t, index, check_element(L, -1, i));
        }
        lua_pop(L, 1);
    }
}

/* sl.tensor.from(nested) / from(flat, shape) / either with a dtype last. */
static int l_from(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[SL_MAX_DIMS];
    bool flat = lua_istable(L, 2);
    int ndim = flat ? check_shape(L, 2, shape) : nested_shape(L, 1, shape);
    sl_dtype dtype = opt_dtype(L, flat ? 3 : 2, SL_F32);
    sl_tensor *t = slua_new_tensor(L);
    slua_tensor_alloc(L, t, dtype, ndim, shape);
    if (flat) {
        int64_t n = sl_tensor_numel(t);
        if ((int64_t)luaL_len(L, 1) != n)
            luaL_error(L, "tensor.from: %d values for a shape of %d elements", (int)luaL_len(L, 1),
                       (int)n);
        int64_t index[SL_MAX_DIMS] = {0};
        for (int64_t i = 0; i < n; i++) {
            lua_geti(L, 1, i + 1);
            double v = check_element(L, -1, i);
            lua_pop(L, 1);
            int64_t rest = i;
            for (int d = ndim - 1; d >= 0; d--) {
                index[d] = rest % shape[d];
                rest /= shape[d];
            }
            sl_tensor_set(t, index, v);
        }
    } else if (ndim > 0) {
        int64_t index[SL_MAX_DIMS] = {0};
        lua_pushvalue(L, 1);
        fill_nested(L, t, 0, index);
        lua_pop(L, 1);
    }
    return 1;
}

/* ---- methods ------------------------------------------------------------------------ */

static int m_shape(lua_State *L)
{
    push_shape(L, slua_check_tensor(L, 1));
    return 1;
}

static int m_dtype(lua_State *L)
{
    lua_pushstring(L, sl_dtype_name(slua_check_tensor(L, 1)->dtype));
    return 1;
}

static int m_ndim(lua_State *L)
{
    lua_pushinteger(L, slua_check_tensor(L, 1)->ndim);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, sl_tensor_numel(slua_check_tensor(L, 1)));
    return 1;
}

static int m_get(lua_State *L)
{
    sl_tensor *t = slua_check_tensor(L, 1);
    int64_t index[SL_MAX_DIMS];
    check_index(L, t, 2, lua_gettop(L) - 1, index);
    push_element(L, t, sl_tensor_get(t, index));
    return 1;
}

static int m_set(lua_State *L)
{
    sl_tensor *t = slua_check_tensor(L, 1);
    int top = lua_gettop(L);
    double v = luaL_checknumber(L, top);
    int64_t index[SL_MAX_DIMS];
    check_index(L, t, 2, top - 2, index);
    sl_tensor_set(t, index, v);
    lua_settop(L, 1);
    return 1;
}

static void push_nested(lua_State *L, const sl_tensor *t, int dim, int64_t *index)
{
    if (dim == t->ndim) {
        push_element(L, t, sl_tensor_get(t, index));
        return;
    }
    luaL_checkstack(L, 4, "tensor too deep");
    lua_createtable(L, (int)t->shape[dim], 0);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        index[dim] = i;
        push_nested(L, t, dim + 1, index);
        lua_seti(L, -2, i + 1);
    }
}

static int m_totable(lua_State *L)
{
    sl_tensor *t = slua_check_tensor(L, 1);
    int64_t index[SL_MAX_DIMS] = {0};
    push_nested(L, t, 0, index);
    return 1;
}

/* t:copy([dtype]): a new contiguous tensor with t's values. */
static int m_copy(lua_State *L)
{
    sl_tensor *t = slua_check_tensor(L, 1);
    sl_dtype dtype = opt_dtype(L, 2, t->dtype);
    sl_tensor *c = slua_new_tensor(L);
    slua_tensor_alloc(L, c, dtype, t->ndim, t->shape);
    slua_check(L, sl_tensor_copy(c, t));
    return 1;
}

/* t:assign(u): copies u's values into t (same shape; dtypes converted). */
static int m_assign(lua_State *L)
{
    sl_tensor *t = slua_check_tensor(L, 1);
    slua_check(L, sl_tensor_copy(t, slua_check_tensor(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_reshape(lua_State *L)
{
    sl_tensor *t = slua_check_tensor(L, 1);
    int64_t shape[SL_MAX_DIMS];
    int ndim = check_shape_ex(L, 2, shape, true);
    lua_getiuservalue(L, 1, 1); /* the view shares t's owner */
    sl_tensor *r = slua_new_tensor(L);
    slua_check(L, sl_tensor_reshape(t, ndim, shape, r));
    lua_insert(L, -2);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

static int m_fill(lua_State *L)
{
    slua_check(L, sl_tensor_fill(slua_check_tensor(L, 1), luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_scale(lua_State *L)
{
    slua_check(L, sl_scale(luaL_checknumber(L, 2), slua_check_tensor(L, 1)));
    lua_settop(L, 1);
    return 1;
}

static int m_norm(lua_State *L)
{
    double v;
    slua_check(L, sl_norm2(slua_check_tensor(L, 1), &v));
    lua_pushnumber(L, v);
    return 1;
}

static int m_dot(lua_State *L)
{
    double v;
    slua_check(L, sl_dot(slua_check_tensor(L, 1), slua_check_tensor(L, 2), &v));
    lua_pushnumber(L, v);
    return 1;
}

/* y:axpy(a, x): y += a x. */
static int m_axpy(lua_State *L)
{
    sl_tensor *y = slua_check_tensor(L, 1);
    slua_check(L, sl_axpy(luaL_checknumber(L, 2), slua_check_tensor(L, 3), y));
    lua_settop(L, 1);
    return 1;
}

/* "tensor(f32, [2, 3]: 0.5, -1, 2, ...)": dtype, shape and the first values. */
static int m_tostring(lua_State *L)
{
    slua_tensor *u = to_tensor(L, 1);
    if (u->closed) {
        lua_pushliteral(L, "tensor (closed)");
        return 1;
    }
    char shape[128];
    sl_shape_str(u->t.ndim, u->t.shape, shape, sizeof shape);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "tensor(%s, %s", sl_dtype_name(u->t.dtype), shape);
    luaL_addvalue(&b);
    int64_t n = sl_tensor_numel(&u->t), shown = n < 6 ? n : 6;
    int64_t index[SL_MAX_DIMS] = {0};
    for (int64_t i = 0; i < shown; i++) {
        int64_t rest = i;
        for (int d = u->t.ndim - 1; d >= 0; d--) {
            index[d] = rest % u->t.shape[d];
            rest /= u->t.shape[d];
        }
        char num[32];
        snprintf(num, sizeof num, "%.6g", sl_tensor_get(&u->t, index));
        luaL_addstring(&b, i == 0 ? ": " : ", ");
        luaL_addstring(&b, num);
    }
    if (n > shown)
        luaL_addstring(&b, ", ...");
    luaL_addchar(&b, ')');
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg methods[] = {
    {"shape", m_shape},     {"dtype", m_dtype}, {"ndim", m_ndim},       {"numel", m_numel},
    {"get", m_get},         {"set", m_set},     {"totable", m_totable}, {"copy", m_copy},
    {"assign", m_assign},   {"reshape", m_reshape}, {"fill", m_fill},   {"scale", m_scale},
    {"norm", m_norm},       {"dot", m_dot},     {"axpy", m_axpy},       {"close", t_close},
    {NULL, NULL}};

static const luaL_Reg metamethods[] = {
    {"__gc", t_close}, {"__close", t_close}, {"__tostring", m_tostring}, {NULL, NULL}};

void slua_open_tensor(lua_State *L)
{
    slua_new_class(L, SLUA_TENSOR, methods, metamethods);
    static const luaL_Reg funcs[] = {
        {"zeros", l_zeros}, {"ones", l_ones}, {"from", l_from}, {NULL, NULL}};
    luaL_newlib(L, funcs);
}
