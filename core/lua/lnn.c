/* core/lua/lnn.c — sl.nn (layer specs and sequential models), the model
 * userdata class, and sl.loss.
 *
 * A layer spec is a plain table {type = "linear", in_features = 784, ...}
 * (with a __tostring), validated against the type's options when it is
 * made, so that a bad option is reported at the line that wrote it.
 * sl.nn.sequential turns a list of specs into a built model.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lua/lsymlab.h"

/* ---- layer specs -------------------------------------------------------------- */

static const char *const spec_skip[] = {"type", NULL};

static int count_options(const sl_option_spec *spec)
{
    int n = 0;
    while (spec && spec[n].name)
        n++;
    return n;
}

/* Checks the spec table at idx against its type's options. */
static void validate_spec(lua_State *L, int idx, const sl_module_type *type)
{
    sl_options *o = slua_new_options(L);
    slua_table_to_options(L, idx, o, type->name, spec_skip);
    slua_check(L, sl_options_validate(o, type->options, type->name));
    lua_pop(L, 1);
}

static void check_scalar(lua_State *L, int idx, const char *type, const char *key)
{
    int t = lua_type(L, idx);
    if (t != LUA_TNUMBER && t != LUA_TBOOLEAN && t != LUA_TSTRING)
        luaL_error(L, "%s: option '%s' must be a number, boolean or string, got %s", type, key,
                   luaL_typename(L, idx));
}

/* sl.nn.<type>(positional..., {options}): upvalue 1 is the type name.
 * Positional values fill the type's options in declaration order. */
static int l_layer(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    const sl_module_type *type = sl_registry_find(SL_KIND_MODULE, name);
    if (type == NULL)
        return slua_fail(L);
    int top = lua_gettop(L);
    int opts = top > 0 && lua_istable(L, top) ? top : 0;
    int npos = opts ? top - 1 : top, nspec = count_options(type->options);
    if (npos > nspec)
        return luaL_error(L, "%s: %d positional arguments given, but it takes at most %d", name,
                          npos, nspec);
    lua_createtable(L, 0, npos + 1);
    int spec = lua_gettop(L);
    for (int i = 0; i < npos; i++) {
        check_scalar(L, i + 1, name, type->options[i].name);
        lua_pushvalue(L, i + 1);
        lua_setfield(L, spec, type->options[i].name);
    }
    if (opts) {
        lua_pushnil(L);
        while (lua_next(L, opts)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                return luaL_error(L, "%s: option names must be strings, got %s", name,
                                  luaL_typename(L, -2));
            const char *key = lua_tostring(L, -2);
            if (strcmp(key, "type") == 0)
                return luaL_error(L, "%s: 'type' is not an option", name);
            if (lua_getfield(L, spec, key) != LUA_TNIL)
                return luaL_error(L, "%s: option '%s' given twice", name, key);
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, spec);
        }
    }
    lua_pushstring(L, name);
    lua_setfield(L, spec, "type");
    validate_spec(L, spec, type);
    luaL_setmetatable(L, SLUA_LAYER);
    return 1;
}

/* "linear{in_features=784, out_features=256}".  The stack is kept balanced
 * around every buffer operation, as luaL_Buffer requires. */
