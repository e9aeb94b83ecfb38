/* bench/gemm_floor.c — the GEMM floor of one MLP training step.
 *
 *   gemm_floor [--threads N] [--reps R] [--samples S] SIZES BATCH...
 *   gemm_floor --threads 1 784,256,256,10 16 64 256
 *
 * For every linear layer (in -> out) of the MLP SIZES it runs exactly the
 * GEMMs symlab's linear layer issues, with the same shapes and transposes,
 * through the same wrapper (sl_sgemm):
 *   forward   y (B, out)    = x (B, in) @ W^T           (every layer)
 *   backward  gW (out, in) += gy^T (out, B) @ x (B, in)  (every layer)
 *             gx (B, in)    = gy (B, out) @ W (out, in)  (all but the first:
 *                                                          the input needs none)
 * and nothing else: no bias, activation, loss, optimizer or data movement.
 * This is what a step costs if everything but the matrix products were free.
 *
 * A second floor adds the one pass over memory that any trainer with a
 * separate optimizer step must make: momentum SGD over every weight (read
 * W, gW and the momentum, write W and the momentum; 20 bytes per float
 * parameter), as a plain vectorised loop.
 *
 * Prints one line per batch size: `gemm sizes=... batch=B threads=N
 * us_step=U gflops=G us_step_sgd=V` where U (GEMMs) and V (GEMMs + update)
 * are medians over R repetitions, interleaved, of the mean over
 * ceil(S / B) steps. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <symlab/symlab.h>

enum { MAX_LAYERS = 16, MAX_REPS = 101 };

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 64-byte aligned like symlab's tensors, filled with small non-zero values
 * (denormals or zeros could make some kernels take other paths). */
static float *matrix(int64_t n)
{
    size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "gemm_floor: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((i % 17) - 8) * 0.01f;
    return p;
}

typedef struct net {
    int nlayers;
    int64_t size[MAX_LAYERS + 1];
    float *act[MAX_LAYERS + 1], *gact[MAX_LAYERS + 1];  /* (B, size[i]) */
    float *w[MAX_LAYERS], *gw[MAX_LAYERS], *mom[MAX_LAYERS]; /* (size[i+1], size[i]) */
    float lr;                                           /* 0: see sgd_pass */
} net;

static void one_step(net *n, int64_t b)
{
    for (int l = 0; l < n->nlayers; l++) {
        int64_t in = n->size[l], out = n->size[l + 1];
        sl_sgemm(false, true, b, out, in, 1.0f, n->act[l], in, n->w[l], in, 0.0f,
                 n->act[l + 1], out);
    }
    for (int l = n->nlayers - 1; l >= 0; l--) {
        int64_t in = n->size[l], out = n->size[l + 1];
        sl_sgemm(true, false, out, in, b, 1.0f, n->gact[l + 1], out, n->act[l], in, 1.0f,
                 n->gw[l], in);
        if (l > 0)
            sl_sgemm(false, false, b, in, out, 1.0f, n->gact[l + 1], out, n->w[l], in, 0.0f,
                     n->gact[l], in);
    }
}

/* b = 0.9 b + g; p -= lr b, in float, vectorised as symlab's optimizer is
 * (restrict arguments, clones for AVX-512 and AVX2).  The caller passes
 * lr = 0 through a variable, so the weights keep their values and the
 * GEMMs their speed while the loop still reads and writes every byte (the
 * compiler cannot drop p - 0 * b without -ffast-math). */
static __attribute__((noinline, target_clones("avx512f", "avx2", "default"))) void
sgd_pass(float *restrict p, float *restrict mom, const float *restrict g, int64_t n, float lr)
{
    /* A head of whole 16-float vectors: GCC's -O2 cost model vectorises
     * only a loop that needs no scalar epilogue. */
    int64_t i = 0, head = n & ~(int64_t)15;
    for (; i < head; i++) {
        float b = 0.9f * mom[i] + g[i];
        mom[i] = b;
        p[i] = p[i] - lr * b;
    }
    for (; i < n; i++) {
        float b = 0.9f * mom[i] + g[i];
        mom[i] = b;
        p[i] = p[i] - lr * b;
    }
}

