/* plugins/qcircuit/density_chunk_generic.h — density.c's chunk product for
 * one matrix size.  Not a header: density.c includes it once per size after
 * defining
 *   DD           the matrix side (a constant, so the loops are fully known), and
 *   CHUNK_APPLY  the function's name;
 * both are #undef'd at the end.  No include guard, on purpose. */

/* out = m in for a DD x DD real matrix and DD x QC_W chunks (two vectors per
 * row).  Four output rows at a time: 8 accumulators stay in registers and
 * each input vector loaded serves 4 rows.  Columns j where those 4 rows of
 * m are all zero (CNOTs, damping and real maps leave many) are skipped
 * through the per-pass list nz[i / 4][0..nnz[i / 4]) — ascending, so the
 * sum is the dense one minus exact zeros. */
QC_CLONES static void CHUNK_APPLY(const double *restrict m, const qc_nz *nz,
                                  const double *restrict in, double *restrict out)
{
    const qc_v4 *vin = (const qc_v4 *)in;
    qc_v4 *vout = (qc_v4 *)out;
    for (int i = 0; i < (DD); i += 4) {
        const uint8_t *js = nz->j[i / 4];
        const int cnt = nz->n[i / 4];
        const double *m0 = m + i * (DD), *m1 = m0 + (DD), *m2 = m1 + (DD), *m3 = m2 + (DD);
        qc_v4 a0 = {0}, b0 = {0}, a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, a3 = {0}, b3 = {0};
        for (int jj = 0; jj < cnt; jj++) {
            const int j = js[jj];
            const qc_v4 x = vin[2 * j], y = vin[2 * j + 1];
            a0 += m0[j] * x;
            b0 += m0[j] * y;
            a1 += m1[j] * x;
            b1 += m1[j] * y;
            a2 += m2[j] * x;
            b2 += m2[j] * y;
            a3 += m3[j] * x;
            b3 += m3[j] * y;
        }
        vout[2 * i] = a0;
        vout[2 * i + 1] = b0;
        vout[2 * i + 2] = a1;
        vout[2 * i + 3] = b1;
        vout[2 * i + 4] = a2;
        vout[2 * i + 5] = b2;
        vout[2 * i + 6] = a3;
        vout[2 * i + 7] = b3;
    }
}

#ifdef QC_TARGET_512
/* Four rows of out from the nz list of their group, starting at entry jj0;
 * the accumulators come in and go out through acc. */
#define QC_ROWS4(acc, mr, js, jj0, cnt)                                              \
    for (int jj = (jj0); jj < (cnt); jj++) {                                           \
        const int j = (js)[jj];                                                        \
        const qc_v8 x = vin[j];                                                        \
        acc[0] += (mr)[j] * x;                                                         \
        acc[1] += (mr)[(DD) + j] * x;                                                  \
        acc[2] += (mr)[2 * (DD) + j] * x;                                              \
        acc[3] += (mr)[3 * (DD) + j] * x;                                              \
    }

/* The same with one 512-bit vector per row, for CPUs with AVX-512.  Two
 * groups of 4 rows run in one loop while both have columns left, so 8
 * independent sums hide the latency of the additions; each sum still adds
 * its terms in the order of its own list, so the bits are the same. */
QC_TARGET_512 static void QC_CAT(CHUNK_APPLY, _512)(const double *restrict m, const qc_nz *nz,
                                                   const double *restrict in,
                                                   double *restrict out)
{
    const qc_v8 *vin = (const qc_v8 *)in;
    qc_v8 *vout = (qc_v8 *)out;
    int i = 0;
    for (; i + 8 <= (DD); i += 8) {
        const uint8_t *js = nz->j[i / 4], *ks = nz->j[i / 4 + 1];
        const int cj = nz->n[i / 4], ck = nz->n[i / 4 + 1], both = cj < ck ? cj : ck;
        const double *mj = m + i * (DD), *mk = mj + 4 * (DD);
        qc_v8 a[4] = {{0}}, c[4] = {{0}};
        for (int jj = 0; jj < both; jj++) {
            const int j = js[jj], k = ks[jj];
            const qc_v8 x = vin[j], y = vin[k];
            a[0] += mj[j] * x;
            c[0] += mk[k] * y;
            a[1] += mj[(DD) + j] * x;
            c[1] += mk[(DD) + k] * y;
            a[2] += mj[2 * (DD) + j] * x;
            c[2] += mk[2 * (DD) + k] * y;
            a[3] += mj[3 * (DD) + j] * x;
            c[3] += mk[3 * (DD) + k] * y;
        }
        QC_ROWS4(a, mj, js, both, cj)
        QC_ROWS4(c, mk, ks, both, ck)
        for (int r = 0; r < 4; r++) {
            vout[i + r] = a[r];
            vout[i + 4 + r] = c[r];
        }
    }
    for (; i < (DD); i += 4) {
        qc_v8 a[4] = {{0}};
        QC_ROWS4(a, m + i * (DD), nz->j[i / 4], 0, nz->n[i / 4])
        for (int r = 0; r < 4; r++)
            vout[i + r] = a[r];
    }
}
#undef QC_ROWS4
#endif

#undef DD
#undef CHUNK_APPLY
