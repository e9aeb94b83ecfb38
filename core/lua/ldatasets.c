/* core/lua/ldatasets.c — datasets by name in sl.data (load, get, list,
 * root, cifar10) and the download progress bar the host draws.
 *
 * libsymlab reports download progress through a callback and never prints;
 * here that callback either draws a bar on stderr or calls a Lua function.
 * A Lua error inside that function must not unwind through libcurl, so it
 * is caught (slua_pcall), the download is cancelled, and the error is raised
 * again once the library has returned and cleaned up.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua/lsymlab.h"

/* ---- the progress bar ----------------------------------------------------------- */

void slua_bar_init(slua_bar *b, FILE *out)
{
    *b = (slua_bar){.out = out, .last = -1};
}

static void human(char *buf, size_t n, int64_t bytes)
{
    if (bytes < 0)
        snprintf(buf, n, "?");
    else if (bytes < 1000000)
        snprintf(buf, n, "%.1f kB", (double)bytes / 1e3);
    else
        snprintf(buf, n, "%.1f MB", (double)bytes / 1e6);
}

int slua_bar_progress(void *ud, const char *file, int64_t done, int64_t total)
{
    slua_bar *b = ud;
    enum { WIDTH = 30 };
    if (strncmp(b->file, file, sizeof b->file - 1) != 0) { /* a new file */
        snprintf(b->file, sizeof b->file, "%s", file);
        b->last = -1;
        b->finished = false;
    }
    /* Redraw only when the percentage (or, with the total unknown, the
     * megabyte) changes: libcurl reports often, and repeats the end. */
    int64_t mark = total > 0 ? 100 * done / total : done >> 20;
    if (b->finished || (mark == b->last && done != total))
        return 0;
    b->last = mark;
    b->finished = done == total;
    int filled = total > 0 ? (int)(WIDTH * done / total) : 0;
    char bar[WIDTH + 1], have[32], all[32];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[WIDTH] = '\0';
    human(have, sizeof have, done);
    human(all, sizeof all, total);
    fprintf(b->out, "\r%s [%s] %s / %s\033[K%s", file, bar, have, all, b->finished ? "\n" : "");
    fflush(b->out);
    return 0;
}

/* ---- options and progress from Lua ----------------------------------------------- */

/* What a call's options table gives; strings stay anchored in that table. */
typedef struct fetch_args {
    lua_State *L;
    sl_data_source src;
    int fn;         /* stack index of a progress function, or 0 */
    slua_bar bar;
    bool failed;    /* the Lua progress function raised an error (on the stack) */
} fetch_args;

static int lua_progress(void *ud, const char *file, int64_t done, int64_t total)
{
    fetch_args *a = ud;
    lua_State *L = a->L;
    lua_pushvalue(L, a->fn);
    lua_pushstring(L, file);
    lua_pushinteger(L, (lua_Integer)done);
    lua_pushinteger(L, (lua_Integer)total);
    if (slua_pcall(L, 3, 0) != LUA_OK) {
        a->failed = true; /* the error value stays on the stack */
        return 1;
    }
    return 0;
}

static int bar_progress(void *ud, const char *file, int64_t done, int64_t total)
{
    return slua_bar_progress(&((fetch_args *)ud)->bar, file, done, total);
}

static const char *opt_string(lua_State *L, int t, const char *key)
{
    const char *s = NULL;
    int type = lua_getfield(L, t, key);
    if (type == LUA_TSTRING)
        s = lua_tostring(L, -1); /* anchored in the options table */
    else if (type != LUA_TNIL)
        luaL_error(L, "data: option '%s' must be a string, got %s", key, luaL_typename(L, -1));
    lua_pop(L, 1);
    return s;
}

/* Reads {root=, mirror=, manifest=, progress=} at index t (may be absent)
 * into a, leaving a progress function, if any, at a->fn. */
