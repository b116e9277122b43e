/* idx.c: the IDX reader for MNIST and Fashion-MNIST (big-endian header, then raw bytes),
 * from files (gzipped or not, through zlib's gzread, which passes plain files through) or
 * from memory (tests and fuzzing). Every header field is checked against the data actually
 * present, and nothing is allocated beyond what the data holds, so a header that claims
 * four billion images cannot make the reader allocate terabytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data_internal.h"
#include "util/util.h"

#define IDX_IMAGES_MAGIC 2051u
#define IDX_LABELS_MAGIC 2049u

dc_dataset *dc__dataset_new(dc_dataset_id id, int64_t count)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info) {
        dc_set_error(DC_ERR_ARG, "unknown dataset id %d (valid: %s)", (int)id, dc_dataset_names());
        return NULL;
    }
    dc_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) goto oom;
    ds->id = id;
    ds->info = info;
    ds->count = count;
    ds->channels = info->channels;
    ds->height = info->height;
    ds->width = info->width;
    ds->image_size = (int64_t)info->channels * info->height * info->width;
    ds->images = malloc(count > 0 ? (size_t)(count * ds->image_size) : 1);
    ds->labels = malloc(count > 0 ? (size_t)count : 1);
    if (!ds->images || !ds->labels) goto oom;
    return ds;
oom:
    dc_dataset_free(ds);
    dc_set_error(DC_ERR_OOM, "out of memory allocating %lld %s images", (long long)count, info->title);
    return NULL;
}

const char *dc__basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ---------------------------------------------------------------------------------------
 * A byte source: a gzFile (plain or gzip file), plain memory, or gzip memory.
 * ------------------------------------------------------------------------------------- */

typedef struct src {
    const char *name;
    gzFile gz;
    const uint8_t *mem;
    size_t mem_size, mem_pos;
    bool inflating, inflate_done;
    z_stream zs;
    int64_t plain_size; /* the exact data size when known up front (plain file/memory), else -1 */
} src;

static bool is_gzip(const uint8_t *p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

static dc_status src_open_file(src *s, const char *path)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    s->plain_size = -1;
    FILE *f = fopen(path, "rb");
    if (!f) return dc_set_error(DC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    uint8_t head[2];
    size_t got = fread(head, 1, 2, f);
    fclose(f);
    if (!is_gzip(head, got)) s->plain_size = dc__file_size(path);
    s->gz = gzopen(path, "rb");
    if (!s->gz) return dc_set_error(DC_ERR_IO, "cannot open %s: %s", path, strerror(errno ? errno : ENOMEM));
    gzbuffer(s->gz, 1 << 17);
    return DC_OK;
}

static dc_status src_open_memory(src *s, const void *data, size_t size, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name ? name : "(memory)";
    s->mem = data;
    s->mem_size = size;
    s->plain_size = -1;
    if (is_gzip(data, size)) {
        if (inflateInit2(&s->zs, 16 + MAX_WBITS) != Z_OK)
            return dc_set_error(DC_ERR_OOM, "%s: cannot start zlib", s->name);
        s->inflating = true;
        s->zs.next_in = (Bytef *)(uintptr_t)data;
        s->zs.avail_in = 0;
    } else {
        s->plain_size = (int64_t)size;
    }
    return DC_OK;
}

static void src_close(src *s)
{
    if (s->gz) gzclose(s->gz);
    if (s->inflating) inflateEnd(&s->zs);
    s->gz = NULL;
    s->inflating = false;
}

/* Reads up to n bytes; fewer only at the end of the data. -1 (error set) on corrupt data. */
static int64_t src_read(src *s, uint8_t *buf, size_t n)
{
    size_t done = 0;
    if (s->gz) {
        while (done < n) {
            unsigned chunk = n - done > (1u << 30) ? 1u << 30 : (unsigned)(n - done);
            int got = gzread(s->gz, buf + done, chunk);
            if (got < 0) {
                int err;
                const char *msg = gzerror(s->gz, &err);
                dc_set_error(DC_ERR_FORMAT, "%s: corrupt gzip data (%s)", s->name, msg);
                return -1;
            }
            if (got == 0) {
                int err;
                const char *msg = gzerror(s->gz, &err);
                if (err != Z_OK && err != Z_STREAM_END) {
                    dc_set_error(DC_ERR_FORMAT, "%s: truncated or corrupt gzip data (%s)", s->name, msg);
                    return -1;
                }
                break;
            }
            done += (size_t)got;
        }
        return (int64_t)done;
    }
    if (!s->inflating) {
        size_t left = s->mem_size - s->mem_pos;
        size_t take = n < left ? n : left;
        memcpy(buf, s->mem + s->mem_pos, take);
        s->mem_pos += take;
        return (int64_t)take;
    }
    while (done < n && !s->inflate_done) {
        if (s->zs.avail_in == 0) {
            size_t left = s->mem_size - s->mem_pos;
            if (left == 0) {
                dc_set_error(DC_ERR_FORMAT, "%s: truncated gzip data (the stream ends early)", s->name);
                return -1;
            }
            size_t take = left > (1u << 30) ? 1u << 30 : left;
            s->zs.next_in = (Bytef *)(uintptr_t)(s->mem + s->mem_pos);
            s->zs.avail_in = (uInt)take;
            s->mem_pos += take;
        }
        size_t want = n - done > (1u << 30) ? 1u << 30 : n - done;
        s->zs.next_out = buf + done;
        s->zs.avail_out = (uInt)want;
        int rc = inflate(&s->zs, Z_NO_FLUSH);
        done += want - s->zs.avail_out;
        if (rc == Z_STREAM_END) s->inflate_done = true;
        else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            dc_set_error(DC_ERR_FORMAT, "%s: corrupt gzip data (%s)", s->name,
                         s->zs.msg ? s->zs.msg : "inflate failed");
            return -1;
        }
    }
    return (int64_t)done;
}

