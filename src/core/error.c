/* error.c: the per-thread error slot behind dc_last_error(), and checked allocation. */
#include <stdarg.h>

#include "internal.h"

static _Thread_local dc_status tls_status = DC_OK;
static _Thread_local char tls_message[1024];

dc_status dc_last_status(void) { return tls_status; }

const char *dc_last_error(void) { return tls_status == DC_OK ? "" : tls_message; }

void dc_clear_error(void)
{
    tls_status = DC_OK;
    tls_message[0] = '\0';
}

dc_status dc_set_error(dc_status status, const char *fmt, ...)
{
    tls_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_message, sizeof tls_message, fmt, ap);
    va_end(ap);
    return status;
}

const char *dc_status_name(dc_status status)
{
    switch (status) {
    case DC_OK: return "ok";
    case DC_ERR_ARG: return "bad argument";
    case DC_ERR_SHAPE: return "shape mismatch";
    case DC_ERR_DTYPE: return "dtype mismatch";
    case DC_ERR_DEVICE: return "device mismatch";
    case DC_ERR_OOM: return "out of memory";
    case DC_ERR_IO: return "i/o error";
    case DC_ERR_FORMAT: return "malformed file";
    case DC_ERR_STATE: return "bad state";
    case DC_ERR_UNSUPPORTED: return "unsupported";
    case DC_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

void *dc__malloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) dc_set_error(DC_ERR_OOM, "out of memory allocating %zu bytes (%s:%d)", n, file, line);
    return p;
}

void *dc__calloc_at(size_t count, size_t n, const char *file, int line)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        dc_set_error(DC_ERR_OOM, "out of memory allocating %zu x %zu bytes (%s:%d)", count, n,
                     file, line);
    return p;
}

void *dc__realloc_at(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) dc_set_error(DC_ERR_OOM, "out of memory reallocating %zu bytes (%s:%d)", n, file, line);
    return q;
}
