/* core/resume.c — training checkpoints: everything a killed sl_train needs
 * to continue exactly where it stood.
 *
 * One safetensors file (the writer and strict reader of checkpoint.c):
 * the model's parameters and buffers under their model names (as
 * sl_model_save writes them), each optimizer state tensor under
 * "optim.<name>", each module's noise stream as an I64 [4] tensor
 * "rng.<module path>", early stopping's best state (restore_best) as
 * "best.<name>", and the numbers — position, counters, schedule,
 * optimizer step count and rate, the run's identity, the history so far —
 * as __metadata__ strings (doubles with 17 significant digits, which
 * round-trip exactly).  docs/design-notes.md lists every name.
 *
 * A resume reads and checks everything (kind, optimizer type, the run's
 * batch/seed/shuffle/dataset size, schedule kind, every tensor's name and
 * shape) before it changes anything, so a refused checkpoint leaves the
 * model, optimizer and schedule as they were.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The value of __metadata__'s "symlab_checkpoint" in training checkpoints;
 * a change of layout gets a new number. */
#define KIND "training 1"

/* ---- the tensors ------------------------------------------------------- */

typedef struct tensor_list {
    sl_named_tensor *t;
    char **names;     /* owned names (NULL where borrowed) */
    sl_tensor *views; /* optimizer state views and rng wraps */
    int n, cap;
} tensor_list;

static void list_free(tensor_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->views);
    free(l->t);
    *l = (tensor_list){0};
}

/* Room for `cap` entries, allocated once so that views stay put. */
static int list_init(tensor_list *l, int cap)
{
    l->cap = cap;
    l->t = calloc((size_t)cap + 1, sizeof *l->t);
    l->names = calloc((size_t)cap + 1, sizeof *l->names);
    l->views = calloc((size_t)cap + 1, sizeof *l->views);
    if (!l->t || !l->names || !l->views) {
        list_free(l);
        return sl_error(SL_ENOMEM, "training checkpoint: out of memory");
    }
    return SL_OK;
}

/* Appends "<prefix><name>" -> *view (copied into the list). */
static int list_add(tensor_list *l, const char *prefix, const char *name, const sl_tensor *view)
{
    if (l->n == l->cap)
        return sl_error(SL_EINVAL, "training checkpoint: more tensors than counted");
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *full = malloc(len);
    if (!full)
        return sl_error(SL_ENOMEM, "training checkpoint: out of memory");
    snprintf(full, len, "%s%s", prefix, name);
    l->names[l->n] = full;
    l->views[l->n] = *view;
    l->t[l->n] = (sl_named_tensor){full, &l->views[l->n], false};
    l->n++;
    return SL_OK;
}

static int count_optim_state(sl_optim *o, int *count)
{
    const char *name;
    sl_tensor view;
    int i = 0, rc;
    while ((rc = sl_optim_state_tensor(o, i, &name, &view)) > 0)
        i++;
    SL_TRY(rc);
    *count = i;
    return SL_OK;
}

/* Parameters and buffers of m, each under "<prefix><name>". */
static int add_model(tensor_list *l, const char *prefix, sl_model *m)
{
    int rc = SL_OK;
    for (int i = 0; rc == SL_OK && i < sl_model_nparams(m); i++)
        rc = list_add(l, prefix, sl_model_param_name(m, i), sl_model_param(m, i));
    for (int i = 0; rc == SL_OK && i < sl_model_nbuffers(m); i++)
        rc = list_add(l, prefix, sl_model_buffer_name(m, i), sl_model_buffer(m, i));
    return rc;
}

/* Model parameters and buffers, optimizer state, noise streams, and early
 * stopping's best state. */
