/* plugins/qcircuit/density.c — rho storage and in-place passes over it.
 *
 * rho is two f64 arrays (split real/imaginary storage, see qc.h).  A
 * k-qubit superoperator touches rho in independent blocks of D = 4^k
 * entries (the rows and columns that differ only in the k qubits).  A pass
 * gathers QC_TILE blocks into a (2D x QC_TILE) tile, multiplies it by the
 * real 2D x 2D form of S (vectorised axpys skipping zeros), and scatters the
 * result back: each entry of rho is read once and written once per pass,
 * and nothing bigger than a tile is ever allocated (no
 * 4^n x 4^n matrices, no second copy of rho).
 *
 * Blocks are independent, so a pass splits its block range over threads
 * (sl_get_threads()) with each thread owning its own tile: the result does
 * not depend on the split, hence is bit-identical for any thread count.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qc.h"

int qc_rho_alloc(qc_rho *rho, int n)
{
    memset(rho, 0, sizeof *rho);
    if (n < 1 || n > QC_MAX_QUBITS)
        return sl_error(SL_EINVAL, "qcircuit: n_qubits must be in [1, %d], got %d",
                        QC_MAX_QUBITS, n);
    size_t count = (size_t)1 << (2 * n);
    size_t bytes = count * sizeof(double);
    bytes = (bytes + SL_ALIGNMENT - 1) / SL_ALIGNMENT * SL_ALIGNMENT;
    rho->re = aligned_alloc(SL_ALIGNMENT, bytes);
    rho->im = aligned_alloc(SL_ALIGNMENT, bytes);
    if (!rho->re || !rho->im) {
        qc_rho_free(rho);
        return sl_error(SL_ENOMEM, "qcircuit: cannot allocate rho for %d qubits (%zu bytes)",
                        n, 2 * bytes);
    }
    rho->n = n;
    rho->dim = (int64_t)1 << n;
    return SL_OK;
}

void qc_rho_free(qc_rho *rho)
{
    free(rho->re);
    free(rho->im);
    memset(rho, 0, sizeof *rho);
}

void qc_rho_zero_state(qc_rho *rho)
{
    size_t count = (size_t)(rho->dim * rho->dim);
    memset(rho->re, 0, count * sizeof(double));
    memset(rho->im, 0, count * sizeof(double));
    rho->re[0] = 1.0;
}

void qc_rho_copy(qc_rho *dst, const qc_rho *src)
{
    size_t count = (size_t)(src->dim * src->dim);
    memcpy(dst->re, src->re, count * sizeof(double));
    memcpy(dst->im, src->im, count * sizeof(double));
}

/* Tiles for `threads` threads; grow-only, so a steady state allocates nothing. */
static int work_reserve(qc_work *w, int threads)
{
    size_t bytes = 32 * QC_TILE * sizeof(double);
    for (int i = 0; i < threads; i++) {
        if (w->in[i])
            continue;
        w->in[i] = aligned_alloc(SL_ALIGNMENT, bytes);
        w->out[i] = aligned_alloc(SL_ALIGNMENT, bytes);
        if (!w->in[i] || !w->out[i]) {
            free(w->in[i]);
            free(w->out[i]);
            w->in[i] = w->out[i] = NULL;
            return sl_error(SL_ENOMEM, "qcircuit: out of memory for a pass tile");
        }
        memset(w->in[i], 0, bytes); /* a partial tile computes on defined values */
    }
    return SL_OK;
}

int qc_work_alloc(qc_work *w)
{
    memset(w, 0, sizeof *w);
    return work_reserve(w, 1);
}

void qc_work_free(qc_work *w)
{
    for (int i = 0; i < QC_MAX_THREADS; i++) {
        free(w->in[i]);
        free(w->out[i]);
        w->in[i] = w->out[i] = NULL;
    }
}

/* ---- superoperator passes ------------------------------------------------ */

