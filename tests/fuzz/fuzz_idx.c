/* Fuzz harness: the IDX reader and IDX image/label datasets.
 * Input: 2 bytes (big-endian) giving the length L of an images file, then
 * those L bytes, then a labels file (the rest); each is also read alone. */
#include "config.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
    const uint8_t *images = data + (size >= 2 ? 2 : size);
    size_t rest = size >= 2 ? size - 2 : 0;
    if (len > rest)
        len = rest;
    const char *img = fuzz_file(0, images, len);
    const char *lab = fuzz_file(1, images + len, rest - len);
    sl_tensor t = {0};
    int rc = sl_idx_read(lab, &t);
    fuzz_check_message(rc);
    sl_tensor_release(&t);
    sl_dataset d = {0};
    rc = sl_dataset_idx(img, lab, &d);
    fuzz_check_message(rc);
    if (rc == SL_OK && (d.x.shape[0] != d.y.shape[0] || d.x.dtype != SL_F32))
        abort();
    sl_dataset_release(&d);
    return 0;
}