static void one_step_sgd(net *n, int64_t b)
{
    one_step(n, b);
    for (int l = 0; l < n->nlayers; l++)
        sgd_pass(n->w[l], n->mom[l], n->gw[l], n->size[l + 1] * n->size[l], n->lr);
}

/* Mean seconds per step over `steps` steps of `step`. */
static double time_steps(void (*step)(net *, int64_t), net *n, int64_t b, int64_t steps)
{
    double t0 = now_seconds();
    for (int64_t i = 0; i < steps; i++)
        step(n, b);
    return (now_seconds() - t0) / (double)steps;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double flops_per_step(const net *n, int64_t b)
{
    double f = 0;
    for (int l = 0; l < n->nlayers; l++)
        f += 2.0 * (double)b * (double)n->size[l] * (double)n->size[l + 1] * (l > 0 ? 3 : 2);
    return f;
}

static void run(net *n, int64_t b, int reps, int64_t samples, int threads, const char *sizes)
{
    for (int l = 0; l <= n->nlayers; l++) {
        n->act[l] = matrix(b * n->size[l]);
        n->gact[l] = matrix(b * n->size[l]);
    }
    int64_t steps = (samples + b - 1) / b;
    double t[MAX_REPS], tu[MAX_REPS];
    for (int i = 0; i < steps / 4 + 1; i++) /* warm caches and OpenBLAS's threads */
        one_step_sgd(n, b);
    for (int r = 0; r < reps; r++) {
        t[r] = time_steps(one_step, n, b, steps);
        tu[r] = time_steps(one_step_sgd, n, b, steps);
    }
    qsort(t, (size_t)reps, sizeof *t, compare_double);
    qsort(tu, (size_t)reps, sizeof *tu, compare_double);
    double med = t[reps / 2];
    printf("gemm sizes=%s batch=%lld threads=%d us_step=%.1f gflops=%.1f us_step_sgd=%.1f\n",
           sizes, (long long)b, threads, med * 1e6, flops_per_step(n, b) / med * 1e-9,
           tu[reps / 2] * 1e6);
    fflush(stdout);
    for (int l = 0; l <= n->nlayers; l++) {
        free(n->act[l]);
        free(n->gact[l]);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: gemm_floor [--threads N] [--reps R] [--samples S] SIZES BATCH...\n"
                    "  e.g. gemm_floor 784,256,256,10 16 64 256\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5, i = 1;
    int64_t samples = 8192;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--samples") == 0)
            samples = atoll(argv[i + 1]);
        else
            return usage();
    }
    if (i + 1 >= argc || threads < 1 || reps < 1 || reps > MAX_REPS || samples < 1)
        return usage();
    const char *sizes = argv[i++];
    net n = {0};
    char *copy = strdup(sizes), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n.nlayers > MAX_LAYERS || atoll(tok) < 1)
            return usage();
        n.size[n.nlayers++] = atoll(tok);
    }
    free(copy);
    if (--n.nlayers < 1) /* counted sizes; layers are one fewer */
        return usage();
    sl_set_threads(threads);
    for (int l = 0; l < n.nlayers; l++) {
        n.w[l] = matrix(n.size[l + 1] * n.size[l]);
        n.gw[l] = matrix(n.size[l + 1] * n.size[l]);
        n.mom[l] = matrix(n.size[l + 1] * n.size[l]);
    }
    for (; i < argc; i++) {
        int64_t b = atoll(argv[i]);
        if (b < 1)
            return usage();
        run(&n, b, reps, samples, threads, sizes);
    }
    for (int l = 0; l < n.nlayers; l++) {
        free(n.w[l]);
        free(n.gw[l]);
        free(n.mom[l]);
    }
    return 0;
}