/* Reads exactly `need` bytes into a buffer grown as data arrives (never beyond what exists),
 * then checks that nothing follows. `what` describes the expectation for messages.
 * Returns the malloc'ed buffer or NULL with an error. */
static uint8_t *read_body(src *s, int64_t header_size, int64_t need, const char *what)
{
    if (s->plain_size >= 0 && s->plain_size != header_size + need) {
        dc_set_error(DC_ERR_FORMAT,
                     "%s: header says %s (%lld bytes with the %lld-byte header) but the file has %lld bytes",
                     s->name, what, (long long)(header_size + need), (long long)header_size,
                     (long long)s->plain_size);
        return NULL;
    }
    size_t cap = need < (1 << 20) ? (size_t)need : (size_t)1 << 20;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) {
        dc_set_error(DC_ERR_OOM, "%s: out of memory", s->name);
        return NULL;
    }
    int64_t have = 0;
    while (have < need) {
        if ((size_t)have == cap) {
            size_t ncap = cap * 2 < (size_t)need ? cap * 2 : (size_t)need;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                dc_set_error(DC_ERR_OOM, "%s: out of memory (%zu bytes)", s->name, ncap);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        int64_t got = src_read(s, buf + have, cap - (size_t)have);
        if (got < 0) {
            free(buf);
            return NULL;
        }
        if (got == 0) {
            free(buf);
            dc_set_error(DC_ERR_FORMAT,
                         "%s: truncated: header says %s (%lld bytes with the header) but the data ends after %lld bytes",
                         s->name, what, (long long)(header_size + need), (long long)(header_size + have));
            return NULL;
        }
        have += got;
    }
    uint8_t extra;
    int64_t more = src_read(s, &extra, 1);
    if (more != 0) {
        free(buf);
        if (more > 0)
            dc_set_error(DC_ERR_FORMAT,
                         "%s: header says %s (%lld bytes with the header) but the file holds more data",
                         s->name, what, (long long)(header_size + need));
        return NULL;
    }
    return buf;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads a header of `n` 32-bit words; false (error set) if the data is shorter. */
static bool read_header(src *s, uint32_t *words, int n)
{
    uint8_t head[16];
    int64_t got = src_read(s, head, (size_t)n * 4);
    if (got < 0) return false;
    if (got < n * 4) {
        dc_set_error(DC_ERR_FORMAT, "%s: too short for an IDX header: %lld bytes, expected at least %d",
                     s->name, (long long)got, n * 4);
        return false;
    }
    for (int i = 0; i < n; i++) words[i] = be32(head + 4 * i);
    return true;
}

static bool check_magic(src *s, uint32_t magic, uint32_t want)
{
    if (magic == want) return true;
    const char *kind = magic == IDX_IMAGES_MAGIC ? " (an IDX image file)"
                     : magic == IDX_LABELS_MAGIC ? " (an IDX label file)"
                     : (magic >> 16) == 0x1f8b ? " (gzip data inside gzip?)"
                                               : "";
    dc_set_error(DC_ERR_FORMAT, "%s: wrong magic number %u (0x%08x)%s, expected %u (0x%08x, IDX %s)",
                 s->name, magic, magic, kind, want, want, want == IDX_IMAGES_MAGIC ? "images" : "labels");
    return false;
}

/* Parses an image source into *pixels / *count; and a label source into *labels / *count. */
static dc_status parse_images(src *s, const dc_dataset_info *info, uint8_t **pixels, int64_t *count)
{
    uint32_t h[4];
    if (!read_header(s, h, 4) || !check_magic(s, h[0], IDX_IMAGES_MAGIC)) return dc_last_status();
    if (h[2] != (uint32_t)info->height || h[3] != (uint32_t)info->width)
        return dc_set_error(DC_ERR_FORMAT, "%s: images are %ux%u, expected %dx%d (%s)", s->name, h[2],
                            h[3], info->height, info->width, info->title);
    char what[96];
    snprintf(what, sizeof what, "%u images of %ux%u", h[1], h[2], h[3]);
    *pixels = read_body(s, 16, (int64_t)h[1] * h[2] * h[3], what);
    *count = h[1];
    return *pixels ? DC_OK : dc_last_status();
}

static dc_status parse_labels(src *s, const dc_dataset_info *info, uint8_t **labels, int64_t *count)
{
    uint32_t h[2];
    if (!read_header(s, h, 2) || !check_magic(s, h[0], IDX_LABELS_MAGIC)) return dc_last_status();
    char what[64];
    snprintf(what, sizeof what, "%u labels", h[1]);
    *labels = read_body(s, 8, h[1], what);
    if (!*labels) return dc_last_status();
    *count = h[1];
    for (int64_t i = 0; i < *count; i++)
        if ((*labels)[i] >= info->num_classes) {
            dc_set_error(DC_ERR_FORMAT, "%s: label %u at index %lld is out of range (expected 0..%d)",
                         s->name, (*labels)[i], (long long)i, info->num_classes - 1);
            free(*labels);
            *labels = NULL;
            return DC_ERR_FORMAT;
        }
    return DC_OK;
}

static dc_dataset *assemble(dc_dataset_id id, const dc_dataset_info *info, src *si, src *sl)
{
    uint8_t *pixels = NULL, *labels = NULL;
    int64_t ni = 0, nl = 0;
    dc_dataset *ds = NULL;
    if (parse_images(si, info, &pixels, &ni) || parse_labels(sl, info, &labels, &nl)) goto done;
    if (ni != nl) {
        dc_set_error(DC_ERR_FORMAT, "%s has %lld images but %s has %lld labels: the counts must agree",
                     si->name, (long long)ni, sl->name, (long long)nl);
        goto done;
    }
    ds = calloc(1, sizeof *ds);
    if (!ds) {
        dc_set_error(DC_ERR_OOM, "out of memory");
        goto done;
    }
    /* the buffers read above become the data set's arrays (no copy) */
    ds->id = id;
    ds->info = info;
    ds->count = ni;
    ds->channels = info->channels;
    ds->height = info->height;
    ds->width = info->width;
    ds->image_size = (int64_t)info->channels * info->height * info->width;
    ds->images = pixels;
    ds->labels = labels;
    pixels = labels = NULL;
    snprintf(ds->source, sizeof ds->source, "%s, %s", si->name, sl->name);
done:
    free(pixels);
    free(labels);
    return ds;
}

dc_dataset *dc_idx_load(dc_dataset_id id, const char *images_path, const char *labels_path)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info || info->channels != 1) {
        dc_set_error(DC_ERR_ARG, "IDX files hold MNIST or Fashion-MNIST, not dataset id %d", (int)id);
        return NULL;
    }
    src si, sl;
    dc_dataset *ds = NULL;
    memset(&sl, 0, sizeof sl);
    if (src_open_file(&si, images_path) == DC_OK && src_open_file(&sl, labels_path) == DC_OK)
        ds = assemble(id, info, &si, &sl);
    src_close(&si);
    src_close(&sl);
    return ds;
}

dc_dataset *dc_idx_parse(dc_dataset_id id, const void *images, size_t images_size,
                         const char *images_name, const void *labels, size_t labels_size,
                         const char *labels_name)
{
    const dc_dataset_info *info = dc_dataset_info_of(id);
    if (!info || info->channels != 1) {
        dc_set_error(DC_ERR_ARG, "IDX files hold MNIST or Fashion-MNIST, not dataset id %d", (int)id);
        return NULL;
    }
    if ((!images && images_size) || (!labels && labels_size)) {
        dc_set_error(DC_ERR_ARG, "idx_parse: NULL buffer");
        return NULL;
    }
    static const uint8_t empty[1];
    src si, sl;
    dc_dataset *ds = NULL;
    memset(&sl, 0, sizeof sl);
    if (src_open_memory(&si, images ? images : empty, images_size, images_name ? images_name : "images") == DC_OK &&
        src_open_memory(&sl, labels ? labels : empty, labels_size, labels_name ? labels_name : "labels") == DC_OK)
        ds = assemble(id, info, &si, &sl);
    src_close(&si);
    src_close(&sl);
    return ds;
}