static int collect(const sl_train_ckpt *c, tensor_list *l)
{
    sl_model *m = c->model;
    sl_model *best = c->early_stop ? sl_early_stop_best_model(c->early_stop) : NULL;
    int np = sl_model_nparams(m), nb = sl_model_nbuffers(m), nm = sl_model_nmodules(m), no;
    SL_TRY(count_optim_state(c->optim, &no));
    SL_TRY(list_init(l, (np + nb) * (best ? 2 : 1) + no + nm));
    int rc = add_model(l, "", m);
    if (rc == SL_OK && best)
        rc = add_model(l, "best.", best);
    for (int i = 0; rc == SL_OK && i < no; i++) {
        const char *name;
        sl_tensor view;
        rc = sl_optim_state_tensor(c->optim, i, &name, &view);
        if (rc >= 0)
            rc = list_add(l, "optim.", name, &view);
    }
    for (int i = 0; rc == SL_OK && i < nm; i++) {
        sl_module *mod = sl_model_module(m, i);
        sl_tensor view;
        int64_t four = 4;
        rc = sl_tensor_wrap(&view, sl_module_rng(mod)->s, SL_I64, 1, &four);
        if (rc == SL_OK)
            rc = list_add(l, "rng.", sl_module_path(mod), &view);
    }
    if (rc < 0)
        list_free(l);
    return rc;
}

/* ---- the numbers ------------------------------------------------------- */

static int put_i64(sl_options *meta, const char *key, int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    return sl_options_set_string(meta, key, s);
}

static int put_f64(sl_options *meta, const char *key, double v)
{
    char s[40];
    snprintf(s, sizeof s, "%.17g", v);
    return sl_options_set_string(meta, key, s);
}

/* A growable string. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf;

static int strbuf_add(strbuf *b, const char *item, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown)
            return sl_error(SL_ENOMEM, "training checkpoint: out of memory");
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, item, n);
    b->len += n;
    b->s[b->len] = '\0';
    return SL_OK;
}

/* One row as "name=value,..." after a ';' unless it is the first (names
 * are identifiers chosen by the loop and hooks; one that would break the
 * layout is refused). */
static int add_row(strbuf *b, const sl_record *row, bool first)
{
    for (int k = 0; k < sl_record_count(row); k++) {
        const char *name = sl_record_name(row, k);
        if (strpbrk(name, "=,;"))
            return sl_error(SL_EINVAL, "training checkpoint: history entry '%s' has a "
                            "character ('=', ',' or ';') it cannot store", name);
        char item[160];
        int n = snprintf(item, sizeof item, "%s%s=%.17g", k ? "," : first ? "" : ";", name,
                         sl_record_value(row, k));
        if (n < 0 || (size_t)n >= sizeof item)
            return sl_error(SL_EINVAL, "training checkpoint: history entry '%s' is too long",
                            name);
        SL_TRY(strbuf_add(b, item, (size_t)n));
    }
    return SL_OK;
}

/* The epoch rows of this run from `from` on under "history", and its step
 * rows from `steps_from` on under "history_steps". */
static int put_history(sl_options *meta, const sl_history *h, int from, int64_t steps_from)
{
    strbuf b = {0};
    int rc = strbuf_add(&b, "", 0);
    for (int i = from; rc == SL_OK && i < sl_history_count(h); i++)
        rc = add_row(&b, sl_history_row(h, i), i == from);
    if (rc == SL_OK)
        rc = sl_options_set_string(meta, "history", b.s);
    sl_record *row = rc == SL_OK ? sl_record_new() : NULL;
    if (rc == SL_OK && !row)
        rc = sl_error(SL_ENOMEM, "training checkpoint: out of memory");
    b.len = 0;
    for (int64_t i = steps_from; rc == SL_OK && i < sl_history_step_count(h); i++) {
        rc = sl_history_step_row(h, i, row);
        if (rc == SL_OK)
            rc = add_row(&b, row, i == steps_from);
    }
    if (rc == SL_OK)
        rc = sl_options_set_string(meta, "history_steps", b.len ? b.s : "");
    sl_record_free(row);
    free(b.s);
    return rc;
}

/* "none", "on", or "restore_best" (the checkpoint then holds best.*). */
static const char *early_stop_kind(const sl_train_ckpt *c)
{
    if (!c->early_stop)
        return "none";
    return sl_early_stop_best_model(c->early_stop) ? "restore_best" : "on";
}

