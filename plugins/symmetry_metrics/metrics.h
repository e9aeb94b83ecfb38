/* plugins/symmetry_metrics/metrics.h — what the probe (symmetry_metrics.c)
 * and the hook (rank_log.c) share: reading weights, spectra and
 * activations out of a model through its structure (structure.h) and
 * recording the order parameters under the module's path ("2.rank").
 * The arithmetic itself is in order.h.
 */
#ifndef SYMLAB_METRICS_METRICS_H
#define SYMLAB_METRICS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/symlab.h>

/* Tolerances and extras of the rank measures (options rank_atol, rank_rtol,
 * top_sv of both the probe and the hook). */
typedef struct sm_rank_opts {
    double atol, rtol; /* om_rank */
    int64_t top_sv;    /* also record the top_sv largest singular values */
} sm_rank_opts;

/* Reads rank_atol, rank_rtol and top_sv; SL_EINVAL for a negative one. */
int sm_rank_opts_get(const sl_options *opt, const char *who, sm_rank_opts *out);

/* name = "<prefix>.<what>" into out. */
int sm_set(sl_record *out, const char *prefix, const char *what, double value);

/* <prefix>.rank, .stable_rank, .effective_rank and, with top_sv, .sv0 ...
 * of a spectrum s (k values, descending). */
int sm_record_spectrum(sl_record *out, const char *prefix, const double *s, int64_t k,
                       const sm_rank_opts *ro);

/* For weight layer L: <path>.rank, .stable_rank, .effective_rank and, with
 * top_sv, .sv0 ... of its (units, fan_in) matrix. */
int sm_weight_ranks(sl_model *m, const sl_weight_layer *L, const sm_rank_opts *ro,
                    sl_record *out);

/* When the weight layers form one chain of fully connected maps with only
 * linear per-unit maps between them (every hidden layer SL_SYM_GL, read
 * by the next layer alone, block 1), the same measures of the end-to-end
 * matrix W_L ... W_1 as "product.*", and *done = true; otherwise nothing
 * and *done = false. */
int sm_product_ranks(sl_model *m, const sl_structure *st, const sm_rank_opts *ro,
                     sl_record *out, bool *done);

/* The first `rows` rows of `data` run forward in evaluation mode (the
 * model's mode is restored).  x and y stay valid until sm_batch_free. */
typedef struct sm_batch {
    sl_batcher *batcher;
    const sl_tensor *x, *y;
} sm_batch;
int sm_batch_forward(sl_model *m, const sl_dataset *data, int64_t rows, sm_batch *b);
void sm_batch_free(sm_batch *b);

/* Why NC1 cannot be taken on this model and batch (a static sentence), or
 * NULL when it can: labels i64 with at least two classes among the rows,
 * the last weight layer top-level. */
const char *sm_nc1_unavailable(const sl_structure *st, const sm_batch *b);
/* NC1 (order.h) of the penultimate features — the input of the last
 * weight layer in the last forward, flattened per sample — against the
 * batch's labels; *classes the classes present. */
int sm_nc1(sl_model *m, const sl_structure *st, const sm_batch *b, double *nc1,
           int64_t *classes);

/* The centred Gram matrix K (n, n) of an activation (n, ...) flattened
 * per sample (order.h: om_gram_add, om_gram_center).  K is caller-owned. */
int sm_activation_gram(const sl_tensor *a, double *K);

/* The plugin's types (plugin.c lists them). */
extern const sl_probe_type sm_probe_type; /* symmetry_metrics.c */
extern const sl_hook_type sm_rank_log_type; /* rank_log.c */

#endif