static int layer_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "type");
    const char *name = lua_tostring(L, -1); /* anchored at index 2 */
    const sl_module_type *type = name ? sl_registry_find(SL_KIND_MODULE, name) : NULL;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, name ? name : "?");
    luaL_addchar(&b, '{');
    int shown = 0;
    for (const sl_option_spec *o = type ? type->options : NULL; o && o->name; o++) {
        if (lua_getfield(L, 1, o->name) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        const char *value = luaL_tolstring(L, -1, NULL);
        lua_pushfstring(L, "%s%s=%s", shown++ ? ", " : "", o->name, value);
        lua_replace(L, -3); /* drop the raw value and its text, keep the piece */
        lua_pop(L, 1);
        luaL_addvalue(&b);
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
    return 1;
}

/* ---- the model userdata ---------------------------------------------------------- */

static slua_model *to_model(lua_State *L, int idx) { return luaL_checkudata(L, idx, SLUA_MODEL); }

sl_model *slua_check_model(lua_State *L, int idx)
{
    slua_model *u = to_model(L, idx);
    slua_check_open(L, u->m != NULL, "model");
    return u->m;
}

static int model_gc(lua_State *L)
{
    slua_model *u = to_model(L, 1);
    sl_model_free(u->m);
    u->m = NULL;
    return 0;
}

static int model_close(lua_State *L)
{
    slua_refuse_busy(L, 1, "model");
    return model_gc(L);
}

static const sl_option_spec sequential_options[] = {
    {"dtype", SL_OPT_STRING, "f32", "dtype the model computes in", "f32|f64"},
    {"seed", SL_OPT_INT, "1", "seed of the parameter initialisation (default: --seed)", NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

static void add_list(lua_State *L, sl_model *m, int idx, int first, int last);

/* Adds the module described by the element at idx (position i, 1-based):
 * a layer spec, a residual spec (sl.nn.residual), or a plain list of them
 * (a nested sequential). */
static void add_module(lua_State *L, sl_model *m, int idx, int i)
{
    if (!lua_istable(L, idx))
        luaL_error(L, "sequential: element %d is %s, not a layer (made by sl.nn.<type>())", i,
                   luaL_typename(L, idx));
    if (lua_getfield(L, idx, "type") == LUA_TNIL) {
        lua_pop(L, 1);
        if (luaL_len(L, idx) == 0)
            luaL_error(L, "sequential: element %d has no 'type' name and is not a list of "
                          "layers", i);
        slua_check(L, sl_model_begin(m, "sequential", NULL));
        add_list(L, m, idx, 1, (int)luaL_len(L, idx));
        slua_check(L, sl_model_end(m));
        return;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "sequential: element %d has a 'type' that is not a name", i);
    const char *type = lua_tostring(L, -1);
    if (strcmp(type, "residual") == 0) {
        slua_check(L, sl_model_begin(m, "residual", NULL));
        add_list(L, m, idx, 1, (int)luaL_len(L, idx));
        if (lua_getfield(L, idx, "shortcut") == LUA_TTABLE) {
            slua_check(L, sl_model_branch(m, "shortcut"));
            add_list(L, m, lua_gettop(L), 1, (int)luaL_len(L, -1));
        }
        lua_pop(L, 2);
        slua_check(L, sl_model_end(m));
        return;
    }
    sl_options *o = slua_new_options(L);
    slua_table_to_options(L, idx, o, type, spec_skip);
    slua_check(L, sl_model_add(m, type, o));
    lua_pop(L, 2);
}

/* Adds the elements first..last of the list at idx. */
static void add_list(lua_State *L, sl_model *m, int idx, int first, int last)
{
    for (int i = first; i <= last; i++) {
        lua_geti(L, idx, i);
        add_module(L, m, lua_gettop(L), i);
        lua_pop(L, 1);
    }
}

/* sl.nn.residual { layers..., shortcut = { layers... } } -> a residual spec:
 * y = body(x) + shortcut(x), the shortcut the identity when absent. */
static int l_residual(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (luaL_len(L, 1) == 0)
        return luaL_error(L, "residual: no layers in the body");
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "shortcut") != 0)
            return luaL_error(L, "residual: unknown field '%s' (layers, and shortcut = {...})",
                              lua_tostring(L, -1));
    }
    int t = lua_getfield(L, 1, "shortcut");
    if (t != LUA_TNIL && t != LUA_TTABLE)
        return luaL_error(L, "residual: shortcut must be a list of layers, got %s",
                          luaL_typename(L, -1));
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* a shallow copy, so later edits of the argument do not leak in */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pushliteral(L, "residual");
    lua_setfield(L, -2, "type");
    return 1;
}

/* sl.nn.sequential({specs...}, {dtype=, seed=}) -> model */
static int l_sequential(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    sl_options *o = slua_options(L, 2, sequential_options, "sequential");
    sl_dtype dtype;
    slua_check(L, sl_dtype_parse(sl_options_string(o, "dtype"), &dtype));
    int64_t seed = sl_options_has(o, "seed") ? sl_options_int(o, "seed")
                                             : (int64_t)slua_default_seed(L);
    if (seed < 0)
        return luaL_error(L, "sequential: option 'seed' must be >= 0, got %d", (int)seed);

    slua_model *u = lua_newuserdatauv(L, sizeof *u, 0);
    u->m = NULL;
    luaL_setmetatable(L, SLUA_MODEL);
    slua_check(L, sl_model_new(dtype, &u->m));
    lua_Integer n = luaL_len(L, 1);
    if (n == 0)
        return luaL_error(L, "sequential: no layers given");
    add_list(L, u->m, 1, 1, (int)n);
    slua_check(L, sl_model_build(u->m, (uint64_t)seed));
    return 1;
}

