/* plugins/symmetry_metrics/units.c — see units.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

/* Module index of a parameter named "<index>.<local>". */
static int name_module(const char *name) { return (int)strtol(name, NULL, 10); }

/* Types that act on each unit separately (activation of a unit = its value
 * after them). */
static bool per_unit_type(const char *type)
{
    static const char *const names[] = {"relu",    "leaky_relu", "tanh",      "sigmoid",
                                        "gelu",    "identity",   "dropout",   "batchnorm",
                                        NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(type, names[i]) == 0)
            return true;
    return false;
}

static const char *module_type_name(sl_model *m, int i)
{
    return sl_module_type_of(sl_model_module(m, i))->name;
}

int su_find_layers(sl_model *m, su_layer *layers, int *n)
{
    *n = 0;
    for (int p = 0; p < sl_model_nparams(m); p++) {
        const char *name = sl_model_param_name(m, p);
        const char *local = strchr(name, '.');
        const sl_tensor *w = sl_model_param(m, p);
        if (!local || strcmp(local + 1, "weight") != 0 || w->ndim < 2 || w->shape[0] <= 0)
            continue;
        if (*n == SU_MAX_LAYERS)
            return sl_error(SL_EINVAL, "symmetry probes: more than %d weight layers",
                            SU_MAX_LAYERS);
        su_layer *l = &layers[(*n)++];
        l->module = name_module(name);
        l->weight = p;
        char bias[64];
        snprintf(bias, sizeof bias, "%d.bias", l->module);
        l->bias = sl_model_find_param(m, bias);
        l->units = w->shape[0];
        l->fan_in = sl_tensor_numel(w) / l->units;
        l->next = -1;
        l->block = 0;
        l->act_module = l->module;
        for (int j = l->module + 1; j < sl_model_nmodules(m) &&
                                    per_unit_type(module_type_name(m, j));
             j++)
            l->act_module = j;
    }
    for (int i = 0; i + 1 < *n; i++) {
        layers[i].next = i + 1;
        if (layers[i + 1].fan_in % layers[i].units == 0)
            layers[i].block = layers[i + 1].fan_in / layers[i].units;
    }
    return SL_OK;
}

/* Permutes the middle index of t viewed as (outer, units, inner), through a
 * temporary copy. */
static int permute_middle(sl_tensor *t, int64_t outer, int64_t units, int64_t inner,
                          const int64_t *perm)
{
    if (sl_tensor_numel(t) != outer * units * inner || !sl_tensor_is_contiguous(t))
        return sl_error(SL_ESHAPE, "symmetry probes: cannot permute units of a tensor");
    size_t row = (size_t)inner * sl_dtype_size(t->dtype);
    size_t bytes = (size_t)(outer * units) * row;
    char *copy = malloc(bytes ? bytes : 1);
    if (!copy)
        return sl_error(SL_ENOMEM, "symmetry probes: out of memory");
    memcpy(copy, t->data, bytes);
    char *dst = t->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < units; j++)
            memcpy(dst + (size_t)(o * units + j) * row,
                   copy + (size_t)(o * units + perm[j]) * row, row);
    free(copy);
    return SL_OK;
}

int su_permute_units(sl_model *m, const su_layer *layers, int l, const int64_t *perm)
{
    const su_layer *L = &layers[l];
    if (L->block == 0)
        return sl_error(SL_EINVAL, "symmetry probes: layer %d has no hidden units", L->module);
    const su_layer *next = &layers[L->next];
    SL_TRY(permute_middle(sl_model_param(m, L->weight), 1, L->units, L->fan_in, perm));
    /* Rank-1 per-unit tensors from this layer's bias up to the next layer. */
    for (int p = 0; p < sl_model_nparams(m); p++) {
        sl_tensor *t = sl_model_param(m, p);
        int mod = name_module(sl_model_param_name(m, p));
        if (mod >= L->module && mod < next->module && t->ndim == 1 && t->shape[0] == L->units)
            SL_TRY(permute_middle(t, 1, L->units, 1, perm));
    }
    for (int b = 0; b < sl_model_nbuffers(m); b++) {
        sl_tensor *t = sl_model_buffer(m, b);
        int mod = name_module(sl_model_buffer_name(m, b));
        if (mod >= L->module && mod < next->module && t->ndim == 1 && t->shape[0] == L->units)
            SL_TRY(permute_middle(t, 1, L->units, 1, perm));
    }
    return permute_middle(sl_model_param(m, next->weight), next->units, L->units, L->block,
                          perm);
}

int su_matrix_f64(const sl_tensor *w, sl_tensor *out)
{
    int64_t shape[2] = {w->shape[0], sl_tensor_numel(w) / w->shape[0]};
    sl_tensor flat = {0};
    SL_TRY(sl_tensor_reshape(w, 2, shape, &flat));
    int rc = sl_tensor_alloc(out, SL_F64, 2, shape);
    if (rc >= 0)
        rc = sl_tensor_copy(out, &flat);
    sl_tensor_release(&flat);
    return rc;
}

int su_singular_values(const sl_tensor *w, sl_tensor *s)
{
    sl_tensor a = {0};
    SL_TRY(su_matrix_f64(w, &a));
    int rc = sl_svd(&a, NULL, s, NULL);
    sl_tensor_release(&a);
    return rc;
}
