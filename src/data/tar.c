/* tar.c: a minimal tar reader for the CIFAR-10 archive (cifar-10-binary.tar.gz): ustar and
 * GNU headers (long names, base-256 sizes) and pax path records, read through zlib (gzip or
 * plain). Only regular files and folders are extracted; absolute paths and ".." are refused,
 * and each file is written to a temporary name and renamed when complete. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data_internal.h"
#include "util/util.h"

#define TAR_BLOCK 512

static bool read_full(gzFile gz, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int got = gzread(gz, (char *)buf + done, (unsigned)(n - done));
        if (got <= 0) return false;
        done += (size_t)got;
    }
    return true;
}

/* Octal (NUL/space terminated) or GNU base-256 (top bit of the first byte set). */
static bool parse_number(const uint8_t *p, size_t n, int64_t *out)
{
    int64_t v = 0;
    if (p[0] & 0x80) {
        if (p[0] & 0x40) return false; /* negative */
        v = p[0] & 0x3f;
        for (size_t i = 1; i < n; i++) {
            if (v > (INT64_MAX >> 8)) return false;
            v = v << 8 | p[i];
        }
        *out = v;
        return true;
    }
    size_t i = 0;
    while (i < n && p[i] == ' ') i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v > (INT64_MAX >> 3)) return false;
        v = v * 8 + (p[i] - '0');
    }
    if (i < n && p[i] != '\0' && p[i] != ' ') return false;
    *out = v;
    return true;
}

static bool header_checksum_ok(const uint8_t *h)
{
    int64_t stored;
    if (!parse_number(h + 148, 8, &stored)) return false;
    int64_t sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == stored;
}

/* Rejects names that would escape dest_dir. */
static bool safe_name(const char *name)
{
    if (!name[0] || name[0] == '/') return false;
    const char *p = name;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        if (!slash) break;
        p = slash + 1;
    }
    return true;
}

/* Reads `size` bytes of member data into a malloc'ed, NUL-terminated buffer (long names and
 * pax records: small). */