/* ---- model methods ---------------------------------------------------------------------- */

/* net:forward(x) -> a new tensor holding the output (the model's own output
 * buffer is reused by the next forward, so it is copied out). */
static int m_forward(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    const sl_tensor *x, *y;
    slua_push_converted(L, slua_check_tensor(L, 2), sl_model_dtype(m), &x);
    slua_check(L, sl_model_forward(m, x, &y));
    sl_tensor *out = slua_new_tensor(L);
    slua_tensor_alloc(L, out, y->dtype, y->ndim, y->shape);
    slua_check(L, sl_tensor_copy(out, y));
    return 1;
}

/* net:backward(grad_y): adds into the parameter gradients. */
static int m_backward(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    const sl_tensor *g;
    slua_push_converted(L, slua_check_tensor(L, 2), sl_model_dtype(m), &g);
    slua_check(L, sl_model_backward(m, g));
    lua_settop(L, 1);
    return 1;
}

static int m_zero_grad(lua_State *L)
{
    sl_model_zero_grad(slua_check_model(L, 1));
    lua_settop(L, 1);
    return 1;
}

static int set_mode(lua_State *L, bool training)
{
    sl_model_set_training(slua_check_model(L, 1), training);
    lua_settop(L, 1);
    return 1;
}

static int m_train(lua_State *L)
{
    return set_mode(L, lua_isnoneornil(L, 2) || lua_toboolean(L, 2));
}
static int m_eval(lua_State *L) { return set_mode(L, false); }

static int m_training(lua_State *L)
{
    lua_pushboolean(L, sl_model_training(slua_check_model(L, 1)));
    return 1;
}

/* Index of a parameter given by name or 1-based position; error if none. */
static int check_param(lua_State *L, sl_model *m, int idx)
{
    int n = sl_model_nparams(m);
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer i = luaL_checkinteger(L, idx);
        if (i < 1 || i > n)
            luaL_error(L, "parameter %d out of range 1..%d", (int)i, n);
        return (int)i - 1;
    }
    const char *name = luaL_checkstring(L, idx);
    int i = sl_model_find_param(m, name);
    if (i < 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int k = 0; k < n; k++) {
            luaL_addstring(&b, k ? ", " : "");
            luaL_addstring(&b, sl_model_param_name(m, k));
        }
        luaL_pushresult(&b);
        luaL_error(L, "no parameter '%s' (the model has: %s)", name, lua_tostring(L, -1));
    }
    return i;
}

static int m_param(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    slua_push_view(L, sl_model_param(m, check_param(L, m, 2)), 1);
    return 1;
}

static int m_grad(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    slua_push_view(L, sl_model_grad(m, check_param(L, m, 2)), 1);
    return 1;
}

/* net:parameters() -> {{name=, tensor=, grad=}, ...} */
static int m_parameters(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    int n = sl_model_nparams(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, sl_model_param_name(m, i));
        lua_setfield(L, -2, "name");
        slua_push_view(L, sl_model_param(m, i), 1);
        lua_setfield(L, -2, "tensor");
        slua_push_view(L, sl_model_grad(m, i), 1);
        lua_setfield(L, -2, "grad");
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

/* net:buffers() -> {{name=, tensor=}, ...} */
static int m_buffers(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    int n = sl_model_nbuffers(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, sl_model_buffer_name(m, i));
        lua_setfield(L, -2, "name");
        slua_push_view(L, sl_model_buffer(m, i), 1);
        lua_setfield(L, -2, "tensor");
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int m_flat_params(lua_State *L)
{
    slua_push_view(L, sl_model_flat_params(slua_check_model(L, 1)), 1);
    return 1;
}

static int m_flat_grads(lua_State *L)
{
    slua_push_view(L, sl_model_flat_grads(slua_check_model(L, 1)), 1);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, sl_model_numel(slua_check_model(L, 1)));
    return 1;
}

static int m_dtype(lua_State *L)
{
    lua_pushstring(L, sl_dtype_name(sl_model_dtype(slua_check_model(L, 1))));
    return 1;
}

/* net:modules() -> {"flatten", "linear", ...} */
static int m_modules(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    int n = sl_model_nmodules(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, sl_module_type_of(sl_model_module(m, i))->name);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

/* Pushes one weight layer of the structure as a table. */
static void push_layer(lua_State *L, const sl_weight_layer *w)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, sl_module_path(w->mod));
    lua_setfield(L, -2, "path");
    lua_pushstring(L, sl_module_type_of(w->mod)->name);
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, w->units);
    lua_setfield(L, -2, "units");
    lua_pushinteger(L, w->fan_in);
    lua_setfield(L, -2, "fan_in");
    if (w->hidden_in >= 0) {
        lua_pushinteger(L, w->hidden_in + 1);
        lua_setfield(L, -2, "hidden_in");
    }
    if (w->hidden_out >= 0) {
        lua_pushinteger(L, w->hidden_out + 1);
        lua_setfield(L, -2, "hidden_out");
    }
}

