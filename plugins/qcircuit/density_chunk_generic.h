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
                                  const qc_v4 *restrict in, qc_v4 *restrict out)
{
    for (int i = 0; i < (DD); i += 4) {
        const uint8_t *js = nz->j[i / 4];
        const int cnt = nz->n[i / 4];
        const double *m0 = m + i * (DD), *m1 = m0 + (DD), *m2 = m1 + (DD), *m3 = m2 + (DD);
        qc_v4 a0 = {0}, b0 = {0}, a1 = {0}, b1 = {0}, a2 = {0}, b2 = {0}, a3 = {0}, b3 = {0};
        for (int jj = 0; jj < cnt; jj++) {
            const int j = js[jj];
            const qc_v4 x = in[2 * j], y = in[2 * j + 1];
            a0 += m0[j] * x;
            b0 += m0[j] * y;
            a1 += m1[j] * x;
            b1 += m1[j] * y;
            a2 += m2[j] * x;
            b2 += m2[j] * y;
            a3 += m3[j] * x;
            b3 += m3[j] * y;
        }
        out[2 * i] = a0;
        out[2 * i + 1] = b0;
        out[2 * i + 2] = a1;
        out[2 * i + 3] = b1;
        out[2 * i + 4] = a2;
        out[2 * i + 5] = b2;
        out[2 * i + 6] = a3;
        out[2 * i + 7] = b3;
    }
}

#undef DD
#undef CHUNK_APPLY
