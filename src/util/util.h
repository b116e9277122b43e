/* util.h: small helpers shared by the data, plot and download code (not public API): md5,
 * file-system helpers (mkdir -p, file size, atomic replace), monotonic time. */
#ifndef DEEPC_UTIL_H
#define DEEPC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deepc/core.h"

/* ---- md5 (RFC 1321), streaming ------------------------------------------------------- */
typedef struct dc__md5 {
    uint32_t state[4];
    uint64_t length;       /* bytes hashed so far */
    uint8_t buffer[64];    /* a partial block */
} dc__md5;

void dc__md5_init(dc__md5 *ctx);
void dc__md5_update(dc__md5 *ctx, const void *data, size_t size);
void dc__md5_final(dc__md5 *ctx, uint8_t digest[16]);
void dc__md5_hex(const uint8_t digest[16], char hex[33]);

/* ---- files ---------------------------------------------------------------------------- */
/* Creates path and its missing parents (mode 0755). DC_ERR_IO naming the path on failure. */
dc_status dc__mkdir_p(const char *path);
/* Size of a regular file, -1 if it does not exist or is not a regular file. */
int64_t dc__file_size(const char *path);
bool dc__is_dir(const char *path);
bool dc__is_file(const char *path);
/* A temporary name beside `path` ("<path>.tmp-<pid>-<n>"), unique within the process. */
void dc__tmp_path(const char *path, char *out, size_t size);
/* fsync(tmp), rename(tmp, path), fsync the folder: the last step of an atomic write. On
 * failure tmp is removed and DC_ERR_IO names path. */
dc_status dc__commit_tmp(const char *tmp, const char *path);
/* Joins a folder and a name with one '/' into out; false if it does not fit. */
bool dc__path_join(char *out, size_t size, const char *dir, const char *name);

/* Copies src into dst (size bytes), truncating; always NUL-terminated. */
static inline void dc__strlcpy(char *dst, size_t size, const char *src)
{
    if (!size) return;
    size_t n = 0;
    while (n + 1 < size && src[n]) n++;
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
    dst[n] = '\0';
}

/* ---- time ----------------------------------------------------------------------------- */
double dc__now(void); /* monotonic seconds */

#endif /* DEEPC_UTIL_H */
