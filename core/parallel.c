/* core/parallel.c — the thread pool behind sl_parallel_for (symlab/parallel.h).
 *
 * One job at a time.  The caller publishes a job by storing a new `ticket`:
 * a 64-bit word holding the job's generation, its part count and the next
 * part to take.  Every thread (workers and the caller) takes parts with a
 * compare-and-swap on the ticket, so a part is taken once, by whoever is
 * free first, and a claim made against an old generation fails.  The job's
 * fields (fn, ctx, n) are written before the ticket is published and not
 * again until every part has finished, so a thread holding a claim reads
 * them safely.  `done` counts finished parts; the caller returns when it
 * reaches the part count.
 *
 * Waiting: a worker with nothing to take spins SPIN_ROUNDS polls of the
 * ticket (a few microseconds: long enough to catch the next loop of a
 * training step, short enough not to steal a busy machine's core), then
 * sleeps on the `gen` word (futex on Linux, a condition variable
 * elsewhere).  The caller waits for `done` the same way.  Both sleep
 * protocols are "announce, re-check, sleep" with sequentially consistent
 * atomics, so a wake-up is never lost.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "internal.h"

#define SPIN_ROUNDS 4000
#define MAX_PARTS 0xffff /* parts live in 16 bits of the ticket */

/* ticket = gen << 32 | parts << 16 | next */
#define T_GEN(t) ((uint32_t)((t) >> 32))
#define T_PARTS(t) ((int)(((t) >> 16) & 0xffff))
#define T_NEXT(t) ((int)((t) & 0xffff))

typedef struct pool {
    int threads;      /* sl_get_threads(): parts per loop at most */
    int nworkers;     /* worker threads running (threads - 1 once started) */
    pthread_t *tid;
    _Atomic uint64_t ticket;
    _Atomic uint32_t gen;      /* the generation workers sleep on */
    _Atomic int sleepers;      /* workers asleep (or about to be) on gen */
    _Atomic uint32_t done;     /* parts of the current job finished */
    _Atomic int caller_asleep; /* the caller sleeps on done */
    _Atomic bool stop;
    atomic_flag busy;          /* a loop is running */
    /* The current job: written only by the caller, between jobs. */
    sl_parallel_fn fn;
    void *ctx;
    int64_t n;
#ifndef __linux__
    pthread_mutex_t lock;
    pthread_cond_t cond;
#endif
} pool;

static pool P = {.threads = 1,
                 .busy = ATOMIC_FLAG_INIT
#ifndef __linux__
                 ,
                 .lock = PTHREAD_MUTEX_INITIALIZER,
                 .cond = PTHREAD_COND_INITIALIZER
#endif
};

/* Set in worker threads and while the caller runs a part: a nested loop
 * runs inline. */
static _Thread_local bool in_loop;

/* ---- sleeping and waking ---------------------------------------------- */