/* Pushes one hidden layer: units, symmetry text, producers, consumers, and
 * the names of the tensors its units index. */
static void push_hidden(lua_State *L, sl_model *m, const sl_hidden_layer *h)
{
    char sym[128];
    sl_symmetry_text(h->symmetry, sym, sizeof sym);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, h->units);
    lua_setfield(L, -2, "units");
    lua_pushstring(L, sym);
    lua_setfield(L, -2, "symmetry");
    lua_pushinteger(L, h->nproducers);
    lua_setfield(L, -2, "producers");
    lua_pushinteger(L, h->nconsumers);
    lua_setfield(L, -2, "consumers");
    lua_pushstring(L, sl_module_path(h->act));
    lua_setfield(L, -2, "activation");
    lua_createtable(L, h->nrefs, 0);
    for (int i = 0; i < h->nrefs; i++) {
        const sl_unit_ref *r = sl_hidden_ref(h, i);
        lua_pushstring(L, r->param >= 0 ? sl_model_param_name(m, r->param)
                                        : sl_model_buffer_name(m, r->buffer));
        lua_seti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "tensors");
}

static void free_structure(void *s) { sl_structure_free(s); }

/* net:structure() -> {layers = {{path=, type=, units=, fan_in=, hidden_in=,
 * hidden_out=}, ...}, hidden = {{units=, symmetry=, producers=, consumers=,
 * activation=, tensors={...}}, ...}}: what every symmetry technique sees
 * (structure.h); hidden_in/out index `hidden`. */
static int m_structure(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    sl_structure *s;
    slua_check(L, sl_model_structure(m, &s));
    slua_box(L, s, free_structure); /* freed with the box, even if a push below raises */
    lua_createtable(L, 0, 2);
    lua_createtable(L, sl_structure_nlayers(s), 0);
    for (int i = 0; i < sl_structure_nlayers(s); i++) {
        push_layer(L, sl_structure_layer(s, i));
        lua_seti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "layers");
    lua_createtable(L, sl_structure_nhidden(s), 0);
    for (int i = 0; i < sl_structure_nhidden(s); i++) {
        push_hidden(L, m, sl_structure_hidden(s, i));
        lua_seti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "hidden");
    return 1;
}

