/* mapping.h: a reference-counted, read-mostly image of a file (mmap) or of a private copy of
 * a memory buffer. Checkpoint tensors wrap slices of it with dc_from_external and hold one
 * reference each, so the image outlives the object that opened it for as long as any tensor
 * still views it. */
#ifndef DEEPC_IO_MAPPING_H
#define DEEPC_IO_MAPPING_H

#include <stddef.h>

typedef struct dc__mapping {
    void *data;    /* NULL when size == 0 */
    size_t size;
    int refcount;  /* atomic */
    int is_mmap;   /* 1: munmap on release; 0: free */
} dc__mapping;

/* Maps a whole file copy-on-write (PROT_READ|PROT_WRITE, MAP_PRIVATE): tensors viewing it can
 * be modified in place (e.g. fine-tuning loaded weights) without touching the file.
 * NULL with DC_ERR_IO naming the path on failure. */
dc__mapping *dc__mapping_open(const char *path);
/* A private 64-byte-aligned copy of data. NULL with DC_ERR_OOM on failure. */
dc__mapping *dc__mapping_copy(const void *data, size_t size);
dc__mapping *dc__mapping_retain(dc__mapping *m);
void dc__mapping_release(dc__mapping *m);
/* The same as dc__mapping_release with the signature dc_from_external wants. */
void dc__mapping_release_cb(void *m);

#endif /* DEEPC_IO_MAPPING_H */