#ifdef __linux__
static void sleep_while(_Atomic uint32_t *word, uint32_t value)
{
    syscall(SYS_futex, (void *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}
static void wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (void *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
static void sleep_while(_Atomic uint32_t *word, uint32_t value)
{
    pthread_mutex_lock(&P.lock);
    while (atomic_load(word) == value)
        pthread_cond_wait(&P.cond, &P.lock);
    pthread_mutex_unlock(&P.lock);
}
static void wake_all(_Atomic uint32_t *word)
{
    (void)word;
    pthread_mutex_lock(&P.lock);
    pthread_cond_broadcast(&P.cond);
    pthread_mutex_unlock(&P.lock);
}
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- parts ------------------------------------------------------------ */

int sl_parallel_parts(int64_t n, int64_t grain)
{
    if (n <= 0)
        return 0;
    if (grain < 1)
        grain = 1;
    int64_t by_size = n / grain;
    int64_t parts = by_size < 1 ? 1 : by_size;
    int threads = P.threads < MAX_PARTS ? P.threads : MAX_PARTS;
    return parts < threads ? (int)parts : threads;
}

/* Start of part p of n items in `parts` parts: floor(p n / parts) without
 * overflow. */
static int64_t part_begin(int64_t n, int parts, int p)
{
    return (int64_t)p * (n / parts) + ((int64_t)p * (n % parts)) / parts;
}

static void run_part(sl_parallel_fn fn, void *ctx, int64_t n, int parts, int p)
{
    fn(ctx, part_begin(n, parts, p), part_begin(n, parts, p + 1), p);
}

/* Takes and runs parts of the job in `t` until none is left or the job is
 * no longer current.  Returns whether it ran any. */
static bool take_parts(uint64_t t)
{
    bool ran = false;
    for (;;) {
        if (T_NEXT(t) >= T_PARTS(t))
            return ran;
        if (!atomic_compare_exchange_weak(&P.ticket, &t, t + 1))
            continue; /* t now holds the current ticket */
        run_part(P.fn, P.ctx, P.n, T_PARTS(t), T_NEXT(t));
        ran = true;
        int parts = T_PARTS(t);
        if (atomic_fetch_add(&P.done, 1) + 1 == (uint32_t)parts && atomic_load(&P.caller_asleep))
            wake_all(&P.done);
        t = atomic_load(&P.ticket);
    }
}

static bool has_work(uint64_t t) { return T_NEXT(t) < T_PARTS(t); }

static void *worker_main(void *arg)
{
    (void)arg;
    in_loop = true;
    while (!atomic_load(&P.stop)) {
        uint64_t t = atomic_load(&P.ticket);
        if (take_parts(t))
            continue;
        int spins = 0;
        while (!has_work(t = atomic_load(&P.ticket)) && !atomic_load(&P.stop) &&
               spins++ < SPIN_ROUNDS)
            cpu_relax();
        if (has_work(t) || atomic_load(&P.stop))
            continue;
        uint32_t g = atomic_load(&P.gen);
        atomic_fetch_add(&P.sleepers, 1);
        if (!has_work(atomic_load(&P.ticket)) && !atomic_load(&P.stop))
            sleep_while(&P.gen, g);
        atomic_fetch_sub(&P.sleepers, 1);
    }
    return NULL;
}

/* ---- starting and stopping workers ------------------------------------ */

static void stop_workers(void)
{
    if (P.nworkers == 0)
        return;
    atomic_store(&P.stop, true);
    atomic_fetch_add(&P.gen, 1);
    wake_all(&P.gen);
    for (int i = 0; i < P.nworkers; i++)
        pthread_join(P.tid[i], NULL);
    free(P.tid);
    P.tid = NULL;
    P.nworkers = 0;
    atomic_store(&P.stop, false);
}

/* Starts threads - 1 workers; on failure keeps the ones that started
 * (parts do not depend on how many threads run them). */
static void start_workers(void)
{
    int want = P.threads - 1;
    P.tid = calloc((size_t)want, sizeof *P.tid);
    if (!P.tid)
        return;
    while (P.nworkers < want && pthread_create(&P.tid[P.nworkers], NULL, worker_main, NULL) == 0)
        P.nworkers++;
}

/* A forked child has no workers: forget the parent's. */
static void after_fork_child(void)
{
    free(P.tid);
    P.tid = NULL;
    P.nworkers = 0;
    atomic_store(&P.sleepers, 0);
    atomic_flag_clear(&P.busy);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void register_fork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

void sl_pool_set_threads(int n)
{
    if (n == P.threads)
        return;
    stop_workers();
    P.threads = n;
}

int sl_pool_threads(void) { return P.threads; }

/* Joins the workers when libsymlab is unloaded or the process exits, so
 * that leak checkers see no thread stacks. */
__attribute__((destructor)) static void pool_fini(void) { stop_workers(); }

/* ---- the loop --------------------------------------------------------- */

void sl_parallel_for(int64_t n, int64_t grain, sl_parallel_fn fn, void *ctx)
{
    int parts = sl_parallel_parts(n, grain);
    if (parts <= 1) {
        if (parts == 1)
            fn(ctx, 0, n, 0);
        return;
    }
    if (in_loop || atomic_flag_test_and_set(&P.busy)) {
        for (int p = 0; p < parts; p++)
            run_part(fn, ctx, n, parts, p);
        return;
    }
    if (P.nworkers == 0 && P.tid == NULL) {
        pthread_once(&fork_once, register_fork);
        start_workers();
    }
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    atomic_store(&P.done, 0);
    uint64_t gen = (uint64_t)(T_GEN(atomic_load(&P.ticket)) + 1u);
    atomic_store(&P.ticket, gen << 32 | (uint64_t)parts << 16);
    atomic_fetch_add(&P.gen, 1);
    if (atomic_load(&P.sleepers) > 0)
        wake_all(&P.gen);
    in_loop = true;
    take_parts(atomic_load(&P.ticket));
    in_loop = false;
    uint32_t d;
    int spins = 0;
    while ((d = atomic_load(&P.done)) != (uint32_t)parts) {
        if (spins++ < SPIN_ROUNDS) {
            cpu_relax();
            continue;
        }
        atomic_store(&P.caller_asleep, 1);
        if ((d = atomic_load(&P.done)) != (uint32_t)parts)
            sleep_while(&P.done, d);
        atomic_store(&P.caller_asleep, 0);
    }
    atomic_flag_clear(&P.busy);
}