/* What one pass needs, shared by the threads that run parts of it. */
typedef struct pass_geom {
    qc_rho *rho;
    int d2;                 /* D = 4^k entries per block */
    int npos;               /* 2k bit positions cleared in a block's base index */
    int pos[4];             /* ascending */
    int64_t off[16];        /* offset of local entry (r, c) from the base */
    const double *m;        /* 2D x 2D real matrix */
} pass_geom;

/* Index of block `b`: b with zero bits inserted at the cleared positions. */
static inline int64_t block_base(const pass_geom *g, int64_t b)
{
    for (int i = 0; i < g->npos; i++) {
        int p = g->pos[i];
        int64_t low = b & (((int64_t)1 << p) - 1);
        b = ((b >> p) << (p + 1)) | low;
    }
    return b;
}

/* out = m in for a (dd x dd) real matrix and dd x QC_TILE tiles, as rows of
 * axpys over the whole tile: the constant trip count vectorises, zeros of m
 * (sparse channels, permutations) are skipped, and no BLAS call means no
 * BLAS threads inside our own threads.  Columns past the blocks in use
 * hold stale values and are never scattered back. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* An AVX2 clone chosen at load time where the CPU has it (no FMA, so the
 * same numbers as the default clone: ISO C mode does not contract a*b+c). */
#define QC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QC_CLONES
#endif
/* The trip count must be a constant for GCC -O2 to vectorise, hence one
 * version per width: the full tile, and 16 columns for small passes. */
#define DEFINE_TILE_APPLY(NAME, TN)                                                     \
    QC_CLONES static void NAME(const double *m, int dd, const double *restrict in,      \
                               double *restrict out)                                    \
    {                                                                                   \
        for (int i = 0; i < dd; i++) {                                                  \
            double *restrict o = out + (size_t)i * QC_TILE;                             \
            for (int t = 0; t < (TN); t++)                                              \
                o[t] = 0.0;                                                             \
            for (int j = 0; j < dd; j++) {                                              \
                const double v = m[i * dd + j];                                         \
                if (v == 0.0)                                                           \
                    continue;                                                           \
                const double *restrict x = in + (size_t)j * QC_TILE;                    \
                for (int t = 0; t < (TN); t++)                                          \
                    o[t] += v * x[t];                                                   \
            }                                                                           \
        }                                                                               \
    }
DEFINE_TILE_APPLY(tile_apply_full, QC_TILE)
DEFINE_TILE_APPLY(tile_apply_16, 16)

/* Blocks [b0, b1) through the tiles in/out. */
static void pass_range(const pass_geom *g, int64_t b0, int64_t b1, double *in, double *out)
{
    const int d2 = g->d2;
    double *re = g->rho->re, *im = g->rho->im;
    for (int64_t b = b0; b < b1; b += QC_TILE) {
        int t_n = (int)(b1 - b < QC_TILE ? b1 - b : QC_TILE);
        for (int t = 0; t < t_n; t++) {
            int64_t base = block_base(g, b + t);
            for (int l = 0; l < d2; l++) {
                in[l * QC_TILE + t] = re[base + g->off[l]];
                in[(d2 + l) * QC_TILE + t] = im[base + g->off[l]];
            }
        }
        if (t_n <= 16) /* small passes do not pay for a full tile */
            tile_apply_16(g->m, 2 * d2, in, out);
        else
            tile_apply_full(g->m, 2 * d2, in, out);
        for (int t = 0; t < t_n; t++) {
            int64_t base = block_base(g, b + t);
            for (int l = 0; l < d2; l++) {
                re[base + g->off[l]] = out[l * QC_TILE + t];
                im[base + g->off[l]] = out[(d2 + l) * QC_TILE + t];
            }
        }
    }
}

typedef struct pass_job {
    const pass_geom *g;
    int64_t b0, b1;
    double *in, *out;
} pass_job;

static void *pass_thread(void *arg)
{
    pass_job *job = arg;
    pass_range(job->g, job->b0, job->b1, job->in, job->out);
    return NULL;
}

/* Below this many blocks a second thread costs more than it saves. */
#define QC_THREAD_MIN_BLOCKS 4096

