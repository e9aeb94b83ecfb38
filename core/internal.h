/* core/internal.h — helpers private to libsymlab (never installed).
 * Every core .c file includes config.h first, then this. */
#ifndef SYMLAB_CORE_INTERNAL_H
#define SYMLAB_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <symlab/symlab.h>

/* Zero-filled memory aligned to SL_ALIGNMENT; NULL (with SL_ENOMEM set) on
 * failure or overflow.  Free with sl_aligned_free. */
void *sl_aligned_calloc(size_t count, size_t size);
void sl_aligned_free(void *p);

/* strdup that sets SL_ENOMEM on failure. */
char *sl_strdup(const char *s);

/* Writes the names of the set bits of `flags` (bit i named names[i]),
 * comma-separated, into buf (always terminated). */
void sl_flags_text(unsigned flags, const char *const *names, int nnames, char *buf,
                   size_t size);

/* Checks the defaults of an option spec: each must parse as its option's
 * type (and be among its choices).  A failure is the technique's bug, and
 * the message says so, naming `owner` and the option. */
int sl_option_spec_check(const sl_option_spec *spec, const char *owner);

/* The directory of libsymlab's own dlopen()ed modules (download.so): the
 * build tree's when the running libsymlab is the one in it (core/paths.c). */
const char *sl_module_dir(void);

/* A file written atomically: sl_atomic_begin opens "<path>.tmp.<pid>.XXXXXX"
 * beside path (a->f, mode of an existing path or 0644), after removing the
 * orphans of dead writers (symlab/files.h has the rules); sl_atomic_commit
 * flushes, fsyncs and renames it over path; sl_atomic_abort (also safe after
 * a failed begin or commit) closes and removes it.  `what` names the content
 * in the commit's error ("checkpoint"). */
typedef struct sl_atomic_file {
    const char *path; /* borrowed: the target */
    char *tmp;        /* the temporary file's name */
    FILE *f;
} sl_atomic_file;
int sl_atomic_begin(const char *path, sl_atomic_file *a);
int sl_atomic_commit(sl_atomic_file *a, const char *what);
void sl_atomic_abort(sl_atomic_file *a);

/* Safetensors files of named tensors (checkpoint.c; format in
 * docs/design-notes.md).  Tensors are real (written in their dtype) or i64,
 * contiguous or not; names are borrowed. */
typedef struct sl_named_tensor {
    const char *name;
    sl_tensor *tensor;
    bool optional; /* on load: absent from the file, it keeps its value */
} sl_named_tensor;
/* Writes the n tensors, and `meta`'s string pairs (may be NULL) beside
 * "format" and "symlab_version" in __metadata__, atomically; `what` names
 * the content in errors ("checkpoint"). */
int sl_safetensors_save(const char *path, const sl_named_tensor *ts, int n,
                        const sl_options *meta, const char *what);
typedef struct sl_safetensors_load_args {
    const char *path;
    const char *what;               /* the owner, in errors: "model" */
    const sl_named_tensor *tensors; /* exactly these names and shapes */
    int n;
    /* May be NULL: judges __metadata__'s pairs (as string options) after
     * the header parsed and before any tensor is touched. */
    int (*check)(void *userdata, const sl_options *meta);
    void *userdata;
} sl_safetensors_load_args;
/* Reads the file into the tensors, all or nothing: a file that does not
 * parse, lacks a tensor or holds another, or whose check fails, leaves every
 * tensor unchanged. */
int sl_safetensors_load(const sl_safetensors_load_args *a);

/* Releases every tensor of an array of n and frees nothing else. */
void sl_tensor_release_all(sl_tensor *t, int n);

/* Which entries of a record were set lately: sl_record_next_round starts a
 * new round; sl_record_set_this_round(r, i) tells whether entry i was set
 * since (the training loop's "set during this step"). */
void sl_record_next_round(sl_record *r);
bool sl_record_set_this_round(const sl_record *r, int i);

/* Training internals shared by train.c, early_stop.c, evaluate.c, hook.c,
 * history.c. */
int sl_hook_call(sl_hook *h, sl_event ev, sl_train_ctx *ctx);
int sl_history_append(sl_history *h, const sl_record *row);
/* Makes room for `n` more step rows (outside the steps), and appends one
 * (no allocation within the room, except a column for a new name). */
int sl_history_reserve_steps(sl_history *h, int64_t n);
int sl_history_append_step(sl_history *h, const sl_record *row);
void sl_history_set_early_stop(sl_history *h, int64_t best_epoch, int64_t stopped_epoch);

/* Early stopping (early_stop.c): set up from validated options, then
 * judged after every epoch's row; *stop tells the loop to end.  finish
 * restores the best state if asked and reports the outcome into history
 * (may be NULL). */
typedef struct sl_early_stop sl_early_stop;
int sl_early_stop_new(const sl_options *opt, sl_model *model, sl_early_stop **out);
int sl_early_stop_judge(sl_early_stop *es, int64_t epoch, const sl_record *row, bool *stop);
int sl_early_stop_finish(sl_early_stop *es, sl_history *h);
void sl_early_stop_free(sl_early_stop *es);
/* Its state, for training checkpoints; the best model is NULL without
 * restore_best. */
