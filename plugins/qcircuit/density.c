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
 * Blocks are independent, so a pass shares its row bases among the
 * threads of symlab's pool (sl_get_threads()): every block is computed the
 * same way whoever runs it, hence the result is bit-identical for any
 * thread count.  The simulator itself applies stages (several passes per
 * sweep over rho, tile by tile, half of Hermitian rho computed): see
 * "stages" below.
 */
#include "config.h"

#include <math.h>
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

/* ---- superoperator passes ------------------------------------------------ */

/* A pass walks rho by row bases (rows with the pass's qubit bits clear) and,
 * within the d rows of a row base, by chunks of QC_W consecutive column
 * bases: d * d local entries x QC_W blocks: when the lowest
 * qubit of the pass is >= 3 each of its d * d rows is one aligned run of 8
 * doubles (one cache line) of rho, so the pass streams whole lines from
 * d rows at a time instead of gathering single entries from all over. */
#define QC_W 8

/* GCC/Clang vector extension: the default clone lowers it to SSE2, the AVX2
 * clone to 256-bit registers; same operations, so the same bits.  A chunk
 * row (QC_W doubles) is two of them, or one qc_v8 where the CPU has
 * AVX-512 (GCC only: without AVX-512 it would spill a qc_v8 through the
 * stack). */
typedef double qc_v4 __attribute__((vector_size(32)));
typedef double qc_v8 __attribute__((vector_size(64)));

/* Nonzero columns of each group of 4 rows of a pass matrix. */
typedef struct qc_nz {
    int n[8];
    uint8_t j[8][32];
} qc_nz;

/* out = m in for one chunk (density_chunk_generic.h). */
typedef void (*chunk_fn)(const double *m, const qc_nz *nz, const double *in, double *out);

/* What one pass needs, shared by the threads that run parts of it; it
 * describes the pass on any rho (or tile) of `n` qubits. */