static void fetch_options(lua_State *L, int t, fetch_args *a)
{
    *a = (fetch_args){.L = L};
    slua_bar_init(&a->bar, stderr);
    a->src.progress = isatty(STDERR_FILENO) ? bar_progress : NULL;
    a->src.ud = a;
    if (lua_isnoneornil(L, t))
        return;
    luaL_checktype(L, t, LUA_TTABLE);
    static const char *const known[] = {"root", "mirror", "manifest", "progress", "split", NULL};
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        int i = 0;
        while (k && known[i] && strcmp(k, known[i]) != 0)
            i++;
        if (!k || !known[i])
            luaL_error(L, "data: unknown option '%s' (root, mirror, manifest, progress, split)",
                       luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
    a->src.root = opt_string(L, t, "root");
    a->src.mirror = opt_string(L, t, "mirror");
    a->src.manifest = opt_string(L, t, "manifest");
    int type = lua_getfield(L, t, "progress");
    if (type == LUA_TFUNCTION) {
        a->fn = lua_gettop(L); /* stays on the stack for the call */
        a->src.progress = lua_progress;
        return;
    }
    const char *p = type == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (type != LUA_TNIL && !(p && (strcmp(p, "auto") == 0 || strcmp(p, "always") == 0 ||
                                    strcmp(p, "never") == 0)))
        luaL_error(L, "data: option 'progress' must be \"auto\", \"always\", \"never\" or a "
                      "function(file, done, total)");
    if (p && strcmp(p, "always") == 0)
        a->src.progress = bar_progress;
    else if (p && strcmp(p, "never") == 0)
        a->src.progress = NULL;
    lua_pop(L, 1);
}

/* sl_data_fetch with the error of a Lua progress function taking precedence. */
static char *fetch(lua_State *L, const char *name, fetch_args *a)
{
    char *dir = NULL;
    int rc = sl_data_fetch(name, &a->src, &dir);
    if (a->failed)
        lua_error(L); /* the progress function's own error, still on the stack */
    slua_check(L, rc);
    return dir;
}

/* Pushes one split's dataset (split given) or {train = ds, test = ds}, each
 * read by read(a, b, split, out). */
typedef int (*split_reader)(const char *a, const char *b, const char *split, sl_dataset *out);

static int push_splits(lua_State *L, split_reader read, const char *a, const char *b,
                       const char *split)
{
    if (split) {
        slua_check(L, read(a, b, split, slua_new_dataset(L)));
        return 1;
    }
    lua_createtable(L, 0, 2);
    static const char *const splits[] = {"train", "test"};
    for (int i = 0; i < 2; i++) {
        slua_check(L, read(a, b, splits[i], slua_new_dataset(L)));
        lua_setfield(L, -2, splits[i]);
    }
    return 1;
}

static void free_dir(void *p) { free(p); }

/* sl.data.get(name, [opts]) -> the folder holding the dataset's files. */
static int l_get(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    fetch_args a;
    fetch_options(L, 2, &a);
    char *dir = fetch(L, name, &a);
    lua_pushstring(L, dir);
    free(dir);
    return 1;
}

/* sl.data.load(name, [opts]) -> {train = ds, test = ds}, or one dataset
 * with opts.split. */
static int l_load(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    const char *split = lua_istable(L, 2) ? opt_string(L, 2, "split") : NULL;
    if (split && strcmp(split, "train") != 0 && strcmp(split, "test") != 0)
        return luaL_error(L, "%s: unknown split '%s' (train or test)", name, split);
    fetch_args a;
    fetch_options(L, 2, &a);
    void **slot = slua_box(L, NULL, free_dir); /* frees dir if a read fails */
    *slot = fetch(L, name, &a);
    return push_splits(L, sl_data_read, name, *slot, split);
}

/* sl.data.root([opts]) -> the cache directory. */
static int l_root(lua_State *L)
{
    fetch_args a;
    fetch_options(L, 1, &a);
    char *root = NULL;
    slua_check(L, sl_data_root(&a.src, &root));
    lua_pushstring(L, root);
    free(root);
    return 1;
}

/* sl.data.list() -> {{name=, format=, url=, summary=, files={{name=, sha256=, size=}}}, ...} */
static int l_list(lua_State *L)
{
    int n = sl_data_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        const sl_data_entry *e = sl_data_at(i);
        lua_createtable(L, 0, 5);
        lua_pushstring(L, e->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, e->format);
        lua_setfield(L, -2, "format");
        lua_pushstring(L, e->url); /* nil for a shipped dataset */
        lua_setfield(L, -2, "url");
        lua_pushstring(L, e->summary);
        lua_setfield(L, -2, "summary");
        lua_createtable(L, e->nfiles, 0);
        for (int k = 0; k < e->nfiles; k++) {
            lua_createtable(L, 0, 3);
            lua_pushstring(L, e->files[k].name);
            lua_setfield(L, -2, "name");
            lua_pushstring(L, e->files[k].sha256);
            lua_setfield(L, -2, "sha256");
            lua_pushinteger(L, (lua_Integer)e->files[k].size);
            lua_setfield(L, -2, "size");
            lua_seti(L, -2, k + 1);
        }
        lua_setfield(L, -2, "files");
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int read_cifar10(const char *path, const char *unused, const char *split,
                        sl_dataset *out)
{
    (void)unused;
    return sl_dataset_cifar10(path, split, out);
}

/* sl.data.cifar10(path) -> {train = ds, test = ds}; sl.data.cifar10(path, split) -> ds */
static int l_cifar10(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *split = luaL_optstring(L, 2, NULL);
    return push_splits(L, read_cifar10, path, NULL, split);
}

/* sl.data.sha256(path) -> 64 hex digits. */
static int l_sha256(lua_State *L)
{
    char hex[65];
    slua_check(L, sl_sha256_file(luaL_checkstring(L, 1), hex));
    lua_pushstring(L, hex);
    return 1;
}

/* sl.data.download_supported() -> whether downloads and hashes work here.
 * A function, not a field: answering loads the download module, which
 * `require "symlab"` must not pay for (core/download/download.h). */
static int l_download_supported(lua_State *L)
{
    lua_pushboolean(L, sl_download_supported());
    return 1;
}

void slua_open_datasets(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"load", l_load},
                                     {"get", l_get},
                                     {"root", l_root},
                                     {"list", l_list},
                                     {"cifar10", l_cifar10},
                                     {"sha256", l_sha256},
                                     {"download_supported", l_download_supported},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