static int build_meta(const sl_train_ckpt *c, const sl_train_pos *pos, sl_options *meta)
{
    const sl_train_id *id = &c->id;
    sl_schedule *sch = c->schedule;
    int rc = sl_options_set_string(meta, "symlab_checkpoint", KIND);
    if (rc == SL_OK)
        rc = sl_options_set_string(meta, "optimizer", sl_optim_name(c->optim));
    if (rc == SL_OK)
        rc = put_i64(meta, "optimizer_steps", sl_optim_steps(c->optim));
    if (rc == SL_OK)
        rc = put_f64(meta, "lr", sl_optim_lr(c->optim));
    if (rc == SL_OK)
        rc = sl_options_set_string(meta, "schedule", sch ? sl_schedule_kind(sch) : "none");
    if (rc == SL_OK)
        rc = put_i64(meta, "schedule_count", sch ? sl_schedule_count(sch) : 0);
    if (rc == SL_OK)
        rc = put_f64(meta, "schedule_base_lr", sch ? sl_schedule_base_lr(sch) : NAN);
    const struct {
        const char *key;
        int64_t v;
    } ints[] = {{"epoch", pos->epoch},       {"batch_in_epoch", pos->batch},
                {"step", pos->step},         {"seen", pos->seen},
                {"correct", pos->correct},   {"batch", id->batch},
                {"seed", (int64_t)id->seed}, {"shuffle", id->shuffle},
                {"drop_last", id->drop_last}, {"samples", id->samples},
                {"start_epoch", id->start_epoch}};
    for (size_t i = 0; rc == SL_OK && i < SL_COUNTOF(ints); i++)
        rc = put_i64(meta, ints[i].key, ints[i].v);
    if (rc == SL_OK)
        rc = put_f64(meta, "loss_sum", pos->loss_sum);
    if (rc == SL_OK)
        rc = sl_options_set_string(meta, "early_stop", early_stop_kind(c));
    if (rc == SL_OK && c->early_stop) {
        sl_early_stop_state es;
        sl_early_stop_get(c->early_stop, &es);
        rc = put_f64(meta, "early_stop_best", es.best);
        if (rc == SL_OK)
            rc = put_i64(meta, "early_stop_wait", es.wait);
        if (rc == SL_OK)
            rc = put_i64(meta, "early_stop_best_epoch", es.best_epoch);
        if (rc == SL_OK)
            rc = put_i64(meta, "early_stop_stopped_epoch", es.stopped_epoch);
    }
    if (rc == SL_OK && c->history)
        rc = put_history(meta, c->history, c->history_from, c->steps_from);
    return rc == SL_ENOMEM ? sl_error(rc, "training checkpoint: out of memory") : rc;
}

int sl_train_checkpoint_save(const char *path, const sl_train_ckpt *c, const sl_train_pos *pos)
{
    tensor_list l = {0};
    SL_TRY(collect(c, &l));
    sl_options *meta = sl_options_new();
    int rc = meta ? build_meta(c, pos, meta)
                  : sl_error(SL_ENOMEM, "training checkpoint: out of memory");
    if (rc == SL_OK)
        rc = sl_safetensors_save(path, l.t, l.n, meta, "training checkpoint");
    sl_options_free(meta);
    list_free(&l);
    return rc;
}

/* ---- resuming ---------------------------------------------------------- */

/* What a resume reads before it applies anything. */
typedef struct loaded {
    const char *path;
    const sl_train_ckpt *c;
    sl_train_pos pos;
    int64_t optim_steps, schedule_count;
    double lr, schedule_base_lr;
    char *history; /* owned copies of the "history" and "history_steps" */
    char *steps;   /* strings, or NULL */
    sl_early_stop_state es;
} loaded;

static int meta_string(const loaded *ld, const sl_options *meta, const char *key,
                       const char **out)
{
    if (!sl_options_has(meta, key))
        return sl_error(SL_EFORMAT, "%s: not a training checkpoint, or a damaged one: no "
                        "'%s' in its metadata", ld->path, key);
    *out = sl_options_string(meta, key);
    return SL_OK;
}

static int meta_i64(const loaded *ld, const sl_options *meta, const char *key, int64_t *out)
{
    const char *s = "";
    SL_TRY(meta_string(ld, meta, key, &s));
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return sl_error(SL_EFORMAT, "%s: training checkpoint metadata '%s' is '%s', not an "
                        "integer", ld->path, key, s);
    *out = (int64_t)v;
    return SL_OK;
}

static int meta_f64(const loaded *ld, const sl_options *meta, const char *key, double *out)
{
    const char *s = "";
    SL_TRY(meta_string(ld, meta, key, &s));
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end)
        return sl_error(SL_EFORMAT, "%s: training checkpoint metadata '%s' is '%s', not a "
                        "number", ld->path, key, s);
    *out = v;
    return SL_OK;
}

