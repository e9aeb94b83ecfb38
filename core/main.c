/* core/main.c — the symlab executable: runs Lua experiment scripts, lists
 * and describes what the registry holds.
 *
 *   symlab [--threads N] [--seed N] SCRIPT.lua [args...]
 *   symlab [options] plugins
 *   symlab [options] describe NAME
 *   symlab [options] data list|get NAME...|root
 *   symlab [options] sweep run|task|slurm|gather|status ...   (docs/sweeps.md)
 *   symlab --help | --version
 *
 * Exit status: 0 on success, 1 when a script or command fails, 2 for a bad
 * command line.  Every failure is one line on stderr starting "symlab: ".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "datacmd.h"
#include "lua/lsymlab.h"

#define EXIT_USAGE 2

typedef struct cli {
    int threads;       /* 0: library default */
    uint64_t seed;
    int first;         /* index in argv of the command or script */
} cli;

static void usage(FILE *f)
{
    fputs("usage: symlab [options] SCRIPT.lua [args...]\n"
          "       symlab [options] plugins\n"
          "       symlab [options] describe NAME\n"
          "       symlab [options] data list|get NAME...|root   (datasets by name)\n"
          "       symlab [options] sweep COMMAND ...  (run, task, slurm, gather, status;\n"
          "                                        `symlab sweep help`)\n"
          "\n"
          "Runs a Lua experiment script (`local sl = require \"symlab\"`), lists the\n"
          "techniques found (built-in and plugins), or describes one's options.\n"
          "\n"
          "options:\n"
          "  --threads N   threads for BLAS and symlab's loops (sl.threads)\n"
          "  --seed N      default seed of models and training (sl.seed; default 1)\n"
          "  --help        this text\n"
          "  --version     version and plugin ABI\n"
          "\n"
          "environment:\n"
          "  SYMLAB_PLUGIN_PATH  colon-separated directories searched for plugins first\n"
          "  SYMLAB_TRACEBACK=1  print a Lua traceback after a script error\n"
          "  SLURM_CPUS_PER_TASK the default of --threads when set\n",
          f);
}

/* "symlab: --threads: expected a positive integer, got 'x'" */
static int bad_value(const char *option, const char *expected, const char *value)
{
    if (value)
        fprintf(stderr, "symlab: %s: expected %s, got '%s'\n", option, expected, value);
    else
        fprintf(stderr, "symlab: %s: expected %s, got nothing\n", option, expected);
    return EXIT_USAGE;
}

