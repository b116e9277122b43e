/* md5.c: MD5 (RFC 1321) for verifying downloads against the data sets' published checksums.
 * Not for security: the published sums are md5, so md5 is what has to be computed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "deepc/data.h"
#include "util.h"

/* per-round shift amounts and the sine-derived constants K[i] = floor(2^32 * |sin(i + 1)|) */
static const uint32_t md5_s[64] = {
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};
static const uint32_t md5_k[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static uint32_t rotl(uint32_t x, uint32_t c) { return (x << c) | (x >> (32 - c)); }

static void md5_block(uint32_t st[4], const uint8_t *p)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++) /* little-endian words, independent of the host order */
        m[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl(a + f + md5_k[i] + m[g], md5_s[i]);
        a = t;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
}

void dc__md5_init(dc__md5 *ctx)
{
    ctx->state[0] = 0x67452301;
    ctx->state[1] = 0xefcdab89;
    ctx->state[2] = 0x98badcfe;
    ctx->state[3] = 0x10325476;
    ctx->length = 0;
}

void dc__md5_update(dc__md5 *ctx, const void *data, size_t size)
{
    const uint8_t *p = data;
    size_t have = (size_t)(ctx->length & 63);
    ctx->length += size;
    if (have) {
        size_t take = 64 - have < size ? 64 - have : size;
        memcpy(ctx->buffer + have, p, take);
        p += take;
        size -= take;
        if (have + take < 64) return;
        md5_block(ctx->state, ctx->buffer);
    }
    for (; size >= 64; p += 64, size -= 64) md5_block(ctx->state, p);
    if (size) memcpy(ctx->buffer, p, size);
}

void dc__md5_final(dc__md5 *ctx, uint8_t digest[16])
{
    uint64_t bits = ctx->length * 8;
    /* padding: 0x80, zeros up to 56 mod 64, then the bit length little-endian */
    uint8_t pad[72] = {0x80};
    size_t have = (size_t)(ctx->length & 63);
    size_t npad = have < 56 ? 56 - have : 120 - have;
    for (int i = 0; i < 8; i++) pad[npad + i] = (uint8_t)(bits >> (8 * i));
    dc__md5_update(ctx, pad, npad + 8);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) digest[4 * i + j] = (uint8_t)(ctx->state[i] >> (8 * j));
}

void dc__md5_hex(const uint8_t digest[16], char hex[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[32] = '\0';
}

void dc_md5_buffer(const void *data, size_t size, char hex[33])
{
    dc__md5 ctx;
    uint8_t d[16];
    dc__md5_init(&ctx);
    dc__md5_update(&ctx, data, size);
    dc__md5_final(&ctx, d);
    dc__md5_hex(d, hex);
}

dc_status dc_md5_file(const char *path, char hex[33])
{
    FILE *f = fopen(path, "rb");
    if (!f) return dc_set_error(DC_ERR_IO, "md5: cannot open %s: %s", path, strerror(errno));
    dc__md5 ctx;
    dc__md5_init(&ctx);
    uint8_t buf[1 << 15]; /* 32 KiB on the stack: hashing never runs on small worker stacks */
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) dc__md5_update(&ctx, buf, got);
    int err = ferror(f);
    fclose(f);
    if (err) return dc_set_error(DC_ERR_IO, "md5: error reading %s", path);
    uint8_t d[16];
    dc__md5_final(&ctx, d);
    dc__md5_hex(d, hex);
    return DC_OK;
}
