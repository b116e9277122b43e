/* mapping.c: reference-counted file mappings and private buffer copies (see mapping.h). */
#include "mapping.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"

dc__mapping *dc__mapping_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dc_set_error(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        dc_set_error(DC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        dc_set_error(DC_ERR_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        dc_set_error(DC_ERR_IO, "%s: file too large to map", path);
        close(fd);
        return NULL;
    }
    dc__mapping *m = dc__calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return NULL;
    }
    m->size = (size_t)sb.st_size;
    m->refcount = 1;
    m->is_mmap = 1;
    if (m->size > 0) { /* mmap of length 0 is EINVAL: an empty file is simply an empty image */
        void *p = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            dc_set_error(DC_ERR_IO, "%s: cannot map %zu bytes: %s", path, m->size, strerror(errno));
            close(fd);
            free(m);
            return NULL;
        }
        m->data = p;
    }
    close(fd); /* the mapping stays valid after close */
    return m;
}

dc__mapping *dc__mapping_copy(const void *data, size_t size)
{
    dc__mapping *m = dc__calloc(1, sizeof *m);
    if (!m) return NULL;
    m->size = size;
    m->refcount = 1;
    m->is_mmap = 0;
    if (size > 0) {
        /* 64-byte alignment so that tensor data at aligned offsets is aligned as it would be
         * in a page-aligned mmap */
        size_t rounded = (size + 63) & ~(size_t)63;
        if (rounded < size || !(m->data = aligned_alloc(64, rounded))) {
            dc_set_error(DC_ERR_OOM, "out of memory copying a %zu-byte file image", size);
            free(m);
            return NULL;
        }
        memcpy(m->data, data, size);
    }
    return m;
}

dc__mapping *dc__mapping_retain(dc__mapping *m)
{
    if (m) __atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED);
    return m;
}

void dc__mapping_release(dc__mapping *m)
{
    if (!m || __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (m->data) {
        if (m->is_mmap)
            munmap(m->data, m->size);
        else
            free(m->data);
    }
    free(m);
}

void dc__mapping_release_cb(void *m) { dc__mapping_release(m); }
