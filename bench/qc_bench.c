/* bench/qc_bench.c — time one cost evaluation of issue 6's quantum benchmark.
 *
 * Circuit (from |0..0>, f64): 4 layers, each = for every qubit i: RY(theta),
 * amplitude damping (gamma = 0.01) on i, RZ(phi), damping on i; then
 * CNOT(i, i+1) for i = 0..n-2, each followed by damping on both qubits.
 * Cost <sum_i Z_i>.  For n = 6, 8, 10, 12 (or those given on the command
 * line) and 1 and 2 threads, prints the median time of one evaluation, the
 * number of passes over rho, and the bytes of rho moved per second (each
 * pass reads and writes 16 * 4^n bytes) next to a STREAM-style copy
 * bandwidth measured here (memcpy of 256 MiB; read + write bytes counted),
 * and whether the 1- and 2-thread costs are bit-identical.
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

/* Copy bandwidth (bytes read + written per second), median of 7 copies. */
static double copy_bandwidth(void)
{
    const size_t bytes = (size_t)256 << 20;
    char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double t[7];
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        memcpy(r % 2 ? a : b, r % 2 ? b : a, bytes);
        t[r] = now() - t0;
    }
    free(a);
    free(b);
    return 2.0 * (double)bytes / median(t, 7);
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
    double bw = copy_bandwidth();
    printf("copy bandwidth (memcpy 256 MiB, read+write): %.2f GB/s\n\n", bw / 1e9);
    printf("%3s %7s %6s %12s %10s %12s %10s\n", "n", "threads", "passes", "seconds", "cost",
           "rho GB/s", "of copy");
    for (int k = 0; k < count; k++) {
        const int n = ns[k];
        qc_sim sim;
        if (build(n, &sim) != SL_OK) {
            fprintf(stderr, "qc_bench: %s\n", sl_last_error());
            return 1;
        }
        double theta[4096];
        for (int p = 0; p < sim.circ.nparams; p++)
            theta[p] = 0.1 * (p % 17) - 0.8;
        const int reps = n <= 8 ? 9 : n <= 10 ? 5 : 3;
        /* interleave thread counts: 1 2 1 2 ..., one warm-up each */
        double t[2][16], cost = 0, cost_th[2] = {0, 0};
        for (int r = -1; r < reps; r++)
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
        for (int th = 1; th <= 2; th++) {
            double sec = median(t[th - 1], reps);
            double bytes = 2.0 * 16.0 * (double)((int64_t)1 << (2 * n)) * sim.plan.npasses;
            printf("%3d %7d %6d %12.6f %10.6f %12.2f %9.0f%%\n", n, th, sim.plan.npasses, sec,
                   cost, bytes / sec / 1e9, 100.0 * bytes / sec / bw);
        }
        /* Each block is computed the same way whichever thread runs it: exact. */
        printf("    1 vs 2 threads: cost %s\n",
               memcmp(&cost_th[0], &cost_th[1], sizeof cost) == 0 ? "bit-identical"
                                                                  : "DIFFERS");
        qc_sim_free(&sim);
    }
    return 0;
}
