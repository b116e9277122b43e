/* fuzz_cifar.c: libFuzzer target for the CIFAR-10 binary-batch reader (record count =
 * size / 3073; ragged sizes and labels >= 10 must be errors, never crashes), followed by a
 * batch through the normalizer and the augmentation path of whatever parsed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "deepc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_dataset *ds = dc_cifar10_parse(data, size, "fuzz.bin");
    if (ds) {
        if (ds->count * 3073 != (int64_t)size) __builtin_trap();
        int64_t n = ds->count < 4 ? ds->count : 4;
        int64_t idx[4], y[4];
        float *x = malloc(sizeof(float) * 4 * 3072);
        for (int64_t i = 0; i < n; i++) idx[i] = ds->count - 1 - i;
        dc_rng rng;
        dc_rng_seed(&rng, size);
        dc_augment aug = dc_augment_auto(DC_DATASET_CIFAR10);
        if (x && dc_dataset_batch(ds, idx, n, &aug, &rng, x, y) == DC_OK)
            for (int64_t i = 0; i < n; i++)
                if (y[i] < 0 || y[i] >= 10) __builtin_trap();
        free(x);
        dc_dataset_free(ds);
    }
    dc_clear_error();
    return 0;
}
