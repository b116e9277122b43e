/* cpu_memory.h: the CPU backend's allocator (memory.c). Blocks are 64-byte aligned; sizes are
 * counted in dc_mem_allocated. */
#ifndef DEEPC_CPU_MEMORY_H
#define DEEPC_CPU_MEMORY_H

#include <stddef.h>

/* A block of at least nbytes, possibly a cached one up to an eighth larger; *got is its size,
 * which the caller keeps and frees with: dc__cpu_free(ptr, *got). dc__cpu_alloc is the
 * backend's tensor allocation; dc__cpu_alloc_fit says how far cached plus live memory may
 * rise above the live high-water mark if the request misses the cache (memory.c). */
void *dc__cpu_alloc(size_t nbytes, size_t *got);
void *dc__cpu_alloc_fit(size_t nbytes, size_t slack, size_t *got);
void dc__cpu_free(void *ptr, size_t got);
/* Kernel scratch: sizes rounded up to powers of two so that few blocks serve many shapes. */
void *dc__cpu_scratch_alloc(size_t nbytes);
void dc__cpu_scratch_free(void *ptr, size_t nbytes);
/* Gives every cached block back to the system (dc_mem_empty_cache). */
void dc__cpu_empty_cache(void);

#endif
