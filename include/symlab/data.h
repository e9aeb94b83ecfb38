/* symlab/data.h — datasets, readers and batching.
 *
 * A dataset is a pair of tensors with the same leading extent N:
 *   x: inputs, f32 (N, ...) — images come as (N, 1, H, W) in [0, 1];
 *   y: targets, i64 (N) class labels, or f32 (N, k) regression targets.
 * It owns one reference to each (sl_dataset_release gives them back).
 *
 * Readers never crash on bad files: a truncated, corrupt or mismatched file
 * is an SL_EFORMAT (or SL_EIO) error whose message names the file and, for
 * text, the line.
 */
#ifndef SYMLAB_DATA_H
#define SYMLAB_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include <symlab/export.h>
#include <symlab/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_dataset {
    sl_tensor x; /* (N, ...) inputs */
    sl_tensor y; /* (N) i64 labels or (N, k) f32 targets */
} sl_dataset;

SL_API int64_t sl_dataset_size(const sl_dataset *d);
SL_API void sl_dataset_release(sl_dataset *d);

/* Reads one IDX file (plain or gzip, detected from the content) into a
 * contiguous tensor: u8 stays u8, i8/i16/i32 become i64, f32/f64 stay so. */
SL_API int sl_idx_read(const char *path, sl_tensor *out);

/* Images and labels from two IDX files: x becomes f32 (N, 1, H, W) scaled to
 * [0, 1], y i64 (N).  The two files must agree on N. */
SL_API int sl_dataset_idx(const char *images_path, const char *labels_path, sl_dataset *out);

/* The `split` ("train" or "test") of an IDX dataset directory holding files
 * named *<split>-images-idx3-ubyte[.gz] and *<split>-labels-idx1-ubyte[.gz]
 * (also MNIST's t10k-* for "test"). */
SL_API int sl_dataset_idx_dir(const char *dir, const char *split, sl_dataset *out);

/* A CSV file of numbers (comma-separated, optional header line).  Column
 * `label_column` (0-based; negative counts from the end) becomes y: i64
 * class labels if `classes`, else f32 (N, 1); the other columns become x f32
 * (N, columns-1). */
SL_API int sl_dataset_csv(const char *path, bool header, int label_column, bool classes,
                          sl_dataset *out);

/* A dataset holding copies of x (any real dtype, converted to f32, at least
 * 2-d: (N, ...)) and y (i64 (N) labels, or real (N) / (N, k) targets,
 * converted to f32 (N, 1) / (N, k)).  SL_ESHAPE if the leading extents
 * differ, SL_EDTYPE for complex inputs. */
SL_API int sl_dataset_from_tensors(const sl_tensor *x, const sl_tensor *y, sl_dataset *out);

/* Per-feature-agnostic normalisation in place: x = (x - mean) / std. */
SL_API int sl_dataset_normalize(sl_dataset *d, double mean, double std);
/* Mean and standard deviation over every element of x. */
SL_API int sl_dataset_stats(const sl_dataset *d, double *mean, double *std);

/* Copies rows index[0..n) of d into a new dataset. */
SL_API int sl_dataset_subset(const sl_dataset *d, const int64_t *index, int64_t n,
                             sl_dataset *out);
/* The first min(rows, N) rows of d's inputs, converted to `dtype` (a
 * model's: sl_model_dtype), in a new contiguous tensor *out that the caller
 * releases: the fixed probe batch of a measurement.  SL_EINVAL for
 * rows < 1 or an empty dataset. */
SL_API int sl_dataset_head_x(const sl_dataset *d, int64_t rows, sl_dtype dtype, sl_tensor *out);
/* Splits d into `first` (n_first rows) and `rest` after a shuffle drawn from
 * `seed` — the same seed gives the same split.  Both are new copies. */
SL_API int sl_dataset_split(const sl_dataset *d, int64_t n_first, uint64_t seed,
                            sl_dataset *first, sl_dataset *rest);

/* Batching.  A batcher owns a permutation and two batch tensors, allocated
 * once at creation, into which each batch's rows are gathered: no
 * allocation after creation. */
typedef struct sl_batcher sl_batcher; /* opaque */

/* x batches are converted to `x_dtype` (the model's).  With shuffle, epoch e
 * visits the rows in an order drawn from (seed, e) alone, so a run resumed at
 * epoch e sees the same batches.  drop_last omits a final short batch. */
SL_API int sl_batcher_new(const sl_dataset *d, int64_t batch, sl_dtype x_dtype, bool shuffle,
                          uint64_t seed, bool drop_last, sl_batcher **out);
SL_API void sl_batcher_free(sl_batcher *b);
/* Starts epoch `epoch` (re-drawing the order if shuffling). */
SL_API void sl_batcher_begin_epoch(sl_batcher *b, int64_t epoch);
/* The next batch: returns 1 and sets *x, *y (owned by the batcher, valid
 * until the next call), or 0 at the end of the epoch. */
SL_API int sl_batcher_next(sl_batcher *b, const sl_tensor **x, const sl_tensor **y);
SL_API int64_t sl_batcher_nbatches(const sl_batcher *b);

#ifdef __cplusplus
}
#endif
#endif