static void pass_run(const pass_geom *g, int64_t nblocks, qc_work *w)
{
    int threads = sl_get_threads();
    if (threads > QC_MAX_THREADS)
        threads = QC_MAX_THREADS;
    if (threads < 2 || nblocks < QC_THREAD_MIN_BLOCKS || work_reserve(w, threads) != SL_OK) {
        pass_range(g, 0, nblocks, w->in[0], w->out[0]);
        return;
    }
    /* The caller's thread runs the first share; the others get a thread
     * each.  A share whose thread cannot start runs here afterwards: the
     * result is the same either way. */
    pthread_t tid[QC_MAX_THREADS];
    pass_job job[QC_MAX_THREADS];
    bool started[QC_MAX_THREADS] = {false};
    for (int i = 0; i < threads; i++) {
        job[i] = (pass_job){g, nblocks * i / threads, nblocks * (i + 1) / threads, w->in[i],
                            w->out[i]};
        if (i > 0)
            started[i] = pthread_create(&tid[i], NULL, pass_thread, &job[i]) == 0;
    }
    pass_thread(&job[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            pass_thread(&job[i]);
    }
}

void qc_apply_super(qc_rho *rho, int k, const int *q, const double complex *s, qc_work *w)
{
    const int n = rho->n, d = 1 << k, d2 = d * d;
    pass_geom g = {.rho = rho, .d2 = d2, .npos = 2 * k, .m = w->m};
    for (int j = 0; j < k; j++) {
        g.pos[2 * j] = q[j];
        g.pos[2 * j + 1] = n + q[j];
    }
    for (int i = 1; i < g.npos; i++) /* insertion sort of <= 4 positions */
        for (int j = i; j > 0 && g.pos[j - 1] > g.pos[j]; j--) {
            int t = g.pos[j];
            g.pos[j] = g.pos[j - 1];
            g.pos[j - 1] = t;
        }
    for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++) {
            int64_t o = 0;
            for (int j = 0; j < k; j++) {
                if (r >> j & 1)
                    o += (int64_t)1 << (n + q[j]);
                if (c >> j & 1)
                    o += (int64_t)1 << q[j];
            }
            g.off[r * d + c] = o;
        }
    /* Real form of the complex product: [Re; Im] <- [[A, -B], [B, A]] [Re; Im]. */
    for (int i = 0; i < d2; i++)
        for (int j = 0; j < d2; j++) {
            double a = creal(s[i * d2 + j]), b = cimag(s[i * d2 + j]);
            w->m[i * 2 * d2 + j] = a;
            w->m[i * 2 * d2 + d2 + j] = -b;
            w->m[(d2 + i) * 2 * d2 + j] = b;
            w->m[(d2 + i) * 2 * d2 + d2 + j] = a;
        }
    int64_t nblocks = (int64_t)1 << (2 * (n - k));
    pass_run(&g, nblocks, w);
}

/* ---- Pauli strings --------------------------------------------------------- */

/* P|y> = ph(y) |y ^ x> with ph(y) = i^{#Y} (-1)^{popcount(y & z)}. */
static inline double complex pauli_phase(uint64_t y, uint64_t x, uint64_t z)
{
    static const double complex ipow[4] = {1.0, I, -1.0, -I};
    int e = __builtin_popcountll(x & z) + 2 * (__builtin_popcountll(y & z) & 1);
    return ipow[e & 3];
}

static inline double complex rho_get(const qc_rho *rho, int64_t r, int64_t c)
{
    int64_t i = r * rho->dim + c;
    return CMPLX(rho->re[i], rho->im[i]);
}

static inline void rho_put(qc_rho *rho, int64_t r, int64_t c, double complex v)
{
    int64_t i = r * rho->dim + c;
    rho->re[i] = creal(v);
    rho->im[i] = cimag(v);
}

/* rho <- U rho with U = c I - i s P (rows), then rho <- rho U^dagger (columns).
 * Rows r and r ^ x mix, so each pair is updated together. */
