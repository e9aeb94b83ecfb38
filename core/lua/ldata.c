/* core/lua/ldata.c — sl.data (readers, the data directory) and the dataset
 * userdata class.  ds.x and ds.y are tensor views that keep the dataset
 * reachable; indices given to subset() are 1-based. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lua/lsymlab.h"

/* ---- the userdata ------------------------------------------------------------- */

static slua_dataset *to_dataset(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SLUA_DATASET);
}

sl_dataset *slua_check_dataset(lua_State *L, int idx)
{
    slua_dataset *u = to_dataset(L, idx);
    slua_check_open(L, !u->closed, "dataset");
    return &u->d;
}

sl_dataset *slua_new_dataset(lua_State *L)
{
    slua_dataset *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, SLUA_DATASET);
    return &u->d;
}

static int d_gc(lua_State *L)
{
    slua_dataset *u = to_dataset(L, 1);
    if (!u->closed) {
        sl_dataset_release(&u->d);
        u->closed = true;
    }
    return 0;
}

static int d_close(lua_State *L)
{
    slua_refuse_busy(L, 1, "dataset");
    return d_gc(L);
}

/* ---- readers ------------------------------------------------------------------- */

/* sl.data.path([name]) -> the data directory, or a dataset's folder in it. */
static int l_path(lua_State *L)
{
    const char *dir = slua_config_string(L, "datadir");
    if (lua_isnoneornil(L, 1))
        lua_pushstring(L, dir);
    else
        lua_pushfstring(L, "%s/%s", dir, luaL_checkstring(L, 1));
    return 1;
}

/* sl.data.idx(dir) -> {train = ds, test = ds}; sl.data.idx(dir, split) -> ds */
static int l_idx(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        sl_dataset *d = slua_new_dataset(L);
        slua_check(L, sl_dataset_idx_dir(dir, luaL_checkstring(L, 2), d));
        return 1;
    }
    lua_createtable(L, 0, 2);
    static const char *const splits[] = {"train", "test"};
    for (int i = 0; i < 2; i++) {
        sl_dataset *d = slua_new_dataset(L);
        slua_check(L, sl_dataset_idx_dir(dir, splits[i], d));
        lua_setfield(L, -2, splits[i]);
    }
    return 1;
}