/* The run being resumed must draw the same batches as the one saved. */
static int check_identity(const loaded *ld, const sl_options *meta)
{
    const sl_train_id *id = &ld->c->id;
    const struct {
        const char *key;
        int64_t want;
    } same[] = {{"batch", id->batch},         {"seed", (int64_t)id->seed},
                {"shuffle", id->shuffle},     {"drop_last", id->drop_last},
                {"samples", id->samples},     {"start_epoch", id->start_epoch}};
    for (size_t i = 0; i < SL_COUNTOF(same); i++) {
        int64_t got;
        SL_TRY(meta_i64(ld, meta, same[i].key, &got));
        if (got != same[i].want)
            return sl_error(SL_EINVAL, "%s: the checkpoint's run has %s = %" PRId64 ", this run "
                            "%" PRId64 " (%s)", ld->path, same[i].key, got, same[i].want,
                            strcmp(same[i].key, "samples") == 0 ? "training samples"
                                                                : "train option");
    }
    return SL_OK;
}

static int check_kinds(const loaded *ld, const sl_options *meta)
{
    const char *kind = "", *optim = "", *schedule = "";
    SL_TRY(meta_string(ld, meta, "symlab_checkpoint", &kind));
    if (strcmp(kind, KIND) != 0)
        return sl_error(SL_EFORMAT, "%s: training checkpoint format '%s', this symlab reads "
                        "'%s'", ld->path, kind, KIND);
    SL_TRY(meta_string(ld, meta, "optimizer", &optim));
    if (strcmp(optim, sl_optim_name(ld->c->optim)) != 0)
        return sl_error(SL_EINVAL, "%s: the checkpoint was written with optimizer '%s', this "
                        "run uses '%s'", ld->path, optim, sl_optim_name(ld->c->optim));
    SL_TRY(meta_string(ld, meta, "schedule", &schedule));
    const char *ours = ld->c->schedule ? sl_schedule_kind(ld->c->schedule) : "none";
    if (strcmp(schedule, ours) != 0)
        return sl_error(SL_EINVAL, "%s: the checkpoint was written with schedule '%s', this run "
                        "has '%s'", ld->path, schedule, ours);
    /* Written before early stopping was saved: "none". */
    const char *es = sl_options_has(meta, "early_stop") ? sl_options_string(meta, "early_stop")
                                                         : "none";
    if (strcmp(es, early_stop_kind(ld->c)) != 0)
        return sl_error(SL_EINVAL, "%s: the checkpoint was written with early_stop '%s', this "
                        "run has '%s'", ld->path, es, early_stop_kind(ld->c));
    return SL_OK;
}

/* The check callback of sl_safetensors_load: every number, before any
 * tensor is touched. */
