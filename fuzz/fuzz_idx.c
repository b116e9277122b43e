/* fuzz_idx.c: libFuzzer target for the IDX (MNIST) reader. The input is split in two: the
 * first byte picks how much goes to the image file (the rest is the label file), so both
 * parsers, the count cross-check and the gzip path (inputs starting 1f 8b) get exercised.
 * A header may claim up to 4 billion images: the reader must not allocate beyond the data. */
#include <stddef.h>
#include <stdint.h>

#include "deepc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t cut = (size_t)data[0] * (size - 1) / 255;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    dc_dataset *ds = dc_idx_parse(data[0] & 1 ? DC_DATASET_FASHION_MNIST : DC_DATASET_MNIST, body, cut,
                                  "images", body + cut, n - cut, "labels");
    if (ds) {
        /* a parsed set must be internally consistent */
        /* touch the last pixel of every image (ASan checks the bounds) */
        uint32_t sum = 0;
        for (int64_t i = 0; i < ds->count; i++) {
            if (ds->labels[i] >= 10) __builtin_trap();
            sum += ds->images[i * ds->image_size + ds->image_size - 1];
        }
        if (ds->count == 0 && sum != 0) __builtin_trap();
        dc_dataset_free(ds);
    }
    dc_clear_error();
    return 0;
}
