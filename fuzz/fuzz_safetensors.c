/* fuzz_safetensors.c: libFuzzer target for the safetensors reader (src/io/safetensors.c).
 *
 *   CC=clang cmake -DDEEPC_FUZZ=ON -DDEEPC_SANITIZE=ON ... && ./fuzz_safetensors \
 *       -max_total_time=60 /tmp/st_corpus tests/fuzz_corpus/safetensors
 *
 * libFuzzer writes new inputs into the FIRST corpus folder: give it a scratch folder first so
 * the committed seeds (tests/fuzz_corpus/safetensors, written by tools/fixtures_io.py) stay
 * as they are.
 *
 * Each input is a whole file image: it is opened from memory, every tensor is taken (a view
 * of the image, or an aligned copy), read through a conversion to F32 so every byte of its data
 * area is touched, and the queries are exercised. Any crash, sanitizer report, leak or a tensor
 * whose bytes lie outside the image is a bug; refusing the input is fine.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deepc/core.h"
#include "deepc/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_pool_mark mark = dc_pool_push();
    dc_safetensors *st = dc_safetensors_open_memory(data, size, "fuzz");
    if (!st) {
        /* a refusal must come with a message naming the input */
        if (dc_last_status() == DC_OK || !strstr(dc_last_error(), "fuzz")) abort();
        dc_pool_pop(mark);
        return 0;
    }
    (void)dc_safetensors_metadata(st, "format");
    int n = dc_safetensors_count(st);
    dc_tensor **keep = calloc((size_t)(n > 0 ? n : 1), sizeof *keep);
    for (int i = 0; i < n; i++) {
        const char *name = dc_safetensors_name(st, i);
        if (!name || !dc_safetensors_has(st, name)) abort();
        dc_dtype dt;
        int nd;
        int64_t shape[DC_MAX_DIMS];
        if (!dc_safetensors_info(st, name, &dt, &nd, shape)) abort();
        dc_tensor *t = dc_safetensors_get(st, name);
        if (!t) continue; /* e.g. out of memory for an aligned copy */
        if (t->dtype != dt || t->ndim != nd) abort();
        if (keep) keep[i] = dc_tensor_retain(t);
        dc_tensor *f = dc_to_dtype(t, DC_F32);
        if (f && dc_numel(f) > 0) {
            /* touch the converted values (not their bits: NaN payloads are fine) */
            volatile float sink = dc_data_f32(f)[dc_numel(f) - 1];
            (void)sink;
        }
    }
    /* tensors outlive the checkpoint: read them again after close */
    dc_safetensors_close(st);
    if (keep) {
        for (int i = 0; i < n; i++) {
            if (!keep[i]) continue;
            int64_t numel = dc_numel(keep[i]);
            size_t nbytes = (size_t)numel * dc_dtype_size(keep[i]->dtype);
            if (nbytes) {
                volatile uint8_t sink = ((const uint8_t *)dc_data(keep[i]))[nbytes - 1];
                (void)sink;
            }
            dc_tensor_release(keep[i]);
        }
        free(keep);
    }
    dc_pool_pop(mark);
    return 0;
}