static char *read_small(gzFile gz, int64_t size)
{
    if (size < 0 || size > (1 << 20)) return NULL;
    int64_t padded = (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
    char *buf = malloc((size_t)padded + 1);
    if (!buf) return NULL;
    if (!read_full(gz, buf, (size_t)padded)) {
        free(buf);
        return NULL;
    }
    buf[size] = '\0';
    return buf;
}

/* The "path" value of pax extended-header records "LEN path=VALUE\n". */
static char *pax_path(const char *rec, int64_t size)
{
    const char *p = rec, *end = rec + size;
    while (p < end) {
        char *after;
        long len = strtol(p, &after, 10);
        if (len <= 0 || after >= end || *after != ' ' || p + len > end) return NULL;
        const char *kv = after + 1, *rec_end = p + len - 1; /* rec_end: the '\n' */
        if (rec_end > kv && !strncmp(kv, "path=", 5)) {
            size_t n = (size_t)(rec_end - (kv + 5));
            char *v = malloc(n + 1);
            if (!v) return NULL;
            memcpy(v, kv + 5, n);
            v[n] = '\0';
            return v;
        }
        p += len;
    }
    return NULL;
}

dc_status dc_extract_tar_gz(const char *archive, const char *dest_dir)
{
    if (!archive || !dest_dir) return dc_set_error(DC_ERR_ARG, "extract: NULL path");
    gzFile gz = gzopen(archive, "rb");
    if (!gz) return dc_set_error(DC_ERR_IO, "cannot open %s: %s", archive, strerror(errno));
    gzbuffer(gz, 1 << 17);
    uint8_t h[TAR_BLOCK];
    char *long_name = NULL; /* from a GNU 'L' or pax 'x' header, for the next member */
    uint8_t *buf = malloc(1 << 20);
    dc_status st = DC_OK;
    int64_t offset = 0;
    int files = 0;
    if (!buf) {
        gzclose(gz);
        return dc_set_error(DC_ERR_OOM, "extract: out of memory");
    }
    for (;;) {
        if (!read_full(gz, h, TAR_BLOCK)) {
            /* archives normally end with two zero blocks, but EOF right after a member is
             * accepted too; a short header is not */
            int err;
            gzerror(gz, &err);
            if (err != Z_OK && err != Z_STREAM_END)
                st = dc_set_error(DC_ERR_FORMAT, "%s: truncated or corrupt archive at byte %lld", archive, (long long)offset);
            else if (files == 0)
                st = dc_set_error(DC_ERR_FORMAT, "%s: empty or truncated tar archive", archive);
            break;
        }
        offset += TAR_BLOCK;
        bool zero = true;
        for (int i = 0; i < TAR_BLOCK && zero; i++) zero = h[i] == 0;
        if (zero) break;
        if (!header_checksum_ok(h)) {
            st = dc_set_error(DC_ERR_FORMAT, "%s: not a tar archive, or a corrupt header at byte %lld",
                              archive, (long long)(offset - TAR_BLOCK));
            break;
        }
        int64_t size;
        if (!parse_number(h + 124, 12, &size) || size < 0) {
            st = dc_set_error(DC_ERR_FORMAT, "%s: bad member size at byte %lld", archive, (long long)(offset - TAR_BLOCK));
            break;
        }
        char type = (char)h[156];
        if (type == 'L' || type == 'x') {
            char *data = read_small(gz, size);
            if (!data) {
                st = dc_set_error(DC_ERR_FORMAT, "%s: bad extended header at byte %lld", archive, (long long)offset);
                break;
            }
            offset += (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
            char *name = type == 'L' ? strdup(data) : pax_path(data, size);
            free(data);
            if (name) {
                free(long_name);
                long_name = name;
            }
            continue;
        }
        char name[4096];
        if (long_name) {
            dc__strlcpy(name, sizeof name, long_name);
            free(long_name);
            long_name = NULL;
        } else {
            char n100[101], prefix[156];
            memcpy(n100, h, 100);
            n100[100] = '\0';
            memcpy(prefix, h + 345, 155);
            prefix[155] = '\0';
            bool ustar = !memcmp(h + 257, "ustar", 5);
            if (ustar && prefix[0]) snprintf(name, sizeof name, "%s/%s", prefix, n100);
            else dc__strlcpy(name, sizeof name, n100);
        }
        /* strip a leading "./" */
        char *rel = name;
        while (rel[0] == '.' && rel[1] == '/') rel += 2;
        int64_t padded = (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
        bool regular = type == '0' || type == '\0' || type == '7';
        bool dir = type == '5';
        if ((regular || dir) && !safe_name(rel)) {
            st = dc_set_error(DC_ERR_FORMAT, "%s: refusing member '%s' (absolute path or '..')", archive, name);
            break;
        }
        char path[8192];
        if ((regular || dir) && !dc__path_join(path, sizeof path, dest_dir, rel)) {
            st = dc_set_error(DC_ERR_ARG, "extract: path too long: %s/%s", dest_dir, rel);
            break;
        }
        if (dir) {
            if (dc__mkdir_p(path)) {
                st = dc_last_status();
                break;
            }
        }
        if (!regular) {
            /* folders, links, devices: skip the (normally empty) data */
            for (int64_t left = padded; left > 0;) {
                size_t take = left > (1 << 20) ? (size_t)1 << 20 : (size_t)left;
                if (!read_full(gz, buf, take)) {
                    st = dc_set_error(DC_ERR_FORMAT, "%s: truncated archive (member %s)", archive, name);
                    break;
                }
                left -= (int64_t)take;
            }
            if (st) break;
            offset += padded;
            continue;
        }
        /* parent folders, then the data into a temporary file */
        char parent[8192];
        dc__strlcpy(parent, sizeof parent, path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            if (dc__mkdir_p(parent)) {
                st = dc_last_status();
                break;
            }
        }
        char tmp[8300];
        dc__tmp_path(path, tmp, sizeof tmp);
        FILE *fp = fopen(tmp, "wb");
        if (!fp) {
            st = dc_set_error(DC_ERR_IO, "extract: cannot write %s: %s", tmp, strerror(errno));
            break;
        }
        for (int64_t left = padded; left > 0;) {
            size_t take = left > (1 << 20) ? (size_t)1 << 20 : (size_t)left;
            if (!read_full(gz, buf, take)) {
                st = dc_set_error(DC_ERR_FORMAT, "%s: truncated archive (member %s needs %lld bytes)",
                                  archive, name, (long long)size);
                break;
            }
            /* only `size` bytes are data; the rest of the last block is padding */
            int64_t done = padded - left;
            int64_t useful = size - done;
            size_t wr = useful <= 0 ? 0 : useful < (int64_t)take ? (size_t)useful : take;
            if (wr && fwrite(buf, 1, wr, fp) != wr) {
                st = dc_set_error(DC_ERR_IO, "extract: cannot write %s (disk full?)", path);
                break;
            }
            left -= (int64_t)take;
        }
        if (fclose(fp) != 0 && !st) st = dc_set_error(DC_ERR_IO, "extract: cannot write %s", path);
        if (st) {
            remove(tmp);
            break;
        }
        if (dc__commit_tmp(tmp, path)) {
            st = dc_last_status();
            break;
        }
        offset += padded;
        files++;
    }
    free(long_name);
    free(buf);
    gzclose(gz);
    return st;
}