typedef struct pass_geom {
    int d2;                 /* d * d entries per block */
    int k;                  /* qubits of the pass */
    int q[2];               /* ascending */
    int64_t dim;            /* 2^n of the rho it walks */
    int64_t ncb;            /* column bases (= row bases) = 2^(n-k) */
    int64_t loc[16];        /* offset of local entry (lr, lc) from the block's base */
    int64_t colofs[QC_W];   /* column of base 8m + t minus that of 8m (independent of m) */
    int64_t idx[16 * QC_W]; /* loc[l] + colofs[t] at l * QC_W + t */
    bool contiguous;        /* colofs[t] == t: chunk rows are aligned runs */
    bool real;              /* S real: apply `a` to re and im separately */
    const double *m;        /* 2 d2 x 2 d2 real form of S */
    const double *a;        /* d2 x d2 real part of S */
    qc_nz nz;               /* of m, or of a when real */
    const chunk_fn *chunk;  /* chunk_table() */
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
/* An AVX2 clone chosen at load time where the CPU has it, and an AVX-512
 * version chosen per call (no FMA in any, so the same numbers as the
 * default clone: ISO C mode does not contract a*b+c). */
#define QC_CLONES __attribute__((target_clones("avx2", "default")))
#define QC_TARGET_512 __attribute__((target("avx512f")))
#define QC_CAT_(a, b) a##b
#define QC_CAT(a, b) QC_CAT_(a, b)
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

/* chunk_apply_4/8/16/32, or their AVX-512 versions when the CPU has it. */
static const chunk_fn *chunk_table(void)
{
    static const chunk_fn plain[4] = {chunk_apply_4, chunk_apply_8, chunk_apply_16,
                                      chunk_apply_32};
#ifdef QC_TARGET_512
    static const chunk_fn wide[4] = {chunk_apply_4_512, chunk_apply_8_512, chunk_apply_16_512,
                                     chunk_apply_32_512};
    if (__builtin_cpu_supports("avx512f"))
        return wide;
#endif
    return plain;
}

static void chunk_apply(const pass_geom *g, const double *in, double *out)
{
    const chunk_fn *f = g->chunk;
    const int d2 = g->d2;
    if (g->real) { /* re and im rows are the two halves of the chunk */
        chunk_fn h = d2 == 16 ? f[2] : f[0];
        h(g->a, &g->nz, in, out);
        h(g->a, &g->nz, in + d2 * QC_W, out + d2 * QC_W);
    } else if (d2 == 16) {
        f[3](g->m, &g->nz, in, out);
    } else {
        f[1](g->m, &g->nz, in, out);
    }
}

/* Row bases [r0, r1) of re/im (dim = g->dim): each chunk is copied into
 * `in` (re rows, then im rows), multiplied, and copied back.  Columns
 * t >= ncb (tiny n only) are padding: computed on zeros, never stored. */
static void pass_range(const pass_geom *g, double *restrict re, double *restrict im, int64_t r0,
                       int64_t r1)
{
    const int d2 = g->d2;
    const int64_t dim = g->dim;
    const int tn = g->ncb < QC_W ? (int)g->ncb : QC_W;
    qc_v8 vin[32], vout[32]; /* aligned for either vector width */
    double *in = (double *)vin, *out = (double *)vout;
    memset(vin, 0, sizeof vin);
    for (int64_t rb = r0; rb < r1; rb++) {
        const int64_t row = spread(g, rb) * dim;
        for (int64_t cb = 0; cb < g->ncb; cb += QC_W) {
            const int64_t base = row + spread(g, cb);
            double *pi = in, *po = out;
            if (g->contiguous) {
                for (int l = 0; l < d2; l++) {
                    memcpy(pi + l * QC_W, re + base + g->loc[l], QC_W * sizeof(double));
                    memcpy(pi + (d2 + l) * QC_W, im + base + g->loc[l], QC_W * sizeof(double));
                }
            } else if (tn == QC_W) {
                for (int i = 0; i < d2 * QC_W; i++) {
                    pi[i] = re[base + g->idx[i]];
                    pi[d2 * QC_W + i] = im[base + g->idx[i]];
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
            } else if (tn == QC_W) {
                for (int i = 0; i < d2 * QC_W; i++) {
                    re[base + g->idx[i]] = po[i];
                    im[base + g->idx[i]] = po[d2 * QC_W + i];
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

/* The pass of S (k qubits q, on a rho of n qubits) into g; its matrices
 * go to m (32 x 32) and a (16 x 16). */
static void geom_init(pass_geom *g, int n, int k, const int *q, const double complex *s,
                      double *m, double *a)
{
    const int d = 1 << k, d2 = d * d;
    const int64_t dim = (int64_t)1 << n;
    *g = (pass_geom){.d2 = d2, .k = k, .q = {q[0], k > 1 ? q[1] : 0}, .dim = dim,
                     .ncb = (int64_t)1 << (n - k), .m = m, .a = a, .real = true,
                     .chunk = chunk_table()};
    if (k > 1 && g->q[0] > g->q[1]) {
        g->q[0] = q[1];
        g->q[1] = q[0];
    }
    for (int r = 0; r < d; r++)
        for (int c = 0; c < d; c++) {
            int64_t o = 0;
            for (int j = 0; j < k; j++) {
                if (r >> j & 1)
                    o += dim << q[j];
                if (c >> j & 1)
                    o += (int64_t)1 << q[j];
            }
            g->loc[r * d + c] = o;
        }
    g->contiguous = true;
    for (int t = 0; t < QC_W; t++) {
        g->colofs[t] = spread(g, t);
        g->contiguous = g->contiguous && g->colofs[t] == t;
    }
    g->contiguous = g->contiguous && g->ncb >= QC_W;
    for (int l = 0; l < d2; l++)
        for (int t = 0; t < QC_W; t++)
            g->idx[l * QC_W + t] = g->loc[l] + g->colofs[t];
    /* Real form of the complex product: [Re; Im] <- [[A, -B], [B, A]] [Re; Im]. */
    for (int i = 0; i < d2; i++)
        for (int j = 0; j < d2; j++) {
            double re = creal(s[i * d2 + j]), im = cimag(s[i * d2 + j]);
            a[i * d2 + j] = re;
            m[i * 2 * d2 + j] = re;
            m[i * 2 * d2 + d2 + j] = -im;
            m[(d2 + i) * 2 * d2 + j] = im;
            m[(d2 + i) * 2 * d2 + d2 + j] = re;
            g->real = g->real && im == 0.0;
        }
    const int dd = g->real ? d2 : 2 * d2;
    const double *mat = g->real ? a : m;
    for (int i = 0; i < dd; i += 4) {
        g->nz.n[i / 4] = 0;
        for (int j = 0; j < dd; j++)
            if (mat[i * dd + j] != 0.0 || mat[(i + 1) * dd + j] != 0.0 ||
                mat[(i + 2) * dd + j] != 0.0 || mat[(i + 3) * dd + j] != 0.0)
                g->nz.j[i / 4][g->nz.n[i / 4]++] = (uint8_t)j;
    }
}

/* ---- threads ----------------------------------------------------------------- */

/* fn(ctx, item, worker) for item in [0, count), on `threads` parts of
 * symlab's thread pool (sl_parallel_for; worker = the part, which indexes
 * per-part scratch).  Within a part, items are claimed one at a time
 * through an atomic counter, so a part that the (shared, loaded) machine
 * leaves waiting simply claims fewer.  Which part runs an item never
 * changes how it is computed, so results are bit-identical for any thread
 * count. */
typedef void (*item_fn)(void *ctx, int64_t item, int worker);

typedef struct par_job {
    item_fn fn;
    void *ctx;
    int64_t count;
    atomic_llong next;
} par_job;

static void par_part(void *arg, int64_t begin, int64_t end, int part)
{
    (void)begin;
    (void)end;
    par_job *job = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->count)
            return;
        job->fn(job->ctx, i, part);
    }
}

static void par_run(int threads, int64_t count, item_fn fn, void *ctx)
{
    if (threads > count)
        threads = (int)count;
    if (threads < 2) {
        for (int64_t i = 0; i < count; i++)
            fn(ctx, i, 0);
        return;
    }
    par_job job = {.fn = fn, .ctx = ctx, .count = count};
    atomic_init(&job.next, 0);
    sl_parallel_for(threads, 1, par_part, &job);
}

/* Below this many entries of rho per thread, starting a thread costs more
 * than it saves (a pass over 4^8 entries takes ~0.2 ms). */
#define QC_THREAD_MIN_ENTRIES ((int64_t)1 << 17)

static int threads_for(int64_t entries)
{
    int threads = sl_get_threads();
    if (threads > QC_MAX_THREADS)
        threads = QC_MAX_THREADS;
    while (threads > 1 && entries / threads < QC_THREAD_MIN_ENTRIES)
        threads--;
    return threads;
}

/* Whole passes over rho: row bases in groups of QC_GROUP. */
#define QC_GROUP 8

typedef struct whole_ctx {
    const pass_geom *g;
    qc_rho *rho;
} whole_ctx;

static void whole_item(void *ctx, int64_t item, int worker)
{
    (void)worker;
    const whole_ctx *c = ctx;
    const int64_t r0 = item * QC_GROUP, nrb = c->g->ncb;
    pass_range(c->g, c->rho->re, c->rho->im, r0, r0 + QC_GROUP < nrb ? r0 + QC_GROUP : nrb);
}

static void pass_run(const pass_geom *g, qc_rho *rho)
{
    whole_ctx c = {.g = g, .rho = rho};
    par_run(threads_for(rho->dim * rho->dim), (g->ncb + QC_GROUP - 1) / QC_GROUP, whole_item,
            &c);
}

void qc_apply_super(qc_rho *rho, int k, const int *q, const double complex *s, qc_work *w)
{
    pass_geom g;
    geom_init(&g, rho->n, k, q, s, w->m, w->a);
    pass_run(&g, rho);
}

/* ---- stages: several passes per tile ------------------------------------------- */

/* A stage applies passes whose qubits all lie in a tile set Q of m qubits
 * (Q contains qubits 0-2, so a tile row is made of whole cache lines).
 * Tile (R, C) is the 2^m x 2^m submatrix of the entries whose row bits
 * outside Q spell R and whose column bits outside Q spell C: every pass of
 * the stage maps it to itself.  It is copied into a per-thread buffer
 * (256 KiB for m = 7, so it stays in L2), all passes run on it there, and
 * it is copied back: one sweep over rho for the whole stage.
 *
 * rho is Hermitian and every map the simulator applies preserves that,
 * so tile (C, R) of the result is the conjugate transpose of tile (R, C):
 * only tiles with R <= C are read and computed, and each off-diagonal one
 * is also written, transposed and conjugated, to (C, R).  Half the
 * arithmetic and three quarters of the memory traffic of a full sweep. */
#define QC_TILE_QUBITS 7
#define QC_TILE_MIN 5   /* qubits 0-2 and a 2-qubit pass */
#define QC_TILE_MAX 8

static int tile_override;

void qc_set_tile_qubits(int m)
{
    tile_override = m == 0 ? 0 : m < QC_TILE_MIN ? QC_TILE_MIN : m > QC_TILE_MAX ? QC_TILE_MAX : m;
}

int qc_tile_qubits(int n)
{
    int m = tile_override ? tile_override : QC_TILE_QUBITS;
    return m < n ? m : n;
}

uint64_t qc_tile_set(int n, uint64_t support)
{
    const int m = qc_tile_qubits(n);
    if (m == n)
        return ((uint64_t)1 << n) - 1;
    uint64_t set = support | 7;
    for (int q = 0; q < n && __builtin_popcountll(set) < m; q++)
        set |= (uint64_t)1 << q;
    return set;
}

typedef struct stage_ctx {
    qc_rho *rho;
    double *const *tile;    /* per worker: re (4^m doubles), then im */
    int m;
    int64_t tdim;           /* 2^m */
    int64_t ntiles;         /* 2^(n-m) per side */
    int npass;
    const pass_geom *g;     /* the passes on an m-qubit tile */
    int64_t rowoff[1 << QC_TILE_MAX]; /* rho row of tile row lr (times dim) */
    int64_t runoff[1 << (QC_TILE_MAX - 3)]; /* rho column of tile column 8j */
    uint64_t outside;       /* qubits not in Q */
    bool zero_state;        /* rho is |0..0><0..0|, not read (qc_apply_stage) */
} stage_ctx;

/* x's bits deposited at the set bits of mask, in order. */
static int64_t deposit(uint64_t x, uint64_t mask)
{
    int64_t r = 0;
    for (int q = 0; mask; q++, mask >>= 1)
        if (mask & 1) {
            r |= (int64_t)(x & 1) << q;
            x >>= 1;
        }
    return r;
}

/* Copies tile (row offset ro, column offset co) between rho and t. */
static void tile_copy(const stage_ctx *c, int64_t ro, int64_t co, double *t, bool load)
{
    const int64_t tdim = c->tdim, runs = tdim / QC_W;
    double *const re = c->rho->re, *const im = c->rho->im, *const tim = t + tdim * tdim;
    for (int64_t lr = 0; lr < tdim; lr++) {
        const int64_t row = ro + c->rowoff[lr] + co;
        for (int64_t j = 0; j < runs; j++) {
            const int64_t at = row + c->runoff[j], o = lr * tdim + j * QC_W;
            if (load) {
                memcpy(t + o, re + at, QC_W * sizeof(double));
                memcpy(tim + o, im + at, QC_W * sizeof(double));
            } else {
                memcpy(re + at, t + o, QC_W * sizeof(double));
                memcpy(im + at, tim + o, QC_W * sizeof(double));
            }
        }
    }
}

/* t <- conj(t)^T in place, by 8 x 8 blocks (a block and its mirror
 * are each read by rows into registers and written by rows). */
static void tile_dagger(double *t, int64_t tdim)
{
    double *const tim = t + tdim * tdim;
    for (int64_t bi = 0; bi < tdim; bi += QC_W)
        for (int64_t bj = bi; bj < tdim; bj += QC_W) {
            double xr[QC_W][QC_W], xi[QC_W][QC_W], yr[QC_W][QC_W], yi[QC_W][QC_W];
            for (int u = 0; u < QC_W; u++)
                for (int v = 0; v < QC_W; v++) {
                    xr[u][v] = t[(bi + u) * tdim + bj + v];
                    xi[u][v] = tim[(bi + u) * tdim + bj + v];
                    yr[u][v] = t[(bj + u) * tdim + bi + v];
                    yi[u][v] = tim[(bj + u) * tdim + bi + v];
                }
            for (int u = 0; u < QC_W; u++)
                for (int v = 0; v < QC_W; v++) {
                    t[(bi + u) * tdim + bj + v] = yr[v][u];
                    tim[(bi + u) * tdim + bj + v] = -yi[v][u];
                    t[(bj + u) * tdim + bi + v] = xr[v][u];
                    tim[(bj + u) * tdim + bi + v] = -xi[v][u];
                }
        }
}

/* Item p: the p-th tile (R, C) with R <= C in row-major order. */
static void stage_item(void *ctx, int64_t item, int worker)
{
    const stage_ctx *c = ctx;
    int64_t r = 0, left = item;
    while (left >= c->ntiles - r) {
        left -= c->ntiles - r;
        r++;
    }
    const int64_t col = r + left, dim = c->rho->dim;
    const int64_t rr = deposit((uint64_t)r, c->outside), cc = deposit((uint64_t)col, c->outside);
    double *t = c->tile[worker];
    if (c->zero_state) {
        memset(t, 0, 2 * (size_t)(c->tdim * c->tdim) * sizeof *t);
        t[0] = r == 0 && col == 0 ? 1.0 : 0.0;
    } else {
        tile_copy(c, rr * dim, cc, t, true);
    }
    for (int p = 0; p < c->npass; p++)
        pass_range(&c->g[p], t, t + c->tdim * c->tdim, 0, c->g[p].ncb);
    tile_copy(c, rr * dim, cc, t, false);
    if (col != r) {
        tile_dagger(t, c->tdim);
        tile_copy(c, cc * dim, rr, t, false);
    }
}

/* The per-worker tiles for m qubits and `threads` workers (allocated on
 * first use, kept for the next stages). */
static int tiles_ready(qc_work *w, int m, int threads)
{
    const size_t bytes = 2 * ((size_t)1 << (2 * m)) * sizeof(double);
    if (w->tile_bytes < bytes) {
        for (int i = 0; i < QC_MAX_THREADS; i++) {
            free(w->tile[i]);
            w->tile[i] = NULL;
        }
        w->tile_bytes = bytes;
    }
    for (int i = 0; i < threads; i++)
        if (!w->tile[i] && !(w->tile[i] = aligned_alloc(SL_ALIGNMENT, w->tile_bytes)))
            return sl_error(SL_ENOMEM, "qcircuit: cannot allocate a %zu-byte tile",
                            w->tile_bytes);
    return SL_OK;
}

int qc_apply_stage(qc_rho *rho, int npass, const qc_stage_op *ops, bool zero_state, qc_work *w)
{
    const int n = rho->n, m = qc_tile_qubits(n);
    if (npass < 1 || npass > QC_STAGE_MAX_PASSES)
        return sl_error(SL_EINVAL, "qcircuit: a stage has 1 to %d passes, got %d",
                        QC_STAGE_MAX_PASSES, npass);
    uint64_t support = 0;
    for (int p = 0; p < npass; p++)
        for (int j = 0; j < ops[p].k; j++)
            support |= (uint64_t)1 << ops[p].q[j];
    const uint64_t set = qc_tile_set(n, support);
    if (__builtin_popcountll(set) != m || (support & ~set))
        return sl_error(SL_EINVAL, "qcircuit: a stage's qubits do not fit one %d-qubit tile", m);
    pass_geom *g = w->geom;
    if (m == n) { /* rho is one tile: the passes sweep it in place */
        if (zero_state)
            qc_rho_zero_state(rho);
        for (int p = 0; p < npass; p++) {
            geom_init(&g[p], n, ops[p].k, ops[p].q, ops[p].s, w->mats + p * QC_MAT_DOUBLES,
                      w->mats + p * QC_MAT_DOUBLES + 32 * 32);
            pass_run(&g[p], rho);
        }
        return SL_OK;
    }
    /* local qubit i of a tile is the i-th qubit of Q */
    int local[QC_MAX_QUBITS];
    for (int q = 0, i = 0; q < n; q++)
        local[q] = set >> q & 1 ? i++ : -1;
    for (int p = 0; p < npass; p++) {
        int lq[2] = {local[ops[p].q[0]], ops[p].k > 1 ? local[ops[p].q[1]] : 0};
        geom_init(&g[p], m, ops[p].k, lq, ops[p].s, w->mats + p * QC_MAT_DOUBLES,
                  w->mats + p * QC_MAT_DOUBLES + 32 * 32);
    }
    const int threads = threads_for(rho->dim * rho->dim);
    SL_TRY(tiles_ready(w, m, threads));
    stage_ctx *c = w->stage;
    c->rho = rho;
    c->tile = w->tile;
    c->m = m;
    c->tdim = (int64_t)1 << m;
    c->ntiles = (int64_t)1 << (n - m);
    c->npass = npass;
    c->g = g;
    c->outside = ((uint64_t)1 << n) - 1 - set;
    c->zero_state = zero_state;
    for (int64_t lr = 0; lr < c->tdim; lr++)
        c->rowoff[lr] = deposit((uint64_t)lr, set) * rho->dim;
    for (int64_t j = 0; j < c->tdim / QC_W; j++)
        c->runoff[j] = deposit((uint64_t)(j * QC_W), set);
    par_run(threads, c->ntiles * (c->ntiles + 1) / 2, stage_item, c);
    return SL_OK;
}

int qc_work_alloc(qc_work *w)
{
    memset(w, 0, sizeof *w);
    w->mats = malloc(QC_STAGE_MAX_PASSES * QC_MAT_DOUBLES * sizeof *w->mats);
    w->geom = malloc(QC_STAGE_MAX_PASSES * sizeof(pass_geom));
    w->stage = malloc(sizeof(stage_ctx));
    if (!w->mats || !w->geom || !w->stage) {
        qc_work_free(w);
        return sl_error(SL_ENOMEM, "qcircuit: out of memory for the pass matrices");
    }
    return SL_OK;
}

void qc_work_free(qc_work *w)
{
    free(w->mats);
    free(w->geom);
    free(w->stage);
    for (int i = 0; i < QC_MAX_THREADS; i++)
        free(w->tile[i]);
    memset(w, 0, sizeof *w);
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
