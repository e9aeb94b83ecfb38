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
 * Waiting: a worker with nothing to take polls the ticket for SPIN_NS
 * (long enough to catch the next loop of a training step: waking a
 * sleeping thread costs tens of microseconds on a virtual machine, as much
 * as a small loop; short enough not to hold a busy machine's core), then
 * sleeps on the `gen` word (futex on Linux, a condition variable
 * elsewhere).  The caller waits for `done` the same way.  Both sleep
 * protocols are "announce, re-check, sleep" with sequentially consistent
 * atomics, so a wake-up is never lost.
 *
 * A busy machine: when another process holds the second core, a worker
 * can be descheduled for a whole scheduler slice (milliseconds) while it
 * holds a part, and the caller waits for it.  The caller tells this from
 * a worker that is merely running a part by the clock: it times its own
 * parts, and a wait longer than two of them (plus LATE_NS) is late; so is
 * a loop longer than UNUSED_NS that no worker took a part of.
 * After a late loop the caller runs every loop alone for `penalty`
 * nanoseconds, starting at PENALTY_MIN_NS and doubling while lateness
 * recurs (a late loop within PENALTY_WINDOW penalties of the last), up to
 * PENALTY_MAX_NS; a late loop after a quiet spell starts over.  An idle
 * machine never triggers it, so both cores work; a contended one pays
 * one slice per penalty at most.  (Counting polls instead of nanoseconds,
 * as this pool first did, mistook a worker running a long part for a
 * late one and left the second core idle on an idle machine.)
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "internal.h"

/* Polling: for SPIN_NS, reading the clock every SPIN_CHECK polls.  With
 * 4000 polls (~100 µs on the Zen 5 machine) the 784-256-256-10 MLP ran
 * 3-5 % slower on 2 threads than on 1 at batch 16-64, the worker asleep
 * at most loops; with ~500 µs it runs 1.0-1.2x faster. */
#define SPIN_NS 500000LL
#define SPIN_CHECK 64
/* With several threads a loop has up to this many parts per thread: a
 * worker that shares its core with another process (and so runs at half
 * speed, or not at all for a while) then holds up the loop by one small
 * part at most, while the caller takes the rest. */
#define PARTS_PER_THREAD 4
/* Lateness (see the top of this file).  LATE_NS, 500 µs: on an idle
 * 2-core virtual machine a worker's 10 µs part was seen to finish 40-130
 * µs after the caller's, while a worker the scheduler preempts is gone
 * for a slice (>= 0.75 ms, usually 3 ms).  With 20 µs, every second update
 * loop of the 784-256-256-10 MLP at batch 16 counted as late and the
 * penalty grew to 256 ms on an idle machine. */
#define LATE_NS 500000LL
#define PENALTY_MIN_NS 1000000LL     /* 1 ms */
#define PENALTY_MAX_NS 256000000LL   /* 256 ms */
#define PENALTY_WINDOW 4
/* A loop that no worker helped with although it ran longer than this:
 * no worker is getting a core; treated as late.  (A shorter loop finished
 * before a sleeping worker could wake, which says nothing.) */
#define UNUSED_NS 200000LL
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
    int64_t alone_until;       /* the caller runs loops alone until then (now_ns) */
    int64_t penalty;           /* the last lateness penalty, ns */
    int64_t last_late;         /* when it was given */
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

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The caller found a worker late at time `now`: run alone for a while. */
static void penalise(int64_t now)
{
    bool recurring = P.penalty > 0 && now - P.last_late < PENALTY_WINDOW * P.penalty;
    P.penalty = !recurring ? PENALTY_MIN_NS
                : 2 * P.penalty < PENALTY_MAX_NS ? 2 * P.penalty : PENALTY_MAX_NS;
    P.last_late = now;
    P.alone_until = now + P.penalty;
}

/* A worker's part was due by *late_at (0: not judged): penalise once,
 * the first time the caller sees the clock past it. */
static void judge(int64_t *late_at, int64_t now)
{
    if (*late_at && now > *late_at) {
        penalise(now);
        *late_at = 0;
    }
}

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
    int64_t most = P.threads > 1 ? (int64_t)P.threads * PARTS_PER_THREAD : 1;
    most = most < MAX_PARTS ? most : MAX_PARTS;
    return parts < most ? (int)parts : (int)most;
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
 * no longer current.  Returns how many it ran. */
static int take_parts(uint64_t t)
{
    int ran = 0;
    for (;;) {
        if (T_NEXT(t) >= T_PARTS(t))
            return ran;
        if (!atomic_compare_exchange_weak(&P.ticket, &t, t + 1))
            continue; /* t now holds the current ticket */
        run_part(P.fn, P.ctx, P.n, T_PARTS(t), T_NEXT(t));
        ran++;
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
        int64_t until = now_ns() + SPIN_NS;
        for (int spins = 1; !has_work(t = atomic_load(&P.ticket)) && !atomic_load(&P.stop);
             spins++) {
            if (spins % SPIN_CHECK == 0 && now_ns() > until)
                break;
            cpu_relax();
        }
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
    int64_t start = now_ns();
    if (start < P.alone_until) {
        for (int p = 0; p < parts; p++)
            run_part(fn, ctx, n, parts, p);
        atomic_flag_clear(&P.busy);
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
    int mine = take_parts(atomic_load(&P.ticket));
    in_loop = false;
    /* Late: waiting longer than two of the caller's own parts took.  A
     * caller that took no part has no yardstick and never judges. */
    int64_t own_end = mine > 0 ? now_ns() : 0;
    int64_t late_at = 0;
    if (mine == parts) {
        if (own_end - start > UNUSED_NS)
            penalise(own_end);
    } else if (mine > 0) {
        late_at = own_end + 2 * (own_end - start) / mine + LATE_NS;
    }
    uint32_t d;
    int64_t until = now_ns() + SPIN_NS;
    bool spin = true;
    for (int spins = 1; (d = atomic_load(&P.done)) != (uint32_t)parts; spins++) {
        if (spins % SPIN_CHECK == 0) {
            int64_t t = now_ns();
            judge(&late_at, t);
            spin = t <= until;
        }
        if (spin) {
            cpu_relax();
            continue;
        }
        atomic_store(&P.caller_asleep, 1);
        if ((d = atomic_load(&P.done)) != (uint32_t)parts)
            sleep_while(&P.done, d);
        atomic_store(&P.caller_asleep, 0);
        judge(&late_at, now_ns());
    }
    atomic_flag_clear(&P.busy);
}
