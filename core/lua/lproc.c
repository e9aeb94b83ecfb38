/* core/lua/lproc.c — sl.proc: the little process control that sweeps
 * (scripts/lib/symlab/sweep.lua) need from C and Lua cannot do itself:
 * which task a launcher asked for, starting this executable again and
 * waiting for it, and whether the progress line goes to a terminal.
 *
 *   sl.proc.task([text]) -> first, stride, source     (nil, message on bad input;
 *                                                      nil when nothing names a task)
 *   sl.proc.spawn(args, log) -> pid    runs this executable with args (a list of
 *                                      strings), stdout and stderr to the file log
 *   sl.proc.wait() -> pid, how, code   waits for any child; how is "exit" or "signal"
 *   sl.proc.isatty(fd) -> boolean
 *   sl.proc.pid() -> this process's id
 *   sl.proc.exe                        the path spawn runs
 *
 * symlab links no MPI: under mpirun it only reads the rank and world size
 * the launcher puts in the environment.
 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lsymlab.h"

/* Where a task index comes from, in the order they are tried.  A rank
 * variable runs tasks rank, rank + size, ...; the others name one task. */
typedef struct task_source {
    const char *var;
    long long base;       /* subtracted: GNU parallel counts from 1 */
    const char *size_vars[3]; /* where a rank's world size is, first found wins */
} task_source;

/* PMIx itself exports no world size: its launchers (OpenMPI, srun) do. */
static const task_source sources[] = {
    {"SLURM_ARRAY_TASK_ID", 0, {NULL}},
    {"OMPI_COMM_WORLD_RANK", 0, {"OMPI_COMM_WORLD_SIZE"}},
    {"PMI_RANK", 0, {"PMI_SIZE"}},
    {"PMIX_RANK", 0, {"OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"}},
    {"PARALLEL_SEQ", 1, {NULL}},
};

/* The first of a rank's size variables that is set, or NULL. */
static const char *world_size(const task_source *s, const char **var)
{
    for (int i = 0; i < 3 && s->size_vars[i]; i++) {
        const char *v = getenv(s->size_vars[i]);
        if (v) {
            *var = s->size_vars[i];
            return v;
        }
    }
    *var = s->size_vars[0];
    return NULL;
}

/* A decimal integer >= lo making up the whole text. */
static bool whole_int(const char *text, long long lo, long long *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end != '\0' || v < lo)
        return false;
    *out = v;
    return true;
}

static int bad_index(lua_State *L, const char *what, const char *text, const char *expected)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: expected %s, got '%s'", what, expected, text);
    return 2;
}

static int l_task(lua_State *L)
{
    long long v, size;
    const char *given = luaL_optstring(L, 1, NULL);
    if (given) {
        if (!whole_int(given, 0, &v))
            return bad_index(L, "--task", given, "a non-negative integer");
        lua_pushinteger(L, (lua_Integer)v);
        lua_pushinteger(L, 0);
        lua_pushliteral(L, "--task");
        return 3;
    }
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        const task_source *s = &sources[i];
        const char *text = getenv(s->var);
        if (text == NULL)
            continue;
        if (!whole_int(text, s->base, &v))
            return bad_index(L, s->var, text, s->base ? "a positive integer" : "a non-negative integer");
        size = 0;
        if (s->size_vars[0]) {
            const char *var, *st = world_size(s, &var);
            if (st == NULL || !whole_int(st, v + 1, &size))
                return bad_index(L, var, st ? st : "", "the world size (> the rank)");
        }
        lua_pushinteger(L, (lua_Integer)(v - s->base));
        lua_pushinteger(L, (lua_Integer)size);
        lua_pushstring(L, s->var);
        return 3;
    }
    lua_pushnil(L);
    return 1;
}

/* The path of this executable: /proc/self/exe where there is one (the
 * libtool wrapper of the build tree exports the library path, so its
 * children find the same libsymlab), else argv[0] as the host gave it. */
static void push_exe(lua_State *L)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        lua_pushlstring(L, buf, (size_t)n);
        return;
    }
    lua_pushstring(L, slua_config_string(L, "argv0"));
}

static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *log = luaL_checkstring(L, 2);
    lua_getfield(L, lua_upvalueindex(1), "exe");
    const char *exe = luaL_checkstring(L, -1);
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 0 && n < 4096, 1, "too many arguments");
    /* Everything the child needs is made before fork: after it, the child
     * only calls dup2, execvp, write and _exit. */
    const char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 2), 0);
    argv[0] = exe;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        argv[i] = lua_tostring(L, -1);
        luaL_argcheck(L, argv[i] != NULL, 1, "arguments must be strings");
        lua_pop(L, 1); /* still anchored in the table at 1 */
    }
    argv[n + 1] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return luaL_error(L, "cannot write %s: %s", log, strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        static const char msg[] = "symlab: cannot run this executable again (exec failed)\n";
        if (dup2(fd, 1) >= 0 && dup2(fd, 2) >= 0)
            execvp(exe, (char *const *)argv);
        if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */
        }
        _exit(127);
    }
    int err = errno;
    close(fd);
    if (pid < 0)
        return luaL_error(L, "cannot start a task process: %s", strerror(err));
    lua_pushinteger(L, (lua_Integer)pid);
    return 1;
}

static int l_wait(lua_State *L)
{
    int status;
    pid_t pid;
    do
        pid = waitpid(-1, &status, 0);
    while (pid < 0 && errno == EINTR);
    if (pid < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)pid);
    if (WIFSIGNALED(status)) {
        lua_pushliteral(L, "signal");
        lua_pushinteger(L, WTERMSIG(status));
    } else {
        lua_pushliteral(L, "exit");
        lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    }
    return 3;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

void slua_open_proc(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"task", l_task}, {"wait", l_wait}, {"isatty", l_isatty}, {"pid", l_pid}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    push_exe(L);
    lua_setfield(L, -2, "exe");
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_spawn, 1);
    lua_setfield(L, -2, "spawn");
}
