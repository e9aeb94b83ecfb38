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
/* The same with one 512-bit vector per row, for CPUs with AVX-512 (the
 * same operations in the same order, so the same bits). */
QC_TARGET_512 static void QC_CAT(CHUNK_APPLY, _512)(const double *restrict m, const qc_nz *nz,
                                                   const double *restrict in,
                                                   double *restrict out)
{
    const qc_v8 *vin = (const qc_v8 *)in;
    qc_v8 *vout = (qc_v8 *)out;
    for (int i = 0; i < (DD); i += 4) {
        const uint8_t *js = nz->j[i / 4];
        const int cnt = nz->n[i / 4];
        const double *m0 = m + i * (DD), *m1 = m0 + (DD), *m2 = m1 + (DD), *m3 = m2 + (DD);
        qc_v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int jj = 0; jj < cnt; jj++) {
            const int j = js[jj];
            const qc_v8 x = vin[j];
            a0 += m0[j] * x;
            a1 += m1[j] * x;
            a2 += m2[j] * x;
            a3 += m3[j] * x;
        }
        vout[i] = a0;
        vout[i + 1] = a1;
        vout[i + 2] = a2;
        vout[i + 3] = a3;
    }
}
#endif

#undef DD
#undef CHUNK_APPLY