/* net:output_shape({N, ...}) -> {N, ...} */
static int m_output_shape(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int64_t in[SL_MAX_DIMS], out[SL_MAX_DIMS];
    int ndim = (int)luaL_len(L, 2), out_ndim = 0;
    if (ndim < 1 || ndim > SL_MAX_DIMS)
        return luaL_error(L, "output_shape: an input shape has 1..%d extents, got %d",
                          SL_MAX_DIMS, ndim);
    for (int i = 0; i < ndim; i++) {
        lua_geti(L, 2, i + 1);
        in[i] = luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    slua_check(L, sl_model_output_shape(m, ndim, in, &out_ndim, out));
    lua_createtable(L, out_ndim, 0);
    for (int i = 0; i < out_ndim; i++) {
        lua_pushinteger(L, out[i]);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int m_save(lua_State *L)
{
    slua_check(L, sl_model_save(slua_check_model(L, 1), luaL_checkstring(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_load(lua_State *L)
{
    slua_check(L, sl_model_load(slua_check_model(L, 1), luaL_checkstring(L, 2)));
    lua_settop(L, 1);
    return 1;
}

/* net:reset([seed]): re-initialises every parameter. */
static int m_reset(lua_State *L)
{
    sl_model *m = slua_check_model(L, 1);
    slua_check(L, sl_model_reset_parameters(m, slua_opt_seed(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_len(lua_State *L)
{
    lua_pushinteger(L, sl_model_nmodules(slua_check_model(L, 1)));
    return 1;
}

/* Adds ", weight [256, 784]" for every parameter of module `index`. */
static void add_module_params(luaL_Buffer *b, sl_model *m, int index)
{
    int shown = 0;
    for (int i = 0; i < sl_model_nparams(m); i++) {
        const char *name = sl_model_param_name(m, i);
        char *dot;
        if (strtol(name, &dot, 10) != index || *dot != '.')
            continue;
        const sl_tensor *t = sl_model_param(m, i);
        char shape[128];
        sl_shape_str(t->ndim, t->shape, shape, sizeof shape);
        luaL_addstring(b, shown++ ? ", " : ": ");
        luaL_addstring(b, dot + 1);
        luaL_addchar(b, ' ');
        luaL_addstring(b, shape);
    }
}

/* One line for the model, then one per module with its parameters' shapes. */
static int m_tostring(lua_State *L)
{
    slua_model *u = to_model(L, 1);
    if (u->m == NULL) {
        lua_pushliteral(L, "model (closed)");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "sequential(%s, %I parameters)", sl_dtype_name(sl_model_dtype(u->m)),
                    (lua_Integer)sl_model_numel(u->m));
    luaL_addvalue(&b);
    for (int i = 0; i < sl_model_nmodules(u->m); i++) {
        lua_pushfstring(L, "\n  (%d) %s", i, sl_module_type_of(sl_model_module(u->m, i))->name);
        luaL_addvalue(&b);
        add_module_params(&b, u->m, i);
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg model_methods[] = {
    {"forward", m_forward},       {"backward", m_backward},     {"zero_grad", m_zero_grad},
    {"train", m_train},           {"eval", m_eval},             {"training", m_training},
    {"parameters", m_parameters}, {"param", m_param},           {"grad", m_grad},
    {"buffers", m_buffers},       {"flat_params", m_flat_params}, {"flat_grads", m_flat_grads},
    {"numel", m_numel},           {"dtype", m_dtype},           {"modules", m_modules},
    {"structure", m_structure},
    {"output_shape", m_output_shape}, {"save", m_save},         {"load", m_load},
    {"reset", m_reset},           {"close", model_close},       {NULL, NULL}};

static const luaL_Reg model_meta[] = {{"__gc", model_gc},   {"__close", model_close},
                                      {"__len", m_len},        {"__tostring", m_tostring},
                                      {NULL, NULL}};

void slua_open_nn(lua_State *L)
{
    slua_new_class(L, SLUA_MODEL, model_methods, model_meta);
    luaL_newmetatable(L, SLUA_LAYER);
    lua_pushcfunction(L, layer_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {
        {"sequential", l_sequential}, {"residual", l_residual}, {"relax", slua_nn_relax},
        {NULL, NULL}};
    slua_push_kind_table(L, SL_KIND_MODULE, l_layer, funcs);
}

/* ---- losses ------------------------------------------------------------------------------- */

/* sl.loss.<name>(pred, target[, want_grad]) -> value[, grad] */
static int l_loss(lua_State *L)
{
    const sl_loss_type *type = sl_registry_find(SL_KIND_LOSS, lua_tostring(L, lua_upvalueindex(1)));
    if (type == NULL)
        return slua_fail(L);
    sl_tensor *p = slua_check_tensor(L, 1), *t = slua_check_tensor(L, 2);
    bool want_grad = lua_toboolean(L, 3);
    lua_settop(L, 2);
    const sl_tensor *pred, *target; /* losses want contiguous inputs */
    slua_push_converted(L, p, p->dtype, &pred);
    slua_push_converted(L, t, t->dtype, &target);
    sl_tensor *grad = NULL;
    if (want_grad) {
        grad = slua_new_tensor(L);
        slua_tensor_alloc(L, grad, pred->dtype, pred->ndim, pred->shape);
    }
    double value;
    slua_check(L, type->forward(pred, target, &value, grad));
    lua_pushnumber(L, value);
    if (!want_grad)
        return 1;
    lua_insert(L, -2);
    return 2;
}

void slua_open_loss(lua_State *L) { slua_push_kind_table(L, SL_KIND_LOSS, l_loss, NULL); }
