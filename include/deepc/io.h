/* deepc/io.h: safetensors checkpoints, the format PyTorch and Hugging Face use.
 *
 *   dc_safetensors *st = dc_safetensors_open("model.safetensors");   // mmap + validation
 *   dc_tensor *w = dc_safetensors_get(st, "fc1.weight");             // view of the mapping
 *   ...
 *   dc_safetensors_close(st);   // tensors taken from it stay valid (they keep the mapping)
 *
 *   dc_named_tensor items[] = {{"fc1.weight", w}, {"fc1.bias", b}};
 *   dc_safetensors_save("out.safetensors", 2, items, NULL);          // atomic
 *
 * Reading validates the whole header first: header length within the file, JSON that parses,
 * known dtypes, shape x dtype size = byte length, offsets inside the data area, in order and
 * not overlapping. Any violation is DC_ERR_FORMAT with a message naming the file and the
 * tensor. Tensors keep the stored dtype (F16/BF16 too); use dc_to_dtype for F32.
 */
#ifndef DEEPC_IO_H
#define DEEPC_IO_H

#include "deepc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dc_safetensors dc_safetensors;

dc_safetensors *dc_safetensors_open(const char *path);
/* Parses a file image already in memory (fuzzing, tests). The buffer is copied. */
dc_safetensors *dc_safetensors_open_memory(const void *data, size_t size, const char *name);
void dc_safetensors_close(dc_safetensors *st);

int dc_safetensors_count(const dc_safetensors *st);
/* Names in file order. */
const char *dc_safetensors_name(const dc_safetensors *st, int index);
bool dc_safetensors_has(const dc_safetensors *st, const char *name);
/* A tensor viewing the file's bytes (no copy). NULL with an error naming the file if the
 * name is missing. */
dc_tensor *dc_safetensors_get(dc_safetensors *st, const char *name);
/* Stored dtype and shape without creating a tensor; returns false if missing. */
bool dc_safetensors_info(const dc_safetensors *st, const char *name, dc_dtype *dtype, int *ndim,
                         int64_t shape[DC_MAX_DIMS]);
/* A value of the "__metadata__" object, or NULL. */
const char *dc_safetensors_metadata(const dc_safetensors *st, const char *key);
const char *dc_safetensors_path(const dc_safetensors *st);

typedef struct dc_named_tensor {
    const char *name;
    const dc_tensor *tensor;
} dc_named_tensor;

/* Writes tensors (any dtype, any strides; written row-major) and optional metadata
 * (NULL-terminated array of key, value, key, value, ..., NULL) atomically: a temporary file
 * in the same folder, fsync, rename. Names must be unique. */
dc_status dc_safetensors_save(const char *path, int n, const dc_named_tensor *tensors,
                              const char *const *metadata);

/* Writes `size` bytes to path atomically (temporary file, fsync, rename). For reports,
 * JSON and other files that matter. */
dc_status dc_write_file_atomic(const char *path, const void *data, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* DEEPC_IO_H */
