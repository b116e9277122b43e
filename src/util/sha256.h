/* sha256.h: SHA-256 (FIPS 180-4), streaming, for checking downloads against the Hugging Face
 * hub's LFS object ids. Not public API. */
#ifndef DEEPC_SHA256_H
#define DEEPC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "deepc/core.h"

typedef struct dc__sha256 {
    uint32_t h[8];
    uint64_t length;    /* bytes hashed so far */
    uint8_t buffer[64]; /* a partial block */
} dc__sha256;

void dc__sha256_init(dc__sha256 *ctx);
void dc__sha256_update(dc__sha256 *ctx, const void *data, size_t size);
void dc__sha256_final(dc__sha256 *ctx, uint8_t digest[32]);
/* Lower-case hex of a digest (65 bytes with the NUL). */
void dc__sha256_hex(const uint8_t digest[32], char hex[65]);
/* The hex digest of a whole file; DC_ERR_IO naming it when unreadable. */
dc_status dc__sha256_file(const char *path, char hex[65]);

#endif
