/* bench/qc_bench.c — time one cost evaluation of issue 6's quantum benchmark.
 *
 * Circuit (from |0..0>, f64): 4 layers, each = for every qubit i: RY(theta),
 * amplitude damping (gamma = 0.01) on i, RZ(phi), damping on i; then
 * CNOT(i, i+1) for i = 0..n-2, each followed by damping on both qubits.
 * Cost <sum_i Z_i>.  For n = 6, 8, 10, 12 (or those given on the command
 * line) and 1 and 2 threads, prints the median time of one evaluation, the
 * passes of the plan and the stages (sweeps over rho) they are grouped
 * into, the bytes of rho actually moved per second (a stage on tiles
 * reads the tiles of half of rho and writes all of it, the first stage
 * reads nothing; a stage on a rho that is one tile sweeps it once per
 * pass, reading and writing all of it) next to a copy bandwidth
 * (memcpy of 2 x 16 * 4^n bytes, at least 64 MiB, read + write bytes
 * counted) measured in the same rounds: copy, 1 thread, 2 threads, copy,
 * ... so that load on a shared machine hits all three alike.  Last: whether
 * the 1- and 2-thread costs are bit-identical.
 *
 *   make bench/qc_bench && ./bench/qc_bench [n ...]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qc.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Seconds of one memcpy of `bytes` between a and b. */
static double copy_seconds(char *a, char *b, size_t bytes)
{
    double t0 = now();
    memcpy(a, b, bytes);
    return now() - t0;
}

/* Bytes of rho read and written by one evaluation (see the header). */
static double moved_bytes(const qc_sim *sim)
{
    const int n = sim->circ.n, m = qc_tile_qubits(n);
    const double rho = 16.0 * (double)((int64_t)1 << (2 * n));
    const double tiles = (double)((int64_t)1 << (n - m));
    const double half = (tiles + 1) / (2 * tiles); /* tiles with R <= C */
    double bytes = 0;
    for (int i = 0; i < sim->plan.nstages; i++) {
        const qc_stage *st = &sim->plan.stages[i];
        if (sim->plan.passes[sim->plan.order[st->first]].k == 0 || m == n)
            bytes += 2 * rho * st->count + (i == 0 ? rho : 0.0); /* + the zero state */
        else
            bytes += rho * (1 + (i == 0 ? 0.0 : half));
    }
    return bytes;
}

static int build(int n, qc_sim *sim)
{
    size_t cap = 4 * 2 * 100 * (size_t)n + 256; /* < 100 characters per line */
    char *text = malloc(cap);
    if (!text)
        return sl_error(SL_ENOMEM, "qc_bench: out of memory");
    size_t at = 0;
    for (int l = 0; l < 4; l++) {
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(text + at, cap - at,
                                   "ry %d; amplitude_damping %d 0.01; rz %d; "
                                   "amplitude_damping %d 0.01\n", i, i, i, i);
        for (int i = 0; i + 1 < n; i++)
            at += (size_t)snprintf(text + at, cap - at,
                                   "cnot %d %d; amplitude_damping %d 0.01; "
                                   "amplitude_damping %d 0.01\n", i, i + 1, i, i + 1);
    }
    qc_circuit c;
    qc_observable o;
    qc_circuit_init(&c, n);
    qc_obs_init(&o, n);
    int rc = qc_circuit_parse(&c, text);
    free(text);
    for (int i = 0; i < n && rc == SL_OK; i++)
        rc = qc_obs_add(&o, 1.0, 0, (uint64_t)1 << i);
    if (rc != SL_OK) {
        qc_circuit_free(&c);
        qc_obs_free(&o);
        return rc;
    }
    return qc_sim_init(sim, &c, &o, QC_GRAD_SHIFT);
}

int main(int argc, char **argv)
{
    int ns[16] = {6, 8, 10, 12}, count = 4;
    if (argc > 1) {
        count = 0;
        for (int i = 1; i < argc && count < 16; i++)
            ns[count++] = atoi(argv[i]);
    }
    printf("%3s %7s %6s %6s %12s %10s %12s %10s %10s\n", "n", "threads", "passes", "sweeps",
           "seconds", "cost", "rho GB/s", "copy GB/s", "of copy");
    for (int k = 0; k < count; k++) {
        const int n = ns[k];
        qc_sim sim;
        if (build(n, &sim) != SL_OK) {
            fprintf(stderr, "qc_bench: %s\n", sl_last_error());
            return 1;
        }
        size_t cbytes = (size_t)32 << (2 * n);
        if (cbytes < (size_t)64 << 20)
            cbytes = (size_t)64 << 20;
        char *ca = malloc(cbytes), *cb = malloc(cbytes);
        if (!ca || !cb) {
            fprintf(stderr, "qc_bench: out of memory for the copy buffers\n");
            return 1;
        }
        memset(ca, 1, cbytes);
        memset(cb, 2, cbytes);
        double theta[4096];
        for (int p = 0; p < sim.circ.nparams; p++)
            theta[p] = 0.1 * (p % 17) - 0.8;
        const int reps = n <= 8 ? 9 : n <= 10 ? 5 : 3;
        /* rounds of copy, 1 thread, 2 threads; one warm-up round */
        double t[2][16], tc[16], cost = 0, cost_th[2] = {0, 0};
        for (int r = -1; r < reps; r++) {
            double c = copy_seconds(r % 2 ? ca : cb, r % 2 ? cb : ca, cbytes);
            if (r >= 0)
                tc[r] = c;
            for (int th = 1; th <= 2; th++) {
                sl_set_threads(th);
                double t0 = now();
                if (qc_sim_cost(&sim, theta, &cost) != SL_OK) {
                    fprintf(stderr, "qc_bench: %s\n", sl_last_error());
                    return 1;
                }
                if (r >= 0)
                    t[th - 1][r] = now() - t0;
                cost_th[th - 1] = cost;
            }
        }
        const double bw = 2.0 * (double)cbytes / median(tc, reps);
        const double bytes = moved_bytes(&sim);
        double sec[2];
        for (int th = 1; th <= 2; th++) {
            sec[th - 1] = median(t[th - 1], reps);
            printf("%3d %7d %6d %6d %12.6f %10.6f %12.2f %10.2f %9.0f%%\n", n, th,
                   sim.plan.npasses, sim.plan.nstages, sec[th - 1], cost,
                   bytes / sec[th - 1] / 1e9, bw / 1e9, 100.0 * bytes / sec[th - 1] / bw);
        }
        /* Each tile is computed the same way whichever thread runs it: exact. */
        printf("    2 threads / 1 thread: %.2fx faster; cost %s\n", sec[0] / sec[1],
               memcmp(&cost_th[0], &cost_th[1], sizeof cost) == 0 ? "bit-identical"
                                                                  : "DIFFERS");
        free(ca);
        free(cb);
        qc_sim_free(&sim);
    }
    return 0;
}
