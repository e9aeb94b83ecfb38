/* core/internal.h — helpers private to libsymlab (never installed).
 * Every core .c file includes config.h first, then this. */
#ifndef SYMLAB_CORE_INTERNAL_H
#define SYMLAB_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <symlab/symlab.h>

/* Zero-filled memory aligned to SL_ALIGNMENT; NULL (with SL_ENOMEM set) on
 * failure or overflow.  Free with sl_aligned_free. */
void *sl_aligned_calloc(size_t count, size_t size);
void sl_aligned_free(void *p);

/* strdup that sets SL_ENOMEM on failure. */
char *sl_strdup(const char *s);

/* Releases every tensor of an array of n and frees nothing else. */
void sl_tensor_release_all(sl_tensor *t, int n);

/* Training internals shared by train.c, evaluate.c, hook.c, history.c. */
int sl_hook_call(sl_hook *h, sl_event ev, sl_train_ctx *ctx);
int sl_history_append(sl_history *h, const sl_record *row);
/* Forward, loss and (with want_grad) backward ADDING into the gradients;
 * *pred is the model's output.  A non-finite loss skips the backward. */
int sl_loss_backward(sl_model *model, const sl_loss_type *loss, const sl_tensor *x,
                     const sl_tensor *y, bool want_grad, double *value, const sl_tensor **pred);
/* Rows of pred (B, C) whose argmax equals the i64 label in y (B). */
int64_t sl_count_correct(const sl_tensor *pred, const sl_tensor *y);

/* Number of elements in arr (a true array, not a pointer). */
#define SL_COUNTOF(arr) (sizeof(arr) / sizeof((arr)[0]))

#endif
