/* core/early_stop.c — stop training when a history metric stops improving
 * (train.h, sl_early_stop_options), as Keras' EarlyStopping does.
 *
 * The best state is kept in a clone of the model made before training
 * (parameters and buffers; copying into it allocates nothing), so restoring
 * it is one sl_model_copy_state.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const sl_option_spec spec[] = {
    {"metric", SL_OPT_STRING, "val_loss", "history entry to watch", NULL},
    {"mode", SL_OPT_STRING, "auto", "whether lower or higher is better (auto: max for names "
     "containing 'acc')", "auto|min|max"},
    {"patience", SL_OPT_INT, "3", "epochs in a row without improvement that stop training", NULL},
    {"min_delta", SL_OPT_FLOAT, "0", "smallest change that counts as an improvement", NULL},
    {"restore_best", SL_OPT_BOOL, "false", "put back the best epoch's parameters at the end",
     NULL},
    {NULL, SL_OPT_INT, NULL, NULL, NULL}};

const sl_option_spec *sl_early_stop_options(void) { return spec; }

struct sl_early_stop {
    sl_options *opt;     /* validated copy: owns `metric` */
    const char *metric;
    bool maximise, restore;
    double min_delta, best;
    int64_t patience, wait, best_epoch, stopped_epoch; /* epochs 1-based, 0: none */
    sl_model *model;     /* borrowed: the model being trained */
    sl_model *best_state; /* clone holding the best epoch's state, if restore */
};

void sl_early_stop_free(sl_early_stop *es)
{
    if (!es)
        return;
    sl_model_free(es->best_state);
    sl_options_free(es->opt);
    free(es);
}

int sl_early_stop_new(const sl_options *opt, sl_model *model, sl_early_stop **out)
{
    sl_early_stop *es = calloc(1, sizeof *es);
    if (!es || !(es->opt = sl_options_copy(opt))) {
        free(es);
        return sl_error(SL_ENOMEM, "early_stop: out of memory");
    }
    int rc = sl_options_validate(es->opt, spec, "early_stop");
    if (rc == SL_OK) {
        es->metric = sl_options_string(es->opt, "metric");
        const char *mode = sl_options_string(es->opt, "mode");
        es->maximise = strcmp(mode, "max") == 0 ||
                       (strcmp(mode, "auto") == 0 && strstr(es->metric, "acc"));
        es->patience = sl_options_int(es->opt, "patience");
        es->min_delta = sl_options_float(es->opt, "min_delta");
        es->restore = sl_options_bool(es->opt, "restore_best");
        es->model = model;
        if (es->patience < 1 || !(es->min_delta >= 0) || !isfinite(es->min_delta))
            rc = sl_error(SL_EINVAL, "early_stop: patience must be >= 1 and min_delta >= 0");
    }
    if (rc == SL_OK && es->restore)
        rc = sl_model_clone(model, sl_model_dtype(model), &es->best_state);
    if (rc < 0) {
        sl_early_stop_free(es);
        return rc;
    }
    *out = es;
    return SL_OK;
}

static bool improved(const sl_early_stop *es, double v)
{
    if (!isfinite(v))
        return false;
    if (es->best_epoch == 0)
        return true;
    return es->maximise ? v > es->best + es->min_delta : v < es->best - es->min_delta;
}

int sl_early_stop_judge(sl_early_stop *es, int64_t epoch, const sl_record *row, bool *stop)
{
    double v;
    if (sl_record_get(row, es->metric, &v) < 0)
        return sl_error(SL_EINVAL, "early_stop: metric '%s' is not in the epoch's history row "
                        "(val_* metrics need a validation set)", es->metric);
    *stop = false;
    if (improved(es, v)) {
        es->best = v;
        es->best_epoch = epoch + 1;
        es->wait = 0;
        return es->restore ? sl_model_copy_state(es->best_state, es->model) : SL_OK;
    }
    if (++es->wait >= es->patience) {
        es->stopped_epoch = epoch + 1;
        *stop = true;
    }
    return SL_OK;
}

int sl_early_stop_finish(sl_early_stop *es, sl_history *h)
{
    if (h)
        sl_history_set_early_stop(h, es->best_epoch, es->stopped_epoch);
    if (es->restore && es->best_epoch > 0)
        return sl_model_copy_state(es->model, es->best_state);
    return SL_OK;
}

/* Training checkpoints (resume.c): the verdicts so far, put back as they
 * were, and the clone holding the best epoch's state. */
void sl_early_stop_get(const sl_early_stop *es, sl_early_stop_state *out)
{
    *out = (sl_early_stop_state){es->best, es->wait, es->best_epoch, es->stopped_epoch};
}

void sl_early_stop_set(sl_early_stop *es, const sl_early_stop_state *st)
{
    es->best = st->best;
    es->wait = st->wait;
    es->best_epoch = st->best_epoch;
    es->stopped_epoch = st->stopped_epoch;
}

sl_model *sl_early_stop_best_model(sl_early_stop *es) { return es->best_state; }
