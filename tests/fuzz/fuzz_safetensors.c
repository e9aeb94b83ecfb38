/* Fuzz harness: loading a safetensors checkpoint.  A load that fails must
 * leave the model exactly as it was; one that succeeds is undone so that
 * every input starts from the same model. */
#include "config.h"

#include "fuzz.h"

static sl_model *model;
static void *saved;
static size_t nbytes;

/* linear 3 -> 2 (f32): "0.weight" [2, 3], "0.bias" [2]; then linear 2 -> 1
 * without bias: "1.weight" [1, 2]. */
static void setup(void)
{
    if (sl_model_new(SL_F32, &model) < 0)
        abort();
    const int64_t layers[2][3] = {{3, 2, 1}, {2, 1, 0}};
    for (int i = 0; i < 2; i++) {
        sl_options *o = sl_options_new();
        sl_options_set_int(o, "in_features", layers[i][0]);
        sl_options_set_int(o, "out_features", layers[i][1]);
        sl_options_set_bool(o, "bias", layers[i][2]);
        if (!o || sl_model_add(model, "linear", o) < 0)
            abort();
        sl_options_free(o);
    }
    if (sl_model_build(model, 1) < 0)
        abort();
    nbytes = sl_tensor_nbytes(sl_model_flat_params(model));
    if (!(saved = malloc(nbytes)))
        abort();
    memcpy(saved, sl_model_flat_params(model)->data, nbytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model)
        setup();
    const char *path = fuzz_file(0, data, size);
    int rc = sl_model_load(model, path);
    fuzz_check_message(rc);
    void *now = sl_model_flat_params(model)->data;
    if (rc < 0 && memcmp(now, saved, nbytes) != 0)
        abort(); /* a failed load touched the model */
    memcpy(now, saved, nbytes);
    return 0;
}
