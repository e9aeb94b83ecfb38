/* Fuzz harness: the CSV dataset reader.
 * Input: one byte of flags (bit 0 header, bit 1 class labels, bits 2-4 the
 * label column from -4 to 3), then the file. */
#include "config.h"

#include <math.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool header = data[0] & 1, classes = data[0] & 2;
    int label = (int)((data[0] >> 2) & 7) - 4;
    const char *path = fuzz_file(0, data + 1, size - 1);
    sl_dataset d = {0};
    int rc = sl_dataset_csv(path, header, label, classes, &d);
    fuzz_check_message(rc);
    if (rc == SL_OK) {
        /* The promise: every value finite, every class label >= 0. */
        const float *x = d.x.data;
        for (int64_t i = 0; i < sl_tensor_numel(&d.x); i++)
            if (!isfinite(x[i]))
                abort();
        for (int64_t i = 0; i < sl_tensor_numel(&d.y); i++)
            if (classes ? ((const int64_t *)d.y.data)[i] < 0
                        : !isfinite(((const float *)d.y.data)[i]))
                abort();
    }
    sl_dataset_release(&d);
    return 0;
}