void qc_apply_pauli_rotation(qc_rho *rho, uint64_t x, uint64_t z, double theta)
{
    const double c = cos(theta / 2), s = sin(theta / 2);
    const int64_t dim = rho->dim;
    for (int64_t r = 0; r < dim; r++) {
        int64_t r2 = r ^ (int64_t)x;
        if (r2 < r)
            continue;
        double complex a = -I * s * pauli_phase((uint64_t)r2, x, z); /* U[r][r2] */
        double complex b = -I * s * pauli_phase((uint64_t)r, x, z);  /* U[r2][r] */
        for (int64_t col = 0; col < dim; col++) {
            double complex v = rho_get(rho, r, col), v2 = rho_get(rho, r2, col);
            if (r2 == r) {
                rho_put(rho, r, col, (c + a) * v);
            } else {
                rho_put(rho, r, col, c * v + a * v2);
                rho_put(rho, r2, col, b * v + c * v2);
            }
        }
    }
    for (int64_t col = 0; col < dim; col++) {
        int64_t c2 = col ^ (int64_t)x;
        if (c2 < col)
            continue;
        /* (rho U^dagger)[., col] = sum_y rho[., y] conj(U[col][y]) */
        double complex a = conj(-I * s * pauli_phase((uint64_t)c2, x, z)); /* conj U[col][c2] */
        double complex b = conj(-I * s * pauli_phase((uint64_t)col, x, z)); /* conj U[c2][col] */
        for (int64_t r = 0; r < dim; r++) {
            double complex v = rho_get(rho, r, col), v2 = rho_get(rho, r, c2);
            if (c2 == col) {
                rho_put(rho, r, col, (c + a) * v);
            } else {
                rho_put(rho, r, col, c * v + a * v2);
                rho_put(rho, r, c2, b * v + c * v2);
            }
        }
    }
}

/* (P rho P)[r][c] = ph(r^x) conj(ph(c^x)) rho[r^x][c^x]: a signed permutation. */
void qc_apply_pauli(qc_rho *rho, uint64_t x, uint64_t z)
{
    const int64_t dim = rho->dim;
    for (int64_t r = 0; r < dim; r++)
        for (int64_t col = 0; col < dim; col++) {
            int64_t r2 = r ^ (int64_t)x, c2 = col ^ (int64_t)x;
            if (r2 * dim + c2 < r * dim + col)
                continue; /* pair already swapped */
            double complex f = pauli_phase((uint64_t)r2, x, z) *
                               conj(pauli_phase((uint64_t)c2, x, z));
            double complex g = pauli_phase((uint64_t)r, x, z) *
                               conj(pauli_phase((uint64_t)col, x, z));
            double complex v = rho_get(rho, r, col), v2 = rho_get(rho, r2, c2);
            rho_put(rho, r, col, f * v2);
            if (r2 != r || c2 != col)
                rho_put(rho, r2, c2, g * v);
        }
}

/* Tr(P rho) = sum_y (P rho)[y][y] = sum_y ph(y ^ x) rho[y ^ x][y]. */
double complex qc_trace_pauli(const qc_rho *rho, uint64_t x, uint64_t z)
{
    double sr = 0, si = 0;
    for (int64_t y = 0; y < rho->dim; y++) {
        int64_t y2 = y ^ (int64_t)x;
        double complex v = pauli_phase((uint64_t)y2, x, z) * rho_get(rho, y2, y);
        sr += creal(v);
        si += cimag(v);
    }
    return CMPLX(sr, si);
}

double complex qc_trace(const qc_rho *rho) { return qc_trace_pauli(rho, 0, 0); }

double complex qc_inner(const qc_rho *a, const qc_rho *b)
{
    const int64_t count = a->dim * a->dim;
    double sr = 0, si = 0;
    for (int64_t i = 0; i < count; i++) {
        sr += a->re[i] * b->re[i] + a->im[i] * b->im[i];
        si += a->re[i] * b->im[i] - a->im[i] * b->re[i];
    }
    return CMPLX(sr, si);
}