static int read_meta(void *userdata, const sl_options *meta)
{
    loaded *ld = userdata;
    SL_TRY(check_kinds(ld, meta));
    SL_TRY(check_identity(ld, meta));
    sl_train_pos *p = &ld->pos;
    SL_TRY(meta_i64(ld, meta, "epoch", &p->epoch));
    SL_TRY(meta_i64(ld, meta, "batch_in_epoch", &p->batch));
    SL_TRY(meta_i64(ld, meta, "step", &p->step));
    SL_TRY(meta_i64(ld, meta, "seen", &p->seen));
    SL_TRY(meta_i64(ld, meta, "correct", &p->correct));
    SL_TRY(meta_f64(ld, meta, "loss_sum", &p->loss_sum));
    SL_TRY(meta_i64(ld, meta, "optimizer_steps", &ld->optim_steps));
    SL_TRY(meta_f64(ld, meta, "lr", &ld->lr));
    SL_TRY(meta_i64(ld, meta, "schedule_count", &ld->schedule_count));
    SL_TRY(meta_f64(ld, meta, "schedule_base_lr", &ld->schedule_base_lr));
    if (p->epoch < 0 || p->batch < 0 || p->step < 0 || p->seen < 0 || p->correct < 0 ||
        ld->optim_steps < 0 || ld->schedule_count < 0 || !(ld->lr >= 0) || !isfinite(ld->lr))
        return sl_error(SL_EFORMAT, "%s: training checkpoint holds a negative count or a bad "
                        "learning rate", ld->path);
    if (ld->c->early_stop) {
        SL_TRY(meta_f64(ld, meta, "early_stop_best", &ld->es.best));
        SL_TRY(meta_i64(ld, meta, "early_stop_wait", &ld->es.wait));
        SL_TRY(meta_i64(ld, meta, "early_stop_best_epoch", &ld->es.best_epoch));
        SL_TRY(meta_i64(ld, meta, "early_stop_stopped_epoch", &ld->es.stopped_epoch));
    }
    const sl_train_ckpt *c = ld->c;
    if (p->epoch < c->id.start_epoch || p->epoch > c->end_epoch || p->batch > c->nbatches ||
        (p->epoch == c->end_epoch && p->batch))
        return sl_error(SL_EINVAL, "%s: the checkpoint stands at epoch %" PRId64 " batch %" PRId64
                        ", outside this run's epochs %" PRId64 " to %" PRId64, ld->path,
                        p->epoch + 1, p->batch, c->id.start_epoch + 1, c->end_epoch);
    if (sl_options_has(meta, "history") &&
        !(ld->history = sl_strdup(sl_options_string(meta, "history"))))
        return SL_ENOMEM;
    if (sl_options_has(meta, "history_steps") &&
        !(ld->steps = sl_strdup(sl_options_string(meta, "history_steps"))))
        return SL_ENOMEM;
    return SL_OK;
}

/* Appends the saved rows "name=value,...;..." to h with `append`. */
static int restore_rows(const char *path, char *text, sl_history *h,
                        int (*append)(sl_history *, const sl_record *))
{
    sl_record *row = sl_record_new();
    if (!row)
        return sl_error(SL_ENOMEM, "out of memory");
    int rc = SL_OK;
    char *rows_save = NULL;
    for (char *r = strtok_r(text, ";", &rows_save); rc == SL_OK && r;
         r = strtok_r(NULL, ";", &rows_save)) {
        sl_record_clear(row);
        char *items_save = NULL;
        for (char *it = strtok_r(r, ",", &items_save); rc == SL_OK && it;
             it = strtok_r(NULL, ",", &items_save)) {
            char *eq = strchr(it, '='), *end = NULL;
            double v = eq ? strtod(eq + 1, &end) : 0.0;
            if (!eq || end == eq + 1 || *end) {
                rc = sl_error(SL_EFORMAT, "%s: training checkpoint history entry '%s' is not "
                              "name=number", path, it);
                break;
            }
            *eq = '\0';
            rc = sl_record_set(row, it, v);
        }
        if (rc == SL_OK)
            rc = append(h, row);
    }
    sl_record_free(row);
    return rc;
}

int sl_train_checkpoint_load(const char *path, const sl_train_ckpt *c, sl_train_pos *pos)
{
    tensor_list l = {0};
    SL_TRY(collect(c, &l));
    loaded ld = {.path = path, .c = c};
    int rc = sl_safetensors_load(&(sl_safetensors_load_args){.path = path,
                                                              .what = "training run",
                                                              .tensors = l.t,
                                                              .n = l.n,
                                                              .check = read_meta,
                                                              .userdata = &ld});
    list_free(&l);
    /* Validated and the tensors in place: now the numbers. */
    if (rc == SL_OK)
        rc = sl_optim_set_steps(c->optim, ld.optim_steps);
    if (rc == SL_OK)
        sl_optim_set_lr(c->optim, ld.lr);
    if (rc == SL_OK && c->schedule && isfinite(ld.schedule_base_lr))
        rc = sl_schedule_restore(c->schedule, ld.schedule_base_lr, ld.schedule_count);
    if (rc == SL_OK && c->early_stop)
        sl_early_stop_set(c->early_stop, &ld.es);
    if (rc == SL_OK && c->history && ld.history)
        rc = restore_rows(path, ld.history, c->history, sl_history_append);
    if (rc == SL_OK && c->history && ld.steps)
        rc = restore_rows(path, ld.steps, c->history, sl_history_append_step);
    if (rc == SL_OK)
        *pos = ld.pos;
    free(ld.history);
    free(ld.steps);
    return rc;
}