typedef struct sl_early_stop_state {
    double best;
    int64_t wait, best_epoch, stopped_epoch;
} sl_early_stop_state;
void sl_early_stop_get(const sl_early_stop *es, sl_early_stop_state *out);
void sl_early_stop_set(sl_early_stop *es, const sl_early_stop_state *st);
sl_model *sl_early_stop_best_model(sl_early_stop *es);
/* Training checkpoints (resume.c).  Where a run stands: */
typedef struct sl_train_pos {
    int64_t epoch;    /* the epoch under way (or next), 0-based */
    int64_t batch;    /* its batches already done */
    int64_t step;     /* steps counted from epoch 0 */
    double loss_sum;  /* this epoch so far: sum of batch loss * batch size, */
    int64_t seen;     /* samples, */
    int64_t correct;  /* and hits */
} sl_train_pos;
/* What a resumed run must share with the saved one to draw its batches. */
typedef struct sl_train_id {
    int64_t batch, samples, start_epoch;
    uint64_t seed;
    bool shuffle, drop_last;
} sl_train_id;
typedef struct sl_train_ckpt {
    sl_model *model;
    sl_optim *optim;
    sl_schedule *schedule; /* may be NULL */
    sl_history *history;   /* may be NULL; rows from history_from on are this run's, */
    int history_from;
    int64_t steps_from;    /* and step rows from steps_from on */
    sl_early_stop *early_stop; /* may be NULL */
    sl_train_id id;
    int64_t end_epoch, nbatches; /* on load: where this run can stand */
} sl_train_ckpt;
int sl_train_checkpoint_save(const char *path, const sl_train_ckpt *c, const sl_train_pos *pos);
/* All or nothing: on success the model, optimizer, schedule and noise
 * streams are as saved, the saved history rows appended, *pos set. */
int sl_train_checkpoint_load(const char *path, const sl_train_ckpt *c, sl_train_pos *pos);

/* The fused update (train.c).  While a listener is set, the model's
 * backward calls fn(ctx, begin, end) after each top-level module's backward
 * with the range of the flat parameter vector that module and the modules
 * inside it own (skipped when empty); fn NULL removes it.  Every module
 * with parameters is backpropagated (seq.c), so one backward reports
 * every parameter once.  No allocation. */
void sl_model_set_backward_listener(sl_model *m, int (*fn)(void *ctx, int64_t begin, int64_t end),
                                    void *ctx);
/* Whether o's type has step_range (plugin.h; from plugins of ABI minor >= 3). */
bool sl_optim_can_fuse(const sl_optim *o);
/* The current step's update of [begin, end) through step_range, and the
 * step count once every range of the step is done. */
int sl_optim_step_range(sl_optim *o, int64_t begin, int64_t end);
void sl_optim_count_step(sl_optim *o);
/* Whether the hook's type promises SL_HOOK_NO_GRADIENT_AFTER_BACKWARD
 * (plugins of ABI minor >= 3 only). */
bool sl_hook_allows_fused_update(const sl_hook *h);

/* Forward, loss and (with want_grad) backward ADDING into the gradients;
 * *pred is the model's output.  A non-finite loss skips the backward. */
int sl_loss_backward(sl_model *model, const sl_loss_type *loss, const sl_tensor *x,
                     const sl_tensor *y, bool want_grad, double *value, const sl_tensor **pred);
/* Rows of pred (B, C) whose argmax equals the i64 label in y (B). */
int64_t sl_count_correct(const sl_tensor *pred, const sl_tensor *y);

/* Checked int64 arithmetic for sizes computed from user-given numbers
 * (options, file headers, shapes): signed overflow is undefined behaviour,
 * so it must be caught before the range check that would use the result.
 * Each stores a op b in *out and returns false if it does not fit. */
static inline bool sl_mul_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool sl_add_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
/* The product of n non-negative extents, or false if it overflows. */
bool sl_numel_ok(int n, const int64_t *shape, int64_t *out);

/* NaN and infinities (finite.c).  The index (row-major, from 0) of the
 * first non-finite element of a real tensor, -1 if none or not real. */
int64_t sl_tensor_first_nonfinite(const sl_tensor *t);
/* SL_ENUMERIC "<what>: x has a non-finite value (nan) in row 17" (rows from
 * 1), for x and real y of d. */
int sl_check_finite_dataset(const sl_dataset *d, const char *what);
/* SL_ENUMERIC "<what>: parameter '0.weight' holds a non-finite value ...". */
int sl_check_finite_params(sl_model *m, const char *what);

/* The pool's thread count (parallel.c): sl_set_threads's and
 * sl_get_threads's, which blas.c defines around these. */
void sl_pool_set_threads(int n);
int sl_pool_threads(void);

/* Number of elements in arr (a true array, not a pointer). */
#define SL_COUNTOF(arr) (sizeof(arr) / sizeof((arr)[0]))

/* For the few loops that stream over every parameter or activation of a
 * step (optimizer update, bias): one copy compiled for AVX-512, one
 * for AVX2 and one for the baseline, picked once at load time by the
 * CPU's features.  16 or 8 floats per instruction instead of 4.  No clone
 * contracts a * b + c into an FMA (C11 mode implies -ffp-contract=off), so
 * each rounds every operation as the baseline does and results do not
 * depend on the CPU.  Put on a function with restrict pointer arguments
 * (noinline, so they stay restrict): that is what lets GCC vectorise.
 * Elsewhere (other compilers or systems without ifunc) just noinline. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SL_HOT_CLONES __attribute__((noinline, target_clones("avx512f", "avx2", "default")))
#else
#define SL_HOT_CLONES __attribute__((noinline))
#endif

#endif
