/* plugins/qcircuit/density.c — rho storage and in-place passes over it.
 *
 * rho is two f64 arrays (split real/imaginary storage, see qc.h).  A
 * k-qubit superoperator touches rho in independent blocks of D = 4^k
 * entries (the rows and columns that differ only in the k qubits).  A pass
 * copies QC_W = 8 blocks at a time (a "chunk": D runs of 8 consecutive
 * columns when the pass's qubits are >= 3) into a small stack tile,
 * multiplies it by the real 2D x 2D form of S in registers, and copies it
 * back: each entry of rho is read once and written once per pass, nothing
 * is allocated, and memory is walked d rows at a time in whole cache lines.
 *
 * Blocks are independent, so a pass shares its row bases among threads
 * (sl_get_threads()): every block is computed the same way whoever runs
 * it, hence the result is bit-identical for any thread count.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
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

int qc_work_alloc(qc_work *w)
{
    memset(w, 0, sizeof *w);
    return SL_OK;
}

void qc_work_free(qc_work *w) { memset(w, 0, sizeof *w); }

/* ---- superoperator passes ------------------------------------------------ */

/* A pass walks rho by row bases (rows with the pass's qubit bits clear) and,
 * within the d rows of a row base, by chunks of QC_W consecutive column
 * bases.  A chunk is d * d local entries x QC_W blocks: when the lowest
 * qubit of the pass is >= 3 each of its d * d rows is one aligned run of 8
 * doubles (one cache line) of rho, so the pass streams whole lines from
 * d rows at a time instead of gathering single entries from all over. */
#define QC_W 8

/* GCC/Clang vector extension: the default clone lowers it to SSE2, the AVX2
 * clone to 256-bit registers; same operations, so the same bits. */
typedef double qc_v4 __attribute__((vector_size(32)));

/* Nonzero columns of each group of 4 rows of a pass matrix. */
typedef struct qc_nz {
    int n[8];
    uint8_t j[8][32];
} qc_nz;

/* What one pass needs, shared by the threads that run parts of it. */
typedef struct pass_geom {
    qc_rho *rho;
    int d2;                 /* d * d entries per block */
    int k;                  /* qubits of the pass */
    int q[2];               /* ascending */
    int64_t ncb;            /* column bases (= row bases) = 2^(n-k) */
    int64_t loc[16];        /* offset of local entry (lr, lc) from the block's base */
    int64_t colofs[QC_W];   /* column of base 8m + t minus that of 8m (independent of m) */
    bool contiguous;        /* colofs[t] == t: chunk rows are aligned runs */
    bool real;              /* S real: apply `a` to re and im separately */
    const double *m;        /* 2 d2 x 2 d2 real form of S */
    const double *a;        /* d2 x d2 real part of S */
    qc_nz nz;               /* of m, or of a when real */
} pass_geom;