static const sl_option_spec csv_options[] = {
    {"header", SL_OPT_BOOL, "false", "the first line names the columns", NULL},
    {"label", SL_OPT_INT, "-1", "column of the target, 1-based; negative counts from the end",
     NULL},
    {"classes", SL_OPT_BOOL, "true", "targets are class labels (i64) rather than numbers", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

/* sl.data.csv(path, {header=, label=, classes=}) -> ds */
static int l_csv(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    sl_options *o = slua_options(L, 2, csv_options, "csv");
    int64_t label = sl_options_int(o, "label");
    if (label == 0 || label > 1000000 || label < -1000000)
        return luaL_error(L, "csv: option 'label' is a 1-based column (or negative from the end), "
                             "got %d", (int)label);
    sl_dataset *d = slua_new_dataset(L);
    int column = (int)(label > 0 ? label - 1 : label); /* the library counts from 0 */
    slua_check(L, sl_dataset_csv(path, sl_options_bool(o, "header"), column,
                                 sl_options_bool(o, "classes"), d));
    return 1;
}

/* sl.data.from(x, y) -> ds: a dataset holding copies of two tensors, x (N,
 * ...) and y, i64 labels (N) or real targets (N) / (N, k). */
static int l_from(lua_State *L)
{
    const sl_tensor *x = slua_check_tensor(L, 1), *y = slua_check_tensor(L, 2);
    sl_dataset *d = slua_new_dataset(L);
    slua_check(L, sl_dataset_from_tensors(x, y, d));
    return 1;
}

/* ---- methods ---------------------------------------------------------------------- */

static int m_size(lua_State *L)
{
    lua_pushinteger(L, sl_dataset_size(slua_check_dataset(L, 1)));
    return 1;
}

/* ds:split(n, [seed]) -> first (n rows), rest; shuffled from the seed. */
static int m_split(lua_State *L)
{
    sl_dataset *d = slua_check_dataset(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    uint64_t seed = slua_opt_seed(L, 3);
    sl_dataset *a = slua_new_dataset(L), *b = slua_new_dataset(L);
    slua_check(L, sl_dataset_split(d, n, seed, a, b));
    return 2;
}

static int m_normalize(lua_State *L)
{
    sl_dataset *d = slua_check_dataset(L, 1);
    slua_check(L, sl_dataset_normalize(d, luaL_checknumber(L, 2), luaL_checknumber(L, 3)));
    lua_settop(L, 1);
    return 1;
}

static int m_stats(lua_State *L)
{
    double mean, std;
    slua_check(L, sl_dataset_stats(slua_check_dataset(L, 1), &mean, &std));
    lua_pushnumber(L, mean);
    lua_pushnumber(L, std);
    return 2;
}

static void free_index(void *p) { free(p); }

/* ds:subset(first, count) or ds:subset({i1, i2, ...}), 1-based rows. */
static int m_subset(lua_State *L)
{
    sl_dataset *d = slua_check_dataset(L, 1);
    int64_t size = sl_dataset_size(d), n;
    bool list = lua_istable(L, 2);
    if (list) {
        n = (int64_t)luaL_len(L, 2);
    } else {
        lua_Integer first = luaL_checkinteger(L, 2), count = luaL_checkinteger(L, 3);
        /* size - (first - 1), not first - 1 + count: count may be near maxinteger. */
        if (first < 1 || count < 0 || first - 1 > size || count > size - (first - 1))
            return luaL_error(L, "subset: %I rows from row %I do not fit in 1..%I", count,
                              first, (lua_Integer)size);
        n = count;
    }
    void **slot = slua_box(L, NULL, free_index);
    int64_t *index = *slot = malloc(sizeof *index * (size_t)(n > 0 ? n : 1));
    if (index == NULL)
        return luaL_error(L, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (!list) {
            index[i] = luaL_checkinteger(L, 2) - 1 + i;
            continue;
        }
        lua_geti(L, 2, i + 1);
        int isint;
        lua_Integer r = lua_tointegerx(L, -1, &isint);
        if (!isint || r < 1 || r > size)
            return luaL_error(L, "subset: index %d is %s, not a row in 1..%d", (int)(i + 1),
                              luaL_tolstring(L, -1, NULL), (int)size);
        index[i] = r - 1;
        lua_pop(L, 1);
    }
    sl_dataset *out = slua_new_dataset(L);
    slua_check(L, sl_dataset_subset(d, index, n, out));
    return 1;
}

static int m_len(lua_State *L) { return m_size(L); }

static int m_tostring(lua_State *L)
{
    slua_dataset *u = to_dataset(L, 1);
    if (u->closed) {
        lua_pushliteral(L, "dataset (closed)");
        return 1;
    }
    char xs[128], ys[128];
    sl_shape_str(u->d.x.ndim, u->d.x.shape, xs, sizeof xs);
    sl_shape_str(u->d.y.ndim, u->d.y.shape, ys, sizeof ys);
    lua_pushfstring(L, "dataset(%I rows, x %s %s, y %s %s)", (lua_Integer)sl_dataset_size(&u->d),
                    sl_dtype_name(u->d.x.dtype), xs, sl_dtype_name(u->d.y.dtype), ys);
    return 1;
}

/* __index: ds.x and ds.y are tensor views; anything else is a method
 * (upvalue 1: the methods table). */
static int m_index(lua_State *L)
{
    const char *key = lua_tostring(L, 2);
    if (key && (strcmp(key, "x") == 0 || strcmp(key, "y") == 0)) {
        sl_dataset *d = slua_check_dataset(L, 1);
        slua_push_view(L, key[0] == 'x' ? &d->x : &d->y, 1);
        return 1;
    }
    lua_pushvalue(L, 2);
    lua_gettable(L, lua_upvalueindex(1));
    return 1;
}

static const luaL_Reg methods[] = {{"size", m_size},           {"split", m_split},
                                   {"normalize", m_normalize}, {"stats", m_stats},
                                   {"subset", m_subset},       {"close", d_close},
                                   {NULL, NULL}};

static const luaL_Reg metamethods[] = {{"__gc", d_gc},
                                       {"__close", d_close},
                                       {"__len", m_len},
                                       {"__tostring", m_tostring},
                                       {"__index", NULL},
                                       {NULL, NULL}};

void slua_open_data(lua_State *L)
{
    slua_new_class(L, SLUA_DATASET, methods, metamethods);
    luaL_getmetatable(L, SLUA_DATASET);
    luaL_newlib(L, methods);
    lua_pushcclosure(L, m_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {
        {"path", l_path}, {"idx", l_idx}, {"csv", l_csv}, {"from", l_from}, {NULL, NULL}};
    luaL_newlib(L, funcs);
}