/* Parses a decimal integer in [lo, hi]; false unless the whole text is one. */
static bool parse_int(const char *text, long long lo, long long hi, long long *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The value of `--name V` or `--name=V` at argv[*i], advancing *i. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

static bool is_option(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Returns -1 to go on, else the exit status. */
static int parse_cli(int argc, char **argv, cli *c)
{
    *c = (cli){.seed = 1};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *a = argv[i];
        long long v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            printf("symlab %s (plugin ABI %d.%d)\n", SL_VERSION_STRING, (int)SL_ABI_MAJOR,
                   (int)SL_ABI_MINOR);
            return 0;
        } else if (is_option(a, "--threads")) {
            const char *val = option_value(argc, argv, &i, "--threads");
            if (!parse_int(val, 1, 4096, &v))
                return bad_value("--threads", "a positive integer", val);
            c->threads = (int)v;
        } else if (is_option(a, "--seed")) {
            const char *val = option_value(argc, argv, &i, "--seed");
            if (!parse_int(val, 0, LLONG_MAX, &v))
                return bad_value("--seed", "a non-negative integer", val);
            c->seed = (uint64_t)v;
        } else {
            fprintf(stderr, "symlab: unknown option '%s'; see `symlab --help`\n", a);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fputs("symlab: no script or command given\n", stderr); /* every error line has it */
        usage(stderr);
        return EXIT_USAGE;
    }
    /* A Slurm task's CPUs are its threads unless --threads says otherwise. */
    const char *cpus = getenv("SLURM_CPUS_PER_TASK");
    if (c->threads == 0 && cpus) {
        long long v;
        if (!parse_int(cpus, 1, 4096, &v))
            return bad_value("SLURM_CPUS_PER_TASK", "a positive integer", cpus);
        c->threads = (int)v;
    }
    c->first = i;
    return -1;
}

/* ---- commands ---------------------------------------------------------------------- */

static int max_width(int w, const char *s) { return (int)strlen(s) > w ? (int)strlen(s) : w; }

static int cmd_plugins(void)
{
    int n = sl_registry_count(), wk = 4, wn = 4, wp = 6;
    for (int i = 0; i < n; i++) {
        sl_registry_entry e;
        if (sl_registry_get(i, &e) < 0)
            continue;
        wk = max_width(wk, sl_kind_name(e.kind));
        wn = max_width(wn, e.name);
        wp = max_width(wp, e.plugin ? e.plugin->name : "?");
    }
    printf("%-*s  %-*s  %-*s  %-5s  %s\n", wk, "kind", wn, "name", wp, "plugin", "ABI", "file");
    for (int i = 0; i < n; i++) {
        sl_registry_entry e;
        if (sl_registry_get(i, &e) < 0)
            continue;
        char abi[32] = "?";
        if (e.plugin)
            snprintf(abi, sizeof abi, "%u.%u", (unsigned)e.plugin->abi_major,
                     (unsigned)e.plugin->abi_minor);
        printf("%-*s  %-*s  %-*s  %-5s  %s\n", wk, sl_kind_name(e.kind), wn, e.name, wp,
               e.plugin ? e.plugin->name : "?", abi, e.origin ? e.origin : "");
    }
    int nf = sl_registry_failure_count();
    if (nf > 0) {
        printf("\nnot loaded (%d):\n", nf);
        for (int i = 0; i < nf; i++)
            printf("  %s\n", sl_registry_failure(i));
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_describe(lua_State *L, int argc, char **argv, int first)
{
    if (first + 1 >= argc) {
        fputs("symlab: describe: which technique? (symlab describe NAME)\n", stderr);
        return EXIT_USAGE;
    }
    if (!slua_push_description(L, argv[first + 1])) {
        fprintf(stderr, "symlab: %s\n", sl_last_error());
        return 1;
    }
    fputs(lua_tostring(L, -1), stdout);
    lua_pop(L, 1);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- scripts ------------------------------------------------------------------------ */

/* package.path = "<luadir>/?.lua;<luadir>/?/init.lua;" .. package.path */
static void set_lua_path(lua_State *L, const char *luadir)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", luadir, luadir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/* The global `arg` as the standalone lua makes it: arg[0] the script,
 * arg[1..] its arguments, negative indices the program and options. */
static void set_arg(lua_State *L, int argc, char **argv, int script)
{
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_seti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int to_text(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* The error value on top of the stack as text (replacing it).  A non-string
 * error object is converted in protected mode: its __tostring may fail. */
static const char *error_text(lua_State *L)
{
    if (lua_type(L, -1) == LUA_TSTRING)
        return lua_tostring(L, -1);
    lua_pushcfunction(L, to_text);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushliteral(L, "(error object is not a string)");
    }
    return lua_tostring(L, -1);
}

static int report(lua_State *L)
{
    const char *msg = error_text(L);
    fprintf(stderr, "symlab: %s\n", msg);
    const char *tb = getenv("SYMLAB_TRACEBACK");
    if (tb && strcmp(tb, "1") == 0) {
        slua_push_traceback(L, msg);
        const char *text = lua_tostring(L, -1);
        const char *nl = text ? strchr(text, '\n') : NULL; /* first line repeats msg */
        fprintf(stderr, "%s\n", nl ? nl + 1 : "");
    }
    return 1;
}

/* Pushes argv[first + 1 ..] as the arguments of the function below them,
 * sets `arg` and calls the function; non-zero (reported) if it fails. */
static int call_with_args(lua_State *L, int argc, char **argv, int first, int nresults)
{
    set_arg(L, argc, argv, first);
    int nargs = argc - first - 1;
    luaL_checkstack(L, nargs + 2, "too many arguments");
    for (int i = first + 1; i < argc; i++)
        lua_pushstring(L, argv[i]);
    return slua_pcall(L, nargs, nresults) != LUA_OK ? report(L) : 0;
}

/* `symlab sweep ...`: the commands live in Lua (scripts/lib/symlab/sweep_cli.lua);
 * its main(args...) returns the exit status. */
static int cmd_sweep(lua_State *L, int argc, char **argv, int first)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "symlab.sweep_cli");
    if (slua_pcall(L, 1, 1) != LUA_OK)
        return report(L);
    lua_getfield(L, -1, "main");
    if (call_with_args(L, argc, argv, first, 1) != 0)
        return 1;
    int isnum;
    lua_Integer status = lua_tointegerx(L, -1, &isnum);
    return isnum && status >= 0 && status < 256 ? (int)status : 1;
}

static int run_script(lua_State *L, int argc, char **argv, int script)
{
    const char *path = argv[script];
    int rc = luaL_loadfile(L, strcmp(path, "-") == 0 ? NULL : path);
    if (rc != LUA_OK)
        return report(L);
    return call_with_args(L, argc, argv, script, 0);
}

int main(int argc, char **argv)
{
    cli c;
    int rc = parse_cli(argc, argv, &c);
    if (rc >= 0)
        return rc;
    if (c.threads > 0)
        sl_set_threads(c.threads);
    const char *cmd = argv[c.first];
    slua_config cfg = {.datadir = sl_path(SL_PATH_DATA),
                       .luadir = sl_path(SL_PATH_LUA),
                       .seed = c.seed,
                       .argv0 = argv[0]};

    if (sl_registry_init() < 0) {
        fprintf(stderr, "symlab: %s\n", sl_last_error());
        return 1;
    }
    if (strcmp(cmd, "plugins") == 0)
        return cmd_plugins();
    if (strcmp(cmd, "data") == 0)
        return symlab_cmd_data(argc - c.first, argv + c.first);

    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fputs("symlab: cannot create the Lua state: out of memory\n", stderr);
        return 1;
    }
    luaL_openlibs(L);
    set_lua_path(L, cfg.luadir);
    slua_preload(L, &cfg);
    if (strcmp(cmd, "describe") == 0)
        rc = cmd_describe(L, argc, argv, c.first);
    else if (strcmp(cmd, "sweep") == 0)
        rc = cmd_sweep(L, argc, argv, c.first);
    else
        rc = run_script(L, argc, argv, c.first);
    lua_close(L);
    return rc;
}