/* x with zero bits inserted at the pass's qubit positions. */
static inline int64_t spread(const pass_geom *g, int64_t x)
{
    for (int i = 0; i < g->k; i++) {
        int p = g->q[i];
        x = ((x >> p) << (p + 1)) | (x & (((int64_t)1 << p) - 1));
    }
    return x;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* An AVX2 clone chosen at load time where the CPU has it (no FMA, so the
 * same numbers as the default clone: ISO C mode does not contract a*b+c). */
#define QC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QC_CLONES
#endif

/* out = m in, one copy per matrix size: density_chunk_generic.h. */
#define DD 32 /* 2-qubit, complex */
#define CHUNK_APPLY chunk_apply_32
#include "density_chunk_generic.h"
#define DD 16 /* 2-qubit real, or the halves of one */
#define CHUNK_APPLY chunk_apply_16
#include "density_chunk_generic.h"
#define DD 8 /* 1-qubit, complex */
#define CHUNK_APPLY chunk_apply_8
#include "density_chunk_generic.h"
#define DD 4 /* 1-qubit real */
#define CHUNK_APPLY chunk_apply_4
#include "density_chunk_generic.h"

static void chunk_apply(const pass_geom *g, const qc_v4 *in, qc_v4 *out)
{
    const int d2 = g->d2;
    if (g->real) { /* re and im rows are the two halves of the chunk */
        void (*f)(const double *, const qc_nz *, const qc_v4 *, qc_v4 *) =
            d2 == 16 ? chunk_apply_16 : chunk_apply_4;
        f(g->a, &g->nz, in, out);
        f(g->a, &g->nz, in + 2 * d2, out + 2 * d2);
    } else if (d2 == 16) {
        chunk_apply_32(g->m, &g->nz, in, out);
    } else {
        chunk_apply_8(g->m, &g->nz, in, out);
    }
}

/* Row bases [r0, r1): each chunk is copied into `in` (re rows, then im
 * rows), multiplied, and copied back.  Columns t >= ncb (tiny n only) are
 * padding: computed on zeros, never stored. */
static void pass_range(const pass_geom *g, int64_t r0, int64_t r1)
{
    const int d2 = g->d2;
    const int64_t dim = g->rho->dim;
    const int tn = g->ncb < QC_W ? (int)g->ncb : QC_W;
    double *restrict re = g->rho->re, *restrict im = g->rho->im;
    qc_v4 in[64], out[64];
    memset(in, 0, sizeof in);
    for (int64_t rb = r0; rb < r1; rb++) {
        const int64_t row = spread(g, rb) * dim;
        for (int64_t cb = 0; cb < g->ncb; cb += QC_W) {
            const int64_t base = row + spread(g, cb);
            double *pi = (double *)in, *po = (double *)out;
            if (g->contiguous) {
                for (int l = 0; l < d2; l++) {
                    memcpy(pi + l * QC_W, re + base + g->loc[l], QC_W * sizeof(double));
                    memcpy(pi + (d2 + l) * QC_W, im + base + g->loc[l], QC_W * sizeof(double));
                }
            } else {
                for (int l = 0; l < d2; l++)
                    for (int t = 0; t < tn; t++) {
                        pi[l * QC_W + t] = re[base + g->loc[l] + g->colofs[t]];
                        pi[(d2 + l) * QC_W + t] = im[base + g->loc[l] + g->colofs[t]];
                    }
            }
            chunk_apply(g, in, out);
            if (g->contiguous) {
                for (int l = 0; l < d2; l++) {
                    memcpy(re + base + g->loc[l], po + l * QC_W, QC_W * sizeof(double));
                    memcpy(im + base + g->loc[l], po + (d2 + l) * QC_W, QC_W * sizeof(double));
                }
            } else {
                for (int l = 0; l < d2; l++)
                    for (int t = 0; t < tn; t++) {
                        re[base + g->loc[l] + g->colofs[t]] = po[l * QC_W + t];
                        im[base + g->loc[l] + g->colofs[t]] = po[(d2 + l) * QC_W + t];
                    }
            }
        }
    }
}

/* Row bases are handed out in groups of QC_GROUP through an atomic
 * counter: a thread that the (shared, loaded) machine leaves waiting simply
 * claims fewer groups, so two threads are never held back by the slower
 * one.  Which thread computes a block does not change how it is computed,
 * so the result is still bit-identical for any thread count. */
#define QC_GROUP 8

typedef struct pass_job {
    const pass_geom *g;
    atomic_llong next;      /* first row base not yet claimed */
} pass_job;

static void *pass_thread(void *arg)
{
    pass_job *job = arg;
    const int64_t nrb = job->g->ncb;
    for (;;) {
        int64_t r0 = atomic_fetch_add(&job->next, QC_GROUP);
        if (r0 >= nrb)
            return NULL;
        pass_range(job->g, r0, r0 + QC_GROUP < nrb ? r0 + QC_GROUP : nrb);
    }
}

/* Below this many entries of rho per thread, starting a thread costs more
 * than it saves (a pass over 4^8 entries takes ~0.2 ms). */
#define QC_THREAD_MIN_ENTRIES ((int64_t)1 << 17)

static void pass_run(const pass_geom *g)
{
    int threads = sl_get_threads();
    const int64_t entries = g->rho->dim * g->rho->dim;
    if (threads > QC_MAX_THREADS)
        threads = QC_MAX_THREADS;
    while (threads > 1 && entries / threads < QC_THREAD_MIN_ENTRIES)
        threads--;
    if (threads < 2) {
        pass_range(g, 0, g->ncb);
        return;
    }
    /* The caller's thread works too; if a thread cannot start, the
     * others claim its share. */
    pthread_t tid[QC_MAX_THREADS];
    bool started[QC_MAX_THREADS] = {false};
    pass_job job = {.g = g};
    atomic_init(&job.next, 0);
    for (int i = 1; i < threads; i++)
        started[i] = pthread_create(&tid[i], NULL, pass_thread, &job) == 0;
    pass_thread(&job);
    for (int i = 1; i < threads; i++)
        if (started[i])
            pthread_join(tid[i], NULL);
}

void qc_apply_super(qc_rho *rho, int k, const int *q, const double complex *s, qc_work *w)
{
    const int n = rho->n, d = 1 << k, d2 = d * d;
    pass_geom g = {.rho = rho, .d2 = d2, .k = k, .q = {q[0], k > 1 ? q[1] : 0},
                   .ncb = (int64_t)1 << (n - k), .m = w->m, .a = w->a, .real = true};
    if (k > 1 && g.q[0] > g.q[1]) {
        g.q[0] = q[1];
        g.q[1] = q[0];
    }
    for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++) {
            int64_t o = 0;
            for (int j = 0; j < k; j++) {
                if (r >> j & 1)
                    o += rho->dim << q[j];
                if (c >> j & 1)
                    o += (int64_t)1 << q[j];
            }
            g.loc[r * d + c] = o;
        }
    g.contiguous = true;
    for (int t = 0; t < QC_W; t++) {
        g.colofs[t] = spread(&g, t);
        g.contiguous = g.contiguous && g.colofs[t] == t;
    }
    g.contiguous = g.contiguous && g.ncb >= QC_W;
    /* Real form of the complex product: [Re; Im] <- [[A, -B], [B, A]] [Re; Im]. */
    for (int i = 0; i < d2; i++)
        for (int j = 0; j < d2; j++) {
            double a = creal(s[i * d2 + j]), b = cimag(s[i * d2 + j]);
            w->a[i * d2 + j] = a;
            w->m[i * 2 * d2 + j] = a;
            w->m[i * 2 * d2 + d2 + j] = -b;
            w->m[(d2 + i) * 2 * d2 + j] = b;
            w->m[(d2 + i) * 2 * d2 + d2 + j] = a;
            g.real = g.real && b == 0.0;
        }
    const int dd = g.real ? d2 : 2 * d2;
    const double *mat = g.real ? w->a : w->m;
    for (int i = 0; i < dd; i += 4) {
        g.nz.n[i / 4] = 0;
        for (int j = 0; j < dd; j++)
            if (mat[i * dd + j] != 0.0 || mat[(i + 1) * dd + j] != 0.0 ||
                mat[(i + 2) * dd + j] != 0.0 || mat[(i + 3) * dd + j] != 0.0)
                g.nz.j[i / 4][g.nz.n[i / 4]++] = (uint8_t)j;
    }
    pass_run(&g);
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
void qc_set_tile_qubits(int m) { (void)m; }
